//! Istio's template helper functions (`createInjectionFuncmap`), registered over gotmpl's Go
//! built-ins and sprig. Several replace sprig's function of the same name with Istio's
//! behaviour: `contains` takes its arguments the other way round, `indent` leaves the first line
//! alone, `toYaml` keeps the trailing newline.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use gotmpl::{FuncError, Funcs, MapElem, Value};

use crate::gojson::{self, GoType};

thread_local! {
    /// The variables `env` reads during one render (set by `render` around execution). The
    /// functions are fixed when templates are parsed, but the environment is per call.
    static ENV_VARS: RefCell<Option<Arc<BTreeMap<String, String>>>> = const { RefCell::new(None) };
}

thread_local! {
    /// The last map `toYaml` wrote on this thread, and its text. The sidecar template writes
    /// `.Values`' resources on every render, and a part of `.Values` is one map, loaded with
    /// the configuration, whatever the pod. Keyed on the map's identity through a `Weak`: the
    /// address cannot be reused while the key exists, and the map cannot change in place.
    static LAST_TO_YAML: RefCell<Option<(Weak<gotmpl::Map>, Value)>> = const { RefCell::new(None) };
}

/// `toYaml`, remembering the last map it wrote (see [`LAST_TO_YAML`]).
fn to_yaml(v: &Value) -> Value {
    let Value::Map(m) = v else {
        return Value::string(gotmpl::yaml::encode(v));
    };
    LAST_TO_YAML.with(|last| {
        if let Some((key, text)) = &*last.borrow()
            && std::ptr::eq(key.as_ptr(), Arc::as_ptr(m))
        {
            return text.clone();
        }
        let text = Value::string(gotmpl::yaml::encode(v));
        *last.borrow_mut() = Some((Arc::downgrade(m), text.clone()));
        text
    })
}

/// Runs `f` with `vars` visible to the templates' `env` function.
pub fn with_env<T>(vars: Arc<BTreeMap<String, String>>, f: impl FnOnce() -> T) -> T {
    let previous = ENV_VARS.with(|cell| cell.replace(Some(vars)));
    let out = f();
    ENV_VARS.with(|cell| *cell.borrow_mut() = previous);
    out
}

fn err(name: &str, msg: impl std::fmt::Display) -> FuncError {
    FuncError::new(format!("{name}: {msg}"))
}

fn args<'a, const N: usize>(name: &str, a: &'a [Value]) -> Result<&'a [Value; N], FuncError> {
    a.try_into().map_err(|_| {
        err(
            name,
            format!("wrong number of args: want {N} got {}", a.len()),
        )
    })
}

/// Go's `fmt.Sprint` of one value.
fn sprint(v: &Value) -> String {
    gotmpl::format::sprint(std::slice::from_ref(v))
}

/// A string argument (nil is ""), borrowed: most functions only read it.
fn string_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, FuncError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Nil => Ok(""),
        other => Err(err(
            name,
            format!("expected string, got {}", other.type_name()),
        )),
    }
}

/// A `map[string]string` argument (nil is an empty map).
fn string_map(name: &str, v: &Value) -> Result<BTreeMap<String, String>, FuncError> {
    match v {
        Value::Nil => Ok(BTreeMap::new()),
        Value::Map(m) => m
            .entries
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((String::from(&**k), String::from(&**s))),
                other => Err(err(
                    name,
                    format!("map value of type {} is not a string", other.type_name()),
                )),
            })
            .collect(),
        other => Err(err(
            name,
            format!("expected map[string]string, got {}", other.type_name()),
        )),
    }
}

/// The checks of [`string_map`], without the copy (for functions that only look keys up).
fn check_string_map(name: &str, v: &Value) -> Result<(), FuncError> {
    match v {
        Value::Nil => Ok(()),
        Value::Map(m) => match m.entries.values().find(|v| !matches!(v, Value::String(_))) {
            Some(other) => Err(err(
                name,
                format!("map value of type {} is not a string", other.type_name()),
            )),
            None => Ok(()),
        },
        other => Err(err(
            name,
            format!("expected map[string]string, got {}", other.type_name()),
        )),
    }
}

fn str_map_value(m: BTreeMap<String, String>) -> Value {
    Value::string_map(m)
}

fn field<'a>(v: &'a Value, json_name: &str) -> Option<&'a Value> {
    v.get(json_name).filter(|x| !x.is_nil())
}

/// Registers Istio's functions into `funcs`.
pub fn register(funcs: &mut Funcs) {
    funcs.insert("formatDuration", |a| {
        let [d] = args::<1>("formatDuration", a)?;
        let text = match d {
            Value::String(s) => String::from(&**s),
            Value::Nil => return Ok(Value::string("0s")),
            other => sprint(other),
        };
        let nanos = crate::mesh::parse_duration(&text)
            .ok_or_else(|| err("formatDuration", format!("bad duration {text:?}")))?;
        Ok(Value::string(crate::mesh::format_go_duration(nanos)))
    });
    funcs.insert("isset", |a| {
        let [m, k] = args::<2>("isset", a)?;
        let key = string_arg("isset", k)?;
        Ok(Value::Bool(match m {
            Value::Map(m) => m.entries.contains_key(key),
            _ => false,
        }))
    });
    funcs.insert("excludeInboundPort", |a| {
        let [port, excluded] = args::<2>("excludeInboundPort", a)?;
        let excluded = string_arg("excludeInboundPort", excluded)?;
        let port = match port {
            Value::String(s) => std::borrow::Cow::Borrowed(&**s),
            other => std::borrow::Cow::Owned(sprint(other)),
        };
        Ok(Value::string(exclude_inbound_port(port.trim(), excluded)))
    });
    funcs.insert("includeInboundPorts", |a| {
        let [c] = args::<1>("includeInboundPorts", a)?;
        Ok(Value::string(container_ports(c, |_| true)))
    });
    funcs.insert("applicationPorts", |a| {
        let [c] = args::<1>("applicationPorts", a)?;
        Ok(Value::string(container_ports(c, |name| {
            name != "istio-proxy"
        })))
    });
    funcs.insert("kubevirtInterfaces", |a| {
        let [s] = args::<1>("kubevirtInterfaces", a)?;
        Ok(Value::string(string_arg("kubevirtInterfaces", s)?))
    });
    funcs.insert("excludeInterfaces", |a| {
        let [s] = args::<1>("excludeInterfaces", a)?;
        Ok(Value::string(string_arg("excludeInterfaces", s)?))
    });
    funcs.insert("annotation", |a| {
        let [meta, name, default] = args::<3>("annotation", a)?;
        let name = string_arg("annotation", name)?;
        let found = meta.get("annotations").and_then(|anns| anns.get(name));
        // Strings are returned as they are (sprint of a string is the string itself).
        Ok(match (found, default) {
            (Some(found @ Value::String(_)), _) | (_, found @ Value::String(_)) => found.clone(),
            _ => Value::string(sprint(default)),
        })
    });
    funcs.insert("valueOrDefault", |a| {
        let [v, d] = args::<2>("valueOrDefault", a)?;
        let empty = v.is_nil() || v.as_str() == Some("");
        Ok(if empty { d.clone() } else { v.clone() })
    });
    funcs.insert("toJSON", |a| {
        let [m] = args::<1>("toJSON", a)?;
        if m.is_nil() {
            return Ok(Value::string("{}"));
        }
        let m = string_map("toJSON", m)?;
        Ok(Value::string(go_json_map(&m)))
    });
    funcs.insert("fromJSON", |a| {
        let [s] = args::<1>("fromJSON", a)?;
        let text = string_arg("fromJSON", s)?;
        Ok(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => Value::from_json(&v),
            Err(_) => Value::string("{}"),
        })
    });
    funcs.insert("structToJSON", |a| {
        let [v] = args::<1>("structToJSON", a)?;
        if v.is_nil() {
            return Ok(Value::string("{}"));
        }
        // Ports (the one struct Istio's templates print) in corev1.ContainerPort field order.
        if v.get("containerPort").is_some() {
            if let Some(text) = plain_container_port_json(v) {
                return Ok(Value::string(text));
            }
            let json = gojson::to_string(&v.to_json(), GoType::ContainerPort);
            return Ok(Value::string(json));
        }
        Ok(Value::string(gotmpl::json::encode(v, true)))
    });
    funcs.insert("protoToJSON", |a| {
        let [v] = args::<1>("protoToJSON", a)?;
        if v.is_nil() {
            return Ok(Value::string("{}"));
        }
        Ok(crate::data::proxy_config_json(v))
    });
    funcs.insert("toYaml", |a| {
        let [v] = args::<1>("toYaml", a)?;
        Ok(to_yaml(v))
    });
    funcs.insert("indent", |a| {
        let [n, s] = args::<2>("indent", a)?;
        let n = match n {
            Value::Int(i) => *i,
            Value::Float(f) => *f as i64,
            other => {
                return Err(err(
                    "indent",
                    format!("expected int, got {}", other.type_name()),
                ));
            }
        };
        let pad = " ".repeat(n.max(0) as usize);
        let text = string_arg("indent", s)?;
        // Every line but the first gets the padding, as Istio's `indent` does.
        let breaks = text.bytes().filter(|b| *b == b'\n').count();
        let mut out = String::with_capacity(text.len() + breaks * pad.len());
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
                out.push_str(&pad);
            }
            out.push_str(line);
        }
        Ok(Value::string(out))
    });
    funcs.insert("directory", |a| {
        let [p] = args::<1>("directory", a)?;
        let p = string_arg("directory", p)?;
        Ok(Value::string(match p.rfind('/') {
            Some(i) => p[..=i].to_string(),
            None => String::new(),
        }))
    });
    funcs.insert("contains", |a| {
        let [needle, haystack] = args::<2>("contains", a)?;
        let (n, h) = (
            string_arg("contains", needle)?,
            string_arg("contains", haystack)?,
        );
        Ok(Value::Bool(h.contains(n)))
    });
    funcs.insert("toLower", |a| {
        let [s] = args::<1>("toLower", a)?;
        Ok(Value::string(string_arg("toLower", s)?.to_lowercase()))
    });
    funcs.insert("appendMultusNetwork", |a| {
        let [existing, net] = args::<2>("appendMultusNetwork", a)?;
        Ok(Value::string(append_multus_network(
            string_arg("appendMultusNetwork", existing)?,
            string_arg("appendMultusNetwork", net)?,
        )))
    });
    funcs.insert("env", |a| {
        let [k, d] = args::<2>("env", a)?;
        let (key, default) = (string_arg("env", k)?, string_arg("env", d)?);
        let found = ENV_VARS.with(|cell| {
            cell.borrow()
                .as_ref()
                .and_then(|vars| vars.get(key).cloned())
        });
        Ok(Value::string(
            found
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string()),
        ))
    });
    funcs.insert("omit", |a| {
        let Some((dict, keys)) = a.split_first() else {
            return Err(err("omit", "wrong number of args"));
        };
        let mut m = string_map("omit", dict)?;
        for k in keys {
            m.remove(string_arg("omit", k)?);
        }
        Ok(str_map_value(m))
    });
    funcs.insert("strdict", |a| {
        let mut m = BTreeMap::new();
        for pair in a.chunks(2) {
            let key = string_arg("strdict", &pair[0])?.to_string();
            let value = match pair.get(1) {
                Some(v) => string_arg("strdict", v)?.to_string(),
                None => String::new(),
            };
            m.insert(key, value);
        }
        Ok(str_map_value(m))
    });
    funcs.insert("mergeMaps", |a| {
        if a.is_empty() {
            return Ok(Value::Nil);
        }
        let mut out = BTreeMap::new();
        for m in a {
            out.extend(string_map("mergeMaps", m)?);
        }
        Ok(str_map_value(out))
    });
    funcs.insert("toJsonMap", |a| {
        let mut out = BTreeMap::new();
        for m in a {
            out.extend(string_map("toJsonMap", m)?);
        }
        if a.is_empty() {
            return Ok(Value::string("null"));
        }
        Ok(Value::string(go_json_map(&out)))
    });
    funcs.insert("omitNil", |a| {
        let [v] = args::<1>("omitNil", a)?;
        Ok(omit_nil(v).unwrap_or(Value::Nil))
    });
    funcs.insert("otelResourceAttributes", |a| {
        let [mesh, anns, labels, ns, containers] = args::<5>("otelResourceAttributes", a)?;
        check_string_map("otelResourceAttributes", anns)?;
        check_string_map("otelResourceAttributes", labels)?;
        Ok(Value::string(otel_resource_attributes(
            mesh,
            anns,
            labels,
            string_arg("otelResourceAttributes", ns)?,
            containers,
        )))
    });
}

fn exclude_inbound_port(port: &str, excluded: &str) -> String {
    if port.is_empty() || port == "0" {
        return excluded.to_string();
    }
    let mut out = Vec::new();
    for p in excluded.split(',') {
        if p == port {
            return excluded.to_string();
        }
        let p = p.trim();
        if !p.is_empty() {
            out.push(p.to_string());
        }
    }
    out.push(port.to_string());
    out.join(",")
}

/// `json.Marshal` of a `map[string]string`: keys in order, strings HTML-escaped as Go does.
fn go_json_map(m: &BTreeMap<String, String>) -> String {
    let mut out = Vec::new();
    let mut object = gojson::Object::open(&mut out);
    for (k, v) in m {
        object.key(k);
        gotmpl::json::write_string(object.out, v, true);
    }
    object.close();
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// `structToJSON` of a port whose fields are all known and hold strings or integers (every
/// port a pod declares), written out directly: the text of `gojson::to_string`,
/// without building JSON values (it runs twice per port per render). `None` for any other.
fn plain_container_port_json(port: &Value) -> Option<String> {
    let Value::Struct(s) = port else {
        return None;
    };
    let plain = s.fields.iter().all(|(k, v)| {
        gojson::field_names(GoType::ContainerPort).any(|name| name == k)
            && matches!(v, Value::Nil | Value::String(_) | Value::Int(_))
    });
    if !plain {
        return None;
    }
    let mut out = Vec::with_capacity(64);
    let mut object = gojson::Object::open(&mut out);
    for name in gojson::field_names(GoType::ContainerPort) {
        match port.get(name) {
            Some(Value::String(text)) if !text.is_empty() => {
                object.key(name);
                gotmpl::json::write_string(object.out, text, true);
            }
            Some(Value::Int(n)) if *n != 0 || gojson::zero_prints(name) => {
                object.key(name);
                object
                    .out
                    .extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            }
            _ => {}
        }
    }
    object.close();
    String::from_utf8(out).ok()
}

fn container_ports(containers: &Value, include: impl Fn(&str) -> bool) -> String {
    let Value::List(list) = containers else {
        return String::new();
    };
    let mut parts = Vec::new();
    for c in list.iter() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if !include(name) {
            continue;
        }
        if let Some(Value::List(ports)) = c.get("ports") {
            for p in ports.iter() {
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
                if proto == "UDP" || proto == "SCTP" {
                    continue;
                }
                if let Some(n) = p.get("containerPort") {
                    parts.push(sprint(n));
                }
            }
        }
    }
    parts.join(",")
}

fn append_multus_network(existing: &str, network: &str) -> String {
    if existing.is_empty() {
        return network.to_string();
    }
    if let Some(i) = existing.rfind(']') {
        let Ok(nets) =
            serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(existing)
        else {
            return existing.to_string();
        };
        let (ns, name) = match network.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => ("", network),
        };
        for net in &nets {
            if net.get("name").and_then(|n| n.as_str()) == Some(name) {
                let net_ns = net.get("namespace").and_then(|n| n.as_str()).unwrap_or("");
                if net_ns == ns {
                    return existing.to_string();
                }
            }
        }
        let add = if ns.is_empty() {
            format!(r#", {{"name": "{name}"}}"#)
        } else {
            format!(r#", {{"name": "{name}", "namespace": "{ns}"}}"#)
        };
        return format!("{}{add}{}", &existing[..i], &existing[i..]);
    }
    if existing.split(',').any(|n| n.trim() == network) {
        return existing.to_string();
    }
    format!("{existing}, {network}")
}

/// `omitNil`: nil entries dropped from maps and lists, recursively; a container left empty
/// becomes nil itself.
fn omit_nil(v: &Value) -> Option<Value> {
    // Values with nothing to drop (the usual case) are shared, not rebuilt.
    if kept_whole(v) {
        return Some(v.clone());
    }
    match v {
        Value::Nil => None,
        Value::Map(m) => {
            let entries: BTreeMap<_, _> = m
                .entries
                .iter()
                .filter_map(|(k, v)| omit_nil(v).map(|v| (k.clone(), v)))
                .collect();
            if entries.is_empty() {
                return None;
            }
            Some(Value::Map(Arc::new(gotmpl::Map {
                entries,
                elem: m.elem,
            })))
        }
        Value::List(items) => {
            let kept: Vec<Value> = items.iter().filter_map(omit_nil).collect();
            if kept.is_empty() {
                return None;
            }
            Some(Value::list(kept))
        }
        other => Some(other.clone()),
    }
}

/// Whether `omit_nil` keeps `v` exactly as it is: no nil and no empty map or list inside.
fn kept_whole(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Map(m) => !m.entries.is_empty() && m.entries.values().all(kept_whole),
        Value::List(items) => !items.is_empty() && items.iter().all(kept_whole),
        _ => true,
    }
}

/// `anns` and `labels` are nil or `map[string]string` values (see [`check_string_map`]).
fn otel_resource_attributes(
    mesh: &Value,
    anns: &Value,
    labels: &Value,
    namespace: &str,
    containers: &Value,
) -> String {
    let semconv = match field(mesh, "extensionProviders") {
        Some(Value::List(providers)) => providers.iter().any(|p| {
            field(p, "opentelemetry")
                .and_then(|o| field(o, "serviceAttributeEnrichment"))
                .and_then(Value::as_str)
                == Some("OTEL_SEMANTIC_CONVENTIONS")
        }),
        _ => false,
    };
    if !semconv {
        return String::new();
    }
    let containers: &[Value] = match containers {
        Value::List(l) => l,
        _ => &[],
    };
    let non_empty = |m: &Value, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut attrs = Vec::new();
    if let Some(v) = non_empty(anns, "resource.opentelemetry.io/service.namespace") {
        attrs.push(format!("service.namespace={v}"));
    } else if !namespace.is_empty() {
        attrs.push(format!("service.namespace={namespace}"));
    }
    if let Some(v) = non_empty(anns, "resource.opentelemetry.io/service.version") {
        attrs.push(format!("service.version={v}"));
    } else if let Some(v) = non_empty(labels, "app.kubernetes.io/version") {
        attrs.push(format!("service.version={v}"));
    } else if containers.len() == 1 {
        let image = containers[0]
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (tag, digest) = image_tag_digest(image);
        match (tag.is_empty(), digest.is_empty()) {
            (false, false) => attrs.push(format!("service.version={tag}@{digest}")),
            (true, false) => attrs.push(format!("service.version={digest}")),
            (false, true) => attrs.push(format!("service.version={tag}")),
            (true, true) => {}
        }
    }
    if let Some(v) = non_empty(anns, "resource.opentelemetry.io/service.instance.id") {
        attrs.push(format!("service.instance.id={v}"));
    } else if let Some(first) = containers.first() {
        let name = first.get("name").and_then(Value::as_str).unwrap_or("");
        attrs.push(format!(
            "service.instance.id={namespace}.$(POD_NAME).{name}"
        ));
    }
    attrs.join(",")
}

fn image_tag_digest(image: &str) -> (&str, &str) {
    let (image, digest) = match image.find('@') {
        Some(i) => (&image[..i], &image[i + 1..]),
        None => (image, ""),
    };
    let slash = image.rfind('/').map(|i| i as isize).unwrap_or(-1);
    let tag = match image.rfind(':') {
        Some(c) if c as isize > slash => &image[c + 1..],
        _ => "",
    };
    (tag, digest)
}

/// Is this a `map[string]string`? (For callers that need to tell maps apart.)
pub fn is_string_map(v: &Value) -> bool {
    matches!(v, Value::Map(m) if m.elem == MapElem::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `toYaml` remembers the last map it wrote; every call still writes the map it is given.
    #[test]
    fn to_yaml_writes_each_calls_map() {
        let text = |v: &Value| to_yaml(v).as_str().unwrap().to_string();
        let a = Value::from_json(&json!({"requests": {"cpu": "100m"}}));
        let b = Value::from_json(&json!({"limits": {"memory": "1Gi"}}));
        for _ in 0..2 {
            assert_eq!(text(&a), "requests:\n  cpu: 100m\n");
            assert_eq!(text(&a), "requests:\n  cpu: 100m\n");
            assert_eq!(text(&b), "limits:\n  memory: 1Gi\n");
        }
        // The same map, changed (the remembered key keeps `make_mut` from editing in place).
        let mut changed = a.clone();
        drop(a);
        if let Value::Map(m) = &mut changed {
            Arc::make_mut(m)
                .entries
                .insert("extra".into(), Value::string("x"));
        }
        assert_eq!(text(&changed), "extra: x\nrequests:\n  cpu: 100m\n");
        assert_eq!(text(&Value::list([Value::Int(1)])), "- 1\n");
    }

    #[test]
    fn status_port_is_appended_once() {
        assert_eq!(exclude_inbound_port("15020", ""), "15020");
        assert_eq!(exclude_inbound_port("15020", "4,5,6"), "4,5,6,15020");
        assert_eq!(exclude_inbound_port("15020", "15020,4"), "15020,4");
        assert_eq!(exclude_inbound_port("0", "4"), "4");
    }

    #[test]
    fn multus_networks_are_appended_in_either_form() {
        assert_eq!(
            append_multus_network("", "default/istio-cni"),
            "default/istio-cni"
        );
        assert_eq!(
            append_multus_network("a, b", "default/istio-cni"),
            "a, b, default/istio-cni"
        );
        assert_eq!(
            append_multus_network("a, default/istio-cni", "default/istio-cni"),
            "a, default/istio-cni"
        );
        assert_eq!(
            append_multus_network(r#"[{"name": "a"}]"#, "default/istio-cni"),
            r#"[{"name": "a"}, {"name": "istio-cni", "namespace": "default"}]"#
        );
        assert_eq!(append_multus_network("[broken]", "x"), "[broken]");
    }

    #[test]
    fn image_references_split_into_tag_and_digest() {
        assert_eq!(image_tag_digest("nginx:1.21"), ("1.21", ""));
        assert_eq!(image_tag_digest("registry:5000/nginx"), ("", ""));
        assert_eq!(
            image_tag_digest("nginx:1.21@sha256:abc"),
            ("1.21", "sha256:abc")
        );
    }

    #[test]
    fn plain_ports_print_as_the_general_path_does() {
        let ports = [
            json!({"name": "http", "containerPort": 8080, "protocol": "TCP"}),
            json!({"protocol": "UDP", "containerPort": 53, "hostPort": 0, "hostIP": ""}),
            json!({"containerPort": 0, "name": "", "hostPort": 9090}),
            json!({"hostIP": "10.0.0.1", "containerPort": -1, "name": "q\"<é>\u{1}"}),
            json!({"containerPort": 7, "name": null}),
        ];
        for p in &ports {
            let v = Value::structure_with(p, &|_: &[&str]| gotmpl::Shape::Struct);
            let general =
                crate::gojson::to_string(&v.to_json(), crate::gojson::GoType::ContainerPort);
            assert_eq!(plain_container_port_json(&v), Some(general), "{p}");
        }
        // Fields the direct writer does not handle take the general path.
        for p in [
            json!({"containerPort": 80, "appProtocol": "http"}),
            json!({"containerPort": 80.5}),
            json!({"containerPort": 80, "name": ["x"]}),
        ] {
            let v = Value::structure_with(&p, &|_: &[&str]| gotmpl::Shape::Struct);
            assert_eq!(plain_container_port_json(&v), None, "{p}");
        }
    }

    #[test]
    fn indent_pads_every_line_but_the_first() {
        let mut f = Funcs::builtin();
        register(&mut f);
        let t = gotmpl::Template::parse("t", "[{{ indent 2 .s }}]", &f).unwrap();
        let run = |s: &str| t.execute(&Value::map([("s", Value::from(s))])).unwrap();
        assert_eq!(run("a:\n  b: 1\n\nc\n"), "[a:\n    b: 1\n  \n  c\n  ]");
        assert_eq!(run(""), "[]");
        assert_eq!(run("one"), "[one]");
    }

    #[test]
    fn otel_attributes_reject_non_string_maps() {
        let f = {
            let mut f = Funcs::builtin();
            register(&mut f);
            f
        };
        let t = gotmpl::Template::parse("t", "{{ otelResourceAttributes .m .a .l `ns` .c }}", &f)
            .unwrap();
        let data = |anns: serde_json::Value| {
            Value::map([
                ("m", Value::Nil),
                ("a", Value::from_json(&anns)),
                ("l", Value::string_map([("app", "web")])),
                ("c", Value::Nil),
            ])
        };
        let e = t.execute(&data(json!({"x": 1}))).unwrap_err().to_string();
        assert!(
            e.contains("map value of type float64 is not a string"),
            "{e}"
        );
        // Without the semantic-conventions provider there are no attributes.
        assert_eq!(t.execute(&data(json!({"x": "y"}))).unwrap(), "");
    }

    #[test]
    fn omit_nil_drops_nested_nils() {
        let v = Value::from_json(&serde_json::json!({"a": null, "b": {"c": null}, "d": [null, 1]}));
        let out = omit_nil(&v).unwrap();
        assert_eq!(out.to_json(), serde_json::json!({"d": [1.0]}));
        let full = Value::from_json(&serde_json::json!({"a": {"b": [1, "x"]}, "c": true}));
        assert_eq!(omit_nil(&full), Some(full.clone()));
        let emptied = Value::from_json(&serde_json::json!({"a": {"b": []}}));
        assert_eq!(omit_nil(&emptied), None);
    }
}
