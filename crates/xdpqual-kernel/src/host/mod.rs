//! The host-kernel backend: the running kernel's verifier, JIT and
//! `BPF_PROG_TEST_RUN`.
//!
//! Design: the loader (built on aya-obj) parses and relocates an ELF object
//! once into [`Object`]/[`Program`]/[`MapDef`]. This backend does not parse
//! ELF again and does not use a BPF library: it creates maps from the same
//! `MapDef`s and loads the same `Program` instruction bytes through thin,
//! audited `bpf(2)` wrappers ([`crate::sys`]), changing nothing but map
//! references. So the engine and the kernel run exactly the same
//! instructions, a verifier message's instruction index is an index into
//! `Program::insns`, and the backend has no C dependency: it links
//! statically and runs unchanged as the test agent inside a QEMU guest.
//!
//! Everything a [`HostSession`] creates is owned by it (file descriptors in
//! `OwnedFd`s) and released when it is dropped, on error paths and panics
//! included; the kernel frees a program or map when its last fd closes.
//!
//! [`MapDef`]: xdpqual_object::MapDef

pub mod btf;
pub mod caps;
pub mod maps;
pub mod offload;
pub mod prog;
pub mod testrun;

pub use crate::sys::Errno;
pub use btf::{BtfUse, KernelBtf};
pub use caps::{Capability, Unavailable};
pub use maps::{KernelMap, MapDump, MapError};
pub use prog::{KernelProgram, LoadError, LoadOptions, LoadOutcome, LoadedInfo, Rejection};
pub use testrun::{LiveRunResult, RunFlags, TestRunError, TestRunResult, XdpCtx, XdpMdOut};

use crate::program::{MapType, Object, Program};
use crate::sys;

/// Errors of the backend itself (not verdicts about the program).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    #[error("{object}: {source}")]
    Map {
        object: String,
        #[source]
        source: MapError,
    },
    #[error("{object}: {source}")]
    Load {
        object: String,
        #[source]
        source: LoadError,
    },
    #[error("{object}: no program named `{name}` is loaded in this session (loaded: {loaded})")]
    NoSuchProgram { object: String, name: String, loaded: String },
    #[error("{object}: the object has no map `{name}`")]
    NoSuchMap { object: String, name: String },
    #[error("{object}: map `{name}` does not exist or is not a PROG_ARRAY")]
    NotProgArray { object: String, name: String },
    #[error("listing kernel BPF objects failed: {0} (BPF_*_GET_NEXT_ID needs CAP_SYS_ADMIN)")]
    Ids(Errno),
}

/// The running kernel, checked to accept and run XDP programs.
#[derive(Debug, Clone)]
pub struct HostBackend {
    release: String,
}

/// A load the verifier refused.
#[derive(Debug)]
pub struct Refused {
    pub program: String,
    pub rejection: Rejection,
}

/// The result of [`HostBackend::load`].
#[derive(Debug)]
pub enum SessionOutcome {
    Ready(HostSession),
    Rejected(Refused),
}

impl SessionOutcome {
    pub fn ready(self) -> Option<HostSession> {
        match self {
            SessionOutcome::Ready(s) => Some(s),
            SessionOutcome::Rejected(_) => None,
        }
    }
}

impl HostBackend {
    /// Checks capabilities and that a trivial program loads and runs.
    pub fn open() -> Result<HostBackend, Unavailable> {
        caps::check()?;
        let release = sys::kernel_release().unwrap_or_else(|e| format!("unknown (uname: {e})"));
        Ok(HostBackend { release })
    }

    /// `uname -r` of the kernel behind this backend.
    pub fn kernel_release(&self) -> &str {
        &self.release
    }

    /// Creates every map of `object`, then loads `program`. When the object
    /// has a PROG_ARRAY, its other programs are loaded too (so tail calls
    /// have targets), but the array is left empty until the caller fills it
    /// with [`HostSession::set_tail_call`].
    pub fn load(&self, object: &Object, program: &Program) -> Result<SessionOutcome, HostError> {
        let with_others = object.maps.iter().any(|m| m.map_type == MapType::ProgArray);
        self.load_programs(object, program, with_others)
    }

    /// As [`load`](Self::load), loading every program of the object whether
    /// or not it has a PROG_ARRAY. The first program is the session's main one.
    pub fn load_all_programs(&self, object: &Object) -> Result<SessionOutcome, HostError> {
        match object.programs.first() {
            Some(first) => self.load_programs(object, first, true),
            None => Err(HostError::Load {
                object: object.path.display().to_string(),
                source: LoadError::Empty { program: "(the object has no programs)".to_string() },
            }),
        }
    }

    fn load_programs(
        &self,
        object: &Object,
        main: &Program,
        with_others: bool,
    ) -> Result<SessionOutcome, HostError> {
        let obj_name = object.path.display().to_string();
        let maps = object
            .maps
            .iter()
            .map(KernelMap::create)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| HostError::Map { object: obj_name.clone(), source })?;
        // Map-in-map slots the object initialises statically, once every
        // map exists (libbpf's init_map_in_map_slots).
        for (outer, def) in maps.iter().zip(&object.maps) {
            if !def.map_type.is_map_in_map() {
                continue;
            }
            for (slot, target) in &def.init_slots {
                let inner = maps.iter().find(|m| &m.def().name == target).ok_or_else(|| {
                    HostError::NoSuchMap { object: obj_name.clone(), name: target.clone() }
                })?;
                outer
                    .set_inner(&slot.to_ne_bytes(), inner)
                    .map_err(|source| HostError::Map { object: obj_name.clone(), source })?;
            }
        }
        let opts = LoadOptions { license: object.license.clone(), ..LoadOptions::default() };
        let btf = KernelBtf::load(&object.btf);
        let load = |p: &Program| {
            KernelProgram::load_with_btf(p, &maps, &opts, btf.as_ref().map_err(|e| e.as_str()))
                .map_err(|source| HostError::Load { object: obj_name.clone(), source })
        };
        let main_prog = match load(main)? {
            LoadOutcome::Loaded(p) => p,
            LoadOutcome::Rejected(rejection) => {
                return Ok(SessionOutcome::Rejected(Refused {
                    program: main.name.clone(),
                    rejection,
                }))
            }
        };
        let mut programs = vec![main_prog];
        let mut rejected_others = Vec::new();
        if with_others {
            for p in object.programs.iter().filter(|p| p.name != main.name) {
                match load(p)? {
                    LoadOutcome::Loaded(k) => programs.push(k),
                    LoadOutcome::Rejected(rejection) => {
                        rejected_others.push(Refused { program: p.name.clone(), rejection })
                    }
                }
            }
        }
        let session = HostSession { object: obj_name, programs, maps, rejected_others };
        // PROG_ARRAY slots the object initialises statically, once the
        // programs are loaded (libbpf's init_prog_array_slots). A target
        // the verifier refused leaves its slot empty.
        for def in object.maps.iter().filter(|d| d.map_type == MapType::ProgArray) {
            for (slot, target) in &def.init_slots {
                if session.program_named(target).is_some() {
                    session.set_tail_call(&def.name, *slot, target)?;
                }
            }
        }
        Ok(SessionOutcome::Ready(session))
    }
}

/// Maps and programs of one object, live in the kernel until dropped.
#[derive(Debug)]
pub struct HostSession {
    object: String,
    /// The main program first.
    programs: Vec<KernelProgram>,
    /// In `Object::maps` order, so map indices carry over, then the inner
    /// maps added with [`HostSession::add_map`].
    maps: Vec<KernelMap>,
    rejected_others: Vec<Refused>,
}

impl HostSession {
    /// The program the session was opened for.
    pub fn program(&self) -> &KernelProgram {
        &self.programs[0]
    }

    pub fn programs(&self) -> &[KernelProgram] {
        &self.programs
    }

    pub fn program_named(&self, name: &str) -> Option<&KernelProgram> {
        self.programs.iter().find(|p| p.name() == name)
    }

    /// Other programs of the object the verifier refused (tail-call targets
    /// that will be missing).
    pub fn rejected_others(&self) -> &[Refused] {
        &self.rejected_others
    }

    /// Maps in `Object::maps` order.
    pub fn maps(&self) -> &[KernelMap] {
        &self.maps
    }

    pub fn map_named(&self, name: &str) -> Option<&KernelMap> {
        self.maps.iter().find(|m| m.def().name == name)
    }

    /// Adds a map made after loading (an inner map for a map-in-map slot);
    /// it is listed after the object's maps, in the order added.
    pub fn add_map(&mut self, map: KernelMap) -> usize {
        self.maps.push(map);
        self.maps.len() - 1
    }

    /// Puts program `target` into slot `slot` of PROG_ARRAY `map`.
    pub fn set_tail_call(&self, map: &str, slot: u32, target: &str) -> Result<(), HostError> {
        let array =
            self.map_named(map).filter(|m| m.def().map_type == MapType::ProgArray).ok_or_else(
                || HostError::NotProgArray { object: self.object.clone(), name: map.to_string() },
            )?;
        let prog = self.program_named(target).ok_or_else(|| HostError::NoSuchProgram {
            object: self.object.clone(),
            name: target.to_string(),
            loaded: self.programs.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        })?;
        array
            .set_prog(slot, std::os::fd::AsFd::as_fd(prog.fd()))
            .map_err(|source| HostError::Map { object: self.object.clone(), source })
    }

    /// Runs one frame through the main program.
    pub fn run(
        &self,
        packet: &[u8],
        ctx: XdpCtx,
        repeat: u32,
        flags: RunFlags,
    ) -> Result<TestRunResult, TestRunError> {
        testrun::test_run(self.program(), packet, ctx, repeat, flags)
    }

    /// Kernel ids of this session's programs and maps, for leak checks.
    pub fn kernel_ids(&self) -> Result<(Vec<u32>, Vec<u32>), HostError> {
        let progs = self.programs.iter().map(|p| p.info().id).collect();
        let maps = self
            .maps
            .iter()
            .map(|m| m.id())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| HostError::Map { object: self.object.clone(), source })?;
        Ok((progs, maps))
    }
}

fn all_ids(next: fn(u32) -> Result<Option<u32>, Errno>) -> Result<Vec<u32>, HostError> {
    let mut ids = Vec::new();
    let mut at = 0;
    while let Some(id) = next(at).map_err(HostError::Ids)? {
        ids.push(id);
        at = id;
    }
    Ok(ids)
}

/// Ids of every BPF program loaded in the kernel (by anyone).
pub fn kernel_program_ids() -> Result<Vec<u32>, HostError> {
    all_ids(sys::prog_get_next_id)
}

/// Ids of every BPF map in the kernel (by anyone).
pub fn kernel_map_ids() -> Result<Vec<u32>, HostError> {
    all_ids(sys::map_get_next_id)
}

/// How many BPF programs the kernel holds, walked with BPF_PROG_GET_NEXT_ID.
pub fn count_kernel_programs() -> Result<usize, HostError> {
    kernel_program_ids().map(|ids| ids.len())
}
