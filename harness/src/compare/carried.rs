//! Nondeterminism carried from one run into the next through map state.
//!
//! A run that calls `bpf_get_prandom_u32` or reads the clock computes
//! values the other backends cannot reproduce; [`Tally::record`] counts a
//! disagreement on such a packet as nondeterministic. When the run stores
//! such a value in a map (Cilium's SNAT picks a random source port and
//! keeps it in its NAT map), later packets that read it differ between the
//! backends too, although they call no such helper themselves. This module
//! follows those values in the engine's run, conservatively:
//!
//! - A run is **nondeterministic** when it calls a nondeterministic helper,
//!   reads a `__ksym` kernel variable (the kernel's live data), or reads anything a nondeterministic run may have left different: a
//!   value such a run wrote, an element such a run inserted, a lookup miss
//!   or an insert in a map such a run inserted into, or any access to a map
//!   such a run deleted from (or evicted from, or failed to update; in an
//!   LRU map any update may evict, see `maps/lru.rs`).
//! - Everything a nondeterministic run writes to a map is marked: the
//!   values it wrote, the elements it inserted, the key sets it changed.
//!
//! Each run's reads are checked against what earlier runs marked, never
//! against its own writes, so the order of accesses inside one run does
//! not matter. Marks are never cleared: a later deterministic overwrite
//! would make a value deterministic again, but keeping the mark can only
//! class a disagreement as nondeterministic, never hide one on a packet
//! that read nothing marked. The engine reports what it did through the
//! [`Tracer`] hooks (`helper`, `mem` for map values, `map_op` for the map
//! helpers), so this needs the interpreter (`OBSERVES`).
//!
//! [`Tally::record`]: super::Tally::record

use std::collections::HashSet;

use crate::engine::fault::Region;
use crate::engine::helpers::ids::NONDETERMINISTIC;
use crate::engine::{Engine, MapOp, Tracer};
use crate::program::MapType;

/// What the runs so far left possibly different between the backends, and
/// what the current run did. See the module documentation for the rules.
#[derive(Default)]
pub struct CarriedNondeterminism {
    /// Per map: bytes per element (all CPUs' values), to turn a value
    /// offset into its element; and whether inserting can evict.
    strides: Vec<usize>,
    lru: Vec<bool>,
    /// Elements whose value a nondeterministic run wrote: (map, slot).
    values: HashSet<(usize, usize)>,
    /// Elements a nondeterministic run inserted.
    inserted: HashSet<(usize, usize)>,
    /// Maps a nondeterministic run inserted into: a miss may be a hit on
    /// another backend.
    grown: HashSet<usize>,
    /// Maps whose key set a nondeterministic run changed in ways that can
    /// remove any key (delete, eviction, a failed update's side): every
    /// access may differ.
    reshaped: HashSet<usize>,
    run: RunLog,
}

/// The current run: whether it is nondeterministic so far, and what it
/// wrote, applied when it ends.
#[derive(Default)]
struct RunLog {
    nondeterministic: bool,
    wrote: Vec<(usize, usize)>,
    inserted: Vec<(usize, usize)>,
    reshaped: Vec<usize>,
}

impl CarriedNondeterminism {
    /// Starts with nothing marked, for `engine`'s maps.
    pub fn new(engine: &Engine) -> CarriedNondeterminism {
        let maps = &engine.maps().maps;
        CarriedNondeterminism {
            strides: maps.iter().map(|m| m.stride).collect(),
            lru: maps
                .iter()
                .map(|m| matches!(m.def.map_type, MapType::LruHash | MapType::LruPercpuHash))
                .collect(),
            ..Default::default()
        }
    }

    /// Forgets every mark (the maps were reset to their initial contents).
    pub fn reset(&mut self) {
        self.values.clear();
        self.inserted.clear();
        self.grown.clear();
        self.reshaped.clear();
        self.run = RunLog::default();
    }

    /// Ends the current run: whether its result may differ between the
    /// backends for reasons no backend controls. When it may, its map
    /// writes are marked for the runs after it.
    pub fn end_run(&mut self) -> bool {
        let run = std::mem::take(&mut self.run);
        if run.nondeterministic {
            self.values.extend(run.wrote);
            for (map, slot) in run.inserted {
                self.inserted.insert((map, slot));
                self.values.insert((map, slot));
                self.grown.insert(map);
                if self.lru.get(map).copied().unwrap_or(true) {
                    self.reshaped.insert(map);
                }
            }
            self.reshaped.extend(run.reshaped);
        }
        run.nondeterministic
    }

    fn taint_if(&mut self, read_marked: bool) {
        self.run.nondeterministic |= read_marked;
    }
}

impl Tracer for CarriedNondeterminism {
    fn helper(&mut self, _pc: usize, id: i32) {
        self.taint_if(NONDETERMINISTIC.contains(&id));
    }

    fn mem(&mut self, _pc: usize, region: Region, offset: u64, _size: usize, write: bool) {
        // A kernel variable (`__ksym`) holds the kernel's live data, which
        // the engine reads as zeros (engine helpers/ksym.rs).
        if let Region::Ksym(_) = region {
            self.taint_if(true);
            return;
        }
        let Region::MapValue(map) = region else { return };
        let map = map as usize;
        // A stride of 0 cannot reach here: the engine faults such accesses.
        let slot = offset as usize / self.strides.get(map).copied().unwrap_or(1).max(1);
        if write {
            self.run.wrote.push((map, slot));
        }
        // A write of part of a value leaves the rest as it was, and a
        // read-modify-write reads first: either way the old value counts.
        let marked = self.reshaped.contains(&map)
            || self.values.contains(&(map, slot))
            || self.inserted.contains(&(map, slot));
        self.taint_if(marked);
    }

    fn map_op(&mut self, map: usize, op: MapOp) {
        let marked = self.reshaped.contains(&map)
            || match op {
                MapOp::Found { slot } => self.inserted.contains(&(map, slot)),
                MapOp::Missed => self.grown.contains(&map),
                MapOp::Wrote { slot, inserted } => {
                    if inserted {
                        self.grown.contains(&map)
                    } else {
                        self.inserted.contains(&(map, slot))
                    }
                }
                MapOp::Membership => self.grown.contains(&map),
            };
        self.taint_if(marked);
        match op {
            MapOp::Wrote { slot, inserted: true } => self.run.inserted.push((map, slot)),
            MapOp::Wrote { slot, inserted: false } => {
                self.run.wrote.push((map, slot));
                // An LRU_HASH update takes a node before it looks for the
                // key (hashtab.c htab_lru_map_update_elem), so rewriting a
                // present key can evict others too.
                if self.lru.get(map).copied().unwrap_or(true) {
                    self.run.reshaped.push(map);
                }
            }
            MapOp::Membership => self.run.reshaped.push(map),
            MapOp::Found { .. } | MapOp::Missed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::helpers::ids::GET_PRANDOM_U32;

    fn tracker(maps: usize) -> CarriedNondeterminism {
        CarriedNondeterminism {
            strides: vec![8; maps],
            lru: vec![false; maps],
            ..Default::default()
        }
    }

    #[test]
    fn a_random_value_stored_in_a_map_makes_its_later_readers_nondeterministic() {
        let mut t = tracker(2);
        // Run 1 draws a number and writes it into map 0, element 3.
        t.helper(0, GET_PRANDOM_U32);
        t.map_op(0, MapOp::Wrote { slot: 3, inserted: true });
        assert!(t.end_run());
        // Run 2 reads element 3's value: carried.
        t.map_op(0, MapOp::Found { slot: 3 });
        t.mem(0, Region::MapValue(0), 3 * 8 + 4, 2, false);
        assert!(t.end_run());
        // Run 3 reads map 1, which no random run touched.
        t.map_op(1, MapOp::Found { slot: 3 });
        t.mem(0, Region::MapValue(1), 3 * 8, 8, false);
        assert!(!t.end_run());
        // Run 4 misses in map 0: the other backend may have the key.
        t.map_op(0, MapOp::Missed);
        assert!(t.end_run());
    }

    #[test]
    fn a_random_run_rewriting_an_lru_key_may_have_evicted_others() {
        // Map 0 is an LRU map: the rewrite took a node first and may have
        // evicted any key, so every later access to map 0 is carried. Map
        // 1 is a plain hash: a rewrite there touches its own element only.
        let mut t = tracker(2);
        t.lru = vec![true, false];
        t.helper(0, GET_PRANDOM_U32);
        t.map_op(0, MapOp::Wrote { slot: 1, inserted: false });
        t.map_op(1, MapOp::Wrote { slot: 1, inserted: false });
        assert!(t.end_run());
        t.map_op(0, MapOp::Found { slot: 5 });
        assert!(t.end_run());
        t.map_op(1, MapOp::Found { slot: 5 });
        assert!(!t.end_run());
    }

    #[test]
    fn writes_of_a_deterministic_run_mark_nothing() {
        let mut t = tracker(1);
        t.map_op(0, MapOp::Wrote { slot: 0, inserted: true });
        t.mem(0, Region::MapValue(0), 0, 8, true);
        assert!(!t.end_run());
        t.map_op(0, MapOp::Missed);
        t.map_op(0, MapOp::Found { slot: 0 });
        t.mem(0, Region::MapValue(0), 0, 8, false);
        assert!(!t.end_run());
    }

    #[test]
    fn a_random_delete_makes_every_later_access_to_that_map_nondeterministic() {
        let mut t = tracker(1);
        t.map_op(0, MapOp::Found { slot: 1 });
        assert!(!t.end_run());
        t.helper(0, GET_PRANDOM_U32);
        t.map_op(0, MapOp::Membership);
        assert!(t.end_run());
        // Element 1 was never written by a random run, but the random
        // delete may have removed it on the other backend.
        t.map_op(0, MapOp::Found { slot: 1 });
        assert!(t.end_run());
    }

    #[test]
    fn a_run_is_judged_by_earlier_runs_not_by_its_own_writes() {
        let mut t = tracker(1);
        // Reads its own freshly written element in the same run.
        t.map_op(0, MapOp::Wrote { slot: 2, inserted: true });
        t.map_op(0, MapOp::Found { slot: 2 });
        assert!(!t.end_run());
        t.reset();
        t.helper(0, GET_PRANDOM_U32);
        t.mem(0, Region::MapValue(0), 16, 8, true);
        assert!(t.end_run());
        t.reset();
        // After a reset nothing is marked any more.
        t.mem(0, Region::MapValue(0), 16, 8, false);
        assert!(!t.end_run());
    }
}
