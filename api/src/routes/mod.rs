//! HTTP handlers, one module per area.

pub mod health;
pub mod stats;
