//! The work of a qualification as units (program x capture x cell, and
//! program x offload profile), in one canonical order, and the split of
//! those units into shards balanced by recorded cost.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::config::Config;

#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// Position in the canonical order; reports sort by it.
    pub index: usize,
    pub program: usize,
    /// None for offload units.
    pub capture: Option<usize>,
    /// vm, rbpf, host or offload:PROFILE.
    pub cell: String,
    /// Stable name for cost look-ups: program label | capture | cell.
    pub key: String,
}

pub fn units(cfg: &Config) -> Vec<Unit> {
    let mut out = Vec::new();
    for (pi, p) in cfg.programs.iter().enumerate() {
        let label = p.label();
        for (ci, c) in cfg.captures.iter().enumerate() {
            for cell in &p.cells {
                let index = out.len();
                out.push(Unit {
                    index,
                    program: pi,
                    capture: Some(ci),
                    cell: cell.clone(),
                    key: format!("{label}|{}|{cell}", c.display()),
                });
            }
        }
        for prof in p.offload.keys() {
            let index = out.len();
            let cell = format!("offload:{prof}");
            out.push(Unit {
                index,
                program: pi,
                capture: None,
                key: format!("{label}|-|{cell}"),
                cell,
            });
        }
    }
    out
}

/// `I/N`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard '{s}': expected I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Estimated cost of a unit without history: the capture's size (replay
/// time grows with it), a fixed small cost for an offload check.
pub fn estimate(cfg: &Config, u: &Unit) -> f64 {
    match u.capture {
        Some(c) => {
            std::fs::metadata(&cfg.captures[c]).map(|m| m.len() as f64 * 1e-7).unwrap_or(1e-3)
        }
        None => 1e-3,
    }
}

/// Assigns every unit to a shard (0-based): longest-processing-time first,
/// each unit to the least-loaded shard, ties broken by unit index and
/// shard number, so every shard computes the same assignment from the
/// same costs. Returns the assignment and its fingerprint.
pub fn assign(
    units: &[Unit],
    costs: &BTreeMap<String, f64>,
    fallback: impl Fn(&Unit) -> f64,
    count: u32,
) -> (Vec<u32>, String) {
    let cost: Vec<f64> = units
        .iter()
        .map(|u| {
            costs
                .get(&u.key)
                .copied()
                .filter(|c| c.is_finite() && *c >= 0.0)
                .unwrap_or_else(|| fallback(u))
        })
        .collect();
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]).then(a.cmp(&b)));
    let mut load = vec![0f64; count.max(1) as usize];
    let mut shard_of = vec![0u32; units.len()];
    for i in order {
        let s = (0..load.len())
            .min_by(|&x, &y| load[x].total_cmp(&load[y]).then(x.cmp(&y)))
            .expect("at least one shard");
        load[s] += cost[i];
        shard_of[i] = s as u32;
    }
    // FNV-1a over the unit keys and their shards: same plan, same print.
    let mut h: u64 = 0xcbf29ce484222325;
    for (u, s) in units.iter().zip(&shard_of) {
        for b in u.key.bytes().chain(s.to_le_bytes()).chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    (shard_of, format!("{h:016x}-{}x{count}", units.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(i: usize) -> Unit {
        Unit { index: i, program: 0, capture: Some(0), cell: "vm".into(), key: format!("k{i}") }
    }

    #[test]
    fn shard_parses_strictly() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn assignment_covers_every_unit_once_and_balances() {
        let units: Vec<Unit> = (0..7).map(u).collect();
        let costs: BTreeMap<String, f64> = [
            ("k0", 10.0),
            ("k1", 1.0),
            ("k2", 1.0),
            ("k3", 4.0),
            ("k4", 4.0),
            ("k5", 1.0),
            ("k6", 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let (a, print) = assign(&units, &costs, |_| 0.0, 2);
        // LPT: 10 -> s0; 4, 4 -> s1 (8); the 1s: s1 (9), s1 (10), s0 (11), s1 (11).
        let load = |s: u32| {
            units.iter().zip(&a).filter(|(_, x)| **x == s).map(|(u, _)| costs[&u.key]).sum::<f64>()
        };
        assert_eq!(load(0) + load(1), 22.0);
        assert_eq!((load(0), load(1)), (11.0, 11.0), "{a:?}");
        let (b, print2) = assign(&units, &costs, |_| 0.0, 2);
        assert_eq!((a.clone(), print.clone()), (b, print2), "deterministic");
        let (_, other) = assign(&units, &BTreeMap::new(), |_| 1.0, 2);
        assert_ne!(print, other, "a different assignment has a different fingerprint");
    }
}
