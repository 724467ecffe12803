//! XDP attach, detach and query over rtnetlink: `RTM_SETLINK` and
//! `RTM_GETLINK` with the nested `IFLA_XDP` attribute, as `ip link set dev
//! X xdp...` does (net/core/rtnetlink.c do_setlink / rtnl_xdp_fill,
//! net/core/dev.c dev_change_xdp_fd). Errors carry the kernel's extended
//! ack text (`NLMSGERR_ATTR_MSG`), which says why an attach was refused in
//! words ("Underlying driver does not support XDP in native mode").

use std::os::fd::{OwnedFd, RawFd};

use super::sys::Errno;
use super::XdpMode;
pub use xdpqual_kernel::rtnl::NlError;
use xdpqual_kernel::rtnl::{
    attrs, link_message, transact, u32_of, IFLA_XDP, NLM_F_ACK, RTM_GETLINK,
};

// include/uapi/linux/if_link.h.
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_LINK_NETNSID: u16 = 37;

const IFLA_XDP_ATTACHED: u16 = 2;
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
    xdpqual_kernel::rtnl::set_xdp_flags(fd, ifindex, prog_fd, mode.flag() | extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpqual_kernel::rtnl::push_attr;

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
