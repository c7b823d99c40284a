//! `/api/admin/stream` and `/api/admin/dead-letters`: the events stream's backlog per consumer
//! and the dead letters, listed with their reasons and replayed or discarded from the panel (the
//! same walk as `dvmdash dlq`, `core::dead_letters`).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Query, State};
use dvmdash_core::dead_letters::{self, Change, LetterView, Selection, Summary};
use dvmdash_core::stream::{ConsumerSummary, GroupSummary, OldestPending};
use dvmdash_core::telemetry::now_millis;
use serde::{Deserialize, Serialize};

use super::{AdminErrors, audit};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Letters read to count dead letters per reason for the panel: the count says when it stopped
/// short, so a flood of dead letters cannot make the page slow.
pub const SUMMARY_READ: u64 = 10_000;
/// Most ids one replay or discard may name.
pub const MAX_IDS: usize = 1_000;

/// A consumer group with its consumers and its oldest pending entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    pub group: GroupSummary,
    pub consumer_list: Vec<ConsumerSummary>,
    pub oldest_pending: Option<OldestPending>,
}

/// One shard of the events stream (the whole stream when it is not split).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShardView {
    pub stream: String,
    pub length: u64,
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StreamView {
    /// Entries over every shard.
    pub length: u64,
    /// One per shard of the stream (`DVMDASH_STREAM_SHARDS`), in shard order.
    pub shards: Vec<ShardView>,
    pub dead_letter_stream: String,
    pub dead_letters: u64,
}

/// `GET /api/admin/stream`
#[utoipa::path(get, path = "/api/admin/stream", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = StreamView), AdminErrors))]
pub async fn stream(State(state): State<AppState>) -> ApiResult<Json<StreamView>> {
    let mut c = state.redis_manager().await?;
    let streams = state.event_streams(&mut c).await?;
    let now = now_millis();
    let mut shards = Vec::new();
    for stream in streams.all() {
        let info = stream.group_info(&mut c).await?;
        let mut groups = Vec::new();
        for group in stream.groups(&mut c).await? {
            groups.push(GroupView {
                consumer_list: stream.consumers(&mut c, &group.name).await?,
                oldest_pending: stream.oldest_pending(&mut c, &group.name, now).await?,
                group,
            });
        }
        shards.push(ShardView {
            stream: stream.key().to_owned(),
            length: info.length,
            groups,
        });
    }
    let letters = streams.dead_letters();
    Ok(Json(StreamView {
        length: shards.iter().map(|s| s.length).sum(),
        shards,
        dead_letter_stream: letters.dead_letter_key().to_owned(),
        dead_letters: letters.dead_letters(&mut c).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LetterQuery {
    /// Letters per page, oldest first (1 to 500, default 50).
    pub limit: Option<u32>,
    /// Start after this dead-letter id (the previous page's `next_after`).
    pub after: Option<String>,
    /// Only letters whose reason contains this text (case-insensitive, at most 200 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LetterPage {
    /// Dead letters waiting, all reasons.
    pub total: u64,
    pub letters: Vec<LetterView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
    /// Letters matching `reason` per reason, counted over the oldest `summary_read` letters.
    pub by_reason: BTreeMap<String, u64>,
    pub summary_read: u64,
    /// Whether `by_reason` covers every letter (false past [`SUMMARY_READ`]).
    pub summary_complete: bool,
}

/// A stream id as Redis writes them: `<ms>-<seq>`.
fn stream_id(raw: &str, name: &str) -> ApiResult<String> {
    let ok = raw.len() <= 41
        && raw
            .split_once('-')
            .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad(
            name,
            "expected a stream id such as 1700000000000-0",
        ))
    }
}

fn reason_text(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw {
        None => Ok(None),
        Some(r) if r.trim().is_empty() || r.len() > 200 => Err(ApiError::bad(
            "reason",
            "reason must be 1 to 200 characters of the reason text",
        )),
        Some(r) => Ok(Some(r.trim().to_lowercase())),
    }
}

/// `GET /api/admin/dead-letters?limit=&after=&reason=`
#[utoipa::path(get, path = "/api/admin/dead-letters", tag = "admin", security(("admin_token" = [])),
    params(LetterQuery), responses((status = 200, body = LetterPage), AdminErrors))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Query(q): Query<LetterQuery>,
) -> ApiResult<Json<LetterPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit", "limit must be 1 to 500"));
    }
    let after = q.after.as_deref().map(|a| stream_id(a, "after")).transpose()?;
    let selection = Selection {
        reason: reason_text(q.reason)?,
        ..Selection::default()
    };
    let mut c = state.redis_manager().await?;
    let streams = state.event_streams(&mut c).await?;
    let stream = streams.dead_letters();
    let now = now_millis();
    let total = stream.dead_letters(&mut c).await?;
    let mut letters = Vec::new();
    let mut next_after = None;
    if let Some(until) = stream.last_dead_letter_id(&mut c).await? {
        let mut from = after;
        'pages: loop {
            let page = stream
                .dead_letter_page(&mut c, from.as_deref(), &until, dead_letters::PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            from = Some(last.id.clone());
            for l in page.iter().filter(|l| selection.matches(l, now)) {
                if letters.len() == limit as usize {
                    next_after = letters.last().map(|v: &LetterView| v.id.clone());
                    break 'pages;
                }
                letters.push(LetterView::from(l));
            }
        }
    }
    let summary = dead_letters::walk(
        &mut c,
        &streams,
        &selection,
        Change::None,
        now,
        SUMMARY_READ,
        |_| {},
    )
    .await?;
    Ok(Json(LetterPage {
        total,
        letters,
        next_after,
        by_reason: summary.by_reason,
        summary_read: summary.total,
        summary_complete: summary.total >= total,
    }))
}

/// Which dead letters to replay or discard: exactly one of `ids`, `reason` or `all`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterAction {
    /// These dead letters (at most 1,000 ids).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Every letter whose reason contains this text (case-insensitive).
    #[serde(default)]
    pub reason: Option<String>,
    /// Every letter.
    #[serde(default)]
    pub all: Option<bool>,
    /// Report what would change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl LetterAction {
    /// The selection it names, and how to say it in the audit log.
    fn selection(self) -> ApiResult<(Selection, String)> {
        match (self.ids, self.reason, self.all) {
            (Some(ids), None, None) => {
                if ids.is_empty() || ids.len() > MAX_IDS {
                    return Err(ApiError::bad("ids", "give 1 to 1000 dead-letter ids"));
                }
                let ids: BTreeSet<String> = ids
                    .iter()
                    .map(|id| stream_id(id, "ids"))
                    .collect::<ApiResult<_>>()?;
                let said = match ids.len() {
                    1 => format!("dead letter {}", ids.first().map_or("", String::as_str)),
                    n => format!("{n} named dead letters"),
                };
                Ok((
                    Selection {
                        ids: Some(ids),
                        ..Selection::default()
                    },
                    said,
                ))
            }
            (None, Some(reason), None) => {
                let reason = reason_text(Some(reason))?;
                let said = format!("dead letters whose reason contains {reason:?}");
                Ok((
                    Selection {
                        reason,
                        ..Selection::default()
                    },
                    said,
                ))
            }
            (None, None, Some(true)) => Ok((Selection::default(), "every dead letter".to_owned())),
            _ => Err(ApiError::bad(
                "body",
                "give exactly one of {\"ids\": [...]}, {\"reason\": \"...\"} or {\"all\": true}",
            )),
        }
    }
}

fn action_body(
    parsed: Result<Json<LetterAction>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<LetterAction> {
    parsed
        .map(|Json(b)| b)
        .map_err(|e| ApiError::bad("body", format!("expected a JSON selection: {}", e.body_text())))
}

async fn change_letters(state: &AppState, body: LetterAction, change: Change) -> ApiResult<Json<Summary>> {
    let (action, verb) = if change == Change::Replay {
        ("replay", "replayed")
    } else {
        ("discard", "discarded")
    };
    let dry_run = body.dry_run;
    let (selection, said) = body.selection()?;
    let mut c = state.redis_manager().await?;
    let streams = if change == Change::Replay && !dry_run {
        state.event_streams_for_writing(&mut c).await?
    } else {
        state.event_streams(&mut c).await?
    };
    let mut not_replayable = 0u64;
    let mut summary = dead_letters::walk(
        &mut c,
        &streams,
        &selection,
        if dry_run { Change::None } else { change },
        now_millis(),
        u64::MAX,
        |l| not_replayable += u64::from(!l.replayable()),
    )
    .await?;
    if change == Change::Replay {
        summary.not_replayable = not_replayable;
    }
    if !dry_run {
        let detail = format!("{} {verb} of {} matched", summary.changed, summary.matched);
        audit(state, action, &said, detail).await;
    }
    Ok(Json(summary))
}

/// `POST /api/admin/dead-letters/replay` `{ids | reason | all, dry_run?}`: puts the letters back on
/// the events stream (after their cause is fixed); an event replayed twice is stored once.
#[utoipa::path(post, path = "/api/admin/dead-letters/replay", tag = "admin",
    security(("admin_token" = [])), request_body = LetterAction,
    responses((status = 200, body = Summary), AdminErrors))]
pub async fn replay(
    State(state): State<AppState>,
    parsed: Result<Json<LetterAction>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Summary>> {
    change_letters(&state, action_body(parsed)?, Change::Replay).await
}

/// `POST /api/admin/dead-letters/discard` `{ids | reason | all, dry_run?}`: deletes the letters.
#[utoipa::path(post, path = "/api/admin/dead-letters/discard", tag = "admin",
    security(("admin_token" = [])), request_body = LetterAction,
    responses((status = 200, body = Summary), AdminErrors))]
pub async fn discard(
    State(state): State<AppState>,
    parsed: Result<Json<LetterAction>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Summary>> {
    change_letters(&state, action_body(parsed)?, Change::Discard).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stream_ids_pass() {
        assert!(stream_id("1700000000000-0", "after").is_ok());
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1700000000000",
            "1-x",
            "+",
            "1-2-3",
            &"9".repeat(60),
        ] {
            assert!(stream_id(bad, "after").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_selection_names_exactly_one_thing() {
        let parse = |j: &str| serde_json::from_str::<LetterAction>(j).map_err(|e| e.to_string());
        for ok in [
            r#"{"ids": ["1-0", "2-5"]}"#,
            r#"{"reason": "Too Large"}"#,
            r#"{"all": true, "dry_run": true}"#,
        ] {
            assert!(parse(ok).unwrap().selection().is_ok(), "{ok}");
        }
        for bad in [
            "{}",
            r#"{"all": false}"#,
            r#"{"ids": []}"#,
            r#"{"ids": ["1-0"], "all": true}"#,
            r#"{"reason": "x", "all": true}"#,
            r#"{"reason": "   "}"#,
            r#"{"ids": ["1-0", "nope"]}"#,
        ] {
            assert!(parse(bad).unwrap().selection().is_err(), "{bad}");
        }
        assert!(parse(r#"{"all": true, "extra": 1}"#).is_err());
        let many = serde_json::json!({ "ids": vec!["1-0"; MAX_IDS + 1] }).to_string();
        assert!(parse(&many).unwrap().selection().is_err());
        let (s, _) = parse(r#"{"reason": " Too Large "}"#)
            .unwrap()
            .selection()
            .unwrap();
        assert_eq!(s.reason.as_deref(), Some("too large"));
    }
}
