//! bpf_conformance test files (`tests/*.data` in github.com/Alan-Jowett/bpf_conformance).
//!
//! A file is `#` comment lines followed by sections, each opened by a line
//! `-- name`: `asm` (assembly, see [`xdpqual_isa::asm`]), `raw` (one 64-bit
//! little-endian slot per token, hex or decimal), `mem` (hex bytes separated
//! by whitespace, over any number of lines), `result` (the expected `r0`, hex
//! or decimal), `error` (an expected error text), `c` (the C source the
//! assembly came from) and `no register offset` (a free-text note).
//! As in the suite's own parser (lib/src/bpf_test_parser.cc), a `raw` section
//! takes precedence over `asm` when both are present.
//!
//! # How the suite runs a program
//! - Entry registers: `r1` points at the `mem` bytes (null when there are
//!   none) and `r2` holds their length: ubpf_plugin/ubpf_plugin.cc in
//!   github.com/iovisor/ubpf calls the program as `fn(mem, mem_len)`.
//!   rbpf only sets `r1` (see `backends::rbpf`).
//! - The result compared is the full 64-bit `r0` at the final `exit`.
//!
//! # Helper 5, "unwind"
//! Only `call_unwind_fail.data` calls a helper (`call 5`, with `r1 = -1`; the
//! expected result 2 means execution continued past the call). What helper 5
//! does depends on the plugin running the suite:
//! - ubpf_plugin (the suite's reference executor) registers helper 5 as
//!   `unwind(a, ...) -> a`, i.e. it returns its first argument, and marks it
//!   with `ubpf_set_unwind_function_index(vm, 5)` (ubpf_plugin/ubpf_plugin.cc,
//!   ubpf_plugin/test_helpers.h). The VM then ends the program right after
//!   that helper returns **0**, with `r0 = 0` as the program's result
//!   (vm/ubpf_vm.c, `EBPF_OP_CALL`: `if (inst.imm == vm->unwind_stack_extension_index
//!   && reg[0] == 0)` stores `reg[0]` as the return value and leaves); ubpf.h
//!   documents it as "unwind-on-success", meant for helpers like
//!   `bpf_tail_call`. A non-zero return just continues, with `r0` = the value.
//!   So `call 5` with `r1 = -1` returns -1, execution goes on, `r0 = 2`.
//! - The libbpf plugin (bpf_conformance's libbpf_plugin/libbpf_plugin.cc)
//!   loads the program into the kernel as XDP; there helper 5 is
//!   `bpf_ktime_get_ns`, which returns non-zero, so the same file passes.
//!
//! A backend modelling the suite should therefore implement helper 5 as
//! `r0 = r1`, then terminate with result 0 if `r0 == 0`. See [`UNWIND_HELPER`].

use std::path::{Path, PathBuf};
use xdpqual_isa::asm::{self, AsmError};
use xdpqual_isa::Insn;

/// The helper id the suite's reference executor treats as "unwind": returns
/// its first argument, and a 0 return ends the program with result 0.
pub const UNWIND_HELPER: i32 = 5;

/// One parsed test file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConformanceTest {
    /// File stem, e.g. `add64` for `add64.data`.
    pub name: String,
    pub asm: Option<String>,
    pub raw: Option<Vec<Insn>>,
    /// Input memory; empty when the file has no `-- mem`.
    pub mem: Vec<u8>,
    /// Expected final `r0`.
    pub result: Option<u64>,
    /// Expected error text, when the program is meant to fail.
    pub error: Option<String>,
    pub c_source: Option<String>,
    pub no_register_offset: Option<String>,
}

/// Why a test file could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax { file: PathBuf, line: usize, message: String },
    #[error("{file}: {message}")]
    Incomplete { file: PathBuf, message: String },
    #[error("{file}: assembly section: {source}")]
    Asm {
        file: PathBuf,
        #[source]
        source: AsmError,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Section {
    Preamble,
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    C,
    NoRegisterOffset,
}

impl Section {
    fn from_header(name: &str) -> Option<Section> {
        Some(match name {
            "asm" => Section::Asm,
            "raw" => Section::Raw,
            "mem" => Section::Mem,
            "result" => Section::Result,
            "error" => Section::Error,
            "c" => Section::C,
            "no register offset" => Section::NoRegisterOffset,
            _ => return None,
        })
    }
}

impl ConformanceTest {
    /// Reads and parses one `.data` file.
    pub fn load(path: &Path) -> Result<ConformanceTest, ConformanceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConformanceError::Io { file: path.to_path_buf(), source })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        ConformanceTest::parse(&name, &text, path)
    }

    /// Parses file text; `file` only names the file in errors.
    pub fn parse(name: &str, text: &str, file: &Path) -> Result<ConformanceTest, ConformanceError> {
        let syntax = |line: usize, message: String| ConformanceError::Syntax {
            file: file.to_path_buf(),
            line,
            message,
        };
        let mut t = ConformanceTest { name: name.to_string(), ..Default::default() };
        let mut section = Section::Preamble;
        let mut seen: Vec<Section> = Vec::new();
        let mut asm_text = String::new();
        let mut c_text = String::new();
        let mut note = String::new();
        let mut error_text: Vec<String> = Vec::new();
        let mut raw: Vec<Insn> = Vec::new();

        for (idx, line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(header) = line.strip_prefix("--") {
                let header = header.trim();
                section = Section::from_header(header)
                    .ok_or_else(|| syntax(line_no, format!("unknown section `-- {header}`")))?;
                if seen.contains(&section) {
                    return Err(syntax(line_no, format!("section `-- {header}` appears twice")));
                }
                seen.push(section);
                continue;
            }
            // Sections written verbatim keep their comments (`#include` in C).
            let data = asm::strip_comment(line);
            match section {
                Section::Preamble => {
                    if !data.is_empty() {
                        return Err(syntax(
                            line_no,
                            "text before the first `-- section` line".into(),
                        ));
                    }
                }
                Section::Asm => {
                    asm_text.push_str(line);
                    asm_text.push('\n');
                }
                Section::C => {
                    c_text.push_str(line);
                    c_text.push('\n');
                }
                Section::NoRegisterOffset => {
                    note.push_str(line);
                    note.push('\n');
                }
                Section::Error => {
                    if !data.is_empty() {
                        error_text.push(data.to_string());
                    }
                }
                Section::Raw => {
                    for tok in data.split_whitespace() {
                        let v = parse_u64(tok).ok_or_else(|| {
                            syntax(line_no, format!("raw slot `{tok}` is not a 64-bit number"))
                        })?;
                        raw.push(Insn::from_u64(v));
                    }
                }
                Section::Mem => {
                    for tok in data.split_whitespace() {
                        let b =
                            u8::from_str_radix(tok.trim_start_matches("0x"), 16).map_err(|_| {
                                syntax(line_no, format!("memory byte `{tok}` is not a hex byte"))
                            })?;
                        t.mem.push(b);
                    }
                }
                Section::Result => {
                    if data.is_empty() {
                        continue;
                    }
                    if t.result.is_some() {
                        return Err(syntax(line_no, "more than one value in `-- result`".into()));
                    }
                    t.result = Some(parse_u64(data).ok_or_else(|| {
                        syntax(line_no, format!("result `{data}` is not a 64-bit number"))
                    })?);
                }
            }
        }
        if seen.contains(&Section::Asm) {
            t.asm = Some(asm_text);
        }
        if seen.contains(&Section::Raw) {
            t.raw = Some(raw);
        }
        if seen.contains(&Section::C) {
            t.c_source = Some(c_text);
        }
        if seen.contains(&Section::NoRegisterOffset) {
            t.no_register_offset = Some(note.trim().to_string());
        }
        if !error_text.is_empty() {
            t.error = Some(error_text.join("\n"));
        }
        let incomplete = |message: &str| ConformanceError::Incomplete {
            file: file.to_path_buf(),
            message: message.to_string(),
        };
        if t.asm.is_none() && t.raw.is_none() {
            return Err(incomplete("has neither `-- asm` nor `-- raw`"));
        }
        if t.result.is_none() && t.error.is_none() {
            return Err(incomplete("has neither `-- result` nor `-- error`"));
        }
        Ok(t)
    }

    /// The program to run: `raw` when present (as the suite does), else the
    /// assembled `asm`.
    pub fn program(&self, file: &Path) -> Result<Vec<Insn>, ConformanceError> {
        if let Some(raw) = &self.raw {
            return Ok(raw.clone());
        }
        let src = self.asm.as_deref().unwrap_or_default();
        asm::assemble(src)
            .map_err(|source| ConformanceError::Asm { file: file.to_path_buf(), source })
    }
}

/// `0x` hex or decimal, unsigned 64-bit.
fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Every `*.data` file in `dir`, sorted by file name.
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>, ConformanceError> {
    let io = |source| ConformanceError::Io { file: dir.to_path_buf(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    Ok(files)
}

/// The suite's test files under the project's shared data (`../shared/`
/// beside the checkout).
pub const SHARED_SUITE_SUBDIR: &str = "conformance/bpf_conformance/tests";

/// The suite directory: `XDPQUAL_CONFORMANCE_DIR` if set, else the shared
/// data's copy found from the checkout (`xdpqual::util::shared_dir`), else
/// where it would be beside the checkout, so that the error names a path.
pub fn suite_dir() -> PathBuf {
    std::env::var_os("XDPQUAL_CONFORMANCE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        xdpqual::util::shared_dir(SHARED_SUITE_SUBDIR).unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
                .join(SHARED_SUITE_SUBDIR)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConformanceTest, ConformanceError> {
        ConformanceTest::parse("t", text, Path::new("t.data"))
    }

    #[test]
    fn all_sections() {
        let t = parse(
            "# Copyright\n# more\n-- c\n#include <x.h>\nint f() { return i--; }\n-- asm\nmov %r0, 1 # one\nexit\n\
             -- mem\n00 01 ff\n  aa\n-- result\n0x10\n-- no register offset\ncall instruction\n",
        )
        .unwrap();
        assert_eq!(t.asm.as_deref(), Some("mov %r0, 1 # one\nexit\n"));
        assert_eq!(t.mem, vec![0x00, 0x01, 0xff, 0xaa]);
        assert_eq!(t.result, Some(16));
        assert_eq!(t.c_source.as_deref(), Some("#include <x.h>\nint f() { return i--; }\n"));
        assert_eq!(t.no_register_offset.as_deref(), Some("call instruction"));
        assert_eq!(t.program(Path::new("t")).unwrap().len(), 2);
    }

    #[test]
    fn raw_wins_over_asm_and_decimal_result() {
        let t = parse("-- asm\nmov %r0, 1\nexit\n-- raw\n0x00000002000000b7 149\n-- result\n2\n")
            .unwrap();
        let p = t.program(Path::new("t")).unwrap();
        assert_eq!(p, vec![Insn::new(0xb7, 0, 0, 0, 2), Insn::new(0x95, 0, 0, 0, 0)]);
        assert_eq!(t.result, Some(2));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("-- asm\nexit\n-- result\nzz\n").unwrap_err().to_string();
        assert_eq!(e, "t.data:4: result `zz` is not a 64-bit number");
        let e = parse("-- asm\nexit\n-- frob\n").unwrap_err().to_string();
        assert_eq!(e, "t.data:3: unknown section `-- frob`");
        let e = parse("-- asm\nexit\n").unwrap_err().to_string();
        assert!(e.contains("neither `-- result` nor `-- error`"), "{e}");
        let e = parse("-- mem\n0g\n-- asm\nexit\n-- result\n0").unwrap_err().to_string();
        assert!(e.contains("t.data:2: memory byte `0g`"), "{e}");
        let t = parse("-- asm\nfrob\n-- error\nbad\n").unwrap();
        assert_eq!(t.error.as_deref(), Some("bad"));
        let e = t.program(Path::new("t.data")).unwrap_err().to_string();
        assert!(e.starts_with("t.data: assembly section: line 1: `frob`"), "{e}");
    }

    /// Every file of the shared suite parses and yields a program; for
    /// `lddw.data` the assembled text equals its `-- raw`.
    #[test]
    fn shared_suite_parses_and_assembles() {
        let dir = suite_dir();
        let dir = dir.as_path();
        let files = data_files(dir).unwrap();
        assert_eq!(files.len(), 313, "the shared suite has 313 files");
        let mut compared_raw = 0;
        for f in &files {
            let t = ConformanceTest::load(f).unwrap_or_else(|e| panic!("{e}"));
            assert!(t.result.is_some(), "{}: every shared test states a result", f.display());
            let prog = t.program(f).unwrap_or_else(|e| panic!("{e}"));
            assert!(!prog.is_empty());
            if let (Some(src), Some(raw)) = (&t.asm, &t.raw) {
                let assembled =
                    asm::assemble(src).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                assert_eq!(&assembled, raw, "{}: -- asm and -- raw differ", f.display());
                compared_raw += 1;
            } else {
                let src = t.asm.as_deref().expect("asm when no raw");
                asm::assemble(src).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
        }
        assert_eq!(compared_raw, 1, "lddw.data is the one file with both sections");
        let lddw = ConformanceTest::load(&dir.join("lddw.data")).unwrap();
        assert_eq!(lddw.raw.as_ref().map(Vec::len), Some(3));
    }
}
