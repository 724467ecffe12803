//! Side-by-side hexdump of two frames with differing bytes marked.

use std::fmt::Write;

/// Rows of 16 bytes; a `^^` under every byte that differs.
pub fn render(a_name: &str, a: &[u8], b_name: &str, b: &[u8]) -> String {
    let mut out = String::new();
    let n = a.len().max(b.len());
    let _ = writeln!(out, "    lengths: {a_name} {} bytes, {b_name} {} bytes", a.len(), b.len());
    for row in (0..n).step_by(16) {
        let end = (row + 16).min(n);
        if (row..end).all(|i| a.get(i) == b.get(i)) {
            continue;
        }
        let line = |name: &str, d: &[u8]| {
            let mut s = format!("    {name:>6} {row:04x}:");
            for i in row..end {
                match d.get(i) {
                    Some(x) => {
                        let _ = write!(s, " {x:02x}");
                    }
                    None => s.push_str(" --"),
                }
            }
            s
        };
        let _ = writeln!(out, "{}", line(a_name, a));
        let _ = writeln!(out, "{}", line(b_name, b));
        let mut marks = format!("    {:>6}      ", "");
        for i in row..end {
            marks.push_str(if a.get(i) == b.get(i) { "   " } else { " ^^" });
        }
        let _ = writeln!(out, "{}", marks.trim_end());
    }
    out
}
