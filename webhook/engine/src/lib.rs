//! The pure core of sidecar-injector.
//!
//! ```text
//! AdmissionReview / manifest ─► decide ─► render (templates) ─► merge (SMP) ─► finish ─► patch
//! ```
//!
//! No I/O, no clock, no globals: the HTTPS route, `kube-inject`, the conformance replay and the
//! benchmarks all call into this crate with the configuration already loaded. Pods stay
//! `serde_json::Value` throughout, so fields this crate does not know survive untouched.

pub mod admission;
pub mod config;
pub mod data;
pub mod decide;
pub mod finish;
pub mod funcs;
pub mod gojson;
pub mod inject;
pub mod kube_inject;
pub mod merge;
pub mod mesh;
pub mod patch;
pub mod quantity;
pub mod render;
pub mod validate;

pub use config::{ConfigError, ConfigSources, Environment, Injector, NativeSidecars, Platform};
pub use decide::{Decision, SkipReason};
pub use inject::{InjectError, Mode, Outcome};

/// Walks an error's `source` chain into one line (`outer: inner: root`), for deny messages.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}
