//! corpus/reflector.c: UDP/IPv4 reflection with XDP_TX, PING -> PONG,
//! incremental checksum updates exactly as the specification's formula.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "reflector",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

/// The specification's "INCREMENTAL UPDATE, exactly" over 16-bit words.
pub(crate) fn incremental(hc: u16, old: [u16; 2], new: [u16; 2]) -> u16 {
    let mut s: u64 = 0xFFFF - hc as u64;
    for m in old {
        s += 0xFFFF - m as u64;
    }
    for m in new {
        s += m as u64;
    }
    let mut s = s % 0xFFFF;
    if s == 0 {
        s = 0xFFFF;
    }
    (0xFFFF - s) as u16
}

fn run(p: &Pkt) -> Expect {
    let f = p.lin();
    let l = f.len();
    let reflect = l >= 34
        && be16(f, 12) == 0x0800
        && f[14] >> 4 == 4
        && (f[14] & 0xF) >= 5
        && f[23] == 17
        && be16(f, 20) & 0x3FFF == 0
        && 14 + 4 * (f[14] & 0xF) as usize + 8 <= l;
    if !reflect {
        return Expect::unchanged(Verdict::Pass, p);
    }
    let u = 14 + 4 * (f[14] & 0xF) as usize;
    let mut o = f.to_vec();
    // 1-3: swaps.
    o[0..6].copy_from_slice(&f[6..12]);
    o[6..12].copy_from_slice(&f[0..6]);
    o[26..30].copy_from_slice(&f[30..34]);
    o[30..34].copy_from_slice(&f[26..30]);
    o[u..u + 2].copy_from_slice(&f[u + 2..u + 4]);
    o[u + 2..u + 4].copy_from_slice(&f[u..u + 2]);
    // 4: TTL and header checksum.
    let proto = f[23] as u16;
    let hc = incremental(be16(f, 24), [(f[22] as u16) << 8 | proto, 0], [64 << 8 | proto, 0]);
    o[22] = 64;
    o[24..26].copy_from_slice(&hc.to_be_bytes());
    // 5: PING -> PONG.
    if u + 12 <= l && &f[u + 8..u + 12] == b"PING" {
        o[u + 8..u + 12].copy_from_slice(b"PONG");
        let uc = be16(f, u + 6);
        if uc != 0 {
            let w = |b: &[u8; 4]| [be16(b, 0), be16(b, 2)];
            let mut n = incremental(uc, w(b"PING"), w(b"PONG"));
            if n == 0 {
                n = 0xFFFF;
            }
            o[u + 6..u + 8].copy_from_slice(&n.to_be_bytes());
        }
    }
    Expect::rewritten(Verdict::Tx, p.with_lin(o))
}
