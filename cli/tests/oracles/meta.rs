//! corpus/meta.c: 4 bytes of metadata holding the IP protocol; always PASS.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "meta",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

fn mark(f: &[u8]) -> u32 {
    let l = f.len();
    if l < 14 {
        return 0;
    }
    match be16(f, 12) {
        0x0800 if l >= 34 => f[23] as u32,
        0x86DD if l >= 54 => f[20] as u32,
        _ => 0,
    }
}

/// The bpfeb build: step 3's store of M is a native u32 store, so on a
/// big-endian machine the metadata holds M big-endian; the mark itself is
/// computed from single bytes and is the same.
pub(crate) fn cases_bpfeb() -> Vec<Case> {
    vec![Case {
        program: "meta",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run_bpfeb)),
    }]
}

fn run(p: &Pkt) -> Expect {
    run_with(p, mark(p.lin()).to_le_bytes())
}

fn run_bpfeb(p: &Pkt) -> Expect {
    run_with(p, mark(p.lin()).to_be_bytes())
}

fn run_with(p: &Pkt, meta: [u8; 4]) -> Expect {
    // test-run supports metadata (net/bpf/test_run.c prepares the buffer
    // with meta_valid), so adjust_meta(-4) succeeds; data_out starts at
    // data_meta.
    let mut o = meta.to_vec();
    o.extend(p.frame);
    Expect::rewritten(Verdict::Pass, o)
}
