//! An assembler for the eBPF assembly syntax of bpf_conformance (and ubpf).
//!
//! It exists so that the 313 ISA conformance programs, written in that
//! syntax, can be run on every backend. The accepted language is that of
//! bpf_conformance's `lib/src/bpf_assembler.cc`:
//! - one instruction per line; `name:` defines a label; `#` starts a comment;
//! - registers `%r0`..`%r10`; memory operands `[%rN+off]`, `[%rN-off]`, `[%rN]`;
//! - jump targets are labels or literal offsets `+N`/`-N` (in slots);
//! - the first `exit` also defines a label named `exit`, so `ja exit` works
//!   without declaring one (a later explicit `exit:` is a duplicate, as there).
//!
//! See [`encode`] for the mnemonics.

mod encode;
mod lexer;

pub use lexer::{parse_imm32, parse_int, strip_comment};

use crate::Insn;
use encode::FixupField;
use std::collections::HashMap;

/// What is wrong with one line of assembly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    #[error("unknown mnemonic `{0}`")]
    UnknownMnemonic(String),
    #[error("`{mnemonic}` takes {expected} operand(s), found {found}")]
    OperandCount { mnemonic: String, expected: usize, found: usize },
    #[error("expected {what}, found `{found}`")]
    Expected { what: &'static str, found: String },
    #[error("invalid register `{0}` (registers are %r0 to %r10)")]
    BadRegister(String),
    #[error("invalid number `{0}`")]
    BadNumber(String),
    #[error("immediate `{0}` does not fit its field")]
    ImmRange(String),
    #[error("offset `{0}` does not fit in 16 signed bits")]
    OffsetRange(String),
    #[error("invalid memory operand `{0}` (expected [%rN+off])")]
    BadMemory(String),
    #[error("invalid label name `{0}`")]
    BadLabel(String),
    #[error("invalid call mode `{0}` (expected helper, local or runtime)")]
    BadCallMode(String),
    #[error("label `{label}` is already defined on line {first_line}")]
    DuplicateLabel { label: String, first_line: usize },
    #[error("undefined label `{0}`")]
    UnknownLabel(String),
    #[error("label `{label}` is {distance} slots away, beyond a 16-bit jump offset")]
    JumpRange { label: String, distance: i64 },
}

/// An assembly error with the 1-based line number and the line's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{text}`: {kind}")]
pub struct AsmError {
    pub line: usize,
    pub text: String,
    pub kind: AsmErrorKind,
}

/// Assembles a program. Each `lddw` yields two slots.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    struct Pending {
        slot: usize,
        line: usize,
        fixup: encode::Fixup,
    }
    let mut out: Vec<Insn> = Vec::new();
    // label -> (slot, line it was defined on)
    let mut labels: HashMap<String, (usize, usize)> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut seen_exit = false;
    let lines: Vec<&str> = src.lines().collect();
    let err = |line: usize, kind: AsmErrorKind| AsmError {
        line,
        text: lines[line - 1].trim().to_string(),
        kind,
    };

    for (idx, text) in lines.iter().enumerate() {
        let line_no = idx + 1;
        let Some(line) = lexer::lex_line(text).map_err(|k| err(line_no, k))? else {
            continue;
        };
        if let Some(label) = line.label {
            if let Some(&(_, first_line)) = labels.get(&label) {
                return Err(err(line_no, AsmErrorKind::DuplicateLabel { label, first_line }));
            }
            labels.insert(label, (out.len(), line_no));
        }
        let Some(mnemonic) = line.mnemonic else { continue };
        if mnemonic == "exit" && !seen_exit {
            // bpf_conformance overwrites any earlier `exit` label here.
            labels.insert("exit".to_string(), (out.len(), line_no));
            seen_exit = true;
        }
        let enc = encode::encode(&mnemonic, &line.operands).map_err(|k| err(line_no, k))?;
        if let Some(fixup) = enc.fixup {
            pending.push(Pending { slot: out.len(), line: line_no, fixup });
        }
        out.extend(enc.slots);
    }

    for p in pending {
        let &(target, _) = labels
            .get(&p.fixup.label)
            .ok_or_else(|| err(p.line, AsmErrorKind::UnknownLabel(p.fixup.label.clone())))?;
        let distance = target as i64 - p.slot as i64 - 1;
        let insn = &mut out[p.slot];
        match p.fixup.field {
            FixupField::Off => {
                insn.off = i16::try_from(distance).map_err(|_| {
                    err(p.line, AsmErrorKind::JumpRange { label: p.fixup.label.clone(), distance })
                })?
            }
            // The imm field holds any distance a program can have (MAX_INSNS).
            FixupField::Imm => insn.imm = distance as i32,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
