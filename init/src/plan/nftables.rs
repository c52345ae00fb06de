//! The native nftables plan (`--native-nftables`), mirroring Istio's `istio-nftables`
//! generator (spec §10): the same decisions as [`super::iptables`], expressed as rules of three
//! `inet` tables, rendered as one `nft -f` transaction.

use crate::config::{CaptureConfig, CidrSelection, InterceptionMode, OwnerGroups, PortSelection};

/// One of Istio's `inet` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftTable {
    Nat,
    Mangle,
    Raw,
}

impl NftTable {
    pub const ALL: [NftTable; 3] = [NftTable::Nat, NftTable::Mangle, NftTable::Raw];

    pub fn name(self) -> &'static str {
        match self {
            NftTable::Nat => "istio-proxy-nat",
            NftTable::Mangle => "istio-proxy-mangle",
            NftTable::Raw => "istio-proxy-raw",
        }
    }

    /// The table's chains in creation order; base chains carry their hook.
    fn chains(self) -> &'static [(&'static str, Option<&'static str>)] {
        match self {
            NftTable::Nat => &[
                ("prerouting", Some("type nat hook prerouting priority -100")),
                ("output", Some("type nat hook output priority -100")),
                ("istio-inbound", None),
                ("istio-redirect", None),
                ("istio-in-redirect", None),
                ("istio-output", None),
                ("istio-output-dns", None),
            ],
            NftTable::Mangle => &[
                (
                    "prerouting",
                    Some("type filter hook prerouting priority -150"),
                ),
                ("output", Some("type route hook output priority -150")),
                ("istio-divert", None),
                ("istio-tproxy", None),
                ("istio-inbound", None),
                ("istio-drop", None),
            ],
            NftTable::Raw => &[
                (
                    "prerouting",
                    Some("type filter hook prerouting priority -300"),
                ),
                ("output", Some("type filter hook output priority -300")),
                ("istio-inbound", None),
                ("istio-output-dns", None),
            ],
        }
    }
}

/// One nftables rule: statement text without the `add rule inet <table> <chain>` head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRule {
    pub table: NftTable,
    pub chain: &'static str,
    /// `insert ... index N` (0-based) instead of `add`.
    pub index: Option<u32>,
    pub rule: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NftPlan {
    pub rules: Vec<NftRule>,
}

struct Builder {
    rules: Vec<NftRule>,
    ipv6: bool,
}

impl Builder {
    /// `matches` then `counter` then the statement, as Istio's rules read.
    fn add(&mut self, table: NftTable, chain: &'static str, matches: &str, statement: &str) {
        self.push(table, chain, None, matches, statement);
    }

    fn add6(&mut self, table: NftTable, chain: &'static str, matches: &str, statement: &str) {
        if self.ipv6 {
            self.add(table, chain, matches, statement);
        }
    }

    fn push(&mut self, table: NftTable, chain: &'static str, index: Option<u32>, m: &str, s: &str) {
        let rule = if m.is_empty() {
            format!("counter {s}")
        } else {
            format!("{m} counter {s}")
        };
        self.rules.push(NftRule {
            table,
            chain,
            index,
            rule,
        });
    }
}

use NftTable::{Mangle, Nat, Raw};

/// The nftables rules that capture the pod's traffic as `cfg` asks.
pub fn plan(cfg: &CaptureConfig) -> NftPlan {
    let mut b = Builder {
        rules: Vec::new(),
        ipv6: cfg.ipv6,
    };
    let tproxy = cfg.interception == InterceptionMode::Tproxy;
    let dns = cfg.dns_capture();
    let lo4 = cfg.loopback_cidr.to_string();

    for nic in &cfg.exclude_interfaces {
        b.add(Nat, "prerouting", &format!("iifname {nic}"), "return");
        b.add(Nat, "output", &format!("oifname {nic}"), "return");
    }
    if tproxy {
        for nic in &cfg.exclude_interfaces {
            b.add(Mangle, "prerouting", &format!("iifname {nic}"), "return");
            b.add(Mangle, "output", &format!("oifname {nic}"), "return");
        }
    }
    for nic in &cfg.kube_virt_interfaces {
        b.push(
            Nat,
            "prerouting",
            Some(0),
            &format!("iifname {nic}"),
            "return",
        );
    }
    if cfg.drop_invalid {
        b.add(
            Mangle,
            "prerouting",
            "meta l4proto tcp ct state invalid",
            "jump istio-drop",
        );
        b.add(Mangle, "istio-drop", "", "drop");
    }
    let tunnel = cfg.inbound_tunnel_port;
    b.add(
        Nat,
        "istio-inbound",
        &format!("meta l4proto tcp tcp dport {tunnel}"),
        "return",
    );
    b.add(
        Nat,
        "istio-redirect",
        "meta l4proto tcp",
        &format!("redirect to :{}", cfg.proxy_port),
    );
    b.add(
        Nat,
        "istio-in-redirect",
        "meta l4proto tcp",
        &format!("redirect to :{}", cfg.inbound_capture_port),
    );
    inbound(&mut b, cfg, &lo4);

    b.add(Nat, "output", "", "jump istio-output");
    for port in &cfg.outbound_exclude_ports {
        b.add(Nat, "istio-output", &format!("tcp dport {port}"), "return");
        b.add(Nat, "istio-output", &format!("udp dport {port}"), "return");
    }
    b.add(
        Nat,
        "istio-output",
        "oifname lo ip saddr 127.0.0.6/32",
        "return",
    );
    b.add6(
        Nat,
        "istio-output",
        "oifname lo ip6 saddr ::6/128",
        "return",
    );

    let loopback_included = matches!(&cfg.outbound_cidrs,
        CidrSelection::Only(cidrs) if cidrs.iter().any(|c| c.addr.is_loopback()));
    let owners = cfg
        .proxy_uids
        .iter()
        .map(|u| ("skuid", *u, dns))
        .chain(cfg.proxy_gids.iter().map(|g| ("skgid", *g, false)));
    for (key, id, dns_ports) in owners {
        // With DNS capture the agent's own TCP DNS on lo is not hairpinned (UIDs only, as Istio).
        let ports = if dns_ports {
            format!("{{ 53, {tunnel} }}")
        } else {
            tunnel.to_string()
        };
        let jump = "jump istio-in-redirect";
        b.add(
            Nat,
            "istio-output",
            &format!(
                "oifname lo meta l4proto tcp ip daddr != {lo4} tcp dport != {ports} {key} {id}"
            ),
            jump,
        );
        b.add6(
            Nat,
            "istio-output",
            &format!(
                "oifname lo meta l4proto tcp ip6 daddr != ::1/128 tcp dport != {ports} {key} {id}"
            ),
            jump,
        );
        if !loopback_included {
            if dns {
                b.add(
                    Nat,
                    "istio-output",
                    &format!("oifname lo meta l4proto tcp tcp dport != 53 {key} != {id}"),
                    "return",
                );
            } else {
                b.add(
                    Nat,
                    "istio-output",
                    &format!("oifname lo {key} != {id}"),
                    "return",
                );
            }
        }
        b.add(Nat, "istio-output", &format!("{key} {id}"), "return");
    }

    match &cfg.owner_groups {
        OwnerGroups::AllExcept(groups) => {
            for g in groups {
                b.add(Nat, "istio-output", &format!("skgid {g}"), "return");
            }
        }
        OwnerGroups::Only(groups) => {
            let m: Vec<String> = groups.iter().map(|g| format!("skgid != {g}")).collect();
            b.add(Nat, "istio-output", &m.join(" "), "return");
        }
    }
    if dns {
        dns_redirect(&mut b, cfg);
    }
    b.add(Nat, "istio-output", &format!("ip daddr {lo4}"), "return");
    b.add6(Nat, "istio-output", "ip6 daddr ::1/128", "return");
    for c in cfg
        .outbound_exclude_cidrs
        .iter()
        .filter(|c| c.addr.is_ipv4())
    {
        b.add(Nat, "istio-output", &format!("ip daddr {c}"), "return");
    }
    for c in cfg
        .outbound_exclude_cidrs
        .iter()
        .filter(|c| c.addr.is_ipv6())
    {
        b.add6(Nat, "istio-output", &format!("ip6 daddr {c}"), "return");
    }
    for port in &cfg.outbound_ports {
        b.add(
            Nat,
            "istio-output",
            &format!("tcp dport {port}"),
            "jump istio-redirect",
        );
    }
    outbound_include(&mut b, cfg);
    if tproxy {
        tproxy_marks(&mut b, cfg, &lo4);
    }
    NftPlan { rules: b.rules }
}

fn inbound(b: &mut Builder, cfg: &CaptureConfig, lo4: &str) {
    if cfg.inbound_ports == PortSelection::None {
        return;
    }
    let tproxy = cfg.interception == InterceptionMode::Tproxy;
    let mark = cfg.tproxy_mark;
    let port = cfg.inbound_capture_port;
    let table = if tproxy {
        b.add(Mangle, "istio-divert", "", &format!("meta mark set {mark}"));
        b.add(Mangle, "istio-divert", "", "accept");
        b.add(
            Mangle,
            "istio-tproxy",
            &format!(
                "meta l4proto tcp ip daddr != {lo4} tproxy ip to :{port} meta mark set {mark}"
            ),
            "accept",
        );
        b.add6(
            Mangle,
            "istio-tproxy",
            &format!(
                "meta l4proto tcp ip6 daddr != ::1/128 tproxy ip6 to :{port} meta mark set {mark}"
            ),
            "accept",
        );
        Mangle
    } else {
        Nat
    };
    b.add(
        table,
        "prerouting",
        "meta l4proto tcp",
        "jump istio-inbound",
    );
    match &cfg.inbound_ports {
        PortSelection::All => {
            for p in &cfg.inbound_exclude_ports {
                b.add(
                    table,
                    "istio-inbound",
                    &format!("meta l4proto tcp tcp dport {p}"),
                    "return",
                );
            }
            if tproxy {
                b.add(
                    Mangle,
                    "istio-inbound",
                    "meta l4proto tcp ct state related,established",
                    "jump istio-divert",
                );
                b.add(
                    Mangle,
                    "istio-inbound",
                    "meta l4proto tcp",
                    "jump istio-tproxy",
                );
            } else {
                b.add(
                    Nat,
                    "istio-inbound",
                    "meta l4proto tcp",
                    "jump istio-in-redirect",
                );
            }
        }
        PortSelection::Only(ports) => {
            for p in ports {
                if tproxy {
                    b.add(
                        Mangle,
                        "istio-inbound",
                        &format!("meta l4proto tcp ct state related,established tcp dport {p}"),
                        "jump istio-divert",
                    );
                    b.add(
                        Mangle,
                        "istio-inbound",
                        &format!("meta l4proto tcp tcp dport {p}"),
                        "jump istio-tproxy",
                    );
                } else {
                    b.add(
                        Nat,
                        "istio-inbound",
                        &format!("meta l4proto tcp tcp dport {p}"),
                        "jump istio-in-redirect",
                    );
                }
            }
        }
        PortSelection::None => {}
    }
}

fn dns_redirect(b: &mut Builder, cfg: &CaptureConfig) {
    let all = cfg.capture_all_dns;
    let (v4, v6) = (&cfg.dns_servers_v4, &cfg.dns_servers_v6);
    let to = "redirect to :15053";
    b.add(Raw, "output", "", "jump istio-output-dns");
    if all || !v4.is_empty() || !v6.is_empty() {
        b.add(Nat, "istio-output", "", "jump istio-output-dns");
    }
    for proto in ["tcp", "udp"] {
        if all {
            let l4 = if proto == "tcp" {
                "meta l4proto tcp "
            } else {
                ""
            };
            b.add(
                Nat,
                "istio-output-dns",
                &format!("{l4}{proto} dport 53"),
                to,
            );
            continue;
        }
        for s in v4 {
            b.add(
                Nat,
                "istio-output-dns",
                &format!("ip daddr {s}/32 {proto} dport 53"),
                to,
            );
        }
        for s in v6 {
            b.add6(
                Nat,
                "istio-output-dns",
                &format!("ip6 daddr {s}/128 {proto} dport 53"),
                to,
            );
        }
    }
    for (key, ids) in [("skuid", &cfg.proxy_uids), ("skgid", &cfg.proxy_gids)] {
        for id in ids {
            b.add(
                Raw,
                "istio-output-dns",
                &format!("udp dport 53 meta {key} {id}"),
                "ct zone set 1",
            );
            b.add(
                Raw,
                "istio-output-dns",
                &format!("udp sport 15053 meta {key} {id}"),
                "ct zone set 2",
            );
        }
    }
    if all {
        b.add(Raw, "prerouting", "", "jump istio-inbound");
        b.add(Raw, "istio-output-dns", "udp dport 53", "ct zone set 2");
        b.add(Raw, "istio-inbound", "udp sport 53", "ct zone set 1");
        return;
    }
    if !v4.is_empty() || !v6.is_empty() {
        b.add(Raw, "prerouting", "", "jump istio-inbound");
    }
    for s in v4 {
        b.add(
            Raw,
            "istio-output-dns",
            &format!("udp dport 53 ip daddr {s}/32"),
            "ct zone set 2",
        );
        b.add(
            Raw,
            "istio-inbound",
            &format!("udp sport 53 ip saddr {s}/32"),
            "ct zone set 1",
        );
    }
    for s in v6 {
        b.add6(
            Raw,
            "istio-output-dns",
            &format!("udp dport 53 ip6 daddr {s}/128"),
            "ct zone set 2",
        );
        b.add6(
            Raw,
            "istio-inbound",
            &format!("udp sport 53 ip6 saddr {s}/128"),
            "ct zone set 1",
        );
    }
}

fn outbound_include(b: &mut Builder, cfg: &CaptureConfig) {
    match &cfg.outbound_cidrs {
        CidrSelection::None => {}
        CidrSelection::All => {
            b.add(Nat, "istio-output", "", "jump istio-redirect");
            for nic in &cfg.kube_virt_interfaces {
                b.push(
                    Nat,
                    "prerouting",
                    Some(0),
                    &format!("iifname {nic}"),
                    "jump istio-redirect",
                );
            }
        }
        CidrSelection::Only(cidrs) => {
            for v4 in [true, false] {
                if !v4 && !b.ipv6 {
                    continue;
                }
                let ip = if v4 { "ip" } else { "ip6" };
                for c in cidrs.iter().filter(|c| c.addr.is_ipv4() == v4) {
                    for nic in &cfg.kube_virt_interfaces {
                        b.push(
                            Nat,
                            "prerouting",
                            Some(0),
                            &format!("iifname {nic} {ip} daddr {c}"),
                            "jump istio-redirect",
                        );
                    }
                    b.add(
                        Nat,
                        "istio-output",
                        &format!("{ip} daddr {c}"),
                        "jump istio-redirect",
                    );
                }
            }
        }
    }
}

fn tproxy_marks(b: &mut Builder, cfg: &CaptureConfig, lo4: &str) {
    let mark = cfg.tproxy_mark;
    b.add(
        Mangle,
        "prerouting",
        &format!("meta l4proto tcp mark {mark}"),
        "ct mark set mark",
    );
    b.add(
        Mangle,
        "output",
        &format!("oifname lo meta l4proto tcp mark {mark}"),
        "return",
    );
    for (key, ids) in [("skuid", &cfg.proxy_uids), ("skgid", &cfg.proxy_gids)] {
        for id in ids {
            b.add(
                Mangle,
                "output",
                &format!("oifname lo meta l4proto tcp ip daddr != {lo4} {key} {id}"),
                "meta mark set 1338",
            );
            b.add6(
                Mangle,
                "output",
                &format!("oifname lo meta l4proto tcp ip6 daddr != ::1/128 {key} {id}"),
                "meta mark set 1338",
            );
        }
    }
    b.add(
        Mangle,
        "output",
        &format!("meta l4proto tcp ct mark {mark}"),
        "meta mark set ct mark",
    );
    b.push(
        Mangle,
        "istio-inbound",
        Some(0),
        &format!("meta l4proto tcp mark {mark}"),
        "return",
    );
    b.push(
        Mangle,
        "istio-inbound",
        Some(1),
        "iifname lo meta l4proto tcp ip saddr 127.0.0.6/32",
        "return",
    );
    if b.ipv6 {
        b.push(
            Mangle,
            "istio-inbound",
            Some(1),
            "iifname lo meta l4proto tcp ip6 saddr ::6/128",
            "return",
        );
    }
    b.push(
        Mangle,
        "istio-inbound",
        Some(2),
        "iifname lo meta l4proto tcp mark != 1338",
        "return",
    );
}

/// The `nft -f` transaction: per table, create, flush (what makes re-runs idempotent), the
/// chains that get rules, then the rules. An insert at or past the chain's end becomes an
/// append, because nftables refuses an index that names no existing rule.
pub fn render(plan: &NftPlan) -> String {
    let mut out = String::new();
    for table in NftTable::ALL {
        let rules: Vec<&NftRule> = plan.rules.iter().filter(|r| r.table == table).collect();
        let chains: Vec<_> = table
            .chains()
            .iter()
            .filter(|(name, _)| rules.iter().any(|r| r.chain == *name))
            .collect();
        if chains.is_empty() {
            continue;
        }
        let t = table.name();
        out.push_str(&format!("add table inet {t}\nflush table inet {t}\n"));
        for (name, hook) in chains {
            match hook {
                Some(h) => out.push_str(&format!("add chain inet {t} {name} {{ {h} ; }}\n")),
                None => out.push_str(&format!("add chain inet {t} {name}\n")),
            }
        }
        let mut count: Vec<(&str, u32)> = Vec::new();
        for r in rules {
            let n = match count.iter_mut().find(|(c, _)| *c == r.chain) {
                Some((_, n)) => n,
                None => {
                    count.push((r.chain, 0));
                    &mut count.last_mut().expect("just pushed").1
                }
            };
            match r.index {
                Some(i) if i < *n => out.push_str(&format!(
                    "insert rule inet {t} {} index {i} {}\n",
                    r.chain, r.rule
                )),
                _ => out.push_str(&format!("add rule inet {t} {} {}\n", r.chain, r.rule)),
            }
            *n += 1;
        }
    }
    out
}

/// The transaction that removes Istio's tables (`add` first so a missing table is no error).
pub fn render_cleanup() -> String {
    NftTable::ALL
        .iter()
        .map(|t| format!("add table inet {0}\ndelete table inet {0}\n", t.name()))
        .collect()
}
