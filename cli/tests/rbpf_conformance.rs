//! Runs every bpf_conformance file through rbpf's interpreter (and, on
//! x86_64, its JIT) and checks the outcomes against the checked-in tables
//! `tests/data/rbpf-conformance.txt` and `tests/data/rbpf-jit-conformance.txt`,
//! so that any change (a new pass, a new failure) is noticed and reviewed.
//!
//! "pass" means rbpf's `r0` equals the file's own `-- result` (or, for a
//! file expecting an error, that rbpf reported one); it is never judged
//! against another backend. To rewrite the table after reviewing a change:
//! `XDPQUAL_BLESS_RBPF=1 cargo test -p xdpqual-cli --test rbpf_conformance`.

use std::path::{Path, PathBuf};
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
use xdpqual::backends::rbpf::run_raw_jit;
use xdpqual::backends::rbpf::{check, run_raw, Engine, RbpfHelpers, RunError};
use xdpqual_testkit::conformance::{data_files, suite_dir, ConformanceTest};

fn table_path(engine: Engine) -> PathBuf {
    let name = match engine {
        Engine::Interpreter => "rbpf-conformance.txt",
        Engine::Jit => "rbpf-jit-conformance.txt",
    };
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// Host addresses in rbpf's messages change from run to run.
fn scrub(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or("");
    first
        .split(' ')
        .map(|w| {
            let hex = w.trim_end_matches(',');
            if hex.starts_with("0x") && hex.len() > 10 {
                w.replace(hex, "<addr>")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn outcome(file: &Path, engine: Engine) -> String {
    let t = match ConformanceTest::load(file) {
        Ok(t) => t,
        Err(e) => return format!("error: {e}"),
    };
    let prog = match t.program(file) {
        Ok(p) => p,
        Err(e) => return format!("error: {e}"),
    };
    if let Err(u) = check(&prog, engine, &[]) {
        return format!("unsupported: {}", u.reason);
    }
    // run_raw adds its own refusals (entry reads of r2-r5), reported below.
    let mut mem = t.mem.clone();
    let run = match engine {
        Engine::Interpreter => run_raw(&prog, &mut mem, &RbpfHelpers::default()),
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Engine::Jit => run_raw_jit(&prog, &mem),
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        Engine::Jit => unreachable!("the JIT table is only built on x86_64"),
    };
    match (run, t.result, &t.error) {
        (Err(_), _, Some(_)) => "pass".into(),
        (Ok(got), _, Some(want)) => format!("fail: returned {got:#x}, expected error `{want}`"),
        (Ok(got), Some(want), None) if got == want => "pass".into(),
        (Ok(got), Some(want), None) => format!("fail: returned {got:#x}, expected {want:#x}"),
        (Ok(got), None, None) => format!("error: returned {got:#x}, file states no result"),
        (Err(RunError::Rbpf(m)), _, None) => format!("error: {}", scrub(&m)),
        (Err(RunError::Unsupported(u)), _, None) => format!("unsupported: {}", u.reason),
    }
}

fn current_table(engine: Engine) -> String {
    let files = data_files(&suite_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 313, "expected the 313-file shared suite");
    let mut out = format!(
        "# rbpf 0.4.1 {engine:?} on bpf_conformance (tests/rbpf_conformance.rs).\n\
         # name<TAB>outcome; pass = r0 equals the file's `-- result`.\n"
    );
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy();
        out.push_str(&format!("{name}\t{}\n", outcome(f, engine)));
    }
    out
}

#[test]
fn rbpf_interpreter_outcomes_match_the_table() {
    compare_with_table(Engine::Interpreter);
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn rbpf_jit_outcomes_match_the_table() {
    compare_with_table(Engine::Jit);
}

fn compare_with_table(engine: Engine) {
    let now = current_table(engine);
    let path = table_path(engine);
    if std::env::var_os("XDPQUAL_BLESS_RBPF").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (bless with XDPQUAL_BLESS_RBPF=1 after review)", path.display())
    });
    let changed: Vec<String> = want
        .lines()
        .zip(now.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  table: {a}\n  now:   {b}"))
        .collect();
    assert!(
        changed.is_empty() && want.lines().count() == now.lines().count(),
        "rbpf conformance outcomes changed:\n{}",
        changed.join("\n")
    );
    // The table must show rbpf doing real work, not refusing everything.
    let passes = now.lines().filter(|l| l.ends_with("\tpass")).count();
    assert!(passes > 150, "only {passes} passes");
}
