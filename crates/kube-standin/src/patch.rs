//! The three client-side patch formats: strategic merge patch (helm 3, helm 4 with
//! `--server-side=false`, kubectl), JSON merge patch and RFC 6902 JSON patch. Also owns
//! the merge-key table that strategic merge and server-side apply share, because both
//! must identify list elements the same way.

use serde_json::{Map, Value};

/// A patch body that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("invalid JSON patch: {0}")]
    JsonPatch(String),
    #[error("the patch must be a JSON object")]
    NotAnObject,
}

/// The merge key of the list at `path` (field names from the object root, list indices
/// left out), as declared by `patchMergeKey` in the Kubernetes types. `None` means the
/// list is atomic and a patch replaces it whole.
pub fn merge_key(path: &[String]) -> Option<&'static str> {
    let field = path.last()?.as_str();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str()).unwrap_or("");
    let in_container = matches!(parent, "containers" | "initContainers" | "ephemeralContainers");
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "imagePullSecrets" | "resourceClaims" => {
            "name"
        }
        "env" if in_container => "name",
        "ports" if in_container => "containerPort",
        // Service ports; NetworkPolicy and Ingress ports are atomic.
        "ports" if parent == "spec" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

/// The patch value with every directive and every `null` removed: what a patch element
/// that has nothing to merge into becomes.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, v)| !is_directive(k) && !v.is_null()).map(|(k, v)| (k.clone(), clean(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// Applies a strategic merge patch to `target` in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let patch = patch.as_object().ok_or(PatchError::NotAnObject)?;
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let mut path = Vec::new();
    if !merge_map(target, patch, &mut path) {
        *target = Value::Object(Map::new());
    }
    Ok(())
}

/// Merges `patch` into `target` (a map); returns false when the map is to be deleted
/// (`$patch: delete`).
fn merge_map(target: &mut Value, patch: &Map<String, Value>, path: &mut Vec<String>) -> bool {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return false,
        Some("replace") => {
            *target = clean(&Value::Object(patch.clone()));
            return true;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, pv) in patch {
        if is_directive(k) {
            continue;
        }
        let t = target.as_object_mut().expect("target is a map");
        path.push(k.clone());
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(pm) => {
                let slot = t.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if !merge_map(slot, pm, path) {
                    t.remove(k);
                }
            }
            Value::Array(pa) => {
                if let Some(key) = merge_key(path) {
                    let slot = t.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new()));
                    if !slot.is_array() {
                        *slot = Value::Array(Vec::new());
                    }
                    merge_list(slot, pa, key, path);
                } else if k == "finalizers" {
                    // ObjectMeta.finalizers is a primitive list with patchStrategy merge.
                    let slot = t.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = slot {
                        for v in pa {
                            if !items.contains(v) {
                                items.push(v.clone());
                            }
                        }
                    }
                } else {
                    t.insert(k.clone(), clean(pv));
                }
            }
            scalar => {
                t.insert(k.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    let t = target.as_object_mut().expect("target is a map");
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(del)) = (t.get_mut(field), pv.as_array()) {
                items.retain(|v| !del.contains(v));
            }
        } else if let Some(field) = k.strip_prefix("$setElementOrder/") {
            path.push(field.to_string());
            let key = merge_key(path);
            path.pop();
            if let (Some(Value::Array(items)), Some(order)) = (t.get_mut(field), pv.as_array()) {
                set_order(items, order, key);
            }
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
    true
}

fn key_of<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?.get(key)
}

/// Merges a patch list into a list whose elements are identified by `key`.
fn merge_list(target: &mut Value, patch: &[Value], key: &str, path: &mut Vec<String>) {
    let items = target.as_array_mut().expect("target is a list");
    if patch.iter().any(|p| key_of(p, "$patch").and_then(Value::as_str) == Some("replace")) {
        *items = patch.iter().filter(|p| key_of(p, "$patch").is_none()).map(clean).collect();
        return;
    }
    for p in patch {
        let Some(pm) = p.as_object() else {
            if !items.contains(p) {
                items.push(p.clone());
            }
            continue;
        };
        let id = pm.get(key);
        let pos = id.and_then(|id| items.iter().position(|t| key_of(t, key) == Some(id)));
        match (pm.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), _) => items.retain(|t| id.is_none() || key_of(t, key) != id),
            (_, Some(i)) => {
                if !merge_map(&mut items[i], pm, path) {
                    items.remove(i);
                }
            }
            (_, None) => items.push(clean(p)),
        }
    }
}

/// Orders `items` as `$setElementOrder` says; elements it does not name keep their
/// relative order after the named ones.
fn set_order(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => key_of(v, k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut rest: Vec<Value> = std::mem::take(items);
    for o in order {
        let want = ident(o);
        if let Some(i) = rest.iter().position(|v| ident(v) == want) {
            items.push(rest.remove(i));
        }
    }
    items.extend(rest);
}

/// Applies an RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::JsonPatch(e.to_string()))?;
    json_patch::patch(target, &ops).map_err(|e| PatchError::JsonPatch(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(mut t: Value, p: Value) -> Value {
        strategic_merge(&mut t, &p).unwrap();
        t
    }

    #[test]
    fn null_deletes_map_keys() {
        // Captured from helm 3 upgrading the demo ConfigMap.
        let out = smp(
            json!({"data": {"legacy": "x", "message": "hello-v1"}}),
            json!({"data": {"added": "since-v2", "legacy": null, "message": "hello-v2"}}),
        );
        assert_eq!(out, json!({"data": {"added": "since-v2", "message": "hello-v2"}}));
    }

    #[test]
    fn service_port_replaced_by_merge_key() {
        // Captured from helm 3 moving the Service from port 80 to 8080.
        let out = smp(
            json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}],
                "clusterIP": "10.96.0.10"}}),
            json!({"spec": {"$setElementOrder/ports": [{"port": 8080}],
                "ports": [{"name": "http", "port": 8080, "targetPort": 80}, {"$patch": "delete", "port": 80}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 80}], "clusterIP": "10.96.0.10"}})
        );
    }

    #[test]
    fn env_var_removed_inside_a_container() {
        let target = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "env": [{"name": "MESSAGE", "value": "a"}, {"name": "EXTRA", "value": "b"}]},
            {"name": "side", "image": "busybox"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"$setElementOrder/env": [{"name": "MESSAGE"}],
                "env": [{"$patch": "delete", "name": "EXTRA"}], "image": "nginx:2", "name": "web"}]}}}});
        let out = smp(target, patch);
        let c = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0], json!({"name": "web", "image": "nginx:2", "env": [{"name": "MESSAGE", "value": "a"}]}));
        assert_eq!(c[1]["name"], "side");
    }

    #[test]
    fn set_element_order_reorders_and_new_elements_merge() {
        let out = smp(
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "x"}]}}),
        );
        assert_eq!(out, json!({"spec": {"containers": [{"name": "c", "image": "x"}, {"name": "b"}, {"name": "a"}]}}));
    }

    #[test]
    fn atomic_lists_replace_and_directives_work() {
        let out = smp(
            json!({"spec": {"args": ["a", "b"], "tolerations": [{"key": "x"}], "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
                "metadata": {"finalizers": ["a", "b"]}}),
            json!({"spec": {"args": ["c"], "tolerations": [],
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}},
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"args": ["c"], "tolerations": [], "strategy": {"type": "Recreate"}},
                "metadata": {"finalizers": ["b", "c"]}})
        );
        let out = smp(json!({"data": {"a": "1"}}), json!({"data": {"$patch": "replace", "b": "2"}}));
        assert_eq!(out, json!({"data": {"b": "2"}}));
    }

    #[test]
    fn merge_and_json_patches() {
        let mut v = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut v, &json!({"a": {"b": null, "d": 3}}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}}));
        json_patch(&mut v, &json!([{"op": "replace", "path": "/a/c", "value": 5}])).unwrap();
        assert_eq!(v, json!({"a": {"c": 5, "d": 3}}));
        assert!(json_patch(&mut v, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
