//! Flags + environment + host facts → one checked [`CaptureConfig`]. Pure.
//!
//! Istio binds each flag's environment variable as the flag's default, so a flag on the command
//! line beats its variable, and an alias (`ISTIO_META_DNS_CAPTURE`) beats the primary variable
//! (`REDIRECT_DNS`); see spec/istio-iptables.md §2. Unlike Istio, a malformed value is an error
//! naming where it came from instead of being ignored or handed to iptables.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::cli::Cli;

/// Where environment settings come from: the process, or a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Facts Istio reads from the pod rather than from flags; `host.rs` reads the real ones.
pub trait HostFacts {
    /// Whether IPv6 rules are wanted: the first non-loopback, non-link-local address is IPv6,
    /// or (with `dual_stack`) any such address is.
    fn ipv6(&self, dual_stack: bool) -> Result<bool, String>;
    /// Contents of the resolver file.
    fn read_resolv_conf(&self, path: &str) -> Result<String, String>;
    /// UID of a user name, if the user exists.
    fn lookup_uid(&self, user: &str) -> Option<u32>;
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(name) => write!(f, "flag --{name}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{origin}: {value:?} is not {expected}")]
    Invalid {
        origin: Source,
        value: String,
        expected: &'static str,
    },
    #[error("{origin}: {value:?} is not allowed: {why}")]
    NotAllowed {
        origin: Source,
        value: String,
        why: &'static str,
    },
    #[error("cannot tell whether the pod has IPv6: {0}")]
    HostAddresses(String),
    #[error("failed to load {path}: {why}")]
    ResolvConf { path: String, why: String },
}

/// A port number as given (Istio passes these through as text; we check them first).
pub type Port = u16;

/// An address with a prefix length, printed as written (Go's `netip.Prefix` keeps host bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, len) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max && !text.contains(' ')).then_some(Cidr { addr, len })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSelection {
    None,
    All,
    Only(Vec<Port>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrSelection {
    None,
    All,
    Only(Vec<Cidr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptionMode {
    Redirect,
    Tproxy,
}

/// Which outbound traffic is captured by its owner group (`ISTIO_OUTBOUND_OWNER_GROUPS*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerGroups {
    /// `*` minus these groups.
    AllExcept(Vec<String>),
    /// Only these groups (Istio quirk: an empty list captures no group at all).
    Only(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Legacy => "legacy",
            Backend::Nft => "nft",
        })
    }
}

/// Everything the planner needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    pub proxy_port: Port,
    pub inbound_capture_port: Port,
    pub inbound_tunnel_port: Port,
    pub proxy_uids: Vec<u32>,
    pub proxy_gids: Vec<u32>,
    pub interception: InterceptionMode,
    pub tproxy_mark: u32,
    pub tproxy_route_table: u32,
    pub inbound_ports: PortSelection,
    pub inbound_exclude_ports: Vec<Port>,
    pub exclude_interfaces: Vec<String>,
    pub outbound_cidrs: CidrSelection,
    pub outbound_exclude_cidrs: Vec<Cidr>,
    pub outbound_ports: Vec<Port>,
    pub outbound_exclude_ports: Vec<Port>,
    pub kube_virt_interfaces: Vec<String>,
    pub redirect_dns: bool,
    pub capture_all_dns: bool,
    pub drop_invalid: bool,
    pub dual_stack: bool,
    pub owner_groups: OwnerGroups,
    pub loopback_cidr: Cidr,
    /// Host fact: emit IPv6 rules.
    pub ipv6: bool,
    /// Host fact: resolv.conf servers, spelled as written there.
    pub dns_servers_v4: Vec<String>,
    pub dns_servers_v6: Vec<String>,
    pub run: RunOptions,
}

/// What to do with the plan, as opposed to what the plan is.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub dry_run: bool,
    pub dry_run_file: Option<String>,
    pub skip_rule_apply: bool,
    pub run_validation: bool,
    pub probe_port: Port,
    pub probe_timeout: Duration,
    pub cleanup_only: bool,
    pub force_apply: bool,
    pub native_nftables: bool,
    pub backend: Option<Backend>,
    pub xtables_wait: u32,
    pub bin_dir: Option<String>,
}

/// Logging settings, resolved before anything else so that errors can be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

impl LogConfig {
    /// Istio's `--log_output_level` is `scope:level,...` or a bare level; we honour the
    /// `default` scope (or the bare level) and ignore scopes we do not have.
    pub fn from_cli(cli: &Cli) -> Result<LogConfig, ConfigError> {
        let spec = cli.log_output_level.as_deref().unwrap_or("default:info");
        let mut level = "info".to_string();
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (scope, lvl) = item.split_once(':').unwrap_or(("default", item));
            let lvl = match lvl {
                "debug" | "info" | "warn" | "error" => lvl,
                "none" => "off",
                "fatal" => "error",
                _ => {
                    return Err(ConfigError::Invalid {
                        origin: Source::Flag("log_output_level"),
                        value: spec.to_string(),
                        expected: "scope:level with level debug, info, warn, error, fatal or none",
                    });
                }
            };
            if scope == "default" {
                level = lvl.to_string();
            }
        }
        let json = match &cli.log_as_json {
            Some(v) => parse_bool(v, Source::Flag("log_as_json"))?,
            None => false,
        };
        Ok(LogConfig { level, json })
    }
}

/// One setting: its flag value (if given) and the environment names to fall back to, aliases
/// last in the list because they win (Istio's `AdditionalEnv`).
struct Lookup<'a> {
    env: &'a dyn Env,
}

impl Lookup<'_> {
    fn get(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
    ) -> Option<(String, Source)> {
        if let Some(v) = flag {
            return Some((v.clone(), Source::Flag(long)));
        }
        envs.iter()
            .rev()
            .find_map(|name| self.env.get(name).map(|v| (v, Source::Env(name))))
    }

    fn string(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
    ) -> Option<(String, Source)> {
        self.get(flag, long, envs)
    }

    fn boolean(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
    ) -> Result<bool, ConfigError> {
        match self.get(flag, long, envs) {
            Some((v, src)) => parse_bool(&v, src),
            None => Ok(false),
        }
    }

    fn port(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
        default: Port,
    ) -> Result<Port, ConfigError> {
        match self.get(flag, long, envs) {
            Some((v, src)) => parse_port(&v, &src),
            None => Ok(default),
        }
    }

    fn number(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
        default: u32,
    ) -> Result<u32, ConfigError> {
        match self.get(flag, long, envs) {
            Some((v, src)) => v.parse().map_err(|_| ConfigError::Invalid {
                origin: src,
                value: v,
                expected: "a non-negative integer",
            }),
            None => Ok(default),
        }
    }

    fn ports(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
    ) -> Result<Vec<Port>, ConfigError> {
        match self.get(flag, long, envs) {
            Some((v, src)) => split(&v).map(|p| parse_port(p, &src)).collect(),
            None => Ok(Vec::new()),
        }
    }

    fn interfaces(
        &self,
        flag: &Option<String>,
        long: &'static str,
        envs: &[&'static str],
    ) -> Result<Vec<String>, ConfigError> {
        let Some((v, src)) = self.get(flag, long, envs) else {
            return Ok(Vec::new());
        };
        split(&v)
            .map(|name| {
                // Linux names: at most 15 bytes, no '/', no whitespace; '+' is iptables' wildcard.
                let ok = name.len() <= 15
                    && !name.contains(['/', ':'])
                    && !name.chars().any(char::is_whitespace);
                if ok {
                    Ok(name.to_string())
                } else {
                    Err(ConfigError::Invalid {
                        origin: src.clone(),
                        value: name.to_string(),
                        expected: "an interface name (at most 15 characters, no '/', ':' or spaces)",
                    })
                }
            })
            .collect()
    }
}

/// Istio's list rule: comma-separated, empty items dropped, items not trimmed.
pub fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

/// Go's `strconv.ParseBool`, which pflag and Istio's env parsing use.
fn parse_bool(value: &str, origin: Source) -> Result<bool, ConfigError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ConfigError::Invalid {
            origin,
            value: value.to_string(),
            expected: "a boolean (true or false)",
        }),
    }
}

fn parse_port(value: &str, origin: &Source) -> Result<Port, ConfigError> {
    match value.parse::<Port>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(ConfigError::Invalid {
            origin: origin.clone(),
            value: value.to_string(),
            expected: "a port number (1-65535)",
        }),
    }
}

fn parse_ids(value: &str, origin: &Source) -> Result<Vec<u32>, ConfigError> {
    let ids: Vec<u32> = split(value)
        .map(|id| {
            id.parse::<u32>().map_err(|_| ConfigError::Invalid {
                origin: origin.clone(),
                value: id.to_string(),
                expected: "a numeric user or group id",
            })
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(ConfigError::Invalid {
            origin: origin.clone(),
            value: value.to_string(),
            expected: "a comma list of at least one numeric id",
        });
    }
    Ok(ids)
}

fn parse_cidrs(value: &str, origin: &Source) -> Result<Vec<Cidr>, ConfigError> {
    split(value)
        .map(|c| {
            Cidr::parse(c).ok_or_else(|| ConfigError::Invalid {
                origin: origin.clone(),
                value: c.to_string(),
                expected: "a CIDR such as 10.0.0.0/8 or fd00::/8",
            })
        })
        .collect()
}

/// Go duration subset Istio users write: `5s`, `500ms`, `1m`, `1m30s`.
fn parse_duration(value: &str, origin: &Source) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Invalid {
        origin: origin.clone(),
        value: value.to_string(),
        expected: "a duration such as 5s or 500ms",
    };
    let mut total = Duration::ZERO;
    let mut rest = value;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(err()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `nameserver` lines of a resolv.conf, split by family, spelled as written.
pub fn parse_resolv_conf(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => v4.push(addr.to_string()),
            Ok(IpAddr::V6(_)) => v6.push(addr.to_string()),
            Err(_) => {} // a scoped or malformed server cannot be matched by a rule
        }
    }
    (v4, v6)
}

impl CaptureConfig {
    /// Resolves flags over environment over defaults, checks every value, then reads the host
    /// facts that the settings make necessary.
    pub fn resolve(cli: &Cli, env: &dyn Env, host: &dyn HostFacts) -> Result<Self, ConfigError> {
        let l = Lookup { env };
        let proxy_port = l.port(&cli.envoy_port, "envoy-port", &[], 15001)?;
        let inbound_capture_port = l.port(
            &cli.inbound_capture_port,
            "inbound-capture-port",
            &["INBOUND_CAPTURE_PORT"],
            15006,
        )?;
        let inbound_tunnel_port = l.port(
            &cli.inbound_tunnel_port,
            "inbound-tunnel-port",
            &["INBOUND_TUNNEL_PORT"],
            15008,
        )?;

        let (uid_text, uid_src) = match l.string(&cli.proxy_uid, "proxy-uid", &["PROXY_UID"]) {
            Some(v) => v,
            None => {
                let user = env
                    .get("ENVOY_USER")
                    .unwrap_or_else(|| "istio-proxy".into());
                let uid = host.lookup_uid(&user).unwrap_or(1337);
                (uid.to_string(), Source::Flag("proxy-uid"))
            }
        };
        let proxy_uids = parse_ids(&uid_text, &uid_src)?;
        // Istio copies the -u string when -g is absent.
        let proxy_gids = match l.string(&cli.proxy_gid, "proxy-gid", &["PROXY_GID"]) {
            Some((v, src)) => parse_ids(&v, &src)?,
            None => proxy_uids.clone(),
        };

        let interception = match l.string(
            &cli.istio_inbound_interception_mode,
            "istio-inbound-interception-mode",
            &["ISTIO_INBOUND_INTERCEPTION_MODE"],
        ) {
            // Only the exact string selects TPROXY (spec §2); anything else is REDIRECT.
            Some((m, _)) if m == "TPROXY" => InterceptionMode::Tproxy,
            _ => InterceptionMode::Redirect,
        };
        let tproxy_mark = l.number(
            &cli.istio_inbound_tproxy_mark,
            "istio-inbound-tproxy-mark",
            &["ISTIO_INBOUND_TPROXY_MARK"],
            1337,
        )?;
        let tproxy_route_table = l.number(
            &cli.istio_inbound_tproxy_route_table,
            "istio-inbound-tproxy-route-table",
            &["ISTIO_INBOUND_TPROXY_ROUTE_TABLE"],
            133,
        )?;

        let inbound_ports = match l.string(
            &cli.istio_inbound_ports,
            "istio-inbound-ports",
            &["ISTIO_INBOUND_PORTS"],
        ) {
            None => PortSelection::None,
            Some((v, _)) if v.is_empty() => PortSelection::None,
            Some((v, _)) if v == "*" => PortSelection::All,
            Some((v, src)) => {
                let ports: Vec<Port> = split(&v)
                    .map(|p| parse_port(p, &src))
                    .collect::<Result<_, _>>()?;
                if ports.is_empty() {
                    PortSelection::None
                } else {
                    PortSelection::Only(ports)
                }
            }
        };
        let inbound_exclude_ports = l.ports(
            &cli.istio_local_exclude_ports,
            "istio-local-exclude-ports",
            &["ISTIO_LOCAL_EXCLUDE_PORTS"],
        )?;
        let exclude_interfaces = l.interfaces(
            &cli.istio_exclude_interfaces,
            "istio-exclude-interfaces",
            &["ISTIO_EXCLUDE_INTERFACES"],
        )?;
        let outbound_cidrs = match l.string(
            &cli.istio_service_cidr,
            "istio-service-cidr",
            &["ISTIO_SERVICE_CIDR"],
        ) {
            None => CidrSelection::None,
            Some((v, _)) if v == "*" => CidrSelection::All,
            Some((v, src)) => {
                let cidrs = parse_cidrs(&v, &src)?;
                if cidrs.is_empty() {
                    CidrSelection::None
                } else {
                    CidrSelection::Only(cidrs)
                }
            }
        };
        let outbound_exclude_cidrs = match l.string(
            &cli.istio_service_exclude_cidr,
            "istio-service-exclude-cidr",
            &["ISTIO_SERVICE_EXCLUDE_CIDR"],
        ) {
            None => Vec::new(),
            Some((v, src)) if v == "*" => {
                return Err(ConfigError::NotAllowed {
                    origin: src,
                    value: v,
                    why: "excluding every destination would disable outbound capture; \
                          use -i \"\" for that (Istio: invalid value for OUTBOUND_IP_RANGES_EXCLUDE)",
                });
            }
            Some((v, src)) => parse_cidrs(&v, &src)?,
        };
        let outbound_ports = l.ports(
            &cli.istio_outbound_ports,
            "istio-outbound-ports",
            &["ISTIO_OUTBOUND_PORTS"],
        )?;
        let outbound_exclude_ports = l.ports(
            &cli.istio_local_outbound_ports_exclude,
            "istio-local-outbound-ports-exclude",
            &["ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE"],
        )?;
        let kube_virt_interfaces = l.interfaces(
            &cli.kube_virt_interfaces,
            "kube-virt-interfaces",
            &["KUBE_VIRT_INTERFACES"],
        )?;

        let redirect_dns = l.boolean(
            &cli.redirect_dns,
            "redirect-dns",
            &["REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE"],
        )?;
        let capture_all_dns = l.boolean(
            &cli.capture_all_dns,
            "capture-all-dns",
            &["CAPTURE_ALL_DNS"],
        )?;
        let drop_invalid = l.boolean(
            &cli.drop_invalid,
            "drop-invalid",
            &["DROP_INVALID", "INVALID_DROP"],
        )?;
        let dual_stack = l.boolean(
            &cli.dual_stack,
            "dual-stack",
            &["DUAL_STACK", "ISTIO_DUAL_STACK"],
        )?;

        let owner_groups = owner_groups(env)?;
        let loopback_cidr = loopback_cidr(env)?;
        let run = RunOptions::resolve(cli, &l)?;

        let ipv6 = match l.string(&cli.host_ipv6, "host-ipv6", &["MESH_INIT_HOST_IPV6"]) {
            Some((v, src)) => parse_bool(&v, src)?,
            None => host.ipv6(dual_stack).map_err(ConfigError::HostAddresses)?,
        };
        let (mut dns_servers_v4, mut dns_servers_v6) = (Vec::new(), Vec::new());
        if redirect_dns && !capture_all_dns {
            let path = l
                .string(&cli.resolv_conf, "resolv-conf", &["MESH_INIT_RESOLV_CONF"])
                .map(|(v, _)| v)
                .unwrap_or_else(|| "/etc/resolv.conf".to_string());
            let text = host
                .read_resolv_conf(&path)
                .map_err(|why| ConfigError::ResolvConf { path, why })?;
            (dns_servers_v4, dns_servers_v6) = parse_resolv_conf(&text);
        }

        Ok(CaptureConfig {
            proxy_port,
            inbound_capture_port,
            inbound_tunnel_port,
            proxy_uids,
            proxy_gids,
            interception,
            tproxy_mark,
            tproxy_route_table,
            inbound_ports,
            inbound_exclude_ports,
            exclude_interfaces,
            outbound_cidrs,
            outbound_exclude_cidrs,
            outbound_ports,
            outbound_exclude_ports,
            kube_virt_interfaces,
            redirect_dns,
            capture_all_dns,
            drop_invalid,
            dual_stack,
            owner_groups,
            loopback_cidr,
            ipv6,
            dns_servers_v4,
            dns_servers_v6,
            run,
        })
    }

    /// DNS capture as the planner sees it: requested, and with something to capture
    /// (Istio silently turns it off when resolv.conf lists no server).
    pub fn dns_capture(&self) -> bool {
        self.redirect_dns
            && (self.capture_all_dns
                || !self.dns_servers_v4.is_empty()
                || !self.dns_servers_v6.is_empty())
    }
}

impl RunOptions {
    fn resolve(cli: &Cli, l: &Lookup<'_>) -> Result<RunOptions, ConfigError> {
        let backend = match l.string(
            &cli.force_iptables_binary,
            "force-iptables-binary",
            &["FORCE_IPTABLES_BINARY"],
        ) {
            None => None,
            Some((v, _)) if v.is_empty() => None,
            Some((v, _)) if v == "legacy" => Some(Backend::Legacy),
            Some((v, _)) if v == "nft" => Some(Backend::Nft),
            Some((v, src)) => {
                return Err(ConfigError::Invalid {
                    origin: src,
                    value: v,
                    expected: "legacy or nft",
                });
            }
        };
        let probe_timeout = match l.string(&cli.probe_timeout, "probe-timeout", &["PROBE_TIMEOUT"])
        {
            Some((v, src)) => parse_duration(&v, &src)?,
            None => Duration::from_secs(5),
        };
        // Accepted for compatibility, and checked like every other flag: mesh-init always
        // replaces differing rules without a capture gap (what --reconcile asks for), and it
        // runs in the pod's namespace (no istio-cni sandbox).
        l.boolean(&cli.reconcile, "reconcile", &["RECONCILE"])?;
        l.boolean(&cli.cni_mode, "cni-mode", &["CNI_MODE"])?;
        Ok(RunOptions {
            dry_run: l.boolean(&cli.dry_run, "dry-run", &["DRY_RUN"])?,
            dry_run_file: l.env.get("DRY_RUN_FILE_PATH").filter(|p| !p.is_empty()),
            skip_rule_apply: l.boolean(
                &cli.skip_rule_apply,
                "skip-rule-apply",
                &["SKIP_RULE_APPLY"],
            )?,
            run_validation: l.boolean(
                &cli.run_validation,
                "run-validation",
                &["RUN_VALIDATION"],
            )?,
            probe_port: l.port(
                &cli.iptables_probe_port,
                "iptables-probe-port",
                &["IPTABLES_PROBE_PORT"],
                15002,
            )?,
            probe_timeout,
            cleanup_only: l.boolean(&cli.cleanup_only, "cleanup-only", &["CLEANUP_ONLY"])?,
            force_apply: l.boolean(&cli.force_apply, "force-apply", &["FORCE_APPLY"])?,
            native_nftables: l.boolean(
                &cli.native_nftables,
                "native-nftables",
                &["NATIVE_NFTABLES"],
            )?,
            backend,
            xtables_wait: l.number(
                &cli.xtables_wait,
                "xtables-wait",
                &["MESH_INIT_XTABLES_WAIT"],
                30,
            )?,
            bin_dir: l
                .string(&cli.bin_dir, "bin-dir", &["MESH_INIT_BIN_DIR"])
                .map(|(v, _)| v)
                .filter(|v| !v.is_empty()),
        })
    }
}

fn owner_groups(env: &dyn Env) -> Result<OwnerGroups, ConfigError> {
    let include = env
        .get("ISTIO_OUTBOUND_OWNER_GROUPS")
        .unwrap_or_else(|| "*".into());
    let exclude = env
        .get("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE")
        .unwrap_or_default();
    let (groups, origin, value) = if include == "*" {
        let groups: Vec<String> = split(&exclude).map(String::from).collect();
        (
            OwnerGroups::AllExcept(groups.clone()),
            "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE",
            groups,
        )
    } else {
        let groups: Vec<String> = split(&include).map(String::from).collect();
        (
            OwnerGroups::Only(groups.clone()),
            "ISTIO_OUTBOUND_OWNER_GROUPS",
            groups,
        )
    };
    // Istio's Validate: iptables' owner match chains are limited, so at most 64 groups.
    if value.len() > 64 {
        return Err(ConfigError::NotAllowed {
            origin: Source::Env(origin),
            value: value.join(","),
            why: "at most 64 groups can be listed",
        });
    }
    for g in &value {
        if g.chars().any(|c| c.is_whitespace() || c == '!') {
            return Err(ConfigError::Invalid {
                origin: Source::Env(origin),
                value: g.clone(),
                expected: "a group name or numeric GID",
            });
        }
    }
    Ok(groups)
}

fn loopback_cidr(env: &dyn Env) -> Result<Cidr, ConfigError> {
    let name = "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR";
    let Some(text) = env.get(name) else {
        return Ok(Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            len: 32,
        });
    };
    let origin = Source::Env(name);
    let cidr = Cidr::parse(&text).ok_or_else(|| ConfigError::Invalid {
        origin: origin.clone(),
        value: text.clone(),
        expected: "a CIDR",
    })?;
    match cidr.addr {
        IpAddr::V4(a) if a.is_loopback() && (8..=32).contains(&cidr.len) => Ok(cidr),
        IpAddr::V4(a) if a.is_loopback() => Err(ConfigError::NotAllowed {
            origin,
            value: text,
            why: "the mask must be in range [8, 32]",
        }),
        _ => Err(ConfigError::Invalid {
            origin,
            value: text,
            expected: "an IPv4 loopback CIDR such as 127.0.0.1/32",
        }),
    }
}

#[cfg(test)]
mod tests;
