//! Dead-letter handling shared by `dvmdash dlq` and the admin api: which letters a selection
//! names, and one walk over the dead-letter stream that lists, replays or discards them.
//!
//! A walk reads oldest first in pages and stops at the newest letter that existed when it began,
//! so a replayed entry that fails again (and comes back as a new letter) is not met twice in one
//! walk. Replaying puts entries back as they were, each on its event's shard
//! (`EventStreams::replay_dead_letters`); the
//! ingester's exactly-once gate counts an event replayed twice once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::stream::DeadLetter;
use crate::stream_shards::EventStreams;

/// Dead letters read per round trip.
pub const PAGE: usize = 500;

/// Which dead letters an action applies to; every one when nothing is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Letters whose reason contains this text, compared in lower case.
    pub reason: Option<String>,
    /// Dead-lettered at least this long ago.
    pub older_than: Option<Duration>,
    /// Dead-lettered at most this long ago.
    pub newer_than: Option<Duration>,
    /// Only these dead-letter ids.
    pub ids: Option<BTreeSet<String>>,
}

impl Selection {
    pub fn matches(&self, l: &DeadLetter, now_ms: u64) -> bool {
        let age = Duration::from_millis(now_ms.saturating_sub(l.at_ms().unwrap_or(0)));
        self.reason
            .as_ref()
            .is_none_or(|r| l.reason.to_lowercase().contains(&r.to_lowercase()))
            && self.older_than.is_none_or(|d| age >= d)
            && self.newer_than.is_none_or(|d| age <= d)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&l.id))
    }
}

/// What a walk does to the letters it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only read (a list, or a dry run).
    None,
    Replay,
    Discard,
}

/// What a walk found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// Dead letters read.
    pub total: u64,
    /// Of those, the ones the selection matched.
    pub matched: u64,
    /// Matched letters per reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Replayed or discarded (0 for a list or a dry run).
    pub changed: u64,
    /// Matched, but with nothing to put back (trimmed from the stream before they were read):
    /// a replay leaves them in place.
    pub not_replayable: u64,
}

/// Walks the dead letters oldest first, reading at most `max_read` of them, calls `visit` with
/// each matched one (before it is changed) and applies `change` page by page.
pub async fn walk<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    streams: &EventStreams,
    selection: &Selection,
    change: Change,
    now_ms: u64,
    max_read: u64,
    mut visit: impl FnMut(&DeadLetter),
) -> redis::RedisResult<Summary> {
    let mut summary = Summary::default();
    let stream = streams.dead_letters();
    let plan = Plan {
        streams,
        selection,
        change,
        now_ms,
    };
    if let Some(ids) = &selection.ids {
        // Named letters are read directly, not found by a walk over all of them.
        let ids: Vec<String> = ids.iter().take(max_read as usize).cloned().collect();
        let found = stream.dead_letters_by_id(conn, &ids).await?;
        summary.total = found.len() as u64;
        plan.apply(conn, found, &mut summary, &mut visit).await?;
        return Ok(summary);
    }
    let Some(until) = stream.last_dead_letter_id(conn).await? else {
        return Ok(summary);
    };
    let mut after: Option<String> = None;
    while summary.total < max_read {
        let want = (max_read - summary.total).min(PAGE as u64) as usize;
        let page = stream
            .dead_letter_page(conn, after.as_deref(), &until, want)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        summary.total += page.len() as u64;
        plan.apply(conn, page, &mut summary, &mut visit).await?;
    }
    Ok(summary)
}

/// What one walk does to each page: which letters, and what change.
struct Plan<'a> {
    streams: &'a EventStreams,
    selection: &'a Selection,
    change: Change,
    now_ms: u64,
}

impl Plan<'_> {
    /// Counts, visits and changes the letters of one page that the selection matches.
    async fn apply<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
        page: Vec<DeadLetter>,
        summary: &mut Summary,
        visit: &mut impl FnMut(&DeadLetter),
    ) -> redis::RedisResult<()> {
        let matched: Vec<DeadLetter> = page
            .into_iter()
            .filter(|l| self.selection.matches(l, self.now_ms))
            .collect();
        for l in &matched {
            summary.matched += 1;
            *summary.by_reason.entry(l.reason.clone()).or_default() += 1;
            if !l.replayable() && self.change == Change::Replay {
                summary.not_replayable += 1;
            }
            visit(l);
        }
        match self.change {
            Change::None => {}
            Change::Replay => {
                summary.changed += self.streams.replay_dead_letters(conn, &matched).await?.len() as u64;
            }
            Change::Discard => {
                let ids: Vec<String> = matched.iter().map(|l| l.id.clone()).collect();
                summary.changed += self
                    .streams
                    .dead_letters()
                    .discard_dead_letters(conn, &ids)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A dead letter as the api and `dvmdash dlq list --json` show it: what it was and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LetterView {
    /// The dead letter's id (pass it to replay or discard).
    pub id: String,
    /// The id the entry had on the events stream.
    pub original_id: String,
    pub reason: String,
    /// RFC 3339.
    pub dead_lettered_at: String,
    /// The relay that delivered it, when kept.
    pub relay: Option<String>,
    /// The event's id and kind, when the entry held parseable JSON with them.
    pub event_id: Option<String>,
    pub kind: Option<u64>,
    /// A sightings entry (relays that delivered already stored events) rather than an event.
    pub sightings: bool,
    /// Whether replay can put it back (false when it was trimmed before it was read).
    pub replayable: bool,
}

impl From<&DeadLetter> for LetterView {
    fn from(l: &DeadLetter) -> Self {
        let event: Option<serde_json::Value> = l
            .fields
            .event
            .as_deref()
            .and_then(|e| serde_json::from_slice(e).ok());
        let field = |name: &str| {
            event
                .as_ref()
                .and_then(|e| e.get(name).cloned())
                .filter(|v| !v.is_null())
        };
        LetterView {
            id: l.id.clone(),
            original_id: l.original_id.clone(),
            reason: l.reason.clone(),
            dead_lettered_at: crate::dto::rfc3339(l.at_ms().unwrap_or(0) / 1000),
            relay: l
                .fields
                .relay
                .as_deref()
                .map(|r| String::from_utf8_lossy(r).into_owned()),
            // Only a 64-hex id is shown as one: the letter may hold anything.
            event_id: field("id")
                .and_then(|v| v.as_str().map(str::to_owned))
                .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())),
            kind: field("kind").and_then(|v| v.as_u64()),
            sightings: l.fields.sightings.is_some(),
            replayable: l.replayable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Fields;

    fn letter(id: &str, reason: &str) -> DeadLetter {
        DeadLetter {
            id: id.to_owned(),
            original_id: "1-0".into(),
            reason: reason.to_owned(),
            fields: Fields::default(),
        }
    }

    #[test]
    fn selects_by_reason_age_and_id() {
        let now = 10_000_000;
        let old = letter("1000000-0", "Invalid signature");
        let new = letter("9990000-0", "not an event: bad JSON");
        let by_reason = Selection {
            reason: Some("SIGNATURE".into()),
            ..Selection::default()
        };
        assert!(by_reason.matches(&old, now) && !by_reason.matches(&new, now));
        let old_only = Selection {
            older_than: Some(Duration::from_secs(60)),
            ..Selection::default()
        };
        assert!(old_only.matches(&old, now) && !old_only.matches(&new, now));
        let new_only = Selection {
            newer_than: Some(Duration::from_secs(60)),
            ..Selection::default()
        };
        assert!(!new_only.matches(&old, now) && new_only.matches(&new, now));
        let one = Selection {
            ids: Some(BTreeSet::from(["9990000-0".to_owned()])),
            ..Selection::default()
        };
        assert!(!one.matches(&old, now) && one.matches(&new, now));
        assert!(Selection::default().matches(&old, now));
    }

    #[test]
    fn a_view_shows_only_what_the_letter_really_holds() {
        let mut l = letter("1700000000000-3", "too large");
        l.fields.event = Some(br#"{"id":"<script>","kind":5100}"#.to_vec());
        l.fields.relay = Some(b"wss://r.example".to_vec());
        let v = LetterView::from(&l);
        assert_eq!(v.event_id, None, "a non-hex id is not shown as an event id");
        assert_eq!(v.kind, Some(5100));
        assert_eq!(v.relay.as_deref(), Some("wss://r.example"));
        assert_eq!(v.dead_lettered_at, "2023-11-14T22:13:20Z");
        assert!(v.replayable && !v.sightings);
        let junk = LetterView::from(&letter("x", "junk"));
        assert!(!junk.replayable && junk.kind.is_none() && junk.event_id.is_none());
    }
}
