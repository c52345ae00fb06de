//! What the server tests share: certificates made at test time, directories laid out the way
//! the kubelet mounts ConfigMaps and Secrets, an HTTPS client, and waiting on conditions.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The AdmissionReview the API server sent for a Deployment's pod: captured from a real
/// kube-apiserver v1.36.2 (mutating webhook on pods CREATE, pod created by the ReplicaSet
/// controller's identity), with only an OpenShift-only projected volume source removed.
pub const REVIEW: &str = include_str!("../fixtures/admission-review.json");

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    });
}

/// The engine's built-in configuration files, given explicitly as a ConfigMap mount would.
pub fn builtin_config(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("engine/builtin")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Starts the real server on loopback ports chosen by the kernel, with the certificate and
/// configuration read from kubelet-style mounts under `dir`.
pub async fn start(
    dir: &Path,
    pair: &Pair,
    environment: injector_engine::Environment,
) -> (sidecar_injector::serve::Running, Mounted, Mounted) {
    init();
    let tls = Mounted::new(
        dir,
        "tls",
        &[
            ("tls.crt", pair.cert.as_bytes()),
            ("tls.key", pair.key.as_bytes()),
        ],
    );
    let config = Mounted::new(
        dir,
        "config",
        &[
            ("config", &builtin_config("injector-config.yaml")),
            ("values", &builtin_config("values.json")),
            ("mesh", &builtin_config("mesh.yaml")),
        ],
    );
    let options = sidecar_injector::serve::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        monitoring: "127.0.0.1:0".parse().unwrap(),
        tls: sidecar_injector::serve::CertFiles {
            cert: tls.path("tls.crt"),
            key: tls.path("tls.key"),
        },
        config: sidecar_injector::serve::ConfigFiles {
            injector_config: Some(config.path("config")),
            values: Some(config.path("values")),
            mesh: Some(config.path("mesh")),
        },
        environment,
        reload_interval: Duration::from_millis(50),
        shutdown_timeout: Duration::from_secs(5),
        shutdown_delay: Duration::ZERO,
    };
    let running = sidecar_injector::serve::start(options).await.unwrap();
    (running, tls, config)
}

/// A throw-away CA that signs serving certificates.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A PEM certificate and key.
#[derive(Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Pki {
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for `127.0.0.1` and `localhost`.
    pub fn leaf(&self) -> Pair {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A directory mounted the way the kubelet mounts a ConfigMap or Secret volume: the files are
/// symlinks through `..data`, which points at a timestamped directory and is swapped by a
/// rename when the object changes.
pub struct Mounted {
    pub dir: PathBuf,
    generation: usize,
}

impl Mounted {
    pub fn new(parent: &Path, name: &str, files: &[(&str, &[u8])]) -> Mounted {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut mounted = Mounted { dir, generation: 0 };
        mounted.update(files);
        for (file, _) in files {
            std::os::unix::fs::symlink(format!("..data/{file}"), mounted.dir.join(file)).unwrap();
        }
        mounted
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes a new generation and swaps `..data` to it in one rename, as the kubelet does.
    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        self.generation += 1;
        let generation = format!("..2026_11_25_00_00_00.{}", self.generation);
        std::fs::create_dir(self.dir.join(&generation)).unwrap();
        for (file, contents) in files {
            std::fs::write(self.dir.join(&generation).join(file), contents).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

/// An HTTPS client that trusts `ca_pem` and offers only the given ALPN protocol, so the test
/// knows which HTTP version it speaks. One connection per request when `fresh`, so every
/// request makes a new handshake (and sees a rotated certificate).
pub fn client(ca_pem: &str, alpn: &[u8], fresh: bool) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    // A resumed session does not show the certificate again; full handshakes only.
    tls.resumption = rustls::client::Resumption::disabled();
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tls_info(true)
        .timeout(Duration::from_secs(20));
    if fresh {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder = if alpn == b"h2" {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    builder.build().unwrap()
}

use rustls::pki_types::pem::PemObject as _;

/// Polls `condition` until it holds; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One sample of a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// GETs a path on the plain-HTTP side port.
pub async fn side_port(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The binary, started with kubelet-style mounts and JSON logs; killed if a test fails.
pub struct Process {
    pub child: std::process::Child,
    pub https: std::net::SocketAddr,
    pub monitoring: std::net::SocketAddr,
    /// Every log line after the start-up line, parsed.
    pub log: std::sync::mpsc::Receiver<serde_json::Value>,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sidecar-injector serve` on kernel-chosen loopback ports with `args` added.
pub fn spawn(pki: &Pki, args: &[&str]) -> Process {
    init();
    let dir = tempfile::tempdir().unwrap();
    let pair = pki.leaf();
    let tls = Mounted::new(
        dir.path(),
        "tls",
        &[
            ("tls.crt", pair.cert.as_bytes()),
            ("tls.key", pair.key.as_bytes()),
        ],
    );
    let config = Mounted::new(
        dir.path(),
        "config",
        &[
            ("config", &builtin_config("injector-config.yaml")),
            ("values", &builtin_config("values.json")),
            ("mesh", &builtin_config("mesh.yaml")),
        ],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .args(["--log-format", "json", "serve", "--address", "127.0.0.1"])
        .args(["--port", "0", "--monitoring-port", "0"])
        .arg("--tls-dir")
        .arg(&tls.dir)
        .arg("--injector-config")
        .arg(config.path("config"))
        .arg("--values")
        .arg(config.path("values"))
        .arg("--mesh-config")
        .arg(config.path("mesh"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The addresses come from the start-up log line, since the kernel picked the ports.
    let stderr = child.stderr.take().unwrap();
    let (lines, log) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("injector: {line}");
            let _ = lines.send(line);
        }
    });
    let started = loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("the injector starts");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["message"] == "serving admission reviews" {
            break event;
        }
    };
    // The rest of the log, parsed, for tests that check what was logged.
    let (events, parsed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in log {
            if let Ok(event) = serde_json::from_str(&line)
                && events.send(event).is_err()
            {
                break;
            }
        }
    });
    Process {
        child,
        log: parsed,
        https: started["https_addr"].as_str().unwrap().parse().unwrap(),
        monitoring: started["monitoring_addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        _dir: dir,
    }
}

/// POSTs a review over HTTPS and returns the response AdmissionReview.
pub async fn review(pki: &Pki, addr: std::net::SocketAddr, body: &[u8]) -> serde_json::Value {
    let response = client(&pki.ca_pem, b"h2", false)
        .post(format!(
            "https://localhost:{}/inject?timeout=10s",
            addr.port()
        ))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// The pod the API server would store: the request's object with the returned patch applied.
pub fn patched_pod(request: &serde_json::Value, response: &serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the pod that was sent");
    pod
}

/// The `name`s of a list of containers.
pub fn names(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}
