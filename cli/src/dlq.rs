//! `dvmdash dlq list|replay|discard`: the dead-letter stream from the command line, so recovery
//! after a fix is one command and never a redis-cli recipe.
//!
//! Every action pages through the dead-letter stream oldest first and applies the same filters
//! (reason, age). `replay` puts entries back on the events stream as they were and removes them
//! from the dead-letter stream, each on its event's shard (`EventStreams::replay_dead_letters`); the ingester's exactly-once
//! gate makes replaying an event twice count it once. `--dry-run` only reports.

use std::time::Duration;

use anyhow::Context as _;
use dvmdash_core::config::RedisArgs;
pub use dvmdash_core::dead_letters::Summary;
use dvmdash_core::dead_letters::{self, Change, LetterView, Selection};
use dvmdash_core::telemetry::now_millis;

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
    fn selection(&self) -> Selection {
        Selection {
            reason: self.reason.clone(),
            older_than: self.older_than,
            newer_than: self.newer_than,
            ids: None,
        }
    }
}

/// Runs one action and prints its report to stdout.
pub async fn run(args: DlqArgs, redis: RedisArgs) -> anyhow::Result<Summary> {
    let client = redis.client()?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("cannot reach Redis")?;
    // A replay writes to the stream, so the shard count must be the deployment's.
    let streams = redis.event_streams(&mut conn).await?;
    let (filter, change) = match &args.action {
        DlqAction::List { filter, .. } => (filter, Change::None),
        DlqAction::Replay { filter, dry_run } => {
            (filter, if *dry_run { Change::None } else { Change::Replay })
        }
        DlqAction::Discard { filter, dry_run } => {
            (filter, if *dry_run { Change::None } else { Change::Discard })
        }
    };
    let (limit, json) = match &args.action {
        DlqAction::List { limit, json, .. } => (*limit, *json),
        _ => (0, false),
    };
    if matches!(args.action, DlqAction::List { json: false, .. }) {
        println!(
            "{:<21}  {:<20}  {:<22}  reason",
            "dead letter", "when (UTC)", "event"
        );
    }
    let mut shown = 0u64;
    let mut printed = Ok(());
    let mut would_not_replay = 0u64;
    let mut summary = dead_letters::walk(
        &mut conn,
        &streams,
        &filter.selection(),
        change,
        now_millis(),
        u64::MAX,
        |l| {
            if shown < limit && printed.is_ok() {
                printed = print_row(&LetterView::from(l), json);
                shown += 1;
            }
            would_not_replay += u64::from(!l.replayable());
        },
    )
    .await
    .context("walking the dead-letter stream")?;
    printed?;
    if let DlqAction::Replay { dry_run: true, .. } = args.action {
        summary.not_replayable = would_not_replay;
    }
    print_summary(&args.action, &summary);
    Ok(summary)
}

fn print_row(r: &LetterView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
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

    #[test]
    fn reasons_must_be_reasonable() {
        assert_eq!(parse_reason(" Sig ").as_deref(), Ok("sig"));
        assert!(parse_reason("   ").is_err());
        assert!(parse_reason(&"x".repeat(201)).is_err());
    }
}
