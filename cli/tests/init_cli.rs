//! `xdpqual init` on the shipped corpus objects copied into a scratch
//! directory: what it writes loads with qualify's parser and qualifies,
//! an existing file is kept without --force, and bad input is a
//! one-paragraph error with exit status 2. (The README walk-through with a
//! program of its own is tests/bring_your_own.rs.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xdpqual(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-init-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// reflector (one program, no maps) and encap (two programs, xdp/encap and
/// xdp/decap) with one capture, in subdirectories as a project might keep
/// them; a host object and a build directory that must be passed over.
fn project(tag: &str) -> PathBuf {
    let d = scratch(tag);
    for (from, to) in [
        ("corpus/build/reflector.v3.o", "bpf/reflector.o"),
        ("corpus/build/encap.v3.o", "bpf/encap.o"),
        ("pcaps/edges.pcap", "captures/edges.pcap"),
    ] {
        let to = d.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(from), to).unwrap();
    }
    // A host ELF object (x86-64 machine) is not a BPF program; target/ is
    // never searched (even a BPF object there).
    let mut host = std::fs::read(root().join("corpus/build/reflector.v3.o")).unwrap();
    host[18..20].copy_from_slice(&62u16.to_le_bytes());
    std::fs::write(d.join("bpf/host.o"), host).unwrap();
    std::fs::create_dir_all(d.join("target")).unwrap();
    std::fs::copy(root().join("corpus/build/vlan.v3.o"), d.join("target/vlan.o")).unwrap();
    d
}

#[test]
fn init_writes_a_config_qualify_runs_without_the_kernel() {
    let d = project("nokernel");
    let (code, stdout, stderr) = xdpqual(&["init", "--no-kernel"], &d);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("no expected verdicts written") && stdout.contains("--no-kernel"));
    let path = d.join("xdpqual.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = xdpqual::qualify::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // reflector, encap's two programs; not host.o, not target/vlan.o.
    let labels: Vec<String> = cfg.programs.iter().map(|p| p.label()).collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert!(labels.iter().any(|l| l.ends_with("bpf/encap.o:xdp/encap")), "{labels:?}");
    assert!(labels.iter().any(|l| l.ends_with("bpf/encap.o:xdp/decap")), "{labels:?}");
    assert!(labels.iter().any(|l| l.ends_with("bpf/reflector.o")), "{labels:?}");
    assert!(cfg.programs.iter().all(|p| p.expect.is_empty()), "{text}");
    assert_eq!(cfg.optional, vec!["host".to_string()], "{text}");
    // Every built-in profile, each with its reason in a comment.
    for p in &cfg.programs {
        assert_eq!(p.offload.len(), nic_model::Profile::builtin_names().len(), "{text}");
    }
    assert!(text.contains("RECORDED by\n# `xdpqual init`, not worked out"), "{text}");
    // The written file qualifies; the host cell is optional, so it skips
    // where the kernel cannot run and passes where it can.
    let (code, stdout, stderr) = xdpqual(&["qualify", "--quiet"], &d);
    assert_eq!(code, 0, "{stdout}{stderr}\n{text}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    // An existing file is kept without --force ...
    std::fs::write(&path, "# mine\n").unwrap();
    let (code, _, stderr) = xdpqual(&["init", "--no-kernel"], &d);
    assert_eq!(code, 2);
    assert!(stderr.contains("already exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    // ... and replaced with it.
    let (code, _, stderr) = xdpqual(&["init", "--no-kernel", "--force", "."], &d);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("[[program]]"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn init_records_kernel_verdicts_marked_as_recorded() {
    let kernel = match xdpqual::backends::host::HostBackend::open() {
        Ok(h) => h.kernel_release().to_string(),
        Err(e) => return xdpqual::util::skip(format_args!("init with the kernel: {e}")),
    };
    let d = project("kernel");
    let (code, stdout, stderr) = xdpqual(&["init"], &d);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let path = d.join("xdpqual.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("RECORDED from kernel {kernel}")), "{text}");
    assert!(stdout.contains("RECORDED from kernel") && stdout.contains("review them"), "{stdout}");
    let cfg = xdpqual::qualify::config::load(&path).unwrap();
    // corpus/expect/reflector.toml, worked out by its oracle, has edges.pcap
    // under config "default": what the kernel recorded must be that.
    let want = xdpqual::qualify::expect::load_corpus_file(
        &root().join("corpus/expect/reflector.toml"),
        Some("default"),
        None,
    )
    .unwrap();
    let (_, want) = want.into_iter().find(|(c, _)| c == "edges.pcap").unwrap();
    let refl = cfg.programs.iter().find(|p| p.label().ends_with("reflector.o")).unwrap();
    assert_eq!(refl.expect[&0].counts, want.counts, "{text}");
    assert!(cfg.optional.is_empty(), "the kernel ran: the host cell is not optional");
    // Recorded in a history of its own (results/ here): the first run is
    // the baseline, so nothing skips.
    let (code, stdout, stderr) = xdpqual(&["qualify", "--quiet"], &d);
    assert_eq!(code, 0, "{stdout}{stderr}\n{text}");
    assert!(stdout.contains(" 0 failed, 0 skipped"), "{stdout}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_input_is_one_paragraph_and_exit_2() {
    // Nothing to configure.
    let d = scratch("empty");
    let (code, stdout, stderr) = xdpqual(&["init"], &d);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("no BPF object") && stderr.contains("clang"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!d.join("xdpqual.toml").exists());

    // An object but no capture: says how to make one.
    std::fs::copy(root().join("corpus/build/reflector.v3.o"), d.join("r.o")).unwrap();
    let (code, _, stderr) = xdpqual(&["init"], &d);
    assert_eq!(code, 2);
    assert!(stderr.contains("no capture") && stderr.contains("gen-pcap"), "{stderr}");

    // A BPF ELF header on a file that is not an object.
    std::fs::copy(root().join("pcaps/edges.pcap"), d.join("c.pcap")).unwrap();
    let mut junk = std::fs::read(d.join("r.o")).unwrap();
    junk.truncate(64);
    std::fs::write(d.join("broken.o"), junk).unwrap();
    let (code, _, stderr) = xdpqual(&["init", "--no-kernel"], &d);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("broken.o"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!d.join("xdpqual.toml").exists());

    // Not a directory.
    let (code, _, stderr) = xdpqual(&["init", "c.pcap"], &d);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a directory"), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn help_has_examples_and_exit_statuses() {
    let (code, out, err) = xdpqual(&["init", "--help"], &root());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Examples:\n  xdpqual init"), "{out}");
    assert!(out.contains("Exit status:\n  0") && out.contains("\n  2  "), "{out}");
    for flag in ["--force", "--no-kernel", "[DIR]"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
}
