//! The write semantics of the API server over the store: create, update, the patch
//! formats, server-side apply, status and scale subresources, and delete. Each operation
//! validates, defaults, bumps `generation` on spec changes, keeps status for types with a
//! status subresource, records field ownership, and queues controller work. Errors are
//! Kubernetes `Status` objects.

use serde_json::{Value, json};

use crate::apply;
use crate::defaults;
use crate::patch;
use crate::resources::ResourceType;
use crate::store::{ObjKey, State, now};

/// An API error, rendered as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: Value::Null }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = json!({"name": name, "group": rt.group, "kind": rt.plural});
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(404, "NotFound", format!("{} {name:?} not found", rt.qualified())).about(rt, name)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// kube-apiserver's `NewInvalid`: `Job.batch "x" is invalid: FIELD: WHY`, with
    /// `details.kind` the Kind and one cause per field error, which kubectl prints as
    /// `The Job "x" is invalid: FIELD: WHY` (without causes it prints no reason at all).
    fn invalid(rt: &ResourceType, name: &str, detail: &str) -> Self {
        let qualified = if rt.group.is_empty() { rt.kind.to_string() } else { format!("{}.{}", rt.kind, rt.group) };
        let mut e = ApiError::new(422, "Invalid", format!("{qualified} {name:?} is invalid: {detail}"));
        let (field, why) = detail.split_once(": ").unwrap_or(("", detail));
        let reason = match why.split(':').next().unwrap_or_default() {
            "Required value" => "FieldValueRequired",
            "Forbidden" => "FieldValueForbidden",
            _ => "FieldValueInvalid",
        };
        e.details = json!({"name": name, "group": rt.group, "kind": rt.kind,
            "causes": [{"reason": reason, "message": why, "field": field}]});
        e
    }

    /// The `Status` object a client receives.
    pub fn status(&self) -> Value {
        let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code});
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}

/// Who writes, and how: the `fieldManager` query parameter (or a default).
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub manager: String,
    pub force: bool,
}

/// The body of a PATCH, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        Some(match ct {
            "application/json-patch+json" => PatchType::Json,
            "application/merge-patch+json" => PatchType::Merge,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
            _ => return None,
        })
    }
}

/// Kinds the controller acts on when their spec changes.
fn controlled(rt: &ResourceType) -> bool {
    matches!(rt.kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "Pod")
}

/// Everything but metadata and status: a change here bumps `generation`.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn uid_of(v: &Value) -> String {
    v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Checks the namespace in the body against the URL's, and that it exists.
fn check_namespace(st: &State, rt: &ResourceType, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    if !rt.namespaced {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(b) if !b.is_empty() && b != ns => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => obj["metadata"]["namespace"] = ns.into(),
    }
    let ns_rt = crate::resources::lookup("v1", "namespaces").expect("served");
    if st.get(&ObjKey::new(ns_rt, "", ns)).is_none() {
        return Err(ApiError::not_found(ns_rt, ns));
    }
    Ok(())
}

/// Stores `new` as a create (`old` None) or an update, after the checks every write
/// shares. `manager` is Some for non-apply writes, whose changed fields it takes over.
fn commit(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    mut new: Value,
    old: Option<&Value>,
    manager: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    if !new.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    check_namespace(st, rt, ns, &mut new)?;
    let name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(old) = old else {
        let key = ObjKey::new(rt, ns, &name);
        if st.get(&key).is_some() {
            return Err(ApiError::new(409, "AlreadyExists", format!("{} {name:?} already exists", rt.qualified()))
                .about(rt, &name));
        }
        let uid = st.new_uid();
        let meta = &mut new["metadata"];
        meta["uid"] = uid.clone().into();
        meta["creationTimestamp"] = now().into();
        if let Some(m) = meta.as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
        }
        if rt.status
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        defaults::apply_defaults(rt, &mut new, &mut st.alloc);
        if new.get("spec").is_some() {
            new["metadata"]["generation"] = 1.into();
        }
        defaults::validate(rt, &new).map_err(|d| ApiError::invalid(rt, &name, &d))?;
        if let Some(m) = manager {
            apply::record_update(None, &new, m, st.managers_mut(&uid));
        }
        let stored = st.put(key.clone(), new);
        if controlled(rt) {
            st.pending.push(key);
        }
        return Ok((201, stored));
    };
    let key = ObjKey::new(rt, ns, &name);
    if let Some(rv) = new.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        && !rv.is_empty()
        && Some(rv) != old.pointer("/metadata/resourceVersion").and_then(Value::as_str)
    {
        return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                    rt.qualified()
                ),
            )
            .about(rt, &name));
    }
    for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => _ = new["metadata"].as_object_mut().map(|m| m.remove(field)),
        }
    }
    if rt.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => _ = new.as_object_mut().map(|m| m.remove("status")),
        }
    }
    defaults::carry_over(rt, old, &mut new);
    defaults::apply_defaults(rt, &mut new, &mut st.alloc);
    defaults::validate(rt, &new).map_err(|d| ApiError::invalid(rt, &name, &d))?;
    defaults::check_immutable(rt, old, &new).map_err(|d| ApiError::invalid(rt, &name, &d))?;
    let spec_changed = spec_part(old) != spec_part(&new);
    if spec_changed && old["metadata"].get("generation").is_some() {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
        new["metadata"]["generation"] = (g + 1).into();
    }
    let uid = uid_of(old);
    match manager {
        Some(m) => apply::record_update(Some(old), &new, m, st.managers_mut(&uid)),
        None => apply::prune(&new, st.managers_mut(&uid)),
    }
    if new == *old {
        // A write that changes nothing is a no-op: no new resourceVersion, no event.
        return Ok((200, new));
    }
    let stored = st.put(key.clone(), new);
    if spec_changed && controlled(rt) {
        st.pending.push(key);
    }
    Ok((200, stored))
}

/// POST to a collection.
pub fn create(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    mut body: Value,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty()
        && let Some(prefix) = body.pointer("/metadata/generateName").and_then(Value::as_str)
    {
        let suffix = st.new_uid();
        body["metadata"]["name"] = format!("{prefix}{}", &suffix[suffix.len() - 5..]).into();
    }
    commit(st, rt, ns, body, None, Some(&ctx.manager))
}

/// The object at `key`, or NotFound.
pub fn get(st: &State, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
    st.get(&ObjKey::new(rt, ns, name)).cloned().ok_or_else(|| ApiError::not_found(rt, name))
}

fn check_name(name: &str, body: &Value) -> Result<(), ApiError> {
    match body.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// PUT of the main resource (`sub` None) or of its `status`.
pub fn update(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut body: Value,
    sub: Option<&str>,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    check_name(name, &body)?;
    let old = get(st, rt, ns, name)?;
    body["metadata"]["name"] = name.into();
    match sub {
        Some("status") => {
            let mut new = old.clone();
            new["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            if let Some(rv) = body.pointer("/metadata/resourceVersion") {
                new["metadata"]["resourceVersion"] = rv.clone();
            }
            write_status(st, rt, ns, &old, new)
        }
        Some("scale") => {
            let mut new = old.clone();
            new["spec"]["replicas"] = body.pointer("/spec/replicas").cloned().unwrap_or(Value::Null);
            commit(st, rt, ns, new, Some(&old), Some(&ctx.manager)).map(|(c, v)| (c, scale_of(&v)))
        }
        _ => commit(st, rt, ns, body, Some(&old), Some(&ctx.manager)),
    }
}

/// Writes a new status, bypassing the status preservation of main-resource writes.
fn write_status(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    old: &Value,
    new: Value,
) -> Result<(u16, Value), ApiError> {
    if let Some(rv) = new.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        && Some(rv) != old.pointer("/metadata/resourceVersion").and_then(Value::as_str)
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    if new == *old {
        return Ok((200, new));
    }
    let name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok((200, st.put(ObjKey::new(rt, ns, &name), new)))
}

/// The `autoscaling/v1 Scale` view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector}})
}

/// PATCH in any of the four formats, on the main resource, `status` or `scale`.
#[allow(clippy::too_many_arguments)] // the request's parts, each used once
pub fn patch(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    ptype: PatchType,
    body: &Value,
    sub: Option<&str>,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let live = st.get(&ObjKey::new(rt, ns, name)).cloned();
    if ptype == PatchType::Apply {
        if sub.is_some() {
            return Err(ApiError::bad_request("apply on subresources is not supported by the stand-in"));
        }
        check_name(name, body)?;
        let mut applied = body.clone();
        applied["metadata"]["name"] = name.into();
        if rt.namespaced {
            applied["metadata"]["namespace"] = ns.into();
        }
        let mut managers = live.as_ref().map(|l| st.managers_mut(&uid_of(l)).clone()).unwrap_or_default();
        let new = apply::apply(live.as_ref(), &applied, &ctx.manager, &mut managers, ctx.force).map_err(|conflicts| {
            let msg = conflicts
                .iter()
                .map(|c| format!("conflict with {:?}: {}", c.manager, c.path))
                .collect::<Vec<_>>();
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"type": "FieldManagerConflict", "message": format!("conflict with {:?}", c.manager), "field": format!(".{}", c.path)}))
                .collect();
            let mut e = ApiError::new(
                409,
                "Conflict",
                format!("Apply failed with {} conflict{}: {}", msg.len(), if msg.len() == 1 { "" } else { "s" }, msg.join("\n")),
            )
            .about(rt, name);
            e.details["causes"] = causes.into();
            e
        })?;
        let (code, stored) = commit(st, rt, ns, new, live.as_ref(), None)?;
        let uid = uid_of(&stored);
        *st.managers_mut(&uid) = managers;
        apply::prune(&stored, st.managers_mut(&uid));
        return Ok((code, stored));
    }
    let live = live.ok_or_else(|| ApiError::not_found(rt, name))?;
    let mut target = match sub {
        Some("scale") => scale_of(&live),
        _ => live.clone(),
    };
    match ptype {
        PatchType::Json => patch::json_patch(&mut target, body).map_err(|e| ApiError::bad_request(e.to_string()))?,
        PatchType::Merge => patch::merge_patch(&mut target, body),
        PatchType::Strategic => {
            patch::strategic_merge(&mut target, body).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        PatchType::Apply => unreachable!("handled above"),
    }
    match sub {
        Some("status") => {
            let mut new = live.clone();
            new["status"] = target.get("status").cloned().unwrap_or(Value::Null);
            write_status(st, rt, ns, &live, new)
        }
        Some("scale") => {
            let mut new = live.clone();
            new["spec"]["replicas"] = target.pointer("/spec/replicas").cloned().unwrap_or(Value::Null);
            commit(st, rt, ns, new, Some(&live), Some(&ctx.manager)).map(|(c, v)| (c, scale_of(&v)))
        }
        _ => commit(st, rt, ns, target, Some(&live), Some(&ctx.manager)),
    }
}

/// DELETE of one object; dependents go too unless `propagationPolicy` is Orphan.
pub fn delete(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    options: &Value,
) -> Result<(u16, Value), ApiError> {
    let key = ObjKey::new(rt, ns, name);
    if st.get(&key).is_none() {
        return Err(ApiError::not_found(rt, name));
    }
    let cascade = options.get("propagationPolicy").and_then(Value::as_str) != Some("Orphan")
        && options.get("orphanDependents") != Some(&Value::Bool(true));
    let last = st.remove(&key, cascade).expect("checked above");
    Ok((200, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    fn ctx(m: &str) -> WriteCtx {
        WriteCtx { manager: m.into(), force: false }
    }

    #[test]
    fn create_update_and_generation() {
        let mut st = State::new();
        let rt = lookup("apps/v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
        let (code, obj) = create(&mut st, rt, "default", d.clone(), &ctx("helm")).unwrap();
        assert_eq!((code, obj["metadata"]["generation"].clone()), (201, json!(1)));
        assert_eq!(create(&mut st, rt, "default", d.clone(), &ctx("helm")).unwrap_err().code, 409);
        assert_eq!(create(&mut st, rt, "nope", d.clone(), &ctx("helm")).unwrap_err().code, 404);
        let p = json!({"spec": {"replicas": 3}});
        let (_, obj) =
            patch(&mut st, rt, "default", "d", PatchType::Strategic, &p, None, &ctx("kubectl-patch")).unwrap();
        assert_eq!(obj["metadata"]["generation"], 2);
        // Same patch again: no-op, same resourceVersion.
        let (_, again) =
            patch(&mut st, rt, "default", "d", PatchType::Strategic, &p, None, &ctx("kubectl-patch")).unwrap();
        assert_eq!(again["metadata"]["resourceVersion"], obj["metadata"]["resourceVersion"]);
        // Stale resourceVersion.
        let mut stale = obj.clone();
        stale["metadata"]["resourceVersion"] = "1".into();
        assert_eq!(update(&mut st, rt, "default", "d", stale, None, &ctx("x")).unwrap_err().code, 409);
        // Selector is immutable.
        let p = json!({"spec": {"selector": {"matchLabels": {"a": "c"}}, "template": {"metadata": {"labels": {"a": "c"}}}}});
        let e = patch(&mut st, rt, "default", "d", PatchType::Merge, &p, None, &ctx("x")).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.message, "Deployment.apps \"d\" is invalid: spec.selector: Invalid value: field is immutable");
        assert_eq!(
            e.status()["details"],
            json!({"name": "d", "group": "apps", "kind": "Deployment", "causes": [{"reason": "FieldValueInvalid",
                "message": "Invalid value: field is immutable", "field": "spec.selector"}]})
        );
        // Apply now conflicts on replicas, owned by kubectl-patch.
        let mut applied = d.clone();
        applied["spec"]["replicas"] = 1.into();
        let e = patch(&mut st, rt, "default", "d", PatchType::Apply, &applied, None, &ctx("helm")).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(e.status()["details"]["causes"][0]["type"], "FieldManagerConflict");
        let (_, last) = delete(&mut st, rt, "default", "d", &json!({})).unwrap();
        assert_eq!(last["metadata"]["name"], "d");
        assert_eq!(get(&st, rt, "default", "d").unwrap_err().code, 404);
    }

    #[test]
    fn status_is_kept_on_main_resource_writes() {
        let mut st = State::new();
        let rt = lookup("batch/v1", "jobs").unwrap();
        let j = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}, "status": {"succeeded": 9}});
        let (_, obj) = create(&mut st, rt, "default", j, &ctx("helm")).unwrap();
        assert!(obj.get("status").is_none(), "status is not taken from a create");
        let (_, obj) =
            update(&mut st, rt, "default", "j", json!({"status": {"succeeded": 1}}), Some("status"), &ctx("c"))
                .unwrap();
        assert_eq!(obj["status"]["succeeded"], 1);
        let mut body = obj.clone();
        body["status"] = json!({});
        body["metadata"]["labels"] = json!({"x": "y"});
        let (_, obj) = update(&mut st, rt, "default", "j", body, None, &ctx("c")).unwrap();
        assert_eq!(obj["status"]["succeeded"], 1);
        assert_eq!(obj["metadata"]["generation"], 1);
    }
}
