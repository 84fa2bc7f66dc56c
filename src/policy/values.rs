//! What versions require of the release's values, from the vendor's notes ("when
//! upgrading to chart version 4.0.0 or later, add `redis.host`"), as policy rules, and
//! how a rule changes a values tree.
//!
//! helm ignores a values key a chart no longer reads: a key the vendor renamed becomes,
//! silently, a setting changed back to its default, in the middle of a multi-hop walk. A
//! rule applies at the hop that crosses its version (the hop's `from` is older, its `to`
//! at least that version), and, for the carried values, to every hop after it:
//! - `require`: the key must be set from that version on (by the carried values, `-f` or
//!   `--set`); a plan without it is refused, with the vendor's words;
//! - `rename`: the value moves from the old path to the new one;
//! - `remove`: the key is dropped;
//! - `set`: these values are carried from then on (unlike a procedure's `set:`, which
//!   applies to one deploy only).
//!
//! Everything here is pure: the planner applies the rules to the values it is given, and
//! the executor to the values it deploys, with the same functions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::version::ChartVersion;

/// A path into a values tree, written as helm's `--set` writes it: keys separated by
/// dots, a backslash making the next character literal (`podLabels.app\.kubernetes\.io/name`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct KeyPath(Vec<String>);

impl KeyPath {
    pub fn parse(text: &str) -> Result<KeyPath, String> {
        let mut segments = vec![String::new()];
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => segments.last_mut().expect("one segment").push(next),
                    None => return Err(format!("{text:?} ends with a lone backslash")),
                },
                '.' => segments.push(String::new()),
                '[' | ']' => {
                    return Err(format!(
                        "{text:?} indexes a list; a value rule names keys only (`a.b.c`), lists move whole"
                    ));
                }
                c if c.is_control() => return Err(format!("{text:?} holds a control character")),
                c => segments.last_mut().expect("one segment").push(c),
            }
        }
        if segments.iter().any(|s| s.trim().is_empty()) {
            return Err(format!("{text:?} is not a values path: write keys separated by dots, e.g. `redis.host`"));
        }
        Ok(KeyPath(segments))
    }

    /// A path of these keys; None for no keys or an empty one.
    pub fn from_segments(segments: Vec<String>) -> Option<KeyPath> {
        (!segments.is_empty() && segments.iter().all(|s| !s.is_empty())).then_some(KeyPath(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn within(&self, other: &KeyPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The value at this path, if any (null counts as unset, as helm treats it).
    pub fn get<'v>(&self, values: &'v Value) -> Option<&'v Value> {
        let mut at = values;
        for key in &self.0 {
            at = at.as_object()?.get(key)?;
        }
        (!at.is_null()).then_some(at)
    }

    /// Take the value out, dropping maps left empty on the way back up.
    pub fn take(&self, values: &mut Value) -> Option<Value> {
        fn take_in(at: &mut Value, keys: &[String]) -> Option<Value> {
            let map = at.as_object_mut()?;
            if keys.len() == 1 {
                return map.remove(&keys[0]);
            }
            let inner = map.get_mut(&keys[0])?;
            let taken = take_in(inner, &keys[1..]);
            if inner.as_object().is_some_and(|m| m.is_empty()) {
                map.remove(&keys[0]);
            }
            taken
        }
        take_in(values, &self.0)
    }

    /// Put `value` at this path, making the maps on the way. Fails where a non-map is in
    /// the way (a scalar at `a` when setting `a.b`).
    pub fn put(&self, values: &mut Value, value: Value) -> Result<(), String> {
        let mut at = values;
        for (i, key) in self.0.iter().enumerate() {
            if at.is_null() {
                *at = Value::Object(Default::default());
            }
            let Some(map) = at.as_object_mut() else {
                let prefix = KeyPath(self.0[..i].to_vec());
                return Err(format!("`{prefix}` holds a value that is not a map, so `{self}` cannot be set"));
            };
            if i + 1 == self.0.len() {
                map.insert(key.clone(), value);
                return Ok(());
            }
            at = map.entry(key.clone()).or_insert(Value::Null);
        }
        Ok(())
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let escaped: Vec<String> = self.0.iter().map(|s| s.replace('\\', "\\\\").replace('.', "\\.")).collect();
        f.write_str(&escaped.join("."))
    }
}

impl From<KeyPath> for String {
    fn from(path: KeyPath) -> String {
        path.to_string()
    }
}

impl TryFrom<String> for KeyPath {
    type Error = String;
    fn try_from(text: String) -> Result<KeyPath, String> {
        KeyPath::parse(&text)
    }
}

/// One rule of the policy's `values:` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueRule {
    /// The chart version from which the rule holds.
    pub version: ChartVersion,
    #[serde(flatten)]
    pub change: ValueChange,
    /// The vendor's words, shown with the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueChange {
    Require(KeyPath),
    Rename {
        from: KeyPath,
        to: KeyPath,
    },
    Remove(KeyPath),
    /// Sorted by path.
    Set(Vec<(KeyPath, Value)>),
}

impl ValueRule {
    /// Whether a hop from `from` to `to` crosses the rule's version.
    pub fn crossed_by(&self, from: &ChartVersion, to: &ChartVersion) -> bool {
        from < &self.version && &self.version <= to
    }

    /// The rule in words, for the plan: `rename postgres.host → database.host`.
    pub fn describe(&self) -> String {
        match &self.change {
            ValueChange::Require(path) => format!("require {path}"),
            ValueChange::Rename { from, to } => format!("rename {from} → {to}"),
            ValueChange::Remove(path) => format!("remove {path}"),
            ValueChange::Set(pairs) => {
                let keys: Vec<String> = pairs.iter().map(|(p, _)| p.to_string()).collect();
                format!("set {}", keys.join(", "))
            }
        }
    }
}

/// Why a rule cannot be applied to a values tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// A rename would overwrite a value already at its new path.
    RenameOntoExisting { from: KeyPath, to: KeyPath },
    /// A value is in the way of a path (`a` is a string, `a.b` is to be set).
    Blocked(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::RenameOntoExisting { from, to } => {
                write!(f, "the values set both `{from}` and its new name `{to}`: the rename would overwrite `{to}`")
            }
            ApplyError::Blocked(why) => f.write_str(why),
        }
    }
}

/// Apply the changing rules (`rename`, `remove`, `set`) to a carried values tree; a
/// `require` changes nothing (see [`missing`]). Says what it did, for the plan.
pub fn apply(rule: &ValueRule, values: &mut Value) -> Result<Option<String>, ApplyError> {
    match &rule.change {
        ValueChange::Require(_) => Ok(None),
        ValueChange::Rename { from, to } => {
            if from.get(values).is_none() {
                return Ok(None); // nothing to move: the release never set it
            }
            if to.get(values).is_some() {
                return Err(ApplyError::RenameOntoExisting { from: from.clone(), to: to.clone() });
            }
            let value = from.take(values).expect("checked above");
            to.put(values, value).map_err(ApplyError::Blocked)?;
            Ok(Some(format!("moved {from} to {to}")))
        }
        ValueChange::Remove(path) => Ok(path.take(values).map(|_| format!("removed {path}"))),
        ValueChange::Set(pairs) => {
            for (path, value) in pairs {
                path.put(values, value.clone()).map_err(ApplyError::Blocked)?;
            }
            Ok(Some(rule.describe()))
        }
    }
}

/// A `require` not met by the carried values nor by a path the operator sets.
pub fn missing(rule: &ValueRule, carried: &Value, operator_sets: &[KeyPath]) -> Option<KeyPath> {
    let ValueChange::Require(path) = &rule.change else { return None };
    // The operator's paths are leaves: one at or below the required path sets it; one
    // above it (a map beside it) does not.
    let set_by_operator = operator_sets.iter().any(|set| set.within(path));
    (path.get(carried).is_none() && !set_by_operator).then(|| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> KeyPath {
        KeyPath::parse(text).unwrap()
    }

    fn rule(version: &str, change: ValueChange) -> ValueRule {
        ValueRule { version: version.parse().unwrap(), change, message: None }
    }

    #[test]
    fn paths_are_read_as_helm_reads_set_keys() {
        assert_eq!(path("redis.host").segments(), ["redis", "host"]);
        assert_eq!(path(r"podLabels.app\.kubernetes\.io/name").segments(), ["podLabels", "app.kubernetes.io/name"]);
        assert_eq!(path(r"podLabels.app\.kubernetes\.io/name").to_string(), r"podLabels.app\.kubernetes\.io/name");
        for bad in ["", "a..b", ".a", "a.", "a[0].b", "a\\", "a.\u{1b}b", " . "] {
            assert!(KeyPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_rename_moves_the_value_and_drops_emptied_maps() {
        let mut values = json!({"postgres": {"host": "db"}, "replicaCount": 2});
        let r = rule("1.3.0", ValueChange::Rename { from: path("postgres.host"), to: path("database.host") });
        assert_eq!(apply(&r, &mut values).unwrap().as_deref(), Some("moved postgres.host to database.host"));
        assert_eq!(values, json!({"database": {"host": "db"}, "replicaCount": 2}));
        // Not set: nothing to move.
        let mut other = json!({"replicaCount": 2});
        assert_eq!(apply(&r, &mut other).unwrap(), None);
        // Both set: refused, nothing changed.
        let mut both = json!({"postgres": {"host": "a"}, "database": {"host": "b"}});
        let before = both.clone();
        assert!(matches!(apply(&r, &mut both), Err(ApplyError::RenameOntoExisting { .. })));
        assert_eq!(both, before);
    }

    #[test]
    fn remove_and_set_change_the_carried_values() {
        let mut values = json!({"legacy": {"flag": true, "other": 1}});
        apply(&rule("2.0.0", ValueChange::Remove(path("legacy.flag"))), &mut values).unwrap();
        assert_eq!(values, json!({"legacy": {"other": 1}}));
        let set = rule("2.0.0", ValueChange::Set(vec![(path("features.newUI"), json!(true))]));
        apply(&set, &mut values).unwrap();
        assert_eq!(values["features"]["newUI"], json!(true));
        let mut blocked = json!({"features": "on"});
        assert!(matches!(apply(&set, &mut blocked), Err(ApplyError::Blocked(_))));
    }

    #[test]
    fn a_requirement_is_met_by_the_values_or_by_the_operator() {
        let r = rule("4.0.0", ValueChange::Require(path("redis.host")));
        assert_eq!(missing(&r, &json!({}), &[]), Some(path("redis.host")));
        assert_eq!(missing(&r, &json!({"redis": {"host": null}}), &[]), Some(path("redis.host")));
        assert_eq!(missing(&r, &json!({"redis": {"host": "r:6379"}}), &[]), None);
        assert_eq!(missing(&r, &json!({}), &[path("redis.host")]), None);
        assert_eq!(missing(&r, &json!({}), &[path("redis.host.primary")]), None, "set below it");
        assert_eq!(missing(&r, &json!({}), &[path("redis.port")]), Some(path("redis.host")), "a sibling is not it");
        assert_eq!(missing(&r, &json!({}), &[path("redis")]), Some(path("redis.host")), "a leaf redis is no map");
    }

    #[test]
    fn a_rule_applies_at_the_hop_that_crosses_its_version() {
        let r = rule("1.3.0", ValueChange::Remove(path("x")));
        let v = |s: &str| s.parse::<ChartVersion>().unwrap();
        assert!(r.crossed_by(&v("1.2.6"), &v("1.3.0")));
        assert!(r.crossed_by(&v("1.0.0"), &v("2.0.0")));
        assert!(!r.crossed_by(&v("1.3.0"), &v("1.3.2")), "already past it");
        assert!(!r.crossed_by(&v("1.1.0"), &v("1.2.6")), "not there yet");
    }
}
