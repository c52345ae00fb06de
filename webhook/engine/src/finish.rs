//! Everything Istio does to the pod after the templates are merged (`postProcessPod` and
//! friends): re-applying the user's own versions of injected containers, cluster env from the
//! URL path, Prometheus merge, probe rewriting, the status annotation and container order. Also
//! the re-injection stripping that happens before rendering.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::doc::{Members, Node};
use crate::gojson::{self, GoType};
use crate::merge::{self, MergeError};
use crate::validate::parse_go_bool;

pub const PROXY: &str = "istio-proxy";
pub const INIT: &str = "istio-init";
pub const VALIDATION: &str = "istio-validation";
pub const CORE_DUMP: &str = "enable-core-dump";
const STATUS: &str = "sidecar.istio.io/status";
const OVERRIDES: &str = "proxy.istio.io/overrides";
const PROBERS_ENV: &str = "ISTIO_KUBE_APP_PROBERS";
const PROMETHEUS_ENV: &str = "ISTIO_PROMETHEUS_ANNOTATIONS";

#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("{OVERRIDES} is not valid JSON")]
    Overrides(#[source] serde_json::Error),
    #[error("failed to apply sidecar container")]
    Reapply(#[source] MergeError),
    #[error("invalid prometheus scrape {0}")]
    Prometheus(String),
}

/// What post-processing needs beyond the pod.
pub struct PostContext<'a> {
    /// Env vars moved to the end of istio-proxy's env (URL path parameters, cluster, network).
    pub proxy_envs: &'a BTreeMap<String, String>,
    /// `defaultConfig.statusPort` of the mesh config.
    pub mesh_status_port: i64,
    /// mesh `enablePrometheusMerge`.
    pub mesh_prometheus_merge: bool,
    /// `holdApplicationUntilProxyStarts` from mesh + annotation, or values.
    pub hold_application: bool,
    /// values `sidecarInjectorWebhook.rewriteAppHTTPProbe`.
    pub rewrite_probes: bool,
    pub revision: &'a str,
    pub injected_annotations: &'a BTreeMap<String, String>,
}

/// The first item of `items` named `name`.
pub fn find<'n, 'a>(items: &'n [Node<'a>], name: &str) -> Option<&'n Node<'a>> {
    items.iter().find(|c| c.name() == name)
}

/// `FindContainerFromPod`: containers first, then init containers.
pub fn find_in_pod<'n, 'a>(pod: &'n Node<'a>, name: &str) -> Option<&'n Node<'a>> {
    find(pod.list("containers"), name).or_else(|| find(pod.list("initContainers"), name))
}

fn find_in_pod_mut<'n, 'a>(pod: &'n mut Node<'a>, name: &str) -> Option<&'n mut Node<'a>> {
    let in_containers = find(pod.list("containers"), name).is_some();
    let field = if in_containers {
        "containers"
    } else {
        "initContainers"
    };
    pod.list_mut(field)?.iter_mut().find(|c| c.name() == name)
}

pub fn annotations(pod: &Node<'_>) -> BTreeMap<String, String> {
    string_map(pod.at(&["metadata", "annotations"]))
}

pub fn labels(pod: &Node<'_>) -> BTreeMap<String, String> {
    string_map(pod.at(&["metadata", "labels"]))
}

/// One annotation's value as [`annotations`] spells it, without copying all of them.
pub fn annotation<'n>(pod: &'n Node<'_>, name: &str) -> Option<Cow<'n, str>> {
    pod.at(&["metadata", "annotations", name]).map(Node::text)
}

fn string_map(v: Option<&Node<'_>>) -> BTreeMap<String, String> {
    v.and_then(Node::as_object)
        .into_iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.to_string(), v.text().into_owned()))
        .collect()
}

/// The metadata map at `/metadata/<field>`, created if missing.
fn meta_map<'p, 'a>(pod: &'p mut Node<'a>, field: &str) -> &'p mut Members<'a> {
    object_member(pod.object_member("metadata"), field)
}

/// `map[key]` as an object: created, or replaced by an empty one, when it is not one.
fn object_member<'p, 'a>(map: &'p mut Members<'a>, key: &str) -> &'p mut Members<'a> {
    let member = map.entry(key, Node::object);
    if !member.is_object() {
        *member = Node::object();
    }
    member.as_object_mut().expect("just made an object")
}

/// The container names a previous injection recorded (`sidecar.istio.io/status`), or `None`
/// when the pod was not injected (or the record does not parse).
pub struct PreviousInjection {
    pub containers: Vec<String>,
    pub init_containers: Vec<String>,
}

/// Whether the pod carries saved overrides (`proxy.istio.io/overrides`).
pub fn has_overrides(pod: &Node<'_>) -> bool {
    pod.at(&["metadata", "annotations", OVERRIDES]).is_some()
}

pub fn previous_injection(pod: &Node<'_>) -> Option<PreviousInjection> {
    let text = pod.at(&["metadata", "annotations", STATUS])?.as_str()?;
    injection_status(text)
}

/// The containers a `sidecar.istio.io/status` annotation names, when it is a JSON object.
fn injection_status(text: &str) -> Option<PreviousInjection> {
    let status: Value = serde_json::from_str(text).ok()?;
    if !status.is_object() {
        return None;
    }
    let names = |key: &str| -> Vec<String> {
        status
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    Some(PreviousInjection {
        containers: names("containers"),
        init_containers: names("initContainers"),
    })
}

/// Whether `name` sanitises to `label` under Prometheus' label-name rules:
/// `prometheus.io/scrape` and `prometheus-io.scrape` both become `prometheus_io_scrape`.
fn sanitizes_to(name: &str, label: &str) -> bool {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .eq(label.chars())
}

/// Which of the Prometheus labels below an annotation name sanitises to.
fn prometheus_label(name: &str) -> Option<&'static str> {
    [SCRAPE, PORT, PATH, TARGETS, SECURE_PORT]
        .into_iter()
        .find(|label| sanitizes_to(name, label))
}

const SCRAPE: &str = "prometheus_io_scrape";
const PORT: &str = "prometheus_io_port";
const PATH: &str = "prometheus_io_path";
const TARGETS: &str = "prometheus_istio_io_scrape_targets";
const SECURE_PORT: &str = "prometheus_istio_io_secure_port";

/// The scrape port annotation (the first in name order, as Istio iterates a Go map sorted).
fn prometheus_port(annotations: &BTreeMap<String, String>) -> Option<&str> {
    annotations
        .iter()
        .find(|(k, _)| sanitizes_to(k, PORT))
        .map(|(_, v)| v.as_str())
}

fn clear_prometheus(pod: &mut Node<'_>) {
    let anns = meta_map(pod, "annotations");
    anns.retain(|k, _| !matches!(prometheus_label(k), Some(SCRAPE | PORT | PATH | TARGETS)));
}

/// `stripPod`: removes what a previous injection added, so rendering sees the user's pod.
pub fn strip_pod<'a>(pod: &Node<'a>, mesh_status_port: i64) -> Node<'a> {
    let Some(prev) = previous_injection(pod) else {
        return pod.clone();
    };
    let mut out = pod.clone();
    for (field, names) in [
        ("containers", &prev.containers),
        ("initContainers", &prev.init_containers),
    ] {
        if let Some(items) = out.list_mut(field) {
            items.retain(|c| !names.iter().any(|n| n == c.name()));
        }
    }
    if prometheus_port(&annotations(&out)) == Some(mesh_status_port.to_string().as_str()) {
        clear_prometheus(&mut out);
    }
    meta_map(&mut out, "annotations").swap_remove(STATUS);
    out
}

/// The containers saved in a `proxy.istio.io/overrides` annotation's text.
fn overrides_in(
    text: Option<&str>,
) -> Result<(Vec<Node<'static>>, Vec<Node<'static>>), FinishError> {
    let Some(text) = text else {
        return Ok((vec![], vec![]));
    };
    let mut v: Value = serde_json::from_str(text).map_err(FinishError::Overrides)?;
    let mut take = |k: &str| match v.get_mut(k).map(Value::take) {
        Some(Value::Array(items)) => items.into_iter().map(Node::from_value).collect(),
        _ => vec![],
    };
    Ok((take("containers"), take("initContainers")))
}

/// `reinsertOverrides`: containers saved in `proxy.istio.io/overrides` come back before
/// rendering, so templates see the pod as the user wrote it.
pub fn reinsert_overrides(pod: Node<'_>) -> Result<Node<'_>, FinishError> {
    let (containers, init) = overrides_in(annotation(&pod, OVERRIDES).as_deref())?;
    let mut pod = pod;
    for (field, saved) in [("containers", containers), ("initContainers", init)] {
        for c in saved {
            if find(pod.list(field), c.name()).is_some() {
                continue;
            }
            ensure_list(&mut pod, field).push(c);
        }
    }
    Ok(pod)
}

fn ensure_list<'p, 'a>(pod: &'p mut Node<'a>, field: &str) -> &'p mut Vec<Node<'a>> {
    let spec = pod.object_member("spec");
    let l = spec.entry(field, || Node::Array(vec![]));
    if !l.is_array() {
        *l = Node::Array(vec![]);
    }
    l.as_array_mut().expect("just made a list")
}

/// `reapplyOverwrittenContainers`: a container the user declared under an injected name
/// (`istio-proxy`, `istio-init`, …) is merged back over the injected one and remembered in
/// `proxy.istio.io/overrides`.
pub fn reapply_overwritten_containers<'a>(
    final_pod: Node<'a>,
    original: &Node<'a>,
    template_pod: &Node<'_>,
    proxy_interception_tproxy: bool,
) -> Result<Node<'a>, FinishError> {
    let (saved_containers, saved_init) = overrides_in(annotation(original, OVERRIDES).as_deref())?;
    let prev = previous_injection(original);
    let already = prev.is_some();
    let prev = prev.unwrap_or(PreviousInjection {
        containers: vec![],
        init_containers: vec![],
    });
    let mut final_pod = final_pod;
    // `{"containers":[...],"initContainers":[...]}`, each container as Go prints it.
    let mut overrides = Vec::new();
    let mut object = gojson::Object::open(&mut overrides);
    for (field, injected_before, saved) in [
        ("containers", &prev.containers, &saved_containers),
        ("initContainers", &prev.init_containers, &saved_init),
    ] {
        let mut applied = 0;
        for c in template_pod.list(field) {
            let name = c.name();
            if injected_before.iter().any(|n| n == name) {
                continue;
            }
            let found = find(saved, name).cloned().or_else(|| {
                let user = if field == "containers" {
                    find(original.list("containers"), name)
                } else {
                    find_in_pod(original, name)
                };
                user.cloned()
            });
            let Some(mut overlay) = found else { continue };
            if let Some(obj) = overlay.as_object_mut()
                && obj
                    .get("image")
                    .and_then(Node::as_str)
                    .is_some_and(|i| i == "auto" || i.is_empty())
            {
                obj.swap_remove("image");
            }
            let patch = [(
                "spec",
                [(field, Node::Array(vec![overlay.clone()]))]
                    .into_iter()
                    .collect(),
            )];
            merge::merge_owned(&mut final_pod, patch.into_iter().collect())
                .map_err(FinishError::Reapply)?;
            if applied == 0 {
                object.key(field);
                object.out.push(b'[');
            } else {
                object.out.push(b',');
            }
            gojson::write(&overlay, GoType::Container, object.out);
            applied += 1;
        }
        if applied > 0 {
            object.out.push(b']');
        }
    }
    let any = !object.is_empty();
    object.close();
    if !already && any {
        let overrides = String::from_utf8(overrides).expect("JSON text is UTF-8");
        meta_map(&mut final_pod, "annotations").insert(OVERRIDES, Node::from(overrides));
    }
    adjust_init_container_user(&mut final_pod, original, proxy_interception_tproxy);
    Ok(final_pod)
}

/// `adjustInitContainerUser`: istio-init's `-u` follows a user-set proxy uid; under CNI the
/// validation container runs as that user too; TPROXY forces the proxy back to uid 0.
fn adjust_init_container_user<'a>(
    final_pod: &mut Node<'a>,
    original: &Node<'a>,
    mesh_tproxy: bool,
) {
    let Some(user) = find_in_pod(original, PROXY) else {
        return;
    };
    let id = |field| {
        user.at(&["securityContext", field])
            .filter(|v| !v.is_null())
            .cloned()
    };
    let run_as_user = id("runAsUser");
    let run_as_group = id("runAsGroup");
    if run_as_user.is_none() && run_as_group.is_none() {
        return;
    }
    let init_name = if find(final_pod.list("initContainers"), INIT).is_some() {
        INIT
    } else if find(final_pod.list("initContainers"), VALIDATION).is_some() {
        VALIDATION
    } else {
        return;
    };
    let tproxy = mesh_tproxy
        || annotation(final_pod, "sidecar.istio.io/interceptionMode").as_deref() == Some("TPROXY");
    if tproxy
        && run_as_user.is_some()
        && let Some(sidecar) = find_in_pod_mut(final_pod, PROXY)
        && let Some(sc) = sidecar
            .get_mut("securityContext")
            .and_then(Node::as_object_mut)
    {
        sc.insert("runAsUser", Node::from(0));
    }
    let Some(init) = final_pod
        .list_mut("initContainers")
        .and_then(|l| l.iter_mut().find(|c| c.name() == init_name))
    else {
        return;
    };
    if !tproxy && init_name == VALIDATION {
        let obj = init.as_object_mut().expect("containers are objects");
        let sc = obj.entry("securityContext", Node::object);
        if let Some(sc) = sc.as_object_mut() {
            if let Some(u) = &run_as_user {
                sc.insert("runAsUser", u.clone());
            }
            if let Some(g) = &run_as_group {
                sc.insert("runAsGroup", g.clone());
            }
        }
    }
    let uid = run_as_user.as_ref().and_then(Node::as_i64).unwrap_or(0);
    if uid == 0 {
        return;
    }
    if let Some(args) = init.get_mut("args").and_then(Node::as_array_mut)
        && let Some(i) = args.iter().position(|a| a.as_str() == Some("-u"))
        && i + 1 < args.len()
    {
        args[i + 1] = Node::from(uid.to_string());
    }
}

/// `postProcessPod`.
pub fn post_process(
    pod: &mut Node<'_>,
    template_pod: &Node<'_>,
    ctx: &PostContext<'_>,
) -> Result<(), FinishError> {
    meta_map(pod, "annotations");
    meta_map(pod, "labels");
    overwrite_cluster_info(pod, ctx.proxy_envs);
    prometheus_merge(pod, ctx)?;
    secure_prometheus_port(pod);
    rewrite_probes(pod, ctx);
    apply_metadata(pod, template_pod, ctx);
    reorder(pod, ctx.hold_application);
    Ok(())
}

/// `updateClusterEnvs`: the path/cluster/network env vars move to the end, sorted by name.
fn overwrite_cluster_info(pod: &mut Node<'_>, envs: &BTreeMap<String, String>) {
    if envs.is_empty() {
        return;
    }
    let Some(sidecar) = find_in_pod_mut(pod, PROXY) else {
        return;
    };
    let env = env_list(sidecar);
    env.retain(|e| !envs.contains_key(e.name()));
    env.extend(envs.iter().map(|(k, v)| env_var(k.clone(), v.clone())));
}

/// A container's `env`, made a list when it is missing or not one.
fn env_list<'p, 'a>(container: &'p mut Node<'a>) -> &'p mut Vec<Node<'a>> {
    let obj = container.as_object_mut().expect("containers are objects");
    let env = obj.entry("env", || Node::Array(vec![]));
    if !env.is_array() {
        *env = Node::Array(vec![]);
    }
    env.as_array_mut().expect("just made a list")
}

/// `{"name": name, "value": value}`.
fn env_var<'a>(name: impl Into<Cow<'a, str>>, value: String) -> Node<'a> {
    [
        ("name", Node::String(name.into())),
        ("value", Node::from(value)),
    ]
    .into_iter()
    .collect()
}

const RESERVED_PORTS: &[(&str, &str)] = &[
    ("15000", "Envoy admin"),
    ("15001", "outbound capture"),
    ("15004", "debug"),
    ("15006", "inbound capture"),
    ("15008", "HBONE tunnel"),
    ("15020", "merged metrics"),
    ("15021", "health checks"),
    ("15053", "DNS proxy"),
    ("15090", "Envoy Prometheus telemetry"),
];

fn check_port(what: &str, port: &str, target: &str) -> Result<(), FinishError> {
    let n: i64 = port
        .parse()
        .ok()
        .filter(|n| (1..=65535).contains(n))
        .ok_or_else(|| FinishError::Prometheus(format!("{what}: invalid port {port:?}")))?;
    let canon = n.to_string();
    if canon == target {
        return Err(FinishError::Prometheus(format!(
            "{what}: port {port} conflicts with agent port"
        )));
    }
    if let Some((_, reason)) = RESERVED_PORTS.iter().find(|(p, _)| *p == canon) {
        return Err(FinishError::Prometheus(format!(
            "{what}: port {port} is reserved for Istio ({reason}) and cannot be scraped"
        )));
    }
    Ok(())
}

/// `applyPrometheusMerge`: the app's scrape settings move into the proxy's env and the
/// annotations point Prometheus at the agent, which merges both.
fn prometheus_merge(pod: &mut Node<'_>, ctx: &PostContext<'_>) -> Result<(), FinishError> {
    let anns = annotations(pod);
    let scrape_on = anns
        .iter()
        .filter(|(k, _)| sanitizes_to(k, SCRAPE))
        .find_map(|(_, v)| parse_go_bool(v))
        .unwrap_or(true);
    let enabled = anns
        .get("prometheus.istio.io/merge-metrics")
        .and_then(|v| parse_go_bool(v))
        .unwrap_or(ctx.mesh_prometheus_merge);
    if !scrape_on || !enabled {
        return Ok(());
    }
    let target = ctx.mesh_status_port.to_string();
    if prometheus_port(&anns) == Some(target.as_str()) {
        return Ok(());
    }
    let (mut scrape, mut path, mut port) = (String::new(), String::new(), String::new());
    let mut targets: Vec<(String, String)> = Vec::new();
    for (k, v) in &anns {
        match prometheus_label(k) {
            Some(PORT) => port = v.clone(),
            Some(SCRAPE) => scrape = v.clone(),
            Some(PATH) => path = v.clone(),
            Some(TARGETS) => {
                if let Some(t) = parse_scrape_targets(v) {
                    targets = t;
                }
            }
            _ => {}
        }
    }
    if let Some((p, pa)) = targets.first() {
        port = p.clone();
        path = pa.clone();
        for (p, _) in &targets {
            check_port("targets: invalid target", p, &target)?;
        }
    } else if !port.is_empty() {
        check_port("configuration", &port, &target)?;
    }
    let empty = scrape.is_empty() && path.is_empty() && port.is_empty() && targets.is_empty();
    if !empty && let Some(sidecar) = find_in_pod_mut(pod, PROXY) {
        let mut cfg = json!({"scrape": scrape, "path": path, "port": port});
        if !targets.is_empty() {
            cfg["targets"] = Value::Array(
                targets
                    .iter()
                    .map(|(p, pa)| json!({"port": p, "path": pa}))
                    .collect(),
            );
        }
        push_env(
            sidecar,
            PROMETHEUS_ENV,
            gojson::to_string(&cfg, GoType::Ordered),
        );
    }
    clear_prometheus(pod);
    let anns = meta_map(pod, "annotations");
    anns.insert("prometheus.io/port", Node::from(target));
    anns.insert("prometheus.io/path", Node::from("/stats/prometheus"));
    anns.insert("prometheus.io/scrape", Node::from("true"));
    Ok(())
}

/// `port:path,…` with path defaulting to `/metrics`; `None` when an entry has no port.
fn parse_scrape_targets(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (port, path) = match entry.split_once(':') {
            Some((p, pa)) => (p.trim(), pa.trim()),
            None => (entry, ""),
        };
        if port.is_empty() {
            return None;
        }
        let path = if path.is_empty() { "/metrics" } else { path };
        out.push((port.to_string(), path.to_string()));
    }
    Some(out)
}

fn push_env(container: &mut Node<'_>, name: &'static str, value: String) {
    env_list(container).push(env_var(name, value));
}

/// `applySecurePrometheusAnnotation`.
fn secure_prometheus_port(pod: &mut Node<'_>) {
    let annotations = pod
        .at(&["metadata", "annotations"])
        .and_then(Node::as_object);
    if annotations.is_some_and(|a| a.keys().any(|k| sanitizes_to(k, SECURE_PORT))) {
        return;
    }
    let Some(sidecar) = find_in_pod(pod, PROXY) else {
        return;
    };
    let port = sidecar
        .get("env")
        .and_then(Node::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.name() == "ENVOY_SECURE_MERGED_METRICS_PORT")
        .and_then(|e| e.get("value").and_then(Node::as_str))
        .filter(|v| !v.is_empty() && *v != "0")
        .map(str::to_string);
    if let Some(port) = port {
        meta_map(pod, "annotations").insert("prometheus.istio.io/secure-port", Node::from(port));
    }
}

/// `applyRewrite`: app probes go through the agent on the status port, which performs the
/// real check from `ISTIO_KUBE_APP_PROBERS`.
fn rewrite_probes(pod: &mut Node<'_>, ctx: &PostContext<'_>) {
    if find_in_pod(pod, PROXY).is_none() {
        return;
    }
    let rewrite = annotation(pod, "sidecar.istio.io/rewriteAppHTTPProbers")
        .and_then(|v| parse_go_bool(&v))
        .unwrap_or(ctx.rewrite_probes);
    if !rewrite {
        return;
    }
    let status_port = match annotation(pod, "status.sidecar.istio.io/port") {
        Some(v) => v.trim().parse::<i64>().unwrap_or(0),
        None => ctx.mesh_status_port,
    };
    if let Some(probers) = dump_app_probers(pod, ctx.mesh_status_port) {
        let previously = annotation(pod, STATUS).is_some();
        let sidecar = find_in_pod_mut(pod, PROXY).expect("checked above");
        merge_or_append_probers(sidecar, previously, probers);
    }
    for field in ["containers", "initContainers"] {
        if let Some(items) = pod.list_mut(field) {
            for c in items.iter_mut().filter(|c| c.name() != PROXY) {
                convert_probes(c, status_port);
            }
        }
    }
}

const PROBES: [(&str, &str, &str); 5] = [
    ("readinessProbe", "/app-health", "readyz"),
    ("livenessProbe", "/app-health", "livez"),
    ("startupProbe", "/app-health", "startupz"),
    ("preStop", "/app-lifecycle", "prestopz"),
    ("postStart", "/app-lifecycle", "poststartz"),
];

fn probe_slot<'n, 'a>(c: &'n Node<'a>, field: &str) -> Option<&'n Node<'a>> {
    match field {
        "preStop" | "postStart" => c.at(&["lifecycle", field]),
        _ => c.get(field),
    }
    .filter(|v| v.is_object())
}

/// One entry of `ISTIO_KUBE_APP_PROBERS`: the app's own check (one of the three actions,
/// as Go prints it) for the agent to run, as JSON text.
fn prober_json(kind: &str, action: &Node<'_>, go_type: GoType, timeout: Option<i64>) -> Vec<u8> {
    // Room for a typical `httpGet` prober, so the text is not regrown as it is written.
    let mut out = Vec::with_capacity(128);
    let mut object = gojson::Object::open(&mut out);
    object.key(kind);
    gojson::write(action, go_type, object.out);
    if let Some(t) = timeout {
        object.key("timeoutSeconds");
        object
            .out
            .extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
    }
    object.close();
    out
}

/// `DumpAppProbers`: the JSON map of prober URL → original check, keys sorted.
fn dump_app_probers(pod: &Node<'_>, target_port: i64) -> Option<String> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let all = pod
        .list("initContainers")
        .iter()
        .chain(pod.list("containers"));
    for c in all.filter(|c| c.name() != PROXY) {
        let ports: BTreeMap<&str, i64> = c
            .get("ports")
            .and_then(Node::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let name = p.get("name")?.as_str().filter(|n| !n.is_empty())?;
                Some((name, p.get("containerPort")?.as_i64()?))
            })
            .collect();
        for (field, prefix, suffix) in PROBES {
            let Some(probe) = probe_slot(c, field) else {
                continue;
            };
            let lifecycle = prefix == "/app-lifecycle";
            let timeout = if lifecycle {
                None
            } else {
                probe
                    .get("timeoutSeconds")
                    .and_then(Node::as_i64)
                    .filter(|t| *t != 0)
            };
            let (kind, action, go_type) = if let Some(h) = probe.get("httpGet") {
                ("httpGet", h, GoType::HttpGet)
            } else if let Some(t) = probe.get("tcpSocket") {
                ("tcpSocket", t, GoType::TcpSocket)
            } else if let Some(g) = probe.get("grpc").filter(|_| !lifecycle) {
                ("grpc", g, GoType::Grpc)
            } else {
                continue;
            };
            // A named port becomes the container's number for it (the agent has no names).
            let mut action = Cow::Borrowed(action);
            if kind != "grpc" {
                match action.get("port") {
                    Some(Node::String(named)) => match ports.get(&**named) {
                        Some(&p) => action.to_mut().insert("port", Node::from(p)),
                        None => continue,
                    },
                    Some(p) if p.as_i64() == Some(target_port) => continue,
                    _ => {}
                }
            }
            let url = [prefix, "/", c.name(), "/", suffix].concat();
            out.insert(url, prober_json(kind, &action, go_type, timeout));
        }
    }
    if out.is_empty() {
        return None;
    }
    // Keys in order, as Go prints a map.
    let size = out
        .iter()
        .map(|(url, p)| url.len() + p.len() + 4)
        .sum::<usize>()
        + 2;
    let mut text = Vec::with_capacity(size);
    let mut object = gojson::Object::open(&mut text);
    for (url, prober) in &out {
        object.key(url);
        object.out.extend_from_slice(prober);
    }
    object.close();
    Some(String::from_utf8(text).expect("JSON text is UTF-8"))
}

fn merge_or_append_probers(sidecar: &mut Node<'_>, previously_injected: bool, probers: String) {
    if previously_injected {
        let existing = sidecar
            .get_mut("env")
            .and_then(Node::as_array_mut)
            .and_then(|env| env.iter_mut().find(|e| e.name() == PROBERS_ENV));
        if let Some(entry) = existing {
            let old: Option<BTreeMap<String, Value>> = entry
                .get("value")
                .and_then(Node::as_str)
                .and_then(|s| serde_json::from_str(s).ok());
            let new: Option<BTreeMap<String, Value>> = serde_json::from_str(&probers).ok();
            if let (Some(old), Some(mut new)) = (old, new) {
                new.extend(old);
                let merged = Value::Object(new.into_iter().collect());
                *entry = env_var(PROBERS_ENV, gojson::to_string(&merged, GoType::Ordered));
            }
            return;
        }
    }
    push_env(sidecar, PROBERS_ENV, probers);
}

/// Rewrites a container's probes and lifecycle hooks to the agent's URLs.
fn convert_probes(c: &mut Node<'_>, status_port: i64) {
    let name = c.name().to_string();
    for (field, prefix, suffix) in PROBES {
        let lifecycle = prefix == "/app-lifecycle";
        let slot = if lifecycle {
            c.at_mut(&["lifecycle", field])
        } else {
            c.get_mut(field)
        };
        let Some(Node::Object(probe)) = slot else {
            continue;
        };
        let kind = ["httpGet", "tcpSocket", "grpc"]
            .into_iter()
            .find(|k| probe.contains_key(k) && !(lifecycle && *k == "grpc"));
        let Some(kind) = kind else { continue };
        if kind != "httpGet" {
            probe.swap_remove(kind);
        }
        // An existing httpGet is rewritten in place (its other fields and their order stay).
        let action = probe.entry("httpGet", Node::object);
        if !action.is_object() {
            *action = Node::object();
        }
        let action = action.as_object_mut().expect("just made an object");
        let mut path = Some(Node::from([prefix, "/", &name, "/", suffix].concat()));
        let mut port = Some(Node::from(status_port));
        for (k, v) in action.iter_mut() {
            match &**k {
                "path" => *v = path.take().unwrap_or(Node::Null),
                "port" => *v = port.take().unwrap_or(Node::Null),
                "scheme" if v.as_str() == Some("HTTPS") => *v = Node::from("HTTP"),
                _ => {}
            }
        }
        if let Some(path) = path {
            action.insert("path", path);
        }
        if let Some(port) = port {
            action.insert("port", port);
        }
    }
}

/// The `sidecar.istio.io/status` annotation: what the injection added (an empty list is null).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    init_containers: Option<Vec<&'a str>>,
    containers: Option<Vec<&'a str>>,
    volumes: Option<Vec<&'a str>>,
    image_pull_secrets: Option<Vec<&'a str>>,
    revision: &'a str,
}

/// `applyMetadata`: network label, status annotation, `injectedAnnotations`.
fn apply_metadata(pod: &mut Node<'_>, template_pod: &Node<'_>, ctx: &PostContext<'_>) {
    if let Some(nw) = ctx.proxy_envs.get("ISTIO_META_NETWORK") {
        meta_map(pod, "labels").insert("topology.istio.io/network", Node::from(nw.clone()));
    }
    let names = |field: &str| -> Option<Vec<&str>> {
        let l = template_pod.list(field);
        (!l.is_empty()).then(|| l.iter().map(Node::name).collect())
    };
    let status = Status {
        init_containers: names("initContainers"),
        containers: names("containers"),
        volumes: names("volumes"),
        image_pull_secrets: names("imagePullSecrets"),
        revision: if ctx.revision.is_empty() {
            "default"
        } else {
            ctx.revision
        },
    };
    let status = serde_json::to_string(&status).expect("JSON values serialise");
    let anns = meta_map(pod, "annotations");
    anns.insert(STATUS, Node::from(status));
    for (k, v) in ctx.injected_annotations {
        anns.insert(k.clone(), Node::from(v.clone()));
    }
}

fn move_container(items: &mut Vec<Node<'_>>, name: &str, first: bool) {
    if let Some(i) = items.iter().position(|c| c.name() == name) {
        let c = items.remove(i);
        if first {
            items.insert(0, c);
        } else {
            items.push(c);
        }
    }
}

/// `reorderPod`: classic proxies go last (first when holding the app); native sidecars go
/// first among init containers, after istio-init/istio-validation.
fn reorder(pod: &mut Node<'_>, hold: bool) {
    if let Some(c) = pod.list_mut("containers") {
        move_container(c, PROXY, hold);
    }
    let native = find(pod.list("initContainers"), PROXY).is_some();
    if let Some(init) = pod.list_mut("initContainers") {
        if native {
            for name in [CORE_DUMP, PROXY, VALIDATION, INIT] {
                move_container(init, name, true);
            }
        } else {
            move_container(init, VALIDATION, true);
            move_container(init, INIT, false);
            move_container(init, CORE_DUMP, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`post_process`] of a pod written as a `Value`, with an empty template pod.
    fn post(pod: &mut Value, ctx: &PostContext<'_>) -> Result<(), FinishError> {
        let mut node = Node::from_value(pod.take());
        let result = post_process(&mut node, &Node::object(), ctx);
        *pod = node.to_value();
        result
    }

    fn ctx<'a>(
        envs: &'a BTreeMap<String, String>,
        ann: &'a BTreeMap<String, String>,
    ) -> PostContext<'a> {
        PostContext {
            proxy_envs: envs,
            mesh_status_port: 15020,
            mesh_prometheus_merge: true,
            hold_application: false,
            rewrite_probes: true,
            revision: "",
            injected_annotations: ann,
        }
    }

    #[test]
    fn probes_are_rewritten_and_recorded() {
        let mut pod = json!({"metadata": {}, "spec": {"containers": [
            {"name": "app", "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"port": "http", "path": "/ready", "scheme": "HTTPS"}, "timeoutSeconds": 2},
             "livenessProbe": {"tcpSocket": {"port": 9000}}},
            {"name": "istio-proxy"}
        ]}});
        let (e, a) = (BTreeMap::new(), BTreeMap::new());
        post(&mut pod, &ctx(&e, &a)).unwrap();
        let app = &pod["spec"]["containers"][0];
        assert_eq!(
            app["readinessProbe"]["httpGet"],
            json!({"port": 15020, "path": "/app-health/app/readyz", "scheme": "HTTP"})
        );
        assert_eq!(
            app["livenessProbe"],
            json!({"httpGet": {"path": "/app-health/app/livez", "port": 15020}})
        );
        let env = &pod["spec"]["containers"][1]["env"];
        let probers = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == PROBERS_ENV)
            .unwrap();
        assert_eq!(
            probers["value"],
            r#"{"/app-health/app/livez":{"tcpSocket":{"port":9000}},"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTPS"},"timeoutSeconds":2}}"#
        );
    }

    #[test]
    fn prometheus_annotations_move_to_the_agent() {
        let mut pod = json!({"metadata": {"annotations": {"prometheus.io/port": "8080", "prometheus.io.scrape": "true"}},
                             "spec": {"containers": [{"name": "istio-proxy"}]}});
        let (e, a) = (BTreeMap::new(), BTreeMap::new());
        post(&mut pod, &ctx(&e, &a)).unwrap();
        let anns = &pod["metadata"]["annotations"];
        assert_eq!(anns["prometheus.io/port"], "15020");
        assert!(anns.get("prometheus.io.scrape").is_none());
        let env = &pod["spec"]["containers"][0]["env"][0];
        assert_eq!(env["value"], r#"{"scrape":"true","path":"","port":"8080"}"#);
    }

    #[test]
    fn agent_json_escapes_strings_as_go_marshal_does() {
        // Istio writes both env values with json.Marshal, which escapes <, > and & in strings.
        let mut pod = json!({"metadata": {"annotations": {"prometheus.io/port": "8080",
                                                      "prometheus.io/path": "/metrics?a=1&b=<2>"}},
        "spec": {"containers": [
            {"name": "app", "readinessProbe": {"httpGet": {"port": 8080, "path": "/ready?full=1&x=\u{2028}"}}},
            {"name": "istio-proxy"}
        ]}});
        let (e, a) = (BTreeMap::new(), BTreeMap::new());
        post(&mut pod, &ctx(&e, &a)).unwrap();
        let env = |name: &str| {
            pod["spec"]["containers"][1]["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].as_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(
            env(PROBERS_ENV),
            r#"{"/app-health/app/readyz":{"httpGet":{"path":"/ready?full=1\u0026x=\u2028","port":8080}}}"#
        );
        assert_eq!(
            env(PROMETHEUS_ENV),
            r#"{"scrape":"","path":"/metrics?a=1\u0026b=\u003c2\u003e","port":"8080"}"#
        );
    }

    #[test]
    fn reserved_scrape_ports_are_refused() {
        let mut pod = json!({"metadata": {"annotations": {"prometheus.io/port": "15090"}},
                             "spec": {"containers": [{"name": "istio-proxy"}]}});
        let (e, a) = (BTreeMap::new(), BTreeMap::new());
        assert!(post(&mut pod, &ctx(&e, &a)).is_err());
    }

    #[test]
    fn classic_proxy_goes_last_and_istio_init_after_user_init_containers() {
        let pod = json!({"spec": {
            "containers": [{"name": "istio-proxy"}, {"name": "app"}],
            "initContainers": [{"name": "istio-init"}, {"name": "user-init"}]
        }});
        let mut node = Node::from_value(pod);
        reorder(&mut node, false);
        let pod = node.to_value();
        assert_eq!(pod["spec"]["containers"][1]["name"], "istio-proxy");
        assert_eq!(pod["spec"]["initContainers"][1]["name"], "istio-init");
    }

    #[test]
    fn reinjection_strips_what_the_status_lists() {
        let pod = json!({"metadata": {"annotations": {
            STATUS: r#"{"initContainers":["istio-init"],"containers":["istio-proxy"]}"#,
            "prometheus.io/port": "15020"}},
            "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}], "initContainers": [{"name": "istio-init"}]}});
        let stripped = strip_pod(&Node::view(&pod), 15020).to_value();
        assert_eq!(stripped["spec"]["containers"], json!([{"name": "app"}]));
        assert_eq!(stripped["spec"]["initContainers"], json!([]));
        assert_eq!(stripped["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn user_proxy_uid_feeds_istio_init() {
        let original = json!({"spec": {"containers": [{"name": "istio-proxy", "image": "auto", "securityContext": {"runAsUser": 1234}}]}});
        let template = json!({"spec": {"containers": [{"name": "istio-proxy", "image": "proxy"}]}});
        let merged = json!({"metadata": {}, "spec": {
            "containers": [{"name": "istio-proxy", "image": "proxy", "securityContext": {"runAsUser": 1337}}],
            "initContainers": [{"name": "istio-init", "args": ["-u", "1337"]}]}});
        let out = reapply_overwritten_containers(
            Node::view(&merged),
            &Node::view(&original),
            &Node::view(&template),
            false,
        )
        .unwrap()
        .to_value();
        assert_eq!(out["spec"]["containers"][0]["image"], "proxy");
        assert_eq!(
            out["spec"]["containers"][0]["securityContext"]["runAsUser"],
            1234
        );
        assert_eq!(
            out["spec"]["initContainers"][0]["args"],
            json!(["-u", "1234"])
        );
        assert_eq!(
            out["metadata"]["annotations"][OVERRIDES],
            r#"{"containers":[{"name":"istio-proxy","resources":{},"securityContext":{"runAsUser":1234}}]}"#
        );
    }
}
