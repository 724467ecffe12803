//! The README's "Bring your own program" section, run as written: its
//! commands (between the `bring-your-own` markers in README.md, so the test
//! and the README cannot drift) on a program written for this test, in a
//! temporary directory, with the built `xdpqual` first on PATH.
//!
//! Checked: `init` wrote a configuration that `qualify`'s own parser loads,
//! with the verdicts it recorded from the kernel equal to the ones worked
//! out here from the program's specification; `qualify` exits 0 with every
//! check counted and none skipped, makes its run the first baseline, and
//! writes JUnit test cases with sane `time`s; `dashboard` writes its page.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The program: not one of the corpus. SPECIFICATION (what the oracle
/// below implements): an IPv4 frame (ethertype 0x0800 at bytes 12..14,
/// at least 14 + 20 bytes) whose protocol (byte 23) is UDP (17) with
/// destination port 53, or TCP (6) with destination port 23, the L4
/// header at 14 + 4 * (byte 14 & 0x0f) and its first 4 bytes present, is
/// dropped and counted in per-CPU slot 0; every other frame passes and is
/// counted in slot 1.
const PROGRAM: &str = r#"
#include <linux/bpf.h>
#define SEC(name) __attribute__((section(name), used))
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
struct {
    int (*type)[BPF_MAP_TYPE_PERCPU_ARRAY];
    int (*max_entries)[2];
    __u32 *key;
    __u64 *value;
} verdicts SEC(".maps");

static int count(__u32 slot, int verdict) {
    __u64 *n = bpf_map_lookup_elem(&verdicts, &slot);
    if (n)
        *n += 1;
    return verdict;
}

SEC("xdp") int dns_telnet_guard(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (p + 34 > end || p[12] != 0x08 || p[13] != 0x00)
        return count(1, XDP_PASS);
    unsigned char *l4 = p + 14 + (p[14] & 0x0f) * 4;
    if (l4 + 4 > end)
        return count(1, XDP_PASS);
    unsigned port = (l4[2] << 8) | l4[3];
    if ((p[23] == 17 && port == 53) || (p[23] == 6 && port == 23))
        return count(0, XDP_DROP);
    return count(1, XDP_PASS);
}
char LICENSE[] SEC("license") = "GPL";
"#;

/// The specification above, per frame. Frames shorter than 14 bytes are
/// NOT_RUN: BPF_PROG_TEST_RUN refuses them before the program runs
/// (net/bpf/test_run.c, bpf_test_init: size < ETH_HLEN is -EINVAL).
fn oracle(f: &[u8]) -> &'static str {
    if f.len() < 14 {
        return "NOT_RUN";
    }
    if f.len() < 34 || f[12] != 0x08 || f[13] != 0x00 {
        return "PASS";
    }
    let l4 = 14 + 4 * (f[14] & 0x0f) as usize;
    if l4 + 4 > f.len() {
        return "PASS";
    }
    let port = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
    if (f[23] == 17 && port == 53) || (f[23] == 6 && port == 23) {
        "DROP"
    } else {
        "PASS"
    }
}

/// The shell lines between the markers: the fenced block's lines, each a
/// command (a trailing `# comment` is for the reader).
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let begin = "<!-- bring-your-own:begin -->";
    let end = "<!-- bring-your-own:end -->";
    let a = readme.find(begin).expect("README.md has the bring-your-own:begin marker");
    let b = readme.find(end).expect("README.md has the bring-your-own:end marker");
    let block = &readme[a + begin.len()..b];
    let lines: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("```"))
        .map(|l| match l.find("  #") {
            Some(i) => l[..i].trim().to_string(),
            None => l.to_string(),
        })
        .collect();
    assert!(!lines.is_empty(), "no commands between the markers");
    lines
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

#[test]
fn readme_bring_your_own_program_runs_as_written() {
    let commands = readme_commands();
    let wanted = ["clang ", "xdpqual init", "xdpqual qualify", "xdpqual dashboard"];
    for w in wanted {
        assert!(
            commands.iter().any(|c| c.starts_with(w)),
            "the README section runs `{w}...`: {commands:?}"
        );
    }
    // `clang` as the README says; Debian 12 names it clang-19, so a shim
    // directory supplies the plain name when only that exists.
    let dir = std::env::temp_dir().join(format!("xdpqual-byop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let shims = dir.join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    if !on_path("clang") {
        match ["clang-19", "clang-18", "clang-17"].iter().find(|c| on_path(c)) {
            Some(c) => std::os::unix::fs::symlink(
                which(c).expect("found on PATH just now"),
                shims.join("clang"),
            )
            .unwrap(),
            None => {
                return xdpqual::util::skip(
                    "README bring-your-own: no clang (clang-19) on PATH to build the program",
                )
            }
        }
    }
    let work = dir.join("my-project");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("my_prog.c"), PROGRAM).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_xdpqual")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        [bin_dir, shims.clone()]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut outputs = Vec::new();
    for cmd in &commands {
        let o = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&work)
            .env("PATH", &path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(0), "`{cmd}` failed:\n{stdout}\n{stderr}");
        outputs.push((cmd.clone(), stdout));
    }
    let out_of = |prefix: &str| -> String {
        outputs.iter().find(|(c, _)| c.starts_with(prefix)).map(|(_, o)| o.clone()).unwrap()
    };

    // init: a configuration qualify's own parser loads.
    let cfg_path = work.join("xdpqual.toml");
    let text = std::fs::read_to_string(&cfg_path).expect("init wrote xdpqual.toml");
    let cfg = xdpqual::qualify::config::load(&cfg_path).expect("qualify's parser loads it");
    assert_eq!(cfg.programs.len(), 1, "{text}");
    assert_eq!(cfg.captures.len(), 1, "{text}");
    assert!(out_of("xdpqual init").contains("wrote"), "{}", out_of("xdpqual init"));

    // What the program should do with the capture, worked out here.
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for item in xdpqual::capture::CaptureReader::open(&cfg.captures[0]).unwrap() {
        *want.entry(oracle(&item.unwrap().data).to_string()).or_default() += 1;
    }
    assert!(want.get("DROP").copied().unwrap_or(0) > 0, "the capture exercises the drop: {want:?}");
    match xdpqual::backends::host::HostBackend::open() {
        Ok(h) => {
            // The kernel ran: the counts it recorded are the specification's.
            let e = cfg.programs[0].expect.get(&0).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(e.counts.as_ref().unwrap(), &want, "{text}");
            assert!(
                text.contains(&format!("RECORDED from kernel {}", h.kernel_release()))
                    && text.contains("NOT worked out"),
                "{text}"
            );
        }
        Err(why) => {
            xdpqual::util::skip(format_args!(
                "README bring-your-own (recorded verdicts; the rest ran): {why}"
            ));
            assert!(cfg.programs[0].expect.is_empty(), "{text}");
            assert!(cfg.optional.contains(&"host".to_string()), "{text}");
        }
    }

    // qualify: exit 0 (checked above), every check counted, none skipped,
    // and the first run becomes the baseline.
    let q = out_of("xdpqual qualify");
    let summary =
        q.lines().find(|l| l.starts_with("xdpqual qualify:")).unwrap_or_else(|| panic!("{q}"));
    let passed: u64 = summary["xdpqual qualify: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(passed >= 3, "engine, perf and offload checks at least: {summary}");
    assert!(summary.contains(" 0 failed, 0 skipped"), "{summary}");
    assert!(q.lines().any(|l| l.starts_with("first run: no baseline 'default'")), "{q}");
    xdpqual::util::count(format_args!(
        "README bring-your-own: {passed} checks passed on a program of the test's own"
    ));

    // JUnit: every test case has a time, a non-negative number of seconds,
    // and the suite's time is their sum (to the printed precision).
    let results = work.join("results");
    let run = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("junit.xml").is_file())
        .expect("a run directory with junit.xml");
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let seconds = |n: roxmltree::Node| -> f64 {
        let t: f64 = n
            .attribute("time")
            .unwrap_or_else(|| panic!("no time on {:?}", n.tag_name()))
            .parse()
            .unwrap();
        assert!(t.is_finite() && t >= 0.0, "time {t}");
        t
    };
    let cases: Vec<f64> =
        doc.descendants().filter(|n| n.has_tag_name("testcase")).map(seconds).collect();
    assert_eq!(cases.len() as u64, passed, "{junit}");
    let suite = seconds(doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap());
    let sum: f64 = cases.iter().sum();
    assert!((suite - sum).abs() <= 1e-6 * (cases.len() as f64 + 1.0), "{suite} vs {sum}");

    // dashboard: its page, naming the program.
    let page = std::fs::read_to_string(results.join("dashboard/index.html"))
        .expect("dashboard wrote results/dashboard/index.html");
    assert!(page.contains("my_prog.o"), "the dashboard shows the program");
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}
