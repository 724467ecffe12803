//! An offload profile's emulated datapath as a diff backend (`nic:PROFILE`):
//! refused, with the checker's first blocking finding, when the profile
//! cannot offload the program; otherwise every packet with the rules of the
//! profile that made it differ from the engine.

use anyhow::{Context, Result};

use super::{NicBackend, NicOpen};
use crate::backends::engine::engine_maps;
use crate::backends::kind::{BackendKind, Registration};
use crate::backends::{
    Backend, Description, MapContents, MapsCompared, OpenCtx, Opened, PacketSource, Ran, Released,
};

pub struct NicRun {
    label: String,
    nic: Box<NicBackend>,
}

fn open(kind: &BackendKind, profile: &str, ctx: &OpenCtx) -> Result<Opened> {
    let label = kind.label();
    Ok(
        match NicBackend::open(ctx.obj, ctx.program, profile, None)
            .with_context(|| format!("backend {label}"))?
        {
            NicOpen::Ready(mut nic) => {
                crate::mapfile::apply(nic.engine_mut(), ctx.obj, ctx.maps)?;
                Opened::Ready(Box::new(NicRun { label, nic }))
            }
            NicOpen::Rejected(r) => {
                let first = r
                    .findings
                    .iter()
                    .find(|f| f.severity.blocks())
                    .map(|f| format!("{}: {}", f.rule, f.message))
                    .unwrap_or_default();
                Opened::Skipped {
                    reason: format!(
                        "the offload checker rejects the program for {}: {first}",
                        r.profile
                    ),
                    kernel: None,
                }
            }
        },
    )
}

impl Backend for NicRun {
    fn describe(&self) -> Description {
        Description {
            label: self.label.clone(),
            kernel: None,
            xlated: None,
            // Per-CPU maps differ by construction: the NIC has one slot per
            // queue.
            maps: MapsCompared::PerPacket,
            maps_side: "the NIC".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        let r = self.nic.run(pkt);
        Ran { result: r.result, rules: Some(r.applied) }
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        engine_maps(self.nic.engine())
    }
    fn release(self: Box<Self>) -> Released {
        Released { queue_counters: Some(self.nic.counters().to_vec()) }
    }
}

pub const REGISTRATION: Registration = Registration {
    syntax: Some("nic:PROFILE"),
    parse: |s| match s.strip_prefix("nic:") {
        Some(p) if !p.is_empty() => Some(Ok(BackendKind::Nic(p.to_string()))),
        _ => None,
    },
    open: |k, ctx| match k {
        BackendKind::Nic(profile) => Some(open(k, profile, ctx)),
        _ => None,
    },
};
