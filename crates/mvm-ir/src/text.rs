//! Showing untrusted text (file names, declaration strings, guest output) on
//! a terminal or in a log. A raw newline could forge a line of output; an
//! ESC sequence could rewrite the screen; a bidirectional override could
//! make a name read as another. Escaping keeps every such character visible.

use std::borrow::Cow;

/// `s` with control characters, backslash and the invisible direction and
/// width marks written as escapes: `\n`, `\r`, `\t`, `\\`, `\x1b` for the
/// rest of C0 and DEL, `\u{202e}` for C1 and the marks. Text without any of
/// them is returned as is. The result holds no control character, and two
/// different inputs never give the same output.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`escape_control`] for multi-line text (logs, console output):
/// newline and tab stay as they are, everything else is escaped the same.
pub fn escape_control_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && c != '\t' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (j, part) in line.split('\t').enumerate() {
            if j > 0 {
                out.push('\t');
            }
            out.push_str(&escape_control(part));
        }
    }
    Cow::Owned(out)
}

/// The last line of defence before a terminal: control characters but
/// newline and tab, and the invisible marks, escaped; backslashes kept (so
/// text escaped earlier reads the same).
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_invisible_mark(c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            if (c as u32) < 0x80 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\' || is_invisible_mark(c)
}

/// Bidirectional embeddings, overrides and isolates (the "Trojan Source"
/// characters), the direction marks, zero-width characters and the BOM.
fn is_invisible_mark(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(escape_control("app/main.py é"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_and_marks_are_escaped() {
        assert_eq!(
            escape_control("a\nb\r\tc\u{1b}[2J\u{7f}\u{85}\u{202e}d\\"),
            "a\\nb\\r\\tc\\x1b[2J\\x7f\\u{85}\\u{202e}d\\\\"
        );
    }

    #[test]
    fn output_has_no_control_character_and_stays_distinct() {
        let literal = "a\\x1b";
        let real = "a\u{1b}";
        assert_ne!(escape_control(literal), escape_control(real));
        for s in [literal, real, "\u{0}\u{9f}\u{2066}"] {
            assert!(
                !escape_control(s).chars().any(needs_escape_but_backslash),
                "{s:?}"
            );
        }
    }

    #[test]
    fn lines_keep_newlines_and_tabs() {
        assert_eq!(
            escape_control_lines("ok\tx\n\u{1b}]0;t\u{7}\r\n"),
            "ok\tx\n\\x1b]0;t\\x07\\r\n"
        );
        assert!(matches!(escape_control_lines("a\n\tb c"), Cow::Borrowed(_)));
    }

    #[test]
    fn for_terminal_keeps_backslashes_and_lines() {
        assert_eq!(
            for_terminal("hook said:\n\u{1b}]52;c;x\u{7} a\\b \u{202e}"),
            "hook said:\n\\x1b]52;c;x\\x07 a\\b \\u{202e}"
        );
    }

    fn needs_escape_but_backslash(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }
}
