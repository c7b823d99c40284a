//! The client side of the NIP-01 relay protocol: what we send (REQ, CLOSE, EVENT) and what relays
//! answer, parsed without trusting anything.
//!
//! We speak NIP-01 ourselves instead of through nostr-sdk because its pool verifies events and drops
//! forged ones silently; dvmdash must see every message to count rejects by reason and to measure
//! each relay (EOSE time, duplicates). The event payload is kept as the exact text the relay sent.

use serde::Serialize;
use serde_json::value::RawValue;

/// A message from a relay. Borrowed from the frame text to avoid copies on the hot path.
#[derive(Debug, PartialEq)]
pub enum RelayMessage<'a> {
    /// `["EVENT", <sub>, <event>]`: the event JSON exactly as sent.
    Event { subscription: String, event: &'a str },
    /// `["EOSE", <sub>]`: stored events done, live ones follow.
    EndOfStoredEvents { subscription: String },
    /// `["OK", <id>, <accepted>, <message>]`: answer to a published event.
    Ok {
        event_id: String,
        accepted: bool,
        message: String,
    },
    /// `["CLOSED", <sub>, <message>]`: the relay ended a subscription.
    Closed { subscription: String, message: String },
    /// `["NOTICE", <message>]`.
    Notice { message: String },
    /// `["AUTH", <challenge>]` (NIP-42); we do not authenticate.
    Auth,
    /// `["NEG-MSG", <sub>, <hex>]` (NIP-77): the relay's next reconciliation message.
    NegMsg { subscription: String, message: String },
    /// `["NEG-ERR", <sub>, <reason>]` (NIP-77): the relay refused or ended a reconciliation.
    NegErr { subscription: String, reason: String },
    /// A well-formed array with a label we do not use (COUNT, ...).
    Other { label: String },
}

/// Why a frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a JSON array")]
    NotAnArray,
    #[error("{0} message with missing or mistyped fields")]
    BadFields(&'static str),
}

impl<'a> RelayMessage<'a> {
    pub fn parse(text: &'a str) -> Result<Self, MessageError> {
        let parts: Vec<&'a RawValue> = serde_json::from_str(text).map_err(|_| MessageError::NotAnArray)?;
        let label: String = parts
            .first()
            .and_then(|v| serde_json::from_str(v.get()).ok())
            .ok_or(MessageError::NotAnArray)?;
        let str_at =
            |i: usize| -> Option<String> { parts.get(i).and_then(|v| serde_json::from_str(v.get()).ok()) };
        Ok(match label.as_str() {
            "EVENT" => {
                let subscription = str_at(1).ok_or(MessageError::BadFields("EVENT"))?;
                let event = parts.get(2).ok_or(MessageError::BadFields("EVENT"))?.get();
                RelayMessage::Event { subscription, event }
            }
            "EOSE" => RelayMessage::EndOfStoredEvents {
                subscription: str_at(1).ok_or(MessageError::BadFields("EOSE"))?,
            },
            "OK" => RelayMessage::Ok {
                event_id: str_at(1).ok_or(MessageError::BadFields("OK"))?,
                accepted: parts
                    .get(2)
                    .and_then(|v| serde_json::from_str(v.get()).ok())
                    .ok_or(MessageError::BadFields("OK"))?,
                message: str_at(3).unwrap_or_default(),
            },
            "CLOSED" => RelayMessage::Closed {
                subscription: str_at(1).ok_or(MessageError::BadFields("CLOSED"))?,
                message: str_at(2).unwrap_or_default(),
            },
            "NOTICE" => RelayMessage::Notice {
                message: str_at(1).unwrap_or_default(),
            },
            "AUTH" => RelayMessage::Auth,
            "NEG-MSG" => RelayMessage::NegMsg {
                subscription: str_at(1).ok_or(MessageError::BadFields("NEG-MSG"))?,
                message: str_at(2).ok_or(MessageError::BadFields("NEG-MSG"))?,
            },
            "NEG-ERR" => RelayMessage::NegErr {
                subscription: str_at(1).ok_or(MessageError::BadFields("NEG-ERR"))?,
                reason: str_at(2).unwrap_or_default(),
            },
            _ => RelayMessage::Other { label },
        })
    }
}

/// A subscription filter (the NIP-01 fields we use).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Filter {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(rename = "#e", skip_serializing_if = "Vec::is_empty")]
    pub e_tags: Vec<String>,
    #[serde(rename = "#p", skip_serializing_if = "Vec::is_empty")]
    pub p_tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `["REQ", <sub>, <filter>...]`
pub fn req(subscription: &str, filters: &[Filter]) -> String {
    // Serialized field by field (not through `Value`), so the output does not depend on whether
    // some crate in the build turns on serde_json's `preserve_order`.
    let mut out = format!(
        "[\"REQ\",{}",
        serde_json::to_string(subscription).unwrap_or_default()
    );
    for f in filters {
        out.push(',');
        out.push_str(&serde_json::to_string(f).unwrap_or_default());
    }
    out.push(']');
    out
}

/// `["CLOSE", <sub>]`
pub fn close(subscription: &str) -> String {
    serde_json::json!(["CLOSE", subscription]).to_string()
}

/// `["NEG-OPEN", <sub>, <filter>, <hex>]` (NIP-77)
pub fn neg_open(subscription: &str, filter: &Filter, message_hex: &str) -> String {
    format!(
        "[\"NEG-OPEN\",{},{},{}]",
        serde_json::to_string(subscription).unwrap_or_default(),
        serde_json::to_string(filter).unwrap_or_default(),
        serde_json::to_string(message_hex).unwrap_or_default()
    )
}

/// `["NEG-MSG", <sub>, <hex>]` (NIP-77)
pub fn neg_msg(subscription: &str, message_hex: &str) -> String {
    serde_json::json!(["NEG-MSG", subscription, message_hex]).to_string()
}

/// `["NEG-CLOSE", <sub>]` (NIP-77)
pub fn neg_close(subscription: &str) -> String {
    serde_json::json!(["NEG-CLOSE", subscription]).to_string()
}

/// `["EVENT", <event>]` from event JSON text.
pub fn publish(event_json: &str) -> String {
    format!("[\"EVENT\",{event_json}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relay_messages() {
        let ev = r#"{"id":"x","kind":1}"#;
        let text = format!(r#"["EVENT","s1",{ev}]"#);
        assert_eq!(
            RelayMessage::parse(&text).unwrap(),
            RelayMessage::Event {
                subscription: "s1".into(),
                event: ev
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["EOSE","s1"]"#).unwrap(),
            RelayMessage::EndOfStoredEvents {
                subscription: "s1".into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["OK","ab",false,"invalid: bad sig"]"#).unwrap(),
            RelayMessage::Ok {
                event_id: "ab".into(),
                accepted: false,
                message: "invalid: bad sig".into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["CLOSED","s1","rate-limited"]"#).unwrap(),
            RelayMessage::Closed {
                subscription: "s1".into(),
                message: "rate-limited".into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["NOTICE"]"#).unwrap(),
            RelayMessage::Notice {
                message: String::new()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["COUNT","s",{"count":1}]"#).unwrap(),
            RelayMessage::Other {
                label: "COUNT".into()
            }
        );
    }

    #[test]
    fn rejects_malformed_frames() {
        for bad in [
            "",
            "{}",
            "null",
            "[1,2]",
            "[",
            r#"["EVENT"]"#,
            r#"["EVENT",5,{}]"#,
            r#"["OK","a","yes"]"#,
            r#"["EOSE"]"#,
            r#"["NEG-MSG","s"]"#,
            r#"["NEG-MSG","s",7]"#,
            r#"["NEG-ERR"]"#,
        ] {
            assert!(RelayMessage::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn builds_client_messages() {
        let f = Filter {
            kinds: vec![5300, 7000],
            since: Some(10),
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(
            req("sub", &[f]),
            r#"["REQ","sub",{"kinds":[5300,7000],"since":10,"limit":5}]"#
        );
        assert_eq!(close("sub"), r#"["CLOSE","sub"]"#);
        let f = Filter {
            kinds: vec![5300],
            since: Some(1),
            until: Some(2),
            ..Default::default()
        };
        assert_eq!(
            neg_open("n\"1", &f, "61"),
            r#"["NEG-OPEN","n\"1",{"kinds":[5300],"since":1,"until":2},"61"]"#
        );
        assert_eq!(neg_msg("n", "6100"), r#"["NEG-MSG","n","6100"]"#);
        assert_eq!(neg_close("n"), r#"["NEG-CLOSE","n"]"#);
        let ids = Filter {
            ids: vec!["ab".into()],
            ..Default::default()
        };
        assert_eq!(req("i", &[ids]), r#"["REQ","i",{"ids":["ab"]}]"#);
        assert_eq!(
            RelayMessage::parse(r#"["NEG-MSG","n","61"]"#).unwrap(),
            RelayMessage::NegMsg {
                subscription: "n".into(),
                message: "61".into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["NEG-ERR","n","blocked: too big"]"#).unwrap(),
            RelayMessage::NegErr {
                subscription: "n".into(),
                reason: "blocked: too big".into()
            }
        );
        assert_eq!(publish("{}"), r#"["EVENT",{}]"#);
    }
}
