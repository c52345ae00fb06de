//! The two programs together: the `istio-init` container our injector writes into a default
//! pod, run as written by `mesh-init` in a network namespace, captures the pod's traffic the
//! way the sidecar expects. Real sockets: a connection lands on the proxy's port, and
//! `SO_ORIGINAL_DST` there gives back the address the client dialled.
//!
//! Needs root and `ip netns` (and the iptables tools); skips with the reason otherwise.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::workspace;
use mesh_init::testing::{PEER_V4, POD_V4, PodNet, accept_any, original_dst, unavailable};
use serde_json::Value;

const APP: Option<(u32, u32)> = Some((1000, 1000));
const WAIT: Duration = Duration::from_secs(3);

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("ip literal"), port)
}

/// The `istio-init` container of a plain pod after `sidecar-injector kube-inject` with the
/// built-in configuration: its args and env, exactly as a kubelet would run them.
fn istio_init_of_default_pod(injector: &Path, dir: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let manifest = dir.join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: default, labels: {app: app}}\n\
         spec:\n  containers:\n  - {name: app, image: docker.io/library/nginx:1.27, ports: [{containerPort: 8080}]}\n",
    )
    .unwrap();
    let out = Command::new(injector)
        .args(["kube-inject", "-f"])
        .arg(&manifest)
        .output()
        .expect("kube-inject runs");
    assert!(
        out.status.success(),
        "kube-inject failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // kube-inject prints a YAML stream; ours has one document, the Pod.
    let docs = serde_yaml_ng::Deserializer::from_slice(&out.stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("kube-inject prints YAML"))
        .collect::<Vec<Value>>();
    let pod = docs
        .into_iter()
        .find(|d| d["kind"] == "Pod")
        .expect("the injected Pod");
    let init = pod["spec"]["initContainers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "istio-init"))
        .unwrap_or_else(|| panic!("no istio-init in {pod}"))
        .clone();
    let args = init["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let env = init["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    (args, env)
}

/// The value after `flag` in `args`.
fn arg<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[i + 1]
}

fn port(args: &[String], flag: &str) -> u16 {
    arg(args, flag)
        .parse()
        .unwrap_or_else(|e| panic!("{flag}: {e}"))
}

/// Which of `listeners` accepted the next connection, and the original destination it saw.
fn landed(
    listeners: &[(&'static str, &TcpListener)],
) -> Option<(&'static str, Option<SocketAddr>)> {
    let all: Vec<&TcpListener> = listeners.iter().map(|(_, l)| *l).collect();
    accept_any(&all, WAIT).map(|(i, s)| (listeners[i].0, original_dst(&s).ok()))
}

/// Outbound from the app lands on the proxy's outbound port, inbound from a peer on its
/// inbound port, each with the destination the client dialled; the proxy's own uid and the
/// excluded inbound ports pass untouched.
#[test]
fn istio_init_written_by_the_injector_captures_traffic_with_mesh_init() {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let injector =
        workspace::binary("sidecar-injector", "sidecar-injector").expect("builds sidecar-injector");
    let mesh_init = workspace::binary("mesh-init", "mesh-init").expect("builds mesh-init");
    let dir = e2e::control_plane::temp_dir("cross-program").unwrap();
    let (args, env) = istio_init_of_default_pod(&injector, &dir);
    let _ = std::fs::remove_dir_all(&dir);

    // The container runs `istio-iptables <flags>`; our image maps that name to mesh-init.
    assert_eq!(args[0], "istio-iptables", "{args:?}");
    let flags = &args[1..];
    let (outbound, inbound) = (port(flags, "-p"), port(flags, "-z"));
    let uid: u32 = arg(flags, "-u").parse().expect("-u is a uid");
    let proxy = Some((uid, uid));
    let excluded: u16 = arg(flags, "-d")
        .split(',')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("-d lists ports");

    let net = PodNet::new("xp", false).expect("pod and peer namespaces");
    let mut cmd = net.pod.command(mesh_init.to_str().unwrap());
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(flags)
        .envs(env);
    let out = cmd.output().expect("mesh-init runs");
    assert!(
        out.status.success(),
        "mesh-init {flags:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );

    let any = |p| addr("0.0.0.0", p);
    let out_l = net.pod.listen(any(outbound), proxy).unwrap();
    let in_l = net.pod.listen(any(inbound), proxy).unwrap();
    let excluded_l = net.pod.listen(any(excluded), proxy).unwrap();
    let app_l = net.pod.listen(any(8080), APP).unwrap();
    let peer_l = net.peer.listen(addr(PEER_V4, 8080), None).unwrap();
    let all = [
        ("outbound", &out_l),
        ("inbound", &in_l),
        ("excluded", &excluded_l),
        ("app", &app_l),
        ("peer", &peer_l),
    ];

    let peer_app = addr(PEER_V4, 8080);
    let _c = net.pod.connect(peer_app, APP).expect("app dials the peer");
    assert_eq!(
        landed(&all),
        Some(("outbound", Some(peer_app))),
        "app -> peer"
    );

    let pod_app = addr(POD_V4, 8080);
    let _c = net.peer.connect(pod_app, None).expect("peer dials the app");
    assert_eq!(
        landed(&all),
        Some(("inbound", Some(pod_app))),
        "peer -> app"
    );

    // The proxy's own connections must leave as they are, or it would loop into itself.
    let _c = net
        .pod
        .connect(peer_app, proxy)
        .expect("proxy dials the peer");
    assert!(
        matches!(landed(&all), Some(("peer", _))),
        "proxy uid {uid} was captured"
    );

    let _c = net
        .peer
        .connect(addr(POD_V4, excluded), None)
        .expect("peer dials an excluded port");
    assert!(
        matches!(landed(&all), Some(("excluded", _))),
        "inbound port {excluded} was captured"
    );
}
