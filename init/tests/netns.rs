//! Real traffic through the rules mesh-init installs, in network namespaces these tests create
//! (a "pod" and a "peer" joined by a veth pair). Needs root and `ip netns`; skips otherwise.
//! Every test uses its own namespaces (unique names, deleted on drop) and never touches the
//! host's rules.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Output;
use std::time::Duration;

use mesh_init::testing::{
    INJECTOR_ARGS, Netns, PEER_V4, PEER_V4_OTHER, PEER_V6, POD_V4, POD_V6, PodNet, accept_any,
    normalise_save, original_dst, sh, unavailable,
};

const PROXY: Option<(u32, u32)> = Some((1337, 1337));
const APP: Option<(u32, u32)> = Some((1000, 1000));
const WAIT: Duration = Duration::from_secs(3);
/// A dual-stack pod's first address is IPv4, so Istio (and mesh-init) add IPv6 rules only
/// with dual stack on, which the injector passes through proxyMetadata.
const DUAL_STACK: &[(&str, &str)] = &[("ISTIO_DUAL_STACK", "true")];

macro_rules! require_netns {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("ip literal"), port)
}

/// Runs mesh-init inside `ns` with a clean environment.
fn mesh_init(ns: &Netns, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_mesh-init"));
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("mesh-init runs")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mesh-init failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn save(ns: &Netns, program: &str) -> String {
    let out = ns.command(program).output().expect("save runs");
    normalise_save(&String::from_utf8_lossy(&out.stdout))
}

/// Listeners of one namespace, by name, all polled together.
struct Listeners(Vec<(&'static str, TcpListener)>);

impl Listeners {
    fn open(ns: &Netns, specs: &[(&'static str, SocketAddr)]) -> Listeners {
        // Separate IPv4 and IPv6 sockets on one port, as a dual-stack proxy has.
        ns.command("sh")
            .args(["-c", "echo 1 > /proc/sys/net/ipv6/bindv6only"])
            .output()
            .expect("sysctl");
        Listeners(
            specs
                .iter()
                .map(|(name, a)| {
                    (
                        *name,
                        ns.listen(*a, PROXY)
                            .unwrap_or_else(|e| panic!("bind {a}: {e}")),
                    )
                })
                .collect(),
        )
    }

    /// Which listener got the next connection, and the original destination it saw.
    fn landed(&self) -> Option<(&'static str, Option<SocketAddr>)> {
        let all: Vec<&TcpListener> = self.0.iter().map(|(_, l)| l).collect();
        accept_any(&all, WAIT).map(|(i, s)| (self.0[i].0, original_dst(&s).ok()))
    }

    fn quiet(&self) -> Option<&'static str> {
        let all: Vec<&TcpListener> = self.0.iter().map(|(_, l)| l).collect();
        accept_any(&all, Duration::from_millis(200)).map(|(i, _)| self.0[i].0)
    }
}

fn pod_listeners(ns: &Netns) -> Listeners {
    Listeners::open(
        ns,
        &[
            ("outbound", addr("0.0.0.0", 15001)),
            ("outbound6", addr("::", 15001)),
            ("inbound", addr("0.0.0.0", 15006)),
            ("inbound6", addr("::", 15006)),
            ("app", addr("0.0.0.0", 9090)),
            ("app6", addr("::", 9090)),
            ("health", addr("0.0.0.0", 15021)),
            ("localhost", addr("127.0.0.1", 7777)),
        ],
    )
}

fn peer_listeners(ns: &Netns) -> Listeners {
    Listeners::open(
        ns,
        &[
            ("peer", addr("0.0.0.0", 8080)),
            ("peer6", addr("::", 8080)),
            ("peer-excluded-port", addr("0.0.0.0", 9999)),
        ],
    )
}

/// A connection from `from` as `ids` to `to`; returns where it landed (pod side first).
fn connect(
    from: &Netns,
    ids: Option<(u32, u32)>,
    to: SocketAddr,
    pod: &Listeners,
    peer: &Listeners,
) -> (&'static str, Option<SocketAddr>) {
    let _client = from
        .connect(to, ids)
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
    if let Some(hit) = pod.landed_quick() {
        return hit;
    }
    peer.landed()
        .unwrap_or_else(|| panic!("connection to {to} landed nowhere"))
}

impl Listeners {
    fn landed_quick(&self) -> Option<(&'static str, Option<SocketAddr>)> {
        let all: Vec<&TcpListener> = self.0.iter().map(|(_, l)| l).collect();
        accept_any(&all, Duration::from_millis(300))
            .map(|(i, s)| (self.0[i].0, original_dst(&s).ok()))
    }
}

/// The captures of spec §11's table, checked by where connections land and the original
/// destination read there.
fn assert_istio_capture(net: &PodNet, pod: &Listeners, peer: &Listeners, ipv6: bool) {
    let to_peer = addr(PEER_V4, 8080);
    assert_eq!(
        connect(&net.pod, APP, to_peer, pod, peer),
        ("outbound", Some(to_peer)),
        "an app connection to the peer lands on 15001 with the original destination"
    );
    assert_eq!(
        connect(&net.pod, PROXY, to_peer, pod, peer).0,
        "peer",
        "the proxy's own connections are not captured"
    );
    let local = addr("127.0.0.1", 7777);
    assert_eq!(
        connect(&net.pod, APP, local, pod, peer),
        ("localhost", Some(local)),
        "localhost is not captured (SO_ORIGINAL_DST is the dialled address itself)"
    );
    let app = addr(POD_V4, 9090);
    assert_eq!(
        connect(&net.peer, None, app, pod, peer),
        ("inbound", Some(app)),
        "inbound from the peer lands on 15006"
    );
    assert_eq!(
        connect(&net.peer, None, addr(POD_V4, 15021), pod, peer).0,
        "health",
        "inbound ports in -d bypass 15006"
    );
    assert_eq!(
        connect(&net.pod, PROXY, app, pod, peer),
        ("inbound", Some(app)),
        "the proxy calling its own pod IP is sent to the inbound listener"
    );
    if ipv6 {
        let to_peer6 = addr(PEER_V6, 8080);
        assert_eq!(
            connect(&net.pod, APP, to_peer6, pod, peer),
            ("outbound6", Some(to_peer6))
        );
        assert_eq!(connect(&net.pod, PROXY, to_peer6, pod, peer).0, "peer6");
        let app6 = addr(POD_V6, 9090);
        assert_eq!(
            connect(&net.peer, None, app6, pod, peer),
            ("inbound6", Some(app6))
        );
    }
    assert_eq!(pod.quiet(), None, "no stray connection reached the pod");
}

/// Injector arguments, both families, one backend: capture works, a re-run leaves one copy,
/// cleanup restores the namespace exactly (a foreign rule survives).
fn istio_init_in_a_namespace(backend: &str) {
    let net = PodNet::new(&backend[..1], true).expect("namespaces");
    let (save4, save6) = (
        format!("iptables-{backend}-save"),
        format!("ip6tables-{backend}-save"),
    );
    for tool in [
        format!("iptables-{backend}"),
        format!("ip6tables-{backend}"),
    ] {
        let o = net
            .pod
            .command(&tool)
            .args([
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "eth0",
                "-p",
                "udp",
                "--dport",
                "9",
                "-j",
                "RETURN",
            ])
            .output()
            .expect("foreign rule");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let before = (save(&net.pod, &save4), save(&net.pod, &save6));
    let pod = pod_listeners(&net.pod);
    let peer = peer_listeners(&net.peer);

    let mut args = INJECTOR_ARGS.to_vec();
    args.extend(["--force-iptables-binary", backend]);
    ok(&mesh_init(&net.pod, &args, DUAL_STACK));
    let installed = (save(&net.pod, &save4), save(&net.pod, &save6));
    assert!(installed.0.contains(":ISTIO_OUTPUT") && installed.1.contains(":ISTIO_OUTPUT"));
    assert_istio_capture(&net, &pod, &peer, true);

    let again = mesh_init(&net.pod, &args, DUAL_STACK);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("exactly ours"));
    assert_eq!(
        (save(&net.pod, &save4), save(&net.pod, &save6)),
        installed,
        "a second run leaves exactly one copy of the rules"
    );
    assert_istio_capture(&net, &pod, &peer, true);

    let mut cleanup = args.clone();
    cleanup.push("--cleanup-only");
    ok(&mesh_init(&net.pod, &cleanup, DUAL_STACK));
    assert_eq!(
        (save(&net.pod, &save4), save(&net.pod, &save6)),
        before,
        "--cleanup-only removes ours and nothing else"
    );
    let to_peer = addr(PEER_V4, 8080);
    assert_eq!(
        connect(&net.pod, APP, to_peer, &pod, &peer).0,
        "peer",
        "no capture after cleanup"
    );
}

#[test]
fn istio_init_arguments_capture_traffic_with_the_nft_backend() {
    require_netns!();
    istio_init_in_a_namespace("nft");
}

#[test]
fn istio_init_arguments_capture_traffic_with_the_legacy_backend() {
    require_netns!();
    istio_init_in_a_namespace("legacy");
}

/// Exclusions bypass capture, and a re-run with a different configuration replaces our rules
/// (one transaction per table) instead of failing on "Chain already exists".
fn exclusions_and_replacement(backend: &str) {
    let net = PodNet::new(&format!("x{}", &backend[..1]), false).expect("namespaces");
    let pod = pod_listeners(&net.pod);
    let peer = peer_listeners(&net.peer);
    let mut first = INJECTOR_ARGS.to_vec();
    first.extend(["--force-iptables-binary", backend]);
    ok(&mesh_init(&net.pod, &first, &[]));
    let app = addr(POD_V4, 9090);
    assert_eq!(connect(&net.peer, None, app, &pod, &peer).0, "inbound");

    // The same pod restarted with exclusion annotations: different rules of ours are replaced.
    let mut args: Vec<&str> = INJECTOR_ARGS.to_vec();
    let d = args.iter().position(|a| *a == "-d").expect("-d") + 1;
    args[d] = "15090,15021,15020,9090";
    let x = args.iter().position(|a| *a == "-x").expect("-x") + 1;
    args[x] = "10.77.1.0/24";
    args.extend(["-o", "9999", "--force-iptables-binary", backend]);
    let out = mesh_init(&net.pod, &args, &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Replaced"));
    assert_eq!(
        connect(&net.peer, None, app, &pod, &peer).0,
        "app",
        "-d 9090 now bypasses 15006"
    );
    let other = addr(PEER_V4_OTHER, 8080);
    assert_eq!(
        connect(&net.pod, APP, other, &pod, &peer).0,
        "peer",
        "-x CIDR bypasses 15001"
    );
    let port = addr(PEER_V4, 9999);
    assert_eq!(
        connect(&net.pod, APP, port, &pod, &peer).0,
        "peer-excluded-port",
        "-o port bypasses 15001"
    );
    let to_peer = addr(PEER_V4, 8080);
    assert_eq!(
        connect(&net.pod, APP, to_peer, &pod, &peer),
        ("outbound", Some(to_peer))
    );
    let nat = save(&net.pod, &format!("iptables-{backend}-save"));
    assert_eq!(nat.matches("-A OUTPUT -j ISTIO_OUTPUT").count(), 1, "{nat}");
    assert_eq!(nat.matches("--dport 9090 -j RETURN").count(), 1, "{nat}");
}

#[test]
fn exclusions_bypass_and_a_changed_config_replaces_the_rules_with_nft() {
    require_netns!();
    exclusions_and_replacement("nft");
}

#[test]
fn exclusions_bypass_and_a_changed_config_replaces_the_rules_with_legacy() {
    require_netns!();
    exclusions_and_replacement("legacy");
}

#[test]
fn the_backend_is_detected_once_and_kept_on_re_runs() {
    require_netns!();
    let net = PodNet::new("d", false).expect("namespaces");
    for _ in 0..2 {
        let out = mesh_init(&net.pod, INJECTOR_ARGS, &[]);
        ok(&out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("backend=nft"));
    }
    assert!(
        !save(&net.pod, "iptables-legacy-save").contains("-A "),
        "legacy tables untouched"
    );
    // A namespace whose rules are legacy keeps legacy.
    let legacy = PodNet::new("l", false).expect("namespaces");
    sh(
        "ip",
        &[
            "netns",
            "exec",
            &legacy.pod.name,
            "iptables-legacy",
            "-t",
            "filter",
            "-A",
            "INPUT",
            "-p",
            "udp",
            "--dport",
            "9",
            "-j",
            "ACCEPT",
        ],
    )
    .expect("legacy rule");
    let out = mesh_init(&legacy.pod, INJECTOR_ARGS, &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("backend=legacy"));
    assert!(save(&legacy.pod, "iptables-legacy-save").contains(":ISTIO_OUTPUT"));
}

#[test]
fn native_nftables_captures_and_cleans_up() {
    require_netns!();
    let net = PodNet::new("n", true).expect("namespaces");
    let pod = pod_listeners(&net.pod);
    let peer = peer_listeners(&net.peer);
    let mut args = INJECTOR_ARGS.to_vec();
    args.push("--native-nftables");
    ok(&mesh_init(&net.pod, &args, DUAL_STACK));
    ok(&mesh_init(&net.pod, &args, DUAL_STACK));
    let ruleset = String::from_utf8_lossy(
        &net.pod
            .command("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft")
            .stdout,
    )
    .into_owned();
    assert_eq!(
        ruleset.matches("table inet istio-proxy-nat").count(),
        1,
        "{ruleset}"
    );
    assert_eq!(
        ruleset.matches("jump istio-output").count(),
        1,
        "re-run did not duplicate: {ruleset}"
    );
    assert_istio_capture(&net, &pod, &peer, true);
    args.push("--cleanup-only");
    ok(&mesh_init(&net.pod, &args, DUAL_STACK));
    let ruleset = String::from_utf8_lossy(
        &net.pod
            .command("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft")
            .stdout,
    )
    .into_owned();
    assert!(!ruleset.contains("istio"), "{ruleset}");
}

/// `mesh-init --run-validation --skip-rule-apply` as the proxy user, as istio-cni runs it.
fn validation(ns: &Netns) -> Output {
    let mut cmd = ns.command("setpriv");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args([
            "--reuid",
            "1337",
            "--regid",
            "1337",
            "--clear-groups",
            env!("CARGO_BIN_EXE_mesh-init"),
            "--run-validation",
            "--skip-rule-apply",
            "--probe-timeout",
            "2s",
        ]);
    cmd.output().expect("setpriv runs")
}

#[test]
fn validation_passes_with_the_rules_and_fails_without() {
    require_netns!();
    let net = PodNet::new("v", false).expect("namespaces");
    let out = validation(&net.pod);
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not redirected"));
    ok(&mesh_init(&net.pod, INJECTOR_ARGS, &[]));
    let out = validation(&net.pod);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("original_dst=127.0.0.6:15002"));
}

/// A temporary directory removed on drop, even when an assertion fails.
struct BinDir(std::path::PathBuf);

impl BinDir {
    fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for BinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory of the real iptables programs, with some replaced or left out.
fn bin_dir(tag: &str, keep: &[&str], scripts: &[(&str, &str)]) -> BinDir {
    let dir = std::env::temp_dir().join(format!("mesh-init-bin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bin dir");
    for name in keep {
        let real = sh("sh", &["-c", &format!("command -v {name}")]).expect("program exists");
        let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
        std::os::unix::fs::symlink(real, dir.join(name)).expect("symlink");
    }
    for (name, body) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        sh("chmod", &["+x", path.to_str().expect("utf-8 path")]).expect("chmod");
    }
    BinDir(dir)
}

fn failure(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} missing from:\n{stderr}");
    }
    assert!(
        stderr.contains("error:") && stderr.contains("cause:") && stderr.contains("fix:"),
        "{stderr}"
    );
}

#[test]
fn missing_net_admin_is_reported_with_exit_code_4() {
    require_netns!();
    let net = PodNet::new("c", false).expect("namespaces");
    let mut cmd = net.pod.command("setpriv");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args([
            "--reuid",
            "1000",
            "--regid",
            "1000",
            "--clear-groups",
            env!("CARGO_BIN_EXE_mesh-init"),
        ])
        .args(INJECTOR_ARGS);
    let out = cmd.output().expect("setpriv runs");
    failure(&out, 4, &["NET_ADMIN", "NET_RAW", "Permission denied"]);
}

#[test]
fn a_held_xtables_lock_is_reported_with_exit_code_5() {
    require_netns!();
    let net = PodNet::new("k", false).expect("namespaces");
    // A private lock file (iptables >= 1.8.6 honours XTABLES_LOCKFILE): the host's lock is never
    // taken.
    let lock_path =
        std::env::temp_dir().join(format!("mesh-init-xtables-{}.lock", std::process::id()));
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    // SAFETY: flock on an open file descriptor.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut args = INJECTOR_ARGS.to_vec();
    args.extend(["--force-iptables-binary", "legacy", "--xtables-wait", "1"]);
    let out = mesh_init(
        &net.pod,
        &args,
        &[("XTABLES_LOCKFILE", lock_path.to_str().expect("utf-8"))],
    );
    failure(&out, 5, &["xtables lock", "--xtables-wait"]);
    drop(lock);
    let _ = std::fs::remove_file(lock_path);
    assert!(
        !save(&net.pod, "iptables-legacy-save").contains("ISTIO"),
        "nothing half-applied"
    );
}

#[test]
fn a_missing_nat_table_names_the_kernel_modules_with_exit_code_3() {
    require_netns!();
    let net = PodNet::new("m", false).expect("namespaces");
    // The kernel here has nat built in, so the restore program stands in for a node without
    // iptable_nat: it fails with the message iptables-legacy-restore prints there.
    let dir = bin_dir(
        "nat",
        &[
            "iptables-legacy-save",
            "ip6tables-legacy-save",
            "iptables-legacy",
        ],
        &[(
            "iptables-legacy-restore",
            "echo \"iptables-restore v1.8.9 (legacy): iptables-restore: unable to initialize table 'nat'\" >&2\n\
         echo 'Error occurred at line: 1' >&2\nexit 1",
        )],
    );
    let mut args = INJECTOR_ARGS.to_vec();
    args.extend(["--force-iptables-binary", "legacy", "--bin-dir", dir.arg()]);
    let out = mesh_init(&net.pod, &args, &[]);
    failure(
        &out,
        3,
        &[
            "unable to initialize table 'nat'",
            "iptable_nat",
            "xt_REDIRECT",
            "xt_owner",
            "nf_nat",
            "ip6table_nat",
        ],
    );
}

#[test]
fn a_backend_the_image_lacks_is_reported_with_exit_code_6() {
    require_netns!();
    let net = PodNet::new("b", false).expect("namespaces");
    let dir = bin_dir(
        "nft",
        &[
            "iptables-legacy-save",
            "iptables-legacy-restore",
            "iptables-legacy",
        ],
        &[],
    );
    let mut args = INJECTOR_ARGS.to_vec();
    args.extend(["--force-iptables-binary", "nft", "--bin-dir", dir.arg()]);
    let out = mesh_init(&net.pod, &args, &[]);
    failure(&out, 6, &["iptables-nft-save", "--force-iptables-binary"]);
}

#[test]
fn a_failing_ipv6_restore_rolls_the_ipv4_rules_back() {
    require_netns!();
    let net = PodNet::new("r", true).expect("namespaces");
    let dir = bin_dir(
        "rb",
        &[
            "iptables-nft-save",
            "iptables-nft-restore",
            "iptables-nft",
            "ip6tables-nft-save",
            "ip6tables-nft",
        ],
        &[(
            "ip6tables-nft-restore",
            "cat >/dev/null\necho 'ip6tables-restore v1.8.9 (nf_tables): line 5 failed: Operation not supported' >&2\nexit 1",
        )],
    );
    let before = save(&net.pod, "iptables-nft-save");
    let mut args = INJECTOR_ARGS.to_vec();
    args.extend(["--force-iptables-binary", "nft", "--bin-dir", dir.arg()]);
    let out = mesh_init(&net.pod, &args, DUAL_STACK);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("rolled back"), "{stderr}");
    let after = save(&net.pod, "iptables-nft-save");
    assert!(!after.contains("ISTIO"), "IPv4 rules left behind:\n{after}");
    assert_eq!(
        after.lines().filter(|l| l.starts_with("-A")).count(),
        before.lines().filter(|l| l.starts_with("-A")).count()
    );
}

#[test]
fn tproxy_mode_delivers_inbound_connections_with_their_original_addresses() {
    require_netns!();
    let net = PodNet::new("t", false).expect("namespaces");
    let inbound = net
        .pod
        .listen_transparent("0.0.0.0:15006".parse().expect("addr"))
        .expect("transparent listener");
    let pod = Listeners::open(
        &net.pod,
        &[
            ("outbound", addr("0.0.0.0", 15001)),
            ("app", addr("0.0.0.0", 9090)),
            ("health", addr("0.0.0.0", 15021)),
        ],
    );
    let peer = peer_listeners(&net.peer);
    let mut args: Vec<&str> = INJECTOR_ARGS.to_vec();
    let m = args.iter().position(|a| *a == "-m").expect("-m") + 1;
    args[m] = "TPROXY";
    ok(&mesh_init(&net.pod, &args, &[]));
    ok(&mesh_init(&net.pod, &args, &[])); // routes and rules survive a re-run

    let app = addr(POD_V4, 9090);
    let client = net.peer.connect(app, None).expect("connect");
    let (_, accepted) = accept_any(&[&inbound], WAIT).expect("TPROXY delivered to 15006");
    assert_eq!(
        accepted.local_addr().expect("local"),
        app,
        "TPROXY keeps the destination"
    );
    assert_eq!(
        accepted.peer_addr().expect("peer"),
        client.local_addr().expect("client"),
        "TPROXY keeps the source"
    );
    assert_eq!(pod.quiet(), None);
    assert_eq!(
        connect(&net.peer, None, addr(POD_V4, 15021), &pod, &peer).0,
        "health"
    );
    let to_peer = addr(PEER_V4, 8080);
    assert_eq!(
        connect(&net.pod, APP, to_peer, &pod, &peer),
        ("outbound", Some(to_peer)),
        "outbound stays REDIRECT in TPROXY mode"
    );
    let rules = String::from_utf8_lossy(
        &net.pod
            .command("ip")
            .args(["rule", "list"])
            .output()
            .expect("ip rule")
            .stdout,
    )
    .into_owned();
    assert_eq!(rules.matches("lookup 133").count(), 1, "{rules}");
}

#[test]
fn a_namespace_without_an_address_is_refused_like_istio() {
    require_netns!();
    let ns = Netns::new("o").expect("namespace");
    let out = mesh_init(&ns, INJECTOR_ARGS, &[]);
    failure(&out, 1, &["no valid local IP address found", "--host-ipv6"]);
    assert!(!save(&ns, "iptables-nft-save").contains("ISTIO"));
}
