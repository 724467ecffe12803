//! rbpf as a diff backend: the program prepared once (refused, with the
//! reason, when rbpf cannot run it in this process), then run per packet.

use super::{RbpfHelpers, XdpProgram};
use crate::backends::kind::{BackendKind, Registration};
use crate::backends::{
    Backend, Description, MapContents, MapsCompared, Opened, PacketResult, PacketSource, Ran,
    Released,
};
use crate::verdict::{Verdict, XdpAction};

pub struct RbpfBackend {
    program: XdpProgram,
    helpers: RbpfHelpers,
}

fn result(verdict: Verdict, output: Vec<u8>) -> PacketResult {
    PacketResult { verdict, output, events: vec![], redirect: None, insns: None, duration_ns: None }
}

impl Backend for RbpfBackend {
    fn describe(&self) -> Description {
        Description {
            label: "rbpf".into(),
            kernel: None,
            xlated: None,
            // rbpf runs programs without maps (eligibility refuses them).
            maps: MapsCompared::Never,
            maps_side: "rbpf".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        let mut data = pkt.data.clone();
        // rbpf runs any frame; the kernel (and the engine) refuse some
        // before the program runs, so rbpf must not run them either.
        let r = if let Some(reason) = crate::engine::xdp::refused(data.len()) {
            result(Verdict::NotRun { reason: reason.to_string() }, vec![])
        } else {
            match self.program.run(
                &mut data,
                pkt.ingress_ifindex,
                pkt.rx_queue_index,
                &self.helpers,
            ) {
                Ok(r0) => {
                    result(Verdict::Action { action: XdpAction::from_retval(r0 as u32) }, data)
                }
                Err(e) => result(Verdict::Error { message: e.to_string() }, vec![]),
            }
        };
        Ran::plain(r)
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        Vec::new()
    }
    fn release(self: Box<Self>) -> Released {
        Released::default()
    }
}

pub const REGISTRATION: Registration = Registration {
    syntax: Some("rbpf"),
    parse: |s| (s == "rbpf").then_some(Ok(BackendKind::Rbpf)),
    open: |k, ctx| {
        (*k == BackendKind::Rbpf).then(|| {
            let helpers = RbpfHelpers::default();
            Ok(match XdpProgram::prepare_bounded(&ctx.program.insns, &helpers) {
                Ok(program) => Opened::Ready(Box::new(RbpfBackend { program, helpers })),
                Err(u) => Opened::Skipped { reason: u.to_string(), kernel: None },
            })
        })
    },
};
