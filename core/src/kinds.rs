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
pub const CONTEXTVM_SERVER_KIND: u16 = 11316;
pub const ENCRYPTED_DVM_KIND: u16 = 11999;
pub const HEARTBEAT_KIND: u16 = 11998;
/// ContextVM messages: MCP JSON-RPC calls and responses, ephemeral (relays keep none).
pub const CONTEXTVM_MESSAGE_KIND: u16 = 25910;

/// Kinds in the DVM ranges that are other protocols (polls, 5666/6666); DVMDash excluded the same.
pub const DEFAULT_EXCLUDED_KINDS: [u16; 4] = [5666, 5969, 6666, 6969];

/// How a relay keeps events of a kind (NIP-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Every event is kept.
    Regular,
    /// Only the newest per (pubkey, kind).
    Replaceable,
    /// Only the newest per (pubkey, kind, `d` tag).
    Addressable,
}

impl Storage {
    pub fn of(kind: u16) -> Storage {
        match kind {
            0 | 3 | 10000..=19999 => Storage::Replaceable,
            30000..=39999 => Storage::Addressable,
            _ => Storage::Regular,
        }
    }
}

/// How the collector asks relays for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// In the main subscriptions (live, backfill, settle, catch-up): every event of the kind.
    All,
    /// Only events authored by DVMs seen (kind-0 profiles).
    ByDvms,
    /// Only events whose `p` tag names a DVM seen (zap receipts to DVMs).
    MentioningDvms,
    /// Only events authored by customers seen (deletions of their own requests).
    ByCustomers,
    /// Only in the live subscription, never back-filled: ephemeral kinds, which relays do not
    /// keep, so only what was watched live can be counted.
    Live,
    /// Stored when delivered, never asked for.
    Never,
}

/// The announcement families a DVM-like service can be listed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// NIP-89 handler information (31990).
    Nip89,
    /// ContextVM (MCP over Nostr) servers.
    Contextvm,
    /// Encrypted DVMs.
    Encrypted,
}

/// One line of the catalogue: kinds, what they are called, the role they play and how they are
/// collected.
#[derive(Debug, Clone)]
pub struct KindSpec {
    pub kinds: RangeInclusive<u16>,
    pub name: &'static str,
    pub role: Role,
    pub family: Option<Family>,
    pub collect: Collect,
}

const fn spec(kinds: RangeInclusive<u16>, name: &'static str, role: Role, collect: Collect) -> KindSpec {
    KindSpec {
        kinds,
        name,
        role,
        family: None,
        collect,
    }
}

/// An announcement kind. NIP-89's keeps the role DVMDash gave it; the newer families have their
/// own, so the DVMDash-compatible numbers (a DVM is an author of results, feedback or a NIP-89
/// announcement) keep their meaning.
const fn announcement(kind: u16, name: &'static str, family: Family) -> KindSpec {
    KindSpec {
        kinds: kind..=kind,
        name,
        role: if matches!(family, Family::Nip89) {
            Role::Announcement
        } else {
            Role::ServiceAnnouncement
        },
        family: Some(family),
        collect: Collect::All,
    }
}

/// Every kind dvmdash stores, in one place: a new draft kind is one line here.
pub const CATALOGUE: &[KindSpec] = &[
    spec(REQUEST_KINDS, "job request (NIP-90)", Role::Request, Collect::All),
    spec(RESULT_KINDS, "job result (NIP-90)", Role::Result, Collect::All),
    spec(
        FEEDBACK_KIND..=FEEDBACK_KIND,
        "job feedback (NIP-90)",
        Role::Feedback,
        Collect::All,
    ),
    announcement(ANNOUNCEMENT_KIND, "handler information (NIP-89)", Family::Nip89),
    announcement(
        CONTEXTVM_SERVER_KIND,
        "ContextVM server announcement",
        Family::Contextvm,
    ),
    announcement(
        ENCRYPTED_DVM_KIND,
        "encrypted DVM announcement",
        Family::Encrypted,
    ),
    spec(
        11317..=11317,
        "ContextVM tools list",
        Role::Capabilities,
        Collect::All,
    ),
    spec(
        11318..=11318,
        "ContextVM resources list",
        Role::Capabilities,
        Collect::All,
    ),
    spec(
        11319..=11319,
        "ContextVM resource templates list",
        Role::Capabilities,
        Collect::All,
    ),
    spec(
        11320..=11320,
        "ContextVM prompts list",
        Role::Capabilities,
        Collect::All,
    ),
    spec(
        31316..=31319,
        "ContextVM capability list (older drafts)",
        Role::Capabilities,
        Collect::All,
    ),
    spec(
        HEARTBEAT_KIND..=HEARTBEAT_KIND,
        "DVM heartbeat",
        Role::Heartbeat,
        Collect::All,
    ),
    spec(
        CONTEXTVM_MESSAGE_KIND..=CONTEXTVM_MESSAGE_KIND,
        "ContextVM message (MCP call or response)",
        Role::ContextvmMessage,
        Collect::Live,
    ),
    spec(
        PROFILE_KIND..=PROFILE_KIND,
        "profile (NIP-01)",
        Role::Profile,
        Collect::ByDvms,
    ),
    spec(
        ZAP_RECEIPT_KIND..=ZAP_RECEIPT_KIND,
        "zap receipt (NIP-57)",
        Role::ZapReceipt,
        Collect::MentioningDvms,
    ),
    spec(
        DELETION_KIND..=DELETION_KIND,
        "deletion (NIP-09)",
        Role::Deletion,
        Collect::ByCustomers,
    ),
    spec(
        RECOMMENDATION_KIND..=RECOMMENDATION_KIND,
        "handler recommendation (NIP-89)",
        Role::Recommendation,
        Collect::Never,
    ),
];

/// The catalogue line of a kind.
pub fn spec_of(kind: u16) -> Option<&'static KindSpec> {
    CATALOGUE.iter().find(|s| s.kinds.contains(&kind))
}

/// The announcement family of a kind, if it announces DVM-like services.
pub fn family(kind: u16) -> Option<Family> {
    spec_of(kind).and_then(|s| s.family)
}

/// What an event is to dvmdash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Request,
    Result,
    Feedback,
    /// NIP-89 handler information (31990).
    Announcement,
    /// Announcements of the newer DVM-like families (ContextVM servers, encrypted DVMs).
    ServiceAnnouncement,
    /// ContextVM capability lists (tools, resources, prompts).
    Capabilities,
    Heartbeat,
    Recommendation,
    Profile,
    Deletion,
    ZapReceipt,
    /// A ContextVM call or response (kind 25910), watched live only.
    ContextvmMessage,
    Other,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Request => "request",
            Role::Result => "result",
            Role::Feedback => "feedback",
            Role::Announcement => "announcement",
            Role::ServiceAnnouncement => "service_announcement",
            Role::Capabilities => "capabilities",
            Role::Heartbeat => "heartbeat",
            Role::Recommendation => "recommendation",
            Role::Profile => "profile",
            Role::Deletion => "deletion",
            Role::ZapReceipt => "zap_receipt",
            Role::ContextvmMessage => "contextvm_message",
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

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Nip89 => "nip89",
            Family::Contextvm => "contextvm",
            Family::Encrypted => "encrypted",
        }
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
        spec_of(kind).map_or(Role::Other, |s| s.role)
    }

    /// Whether an event of this kind is stored.
    pub fn accepts(&self, kind: u16) -> bool {
        self.role(kind) != Role::Other
    }

    /// Whether the collector asks relays for events of this kind (in full or the events about
    /// the DVMs and customers it has seen).
    pub fn collects(&self, kind: u16) -> bool {
        self.accepts(kind) && spec_of(kind).is_some_and(|s| s.collect != Collect::Never)
    }

    /// The kinds of the main subscriptions: every kind collected in full (job kinds with both ends
    /// inclusive, so 6999 is not missed as it was in DVMDash), minus the exclusions.
    pub fn subscription_kinds(&self) -> Vec<u16> {
        self.collected(Collect::All)
    }

    /// The kinds of the live subscription: the main ones plus those watched live only.
    pub fn live_kinds(&self) -> Vec<u16> {
        let mut kinds = self.subscription_kinds();
        kinds.extend(self.collected(Collect::Live));
        kinds
    }

    /// The kinds collected in the given way, minus the exclusions.
    pub fn collected(&self, how: Collect) -> Vec<u16> {
        CATALOGUE
            .iter()
            .filter(|s| s.collect == how)
            .flat_map(|s| s.kinds.clone())
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
        assert_eq!(f.role(11316), Role::ServiceAnnouncement);
        assert_eq!(f.role(11998), Role::Heartbeat);
        assert_eq!(f.role(31318), Role::Capabilities);
        assert_eq!(family(11999), Some(Family::Encrypted));
        let kinds = f.subscription_kinds();
        // Job kinds minus 4 exclusions, feedback, three announcement kinds, eight capability
        // list kinds, heartbeats.
        assert_eq!(kinds.len(), 2000 - 4 + 1 + 3 + 8 + 1);
        assert!(kinds.contains(&6999) && kinds.contains(&5000) && !kinds.contains(&5666));
    }

    #[test]
    fn the_catalogue_names_each_kind_once() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert!(
                    a.kinds.end() < b.kinds.start() || b.kinds.end() < a.kinds.start(),
                    "{} and {} overlap",
                    a.name,
                    b.name
                );
            }
            let announces = matches!(a.role, Role::Announcement | Role::ServiceAnnouncement);
            assert_eq!(a.family.is_some(), announces, "{}", a.name);
        }
        assert_eq!(Storage::of(11316), Storage::Replaceable);
        assert_eq!(Storage::of(31990), Storage::Addressable);
        assert_eq!(Storage::of(5300), Storage::Regular);
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
