//! The live backend's system calls outside `bpf(2)`: netlink and packet
//! sockets, interface ioctls and network namespaces.
//!
//! Sockets, socket options, `poll`, interface names and `setns` go through
//! `nix`'s safe wrappers. Two calls stay raw, each in one function below:
//! the `SIOCETHTOOL` ioctl (nix has no ethtool call; its `ioctl!` macros
//! would only generate an equally unsafe function over the same `ioctl`),
//! and building a packet-socket address (nix's `LinkAddr` has no
//! constructor from an interface index, only the unsafe `from_raw`).
//!
//! Each public function is safe to call: buffers handed to the kernel are
//! borrowed slices or locals whose sizes are passed with them.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, recv, recvmsg, sendto, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned,
    LinkAddr, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, SockaddrLike,
};

use nix::{setsockopt_impl, sockopt_impl};

pub use crate::sys::Errno;

fn last() -> Errno {
    Errno::last()
}

fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(last())
    } else {
        Ok(r)
    }
}

// ------------------------------------------------------------- netlink

/// `SOL_NETLINK`, `NETLINK_CAP_ACK`, `NETLINK_EXT_ACK` (include/uapi/linux/netlink.h).
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

// Socket options nix does not name, declared with its own macro, which
// defines each type and its safe `SetSockOpt` (setsockopt(2) with a c_int).
sockopt_impl!(NetlinkExtAck, SetOnly, SOL_NETLINK, NETLINK_EXT_ACK, bool);
sockopt_impl!(NetlinkCapAck, SetOnly, SOL_NETLINK, NETLINK_CAP_ACK, bool);
sockopt_impl!(PacketAuxdata, SetOnly, libc::SOL_PACKET, PACKET_AUXDATA, bool);
sockopt_impl!(PacketIgnoreOutgoing, SetOnly, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, bool);

/// A NETLINK_ROUTE socket asking for extended acks (the kernel's error
/// text) with the request left out of error replies.
pub fn netlink_route() -> Result<OwnedFd, Errno> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    setsockopt(&fd, NetlinkExtAck, &true)?;
    setsockopt(&fd, NetlinkCapAck, &true)?;
    Ok(fd)
}

/// Sends one complete netlink message to the kernel.
pub fn netlink_send(fd: &OwnedFd, msg: &[u8]) -> Result<(), Errno> {
    // Port id 0, no groups: the kernel's address.
    sendto(fd.as_raw_fd(), msg, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    Ok(())
}

/// Receives one datagram (possibly several messages) into `buf`.
pub fn netlink_recv(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    Ok(recv(fd.as_raw_fd(), buf, MsgFlags::empty())?)
}

// ------------------------------------------------------ packet sockets

/// `PACKET_AUXDATA`, `PACKET_IGNORE_OUTGOING` (include/uapi/linux/if_packet.h).
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata` (include/uapi/linux/if_packet.h); only its
/// size is used (the layout test), the fields are read from the control
/// message's bytes at these offsets.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// The VLAN tag (TPID, TCI) a `tpacket_auxdata` reports the stack took off,
/// if any.
fn auxdata_vlan(b: &[u8]) -> Option<(u16, u16)> {
    let u16_at = |o: usize| Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let status = u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?);
    if status & TP_STATUS_VLAN_VALID == 0 {
        return None;
    }
    let tci = u16_at(std::mem::offset_of!(TpacketAuxdata, tp_vlan_tci))?;
    let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
        u16_at(std::mem::offset_of!(TpacketAuxdata, tp_vlan_tpid))?
    } else {
        0x8100
    };
    Some((tpid, tci))
}

/// The `sockaddr_ll` naming interface `ifindex` with `protocol` (host
/// order; stored big-endian as packet(7) wants).
fn link_addr(ifindex: u32, protocol: u16) -> LinkAddr {
    let a = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `a` is a live, fully initialised sockaddr_ll and `len` is its
    // size, which is what `from_raw` reads. (nix offers no safe way to make
    // a LinkAddr from an interface index.)
    let addr = unsafe { LinkAddr::from_raw(&a as *const libc::sockaddr_ll as *const _, Some(len)) };
    addr.expect("an AF_PACKET sockaddr_ll of its own size is a LinkAddr")
}

/// What a packet socket is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// Sending only (protocol 0 receives nothing, packet(7)).
    Send,
    /// Every frame the interface receives, not the ones it sends.
    Incoming,
    /// Every frame, both ways; [`packet_recv`] says which way each went
    /// (`PACKET_OUTGOING` frames are the ones the interface transmitted:
    /// packet taps see them in `dev_queue_xmit_nit`, net/core/dev.c, before
    /// the driver gets them).
    Both,
}

/// `PACKET_OUTGOING` (include/uapi/linux/if_packet.h): a frame the
/// interface sent, in `sll_pkttype`.
pub const PACKET_OUTGOING: u8 = 4;
/// `PACKET_LOOPBACK`: a frame the host sent to itself (multicast loopback).
pub const PACKET_LOOPBACK: u8 = 5;

/// A packet socket bound to `ifindex`. Receiving sockets report VLAN tags
/// the stack took off in auxdata and do not block.
pub fn packet_socket(ifindex: u32, tap: Tap) -> Result<OwnedFd, Errno> {
    let receive = tap != Tap::Send;
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if receive {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    // ETH_P_ALL (big-endian in the call, as nix's `EthAll` is) to receive
    // everything; protocol 0 receives nothing.
    let proto = receive.then_some(SockProtocol::EthAll);
    let fd = socket(AddressFamily::Packet, SockType::Raw, flags, proto)?;
    if receive {
        if tap == Tap::Incoming {
            setsockopt(&fd, PacketIgnoreOutgoing, &true)?;
        }
        setsockopt(&fd, PacketAuxdata, &true)?;
        setsockopt(&fd, sockopt::RcvBuf, &(4 << 20))?;
    }
    let eth_p_all = libc::ETH_P_ALL as u16;
    bind(fd.as_raw_fd(), &link_addr(ifindex, if receive { eth_p_all } else { 0 }))?;
    Ok(fd)
}

/// Transmits one whole Ethernet frame on the socket's interface.
pub fn packet_send(fd: &OwnedFd, ifindex: u32, frame: &[u8]) -> Result<(), Errno> {
    sendto(fd.as_raw_fd(), frame, &link_addr(ifindex, 0), MsgFlags::empty())?;
    Ok(())
}

/// Control-message space for one `tpacket_auxdata`, with room to spare,
/// aligned as `struct cmsghdr` needs.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// Takes one received frame, if one is queued, as it was on the wire, with
/// its `sll_pkttype` ([`PACKET_OUTGOING`] for frames the interface sent): a
/// VLAN tag the stack moved into the skb (`skb_vlan_untag` runs before the
/// packet taps) is put back from the auxdata, as libpcap does.
pub fn packet_recv(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<(Vec<u8>, u8)>, Errno> {
    let mut control = CmsgBuf([0; 128]);
    let mut iov = [IoSliceMut::new(buf)];
    // The kernel reports a `sockaddr_ll` of full size even for 6-byte
    // hardware addresses (net/packet/af_packet.c `packet_recvmsg` pads
    // msg_namelen), which is what `LinkAddr` requires.
    let (len, pkttype, vlan) = match recvmsg::<LinkAddr>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut control.0),
        MsgFlags::MSG_TRUNC,
    ) {
        Ok(msg) => {
            let mut vlan = None;
            // A truncated control buffer (ENOBUFS) cannot happen with only
            // auxdata asked for; it would leave the frame as received.
            for c in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::Unknown(u) = c {
                    if u.cmsg_header.cmsg_level == libc::SOL_PACKET
                        && u.cmsg_header.cmsg_type == PACKET_AUXDATA
                    {
                        vlan = auxdata_vlan(&u.data_bytes).or(vlan);
                    }
                }
            }
            (msg.bytes, msg.address.map_or(0, |a| a.pkttype()), vlan)
        }
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = len.min(buf.len());
    let mut frame = buf[..len].to_vec();
    if let Some((tpid, tci)) = vlan {
        if frame.len() >= 12 {
            let mut tag = tpid.to_be_bytes().to_vec();
            tag.extend_from_slice(&tci.to_be_bytes());
            frame.splice(12..12, tag);
        }
    }
    Ok(Some((frame, pkttype)))
}

/// Waits until one of `fds` is readable or `timeout` passes; returns which
/// are readable.
pub fn poll_readable(fds: &[&OwnedFd], timeout: Duration) -> Result<Vec<bool>, Errno> {
    let mut p: Vec<PollFd<'_>> =
        fds.iter().map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut p, ms) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(vec![false; fds.len()]),
        Err(e) => return Err(e.into()),
    }
    Ok(p.iter().map(|x| x.revents().is_some_and(|r| r.contains(PollFlags::POLLIN))).collect())
}

// ------------------------------------------------- interfaces (ioctls)

fn ifreq(name: &str) -> Result<libc::ifreq, Errno> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

/// A datagram socket, only as a handle for interface ioctls in the current
/// network namespace.
fn ioctl_socket() -> Result<OwnedFd, Errno> {
    Ok(socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?)
}

/// The interface's index in the calling thread's network namespace.
pub fn if_index(name: &str) -> Result<u32, Errno> {
    // SIOCGIFINDEX on this module's AF_INET socket, not nix's
    // if_nametoindex: the C library's opens an AF_UNIX socket for the
    // ioctl, and minimal kernels (the matrix's netdevsim cell, built from
    // tinyconfig) have no CONFIG_UNIX, so it fails with EAFNOSUPPORT.
    let s = ioctl_socket()?;
    let mut r = ifreq(name)?;
    // SAFETY: SIOCGIFINDEX reads the name and writes ifru_ifindex inside `r`,
    // a valid, initialised ifreq that outlives the call.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFINDEX as _, &mut r) })?;
    // SAFETY: the kernel filled the ifindex member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_ifindex } as u32)
}

/// `if_indextoname(3)` in the calling thread's network namespace.
pub fn if_name(ifindex: u32) -> Result<String, Errno> {
    Ok(nix::net::if_::if_indextoname(ifindex)?.to_string_lossy().into_owned())
}

/// `struct ethtool_drvinfo` (include/uapi/linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}
const ETHTOOL_GDRVINFO: u32 = 0x3;

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Driver name, driver version, firmware version and bus address, as
/// `ethtool -i` shows them.
pub fn driver_info(name: &str) -> Result<[String; 4], Errno> {
    let s = ioctl_socket()?;
    let mut info = EthtoolDrvinfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        n_priv_flags: 0,
        n_stats: 0,
        testinfo_len: 0,
        eedump_len: 0,
        regdump_len: 0,
    };
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_data = &mut info as *mut EthtoolDrvinfo as *mut libc::c_char;
    // SAFETY: SIOCETHTOOL with ETHTOOL_GDRVINFO writes one ethtool_drvinfo
    // through ifru_data, which points at the live local `info`. Raw libc:
    // nix has no ethtool call (its ioctl macros only generate an unsafe
    // function over this same ioctl).
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL as _, &mut r) })?;
    Ok([cstr(&info.driver), cstr(&info.version), cstr(&info.fw_version), cstr(&info.bus_info)])
}

// ------------------------------------------------ network namespaces

/// Runs `f` on a scoped thread that has entered the network namespace at
/// `netns` (a file such as `/run/netns/NAME`), so sockets `f` creates
/// belong to it; the caller's thread stays where it is. Sockets keep their
/// namespace for life, wherever they are used from.
pub fn in_netns<T: Send>(netns: Option<&Path>, f: impl FnOnce() -> T + Send) -> Result<T, Errno> {
    let Some(path) = netns else { return Ok(f()) };
    let file =
        std::fs::File::open(path).map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // setns only changes this (fresh, scoped) thread's network
            // namespace.
            setns(&file, CloneFlags::CLONE_NEWNET)?;
            Ok(f())
        })
        .join()
        .unwrap_or(Err(Errno(libc::EIO)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi_headers() {
        // Sizes from include/uapi/linux/ethtool.h and if_packet.h as
        // compiled for x86-64: ethtool_drvinfo 196 bytes, tpacket_auxdata 20.
        // (The bpf(2) attributes are checked in `sys`.)
        assert_eq!(std::mem::size_of::<EthtoolDrvinfo>(), 196);
        assert_eq!(std::mem::size_of::<TpacketAuxdata>(), 20);
    }

    #[test]
    fn auxdata_vlan_reads_the_tag_at_the_header_offsets() {
        // struct tpacket_auxdata: tp_status at 0, tp_vlan_tci at 16,
        // tp_vlan_tpid at 18 (include/uapi/linux/if_packet.h), native order.
        let aux = |status: u32, tci: u16, tpid: u16| {
            let mut b = [0u8; 20];
            b[0..4].copy_from_slice(&status.to_ne_bytes());
            b[16..18].copy_from_slice(&tci.to_ne_bytes());
            b[18..20].copy_from_slice(&tpid.to_ne_bytes());
            b
        };
        let both = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
        assert_eq!(auxdata_vlan(&aux(both, 0x2064, 0x88a8)), Some((0x88a8, 0x2064)));
        // No TPID reported: 802.1Q, as libpcap assumes.
        assert_eq!(auxdata_vlan(&aux(TP_STATUS_VLAN_VALID, 7, 0x88a8)), Some((0x8100, 7)));
        assert_eq!(auxdata_vlan(&aux(0, 7, 0x88a8)), None);
        // A short control message is ignored, not read past.
        assert_eq!(auxdata_vlan(&aux(both, 7, 0x88a8)[..17]), None);
    }
}
