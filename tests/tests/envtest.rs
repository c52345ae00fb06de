//! Against a real kube-apiserver (envtest layout, `KUBEBUILDER_ASSETS`): the `deploy/` objects
//! are accepted, and our injector, registered as a mutating webhook with the selectors from
//! `deploy/`, changes the pods the API server stores exactly where it should.
//!
//! Skips with instructions when `KUBEBUILDER_ASSETS` is unset. Each test starts its own etcd and
//! kube-apiserver on free loopback ports and stops them at the end, pass or fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::control_plane::{self, ControlPlane, Process, free_port, http_get, temp_dir, wait_until};
use e2e::{manifests, workspace};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::pinned_kind;
use serde_json::{Value, json};

/// The running pieces of one test; dropping it stops everything.
struct Cluster {
    /// Kept for its Drop: stops the API server and etcd.
    _plane: ControlPlane,
    client: kube::Client,
}

/// Starts etcd + kube-apiserver, or returns `None` (skip) without assets.
async fn cluster() -> Option<Cluster> {
    let assets = control_plane::assets()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut plane = ControlPlane::start(&assets).expect("etcd and kube-apiserver start");
    let client = plane.client().expect("a client for the API server");
    plane
        .wait_ready(&client)
        .await
        .expect("kube-apiserver becomes ready");
    Some(Cluster {
        _plane: plane,
        client,
    })
}

async fn create_namespace(client: &kube::Client, name: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
}

/// Sends `obj` to the API server: for real, or as a server-side dry run (validated, defaulted
/// and admitted, not stored).
async fn create(client: &kube::Client, obj: &Value, dry_run: bool) -> Result<(), kube::Error> {
    let (group, version) = match obj["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split_once('/')
    {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, obj["kind"].as_str().unwrap_or_default());
    let (ar, caps) = pinned_kind(client, &gvk).await?;
    let dynamic: DynamicObject =
        serde_json::from_value(obj.clone()).expect("manifests are objects");
    let api: Api<DynamicObject> = match (caps.scope, obj["metadata"]["namespace"].as_str()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    let pp = PostParams {
        dry_run,
        field_manager: Some("e2e".into()),
    };
    api.create(&pp, &dynamic).await.map(drop)
}

/// The Pod a Deployment would create (its template), in the Deployment's namespace.
fn pod_of(deployment: &Value) -> Value {
    let template = &deployment["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("from-template");
    metadata["namespace"] = deployment["metadata"]["namespace"].clone();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// Every object of `deploy/` (and of the Istio-ConfigMaps overlay) passes the API server's
/// validation and admission: namespaces for real, the rest as server-side dry runs (so the
/// webhook configuration, pointing at a Service with no pods, never intercepts anything). The
/// injector's pod, as its Deployment would create it, passes the `restricted` Pod Security
/// admission that its namespace enforces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_manifests_are_accepted_by_a_real_api_server() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let client = &cluster.client;
    for (dir, label) in [
        (workspace::deploy_dir(), "deploy/"),
        (
            workspace::deploy_dir().join("overlays/istio-configmaps"),
            "overlays/istio-configmaps",
        ),
    ] {
        let objects = manifests::render(&dir).expect("renders");
        let mut namespaces: Vec<String> = objects
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        // The Namespace object itself is created for real, with its labels (Pod Security).
        for ns_obj in objects.iter().filter(|o| o["kind"] == "Namespace") {
            create(client, ns_obj, false)
                .await
                .unwrap_or_else(|e| panic!("{label} Namespace: {e}"));
        }
        for ns in &namespaces {
            if Api::<Namespace>::all(client.clone())
                .get_opt(ns)
                .await
                .unwrap()
                .is_none()
            {
                create_namespace(client, ns, &[]).await;
            }
        }
        for obj in objects.iter().filter(|o| o["kind"] != "Namespace") {
            create(client, obj, true).await.unwrap_or_else(|e| {
                panic!(
                    "{label}: {} {} refused: {e}",
                    obj["kind"], obj["metadata"]["name"]
                )
            });
        }
        let deployment = manifests::find(&objects, "Deployment", None).expect("a Deployment");
        create(client, &pod_of(deployment), true)
            .await
            .unwrap_or_else(|e| panic!("{label}: the injector's pod is refused: {e}"));
        println!("{label}: {} objects accepted", objects.len());
    }

    // The Pod Security check is real: the same pod asking for NET_ADMIN is refused there.
    let objects = manifests::render(&workspace::deploy_dir()).unwrap();
    let mut pod = pod_of(manifests::find(&objects, "Deployment", None).unwrap());
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"]);
    let err = create(client, &pod, true)
        .await
        .expect_err("an extra capability in the restricted namespace");
    assert!(err.to_string().contains("violates PodSecurity"), "{err}");
}

/// The injector binary, serving on loopback with the configuration shipped in `deploy/config`.
struct Injector {
    process: Process,
    monitoring_port: u16,
}

impl Injector {
    /// Serves on `port` with the pair `sidecar-injector certs` wrote into `tls_dir`.
    fn start_on(bin: &Path, tls_dir: &Path, port: u16) -> Injector {
        let monitoring_port = free_port();
        let log: PathBuf = tls_dir.join("serve.log");
        let config = workspace::deploy_dir().join("config");
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--address", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--monitoring-port={monitoring_port}"))
            .arg(format!("--tls-dir={}", tls_dir.display()))
            .arg(format!("--values={}", config.join("values.json").display()))
            .arg(format!(
                "--mesh-config={}",
                config.join("mesh.yaml").display()
            ))
            .arg("--native-sidecars=false");
        let mut process = Process::spawn("sidecar-injector serve", cmd, log).expect("serve starts");
        wait_until(&mut process, 60, || {
            http_get(monitoring_port, "/readyz").is_some_and(|(s, _)| s == 200)
        })
        .expect("the injector becomes ready");
        Injector {
            process,
            monitoring_port,
        }
    }

    /// The sum of a counter's samples in /metrics.
    fn counter(&self, name: &str) -> f64 {
        let (_, text) = http_get(self.monitoring_port, "/metrics").expect("/metrics answers");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// `sidecar-injector certs` for a webhook reached by URL on loopback: it writes the serving
/// pair and puts its CA into the webhook configuration, which is returned.
fn certs_and_webhook(bin: &Path, dir: &Path, port: u16) -> Value {
    let objects = manifests::render(&workspace::deploy_dir()).unwrap();
    let mut mwc = manifests::find(&objects, "MutatingWebhookConfiguration", None)
        .unwrap()
        .clone();
    for hook in mwc["webhooks"].as_array_mut().unwrap() {
        hook["clientConfig"] = json!({"url": format!("https://127.0.0.1:{port}/inject")});
    }
    let file = dir.join("mutatingwebhookconfiguration.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&mwc).unwrap()).unwrap();
    let out = Command::new(bin)
        .args(["certs", "--extra-san", "127.0.0.1", "--out-dir"])
        .arg(dir)
        .arg("--webhook-config")
        .arg(&file)
        .output()
        .expect("certs runs");
    assert!(
        out.status.success(),
        "certs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let patched = manifests::read_yaml_documents(&file).unwrap().remove(0);
    for hook in patched["webhooks"].as_array().unwrap() {
        assert!(
            hook["clientConfig"]["caBundle"].is_string(),
            "certs patched no caBundle into {}",
            hook["name"]
        );
    }
    patched
}

fn pod(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Pod {
    let map = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": map(labels), "annotations": map(annotations)},
        // What the ServiceAccount admission plugin (off here: no controller makes `default`
        // ServiceAccounts) fills in; the injected istio-token volume requires it.
        "spec": {"serviceAccountName": "default",
                 "containers": [{"name": "app", "image": "docker.io/library/nginx:1.27", "ports": [{"containerPort": 8080}]}]}
    }))
    .unwrap()
}

fn names(list: &Option<Vec<k8s_openapi::api::core::v1::Container>>) -> Vec<String> {
    list.iter().flatten().map(|c| c.name.clone()).collect()
}

/// Asserts the stored pod carries the sidecar as our shipped configuration renders it.
fn assert_injected(pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        names(&Some(spec.containers.clone())),
        ["app", "istio-proxy"],
        "{name}: containers"
    );
    assert_eq!(
        names(&spec.init_containers),
        ["istio-init"],
        "{name}: init containers"
    );
    let proxy = &spec.containers[1];
    assert_eq!(
        proxy.image.as_deref(),
        Some("docker.io/istio/proxyv2:1.30.3"),
        "{name}: proxy image from deploy/config/values.json"
    );
    let init = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        init.image.as_deref(),
        Some("localhost/mesh-init:0.1.0"),
        "{name}: istio-init runs mesh-init"
    );
    let args = init.args.clone().unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("istio-iptables"));
    assert!(
        args.windows(2).any(|w| w == ["-p", "15001"])
            && args.windows(2).any(|w| w == ["-u", "1337"]),
        "{name}: {args:?}"
    );
    let caps = init
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default();
    assert!(
        caps.contains(&"NET_ADMIN".to_owned()),
        "{name}: istio-init needs NET_ADMIN"
    );

    let volumes: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    for v in [
        "istio-envoy",
        "istio-data",
        "istio-podinfo",
        "istio-token",
        "istiod-ca-cert",
    ] {
        assert!(
            volumes.contains(&v.to_owned()),
            "{name}: no volume {v} in {volumes:?}"
        );
    }
    // The status annotation lists what was injected; it must describe this very pod.
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let status: Value = serde_json::from_str(
        annotations
            .get("sidecar.istio.io/status")
            .expect("sidecar.istio.io/status"),
    )
    .unwrap();
    assert_eq!(status["containers"], json!(["istio-proxy"]), "{name}");
    assert_eq!(status["initContainers"], json!(["istio-init"]), "{name}");
    for v in status["volumes"].as_array().unwrap() {
        assert!(
            volumes.contains(&v.as_str().unwrap().to_owned()),
            "{name}: status names volume {v} the pod lacks"
        );
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("security.istio.io/tlsMode").map(String::as_str),
        Some("istio"),
        "{name}"
    );
    assert_eq!(
        labels
            .get("service.istio.io/canonical-name")
            .map(String::as_str),
        Some("demo"),
        "{name}"
    );
}

fn assert_untouched(pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        names(&Some(spec.containers.clone())),
        ["app"],
        "{name}: containers"
    );
    assert!(
        spec.init_containers.is_none(),
        "{name}: init containers {:?}",
        names(&spec.init_containers)
    );
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.contains_key("sidecar.istio.io/status"),
        "{name}: {annotations:?}"
    );
}

/// Waits until the API server calls the webhook (it picks up a new configuration
/// asynchronously): a dry-run pod in `ns` comes back with the sidecar.
async fn wait_for_webhook(client: &kube::Client, ns: &str) {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match pods
            .create(&dry, &pod("probe", &[("app", "demo")], &[]))
            .await
        {
            Ok(p)
                if names(&Some(p.spec.clone().unwrap().containers))
                    .contains(&"istio-proxy".to_owned()) =>
            {
                return;
            }
            Ok(_) => last = "created without a sidecar".into(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the webhook never injected a dry-run pod in {ns}: {last}");
}

/// The whole admission path: the API server calls our injector for pods in namespaces labelled
/// `istio-injection=enabled` or `istio.io/rev=default` and stores the injected pod; other pods
/// are stored as sent; a bad annotation is denied with our message; with the injector down,
/// failurePolicy Fail refuses pods in injected namespaces only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_injected_through_a_real_api_server() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let client = &cluster.client;
    let bin =
        workspace::binary("sidecar-injector", "sidecar-injector").expect("builds sidecar-injector");
    let dir = temp_dir("injector").unwrap();
    let port = free_port();

    let mwc = certs_and_webhook(&bin, &dir, port);
    let mut injector = Injector::start_on(&bin, &dir, port);
    create(client, &mwc, false)
        .await
        .expect("the webhook configuration is accepted");

    create_namespace(client, "injected", &[("istio-injection", "enabled")]).await;
    create_namespace(client, "by-revision", &[("istio.io/rev", "default")]).await;
    create_namespace(client, "plain", &[]).await;
    wait_for_webhook(client, "injected").await;

    let pp = PostParams::default();
    let api = |ns: &str| Api::<Pod>::namespaced(client.clone(), ns);
    let app = [("app", "demo")];

    let stored = api("injected")
        .create(&pp, &pod("app", &app, &[]))
        .await
        .expect("created");
    assert_injected(&api("injected").get("app").await.unwrap());
    assert_eq!(
        stored.metadata.uid,
        api("injected").get("app").await.unwrap().metadata.uid
    );
    api("by-revision")
        .create(&pp, &pod("app", &app, &[]))
        .await
        .expect("created");
    assert_injected(&api("by-revision").get("app").await.unwrap());

    api("plain")
        .create(&pp, &pod("app", &app, &[]))
        .await
        .expect("created");
    assert_untouched(&api("plain").get("app").await.unwrap());
    // Opted out by label: the API server does not even call us.
    api("injected")
        .create(
            &pp,
            &pod(
                "label-off",
                &[("app", "demo"), ("sidecar.istio.io/inject", "false")],
                &[],
            ),
        )
        .await
        .unwrap();
    assert_untouched(&api("injected").get("label-off").await.unwrap());
    // Opted out by annotation: we are called and skip.
    api("injected")
        .create(
            &pp,
            &pod(
                "annotation-off",
                &app,
                &[("sidecar.istio.io/inject", "false")],
            ),
        )
        .await
        .unwrap();
    assert_untouched(&api("injected").get("annotation-off").await.unwrap());

    let bad = pod(
        "bad",
        &app,
        &[("traffic.sidecar.istio.io/includeInboundPorts", "bad")],
    );
    let err = api("injected")
        .create(&pp, &bad)
        .await
        .expect_err("a bad annotation is denied");
    let msg = err.to_string();
    assert!(
        msg.contains("denied the request") && msg.contains("includeInboundPorts"),
        "{msg}"
    );
    assert!(api("injected").get_opt("bad").await.unwrap().is_none());

    // Counted by the injector itself: two injections, at least the annotation skip.
    assert!(injector.counter("sidecar_injection_success_total") >= 2.0);
    assert!(injector.counter("sidecar_injection_skip_total") >= 1.0);

    // The API server reaches us over HTTP/2, as the TLS setup offers `h2` by ALPN: the
    // protocol of the load benchmark's headline figures.
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("the injector's log");
    let reviews: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" admission review "))
        .collect();
    assert!(reviews.len() >= 4, "one log line per review:\n{log}");
    assert!(reviews.iter().all(|l| l.contains("http=\"2\"")), "{log}");

    // Its threads are named for what they do (`top -H`, the load benchmark's CPU split): the
    // async workers and the blocking pool that ran the reviews, and no unnamed runtime thread.
    let pid = injector.process.pid().expect("the injector runs");
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the injector's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(threads.iter().any(|t| t == "injector-io"), "{threads:?}");
    assert!(threads.iter().any(|t| t == "injector-pool"), "{threads:?}");
    assert!(
        !threads.iter().any(|t| t.starts_with("tokio")),
        "{threads:?}"
    );

    // Injector down: failurePolicy Fail refuses pods it would have injected, nothing else.
    injector.process.stop();
    let err = api("injected")
        .create(&pp, &pod("while-down", &app, &[]))
        .await
        .expect_err("refused while the injector is down");
    assert!(err.to_string().contains("failed calling webhook"), "{err}");
    api("plain")
        .create(&pp, &pod("while-down", &app, &[]))
        .await
        .expect("unselected namespaces are unaffected");
    assert_untouched(&api("plain").get("while-down").await.unwrap());

    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
