//! The directory of DVM-like services (`GET /api/directory`): one row per pubkey, whichever
//! family announced it, with its liveness.

use serde::{Deserialize, Serialize};

use crate::kinds::Family;

/// `sort` values of `GET /api/directory`, the default first.
pub const DIRECTORY_SORTS: &[&str] = &["last_seen", "announced_at", "name"];

/// `family` values of `GET /api/directory`, the default first: every service, the three
/// announcement families, or those seen only through their results, feedback or heartbeats.
pub const DIRECTORY_FAMILIES: &[&str] = &["all", "nip89", "contextvm", "encrypted", "unannounced"];

/// A heartbeat (kind 11998) at most this old means alive: nostrdvm beats every 300 s.
pub const HEARTBEAT_ALIVE_SECS: u64 = 900;
/// Not alive, but a result, feedback or heartbeat within this long: idle. Beyond it: silent.
pub const IDLE_WINDOW_SECS: u64 = 7 * 86_400;
/// Uptime samples the status at the ends of slots this long (the heartbeat interval).
pub const UPTIME_SLOT_SECS: u64 = 300;

/// Whether a service answers now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// A heartbeat within 900 s, or a result or feedback within the api's alive window.
    Alive,
    /// Not alive, but a result, feedback or heartbeat within 7 days.
    Idle,
    /// Nothing for 7 days, or never (announced only).
    #[default]
    Silent,
}

impl Liveness {
    /// The status at `now` from the newest heartbeat and the newest result or feedback (unix
    /// seconds), with results counting as alive for `alive_window_secs`.
    pub fn at(now: u64, heartbeat: Option<u64>, answer: Option<u64>, alive_window_secs: u64) -> Self {
        let within = |t: Option<u64>, secs: u64| t.is_some_and(|t| now.saturating_sub(t) <= secs);
        if within(heartbeat, HEARTBEAT_ALIVE_SECS) || within(answer, alive_window_secs) {
            Liveness::Alive
        } else if within(heartbeat, IDLE_WINDOW_SECS) || within(answer, IDLE_WINDOW_SECS) {
            Liveness::Idle
        } else {
            Liveness::Silent
        }
    }
}

/// One DVM-like service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryEntry {
    /// Hex pubkey.
    pub id: String,
    pub npub: String,
    pub name: Option<String>,
    pub about: Option<String>,
    /// http(s) image URL.
    pub picture: Option<String>,
    /// The families it announces itself in; empty when seen only through its activity.
    pub families: Vec<Family>,
    /// Job kinds in its NIP-89 and encrypted-DVM announcements (`k` tags, 5000-5999).
    pub announced_kinds: Vec<u16>,
    /// Tool names of its ContextVM tools list.
    pub tools: Vec<String>,
    /// Its newest announcement, in any family.
    pub announced_at: Option<String>,
    pub announcement_age_seconds: Option<u64>,
    pub status: Liveness,
    /// Its newest heartbeat (kind 11998).
    pub last_heartbeat: Option<String>,
    /// Its newest result or feedback.
    pub last_result: Option<String>,
    /// Its first event of any DVM-side role.
    pub first_seen: Option<String>,
    /// Percent of the 5-minute slot ends of the last 24 hours (since its first event, if later) at
    /// which it was alive; `None` when no slot end of the window follows its first event.
    pub uptime_24h: Option<f64>,
    /// The same over the last 7 days.
    pub uptime_7d: Option<f64>,
}

/// A stretch of one state in a service's liveness timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LivenessSpan {
    /// The first slot end of the stretch.
    pub from: String,
    /// The last slot end of the stretch.
    pub to: String,
    pub alive: bool,
    /// Slot ends in the stretch.
    pub slots: u64,
}

/// `GET /api/liveness/{id}`: one service's status, uptime and the timeline of its status changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceLiveness {
    /// Hex pubkey.
    pub id: String,
    /// When this answer was computed; everything is as of this time.
    pub timestamp: String,
    pub status: Liveness,
    pub last_heartbeat: Option<String>,
    pub last_result: Option<String>,
    pub first_seen: Option<String>,
    /// A result or feedback at most this old counts as alive (the api's setting).
    pub alive_window_seconds: u64,
    /// A heartbeat at most this old counts as alive.
    pub heartbeat_alive_seconds: u64,
    /// The timeline's and uptime's sampling step.
    pub slot_seconds: u64,
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    /// The last 7 days (from its first event, if later), oldest first, one span per run of slot
    /// ends in the same state.
    pub timeline: Vec<LivenessSpan>,
}

/// Services per family (a service announcing in two families counts in both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyCounts {
    pub all: u64,
    pub nip89: u64,
    pub contextvm: u64,
    pub encrypted: u64,
    pub unannounced: u64,
}

/// `GET /api/directory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Directory {
    /// When this answer was computed; statuses are as of this time.
    pub timestamp: String,
    pub services: Vec<DirectoryEntry>,
    /// Services matching the family and search, before pagination.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
    /// Every service per family, before the family filter and search.
    pub counts: FamilyCounts,
    /// Services alive now, of all.
    pub alive: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_from_heartbeats_and_answers() {
        let now = 1_000_000;
        assert_eq!(Liveness::at(now, Some(now - 900), None, 3600), Liveness::Alive);
        assert_eq!(Liveness::at(now, Some(now - 901), None, 3600), Liveness::Idle);
        assert_eq!(Liveness::at(now, None, Some(now - 3600), 3600), Liveness::Alive);
        assert_eq!(Liveness::at(now, None, Some(now - 3601), 3600), Liveness::Idle);
        assert_eq!(
            Liveness::at(now, Some(now - 8 * 86_400), None, 3600),
            Liveness::Silent
        );
        assert_eq!(Liveness::at(now, None, None, 3600), Liveness::Silent);
        // A heartbeat from the future (clock skew) still counts as recent, not as a wrap-around.
        assert_eq!(Liveness::at(now, Some(now + 60), None, 3600), Liveness::Alive);
    }
}
