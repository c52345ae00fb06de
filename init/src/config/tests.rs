use std::collections::HashMap;

use super::*;

struct FakeHost {
    ipv6: Result<bool, String>,
    resolv: Option<String>,
}

impl HostFacts for FakeHost {
    fn ipv6(&self, _dual_stack: bool) -> Result<bool, String> {
        self.ipv6.clone()
    }
    fn read_resolv_conf(&self, path: &str) -> Result<String, String> {
        self.resolv
            .clone()
            .ok_or_else(|| format!("open {path}: no such file"))
    }
    fn lookup_uid(&self, user: &str) -> Option<u32> {
        (user == "istio-proxy").then_some(1337)
    }
}

fn host() -> FakeHost {
    FakeHost {
        ipv6: Ok(false),
        resolv: Some("nameserver 10.96.0.10\n".into()),
    }
}

fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<CaptureConfig, ConfigError> {
    let cli = Cli::try_parse_args(std::iter::once("mesh-init").chain(args.iter().copied()))
        .expect("argv parses");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CaptureConfig::resolve(&cli, &env, &host())
}

#[test]
fn the_injectors_arguments_resolve_to_istios_defaults() {
    let cfg = resolve(crate::testing::INJECTOR_ARGS, &[]).expect("valid");
    assert_eq!(cfg.proxy_gids, vec![1337], "-g defaults to -u");
    assert_eq!(cfg.inbound_ports, PortSelection::All);
    assert_eq!(cfg.inbound_exclude_ports, vec![15090, 15021, 15020]);
    assert_eq!(cfg.outbound_cidrs, CidrSelection::All);
    assert!(cfg.outbound_exclude_cidrs.is_empty());
    assert_eq!(cfg.inbound_tunnel_port, 15008);
    assert_eq!(cfg.owner_groups, OwnerGroups::AllExcept(vec![]));
}

#[test]
fn a_flag_beats_its_variable_and_an_alias_beats_the_primary_variable() {
    let cfg = resolve(&["-b", "80"], &[("ISTIO_INBOUND_PORTS", "*")]).expect("valid");
    assert_eq!(cfg.inbound_ports, PortSelection::Only(vec![80]));
    let cfg = resolve(&[], &[("ISTIO_INBOUND_PORTS", "*")]).expect("valid");
    assert_eq!(cfg.inbound_ports, PortSelection::All);
    let cfg = resolve(
        &[],
        &[
            ("REDIRECT_DNS", "false"),
            ("ISTIO_META_DNS_CAPTURE", "true"),
        ],
    )
    .expect("valid");
    assert!(cfg.redirect_dns);
    let cfg = resolve(
        &["--redirect-dns=false"],
        &[("ISTIO_META_DNS_CAPTURE", "true")],
    )
    .expect("valid");
    assert!(!cfg.redirect_dns);
    let cfg = resolve(&[], &[("INVALID_DROP", "1")]).expect("valid");
    assert!(cfg.drop_invalid);
}

#[test]
fn lists_drop_empty_items_and_keep_order() {
    let cfg = resolve(&["-d", "7000,,6000,"], &[]).expect("valid");
    assert_eq!(cfg.inbound_exclude_ports, vec![7000, 6000]);
}

#[test]
fn malformed_values_name_the_flag_or_variable_and_the_value() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &["-b", "80,http"],
            &[],
            "flag --istio-inbound-ports",
            "\"http\"",
        ),
        (
            &["-z", "70000"],
            &[],
            "flag --inbound-capture-port",
            "\"70000\"",
        ),
        (
            &["-i", "10.0.0.0/33"],
            &[],
            "flag --istio-service-cidr",
            "\"10.0.0.0/33\"",
        ),
        (
            &["-x", "10.1.2.3"],
            &[],
            "flag --istio-service-exclude-cidr",
            "\"10.1.2.3\"",
        ),
        (
            &["-u", "istio-proxy"],
            &[],
            "flag --proxy-uid",
            "\"istio-proxy\"",
        ),
        (&["--dry-run=maybe"], &[], "flag --dry-run", "\"maybe\""),
        (
            &[],
            &[("ISTIO_LOCAL_EXCLUDE_PORTS", "15090,x")],
            "environment variable ISTIO_LOCAL_EXCLUDE_PORTS",
            "\"x\"",
        ),
        (
            &[],
            &[("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", "10.0.0.1/32")],
            "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR",
            "10.0.0.1/32",
        ),
        (
            &[],
            &[("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", "127.0.0.1/4")],
            "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR",
            "[8, 32]",
        ),
        (
            &["--force-iptables-binary", "iptables"],
            &[],
            "flag --force-iptables-binary",
            "legacy or nft",
        ),
        (
            &["-x", "*"],
            &[],
            "flag --istio-service-exclude-cidr",
            "OUTBOUND_IP_RANGES_EXCLUDE",
        ),
    ];
    for (args, env, source, value) in cases {
        let err = resolve(args, env).expect_err("invalid").to_string();
        assert!(err.contains(source), "{args:?} {env:?}: {err}");
        assert!(err.contains(value), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn more_than_64_owner_groups_are_refused() {
    let groups: Vec<String> = (0..65).map(|g| g.to_string()).collect();
    let err = resolve(&[], &[("ISTIO_OUTBOUND_OWNER_GROUPS", &groups.join(","))]).unwrap_err();
    assert!(err.to_string().contains("at most 64"));
}

#[test]
fn dns_servers_come_from_the_resolver_only_when_needed() {
    let cfg = resolve(&["--redirect-dns"], &[]).expect("valid");
    assert_eq!(cfg.dns_servers_v4, vec!["10.96.0.10"]);
    assert!(cfg.dns_capture());
    let cfg = resolve(&["--redirect-dns", "--capture-all-dns"], &[]).expect("valid");
    assert!(cfg.dns_servers_v4.is_empty() && cfg.dns_capture());
    let cli = Cli::try_parse_args(["mesh-init", "--redirect-dns"]).expect("parses");
    let no_file = FakeHost {
        ipv6: Ok(false),
        resolv: None,
    };
    let err = CaptureConfig::resolve(&cli, &HashMap::new(), &no_file).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to load /etc/resolv.conf"),
        "{err}"
    );
}

#[test]
fn resolv_conf_servers_are_split_by_family_and_kept_as_written() {
    let (v4, v6) = parse_resolv_conf(
        "# comment\nsearch svc.cluster.local\nnameserver 10.96.0.10\nnameserver ::127.0.0.53\n\
         nameserver fe80::1%eth0\noptions ndots:5\n",
    );
    assert_eq!(v4, vec!["10.96.0.10"]);
    assert_eq!(v6, vec!["::127.0.0.53"]);
}

#[test]
fn host_ipv6_override_skips_detection() {
    let cli = Cli::try_parse_args(["mesh-init", "--host-ipv6", "true"]).expect("parses");
    let broken = FakeHost {
        ipv6: Err("no valid local IP address found".into()),
        resolv: None,
    };
    let cfg = CaptureConfig::resolve(&cli, &HashMap::new(), &broken).expect("valid");
    assert!(cfg.ipv6);
    let cli = Cli::try_parse_args(["mesh-init"]).expect("parses");
    let err = CaptureConfig::resolve(&cli, &HashMap::new(), &broken).unwrap_err();
    assert!(err.to_string().contains("no valid local IP address found"));
}

#[test]
fn probe_timeout_takes_go_durations() {
    let cfg = resolve(&["--probe-timeout", "1m30s"], &[]).expect("valid");
    assert_eq!(cfg.run.probe_timeout, Duration::from_secs(90));
    let cfg = resolve(&[], &[("PROBE_TIMEOUT", "500ms")]).expect("valid");
    assert_eq!(cfg.run.probe_timeout, Duration::from_millis(500));
    assert!(resolve(&["--probe-timeout", "5"], &[]).is_err());
}
