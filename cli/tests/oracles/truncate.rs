//! corpus/truncate.c: frames longer than 256 bytes cut to 256 and XDP_TX'd.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "truncate",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

const SNAP: usize = 256;

fn run(p: &Pkt) -> Expect {
    let l = p.lin().len();
    if l <= SNAP {
        return Expect::unchanged(Verdict::Pass, p);
    }
    if p.frags().is_empty() {
        return Expect::rewritten(Verdict::Tx, p.frame[..SNAP].to_vec());
    }
    // Outside the specification, which assumes the whole frame is linear:
    // a frame longer than MAX_LINEAR reaches this program with fragments, L
    // is the linear length, and bpf_xdp_adjust_tail(256 - L) on a
    // multi-buffer frame trims |256 - L| bytes from the END of the frame,
    // fragments first (net/core/filter.c bpf_xdp_frags_shrink_tail), so the
    // kernel returns the first len - (L - 256) bytes.
    let cut = l - SNAP;
    Expect::rewritten(Verdict::Tx, p.frame[..p.frame.len() - cut].to_vec())
}
