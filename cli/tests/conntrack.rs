//! The conntrack kfuncs against the engine's modelled table: values worked
//! out by hand from net/netfilter/nf_conntrack_bpf.c (6.18) for
//! tests/data/conntrack/ct.c over ct.pcap, in the interpreter and the JIT;
//! the same run compared with the host kernel in a fresh network namespace
//! (so that the kernel's table starts empty as the engine's does); and
//! hostile uses of `struct nf_conn` pointers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use xdpqual::backends::engine::run_packet;
use xdpqual::compare::PacketSource;
use xdpqual::engine::{Engine, EngineConfig, NoTrace};
use xdpqual::loader::{load_object, HOST_BTF};

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conntrack")).join(name)
}

/// Builds ct.c into a scratch directory; `None` (after a SKIP line) when
/// the host lacks what it needs.
fn build(test: &str) -> Option<PathBuf> {
    build_src(test, "ct.c")
}

fn build_src(test: &str, src: &str) -> Option<PathBuf> {
    if common::host_btf_has_func("bpf_xdp_ct_lookup") != Some(true) {
        xdpqual::util::skip(format_args!(
            "{HOST_BTF} has no bpf_xdp_ct_lookup (no nf_conntrack in this kernel)"
        ));
        return None;
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-ct-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dir.join(src.replace(".c", ".o"));
    let inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let cc = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &inc, "-c"])
        .arg(data(src))
        .arg("-o")
        .arg(&obj)
        .status();
    if !cc.is_ok_and(|s| s.success()) {
        xdpqual::util::skip(format_args!("clang-19 cannot build tests/data/conntrack/{src}"));
        return None;
    }
    Some(obj)
}

/// Packets of ct.pcap (Ethernet + IPv4 + TCP, 54 bytes each).
fn packets() -> Vec<PacketSource> {
    packets_of("ct.pcap")
}

/// Packets of a little-endian microsecond pcap of tests/data/conntrack.
fn packets_of(name: &str) -> Vec<PacketSource> {
    let b = std::fs::read(data(name)).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let (sec, usec) = (
            u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64,
            u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as u64,
        );
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(PacketSource {
            data: b[at + 16..at + 16 + len].to_vec(),
            ts_ns: sec * 1_000_000_000 + usec * 1000,
            ingress_ifindex: 1,
            rx_queue_index: 0,
        });
        at += 16 + len;
    }
    out
}

/// One packet's record: `N` u32/s32 words, in the order of the C struct.
fn rec<const N: usize>(v: &[u8]) -> [i32; N] {
    let mut r = [0i32; N];
    for (i, w) in v.chunks_exact(4).take(N).enumerate() {
        r[i] = i32::from_le_bytes(w.try_into().unwrap());
    }
    r
}

/// The capture: 0 SYN 10.0.0.1:1234 -> 10.0.0.2:80, 1 SYN+ACK back,
/// 2 ACK forward, 3 ACK 10.0.0.3:999 -> 10.0.0.2:80 (no connection),
/// 4 SYN forward again. Worked out by hand:
/// - every packet's probes: a 10-byte tuple is neither sizeof(ipv4) (12)
///   nor sizeof(ipv6) (36): -EAFNOSUPPORT (-97); l4proto ICMP: -EPROTO
///   (-71); opts__sz 12 with ct_zone_id set: -EINVAL (-22);
/// - the main lookup uses opts__sz 16 with ct_zone_dir 0, which the kernel
///   rewrites to NF_CT_DEFAULT_ZONE_DIR (3), hit or miss;
/// - packet 0 misses (-ENOENT, -2); its SYN allocates, set_status(SEEN_REPLY)
///   is allowed (0), the insert succeeds with status SEEN_REPLY|CONFIRMED
///   (0xa), and the program sets mark 42. Verdict PASS (2).
/// - packet 1 finds it in the reply direction (dir 1), status 0xa, mark 42
///   (bumped to 43); change_timeout 0; change_status adding ASSURED 0;
///   taking ASSURED away again -EBUSY (-16); its SYN's insert finds the
///   connection there already (-EEXIST, NULL): 2. Verdict TX (3).
/// - packet 2: original direction (0), status 0xe, mark 43 -> 44. TX.
/// - packet 3: miss (-2), not a SYN: DROP (1).
/// - packet 4: dir 0, status 0xe, mark 44 -> 45, insert refused (2). TX.
#[rustfmt::skip]
const EXPECTED: [[i32; 16]; 5] = [
    // err found dir zdir status mark ch_to ch_st clr  set  ins ins_st  tup  proto size pad
    [-2,  0,    0,  3,   0,     0,   0,    0,    0,   0,   1,  0xa,  -97, -71, -22, 0],
    [0,   1,    1,  3,   0xa,   42,  0,    0,    -16, 0,   2,  0,    -97, -71, -22, 0],
    [0,   1,    0,  3,   0xe,   43,  0,    0,    -16, 0,   0,  0,    -97, -71, -22, 0],
    [-2,  0,    0,  3,   0,     0,   0,    0,    0,   0,   0,  0,    -97, -71, -22, 0],
    [0,   1,    0,  3,   0xe,   44,  0,    0,    -16, 0,   2,  0,    -97, -71, -22, 0],
];
const VERDICTS: [&str; 5] = ["PASS", "TX", "TX", "DROP", "TX"];

#[test]
fn the_engine_tracks_connections_as_worked_out_by_hand() {
    let Some(obj_path) = build("hand") else { return };
    let obj = load_object(&obj_path).expect("load ct.o");
    let setup = xdpqual::conntrackfile::setup_for(&obj, None, None).unwrap().expect("uses ct");
    for jit in [false, true] {
        let cfg = EngineConfig { conntrack: Some(setup.clone()), ..Default::default() };
        let mut e = Engine::new(&obj, None, cfg).unwrap().with_jit(jit);
        for (i, p) in packets().iter().enumerate() {
            let r = run_packet(&mut e, p, &mut NoTrace);
            assert_eq!(r.verdict.to_string(), VERDICTS[i], "jit {jit} packet {i}: {r:?}");
        }
        let log = e.maps().maps.iter().find(|m| m.def.name == "ct_log").unwrap();
        let entries = log.entries();
        for (i, want) in EXPECTED.iter().enumerate() {
            let got: [i32; 16] = rec(&entries[i].values[0]);
            assert_eq!(&got, want, "jit {jit}: record of packet {i}");
        }
        let table = e.conntrack_entries().unwrap();
        assert_eq!(table.len(), 1, "{table:?}");
        let c = &table[0];
        assert_eq!((c.proto, c.src.as_str(), c.sport), (6, "10.0.0.1", 1234));
        assert_eq!((c.dst.as_str(), c.dport, c.zone), ("10.0.0.2", 80, 0));
        assert_eq!((c.status, c.mark), (0xe, 45));
        // The last change_timeout (60000 ms = 15000 jiffies at HZ 250) ran at
        // packet 4, 1000.4 s into the capture: jiffies start at 2^32 - 300 * 250
        // (INITIAL_JIFFIES), so 2^32 - 75000 + 250100 + 15000 = 190100 mod 2^32.
        assert_eq!(c.timeout_jiffies, 190_100);
    }
    std::fs::remove_dir_all(obj_path.parent().unwrap()).ok();
}

/// The host kernel in a network namespace of its own (`unshare -n`): its
/// conntrack table starts empty, as the engine's does.
#[test]
fn the_host_kernel_agrees_in_a_fresh_namespace() {
    let Some(obj_path) = build("host") else { return };
    let Some(v) = host_diff(&obj_path, "ct.pcap", 5) else { return };
    assert_eq!(v["conntrack"][0]["mark"], 45, "{v}");
    std::fs::remove_dir_all(obj_path.parent().unwrap()).ok();
}

/// `xdpqual diff --backends vm,host` in a network namespace of its own;
/// checks that all `packets` and the maps (the programs' logs of what the
/// kfuncs answered) agree. `None` after a SKIP line.
fn host_diff(obj: &Path, capture: &str, packets: u64) -> Option<serde_json::Value> {
    let out = Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", obj.to_str().unwrap(), data(capture).to_str().unwrap()])
        .args(["--backends", "vm,host", "--format", "json"])
        .output();
    let Ok(out) = out else {
        xdpqual::util::skip(format_args!("unshare(1) cannot run here"));
        return None;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare") {
        xdpqual::util::skip(format_args!("cannot make a network namespace here: {stderr}"));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {stderr} {}", String::from_utf8_lossy(&out.stdout)));
    if let Some(s) = v["skipped"].as_array().filter(|s| !s.is_empty()) {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {s:?}"));
        return None;
    }
    assert_eq!(v["backends"], serde_json::json!(["vm", "host"]), "{v}");
    assert_eq!(v["packets"], packets, "{v}");
    assert_eq!(v["agreed"], packets, "{v}");
    assert_eq!(v["mismatch_count"], 0, "{v}");
    // The host's log map holds what the kernel's kfuncs answered.
    assert_eq!(v["map_mismatches"], serde_json::json!([]), "{v}");
    assert!(v["conntrack_note"].as_str().unwrap().contains("not compared"), "{v}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    Some(v)
}

/// ct_zones.c over ct_zones.pcap (UDP 192.168.1.1:5000 -> 192.168.1.2:53,
/// the reply, the first again), worked out by hand:
/// - packet 0: zone 5 misses (-2) and ct_zone_dir 0 comes back as 3; the
///   allocation (no set_timeout: its 10 s stand) with ASSURED is inserted
///   with status ASSURED|CONFIRMED (0xc); the default zone (opts__sz 12)
///   does not see it (-2): nf_ct_zone_id of zone 5 for the original
///   direction is 5, not 0; zone 5 for the original direction only
///   (ct_zone_dir 1) finds it (1, dir 0); the reversed tuple, which matches
///   the reply direction, with that zone does not (-2: for the reply
///   direction that zone's id is the default 0); netns_id 0 names no peer
///   namespace of this fresh one: -ENONET (-64); netns_id -2: -EINVAL;
///   reserved[1] set: -EINVAL. PASS.
/// - packet 1 (the reply): zone 5 finds it (status 0xc); the default zone
///   misses; original-only zone 5 misses (the tuple is the reply
///   direction's); the reversed tuple (original direction) is found. TX.
/// - packet 2: found (0xc), nothing inserted; as packet 0 otherwise. TX.
#[rustfmt::skip]
const ZONES: [[i32; 12]; 3] = [
    // z5err z5dir z5st ins ins_st dflt origonly dir replyonly netns0 netns-2 reserved
    [-2,   3,    0,   1,  0xc,   -2,  1,       0,  -2,       -64,   -22,    -22],
    [0,    3,    0xc, 0,  0,     -2,  -2,      0,  1,        -64,   -22,    -22],
    [0,    3,    0xc, 0,  0,     -2,  1,       0,  -2,       -64,   -22,    -22],
];

#[test]
fn zones_netns_ids_and_the_default_timeout_as_worked_out_by_hand() {
    let Some(obj_path) = build_src("zones", "ct_zones.c") else { return };
    let obj = load_object(&obj_path).expect("load ct_zones.o");
    let setup = xdpqual::conntrackfile::setup_for(&obj, None, None).unwrap().expect("uses ct");
    for jit in [false, true] {
        let cfg = EngineConfig { conntrack: Some(setup.clone()), ..Default::default() };
        let mut e = Engine::new(&obj, None, cfg).unwrap().with_jit(jit);
        for (i, p) in packets_of("ct_zones.pcap").iter().enumerate() {
            let r = run_packet(&mut e, p, &mut NoTrace);
            assert_eq!(r.verdict.to_string(), ["PASS", "TX", "TX"][i], "jit {jit} {i}: {r:?}");
        }
        let log = e.maps().maps.iter().find(|m| m.def.name == "zlog").unwrap();
        let entries = log.entries();
        for (i, want) in ZONES.iter().enumerate() {
            let got: [i32; 12] = rec(&entries[i].values[0]);
            assert_eq!(&got, want, "jit {jit}: record of packet {i}");
        }
        let t = e.conntrack_entries().unwrap();
        assert_eq!((t.len(), t[0].zone, t[0].status, t[0].proto), (1, 5, 0xc, 17), "{t:?}");
    }
    host_diff(&obj_path, "ct_zones.pcap", 3);
    std::fs::remove_dir_all(obj_path.parent().unwrap()).ok();
}

/// A connection from a `--conntrack` file is found by the first packet;
/// the file cannot be combined with the host backend, whose table
/// xdpqual does not fill.
#[test]
fn a_conntrack_file_seeds_the_table() {
    let Some(obj_path) = build("seed") else { return };
    let dir = obj_path.parent().unwrap();
    let file = dir.join("seed.json");
    std::fs::write(
        &file,
        r#"{"connections": [{"proto": "tcp", "src": "10.0.0.3", "sport": 999,
            "dst": "10.0.0.2", "dport": 80, "status": 2, "mark": 7, "timeout_ms": 5000}]}"#,
    )
    .unwrap();
    let run = |backends: &str| {
        Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .args(["diff", obj_path.to_str().unwrap(), data("ct.pcap").to_str().unwrap()])
            .args(["--backends", backends, "--format", "json", "--conntrack"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = run("vm,host");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backends vm"));
    // vm alone is an incomplete diff (exit 2), which still reports the table.
    let out = run("vm");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Packet 3 (10.0.0.3:999 -> 10.0.0.2:80) now finds the seeded
    // connection: status SEEN_REPLY|CONFIRMED, mark 7 bumped to 8, ASSURED
    // added by the program.
    let t = v["conntrack"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{v}");
    assert_eq!((t[0]["sport"].as_u64(), t[0]["mark"].as_u64()), (Some(999), Some(8)), "{v}");
    assert_eq!(t[0]["status"], 0xe, "{v}");
    std::fs::remove_dir_all(dir).ok();
}

/// Hostile programs: a forged `struct nf_conn` pointer, a released one and
/// a write outside `mark` fault inside the sandbox.
#[test]
fn forged_released_and_read_only_pointers_fault() {
    use xdpqual::isa::Insn;
    use xdpqual::program::{LineTable, Object, Program};
    let Some(btf) = Path::new(HOST_BTF).exists().then_some(HOST_BTF) else {
        xdpqual::util::skip(format_args!("{HOST_BTF} is absent"));
        return;
    };
    let layout = match xdpqual::conntrackfile::layout_from_btf(Path::new(btf)) {
        Ok(l) => l,
        Err(e) => {
            xdpqual::util::skip(format_args!("no struct nf_conn in the host BTF: {e:#}"));
            return;
        }
    };
    let status = layout.status as i16;
    let seed = xdpqual::conntrackfile::parse(
        r#"{"connections": [{"proto": "tcp", "src": "1.2.3.4", "sport": 1,
            "dst": "5.6.7.8", "dport": 2, "timeout_ms": 100000}]}"#,
    )
    .unwrap();
    let setup = std::sync::Arc::new(xdpqual::engine::conntrack::Setup { layout, seeds: seed });
    let i = Insn::new;
    // r6 = lookup(ctx, tuple 1.2.3.4:1 -> 5.6.7.8:2, opts 16 bytes), which
    // finds the seeded connection.
    let lookup = vec![
        i(0xb7, 1, 0, 0, 0),
        i(0x7b, 10, 1, -16, 0),
        i(0x7b, 10, 1, -8, 0),
        i(0x62, 10, 0, -16, -1), // netns_id = -1
        i(0x72, 10, 0, -8, 6),   // l4proto TCP
        i(0x62, 10, 0, -32, 0x0403_0201u32 as i32),
        i(0x62, 10, 0, -28, 0x0807_0605u32 as i32),
        i(0x62, 10, 0, -24, 0x0200_0100u32 as i32), // sport 1, dport 2 (network order)
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -32),
        i(0xb7, 3, 0, 0, 12),
        i(0xbf, 4, 10, 0, 0),
        i(0x07, 4, 0, 0, -16),
        i(0xb7, 5, 0, 0, 16),
        i(0xbf, 1, 9, 0, 0),   // r1 = ctx
        i(0x85, 0, 2, 0, 100), // bpf_xdp_ct_lookup
        i(0x55, 0, 0, 2, 0),   // found: skip the exit
        i(0xb7, 0, 0, 0, 1),
        i(0x95, 0, 0, 0, 0),
        i(0xbf, 6, 0, 0, 0),
    ];
    let run = |tail: Vec<Insn>| {
        // r9 = ctx, then the lookup, then `tail`, then return PASS.
        let mut insns = vec![i(0xbf, 9, 1, 0, 0)];
        insns.extend(lookup.iter().copied());
        insns.extend(tail);
        insns.push(i(0xb7, 0, 0, 0, 2));
        insns.push(i(0x95, 0, 0, 0, 0));
        let kfuncs = [(100, "bpf_xdp_ct_lookup".to_string()), (101, "bpf_ct_release".to_string())];
        let obj = Object {
            path: "hostile".into(),
            programs: vec![Program {
                name: "h".into(),
                section: "xdp".into(),
                frags: false,
                insns,
                lines: LineTable::default(),
                functions: Vec::new(),
            }],
            maps: Vec::new(),
            license: "GPL".into(),
            byte_order: Default::default(),
            kfuncs: kfuncs.into_iter().collect(),
            ksyms: Vec::new(),
            btf: Default::default(),
        };
        let mut out = Vec::new();
        for jit in [false, true] {
            let cfg = EngineConfig { conntrack: Some(setup.clone()), ..Default::default() };
            let mut e = Engine::new(&obj, None, cfg).unwrap().with_jit(jit);
            let pkt =
                PacketSource { data: vec![0; 64], ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
            out.push(format!("{:?}", run_packet(&mut e, &pkt, &mut NoTrace).verdict));
        }
        assert_eq!(out[0], out[1], "interpreter and JIT differ");
        out.remove(0)
    };
    // Reading status through the held reference works, and writing mark.
    let ok = run(vec![i(0x79, 7, 6, status, 0), i(0xbf, 1, 6, 0, 0), i(0x85, 0, 2, 0, 101)]);
    assert!(ok.contains("Pass"), "{ok}");
    // After the release, the same read faults.
    let released = run(vec![i(0xbf, 1, 6, 0, 0), i(0x85, 0, 2, 0, 101), i(0x79, 7, 6, status, 0)]);
    assert!(released.contains("struct nf_conn"), "{released}");
    // Writing status (only mark is writable) faults.
    let ro = run(vec![i(0x7b, 6, 6, status, 0)]);
    assert!(ro.contains("read-only") || ro.contains("ReadOnly"), "{ro}");
    // A forged pointer: the reference's address plus one reference index.
    let forged = run(vec![i(0xbf, 7, 6, 0, 0), i(0x07, 7, 0, 0, 1 << 24), i(0x79, 8, 7, 0, 0)]);
    assert!(forged.contains("struct nf_conn"), "{forged}");

    // Far outside the struct.
    let far = run(vec![i(0x79, 8, 6, 4000, 0)]);
    assert!(far.contains("struct nf_conn"), "{far}");
    println!("released: {released}\nread-only: {ro}\nforged: {forged}\nfar: {far}");
}

/// `qualify` gives a conntrack program the same empty table `diff` does:
/// in a fresh network namespace, ct.c over ct.pcap passes the engine's
/// own checks and agrees with the host kernel. Before qualify set the table
/// up, every packet faulted in the engine ("built without the target
/// kernel's struct nf_conn layout") and the host check failed.
#[test]
fn qualify_runs_conntrack_programs() {
    let Some(obj_path) = build("qualify") else { return };
    let dir = obj_path.parent().unwrap();
    let cfg = dir.join("xdpqual.toml");
    std::fs::write(
        &cfg,
        format!(
            "captures = [{:?}]\n[[program]]\nobject = {:?}\ncells = [\"vm\", \"host\"]\n",
            data("ct.pcap").to_str().unwrap(),
            obj_path.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["qualify", "--quiet", "--no-history", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("results"))
        .output();
    let Ok(out) = out else {
        xdpqual::util::skip(format_args!("unshare(1) cannot run here"));
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare") {
        xdpqual::util::skip(format_args!("cannot make a network namespace here: {stderr}"));
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 passed, 0 failed, 0 skipped"), "{stdout}");
    let run = std::fs::read_dir(dir.join("results")).unwrap().next().unwrap().unwrap().path();
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(junit.contains("name=\"engine agrees with host kernel ["), "{junit}");
    assert!(!junit.contains("<failure") && !junit.contains("<skipped"), "{junit}");
    std::fs::remove_dir_all(dir).ok();
}
