//! The `deploy/` manifests, checked without a cluster: every object is a valid Kubernetes
//! object, the pieces agree with each other (ports, names, selectors, mounts and flags), the
//! pods are `restricted`, and the webhooks select the same namespaces and pods as Istio's.
//! `envtest.rs` then applies the same objects to a real API server.

use std::collections::BTreeMap;
use std::path::Path;

use e2e::manifests::{self, find};
use e2e::selector::{labels, matches};
use e2e::workspace;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

const NAMESPACE: &str = "sidecar-injector";

fn base() -> Vec<Value> {
    manifests::render(&workspace::deploy_dir()).expect("deploy/ renders")
}

/// Parses `obj` as the typed Kubernetes object and checks that nothing was lost on the way: a
/// misspelt or misplaced field would be dropped by the typed model and show up here.
fn typed<T: DeserializeOwned + serde::Serialize>(obj: &Value) -> T {
    let name = format!("{}/{}", obj["kind"], obj["metadata"]["name"]);
    let parsed: T = serde_json::from_value(obj.clone())
        .unwrap_or_else(|e| panic!("{name} is not a valid object: {e}"));
    let back = serde_json::to_value(&parsed).expect("typed objects serialise");
    assert_eq!(
        &back, obj,
        "{name}: fields the Kubernetes schema does not know were dropped"
    );
    parsed
}

fn one<T: DeserializeOwned + serde::Serialize>(objects: &[Value], kind: &str) -> T {
    typed(find(objects, kind, None).unwrap_or_else(|| panic!("exactly one {kind} in deploy/")))
}

fn injector_container(deploy: &Deployment) -> Container {
    let spec = deploy.spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(spec.containers.len(), 1, "one container");
    spec.containers[0].clone()
}

/// The value of `--flag=value` in the container's args.
fn flag(container: &Container, name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    container
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
}

fn container_port(container: &Container, name: &str) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("container port {name}"))
        .container_port
}

fn webhooks() -> Vec<MutatingWebhook> {
    one::<MutatingWebhookConfiguration>(&base(), "MutatingWebhookConfiguration")
        .webhooks
        .expect("webhooks")
}

/// Every YAML file in deploy/ is listed in the kustomization and every listed file exists, so
/// `kubectl apply -k deploy/` installs exactly what is in the directory.
#[test]
fn kustomization_lists_every_manifest_in_the_directory() {
    let dir = workspace::deploy_dir();
    let k = manifests::kustomization(&dir).unwrap();
    let listed: Vec<&str> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut listed_sorted: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    listed_sorted.sort();
    assert_eq!(listed_sorted, on_disk);
}

/// Each object parses as its typed Kubernetes kind with no field lost.
#[test]
fn every_object_is_a_valid_kubernetes_object() {
    let objects = base();
    for obj in &objects {
        match obj["kind"].as_str().unwrap_or_default() {
            "Namespace" => drop(typed::<Namespace>(obj)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(obj)),
            "Deployment" => drop(typed::<Deployment>(obj)),
            "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(obj)),
            "Service" => drop(typed::<Service>(obj)),
            "ConfigMap" => drop(typed::<ConfigMap>(obj)),
            "MutatingWebhookConfiguration" => drop(typed::<MutatingWebhookConfiguration>(obj)),
            "ClusterRole" => drop(typed::<ClusterRole>(obj)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(obj)),
            other => panic!("unexpected kind {other} in deploy/"),
        }
    }
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for wanted in [
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "MutatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(&wanted), "deploy/ has no {wanted}");
    }
    // Everything namespaced lives in the injector's namespace.
    for obj in objects
        .iter()
        .filter(|o| o["metadata"]["namespace"].is_string())
    {
        assert_eq!(
            obj["metadata"]["namespace"], NAMESPACE,
            "{}",
            obj["metadata"]["name"]
        );
    }
}

/// The injector's token can read Nodes (kubelet versions, for native sidecars `auto`) and
/// nothing else, and is bound to the ServiceAccount the Deployment runs as, in its namespace.
#[test]
fn rbac_grants_reading_nodes_and_nothing_else() {
    for (dir, namespace) in [
        (workspace::deploy_dir(), NAMESPACE),
        (
            workspace::deploy_dir().join("overlays/istio-configmaps"),
            "istio-system",
        ),
    ] {
        let objects = manifests::render(&dir).expect("manifests render");
        let role: ClusterRole = one(&objects, "ClusterRole");
        let rules = role.rules.unwrap_or_default();
        assert_eq!(rules.len(), 1, "{}: one rule", dir.display());
        assert_eq!(rules[0].api_groups.as_deref(), Some(&["".to_string()][..]));
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["nodes".to_string()][..])
        );
        assert!(
            rules[0]
                .verbs
                .iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
            "read-only verbs: {:?}",
            rules[0].verbs
        );
        let binding: ClusterRoleBinding = one(&objects, "ClusterRoleBinding");
        assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
        let deploy: Deployment = one(&objects, "Deployment");
        let account = deploy.spec.template.spec.unwrap().service_account_name;
        let subjects = binding.subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(Some(&subjects[0].name), account.as_ref());
        assert_eq!(subjects[0].namespace.as_deref(), Some(namespace));
    }
}

/// The API server calls Service port 443, which leads to the container port serve listens on;
/// the probes hit the monitoring port the container declares.
#[test]
fn webhook_ports_agree_across_configuration_service_and_deployment() {
    let objects = base();
    let deploy: Deployment = one(&objects, "Deployment");
    let service: Service = one(&objects, "Service");
    let container = injector_container(&deploy);

    let serve_port = flag(&container, "port")
        .expect("--port")
        .parse::<i32>()
        .unwrap();
    assert_eq!(container_port(&container, "https-webhook"), serve_port);
    let health_port = container_port(&container, "http-monitoring");
    let monitoring_flag = flag(&container, "monitoring-port").expect("--monitoring-port");
    assert_eq!(
        monitoring_flag.parse::<i32>(),
        Ok(health_port),
        "probes and metrics port"
    );

    for hook in webhooks() {
        let svc = hook
            .client_config
            .service
            .as_ref()
            .expect("clientConfig.service");
        assert_eq!(
            (svc.name.as_str(), svc.namespace.as_str()),
            (NAMESPACE, NAMESPACE)
        );
        assert_eq!(svc.path.as_deref(), Some("/inject"));
        let port = svc.port.unwrap_or(443);
        let sp = service
            .spec
            .as_ref()
            .unwrap()
            .ports
            .iter()
            .flatten()
            .find(|p| p.port == port)
            .unwrap_or_else(|| panic!("Service has no port {port}"));
        let target = match sp.target_port.as_ref().expect("targetPort") {
            IntOrString::Int(n) => *n,
            IntOrString::String(name) => container_port(&container, name),
        };
        assert_eq!(
            target, serve_port,
            "{}: Service {port} -> {target}",
            hook.name
        );
    }
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an HTTP probe");
        let port = match &get.port {
            IntOrString::Int(n) => *n,
            IntOrString::String(name) => container_port(&container, name),
        };
        assert_eq!(port, health_port);
    }
    let paths: Vec<_> = [&container.readiness_probe, &container.liveness_probe]
        .iter()
        .map(|p| {
            p.as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(paths, ["/readyz", "/healthz"]);
}

/// The Deployment, Service and PodDisruptionBudget all pick the injector's pods.
#[test]
fn selectors_pick_the_injector_pods() {
    let objects = base();
    let deploy: Deployment = one(&objects, "Deployment");
    let spec = &deploy.spec;
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert_eq!(matches(&spec.selector, &pod_labels), Ok(true));
    let service: Service = one(&objects, "Service");
    let svc_sel = service.spec.unwrap().selector.unwrap();
    assert!(svc_sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    let pdb: PodDisruptionBudget = one(&objects, "PodDisruptionBudget");
    let pdb_spec = pdb.spec.unwrap();
    assert_eq!(
        matches(pdb_spec.selector.as_ref().unwrap(), &pod_labels),
        Ok(true)
    );
    // Two replicas and a budget that always keeps one of them.
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(pdb_spec.min_available, Some(IntOrString::Int(1)));
    // Replicas spread over nodes (preferred, so one-node clusters still run both).
    let anti = spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap()
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(
        anti[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    assert_eq!(
        matches(
            anti[0].pod_affinity_term.label_selector.as_ref().unwrap(),
            &pod_labels
        ),
        Ok(true)
    );
    // The injector's own pods opt out by label too.
    assert_eq!(
        pod_labels
            .get("sidecar.istio.io/inject")
            .map(String::as_str),
        Some("false")
    );
}

/// The pod meets the `restricted` Pod Security Standard (the namespace enforces it).
#[test]
fn the_injector_pod_is_restricted() {
    let objects = base();
    let ns: Namespace = one(&objects, "Namespace");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    let deploy: Deployment = one(&objects, "Deployment");
    let pod = deploy.spec.template.spec.unwrap();
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_ne!(pod.host_network, Some(true));
    assert_eq!(
        pod.automount_service_account_token,
        Some(true),
        "the injector lists Nodes for --native-sidecars auto"
    );
    assert!(pod.volumes.iter().flatten().all(|v| v.host_path.is_none()));
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert!(!sc.privileged.unwrap_or(false));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert!(caps.add.is_none());
    let res = c.resources.as_ref().unwrap();
    let requests = res.requests.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    assert!(res.limits.as_ref().unwrap().contains_key("memory"));
}

/// The files the serve flags name are mounted from the ConfigMaps and Secret that carry them,
/// under the keys Istio's ConfigMaps use.
#[test]
fn flags_name_files_that_the_volumes_provide() {
    let objects = base();
    let deploy: Deployment = one(&objects, "Deployment");
    let pod = deploy.spec.template.spec.unwrap();
    let c = &pod.containers[0];
    // (flag, key in the mounted source) ; --tls-dir holds tls.crt and tls.key.
    let mounted = |path: &str| -> (String, String) {
        let p = Path::new(path);
        let dir = p.parent().unwrap().to_str().unwrap();
        let file = p.file_name().unwrap().to_str().unwrap().to_owned();
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == dir)
            .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
        assert!(mount.sub_path.is_none(), "subPath mounts never see updates");
        (mount.name.clone(), file)
    };
    for (flag_name, key) in [("values", "values"), ("mesh-config", "mesh")] {
        let (volume, file) =
            mounted(&flag(c, flag_name).unwrap_or_else(|| panic!("--{flag_name}")));
        assert_eq!(file, key);
        let v = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == volume)
            .unwrap();
        let cm_name = &v.config_map.as_ref().expect("a ConfigMap volume").name;
        let cm: ConfigMap =
            typed(find(&objects, "ConfigMap", Some(cm_name)).expect("generated ConfigMap"));
        assert!(
            cm.data.unwrap().contains_key(key),
            "{cm_name} has no key {key}"
        );
    }
    let tls_dir = flag(c, "tls-dir").expect("--tls-dir");
    let (volume, _) = mounted(&format!("{tls_dir}/tls.crt"));
    let v = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume)
        .unwrap();
    assert_eq!(
        v.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("sidecar-injector-tls")
    );
}

/// The shipped values and mesh parse, and pin the Istio release the kind test installs and the
/// images the Makefile builds.
#[test]
fn shipped_configuration_pins_the_images_that_are_built() {
    let objects = base();
    let cm = find(&objects, "ConfigMap", Some("sidecar-injector")).unwrap();
    let values: Value =
        serde_json::from_str(cm["data"]["values"].as_str().unwrap()).expect("values is JSON");
    let mesh_cm = find(&objects, "ConfigMap", Some("sidecar-injector-mesh")).unwrap();
    let mesh: Value =
        serde_yaml_ng::from_str(mesh_cm["data"]["mesh"].as_str().unwrap()).expect("mesh is YAML");
    assert!(mesh["defaultConfig"]["discoveryAddress"].is_string());

    let read = |p: &str| std::fs::read_to_string(workspace::root().join(p)).unwrap();
    let kind_sh = read("tests/e2e/kind.sh");
    let istio_version = kind_sh
        .lines()
        .find_map(|l| l.strip_prefix("ISTIO_VERSION=${ISTIO_VERSION:-"))
        .and_then(|v| v.strip_suffix('}'))
        .expect("kind.sh pins ISTIO_VERSION");
    assert_eq!(
        values["global"]["tag"], istio_version,
        "proxies must match the istiod kind.sh installs"
    );
    let workflow = read(".github/workflows/e2e.yaml");
    assert!(
        workflow.contains(&format!("ISTIO_VERSION: {istio_version}")),
        "the workflow pins the same Istio"
    );

    let makefile = read("Makefile");
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("VERSION ?= "))
        .expect("Makefile VERSION");
    let deploy: Deployment = one(&objects, "Deployment");
    assert_eq!(
        injector_container(&deploy).image.as_deref(),
        Some(format!("localhost/sidecar-injector:{version}").as_str())
    );
    assert_eq!(
        values["global"]["proxy_init"]["image"],
        format!("localhost/mesh-init:{version}")
    );
}

/// The API-server-side choices: v1 reviews, no side effects, Fail with a short timeout, CREATE
/// of pods only, and the system namespaces and our own excluded from both entries.
#[test]
fn webhooks_are_configured_as_documented() {
    let hooks = webhooks();
    assert_eq!(hooks.len(), 2);
    for hook in &hooks {
        assert_eq!(hook.admission_review_versions, ["v1"]);
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(hook.reinvocation_policy.as_deref(), Some("Never"));
        let timeout = hook.timeout_seconds.expect("timeoutSeconds set explicitly");
        assert!((1..10).contains(&timeout), "timeout {timeout}s");
        let rules = hook.rules.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].operations.as_deref(),
            Some(&["CREATE".to_owned()][..])
        );
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["pods".to_owned()][..])
        );
        assert_eq!(rules[0].api_groups.as_deref(), Some(&["".to_owned()][..]));
        assert!(
            hook.client_config.ca_bundle.is_none(),
            "the caBundle is patched in at install"
        );
    }
}

/// A namespace (with the label the API server always sets) and the webhooks that would call us.
fn hooks_for(
    hooks: &[MutatingWebhook],
    ns: &str,
    ns_labels: &[(&str, &str)],
    pod: &[(&str, &str)],
) -> Vec<String> {
    let mut ns_labels: BTreeMap<String, String> = labels(ns_labels);
    ns_labels.insert("kubernetes.io/metadata.name".into(), ns.into());
    let pod = labels(pod);
    hooks
        .iter()
        .filter(|h| {
            let ns_ok = h
                .namespace_selector
                .as_ref()
                .is_none_or(|s| matches(s, &ns_labels).unwrap());
            let pod_ok = h
                .object_selector
                .as_ref()
                .is_none_or(|s| matches(s, &pod).unwrap());
            ns_ok && pod_ok
        })
        .map(|h| h.name.clone())
        .collect()
}

/// (namespace, its labels, pod labels, the webhooks that call us)
type Case<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
    &'a Vec<String>,
);

/// Which pods reach the injector: the namespace label istio-injection=enabled or
/// istio.io/rev=default, never both entries at once, never with the pod label
/// sidecar.istio.io/inject=false, never in the system namespaces or our own.
#[test]
fn webhooks_select_pods_as_istio_labels_say() {
    let hooks = webhooks();
    let ns_hook = vec!["namespace.sidecar-injector.istio.io".to_owned()];
    let rev_hook = vec!["rev.namespace.sidecar-injector.istio.io".to_owned()];
    let none: Vec<String> = vec![];
    let cases: &[Case] = &[
        ("app", &[("istio-injection", "enabled")], &[], &ns_hook),
        (
            "app",
            &[("istio-injection", "enabled")],
            &[("sidecar.istio.io/inject", "true")],
            &ns_hook,
        ),
        (
            "app",
            &[("istio-injection", "enabled")],
            &[("sidecar.istio.io/inject", "false")],
            &none,
        ),
        ("app", &[("istio-injection", "disabled")], &[], &none),
        (
            "app",
            &[("istio-injection", "disabled"), ("istio.io/rev", "default")],
            &[],
            &none,
        ),
        ("app", &[("istio.io/rev", "default")], &[], &rev_hook),
        (
            "app",
            &[("istio.io/rev", "default")],
            &[("sidecar.istio.io/inject", "false")],
            &none,
        ),
        ("app", &[("istio.io/rev", "canary")], &[], &none),
        (
            "app",
            &[("istio-injection", "enabled"), ("istio.io/rev", "default")],
            &[],
            &ns_hook,
        ),
        ("app", &[], &[], &none),
        ("app", &[], &[("sidecar.istio.io/inject", "true")], &none),
        ("kube-system", &[("istio-injection", "enabled")], &[], &none),
        ("kube-public", &[("istio.io/rev", "default")], &[], &none),
        (
            "kube-node-lease",
            &[("istio-injection", "enabled")],
            &[],
            &none,
        ),
        (NAMESPACE, &[("istio-injection", "enabled")], &[], &none),
        (NAMESPACE, &[("istio.io/rev", "default")], &[], &none),
    ];
    for (ns, ns_labels, pod, want) in cases {
        assert_eq!(
            &&hooks_for(&hooks, ns, ns_labels, pod),
            want,
            "ns {ns} {ns_labels:?}, pod {pod:?}"
        );
    }
}

/// Outside the namespaces we exclude, our two entries decide exactly as Istio's `namespace.*`
/// and `rev.namespace.*` webhooks (its chart's MutatingWebhookConfiguration for the default
/// revision, read from the shared conformance folder).
#[test]
fn webhooks_decide_like_istios_namespace_webhooks() {
    let Some(path) =
        workspace::shared("conformance/istio-inject/config/mutatingwebhookconfiguration.yaml")
    else {
        return;
    };
    let docs = manifests::read_yaml_documents(&path).unwrap();
    let istio: MutatingWebhookConfiguration = serde_json::from_value(docs[0].clone()).unwrap();
    let istio_hooks: Vec<MutatingWebhook> = istio
        .webhooks
        .unwrap()
        .into_iter()
        .filter(|h| {
            h.name == "namespace.sidecar-injector.istio.io"
                || h.name == "rev.namespace.sidecar-injector.istio.io"
        })
        .collect();
    assert_eq!(istio_hooks.len(), 2);
    let ours = webhooks();
    let mut compared = 0;
    for inj in [None, Some("enabled"), Some("disabled")] {
        for rev in [None, Some("default"), Some("canary")] {
            for pod_inject in [None, Some("true"), Some("false"), Some("")] {
                for pod_rev in [None, Some("default")] {
                    let mut ns = vec![];
                    ns.extend(inj.map(|v| ("istio-injection", v)));
                    ns.extend(rev.map(|v| ("istio.io/rev", v)));
                    let mut pod = vec![];
                    pod.extend(pod_inject.map(|v| ("sidecar.istio.io/inject", v)));
                    pod.extend(pod_rev.map(|v| ("istio.io/rev", v)));
                    let a = hooks_for(&ours, "app", &ns, &pod);
                    let b = hooks_for(&istio_hooks, "app", &ns, &pod);
                    assert_eq!(a, b, "ns {ns:?} pod {pod:?}");
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 3 * 3 * 4 * 2);
}

/// The overlay for Istio's own ConfigMaps renders: injector in istio-system, volumes on
/// `istio-sidecar-injector` and `istio`, Istio's `config` key passed, webhooks on the moved
/// Service, istio-system excluded, our Namespace and ConfigMaps gone.
#[test]
fn istio_configmaps_overlay_points_at_istios_configmaps() {
    let objects = manifests::render(&workspace::deploy_dir().join("overlays/istio-configmaps"))
        .expect("overlay renders");
    assert!(find(&objects, "Namespace", None).is_none());
    assert!(objects.iter().all(|o| o["kind"] != "ConfigMap"));
    let deploy: Deployment = one(&objects, "Deployment");
    assert_eq!(deploy.metadata.namespace.as_deref(), Some("istio-system"));
    let pod = deploy.spec.template.spec.unwrap();
    let cms: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.config_map.as_ref())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cms, ["istio-sidecar-injector", "istio"]);
    let c = &pod.containers[0];
    assert_eq!(
        flag(c, "injector-config").as_deref(),
        Some("/etc/sidecar-injector/config/config")
    );
    let mwc: MutatingWebhookConfiguration = one(&objects, "MutatingWebhookConfiguration");
    for hook in mwc.webhooks.unwrap() {
        assert_eq!(
            hook.client_config.service.unwrap().namespace,
            "istio-system"
        );
        let excluded = hook
            .namespace_selector
            .unwrap()
            .match_expressions
            .unwrap()
            .into_iter()
            .find(|r| r.key == "kubernetes.io/metadata.name")
            .unwrap()
            .values
            .unwrap();
        assert!(
            excluded.contains(&"istio-system".to_owned())
                && !excluded.contains(&NAMESPACE.to_owned()),
            "{}: {excluded:?}",
            hook.name
        );
    }
    for obj in objects
        .iter()
        .filter(|o| o["metadata"]["namespace"].is_string())
    {
        assert_eq!(obj["metadata"]["namespace"], "istio-system");
    }
}

/// The shipped values are the injector's built-in values with one change: istio-init runs our
/// mesh-init image. Anything else drifting apart would make the cluster inject differently from
/// `kube-inject` and the tests.
#[test]
fn shipped_values_are_the_builtin_values_with_mesh_init() {
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(workspace::root().join(p)).unwrap()).unwrap()
    };
    let mut shipped = read("deploy/config/values.json");
    let builtin = read("webhook/engine/builtin/values.json");
    assert_ne!(
        shipped["global"]["proxy_init"]["image"],
        builtin["global"]["proxy_init"]["image"]
    );
    shipped["global"]["proxy_init"]["image"] = builtin["global"]["proxy_init"]["image"].clone();
    assert_eq!(shipped, builtin);
}
