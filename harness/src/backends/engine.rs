//! Backend `vm`: our own interpreter.

use super::{PacketResult, PacketSource};
use crate::engine::{Engine, Outcome, PacketIn, Tracer};
use crate::verdict::{Verdict, XdpAction};

pub fn run_packet<T: Tracer>(engine: &mut Engine, pkt: &PacketSource, tracer: &mut T) -> PacketResult {
    let input = PacketIn {
        data: &pkt.data,
        ts_ns: pkt.ts_ns,
        ingress_ifindex: pkt.ingress_ifindex,
        rx_queue_index: pkt.rx_queue_index,
    };
    run_frame(engine, &input, tracer)
}

/// [`run_packet`] on a borrowed frame (no copy of the input).
pub fn run_frame<T: Tracer>(engine: &mut Engine, input: &PacketIn, tracer: &mut T) -> PacketResult {
    let r = engine.run_xdp_traced(input, tracer);
    let verdict = match &r.outcome {
        Outcome::Exit { r0 } => Verdict::Action { action: XdpAction::from_retval(*r0 as u32) },
        Outcome::Fault(f) => Verdict::Fault { message: f.to_string(), insn: f.pc },
        Outcome::NotRun { reason } => Verdict::NotRun { reason: reason.to_string() },
    };
    PacketResult {
        verdict,
        output: r.output,
        events: r.events,
        redirect: r.redirect,
        insns: Some(r.insns),
        duration_ns: None,
    }
}
