//! The live backend on veth pairs this test builds: two network namespaces
//! `xq-<pid>-<tag>-a/b` with `veth0` in one and its peer `veth1` in the
//! other, removed by a Drop guard (also on panic), with IPv6 left on. All
//! traffic stays inside them (and inside the namespaces `--isolate` builds).
//! Without `ip` or CAP_NET_ADMIN/CAP_NET_RAW/CAP_SYS_ADMIN each test prints
//! `SKIP: <reason>` and returns.
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
        // A plain pair: IPv6 left on, ARP on. The kernel's own IPv6 chatter
        // (DAD, MLD reports, router solicitations) reaches the program; the
        // live backend must tell it from the frames it sends.
        for (ns, dev) in [(&p.a, "veth0"), (&p.b, "veth1")] {
            ip(&["-n", ns, "link", "set", dev, "mtu", "1500", "up"]).expect("link up");
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

/// Whether IPv6 is enabled on `dev` in namespace `ns`.
fn ipv6_on(ns: &str, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")])
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
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
    let (mut rejected, mut foreign_in, mut foreign_out, mut total_agreed, mut total_sent) =
        (0, 0, 0, 0, 0);
    let mut places = std::collections::BTreeSet::new();
    for path in &objects {
        let obj = load_object(path).expect("corpus object loads");
        for prog in &obj.programs {
            let report = match live::run(&obj, prog, &captures(), &opts(&pair, mode)) {
                Ok(r) => r,
                // The host kernel's verifier refusing a program is not a
                // live result; said visibly, not counted as a run.
                Err(e @ LiveError::Rejected { .. }) => {
                    xdpqual::util::skip(format_args!(
                        "{} {} in {mode} mode: {e}",
                        path.display(),
                        prog.name
                    ));
                    rejected += 1;
                    continue;
                }
                Err(e) => panic!("{} {}: {e}", path.display(), prog.name),
            };
            xdpqual::util::count(format_args!(
                "live {mode} {} {}: sent {}, not sent {}, agree {}, nondet {}, late {}, {:?}, foreign in {} {:?}, foreign out {} {:?}, {:.0} pps",
                path.file_name().unwrap().to_string_lossy(),
                prog.name,
                report.sent,
                report.not_sent,
                report.tally.agreed,
                report.tally.nondeterministic,
                report.late_arrivals,
                report.counts,
                report.foreign.into_iface,
                report.foreign.into_iface_protocols,
                report.foreign.from_iface,
                report.foreign.from_iface_protocols,
                report.packets_per_s
            ));
            // Foreign frames are reported, not compared: every program run
            // is explained, the foreign runs are the foreign frames that
            // entered, and each is named in the notes by protocol.
            assert_eq!(
                report.foreign.unexplained_runs,
                0,
                "{}",
                serde_json::to_string_pretty(&report).unwrap()
            );
            assert_eq!(report.foreign_runs, report.foreign.into_iface);
            assert_eq!(report.unattributed, 0);
            if report.foreign.into_iface > 0 {
                assert!(
                    report
                        .notes
                        .iter()
                        .any(|n| n
                            .starts_with(&format!("{} foreign frame", report.foreign.into_iface))),
                    "{:?}",
                    report.notes
                );
            }
            foreign_in += report.foreign.into_iface;
            foreign_out += report.foreign.from_iface;
            total_agreed += report.tally.agreed;
            total_sent += report.sent;
            assert!(
                report.agrees(),
                "{} {} in {mode} mode disagrees with the engine:\n{}",
                path.display(),
                prog.name,
                serde_json::to_string_pretty(&report).unwrap()
            );
            assert_eq!(report.sent, report.tally.agreed + report.tally.nondeterministic);
            assert_eq!(report.sent + report.not_sent, report.packets);
            assert!(report.sent >= 100, "most of the 120 frames fit the MTU");
            assert_observation(&report);
            places.extend(report.counts.keys().cloned());
            runs += 1;
        }
    }
    xdpqual::util::count(format_args!(
        "live {mode} corpus with IPv6 on: {runs} programs agree ({total_agreed} of {total_sent} frames sent agree, the rest nondeterministic), {rejected} refused by the kernel's verifier, {foreign_in} foreign frames in, {foreign_out} out"
    ));
    // Every program of every object was tried; the only ones not run are
    // those this kernel's verifier refuses to load at all (the host backend
    // refuses them the same way), each reported by a SKIP line above.
    assert!(
        runs + rejected >= 18,
        "every program of every object ran ({runs} + {rejected} refused)"
    );
    assert!(runs >= 17, "only {runs} programs could run");
    // IPv6 is on, so the kernel's own chatter (MLD reports at least) must
    // have crossed the pair during the runs; otherwise this test did not
    // test what it says.
    if ipv6_on(&pair.a, "veth0") {
        assert!(
            foreign_in + foreign_out > 0,
            "no foreign frame was seen on a plain veth pair with IPv6 on"
        );
    }
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
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
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
        assert_eq!((report.sent, report.tally.agreed), (6, 6));
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

/// Sends `frames` from a packet socket on `dev` in namespace `ns`, as
/// another program on the peer would (traffic the live backend did not send).
fn inject(ns: &str, dev: &str, frames: &[Vec<u8>], cpu: usize) {
    use xdpqual_kernel::net::{if_index, in_netns, packet_send, packet_socket, Tap};
    xdpqual_kernel::cpu::pin_to_cpu(cpu).expect("pin the injecting thread");
    // The socket is made in the peer's namespace and keeps it for life,
    // so this (pinned) thread sends from there.
    let netns = std::path::PathBuf::from(format!("/run/netns/{ns}"));
    let (ifindex, fd) = in_netns(Some(&netns), || {
        let ifindex = if_index(dev).unwrap_or_else(|e| panic!("{dev} not found: {e}"));
        (ifindex, packet_socket(ifindex, Tap::Send).expect("packet socket"))
    })
    .expect("entering the peer's namespace");
    for frame in frames {
        packet_send(&fd, ifindex, frame).expect("sendto");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn foreign_frames_are_reported_not_compared() {
    skip_unless_able!();
    let pair = VethPair::new("frgn");
    // 30 frames of an experimental ethertype (IEEE 802 local experimental
    // 0x88b5, which nothing else sends) from the peer while the run goes on,
    // after the program is attached. `counters` passes them and counts
    // them in its maps: the engine must be given them too for its maps to
    // match the kernel's.
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x42, 0x88, 0xb5]);
    frame.resize(60, 0xab);
    let frames = vec![frame; 30];
    let obj = load_object(&root().join("corpus/build/counters.v4.o")).unwrap();
    let ncpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // Sent from CPU 0, the frames run the program on CPU 0, where the live
    // backend runs its own (and where the engine counts them): the per-CPU
    // maps match exactly. Sent from another CPU, they run there, which no
    // tool can see from user space: the maps are then reported as not
    // compared exactly, and that is not a mismatch.
    let cases: Vec<(XdpMode, usize)> = [XdpMode::Drv, XdpMode::Skb]
        .into_iter()
        .flat_map(|m| (0..ncpus.min(2)).map(move |c| (m, c)))
        .collect();
    for (mode, cpu) in cases {
        let ns_b = pair.b.clone();
        let iface = pair.iface();
        let frames = frames.clone();
        let injector = std::thread::spawn(move || {
            // Wait (bounded) for the program to be attached.
            for _ in 0..500 {
                if Interface::resolve(&iface).map(|i| !i.xdp.is_empty()).unwrap_or(false) {
                    inject(&ns_b, "veth1", &frames, cpu);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            false
        });
        let mut o = opts(&pair, mode);
        o.max_packets = None;
        // The captures four times over: the run must outlast the injection
        // by far even on a loaded machine (one CI run saw only 20 of the 30
        // when the run was just the two captures).
        let caps: Vec<PathBuf> = captures().into_iter().cycle().take(8).collect();
        let report = live::run(&obj, &obj.programs[0], &caps, &o).expect("run");
        assert!(injector.join().unwrap(), "the program was never seen attached");
        let json = serde_json::to_string_pretty(&report).unwrap();
        // Every frame of ours agrees; the foreign ones are counted apart.
        assert!(report.agrees(), "{json}");
        assert_eq!(report.sent, report.tally.agreed + report.tally.nondeterministic, "{json}");
        assert_eq!(report.foreign.unexplained_runs, 0, "{json}");
        // All 30 were sent after the attach and before the run ended
        // (the run lasts far longer than 30 × 2 ms).
        assert_eq!(
            report.foreign.into_iface_protocols.get("ethertype 0x88b5"),
            Some(&30),
            "{json}"
        );
        assert!(
            report.notes.iter().any(|n| n.contains("30 × ethertype 0x88b5")),
            "{:?}",
            report.notes
        );
        // Replayed through the engine, the maps match exactly when the
        // frames ran where the engine assumes; otherwise the difference is
        // stated as an inexact comparison, never as a map mismatch.
        assert!(report.map_mismatches.is_empty(), "{json}");
        if cpu == 0 && report.foreign.into_iface == 30 {
            assert_eq!(report.maps_inexact, None, "{json}");
        } else if cpu == 0 {
            // The kernel's own chatter entered too, on whatever CPU its
            // timer fired: exact or stated as inexact, never a mismatch.
            if let Some(why) = &report.maps_inexact {
                assert!(why.starts_with("maps not compared exactly: "), "{why}");
            }
        } else {
            let why = report.maps_inexact.as_deref().expect("per-CPU counts land on another CPU");
            assert!(
                why.starts_with("maps not compared exactly: ")
                    && why.ends_with("foreign frames ran the program"),
                "{why}"
            );
            assert!(
                report.map_differences_inexact.iter().any(|d| d.contains("proto_stats")),
                "{json}"
            );
        }
        xdpqual::util::count(format_args!(
            "live {mode}, foreign frames from CPU {cpu}: {} agree with {} foreign frames in ({:?}), {} out; maps: {}",
            report.tally.agreed,
            report.foreign.into_iface,
            report.foreign.into_iface_protocols,
            report.foreign.from_iface,
            report.maps_inexact.as_deref().unwrap_or("compared exactly, equal")
        ));
    }
}

/// Names of our namespaces and state files that mention `pid`.
fn leftovers_of(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["/run/netns", "/run/xdpqual"] {
        if let Ok(d) = std::fs::read_dir(dir) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("xdpqual-{pid}-"))
                    || name.starts_with(&format!("{pid}-"))
                {
                    v.push(format!("{dir}/{name}"));
                }
            }
        }
    }
    v
}

#[test]
fn isolate_leaves_nothing_behind() {
    skip_unless_able!();
    let cap = root().join("pcaps/mixed-2k.pcap");
    for mode in ["drv", "skb"] {
        let child = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .args(["live", "--json", "--mode", mode])
            .arg(root().join("corpus/build/reflector.v4.o"))
            .arg(&cap)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("xdpqual live");
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            report["iface"].as_str().unwrap(),
            format!("xq{pid}_0a (network namespace /run/netns/xdpqual-{pid}-0)")
        );
        assert!(report["sent"].as_u64().unwrap() > 1000, "{text}");
        assert_eq!(report["mismatch_count"], 0, "{text}");
        // IPv6 autoconfiguration is off in our namespace: no chatter at all.
        assert_eq!(report["foreign"]["into_iface"], 0, "{text}");
        assert_eq!(report["foreign"]["from_iface"], 0, "{text}");
        assert_eq!(leftovers_of(pid), Vec::<String>::new(), "left behind by {pid}");
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!("xq{pid}_")));
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("gave up waiting for {what}");
}

#[test]
fn sigkill_leftovers_are_removed_by_the_next_run() {
    skip_unless_able!();
    // A long run: the same capture many times over.
    let cap = root().join("pcaps/mixed-2k.pcap");
    let caps: Vec<&Path> = std::iter::repeat_n(cap.as_path(), 300).collect();
    let prog = root().join("corpus/build/reflector.v4.o");

    // 1. --isolate, killed: its namespace, veth pair and programs stay.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["live"])
        .arg(&prog)
        .args(&caps)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let ns = format!("xdpqual-{pid}-0");
    let ep = Endpoint::new(&format!("xq{pid}_0a"), Some(&ns));
    wait_until("the isolated run to attach", || {
        Interface::resolve(&ep).map(|i| !i.xdp.is_empty()).unwrap_or(false)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = leftovers_of(pid);
    assert!(left.iter().any(|l| l.ends_with(&ns)), "{left:?}");
    let shown = Command::new("ip").args(["-n", &ns, "-d", "link"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("prog/xdp"),
        "the program is still attached"
    );
    // The next run removes them.
    let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["live", "--max-packets", "5"])
        .arg(&prog)
        .arg(&cap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&netns.stdout).contains(&ns));

    // 2. A user-named interface, killed: the program stays attached to it,
    // recorded in a state file with the dead pid; the next run detaches it.
    let pair = VethPair::new("kill");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args([
            "live",
            "--iface",
            "veth0",
            "--netns",
            &pair.a,
            "--peer",
            "veth1",
            "--peer-netns",
            &pair.b,
            "--mode",
            "skb",
        ])
        .arg(&prog)
        .args(&caps)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the run to attach", || {
        Interface::resolve(&pair.iface()).map(|i| !i.xdp.is_empty()).unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(Interface::resolve(&pair.iface()).unwrap().xdp.len(), 1, "left attached");
    assert!(!leftovers_of(pid).is_empty(), "no state file recorded the attachment");
    let mut o = opts(&pair, XdpMode::Skb);
    o.max_packets = Some(10);
    let report = live::run(&obj_reflector(), &obj_reflector().programs[0], &captures(), &o)
        .expect("the next run finds the interface free again");
    assert!(report.agrees(), "{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(Interface::resolve(&pair.iface()).unwrap().xdp.is_empty());
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
    let shown =
        Command::new("ip").args(["-n", &pair.a, "-d", "link", "show", "veth0"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&shown.stdout).contains("prog/xdp"));
}

fn obj_reflector() -> xdpqual::program::Object {
    load_object(&root().join("corpus/build/reflector.v4.o")).unwrap()
}

/// Randomness carried through a map is classed as in `diff`
/// (tests/carried_nondeterminism.rs gives the program's rules): flows 1
/// and 2 draw a number on their first frame and write it into every later
/// frame they send back (XDP_TX); the engine and the kernel draw their own,
/// so those four frames differ only because of a number an earlier run
/// stored. Counted per frame: 4 agree (the two first frames and the two
/// 0xff frames, all XDP_PASS unchanged), 4 nondeterministic, 0 mismatches.
/// Classed by "did this run call a random helper" alone, the four would be
/// mismatches (their runs call none).
#[test]
fn randomness_carried_through_a_map_is_nondeterministic_on_a_live_interface() {
    skip_unless_able!();
    let dir = std::env::temp_dir().join(format!("xdpqual-live-carried-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    let flows = [1u8, 2, 1, 1, 0xff, 2, 1, 0xff];
    let frames = flows.iter().enumerate().map(|(i, &flow)| {
        let mut f = vec![0u8; 60];
        f[0] = flow;
        // Locally administered unicast source, IPv4 ethertype.
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x17]);
        f[12] = 0x08;
        (i as u64 * 1_000_000, f)
    });
    xdpqual::capture::write_pcap(&cap, xdpqual::capture::TsPrecision::Microsecond, frames).unwrap();
    let obj = load_object(&root().join("cli/tests/data/loader/carried_random.o")).unwrap();
    let pair = VethPair::new("carr");
    let mut o = opts(&pair, XdpMode::Drv);
    o.max_packets = None;
    let report = live::run(&obj, &obj.programs[0], std::slice::from_ref(&cap), &o).expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report.sent, 8, "{json}");
    assert_eq!(report.tally.agreed, 4, "{json}");
    assert_eq!(report.tally.nondeterministic, 4, "{json}");
    assert_eq!(report.tally.mismatch_count, 0, "{json}");
}
