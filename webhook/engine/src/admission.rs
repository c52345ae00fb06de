//! AdmissionReview in, AdmissionReview out: the whole webhook decision, without HTTP.

use crate::{Environment, Injector};

/// What happened to one review, for the caller's logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed with a JSON patch that adds the sidecar.
    Injected,
    /// Allowed unchanged; the reason is for logs (`hostNetwork`, `sidecar.istio.io/inject=false`, …).
    Skipped(String),
    /// Refused, as Istio refuses it; the message is what `kubectl` shows.
    Denied(String),
}

/// A review that was read and answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The serialized response AdmissionReview, in the apiVersion the request used.
    pub body: Vec<u8>,
    pub uid: String,
    pub namespace: String,
    /// The pod's name, or its `generateName` when the API server has not named it yet.
    pub name: String,
    pub dry_run: bool,
    pub verdict: Verdict,
}

/// The body could not be read as an AdmissionReview: an HTTP 400 with this text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// Answers one AdmissionReview. `path` is the URL path after `/inject` (Istio's path parameters,
/// such as `/cluster/c1/net/n1`), empty for plain `/inject`.
pub fn review(
    body: &[u8],
    injector: &Injector,
    env: &Environment,
    path: &str,
) -> Result<Answer, BadReview> {
    let _ = (body, injector, env, path);
    Err(BadReview("admission review is not implemented yet".into()))
}
