//! Protocol class and flow 5-tuple of an Ethernet frame.
//!
//! # The classification rule
//!
//! A frame's class is the *innermost layer whose header is intact*, where
//! the layers are tried in this order:
//!
//! 1. Fewer than 14 bytes (no complete Ethernet header): `Unparseable`.
//! 2. VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100), at most
//!    two, are recorded in [`FrameClass::vlan`] and skipped. A truncated
//!    tag: `Unparseable`. A VLAN tag is orthogonal to the protocol inside,
//!    so it is reported next to the class rather than instead of it.
//! 3. The (inner) EtherType decides the network layer:
//!    - 0x0800 / 0x86dd: the IP header (and, for IPv6, the extension
//!      header chain) must parse and carry the version the EtherType
//!      promises, else `Unparseable`. A wrong total-length / payload-length
//!      field does not matter here: lengths are checked laxly, like a
//!      program that trusts the buffer end rather than the header.
//!    - 0x0806: `Arp` when the fixed ARP header and the addresses it
//!      announces are present, else `Unparseable`.
//!    - anything else (including 802.3 length fields): `Other`.
//! 4. For IP, the transport header: `Tcp`, `Udp`, `Icmpv4`, `Icmpv6` when
//!    the packet is not a fragment and the header is complete; otherwise
//!    (fragments — first ones included —, other protocols, truncated
//!    transport headers, a broken IPv6 extension chain after the fixed
//!    header) the class stays `Ipv4` / `Ipv6`.
//!
//! Checksums are never looked at.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{err::Layer, EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice, VlanSlice};

/// The protocol class of a frame; see the module documentation for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtoClass {
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
    Ipv4,
    Ipv6,
    Arp,
    Other,
    Unparseable,
}

impl ProtoClass {
    /// A short stable name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ProtoClass::Tcp => "tcp",
            ProtoClass::Udp => "udp",
            ProtoClass::Icmpv4 => "icmp",
            ProtoClass::Icmpv6 => "icmpv6",
            ProtoClass::Ipv4 => "ipv4",
            ProtoClass::Ipv6 => "ipv6",
            ProtoClass::Arp => "arp",
            ProtoClass::Other => "other",
            ProtoClass::Unparseable => "unparseable",
        }
    }
}

/// VLAN tags in front of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VlanTagging {
    Untagged,
    /// One tag.
    Single,
    /// Two tags (QinQ); the outer one usually 802.1ad.
    Double,
}

/// Class of a frame: its VLAN tagging and the protocol class inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameClass {
    pub vlan: VlanTagging,
    pub proto: ProtoClass,
}

impl fmt::Display for FrameClass {
    /// "tcp", "vlan/udp", "qinq/ipv6", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vlan {
            VlanTagging::Untagged => {}
            VlanTagging::Single => f.write_str("vlan/")?,
            VlanTagging::Double => f.write_str("qinq/")?,
        }
        f.write_str(self.proto.name())
    }
}

/// A flow key: addresses, IP protocol number and ports.
///
/// `protocol` is the last next-header value (after IPv6 extension headers).
/// Ports are those of the TCP or UDP header, and 0 when there is none
/// (ICMP, other protocols, fragments, truncated transport headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

impl fmt::Display for FiveTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sock = |a: IpAddr, p: u16| match a {
            IpAddr::V4(a) => format!("{a}:{p}"),
            IpAddr::V6(a) => format!("[{a}]:{p}"),
        };
        write!(
            f,
            "{} -> {} proto {}",
            sock(self.src, self.src_port),
            sock(self.dst, self.dst_port),
            self.protocol
        )
    }
}

struct Parsed {
    class: FrameClass,
    flow: Option<FiveTuple>,
}

/// Classifies an Ethernet frame; see the module documentation for the rule.
pub fn classify(frame: &[u8]) -> FrameClass {
    parse(frame).class
}

/// The flow 5-tuple of an Ethernet frame carrying an intact IP header
/// (after up to two VLAN tags); `None` otherwise.
pub fn flow(frame: &[u8]) -> Option<FiveTuple> {
    parse(frame).flow
}

/// [`classify`] and [`flow`] from one parse of the frame.
pub fn classify_with_flow(frame: &[u8]) -> (FrameClass, Option<FiveTuple>) {
    let p = parse(frame);
    (p.class, p.flow)
}

fn parse(frame: &[u8]) -> Parsed {
    parse_common(frame).unwrap_or_else(|| parse_general(frame))
}

/// [`parse_general`]'s answer for the frames most captures are made of,
/// read straight from the bytes: Ethernet, at most one VLAN tag, IPv4
/// without options or IPv6 without extension headers, whose length field
/// fits in the frame, carrying a complete TCP, UDP or ICMP header (or, for
/// IPv4, a fragment or a protocol we do not parse). `None` for anything
/// else, which the general parser handles. etherparse's lax parse builds a
/// large structure per frame and was most of replay's classification time;
/// this path answers the same (test `common_frames_parse_as_etherparse_does`
/// holds it to that on every frame kind and on every truncation and header
/// byte change of them). The conditions are etherparse 0.16's, in
/// `LaxIpSlice::from_slice` and `LaxSlicedPacketCursor::slice_transport`.
fn parse_common(frame: &[u8]) -> Option<Parsed> {
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    if frame.len() < 14 {
        return None;
    }
    let (vlan, ether_type, ip) = match be16(frame, 12) {
        0x8100 | 0x88a8 | 0x9100 => {
            if frame.len() < 18 {
                return None;
            }
            (VlanTagging::Single, be16(frame, 16), &frame[18..])
        }
        t => (VlanTagging::Untagged, t, &frame[14..]),
    };
    let (net_class, src, dst, protocol, payload, fragmented) = match ether_type {
        0x0800 => {
            // Version 4 and IHL 5: no options (an AH header is etherparse's).
            if ip.len() < 20 || ip[0] != 0x45 || ip[9] == 51 {
                return None;
            }
            // A total length below the header or past the frame makes
            // etherparse fall back to the frame's length: its business.
            let total = usize::from(be16(ip, 2));
            if !(20..=ip.len()).contains(&total) {
                return None;
            }
            let v4 =
                |at: usize| IpAddr::V4(Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]));
            // More fragments (0x2000) or a fragment offset (low 13 bits).
            let fragmented = be16(ip, 6) & 0x3fff != 0;
            (ProtoClass::Ipv4, v4(12), v4(16), ip[9], &ip[20..total], fragmented)
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return None;
            }
            // Payload length 0 (a jumbogram, or not filled in) and one past
            // the frame are etherparse's; so is every extension header.
            let len = usize::from(be16(ip, 4));
            if len == 0 || 40 + len > ip.len() || !matches!(ip[6], 6 | 17 | 58) {
                return None;
            }
            let v6 = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            (ProtoClass::Ipv6, v6(8), v6(24), ip[6], &ip[40..40 + len], false)
        }
        _ => return None,
    };
    let ports = |p: &[u8]| (be16(p, 0), be16(p, 2));
    let (proto, (src_port, dst_port)) = if fragmented {
        (net_class, (0, 0))
    } else {
        match protocol {
            // A complete TCP header: data offset at least 5 words, all there.
            6 if payload.len() >= 20
                && (20..=payload.len()).contains(&usize::from((payload[12] & 0xf0) >> 2)) =>
            {
                (ProtoClass::Tcp, ports(payload))
            }
            17 if payload.len() >= 8 => (ProtoClass::Udp, ports(payload)),
            // Timestamp messages (types 13, 14) have a length rule of their own.
            1 if payload.len() >= 8 && !matches!(payload[0], 13 | 14) => {
                (ProtoClass::Icmpv4, (0, 0))
            }
            58 if payload.len() >= 8 => (ProtoClass::Icmpv6, (0, 0)),
            // Truncated headers of those four are the general parser's.
            1 | 6 | 17 | 58 => return None,
            _ => (net_class, (0, 0)),
        }
    };
    Some(Parsed {
        class: FrameClass { vlan, proto },
        flow: Some(FiveTuple { src, dst, protocol, src_port, dst_port }),
    })
}

/// The classification rule through etherparse's lax parser: every frame,
/// however malformed.
fn parse_general(frame: &[u8]) -> Parsed {
    let unparseable =
        |vlan| Parsed { class: FrameClass { vlan, proto: ProtoClass::Unparseable }, flow: None };
    let Ok(pkt) = LaxSlicedPacket::from_ethernet(frame) else {
        return unparseable(VlanTagging::Untagged);
    };
    let vlan = match &pkt.vlan {
        None => VlanTagging::Untagged,
        Some(VlanSlice::SingleVlan(_)) => VlanTagging::Single,
        Some(VlanSlice::DoubleVlan(_)) => VlanTagging::Double,
    };
    let stop_layer = pkt.stop_err.as_ref().map(|(_, layer)| *layer);
    if stop_layer == Some(Layer::VlanHeader) {
        // A second tag that is cut off still means the frame had tags.
        return unparseable(if vlan == VlanTagging::Untagged { VlanTagging::Single } else { vlan });
    }
    let Some(ether) = pkt.ether_payload() else {
        return unparseable(vlan);
    };
    let done = |proto| Parsed { class: FrameClass { vlan, proto }, flow: None };
    match ether.ether_type {
        EtherType::IPV4 | EtherType::IPV6 => {}
        EtherType::ARP => {
            return done(if arp_is_complete(ether.payload) {
                ProtoClass::Arp
            } else {
                ProtoClass::Unparseable
            });
        }
        _ => return done(ProtoClass::Other),
    }
    let (net_class, src, dst, payload) = match (&pkt.net, ether.ether_type) {
        (Some(LaxNetSlice::Ipv4(v4)), EtherType::IPV4) => (
            ProtoClass::Ipv4,
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.payload(),
        ),
        (Some(LaxNetSlice::Ipv6(v6)), EtherType::IPV6) => (
            ProtoClass::Ipv6,
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.payload(),
        ),
        // No IP header, or one whose version contradicts the EtherType.
        _ => return unparseable(vlan),
    };
    let (proto, ports) = match &pkt.transport {
        Some(TransportSlice::Tcp(t)) => (ProtoClass::Tcp, (t.source_port(), t.destination_port())),
        Some(TransportSlice::Udp(u)) => (ProtoClass::Udp, (u.source_port(), u.destination_port())),
        Some(TransportSlice::Icmpv4(_)) => (ProtoClass::Icmpv4, (0, 0)),
        Some(TransportSlice::Icmpv6(_)) => (ProtoClass::Icmpv6, (0, 0)),
        None => (net_class, (0, 0)),
    };
    Parsed {
        class: FrameClass { vlan, proto },
        flow: Some(FiveTuple {
            src,
            dst,
            protocol: payload.ip_number.0,
            src_port: ports.0,
            dst_port: ports.1,
        }),
    }
}

/// RFC 826: 8 fixed bytes, then sender and target hardware and protocol
/// addresses of the announced lengths.
fn arp_is_complete(payload: &[u8]) -> bool {
    if payload.len() < 8 {
        return false;
    }
    let (hlen, plen) = (usize::from(payload[4]), usize::from(payload[5]));
    payload.len() >= 8 + 2 * (hlen + plen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = MACS.to_vec();
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn tag(tpid: u16, vid: u16, inner: u16) -> Vec<u8> {
        let mut t = tpid.to_be_bytes().to_vec();
        t.extend_from_slice(&vid.to_be_bytes());
        t.extend_from_slice(&inner.to_be_bytes());
        t
    }

    /// IPv4 header written out by hand (checksum left 0: never looked at).
    fn ipv4(proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        h.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        h.extend_from_slice(payload);
        h
    }

    fn udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&[0, 12, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
        u
    }

    fn tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut t = sport.to_be_bytes().to_vec();
        t.extend_from_slice(&dport.to_be_bytes());
        // seq, ack, data offset 5 words, flags SYN, window, checksum, urgent.
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        t
    }

    fn class(frame: &[u8]) -> (VlanTagging, ProtoClass) {
        let c = classify(frame);
        (c.vlan, c.proto)
    }

    use ProtoClass::*;
    use VlanTagging::*;

    #[test]
    fn transports() {
        let f = eth(0x0800, &ipv4(6, 0, &tcp(1234, 80)));
        assert_eq!(class(&f), (Untagged, Tcp));
        assert_eq!(
            flow(&f),
            Some(FiveTuple {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                protocol: 6,
                src_port: 1234,
                dst_port: 80,
            })
        );
        assert_eq!(class(&eth(0x0800, &ipv4(17, 0, &udp(53, 5353)))), (Untagged, Udp));
        assert_eq!(class(&eth(0x0800, &ipv4(1, 0, &[8, 0, 0, 0, 0, 1, 0, 1]))), (Untagged, Icmpv4));
        let f = eth(0x86dd, &ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1]));
        assert_eq!(class(&f), (Untagged, Icmpv6));
        assert_eq!(flow(&f).map(|t| (t.protocol, t.src_port)), Some((58, 0)));
    }

    #[test]
    fn ipv6_extension_chain_is_walked() {
        // Hop-by-hop (next = UDP, length 0 = 8 bytes, PadN 4 bytes) then UDP.
        let mut p = vec![17, 0, 1, 4, 0, 0, 0, 0];
        p.extend_from_slice(&udp(7, 9));
        let f = eth(0x86dd, &ipv6(0, &p));
        assert_eq!(class(&f), (Untagged, Udp));
        let t = flow(&f).unwrap();
        assert_eq!((t.protocol, t.src_port, t.dst_port), (17, 7, 9));
    }

    #[test]
    fn network_only() {
        // GRE: no transport we parse.
        let f = eth(0x0800, &ipv4(47, 0, &[0; 8]));
        assert_eq!(class(&f), (Untagged, Ipv4));
        assert_eq!(flow(&f).map(|t| (t.protocol, t.src_port, t.dst_port)), Some((47, 0, 0)));
        // Non-first fragment (offset 8 units) and first fragment (MF) of UDP.
        assert_eq!(class(&eth(0x0800, &ipv4(17, 0x0008, &udp(1, 2)))), (Untagged, Ipv4));
        assert_eq!(class(&eth(0x0800, &ipv4(17, 0x2000, &udp(1, 2)))), (Untagged, Ipv4));
        // Truncated TCP header.
        assert_eq!(class(&eth(0x0800, &ipv4(6, 0, &tcp(1, 2)[..10]))), (Untagged, Ipv4));
        assert_eq!(class(&eth(0x86dd, &ipv6(59, &[]))), (Untagged, Ipv6));
    }

    #[test]
    fn arp_and_other() {
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
        arp.extend_from_slice(&[0; 20]);
        assert_eq!(class(&eth(0x0806, &arp)), (Untagged, Arp));
        assert_eq!(class(&eth(0x0806, &arp[..20])), (Untagged, Unparseable));
        assert!(flow(&eth(0x0806, &arp)).is_none());
        assert_eq!(class(&eth(0x88cc, &[1, 2, 3])), (Untagged, Other));
        // 802.3 length field.
        assert_eq!(class(&eth(0x0005, &[0x42, 0x42, 0x03, 0, 0])), (Untagged, Other));
    }

    #[test]
    fn vlan_tags() {
        let mut p = tag(0x8100, 100, 0x0800)[2..].to_vec();
        p.extend_from_slice(&ipv4(17, 0, &udp(1, 2)));
        assert_eq!(class(&eth(0x8100, &p)), (Single, Udp));

        let mut p = tag(0x88a8, 10, 0x8100)[2..].to_vec();
        p.extend_from_slice(&tag(0x8100, 20, 0x86dd)[2..]);
        p.extend_from_slice(&ipv6(6, &tcp(5, 6)));
        let f = eth(0x88a8, &p);
        assert_eq!(class(&f), (Double, Tcp));
        assert_eq!(classify(&f).to_string(), "qinq/tcp");
        assert_eq!(flow(&f).map(|t| t.dst_port), Some(6));

        let mut p = tag(0x8100, 100, 0x88cc)[2..].to_vec();
        p.extend_from_slice(&[1, 2, 3]);
        assert_eq!(class(&eth(0x8100, &p)), (Single, Other));
        // Tag cut short.
        assert_eq!(class(&eth(0x8100, &[0, 100])), (Single, Unparseable));
    }

    #[test]
    fn unparseable() {
        assert_eq!(class(&[0u8; 13]), (Untagged, Unparseable));
        assert_eq!(class(&[]), (Untagged, Unparseable));
        // IHL 2 (8 bytes) is not a valid IPv4 header.
        let mut bad = ipv4(17, 0, &udp(1, 2));
        bad[0] = 0x42;
        assert_eq!(class(&eth(0x0800, &bad)), (Untagged, Unparseable));
        // An IPv6 header behind the IPv4 EtherType.
        assert_eq!(class(&eth(0x0800, &ipv6(17, &udp(1, 2)))), (Untagged, Unparseable));
        assert!(flow(&eth(0x0800, &ipv6(17, &udp(1, 2)))).is_none());
        // Header cut short.
        assert_eq!(class(&eth(0x0800, &ipv4(17, 0, &[])[..12])), (Untagged, Unparseable));
    }

    /// The fast path answers exactly as etherparse's lax parse: on frames
    /// of every kind it takes (checked to be taken, so the comparison is
    /// not empty), on every truncation of them, and with each of their
    /// first 70 bytes replaced by values that hit the boundaries of the
    /// fields there (versions, header lengths, length fields, fragment
    /// bits, protocol numbers, TCP data offset, ICMP types).
    #[test]
    fn common_frames_parse_as_etherparse_does() {
        let icmp = |t: u8| vec![t, 0, 0, 0, 0, 1, 0, 1];
        let mut frames = vec![
            eth(0x0800, &ipv4(6, 0, &tcp(1234, 80))),
            eth(0x0800, &ipv4(17, 0, &udp(53, 5353))),
            eth(0x0800, &ipv4(1, 0, &icmp(8))),
            eth(0x0800, &ipv4(1, 0, &icmp(13))),
            eth(0x0800, &ipv4(58, 0, &icmp(128))),
            eth(0x0800, &ipv4(47, 0, &[0; 8])),
            eth(0x0800, &ipv4(17, 0x2000, &udp(1, 2))),
            eth(0x0800, &ipv4(6, 0x0008, &tcp(1, 2))),
            eth(0x86dd, &ipv6(6, &tcp(5, 6))),
            eth(0x86dd, &ipv6(17, &udp(7, 9))),
            eth(0x86dd, &ipv6(58, &icmp(128))),
            eth(0x86dd, &ipv6(1, &icmp(8))),
        ];
        for base in frames.clone() {
            // The same behind one VLAN tag.
            let mut p = tag(0x8100, 100, u16::from_be_bytes([base[12], base[13]]))[2..].to_vec();
            p.extend_from_slice(&base[14..]);
            frames.push(eth(0x8100, &p));
        }
        // Trailing bytes past the IP length (Ethernet padding).
        let mut padded = eth(0x0800, &ipv4(17, 0, &udp(1, 2)));
        padded.extend_from_slice(&[0xaa; 10]);
        frames.push(padded);
        let taken = frames.iter().filter(|f| parse_common(f).is_some()).count();
        // Everything but ICMP timestamps (types 13) and ICMP in IPv6.
        assert_eq!(taken, frames.len() - 4, "the fast path should take the common frames");
        let same = |f: &[u8]| -> bool {
            match parse_common(f) {
                None => false,
                Some(fast) => {
                    let general = parse_general(f);
                    assert_eq!(
                        (fast.class, fast.flow),
                        (general.class, general.flow),
                        "frame {f:02x?}"
                    );
                    true
                }
            }
        };
        let mut compared = 0;
        for f in &frames {
            for len in 0..=f.len() {
                compared += usize::from(same(&f[..len]));
            }
            for at in 0..f.len().min(70) {
                for v in [0u8, 1, 4, 5, 6, 0x13, 0x40, 0x45, 0x46, 0x50, 0x60, 0x86, 0xdd, 0xff] {
                    let mut g = f.clone();
                    g[at] = v;
                    compared += usize::from(same(&g));
                    g[at] = f[at] ^ 0x01;
                    compared += usize::from(same(&g));
                }
            }
        }
        assert!(compared > 10_000, "only {compared} frames compared");
    }

    #[test]
    fn wrong_total_length_is_tolerated() {
        let mut p = ipv4(17, 0, &udp(1, 2));
        p[2..4].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(class(&eth(0x0800, &p)), (Untagged, Udp));
    }
}
