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

/// Formats `fmt` (without its NUL). `fetch_str(i)` reads argument `i` as a C
/// string for `%s`. Returns `None` when the kernel would refuse the format.
pub fn format(
    fmt: &[u8],
    args: [u64; 3],
    mut fetch_str: impl FnMut(u64) -> Option<String>,
) -> Option<String> {
    let mut out = String::new();
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
            width = width * 10 + (d - b'0') as usize;
            i += 1;
        }
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
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && conv != b's' && conv != b'c' {
            let (sign, digits) =
                if body.starts_with(['-', '+', ' ']) { body.split_at(1) } else { ("", &body[..]) };
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formats() {
        let f = |s: &str, a: [u64; 3]| format(s.as_bytes(), a, |_| Some("str".into()));
        assert_eq!(f("port %d len %u\n", [80, 60, 0]).unwrap(), "port 80 len 60\n");
        assert_eq!(f("%x %lx", [0x1_0000_0001, 0x1_0000_0001, 0]).unwrap(), "1 100000001");
        assert_eq!(f("%d", [-5i64 as u64, 0, 0]).unwrap(), "-5");
        assert_eq!(f("%05d|%-3d|", [42, 7, 0]).unwrap(), "00042|7  |");
        assert_eq!(f("%s!", [0, 0, 0]).unwrap(), "str!");
        assert!(f("%d %d %d %d", [0; 3]).is_none());
        assert!(f("%q", [0; 3]).is_none());
    }
}
