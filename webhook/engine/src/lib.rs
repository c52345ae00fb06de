//! The pure core of sidecar-injector.
//!
//! ```text
//! AdmissionReview / manifest ─► decide ─► render (templates) ─► merge (SMP) ─► finish ─► patch
//! ```
//!
//! No I/O, no clock, no globals: the HTTPS route, `kube-inject`, the conformance replay and the
//! benchmarks all call into this crate with the configuration already loaded.

pub mod admission;
pub mod config;
pub mod kube_inject;

pub use config::{ConfigError, ConfigSources, Environment, Injector, NativeSidecars};
