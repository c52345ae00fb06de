//! The three inputs of Istio's injector, loaded once: the injector `config` (policy, selectors,
//! templates), the `values` JSON and the MeshConfig; plus the facts about the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::mesh::{self, MeshError};
use crate::render::{self, Template};

/// The raw text of the configuration, as mounted from the ConfigMaps. `None` means the built-in
/// default for that part (each part independently: Istio's values with our templates is fine).
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The `config` key of the `istio-sidecar-injector` ConfigMap (YAML).
    pub injector_config: Option<String>,
    /// The `values` key of the same ConfigMap (JSON).
    pub values: Option<String>,
    /// The `mesh` key of the `istio` ConfigMap (MeshConfig YAML), applied over Istio's defaults.
    pub mesh: Option<String>,
}

/// Facts about the cluster and the process that the configuration does not hold.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// The revision this injector serves (`""` and `"default"` both mean the default revision).
    pub revision: String,
    /// Whether injected proxies become native sidecars (restartable init containers).
    pub native_sidecars: NativeSidecars,
    /// Variables the templates' `env` function reads (the process environment in production).
    pub vars: BTreeMap<String, String>,
    /// Kubernetes or OpenShift; OpenShift takes the proxy's uid/gid from namespace annotations.
    pub platform: Platform,
    /// Namespace annotations by namespace name (only read on OpenShift).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// istiod's `COMPLIANCE_POLICY` (e.g. `fips-140-3`), empty when unset.
    pub compliance_policy: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Platform {
    #[default]
    Kubernetes,
    OpenShift,
}

/// `ENABLE_NATIVE_SIDECARS` and the per-cluster detection behind its `auto` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeSidecars {
    Enabled,
    Disabled,
    /// Native only when every node's kubelet is at least v1.33; the versions are as the nodes
    /// report them (`v1.34.0`), optionally named (`node-1=v1.34.0`) so that a pod already
    /// scheduled to a known node is decided by that node alone. No known nodes means not native.
    Auto {
        kubelet_versions: Vec<String>,
    },
}

impl Default for NativeSidecars {
    fn default() -> Self {
        NativeSidecars::Auto {
            kubelet_versions: Vec::new(),
        }
    }
}

impl NativeSidecars {
    /// The cluster-wide decision (`DetectNativeSidecar`); the pod annotation may still override.
    pub fn enabled(&self) -> bool {
        self.enabled_for(None)
    }

    /// The decision for a pod bound to `node` (its `spec.nodeName`), when that node is known.
    pub fn enabled_for(&self, node: Option<&str>) -> bool {
        match self {
            NativeSidecars::Enabled => true,
            NativeSidecars::Disabled => false,
            NativeSidecars::Auto { kubelet_versions } => {
                let parsed: Vec<(Option<&str>, &str)> = kubelet_versions
                    .iter()
                    .map(|v| match v.split_once('=') {
                        Some((name, version)) => (Some(name.trim()), version),
                        None => (None, v.as_str()),
                    })
                    .collect();
                let supported = |v: &str| kubelet_minor(v).is_some_and(|m| m >= 33);
                if let Some(node) = node.filter(|n| !n.is_empty())
                    && let Some((_, version)) = parsed.iter().find(|(n, _)| *n == Some(node))
                {
                    return supported(version);
                }
                !parsed.is_empty() && parsed.iter().all(|(_, v)| supported(v))
            }
        }
    }
}

/// The minor version of a kubelet version string (`v1.33.2-gke.1` → 33); `None` if unparsable.
fn kubelet_minor(version: &str) -> Option<u64> {
    let v = version.trim().trim_start_matches(['v', 'V']);
    let mut parts = v.split(['.', '-', '+']);
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the injector config is not valid YAML")]
    InjectorConfig(#[source] serde_yaml_ng::Error),
    #[error("template {name:?} does not parse")]
    Template {
        name: String,
        #[source]
        source: render::RenderError,
    },
    #[error("the values are not valid JSON/YAML")]
    Values(#[source] serde_yaml_ng::Error),
    #[error("the values must be a mapping")]
    ValuesNotAMapping,
    #[error("the mesh config is invalid")]
    Mesh(#[from] MeshError),
    #[error("no built-in {0} is compiled into this build")]
    NoBuiltin(&'static str),
}

/// `config.policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Policy {
    #[default]
    Enabled,
    Disabled,
    /// Anything else: Istio logs an error and injects nothing.
    Other(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// The `config` key, minus the templates.
#[derive(Debug, Clone, Default)]
pub struct InjectorConfig {
    pub policy: Policy,
    pub default_templates: Vec<String>,
    pub aliases: BTreeMap<String, Vec<String>>,
    pub never_inject: Vec<LabelSelector>,
    pub always_inject: Vec<LabelSelector>,
    pub injected_annotations: BTreeMap<String, String>,
}

/// The `config` YAML as Istio reads it (unknown keys such as the legacy `template` ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    default_templates: Option<Vec<String>>,
    #[serde(default)]
    templates: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    aliases: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    never_inject_selector: Option<Vec<LabelSelector>>,
    #[serde(default)]
    always_inject_selector: Option<Vec<LabelSelector>>,
    #[serde(default)]
    injected_annotations: Option<BTreeMap<String, String>>,
}

/// Our own templates, values and mesh, shipped in `webhook/engine/builtin/`.
pub mod builtin {
    pub const INJECTOR_CONFIG: Option<&str> = Some(include_str!("../builtin/injector-config.yaml"));
    pub const VALUES: Option<&str> = Some(include_str!("../builtin/values.json"));
    pub const MESH: Option<&str> = Some(include_str!("../builtin/mesh.yaml"));
}

/// A loaded, validated configuration: templates parsed, values and MeshConfig resolved. Cheap to
/// share between threads (`Arc<Injector>`); immutable once built.
#[derive(Debug)]
pub struct Injector {
    pub config: InjectorConfig,
    pub templates: BTreeMap<String, Template>,
    /// The `values` as JSON (what `.Values` shows the templates).
    pub values: Value,
    /// The effective MeshConfig (defaults with the `mesh` text applied), protobuf JSON.
    pub mesh: Value,
    /// `.Values` converted for the template engine once, shared by every render.
    pub(crate) values_tmpl: Arc<render::TmplValue>,
    /// `.MeshConfig` converted once, for every pod whose mesh config is the loaded one.
    pub(crate) mesh_tmpl: render::TmplValue,
    /// The parts of the proxy images that come from values, read once.
    pub(crate) images: Images,
}

/// `global.hub`, `global.tag`, `global.variant` and the two image names from values.
#[derive(Debug, Clone)]
pub(crate) struct Images {
    pub hub: String,
    pub tag: String,
    pub variant: String,
    pub proxy: String,
    pub proxy_init: String,
}

impl Images {
    fn from_values(values: &Value) -> Images {
        let text = |path: &[&str]| {
            crate::at(values, path)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = |key: &str| match text(&["global", key, "image"]) {
            n if n.is_empty() => "proxyv2".to_string(),
            n => n,
        };
        Images {
            hub: text(&["global", "hub"]),
            // A number in values (`tag: 1.28`) is printed as YAML read it.
            tag: match crate::at(values, &["global", "tag"]) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            },
            variant: text(&["global", "variant"]),
            proxy: name("proxy"),
            proxy_init: name("proxy_init"),
        }
    }
}

impl Injector {
    /// Loads the configuration; each missing part falls back to the built-in default.
    pub fn load(sources: &ConfigSources) -> Result<Injector, ConfigError> {
        let pick = |given: &Option<String>, builtin: Option<&'static str>, what| match given {
            Some(text) => Ok(text.clone()),
            None => builtin
                .map(str::to_string)
                .ok_or(ConfigError::NoBuiltin(what)),
        };
        let config_text = pick(
            &sources.injector_config,
            builtin::INJECTOR_CONFIG,
            "injector config",
        )?;
        let values_text = pick(&sources.values, builtin::VALUES, "values")?;
        let mesh_text = match &sources.mesh {
            Some(text) => text.clone(),
            None => builtin::MESH.unwrap_or("").to_string(),
        };

        let raw: RawConfig = if config_text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml_ng::from_str::<Option<RawConfig>>(&config_text)
                .map_err(ConfigError::InjectorConfig)?
                .unwrap_or_default()
        };
        let policy = match raw.policy.as_deref().unwrap_or("") {
            "enabled" => Policy::Enabled,
            "disabled" => Policy::Disabled,
            other => Policy::Other(other.to_string()),
        };
        let default_templates = raw
            .default_templates
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| vec!["sidecar".to_string()]);
        let config = InjectorConfig {
            policy,
            default_templates,
            aliases: raw.aliases.unwrap_or_default(),
            never_inject: raw.never_inject_selector.unwrap_or_default(),
            always_inject: raw.always_inject_selector.unwrap_or_default(),
            injected_annotations: raw.injected_annotations.unwrap_or_default(),
        };
        let mut templates = BTreeMap::new();
        for (name, text) in raw.templates.unwrap_or_default() {
            let text = text.unwrap_or_default();
            let t = Template::parse(&name, &text).map_err(|source| ConfigError::Template {
                name: name.clone(),
                source,
            })?;
            templates.insert(name, t);
        }

        let values: Value = if values_text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_yaml_ng::from_str(&values_text).map_err(ConfigError::Values)?
        };
        let values = match values {
            Value::Null => Value::Object(Default::default()),
            v @ Value::Object(_) => v,
            _ => return Err(ConfigError::ValuesNotAMapping),
        };
        let mesh = mesh::apply(&mesh::defaults(), &mesh::parse_mapping(&mesh_text)?)?;
        let values_tmpl = Arc::new(render::values_value(&values));
        let mesh_tmpl = crate::data::mesh_value(&mesh);
        let images = Images::from_values(&values);
        Ok(Injector {
            config,
            templates,
            values,
            mesh,
            values_tmpl,
            mesh_tmpl,
            images,
        })
    }

    /// The built-in default configuration (our own templates, Istio's default values and mesh).
    pub fn builtin() -> Result<Injector, ConfigError> {
        Injector::load(&ConfigSources::default())
    }

    /// A value from `.Values` by path (`["global", "proxy", "statusPort"]`).
    pub fn value(&self, path: &[&str]) -> Option<&Value> {
        crate::at(&self.values, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_native_sidecars_need_every_kubelet_at_1_33() {
        let auto = |v: &[&str]| NativeSidecars::Auto {
            kubelet_versions: v.iter().map(|s| s.to_string()).collect(),
        };
        assert!(auto(&["v1.33.0", "v1.34.1"]).enabled());
        assert!(!auto(&["v1.33.0", "v1.28.0"]).enabled());
        assert!(!auto(&["garbage"]).enabled());
        assert!(!auto(&[]).enabled());
        assert!(NativeSidecars::Enabled.enabled());
        let named = auto(&["node-1=v1.34.0", "node-2=v1.28.0"]);
        assert!(named.enabled_for(Some("node-1")));
        assert!(!named.enabled_for(Some("node-2")));
        assert!(!named.enabled_for(Some("elsewhere")));
        assert!(!named.enabled());
    }

    #[test]
    fn config_defaults_follow_istio() {
        let inj = Injector::load(&ConfigSources {
            injector_config: Some("policy: enabled\ntemplates: {}\n".into()),
            values: Some("{}".into()),
            mesh: Some(String::new()),
        })
        .unwrap();
        assert_eq!(inj.config.default_templates, ["sidecar"]);
        assert_eq!(inj.config.policy, Policy::Enabled);
        assert_eq!(crate::mesh::status_port(&inj.mesh), 15020);
    }

    #[test]
    fn values_that_are_not_a_mapping_are_rejected() {
        let err = Injector::load(&ConfigSources {
            injector_config: Some(String::new()),
            values: Some("[1, 2]".into()),
            mesh: None,
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::ValuesNotAMapping));
    }
}
