//! The one place text from outside (program, function, map and file names,
//! capture paths, messages a program caused: printk output, events, errors)
//! is made safe for where it lands: XML (junit.xml), Markdown (summary.md),
//! HTML (the dashboard) and the terminal. Every renderer calls these; none
//! has its own.
//!
//! Characters a format cannot carry are not dropped silently: they become a
//! visible `\xNN` / `\u{NNNN}` escape, so a reader still sees that the name
//! held a control character and which one.

use std::fmt::Write as _;

/// Whether XML 1.0 allows `c` in a document at all (the `Char` production,
/// XML 1.0 fifth edition §2.2): tab, LF, CR, U+0020..U+D7FF,
/// U+E000..U+FFFD and U+10000..U+10FFFF. Surrogates cannot occur in a Rust
/// `str`, so only C0 controls, U+FFFE and U+FFFF are left out here.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A visible stand-in for a character that cannot be written as is.
fn visible(out: &mut String, c: char) {
    let n = c as u32;
    if n <= 0xff {
        let _ = write!(out, "\\x{n:02x}");
    } else {
        let _ = write!(out, "\\u{{{n:04x}}}");
    }
}

/// Whether `c` is a control character a terminal acts on: C0 (including
/// ESC), DEL and C1 (U+0080..U+009F, which some terminals take as CSI and
/// friends), plus the Unicode line and paragraph separators and the
/// bidirectional overrides that reorder what the reader sees.
fn terminal_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text content of an XML element: `&`, `<`, `>` as entities; characters
/// XML forbids (and CR, which a parser would turn into LF) as visible
/// `\xNN` escapes.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if xml_allowed(c) => out.push(c),
            c => visible(&mut out, c),
        }
    }
    out
}

/// An XML attribute value in double or single quotes: as [`xml_text`],
/// plus both quotes, and tab, LF and CR as character references (a parser
/// would normalise them to spaces otherwise).
pub fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if xml_allowed(c) => out.push(c),
            c => visible(&mut out, c),
        }
    }
    out
}

/// HTML text and attribute values (quoted). Control characters, which
/// HTML forbids in a document (WHATWG HTML §13.2.5 "control-character-in-
/// input-stream"), become visible escapes.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if terminal_control(c) || !xml_allowed(c) => visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Inline Markdown (GitHub-flavoured), safe in a table cell, a list item
/// or a heading: one line whatever the input (CR and LF become visible
/// `\r` `\n`), no HTML (`<` `>` `&` as entities), and every ASCII
/// character that starts or ends inline structure backslash-escaped, which
/// CommonMark allows for any ASCII punctuation (spec §2.4): emphasis and
/// strikethrough (`*` `_` `~`), code spans (`` ` ``), links, images and
/// footnotes (`[` `]` `!`), table cells (`|`), headings (`#`), math (`$`),
/// mentions (`@`) and escapes themselves (`\`). Characters that start
/// structure only at the start of a line (`-` `+` `.` `=` digits `>`) need
/// nothing more: the text can never start a line, since no CR or LF gets
/// through and every caller writes it after a prefix (`| `, `- **`, `## `).
/// Other control characters become `\xNN`.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("\\\\r"),
            '\n' => out.push_str("\\\\n"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '|' | '~' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c if terminal_control(c) || !xml_allowed(c) => {
                // A backslash before the visible escape would itself be
                // taken as escaping the next character: double it.
                let mut v = String::new();
                visible(&mut v, c);
                out.push_str(&v.replacen('\\', "\\\\", 1));
            }
            c => out.push(c),
        }
    }
    out
}

/// Text for the terminal: every control character a terminal would act on
/// (ESC and so every ANSI sequence, CR, backspace, BEL, DEL, C1 controls,
/// bidi overrides) becomes a visible escape such as `\x1b`. Tab and LF are
/// kept only with `keep_newlines` (multi-line messages); names never need
/// them.
pub fn terminal_with(s: &str, keep_newlines: bool) -> String {
    if !s.chars().any(terminal_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\t' if keep_newlines => out.push(c),
            c if terminal_control(c) => visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// A name or one-line text for the terminal: see [`terminal_with`].
pub fn terminal(s: &str) -> String {
    terminal_with(s, false)
}

/// A whole multi-line block for the terminal (a table, an error
/// paragraph): keeps LF and tab, escapes every other control character.
pub fn terminal_block(s: &str) -> String {
    terminal_with(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_drops_what_xml_forbids() {
        assert_eq!(xml_text("a\u{1}b\u{1b}[2J\u{fffe}"), "a\\x01b\\x1b[2J\\u{fffe}");
        assert_eq!(xml_attr("x\"'\r\n\t<&>"), "x&quot;&apos;&#13;&#10;&#9;&lt;&amp;&gt;");
        assert_eq!(xml_text("é ok\u{10000}"), "é ok\u{10000}");
    }

    #[test]
    fn markdown_is_one_inert_line() {
        let m = markdown("a\r\n# heading | `x` *y* [l](u) <b>");
        assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
        assert_eq!(m, "a\\\\r\\\\n\\# heading \\| \\`x\\` \\*y\\* \\[l\\](u) &lt;b&gt;");
        assert_eq!(markdown("\u{7}"), "\\\\x07");
    }

    #[test]
    fn terminal_shows_control_characters() {
        assert_eq!(terminal("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal("\u{9b}31m\u{7f}\r"), "\\x9b31m\\x7f\\x0d");
        assert_eq!(terminal("x\ny"), "x\\x0ay");
        assert_eq!(terminal_block("x\ny\u{1b}"), "x\ny\\x1b");
        assert_eq!(terminal("plain"), "plain");
    }

    #[test]
    fn html_escapes_markup_and_controls() {
        assert_eq!(html("<a href='x'>&\u{1b}"), "&lt;a href=&#39;x&#39;&gt;&amp;\\x1b");
    }
}
