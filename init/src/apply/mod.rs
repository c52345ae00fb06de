//! Applying the plan: one `iptables-restore` per family (or one `nft -f`), idempotent,
//! rolled back when the second family fails. Plumbing around the pure plan and texts.
//!
//! Re-runs (init containers restart in the same namespace): rules already exactly ours →
//! untouched; different → removed and re-created inside the same per-table restore
//! transaction, so no packet meets a table without capture (spec §5.1 point 4 does this with
//! DROP guardrails and several commands; one transaction needs neither).

pub mod backend;
pub mod command;
pub mod dry_run;
pub mod nfnetlink;

use tracing::{info, warn};

use crate::config::{Backend, CaptureConfig, InterceptionMode, PortSelection};
use crate::plan::{self, Family, Plan, Rule, is_builtin_chain};
use crate::restore::{self, SaveState};
use backend::Binaries;
use command::{Output, Runner};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("could not run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} rejected the {family:?} rules (exit status {status:?})")]
    Rejected {
        program: String,
        backend: Option<Backend>,
        family: Family,
        status: Option<i32>,
        stderr: String,
        input: String,
    },
    #[error("{program} could not read the current rules (exit status {status:?})")]
    Save {
        program: String,
        backend: Option<Backend>,
        status: Option<i32>,
        stderr: String,
    },
    #[error("no usable iptables backend{}", forced.map(|b| format!(" (forced: {b})")).unwrap_or_default())]
    NoBackend {
        tried: Vec<String>,
        forced: Option<Backend>,
    },
    #[error("the IPv6 rules failed; the IPv4 rules were rolled back to what they were")]
    RolledBack {
        #[source]
        source: Box<ApplyError>,
    },
    #[error("the IPv6 rules failed, and rolling back the IPv4 rules failed too: {rollback}")]
    RollbackFailed {
        #[source]
        source: Box<ApplyError>,
        rollback: Box<ApplyError>,
    },
    #[error("`{command}` failed: {stderr}")]
    Route { command: String, stderr: String },
}

impl ApplyError {
    /// The error that explains the failure: the first family's, not the rollback's wrapper.
    pub fn root(&self) -> &ApplyError {
        match self {
            ApplyError::RolledBack { source } | ApplyError::RollbackFailed { source, .. } => {
                source.root()
            }
            other => other,
        }
    }
}

/// What happened to one family (or to the nftables tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fresh namespace: the rules were installed.
    Installed,
    /// The rules in place were already exactly ours; nothing was touched.
    Unchanged,
    /// Different rules of ours were replaced in one transaction.
    Replaced,
    /// `--cleanup-only` removed our rules.
    Cleaned,
    /// `--cleanup-only` found nothing of ours.
    NothingToClean,
}

/// Runs the configured action through `runner` (the system, or the dry-run recorder).
pub fn run(cfg: &CaptureConfig, runner: &dyn Runner) -> Result<Vec<(String, Outcome)>, ApplyError> {
    if cfg.run.skip_rule_apply {
        // istio-cni installed the rules; only validation (if asked) runs.
        return Ok(Vec::new());
    }
    if cfg.run.native_nftables {
        let outcome = nftables(cfg, runner)?;
        return Ok(vec![("nftables".into(), outcome)]);
    }
    let plan = plan::iptables::plan(cfg);
    if let Some(outcome) = fresh_install(cfg, &plan, runner)? {
        return Ok(vec![("V4".into(), outcome)]);
    }
    let (backend, v4_save) = if runner.is_dry_run() {
        (None, None)
    } else {
        let d = backend::detect(runner, cfg.run.backend)?;
        (Some(d.backend), d.v4_save)
    };
    if let Some(b) = backend {
        info!(backend = %b, "iptables backend chosen");
    }
    let outcomes = if cfg.run.cleanup_only {
        cleanup(cfg, &plan, runner, backend, v4_save)?
    } else {
        apply(cfg, &plan, runner, backend, v4_save)?
    };
    // Final state for the log (Istio logs it too); best effort. Each save is a process that
    // loads the whole ruleset, so it runs only when the line would be printed (and in the dry
    // run, whose record is Istio's).
    if runner.is_dry_run() || tracing::enabled!(tracing::Level::DEBUG) {
        for family in plan.families() {
            let bins = Binaries { backend, family };
            if let Ok(out) = runner.run(&bins.save(), &[], None) {
                tracing::debug!(family = ?family, state = %out.stdout, "final rules");
            }
        }
    }
    if !cfg.run.cleanup_only && !runner.is_dry_run() {
        routes(cfg, runner)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|(f, o)| (format!("{f:?}"), o))
        .collect())
}

/// The common first run, in one process: a namespace the kernel shows holding no legacy
/// table and no chain of ours gets the nft backend (Istio's choice there) and exactly the
/// restore a full run would write (spec: fresh namespace → install), without the saves that
/// would only confirm it. Only IPv4-only installs: with IPv6 a failure must roll IPv4 back to a
/// saved state. Any failure here falls back to the full run, which reads the state again.
fn fresh_install(
    cfg: &CaptureConfig,
    plan: &Plan,
    runner: &dyn Runner,
) -> Result<Option<Outcome>, ApplyError> {
    let eligible = !runner.is_dry_run()
        && !cfg.run.cleanup_only
        && !plan.ipv6
        && cfg.run.backend != Some(Backend::Legacy)
        && runner.legacy_tables() == Some(false);
    if !eligible {
        return Ok(None);
    }
    match runner.nft_chain_names(Family::V4) {
        Some(chains) if !chains.iter().any(|c| c.starts_with("ISTIO")) => {}
        _ => return Ok(None),
    }
    let bins = Binaries {
        backend: Some(Backend::Nft),
        family: Family::V4,
    };
    let text = restore::render(&plan.v4);
    info!(backend = %Backend::Nft, "iptables backend chosen");
    info!(family = "IPv4", input = %text, "running iptables-restore");
    match restore(cfg, runner, &bins, &text, true) {
        Ok(()) => {
            if tracing::enabled!(tracing::Level::DEBUG)
                && let Ok(out) = runner.run(&bins.save(), &[], None)
            {
                tracing::debug!(family = ?Family::V4, state = %out.stdout, "final rules");
            }
            routes(cfg, runner)?;
            Ok(Some(Outcome::Installed))
        }
        Err(e) => {
            warn!(error = %e, "the one-step install failed; reading the current rules");
            Ok(None)
        }
    }
}

fn wait_args(cfg: &CaptureConfig, backend: Option<Backend>) -> Vec<String> {
    // Legacy serialises writers on the xtables lock; nft accepts the flag and ignores it.
    match backend {
        Some(_) => vec![format!("--wait={}", cfg.run.xtables_wait)],
        None => Vec::new(),
    }
}

fn save(runner: &dyn Runner, bins: &Binaries) -> Result<Output, ApplyError> {
    let program = bins.save();
    let out = runner
        .run(&program, &[], None)
        .map_err(|source| ApplyError::Spawn {
            program: program.clone(),
            source,
        })?;
    if out.success() {
        Ok(out)
    } else {
        Err(ApplyError::Save {
            program,
            backend: bins.backend,
            status: out.status,
            stderr: out.stderr,
        })
    }
}

fn restore(
    cfg: &CaptureConfig,
    runner: &dyn Runner,
    bins: &Binaries,
    input: &str,
    noflush: bool,
) -> Result<(), ApplyError> {
    let program = bins.restore();
    let mut args = wait_args(cfg, bins.backend);
    if noflush {
        args.insert(0, "--noflush".into());
    }
    let out = runner
        .run(&program, &args, Some(input))
        .map_err(|source| ApplyError::Spawn {
            program: program.clone(),
            source,
        })?;
    if out.success() {
        return Ok(());
    }
    Err(ApplyError::Rejected {
        program,
        backend: bins.backend,
        family: bins.family,
        status: out.status,
        stderr: out.stderr,
        input: input.to_string(),
    })
}

/// Whether `iptables -C` finds each rule.
fn present(
    cfg: &CaptureConfig,
    runner: &dyn Runner,
    bins: &Binaries,
    rules: &[Rule],
) -> Result<Vec<bool>, ApplyError> {
    let program = bins.iptables();
    rules
        .iter()
        .map(|r| {
            let mut args = restore::check_args(r);
            args.extend(wait_args(cfg, bins.backend));
            let out = runner
                .run(&program, &args, None)
                .map_err(|source| ApplyError::Spawn {
                    program: program.clone(),
                    source,
                })?;
            Ok(out.success())
        })
        .collect()
}

/// Rules of ours that live in built-in chains without jumping to our chains.
fn builtin_non_jumps(rules: &[Rule]) -> Vec<Rule> {
    rules
        .iter()
        .filter(|r| is_builtin_chain(&r.chain))
        .filter(|r| !r.jump_target().is_some_and(|t| t.starts_with("ISTIO")))
        .cloned()
        .collect()
}

enum Step {
    Skip,
    Write { text: String, outcome: Outcome },
}

fn decide(
    cfg: &CaptureConfig,
    runner: &dyn Runner,
    bins: &Binaries,
    state: &SaveState,
    rules: &[Rule],
) -> Result<Step, ApplyError> {
    if !state.has_istio() {
        return Ok(Step::Write {
            text: restore::render(rules),
            outcome: Outcome::Installed,
        });
    }
    let planned_jumps = rules
        .iter()
        .filter(|r| is_builtin_chain(&r.chain))
        .filter(|r| r.jump_target().is_some_and(|t| t.starts_with("ISTIO")))
        .count();
    let live_jumps: usize = state.tables.values().map(|t| t.istio_jumps.len()).sum();
    let same = restore::same_shape(state, rules)
        && planned_jumps == live_jumps
        && present(cfg, runner, bins, rules)?.into_iter().all(|p| p);
    if same && !cfg.run.force_apply {
        info!(family = ?bins.family, "rules already in place are exactly ours; leaving them untouched");
        return Ok(Step::Skip);
    }
    let extras = builtin_non_jumps(rules);
    let live: Vec<Rule> = extras
        .iter()
        .zip(present(cfg, runner, bins, &extras)?)
        .filter(|(_, p)| *p)
        .map(|(r, _)| r.clone())
        .collect();
    info!(family = ?bins.family, "replacing different rules of ours in one transaction");
    Ok(Step::Write {
        text: restore::replace(state, &live, rules),
        outcome: Outcome::Replaced,
    })
}

fn apply(
    cfg: &CaptureConfig,
    plan: &Plan,
    runner: &dyn Runner,
    backend: Option<Backend>,
    v4_save: Option<Output>,
) -> Result<Vec<(Family, Outcome)>, ApplyError> {
    let v4 = Binaries {
        backend,
        family: Family::V4,
    };
    let v6 = Binaries {
        backend,
        family: Family::V6,
    };
    // Detection already read the IPv4 state of this backend.
    let before_v4 = match v4_save {
        Some(out) => out,
        None => save(runner, &v4)?,
    };
    // Istio reads the IPv6 state even when IPv6 is off, where nothing uses it: only the dry
    // run (Istio's record) does so too, and then a failure is only a warning.
    let before_v6 = if plan.ipv6 {
        Some(save(runner, &v6)?)
    } else if runner.is_dry_run() {
        save(runner, &v6)
            .inspect_err(
                |e| warn!(error = %e, "no working ip6tables; continuing because IPv6 is off"),
            )
            .ok()
    } else {
        None
    };
    let step4 = decide(
        cfg,
        runner,
        &v4,
        &SaveState::parse(&before_v4.stdout),
        &plan.v4,
    )?;
    let step6 = match (&before_v6, plan.ipv6) {
        (Some(out), true) => Some(decide(
            cfg,
            runner,
            &v6,
            &SaveState::parse(&out.stdout),
            &plan.v6,
        )?),
        _ => None,
    };

    let mut outcomes = Vec::new();
    let mut v4_written: Option<String> = None;
    match step4 {
        Step::Skip => outcomes.push((Family::V4, Outcome::Unchanged)),
        Step::Write { text, outcome } => {
            info!(family = "IPv4", input = %text, "running iptables-restore");
            restore(cfg, runner, &v4, &text, true)?;
            v4_written = Some(text);
            outcomes.push((Family::V4, outcome));
        }
    }
    match step6 {
        None => {}
        Some(Step::Skip) => outcomes.push((Family::V6, Outcome::Unchanged)),
        Some(Step::Write { text, outcome }) => {
            info!(family = "IPv6", input = %text, "running ip6tables-restore");
            if let Err(e) = restore(cfg, runner, &v6, &text, true) {
                let Some(written) = v4_written else {
                    return Err(e);
                };
                let back = restore::rollback(&before_v4.stdout, &written);
                warn!("IPv6 rules failed; rolling back the IPv4 rules");
                return Err(match restore(cfg, runner, &v4, &back, false) {
                    Ok(()) => ApplyError::RolledBack {
                        source: Box::new(e),
                    },
                    Err(r) => ApplyError::RollbackFailed {
                        source: Box::new(e),
                        rollback: Box::new(r),
                    },
                });
            }
            outcomes.push((Family::V6, outcome));
        }
    }
    Ok(outcomes)
}

fn cleanup(
    cfg: &CaptureConfig,
    plan: &Plan,
    runner: &dyn Runner,
    backend: Option<Backend>,
    v4_save: Option<Output>,
) -> Result<Vec<(Family, Outcome)>, ApplyError> {
    let mut outcomes = Vec::new();
    let mut v4_save = v4_save;
    // Both families even when IPv6 is off now: a run with IPv6 on may have installed IPv6 rules.
    for family in [Family::V4, Family::V6] {
        let bins = Binaries { backend, family };
        let saved = match v4_save.take() {
            Some(out) if family == Family::V4 => Ok(out),
            _ => save(runner, &bins),
        };
        let state = match saved {
            Ok(out) => SaveState::parse(&out.stdout),
            Err(e) if family == Family::V6 => {
                warn!(error = %e, "cannot read IPv6 rules; nothing to clean there");
                continue;
            }
            Err(e) => return Err(e),
        };
        // The plan's spelling of our non-jump built-in rules, in both families' variants.
        let rules = if family == Family::V4 {
            &plan.v4
        } else {
            &plan.v6
        };
        let extras = builtin_non_jumps(rules);
        let live: Vec<Rule> = extras
            .iter()
            .zip(present(cfg, runner, &bins, &extras)?)
            .filter(|(_, p)| *p)
            .map(|(r, _)| r.clone())
            .collect();
        if !state.has_istio() && live.is_empty() {
            outcomes.push((family, Outcome::NothingToClean));
            continue;
        }
        let text = restore::replace(&state, &live, &[]);
        info!(family = ?family, input = %text, "removing our rules");
        restore(cfg, runner, &bins, &text, true)?;
        outcomes.push((family, Outcome::Cleaned));
    }
    Ok(outcomes)
}

fn nftables(cfg: &CaptureConfig, runner: &dyn Runner) -> Result<Outcome, ApplyError> {
    let (text, outcome) = if cfg.run.cleanup_only {
        (plan::nftables::render_cleanup(), Outcome::Cleaned)
    } else {
        let p = plan::nftables::plan(cfg);
        (plan::nftables::render(&p), Outcome::Installed)
    };
    let args = ["-f".to_string(), "-".to_string()];
    let out = runner
        .run("nft", &args, Some(&text))
        .map_err(|source| ApplyError::Spawn {
            program: "nft".into(),
            source,
        })?;
    if !out.success() {
        return Err(ApplyError::Rejected {
            program: "nft".into(),
            backend: Some(Backend::Nft),
            family: Family::V4,
            status: out.status,
            stderr: out.stderr,
            input: text,
        });
    }
    if !cfg.run.cleanup_only && !runner.is_dry_run() {
        routes(cfg, runner)?;
    }
    Ok(outcome)
}

/// `::6` on lo for IPv6 passthrough, and TPROXY's policy routing (spec §3 step 2). Written to
/// be re-run: `replace` instead of `add`, and an `ip rule` only when it is not there yet.
fn routes(cfg: &CaptureConfig, runner: &dyn Runner) -> Result<(), ApplyError> {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let ip = |args: Vec<String>| -> Result<Output, ApplyError> {
        let out = runner
            .run("ip", &args, None)
            .map_err(|source| ApplyError::Spawn {
                program: "ip".into(),
                source,
            })?;
        if out.success() {
            Ok(out)
        } else {
            Err(ApplyError::Route {
                command: format!("ip {}", args.join(" ")),
                stderr: out.stderr.trim().to_string(),
            })
        }
    };
    if cfg.ipv6 {
        ip(words("-6 addr replace ::6/128 dev lo"))?;
    }
    if cfg.interception == InterceptionMode::Tproxy && cfg.inbound_ports != PortSelection::None {
        let (mark, table) = (cfg.tproxy_mark, cfg.tproxy_route_table);
        let mut families = vec!["-4"];
        if cfg.ipv6 {
            families.push("-6");
        }
        for f in families {
            let selector = format!("fwmark {mark} lookup {table}");
            let listed = ip(words(&format!("{f} rule list {selector}")))?;
            if listed.stdout.trim().is_empty() {
                ip(words(&format!("{f} rule add {selector}")))?;
            }
            ip(words(&format!(
                "{f} route replace local default dev lo table {table}"
            )))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
