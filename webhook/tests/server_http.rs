//! The webhook over real HTTPS: the API server's AdmissionReview in, a patch that injects the
//! sidecar out; skip and deny answers; every kind of bad request refused with a plain 4xx.

mod server_support;

use std::time::Duration;

use injector_engine::{Environment, NativeSidecars};
use serde_json::{Value, json};
use server_support::*;

const H1: &[u8] = b"http/1.1";
const H2: &[u8] = b"h2";

fn classic() -> Environment {
    Environment {
        revision: "default".into(),
        native_sidecars: NativeSidecars::Disabled,
        ..Environment::default()
    }
}

fn review() -> Value {
    serde_json::from_str(REVIEW).unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Vec<u8>) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The response AdmissionReview, after checking the envelope the API server insists on.
async fn answer(response: reqwest::Response, request: &Value) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["apiVersion"], request["apiVersion"]);
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(body["response"]["uid"], request["request"]["uid"]);
    body["response"].clone()
}

#[tokio::test]
async fn injects_the_api_servers_review_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let request = review();
    for alpn in [H1, H2] {
        let client = client(&pki.ca_pem, alpn, false);
        let url = format!(
            "https://127.0.0.1:{}/inject?timeout=10s",
            running.https_addr.port()
        );
        let response = post(&client, url, REVIEW.as_bytes().to_vec()).await;
        let expected = if alpn == H2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        let response = answer(response, &request).await;
        assert_eq!(response["allowed"], true, "{response}");

        let pod = patched_pod(&request, &response);
        let containers = names(&pod["spec"]["containers"]);
        assert_eq!(containers, ["productpage", "istio-proxy"], "{pod:#}");
        assert_eq!(names(&pod["spec"]["initContainers"]), ["istio-init"]);
        // The application container and the API server's defaults are left as they were.
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            request["request"]["object"]["spec"]["containers"][0]["image"]
        );
        assert_eq!(
            pod["spec"]["tolerations"],
            request["request"]["object"]["spec"]["tolerations"]
        );
        assert!(pod["metadata"]["annotations"]["sidecar.istio.io/status"].is_string());
    }
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn answers_v1beta1_in_v1beta1_and_honours_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let client = client(&pki.ca_pem, H1, false);
    let url = format!("https://127.0.0.1:{}/inject", running.https_addr.port());

    let mut request = review();
    request["apiVersion"] = json!("admission.k8s.io/v1beta1");
    request["request"]["dryRun"] = json!(true);
    let response = post(&client, url, serde_json::to_vec(&request).unwrap()).await;
    let response = answer(response, &request).await;
    // The injector has no side effects, so a dry run gets the same answer as a real create.
    assert_eq!(response["allowed"], true);
    assert!(
        names(&patched_pod(&request, &response)["spec"]["containers"]).contains(&"istio-proxy")
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn skips_and_denies_as_istio_does() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let client = client(&pki.ca_pem, H2, false);
    let url = || format!("https://127.0.0.1:{}/inject", running.https_addr.port());

    let mut opted_out = review();
    opted_out["request"]["object"]["metadata"]["annotations"]["sidecar.istio.io/inject"] =
        json!("false");
    let response = answer(
        post(&client, url(), serde_json::to_vec(&opted_out).unwrap()).await,
        &opted_out,
    )
    .await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");

    let mut bad = review();
    bad["request"]["object"]["metadata"]["annotations"]["traffic.sidecar.istio.io/includeInboundPorts"] =
        json!("http");
    let response = answer(
        post(&client, url(), serde_json::to_vec(&bad).unwrap()).await,
        &bad,
    )
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("includeInboundPorts"), "{response}");

    let mut unknown = review();
    unknown["request"]["object"]["metadata"]["annotations"]["inject.istio.io/templates"] =
        json!("sidecar,no-such-template");
    let response = answer(
        post(&client, url(), serde_json::to_vec(&unknown).unwrap()).await,
        &unknown,
    )
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-template"), "{response}");

    let (_, metrics) = side_port(running.monitoring_addr, "/metrics").await;
    assert_eq!(metric(&metrics, "sidecar_injection_requests_total"), 3.0);
    assert_eq!(metric(&metrics, "sidecar_injection_success_total"), 3.0);
    assert_eq!(metric(&metrics, "sidecar_injection_skip_total"), 1.0);
    // Istio counts a denial as a failure too.
    assert_eq!(metric(&metrics, "sidecar_injection_failure_total"), 2.0);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_bad_requests_with_a_plain_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let client = client(&pki.ca_pem, H2, false);
    let url = format!(
        "https://127.0.0.1:{}/inject?timeout=10s",
        running.https_addr.port()
    );

    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = client.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let text = response.text().await.unwrap();
            (status, content_type, text)
        }
    };
    let json = Some("application/json");
    let fixture = REVIEW.as_bytes().to_vec();

    // (what, content type, body, expected status, the message mentions)
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "no content type",
            None,
            fixture.clone(),
            415,
            "application/json",
        ),
        (
            "text/plain",
            Some("text/plain"),
            fixture.clone(),
            415,
            "application/json",
        ),
        (
            "charset suffix, refused like Istio",
            Some("application/json; charset=utf-8"),
            fixture.clone(),
            415,
            "application/json",
        ),
        ("empty body", json, Vec::new(), 400, "no body"),
        (
            "not JSON",
            json,
            b"<AdmissionReview/>".to_vec(),
            400,
            "decode",
        ),
        (
            "JSON but not a review",
            json,
            br#"{"kind":"Pod","apiVersion":"v1"}"#.to_vec(),
            400,
            "AdmissionReview",
        ),
        (
            "a review without a request",
            json,
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#.to_vec(),
            400,
            "request",
        ),
        ("too large", json, vec![b' '; 5 << 20], 413, "4 MiB"),
    ];
    for (what, content_type, body, status, says) in cases {
        let (got, got_type, text) = send(content_type, body).await;
        assert_eq!(got, status, "{what}: {text}");
        assert!(got_type.starts_with("text/plain"), "{what}: {got_type}");
        assert!(
            text.contains(says),
            "{what}: {text:?} should mention {says:?}"
        );
    }

    // Every truncation of a real review is refused, none answered as if it were whole.
    let body = REVIEW.trim_end().as_bytes();
    for end in (1..body.len()).step_by(61) {
        let (status, _, text) = send(json, body[..end].to_vec()).await;
        assert_eq!(status, 400, "{end}-byte prefix: {text}");
    }

    // Wrong method and unknown path come from the router.
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert!(get.text().await.unwrap().contains("POST /inject"));
    let elsewhere = post(
        &client,
        format!("https://127.0.0.1:{}/mutate", running.https_addr.port()),
        fixture,
    )
    .await;
    assert_eq!(elsewhere.status(), 404);

    // The server is still fine after all that.
    let (status, _) = side_port(running.monitoring_addr, "/healthz").await;
    assert_eq!(status, 200);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_streamed_without_a_length_is_cut_at_the_limit() {
    // Chunked transfer has no Content-Length to check up front; the read itself must stop.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let mut stream = raw_tls(&pki, running.https_addr).await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"POST /inject HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, " ".repeat(1 << 20));
    for _ in 0..5 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server may close once it has answered
        }
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("4 MiB"), "{response}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn stops_waiting_when_the_api_servers_timeout_passes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let mut stream = raw_tls(&pki, running.https_addr).await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Announce a whole review, send half of it, then stall.
    let body = REVIEW.as_bytes();
    let head = format!(
        "POST /inject?timeout=300ms HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let mut response = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("an answer once the deadline passed")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..read]);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("timeout of 300ms"), "{response}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn path_parameters_reach_the_injected_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    let client = client(&pki.ca_pem, H1, false);
    let request = review();
    let url = format!(
        "https://127.0.0.1:{}/inject/cluster/east/net/network2",
        running.https_addr.port()
    );
    let response = answer(
        post(&client, url, REVIEW.as_bytes().to_vec()).await,
        &request,
    )
    .await;
    let pod = patched_pod(&request, &response);
    let proxy = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap();
    let env = |name: &str| {
        proxy["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        env("ISTIO_META_CLUSTER_ID"),
        Some(json!("east")),
        "{proxy:#}"
    );
    assert_eq!(
        env("ISTIO_META_NETWORK"),
        Some(json!("network2")),
        "{proxy:#}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn side_port_reports_health_and_istio_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    assert_eq!(side_port(running.monitoring_addr, "/healthz").await.0, 200);
    assert_eq!(side_port(running.monitoring_addr, "/readyz").await.0, 200);
    let (_, before) = side_port(running.monitoring_addr, "/metrics").await;
    assert_eq!(metric(&before, "sidecar_injection_requests_total"), 0.0);
    assert_eq!(
        metric(
            &before,
            "sidecar_injector_config_reloads_total{result=\"success\"}"
        ),
        1.0
    );
    let expiry = metric(&before, "sidecar_injector_cert_expiry_seconds");
    assert!(
        expiry > 86_400.0,
        "a fresh certificate expires in more than a day: {expiry}"
    );

    let client = client(&pki.ca_pem, H1, false);
    let url = format!("https://127.0.0.1:{}/inject", running.https_addr.port());
    let mut opted_out = review();
    opted_out["request"]["object"]["metadata"]["annotations"]["sidecar.istio.io/inject"] =
        json!("false");
    post(
        &client,
        url.clone(),
        serde_json::to_vec(&opted_out).unwrap(),
    )
    .await;
    client.post(&url).body("x").send().await.unwrap();
    let (_, after) = side_port(running.monitoring_addr, "/metrics").await;
    assert_eq!(metric(&after, "sidecar_injection_requests_total"), 2.0);
    assert_eq!(metric(&after, "sidecar_injection_success_total"), 1.0);
    assert_eq!(metric(&after, "sidecar_injection_skip_total"), 1.0);
    assert_eq!(metric(&after, "sidecar_injection_failure_total"), 1.0);
    assert_eq!(metric(&after, "sidecar_injection_time_seconds_count"), 2.0);
    assert_eq!(
        metric(&after, "sidecar_injection_time_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn negotiates_tls12_as_well_as_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (running, _tls, _config) = start(dir.path(), &pki.leaf(), classic()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let stream = raw_tls_with(&pki, running.https_addr, version).await;
        let (_, connection) = stream.get_ref();
        assert_eq!(connection.protocol_version(), Some(version.version));
        assert_eq!(connection.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
    running.shutdown().await.unwrap();
}

async fn raw_tls(
    pki: &Pki,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    raw_tls_with(pki, addr, &rustls::version::TLS13).await
}

/// A TLS connection without an HTTP client on top, for requests a client library would not
/// send (stalled or endless bodies).
async fn raw_tls_with(
    pki: &Pki,
    addr: std::net::SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![H1.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}
