//! The pure core of sidecar-injector: Istio's sidecar injection, driven by Istio's own
//! configuration (the `istio-sidecar-injector` ConfigMap's `config` and `values`, and MeshConfig).
//!
//! ```text
//!  AdmissionReview ──► admission ─┐                      ┌─► patch (RFC 6902) ──► AdmissionReview
//!  manifest stream ──► kube_inject┴► inject::inject ─────┤
//!                                      │                 └─► injected pod ──► manifest stream
//!      decide ── inject or skip (policy, labels, selectors, hostNetwork)
//!      validate ── traffic/resource annotations (bad ones refuse the pod)
//!      finish::strip_pod ── undo a previous injection
//!      data + render ── SidecarTemplateData through the Go templates (gotmpl + funcs)
//!      merge ── strategic merge of each rendered partial Pod
//!      finish ── overrides, Prometheus merge, probe rewrite, status annotation, ordering
//! ```
//!
//! `config` loads and parses everything once (`Injector`), `mesh` holds MeshConfig/ProxyConfig
//! defaults and merge rules. No I/O, no clock, no globals: the HTTPS route, `kube-inject`, the
//! conformance replay and the benchmarks all call into this crate with the configuration already
//! loaded. The pod as given is read once into a `doc::Node` (strings borrowed from the request
//! body), kept read-only as the patch's original; the working pod is a copy of that tree, and
//! the rendered templates are read into the same kind of tree (borrowing from the rendered text,
//! which `render::Texts` keeps for the injection), so fields this crate does not know survive
//! untouched and no key is hashed on the way. Configuration stays `serde_json`.

pub mod admission;
pub mod config;
pub mod data;
pub mod decide;
pub mod doc;
mod fields;
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
pub mod yaml;

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

/// Objects up to this size are searched by comparing keys rather than hashing the key: a pod's
/// objects are small, and hashing (SipHash, in serde_json's `IndexMap` and in `doc::Lookup`'s
/// index) costs more than a few compares.
const LINEAR_LOOKUP: usize = 16;

/// `map[key]`: [`serde_json::Map::get`] without hashing the key in a small map.
pub(crate) fn member<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a serde_json::Value> {
    if map.len() <= LINEAR_LOOKUP {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// `value[key]` for an object member, else `None` ([`member`] of an object).
pub(crate) fn field<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    member(value.as_object()?, key)
}

/// The value under `keys` (object members only): what `Value::pointer` does for a literal
/// path, without formatting and unescaping a path string on every call (it showed in profiles).
pub(crate) fn at<'a>(value: &'a serde_json::Value, keys: &[&str]) -> Option<&'a serde_json::Value> {
    keys.iter().try_fold(value, |v, k| field(v, k))
}

/// A small deterministic generator (Knuth's MMIX LCG) for the randomised tests: the same
/// cases on every run, without a dependency.
#[cfg(test)]
pub(crate) fn lcg(mut seed: u64) -> impl FnMut() -> usize {
    move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    }
}
