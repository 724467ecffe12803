//! Turns a [`GenKind`] into frame bytes with etherparse's header types.
//! Every length and checksum is correct unless the kind asks otherwise.

use etherparse::{
    EtherType, Ethernet2Header, IcmpEchoHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type,
    IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, SingleVlanHeader, TcpHeader, UdpHeader, VlanId, VlanPcp,
};

use super::kind::{
    first_fragment_len, BadChecksum, BadLength, Fragment, GenKind, IpKind, Ipv6Ext, Net, Vlan, L4,
};
use super::rng::Rng;

const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;

/// Builds the frame for `kind`; payload bytes (and runt bytes) come from `rng`.
pub(crate) fn build(kind: &GenKind, rng: &mut Rng) -> Vec<u8> {
    let frame = match kind {
        GenKind::Runt { len } => rng.bytes(*len),
        GenKind::Arp { vlan } => {
            let mut f = link_header(*vlan, ETHERTYPE_ARP);
            f.extend_from_slice(&arp_request(rng));
            f
        }
        GenKind::OtherEthertype { vlan, ethertype, payload_len } => {
            let mut f = link_header(*vlan, *ethertype);
            f.extend_from_slice(&rng.bytes(*payload_len));
            f
        }
        GenKind::Ip(ip) => {
            let ethertype = match ip.net {
                Net::V4 { .. } => ETHERTYPE_IPV4,
                Net::V6 { .. } => ETHERTYPE_IPV6,
            };
            let mut f = link_header(ip.vlan, ethertype);
            f.extend_from_slice(&ip_packet(ip, rng));
            f
        }
    };
    debug_assert_eq!(frame.len(), kind.frame_len(), "{kind:?}");
    frame
}

fn link_header(vlan: Vlan, ethertype: u16) -> Vec<u8> {
    let tag = |vid: u16, inner: u16| {
        SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(vid & 0x0fff).expect("masked to 12 bits"),
            ether_type: EtherType(inner),
        }
        .to_bytes()
    };
    let outer_type = match vlan {
        Vlan::None => ethertype,
        Vlan::Dot1Q { .. } => 0x8100,
        Vlan::QinQ { .. } => 0x88a8,
    };
    let mut f = Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: EtherType(outer_type),
    }
    .to_bytes()
    .to_vec();
    match vlan {
        Vlan::None => {}
        Vlan::Dot1Q { vid } => f.extend_from_slice(&tag(vid, ethertype)),
        Vlan::QinQ { outer_vid, inner_vid } => {
            f.extend_from_slice(&tag(outer_vid, 0x8100));
            f.extend_from_slice(&tag(inner_vid, ethertype));
        }
    }
    f
}

/// RFC 826 request: Ethernet (1), IPv4 (0x0800), hlen 6, plen 4, op 1.
fn arp_request(rng: &mut Rng) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&SRC_MAC);
    a.extend_from_slice(&[10, 0, 0, 1 + rng.below(254) as u8]);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&[10, 0, 0, 1 + rng.below(254) as u8]);
    a
}

/// A value that differs from `good` (and is never 0, which would mean
/// "no checksum" for UDP over IPv4).
fn spoil(good: u16) -> u16 {
    match good ^ 0x5a5a {
        0 => 0x1234,
        bad => bad,
    }
}

fn ip_packet(ip: &IpKind, rng: &mut Rng) -> Vec<u8> {
    let payload = rng.bytes(ip.payload_len);
    let (src, dst): (Vec<u8>, Vec<u8>) = match &ip.net {
        Net::V4 { src, dst, .. } => (src.octets().to_vec(), dst.octets().to_vec()),
        Net::V6 { src, dst, .. } => (src.octets().to_vec(), dst.octets().to_vec()),
    };
    let mut segment = transport_segment(ip.l4, &src, &dst, &payload);
    if ip.bad_checksum == Some(BadChecksum::Transport) {
        let at = match ip.l4 {
            L4::Tcp { .. } => 16,
            L4::Udp { .. } => 6,
            L4::Icmpv4 { .. } | L4::Icmpv6 { .. } => 2,
        };
        let good = u16::from_be_bytes([segment[at], segment[at + 1]]);
        segment[at..at + 2].copy_from_slice(&spoil(good).to_be_bytes());
    }
    match &ip.net {
        Net::V4 { src, dst, options, fragment } => {
            let (body, more, offset_units) = match fragment {
                None => (&segment[..], false, 0),
                Some(Fragment::First) => (&segment[..first_fragment_len(segment.len())], true, 0),
                Some(Fragment::Last) => {
                    let cut = first_fragment_len(segment.len());
                    (&segment[cut..], false, (cut / 8) as u16)
                }
            };
            let mut h =
                Ipv4Header::new(0, 64, IpNumber(ip.l4.ip_number()), src.octets(), dst.octets())
                    .expect("payload length 0 is valid");
            if let Some(o) = options {
                h.options = o.bytes().try_into().expect("option sets are multiples of 4 bytes");
            }
            h.set_payload_len(body.len()).expect("generated packets are below 64 KiB");
            h.identification = rng.below(0x1_0000) as u16;
            h.more_fragments = more;
            h.fragment_offset =
                IpFragOffset::try_new(offset_units).expect("offsets are below 8 KiB units");
            h.total_len = wrong_length(h.total_len, ip.bad_length);
            h.header_checksum = h.calc_header_checksum();
            if ip.bad_checksum == Some(BadChecksum::Ipv4Header) {
                h.header_checksum = spoil(h.header_checksum);
            }
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(body);
            out
        }
        Net::V6 { src, dst, exts } => {
            let mut chain = Vec::new();
            for (i, ext) in exts.iter().enumerate() {
                let next =
                    IpNumber(exts.get(i + 1).map_or(ip.l4.ip_number(), |e| e.next_header_value()));
                match ext {
                    // PadN (type 1) of 4 bytes fills the 8-byte header (RFC 8200 section 4.2).
                    Ipv6Ext::HopByHop | Ipv6Ext::DestinationOptions => chain.extend_from_slice(
                        &Ipv6RawExtHeader::new_raw(next, &[1, 4, 0, 0, 0, 0])
                            .expect("6-byte payload")
                            .to_bytes(),
                    ),
                    Ipv6Ext::Routing => chain.extend_from_slice(
                        &Ipv6RawExtHeader::new_raw(next, &[253, 0, 0, 0, 0, 0])
                            .expect("6-byte payload")
                            .to_bytes(),
                    ),
                    Ipv6Ext::Fragment => chain.extend_from_slice(
                        &Ipv6FragmentHeader::new(
                            next,
                            IpFragOffset::ZERO,
                            false,
                            rng.next_u64() as u32,
                        )
                        .to_bytes(),
                    ),
                }
            }
            let first = exts.first().map_or(ip.l4.ip_number(), |e| e.next_header_value());
            let payload_length = (chain.len() + segment.len()) as u16;
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(rng.below(1 << 20) as u32).expect("20 bits"),
                payload_length: wrong_length(payload_length, ip.bad_length),
                next_header: IpNumber(first),
                hop_limit: 64,
                source: src.octets(),
                destination: dst.octets(),
            };
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&chain);
            out.extend_from_slice(&segment);
            out
        }
    }
}

fn wrong_length(right: u16, bad: Option<BadLength>) -> u16 {
    match bad {
        None => right,
        Some(BadLength::TooLong { by }) => right.wrapping_add(by),
        Some(BadLength::TooShort { by }) => right.wrapping_sub(by),
    }
}

/// Transport header plus payload, with the checksum over the pseudo-header
/// of `src`/`dst` (4 or 16 bytes each).
fn transport_segment(l4: L4, src: &[u8], dst: &[u8], payload: &[u8]) -> Vec<u8> {
    let v4 = |a: &[u8]| -> [u8; 4] { a.try_into().expect("IPv4 address") };
    let v6 = |a: &[u8]| -> [u8; 16] { a.try_into().expect("IPv6 address") };
    let mut out = match l4 {
        L4::Tcp { src_port, dst_port } => {
            let mut t =
                TcpHeader::new(src_port, dst_port, 0x1000_0000 ^ u32::from(src_port), 0xffff);
            t.ack = true;
            t.psh = !payload.is_empty();
            t.acknowledgment_number = 1;
            t.checksum = if src.len() == 4 {
                t.calc_checksum_ipv4_raw(v4(src), v4(dst), payload)
            } else {
                t.calc_checksum_ipv6_raw(v6(src), v6(dst), payload)
            }
            .expect("segments are below 64 KiB");
            t.to_bytes().to_vec()
        }
        L4::Udp { src_port, dst_port } => {
            let mut u = UdpHeader::without_ipv4_checksum(src_port, dst_port, payload.len())
                .expect("below 64 KiB");
            u.checksum = if src.len() == 4 {
                u.calc_checksum_ipv4_raw(v4(src), v4(dst), payload)
            } else {
                u.calc_checksum_ipv6_raw(v6(src), v6(dst), payload)
            }
            .expect("segments are below 64 KiB");
            u.to_bytes().to_vec()
        }
        L4::Icmpv4 { id, seq } => Icmpv4Header::with_checksum(
            Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }),
            payload,
        )
        .to_bytes()
        .to_vec(),
        L4::Icmpv6 { id, seq } => Icmpv6Header::with_checksum(
            Icmpv6Type::EchoRequest(IcmpEchoHeader { id, seq }),
            v6(src),
            v6(dst),
            payload,
        )
        .expect("below 4 GiB")
        .to_bytes()
        .to_vec(),
    };
    out.extend_from_slice(payload);
    out
}
