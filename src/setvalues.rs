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
//! Values may be secrets, so nothing here ever puts a value into an error message, and
//! [`SetArg::redacted`] shows keys only. A line helm would reject is rejected here too,
//! naming the flag and the key.

use std::fmt;

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

/// One `key=value` of a set-line. The value is kept for `--set-file` (a path the tool
/// must copy); for the others only its presence matters here.
#[derive(Clone, PartialEq, Eq)]
pub struct Assignment {
    pub path: Vec<Segment>,
    pub value: String,
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
        Scanner { chars: self.text.chars().collect(), pos: 0, kind: self.kind }.assignments()
    }

    /// `key=***,other=***`: the keys, never the values. A line that does not parse is
    /// hidden whole, since where its values end is unknown.
    pub fn redacted_line(&self) -> String {
        match self.parse() {
            Ok(assignments) if !assignments.is_empty() => {
                assignments.iter().map(|a| format!("{}=***", path_text(&a.path))).collect::<Vec<_>>().join(",")
            }
            _ => "***".to_string(),
        }
    }

    /// The argv words helm is given: `--set`, `LINE`.
    pub fn argv(&self) -> [String; 2] {
        [self.kind.flag().to_string(), self.text.clone()]
    }
}

struct Scanner {
    chars: Vec<char>,
    pos: usize,
    kind: SetKind,
}

enum KeyEnd {
    Equals,
    Open,
    Dot,
    Comma,
    End,
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
            let mut path = Vec::new();
            match self.key(&mut path, 0)? {
                Some(assignment) => out.push(assignment),
                None => return Ok(out),
            }
            if self.literal() {
                // The value ran to the end.
                return Ok(out);
            }
        }
    }

    fn key_stops(&self) -> &'static [char] {
        if self.literal() { &['=', '[', '.'] } else { &['=', '[', ',', '.'] }
    }

    /// One assignment, from a key onwards. None: the line ended cleanly.
    fn key(&mut self, path: &mut Vec<Segment>, nesting: usize) -> Result<Option<Assignment>, SetError> {
        let (name, stop) = self.until(self.key_stops());
        let end = match stop {
            Some('=') => KeyEnd::Equals,
            Some('[') => KeyEnd::Open,
            Some('.') => KeyEnd::Dot,
            Some(',') => KeyEnd::Comma,
            _ => KeyEnd::End,
        };
        let shown = |path: &[Segment], name: &str| {
            let mut p = path.to_vec();
            if !name.is_empty() {
                p.push(Segment::Key(name.to_string()));
            }
            path_text(&p)
        };
        match end {
            KeyEnd::End if name.is_empty() && path.is_empty() => Ok(None),
            KeyEnd::End => Err(self.error(format!("key {:?} has no value", shown(path, &name)))),
            KeyEnd::Comma => {
                Err(self.error(format!("key {:?} has no value (a value cannot end with ,)", shown(path, &name))))
            }
            KeyEnd::Dot => {
                if nesting + 1 > MAX_NESTING {
                    return Err(self
                        .error(format!("key {:?} nests deeper than helm's {MAX_NESTING} levels", shown(path, &name))));
                }
                path.push(Segment::Key(name));
                self.key(path, nesting + 1)
            }
            KeyEnd::Open => {
                path.push(Segment::Key(name));
                self.index(path, nesting)
            }
            KeyEnd::Equals => {
                path.push(Segment::Key(name));
                self.value(path.clone()).map(Some)
            }
        }
    }

    /// After `[`: an index, then `]`, then `=`, `.` or another `[`.
    fn index(&mut self, path: &mut Vec<Segment>, nesting: usize) -> Result<Option<Assignment>, SetError> {
        let (digits, stop) = self.until(&[']']);
        if stop.is_none() {
            return Err(self.error(format!("key {:?} has an index with no closing ]", path_text(path))));
        }
        let index: usize = digits.trim().parse().map_err(|_| {
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
            Some('=') => self.value(path.clone()).map(Some),
            Some('.') => self.key(path, nesting + 1),
            Some('[') => self.index(path, nesting),
            _ => Err(self.error(format!("key {:?} has no value", path_text(path)))),
        }
    }

    fn value(&mut self, path: Vec<Segment>) -> Result<Assignment, SetError> {
        let value = match self.kind {
            SetKind::SetLiteral => {
                let rest: String = self.chars[self.pos..].iter().collect();
                self.pos = self.chars.len();
                rest
            }
            SetKind::SetJson => self.json_value(&path)?,
            _ if self.peek() == Some('{') => {
                self.pos += 1;
                self.list_value(&path)?
            }
            _ => self.until(&[',']).0,
        };
        Ok(Assignment { path, value })
    }

    /// `{a,b}` up to the closing brace, then an optional comma.
    fn list_value(&mut self, path: &[Segment]) -> Result<String, SetError> {
        let mut items = Vec::new();
        loop {
            let (item, stop) = self.until(&[',', '}']);
            items.push(item);
            match stop {
                Some('}') => {
                    if self.peek() == Some(',') {
                        self.pos += 1;
                    }
                    return Ok(format!("{{{}}}", items.join(",")));
                }
                Some(_) => {}
                None => return Err(self.error(format!("the list value of key {:?} must end with }}", path_text(path)))),
            }
        }
    }

    /// A JSON document (helm decodes exactly one), then blanks and an optional comma. An
    /// empty value means null.
    fn json_value(&mut self, path: &[Segment]) -> Result<String, SetError> {
        if self.skip_blanks_and_comma() {
            return Ok("null".into());
        }
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(_)) => {
                let used = stream.byte_offset();
                let text = rest[..used].to_string();
                self.pos += rest[..used].chars().count();
                self.skip_blanks_and_comma();
                Ok(text)
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
    fn trailing_backslash_and_empty_values() {
        assert_eq!(values(SetKind::Set, "a="), [""]);
        assert_eq!(values(SetKind::Set, r"a=x\"), ["x"]);
        assert_eq!(keys(SetKind::Set, ""), Vec::<String>::new());
    }
}
