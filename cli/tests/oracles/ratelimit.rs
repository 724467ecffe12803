//! corpus/ratelimit.c: token bucket per (IPv4 source, destination port).

use super::*;
use std::collections::HashMap;

pub(crate) fn cases() -> Vec<Case> {
    vec![Case {
        program: "ratelimit",
        entry: "xdp",
        config: "default",
        setup: vec![],
        oracle: || Box::new(RateLimit::default()),
    }]
}

const BURST: u64 = 4;
const PERIOD: u64 = 100_000_000;

#[derive(Default)]
pub(crate) struct RateLimit {
    /// (saddr wire bytes, dport) -> (tokens, last_ns)
    buckets: HashMap<([u8; 4], u16), (u64, u64)>,
}

impl RateLimit {
    fn classify(f: &[u8]) -> Result<([u8; 4], u16), Verdict> {
        let l = f.len();
        if l < 14 {
            return Err(Verdict::Drop);
        }
        if be16(f, 12) != 0x0800 {
            return Err(Verdict::Pass);
        }
        let ihl = if l >= 34 { (f[14] & 0xF) as usize } else { 0 };
        if l < 34 || ihl < 5 {
            return Err(Verdict::Drop);
        }
        if f[23] != 6 && f[23] != 17 {
            return Err(Verdict::Pass);
        }
        if be16(f, 20) & 0x1FFF != 0 {
            return Err(Verdict::Pass);
        }
        let u = 14 + 4 * ihl;
        if u + 4 > l {
            return Err(Verdict::Drop);
        }
        Ok((f[26..30].try_into().unwrap(), be16(f, u + 2)))
    }
}

impl Oracle for RateLimit {
    fn run(&mut self, p: &Pkt) -> Expect {
        let key = match Self::classify(p.lin()) {
            Ok(k) => k,
            Err(v) => return Expect::unchanged(v, p),
        };
        let now = p.ts_ns;
        let Some((tokens, last)) = self.buckets.get_mut(&key) else {
            self.buckets.insert(key, (BURST - 1, now));
            return Expect::unchanged(Verdict::Pass, p);
        };
        if now > *last {
            let n = (now - *last) / PERIOD;
            if n > 0 {
                *last += n * PERIOD;
                *tokens = (*tokens + n).min(BURST);
            }
        }
        let v = if *tokens > 0 {
            *tokens -= 1;
            Verdict::Pass
        } else {
            Verdict::Drop
        };
        Expect::unchanged(v, p)
    }

    fn expected_maps(&self) -> Vec<MapExpect> {
        self.buckets
            .iter()
            .map(|((saddr, dport), (tokens, last))| {
                // struct flow_key { u32 saddr (wire); u16 dport (host); u16 pad }
                let mut key = saddr.to_vec();
                key.extend(dport.to_le_bytes());
                key.extend([0, 0]);
                let mut value = tokens.to_le_bytes().to_vec();
                value.extend(last.to_le_bytes());
                MapExpect { map: "buckets".into(), key, value }
            })
            .collect()
    }
}
