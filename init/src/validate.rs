//! Validation mode (`--run-validation`, istio-cni's `istio-validation` container): prove from
//! inside the pod that capture works. Listeners on the outbound and inbound capture ports read
//! `SO_ORIGINAL_DST`; a probe dials 127.0.0.6:<probe port> (`[::6]` on IPv6 pods), which only
//! the proxy UID's hairpin rule sends to 15006. Success means a listener saw *that* original
//! destination: the getsockopt also succeeds on uncaptured loopback traffic, so only the value
//! proves capture (spec §9, §11 case C).

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "traffic to {probe} was not redirected within {timeout:?}: {detail}. The pod's traffic \
         is not captured: if istio-cni installs the rules, this pod started before the CNI \
         plugin was ready; delete the pod (or enable cni.repair.deletePods). Validation must \
         run as the proxy UID."
    )]
    NotCaptured {
        probe: SocketAddr,
        timeout: Duration,
        detail: String,
    },
}

/// What a capture listener learnt about one accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub listener: SocketAddr,
    pub original_dst: SocketAddr,
}

/// `SO_ORIGINAL_DST` of an accepted connection: where the client was really going before
/// REDIRECT rewrote the destination.
pub fn original_dst(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    const SO_ORIGINAL_DST: libc::c_int = 80; // also IP6T_SO_ORIGINAL_DST
    let fd = stream.as_raw_fd();
    if stream.local_addr()?.is_ipv4() {
        // SAFETY: zeroed sockaddr_in is a valid value; getsockopt writes at most `len` bytes.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: fd is open for the lifetime of `stream`; pointers are to live locals.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IP,
                SO_ORIGINAL_DST,
                (&raw mut sa).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
        Ok(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sa.sin_port)))
    } else {
        // SAFETY: as above, for sockaddr_in6.
        let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: as above.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IPV6,
                SO_ORIGINAL_DST,
                (&raw mut sa).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
        Ok(SocketAddr::new(IpAddr::V6(ip), u16::from_be(sa.sin6_port)))
    }
}

/// Runs the probe until a listener sees the probe's address as original destination.
pub fn validate(
    ipv6: bool,
    ports: [u16; 2],
    probe_port: u16,
    timeout: Duration,
) -> Result<Landed, ValidationError> {
    let (local, probe_ip): (IpAddr, IpAddr) = if ipv6 {
        (
            Ipv6Addr::LOCALHOST.into(),
            "::6".parse::<Ipv6Addr>().expect("literal").into(),
        )
    } else {
        (
            Ipv4Addr::LOCALHOST.into(),
            Ipv4Addr::new(127, 0, 0, 6).into(),
        )
    };
    let probe = SocketAddr::new(probe_ip, probe_port);
    let listeners = ports
        .iter()
        .map(|p| {
            let addr = SocketAddr::new(local, *p);
            let l = TcpListener::bind(addr)
                .map_err(|source| ValidationError::Listen { addr, source })?;
            l.set_nonblocking(true)
                .map_err(|source| ValidationError::Listen { addr, source })?;
            Ok(l)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = Instant::now() + timeout;
    let mut detail = String::from("no attempt finished");
    while Instant::now() < deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        match TcpStream::connect_timeout(&probe, left.max(Duration::from_millis(10))) {
            Ok(_client) => {
                // The client's connect completed: some listener (ours or not) accepted it.
                match accept_any(&listeners, Duration::from_millis(500)) {
                    Some(Ok(landed)) if landed.original_dst == probe => return Ok(landed),
                    Some(Ok(landed)) => {
                        detail = format!(
                            "a connection reached {} with original destination {}, not {probe}",
                            landed.listener, landed.original_dst
                        );
                    }
                    Some(Err(e)) => detail = format!("reading SO_ORIGINAL_DST failed: {e}"),
                    None => detail = format!("{probe} answered, but not through a capture port"),
                }
            }
            Err(e) => detail = format!("connecting to {probe}: {e}"),
        }
        if detail.contains("refused") {
            // Not captured: nothing listens on the probe port. Retry after a pause, as Istio.
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }
    Err(ValidationError::NotCaptured {
        probe,
        timeout,
        detail,
    })
}

fn accept_any(listeners: &[TcpListener], wait: Duration) -> Option<std::io::Result<Landed>> {
    let deadline = Instant::now() + wait;
    loop {
        for l in listeners {
            match l.accept() {
                Ok((mut stream, _)) => {
                    let listener = l.local_addr().ok()?;
                    let dst = original_dst(&stream);
                    let _ = stream.set_nonblocking(true);
                    let _ = stream.read(&mut [0u8; 1]);
                    return Some(dst.map(|original_dst| Landed {
                        listener,
                        original_dst,
                    }));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Some(Err(e)),
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
