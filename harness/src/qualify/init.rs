//! `xdpqual init`: a first `xdpqual.toml` for the BPF objects and captures
//! under a directory, written with comments so a newcomer can read what
//! each part checks.
//!
//! Expected verdicts cannot be worked out from an object alone (that needs
//! the program's specification, as corpus/expect/ has). What can be done
//! without one is to record what the host kernel did with each capture
//! (`BPF_PROG_TEST_RUN`, the same packets and ingress convention `qualify`
//! uses), which turns later runs into a regression gate against the kernel's
//! behaviour today. Such counts are written with a comment saying they were
//! recorded, from which kernel and on which date, so a reviewer knows to
//! check them. The offload expectations are likewise what the NIC model
//! says today, marked the same way.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::backends::kind::BackendKind;
use crate::backends::{registry, OpenCtx, Opened};
use crate::loader::{load_target, LoadOptions};
use crate::program::{Object, Program};

/// Directories never searched: build outputs, results, version control and
/// anything hidden.
const SKIP_DIRS: [&str; 3] = ["target", "results", "node_modules"];
/// How deep below the directory objects and captures are looked for.
const MAX_DEPTH: usize = 8;
/// ELF `e_machine` of BPF objects (include/uapi/linux/elf-em.h, EM_BPF).
const EM_BPF: u16 = 247;

/// What `init` found under a directory, paths relative to it, sorted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    pub objects: Vec<PathBuf>,
    pub captures: Vec<PathBuf>,
}

/// Whether `bytes` start like an ELF file for the BPF machine (either byte
/// order).
fn is_bpf_elf(head: &[u8]) -> bool {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return false;
    }
    let machine = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        2 => u16::from_be_bytes([head[18], head[19]]),
        _ => return false,
    };
    machine == EM_BPF
}

fn head_of(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = f.read(&mut buf[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Walks `dir` for BPF objects (`*.o` files that are BPF ELF objects; other
/// `.o` files, such as host objects, are not BPF programs and are passed
/// over) and captures (`*.pcap`, `*.pcapng`, `*.cap` that open as one).
/// A `.o` that cannot be read is an error, not a file passed over.
pub fn discover(dir: &Path) -> Result<Found> {
    fn walk(root: &Path, rel: &Path, depth: usize, found: &mut Found) -> Result<()> {
        let here = root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&here)
            .with_context(|| format!("reading directory {}", here.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading directory {}", here.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name_s = name.to_string_lossy();
            let path = rel.join(&name);
            // Symlinks are not followed: no loops, nothing outside the tree.
            let ty = e.file_type().with_context(|| format!("reading {}", path.display()))?;
            if ty.is_dir() {
                if depth < MAX_DEPTH
                    && !name_s.starts_with('.')
                    && !SKIP_DIRS.contains(&name_s.as_ref())
                {
                    walk(root, &path, depth + 1, found)?;
                }
                continue;
            }
            if !ty.is_file() {
                continue;
            }
            let lower = name_s.to_ascii_lowercase();
            if lower.ends_with(".o") {
                let head = head_of(&root.join(&path), 20)
                    .with_context(|| format!("reading object {}", root.join(&path).display()))?;
                if is_bpf_elf(&head) {
                    found.objects.push(path);
                }
            } else if [".pcap", ".pcapng", ".cap"].iter().any(|x| lower.ends_with(x))
                && crate::capture::CaptureReader::open(root.join(&path)).is_ok()
            {
                found.captures.push(path);
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut found = Found::default();
    walk(dir, Path::new(""), 0, &mut found)?;
    Ok(found)
}

/// One `[[program]]` to write: an XDP program of an object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub object: PathBuf,
    /// Written when the object has more than one XDP program.
    pub section: Option<String>,
    /// Program name, for the comments.
    pub name: String,
    pub insns: usize,
    pub maps: Vec<String>,
    /// Per capture: recorded counts (label, count) or why there are none.
    pub recorded: Vec<std::result::Result<Vec<(String, u64)>, String>>,
    /// Per built-in profile: offloadable (as the model says today) and why.
    pub offload: Vec<(String, bool, String)>,
}

/// Where the recorded expectations came from, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelSource {
    /// Kernel release and the UTC date of the recording.
    Recorded {
        kernel: String,
        date: String,
    },
    Unavailable {
        why: String,
    },
}

/// Everything the file is written from.
#[derive(Debug, Clone)]
pub struct Plan {
    pub captures: Vec<PathBuf>,
    pub entries: Vec<Entry>,
    pub kernel: KernelSource,
    /// Objects passed over (no XDP program), with why.
    pub passed_over: Vec<(PathBuf, String)>,
}

/// The UTC date of a unix time, YYYY-MM-DD (days to civil date, H. Hinnant's
/// algorithm for the proleptic Gregorian calendar).
pub fn utc_date(unix: u64) -> String {
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Runs every packet of `capture` through `prog` in the host kernel (fresh
/// maps, as the qualify host cell does) and counts the verdicts.
fn record_capture(
    obj: &Object,
    prog: &Program,
    capture: &Path,
) -> std::result::Result<Vec<(String, u64)>, String> {
    // The kernel's test-run needs a real device for ingress_ifindex: every
    // packet arrives on lo, as in the host cell's comparison (diff). The
    // engine's expectation check gives packet i ingress_ifindex 1 + i % 5
    // (read_packets); the written comment says so.
    let lo = crate::backends::host::XdpCtx::loopback().ingress_ifindex;
    let mut packets = super::read_packets(capture)?;
    for p in &mut packets {
        p.ingress_ifindex = lo;
    }
    let ctx = OpenCtx { obj, program: prog, maps: &[], fib: None, conntrack: None };
    let mut backend = match registry::open(&BackendKind::Host, &ctx) {
        Ok(Opened::Ready(b)) => b,
        Ok(Opened::Skipped { reason, .. }) => return Err(reason),
        Ok(_) => return Err("the host backend did not open for a per-packet run".into()),
        Err(e) => return Err(format!("{e:#}")),
    };
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut error = None;
    for ran in backend.run_batch(&packets) {
        if let crate::verdict::Verdict::Error { message } = &ran.result.verdict {
            error.get_or_insert_with(|| message.clone());
        }
        *counts.entry(ran.result.verdict.label()).or_default() += 1;
    }
    backend.release();
    if let Some(m) = error {
        // A failing backend is no behaviour to expect.
        return Err(format!("the kernel's test-run failed on a packet: {m}"));
    }
    // A return value that is no XDP action has no name an expectation can
    // use (and is a bug the host cell reports anyway).
    if let Some(odd) = counts.keys().find(|l| !super::expect::LABELS.contains(&l.as_str())) {
        return Err(format!("the kernel returned {odd}, which is not an XDP action"));
    }
    Ok(counts.into_iter().collect())
}

/// Loads every object, lists its XDP programs, asks the NIC model about
/// every built-in profile and, unless `use_kernel` is false or the kernel
/// cannot run BPF here, records the kernel's verdicts on every capture.
pub fn plan(dir: &Path, found: &Found, use_kernel: bool, now_unix: u64) -> Result<Plan> {
    let kernel = if !use_kernel {
        KernelSource::Unavailable { why: "--no-kernel was given".into() }
    } else {
        match crate::backends::host::HostBackend::open() {
            Ok(h) => KernelSource::Recorded {
                kernel: h.kernel_release().to_string(),
                date: utc_date(now_unix),
            },
            Err(e) => KernelSource::Unavailable { why: format!("{e:#}") },
        }
    };
    let profiles = nic_model::Profile::builtin_names();
    let mut entries = Vec::new();
    let mut passed_over = Vec::new();
    for rel in &found.objects {
        let full = dir.join(rel);
        let obj = match load_target(&full, &LoadOptions::default()) {
            Ok(o) => o,
            // An object without an XDP program is someone else's (tc,
            // kprobe): noted in the file, not an error.
            Err(e @ crate::loader::LoadError::NoXdpProgram { .. }) => {
                passed_over.push((rel.clone(), e.to_string()));
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("reading BPF object {}", full.display()))
            }
        };
        let several = obj.programs.len() > 1;
        for prog in &obj.programs {
            // The section selects the program unless two share it; then
            // the function name does (Object::program matches either).
            let section = several.then(|| {
                if obj.programs.iter().filter(|p| p.section == prog.section).count() > 1 {
                    prog.name.clone()
                } else {
                    prog.section.clone()
                }
            });
            let recorded = found
                .captures
                .iter()
                .map(|c| match &kernel {
                    KernelSource::Recorded { .. } => record_capture(&obj, prog, &dir.join(c)),
                    KernelSource::Unavailable { why } => Err(why.clone()),
                })
                .collect();
            let host = if matches!(kernel, KernelSource::Recorded { .. }) {
                crate::offload::host_verdict(&obj, prog)
            } else {
                crate::offload::HostVerdict::NotAsked { why: "no kernel".into() }
            };
            let mut offload = Vec::new();
            for name in &profiles {
                let prof = nic_model::Profile::load(name)
                    .with_context(|| format!("built-in offload profile {name}"))?;
                let r = crate::offload::check(&obj, prog, &prof, &host);
                let why = match r.findings.first() {
                    Some(f) if !r.verdict.loads() => format!("{}: {}", f.rule, f.message),
                    _ => r.verdict_line(),
                };
                offload.push((name.to_string(), r.verdict.loads(), why));
            }
            entries.push(Entry {
                object: rel.clone(),
                section,
                name: prog.name.clone(),
                insns: prog.insns.len(),
                maps: obj.maps.iter().map(|m| m.name.clone()).collect(),
                recorded,
                offload,
            });
        }
    }
    if entries.is_empty() {
        let list = passed_over
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect::<Vec<_>>()
            .join("; ");
        bail!(
            "no XDP program in the BPF objects under {} ({list}); `xdpqual init` writes a configuration for XDP programs only",
            dir.display()
        );
    }
    Ok(Plan { captures: found.captures.clone(), entries, kernel, passed_over })
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn p(path: &Path) -> String {
    q(&path.to_string_lossy())
}

/// One comment line per line of `text`, so nothing from a file or a
/// verifier message can end the comment and become configuration.
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let clean: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        out.push_str(indent);
        out.push_str("# ");
        out.push_str(clean.trim_end());
        out.push('\n');
    }
}

/// The configuration text. Paths are relative to the directory the file
/// is written in, as `qualify` reads them.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    s.push_str(
        "# xdpqual qualification configuration, written by `xdpqual init`.\n\
         # Run it with `xdpqual qualify` from this directory (docs/qualify.md has every key).\n\
         #\n\
         # Each [[program]] is replayed through every capture below on each cell:\n\
         #   vm    xdpqual's own engine: the expected verdicts are checked here, and its\n\
         #         cost per packet is measured for the [perf] gate;\n\
         #   host  the running kernel through BPF_PROG_TEST_RUN: every packet's verdict,\n\
         #         output bytes and the maps at the end must agree with the engine.\n\
         # and against every offload profile in its `offload` table.\n\n",
    );
    s.push_str("# The captures every program is replayed through (paths relative to this file).\n");
    s.push_str(&format!(
        "captures = [{}]\n\n",
        plan.captures.iter().map(|c| p(c)).collect::<Vec<_>>().join(", ")
    ));
    match &plan.kernel {
        KernelSource::Recorded { kernel, .. } => {
            s.push_str(&format!(
                "# The host cell needs CAP_BPF (root) and a kernel that can test-run XDP; it\n\
                 # worked when this file was written (kernel {kernel}). On a machine where it\n\
                 # cannot run, its checks fail (a gate that did not run is no pass) unless the\n\
                 # cell is optional: uncomment to skip it there, with the reason, instead.\n\
                 # optional = [\"host\"]\n\n"
            ));
        }
        KernelSource::Unavailable { why } => {
            comment(
                &mut s,
                "",
                &format!(
                    "The host kernel could not run BPF programs when this file was written ({why}),\n\
                     so the host cell is optional: where it cannot run, its checks are skipped with\n\
                     the reason. Remove this line to make the kernel comparison mandatory."
                ),
            );
            s.push_str("optional = [\"host\"]\n\n");
        }
    }
    s.push_str(
        "# Performance: the engine's median cost per packet over `rounds` runs, normalised by a\n\
         # reference workload timed in the same run and kept in the history\n\
         # (results/history.sqlite). The gate fails when a program got more than\n\
         # max_regression_pct slower than the baseline named \"default\" beyond the\n\
         # measurement's noise. The first recorded run becomes that baseline (`xdpqual\n\
         # baseline set RUN` picks another).\n\
         [perf]\n\
         rounds = 3\n\
         budget = { max_regression_pct = 25.0 }\n",
    );
    for o in &plan.passed_over {
        s.push('\n');
        comment(&mut s, "", &format!("Not included: {}: {}", o.0.display(), o.1));
    }
    for e in &plan.entries {
        s.push_str("\n[[program]]\n");
        comment(
            &mut s,
            "",
            &format!(
                "{}: {} instructions{}",
                e.name,
                e.insns,
                if e.maps.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; maps {} (start empty: give contents with `maps = {{ NAME = \"file.json\" }}`)",
                        e.maps.join(", ")
                    )
                }
            ),
        );
        s.push_str(&format!("object = {}\n", p(&e.object)));
        if let Some(sec) = &e.section {
            s.push_str(&format!("section = {}\n", q(sec)));
        }
        // Expectations.
        let recorded: Vec<(&PathBuf, &Vec<(String, u64)>)> = plan
            .captures
            .iter()
            .zip(&e.recorded)
            .filter_map(|(c, r)| r.as_ref().ok().map(|v| (c, v)))
            .collect();
        match &plan.kernel {
            KernelSource::Recorded { kernel, date } if !recorded.is_empty() => {
                comment(
                    &mut s,
                    "",
                    &format!(
                        "Expected verdicts: RECORDED from kernel {kernel} (BPF_PROG_TEST_RUN) on {date},\n\
                         NOT worked out from what the program should do. They make later runs a\n\
                         regression gate against that kernel's behaviour; check each count against the\n\
                         program's specification before trusting it, and correct it where it is wrong.\n\
                         (Recorded with every packet arriving on lo; the engine's check gives packet i\n\
                         ingress_ifindex 1 + i % 5, so a program that reads it may need other counts.)"
                    ),
                );
                s.push_str("expect = {");
                let parts: Vec<String> = recorded
                    .iter()
                    .map(|(c, counts)| {
                        let total: u64 = counts.iter().map(|(_, n)| n).sum();
                        let kv: Vec<String> =
                            counts.iter().map(|(l, n)| format!("{l} = {n}")).collect();
                        format!(" {} = {{ packets = {total}, {} }}", p(c), kv.join(", "))
                    })
                    .collect();
                s.push_str(&parts.join(","));
                s.push_str(" }\n");
            }
            _ => {}
        }
        for (c, r) in plan.captures.iter().zip(&e.recorded) {
            if let Err(why) = r {
                comment(
                    &mut s,
                    "",
                    &format!(
                        "No expected verdicts for {}: {why}. Without them the engine's run on it\n\
                         only has to finish without faults; add `expect = {{ {} = {{ PASS = N, DROP = M }} }}`\n\
                         with counts worked out from the program's specification.",
                        c.display(),
                        p(c)
                    ),
                );
            }
        }
        // Offload.
        comment(
            &mut s,
            "",
            "Offload: true = expected to load on that NIC (xdpqual offload-check OBJ --profile P\n\
             shows every rule). These are what xdpqual's NIC model says TODAY, RECORDED by\n\
             `xdpqual init`, not worked out: confirm each against the rule named below.",
        );
        for (prof, ok, why) in &e.offload {
            comment(
                &mut s,
                "  ",
                &format!("{prof}: {}: {why}", if *ok { "offloadable" } else { "not offloadable" }),
            );
        }
        s.push_str(&format!(
            "offload = {{ {} }}\n",
            e.offload
                .iter()
                .map(|(prof, ok, _)| format!("{} = {ok}", q(prof)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

/// The one line (or two) `init` prints about the file it wrote.
pub fn describe(plan: &Plan, path: &Path) -> Vec<String> {
    let mut lines = vec![format!(
        "xdpqual init: wrote {} with {} program(s) from {} object(s) and {} capture(s)",
        path.display(),
        plan.entries.len(),
        {
            let mut o: Vec<&PathBuf> = plan.entries.iter().map(|e| &e.object).collect();
            o.dedup();
            o.len()
        },
        plan.captures.len()
    )];
    match &plan.kernel {
        KernelSource::Recorded { kernel, date } => {
            let n: usize =
                plan.entries.iter().map(|e| e.recorded.iter().filter(|r| r.is_ok()).count()).sum();
            let total = plan.entries.len() * plan.captures.len();
            lines.push(format!(
                "expected verdicts for {n} of {total} program x capture pairs RECORDED from kernel {kernel} on {date}, not worked out: review them before trusting the gate"
            ));
        }
        KernelSource::Unavailable { why } => lines.push(format!(
            "no expected verdicts written: the host kernel could not run BPF here ({why}); the host cell is optional"
        )),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        // 0 is 1970-01-01; 951782400 is 2000-02-29 (a leap day in a year
        // divisible by 400); 1798675200 is 2026-12-31 (date -u -d @...).
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_798_675_200 + 86_399), "2026-12-31");
    }

    #[test]
    fn only_bpf_elf_objects_count() {
        let mut h = vec![0u8; 20];
        h[..4].copy_from_slice(b"\x7fELF");
        h[5] = 1;
        h[18..20].copy_from_slice(&247u16.to_le_bytes());
        assert!(is_bpf_elf(&h));
        h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        assert!(!is_bpf_elf(&h));
        h[5] = 2;
        h[18..20].copy_from_slice(&247u16.to_be_bytes());
        assert!(is_bpf_elf(&h));
        assert!(!is_bpf_elf(b"\x7fELF"));
    }

    #[test]
    fn comments_cannot_break_out() {
        let mut s = String::new();
        comment(&mut s, "", "a\nobject = \"x\"\r\u{1b}[31m");
        assert_eq!(s, "# a\n# object = \"x\"  [31m\n");
    }
}
