//! Facts read from the pod's network namespace and filesystem: whether it has IPv6, its
//! resolver, the proxy user. Plumbing behind the [`HostFacts`] seam of `config.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::HostFacts;

/// The real host: interface addresses via `getifaddrs`, files from disk.
pub struct RealHost;

impl HostFacts for RealHost {
    fn ipv6(&self, dual_stack: bool) -> Result<bool, String> {
        let addrs = interface_addresses()?;
        ipv6_from_addresses(&addrs, dual_stack)
    }

    fn read_resolv_conf(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn lookup_uid(&self, user: &str) -> Option<u32> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            (f.next()? == user).then_some(())?;
            f.nth(1)?.parse().ok()
        })
    }
}

/// Istio's rule (`getLocalIP`): skip loopback and link-local addresses; the first remaining
/// one decides, or with dual stack any IPv6 one turns IPv6 on. None at all is an error:
/// the pod's namespace is not set up yet.
pub fn ipv6_from_addresses(addrs: &[IpAddr], dual_stack: bool) -> Result<bool, String> {
    let mut usable = addrs
        .iter()
        .filter(|a| !is_loopback_or_link_local(a))
        .peekable();
    let Some(first) = usable.peek().copied() else {
        return Err(
            "no valid local IP address found (only loopback or link-local addresses)".into(),
        );
    };
    if dual_stack {
        Ok(usable.any(IpAddr::is_ipv6))
    } else {
        Ok(first.is_ipv6())
    }
}

fn is_loopback_or_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_multicast()
        }
    }
}

/// Every IPv4/IPv6 address of every interface, in the kernel's order.
pub fn interface_addresses() -> Result<Vec<IpAddr>, String> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(format!("getifaddrs: {}", std::io::Error::last_os_error()));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().expect("ip")).collect()
    }

    #[test]
    fn the_first_usable_address_decides() {
        let addrs = ips(&["127.0.0.1", "::1", "fe80::1", "10.0.0.2", "fd00::2"]);
        assert_eq!(ipv6_from_addresses(&addrs, false), Ok(false));
        assert_eq!(ipv6_from_addresses(&addrs, true), Ok(true));
        let v6_first = ips(&["fe80::1", "fd00::2", "10.0.0.2"]);
        assert_eq!(ipv6_from_addresses(&v6_first, false), Ok(true));
    }

    #[test]
    fn the_proxy_user_is_looked_up_in_etc_passwd() {
        assert_eq!(RealHost.lookup_uid("root"), Some(0));
        assert_eq!(RealHost.lookup_uid("no-such-user-for-mesh-init"), None);
    }

    #[test]
    fn a_namespace_with_only_loopback_is_an_error() {
        let err = ipv6_from_addresses(&ips(&["127.0.0.1", "::1", "169.254.1.1"]), false);
        assert!(err.unwrap_err().contains("no valid local IP address found"));
    }
}
