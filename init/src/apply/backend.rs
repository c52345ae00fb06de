//! Which iptables binaries to use: nft or legacy, picked as Istio picks them (spec §6), but
//! counting rules instead of output lines and never creating a table to probe, so that the
//! choice is stable across re-runs in the same namespace.

use super::ApplyError;
use super::command::{Output, Runner};
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

/// The chosen backend, with the IPv4 save it already read of that backend (when it ran one):
/// the current state, so that apply does not run the same save again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub backend: Backend,
    pub v4_save: Option<Output>,
}

/// Picks the backend: forced, else legacy if it already holds rules (the node's tools use it),
/// else nft if its tools work, else legacy if its tools work.
///
/// Whether legacy holds rules is first asked of the kernel (`Runner::legacy_tables`): a
/// namespace without legacy tables has no legacy rules, and the legacy save is not run.
pub fn detect(runner: &dyn Runner, forced: Option<Backend>) -> Result<Detected, ApplyError> {
    let probe = |b: Backend| {
        let program = Binaries {
            backend: Some(b),
            family: Family::V4,
        }
        .save();
        match runner.run(&program, &[], None) {
            Ok(out) if out.success() => Ok(out),
            Ok(out) => Err(format!("{program}: {}", out.stderr.trim())),
            Err(e) => Err(format!("{program}: {e}")),
        }
    };
    let found = |backend: Backend, out: Output| Detected {
        backend,
        v4_save: Some(out),
    };
    if let Some(b) = forced {
        return probe(b)
            .map(|out| found(b, out))
            .map_err(|why| ApplyError::NoBackend {
                tried: vec![why],
                forced: Some(b),
            });
    }
    // `Some(false)`: the kernel has no legacy table here, so the legacy save would print nothing.
    let legacy = match runner.legacy_tables() {
        Some(false) => None,
        _ => Some(probe(Backend::Legacy)),
    };
    if let Some(Ok(out)) = &legacy
        && SaveState::parse(&out.stdout).rule_count() > 0
    {
        return Ok(found(Backend::Legacy, out.clone()));
    }
    let nft = match probe(Backend::Nft) {
        Ok(out) => return Ok(found(Backend::Nft, out)),
        Err(why) => why,
    };
    // nft does not work: legacy, if its tools work (probed now if the kernel check skipped it).
    match legacy.unwrap_or_else(|| probe(Backend::Legacy)) {
        Ok(out) => Ok(found(Backend::Legacy, out)),
        Err(l) => Err(ApplyError::NoBackend {
            tried: vec![nft, l],
            forced: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers saves from a table of (program, exit status, stdout) and records what ran.
    struct Fake {
        legacy_tables: Option<bool>,
        answers: Vec<(&'static str, i32, &'static str)>,
        ran: Mutex<Vec<String>>,
    }

    impl Fake {
        fn new(legacy_tables: Option<bool>, answers: &[(&'static str, i32, &'static str)]) -> Fake {
            Fake {
                legacy_tables,
                answers: answers.to_vec(),
                ran: Mutex::new(Vec::new()),
            }
        }

        fn ran(&self) -> Vec<String> {
            self.ran.lock().map(|r| r.clone()).unwrap_or_default()
        }
    }

    impl Runner for Fake {
        fn run(&self, program: &str, _: &[String], _: Option<&str>) -> std::io::Result<Output> {
            if let Ok(mut ran) = self.ran.lock() {
                ran.push(program.to_string());
            }
            match self.answers.iter().find(|(p, _, _)| *p == program) {
                Some((_, status, stdout)) => Ok(Output {
                    status: Some(*status),
                    stdout: stdout.to_string(),
                    stderr: if *status == 0 { "" } else { "broken" }.into(),
                }),
                None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            }
        }

        fn legacy_tables(&self) -> Option<bool> {
            self.legacy_tables
        }
    }

    const WITH_RULE: &str =
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp --dport 9 -j ACCEPT\nCOMMIT\n";
    const EMPTY_TABLE: &str = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
    const NFT_STATE: &str = "*nat\n:OUTPUT ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\nCOMMIT\n";

    #[test]
    fn no_legacy_tables_skips_the_legacy_save_and_hands_back_the_nft_state() {
        let fake = Fake::new(
            Some(false),
            &[
                ("iptables-legacy-save", 0, WITH_RULE),
                ("iptables-nft-save", 0, NFT_STATE),
            ],
        );
        let d = detect(&fake, None).expect("detected");
        assert_eq!(d.backend, Backend::Nft);
        assert_eq!(d.v4_save.map(|o| o.stdout).as_deref(), Some(NFT_STATE));
        assert_eq!(fake.ran(), ["iptables-nft-save"]);
    }

    #[test]
    fn legacy_tables_holding_rules_keep_legacy_without_asking_nft() {
        for known in [Some(true), None] {
            let fake = Fake::new(
                known,
                &[
                    ("iptables-legacy-save", 0, WITH_RULE),
                    ("iptables-nft-save", 0, ""),
                ],
            );
            let d = detect(&fake, None).expect("detected");
            assert_eq!(d.backend, Backend::Legacy);
            assert_eq!(d.v4_save.map(|o| o.stdout).as_deref(), Some(WITH_RULE));
            assert_eq!(fake.ran(), ["iptables-legacy-save"]);
        }
    }

    #[test]
    fn empty_legacy_tables_choose_nft() {
        let fake = Fake::new(
            Some(true),
            &[
                ("iptables-legacy-save", 0, EMPTY_TABLE),
                ("iptables-nft-save", 0, ""),
            ],
        );
        assert_eq!(detect(&fake, None).expect("detected").backend, Backend::Nft);
        assert_eq!(fake.ran(), ["iptables-legacy-save", "iptables-nft-save"]);
    }

    #[test]
    fn broken_nft_falls_back_to_working_legacy_even_when_the_kernel_check_skipped_it() {
        let fake = Fake::new(
            Some(false),
            &[
                ("iptables-legacy-save", 0, ""),
                ("iptables-nft-save", 1, ""),
            ],
        );
        let d = detect(&fake, None).expect("detected");
        assert_eq!(d.backend, Backend::Legacy);
        assert_eq!(fake.ran(), ["iptables-nft-save", "iptables-legacy-save"]);
    }

    #[test]
    fn neither_backend_working_names_both() {
        let fake = Fake::new(None, &[("iptables-legacy-save", 1, "")]);
        match detect(&fake, None) {
            Err(ApplyError::NoBackend { tried, forced }) => {
                assert_eq!(forced, None);
                assert_eq!(tried.len(), 2);
                assert!(tried[0].starts_with("iptables-nft-save"), "{tried:?}");
                assert!(tried[1].contains("broken"), "{tried:?}");
            }
            other => panic!("expected NoBackend, got {other:?}"),
        }
    }

    #[test]
    fn a_forced_backend_is_probed_alone() {
        let fake = Fake::new(Some(true), &[("iptables-nft-save", 0, NFT_STATE)]);
        let d = detect(&fake, Some(Backend::Nft)).expect("detected");
        assert_eq!(d.backend, Backend::Nft);
        assert!(d.v4_save.is_some());
        assert_eq!(fake.ran(), ["iptables-nft-save"]);
    }
}
