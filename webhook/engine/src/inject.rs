//! One pod through the whole pipeline: decide, render, merge, finish. Shared by the webhook
//! (`admission`) and `kube-inject`; the two differ only in the [`Mode`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{Environment, InjectorConfig, Platform, Policy};
use crate::decide::{self, Decision, SkipReason};
use crate::doc::{Members, Node};
use crate::finish::{self, FinishError, PostContext};
use crate::merge::{self, MergeError};
use crate::mesh::{self, MeshError};
use crate::render::{RenderError, Texts};
use crate::validate::{self, InvalidAnnotations};
use crate::{Injector, data};

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The admission webhook: the configured policy and selectors; `path_envs` are the env vars
    /// from the URL path (`/inject/cluster/c1/net/n1`).
    Webhook { path_envs: BTreeMap<String, String> },
    /// `kube-inject`: policy `enabled`, no selectors, the default templates, the
    /// `proxy.istio.io/config` annotation folded into the mesh config, and the enclosing
    /// workload as owner.
    KubeInject { owner: Owner },
}

/// The workload a pod belongs to (`TypeMeta` + `DeploymentMeta` in the templates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub api_version: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug)]
pub enum Outcome<'a> {
    Skipped(SkipReason),
    /// `original` is the pod the patch applies to (namespace defaulted, managedFields
    /// dropped), still borrowing from the document it was read from; `injected` is the result.
    Injected {
        original: Node<'a>,
        injected: Node<'a>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("the object is not a pod: {0}")]
    NotAPod(&'static str),
    #[error("injection refused")]
    Annotations(#[from] InvalidAnnotations),
    #[error("could not parse proxy config")]
    ProxyConfig(#[source] MeshError),
    #[error("requested template {name:?} not found; have {known}")]
    UnknownTemplate { name: String, known: String },
    #[error("failed to run injection template {name:?}")]
    Render {
        name: String,
        #[source]
        source: RenderError,
    },
    #[error("failed applying injection overlay")]
    Merge(#[source] MergeError),
    #[error("failed to process pod")]
    Finish(#[from] FinishError),
}

const PROXY_CONFIG_ANNOTATION: &str = "proxy.istio.io/config";
const NATIVE_ANNOTATION: &str = "sidecar.istio.io/nativeSidecar";

/// Injects (or skips) one pod. `namespace` is the request's namespace, used when the pod has
/// none. The pod comes as a read-only tree ([`Node::parse`] of the request, or [`Node::view`]
/// of a `Value`): it is prepared, kept as the patch's original, and the working pod is a copy
/// of it. The rendered templates are kept in `texts`, which the injected pod borrows from.
pub fn inject<'a>(
    pod: Node<'a>,
    namespace: &str,
    injector: &Injector,
    env: &Environment,
    mode: &Mode,
    texts: &'a Texts,
) -> Result<Outcome<'a>, InjectError> {
    let mut original = pod;
    let ns = prepare(&mut original, namespace)?;
    // On OpenShift the webhook clears a proxy uid that equals the app's before the pod is
    // taken as the original, so the patch does not carry that change.
    let openshift = matches!(mode, Mode::Webhook { .. }) && env.platform == Platform::OpenShift;
    if openshift {
        reset_openshift_sidecar_user(&mut original);
    }

    let kube_inject_config;
    let config = match mode {
        Mode::Webhook { .. } => &injector.config,
        Mode::KubeInject { .. } => {
            kube_inject_config = InjectorConfig {
                policy: Policy::Enabled,
                default_templates: vec!["sidecar".into()],
                ..InjectorConfig::default()
            };
            &kube_inject_config
        }
    };
    if let Decision::Skip(reason) = decide::decide(&original, &ns, config) {
        return Ok(Outcome::Skipped(reason));
    }
    // The working pod; its strings stay borrowed from the request until changed.
    let pod = original.clone();

    let annotations = finish::annotations(&pod);
    let labels = finish::labels(&pod);

    // The effective ProxyConfig: mesh defaultConfig with the pod's annotation on top. The
    // webhook ignores an unparsable annotation here (validation reports it below); kube-inject
    // folds it into the mesh config itself and fails on it. Without the annotation both are
    // the loaded configuration, borrowed.
    let default_config = &injector.mesh["defaultConfig"];
    let merge_base = injector.mesh.get("defaultConfig");
    let pc_annotation = annotations.get(PROXY_CONFIG_ANNOTATION);
    let (mesh_config, proxy_config): (Cow<'_, Value>, Cow<'_, Value>) = match (mode, pc_annotation)
    {
        (_, None) => (Cow::Borrowed(&injector.mesh), Cow::Borrowed(default_config)),
        (Mode::Webhook { .. }, Some(text)) => match mesh::parse_proxy_config(text) {
            Ok(pc) => (
                Cow::Borrowed(&injector.mesh),
                Cow::Owned(mesh::merge_proxy_config(merge_base, &pc)),
            ),
            Err(_) => (Cow::Borrowed(&injector.mesh), Cow::Borrowed(default_config)),
        },
        (Mode::KubeInject { .. }, Some(text)) => {
            let pc = mesh::parse_proxy_config(text).map_err(InjectError::ProxyConfig)?;
            let merged = mesh::merge_proxy_config(merge_base, &pc);
            let mut mesh_config = injector.mesh.clone();
            mesh_config["defaultConfig"] = merged.clone();
            (Cow::Owned(mesh_config), Cow::Owned(merged))
        }
    };

    let owner = match mode {
        Mode::Webhook { .. } => owner_from_pod(&pod),
        Mode::KubeInject { owner } => owner.clone(),
    };

    // Cluster and network: values, then the URL path, then the pod's network label.
    let mut proxy_envs = match mode {
        Mode::Webhook { path_envs } => path_envs.clone(),
        Mode::KubeInject { .. } => BTreeMap::new(),
    };
    let value_str = |path: &[&str]| {
        injector
            .value(path)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut cluster = value_str(&["global", "multiCluster", "clusterName"]);
    let mut network = value_str(&["global", "network"]);
    if let Some(c) = proxy_envs
        .get("ISTIO_META_CLUSTER_ID")
        .filter(|c| !c.is_empty())
    {
        cluster = c.clone();
    }
    if let Some(n) = proxy_envs
        .get("ISTIO_META_NETWORK")
        .filter(|n| !n.is_empty())
    {
        network = n.clone();
    }
    if let Some(n) = labels.get("topology.istio.io/network") {
        network = n.clone();
    }

    let (proxy_uid, proxy_gid) = if openshift {
        proxy_ids(env.namespaces.get(&ns))
    } else {
        (1337, 1337)
    };
    let node_name = pod.at(&["spec", "nodeName"]).and_then(Node::as_str);
    let native = env.native_sidecars.enabled_for(node_name);

    validate::annotations(&annotations)?;

    if !cluster.is_empty() {
        proxy_envs.insert("ISTIO_META_CLUSTER_ID".into(), cluster);
    }
    if !network.is_empty() {
        proxy_envs.insert("ISTIO_META_NETWORK".into(), network);
    }

    let status_port = mesh::status_port(&mesh_config);
    // Rendering sees the pod without a previous injection (and with saved overrides back).
    let (stripped, stripped_annotations) =
        if finish::previous_injection(&pod).is_some() || finish::has_overrides(&pod) {
            let stripped = finish::reinsert_overrides(finish::strip_pod(&pod, status_port))?;
            let annotations = finish::annotations(&stripped);
            (Cow::Owned(stripped), Cow::Owned(annotations))
        } else {
            (Cow::Borrowed(&pod), Cow::Borrowed(&annotations))
        };

    let input = data::Input {
        kind: &owner.kind,
        api_version: &owner.api_version,
        owner_name: &owner.name,
        owner_namespace: &owner.namespace,
        pod: &stripped,
        proxy_config: &proxy_config,
        mesh: &mesh_config,
        // The loaded mesh config (not changed by an annotation): use the one converted at load.
        mesh_value: matches!(mesh_config, Cow::Borrowed(_)).then_some(&injector.mesh_tmpl),
        values: &injector.values_tmpl,
        revision: &env.revision,
        native_sidecars: native,
        proxy_image: proxy_image(injector, &proxy_config, &stripped_annotations, false),
        proxy_init_image: proxy_image(injector, &proxy_config, &stripped_annotations, true),
        proxy_uid,
        proxy_gid,
        inbound_traffic_policy_mode: match crate::at(
            &mesh_config,
            &["inboundTrafficPolicy", "mode"],
        )
        .and_then(Value::as_str)
        {
            Some("LOCALHOST") => "localhost",
            _ => "passthrough",
        },
        compliance_policy: &env.compliance_policy,
    };
    let template_data = data::build(&input);
    let vars = std::sync::Arc::new(env.vars.clone());

    let aliases = match mode {
        Mode::Webhook { .. } => &injector.config.aliases,
        Mode::KubeInject { .. } => &config.aliases,
    };
    let names = select_templates(&annotations, &config.default_templates, aliases);
    let mut template_pod = Node::object();
    let mut merged = pod;
    for name in names {
        let Some(template) = injector.templates.get(&name) else {
            return Err(InjectError::UnknownTemplate {
                name,
                known: injector
                    .templates
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let rendered = template
            .render(&template_data, &vars, texts)
            .map_err(|source| InjectError::Render {
                name: name.clone(),
                source,
            })?;
        // Only the names of what the templates add matter later (status, overrides, native
        // layout), so the template pod is merged from a skeleton of the render.
        merge::merge_owned(&mut template_pod, skeleton(&rendered)).map_err(InjectError::Merge)?;
        // A user-declared istio-proxy under `containers` follows the native sidecar into
        // `initContainers` before merging (Istio does the same).
        let native_here = match finish::annotation(&merged, NATIVE_ANNOTATION).as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => native,
        };
        if native_here {
            move_user_proxy_to_init(&mut merged, &template_pod);
        }
        merge::merge_owned(&mut merged, rendered).map_err(InjectError::Merge)?;
    }

    let mesh_tproxy = mesh::interception_mode(&proxy_config) == "TPROXY";
    let mut injected =
        finish::reapply_overwritten_containers(merged, &original, &template_pod, mesh_tproxy)?;

    let values_hold = injector
        .value(&["global", "proxy", "holdApplicationUntilProxyStarts"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ctx = PostContext {
        proxy_envs: &proxy_envs,
        mesh_status_port: status_port,
        mesh_prometheus_merge: mesh_config
            .get("enablePrometheusMerge")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        // The annotation's ProxyConfig applied, as for everything else.
        hold_application: proxy_config
            .get("holdApplicationUntilProxyStarts")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || values_hold,
        rewrite_probes: injector
            .value(&["sidecarInjectorWebhook", "rewriteAppHTTPProbe"])
            .and_then(Value::as_bool)
            .unwrap_or(false),
        revision: &env.revision,
        injected_annotations: match mode {
            Mode::Webhook { .. } => &injector.config.injected_annotations,
            Mode::KubeInject { .. } => &config.injected_annotations,
        },
    };
    finish::post_process(&mut injected, &template_pod, &ctx)?;
    Ok(Outcome::Injected { original, injected })
}

/// The parts of a rendered partial Pod that identify what it adds: the names (and `$patch`
/// directives) of its containers, init containers, volumes and image pull secrets.
fn skeleton<'a>(rendered: &Node<'a>) -> Node<'a> {
    let mut spec = Members::default();
    if let Some(directive) = rendered.at(&["spec", "$patch"]) {
        spec.insert("$patch", directive.clone());
    }
    for field in [
        "containers",
        "initContainers",
        "volumes",
        "imagePullSecrets",
    ] {
        if let Some(items) = rendered.at(&["spec", field]).and_then(Node::as_array) {
            let names = items
                .iter()
                .map(|item| match item.as_object() {
                    Some(m) => m
                        .iter()
                        .filter(|(k, _)| k == "name" || k == "$patch")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    None => item.clone(),
                })
                .collect();
            spec.insert(field, Node::Array(names));
        }
    }
    [("spec", Node::Object(spec))].into_iter().collect()
}

/// Checks the pod's shape, defaults its namespace and drops `managedFields` (large, and
/// irrelevant to injection). Returns the pod's namespace.
fn prepare(pod: &mut Node<'_>, namespace: &str) -> Result<String, InjectError> {
    if !pod.is_object() {
        return Err(InjectError::NotAPod("expected a JSON object"));
    }
    if matches!(pod.get("metadata"), None | Some(Node::Null)) {
        pod.insert("metadata", Node::object());
    }
    let meta = pod.get_mut("metadata").expect("metadata was just set");
    if !meta.is_object() {
        return Err(InjectError::NotAPod("metadata is not an object"));
    }
    meta.remove("managedFields");
    let has_ns = meta
        .get("namespace")
        .and_then(Node::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_ns && !namespace.is_empty() {
        meta.insert("namespace", Node::String(namespace.to_string().into()));
    }
    for field in ["labels", "annotations"] {
        match meta.get(field) {
            None | Some(Node::Null) | Some(Node::Object(_)) => {}
            Some(_) => return Err(InjectError::NotAPod("labels and annotations must be maps")),
        }
    }
    let ns = meta
        .get("namespace")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string();
    match pod.get("spec") {
        None | Some(Node::Null) | Some(Node::Object(_)) => {}
        Some(_) => return Err(InjectError::NotAPod("spec is not an object")),
    }
    for field in ["containers", "initContainers"] {
        match pod.at(&["spec", field]) {
            None | Some(Node::Null) => {}
            Some(Node::Array(items)) if items.iter().all(Node::is_object) => {}
            Some(_) => return Err(InjectError::NotAPod("containers must be a list of objects")),
        }
    }
    Ok(ns)
}

/// `selectTemplates`: the `inject.istio.io/templates` list (trimmed), else the defaults; then
/// aliases expanded.
fn select_templates(
    annotations: &BTreeMap<String, String>,
    defaults: &[String],
    aliases: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let names: Vec<String> = match annotations.get("inject.istio.io/templates") {
        Some(list) => list.split(',').map(|n| n.trim().to_string()).collect(),
        None => defaults.to_vec(),
    };
    names
        .into_iter()
        .flat_map(|n| aliases.get(&n).cloned().unwrap_or_else(|| vec![n]))
        .collect()
}

fn move_user_proxy_to_init(merged: &mut Node<'_>, template_pod: &Node<'_>) {
    if finish::find(template_pod.list("initContainers"), finish::PROXY).is_none() {
        return;
    }
    let Some(containers) = merged.list_mut("containers") else {
        return;
    };
    let Some(i) = containers.iter().position(|c| c.name() == finish::PROXY) else {
        return;
    };
    let proxy = containers.remove(i);
    let spec = merged.object_member("spec");
    let init = spec.entry("initContainers", || Node::Array(vec![]));
    if !init.is_array() {
        *init = Node::Array(vec![]);
    }
    init.as_array_mut().expect("just made a list").push(proxy);
}

/// `GetDeployMetaFromPod`: the owner from the controller reference, with Istio's heuristics
/// for Deployments, Argo Rollouts, DeploymentConfigs and CronJobs.
pub fn owner_from_pod(pod: &Node<'_>) -> Owner {
    let meta = |k: &str| pod.at(&["metadata", k]);
    let s = |v: Option<&Node>| v.and_then(Node::as_str).unwrap_or("").to_string();
    let mut owner = Owner {
        kind: "Pod".into(),
        api_version: "v1".into(),
        name: s(meta("name")),
        namespace: s(meta("namespace")),
    };
    let generate_name = meta("generateName").and_then(Node::as_str).unwrap_or("");
    let controller = meta("ownerReferences")
        .and_then(Node::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("controller").and_then(Node::as_bool) == Some(true));
    if let (false, Some(r)) = (generate_name.is_empty(), controller) {
        owner.api_version = s(r.get("apiVersion"));
        owner.kind = s(r.get("kind"));
        owner.name = s(r.get("name"));
        let label = |k: &str| s(pod.at(&["metadata", "labels", k]));
        let hash = label("pod-template-hash");
        let rollout = label("rollouts-pod-template-hash");
        if owner.kind == "ReplicaSet" && !hash.is_empty() && owner.name.ends_with(&hash) {
            owner.name = owner
                .name
                .strip_suffix(&format!("-{hash}"))
                .unwrap_or(&owner.name)
                .to_string();
            owner.kind = "Deployment".into();
        } else if owner.kind == "ReplicaSet"
            && !rollout.is_empty()
            && owner.name.ends_with(&rollout)
        {
            owner.name = owner
                .name
                .strip_suffix(&format!("-{rollout}"))
                .unwrap_or(&owner.name)
                .to_string();
            owner.kind = "Rollout".into();
            owner.api_version = "v1alpha1".into();
        } else if owner.kind == "ReplicationController" && !label("deploymentconfig").is_empty() {
            owner.name = label("deploymentconfig");
            owner.kind = "DeploymentConfig".into();
        } else if owner.kind == "Job"
            && let Some((base, digits)) = owner.name.rsplit_once('-')
            && !base.is_empty()
            && (8..=10).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            owner.name = base.to_string();
            owner.kind = "CronJob".into();
            owner.api_version = "batch/v1".into();
        }
    }
    if owner.name.is_empty() {
        owner.name = s(meta("name"));
    }
    owner
}

/// `ProxyImage` / `ProxyInitImage`: `<hub>/<image>:<tag>[-<type>]`.
fn proxy_image(
    injector: &Injector,
    proxy_config: &Value,
    annotations: &BTreeMap<String, String>,
    init: bool,
) -> String {
    let images = &injector.images;
    let name = if init {
        &images.proxy_init
    } else {
        &images.proxy
    };
    let mut image_type = if init {
        ""
    } else {
        crate::at(proxy_config, &["image", "imageType"])
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    if image_type.is_empty() {
        image_type = &images.variant;
    }
    if let Some(t) = annotations.get("sidecar.istio.io/proxyImageType") {
        image_type = t;
    }
    let hub = &images.hub;
    format!("{hub}/{name}:{}", tag_with_type(&images.tag, image_type))
}

fn tag_with_type(tag: &str, image_type: &str) -> String {
    if image_type.is_empty() {
        return tag.to_string();
    }
    let mut tag = tag;
    for known in ["distroless", "debug"] {
        if let Some(t) = tag.strip_suffix(&format!("-{known}")) {
            tag = t;
            break;
        }
    }
    if image_type == "default" {
        tag.to_string()
    } else {
        format!("{tag}-{image_type}")
    }
}

/// OpenShift assigns every container the same uid; a proxy uid equal to the app's is cleared
/// so the proxy's traffic stays distinguishable (`isSidecarUserMatchingAppUser`).
fn reset_openshift_sidecar_user(pod: &mut Node<'_>) {
    let uid_of = |c: &Node| {
        c.at(&["securityContext", "runAsUser"])
            .and_then(Node::as_i64)
    };
    let mut sidecar_user = 0;
    let mut app_user = 0;
    for field in ["containers", "initContainers"] {
        for c in pod
            .at(&["spec", field])
            .and_then(Node::as_array)
            .unwrap_or(&[])
        {
            let name = c.name();
            if name == finish::PROXY {
                sidecar_user = uid_of(c).unwrap_or(sidecar_user);
            } else if name != finish::INIT && name != finish::VALIDATION {
                app_user = uid_of(c).unwrap_or(app_user);
            }
        }
    }
    if sidecar_user != app_user {
        return;
    }
    for field in ["containers", "initContainers"] {
        if let Some(Node::Array(items)) = pod.get_mut("spec").and_then(|s| s.get_mut(field))
            && let Some(c) = items.iter_mut().find(|c| c.name() == finish::PROXY)
        {
            if let Some(sc) = c.get_mut("securityContext") {
                sc.remove("runAsUser");
                sc.remove("runAsGroup");
            }
            return;
        }
    }
}

/// OpenShift's namespace uid/gid ranges: the last uid of `openshift.io/sa.scc.uid-range`, the
/// last gid of the first block of `…supplemental-groups` (falling back to the uid range).
fn proxy_ids(ns_annotations: Option<&BTreeMap<String, String>>) -> (i64, i64) {
    let Some(anns) = ns_annotations else {
        return (1337, 1337);
    };
    let uid_range = anns
        .get("openshift.io/sa.scc.uid-range")
        .filter(|v| !v.is_empty());
    let uid = uid_range
        .and_then(|r| parse_block(r))
        .map(|(_, end)| end)
        .unwrap_or(1337);
    let groups = anns
        .get("openshift.io/sa.scc.supplemental-groups")
        .or(anns.get("openshift.io/sa.scc.uid-range"))
        .filter(|v| !v.is_empty());
    let gid = groups
        .and_then(|g| {
            let blocks: Option<Vec<(i64, i64)>> = g.split(',').map(parse_block).collect();
            blocks?.first().copied()
        })
        .map(|(_, end)| end)
        .unwrap_or(1337);
    (uid, gid)
}

/// `start/size` or `start-end`.
fn parse_block(text: &str) -> Option<(i64, i64)> {
    let t = text.trim();
    if let Some((start, size)) = t.split_once('/') {
        let (s, n): (u32, u32) = (start.trim().parse().ok()?, size.trim().parse().ok()?);
        return Some((s as i64, s as i64 + n as i64 - 1));
    }
    let (start, end) = t.split_once('-')?;
    Some((
        start.trim().parse::<u32>().ok()? as i64,
        end.trim().parse::<u32>().ok()? as i64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_pods_name_the_deployment() {
        let pod = json!({"metadata": {"generateName": "hello-abc-", "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "hello-abc", "controller": true}]}});
        let o = owner_from_pod(&Node::view(&pod));
        assert_eq!((o.kind.as_str(), o.name.as_str()), ("Deployment", "hello"));
    }

    #[test]
    fn cronjob_pods_name_the_cronjob() {
        let pod = json!({"metadata": {"generateName": "x-",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "backup-28391234", "controller": true}]}});
        let o = owner_from_pod(&Node::view(&pod));
        assert_eq!((o.kind.as_str(), o.name.as_str()), ("CronJob", "backup"));
    }

    #[test]
    fn bare_pods_own_themselves() {
        let o = owner_from_pod(&Node::view(
            &json!({"metadata": {"name": "p", "namespace": "n"}}),
        ));
        assert_eq!(
            o,
            Owner {
                kind: "Pod".into(),
                api_version: "v1".into(),
                name: "p".into(),
                namespace: "n".into()
            }
        );
    }

    #[test]
    fn image_types_replace_known_suffixes() {
        assert_eq!(tag_with_type("1.2", "distroless"), "1.2-distroless");
        assert_eq!(tag_with_type("1.2-debug", "distroless"), "1.2-distroless");
        assert_eq!(tag_with_type("1.2-debug", "default"), "1.2");
        assert_eq!(tag_with_type("1.2", ""), "1.2");
    }

    #[test]
    fn openshift_ids_come_from_namespace_ranges() {
        let anns: BTreeMap<String, String> = [(
            "openshift.io/sa.scc.uid-range".to_string(),
            "1000620000/10000".to_string(),
        )]
        .into_iter()
        .collect();
        assert_eq!(proxy_ids(Some(&anns)), (1000629999, 1000629999));
        assert_eq!(proxy_ids(None), (1337, 1337));
        assert_eq!(parse_block("5-9"), Some((5, 9)));
    }

    #[test]
    fn template_selection_expands_aliases() {
        let anns = [(
            "inject.istio.io/templates".to_string(),
            " a , b".to_string(),
        )]
        .into_iter()
        .collect();
        let aliases = [("b".to_string(), vec!["c".to_string(), "d".to_string()])]
            .into_iter()
            .collect();
        assert_eq!(select_templates(&anns, &[], &aliases), ["a", "c", "d"]);
    }
}
