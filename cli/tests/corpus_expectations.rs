//! Corpus expectations: every corpus program x ISA build (v2, v3, v4) x
//! capture, replayed through the engine and compared packet by packet with
//! an oracle written from the program's specification (the header comment
//! of corpus/<prog>.c; see tests/oracles/), and the verdict counts compared
//! with the checked-in corpus/expect/<prog>.toml.
//!
//! The expectation files are produced FROM THE ORACLES, never from a
//! backend:
//!     XDPQUAL_BLESS_EXPECT=1 cargo test -p xdpqual-cli --test corpus_expectations
//! which also (re)writes the hand-made captures pcaps/edges.pcap and
//! pcaps/ratelimit-timed.pcap. Without it, those captures are rebuilt in a
//! scratch directory and must match the committed files byte for byte.

mod oracles;

use oracles::{Case, Expect, MapExpect, Pkt, Setup, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use xdpqual::capture::{write_pcap, CaptureReader, TsPrecision};
use xdpqual::engine::{Engine, EngineConfig, Outcome, PacketIn};

const ISAS: [&str; 3] = ["v2", "v3", "v4"];
/// Captures small enough to list every verdict in the expectation file.
const LIST_VERDICTS_UP_TO: usize = 500;
/// Mismatch reports printed per (case, ISA, capture) before summarising.
const REPORT_LIMIT: usize = 5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn bless() -> bool {
    std::env::var_os("XDPQUAL_BLESS_EXPECT").is_some_and(|v| v == "1")
}

struct Frame {
    ts_ns: u64,
    data: Vec<u8>,
}

struct Capture {
    name: &'static str,
    frames: Vec<Frame>,
}

/// ingress_ifindex given to packet `i` (redirect.c reads it): varied so
/// that every DEVMAP slot is reached.
fn ifindex(i: usize) -> u32 {
    1 + (i % 5) as u32
}

// ---------------------------------------------------------------- captures

fn edge_captures() -> Vec<(&'static str, Vec<(u64, Vec<u8>)>)> {
    let edges = oracles::edges::frames()
        .into_iter()
        .enumerate()
        .map(|(i, f)| (oracles::edges::T0 + i as u64 * 1000, f))
        .collect();
    vec![("edges.pcap", edges), ("ratelimit-timed.pcap", oracles::edges::ratelimit_frames())]
}

fn write_edge_captures(dir: &Path) {
    for (name, frames) in edge_captures() {
        write_pcap(
            dir.join(name),
            TsPrecision::Nanosecond,
            frames.iter().map(|(t, f)| (*t, f.as_slice())),
        )
        .unwrap_or_else(|e| panic!("writing {name}: {e}"));
    }
}

/// The hand-made captures must be what the code in tests/oracles/edges.rs
/// builds today.
fn check_edge_captures() -> Result<(), String> {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus_expectations");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    write_edge_captures(&scratch);
    for (name, _) in edge_captures() {
        let fresh = std::fs::read(scratch.join(name)).unwrap();
        let committed = std::fs::read(repo().join("pcaps").join(name)).unwrap_or_default();
        if fresh != committed {
            return Err(format!(
                "pcaps/{name} differs from what cli/tests/oracles/edges.rs builds; rerun with XDPQUAL_BLESS_EXPECT=1 after a deliberate change"
            ));
        }
    }
    Ok(())
}

fn load_captures() -> Vec<Capture> {
    ["mixed-2k.pcap", "firewall-2k.pcap", "edges.pcap", "ratelimit-timed.pcap"]
        .into_iter()
        .map(|name| {
            let path = repo().join("pcaps").join(name);
            let frames = CaptureReader::open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|p| {
                    let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    Frame { ts_ns: p.ts_ns, data: p.data }
                })
                .collect();
            Capture { name, frames }
        })
        .collect()
}

// ---------------------------------------------------------------- oracle side

/// The oracle's prediction for a whole capture.
struct Predicted {
    expects: Vec<Expect>,
    maps: Vec<MapExpect>,
}

fn predict(case: &Case, cap: &Capture) -> Predicted {
    let mut oracle = (case.oracle)();
    let expects = cap
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if f.data.len() < oracles::ETH_HLEN {
                // Refused by test-run: the program never sees it.
                Expect { verdict: Verdict::NotRun, output: None }
            } else {
                oracle.run(&Pkt { frame: &f.data, ts_ns: f.ts_ns, ingress_ifindex: ifindex(i) })
            }
        })
        .collect();
    Predicted { expects, maps: oracle.expected_maps() }
}

fn counts(verdicts: impl Iterator<Item = Verdict>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for v in verdicts {
        *m.entry(v.name().to_string()).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------- expectation files

#[derive(serde::Deserialize, Debug)]
struct ExpectFile {
    program: String,
    run: Vec<ExpectRun>,
}

#[derive(serde::Deserialize, Debug)]
struct ExpectRun {
    config: String,
    entry: String,
    capture: String,
    packets: usize,
    counts: BTreeMap<String, u64>,
    verdicts: Option<String>,
}

fn expect_path(program: &str) -> PathBuf {
    repo().join("corpus/expect").join(format!("{program}.toml"))
}

fn render_expect_file(program: &str, runs: &[(&Case, &Capture, &Predicted)]) -> String {
    let mut s = String::new();
    writeln!(s, "# Expected verdicts of corpus/{program}.c, per configuration and capture.")
        .unwrap();
    writeln!(s, "#").unwrap();
    writeln!(s, "# PRODUCED FROM THE ORACLE cli/tests/oracles/{program}.rs, which implements the")
        .unwrap();
    writeln!(
        s,
        "# specification in the header comment of corpus/{program}.c. Never recorded from a"
    )
    .unwrap();
    writeln!(s, "# backend. Regenerate (after a deliberate oracle or capture change only) with")
        .unwrap();
    writeln!(
        s,
        "#     XDPQUAL_BLESS_EXPECT=1 cargo test -p xdpqual-cli --test corpus_expectations"
    )
    .unwrap();
    writeln!(s, "# cli/tests/corpus_expectations.rs checks every ISA build (v2, v3, v4) against")
        .unwrap();
    writeln!(s, "# these counts and, per packet, against the oracle (verdicts and output bytes).")
        .unwrap();
    writeln!(s, "#").unwrap();
    writeln!(s, "# Frames shorter than 14 bytes count as not_run: BPF_PROG_TEST_RUN refuses them")
        .unwrap();
    writeln!(
        s,
        "# (EINVAL) before the program runs. `verdicts` (small captures only) has one letter"
    )
    .unwrap();
    writeln!(s, "# per packet: A aborted, D drop, P pass, T tx, R redirect, N not run.").unwrap();
    writeln!(s, "# Packet i of a capture gets ingress_ifindex 1 + (i % 5). Each `config` (entry")
        .unwrap();
    writeln!(s, "# program and map contents) is defined by cases() in that oracle file.").unwrap();
    writeln!(s).unwrap();
    writeln!(s, "program = {program:?}").unwrap();
    for (case, cap, pred) in runs {
        writeln!(s).unwrap();
        writeln!(s, "[[run]]").unwrap();
        writeln!(s, "config = {:?}", case.config).unwrap();
        writeln!(s, "entry = {:?}", case.entry).unwrap();
        writeln!(s, "capture = {:?}", cap.name).unwrap();
        writeln!(s, "packets = {}", cap.frames.len()).unwrap();
        let c = counts(pred.expects.iter().map(|e| e.verdict));
        let body: Vec<String> = c.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        writeln!(s, "counts = {{ {} }}", body.join(", ")).unwrap();
        if cap.frames.len() <= LIST_VERDICTS_UP_TO {
            let letters: String = pred.expects.iter().map(|e| e.verdict.letter()).collect();
            writeln!(s, "verdicts = {letters:?}").unwrap();
        }
    }
    s
}

fn check_expect_file(program: &str, runs: &[(&Case, &Capture, &Predicted)]) -> Vec<String> {
    let path = expect_path(program);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![format!("{}: {e} (bless with XDPQUAL_BLESS_EXPECT=1)", path.display())]
        }
    };
    let file: ExpectFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let mut errs = Vec::new();
    if file.program != program {
        errs.push(format!(
            "{}: program = {:?}, expected {program:?}",
            path.display(),
            file.program
        ));
    }
    for (case, cap, pred) in runs {
        let Some(r) = file.run.iter().find(|r| r.config == case.config && r.capture == cap.name)
        else {
            errs.push(format!(
                "{}: no [[run]] for config {} capture {}",
                path.display(),
                case.config,
                cap.name
            ));
            continue;
        };
        let want = counts(pred.expects.iter().map(|e| e.verdict));
        if r.entry != case.entry || r.packets != cap.frames.len() || r.counts != want {
            errs.push(format!(
                "{} [{} / {}]: file says entry {} packets {} counts {:?}; oracle gives entry {} packets {} counts {:?}",
                path.display(),
                case.config,
                cap.name,
                r.entry,
                r.packets,
                r.counts,
                case.entry,
                cap.frames.len(),
                want
            ));
        }
        if let Some(letters) = &r.verdicts {
            let mine: String = pred.expects.iter().map(|e| e.verdict.letter()).collect();
            if *letters != mine {
                let at = letters.chars().zip(mine.chars()).position(|(a, b)| a != b);
                errs.push(format!(
                    "{} [{} / {}]: per-packet verdicts differ from the oracle's (first at packet {at:?})",
                    path.display(),
                    case.config,
                    cap.name
                ));
            }
        }
    }
    errs
}

// ---------------------------------------------------------------- engine side

fn object_path(program: &str, isa: &str) -> PathBuf {
    if isa == BPFEB {
        return repo().join("corpus/build/bpfeb").join(format!("{program}.v3.bpfeb.o"));
    }
    repo().join("corpus/build").join(format!("{program}.{isa}.o"))
}

/// The big-endian build (`clang -target bpfeb -mcpu=v3`), run as one more
/// "ISA" by [`bpfeb_builds_match_their_specifications`].
const BPFEB: &str = "bpfeb";

fn engine_for(case: &Case, isa: &str) -> Result<(Engine, xdpqual::program::Object), String> {
    let path = object_path(case.program, isa);
    let obj =
        xdpqual::loader::load_object(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut engine = Engine::new(&obj, Some(case.entry), EngineConfig::default())
        .map_err(|e| format!("{} entry {}: {e}", path.display(), case.entry))?;
    for s in &case.setup {
        match s {
            Setup::Update { map, key, value } => {
                let m = engine
                    .maps_mut()
                    .by_name(map)
                    .ok_or_else(|| format!("{}: no map {map}", path.display()))?;
                let rc = m.update(key, value, 0, None);
                if rc != 0 {
                    return Err(format!("{}: update of {map} failed with {rc}", path.display()));
                }
            }
            Setup::ProgArray { map, slot, prog } => engine.set_prog_array(map, *slot, prog)?,
        }
    }
    engine.snapshot_maps();
    Ok((engine, obj))
}

fn hex_lines(b: &[u8], from: usize, to: usize) -> String {
    let mut s = String::new();
    let start = from / 16 * 16;
    for line in (start..to.min(b.len())).step_by(16) {
        let bytes: Vec<String> =
            b[line..(line + 16).min(b.len())].iter().map(|x| format!("{x:02x}")).collect();
        writeln!(s, "      {line:05x}: {}", bytes.join(" ")).unwrap();
    }
    s
}

fn hex_diff(want: &[u8], got: &[u8]) -> String {
    let first = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    let (from, to) = (first.saturating_sub(16), first + 32);
    format!(
        "    lengths: oracle {} engine {}; first difference at byte {first}\n    oracle:\n{}    engine:\n{}",
        want.len(),
        got.len(),
        hex_lines(want, from, to),
        hex_lines(got, from, to)
    )
}

/// Byte offset of a global variable inside its section, from the ELF
/// symbol table (the oracle knows globals by name, not by layout).
fn symbol_offset(obj_path: &Path, name: &str) -> Option<usize> {
    use object::{Object as _, ObjectSymbol as _};
    let bytes = std::fs::read(obj_path).ok()?;
    let file = object::File::parse(&*bytes).ok()?;
    let sym = file.symbols().find(|s| s.name() == Ok(name))?;
    Some(sym.address() as usize)
}

fn check_maps(engine: &mut Engine, case: &Case, isa: &str, want: &[MapExpect]) -> Vec<String> {
    let mut errs = Vec::new();
    for m in want {
        let (map_name, key, value) = match m.map.split_once(".bss:") {
            Some((_, sym)) => {
                let Some(off) = symbol_offset(&object_path(case.program, isa), sym) else {
                    errs.push(format!("no symbol {sym}"));
                    continue;
                };
                let Some(bss) = engine.maps().maps.iter().find(|s| s.def.name.ends_with(".bss"))
                else {
                    errs.push("no .bss map".into());
                    continue;
                };
                let got =
                    bss.entries().first().map(|e| e.values[0][off..off + m.value.len()].to_vec());
                if got.as_deref() != Some(&m.value[..]) {
                    errs.push(format!(".bss {sym}: oracle {:02x?}, engine {:02x?}", m.value, got));
                }
                continue;
            }
            None => (&m.map, &m.key, &m.value),
        };
        let Some(state) = engine.maps_mut().by_name(map_name) else {
            errs.push(format!("no map {map_name}"));
            continue;
        };
        let got = state.entries().into_iter().find(|e| e.key == *key).map(|e| e.values[0].clone());
        if got.as_ref() != Some(value) {
            errs.push(format!(
                "map {map_name} key {key:02x?}: oracle {value:02x?}, engine {got:02x?}"
            ));
        }
    }
    errs
}

/// Runs one case on one ISA build over one capture; returns the engine's
/// verdicts and the mismatch reports.
fn replay(
    case: &Case,
    isa: &str,
    cap: &Capture,
    pred: &Predicted,
) -> Result<(Vec<Verdict>, Vec<String>), String> {
    let (mut engine, _obj) = engine_for(case, isa)?;
    let mut verdicts = Vec::with_capacity(cap.frames.len());
    let mut reports = Vec::new();
    let mut mismatches = 0usize;
    for (i, (f, want)) in cap.frames.iter().zip(&pred.expects).enumerate() {
        let r = engine.run_xdp(&PacketIn {
            data: &f.data,
            ts_ns: f.ts_ns,
            ingress_ifindex: ifindex(i),
            rx_queue_index: 0,
        });
        let (got, detail) = match &r.outcome {
            Outcome::Exit { r0 } => match Verdict::from_r0(*r0) {
                Some(v) => (Some(v), String::new()),
                None => (None, format!("returned r0 = {r0:#x}, not an XDP action")),
            },
            Outcome::NotRun { .. } => (Some(Verdict::NotRun), String::new()),
            Outcome::Fault(fault) => (None, format!("fault: {fault:?}")),
        };
        verdicts.push(got.unwrap_or(Verdict::Aborted));
        let verdict_ok = got == Some(want.verdict);
        let output_ok = match (&want.output, got) {
            (Some(o), Some(v)) if v != Verdict::NotRun => *o == r.output,
            _ => true,
        };
        if !verdict_ok || !output_ok {
            mismatches += 1;
            if mismatches <= REPORT_LIMIT {
                let mut s = format!(
                    "{} [{}] {isa} {} packet {i} (len {}): oracle {:?}, engine {} {detail}\n",
                    case.program,
                    case.config,
                    cap.name,
                    f.data.len(),
                    want.verdict,
                    got.map_or("-".to_string(), |v| format!("{v:?}")),
                );
                if let (Some(o), false) = (&want.output, output_ok) {
                    s.push_str(&hex_diff(o, &r.output));
                }
                reports.push(s);
            }
        }
    }
    if mismatches > REPORT_LIMIT {
        reports.push(format!(
            "{} [{}] {isa} {}: {} more mismatching packets not shown",
            case.program,
            case.config,
            cap.name,
            mismatches - REPORT_LIMIT
        ));
    }
    // Map contents are not compared for the bpfeb build: the oracles state
    // counters and other host-order integers little-endian.
    if mismatches == 0 && isa != BPFEB {
        for e in check_maps(&mut engine, case, isa, &pred.maps) {
            reports.push(format!(
                "{} [{}] {isa} {}: maps after replay: {e}",
                case.program, case.config, cap.name
            ));
        }
    }
    Ok((verdicts, reports))
}

/// For cross-checks against the kernel (`bpftool prog run` per frame):
/// the oracle's verdict letter and output of every frame, as
/// `<dir>/<capture>/<program>.<config>/<i>.v` and `<i>.out`.
fn dump_oracle(dir: &Path, cases: &[Case], captures: &[Capture], predictions: &[Vec<Predicted>]) {
    for (case, preds) in cases.iter().zip(predictions) {
        for (cap, pred) in captures.iter().zip(preds) {
            let d = dir.join(cap.name).join(format!("{}.{}", case.program, case.config));
            std::fs::create_dir_all(&d).unwrap();
            for (i, e) in pred.expects.iter().enumerate() {
                std::fs::write(d.join(format!("{i}.v")), e.verdict.letter().to_string()).unwrap();
                if let Some(o) = &e.output {
                    std::fs::write(d.join(format!("{i}.out")), o).unwrap();
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the test

#[test]
fn corpus_programs_match_their_specifications() {
    if bless() {
        write_edge_captures(&repo().join("pcaps"));
    } else if let Err(e) = check_edge_captures() {
        panic!("{e}");
    }
    let captures = load_captures();
    let cases = oracles::cases();
    let predictions: Vec<Vec<Predicted>> =
        cases.iter().map(|c| captures.iter().map(|cap| predict(c, cap)).collect()).collect();
    if let Some(dir) = std::env::var_os("XDPQUAL_DUMP_ORACLE") {
        dump_oracle(Path::new(&dir), &cases, &captures, &predictions);
    }

    // Expectation files: one per program, from the oracle.
    let mut failures = Vec::new();
    let mut programs: Vec<&str> = cases.iter().map(|c| c.program).collect();
    programs.dedup();
    for program in &programs {
        let runs: Vec<(&Case, &Capture, &Predicted)> = cases
            .iter()
            .zip(&predictions)
            .filter(|(c, _)| c.program == *program)
            .flat_map(|(c, preds)| captures.iter().zip(preds).map(move |(cap, p)| (c, cap, p)))
            .collect();
        if bless() {
            std::fs::create_dir_all(repo().join("corpus/expect")).unwrap();
            std::fs::write(expect_path(program), render_expect_file(program, &runs)).unwrap();
        } else {
            failures.extend(check_expect_file(program, &runs));
        }
    }

    // The engine, every case x ISA x capture, two worker threads.
    let jobs: Vec<(usize, &str)> =
        (0..cases.len()).flat_map(|c| ISAS.into_iter().map(move |isa| (c, isa))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(c, isa)) = jobs.get(j) else { break };
                for (k, cap) in captures.iter().enumerate() {
                    let r = replay(&cases[c], isa, cap, &predictions[c][k]);
                    results.lock().unwrap().push((c, isa, k, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(c, isa, k, _)| (*c, *isa, *k));
    let mut runs = 0;
    for (c, isa, k, r) in results {
        runs += 1;
        match r {
            Err(e) => failures.push(e),
            Ok((verdicts, reports)) => {
                failures.extend(reports);
                let got = counts(verdicts.into_iter());
                let want = counts(predictions[c][k].expects.iter().map(|e| e.verdict));
                if got != want {
                    failures.push(format!(
                        "{} [{}] {isa} {}: verdict counts: expected (corpus/expect) {want:?}, engine {got:?}",
                        cases[c].program, cases[c].config, captures[k].name
                    ));
                }
            }
        }
    }
    xdpqual::util::count(format_args!(
        "{runs} replays ({} cases x {} ISAs x {} captures)",
        cases.len(),
        ISAS.len(),
        captures.len()
    ));
    if !failures.is_empty() {
        panic!("{} problems:\n{}", failures.len(), failures.join("\n"));
    }
}

/// The cases the bpfeb build is held to. A program's specification holds
/// on a big-endian machine unchanged when the source is byte-order-correct
/// (`bpf_htons` and friends, single-byte reads, multi-byte values compared
/// only with each other): every program but core.c and v4ops.c, whose
/// sources swap unconditionally (`__builtin_bswap*`) and read packet bytes
/// as little-endian numbers on purpose, and meta.c, which stores a u32
/// natively into the metadata; their big-endian meaning is worked out in
/// their oracles (`cases_bpfeb`). Cases that seed maps with
/// `Setup::Update` are left out: their keys and values hold host-order
/// integers written little-endian.
fn bpfeb_cases() -> Vec<Case> {
    let mut v: Vec<Case> = oracles::cases()
        .into_iter()
        .filter(|c| !matches!(c.program, "core" | "v4ops" | "meta"))
        .filter(|c| c.setup.iter().all(|s| matches!(s, Setup::ProgArray { .. })))
        .collect();
    v.extend(oracles::co_re::cases_bpfeb());
    v.extend(oracles::v4ops::cases_bpfeb());
    v.extend(oracles::meta::cases_bpfeb());
    v
}

#[test]
fn bpfeb_builds_match_their_specifications() {
    let captures = load_captures();
    let cases = bpfeb_cases();
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut programs = std::collections::BTreeSet::new();
    for case in &cases {
        programs.insert(case.program);
        for cap in &captures {
            let pred = predict(case, cap);
            match replay(case, BPFEB, cap, &pred) {
                Err(e) => failures.push(e),
                Ok((verdicts, reports)) => {
                    failures.extend(reports);
                    let got = counts(verdicts.into_iter());
                    let want = counts(pred.expects.iter().map(|e| e.verdict));
                    if got != want {
                        failures.push(format!(
                            "{} [{}] bpfeb {}: verdict counts: oracle {want:?}, engine {got:?}",
                            case.program, case.config, cap.name
                        ));
                    }
                }
            }
            runs += 1;
        }
    }
    // Every corpus program has a bpfeb build and at least one case.
    let sources = std::fs::read_dir(repo().join("corpus"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?.file_name().into_string().ok()?.strip_suffix(".c").map(String::from)
        })
        .collect::<std::collections::BTreeSet<_>>();
    for s in &sources {
        if !programs.contains(s.as_str()) {
            failures.push(format!("corpus/{s}.c: no bpfeb case"));
        }
    }
    eprintln!("bpfeb: {runs} (case, capture) runs over {} programs", programs.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
