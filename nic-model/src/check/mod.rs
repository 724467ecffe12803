//! The offload constraint checker: `check(program, profile) -> Report`.
//!
//! Static passes look at opcodes, maps, the call graph and sizes; the
//! path-sensitive rules (the nfp verifier hook `nfp_verify_insn` sees the
//! pre-instruction state on every path) run as an observer of the abstract
//! interpretation in [`crate::absint`].

mod maps;
mod opcodes;
mod paths;
mod size;

use crate::absint::{self, Limits};
use crate::disasm::disasm;
use crate::profile::{Family, Profile};
use crate::program::ProgramSpec;
use crate::report::{Finding, Report, Severity, Stats};
use crate::rules::RuleId;
use std::collections::BTreeMap;

/// Environment the program would be loaded into.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Interface MTU; NFP-M7 compares `min(max_pkt_offset, mtu)` with the split boundary.
    pub mtu: u32,
    pub limits: Limits,
}

impl Default for CheckOptions {
    fn default() -> Self {
        // 1500: the Ethernet default MTU.
        CheckOptions { mtu: 1500, limits: Limits::default() }
    }
}

/// Check `program` against `profile` with default options.
pub fn check(program: &ProgramSpec, profile: &Profile) -> Report {
    check_with(program, profile, &CheckOptions::default())
}

pub fn check_with(program: &ProgramSpec, profile: &Profile, opts: &CheckOptions) -> Report {
    let mut sink = Sink::new(program);
    opcodes::check(program, profile, &mut sink);
    maps::check(program, profile, &mut sink);

    let mut obs = paths::PathChecks::new(program, profile, &mut sink);
    let outcome = absint::analyze(program, opts.limits, &mut obs);
    obs.finish();

    if outcome.budget_exhausted {
        sink.add(
            RuleId::Budget,
            Severity::CannotProve,
            "cannot prove: analysis budget exhausted".into(),
            format!(
                "explored {} instruction visits; results cover only the paths explored",
                opts.limits.budget
            ),
            None,
        );
    }
    let mut stats = Stats {
        insns: program.insns.len(),
        reachable_insns: outcome.visited.iter().filter(|v| **v).count(),
        joined_instructions: outcome.instructions_joined,
        ..Stats::default()
    };
    size::check(program, profile, opts, &outcome, &mut sink, &mut stats);
    Report::new(
        program.name.clone(),
        profile.profile.name.clone(),
        profile.profile.assumption,
        sink.into_findings(),
        stats,
    )
}

/// Collects findings, filling in source line and disassembly; keeps one
/// finding per (rule, insn, message), the most certain one.
pub(crate) struct Sink<'p> {
    prog: &'p ProgramSpec,
    found: BTreeMap<(RuleId, Option<usize>, String), Finding>,
}

impl<'p> Sink<'p> {
    fn new(prog: &'p ProgramSpec) -> Self {
        Sink { prog, found: BTreeMap::new() }
    }

    pub(crate) fn add(
        &mut self,
        rule: RuleId,
        severity: Severity,
        message: String,
        detail: String,
        insn: Option<usize>,
    ) {
        let (source_line, dis) = match insn {
            Some(pc) => (
                self.prog.line_of(pc).map(str::to_string),
                self.prog.insns.get(pc).map(|i| disasm(i, self.prog.insns.get(pc + 1))),
            ),
            None => (None, None),
        };
        let f = Finding {
            rule,
            severity,
            message: message.clone(),
            detail,
            insn,
            source_line,
            disasm: dis,
        };
        match self.found.entry((rule, insn, message)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(f);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if f.severity < o.get().severity {
                    o.insert(f);
                }
            }
        }
    }

    fn into_findings(self) -> Vec<Finding> {
        self.found.into_values().collect()
    }
}

pub(crate) fn is_nfp(p: &Profile) -> bool {
    p.profile.family == Family::Nfp
}

/// Subprogram starts: 0 and every BPF-to-BPF call target.
pub(crate) fn subprog_starts(prog: &ProgramSpec) -> Vec<usize> {
    use crate::opcode::*;
    let mut v = vec![0];
    for (pc, i) in prog.insns.iter().enumerate() {
        if class(i.code) == JMP && op(i.code) == CALL && !is_x(i.code) && i.src == PSEUDO_CALL {
            let t = pc as i64 + 1 + i.imm as i64;
            if t >= 0 && (t as usize) < prog.insns.len() {
                v.push(t as usize);
            }
        }
    }
    v.sort();
    v.dedup();
    v
}
