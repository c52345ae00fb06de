//! The configuration flags `serve` and `kube-inject` share: Istio's ConfigMap keys as files.

use std::path::PathBuf;

use injector_engine::{ConfigSources, Environment, Injector, NativeSidecars, Platform};

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// The `config` key of Istio's `istio-sidecar-injector` ConfigMap (policy, templates), YAML.
    /// Built-in templates when absent.
    #[arg(long, env = "INJECTOR_CONFIG", value_name = "FILE")]
    pub injector_config: Option<PathBuf>,
    /// The `values` key of the same ConfigMap (Helm values the templates read), JSON.
    #[arg(long, env = "INJECTOR_VALUES", value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// The `mesh` key of Istio's `istio` ConfigMap (MeshConfig), YAML, applied over Istio's defaults.
    #[arg(long, env = "INJECTOR_MESH_CONFIG", value_name = "FILE")]
    pub mesh_config: Option<PathBuf>,
    /// The Istio revision this injector serves.
    #[arg(long, env = "REVISION", default_value = "default")]
    pub revision: String,
    /// Native sidecars (restartable init containers): `true`, `false`, or `auto` (only when every
    /// kubelet version given with --kubelet-version is at least v1.33).
    #[arg(
        long,
        env = "ENABLE_NATIVE_SIDECARS",
        default_value = "auto",
        value_name = "MODE"
    )]
    pub native_sidecars: String,
    /// Kubelet versions of the cluster's nodes (`v1.34.0`, or `node-1=v1.34.0` so a pod already
    /// bound to that node is decided by it alone), for `--native-sidecars auto`. Repeat or
    /// separate with commas.
    #[arg(
        long = "kubelet-version",
        value_delimiter = ',',
        value_name = "VERSION"
    )]
    pub kubelet_versions: Vec<String>,
}

impl ConfigArgs {
    /// Reads the files named by the flags.
    pub fn sources(&self) -> anyhow::Result<ConfigSources> {
        let read = |path: &Option<PathBuf>| -> anyhow::Result<Option<String>> {
            match path {
                None => Ok(None),
                Some(path) => std::fs::read_to_string(path)
                    .map(Some)
                    .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display())),
            }
        };
        Ok(ConfigSources {
            injector_config: read(&self.injector_config)?,
            values: read(&self.values)?,
            mesh: read(&self.mesh_config)?,
        })
    }

    pub fn injector(&self) -> anyhow::Result<Injector> {
        Ok(Injector::load(&self.sources()?)?)
    }

    pub fn environment(&self) -> anyhow::Result<Environment> {
        let native_sidecars = match self.native_sidecars.as_str() {
            "true" | "enabled" => NativeSidecars::Enabled,
            "false" | "disabled" => NativeSidecars::Disabled,
            "auto" => NativeSidecars::Auto {
                kubelet_versions: self.kubelet_versions.clone(),
            },
            other => anyhow::bail!("--native-sidecars {other:?}: expected true, false or auto"),
        };
        let vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        // istiod reads these from its environment; so do we.
        let platform = match vars.get("PLATFORM").map(|p| p.to_ascii_lowercase()) {
            Some(p) if p == "openshift" => Platform::OpenShift,
            _ => Platform::Kubernetes,
        };
        let compliance_policy = vars.get("COMPLIANCE_POLICY").cloned().unwrap_or_default();
        Ok(Environment {
            revision: self.revision.clone(),
            native_sidecars,
            platform,
            compliance_policy,
            vars,
            ..Environment::default()
        })
    }
}
