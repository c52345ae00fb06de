//! Helpers for the end-to-end tests in `tests/tests/`: the workspace's paths and binaries, the
//! `deploy/` manifests as objects, label-selector matching, a real etcd + kube-apiserver
//! (envtest layout), and network namespaces for real traffic.
//!
//! Everything here is test plumbing; the programs under test are the real binaries, built by
//! cargo and run as child processes.

pub mod control_plane;
pub mod manifests;
pub mod selector;
pub mod workspace;
