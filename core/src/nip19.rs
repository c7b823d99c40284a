//! NIP-19 `npub` encoding, so people can paste either form of a pubkey.

use bech32::{Bech32, Hrp};

use crate::event::{Id32, parse_hex32};

/// Accepts a 64-character hex pubkey (any case) or an `npub1…` string.
pub fn parse_pubkey(input: &str) -> Option<Id32> {
    let s = input.trim();
    if s.len() == 64 {
        return parse_hex32(&s.to_ascii_lowercase());
    }
    if s.len() > 100 {
        return None;
    }
    let (hrp, data) = bech32::decode(s).ok()?;
    if hrp.as_str() != "npub" {
        return None;
    }
    data.try_into().ok()
}

/// Encodes a pubkey as `npub1…`.
pub fn npub(pubkey: &Id32) -> String {
    let hrp = Hrp::parse("npub").expect("npub is a valid human-readable part");
    bech32::encode::<Bech32>(hrp, pubkey).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIP-19's own example pair.
    const HEX: &str = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
    const NPUB: &str = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg";

    #[test]
    fn nip19_example_round_trips() {
        let id = parse_hex32(HEX).unwrap();
        assert_eq!(npub(&id), NPUB);
        assert_eq!(parse_pubkey(NPUB), Some(id));
        assert_eq!(parse_pubkey(HEX), Some(id));
        assert_eq!(parse_pubkey(&HEX.to_uppercase()), Some(id));
    }

    #[test]
    fn rejects_other_strings() {
        assert_eq!(
            parse_pubkey("nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"),
            None
        );
        assert_eq!(parse_pubkey("npub1xyz"), None);
        assert_eq!(parse_pubkey(""), None);
        assert_eq!(parse_pubkey(&"a".repeat(1000)), None);
    }
}
