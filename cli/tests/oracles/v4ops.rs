//! corpus/v4ops.c: signed arithmetic on packet bytes, results written back.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "v4ops",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

/// The bpfeb build (corpus/build/bpfeb/v4ops.v3.bpfeb.o). v4ops.c loads
/// `*(__s16 *)`/`*(__s32 *)` from the packet and stores
/// `__builtin_bswap16/32/64(x)` with plain stores: on a big-endian machine
/// the loads read bytes big-endian and the unconditional swaps make the
/// stores leave the results little-endian, the mirror image of step 2 and
/// step 4 of the specification.
pub(crate) fn cases_bpfeb() -> Vec<Case> {
    vec![Case {
        program: "v4ops",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run_bpfeb)),
    }]
}

fn run(p: &Pkt) -> Expect {
    run_order(p, false)
}

fn run_bpfeb(p: &Pkt) -> Expect {
    run_order(p, true)
}

fn run_order(p: &Pkt, big: bool) -> Expect {
    let f = p.lin();
    if f.len() < 30 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    let a = f[14] as i8;
    let e = f[15] as i8;
    let (b, c) = if big {
        (i16::from_be_bytes([f[16], f[17]]), i32::from_be_bytes(f[18..22].try_into().unwrap()))
    } else {
        (i16::from_le_bytes([f[16], f[17]]), i32::from_le_bytes(f[18..22].try_into().unwrap()))
    };
    // Rust's / and % truncate toward zero like C's; the divisors are odd.
    let q = c as i64 / (a | 1) as i64;
    let r = b as i32 % (e | 1) as i32;
    let m = (q & 0xFF) as u8 as i8 as i64;
    let mut o = f.to_vec();
    if big {
        o[16..18].copy_from_slice(&(r as u16).to_le_bytes());
        o[18..22].copy_from_slice(&(m as u32).to_le_bytes());
        o[22..30].copy_from_slice(&(q as u64).to_le_bytes());
    } else {
        o[16..18].copy_from_slice(&(r as u16).to_be_bytes());
        o[18..22].copy_from_slice(&(m as u32).to_be_bytes());
        o[22..30].copy_from_slice(&(q as u64).to_be_bytes());
    }
    let v = if r < 0 { Verdict::Tx } else { Verdict::Pass };
    Expect::rewritten(v, p.with_lin(o))
}

#[cfg(test)]
mod tests {
    // The specification's worked example.
    #[test]
    fn worked_example() {
        let mut f = vec![0u8; 30];
        f[14..22].copy_from_slice(&[0xfd, 0x03, 0xf6, 0xff, 0x64, 0, 0, 0]);
        let p = super::Pkt { frame: &f, ts_ns: 0, ingress_ifindex: 1 };
        let e = super::run(&p);
        assert_eq!(e.verdict, super::Verdict::Tx);
        assert_eq!(
            &e.output.unwrap()[16..30],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xdf]
        );
    }
}
