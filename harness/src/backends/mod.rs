//! The places a program can run. Each backend takes the loader's
//! [`crate::program::Program`] form and reports, per packet, a
//! [`PacketResult`] in the same terms, so the diff can compare them.
//!
//! - [`engine`]: `vm`, our interpreter;
//! - [`rbpf`]: the rbpf crate, as an independent second engine;
//! - [`host`]: the running kernel through `BPF_PROG_TEST_RUN` (it lives in
//!   the kernel layer, crate `xdpqual-kernel`, which the QEMU guest agent
//!   shares; [`host_run`] is its diff backend);
//! - [`nic`]: an offload profile's emulated datapath;
//! - [`live`]: a real interface.
//!
//! Each implements [`Backend`] and is named and opened through
//! [`registry`]. Backends import nothing above them (diff, replay's
//! runners, qualify, the CLI); what they share with those is in
//! [`crate::compare`]. The one exception is `mapfile` (`--map`
//! files), which depends only on the engine and the loader.

pub mod engine;
pub mod fib_netns;
pub use xdpqual_kernel::host;
pub mod host_run;
pub mod kind;
pub mod live;
pub mod nic;
#[cfg(test)]
pub mod null;
pub mod rbpf;
pub mod registry;

/// The terms every backend reports in, defined with the comparison (in
/// [`crate::compare`]) so that it depends on nothing that runs backends.
pub use crate::compare::{MapContents, PacketResult, PacketSource};

/// What a backend did with one packet, with what the diff needs besides the
/// result.
#[derive(Clone, Debug)]
pub struct Ran {
    pub result: PacketResult,
    /// For a backend that emulates an offload profile: the profile's rules
    /// that made this packet differ from the engine (empty: none applied).
    /// `None` for a backend that has no such rules, whose every difference
    /// from the engine is a mismatch.
    pub rules: Option<Vec<nic::Applied>>,
}

impl Ran {
    /// A result with no offload rules to explain it.
    pub fn plain(result: PacketResult) -> Ran {
        Ran { result, rules: None }
    }
}

/// How a backend's maps take part in the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapsCompared {
    /// At the end of the run, against the engine's; differences are map
    /// mismatches (the host kernel).
    AtEnd,
    /// After every packet, ordinary (not per-CPU) maps only, to tell a
    /// difference its profile's rules left behind from a new one (NIC
    /// models, whose per-CPU maps differ by construction).
    PerPacket,
    /// Not compared (the backend has no maps).
    Never,
}

/// What a backend says about itself.
#[derive(Clone, Debug)]
pub struct Description {
    /// The name its results are filed under (`vm`, `host`, `nic:PROFILE`).
    pub label: String,
    /// The kernel release it runs on, for kernel backends.
    pub kernel: Option<String>,
    /// The program as the kernel rewrote it, where it can be read back.
    pub xlated: Option<Vec<crate::isa::Insn>>,
    pub maps: MapsCompared,
    /// The other side in map-difference messages ("the kernel").
    pub maps_side: String,
}

/// What a backend hands back when it is released.
#[derive(Clone, Debug, Default)]
pub struct Released {
    /// Per-queue counters, for backends that model queues.
    pub queue_counters: Option<Vec<nic::QueueCounters>>,
}

/// A place a program runs, opened for one program with its maps. The diff
/// runs every packet through each open backend and compares the results
/// with the engine's (see [`registry`] for how backends are named and
/// opened, and CONTRIBUTING.md for adding one).
pub trait Backend {
    /// Its label, kernel and how its maps are compared.
    fn describe(&self) -> Description;
    /// Runs one packet.
    fn run(&mut self, pkt: &PacketSource) -> Ran;
    /// Runs packets in order; backends with a cheaper batch path override it.
    fn run_batch(&mut self, pkts: &[PacketSource]) -> Vec<Ran> {
        pkts.iter().map(|p| self.run(p)).collect()
    }
    /// Its maps as they are now (see [`Description::maps`]).
    fn dump_maps(&self) -> Vec<MapContents>;
    /// Ends the run; kernel objects, sockets and the like are freed here at
    /// the latest.
    fn release(self: Box<Self>) -> Released;
}

/// Everything a backend is opened with.
pub struct OpenCtx<'a> {
    pub obj: &'a crate::program::Object,
    pub program: &'a crate::program::Program,
    /// Map contents to load before the first packet (`--map`).
    pub maps: &'a [crate::mapfile::MapInit],
    /// `--fib`: the forwarding table of the engine's `bpf_fib_lookup`.
    pub fib: Option<std::sync::Arc<crate::engine::fib::Fib>>,
    /// The engine's conntrack table setup ([`crate::conntrackfile`]).
    pub conntrack: Option<std::sync::Arc<crate::engine::conntrack::Setup>>,
}

/// The outcome of opening a backend.
pub enum Opened {
    Ready(Box<dyn Backend>),
    /// The backend takes no part, and why; `kernel`: the release it found.
    Skipped {
        reason: String,
        kernel: Option<String>,
    },
    /// The engine, which the diff always runs as its reference.
    Reference,
    /// A backend that runs the captures itself after the per-packet pass
    /// (`live:`, see `diff::live`).
    WholeRun,
}
