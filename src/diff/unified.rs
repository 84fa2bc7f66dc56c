//! The full diff, for `--diff=full`: each added, removed or changed resource as helm-diff
//! shows it (operators know that shape from `helm diff upgrade`): a header,
//! `default, acme, Deployment (apps) has changed:`, then the document's lines, `-` before,
//! `+` after, with some unchanged lines around each change.
//!
//! The documents are masked ([`Secrets::mask_document`]) and written in one canonical
//! form (keys sorted, one YAML style) before they are compared as text, so that neither a
//! secret nor the order a template wrote its keys in shows.

use std::fmt::Write;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::manifest::Document;
use super::{Compared, DiffError, Resource, Secrets, Side, canonical};
use crate::text::for_terminal;

/// The unified diff of two `manifest` strings, each unchanged line of `context` around a
/// change kept; `...` marks the lines left out. Empty when nothing changes. Escaped for a
/// terminal.
pub fn unified(before: &str, after: &str, secrets: &Secrets, context: usize) -> Result<String, DiffError> {
    Ok(Compared::new(before, after, secrets)?.unified(context))
}

impl Compared {
    fn unified(&self, context: usize) -> String {
        let mut sections = Vec::new();
        for (id, before, after) in self.pairs() {
            let header = header(&self.secrets.mask_resource(id));
            let section = match (before, after) {
                (None, Some(a)) => whole(&format!("{header} has been added:"), &self.text(a, None, Side::After), '+'),
                (Some(b), None) => {
                    whole(&format!("{header} has been removed:"), &self.text(b, None, Side::Before), '-')
                }
                (Some(b), Some(a)) if b.body != a.body => {
                    let old = self.text(b, Some(a), Side::Before);
                    let new = self.text(a, Some(b), Side::After);
                    changed(&format!("{header} has changed:"), &old, &new, context)
                }
                _ => continue,
            };
            sections.push(section);
        }
        sections.join("\n")
    }

    /// A document as shown: masked against the other rendering, in canonical YAML, after
    /// its `# Source:` comment (a template that moved shows as a change of that line).
    fn text(&self, doc: &Document, other: Option<&Document>, side: Side) -> String {
        let masked = canonical(&self.secrets.mask_document(&doc.body, other.map(|o| &o.body), side));
        format!("# Source: {}\n{}", doc.template, yaml(&masked))
    }
}

/// YAML as `kubectl get -o yaml` writes it (lists not indented under their key). JSON,
/// which is YAML too, should the writer ever refuse a value.
fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| serde_json::to_string_pretty(value).unwrap_or_default() + "\n")
}

/// helm-diff's header: `namespace, name, Kind (group)`, the core group shown as `v1`; the
/// namespace only when the manifest names one.
fn header(id: &Resource) -> String {
    let group = if id.group.is_empty() { "v1" } else { id.group.as_str() };
    let namespace = id.namespace.as_ref().map(|ns| format!("{ns}, ")).unwrap_or_default();
    format!("{namespace}{}, {} ({group})", id.name, id.kind)
}

/// A resource that is on one side only: every line with `sign`.
fn whole(header: &str, text: &str, sign: char) -> String {
    let mut out = format!("{}\n", for_terminal(header));
    for line in text.lines() {
        let _ = writeln!(out, "{sign} {}", for_terminal(line));
    }
    out
}

/// A resource on both sides: the changed lines with `context` lines around them.
fn changed(header: &str, old: &str, new: &str, context: usize) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = format!("{}\n", for_terminal(header));
    for (i, group) in diff.grouped_ops(context).iter().enumerate() {
        if i > 0 {
            out.push_str("...\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                let line = change.value().trim_end_matches('\n');
                let _ = writeln!(out, "{sign} {}", for_terminal(line));
            }
        }
    }
    out
}
