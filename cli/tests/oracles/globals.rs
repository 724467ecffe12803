//! corpus/globals.c: .rodata config, .data TTL floor, .bss counters.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "globals",
        entry: "xdp",
        config: "compiled-in",
        setup: vec![],
        oracle: || Box::new(Globals::default()),
    }]
}

const BLOCKED_PORT: u16 = 9;
const ENFORCE: bool = true;
const TTL_FLOOR: u8 = 2;

#[derive(Default)]
pub(crate) struct Globals {
    pub packets_seen: u64,
    pub dropped: u64,
    pub port_hits: u64,
}

impl Globals {
    fn verdict(&mut self, f: &[u8]) -> Verdict {
        let l = f.len();
        if l < 14 {
            return Verdict::Drop;
        }
        if be16(f, 12) != 0x0800 {
            return Verdict::Pass;
        }
        let ihl = if l >= 34 { (f[14] & 0xF) as usize } else { 0 };
        if l < 34 || ihl < 5 || f[22] < TTL_FLOOR {
            return Verdict::Drop;
        }
        if f[23] != 17 {
            return Verdict::Pass;
        }
        let u = 14 + 4 * ihl;
        if u + 4 > l {
            return Verdict::Drop;
        }
        if be16(f, u + 2) == BLOCKED_PORT {
            self.port_hits += 1;
            if ENFORCE {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    }
}

impl Oracle for Globals {
    fn run(&mut self, p: &Pkt) -> Expect {
        self.packets_seen += 1;
        let v = self.verdict(p.lin());
        if v == Verdict::Drop {
            self.dropped += 1;
        }
        Expect::unchanged(v, p)
    }

    /// The .bss counters; the test places them at their ELF symbol offsets.
    fn expected_maps(&self) -> Vec<MapExpect> {
        [
            ("packets_seen", self.packets_seen),
            ("dropped", self.dropped),
            ("port_hits", self.port_hits),
        ]
        .into_iter()
        .map(|(sym, n)| MapExpect {
            map: format!(".bss:{sym}"),
            key: vec![],
            value: n.to_le_bytes().to_vec(),
        })
        .collect()
    }
}
