//! Engine performance: nanoseconds per packet, measured as the median of
//! several rounds and normalised by a reference workload timed in the same
//! rounds, so that a slower or busier machine does not read as a
//! regression. The sample and the rule that turns two samples into
//! "regressed" are in [`crate::report::perf`]; docs/history.md states the
//! rule for users.

use std::time::Instant;

use crate::backends::{engine::run_packet, PacketSource};
use crate::engine::{Engine, EngineConfig, NoTrace};
use crate::isa::Insn;
use crate::program::{LineTable, Object, Program};
use crate::report::perf::PerfSample;

/// The reference workload: a fixed program that touches no packet byte and
/// spends a constant 64-iteration ALU loop per packet, then passes. It runs
/// through the same engine and packet setup as the measured program, so the
/// ratio cancels the machine's speed and the per-packet overhead's share.
pub fn reference_object() -> Object {
    let i = |code: u8, dst: u8, src: u8, off: i16, imm: i32| Insn { code, dst, src, off, imm };
    let insns = vec![
        i(0xb7, 1, 0, 0, 64), // r1 = 64
        i(0xb7, 2, 0, 0, 0),  // r2 = 0
        i(0x0f, 2, 1, 0, 0),  // r2 += r1
        i(0x17, 1, 0, 0, 1),  // r1 -= 1
        i(0x55, 1, 0, -3, 0), // if r1 != 0 goto -3
        i(0xb7, 0, 0, 0, 2),  // r0 = XDP_PASS
        i(0x95, 0, 0, 0, 0),  // exit
    ];
    Object {
        path: "<reference workload>".into(),
        programs: vec![Program {
            name: "reference".into(),
            section: "xdp".into(),
            frags: false,
            insns,
            lines: LineTable::default(),
            functions: vec![],
        }],
        maps: vec![],
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Packets per timed slice, and how often each slice is repeated (the
/// fastest repetition counts). On a shared machine a slice of a few
/// microseconds either runs undisturbed or is visibly hit by a context
/// switch; keeping the fastest of a few drops the hits, and timing the
/// reference and the program slice by slice puts both under the same load.
const SLICE: usize = 64;
const REPEATS: usize = 3;

/// Times `rounds` rounds; a round replays the capture slice by slice, each
/// slice through the reference and then the program (fresh map state each
/// round, so every round does the same work). `prepare` builds and fills
/// the program's engine.
pub fn measure(
    program: &str,
    capture: &str,
    packets: &[PacketSource],
    rounds: u32,
    mut prepare: impl FnMut() -> anyhow::Result<Engine>,
) -> anyhow::Result<PerfSample> {
    let reference = reference_object();
    let mut ref_engine = Engine::new(&reference, None, EngineConfig::default())?;
    let n = packets.len().max(1) as f64;
    let (mut prog_ns, mut ref_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut insns = 0u64;
    for _ in 0..rounds.max(1) {
        let mut engine = prepare()?;
        let (mut g_total, mut r_total) = (0f64, 0f64);
        insns = 0;
        for slice in packets.chunks(SLICE) {
            let (mut g_best, mut r_best) = (f64::INFINITY, f64::INFINITY);
            for rep in 0..REPEATS {
                let t = Instant::now();
                for p in slice {
                    std::hint::black_box(run_packet(&mut ref_engine, p, &mut NoTrace));
                }
                r_best = r_best.min(t.elapsed().as_nanos() as f64);
                let t = Instant::now();
                for p in slice {
                    let res = run_packet(&mut engine, p, &mut NoTrace);
                    if rep == 0 {
                        insns += res.insns.unwrap_or(0);
                    }
                    std::hint::black_box(res);
                }
                g_best = g_best.min(t.elapsed().as_nanos() as f64);
            }
            g_total += g_best;
            r_total += r_best;
        }
        prog_ns.push(g_total / n);
        ref_ns.push(r_total / n);
        ratios.push(if r_total > 0.0 { g_total / r_total } else { 0.0 });
    }
    let ratio = median(&mut ratios.clone());
    let mut dev: Vec<f64> = ratios.iter().map(|x| (x - ratio).abs()).collect();
    let noise = if ratio > 0.0 { 1.4826 * median(&mut dev) / ratio } else { 0.0 };
    Ok(PerfSample {
        unit: 0,
        program: program.into(),
        capture: capture.into(),
        backend: "vm".into(),
        rounds: rounds.max(1),
        packets: packets.len() as u64,
        median_ns: median(&mut prog_ns),
        ref_median_ns: median(&mut ref_ns),
        ratio,
        noise,
        insns_per_packet: insns as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_resist_one_outlier() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn reference_workload_runs_and_passes() {
        let obj = reference_object();
        let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
        let pkt =
            PacketSource { data: vec![0; 64], ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
        let r = run_packet(&mut e, &pkt, &mut NoTrace);
        assert_eq!(r.verdict.label(), "PASS");
        // 2 setup + 64 x 3 loop + 2 exit instructions.
        assert_eq!(r.insns, Some(2 + 64 * 3 + 2));
    }
}
