//! # platform: what every process of the platform runs on
//!
//! The contracts are the `proto` crate; this crate is the runtime the two
//! gRPC services and the gateway share, so that each of them holds only its
//! own business.
//!
//! ## Layout
//! - [`server`]: how both gRPC services serve, drain and stop (and why every
//!   call runs to completion once started).
//! - [`service`] (feature `db`): a gRPC service's `main`: probe, migrate
//!   only, or serve until SIGTERM.
//! - [`settings`]: the settings both gRPC services share (one clap group),
//!   and the one parser of duration values.
//! - [`renamed`]: settings that changed their name; the old names are still
//!   read, with a warning.
//! - [`drain`]: the drain on SIGTERM every process does (unready at once,
//!   still serving for `DRAIN_DELAY`, then stop accepting).
//! - [`runtime`]: the shutdown signal, and `run_to_completion` for work that
//!   must not be cut at an `.await`.
//! - [`grpc`]: health + reflection services every gRPC server registers, and
//!   the health probe.
//! - [`balance`]: client-side balancing over every resolved address of a service.
//! - [`tls`]: mutual TLS settings (clap groups), loading and probing.
//! - [`telemetry`]: logs, OTLP span export, trace context over gRPC.
//! - [`metrics`]: per-process Prometheus registry pieces and the admin router.
//! - [`group_commit`]: one task per lane that runs the requests queued
//!   meanwhile as one batch (one transaction) instead of one each.
//! - [`db`] (feature `db`): create-if-missing + migrate, the pool's release
//!   guard, and the one classifier of "the database is unavailable".
//!
//! Everything here is shared by at least two of the three processes; code used
//! by one process lives in that process's crate.

pub mod balance;
#[cfg(feature = "db")]
pub mod db;
pub mod drain;
pub mod group_commit;
pub mod grpc;
pub mod metrics;
pub mod renamed;
pub mod runtime;
pub mod server;
#[cfg(feature = "db")]
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod tls;
