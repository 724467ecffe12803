//! The generator: determinism, and that the `mixed` profile really contains
//! every hard case — established by parsing the bytes with the small,
//! independent parser below (not etherparse, not GenKind).

use std::collections::{BTreeMap, BTreeSet};

use xdpqual::capture::{classify, ProtoClass};
use xdpqual::pcapgen::{
    firewall, generate, generate_packets, BadChecksum, BadLength, GenKind, Net, Profile, Vlan, L4,
};

/// RFC 1071 ones' complement sum, folded.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for c in chunks {
        let mut it = c.chunks_exact(2);
        for w in &mut it {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = it.remainder() {
            sum += u64::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// What the bytes of a frame show.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Facts {
    runt: bool,
    jumbo: bool,
    tpids: Vec<u16>,
    ethertype: u16,
    v4_options: bool,
    v4_fragment: bool,
    v6_exts: BTreeSet<u8>,
    bad_length: bool,
    bad_ip_checksum: bool,
    bad_l4_checksum: bool,
    /// Final IP protocol / next header.
    l4: Option<u8>,
}

fn facts(f: &[u8]) -> Facts {
    let mut x = Facts { runt: f.len() < 14, jumbo: f.len() > 1514, ..Facts::default() };
    if x.runt {
        return x;
    }
    let mut off = 12;
    let mut et = be16(f, off);
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        x.tpids.push(et);
        off += 4;
        et = be16(f, off);
    }
    off += 2;
    x.ethertype = et;
    let ip = &f[off..];
    let (pseudo_src_dst, l4_bytes, proto): (Vec<u8>, &[u8], u8) = match et {
        0x0800 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            x.v4_options = ihl > 20;
            let frag = be16(ip, 6);
            x.v4_fragment = frag & 0x2000 != 0 || frag & 0x1fff != 0;
            x.bad_length = usize::from(be16(ip, 2)) != ip.len();
            x.bad_ip_checksum = ones_sum(&[&ip[..ihl]]) != 0xffff;
            x.l4 = Some(ip[9]);
            if x.v4_fragment {
                return x;
            }
            (ip[12..20].to_vec(), &ip[ihl..], ip[9])
        }
        0x86dd => {
            x.bad_length = usize::from(be16(ip, 4)) + 40 != ip.len();
            let mut next = ip[6];
            let mut at = 40;
            while matches!(next, 0 | 43 | 44 | 60) {
                x.v6_exts.insert(next);
                let len = if next == 44 { 8 } else { (usize::from(ip[at + 1]) + 1) * 8 };
                next = ip[at];
                at += len;
            }
            x.l4 = Some(next);
            (ip[8..40].to_vec(), &ip[at..], next)
        }
        _ => return x,
    };
    if x.bad_length {
        return x;
    }
    // ICMPv4 has no pseudo-header; TCP, UDP and ICMPv6 do (RFC 793, 768, 4443).
    let len = (l4_bytes.len() as u32).to_be_bytes();
    let ok = match proto {
        1 => ones_sum(&[l4_bytes]) == 0xffff,
        6 | 17 | 58 => ones_sum(&[&pseudo_src_dst, &[0, proto], &len[2..], l4_bytes]) == 0xffff,
        _ => true,
    };
    x.bad_l4_checksum = !ok;
    x
}

/// The same facts, as the generator says they should be.
fn expected(kind: &GenKind, len: usize) -> Facts {
    let mut x = Facts { runt: len < 14, jumbo: len > 1514, ..Facts::default() };
    let vlan = kind.vlan();
    x.tpids = match vlan {
        Vlan::None => vec![],
        Vlan::Dot1Q { .. } => vec![0x8100],
        Vlan::QinQ { .. } => vec![0x88a8, 0x8100],
    };
    match kind {
        GenKind::Runt { .. } => return Facts { runt: true, ..Facts::default() },
        GenKind::Arp { .. } => x.ethertype = 0x0806,
        GenKind::OtherEthertype { ethertype, .. } => x.ethertype = *ethertype,
        GenKind::Ip(ip) => {
            x.l4 = Some(ip.l4.ip_number());
            x.bad_length = ip.bad_length.is_some();
            match &ip.net {
                Net::V4 { options, fragment, .. } => {
                    x.ethertype = 0x0800;
                    x.v4_options = options.is_some();
                    x.v4_fragment = fragment.is_some();
                    x.bad_ip_checksum = ip.bad_checksum == Some(BadChecksum::Ipv4Header);
                }
                Net::V6 { exts, .. } => {
                    x.ethertype = 0x86dd;
                    x.v6_exts = exts.iter().map(|e| e.next_header_value()).collect();
                }
            }
            let l4_checkable = !x.v4_fragment && !x.bad_length;
            x.bad_l4_checksum = l4_checkable && ip.bad_checksum == Some(BadChecksum::Transport);
        }
    }
    x
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    for profile in Profile::ALL {
        let a: Vec<_> = generate(profile, 300, 7).collect();
        let b: Vec<_> = generate(profile, 300, 7).collect();
        let c: Vec<_> = generate(profile, 300, 8).collect();
        assert_eq!(a.len(), 300);
        assert_eq!(a, b, "{profile}: same seed must give the same bytes");
        assert_ne!(a, c, "{profile}: different seeds must differ");
        // A prefix of a longer run is the shorter run.
        let longer: Vec<_> = generate(profile, 400, 7).take(300).collect();
        assert_eq!(a, longer);
    }
}

#[test]
fn timestamps_are_one_microsecond_apart() {
    let ts: Vec<u64> = generate_packets(Profile::Tiny, 3, 1).map(|p| p.ts_ns).collect();
    assert_eq!(
        ts,
        vec![1_704_067_200_000_000_000, 1_704_067_200_000_001_000, 1_704_067_200_000_002_000]
    );
}

#[test]
fn mixed_contains_every_hard_case_and_kinds_match_bytes() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for p in generate_packets(Profile::Mixed, 2000, 1) {
        let got = facts(&p.bytes);
        assert_eq!(got, expected(&p.kind, p.bytes.len()), "packet {} ({:?})", p.index, p.kind);
        assert!(p.bytes.len() <= 9000, "packet {} is {} bytes", p.index, p.bytes.len());
        let mut see = |name| *seen.entry(name).or_default() += 1;
        if got.runt {
            see("runt");
            continue;
        }
        if got.jumbo {
            see("jumbo");
        }
        match got.tpids.as_slice() {
            [0x8100] => see("802.1q"),
            [0x88a8, 0x8100] => see("qinq-802.1ad"),
            _ => {}
        }
        match got.ethertype {
            0x0800 => see("ipv4"),
            0x86dd => see("ipv6"),
            0x0806 => see("arp"),
            _ => see("other-ethertype"),
        }
        match (got.ethertype, got.l4) {
            (_, Some(6)) => see("tcp"),
            (_, Some(17)) => see("udp"),
            (0x0800, Some(1)) => see("icmp"),
            (0x86dd, Some(58)) => see("icmpv6"),
            _ => {}
        }
        for (flag, name) in [
            (got.v4_fragment, "ipv4-fragment"),
            (got.v4_options, "ipv4-options"),
            (got.bad_length, "wrong-ip-length"),
            (got.bad_ip_checksum, "wrong-ipv4-header-checksum"),
            (got.bad_l4_checksum, "wrong-transport-checksum"),
        ] {
            if flag {
                see(name);
            }
        }
        for (nh, name) in
            [(0, "v6-hop-by-hop"), (43, "v6-routing"), (44, "v6-fragment"), (60, "v6-dest-options")]
        {
            if got.v6_exts.contains(&nh) {
                see(name);
            }
        }
        if got.v6_exts.len() >= 2 {
            see("v6-ext-chain-of-2+");
        }
    }
    // Both directions of wrong length, and first and later fragments, via the kinds.
    let kinds: Vec<GenKind> = generate_packets(Profile::Mixed, 2000, 1).map(|p| p.kind).collect();
    let any = |f: &dyn Fn(&GenKind) -> bool| kinds.iter().any(f);
    assert!(any(
        &|k| matches!(k, GenKind::Ip(ip) if matches!(ip.bad_length, Some(BadLength::TooLong { .. })))
    ));
    assert!(any(
        &|k| matches!(k, GenKind::Ip(ip) if matches!(ip.bad_length, Some(BadLength::TooShort { .. })))
    ));
    println!("mixed-2k seed 1 case counts: {seen:?}");
    for case in [
        "runt",
        "jumbo",
        "802.1q",
        "qinq-802.1ad",
        "ipv4",
        "ipv6",
        "arp",
        "other-ethertype",
        "tcp",
        "udp",
        "icmp",
        "icmpv6",
        "ipv4-fragment",
        "ipv4-options",
        "wrong-ip-length",
        "wrong-ipv4-header-checksum",
        "wrong-transport-checksum",
        "v6-hop-by-hop",
        "v6-routing",
        "v6-fragment",
        "v6-dest-options",
        "v6-ext-chain-of-2+",
    ] {
        assert!(
            seen.get(case).copied().unwrap_or(0) >= 5,
            "case {case} appears fewer than 5 times: {seen:?}"
        );
    }
}

#[test]
fn kinds_agree_with_the_classifier() {
    for p in generate_packets(Profile::Mixed, 2000, 1) {
        let want = match &p.kind {
            GenKind::Runt { .. } => ProtoClass::Unparseable,
            GenKind::Arp { .. } => ProtoClass::Arp,
            GenKind::OtherEthertype { .. } => ProtoClass::Other,
            GenKind::Ip(ip) => {
                // A too-short length field ends the packet early; when it
                // ends inside the transport header, that header is not intact.
                let seen_l4 = match ip.bad_length {
                    Some(BadLength::TooShort { by }) => {
                        (ip.l4.header_len() + ip.payload_len).saturating_sub(usize::from(by))
                    }
                    _ => ip.l4.header_len() + ip.payload_len,
                };
                let net = match ip.net {
                    Net::V4 { .. } => ProtoClass::Ipv4,
                    Net::V6 { .. } => ProtoClass::Ipv6,
                };
                match (&ip.net, ip.l4) {
                    // Fragments stop at the network layer.
                    (Net::V4 { fragment: Some(_), .. }, _) => net,
                    _ if seen_l4 < ip.l4.header_len() => net,
                    (_, L4::Tcp { .. }) => ProtoClass::Tcp,
                    (_, L4::Udp { .. }) => ProtoClass::Udp,
                    (_, L4::Icmpv4 { .. }) => ProtoClass::Icmpv4,
                    (_, L4::Icmpv6 { .. }) => ProtoClass::Icmpv6,
                }
            }
        };
        let got = classify(&p.bytes);
        assert_eq!(got.proto, want, "packet {} {:?}", p.index, p.kind);
    }
}

#[test]
fn firewall_profile_hits_and_misses_the_blocklist() {
    let pkts: Vec<_> = generate_packets(Profile::Firewall, 2000, 2).collect();
    let hits = pkts.iter().filter(|p| xdpqual::pcapgen::firewall::hits_blocklist(&p.kind)).count();
    assert!((300..=700).contains(&hits), "{hits} of 2000 hit the blocklist");
    let mut blocked_src = [false; 2];
    let mut blocked_port = false;
    let mut src_port_only = false;
    for p in &pkts {
        let GenKind::Ip(ip) = &p.kind else { panic!("firewall makes only IP packets") };
        assert_eq!(ip.vlan, Vlan::None);
        // Check the blocklist rule against the bytes, not the kind.
        let f = facts(&p.bytes);
        assert!(!f.bad_length && !f.bad_ip_checksum && !f.bad_l4_checksum);
        let ip_off = 14;
        let (src_hit, l4_off) = match f.ethertype {
            0x0800 => (
                p.bytes[ip_off + 12..ip_off + 16] == firewall::BLOCKED_SRC_V4.octets(),
                ip_off + 20,
            ),
            0x86dd => {
                (p.bytes[ip_off + 8..ip_off + 24] == firewall::BLOCKED_SRC_V6.octets(), ip_off + 40)
            }
            other => panic!("ethertype {other:#x}"),
        };
        let has_ports = matches!(f.l4, Some(6 | 17));
        let sport = if has_ports { Some(be16(&p.bytes, l4_off)) } else { None };
        let dport = if has_ports { Some(be16(&p.bytes, l4_off + 2)) } else { None };
        let port_hit = dport.is_some_and(|d| [23, 445, 3389].contains(&d));
        assert_eq!(
            xdpqual::pcapgen::firewall::hits_blocklist(&p.kind),
            src_hit || port_hit,
            "packet {}",
            p.index
        );
        if src_hit {
            blocked_src[usize::from(f.ethertype == 0x86dd)] = true;
        }
        blocked_port |= port_hit;
        src_port_only |=
            !port_hit && !src_hit && sport.is_some_and(|s| [23, 445, 3389].contains(&s));
    }
    assert!(blocked_src[0] && blocked_src[1] && blocked_port && src_port_only);
}

#[test]
fn tiny_frames_are_64_byte_udp() {
    for p in generate_packets(Profile::Tiny, 200, 5) {
        assert_eq!(p.bytes.len(), 64);
        let f = facts(&p.bytes);
        assert_eq!(
            (f.ethertype, f.l4, f.bad_l4_checksum, f.bad_ip_checksum),
            (0x0800, Some(17), false, false)
        );
    }
}
