//! corpus/vlan.c: push an 802.1Q tag with VID 100 ("xdp/vlan_push"), pop
//! one ("xdp/vlan_pop").

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "vlan",
            entry: "xdp/vlan_push",
            config: "push",
            setup: vec![],
            oracle: || Box::new(Stateless(push)),
        },
        Case {
            program: "vlan",
            entry: "xdp/vlan_pop",
            config: "pop",
            setup: vec![],
            oracle: || Box::new(Stateless(pop)),
        },
    ]
}

fn push(p: &Pkt) -> Expect {
    let f = p.lin();
    if f.len() < 14 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    let e = be16(f, 12);
    if e == 0x8100 || e == 0x88A8 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    let mut o = f[..12].to_vec();
    o.extend([0x81, 0x00, 0x00, 0x64]);
    o.extend(&f[12..]);
    Expect::rewritten(Verdict::Pass, p.with_lin(o))
}

fn pop(p: &Pkt) -> Expect {
    let f = p.lin();
    if f.len() < 14 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    if be16(f, 12) != 0x8100 {
        return Expect::unchanged(Verdict::Pass, p);
    }
    if f.len() < 18 {
        return Expect::unchanged(Verdict::Drop, p);
    }
    let mut o = f[..12].to_vec();
    o.extend(&f[16..]);
    Expect::rewritten(Verdict::Pass, p.with_lin(o))
}
