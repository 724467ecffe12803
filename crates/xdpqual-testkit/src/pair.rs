//! The engine and the host kernel side by side for one program, one packet
//! at a time: what `xdpqual::diff::run` does per packet, for callers that make
//! their packets themselves (property tests, generators) instead of
//! reading captures.

use anyhow::{Context, Result};

use xdpqual::backends::engine::possible_cpus;
use xdpqual::backends::host::{HostBackend, HostSession, RunFlags, SessionOutcome, XdpCtx};
use xdpqual::backends::host_run::{apply_maps_to_host, host_result};
use xdpqual::backends::{engine::run_packet, PacketResult, PacketSource};
use xdpqual::compare::{calls_nondeterministic_helper, packet_difference};
use xdpqual::diff::pin_to_cpu0;
use xdpqual::engine::helpers::ids::NONDETERMINISTIC;
use xdpqual::engine::{Engine, EngineConfig, Recorder};
use xdpqual::mapfile::{self, MapInit};
use xdpqual::program::{Object, Program};

/// Engine and kernel instances of one program, with the same map contents.
pub struct VmHostPair {
    engine: Engine,
    host: HostSession,
    /// The program calls a helper whose result the engine cannot know.
    nondet_prog: bool,
    ingress: u32,
}

/// Why a pair could not be made (not an error of the harness).
#[derive(Debug)]
pub enum PairOpen {
    Ready(Box<VmHostPair>),
    /// No usable host kernel (capabilities, syscall).
    Unavailable(String),
    /// The verifier refused the program.
    Rejected(String),
    /// This kernel's build does not offer a helper the program calls
    /// ([`Rejection::helper_not_offered`](xdpqual::backends::host::prog::Rejection::helper_not_offered)):
    /// nothing to compare with here, and not the program's fault.
    HelperNotOffered(String),
}

/// Both results for one packet.
#[derive(Debug)]
pub struct PairResult {
    pub vm: PacketResult,
    pub host: PacketResult,
    /// Why they differ; `None` when they agree.
    pub disagreement: Option<String>,
    /// They differ, but the engine's run used time or random numbers, so
    /// the difference says nothing about the engine.
    pub nondeterministic: bool,
}

impl std::fmt::Debug for VmHostPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmHostPair")
            .field("host", &self.host)
            .field("nondet_prog", &self.nondet_prog)
            .finish_non_exhaustive()
    }
}

impl VmHostPair {
    /// Prepares the engine, loads the program into the kernel and applies
    /// `maps` to both, as `diff` does.
    pub fn open(obj: &Object, program: &Program, maps: &[MapInit]) -> Result<PairOpen> {
        pin_to_cpu0();
        let host = match HostBackend::open() {
            Ok(h) => h,
            Err(u) => return Ok(PairOpen::Unavailable(u.to_string())),
        };
        let cfg = EngineConfig { ncpus: possible_cpus(), cpu: 0, ..Default::default() };
        let mut engine =
            Engine::new(obj, Some(&program.name), cfg).context("preparing the engine")?;
        mapfile::apply(&mut engine, obj, maps)?;
        let mut session = match host.load(obj, program).context("loading into the host kernel")? {
            SessionOutcome::Ready(s) => s,
            SessionOutcome::Rejected(r) => {
                let line = r
                    .rejection
                    .first_error_line
                    .clone()
                    .unwrap_or_else(|| format!("errno {}", r.rejection.errno));
                return Ok(if r.rejection.helper_not_offered().is_some() {
                    PairOpen::HelperNotOffered(format!(
                        "kernel {} does not offer a helper this program calls: {line}",
                        host.kernel_release()
                    ))
                } else {
                    PairOpen::Rejected(line)
                });
            }
        };
        apply_maps_to_host(&mut session, obj, maps)?;
        let nondet_prog = calls_nondeterministic_helper(&program.insns);
        Ok(PairOpen::Ready(Box::new(VmHostPair {
            engine,
            host: session,
            nondet_prog,
            ingress: XdpCtx::loopback().ingress_ifindex,
        })))
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn host(&self) -> &HostSession {
        &self.host
    }

    /// Runs one frame through both.
    pub fn run(&mut self, data: &[u8]) -> PairResult {
        let src = self.source(data);
        let mut rec = Recorder::new(0);
        let vm = run_packet(&mut self.engine, &src, &mut rec);
        let used_nondet = rec.helpers.iter().any(|(_, id)| NONDETERMINISTIC.contains(id));
        let ctx = XdpCtx { ingress_ifindex: self.ingress, rx_queue_index: 0, data_meta_len: 0 };
        let host = host_result(self.host.run(data, ctx, 1, RunFlags::default()));
        let disagreement = packet_difference(&vm, &host, false);
        let nondeterministic = disagreement.is_some() && self.nondet_prog && used_nondet;
        PairResult { vm, host, disagreement, nondeterministic }
    }

    /// The packet as both backends receive it.
    pub fn source(&self, data: &[u8]) -> PacketSource {
        PacketSource {
            data: data.to_vec(),
            ts_ns: 0,
            ingress_ifindex: self.ingress,
            rx_queue_index: 0,
        }
    }
}
