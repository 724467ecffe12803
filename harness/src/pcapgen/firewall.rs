//! The `firewall` profile: TCP, UDP and ICMP over IPv4 and IPv6, untagged,
//! with correct lengths and checksums, some of it matching a blocklist.
//!
//! # The blocklist
//!
//! A packet *hits the blocklist* when
//! - its source address is 192.0.2.66 or 2001:db8::66 ([`BLOCKED_SRC_V4`],
//!   [`BLOCKED_SRC_V6`]), whatever its protocol; or
//! - it is TCP or UDP and its **destination** port is 23, 445 or 3389
//!   ([`BLOCKED_DST_PORTS`]).
//!
//! About 10% of packets use a blocked source address and about 15% a blocked
//! destination port; another ~5% use a blocked number as the *source* port
//! only (replies from such a service), which must not count as a hit. A
//! firewall XDP program implementing this list should drop exactly the
//! packets for which [`hits_blocklist`] is true.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::kind::{GenKind, IpKind, Net, Vlan, L4};
use super::rng::Rng;

/// Destination ports on the blocklist (telnet, SMB, RDP).
pub const BLOCKED_DST_PORTS: [u16; 3] = [23, 445, 3389];
/// IPv4 source address on the blocklist (TEST-NET-1, RFC 5737).
pub const BLOCKED_SRC_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// IPv6 source address on the blocklist (documentation prefix, RFC 3849).
pub const BLOCKED_SRC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x66);

const COMMON_PORTS: [u16; 8] = [22, 25, 53, 80, 123, 443, 8080, 8443];

/// The blocklist rule (see the module documentation).
/// Whether the `firewall` profile's blocklist matches this packet.
pub fn hits_blocklist(kind: &GenKind) -> bool {
    match kind {
        GenKind::Ip(ip) => blocked(ip),
        _ => false,
    }
}

pub(crate) fn blocked(ip: &IpKind) -> bool {
    let src_blocked = match &ip.net {
        Net::V4 { src, .. } => *src == BLOCKED_SRC_V4,
        Net::V6 { src, .. } => *src == BLOCKED_SRC_V6,
    };
    let port_blocked = ip.l4.dst_port().is_some_and(|p| BLOCKED_DST_PORTS.contains(&p));
    src_blocked || port_blocked
}

pub(crate) fn next(rng: &mut Rng) -> GenKind {
    let v6 = rng.percent(35);
    let blocked_src = rng.percent(10);
    let net = if v6 {
        let src = if blocked_src {
            BLOCKED_SRC_V6
        } else {
            Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x100,
                0,
                0,
                0,
                rng.below(0x1_0000) as u16,
                1 + rng.below(0xfffe) as u16,
            )
        };
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 0, 0, 0, 0, 1 + rng.below(64) as u16);
        Net::V6 { src, dst, exts: Vec::new() }
    } else {
        let src = if blocked_src {
            BLOCKED_SRC_V4
        } else {
            // 198.51.100.0/24 (TEST-NET-2), never .66 so only BLOCKED_SRC_V4 is blocked.
            let mut host = 1 + rng.below(254) as u8;
            if host == 66 {
                host = 67;
            }
            Ipv4Addr::new(198, 51, 100, host)
        };
        Net::V4 {
            src,
            dst: Ipv4Addr::new(203, 0, 113, 1 + rng.below(64) as u8),
            options: None,
            fragment: None,
        }
    };
    let port_roll = rng.below(100);
    let ephemeral = 32768 + rng.below(28232) as u16;
    let (src_port, dst_port) = match port_roll {
        0..=14 => (ephemeral, rng.pick(&BLOCKED_DST_PORTS)),
        15..=19 => (rng.pick(&BLOCKED_DST_PORTS), ephemeral),
        20..=69 => (ephemeral, rng.pick(&COMMON_PORTS)),
        _ => (ephemeral, 1024 + rng.below(31744) as u16),
    };
    let l4_roll = rng.below(100);
    let l4 = match (l4_roll, v6) {
        (0..=54, _) => L4::Tcp { src_port, dst_port },
        (55..=84, _) => L4::Udp { src_port, dst_port },
        (_, false) => L4::Icmpv4 { id: rng.below(0x1_0000) as u16, seq: rng.below(100) as u16 },
        (_, true) => L4::Icmpv6 { id: rng.below(0x1_0000) as u16, seq: rng.below(100) as u16 },
    };
    GenKind::Ip(IpKind {
        vlan: Vlan::None,
        net,
        l4,
        payload_len: rng.below(513) as usize,
        bad_length: None,
        bad_checksum: None,
    })
}
