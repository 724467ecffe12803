//! The loader on real clang output (tests/data/loader, built by build.sh).
//! Every expectation below is read off the C sources next to the objects.

use object::read::{Object as _, ObjectSection as _};
use std::path::PathBuf;
use xdpqual::isa::{opcode, ByteOrder, Insn};
use xdpqual::loader::{
    inspect_object, load_object, load_object_bytes, validate::Problem, LoadError,
};
use xdpqual::program::{MapOrigin, MapType, Program};

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader")).join(name)
}

/// The 1-based line of the C source that contains `marker`.
fn line_of(source: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(data(source)).unwrap();
    let idx = text
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in {source}"));
    idx as u32 + 1
}

/// Indices of helper calls to `helper` in `p`.
fn helper_calls(p: &Program, helper: i32) -> Vec<usize> {
    (0..p.insns.len())
        .filter(|&pc| {
            p.insns[pc].code == opcode::JMP | opcode::CALL
                && p.insns[pc].src == 0
                && p.insns[pc].imm == helper
        })
        .collect()
}

/// The lddw that loads r1 last before `pc` (the map argument of a helper).
fn map_arg(p: &Program, pc: usize) -> Insn {
    (0..pc).rev().map(|i| p.insns[i]).find(|i| i.is_lddw() && i.dst == 1).expect("an lddw into r1")
}

#[test]
fn btf_maps() {
    let o = load_object(&data("btf_maps.o")).unwrap();
    assert_eq!(o.license, "GPL");
    assert_eq!(o.programs.len(), 1);
    let p = &o.programs[0];
    assert_eq!((p.name.as_str(), p.section.as_str(), p.frags), ("xdp_count", "xdp", false));
    assert_eq!(p.functions, vec![(0, "xdp_count".to_string())]);

    // Sorted by name: flows, recent, verdicts.
    let names: Vec<&str> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["flows", "recent", "verdicts"]);
    let f = &o.maps[0];
    // struct flow_stats is two __u64.
    assert_eq!(
        (f.map_type, f.key_size, f.value_size, f.max_entries, f.flags),
        (MapType::Hash, 4, 16, 1024, 0)
    );
    assert_eq!((f.origin, f.initial_data.as_ref(), f.read_only), (MapOrigin::BtfMaps, None, false));
    let r = &o.maps[1];
    // BPF_F_NO_COMMON_LRU is 1 << 1.
    assert_eq!(
        (r.map_type, r.key_size, r.value_size, r.max_entries, r.flags),
        (MapType::LruHash, 8, 4, 64, 2)
    );
    let v = &o.maps[2];
    assert_eq!(
        (v.map_type, v.key_size, v.value_size, v.max_entries),
        (MapType::PercpuArray, 4, 8, 4)
    );

    // Two bpf_map_lookup_elem calls: on flows (index 0), then verdicts (2).
    let calls = helper_calls(p, 1);
    assert_eq!(calls.len(), 2);
    let a0 = map_arg(p, calls[0]);
    let a1 = map_arg(p, calls[1]);
    assert_eq!((a0.src, a0.imm), (opcode::PSEUDO_MAP_FD, 0));
    assert_eq!((a1.src, a1.imm), (opcode::PSEUDO_MAP_FD, 2));

    // Line info: the first lookup is the LOOKUP_FLOWS line.
    let l = p.lines.lookup(calls[0]).expect("line info for the call");
    assert_eq!(l.line, line_of("btf_maps.c", "LOOKUP_FLOWS"));
    assert_eq!(l.file, "./btf_maps.c");
    assert!(l.text.contains("bpf_map_lookup_elem(&flows, &key)"), "{l:?}");
    // The first instruction belongs to the function's opening line.
    assert_eq!(p.lines.lookup(0).unwrap().line, line_of("btf_maps.c", "int xdp_count("));
    assert_eq!(p.insns.last().unwrap().code, opcode::JMP | opcode::EXIT);
}

#[test]
fn legacy_maps() {
    let o = load_object(&data("legacy_maps.o")).unwrap();
    let names: Vec<&str> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["blocklist", "tx_ports"]);
    let b = &o.maps[0];
    // BPF_F_NO_PREALLOC is 1.
    assert_eq!(
        (b.map_type, b.key_size, b.value_size, b.max_entries, b.flags),
        (MapType::Hash, 4, 8, 256, 1)
    );
    assert_eq!(b.origin, MapOrigin::Legacy);
    let t = &o.maps[1];
    assert_eq!(
        (t.map_type, t.key_size, t.value_size, t.max_entries, t.flags),
        (MapType::Devmap, 4, 4, 8, 0)
    );
    let p = &o.programs[0];
    // bpf_redirect_map is helper 51; its map argument is tx_ports.
    let calls = helper_calls(p, 51);
    assert_eq!(calls.len(), 1);
    assert_eq!(map_arg(p, calls[0]).imm, 1);
    assert_eq!(map_arg(p, helper_calls(p, 1)[0]).imm, 0);
}

/// legacy_maps.o as pre-BTF LLVM wrote objects (build.sh: no BTF, every
/// global symbol NOTYPE with size 0, like the Linux samples/bpf objects).
/// Pre-1.0 libbpf sized each definition as section size / map symbols and
/// ran a program from its symbol to the section's end; the loader does the
/// same, so the object loads exactly as the modern build does.
#[test]
fn pre_btf_symbols() {
    let modern = load_object(&data("legacy_maps.o")).unwrap();
    let old = load_object(&data("pre_btf.o")).unwrap();
    let defs = |o: &xdpqual::program::Object| -> Vec<_> {
        o.maps
            .iter()
            .map(|m| (m.name.clone(), m.map_type, m.key_size, m.value_size, m.max_entries, m.flags))
            .collect()
    };
    assert_eq!(defs(&old), defs(&modern));
    assert_eq!(old.programs.len(), 1);
    assert_eq!(old.programs[0].name, "xdp_legacy");
    assert_eq!(old.programs[0].insns, modern.programs[0].insns);

    // A `maps` section that does not divide evenly among its symbols
    // cannot be sized: refused with the reason, as libbpf 0.x refused it.
    let mut bytes = std::fs::read(data("pre_btf.o")).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let maps = file.section_by_name("maps").unwrap();
    assert_eq!(maps.size(), 40, "two 20-byte definitions");
    let index = maps.index().0;
    drop(file);
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let shentsize = u16::from_le_bytes(bytes[0x3a..0x3c].try_into().unwrap()) as usize;
    let size_at = shoff + index * shentsize + 0x20;
    bytes[size_at..size_at + 8].copy_from_slice(&39u64.to_le_bytes());
    let e = load_object_bytes(&bytes, &data("pre_btf.o")).unwrap_err().to_string();
    assert!(e.contains("legacy `maps` section of 39 bytes holds 2 map symbols of size 0"), "{e}");
}

#[test]
fn global_data() {
    let o = load_object(&data("global_data.o")).unwrap();
    let names: Vec<&str> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [".bss", ".data", ".data.extra", ".rodata"]);
    for m in &o.maps {
        assert_eq!(
            (m.map_type, m.key_size, m.max_entries, m.origin),
            (MapType::Array, 4, 1, MapOrigin::GlobalData),
            "{}",
            m.name
        );
    }
    let init = |i: usize| o.maps[i].initial_data.clone().unwrap();
    // __u64 dropped;
    assert_eq!(init(0), vec![0; 8]);
    // __u32 seen = 7;
    assert_eq!(init(1), 7u32.to_le_bytes());
    // __u16 tag = 0xbeef;
    assert_eq!(init(2), 0xbeefu16.to_le_bytes());
    // const volatile __u32 limits[2] = { 0x11223344, 0x55667788 };
    assert_eq!(init(3), [0x11223344u32.to_le_bytes(), 0x55667788u32.to_le_bytes()].concat());
    let ro: Vec<bool> = o.maps.iter().map(|m| m.read_only).collect();
    assert_eq!(ro, [false, false, false, true]);

    // Every global is reached through a map-value lddw; each of the four
    // maps is used once, at offset 0 (each section holds one variable).
    let p = &o.programs[0];
    let mut used: Vec<(i32, i32)> = (0..p.insns.len())
        .filter(|&pc| p.insns[pc].is_lddw())
        .map(|pc| {
            assert_eq!(p.insns[pc].src, opcode::PSEUDO_MAP_VALUE);
            (p.insns[pc].imm, p.insns[pc + 1].imm)
        })
        .collect();
    used.sort();
    assert_eq!(used, [(0, 0), (1, 0), (2, 0), (3, 0)]);
}

#[test]
fn subprograms_are_linked_per_program() {
    let l = inspect_object(&data("subprogs.o")).unwrap();
    let o = &l.object;
    let progs: Vec<(&str, &str, bool)> =
        o.programs.iter().map(|p| (p.name.as_str(), p.section.as_str(), p.frags)).collect();
    assert_eq!(progs, [("xdp_main", "xdp", false), ("xdp_frags", "xdp.frags", true)]);
    assert_eq!(l.other_programs.len(), 1);
    assert_eq!(
        (l.other_programs[0].name.as_str(), l.other_programs[0].section.as_str()),
        ("sock_filter", "socket")
    );
    assert_eq!(l.other_programs[0].kind, "socket_filter");

    for p in &o.programs {
        let mut names: Vec<&str> = p.functions.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(p.functions[0], (0, p.name.clone()));
        names.sort();
        let mut want = vec![p.name.as_str(), "classify", "weigh"];
        want.sort();
        assert_eq!(names, want, "{}", p.name);
        // The function containing pc.
        let func_at = |pc: usize| {
            p.functions.iter().filter(|(s, _)| *s <= pc).max_by_key(|(s, _)| *s).unwrap().1.as_str()
        };
        let start_of = |name: &str| p.functions.iter().find(|(_, n)| n == name).unwrap().0;
        // Every BPF-to-BPF call lands on a function start; from the C:
        // weigh calls classify, the program calls weigh (and xdp_frags
        // classify too).
        let mut edges = Vec::new();
        for pc in 0..p.insns.len() {
            let i = p.insns[pc];
            if i.code == opcode::JMP | opcode::CALL && i.src == opcode::PSEUDO_CALL {
                let target = (pc as i64 + i.imm as i64 + 1) as usize;
                let callee = p
                    .functions
                    .iter()
                    .find(|(s, _)| *s == target)
                    .expect("call to a function start");
                edges.push((func_at(pc), callee.1.as_str()));
            }
        }
        edges.sort();
        let mut want: Vec<(&str, &str)> = vec![(p.name.as_str(), "weigh"), ("weigh", "classify")];
        if p.name == "xdp_frags" {
            want.push(("xdp_frags", "classify"));
        }
        want.sort();
        assert_eq!(edges, want, "{}", p.name);
        // The call inside weigh is on the CALL_CLASSIFY line, and classify's
        // first instruction on its definition line.
        let weigh_call = (start_of("weigh")..p.insns.len())
            .find(|&pc| {
                p.insns[pc].src == opcode::PSEUDO_CALL
                    && p.insns[pc].code == opcode::JMP | opcode::CALL
            })
            .unwrap();
        assert_eq!(
            p.lines.lookup(weigh_call).unwrap().line,
            line_of("subprogs.c", "CALL_CLASSIFY")
        );
        assert_eq!(
            p.lines.lookup(start_of("classify")).unwrap().line,
            line_of("subprogs.c", "int classify(")
        );
    }
}

fn err(name: &str) -> LoadError {
    load_object(&data(name)).unwrap_err()
}

#[test]
fn bad_objects_get_distinct_errors() {
    assert!(matches!(err("not_elf.o"), LoadError::NotElf { .. }));
    assert!(matches!(err("truncated.o"), LoadError::MalformedElf { .. }));
    // EM_X86_64 is 62.
    assert!(matches!(err("host_x86.o"), LoadError::WrongMachine { machine: 62, .. }));
    match err("old_section.o") {
        LoadError::UnknownSection { section, .. } => assert_eq!(section, "xdp_prog"),
        e => panic!("{e}"),
    }
    // Without a kernel config (LoadOptions::kconfig unset) a strong
    // CONFIG_ extern cannot be resolved.
    match err("extern_kconfig.o") {
        LoadError::Extern { name, reason, .. } => {
            assert_eq!(name, "CONFIG_XDPQUAL_NEVER_SET");
            assert!(reason.contains("config is not available"), "{reason}");
        }
        e => panic!("{e}"),
    }
    match err("socket_only.o") {
        LoadError::NoXdpProgram { others, .. } => assert!(others.contains("socket"), "{others}"),
        e => panic!("{e}"),
    }
    assert!(matches!(err("no_such_file.o"), LoadError::Io { .. }));
    // Found by the fuzzer: a func_info block claiming 8388609 records, which
    // aya-obj would slice without checking.
    match err("fuzz_btf_ext.o") {
        LoadError::Btf { reason, .. } => {
            assert!(reason.contains("func_info") && reason.contains("8388609"), "{reason}")
        }
        e => panic!("{e}"),
    }
    for name in ["not_elf.o", "truncated.o", "host_x86.o", "old_section.o", "extern_kconfig.o"] {
        assert!(err(name).to_string().contains(name), "{name}");
    }
    // A 32-bit ELF.
    let mut b = std::fs::read(data("btf_maps.o")).unwrap();
    b[4] = 1;
    assert!(matches!(load_object_bytes(&b, &data("x.o")), Err(LoadError::NotElf64 { .. })));
}

/// Offset of section `name` in the file.
fn section_offset(bytes: &[u8], name: &str) -> usize {
    let f = object::File::parse(bytes).unwrap();
    f.section_by_name(name).unwrap().file_range().unwrap().0 as usize
}

#[test]
fn validation_errors_name_instruction_and_source_line() {
    let mut b = std::fs::read(data("btf_maps.o")).unwrap();
    let xdp = section_offset(&b, "xdp");
    let o = load_object(&data("btf_maps.o")).unwrap();
    let call = helper_calls(&o.programs[0], 1)[0];
    // Overwrite the first lookup call with opcode 0xe5 (JMP class, op 0xe0:
    // no such jump).
    b[xdp + call * 8] = 0xe5;
    match load_object_bytes(&b, &data("patched.o")) {
        Err(LoadError::Invalid { program, error, .. }) => {
            assert_eq!(program, "xdp_count");
            assert_eq!((error.insn, error.problem), (call, Problem::UnknownOpcode(0xe5)));
            assert_eq!(error.line.unwrap().line, line_of("btf_maps.c", "LOOKUP_FLOWS"));
        }
        other => panic!("{other:?}"),
    }
    // The same slot as `callx r1`.
    b[xdp + call * 8] = 0x8d;
    b[xdp + call * 8 + 1] = 0x01;
    let e = load_object_bytes(&b, &data("patched.o")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("callx") && msg.contains(&format!("instruction {call}")), "{msg}");
}

#[test]
fn unsupported_relocation_type_is_refused() {
    let mut b = std::fs::read(data("global_data.o")).unwrap();
    // .relxdp holds Elf64_Rel {r_offset u64, r_info u64}; the type is the
    // low 32 bits of r_info. Make the first one R_BPF_64_ABS64 (2).
    let rel = section_offset(&b, ".relxdp");
    b[rel + 8..rel + 12].copy_from_slice(&2u32.to_le_bytes());
    match load_object_bytes(&b, &data("patched.o")) {
        Err(LoadError::Relocation { section, insn, reason, .. }) => {
            assert_eq!(section, "xdp");
            // The first relocation is the lddw of `seen` at byte 0x10.
            assert_eq!(insn, 2);
            assert!(reason.contains("R_BPF_64_ABS64"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// `bpfeb.o` is btf_maps.c built with `-target bpfeb` (build.sh): it loads,
/// says it is big-endian, and has the same programs and maps as the
/// little-endian build.
#[test]
fn big_endian_object_loads_like_its_little_endian_twin() {
    let be = load_object(&data("bpfeb.o")).unwrap_or_else(|e| panic!("{e}"));
    let le = load_object(&data("btf_maps.o")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(be.byte_order, ByteOrder::Big);
    assert_eq!(le.byte_order, ByteOrder::Little);
    let names = |o: &xdpqual::program::Object| {
        o.programs.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&be), names(&le));
    let maps = |o: &xdpqual::program::Object| {
        o.maps
            .iter()
            .map(|m| (m.name.clone(), m.map_type, m.key_size, m.value_size, m.max_entries))
            .collect::<Vec<_>>()
    };
    assert_eq!(maps(&be), maps(&le));
}

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus")).join(name)
}

/// The same instructions with every `BPF_END` to-be turned into to-le: the
/// form in which a bpfel and a bpfeb build of byte-order-neutral C agree.
/// clang emits `__builtin_bswap*` as the END op that swaps on the target
/// (to-be on bpfel, to-le on bpfeb); everything else is the same numbers.
fn end_as_le(insns: &[Insn]) -> Vec<Insn> {
    insns
        .iter()
        .map(|i| {
            if i.class() == opcode::ALU && i.code & 0xf0 == opcode::END {
                Insn { code: i.code & !opcode::X, ..*i }
            } else {
                *i
            }
        })
        .collect()
}

/// Every corpus program's bpfeb build (corpus/build/bpfeb/) loads as a
/// big-endian object with the bpfel build's programs and maps. Where the
/// C uses no byte-order macro (`bpf_htons` and friends), the decoded
/// instructions are the bpfel build's, up to the direction of `BPF_END`
/// (see `end_as_le`). Where it does, they differ, as they must: the
/// macros are byte swaps on bpfel and nothing on bpfeb (bpf_endian.h
/// tests `__BYTE_ORDER__`), so the constants differ (`bpf_htons(0x0800)`
/// is 0x0008 on bpfel, 0x0800 on bpfeb) and the swaps disappear; the
/// bpfeb build then has no to-be op at all. That both builds mean the
/// same is shown by tests/corpus_expectations.rs, which holds the bpfeb
/// builds to the programs' specifications packet by packet.
#[test]
fn corpus_bpfeb_builds_load_and_match_their_bpfel_builds() {
    let macros = ["bpf_htons", "bpf_ntohs", "bpf_htonl", "bpf_ntohl", "bpf_cpu_to_be", "bpf_be"];
    let mut sources: Vec<String> = std::fs::read_dir(corpus(""))
        .unwrap()
        .filter_map(|e| {
            e.ok()?.file_name().into_string().ok()?.strip_suffix(".c").map(String::from)
        })
        .collect();
    sources.sort();
    assert!(sources.len() >= 10, "corpus sources: {sources:?}");
    let (mut same, mut differ) = (Vec::new(), Vec::new());
    for name in &sources {
        let le =
            load_object(&corpus(&format!("build/{name}.v3.o"))).unwrap_or_else(|e| panic!("{e}"));
        let be = load_object(&corpus(&format!("build/bpfeb/{name}.v3.bpfeb.o")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(be.byte_order, ByteOrder::Big, "{name}");
        assert_eq!(be.programs.len(), le.programs.len(), "{name}");
        let maps = |o: &xdpqual::program::Object| {
            o.maps
                .iter()
                .map(|m| (m.name.clone(), m.map_type, m.key_size, m.value_size, m.max_entries))
                .collect::<Vec<_>>()
        };
        assert_eq!(maps(&be), maps(&le), "{name}");
        let text = std::fs::read_to_string(corpus(&format!("{name}.c"))).unwrap();
        let uses_macros = macros.iter().any(|m| text.contains(m));
        for (b, l) in be.programs.iter().zip(&le.programs) {
            assert_eq!(b.name, l.name, "{name}");
            if uses_macros {
                let to_be = b
                    .insns
                    .iter()
                    .filter(|i| {
                        i.class() == opcode::ALU && i.code == opcode::ALU | opcode::END | opcode::X
                    })
                    .count();
                assert_eq!(to_be, 0, "{name}/{}: bpfeb build has to-be ops", b.name);
                differ.push(name.clone());
            } else {
                assert_eq!(end_as_le(&b.insns), end_as_le(&l.insns), "{name}/{}", b.name);
                same.push(name.clone());
            }
        }
    }
    // core, counters, meta, truncate and v4ops use no byte-order macro.
    assert!(same.len() >= 5, "byte-order-neutral programs: {same:?}");
    assert!(!differ.is_empty());
}
