//! Which iptables binaries to use: nft or legacy, picked as Istio picks them (spec §6), but
//! counting rules instead of output lines and never creating a table to probe, so that the
//! choice is stable across re-runs in the same namespace.

use super::ApplyError;
use super::command::Runner;
use crate::config::Backend;
use crate::plan::Family;
use crate::restore::SaveState;

/// The programs of one backend for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub backend: Option<Backend>,
    pub family: Family,
}

impl Binaries {
    fn name(&self, suffix: &str) -> String {
        match self.backend {
            // Dry run: Istio's stub records the plain names.
            None => format!("{}{suffix}", self.family.prefix()),
            Some(b) => format!("{}-{b}{suffix}", self.family.prefix()),
        }
    }

    pub fn save(&self) -> String {
        self.name("-save")
    }

    pub fn restore(&self) -> String {
        self.name("-restore")
    }

    pub fn iptables(&self) -> String {
        self.name("")
    }
}

/// Picks the backend: forced, else legacy if it already holds rules (the node's tools use it),
/// else nft if its tools work, else legacy if its tools work.
pub fn detect(runner: &dyn Runner, forced: Option<Backend>) -> Result<Backend, ApplyError> {
    let probe = |b: Backend| {
        let program = Binaries {
            backend: Some(b),
            family: Family::V4,
        }
        .save();
        match runner.run(&program, &[], None) {
            Ok(out) if out.success() => Ok(SaveState::parse(&out.stdout).rule_count()),
            Ok(out) => Err(format!("{program}: {}", out.stderr.trim())),
            Err(e) => Err(format!("{program}: {e}")),
        }
    };
    if let Some(b) = forced {
        return probe(b).map(|_| b).map_err(|why| ApplyError::NoBackend {
            tried: vec![why],
            forced: Some(b),
        });
    }
    let legacy = probe(Backend::Legacy);
    if matches!(legacy, Ok(n) if n > 0) {
        return Ok(Backend::Legacy);
    }
    let nft = probe(Backend::Nft);
    match (nft, legacy) {
        (Ok(_), _) => Ok(Backend::Nft),
        (Err(_), Ok(_)) => Ok(Backend::Legacy),
        (Err(n), Err(l)) => Err(ApplyError::NoBackend {
            tried: vec![n, l],
            forced: None,
        }),
    }
}
