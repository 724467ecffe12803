//! corpus/core.c: a CO-RE program whose local struct layouts differ from
//! the kernel's; the verdicts below follow the specification, which is
//! written in terms of the real packet offsets (TTL at byte 22, protocol at
//! byte 23), so they hold only if the relocations were applied.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "core",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

/// The bpfeb build (corpus/build/bpfeb/core.v3.bpfeb.o). core.c compares
/// `eth->h_proto` with `__builtin_bswap16(0x0800)`, an unconditional swap,
/// not `bpf_htons`: on a big-endian machine the 2-byte load reads bytes
/// 12-13 as `f[12] << 8 | f[13]` and the constant is 0x0008, so only
/// frames whose EtherType bytes are `00 08` get past step 2; the rest of
/// the specification reads single bytes and holds unchanged.
pub(crate) fn cases_bpfeb() -> Vec<Case> {
    vec![Case {
        program: "core",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run_bpfeb)),
    }]
}

fn run(p: &Pkt) -> Expect {
    run_with_ethertype(p, [0x08, 0x00])
}

fn run_bpfeb(p: &Pkt) -> Expect {
    run_with_ethertype(p, [0x00, 0x08])
}

fn run_with_ethertype(p: &Pkt, ethertype: [u8; 2]) -> Expect {
    let f = p.lin();
    if f.len() < 14 || f[12..14] != ethertype || f.len() < 34 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    // Steps 4 and 5 never apply on a kernel whose struct iphdr is the
    // 20-byte UAPI header without an `xq_missing` member.
    let (ttl, protocol) = (f[22], f[23]);
    if ttl <= 1 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    if protocol == 17 {
        let mut out = p.frame.to_vec();
        out[22] = ttl - 1;
        return Expect::rewritten(Verdict::Tx, out);
    }
    Expect::unchanged(Verdict::Pass, p)
}
