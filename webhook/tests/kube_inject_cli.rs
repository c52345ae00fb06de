//! `sidecar-injector kube-inject` as a user runs it: the real binary on the example manifest.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/deployment.yaml")
        .display()
        .to_string()
}

fn documents(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("utf-8 output");
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty() && d.trim() != "---")
        .map(|d| serde_yaml_ng::from_str(d).expect("each document is YAML"))
        .collect()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bin()
        .args(args)
        .env_remove("ENABLE_NATIVE_SIDECARS")
        .env_remove("INJECTOR_CONFIG")
        .env_remove("INJECTOR_VALUES")
        .env_remove("INJECTOR_MESH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(stdin.unwrap_or("").as_bytes())
        .expect("stdin accepts the manifest");
    drop(pipe);
    child.wait_with_output().expect("the binary exits")
}

/// With no flags the built-in configuration injects a classic sidecar (no cluster to ask about
/// kubelet versions), rewrites the app's probe and leaves the Service alone.
#[test]
fn injects_the_example_deployment_with_builtin_defaults() {
    let out = run(&["kube-inject", "-f", &example()], None);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 2, "a Deployment and a Service");
    let pod = &docs[0]["spec"]["template"];
    assert_eq!(names(&pod["spec"]["containers"]), ["web", "istio-proxy"]);
    assert_eq!(names(&pod["spec"]["initContainers"]), ["istio-init"]);
    let proxy = &pod["spec"]["containers"][1];
    let image = proxy["image"].as_str().unwrap();
    assert!(image.starts_with("docker.io/istio/proxyv2:"), "{image}");
    let probe = &pod["spec"]["containers"][0]["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/app-health/web/readyz");
    assert_eq!(probe["port"], 15020);
    let probers = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "ISTIO_KUBE_APP_PROBERS")
        .expect("the original probe is handed to the agent");
    assert_eq!(
        probers["value"],
        r#"{"/app-health/web/readyz":{"httpGet":{"path":"/","port":80}}}"#
    );
    assert_eq!(
        pod["metadata"]["labels"]["service.istio.io/canonical-revision"],
        "v1"
    );
    assert_eq!(docs[1]["kind"], "Service");
    assert_eq!(docs[1]["spec"]["ports"][0]["targetPort"], "http");
}

/// `-f -` reads stdin; forcing native sidecars moves the proxy to the init containers.
#[test]
fn reads_stdin_and_honours_native_sidecars() {
    let manifest = std::fs::read_to_string(example()).unwrap();
    let out = run(
        &["kube-inject", "-f", "-", "--native-sidecars", "true"],
        Some(&manifest),
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&out.stdout);
    let spec = &docs[0]["spec"]["template"]["spec"];
    assert_eq!(names(&spec["containers"]), ["web"]);
    assert_eq!(
        names(&spec["initContainers"]),
        ["istio-init", "istio-proxy"]
    );
    assert_eq!(spec["initContainers"][1]["restartPolicy"], "Always");
}

/// A bad traffic annotation fails the run, and the message names the document and the reason.
#[test]
fn bad_annotations_fail_naming_the_document() {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    traffic.sidecar.istio.io/excludeOutboundPorts: \"http\"\nspec:\n  containers:\n  - name: c\n    image: i\n";
    let out = run(&["kube-inject", "-f", "-"], Some(manifest));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("document 1 (Pod \"p\")"), "{stderr}");
    assert!(stderr.contains("excludeOutboundPorts invalid"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// Host-network workloads pass through untouched, with Istio's warning on stderr.
#[test]
fn host_network_workloads_are_left_alone_with_a_warning() {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\nspec:\n  hostNetwork: true\n  containers:\n  - name: c\n    image: i\n";
    let out = run(&["kube-inject", "-f", "-"], Some(manifest));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Skipping injection because Pod \"ns/p\" has host networking enabled"),
        "{stderr}"
    );
    let docs = documents(&out.stdout);
    assert_eq!(names(&docs[0]["spec"]["containers"]), ["c"]);
}

#[test]
fn a_missing_file_is_an_error() {
    let out = run(&["kube-inject", "-f", "/nonexistent/manifest.yaml"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/manifest.yaml"));
}
