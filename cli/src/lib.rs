//! The `dvmdash` command: one binary, a subcommand per role.
//!
//! - [`stack`] - `all` (every role in one process, ordered shutdown), used by the end-to-end tests
//! - [`bench`] - the performance benchmarks of docs/performance.md
//! - [`demo`] - in-process relays + simulated traffic + the whole stack
//! - [`import`] - backfill from DVMDash archives and JSON Lines, verified, resumable
//! - [`simulate`] - the traffic model and publisher
//! - [`signals`] - Ctrl-C / SIGTERM handling

pub mod bench;
pub mod demo;
pub mod dlq;
pub mod import;
pub mod signals;
pub mod simulate;
pub mod stack;
