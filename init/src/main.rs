//! `mesh-init`: the `istio-init` container. Parse, resolve, plan, apply or print; on failure
//! print what/why/fix and exit with a code that tells the failure classes apart.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use mesh_init::apply::{self, command::System};
use mesh_init::cli::Cli;
use mesh_init::config::{CaptureConfig, ConfigError, LogConfig, ProcessEnv};
use mesh_init::diagnose::{self, exit};
use mesh_init::host::RealHost;
use mesh_init::validate;
use tracing::info;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let c = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return code(c);
        }
    };
    let log = match LogConfig::from_cli(&cli) {
        Ok(log) => log,
        Err(e) => return config_failure(&e),
    };
    init_logging(&log);
    let cfg = match CaptureConfig::resolve(&cli, &ProcessEnv, &RealHost) {
        Ok(cfg) => cfg,
        Err(e) => return config_failure(&e),
    };
    info!(
        proxy_port = cfg.proxy_port,
        inbound_capture_port = cfg.inbound_capture_port,
        proxy_uids = ?cfg.proxy_uids,
        proxy_gids = ?cfg.proxy_gids,
        interception = ?cfg.interception,
        inbound_ports = ?cfg.inbound_ports,
        outbound_cidrs = ?cfg.outbound_cidrs,
        dns_capture = cfg.dns_capture(),
        ipv6 = cfg.ipv6,
        "effective configuration"
    );
    match run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Apply(e)) => {
            let d = diagnose::diagnose(&e);
            eprintln!("{}", d.lines());
            code(d.exit_code)
        }
        Err(Failure::Validation(e)) => {
            eprintln!("error: validation failed\ncause: {e}");
            code(exit::VALIDATION)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            code(exit::OTHER)
        }
    }
}

enum Failure {
    Apply(apply::ApplyError),
    Validation(validate::ValidationError),
    Other(anyhow::Error),
}

fn run(cfg: &CaptureConfig) -> Result<(), Failure> {
    if cfg.run.dry_run {
        let record = apply::dry_run::record(cfg).map_err(Failure::Apply)?;
        print!("{record}");
        if let Some(path) = &cfg.run.dry_run_file {
            std::fs::write(path, &record)
                .with_context(|| format!("writing the dry-run record to {path}"))
                .map_err(Failure::Other)?;
        }
        return Ok(());
    }
    if !cfg.run.skip_rule_apply {
        let system = System {
            bin_dir: cfg.run.bin_dir.clone(),
        };
        let outcomes = apply::run(cfg, &system).map_err(Failure::Apply)?;
        for (family, outcome) in outcomes {
            info!(family, ?outcome, "done");
        }
    }
    if cfg.run.run_validation {
        let landed = validate::validate(
            cfg.ipv6,
            [cfg.proxy_port, cfg.inbound_capture_port],
            cfg.run.probe_port,
            cfg.run.probe_timeout,
        )
        .map_err(Failure::Validation)?;
        info!(listener = %landed.listener, original_dst = %landed.original_dst, "validation passed");
    }
    Ok(())
}

fn config_failure(e: &ConfigError) -> ExitCode {
    let (fix, c) = match e {
        ConfigError::HostAddresses(_) => (
            "run mesh-init in the pod's network namespace once it has an address, or pass --host-ipv6",
            exit::OTHER,
        ),
        ConfigError::ResolvConf { .. } => (
            "mount a resolver file, point --resolv-conf at it, or use --capture-all-dns",
            exit::OTHER,
        ),
        _ => (
            "correct the value; `mesh-init --help` lists every flag",
            exit::USAGE,
        ),
    };
    eprintln!("error: invalid configuration\ncause: {e}\nfix:   {fix}");
    code(c)
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(1))
}

fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::new(&log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}
