//! stacktop-collector: ingests agent streams, decides health, serves the fleet.
//!
//! # Layout
//!
//! - [`config`]: the resolved [`Config`] and the TOML file behind it.
//! - [`ingest`]: the `Ingest.Connect` service, one task per agent stream.
//! - [`journal`]: acked means durable: every batch is on disk before it
//!   is acknowledged, and replayed into the store at start.
//! - [`store`]: every known node, its latest values and checks as
//!   reported; [`series`] holds one series' recent points at full
//!   resolution, compressed with [`gorilla`].
//! - [`tiers`]: coarser history on disk (10 s buckets for 6 h, 1 min for
//!   7 days), rolled up from the full resolution in memory.
//! - [`slot`]: what each series feeds in the evaluated fleet, decided once
//!   per series.
//! - [`health`]: the pure node / role / tier / site health rules.
//! - [`fleet`]: the evaluated fleet ([`fleet::view`]: decided once per
//!   change, shared by every reader) and the `Fleet` service (Snapshot,
//!   Watch, Node, History).
//! - [`alerts`]: the alert rules, their states, grouping, silences,
//!   maintenance, notification sinks and the store that keeps them.
//! - [`export`]: `/metrics` for Prometheus to scrape and `[[remote-write]]`
//!   destinations every stored sample is forwarded to.
//! - [`server`]: wires it all into one tonic server with grpc.health.v1 and
//!   reflection, plus the task that keeps the fleet view up to date and the
//!   exports.
//! - [`bench`]: `stacktop-collector bench`, a fleet load generator that
//!   measures a collector (ingest rate, CPU, memory, sample -> Watch
//!   latency).
//!
//! Data moves one way: agents -> [`ingest`] -> [`store`] -> [`fleet`] ->
//! dashboards and [`export`] -> Prometheus. Nothing here knows about terminals.

#![deny(missing_docs)]

pub mod alerts;
pub mod auth;
pub mod bench;
pub mod config;
pub mod export;
pub mod fleet;
pub mod gorilla;
pub mod health;
pub mod ingest;
pub mod journal;
pub mod series;
pub mod server;
pub mod slot;
pub mod store;
pub mod tiers;

pub use config::{Config, ConfigError, DEFAULT_PORT, FileConfig};
pub use server::{Error, Listeners, run, serve, serve_listeners};
pub use tokio_util::sync::CancellationToken;
