//! The engine's JIT: BPF compiled to host machine code with Cranelift,
//! with the interpreter's semantics and the same sandbox.
//!
//! - `layout`: blocks and budget segments of a BPF function;
//! - `translate`: BPF to Cranelift IR (one native function per BPF
//!   function; calls get real frames through the runtime);
//! - `runtime`: the context compiled code sees, the slow paths into the
//!   interpreter's checked code, the tail-call dispatcher; all `unsafe`.
//!
//! Memory safety is the interpreter's: registers hold the same tagged
//! engine addresses, packet, stack and (where the check reduces to a mask)
//! map-value accesses are checked inline against exactly the ranges
//! `Exec::slice` uses, 4-byte ctx field reads are answered from the
//! context, and every other access (other map values, ringbuf records,
//! test memory) goes through `Exec::load` / `Exec::store` themselves.
//! `bpf_map_lookup_elem` on an `ARRAY` or `PERCPU_ARRAY` is address
//! arithmetic, other lookups a direct call of the helper; atomics on stack
//! and map values run in place. Every inline check that fails hands the
//! whole instruction to the interpreter's code, so faults carry the
//! interpreter's instruction index and kind, and the instruction count is
//! the interpreter's (charged per straight-line segment, see `layout`).
//!
//! What the JIT does not do: tracing (`run_xdp_traced` always interprets),
//! and `bpf_loop` callbacks run in the interpreter (inside the helper).

mod layout;
pub(crate) mod runtime;
mod translate;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use super::Prepared;
pub(crate) use runtime::{run, Code, Session};

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
/// are not compiled; they run in the interpreter, which needs no compile
/// step. Cranelift's time and memory grow faster than linearly with program
/// size. Measured with `hostile_tests::measure_jit_compile_time` (10-insn
/// blocks of ALU work, stack stores/loads and forward branches; release
/// build, 2 shared cores at load ~5, 2026-12-06):
///
/// | insns  | compile | RSS     |
/// |-------:|--------:|--------:|
/// |  2,504 |  0.62 s |  33 MiB |
/// |  5,004 |  1.52 s |  62 MiB |
/// | 10,004 |  5.40 s | 119 MiB |
/// | 20,004 | 20.40 s | 203 MiB |
///
/// (the issue measured 80 s and 1 GB at 50,000). Time roughly quadruples
/// per doubling, so 10,000 bounds a compile to a few seconds; the largest
/// corpus program has under 300 instructions. The bound is on size
/// because size is known before compiling and compile time follows it; a
/// wall-clock limit would need a second thread (a Cranelift compile cannot
/// be interrupted) and would make the chosen executor depend on machine
/// load, so the same program could run differently on two machines.
pub const MAX_JIT_INSNS: usize = 10_000;

/// Compiled program sets kept for the life of the process, so that every
/// engine built from the same programs (replay's per-thread engines,
/// qualify's and diff's runs, the bench's rows) shares one compile. Bounded
/// by the instructions they hold together; the oldest go first.
const CACHE_MAX_INSNS: usize = 4 * MAX_JIT_INSNS;

struct CacheEntry {
    allow_callx: bool,
    programs: Vec<Vec<xdpqual_isa::Insn>>,
    code: Arc<Code>,
}

static CACHE: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());

/// [`compile_bounded`], through the process-wide cache: the same prepared
/// instructions (and `allow_callx`) give the same machine code, which holds
/// no per-engine state (everything a run touches is in its `JitCtx`).
/// Failures are not cached.
pub(crate) fn compile_cached(
    programs: &[Prepared],
    allow_callx: bool,
    max_insns: usize,
) -> Result<Arc<Code>, String> {
    let total: usize = programs.iter().map(|p| p.insns.len()).sum();
    if total > max_insns {
        return compile_bounded(programs, allow_callx, max_insns).map(Arc::new);
    }
    // A panic while the lock was held left at worst a missing entry.
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let hit = cache.iter().position(|e| {
        e.allow_callx == allow_callx
            && e.programs.len() == programs.len()
            && e.programs.iter().zip(programs).all(|(a, b)| a == &b.insns)
    });
    if let Some(i) = hit {
        return Ok(cache[i].code.clone());
    }
    // Compiled under the lock, so two threads asking for the same programs
    // at once compile them once.
    let code = Arc::new(compile_bounded(programs, allow_callx, max_insns)?);
    cache.push(CacheEntry {
        allow_callx,
        programs: programs.iter().map(|p| p.insns.clone()).collect(),
        code: code.clone(),
    });
    let mut held: usize =
        cache.iter().map(|e| e.programs.iter().map(Vec::len).sum::<usize>()).sum();
    while held > CACHE_MAX_INSNS && cache.len() > 1 {
        let gone = cache.remove(0);
        held -= gone.programs.iter().map(Vec::len).sum::<usize>();
    }
    Ok(code)
}

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
