//! `sidecar-injector`: command line, logging, and the exit status. Everything else is in the
//! library (`lib.rs`).

use clap::{Parser, Subcommand, ValueEnum};
use sidecar_injector::{certs, kube_inject, serve};
use tracing_subscriber::EnvFilter;

// Why mimalloc, and why not through the `mimalloc` crate: see `alloc.rs`.
#[global_allocator]
static ALLOCATOR: sidecar_injector::alloc::Mimalloc = sidecar_injector::alloc::Mimalloc;

/// Istio-compatible sidecar injection: a mutating admission webhook, offline injection of
/// manifests, and the webhook's certificates.
#[derive(Debug, Parser)]
#[command(name = "sidecar-injector", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the mutating admission webhook over HTTPS, with health and metrics over plain HTTP.
    Serve(serve::ServeArgs),
    /// Inject the sidecar into the workloads of a manifest, like `istioctl kube-inject`.
    KubeInject(kube_inject::KubeInjectArgs),
    /// Create the webhook's CA and serving certificate, its Secret, and patch the caBundle.
    Certs(certs::CertsArgs),
}

#[derive(Debug, clap::Args)]
struct LogArgs {
    /// Log filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or `tracing` directives
    /// such as `info,sidecar_injector=debug`. `debug` logs pod contents (env values may be
    /// secrets).
    #[arg(
        long,
        global = true,
        env = "LOG_LEVEL",
        default_value = "info",
        display_order = 900
    )]
    log_level: String,
    /// Log line format on stderr.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, display_order = 901)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields kept as fields.
    Json,
}

fn main() -> std::process::ExitCode {
    // One crypto provider for the whole process, before anything builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Err(err) = init_logging(&cli.log) {
        eprintln!("error: {err:#}");
        return std::process::ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::KubeInject(args) => kube_inject::run(args),
        Command::Certs(args) => certs::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(args: &LogArgs) -> anyhow::Result<()> {
    let LogArgs {
        log_level,
        log_format,
    } = args;
    let filter = EnvFilter::try_new(log_level)
        .map_err(|err| anyhow::anyhow!("--log-level {log_level:?}: {err}"))?;
    // Colours only for a person at a terminal; a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
