//! The names of the nf_tables chains of one address family, asked of the kernel over netlink
//! (what `iptables-nft-save` reads, without starting a process that loads the whole ruleset).
//! Only used to learn that a namespace holds no chain of ours; any doubt answers `None` and
//! the caller falls back to the save.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::plan::Family;

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFTA_CHAIN_NAME: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HEADER: usize = 16; // struct nlmsghdr
const NFGENMSG: usize = 4;

/// Every chain name of `family`'s nf_tables tables (ip or ip6), or an error (no nf_tables, no
/// CAP_NET_ADMIN, a malformed answer).
pub fn chain_names(family: Family) -> io::Result<Vec<String>> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let nfproto = match family {
        Family::V4 => libc::NFPROTO_IPV4,
        Family::V6 => libc::NFPROTO_IPV6,
    } as u8;
    let mut req = Vec::with_capacity(HEADER + NFGENMSG);
    req.extend_from_slice(&((HEADER + NFGENMSG) as u32).to_ne_bytes());
    req.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN).to_ne_bytes());
    req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
    req.extend_from_slice(&[nfproto, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
    // SAFETY: sending a buffer we own; the kernel address is the zeroed sockaddr_nl.
    let sent = unsafe {
        let mut to: libc::sockaddr_nl = std::mem::zeroed();
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            sock.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const to).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // SAFETY: receiving into a buffer we own, at most its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse(&buf[..n as usize], &mut names)? {
            return Ok(names);
        }
    }
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed nfnetlink answer")
}

fn u16_at(b: &[u8], at: usize) -> io::Result<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(malformed)
}

fn u32_at(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(malformed)
}

/// Reads one datagram of the dump into `names`; `true` once the dump is done.
fn parse(datagram: &[u8], names: &mut Vec<String>) -> io::Result<bool> {
    let mut at = 0;
    while at + HEADER <= datagram.len() {
        let len = u32_at(datagram, at)? as usize;
        let kind = u16_at(datagram, at + 4)?;
        let msg = datagram
            .get(at..at + len)
            .filter(|_| len >= HEADER)
            .ok_or_else(malformed)?;
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(msg, HEADER)? as i32;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                return Ok(true);
            }
            k if k == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN => {
                let mut a = HEADER + NFGENMSG;
                while a + 4 <= msg.len() {
                    let alen = u16_at(msg, a)? as usize;
                    let atype = u16_at(msg, a + 2)? & 0x3fff;
                    let value = msg
                        .get(a + 4..a + alen)
                        .filter(|_| alen >= 4)
                        .ok_or_else(malformed)?;
                    if atype == NFTA_CHAIN_NAME {
                        let end = value.iter().position(|&c| c == 0).unwrap_or(value.len());
                        names.push(String::from_utf8_lossy(&value[..end]).into_owned());
                    }
                    a += (alen + 3) & !3;
                }
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m
    }

    fn chain(table: &str, name: &str) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0];
        body.extend(attr(1, format!("{table}\0").as_bytes()));
        body.extend(attr(NFTA_CHAIN_NAME, format!("{name}\0").as_bytes()));
        message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN, &body)
    }

    #[test]
    fn reads_chain_names_until_done() {
        let mut d = chain("nat", "PREROUTING");
        d.extend(chain("nat", "ISTIO_OUTPUT"));
        let mut names = Vec::new();
        assert!(!parse(&d, &mut names).expect("parses"));
        assert!(parse(&message(NLMSG_DONE, &[0; 4]), &mut names).expect("parses"));
        assert_eq!(names, ["PREROUTING", "ISTIO_OUTPUT"]);
    }

    #[test]
    fn a_kernel_error_and_truncation_are_errors_not_answers() {
        let eperm = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        let e = parse(&eperm, &mut Vec::new()).expect_err("EPERM");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let whole = chain("nat", "ISTIO_OUTPUT");
        assert!(parse(&whole[..whole.len() - 6], &mut Vec::new()).is_err());
    }
}
