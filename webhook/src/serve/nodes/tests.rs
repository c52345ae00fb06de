use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use injector_engine::{ConfigSources, Environment, Injector};
use serde_json::json;

use super::*;

fn node(name: &str, kubelet: Option<&str>) -> Node {
    let status = match kubelet {
        Some(v) => json!({"nodeInfo": {
            "kubeletVersion": v, "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
            "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
            "osImage": "", "systemUUID": ""
        }}),
        None => json!({}),
    };
    serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
}

fn native(nodes: Vec<Node>) -> bool {
    decision(&kubelet_versions(nodes)).enabled()
}

fn shared() -> Shared {
    Shared {
        injector: RwLock::new(Arc::new(
            Injector::load(&ConfigSources::default()).expect("the built-in configuration loads"),
        )),
        environment: RwLock::new(Arc::new(Environment::default())),
        metrics: Default::default(),
        nodes: Status::default(),
        draining: AtomicBool::new(false),
        null_webhook: AtomicBool::new(false),
    }
}

/// The value of one sample line, as a scraper would read it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A kubeconfig whose API server is a loopback port nothing listens on.
fn unreachable_kubeconfig(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .unwrap();
    path
}

#[test]
fn native_when_every_node_runs_kubelet_1_33_or_newer() {
    assert!(native(vec![
        node("a", Some("v1.34.1")),
        node("b", Some("v1.33.0-eks-1")),
    ]));
}

#[test]
fn one_old_kubelet_keeps_unscheduled_pods_classic() {
    let auto = decision(&kubelet_versions(vec![
        node("a", Some("v1.34.1")),
        node("b", Some("v1.28.3")),
    ]));
    assert!(!auto.enabled());
    // A pod already bound to a node is decided by that node alone (Istio's rule).
    assert!(auto.enabled_for(Some("a")));
    assert!(!auto.enabled_for(Some("b")));
    assert!(!auto.enabled_for(Some("unknown")));
}

#[test]
fn a_node_without_a_reported_version_counts_as_too_old() {
    let versions = kubelet_versions(vec![node("a", Some("v1.34.1")), node("b", None)]);
    assert_eq!(versions.get("b").map(String::as_str), Some(""));
    assert!(!decision(&versions).enabled());
}

#[test]
fn no_nodes_means_not_native() {
    assert!(!native(Vec::new()));
}

#[test]
fn a_persistent_failure_is_reported_once_and_recovery_once() {
    let mut reporter = Reporter::default();
    let forbidden = || -> Result<(), NodesError> {
        Err(NodesError::Refused {
            code: 403,
            reason: "Forbidden".into(),
            message: "nodes is forbidden".into(),
        })
    };
    assert_eq!(reporter.observe(&forbidden()), Some(Notice::Warn));
    assert_eq!(reporter.observe(&forbidden()), None);
    assert_eq!(reporter.observe(&forbidden()), None);
    // A different problem is news.
    let gone = Err::<(), _>(NodesError::Refused {
        code: 503,
        reason: "ServiceUnavailable".into(),
        message: String::new(),
    });
    assert_eq!(reporter.observe(&gone), Some(Notice::Warn));
    assert_eq!(reporter.observe(&Ok(())), Some(Notice::Recovered));
    assert_eq!(reporter.observe(&Ok(())), None);
}

#[test]
fn forbidden_names_the_rbac_rule_that_fixes_it() {
    let error = NodesError::Refused {
        code: 403,
        reason: "Forbidden".into(),
        message: "nodes is forbidden".into(),
    };
    assert!(
        error.fix().contains("`get`, `list` on `nodes`"),
        "{}",
        error.fix()
    );
    assert!(error.fix().contains("--kubelet-version"));
}

#[test]
fn a_listing_flips_the_environment_and_the_gauges() {
    let shared = shared();
    let mut versions =
        kubelet_versions(vec![node("a", Some("v1.34.0")), node("b", Some("v1.34.2"))]);
    apply(&shared, &versions);
    assert!(shared.environment().native_sidecars.enabled());
    let mut text = String::new();
    render_metrics(&shared, &mut text);
    assert_eq!(sample(&text, "sidecar_injector_nodes"), Some(2.0));
    assert_eq!(sample(&text, "sidecar_injector_native_sidecars"), Some(1.0));

    versions.insert("c".into(), "v1.28.0".into());
    apply(&shared, &versions);
    assert!(!shared.environment().native_sidecars.enabled());
    let mut text = String::new();
    render_metrics(&shared, &mut text);
    assert_eq!(sample(&text, "sidecar_injector_nodes"), Some(3.0));
    assert_eq!(sample(&text, "sidecar_injector_native_sidecars"), Some(0.0));
    assert_eq!(oldest(&versions), "v1.28.0");
}

#[test]
fn watch_only_when_auto_has_no_kubelet_versions() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        nodes: NodeArgs,
    }
    let wanted = |args: &[&str]| {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        NodeWatch::wanted(&cli.nodes, &cli.config).is_some()
    };
    assert!(wanted(&["--native-sidecars", "auto"]));
    assert!(!wanted(&[
        "--native-sidecars",
        "auto",
        "--kubelet-version",
        "v1.34.0"
    ]));
    assert!(!wanted(&["--native-sidecars", "true"]));
    assert!(!wanted(&["--native-sidecars", "false"]));
}

/// No API server to ask: the listing fails with the reason, the decision stays "not native".
#[tokio::test]
async fn an_unreachable_api_server_leaves_sidecars_classic() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let watch = NodeWatch {
        kubeconfig: Some(unreachable_kubeconfig(dir.path())),
        every: Duration::from_secs(60),
    };
    let mut client = None;
    let error = watch
        .refresh(&mut client)
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(error, NodesError::Unreachable(_)), "{error:?}");
    let said = describe(&error);
    assert!(said.contains("Connection refused"), "{said}");
    assert_eq!(said.matches("Connection refused").count(), 1, "{said}");
    assert!(error.fix().contains("reachable"));
    assert!(client.is_some(), "the client is kept for the next attempt");

    let shared = Arc::new(shared());
    let task = tokio::spawn(watch.run(Arc::clone(&shared)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while shared.nodes.lists_failed.load(Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no listing attempted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(!shared.environment().native_sidecars.enabled());
    let mut text = String::new();
    render_metrics(&shared, &mut text);
    assert_eq!(
        sample(
            &text,
            "sidecar_injector_node_lists_total{result=\"failure\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "sidecar_injector_node_list_last_success_timestamp_seconds"
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_missing_kubeconfig_is_named_with_its_fix() {
    let watch = NodeWatch {
        kubeconfig: Some("/nonexistent/kubeconfig".into()),
        every: Duration::from_secs(60),
    };
    let error = watch.refresh(&mut None).await.expect_err("no such file");
    assert!(
        error.to_string().contains("/nonexistent/kubeconfig"),
        "{error}"
    );
    assert!(error.fix().contains("--kubeconfig"));
}
