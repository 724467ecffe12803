//! Backend `vm`: our own engine (the interpreter, or its JIT where the
//! engine was built with one and the run is not traced).

use anyhow::Context;

use super::kind::{BackendKind, Registration};
use super::{
    Backend, Description, MapContents, MapsCompared, OpenCtx, Opened, PacketResult, PacketSource,
    Ran, Released,
};
use crate::compare::carried::CarriedNondeterminism;
use crate::engine::{Engine, EngineConfig, Executor, KernelRelease, Outcome, PacketIn, Tracer};
use crate::verdict::{Verdict, XdpAction};

pub fn run_packet<T: Tracer>(
    engine: &mut Engine,
    pkt: &PacketSource,
    tracer: &mut T,
) -> PacketResult {
    run_packet_executed(engine, pkt, tracer).0
}

/// [`run_packet`], also saying which executor ran it (see [`run_frame_executed`]).
pub fn run_packet_executed<T: Tracer>(
    engine: &mut Engine,
    pkt: &PacketSource,
    tracer: &mut T,
) -> (PacketResult, Option<Executor>) {
    let input = PacketIn {
        data: &pkt.data,
        ts_ns: pkt.ts_ns,
        ingress_ifindex: pkt.ingress_ifindex,
        rx_queue_index: pkt.rx_queue_index,
    };
    run_frame_executed(engine, &input, tracer)
}

/// [`run_packet`] on a borrowed frame (no copy of the input).
pub fn run_frame<T: Tracer>(engine: &mut Engine, input: &PacketIn, tracer: &mut T) -> PacketResult {
    run_frame_executed(engine, input, tracer).0
}

/// [`run_frame`], also saying which executor ran the packet (`None`: the
/// frame was refused before the program ran).
pub fn run_frame_executed<T: Tracer>(
    engine: &mut Engine,
    input: &PacketIn,
    tracer: &mut T,
) -> (PacketResult, Option<Executor>) {
    let r = engine.run_xdp_traced(input, tracer);
    let executor = r.executor;
    let verdict = match &r.outcome {
        Outcome::Exit { r0 } => Verdict::Action { action: XdpAction::from_retval(*r0 as u32) },
        Outcome::Fault(f) => Verdict::Fault { message: f.to_string(), insn: f.pc },
        Outcome::NotRun { reason } => Verdict::NotRun { reason: reason.to_string() },
    };
    let result = PacketResult {
        verdict,
        output: r.output,
        events: r.events,
        redirect: r.redirect,
        insns: Some(r.insns),
        duration_ns: None,
    };
    (result, executor)
}

/// The release of the kernel on this machine, whose helper semantics the
/// engine models when it stands for this machine's kernel (`diff`,
/// `replay`, `qualify`, `live`); the newest modelled one when `uname` does
/// not say (see [`KernelRelease`]).
pub fn host_kernel_release() -> KernelRelease {
    static HOST: std::sync::OnceLock<KernelRelease> = std::sync::OnceLock::new();
    *HOST.get_or_init(|| {
        xdpqual_kernel::sys::kernel_release()
            .ok()
            .and_then(|r| KernelRelease::parse(&r))
            .unwrap_or(KernelRelease::NEWEST_MODELLED)
    })
}

/// The possible CPUs (`/sys/devices/system/cpu/possible`), which is how
/// many slots the kernel gives each per-CPU map value; 1 when unreadable.
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| r.split('-').next_back().and_then(|x| x.parse::<usize>().ok()))
                .max()
                .flatten()
        })
        .map_or(1, |m| m + 1)
}

/// Backend `vm` (also `engine`): the diff's reference, run on CPU 0 with as
/// many per-CPU slots as the host has possible CPUs, so its maps compare
/// with the kernel's.
pub struct EngineBackend {
    pub engine: Engine,
    /// What earlier packets' nondeterministic runs left in the maps.
    carried: CarriedNondeterminism,
}

impl EngineBackend {
    /// Builds the engine for `ctx.program` and loads `ctx.maps` into it.
    pub fn open(ctx: &OpenCtx) -> anyhow::Result<EngineBackend> {
        let cfg = EngineConfig {
            ncpus: possible_cpus(),
            cpu: 0,
            fib: ctx.fib.clone(),
            conntrack: ctx.conntrack.clone(),
            kernel: host_kernel_release(),
            ..Default::default()
        };
        let mut engine =
            Engine::new(ctx.obj, Some(&ctx.program.name), cfg).context("preparing the engine")?;
        crate::mapfile::apply(&mut engine, ctx.obj, ctx.maps)?;
        // The host backend writes map files into the kernel in key order
        // (host_run.rs `apply_maps_to_host`); an LRU map's eviction order
        // depends on that order, so the engine's LRU maps take it too.
        for m in &mut engine.maps_mut().maps {
            m.relist_lru_in_key_order();
        }
        let carried = CarriedNondeterminism::new(&engine);
        Ok(EngineBackend { engine, carried })
    }

    /// Runs one packet; also says whether its result depends on something
    /// the other backends cannot reproduce: a time or random-number helper
    /// it called, or a value an earlier such run left in a map
    /// ([`CarriedNondeterminism`]).
    pub fn run_recorded(&mut self, pkt: &PacketSource) -> (PacketResult, bool) {
        let r = run_packet(&mut self.engine, pkt, &mut self.carried);
        (r, self.carried.end_run())
    }
}

/// An engine's maps as a backend reports them.
pub fn engine_maps(engine: &Engine) -> Vec<MapContents> {
    engine
        .maps()
        .maps
        .iter()
        .map(|m| MapContents {
            name: m.def.name.clone(),
            percpu: m.def.map_type.is_percpu(),
            entries: Ok(m.sparse_entries().into_iter().map(|e| (e.key, e.values)).collect()),
        })
        .collect()
}

impl Backend for EngineBackend {
    fn describe(&self) -> Description {
        Description {
            label: "vm".into(),
            kernel: None,
            xlated: None,
            maps: MapsCompared::Never,
            maps_side: "the engine".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        Ran::plain(self.run_recorded(pkt).0)
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        engine_maps(&self.engine)
    }
    fn release(self: Box<Self>) -> Released {
        Released::default()
    }
}

/// `vm`/`engine`: always run by the diff as its reference.
pub const REGISTRATION: Registration = Registration {
    syntax: Some("vm"),
    parse: |s| matches!(s, "vm" | "engine").then_some(Ok(BackendKind::Vm)),
    open: |k, _| (*k == BackendKind::Vm).then_some(Ok(Opened::Reference)),
};
