//! Hand-made frames for the corner cases of the specifications, built byte
//! by byte (no generator involved): runts, truncated headers, VLAN/QinQ and
//! triple tags, IPv4 options and fragments, IPv6 extension chains, the
//! checksum corner cases of the reflector, IPIP, jumbo frames that spill
//! into fragments, and a timed sequence for the token bucket.

/// Timestamp of the first edge frame (2024-01-01T00:00:00Z).
pub(crate) const T0: u64 = 1_704_067_200 * 1_000_000_000;

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

pub(crate) fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
    let mut f = DST.to_vec();
    f.extend(SRC);
    f.extend(ethertype.to_be_bytes());
    f.extend(rest);
    f
}

/// An 802.1Q/802.1ad tag: TPID already written by the caller as the outer
/// ethertype; this is TCI + inner ethertype.
pub(crate) fn tag(vid: u16, inner: u16, rest: &[u8]) -> Vec<u8> {
    let mut f = vid.to_be_bytes().to_vec();
    f.extend(inner.to_be_bytes());
    f.extend(rest);
    f
}

/// IPv4 header with options `opts` (a multiple of 4 bytes), a correct
/// header checksum, total length = header + payload.
pub(crate) fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    frag: u16,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + opts.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend(total.to_be_bytes());
    h.extend([0x12, 0x34]);
    h.extend(frag.to_be_bytes());
    h.extend([ttl, proto, 0, 0]);
    h.extend(src);
    h.extend(dst);
    h.extend(opts);
    let c = super::encap::ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend(payload);
    h
}

pub(crate) fn udp(sport: u16, dport: u16, csum: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend(csum.to_be_bytes());
    u.extend(payload);
    u
}

pub(crate) fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend(dport.to_be_bytes());
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

pub(crate) fn ipv6(src: [u8; 16], next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([next, hop_limit]);
    h.extend(src);
    h.extend([0xfd, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend(payload);
    h
}

/// A generic extension header (HBH, routing, destination options) of
/// (hdr_ext_len + 1) * 8 bytes.
pub(crate) fn ext(next: u8, hdr_ext_len: u8) -> Vec<u8> {
    let mut e = vec![next, hdr_ext_len];
    e.resize((hdr_ext_len as usize + 1) * 8, 0);
    e
}

pub(crate) fn frag6(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let mut e = vec![next, 0];
    e.extend((offset << 3 | more as u16).to_be_bytes());
    e.extend([0, 0, 0, 9]);
    e
}

const A: [u8; 4] = [10, 0, 1, 1];
const B: [u8; 4] = [10, 1, 0, 1];
const V6SRC: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01];
const V6BLOCKED: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x07];
const V6SPECIAL: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66];

fn v4udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(40000, dport, 0x1234, payload)))
}

fn v4tcp(src: [u8; 4], dport: u16) -> Vec<u8> {
    eth(0x0800, &ipv4(src, B, 6, 64, 0, &[], &tcp(40000, dport)))
}

fn truncated(mut f: Vec<u8>, len: usize) -> Vec<u8> {
    f.truncate(len);
    f
}

/// The edge frames, in capture order.
pub(crate) fn frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    // Runts: refused by test-run.
    v.push(vec![0xff]);
    v.push(eth(0x0800, &[])[..13].to_vec());
    // Exactly an Ethernet header, of every ethertype the programs test.
    for et in [0x0800u16, 0x86DD, 0x8100, 0x88A8, 0x0806] {
        v.push(eth(et, &[]));
    }
    // IPv4 cut inside the fixed header, at 34 exactly, inside UDP/TCP.
    let u = v4udp(9, b"PING1234");
    for len in [16, 29, 30, 33, 34, 37, 38, 41, 42, 45, 46] {
        v.push(truncated(u.clone(), len));
    }
    let t = v4tcp(A, 80);
    for len in [37, 38, 53, 54] {
        v.push(truncated(t.clone(), len));
    }
    // IPv4 header oddities.
    let mut bad = v4udp(5000, b"x");
    bad[14] = 0x44; // IHL 4
    v.push(bad.clone());
    bad[14] = 0x65; // version 6 under 0x0800
    v.push(bad);
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[1, 1, 1, 0], &udp(1, 53, 0, b"q")))); // IHL 6
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[0x94, 4, 0, 0], &udp(1, 9, 0, b"q")))); // router alert, port 9
    let mut long_opts = eth(0x0800, &ipv4(A, B, 6, 64, 0, &[1; 40], &tcp(1, 80)));
    v.push(long_opts.clone()); // IHL 15
    long_opts.truncate(14 + 50);
    v.push(long_opts); // options truncated
                       // TTLs around the floors.
    for ttl in [0, 1, 2, 255] {
        v.push(eth(0x0800, &ipv4(A, B, 17, ttl, 0, &[], &udp(7, 9, 0, b"ttl"))));
    }
    // Fragments: first (MF, offset 0), middle, last (offset only).
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0x2000, &[], &udp(1, 8080, 0, b"PING"))));
    v.push(eth(0x0800, &ipv4(A, B, 6, 64, 0x2000 | 3, &[], &tcp(1, 80))));
    v.push(eth(0x0800, &ipv4(A, B, 6, 64, 7, &[], b"tail of a datagram")));
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0x4000, &[], &udp(1, 9, 0, b"DF")))); // DF only
                                                                                 // Blocked and special ports / sources.
    for dport in [23u16, 445, 3389, 8080, 53, 22, 1023, 1024, 0] {
        v.push(v4tcp(A, dport));
    }
    for dport in [23u16, 123, 53, 9, 2, 7, 0] {
        v.push(v4udp(dport, b"data"));
    }
    v.push(v4tcp([192, 0, 2, 66], 80));
    v.push(v4tcp([198, 51, 100, 7], 80));
    v.push(v4tcp([10, 0, 7, 9], 80));
    v.push(v4tcp([10, 0, 128, 77], 80));
    v.push(v4tcp([10, 0, 200, 1], 80));
    // ICMP: echo, redirect, truncated, other protocols.
    v.push(eth(0x0800, &ipv4(A, B, 1, 64, 0, &[], &[8, 0, 0xf7, 0xff, 0, 0, 0, 0])));
    v.push(eth(0x0800, &ipv4(A, B, 1, 64, 0, &[], &[5, 1, 0, 0, 10, 0, 0, 1])));
    v.push(eth(0x0800, &ipv4(A, B, 1, 64, 0, &[], &[5, 1, 0])));
    v.push(eth(0x0800, &ipv4(A, B, 58, 64, 0, &[], &[137, 0, 0, 0])));
    v.push(eth(0x0800, &ipv4(A, B, 47, 64, 0, &[], &[0; 8]))); // GRE
                                                               // Reflector: PING with a checksum, without one, one that lands on 0,
                                                               // a header checksum of 0xFFFF with TTL already 64, no payload, short
                                                               // payload.
    v.push(v4udp(7, b"PING and more"));
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(7, 7, 0, b"PING"))));
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(7, 7, reflector_zero_csum(), b"PING"))));
    let mut ff = eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(7, 7, 0xFFFF, b"PONG")));
    ff[24] = 0xff;
    ff[25] = 0xff;
    v.push(ff);
    v.push(eth(0x0800, &ipv4(A, B, 17, 17, 0, &[], &udp(7, 7, 0xabcd, b""))));
    v.push(eth(0x0800, &ipv4(A, B, 17, 1, 0, &[], &udp(7, 7, 0xabcd, b"PIN"))));
    v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[0x94, 4, 0, 0], &udp(7, 7, 0x0101, b"PING"))));
    // IPIP: full, inner header missing, outer with options.
    let inner = ipv4([172, 16, 0, 1], [172, 16, 0, 2], 17, 9, 0, &[], &udp(1, 2, 0, b"in"));
    v.push(eth(0x0800, &ipv4([198, 51, 100, 1], [203, 0, 113, 1], 4, 64, 0, &[], &inner)));
    v.push(eth(0x0800, &ipv4([198, 51, 100, 1], [203, 0, 113, 1], 4, 64, 0, &[], &inner[..19])));
    v.push(eth(0x0800, &ipv4([198, 51, 100, 1], [203, 0, 113, 1], 4, 64, 0, &[], &inner[..20])));
    v.push(eth(
        0x0800,
        &ipv4([198, 51, 100, 1], [203, 0, 113, 1], 4, 64, 0, &[1, 1, 1, 0], &inner),
    ));
    // Total length near 65535: the outer length wraps.
    let mut big = eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(1, 2, 0, b"len")));
    big[16] = 0xff;
    big[17] = 0xf0;
    v.push(big);
    // VLAN: one tag, QinQ, triple, 802.1ad alone, truncated tags, ARP.
    let ip_udp = ipv4(A, B, 17, 64, 0, &[], &udp(1, 9, 0, b"tagged"));
    v.push(eth(0x8100, &tag(100, 0x0800, &ip_udp)));
    v.push(eth(0x8100, &tag(100, 0x0800, &ipv4(A, B, 6, 64, 0, &[], &tcp(1, 445)))));
    v.push(eth(0x88A8, &tag(10, 0x8100, &tag(20, 0x0800, &ip_udp))));
    v.push(eth(
        0x88A8,
        &tag(10, 0x8100, &tag(20, 0x0800, &ipv4(A, B, 6, 64, 0, &[], &tcp(1, 3389)))),
    ));
    v.push(eth(0x8100, &tag(10, 0x8100, &tag(20, 0x8100, &tag(30, 0x0800, &ip_udp)))));
    v.push(eth(0x88A8, &tag(10, 0x0800, &ip_udp)));
    v.push(eth(0x8100, &tag(10, 0x0806, &[0; 28])));
    v.push(eth(0x8100, &[0, 100]));
    v.push(eth(0x8100, &[0, 100, 0x08]));
    v.push(eth(0x8100, &[0, 100, 0x08, 0x00]));
    v.push(eth(0x88A8, &[0, 10, 0x81, 0x00, 0, 20]));
    v.push(eth(0x8100, &tag(100, 0x86DD, &ipv6(V6SRC, 17, 64, &udp(1, 80, 0, b"v6")))));
    v.push(eth(
        0x0806,
        &[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 10, 1, 0, 1],
    ));
    v.push(eth(0x88cc, &[0; 46]));
    // IPv6: plain, truncated, wrong version, special/blocked sources.
    let v6udp = ipv6(V6SRC, 17, 64, &udp(1, 80, 0, b"six"));
    v.push(eth(0x86DD, &v6udp));
    for len in [53, 54, 61, 62] {
        v.push(truncated(eth(0x86DD, &v6udp), len));
    }
    let mut wrong = eth(0x86DD, &v6udp);
    wrong[14] = 0x40;
    v.push(wrong);
    v.push(eth(0x86DD, &ipv6(V6SPECIAL, 17, 64, &udp(1, 80, 0, b"x"))));
    v.push(eth(0x86DD, &ipv6(V6BLOCKED, 6, 64, &tcp(1, 80))));
    v.push(eth(0x86DD, &ipv6(V6SRC, 17, 1, &udp(1, 80, 0, b"hl1"))));
    v.push(eth(0x86DD, &ipv6(V6SRC, 17, 0, &udp(1, 80, 0, b"hl0"))));
    v.push(eth(0x86DD, &ipv6(V6SRC, 6, 64, &tcp(1, 3389))));
    // ICMPv6 and protocol mix-ups.
    v.push(eth(0x86DD, &ipv6(V6SRC, 58, 255, &[128, 0, 0, 0, 0, 1, 0, 1])));
    v.push(eth(0x86DD, &ipv6(V6SRC, 58, 255, &[137, 0, 0, 0, 0, 0, 0, 0])));
    v.push(eth(0x86DD, &ipv6(V6SRC, 58, 255, &[137, 0, 0])));
    v.push(eth(0x86DD, &ipv6(V6SRC, 1, 255, &[5, 0, 0, 0])));
    // Extension chains.
    let mut chain = ext(43, 0);
    chain.extend(ext(60, 1));
    chain.extend(frag6(17, 0, true));
    chain.extend(udp(1, 445, 0, b"chain"));
    v.push(eth(0x86DD, &ipv6(V6SRC, 0, 64, &chain)));
    let mut chain = ext(44, 0);
    chain.extend(frag6(6, 0, false));
    chain.extend(tcp(1, 80));
    v.push(eth(0x86DD, &ipv6(V6SRC, 60, 64, &chain)));
    let mut chain = frag6(17, 5, false); // non-first fragment
    chain.extend(b"later bytes");
    v.push(eth(0x86DD, &ipv6(V6SRC, 44, 64, &chain)));
    for n in [5usize, 6, 7] {
        // n hop-by-hop-style headers, then UDP: 6 are walked, a 7th is not.
        let mut chain = Vec::new();
        for i in 0..n {
            chain.extend(ext(if i + 1 == n { 17 } else { 60 }, 0));
        }
        chain.extend(udp(1, 80, 0, b"deep"));
        v.push(eth(0x86DD, &ipv6(V6SRC, 0, 64, &chain)));
    }
    let mut chain = ext(6, 3); // 32 bytes of header, cut at 20
    chain.truncate(20);
    v.push(eth(0x86DD, &ipv6(V6SRC, 43, 64, &chain)));
    v.push(eth(0x86DD, &ipv6(V6SRC, 43, 64, &[6])));
    v.push(eth(0x86DD, &ipv6(V6SRC, 44, 64, &[17, 0, 0, 0])));
    let mut chain = ext(6, 0);
    chain.extend(&tcp(1, 8080)[..12]); // TCP truncated after the walk
    v.push(eth(0x86DD, &ipv6(V6SRC, 0, 64, &chain)));
    v.push(eth(0x86DD, &ipv6(V6SRC, 51, 64, &[17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])));
    v.push(eth(0x86DD, &ipv6(V6SRC, 59, 64, &[])));
    // v4ops: the worked example and extremes, behind a non-IP ethertype.
    v.push(eth(0x88b5, &[0xfd, 0x03, 0xf6, 0xff, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    v.push(eth(0x88b5, &[0xff, 0xff, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 1, 2, 3, 4, 5, 6, 7, 8]));
    v.push(eth(0x88b5, &[0x80, 0x7f, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0]));
    v.push(eth(0x88b5, &[0x01, 0x80, 0x01, 0x80, 0x01, 0x00, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]));
    // Lengths around the truncation snap and the linear limit.
    for total in [256usize, 257, 3520, 3521, 4000, 9000] {
        let payload = vec![0x5a; total - 14 - 20 - 8];
        v.push(eth(0x0800, &ipv4(A, B, 17, 64, 0, &[], &udp(7, 9, 0, &payload))));
    }
    let payload = vec![0xa5; 5000 - 14 - 20 - 8];
    v.push(eth(
        0x0800,
        &ipv4(A, B, 17, 64, 0, &[], &udp(7, 7, 0x1111, &[b"PING".as_slice(), &payload].concat())),
    ));
    v
}

/// A UDP checksum that the PING -> PONG update turns into 0x0000 (so the
/// program must write 0xFFFF): solve the specification's formula.
fn reflector_zero_csum() -> u16 {
    let w = |b: &[u8; 4]| [super::be16(b, 0), super::be16(b, 2)];
    (0..=0xFFFFu16)
        .find(|&hc| super::reflector::incremental(hc, w(b"PING"), w(b"PONG")) == 0)
        .expect("some checksum maps to 0")
}

/// (timestamp, frame) for the token bucket: flows, refills, clock steps.
pub(crate) fn ratelimit_frames() -> Vec<(u64, Vec<u8>)> {
    const MS: u64 = 1_000_000;
    let a = |dport| eth(0x0800, &ipv4([10, 9, 0, 1], B, 17, 64, 0, &[], &udp(1, dport, 0, b"a")));
    let a_tcp = |dport| eth(0x0800, &ipv4([10, 9, 0, 1], B, 6, 64, 0, &[], &tcp(1, dport)));
    let b = |dport| eth(0x0800, &ipv4([10, 9, 0, 2], B, 17, 64, 0, &[], &udp(1, dport, 0, b"b")));
    let mut v = Vec::new();
    let mut t = T0;
    // Flow (a, 80): 6 at once -> 4 pass, 2 drop; TCP to 80 shares it.
    for _ in 0..5 {
        v.push((t, a(80)));
    }
    v.push((t, a_tcp(80)));
    // Another port and another source are other buckets.
    for _ in 0..5 {
        v.push((t, a(81)));
        v.push((t, b(80)));
    }
    // Exactly one period later: one token.
    t += 100 * MS;
    v.push((t, a(80)));
    v.push((t, a(80)));
    // One ns short of the next period: nothing.
    v.push((t + 100 * MS - 1, a(80)));
    // 250 ms after the last refill point: 2 tokens, 50 ms kept.
    t += 250 * MS;
    v.push((t, a(80)));
    v.push((t, a(80)));
    v.push((t, a(80)));
    // 50 ms later the kept remainder completes a period: 1 token.
    t += 50 * MS;
    v.push((t, a(80)));
    v.push((t, a(80)));
    // The clock steps back: nothing refilled, nothing lost.
    v.push((t - 500 * MS, a(80)));
    // A long pause: capped at the burst.
    t += 10_000 * MS;
    for _ in 0..6 {
        v.push((t, a(80)));
    }
    // Classification corners between the bucket packets.
    v.push((t, eth(0x0800, &ipv4([10, 9, 0, 1], B, 17, 64, 0x0010, &[], b"non-first frag"))));
    v.push((
        t,
        eth(0x0800, &ipv4([10, 9, 0, 1], B, 17, 64, 0x2000, &[], &udp(1, 80, 0, b"first"))),
    ));
    v.push((t, eth(0x0800, &ipv4([10, 9, 0, 1], B, 1, 64, 0, &[], &[8, 0, 0, 0]))));
    v.push((t, truncated(a(80), 37)));
    v.push((t, truncated(a(80), 33)));
    v.push((t, eth(0x86DD, &ipv6(V6SRC, 17, 64, &udp(1, 80, 0, b"v6")))));
    let mut ihl4 = a(80);
    ihl4[14] = 0x44;
    v.push((t, ihl4));
    v.push((
        t,
        eth(0x0800, &ipv4([10, 9, 0, 1], B, 17, 64, 0, &[1, 1, 1, 0], &udp(1, 80, 0, b"opt"))),
    ));
    v.push((t, vec![1, 2, 3]));
    // Many flows, each once.
    for i in 0..200u32 {
        let src = [10, 8, (i >> 8) as u8, i as u8];
        v.push((t + i as u64 * MS, eth(0x0800, &ipv4(src, B, 6, 64, 0, &[], &tcp(1, 443)))));
    }
    v
}
