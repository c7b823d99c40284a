//! The Nostr event as it travels through dvmdash (NIP-01), with its canonical id.
//!
//! We keep our own small event type instead of a Nostr SDK's: the collector must see every event a
//! relay sends, including forged ones, to count rejects by reason, and the ingester must parse
//! millions of them quickly. Signatures are checked in [`crate::validate`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A signed Nostr event exactly as NIP-01 defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Lowercase hex sha256 of the canonical serialization.
    pub id: String,
    /// Lowercase hex x-only public key of the author.
    pub pubkey: String,
    /// Unix seconds, as claimed by the author.
    pub created_at: u64,
    pub kind: u16,
    pub tags: Vec<Vec<String>>,
    pub content: String,
    /// Lowercase hex BIP-340 signature over `id`.
    pub sig: String,
}

/// A 32-byte identifier (event id or pubkey) in binary form, as stored in ClickHouse.
pub type Id32 = [u8; 32];

impl Event {
    /// Parses one event from JSON text; unknown fields are ignored as NIP-01 allows.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The id NIP-01 prescribes: sha256 of `[0, pubkey, created_at, kind, tags, content]`.
    pub fn compute_id(&self) -> Id32 {
        canonical_id(
            &self.pubkey,
            self.created_at,
            self.kind,
            &self.tags,
            &self.content,
        )
    }

    /// The first value of the first tag named `name`, if any.
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.first().map(String::as_str) == Some(name))
            .and_then(|t| t.get(1))
            .map(String::as_str)
    }

    /// Every tag named `name`.
    pub fn tags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<String>> + 'a {
        self.tags
            .iter()
            .filter(move |t| t.first().map(String::as_str) == Some(name))
    }
}

/// Hashes the canonical serialization without building it in memory first.
pub fn canonical_id(pubkey: &str, created_at: u64, kind: u16, tags: &[Vec<String>], content: &str) -> Id32 {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    // serde_json escapes exactly what NIP-01 asks for: quote, backslash and control characters,
    // and writes every other character verbatim.
    let _ = serde_json::to_writer(&mut w, &(0u8, pubkey, created_at, kind, tags, content));
    w.0.finalize().into()
}

/// Decodes 64 lowercase hex characters. Uppercase is rejected: NIP-01 ids and keys are lowercase,
/// and accepting both would let one event appear under two spellings.
pub fn parse_hex32(s: &str) -> Option<Id32> {
    let mut out = [0u8; 32];
    decode_lower_hex(s, &mut out).then_some(out)
}

/// Decodes a 128-character lowercase hex signature.
pub fn parse_hex64(s: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    decode_lower_hex(s, &mut out).then_some(out)
}

/// Value of each byte as a lowercase hex digit, `INVALID` for anything else.
const HEX_VALUES: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
const INVALID: u8 = 0xff;

/// Fills `out` from exactly `2 * out.len()` lowercase hex digits; false for anything else. By hand
/// rather than the `hex` crate: one table lookup per digit both checks and decodes, where a
/// lowercase check followed by `hex::decode_to_slice` took 5 % of the collector's CPU (every
/// copy of every event carries an id, a key and a signature).
fn decode_lower_hex(s: &str, out: &mut [u8]) -> bool {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUES[pair[0] as usize], HEX_VALUES[pair[1] as usize]);
        // INVALID has its high bit set, a digit never does: one test at the end for all of them.
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    bad & 0x80 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            id: String::new(),
            pubkey: "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798".into(),
            created_at: 1_700_000_000,
            kind: 5300,
            tags: vec![
                vec!["p".into(), "ab".into()],
                vec!["param".into(), "k".into(), "v".into()],
            ],
            content: "line\nquote\" tab\t back\\ emoji \u{1F600} ctl \u{0001}".into(),
            sig: String::new(),
        }
    }

    #[test]
    fn canonical_serialization_follows_nip01_escaping() {
        let e = sample();
        let expected = format!(
            "[0,\"{}\",1700000000,5300,[[\"p\",\"ab\"],[\"param\",\"k\",\"v\"]],\"line\\nquote\\\" tab\\t back\\\\ emoji \u{1F600} ctl \\u0001\"]",
            e.pubkey
        );
        let digest: Id32 = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(e.compute_id(), digest);
    }

    #[test]
    fn hex_parsing_is_strict() {
        let ok = "00".repeat(32);
        assert_eq!(parse_hex32(&ok), Some([0u8; 32]));
        assert_eq!(parse_hex32(&"AB".repeat(32)), None, "uppercase is not canonical");
        assert_eq!(parse_hex32(&"0".repeat(63)), None);
        assert_eq!(parse_hex32(&"zz".repeat(32)), None);
        assert!(parse_hex64(&"ff".repeat(64)).is_some());
        assert!(parse_hex64(&"ff".repeat(63)).is_none());
        assert_eq!(parse_hex32(&"é".repeat(32)), None, "64 bytes, not 64 digits");
        assert_eq!(parse_hex32(&format!("{}0", "0".repeat(64))), None);
        // Every byte in every position of a pair, against the hex crate and the lowercase rule.
        let base = "5a".repeat(32);
        for b in 0..=255u8 {
            for pos in [0, 1, 62, 63] {
                let mut bytes = base.clone().into_bytes();
                bytes[pos] = b;
                let Ok(text) = String::from_utf8(bytes) else {
                    continue;
                };
                let want = (b.is_ascii_digit() || (b'a'..=b'f').contains(&b)).then(|| {
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(&text, &mut out).expect("lowercase hex");
                    out
                });
                assert_eq!(parse_hex32(&text), want, "byte {b:#04x} at {pos}");
            }
        }
        let sig: String = (0..64u8).map(|i| format!("{:02x}", i.wrapping_mul(37))).collect();
        let want: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(parse_hex64(&sig).map(|s| s.to_vec()), Some(want));
    }

    #[test]
    fn tag_helpers() {
        let e = sample();
        assert_eq!(e.tag_value("p"), Some("ab"));
        assert_eq!(e.tag_value("x"), None);
        assert_eq!(e.tags_named("param").count(), 1);
    }

    #[test]
    fn json_round_trip_ignores_unknown_fields() {
        let text = r#"{"id":"a","pubkey":"b","created_at":1,"kind":7000,"tags":[],"content":"","sig":"c","extra":1}"#;
        let e = Event::from_json(text).unwrap();
        assert_eq!(e.kind, 7000);
        assert!(Event::from_json(&e.to_json()).is_ok());
        assert!(Event::from_json(r#"{"id":"a"}"#).is_err());
        assert!(
            Event::from_json(
                r#"{"id":"a","pubkey":"b","created_at":-1,"kind":1,"tags":[],"content":"","sig":"c"}"#
            )
            .is_err()
        );
        assert!(
            Event::from_json(
                r#"{"id":"a","pubkey":"b","created_at":1,"kind":70000,"tags":[],"content":"","sig":"c"}"#
            )
            .is_err()
        );
        assert!(
            Event::from_json(
                r#"{"id":"a","pubkey":"b","created_at":1,"kind":1,"tags":[[1]],"content":"","sig":"c"}"#
            )
            .is_err()
        );
    }
}
