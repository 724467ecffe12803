//! Issue 18 item 2, one output convention: every report-printing command
//! takes `--format` (the formats it can write; any other is a usage error,
//! exit 2) and `--output FILE` (the bytes stdout would get). The old flags
//! still work for one release, with a note on stderr.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-output-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (exit status, stdout bytes, stderr), run from the checkout's root with
/// stdin, stdout and stderr not terminals.
fn xdpqual(args: &[&str]) -> (i32, Vec<u8>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (o.status.code().unwrap_or(-1), o.stdout, String::from_utf8_lossy(&o.stderr).into())
}

const FW: &str = "corpus/build/firewall.v3.o";
const CAP: &str = "pcaps/firewall-2k.pcap";

/// The JSON document on stdout, checked to carry `schema` = `want`.
fn schema_of(stdout: &[u8], want: &str, what: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    assert_eq!(v["schema"], want, "{what}");
    v
}

/// Commands whose output does not depend on timing: `--output FILE` holds
/// exactly the bytes stdout got, in every format the command writes.
#[test]
fn output_file_holds_the_bytes_stdout_gets() {
    let dir = tempdir("same");
    let cases: [(&[&str], &[&str]); 3] = [
        (&["replay", FW, CAP], &["text", "json"]),
        (&["inspect", FW], &["text", "json"]),
        (&["offload-check", FW, "--no-host", "--no-estimate"], &["text", "json", "markdown"]),
    ];
    for (base, formats) in cases {
        for f in formats {
            let mut args: Vec<&str> = base.to_vec();
            args.extend(["--format", f]);
            let (code, stdout, err) = xdpqual(&args);
            assert!(code == 0 || code == 1, "{args:?}: exit {code}: {err}");
            assert!(!stdout.is_empty(), "{args:?}: nothing on stdout");
            let file = dir.join(format!("{}-{f}.out", base[0]));
            let fs = file.display().to_string();
            let mut with_file = args.clone();
            with_file.extend(["--output", &fs]);
            let (code2, stdout2, err2) = xdpqual(&with_file);
            assert_eq!(code2, code, "{with_file:?}: {err2}");
            assert!(stdout2.is_empty(), "{with_file:?} still printed on stdout");
            assert_eq!(std::fs::read(&file).unwrap(), stdout, "{with_file:?}");
        }
    }
}

#[test]
fn json_reports_parse_and_name_their_schema() {
    let (_, out, err) = xdpqual(&["replay", FW, CAP, "--format", "json"]);
    let v = schema_of(&out, "xdpqual.replay.summary/1", "replay");
    // firewall.v3 on firewall-2k: 2000 packets (pcaps/README.md).
    assert!(v.to_string().contains("2000"), "replay: {err}");
    let (_, out, _) = xdpqual(&["inspect", FW, "--format", "json"]);
    let v = schema_of(&out, "xdpqual.inspect/1", "inspect");
    assert_eq!(v["programs"][0]["name"], "xdp_firewall");
    let (code, out, err) =
        xdpqual(&["offload-check", FW, "--no-host", "--no-estimate", "--format", "json"]);
    assert!(code == 0 || code == 1, "{err}");
    let v = schema_of(&out, "xdpqual.offload-check/1", "offload-check");
    assert!(v["check"].is_object(), "{v}");
    // diff: whatever backends run here, the report is printed (exit 2 only
    // says the comparison is incomplete).
    let (code, out, err) = xdpqual(&["diff", FW, CAP, "--backends", "vm,rbpf", "--format", "json"]);
    assert!(code != 130, "{err}");
    let v = schema_of(&out, "xdpqual.diff/1", "diff");
    assert_eq!(v["packets"], 2000, "{err}");
    let dir = tempdir("bench");
    let d = dir.display().to_string();
    let bench = ["bench", FW, CAP, "--backends", "engine", "--rounds", "1", "--packets", "64"];
    let mut args = bench.to_vec();
    args.extend(["--out-dir", &d, "--format", "json"]);
    let (code, out, err) = xdpqual(&args);
    assert_eq!(code, 0, "{err}");
    let v = schema_of(&out, "xdpqual.bench/2", "bench");
    assert_eq!(v["packets"], 64);
    // The path of the result file goes to stderr, not into the document.
    assert!(err.contains("results: "), "{err}");
    let mut args = bench.to_vec();
    args.extend(["--out-dir", &d, "--format", "markdown"]);
    let (code, out, err) = xdpqual(&args);
    assert_eq!(code, 0, "{err}");
    let md = String::from_utf8(out).unwrap();
    assert!(md.contains("| backend | ns/pkt |") && md.contains("| engine-jit |"), "{md}");
}

/// A name from the object reaches markdown escaped: `xdp_firewall` keeps
/// its underscore only as `\_`.
#[test]
fn markdown_escapes_names_from_the_program() {
    let dir = tempdir("md");
    let d = dir.display().to_string();
    let (code, out, err) = xdpqual(&[
        "bench",
        FW,
        CAP,
        "--backends",
        "engine",
        "--rounds",
        "1",
        "--packets",
        "16",
        "--out-dir",
        &d,
        "--format",
        "md",
    ]);
    assert_eq!(code, 0, "{err}");
    let md = String::from_utf8(out).unwrap();
    assert!(md.contains("xdp\\_firewall") && !md.contains(" xdp_firewall"), "{md}");
}

#[test]
fn old_flags_still_work_with_a_note() {
    // replay --summary-json == replay --format json.
    let (c1, new, _) = xdpqual(&["replay", FW, CAP, "--format", "json"]);
    let (c2, old, err) = xdpqual(&["replay", FW, CAP, "--summary-json"]);
    assert_eq!((c1, &new), (c2, &old));
    assert!(err.contains("--summary-json is deprecated") && err.contains("--format json"), "{err}");
    // replay --json FILE == replay --packets-json FILE.
    let dir = tempdir("alias");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let (c1, _, e1) = xdpqual(&["replay", FW, CAP, "--packets-json", &a.display().to_string()]);
    let (c2, _, e2) = xdpqual(&["replay", FW, CAP, "--json", &b.display().to_string()]);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let lines = std::fs::read_to_string(&a).unwrap();
    assert_eq!(lines.lines().count(), 2000);
    assert_eq!(lines, std::fs::read_to_string(&b).unwrap());
    assert!(e2.contains("--json FILE is deprecated") && e2.contains("--packets-json"), "{e2}");
    // inspect --json, diff --json == --format json.
    let (_, new, _) = xdpqual(&["inspect", FW, "--format", "json"]);
    let (_, old, err) = xdpqual(&["inspect", FW, "--json"]);
    assert_eq!(new, old);
    assert!(err.contains("--json is deprecated"), "{err}");
    let (_, old, err) = xdpqual(&["diff", FW, CAP, "--backends", "vm,rbpf", "--json"]);
    schema_of(&old, "xdpqual.diff/1", "diff --json");
    assert!(err.contains("--json is deprecated"), "{err}");
    // offload-check's own --format md keeps working.
    let (_, out, _) =
        xdpqual(&["offload-check", FW, "--no-host", "--no-estimate", "--format", "md"]);
    let (_, out2, _) =
        xdpqual(&["offload-check", FW, "--no-host", "--no-estimate", "--format", "markdown"]);
    assert_eq!(out, out2);
    assert!(out.ends_with(b"\n"));
    // The aliases are hidden from --help.
    let (_, help, _) = xdpqual(&["replay", "--help"]);
    let help = String::from_utf8(help).unwrap();
    assert!(!help.contains("--summary-json") && help.contains("--format"), "{help}");
}

#[test]
fn a_format_a_command_cannot_write_is_a_usage_error() {
    for args in [
        &["replay", FW, CAP, "--format", "markdown"][..],
        &["diff", FW, CAP, "--format", "markdown"],
        &["inspect", FW, "--format", "markdown"],
        &["live", FW, CAP, "--format", "markdown"],
        &["matrix", FW, CAP, "--format", "markdown"],
        &["offload-check", FW, "--format", "yaml"],
    ] {
        let (code, out, err) = xdpqual(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(
            err.contains("invalid value") && err.contains("possible values"),
            "{args:?}: {err}"
        );
    }
    // An old alias and the new flag together are a contradiction.
    let (code, _, err) = xdpqual(&["inspect", FW, "--json", "--format", "text"]);
    assert_eq!(code, 2, "{err}");
}
