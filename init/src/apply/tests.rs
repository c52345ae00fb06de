//! Which programs one run starts, with a fake system: every process loads the whole ruleset,
//! so the count is what bounds mesh-init above a bare `iptables-restore`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::command::{Output, Runner};
use super::{ApplyError, Outcome};
use crate::cli::Cli;
use crate::config::{CaptureConfig, HostFacts};

struct Host;

impl HostFacts for Host {
    fn ipv6(&self, _: bool) -> Result<bool, String> {
        Ok(false)
    }
    fn read_resolv_conf(&self, _: &str) -> Result<String, String> {
        Ok("nameserver 10.96.0.10\n".into())
    }
    fn lookup_uid(&self, _: &str) -> Option<u32> {
        None
    }
}

fn config(extra: &[&str]) -> CaptureConfig {
    let args = std::iter::once("mesh-init")
        .chain(crate::testing::INJECTOR_ARGS.iter().copied())
        .chain(extra.iter().copied());
    let cli = Cli::try_parse_args(args).expect("args parse");
    CaptureConfig::resolve(&cli, &HashMap::new(), &Host).expect("valid")
}

/// A namespace without legacy tables whose nft saves print `saves[program]` (empty when
/// absent); restores and `ip` succeed; `iptables -C` finds nothing. Records what ran and restore inputs.
#[derive(Default)]
struct Namespace {
    saves: HashMap<&'static str, &'static str>,
    /// What the kernel answers for the nf_tables chain names (`None`: cannot tell).
    nft_chains: Option<Vec<&'static str>>,
    /// Restore programs that fail.
    failing: Vec<&'static str>,
    ran: Mutex<Vec<String>>,
    restored: Mutex<Vec<(String, String)>>,
}

impl Namespace {
    fn ran(&self) -> Vec<String> {
        self.ran.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Runner for Namespace {
    fn run(&self, program: &str, _: &[String], stdin: Option<&str>) -> std::io::Result<Output> {
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(program.to_string());
        }
        let check = program.contains("tables") && !program.ends_with("-save");
        let failing = self.failing.contains(&program);
        let status = if (check && stdin.is_none()) || failing {
            1
        } else {
            0
        };
        if let (Some(text), Ok(mut restored)) = (stdin, self.restored.lock()) {
            restored.push((program.to_string(), text.to_string()));
        }
        Ok(Output {
            status: Some(status),
            stdout: self.saves.get(program).copied().unwrap_or_default().into(),
            stderr: String::new(),
        })
    }

    fn legacy_tables(&self) -> Option<bool> {
        Some(false)
    }

    fn nft_chain_names(&self, _: crate::plan::Family) -> Option<Vec<String>> {
        let names = self.nft_chains.as_ref()?;
        Some(names.iter().map(|n| n.to_string()).collect())
    }
}

/// `apply::run` under a subscriber at `level`: whether debug lines would print decides the
/// final save, and each test sets it (tracing caches interest per call site across threads;
/// the lock keeps the tests of this module from interleaving their subscribers).
fn run(
    cfg: &CaptureConfig,
    ns: &Namespace,
    level: tracing::Level,
) -> Result<Vec<(String, Outcome)>, ApplyError> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || super::run(cfg, ns))
}

const INFO: tracing::Level = tracing::Level::INFO;

const OURS_V6: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
:ISTIO_OUTPUT - [0:0]\n-A OUTPUT -j ISTIO_OUTPUT\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n";

#[test]
fn when_the_kernel_cannot_list_chains_a_default_install_runs_one_save_and_one_restore() {
    let ns = Namespace::default();
    let outcomes = run(&config(&["--host-ipv6=false"]), &ns, INFO).expect("applied");
    assert_eq!(outcomes, [("V4".to_string(), Outcome::Installed)]);
    // Detection's save is the current state; no legacy, IPv6 or final-state saves.
    assert_eq!(ns.ran(), ["iptables-nft-save", "iptables-nft-restore"]);
}

#[test]
fn dual_stack_reads_and_writes_both_families() {
    let ns = Namespace::default();
    let outcomes = run(&config(&["--host-ipv6=true"]), &ns, INFO).expect("applied");
    assert_eq!(
        outcomes,
        [
            ("V4".to_string(), Outcome::Installed),
            ("V6".to_string(), Outcome::Installed)
        ]
    );
    let ran = ns.ran();
    assert_eq!(
        ran.iter().filter(|p| p.ends_with("-save")).count(),
        2,
        "{ran:?}"
    );
    assert!(
        ran.contains(&"ip6tables-nft-restore".to_string()),
        "{ran:?}"
    );
}

#[test]
fn cleanup_with_ipv6_off_still_removes_ipv6_rules_installed_earlier() {
    let ns = Namespace {
        saves: HashMap::from([("ip6tables-nft-save", OURS_V6)]),
        ..Namespace::default()
    };
    let outcomes =
        run(&config(&["--host-ipv6=false", "--cleanup-only"]), &ns, INFO).expect("cleaned");
    assert_eq!(
        outcomes,
        [
            ("V4".to_string(), Outcome::NothingToClean),
            ("V6".to_string(), Outcome::Cleaned)
        ]
    );
    let restored = ns.restored.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].0, "ip6tables-nft-restore");
    assert!(
        restored[0].1.contains("-X ISTIO_OUTPUT"),
        "{}",
        restored[0].1
    );
    // The IPv4 state came from detection: one IPv4 save in all.
    let ran = ns.ran();
    assert_eq!(
        ran.iter().filter(|p| *p == "iptables-nft-save").count(),
        1,
        "{ran:?}"
    );
}

#[test]
fn the_final_state_is_read_only_when_debug_logging_would_print_it() {
    let ns = Namespace::default();
    run(&config(&["--host-ipv6=false"]), &ns, tracing::Level::DEBUG).expect("applied");
    assert_eq!(
        ns.ran(),
        [
            "iptables-nft-save",
            "iptables-nft-restore",
            "iptables-nft-save"
        ]
    );
}

const NAT_CHAINS: &[&str] = &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

#[test]
fn a_namespace_the_kernel_shows_empty_of_ours_is_installed_by_one_restore() {
    let ns = Namespace {
        nft_chains: Some(NAT_CHAINS.to_vec()),
        ..Namespace::default()
    };
    let outcomes = run(&config(&["--host-ipv6=false"]), &ns, INFO).expect("applied");
    assert_eq!(outcomes, [("V4".to_string(), Outcome::Installed)]);
    assert_eq!(ns.ran(), ["iptables-nft-restore"]);
    // The same input a full run writes into a fresh namespace.
    let full = Namespace::default();
    run(&config(&["--host-ipv6=false"]), &full, INFO).expect("applied");
    let texts = |n: &Namespace| n.restored.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(texts(&ns), texts(&full));
}

#[test]
fn chains_of_ours_or_ipv6_or_a_forced_legacy_take_the_full_path() {
    let ours = Namespace {
        nft_chains: Some(vec!["OUTPUT", "ISTIO_OUTPUT"]),
        ..Namespace::default()
    };
    run(&config(&["--host-ipv6=false"]), &ours, INFO).expect("applied");
    assert_eq!(ours.ran()[0], "iptables-nft-save");
    let others: [&[&str]; 2] = [
        &["--host-ipv6=true"],
        &["--host-ipv6=false", "--force-iptables-binary=legacy"],
    ];
    for extra in others {
        let ns = Namespace {
            nft_chains: Some(NAT_CHAINS.to_vec()),
            ..Namespace::default()
        };
        run(&config(extra), &ns, INFO).expect("applied");
        assert!(ns.ran()[0].ends_with("-save"), "{extra:?}: {:?}", ns.ran());
    }
}

#[test]
fn a_failed_one_step_install_falls_back_to_reading_the_rules() {
    let ns = Namespace {
        nft_chains: Some(NAT_CHAINS.to_vec()),
        failing: vec!["iptables-nft-restore"],
        ..Namespace::default()
    };
    let e = run(&config(&["--host-ipv6=false"]), &ns, INFO).expect_err("restore fails");
    assert!(matches!(e, ApplyError::Rejected { .. }), "{e:?}");
    assert_eq!(
        ns.ran(),
        [
            "iptables-nft-restore",
            "iptables-nft-save",
            "iptables-nft-restore"
        ]
    );
}
