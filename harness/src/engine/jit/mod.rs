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

/// Compiles every program; the error says why the interpreter must run them.
pub(crate) fn compile(programs: &[Prepared], allow_callx: bool) -> Result<Code, String> {
    let t = translate::translate(programs, allow_callx)?;
    Code::finalize(t.module, &t.ids, t.entries)
}
