//! The engine: our kernel-exact eBPF interpreter for XDP programs.
//!
//! It is the backend that needs no privileges, and the sandbox for untrusted
//! programs: all memory a program can reach is engine-owned and every access
//! is bounds-checked ([`memory`]). A program it cannot run exactly (unknown
//! helper, map type or instruction) is refused when prepared, never run
//! half-way.
//!
//! - [`prepare`]: load-time checks and `lddw` resolution;
//! - `interp`: the instruction semantics;
//! - `exec`: one run's state and the bounds-checked address translation;
//! - [`helpers`], [`maps`], [`xdp`]: the kernel's helpers, maps and buffer;
//! - [`trace`]: the per-instruction hook.
//!
//! As a library: [`Engine::new`] prepares an `xdpqual_object::Object` (every
//! refusal happens there), [`Engine::run_xdp`] runs one packet and returns a
//! [`RunResult`], and [`Engine::maps`] shows the maps afterwards;
//! `examples/run_packet.rs` is the whole round trip. The crate depends on
//! the ISA and the linked-program types only: it makes no `bpf(2)` call,
//! reads no file and knows nothing of captures or reports, so that what
//! runs untrusted code is small enough to read whole.

pub mod arch;
pub mod batch;
#[cfg(test)]
mod big_endian_tests;
pub mod budget;
pub mod conntrack;
mod exec;
pub mod fault;
pub mod fib;
pub mod helpers;
#[cfg(test)]
mod hostile_tests;
mod interp;
pub mod jit;
pub mod maps;
pub mod memory;
pub mod prepare;
pub mod release;
pub mod trace;
pub mod xdp;

pub use arch::Arch;
pub use batch::{Batch, RunSlot, SlotOutcome};
pub use exec::HelperMode;
pub use fault::{Fault, FaultKind, Region};
pub use jit::ExecMode;
pub use maps::{MapEntry, MapError, MapSet};
pub use prepare::PrepareError;
pub use release::KernelRelease;
pub use trace::{MapOp, NoTrace, Recorder, Tracer};
pub use xdp::NotRunReason;

use exec::{Exec, Stop};
use memory::*;
use serde::Serialize;
use xdp::XdpBuff;
pub use xdpqual_isa::ByteOrder;
use xdpqual_isa::Insn;
use xdpqual_object::{MapDef, MapType, Object, Program};

/// Human name of a helper id, for messages.
pub fn helper_name(id: i32) -> String {
    if let Some(n) = helpers::kfuncs::name(id) {
        return format!("kfunc {n}");
    }
    // The engine's own table names what it models; the UAPI list names
    // the rest, so a refusal says which helper it is.
    match helpers::ids::name(id)
        .map(str::to_string)
        .or_else(|| xdpqual_isa::helpers::helper_name(id))
    {
        Some(n) => format!("{n} (#{id})"),
        None => format!("#{id}"),
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Instructions one packet may execute before it is stopped.
    pub insn_budget: u64,
    /// CPUs modelled for per-CPU maps.
    pub ncpus: usize,
    /// The CPU this engine instance runs as (`bpf_get_smp_processor_id`).
    pub cpu: usize,
    /// Seed for `bpf_get_prandom_u32`.
    pub prandom_seed: u64,
    /// Compile the programs to machine code (falls back to the interpreter
    /// when they cannot be compiled; see [`Engine::exec_mode`]).
    pub jit: bool,
    /// Everything else one packet may consume ([`budget`]).
    pub limits: budget::RunLimits,
    /// Bytes all maps of this engine may hold together. Maps the kernel
    /// preallocates are charged in full when created (and refused with
    /// ENOMEM above the cap); maps that grow per element are charged as
    /// they grow, and passing the cap then is a per-packet fault.
    pub map_memory_cap: u64,
    /// Programs with more instructions than this (all programs of the
    /// engine together) are not compiled; they run in the interpreter and
    /// [`Engine::exec_mode`] says why ([`jit::MAX_JIT_INSNS`]).
    pub jit_max_insns: usize,
    /// The modelled kernel's CONFIG_HZ, the unit of `bpf_jiffies64`.
    /// Debian's kernels and this project's machine use 250.
    pub hz: u32,
    /// The forwarding table `bpf_fib_lookup` consults (`--fib`); without
    /// one the helper faults, naming the option.
    pub fib: Option<std::sync::Arc<fib::Fib>>,
    /// The target kernel's `struct nf_conn` layout and the connections the
    /// conntrack kfuncs' table starts with ([`conntrack`]); without it those
    /// kfuncs fault, naming what is missing.
    pub conntrack: Option<std::sync::Arc<conntrack::Setup>>,
    /// The kernel release whose helper semantics are modelled where they
    /// changed between releases ([`release`]).
    pub kernel: KernelRelease,
    /// The byte order programs run with: how loads and stores of 2, 4 and
    /// 8 bytes, `BPF_END`, map keys and helper structs see memory.
    /// [`Engine::new`] takes it from the object (`Object::byte_order`), so a
    /// `bpfeb` object runs big-endian without being asked; the JIT runs
    /// only little-endian programs (big-endian ones fall back to the
    /// interpreter, and [`Engine::exec_mode`] says so).
    pub byte_order: ByteOrder,
    /// The machine whose kernel is modelled where it matters: the size of
    /// test-run's linear area ([`arch`]). Host runs are x86_64's.
    pub arch: Arch,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            insn_budget: 1_000_000,
            ncpus: 1,
            cpu: 0,
            prandom_seed: 0x5eed,
            jit: false,
            limits: budget::RunLimits::default(),
            map_memory_cap: maps::DEFAULT_MAP_MEMORY_CAP,
            jit_max_insns: jit::MAX_JIT_INSNS,
            hz: 250,
            fib: None,
            conntrack: None,
            kernel: KernelRelease::NEWEST_MODELLED,
            byte_order: ByteOrder::Little,
            arch: Arch::X86_64,
        }
    }
}

/// Helper semantics of an offload target where they are narrower than the
/// kernel's; the NIC backend sets them. A refused call returns -EINVAL
/// before the kernel's own checks run.
#[derive(Clone, Debug, Default)]
pub struct TargetRules {
    /// `bpf_xdp_adjust_head`: the new data start, relative to where the
    /// frame started, must lie in `[lo, hi]`.
    pub adjust_head_window: Option<(i64, i64)>,
    /// `bpf_xdp_adjust_tail` may only shrink (a delta >= 0 is refused).
    pub adjust_tail_shrink_only: bool,
    /// Shortest frame an adjustment may leave.
    pub min_len_after_adjust: usize,
}

/// A program ready to run.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub name: String,
    pub insns: Vec<Insn>,
    /// `insns` decoded once for the interpreter ([`interp::decode`]).
    pub(crate) code: Vec<interp::Op>,
    /// BTF line info, so faults can name the source line.
    pub lines: xdpqual_object::LineTable,
}

/// Everything that can stop an engine from being built for an object.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("the object has no program named '{0}'")]
    NoSuchProgram(String),
    #[error("{0}")]
    ProgArraySlot(String),
}

/// One packet as the engine receives it.
#[derive(Clone, Copy, Debug)]
pub struct PacketIn<'a> {
    pub data: &'a [u8],
    /// Capture timestamp: what `bpf_ktime_get_ns` returns.
    pub ts_ns: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
}

/// Where a redirect went, as recorded by the last redirect helper call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RedirectTarget {
    Ifindex {
        ifindex: u32,
    },
    Map {
        map: String,
        key: u32,
        #[serde(with = "xdpqual_object::hex::hex_bytes")]
        value: Vec<u8>,
    },
    /// `bpf_redirect_map(devmap, _, BPF_F_BROADCAST)`: to every device in
    /// the map when the frame is redirected (`ifindexes`, the map's
    /// entries at the call), less the ingress device with
    /// `BPF_F_EXCLUDE_INGRESS` (kernel/bpf/devmap.c
    /// `dev_map_enqueue_multi`).
    Broadcast {
        map: String,
        ifindexes: Vec<u32>,
        exclude_ingress: bool,
    },
}

/// Something a program emitted while running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    TracePrintk {
        text: String,
    },
    Perf {
        map: String,
        index: u32,
        #[serde(with = "xdpqual_object::hex::hex_bytes")]
        data: Vec<u8>,
        #[serde(with = "xdpqual_object::hex::hex_bytes")]
        packet: Vec<u8>,
        /// False under test-run semantics: no perf reader is attached, so the
        /// helper returned -ENOENT.
        delivered: bool,
    },
    Ringbuf {
        map: String,
        #[serde(with = "xdpqual_object::hex::hex_bytes")]
        data: Vec<u8>,
    },
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The program returned; for XDP the verdict is `r0 as u32`.
    Exit { r0: u64 },
    /// The sandbox stopped it.
    Fault(Fault),
    /// The frame was refused before the program ran, as test-run does.
    NotRun { reason: NotRunReason },
}

#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub outcome: Outcome,
    /// The frame after the run: metadata, data and fragments (test-run's
    /// `data_out`). Empty when the program did not run.
    #[serde(with = "xdpqual_object::hex::hex_bytes")]
    pub output: Vec<u8>,
    pub events: Vec<Event>,
    pub insns: u64,
    pub redirect: Option<RedirectTarget>,
    /// What executed the program; `None` when it did not run
    /// ([`Outcome::NotRun`]).
    pub executor: Option<Executor>,
}

/// The executor that ran one packet. A JIT-configured engine still
/// interprets a traced run, so this is recorded per run, not per engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    Interpreter,
    Jit,
}

impl Executor {
    /// The name reports use (`interpreter`, `jit`).
    pub fn name(self) -> &'static str {
        match self {
            Executor::Interpreter => "interpreter",
            Executor::Jit => "jit",
        }
    }
}

pub struct Engine {
    programs: Vec<Prepared>,
    entry: usize,
    maps: MapSet,
    /// What `reset_maps` returns to; `None` until `snapshot_maps`, meaning
    /// "as created" (rebuilt from `map_defs`), so a fresh engine does not
    /// hold every map twice.
    initial_maps: Option<MapSet>,
    map_defs: Vec<MapDef>,
    pub config: EngineConfig,
    helper_mode: HelperMode,
    allow_callx: bool,
    stack: Vec<u8>,
    /// Boxed so that taking it out for a run and putting it back moves a
    /// pointer, not the buffer's fields (this is on every run's path).
    buff: Option<Box<XdpBuff>>,
    rng: u64,
    /// Shared with every engine of the process built from the same
    /// programs ([`jit::compile_cached`]).
    jit: Option<std::sync::Arc<jit::Code>>,
    /// The compiled code's run context, kept from one `run_xdp`/`run_raw`
    /// call to the next so a run does not build it (its slow-path table,
    /// its map table's allocation) every time.
    /// Boxed, so taking it out for a run moves a pointer, not the context.
    session: Option<Box<jit::Session<NoTrace>>>,
    mode: ExecMode,
    target: Option<TargetRules>,
    refusals: Vec<(usize, i32)>,
    /// Programs of the object other than the entry that could not be
    /// prepared, with why ([`Engine::refused_programs`]).
    refused_programs: Vec<(String, String)>,
    /// Whether runs copy the frame out into [`RunResult::output`].
    keep_output: bool,
    /// A fresh budget for `config.limits`, copied into each run: cloning a
    /// long-lived value is cheaper on the run's path than building one
    /// (which stalls on the half-written struct). Rebuilt when
    /// `config.limits` changed.
    fresh_budget: budget::Budget,
    /// Whether laying out a frame must zero the page around it: only when
    /// one of the programs can move the frame's bounds outwards.
    surroundings: xdp::Surroundings,
    /// The conntrack table ([`EngineConfig::conntrack`]), kept across runs.
    conntrack: Option<conntrack::Table>,
    /// The object's `__ksym` variables (helpers/ksym.rs).
    ksyms: Vec<xdpqual_object::KsymVar>,
}

/// The object's externs the engine needs: its kfuncs by BTF id and its
/// `__ksym` variables.
#[derive(Clone, Copy)]
struct Externs<'a> {
    kfuncs: &'a std::collections::BTreeMap<i32, String>,
    ksyms: &'a [xdpqual_object::KsymVar],
}

impl Externs<'static> {
    const NONE: Externs<'static> = Externs { kfuncs: &NO_KFUNCS, ksyms: &[] };
}

static NO_KFUNCS: std::collections::BTreeMap<i32, String> = std::collections::BTreeMap::new();

impl Engine {
    /// Prepares every XDP program of `obj` (tail calls may reach any of
    /// them) and runs `entry` (the first program when `None`).
    pub fn new(
        obj: &Object,
        entry: Option<&str>,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let entry_idx = match entry {
            None => 0,
            Some(name) => obj
                .programs
                .iter()
                .position(|p| p.name == name || p.section == name)
                .ok_or_else(|| EngineError::NoSuchProgram(name.to_string()))?,
        };
        if obj.programs.is_empty() {
            return Err(EngineError::NoSuchProgram(
                entry.unwrap_or("(any XDP program)").to_string(),
            ));
        }
        let config = EngineConfig { byte_order: obj.byte_order, ..config };
        let mut engine = Self::build(
            &obj.programs,
            entry_idx,
            &obj.maps,
            config,
            HelperMode::Xdp,
            false,
            Externs { kfuncs: &obj.kfuncs, ksyms: &obj.ksyms },
        )?;
        engine.init_prog_arrays().map_err(EngineError::ProgArraySlot)?;
        Ok(engine)
    }

    /// PROG_ARRAY slots the object fills statically (`.values = { [i] =
    /// &prog }`), as libbpf's `init_prog_array_slots` does once the
    /// programs are loaded.
    fn init_prog_arrays(&mut self) -> Result<(), String> {
        let slots: Vec<(String, u32, String)> = self
            .map_defs
            .iter()
            .filter(|d| d.map_type == MapType::ProgArray)
            .flat_map(|d| d.init_slots.iter().map(|(i, p)| (d.name.clone(), *i, p.clone())))
            .collect();
        for (map, slot, prog) in slots {
            self.set_prog_array(&map, slot, &prog).map_err(|e| {
                format!("PROG_ARRAY '{map}', slot {slot} initialised statically: {e}")
            })?;
        }
        Ok(())
    }

    /// One program with its maps.
    pub fn for_program(
        prog: &Program,
        maps: &[MapDef],
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        Self::build(
            std::slice::from_ref(prog),
            0,
            maps,
            config,
            HelperMode::Xdp,
            false,
            Externs::NONE,
        )
    }

    /// A bare instruction sequence under bpf_conformance's runtime: r1 points
    /// to the test memory, r2 holds its length, helper 5 is "unwind".
    pub fn conformance(insns: Vec<Insn>) -> Result<Engine, EngineError> {
        Self::conformance_with_order(insns, ByteOrder::Little)
    }

    /// [`Engine::conformance`] on a machine of the given byte order.
    pub fn conformance_with_order(
        insns: Vec<Insn>,
        order: ByteOrder,
    ) -> Result<Engine, EngineError> {
        let prog = Program {
            name: "conformance".into(),
            section: String::new(),
            frags: false,
            insns,
            lines: Default::default(),
            functions: Vec::new(),
        };
        Self::build(
            std::slice::from_ref(&prog),
            0,
            &[],
            EngineConfig { byte_order: order, ..EngineConfig::default() },
            HelperMode::Conformance,
            true,
            Externs::NONE,
        )
    }

    fn build(
        programs: &[Program],
        entry: usize,
        maps: &[MapDef],
        config: EngineConfig,
        helper_mode: HelperMode,
        allow_callx: bool,
        externs: Externs<'_>,
    ) -> Result<Engine, EngineError> {
        let opts = prepare::Options {
            allow_callx,
            xdp_helpers: helper_mode == HelperMode::Xdp,
            kfuncs: externs.kfuncs.clone(),
            ksyms: externs.ksyms.to_vec(),
        };
        // The entry program must prepare. Another program of the object
        // that does not (a tc program loaded with --type xdp, a helper XDP
        // may not call) is left out, as a kernel loader that loads the
        // entry leaves it out: it gets no fd, so no PROG_ARRAY can hold it
        // and a tail call to its slot falls through.
        let mut prepared = Vec::with_capacity(programs.len());
        let mut refused = Vec::new();
        let mut entry_at = 0;
        for (i, p) in programs.iter().enumerate() {
            match prepare::prepare(p, maps, &opts) {
                Ok(insns) => {
                    if i == entry {
                        entry_at = prepared.len();
                    }
                    let code = interp::decode(&insns, config.byte_order.is_big());
                    prepared.push(Prepared {
                        name: p.name.clone(),
                        insns,
                        code,
                        lines: p.lines.clone(),
                    });
                }
                Err(e) if i != entry => refused.push((p.name.clone(), e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        let entry = entry_at;
        let map_set = MapSet::with_cap_order(
            maps,
            config.ncpus.max(1),
            config.map_memory_cap,
            config.byte_order,
        )?;
        let want_jit = config.jit;
        let fresh_budget = budget::Budget::new(config.limits.clone());
        let adjusts = |i: &Insn| {
            i.code == xdpqual_isa::opcode::JMP | xdpqual_isa::opcode::CALL
                && i.src == xdpqual_isa::opcode::CALL_HELPER
                && [
                    helpers::ids::XDP_ADJUST_HEAD,
                    helpers::ids::XDP_ADJUST_META,
                    helpers::ids::XDP_ADJUST_TAIL,
                ]
                .contains(&i.imm)
        };
        // `callx` can reach any helper, so it counts as adjusting.
        let surroundings = if allow_callx || prepared.iter().any(|p| p.insns.iter().any(adjusts)) {
            xdp::Surroundings::Zeroed
        } else {
            xdp::Surroundings::Unobservable
        };
        let big = config.byte_order.is_big();
        let ct_table = config.conntrack.as_deref().map(|s| conntrack::Table::new(s, big));
        let engine = Engine {
            conntrack: ct_table,
            ksyms: opts.ksyms.clone(),
            programs: prepared,
            entry,
            initial_maps: None,
            map_defs: maps.to_vec(),
            maps: map_set,
            rng: config.prandom_seed,
            config,
            helper_mode,
            allow_callx,
            stack: vec![0; STACK_SIZE],
            buff: None,
            jit: None,
            mode: ExecMode::Interpreter,
            target: None,
            refusals: Vec::new(),
            session: Some(Box::default()),
            refused_programs: refused,
            keep_output: true,
            fresh_budget,
            surroundings,
        };
        Ok(engine.with_jit(want_jit))
    }

    /// Switches between compiled code and the interpreter. Programs the JIT
    /// cannot compile keep running in the interpreter; [`Engine::exec_mode`]
    /// says which runs.
    pub fn with_jit(mut self, on: bool) -> Engine {
        self.config.jit = on;
        (self.jit, self.mode) = if !on {
            (None, ExecMode::Interpreter)
        } else if self.config.byte_order.is_big() {
            // The compiled code's loads and stores are the host's
            // (little-endian) ones, inline; it has no big-endian mode.
            (
                None,
                ExecMode::Fallback {
                    reason: "the program is big-endian (bpfeb) and the JIT compiles only                              little-endian memory access; it runs in the interpreter"
                        .into(),
                },
            )
        } else {
            match jit::compile_cached(&self.programs, self.allow_callx, self.config.jit_max_insns) {
                Ok(code) => (Some(code), ExecMode::Jit),
                Err(reason) => (None, ExecMode::Fallback { reason }),
            }
        };
        self
    }

    /// Whether runs return the frame after the program (default: yes). A
    /// caller that only counts verdicts turns it off and saves a copy and
    /// an allocation per packet; [`RunResult::output`] is then empty.
    pub fn set_keep_output(&mut self, keep: bool) {
        self.keep_output = keep;
    }

    /// Whether this engine runs the very machine code `other` runs (both
    /// compiled, sharing one compile through the cache).
    pub fn shares_code_with(&self, other: &Engine) -> bool {
        match (&self.jit, &other.jit) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Which executor `run_xdp` and `run_raw` use.
    pub fn exec_mode(&self) -> &ExecMode {
        &self.mode
    }

    /// Runs under an offload target's narrower helper rules from now on.
    pub fn set_target_rules(&mut self, rules: TargetRules) {
        self.target = Some(rules);
    }

    /// Helper calls the target rules refused in the last run: (pc, helper id).
    pub fn last_refusals(&self) -> &[(usize, i32)] {
        &self.refusals
    }

    pub fn maps(&self) -> &MapSet {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut MapSet {
        &mut self.maps
    }

    /// Makes the current map contents the state `reset_maps` returns to
    /// (after `--map` files were applied).
    pub fn snapshot_maps(&mut self) {
        self.initial_maps = Some(self.maps.clone());
    }

    /// The conntrack table's connections now; `None` when the engine has
    /// no table ([`EngineConfig::conntrack`]).
    pub fn conntrack_entries(&self) -> Option<Vec<conntrack::EntryView>> {
        self.conntrack.as_ref().map(|t| t.entries())
    }

    /// Restores the maps to their initial contents (`--fresh-maps`), and
    /// the conntrack table to its seeds.
    pub fn reset_maps(&mut self) {
        let big = self.config.byte_order.is_big();
        self.conntrack = self.config.conntrack.as_deref().map(|s| conntrack::Table::new(s, big));
        self.maps = match &self.initial_maps {
            Some(m) => m.clone(),
            // The same definitions built the current maps under the same
            // cap, so building them again cannot fail.
            None => MapSet::with_cap_order(
                &self.map_defs,
                self.maps.ncpus,
                self.maps.cap,
                self.config.byte_order,
            )
            .expect("maps that were created once are created again"),
        };
        if self.initial_maps.is_none() {
            // Succeeded when the engine was made.
            let _ = self.init_prog_arrays();
        }
    }

    /// Programs of the object, other than the one run, that the engine left
    /// out because they cannot run as XDP, with the reason: tail calls to
    /// them fall through, as they do where a kernel refused them.
    pub fn refused_programs(&self) -> &[(String, String)] {
        &self.refused_programs
    }

    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.programs.iter().map(|p| p.name.as_str())
    }

    /// Puts program `name` into slot `index` of PROG_ARRAY `map`.
    pub fn set_prog_array(&mut self, map: &str, index: u32, name: &str) -> Result<(), String> {
        let target =
            self.programs.iter().position(|p| p.name == name).ok_or_else(|| {
                match self.refused_programs.iter().find(|(n, _)| n == name) {
                    Some((_, why)) => format!("program '{name}' cannot run as XDP: {why}"),
                    None => format!("no XDP program named '{name}' in the object"),
                }
            })?;
        let m = self.maps.by_name(map).ok_or_else(|| format!("no map named '{map}'"))?;
        if m.def.map_type != MapType::ProgArray {
            return Err(format!("map '{map}' is {}, not PROG_ARRAY", m.def.map_type.name()));
        }
        let maps::Index::Array { present } = &mut m.index else { unreachable!() };
        let i = index as usize;
        if i >= present.len() {
            return Err(format!(
                "index {index} is beyond PROG_ARRAY '{map}' ({} entries)",
                present.len()
            ));
        }
        present[i] = true;
        let at = i * m.stride;
        let bytes = m.order.u32_bytes(target as u32);
        m.values[at..at + 4].copy_from_slice(&bytes);
        Ok(())
    }

    /// Bytes of metadata in front of the last run's output (what
    /// `bpf_xdp_adjust_meta` left), which does not leave the host.
    pub fn last_meta_len(&self) -> usize {
        self.buff.as_ref().map_or(0, |b| b.meta_len())
    }

    /// Runs the entry program on one packet.
    pub fn run_xdp(&mut self, pkt: &PacketIn) -> RunResult {
        let mut session = self.session.take();
        let r = self.run_xdp_with(pkt, &mut NoTrace, true, session.as_deref_mut());
        self.session = session;
        r
    }

    /// Runs with `tracer`'s hooks. A tracer that observes anything
    /// ([`Tracer::OBSERVES`]) gets the interpreter, since compiled code has
    /// no per-instruction hook; [`NoTrace`] gets the compiled code when the
    /// engine has it. [`RunResult::executor`] says which ran.
    pub fn run_xdp_traced<T: Tracer>(&mut self, pkt: &PacketIn, tracer: &mut T) -> RunResult {
        self.run_xdp_with(pkt, tracer, !T::OBSERVES, None)
    }

    fn run_xdp_with<T: Tracer>(
        &mut self,
        pkt: &PacketIn,
        tracer: &mut T,
        use_jit: bool,
        session: Option<&mut jit::Session<T>>,
    ) -> RunResult {
        let arch = self.config.arch;
        let mut buff = self.buff.take().unwrap_or_else(|| Box::new(XdpBuff::empty_on(arch)));
        if let Err(reason) = buff.reset_with(pkt.data, self.surroundings) {
            self.buff = Some(buff);
            return RunResult {
                outcome: Outcome::NotRun { reason },
                output: Vec::new(),
                events: Vec::new(),
                insns: 0,
                redirect: None,
                executor: None,
            };
        }
        let ctx = addr(TAG_CTX, 0);
        let mut regs = [0u64; 11];
        regs[1] = ctx;
        let executor =
            if use_jit && self.jit.is_some() { Executor::Jit } else { Executor::Interpreter };
        let (result, executed, events, redirect) =
            self.exec(Some(&mut *buff), None, ctx, pkt, &mut regs, tracer, use_jit, session);
        let output = if self.keep_output { buff.output() } else { Vec::new() };
        self.buff = Some(buff);
        RunResult {
            outcome: match result {
                Ok(()) | Err(Stop::Unwind) => Outcome::Exit { r0: regs[0] },
                Err(Stop::Fault(f)) => Outcome::Fault(*f),
            },
            output,
            events,
            insns: executed,
            redirect,
            executor: Some(executor),
        }
    }

    /// Runs with a flat memory region (conformance tests): r1 = memory,
    /// r2 = its length.
    pub fn run_raw(&mut self, mem: &mut [u8]) -> (Outcome, u64) {
        let mut regs = [0u64; 11];
        regs[1] = if mem.is_empty() { 0 } else { addr(TAG_MEM, 0) };
        regs[2] = mem.len() as u64;
        let pkt = PacketIn { data: &[], ts_ns: 0, ingress_ifindex: 0, rx_queue_index: 0 };
        let mut session = self.session.take();
        let (result, executed, _, _) = self.exec(
            None,
            Some(mem),
            0,
            &pkt,
            &mut regs,
            &mut NoTrace,
            true,
            session.as_deref_mut(),
        );
        self.session = session;
        let outcome = match result {
            Ok(()) | Err(Stop::Unwind) => Outcome::Exit { r0: regs[0] },
            Err(Stop::Fault(f)) => Outcome::Fault(*f),
        };
        (outcome, executed)
    }

    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn exec<T: Tracer>(
        &mut self,
        buff: Option<&mut XdpBuff>,
        mem: Option<&mut [u8]>,
        ctx_addr: u64,
        pkt: &PacketIn,
        regs: &mut [u64; 11],
        tracer: &mut T,
        use_jit: bool,
        session: Option<&mut jit::Session<T>>,
    ) -> (Result<(), Stop>, u64, Vec<Event>, Option<RedirectTarget>) {
        // The entry frame is all zeros here: it starts so, and every run
        // clears what it wrote of it when it ends (below). Deeper frames
        // are cleared when a call enters them (`clear_frame`), and frame 0
        // cannot reach them.
        regs[10] = addr(TAG_STACK, STACK_SIZE as u64);
        let mut events = Vec::new();
        let mut redirect = None;
        let entry = self.entry;
        // Out of `self` for the run (no run reaches the engine itself), so
        // the run state can borrow the rest; put back below.
        let compiled = self.jit.take();
        let jit = compiled.as_deref().filter(|_| use_jit);
        let mut ex = self.exec_state(buff, mem, ctx_addr, tracer, &mut events, &mut redirect);
        ex.begin_run(pkt);
        // Helpers and the JIT's slow paths contain their own panics (at the
        // instruction that called them); this is the last line for a panic
        // anywhere else in a run, so one packet can never take the process
        // down. The run's state may be half-updated then, as after any fault.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match jit {
            Some(code) => jit::run(code, &mut ex, entry, regs, session),
            None => ex.run_frame(entry, 0, regs, 0),
        }))
        .unwrap_or_else(|payload| Err(ex.engine_panicked(entry, payload.as_ref())));
        let executed = ex.executed;
        ex.end_run();
        self.jit = compiled;
        (result, executed, events, redirect)
    }

    /// The state of a run over this engine's programs, maps and stack, for
    /// runs on `buff` (an XDP frame, whose context is at `ctx_addr`) or on
    /// `mem` (the conformance runtime's memory). [`Exec::begin_run`] then
    /// sets it up for one packet; a batch builds it once and begins each
    /// packet's run on it. Also brings the budget template up to date with
    /// the configured limits and forgets the last run's refusals.
    pub(crate) fn exec_state<'a, T: Tracer>(
        &'a mut self,
        buff: Option<&'a mut XdpBuff>,
        mem: Option<&'a mut [u8]>,
        ctx_addr: u64,
        tracer: &'a mut T,
        events: &'a mut Vec<Event>,
        redirect: &'a mut Option<RedirectTarget>,
    ) -> Exec<'a, T> {
        self.refusals.clear();
        if self.fresh_budget.limits() != &self.config.limits {
            self.fresh_budget = budget::Budget::new(self.config.limits.clone());
        }
        Exec {
            programs: &self.programs,
            maps: &mut self.maps,
            stack: &mut self.stack,
            stack_low: STACK_SIZE - FRAME_SIZE,
            stack_dirty: STACK_SIZE,
            buff,
            mem,
            ctx_addr,
            ingress_ifindex: 0,
            rx_queue_index: 0,
            executed: 0,
            budget: self.config.insn_budget,
            res: self.fresh_budget.clone(),
            fresh_res: &self.fresh_budget,
            tail_calls: 0,
            allow_callx: self.allow_callx,
            helper_mode: self.helper_mode,
            cpu: self.config.cpu,
            now_ns: 0,
            hz: self.config.hz,
            kernel: self.config.kernel,
            rng: &mut self.rng,
            events,
            redirect,
            reservations: Vec::new(),
            tracer,
            target: self.target.as_ref(),
            refusals: &mut self.refusals,
            fib: self.config.fib.as_deref(),
            order: self.config.byte_order,
            big: self.config.byte_order.is_big(),
            conntrack: self.conntrack.as_mut(),
            ct_refs: Default::default(),
            ksyms: &self.ksyms,
            ksym_scratch: Vec::new(),
        }
    }
}
