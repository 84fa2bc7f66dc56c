//! Masking: which rendered values are the operator's secrets, and what is shown instead.
//!
//! Which values are secret is `crate::sensitive`'s rule, applied to the release's values:
//! a value under a key path that looks secret (`postgres.password`, `auth.token`), or one
//! shaped like a secret whatever its key (a URL with a password). A chart renders such a
//! value wherever it likes — an env var, a DSN in a ConfigMap, an annotation — so the
//! rendered strings are searched for it, not the places it came from.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use serde_json::Value;

use super::{Resource, Side};
use crate::sensitive::{key_looks_secret, value_looks_secret};

/// What a masked value shows.
pub const MASK: &str = "***";

/// Below this many characters a secret is masked only where a rendered string is the
/// secret entire: a short value (`admin`, `30s`) inside longer text is more often part of
/// an ordinary word than the secret, and masking it there would hide half a manifest.
pub const INNER_MIN_CHARS: usize = 8;

/// A value that changed but is masked on both sides, as helm-diff shows a changed Secret
/// value (without helm-diff's byte count: a length narrows a guess).
const CHANGED_BEFORE: &str = "--------";
const CHANGED_AFTER: &str = "++++++++";

/// The operator's secret values, to be masked wherever they are rendered.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The secrets themselves.
    plain: BTreeSet<String>,
    /// Masked where a rendered string (or number) is one of them entire: each secret and
    /// its base64 encoding (which a chart renders with `b64enc`).
    whole: BTreeSet<String>,
    /// Masked inside longer strings too (a password in a DSN): the secrets of
    /// [`INNER_MIN_CHARS`] or more, longest first so that a secret holding another is
    /// masked whole.
    inner: Vec<String>,
}

impl fmt::Debug for Secrets {
    // Never a value: a Debug print in a test failure or a log must not leak one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.plain.len())
    }
}

impl Secrets {
    /// The secrets a release's values hold (`helm get values -o json`, or the values a hop
    /// deploys with): every string under a key path that looks secret, and every string
    /// that looks secret by its shape wherever it is.
    ///
    /// Left out, because masking them would hide ordinary text and not a secret: empty
    /// strings and `true`/`false`/`null` (`auth.enabled: "true"`), and numbers shorter
    /// than [`INNER_MIN_CHARS`] digits, which under a secret-looking key are settings
    /// (`session.timeout: 30`, `jwt.ttl: 3600`) far more often than a PIN — masking every
    /// `30` would hide a manifest's probes and ports.
    pub fn from_values(values: &Value) -> Secrets {
        let mut found = BTreeSet::new();
        collect(values, &mut Vec::new(), &mut found);
        Secrets::of(found)
    }

    fn of(plain: BTreeSet<String>) -> Secrets {
        let mut inner: Vec<String> = plain.iter().filter(|s| s.chars().count() >= INNER_MIN_CHARS).cloned().collect();
        inner.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let encoded = plain.iter().map(|s| base64::engine::general_purpose::STANDARD.encode(s));
        let whole = plain.iter().cloned().chain(encoded).collect();
        Secrets { plain, whole, inner }
    }

    /// These secrets and `other`'s: a hop's values before and after it hold different
    /// ones (a password rotated by the hop is in the second only).
    pub fn union(&self, other: &Secrets) -> Secrets {
        Secrets::of(self.plain.union(&other.plain).cloned().collect())
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// These secrets without `names`.
    pub(super) fn except(&self, names: &BTreeSet<String>) -> Secrets {
        Secrets::of(self.plain.difference(names).cloned().collect())
    }

    /// `values` with every secret in them masked the way rendered text is ([`Secrets::mask_text`]
    /// for each string; a number that is a secret entire): the view of a hop's values the
    /// plan shows. Keys stay as they are.
    pub fn mask_values(&self, values: &Value) -> Value {
        match values {
            Value::String(s) => Value::String(self.mask_text(s).into_owned()),
            Value::Number(n) if self.whole.contains(&n.to_string()) => Value::String(MASK.into()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_values(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.mask_values(v))).collect()),
            other => other.clone(),
        }
    }

    /// `text` with every secret in it masked: `***` for the whole of it when it is a
    /// secret (blanks around it aside), else each secret of [`INNER_MIN_CHARS`] or more
    /// replaced by `***`.
    pub fn mask_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.whole.contains(text) || self.whole.contains(text.trim()) {
            return Cow::Borrowed(MASK);
        }
        let mut out = Cow::Borrowed(text);
        for secret in &self.inner {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// A resource's identity with [`Secrets::mask_text`] on each part.
    pub(super) fn mask_resource(&self, id: &Resource) -> Resource {
        let mask = |s: &str| self.mask_text(s).into_owned();
        Resource {
            kind: mask(&id.kind),
            group: mask(&id.group),
            namespace: id.namespace.as_deref().map(mask),
            name: mask(&id.name),
        }
    }

    /// A scalar as it may be shown: strings through [`Secrets::mask_text`], a number that
    /// is a secret masked; `hidden` (a Secret's entries) masks everything.
    fn mask_leaf(&self, value: &Value, hidden: bool) -> Value {
        match value {
            _ if hidden => Value::String(MASK.into()),
            Value::String(s) => Value::String(self.mask_text(s).into_owned()),
            Value::Number(n) if self.whole.contains(&n.to_string()) => Value::String(MASK.into()),
            other => other.clone(),
        }
    }

    /// A rendered document as it may be shown, masked against the other rendering of the
    /// same resource (`other`, on the other `side`): a value that differs only where it is
    /// masked would show no change, so it shows helm-diff's markers instead, `--------`
    /// before and `++++++++` after. A Secret's `data` and `stringData` entries are masked
    /// whole, their keys kept. Keys are never masked: they are the chart's structure.
    pub(super) fn mask_document(&self, doc: &Value, other: Option<&Value>, side: Side) -> Value {
        let secret = doc.get("kind").and_then(Value::as_str) == Some("Secret")
            && doc.get("apiVersion").and_then(Value::as_str) == Some("v1");
        let Value::Object(map) = doc else { return self.mask_value(doc, other, side, false) };
        let masked = map.iter().map(|(k, v)| {
            let hidden = secret && (k == "data" || k == "stringData");
            (k.clone(), self.mask_value(v, other.and_then(|o| o.get(k)), side, hidden))
        });
        Value::Object(masked.collect())
    }

    /// A value with every scalar in it masked on its own ([`Secrets::mask_text`]).
    pub(super) fn mask_tree(&self, value: &Value) -> Value {
        self.mask_value(value, None, Side::After, false)
    }

    fn mask_value(&self, value: &Value, other: Option<&Value>, side: Side, hidden: bool) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.mask_value(v, other.and_then(|o| o.get(k)), side, hidden)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.mask_value(v, other.and_then(|o| o.get(i)), side, hidden))
                    .collect(),
            ),
            leaf => {
                let shown = self.mask_leaf(leaf, hidden);
                let other = other.filter(|o| !o.is_object() && !o.is_array());
                match other {
                    Some(o) if o != leaf && self.mask_leaf(o, hidden) == shown => changed_marker(side),
                    _ => shown,
                }
            }
        }
    }
}

fn changed_marker(side: Side) -> Value {
    Value::String(
        match side {
            Side::Before => CHANGED_BEFORE,
            Side::After => CHANGED_AFTER,
        }
        .into(),
    )
}

/// The values under secret-looking keys, and those shaped like secrets, into `found`.
fn collect(value: &Value, keys: &mut Vec<String>, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                keys.push(k.clone());
                collect(v, keys, found);
                keys.pop();
            }
        }
        // A list's index is no word: the key rule reads the keys above it.
        Value::Array(items) => items.iter().for_each(|v| collect(v, keys, found)),
        Value::String(s) => {
            let ordinary = s.trim().is_empty() || ["true", "false", "null"].contains(&s.to_lowercase().as_str());
            if !ordinary && (key_looks_secret(keys) || value_looks_secret(s)) {
                found.insert(s.clone());
            }
        }
        Value::Number(n) => {
            let text = n.to_string();
            if text.len() >= INNER_MIN_CHARS && key_looks_secret(keys) {
                found.insert(text);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}
