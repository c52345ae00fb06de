//! `sidecar-injector`: the plumbing around the pure engine in `injector-engine`.

use clap::{Parser, Subcommand};

mod certs;
mod config_args;
mod kube_inject;
mod serve;

/// Istio-compatible sidecar injection: a mutating admission webhook, offline injection of
/// manifests, and the webhook's certificates.
#[derive(Debug, Parser)]
#[command(name = "sidecar-injector", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the mutating admission webhook over HTTPS.
    Serve(serve::ServeArgs),
    /// Inject the sidecar into the workloads of a manifest, like `istioctl kube-inject`.
    KubeInject(kube_inject::KubeInjectArgs),
    /// Create the webhook's CA and serving certificate.
    Certs(certs::CertsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
