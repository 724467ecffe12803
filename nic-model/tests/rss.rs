//! Toeplitz RSS hash against Microsoft's RSS verification suite:
//! https://learn.microsoft.com/en-us/windows-hardware/drivers/network/verifying-the-rss-hash-calculation
//! (the same vectors appear in Intel's 82599 datasheet §7.1.2.8.3 "RSS Verification Suite").
//! Columns there: destination address:port, source address:port, IPv4/IPv6
//! hash without ports, with TCP ports.

use nic_model::rss::*;
use quickcheck::quickcheck;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const V4: &[(&str, u16, &str, u16, u32, u32)] = &[
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2),
];

const V6: &[(&str, u16, &str, u16, u32, u32)] = &[
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf),
    (
        "fe80::200:f8ff:fe21:67cf",
        38024,
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        0x4b61e985,
        0x02d1feef,
    ),
];

#[test]
fn microsoft_ipv4_vectors() {
    for &(d, dp, s, sp, h2, h4) in V4 {
        assert_eq!(flow_hash(ip(s), ip(d), None).unwrap(), h2, "{s} -> {d}");
        assert_eq!(flow_hash(ip(s), ip(d), Some((sp, dp))).unwrap(), h4, "{s}:{sp} -> {d}:{dp}");
    }
}

#[test]
fn microsoft_ipv6_vectors() {
    for &(d, dp, s, sp, h2, h4) in V6 {
        assert_eq!(flow_hash(ip(s), ip(d), None).unwrap(), h2, "{s} -> {d}");
        assert_eq!(flow_hash(ip(s), ip(d), Some((sp, dp))).unwrap(), h4, "{s}:{sp} -> {d}:{dp}");
    }
}

#[test]
fn errors() {
    assert_eq!(flow_hash(ip("1.2.3.4"), ip("::1"), None), Err(RssError::MixedFamilies));
    assert!(matches!(toeplitz(&MICROSOFT_KEY[..8], &[0; 8]), Err(RssError::KeyTooShort { .. })));
    assert_eq!(IndirectionTable::round_robin(0), Err(RssError::NoQueues));
}

#[test]
fn indirection_table_spreads_over_queues() {
    let t = IndirectionTable::round_robin(4).unwrap();
    assert_eq!(t.entries().len(), 128);
    for q in 0..4u16 {
        assert_eq!(t.entries().iter().filter(|&&e| e == q).count(), 32);
    }
    // Queue of the first Microsoft vector: 0x51ccc178 & 127 = 0x78 = 120 -> 120 % 4 = 0.
    assert_eq!(t.queue(0x51ccc178), 0);
    assert_eq!(t.queue(0x7f), 3);
}

quickcheck! {
    fn identical_input_gives_identical_hash(s: u32, d: u32, sp: u16, dp: u16) -> bool {
        let a = flow_hash(IpAddr::from(s.to_be_bytes()), IpAddr::from(d.to_be_bytes()), Some((sp, dp))).unwrap();
        let b = toeplitz(&MICROSOFT_KEY, &flow_input(IpAddr::from(s.to_be_bytes()), IpAddr::from(d.to_be_bytes()), Some((sp, dp))).unwrap()).unwrap();
        a == b
    }

    fn a_flow_stays_on_one_queue(s: [u8; 16], d: [u8; 16], sp: u16, dp: u16, queues: u8) -> bool {
        let queues = (queues % 64) as u16 + 1;
        let t = IndirectionTable::round_robin(queues).unwrap();
        let h = || flow_hash(IpAddr::from(s), IpAddr::from(d), Some((sp, dp))).unwrap();
        let q = t.queue(h());
        (0..4).all(|_| t.queue(h()) == q) && q < queues
    }

    fn toeplitz_is_linear_over_xor(a: Vec<u8>, b: Vec<u8>) -> bool {
        // A property of the Toeplitz construction: H(a ^ b) = H(a) ^ H(b).
        let n = a.len().min(b.len()).min(36);
        let x: Vec<u8> = a[..n].iter().zip(&b[..n]).map(|(p, q)| p ^ q).collect();
        let h = |v: &[u8]| toeplitz(&MICROSOFT_KEY, v).unwrap();
        h(&x) == h(&a[..n]) ^ h(&b[..n])
    }
}
