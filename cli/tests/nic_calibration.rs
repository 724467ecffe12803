//! The throughput estimate against published figures
//! (nic-model/calibration/table.toml): each program runs through the NIC
//! datapath with the summary tracer, and the estimate must stay within the
//! tolerance the table states for its row.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use xdpqual::backends::nic::{estimate_frames, synthetic_udp_frames, NicBackend, NicOpen};
use xdpqual::loader::load_object;

#[derive(Deserialize)]
struct Table {
    row: Vec<Row>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Row {
    name: String,
    object: String,
    profile: String,
    published_mpps: f64,
    source: String,
    paper_insns: String,
    frame_len: usize,
    tolerance: f64,
    fitted: String,
    gate: bool,
    /// Why an ungated row is not gated.
    known_gap: Option<String>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nic-model/calibration")
}

fn predict(row: &Row) -> nic_model::Estimate {
    let path = dir().join(&row.object);
    let obj = load_object(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let prog = obj.programs[0].clone();
    let mut nic = match NicBackend::open(&obj, &prog, &row.profile, None).expect("profile") {
        NicOpen::Ready(n) => n,
        NicOpen::Rejected(r) => {
            panic!("{}: the checker rejects it for {}:\n{}", row.name, row.profile, r.to_text())
        }
    };
    // The l4lb needs its destinations; a missing entry would make it drop.
    if let Some(m) = nic.engine_mut().maps_mut().by_name("dests") {
        for k in 0..32u32 {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&[192, 168, 0, k as u8 + 1]);
            v[4..].copy_from_slice(&[10, 9, 9, 9]);
            assert_eq!(m.update(&k.to_le_bytes(), &v, 0, None), 0, "array update");
        }
    }
    estimate_frames(&mut nic, synthetic_udp_frames(row.frame_len, 256)).expect("estimate")
}

#[test]
fn calibration_table_within_tolerance() {
    let text = std::fs::read_to_string(dir().join("table.toml")).expect("table.toml");
    let table: Table = toml::from_str(&text).expect("table.toml parses");
    assert!(
        table.row.len() >= 5,
        "the table covers hXDP DROP/TX/redirect/firewall and the NFP l4lb"
    );
    for row in &table.row {
        assert!(
            row.gate || row.known_gap.is_some(),
            "{}: an ungated row must say why (known_gap)",
            row.name
        );
    }
    assert!(table.row.iter().filter(|r| r.gate).count() >= 4, "most rows are gated");
    let mut failures = Vec::new();
    for row in &table.row {
        let e = predict(row);
        let err = (e.mpps - row.published_mpps) / row.published_mpps;
        xdpqual::util::count(format_args!(
            "{:<24} predicted {:>7.2} Mpps, published {:>6.2} ({:+.1}%, tolerance {:.0}%), {:.1} insns/pkt, {:.1} cycles, bottleneck {}",
            row.name, e.mpps, row.published_mpps, err * 100.0, row.tolerance * 100.0, e.avg_insns, e.total_cycles, e.bottleneck
        ));
        if row.gate && err.abs() > row.tolerance {
            failures.push(format!(
                "{}: predicted {:.2} Mpps vs published {:.2} ({:+.1}% > {:.0}%)\n{e}",
                row.name,
                e.mpps,
                row.published_mpps,
                err * 100.0,
                row.tolerance * 100.0
            ));
        }
    }
    assert!(failures.is_empty(), "calibration drifted:\n{}", failures.join("\n"));
}

/// hXDP's 6-byte load/store fusion on the calibration programs, as worked
/// out by hand from their disassembly and the artifact's state machines
/// (parallelizer/optimizations/LoadStore48.py, Load48Store48.py): clang's
/// MAC swap interleaves loads and stores of different chunks, which resets
/// both machines, so nothing is fused; a straight 6-byte copy by half-words
/// is (see nic_model::fuse48's unit tests).
#[test]
fn hxdp_fusion_on_calibration_programs() {
    for (object, fused) in [("xdp_tx_macswap.o", 0), ("xdp_redirect.o", 0), ("xdp_drop.o", 0)] {
        let obj = load_object(&dir().join(object)).expect("object");
        let spec = xdpqual::backends::nic::offload_spec(&obj, &obj.programs[0]);
        let got = nic_model::fuse48::fused48(&spec.insns).iter().filter(|r| **r).count();
        assert_eq!(got, fused, "{object}");
    }
}

/// `offload-check --schedule` shows the rows the modelled hXDP compiler
/// makes; the MAC swap's 6 rows are worked out by hand in
/// nic_model::vliw's `mac_swap_schedule_worked_by_hand`.
#[test]
fn offload_check_prints_the_vliw_schedule() {
    let obj = dir().join("xdp_tx_macswap.o");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["offload-check", obj.to_str().unwrap(), "--profile", "hxdp", "--schedule"])
        .output()
        .expect("run xdpqual");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("VLIW schedule: 6 rows of 4 lanes, 1 blocks"), "{text}");
    assert!(
        text.contains("5: if r3 > r2 goto pc+13 (packet boundary check, done in hardware)"),
        "{text}"
    );
    assert!(text.contains("vliw:rows"), "{text}");
    // A profile without a modelled compiler: a clear error, exit 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["offload-check", obj.to_str().unwrap(), "--profile", "netdevsim", "--schedule"])
        .output()
        .expect("run xdpqual");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("needs a profile that models a VLIW compiler"));
}
