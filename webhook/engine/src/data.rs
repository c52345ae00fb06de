//! The `SidecarTemplateData` the templates see: the (stripped) pod's metadata and spec, the
//! owner, the effective ProxyConfig and MeshConfig, `.Values`, images and ids.

use serde_json::Value;

use crate::render::TmplValue;

/// Everything that goes into one render.
pub struct Input<'a> {
    /// `.TypeMeta`: the owner's kind and apiVersion.
    pub kind: &'a str,
    pub api_version: &'a str,
    /// `.DeploymentMeta`: the owner's name and namespace.
    pub owner_name: &'a str,
    pub owner_namespace: &'a str,
    /// The stripped pod (its `metadata` and `spec`).
    pub pod: &'a Value,
    pub proxy_config: &'a Value,
    pub mesh: &'a Value,
    pub values: &'a TmplValue,
    pub revision: &'a str,
    pub native_sidecars: bool,
    pub proxy_image: String,
    pub proxy_init_image: String,
    pub proxy_uid: i64,
    pub proxy_gid: i64,
    pub inbound_traffic_policy_mode: &'a str,
    pub compliance_policy: &'a str,
}

/// Builds the template data value.
pub fn build(input: &Input<'_>) -> TmplValue {
    serde_json::json!({
        "TypeMeta": {"kind": input.kind, "apiVersion": input.api_version},
        "DeploymentMeta": {"name": input.owner_name, "namespace": input.owner_namespace},
        "ObjectMeta": input.pod.get("metadata"),
        "Spec": input.pod.get("spec"),
        "ProxyConfig": input.proxy_config,
        "MeshConfig": input.mesh,
        "Values": input.values,
        "Revision": input.revision,
        "NativeSidecars": input.native_sidecars,
        "ProxyImage": input.proxy_image,
        "ProxyInitImage": input.proxy_init_image,
        "ProxyUID": input.proxy_uid,
        "ProxyGID": input.proxy_gid,
        "InboundTrafficPolicyMode": input.inbound_traffic_policy_mode,
        "CompliancePolicy": input.compliance_policy,
    })
}
