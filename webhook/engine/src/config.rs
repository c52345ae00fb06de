//! The three inputs of Istio's injector, loaded once: the injector `config` (policy, selectors,
//! templates), the `values` JSON and the MeshConfig; plus the facts about the cluster.

use std::collections::BTreeMap;

/// The raw text of the configuration, as mounted from the ConfigMaps. `None` means the built-in
/// default for that part.
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
}

/// `ENABLE_NATIVE_SIDECARS` and the per-cluster detection behind its `auto` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeSidecars {
    Enabled,
    Disabled,
    /// Native only when every node's kubelet is at least v1.33; the versions are as the nodes
    /// report them (`v1.34.0`). No known nodes means not native.
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration loading is not implemented yet")]
    NotImplemented,
}

/// A loaded, validated configuration: templates parsed, values and MeshConfig resolved. Cheap to
/// share between threads (`Arc<Injector>`); immutable once built.
#[derive(Debug)]
pub struct Injector {}

impl Injector {
    /// Loads the configuration; each missing part falls back to the built-in default.
    pub fn load(sources: &ConfigSources) -> Result<Injector, ConfigError> {
        let _ = sources;
        Err(ConfigError::NotImplemented)
    }

    /// The built-in default configuration (our own templates, Istio's default values and mesh).
    pub fn builtin() -> Result<Injector, ConfigError> {
        Injector::load(&ConfigSources::default())
    }
}
