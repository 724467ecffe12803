//! The engine's interpreter against rbpf's interpreter, program by program,
//! on every bpf_conformance file that both run correctly.
//!
//! None of the corpus programs is eligible for rbpf (they use maps, helpers
//! or nested calls), so the conformance suite is where the two interpreters
//! can be compared on the same code. A program counts only when rbpf's
//! result equals the file's own `-- result` and the engine's does too.
//!
//! Each program is prepared once per backend (the engine's `Engine`, rbpf's
//! `EbpfVmRaw`), then timed in alternating rounds so that both see the same
//! machine state; the figure per backend is the median over rounds of the
//! mean time of one run. Both get a fresh copy of the file's memory before
//! every run (the copy is inside the timed loop for both, so it cancels out
//! of the comparison except for its small absolute cost).
//!
//! `cargo bench -p xdpqual --bench interp_vs_rbpf` prints one line per
//! program, sorted by ratio, then the summary; it writes
//! `results/interp-vs-rbpf-<timestamp>.json`. The target is a ratio
//! (rbpf time / engine time) of at least 2 on every program.
//!
//! Then the two JITs, on the same programs: the engine's compiled code
//! (`Engine::with_jit`, in this process) against rbpf's JIT, which checks
//! no bounds and therefore runs only in the sandboxed child of
//! `backends::rbpf::sandbox` (seccomp, no allocation once native code
//! exists), timed there over `JIT_RUNS` runs per round with the same
//! fresh copy of the memory before each run. A program counts when rbpf's
//! JIT agreed with its interpreter on it and the engine compiled it. The
//! issue's target is a ratio (rbpf JIT time / engine JIT time) of at
//! least 1 on every program; the JSON's `jit` part has the rows.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use xdpqual::backends::rbpf::{run_raw, RbpfHelpers};
use xdpqual::engine::{Engine, Outcome};
use xdpqual::isa::{encode_le, Insn};
use xdpqual_testkit::conformance::{data_files, suite_dir, ConformanceTest};

/// Timed rounds per backend and program; the median is reported.
const ROUNDS: usize = 9;
/// Wall time one round aims at, to size the iteration count.
const ROUND_NS: u128 = 2_000_000;

/// Runs of one program per timed round of rbpf's JIT in its child.
const JIT_RUNS: usize = 2000;

#[derive(serde::Serialize)]
struct JitRow {
    program: String,
    insns: usize,
    engine_jit_ns: f64,
    rbpf_jit_ns: f64,
    /// rbpf JIT time / engine JIT time: at or above 1, the engine is at
    /// least as fast.
    ratio: f64,
}

#[derive(serde::Serialize)]
struct Row {
    program: String,
    insns: usize,
    engine_ns: f64,
    rbpf_ns: f64,
    /// rbpf time / engine time: above 1, the engine is faster.
    ratio: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Mean ns of one call of `f`, over `iters` calls.
fn time(iters: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// A conformance file that expects a result and that rbpf's interpreter
/// runs to it (this also applies the backend's eligibility rules): the
/// test, its answer and its program. `None` for any other file.
fn rbpf_answers(file: &Path) -> Option<(ConformanceTest, u64, Vec<Insn>)> {
    let t = ConformanceTest::load(file).ok()?;
    let want = t.result?;
    if t.error.is_some() {
        return None;
    }
    let insns = t.program(file).ok()?;
    let mut mem = t.mem.clone();
    if run_raw(&insns, &mut mem, &RbpfHelpers::default()).ok()? != want {
        return None;
    }
    Some((t, want, insns))
}

/// `engine` if it too gives the file's answer.
fn answers(mut engine: Engine, t: &ConformanceTest, want: u64) -> Option<Engine> {
    let mut mem = t.mem.clone();
    (engine.run_raw(&mut mem).0 == Outcome::Exit { r0: want }).then_some(engine)
}

/// One timed engine run: a fresh copy of the file's memory, then the run.
fn engine_run<'a>(engine: &'a mut Engine, t: &'a ConformanceTest) -> impl FnMut() + 'a {
    let mut mem = t.mem.clone();
    move || {
        mem.copy_from_slice(&t.mem);
        // By reference: copying the returned (Outcome, u64) into
        // `black_box`'s argument is one 16-byte load of a value the call
        // has just written with narrower stores, a store-forwarding stall
        // (`perf annotate`: most of a 2-instruction run) that a caller
        // matching on the outcome does not pay.
        black_box(&engine.run_raw(black_box(&mut mem)));
    }
}

fn bench_one(file: &Path) -> Option<Row> {
    let (t, want, insns) = rbpf_answers(file)?;
    let mut engine = answers(Engine::conformance(insns.clone()).ok()?, &t, want)?;
    let bytes = encode_le(&insns);
    let vm = rbpf::EbpfVmRaw::new(Some(&bytes)).ok()?;

    let mut run_engine = engine_run(&mut engine, &t);
    let mut mem2 = t.mem.clone();
    let mut run_rbpf = || {
        mem2.copy_from_slice(&t.mem);
        black_box(vm.execute_program(black_box(&mut mem2)).ok());
    };
    // Size the rounds from a short probe of the slower of the two.
    let probe = time(200, &mut run_engine).max(time(200, &mut run_rbpf)).max(1.0);
    let iters = ((ROUND_NS as f64 / probe) as u64).clamp(100, 1_000_000);
    let (mut e, mut r) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        e.push(time(iters, &mut run_engine));
        r.push(time(iters, &mut run_rbpf));
    }
    let (engine_ns, rbpf_ns) = (median(e), median(r));
    Some(Row {
        program: file.file_stem()?.to_string_lossy().into_owned(),
        insns: insns.len(),
        engine_ns,
        rbpf_ns,
        ratio: rbpf_ns / engine_ns,
    })
}

/// The engine's JIT against rbpf's JIT on one conformance file; `None`
/// when either does not run it correctly (or the engine does not compile
/// it).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn bench_jit(file: &Path) -> Option<JitRow> {
    use xdpqual::backends::rbpf::sandbox;
    use xdpqual::engine::ExecMode;
    let (t, want, insns) = rbpf_answers(file)?;
    xdpqual::backends::rbpf::check(&insns, xdpqual::backends::rbpf::Engine::Jit, &[]).ok()?;
    let engine = Engine::conformance(insns.clone()).ok()?.with_jit(true);
    if !matches!(engine.exec_mode(), ExecMode::Jit) {
        return None;
    }
    let mut engine = answers(engine, &t, want)?;
    let bytes = encode_le(&insns);
    let inputs: Vec<&[u8]> = vec![&t.mem[..]; JIT_RUNS];
    let job = sandbox::Job {
        bytecode: &bytes,
        ctx: sandbox::Ctx::Raw,
        inputs: &inputs,
        jit: true,
        timed: sandbox::Timed::Jit,
        rounds: ROUNDS,
        timeout: sandbox::default_timeout(JIT_RUNS, ROUNDS),
    };
    let report = sandbox::run(&job).ok()?;
    // Every run completed and rbpf's JIT agreed with its interpreter on
    // the file's answer.
    if report.gated() != JIT_RUNS
        || report.mismatches() != 0
        || report.jit_agreeing(0) != Some(want)
    {
        return None;
    }
    let rbpf_jit_ns =
        median(report.rounds_ns.iter().map(|&n| n as f64 / JIT_RUNS as f64).collect());
    let mut run_engine = engine_run(&mut engine, &t);
    let e: Vec<f64> = (0..ROUNDS).map(|_| time(JIT_RUNS as u64, &mut run_engine)).collect();
    let engine_jit_ns = median(e);
    Some(JitRow {
        program: file.file_stem()?.to_string_lossy().into_owned(),
        insns: insns.len(),
        engine_jit_ns,
        rbpf_jit_ns,
        ratio: rbpf_jit_ns / engine_jit_ns,
    })
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn bench_jit(_: &Path) -> Option<JitRow> {
    None
}

/// The JIT table and its summary line; the rows sorted by ratio.
fn report_jit(rows: &mut [JitRow]) {
    rows.sort_by(|a, b| a.ratio.partial_cmp(&b.ratio).expect("no NaN"));
    println!();
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>8}",
        "program", "insns", "eng JIT ns", "rbpf JIT", "rbpf/eng"
    );
    for r in rows.iter() {
        println!(
            "{:<28} {:>6} {:>10.1} {:>10.1} {:>8.2}",
            r.program, r.insns, r.engine_jit_ns, r.rbpf_jit_ns, r.ratio
        );
    }
    if rows.is_empty() {
        println!(
            "SKIP: no program ran correctly on both JITs (rbpf's JIT runs on x86_64 Linux only)"
        );
        return;
    }
    let geo = (rows.iter().map(|r| r.ratio.ln()).sum::<f64>() / rows.len() as f64).exp();
    let at_par = rows.iter().filter(|r| r.ratio >= 1.0).count();
    println!(
        "{} programs: JIT ratio rbpf/engine min {:.2}, median {:.2}, geometric mean {:.2}, max {:.2}; engine JIT at least as fast on {at_par}",
        rows.len(),
        rows[0].ratio,
        rows[rows.len() / 2].ratio,
        geo,
        rows[rows.len() - 1].ratio
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects programs.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let dir = suite_dir();
    let files = match data_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            println!("SKIP: the bpf_conformance suite is not readable at {}: {e}", dir.display());
            return;
        }
    };
    let mut rows: Vec<Row> = files
        .iter()
        .filter(|f| filter.as_ref().is_none_or(|p| f.to_string_lossy().contains(p.as_str())))
        .filter_map(|f| bench_one(f))
        .collect();
    rows.sort_by(|a, b| a.ratio.partial_cmp(&b.ratio).expect("no NaN"));
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>8}",
        "program", "insns", "engine ns", "rbpf ns", "rbpf/eng"
    );
    for r in &rows {
        println!(
            "{:<28} {:>6} {:>10.1} {:>10.1} {:>8.2}",
            r.program, r.insns, r.engine_ns, r.rbpf_ns, r.ratio
        );
    }
    if rows.is_empty() {
        println!("no program ran correctly on both interpreters");
        return;
    }
    let geo = (rows.iter().map(|r| r.ratio.ln()).sum::<f64>() / rows.len() as f64).exp();
    let at_2x = rows.iter().filter(|r| r.ratio >= 2.0).count();
    let faster = rows.iter().filter(|r| r.ratio > 1.0).count();
    println!(
        "{} programs: ratio rbpf/engine min {:.2}, median {:.2}, geometric mean {:.2}, max {:.2}; engine faster on {faster}, at least 2x on {at_2x}",
        rows.len(),
        rows[0].ratio,
        rows[rows.len() / 2].ratio,
        geo,
        rows[rows.len() - 1].ratio
    );
    let out_dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = out_dir.join(format!("interp-vs-rbpf-{}.json", xdpqual::bench::utc_stamp(secs)));
    let mut jit_rows: Vec<JitRow> = files
        .iter()
        .filter(|f| filter.as_ref().is_none_or(|p| f.to_string_lossy().contains(p.as_str())))
        .filter_map(|f| bench_jit(f))
        .collect();
    report_jit(&mut jit_rows);
    let json = serde_json::json!({
        "schema": "xdpqual.interp-vs-rbpf/2",
        "rounds": ROUNDS,
        "geomean_ratio": geo,
        "programs": rows,
        "jit": { "runs_per_round": JIT_RUNS, "programs": jit_rows },
    });
    match std::fs::create_dir_all(&out_dir)
        .and_then(|_| std::fs::write(&out, serde_json::to_vec_pretty(&json).expect("serialisable")))
    {
        Ok(()) => println!("results: {}", out.display()),
        Err(e) => println!("could not write {}: {e}", out.display()),
    }
}
