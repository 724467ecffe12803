//! The JIT against the interpreter on the whole corpus: every program of
//! every `corpus/build/*.o`, every packet of every `pcaps/*.pcap`. Each
//! packet must give the same outcome (verdict or fault with its pc), output
//! bytes, events, redirect and instruction count, and the maps must end up
//! identical.

use std::path::{Path, PathBuf};

use xdpqual::capture::CaptureReader;
use xdpqual::engine::{Engine, EngineConfig, ExecMode, PacketIn};
use xdpqual::loader::load_object;
use xdpqual::mapfile::{self, MapInit};
use xdpqual::program::Object;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn packets() -> Vec<(String, Vec<(u64, Vec<u8>)>)> {
    files(&root().join("pcaps"), "pcap")
        .into_iter()
        .map(|f| {
            let mut r = CaptureReader::open(&f).unwrap();
            let mut pkts = Vec::new();
            while let Some(p) = r.next_packet() {
                let p = p.unwrap();
                pkts.push((p.ts_ns, p.data));
            }
            (f.file_name().unwrap().to_string_lossy().into_owned(), pkts)
        })
        .collect()
}

/// The `corpus/maps/OBJECT-MAP.json` files that belong to this object.
fn map_inits(obj_path: &Path, obj: &Object) -> Vec<MapInit> {
    let stem = obj_path.file_name().unwrap().to_string_lossy();
    let base = stem.split('.').next().unwrap().to_string();
    files(&root().join("corpus/maps"), "json")
        .into_iter()
        .filter_map(|f| {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            let (o, m) = name.split_once('-')?;
            (o == base && obj.maps.iter().any(|d| d.name == m))
                .then(|| MapInit { map: m.to_string(), file: f.clone() })
        })
        .collect()
}

fn engine(obj: &Object, prog: &str, inits: &[MapInit], jit: bool) -> Engine {
    let cfg = EngineConfig { jit, ..Default::default() };
    let mut e = Engine::new(obj, Some(prog), cfg).unwrap_or_else(|err| panic!("{prog}: {err}"));
    mapfile::apply(&mut e, obj, inits).unwrap();
    e
}

#[test]
fn jit_matches_interpreter_on_corpus() {
    let objs = files(&root().join("corpus/build"), "o");
    assert!(objs.len() >= 30, "corpus not built? found {} objects", objs.len());
    let captures = packets();
    assert!(!captures.is_empty(), "no pcaps");
    let (mut programs, mut compared, mut faults) = (0, 0u64, 0u64);
    for path in &objs {
        let obj = load_object(path).unwrap();
        let inits = map_inits(path, &obj);
        for prog in &obj.programs {
            let mut interp = engine(&obj, &prog.name, &inits, false);
            let mut jit = engine(&obj, &prog.name, &inits, true);
            assert_eq!(interp.exec_mode(), &ExecMode::Interpreter);
            assert_eq!(
                jit.exec_mode(),
                &ExecMode::Jit,
                "{}:{} did not compile",
                path.display(),
                prog.name
            );
            programs += 1;
            for (cap, pkts) in &captures {
                for (i, (ts, data)) in pkts.iter().enumerate() {
                    let pkt = PacketIn { data, ts_ns: *ts, ingress_ifindex: 1, rx_queue_index: 0 };
                    let a = interp.run_xdp(&pkt);
                    let b = jit.run_xdp(&pkt);
                    let at = || format!("{}:{} {cap} packet {i}", path.display(), prog.name);
                    assert_eq!(a.outcome, b.outcome, "{}: outcome", at());
                    assert_eq!(a.output, b.output, "{}: output bytes", at());
                    assert_eq!(a.events, b.events, "{}: events", at());
                    assert_eq!(a.redirect, b.redirect, "{}: redirect", at());
                    assert_eq!(a.insns, b.insns, "{}: instruction count", at());
                    faults += matches!(a.outcome, xdpqual::engine::Outcome::Fault(_)) as u64;
                    compared += 1;
                }
            }
            for (ma, mb) in interp.maps().maps.iter().zip(&jit.maps().maps) {
                assert_eq!(
                    ma.entries(),
                    mb.entries(),
                    "{}:{} final map '{}'",
                    path.display(),
                    prog.name,
                    ma.def.name
                );
            }
        }
    }
    xdpqual::util::count(format_args!(
        "JIT == interpreter: {programs} programs, {compared} packet runs ({faults} faults)"
    ));
    assert!(compared > 100_000);
}

/// Not a test: ns/packet of the interpreter and the JIT on the firewall
/// over pcaps/firewall-2k.pcap, replayed many times. Run with
/// `cargo test --release -p xdpqual-cli --test jit_corpus -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_firewall_interp_vs_jit() {
    let path = root().join("corpus/build/firewall.v3.o");
    let obj = load_object(&path).unwrap();
    let prog = &obj.programs[0];
    let (_, pkts) =
        packets().into_iter().find(|(n, _)| n == "firewall-2k.pcap").expect("firewall-2k.pcap");
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    println!("{}: {} insns, {} packets x {rounds} rounds", prog.name, prog.insns.len(), pkts.len());
    // The same runs of `r0 = XDP_PASS; exit`: the engine's per-packet cost
    // around the program (buffer setup, output copy), to subtract.
    use xdpqual::isa::Insn;
    let trivial = xdpqual::program::Program {
        name: "pass".into(),
        section: "xdp".into(),
        frags: false,
        insns: vec![
            Insn { code: 0xb7, dst: 0, src: 0, off: 0, imm: 2 },
            Insn { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
        ],
        lines: Default::default(),
        functions: Vec::new(),
    };
    for (jit, base) in [(false, true), (true, true), (false, false), (true, false)] {
        let mut e = if base {
            Engine::for_program(&trivial, &[], EngineConfig { jit, ..Default::default() }).unwrap()
        } else {
            engine(&obj, &prog.name, &[], jit)
        };
        let (mut insns, mut verdicts) = (0u64, 0u64);
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            for (ts, data) in &pkts {
                let r = e.run_xdp(&PacketIn {
                    data,
                    ts_ns: *ts,
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                });
                insns += r.insns;
                verdicts += matches!(r.outcome, xdpqual::engine::Outcome::Exit { .. }) as u64;
            }
        }
        let n = (rounds * pkts.len()) as f64;
        let ns = t.elapsed().as_nanos() as f64 / n;
        let what = if base { "pass-only" } else { "firewall" };
        println!(
            "{what:>9} {:>12}: {ns:8.1} ns/packet, {:.1} insns/packet, {verdicts} exits",
            e.exec_mode().to_string(),
            insns as f64 / n
        );
    }
}
