//! What the loader hands to every backend: linked programs and map definitions.
//!
//! These types are the contract between `loader` (which makes them from an
//! ELF object) and the backends (engine, rbpf, host kernel, NIC model, the
//! QEMU guest agent), so they carry no backend-specific state.
//!
//! This crate owns the linked program ([`Object`], [`Program`], [`MapDef`],
//! [`LineTable`], [`ObjectBtf`]) and nothing that produces or runs it. It
//! depends only on `xdpqual-isa` and serde, and makes no system calls: the
//! kernel layer and the static guest agent need these types without the
//! ELF loader (aya-obj), the engine (Cranelift) or anything else of the
//! harness.
//!
//! The ELF/BTF loader ([`loader`], on aya-obj and the `object` crate) sits
//! behind the default feature `elf`: it parses bytes and makes no system
//! calls (aya-obj's split), and the static guest agent, which only receives
//! linked programs, builds without it. [`input`] (bounded reads of the
//! files a user names) and [`hex`] (byte text for maps and reports) are
//! shared by the loader and everything above it.

pub mod hex;
pub mod input;
#[cfg(feature = "elf")]
pub mod loader;

use serde::{Deserialize, Serialize};
use xdpqual_isa::Insn;

/// Map types by their UAPI number (`enum bpf_map_type`). Named (in
/// messages, tables and JSON) from the one UAPI name table,
/// `xdpqual_isa::map_types`, so a type the engine does not model still has
/// its name (`sockmap`), never a bare number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    Hash,
    Array,
    ProgArray,
    PerfEventArray,
    PercpuHash,
    PercpuArray,
    LruHash,
    LruPercpuHash,
    LpmTrie,
    Devmap,
    Cpumap,
    Xskmap,
    DevmapHash,
    Ringbuf,
    /// Map-in-map: values are inner maps (kernel/bpf/arraymap.c
    /// `array_of_maps_map_ops`, hashtab.c `htab_of_maps_map_ops`).
    ArrayOfMaps,
    HashOfMaps,
    /// A type the engine does not model; the number is kept for messages.
    Other(u32),
}

impl MapType {
    pub fn from_uapi(n: u32) -> MapType {
        match n {
            1 => MapType::Hash,
            2 => MapType::Array,
            3 => MapType::ProgArray,
            4 => MapType::PerfEventArray,
            5 => MapType::PercpuHash,
            6 => MapType::PercpuArray,
            9 => MapType::LruHash,
            10 => MapType::LruPercpuHash,
            11 => MapType::LpmTrie,
            12 => MapType::ArrayOfMaps,
            13 => MapType::HashOfMaps,
            14 => MapType::Devmap,
            16 => MapType::Cpumap,
            17 => MapType::Xskmap,
            25 => MapType::DevmapHash,
            27 => MapType::Ringbuf,
            n => MapType::Other(n),
        }
    }

    pub fn uapi(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::ProgArray => 3,
            MapType::PerfEventArray => 4,
            MapType::PercpuHash => 5,
            MapType::PercpuArray => 6,
            MapType::LruHash => 9,
            MapType::LruPercpuHash => 10,
            MapType::LpmTrie => 11,
            MapType::ArrayOfMaps => 12,
            MapType::HashOfMaps => 13,
            MapType::Devmap => 14,
            MapType::Cpumap => 16,
            MapType::Xskmap => 17,
            MapType::DevmapHash => 25,
            MapType::Ringbuf => 27,
            MapType::Other(n) => n,
        }
    }

    /// `ARRAY_OF_MAPS` for 12, `SOCKMAP` for 15 (the UAPI name, as in
    /// `BPF_MAP_TYPE_*`); `map type N` only for a number newer than the table.
    pub fn name(self) -> String {
        match self.bpftool_name() {
            Some(name) => name.to_uppercase(),
            None => format!("map type {}", self.uapi()),
        }
    }

    /// The lower-case name bpftool prints (`array_of_maps`), if the UAPI
    /// table has this number.
    pub fn bpftool_name(self) -> Option<&'static str> {
        xdpqual_isa::map_types::known_name(self.uapi())
    }

    pub fn is_percpu(self) -> bool {
        matches!(self, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash)
    }

    /// Every index in `[0, max_entries)` exists from creation, reads as
    /// zeros until written, and cannot be deleted: ARRAY and PERCPU_ARRAY
    /// (kernel/bpf/arraymap.c: `array_map_alloc` zeroes the values,
    /// `array_map_delete_elem` returns -EINVAL). A slot of zeros says
    /// nothing such a map's type does not already say, so dumps and
    /// comparisons leave those slots out: a 33.5-million-entry ring then
    /// costs what its written slots cost.
    pub fn has_implicit_zero_slots(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }

    /// ARRAY_OF_MAPS or HASH_OF_MAPS.
    pub fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }
}

/// In JSON a map type is its bpftool name (`"percpu_array"`, `"sockmap"`),
/// or its number when the name table lacks it.
impl Serialize for MapType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.bpftool_name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u32(self.uapi()),
        }
    }
}

/// Reads what [`Serialize`] writes, and the `{"other": N}` form earlier
/// versions wrote for types the engine does not model.
impl<'de> Deserialize<'de> for MapType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Number(u32),
            Legacy { other: u32 },
        }
        match Repr::deserialize(d)? {
            Repr::Number(n) | Repr::Legacy { other: n } => Ok(MapType::from_uapi(n)),
            Repr::Name(name) => (0..=u8::MAX as u32)
                .find(|&n| xdpqual_isa::map_types::known_name(n) == Some(name.as_str()))
                .map(MapType::from_uapi)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown map type `{name}`"))),
        }
    }
}

/// Where a map definition came from in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    BtfMaps,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// Global data: `.data`, `.rodata`, `.bss` (one-entry ARRAY maps, as the
    /// kernel and libbpf back them).
    GlobalData,
}

/// One map as the object defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapDef {
    pub name: String,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub origin: MapOrigin,
    /// Initial contents of entry 0 for global-data maps.
    pub initial_data: Option<Vec<u8>>,
    /// `.rodata`: the kernel freezes it, so program stores into it fault.
    pub read_only: bool,
    /// ARRAY_OF_MAPS / HASH_OF_MAPS: the inner-map template (from BTF
    /// `__array(values, struct {...})` or a legacy `inner_map_idx`), whose
    /// type, key and value sizes and flags every inner map must match
    /// (kernel/bpf/map_in_map.c `bpf_map_meta_equal`).
    #[serde(default)]
    pub inner: Option<Box<MapDef>>,
    /// Slots the object fills statically through relocations in `.maps`
    /// (`.values = { [i] = &map_or_prog }`), as libbpf's
    /// `init_map_in_map_slots` / `init_prog_array_slots` do after creating
    /// the maps: `(index, name of the inner map or of the program)`.
    #[serde(default)]
    pub init_slots: Vec<(u32, String)>,
}

/// A source position from BTF line info.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The text of the line as recorded in BTF (clang embeds it).
    pub text: String,
}

/// Line info for a linked program: sorted by instruction index. An
/// instruction maps to the last entry at or before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTable {
    pub entries: Vec<(usize, SourceLine)>,
}

impl LineTable {
    pub fn lookup(&self, pc: usize) -> Option<&SourceLine> {
        let i = self.entries.partition_point(|(at, _)| *at <= pc);
        if i == 0 {
            None
        } else {
            Some(&self.entries[i - 1].1)
        }
    }
}

/// A program after relocation and linking: self-contained bytecode.
///
/// Relocated `lddw` instructions use object-relative map numbers, not file
/// descriptors: `src = PSEUDO_MAP_FD, imm = index into Object::maps`, or
/// `src = PSEUDO_MAP_VALUE, imm = map index, next.imm = offset`. Each backend
/// swaps these for its own map handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    /// The ELF section it came from (`xdp`, `xdp/foo`, `xdp.frags`, ...).
    pub section: String,
    /// `xdp.frags`: the program accepts multi-buffer packets.
    pub frags: bool,
    pub insns: Vec<Insn>,
    pub lines: LineTable,
    /// Names of the BPF-to-BPF functions and where each starts, for traces.
    pub functions: Vec<(usize, String)>,
}

/// A whole object: its programs and maps.
#[derive(Clone, Debug)]
pub struct Object {
    pub path: std::path::PathBuf,
    pub programs: Vec<Program>,
    pub maps: Vec<MapDef>,
    pub license: String,
    /// `bpfel` or `bpfeb`: the order of the machine the object was built
    /// for, which its 2-, 4- and 8-byte loads and stores, map keys and
    /// values and `.data`/`.rodata` assume. Instructions are decoded (their
    /// fields are numbers) whatever this is; the engine runs a `Big` object
    /// with big-endian memory.
    pub byte_order: xdpqual_isa::ByteOrder,
    /// The kfuncs its programs call (`call` with `src_reg` 2): the target
    /// kernel BTF id in the instruction's `imm`, and the kfunc's name.
    pub kfuncs: std::collections::BTreeMap<i32, String>,
    /// Its `__ksym` extern variables (kernel data), as the loader resolved
    /// them; their `lddw` instructions carry what the kernel is handed.
    pub ksyms: Vec<KsymVar>,
    /// The object's BTF as a kernel loader would upload it, or why there is none.
    pub btf: ObjectBtf,
}

/// A `__ksym` extern variable: kernel data the program takes the address
/// of (tools/lib/bpf/libbpf.c `bpf_object__resolve_ksyms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KsymVar {
    pub name: String,
    /// Declared `__weak`.
    pub weak: bool,
    pub kind: KsymKind,
}

/// How a `__ksym` variable resolved, and so what its `lddw` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KsymKind {
    /// Typed, found as a VAR in the target kernel's BTF: the `lddw` has
    /// `src = BPF_PSEUDO_BTF_ID`, `imm` = `btf_id` and a second `imm` of 0
    /// (vmlinux). The verifier makes it read-only memory of `size` bytes,
    /// or, for a VAR in vmlinux's `.data..percpu` DATASEC, a per-CPU
    /// pointer only `bpf_per_cpu_ptr`/`bpf_this_cpu_ptr` accept
    /// (kernel/bpf/verifier.c `__check_pseudo_btf_id`).
    Typed { btf_id: u32, type_name: String, size: u32, percpu: bool },
    /// `extern const void NAME __ksym`: the address `/proc/kallsyms` gives,
    /// loaded as a plain 64-bit constant.
    Untyped { addr: u64 },
    /// Weak and absent from the kernel: the `lddw` loads 0 (what
    /// `bpf_ksym_exists` tests).
    Absent,
}

/// The object's BTF, sanitised for the kernel, and each program's
/// `func_info`/`line_info` against the *linked* instructions: what
/// BPF_BTF_LOAD and BPF_PROG_LOAD (`prog_btf_fd`, `func_info`, `line_info`)
/// take. Loading with it makes a program BTF-aware, which fentry/fexit on
/// it need (kernel/bpf/verifier.c bpf_check_attach_target looks the target
/// up in the program's `func_info`).
#[derive(Clone, Debug, Default)]
pub enum ObjectBtf {
    /// Built without an ELF (assembled, or sent to a guest).
    #[default]
    None,
    /// The ELF has no usable BTF; why.
    Unusable(String),
    Present(std::sync::Arc<BtfBlob>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfBlob {
    /// Raw BTF (header, types, strings) after sanitising.
    pub bytes: Vec<u8>,
    /// By program name.
    pub programs: std::collections::BTreeMap<String, ProgramBtf>,
}

/// `struct bpf_func_info` / `struct bpf_line_info` records (include/uapi/linux/bpf.h),
/// instruction offsets in instructions into `Program::insns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramBtf {
    /// `(insn_off, type_id of the FUNC)`, one per function, the program's own first.
    pub func_info: Vec<(u32, u32)>,
    /// `(insn_off, file_name_off, line_off, line_col)`.
    pub line_info: Vec<(u32, u32, u32, u32)>,
}

impl ObjectBtf {
    /// The BTF and the records of program `name`, or why there are none.
    pub fn for_program(&self, name: &str) -> Result<(&[u8], &ProgramBtf), String> {
        match self {
            ObjectBtf::None => {
                Err("the object was not read from an ELF file, so it has no BTF".into())
            }
            ObjectBtf::Unusable(why) => Err(why.clone()),
            ObjectBtf::Present(b) => match b.programs.get(name) {
                Some(p) if !p.func_info.is_empty() => Ok((&b.bytes, p)),
                _ => Err(format!("the object's .BTF.ext has no func_info for program `{name}`")),
            },
        }
    }
}

impl Object {
    pub fn program(&self, name: Option<&str>) -> Option<&Program> {
        match name {
            None => self.programs.first(),
            Some(n) => self.programs.iter().find(|p| p.name == n || p.section == n),
        }
    }

    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::MapType;

    #[test]
    fn every_map_type_has_a_name() {
        // Modelled types by their variant, the rest by the UAPI enum
        // (include/uapi/linux/bpf.h: 12 and 13 are the map-in-map types).
        assert_eq!(MapType::from_uapi(1).name(), "HASH");
        assert_eq!(MapType::from_uapi(12).name(), "ARRAY_OF_MAPS");
        assert_eq!(MapType::from_uapi(13).name(), "HASH_OF_MAPS");
        assert_eq!(MapType::from_uapi(12).uapi(), 12);
        assert_eq!(MapType::from_uapi(13), MapType::HashOfMaps);
        assert_eq!(MapType::from_uapi(99).name(), "map type 99");
        // A type the engine does not model (15, BPF_MAP_TYPE_SOCKMAP) is named too.
        assert_eq!(MapType::from_uapi(15).name(), "SOCKMAP");
    }

    #[test]
    fn json_names_map_types_and_reads_the_old_form() {
        // include/uapi/linux/bpf.h: 6 PERCPU_ARRAY, 12 ARRAY_OF_MAPS, 15 SOCKMAP.
        for (n, json) in
            [(6, "\"percpu_array\""), (12, "\"array_of_maps\""), (15, "\"sockmap\""), (99, "99")]
        {
            let t = MapType::from_uapi(n);
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
            assert_eq!(serde_json::from_str::<MapType>(json).unwrap(), t);
        }
        // What earlier versions wrote for a type the engine does not model.
        assert_eq!(serde_json::from_str::<MapType>(r#"{"other":15}"#).unwrap().uapi(), 15);
        assert!(serde_json::from_str::<MapType>("\"no_such_map\"").is_err());
    }
}
