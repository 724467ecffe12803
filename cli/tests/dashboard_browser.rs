//! The dashboard in a real browser: two qualify runs into a fresh history,
//! `xdpqual dashboard`, then headless Chromium loads the page. The page's
//! inline script counts what the browser laid out (charts with a non-empty
//! box, matrix cells with a computed colour) into `body[data-rendered]`,
//! which `--dump-dom` shows. Screenshots of each section land in
//! results/screenshots/ for the README.
//!
//! Chromium is an OPTIONAL package of ci/setup.sh: without it the test
//! prints SKIP and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xdpqual::capture::{PcapFileWriter, TsPrecision};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn xdpqual(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("XDPQUAL_CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

/// Runs Chromium headless with the flags a root CI user needs, bounded in
/// time; returns its stdout.
fn headless(bin: &Path, profile: &Path, extra: &[String], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn dashboard_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        xdpqual::util::skip(format_args!(
            "chromium is not installed (optional package of ci/setup.sh)"
        ));
        return;
    };
    let dir = std::env::temp_dir().join(format!("xdpqual-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Two 60-byte IPv4 frames and a runt: counters.c passes every frame it
    // runs; the runt is not run (shorter than an Ethernet header).
    let mut w = PcapFileWriter::create(dir.join("tiny.pcap"), TsPrecision::Microsecond).unwrap();
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    w.write(1, &f).unwrap();
    w.write(2, &[0xff; 10]).unwrap();
    w.write(3, &f).unwrap();
    w.finish().unwrap();
    let r = root();
    // One passing program with an offload cell, and one failing per-packet
    // expectation for the verdict diffs. (Escaping of hostile names is
    // covered by the dashboard's unit tests.)
    std::fs::write(
        dir.join("xdpqual.toml"),
        format!(
            "captures = [\"tiny.pcap\", \"{r}/pcaps/firewall-2k.pcap\"]\ncells = [\"vm\"]\n[perf]\nrounds = 1\n\
             [[program]]\nobject = \"{r}/corpus/build/firewall.v3.o\"\noffload = {{ \"netdevsim\" = false }}\n\
             [[program]]\nobject = \"{r}/corpus/build/counters.v3.o\"\nexpect = {{ \"tiny.pcap\" = {{ verdicts = \"PPP\" }} }}\n",
            r = r.display()
        ),
    )
    .unwrap();
    let cfg = dir.join("xdpqual.toml");
    let hist = dir.join("h.sqlite");
    for _ in 0..2 {
        let (code, stdout, stderr) = xdpqual(&[
            "qualify",
            "--quiet",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ]);
        assert_eq!(
            code, 1,
            "the counters expectation (packet 1 is a runt) fails: {stdout}{stderr}"
        );
    }
    let site = dir.join("site");
    let (code, stdout, stderr) = xdpqual(&[
        "dashboard",
        "--history",
        hist.to_str().unwrap(),
        "--out",
        site.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    // Self-contained: nothing is fetched from anywhere.
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("<link"),
        "external asset in the page"
    );
    let url = format!("file://{}", site.join("index.html").display());

    let dom = headless(&bin, &dir.join("profile-dom"), &["--dump-dom".into()], &url);
    let rendered = dom
        .split("data-rendered=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("the page script did not run:\n{dom}"));
    // 2 programs x 2 captures = 4 perf series, each with a point per run;
    // matrix: firewall (vm, netdevsim) and counters (vm) are coloured, the
    // counters x netdevsim cell is empty.
    assert_eq!(rendered, "charts=4;points=8;matrix=3", "{rendered}");
    assert!(
        dom.contains("<td class=\"fail\"") && dom.contains("<td class=\"ok\""),
        "green and red cells"
    );
    // The failing check links to its per-packet details.
    let target = dom
        .split("href=\"#unit-")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link to per-packet details");
    assert!(dom.contains(&format!("<details id=\"unit-{target}\"")), "{target}");
    assert!(dom.contains("packet 1") && dom.contains("expected PASS, the engine returned NOT_RUN"));

    let shots = r.join("results/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for section in ["matrix", "diffs", "trends", "offload"] {
        let png = shots.join(format!("dashboard-{section}.png"));
        let _ = std::fs::remove_file(&png);
        headless(
            &bin,
            &dir.join(format!("profile-{section}")),
            &["--window-size=1200,800".into(), format!("--screenshot={}", png.display())],
            &format!("{url}#only={section}"),
        );
        let bytes =
            std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000,
            "{} is not a PNG",
            png.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
