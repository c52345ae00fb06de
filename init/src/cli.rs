//! The command line: `istio-iptables`' flags with their spellings, plus mesh-init's own.
//!
//! This module reads argv only. Every value stays a string (or a bool) here: environment
//! fallbacks follow Istio's precedence, not clap's, and are resolved with the checks in
//! `config.rs`, so a malformed value is reported the same way whether it came from a flag or
//! from the environment.

use clap::Parser;

/// Installs Istio's traffic-capture rules (the `istio-init` container), or prints them.
///
/// Flags, meanings and defaults are those of Istio's `istio-iptables`; most flags fall back to
/// an environment variable named after the long flag (`--istio-inbound-ports` →
/// `ISTIO_INBOUND_PORTS`); a flag on the command line wins over its variable. Exit codes: 0 done,
/// 1 other failure, 2 bad flags or values, 3 nat table or kernel modules missing, 4 missing
/// NET_ADMIN/NET_RAW, 5 xtables lock busy, 6 no usable iptables backend, 7 rules rejected,
/// 126 validation failed.
#[derive(Debug, Default, Parser)]
#[command(name = "mesh-init", version, about, long_about = None, args_override_self = true)]
#[command(after_help = HOST_FACTS_HELP)]
pub struct Cli {
    /// Port outbound TCP is redirected to [default: 15001]. No environment variable.
    #[arg(
        short = 'p',
        long = "envoy-port",
        value_name = "PORT",
        allow_hyphen_values = true
    )]
    pub envoy_port: Option<String>,
    /// Port inbound TCP is redirected (or TPROXYed) to [env: INBOUND_CAPTURE_PORT] [default: 15006].
    #[arg(
        short = 'z',
        long = "inbound-capture-port",
        value_name = "PORT",
        allow_hyphen_values = true
    )]
    pub inbound_capture_port: Option<String>,
    /// HBONE tunnel port, never captured inbound [env: INBOUND_TUNNEL_PORT] [default: 15008].
    #[arg(
        short = 'e',
        long = "inbound-tunnel-port",
        value_name = "PORT",
        allow_hyphen_values = true
    )]
    pub inbound_tunnel_port: Option<String>,
    /// Comma list of UIDs whose traffic is not captured [env: PROXY_UID] [default: UID of
    /// $ENVOY_USER (istio-proxy), else 1337].
    #[arg(
        short = 'u',
        long = "proxy-uid",
        value_name = "UIDS",
        allow_hyphen_values = true
    )]
    pub proxy_uid: Option<String>,
    /// Comma list of GIDs whose traffic is not captured [env: PROXY_GID] [default: same as -u].
    #[arg(
        short = 'g',
        long = "proxy-gid",
        value_name = "GIDS",
        allow_hyphen_values = true
    )]
    pub proxy_gid: Option<String>,
    /// Inbound interception: TPROXY, or anything else for REDIRECT
    /// [env: ISTIO_INBOUND_INTERCEPTION_MODE] [default: REDIRECT].
    #[arg(
        short = 'm',
        long = "istio-inbound-interception-mode",
        value_name = "MODE"
    )]
    pub istio_inbound_interception_mode: Option<String>,
    /// Firewall mark used by TPROXY [env: ISTIO_INBOUND_TPROXY_MARK] [default: 1337].
    #[arg(
        short = 't',
        long = "istio-inbound-tproxy-mark",
        value_name = "MARK",
        allow_hyphen_values = true
    )]
    pub istio_inbound_tproxy_mark: Option<String>,
    /// Policy-routing table used by TPROXY [env: ISTIO_INBOUND_TPROXY_ROUTE_TABLE] [default: 133].
    #[arg(
        short = 'r',
        long = "istio-inbound-tproxy-route-table",
        value_name = "TABLE"
    )]
    pub istio_inbound_tproxy_route_table: Option<String>,
    /// Inbound ports to capture: comma list, `*` for all, empty for none [env: ISTIO_INBOUND_PORTS].
    #[arg(
        short = 'b',
        long = "istio-inbound-ports",
        value_name = "PORTS",
        allow_hyphen_values = true
    )]
    pub istio_inbound_ports: Option<String>,
    /// Inbound ports not captured; used only with `-b '*'` [env: ISTIO_LOCAL_EXCLUDE_PORTS].
    #[arg(
        short = 'd',
        long = "istio-local-exclude-ports",
        value_name = "PORTS",
        allow_hyphen_values = true
    )]
    pub istio_local_exclude_ports: Option<String>,
    /// Interfaces whose traffic is neither captured in nor out [env: ISTIO_EXCLUDE_INTERFACES].
    #[arg(
        short = 'c',
        long = "istio-exclude-interfaces",
        value_name = "NICS",
        allow_hyphen_values = true
    )]
    pub istio_exclude_interfaces: Option<String>,
    /// Outbound destination CIDRs to capture: comma list, `*` for all, empty for none
    /// [env: ISTIO_SERVICE_CIDR].
    #[arg(
        short = 'i',
        long = "istio-service-cidr",
        value_name = "CIDRS",
        allow_hyphen_values = true
    )]
    pub istio_service_cidr: Option<String>,
    /// Outbound destination CIDRs never captured [env: ISTIO_SERVICE_EXCLUDE_CIDR].
    #[arg(
        short = 'x',
        long = "istio-service-exclude-cidr",
        value_name = "CIDRS",
        allow_hyphen_values = true
    )]
    pub istio_service_exclude_cidr: Option<String>,
    /// Outbound TCP ports always captured, whatever -i says [env: ISTIO_OUTBOUND_PORTS].
    #[arg(
        short = 'q',
        long = "istio-outbound-ports",
        value_name = "PORTS",
        allow_hyphen_values = true
    )]
    pub istio_outbound_ports: Option<String>,
    /// Outbound ports (TCP and UDP) never captured [env: ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE].
    #[arg(
        short = 'o',
        long = "istio-local-outbound-ports-exclude",
        value_name = "PORTS"
    )]
    pub istio_local_outbound_ports_exclude: Option<String>,
    /// Interfaces whose inbound traffic is treated as outbound (KubeVirt) [env: KUBE_VIRT_INTERFACES].
    #[arg(
        short = 'k',
        long = "kube-virt-interfaces",
        value_name = "NICS",
        allow_hyphen_values = true
    )]
    pub kube_virt_interfaces: Option<String>,

    /// Print the commands and restore input instead of running them; needs no root
    /// [env: DRY_RUN]. With DRY_RUN_FILE_PATH set, the record is also written there.
    #[arg(short = 'n', long = "dry-run", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// Capture DNS (port 53) to the agent on 15053 [env: REDIRECT_DNS, ISTIO_META_DNS_CAPTURE].
    #[arg(long = "redirect-dns", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub redirect_dns: Option<String>,
    /// With --redirect-dns: capture all port-53 traffic, not only resolv.conf's servers
    /// [env: CAPTURE_ALL_DNS].
    #[arg(long = "capture-all-dns", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub capture_all_dns: Option<String>,
    /// Drop conntrack-INVALID packets instead of letting the kernel reset connections
    /// [env: DROP_INVALID, INVALID_DROP].
    #[arg(long = "drop-invalid", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub drop_invalid: Option<String>,
    /// IPv6 rules when the pod has any IPv6 address, not only when its first one is IPv6
    /// [env: DUAL_STACK, ISTIO_DUAL_STACK].
    #[arg(long = "dual-stack", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dual_stack: Option<String>,
    /// Program nothing (used with --run-validation under istio-cni) [env: SKIP_RULE_APPLY].
    #[arg(long = "skip-rule-apply", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub skip_rule_apply: Option<String>,
    /// After programming, prove that redirection works; exit 126 if not [env: RUN_VALIDATION].
    #[arg(long = "run-validation", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub run_validation: Option<String>,
    /// Port the validation probe dials [env: IPTABLES_PROBE_PORT] [default: 15002].
    #[arg(
        long = "iptables-probe-port",
        value_name = "PORT",
        allow_hyphen_values = true
    )]
    pub iptables_probe_port: Option<String>,
    /// Validation timeout, a Go duration such as 5s or 500ms [env: PROBE_TIMEOUT] [default: 5s].
    #[arg(
        long = "probe-timeout",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub probe_timeout: Option<String>,
    /// Network namespace path (istio-cni); accepted for compatibility [env: NETWORK_NAMESPACE].
    #[arg(
        long = "network-namespace",
        value_name = "PATH",
        allow_hyphen_values = true
    )]
    pub network_namespace: Option<String>,
    /// Running from the node into a pod namespace (istio-cni); accepted for compatibility
    /// [env: CNI_MODE].
    #[arg(long = "cni-mode", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub cni_mode: Option<String>,
    /// Replace different leftover rules; mesh-init always replaces them without a capture gap,
    /// so this is accepted for compatibility [env: RECONCILE].
    #[arg(long = "reconcile", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub reconcile: Option<String>,
    /// Only remove the rules and chains mesh-init installs (native nftables: the Istio tables)
    /// [env: CLEANUP_ONLY].
    #[arg(long = "cleanup-only", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub cleanup_only: Option<String>,
    /// Apply even when the rules in place are already exactly ours [env: FORCE_APPLY].
    #[arg(long = "force-apply", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub force_apply: Option<String>,
    /// Program native nftables (`inet` tables) with `nft -f` instead of iptables
    /// [env: NATIVE_NFTABLES].
    #[arg(long = "native-nftables", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub native_nftables: Option<String>,
    /// Use this iptables backend, `legacy` or `nft`, instead of detecting it
    /// [env: FORCE_IPTABLES_BINARY].
    #[arg(
        long = "force-iptables-binary",
        value_name = "legacy|nft",
        allow_hyphen_values = true
    )]
    pub force_iptables_binary: Option<String>,

    /// Whether the pod has IPv6, instead of detecting it from interface addresses
    /// [env: MESH_INIT_HOST_IPV6].
    #[arg(long = "host-ipv6", value_name = "BOOL")]
    pub host_ipv6: Option<String>,
    /// The resolver file whose nameservers DNS capture redirects
    /// [env: MESH_INIT_RESOLV_CONF] [default: /etc/resolv.conf].
    #[arg(long = "resolv-conf", value_name = "FILE", allow_hyphen_values = true)]
    pub resolv_conf: Option<String>,
    /// Seconds to wait for the xtables lock [env: MESH_INIT_XTABLES_WAIT] [default: 30].
    #[arg(
        long = "xtables-wait",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub xtables_wait: Option<String>,
    /// Directory holding the iptables/nft programs, instead of searching PATH
    /// [env: MESH_INIT_BIN_DIR].
    #[arg(long = "bin-dir", value_name = "DIR", allow_hyphen_values = true)]
    pub bin_dir: Option<String>,

    /// Log levels, `default:info` or `scope:level,...` (Istio's syntax) [default: default:info].
    #[arg(
        long = "log_output_level",
        value_name = "LEVELS",
        allow_hyphen_values = true
    )]
    pub log_output_level: Option<String>,
    /// Log as JSON lines.
    #[arg(long = "log_as_json", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub log_as_json: Option<String>,
    /// Accepted for compatibility with Istio's logging flags; ignored.
    #[arg(long = "log_caller", value_name = "SCOPES", allow_hyphen_values = true)]
    pub log_caller: Option<String>,
    /// Accepted for compatibility with Istio's logging flags; ignored.
    #[arg(
        long = "log_stacktrace_level",
        value_name = "LEVELS",
        allow_hyphen_values = true
    )]
    pub log_stacktrace_level: Option<String>,
    /// Accepted for compatibility (logs always go to stderr); repeatable.
    #[arg(long = "log_target", value_name = "TARGET", allow_hyphen_values = true)]
    pub log_target: Vec<String>,
    /// Accepted for compatibility (klog verbosity); ignored.
    #[arg(long = "vklog", value_name = "LEVEL", allow_hyphen_values = true)]
    pub vklog: Option<String>,
}

const HOST_FACTS_HELP: &str = "\
Environment-only settings (Istio's): ISTIO_OUTBOUND_OWNER_GROUPS (default *),
ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE, ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR (default 127.0.0.1/32),
ENVOY_USER (default istio-proxy), DRY_RUN_FILE_PATH.

Host facts: mesh-init reads whether the pod has IPv6 from its interface addresses and the DNS
servers from the resolver file; --host-ipv6 and --resolv-conf (or MESH_INIT_HOST_IPV6 and
MESH_INIT_RESOLV_CONF) replace that detection, e.g. to review a dry run for another pod.";

impl Cli {
    /// Parses argv (program name first); clap's error carries the usage message.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_args(std::iter::once("mesh-init").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn accepts_the_injectors_istio_init_arguments() {
        let cli = parse(&[crate::testing::INJECTOR_ARGS, &["--log_as_json"]].concat());
        assert_eq!(cli.istio_service_exclude_cidr.as_deref(), Some(""));
        assert_eq!(cli.istio_inbound_ports.as_deref(), Some("*"));
        assert_eq!(cli.log_as_json.as_deref(), Some("true"));
    }

    #[test]
    fn takes_pflag_spellings_of_values_and_booleans() {
        let cli = parse(&["-b=*", "--dry-run=false", "--redirect-dns", "-n"]);
        assert_eq!(cli.istio_inbound_ports.as_deref(), Some("*"));
        assert_eq!(cli.dry_run.as_deref(), Some("true"));
        assert_eq!(cli.redirect_dns.as_deref(), Some("true"));
        let cli = parse(&["--dry-run=false"]);
        assert_eq!(cli.dry_run.as_deref(), Some("false"));
    }

    #[test]
    fn rejects_an_unknown_flag() {
        let err = Cli::try_parse_args(["mesh-init", "--no-such-flag"]).unwrap_err();
        assert!(err.to_string().contains("--no-such-flag"), "{err}");
    }
}
