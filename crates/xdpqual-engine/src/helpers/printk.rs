//! The subset of `bpf_trace_printk` formatting the kernel accepts.
//!
//! `bpf_bprintf_prepare` (kernel/bpf/helpers.c) allows at most three
//! conversions, the flags and width of `%[-+ 0#]*[0-9]*`, the length
//! modifiers `l`/`ll` (and `h`/`hh`), and the conversions d i u x X o c s p %.
//! Anything else makes the helper return -EINVAL without printing.

pub enum Arg {
    Int(u64),
    /// A `%s` argument, already read from the program's memory.
    Str(String),
}

/// `MAX_BPRINTF_BUF` (include/linux/bpf.h): `bpf_trace_printk`
/// (kernel/trace/bpf_trace.c) formats with `bstr_printf(data.buf,
/// MAX_BPRINTF_BUF, ...)`, so a line holds at most 1023 bytes and a NUL.
pub const MAX_BPRINTF_BUF: usize = 1024;

/// `FIELD_WIDTH_MAX` (lib/vsprintf.c): vsprintf keeps a field width in 24
/// signed bits and clamps larger ones. Widths beyond `int` range wrap in
/// the kernel's `skip_atoi` first; that wrap is not reproduced.
pub const FIELD_WIDTH_MAX: usize = (1 << 23) - 1;

/// A formatted line: the text as the kernel's buffer keeps it, and the
/// length `bstr_printf` returns (what the whole line would have taken,
/// like `vsnprintf`), which the helper returns.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub len: u64,
}

/// Output that keeps the first `MAX_BPRINTF_BUF - 1` bytes and counts the
/// rest, so a huge width never allocates.
struct Out {
    text: String,
    len: u64,
}

impl Out {
    const KEEP: usize = MAX_BPRINTF_BUF - 1;

    fn push(&mut self, c: char) {
        self.repeat(c, 1);
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push(c);
        }
    }

    fn repeat(&mut self, c: char, n: usize) {
        // Every char the formatter writes is ASCII except `%s` bytes that
        // went through from_utf8_lossy; a char is kept only if all of it fits.
        let room = Self::KEEP - self.text.len();
        let fit = (room / c.len_utf8()).min(n);
        self.text.extend(std::iter::repeat_n(c, fit));
        self.len += (n * c.len_utf8()) as u64;
    }
}

/// Formats `fmt` (without its NUL). `fetch_str(i)` reads argument `i` as a C
/// string for `%s`. Returns `None` when the kernel would refuse the format.
pub fn format(
    fmt: &[u8],
    args: [u64; 3],
    mut fetch_str: impl FnMut(u64) -> Option<String>,
) -> Option<Line> {
    let mut out = Out { text: String::new(), len: 0 };
    let mut i = 0;
    let mut n = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            if !(c.is_ascii_graphic() || c.is_ascii_whitespace()) {
                return None;
            }
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut left = false;
        let mut zero = false;
        let mut plus = false;
        let mut space = false;
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(&d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            width = width.saturating_mul(10).saturating_add((d - b'0') as usize);
            i += 1;
        }
        let width = width.min(FIELD_WIDTH_MAX);
        let mut bits = 32;
        while let Some(&m) = fmt.get(i) {
            match m {
                b'l' => bits = 64,
                b'h' => bits = bits.min(16),
                _ => break,
            }
            i += 1;
        }
        let conv = *fmt.get(i)?;
        i += 1;
        if n >= 3 {
            return None;
        }
        let a = args[n];
        n += 1;
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let body = match conv {
            b'd' | b'i' => {
                let v = if bits == 64 { a as i64 } else { ((a & mask) as u32 as i32) as i64 };
                let s = v.to_string();
                if v >= 0 && plus {
                    format!("+{s}")
                } else if v >= 0 && space {
                    format!(" {s}")
                } else {
                    s
                }
            }
            b'u' => (a & mask).to_string(),
            b'x' => format!("{:x}", a & mask),
            b'X' => format!("{:X}", a & mask),
            b'o' => format!("{:o}", a & mask),
            b'c' => ((a & 0xff) as u8 as char).to_string(),
            b'p' => format!("0x{a:x}"),
            b's' => fetch_str(a)?,
            _ => return None,
        };
        let pad = width.saturating_sub(body.len());
        if left {
            out.push_str(&body);
            out.repeat(' ', pad);
        } else if zero && conv != b's' && conv != b'c' {
            let (sign, digits) =
                if body.starts_with(['-', '+', ' ']) { body.split_at(1) } else { ("", &body[..]) };
            out.push_str(sign);
            out.repeat('0', pad);
            out.push_str(digits);
        } else {
            out.repeat(' ', pad);
            out.push_str(&body);
        }
    }
    Some(Line { text: out.text, len: out.len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formats() {
        let f = |s: &str, a: [u64; 3]| {
            format(s.as_bytes(), a, |_| Some("str".into())).map(|l| {
                assert_eq!(l.len, l.text.len() as u64, "short lines are kept whole");
                l.text
            })
        };
        assert_eq!(f("port %d len %u\n", [80, 60, 0]).unwrap(), "port 80 len 60\n");
        assert_eq!(f("%x %lx", [0x1_0000_0001, 0x1_0000_0001, 0]).unwrap(), "1 100000001");
        assert_eq!(f("%d", [-5i64 as u64, 0, 0]).unwrap(), "-5");
        assert_eq!(f("%05d|%-3d|", [42, 7, 0]).unwrap(), "00042|7  |");
        assert_eq!(f("%s!", [0, 0, 0]).unwrap(), "str!");
        assert!(f("%d %d %d %d", [0; 3]).is_none());
        assert!(f("%q", [0; 3]).is_none());
    }

    /// The kernel's line buffer is MAX_BPRINTF_BUF (1024) bytes with the
    /// NUL, so the text is 1023 bytes; the returned length is what the
    /// whole line needs (bstr_printf, like vsnprintf), the width clamped
    /// to FIELD_WIDTH_MAX ((1 << 23) - 1).
    #[test]
    fn huge_widths_are_cut_at_the_kernel_buffer_without_allocating_them() {
        let l = format(b"%99999999999d", [7, 0, 0], |_| None).unwrap();
        assert_eq!(l.text.len(), 1023);
        assert!(l.text.bytes().all(|b| b == b' '));
        assert_eq!(l.len, (1 << 23) - 1);
        let l = format(b"ab%-2000dcd", [5, 0, 0], |_| None).unwrap();
        assert_eq!(l.text.len(), 1023);
        assert!(l.text.starts_with("ab5 "));
        assert_eq!(l.len, 2 + 2000 + 2);
        let l = format(b"x%01500u", [42, 0, 0], |_| None).unwrap();
        assert_eq!(l.len, 1501);
        assert!(l.text.starts_with("x000"));
    }
}
