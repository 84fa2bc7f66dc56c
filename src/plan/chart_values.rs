//! The operator's values against one chart version: keys the chart does not declare
//! (helm ignores them without a word, so a renamed key becomes a silently changed
//! setting) and values whose type differs from the chart's default. Pure: the preflight
//! reads the chart's `values.yaml` and `values.schema.json` and passes them in.

use serde_json::Value;

/// What one chart version declares of its values.
pub struct ChartValues<'a> {
    /// `name version`, as the warnings say it: `acme 3.9.0`.
    pub chart: String,
    /// The chart's `values.yaml` (`{}` when it has none).
    pub defaults: &'a Value,
    /// The chart's `values.schema.json`, when it ships one.
    pub schema: Option<&'a Value>,
}

/// The most warnings one hop gets: a values file from another chart would otherwise fill
/// the screen with one line per key.
const MAX_WARNINGS: usize = 12;

/// Warnings for `user` (helm's merged user values for the hop) against `chart`.
pub fn check(user: &Value, chart: &ChartValues) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(user, chart, &mut path, &mut out);
    if out.len() > MAX_WARNINGS {
        let rest = out.len() - MAX_WARNINGS;
        out.truncate(MAX_WARNINGS);
        out.push(format!("… and {rest} more keys {} does not declare", chart.chart));
    }
    out
}

fn walk(user: &Value, chart: &ChartValues, path: &mut Vec<String>, out: &mut Vec<String>) {
    let Some(map) = user.as_object() else { return };
    for (key, value) in map {
        path.push(key.clone());
        match declared(chart, path) {
            Declared::Yes(default) => {
                if let Some(default) = default
                    && let Some(warning) = type_changed(path, value, default, &chart.chart)
                {
                    out.push(warning);
                } else if value.is_object() {
                    walk(value, chart, path, out);
                }
            }
            Declared::FreeForm => {}
            Declared::No => out.push(undeclared(path, chart)),
        }
        path.pop();
    }
}

enum Declared<'a> {
    /// In `values.yaml` (with its default, when not null) or in the schema's properties.
    Yes(Option<&'a Value>),
    /// Under a map the chart leaves open (`extraLabels: {}`, a schema without
    /// `additionalProperties: false`'s properties): anything goes.
    FreeForm,
    No,
}

fn declared<'a>(chart: &ChartValues<'a>, path: &[String]) -> Declared<'a> {
    if let Some(default) = lookup(chart.defaults, path) {
        return Declared::Yes(Some(default).filter(|d| !d.is_null()));
    }
    match chart.schema.map(|s| in_schema(s, path)) {
        Some(SchemaSays::Declared) => return Declared::Yes(None),
        Some(SchemaSays::Undeclared) => return Declared::No,
        Some(SchemaSays::FreeForm) => return Declared::FreeForm,
        Some(SchemaSays::Unlisted) | None => {}
    }
    // A parent that is an empty map or null in values.yaml is the chart's "put yours here".
    let open_parent = (1..path.len()).any(|n| match lookup(chart.defaults, &path[..n]) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    });
    if open_parent { Declared::FreeForm } else { Declared::No }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.as_object()?.get(key))
}

enum SchemaSays {
    Declared,
    /// Below a property the schema gives no `properties` of its own: anything goes.
    FreeForm,
    /// A level lists its properties and says `additionalProperties: false`.
    Undeclared,
    /// Not listed, not forbidden: the schema does not say.
    Unlisted,
}

/// What a JSON schema says of a path, following `properties` down.
fn in_schema(schema: &Value, path: &[String]) -> SchemaSays {
    let mut node = schema;
    for (depth, key) in path.iter().enumerate() {
        let properties = node.get("properties");
        match properties.and_then(|p| p.get(key)) {
            Some(next) => node = next,
            None if node.get("additionalProperties") == Some(&Value::Bool(false)) => return SchemaSays::Undeclared,
            None if properties.is_none() && depth > 0 => return SchemaSays::FreeForm,
            None => return SchemaSays::Unlisted,
        }
    }
    SchemaSays::Declared
}

fn shown(path: &[String]) -> String {
    path.join(".")
}

/// "`postgres.host` is not declared by acme 3.9.0 (renamed? acme 3.9.0 declares
/// `database.host`)": a declared key with the same last name is the likely new home.
fn undeclared(path: &[String], chart: &ChartValues) -> String {
    let last = path.last().map(String::as_str).unwrap_or_default();
    let mut same_name = Vec::new();
    leaves_named(chart.defaults, last, &mut Vec::new(), &mut same_name);
    same_name.retain(|p| p.as_slice() != path);
    let hint = match same_name.first() {
        Some(p) => format!(" (renamed? {} declares `{}`)", chart.chart, shown(p)),
        None => String::new(),
    };
    format!("`{}` is not declared by {}: helm ignores it{hint}", shown(path), chart.chart)
}

fn leaves_named(value: &Value, name: &str, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(map) = value.as_object() else { return };
    for (key, inner) in map {
        path.push(key.clone());
        if key == name {
            out.push(path.clone());
        }
        leaves_named(inner, name, path, out);
        path.pop();
    }
}

fn type_changed(path: &[String], value: &Value, default: &Value, chart: &str) -> Option<String> {
    let (mine, theirs) = (kind(value), kind(default));
    // A number where the chart has a string (a port, a tag) is what YAML makes of `8080`:
    // helm's templates quote it back. Only shapes that cannot mean the same are said.
    let compatible = mine == theirs || (mine, theirs) == ("a number", "a string");
    if compatible {
        return None;
    }
    // No value, not even an ordinary one: warnings are kept in the plan, and so in the
    // ledger.
    Some(format!("`{}` is {mine} in your values; {chart}'s default is {theirs}", shown(path)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The path of every leaf of `values` (a scalar, a list, an empty map), as `--set`
/// writes it: `image.tag`, `a\.b.c`.
pub fn leaf_keys(values: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (key, inner) in map {
                    path.push(key.replace('.', "\\."));
                    walk(inner, path, out);
                    path.pop();
                }
            }
            _ if !path.is_empty() => out.push(path.join(".")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(values, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart<'a>(defaults: &'a Value, schema: Option<&'a Value>) -> ChartValues<'a> {
        ChartValues { chart: "acme 3.9.0".into(), defaults, schema }
    }

    #[test]
    fn a_renamed_key_is_named_with_its_likely_new_home() {
        let defaults = json!({"database": {"host": "", "port": 5432}, "postgres": {"password": ""}});
        let user = json!({"postgres": {"host": "db.internal", "password": "hunter2"}, "replicaCount": 2});
        let warnings = check(&user, &chart(&defaults, None));
        assert_eq!(
            warnings,
            [
                "`postgres.host` is not declared by acme 3.9.0: helm ignores it (renamed? acme 3.9.0 declares `database.host`)",
                "`replicaCount` is not declared by acme 3.9.0: helm ignores it",
            ]
        );
    }

    #[test]
    fn open_maps_and_open_schemas_declare_everything_under_them() {
        let defaults = json!({"extraLabels": {}, "podAnnotations": null, "config": {"a": 1}});
        let user = json!({"extraLabels": {"team": "x"}, "podAnnotations": {"a": "b"}, "config": {"a": 2}});
        assert!(check(&user, &chart(&defaults, None)).is_empty());
        let schema = json!({"properties": {"redis": {"type": "object"}}});
        let user = json!({"redis": {"host": "r"}});
        assert!(check(&user, &chart(&json!({}), Some(&schema))).is_empty(), "the schema declares redis, open below");
        let closed = json!({"properties": {"redis": {"properties": {"host": {}}, "additionalProperties": false}}});
        let user = json!({"redis": {"host": "r", "port": 1}});
        assert_eq!(
            check(&user, &chart(&json!({}), Some(&closed))),
            ["`redis.port` is not declared by acme 3.9.0: helm ignores it"]
        );
    }

    #[test]
    fn a_changed_type_is_said_without_the_value() {
        let defaults = json!({"ingress": {"hosts": ["a"]}, "port": "8080", "auth": {"token": {"value": ""}}});
        let user =
            json!({"ingress": {"hosts": "a.example"}, "port": 8080, "auth": {"token": {"value": {"x": "s3cret"}}}});
        let warnings = check(&user, &chart(&defaults, None));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`auth.token.value` is a map in your values; acme 3.9.0's default is a string"));
        assert!(!warnings.iter().any(|w| w.contains("s3cret") || w.contains("a.example")), "{warnings:?}");
        assert_eq!(warnings[1], "`ingress.hosts` is a string in your values; acme 3.9.0's default is a list");
    }

    #[test]
    fn leaf_keys_are_paths_without_values() {
        let values = json!({"postgres": {"password": "hunter2", "host": "db"}, "a.b": [1], "labels": {}});
        assert_eq!(leaf_keys(&values), ["a\\.b", "labels", "postgres.host", "postgres.password"]);
    }
}
