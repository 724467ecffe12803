//! corpus/dispatcher.c: tail calls to per-family programs.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "dispatcher",
            entry: "xdp",
            config: "table-filled",
            setup: vec![
                Setup::ProgArray { map: "jmp_table", slot: 0, prog: "xdp_ipv4" },
                Setup::ProgArray { map: "jmp_table", slot: 1, prog: "xdp_ipv6" },
            ],
            oracle: || Box::new(Stateless(|p| Expect::unchanged(dispatch(p.lin(), true), p))),
        },
        Case {
            program: "dispatcher",
            entry: "xdp",
            config: "table-empty",
            setup: vec![],
            oracle: || Box::new(Stateless(|p| Expect::unchanged(dispatch(p.lin(), false), p))),
        },
        Case {
            program: "dispatcher",
            entry: "xdp/ipv4",
            config: "ipv4-alone",
            setup: vec![],
            oracle: || Box::new(Stateless(|p| Expect::unchanged(ipv4(p.lin()), p))),
        },
    ]
}

fn dispatch(f: &[u8], filled: bool) -> Verdict {
    if f.len() < 14 {
        return Verdict::Drop;
    }
    match be16(f, 12) {
        0x0800 if filled => ipv4(f),
        0x86DD if filled => ipv6(f),
        _ => Verdict::Pass,
    }
}

fn ipv4(f: &[u8]) -> Verdict {
    if f.len() < 34 || f[22] <= 1 {
        Verdict::Drop
    } else {
        Verdict::Pass
    }
}

fn ipv6(f: &[u8]) -> Verdict {
    if f.len() < 54 || f[21] <= 1 {
        Verdict::Drop
    } else {
        Verdict::Pass
    }
}
