//! Backend `vm`: our own engine (the interpreter, or its JIT where the
//! engine was built with one and the run is not traced).

use super::{PacketResult, PacketSource};
use crate::engine::{Engine, Executor, Outcome, PacketIn, Tracer};
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
