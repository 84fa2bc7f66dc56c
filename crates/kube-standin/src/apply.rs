//! Server-side apply: per-object, per-manager field sets, and the apply merge that
//! removes fields a manager applied before but no longer applies (unless another
//! manager also owns them). Without that removal helm 4 reports success while stale
//! ConfigMap keys, env vars and Service ports stay behind. Non-apply writes move the
//! fields they change to their manager, which gives ownership conflicts.
//!
//! `metadata.managedFields` is not exposed: helm works without it and then never sends
//! the csaupgrade JSON patch.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::patch::merge_key;

/// A field path: `f:<field>` segments, and `k:<json key>` segments for elements of
/// lists that have merge keys.
pub type FieldPath = Vec<String>;
/// The set of paths a manager owns.
pub type FieldSet = BTreeSet<FieldPath>;

/// Field sets of one object, by manager name.
#[derive(Debug, Clone, Default)]
pub struct Managers(pub BTreeMap<String, FieldSet>);

/// An apply that would change a field another manager owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

/// The key identifying `elem` in the list at `names` (field names), as a `k:` segment.
/// Service ports are keyed by port and protocol, as SSA's list-map-keys say.
fn elem_key(names: &[String], elem: &Value) -> Option<String> {
    let key = merge_key(names)?;
    let obj = elem.as_object()?;
    let mut k = Map::new();
    k.insert(key.to_string(), obj.get(key)?.clone());
    if key == "port" || key == "containerPort" {
        let proto = obj.get("protocol").cloned().unwrap_or_else(|| "TCP".into());
        k.insert("protocol".into(), proto);
    }
    Some(format!("k:{}", Value::Object(k)))
}

fn names_of(path: &[String]) -> Vec<String> {
    path.iter().filter_map(|s| s.strip_prefix("f:").map(String::from)).collect()
}

/// Fields the server owns and apply never tracks.
fn skipped(path: &[String], field: &str) -> bool {
    match path {
        [] => matches!(field, "apiVersion" | "kind" | "status"),
        [m] if m == "f:metadata" => matches!(
            field,
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "selfLink"
                | "deletionTimestamp"
        ),
        _ => false,
    }
}

fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(map) = v.as_object() else { return };
    for (k, child) in map {
        if skipped(path, k) {
            continue;
        }
        path.push(format!("f:{k}"));
        out.insert(path.clone());
        match child {
            Value::Object(_) => walk(child, path, out),
            Value::Array(items) => {
                let names = names_of(path);
                if merge_key(&names).is_some() {
                    for item in items {
                        if let Some(key) = elem_key(&names, item) {
                            path.push(key);
                            out.insert(path.clone());
                            walk(item, path, out);
                            path.pop();
                        }
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// Every path present in `v`, skipping server-owned fields.
pub fn field_set(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`, if present.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for (i, seg) in path.iter().enumerate() {
        if let Some(f) = seg.strip_prefix("f:") {
            cur = cur.as_object()?.get(f)?;
        } else {
            let names = names_of(&path[..i]);
            cur = cur.as_array()?.iter().find(|e| elem_key(&names, e).as_deref() == Some(seg.as_str()))?;
        }
    }
    Some(cur)
}

/// Removes the field or list element at `path`; a missing path is fine.
fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else { return };
    let names = names_of(parent_path);
    let mut cur = v;
    for (i, seg) in parent_path.iter().enumerate() {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.as_object_mut().and_then(|m| m.get_mut(f))
        } else {
            let names = names_of(&parent_path[..i]);
            cur.as_array_mut().and_then(|a| a.iter_mut().find(|e| elem_key(&names, e).as_deref() == Some(seg.as_str())))
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(a) = cur.as_array_mut() {
        a.retain(|e| elem_key(&names, e).as_deref() != Some(last.as_str()));
    }
}

/// Whether the value at `path` in `v` is a leaf: a scalar or an atomic list.
fn is_leaf(v: &Value, path: &[String]) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(_) => merge_key(&names_of(path)).is_none(),
        _ => true,
    }
}

/// Merges an applied configuration into `live`: maps field by field, keyed lists element
/// by element (applied elements first, in applied order), everything else replaced.
fn merge(live: &mut Value, applied: &Value, names: &mut Vec<String>) {
    match applied {
        Value::Object(am) => {
            if !live.is_object() {
                *live = Value::Object(Map::new());
            }
            let lm = live.as_object_mut().expect("map");
            for (k, av) in am {
                if av.is_null() {
                    lm.remove(k);
                    continue;
                }
                names.push(k.clone());
                let slot = lm.entry(k.clone()).or_insert(Value::Null);
                merge(slot, av, names);
                names.pop();
            }
        }
        Value::Array(aa) if merge_key(names).is_some() => {
            let mut rest = match std::mem::take(live) {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            let mut out = Vec::new();
            for ae in aa {
                let key = elem_key(names, ae);
                let pos = key.as_ref().and_then(|k| rest.iter().position(|e| elem_key(names, e).as_ref() == Some(k)));
                let mut e = pos.map(|i| rest.remove(i)).unwrap_or(Value::Null);
                merge(&mut e, ae, names);
                out.push(e);
            }
            out.extend(rest);
            *live = Value::Array(out);
        }
        other => *live = other.clone(),
    }
}

fn render(path: &[String]) -> String {
    path.iter()
        .map(|s| s.strip_prefix("f:").map(String::from).unwrap_or_else(|| format!("[{}]", &s[2..])))
        .collect::<Vec<_>>()
        .join(".")
}

/// Server-side apply of `applied` by `manager` onto `live` (None: the object is created).
/// Returns the new object, or the conflicts when `force` is false.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    managers: &mut Managers,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let new_set = field_set(applied);
    let mut conflicts = Vec::new();
    if let Some(live) = live {
        for p in &new_set {
            let (Some(av), Some(lv)) = (get_path(applied, p), get_path(live, p)) else { continue };
            if !is_leaf(av, p) || av == lv {
                continue;
            }
            for (other, set) in &managers.0 {
                if other != manager && set.contains(p) {
                    conflicts.push(Conflict { manager: other.clone(), path: render(p) });
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        if let Some(set) = managers.0.get_mut(&c.manager) {
            set.retain(|p| render(p) != c.path);
        }
    }
    let others: FieldSet =
        managers.0.iter().filter(|(m, _)| *m != manager).flat_map(|(_, s)| s.iter().cloned()).collect();
    let mut result = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(prev) = managers.0.get(manager) {
        for p in prev.difference(&new_set) {
            if !others.contains(p) {
                remove_path(&mut result, p);
            }
        }
    }
    merge(&mut result, applied, &mut Vec::new());
    managers.0.insert(manager.to_string(), new_set);
    Ok(result)
}

/// Records a non-apply write (create, update, patch) by `manager`: the fields it added or
/// changed become its own and leave other managers.
pub fn record_update(old: Option<&Value>, new: &Value, manager: &str, managers: &mut Managers) {
    let changed: Vec<FieldPath> = field_set(new)
        .into_iter()
        .filter(|p| match (old.and_then(|o| get_path(o, p)), get_path(new, p)) {
            (None, _) => true,
            (Some(ov), Some(nv)) => is_leaf(nv, p) && ov != nv,
            _ => false,
        })
        .collect();
    for (m, set) in managers.0.iter_mut() {
        if m != manager {
            for p in &changed {
                if get_path(new, p).is_some_and(|v| is_leaf(v, p)) {
                    set.remove(p);
                }
            }
        }
    }
    managers.0.entry(manager.to_string()).or_default().extend(changed);
    prune(new, managers);
}

/// Drops paths that no longer exist in `obj` from every manager.
pub fn prune(obj: &Value, managers: &mut Managers) {
    for set in managers.0.values_mut() {
        set.retain(|p| get_path(obj, p).is_some());
    }
    managers.0.retain(|_, s| !s.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let mut m = Managers::default();
        let v1 = apply(None, &cm(json!({"legacy": "x", "message": "v1"})), "helm", &mut m, false).unwrap();
        let v2 = apply(Some(&v1), &cm(json!({"added": "y", "message": "v2"})), "helm", &mut m, false).unwrap();
        assert_eq!(v2["data"], json!({"added": "y", "message": "v2"}));
    }

    #[test]
    fn apply_removes_list_elements_by_key() {
        let dep = |env: Value, port: u16| {
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "env": env, "ports": [{"containerPort": port}]}]}}}})
        };
        let mut m = Managers::default();
        let mut live = apply(
            None,
            &dep(json!([{"name": "A", "value": "1"}, {"name": "EXTRA", "value": "2"}]), 80),
            "helm",
            &mut m,
            false,
        )
        .unwrap();
        // The server defaults a field nobody applied; apply must keep it.
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always".into();
        let v2 = apply(Some(&live), &dep(json!([{"name": "A", "value": "1"}]), 8080), "helm", &mut m, false).unwrap();
        let c = &v2["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(c["ports"], json!([{"containerPort": 8080}]));
        assert_eq!(c["imagePullPolicy"], "Always");
    }

    #[test]
    fn fields_shared_with_another_manager_stay_and_conflicts_are_reported() {
        let dep = |replicas: u32, extra: bool| {
            let mut d = json!({"spec": {"replicas": replicas, "paused": false}});
            if extra {
                d["spec"]["minReadySeconds"] = 5.into();
            }
            d
        };
        let mut m = Managers::default();
        let live = apply(None, &dep(1, true), "helm", &mut m, false).unwrap();
        // kubectl scales to 3: spec.replicas moves to kubectl-patch.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = 3.into();
        record_update(Some(&live), &scaled, "kubectl-patch", &mut m);
        let conflicts = apply(Some(&scaled), &dep(1, true), "helm", &mut m, false).unwrap_err();
        assert_eq!(conflicts, vec![Conflict { manager: "kubectl-patch".into(), path: "spec.replicas".into() }]);
        // Applying the live value is not a conflict; dropping a field removes it.
        let v = apply(Some(&scaled), &dep(3, false), "helm", &mut m, false).unwrap();
        assert_eq!(v["spec"], json!({"replicas": 3, "paused": false}));
        // Forcing takes ownership.
        let v = apply(Some(&scaled), &dep(2, false), "helm", &mut m, true).unwrap();
        assert_eq!(v["spec"]["replicas"], 2);
        assert!(
            !m.0.get("kubectl-patch")
                .is_some_and(|s| s.contains(&vec!["f:spec".to_string(), "f:replicas".to_string()]))
        );
    }

    #[test]
    fn service_ports_are_keyed_by_port_and_protocol() {
        let svc = |ports: Value| json!({"spec": {"ports": ports}});
        let mut m = Managers::default();
        let live =
            apply(None, &svc(json!([{"port": 53, "protocol": "UDP"}, {"port": 53}])), "helm", &mut m, false).unwrap();
        assert_eq!(live["spec"]["ports"].as_array().unwrap().len(), 2);
        let v =
            apply(Some(&live), &svc(json!([{"port": 53, "protocol": "TCP", "name": "tcp"}])), "helm", &mut m, false)
                .unwrap();
        assert_eq!(v["spec"]["ports"], json!([{"port": 53, "protocol": "TCP", "name": "tcp"}]));
    }
}
