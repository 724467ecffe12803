//! Issue 15 items 4 and 7 on the real binary: inputs that are not regular
//! files are refused at once; hostile names (control characters, CR, ANSI
//! escapes, Markdown structure) reach neither the terminal nor junit.xml,
//! summary.md or the dashboard raw; a run killed during its write is cleaned
//! up by the next one; write errors name the path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-hostile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn xdpqual<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// No raw control character other than LF (and tab) in terminal output.
fn assert_no_controls(what: &str, s: &str) {
    let bad: Vec<char> = s.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(bad.is_empty(), "{what} carries raw control characters {bad:?}:\n{s}");
}

/// firewall.v3.o with its program's name `xdp_firewall` patched to
/// `xdp_fire\x01all` (same length, every occurrence: symbol table and BTF),
/// saved under a file name holding an ANSI clear-screen sequence.
fn hostile_object(dir: &Path) -> PathBuf {
    let d = std::fs::read(root().join("corpus/build/firewall.v3.o")).unwrap();
    let from = b"xdp_firewall";
    let to = b"xdp_fire\x01all";
    let mut out = Vec::with_capacity(d.len());
    let mut i = 0;
    let mut n = 0;
    while i < d.len() {
        if d[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            n += 1;
        } else {
            out.push(d[i]);
            i += 1;
        }
    }
    assert!(n >= 2, "expected the name in the symbol table and BTF, found {n}");
    let p = dir.join("evil\x1b[2J.o");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn non_regular_inputs_are_refused_at_once() {
    // /dev/zero would otherwise be read until memory runs out.
    let (code, _, err) = xdpqual(&["inspect", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero: it is a character device, not a regular file"), "{err}");
    let (code, _, err) = xdpqual(&["inspect", "/tmp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("it is a directory"), "{err}");
    // A FIFO nobody writes to: a blocking open would hang here for ever.
    let dir = tempdir("fifo");
    let fifo = dir.join("cap.pcap");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fw = root().join("corpus/build/firewall.v3.o");
    for args in [
        vec!["inspect".as_ref(), fifo.as_os_str()],
        vec!["replay".as_ref(), fw.as_os_str(), fifo.as_os_str()],
        vec![
            "diff".as_ref(),
            fw.as_os_str(),
            fifo.as_os_str(),
            "--backends".as_ref(),
            "vm".as_ref(),
        ],
    ] {
        let (code, out, err) = xdpqual(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(format!("{out}{err}").contains("it is a FIFO (named pipe)"), "{out}{err}");
    }
    // --map files and the configuration get the same check.
    let (code, _, err) = xdpqual(&[
        "replay".as_ref(),
        fw.as_os_str(),
        root().join("pcaps/firewall-2k.pcap").as_os_str(),
        "--map".as_ref(),
        format!("blocked_ports={}", fifo.display()).as_ref(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    let (code, _, err) = xdpqual(&[
        "qualify".as_ref(),
        "--no-history".as_ref(),
        "--config".as_ref(),
        fifo.as_os_str(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FIFO"), "{err}");
}

#[test]
fn oversized_objects_are_refused_before_reading() {
    // A sparse 65 MiB file: above the 64 MiB object cap, costs no disk.
    let dir = tempdir("big");
    let p = dir.join("big.o");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(65 << 20).unwrap();
    let (code, _, err) = xdpqual(&["inspect".as_ref(), p.as_os_str()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("it is {} bytes", 65u64 << 20)) && err.contains("64 MiB"),
        "{err}"
    );
}

#[test]
fn hostile_names_never_reach_the_terminal_raw() {
    let dir = tempdir("term");
    let obj = hostile_object(&dir);
    let cap = root().join("pcaps/firewall-2k.pcap");
    let (code, out, err) = xdpqual(&["inspect".as_ref(), obj.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert_no_controls("inspect", &out);
    assert!(out.contains("evil\\x1b[2J.o") && out.contains("xdp_fire\\x01all"), "{out}");
    let (code, out, err) = xdpqual(&["replay".as_ref(), obj.as_os_str(), cap.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert_no_controls("replay", &out);
    assert!(out.contains("through xdp_fire\\x01all (") && out.contains("evil\\x1b[2J.o"), "{out}");
    let (_, out, err) = xdpqual(&[
        "diff".as_ref(),
        obj.as_os_str(),
        cap.as_os_str(),
        "--backends".as_ref(),
        "vm".as_ref(),
    ]);
    assert_no_controls("diff", &format!("{out}{err}"));
    assert!(out.contains("diff of xdp_fire\\x01all"), "{out}");
    // Errors too: a missing file whose name clears the screen.
    let missing = dir.join("gone\x1b[2J\r.o");
    let (code, _, err) = xdpqual(&["inspect".as_ref(), missing.as_os_str()]);
    assert_eq!(code, 2);
    assert_no_controls("error", &err);
    assert!(err.contains("gone\\x1b[2J\\x0d.o"), "{err}");
}

/// Builds a program from a C file whose name holds CR, LF and a Markdown
/// heading: BTF line info carries the name into fault messages.
fn faulting_program(dir: &Path) -> Option<PathBuf> {
    let cc = ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    let Some(cc) = cc else {
        xdpqual::util::skip("needs clang to build the hostile program");
        return None;
    };
    let src_dir = dir.join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    let src = src_dir.join("x\r\n# heading | `y` <b>.c");
    std::fs::write(
        &src,
        "struct xdp_md { unsigned int data, data_end; };\n\
         char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n\
         __attribute__((section(\"xdp\"), used)) int f(struct xdp_md *ctx) {\n\
         return *(volatile unsigned int *)((char *)(long)ctx->data + 4000) ? 2 : 1;\n}\n",
    )
    .unwrap();
    let obj = dir.join("fault\x01\x1b[2J.o");
    let o = Command::new(cc)
        .current_dir(&src_dir)
        .args(["-O2", "-g", "--target=bpf", "-c"])
        .arg(src.file_name().unwrap())
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(obj)
}

fn toml_str(p: &Path) -> String {
    let mut s = String::from("\"");
    for c in p.to_str().unwrap().chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c)
            }
            c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Every table row of summary.md has exactly the cells of its table's
/// header (`|` that no backslash escapes), and no heading but ours exists.
fn check_markdown(md: &str) {
    assert!(!md.contains('\r') && !md.chars().any(|c| c.is_control() && c != '\n'), "{md:?}");
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
    for h in &headings {
        assert!(
            h.starts_with("## xdpqual") || *h == "### Skipped" || *h == "### Checks by program",
            "injected heading {h:?}"
        );
    }
    let bars = |r: &str| {
        r.char_indices()
            .filter(|(i, c)| *c == '|' && (*i == 0 || r.as_bytes()[i - 1] != b'\\'))
            .count()
    };
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert!(rows.len() >= 3, "{md}");
    // One table: its header row sets the count.
    let want = bars(rows[0]);
    assert!(want >= 3, "{md}");
    for r in rows {
        assert_eq!(bars(r), want, "row {r:?}");
    }
}

#[test]
fn hostile_names_in_junit_summary_and_dashboard() {
    let dir = tempdir("reports");
    let Some(obj) = faulting_program(&dir) else { return };
    let evil = hostile_object(&dir);
    let cap = dir.join("cap\r\n# heading | `x` *y*.pcap");
    std::fs::copy(root().join("pcaps/firewall-2k.pcap"), &cap).unwrap();
    let cfg = dir.join("q.toml");
    std::fs::write(
        &cfg,
        format!(
            "captures = [{}]\ncells = [\"vm\"]\n[[program]]\nobject = {}\n[[program]]\nobject = {}\n",
            toml_str(&cap),
            toml_str(&obj),
            toml_str(&evil)
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let history = dir.join("h.sqlite");
    let (code, out, err) = xdpqual(&[
        "qualify".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        "--history".as_ref(),
        history.as_os_str(),
    ]);
    // The faulting program fails its replay check (every packet faults).
    assert_eq!(code, 1, "{out}{err}");
    assert_no_controls("qualify", &format!("{out}{err}"));
    assert!(out.contains("faults: "), "{out}");
    let run = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("junit.xml").is_file())
        .expect("a run directory");
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2, "{junit}");
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("a failure");
    // What the parser reads back: the CR/LF of the file name survive as
    // themselves in attributes (character references), the forbidden
    // \x01 and ESC as visible escapes.
    let msg = failure.attribute("message").unwrap();
    assert!(msg.contains("x\r\n# heading | `y` <b>.c"), "{msg:?}");
    assert!(cases
        .iter()
        .any(|c| c.attribute("classname").unwrap().contains("fault\\x01\\x1b[2J.o")));
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    check_markdown(&md);
    assert!(md.contains("cap\\\\r\\\\n\\# heading \\| \\`x\\` \\*y\\*.pcap"), "{md}");
    // The dashboard from the same history.
    let dash = dir.join("dash");
    let (code, _, err) = xdpqual(&[
        "dashboard".as_ref(),
        "--history".as_ref(),
        history.as_os_str(),
        "--out".as_ref(),
        dash.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(dash.join("index.html")).unwrap();
    assert!(!html.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "raw control in HTML");
    assert!(!html.contains("<b>.c"), "markup from a file name reached the HTML");
}

#[test]
fn a_killed_run_is_cleaned_up_by_the_next() {
    let dir = tempdir("killed");
    let r = root();
    let cfg = dir.join("q.toml");
    std::fs::write(
        &cfg,
        format!(
            "captures = [\"{}\"]\ncells = [\"vm\"]\n[[program]]\nobject = \"{}\"\n",
            r.join("pcaps/firewall-2k.pcap").display(),
            r.join("corpus/build/firewall.v3.o").display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let history = dir.join("h.sqlite");
    let qualify = || {
        xdpqual(&[
            "qualify".as_ref(),
            "--quiet".as_ref(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--history".as_ref(),
            history.as_os_str(),
        ])
    };
    let (code, o, e) = qualify();
    assert_eq!(code, 0, "{o}{e}");
    assert!(!e.contains("cleaned up"), "{e}");
    let runs = || -> Vec<String> {
        let h = xdpqual::history::History::open(&history).unwrap();
        h.runs().unwrap().into_iter().map(|r| r.id).collect()
    };
    let first = runs();
    assert_eq!(first.len(), 1);
    let id = &first[0];
    // A run killed after its history commit, before its rename: the
    // writer's pid (the second half of the run id) is gone.
    let pid = id.rsplit('-').next().unwrap();
    std::fs::rename(out.join(id), out.join(format!(".tmp-{pid}-{id}"))).unwrap();
    // A run killed while writing (pid 4194304 is above any pid_max): a
    // partial directory, unknown to the history, and a stray temp file.
    let dead = 4_194_304u32;
    let partial = out.join(format!(".tmp-{dead}-1-{dead}"));
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("report.json"), "{\"schema\": \"xdpq").unwrap();
    std::fs::write(out.join(format!(".tmp-{dead}-stray")), "x").unwrap();
    std::fs::write(out.join(format!(".report.json.tmp.{dead}")), "x").unwrap();
    let (code, o, e) = qualify();
    assert_eq!(code, 0, "{o}{e}");
    let line: Vec<&str> =
        e.lines().filter(|l| l.contains("cleaned up after a killed run")).collect();
    assert_eq!(line.len(), 1, "one line says what was cleaned: {e}");
    assert!(
        line[0].contains(&format!(
            "removed .report.json.tmp.{dead}, .tmp-{dead}-1-{dead}, .tmp-{dead}-stray"
        )),
        "{e}"
    );
    assert!(line[0].contains(&format!("completed {id}")), "{e}");
    // Nothing temporary is left; every run in the history has its complete
    // directory and every directory is in the history.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
    let ids = runs();
    assert_eq!(ids.len(), 2);
    let mut dirs: Vec<&String> = names.iter().filter(|n| n.as_str() != "build").collect();
    dirs.sort();
    let mut want: Vec<&String> = ids.iter().collect();
    want.sort();
    assert_eq!(dirs, want);
    for i in &ids {
        for f in ["report.json", "junit.xml", "summary.md"] {
            assert!(out.join(i).join(f).is_file(), "{i}/{f}");
        }
    }
}

#[test]
fn write_errors_name_the_path() {
    let dir = tempdir("writes");
    let r = root();
    let fw = r.join("corpus/build/firewall.v3.o");
    let cap = r.join("pcaps/firewall-2k.pcap");
    // Disk full: /dev/full fails every write with ENOSPC.
    let (code, _, err) = xdpqual(&[
        "replay".as_ref(),
        fw.as_os_str(),
        cap.as_os_str(),
        "--json".as_ref(),
        "/dev/full".as_ref(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/full") && err.contains("No space left on device"), "{err}");
    // The map dump is written atomically; it must not replace a device.
    let (code, _, err) = xdpqual(&[
        "replay".as_ref(),
        fw.as_os_str(),
        cap.as_os_str(),
        "--dump-maps".as_ref(),
        "/dev/full".as_ref(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/full") && err.contains("not a regular file"), "{err}");
    // So is a generated capture (written to a temporary file, renamed).
    let (code, _, err) =
        xdpqual(&["gen-pcap", "--profile", "mixed", "--packets", "3", "-o", "/dev/full"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/full") && err.contains("not a regular file"), "{err}");
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
    }
    // The dashboard into a directory that cannot be created.
    let (code, _, err) = xdpqual(&[
        "dashboard".as_ref(),
        "--history".as_ref(),
        dir.join("h.sqlite").as_os_str(),
        "--out".as_ref(),
        "/dev/full/dash".as_ref(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/full/dash"), "{err}");
    // A results directory that is a file (root ignores permission bits, so
    // a read-only directory would not fail here).
    let file = dir.join("results-is-a-file");
    std::fs::write(&file, "").unwrap();
    let cfg = dir.join("q.toml");
    std::fs::write(
        &cfg,
        format!(
            "captures = [\"{}\"]\ncells = [\"vm\"]\n[[program]]\nobject = \"{}\"\n",
            cap.display(),
            fw.display()
        ),
    )
    .unwrap();
    let (code, _, err) = xdpqual(&[
        "qualify".as_ref(),
        "--no-history".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--out".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
}
