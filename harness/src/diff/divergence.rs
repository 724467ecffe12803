//! Where the engine's path went, for a packet the backends disagree on.
//!
//! We cannot see the kernel's path (test-run reports only the result), so
//! this cannot say where the two *diverged*. What it can say honestly is
//! which conditional branches the engine took on the way to its result:
//! the last of them are usually where a wrong comparison or a wrong loaded
//! value shows. The output is labelled a hint for that reason.

use crate::backends::{engine::run_packet, PacketSource};
use crate::engine::{Engine, Recorder};
use crate::isa::{opcode as op, Insn};
use crate::program::Object;

/// How many branches the hint lists (the last ones executed).
pub const HINT_BRANCHES: usize = 10;
/// Steps recorded for the hint; a longer run lists the branches up to here.
const RECORD_LIMIT: usize = 200_000;

/// One conditional branch the engine executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchStep {
    /// Index of the program in the object (tail calls switch programs).
    pub prog: usize,
    pub pc: usize,
    pub taken: bool,
    /// `file:line: text` from BTF line info, when the object has it.
    pub source: Option<String>,
}

fn is_conditional(insn: Insn) -> bool {
    let class = insn.code & 0x07;
    let opc = insn.code & 0xf0;
    (class == op::JMP || class == op::JMP32) && !matches!(opc, op::JA | op::CALL | op::EXIT)
}

/// Re-runs `src` on `engine` with a recorder and returns the conditional
/// branches it took, in order. The engine's maps are restored afterwards,
/// so the re-run leaves no trace in later packets or the final map diff.
pub fn engine_branches(engine: &mut Engine, obj: &Object, src: &PacketSource) -> Vec<BranchStep> {
    let saved = engine.maps().clone();
    let mut rec = Recorder::new(RECORD_LIMIT);
    run_packet(engine, src, &mut rec);
    *engine.maps_mut() = saved;
    let steps = &rec.steps;
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let insn = Insn::from_le_bytes(s.insn);
        if !is_conditional(insn) {
            continue;
        }
        // The next recorded step says where execution went; a branch that
        // ended the recording (or the run) has no known direction.
        let Some(next) = steps.get(i + 1) else { break };
        let fallthrough = next.prog == s.prog && next.pc == s.pc + 1;
        let source = obj.programs.get(s.prog).and_then(|p| p.lines.lookup(s.pc)).map(|l| {
            let file = l.file.rsplit('/').next().unwrap_or(&l.file);
            format!("{file}:{}: {}", l.line, l.text.trim())
        });
        out.push(BranchStep { prog: s.prog, pc: s.pc, taken: !fallthrough, source });
    }
    out
}

/// The hint text: the last [`HINT_BRANCHES`] branches, oldest first.
pub fn render_hint(obj: &Object, branches: &[BranchStep]) -> String {
    if branches.is_empty() {
        return "hint: the engine took no conditional branch on this packet\n".to_string();
    }
    let skip = branches.len().saturating_sub(HINT_BRANCHES);
    let mut s = format!(
        "hint (engine path only; the kernel's path is not observable): last {} of {} conditional branches the engine took\n",
        branches.len() - skip,
        branches.len()
    );
    for b in &branches[skip..] {
        let prog = obj.programs.get(b.prog).map_or("?", |p| p.name.as_str());
        s.push_str(&format!(
            "  {prog}+{:<4} {:<9} {}\n",
            b.pc,
            if b.taken { "taken" } else { "not taken" },
            b.source.as_deref().unwrap_or("(no line info)")
        ));
    }
    s
}
