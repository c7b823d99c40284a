//! dvmdash-core: what every dvmdash role shares.
//!
//! - [`event`] - the NIP-01 event and its canonical id
//! - [`kinds`] - kind ranges and roles (request, result, feedback, announcement, ...)
//! - [`nip90`] - lenient NIP-90/NIP-89 tag parsing into job facts
//! - [`profile`] - DVM display profiles from announcements and kind 0
//! - [`dto`] - the api's response types, shared with the UI
//! - [`fmt`] - small formatting helpers
//! - [`redis_keys`] - Redis key and stream names
//! - [`validate`] (feature `verify`) - the verification gate and signing keys
//! - [`config`], [`telemetry`], [`store`] (feature `server`): flags, metrics/logging, ClickHouse
//! - [`dead_letters`] (feature `server`) - listing, replaying and discarding dead letters
//! - [`relay_counts`] (feature `server`) - relay counters per hour, for windows on the relays page
//! - [`stream`], [`stream_shards`] (feature `server`) - the events stream and its split by event id
//! - [`lease`] (feature `server`) - the Redis lease behind leader election and the ingest locks

pub mod dto;
pub mod event;
pub mod fmt;
pub mod kinds;
pub mod nip19;
pub mod nip90;
pub mod profile;
pub mod redis_keys;
#[cfg(feature = "verify")]
pub mod validate;

#[cfg(feature = "server")]
pub mod cluster_schema;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod dead_letters;
#[cfg(feature = "server")]
pub mod job_ledger;
#[cfg(feature = "server")]
pub mod lease;
#[cfg(feature = "server")]
pub mod registry;
#[cfg(feature = "server")]
pub mod relay_counts;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod stream;
#[cfg(feature = "server")]
pub mod stream_shards;
#[cfg(feature = "server")]
pub mod telemetry;

pub use event::{Event, Id32};
pub use kinds::{KindFilter, Role};
