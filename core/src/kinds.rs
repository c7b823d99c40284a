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
    fn exclusions_are_configurable() {
        let f = KindFilter::new([5300, 5300]);
        assert_eq!(f.excluded(), &[5300]);
        assert!(!f.accepts(5300));
        assert!(f.accepts(5969));
    }
}
