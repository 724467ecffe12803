//! corpus/counters.c: always XDP_PASS; per-class counters and totals.

use super::*;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "counters",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(Counters::default()),
    }]
}

#[derive(Default)]
pub(crate) struct Counters {
    /// proto_stats[c] = (packets, bytes)
    classes: [(u64, u64); 5],
    packets: u64,
    bytes: u64,
    ip_packets: u64,
    last_ip_seq: u64,
    class_mask: u64,
    last_len: u64,
    first_len: u64,
    len_xor: u64,
    runts: u32,
}

/// The class c of the specification.
pub(crate) fn class(f: &[u8]) -> usize {
    let l = f.len();
    if l < 14 {
        return 0;
    }
    let (p, v6) = match be16(f, 12) {
        0x0800 if l >= 34 => (f[23], false),
        0x86DD if l >= 54 => (f[20], true),
        _ => return 0,
    };
    match p {
        6 => 1,
        17 => 2,
        1 if !v6 => 3,
        58 if v6 => 3,
        _ => 4,
    }
}

impl Oracle for Counters {
    fn run(&mut self, p: &Pkt) -> Expect {
        let f = p.lin();
        let l = f.len() as u64;
        let c = class(f);
        self.classes[c].0 += 1;
        self.classes[c].1 += l;
        self.packets += 1;
        self.bytes += l;
        if c != 0 {
            self.last_ip_seq = self.ip_packets;
            self.ip_packets += 1;
        }
        self.class_mask |= 1 << c;
        self.last_len = l;
        if self.first_len == 0 {
            self.first_len = l;
        }
        self.len_xor ^= l;
        if l < 60 {
            self.runts += 1;
        }
        Expect::unchanged(Verdict::Pass, p)
    }

    fn expected_maps(&self) -> Vec<MapExpect> {
        let mut v: Vec<MapExpect> = self
            .classes
            .iter()
            .enumerate()
            .map(|(c, &(n, b))| {
                let mut value = n.to_le_bytes().to_vec();
                value.extend(b.to_le_bytes());
                MapExpect {
                    map: "proto_stats".into(),
                    key: (c as u32).to_le_bytes().to_vec(),
                    value,
                }
            })
            .collect();
        let mut t = Vec::new();
        for x in [
            self.packets,
            self.bytes,
            self.ip_packets,
            self.last_ip_seq,
            self.class_mask,
            self.last_len,
            self.first_len,
            self.len_xor,
        ] {
            t.extend(x.to_le_bytes());
        }
        t.extend(self.runts.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        v.push(MapExpect { map: "totals".into(), key: 0u32.to_le_bytes().to_vec(), value: t });
        v
    }
}
