//! corpus/subprogs.c: a port policy through a chain of BPF-to-BPF calls.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "subprogs",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Stateless(run)),
    }]
}

fn verdict(f: &[u8]) -> Verdict {
    let l = f.len();
    if l < 14 {
        return Verdict::Drop;
    }
    if be16(f, 12) != 0x0800 {
        return Verdict::Pass;
    }
    let ihl = if l >= 34 { (f[14] & 0xF) as usize } else { 0 };
    if l < 34 || ihl < 5 {
        return Verdict::Drop;
    }
    let p = f[23];
    let u = 14 + 4 * ihl;
    let port = if p == 6 || p == 17 {
        if u + 4 > l {
            return Verdict::Drop;
        }
        be16(f, u + 2)
    } else {
        0
    };
    if (p == 6 || p == 17) && port < 1024 && ![22, 53, 80, 443].contains(&port) {
        Verdict::Drop
    } else {
        Verdict::Pass
    }
}

fn run(p: &Pkt) -> Expect {
    Expect::unchanged(verdict(p.lin()), p)
}
