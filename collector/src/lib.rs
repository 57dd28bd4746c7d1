//! stacktop-collector: ingests agent streams, decides health, serves the fleet.
//!
//! # Layout
//!
//! - [`config`]: the resolved [`Config`] and the TOML file behind it.
//! - [`ingest`]: the `Ingest.Connect` service, one task per agent stream.
//! - [`store`]: every known node, its latest values and checks; [`series`]
//!   holds one series' compact history ring buffer.
//! - [`health`]: the pure node / tier / site health rules.
//! - [`summary`]: the dashboard numbers derived from a node's latest values.
//! - [`fleet`]: the `Fleet` service (Snapshot, Watch, History).
//! - [`server`]: wires it all into one tonic server with grpc.health.v1 and
//!   reflection, plus the periodic health re-evaluation.
//!
//! Data moves one way: agents -> [`ingest`] -> [`store`] -> [`fleet`] ->
//! dashboards. Nothing here knows about terminals.

#![deny(missing_docs)]

pub mod config;
pub mod fleet;
pub mod health;
pub mod ingest;
pub mod series;
pub mod server;
pub mod store;
pub mod summary;

pub use config::{Config, ConfigError, DEFAULT_PORT, FileConfig};
pub use server::{run, serve};
pub use tokio_util::sync::CancellationToken;
