//! The live backend's system calls outside `bpf(2)`: netlink and packet
//! sockets, interface ioctls and network namespaces.
//!
//! Each public function is safe to call: buffers handed to the kernel are
//! borrowed slices or locals whose sizes are passed with them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

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

fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    let fd = check(fd)?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else in
    // this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), Errno> {
    // SAFETY: the option value is a live c_int and its exact size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

// ------------------------------------------------------------- netlink

/// `SOL_NETLINK`, `NETLINK_CAP_ACK`, `NETLINK_EXT_ACK` (include/uapi/linux/netlink.h).
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

/// A NETLINK_ROUTE socket asking for extended acks (the kernel's error
/// text) with the request left out of error replies.
pub fn netlink_route() -> Result<OwnedFd, Errno> {
    // SAFETY: plain socket(2) call, no pointers.
    let fd = owned(unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
    })?;
    setsockopt_int(&fd, SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
    setsockopt_int(&fd, SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
    Ok(fd)
}

/// Sends one complete netlink message to the kernel.
pub fn netlink_send(fd: &OwnedFd, msg: &[u8]) -> Result<(), Errno> {
    // SAFETY: sockaddr_nl is plain data; all-zero is the kernel's address.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `addr` are live for the call and their sizes passed.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

/// Receives one datagram (possibly several messages) into `buf`.
pub fn netlink_recv(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let r =
        unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    if r < 0 {
        Err(last())
    } else {
        Ok(r as usize)
    }
}

// ------------------------------------------------------ packet sockets

const ETH_P_ALL: u16 = 0x0003;
/// `PACKET_AUXDATA`, `PACKET_IGNORE_OUTGOING` (include/uapi/linux/if_packet.h).
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata`.
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

fn sockaddr_ll(ifindex: u32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = protocol.to_be();
    a.sll_ifindex = ifindex as i32;
    a
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
    let proto = if receive { ETH_P_ALL } else { 0 };
    let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | if receive { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket(2) call, no pointers.
    let fd = owned(unsafe { libc::socket(libc::AF_PACKET, flags, i32::from(proto.to_be())) })?;
    if receive {
        if tap == Tap::Incoming {
            setsockopt_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        }
        setsockopt_int(&fd, libc::SOL_PACKET, PACKET_AUXDATA, 1)?;
        setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
    }
    let addr = sockaddr_ll(ifindex, proto);
    // SAFETY: `addr` is a live sockaddr_ll and its size is passed.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

/// Transmits one whole Ethernet frame on the socket's interface.
pub fn packet_send(fd: &OwnedFd, ifindex: u32, frame: &[u8]) -> Result<(), Errno> {
    let addr = sockaddr_ll(ifindex, 0);
    // SAFETY: `frame` and `addr` are live for the call, sizes passed.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr() as *const libc::c_void,
            frame.len(),
            0,
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

/// Takes one received frame, if one is queued, as it was on the wire, with
/// its `sll_pkttype` ([`PACKET_OUTGOING`] for frames the interface sent): a
/// VLAN tag the stack moved into the skb (`skb_vlan_untag` runs before the
/// packet taps) is put back from the auxdata, as libpcap does.
pub fn packet_recv(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<(Vec<u8>, u8)>, Errno> {
    let mut iov =
        libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &mut from as *mut libc::sockaddr_ll as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    // socklen_t on musl, size_t on glibc.
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `from`, `iov` (over `buf`) and `control`, all
    // live and writable for the sizes recorded in them.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if r < 0 {
        let e = last();
        return if e.0 == libc::EAGAIN { Ok(None) } else { Err(e) };
    }
    let len = (r as usize).min(buf.len());
    let mut frame = buf[..len].to_vec();
    // SAFETY: CMSG_* walk the control buffer the kernel filled, bounded by
    // msg_controllen; the auxdata payload is read unaligned into a local.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                let aux: TpacketAuxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const TpacketAuxdata);
                if aux.tp_status & TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
                    let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    let mut tag = tpid.to_be_bytes().to_vec();
                    tag.extend_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                    frame.splice(12..12, tag);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Some((frame, from.sll_pkttype)))
}

/// Waits until one of `fds` is readable or `timeout` passes; returns which
/// are readable.
pub fn poll_readable(fds: &[&OwnedFd], timeout: Duration) -> Result<Vec<bool>, Errno> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `p` is a live array of `p.len()` pollfds.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = last();
        if e.0 == libc::EINTR {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents & libc::POLLIN != 0).collect())
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
    // SAFETY: plain socket(2) call.
    owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })
}

/// The interface's index in the calling thread's network namespace.
pub fn if_index(name: &str) -> Result<u32, Errno> {
    let s = ioctl_socket()?;
    let mut r = ifreq(name)?;
    // SAFETY: SIOCGIFINDEX reads the name and writes ifru_ifindex inside `r`.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFINDEX as _, &mut r) })?;
    // SAFETY: the kernel filled the ifindex member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_ifindex } as u32)
}

/// `if_indextoname(3)` in the calling thread's network namespace.
pub fn if_name(ifindex: u32) -> Result<String, Errno> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes the call may write.
    let r = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if r.is_null() {
        return Err(last());
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Ok(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
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
    // through ifru_data, which points at the live local `info`.
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
            // SAFETY: `file` is an open namespace file; setns only changes
            // this (fresh, scoped) thread's network namespace.
            check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
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
}
