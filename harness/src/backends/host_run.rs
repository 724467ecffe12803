//! The host kernel as a diff backend (kept out of `xdpqual_kernel::host`,
//! which the guest agent shares and which knows nothing of the engine or
//! the diff): the program loaded through
//! `BPF_PROG_LOAD` (a verifier rejection is a skip with the verifier's
//! first error and its source line), `--map` contents written into the
//! kernel maps, then every packet through `BPF_PROG_TEST_RUN`.

use anyhow::{Context, Result};

use crate::backends::host::{
    HostBackend, HostSession, KernelMap, MapDump, RunFlags, SessionOutcome, TestRunError,
    TestRunResult, XdpCtx,
};
use crate::backends::kind::{BackendKind, Registration};
use crate::backends::{
    Backend, Description, MapContents, MapsCompared, OpenCtx, Opened, PacketResult, PacketSource,
    Ran, Released,
};
use crate::engine::maps::entry_writes;
use crate::engine::{Engine, EngineConfig};
use crate::mapfile::{self, MapInit};
use crate::program::{MapType, Object};
use crate::verdict::{Verdict, XdpAction};

pub struct HostRun {
    session: HostSession,
    kernel: String,
}

/// A test-run result as a [`PacketResult`]; a refusal of this one packet
/// (its size, say) is NOT_RUN, anything else an error.
pub fn host_result(r: Result<TestRunResult, TestRunError>) -> PacketResult {
    let (verdict, output, duration_ns) = match r {
        Ok(t) => (
            Verdict::Action { action: XdpAction::from_retval(t.retval) },
            t.data_out,
            Some(t.duration_ns as u64),
        ),
        Err(e) if e.is_per_packet() => (Verdict::NotRun { reason: e.to_string() }, vec![], None),
        Err(e) => (Verdict::Error { message: e.to_string() }, vec![], None),
    };
    PacketResult { verdict, output, events: Vec::new(), redirect: None, insns: None, duration_ns }
}

/// The session's maps as a backend reports them; maps without key/value
/// contents (see [`MapDump`]) are left out. A map-in-map slot reads back
/// from the kernel as the inner map's id (kernel/bpf/map_in_map.c
/// `bpf_map_fd_sys_lookup_elem`); it is reported as the inner map's
/// position in the session's map list, which is the engine's index for
/// the same map (both make the object's maps, then the inner maps in the
/// same order), so the two sides compare.
pub fn session_maps(s: &HostSession) -> Vec<MapContents> {
    let ids: Vec<Option<u32>> = s.maps().iter().map(|m| m.id().ok()).collect();
    let position = |v: &[u8]| -> Vec<u8> {
        let id = v.get(..4).map(|b| u32::from_ne_bytes(b.try_into().expect("4")));
        match ids.iter().position(|i| i.is_some() && *i == id) {
            Some(p) => (p as u32).to_le_bytes().to_vec(),
            // A map this session did not make: keep the raw id.
            None => v.to_vec(),
        }
    };
    s.maps()
        .iter()
        .filter_map(|km| {
            let in_map = km.def().map_type.is_map_in_map();
            let entries = match km.dump() {
                Ok(MapDump::Plain(v)) => Ok(v
                    .into_iter()
                    .map(|(k, v)| (k, vec![if in_map { position(&v) } else { v }]))
                    .collect()),
                Ok(MapDump::PerCpu(v)) => Ok(v),
                Ok(_) => return None,
                Err(err) => Err(format!("cannot dump kernel map: {err}")),
            };
            Some(MapContents {
                name: km.def().name.clone(),
                percpu: km.def().map_type.is_percpu(),
                entries,
            })
        })
        .collect()
}

/// Writes `maps` (`--map` files) into the session's kernel maps: parsed by
/// a scratch engine exactly as the engine's own, then copied entry by entry
/// (PROG_ARRAY slots become tail-call links; inner maps the files make are
/// created in the kernel in the engine's order, filled, and put in their
/// outer maps' slots by fd).
pub fn apply_maps_to_host(s: &mut HostSession, obj: &Object, maps: &[MapInit]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    // As many CPUs as the kernel's per-CPU values have (one per possible
    // CPU), so a single value in a map file fills every CPU, as it does in
    // the engine, and a per-CPU list keeps its order.
    let cfg =
        EngineConfig { ncpus: crate::backends::engine::possible_cpus(), ..EngineConfig::default() };
    let mut scratch = Engine::new(obj, None, cfg)?;
    let before: Vec<_> = scratch.maps().maps.iter().map(|m| m.sparse_entries()).collect();
    mapfile::apply(&mut scratch, obj, maps)?;
    let set = scratch.maps();
    // Inner maps first, so the outer slots can take their fds.
    for m in &set.maps[set.objects..] {
        let km = KernelMap::create(&m.def)
            .with_context(|| format!("creating inner map {} in the kernel", m.def.name))?;
        s.add_map(km);
    }
    for (i, m) in set.maps.iter().enumerate() {
        if m.def.map_type == MapType::ProgArray {
            let names: Vec<&str> = scratch.program_names().collect();
            for e in m.entries() {
                let slot = u32::from_le_bytes(e.key[..4].try_into().expect("4"));
                let target = u32::from_le_bytes(e.values[0][..4].try_into().expect("4")) as usize;
                s.set_tail_call(&m.def.name, slot, names[target])
                    .with_context(|| format!("filling PROG_ARRAY {}", m.def.name))?;
            }
            continue;
        }
        let after = m.sparse_entries();
        let writes = match before.get(i) {
            Some(b) => entry_writes(m.def.map_type, b, &after),
            None => after,
        };
        if writes.is_empty() {
            continue;
        }
        let km = s.maps().get(i).with_context(|| format!("kernel map {}", m.def.name))?;
        for e in writes {
            if m.def.map_type.is_map_in_map() {
                let inner = set.inner_of(i, &e.values[0]).expect("engine slots hold its maps");
                km.set_inner(&e.key, &s.maps()[inner])
                    .with_context(|| format!("filling map-in-map {}", m.def.name))?;
                continue;
            }
            let mut v = Vec::new();
            if m.def.map_type.is_percpu() {
                for cpu in &e.values {
                    let mut c = cpu.clone();
                    c.resize((c.len() + 7) & !7, 0);
                    v.extend(c);
                }
            } else {
                v = e.values[0].clone();
            }
            km.update(&e.key, &v).with_context(|| format!("updating kernel map {}", m.def.name))?;
        }
    }
    Ok(())
}

/// `xdp/devmap` and `xdp/cpumap` programs load (the verifier checks them
/// for their map, with expected_attach_type BPF_XDP_DEVMAP/BPF_XDP_CPUMAP),
/// but BPF_PROG_TEST_RUN refuses to run them: net/bpf/test_run.c
/// `bpf_prog_test_run_xdp` returns -EINVAL for either attach type before it
/// looks at the frame. One run of a minimal frame asks the running kernel;
/// when it refuses with EINVAL the host cannot be compared, and says why.
fn map_program_refused(
    s: &HostSession,
    program: &crate::program::Program,
    kernel: &str,
) -> Option<String> {
    use crate::loader::XdpAttach;
    let what = match XdpAttach::of_section(&program.section) {
        XdpAttach::Interface => return None,
        XdpAttach::Devmap => "a devmap program (expected_attach_type BPF_XDP_DEVMAP)",
        XdpAttach::Cpumap => "a cpumap program (expected_attach_type BPF_XDP_CPUMAP)",
    };
    // 60 bytes: a minimum Ethernet frame without FCS.
    let ctx = XdpCtx { ingress_ifindex: 1, rx_queue_index: 0, data_meta_len: 0 };
    match s.run(&[0u8; 60], ctx, 1, RunFlags::default()) {
        Err(TestRunError::Refused { errno, .. } | TestRunError::Kernel { errno })
            if errno.0 == libc::EINVAL =>
        {
            Some(format!(
                "the kernel ({kernel}) loads `{}` as {what} but BPF_PROG_TEST_RUN refuses to run \
                 it (EINVAL: test-run does not run devmap or cpumap programs, net/bpf/test_run.c \
                 bpf_prog_test_run_xdp), so the host cannot be compared",
                program.section
            ))
        }
        _ => None,
    }
}

fn open(ctx: &OpenCtx) -> Result<Opened> {
    let host = match HostBackend::open() {
        Err(u) => return Ok(Opened::Skipped { reason: format!("unavailable: {u}"), kernel: None }),
        Ok(h) => h,
    };
    let kernel = host.kernel_release().to_string();
    let (obj, program) = (ctx.obj, ctx.program);
    match host.load(obj, program).context("loading into the host kernel")? {
        SessionOutcome::Ready(mut session) => {
            apply_maps_to_host(&mut session, obj, ctx.maps)?;
            match map_program_refused(&session, program, &kernel) {
                Some(reason) => Ok(Opened::Skipped { reason, kernel: Some(kernel) }),
                None => Ok(Opened::Ready(Box::new(HostRun { session, kernel }))),
            }
        }
        SessionOutcome::Rejected(r) => {
            let line = r
                .rejection
                .insn
                .and_then(|i| program.lines.lookup(i))
                .map(|l| format!(" at {}:{}", l.file, l.line))
                .unwrap_or_default();
            let reason = match r.rejection.helper_not_offered() {
                // The kernel's build lacks a helper the program needs: the
                // comparison cannot run on this kernel (a gate that needs it
                // fails as "could not run").
                Some(helper) => format!(
                    "kernel {kernel} does not offer {helper} to XDP programs{line}, so the program cannot load here (verifier: {})",
                    r.rejection.first_error_line.as_deref().unwrap_or_default()
                ),
                None => format!(
                    "rejected by verifier (kernel {kernel}){line}: {}",
                    r.rejection
                        .first_error_line
                        .clone()
                        .unwrap_or_else(|| format!("errno {}", r.rejection.errno))
                ),
            };
            Ok(Opened::Skipped { reason, kernel: Some(kernel) })
        }
    }
}

impl Backend for HostRun {
    fn describe(&self) -> Description {
        Description {
            label: "host".into(),
            kernel: Some(self.kernel.clone()),
            // Unreadable without CAP_BPF/CAP_SYS_ADMIN.
            xlated: self.session.program().xlated().ok(),
            maps: MapsCompared::AtEnd,
            maps_side: "the kernel".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        let ctx = XdpCtx {
            ingress_ifindex: pkt.ingress_ifindex,
            rx_queue_index: pkt.rx_queue_index,
            data_meta_len: 0,
        };
        // test-run does not report where a redirect went.
        Ran::plain(host_result(self.session.run(&pkt.data, ctx, 1, RunFlags::default())))
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        session_maps(&self.session)
    }
    fn release(self: Box<Self>) -> Released {
        // Dropping the session closes its program and map descriptors.
        Released::default()
    }
}

pub const REGISTRATION: Registration = Registration {
    syntax: Some("host"),
    parse: |s| (s == "host").then_some(Ok(BackendKind::Host)),
    open: |k, ctx| (*k == BackendKind::Host).then(|| open(ctx)),
};
