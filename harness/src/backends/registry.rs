//! Backend names (`--backends vm,rbpf,host,nic:PROFILE,live:IFACE`) and how
//! each is opened: one [`Registration`] per backend in [`REGISTRY`]. Adding
//! a backend is its own module implementing [`super::Backend`] plus one line
//! here (see CONTRIBUTING.md).

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
    Live(crate::backends::live::LiveSpec),
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

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(parsed) = REGISTRY.iter().find_map(|r| (r.parse)(s)) {
            return parsed;
        }
        let known: Vec<&str> = REGISTRY.iter().filter_map(|r| r.syntax).collect();
        Err(format!("unknown backend '{s}' (known: {})", known.join(", ")))
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

/// Every backend, in the order the diff opens them and lists them.
pub const REGISTRY: &[Registration] = &[
    super::engine::REGISTRATION,
    super::rbpf::backend::REGISTRATION,
    super::host_run::REGISTRATION,
    super::nic::backend::REGISTRATION,
    super::live::REGISTRATION,
    #[cfg(test)]
    super::null::REGISTRATION,
];

/// Opens `kind` with the backend that claims it.
pub fn open(kind: &BackendKind, ctx: &OpenCtx) -> Result<Opened> {
    REGISTRY
        .iter()
        .find_map(|r| (r.open)(kind, ctx))
        .unwrap_or_else(|| anyhow::bail!("no registered backend opens {}", kind.label()))
}

/// Where `kind` stands in [`REGISTRY`] (the order backends are opened in).
pub fn rank(kind: &BackendKind) -> usize {
    REGISTRY
        .iter()
        .position(|r| (r.parse)(&kind.label()).is_some_and(|p| p.is_ok()))
        .unwrap_or(REGISTRY.len())
}
