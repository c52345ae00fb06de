//! A real etcd + kube-apiserver on loopback, in controller-runtime's envtest layout:
//! `KUBEBUILDER_ASSETS` names a directory holding `etcd` and `kube-apiserver`. No kubelet,
//! scheduler or controllers run, so pods stay Pending; admission (our webhook) runs for real.
//!
//! Flags follow the start-up recipe in `shared/k8s/README.md`: free loopback ports, a token
//! file with one `system:masters` user, the ServiceAccount admission plugin off (no controller
//! creates `default` ServiceAccounts).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("cannot start {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} was not ready within {secs}s; its log:\n{log}")]
    NotReady {
        what: &'static str,
        secs: u64,
        log: String,
    },
    #[error("cannot prepare the control plane's files")]
    Files(#[source] std::io::Error),
    #[error("cannot make the service-account key")]
    Key(#[source] rcgen::Error),
    #[error("cannot build a client for the API server")]
    Client(#[source] kube::Error),
}

/// The assets directory, or `None` after printing how to provide one.
pub fn assets() -> Option<PathBuf> {
    let dir = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
    match dir {
        Some(dir) if dir.join("etcd").is_file() && dir.join("kube-apiserver").is_file() => {
            Some(dir)
        }
        _ => {
            eprintln!(
                "skipping: KUBEBUILDER_ASSETS must name a directory holding `etcd` and `kube-apiserver` \
                 (envtest layout). Here: export KUBEBUILDER_ASSETS=$PWD/../shared/k8s/bin; elsewhere \
                 `setup-envtest use -p path` prints one."
            );
            None
        }
    }
}

/// A port the kernel just handed out on loopback. Another process could take it before we bind
/// it again; with ephemeral ports that is rare enough for tests.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback has free ports")
}

/// A fresh, private directory under the system's temp dir; removed by whoever owns it.
pub fn temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A child process that is killed (SIGTERM, then SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    /// Starts `cmd` with stdout and stderr into `log`.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        log: PathBuf,
    ) -> Result<Self, ControlPlaneError> {
        let spawn_err = |source| ControlPlaneError::Spawn { what: name, source };
        let out = std::fs::File::create(&log).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_err)?;
        Ok(Process {
            name,
            child: Some(child),
            log,
        })
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, up to 10 s to exit, then SIGKILL; always reaped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: signalling our own child, which we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` every 100 ms until it holds, the process dies, or `secs` pass.
pub fn wait_until(
    process: &mut Process,
    secs: u64,
    mut ready: impl FnMut() -> bool,
) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if !process.is_running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(ControlPlaneError::NotReady {
        what: process.name,
        secs,
        log: process.log_tail(),
    })
}

/// `GET path` over plain HTTP/1.0 on loopback; the status code and body, if anything answered.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// etcd and kube-apiserver, stopped (API server first) and their files removed on drop.
pub struct ControlPlane {
    // Field order is drop order: the API server goes before etcd.
    apiserver: Process,
    etcd: Process,
    dir: PathBuf,
    pub url: String,
    /// The API server's self-signed serving certificate (PEM).
    pub ca_pem: String,
    token: String,
}

impl ControlPlane {
    pub fn start(assets: &Path) -> Result<Self, ControlPlaneError> {
        let dir = temp_dir("envtest").map_err(ControlPlaneError::Files)?;
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());

        let sa_key = rcgen::KeyPair::generate().map_err(ControlPlaneError::Key)?;
        let token = random_hex(16).map_err(ControlPlaneError::Files)?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(ControlPlaneError::Files)
        };
        write("sa.key", &sa_key.serialize_pem())?;
        write("sa.pub", &sa_key.public_key_pem())?;
        write(
            "tokens.csv",
            &format!("{token},admin,admin-uid,system:masters\n"),
        )?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Command::new(assets.join("etcd"));
        etcd.arg("--name=envtest")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=envtest={peer_url}"))
            .arg("--unsafe-no-fsync=true");
        let mut etcd = Process::spawn("etcd", etcd, dir.join("etcd.log"))?;
        wait_until(&mut etcd, 60, || {
            http_get(etcd_port, "/health").is_some_and(|(s, b)| s == 200 && b.contains("true"))
        })?;

        let mut api = Command::new(assets.join("kube-apiserver"));
        api.arg(format!("--etcd-servers={etcd_url}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={api_port}"))
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg(format!(
                "--service-account-issuer=https://127.0.0.1:{api_port}"
            ))
            .arg(format!(
                "--service-account-key-file={}",
                dir.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                dir.join("sa.key").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--token-auth-file={}",
                dir.join("tokens.csv").display()
            ))
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--endpoint-reconciler-type=none")
            .arg("--allow-privileged=true");
        let apiserver = Process::spawn("kube-apiserver", api, dir.join("apiserver.log"))?;

        let mut plane = ControlPlane {
            apiserver,
            etcd,
            url: format!("https://127.0.0.1:{api_port}"),
            ca_pem: String::new(),
            token,
            dir,
        };
        let cert = plane.dir.join("certs/apiserver.crt");
        wait_until(&mut plane.apiserver, 90, || cert.is_file())?;
        plane.ca_pem = std::fs::read_to_string(&cert).map_err(ControlPlaneError::Files)?;
        Ok(plane)
    }

    /// A client authenticated as a `system:masters` member.
    pub fn client(&self) -> Result<kube::Client, ControlPlaneError> {
        let uri = self.url.parse().expect("a loopback https URL parses");
        let mut config = kube::Config::new(uri);
        config.root_cert = Some(pem_to_der(&self.ca_pem));
        config.auth_info.token = Some(SecretString::from(self.token.clone()));
        config.default_namespace = "default".into();
        kube::Client::try_from(config).map_err(ControlPlaneError::Client)
    }

    /// Waits until `/readyz` answers 200 (post-start hooks done: RBAC roles, priority classes).
    pub async fn wait_ready(&mut self, client: &kube::Client) -> Result<(), ControlPlaneError> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a static request");
            if client
                .request_text(req)
                .await
                .is_ok_and(|t| t.trim() == "ok")
            {
                return Ok(());
            }
            if !self.apiserver.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ControlPlaneError::NotReady {
            what: "kube-apiserver",
            secs: 90,
            log: self.apiserver.log_tail(),
        })
    }

    /// The API server's log so far (for failure messages).
    pub fn apiserver_log(&self) -> String {
        self.apiserver.log_tail()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The DER bodies of the PEM certificates in `pem`.
pub fn pem_to_der(pem: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut ders = Vec::new();
    let mut b64 = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            b64.clear();
        } else if line.starts_with("-----END CERTIFICATE") {
            inside = false;
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&b64) {
                ders.push(der);
            }
        } else if inside {
            b64.push_str(line);
        }
    }
    ders
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
