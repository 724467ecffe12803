//! Replay throughput, as issue 16's replay targets state it: `xdpqual
//! replay` of a 10,000,000-packet firewall capture with the JIT on one
//! thread (packets a second, peak RSS), on two threads, and the ceiling two
//! threads are held to: two independent single-thread replays started
//! together, each timed on its own. The ratio is the pair's mean time over
//! twice the two-thread time (the two-thread rate over the pair's
//! combined rate).
//!
//! It runs the installed form of the tool (the `xdpqual` binary of this
//! package) as separate processes, as a user would, so the pair shares
//! nothing but the machine. The capture is generated once
//! (`xdpqual gen-pcap --profile firewall --seed 3`) into the system's
//! temporary directory and kept for the next run; an untimed replay first
//! brings it into the page cache. `XDPQUAL_REPLAY_BENCH_PACKETS` sets
//! another size (the capture takes about 330 bytes a packet: 3.3 GB for
//! the default).
//!
//! `cargo bench -p xdpqual-cli --bench replay` prints one line per run and
//! writes `results/replay-bench-<timestamp>.json`. Nothing here asserts a
//! time: the figures are for reading against the targets in
//! docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Timed runs of each configuration.
const RUNS: usize = 2;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xdpqual() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xdpqual"))
}

/// The firewall capture of `packets` packets, generated if absent (written
/// under a temporary name and renamed, so an interrupted run leaves no
/// short capture behind).
fn capture(packets: u64) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join("xdpqual-replay-bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(format!("firewall-{packets}-seed3.pcap"));
    if path.exists() {
        return Ok(path);
    }
    let part = dir.join(format!("firewall-{packets}-seed3.pcap.part"));
    let status = xdpqual()
        .args(["gen-pcap", "--profile", "firewall", "--seed", "3", "--packets"])
        .arg(packets.to_string())
        .arg("-o")
        .arg(&part)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("running xdpqual gen-pcap: {e}"))?;
    if !status.success() {
        return Err(format!("xdpqual gen-pcap failed: {status}"));
    }
    std::fs::rename(&part, &path).map_err(|e| format!("renaming {}: {e}", part.display()))?;
    Ok(path)
}

fn replay(threads: usize, cap: &Path) -> Result<Child, String> {
    xdpqual()
        .arg("replay")
        .arg("--threads")
        .arg(threads.to_string())
        .arg(root().join("corpus/build/firewall.v3.o"))
        .arg(cap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting xdpqual replay: {e}"))
}

/// Waits for every child, each timed from `start` to its own exit; a
/// replay that did not exit 0 (every packet to a verdict) is an error.
fn wait_all(mut children: Vec<Child>, start: Instant) -> Result<Vec<Duration>, String> {
    let mut done: Vec<Option<Duration>> = vec![None; children.len()];
    while done.iter().any(Option::is_none) {
        for (c, d) in children.iter_mut().zip(done.iter_mut()) {
            if d.is_some() {
                continue;
            }
            if let Some(status) = c.try_wait().map_err(|e| format!("waiting for replay: {e}"))? {
                if !status.success() {
                    return Err(format!("xdpqual replay failed: {status}"));
                }
                *d = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(done.into_iter().flatten().collect())
}

fn timed(threads: &[usize], cap: &Path) -> Result<Vec<Duration>, String> {
    let start = Instant::now();
    let children = threads.iter().map(|&t| replay(t, cap)).collect::<Result<Vec<_>, _>>()?;
    wait_all(children, start)
}

/// The largest peak RSS of any child waited for so far, in KiB
/// (`getrusage(RUSAGE_CHILDREN)`'s `ru_maxrss`).
fn children_peak_rss_kib() -> Option<i64> {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .ok()
        .map(|u| u.max_rss())
}

#[derive(serde::Serialize)]
struct Run {
    one_thread_s: f64,
    two_threads_s: f64,
    pair_s: [f64; 2],
    one_thread_mpps: f64,
    two_threads_mpps: f64,
    /// The pair's mean time over twice the two-thread time.
    two_threads_over_ceiling: f64,
}

fn main() {
    let packets: u64 = std::env::var("XDPQUAL_REPLAY_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    if let Err(e) = run(packets) {
        eprintln!("replay bench: {e}");
        std::process::exit(1);
    }
}

fn run(packets: u64) -> Result<(), String> {
    let cap = capture(packets)?;
    // Into the page cache, untimed; until the first two-thread run, every
    // child waited for is a single-thread replay, so this is their peak.
    timed(&[1], &cap)?;
    let one_peak = children_peak_rss_kib().unwrap_or(0);
    let n = packets as f64;
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let one = timed(&[1], &cap)?[0].as_secs_f64();
        let two = timed(&[2], &cap)?[0].as_secs_f64();
        let pair = timed(&[1, 1], &cap)?;
        let pair_s = [pair[0].as_secs_f64(), pair[1].as_secs_f64()];
        let r = Run {
            one_thread_s: one,
            two_threads_s: two,
            pair_s,
            one_thread_mpps: n / one / 1e6,
            two_threads_mpps: n / two / 1e6,
            two_threads_over_ceiling: (pair_s[0] + pair_s[1]) / 2.0 / (2.0 * two),
        };
        println!(
            "{packets} packets: 1 thread {:.2} s ({:.2} Mpps), 2 threads {:.2} s ({:.2} Mpps), pair {:.2} / {:.2} s, 2 threads / ceiling {:.2}",
            r.one_thread_s,
            r.one_thread_mpps,
            r.two_threads_s,
            r.two_threads_mpps,
            r.pair_s[0],
            r.pair_s[1],
            r.two_threads_over_ceiling
        );
        runs.push(r);
    }
    let all_peak = children_peak_rss_kib().unwrap_or(0);
    println!(
        "peak RSS: {:.1} MiB for a single-thread replay, {:.1} MiB for any (the two-thread ones included)",
        one_peak as f64 / 1024.0,
        all_peak as f64 / 1024.0
    );
    let out_dir = root().join("results");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = out_dir.join(format!("replay-bench-{}.json", xdpqual::bench::utc_stamp(secs)));
    let json = serde_json::json!({
        "schema": "xdpqual.replay-bench/1",
        "program": "corpus/build/firewall.v3.o",
        "capture": cap.display().to_string(),
        "packets": packets,
        "runs": runs,
        "peak_rss_kib_single_thread": one_peak,
        "peak_rss_kib_all": all_peak,
    });
    let tmp = out.with_extension("json.part");
    std::fs::create_dir_all(&out_dir)
        .and_then(|_| std::fs::write(&tmp, serde_json::to_vec_pretty(&json).expect("serialisable")))
        .and_then(|_| std::fs::rename(&tmp, &out))
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("results: {}", out.display());
    Ok(())
}
