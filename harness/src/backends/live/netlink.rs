//! XDP attach, detach and query over rtnetlink: `RTM_SETLINK` and
//! `RTM_GETLINK` with the nested `IFLA_XDP` attribute, as `ip link set dev
//! X xdp...` does (net/core/rtnetlink.c do_setlink / rtnl_xdp_fill,
//! net/core/dev.c dev_change_xdp_fd). Errors carry the kernel's extended
//! ack text (`NLMSGERR_ATTR_MSG`), which says why an attach was refused in
//! words ("Underlying driver does not support XDP in native mode").

use std::fmt;
use std::os::fd::{OwnedFd, RawFd};

use super::sys::{self, Errno};
use super::XdpMode;

// include/uapi/linux/netlink.h, rtnetlink.h, if_link.h.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
const XDP_ATTACHED_DRV: u8 = 1;
const XDP_ATTACHED_SKB: u8 = 2;
const XDP_ATTACHED_HW: u8 = 3;
const XDP_ATTACHED_MULTI: u8 = 4;

/// `XDP_FLAGS_UPDATE_IF_NOEXIST`: refuse to replace a program already there.
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;

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

/// A program attached to an interface in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    pub mode: XdpMode,
    pub prog_id: u32,
}

/// What `RTM_GETLINK` says about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub name: String,
    pub mtu: u32,
    /// One entry per mode with a program (several only with MULTI).
    pub xdp: Vec<Attached>,
    /// `IFLA_LINK`: for a veth, its peer's ifindex.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: present when that peer is in another namespace.
    pub link_in_other_netns: bool,
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize((buf.len() + 3) & !3, 0);
}

/// nlmsghdr + ifinfomsg for `ifindex`, then `attrs`.
fn link_message(ty: u16, flags: u16, ifindex: u32, attrs: &[u8]) -> Vec<u8> {
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
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
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

fn u32_of(p: &[u8]) -> Option<u32> {
    p.get(..4).map(|x| u32::from_ne_bytes(x.try_into().expect("4 bytes")))
}

/// Parses an NLMSG_ERROR payload (flags from its header): 0 is the ack.
fn parse_error(flags: u16, payload: &[u8]) -> Result<(), NlError> {
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
fn transact(fd: &OwnedFd, msg: &[u8], mut on_link: impl FnMut(&[u8])) -> Result<(), NlError> {
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

/// Name, MTU and attached XDP programs of `ifindex`.
pub fn query(fd: &OwnedFd, ifindex: u32) -> Result<LinkState, NlError> {
    let msg = link_message(RTM_GETLINK, NLM_F_ACK, ifindex, &[]);
    let mut state = None;
    transact(fd, &msg, |a| state = Some(parse_link(a)))?;
    state.ok_or(NlError { errno: Errno(libc::ENODEV), extack: None })
}

fn parse_link(a: &[u8]) -> LinkState {
    let mut s = LinkState {
        name: String::new(),
        mtu: 0,
        xdp: Vec::new(),
        link: None,
        link_in_other_netns: false,
    };
    for (ty, p) in attrs(a) {
        match ty {
            IFLA_IFNAME => {
                s.name =
                    String::from_utf8_lossy(p.split(|&c| c == 0).next().unwrap_or(&[])).into_owned()
            }
            IFLA_MTU => s.mtu = u32_of(p).unwrap_or(0),
            IFLA_XDP => s.xdp = parse_xdp(p),
            IFLA_LINK => s.link = u32_of(p).filter(|&i| i != 0),
            IFLA_LINK_NETNSID => s.link_in_other_netns = true,
            _ => {}
        }
    }
    s
}

fn parse_xdp(p: &[u8]) -> Vec<Attached> {
    let mut attached = 0u8;
    let (mut one, mut drv, mut skb, mut hw) = (0, 0, 0, 0);
    for (ty, v) in attrs(p) {
        match ty {
            IFLA_XDP_ATTACHED => attached = v.first().copied().unwrap_or(0),
            IFLA_XDP_PROG_ID => one = u32_of(v).unwrap_or(0),
            IFLA_XDP_DRV_PROG_ID => drv = u32_of(v).unwrap_or(0),
            IFLA_XDP_SKB_PROG_ID => skb = u32_of(v).unwrap_or(0),
            IFLA_XDP_HW_PROG_ID => hw = u32_of(v).unwrap_or(0),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut add = |mode, id| {
        if id != 0 {
            out.push(Attached { mode, prog_id: id });
        }
    };
    match attached {
        XDP_ATTACHED_DRV => add(XdpMode::Drv, one),
        XDP_ATTACHED_SKB => add(XdpMode::Skb, one),
        XDP_ATTACHED_HW => add(XdpMode::Hw, one),
        XDP_ATTACHED_MULTI => {
            add(XdpMode::Skb, skb);
            add(XdpMode::Drv, drv);
            add(XdpMode::Hw, hw);
        }
        _ => {}
    }
    out
}

/// Attaches `prog_fd` to `ifindex` in `mode` (`prog_fd` -1 detaches the
/// program of that mode). `extra` adds flags such as
/// [`XDP_FLAGS_UPDATE_IF_NOEXIST`].
pub fn set_xdp(
    fd: &OwnedFd,
    ifindex: u32,
    prog_fd: RawFd,
    mode: XdpMode,
    extra: u32,
) -> Result<(), NlError> {
    let mut nested = Vec::new();
    push_attr(&mut nested, IFLA_XDP_FD, &prog_fd.to_ne_bytes());
    push_attr(&mut nested, IFLA_XDP_FLAGS, &(mode.flag() | extra).to_ne_bytes());
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

    #[test]
    fn multi_mode_lists_each_program() {
        let mut p = Vec::new();
        push_attr(&mut p, IFLA_XDP_ATTACHED, &[XDP_ATTACHED_MULTI]);
        push_attr(&mut p, IFLA_XDP_SKB_PROG_ID, &11u32.to_ne_bytes());
        push_attr(&mut p, IFLA_XDP_HW_PROG_ID, &12u32.to_ne_bytes());
        assert_eq!(
            parse_xdp(&p),
            vec![
                Attached { mode: XdpMode::Skb, prog_id: 11 },
                Attached { mode: XdpMode::Hw, prog_id: 12 }
            ]
        );
    }
}
