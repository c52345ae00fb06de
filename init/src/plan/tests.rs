//! Properties of every plan, checked by walking the nat OUTPUT chain the way the kernel does
//! for a locally generated packet.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{Family, Rule, Table, iptables};
use crate::cli::Cli;
use crate::config::{CaptureConfig, Cidr, HostFacts};

struct Host;

impl HostFacts for Host {
    fn ipv6(&self, _: bool) -> Result<bool, String> {
        Ok(false)
    }
    fn read_resolv_conf(&self, _: &str) -> Result<String, String> {
        Ok("nameserver 10.96.0.10\nnameserver fd00::10\n".into())
    }
    fn lookup_uid(&self, _: &str) -> Option<u32> {
        None
    }
}

/// A locally generated packet leaving through eth0 (or lo).
struct Packet {
    oif: &'static str,
    dst: IpAddr,
    proto: &'static str,
    dport: u16,
    uid: u32,
    gid: u32,
}

fn contains(cidr: &str, ip: IpAddr) -> bool {
    let c = Cidr::parse(cidr).expect("plan CIDRs parse");
    match (c.addr, ip) {
        (IpAddr::V4(net), IpAddr::V4(a)) => {
            let mask = if c.len == 0 {
                0
            } else {
                u32::MAX << (32 - c.len)
            };
            u32::from(net) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(a)) => {
            let mask = if c.len == 0 {
                0
            } else {
                u128::MAX << (128 - c.len)
            };
            u128::from(net) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether `rule` matches `p`, for the matches our plans use.
fn matches(rule: &Rule, p: &Packet) -> bool {
    let a = &rule.args;
    let mut i = 0;
    let mut negate = false;
    while i < a.len() {
        let arg = a[i].as_str();
        let value = a.get(i + 1).map(String::as_str).unwrap_or_default();
        let hit = match arg {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-j" => return true,
            "-m" => {
                i += 2;
                continue;
            }
            "-o" => p.oif == value,
            "-i" | "-s" => false, // OUTPUT packets from the pod IP: no in-interface, no 127.0.0.6
            "-d" => contains(value, p.dst),
            "-p" => p.proto == value,
            "--dport" => p.dport.to_string() == value,
            "--dports" => value.split(',').any(|v| v == p.dport.to_string()),
            "--uid-owner" => p.uid.to_string() == value,
            "--gid-owner" => p.gid.to_string() == value,
            other => panic!("the walker does not know {other} in {a:?}"),
        };
        if hit == negate {
            return false;
        }
        negate = false;
        i += 2;
    }
    true
}

/// Walks nat OUTPUT; returns the REDIRECT port the packet ends on, if any.
fn nat_output(rules: &[Rule], chain: &str, p: &Packet) -> Option<String> {
    for r in rules
        .iter()
        .filter(|r| r.table == Table::Nat && r.chain == chain)
    {
        if !matches(r, p) {
            continue;
        }
        match r
            .jump_target()
            .unwrap_or_else(|| r.args[r.args.len() - 3].as_str())
        {
            "RETURN" => return None,
            "REDIRECT" | "--to-ports" | "--to-port" => {
                return Some(r.args.last().cloned().unwrap_or_default());
            }
            target if target.starts_with("ISTIO") => {
                if let Some(port) = nat_output(rules, target, p) {
                    return Some(port);
                }
            }
            _ => {}
        }
    }
    None
}

fn configs() -> Vec<CaptureConfig> {
    let mut out = Vec::new();
    let outbound: &[&[&str]] = &[
        &["-i", "*"],
        &["-i", "10.0.0.0/8,fd00::/8"],
        &["-q", "8080"],
        &["-i", "127.0.0.0/8"],
        &["-i", "*", "-o", "8080"],
        &["-i", "*", "-x", "10.96.0.0/12"],
    ];
    let dns: &[&[&str]] = &[
        &[],
        &["--redirect-dns"],
        &["--redirect-dns", "--capture-all-dns"],
    ];
    let modes: &[&[&str]] = &[&["-b", "*"], &["-m", "TPROXY", "-b", "*", "-d", "15021"]];
    let owners: &[&[&str]] = &[&["-u", "1337"], &["-u", "3,1337", "-g", "1,2"]];
    for o in outbound {
        for d in dns {
            for m in modes {
                for u in owners {
                    let args = ["mesh-init", "--host-ipv6=true"]
                        .iter()
                        .chain(o.iter())
                        .chain(d.iter())
                        .chain(m.iter())
                        .chain(u.iter())
                        .copied();
                    let cli = Cli::try_parse_args(args).expect("args parse");
                    out.push(CaptureConfig::resolve(&cli, &HashMap::new(), &Host).expect("valid"));
                }
            }
        }
    }
    out
}

#[test]
fn no_plan_captures_the_proxys_own_outbound_traffic() {
    for cfg in configs() {
        let plan = iptables::plan(&cfg);
        for (family, dst) in [
            (Family::V4, "10.1.2.3"),
            (Family::V4, "10.96.0.10"),
            (Family::V6, "fd00::10"),
        ] {
            for (proto, dport) in [("tcp", 8080), ("tcp", 53), ("udp", 53)] {
                let p = Packet {
                    oif: "eth0",
                    dst: dst.parse().expect("ip"),
                    proto,
                    dport,
                    uid: 1337,
                    gid: 1337,
                };
                let rules = plan.family(family);
                assert_eq!(
                    nat_output(rules, "OUTPUT", &p),
                    None,
                    "proxy traffic to {dst}:{dport}/{proto} captured with {cfg:?}"
                );
            }
        }
    }
}

#[test]
fn the_walker_sees_app_traffic_captured_when_everything_is_captured() {
    let cfg = &configs()[0]; // -i '*'
    let p = Packet {
        oif: "eth0",
        dst: "10.1.2.3".parse().expect("ip"),
        proto: "tcp",
        dport: 8080,
        uid: 1000,
        gid: 1000,
    };
    assert_eq!(
        nat_output(&iptables::plan(cfg).v4, "OUTPUT", &p),
        Some("15001".into())
    );
    let lo = Packet {
        oif: "lo",
        dst: "127.0.0.1".parse().expect("ip"),
        ..p
    };
    assert_eq!(
        nat_output(&iptables::plan(cfg).v4, "OUTPUT", &lo),
        None,
        "localhost is not captured"
    );
}
