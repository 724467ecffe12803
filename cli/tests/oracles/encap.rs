//! corpus/encap.c: IPIP encapsulation ("xdp/encap") and decapsulation
//! ("xdp/decap") with bpf_xdp_adjust_head.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "encap",
            entry: "xdp/encap",
            config: "encap",
            setup: vec![],
            oracle: || Box::new(Stateless(encap)),
        },
        Case {
            program: "encap",
            entry: "xdp/decap",
            config: "decap",
            setup: vec![],
            oracle: || Box::new(Stateless(decap)),
        },
    ]
}

/// The standard IPv4 header checksum (RFC 791) of `h` with its checksum
/// field taken as 0.
pub(crate) fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for (i, w) in h.chunks(2).enumerate() {
        if i != 5 {
            s += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

fn encap(p: &Pkt) -> Expect {
    let f = p.lin();
    let l = f.len();
    if l < 14 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    if be16(f, 12) != 0x0800 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    if l < 34 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    // adjust_head(-20) has 256 bytes of headroom in test-run: it succeeds.
    let total = be16(f, 16).wrapping_add(20);
    let mut outer = vec![0x45, 0x00];
    outer.extend(total.to_be_bytes());
    outer.extend([0, 0, 0x40, 0x00, 64, 4, 0, 0]);
    outer.extend([198, 51, 100, 1, 203, 0, 113, 1]);
    let c = ipv4_checksum(&outer);
    outer[10..12].copy_from_slice(&c.to_be_bytes());
    let mut o = f[..14].to_vec();
    o.extend(outer);
    o.extend(&f[14..]);
    Expect::rewritten(Verdict::Tx, p.with_lin(o))
}

fn decap(p: &Pkt) -> Expect {
    let f = p.lin();
    let l = f.len();
    if l < 14 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    if be16(f, 12) != 0x0800 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    if l < 34 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    if f[23] != 4 || f[14] != 0x45 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    if l < 54 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    let mut o = f[..14].to_vec();
    o.extend(&f[34..]);
    Expect::rewritten(Verdict::Pass, p.with_lin(o))
}
