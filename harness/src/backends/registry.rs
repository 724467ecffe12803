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
///
/// A big-endian (`bpfeb`) object runs only on the engine (`vm`), which has a
/// big-endian mode: rbpf, this host's kernel, the NIC model and live
/// interfaces are little-endian machines, where the program's loads and
/// stores would mean something else. They are skipped with that reason
/// (the s390x matrix cell runs such objects on a big-endian kernel).
pub fn open(kind: &BackendKind, ctx: &OpenCtx) -> Result<Opened> {
    if ctx.obj.byte_order.is_big() && *kind != BackendKind::Vm {
        return Ok(Opened::Skipped {
            reason: format!(
                "{} runs little-endian programs and {} is a big-endian (bpfeb) object; \
                 only the engine (vm) has a big-endian mode here",
                kind.label(),
                ctx.obj.path.display()
            ),
            kernel: None,
        });
    }
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
