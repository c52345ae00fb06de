//! MeshConfig and ProxyConfig: Istio's compiled-in defaults, the `mesh` ConfigMap applied over
//! them, and a pod's `proxy.istio.io/config` annotation merged on top of `defaultConfig`.
//!
//! Both stay in protobuf-JSON form (`serde_json::Value` with the proto JSON field names), which
//! is what the templates see and what `protoToJSON` prints.

use serde_json::{Map, Value};

/// Istio's MeshConfig defaults (`DefaultMeshConfig` / `DefaultProxyConfig`), as data. The
/// interception mode is left out: the enum's zero value (`REDIRECT`) is implied when absent.
const DEFAULTS: &str = r#"
enableTracing: true
accessLogFile: ""
accessLogEncoding: TEXT
accessLogFormat: ""
enableEnvoyAccessLogService: false
protocolDetectionTimeout: 0s
ingressService: istio-ingressgateway
ingressControllerMode: STRICT
ingressClass: istio
trustDomain: cluster.local
trustDomainAliases: []
enableAutoMtls: true
outboundTrafficPolicy: {mode: ALLOW_ANY}
inboundTrafficPolicy: {mode: PASSTHROUGH}
localityLbSetting: {enabled: true}
certificates: []
defaultConfig:
  configPath: ./etc/istio/proxy
  serviceCluster: istio-proxy
  drainDuration: 45s
  terminationDrainDuration: 5s
  proxyAdminPort: 15000
  controlPlaneAuthPolicy: MUTUAL_TLS
  discoveryAddress: istiod.istio-system.svc:15012
  binaryPath: /usr/local/bin/envoy
  statNameLength: 189
  statusPort: 15020
rootNamespace: istio-system
proxyListenPort: 15001
proxyInboundListenPort: 15006
connectTimeout: 10s
defaultServiceExportTo: ["*"]
defaultVirtualServiceExportTo: ["*"]
defaultDestinationRuleExportTo: ["*"]
dnsRefreshRate: 60s
serviceSettings: []
enablePrometheusMerge: true
defaultProviders: {}
extensionProviders:
- name: prometheus
  prometheus: {}
- name: stackdriver
  stackdriver: {}
- name: envoy
  envoyFileAccessLog: {path: /dev/stdout}
"#;

/// ProxyConfig fields in the proto's declaration order: protobuf JSON prints them this way.
const PROXY_CONFIG_ORDER: &[&str] = &[
    "configPath",
    "binaryPath",
    "serviceCluster",
    "tracingServiceName",
    "drainDuration",
    "parentShutdownDuration",
    "discoveryAddress",
    "discoveryRefreshDelay",
    "zipkinAddress",
    "statsdUdpAddress",
    "envoyMetricsServiceAddress",
    "proxyAdminPort",
    "availabilityZone",
    "controlPlaneAuthPolicy",
    "customConfigFile",
    "statNameLength",
    "concurrency",
    "proxyBootstrapTemplatePath",
    "interceptionMode",
    "tracing",
    "sds",
    "envoyAccessLogService",
    "envoyMetricsService",
    "proxyMetadata",
    "runtimeValues",
    "statusPort",
    "extraStatTags",
    "gatewayTopology",
    "terminationDrainDuration",
    "meshId",
    "readinessProbe",
    "proxyStatsMatcher",
    "holdApplicationUntilProxyStarts",
    "caCertificatesPem",
    "image",
    "privateKeyProvider",
    "proxyHeaders",
    "fileFlushInterval",
    "fileFlushMinSizeKb",
];

/// ProxyConfig fields holding a `google.protobuf.Duration`.
const DURATION_FIELDS: &[&str] = &[
    "drainDuration",
    "parentShutdownDuration",
    "discoveryRefreshDelay",
    "terminationDrainDuration",
    "fileFlushInterval",
];

/// Fields `protoToJSON` drops when they equal Istio's defaults (`cleanProxyConfig`).
const CLEANED_FIELDS: &[&str] = &[
    "configPath",
    "binaryPath",
    "controlPlaneAuthPolicy",
    "serviceCluster",
    "drainDuration",
    "terminationDrainDuration",
    "discoveryAddress",
    "envoyMetricsService",
    "envoyAccessLogService",
    "tracing",
    "proxyAdminPort",
    "statNameLength",
    "statusPort",
    "concurrency",
];

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("MeshConfig is not valid YAML")]
    Yaml(#[source] serde_yaml_ng::Error),
    #[error("MeshConfig must be a mapping, got {0}")]
    NotAMapping(&'static str),
    #[error("ProxyConfig {field}: {reason}")]
    Field { field: String, reason: String },
}

/// Istio's default MeshConfig as JSON.
pub fn defaults() -> Value {
    default_mesh().clone()
}

/// The defaults, parsed once.
fn default_mesh() -> &'static Value {
    static DEFAULT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| {
        let mut v: Value = serde_yaml_ng::from_str(DEFAULTS).expect("built-in mesh defaults parse");
        let pc = v
            .get_mut("defaultConfig")
            .expect("defaults have defaultConfig");
        normalize_proxy_config(pc).expect("built-in proxy defaults are valid");
        v
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses YAML (or JSON) text into a mapping; empty text is an empty mapping.
pub fn parse_mapping(text: &str) -> Result<Map<String, Value>, MeshError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_yaml_ng::from_str::<Value>(text).map_err(MeshError::Yaml)? {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(MeshError::NotAMapping(kind(&other))),
    }
}

/// Applies a `mesh` ConfigMap text over `base` with Istio's rules: top-level fields replace,
/// `defaultConfig` merges field by field (proxyMetadata key by key), `defaultProviders` merges,
/// `extensionProviders` merge by name, `trustDomainAliases` are unioned and sorted.
pub fn apply(base: &Value, overlay: &Map<String, Value>) -> Result<Value, MeshError> {
    let mut out = base.clone();
    let obj = out.as_object_mut().expect("mesh config is a mapping");
    for (key, value) in overlay {
        match key.as_str() {
            "defaultConfig" => {
                let mut pc = value.clone();
                normalize_proxy_config(&mut pc)?;
                let merged = merge_proxy_config(obj.get("defaultConfig"), &pc);
                obj.insert(key.clone(), merged);
            }
            "defaultProviders" => {
                let target = obj
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                deep_merge(target, value);
            }
            "extensionProviders" => {
                let mut list = obj
                    .get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for p in value.as_array().into_iter().flatten() {
                    let name = p.get("name");
                    match list.iter_mut().find(|q| q.get("name") == name) {
                        Some(q) => *q = p.clone(),
                        None => list.push(p.clone()),
                    }
                }
                obj.insert(key.clone(), Value::Array(list));
            }
            "trustDomainAliases" => {
                let mut all: Vec<String> = obj
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .chain(value.as_array().into_iter().flatten())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                all.sort();
                all.dedup();
                obj.insert(key.clone(), Value::from(all));
            }
            _ => {
                obj.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

/// Merges a ProxyConfig fragment over `base`: fields replace, nested messages merge, and
/// `proxyMetadata` merges key by key.
pub fn merge_proxy_config(base: Option<&Value>, overlay: &Value) -> Value {
    let mut out = base.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    deep_merge(&mut out, overlay);
    out
}

/// Recursive object merge; lists and scalars replace.
fn deep_merge(target: &mut Value, overlay: &Value) {
    match (target, overlay) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, v) in o {
                match t.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, o) => *t = o.clone(),
    }
}

/// Parses a `proxy.istio.io/config` annotation (YAML or JSON ProxyConfig).
pub fn parse_proxy_config(text: &str) -> Result<Value, MeshError> {
    let mut v = Value::Object(parse_mapping(text)?);
    normalize_proxy_config(&mut v)?;
    Ok(v)
}

/// Brings user-written ProxyConfig into protobuf-JSON canonical form: durations as protobuf
/// prints them, wrapper values unwrapped, enum names upper-case.
fn normalize_proxy_config(pc: &mut Value) -> Result<(), MeshError> {
    let Some(obj) = pc.as_object_mut() else {
        return Err(MeshError::NotAMapping(kind(pc)));
    };
    for field in DURATION_FIELDS {
        if let Some(v) = obj.get_mut(*field) {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => format!("{n}s"),
                other => {
                    return Err(MeshError::Field {
                        field: field.to_string(),
                        reason: format!("expected a duration, got {}", kind(other)),
                    });
                }
            };
            let nanos = parse_duration(&text).ok_or_else(|| MeshError::Field {
                field: field.to_string(),
                reason: format!("bad duration {text:?}"),
            })?;
            *v = Value::String(format_proto_duration(nanos));
        }
    }
    for field in ["holdApplicationUntilProxyStarts", "concurrency"] {
        if let Some(v) = obj.get_mut(field)
            && let Some(inner) = v.get("value").cloned()
        {
            *v = inner;
        }
    }
    if let Some(Value::Object(md)) = obj.get_mut("proxyMetadata") {
        for v in md.values_mut() {
            let text = match &*v {
                Value::String(_) => continue,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            *v = Value::String(text);
        }
    }
    Ok(())
}

/// Parses a Go/protobuf duration (`45s`, `1m30s`, `1.5s`, `300ms`) into nanoseconds.
pub fn parse_duration(text: &str) -> Option<i128> {
    let s = text.trim();
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += num * scale;
    }
    let nanos = total.round() as i128;
    Some(if neg { -nanos } else { nanos })
}

/// Protobuf JSON spelling of a duration: seconds with 0, 3, 6 or 9 fractional digits.
pub fn format_proto_duration(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.abs();
    let (secs, frac) = (n / 1_000_000_000, n % 1_000_000_000);
    if frac == 0 {
        format!("{sign}{secs}s")
    } else if frac % 1_000_000 == 0 {
        format!("{sign}{secs}.{:03}s", frac / 1_000_000)
    } else if frac % 1_000 == 0 {
        format!("{sign}{secs}.{:06}s", frac / 1_000)
    } else {
        format!("{sign}{secs}.{frac:09}s")
    }
}

/// Go's `time.Duration.String()` (`formatDuration` in templates): `1m30s`, `45s`, `1.5s`.
pub fn format_go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (v, unit) = if n < 1_000 {
            return format!("{sign}{n}ns");
        } else if n < 1_000_000 {
            (n as f64 / 1e3, "µs")
        } else {
            (n as f64 / 1e6, "ms")
        };
        return format!("{sign}{}{unit}", trim_float(v));
    }
    let h = n / 3_600_000_000_000;
    let m = (n / 60_000_000_000) % 60;
    let s = (n % 60_000_000_000) as f64 / 1e9;
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_float(s)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `protoToJSON .ProxyConfig` after `cleanProxyConfig`: fields equal to Istio's defaults and an
/// empty `proxyMetadata` left out, the rest in proto declaration order, compact.
pub fn proxy_config_json(pc: &Value) -> String {
    let dflt = &default_mesh()["defaultConfig"];
    let Some(obj) = pc.as_object() else {
        return "{}".into();
    };
    let mut out = Map::new();
    let keep = |k: &str, v: &Value| -> bool {
        if v.is_null() {
            return false;
        }
        if CLEANED_FIELDS.contains(&k) && dflt.get(k) == Some(v) {
            return false;
        }
        if k == "proxyMetadata" && v.as_object().is_some_and(Map::is_empty) {
            return false;
        }
        true
    };
    for k in PROXY_CONFIG_ORDER {
        if let Some(v) = obj.get(*k)
            && keep(k, v)
        {
            out.insert(k.to_string(), sorted_maps(v));
        }
    }
    for (k, v) in obj {
        if !PROXY_CONFIG_ORDER.contains(&k.as_str()) && keep(k, v) {
            out.insert(k.clone(), sorted_maps(v));
        }
    }
    Value::Object(out).to_string()
}

/// Protobuf JSON prints map fields with sorted keys.
fn sorted_maps(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_maps(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_maps).collect()),
        other => other.clone(),
    }
}

/// The ProxyConfig interception mode, `REDIRECT` when unset.
pub fn interception_mode(pc: &Value) -> &str {
    pc.get("interceptionMode")
        .and_then(Value::as_str)
        .unwrap_or("REDIRECT")
}

/// `defaultConfig.statusPort` of a mesh config (Istio's default 15020).
pub fn status_port(mesh: &Value) -> i64 {
    crate::at(mesh, &["defaultConfig", "statusPort"])
        .and_then(Value::as_i64)
        .unwrap_or(15020)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_proxy_config_prints_as_empty_object() {
        assert_eq!(proxy_config_json(&defaults()["defaultConfig"]), "{}");
    }

    #[test]
    fn mesh_overrides_merge_into_default_config() {
        let m = apply(
            &defaults(),
            &parse_mapping("defaultConfig: {drainDuration: 23s}").unwrap(),
        )
        .unwrap();
        assert_eq!(m["defaultConfig"]["statusPort"], json!(15020));
        assert_eq!(
            proxy_config_json(&m["defaultConfig"]),
            r#"{"drainDuration":"23s"}"#
        );
    }

    #[test]
    fn extension_providers_merge_by_name() {
        let m = apply(
            &defaults(),
            &parse_mapping("extensionProviders: [{name: envoy, envoyFileAccessLog: {path: /x}}, {name: otel, opentelemetry: {port: 4317}}]").unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = m["extensionProviders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["prometheus", "stackdriver", "envoy", "otel"]);
        assert_eq!(
            m["extensionProviders"][2]["envoyFileAccessLog"]["path"],
            "/x"
        );
    }

    #[test]
    fn proxy_metadata_merges_key_by_key() {
        let base = json!({"proxyMetadata": {"A": "1", "B": "2"}});
        let merged = merge_proxy_config(Some(&base), &json!({"proxyMetadata": {"B": "3"}}));
        assert_eq!(merged["proxyMetadata"], json!({"A": "1", "B": "3"}));
    }

    #[test]
    fn durations_print_like_protobuf_and_go() {
        assert_eq!(
            format_proto_duration(parse_duration("1m30s").unwrap()),
            "90s"
        );
        assert_eq!(
            format_proto_duration(parse_duration("1.5s").unwrap()),
            "1.500s"
        );
        assert_eq!(format_go_duration(parse_duration("90s").unwrap()), "1m30s");
        assert_eq!(format_go_duration(parse_duration("1.5s").unwrap()), "1.5s");
        assert_eq!(format_go_duration(parse_duration("2h").unwrap()), "2h0m0s");
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn bad_durations_in_proxy_config_are_errors() {
        assert!(parse_proxy_config("drainDuration: later").is_err());
    }
}
