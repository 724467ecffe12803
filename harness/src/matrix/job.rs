//! The packets and map contents of a matrix run, turned into the job every
//! guest runs and into the engine's reference results.

use super::protocol::{Job, JobCore, JobProgram, MapWrite, TailCall};
use crate::backends::{engine::run_packet, PacketResult, PacketSource};
use crate::capture::CaptureReader;
use crate::compare::carried::CarriedNondeterminism;
use crate::engine::maps::entry_writes;
use crate::engine::{Engine, EngineConfig, KernelRelease};
use crate::isa::{self, ByteOrder};
use crate::loader::{LoadOptions, ProgType, TargetBtf};
use crate::mapfile::{self, MapInit};
use crate::program::{MapType, Object, Program};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The guest's loopback device: test-run without a device argument uses
/// it, and it is always ifindex 1 in a fresh network namespace.
pub const GUEST_IFINDEX: u32 = 1;

/// One input frame and where it came from.
#[derive(Clone, Debug)]
pub struct Input {
    pub capture: String,
    pub index: u64,
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Reads up to `limit` packets (over all captures, in order).
pub fn read_inputs(
    captures: &[PathBuf],
    limit: Option<usize>,
) -> Result<(Vec<Input>, Vec<String>)> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    'all: for path in captures {
        let reader = CaptureReader::open(path)
            .with_context(|| format!("opening capture {}", path.display()))?;
        for item in reader {
            if limit.is_some_and(|l| out.len() >= l) {
                break 'all;
            }
            match item {
                Ok(p) => out.push(Input {
                    capture: path.display().to_string(),
                    index: p.index,
                    ts_ns: p.ts_ns,
                    data: p.data,
                }),
                Err(e) => {
                    errors.push(e.to_string());
                    break;
                }
            }
        }
    }
    Ok((out, errors))
}

fn job_program(p: &Program) -> JobProgram {
    JobProgram {
        name: p.name.clone(),
        section: p.section.clone(),
        frags: p.frags,
        insns: isa::encode_le(&p.insns),
    }
}

/// The object as the engine must run it for a guest whose memory is
/// big-endian (`big`) or little-endian: the guest kernel runs any
/// instruction stream with its own byte order, whatever the object was
/// built for, so a `bpfel` object on s390x is compared with the engine's
/// big-endian mode too. Only the object's byte order changes: its
/// instructions are decoded already, and its data sections are raw bytes
/// both sides use as they are.
pub fn engine_object(obj: &Object, big: bool) -> std::borrow::Cow<'_, Object> {
    let order = if big { ByteOrder::Big } else { ByteOrder::Little };
    if obj.byte_order == order {
        return std::borrow::Cow::Borrowed(obj);
    }
    // `Engine::new` takes the byte order from the object.
    let mut o = obj.clone();
    o.byte_order = order;
    std::borrow::Cow::Owned(o)
}

/// The job: the program under test first, then the object's other
/// programs (tail-call targets), the map writes the map files ask for,
/// encoded for a guest of byte order `big` (map files give integers; the
/// bytes the guest gets are in its own order).
pub fn build(
    obj: &Object,
    program: &Program,
    maps: &[MapInit],
    inputs: &[Input],
    rx_queue_index: u32,
    big: bool,
) -> Result<Job> {
    let mut programs = vec![job_program(program)];
    programs.extend(obj.programs.iter().filter(|p| p.name != program.name).map(job_program));
    // The map files are applied to a scratch engine, the same parser the
    // engine itself uses, and what changed is copied into the job (as the
    // `diff` command does for the host kernel).
    let obj = &*engine_object(obj, big);
    let u32_of = |b: &[u8]| -> u32 {
        let b: [u8; 4] = b[..4].try_into().expect("4 bytes");
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut scratch =
        Engine::new(obj, None, EngineConfig::default()).context("preparing map contents")?;
    let before: Vec<_> = scratch.maps().maps.iter().map(|m| m.sparse_entries()).collect();
    mapfile::apply(&mut scratch, obj, maps)?;
    let names: Vec<String> = scratch.program_names().map(str::to_string).collect();
    // Inner maps made by map files would have to be created in the guest
    // and their fds put into the outer slots; the job format carries map
    // writes only. Static slots (from the object) need nothing here: the
    // guest's loader fills them as the host's does.
    let set = scratch.maps();
    if let Some((_, m)) = set.maps[..set.objects]
        .iter()
        .enumerate()
        .find(|(i, m)| m.def.map_type.is_map_in_map() && m.sparse_entries() != before[*i])
    {
        anyhow::bail!(
            "map file for map-in-map '{}': matrix cells do not take inner maps from --map files \
             yet (use diff --backends vm,host, or slots the object initialises statically)",
            m.def.name
        );
    }
    let mut map_writes = Vec::new();
    let mut tail_calls = Vec::new();
    for (i, m) in scratch.maps().maps.iter().enumerate() {
        let after = m.sparse_entries();
        if m.def.map_type == MapType::ProgArray {
            for e in after {
                // PROG_ARRAY keys and values are 4 bytes (the loader checks).
                let slot = u32_of(&e.key);
                let target = u32_of(&e.values[0]) as usize;
                tail_calls.push(TailCall {
                    map: m.def.name.clone(),
                    slot,
                    target: names[target].clone(),
                });
            }
            continue;
        }
        for e in entry_writes(m.def.map_type, &before[i], &after) {
            let percpu = m.def.map_type.is_percpu();
            let mut value = e.values[0].clone();
            if percpu {
                // The syscall's per-CPU slots are 8-byte aligned.
                value.resize(value.len().div_ceil(8) * 8, 0);
            }
            map_writes.push(MapWrite { map: i, key: e.key, value, per_cpu_broadcast: percpu });
        }
    }
    Ok(Job {
        license: obj.license.clone(),
        programs,
        maps: obj.maps.clone(),
        map_writes,
        tail_calls,
        rx_queue_index,
        packets: inputs.iter().map(|p| p.data.clone()).collect(),
        offload: None,
        core: None,
    })
}

/// The object for the guests to relocate, when the program needs it: the
/// object's CO-RE relocations are resolved in each cell against that
/// cell kernel's own BTF (`load` is how the caller loaded `obj`). `None`
/// when the object has no CO-RE relocations, and when the user chose a
/// target BTF (`--btf FILE`): every cell then runs the bytes relocated
/// against that file, as the engine does.
pub fn core_job(obj: &Object, load: &LoadOptions) -> Result<Option<JobCore>> {
    if load.target_btf != TargetBtf::Host || obj.path.as_os_str().is_empty() {
        return Ok(None);
    }
    // An object built in memory (assembled) has no file and no relocations.
    let Ok(bytes) = xdpqual_object::input::read_limited(
        &obj.path,
        "BPF object",
        xdpqual_object::input::MAX_OBJECT_BYTES,
    ) else {
        return Ok(None);
    };
    let loaded = crate::loader::inspect_object_bytes_with(&bytes, &obj.path, load)
        .with_context(|| format!("reading the CO-RE relocations of {}", obj.path.display()))?;
    if loaded.core_relocations.is_empty() {
        return Ok(None);
    }
    Ok(Some(JobCore {
        object: bytes,
        select: load.select.clone(),
        force_xdp: load.prog_type == Some(ProgType::Xdp),
        map_sizes: load.map_sizes.clone(),
    }))
}

/// `obj` with the instructions a guest relocated (in job order: the
/// program under test first, then the others, as [`build`] lists them),
/// and the program under test in it.
pub fn relocated(obj: &Object, program: &Program, insns: &[Vec<u8>]) -> Result<(Object, Program)> {
    let mut order = vec![program.name.clone()];
    order.extend(obj.programs.iter().filter(|p| p.name != program.name).map(|p| p.name.clone()));
    anyhow::ensure!(
        insns.len() == order.len(),
        "the guest relocated {} programs, the job has {}",
        insns.len(),
        order.len()
    );
    let mut out = obj.clone();
    for (name, bytes) in order.iter().zip(insns) {
        let p = out.programs.iter_mut().find(|p| &p.name == name).expect("named from obj");
        let decoded = isa::decode_le(bytes)
            .map_err(|e| anyhow::anyhow!("the guest's relocated program {name}: {e}"))?;
        anyhow::ensure!(
            decoded.len() == p.insns.len(),
            "the guest's relocated program {name} has {} instructions, the host's {}",
            decoded.len(),
            p.insns.len()
        );
        p.insns = decoded;
    }
    let main = out.programs.iter().find(|p| p.name == program.name).expect("kept").clone();
    Ok((out, main))
}

/// The engine's result for each input, and whether the packet's result
/// came from a helper the engine cannot know (time, random numbers).
pub struct Reference {
    pub results: Vec<PacketResult>,
    pub nondeterministic: Vec<bool>,
    /// The engine's maps after the run (the engine itself, with JIT code,
    /// is not shared across the cell threads).
    pub maps: crate::engine::MapSet,
}

/// What of a guest the engine reference must model: its possible CPUs
/// (per-CPU map slots), its kernel release (helper semantics), its memory
/// order and its architecture (test-run's linear area). One reference
/// serves every cell that agrees on all four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GuestModel {
    pub ncpus: usize,
    pub kernel: KernelRelease,
    pub big: bool,
    pub arch: crate::engine::Arch,
}

/// Runs the inputs through the engine as CPU 0 of the guest `guest`.
pub fn reference(
    obj: &Object,
    program: &Program,
    maps: &[MapInit],
    inputs: &[Input],
    guest: GuestModel,
    rx_queue_index: u32,
) -> Result<Reference> {
    let GuestModel { ncpus, kernel, big, arch } = guest;
    let obj = &*engine_object(obj, big);
    let cfg = EngineConfig { ncpus, cpu: 0, kernel, arch, ..Default::default() };
    let mut engine = Engine::new(obj, Some(&program.name), cfg).context("preparing the engine")?;
    mapfile::apply(&mut engine, obj, maps)?;
    let mut results = Vec::with_capacity(inputs.len());
    let mut nondeterministic = Vec::with_capacity(inputs.len());
    let mut carried = CarriedNondeterminism::new(&engine);
    for p in inputs {
        let src = PacketSource {
            data: p.data.clone(),
            ts_ns: p.ts_ns,
            ingress_ifindex: GUEST_IFINDEX,
            rx_queue_index,
        };
        results.push(run_packet(&mut engine, &src, &mut carried));
        nondeterministic.push(carried.end_run());
    }
    Ok(Reference { results, nondeterministic, maps: engine.maps().clone() })
}

/// True when the program calls a helper whose result the engine cannot
/// reproduce.
pub fn calls_nondeterministic(program: &Program) -> bool {
    crate::compare::calls_nondeterministic_helper(&program.insns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn corpus(name: &str) -> Object {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/build").join(name);
        crate::loader::load_object(&p).unwrap()
    }

    #[test]
    fn only_objects_with_core_relocations_are_sent_to_the_guests() {
        let plain = corpus("firewall.v3.o");
        assert!(core_job(&plain, &LoadOptions::default()).unwrap().is_none());
        let core = corpus("core.v3.o");
        let job = core_job(&core, &LoadOptions::default()).unwrap().expect("core.c relocates");
        assert_eq!(job.object, std::fs::read(&core.path).unwrap());
        assert!(!job.force_xdp && job.select.is_none());
        // `--btf FILE`: every cell runs the bytes relocated against FILE.
        let chosen =
            LoadOptions { target_btf: TargetBtf::File("/x/vmlinux".into()), ..Default::default() };
        assert!(core_job(&core, &chosen).unwrap().is_none());
    }

    #[test]
    fn a_guest_relocation_replaces_instructions_by_job_order() {
        let obj = corpus("dispatcher.v3.o");
        let main = obj.program(None).unwrap().clone();
        let job = build(&obj, &main, &[], &[], 0, false).unwrap();
        let mut insns: Vec<Vec<u8>> = job.programs.iter().map(|p| p.insns.clone()).collect();
        let (same, prog) = relocated(&obj, &main, &insns).unwrap();
        assert_eq!(prog.insns, main.insns);
        assert!(same.programs.iter().zip(&obj.programs).all(|(a, b)| a.insns == b.insns));
        // A changed immediate arrives; a changed length or count is refused.
        insns[0][4] ^= 1;
        let (_, prog) = relocated(&obj, &main, &insns).unwrap();
        assert_ne!(prog.insns, main.insns);
        let n = insns[0].len() - 8;
        insns[0].truncate(n);
        assert!(relocated(&obj, &main, &insns).is_err());
        assert!(relocated(&obj, &main, &insns[..1]).is_err());
    }
}
