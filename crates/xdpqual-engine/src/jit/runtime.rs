//! The boundary between compiled code and the engine: the context the code
//! reads, the slow paths it calls, and the dispatcher that calls it. All of
//! the JIT's `unsafe` is in this module.
//!
//! Compiled code sees one `#[repr(C)]` [`JitCtx`]. It holds the bounds of
//! the regions the code checks inline (packet and stack: base pointer
//! plus valid offset range, exactly the ranges `Exec::slice` checks; map
//! values, through the [`FastMap`] table, where `Exec::slice`'s check is a
//! mask and two compares) and the BPF registers at call boundaries. Every other access goes through an
//! `extern "C"` slow path here, which calls the interpreter's own checked
//! code (`Exec::load`, `store`, `call_helper`, ...). After every slow path
//! the bounds are re-read from the `Exec`, so a helper that moves the packet
//! (`bpf_xdp_adjust_head`) or a call that changes the frame is seen by the
//! next inline check.

use std::ffi::c_void;
use std::mem::ManuallyDrop;

use cranelift_jit::JITModule;
use cranelift_module::FuncId;

use super::layout::nth_in_segment;
use crate::budget::Resource;
use crate::exec::{Exec, HelperMode, HelperOutcome, Stop};
use crate::fault::{Fault, FaultKind};
use crate::helpers::ids::MAP_LOOKUP_ELEM;
use crate::helpers::MAP_LOOKUP_GUARD;
use crate::maps::{Index, MapSet, MapState};
use crate::memory::{addr, FRAME_SIZE, MAX_FRAMES, STACK_SIZE, TAG_STACK};
use crate::panic_message;
use crate::trace::Tracer;
use xdpqual_isa::opcode::{CALL, JMP, X};
use xdpqual_object::MapType;

/// Status a compiled function or slow path returns.
pub(super) const ST_OK: u64 = 0;
pub(super) const ST_FAULT: u64 = 1;
/// `bpf_tail_call` succeeded: run `JitCtx::tail_target` in this frame.
pub(super) const ST_TAIL: u64 = 2;
/// The conformance runtime's "unwind" helper ended the program.
pub(super) const ST_UNWIND: u64 = 3;

/// `rt_fault` kinds.
pub(super) const FAULT_PC_OUT_OF_RANGE: u64 = 0;
pub(super) const FAULT_INVALID_INSN: u64 = 1;

/// Bytes of `struct xdp_md` whose 4-byte reads compiled code answers from
/// `JitCtx::ctx_fields`: the five fields `Exec::ctx_load` returns for any
/// XDP program (`egress_ifindex`, at 20, is devmap-only and faults there).
pub(super) const CTX_INLINE_SPAN: u64 = 20;
const _: () = assert!(
    crate::xdp::md::DATA == 0
        && crate::xdp::md::DATA_END == 4
        && crate::xdp::md::DATA_META == 8
        && crate::xdp::md::INGRESS_IFINDEX == 12
        && crate::xdp::md::RX_QUEUE_INDEX == 16
);

/// A compiled BPF function: registers in and out through `JitCtx::regs`.
type JitFn = unsafe extern "C" fn(*mut JitCtx) -> u64;

/// Slow paths, as addresses the compiled code calls indirectly. They are
/// generic over the run's tracer, so the table is filled per run.
#[repr(C)]
pub(super) struct RtTable {
    pub load: usize,
    pub store: usize,
    pub atomic: usize,
    pub helper: usize,
    pub lookup: usize,
    pub call: usize,
    pub budget: usize,
    pub fault: usize,
}

impl RtTable {
    fn of<T: Tracer>() -> RtTable {
        RtTable {
            load: rt_load::<T> as *const () as usize,
            store: rt_store::<T> as *const () as usize,
            atomic: rt_atomic::<T> as *const () as usize,
            helper: rt_helper::<T> as *const () as usize,
            lookup: rt_lookup::<T> as *const () as usize,
            call: rt_call::<T> as *const () as usize,
            budget: rt_budget::<T> as *const () as usize,
            fault: rt_fault::<T> as *const () as usize,
        }
    }
}

/// What compiled code knows of one map (`JitCtx::maps[i]` for map `i` of
/// the run's `MapSet`), for the two map fast paths. Field offsets are
/// taken with `offset_of!` by the translator; the size is a power of two so
/// the entry of map `m` is at `m << FAST_MAP_SHIFT`.
///
/// - **Array lookups** (`bpf_map_lookup_elem` on an `ARRAY` or
///   `PERCPU_ARRAY`), as address arithmetic like the kernel's
///   `array_map_gen_lookup` (kernel/bpf/arraymap.c): index below
///   `lookup_n`, the value address `slot * stride + cpu_off` in the map's
///   value region, else NULL. `lookup_n == 0` sends the lookup to the
///   helper (any other map type, the conformance runtime).
/// - **Map value loads and stores**: `[off, off + size)` is accessed in
///   place when `off + size <= len` (`wlen` for a store: 0 for a read-only
///   map) and `(off & mask) - cpu_off + size <= value_size` (unsigned, so
///   an offset before this CPU's part wraps and fails), which is
///   `Exec::slice`'s check when `mask` is the stride less one (a
///   power-of-two stride) or all ones (a map of one slot): the access lies
///   in this CPU's part of its slot (`cpu_off`, 0 but for a per-CPU map on
///   a CPU other than 0) and inside the value. Every other map has
///   `len == wlen == 0`, so all its accesses take the slow path
///   (`Exec::slice` with its division).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(super) struct FastMap {
    pub lookup_n: u64,
    pub stride: u64,
    pub cpu_off: u64,
    pub values: usize,
    pub len: u64,
    pub wlen: u64,
    pub mask: u64,
    pub value_size: u64,
}

pub(super) const FAST_MAP_SHIFT: i64 = 6;
const _: () = assert!(std::mem::size_of::<FastMap>() == 1 << FAST_MAP_SHIFT);

/// The static part of `FastMap` for `m` (what cannot change during a
/// run); `values`, `len`, `wlen` and `mask` are set by `refresh_maps`.
fn fast_map<T: Tracer>(exec: &Exec<'_, T>, m: &MapState) -> FastMap {
    let percpu = m.def.map_type.is_percpu();
    let lookup_inline = matches!(m.def.map_type, MapType::Array | MapType::PercpuArray)
        && exec.helper_mode == HelperMode::Xdp
        && !exec.big
        && m.def.key_size == 4;
    FastMap {
        // `Index::Array::present` of an ARRAY or PERCPU_ARRAY is all true
        // from creation on (`MapState::with_cap`; `delete` refuses them with
        // -EINVAL), so `find` is `index < present.len()`.
        lookup_n: match &m.index {
            Index::Array { present } if lookup_inline => present.len() as u64,
            _ => 0,
        },
        stride: m.stride as u64,
        // As `Exec::value_addr`.
        cpu_off: if percpu { (exec.cpu * m.per_cpu) as u64 } else { 0 },
        value_size: m.def.value_size as u64,
        // Set when the value store is known (`refresh_maps`).
        values: 0,
        len: 0,
        wlen: 0,
        mask: 0,
    }
}

/// Points each map's entry at its value store as it is now (a helper may
/// have grown a hash map's), or turns its inline value accesses off.
///
/// This is what keeps compiled code's map-value accesses inside the
/// allocation: it dereferences `values + off` only when `off + size <=
/// len`, and `len` is the store's length when this last ran. A store
/// changes size or moves only in a helper (a keyed map's update grows it),
/// and every helper's slow path (`rt_helper`; `rt_lookup` only looks up)
/// ends with `refresh`, so the pointer and length always describe live
/// memory when compiled code reads them.
fn refresh_maps<T: Tracer>(ctx: &mut JitCtx, exec: &mut Exec<'_, T>) {
    let cpu = exec.cpu;
    let big = exec.big;
    for (e, m) in ctx.map_tab.iter_mut().zip(exec.maps.maps.iter_mut()) {
        let stride = m.stride;
        let len = m.values.len();
        // `Exec::slice`: slot `o / stride`, part `(o % stride) / per_cpu`
        // (must be the run's CPU), byte `o % per_cpu`. The slot division is
        // a mask; the part test and the byte's are one compare after
        // subtracting the run's part (`FastMap::cpu_off`). The part's
        // offset must be inside the stride: a CPU past the map's parts
        // gets the slow path, which faults.
        let parts_ok = if m.def.map_type.is_percpu() {
            (cpu + 1) * m.per_cpu <= stride
        } else {
            m.per_cpu == stride
        };
        let mask = if len == stride {
            u64::MAX
        } else if stride.is_power_of_two() {
            stride as u64 - 1
        } else {
            0
        };
        if stride == 0 || !parts_ok || mask == 0 || big {
            e.len = 0;
            e.wlen = 0;
            continue;
        }
        e.values = m.values.as_mut_ptr() as usize;
        e.len = len as u64;
        e.wlen = if m.read_only { 0 } else { len as u64 };
        e.mask = mask;
    }
}

/// What compiled code reads and writes. Field offsets are taken with
/// `offset_of!` by the translator.
#[repr(C)]
pub(super) struct JitCtx {
    pub pkt_base: *mut u8,
    /// Valid packet offsets `[pkt_lo, pkt_hi)`: data_meta..data_end.
    pub pkt_lo: u64,
    pub pkt_hi: u64,
    pub stack_base: *mut u8,
    /// Valid stack offsets `[stack_low, stack_hi)`.
    pub stack_low: u64,
    pub stack_hi: u64,
    /// Lowest stack offset an inline store wrote (`Exec::stack_dirty` for
    /// compiled code; slow paths lower the `Exec`'s own).
    pub stack_dirty: u64,
    pub executed: u64,
    /// Set by `rt_load` when it faults (its return value is the loaded value).
    /// Between `executed` and `budget` so that filling the two from the
    /// `Exec` (written just before the run) is two 8-byte loads, not one
    /// 16-byte load that stalls on the two 8-byte stores.
    pub status: u64,
    pub budget: u64,
    /// Frame index of the running function.
    pub depth: u64,
    pub tail_target: u64,
    pub regs: [u64; 11],
    /// The run's ctx address and the bytes of `struct xdp_md` compiled code
    /// reads inline from `ctx_fields`: 20 (data .. rx_queue_index), or 0
    /// when the run has no XDP buffer, so every ctx load takes the slow
    /// path (`Exec::ctx_load`, which faults as the interpreter does).
    pub ctx_addr: u64,
    pub ctx_span: u64,
    /// `Exec::ctx_load`'s value of each 4-byte field at offset `4 * i`:
    /// data, data_end, data_meta (engine addresses), ingress_ifindex,
    /// rx_queue_index. Kept current by `refresh`, like the bounds, since
    /// only a slow path (`bpf_xdp_adjust_*`) moves the frame.
    pub ctx_fields: [u64; 5],
    /// `map_tab`'s entries, `nmaps` of them (0 when the run's tracer
    /// observes: compiled code then sends every map access to the slow
    /// paths, which tell the tracer).
    pub maps: *const FastMap,
    pub nmaps: u64,
    /// Helper work units used in this run and the run's limit: the
    /// `Resource::HelperWork` part of `Exec::res`, kept here while
    /// compiled code runs so an inline array lookup charges its key as
    /// the helper does (`Budget::work(4)`: one unit), and copied to and
    /// from `Exec::res` around every helper call.
    pub work_used: u64,
    pub work_limit: u64,
    pub rt: RtTable,
    /// `*mut Host<T>` of the running `run`.
    host: *mut c_void,
    /// The entries `maps` points to; built on a session's first run.
    map_tab: Vec<FastMap>,
}

struct Host<'a, 'e, T: Tracer> {
    exec: &'a mut Exec<'e, T>,
    code: &'a Code,
    fault: Option<Fault>,
}

/// Finalized machine code for every BPF function of a program set.
pub(crate) struct Code {
    module: ManuallyDrop<JITModule>,
    funcs: Vec<JitFn>,
    /// Function index of each program's entry (tail-call targets).
    entries: Vec<usize>,
}

impl Code {
    /// Takes a module whose functions `ids` are all defined.
    pub(super) fn finalize(
        mut module: JITModule,
        ids: &[FuncId],
        entries: Vec<usize>,
    ) -> Result<Code, String> {
        module.finalize_definitions().map_err(|e| format!("finalizing machine code: {e}"))?;
        let funcs = ids
            .iter()
            .map(|&id| {
                let p = module.get_finalized_function(id);
                // SAFETY: `p` is the entry of a function the translator built
                // with the signature `fn(*mut JitCtx) -> i64` in the host's
                // default (C) calling convention; it stays mapped until
                // `module` is freed in `Drop`, and `Code` owns both.
                unsafe { std::mem::transmute::<*const u8, JitFn>(p) }
            })
            .collect();
        Ok(Code { module: ManuallyDrop::new(module), funcs, entries })
    }
}

// SAFETY: `Code` is `Send` (the module is), and a shared `&Code` reaches
// only `funcs` and `entries` (plain data): the module, the one field that is
// not `Sync` (a `RefCell` inside it), is touched only in `finalize`, on the
// value it owns, and in `Drop`, through `&mut`. The compiled functions keep
// all run state in the `JitCtx` each caller passes, so threads may call
// them at once. This lets the process-wide cache (`jit::compile_cached`)
// hand one compile to engines on several threads.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: the function pointers into this memory are in `self.funcs`
        // only, which is dropped with it; no run can be in progress since a
        // run borrows `self`.
        unsafe { ManuallyDrop::take(&mut self.module).free_memory() };
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({} functions)", self.funcs.len())
    }
}

/// Re-reads the inline-checked bounds from the run's state, after a slow
/// path that may have changed them (a helper, a call).
fn refresh<T: Tracer>(ctx: &mut JitCtx, exec: &mut Exec<'_, T>) {
    refresh_frame(ctx, exec);
    if ctx.nmaps != 0 {
        refresh_maps(ctx, exec);
    }
}

/// The packet, ctx and stack part of `refresh`.
fn refresh_frame<T: Tracer>(ctx: &mut JitCtx, exec: &mut Exec<'_, T>) {
    match exec.buff.as_deref_mut() {
        Some(b) => {
            // Clamped to the page so an inconsistent buffer can never let
            // compiled code reach past the allocation (the interpreter would
            // panic on the same access instead).
            ctx.pkt_hi = (b.data_end as u64).min(b.page.len() as u64);
            ctx.pkt_lo = b.data_meta as u64;
            ctx.pkt_base = b.page.as_mut_ptr();
            // ingress_ifindex and rx_queue_index (fields 3 and 4) do not
            // change during a run: `go` sets them once.
            ctx.ctx_fields[0] = b.data_addr();
            ctx.ctx_fields[1] = b.data_end_addr();
            ctx.ctx_fields[2] = b.data_meta_addr();
            ctx.ctx_span = CTX_INLINE_SPAN;
        }
        None => {
            ctx.pkt_base = std::ptr::null_mut();
            ctx.pkt_lo = 0;
            ctx.pkt_hi = 0;
            ctx.ctx_span = 0;
        }
    }
    ctx.ctx_addr = exec.ctx_addr;
    ctx.stack_base = exec.stack.as_mut_ptr();
    ctx.stack_hi = (exec.stack.len() as u64).min(STACK_SIZE as u64);
    ctx.stack_low = exec.stack_low as u64;
}

/// Runs program `entry` as the interpreter's `run_frame(entry, 0, regs, 0)`,
/// except that only r0 comes back in `regs` (the one register a caller
/// reads after a run; copying all eleven back costs a store-forwarding
/// stall on every run, the compiled code having just written them).
pub(crate) fn run<T: Tracer>(
    code: &Code,
    exec: &mut Exec<'_, T>,
    entry: usize,
    regs: &mut [u64; 11],
    session: Option<&mut Session<T>>,
) -> Result<(), Stop> {
    match session {
        Some(s) => {
            s.forget_maps();
            s.run(code, exec, entry, regs)
        }
        None => Session::<T>::new().run(code, exec, entry, regs),
    }
}

/// A context kept from run to run, for a caller that runs many packets
/// with one `Exec` ([`crate::Engine::run_batch`]): the slow-path table and
/// the layout are written once, and each run sets only what a run changes.
/// Typed by the tracer because the table's slow paths cast the context's
/// host back to `Host<T>`: a session can only run an `Exec<T>`.
pub(crate) struct Session<T: Tracer> {
    ctx: JitCtx,
    /// The `MapSet` (address, map count) `ctx.map_tab` was built for: a
    /// session normally runs one `Exec`'s maps, whose types and sizes do
    /// not change during a batch; another set rebuilds it.
    maps_for: Option<(usize, usize)>,
    _tracer: std::marker::PhantomData<fn(&mut T)>,
}

impl<T: Tracer> Default for Session<T> {
    fn default() -> Session<T> {
        Session::new()
    }
}

// SAFETY: a session's raw pointers (the `JitCtx` bounds, its map table's
// value pointers, the host) are meaningful only during a run: `go` writes
// the frame and stack bounds from the `Exec` before compiled code starts,
// rebuilds the map table whenever the session has not just run on the same
// maps (and `forget_maps` forces that for a session kept across calls),
// and nulls the host when the run ends. Between runs nothing reads them,
// so moving a session to another thread (with the engine that keeps it:
// parallel replay builds engines and hands them to workers) cannot make
// one thread use another's memory.
unsafe impl<T: Tracer> Send for Session<T> {}

impl<T: Tracer> Session<T> {
    pub(crate) fn new() -> Session<T> {
        Session {
            _tracer: std::marker::PhantomData,
            ctx: JitCtx {
                pkt_base: std::ptr::null_mut(),
                pkt_lo: 0,
                pkt_hi: 0,
                stack_base: std::ptr::null_mut(),
                stack_low: 0,
                stack_hi: 0,
                stack_dirty: 0,
                executed: 0,
                status: ST_OK,
                budget: 0,
                depth: 0,
                tail_target: 0,
                regs: [0; 11],
                ctx_addr: 0,
                ctx_span: 0,
                ctx_fields: [0; 5],
                maps: std::ptr::null(),
                nmaps: 0,
                work_used: 0,
                work_limit: 0,
                rt: RtTable::of::<T>(),
                host: std::ptr::null_mut(),
                map_tab: Vec::new(),
            },
            maps_for: None,
        }
    }

    /// Makes the next run build the map table anew, as a new session's
    /// first run does. A session kept across calls that may change the
    /// maps in between (user-space updates, a reset: a value store may
    /// move) calls this before each run, so compiled code never sees a
    /// table that describes memory that has gone.
    pub(crate) fn forget_maps(&mut self) {
        self.maps_for = None;
    }

    /// One run, as [`run`].
    pub(crate) fn run(
        &mut self,
        code: &Code,
        exec: &mut Exec<'_, T>,
        entry: usize,
        regs: &mut [u64; 11],
    ) -> Result<(), Stop> {
        self.ctx.regs = *regs;
        let queue = (exec.ingress_ifindex, exec.rx_queue_index);
        self.go(code, exec, entry, queue, regs)
    }

    /// A run from the entry state of an XDP program (r1 the context, r10
    /// the top of the stack, every other register 0) for a packet that
    /// arrived on `queue` (ingress ifindex, rx queue; the caller's `Exec`
    /// says the same); returns r0, also when the conformance runtime's
    /// unwind ended the run. The registers and the queue come in as values
    /// rather than from memory the caller has just written: `perf annotate`
    /// showed store-forwarding stalls there taking most of a batch's
    /// per-packet floor.
    pub(crate) fn run_entry(
        &mut self,
        code: &Code,
        exec: &mut Exec<'_, T>,
        entry: usize,
        r1: u64,
        queue: (u32, u32),
    ) -> Result<u64, Stop> {
        let r10 = addr(TAG_STACK, STACK_SIZE as u64);
        self.ctx.regs = [0, r1, 0, 0, 0, 0, 0, 0, 0, 0, r10];
        let mut r0 = [0u64; 11];
        match self.go(code, exec, entry, queue, &mut r0) {
            // An unwind ends the program with its r0, as an exit does.
            Ok(()) | Err(Stop::Unwind) => Ok(r0[0]),
            Err(stop) => Err(stop),
        }
    }

    /// Runs with `ctx.regs` already set; r0 comes back in `regs[0]`.
    fn go(
        &mut self,
        code: &Code,
        exec: &mut Exec<'_, T>,
        entry: usize,
        (ingress_ifindex, rx_queue_index): (u32, u32),
        regs: &mut [u64; 11],
    ) -> Result<(), Stop> {
        let ctx = &mut self.ctx;
        ctx.ctx_fields[3] = ingress_ifindex as u64;
        ctx.ctx_fields[4] = rx_queue_index as u64;
        ctx.stack_dirty = exec.stack_dirty as u64;
        ctx.executed = exec.executed;
        ctx.status = ST_OK;
        ctx.budget = exec.budget;
        ctx.depth = 0;
        ctx.tail_target = 0;
        let set = (&*exec.maps as *const MapSet as usize, exec.maps.maps.len());
        if !T::OBSERVES && self.maps_for != Some(set) {
            // Rebuilt in place: a session kept by the engine for one-shot
            // runs (`Engine::run_raw`, `run_xdp`) rebuilds it on every run
            // (`forget_maps`), and a vector collected anew each time cost an
            // allocation and a store-forwarding stall on every run, most of
            // a map-free program's run.
            ctx.map_tab.clear();
            ctx.map_tab.extend(exec.maps.maps.iter().map(|m| fast_map(exec, m)));
            ctx.maps = ctx.map_tab.as_ptr();
            ctx.nmaps = ctx.map_tab.len() as u64;
            ctx.work_limit = exec.res.limit(Resource::HelperWork);
            self.maps_for = Some(set);
            refresh_maps(ctx, exec);
        }
        // Otherwise the value stores are as the last run's last slow path
        // left them: between the runs of a session (a batch) nothing but
        // a run touches the maps. A run's budget is a fresh copy of the
        // same limits.
        ctx.work_used = exec.res.used(Resource::HelperWork);
        refresh_frame(ctx, exec);
        let mut host = Host { exec, code, fault: None };
        ctx.host = (&mut host as *mut Host<'_, '_, T>).cast();
        let status = dispatch(ctx, code, code.entries[entry]);
        // The host dies here; nothing may reach it through the context.
        ctx.host = std::ptr::null_mut();
        regs[0] = ctx.regs[0];
        host.exec.executed = ctx.executed;
        host.exec.stack_dirty = host.exec.stack_dirty.min(ctx.stack_dirty as usize);
        host.exec.res.set_used(Resource::HelperWork, ctx.work_used);
        match status {
            ST_OK => Ok(()),
            ST_UNWIND => Err(Stop::Unwind),
            _ => Err(Stop::Fault(Box::new(
                host.fault.take().expect("a fault status always records its fault"),
            ))),
        }
    }
}

/// Calls compiled function `func`, then the programs it tail-calls.
fn dispatch(ctx: *mut JitCtx, code: &Code, mut func: usize) -> u64 {
    loop {
        // SAFETY: `ctx` points to the live context of the current `run`,
        // whose `host` and bounds are valid for this call; the function was
        // compiled for exactly this context layout (see `Code::finalize`).
        let status = unsafe { (code.funcs[func])(ctx) };
        if status != ST_TAIL {
            return status;
        }
        // SAFETY: as above; the compiled code has returned, so nothing else
        // accesses the context now.
        let target = unsafe { (*ctx).tail_target } as usize;
        func = code.entries[target];
    }
}

/// The context and host behind a slow path's `ctx` argument.
///
/// # Safety
/// `ctx` must be the pointer `run` handed to compiled code, for a run with
/// tracer type `T`, and no other reference to either may be in use while
/// the returned ones are.
unsafe fn parts<'x, T: Tracer>(ctx: *mut JitCtx) -> (&'x mut JitCtx, &'x mut Host<'x, 'x, T>) {
    // SAFETY: per the contract above.
    unsafe {
        let c = &mut *ctx;
        let h = &mut *(c.host as *mut Host<'x, 'x, T>);
        (c, h)
    }
}

fn unsite(site: u64) -> (usize, usize) {
    ((site >> 32) as usize, site as u32 as usize)
}

fn fail<T: Tracer>(host: &mut Host<'_, '_, T>, site: u64, kind: FaultKind) -> u64 {
    let (prog, pc) = unsite(site);
    let p = &host.exec.programs[prog];
    let line = p.lines.lookup(pc).map(|l| format!("{}:{}", l.file, l.line));
    host.fault = Some(Fault { pc, program: p.name.clone(), kind, line });
    ST_FAULT
}

/// Runs a slow path's body so that a panic in it never unwinds into
/// compiled code (which has no unwind tables; unwinding through it would
/// abort the process). A panic becomes the run's fault at `site`, and the
/// slow path returns `ST_FAULT` (with `JitCtx::status` set too, for
/// `rt_load`, whose return value is the loaded value and is then unused).
fn guarded<T: Tracer>(ctx: *mut JitCtx, site: u64, what: &str, body: impl FnOnce() -> u64) -> u64 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            // SAFETY: called only by compiled code with its context
            // (`parts`); the body's references ended with its unwind.
            let (c, h) = unsafe { parts::<T>(ctx) };
            let kind = FaultKind::Internal {
                what: format!("{what}: {}", panic_message(payload.as_ref())),
            };
            // `rt_load`'s caller checks `status`; the others check the
            // returned status. Either way the run stops here.
            c.status = fail(h, site, kind);
            ST_FAULT
        }
    }
}

extern "C" fn rt_load<T: Tracer>(ctx: *mut JitCtx, site: u64, a: u64, size: u64) -> u64 {
    guarded::<T>(ctx, site, "the JIT's load slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (c, h) = unsafe { parts::<T>(ctx) };
        match h.exec.load(unsite(site).1, a, size as usize) {
            Ok(v) => v,
            Err(k) => {
                c.status = fail(h, site, k);
                0
            }
        }
    })
}

extern "C" fn rt_store<T: Tracer>(ctx: *mut JitCtx, site: u64, a: u64, size: u64, v: u64) -> u64 {
    guarded::<T>(ctx, site, "the JIT's store slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (_, h) = unsafe { parts::<T>(ctx) };
        match h.exec.store(unsite(site).1, a, size as usize, v) {
            Ok(()) => ST_OK,
            Err(k) => fail(h, site, k),
        }
    })
}

/// `packed` is `op << 8 | size`; r0 and `src` are in `regs`.
extern "C" fn rt_atomic<T: Tracer>(
    ctx: *mut JitCtx,
    site: u64,
    a: u64,
    packed: u64,
    src: u64,
) -> u64 {
    guarded::<T>(ctx, site, "the JIT's atomic slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (c, h) = unsafe { parts::<T>(ctx) };
        let (op, size) = ((packed >> 8) as i32, (packed & 0xff) as usize);
        match h.exec.atomic(unsite(site).1, op, a, size, src as usize, &mut c.regs) {
            Ok(()) => ST_OK,
            Err(k) => fail(h, site, k),
        }
    })
}

/// Helper `id` with r1-r5 in `regs`; r0 comes back there.
extern "C" fn rt_helper<T: Tracer>(ctx: *mut JitCtx, site: u64, id: u64, callx: u64) -> u64 {
    // `call_helper` contains a panic in the helper itself; this guards
    // the rest of the slow path.
    guarded::<T>(ctx, site, "the JIT's helper slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (c, h) = unsafe { parts::<T>(ctx) };
        let (prog, pc) = unsite(site);
        if callx == 0 {
            h.exec.tracer.helper(pc, id as i32);
        }
        h.exec.executed = c.executed;
        h.exec.res.set_used(Resource::HelperWork, c.work_used);
        let mut regs = c.regs;
        let r = h.exec.call_helper(id as i32, prog, pc, &mut regs, c.depth as usize);
        c.executed = h.exec.executed;
        c.work_used = h.exec.res.used(Resource::HelperWork);
        refresh(c, h.exec);
        match r {
            Ok(HelperOutcome::Return(v)) => {
                c.regs[0] = v;
                ST_OK
            }
            Ok(HelperOutcome::TailCall(target)) if callx == 0 => {
                // As the interpreter: r1-r5 clobbered, r1 is the ctx again.
                c.regs[1] = h.exec.ctx_addr;
                c.regs[2..6].fill(0);
                c.tail_target = target as u64;
                ST_TAIL
            }
            Ok(HelperOutcome::TailCall(_)) => {
                fail(h, site, FaultKind::InvalidInstruction { code: JMP | CALL | X })
            }
            Ok(HelperOutcome::Unwind(v)) => {
                c.regs[0] = v;
                ST_UNWIND
            }
            Err(k) => fail(h, site, k),
        }
    })
}

/// `bpf_map_lookup_elem(r1, r2)` called directly: the helper's own code
/// (`Exec::call_map_lookup_uncontained`: the same checks, faults and work
/// charge as through `Exec::call_helper`), without spilling the registers,
/// copying them, dispatching on the helper id or re-reading the frame
/// bounds, none of which a lookup reads or changes, and under one panic
/// guard, which words a panic as the helper's own containment does.
/// Returns r0; a fault sets `JitCtx::status`, as `rt_load` does.
extern "C" fn rt_lookup<T: Tracer>(ctx: *mut JitCtx, site: u64, r1: u64, r2: u64) -> u64 {
    guarded::<T>(ctx, site, MAP_LOOKUP_GUARD, || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (c, h) = unsafe { parts::<T>(ctx) };
        let (prog, pc) = unsite(site);
        h.exec.tracer.helper(pc, MAP_LOOKUP_ELEM);
        h.exec.res.set_used(Resource::HelperWork, c.work_used);
        let r = h.exec.call_map_lookup_uncontained(prog, pc, r1, r2, c.depth as usize);
        c.work_used = h.exec.res.used(Resource::HelperWork);
        r.unwrap_or_else(|k| {
            c.status = fail(h, site, k);
            0
        })
    })
}

/// A BPF-to-BPF call of compiled function `func` with all registers in
/// `regs`, on a fresh frame, as the interpreter's `PSEUDO_CALL`.
extern "C" fn rt_call<T: Tracer>(ctx: *mut JitCtx, site: u64, func: u64) -> u64 {
    // The callee's own slow paths are guarded; this guards the frame set-up.
    guarded::<T>(ctx, site, "the JIT's call slow path", || {
        let (depth, saved_low, code) = {
            // SAFETY: called only by compiled code with its context (`parts`);
            // these references end before the callee runs.
            let (c, h) = unsafe { parts::<T>(ctx) };
            let depth = c.depth as usize;
            if depth + 1 >= MAX_FRAMES {
                return fail(h, site, FaultKind::CallDepth);
            }
            c.regs[10] = addr(TAG_STACK, (STACK_SIZE - (depth + 1) * FRAME_SIZE) as u64);
            let saved_low = h.exec.stack_low;
            h.exec.stack_low = STACK_SIZE - (depth + 2) * FRAME_SIZE;
            h.exec.clear_frame(depth + 1);
            c.depth = (depth + 1) as u64;
            refresh(c, h.exec);
            (depth, saved_low, h.code as *const Code)
        };
        // SAFETY: `code` is the `&Code` the running `run` borrows.
        let status = dispatch(ctx, unsafe { &*code }, func as usize);
        // SAFETY: the callee has returned; see above.
        let (c, h) = unsafe { parts::<T>(ctx) };
        h.exec.stack_low = saved_low;
        c.depth = depth as u64;
        refresh(c, h.exec);
        status
    })
}

/// The budget ran out inside the segment starting at `site`, which began
/// with `executed` instructions done.
extern "C" fn rt_budget<T: Tracer>(ctx: *mut JitCtx, site: u64, executed: u64) -> u64 {
    guarded::<T>(ctx, site, "the JIT's budget slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (c, h) = unsafe { parts::<T>(ctx) };
        let (prog, start) = unsite(site);
        let budget = h.exec.budget;
        let pc =
            nth_in_segment(&h.exec.programs[prog].insns, start, budget.saturating_sub(executed));
        c.executed = budget + 1;
        fail(h, (prog as u64) << 32 | pc as u64, FaultKind::BudgetExhausted { budget })
    })
}

extern "C" fn rt_fault<T: Tracer>(ctx: *mut JitCtx, site: u64, kind: u64, arg: u64) -> u64 {
    guarded::<T>(ctx, site, "the JIT's fault slow path", || {
        // SAFETY: called only by compiled code with its context (`parts`).
        let (_, h) = unsafe { parts::<T>(ctx) };
        let kind = match kind {
            FAULT_PC_OUT_OF_RANGE => FaultKind::PcOutOfRange { pc: arg as i64 },
            _ => FaultKind::InvalidInstruction { code: arg as u8 },
        };
        fail(h, site, kind)
    })
}
