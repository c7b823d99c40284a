//! dvmdash's integration and end-to-end tests, one module per subject, linked into one test binary:
//! each binary links the whole stack, so one of them instead of sixteen saves minutes of linking and
//! gigabytes of disk, and the two test threads stay busy across subjects instead of idling at the
//! end of each file. Run one subject with `cargo test -p dvmdash --test e2e pipeline::`.
//!
//! Every test needs the services `scripts/test.sh` starts (`dvmdash_testkit::env`); each works in
//! its own Redis key prefix and ClickHouse database, or on private servers it starts, so subjects
//! never see each other's data.

mod admin_console;
mod api_ops;
mod bench;
mod browser;
mod clickhouse_standin;
mod dashboard;
mod dashboards;
mod directory;
mod dlq;
mod faults;
mod health;
mod import;
mod job_ledger;
mod lease;
mod pipeline;
mod prometheus;
mod settings;
mod shards;
mod statistics;
