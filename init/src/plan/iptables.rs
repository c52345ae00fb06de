//! The iptables rule plan, in the emission order of Istio's `capture/run.go` `Run`
//! (spec/istio-iptables.md §4). Numbers in comments refer to the rules of spec §4.1.

use super::{Op, Plan, Rule, Table};
use crate::config::{CaptureConfig, CidrSelection, InterceptionMode, OwnerGroups, PortSelection};

const ISTIO_INBOUND: &str = "ISTIO_INBOUND";
const ISTIO_REDIRECT: &str = "ISTIO_REDIRECT";
const ISTIO_IN_REDIRECT: &str = "ISTIO_IN_REDIRECT";
const ISTIO_OUTPUT: &str = "ISTIO_OUTPUT";
const ISTIO_OUTPUT_DNS: &str = "ISTIO_OUTPUT_DNS";
const ISTIO_DIVERT: &str = "ISTIO_DIVERT";
const ISTIO_TPROXY: &str = "ISTIO_TPROXY";
const ISTIO_DROP: &str = "ISTIO_DROP";
/// The agent's DNS listener.
const DNS_PORT: &str = "15053";
/// Mark for proxy → own-pod-IP traffic in TPROXY mode.
const OUTBOUND_MARK: &str = "1338";
/// Placeholder replaced by the family's address in versioned rules.
const IP: &str = "{ip}";

/// Collects rules for both families, like Istio's rule builder.
struct Builder {
    plan: Plan,
}

impl Builder {
    fn push(&mut self, v4: bool, v6: bool, table: Table, chain: &str, op: Op, args: Vec<String>) {
        let rule = Rule {
            table,
            chain: chain.to_string(),
            op,
            args,
        };
        if v6 && self.plan.ipv6 {
            self.plan.v6.push(rule.clone());
        }
        if v4 {
            self.plan.v4.push(rule);
        }
    }

    fn append(&mut self, table: Table, chain: &str, args: &[&str]) {
        self.push(true, true, table, chain, Op::Append, owned(args));
    }

    fn append_v4(&mut self, table: Table, chain: &str, args: &[&str]) {
        self.push(true, false, table, chain, Op::Append, owned(args));
    }

    fn append_v6(&mut self, table: Table, chain: &str, args: &[&str]) {
        self.push(false, true, table, chain, Op::Append, owned(args));
    }

    fn insert(&mut self, v4: bool, v6: bool, table: Table, chain: &str, pos: u32, args: &[&str]) {
        self.push(v4, v6, table, chain, Op::Insert(pos), owned(args));
    }

    /// A dual-stack rule with the family's address in place of [`IP`].
    fn append_versioned(&mut self, v4: &str, v6: &str, table: Table, chain: &str, args: &[&str]) {
        fn with<'a>(args: &[&'a str], ip: &'a str) -> Vec<&'a str> {
            args.iter().map(|a| if *a == IP { ip } else { a }).collect()
        }
        self.append_v4(table, chain, &with(args, v4));
        self.append_v6(table, chain, &with(args, v6));
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The IPv4 and IPv6 rules that capture the pod's traffic as `cfg` asks.
pub fn plan(cfg: &CaptureConfig) -> Plan {
    let mut b = Builder {
        plan: Plan {
            ipv6: cfg.ipv6,
            ..Plan::default()
        },
    };
    let tproxy = cfg.interception == InterceptionMode::Tproxy;
    let dns = cfg.dns_capture();
    let lo4 = cfg.loopback_cidr.to_string();
    let lo4 = lo4.as_str();
    let lo6 = "::1/128";

    // Excluded interfaces first: nothing on them is captured, either way.
    for nic in &cfg.exclude_interfaces {
        b.append(Table::Nat, "PREROUTING", &["-i", nic, "-j", "RETURN"]);
        b.append(Table::Nat, "OUTPUT", &["-o", nic, "-j", "RETURN"]);
    }
    if tproxy {
        for nic in &cfg.exclude_interfaces {
            b.append(Table::Mangle, "PREROUTING", &["-i", nic, "-j", "RETURN"]);
            b.append(Table::Mangle, "OUTPUT", &["-o", nic, "-j", "RETURN"]);
        }
    }
    for nic in &cfg.kube_virt_interfaces {
        b.insert(
            true,
            true,
            Table::Nat,
            "PREROUTING",
            1,
            &["-i", nic, "-j", "RETURN"],
        );
    }
    if cfg.drop_invalid {
        b.append(
            Table::Mangle,
            "PREROUTING",
            &["-m", "conntrack", "--ctstate", "INVALID", "-j", ISTIO_DROP],
        );
        b.append(Table::Mangle, ISTIO_DROP, &["-j", "DROP"]);
    }

    let tunnel = cfg.inbound_tunnel_port.to_string();
    let proxy_port = cfg.proxy_port.to_string();
    let capture_port = cfg.inbound_capture_port.to_string();
    let mark = cfg.tproxy_mark.to_string();
    // [1] [2] [3]
    b.append(
        Table::Nat,
        ISTIO_INBOUND,
        &["-p", "tcp", "--dport", &tunnel, "-j", "RETURN"],
    );
    b.append(
        Table::Nat,
        ISTIO_REDIRECT,
        &["-p", "tcp", "-j", "REDIRECT", "--to-ports", &proxy_port],
    );
    b.append(
        Table::Nat,
        ISTIO_IN_REDIRECT,
        &["-p", "tcp", "-j", "REDIRECT", "--to-ports", &capture_port],
    );

    inbound(&mut b, cfg, lo4, lo6);

    // [7], then outbound port exclusions before anything can redirect.
    b.append(Table::Nat, "OUTPUT", &["-j", ISTIO_OUTPUT]);
    for port in &cfg.outbound_exclude_ports {
        let port = port.to_string();
        b.append(
            Table::Nat,
            ISTIO_OUTPUT,
            &["-p", "tcp", "--dport", &port, "-j", "RETURN"],
        );
        b.append(
            Table::Nat,
            ISTIO_OUTPUT,
            &["-p", "udp", "--dport", &port, "-j", "RETURN"],
        );
    }
    // [8] inbound passthrough from 127.0.0.6 / ::6.
    b.append_versioned(
        "127.0.0.6/32",
        "::6/128",
        Table::Nat,
        ISTIO_OUTPUT,
        &["-o", "lo", "-s", IP, "-j", "RETURN"],
    );

    let owners = OwnerRules {
        lo4,
        lo6,
        tunnel: &tunnel,
        dns,
        loopback_included: matches!(&cfg.outbound_cidrs,
            CidrSelection::Only(cidrs) if cidrs.iter().any(|c| c.addr.is_loopback())),
    };
    for uid in &cfg.proxy_uids {
        owners.emit(&mut b, "--uid-owner", &uid.to_string(), dns);
    }
    // Istio keeps the plain [9] for GIDs even with DNS capture (upstream asymmetry).
    for gid in &cfg.proxy_gids {
        owners.emit(&mut b, "--gid-owner", &gid.to_string(), false);
    }

    match &cfg.owner_groups {
        OwnerGroups::AllExcept(groups) => {
            for g in groups {
                b.append(
                    Table::Nat,
                    ISTIO_OUTPUT,
                    &["-m", "owner", "--gid-owner", g, "-j", "RETURN"],
                );
            }
        }
        OwnerGroups::Only(groups) => {
            let mut args: Vec<&str> = Vec::new();
            for g in groups {
                args.extend(["-m", "owner", "!", "--gid-owner", g]);
            }
            args.extend(["-j", "RETURN"]);
            b.append(Table::Nat, ISTIO_OUTPUT, &args);
        }
    }

    if dns {
        dns_redirect(&mut b, cfg);
    }

    // [12] then outbound CIDR exclusions, each to its family.
    b.append_versioned(
        lo4,
        lo6,
        Table::Nat,
        ISTIO_OUTPUT,
        &["-d", IP, "-j", "RETURN"],
    );
    for cidr in &cfg.outbound_exclude_cidrs {
        let c = cidr.to_string();
        let args = ["-d", c.as_str(), "-j", "RETURN"];
        if cidr.addr.is_ipv4() {
            b.append_v4(Table::Nat, ISTIO_OUTPUT, &args);
        } else {
            b.append_v6(Table::Nat, ISTIO_OUTPUT, &args);
        }
    }
    for port in &cfg.outbound_ports {
        let port = port.to_string();
        b.append(
            Table::Nat,
            ISTIO_OUTPUT,
            &["-p", "tcp", "--dport", &port, "-j", ISTIO_REDIRECT],
        );
    }
    outbound_include(&mut b, cfg, true);
    outbound_include(&mut b, cfg, false);

    if tproxy {
        tproxy_marks(&mut b, cfg, lo4, lo6, &mark);
    }
    b.plan
}

/// What the proxy-owner rules [9]–[11] share between UIDs and GIDs.
struct OwnerRules<'a> {
    lo4: &'a str,
    lo6: &'a str,
    tunnel: &'a str,
    dns: bool,
    loopback_included: bool,
}

impl OwnerRules<'_> {
    /// Rules [9]–[11] for one owner, `flag` being `--uid-owner` or `--gid-owner`. With
    /// `skip_dns` the hairpin [9] also leaves port 53 alone, so the agent's own DNS queries on
    /// lo are not sent back to the proxy.
    fn emit(&self, b: &mut Builder, flag: &str, id: &str, skip_dns: bool) {
        let dns_tunnel;
        let mut hairpin = vec!["-o", "lo", "!", "-d", IP, "-p", "tcp"];
        if skip_dns {
            dns_tunnel = format!("53,{}", self.tunnel);
            hairpin.extend(["-m", "multiport", "!", "--dports", &dns_tunnel]);
        } else {
            hairpin.extend(["!", "--dport", self.tunnel]);
        }
        hairpin.extend(["-m", "owner", flag, id, "-j", ISTIO_IN_REDIRECT]);
        b.append_versioned(self.lo4, self.lo6, Table::Nat, ISTIO_OUTPUT, &hairpin);

        // [10]: other local traffic on lo is not captured, unless -i names a loopback range.
        if !self.loopback_included {
            if self.dns {
                // A local DNS server reached over TCP stays capturable.
                b.append(
                    Table::Nat,
                    ISTIO_OUTPUT,
                    &[
                        "-o", "lo", "-p", "tcp", "!", "--dport", "53", "-m", "owner", "!", flag,
                        id, "-j", "RETURN",
                    ],
                );
            } else {
                b.append(
                    Table::Nat,
                    ISTIO_OUTPUT,
                    &["-o", "lo", "-m", "owner", "!", flag, id, "-j", "RETURN"],
                );
            }
        }
        // [11] the loop breaker, protocol-independent on purpose.
        b.append(
            Table::Nat,
            ISTIO_OUTPUT,
            &["-m", "owner", flag, id, "-j", "RETURN"],
        );
    }
}

fn inbound(b: &mut Builder, cfg: &CaptureConfig, lo4: &str, lo6: &str) {
    let tproxy = cfg.interception == InterceptionMode::Tproxy;
    if cfg.inbound_ports == PortSelection::None {
        return;
    }
    let table = if tproxy {
        let mark = cfg.tproxy_mark.to_string();
        let port = cfg.inbound_capture_port.to_string();
        let tproxy_mark = format!("{mark}/0xffffffff");
        b.append(
            Table::Mangle,
            ISTIO_DIVERT,
            &["-j", "MARK", "--set-mark", &mark],
        );
        b.append(Table::Mangle, ISTIO_DIVERT, &["-j", "ACCEPT"]);
        b.append_versioned(
            lo4,
            lo6,
            Table::Mangle,
            ISTIO_TPROXY,
            &[
                "!",
                "-d",
                IP,
                "-p",
                "tcp",
                "-j",
                "TPROXY",
                "--tproxy-mark",
                &tproxy_mark,
                "--on-port",
                &port,
            ],
        );
        Table::Mangle
    } else {
        Table::Nat
    };
    // [4]
    b.append(table, "PREROUTING", &["-p", "tcp", "-j", ISTIO_INBOUND]);
    match &cfg.inbound_ports {
        PortSelection::All => {
            for port in &cfg.inbound_exclude_ports {
                let port = port.to_string();
                b.append(
                    table,
                    ISTIO_INBOUND,
                    &["-p", "tcp", "--dport", &port, "-j", "RETURN"],
                );
            }
            if tproxy {
                b.append(
                    Table::Mangle,
                    ISTIO_INBOUND,
                    &[
                        "-p",
                        "tcp",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "RELATED,ESTABLISHED",
                        "-j",
                        ISTIO_DIVERT,
                    ],
                );
                b.append(
                    Table::Mangle,
                    ISTIO_INBOUND,
                    &["-p", "tcp", "-j", ISTIO_TPROXY],
                );
            } else {
                b.append(
                    Table::Nat,
                    ISTIO_INBOUND,
                    &["-p", "tcp", "-j", ISTIO_IN_REDIRECT],
                );
            }
        }
        PortSelection::Only(ports) => {
            for port in ports {
                let port = port.to_string();
                if tproxy {
                    b.append(
                        Table::Mangle,
                        ISTIO_INBOUND,
                        &[
                            "-p",
                            "tcp",
                            "--dport",
                            &port,
                            "-m",
                            "conntrack",
                            "--ctstate",
                            "RELATED,ESTABLISHED",
                            "-j",
                            ISTIO_DIVERT,
                        ],
                    );
                    b.append(
                        Table::Mangle,
                        ISTIO_INBOUND,
                        &["-p", "tcp", "--dport", &port, "-j", ISTIO_TPROXY],
                    );
                } else {
                    b.append(
                        Table::Nat,
                        ISTIO_INBOUND,
                        &["-p", "tcp", "--dport", &port, "-j", ISTIO_IN_REDIRECT],
                    );
                }
            }
        }
        PortSelection::None => {}
    }
}

/// nat REDIRECT of DNS to the agent plus raw-table conntrack zones (spec §4.3).
fn dns_redirect(b: &mut Builder, cfg: &CaptureConfig) {
    let all = cfg.capture_all_dns;
    let (v4, v6) = (&cfg.dns_servers_v4, &cfg.dns_servers_v6);
    b.append(Table::Raw, "OUTPUT", &["-j", ISTIO_OUTPUT_DNS]);
    if all || !v4.is_empty() {
        b.append_v4(Table::Nat, ISTIO_OUTPUT, &["-j", ISTIO_OUTPUT_DNS]);
    }
    if all || !v6.is_empty() {
        b.append_v6(Table::Nat, ISTIO_OUTPUT, &["-j", ISTIO_OUTPUT_DNS]);
    }
    // TCP uses --to-ports and UDP --to-port, as Istio spells them.
    for (proto, to) in [("tcp", "--to-ports"), ("udp", "--to-port")] {
        if all {
            b.append(
                Table::Nat,
                ISTIO_OUTPUT_DNS,
                &["-p", proto, "--dport", "53", "-j", "REDIRECT", to, DNS_PORT],
            );
            continue;
        }
        for s in v4 {
            let d = format!("{s}/32");
            b.append_v4(
                Table::Nat,
                ISTIO_OUTPUT_DNS,
                &[
                    "-p", proto, "--dport", "53", "-d", &d, "-j", "REDIRECT", to, DNS_PORT,
                ],
            );
        }
        for s in v6 {
            let d = format!("{s}/128");
            b.append_v6(
                Table::Nat,
                ISTIO_OUTPUT_DNS,
                &[
                    "-p", proto, "--dport", "53", "-d", &d, "-j", "REDIRECT", to, DNS_PORT,
                ],
            );
        }
    }
    // Zone 1: agent ↔ upstream; zone 2: app ↔ agent (the two flows share a 5-tuple).
    for (flag, ids) in [
        ("--uid-owner", &cfg.proxy_uids),
        ("--gid-owner", &cfg.proxy_gids),
    ] {
        for id in ids {
            let id = id.to_string();
            b.append(
                Table::Raw,
                ISTIO_OUTPUT_DNS,
                &[
                    "-p", "udp", "--dport", "53", "-m", "owner", flag, &id, "-j", "CT", "--zone",
                    "1",
                ],
            );
            b.append(
                Table::Raw,
                ISTIO_OUTPUT_DNS,
                &[
                    "-p", "udp", "--sport", DNS_PORT, "-m", "owner", flag, &id, "-j", "CT",
                    "--zone", "2",
                ],
            );
        }
    }
    if all {
        b.append(Table::Raw, "PREROUTING", &["-j", ISTIO_INBOUND]);
        b.append(
            Table::Raw,
            ISTIO_OUTPUT_DNS,
            &["-p", "udp", "--dport", "53", "-j", "CT", "--zone", "2"],
        );
        b.append(
            Table::Raw,
            ISTIO_INBOUND,
            &["-p", "udp", "--sport", "53", "-j", "CT", "--zone", "1"],
        );
        return;
    }
    // Same rules for each family, only the host prefix length differs.
    let families = [
        (
            true,
            "32",
            v4.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ),
        (false, "128", v6.iter().map(|s| s.to_string()).collect()),
    ];
    for (is_v4, prefix, servers) in families {
        if servers.is_empty() {
            continue;
        }
        let push = |b: &mut Builder, chain: &str, args: &[&str]| {
            b.push(is_v4, !is_v4, Table::Raw, chain, Op::Append, owned(args));
        };
        push(b, "PREROUTING", &["-j", ISTIO_INBOUND]);
        for s in servers {
            let a = format!("{s}/{prefix}");
            push(
                b,
                ISTIO_OUTPUT_DNS,
                &[
                    "-p", "udp", "--dport", "53", "-d", &a, "-j", "CT", "--zone", "2",
                ],
            );
            push(
                b,
                ISTIO_INBOUND,
                &[
                    "-p", "udp", "--sport", "53", "-s", &a, "-j", "CT", "--zone", "1",
                ],
            );
        }
    }
}

/// [13]: -i for one family; KubeVirt interfaces get the same capture in PREROUTING.
fn outbound_include(b: &mut Builder, cfg: &CaptureConfig, v4: bool) {
    match &cfg.outbound_cidrs {
        CidrSelection::None => {}
        CidrSelection::All => {
            b.push(
                v4,
                !v4,
                Table::Nat,
                ISTIO_OUTPUT,
                Op::Append,
                owned(&["-j", ISTIO_REDIRECT]),
            );
            for nic in &cfg.kube_virt_interfaces {
                b.insert(
                    v4,
                    !v4,
                    Table::Nat,
                    "PREROUTING",
                    1,
                    &["-i", nic, "-j", ISTIO_REDIRECT],
                );
            }
        }
        CidrSelection::Only(cidrs) => {
            for cidr in cidrs.iter().filter(|c| c.addr.is_ipv4() == v4) {
                let c = cidr.to_string();
                for nic in &cfg.kube_virt_interfaces {
                    b.insert(
                        v4,
                        !v4,
                        Table::Nat,
                        "PREROUTING",
                        1,
                        &["-i", nic, "-d", &c, "-j", ISTIO_REDIRECT],
                    );
                }
                b.push(
                    v4,
                    !v4,
                    Table::Nat,
                    ISTIO_OUTPUT,
                    Op::Append,
                    owned(&["-d", &c, "-j", ISTIO_REDIRECT]),
                );
            }
        }
    }
}

/// TPROXY's marks: keep the proxy's original-source mark on the connection, tag proxy → own
/// pod IP traffic (1338) so it is captured inbound, and skip other local traffic (spec §4.4).
fn tproxy_marks(b: &mut Builder, cfg: &CaptureConfig, lo4: &str, lo6: &str, mark: &str) {
    b.append(
        Table::Mangle,
        "PREROUTING",
        &[
            "-p",
            "tcp",
            "-m",
            "mark",
            "--mark",
            mark,
            "-j",
            "CONNMARK",
            "--save-mark",
        ],
    );
    b.append(
        Table::Mangle,
        "OUTPUT",
        &[
            "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN",
        ],
    );
    for (flag, ids) in [
        ("--uid-owner", &cfg.proxy_uids),
        ("--gid-owner", &cfg.proxy_gids),
    ] {
        for id in ids {
            let id = id.to_string();
            b.append_versioned(
                lo4,
                lo6,
                Table::Mangle,
                "OUTPUT",
                &[
                    "!",
                    "-d",
                    IP,
                    "-p",
                    "tcp",
                    "-o",
                    "lo",
                    "-m",
                    "owner",
                    flag,
                    &id,
                    "-j",
                    "MARK",
                    "--set-mark",
                    OUTBOUND_MARK,
                ],
            );
        }
    }
    b.append(
        Table::Mangle,
        "OUTPUT",
        &[
            "-p",
            "tcp",
            "-m",
            "connmark",
            "--mark",
            mark,
            "-j",
            "CONNMARK",
            "--restore-mark",
        ],
    );
    b.insert(
        true,
        true,
        Table::Mangle,
        ISTIO_INBOUND,
        1,
        &["-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN"],
    );
    b.insert(
        true,
        false,
        Table::Mangle,
        ISTIO_INBOUND,
        2,
        &[
            "-p",
            "tcp",
            "-s",
            "127.0.0.6/32",
            "-i",
            "lo",
            "-j",
            "RETURN",
        ],
    );
    b.insert(
        false,
        true,
        Table::Mangle,
        ISTIO_INBOUND,
        2,
        &["-p", "tcp", "-s", "::6/128", "-i", "lo", "-j", "RETURN"],
    );
    b.insert(
        true,
        true,
        Table::Mangle,
        ISTIO_INBOUND,
        3,
        &[
            "-p",
            "tcp",
            "-i",
            "lo",
            "-m",
            "mark",
            "!",
            "--mark",
            OUTBOUND_MARK,
            "-j",
            "RETURN",
        ],
    );
}
