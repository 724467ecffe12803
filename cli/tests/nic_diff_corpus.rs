//! `xdpqual diff --backends vm,nic:nfp-corenic` over the shipped corpus
//! (xdpqual.toml): every packet the NIC treats differently from the engine
//! must be attributed to a named rule, and the attributions must be the ones
//! worked out here from the captures and docs/offload-rules.md, not from the diff itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xdpqual::capture::CaptureReader;
use xdpqual::diff::{self, BackendKind, DiffOptions};
use xdpqual::loader::load_object;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// CoreNIC's packet-split boundary: NFP_NET_CFG_BPF_INL_MTU = 30 (NFD),
/// fw_mtu = 30 * 64 - 32 = 1888 bytes (docs/offload-rules.md NFP-M7).
const SPLIT_BOUNDARY: usize = 30 * 64 - 32;
const ETH_HLEN: usize = 14;

/// The corpus programs nfp-corenic accepts, by the verdicts worked out in
/// xdpqual.toml (object, section): only these can be diffed against the NIC.
const COMPATIBLE: &[(&str, Option<&str>)] = &[
    ("corpus/build/encap.v3.o", Some("xdp/encap")),
    ("corpus/build/encap.v3.o", Some("xdp/decap")),
    ("corpus/build/vlan.v3.o", Some("xdp/vlan_push")),
    ("corpus/build/vlan.v3.o", Some("xdp/vlan_pop")),
    ("corpus/build/truncate.v3.o", None),
    ("corpus/build/subprogs.v3.o", None),
];

#[test]
fn corpus_nic_differences_are_all_explained() {
    let cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("xdpqual.toml")).unwrap()).unwrap();
    let captures: Vec<PathBuf> = cfg["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| root().join(c.as_str().unwrap()))
        .collect();

    // NFP-M7 (as the NIC backend models it, MTU at the boundary): a frame
    // whose L3 part is longer than the boundary never reaches the program.
    // Every other packet of these programs must agree: their adjust_head
    // deltas (-20, +20, -4, +4) are constants inside the fast-path window
    // [-84, 46] (NFP-H4), truncate only shrinks (NFP-H5), and none of them
    // redirects (NFP-R1) or draws random numbers.
    let mut oversized = BTreeSet::new();
    for c in &captures {
        for p in CaptureReader::open(c).unwrap() {
            let p = p.unwrap();
            if p.data.len().saturating_sub(ETH_HLEN) > SPLIT_BOUNDARY {
                oversized.insert((c.display().to_string(), p.index));
            }
        }
    }
    assert!(
        !oversized.is_empty(),
        "the corpus captures hold jumbo frames (mixed-2k.pcap), so NFP-M7 must show"
    );

    let mut diffed = BTreeSet::new();
    for prog in cfg["program"].as_array().unwrap() {
        let object = prog["object"].as_str().unwrap();
        let section = prog.get("section").and_then(|s| s.as_str());
        let expect_ok = prog["offload"]["nfp-corenic"].as_bool().unwrap();
        let path = root().join(object);
        let obj = load_object(&path).unwrap();
        let program = obj.program(section).unwrap().clone();
        let opts = DiffOptions {
            backends: vec![BackendKind::Vm, BackendKind::Nic("nfp-corenic".into())],
            maps: Vec::new(),
            rx_queue_index: 0,
            max_reported: 3,
            fib: None,
            conntrack: None,
        };
        let r = diff::run(&obj, &program, &captures, &opts).unwrap();
        let label = format!("{object}:{}", section.unwrap_or("-"));
        if !expect_ok {
            assert!(
                r.skipped
                    .iter()
                    .any(|s| matches!(&s.backend, BackendKind::Nic(p) if p == "nfp-corenic")),
                "{label}: the checker must refuse it, so the diff skips the NIC"
            );
            continue;
        }
        assert!(prog.get("maps").is_none(), "{label}: give the diff its maps");
        diffed.insert((object, section));
        assert_eq!(
            r.unexplained, 0,
            "{label}: NIC differences no rule explains: {:#?}",
            r.mismatches
        );
        assert_eq!(r.tally.mismatch_count, 0, "{label}: {:#?}", r.mismatches);
        assert_eq!(r.tally.nondeterministic, 0, "{label}");
        let got: BTreeSet<(String, u64)> =
            r.explained_packets.iter().map(|p| (p.capture.clone(), p.index)).collect();
        assert_eq!(got, oversized, "{label}: explained packets are exactly the oversized frames");
        assert!(
            r.explained_packets.iter().all(|p| p.rules == ["NFP-M7"]),
            "{label}: {:?}",
            r.explained_packets
        );
        assert_eq!(r.explained_by.get("NFP-M7").copied(), Some(oversized.len() as u64), "{label}");
        assert_eq!(r.explained as usize, oversized.len(), "{label}");
        assert_eq!(r.packets, r.tally.agreed + r.explained, "{label}");
    }
    let want: BTreeSet<_> = COMPATIBLE.iter().copied().collect();
    assert_eq!(diffed, want, "the programs nfp-corenic accepts");
}
