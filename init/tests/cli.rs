//! The command line as users and the injector meet it: every Istio flag documented, bad input
//! rejected with the flag and value named and exit code 2, dry runs without privileges.

use std::process::{Command, Output};

use mesh_init::testing::INJECTOR_ARGS;

fn mesh_init(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-init"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args)
        .output()
        .expect("mesh-init runs")
}

#[test]
fn help_documents_every_istio_iptables_flag_and_variable() {
    let out = mesh_init(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let flags = [
        "-p, --envoy-port",
        "-z, --inbound-capture-port",
        "-e, --inbound-tunnel-port",
        "-u, --proxy-uid",
        "-g, --proxy-gid",
        "-m, --istio-inbound-interception-mode",
        "-t, --istio-inbound-tproxy-mark",
        "-r, --istio-inbound-tproxy-route-table",
        "-b, --istio-inbound-ports",
        "-d, --istio-local-exclude-ports",
        "-c, --istio-exclude-interfaces",
        "-i, --istio-service-cidr",
        "-x, --istio-service-exclude-cidr",
        "-q, --istio-outbound-ports",
        "-o, --istio-local-outbound-ports-exclude",
        "-k, --kube-virt-interfaces",
        "-n, --dry-run",
        "--redirect-dns",
        "--capture-all-dns",
        "--drop-invalid",
        "--dual-stack",
        "--skip-rule-apply",
        "--run-validation",
        "--iptables-probe-port",
        "--probe-timeout",
        "--network-namespace",
        "--cni-mode",
        "--reconcile",
        "--cleanup-only",
        "--force-apply",
        "--native-nftables",
        "--force-iptables-binary",
        "--log_output_level",
        "--log_as_json",
        "--host-ipv6",
        "--resolv-conf",
        "--xtables-wait",
        "ISTIO_OUTBOUND_OWNER_GROUPS",
        "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE",
        "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR",
        "ISTIO_META_DNS_CAPTURE",
        "INVALID_DROP",
        "ISTIO_DUAL_STACK",
        "DRY_RUN_FILE_PATH",
    ];
    for flag in flags {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error_naming_it() {
    let out = mesh_init(&["-p", "15001", "--capture-everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--capture-everything"));
}

#[test]
fn malformed_values_are_usage_errors_naming_flag_and_value() {
    for (args, needle) in [
        (
            &["-d", "15090,health"][..],
            "flag --istio-local-exclude-ports: \"health\"",
        ),
        (
            &["-i", "10.0.0.0/40"][..],
            "flag --istio-service-cidr: \"10.0.0.0/40\"",
        ),
        (&["-u", "-5"][..], "flag --proxy-uid: \"-5\""),
        (&["-x", "*"][..], "flag --istio-service-exclude-cidr: \"*\""),
    ] {
        let mut all = args.to_vec();
        all.extend(["--dry-run", "--host-ipv6=false"]);
        let out = mesh_init(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stderr.contains("fix:"), "{stderr}");
    }
}

#[test]
fn a_malformed_environment_value_names_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-init"))
        .env_clear()
        .env("ISTIO_INBOUND_PORTS", "80,eighty")
        .args(["--dry-run", "--host-ipv6=false"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("environment variable ISTIO_INBOUND_PORTS: \"eighty\"")
    );
}

#[test]
fn dry_run_needs_no_privileges_and_writes_the_record_file() {
    let file = std::env::temp_dir().join(format!("mesh-init-dry-run-{}.txt", std::process::id()));
    let args = [INJECTOR_ARGS, &["--dry-run", "--host-ipv6=false"]].concat();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
        c.arg(env!("CARGO_BIN_EXE_mesh-init"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_mesh-init"))
    };
    let _ = std::fs::remove_file(&file);
    std::fs::write(&file, "").expect("record file");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    let out = cmd
        .env_clear()
        .env("DRY_RUN_FILE_PATH", &file)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = record.lines().collect();
    assert_eq!(lines[..3], ["iptables-save", "ip6tables-save", "* nat"]);
    assert!(lines.contains(&"-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN"));
    assert!(lines.contains(&"-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN"));
    assert_eq!(lines.last(), Some(&"iptables-save"));
    assert_eq!(std::fs::read_to_string(&file).expect("record file"), record);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn skip_rule_apply_programs_nothing_even_in_a_dry_run() {
    let out = mesh_init(&[
        "-b",
        "*",
        "-i",
        "*",
        "--skip-rule-apply",
        "--dry-run",
        "--host-ipv6=false",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}
