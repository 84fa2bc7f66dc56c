//! Policy text with placeholders: the one reader of its braces.
//!
//! A command, selector, message or link in a policy is a template:
//! - `{name}` is a placeholder, filled in by the planner (`{release}`, `{var.image}`);
//! - `{{` is a literal `{` and `}}` a literal `}` (the escape of Python's `str.format` and
//!   Rust's `format!`), so commands can carry what operators read clusters with:
//!   `jsonpath={{.status.readyReplicas}}` runs as `jsonpath={.status.readyReplicas}`, the
//!   go-template `{{{{.status.phase}}}}` as `{{.status.phase}}`, and `{{"replicas":0}}` as
//!   `{"replicas":0}`;
//! - any other brace is a mistake: a `{` that no `}` closes before the next `{` (or one
//!   closed at once, `{}`), and a `}` that closes nothing.
//!
//! Validation ([`check`], at load time) and filling ([`fill`], at plan time) both read the
//! text through [`scan`], so a template the loader accepts is filled exactly as it was
//! checked. Nothing here runs anything: a filled template is one argv element, or text to
//! show.

/// One part of a template, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text kept as it is; an escaped brace (`{{`, `}}`) is the single brace.
    Literal(&'a str),
    /// `{name}`; `at` is the byte offset of its `{`.
    Placeholder { name: &'a str, at: usize },
    /// A brace that is neither an escape nor part of a placeholder; `at` is its byte
    /// offset. Validation refuses it; filling text that was never validated keeps it.
    Stray { brace: char, at: usize },
}

/// The pieces of `text`, left to right.
pub fn scan(text: &str) -> Scan<'_> {
    Scan { text, at: 0 }
}

pub struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Scan<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let at = self.at;
        let rest = &self.text[at..];
        // Braces are ASCII, so byte offsets next to them are character boundaries.
        let piece = if rest.starts_with("{{") || rest.starts_with("}}") {
            self.at += 2;
            Piece::Literal(&rest[..1])
        } else if let Some(after) = rest.strip_prefix('{') {
            // A placeholder runs to the first brace after its `{`, which must be a `}`
            // with a name before it.
            match after.find(['{', '}']) {
                Some(close) if close > 0 && after[close..].starts_with('}') => {
                    self.at += close + 2;
                    Piece::Placeholder { name: &after[..close], at }
                }
                _ => {
                    self.at += 1;
                    Piece::Stray { brace: '{', at }
                }
            }
        } else if rest.starts_with('}') {
            self.at += 1;
            Piece::Stray { brace: '}', at }
        } else if rest.is_empty() {
            return None;
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            self.at += end;
            Piece::Literal(&rest[..end])
        };
        Some(piece)
    }
}

/// What makes a template invalid: the first problem [`scan`] meets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub problem: Problem,
    /// 1-based position of the offending brace in the text, in characters (what an
    /// editor's cursor counts), not bytes.
    pub character: usize,
    /// The text with every brace doubled but those of known placeholders: what to write
    /// if the other braces were meant literally.
    pub escaped: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A `{` or `}` that is neither doubled nor part of a placeholder.
    Stray(char),
    /// `{name}` where `name` is no placeholder.
    Unknown(String),
}

/// Check a template: every placeholder is one `known` accepts, every other brace doubled.
pub fn check(text: &str, known: impl Fn(&str) -> bool) -> Result<(), TemplateError> {
    let first = scan(text).find_map(|piece| match piece {
        Piece::Stray { brace, at } => Some((Problem::Stray(brace), at)),
        Piece::Placeholder { name, at } if !known(name) => Some((Problem::Unknown(name.to_string()), at)),
        Piece::Literal(_) | Piece::Placeholder { .. } => None,
    });
    match first {
        None => Ok(()),
        Some((problem, at)) => Err(TemplateError {
            problem,
            character: text[..at].chars().count() + 1,
            escaped: escaped_but_placeholders(text, &known),
        }),
    }
}

/// `text` with every brace doubled except those of known placeholders. Not a reading of
/// the template (that is [`scan`]'s): a guess that the author wrote literal braces the way
/// the command is typed in a terminal, which is how a jsonpath or JSON gets pasted in.
fn escaped_but_placeholders(text: &str, known: &impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let from_brace = &rest[i..];
        let placeholder = from_brace
            .strip_prefix('{')
            .and_then(|after| {
                after.find(['{', '}']).filter(|&close| after[close..].starts_with('}')).map(|c| &after[..c])
            })
            .filter(|name| known(name));
        match placeholder {
            Some(name) => {
                out.push_str(&from_brace[..name.len() + 2]);
                rest = &from_brace[name.len() + 2..];
            }
            None => {
                out.push_str(&from_brace[..1].repeat(2));
                rest = &from_brace[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as a template that fills to exactly `text`: every brace doubled.
pub fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// A template filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filled {
    /// The text, escapes read as single braces; a placeholder without a value stays
    /// `{name}`, so a plan made offline shows what a live run fills in.
    pub text: String,
    /// The placeholders without a value, each once, in order. The text cannot say it
    /// (a literal `{release}` reads the same), and nothing may run a command with a hole.
    pub unfilled: Vec<String>,
}

/// Fill `text` with `value`s. Total: a stray brace in text that was never validated is
/// kept as it is.
pub fn fill<'v>(text: &str, value: impl Fn(&str) -> Option<&'v str>) -> Filled {
    let mut out = Filled { text: String::with_capacity(text.len()), unfilled: vec![] };
    for piece in scan(text) {
        match piece {
            Piece::Literal(literal) => out.text.push_str(literal),
            Piece::Placeholder { name, .. } => match value(name) {
                Some(v) => out.text.push_str(v),
                None => {
                    out.text.push('{');
                    out.text.push_str(name);
                    out.text.push('}');
                    if !out.unfilled.iter().any(|u| u == name) {
                        out.unfilled.push(name.to_string());
                    }
                }
            },
            Piece::Stray { brace, .. } => out.text.push(brace),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str) -> Option<&'static str> {
        match name {
            "release" => Some("bsr"),
            "to" => Some("1.2.6"),
            "var.image" => Some("reg/img"),
            _ => None,
        }
    }

    fn known(name: &str) -> bool {
        values(name).is_some()
    }

    fn filled(text: &str) -> String {
        check(text, known).unwrap_or_else(|e| panic!("{text:?} refused: {e:?}"));
        fill(text, values).text
    }

    fn refused(text: &str) -> TemplateError {
        check(text, known).expect_err(text)
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        assert_eq!(filled("{{"), "{");
        assert_eq!(filled("}}"), "}");
        assert_eq!(filled("{{}}"), "{}");
        assert_eq!(filled("a{{b}}c"), "a{b}c");
        assert_eq!(filled("}}{{"), "}{");
        assert_eq!(filled("no braces"), "no braces");
        assert_eq!(filled(""), "");
    }

    /// The README's examples, as an operator writes them in a policy.
    #[test]
    fn jsonpath_go_template_and_json_arguments() {
        assert_eq!(filled("-o=jsonpath={{.status.readyReplicas}}"), "-o=jsonpath={.status.readyReplicas}");
        assert_eq!(filled("go-template={{{{.status.phase}}}}"), "go-template={{.status.phase}}");
        assert_eq!(filled(r#"{{"spec":{{"replicas":0}}}}"#), r#"{"spec":{"replicas":0}}"#);
        assert_eq!(
            filled("jsonpath={{.items[?(@.metadata.name==\"{release}\")].status}}"),
            "jsonpath={.items[?(@.metadata.name==\"bsr\")].status}"
        );
    }

    #[test]
    fn placeholders_next_to_escapes() {
        assert_eq!(filled("{{{release}}}"), "{bsr}");
        assert_eq!(filled("{{{{{release}}}}}"), "{{bsr}}");
        assert_eq!(filled("{release}{{"), "bsr{");
        assert_eq!(filled("}}{release}"), "}bsr");
        assert_eq!(filled("{release}{to}"), "bsr1.2.6");
        assert_eq!(filled("{{release}}"), "{release}", "an escaped name is text, not a placeholder");
        assert_eq!(filled("--image={var.image}:{to}"), "--image=reg/img:1.2.6");
    }

    #[test]
    fn the_pieces_of_a_template() {
        let pieces: Vec<Piece> = scan("a{{{release}}}b}").collect();
        assert_eq!(
            pieces,
            [
                Piece::Literal("a"),
                Piece::Literal("{"),
                Piece::Placeholder { name: "release", at: 3 },
                Piece::Literal("}"),
                Piece::Literal("b"),
                Piece::Stray { brace: '}', at: 15 },
            ]
        );
    }

    #[test]
    fn a_lone_brace_is_refused_where_it_stands() {
        for (text, brace, character) in [
            ("{", '{', 1),
            ("}", '}', 1),
            ("jsonpath={.x", '{', 10),
            ("a}b", '}', 2),
            ("{}", '{', 1),
            ("{a{release}", '{', 1),
            ("{{release}", '}', 10),
            ("{release}}", '}', 10),
            ("{{{", '{', 3),
            ("}}}", '}', 3),
        ] {
            let e = refused(text);
            assert_eq!((e.problem, e.character), (Problem::Stray(brace), character), "{text:?}");
        }
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let e = refused("x {to_shcema}");
        assert_eq!((e.problem, e.character), (Problem::Unknown("to_shcema".into()), 3));
        // What a jsonpath or JSON without doubled braces reads as.
        let e = refused("jsonpath={.status.readyReplicas}");
        assert_eq!((e.problem, e.character), (Problem::Unknown(".status.readyReplicas".into()), 10));
        assert_eq!(refused(r#"{"a": 1}"#).problem, Problem::Unknown(r#""a": 1"#.into()));
        assert_eq!(refused("{var.other}").problem, Problem::Unknown("var.other".into()));
    }

    #[test]
    fn the_first_problem_is_reported_and_the_fix_shown() {
        let e = refused(r#"{"spec":{"replicas":{release}}}"#);
        assert_eq!((e.problem, e.character), (Problem::Stray('{'), 1));
        assert_eq!(e.escaped, r#"{{"spec":{{"replicas":{release}}}}}"#);
        assert_eq!(filled(&e.escaped), r#"{"spec":{"replicas":bsr}}"#, "the JSON as it was pasted");
        assert_eq!(refused("jsonpath={.x}").escaped, "jsonpath={{.x}}");
        assert_eq!(refused("{to_shcema} {to}").escaped, "{{to_shcema}} {to}");
        assert_eq!(refused("a}{").escaped, "a}}{{");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = refused("é世🦀{x");
        assert_eq!((e.problem, e.character), (Problem::Stray('{'), 4));
        let e = refused("🦀}");
        assert_eq!((e.problem, e.character), (Problem::Stray('}'), 2));
        assert_eq!(filled("é{{世}}🦀{release}ü"), "é{世}🦀bsrü");
    }

    #[test]
    fn unfilled_placeholders_are_kept_and_named_once() {
        let f = fill("{release} {to_schema} {{to_schema}} {to_schema} {from_app_version}", values);
        assert_eq!(f.text, "bsr {to_schema} {to_schema} {to_schema} {from_app_version}");
        assert_eq!(f.unfilled, ["to_schema", "from_app_version"], "the escaped one is text");
        assert!(fill("{{release}}", |_| None).unfilled.is_empty());
    }

    #[test]
    fn escaping_then_filling_gives_the_text_back() {
        for text in ["", "{", "}}{", "{release}", "{{x}}", "jsonpath={.a}", "é{🦀}"] {
            let template = escape(text);
            check(&template, known).unwrap();
            assert_eq!(fill(&template, values), Filled { text: text.to_string(), unfilled: vec![] });
        }
    }

    #[test]
    fn text_never_validated_is_filled_without_loss() {
        assert_eq!(fill("open { only", values).text, "open { only");
        assert_eq!(fill("a}b{", values).text, "a}b{");
    }
}
