//! The bpf_conformance suite through the running kernel, compared with each
//! file's expected result and with the engine.
//!
//! How a test becomes an XDP program: bpf_conformance runs the kernel with
//! its libbpf plugin (libbpf_plugin/libbpf_plugin.cc loads the bytes as
//! `BPF_PROG_TYPE_XDP` and test-runs them with the test memory as packet
//! data); its runner's `--xdp_prolog` (`_generate_xdp_prolog` in
//! src/bpf_conformance.cc) puts in front of the test a prolog that sets
//! r1 = ctx->data, checks `data + len <= data_end` and sets r2 = len. The
//! result there is test-run's 32-bit `retval`. To compare all 64 bits, we
//! call the test body as a BPF-to-BPF function after the same prolog and
//! store its r0 into an ARRAY map value, which we read back.
//! - A test without memory gets r1 = 0, r2 = 0 (what the engine's
//!   conformance runtime passes) and a 14-byte zero frame, the shortest
//!   test-run takes (ETH_HLEN, net/bpf/test_run.c).
//! - Memory shorter than 14 bytes is padded to 14; r2 stays its length.
//! - Helper 5 is `bpf_ktime_get_ns` in the kernel, the suite's "unwind" in
//!   the engine (see `conformance.rs`); only call_unwind_fail uses it and
//!   both continue there (non-zero return).
//!
//! Per-file outcomes are recorded in `tests/data/kernel-conformance.txt`;
//! `XDPQUAL_BLESS_KERNEL=1` rewrites it. The test fails when the current
//! kernel's outcomes differ from the file (same kernel release series), or
//! when the engine and the kernel both run a file and disagree on r0
//! without the file being one of the engine's known exceptions.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xdpqual::backends::host::{HostBackend, RunFlags, SessionOutcome, XdpCtx};
use xdpqual::engine::{Engine, Outcome};
use xdpqual::isa::{opcode as op, Insn};
use xdpqual::program::{LineTable, MapDef, MapOrigin, MapType, Object, Program};
use xdpqual_testkit::conformance::{data_files, ConformanceTest};

const RECORD: &str = "tests/data/kernel-conformance.txt";
const ETH_HLEN: usize = 14;

/// Prolog + call + result store, then the body as a subprogram.
fn wrap(body: &[Insn], mem_len: usize) -> Vec<Insn> {
    let mut v = Vec::new();
    if mem_len > 0 {
        v.extend([
            Insn::new(op::LDX | op::SIZE_W | op::MODE_MEM, 2, 1, 0, 0), // r2 = data
            Insn::new(op::LDX | op::SIZE_W | op::MODE_MEM, 3, 1, 4, 0), // r3 = data_end
            Insn::new(op::ALU64 | op::MOV | op::X, 1, 2, 0, 0),         // r1 = data
            Insn::new(op::ALU64 | op::MOV | op::X, 4, 2, 0, 0),
            Insn::new(op::ALU64 | op::ADD | op::K, 4, 0, 0, mem_len as i32),
            Insn::new(op::JMP | op::JLE | op::X, 4, 3, 2, 0), // in bounds: go on
            Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 0),
            Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
            Insn::new(op::ALU64 | op::MOV | op::K, 2, 0, 0, mem_len as i32), // r2 = len
        ]);
    } else {
        v.extend([
            Insn::new(op::ALU64 | op::MOV | op::K, 1, 0, 0, 0),
            Insn::new(op::ALU64 | op::MOV | op::K, 2, 0, 0, 0),
        ]);
    }
    // call body; r1 = &result; result.r0 = r0; result.done = 1; exit
    let tail = 6;
    v.push(Insn::new(op::JMP | op::CALL, 0, op::PSEUDO_CALL, 0, tail));
    v.push(Insn::new(op::LD_DW_IMM, 1, op::PSEUDO_MAP_VALUE, 0, 0));
    v.push(Insn::new(0, 0, 0, 0, 0));
    v.push(Insn::new(op::STX | op::SIZE_DW | op::MODE_MEM, 1, 0, 0, 0));
    v.push(Insn::new(op::ST | op::SIZE_DW | op::MODE_MEM, 1, 0, 8, 1));
    v.push(Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 2)); // XDP_PASS
    v.push(Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0));
    v.extend_from_slice(body);
    v
}

fn object(insns: Vec<Insn>) -> Object {
    let map = MapDef {
        name: "result".into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 16,
        max_entries: 1,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    };
    let prog = Program {
        name: "conformance_test".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines: LineTable::default(),
        functions: Vec::new(),
    };
    Object {
        path: "conformance".into(),
        programs: vec![prog],
        maps: vec![map],
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kernel {
    /// The kernel ran it to the end; its 64-bit r0.
    Ran(u64),
    Refused(String),
    RunError(String),
}

fn kernel_run(host: &HostBackend, test: &ConformanceTest, body: &[Insn]) -> Kernel {
    let obj = object(wrap(body, test.mem.len()));
    let session = match host.load(&obj, &obj.programs[0]) {
        Err(e) => return Kernel::RunError(format!("load: {e}")),
        Ok(SessionOutcome::Rejected(r)) => {
            return Kernel::Refused(
                r.rejection
                    .first_error_line
                    .unwrap_or_else(|| format!("errno {}", r.rejection.errno)),
            )
        }
        Ok(SessionOutcome::Ready(s)) => s,
    };
    let mut frame = test.mem.clone();
    if frame.len() < ETH_HLEN {
        frame.resize(ETH_HLEN, 0);
    }
    if let Err(e) = session.run(&frame, XdpCtx::loopback(), 1, RunFlags::default()) {
        return Kernel::RunError(format!("test-run: {e}"));
    }
    let v = match session.maps()[0].lookup(&0u32.to_le_bytes()) {
        Ok(Some(v)) => v,
        other => return Kernel::RunError(format!("reading the result map: {other:?}")),
    };
    if v[8] != 1 {
        return Kernel::RunError("the body did not return (prolog bounds check failed)".into());
    }
    Kernel::Ran(u64::from_le_bytes(v[..8].try_into().unwrap()))
}

fn engine_run(test: &ConformanceTest, body: Vec<Insn>) -> Option<u64> {
    let mut e = Engine::conformance(body).ok()?;
    let mut mem = test.mem.clone();
    match e.run_raw(&mut mem).0 {
        Outcome::Exit { r0 } => Some(r0),
        _ => None,
    }
}

/// One line of the record: outcome word and detail.
fn outcome(test: &ConformanceTest, k: &Kernel) -> (String, String) {
    match (k, test.result, &test.error) {
        (Kernel::Ran(r0), Some(want), _) if *r0 == want => ("pass".into(), String::new()),
        (Kernel::Ran(r0), Some(want), _) => {
            ("fail".into(), format!("kernel r0={r0:#x}, file expects {want:#x}"))
        }
        (Kernel::Ran(r0), None, _) => {
            ("fail".into(), format!("kernel ran it (r0={r0:#x}), file expects an error"))
        }
        (Kernel::Refused(why), _, Some(_)) => ("refused-as-expected".into(), why.clone()),
        (Kernel::Refused(why), _, None) => ("refused".into(), why.clone()),
        (Kernel::RunError(why), _, _) => ("run-error".into(), why.clone()),
    }
}

fn read_record(path: &Path) -> (Option<String>, BTreeMap<String, (String, String)>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut kernel = None;
    let mut map = BTreeMap::new();
    for l in text.lines() {
        if let Some(k) = l.strip_prefix("# kernel: ") {
            kernel = Some(k.trim().to_string());
        }
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut parts = l.splitn(3, '\t');
        let name = parts.next().unwrap_or_default().to_string();
        let word = parts.next().unwrap_or_default().to_string();
        let detail = parts.next().unwrap_or_default().to_string();
        map.insert(name, (word, detail));
    }
    (kernel, map)
}

/// "6.18.0-foo" -> "6.18": outcomes are compared within a release series.
fn series(release: &str) -> String {
    release.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn engine_exceptions() -> Vec<String> {
    include_str!("data/engine-conformance-exceptions.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn bpf_conformance_suite_through_the_kernel() {
    let Some(dir) = xdpqual::util::shared_dir("conformance/bpf_conformance/tests") else {
        xdpqual::util::skip(format_args!(
            "shared/conformance/bpf_conformance/tests not found above the checkout"
        ));
        return;
    };
    let host = match HostBackend::open() {
        Ok(h) => h,
        Err(u) => {
            xdpqual::util::skip(format_args!("host kernel backend unavailable: {u}"));
            return;
        }
    };
    let files = data_files(&dir).expect("list conformance files");
    assert!(files.len() >= 300, "expected the full suite, found {} files", files.len());
    let exceptions = engine_exceptions();
    let mut rows: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut engine_vs_kernel = Vec::new();
    let mut kernel_vs_file = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let test = ConformanceTest::load(file).unwrap_or_else(|e| panic!("{e}"));
        let body = match test.program(file) {
            Ok(b) => b,
            Err(e) => {
                rows.insert(name, ("unassembled".into(), e.to_string()));
                continue;
            }
        };
        let k = kernel_run(&host, &test, &body);
        let (word, detail) = outcome(&test, &k);
        if word == "fail" {
            kernel_vs_file.push(format!("{name}: {detail}"));
        }
        if let Kernel::Ran(kr0) = k {
            let e = engine_run(&test, body);
            if e != Some(kr0) && !exceptions.contains(&name) {
                engine_vs_kernel.push(format!("{name}: engine {e:x?}, kernel {kr0:#x}"));
            }
        }
        rows.insert(name, (word, detail.replace(['\t', '\n'], " ")));
    }
    let count = |w: &str| rows.values().filter(|(x, _)| x == w).count();
    xdpqual::util::count(format_args!(
        "bpf_conformance through kernel {}: {} pass, {} fail, {} refused, {} refused as the file expects, {} run errors, {} unassembled, of {} files",
        host.kernel_release(),
        count("pass"),
        count("fail"),
        count("refused"),
        count("refused-as-expected"),
        count("run-error"),
        count("unassembled"),
        files.len()
    ));
    for (name, (w, d)) in &rows {
        if w != "pass" {
            println!("  {name}: {w} {d}");
        }
    }
    xdpqual::util::count(format_args!("kernel vs file disagreements: {}", kernel_vs_file.len()));
    for d in &kernel_vs_file {
        println!("  {d}");
    }

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(RECORD);
    if std::env::var("XDPQUAL_BLESS_KERNEL").as_deref() == Ok("1") {
        let mut text = String::from(
            "# bpf_conformance through the host kernel: per-file outcome (see tests/kernel_conformance.rs).\n\
             # Written by XDPQUAL_BLESS_KERNEL=1; compared on kernels of the same release series.\n\
             # Outcomes: pass | fail (kernel r0 differs from the file) | refused (verifier message)\n\
             # | refused-as-expected (the file expects an error) | run-error | unassembled.\n",
        );
        text.push_str(&format!("# kernel: {}\n", host.kernel_release()));
        for (name, (w, d)) in &rows {
            text.push_str(&format!("{name}\t{w}\t{d}\n").replace("\t\n", "\n"));
        }
        std::fs::write(&path, text).expect("write the record");
        println!("blessed {}", path.display());
    } else {
        let (release, recorded) = read_record(&path);
        match release {
            None => panic!(
                "{} is missing or has no '# kernel:' line; run with XDPQUAL_BLESS_KERNEL=1",
                path.display()
            ),
            Some(r) if series(&r) != series(host.kernel_release()) => {
                xdpqual::util::skip(format_args!(
                    "(record comparison only): {} was blessed on kernel {r}, this is {}",
                    path.display(),
                    host.kernel_release()
                ))
            }
            Some(_) => {
                let mut diffs = Vec::new();
                for name in
                    rows.keys().chain(recorded.keys()).collect::<std::collections::BTreeSet<_>>()
                {
                    let now = rows.get(name).map(|(w, d)| format!("{w} {d}").trim().to_string());
                    let then =
                        recorded.get(name).map(|(w, d)| format!("{w} {d}").trim().to_string());
                    if now != then {
                        diffs.push(format!("{name}: recorded {then:?}, now {now:?}"));
                    }
                }
                assert!(
                    diffs.is_empty(),
                    "kernel conformance outcomes changed (re-bless only after checking why):\n{}",
                    diffs.join("\n")
                );
            }
        }
    }
    assert!(
        engine_vs_kernel.is_empty(),
        "the engine and the kernel disagree on r0:\n{}",
        engine_vs_kernel.join("\n")
    );
}
