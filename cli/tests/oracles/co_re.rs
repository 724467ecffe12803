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

fn run(p: &Pkt) -> Expect {
    let f = p.lin();
    if f.len() < 14 || f[12..14] != [0x08, 0x00] || f.len() < 34 {
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
