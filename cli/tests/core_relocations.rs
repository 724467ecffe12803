//! CO-RE relocations (issue 14 item 2) on corpus/core.c, whose local struct
//! layouts differ from the kernel's on purpose.
//!
//! The expected values are the kernel's UAPI layouts, not our output:
//! `struct xdp_md` has `data` at 0 and `data_end` at 4
//! (include/uapi/linux/bpf.h); `struct ethhdr` has `h_proto` at 12
//! (include/uapi/linux/if_ether.h); `struct iphdr` is 20 bytes with `ttl` at
//! 8 and `protocol` at 9 (include/uapi/linux/ip.h, RFC 791). Agreement with
//! the kernel on packets is checked by `differential` and the specification
//! by `corpus_expectations`; this file checks what the loader reports and
//! what it does with a target BTF the user chooses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use xdpqual::engine::{Engine, EngineConfig, FaultKind, Outcome, PacketIn};
use xdpqual::loader::{inspect_object_with, CoreOutcome, LoadOptions, TargetBtf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn core_object() -> PathBuf {
    root().join("corpus/build/core.v3.o")
}

fn host_btf() -> Option<&'static Path> {
    let p = Path::new(xdpqual::loader::core::HOST_BTF);
    p.exists().then_some(p)
}

fn xdpqual(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// (kind, local type, access string) -> outcome, for every relocation.
fn outcomes(opts: &LoadOptions) -> Vec<(String, String, String, CoreOutcome)> {
    let loaded = inspect_object_with(&core_object(), opts).expect("core.v3.o loads");
    loaded
        .core_relocations
        .into_iter()
        .map(|r| (r.kind.to_string(), r.local_type, r.access, r.outcome))
        .collect()
}

fn find<'a>(
    all: &'a [(String, String, String, CoreOutcome)],
    kind: &str,
    ty: &str,
    access: &str,
) -> Vec<&'a CoreOutcome> {
    all.iter().filter(|(k, t, a, _)| k == kind && t == ty && a == access).map(|(.., o)| o).collect()
}

#[test]
fn relocations_resolve_to_the_host_kernels_layouts() {
    if host_btf().is_none() {
        xdpqual::util::skip(format_args!(
            "core_relocations: this kernel publishes no BTF at {}",
            xdpqual::loader::core::HOST_BTF
        ));
        return;
    }
    let all = outcomes(&LoadOptions::default());
    let one = |kind: &str, ty: &str, access: &str| -> CoreOutcome {
        let found = find(&all, kind, ty, access);
        assert!(!found.is_empty(), "no {kind} relocation of {ty} [{access}] in {all:#?}");
        // Every occurrence of one access resolves alike.
        assert!(found.windows(2).all(|w| w[0] == w[1]), "{found:?}");
        found[0].clone()
    };
    // Local xdp_md___xq: data_end at 0, data at 4; the kernel's are 4 and 0.
    assert_eq!(one("byte_off", "xdp_md___xq", "0:0"), CoreOutcome::Rewritten { from: 0, to: 4 });
    assert_eq!(one("byte_off", "xdp_md___xq", "0:1"), CoreOutcome::Rewritten { from: 4, to: 0 });
    // ethhdr___xq has the kernel's layout: h_proto stays at 12.
    assert_eq!(one("byte_off", "ethhdr___xq", "0:2"), CoreOutcome::Unchanged { value: 12 });
    // Local iphdr___xq: protocol 0, ttl 1; kernel: ttl 8, protocol 9.
    assert_eq!(one("byte_off", "iphdr___xq", "0:1"), CoreOutcome::Rewritten { from: 1, to: 8 });
    assert_eq!(one("byte_off", "iphdr___xq", "0:0"), CoreOutcome::Rewritten { from: 0, to: 9 });
    // The local struct is 8 bytes (u8, u8, pad, u32); the kernel's 20.
    assert_eq!(one("type_size", "iphdr___xq", "0"), CoreOutcome::Rewritten { from: 8, to: 20 });
    // No kernel has xq_missing: exists -> 0, and the read behind it poisoned.
    assert_eq!(one("field_exists", "iphdr___xq", "0:2"), CoreOutcome::Rewritten { from: 1, to: 0 });
    assert_eq!(one("byte_off", "iphdr___xq", "0:2"), CoreOutcome::Poisoned);

    // inspect prints them, with the target named.
    let (code, out, err) = xdpqual(&["inspect", core_object().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("CO-RE relocations (10, resolved against /sys/kernel/btf/vmlinux)"),
        "{out}"
    );
    assert!(out.contains("byte_off iphdr___xq [0:1] 1 -> 8"), "{out}");
    assert!(out.contains("poisoned (call 0xbad2310)"), "{out}");
}

// ------------------------------------------------------- a BTF of our own

/// Raw BTF (Documentation/bpf/btf.rst) holding `u32` and one struct
/// `xdp_md { u32 data; u32 data_end; }` and nothing else: a "kernel" with
/// no `ethhdr` and no `iphdr`.
fn xdp_md_only_btf() -> Vec<u8> {
    let strings = b"\0u32\0xdp_md\0data\0data_end\0";
    let (u32_name, xdp_md_name, data_name, data_end_name) = (1u32, 5u32, 12u32, 17u32);
    let mut types: Vec<u32> = Vec::new();
    // [1] INT u32: info = kind 1 << 24, size 4, encoding word: 32 bits.
    types.extend([u32_name, 1 << 24, 4, 32]);
    // [2] STRUCT xdp_md: kind 4, vlen 2, size 8; members (name, type, bit offset).
    types.extend([xdp_md_name, (4 << 24) | 2, 8]);
    types.extend([data_name, 1, 0, data_end_name, 1, 32]);
    let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut btf = Vec::new();
    btf.extend(0xeb9fu16.to_le_bytes());
    btf.extend([1u8, 0]); // version, flags
    for w in [24u32, 0, type_bytes.len() as u32, type_bytes.len() as u32, strings.len() as u32] {
        btf.extend(w.to_le_bytes());
    }
    btf.extend(type_bytes);
    btf.extend(strings);
    btf
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-core-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_chosen_btf_resolves_differently_and_unresolved_reads_fault_when_reached() {
    let dir = scratch("own");
    let btf = dir.join("tiny.btf");
    std::fs::write(&btf, xdp_md_only_btf()).unwrap();
    let all =
        outcomes(&LoadOptions { target_btf: TargetBtf::File(btf.clone()), ..Default::default() });
    // xdp_md resolves as on any kernel...
    assert_eq!(
        find(&all, "byte_off", "xdp_md___xq", "0:0"),
        vec![&CoreOutcome::Rewritten { from: 0, to: 4 }]
    );
    // libbpf gives a type-based relocation whose type the target lacks the
    // value 0 (relo_core.c bpf_core_calc_type_relo), not a poisoned insn.
    assert_eq!(
        find(&all, "type_size", "iphdr___xq", "0"),
        vec![&CoreOutcome::Rewritten { from: 8, to: 0 }]
    );
    // ...but this "kernel" has no ethhdr and no iphdr: every field access
    // into them is poisoned.
    for (kind, ty, access, outcome) in &all {
        if kind == "byte_off" && ty != "xdp_md___xq" {
            assert_eq!(outcome, &CoreOutcome::Poisoned, "{kind} {ty} [{access}]");
        }
    }

    // Run with that BTF, an Ethernet frame reaches the poisoned h_proto
    // read (instruction 6): a fault there, named as such. A 13-byte frame
    // is not run at all (test-run refuses frames shorter than ETH_HLEN).
    let obj = xdpqual::loader::load_target(
        &core_object(),
        &LoadOptions { target_btf: TargetBtf::File(btf.clone()), ..Default::default() },
    )
    .unwrap();
    let mut engine = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    let mut frame = vec![0u8; 60];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let run =
        engine.run_xdp(&PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 });
    match &run.outcome {
        Outcome::Fault(f) => {
            assert_eq!(f.pc, 6, "{f}");
            assert_eq!(f.kind, FaultKind::CorePoisoned, "{f}");
            assert!(f.to_string().contains("poisoned by an unresolved CO-RE relocation"), "{f}");
        }
        other => panic!("expected a fault at the poisoned read, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_btf_file_is_a_clear_error() {
    let dir = scratch("bad");
    let garbage = dir.join("garbage.btf");
    std::fs::write(&garbage, b"this is not BTF at all, just text\n").unwrap();
    let missing = dir.join("missing.btf");
    for (what, path) in [("garbage", &garbage), ("missing", &missing)] {
        let (code, out, err) =
            xdpqual(&["inspect", "--btf", path.to_str().unwrap(), core_object().to_str().unwrap()]);
        assert_eq!(code, 2, "{what}: {out}{err}");
        assert!(err.contains("CO-RE relocations") && err.contains("--btf FILE"), "{what}: {err}");
        assert!(err.contains(path.to_str().unwrap()), "{what}: the message names the file: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_core_records_are_refused_before_the_parser_reads_them() {
    // Point core_relo_len of .BTF.ext past the end of the section.
    let bytes = std::fs::read(core_object()).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    use object::{Object, ObjectSection};
    let sec = file.section_by_name(".BTF.ext").expect("core.v3.o has .BTF.ext");
    let (start, _) = sec.file_range().unwrap();
    let mut bad = bytes.clone();
    let at = start as usize + 28; // btf_ext_header.core_relo_len
    bad[at..at + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let err = xdpqual::loader::inspect_object_bytes(&bad, Path::new("bad-core.o"))
        .expect_err("an out-of-range core_relo subsection is refused");
    let msg = err.to_string();
    assert!(msg.contains("bad-core.o") && msg.contains("core_relo"), "{msg}");
}
