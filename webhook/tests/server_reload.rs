//! Certificate and configuration reload the way Kubernetes delivers them: the kubelet swaps the
//! `..data` symlink of the mounted Secret or ConfigMap. Requests keep flowing meanwhile.

mod server_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use injector_engine::{Environment, NativeSidecars};
use serde_json::{Value, json};
use server_support::*;

fn classic() -> Environment {
    Environment {
        revision: "default".into(),
        native_sidecars: NativeSidecars::Disabled,
        ..Environment::default()
    }
}

/// A review the built-in policy skips, so these tests do not depend on template rendering.
fn opted_out() -> Vec<u8> {
    let mut review: Value = serde_json::from_str(REVIEW).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["sidecar.istio.io/inject"] =
        json!("false");
    serde_json::to_vec(&review).unwrap()
}

async fn metrics(running: &sidecar_injector::serve::Running) -> String {
    side_port(running.monitoring_addr, "/metrics").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_the_certificate_without_dropping_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let first = pki.leaf();
    let (running, mut tls, _config) = start(dir.path(), &first, classic()).await;
    let url = format!("https://127.0.0.1:{}/inject", running.https_addr.port());

    // Requests on fresh connections, so each one shows the certificate served right then.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let last_cert = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (stop, answered, failures, last_cert) = (
            stop.clone(),
            answered.clone(),
            failures.clone(),
            last_cert.clone(),
        );
        let (client, url, body) = (
            client(&pki.ca_pem, b"http/1.1", true),
            url.clone(),
            opted_out(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        let info = response
                            .extensions()
                            .get::<reqwest::tls::TlsInfo>()
                            .cloned();
                        let cert = info.and_then(|i| i.peer_certificate().map(<[u8]>::to_vec));
                        *last_cert.lock().unwrap() = cert.unwrap_or_default();
                        answered.fetch_add(1, SeqCst);
                    }
                    Ok(response) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", response.status())),
                    Err(err) => failures.lock().unwrap().push(format!("{err:?}")),
                }
            }
        }));
    }
    let serving = |der: Vec<u8>| {
        let last_cert = last_cert.clone();
        move || {
            let der = der.clone();
            let last_cert = last_cert.clone();
            async move { *last_cert.lock().unwrap() == der }
        }
    };
    wait_until(
        Duration::from_secs(10),
        "the first certificate",
        serving(first.der.clone()),
    )
    .await;

    let second = pki.leaf();
    tls.update(&[
        ("tls.crt", second.cert.as_bytes()),
        ("tls.key", second.key.as_bytes()),
    ]);
    wait_until(
        Duration::from_secs(10),
        "the rotated certificate",
        serving(second.der.clone()),
    )
    .await;

    // A broken certificate, then a key that does not match: both rejected, the second pair stays.
    tls.update(&[
        (
            "tls.crt",
            b"-----BEGIN CERTIFICATE-----\nbroken\n".as_slice(),
        ),
        ("tls.key", second.key.as_bytes()),
    ]);
    let failed = |n: f64| {
        let running = &running;
        move || async move {
            metric(
                &metrics(running).await,
                "sidecar_injector_cert_reloads_total{result=\"failure\"}",
            ) == n
        }
    };
    wait_until(
        Duration::from_secs(10),
        "the broken certificate to be rejected",
        failed(1.0),
    )
    .await;
    let third = pki.leaf();
    tls.update(&[
        ("tls.crt", third.cert.as_bytes()),
        ("tls.key", first.key.as_bytes()),
    ]);
    wait_until(
        Duration::from_secs(10),
        "the mismatched key to be rejected",
        failed(2.0),
    )
    .await;

    let before = answered.load(SeqCst);
    wait_until(
        Duration::from_secs(10),
        "more requests after the bad updates",
        || {
            let answered = answered.clone();
            async move { answered.load(SeqCst) >= before + 10 }
        },
    )
    .await;
    assert_eq!(
        *last_cert.lock().unwrap(),
        second.der,
        "the last good certificate keeps serving"
    );

    stop.store(true, SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let text = metrics(&running).await;
    assert_eq!(
        metric(
            &text,
            "sidecar_injector_cert_reloads_total{result=\"success\"}"
        ),
        2.0
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_the_configuration_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, mut config) = start(dir.path(), &pki.leaf(), classic()).await;
    let client = client(&pki.ca_pem, b"h2", false);
    let url = format!("https://127.0.0.1:{}/inject", running.https_addr.port());
    // The fixture's pod is injected; it is skipped only while the configuration says
    // `policy: disabled`.
    let skipped = || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(REVIEW)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            body["response"]["allowed"] == true && body["response"].get("patch").is_none()
        }
    };
    assert!(!skipped().await, "policy: enabled injects");

    let enabled = builtin_config("injector-config.yaml");
    let text = String::from_utf8(enabled.clone()).unwrap();
    assert!(
        text.contains("policy: enabled"),
        "the built-in config sets the policy"
    );
    let disabled = text.replace("policy: enabled", "policy: disabled");
    let (values, mesh) = (builtin_config("values.json"), builtin_config("mesh.yaml"));
    config.update(&[
        ("config", disabled.as_bytes()),
        ("values", &values),
        ("mesh", &mesh),
    ]);
    wait_until(
        Duration::from_secs(10),
        "the disabled policy to apply",
        || async { skipped().await },
    )
    .await;

    // Not YAML: logged, counted, and the disabled policy keeps serving.
    config.update(&[
        ("config", b"policy: [unclosed\n".as_slice()),
        ("values", &values),
        ("mesh", &mesh),
    ]);
    wait_until(
        Duration::from_secs(10),
        "the broken config to be rejected",
        || async {
            metric(
                &side_port(running.monitoring_addr, "/metrics").await.1,
                "sidecar_injector_config_reloads_total{result=\"failure\"}",
            ) == 1.0
        },
    )
    .await;
    assert!(skipped().await, "the last good configuration still serves");
    assert_eq!(side_port(running.monitoring_addr, "/readyz").await.0, 200);

    config.update(&[("config", &enabled), ("values", &values), ("mesh", &mesh)]);
    wait_until(
        Duration::from_secs(10),
        "the enabled policy to come back",
        || async { !skipped().await },
    )
    .await;
    let text = side_port(running.monitoring_addr, "/metrics").await.1;
    assert_eq!(
        metric(
            &text,
            "sidecar_injector_config_reloads_total{result=\"success\"}"
        ),
        3.0
    );
    running.shutdown().await.unwrap();
}
