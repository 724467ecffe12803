//! The throughput estimate names the bound that applies and never exceeds
//! the profile's line rate; a profile without one says so.

use nic_model::perf::{Bottleneck, InsnClass, TraceSummary};
use nic_model::{estimate, Profile};

/// `packets` minimum-size frames (60 B without FCS), each running 10 ALU64
/// instructions and nothing else.
fn ten_alu64(packets: u64) -> TraceSummary {
    let mut s = TraceSummary { packets, frame_bytes: 60 * packets, ..Default::default() };
    s.insns.insert(InsnClass::Alu64, 10 * packets);
    s
}

#[test]
fn corenic_is_capped_at_its_line_rate() {
    let p = Profile::builtin("nfp-corenic").unwrap();
    let e = estimate(&p, &ten_alu64(100)).unwrap();
    // Compute: 10 ALU64 x 2 NFP instructions + 200 per-packet cycles = 220
    // cycles; 50 cores x 800 MHz / 220 = 181.8 Mpps. The wire: 40 Gbit/s
    // over (60 + 24) B x 8 = 672 bits per frame = 59.52 Mpps, the smaller.
    assert!((e.compute_bound_mpps - 40_000.0 / 220.0).abs() < 1e-9, "{e}");
    let line = 40_000.0 / 672.0;
    assert!((e.line_rate_mpps.unwrap() - line).abs() < 1e-9, "{e}");
    assert_eq!(e.bottleneck, Bottleneck::LineRate);
    assert!((e.mpps - line).abs() < 1e-9);
    let text = e.to_string();
    assert!(
        text.starts_with("throughput estimate on nfp-corenic: 59.52 Mpps (bound: line rate)"),
        "{text}"
    );
    assert!(text.contains("line rate 59.52 Mpps"), "{text}");
}

#[test]
fn a_profile_without_line_rate_says_so() {
    // nfp-agilio-ebpf has clock, cores and threads but no line rate (and no
    // per-packet cycles): 10 x 2 = 20 cycles, 50 x 800 / 20 = 2000 Mpps,
    // compute-bound (the latency bound is 4 threads x that).
    let p = Profile::builtin("nfp-agilio-ebpf").unwrap();
    let e = estimate(&p, &ten_alu64(4)).unwrap();
    assert_eq!(e.line_rate_mpps, None);
    assert_eq!(e.bottleneck, Bottleneck::Compute);
    assert!((e.mpps - 2000.0).abs() < 1e-9, "{e}");
    let text = e.to_string();
    assert!(text.contains("(bound: compute"), "{text}");
    assert!(text.contains("no line rate in the profile"), "{text}");
    assert!(!text.contains("none"), "{text}");
}
