//! Issue 18 item 3: `diff`, `bench`, `live` and `matrix` draw a progress bar
//! on a terminal, and nothing of it reaches a pipe or a file, or a terminal
//! with `--quiet`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

const FW: &str = "corpus/build/firewall.v3.o";
const CAP: &str = "pcaps/firewall-2k.pcap";

fn bench_args(dir: &std::path::Path) -> Vec<String> {
    ["bench", FW, CAP, "--backends", "engine", "--rounds", "2", "--packets", "256", "--out-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.display().to_string()])
        .collect()
}

fn diff_args() -> Vec<String> {
    ["diff", FW, CAP, "--backends", "vm,rbpf"].iter().map(|s| s.to_string()).collect()
}

fn outdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-progress-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a terminal would get: any ESC (a bar's cursor and colour codes) or
/// CR (a redraw).
fn has_bar_codes(b: &[u8]) -> bool {
    b.contains(&0x1b) || b.contains(&b'\r')
}

#[test]
fn no_bar_codes_when_output_is_not_a_terminal() {
    let dir = outdir("pipe");
    for args in [diff_args(), bench_args(&dir)] {
        let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .current_dir(root())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.code().is_some_and(|c| c <= 2), "{args:?}");
        assert!(!o.stdout.is_empty(), "{args:?}: no report");
        assert!(!has_bar_codes(&o.stdout), "{args:?}: stdout carries terminal codes");
        assert!(
            !has_bar_codes(&o.stderr),
            "{args:?}: stderr carries terminal codes:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Runs the command on a pseudo-terminal (util-linux `script`), returning
/// everything the terminal received; None (with a SKIP line) without `script`.
fn on_a_terminal(args: &[String]) -> Option<Vec<u8>> {
    let bin = env!("CARGO_BIN_EXE_xdpqual");
    let line: Vec<String> = std::iter::once(bin.to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{a}'"))
        .collect();
    let o = Command::new("script")
        .current_dir(root())
        .args(["-qec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .output();
    match o {
        // The terminal turns LF into CR LF itself; only a bare CR is a redraw.
        Ok(o) if o.status.code().is_some_and(|c| c <= 2) => {
            Some(String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n").into_bytes())
        }
        Ok(o) => {
            xdpqual::util::skip(format_args!(
                "`script` could not run the command on a pseudo-terminal (exit {:?}): {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            ));
            None
        }
        Err(e) => {
            xdpqual::util::skip(format_args!("util-linux `script` is not available: {e}"));
            None
        }
    }
}

/// The counterpart of the test above, so that it cannot pass because no
/// bar exists at all: on a terminal the bar is drawn (and cleared, which
/// leaves its codes in the byte stream); `--quiet` removes it.
#[test]
fn a_terminal_gets_a_bar_unless_quiet() {
    let dir = outdir("tty");
    for args in [diff_args(), bench_args(&dir)] {
        let Some(drawn) = on_a_terminal(&args) else { return };
        assert!(
            has_bar_codes(&drawn),
            "{args:?}: no bar on a terminal:\n{}",
            String::from_utf8_lossy(&drawn)
        );
        let mut quiet = args.clone();
        quiet.push("--quiet".into());
        let Some(plain) = on_a_terminal(&quiet) else { return };
        assert!(!has_bar_codes(&plain), "{quiet:?}: {}", String::from_utf8_lossy(&plain));
    }
}
