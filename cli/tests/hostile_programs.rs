//! Every hostile program (corpus/hostile/*.c, built into corpus/build/hostile/)
//! through every command that runs a program, as CI would run a pull
//! request's object: `replay` (interpreter and JIT), `diff --backends vm`,
//! `bench` (every row), `offload-check` on every profile and `qualify`.
//!
//! Each command runs as its own process under `ulimit -v 4000000` (KiB) and
//! a 60 s limit, with address-space randomisation off (`setarch -R`), which
//! puts the process's heap, stacks and libraries at addresses we know. Each
//! must then:
//! - end by itself with exit status 0, 1 or 2: never a signal, never the time
//!   limit;
//! - print nothing, and write no report, that holds an address of its own
//!   process, in any of the forms a report uses (a hex number, a decimal
//!   number, or little- or big-endian bytes inside a hex dump);
//! - keep the terminal and the reports well-formed: no raw control character
//!   on stdout or stderr, no XML-forbidden character in junit.xml, and no
//!   Markdown structure injected into summary.md.
//!
//! The attacks are documented in each source file; this test does not need
//! to know them: it finds the objects, so a new attack is covered by adding
//! its source and rebuilding the corpus.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The memory limit of every command, in KiB (`ulimit -v`), from the issue.
const VMEM_KIB: u64 = 4_000_000;
/// The time limit of every command.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Frames in the test capture: byte 14 of frame i is i, the attack selector
/// of corpus/hostile/hostile.h, so every program's attacks all run.
const FRAMES: usize = 24;

/// Host address ranges of a process started with ASLR off on x86_64: the
/// PIE image and its brk heap start at 0x5555_5555_4000; mmap areas (thread
/// stacks, large allocations, libraries, JIT code) grow down from
/// 0x7fff_f7ff_f000 and the main stack sits just under 0x7fff_ffff_f000.
const HOST_RANGES: [(u64, u64); 2] =
    [(0x5555_5000_0000, 0x5600_0000_0000), (0x7f00_0000_0000, 0x8000_0000_0000)];

fn is_host_address(v: u64) -> bool {
    HOST_RANGES.iter().any(|&(lo, hi)| (lo..hi).contains(&v))
}

/// Every place in `text` that reads as a host address, in any form a report
/// uses, as short descriptions.
fn host_addresses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let run = &text[start..i];
        // A number on its own, hex or decimal. A run of decimal digits is
        // read as hex only after `0x` (how `{:#x}` prints): otherwise a
        // 12-digit decimal such as a nanosecond total in bench JSON
        // (558060084585) would read as the address 0x5580_6008_4585.
        let after_0x = start >= 2 && b[start - 2] == b'0' && matches!(b[start - 1], b'x' | b'X');
        let has_hex_letter = run.bytes().any(|c| c.is_ascii_alphabetic());
        if let Ok(v) = u64::from_str_radix(run.trim_start_matches('0'), 16) {
            if (after_0x || has_hex_letter) && (12..=16).contains(&run.len()) && is_host_address(v)
            {
                found.push(format!("hex number {run}"));
            }
        }
        // The digits after a float's decimal point (`12.93887405094188` in
        // bench JSON) are a fraction, not a number of their own.
        let fraction = start >= 2 && b[start - 1] == b'.' && b[start - 2].is_ascii_digit();
        if !fraction && run.bytes().all(|c| c.is_ascii_digit()) && (14..=15).contains(&run.len()) {
            if let Ok(v) = run.parse::<u64>() {
                if is_host_address(v) {
                    found.push(format!("decimal number {run}"));
                }
            }
        }
        // Bytes of a hex dump: every 8-byte window, in both byte orders.
        if run.len() >= 16 {
            for parity in 0..2 {
                let bytes: Vec<u8> = run.as_bytes()[parity..]
                    .chunks_exact(2)
                    .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                    .collect();
                for w in bytes.windows(8) {
                    let le = u64::from_le_bytes(w.try_into().unwrap());
                    let be = u64::from_be_bytes(w.try_into().unwrap());
                    if is_host_address(le) || is_host_address(be) {
                        found.push(format!("bytes {:02x?} in a hex dump", w));
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Control characters a terminal acts on: C0 except tab and newline, DEL,
/// and C1 (as UTF-8 code points U+0080..U+009F).
fn terminal_controls(text: &str) -> Vec<char> {
    let mut found: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Characters XML 1.0 forbids (its `Char` production): C0 controls other
/// than tab, LF and CR, and U+FFFE / U+FFFF.
fn xml_forbidden(text: &str) -> Vec<char> {
    let mut found: Vec<char> = text
        .chars()
        .filter(|&c| {
            ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{fffe}' | '\u{ffff}')
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A pcap (microsecond, Ethernet) of `FRAMES` 64-byte frames; byte 14 of
/// frame i is i. The rest is an Ethernet header of locally administered
/// addresses, ethertype IPv4, and zeros.
fn write_capture(path: &Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for i in 0..FRAMES {
        let mut frame = vec![0u8; 64];
        frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = i as u8;
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// What one command did.
struct Ran {
    label: String,
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

/// Runs xdpqual with `args` in `cwd` under the memory limit, with ASLR off,
/// killing it at the time limit.
fn run(label: String, cwd: &Path, args: &[String]) -> Ran {
    use std::os::unix::process::ExitStatusExt;
    let bin = env!("CARGO_BIN_EXE_xdpqual");
    let script = format!("ulimit -v {VMEM_KIB} && exec setarch \"$(uname -m)\" -R \"$0\" \"$@\"");
    let out_dir = tempdir(&format!("out-{}", label.replace(['/', ' ', ':'], "_")));
    let (so, se) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .spawn()
        .expect("spawn sh");
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > TIME_LIMIT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ran = Ran {
        label,
        code: status.code(),
        signal: status.signal(),
        timed_out,
        elapsed: start.elapsed(),
        stdout: read(&so),
        stderr: read(&se),
    };
    let _ = std::fs::remove_dir_all(&out_dir);
    ran
}

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-hostile-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Every file under `dir`, recursively, with its text (lossy).
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "sqlite") {
                // The SQLite history holds the same rows as report.json,
                // in a binary page format the scan would misread.
                let text =
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned();
                out.push((p, text));
            }
        }
    }
    out
}

/// Problems with one command's run, as lines of a report.
fn judge(ran: &Ran, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let l = &ran.label;
    if ran.timed_out {
        problems.push(format!("{l}: still running after {} s, killed", TIME_LIMIT.as_secs()));
    } else if let Some(sig) = ran.signal {
        problems.push(format!("{l}: killed by signal {sig}"));
    } else if !matches!(ran.code, Some(0..=2)) {
        problems.push(format!("{l}: exit status {:?}, expected 0, 1 or 2", ran.code));
    }
    for (what, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
        for a in host_addresses(text) {
            problems.push(format!("{l}: host address on {what}: {a}"));
        }
        let c = terminal_controls(text);
        if !c.is_empty() {
            problems.push(format!("{l}: raw control characters on {what}: {c:?}"));
        }
    }
    for (path, text) in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for a in host_addresses(text) {
            problems.push(format!("{l}: host address in {name}: {a}"));
        }
        if name.ends_with(".xml") {
            let c = xml_forbidden(text);
            if !c.is_empty() {
                problems.push(format!("{l}: characters XML forbids in {name}: {c:?}"));
            }
        }
        if name.ends_with(".md") {
            for line in text.split(['\n', '\r']) {
                if line.contains("injected") && line.trim_start().starts_with('#')
                    || line.contains("</x>") && line.trim_start().starts_with('#')
                {
                    problems.push(format!(
                        "{l}: a program's name became a heading in {name}: {line:?}"
                    ));
                }
            }
            if text.contains('\r') {
                problems.push(format!("{l}: raw CR in {name}"));
            }
        }
    }
    problems
}

/// `s` as a TOML basic string: backslash, quote and every control
/// character escaped (TOML 1.0 allows `\uXXXX` for any of them).
fn toml_basic_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn the_address_scan_finds_what_it_must() {
    // A check that cannot fail is no check: the scan must see each form.
    assert!(!host_addresses("r0 = 0x7ffff7a0c010").is_empty());
    assert!(!host_addresses("value 140737348943888 here").is_empty());
    assert!(!host_addresses("data 02000000000110c0a0f7ff7f0000ffff").is_empty()); // LE bytes
    assert!(!host_addresses("data 0000555555559abc0000").is_empty()); // BE bytes
    assert!(host_addresses("r10 = 0x20000001000, ts 1700000000000000000, 0xffff888012345678")
        .is_empty());
    // Hex with only decimal digits counts after 0x; a bare 12-digit decimal
    // (a timing in bench JSON) is a decimal number, not an address.
    assert!(!host_addresses("at 0x555555559000").is_empty());
    assert!(!host_addresses("at 55555555abcd").is_empty());
    assert!(host_addresses(r#""ns_total": 558060084585"#).is_empty());
    // A float's fraction is not a number of its own; the same digits after
    // a non-digit and a point (`v.93887405094188`) still are.
    assert!(host_addresses(r#""packets_per_s": 12.93887405094188"#).is_empty());
    assert!(!host_addresses("v.93887405094188").is_empty());
    assert_eq!(terminal_controls("a\x1b[2Jb\r\u{85}"), vec!['\r', '\x1b', '\u{85}']);
    assert_eq!(xml_forbidden("a\x01b\tc"), vec!['\x01']);
}

#[test]
fn hostile_programs_through_every_command() {
    let root = common::repo_root();
    let dir = root.join("corpus/build/hostile");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objects.sort();
    assert!(
        objects.len() >= 15,
        "expected the hostile set in {}, found {}",
        dir.display(),
        objects.len()
    );
    if Command::new("setarch").arg("--help").output().is_err() {
        xdpqual::util::skip(format_args!(
            "hostile programs: setarch (util-linux) is not installed"
        ));
        return;
    }

    let work = tempdir("work");
    // The capture's file name carries CR, LF, ESC and Markdown/XML markup:
    // every report that names it must stay well-formed.
    let cap = work.join("frames\r\n# injected \x1b[2J <x>|.pcap");
    write_capture(&cap);
    let cap_s = cap.to_string_lossy().into_owned();
    let profiles = ["nfp-corenic", "nfp-agilio-ebpf", "netdevsim", "hxdp"];

    let mut problems = Vec::new();
    let mut table = String::new();
    let mut runs = 0;
    for obj in &objects {
        let name = obj.file_stem().unwrap().to_string_lossy().into_owned();
        // The object under a hostile file name too (ESC and CR), so paths in
        // messages are tested as well as the names inside the object.
        let hostile_obj = work.join(format!("{name}\x1b[31m\r.o"));
        std::fs::copy(obj, &hostile_obj).expect("copy object");
        let o = hostile_obj.to_string_lossy().into_owned();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

        let mut commands: Vec<(String, Vec<String>)> = vec![
            (format!("{name} replay interp"), s(&["replay", "--engine", "interp", &o, &cap_s])),
            (format!("{name} replay jit"), s(&["replay", &o, &cap_s])),
            (format!("{name} diff vm"), s(&["diff", &o, &cap_s, "--backends", "vm"])),
        ];
        let bench_out = work.join(format!("bench-{name}"));
        commands.push((
            format!("{name} bench"),
            s(&[
                "bench",
                &o,
                &cap_s,
                "--rounds",
                "1",
                "--repeat",
                "10",
                "--kernel-sample",
                "4",
                "--out-dir",
                &bench_out.to_string_lossy(),
            ]),
        ));
        for p in profiles {
            commands.push((
                format!("{name} offload-check {p}"),
                s(&["offload-check", &o, "--profile", p, "--capture", &cap_s]),
            ));
        }
        // qualify from a directory of its own, with a config naming this
        // program on every local cell.
        let qdir = work.join(format!("qualify-{name}"));
        std::fs::create_dir_all(&qdir).unwrap();
        let toml_str = |p: &str| toml_basic_string(p);
        std::fs::write(
            qdir.join("xdpqual.toml"),
            format!(
                "captures = [{}]\ncells = [\"vm\", \"host\", \"rbpf\"]\n\n[[program]]\nobject = {}\noffload = {{ \"nfp-corenic\" = false, \"nfp-agilio-ebpf\" = false, \"netdevsim\" = false, \"hxdp\" = false }}\n",
                toml_str(&cap_s),
                toml_str(&o)
            ),
        )
        .unwrap();
        commands.push((format!("{name} qualify"), s(&["qualify", "--quiet"])));

        for (label, args) in commands {
            let cwd = if label.ends_with("qualify") { qdir.clone() } else { work.clone() };
            let ran = run(label.clone(), &cwd, &args);
            runs += 1;
            let mut files = Vec::new();
            if label.ends_with("bench") {
                files = files_under(&bench_out);
            } else if label.ends_with("qualify") {
                files = files_under(&qdir.join("results"));
            }
            let mut found = judge(&ran, &files);
            // qualify must get as far as a report: a hostile program fails
            // its units (exit 1), it does not make the configuration invalid.
            if label.ends_with("qualify")
                && !files.iter().any(|(p, _)| p.file_name().is_some_and(|n| n == "report.json"))
            {
                found.push(format!("{label}: wrote no report.json (exit {:?})", ran.code));
            }
            let _ = writeln!(
                table,
                "  {label:<40} exit {:>4} {:>6.1} s {}",
                ran.code
                    .map_or_else(|| format!("sig{}", ran.signal.unwrap_or(0)), |c| c.to_string()),
                ran.elapsed.as_secs_f64(),
                if found.is_empty() { "ok" } else { "PROBLEM" }
            );
            if !found.is_empty() {
                let tail: String = ran.stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                problems.extend(found);
                problems.push(format!("    (stderr ends: {})", tail.escape_debug()));
            }
        }
    }
    eprintln!("hostile programs, one line per command:\n{table}");
    xdpqual::util::count(format_args!(
        "hostile programs: {} objects, {runs} commands under ulimit -v {VMEM_KIB} and {} s, {} problems",
        objects.len(),
        TIME_LIMIT.as_secs(),
        problems.iter().filter(|p| !p.starts_with("    ")).count()
    ));
    let _ = std::fs::remove_dir_all(&work);
    assert!(problems.is_empty(), "hostile programs got through:\n{}", problems.join("\n"));
}
