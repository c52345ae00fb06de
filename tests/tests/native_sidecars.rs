//! `serve --native-sidecars auto` with no `--kubelet-version`: the real binary learns the
//! cluster's kubelet versions from Node objects on a real kube-apiserver, through a kubeconfig
//! for a ServiceAccount with (and at first without) the RBAC the deploy/ manifests must grant.
//! An AdmissionReview sent to it shows the decision: istio-proxy in `initContainers` (native)
//! or in `containers` (classic).
//!
//! The API-server test skips with instructions when `KUBEBUILDER_ASSETS` is unset; the
//! unreachable-API-server test always runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::control_plane::{
    self, ControlPlane, Process, free_port, http_get, pem_to_der, temp_dir, wait_until,
};
use e2e::workspace;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Where istio-proxy landed in an injected pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A restartable init container.
    Native,
    /// A regular container.
    Classic,
}

/// The injector binary serving on loopback, asking the API server in `kubeconfig` for Nodes.
struct Injector {
    process: Process,
    port: u16,
    monitoring_port: u16,
    ca: Vec<Vec<u8>>,
}

impl Injector {
    fn start(dir: &Path, kubeconfig: &Path) -> Injector {
        let bin = workspace::binary("sidecar-injector", "sidecar-injector")
            .expect("builds sidecar-injector");
        let certs = Command::new(&bin)
            .args(["certs", "--extra-san", "127.0.0.1", "--out-dir"])
            .arg(dir)
            .output()
            .expect("certs runs");
        assert!(
            certs.status.success(),
            "certs failed: {}",
            String::from_utf8_lossy(&certs.stderr)
        );
        let ca = std::fs::read_to_string(dir.join("ca.crt")).expect("certs wrote ca.crt");
        let (port, monitoring_port) = (free_port(), free_port());
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .args(["--address", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--monitoring-port={monitoring_port}"))
            .arg(format!("--tls-dir={}", dir.display()))
            .arg("--native-sidecars=auto")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--node-resync-interval=300ms")
            // No ambient cluster may leak in.
            .env_remove("KUBECONFIG")
            .env_remove("ENABLE_NATIVE_SIDECARS");
        let mut process =
            Process::spawn("sidecar-injector serve", cmd, dir.join("serve.log")).expect("starts");
        // Ready without having listed anything: readiness never waits for the API server.
        wait_until(&mut process, 60, || {
            http_get(monitoring_port, "/readyz").is_some_and(|(s, _)| s == 200)
        })
        .expect("the injector becomes ready");
        Injector {
            process,
            port,
            monitoring_port,
            ca: pem_to_der(&ca),
        }
    }

    /// One sample of /metrics (the sum over its label sets).
    fn metric(&self, name: &str) -> f64 {
        let (_, text) = http_get(self.monitoring_port, "/metrics").expect("/metrics answers");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.process.log).unwrap_or_default()
    }

    /// Sends the example AdmissionReview and says where istio-proxy went.
    async fn layout(&self) -> Layout {
        let uri = format!("https://127.0.0.1:{}", self.port).parse().unwrap();
        let mut config = kube::Config::new(uri);
        config.root_cert = Some(self.ca.clone());
        let client = kube::Client::try_from(config).expect("a client for the injector");
        let body = std::fs::read(workspace::root().join("webhook/examples/admission-review.json"))
            .expect("the example review");
        let review: Value = serde_json::from_slice(&body).unwrap();
        let request = http::Request::post("/inject")
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let answer: Value = client.request(request).await.expect("the injector answers");
        layout_of(&review["request"]["object"], &answer)
    }

    /// Polls the review until istio-proxy lands as `want`, or fails with the log.
    async fn wait_for(&self, want: Layout, why: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            let got = self.layout().await;
            if got == want {
                return;
            }
            last = Some(got);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{why}: istio-proxy stayed {last:?}, want {want:?}; the injector's log:\n{}",
            self.log()
        );
    }

    /// Polls /metrics until `name` reaches at least `value`.
    async fn wait_metric(&self, name: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metric(name) < value {
            assert!(
                Instant::now() < deadline,
                "{name} never reached {value}; the injector's log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Applies the review's patch to the pod and finds istio-proxy in it.
fn layout_of(pod: &Value, answer: &Value) -> Layout {
    use base64::Engine as _;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("the pod is patched"))
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("a JSON patch");
    let mut pod = pod.clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the pod");
    let has_proxy = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "istio-proxy")
            .cloned()
    };
    match (
        has_proxy(&pod["spec"]["initContainers"]),
        has_proxy(&pod["spec"]["containers"]),
    ) {
        (Some(proxy), None) => {
            assert_eq!(
                proxy["restartPolicy"], "Always",
                "a native sidecar restarts"
            );
            Layout::Native
        }
        (None, Some(_)) => Layout::Classic,
        other => panic!("istio-proxy is not in exactly one list: {other:?}"),
    }
}

/// A kubeconfig for `server` that trusts `ca_pem` (or skips verification) and sends `token`.
fn write_kubeconfig(path: &Path, server: &str, ca_pem: Option<&str>, token: &str) {
    use base64::Engine as _;
    let trust = match ca_pem {
        Some(pem) => format!(
            "certificate-authority-data: '{}'",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => "insecure-skip-tls-verify: true".to_owned(),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: envtest, cluster: {{server: '{server}', {trust}}}}}]\n\
         users: [{{name: injector, user: {{token: '{token}'}}}}]\n\
         contexts: [{{name: injector, context: {{cluster: envtest, user: injector}}}}]\n\
         current-context: injector\n"
    );
    std::fs::write(path, text).expect("writes the kubeconfig");
}

/// A Node whose kubelet reports `version` (the status subresource, as a kubelet writes it).
async fn add_node(client: &kube::Client, name: &str, version: &str) {
    let nodes = Api::<Node>::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    nodes
        .create(&PostParams::default(), &node)
        .await
        .unwrap_or_else(|e| panic!("node {name}: {e}"));
    let status = json!({"status": {"nodeInfo": {
        "kubeletVersion": version, "kubeProxyVersion": "", "architecture": "amd64",
        "operatingSystem": "linux", "osImage": "envtest", "kernelVersion": "",
        "containerRuntimeVersion": "", "machineID": "", "systemUUID": "", "bootID": ""
    }}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("status of node {name}: {e}"));
}

/// The ServiceAccount the injector runs as, and a token for it (TokenRequest).
async fn service_account_token(client: &kube::Client, name: &str) -> String {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("the ServiceAccount is created");
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}
    });
    let answer: Value = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .expect("a token for the ServiceAccount");
    answer["status"]["token"]
        .as_str()
        .expect("the TokenRequest has a token")
        .to_owned()
}

/// The RBAC that deploy/ must grant the injector: read Nodes, cluster-wide.
async fn grant_node_reads(client: &kube::Client, account: &str) {
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "sidecar-injector-nodes"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
    }))
    .unwrap();
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("the ClusterRole is created");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "sidecar-injector-nodes"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sidecar-injector-nodes"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "default"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("the ClusterRoleBinding is created");
}

/// Counts the "cannot learn" warnings in the log.
fn warnings(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("cannot learn the nodes' kubelet versions"))
        .count()
}

/// Forbidden first (no RBAC yet): one warning naming the fix, classic sidecars although every
/// node could run native ones. Once the ClusterRole is bound: native sidecars, two nodes known.
/// A v1.28 node joins: back to classic at the next re-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_versions_from_the_api_server_decide_native_sidecars() {
    let Some(assets) = control_plane::assets() else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut plane = ControlPlane::start(&assets).expect("etcd and kube-apiserver start");
    let admin = plane.client().expect("an admin client");
    plane
        .wait_ready(&admin)
        .await
        .expect("the API server is ready");
    let dir = temp_dir("native-sidecars").unwrap();

    add_node(&admin, "node-a", "v1.34.0").await;
    add_node(&admin, "node-b", "v1.34.2").await;
    let token = service_account_token(&admin, "sidecar-injector").await;
    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &plane.url, Some(&plane.ca_pem), &token);
    let injector = Injector::start(&dir, &kubeconfig);

    injector
        .wait_metric("sidecar_injector_node_lists_total{result=\"failure\"}", 3.0)
        .await;
    let log = injector.log();
    assert_eq!(warnings(&log), 1, "warned once, not every re-list:\n{log}");
    assert!(
        log.contains("403") && log.contains("`get`, `list` on `nodes`"),
        "the warning says what is wrong and how to fix it:\n{log}"
    );
    assert_eq!(injector.layout().await, Layout::Classic);

    grant_node_reads(&admin, "sidecar-injector").await;
    injector
        .wait_for(Layout::Native, "every kubelet is v1.34")
        .await;
    assert_eq!(injector.metric("sidecar_injector_nodes"), 2.0);
    assert_eq!(injector.metric("sidecar_injector_native_sidecars"), 1.0);
    assert!(
        injector.log().contains("listing nodes works again"),
        "{}",
        injector.log()
    );

    add_node(&admin, "node-old", "v1.28.3").await;
    injector
        .wait_for(Layout::Classic, "one kubelet is v1.28")
        .await;
    assert_eq!(injector.metric("sidecar_injector_nodes"), 3.0);
    assert_eq!(injector.metric("sidecar_injector_native_sidecars"), 0.0);

    drop(injector);
    drop(plane);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nothing listens where the kubeconfig points: the server is ready at once, warns once with
/// the fix, keeps retrying, and injects classic sidecars.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_leaves_the_injector_ready_and_classic() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("native-sidecars-offline").unwrap();
    let kubeconfig: PathBuf = dir.join("kubeconfig");
    // A port that was free a moment ago; nothing serves the API there.
    let server = format!("https://127.0.0.1:{}", free_port());
    write_kubeconfig(&kubeconfig, &server, None, "unused");
    let injector = Injector::start(&dir, &kubeconfig);

    injector
        .wait_metric("sidecar_injector_node_lists_total{result=\"failure\"}", 3.0)
        .await;
    assert_eq!(
        http_get(injector.monitoring_port, "/readyz").map(|(s, _)| s),
        Some(200)
    );
    let log = injector.log();
    assert_eq!(warnings(&log), 1, "{log}");
    assert!(log.contains("--kubelet-version"), "{log}");
    assert_eq!(injector.layout().await, Layout::Classic);
    assert_eq!(injector.metric("sidecar_injector_native_sidecars"), 0.0);
    assert_eq!(
        injector.metric("sidecar_injector_node_list_last_success_timestamp_seconds"),
        0.0
    );

    drop(injector);
    let _ = std::fs::remove_dir_all(&dir);
}
