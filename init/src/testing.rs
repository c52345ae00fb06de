//! Helpers for real-traffic tests in network namespaces: ours (`init/tests/netns.rs`) and the
//! e2e crate's (injector's `istio-init` arguments → mesh-init in a namespace). Enabled by the
//! `testing` feature; needs root and `ip netns`.
//!
//! Sockets keep the namespace and owner they were created with, so a helper creates each socket
//! on a short-lived thread that has entered the namespace (`setns`) and, for clients, switched
//! its own credentials (raw `setresuid`, which affects only the calling thread) — the rule
//! `-m owner --uid-owner` sees exactly that socket owner. The caller then uses the socket from
//! any thread.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use crate::validate::original_dst;

/// The arguments Istio's injector gives the `istio-init` container of a plain pod.
pub const INJECTOR_ARGS: &[&str] = &[
    "-p",
    "15001",
    "-z",
    "15006",
    "-u",
    "1337",
    "-m",
    "REDIRECT",
    "-i",
    "*",
    "-x",
    "",
    "-b",
    "*",
    "-d",
    "15090,15021,15020",
    "--log_output_level=default:info",
];

/// Why real-traffic tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Some(format!("`ip` is not available: {e}")),
    }
}

/// The `mesh-init` binary for tests outside this crate (the e2e crate): `MESH_INIT_BIN` when
/// set, else `mesh-init` next to the running test's `deps/` directory (build it first with
/// `cargo build -p mesh-init`). Inside this crate use `env!("CARGO_BIN_EXE_mesh-init")`.
pub fn mesh_init_binary() -> io::Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("MESH_INIT_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| io::Error::other("test executable has no target directory"))?;
    let bin = profile_dir.join("mesh-init");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(io::Error::new(
            ErrorKind::NotFound,
            format!("{} not built (cargo build -p mesh-init)", bin.display()),
        ))
    }
}

/// Runs a command, turning failure into an error with its stderr.
pub fn sh(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace deleted on drop. Names are unique per process and call.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> io::Result<Netns> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mi-{tag}-{}-{n}", std::process::id());
        sh("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> args...`
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// A command that runs inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `f` on a thread inside this namespace, as `uid`/`gid` when given.
    pub fn run<T: Send + 'static>(
        &self,
        ids: Option<(u32, u32)>,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let handle = std::thread::spawn(move || {
            let ns = File::open(&path)?;
            // SAFETY: setns on an open namespace fd; affects only this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some((uid, gid)) = ids {
                switch_thread_credentials(uid, gid)?;
            }
            f()
        });
        handle
            .join()
            .map_err(|_| io::Error::other("namespace thread panicked"))?
    }

    /// A listener bound inside the namespace (owned by `ids` when given).
    pub fn listen(&self, addr: SocketAddr, ids: Option<(u32, u32)>) -> io::Result<TcpListener> {
        self.run(ids, move || {
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
    }

    /// A listener with IP_TRANSPARENT, as Envoy's inbound listener has in TPROXY mode (the
    /// kernel delivers TPROXYed connections only to transparent sockets). IPv4 only; as root.
    pub fn listen_transparent(&self, addr: std::net::SocketAddrV4) -> io::Result<TcpListener> {
        self.run(None, move || {
            use std::os::fd::FromRawFd;
            // SAFETY: plain socket calls on a descriptor we own until TcpListener takes it.
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let listener = TcpListener::from_raw_fd(fd);
                let one: libc::c_int = 1;
                let opt = (&raw const one).cast();
                let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                if libc::setsockopt(fd, libc::SOL_IP, libc::IP_TRANSPARENT, opt, len) != 0
                    || libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, opt, len) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: addr.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*addr.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                let sa_len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                if libc::bind(fd, (&raw const sa).cast(), sa_len) != 0 || libc::listen(fd, 64) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                listener.set_nonblocking(true)?;
                Ok(listener)
            }
        })
    }

    /// A TCP connection from inside the namespace by a socket owned by `uid`/`gid`.
    pub fn connect(&self, to: SocketAddr, ids: Option<(u32, u32)>) -> io::Result<TcpStream> {
        self.run(ids, move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(3))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Changes this thread's credentials only (glibc's setuid would change every thread's).
fn switch_thread_credentials(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: raw credential syscalls with plain integer arguments; setgroups(0, NULL) clears.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
            || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Two namespaces joined by a veth pair: "pod" (10.77.0.2, fd00:77::2) and "peer"
/// (10.77.0.1, fd00:77::1, plus 10.77.1.1 as a second destination network).
pub struct PodNet {
    pub pod: Netns,
    pub peer: Netns,
}

pub const POD_V4: &str = "10.77.0.2";
pub const PEER_V4: &str = "10.77.0.1";
pub const PEER_V4_OTHER: &str = "10.77.1.1";
pub const POD_V6: &str = "fd00:77::2";
pub const PEER_V6: &str = "fd00:77::1";

impl PodNet {
    /// Creates the pair; with `ipv6` the pod and the peer also get IPv6 addresses.
    pub fn new(tag: &str, ipv6: bool) -> io::Result<PodNet> {
        let pod = Netns::new(&format!("{tag}p"))?;
        let peer = Netns::new(&format!("{tag}q"))?;
        // Created inside the pod namespace, so no interface ever appears on the host.
        pod.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &peer.name,
        ])?;
        pod.ip(&["addr", "add", &format!("{POD_V4}/24"), "dev", "eth0"])?;
        peer.ip(&["addr", "add", &format!("{PEER_V4}/24"), "dev", "eth0"])?;
        peer.ip(&["addr", "add", &format!("{PEER_V4_OTHER}/24"), "dev", "eth0"])?;
        if ipv6 {
            pod.ip(&[
                "addr",
                "add",
                &format!("{POD_V6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            peer.ip(&[
                "addr",
                "add",
                &format!("{PEER_V6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
        }
        pod.ip(&["link", "set", "eth0", "up"])?;
        peer.ip(&["link", "set", "eth0", "up"])?;
        pod.ip(&["route", "add", "10.77.1.0/24", "via", PEER_V4])?;
        Ok(PodNet { pod, peer })
    }
}

/// Waits until one of `listeners` accepts a connection; returns which one (index), and the
/// accepted stream. `None` when nothing arrived before `wait`.
pub fn accept_any(listeners: &[&TcpListener], wait: Duration) -> Option<(usize, TcpStream)> {
    let deadline = Instant::now() + wait;
    loop {
        for (i, l) in listeners.iter().enumerate() {
            match l.accept() {
                Ok((s, _)) => return Some((i, s)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return None,
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Normalised `<x>tables-save` output for before/after comparisons: no comments, no counters.
pub fn normalise_save(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.rfind(" [") {
            Some(i) if l.starts_with(':') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
