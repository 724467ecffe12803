//! The engine's JIT: BPF compiled to host machine code with Cranelift,
//! with the interpreter's semantics and the same sandbox.
//!
//! - [`layout`]: blocks and budget segments of a BPF function;
//! - [`translate`]: BPF to Cranelift IR (one native function per BPF
//!   function; calls get real frames through the runtime);
//! - [`runtime`]: the context compiled code sees, the slow paths into the
//!   interpreter's checked code, the tail-call dispatcher; all `unsafe`.
//!
//! Memory safety is the interpreter's: registers hold the same tagged
//! engine addresses, packet and stack accesses are checked inline against
//! exactly the ranges `Exec::slice` uses, and every other access (map
//! values, ringbuf records, ctx, test memory) goes through `Exec::load` /
//! `Exec::store` themselves. Faults carry the interpreter's instruction
//! index, and the instruction count is the interpreter's (charged per
//! straight-line segment, see [`layout`]).
//!
//! What the JIT does not do: tracing (`run_xdp_traced` always interprets),
//! and `bpf_loop` callbacks run in the interpreter (inside the helper).

mod layout;
pub(crate) mod runtime;
mod translate;

use super::Prepared;
pub(crate) use runtime::{run, Code};

/// Which executor runs an engine's programs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecMode {
    /// The interpreter, as configured.
    Interpreter,
    /// Compiled code.
    Jit,
    /// The JIT was asked for but could not compile the programs; the
    /// interpreter runs them.
    Fallback { reason: String },
}

impl std::fmt::Display for ExecMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecMode::Interpreter => f.write_str("interpreter"),
            ExecMode::Jit => f.write_str("jit"),
            ExecMode::Fallback { reason } => write!(f, "interpreter (JIT fallback: {reason})"),
        }
    }
}

/// Programs (all of an engine's together) with more instructions than this
/// are not compiled: Cranelift's time and memory grow faster than linearly
/// with function size (a 50,000-instruction program took 80 s and 1 GB),
/// while the interpreter needs no compile step at all. The bound is on size
/// because size is known before compiling and compile time follows it; a
/// wall-clock limit would need a second thread and would make the executor
/// depend on machine load. MEASURED_BOUND_NOTE below records the measurement.
pub const MAX_JIT_INSNS: usize = 20_000;

/// Compiles every program, unless they are over `max_insns` together; the
/// error says why the interpreter must run them.
pub(crate) fn compile_bounded(
    programs: &[Prepared],
    allow_callx: bool,
    max_insns: usize,
) -> Result<Code, String> {
    let total: usize = programs.iter().map(|p| p.insns.len()).sum();
    if total > max_insns {
        return Err(format!(
            "JIT skipped, {total} instructions over the {max_insns}-instruction compile bound"
        ));
    }
    compile(programs, allow_callx)
}

/// Compiles every program; the error says why the interpreter must run them.
pub(crate) fn compile(programs: &[Prepared], allow_callx: bool) -> Result<Code, String> {
    let t = translate::translate(programs, allow_callx)?;
    Code::finalize(t.module, &t.ids, t.entries)
}
