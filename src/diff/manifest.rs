//! Reading helm's `manifest` string: YAML documents separated by `---` lines, each after a
//! `# Source: chart/templates/x.yaml` comment (helm's `releaseutil` writes them so, and
//! splits them back at `---` at the start of a line, as this does).
//!
//! Each document is parsed on its own, so that a parse error names its template; a
//! document that is empty, only comments, not a mapping, or without `kind` and
//! `metadata.name` renders no resource and is skipped, as the API server would never see
//! it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{DiffError, Resource, Secrets, Side};

/// One rendered resource: the template it came from and its content as parsed.
pub(super) struct Document {
    pub template: String,
    pub body: Value,
}

/// A manifest's resources by identity.
pub(super) type Docs = BTreeMap<Resource, Document>;

/// The text of one document and the template helm rendered it from.
struct Piece {
    template: String,
    text: String,
}

/// Reads a manifest's resources. `secrets` mask the YAML library's message, which may
/// quote the document.
pub(super) fn parse(manifest: &str, side: Side, secrets: &Secrets) -> Result<Docs, DiffError> {
    let mut docs = Docs::new();
    for piece in split(manifest) {
        let body: Value = serde_saphyr::from_str(&piece.text).map_err(|e| DiffError::Yaml {
            side,
            template: piece.template.clone(),
            message: secrets.mask_text(&first_line(&e.to_string())).into_owned(),
        })?;
        let Some(id) = identity(&body) else { continue };
        if let Some(first) = docs.get(&id) {
            return Err(DiffError::Duplicate {
                side,
                resource: secrets.mask_resource(&id).to_string(),
                first: first.template.clone(),
                second: piece.template,
            });
        }
        docs.insert(id, Document { template: piece.template, body });
    }
    Ok(docs)
}

/// The documents of a manifest that hold anything but blanks and comments, split at lines
/// that start with `---` (what follows the marker on its line, `--- {a: 1}`, belongs to
/// the new document). One without a `# Source:` comment is named by its place.
fn split(manifest: &str) -> Vec<Piece> {
    let mut texts: Vec<String> = vec![String::new()];
    for line in manifest.lines() {
        let rest = line.strip_prefix("---").filter(|r| r.is_empty() || r.starts_with(char::is_whitespace));
        match rest {
            Some(rest) => texts.push(format!("{}\n", rest.trim())),
            None => {
                let text = texts.last_mut().expect("there is always a current document");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let blank = |text: &String| text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    texts
        .into_iter()
        .filter(|text| !blank(text))
        .enumerate()
        .map(|(i, text)| {
            let source = text.lines().find_map(|l| l.trim().strip_prefix("# Source:").map(|s| s.trim().to_string()));
            Piece { template: source.unwrap_or_else(|| format!("document {}", i + 1)), text }
        })
        .collect()
}

/// The YAML library's message without the snippet it may add on further lines, nor its
/// `error: ` (the caller's message says what it is): `line 8 column 8: unclosed bracket`,
/// the line counted from the document's start.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// The identity of a document: `kind` and `metadata.name` are required; the group is
/// `apiVersion` without its version (none for `v1`, the core group).
fn identity(body: &Value) -> Option<Resource> {
    let kind = body.get("kind")?.as_str().filter(|k| !k.is_empty())?;
    let metadata = body.get("metadata")?;
    let name = metadata.get("name")?.as_str().filter(|n| !n.is_empty())?;
    let namespace = metadata.get("namespace").and_then(Value::as_str).filter(|ns| !ns.is_empty());
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    Some(Resource {
        kind: kind.to_string(),
        group: group.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
    })
}
