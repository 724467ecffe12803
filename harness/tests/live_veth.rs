//! The live backend on veth pairs this test builds: two network namespaces
//! `xq-<pid>-<tag>-a/b` with `veth0` in one and its peer `veth1` in the
//! other, removed by a Drop guard (also on panic). All traffic stays inside
//! them. Without `ip` or CAP_NET_ADMIN/CAP_NET_RAW/CAP_SYS_ADMIN each test
//! prints `SKIP: <reason>` and returns.
//!
//! The corpus verdicts are checked against the engine frame by frame: a PASS
//! must reach veth0's stack with the engine's output bytes, a TX must reach
//! veth1 with them, a DROP/ABORTED must reach neither.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xdpqual::backends::live::{self, attach::Interface, Endpoint, LiveError, LiveOptions, XdpMode};
use xdpqual::loader::load_object;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    for (bit, name) in
        [(12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW"), (21, "CAP_SYS_ADMIN"), (39, "CAP_BPF")]
    {
        if eff & (1u64 << bit) == 0 {
            return Some(format!("{name} is missing (run as root)"));
        }
    }
    None
}

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            xdpqual::util::skip(format_args!("{why}"));
            return;
        }
    };
}

/// Two namespaces joined by a veth pair; everything is removed on drop.
struct VethPair {
    a: String,
    b: String,
}

impl VethPair {
    fn new(tag: &str) -> VethPair {
        let pid = std::process::id();
        let p = VethPair { a: format!("xq-{pid}-{tag}-a"), b: format!("xq-{pid}-{tag}-b") };
        ip(&["netns", "add", &p.a]).expect("netns a");
        ip(&["netns", "add", &p.b]).expect("netns b");
        // One queue each way, so every frame lands on rx queue 0.
        ip(&[
            "link",
            "add",
            "veth0",
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "netns",
            &p.a,
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "netns",
            &p.b,
        ])
        .expect("veth pair");
        for (ns, dev) in [(&p.a, "veth0"), (&p.b, "veth1")] {
            // No IPv6 (no router/neighbour solicitations) and no ARP, so the
            // only frames on the wire are the ones the test sends.
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    ns,
                    "sh",
                    "-c",
                    &format!("echo 1 > /proc/sys/net/ipv6/conf/{dev}/disable_ipv6"),
                ])
                .output()
                .expect("sysctl");
            assert!(out.status.success(), "disable_ipv6: {}", String::from_utf8_lossy(&out.stderr));
            ip(&["-n", ns, "link", "set", dev, "mtu", "1500", "arp", "off", "up"])
                .expect("link up");
        }
        p
    }
    fn iface(&self) -> Endpoint {
        Endpoint::new("veth0", Some(&self.a))
    }
    fn peer(&self) -> Endpoint {
        Endpoint::new("veth1", Some(&self.b))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn opts(pair: &VethPair, mode: XdpMode) -> LiveOptions {
    LiveOptions {
        iface: pair.iface(),
        peer: pair.peer(),
        mode,
        replace: false,
        maps: Vec::new(),
        settle: Duration::from_millis(2),
        max_reported: 5,
        max_packets: Some(60),
    }
}

fn captures() -> Vec<PathBuf> {
    vec![root().join("pcaps/mixed-2k.pcap"), root().join("pcaps/firewall-2k.pcap")]
}

/// Exact verdicts by fexit wherever the kernel allows tracing programs;
/// where it does not (some sandboxes refuse them with EPERM), tagging,
/// with the kernel's refusal stated in the report.
fn assert_observation(report: &live::LiveReport) {
    use live::observe::Method;
    match live::probe::kernel_allows_tracing() {
        Ok(()) => {
            assert_eq!(
                report.observation_method,
                Method::Fexit,
                "fell back: {:?}",
                report.observation_fallback
            );
            assert_eq!(report.observation_fallback, None);
            // Every frame sent has the action the probe saw, judged against the engine's.
            assert_eq!(report.actions.values().sum::<u64>(), report.sent);
        }
        Err(why) => {
            eprintln!("NOTE: this kernel refuses tracing programs ({why}); checking the fallback");
            assert_eq!(report.observation_method, Method::Tagging);
            let fallback = report.observation_fallback.as_deref().expect("the fallback says why");
            assert!(fallback.contains("fexit probe"), "{fallback}");
            assert!(
                report.notes.iter().any(|n| n.contains("not fexit") && n.contains(fallback)),
                "{:?}",
                report.notes
            );
            assert!(report.actions.is_empty());
        }
    }
}

/// Every program of every v4 corpus object through `mode`.
fn corpus_agrees(mode: XdpMode, tag: &str) {
    let pair = VethPair::new(tag);
    let mut objects: Vec<PathBuf> = std::fs::read_dir(root().join("corpus/build"))
        .expect("corpus/build")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".v4.o"))
        .collect();
    objects.sort();
    assert!(objects.len() >= 14, "expected the 14 corpus objects, found {}", objects.len());
    let mut runs = 0;
    let mut places = std::collections::BTreeSet::new();
    for path in &objects {
        let obj = load_object(path).expect("corpus object loads");
        for prog in &obj.programs {
            let report = live::run(&obj, prog, &captures(), &opts(&pair, mode))
                .unwrap_or_else(|e| panic!("{} {}: {e}", path.display(), prog.name));
            xdpqual::util::count(format_args!(
                "live {mode} {} {}: sent {}, not sent {}, agree {}, nondet {}, late {}, {:?}, {:.0} pps",
                path.file_name().unwrap().to_string_lossy(),
                prog.name,
                report.sent,
                report.not_sent,
                report.agreed,
                report.nondeterministic,
                report.late_arrivals,
                report.counts,
                report.packets_per_s
            ));
            assert!(
                report.agrees(),
                "{} {} in {mode} mode disagrees with the engine:\n{}",
                path.display(),
                prog.name,
                serde_json::to_string_pretty(&report).unwrap()
            );
            assert_eq!(report.sent, report.agreed + report.nondeterministic);
            assert_eq!(report.sent + report.not_sent, report.packets);
            assert!(report.sent >= 100, "most of the 120 frames fit the MTU");
            assert_observation(&report);
            places.extend(report.counts.keys().cloned());
            runs += 1;
        }
    }
    assert!(runs >= 18, "every program of every object ran ({runs})");
    // The corpus passes, drops and reflects: each place must have been seen.
    for p in ["PASS (stack)", "TX (peer)", "DROP/ABORTED/REDIRECT (nowhere)"] {
        assert!(places.contains(p), "no frame was seen at {p} in {mode} mode");
    }
    // Nothing is left attached after the runs.
    let ifc = Interface::resolve(&pair.iface()).expect("veth0");
    assert!(ifc.xdp.is_empty(), "left attached: {:?}", ifc.xdp);
}

#[test]
fn corpus_agrees_with_the_engine_in_drv_mode() {
    skip_unless_able!();
    corpus_agrees(XdpMode::Drv, "drv");
}

#[test]
fn corpus_agrees_with_the_engine_in_skb_mode() {
    skip_unless_able!();
    corpus_agrees(XdpMode::Skb, "skb");
}

#[test]
fn hw_mode_on_veth_is_refused_in_plain_words() {
    skip_unless_able!();
    let pair = VethPair::new("hw");
    // reflector has no maps, so the refusal is the program load's.
    let obj = load_object(&root().join("corpus/build/reflector.v4.o")).unwrap();
    let err = live::run(&obj, &obj.programs[0], &captures(), &opts(&pair, XdpMode::Hw))
        .expect_err("veth has no offload");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, LiveError::Offload(_)), "{msg}");
    for needle in ["hw mode on veth0", "driver veth", "kernel ", "EINVAL", "no BPF offload"] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
    // A map type offload cannot hold is named before the kernel is asked.
    let fw = load_object(&root().join("corpus/build/firewall.v4.o")).unwrap();
    let msg = live::run(&fw, &fw.programs[0], &captures(), &opts(&pair, XdpMode::Hw))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("offloaded maps can only be ARRAY or HASH"), "{msg}");
    let ifc = Interface::resolve(&pair.iface()).expect("veth0");
    assert!(ifc.xdp.is_empty());
}

#[test]
fn bad_interfaces_and_busy_interfaces() {
    skip_unless_able!();
    let pair = VethPair::new("bad");
    let obj = load_object(&root().join("corpus/build/reflector.v4.o")).unwrap();
    let prog = &obj.programs[0];

    let mut o = opts(&pair, XdpMode::Drv);
    o.iface = Endpoint::new("nosuch0", Some(&pair.a));
    let msg = live::run(&obj, prog, &captures(), &o).unwrap_err().to_string();
    assert!(
        msg.contains("interface nosuch0")
            && msg.contains("does not exist")
            && msg.contains("ENODEV"),
        "{msg}"
    );

    // Someone else's program on veth0: refused, then replaced and restored.
    let other = root().join("corpus/build/v4ops.v4.o");
    ip(&[
        "-n",
        &pair.a,
        "link",
        "set",
        "veth0",
        "xdpgeneric",
        "obj",
        other.to_str().unwrap(),
        "sec",
        "xdp",
    ])
    .expect("attach a program with ip");
    let before = Interface::resolve(&pair.iface()).unwrap().xdp;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].mode, XdpMode::Skb);
    let err = live::run(&obj, prog, &captures(), &opts(&pair, XdpMode::Drv)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LiveError::Busy { .. }), "{msg}");
    assert!(
        msg.contains(&format!("program id {}", before[0].prog_id))
            && msg.contains("xdp_v4ops")
            && msg.contains("--replace"),
        "{msg}"
    );
    assert_eq!(
        Interface::resolve(&pair.iface()).unwrap().xdp,
        before,
        "a refused run leaves it alone"
    );

    let mut o = opts(&pair, XdpMode::Drv);
    o.replace = true;
    o.max_packets = Some(20);
    let report = live::run(&obj, prog, &captures(), &o).expect("replace run");
    assert!(report.agrees(), "{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(
        Interface::resolve(&pair.iface()).unwrap().xdp,
        before,
        "the original program is back, in its mode"
    );
}

/// Writes a classic pcap (LINKTYPE_ETHERNET) with `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&(i as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn frames_over_the_mtu_are_reported_not_sent() {
    skip_unless_able!();
    let pair = VethPair::new("mtu");
    let dir = std::env::temp_dir().join(format!("xq-live-mtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("sizes.pcap");
    let frame = |len: usize| {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
        f
    };
    // 1514 = MTU 1500 + 14 fits; 1515 does not.
    write_pcap(&pcap, &[frame(1514), frame(1515), frame(60)]);
    let obj = load_object(&root().join("corpus/build/v4ops.v4.o")).unwrap();
    let mut o = opts(&pair, XdpMode::Skb);
    o.max_packets = None;
    let report = live::run(&obj, &obj.programs[0], std::slice::from_ref(&pcap), &o).expect("run");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!((report.packets, report.sent, report.not_sent), (3, 2, 1));
    assert_eq!(report.not_sent_examples[0].index, 1);
    assert!(
        report.not_sent_examples[0].reason.contains("1515 bytes")
            && report.not_sent_examples[0].reason.contains("MTU 1500"),
        "{:?}",
        report.not_sent_examples
    );
    assert!(report.agrees(), "{}", serde_json::to_string_pretty(&report).unwrap());
}

/// PASS below 80 bytes, DROP below 200, ABORTED from 200: built here, so
/// the live backend gives it the BTF clang would (`int f(struct xdp_md *)`).
fn size_classes() -> xdpqual::program::Object {
    use xdpqual::isa::{opcode as op, Insn};
    let ldx = |dst, off| Insn::new(op::LDX | op::SIZE_W | op::MODE_MEM, dst, 1, off, 0);
    let insns = vec![
        ldx(2, 0), // data
        ldx(3, 4), // data_end
        Insn::new(op::ALU64 | op::MOV | op::X, 4, 2, 0, 0),
        Insn::new(op::ALU64 | op::ADD | op::K, 4, 0, 0, 80),
        Insn::new(op::JMP | op::JGT | op::X, 4, 3, 7, 0), // len < 80: PASS
        Insn::new(op::ALU64 | op::MOV | op::X, 4, 2, 0, 0),
        Insn::new(op::ALU64 | op::ADD | op::K, 4, 0, 0, 200),
        Insn::new(op::JMP | op::JGT | op::X, 4, 3, 2, 0), // len < 200: DROP
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 0), // XDP_ABORTED
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 1), // XDP_DROP
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 2), // XDP_PASS
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
    ];
    let prog = xdpqual::program::Program {
        name: "size_classes".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines: Default::default(),
        functions: vec![],
    };
    xdpqual::program::Object {
        path: "size_classes.o".into(),
        programs: vec![prog],
        maps: vec![],
        license: "GPL".into(),
        btf: Default::default(),
    }
}

#[test]
fn aborted_is_told_from_drop_where_fexit_can_attach() {
    skip_unless_able!();
    let pair = VethPair::new("abrt");
    let dir = std::env::temp_dir().join(format!("xq-live-abrt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("sizes.pcap");
    let frame = |len: usize| {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    };
    write_pcap(&pcap, &[frame(60), frame(100), frame(300), frame(70), frame(250), frame(150)]);
    let obj = size_classes();
    for mode in [XdpMode::Drv, XdpMode::Skb] {
        let mut o = opts(&pair, mode);
        o.max_packets = None;
        let report =
            live::run(&obj, &obj.programs[0], std::slice::from_ref(&pcap), &o).expect("run");
        assert!(report.agrees(), "{}", serde_json::to_string_pretty(&report).unwrap());
        assert_eq!((report.sent, report.agreed), (6, 6));
        assert_observation(&report);
        if report.observation_method == live::observe::Method::Fexit {
            // Worked out from the sizes: 60, 70 pass; 100, 150 drop; 250, 300 abort.
            let want: std::collections::BTreeMap<String, u64> =
                [("ABORTED", 2), ("DROP", 2), ("PASS", 2)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
            assert_eq!(report.actions, want, "{mode} mode");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn diff_takes_a_live_backend() {
    skip_unless_able!();
    // Both ends in one namespace, so `live:veth0` finds its peer; the
    // command runs inside it (`ip netns exec`).
    let pid = std::process::id();
    let ns = format!("xq-{pid}-diff");
    ip(&["netns", "add", &ns]).expect("netns");
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = ip(&["netns", "del", &self.0]);
        }
    }
    let _del = Del(ns.clone());
    ip(&[
        "-n",
        &ns,
        "link",
        "add",
        "veth0",
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
        "type",
        "veth",
        "peer",
        "name",
        "veth1",
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
    ])
    .expect("veth");
    for dev in ["veth0", "veth1"] {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "sh",
                "-c",
                &format!("echo 1 > /proc/sys/net/ipv6/conf/{dev}/disable_ipv6"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        ip(&["-n", &ns, "link", "set", dev, "mtu", "1500", "arp", "off", "up"]).expect("up");
    }
    let prog = root().join("corpus/build/reflector.v4.o");
    let cap = root().join("pcaps/mixed-2k.pcap");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            env!("CARGO_BIN_EXE_xdpqual"),
            "diff",
            "--backends",
            "vm,live:veth0:drv",
            "--json",
        ])
        .arg(&prog)
        .arg(&cap)
        .output()
        .expect("xdpqual diff");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text).expect("json");
    let backends: Vec<&str> =
        report["backends"].as_array().unwrap().iter().map(|b| b.as_str().unwrap_or("")).collect();
    assert_eq!(report["mismatch_count"], 0, "{text}");
    assert_eq!(report["live"][0]["backend"], "live:veth0:drv", "{text}");
    assert_eq!(report["live"][0]["peer"], "veth1", "{text}");
    assert!(report["live"][0]["sent"].as_u64().unwrap() > 1000, "{text}");
    let method = report["live"][0]["observation_method"].as_str().unwrap();
    assert_eq!(method == "fexit", live::probe::kernel_allows_tracing().is_ok(), "{text}");
    assert_eq!(backends.len(), 2, "{text}");
}
