//! BTF line info to [`LineTable`]s.
//!
//! aya-obj hands over `bpf_line_info` records whose file and line text are
//! offsets into the `.BTF` string section, and keeps its string lookup
//! private, so the string section is located here from the `.BTF` header
//! (kernel Documentation/bpf/btf.rst, "BTF Type and String Encoding").

use crate::{LineTable, SourceLine};
use aya_obj::generated::bpf_line_info;

/// `BTF_MAGIC`, include/uapi/linux/btf.h.
const BTF_MAGIC: u16 = 0xeb9f;

/// The `.BTF` string section.
pub(crate) struct BtfStrings<'a> {
    strings: &'a [u8],
}

impl<'a> BtfStrings<'a> {
    /// Reads `struct btf_header` (magic u16, version u8, flags u8, hdr_len,
    /// type_off, type_len, str_off, str_len: all u32, little-endian here
    /// because big-endian objects were rewritten little-endian, swap.rs). The string section
    /// starts `hdr_len + str_off` bytes into `.BTF`.
    pub(crate) fn parse(btf: &'a [u8]) -> Result<BtfStrings<'a>, String> {
        let u32_at = |o: usize| {
            btf.get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| {
                    format!(".BTF section of {} bytes is too short for its header", btf.len())
                })
        };
        let magic = btf.get(0..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if magic != Some(BTF_MAGIC) {
            return Err(format!(".BTF section does not start with the BTF magic {BTF_MAGIC:#06x}"));
        }
        let hdr_len = u32_at(4)? as usize;
        let str_off = u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let start = hdr_len.checked_add(str_off);
        let end = start.and_then(|s| s.checked_add(str_len));
        match (start, end) {
            (Some(s), Some(e)) if e <= btf.len() => Ok(BtfStrings { strings: &btf[s..e] }),
            _ => Err(format!(
                ".BTF string section (offset {str_off}, {str_len} bytes after a {hdr_len}-byte header) \
                 runs past the {}-byte section",
                btf.len()
            )),
        }
    }

    /// The NUL-terminated string at `off`, or `None` when `off` is out of range.
    pub(crate) fn at(&self, off: u32) -> Option<String> {
        let rest = self.strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// One line-info record turned into a source position. `line_col` packs
/// the line in its upper 22 bits and the column in the lower 10
/// (`BPF_LINE_INFO_LINE_NUM` / `BPF_LINE_INFO_LINE_COL`, uapi bpf.h).
pub(crate) fn source_line(strings: &BtfStrings<'_>, li: &bpf_line_info) -> SourceLine {
    SourceLine {
        file: strings.at(li.file_name_off).unwrap_or_else(|| "?".into()),
        line: li.line_col >> 10,
        column: li.line_col & 0x3ff,
        text: strings.at(li.line_off).unwrap_or_default().trim().to_string(),
    }
}

/// Builds a table from `(linked instruction index, position)` pairs in any
/// order. Where two records claim one instruction the first is kept.
pub(crate) fn table(mut entries: Vec<(usize, SourceLine)>) -> LineTable {
    entries.sort_by_key(|(pc, _)| *pc);
    entries.dedup_by_key(|(pc, _)| *pc);
    LineTable { entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btf_with_strings(strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.push(1); // version
        b.push(0); // flags
        b.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
        b.extend_from_slice(&0u32.to_le_bytes()); // type_off
        b.extend_from_slice(&4u32.to_le_bytes()); // type_len
        b.extend_from_slice(&4u32.to_le_bytes()); // str_off
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0xaa; 4]); // a fake type section
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn strings_are_found_after_header_and_types() {
        let btf = btf_with_strings(b"\0a.c\0  return 0;\0");
        let s = BtfStrings::parse(&btf).unwrap();
        assert_eq!(s.at(0).as_deref(), Some(""));
        assert_eq!(s.at(1).as_deref(), Some("a.c"));
        let li =
            bpf_line_info { insn_off: 0, file_name_off: 1, line_off: 5, line_col: (42 << 10) | 9 };
        let l = source_line(&s, &li);
        assert_eq!(
            (l.file.as_str(), l.line, l.column, l.text.as_str()),
            ("a.c", 42, 9, "return 0;")
        );
        assert_eq!(s.at(1000), None);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert!(BtfStrings::parse(b"\x9f\xeb").is_err());
        assert!(BtfStrings::parse(&[0u8; 32]).is_err());
        let mut btf = btf_with_strings(b"\0x\0");
        btf[20] = 0xff; // str_len far past the end
        assert!(BtfStrings::parse(&btf).is_err());
    }
}
