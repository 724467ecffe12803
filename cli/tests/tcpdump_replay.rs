//! Every capture of tcpdump's test suite replayed through the corpus
//! firewall with the full replay pipeline. Each file either replays or gets
//! a clear per-file error; never a panic. The firewall passes the kernel
//! verifier, so the engine must never fault on it: a fault here would mean
//! the engine and the kernel disagree about what the program may do.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use xdpqual::engine::{Engine, EngineConfig};
use xdpqual::loader::load_object;
use xdpqual::replay::{replay, ReplayOptions};

fn corpus_dir() -> Option<PathBuf> {
    xdpqual::util::shared_dir("pcaps/tcpdump/tests")
}

#[test]
fn tcpdump_captures_replay_through_the_firewall() {
    let Some(dir) = corpus_dir() else {
        xdpqual::util::skip(format_args!("../shared/pcaps/tcpdump/tests not found"));
        return;
    };
    let obj =
        load_object(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/build/firewall.v3.o"))
            .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() > 700, "expected tcpdump's corpus, found {} captures", files.len());
    let (mut replayed, mut packets, mut faults) = (0, 0u64, Vec::new());
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    for f in &files {
        let mut engine = Engine::new(&obj, None, EngineConfig::default()).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            replay(
                &mut engine,
                &obj,
                "xdp_firewall",
                std::slice::from_ref(f),
                &ReplayOptions::default(),
            )
        }));
        let report = match r {
            Err(_) => panic!("{}: replay panicked", f.display()),
            Ok(Err(e)) => {
                panic!("{}: replay failed outside the per-file error path: {e:#}", f.display())
            }
            Ok(Ok(r)) => r,
        };
        let cap = &report.summary.captures[0];
        packets += cap.counts.total;
        for (v, n) in &cap.counts.by_verdict {
            *verdicts.entry(v.clone()).or_default() += n;
        }
        if let Some(n) = cap.counts.by_verdict.get("FAULT") {
            faults.push(format!("{}: {n} faults", f.display()));
        }
        match &cap.error {
            None => replayed += 1,
            Some(e) => {
                // Group by the kind of refusal.
                let reason = if let Some(i) = e.find("link type ") {
                    let t: String = e[i..].split(" is not").next().unwrap_or("").into();
                    format!("refused: {t}")
                } else {
                    e.rsplit(": ").next().unwrap_or(e).chars().take(70).collect()
                };
                *refused.entry(reason).or_default() += 1;
            }
        }
    }
    xdpqual::util::count(format_args!("tcpdump captures through the firewall: {} files, {replayed} replayed fully, {} refused or cut short, {packets} packets", files.len(), files.len() - replayed));
    for (reason, n) in &refused {
        println!("  {n:>4}  {reason}");
    }
    println!("  verdicts: {verdicts:?}");
    assert_eq!(replayed + refused.values().sum::<usize>(), files.len(), "every file accounted for");
    assert!(
        faults.is_empty(),
        "the engine faulted on a verifier-accepted program:\n{}",
        faults.join("\n")
    );
    assert!(packets > 5_000, "the corpus yields many packets ({packets})");
}
