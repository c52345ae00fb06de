//! AdmissionReview in, AdmissionReview out: the whole webhook decision, without HTTP.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

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
    let (body, verdict) = match inject::inject(object, &namespace, injector, env, &mode) {
        Ok(Outcome::Skipped(reason)) => (
            response_body(Some(api_version.as_str()), &uid, &Response::Allowed),
            Verdict::Skipped(reason.to_string()),
        ),
        Ok(Outcome::Injected { original, injected }) => {
            let ops = patch::diff(&original, &injected);
            // Nothing in the pods is needed once the patch is written: free them before the
            // (possibly large) response buffer is allocated.
            let json = serde_json::to_vec(&ops).expect("JSON values serialise");
            drop(ops);
            drop((original, injected));
            (
                response_body(Some(api_version.as_str()), &uid, &Response::Patch(&json)),
                Verdict::Injected,
            )
        }
        Err(err) => {
            let message = chain(&err);
            (
                response_body(
                    Some(api_version.as_str()),
                    &uid,
                    &Response::Denied(&message),
                ),
                Verdict::Denied(message),
            )
        }
    };
    Ok(Answer {
        body,
        uid,
        namespace: pod_namespace,
        name,
        dry_run,
        verdict,
    })
}

/// What a response says besides the uid.
enum Response<'a> {
    Allowed,
    /// Allowed with this JSON patch (the raw JSON; the body carries it base64-encoded).
    Patch(&'a [u8]),
    Denied(&'a str),
}

/// The response AdmissionReview, written straight into bytes: the same JSON `serde_json` gives
/// for `{"apiVersion", "kind", "response": {"uid", "allowed", …}}`, without building a `Value`
/// and without scanning the base64 patch for characters to escape (it has none). No
/// `apiVersion` means Istio's bare answer to an undecodable body (no TypeMeta).
fn response_body(api_version: Option<&str>, uid: &str, response: &Response<'_>) -> Vec<u8> {
    let patch_len = match response {
        Response::Patch(json) => json.len().div_ceil(3) * 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(160 + uid.len() + patch_len);
    out.push(b'{');
    if let Some(version) = api_version {
        out.extend_from_slice(b"\"apiVersion\":");
        push_json_str(&mut out, version);
        out.extend_from_slice(b",\"kind\":\"AdmissionReview\",");
    }
    out.extend_from_slice(b"\"response\":{\"uid\":");
    push_json_str(&mut out, uid);
    match response {
        Response::Allowed => out.extend_from_slice(b",\"allowed\":true"),
        Response::Patch(json) => {
            out.extend_from_slice(b",\"allowed\":true,\"patch\":\"");
            let start = out.len();
            out.resize(start + patch_len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(json, &mut out[start..])
                .expect("the buffer was sized for the padded encoding");
            out.truncate(start + written);
            out.extend_from_slice(b"\",\"patchType\":\"JSONPatch\"");
        }
        Response::Denied(message) => {
            out.extend_from_slice(b",\"allowed\":false,\"status\":{\"message\":");
            push_json_str(&mut out, message);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"}}");
    out
}

/// Appends `text` as a JSON string literal (quoted and escaped).
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a string into memory cannot fail");
}

/// Istio's answer to a body it cannot decode: no TypeMeta, no uid, refused.
fn undecodable(message: String) -> Answer {
    Answer {
        body: response_body(None, "", &Response::Denied(&message)),
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
