//! Kind ranges and the role each kind plays (NIP-90, NIP-89, NIP-01).
//!
//! rust-nostr dropped NIP-90 support, so the ranges live here rather than in an SDK.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

pub const REQUEST_KINDS: RangeInclusive<u16> = 5000..=5999;
pub const RESULT_KINDS: RangeInclusive<u16> = 6000..=6999;
pub const FEEDBACK_KIND: u16 = 7000;
pub const PROFILE_KIND: u16 = 0;
pub const DELETION_KIND: u16 = 5;
pub const ZAP_RECEIPT_KIND: u16 = 9735;
pub const RECOMMENDATION_KIND: u16 = 31989;
pub const ANNOUNCEMENT_KIND: u16 = 31990;

/// Kinds in the DVM ranges that are other protocols (polls, 5666/6666); DVMDash excluded the same.
pub const DEFAULT_EXCLUDED_KINDS: [u16; 4] = [5666, 5969, 6666, 6969];

/// What an event is to dvmdash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Request,
    Result,
    Feedback,
    Announcement,
    Recommendation,
    Profile,
    Deletion,
    ZapReceipt,
    Other,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Request => "request",
            Role::Result => "result",
            Role::Feedback => "feedback",
            Role::Announcement => "announcement",
            Role::Recommendation => "recommendation",
            Role::Profile => "profile",
            Role::Deletion => "deletion",
            Role::ZapReceipt => "zap_receipt",
            Role::Other => "other",
        }
    }
}

/// Which kinds dvmdash collects and stores; everything else a relay sends is off-filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindFilter {
    excluded: Vec<u16>,
}

impl Default for KindFilter {
    fn default() -> Self {
        Self::new(DEFAULT_EXCLUDED_KINDS)
    }
}

impl KindFilter {
    pub fn new(excluded: impl IntoIterator<Item = u16>) -> Self {
        let mut excluded: Vec<u16> = excluded.into_iter().collect();
        excluded.sort_unstable();
        excluded.dedup();
        KindFilter { excluded }
    }

    pub fn excluded(&self) -> &[u16] {
        &self.excluded
    }

    pub fn is_excluded(&self, kind: u16) -> bool {
        self.excluded.binary_search(&kind).is_ok()
    }

    pub fn role(&self, kind: u16) -> Role {
        if self.is_excluded(kind) {
            return Role::Other;
        }
        match kind {
            k if REQUEST_KINDS.contains(&k) => Role::Request,
            k if RESULT_KINDS.contains(&k) => Role::Result,
            FEEDBACK_KIND => Role::Feedback,
            ANNOUNCEMENT_KIND => Role::Announcement,
            RECOMMENDATION_KIND => Role::Recommendation,
            PROFILE_KIND => Role::Profile,
            DELETION_KIND => Role::Deletion,
            ZAP_RECEIPT_KIND => Role::ZapReceipt,
            _ => Role::Other,
        }
    }

    /// Whether an event of this kind is stored.
    pub fn accepts(&self, kind: u16) -> bool {
        self.role(kind) != Role::Other
    }

    /// The kinds of the main subscription: every job kind (both ends inclusive, so 6999 is not
    /// missed as it was in DVMDash), feedback and announcements. Profiles, deletions and zaps are
    /// fetched by narrower filters.
    pub fn subscription_kinds(&self) -> Vec<u16> {
        REQUEST_KINDS
            .chain(RESULT_KINDS)
            .chain([FEEDBACK_KIND, ANNOUNCEMENT_KIND])
            .filter(|k| !self.is_excluded(*k))
            .collect()
    }
}

/// A job kind from the registry shipped in `core/data/kinds.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KindInfo {
    pub kind: u16,
    pub name: String,
    /// `registered`, `proposed` or `unregistered`.
    pub status: String,
}

#[derive(Deserialize)]
struct Registry {
    kinds: Vec<KindInfo>,
}

/// Every known job kind, sorted by number.
pub fn registry() -> &'static [KindInfo] {
    static REGISTRY: std::sync::OnceLock<Vec<KindInfo>> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut kinds = serde_json::from_str::<Registry>(include_str!("../data/kinds.json"))
            .map(|r| r.kinds)
            .unwrap_or_default();
        kinds.sort_by_key(|k| k.kind);
        kinds
    })
}

/// The registry name of a job kind (a result kind maps to its request kind).
pub fn kind_name(kind: u16) -> Option<&'static str> {
    let job = if RESULT_KINDS.contains(&kind) {
        kind - 1000
    } else {
        kind
    };
    let reg = registry();
    reg.binary_search_by_key(&job, |k| k.kind)
        .ok()
        .map(|i| reg[i].name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_exclusions() {
        let f = KindFilter::default();
        assert_eq!(f.role(5300), Role::Request);
        assert_eq!(f.role(5999), Role::Request);
        assert_eq!(f.role(6999), Role::Result);
        assert_eq!(f.role(7000), Role::Feedback);
        assert_eq!(f.role(31990), Role::Announcement);
        assert_eq!(f.role(5969), Role::Other);
        assert_eq!(f.role(1), Role::Other);
        assert!(!f.accepts(6666));
        let kinds = f.subscription_kinds();
        assert_eq!(kinds.len(), 2000 - 4 + 2);
        assert!(kinds.contains(&6999) && kinds.contains(&5000) && !kinds.contains(&5666));
    }

    #[test]
    fn registry_names() {
        assert!(registry().len() > 30);
        assert_eq!(kind_name(5300), Some("Nostr Content Discovery"));
        assert_eq!(kind_name(6300), Some("Nostr Content Discovery"));
        assert_eq!(kind_name(5742), None);
    }

    #[test]
    fn exclusions_are_configurable() {
        let f = KindFilter::new([5300, 5300]);
        assert_eq!(f.excluded(), &[5300]);
        assert!(!f.accepts(5300));
        assert!(f.accepts(5969));
    }
}
