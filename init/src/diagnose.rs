//! Turns a failed apply into words an operator can act on: what failed, why, how to fix it,
//! and a distinct exit code. Pure: every pattern is unit-tested with the stderr real
//! iptables/nft builds print (spec/istio-iptables.md §7).

use crate::apply::ApplyError;
use crate::config::Backend;

/// Exit codes. 1 and 126 are Istio's; the others keep "flags are wrong" (2) apart from each
/// way the node can refuse.
pub mod exit {
    pub const OTHER: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const KERNEL_SUPPORT: i32 = 3;
    pub const PERMISSION: i32 = 4;
    pub const LOCK_BUSY: i32 = 5;
    pub const BACKEND: i32 = 6;
    pub const REJECTED: i32 = 7;
    pub const VALIDATION: i32 = 126;
}

/// Modules the capture rules need on a legacy (x_tables) node, as the community list for
/// "unable to initialize table 'nat'" names them (istio/istio#44118, #23009).
pub const LEGACY_MODULES: &str =
    "iptable_nat ip6table_nat nf_nat xt_REDIRECT xt_owner iptable_mangle xt_conntrack";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub what: String,
    pub why: String,
    pub fix: String,
    pub exit_code: i32,
}

impl Diagnosis {
    /// The three lines printed to the operator.
    pub fn lines(&self) -> String {
        format!(
            "error: {}\ncause: {}\nfix:   {}",
            self.what, self.why, self.fix
        )
    }
}

fn backend_name(b: Option<Backend>) -> &'static str {
    match b {
        Some(Backend::Legacy) => "legacy",
        Some(Backend::Nft) => "nft",
        None => "iptables",
    }
}

/// Explains `err`. Always returns a diagnosis; the last arm is the generic one.
pub fn diagnose(err: &ApplyError) -> Diagnosis {
    let what = err.to_string();
    match err.root() {
        ApplyError::Rejected {
            stderr,
            backend,
            program,
            ..
        }
        | ApplyError::Save {
            stderr,
            backend,
            program,
            ..
        } => from_stderr(what, program, stderr, *backend),
        ApplyError::Spawn { program, source } => {
            if source.kind() == std::io::ErrorKind::NotFound && program == "nft" {
                Diagnosis {
                    what,
                    why: "--native-nftables is on, but the nft binary is missing in this image"
                        .into(),
                    fix: "install nftables in the init container image, or drop --native-nftables"
                        .into(),
                    exit_code: exit::BACKEND,
                }
            } else if source.kind() == std::io::ErrorKind::NotFound {
                Diagnosis {
                    what,
                    why: format!("{program} is not installed in this image (or not in --bin-dir)"),
                    fix: "install iptables (both the nft and legacy variants) and nftables in \
                          the init container image, or force the backend that is present with \
                          --force-iptables-binary"
                        .into(),
                    exit_code: exit::BACKEND,
                }
            } else {
                Diagnosis {
                    what,
                    why: source.to_string(),
                    fix: "check that the program is executable by this user".into(),
                    exit_code: exit::OTHER,
                }
            }
        }
        ApplyError::NoBackend { tried, .. } if tried.iter().any(|t| is_permission(t)) => {
            Diagnosis {
                what,
                why: format!(
                    "the iptables tools were denied by the kernel: {}",
                    tried.join("; ")
                ),
                fix: "run the init container as root with capabilities NET_ADMIN and NET_RAW \
                  (securityContext.capabilities.add), or use istio-cni"
                    .into(),
                exit_code: exit::PERMISSION,
            }
        }
        ApplyError::NoBackend { tried, forced } => Diagnosis {
            what,
            why: tried.join("; "),
            fix: match forced {
                Some(b) => format!(
                    "the node does not support the {b} backend: drop --force-iptables-binary \
                     (FORCE_IPTABLES_BINARY) or force the other backend"
                ),
                None => {
                    "install iptables with iptables-nft and iptables-legacy in the image".into()
                }
            },
            exit_code: exit::BACKEND,
        },
        ApplyError::Route { stderr, .. } => Diagnosis {
            what,
            why: stderr.clone(),
            fix: "grant NET_ADMIN; TPROXY also needs policy routing (CONFIG_IP_MULTIPLE_TABLES)"
                .into(),
            exit_code: if is_permission(stderr) {
                exit::PERMISSION
            } else {
                exit::OTHER
            },
        },
        ApplyError::RolledBack { .. } | ApplyError::RollbackFailed { .. } => Diagnosis {
            what,
            why: "unexpected nesting".into(),
            fix: "report this".into(),
            exit_code: exit::OTHER,
        },
    }
}

fn is_permission(stderr: &str) -> bool {
    stderr.contains("Permission denied")
        || stderr.contains("you must be root")
        || stderr.contains("Operation not permitted")
}

fn from_stderr(what: String, program: &str, stderr: &str, backend: Option<Backend>) -> Diagnosis {
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let be = backend_name(backend);
    if stderr.contains("holding the xtables lock") || stderr.contains("xtables lock") {
        return Diagnosis {
            what,
            why: format!("another program held the xtables lock past the wait: {first}"),
            fix: "retry when the other iptables user is done, or raise --xtables-wait \
                  (MESH_INIT_XTABLES_WAIT); under istio-cni, check the node's /run/xtables.lock holder"
                .into(),
            exit_code: exit::LOCK_BUSY,
        };
    }
    if is_permission(stderr) {
        return Diagnosis {
            what,
            why: format!("{program} was denied by the kernel: {first}"),
            fix: "run the init container as root with capabilities NET_ADMIN and NET_RAW \
                  (securityContext.capabilities.add), or use istio-cni"
                .into(),
            exit_code: exit::PERMISSION,
        };
    }
    if stderr.contains("unable to initialize table")
        || stderr.contains("can't initialize iptables table")
        || stderr.contains("Table does not exist")
    {
        let table = quoted_table(stderr).unwrap_or("nat");
        return Diagnosis {
            what,
            why: format!(
                "the {table} table is not available through the {be} backend \
                 (\"unable to initialize table '{table}'\"): its kernel modules are not loaded"
            ),
            fix: format!(
                "load the modules on the node (modprobe {LEGACY_MODULES}; add br_netfilter for \
                 bridged CNIs), or pick the other backend with --force-iptables-binary"
            ),
            exit_code: exit::KERNEL_SUPPORT,
        };
    }
    if stderr.contains("not supported, missing kernel module")
        || stderr.contains("Couldn't load target")
        || stderr.contains("Couldn't load match")
        || stderr.contains("RULE_APPEND failed (No such file or directory)")
        || stderr.contains("No chain/target/match by that name")
    {
        let ext = extension_name(stderr);
        let module = ext
            .map(|e| format!("xt_{e}"))
            .unwrap_or_else(|| "the xt_* module of the failing match/target".into());
        return Diagnosis {
            what,
            why: format!("the kernel lacks an extension the rules use ({module}): {first}"),
            fix: format!(
                "load {module} on the node (the capture rules need {LEGACY_MODULES}); on nft \
                 nodes older iptables-nft builds also need nft_compat"
            ),
            exit_code: exit::KERNEL_SUPPORT,
        };
    }
    if stderr.contains("Could not fetch rule set generation id")
        || stderr.contains("has no loaded kernel support")
        || stderr.contains("Protocol not supported")
    {
        return Diagnosis {
            what,
            why: format!("the {be} backend does not work on this node: {first}"),
            fix: "force the node's backend with --force-iptables-binary legacy|nft \
                  (FORCE_IPTABLES_BINARY)"
                .into(),
            exit_code: exit::BACKEND,
        };
    }
    if stderr.contains("Bad value for \"--gid-owner\"") || stderr.contains("Group does not exist") {
        return Diagnosis {
            what,
            why: format!("a group in ISTIO_OUTBOUND_OWNER_GROUPS(_EXCLUDE) is unknown: {first}"),
            fix: "use numeric GIDs, or groups that exist in the container's /etc/group".into(),
            exit_code: exit::REJECTED,
        };
    }
    Diagnosis {
        what,
        why: if first.is_empty() {
            "no message".into()
        } else {
            first.to_string()
        },
        fix: "run with --dry-run to see the input and check the flags; the debug log \
              (--log_output_level=default:debug) shows the rules in place"
            .into(),
        exit_code: exit::REJECTED,
    }
}

/// `... table 'nat' ...` → `nat`.
fn quoted_table(stderr: &str) -> Option<&str> {
    let start = stderr.find("table '")? + "table '".len();
    let len = stderr[start..].find('\'')?;
    Some(&stderr[start..start + len])
}

/// `Extension REDIRECT revision 0 ...` / `Couldn't load target `TPROXY'` → the name.
fn extension_name(stderr: &str) -> Option<&str> {
    if let Some(i) = stderr.find("Extension ") {
        return stderr[i + 10..].split_whitespace().next();
    }
    for key in [
        "Couldn't load target `",
        "Couldn't load match `",
        "Couldn't load target '",
        "Couldn't load match '",
    ] {
        if let Some(i) = stderr.find(key) {
            let rest = &stderr[i + key.len()..];
            return rest.split(['\'', ':']).next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Family;

    fn rejected(backend: Backend, stderr: &str) -> ApplyError {
        ApplyError::Rejected {
            program: format!("iptables-{backend}-restore"),
            backend: Some(backend),
            family: Family::V4,
            status: Some(2),
            stderr: stderr.into(),
            input: String::new(),
        }
    }

    #[test]
    fn names_the_modules_when_the_nat_table_is_missing() {
        let d = diagnose(&rejected(
            Backend::Legacy,
            "iptables-restore v1.6.1: iptables-restore: unable to initialize table 'nat'\n\n\
             Error occurred at line: 1\n",
        ));
        assert_eq!(d.exit_code, exit::KERNEL_SUPPORT);
        assert!(
            d.why.contains("unable to initialize table 'nat'"),
            "{}",
            d.why
        );
        for module in [
            "iptable_nat",
            "xt_REDIRECT",
            "xt_owner",
            "nf_nat",
            "ip6table_nat",
        ] {
            assert!(d.fix.contains(module), "{module} missing from {}", d.fix);
        }
    }

    #[test]
    fn table_does_not_exist_from_plain_iptables_is_the_same_cause() {
        let d = diagnose(&rejected(
            Backend::Legacy,
            "iptables v1.8.9 (legacy): can't initialize iptables table `nat': Table does not exist \
             (do you need to insmod?)\nPerhaps iptables or your kernel needs to be upgraded.\n",
        ));
        assert_eq!(d.exit_code, exit::KERNEL_SUPPORT);
    }

    #[test]
    fn names_the_missing_extension_module() {
        let d = diagnose(&rejected(
            Backend::Nft,
            "Warning: Extension REDIRECT revision 0 not supported, missing kernel module?\n\
             iptables-restore: line 12 failed: RULE_APPEND failed (No such file or directory): \
             rule in chain ISTIO_REDIRECT\n",
        ));
        assert_eq!(d.exit_code, exit::KERNEL_SUPPORT);
        assert!(d.why.contains("xt_REDIRECT"), "{}", d.why);
    }

    #[test]
    fn missing_capabilities_ask_for_net_admin_and_net_raw() {
        for stderr in [
            "iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: \
             Permission denied (you must be root)\n",
            "Fatal: can't open lock file /run/xtables.lock: Permission denied\n",
        ] {
            let d = diagnose(&rejected(Backend::Nft, stderr));
            assert_eq!(d.exit_code, exit::PERMISSION, "{stderr}");
            assert!(d.fix.contains("NET_ADMIN") && d.fix.contains("NET_RAW"));
        }
    }

    #[test]
    fn a_busy_lock_says_so() {
        let d = diagnose(&rejected(
            Backend::Legacy,
            "Another app is currently holding the xtables lock. Stopped waiting after 1s.\n",
        ));
        assert_eq!(d.exit_code, exit::LOCK_BUSY);
        assert!(d.fix.contains("--xtables-wait"));
    }

    #[test]
    fn a_backend_without_kernel_api_suggests_the_other_one() {
        let d = diagnose(&rejected(
            Backend::Nft,
            "iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: \
             Invalid argument\n",
        ));
        assert_eq!(d.exit_code, exit::BACKEND);
        assert!(d.fix.contains("--force-iptables-binary"));
    }

    #[test]
    fn a_missing_program_is_a_backend_problem() {
        let d = diagnose(&ApplyError::Spawn {
            program: "iptables-nft-save".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(d.exit_code, exit::BACKEND);
        assert!(d.why.contains("iptables-nft-save"));
    }

    #[test]
    fn an_unknown_group_points_at_the_owner_group_variables() {
        let d = diagnose(&rejected(
            Backend::Nft,
            "iptables-restore v1.8.9 (nf_tables): owner: Bad value for \"--gid-owner\" option: \"ftp\"\n",
        ));
        assert_eq!(d.exit_code, exit::REJECTED);
        assert!(d.why.contains("ISTIO_OUTBOUND_OWNER_GROUPS"));
    }

    #[test]
    fn the_first_familys_error_explains_a_rolled_back_failure() {
        let inner = rejected(
            Backend::Nft,
            "Another app is currently holding the xtables lock.",
        );
        let d = diagnose(&ApplyError::RolledBack {
            source: Box::new(inner),
        });
        assert_eq!(d.exit_code, exit::LOCK_BUSY);
        assert!(d.what.contains("rolled back"));
    }
}
