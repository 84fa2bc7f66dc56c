//! The object store: objects by type, namespace and name; the global resourceVersion
//! counter; the event log watches replay; SSA field sets per object; and garbage
//! collection of dependents. It knows nothing about HTTP or patch formats. Callers hold
//! the `Mutex<State>` only for synchronous work, never across an await.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::apply::Managers;
use crate::defaults::Allocator;
use crate::resources::{self, ResourceType};

/// Identifies one stored object. `rid` is the type id (`apps/v1/deployments`); `ns` is
/// empty for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub rid: String,
    pub ns: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(rt: &ResourceType, ns: &str, name: &str) -> Self {
        let ns = if rt.namespaced { ns } else { "" };
        ObjKey { rid: rt.id(), ns: ns.to_string(), name: name.to_string() }
    }
}

/// What happened to an object, as sent on a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub rid: String,
    pub ns: String,
    pub kind: EventType,
    pub object: Value,
}

/// Everything the stand-in stores.
#[derive(Debug)]
pub struct State {
    objects: BTreeMap<ObjKey, Value>,
    managers: HashMap<String, Managers>,
    rv: u64,
    uids: u64,
    events: Vec<Event>,
    notify: tokio::sync::watch::Sender<u64>,
    pub alloc: Allocator,
    /// Objects whose spec changed since the controller last looked (drained by the server).
    pub pending: Vec<ObjKey>,
    /// Controller work due later, e.g. a Job whose pod ends its run then: the server
    /// reconciles each key at its time (drained by the server, like `pending`).
    pub timers: Vec<(Instant, ObjKey)>,
    /// When each run-once pod (by uid) the controller started ends its run; entries go
    /// when the run ends.
    pub run_until: HashMap<String, Instant>,
}

/// The current time as RFC 3339 in UTC, second precision (as Kubernetes timestamps).
pub fn now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// A store holding the namespaces every cluster has.
    pub fn new() -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        let mut st = State {
            objects: BTreeMap::new(),
            managers: HashMap::new(),
            rv: 0,
            uids: 0,
            events: Vec::new(),
            notify,
            alloc: Allocator::default(),
            pending: Vec::new(),
            timers: Vec::new(),
            run_until: HashMap::new(),
        };
        let ns_rt = resources::lookup("v1", "namespaces").expect("namespaces are served");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let uid = st.new_uid();
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": uid, "creationTimestamp": now(),
                    "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            st.put(ObjKey::new(ns_rt, "", name), obj);
        }
        st
    }

    /// A fresh uid in UUID form.
    pub fn new_uid(&mut self) -> String {
        self.uids += 1;
        let n = self.uids;
        format!("5eed0000-0000-4000-8000-{n:012x}")
    }

    /// The current global resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// A receiver that sees the resourceVersion after every write.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of type `rid`, in namespace `ns` (None: all namespaces), by key order.
    pub fn list(&self, rid: &str, ns: Option<&str>) -> Vec<&Value> {
        self.objects.iter().filter(|(k, _)| k.rid == rid && ns.is_none_or(|n| k.ns == n)).map(|(_, v)| v).collect()
    }

    /// Keys of every object in a namespace, any type.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<ObjKey> {
        self.objects.keys().filter(|k| k.ns == ns).cloned().collect()
    }

    /// Events with a resourceVersion above `rv`.
    pub fn events_since(&self, rv: u64) -> &[Event] {
        let i = self.events.partition_point(|e| e.rv <= rv);
        &self.events[i..]
    }

    /// The SSA field sets of the object with this uid.
    pub fn managers_mut(&mut self, uid: &str) -> &mut Managers {
        self.managers.entry(uid.to_string()).or_default()
    }

    fn record(&mut self, key: &ObjKey, kind: EventType, object: Value) {
        self.events.push(Event { rv: self.rv, rid: key.rid.clone(), ns: key.ns.clone(), kind, object });
        self.notify.send_replace(self.rv);
    }

    /// Stores `obj` under `key` with a new resourceVersion and logs ADDED or MODIFIED.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let kind = if self.objects.contains_key(&key) { EventType::Modified } else { EventType::Added };
        self.objects.insert(key.clone(), obj.clone());
        self.record(&key, kind, obj.clone());
        obj
    }

    /// Removes an object, logs DELETED, and collects its dependents (background
    /// propagation: at once). Returns the object's last state.
    pub fn remove(&mut self, key: &ObjKey, cascade: bool) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.record(key, EventType::Deleted, obj.clone());
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        self.managers.remove(&uid);
        if cascade {
            let dependents: Vec<ObjKey> = self
                .objects
                .iter()
                .filter(|(_, v)| {
                    v.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for d in dependents {
                self.remove(&d, true);
            }
            if key.rid == "v1/namespaces" {
                for k in self.keys_in_namespace(&key.name) {
                    self.remove(&k, true);
                }
            }
        }
        Some(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deleting_an_owner_collects_dependents_and_logs_events() {
        let mut st = State::new();
        let dep = resources::lookup("apps/v1", "deployments").unwrap();
        let rs = resources::lookup("apps/v1", "replicasets").unwrap();
        let start = st.rv();
        st.put(ObjKey::new(dep, "default", "d"), json!({"metadata": {"name": "d", "uid": "u-d"}}));
        st.put(
            ObjKey::new(rs, "default", "d-1"),
            json!({"metadata": {"name": "d-1", "uid": "u-rs", "ownerReferences": [{"uid": "u-d"}]}}),
        );
        let last = st.remove(&ObjKey::new(dep, "default", "d"), true).unwrap();
        assert_eq!(last["metadata"]["name"], "d");
        assert!(st.list("apps/v1/replicasets", None).is_empty());
        let kinds: Vec<_> = st.events_since(start).iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::Added, EventType::Added, EventType::Deleted, EventType::Deleted]);
        assert!(now().ends_with('Z') && now().len() == 20);
    }
}
