//! Event verification: the single gate every event passes before it is stored, whether it came from a
//! relay (collector) or from a file (import). Each rejection has a reason so it can be counted.
//!
//! The checks run cheapest first, so a flood of junk costs little: size, JSON shape, kind filter,
//! timestamp, then the id hash, and the BIP-340 signature last.

use secp256k1::{Message, XOnlyPublicKey, schnorr::Signature};

use crate::event::{Event, Id32, parse_hex32, parse_hex64};
use crate::kinds::KindFilter;

/// Why an event was refused. The string forms are metric label values (bounded set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// Larger than the configured limit.
    TooLarge,
    /// Not an event object, or a field of the wrong type or format.
    Malformed,
    /// A kind dvmdash does not collect (a relay that ignores our filter).
    OffFilter,
    /// `created_at` further in the future than the allowed clock skew.
    FutureDated,
    /// The id is not the hash of the event.
    BadId,
    /// The signature does not verify against the id and pubkey.
    BadSignature,
}

impl Rejection {
    pub const ALL: [Rejection; 6] = [
        Rejection::TooLarge,
        Rejection::Malformed,
        Rejection::OffFilter,
        Rejection::FutureDated,
        Rejection::BadId,
        Rejection::BadSignature,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::OffFilter => "off_filter",
            Rejection::FutureDated => "future_dated",
            Rejection::BadId => "bad_id",
            Rejection::BadSignature => "bad_signature",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an accepted event looks like: the parsed event and its binary id.
#[derive(Debug, Clone)]
pub struct Verified {
    pub event: Event,
    pub id: Id32,
}

/// An event's head, from [`Validator::precheck_head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead<'a> {
    pub id: Id32,
    /// Lowercase hex, as in the JSON.
    pub pubkey: &'a str,
    pub created_at: u64,
    pub kind: u16,
}

/// The verification policy, shared by collector and import.
#[derive(Debug, Clone)]
pub struct Validator {
    /// Largest accepted event, in bytes of JSON text.
    pub max_event_bytes: usize,
    /// Allowed clock skew into the future, in seconds (design: 15 minutes).
    pub max_future_secs: u64,
    pub kinds: KindFilter,
}

/// Default size limit: results carry whole requests and can reach hundreds of KB; 512 KiB leaves room
/// while still refusing abuse.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 512 * 1024;
pub const DEFAULT_MAX_FUTURE_SECS: u64 = 15 * 60;

impl Default for Validator {
    fn default() -> Self {
        Validator {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_future_secs: DEFAULT_MAX_FUTURE_SECS,
            kinds: KindFilter::default(),
        }
    }
}

impl Validator {
    /// Parses and checks everything except the id hash and signature. Cheap; lets the caller drop
    /// duplicates before paying for cryptography.
    pub fn precheck(&self, json: &str, now_secs: u64) -> Result<(Event, Id32), Rejection> {
        if json.len() > self.max_event_bytes {
            return Err(Rejection::TooLarge);
        }
        let event = Event::from_json(json).map_err(|_| Rejection::Malformed)?;
        self.precheck_event(event, now_secs)
    }

    /// The same checks as [`Validator::precheck`] on an event's head alone: id, author, time and
    /// kind borrowed from the JSON, the signature's form checked, tags and content skipped
    /// without being built. For recognising another copy of an event already verified (the
    /// collector hears most events from several relays); anything this cannot read, such as
    /// an escaped id, is an error here and goes the full way.
    pub fn precheck_head<'a>(&self, json: &'a str, now_secs: u64) -> Result<EventHead<'a>, Rejection> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            id: &'a str,
            pubkey: &'a str,
            created_at: u64,
            kind: u16,
            sig: &'a str,
            #[allow(dead_code)]
            tags: serde::de::IgnoredAny,
            #[allow(dead_code)]
            content: serde::de::IgnoredAny,
        }
        if json.len() > self.max_event_bytes {
            return Err(Rejection::TooLarge);
        }
        let head: Head<'a> = serde_json::from_str(json).map_err(|_| Rejection::Malformed)?;
        let id = self.check_fields(
            head.id,
            head.pubkey,
            head.sig,
            head.kind,
            head.created_at,
            now_secs,
        )?;
        Ok(EventHead {
            id,
            pubkey: head.pubkey,
            created_at: head.created_at,
            kind: head.kind,
        })
    }

    /// Like [`Validator::precheck`] for an already parsed event (size measured on its JSON form).
    pub fn precheck_event(&self, event: Event, now_secs: u64) -> Result<(Event, Id32), Rejection> {
        let id = self.check_fields(
            &event.id,
            &event.pubkey,
            &event.sig,
            event.kind,
            event.created_at,
            now_secs,
        )?;
        Ok((event, id))
    }

    /// The checks on an event's fixed fields, shared by the full precheck and the head's: the
    /// decoded id, or why the event is refused.
    fn check_fields(
        &self,
        id: &str,
        pubkey: &str,
        sig: &str,
        kind: u16,
        created_at: u64,
        now_secs: u64,
    ) -> Result<Id32, Rejection> {
        let id = parse_hex32(id).ok_or(Rejection::Malformed)?;
        if parse_hex32(pubkey).is_none() || parse_hex64(sig).is_none() {
            return Err(Rejection::Malformed);
        }
        if !self.kinds.accepts(kind) {
            return Err(Rejection::OffFilter);
        }
        if created_at > now_secs.saturating_add(self.max_future_secs) {
            return Err(Rejection::FutureDated);
        }
        Ok(id)
    }

    /// Full verification of JSON text.
    pub fn verify(&self, json: &str, now_secs: u64) -> Result<Verified, Rejection> {
        let (event, id) = self.precheck(json, now_secs)?;
        verify_crypto(&event, &id)?;
        Ok(Verified { event, id })
    }
}

/// Checks the id hash, then the signature. `id` must be the decoded `event.id`.
pub fn verify_crypto(event: &Event, id: &Id32) -> Result<(), Rejection> {
    if &event.compute_id() != id {
        return Err(Rejection::BadId);
    }
    let pubkey = parse_hex32(&event.pubkey).ok_or(Rejection::Malformed)?;
    let sig = parse_hex64(&event.sig).ok_or(Rejection::Malformed)?;
    let pubkey = parsed_pubkey(&pubkey).ok_or(Rejection::BadSignature)?;
    let sig = Signature::from_slice(&sig).map_err(|_| Rejection::BadSignature)?;
    let msg = Message::from_digest(*id);
    secp256k1::SECP256K1
        .verify_schnorr(&sig, &msg, &pubkey)
        .map_err(|_| Rejection::BadSignature)
}

/// Parses an x-only public key, remembering recent ones: parsing costs a field square root, and DVM
/// traffic comes from few authors (a few DVMs answer most requests).
fn parsed_pubkey(bytes: &Id32) -> Option<XOnlyPublicKey> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    const MAX: usize = 4096;
    thread_local! {
        static KEYS: RefCell<HashMap<Id32, XOnlyPublicKey>> = RefCell::new(HashMap::new());
    }
    KEYS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(k) = cache.get(bytes) {
            return Some(*k);
        }
        let key = XOnlyPublicKey::from_slice(bytes).ok()?;
        if cache.len() >= MAX {
            cache.clear();
        }
        cache.insert(*bytes, key);
        Some(key)
    })
}

/// A signing key, for the simulator and for tests.
#[derive(Clone)]
pub struct Keys {
    keypair: secp256k1::Keypair,
    pubkey_hex: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("pubkey", &self.pubkey_hex)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn generate() -> Self {
        Self::from_keypair(secp256k1::Keypair::new_global(&mut rand::thread_rng()))
    }

    /// Deterministic keys from a seed, so simulated DVMs keep their identity across runs.
    pub fn from_seed(seed: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let mut counter = 0u32;
        loop {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(counter.to_le_bytes());
            let secret: [u8; 32] = h.finalize().into();
            if let Ok(kp) = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &secret) {
                return Self::from_keypair(kp);
            }
            counter += 1;
        }
    }

    fn from_keypair(keypair: secp256k1::Keypair) -> Self {
        let (xonly, _) = keypair.x_only_public_key();
        Keys {
            keypair,
            pubkey_hex: hex::encode(xonly.serialize()),
        }
    }

    pub fn pubkey_hex(&self) -> &str {
        &self.pubkey_hex
    }

    pub fn secret_hex(&self) -> String {
        hex::encode(self.keypair.secret_bytes())
    }

    /// Builds and signs an event.
    pub fn sign(&self, created_at: u64, kind: u16, tags: Vec<Vec<String>>, content: String) -> Event {
        let id = crate::event::canonical_id(&self.pubkey_hex, created_at, kind, &tags, &content);
        let sig = secp256k1::SECP256K1.sign_schnorr(&Message::from_digest(id), &self.keypair);
        Event {
            id: hex::encode(id),
            pubkey: self.pubkey_hex.clone(),
            created_at,
            kind,
            tags,
            content,
            sig: hex::encode(sig.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    fn signed(kind: u16) -> Event {
        Keys::from_seed(b"validator-test").sign(
            NOW - 10,
            kind,
            vec![vec!["p".into(), "00".repeat(32)]],
            "hello".into(),
        )
    }

    #[test]
    fn accepts_a_valid_event() {
        let e = signed(5300);
        let v = Validator::default().verify(&e.to_json(), NOW).expect("valid");
        assert_eq!(hex::encode(v.id), e.id);
    }

    #[test]
    fn rejects_each_fault_with_its_reason() {
        let v = Validator::default();
        let good = signed(5300);

        let mut bad_sig = good.clone();
        bad_sig.sig = format!(
            "{}{}",
            &good.sig[..126],
            if good.sig.ends_with('0') { "11" } else { "00" }
        );
        assert_eq!(
            v.verify(&bad_sig.to_json(), NOW).unwrap_err(),
            Rejection::BadSignature
        );

        let mut bad_id = good.clone();
        bad_id.content = "tampered".into();
        assert_eq!(v.verify(&bad_id.to_json(), NOW).unwrap_err(), Rejection::BadId);

        let future = Keys::generate().sign(NOW + 3600, 5300, vec![], String::new());
        assert_eq!(
            v.verify(&future.to_json(), NOW).unwrap_err(),
            Rejection::FutureDated
        );
        let near_future = Keys::generate().sign(NOW + 600, 5300, vec![], String::new());
        assert!(
            v.verify(&near_future.to_json(), NOW).is_ok(),
            "10 minutes of skew is allowed"
        );

        assert_eq!(v.verify("not json", NOW).unwrap_err(), Rejection::Malformed);
        assert_eq!(v.verify("[1,2,3]", NOW).unwrap_err(), Rejection::Malformed);
        let mut upper = good.clone();
        upper.id = upper.id.to_uppercase();
        assert_eq!(v.verify(&upper.to_json(), NOW).unwrap_err(), Rejection::Malformed);

        let off = signed(1);
        assert_eq!(v.verify(&off.to_json(), NOW).unwrap_err(), Rejection::OffFilter);

        let huge = Keys::generate().sign(NOW, 5300, vec![], "x".repeat(DEFAULT_MAX_EVENT_BYTES));
        assert_eq!(v.verify(&huge.to_json(), NOW).unwrap_err(), Rejection::TooLarge);
    }

    #[test]
    fn the_head_of_an_event_is_checked_like_the_event() {
        let v = Validator::default();
        let good = signed(5300);
        let json = good.to_json();
        let head = v.precheck_head(&json, NOW).expect("a valid head");
        let (event, id) = v.precheck(&json, NOW).expect("valid");
        assert_eq!(
            (head.id, head.pubkey, head.created_at, head.kind),
            (id, event.pubkey.as_str(), event.created_at, event.kind)
        );
        // Each fault the full precheck finds in these fields, with the same reason.
        let future = Keys::generate().sign(NOW + 3600, 5300, vec![], String::new());
        let huge = Keys::generate().sign(NOW, 5300, vec![], "x".repeat(DEFAULT_MAX_EVENT_BYTES));
        let mut upper = good.clone();
        upper.pubkey = upper.pubkey.to_uppercase();
        let mut short_sig = good.clone();
        short_sig.sig.pop();
        for (json, reason) in [
            (future.to_json(), Rejection::FutureDated),
            (huge.to_json(), Rejection::TooLarge),
            (signed(1).to_json(), Rejection::OffFilter),
            (upper.to_json(), Rejection::Malformed),
            (short_sig.to_json(), Rejection::Malformed),
        ] {
            assert_eq!(v.precheck_head(&json, NOW).unwrap_err(), reason);
            assert_eq!(v.precheck(&json, NOW).unwrap_err(), reason);
        }
        // Hostile shapes: no tags, a kind out of range or as text, a nested id, an escaped id (the
        // full path reads that one), junk and an empty object.
        let escaped = json.replacen(
            &format!("\"id\":\"{}", &good.id[..1]),
            &format!("\"id\":\"\\u00{:x}", good.id.as_bytes()[0]),
            1,
        );
        assert_ne!(escaped, json);
        assert!(v.precheck(&escaped, NOW).is_ok(), "an escaped id is still the id");
        for junk in [
            json.replacen("\"tags\":", "\"tagz\":", 1),
            json.replacen("\"kind\":5300", "\"kind\":70000", 1),
            json.replacen("\"kind\":5300", "\"kind\":\"5300\"", 1),
            json.replacen(
                &format!("\"id\":\"{}\"", good.id),
                &format!("\"id\":[\"{}\"]", good.id),
                1,
            ),
            escaped,
            "{}".into(),
            "[\"EVENT\"]".into(),
            "{\"id\":".into(),
        ] {
            assert_eq!(
                v.precheck_head(&junk, NOW).unwrap_err(),
                Rejection::Malformed,
                "{junk}"
            );
        }
    }

    #[test]
    fn a_signature_from_another_key_fails() {
        let a = signed(5300);
        let b = Keys::from_seed(b"other").sign(a.created_at, a.kind, a.tags.clone(), a.content.clone());
        let mut forged = a.clone();
        forged.sig = b.sig;
        assert_eq!(
            Validator::default().verify(&forged.to_json(), NOW).unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn seeded_keys_are_stable() {
        assert_eq!(
            Keys::from_seed(b"x").pubkey_hex(),
            Keys::from_seed(b"x").pubkey_hex()
        );
        assert_ne!(
            Keys::from_seed(b"x").pubkey_hex(),
            Keys::from_seed(b"y").pubkey_hex()
        );
    }
}
