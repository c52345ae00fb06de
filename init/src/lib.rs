//! `mesh-init`: installs Istio's traffic-capture rules in a pod's network namespace, as the
//! `istio-init` container's `istio-iptables` does, and explains what went wrong when it cannot.
//!
//! Data flow, top to bottom; only the last step touches the system:
//!
//! ```text
//! argv ──cli──▶ Cli ─┐
//! env ───────────────┼─config::CaptureConfig::resolve─▶ CaptureConfig   (checked, pure)
//! host.rs facts ─────┘                                      │
//!                                     plan::iptables::plan / plan::nftables::plan (pure)
//!                                                           │
//!                                     restore::render / nftables::render      (pure text)
//!                                                           │
//!                     apply::run(…, &System)  or  apply::dry_run::record (recorder)
//!                                                           │ on failure
//!                                     diagnose::diagnose ─▶ what / why / fix + exit code
//! ```

pub mod apply;
pub mod cli;
pub mod config;
pub mod diagnose;
pub mod host;
pub mod plan;
pub mod restore;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod validate;
