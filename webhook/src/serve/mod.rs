//! `sidecar-injector serve`: the HTTPS admission webhook and its plain-HTTP side port.
//!
//! ```text
//! start ─► load config + cert (refuse to start without both)
//!       ─► https  (routes: /inject → engine)   per-handshake certificate from tls::LiveCert
//!       ─► side port (admin: /healthz /readyz /metrics)
//!       ─► keep_fresh: poll the files, swap in a good new config/cert, keep the old on error
//!       ─► nodes (auto, no --kubelet-version): list Nodes, swap in the native sidecar decision
//! SIGTERM ─► readyz 503, stop accepting, finish in-flight reviews (bounded), exit
//! ```

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use injector_engine::{ConfigError, ConfigSources, Environment, Injector};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config_args::ConfigArgs;
use metrics::{Metrics, Reload};
use reload::Watched;
pub use tls::CertFiles;

mod admin;
pub mod deadline;
pub mod metrics;
pub mod nodes;
mod reload;
mod routes;
mod shutdown;
mod tls;
mod x509;

pub use routes::MAX_BODY_BYTES;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port of the HTTPS webhook (the Service's targetPort).
    #[arg(long, env = "INJECTOR_PORT", default_value_t = 9443)]
    pub port: u16,
    /// Address both ports listen on.
    #[arg(long, env = "INJECTOR_ADDRESS", default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// Plain-HTTP port for /healthz, /readyz and /metrics (Istio's monitoring port).
    #[arg(
        long,
        env = "INJECTOR_MONITORING_PORT",
        default_value_t = 15014,
        visible_alias = "health-port"
    )]
    pub monitoring_port: u16,
    /// Directory holding `tls.crt` and `tls.key`, as a mounted `kubernetes.io/tls` Secret.
    #[arg(
        long,
        env = "INJECTOR_TLS_DIR",
        value_name = "DIR",
        required_unless_present = "tls_cert",
        conflicts_with_all = ["tls_cert", "tls_key"]
    )]
    pub tls_dir: Option<PathBuf>,
    /// PEM certificate chain shown to the API server, leaf first (instead of --tls-dir).
    #[arg(
        long,
        env = "INJECTOR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "INJECTOR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// How often the configuration and certificate files are re-read; a changed file is
    /// loaded, and a bad one is logged while the last good one keeps serving.
    #[arg(long, env = "INJECTOR_RELOAD_INTERVAL", default_value = "2s", value_name = "DURATION",
          value_parser = duration)]
    pub reload_interval: Duration,
    /// After SIGTERM or SIGINT: how long in-flight reviews may take to finish before the
    /// process exits anyway. Keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "INJECTOR_SHUTDOWN_TIMEOUT", default_value = "20s", value_name = "DURATION",
          value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// After SIGTERM or SIGINT: how long to keep serving while /readyz already says 503, so
    /// the Service's endpoints drop this pod before it stops accepting connections (`0s`
    /// stops accepting at once).
    #[arg(long, env = "INJECTOR_SHUTDOWN_DELAY", default_value = "0s", value_name = "DURATION",
          value_parser = duration_or_zero)]
    pub shutdown_delay: Duration,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Benchmarks only: answer every review `allowed: true` without running the engine, so
    /// bench/run.sh measures the ceiling of this same TLS and HTTP stack.
    #[arg(long, hide = true)]
    pub bench_null: bool,
    #[command(flatten)]
    pub nodes: nodes::NodeArgs,
}

fn duration(text: &str) -> Result<Duration, String> {
    deadline::parse_go_duration(text)
        .ok_or_else(|| format!("{text:?} is not a positive duration such as 500ms, 2s or 1m"))
}

fn duration_or_zero(text: &str) -> Result<Duration, String> {
    match text {
        "0" | "0s" => Ok(Duration::ZERO),
        _ => duration(text),
    }
}

/// Everything `start` needs, resolved from the flags (tests build it directly).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub monitoring: SocketAddr,
    pub tls: CertFiles,
    pub config: ConfigFiles,
    pub environment: Environment,
    pub reload_interval: Duration,
    pub shutdown_timeout: Duration,
    pub shutdown_delay: Duration,
}

/// The configuration files; `None` means the built-in default for that part.
#[derive(Debug, Clone, Default)]
pub struct ConfigFiles {
    pub injector_config: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub mesh: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the configuration")]
    ReadConfig(#[source] std::io::Error),
    #[error("the configuration is not valid")]
    Config(#[source] ConfigError),
    #[error("a configuration file is not UTF-8")]
    ConfigEncoding(#[source] std::string::FromUtf8Error),
    #[error("cannot read the serving certificate")]
    ReadCert(#[source] std::io::Error),
    #[error("the serving certificate is not usable")]
    Cert(#[source] tls::TlsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// State the routes, the side port and the reloader share.
#[derive(Debug)]
pub struct Shared {
    injector: RwLock<Arc<Injector>>,
    environment: RwLock<Arc<Environment>>,
    metrics: Metrics,
    nodes: nodes::Status,
    draining: AtomicBool,
    /// `--bench-null`: skip the engine (see `routes::null_answer`).
    null_webhook: AtomicBool,
}

impl Shared {
    fn injector(&self) -> Arc<Injector> {
        // Poisoning needs a panic while assigning an Arc; the value is whole either way.
        self.injector
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace_injector(&self, injector: Injector) {
        *self
            .injector
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(injector);
    }

    fn environment(&self) -> Arc<Environment> {
        self.environment
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace_environment(&self, environment: Environment) {
        *self
            .environment
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(environment);
    }
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTPS webhook listens (the real port when 0 was asked).
    pub https_addr: SocketAddr,
    /// Where the side port listens.
    pub monitoring_addr: SocketAddr,
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    shutdown_timeout: Duration,
    shutdown_delay: Duration,
    https: Serving,
    admin: Serving,
    stop_admin: tokio::sync::oneshot::Sender<()>,
    reloader: JoinHandle<()>,
    nodes: Option<JoinHandle<()>>,
}

impl Options {
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Options> {
        let ServeArgs {
            port,
            address,
            monitoring_port,
            tls_dir,
            tls_cert,
            tls_key,
            reload_interval,
            shutdown_timeout,
            shutdown_delay,
            config,
            bench_null: _,
            nodes: _,
        } = args;
        let tls = match (tls_dir, tls_cert, tls_key) {
            (Some(dir), None, None) => CertFiles {
                cert: dir.join("tls.crt"),
                key: dir.join("tls.key"),
            },
            (None, Some(cert), Some(key)) => CertFiles { cert, key },
            _ => anyhow::bail!("give either --tls-dir, or both --tls-cert and --tls-key"),
        };
        let environment = config.environment()?;
        let ConfigArgs {
            injector_config,
            values,
            mesh_config,
            ..
        } = config;
        Ok(Options {
            listen: SocketAddr::new(address, port),
            monitoring: SocketAddr::new(address, monitoring_port),
            tls,
            config: ConfigFiles {
                injector_config,
                values,
                mesh: mesh_config,
            },
            environment,
            reload_interval,
            shutdown_timeout,
            shutdown_delay,
        })
    }
}

/// Async workers, which only do TLS and HTTP: that is about a tenth of a review's CPU, so
/// one worker keeps up with the engine on eight cores. A worker per core (tokio's default)
/// made the idle one wake to steal each new stream: on two cores, twice the context switches
/// and 31 instead of 17 us of kernel time per review.
fn io_workers(cores: usize) -> usize {
    cores.div_ceil(8)
}

/// Names the runtime's threads for `top -H` and /proc/PID/task/*/comm: the async workers
/// (TLS and HTTP) are `injector-io`, the blocking pool that runs the reviews `injector-pool`.
/// tokio starts its workers on pool threads while the runtime is built, before anything
/// else can ask for one, so the first `io` threads named are the workers.
fn thread_namer(io: usize) -> impl Fn() -> String + Send + Sync + 'static {
    let started = std::sync::atomic::AtomicUsize::new(0);
    move || {
        if started.fetch_add(1, Relaxed) < io {
            "injector-io".into()
        } else {
            "injector-pool".into()
        }
    }
}

/// The `serve` subcommand: start, wait for SIGTERM/SIGINT, drain, exit.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let bench_null = args.bench_null;
    let node_watch = nodes::NodeWatch::wanted(&args.nodes, &args.config);
    let options = Options::from_args(args)?;
    // Reviews are CPU-bound engine calls on the blocking pool: more threads than cores only
    // queue work in the kernel instead of in tokio, and each extra thread grows the allocator's
    // per-thread arenas (RSS creeping under sustained load). The deadline still bounds waiting.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let io = io_workers(cores);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(io)
        .thread_name_fn(thread_namer(io))
        .max_blocking_threads(cores.max(2) * 2)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut signals = shutdown::Signals::listen().context("cannot listen for signals")?;
        let mut running = start(options).await?;
        if bench_null {
            warn!("--bench-null: answering every review allowed without injecting");
            running.shared.null_webhook.store(true, Relaxed);
        }
        if let Some(watch) = node_watch {
            running.watch_nodes(watch);
        }
        let signal = signals.recv().await;
        info!(signal, "shutting down: draining in-flight reviews");
        running
            .shutdown()
            .await
            .context("the HTTPS server failed")?;
        info!("shut down");
        Ok(())
    })
}

/// Loads configuration and certificate, binds both ports and starts serving.
pub async fn start(options: Options) -> Result<Running, StartError> {
    let Options {
        listen,
        monitoring,
        tls,
        config,
        environment,
        reload_interval,
        shutdown_timeout,
        shutdown_delay,
    } = options;
    let metrics = Metrics::default();

    let mut config_watch = Watched::new(config.paths());
    let contents = config_watch.read_now().map_err(StartError::ReadConfig)?;
    let injector = load_injector(&config, contents).await?;
    metrics.config_reload(Reload::Succeeded, unix_now());

    let mut cert_watch = Watched::new(vec![tls.cert.clone(), tls.key.clone()]);
    let pair = cert_watch.read_now().map_err(StartError::ReadCert)?;
    let loaded = tls.parse(&pair[0], &pair[1]).map_err(StartError::Cert)?;
    metrics.cert_reload(Reload::Succeeded, Some(loaded.not_after));
    loaded.warn_if_expired(unix_now());
    let live = Arc::new(tls::LiveCert::new(loaded.key));

    let shared = Arc::new(Shared {
        injector: RwLock::new(Arc::new(injector)),
        environment: RwLock::new(Arc::new(environment)),
        metrics,
        nodes: nodes::Status::default(),
        draining: AtomicBool::new(false),
        null_webhook: AtomicBool::new(false),
    });
    let handle = axum_server::Handle::new();
    let (https_addr, https) = serve_https(listen, &live, &shared, handle.clone())?;
    let (monitoring_addr, admin, stop_admin) = serve_side_port(monitoring, &shared).await?;
    let reloader = tokio::spawn(
        reload::Reloader {
            shared: Arc::clone(&shared),
            config,
            config_watch,
            tls,
            cert_watch,
            live,
        }
        .run(reload_interval),
    );
    info!(%https_addr, %monitoring_addr, "serving admission reviews");
    Ok(Running {
        https_addr,
        monitoring_addr,
        shared,
        handle,
        shutdown_timeout,
        shutdown_delay,
        https,
        admin,
        stop_admin,
        reloader,
        nodes: None,
    })
}

type Serving = JoinHandle<std::io::Result<()>>;

fn bind_error(addr: SocketAddr) -> impl Fn(std::io::Error) -> StartError {
    move |source| StartError::Bind { addr, source }
}

/// The webhook: TLS with the certificate from `live` at each handshake, then the routes.
fn serve_https(
    listen: SocketAddr,
    live: &Arc<tls::LiveCert>,
    shared: &Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
) -> Result<(SocketAddr, Serving), StartError> {
    let server_config = tls::server_config(Arc::clone(live)).map_err(StartError::Cert)?;
    // Bound here rather than by axum-server so the real port is known when 0 was asked.
    let listener = std::net::TcpListener::bind(listen).map_err(bind_error(listen))?;
    let addr = listener.local_addr().map_err(bind_error(listen))?;
    let mut server =
        axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(server_config)))
            .map_err(bind_error(listen))?
            .handle(handle)
            // Without TCP_NODELAY, HTTP/2's separate HEADERS and DATA writes meet Nagle and
            // the client's delayed ACK: answers stalled 40 ms (p99 of one HTTP/2 connection).
            .map(|tls| tls.acceptor(NoDelayAcceptor::new()));
    // Istio's webhook server reads headers within 30 s; a client that never sends them does
    // not hold a connection forever.
    server
        .http_builder()
        .http1()
        .header_read_timeout(Duration::from_secs(30));
    let router = routes::router(Arc::clone(shared));
    Ok((addr, tokio::spawn(server.serve(router.into_make_service()))))
}

/// The plain-HTTP side port, until the returned sender fires.
async fn serve_side_port(
    monitoring: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<(SocketAddr, Serving, tokio::sync::oneshot::Sender<()>), StartError> {
    let listener = tokio::net::TcpListener::bind(monitoring)
        .await
        .map_err(bind_error(monitoring))?;
    let addr = listener.local_addr().map_err(bind_error(monitoring))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        axum::serve(listener, admin::router(Arc::clone(shared)))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    Ok((addr, serving, stop))
}

impl Running {
    /// Starts learning the native sidecar decision from the cluster's Nodes, in the background.
    pub fn watch_nodes(&mut self, watch: nodes::NodeWatch) {
        if let Some(previous) = self
            .nodes
            .replace(tokio::spawn(watch.run(Arc::clone(&self.shared))))
        {
            previous.abort();
        }
    }

    /// Becomes unready, waits the shutdown delay, stops accepting connections, lets in-flight reviews finish (at most
    /// the shutdown timeout), then stops the side port.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shared.draining.store(true, Relaxed);
        if !self.shutdown_delay.is_zero() {
            info!(delay = ?self.shutdown_delay, "unready; still serving until the delay passes");
            tokio::time::sleep(self.shutdown_delay).await;
        }
        self.handle.graceful_shutdown(Some(self.shutdown_timeout));
        let served = self.https.await.unwrap_or_else(|join| Err(join.into()));
        self.reloader.abort();
        if let Some(nodes) = &self.nodes {
            nodes.abort();
        }
        let _ = self.stop_admin.send(());
        let _ = self.admin.await;
        served
    }
}

impl ConfigFiles {
    fn paths(&self) -> Vec<PathBuf> {
        [&self.injector_config, &self.values, &self.mesh]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Pairs file contents (in `paths` order) back with the part they configure.
    fn sources(&self, contents: Vec<Vec<u8>>) -> Result<ConfigSources, StartError> {
        let mut contents = contents.into_iter();
        let mut next = |path: &Option<PathBuf>| -> Result<Option<String>, StartError> {
            // Only a configured part has contents: an unset one must not take the next file's.
            if path.is_none() {
                return Ok(None);
            }
            match contents.next() {
                Some(bytes) => String::from_utf8(bytes)
                    .map(Some)
                    .map_err(StartError::ConfigEncoding),
                None => Ok(None),
            }
        };
        Ok(ConfigSources {
            injector_config: next(&self.injector_config)?,
            values: next(&self.values)?,
            mesh: next(&self.mesh)?,
        })
    }
}

/// Parses configuration file contents into an injector, off the async threads.
async fn load_injector(
    files: &ConfigFiles,
    contents: Vec<Vec<u8>>,
) -> Result<Injector, StartError> {
    let sources = files.sources(contents)?;
    // Parsing templates takes a moment; keep it off the threads serving reviews.
    tokio::task::spawn_blocking(move || Injector::load(&sources))
        .await
        .map_err(|join| StartError::ReadConfig(join.into()))?
        .map_err(StartError::Config)
}

/// An error and its causes on one line, outermost first.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
