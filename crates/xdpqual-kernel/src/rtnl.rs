//! The rtnetlink plumbing both XDP attach paths share: the live backend
//! (`harness/src/backends/live/netlink.rs`, which adds link queries and
//! its modes on top) and the QEMU guest agent's offload cell. Requests are
//! `RTM_SETLINK`/`RTM_GETLINK` with nested attributes, as `ip link` sends
//! them (net/core/rtnetlink.c do_setlink); errors carry the kernel's
//! extended-ack text (`NLMSGERR_ATTR_MSG`), which says why in words.

use std::fmt;
use std::os::fd::{OwnedFd, RawFd};

use crate::net as sys;
use crate::sys::Errno;

// include/uapi/linux/netlink.h, rtnetlink.h, if_link.h.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
pub const NLM_F_CAPPED: u16 = 0x100;
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLA_F_NESTED: u16 = 1 << 15;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));
pub const IFLA_XDP: u16 = 43;
pub const IFLA_XDP_FD: u16 = 1;
pub const IFLA_XDP_FLAGS: u16 = 3;
/// `XDP_FLAGS_HW_MODE` (include/uapi/linux/if_link.h): attach to the
/// device's offload (the program must have been loaded bound to it).
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;

/// A refused netlink request: the errno and, when the kernel gave one, its
/// extended-ack message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: Errno,
    pub extack: Option<String>,
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.errno)?;
        if let Some(m) = &self.extack {
            write!(f, ": kernel says \"{m}\"")?;
        }
        Ok(())
    }
}

impl From<Errno> for NlError {
    fn from(errno: Errno) -> NlError {
        NlError { errno, extack: None }
    }
}

pub fn push_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize((buf.len() + 3) & !3, 0);
}

/// nlmsghdr + ifinfomsg for `ifindex`, then `attrs`.
pub fn link_message(ty: u16, flags: u16, ifindex: u32, attrs: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + attrs.len());
    let len = 16 + 16 + attrs.len();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
                                              // struct ifinfomsg: family, pad, type, index, flags, change.
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(attrs);
    m
}

/// Iterates `(type, payload)` over a run of netlink attributes.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, payload))
    })
}

pub fn u32_of(p: &[u8]) -> Option<u32> {
    p.get(..4).map(|x| u32::from_ne_bytes(x.try_into().expect("4 bytes")))
}

/// Parses an NLMSG_ERROR payload (flags from its header): 0 is the ack.
pub fn parse_error(flags: u16, payload: &[u8]) -> Result<(), NlError> {
    let code = payload
        .get(..4)
        .map(|x| i32::from_ne_bytes(x.try_into().expect("4 bytes")))
        .unwrap_or(-libc::EIO);
    if code == 0 {
        return Ok(());
    }
    let mut extack = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the error code comes the request's header, and its payload
        // too unless the reply is capped.
        let mut at = 4 + 16;
        if flags & NLM_F_CAPPED == 0 {
            let orig_len = payload
                .get(4..8)
                .map(|x| u32::from_ne_bytes(x.try_into().expect("4 bytes")) as usize)
                .unwrap_or(16);
            at = 4 + orig_len;
        }
        if let Some(tlvs) = payload.get((at + 3) & !3..) {
            extack = attrs(tlvs).find(|(t, _)| *t == NLMSGERR_ATTR_MSG).map(|(_, p)| {
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                String::from_utf8_lossy(&p[..end]).trim().to_string()
            });
        }
    }
    Err(NlError { errno: Errno(-code), extack })
}

/// Sends `msg` and reads replies until the ack/error; hands each
/// RTM_NEWLINK payload (after ifinfomsg) to `on_link`.
pub fn transact(fd: &OwnedFd, msg: &[u8], mut on_link: impl FnMut(&[u8])) -> Result<(), NlError> {
    sys::netlink_send(fd, msg)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = sys::netlink_recv(fd, &mut buf)?;
        let mut b = &buf[..n];
        while b.len() >= 16 {
            let len = u32::from_ne_bytes(b[..4].try_into().expect("4")) as usize;
            let ty = u16::from_ne_bytes([b[4], b[5]]);
            let flags = u16::from_ne_bytes([b[6], b[7]]);
            if len < 16 || len > b.len() {
                return Err(NlError {
                    errno: Errno(libc::EPROTO),
                    extack: Some("malformed netlink reply".into()),
                });
            }
            let payload = &b[16..len];
            match ty {
                NLMSG_ERROR => return parse_error(flags, payload),
                NLMSG_DONE => return Ok(()),
                RTM_NEWLINK if payload.len() >= 16 => on_link(&payload[16..]),
                _ => {}
            }
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
}

/// Attaches `prog_fd` to `ifindex` with the XDP `flags` (`prog_fd` -1
/// detaches the program of the mode the flags name).
pub fn set_xdp_flags(
    fd: &OwnedFd,
    ifindex: u32,
    prog_fd: RawFd,
    flags: u32,
) -> Result<(), NlError> {
    let mut nested = Vec::new();
    push_attr(&mut nested, IFLA_XDP_FD, &prog_fd.to_ne_bytes());
    push_attr(&mut nested, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    let mut a = Vec::new();
    push_attr(&mut a, IFLA_XDP | NLA_F_NESTED, &nested);
    transact(fd, &link_message(RTM_SETLINK, NLM_F_ACK, ifindex, &a), |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_setlink_request_ip_link_sends() {
        let mut nested = Vec::new();
        push_attr(&mut nested, IFLA_XDP_FD, &7i32.to_ne_bytes());
        push_attr(&mut nested, IFLA_XDP_FLAGS, &4u32.to_ne_bytes());
        let mut a = Vec::new();
        push_attr(&mut a, IFLA_XDP | NLA_F_NESTED, &nested);
        // Two 8-byte attributes inside one 4-byte header.
        assert_eq!(a.len(), 20);
        assert_eq!(u16::from_ne_bytes([a[0], a[1]]), 20);
        assert_eq!(u16::from_ne_bytes([a[2], a[3]]), 43 | 0x8000);
        let m = link_message(RTM_SETLINK, NLM_F_ACK, 5, &a);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize, m.len());
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 5);
    }

    #[test]
    fn reads_extack_text_from_a_capped_error() {
        let mut p = (-libc::EOPNOTSUPP).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0u8; 16]); // the request's header, capped
        push_attr(
            &mut p,
            NLMSGERR_ATTR_MSG,
            b"Underlying driver does not support XDP in native mode\0",
        );
        let e = parse_error(NLM_F_ACK_TLVS | NLM_F_CAPPED, &p).unwrap_err();
        assert_eq!(e.errno, Errno(libc::EOPNOTSUPP));
        assert_eq!(
            e.extack.as_deref(),
            Some("Underlying driver does not support XDP in native mode")
        );
        assert_eq!(parse_error(0, &0i32.to_ne_bytes()), Ok(()));
    }
}
