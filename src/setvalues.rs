//! The operator's `--set`, `--set-string`, `--set-json`, `--set-file` and `--set-literal`,
//! read the way helm reads them (helm's `pkg/strvals`), so that the tool can check them
//! before the first change and show them without their values.
//!
//! helm's rules: `a=1,b=2` sets two keys; `.` nests (`a.b=1`), `[N]` indexes a list
//! (`a[0]=x`); a backslash makes the next character literal, in keys and values
//! (`a\.b=1` sets the key `a.b`, `p=x\,y` sets `x,y`); `{x,y}` is a list value.
//! `--set-json` values are JSON documents (which may hold commas); `--set-literal` takes
//! everything after the first `=` as the value, with no escapes and no splitting.
//!
//! Values may be secrets, so nothing here ever puts a value into an error message. A
//! set-line is shown through [`SetArg::shown`]: keys only for anyone
//! ([`Disclosure::Redacted`]), the operator's values too on their own terminal unless
//! `crate::sensitive` says they look secret. A line helm would reject is rejected here
//! too, naming the flag and the key.

use std::fmt;

use crate::sensitive::{Disclosure, json_looks_secret, key_looks_secret, value_looks_secret};

/// Which flag a set-line came with; helm applies them in this order after `-f` files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetKind {
    SetJson,
    Set,
    SetString,
    SetFile,
    SetLiteral,
}

impl SetKind {
    pub const ALL: [SetKind; 5] =
        [SetKind::SetJson, SetKind::Set, SetKind::SetString, SetKind::SetFile, SetKind::SetLiteral];

    /// The flag as helm spells it.
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Set => "--set",
            SetKind::SetString => "--set-string",
            SetKind::SetJson => "--set-json",
            SetKind::SetFile => "--set-file",
            SetKind::SetLiteral => "--set-literal",
        }
    }

    pub fn from_flag(flag: &str) -> Option<SetKind> {
        SetKind::ALL.into_iter().find(|k| k.flag() == flag)
    }
}

/// One step of a key path: `a` in `a.b`, `0` in `a[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// One `key=value` of a set-line: the value as helm reads it (escapes resolved), and as
/// the operator typed it (`raw`, escapes kept), which is what a terminal shows back.
#[derive(Clone, PartialEq, Eq)]
pub struct Assignment {
    pub path: Vec<Segment>,
    pub value: String,
    pub raw: String,
}

impl Assignment {
    /// The key names of the path, without list indexes: what the key rule reads.
    fn keys(&self) -> Vec<&str> {
        self.path
            .iter()
            .filter_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .collect()
    }

    /// Whether the operator may see this value on their terminal: not when its key path
    /// or its value looks secret. A `--set-file` value is the file's path (its content is
    /// never read for display), judged by the value rule only; a `--set-json` document is
    /// shown only when none of its keys and strings looks secret.
    fn revealable(&self, kind: SetKind) -> bool {
        match kind {
            SetKind::SetFile => !value_looks_secret(&self.value),
            SetKind::SetJson => {
                !key_looks_secret(&self.keys())
                    && serde_json::from_str(&self.value).is_ok_and(|v: serde_json::Value| !json_looks_secret(&v))
            }
            SetKind::Set | SetKind::SetString | SetKind::SetLiteral => {
                !key_looks_secret(&self.keys()) && !value_looks_secret(&self.value)
            }
        }
    }

    /// The pieces of text by which this value could be recognised in someone else's
    /// output (helm quoting a rendered value back): the value, as typed and as read, the
    /// items of a `{a,b}` list, the strings and numbers of a JSON document.
    fn terms(&self, kind: SetKind) -> Vec<String> {
        let mut terms = vec![self.value.clone(), self.raw.clone()];
        match kind {
            SetKind::SetJson => {
                if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&self.value) {
                    json_leaves(&doc, &mut terms);
                }
            }
            SetKind::Set | SetKind::SetString if self.raw.starts_with('{') => {
                let inner = self.value.trim_start_matches('{').trim_end_matches('}');
                terms.extend(inner.split(',').map(String::from));
            }
            _ => {}
        }
        terms.retain(|t| !t.is_empty());
        terms.dedup();
        terms
    }
}

fn json_leaves(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_leaves(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_leaves(v, out)),
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

/// A value of a set-line that a rendering hides: the text to keep out of other output
/// too, and whether it looks secret (then it is hidden wherever it occurs, not only as
/// a word of its own).
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden {
    pub text: String,
    pub looks_secret: bool,
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hidden(***, looks_secret: {})", self.looks_secret)
    }
}

impl fmt::Debug for Assignment {
    // Never the value: a Debug print of a failing test or a log must not leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Assignment({}=***)", path_text(&self.path))
    }
}

/// A key path as helm would accept it back: `a.b[0]`, with `.`, `[`, `,`, `=` and `\` in
/// key names escaped.
pub fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for (i, segment) in path.iter().enumerate() {
        match segment {
            Segment::Key(k) => {
                if i > 0 {
                    out.push('.');
                }
                for c in k.chars() {
                    if matches!(c, '.' | '[' | ']' | ',' | '=' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Segment::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

/// A set-line as the operator gave it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetArg {
    pub kind: SetKind,
    pub text: String,
}

impl fmt::Debug for SetArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetArg({} {})", self.kind.flag(), self.redacted_line())
    }
}

/// Why a set-line is not one helm accepts. Names keys, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct SetError {
    pub flag: &'static str,
    pub problem: String,
}

/// helm caps list indexes (setIndex's MaxIndex) and key nesting (MaxNestedNameLevel).
const MAX_INDEX: usize = 65_536;
const MAX_NESTING: usize = 30;

impl SetArg {
    pub fn new(kind: SetKind, text: impl Into<String>) -> SetArg {
        SetArg { kind, text: text.into() }
    }

    /// The assignments of the line, or why helm would reject it.
    pub fn parse(&self) -> Result<Vec<Assignment>, SetError> {
        Scanner { chars: self.text.chars().collect(), pos: 0, kind: self.kind, in_value: false }.assignments()
    }

    /// `key=***,other=***`: the keys, never the values.
    pub fn redacted_line(&self) -> String {
        self.shown(Disclosure::Redacted)
    }

    /// The line for `disclosure`: every key, and each value either as the operator typed
    /// it (on their terminal, when it does not look secret) or `***`. A line that does
    /// not parse is hidden whole, since where its values end is unknown.
    pub fn shown(&self, disclosure: Disclosure) -> String {
        match self.parse() {
            Ok(assignments) if !assignments.is_empty() => assignments
                .iter()
                .map(|a| {
                    let reveal = disclosure == Disclosure::OperatorTerminal && a.revealable(self.kind);
                    format!("{}={}", path_text(&a.path), if reveal { a.raw.as_str() } else { "***" })
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => "***".to_string(),
        }
    }

    /// The values [`SetArg::shown`] hides for `disclosure`, as text to keep out of
    /// other output in the same message. A line that does not parse hides all of itself.
    pub fn hidden(&self, disclosure: Disclosure) -> Vec<Hidden> {
        let Ok(assignments) = self.parse() else {
            return vec![Hidden { text: self.text.clone(), looks_secret: true }];
        };
        let mut out = Vec::new();
        for a in &assignments {
            let looks_secret = !a.revealable(self.kind);
            if disclosure == Disclosure::OperatorTerminal && !looks_secret {
                continue;
            }
            out.extend(a.terms(self.kind).into_iter().map(|text| Hidden { text, looks_secret }));
        }
        out
    }
}

struct Scanner {
    chars: Vec<char>,
    pos: usize,
    kind: SetKind,
    /// The assignment under way has reached its value (its `=`).
    in_value: bool,
}

/// Where the parse of an assignment goes next.
enum Then {
    Key,
    Index,
    Done(Option<Assignment>),
}

impl Scanner {
    fn error(&self, problem: String) -> SetError {
        SetError { flag: self.kind.flag(), problem }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn literal(&self) -> bool {
        self.kind == SetKind::SetLiteral
    }

    /// Runes up to one of `stops`, honouring `\` (except in `--set-literal`, which has no
    /// escapes). Returns the text and the stop found (None at the end).
    fn until(&mut self, stops: &[char]) -> (String, Option<char>) {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if stops.contains(&c) {
                return (out, Some(c));
            }
            if c == '\\' && !self.literal() {
                match self.next() {
                    Some(escaped) => out.push(escaped),
                    None => return (out, None),
                }
            } else {
                out.push(c);
            }
        }
        (out, None)
    }

    fn assignments(&mut self) -> Result<Vec<Assignment>, SetError> {
        let mut out = Vec::new();
        loop {
            if self.pos >= self.chars.len() {
                return Ok(out);
            }
            self.in_value = false;
            match self.assignment() {
                Ok(Some(assignment)) => out.push(assignment),
                Ok(None) => return Ok(out),
                Err(e) => return Err(self.after_a_comma(e, out.last())),
            }
            if self.literal() {
                // The value ran to the end.
                return Ok(out);
            }
        }
    }

    /// An error in the key of an assignment after a comma does not quote that key: it
    /// is more often the rest of the previous value, whose comma was not escaped
    /// (`--set db.password=Summer,2024` makes helm read a key `2024`), and quoting it
    /// would print part of a password in the error, in CI logs and in `-o json`.
    fn after_a_comma(&self, error: SetError, previous: Option<&Assignment>) -> SetError {
        match previous {
            Some(previous) if !self.in_value => self.error(format!(
                "the text after the comma that ends the value of {:?} is not KEY=VALUE (not shown: it may be part of that value); if the comma belongs to the value, escape it as \\,",
                path_text(&previous.path)
            )),
            _ => error,
        }
    }

    fn key_stops(&self) -> &'static [char] {
        if self.literal() { &['=', '[', '.'] } else { &['=', '[', ',', '.'] }
    }

    /// One assignment, from its key onwards. None: the line ended cleanly. A loop, not
    /// recursion: `a[0][0]…` may nest as deep as an argument is long (helm, in Go, has
    /// no limit for indexes), and must not overflow the stack.
    fn assignment(&mut self) -> Result<Option<Assignment>, SetError> {
        let mut path = Vec::new();
        let mut nesting = 0;
        let mut then = Then::Key;
        loop {
            then = match then {
                Then::Key => self.key(&mut path, &mut nesting)?,
                Then::Index => self.index(&mut path)?,
                Then::Done(assignment) => return Ok(assignment),
            };
        }
    }

    /// A key name, up to `=`, `.`, `[` (or a `,` or the end, which are errors).
    fn key(&mut self, path: &mut Vec<Segment>, nesting: &mut usize) -> Result<Then, SetError> {
        let (name, stop) = self.until(self.key_stops());
        let shown = |path: &[Segment], name: &str| {
            let mut p = path.to_vec();
            if !name.is_empty() {
                p.push(Segment::Key(name.to_string()));
            }
            path_text(&p)
        };
        match stop {
            None if name.is_empty() && path.is_empty() => Ok(Then::Done(None)),
            None => Err(self.error(format!("key {:?} has no value", shown(path, &name)))),
            Some(',') => {
                Err(self.error(format!("key {:?} has no value (a value cannot end with ,)", shown(path, &name))))
            }
            Some('.') => {
                // helm counts the dots its key parser sees (MaxNestedNameLevel).
                *nesting += 1;
                if *nesting > MAX_NESTING {
                    return Err(self
                        .error(format!("key {:?} nests deeper than helm's {MAX_NESTING} levels", shown(path, &name))));
                }
                path.push(Segment::Key(name));
                Ok(Then::Key)
            }
            Some('[') => {
                path.push(Segment::Key(name));
                Ok(Then::Index)
            }
            _ => {
                path.push(Segment::Key(name));
                self.value(path.clone()).map(|a| Then::Done(Some(a)))
            }
        }
    }

    /// After `[`: an index, then `]`, then `=`, `.` or another `[`.
    fn index(&mut self, path: &mut Vec<Segment>) -> Result<Then, SetError> {
        let (digits, stop) = self.until(&[']']);
        if stop.is_none() {
            return Err(self.error(format!("key {:?} has an index with no closing ]", path_text(path))));
        }
        // helm's strconv.Atoi: no blanks around the number.
        let index: usize = digits.parse().map_err(|_| {
            self.error(format!("key {:?} has an index that is not a non-negative number: [{digits}]", path_text(path)))
        })?;
        if index > MAX_INDEX {
            return Err(self.error(format!(
                "index {index} of key {:?} is larger than helm's maximum {MAX_INDEX}",
                path_text(path)
            )));
        }
        path.push(Segment::Index(index));
        let (rest, stop) = self.until(&['[', '.', '=']);
        if !rest.is_empty() {
            return Err(self.error(format!("unexpected text after the index of key {:?}", path_text(path))));
        }
        match stop {
            Some('=') => self.value(path.clone()).map(|a| Then::Done(Some(a))),
            // helm's list parser hands a `.` to its key parser without counting it.
            Some('.') => Ok(Then::Key),
            Some('[') => Ok(Then::Index),
            _ => Err(self.error(format!("key {:?} has no value", path_text(path)))),
        }
    }

    fn value(&mut self, path: Vec<Segment>) -> Result<Assignment, SetError> {
        self.in_value = true;
        let start = self.pos;
        // `end`: where the value's text ends, before the comma that ends the assignment.
        let (value, end) = match self.kind {
            SetKind::SetLiteral => {
                let rest: String = self.chars[self.pos..].iter().collect();
                self.pos = self.chars.len();
                (rest, self.pos)
            }
            SetKind::SetJson => self.json_value(&path)?,
            _ if self.peek() == Some('{') => {
                self.pos += 1;
                self.list_value(&path)?
            }
            _ => {
                let (value, stop) = self.until(&[',']);
                (value, if stop.is_some() { self.pos - 1 } else { self.pos })
            }
        };
        let raw = self.chars[start..end.max(start)].iter().collect();
        Ok(Assignment { path, value, raw })
    }

    /// `{a,b}` up to the closing brace, then an optional comma.
    fn list_value(&mut self, path: &[Segment]) -> Result<(String, usize), SetError> {
        let mut items = Vec::new();
        loop {
            let (item, stop) = self.until(&[',', '}']);
            items.push(item);
            match stop {
                Some('}') => {
                    let end = self.pos;
                    if self.peek() == Some(',') {
                        self.pos += 1;
                    }
                    return Ok((format!("{{{}}}", items.join(",")), end));
                }
                Some(_) => {}
                None => return Err(self.error(format!("the list value of key {:?} must end with }}", path_text(path)))),
            }
        }
    }

    /// A JSON document (helm decodes exactly one), then blanks and an optional comma. An
    /// empty value means null.
    fn json_value(&mut self, path: &[Segment]) -> Result<(String, usize), SetError> {
        let start = self.pos;
        if self.skip_blanks_and_comma() {
            return Ok(("null".into(), start));
        }
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(_)) => {
                let used = stream.byte_offset();
                let text = rest[..used].to_string();
                self.pos += rest[..used].chars().count();
                let end = self.pos;
                self.skip_blanks_and_comma();
                Ok((text, end))
            }
            // serde_json's message may quote the value: say only where it is.
            _ => Err(self.error(format!("the value of key {:?} is not valid JSON", path_text(path)))),
        }
    }

    /// Skip blanks; true if the value was empty (a comma or the end came first).
    fn skip_blanks_and_comma(&mut self) -> bool {
        while let Some(c) = self.peek() {
            if c == ',' {
                self.pos += 1;
                return true;
            }
            if !c.is_whitespace() {
                return false;
            }
            self.pos += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(kind: SetKind, text: &str) -> Vec<String> {
        SetArg::new(kind, text).parse().unwrap().iter().map(|a| path_text(&a.path)).collect()
    }

    fn values(kind: SetKind, text: &str) -> Vec<String> {
        SetArg::new(kind, text).parse().unwrap().into_iter().map(|a| a.value).collect()
    }

    #[test]
    fn the_text_after_an_unescaped_comma_is_not_quoted_in_an_error() {
        // A password with a comma, not escaped: helm reads `Secret2024` as a key with no value.
        for line in ["postgres.password=Summer,Secret2024", "p=Summer,Secret2024[1", "p=Summer,Secret2024[x]=1"] {
            let err = SetArg::new(SetKind::Set, line).parse().unwrap_err().to_string();
            assert!(!err.contains("Secret2024"), "{line}: {err}");
            assert!(err.contains(r"escape it as \,"), "{line}: {err}");
        }
        let err = SetArg::new(SetKind::Set, "postgres.password=Summer,Secret2024").parse().unwrap_err().to_string();
        assert!(err.contains(r#"the value of "postgres.password""#), "{err}");
        // The first key of a line is the operator's own, and is named as before.
        let err = SetArg::new(SetKind::Set, "image.tag").parse().unwrap_err().to_string();
        assert!(err.contains(r#"key "image.tag" has no value"#), "{err}");
    }

    #[test]
    fn commas_split_assignments_unless_escaped() {
        assert_eq!(keys(SetKind::Set, "a=1,b.c=2"), ["a", "b.c"]);
        assert_eq!(values(SetKind::Set, r"postgres.password=hunter2\,tail9"), ["hunter2,tail9"]);
        assert_eq!(keys(SetKind::Set, r"postgres.password=hunter2\,tail9"), ["postgres.password"]);
        assert_eq!(
            SetArg::new(SetKind::Set, r"postgres.password=hunter2\,tail9").redacted_line(),
            "postgres.password=***"
        );
    }

    #[test]
    fn escaped_dots_stay_in_the_key() {
        let parsed = SetArg::new(SetKind::Set, r"a\.b=1").parse().unwrap();
        assert_eq!(parsed[0].path, [Segment::Key("a.b".into())]);
        assert_eq!(path_text(&parsed[0].path), r"a\.b");
        assert_eq!(
            keys(SetKind::Set, r"ingress.annotations.kubernetes\.io/ingress\.class=nginx"),
            [r"ingress.annotations.kubernetes\.io/ingress\.class"]
        );
    }

    #[test]
    fn lists_and_indexes() {
        assert_eq!(values(SetKind::Set, "hosts={a,b,c},n=1"), ["{a,b,c}", "1"]);
        assert_eq!(keys(SetKind::Set, "hosts={a,b,c},n=1"), ["hosts", "n"]);
        assert_eq!(keys(SetKind::Set, "env[0].name=X,env[0].value=secret"), ["env[0].name", "env[0].value"]);
        assert_eq!(keys(SetKind::Set, "m[1][2]=x"), ["m[1][2]"]);
        assert!(SetArg::new(SetKind::Set, "a[70000]=x").parse().is_err());
        assert!(SetArg::new(SetKind::Set, "a[-1]=x").parse().is_err());
        assert!(SetArg::new(SetKind::Set, "a[ 1]=x").parse().is_err(), "helm's Atoi takes no blanks");
        assert!(SetArg::new(SetKind::Set, "hosts={a,b").parse().is_err());
    }

    #[test]
    fn json_values_may_hold_commas() {
        let arg = SetArg::new(SetKind::SetJson, r#"db={"user":"u","password":"p,w"},n=[1,2]"#);
        assert_eq!(keys(arg.kind, &arg.text), ["db", "n"]);
        assert_eq!(arg.redacted_line(), "db=***,n=***");
        assert_eq!(values(SetKind::SetJson, "a=,b=1"), ["null", "1"]);
        let err = SetArg::new(SetKind::SetJson, "a={nope-secret").parse().unwrap_err();
        assert!(!err.to_string().contains("nope-secret"), "{err}");
    }

    #[test]
    fn literal_values_run_to_the_end() {
        let arg = SetArg::new(SetKind::SetLiteral, r"token=a,b=c\d");
        assert_eq!(values(arg.kind, &arg.text), [r"a,b=c\d"]);
        assert_eq!(arg.redacted_line(), "token=***");
    }

    #[test]
    fn malformed_lines_name_the_key_never_the_value() {
        for (kind, text) in [(SetKind::Set, "a"), (SetKind::Set, "a,b=1"), (SetKind::Set, "a.b")] {
            let err = SetArg::new(kind, text).parse().unwrap_err();
            assert!(err.to_string().contains("has no value"), "{err}");
        }
        assert_eq!(SetArg::new(SetKind::Set, "broken").redacted_line(), "***");
        let deep = (0..40).map(|i| format!("k{i}")).collect::<Vec<_>>().join(".") + "=1";
        assert!(SetArg::new(SetKind::Set, &deep).parse().is_err());
    }

    #[test]
    fn debug_output_never_holds_values() {
        let arg = SetArg::new(SetKind::Set, "postgres.password=hunter2");
        let shown = format!("{arg:?} {:?}", arg.parse().unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_raw_value_is_what_the_operator_typed() {
        let raw = |kind, text: &str| -> Vec<String> {
            SetArg::new(kind, text).parse().unwrap().into_iter().map(|a| a.raw).collect()
        };
        assert_eq!(raw(SetKind::Set, r"a=x\,y,b={1,2},c=,d=z\"), [r"x\,y", "{1,2}", "", r"z\"]);
        assert_eq!(raw(SetKind::SetJson, r#"a= {"k": [1,2]} ,b=,c=3"#), [r#" {"k": [1,2]}"#, "", "3"]);
        assert_eq!(raw(SetKind::SetLiteral, r"a=x\,y=z"), [r"x\,y=z"]);
    }

    #[test]
    fn shown_on_the_terminal_unless_secret() {
        let on_terminal = |kind, text: &str| SetArg::new(kind, text).shown(Disclosure::OperatorTerminal);
        assert_eq!(
            on_terminal(SetKind::Set, "image.tag=broken,postgres.password=s3cret"),
            "image.tag=broken,postgres.password=***"
        );
        assert_eq!(on_terminal(SetKind::Set, r"a.b[0].c=x\,y,hosts={a,b}"), r"a.b[0].c=x\,y,hosts={a,b}");
        assert_eq!(on_terminal(SetKind::Set, "url=postgres://u:pw@db/x"), "url=***");
        assert_eq!(on_terminal(SetKind::SetJson, r#"db={"user":"u","password":"p,w"},n=[1,2]"#), "db=***,n=[1,2]");
        assert_eq!(on_terminal(SetKind::SetFile, "tls.key=/tmp/k.pem"), "tls.key=/tmp/k.pem");
        assert_eq!(on_terminal(SetKind::SetLiteral, "apiKey=a,b"), "apiKey=***");
        assert_eq!(
            on_terminal(SetKind::SetString, r"ingress.annotations.kubernetes\.io/tls-acme=true"),
            r"ingress.annotations.kubernetes\.io/tls-acme=true"
        );
        assert_eq!(on_terminal(SetKind::Set, "broken"), "***");
    }

    #[test]
    fn hidden_values_are_the_ones_a_rendering_hides() {
        let texts = |arg: &SetArg, d| -> Vec<String> { arg.hidden(d).into_iter().map(|h| h.text).collect() };
        let arg = SetArg::new(SetKind::Set, r"image.tag=broken,db.password=hunter2\,tail9,hosts={a1,b2}");
        assert_eq!(texts(&arg, Disclosure::OperatorTerminal), ["hunter2,tail9", r"hunter2\,tail9"]);
        assert_eq!(
            texts(&arg, Disclosure::Redacted),
            ["broken", "hunter2,tail9", r"hunter2\,tail9", "{a1,b2}", "a1", "b2"]
        );
        assert!(arg.hidden(Disclosure::Redacted).iter().any(|h| h.looks_secret && h.text == "hunter2,tail9"));
        let json = SetArg::new(SetKind::SetJson, r#"db={"pw":"js0n","port":5432}"#);
        assert_eq!(texts(&json, Disclosure::Redacted), [r#"{"pw":"js0n","port":5432}"#, "5432", "js0n"]);
        let shown = format!("{:?}", arg.hidden(Disclosure::Redacted));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn deep_indexes_do_not_overflow_the_stack() {
        // An argument can be 128 KiB long (Linux's MAX_ARG_STRLEN): 43,000 indexes.
        let line = format!("a{}=1,b.c=2", "[0]".repeat(43_000));
        let parsed = SetArg::new(SetKind::Set, line).parse().unwrap();
        assert_eq!(parsed[0].path.len(), 43_001);
        assert_eq!(path_text(&parsed[1].path), "b.c");
        let mixed = format!("a{}=1", "[0].k".repeat(10_000));
        assert!(SetArg::new(SetKind::Set, mixed).parse().is_ok(), "helm does not count dots after an index");
        // helm counts the dots: 30 are allowed, 31 are not.
        let dots = |n: usize| (0..=n).map(|i| format!("k{i}")).collect::<Vec<_>>().join(".") + "=1";
        assert!(SetArg::new(SetKind::Set, dots(30)).parse().is_ok());
        assert!(SetArg::new(SetKind::Set, dots(31)).parse().is_err());
    }

    #[test]
    fn trailing_backslash_and_empty_values() {
        assert_eq!(values(SetKind::Set, "a="), [""]);
        assert_eq!(values(SetKind::Set, r"a=x\"), ["x"]);
        assert_eq!(keys(SetKind::Set, ""), Vec::<String>::new());
    }
}
