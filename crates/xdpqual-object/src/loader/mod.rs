//! BPF ELF objects into [`Object`]s: linked XDP programs, map definitions
//! and line info, checked the way the kernel checks a program before it
//! simulates it.
//!
//! The pipeline: ELF checks of our own ([`elf`]), then aya-obj parses and
//! links (maps, BPF-to-BPF calls), then line info ([`lines`]) and static
//! checks ([`validate`]).

mod btf_info;
pub mod core;
mod elf;
mod error;
pub mod externs;
pub mod kfuncs;
pub mod ksyms;
mod legacy;
mod lines;
mod link;
mod maps;
pub mod sections;
mod swap;
pub mod validate;

pub use self::core::{CoreOutcome, CoreRelocation, TargetBtf, HOST_BTF};
pub use error::LoadError;
pub use externs::{kernel_version_code, KernelConfig};
pub use sections::{LoadOptions, ProgType, SectionType, XdpAttach};
pub use swap::swap_btf;

use crate::{BtfBlob, Object, ObjectBtf, Program, ProgramBtf};
use aya_obj::generated::bpf_insn;
use aya_obj::{Function, ProgramSection};
use object::read::{Object as _, ObjectSection as _};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use xdpqual_isa::Insn;

/// A program in the object that is not XDP: listed by `inspect`, never run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OtherProgram {
    pub name: String,
    pub section: String,
    /// The program type its section declares, libbpf's name for it
    /// (`sched_cls`, `kprobe`, ...), or [`sections::UNKNOWN_HINT`].
    pub kind: String,
}

/// Everything the loader learned about an object.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub object: Object,
    pub other_programs: Vec<OtherProgram>,
    /// CO-RE relocations in file order, with what resolving each one did.
    pub core_relocations: Vec<CoreRelocation>,
    /// The BTF those relocations were resolved against.
    pub core_target: PathBuf,
}

/// Loads the XDP programs of the object at `path`; an object with none is
/// an error.
pub fn load_object(path: &Path) -> Result<Object, LoadError> {
    let bytes = read(path)?;
    load_object_bytes(&bytes, path)
}

/// [`load_object`] on bytes already in memory; `path` is used in messages.
pub fn load_object_bytes(bytes: &[u8], path: &Path) -> Result<Object, LoadError> {
    load_object_bytes_with(bytes, path, &LoadOptions::default())
}

/// Loads the object at `path` for a command that runs one program, with
/// the user's options: `select` is the `SECTION` of `PROG.o:SECTION`,
/// `prog_type` the `--type` option (see [`sections`] for what they change),
/// `target_btf` the BTF CO-RE relocations are resolved against.
pub fn load_target(path: &Path, opts: &LoadOptions) -> Result<Object, LoadError> {
    let bytes = read(path)?;
    load_object_bytes_with(&bytes, path, opts)
}

/// [`load_object_bytes`] with the user's program-type options.
pub fn load_object_bytes_with(
    bytes: &[u8],
    path: &Path,
    opts: &LoadOptions,
) -> Result<Object, LoadError> {
    let loaded = inspect_object_bytes_with(bytes, path, opts)?;
    if loaded.object.programs.is_empty() {
        let others: Vec<String> =
            loaded.other_programs.iter().map(|o| format!("`{}` ({})", o.section, o.kind)).collect();
        let others =
            if others.is_empty() { "no programs at all".into() } else { others.join(", ") };
        return Err(LoadError::NoXdpProgram { path: path.to_path_buf(), others });
    }
    Ok(loaded.object)
}

/// Like [`load_object`] but also reports non-XDP programs and accepts an
/// object without XDP programs.
pub fn inspect_object(path: &Path) -> Result<Loaded, LoadError> {
    let bytes = read(path)?;
    inspect_object_bytes(&bytes, path)
}

/// [`inspect_object`] with the user's program-type options.
pub fn inspect_object_with(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let bytes = read(path)?;
    inspect_object_bytes_with(&bytes, path, opts)
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    // Non-regular files are refused before opening, and objects above the
    // kernel's limits before they are read whole (see util::input).
    crate::input::read_limited(path, "BPF object", crate::input::MAX_OBJECT_BYTES)
        .map_err(|source| LoadError::Io { path: path.to_path_buf(), source })
}

/// Inspects with `list_unknown`: sections of no known type are listed, not
/// refused.
pub fn inspect_object_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, LoadError> {
    let opts = LoadOptions { list_unknown: true, ..LoadOptions::default() };
    inspect_object_bytes_with(bytes, path, &opts)
}

pub fn inspect_object_bytes_with(
    bytes: &[u8],
    path: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let byte_order = elf::precheck(bytes, path)?;
    // A bpfeb object is rewritten as the bpfel object it is otherwise
    // equal to (swap.rs); its data sections keep their bytes, and the
    // engine runs it with big-endian memory (Object::byte_order).
    let swapped;
    let bytes = if byte_order.is_big() {
        swapped = swap::to_little_endian(bytes).map_err(|reason| LoadError::MalformedElf {
            path: path.to_path_buf(),
            reason: format!("big-endian object: {reason}"),
        })?;
        &swapped[..]
    } else {
        bytes
    };
    let file = object::File::parse(bytes)
        .map_err(|e| LoadError::MalformedElf { path: path.to_path_buf(), reason: e.to_string() })?;
    elf::check_structure(&file, path)?;
    elf::check_btf_ext(&file, path)?;
    let section_names = elf::section_names(&file);
    let btf = file.section_by_name(".BTF").and_then(|s| s.data().ok());
    let strings = match btf {
        Some(b) => Some(
            lines::BtfStrings::parse(b)
                .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?,
        ),
        None => None,
    };

    let decisions = decide_sections(&file, &section_names, path, opts)?;
    let renames: Vec<(usize, &str)> = decisions
        .iter()
        .filter_map(|(&index, d)| {
            let name = section_names.get(index)?;
            let aya_name = match d {
                Decision::Xdp => match name.as_str() {
                    "xdp" | "xdp.frags" | "xdp/devmap" | "xdp/cpumap" | "xdp.frags/devmap"
                    | "xdp.frags/cpumap" => return None,
                    _ => "xdp",
                },
                Decision::ForcedXdp => "xdp",
                Decision::Other(_) | Decision::ListedUnknown => "classifier",
            };
            Some((index, aya_name))
        })
        .collect();
    let all_core_records = match file.section_by_name(".BTF.ext").and_then(|s| s.data().ok()) {
        Some(ext) => self::core::records(ext, strings.as_ref(), path)?,
        None => Vec::new(),
    };
    // Relocations are applied to the sections that run as XDP under their
    // own name; those of sections that do not run (tracepoints, tc) are
    // dropped before aya-obj sees them, since aya-obj knows those sections
    // under a stand-in name and would refuse their records.
    let renamed: HashSet<&str> =
        renames.iter().filter_map(|(i, _)| section_names.get(*i).map(String::as_str)).collect();
    let runs_as_xdp = |name: &str| {
        section_names.iter().zip(0..).any(|(n, i)| {
            n == name && matches!(decisions.get(&i), Some(Decision::Xdp | Decision::ForcedXdp))
        })
    };
    if let Some(r) = all_core_records
        .iter()
        .find(|r| renamed.contains(r.section.as_str()) && runs_as_xdp(&r.section))
    {
        return Err(LoadError::CoreRelocation {
            path: path.to_path_buf(),
            section: r.section.clone(),
            reason: "CO-RE relocations in a section loaded as XDP under a name aya-obj does not \
                     know (an untyped or xdp/NAME section) are not supported yet; name the \
                     section SEC(\"xdp\")"
                .into(),
        });
    }
    let core_records: Vec<self::core::Record> = all_core_records
        .iter()
        .filter(|r| !renamed.contains(r.section.as_str()))
        .cloned()
        .collect();
    let core = if core_records.is_empty() {
        None
    } else {
        if let Some(r) = core_records.iter().find(|r| !self::core::supported(r.kind)) {
            return Err(LoadError::CoreRelocation {
                path: path.to_path_buf(),
                section: r.section.clone(),
                reason: format!(
                    "instruction {}: relocation kind {} ({}) is not supported",
                    r.insn_off / 8,
                    r.kind,
                    self::core::kind_name(r.kind)
                ),
            });
        }
        Some(self::core::target(&opts.target_btf, path)?)
    };

    let aya_bytes = elf::renamed_for_aya(bytes, &renames);
    let mut aya_bytes = legacy::patched_for_aya(&file, aya_bytes)
        .map_err(|e| LoadError::Parse { path: path.to_path_buf(), reason: e.to_string() })?;
    if let (Some(target), Some(ext)) = (&core, file.section_by_name(".BTF.ext")) {
        let local = btf
            .map(btf_types::kinds_and_names)
            .transpose()
            .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?;
        let patch =
            self::core::zero_when_missing(&core_records, &local.unwrap_or_default(), target);
        if let Some((ext_start, ext_len)) = ext.file_range() {
            let (ext_start, ext_len) = (ext_start as usize, ext_len as usize);
            if !patch.is_empty() {
                let owned = aya_bytes.to_mut();
                for at in patch {
                    let at = ext_start + at;
                    owned[at..at + 4].copy_from_slice(&self::core::ZERO_RESULT_KIND.to_le_bytes());
                }
            }
            if core_records.len() != all_core_records.len() {
                let keep: HashSet<&str> = core_records.iter().map(|r| r.section.as_str()).collect();
                let ext_bytes = &mut aya_bytes.to_mut()[ext_start..ext_start + ext_len];
                self::core::keep_sections(ext_bytes, strings.as_ref(), &keep);
            }
        }
    }
    // Externs (__kconfig variables, __ksym kfuncs): instructions and BTF
    // patched in place, as libbpf patches them before loading.
    let mut externs = externs::collect(&file, btf, &opts.kconfig, path)?;
    let kfunc_ids = if externs.kfuncs.is_empty() {
        BTreeMap::new()
    } else {
        let target = match &core {
            Some(t) => t.clone(),
            None => self::core::target(&opts.target_btf, path)?,
        };
        let target_types = target.types().map_err(|reason| LoadError::TargetBtf {
            path: path.to_path_buf(),
            btf: opts.target_btf.path().to_path_buf(),
            reason,
        })?;
        let local = btf_types::parse(btf.unwrap_or_default())
            .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?;
        kfuncs::resolve(&mut externs, &local, target_types, opts.target_btf.path(), path)?
    };
    // __ksym variables: typed ones against the same target BTF as kfuncs,
    // untyped ones against kallsyms.
    let ksyms = if externs.ksym_vars.is_empty() {
        Vec::new()
    } else {
        let local = btf_types::parse(btf.unwrap_or_default())
            .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?;
        let target = if externs.ksym_vars.values().any(|v| v.local_type != 0) {
            Some(match &core {
                Some(t) => t.clone(),
                None => self::core::target(&opts.target_btf, path)?,
            })
        } else {
            None
        };
        let target_types = target.as_ref().map(|t| t.types()).transpose().map_err(|reason| {
            LoadError::TargetBtf {
                path: path.to_path_buf(),
                btf: opts.target_btf.path().to_path_buf(),
                reason,
            }
        })?;
        ksyms::resolve(
            &mut externs,
            &local,
            target_types,
            opts.target_btf.path(),
            Path::new(ksyms::KALLSYMS),
            path,
        )?
    };
    if !externs.patches.is_empty() {
        let owned = aya_bytes.to_mut();
        for (at, bytes) in &externs.patches {
            let Some(slot) = owned.get_mut(*at..*at + bytes.len()) else {
                return Err(LoadError::MalformedElf {
                    path: path.to_path_buf(),
                    reason: format!("extern patch at byte {at} lies outside the file"),
                });
            };
            slot.copy_from_slice(bytes);
        }
    }
    let linked = guarded(path, || aya_link(&aya_bytes, path, core.as_ref().map(|t| &t.btf)))?;
    let type_names = btf.map(btf_types::type_names).unwrap_or_default();
    let core_relocations = describe_core(&core_records, &section_names, &linked, &type_names);

    let map_names: Vec<&str> = linked.maps.iter().map(|(n, _)| n.as_str()).collect();
    let mut maps: Vec<_> = linked.maps.iter().map(|(n, m)| maps::to_def(n, m)).collect();
    maps::attach_values(&file, btf, &mut maps, path)?;
    // libbpf's `.kconfig` internal map: one read-only ARRAY entry, created
    // with BPF_F_RDONLY_PROG and frozen (bpf_object__init_internal_map).
    let kconfig_index = externs.kconfig.as_ref().map(|data| {
        maps.push(crate::MapDef {
            name: ".kconfig".into(),
            map_type: crate::MapType::Array,
            key_size: 4,
            value_size: data.len() as u32,
            max_entries: 1,
            flags: 1 << 7,
            origin: crate::MapOrigin::GlobalData,
            initial_data: Some(data.clone()),
            read_only: true,
            inner: None,
            init_slots: Vec::new(),
        });
        (maps.len() - 1) as i32
    });
    debug_assert!(map_names.windows(2).all(|w| w[0] <= w[1]));

    let program_keys: HashSet<(usize, u64)> =
        linked.obj.programs.values().map(|p| p.function_key()).collect();
    let mut progs: Vec<(&String, &aya_obj::Program)> = linked.obj.programs.iter().collect();
    progs.sort_by_key(|(name, p)| (p.section_index, p.address, name.as_str()));

    let mut programs = Vec::new();
    let mut btf_records = BTreeMap::new();
    let mut other_programs = Vec::new();
    for (name, p) in progs {
        let section = section_names.get(p.section_index).cloned().unwrap_or_default();
        let kind = match decisions.get(&p.section_index) {
            Some(Decision::Other(t)) => Some(t.to_string()),
            Some(Decision::ListedUnknown) => Some(sections::UNKNOWN_HINT.to_string()),
            _ => None,
        };
        let frags = match (&p.section, kind) {
            (ProgramSection::Xdp { frags, .. }, None) => *frags,
            (_, kind) => {
                let kind = kind.unwrap_or_else(|| {
                    format!("{:?}", p.section).split([' ', '{']).next().unwrap_or("").to_string()
                });
                other_programs.push(OtherProgram { name: name.clone(), section, kind });
                continue;
            }
        };
        let func = linked.obj.functions.get(&p.function_key()).ok_or_else(|| LoadError::Link {
            path: path.to_path_buf(),
            reason: format!("program `{name}` has no linked code"),
        })?;
        let mut insns: Vec<Insn> = func.instructions.iter().map(to_insn).collect();
        if let Some(index) = kconfig_index {
            for i in insns.iter_mut() {
                if i.is_lddw()
                    && i.src == xdpqual_isa::opcode::PSEUDO_MAP_VALUE
                    && i.imm == externs::KCONFIG_PLACEHOLDER
                {
                    i.imm = index;
                }
            }
        }
        let mut placements = linked.tags.placements(func);
        if placements.first().map(|pl| pl.start) != Some(0) {
            placements.insert(0, link::Placement { start: 0, key: p.function_key() });
        }
        let mut functions = Vec::new();
        let mut line_entries = Vec::new();
        let mut records = ProgramBtf::default();
        for pl in &placements {
            let Some(orig) = linked.originals.get(&pl.key) else { continue };
            functions.push((pl.start, orig.name.clone()));
            btf_info::add_function(
                &mut records,
                pl.start,
                orig,
                program_keys.contains(&pl.key),
                linked.obj.btf.as_ref(),
            );
            let Some(strings) = &strings else { continue };
            // Program functions carry line info relative to their start,
            // .text functions relative to the section (aya-obj
            // `get_func_and_line_info`'s `rewrite_insn_off`).
            let base = if program_keys.contains(&pl.key) { 0 } else { orig.section_offset / 8 };
            for li in &orig.line_info.line_info {
                let Some(rel) = (li.insn_off as usize).checked_sub(base) else { continue };
                if rel < orig.instructions.len() {
                    line_entries.push((pl.start + rel, lines::source_line(strings, li)));
                }
            }
        }
        let lines = lines::table(line_entries);
        validate::validate(&insns, maps.len()).map_err(|mut error| {
            error.line = lines.lookup(error.insn).cloned();
            LoadError::Invalid {
                path: path.to_path_buf(),
                program: name.clone(),
                error: Box::new(error),
            }
        })?;
        btf_records.insert(name.clone(), btf_info::finish(records));
        programs.push(Program { name: name.clone(), section, frags, insns, lines, functions });
    }

    resize_maps(&mut maps, &opts.map_sizes, path)?;
    Ok(Loaded {
        object: Object {
            path: path.to_path_buf(),
            programs,
            maps,
            license: linked.obj.license.to_string_lossy().into_owned(),
            byte_order,
            kfuncs: kfunc_ids,
            ksyms,
            btf: linked.btf.map_or_else(ObjectBtf::Unusable, |bytes| {
                ObjectBtf::Present(std::sync::Arc::new(BtfBlob { bytes, programs: btf_records }))
            }),
        },
        other_programs,
        core_relocations,
        core_target: opts.target_btf.path().to_path_buf(),
    })
}

/// `--map-size NAME=N`: sets a map's `max_entries` before anything is
/// created from the object, as a project's loader does with libbpf's
/// `bpf_map__set_max_entries` (xdp-tools sizes its maps this way and
/// builds them with `max_entries` 0, which the kernel refuses as built).
fn resize_maps(
    maps: &mut [crate::MapDef],
    sizes: &[(String, u32)],
    path: &Path,
) -> Result<(), LoadError> {
    for (name, entries) in sizes {
        let Some(m) = maps.iter_mut().find(|m| &m.name == name) else {
            let known: Vec<&str> = maps.iter().map(|m| m.name.as_str()).collect();
            return Err(LoadError::MapSize {
                path: path.to_path_buf(),
                map: name.clone(),
                reason: format!(
                    "the object has no map of that name (its maps: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            });
        };
        if *entries == 0 {
            return Err(LoadError::MapSize {
                path: path.to_path_buf(),
                map: name.clone(),
                reason: "max_entries 0 is refused by the kernel (EINVAL); give at least 1".into(),
            });
        }
        m.max_entries = *entries;
    }
    Ok(())
}

/// Each CO-RE record with what resolving it did, found by comparing the
/// function that holds its instruction before and after aya-obj's pass.
fn describe_core(
    records: &[self::core::Record],
    section_names: &[String],
    linked: &Linked,
    type_names: &[String],
) -> Vec<CoreRelocation> {
    let Some(before) = &linked.before_core else { return Vec::new() };
    records
        .iter()
        .map(|r| {
            let at = r.insn_off as u64;
            let slice = |funcs: &BTreeMap<(usize, u64), Function>| {
                funcs
                    .iter()
                    .filter(|((s, _), _)| section_names.get(*s) == Some(&r.section))
                    .find_map(|(_, f)| {
                        let start = f.section_offset as u64;
                        let n = f.instructions.len() as u64;
                        (start <= at && at < start + 8 * n).then(|| {
                            let i = ((at - start) / 8) as usize;
                            f.instructions[i..(i + 2).min(n as usize)].to_vec()
                        })
                    })
                    .unwrap_or_default()
            };
            CoreRelocation {
                section: r.section.clone(),
                insn: r.insn_off as usize / 8,
                kind: self::core::kind_name(r.kind),
                local_type: type_names
                    .get(r.type_id as usize)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("type #{}", r.type_id)),
                access: r.access.clone(),
                outcome: self::core::outcome(&slice(before), &slice(&linked.originals)),
            }
        })
        .collect()
}

use sections::Decision;

/// What to do with each code section (by ELF index), or why the object is
/// refused: a section of unknown type the user did not force, or a selected
/// program of another type.
fn decide_sections(
    file: &object::File<'_>,
    names: &[String],
    path: &Path,
    opts: &LoadOptions,
) -> Result<BTreeMap<usize, Decision>, LoadError> {
    use object::read::ObjectSymbol as _;
    let mut out = BTreeMap::new();
    for sec in file.sections() {
        let index = sec.index().0;
        let Some(name) = names.get(index) else { continue };
        if sec.kind() != object::SectionKind::Text || sec.size() == 0 || aya_special(name) {
            continue;
        }
        // The selector names this section, or a function defined in it.
        let selected = opts.select.as_deref().is_some_and(|sel| {
            sel == name
                || file.symbols().any(|s| {
                    s.section_index() == Some(sec.index())
                        && s.kind() == object::SymbolKind::Text
                        && s.name() == Ok(sel)
                })
        });
        let decision = match sections::classify(name) {
            SectionType::Xdp { .. } => Decision::Xdp,
            SectionType::Other(ty) => {
                if selected {
                    return Err(LoadError::NotXdp {
                        path: path.to_path_buf(),
                        section: name.clone(),
                        prog_type: ty,
                    });
                }
                Decision::Other(ty)
            }
            SectionType::Unknown => {
                if selected || opts.prog_type == Some(ProgType::Xdp) {
                    Decision::ForcedXdp
                } else if opts.list_unknown || opts.select.is_some() {
                    Decision::ListedUnknown
                } else {
                    return Err(LoadError::UnknownSection {
                        path: path.to_path_buf(),
                        section: name.clone(),
                    });
                }
            }
        };
        out.insert(index, decision);
    }
    Ok(out)
}

/// Names aya-obj reads as something other than a program whatever their
/// flags (aya-obj obj.rs `EbpfSectionKind::from_name`).
fn aya_special(name: &str) -> bool {
    ["license", "version", "maps", ".maps", ".text", ".bss", ".data", ".rodata"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == ".BTF"
        || name == ".BTF.ext"
}

fn to_insn(i: &bpf_insn) -> Insn {
    Insn::new(i.code, i.dst_reg(), i.src_reg(), i.off, i.imm)
}

/// What aya-obj produced: the linked object, its maps in index order, and
/// each function as it was before call linking (for line info).
struct Linked {
    obj: aya_obj::Object,
    maps: Vec<(String, aya_obj::Map)>,
    originals: BTreeMap<(usize, u64), Function>,
    tags: link::Tags,
    /// Sanitised BTF bytes, or why there are none.
    btf: Result<Vec<u8>, String>,
    /// The functions before CO-RE relocation, when there were any.
    before_core: Option<BTreeMap<(usize, u64), Function>>,
}

fn aya_link(
    bytes: &[u8],
    path: &Path,
    core_target: Option<&aya_obj::btf::Btf>,
) -> Result<Linked, LoadError> {
    let p = || path.to_path_buf();
    let mut obj = aya_obj::Object::parse(bytes).map_err(|e| match e {
        aya_obj::ParseError::InvalidProgramSection { section } => {
            LoadError::UnknownSection { path: p(), section }
        }
        e => LoadError::Parse { path: p(), reason: error::chain(&e) },
    })?;
    // CO-RE first, as libbpf's bpf_object__load does (relocations are
    // recorded against the functions as compiled, before calls are linked).
    let before_core = match core_target {
        Some(target) => {
            let before = obj.functions.clone();
            obj.relocate_btf(target).map_err(|e| LoadError::CoreRelocation {
                path: p(),
                section: e.section.clone(),
                reason: error::chain(&e),
            })?;
            Some(before)
        }
        None => None,
    };
    let maps = maps::sorted(obj.maps.iter());
    let originals = obj.functions.clone();
    let tags = link::tag_functions(&mut obj);
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    // The map's index stands in for the file descriptor a kernel loader
    // would put there (program.rs: relocated lddw carry map indices).
    obj.relocate_maps(
        maps.iter().enumerate().map(|(i, (n, m))| (n.as_str(), i as i32, m)),
        &text_sections,
    )
    .map_err(|e| LoadError::Link { path: p(), reason: error::chain(&e) })?;
    obj.relocate_calls(&text_sections)
        .map_err(|e| LoadError::Link { path: p(), reason: error::chain(&e) })?;
    let btf = btf_info::sanitized(&mut obj);
    Ok(Linked { obj, maps, originals, tags, btf, before_core })
}

/// Runs aya-obj, turning a panic into [`LoadError::ParserPanic`].
///
/// This is the one place panics are caught: aya-obj 0.2 indexes section
/// data with values from the file and has a `todo!()` in its call linker,
/// and [`elf::check_structure`] cannot rule out every such path on hostile
/// input. The default panic hook still prints the panic to stderr.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, LoadError>) -> Result<T, LoadError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(LoadError::ParserPanic { path: PathBuf::from(path), message })
        }
    }
}
pub mod btf_types;
