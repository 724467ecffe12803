//! corpus/redirect.c: bpf_redirect_map over a 4-slot DEVMAP, slot from the
//! UDP destination port or the ingress ifindex, fallback XDP_PASS.

use super::*;

/// Slot -> egress ifindex; slot 2 stays empty on purpose.
pub(crate) const SLOTS: &[(u32, u32)] = &[(0, 10), (1, 11), (3, 13)];

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "redirect",
            entry: "xdp",
            config: "empty-devmap",
            setup: vec![],
            oracle: || Box::new(Redirect(&[])),
        },
        Case {
            program: "redirect",
            entry: "xdp",
            config: "slots-0-1-3",
            setup: SLOTS
                .iter()
                .map(|(k, ifindex)| Setup::Update {
                    map: "tx_ports",
                    key: k.to_le_bytes().to_vec(),
                    value: ifindex.to_le_bytes().to_vec(),
                })
                .collect(),
            oracle: || Box::new(Redirect(SLOTS)),
        },
    ]
}

pub(crate) struct Redirect(&'static [(u32, u32)]);

pub(crate) fn slot(p: &Pkt) -> u32 {
    let f = p.lin();
    let l = f.len();
    if l >= 34 && be16(f, 12) == 0x0800 && f[23] == 17 && f[14] & 0xF >= 5 {
        let u = 14 + 4 * (f[14] & 0xF) as usize;
        if u + 8 <= l {
            return be16(f, u + 2) as u32 % 4;
        }
    }
    p.ingress_ifindex % 4
}

impl Oracle for Redirect {
    fn run(&mut self, p: &Pkt) -> Expect {
        let k = slot(p);
        let v = if self.0.iter().any(|&(s, _)| s == k) { Verdict::Redirect } else { Verdict::Pass };
        Expect::unchanged(v, p)
    }
}
