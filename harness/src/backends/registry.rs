//! Backend names (`--backends vm,rbpf,host,nic:PROFILE,live:IFACE`) and how
//! each is opened: one [`Registration`] per backend in [`REGISTRY`]. Adding
//! a backend is its own module implementing [`super::Backend`] plus one line
//! here (see CONTRIBUTING.md).

use anyhow::Result;

pub use super::kind::{BackendKind, Registration};
use super::OpenCtx;
use super::Opened;

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
