//! Text that came from outside the tool, made safe to print.
//!
//! helm's stderr, a registry's error body, a chart's NOTES and every field of the ledger
//! (a ConfigMap anyone with write access to the namespace can edit) may hold terminal
//! escape sequences: colour, cursor moves, a title change, or a carriage return that
//! overwrites the line an operator is reading. Before such text reaches a terminal or a
//! log, control characters are shown as escapes (`\x1b`, `\r`), so what is printed is
//! what was received, and nothing is executed by the terminal.

use std::borrow::Cow;

/// Whether `c` would be acted on by a terminal rather than shown: C0 and C1 controls and
/// DEL (but not newline and tab), and the Unicode bidirectional overrides and isolates,
/// which can make text read differently from what it is.
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every hazardous character written as an escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_hazard(c) {
            out.push(c);
        } else if c == '\r' {
            out.push_str("\\r");
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// [`for_terminal`] on one line: newlines and tabs escaped too, for fields that must stay
/// on the line they are printed on (a lock holder, a command).
pub fn one_line(text: &str) -> String {
    for_terminal(text).replace('\n', "\\n").replace('\t', "\\t")
}

/// At most `max` bytes of `text`, cut at a character boundary, with a note of what was
/// dropped: ledger messages are bounded so the record stays small.
pub fn truncated(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} more bytes)", &text[..end], text.len() - end))
}

/// An argv for display only: quoted where a shell would need it, so it can be read and
/// copied. The tool itself never passes an argv through a shell.
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:{}@,+".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1 hop`, `3 hops`: the count and the noun, singular or plural.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_executed() {
        assert_eq!(for_terminal("plain text\nline two\tcol"), "plain text\nline two\tcol");
        assert_eq!(for_terminal("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(for_terminal("ok\rEVIL"), "ok\\rEVIL");
        assert_eq!(for_terminal("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(for_terminal("\u{9b}31m"), "\\x9b31m");
        assert_eq!(for_terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(for_terminal("\x7f"), "\\x7f");
        assert!(matches!(for_terminal("nothing to do"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_keeps_fields_on_their_line() {
        assert_eq!(one_line("a\nb\tc\x1b"), "a\\nb\\tc\\x1b");
    }

    #[test]
    fn truncation_keeps_utf8_whole() {
        assert_eq!(truncated("short", 10), "short");
        let cut = truncated("ééééé", 3);
        assert!(cut.starts_with('é') && cut.contains("more bytes"), "{cut}");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "hop", "hops"), "1 hop");
        assert_eq!(count(3, "hop", "hops"), "3 hops");
        assert_eq!(count(0, "minor", "minors"), "0 minors");
    }
}
