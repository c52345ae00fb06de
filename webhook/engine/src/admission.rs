//! AdmissionReview in, AdmissionReview out: the whole webhook decision, without HTTP.

use std::collections::BTreeMap;

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::doc::Node;
use crate::inject::{self, Mode, Outcome};
use crate::render::Texts;
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
    // Read from bytes, serde_json checks UTF-8 string by string; one check of the whole body
    // is cheaper. A body that fails it is read as bytes, so the error is serde_json's own.
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<ObjectOr<Review>>(text),
        Err(_) => serde_json::from_slice::<ObjectOr<Review>>(body),
    };
    let review = match parsed {
        Ok(ObjectOr(review)) => review.unwrap_or_default(),
        Err(err) => return Ok(undecodable(format!("could not decode body: {err}"))),
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = text(review.api_version.as_ref());
    let kind = review.kind.as_ref().and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" || (api_version != V1 && api_version != V1BETA1) {
        return Ok(undecodable(format!(
            "could not decode body: expected an AdmissionReview of {V1} or {V1BETA1}, got kind {kind:?} apiVersion {api_version:?}"
        )));
    }
    let Some(ObjectOr(Some(request))) = review.request else {
        return Ok(undecodable("AdmissionReview has no request".into()));
    };
    let object = request.object.unwrap_or(Node::Null);
    let uid = text(request.uid.as_ref());
    let namespace = text(request.namespace.as_ref());
    let dry_run = request
        .dry_run
        .as_ref()
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let meta_text = |field| {
        object
            .at(&["metadata", field])
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = match meta_text("name") {
        n if n.is_empty() => meta_text("generateName"),
        n => n,
    };
    let pod_namespace = match meta_text("namespace") {
        n if n.is_empty() => namespace.clone(),
        n => n,
    };

    let mode = Mode::Webhook {
        path_envs: path_envs(path),
    };
    let texts = Texts::default();
    let (body, verdict) = match inject::inject(object, &namespace, injector, env, &mode, &texts) {
        Ok(Outcome::Skipped(reason)) => (
            response_body(Some(api_version.as_str()), &uid, &Response::Allowed),
            Verdict::Skipped(reason.to_string()),
        ),
        Ok(Outcome::Injected { original, injected }) => {
            let ops = patch::diff(&original, &injected);
            // Nothing in the pods is needed once the patch is written: free them before the
            // (possibly large) response buffer is allocated.
            let json = patch::to_json(&ops);
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

/// The fields of an AdmissionReview the webhook reads. The rest (`userInfo`, `oldObject`,
/// `options`, …) is parsed and checked as JSON but never built, and a repeated key counts
/// once, the last time, as it would in a parsed `Value`.
#[derive(Default)]
struct Review<'de> {
    api_version: Option<Value>,
    kind: Option<Value>,
    request: Option<ObjectOr<Request<'de>>>,
}

/// The pod (`object`) borrows its strings from the body.
#[derive(Default)]
struct Request<'de> {
    uid: Option<Value>,
    namespace: Option<Value>,
    dry_run: Option<Value>,
    object: Option<Node<'de>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ReviewField {
    ApiVersion,
    Kind,
    Request,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    Namespace,
    DryRun,
    Object,
    #[serde(other)]
    Other,
}

/// A record read from a JSON object's members.
trait FromMembers<'de>: Sized {
    fn from_members<A: MapAccess<'de>>(members: A) -> Result<Self, A::Error>;
}

impl<'de> FromMembers<'de> for Review<'de> {
    fn from_members<A: MapAccess<'de>>(mut members: A) -> Result<Self, A::Error> {
        let mut review = Review::default();
        while let Some(field) = members.next_key()? {
            match field {
                ReviewField::ApiVersion => review.api_version = Some(members.next_value()?),
                ReviewField::Kind => review.kind = Some(members.next_value()?),
                ReviewField::Request => review.request = Some(members.next_value()?),
                ReviewField::Other => members.next_value::<Skip>().map(|_| ())?,
            }
        }
        Ok(review)
    }
}

impl<'de> FromMembers<'de> for Request<'de> {
    fn from_members<A: MapAccess<'de>>(mut members: A) -> Result<Self, A::Error> {
        let mut request = Request::default();
        while let Some(field) = members.next_key()? {
            match field {
                RequestField::Uid => request.uid = Some(members.next_value()?),
                RequestField::Namespace => request.namespace = Some(members.next_value()?),
                RequestField::DryRun => request.dry_run = Some(members.next_value()?),
                RequestField::Object => request.object = Some(members.next_value()?),
                RequestField::Other => members.next_value::<Skip>().map(|_| ())?,
            }
        }
        Ok(request)
    }
}

/// `T` when the JSON value is an object; `None`, once the value is read, when it is anything
/// else (a `Value` would hold it, and the review logic would find no object there).
struct ObjectOr<T>(Option<T>);

impl<'de, T: FromMembers<'de>> Deserialize<'de> for ObjectOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectOrVisitor(PhantomData))
    }
}

struct ObjectOrVisitor<T>(PhantomData<T>);

/// A JSON value read in full (with `deserialize_any`, so numbers, strings and escapes are
/// checked exactly as when a `Value` is built) and dropped.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

/// The visitor methods for everything but objects: `$value` for a scalar, and the same after
/// reading each element of an array.
macro_rules! non_objects {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            while items.next_element::<Skip>()?.is_some() {}
            Ok($value)
        }
    };
}

impl<'de, T: FromMembers<'de>> Visitor<'de> for ObjectOrVisitor<T> {
    type Value = ObjectOr<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Self::Value, A::Error> {
        T::from_members(members).map(|t| ObjectOr(Some(t)))
    }
    non_objects!(ObjectOr(None));
}

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Skip, A::Error> {
        while members.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
    non_objects!(Skip);
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
        patch::write_json_str(&mut out, version);
        out.extend_from_slice(b",\"kind\":\"AdmissionReview\",");
    }
    out.extend_from_slice(b"\"response\":{\"uid\":");
    patch::write_json_str(&mut out, uid);
    match response {
        Response::Allowed => out.extend_from_slice(b",\"allowed\":true"),
        Response::Patch(json) => {
            out.extend_from_slice(b",\"allowed\":true,\"patch\":\"");
            // The vectorised encoder: several times fewer instructions than a scalar one on
            // a patch of kilobytes.
            base64_simd::STANDARD.encode_append(json, &mut out);
            out.extend_from_slice(b"\",\"patchType\":\"JSONPatch\"");
        }
        Response::Denied(message) => {
            out.extend_from_slice(b",\"allowed\":false,\"status\":{\"message\":");
            patch::write_json_str(&mut out, message);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"}}");
    out
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
