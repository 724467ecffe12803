//! "Did the backends agree": the one definition of the agreement counters
//! ([`Tally`]), of how two packet results are compared ([`packet_difference`])
//! and of map comparison ([`map_difference`], [`compare_maps`]). `diff`,
//! `matrix`, the `live:` backend and `qualify` (through the diff) all count
//! and compare with these, so a packet agrees under the same rules wherever
//! it is checked.
//!
//! This module sits below the backends and everything that runs them: it
//! imports only the instruction set, the program and verdict types and the
//! engine. The terms backends report in ([`PacketSource`], [`PacketResult`],
//! [`MapContents`]) are defined here for that reason and re-exported from
//! `backends`.

pub mod carried;
pub mod hexdiff;

use serde::Serialize;

use crate::engine::helpers::ids::NONDETERMINISTIC;
use crate::engine::{Event, RedirectTarget};
use crate::isa::opcode::{CALL, CALL_HELPER, JMP, PSEUDO_BTF_ID};
use crate::isa::Insn;
use crate::program::MapType;
use crate::verdict::Verdict;

/// One input packet with the context every backend needs.
#[derive(Clone, Debug)]
pub struct PacketSource {
    pub data: Vec<u8>,
    pub ts_ns: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
}

/// What one backend did with one packet.
#[derive(Clone, Debug, Serialize)]
pub struct PacketResult {
    pub verdict: Verdict,
    /// The frame after the program (metadata, data, fragments).
    #[serde(with = "crate::util::hex_bytes")]
    pub output: Vec<u8>,
    pub events: Vec<Event>,
    pub redirect: Option<RedirectTarget>,
    /// Instructions executed, where the backend can count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insns: Option<u64>,
    /// Run time the backend measured, where it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
}

/// The per-packet agreement counters every comparison keeps. Reports embed
/// it with `#[serde(flatten)]`, so the JSON fields keep their names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub agreed: u64,
    /// Packets the sides disagree on that used a time or random-number
    /// helper in a program that calls one, or read what such a run left in
    /// a map (`carried`): reported, not mismatches.
    pub nondeterministic: u64,
    pub mismatch_count: u64,
}

/// How one compared packet was classed by [`Tally::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Agreed,
    Nondeterministic,
    Mismatch,
}

impl Tally {
    /// Counts one compared packet: agreed when there is no `problem`;
    /// nondeterministic when the program calls a nondeterministic helper
    /// (`nondet_prog`) and this packet used one (`used_nondet`); a mismatch
    /// otherwise.
    pub fn record<D>(
        &mut self,
        problem: &Option<D>,
        nondet_prog: bool,
        used_nondet: bool,
    ) -> Class {
        let class = match problem {
            None => Class::Agreed,
            Some(_) if nondet_prog && used_nondet => Class::Nondeterministic,
            Some(_) => Class::Mismatch,
        };
        match class {
            Class::Agreed => self.agreed += 1,
            Class::Nondeterministic => self.nondeterministic += 1,
            Class::Mismatch => self.mismatch_count += 1,
        }
        class
    }

    /// No packet and no map mismatched.
    pub fn agrees(&self, map_mismatches: &[String]) -> bool {
        self.mismatch_count == 0 && map_mismatches.is_empty()
    }
}

/// Whether the program calls a helper whose result the engine cannot know
/// (time, random numbers) or loads the address of a typed `__ksym` kernel
/// variable (`lddw` with `BPF_PSEUDO_BTF_ID`), whose contents are the
/// kernel's live data: then disagreements on packets that used one are
/// `nondeterministic`, not mismatches.
pub fn calls_nondeterministic_helper(insns: &[Insn]) -> bool {
    insns.iter().any(|i| {
        i.code == JMP | CALL && i.src == CALL_HELPER && NONDETERMINISTIC.contains(&i.imm)
            || i.is_lddw() && i.src == PSEUDO_BTF_ID
    })
}

/// Compares two results; `None` when they agree. NOT_RUN agrees with
/// NOT_RUN whatever the wording (each backend words its reason).
pub fn packet_difference(
    a: &PacketResult,
    b: &PacketResult,
    compare_redirect: bool,
) -> Option<String> {
    let same_verdict = match (&a.verdict, &b.verdict) {
        (Verdict::NotRun { .. }, Verdict::NotRun { .. }) => true,
        (x, y) => x == y,
    };
    if !same_verdict {
        return Some(format!("verdict {} vs {}", a.verdict, b.verdict));
    }
    if matches!(a.verdict, Verdict::NotRun { .. }) {
        return None;
    }
    if compare_redirect && a.redirect != b.redirect {
        return Some(format!("redirect target {:?} vs {:?}", a.redirect, b.redirect));
    }
    if a.output != b.output {
        return Some("output bytes differ".into());
    }
    None
}

/// Map types whose contents are compared: ring buffers and perf arrays have
/// no key/value contents to read back, XSKMAP refuses lookups from user
/// space and PROG_ARRAY holds program references, not data.
pub fn map_compared(t: MapType) -> bool {
    !matches!(t, MapType::Ringbuf | MapType::PerfEventArray | MapType::Xskmap | MapType::ProgArray)
}

/// One map's entries, each a key and its values (one per CPU for per-CPU
/// maps, else one), in any order. `T` is bytes or their hex text.
pub type Entries<T> = Vec<(T, Vec<T>)>;

/// Compares one map's entries on the engine's side (`ours`) and another's
/// (`theirs`, named `side` in the message: "the kernel", ...); `None` when
/// they hold the same entries.
pub fn map_difference<T: Ord>(
    name: &str,
    side: &str,
    mut ours: Entries<T>,
    mut theirs: Entries<T>,
) -> Option<String> {
    ours.sort_unstable();
    theirs.sort_unstable();
    if ours == theirs {
        return None;
    }
    // One merge of the two sorted lists (entries in both are walked past
    // together), so a big map with a few differences costs its size, not
    // its size squared.
    let (mut only_ours, mut only_theirs) = (0, 0);
    let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Equal => {
                    a.next();
                    b.next();
                }
                std::cmp::Ordering::Less => {
                    only_ours += 1;
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    only_theirs += 1;
                    b.next();
                }
            },
            (Some(_), None) => {
                only_ours += 1;
                a.next();
            }
            (None, Some(_)) => {
                only_theirs += 1;
                b.next();
            }
            (None, None) => break,
        }
    }
    Some(format!(
        "map {name}: {} entries in the engine, {} in {side}; {only_ours} engine entries differ or are missing in {side}, {only_theirs} the other way",
        ours.len(),
        theirs.len()
    ))
}

/// A map as a backend reports it after a run.
#[derive(Clone, Debug)]
pub struct MapContents {
    pub name: String,
    /// A per-CPU map (one value per CPU, whose count differs by backend).
    pub percpu: bool,
    /// The entries, or why they could not be read.
    pub entries: Result<Entries<Vec<u8>>, String>,
}

/// What a comparison does with a map the other side did not report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreported {
    /// Skip it: the backend reports only the maps it could read (the host
    /// and live backends report an unreadable map as an `Err` entry).
    Skip,
    /// Count it as a difference: the other side promised every map (a
    /// matrix guest's report).
    Difference,
}

/// Compares the engine's maps with another backend's, map by map, by name.
/// `side` names the other side in the messages ("the kernel").
pub fn compare_maps(
    engine: &crate::engine::Engine,
    side: &str,
    theirs: &[MapContents],
) -> Vec<String> {
    compare_map_set(engine.maps(), side, theirs, Unreported::Skip)
}

/// Compares maps on the engine's side (`ours`) with another side's, map by
/// map, by name, for the map types whose contents are comparable
/// ([`map_compared`]). The one map comparison of diff, live and the matrix.
pub fn compare_map_set(
    ours: &crate::engine::MapSet,
    side: &str,
    theirs: &[MapContents],
    unreported: Unreported,
) -> Vec<String> {
    let mut out = Vec::new();
    for m in &ours.maps {
        if !map_compared(m.def.map_type) {
            continue;
        }
        let Some(t) = theirs.iter().find(|t| t.name == m.def.name) else {
            if unreported == Unreported::Difference {
                out.push(format!("map {}: not in {side}'s report", m.def.name));
            }
            continue;
        };
        // Both sides in the sparse form (MapState::sparse_entries): a side
        // that listed an array's slots of zeros loses them here, so the
        // comparison does not depend on how a backend dumps.
        let implicit = m.def.map_type.has_implicit_zero_slots();
        let other = match &t.entries {
            Ok(e) => e
                .iter()
                .filter(|(_, vs)| !(implicit && vs.iter().all(|v| v.iter().all(|b| *b == 0))))
                .cloned()
                .collect(),
            Err(err) => {
                out.push(format!("map {}: {err}", m.def.name));
                continue;
            }
        };
        let ours = m.sparse_entries().into_iter().map(|x| (x.key, x.values)).collect();
        out.extend(map_difference(&m.def.name, side, ours, other));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_classes_packets() {
        let mut t = Tally::default();
        assert_eq!(t.record(&None::<String>, true, true), Class::Agreed);
        assert_eq!(t.record(&Some("x"), true, true), Class::Nondeterministic);
        // A nondeterministic helper in the program is not enough: this
        // packet must have used it.
        assert_eq!(t.record(&Some("x"), true, false), Class::Mismatch);
        assert_eq!(t.record(&Some("x"), false, true), Class::Mismatch);
        assert_eq!(t, Tally { agreed: 1, nondeterministic: 1, mismatch_count: 2 });
        assert!(!t.agrees(&[]));
        assert!(Tally { agreed: 3, ..Default::default() }.agrees(&[]));
        assert!(!Tally::default().agrees(&["map m: ...".into()]));
    }

    #[test]
    fn map_difference_counts_each_side() {
        let e = |k: u8, v: u8| (vec![k], vec![vec![v]]);
        // Order does not matter.
        assert_eq!(
            map_difference("m", "the kernel", vec![e(1, 1), e(2, 2)], vec![e(2, 2), e(1, 1)]),
            None
        );
        // Key 1 differs in value, key 3 only in the engine: 2 engine entries
        // are not in the kernel, 1 kernel entry is not in the engine.
        assert_eq!(
            map_difference("m", "the kernel", vec![e(1, 1), e(2, 2), e(3, 3)], vec![e(1, 9), e(2, 2)]).as_deref(),
            Some("map m: 3 entries in the engine, 2 in the kernel; 2 engine entries differ or are missing in the kernel, 1 the other way")
        );
    }

    /// A side that lists an array's slots of zeros (an older guest agent,
    /// say) agrees with the engine's sparse form; a slot of zeros in a hash
    /// map is an element, and its absence a difference.
    #[test]
    fn zero_slots_of_arrays_are_implicit_on_either_side() {
        use crate::program::{MapDef, MapOrigin, MapType};
        let def = |name: &str, map_type| MapDef {
            name: name.into(),
            map_type,
            key_size: 4,
            value_size: 4,
            max_entries: 4,
            flags: 0,
            origin: MapOrigin::BtfMaps,
            initial_data: None,
            read_only: false,
            inner: None,
            init_slots: Vec::new(),
        };
        let mut ours =
            crate::engine::MapSet::new(&[def("a", MapType::Array), def("h", MapType::Hash)], 1)
                .unwrap();
        assert_eq!(ours.maps[0].update(&1u32.to_le_bytes(), &[9; 4], 0, None), 0);
        assert_eq!(ours.maps[1].update(&1u32.to_le_bytes(), &[0; 4], 0, None), 0);
        let slot = |i: u32, v: u8| (i.to_le_bytes().to_vec(), vec![vec![v; 4]]);
        let theirs = |hash: Vec<(Vec<u8>, Vec<Vec<u8>>)>| {
            vec![
                MapContents {
                    name: "a".into(),
                    percpu: false,
                    entries: Ok(vec![slot(0, 0), slot(1, 9), slot(2, 0), slot(3, 0)]),
                },
                MapContents { name: "h".into(), percpu: false, entries: Ok(hash) },
            ]
        };
        let diffs = compare_map_set(&ours, "k", &theirs(vec![slot(1, 0)]), Unreported::Skip);
        assert!(diffs.is_empty(), "{diffs:?}");
        let diffs = compare_map_set(&ours, "k", &theirs(vec![]), Unreported::Skip);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].starts_with("map h: 1 entries in the engine, 0 in k"), "{diffs:?}");
    }
}
