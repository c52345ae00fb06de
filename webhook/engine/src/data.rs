//! The `SidecarTemplateData` the templates see: the (stripped) pod's metadata and spec, the
//! owner, the effective ProxyConfig and MeshConfig, `.Values`, images and ids — as Go structs
//! (fields found by Go name, integers printing as integers), with Go's zero values where the
//! templates rely on them (an absent annotation map still indexes to `""`).

use std::sync::Arc;

use gotmpl::{Schema, Shape, Value as T};
use serde_json::{Value, json};

use crate::doc::Node;

/// Everything that goes into one render.
pub struct Input<'a> {
    /// `.TypeMeta`: the owner's kind and apiVersion.
    pub kind: &'a str,
    pub api_version: &'a str,
    /// `.DeploymentMeta`: the owner's name and namespace.
    pub owner_name: &'a str,
    pub owner_namespace: &'a str,
    /// The stripped pod (its `metadata` and `spec`).
    pub pod: &'a Node<'a>,
    pub proxy_config: &'a Value,
    pub mesh: &'a Value,
    /// `mesh` already converted, when the caller has it.
    pub mesh_value: Option<&'a T>,
    pub values: &'a T,
    pub revision: &'a str,
    pub native_sidecars: bool,
    pub proxy_image: String,
    pub proxy_init_image: String,
    pub proxy_uid: i64,
    pub proxy_gid: i64,
    pub inbound_traffic_policy_mode: &'a str,
    pub compliance_policy: &'a str,
}

/// Map-typed fields of Kubernetes and Istio structs (`map[string]string` and friends): their
/// keys are data, not field names.
const STRING_MAPS: &[&str] = &[
    "labels",
    "annotations",
    "nodeSelector",
    "matchLabels",
    "limits",
    "requests",
    "proxyMetadata",
    "runtimeValues",
    "data",
    "volumeAttributes",
    "overhead",
];

/// Kubernetes and Istio objects read as Go structs.
struct Objects;

impl Schema for Objects {
    fn shape(&self, path: &[&str]) -> Shape {
        match path.last() {
            Some(last) if STRING_MAPS.contains(last) => Shape::StringMap,
            _ => Shape::Struct,
        }
    }

    fn field_name(&self, json_name: &str) -> Option<&'static str> {
        crate::fields::known(json_name)
    }
}

/// Builds the template data value.
pub fn build(input: &Input<'_>) -> T {
    let empty = Node::object();
    let mut meta = T::structure_with(input.pod.get("metadata").unwrap_or(&empty), &Objects);
    // Labels and annotations are maps even when absent (or not objects), so `index` gives "".
    if let T::Struct(s) = &mut meta {
        let s = Arc::make_mut(s);
        for field in ["labels", "annotations"] {
            let no_entries = || T::string_map(std::iter::empty::<(&str, &str)>());
            match s.fields.iter_mut().find(|(k, _)| &**k == field) {
                // Only a JSON object converts to a map.
                Some((_, T::Map(_))) => {}
                Some((_, other)) => *other = no_entries(),
                None => s.fields.push((field.into(), no_entries())),
            }
        }
    }
    let spec = input
        .pod
        .get("spec")
        .filter(|s| s.is_object())
        .unwrap_or(&empty);
    let mut spec = T::structure_with(spec, &Objects);
    // Go string fields are "" when unset; templates compare and print them.
    if let T::Struct(s) = &mut spec {
        let s = Arc::make_mut(s);
        for field in ["serviceAccountName", "nodeName", "hostname", "subdomain"] {
            if !s.fields.iter().any(|(k, _)| &**k == field) {
                s.fields.push((field.into(), T::string("")));
            }
        }
    }
    // A mesh config changed for this pod is converted here, without the load-time extras.
    let mesh = match input.mesh_value {
        Some(converted) => converted.clone(),
        None => convert_mesh(input.mesh),
    };
    T::strict_structure(
        "*inject.SidecarTemplateData",
        [
            (
                "TypeMeta",
                T::structure(
                    "v1.TypeMeta",
                    [
                        ("kind", T::string(input.kind)),
                        ("apiVersion", T::string(input.api_version)),
                    ],
                ),
            ),
            (
                "DeploymentMeta",
                T::structure(
                    "types.NamespacedName",
                    [
                        ("namespace", T::string(input.owner_namespace)),
                        ("name", T::string(input.owner_name)),
                    ],
                ),
            ),
            ("ObjectMeta", meta),
            ("Spec", spec),
            ("ProxyConfig", proxy_config(input, &mesh)),
            ("MeshConfig", mesh),
            ("Values", input.values.clone()),
            ("Revision", T::string(input.revision)),
            ("NativeSidecars", T::Bool(input.native_sidecars)),
            ("ProxyImage", T::string(input.proxy_image.as_str())),
            ("ProxyInitImage", T::string(input.proxy_init_image.as_str())),
            ("ProxyUID", T::Int(input.proxy_uid)),
            ("ProxyGID", T::Int(input.proxy_gid)),
            (
                "InboundTrafficPolicyMode",
                T::string(input.inbound_traffic_policy_mode),
            ),
            ("CompliancePolicy", T::string(input.compliance_policy)),
        ],
    )
}

/// `.ProxyConfig`. It is usually the mesh's `defaultConfig` (unchanged, or changed for this pod
/// in both), which the converted `.MeshConfig` already holds in the same form: share it rather
/// than convert again.
fn proxy_config(input: &Input<'_>, mesh: &T) -> T {
    // Without an annotation the two are the same value: no need to compare every member.
    if let Some(converted) = mesh.get("defaultConfig")
        && input
            .mesh
            .get("defaultConfig")
            .is_some_and(|d| std::ptr::eq(d, input.proxy_config) || d == input.proxy_config)
    {
        return converted.clone();
    }
    proxy_config_value(input.proxy_config)
}

/// Wrapper fields (`google.protobuf.BoolValue` etc.) of ProxyConfig: templates call `.GetValue`.
const WRAPPERS: &[&str] = &["holdApplicationUntilProxyStarts", "concurrency"];

/// ProxyConfig as the Go proto message: the interception mode enum always has a value
/// (`REDIRECT` is its zero), wrappers are messages, `proxyMetadata` is a (possibly empty) map.
pub fn proxy_config_value(pc: &Value) -> T {
    let mut pc = pc.clone();
    if let Some(obj) = pc.as_object_mut() {
        obj.entry("interceptionMode")
            .or_insert_with(|| json!("REDIRECT"));
        if !obj.get("proxyMetadata").is_some_and(Value::is_object) {
            obj.insert("proxyMetadata".into(), json!({}));
        }
        for w in WRAPPERS {
            if let Some(v) = obj.get_mut(*w)
                && !v.is_object()
                && !v.is_null()
            {
                *v = json!({"value": v.clone()});
            }
        }
    }
    T::structure_with(&pc, &Objects)
}

/// MeshConfig as the Go proto message, with its `defaultConfig` shaped like [`proxy_config_value`].
/// Meant for the configuration as loaded: the default ProxyConfig, which every render without
/// a `proxy.istio.io/config` annotation shares, carries its `protoToJSON` text.
pub fn mesh_value(mesh: &Value) -> T {
    let T::Struct(mut s) = convert_mesh(mesh) else {
        return T::Nil;
    };
    let fields = &mut Arc::make_mut(&mut s).fields;
    if let Some((_, pc)) = fields.iter_mut().find(|(k, _)| k == "defaultConfig") {
        *pc = with_proxy_config_json(std::mem::take(pc));
    }
    T::Struct(s)
}

fn convert_mesh(mesh: &Value) -> T {
    let mut m = mesh.clone();
    let pc = m.get("defaultConfig").cloned();
    if let Some(obj) = m.as_object_mut() {
        obj.remove("defaultConfig");
    }
    let T::Struct(s) = T::structure_with(&m, &Objects) else {
        return T::Nil;
    };
    let mut s = (*s).clone();
    if let Some(pc) = pc {
        s.fields
            .push(("defaultConfig".into(), proxy_config_value(&pc)));
    }
    T::Struct(Arc::new(s))
}

/// The `protoToJSON` text of a ProxyConfig value, attached to it by [`with_proxy_config_json`].
struct ProxyConfigJson(Arc<str>);

/// Attaches the `protoToJSON` text to a ProxyConfig that many renders share (the mesh's default,
/// converted at load), so that each render's `protoToJSON .ProxyConfig` only copies a pointer.
fn with_proxy_config_json(pc: T) -> T {
    let T::Struct(mut s) = pc else {
        return pc;
    };
    let text: Arc<str> = proxy_config_json_uncached(&T::Struct(s.clone())).into();
    if let Some(s) = Arc::get_mut(&mut s) {
        s.attachment = Some(Arc::new(ProxyConfigJson(text)));
    }
    T::Struct(s)
}

/// `protoToJSON` of a ProxyConfig value built by [`proxy_config_value`].
pub fn proxy_config_json(v: &T) -> T {
    match v.attachment::<ProxyConfigJson>() {
        Some(ProxyConfigJson(text)) => T::String(text.clone()),
        None => T::string(proxy_config_json_uncached(v)),
    }
}

fn proxy_config_json_uncached(v: &T) -> String {
    let mut json = v.to_json();
    if let Some(obj) = json.as_object_mut() {
        if obj.get("interceptionMode").and_then(Value::as_str) == Some("REDIRECT") {
            obj.remove("interceptionMode");
        }
        for w in WRAPPERS {
            if let Some(inner) = obj.get(*w).and_then(|x| x.get("value")).cloned() {
                obj.insert(w.to_string(), inner);
            }
        }
    }
    crate::mesh::proxy_config_json(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mesh_default_proxy_config_carries_its_proto_json() {
        let mesh = json!({
            "defaultConfig": {
                "discoveryAddress": "istiod.istio-system.svc:15012",
                "proxyMetadata": {"B": "2", "A": "1"},
                "holdApplicationUntilProxyStarts": true
            },
            "trustDomain": "cluster.local"
        });
        let converted = mesh_value(&mesh);
        let pc = converted
            .get("defaultConfig")
            .expect("converted defaultConfig");
        assert!(pc.attachment::<ProxyConfigJson>().is_some());
        let shared = proxy_config_json(pc);
        assert_eq!(
            shared.as_str(),
            Some(proxy_config_json_uncached(pc).as_str())
        );
        // Built per render (an annotation changed it): computed on the spot, same text.
        let fresh = proxy_config_value(&mesh["defaultConfig"]);
        assert!(fresh.attachment::<ProxyConfigJson>().is_none());
        assert_eq!(proxy_config_json(&fresh), shared);
        // A changed copy does not keep the old text.
        let T::Struct(mut s) = pc.clone() else {
            panic!("a struct")
        };
        Arc::make_mut(&mut s).fields.clear();
        let changed = T::Struct(s);
        assert!(changed.attachment::<ProxyConfigJson>().is_none());
        assert_eq!(proxy_config_json(&changed).as_str(), Some("{}"));
    }

    #[test]
    fn a_mesh_changed_for_one_pod_is_converted_once_without_the_load_time_text() {
        let mesh = json!({"defaultConfig": {"concurrency": 2}, "trustDomain": "td"});
        let pod = Node::from_value(json!({"metadata": {}, "spec": {}}));
        let values = T::Nil;
        let input = Input {
            kind: "Deployment",
            api_version: "apps/v1",
            owner_name: "web",
            owner_namespace: "shop",
            pod: &pod,
            proxy_config: &mesh["defaultConfig"],
            mesh: &mesh,
            mesh_value: None,
            values: &values,
            revision: "",
            native_sidecars: false,
            proxy_image: String::new(),
            proxy_init_image: String::new(),
            proxy_uid: 1337,
            proxy_gid: 1337,
            inbound_traffic_policy_mode: "passthrough",
            compliance_policy: "",
        };
        let data = build(&input);
        let (Some(T::Struct(pc)), Some(T::Struct(dflt))) = (
            data.get("ProxyConfig"),
            data.get("MeshConfig").and_then(|m| m.get("defaultConfig")),
        ) else {
            panic!("ProxyConfig and MeshConfig.defaultConfig are structs")
        };
        assert!(Arc::ptr_eq(pc, dflt), "one conversion, shared");
        assert!(pc.attachment.is_none());
        let concurrency = T::Struct(pc.clone()).get("concurrency").cloned();
        assert_eq!(
            concurrency.and_then(|c| c.get("value").cloned()),
            Some(T::Int(2))
        );
    }
}

#[cfg(test)]
mod schema_tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn known_field_names_are_shared_and_others_copied() {
        let v = T::structure_with(&json!({"name": "app", "x-custom": {"port": 80}}), &Objects);
        let T::Struct(s) = &v else { panic!("a struct") };
        assert!(matches!(s.fields[0].0, Cow::Borrowed("name")));
        assert!(matches!(&s.fields[1].0, Cow::Owned(n) if n == "x-custom"));
        assert_eq!(v.get("name").and_then(T::as_str), Some("app"));
        let port = v.get("x-custom").and_then(|c| c.get("port"));
        assert_eq!(port, Some(&T::Int(80)));
    }
}
