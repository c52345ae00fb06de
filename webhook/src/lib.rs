//! `sidecar-injector`: the plumbing around the pure engine in `injector-engine`.
//!
//! ```text
//! main.rs ─► serve/   HTTPS webhook: routes → injector_engine::admission::review
//!                      tls (per-handshake certificate), reload (poll files), metrics, shutdown
//!         ─► kube_inject.rs   files and streams → injector_engine::kube_inject
//!         ─► certs.rs         a CA and serving certificate for the webhook (rcgen)
//! ```
//!
//! A library as well as a binary so that the integration tests in `tests/` drive the real
//! server in-process (`serve::start`) and only spawn the binary where a process matters (SIGTERM).

pub mod alloc;
pub mod certs;
pub mod config_args;
pub mod kube_inject;
pub mod serve;
