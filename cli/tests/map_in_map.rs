//! Map-in-map (issue 14 item 4): corpus/mapinmap/mapinmap.c, compiled here
//! with clang -target bpf, run in the engine and against the host kernel.
//! Expected verdicts and counters are worked out from the program's header
//! comment (its specification), for four frames:
//!   0. IPv4 UDP to port 1000 (even): outer_hash[7] = inner_b counts it;
//!      outer_arr[0] = inner_a counts it; inner_a[1] = 0 -> PASS.
//!   1. IPv4 UDP to port 1001 (odd): inner_b counts it; outer_arr[1] is
//!      empty unless a map file fills it -> PASS; filled with an inner map
//!      whose [1] = 1 -> that map counts it and the packet is DROPped.
//!   2. IPv4 TCP: jmp[0] = xdp_tail statically -> DROP.
//!   3. ARP -> PASS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use xdpqual::capture::{write_pcap, TsPrecision};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn xdpqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).current_dir(root()).args(args).output().unwrap()
}

struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("xdpqual-mim-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// Compiles mapinmap.c with `define` (or none); `None` when clang-19 is
/// missing.
fn build(dir: &Path, define: Option<&str>) -> Option<String> {
    build_src(dir, "mapinmap", define)
}

fn build_src(dir: &Path, src: &str, define: Option<&str>) -> Option<String> {
    let out = dir.join(format!("{src}{}.o", define.unwrap_or("")));
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let mut cmd = Command::new("clang-19");
    cmd.args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(define)
        .arg("-c")
        .arg(root().join(format!("corpus/mapinmap/{src}.c")))
        .arg("-o")
        .arg(&out);
    match cmd.output() {
        Err(_) => None,
        Ok(o) => {
            assert!(o.status.success(), "clang: {}", String::from_utf8_lossy(&o.stderr));
            Some(out.to_str().unwrap().to_string())
        }
    }
}

fn frame(proto: u8, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16] = 0;
    f[17] = 46; // total length: 60 - 14
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&4000u16.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

fn capture(dir: &Path) -> String {
    let mut arp = vec![0u8; 60];
    arp[12] = 0x08;
    arp[13] = 0x06;
    let p = dir.join("in.pcap");
    let frames = [frame(17, 1000), frame(17, 1001), frame(6, 80), arp];
    write_pcap(
        &p,
        TsPrecision::Microsecond,
        frames.into_iter().enumerate().map(|(i, f)| (i as u64, f)),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

fn verdicts(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["schema"] == "xdpqual.replay.packet/1")
        .map(|j| j["verdict"]["action"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn dump_map<'a>(dump: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    dump["maps"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap_or_else(|| {
        panic!("dump has no map {name}: {dump}");
    })
}

/// Value of key `k` of an ARRAY of u64 in a dump.
fn u64_at(map: &serde_json::Value, k: u32) -> u64 {
    let key = hex(&k.to_le_bytes());
    let e = map["entries"].as_array().unwrap().iter().find(|e| e["key"] == key.as_str()).unwrap();
    let h = e["values"][0].as_str().unwrap();
    let b: Vec<u8> =
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect();
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn replay(obj: &str, cap: &str, dump: &Path, maps: &[String]) -> (Vec<String>, serde_json::Value) {
    let mut args = vec!["replay", "--json", "-", "--dump-maps", dump.to_str().unwrap(), "--raw"];
    for m in maps {
        args.extend(["--map", m.as_str()]);
    }
    // Section `xdp`: the object's first program is the tail-call target.
    let prog = format!("{obj}:xdp");
    args.extend([prog.as_str(), cap]);
    let o = xdpqual(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let d = serde_json::from_slice(&std::fs::read(dump).unwrap()).unwrap();
    (verdicts(&o), d)
}

#[test]
fn static_slots_and_outer_lookups_in_the_engine() {
    let dir = scratch("static");
    let Some(obj) = build(&dir.0, None) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let cap = capture(&dir.0);
    let (v, d) = replay(&obj, &cap, &dir.0.join("dump.json"), &[]);
    assert_eq!(v, ["PASS", "PASS", "DROP", "PASS"]);
    assert_eq!(u64_at(dump_map(&d, "inner_a"), 0), 1, "frame 0 through outer_arr[0]");
    assert_eq!(u64_at(dump_map(&d, "inner_b"), 0), 2, "frames 0 and 1 through outer_hash[7]");
    // The slots name the statically placed maps.
    let outer = dump_map(&d, "outer_arr");
    assert_eq!(outer["slots"][0]["map"], "inner_a");
    assert_eq!(outer["slots"].as_array().unwrap().len(), 1);
    assert_eq!(dump_map(&d, "outer_hash")["slots"][0]["key"], "07000000");
}

#[test]
fn map_files_fill_outer_slots_with_fresh_inner_maps() {
    let dir = scratch("mapfile");
    let Some(obj) = build(&dir.0, None) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let cap = capture(&dir.0);
    let f = dir.0.join("outer.json");
    std::fs::write(&f, r#"{"entries":[{"key":1,"inner":{"entries":[{"key":1,"value":1}]}}]}"#)
        .unwrap();
    let arg = format!("outer_arr={}", f.display());
    let (v, d) = replay(&obj, &cap, &dir.0.join("dump.json"), std::slice::from_ref(&arg));
    assert_eq!(v, ["PASS", "DROP", "DROP", "PASS"]);
    let fresh = dump_map(&d, "outer_arr[1]");
    assert_eq!(fresh["type"], "ARRAY");
    assert_eq!(u64_at(fresh, 0), 1, "frame 1 counted in the fresh inner map");
    assert_eq!(u64_at(fresh, 1), 1);
    assert_eq!(u64_at(dump_map(&d, "inner_a"), 0), 1);
    let slots = dump_map(&d, "outer_arr")["slots"].as_array().unwrap().clone();
    let names: Vec<&str> = slots.iter().map(|s| s["map"].as_str().unwrap()).collect();
    assert_eq!(names, ["inner_a", "outer_arr[1]"]);

    // The same through the kernel: diff agrees on every packet and map,
    // inner maps included.
    if xdpqual::backends::host::HostBackend::open().is_err() {
        xdpqual::util::skip("map_in_map: the host kernel backend is unavailable");
        return;
    }
    let prog = format!("{obj}:xdp");
    let o = xdpqual(&["diff", "--backends", "vm,host", "--json", "--map", &arg, &prog, &cap]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["packets"], 4);
    assert_eq!(j["agreed"], 4);
    assert_eq!(j["map_mismatches"].as_array().unwrap().len(), 0);
}

/// The kernel's own dump of the maps after the same packets: the inner
/// maps are there under the engine's names, and the outer slots read back
/// as the same positions, so the diff compares them.
#[test]
fn host_session_creates_and_reports_inner_maps() {
    use xdpqual::backends::host::{HostBackend, RunFlags, SessionOutcome, XdpCtx};
    let dir = scratch("host");
    let Some(obj_path) = build(&dir.0, None) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let Ok(host) = HostBackend::open() else {
        xdpqual::util::skip("map_in_map: the host kernel backend is unavailable");
        return;
    };
    let obj = xdpqual::loader::load_object(Path::new(&obj_path)).unwrap();
    let prog = obj.program(Some("xdp_mim")).unwrap().clone();
    let f = dir.0.join("outer.json");
    std::fs::write(&f, r#"{"entries":[{"key":1,"inner":{"entries":[{"key":1,"value":1}]}}]}"#)
        .unwrap();
    let init: xdpqual::mapfile::MapInit = format!("outer_arr={}", f.display()).parse().unwrap();
    let SessionOutcome::Ready(mut s) = host.load(&obj, &prog).unwrap() else {
        panic!("the kernel refused mapinmap.o")
    };
    xdpqual::backends::host_run::apply_maps_to_host(&mut s, &obj, std::slice::from_ref(&init))
        .unwrap();
    let ctx = XdpCtx { ingress_ifindex: 1, rx_queue_index: 0, data_meta_len: 0 };
    let rets: Vec<u32> = [frame(17, 1000), frame(17, 1001), frame(6, 80)]
        .iter()
        .map(|f| s.run(f, ctx, 1, RunFlags::default()).unwrap().retval)
        .collect();
    assert_eq!(rets, [2, 1, 1], "PASS, DROP, DROP (enum xdp_action)");
    let maps = xdpqual::backends::host_run::session_maps(&s);
    let get = |n: &str| maps.iter().find(|m| m.name == n).unwrap().entries.clone().unwrap();
    let fresh = get("outer_arr[1]");
    let at = |e: &[(Vec<u8>, Vec<Vec<u8>>)], k: u32| {
        let v = &e.iter().find(|(key, _)| key == &k.to_le_bytes()).unwrap().1[0];
        u64::from_le_bytes(v[..8].try_into().unwrap())
    };
    assert_eq!((at(&fresh, 0), at(&fresh, 1)), (1, 1));
    assert_eq!(at(&get("inner_b"), 0), 2);
    // Slot 0 holds inner_a (map #0), slot 1 the first inner map made after
    // the object's five maps (#5).
    let mut outer = get("outer_arr");
    outer.sort();
    assert_eq!(
        outer,
        vec![
            (0u32.to_le_bytes().to_vec(), vec![0u32.to_le_bytes().to_vec()]),
            (1u32.to_le_bytes().to_vec(), vec![5u32.to_le_bytes().to_vec()]),
        ]
    );
}

#[test]
fn missing_or_malformed_templates_are_refused_with_exit_2() {
    let dir = scratch("bad");
    let cap = capture(&dir.0);
    for (define, want) in
        [("-DNO_TEMPLATE", "has no inner-map template"), ("-DBAD_TEMPLATE", "has no map type")]
    {
        let Some(obj) = build(&dir.0, Some(define)) else {
            xdpqual::util::skip("map_in_map: clang-19 is not installed");
            return;
        };
        let o = xdpqual(&["replay", &obj, &cap]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{define}: {err}");
        assert!(err.contains(want) && err.contains("outer_arr"), "{define}: {err}");
        assert!(!err.contains("panicked"), "{define}: {err}");
    }
    // Map files that put the wrong thing in a slot.
    let obj = build(&dir.0, None).unwrap();
    for (text, want) in [
        (r#"{"entries":[{"key":1,"map":"jmp"}]}"#, "does not match the inner-map template"),
        (r#"{"entries":[{"key":1,"map":"nope"}]}"#, "no map named 'nope'"),
        (r#"{"entries":[{"key":1,"value":"00000000"}]}"#, "holds maps"),
        (r#"{"entries":[{"key":5,"inner":{"entries":[]}}]}"#, "errno 7"),
        (r#"{"entries":[{"key":1,"map":"inner_a","inner":{"entries":[]}}]}"#, "exactly one"),
    ] {
        let f = dir.0.join("bad.json");
        std::fs::write(&f, text).unwrap();
        let o = xdpqual(&["replay", "--map", &format!("outer_arr={}", f.display()), &obj, &cap]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains("panicked"), "{text}: {err}");
    }
}

/// A legacy `maps` section: the template is the map `inner_map_idx` names
/// (samples/bpf/bpf_load.c's layout); legacy.c's header gives the counts:
/// inner[0] counts every packet once outer[0] holds `inner`.
#[test]
fn legacy_inner_map_idx() {
    let dir = scratch("legacy");
    let Some(obj) = build_src(&dir.0, "legacy", None) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let cap = capture(&dir.0);
    let f = dir.0.join("outer.json");
    std::fs::write(&f, r#"{"entries":[{"key":0,"map":"inner"}]}"#).unwrap();
    let (v, d) = replay(&obj, &cap, &dir.0.join("dump.json"), &[format!("outer={}", f.display())]);
    assert_eq!(v, ["PASS"; 4]);
    assert_eq!(u64_at(dump_map(&d, "inner"), 0), 4);
    for (define, want) in [
        ("-DINNER_IDX=1", "that one is the map itself"),
        ("-DINNER_IDX=5", "the section has 2 maps"),
    ] {
        let obj = build_src(&dir.0, "legacy", Some(define)).unwrap();
        let o = xdpqual(&["inspect", &obj]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{define}: {err}");
        assert!(err.contains(want) && err.contains("inner_map_idx"), "{define}: {err}");
    }
}

/// Katran's balancer (public corpus, lib/bpf/balancer.bpf.c) with the
/// fixtures of corpus/public/maps (VIP 10.1.0.1 TCP/80, reals 1-3, one
/// LRU per CPU in lru_mapping). The verdicts below follow from its source,
/// for the packets of pcaps/edges.pcap whose fate the source makes plain:
/// - not IPv4/IPv6 (ARP, LLDP, VLAN-tagged: balancer_ingress does not
///   parse tags) -> XDP_PASS ("pass to tcp/ip stack");
/// - untagged IPv4, IHL 5, not a fragment, a full TCP header, to 10.1.0.1:
///   port 80 is the VIP: the flow is hashed onto the ring, a real chosen,
///   the packet IPIP-encapsulated -> XDP_TX; other ports miss the VIP (port
///   0 is not configured) -> XDP_PASS.
///
/// The run against the kernel is the public corpus test's (`diff
/// --backends vm,host`, which takes minutes at Katran's default map sizes).
#[test]
fn katran_balancer_load_balances_the_vip() {
    let Some(dir) = std::env::var_os("XDPQUAL_PUBLIC_XDP_OBJECTS").map(PathBuf::from) else {
        xdpqual::util::skip("katran: XDPQUAL_PUBLIC_XDP_OBJECTS is not set");
        return;
    };
    let obj = dir.join("katran__balancer.v3.o");
    if !obj.exists() {
        xdpqual::util::skip(format_args!("katran: {} does not exist", obj.display()));
        return;
    }
    let maps = root().join("corpus/public/maps");
    let args_file = std::fs::read_to_string(maps.join("katran__balancer.v3.args")).unwrap();
    let mut args: Vec<String> = vec!["replay".into(), "--json".into(), "-".into()];
    for l in args_file.lines() {
        let (m, f) = l.split_once('=').unwrap();
        args.push("--map".into());
        args.push(format!("{m}={}", maps.join(f).display()));
    }
    args.push(obj.to_str().unwrap().into());
    args.push("pcaps/edges.pcap".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xdpqual(&argv);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let got = verdicts(&o);
    let frames = read_pcap(&root().join("pcaps/edges.pcap"));
    assert_eq!(got.len(), frames.len());
    let (mut tx, mut pass) = (0, 0);
    for (i, f) in frames.iter().enumerate() {
        let et = f.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let want = match et {
            Some(0x0800) | Some(0x86dd) | None => {
                let plain_tcp = et == Some(0x0800)
                    && f.len() >= 54
                    && f[14] == 0x45
                    && u16::from_be_bytes([f[20], f[21]]) & 0x3fff == 0
                    && f[23] == 6
                    && f[30..34] == [10, 1, 0, 1];
                if !plain_tcp {
                    continue;
                }
                if u16::from_be_bytes([f[36], f[37]]) == 80 {
                    "TX"
                } else {
                    "PASS"
                }
            }
            Some(_) => "PASS",
        };
        assert_eq!(got[i], want, "edges.pcap packet {i}");
        tx += usize::from(want == "TX");
        pass += usize::from(want == "PASS");
    }
    assert!(tx >= 1 && pass >= 1, "{tx} TX, {pass} PASS checked");
}

/// The frames of a classic little-endian pcap.
fn read_pcap(p: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(p).unwrap();
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= d.len() {
        let len = u32::from_le_bytes(d[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(d[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

/// libbpf `parse_btf_map_def`: a PROG_ARRAY with `values` holds 4-byte
/// program references, so a value size left out becomes 4 (the program
/// then runs as with `__type(value, __u32)`) and any other is refused.
#[test]
fn a_prog_array_with_values_gets_libbpfs_value_size() {
    let dir = scratch("jmpsize");
    let cap = capture(&dir.0);
    let Some(unset) = build(&dir.0, Some("-DJMP_VALUE_UNSET")) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let o = xdpqual(&["inspect", &unset]);
    let out = String::from_utf8_lossy(&o.stdout);
    let jmp = out.lines().find(|l| l.contains(" jmp ")).expect("jmp in the map table");
    let cols: Vec<&str> = jmp.split_whitespace().collect();
    // #, name, type, key, value, max_entries, ...
    assert_eq!(&cols[1..6], ["jmp", "PROG_ARRAY", "4", "4", "1"], "{jmp}");
    let (v, _) = replay(&unset, &cap, &dir.0.join("dump.json"), &[]);
    assert_eq!(v, ["PASS", "PASS", "DROP", "PASS"], "the static slot still tail-calls");

    let eight = build(&dir.0, Some("-DJMP_VALUE_8")).unwrap();
    let o = xdpqual(&["replay", &eight, &cap]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("jmp") && err.contains("value_size 8"), "{err}");
}

/// iproute2's `struct bpf_elf_map` layout: the template is the map whose
/// `id` is the outer map's `inner_id`, and `inner` (id 7, inner_idx 0)
/// fills outer[0] at load. iproute2.c's header gives the counts: every
/// frame finds outer[0] = inner, counts itself in inner[0] and passes (with
/// outer[0] empty every frame would be dropped). The samples' layout read
/// of the same words would take `id` 7 as a position and refuse the object.
#[test]
fn iproute2_inner_id_and_inner_idx() {
    let dir = scratch("iproute2");
    let Some(obj) = build_src(&dir.0, "iproute2", None) else {
        xdpqual::util::skip("map_in_map: clang-19 is not installed");
        return;
    };
    let cap = capture(&dir.0);
    let (v, d) = replay(&obj, &cap, &dir.0.join("dump.json"), &[]);
    assert_eq!(v, ["PASS"; 4]);
    assert_eq!(u64_at(dump_map(&d, "inner"), 0), 4);
    assert_eq!(u64_at(dump_map(&d, "spare"), 0), 0);
    let slots = dump_map(&d, "outer")["slots"].as_array().unwrap().clone();
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!(slots[0]["map"], "inner");

    for (define, want) in
        [("-DINNER_ID=0", "needs inner_id"), ("-DINNER_ID=9", "no map of the section has that id")]
    {
        let obj = build_src(&dir.0, "iproute2", Some(define)).unwrap();
        let o = xdpqual(&["inspect", &obj]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{define}: {err}");
        assert!(err.contains(want) && err.contains("outer"), "{define}: {err}");
    }

    // The kernel, given the same maps and slot, agrees on every packet and
    // on the maps.
    if xdpqual::backends::host::HostBackend::open().is_err() {
        xdpqual::util::skip("map_in_map: the host kernel backend is unavailable");
        return;
    }
    let prog = format!("{obj}:xdp");
    let o = xdpqual(&["diff", "--backends", "vm,host", "--json", &prog, &cap]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["packets"], 4);
    assert_eq!(j["agreed"], 4);
    assert_eq!(j["map_mismatches"].as_array().unwrap().len(), 0);
}
