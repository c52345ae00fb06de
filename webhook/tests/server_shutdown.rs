//! SIGTERM to the real binary: it turns unready, stops accepting, lets every review already in
//! flight finish, and exits within the shutdown timeout.

mod server_support;

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use server_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An HTTP/1.1 request whose head and first half of the body are sent; `finish` sends the rest
/// and reads the answer.
struct Stalled {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    rest: &'static [u8],
}

async fn stall(pki: &Pki, addr: SocketAddr) -> Stalled {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let body = REVIEW.as_bytes();
    let head = format!(
        "POST /inject?timeout=30s HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    Stalled {
        stream,
        rest: &body[body.len() / 2..],
    }
}

impl Stalled {
    async fn finish(mut self) -> String {
        self.stream.write_all(self.rest).await.unwrap();
        let mut response = Vec::new();
        // The server closes the connection after answering, since it is shutting down.
        self.stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }
}

async fn requests_seen(monitoring: SocketAddr) -> f64 {
    metric(
        &side_port(monitoring, "/metrics").await.1,
        "sidecar_injection_requests_total",
    )
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the injector did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_reviews_finish_then_exits() {
    let pki = Pki::new();
    let mut process = spawn(
        &pki,
        &["--native-sidecars", "false", "--shutdown-timeout", "20s"],
    );

    // Reviews in flight when the signal comes: six HTTP/1.1 uploads and one HTTP/2 stream,
    // each with half its body sent.
    let mut stalled = Vec::new();
    for _ in 0..6 {
        stalled.push(stall(&pki, process.https).await);
    }
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let body = REVIEW.as_bytes();
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(&body[..body.len() / 2])])
        .chain(futures_util::stream::once(async move {
            let _ = released.await;
            Ok(&body[body.len() / 2..])
        }));
    let h2 = client(&pki.ca_pem, b"h2", false)
        .post(format!("https://localhost:{}/inject", process.https.port()))
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(reqwest::Body::wrap_stream(chunks))
        .send();
    let h2 = tokio::spawn(h2);
    let monitoring = process.monitoring;
    wait_until(
        Duration::from_secs(10),
        "seven reviews in flight",
        || async move { requests_seen(monitoring).await == 7.0 },
    )
    .await;

    sigterm(&process.child);
    wait_until(
        Duration::from_secs(10),
        "readyz to turn 503",
        || async move { side_port(monitoring, "/readyz").await.0 == 503 },
    )
    .await;
    let https = process.https;
    wait_until(
        Duration::from_secs(10),
        "new connections to be refused",
        || async move { tokio::net::TcpStream::connect(https).await.is_err() },
    )
    .await;

    let _ = release.send(());
    for request in stalled {
        let response = request.finish().await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("aa921576-aed3-41c7-a267-939de4f8ceb8"),
            "{response}"
        );
    }
    let response = h2.await.unwrap().expect("the HTTP/2 review is answered");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);

    let status = wait_for_exit(&mut process.child, Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_that_never_finishes_does_not_hold_shutdown_past_the_timeout() {
    let pki = Pki::new();
    let mut process = spawn(&pki, &["--shutdown-timeout", "500ms"]);
    let _stalled = stall(&pki, process.https).await;
    let monitoring = process.monitoring;
    wait_until(
        Duration::from_secs(10),
        "the review in flight",
        || async move { requests_seen(monitoring).await == 1.0 },
    )
    .await;
    sigterm(&process.child);
    let status = wait_for_exit(&mut process.child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_delay_keeps_serving_while_unready() {
    let pki = Pki::new();
    let mut process = spawn(&pki, &["--shutdown-delay", "2s"]);
    sigterm(&process.child);
    let monitoring = process.monitoring;
    wait_until(
        Duration::from_secs(10),
        "readyz to turn 503",
        || async move { side_port(monitoring, "/readyz").await.0 == 503 },
    )
    .await;
    // Unready, but a new connection still gets its review answered during the delay.
    let answer = review(&pki, process.https, REVIEW.as_bytes()).await;
    assert_eq!(answer["response"]["allowed"], true);
    let status = wait_for_exit(&mut process.child, Duration::from_secs(15));
    assert!(status.success(), "{status}");
}
