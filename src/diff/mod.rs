//! What one hop changes in what helm renders: the resources of a release's manifest before
//! and after the hop, compared by identity ([`Resource`]) and field by field
//! ([`ManifestDiff`], [`unified`]), and the release's values before and after
//! ([`values_changes`]).
//!
//! Pure: it reads the `manifest` strings helm renders (`helm upgrade --dry-run=server -o
//! json`) and the values it is given, and returns data and text; it runs nothing and reads
//! no file. A [`ManifestDiff`] names resources and field paths (keys), never a value, so it
//! may go into the plan, `-o json` and the ledger. Every value this module shows is masked
//! first ([`Secrets`]): a Secret's `data` and `stringData` never show one, and the strings
//! the operator's values hold under keys that look secret (the rule of `crate::sensitive`)
//! are `***` wherever they are rendered.

mod manifest;
mod mask;
mod unified;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::setvalues::{Segment, path_text};
use crate::text::one_line;
use manifest::{Docs, parse};

pub use mask::{MASK, Secrets};
pub use unified::unified;
pub use values::{Change, ValueChange, values_changes};

/// How many changed field paths a [`Changed`] keeps: enough to tell what kind of change it
/// is (an image, a replica count, a label), few enough for a plan and a ledger record.
pub const MAX_PATHS: usize = 10;
/// How many of them a summary line names; the rest are counted.
const SHOWN_PATHS: usize = 3;

/// Which rendering of a hop a document comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Before,
    After,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Before => "before",
            Side::After => "after",
        })
    }
}

/// A manifest that cannot be compared. Names the template (helm's `# Source:` comment),
/// and the YAML library's message is masked like everything else: it may quote a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("the manifest rendered {side} the hop is not valid YAML in {template}: {message}")]
    Yaml { side: Side, template: String, message: String },
    /// Two documents with one identity: the API server would keep only one of them, so
    /// which one "the" rendering is cannot be said.
    #[error("the manifest rendered {side} the hop holds {resource} twice ({first} and {second})")]
    Duplicate { side: Side, resource: String, first: String, second: String },
}

/// A resource's identity as the API server knows it: group and kind (not the version: a
/// chart that moves a kind from `v1beta1` to `v1` still renders the same object), the
/// namespace when the manifest names one (else it is the release's), and the name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Resource {
    pub kind: String,
    /// Empty for the core group (`apiVersion: v1`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for Resource {
    /// `Kind/name`, or `Kind/namespace/name` when the manifest names the namespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// A resource rendered both times, differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Changed {
    #[serde(flatten)]
    pub resource: Resource,
    /// The field paths that differ, in `--set` syntax (`spec.template.spec.containers[0].image`,
    /// `metadata.labels.helm\.sh/chart`): the object's own fields first and `metadata` last,
    /// because the chart's labels change on every hop and say the least. At most
    /// [`MAX_PATHS`].
    pub paths: Vec<String>,
    /// How many more paths differ than `paths` holds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_paths: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// How the resources helm renders for a release differ before and after one hop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManifestDiff {
    pub added: Vec<Resource>,
    pub removed: Vec<Resource>,
    pub changed: Vec<Changed>,
    /// Resources rendered both times, identically (key order aside).
    pub unchanged: usize,
}

impl ManifestDiff {
    /// Compares two `manifest` strings as helm renders them (multi-document YAML with
    /// `# Source:` comments). `secrets` are the operator's ([`Secrets::from_values`]).
    pub fn between(before: &str, after: &str, secrets: &Secrets) -> Result<ManifestDiff, DiffError> {
        Ok(Compared::new(before, after, secrets)?.summary())
    }

    /// Whether the hop renders exactly what was there.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Lines for the plan table: `+ Service/acme-metrics`, `- ConfigMap/acme-legacy`,
    /// `~ Deployment/acme (spec.template.spec.containers[0].image)`, then the count of the
    /// unchanged; one line when nothing changes. Escaped for a terminal.
    pub fn summary_lines(&self) -> Vec<String> {
        if self.is_empty() {
            return vec![format!("= no change ({})", crate::text::count(self.unchanged, "resource", "resources"))];
        }
        let mut lines: Vec<String> = Vec::new();
        lines.extend(self.added.iter().map(|r| format!("+ {}", one_line(&r.to_string()))));
        lines.extend(self.removed.iter().map(|r| format!("- {}", one_line(&r.to_string()))));
        // Every hop moves the chart's version labels of every resource; a resource that
        // changes only those is counted, not listed, and they are left out of the others'
        // lists, so that what a hop really changes stands out.
        let (relabelled, changed): (Vec<&Changed>, Vec<&Changed>) =
            self.changed.iter().partition(|c| c.more_paths == 0 && c.paths.iter().all(|p| is_version_label(p)));
        lines.extend(changed.into_iter().map(changed_line));
        if !relabelled.is_empty() {
            let count = crate::text::count(relabelled.len(), "resource", "resources");
            lines.push(format!("~ {count}: the chart's version labels only"));
        }
        if self.unchanged > 0 {
            lines.push(format!("= {} unchanged", self.unchanged));
        }
        lines
    }
}

/// A label every chart version changes (`helm.sh/chart`, `app.kubernetes.io/version`),
/// on the resource or its pod template.
fn is_version_label(path: &str) -> bool {
    path.contains("labels.") && (path.ends_with(r"helm\.sh/chart") || path.ends_with(r"app\.kubernetes\.io/version"))
}

fn changed_line(changed: &Changed) -> String {
    let (labels, others): (Vec<&String>, Vec<&String>) = changed.paths.iter().partition(|p| is_version_label(p));
    let shown = others.len().min(SHOWN_PATHS);
    let more = others.len() - shown + changed.more_paths + labels.len();
    let mut paths: Vec<String> = others[..shown].iter().map(|p| one_line(p)).collect();
    if more > 0 {
        paths.push(format!("… {more} more"));
    }
    format!("~ {} ({})", one_line(&changed.resource.to_string()), paths.join(", "))
}

/// Both renderings of a hop, read and ready to compare or show.
struct Compared {
    before: Docs,
    after: Docs,
    /// The operator's secrets, less the names of the rendered resources and namespaces:
    /// a name is shown to anyone who can list the namespace, so a value that is one (a
    /// database user named after the release, `auth.username: acme`) is no secret, and
    /// masking it would hide which resource a line is about.
    secrets: Secrets,
}

impl Compared {
    fn new(before: &str, after: &str, secrets: &Secrets) -> Result<Compared, DiffError> {
        let before = parse(before, Side::Before, secrets)?;
        let after = parse(after, Side::After, secrets)?;
        let names: BTreeSet<String> = before
            .keys()
            .chain(after.keys())
            .flat_map(|r| std::iter::once(r.name.clone()).chain(r.namespace.clone()))
            .collect();
        let secrets = secrets.except(&names);
        Ok(Compared { before, after, secrets })
    }

    /// Every resource of either rendering, in identity order, with its two documents.
    fn pairs(&self) -> impl Iterator<Item = (&Resource, Option<&manifest::Document>, Option<&manifest::Document>)> {
        let ids: BTreeSet<&Resource> = self.before.keys().chain(self.after.keys()).collect();
        ids.into_iter().map(|id| (id, self.before.get(id), self.after.get(id)))
    }

    fn summary(&self) -> ManifestDiff {
        let mut diff = ManifestDiff::default();
        for (id, before, after) in self.pairs() {
            let shown = self.secrets.mask_resource(id);
            match (before, after) {
                (None, Some(_)) => diff.added.push(shown),
                (Some(_), None) => diff.removed.push(shown),
                (Some(b), Some(a)) => {
                    let mut paths = Vec::new();
                    field_paths(&b.body, &a.body, &mut Vec::new(), &mut paths);
                    if paths.is_empty() {
                        diff.unchanged += 1;
                    } else {
                        diff.changed.push(changed(shown, paths));
                    }
                }
                (None, None) => {}
            }
        }
        diff
    }
}

/// Keys are shown as they are: they are the chart's structure (and the names of a
/// ConfigMap's or a Secret's entries), not the operator's values.
fn changed(resource: Resource, mut paths: Vec<Vec<Segment>>) -> Changed {
    // A stable sort: the object's own fields in key order, then its metadata.
    paths.sort_by_key(|p| matches!(p.first(), Some(Segment::Key(k)) if k == "metadata"));
    let more_paths = paths.len().saturating_sub(MAX_PATHS);
    let paths = paths.iter().take(MAX_PATHS).map(|p| path_text(p)).collect();
    Changed { resource, paths, more_paths }
}

/// The paths at which two documents differ: the deepest map key or list index where they
/// part (a field added or removed is one path, not one per leaf beneath it).
fn field_paths(before: &Value, after: &Value, path: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for key in keys {
                path.push(Segment::Key(key.clone()));
                match (b.get(key), a.get(key)) {
                    (Some(bv), Some(av)) => field_paths(bv, av, path, out),
                    _ => out.push(path.clone()),
                }
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for i in 0..b.len().max(a.len()) {
                path.push(Segment::Index(i));
                match (b.get(i), a.get(i)) {
                    (Some(bv), Some(av)) => field_paths(bv, av, path, out),
                    _ => out.push(path.clone()),
                }
                path.pop();
            }
        }
        _ if before != after => out.push(path.clone()),
        _ => {}
    }
}

/// Keys sorted at every level, whatever order the map type keeps (serde_json's
/// `preserve_order` feature, should anything in the build turn it on, keeps the
/// document's): the canonical form that makes key order no change.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
