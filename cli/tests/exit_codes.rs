//! Every exit-status rule of issue 15 item 5, on the real binary:
//! `replay` fails on faults, `diff` fails when its comparison is
//! incomplete or interrupted, `qualify` fails when a configured cell could
//! not run unless the configuration marks it optional.
//!
//! The programs are built here from C with clang (SKIP without it); what
//! each does to a packet is worked out from its source below.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use xdpqual::capture::CaptureReader;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-exit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn xdpqual(args: &[&str]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_xdpqual")).current_dir(root()).args(args))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.stdin(Stdio::null()).output().expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn clang() -> Option<&'static str> {
    ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// No headers needed: the context struct is the uapi `struct xdp_md`.
const PRELUDE: &str = "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };\n\
char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n";

/// Reads 4 bytes at offset 4000 of the packet without a bounds check: the
/// kernel's verifier refuses it (packet access without a data_end check),
/// and in the engine every packet shorter than 4004 bytes faults.
const FAULTS: &str =
    "__attribute__((section(\"xdp\"), used)) int fault_every(struct xdp_md *ctx) {\n\
    return *(volatile unsigned int *)((char *)(long)ctx->data + 4000) ? 2 : 1;\n}\n";

/// About 100k loop iterations per packet: slow enough that a SIGINT sent
/// once the diff has started arrives long before 10,000 packets are done.
const SLOW: &str = "__attribute__((section(\"xdp\"), used)) int slow(struct xdp_md *ctx) {\n\
    volatile unsigned int n = 0;\n\
    #pragma clang loop unroll(disable)\n\
    for (unsigned int i = 0; i < 100000; i++) n += i;\n\
    return 2;\n}\n";

fn build(dir: &Path, name: &str, body: &str) -> Option<PathBuf> {
    let Some(cc) = clang() else {
        xdpqual::util::skip("needs clang-19 or clang to build the test programs");
        return None;
    };
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, format!("{PRELUDE}{body}")).unwrap();
    let obj = dir.join(format!("{name}.o"));
    let o = Command::new(cc)
        .args(["-O2", "-g", "--target=bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(obj)
}

fn firewall_capture() -> String {
    root().join("pcaps/firewall-2k.pcap").display().to_string()
}

/// Packets of the capture the engine runs (>= 14 bytes) and, of those,
/// the ones shorter than 4004 bytes, where FAULTS faults.
fn expected_faults(capture: &str) -> u64 {
    CaptureReader::open(capture)
        .unwrap()
        .map(|p| p.unwrap().data.len())
        .filter(|&n| (14..4004).contains(&n))
        .count() as u64
}

fn host_available() -> bool {
    match xdpqual::backends::host::HostBackend::open() {
        Ok(_) => true,
        Err(u) => {
            xdpqual::util::skip(format_args!("host kernel backend unavailable: {u}"));
            false
        }
    }
}

#[test]
fn every_subcommand_documents_its_exit_statuses() {
    for sub in ["replay", "diff", "qualify"] {
        let (code, out, err) = xdpqual(&[sub, "--help"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("Exit status:\n  0"), "{sub} --help:\n{out}");
    }
    let (_, out, _) = xdpqual(&["replay", "--help"]);
    assert!(out.contains("--allow-faults") && out.contains("1  a packet faulted"), "{out}");
    let (_, out, _) = xdpqual(&["diff", "--help"]);
    assert!(out.contains("130") && out.contains("fewer than two"), "{out}");
    let (_, out, _) = xdpqual(&["qualify", "--help"]);
    assert!(out.contains("`optional`"), "{out}");
}

#[test]
fn replay_fails_when_packets_fault_and_lists_the_reasons() {
    let dir = tempdir("replay");
    let Some(obj) = build(&dir, "faults", FAULTS) else { return };
    let obj = obj.display().to_string();
    let cap = firewall_capture();
    let n = expected_faults(&cap);
    assert!(n > 1000, "the capture should have many short frames, has {n}");
    let (code, out, err) = xdpqual(&["replay", &obj, &cap]);
    assert_eq!(code, 1, "{out}{err}");
    // One reason, with the count worked out from the capture's frame sizes.
    let line = out.lines().find(|l| l.trim_start().starts_with("faults:")).unwrap_or("");
    assert!(line.contains(&format!("faults: {n} \u{d7} ")), "{out}");
    assert!(line.contains("outside the packet") && line.contains("at insn"), "{line}");
    assert!(!line.contains(';'), "one cause, so one reason: {line}");
    assert!(err.contains(&format!("{n} packet(s) faulted")), "{err}");
    for interp in [&["--engine", "interp"][..], &[]] {
        let mut args = vec!["replay", obj.as_str(), cap.as_str(), "--allow-faults"];
        args.extend_from_slice(interp);
        let (code, out, err) = xdpqual(&args);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("faults: {n} \u{d7} ")), "{out}");
    }
    // A program that faults on nothing still exits 0.
    let fw = root().join("corpus/build/firewall.v3.o").display().to_string();
    let (code, out, err) = xdpqual(&["replay", &fw, &cap]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("faults:"), "{out}");
}

/// A pcapng with one good Ethernet frame and then a block cut short.
fn truncated_pcapng(path: &Path) {
    let mut b = Vec::new();
    let block = |b: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        b.extend(kind.to_le_bytes());
        b.extend(len.to_le_bytes());
        b.extend(body);
        b.extend(len.to_le_bytes());
    };
    // Section header: byte-order magic, version 1.0, unknown section length.
    let mut shb = Vec::new();
    shb.extend(0x1A2B_3C4Du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut b, 0x0A0D_0D0A, &shb);
    // Interface: LINKTYPE_ETHERNET, no snaplen limit.
    let mut idb = Vec::new();
    idb.extend(1u16.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(0u32.to_le_bytes());
    block(&mut b, 1, &idb);
    // One enhanced packet block with a 60-byte IPv4 frame.
    let mut frame = vec![0u8; 60];
    frame[12] = 0x08;
    frame[14] = 0x45;
    let mut epb = Vec::new();
    for v in [0u32, 0, 1000, 60, 60] {
        epb.extend(v.to_le_bytes());
    }
    epb.extend(&frame);
    block(&mut b, 6, &epb);
    // The next block claims 92 bytes and stops after 20.
    b.extend(6u32.to_le_bytes());
    b.extend(92u32.to_le_bytes());
    b.extend([0u8; 12]);
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_capture_error_fails_replay_and_diff() {
    let dir = tempdir("capture");
    let bad = dir.join("cut.pcapng");
    truncated_pcapng(&bad);
    let bad = bad.display().to_string();
    let fw = root().join("corpus/build/firewall.v3.o").display().to_string();
    let (code, out, err) = xdpqual(&["replay", &fw, &bad]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("error:") && out.contains("cut.pcapng"), "{out}");
    // vm alone is enough to see the capture rule (and needs no kernel):
    // the report must say why, and must not pass.
    let (code, out, err) = xdpqual(&["diff", &fw, &bad, "--backends", "vm"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("incomplete diff: capture error:") && err.contains("cut.pcapng"), "{err}");
    // The one good frame was compared before the error.
    assert!(out.contains("1 packets:"), "{out}");
    // A file that is not a capture at all.
    let junk = dir.join("junk.pcapng");
    std::fs::write(&junk, [0x0a, 0x0d, 0x0d, 0x0a, 1, 2]).unwrap();
    let (code, out, err) = xdpqual(&["diff", &fw, junk.to_str().unwrap(), "--backends", "vm"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains(" agree,"), "{out}");
}

#[test]
fn diff_fails_when_fewer_than_two_backends_ran() {
    let fw = root().join("corpus/build/firewall.v3.o").display().to_string();
    let cap = firewall_capture();
    let (code, out, err) = xdpqual(&["diff", &fw, &cap, "--backends", "vm"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("only vm ran: there is nothing to compare the engine with"), "{err}");
    let dir = tempdir("verifier");
    let Some(obj) = build(&dir, "faults", FAULTS) else { return };
    if !host_available() {
        return;
    }
    // The host verifier refuses the unchecked packet read: host does not
    // run, so vm is compared with nothing.
    let (code, out, err) = xdpqual(&["diff", obj.to_str().unwrap(), &cap, "--backends", "vm,host"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("skipped host: rejected by verifier"), "{out}");
    assert!(err.contains("backend host was named but could not run"), "{err}");
    assert!(err.contains("only vm ran"), "{err}");
}

#[test]
fn diff_fails_when_a_named_backend_is_skipped_but_not_a_default_one() {
    if !host_available() {
        return;
    }
    let fw = root().join("corpus/build/firewall.v3.o").display().to_string();
    let cap = firewall_capture();
    // rbpf cannot run firewall (lddw of a map fd), which the default set
    // tolerates and lists ...
    let (code, out, err) = xdpqual(&["diff", &fw, &cap]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("skipped rbpf: ") && out.contains("2000 packets: 2000 agree"), "{out}");
    // ... but not when the user asked for rbpf by name.
    let (code, out, err) = xdpqual(&["diff", &fw, &cap, "--backends", "vm,rbpf,host"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("backend rbpf was named but could not run"), "{err}");
}

#[test]
fn sigint_stops_a_diff_with_130_and_no_success_line() {
    let dir = tempdir("sigint");
    let Some(obj) = build(&dir, "slow", SLOW) else { return };
    let cap = firewall_capture();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .arg("diff")
        .arg(&obj)
        .args([&cap, &cap, &cap, &cap, &cap])
        .args(["--backends", "vm"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first stderr line is printed once the handler is installed.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("xdpqual diff: running slow"), "{first}");
    // The pid of a child we spawned and have not reaped.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{out}{rest}");
    assert!(out.contains("INTERRUPTED after"), "{out}");
    assert!(!out.lines().any(|l| l.contains("packets:") && l.contains(" agree")), "{out}");
    assert!(rest.contains("diff interrupted"), "{rest}");
}

fn qualify_config(dir: &Path, extra: &str) -> PathBuf {
    let r = root();
    let p = dir.join("q.toml");
    std::fs::write(
        &p,
        format!(
            "captures = [\"{}\"]\ncells = [\"vm\", \"host\"]\n{extra}\n[[program]]\nobject = \"{}\"\n",
            r.join("pcaps/firewall-2k.pcap").display(),
            r.join("corpus/build/firewall.v3.o").display()
        ),
    )
    .unwrap();
    p
}

/// Runs qualify with every capability dropped: the kernel refuses bpf()
/// then, as for an unprivileged user.
fn qualify_unprivileged(dir: &Path, cfg: &Path) -> Option<(i32, String, String)> {
    if !Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success()) {
        xdpqual::util::skip("needs setpriv (util-linux) to drop capabilities");
        return None;
    }
    Some(run(Command::new("setpriv")
        .args(["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["qualify", "--quiet", "--no-history", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(dir.join("out"))))
}

#[test]
fn qualify_fails_when_a_configured_cell_cannot_run_unless_optional() {
    let dir = tempdir("qualify");
    let cfg = qualify_config(&dir, "");
    let Some((code, out, err)) = qualify_unprivileged(&dir, &cfg) else { return };
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL") && out.contains("cell 'host' could not run"), "{out}");
    let cfg = qualify_config(&dir, "optional = [\"host\"]");
    let Some((code, out, err)) = qualify_unprivileged(&dir, &cfg) else { return };
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed, 1 skipped"), "{out}");
    // Both at once is a configuration error.
    let cfg = qualify_config(&dir, "optional = [\"host\"]\nrequired = [\"host\"]");
    let (code, _, err) = xdpqual(&["qualify", "--no-history", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("both `required` and `optional`"), "{err}");
}

/// `xdpqual inspect ... | head -1`: the reader has closed the pipe. The
/// process ends as a Unix filter killed by SIGPIPE does (status 141 = 128 +
/// 13) and prints no panic, whatever command was writing. The pipe's read
/// end is closed before the child starts, so its first write fails however
/// little it prints.
#[test]
fn closed_stdout_ends_quietly_with_141() {
    for args in [
        &["inspect", "corpus/build/firewall.v3.o"][..],
        &["offload-check", "corpus/build/firewall.v3.o", "--format", "markdown"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .current_dir(root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
}
