//! `xdpqual inspect` as a user runs it: exit codes, output, messages.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader")).join(name)
}

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).arg("inspect").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn source_line(file: &str, marker: &str) -> (u32, String) {
    let text = std::fs::read_to_string(data(file)).unwrap();
    let (i, l) = text.lines().enumerate().find(|(_, l)| l.contains(marker)).unwrap();
    (i as u32 + 1, l.trim().to_string())
}

#[test]
fn lists_programs_maps_and_annotated_disassembly() {
    let o = inspect(&[data("subprogs.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("xdp_main") && out.contains("xdp_frags"), "{out}");
    assert!(out.contains("sock_filter") && out.contains("type socket_filter  not run"), "{out}");
    // Source lines interleaved before the instructions they produced.
    let (n, text) = source_line("subprogs.c", "CALL_CLASSIFY");
    let annotation = format!("; {text}  (./subprogs.c:{n})");
    let at = out.find(&annotation).unwrap_or_else(|| panic!("no `{annotation}` in\n{out}"));
    // weigh's call to classify follows within the next two instructions.
    let after: Vec<&str> = out[at..].lines().skip(1).take(2).collect();
    assert!(after.iter().any(|l| l.contains("call pc") && l.contains("<classify>")), "{after:?}");
    assert!(out.contains("weigh:\n") && out.contains("classify:\n"), "{out}");
}

#[test]
fn map_table_and_map_names_in_lddw() {
    let o = inspect(&[data("legacy_maps.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row =
        out.lines().find(|l| l.contains("blocklist") && l.contains("HASH")).expect("blocklist row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    // #, name, type, key, value, max_entries, flags
    assert_eq!(&cols[..7], ["0", "blocklist", "HASH", "4", "8", "256", "0x1"]);
    assert!(out.contains("r1 = map[tx_ports]"), "{out}");
    assert!(out.contains("call bpf_redirect_map#51"), "{out}");
}

#[test]
fn json_listing() {
    let o = inspect(&["--json", data("global_data.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["license"], "GPL");
    let maps = v["maps"].as_array().unwrap();
    let ro = maps.iter().find(|m| m["name"] == ".rodata").unwrap();
    assert_eq!(ro["read_only"], true);
    assert_eq!(ro["map_type"], "array");
    assert_eq!(ro["value_size"], 8);
    // { 0x11223344, 0x55667788 } little-endian.
    let bytes: Vec<u64> =
        ro["initial_data"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
    assert_eq!(bytes, [0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55]);
    let p = &v["programs"][0];
    assert_eq!(p["name"], "xdp_globals");
    let dis = p["disassembly"].as_array().unwrap();
    assert_eq!(dis.last().unwrap()["text"], "exit");
    let (n, _) = source_line("global_data.c", "dropped += 1");
    assert!(dis
        .iter()
        .any(|i| i["source"]["line"] == n && i["text"].as_str().unwrap().contains("map[.bss]")));
}

#[test]
fn program_filter() {
    let o = inspect(&["--program", "xdp_frags", data("subprogs.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("disassembly of xdp_frags") && !out.contains("disassembly of xdp_main"),
        "{out}"
    );
    let o = inspect(&["--program", "nope", data("subprogs.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no XDP program or section named `nope`"), "{}", stderr(&o));
}

#[test]
fn bad_inputs_exit_2_with_one_paragraph() {
    let cases = [
        ("not_elf.o", "is not an ELF file"),
        ("truncated.o", "truncated or malformed ELF"),
        ("host_x86.o", "EM_X86_64"),
        ("extern_kconfig.o", "extern `CONFIG_XDPQUAL_NEVER_SET`"),
        ("does_not_exist.o", "cannot read"),
        ("fuzz_btf_ext.o", ".BTF.ext"),
    ];
    for (file, want) in cases {
        let o = inspect(&[data(file).to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.starts_with("xdpqual: error: "), "{file}: {err}");
        assert!(err.contains(file) && err.contains(want), "{file}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
        assert!(stdout(&o).is_empty(), "{file}");
    }
}

#[test]
fn socket_only_object_is_listed_not_refused() {
    let o = inspect(&[data("socket_only.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("only_socket") && out.contains("not run"), "{out}");
    assert!(out.contains("license \"Dual MIT/GPL\""), "{out}");
}

/// inspect lists a section of no known type with how to run it, where
/// every other command refuses it (tests/program_types.rs).
#[test]
fn untyped_section_is_listed_with_the_override() {
    let o = inspect(&[data("old_section.o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("xdp_old") && out.contains("type unknown: pass --type xdp or PROG.o:SECTION"),
        "{out}"
    );
}

/// One program with everything the loader reports (everything.c): the
/// section's type, its CO-RE relocation, its kfunc, its `__ksym` variable
/// and its map-in-map's inner-map template and static slot. The relocated
/// offset is worked out from the UAPI `struct xdp_md` (five u32 fields:
/// `rx_queue_index`, local offset 0 in `xdp_md___ev`, is at byte 16).
#[test]
fn one_program_shows_section_type_core_kfuncs_ksyms_and_inner_maps() {
    if common::host_btf_has_func("bpf_xdp_metadata_rx_hash") != Some(true) {
        xdpqual::util::skip("inspect everything.o: the host BTF has no bpf_xdp_metadata_rx_hash");
        return;
    }
    let o = inspect(&[data("everything.o").to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let has = |line_start: &str, parts: &[&str]| {
        out.lines()
            .any(|l| l.trim_start().starts_with(line_start) && parts.iter().all(|p| l.contains(p)))
    };
    assert!(has("xdp_everything", &["section xdp", "type xdp (BPF_XDP)"]), "{out}");
    assert!(out.contains("CO-RE relocations (1, resolved against"), "{out}");
    assert!(has("xdp insn 0:", &["byte_off", "xdp_md___ev", "0 -> 16"]), "{out}");
    assert!(out.contains("kfuncs (1,"), "{out}");
    assert!(
        has("bpf_xdp_metadata_rx_hash", &["modelled by the engine", "xdp_everything@"]),
        "{out}"
    );
    assert!(out.contains("__ksym variables (1;"), "{out}");
    assert!(has("schedule", &["untyped"]), "{out}");
    assert!(has("ARRAY", &["inner-map template"]), "{out}");
    assert!(out.contains("initialised slots: [0] = counts"), "{out}");
}
