//! Backend `null`, for tests only: every packet is XDP_PASS with its bytes
//! unchanged, and every map of the object is there and empty. It shows what
//! adding a backend takes (this module and one line in
//! [`super::registry::REGISTRY`]) and gives the diff a backend whose
//! disagreements with a program can be worked out by hand.

use super::registry::{BackendKind, Registration};
use super::{
    Backend, Description, MapContents, MapsCompared, Opened, PacketResult, PacketSource, Ran,
    Released,
};
use crate::verdict::{Verdict, XdpAction};

pub struct NullBackend {
    maps: Vec<String>,
}

impl Backend for NullBackend {
    fn describe(&self) -> Description {
        Description {
            label: "null".into(),
            kernel: None,
            xlated: None,
            maps: MapsCompared::AtEnd,
            maps_side: "null".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        Ran::plain(PacketResult {
            verdict: Verdict::Action { action: XdpAction::Pass },
            output: pkt.data.clone(),
            events: vec![],
            redirect: None,
            insns: None,
            duration_ns: None,
        })
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        self.maps
            .iter()
            .map(|name| MapContents { name: name.clone(), percpu: false, entries: Ok(vec![]) })
            .collect()
    }
    fn release(self: Box<Self>) -> Released {
        Released::default()
    }
}

pub const REGISTRATION: Registration = Registration {
    // Hidden: not in the "known backends" list.
    syntax: None,
    parse: |s| (s == "null").then_some(Ok(BackendKind::Named("null"))),
    open: |k, ctx| {
        (*k == BackendKind::Named("null")).then(|| {
            let maps = ctx.obj.maps.iter().map(|m| m.name.clone()).collect();
            Ok(Opened::Ready(Box::new(NullBackend { maps })))
        })
    },
};
