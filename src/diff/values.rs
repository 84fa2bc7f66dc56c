//! The release's values that differ before and after a hop (the carried values with the
//! hop's own settings and the policy's renames applied), key path by key path.
//!
//! A value shown here is masked when it looks secret by `crate::sensitive`'s key or value
//! rule, or holds one of the operator's secrets. Values that do not look secret are still
//! the operator's, which the ledger and `-o json` never show ([`Disclosure::Redacted`]):
//! those get [`ValueChange::redacted`], which keeps the paths only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mask::{MASK, Secrets};
use crate::sensitive::{Disclosure, json_looks_secret, key_looks_secret, value_looks_secret};
use crate::setvalues::{Segment, path_text};
use crate::text::one_line;

/// How a value differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One value that differs: its key path in `--set` syntax and the value on each side where
/// there is one, masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ValueChange {
    pub path: String,
    pub change: Change,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl ValueChange {
    /// The change without its values, for readers who see none (the ledger, `-o json`).
    pub fn redacted(&self) -> ValueChange {
        ValueChange { before: None, after: None, ..self.clone() }
    }

    /// One line for `disclosure`: `+ path: after`, `- path: before`,
    /// `~ path: before → after` on the operator's terminal; the sign and the path only for
    /// anyone else. Escaped for a terminal.
    pub fn line(&self, disclosure: Disclosure) -> String {
        let path = one_line(&self.path);
        let shown = |v: &Option<String>| one_line(v.as_deref().unwrap_or(""));
        match (disclosure, self.change) {
            (Disclosure::Redacted, Change::Added) => format!("+ {path}"),
            (Disclosure::Redacted, Change::Removed) => format!("- {path}"),
            (Disclosure::Redacted, Change::Changed) => format!("~ {path}"),
            (Disclosure::OperatorTerminal, Change::Added) => format!("+ {path}: {}", shown(&self.after)),
            (Disclosure::OperatorTerminal, Change::Removed) => format!("- {path}: {}", shown(&self.before)),
            (Disclosure::OperatorTerminal, Change::Changed) => {
                format!("~ {path}: {} → {}", shown(&self.before), shown(&self.after))
            }
        }
    }
}

/// The values that differ between `before` and `after`, in key order. Maps are compared
/// key by key (a map added or removed gives one change per value in it, each judged by
/// its own key); a list is one value, as helm replaces lists whole rather than merging them.
pub fn values_changes<'a>(before: &'a Value, after: &'a Value, secrets: &Secrets) -> Vec<ValueChange> {
    // `helm get values -o json` says `null` for a release without values of its own.
    let root = |v: Option<&'a Value>| v.filter(|v| !v.is_null());
    let mut out = Vec::new();
    walk(root(Some(before)), root(Some(after)), &mut Vec::new(), secrets, &mut out);
    out
}

fn walk(
    before: Option<&Value>,
    after: Option<&Value>,
    path: &mut Vec<Segment>,
    secrets: &Secrets,
    out: &mut Vec<ValueChange>,
) {
    if before == after {
        return;
    }
    let empty = Map::new();
    if let (Some(b), Some(a)) = (as_map(before, &empty), as_map(after, &empty)) {
        let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for key in keys {
            path.push(Segment::Key(key.clone()));
            walk(b.get(key), a.get(key), path, secrets, out);
            path.pop();
        }
        return;
    }
    let change = match (before, after) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        _ => Change::Changed,
    };
    let shown = |v: Option<&Value>| v.map(|v| masked(path, v, secrets));
    out.push(ValueChange { path: path_text(path), change, before: shown(before), after: shown(after) });
}

/// A map to compare key by key: the value's, or `empty` where there is no value.
fn as_map<'a>(value: Option<&'a Value>, empty: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
    match value {
        None => Some(empty),
        Some(Value::Object(map)) => Some(map),
        Some(_) => None,
    }
}

/// A value as shown: a string as it is, anything else as JSON; `***` when its key path or
/// its content looks secret, and the operator's secrets masked in what is left.
fn masked(path: &[Segment], value: &Value, secrets: &Secrets) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    let looks_secret = key_looks_secret(&keys)
        || match value {
            Value::String(s) => value_looks_secret(s),
            other => json_looks_secret(other),
        };
    if looks_secret {
        return MASK.to_string();
    }
    match value {
        Value::String(s) => secrets.mask_text(s).into_owned(),
        // Each string of a list or map on its own, as a manifest's are: in the JSON text a
        // short secret would be no string of its own.
        other => secrets.mask_tree(other).to_string(),
    }
}
