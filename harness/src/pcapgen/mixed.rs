//! The `mixed` profile: every protocol class plus the hard cases.
//!
//! Per packet, one draw out of 100 picks the case:
//!
//! | draws | case |
//! |---|---|
//! | 14 / 12 / 5 | plain IPv4 TCP / UDP / ICMP |
//! | 7 / 7 / 5 | plain IPv6 TCP / UDP / ICMPv6 |
//! | 5 | ARP request |
//! | 2 | unknown EtherType (LLDP 0x88cc) |
//! | 6 | one 802.1Q tag around IP (80%) or ARP |
//! | 4 | QinQ: 802.1ad tag, 802.1Q tag, then IP or ARP |
//! | 5 | IPv4 fragment (first or last of two) |
//! | 5 | IPv4 options (Router Alert or Record Route) |
//! | 6 | IPv6 extension chain: a non-empty subset of hop-by-hop, routing, fragment, destination options |
//! | 3 | jumbo frame, 1515..=9000 bytes |
//! | 3 | runt, 1..=13 bytes |
//! | 5 | IP length field too long or too short |
//! | 6 | wrong IPv4 header or transport checksum |
//!
//! Frames are never padded to the 60-byte Ethernet minimum, so a length
//! field disagreeing with the frame is always one of the deliberate ones.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::kind::{
    BadChecksum, BadLength, Fragment, GenKind, IpKind, Ipv4Opt, Ipv6Ext, Net, Vlan, L4,
};
use super::rng::Rng;

const DST_PORTS: [u16; 7] = [22, 53, 80, 123, 443, 5201, 8080];

#[derive(Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

pub(crate) fn next(rng: &mut Rng) -> GenKind {
    match rng.below(100) {
        0..=13 => ip(plain(false, Proto::Tcp, rng)),
        14..=25 => ip(plain(false, Proto::Udp, rng)),
        26..=30 => ip(plain(false, Proto::Icmp, rng)),
        31..=37 => ip(plain(true, Proto::Tcp, rng)),
        38..=44 => ip(plain(true, Proto::Udp, rng)),
        45..=49 => ip(plain(true, Proto::Icmp, rng)),
        50..=54 => GenKind::Arp { vlan: Vlan::None },
        55..=56 => GenKind::OtherEthertype {
            vlan: Vlan::None,
            ethertype: 0x88cc,
            payload_len: rng.range(46, 100) as usize,
        },
        57..=62 => {
            let vlan = Vlan::Dot1Q { vid: rng.range(1, 4094) as u16 };
            tagged(rng, vlan)
        }
        63..=66 => {
            let vlan = Vlan::QinQ {
                outer_vid: rng.range(1, 4094) as u16,
                inner_vid: rng.range(1, 4094) as u16,
            };
            tagged(rng, vlan)
        }
        67..=71 => {
            let mut k = plain(false, any_proto(rng), rng);
            k.payload_len = k.payload_len.max(16);
            if let Net::V4 { fragment, .. } = &mut k.net {
                *fragment = Some(if rng.percent(50) { Fragment::First } else { Fragment::Last });
            }
            ip(k)
        }
        72..=76 => {
            let mut k = plain(false, any_proto(rng), rng);
            if let Net::V4 { options, .. } = &mut k.net {
                *options =
                    Some(if rng.percent(50) { Ipv4Opt::RouterAlert } else { Ipv4Opt::RecordRoute });
            }
            ip(k)
        }
        77..=82 => {
            let mut k = plain(true, any_proto(rng), rng);
            let mask = rng.range(1, 15);
            let all = [
                Ipv6Ext::HopByHop,
                Ipv6Ext::Routing,
                Ipv6Ext::Fragment,
                Ipv6Ext::DestinationOptions,
            ];
            if let Net::V6 { exts, .. } = &mut k.net {
                *exts = (0..4).filter(|b| mask & (1 << b) != 0).map(|b| all[b]).collect();
            }
            ip(k)
        }
        83..=85 => {
            let v6 = rng.percent(50);
            let proto = if rng.percent(50) { Proto::Tcp } else { Proto::Udp };
            let mut k = plain(v6, proto, rng);
            k.payload_len = 0;
            let overhead = GenKind::Ip(k.clone()).frame_len();
            k.payload_len = rng.range(1515, 9000) as usize - overhead;
            ip(k)
        }
        86..=88 => GenKind::Runt { len: rng.range(1, 13) as usize },
        89..=93 => {
            let mut k = plain(rng.percent(50), any_proto(rng), rng);
            // Never below the IPv4 header: at most the 8 bytes every transport header has.
            k.bad_length = Some(if rng.percent(50) {
                BadLength::TooLong { by: rng.range(1, 64) as u16 }
            } else {
                BadLength::TooShort { by: rng.range(1, 8) as u16 }
            });
            ip(k)
        }
        _ => {
            let v6 = rng.percent(40);
            let mut k = plain(v6, any_proto(rng), rng);
            k.bad_checksum = Some(if !v6 && rng.percent(50) {
                BadChecksum::Ipv4Header
            } else {
                BadChecksum::Transport
            });
            ip(k)
        }
    }
}

fn ip(k: IpKind) -> GenKind {
    GenKind::Ip(k)
}

fn any_proto(rng: &mut Rng) -> Proto {
    match rng.below(10) {
        0..=4 => Proto::Tcp,
        5..=8 => Proto::Udp,
        _ => Proto::Icmp,
    }
}

fn tagged(rng: &mut Rng, vlan: Vlan) -> GenKind {
    if rng.percent(20) {
        return GenKind::Arp { vlan };
    }
    let mut k = plain(rng.percent(40), any_proto(rng), rng);
    k.vlan = vlan;
    GenKind::Ip(k)
}

/// Payload sizes: mostly small, some mid-sized, some near a full 1500-byte MTU
/// (the largest, 1400, still fits every header combination in 1514 bytes).
fn payload_len(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=4 => rng.below(64) as usize,
        5..=7 => rng.range(64, 511) as usize,
        _ => rng.range(512, 1400) as usize,
    }
}

fn plain(v6: bool, proto: Proto, rng: &mut Rng) -> IpKind {
    let net = if v6 {
        Net::V6 {
            src: Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 1 + rng.below(0xfffe) as u16),
            dst: Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1 + rng.below(0xfffe) as u16),
            exts: Vec::new(),
        }
    } else {
        Net::V4 {
            src: Ipv4Addr::new(10, 0, rng.below(256) as u8, 1 + rng.below(254) as u8),
            dst: Ipv4Addr::new(10, 1, rng.below(256) as u8, 1 + rng.below(254) as u8),
            options: None,
            fragment: None,
        }
    };
    let src_port = rng.range(32768, 60999) as u16;
    let dst_port = rng.pick(&DST_PORTS);
    let l4 = match (proto, v6) {
        (Proto::Tcp, _) => L4::Tcp { src_port, dst_port },
        (Proto::Udp, _) => L4::Udp { src_port, dst_port },
        (Proto::Icmp, false) => {
            L4::Icmpv4 { id: rng.below(0x1_0000) as u16, seq: rng.below(1000) as u16 }
        }
        (Proto::Icmp, true) => {
            L4::Icmpv6 { id: rng.below(0x1_0000) as u16, seq: rng.below(1000) as u16 }
        }
    };
    IpKind {
        vlan: Vlan::None,
        net,
        l4,
        payload_len: payload_len(rng),
        bad_length: None,
        bad_checksum: None,
    }
}
