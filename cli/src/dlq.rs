//! `dvmdash dlq list|replay|discard`: the dead-letter stream from the command line, so recovery
//! after a fix is one command and never a redis-cli recipe.
//!
//! Every action pages through the dead-letter stream oldest first and applies the same filters
//! (reason, age). `replay` puts entries back on the events stream as they were and removes them
//! from the dead-letter stream (`EventStream::replay_dead_letters`); the ingester's exactly-once
//! gate makes replaying an event twice count it once. `--dry-run` only reports.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use dvmdash_core::config::RedisArgs;
use dvmdash_core::stream::{DeadLetter, EventStream};
use dvmdash_core::telemetry::now_millis;
use serde::Serialize;

/// Dead letters read per round trip.
const PAGE: usize = 500;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub action: DlqAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqAction {
    /// Show dead letters with their reasons, oldest first, and a count per reason.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Most letters to show (the counts cover all matches).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        limit: u64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put matching dead letters back on the events stream (after fixing their cause).
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Report what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete matching dead letters for good.
    Discard {
        #[command(flatten)]
        filter: Filter,
        /// Report what would be discarded; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters an action applies to; all of them when no filter is given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Only letters whose reason contains this text (case-insensitive).
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<String>,
    /// Only letters dead-lettered at least this long ago (`90s`, `15m`, `2h`, `3d`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Only letters dead-lettered at most this long ago.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub newer_than: Option<Duration>,
}

fn parse_reason(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 200 {
        return Err("give 1 to 200 characters of the reason".to_owned());
    }
    Ok(s.to_lowercase())
}

impl Filter {
    pub fn matches(&self, l: &DeadLetter, now_ms: u64) -> bool {
        let age = Duration::from_millis(now_ms.saturating_sub(l.at_ms().unwrap_or(0)));
        self.reason
            .as_ref()
            .is_none_or(|r| l.reason.to_lowercase().contains(r))
            && self.older_than.is_none_or(|d| age >= d)
            && self.newer_than.is_none_or(|d| age <= d)
    }
}

/// What an action found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Dead letters read.
    pub total: u64,
    /// Of those, the ones the filters matched, per reason.
    pub matched: u64,
    pub by_reason: BTreeMap<String, u64>,
    /// Replayed or discarded (0 on a dry run or a list).
    pub changed: u64,
    /// Matched but with nothing to put back (trimmed before they were read): they stay.
    pub not_replayable: u64,
}

/// One dead letter as `list --json` prints it.
#[derive(Debug, Serialize)]
struct Row<'a> {
    id: &'a str,
    original_id: &'a str,
    reason: &'a str,
    dead_lettered_at: String,
    relay: Option<String>,
    event_id: Option<String>,
    kind: Option<u64>,
    sightings: bool,
}

fn row(l: &DeadLetter) -> Row<'_> {
    let event: Option<serde_json::Value> = l
        .fields
        .event
        .as_deref()
        .and_then(|e| serde_json::from_slice(e).ok());
    Row {
        id: &l.id,
        original_id: &l.original_id,
        reason: &l.reason,
        dead_lettered_at: dvmdash_core::dto::rfc3339(l.at_ms().unwrap_or(0) / 1000),
        relay: l
            .fields
            .relay
            .as_deref()
            .map(|r| String::from_utf8_lossy(r).into_owned()),
        event_id: event
            .as_ref()
            .and_then(|e| e.get("id")?.as_str().map(str::to_owned)),
        kind: event.as_ref().and_then(|e| e.get("kind")?.as_u64()),
        sightings: l.fields.sightings.is_some(),
    }
}

/// Runs one action and prints its report to stdout.
pub async fn run(args: DlqArgs, redis: RedisArgs) -> anyhow::Result<Summary> {
    let client = redis.client()?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("cannot reach Redis")?;
    let stream = EventStream::new(&redis.names());
    let now = now_millis();
    let mut summary = Summary::default();
    let mut shown = 0u64;
    let mut after: Option<String> = None;
    let until = stream
        .last_dead_letter_id(&mut conn)
        .await
        .context("reading the dead-letter stream")?;
    if let DlqAction::List { json: false, .. } = &args.action {
        println!(
            "{:<21}  {:<20}  {:<22}  reason",
            "dead letter", "when (UTC)", "event"
        );
    }
    while let Some(until) = until.as_deref() {
        let page = stream
            .dead_letter_page(&mut conn, after.as_deref(), until, PAGE)
            .await
            .context("reading the dead-letter stream")?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        summary.total += page.len() as u64;
        let (filter, changing) = match &args.action {
            DlqAction::List { filter, .. } => (filter, None),
            DlqAction::Replay { filter, dry_run } => (filter, Some((true, *dry_run))),
            DlqAction::Discard { filter, dry_run } => (filter, Some((false, *dry_run))),
        };
        let matched: Vec<DeadLetter> = page.into_iter().filter(|l| filter.matches(l, now)).collect();
        for l in &matched {
            summary.matched += 1;
            *summary.by_reason.entry(l.reason.clone()).or_default() += 1;
        }
        match (&args.action, changing) {
            (DlqAction::List { limit, json, .. }, _) => {
                for l in matched.iter().take(limit.saturating_sub(shown) as usize) {
                    print_row(l, *json)?;
                    shown += 1;
                }
            }
            (_, Some((replay, dry_run))) => {
                let replayable = matched.iter().filter(|l| l.replayable()).count() as u64;
                summary.not_replayable += if replay {
                    matched.len() as u64 - replayable
                } else {
                    0
                };
                if dry_run {
                    continue;
                }
                if replay {
                    let done = stream
                        .replay_dead_letters(&mut conn, &matched)
                        .await
                        .context("replaying dead letters")?;
                    summary.changed += done.len() as u64;
                } else {
                    let ids: Vec<String> = matched.iter().map(|l| l.id.clone()).collect();
                    summary.changed += stream
                        .discard_dead_letters(&mut conn, &ids)
                        .await
                        .context("discarding dead letters")?;
                }
            }
            _ => {}
        }
    }
    print_summary(&args.action, &summary);
    Ok(summary)
}

fn print_row(l: &DeadLetter, json: bool) -> anyhow::Result<()> {
    let r = row(l);
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let what = match (&r.event_id, r.kind, r.sightings) {
        (Some(id), Some(k), _) => format!("{}… kind {k}", &id[..id.len().min(8)]),
        (_, _, true) => "sightings".to_owned(),
        _ => "(not an event)".to_owned(),
    };
    let reason: String = r.reason.chars().take(100).collect();
    println!(
        "{:<21}  {:<20}  {:<22}  {}",
        r.id,
        &r.dead_lettered_at[..r.dead_lettered_at.len().min(20)],
        what,
        reason.escape_debug()
    );
    Ok(())
}

fn print_summary(action: &DlqAction, s: &Summary) {
    let (verb, dry) = match action {
        DlqAction::List { .. } => ("listed", false),
        DlqAction::Replay { dry_run, .. } => ("replayed", *dry_run),
        DlqAction::Discard { dry_run, .. } => ("discarded", *dry_run),
    };
    println!(
        "{} of {} dead letters match{}",
        s.matched,
        s.total,
        if s.by_reason.is_empty() {
            ""
        } else {
            "; by reason:"
        }
    );
    for (reason, n) in &s.by_reason {
        let reason: String = reason.chars().take(100).collect();
        println!("  {n:>7}  {}", reason.escape_debug());
    }
    if !matches!(action, DlqAction::List { .. }) {
        if dry {
            println!("dry run: nothing {verb}");
        } else {
            println!("{} {verb}", s.changed);
        }
        if s.not_replayable > 0 {
            println!(
                "{} hold no event (trimmed before they were read) and stay; discard them once understood",
                s.not_replayable
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::stream::Fields;

    fn letter(id: &str, reason: &str) -> DeadLetter {
        DeadLetter {
            id: id.to_owned(),
            original_id: "1-0".into(),
            reason: reason.to_owned(),
            fields: Fields::default(),
        }
    }

    #[test]
    fn filters_by_reason_and_age() {
        let now = 10_000_000;
        let old = letter("1000000-0", "Invalid signature");
        let new = letter("9990000-0", "not an event: bad JSON");
        let f = Filter {
            reason: Some("signature".into()),
            ..Filter::default()
        };
        assert!(f.matches(&old, now) && !f.matches(&new, now));
        let f = Filter {
            older_than: Some(Duration::from_secs(60)),
            ..Filter::default()
        };
        assert!(f.matches(&old, now) && !f.matches(&new, now));
        let f = Filter {
            newer_than: Some(Duration::from_secs(60)),
            ..Filter::default()
        };
        assert!(!f.matches(&old, now) && f.matches(&new, now));
        assert!(Filter::default().matches(&old, now));
    }

    #[test]
    fn reasons_must_be_reasonable() {
        assert_eq!(parse_reason(" Sig ").as_deref(), Ok("sig"));
        assert!(parse_reason("   ").is_err());
        assert!(parse_reason(&"x".repeat(201)).is_err());
    }
}
