//! What a backend is called ([`BackendKind`]) and what it registers
//! ([`Registration`]): the types each backend module and the registry share.
//! They live apart from [`super::registry`], which lists the backends, so
//! that a backend depends on these types and the list depends on the
//! backends, with no circle between them.

use anyhow::Result;
use serde::Serialize;

use super::{OpenCtx, Opened};

/// A backend as named on the command line and in reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Vm,
    Rbpf,
    Host,
    /// The emulated datapath of an offload profile (`nic:PROFILE`).
    Nic(String),
    /// A real interface (`live:IFACE[:MODE]`, see [`crate::backends::live`]).
    Live(crate::backends::live::spec::LiveSpec),
    /// A backend named by one word and nothing else, for backends that need
    /// no variant of their own (serialized as the bare word).
    #[serde(untagged)]
    Named(&'static str),
}

impl BackendKind {
    /// The name results are filed under (`vm`, `nic:nfp-corenic`, ...).
    pub fn label(&self) -> String {
        match self {
            BackendKind::Nic(p) => format!("nic:{p}"),
            BackendKind::Live(l) => format!("live:{}:{}", l.iface, l.mode),
            BackendKind::Named(n) => (*n).to_string(),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// One backend: how it is named and how it is opened.
pub struct Registration {
    /// Its name as listed in the "known:" error; `None`: not listed.
    pub syntax: Option<&'static str>,
    /// `Some` when the spec names this backend (`Err`: it does, wrongly).
    pub parse: fn(&str) -> Option<Result<BackendKind, String>>,
    /// `None` when `kind` is not this backend's; else opens it.
    pub open: fn(&BackendKind, &OpenCtx) -> Option<Result<Opened>>,
}
