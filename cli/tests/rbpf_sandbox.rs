//! Hostile programs against rbpf's JIT sandbox (issue 15, item 1).
//!
//! rbpf's interpreter and JIT give a program different `r10` values: the
//! interpreter a heap buffer (`interpreter.rs`: `stack.as_ptr() +
//! stack.len()`), the JIT the native stack (`jit.rs`: `mov rbp, rsp` after
//! five pushes). The sandbox builds the XDP mbuff (`r1`) on the child's
//! stack in both passes, so `r1 - r10` is a few hundred bytes in the JIT
//! (the mbuff sits in a caller's frame just above the JIT's) and, in the
//! interpreter, the distance from a stack to a heap block: never within
//! 1 MiB (the heap is not inside the thread's stack mapping). The programs
//! below take their hostile branch only when `r10` is within 1 MiB below
//! `r1`, i.e. only under the JIT: exactly the attack that a "the
//! interpreter ran it first" gate lets through.
//!
//! Each asserts that this process survives, that the row reports an error
//! or mismatch, and that no output carries the leaked value.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xdpqual::backends::rbpf::rewrite_xdp_ctx;
use xdpqual::backends::rbpf::sandbox::{self, Ctx, Job, Timed};
use xdpqual::bench::{self, measure, BackendId, BenchOptions, Outcome};
use xdpqual::engine::{Engine, EngineConfig, PacketIn};
use xdpqual::isa::asm::assemble;
use xdpqual::isa::encode_le;
use xdpqual::program::{LineTable, Object, Program};

/// Falls through into the JIT-only code when `r10` is within 1 MiB below
/// `r1`; otherwise jumps to `safe`, which returns XDP_PASS (2).
const JIT_ONLY: &str = "
    mov %r2, %r10
    sub %r2, %r1
    add %r2, 0x100000
    jge %r2, 0x100000, safe
";
const SAFE: &str = "
safe:
    mov %r0, 2
    exit
";

/// A value no run produces by chance; the leak tests look for it.
const MARKER: u64 = 0x4142_4344_4546_4748;

fn program(body: &str) -> Program {
    Program {
        name: "hostile".into(),
        section: "xdp".into(),
        frags: false,
        insns: assemble(body).unwrap_or_else(|e| panic!("{e}\n{body}")),
        lines: LineTable { entries: vec![] },
        functions: vec![(0, "hostile".into())],
    }
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = vec![0u8; 60];
            f[12] = 0x08;
            f[20] = i as u8;
            f
        })
        .collect()
}

fn opts() -> BenchOptions {
    BenchOptions {
        backends: vec![BackendId::RbpfInterp, BackendId::RbpfJit],
        rounds: 3,
        repeat: 1,
        packets: 64,
        kernel_sample: 1,
        ..BenchOptions::default()
    }
}

/// Any decimal run of 10+ digits (>= 1e9, where no figure of these runs
/// gets) or `0x` with 8+ hex digits: the shapes a host address takes.
fn long_numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for w in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        let hex = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X"));
        if hex.is_some_and(|h| h.len() >= 8 && h.chars().all(|c| c.is_ascii_hexdigit())) {
            found.push(w.to_string());
        }
    }
    // Numbers as `digits[.digits]`: the integer part counts, a fraction's
    // digits do not (figures like 18.237847222222225 are fine).
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let int = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if int >= 10 {
                found.push(text[i..i + int].to_string());
            }
            i += int;
            if b.get(i) == Some(&b'.') {
                i += 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            }
        } else {
            i += 1;
        }
    }
    found
}

fn assert_no_leak(text: &str, extra: &[u64]) {
    let found = long_numbers(text);
    assert!(found.is_empty(), "address-like numbers {found:?} in:\n{text}");
    for v in extra.iter().chain([&MARKER]) {
        for s in [format!("{v}"), format!("{v:x}"), format!("{v:X}")] {
            assert!(!text.contains(&s), "{s} leaked into:\n{text}");
        }
    }
}

/// Runs the rbpf rows through `bench::run`, the way `xdpqual bench` does,
/// and returns (rbpf-jit's outcome, the JSON and the table).
fn bench_rows(p: &Program) -> (Outcome, String) {
    let obj = Object {
        path: "hostile.o".into(),
        programs: vec![p.clone()],
        maps: vec![],
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    };
    let r = bench::run(&obj, p, Path::new("frames.pcap"), &frames(40), &opts()).unwrap();
    let json = serde_json::to_string_pretty(&r).unwrap();
    let text = format!("{json}\n{}", bench::render::table(&r));
    let jit = r.rows.iter().find(|r| r.backend == BackendId::RbpfJit).unwrap().outcome.clone();
    (jit, text)
}

fn skipped(o: &Outcome) -> &str {
    match o {
        Outcome::Skipped(why) => why,
        Outcome::Measured(m) => panic!("the rbpf-jit row measured a hostile program: {m:?}"),
    }
}

/// (a) Under the JIT, overwrite the saved registers and the return address
/// above r10 (jit.rs pushes rbp, rbx, r13, r14, r15: the return address is
/// at r10+40) with 0x4141..: the child dies on its way out of the program.
#[test]
fn stack_smash_kills_only_the_child() {
    let body = format!(
        "{JIT_ONLY}
    lddw %r3, 0x4141414141414141
    stxdw [%r10+0], %r3
    stxdw [%r10+8], %r3
    stxdw [%r10+16], %r3
    stxdw [%r10+24], %r3
    stxdw [%r10+32], %r3
    stxdw [%r10+40], %r3
    stxdw [%r10+48], %r3
    mov %r0, 2
    exit
{SAFE}"
    );
    let p = program(&body);
    let (jit, text) = bench_rows(&p);
    let why = skipped(&jit);
    // The return address 0x4141414141414141 is not canonical: the `ret`
    // faults (a general protection fault, delivered as SIGSEGV).
    assert!(why.starts_with("rbpf JIT child: killed by SIGSEGV after 0 of 40 packets"), "{why}");
    assert_no_leak(&text, &[0x4141_4141_4141_4141]);
    // The interpreter row, in its own child, measured all 40 (it never
    // takes the branch).
    assert!(text.contains("\"backend\": \"rbpf-interp\",\n      \"measured\""), "{text}");
}

/// (b) Return host pointers as r0: r10 in both engines (they differ), or
/// r1, or a marker only under the JIT. Each is a mismatch count, never a
/// value in the report.
#[test]
fn pointer_returns_are_counted_not_reported() {
    for body in [
        "mov %r0, %r10\nexit".to_string(),
        "mov %r0, %r1\nexit".to_string(),
        format!("{JIT_ONLY}\nlddw %r0, {MARKER:#x}\nexit\n{SAFE}"),
        format!("{JIT_ONLY}\nmov %r0, %r10\nexit\n{SAFE}"),
    ] {
        let p = program(&body);
        let (jit, text) = bench_rows(&p);
        match (&jit, body.starts_with("mov %r0, %r1")) {
            // r1 is the mbuff on the child's stack in both passes, maybe
            // at one address: agreement is then a measurement.
            (Outcome::Measured(_), true) => {}
            _ => {
                let why = skipped(&jit);
                assert!(
                    why.starts_with(
                        "rbpf's JIT disagreed with its interpreter on 40 of 40 packets"
                    ),
                    "{body}: {why}"
                );
            }
        }
        assert_no_leak(&text, &[]);
    }
}

/// (c) A loop only the JIT enters (rbpf's verifier refuses only a jump to
/// itself, so the loop has a body): rbpf has no instruction budget, so the
/// child's deadline stops it. And a loop in rbpf's interpreter, which also
/// runs in a child now, is stopped the same way instead of hanging bench.
#[test]
fn endless_loops_are_killed_at_the_deadline() {
    let body = format!("{JIT_ONLY}\nspin:\nadd %r3, 1\nja spin\n{SAFE}");
    let bytes = encode_le(&rewrite_xdp_ctx(&program(&body).insns).unwrap());
    let inputs = frames(5);
    let inputs: Vec<&[u8]> = inputs.iter().map(|f| f.as_slice()).collect();
    let mut job = Job {
        bytecode: &bytes,
        ctx: Ctx::Xdp { ingress_ifindex: 1, rx_queue_index: 0 },
        inputs: &inputs,
        jit: true,
        timed: Timed::Jit,
        rounds: 2,
        timeout: Duration::from_millis(1500),
    };
    let e = sandbox::run(&job).unwrap_err().to_string();
    assert!(e.starts_with("rbpf JIT child: did not finish within 1.5 s"), "{e}");
    assert!(e.contains("after 0 of 5 packets"), "{e}");
    let bytes = encode_le(&assemble("spin:\nadd %r3, 1\nja spin\nexit").unwrap());
    job.bytecode = &bytes;
    job.jit = false;
    job.timed = Timed::Interpreter;
    let e = sandbox::run(&job).unwrap_err().to_string();
    assert!(e.starts_with("rbpf interpreter child: did not finish within 1.5 s"), "{e}");
    assert!(e.contains("in rbpf's interpreter after 0 of 5 packets"), "{e}");
}

/// (d) A normal program: both rows measure every frame, and the JIT's
/// verdicts are the interpreter's (the row fails otherwise). Expected
/// values worked out from the frames: byte 20 odd -> XDP_DROP (1), even ->
/// XDP_PASS (2).
#[test]
fn a_normal_program_is_measured_and_agrees() {
    let body = "
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 21
        jgt %r4, %r3, pass
        ldxb %r5, [%r2+20]
        and %r5, 1
        jeq %r5, 0, pass
        mov %r0, 1
        exit
    pass:
        mov %r0, 2
        exit";
    let p = program(body);
    let m = measure::rbpf(&p, &frames(40), &opts(), true).unwrap();
    assert_eq!(m.packets, 40);
    assert_eq!(m.ns_per_packet.rounds, 3);
    let m = measure::rbpf(&p, &frames(40), &opts(), false).unwrap();
    assert_eq!(m.packets, 40);
    // The per-packet verdicts, through the sandbox directly.
    let bytes = encode_le(&rewrite_xdp_ctx(&p.insns).unwrap());
    let inputs = frames(4);
    let inputs: Vec<&[u8]> = inputs.iter().map(|f| f.as_slice()).collect();
    let job = Job {
        bytecode: &bytes,
        ctx: Ctx::Xdp { ingress_ifindex: 1, rx_queue_index: 0 },
        inputs: &inputs,
        jit: true,
        timed: Timed::None,
        rounds: 0,
        timeout: Duration::from_secs(30),
    };
    let r = sandbox::run(&job).unwrap();
    assert_eq!(r.interpreter, vec![Some(2), Some(1), Some(2), Some(1)]);
    assert_eq!(r.mismatches(), 0);
    assert_eq!((0..4).map(|k| r.jit_agreeing(k)).collect::<Vec<_>>(), r.interpreter);
}

/// Item 4: in our own engine a program cannot tell the interpreter from
/// the JIT. It stores r10 and r1 into the packet and returns their
/// difference; both executors must give the same bytes and r0 (the JIT
/// keeps the interpreter's addresses).
#[test]
fn engine_interpreter_and_jit_show_the_same_addresses() {
    let body = "
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 32
        jgt %r4, %r3, out
        stxdw [%r2+0], %r10
        stxdw [%r2+8], %r1
        mov %r5, %r10
        stxdw [%r2+16], %r5
        mov %r0, %r10
        sub %r0, %r1
        stxdw [%r2+24], %r0
        exit
    out:
        mov %r0, 0
        exit";
    let p = program(body);
    let obj = Object {
        path: "addresses.o".into(),
        programs: vec![p],
        maps: vec![],
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    };
    let frame = vec![0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let run = |jit: bool| {
        let mut e = Engine::new(&obj, None, EngineConfig { jit, ..Default::default() }).unwrap();
        if jit {
            assert!(
                matches!(e.exec_mode(), xdpqual::engine::ExecMode::Jit),
                "the JIT must compile this program: {}",
                e.exec_mode()
            );
        }
        let r = e.run_xdp(&pkt);
        (format!("{:?}", r.outcome), r.output, r.insns, r.executor.map(|x| format!("{x:?}")))
    };
    let (interp, jit) = (run(false), run(true));
    assert_ne!(interp.3, jit.3, "two different executors ran");
    assert!(interp.0.starts_with("Exit"), "{interp:?}");
    assert_eq!((&interp.0, &interp.1, interp.2), (&jit.0, &jit.1, jit.2));
    // The stores happened: r10 and r1 are in the frame, non-zero.
    assert_ne!(&interp.1[..16], &[0u8; 16]);
}

/// End to end: the real binary on an object written by clang from BPF
/// assembly, all rows: it exits 0, 1 or 2 (not by a signal), the rbpf-jit
/// row reports the child's death, and neither stdout, stderr nor the JSON
/// carries an address.
#[test]
fn xdpqual_bench_survives_a_stack_smashing_object() {
    let clang = ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    let Some(clang) = clang else {
        xdpqual::util::skip(format_args!("needs clang (clang-19) to assemble the hostile object"));
        return;
    };
    let dir = std::env::temp_dir().join(format!("xdpqual-rbpf-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // LLVM's BPF assembly of JIT_ONLY + the stack smash above.
    let asm = "\
        .section xdp,\"ax\",@progbits
        .globl hostile
        .type hostile,@function
hostile:
        r2 = r10
        r2 -= r1
        r2 += 1048576
        if r2 >= 1048576 goto safe
        r3 = 4702111234474983745 ll
        *(u64 *)(r10 + 0) = r3
        *(u64 *)(r10 + 8) = r3
        *(u64 *)(r10 + 16) = r3
        *(u64 *)(r10 + 24) = r3
        *(u64 *)(r10 + 32) = r3
        *(u64 *)(r10 + 40) = r3
        *(u64 *)(r10 + 48) = r3
        r0 = 2
        exit
safe:
        r0 = 2
        exit
        .size hostile, .-hostile
        .section license,\"aw\",@progbits
        .asciz \"GPL\"
";
    let src = dir.join("hostile.s");
    let obj = dir.join("hostile.o");
    std::fs::write(&src, asm).unwrap();
    let out = Command::new(clang)
        .args(["-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(out.status.success(), "clang: {}", String::from_utf8_lossy(&out.stderr));
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/mixed-2k.pcap");
    let results = dir.join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .arg("bench")
        .arg(&obj)
        .arg(&pcap)
        .args(["--packets", "50", "--rounds", "2", "--repeat", "2", "--kernel-sample", "2"])
        .arg("--out-dir")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "status {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let json_path = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no bench JSON\n{stdout}\n{stderr}"));
    let json = std::fs::read_to_string(&json_path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = v["rows"].as_array().unwrap().iter().find(|r| r["backend"] == "rbpf-jit").unwrap();
    let why = row["skipped"].as_str().unwrap_or_else(|| panic!("rbpf-jit measured: {row}"));
    assert!(why.starts_with("rbpf JIT child: killed by SIGSEGV after 0 of"), "{why}");
    // The host description and paths are ours, not the program's; scan
    // the rows and the terminal output.
    let rows = serde_json::to_string_pretty(&v["rows"]).unwrap();
    assert_no_leak(&format!("{rows}\n{stdout}\n{stderr}"), &[0x4141_4141_4141_4141]);
    std::fs::remove_dir_all(&dir).unwrap();
}
