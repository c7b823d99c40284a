//! `dvmdash import PATH|URL…`: backfills DVMDash's monthly archives (one JSON array of raw events,
//! streamed, never loaded whole) and JSON Lines files, from disk or HTTP(S).
//!
//! Every event is verified like the collector does (`core/src/validate.rs`) and appended to the
//! same Redis stream, so the ingester's exactly-once gate makes a repeated import change nothing.
//! Reading, verification (on every core, batches in flight kept in order) and writing overlap.
//! The writer pauses while the ingesters' backlog is high, so the stream's length cap never trims
//! an entry before it was read. A checkpoint (byte offset after the last written event) lets an
//! interrupted import resume; the summary counts accepted, duplicate and rejected-by-reason events.
//!
//! - [`splitter`] - top-level JSON objects out of a byte stream
//! - [`source`] - files and HTTP(S) downloads, with resume offsets

pub mod source;
pub mod splitter;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dvmdash_core::config::{EventArgs, RedisArgs};
use dvmdash_core::stream::NewEntry;
use dvmdash_core::stream_shards::EventStreams;
use dvmdash_core::telemetry::{now_millis, now_secs};
use dvmdash_core::validate::{Rejection, Validator};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use splitter::{Element, Splitter};

/// Import flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Files or http(s) URLs: JSON arrays of events (DVMDash archives) or JSON Lines.
    #[arg(required_unless_present = "dvmdash_months")]
    pub sources: Vec<String>,
    /// DVMDash's published monthly archives to import, as YYYY-MM (e.g. 2025-01).
    #[arg(long = "dvmdash-month", value_delimiter = ',')]
    pub dvmdash_months: Vec<String>,
    /// Where resume checkpoints are kept.
    #[arg(long, env = "DVMDASH_IMPORT_STATE_DIR", default_value = ".dvmdash-import")]
    pub state_dir: PathBuf,
    /// Ignore existing checkpoints and start every source from the beginning.
    #[arg(long)]
    pub restart: bool,
    /// Pause while this many stream entries wait for the ingesters.
    #[arg(long, env = "DVMDASH_IMPORT_MAX_BACKLOG", default_value_t = 200_000)]
    pub max_backlog: u64,
    /// Events per verification batch and stream write.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
}

/// DVMDash's archive URL for a month (`2025-01` -> `.../dvm_data_2025_jan.json`).
pub fn dvmdash_archive_url(month: &str) -> anyhow::Result<String> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let (y, m) = month.split_once('-').context("months are YYYY-MM")?;
    let year: u16 = y.parse().context("bad year")?;
    let m: usize = m.parse().context("bad month")?;
    anyhow::ensure!(
        (2023..=2100).contains(&year) && (1..=12).contains(&m),
        "month {month:?} out of range"
    );
    Ok(format!(
        "https://dvmdashbucket.nyc3.cdn.digitaloceanspaces.com/dvm_data_{year}_{}.json",
        MONTHS[m - 1]
    ))
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub accepted: u64,
    /// Repeats of an event already seen in this import.
    pub duplicates: u64,
    pub rejected: BTreeMap<String, u64>,
    pub bytes: u64,
    /// Whether the input ended in the middle of an element.
    pub truncated: bool,
}

impl Summary {
    fn add(&mut self, o: &Summary) {
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        for (k, v) in &o.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        self.bytes += o.bytes;
        self.truncated |= o.truncated;
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// A resume point, stored after every successful stream write.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    source: String,
    /// Offset just after the last element written to the stream.
    offset: u64,
    summary: Summary,
    done: bool,
}

fn checkpoint_path(dir: &std::path::Path, source: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    dir.join(format!(
        "{}.json",
        &hex::encode(Sha256::digest(source.as_bytes()))[..16]
    ))
}

/// Imports every source in turn. Interrupted by `shutdown`, it stops after the batch in flight,
/// keeping its checkpoint.
pub async fn run(
    args: ImportArgs,
    events: EventArgs,
    redis: RedisArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    anyhow::ensure!((1..=100_000).contains(&args.batch), "batch must be 1..=100000");
    anyhow::ensure!(args.max_backlog >= 1000, "max backlog must be at least 1000");
    events.validate()?;
    let mut sources = args.sources.clone();
    for m in &args.dvmdash_months {
        sources.push(dvmdash_archive_url(m)?);
    }
    std::fs::create_dir_all(&args.state_dir).with_context(|| {
        format!(
            "cannot create the checkpoint directory {}",
            args.state_dir.display()
        )
    })?;
    let Some(mut conn) = redis.connect(&shutdown).await? else {
        return Ok(Summary::default());
    };
    let streams = redis
        .event_streams(&mut conn)
        .await
        .context("cannot write to the events stream")?;
    let validator = Arc::new(events.validator());
    let mut total = Summary::default();
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    for source in sources {
        if shutdown.is_cancelled() {
            break;
        }
        let s = import_one(
            &args,
            &source,
            validator.clone(),
            conn.clone(),
            &streams,
            &mut seen,
            &shutdown,
        )
        .await
        .with_context(|| format!("importing {source}"))?;
        total.add(&s);
    }
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
async fn import_one(
    args: &ImportArgs,
    source: &str,
    validator: Arc<Validator>,
    mut conn: redis::aio::ConnectionManager,
    streams: &EventStreams,
    seen: &mut HashSet<[u8; 16]>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Summary> {
    let cp_path = checkpoint_path(&args.state_dir, source);
    let mut cp: Checkpoint = match std::fs::read(&cp_path) {
        Ok(b) if !args.restart => serde_json::from_slice(&b).unwrap_or_default(),
        _ => Checkpoint::default(),
    };
    if cp.done {
        info!(source, "already imported (use --restart to import it again)");
        return Ok(cp.summary);
    }
    cp.source = source.to_owned();
    let mut input = source::open(source, cp.offset).await?;
    if cp.offset > 0 {
        info!(source, offset = cp.offset, "resuming");
    }
    let progress = Progress::new(source, input.total_len, cp.offset);
    let relay = format!("import:{}", dvmdash_core::nip90::truncate(source, 200));
    let mut splitter = Splitter::new(validator.max_event_bytes + 1, cp.offset);
    let started = Instant::now();
    let mut summary = cp.summary.clone();

    // Verification batches in flight, in input order.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio::task::JoinHandle<Verified>>(4);
    let batch_size = args.batch;
    let reader_stop = shutdown.clone();
    let reader = tokio::spawn(async move {
        let mut pending: Vec<Element> = Vec::new();
        let mut truncated = false;
        let mut bytes_read = 0u64;
        loop {
            if reader_stop.is_cancelled() {
                break;
            }
            let chunk = match input.next_chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    truncated = splitter.finish(&mut pending);
                    break;
                }
                Err(err) => return Err(err),
            };
            bytes_read += chunk.len() as u64;
            splitter.push(&chunk, &mut pending);
            while pending.len() >= batch_size {
                let batch: Vec<Element> = pending.drain(..batch_size).collect();
                let v = validator.clone();
                if tx
                    .send(tokio::task::spawn_blocking(move || verify(batch, &v)))
                    .await
                    .is_err()
                {
                    return Ok((bytes_read, truncated));
                }
            }
        }
        if !pending.is_empty() {
            let v = validator.clone();
            let _ = tx
                .send(tokio::task::spawn_blocking(move || verify(pending, &v)))
                .await;
        }
        Ok::<_, anyhow::Error>((bytes_read, truncated))
    });

    let mut last_checkpoint = Instant::now();
    while let Some(handle) = rx.recv().await {
        let batch = handle.await.context("verification panicked")?;
        let mut fresh = Vec::with_capacity(batch.accepted.len());
        for (key, json) in batch.accepted {
            if seen.insert(key) {
                fresh.push((key, json));
            } else {
                summary.duplicates += 1;
            }
        }
        for (reason, n) in batch.rejected {
            *summary.rejected.entry(reason.to_owned()).or_default() += n;
        }
        wait_for_backlog(&mut conn, streams, args.max_backlog, &progress, shutdown).await?;
        write(&mut conn, streams, &relay, &fresh, shutdown).await?;
        summary.accepted += fresh.len() as u64;
        if let Some(end) = batch.end {
            cp.offset = end;
        }
        progress.update(cp.offset, &summary);
        if last_checkpoint.elapsed() > Duration::from_secs(1) {
            cp.summary = summary.clone();
            save(&cp_path, &cp)?;
            last_checkpoint = Instant::now();
        }
    }
    let (bytes_read, truncated) = reader.await.context("reader panicked")??;
    summary.bytes += bytes_read;
    summary.truncated = truncated;
    cp.summary = summary.clone();
    cp.done = !shutdown.is_cancelled();
    save(&cp_path, &cp)?;
    progress.finish(&summary, started.elapsed());
    if truncated {
        warn!(source, "input ended inside an event; that event was not imported");
    }
    Ok(summary)
}

fn save(path: &std::path::Path, cp: &Checkpoint) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(cp)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One verified batch: accepted events (id prefix, JSON), rejects by reason, and the input offset
/// after its last element.
struct Verified {
    accepted: Vec<([u8; 16], String)>,
    rejected: BTreeMap<&'static str, u64>,
    end: Option<u64>,
}

fn verify(batch: Vec<Element>, v: &Validator) -> Verified {
    let now = now_secs();
    let mut out = Verified {
        accepted: Vec::with_capacity(batch.len()),
        rejected: BTreeMap::new(),
        end: None,
    };
    for el in batch {
        let (result, end) = match el {
            Element::Object { bytes, end } => {
                let r = match String::from_utf8(bytes) {
                    Ok(text) => v.verify(&text, now).map(|ok| {
                        let mut key = [0u8; 16];
                        key.copy_from_slice(&ok.id[..16]);
                        (key, text)
                    }),
                    Err(_) => Err(Rejection::Malformed),
                };
                (r, end)
            }
            Element::Junk { end } => (Err(Rejection::Malformed), end),
            Element::TooLarge { end } => (Err(Rejection::TooLarge), end),
        };
        out.end = Some(end);
        match result {
            Ok(a) => out.accepted.push(a),
            Err(r) => *out.rejected.entry(r.as_str()).or_default() += 1,
        }
    }
    out
}

/// Appends events (id prefix, JSON) to their shards of the stream (pipelined, capped like the
/// collectors'; the backlog pause keeps the import far below the cap), retrying while Redis is
/// unavailable.
async fn write(
    conn: &mut redis::aio::ConnectionManager,
    streams: &EventStreams,
    relay: &str,
    events: &[([u8; 16], String)],
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let seen_ms = now_millis();
    let ids: Vec<String> = events.iter().map(|(key, _)| hex::encode(&key[..2])).collect();
    let entries: Vec<NewEntry<'_>> = events
        .iter()
        .zip(&ids)
        .map(|((_, json), id)| NewEntry {
            id_hex: id,
            json,
            relay,
            seen_ms,
        })
        .collect();
    let mut delay = Duration::from_millis(200);
    loop {
        match streams.append_each(conn, &entries).await {
            Ok(_) => return Ok(()),
            Err(err) => warn!(error = %err, "stream write failed, retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("interrupted while Redis was unavailable"),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Waits while more than `max` entries wait for the ingesters.
async fn wait_for_backlog(
    conn: &mut redis::aio::ConnectionManager,
    streams: &EventStreams,
    max: u64,
    progress: &Progress,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut warned = false;
    loop {
        let info = streams.group_info(conn).await;
        let backlog = match info {
            // No consumer group yet: nothing reads the stream, so everything is backlog.
            Ok(i) => i.lag.unwrap_or(i.length) + i.pending,
            Err(_) => return Ok(()),
        };
        if backlog <= max {
            return Ok(());
        }
        if !warned {
            progress.note(&format!("waiting for the ingesters: {backlog} entries queued"));
            warned = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("interrupted while waiting for the ingesters"),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// A progress bar on a terminal; periodic log lines otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    tty: bool,
    source: String,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(source: &str, total: Option<u64>, start: u64) -> Self {
        use std::io::IsTerminal as _;
        let tty = std::io::stderr().is_terminal();
        let bar = match total {
            Some(t) if tty => indicatif::ProgressBar::new(t),
            None if tty => indicatif::ProgressBar::new_spinner(),
            _ => indicatif::ProgressBar::hidden(),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_position(start);
        Progress {
            bar,
            tty,
            source: source.to_owned(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn update(&self, offset: u64, s: &Summary) {
        self.bar.set_position(offset);
        self.bar.set_message(format!(
            "{} accepted, {} duplicate, {} rejected",
            s.accepted,
            s.duplicates,
            s.rejected_total()
        ));
        if !self.tty
            && let Ok(mut last) = self.last_line.lock()
            && last.elapsed() > Duration::from_secs(5)
        {
            *last = Instant::now();
            info!(
                source = %self.source,
                bytes = offset,
                accepted = s.accepted,
                duplicates = s.duplicates,
                rejected = s.rejected_total(),
                "import progress"
            );
        }
    }

    fn note(&self, msg: &str) {
        if self.tty {
            self.bar.println(msg);
        } else {
            info!(source = %self.source, "{msg}");
        }
    }

    fn finish(&self, s: &Summary, elapsed: Duration) {
        self.bar.finish_and_clear();
        let total = s.accepted + s.duplicates + s.rejected_total();
        let rate = total as f64 / elapsed.as_secs_f64().max(0.001);
        info!(source = %self.source, accepted = s.accepted, duplicates = s.duplicates, rejected = s.rejected_total(),
              events_per_sec = rate as u64, "import finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvmdash_archive_urls() {
        assert_eq!(
            dvmdash_archive_url("2025-01").unwrap(),
            "https://dvmdashbucket.nyc3.cdn.digitaloceanspaces.com/dvm_data_2025_jan.json"
        );
        assert!(dvmdash_archive_url("2025-13").is_err());
        assert!(dvmdash_archive_url("jan").is_err());
    }

    #[test]
    fn verification_counts_every_element() {
        use dvmdash_core::validate::Keys;
        let k = Keys::from_seed(b"import");
        let good = k.sign(now_secs() - 10, 5300, vec![], String::new()).to_json();
        let mut forged = k.sign(now_secs() - 10, 5300, vec![], "x".into());
        forged.content = "y".into();
        let batch = vec![
            Element::Object {
                bytes: good.into_bytes(),
                end: 10,
            },
            Element::Object {
                bytes: forged.to_json().into_bytes(),
                end: 20,
            },
            Element::Object {
                bytes: vec![0xff, 0xfe],
                end: 30,
            },
            Element::Junk { end: 40 },
            Element::TooLarge { end: 50 },
        ];
        let v = verify(batch, &Validator::default());
        assert_eq!(v.accepted.len(), 1);
        assert_eq!(v.rejected.get("bad_id"), Some(&1));
        assert_eq!(v.rejected.get("malformed"), Some(&2));
        assert_eq!(v.rejected.get("too_large"), Some(&1));
        assert_eq!(v.end, Some(50));
    }
}
