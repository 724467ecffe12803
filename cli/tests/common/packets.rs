//! A quickcheck generator of Ethernet frames: well-formed ones built with
//! etherparse (IPv4/IPv6, TCP/UDP/ICMP, 802.1Q and QinQ tags, IPv6
//! extension headers) and malformed ones made from them (truncated, wrong
//! IP lengths or header lengths, flipped bytes), plus random bytes.
//!
//! Shrinking works on the bytes: shorter prefixes first, then bytes set to
//! zero, so a failing frame ends as small and plain as still fails.

use etherparse::PacketBuilder;
use quickcheck::{Arbitrary, Gen};

#[derive(Clone)]
pub(crate) struct Frame {
    pub bytes: Vec<u8>,
    /// How it was made, for failure messages.
    pub what: String,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Frame({}, {} bytes: {})",
            self.what,
            self.bytes.len(),
            super::rust_bytes(&self.bytes)
        )
    }
}

fn below(g: &mut Gen, n: u32) -> u32 {
    u32::arbitrary(g) % n.max(1)
}

fn pick<T: Copy>(g: &mut Gen, xs: &[T]) -> T {
    *g.choose(xs).expect("non-empty")
}

fn payload(g: &mut Gen) -> Vec<u8> {
    // 3400..3600 straddle test-run's 3520-byte linear limit (the rest goes
    // to fragments, net/bpf/test_run.c); 5000 is always multi-buffer.
    let n = if below(g, 20) == 0 {
        pick(g, &[3400usize, 3470, 3480, 3500, 3600, 5000])
    } else {
        pick(g, &[0usize, 1, 4, 18, 64, 200, 1400])
    };
    (0..n).map(|_| u8::arbitrary(g)).collect()
}

/// IP header, transport header and payload (no link layer); returns the
/// bytes and the EtherType.
fn l3(g: &mut Gen, what: &mut String) -> (Vec<u8>, u16) {
    let v6 = bool::arbitrary(g);
    let data = payload(g);
    let mut out = Vec::new();
    // Addresses from a few values so programs' tables (firewall, lpm) match sometimes.
    let a4 = |g: &mut Gen| pick(g, &[[10, 0, 0, 1], [192, 168, 1, 1], [10, 1, 2, 3], [8, 8, 8, 8]]);
    let port = |g: &mut Gen| {
        let r = u16::arbitrary(g);
        pick(g, &[22u16, 53, 80, 443, 8080, r])
    };
    let l4 = below(g, 3);
    if v6 {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s[0] = 0xfd;
        s[15] = u8::arbitrary(g);
        d[0] = pick(g, &[0xfd, 0x20, 0xfe]);
        d[15] = u8::arbitrary(g);
        let b = PacketBuilder::ipv6(s, d, pick(g, &[0, 1, 64]));
        match l4 {
            0 => {
                what.push_str("ipv6/udp");
                b.udp(port(g), port(g)).write(&mut out, &data).expect("build")
            }
            1 => {
                what.push_str("ipv6/tcp");
                b.tcp(port(g), port(g), u32::arbitrary(g), 1024)
                    .syn()
                    .write(&mut out, &data)
                    .expect("build")
            }
            _ => {
                what.push_str("ipv6/icmp6");
                b.icmpv6_echo_request(1, 2).write(&mut out, &data).expect("build")
            }
        }
        if bool::arbitrary(g) {
            // One 8-byte extension header between IPv6 and the transport header.
            let ext = pick(g, &[0u8, 43, 44, 60]);
            what.push_str(&format!("+ext{ext}"));
            let next = out[6];
            out[6] = ext;
            let mut hdr = [0u8; 8];
            hdr[0] = next;
            if ext == 44 {
                // Fragment header: offset 0, more-fragments per coin.
                hdr[3] = u8::from(bool::arbitrary(g));
            } else if ext == 43 {
                hdr[2] = 0; // routing type 0, segments left 0
            }
            out.splice(40..40, hdr);
            let plen = u16::from_be_bytes([out[4], out[5]]) + 8;
            out[4..6].copy_from_slice(&plen.to_be_bytes());
        }
        (out, 0x86dd)
    } else {
        let b = PacketBuilder::ipv4(a4(g), a4(g), pick(g, &[0, 1, 64]));
        match l4 {
            0 => {
                what.push_str("ipv4/udp");
                b.udp(port(g), port(g)).write(&mut out, &data).expect("build")
            }
            1 => {
                what.push_str("ipv4/tcp");
                b.tcp(port(g), port(g), u32::arbitrary(g), 1024)
                    .syn()
                    .write(&mut out, &data)
                    .expect("build")
            }
            _ => {
                what.push_str("ipv4/icmp");
                b.icmpv4_echo_request(1, 2).write(&mut out, &data).expect("build")
            }
        }
        (out, 0x0800)
    }
}

fn well_formed(g: &mut Gen, what: &mut String) -> Vec<u8> {
    let (ip, ethertype) = l3(g, what);
    let mut f = Vec::with_capacity(ip.len() + 22);
    f.extend([0x02, 0, 0, 0, 0, 0x02]);
    f.extend([0x02, 0, 0, 0, 0, 0x01]);
    match below(g, 4) {
        0 => {
            what.insert_str(0, "vlan/");
            f.extend([0x81, 0x00]);
            f.extend((below(g, 4095) as u16 + 1).to_be_bytes());
        }
        1 => {
            what.insert_str(0, "qinq/");
            f.extend([0x88, 0xa8]);
            f.extend((below(g, 4095) as u16 + 1).to_be_bytes());
            f.extend([0x81, 0x00]);
            f.extend((below(g, 4095) as u16 + 1).to_be_bytes());
        }
        _ => {}
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(ip);
    f
}

/// Offset of the IP header in a frame made by [`well_formed`].
fn ip_offset(f: &[u8]) -> usize {
    let mut at = 12;
    while at + 2 <= f.len() && matches!([f[at], f[at + 1]], [0x81, 0x00] | [0x88, 0xa8]) {
        at += 4;
    }
    at + 2
}

fn malform(g: &mut Gen, f: &mut Vec<u8>, what: &mut String) {
    let ip = ip_offset(f);
    match below(g, 6) {
        0 => {
            let cut = below(g, f.len() as u32 + 1) as usize;
            what.push_str(&format!(" truncated@{cut}"));
            f.truncate(cut);
        }
        1 if f.len() > ip + 4 => {
            // IPv4 total length / IPv6 payload length set to something else.
            let at = if f[ip] >> 4 == 4 { ip + 2 } else { ip + 4 };
            let r = u16::arbitrary(g);
            let v = pick(g, &[0u16, 1, 20, 39, 40, 0xffff, r]);
            what.push_str(&format!(" iplen={v}"));
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        2 if f.len() > ip => {
            // Version/IHL byte: IHL below 5, options that are not there, wrong version.
            let r = u8::arbitrary(g);
            let v = pick(g, &[0x40, 0x44, 0x46, 0x4f, 0x60, 0x00, r]);
            what.push_str(&format!(" verihl={v:#x}"));
            f[ip] = v;
        }
        3 if f.len() > ip + 10 => {
            // The transport protocol number.
            let at = if f[ip] >> 4 == 4 { ip + 9 } else { ip + 6 };
            let v = pick(g, &[0u8, 6, 17, 1, 58, 43, 44, 60, 255]);
            what.push_str(&format!(" proto={v}"));
            f[at] = v;
        }
        _ => {
            let n = 1 + below(g, 4);
            what.push_str(&format!(" {n} bytes flipped"));
            for _ in 0..n {
                if f.is_empty() {
                    break;
                }
                let i = below(g, f.len() as u32) as usize;
                f[i] ^= 1 << below(g, 8);
            }
        }
    }
}

impl Arbitrary for Frame {
    fn arbitrary(g: &mut Gen) -> Frame {
        let mut what = String::new();
        let bytes = match below(g, 10) {
            0 => {
                let n = pick(g, &[0u32, 1, 13, 14, 15, 34, 60, 100, 1500]);
                what.push_str("random bytes");
                (0..n).map(|_| u8::arbitrary(g)).collect()
            }
            1..=5 => well_formed(g, &mut what),
            _ => {
                let mut f = well_formed(g, &mut what);
                malform(g, &mut f, &mut what);
                f
            }
        };
        Frame { bytes, what }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Frame>> {
        let b = self.bytes.clone();
        let what = format!("shrunk from {}", self.what.trim_start_matches("shrunk from "));
        let len = b.len();
        let mut cands: Vec<Vec<u8>> = Vec::new();
        // Shorter first: halves, then one byte less.
        let mut cut = len / 2;
        while cut > 0 && cut + 1 < len {
            cands.push(b[..cut].to_vec());
            cut = (cut + len) / 2;
            if cands.len() > 8 {
                break;
            }
        }
        if len > 0 {
            cands.push(b[..len - 1].to_vec());
        }
        // Then plainer: one non-zero byte zeroed (from the end, where
        // payload usually is).
        for i in (0..len).rev().filter(|&i| b[i] != 0).take(64) {
            let mut c = b.clone();
            c[i] = 0;
            cands.push(c);
        }
        Box::new(cands.into_iter().map(move |bytes| Frame { bytes, what: what.clone() }))
    }
}
