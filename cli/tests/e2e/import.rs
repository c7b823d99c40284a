//! `dvmdash import` as an operator runs it: a one-million-event DVMDash-style archive (one JSON
//! array) imported with progress reporting, then imported again without changing any number; and a
//! JSON Lines file with junk, forgeries and repeats, interrupted and resumed from its checkpoint.

use dvmdash_testkit as common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dvmdash_core::config::RedisArgs;
use dvmdash_core::validate::Keys;
use dvmdash_testkit::{isolated, wait_until};

/// Writes `n` distinct signed events (requests, results and feedback over the last 60 days) as a
/// JSON array; returns the number of each role.
fn write_archive(path: &Path, n: usize) -> [usize; 3] {
    let now = dvmdash_core::telemetry::now_secs();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let per = n.div_ceil(threads);
    let parts: Vec<(String, [usize; 3])> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let customer = Keys::from_seed(format!("import-customer-{t}").as_bytes());
                    let dvm = Keys::from_seed(format!("import-dvm-{t}").as_bytes());
                    let mut out = String::with_capacity(per * 420);
                    let mut roles = [0usize; 3];
                    let mut last_request = String::new();
                    for i in t * per..((t + 1) * per).min(n) {
                        let created = now - 60 * 86_400 + (i as u64 * 5_184_000 / n as u64);
                        let e = match i % 3 {
                            0 => {
                                let r = customer.sign(
                                    created,
                                    5300,
                                    vec![vec!["p".into(), dvm.pubkey_hex().into()]],
                                    format!("req {i}"),
                                );
                                last_request = r.id.clone();
                                r
                            }
                            1 => dvm.sign(
                                created,
                                6300,
                                vec![vec!["e".into(), last_request.clone()]],
                                format!("res {i}"),
                            ),
                            _ => dvm.sign(
                                created,
                                7000,
                                vec![
                                    vec!["e".into(), last_request.clone()],
                                    vec!["status".into(), "success".into()],
                                ],
                                String::new(),
                            ),
                        };
                        roles[i % 3] += 1;
                        out.push_str(&e.to_json());
                        out.push_str(",\n");
                    }
                    (out, roles)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect()
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("archive"));
    f.write_all(b"[\n").expect("write");
    let mut roles = [0usize; 3];
    let mut body = String::new();
    for (text, r) in parts {
        body.push_str(&text);
        for k in 0..3 {
            roles[k] += r[k];
        }
    }
    let body = body.trim_end().trim_end_matches(',');
    f.write_all(body.as_bytes()).expect("write");
    f.write_all(b"\n]\n").expect("write");
    f.flush().expect("flush");
    roles
}

fn import(redis: &RedisArgs, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dvmdash"))
        .arg("import")
        .args(args)
        .env("REDIS_URL", redis.redis_url.expose())
        .env("DVMDASH_REDIS_PREFIX", &redis.redis_prefix)
        .env("DVMDASH_IMPORT_STATE_DIR", state)
        .env("DVMDASH_LOG", "info")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run dvmdash import")
}

async fn stored(stack: &common::Stack) -> (u64, u64) {
    stack
        .clickhouse
        .client()
        .query("SELECT count(), uniqExact(event_id) FROM events_raw")
        .fetch_one::<(u64, u64)>()
        .await
        .expect("count")
}

async fn monthly(stack: &common::Stack) -> dvmdash_core::dto::MonthlyHistory {
    common::get_json(&format!("{}/api/history/monthly", stack.base))
        .await
        .0
        .expect("history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_million_event_archive_imports_once_and_again_changes_nothing() {
    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, Vec::new())).await;
    let dir = tempfile::tempdir().expect("tmp");
    let archive = dir.path().join("dvm_data_2026_nov.json");
    let started = Instant::now();
    const N: usize = 1_000_000;
    let roles = write_archive(&archive, N);
    eprintln!("archive of {N} events written in {:?}", started.elapsed());

    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let (s, d, a) = (stack.redis.clone(), dir.path().join("state"), archive.clone());
        move || import(&s, &d, &[a.to_str().expect("path")])
    })
    .await
    .expect("import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import failed: {stdout}\n{stderr}");
    eprintln!("first import in {:?}: {}", started.elapsed(), stdout.trim());
    assert!(
        stdout.contains(&format!("{N} accepted, 0 duplicates, 0 rejected")),
        "{stdout}"
    );
    // Without a terminal the progress bar becomes periodic progress lines.
    assert!(
        stderr.contains("import progress") && stderr.contains("import finished"),
        "{stderr}"
    );

    wait_until(
        "every imported event to be stored",
        Duration::from_secs(600),
        || async {
            let (rows, distinct) = stored(&stack).await;
            if distinct as usize == N {
                Ok(())
            } else {
                Err(format!("{rows} rows, {distinct} distinct"))
            }
        },
    )
    .await;
    assert_eq!(
        stored(&stack).await,
        (N as u64, N as u64),
        "no event stored twice"
    );
    let history = monthly(&stack).await;
    let total = |h: &dvmdash_core::dto::MonthlyHistory| {
        h.months.iter().fold([0u64; 3], |a, m| {
            [a[0] + m.requests, a[1] + m.results, a[2] + m.feedback]
        })
    };
    assert_eq!(
        total(&history),
        [roles[0] as u64, roles[1] as u64, roles[2] as u64]
    );

    // A second import of the same archive (from scratch) stores nothing new.
    let out = tokio::task::spawn_blocking({
        let (s, d, a) = (stack.redis.clone(), dir.path().join("state"), archive.clone());
        move || import(&s, &d, &["--restart", a.to_str().expect("path")])
    })
    .await
    .expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the replay to be consumed", Duration::from_secs(600), || async {
        let mut c = stack.redis_conn().await;
        let info = dvmdash_core::stream::EventStream::new(&stack.redis.names())
            .group_info(&mut c)
            .await
            .expect("info");
        let backlog = info.lag.unwrap_or(0) + info.pending;
        if backlog == 0 {
            Ok(())
        } else {
            Err(format!("{backlog} entries waiting"))
        }
    })
    .await;
    assert_eq!(
        stored(&stack).await,
        (N as u64, N as u64),
        "the replay stored nothing"
    );
    wait_until("history to settle", Duration::from_secs(10), || async {
        let h = monthly(&stack).await;
        if h == history {
            Ok(())
        } else {
            Err("history changed".into())
        }
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_json_lines_import_resumes_and_counts_every_line() {
    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, Vec::new())).await;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.jsonl");
    let keys = Keys::from_seed(b"jsonl-import");
    let now = dvmdash_core::telemetry::now_secs();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let mut valid = 0u64;
    for i in 0..60_000u64 {
        let e = keys.sign(now - 86_400 + i, 5050, vec![], format!("line {i}"));
        writeln!(f, "{}", e.to_json()).expect("write");
        valid += 1;
        match i % 1000 {
            // A repeat of the previous line.
            1 => writeln!(f, "{}", e.to_json()).expect("write"),
            // A forgery: content changed after signing.
            2 => {
                let mut bad = e.clone();
                bad.content.push('!');
                writeln!(f, "{}", bad.to_json()).expect("write");
            }
            // Junk between events.
            3 => writeln!(f, "not json at all").expect("write"),
            _ => {}
        }
    }
    f.flush().expect("flush");
    drop(f);

    // Start, interrupt once a checkpoint exists, resume.
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvmdash"))
        .arg("import")
        .arg(&path)
        .arg("--batch")
        .arg("500")
        .env("REDIS_URL", stack.redis.redis_url.expose())
        .env("DVMDASH_REDIS_PREFIX", &stack.redis.redis_prefix)
        .env("DVMDASH_IMPORT_STATE_DIR", &state)
        .env("DVMDASH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("import");
    wait_until("a checkpoint", Duration::from_secs(60), || async {
        let has = std::fs::read_dir(&state).map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        });
        if has.unwrap_or(false) {
            Ok(())
        } else {
            Err("none yet".into())
        }
    })
    .await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("SIGINT");
    let status = child.wait().expect("wait");
    eprintln!("interrupted import exited with {status}");
    let out = tokio::task::spawn_blocking({
        let (s, d, p) = (stack.redis.clone(), state.clone(), path.clone());
        move || import(&s, &d, &[p.to_str().expect("path")])
    })
    .await
    .expect("import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Repeats are recognised within one run; a repeat whose first copy came before the resume point
    // counts as accepted here, and the ingester's gate then skips it.
    let count = |word: &str| -> u64 {
        let i = stdout
            .find(&format!(" {word}"))
            .unwrap_or_else(|| panic!("no {word} in {stdout}"));
        stdout[..i]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("accepted") + count("duplicates"), valid + 60, "{stdout}");
    assert!(count("duplicates") >= 59, "{stdout}");
    assert!(stdout.contains("120 rejected"), "{stdout}");
    assert!(
        stdout.contains("\"bad_id\": 60") && stdout.contains("\"malformed\": 60"),
        "{stdout}"
    );

    wait_until(
        "every valid line to be stored",
        Duration::from_secs(120),
        || async {
            let (_, distinct) = stored(&stack).await;
            if distinct == valid {
                Ok(())
            } else {
                Err(format!("{distinct} of {valid}"))
            }
        },
    )
    .await;
    assert_eq!(stored(&stack).await, (valid, valid));
    stack.stop().await;
}
