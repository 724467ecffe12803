//! Splits one source line into an optional label, a mnemonic and operands.
//!
//! The syntax is that of bpf_conformance's assembler (lib/src/bpf_assembler.cc
//! in github.com/Alan-Jowett/bpf_conformance): whitespace-separated tokens,
//! a trailing comma after each operand, `%rN` registers, `[%rN+off]` memory
//! operands and `name:` labels. `#` starts a comment anywhere on a line (the
//! suite's test parser strips it before assembling, bpf_test_parser.cc).

use super::AsmErrorKind;

/// One operand, classified by its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Operand {
    /// `%rN`.
    Reg(u8),
    /// `[%rN]`, `[%rN+off]`, `[%rN-off]`.
    Mem { base: u8, off: i16 },
    /// A number, a label, a jump offset (`+3`) or a keyword (`fetch`, `local`).
    Word(String),
}

/// What a non-empty line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub label: Option<String>,
    /// `None` for a line that holds only a label.
    pub mnemonic: Option<String>,
    pub operands: Vec<Operand>,
}

/// Removes a `#` comment and surrounding whitespace.
pub fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => line[..i].trim(),
        None => line.trim(),
    }
}

/// Lexes one line; `Ok(None)` for a blank or comment-only line.
pub(super) fn lex_line(line: &str) -> Result<Option<Line>, AsmErrorKind> {
    let code = strip_comment(line);
    if code.is_empty() {
        return Ok(None);
    }
    let tokens = tokenize(code)?;
    let mut rest = tokens.as_slice();
    let mut label = None;
    if let Some(first) = rest.first() {
        if let Some(name) = first.strip_suffix(':') {
            if !is_label_name(name) {
                return Err(AsmErrorKind::BadLabel(name.to_string()));
            }
            label = Some(name.to_string());
            rest = &rest[1..];
        }
    }
    let Some((mnemonic, operands)) = rest.split_first() else {
        return Ok(Some(Line { label, mnemonic: None, operands: Vec::new() }));
    };
    let operands = operands.iter().map(|t| classify(t)).collect::<Result<_, _>>()?;
    Ok(Some(Line { label, mnemonic: Some(mnemonic.clone()), operands }))
}

/// Splits on whitespace and commas, keeping `[...]` together even when it
/// contains spaces (`[%r10 - 8]`).
fn tokenize(code: &str) -> Result<Vec<String>, AsmErrorKind> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_bracket = false;
    for c in code.chars() {
        match c {
            '[' if !in_bracket => {
                in_bracket = true;
                cur.push(c);
            }
            ']' if in_bracket => {
                in_bracket = false;
                cur.push(c);
            }
            c if in_bracket => {
                if !c.is_whitespace() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() || c == ',' => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if in_bracket {
        return Err(AsmErrorKind::BadMemory(cur));
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    Ok(tokens)
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn classify(token: &str) -> Result<Operand, AsmErrorKind> {
    if token.starts_with('%') {
        return parse_reg(token).map(Operand::Reg);
    }
    if let Some(inner) = token.strip_prefix('[') {
        let inner =
            inner.strip_suffix(']').ok_or_else(|| AsmErrorKind::BadMemory(token.to_string()))?;
        let split = inner.find(['+', '-']).unwrap_or(inner.len());
        let base = parse_reg(&inner[..split])?;
        let off = if split == inner.len() { 0 } else { parse_offset(&inner[split..])? };
        return Ok(Operand::Mem { base, off });
    }
    Ok(Operand::Word(token.to_string()))
}

/// `%r0` to `%r10`. bpf_conformance also accepts `%r11`..`%r15` so that its
/// negative tests can encode invalid registers; so do we, because the field
/// is 4 bits wide and a backend must be able to see (and refuse) them.
pub(super) fn parse_reg(token: &str) -> Result<u8, AsmErrorKind> {
    token
        .strip_prefix("%r")
        .and_then(|n| if n.len() <= 2 && !n.starts_with('+') { n.parse::<u8>().ok() } else { None })
        .filter(|&n| n <= 15)
        .ok_or_else(|| AsmErrorKind::BadRegister(token.to_string()))
}

/// Sign, then decimal or `0x` hex digits. Returns the magnitude with sign
/// applied in i128 so every caller can range-check without overflow.
pub fn parse_int(token: &str) -> Result<i128, AsmErrorKind> {
    let bad = || AsmErrorKind::BadNumber(token.to_string());
    let (neg, digits) = match token.as_bytes().first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let mag = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return Err(bad());
        }
        u64::from_str_radix(hex, 16).map_err(|_| bad())?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse::<u64>().map_err(|_| bad())?
    };
    Ok(if neg { -(mag as i128) } else { mag as i128 })
}

/// A 32-bit immediate: signed decimal in i32 range, or hex up to 0xffffffff
/// (taken as the bit pattern), as bpf_conformance's `_decode_imm32`.
pub fn parse_imm32(token: &str) -> Result<i32, AsmErrorKind> {
    let v = parse_int(token)?;
    let is_hex = token.contains("0x") || token.contains("0X");
    if is_hex && (0..=u32::MAX as i128).contains(&v) {
        return Ok(v as u32 as i32);
    }
    i32::try_from(v).map_err(|_| AsmErrorKind::ImmRange(token.to_string()))
}

/// A 16-bit offset: signed decimal, or hex up to 0xffff as the bit pattern.
pub(super) fn parse_offset(token: &str) -> Result<i16, AsmErrorKind> {
    let v = parse_int(token)?;
    let is_hex = token.contains("0x") || token.contains("0X");
    if is_hex && (0..=u16::MAX as i128).contains(&v) {
        return Ok(v as u16 as i16);
    }
    i16::try_from(v).map_err(|_| AsmErrorKind::OffsetRange(token.to_string()))
}

/// A 64-bit immediate for `lddw`: hex is the unsigned bit pattern, decimal
/// may be negative (two's complement) or up to u64::MAX.
pub(super) fn parse_imm64(token: &str) -> Result<u64, AsmErrorKind> {
    let v = parse_int(token)?;
    if (i64::MIN as i128..=u64::MAX as i128).contains(&v) {
        Ok(v as u64)
    } else {
        Err(AsmErrorKind::ImmRange(token.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_and_comments() {
        let l = lex_line("  stxdw [%r10 - 8], %r1 # spill").unwrap().unwrap();
        assert_eq!(l.mnemonic.as_deref(), Some("stxdw"));
        assert_eq!(l.operands, vec![Operand::Mem { base: 10, off: -8 }, Operand::Reg(1)]);
        assert_eq!(lex_line("# only a comment").unwrap(), None);
        assert_eq!(lex_line("   ").unwrap(), None);
        let l = lex_line("L1:").unwrap().unwrap();
        assert_eq!((l.label.as_deref(), l.mnemonic), (Some("L1"), None));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_imm32("-3"), Ok(-3));
        assert_eq!(parse_imm32("0xffffffff"), Ok(-1));
        assert_eq!(parse_imm32("0x100000000"), Err(AsmErrorKind::ImmRange("0x100000000".into())));
        assert_eq!(parse_imm32("2147483648"), Err(AsmErrorKind::ImmRange("2147483648".into())));
        assert_eq!(parse_offset("+0x7fff"), Ok(0x7fff));
        assert_eq!(parse_offset("-32769"), Err(AsmErrorKind::OffsetRange("-32769".into())));
        assert_eq!(parse_imm64("-1"), Ok(u64::MAX));
        assert_eq!(parse_imm64("0x8000000000000000"), Ok(1 << 63));
        assert!(parse_int("12a").is_err());
        assert!(parse_int("0x").is_err());
    }

    #[test]
    fn registers() {
        assert_eq!(parse_reg("%r10"), Ok(10));
        assert_eq!(parse_reg("%r15"), Ok(15));
        assert!(parse_reg("%r16").is_err());
        assert!(parse_reg("r1").is_err());
        assert!(parse_reg("%r+1").is_err());
    }
}
