//! Text that quotes a command line, kept as structure until it is shown, so each
//! destination gets its own rendering.
//!
//! A failed hop's message goes to the operator's terminal and to the ledger and the
//! `-o json` report. The terminal may show the operator's own `--set` values (the one
//! that broke the hop); the others never show any ([`Disclosure`]). So an error does not
//! hold a formatted command line: it holds an [`Argv`], and a [`Message`] is rendered for
//! a [`Disclosure`] where it is printed or stored. Every default rendering (`Display`,
//! `Debug`, `Serialize`) is the redacted one, so a message that reaches a place nobody
//! chose a disclosure for shows no value.
//!
//! Other programs' output in a message (helm's stderr, what the pods say) may quote a
//! value back: `bufd:broken` in an image pull error, a password in a template error.
//! That text is not parsed, so the values its message's command lines hide are hidden in
//! it too: as a word of their own (values of 4 characters or more, other than
//! `true`/`false`/`null`, which would hide ordinary words), and anywhere when they look
//! secret.

use std::fmt;

use crate::sensitive::Disclosure;
use crate::setvalues::{Hidden, SetArg, SetKind};
use crate::text::{display_argv, for_terminal, one_line};

/// A command line: the program and its arguments, exactly as run.
#[derive(Clone, PartialEq, Eq)]
pub struct Argv {
    words: Vec<String>,
}

impl Argv {
    pub fn new(program: impl Into<String>, args: &[String]) -> Argv {
        let mut words = vec![program.into()];
        words.extend(args.iter().cloned());
        Argv { words }
    }

    /// The set-lines among the arguments (`--set LINE` and `--set=LINE`, and the other
    /// `--set-*` flags), with each line's flag.
    fn set_args(&self) -> Vec<(usize, Option<&str>, SetArg)> {
        let mut out = Vec::new();
        let mut pending: Option<SetKind> = None;
        for (i, word) in self.words.iter().enumerate().skip(1) {
            if let Some(kind) = pending.take() {
                out.push((i, None, SetArg::new(kind, word.as_str())));
            } else if let Some(kind) = SetKind::from_flag(word) {
                pending = Some(kind);
            } else if let Some((flag, line)) = word.split_once('=')
                && let Some(kind) = SetKind::from_flag(flag)
            {
                out.push((i, Some(flag), SetArg::new(kind, line)));
            }
        }
        out
    }

    /// The words for `disclosure`: each set-line as [`SetArg::shown`] renders it,
    /// control characters escaped (a value may hold them).
    pub fn words(&self, disclosure: Disclosure) -> Vec<String> {
        let mut words: Vec<String> = self.words.iter().map(|w| one_line(w)).collect();
        for (i, flag, set) in self.set_args() {
            let line = one_line(&set.shown(disclosure));
            words[i] = match flag {
                Some(flag) => format!("{flag}={line}"),
                None => line,
            };
        }
        words
    }

    /// The command line for `disclosure`, quoted where a shell would need it.
    pub fn render(&self, disclosure: Disclosure) -> String {
        display_argv(&self.words(disclosure))
    }

    /// The values this command line hides for `disclosure`.
    fn hidden(&self, disclosure: Disclosure) -> Vec<Hidden> {
        self.set_args().into_iter().flat_map(|(_, _, set)| set.hidden(disclosure)).collect()
    }
}

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Disclosure::Redacted))
    }
}

impl fmt::Debug for Argv {
    // Never a value: a Debug print in a test failure or a log must not leak one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Argv({})", self.render(Disclosure::Redacted))
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    /// The tool's own words.
    Plain(String),
    /// Another program's text (already escaped for a terminal where it was received).
    Outside(String),
    Command(Argv),
}

/// A message that may quote command lines and other programs' output; rendered per
/// destination with [`Message::render`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    parts: Vec<Part>,
}

impl Message {
    /// The tool's own words.
    pub fn plain(text: impl Into<String>) -> Message {
        Message { parts: vec![Part::Plain(text.into())] }
    }

    /// Another program's text: values hidden by the message's command lines are hidden
    /// in it too.
    pub fn outside(text: impl Into<String>) -> Message {
        Message { parts: vec![Part::Outside(text.into())] }
    }

    pub fn command(argv: Argv) -> Message {
        Message { parts: vec![Part::Command(argv)] }
    }

    /// This message followed by `more`.
    pub fn then(mut self, more: impl Into<Message>) -> Message {
        self.parts.extend(more.into().parts);
        self
    }

    /// `prefix` (the tool's words), then this message.
    pub fn after(self, prefix: impl Into<String>) -> Message {
        Message::plain(prefix).then(self)
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Plain(t) | Part::Outside(t) => t.is_empty(),
            Part::Command(_) => false,
        })
    }

    /// The message for `disclosure`.
    pub fn render(&self, disclosure: Disclosure) -> String {
        let hidden: Vec<Hidden> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Command(argv) => Some(argv.hidden(disclosure)),
                _ => None,
            })
            .flatten()
            .collect();
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Plain(text) => out.push_str(text),
                Part::Outside(text) => out.push_str(&hide_in(text, &hidden)),
                Part::Command(argv) => out.push_str(&argv.render(disclosure)),
            }
        }
        out
    }

    /// For anyone: the ledger, `-o json`, logs.
    pub fn redacted(&self) -> String {
        self.render(Disclosure::Redacted)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::plain(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::plain(text)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl serde::Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// The shortest value hidden where it stands as a word of its own: shorter ones (`3`,
/// `bsr`, `on`) would hide ordinary words of the text and tell little.
const MIN_WORD_CHARS: usize = 4;

/// `text` with every hidden value replaced by `***`: one that looks secret wherever it
/// occurs, any other where it stands as a word of its own (not inside `latest` for
/// `test`). Values are matched as received and as escaped for a terminal (stderr is
/// escaped when it is read).
fn hide_in(text: &str, hidden: &[Hidden]) -> String {
    let mut terms: Vec<(String, bool)> = Vec::new();
    for h in hidden.iter().filter(|h| !h.text.is_empty()) {
        let ordinary = h.text.chars().count() < MIN_WORD_CHARS || ["true", "false", "null"].contains(&h.text.as_str());
        if h.looks_secret || !ordinary {
            terms.push((h.text.clone(), h.looks_secret));
            let escaped = for_terminal(&h.text);
            if escaped != h.text {
                terms.push((escaped.into_owned(), h.looks_secret));
            }
        }
    }
    // Longest first: a value that holds a shorter one is hidden whole.
    terms.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
    let mut out = text.to_string();
    for (term, anywhere) in &terms {
        out = replace_term(&out, term, *anywhere);
    }
    out
}

fn replace_term(text: &str, term: &str, anywhere: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(term) {
        // The character before the match: in the text not yet copied, else the last one
        // written (a `***` or a word left as it was).
        let before = rest[..i].chars().next_back().or_else(|| out.chars().next_back());
        let after = rest[i + term.len()..].chars().next();
        let alone = !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..i]);
        if anywhere || alone {
            out.push_str("***");
        } else {
            out.push_str(term);
        }
        rest = &rest[i + term.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
