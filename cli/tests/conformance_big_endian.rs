//! The bpf_conformance suite in big-endian mode.
//!
//! The suite's `-- mem` bytes and `-- result`s assume a little-endian
//! machine. Each file is classified from its program text alone (never
//! from a run), into one of:
//!
//! - `insensitive`: no load, store or atomic of 2, 4 or 8 bytes and no
//!   `BPF_END` to-be/to-le (ALU class; the ALU64 `bswap` is unconditional).
//!   Registers and single bytes mean the same on both machines, so the
//!   file's own result (or error) is the big-endian expectation.
//! - `roundtrip`: its multi-byte accesses are all on the stack (`r10` plus
//!   a constant; any other access is a byte of `mem` through an `r1` that
//!   is never written) and every byte the program touches there is touched
//!   only through one access window (same offset, same width), so each value
//!   read back is the value written, in either order; no `BPF_END`. The
//!   file's result holds.
//! - `derived`: the differences are only (a) 2/4/8-byte loads from the
//!   input memory at `r1` plus a constant, `r1` never written, no store
//!   wider than a byte anywhere, and the load windows disjoint or equal,
//!   and/or (b) `BPF_END` to-be/to-le. A big-endian load of a window reads
//!   what a little-endian load reads from the window's bytes reversed, and
//!   to-be on a big-endian machine is what to-le is on a little-endian one
//!   (and the reverse). So the big-endian result is the little-endian run
//!   of the same program with those windows of `mem` reversed and to-be and
//!   to-le exchanged (a byte access through `r1` inside a reversed window
//!   moved to its mirror position there), computed by rbpf, an independent little-endian
//!   interpreter (never by this engine).
//! - `unchecked`: anything else (stores of 2+ bytes to `mem`, mixed-width
//!   stack access, atomics, helper calls that clobber `r1`, ...); the file
//!   runs in big-endian mode and must not panic, but no expectation is
//!   claimed. The reason names what made it so.
//!
//! `tests/data/conformance-endian.tsv` records every file's class and
//! reason; this test recomputes the classification and fails if the table
//! differs (rewrite it after review with `XDPQUAL_BLESS_ENDIAN=1`), then
//! holds the engine's big-endian results to the expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use xdpqual::backends::rbpf::{run_raw, RbpfHelpers};
use xdpqual::engine::{ByteOrder, Engine, Outcome};
use xdpqual::isa::opcode::*;
use xdpqual::isa::Insn;
use xdpqual_testkit::conformance::{data_files, ConformanceTest};

fn suite() -> Option<PathBuf> {
    xdpqual::util::shared_dir("conformance/bpf_conformance/tests")
}

fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance-endian.tsv")
}

fn width(code: u8) -> usize {
    match code & 0x18 {
        SIZE_B => 1,
        SIZE_H => 2,
        SIZE_W => 4,
        _ => 8,
    }
}

/// A memory access: (class, base register, offset, width, is it a write).
fn access(i: &Insn) -> Option<(u8, u8, i64, usize, bool)> {
    match i.class() {
        LDX => Some((LDX, i.src, i.off as i64, width(i.code), false)),
        ST => Some((ST, i.dst, i.off as i64, width(i.code), true)),
        STX => Some((STX, i.dst, i.off as i64, width(i.code), true)),
        _ => None,
    }
}

fn is_end_to(i: &Insn) -> bool {
    i.class() == ALU && i.code & 0xf0 == END
}

/// Registers an instruction writes (for "r1 is never written").
fn writes_r1(i: &Insn) -> bool {
    match i.class() {
        ALU | ALU64 | LDX | LD => i.dst == 1,
        STX if i.code & 0xe0 == MODE_ATOMIC => i.src == 1 || i.dst == 1,
        JMP if i.code & 0xf0 == CALL => true,
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Class {
    Insensitive(String),
    Roundtrip(String),
    /// Load windows of `mem` to reverse, and whether END ops are exchanged.
    Derived(String, BTreeSet<(i64, usize)>),
    Unchecked(String),
}

impl Class {
    fn name(&self) -> &'static str {
        match self {
            Class::Insensitive(_) => "insensitive",
            Class::Roundtrip(_) => "roundtrip",
            Class::Derived(..) => "derived",
            Class::Unchecked(_) => "unchecked",
        }
    }
    fn reason(&self) -> &str {
        match self {
            Class::Insensitive(r) | Class::Roundtrip(r) | Class::Derived(r, _) => r,
            Class::Unchecked(r) => r,
        }
    }
}

fn classify(prog: &[Insn]) -> Class {
    let mut ends = 0;
    let mut wide: Vec<(u8, u8, i64, usize, bool)> = Vec::new();
    let mut all: Vec<(u8, u8, i64, usize, bool)> = Vec::new();
    let mut atomics = 0;
    let mut skip_next = false;
    for i in prog {
        if skip_next {
            skip_next = false;
            continue;
        }
        if i.is_lddw() {
            skip_next = true;
            continue;
        }
        if is_end_to(i) {
            ends += 1;
        }
        if let Some(a) = access(i) {
            if i.class() == STX && i.code & 0xe0 == MODE_ATOMIC {
                atomics += 1;
            }
            all.push(a);
            if a.3 > 1 {
                wide.push(a);
            }
        }
    }
    if wide.is_empty() && ends == 0 {
        return Class::Insensitive("no 2/4/8-byte memory access, no to-be/to-le".into());
    }
    if atomics > 0 {
        return Class::Unchecked(format!("{atomics} atomic operation(s) on multi-byte memory"));
    }
    // roundtrip: multi-byte accesses only via r10, every stack byte touched
    // through exactly one window.
    let via = |r: u8| wide.iter().all(|a| a.1 == r);
    if ends == 0 && via(10) {
        let stack: Vec<_> = all.iter().filter(|a| a.1 == 10).collect();
        // Every access is on the stack through r10, or a byte of mem through
        // an r1 that is never written (so it cannot alias the stack).
        let r1_fixed = !prog.iter().any(writes_r1);
        if all.iter().all(|a| a.1 == 10 || (a.3 == 1 && a.1 == 1 && r1_fixed)) {
            let overlap = |a: &(u8, u8, i64, usize, bool), b: &(u8, u8, i64, usize, bool)| {
                a.2 < b.2 + b.3 as i64 && b.2 < a.2 + a.3 as i64
            };
            let clean = stack
                .iter()
                .all(|a| stack.iter().all(|b| !overlap(a, b) || (a.2 == b.2 && a.3 == b.3)));
            if clean {
                return Class::Roundtrip(format!(
                    "{} multi-byte access(es), all on the stack through fixed windows written before read",
                    wide.len()
                ));
            }
            return Class::Unchecked(
                "stack bytes accessed through windows of different widths or offsets".into(),
            );
        }
    }
    // derived: wide accesses are loads via r1 (never written); END allowed.
    if wide.iter().any(|a| a.4) {
        return Class::Unchecked(
            "stores of 2, 4 or 8 bytes (their bytes depend on the order)".into(),
        );
    }
    if !wide.iter().all(|a| a.1 == 1) {
        return Class::Unchecked("multi-byte loads through a register other than r1".into());
    }
    if prog.iter().any(writes_r1) {
        return Class::Unchecked(
            "r1 is written (or clobbered by a call), so load addresses are not fixed".into(),
        );
    }
    let windows: BTreeSet<(i64, usize)> = wide.iter().map(|a| (a.2, a.3)).collect();
    let ws: Vec<_> = windows.iter().collect();
    for (k, a) in ws.iter().enumerate() {
        for b in &ws[k + 1..] {
            if a.0 < b.0 + b.1 as i64 && b.0 < a.0 + a.1 as i64 {
                return Class::Unchecked(format!(
                    "overlapping load windows {a:?} and {b:?} of mem"
                ));
            }
        }
    }
    let what = match (windows.is_empty(), ends) {
        (false, 0) => format!("{} multi-byte load window(s) of mem", windows.len()),
        (true, n) => format!("{n} to-be/to-le op(s)"),
        (false, n) => {
            format!("{} multi-byte load window(s) of mem and {n} to-be/to-le op(s)", windows.len())
        }
    };
    Class::Derived(what, windows)
}

/// The little-endian program and memory equivalent to a big-endian run.
fn mirror(
    prog: &[Insn],
    mem: &[u8],
    windows: &BTreeSet<(i64, usize)>,
) -> Option<(Vec<Insn>, Vec<u8>)> {
    let mut m = mem.to_vec();
    for &(off, w) in windows {
        let s = usize::try_from(off).ok()?;
        m.get_mut(s..s + w)?.reverse();
    }
    // A byte access through r1 inside a reversed window moves to its
    // mirror position in it (r1 is never written in this class).
    let moved = |off: i64| {
        windows
            .iter()
            .find(|(s, w)| off >= *s && off < s + *w as i64)
            .map_or(off, |(s, w)| s + (s + *w as i64 - 1 - off))
    };
    let p = prog
        .iter()
        .map(|i| {
            if is_end_to(i) {
                Insn { code: i.code ^ X, ..*i }
            } else if matches!(access(i), Some((_, 1, _, 1, _))) {
                Insn { off: moved(i.off as i64) as i16, ..*i }
            } else {
                *i
            }
        })
        .collect();
    Some((p, m))
}

fn table_line(name: &str, c: &Class) -> String {
    format!("{name}\t{}\t{}\n", c.name(), c.reason())
}

#[test]
fn bpf_conformance_suite_in_big_endian_mode() {
    let Some(dir) = suite() else {
        xdpqual::util::skip(format_args!(
            "../shared/conformance/bpf_conformance/tests not found next to the checkout"
        ));
        return;
    };
    let files = data_files(&dir).expect("list conformance files");
    assert!(files.len() >= 300, "expected the full suite, found {} files", files.len());
    let mut table = String::from(
        "# bpf_conformance files in big-endian mode: name<TAB>class<TAB>reason.\n\
         # Classified from the program text by tests/conformance_big_endian.rs (see there).\n",
    );
    let mut problems = Vec::new();
    let mut tally: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let test = ConformanceTest::load(file).unwrap_or_else(|e| panic!("{e}"));
        let Ok(prog) = test.program(file) else {
            table.push_str(&format!("{name}\tunchecked\tdoes not assemble\n"));
            continue;
        };
        let class = classify(&prog);
        table.push_str(&table_line(&name, &class));
        let run_be = |p: Vec<Insn>| -> Result<Option<u64>, String> {
            let mut e = match Engine::conformance_with_order(p, ByteOrder::Big) {
                Ok(e) => e,
                Err(e) => return Err(format!("refused: {e}")),
            };
            let mut mem = test.mem.clone();
            let out =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.run_raw(&mut mem)))
                    .map_err(|_| "engine panicked".to_string())?;
            Ok(match out.0 {
                Outcome::Exit { r0 } => Some(r0),
                _ => None,
            })
        };
        let got = run_be(prog.clone());
        // The expectation: Some(Some(r0)), Some(None) for "an error", or
        // None when none is claimed.
        let want: Option<Option<u64>> = match &class {
            Class::Insensitive(_) | Class::Roundtrip(_) => {
                Some(if test.error.is_some() { None } else { test.result })
            }
            Class::Derived(_, windows) => match mirror(&prog, &test.mem, windows) {
                _ if test.error.is_some() => None,
                None => None,
                Some((p, mut m)) => match run_raw(&p, &mut m, &RbpfHelpers::default()) {
                    Ok(r0) => Some(Some(r0)),
                    // rbpf cannot run it (unsupported instruction, entry
                    // read of r2): no independent expectation.
                    Err(_) => None,
                },
            },
            Class::Unchecked(_) => None,
        };
        let t = tally.entry(class.name()).or_default();
        t.0 += 1;
        match (want, got) {
            (_, Err(e)) if e == "engine panicked" => problems.push(format!("{name}: {e}")),
            (None, _) => {}
            (Some(w), Ok(g)) if w == g => t.1 += 1,
            // An expected error may also be a refusal at build time.
            (Some(None), Err(_)) => t.1 += 1,
            (Some(w), g) => problems.push(format!(
                "{name} ({}): big-endian run gave {g:x?}, expected {w:x?}",
                class.name()
            )),
        }
    }
    if std::env::var_os("XDPQUAL_BLESS_ENDIAN").is_some_and(|v| v == "1") {
        std::fs::write(table_path(), &table).unwrap();
    } else {
        let committed = std::fs::read_to_string(table_path()).unwrap_or_default();
        if committed != table {
            problems.push(format!(
                "{} differs from the classification the program texts give; review and rewrite with XDPQUAL_BLESS_ENDIAN=1",
                table_path().display()
            ));
        }
    }
    let summary: Vec<String> =
        tally.iter().map(|(k, (n, ok))| format!("{k} {n} ({ok} checked and equal)")).collect();
    xdpqual::util::count(format_args!(
        "bpf_conformance in big-endian mode: {} of {} files",
        summary.join(", "),
        files.len()
    ));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
