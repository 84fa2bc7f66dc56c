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

/// A JSON document made safe to print: the characters a terminal would act on that JSON
/// leaves as they are (DEL, C1 controls, bidirectional overrides; serde escapes the C0
/// controls itself) are written as `\uXXXX` escapes. Outside strings a JSON document
/// holds none of them, so the document still means exactly what it meant: a program
/// reading it gets the text as recorded, and a terminal showing it obeys nothing.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_hazard) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_hazard(c) {
            // Every hazard is in the Basic Multilingual Plane: one escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
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
            // Braces are plain to a shell unless they could expand (`{a,b}`, `{1..3}`).
            let expands = a.contains('{') && (a.contains(',') || a.contains(".."));
            if !a.is_empty() && !expands && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:{}@,+".contains(c)) {
                a.clone()
            } else {
                shell_quoted(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` as one POSIX shell word in single quotes (a `'` inside written `'\''`), for a
/// hint that hands the operator a command to paste. Nothing in it is expanded by the
/// shell: text read from the ledger (a ConfigMap anyone who may edit ConfigMaps in the
/// namespace can rewrite) cannot close the quotes and run `$(…)` on the operator's machine.
pub fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `1 hop`, `3 hops`: the count and the noun, singular or plural.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// The columns `text` takes on a terminal. The tool's own colour codes (`ESC [ … m`) take
/// none: text from outside never holds an escape character by the time it is printed
/// ([`for_terminal`]), so every one met here was written by the tool.
pub fn width(text: &str) -> usize {
    use unicode_width::UnicodeWidthChar;
    visible_chars(text).map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` without the tool's colour codes: what a log of it reads.
pub fn without_colour(text: &str) -> String {
    visible_chars(text).collect()
}

/// The characters of `text` outside its CSI sequences (`ESC [`, then up to the first
/// byte in `@`..`~`: `m` for colour).
fn visible_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let mut chars = text.chars();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            if c != '\x1b' {
                return Some(c);
            }
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        }
    })
}

/// One line broken between words so that each piece fits in `width` columns; the pieces
/// after the first start with `indent` spaces (a hanging indent, at most half the width).
///
/// Only spaces separate words: a path, a URL or an argument is never cut, and one wider
/// than the room stays whole on a line of its own (the terminal folds it; a copy and paste
/// still gets it entire). A line that fits is returned as it is, spacing included, so
/// wrapping what was wrapped changes nothing. Words are never dropped or reordered.
pub fn wrap(line: &str, width: usize, indent: usize) -> Vec<String> {
    if self::width(line) <= width {
        return vec![line.to_string()];
    }
    let indent = " ".repeat(indent.min(width / 2));
    let body = line.trim_start_matches(' ');
    let mut current = line[..line.len() - body.len()].to_string();
    let mut has_word = false;
    let mut lines = Vec::new();
    for (gap, word) in words(body) {
        if !has_word {
            current.push_str(word);
            has_word = true;
        } else if self::width(&current) + gap.len() + self::width(word) <= width {
            current.push_str(gap);
            current.push_str(word);
        } else {
            lines.push(std::mem::replace(&mut current, format!("{indent}{word}")));
        }
    }
    lines.push(current);
    lines
}

/// The words of `text` (split at spaces), each with the run of spaces before it.
fn words(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let word_at = rest.find(|c| c != ' ')?;
        let (gap, after) = rest.split_at(word_at);
        let end = after.find(' ').unwrap_or(after.len());
        let (word, tail) = after.split_at(end);
        rest = tail;
        Some((gap, word))
    })
}

/// [`wrap`] on every line of `text`, each with the hanging indent its own shape asks for
/// ([`hanging_indent`]); without a width (a pipe, a log) the text is left as it is.
pub fn wrap_lines(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else { return text.to_string() };
    text.split('\n').map(|line| wrap(line, width, hanging_indent(line)).join("\n")).collect::<Vec<_>>().join("\n")
}

/// Where the continuation of a line starts: under the text of a list item (`  - text`,
/// `  3. text`), else two columns in from the line's own indent.
pub fn hanging_indent(line: &str) -> usize {
    let body = line.trim_start_matches(' ');
    let lead = line.len() - body.len();
    if body.starts_with("- ") {
        return lead + 2;
    }
    let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 && body[digits..].starts_with(". ") {
        return lead + digits + 2;
    }
    lead + 2
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
    fn json_is_escaped_for_the_terminal_and_still_means_the_same() {
        let value = serde_json::json!({"message": "a\u{9b}31m\u{7f}b\u{202e}c\x1b[2J\n", "ok": "plain →"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_for_terminal(&text);
        assert!(!safe.chars().any(|c| c.is_control() && c != '\n'), "{safe}");
        assert!(safe.contains(r"a\u009b31m\u007fb\u202ec\u001b[2J\n"), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), value);
        assert!(matches!(json_for_terminal("{\"a\": \"→\"}"), Cow::Borrowed(_)));
    }

    #[test]
    fn an_argv_is_shown_as_a_shell_would_take_it() {
        let argv = |words: &[&str]| display_argv(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        assert_eq!(
            argv(&["kubectl", "get", "-o=jsonpath={.status.readyReplicas}"]),
            "kubectl get -o=jsonpath={.status.readyReplicas}"
        );
        assert_eq!(argv(&["-o", "go-template={{.status.phase}}"]), "-o go-template={{.status.phase}}");
        // Brace expansion would make two words (or a sequence) of these.
        assert_eq!(argv(&["{a,b}", "x{1..3}", "a,b"]), "'{a,b}' 'x{1..3}' a,b");
        assert_eq!(argv(&[r#"{"spec":{"replicas":0}}"#]), r#"'{"spec":{"replicas":0}}'"#);
        assert_eq!(argv(&["it's", ""]), r"'it'\''s' ''");
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
    fn colour_codes_take_no_columns() {
        assert_eq!(width("deploy 1.1.9: ok"), 16);
        assert_eq!(width("\x1b[1m\x1b[32mok\x1b[0m (0.9s)"), 9);
        assert_eq!(width("1.0.4 → 1.1.9"), 13);
        assert_eq!(width("版本"), 4);
    }

    #[test]
    fn wrapping_breaks_between_words_with_a_hanging_indent() {
        assert_eq!(wrap("short line", 80, 4), ["short line"]);
        assert_eq!(
            wrap("  - fast-path (--fast-path): 1 hop, downtime yes: 1.0.4 → 1.3.0 in one hop", 40, 4),
            ["  - fast-path (--fast-path): 1 hop,", "    downtime yes: 1.0.4 → 1.3.0 in one", "    hop"]
        );
        // A path wider than the room is kept whole, on a line of its own.
        let path = format!("/{}", "state/".repeat(20));
        let lines = wrap(&format!("backup of bsr: {path} done"), 80, 2);
        assert_eq!(lines, ["backup of bsr:".to_string(), format!("  {path}"), "  done".to_string()]);
        // Spacing inside a line that stays is kept (the plan's header has two spaces).
        assert_eq!(
            wrap("upgrade bsr 1.0.4 → 1.3.2  (policy bsr)", 30, 2),
            ["upgrade bsr 1.0.4 → 1.3.2", "  (policy bsr)"]
        );
        // Colour codes do not count against the width.
        let painted = "\x1b[1mhop\x1b[0m one two";
        assert_eq!(wrap(painted, 11, 0), [painted]);
    }

    #[test]
    fn the_hanging_indent_follows_the_lines_shape() {
        assert_eq!(hanging_indent("  - a bullet"), 4);
        assert_eq!(hanging_indent("  12. a step"), 6);
        assert_eq!(hanging_indent("  deploy 1.1.9: ok"), 4);
        assert_eq!(hanging_indent("cause: x"), 2);
        assert_eq!(hanging_indent("1.2 is deployed"), 2);
        assert_eq!(wrap_lines("a b c\nd", None), "a b c\nd");
        assert_eq!(wrap_lines("  - aaa bbb\n  1. ccc ddd", Some(10)), "  - aaa\n    bbb\n  1. ccc\n     ddd");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::{width, wrap};

        /// Lines of words (some long, some wide characters) with runs of spaces, and an
        /// optional leading indent.
        fn line() -> impl Strategy<Value = String> {
            let word = prop_oneof![
                "[a-z0-9./=:{}-]{1,12}",
                "[a-z/]{20,120}",
                "(→|版|é)[a-z]{0,3}",
                Just("\x1b[1mbold\x1b[0m".to_string()),
            ];
            (" {0,4}", prop::collection::vec((word, " {1,3}"), 0..30)).prop_map(|(lead, words)| {
                let mut s = lead;
                for (w, gap) in words {
                    s.push_str(&w);
                    s.push_str(&gap);
                }
                s.trim_end().to_string()
            })
        }

        proptest! {
            #[test]
            fn no_line_is_wider_than_the_width_unless_it_holds_one_word(text in line(), w in 20usize..160, indent in 0usize..12) {
                for piece in wrap(&text, w, indent) {
                    prop_assert!(width(&piece) <= w || piece.split_whitespace().count() == 1, "{piece:?} wider than {w}");
                }
            }

            #[test]
            fn wrapping_loses_no_word_and_keeps_their_order(text in line(), w in 20usize..160, indent in 0usize..12) {
                let pieces = wrap(&text, w, indent);
                let joined: Vec<&str> = pieces.iter().flat_map(|p| p.split_whitespace()).collect();
                let words: Vec<&str> = text.split_whitespace().collect();
                prop_assert_eq!(joined, words);
            }

            #[test]
            fn wrapping_again_changes_nothing(text in line(), w in 20usize..160, indent in 0usize..12) {
                for piece in wrap(&text, w, indent) {
                    prop_assert_eq!(wrap(&piece, w, indent), vec![piece.clone()]);
                }
            }

            #[test]
            fn a_line_that_fits_is_left_alone(text in line(), indent in 0usize..12) {
                let w = width(&text).max(1);
                prop_assert_eq!(wrap(&text, w, indent), vec![text.clone()]);
            }
        }
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "hop", "hops"), "1 hop");
        assert_eq!(count(3, "hop", "hops"), "3 hops");
        assert_eq!(count(0, "minor", "minors"), "0 minors");
    }
}
