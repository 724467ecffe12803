//! corpus/lpm_filter.c: drop IPv4 sources covered by a prefix in the trie.

use super::*;

/// Prefixes (address, length) put into src_prefixes.
pub(crate) type Prefixes = &'static [([u8; 4], u32)];

/// Cover parts of the mixed (10.0.x.y) and firewall (198.51.100.x) sources,
/// with a nested pair to exercise the longest match.
pub(crate) const SOME: Prefixes =
    &[([10, 0, 128, 0], 17), ([10, 0, 128, 0], 24), ([198, 51, 100, 0], 28), ([10, 0, 7, 9], 32)];
/// A default route matches every address.
pub(crate) const DEFAULT_ROUTE: Prefixes = &[([0, 0, 0, 0], 0)];

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "lpm_filter",
            entry: "xdp",
            config: "empty-trie",
            setup: vec![],
            oracle: || Box::new(Lpm(&[])),
        },
        Case {
            program: "lpm_filter",
            entry: "xdp",
            config: "prefixes",
            setup: setup(SOME),
            oracle: || Box::new(Lpm(SOME)),
        },
        Case {
            program: "lpm_filter",
            entry: "xdp",
            config: "default-route",
            setup: setup(DEFAULT_ROUTE),
            oracle: || Box::new(Lpm(DEFAULT_ROUTE)),
        },
    ]
}

fn setup(p: Prefixes) -> Vec<Setup> {
    p.iter()
        .map(|(addr, len)| {
            // struct lpm_v4_key { u32 prefixlen (host order); u8 addr[4] }
            let mut key = len.to_le_bytes().to_vec();
            key.extend(addr);
            Setup::Update { map: "src_prefixes", key, value: 1u32.to_le_bytes().to_vec() }
        })
        .collect()
}

pub(crate) struct Lpm(Prefixes);

fn covers(prefix: [u8; 4], len: u32, addr: [u8; 4]) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from_be_bytes(prefix) & mask == u32::from_be_bytes(addr) & mask
}

impl Oracle for Lpm {
    fn run(&mut self, p: &Pkt) -> Expect {
        let f = p.lin();
        let v = if f.len() < 14 {
            Verdict::Drop
        } else if be16(f, 12) != 0x0800 {
            Verdict::Pass
        } else if f.len() < 34 {
            Verdict::Drop
        } else {
            let src: [u8; 4] = f[26..30].try_into().unwrap();
            if self.0.iter().any(|&(pfx, len)| covers(pfx, len, src)) {
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        };
        Expect::unchanged(v, p)
    }
}
