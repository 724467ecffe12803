//! The dashboard in a real browser: two qualify runs (each with its own
//! commit, through XDPQUAL_COMMIT) into a fresh history, `xdpqual
//! dashboard`, then headless Chromium loads the page. The page's inline
//! script counts what the browser laid out (the overview chart, the other
//! charts with a non-empty box, matrix and offload cells with a computed
//! colour) into `body[data-rendered]`, which `--dump-dom` shows; the test
//! then reads the laid-out DOM for the x axis' dates and commits, the
//! offload grid's words and the regression marks.
//!
//! The README's screenshots come from a real run of the shipped corpus, not
//! from this fixture: docs/screenshots/regenerate.sh.
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

/// `YYYY-MM-DD HH:MM` UTC by coreutils' `date`, not by xdpqual's own
/// calendar code.
fn gnu_date(unix: u64) -> String {
    let o = Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%d %H:%M"])
        .output()
        .expect("run date(1)");
    assert!(o.status.success(), "date -d @{unix} failed");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The text of the `<td>` after the row header `<th>{row}</th>`, tags
/// stripped, in column `col` (0-based).
fn grid_cell(section: &str, row: &str, col: usize) -> String {
    let tr = section
        .split("<tr>")
        .find(|tr| tr.starts_with(&format!("<th>{row}</th>")))
        .unwrap_or_else(|| panic!("no row {row} in\n{section}"));
    let td = tr.split("<td").nth(col + 1).unwrap_or_else(|| panic!("no column {col}: {tr}"));
    let inner = &td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()];
    // Tag boundaries become spaces: "offloadable<br>as expected" reads as words.
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("<section id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").unwrap()]
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
    // One failing per-packet expectation for the verdict diffs; offload
    // cells whose answers follow from nic-model/profiles/netdevsim.toml:
    // netdevsim offloads HASH and ARRAY maps only (`offloadable_types =
    // [1, 2]`, plus the offload-neutral PERF_EVENT_ARRAY, 4), so firewall.c's
    // BPF_MAP_TYPE_PERCPU_ARRAY `stats` (type 6) makes it not offloadable;
    // reflector.c has no map, and netdevsim accepts every instruction and
    // helper: offloadable. The regression gate has a
    // budget only an 11-fold slowdown would break.
    std::fs::write(
        dir.join("xdpqual.toml"),
        format!(
            "captures = [\"tiny.pcap\", \"{r}/pcaps/firewall-2k.pcap\"]\ncells = [\"vm\"]\n\
             [perf]\nrounds = 1\nbudget = {{ max_regression_pct = 1000.0 }}\n\
             [[program]]\nobject = \"{r}/corpus/build/firewall.v3.o\"\noffload = {{ \"netdevsim\" = false }}\n\
             [[program]]\nobject = \"{r}/corpus/build/reflector.v3.o\"\noffload = {{ \"netdevsim\" = true }}\n\
             [[program]]\nobject = \"{r}/corpus/build/counters.v3.o\"\nexpect = {{ \"tiny.pcap\" = {{ verdicts = \"PPP\" }} }}\n",
            r = r.display()
        ),
    )
    .unwrap();
    let cfg = dir.join("xdpqual.toml");
    let hist = dir.join("h.sqlite");
    let commits =
        ["1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"];
    let mut runs: Vec<xdpqual::report::Report> = Vec::new();
    for commit in commits {
        let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .current_dir(root())
            .env("XDPQUAL_COMMIT", commit)
            .args(["qualify", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--history")
            .arg(&hist)
            .output()
            .expect("run xdpqual qualify");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(1),
            "the counters expectation (packet 1 is a runt) fails: {stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let id = stdout
            .split("recorded as run ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run id in {stdout}"));
        let json = std::fs::read_to_string(dir.join("out").join(id).join("report.json")).unwrap();
        runs.push(serde_json::from_str(&json).unwrap());
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
    // One overview chart; 3 programs x 2 captures = 6 perf series, each
    // with a point per run; matrix: the 3 programs' vm cells (offload
    // profiles are not matrix columns); offload grid: firewall and
    // reflector on netdevsim.
    assert_eq!(rendered, "overview=1;charts=6;points=12;matrix=3;offload=2", "{rendered}");
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

    // Dated x axis: every run's date (by date(1)) and short commit are tick
    // labels, on the overview and on the per-program charts.
    for (run, commit) in runs.iter().zip(commits) {
        let date = gnu_date(run.run.created_unix);
        for id in ["overview", "trends"] {
            let sec = section(&dom, id);
            assert!(sec.contains(&format!("\">{date}</text>")), "date {date} on #{id}");
            assert!(
                sec.contains("class=\"tick-commit\"")
                    && sec.contains(&format!("\">{}</text>", &commit[..7])),
                "commit {} on #{id}",
                &commit[..7]
            );
        }
    }
    let trends = section(&dom, "trends");
    assert!(trends.contains(">ns/packet</text>"), "y axis in ns/packet");

    // The offload grid: one row per program, one column per profile.
    let grid = section(&dom, "offload");
    let fw = format!("{}/corpus/build/firewall.v3.o", r.display());
    let refl = format!("{}/corpus/build/reflector.v3.o", r.display());
    assert_eq!(grid_cell(grid, &fw, 0).split(" ≤").next().unwrap(), "not offloadable as expected");
    let cell = grid_cell(grid, &refl, 0);
    assert!(cell.starts_with("offloadable as expected"), "{cell}");

    // Regression marks are the gate's verdicts: run by run, as many red
    // points as failing regression-gate checks. The first run's gate
    // passes by construction (it becomes the baseline), so it has none.
    let gate_failures = |r: &xdpqual::report::Report| {
        r.checks
            .iter()
            .filter(|c| xdpqual::report::perf::is_regression_gate(&c.check) && c.failed())
            .count()
    };
    assert_eq!(gate_failures(&runs[0]), 0);
    assert!(runs[0].checks.iter().any(|c| xdpqual::report::perf::is_regression_gate(&c.check)));
    for run in &runs {
        let marks = trends
            .split("<circle class=\"regression\"")
            .skip(1)
            .filter(|c| {
                c.split("</circle>").next().unwrap().contains(&format!("(run {})", run.run.id))
            })
            .count();
        assert_eq!(marks, gate_failures(run), "run {}", run.run.id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
