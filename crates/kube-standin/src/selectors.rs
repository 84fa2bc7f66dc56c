//! Label and field selectors from query strings (`labelSelector`, `fieldSelector`), and
//! `matchLabels`/`matchExpressions` selectors inside objects. Pure functions over JSON.

use serde_json::Value;

/// One parsed requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

/// The selector string could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("unable to parse requirement: {0:?}")]
pub struct SelectorError(pub String);

/// Splits on commas that are not inside `( … )`.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn set_values(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError(whole.to_string()))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Req::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Req::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Req::NotIn(k.trim().to_string(), set_values(rest, part)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Req::In(k.trim().to_string(), set_values(rest, part)?)
            } else if part.chars().all(|c| c.is_alphanumeric() || "-_./".contains(c)) {
                Req::Exists(part.to_string())
            } else {
                return Err(SelectorError(part.to_string()));
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Builds the selector an object's `spec.selector` (`matchLabels` + `matchExpressions`)
    /// describes. A missing selector matches nothing, as in Kubernetes.
    pub fn from_object(sel: &Value) -> Option<Self> {
        let obj = sel.as_object()?;
        let mut reqs = Vec::new();
        if let Some(ml) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                reqs.push(Req::Eq(k.clone(), v.as_str().unwrap_or_default().to_string()));
            }
        }
        for e in obj.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> =
                e["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Req::In(key, values),
                "NotIn" => Req::NotIn(key, values),
                "Exists" => Req::Exists(key),
                _ => Req::NotExists(key),
            });
        }
        Some(LabelSelector(reqs))
    }

    /// Whether `labels` (a JSON map, or null) satisfies every requirement.
    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value` / `path!=value` terms over dotted object paths
/// (`metadata.name`, `metadata.namespace`, `status.phase`, `spec.nodeName`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for part in split_top(s) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(SelectorError(part.to_string()));
            };
            terms.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the object satisfies every term; a missing field counts as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            let have = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_selectors_ignore_order() {
        let s = LabelSelector::parse("owner=helm,name=demo").unwrap();
        assert!(s.matches(&json!({"name": "demo", "owner": "helm", "status": "deployed"})));
        assert!(!s.matches(&json!({"name": "demo"})));
        assert!(!s.matches(&Value::Null));
    }

    #[test]
    fn set_and_existence_selectors() {
        let s = LabelSelector::parse("env in (prod, staging),tier notin (db),app,!legacy,x!=y").unwrap();
        assert!(s.matches(&json!({"env": "prod", "tier": "web", "app": "a"})));
        assert!(!s.matches(&json!({"env": "dev", "app": "a"})));
        assert!(!s.matches(&json!({"env": "prod", "tier": "db", "app": "a"})));
        assert!(!s.matches(&json!({"env": "prod", "app": "a", "legacy": "1"})));
        assert!(!s.matches(&json!({"env": "prod"})));
        assert!(!s.matches(&json!({"env": "prod", "app": "a", "x": "y"})));
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn object_selectors() {
        let s = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]
        }))
        .unwrap();
        assert!(s.matches(&json!({"app": "web", "tier": "fe"})));
        assert!(!s.matches(&json!({"app": "web"})));
        assert!(LabelSelector::from_object(&Value::Null).is_none());
    }

    #[test]
    fn field_selectors() {
        let s = FieldSelector::parse("metadata.name=x,status.phase!=Running").unwrap();
        assert!(s.matches(&json!({"metadata": {"name": "x"}, "status": {"phase": "Pending"}})));
        assert!(!s.matches(&json!({"metadata": {"name": "x"}, "status": {"phase": "Running"}})));
        assert!(!s.matches(&json!({"metadata": {"name": "y"}})));
    }
}
