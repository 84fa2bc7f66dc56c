//! What every text view is written with: a wrapped line, a strategy's name. Below
//! `render` and `timing`, which both use them.

use crate::plan::Strategy;
use crate::printer::Look;

/// One line (or a few, when it contains newlines), wrapped to the width with the hanging
/// indent its shape asks for.
pub fn push_line(out: &mut String, look: Look, line: &str) {
    out.push_str(&look.wrap(line));
    out.push('\n');
}

pub fn strategy_text(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Sequential => "sequential",
        Strategy::FastPath => "fast-path",
        Strategy::Restore => "restore",
    }
}
