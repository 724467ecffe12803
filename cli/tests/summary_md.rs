//! summary.md (issue 18 item 5): failures first, a program x cell grid,
//! skips grouped by reason inside <details>, under 60 KB whatever the corpus
//! size, a pointer to the full report, and everything escaped.

use xdpqual::report::{Check, Outcome, Report, SUMMARY_LIMIT};

fn check(program: &str, cell: &str, capture: &str, outcome: Outcome) -> Check {
    Check::new(program, capture, &format!("{cell} check"), outcome).in_unit(0, cell)
}

/// Two programs, three cells; counts worked out by hand.
#[test]
fn small_report_layout() {
    let mut r = Report::new();
    r.run.id = "123-4".into();
    let pass = || Outcome::Pass { detail: "ok".into() };
    let nobase = || Outcome::Skipped { reason: "no baseline 'default'".into() };
    r.checks.push(check("a.o", "vm", "x.pcap", pass()));
    r.checks.push(check("a.o", "vm", "y.pcap", nobase()));
    r.checks.push(check("a.o", "host", "x.pcap", pass()));
    r.checks.push(check("b.o", "vm", "x.pcap", nobase()));
    r.checks.push(check(
        "b.o",
        "host",
        "x.pcap",
        Outcome::Fail { reason: "3 packets differ".into() },
    ));
    r.checks.push(check(
        "b.o",
        "offload:hxdp",
        "-",
        Outcome::Skipped { reason: "no <QEMU>".into() },
    ));
    let md = r.markdown();
    let want = "## xdpqual: 1 check(s) FAILED\n\n\
        2 passed, 1 failed, 3 skipped\n\n\
        - **b.o** on x.pcap (host check): 3 packets differ\n\n\
        ### Checks by program\n\n\
        | program | vm | host | offload:hxdp |\n|---|---|---|---|\n\
        | a.o | 1 pass, 1 skip | 1 pass |  |\n\
        | b.o | 1 skip | **1 fail** | 1 skip |\n\n\
        ### Skipped\n\n<details><summary>3 skipped check(s), 2 reason(s)</summary>\n\n\
        - 2 x no baseline 'default'\n\
        - 1 x no &lt;QEMU&gt;\n\n</details>\n\n\
        Full report: report.json (every check with its detail) and junit.xml, beside this summary.\n";
    assert_eq!(md, want, "\n{md}");
}

/// 5,000 programs x 15 cells, 2,000 failures with long reasons, 20,000
/// skips over 7 reasons: the summary stays under 60 KB, the failures come
/// first, what does not fit is counted, and each skip reason is one line.
#[test]
fn large_report_stays_under_the_limit() {
    let mut r = Report::new();
    r.run.id = "999-1".into();
    let cells: Vec<String> = (0..15).map(|i| format!("kernel:cell-{i}")).collect();
    let mut fails = 0;
    let mut skips = 0;
    for p in 0..5000 {
        let prog = format!("corpus/build/program_{p:05}.v3.o");
        for (i, cell) in cells.iter().enumerate() {
            let outcome = if (p * 15 + i) % 37 == 0 && fails < 2000 {
                fails += 1;
                Outcome::Fail {
                    reason: format!("packet {p}: {}", "verdict PASS vs DROP; ".repeat(40)),
                }
            } else if (p + i) % 4 == 0 {
                skips += 1;
                Outcome::Skipped { reason: format!("reason number {}", (p + i) % 7) }
            } else {
                Outcome::Pass { detail: "all packets agree".into() }
            };
            r.checks.push(check(&prog, cell, "pcaps/mixed-2k.pcap", outcome));
        }
    }
    assert_eq!(fails, 2000);
    let md = r.markdown();
    assert!(md.len() < SUMMARY_LIMIT, "{} bytes", md.len());
    assert!(md.len() < 60 * 1024, "GitHub comments stop at 65,536 characters");
    let (p, f, s) = r.count();
    assert!(md.starts_with(&format!(
        "## xdpqual: 2000 check(s) FAILED\n\n{p} passed, {f} failed, {s} skipped\n\n- **"
    )));
    assert_eq!(s, skips);
    let fail_at = md.find("- **").unwrap();
    let grid_at = md.find("### Checks by program").unwrap();
    let skip_at = md.find("### Skipped").unwrap();
    assert!(fail_at < grid_at && grid_at < skip_at);
    let listed = md.lines().filter(|l| l.starts_with("- **")).count();
    assert!(listed > 0 && listed < 2000);
    assert!(
        md.contains(&format!("- and {} more failure(s): see report.json", 2000 - listed)),
        "{md}"
    );
    let rows = md[grid_at..skip_at].lines().filter(|l| l.starts_with("| corpus")).count();
    assert!(rows > 0 && rows < 5000);
    assert!(md.contains(&format!("{} more program(s) did not fit: see report.json.", 5000 - rows)));
    // Seven reasons, one line each, inside <details>.
    let details = &md[md.find("<details>").unwrap()..md.find("</details>").unwrap()];
    let reason_lines: Vec<&str> = details.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(reason_lines.len(), 7, "{details}");
    let total: usize = reason_lines
        .iter()
        .map(|l| l[2..].split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, skips);
    assert!(md.ends_with("Full report: report.json (every check with its detail) and junit.xml, beside this summary.\n"));
}

/// Names and reasons from a program are escaped in every section.
#[test]
fn hostile_text_is_escaped_everywhere() {
    let mut r = Report::new();
    let evil = "<script>|x`\n# h";
    r.checks.push(check(evil, evil, evil, Outcome::Fail { reason: evil.into() }));
    r.checks.push(check(evil, "vm", evil, Outcome::Skipped { reason: evil.into() }));
    let md = r.markdown();
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.lines().any(|l| l.starts_with("# h")), "{md}");
    let esc = xdpqual::util::escape::markdown(evil);
    assert!(md.contains(&format!("- **{esc}**")), "{md}");
    assert!(md.contains(&format!("| {esc} |")), "{md}");
    assert!(md.contains(&format!("- 1 x {esc}\n")), "{md}");
}
