//! `xdpqual.toml`: what a qualification run checks.
//!
//! Parsing keeps the source span of every path, cell and expectation, so a
//! missing file, an unknown cell or a bad expectation is reported with the
//! line it was written on (unknown keys and syntax errors get theirs from
//! the TOML parser).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::expect::{self, CaptureExpect};

/// The backends a capture can be checked on. `offload` cells come from the
/// per-program `offload` table instead.
pub const CELLS: [&str; 3] = ["vm", "rbpf", "host"];
/// Cells run when neither the file nor the program names any.
pub const DEFAULT_CELLS: [&str; 2] = ["vm", "host"];

/// A configuration error: the file, the line when known, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}, line {line}: {message}", path.display())]
    At { path: PathBuf, line: usize, message: String },
    #[error("{}: {message}", path.display())]
    Whole { path: PathBuf, message: String },
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    captures: Vec<Spanned<PathBuf>>,
    /// Cells every program is checked on (default: vm and host).
    cells: Option<Vec<Spanned<String>>>,
    /// Cells that must run. Every configured cell must (a cell that could
    /// not run fails its units); kept for configurations that say so.
    #[serde(default)]
    required: Vec<Spanned<String>>,
    /// Cells that may be skipped when they cannot run here (no privileges
    /// for the host kernel, no QEMU): their units are reported as skipped
    /// instead of failing.
    #[serde(default)]
    optional: Vec<Spanned<String>>,
    /// History database (default results/history.sqlite, relative to the
    /// working directory, not to this file).
    history: Option<PathBuf>,
    /// Performance measurement settings; budgets per program or here.
    perf: Option<PerfConfig>,
    #[serde(rename = "program")]
    programs: Vec<RawProgram>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    object: Option<Spanned<PathBuf>>,
    /// A C source built with clang for the BPF target instead of an object.
    source: Option<Spanned<PathBuf>>,
    #[serde(default)]
    cflags: Vec<String>,
    section: Option<String>,
    /// `type = "xdp"`: load sections of unknown type as XDP (`--type xdp`).
    #[serde(rename = "type")]
    prog_type: Option<crate::loader::ProgType>,
    #[serde(default)]
    maps: BTreeMap<String, Spanned<PathBuf>>,
    /// The forwarding table bpf_fib_lookup consults (`--fib`).
    fib: Option<Spanned<PathBuf>>,
    /// `map_sizes = { NAME = N }`: `max_entries` as `--map-size NAME=N`.
    #[serde(default)]
    map_sizes: BTreeMap<String, u32>,
    #[serde(default)]
    offload: BTreeMap<Spanned<String>, bool>,
    cells: Option<Vec<Spanned<String>>>,
    /// Capture -> verdict counts and/or per-packet verdicts.
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    /// A corpus/expect/*.toml file and the `config` of its runs to use.
    expect_file: Option<Spanned<PathBuf>>,
    expect_config: Option<String>,
    /// "Must agree with the kernel" (default true): a host-cell mismatch fails.
    agree_with_kernel: Option<bool>,
    /// This program's cells that may skip when they cannot run here, in
    /// addition to the file's `optional` (e.g. the host cell of a program
    /// whose helper some kernels do not offer).
    #[serde(default)]
    optional: Vec<Spanned<String>>,
    budget: Option<Budget>,
}

#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerfConfig {
    /// Rounds per measurement; the median is kept (default 5).
    pub rounds: Option<u32>,
    /// Budgets for programs that set none.
    pub budget: Option<Budget>,
}

#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Median engine nanoseconds per packet.
    pub max_ns_per_packet: Option<f64>,
    /// Largest slowdown against the baseline, in percent (see docs/history.md).
    pub max_regression_pct: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub captures: Vec<PathBuf>,
    pub required: Vec<String>,
    /// Cells whose units skip, rather than fail, when the cell cannot run.
    pub optional: Vec<String>,
    pub history: Option<PathBuf>,
    pub rounds: u32,
    /// Whether any perf measurement is wanted at all.
    pub measure: bool,
    pub programs: Vec<ProgramConfig>,
}

/// Where a program's bytecode comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgramSource {
    Object(PathBuf),
    C { source: PathBuf, cflags: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ProgramConfig {
    pub source: ProgramSource,
    pub section: Option<String>,
    /// `type = "xdp"`, as `--type xdp` on the command line.
    pub prog_type: Option<crate::loader::ProgType>,
    pub maps: BTreeMap<String, PathBuf>,
    /// `fib = "FILE"`: the forwarding table, as `--fib FILE`.
    pub fib: Option<PathBuf>,
    /// `map_sizes = { NAME = N }`: as `--map-size NAME=N`.
    pub map_sizes: BTreeMap<String, u32>,
    pub offload: BTreeMap<String, bool>,
    pub cells: Vec<String>,
    /// Per capture (index into `Config::captures`).
    pub expect: BTreeMap<usize, CaptureExpect>,
    pub agree_with_kernel: bool,
    /// Cells of this program whose units skip, rather than fail, when the
    /// cell cannot run (the file's `optional` plus the program's own).
    pub optional: Vec<String>,
    pub budget: Budget,
}

impl ProgramConfig {
    pub fn label(&self) -> String {
        let base = match &self.source {
            ProgramSource::Object(p) => p.display().to_string(),
            ProgramSource::C { source, .. } => source.display().to_string(),
        };
        match &self.section {
            Some(s) => format!("{base}:{s}"),
            None => base,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    fn at<T>(&self, s: &Spanned<T>, message: String) -> ConfigError {
        ConfigError::At {
            path: self.path.to_path_buf(),
            line: line_of(self.text, s.span().start),
            message,
        }
    }

    fn file(&self, p: &Spanned<PathBuf>, what: &str) -> Result<PathBuf, ConfigError> {
        let full = if p.get_ref().is_relative() {
            self.base.join(p.get_ref())
        } else {
            p.get_ref().clone()
        };
        if !full.is_file() {
            return Err(self.at(p, format!("{what} {} does not exist", full.display())));
        }
        Ok(full)
    }

    fn cells(&self, list: &[Spanned<String>]) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for c in list {
            let name = c.get_ref().as_str();
            if let Some(kernel) = name.strip_prefix("kernel:") {
                // A QEMU matrix cell from vm-images/matrix.toml.
                let known: Vec<String> =
                    crate::matrix::spec::default_cells().into_iter().map(|c| c.name).collect();
                if !known.iter().any(|k| k == kernel) {
                    return Err(self.at(
                        c,
                        format!(
                            "unknown kernel cell '{name}' (kernel cells: {})",
                            known
                                .iter()
                                .map(|k| format!("kernel:{k}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            } else if !CELLS.contains(&name) {
                return Err(self.at(c, format!("unknown cell '{}' (cells: {}, or kernel:<matrix cell>; offload profiles go in a program's `offload` table)", c.get_ref(), CELLS.join(", "))));
            }
            if !out.contains(c.get_ref()) {
                out.push(c.get_ref().clone());
            }
        }
        Ok(out)
    }
}

/// Reads and validates the configuration; paths become relative to its
/// directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = crate::util::input::read_text_limited(
        path,
        "configuration",
        crate::util::input::MAX_CONFIG_BYTES,
    )
    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let cx = Ctx { path, text: &text, base };
    let whole = |message: String| ConfigError::Whole { path: path.to_path_buf(), message };

    let mut captures = Vec::new();
    for c in &raw.captures {
        captures.push(cx.file(c, "capture")?);
    }
    let default_cells = match &raw.cells {
        Some(c) => cx.cells(c)?,
        None => DEFAULT_CELLS.iter().map(|s| s.to_string()).collect(),
    };
    let required = cx.cells(&raw.required)?;
    let optional = cx.cells(&raw.optional)?;
    if let Some(c) = raw.optional.iter().find(|c| required.contains(c.get_ref())) {
        return Err(cx.at(c, format!("cell '{}' is both `required` and `optional`", c.get_ref())));
    }
    if raw.programs.is_empty() {
        return Err(whole("no [[program]] entries".into()));
    }
    let perf = raw.perf.clone().unwrap_or_default();
    let mut programs = Vec::new();
    for p in &raw.programs {
        let source = match (&p.object, &p.source) {
            (Some(o), None) => {
                if !p.cflags.is_empty() {
                    return Err(cx.at(o, "`cflags` only applies to a `source` program".into()));
                }
                ProgramSource::Object(cx.file(o, "program object")?)
            }
            (None, Some(s)) => {
                ProgramSource::C { source: cx.file(s, "program source")?, cflags: p.cflags.clone() }
            }
            (Some(o), Some(_)) => {
                return Err(cx.at(o, "a program has either `object` or `source`, not both".into()))
            }
            (None, None) => {
                return Err(whole("a [[program]] has neither `object` nor `source`".into()))
            }
        };
        let mut maps = BTreeMap::new();
        for (m, f) in &p.maps {
            maps.insert(m.clone(), cx.file(f, &format!("map file for map '{m}'"))?);
        }
        let mut offload = BTreeMap::new();
        for (prof, ok) in &p.offload {
            if nic_model::Profile::load(prof.get_ref()).is_err() {
                return Err(cx.at(
                    prof,
                    format!(
                        "unknown offload profile '{}' (built in: {})",
                        prof.get_ref(),
                        nic_model::Profile::builtin_names().join(", ")
                    ),
                ));
            }
            offload.insert(prof.get_ref().clone(), *ok);
        }
        let cells = match &p.cells {
            Some(c) => cx.cells(c)?,
            None => default_cells.clone(),
        };
        let fib = match &p.fib {
            Some(f) => {
                // Only the host cell builds the FIB's namespace; a QEMU
                // kernel or a NIC model would look routes up elsewhere.
                if let Some(c) = cells.iter().find(|c| *c != "vm" && *c != "host") {
                    return Err(cx.at(
                        f,
                        format!(
                            "cell '{c}' cannot take a FIB (only `vm` and `host` model or build \
                             one); give this program `cells = [\"vm\", \"host\"]`"
                        ),
                    ));
                }
                Some(cx.file(f, "FIB file")?)
            }
            None => None,
        };
        let mut program_optional = optional.clone();
        for c in cx.cells(&p.optional)? {
            if required.contains(&c) {
                let at = p.optional.iter().find(|s| *s.get_ref() == c).expect("from this list");
                return Err(cx.at(at, format!("cell '{c}' is both `required` and `optional`")));
            }
            if !program_optional.contains(&c) {
                program_optional.push(c);
            }
        }
        let mut expect = BTreeMap::new();
        for (cap, table) in &p.expect {
            let idx = capture_index(&captures, base, cap.get_ref()).ok_or_else(|| {
                cx.at(
                    cap,
                    format!(
                        "expectation for capture '{}', which is not in `captures`",
                        cap.get_ref()
                    ),
                )
            })?;
            let e = expect::from_table(table).map_err(|(at, msg)| ConfigError::At {
                path: path.to_path_buf(),
                line: line_of(&text, at),
                message: msg,
            })?;
            expect.insert(idx, e);
        }
        if let Some(f) = &p.expect_file {
            let file = cx.file(f, "expectation file")?;
            let runs =
                expect::load_corpus_file(&file, p.expect_config.as_deref(), p.section.as_deref())
                    .map_err(|m| cx.at(f, m))?;
            for (cap_name, e) in runs {
                // corpus/expect names captures by file name.
                if let Some(idx) = captures
                    .iter()
                    .position(|c| c.file_name().is_some_and(|n| n.to_string_lossy() == cap_name))
                {
                    expect.entry(idx).or_insert(e);
                }
            }
        } else if p.expect_config.is_some() {
            return Err(whole(format!(
                "{}: `expect_config` without `expect_file`",
                p.section.clone().unwrap_or_default()
            )));
        }
        if cells.iter().all(|c| c != "vm") && !expect.is_empty() {
            return Err(whole(
                "a program with expectations needs the `vm` cell, where they are checked".into(),
            ));
        }
        programs.push(ProgramConfig {
            source,
            section: p.section.clone(),
            prog_type: p.prog_type,
            maps,
            fib,
            map_sizes: p.map_sizes.clone(),
            offload,
            cells,
            expect,
            agree_with_kernel: p.agree_with_kernel.unwrap_or(true),
            optional: program_optional,
            budget: p.budget.or(perf.budget).unwrap_or_default(),
        });
    }
    let measure = raw.perf.is_some() || programs.iter().any(|p| p.budget != Budget::default());
    Ok(Config {
        path: path.to_path_buf(),
        captures,
        required,
        optional,
        history: raw.history.clone(),
        rounds: perf.rounds.unwrap_or(5).clamp(1, 101),
        measure,
        programs,
    })
}

/// Matches an expectation's capture key against the configured captures:
/// the same path relative to the config file, or the same file name.
fn capture_index(captures: &[PathBuf], base: &Path, key: &str) -> Option<usize> {
    let joined = base.join(key);
    captures.iter().position(|c| *c == joined).or_else(|| {
        let named: Vec<usize> = captures
            .iter()
            .enumerate()
            .filter(|(_, c)| c.file_name().is_some_and(|n| n.to_string_lossy() == key))
            .map(|(i, _)| i)
            .collect();
        (named.len() == 1).then(|| named[0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xdpqual-cfg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        write(&d, "a.pcap", "");
        write(&d, "p.o", "");
        d
    }

    fn err(dir: &Path, text: &str) -> String {
        let p = write(dir, "x.toml", text);
        load(&p).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line() {
        let d = scratch("lines");
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\ncells = [\"vm\", \"qemu-9.9\"]\n");
        assert!(e.contains("line 4") && e.contains("unknown cell 'qemu-9.9'"), "{e}");
        let e = err(
            &d,
            "captures = [\"a.pcap\",\n  \"missing.pcap\"]\n[[program]]\nobject = \"p.o\"\n",
        );
        assert!(
            e.contains("line 2") && e.contains("missing.pcap") && e.contains("does not exist"),
            "{e}"
        );
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\nexpect = { \"a.pcap\" = { PASS = 1, MAYBE = 2 } }\n");
        assert!(e.contains("line 4") && e.contains("MAYBE"), "{e}");
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\n\nexpect = { \"b.pcap\" = { PASS = 1 } }\n");
        assert!(e.contains("line 5") && e.contains("not in `captures`"), "{e}");
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\noffload = { \"nosuchnic\" = true }\n");
        assert!(e.contains("line 4") && e.contains("nosuchnic"), "{e}");
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\n[program.budget]\nmax_ns = 3\n");
        assert!(e.contains("line 5") && e.contains("max_ns"), "{e}");
    }

    #[test]
    fn a_fib_is_for_the_vm_and_host_cells_only() {
        let d = scratch("fib");
        write(&d, "f.json", "{}");
        let e = err(&d, "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\ncells = [\"vm\", \"rbpf\"]\nfib = \"f.json\"\n");
        assert!(e.contains("line 5") && e.contains("cell 'rbpf' cannot take a FIB"), "{e}");
        let e = err(
            &d,
            "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\nfib = \"nofib.json\"\n",
        );
        assert!(e.contains("line 4") && e.contains("nofib.json"), "{e}");
        let p = write(
            &d,
            "ok.toml",
            "captures = [\"a.pcap\"]\n[[program]]\nobject = \"p.o\"\nfib = \"f.json\"\n",
        );
        let c = load(&p).unwrap();
        assert_eq!(c.programs[0].fib.as_deref(), Some(d.join("f.json").as_path()));
    }

    #[test]
    fn inline_expectations_and_budgets_parse() {
        let d = scratch("ok");
        let p = write(
            &d,
            "x.toml",
            "captures = [\"a.pcap\"]\ncells = [\"vm\"]\n[perf]\nrounds = 3\nbudget = { max_regression_pct = 10.0 }\n[[program]]\nobject = \"p.o\"\nexpect = { \"a.pcap\" = { pass = 10, DROP = 2, verdicts = \"PPD\" } }\n[[program]]\nobject = \"p.o\"\nbudget = { max_ns_per_packet = 500.0 }\n",
        );
        let c = load(&p).unwrap();
        assert_eq!(c.rounds, 3);
        assert!(c.measure);
        let e = &c.programs[0].expect[&0];
        assert_eq!(e.counts.as_ref().unwrap()["PASS"], 10);
        assert_eq!(e.counts.as_ref().unwrap()["DROP"], 2);
        assert_eq!(e.verdicts.as_ref().unwrap().len(), 3);
        assert_eq!(c.programs[0].budget.max_regression_pct, Some(10.0));
        assert_eq!(
            c.programs[1].budget,
            Budget { max_ns_per_packet: Some(500.0), max_regression_pct: None }
        );
        assert_eq!(c.programs[1].cells, vec!["vm".to_string()]);
    }
}
