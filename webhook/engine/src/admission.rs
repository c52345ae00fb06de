//! AdmissionReview in, AdmissionReview out: the whole webhook decision, without HTTP.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::inject::{self, Mode, Outcome};
use crate::{Environment, Injector, chain, patch};

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

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Answers one AdmissionReview. `path` is the URL path after `/inject` (Istio's path parameters,
/// such as `/cluster/c1/net/n1`), empty for plain `/inject`.
///
/// Only an empty body is a [`BadReview`]; anything else gets an AdmissionReview back. A body
/// that is not an AdmissionReview is refused (`allowed: false`) in the apiVersion-less
/// v1beta1 shape Istio answers with, since there is no request to echo.
pub fn review(
    body: &[u8],
    injector: &Injector,
    env: &Environment,
    path: &str,
) -> Result<Answer, BadReview> {
    if body.is_empty() {
        return Err(BadReview("no body found".into()));
    }
    let mut review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(err) => return Ok(undecodable(format!("could not decode body: {err}"))),
    };
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" || (api_version != V1 && api_version != V1BETA1) {
        return Ok(undecodable(format!(
            "could not decode body: expected an AdmissionReview of {V1} or {V1BETA1}, got kind {kind:?} apiVersion {api_version:?}"
        )));
    }
    let object = crate::at_mut(&mut review, &["request", "object"])
        .map(Value::take)
        .unwrap_or(Value::Null);
    let Some(request) = review.get("request").filter(|r| r.is_object()) else {
        return Ok(undecodable("AdmissionReview has no request".into()));
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let uid = text(request.get("uid"));
    let namespace = text(request.get("namespace"));
    let dry_run = request
        .get("dryRun")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let meta = object.get("metadata");
    let name = match text(meta.and_then(|m| m.get("name"))) {
        n if n.is_empty() => text(meta.and_then(|m| m.get("generateName"))),
        n => n,
    };
    let pod_namespace = match text(meta.and_then(|m| m.get("namespace"))) {
        n if n.is_empty() => namespace.clone(),
        n => n,
    };

    let mode = Mode::Webhook {
        path_envs: path_envs(path),
    };
    let (response, verdict) = match inject::inject(object, &namespace, injector, env, &mode) {
        Ok(Outcome::Skipped(reason)) => (
            json!({"uid": uid, "allowed": true}),
            Verdict::Skipped(reason.to_string()),
        ),
        Ok(Outcome::Injected { original, injected }) => {
            let ops = patch::diff(&original, &injected);
            let bytes = serde_json::to_vec(&ops).expect("JSON values serialise");
            (
                json!({
                    "uid": uid,
                    "allowed": true,
                    "patch": base64::engine::general_purpose::STANDARD.encode(bytes),
                    "patchType": "JSONPatch",
                }),
                Verdict::Injected,
            )
        }
        Err(err) => {
            let message = chain(&err);
            (
                json!({"uid": uid, "allowed": false, "status": {"message": message}}),
                Verdict::Denied(message),
            )
        }
    };
    let body = json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response});
    Ok(Answer {
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
        uid,
        namespace: pod_namespace,
        name,
        dry_run,
        verdict,
    })
}

/// Istio's answer to a body it cannot decode: no TypeMeta, no uid, refused.
fn undecodable(message: String) -> Answer {
    let body = json!({"response": {"uid": "", "allowed": false, "status": {"message": message}}});
    Answer {
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
        uid: String::new(),
        namespace: String::new(),
        name: String::new(),
        dry_run: false,
        verdict: Verdict::Denied(message),
    }
}

/// Istio's URL path parameters (`parseInjectEnvs`): `/k1/v1/k2/v2` with `cluster` →
/// `ISTIO_META_CLUSTER_ID`, `net` → `ISTIO_META_NETWORK`, other keys upper-cased, `--slash--`
/// in values meaning `/`; or the legacy `/:ENV:k=v:ENV:k2=v2`. `path` is what follows
/// `/inject`.
pub fn path_envs(path: &str) -> BTreeMap<String, String> {
    let path = path.trim_end_matches('/');
    let rest = path.strip_prefix('/').unwrap_or(path);
    let mut parts: Vec<String> = Vec::new();
    if rest.is_empty() {
        return BTreeMap::new();
    }
    if rest.starts_with(":ENV:") {
        for pair in rest.split(":ENV:").skip(1) {
            if let Some((k, v)) = pair.split_once('=')
                && !k.is_empty()
            {
                parts.push(k.to_string());
                parts.push(v.to_string());
            }
        }
    } else {
        parts = rest
            .split('/')
            .enumerate()
            .map(|(i, p)| {
                if i % 2 == 1 {
                    p.replace("--slash--", "/")
                } else {
                    p.to_string()
                }
            })
            .collect();
    }
    let mut out = BTreeMap::new();
    for pair in parts.chunks(2) {
        let [k, v] = pair else { break };
        let name = match k.as_str() {
            "cluster" => "ISTIO_META_CLUSTER_ID".to_string(),
            "net" => "ISTIO_META_NETWORK".to_string(),
            other => other.to_uppercase(),
        };
        if !name.is_empty() {
            out.insert(name, v.clone());
        }
    }
    out
}

/// The `response` object of an answer body, for tests and logs.
pub fn response_of(body: &[u8]) -> Option<Map<String, Value>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("response")?.as_object().cloned()
}

#[cfg(test)]
mod tests;
