//! The controllers' part, run inside the stand-in: Deployments (with owned ReplicaSets
//! and Pods), StatefulSets (Pods and volume claims), DaemonSets (one node), Jobs and
//! bare Pods get the status a real cluster would give them once their spec changes.
//! Services, claims and namespaces are handled at write time (see `defaults`).
//!
//! Failure injection: a container image containing `broken` never becomes ready, and a
//! Job or run-once Pod running one fails.
//!
//! helm 3 (and helm 4 `--wait=legacy`) finds a Deployment's new ReplicaSet by owner uid
//! and by a template equal to the Deployment's apart from `pod-template-hash`; helm 4's
//! kstatus reads the Deployment's counts and its Available/Progressing conditions. Both
//! are written here.

use serde_json::{Value, json};

use crate::resources::{self, ResourceType};
use crate::store::{ObjKey, State, now};

fn rt(api_version: &str, plural: &str) -> &'static ResourceType {
    resources::lookup(api_version, plural).expect("served type")
}

/// Whether any container of a pod template/spec runs an image containing `broken`.
fn broken(pod_spec: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|k| {
        pod_spec[*k].as_array().into_iter().flatten().any(|c| c["image"].as_str().is_some_and(|i| i.contains("broken")))
    })
}

/// A stable 10-character hash of a template, in Kubernetes' safe alphabet.
fn hash(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10).map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char).collect()
}

fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
}

fn is_owned_by(obj: &Value, uid: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| &r["uid"] == uid && r["controller"] == true))
}

fn owned(st: &State, rt: &ResourceType, ns: &str, owner: &Value) -> Vec<Value> {
    let uid = &owner["metadata"]["uid"];
    st.list(&rt.id(), Some(ns)).into_iter().filter(|o| is_owned_by(o, uid)).cloned().collect()
}

fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Creates an object the controller owns, filling in what the API server would.
fn create(st: &mut State, rt: &ResourceType, ns: &str, mut obj: Value) -> Value {
    let uid = st.new_uid();
    obj["apiVersion"] = rt.api_version().into();
    obj["kind"] = rt.kind.into();
    obj["metadata"]["uid"] = uid.into();
    obj["metadata"]["namespace"] = ns.into();
    obj["metadata"]["creationTimestamp"] = now().into();
    if obj.get("spec").is_some() {
        obj["metadata"]["generation"] = 1.into();
    }
    crate::defaults::apply_defaults(rt, &mut obj, &mut st.alloc);
    let key = ObjKey::new(rt, ns, &name_of(&obj));
    st.put(key, obj)
}

/// Stores `new` if it differs from what is stored.
fn save(st: &mut State, rt: &ResourceType, ns: &str, new: Value) -> Value {
    let key = ObjKey::new(rt, ns, &name_of(&new));
    match st.get(&key) {
        Some(old) if *old == new => new,
        _ => st.put(key, new),
    }
}

/// The status of a pod: running and ready, waiting on an image that never starts, or
/// finished.
fn pod_status(spec: &Value, phase: &str) -> Value {
    let ready = phase == "Running";
    let t = now();
    let cond = |ty: &str, ok: bool| json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": t});
    let statuses: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let state = match phase {
                "Running" => json!({"running": {"startedAt": t}}),
                "Succeeded" => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}),
                "Failed" => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t}}),
                _ => json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image {:?}", c["image"].as_str().unwrap_or_default())}}),
            };
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "restartCount": 0,
                "started": ready, "state": state})
        })
        .collect();
    json!({"phase": phase, "conditions": [cond("PodScheduled", true), cond("Initialized", true),
            cond("ContainersReady", ready), cond("Ready", ready)],
        "containerStatuses": statuses, "hostIP": "10.0.0.1", "podIP": "10.244.0.10",
        "podIPs": [{"ip": "10.244.0.10"}], "startTime": t, "qosClass": "BestEffort"})
}

/// Makes the pods of `owner` (from `template`) number `count`, each with a status
/// depending on `broken`. Pods whose `revision_label` differs from `revision` are replaced.
fn sync_pods(st: &mut State, ns: &str, owner: &Value, template: &Value, names: &[String], revision: (&str, &str)) {
    let pods_rt = rt("v1", "pods");
    let phase = if broken(&template["spec"]) { "Pending" } else { "Running" };
    let existing = owned(st, pods_rt, ns, owner);
    for p in &existing {
        let name = name_of(p);
        let stale = p.pointer(&format!("/metadata/labels/{}", revision.0.replace('/', "~1"))).and_then(Value::as_str)
            != Some(revision.1);
        if !names.contains(&name) || stale {
            st.remove(&ObjKey::new(pods_rt, ns, &name), true);
        }
    }
    for name in names {
        if st.get(&ObjKey::new(pods_rt, ns, name)).is_some() {
            continue;
        }
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["name"] = name.clone().into();
        meta["labels"][revision.0] = revision.1.into();
        meta["ownerReferences"] = json!([owner_ref(owner)]);
        let mut spec = template["spec"].clone();
        spec["nodeName"] = "standin-node".into();
        let status = pod_status(&spec, phase);
        create(st, pods_rt, ns, json!({"metadata": meta, "spec": spec, "status": status}));
    }
}

/// A random-looking 5-character pod suffix.
fn suffix(st: &mut State) -> String {
    hash(&Value::String(st.new_uid()))[..5].to_string()
}

/// Brings the object at `key` to the state its spec asks for.
pub fn reconcile(st: &mut State, key: &ObjKey) {
    let Some(obj) = st.get(key).cloned() else { return };
    match obj["kind"].as_str().unwrap_or_default() {
        "Deployment" => deployment(st, &key.ns, obj),
        "StatefulSet" => statefulset(st, &key.ns, obj),
        "DaemonSet" => daemonset(st, &key.ns, obj),
        "Job" => job(st, &key.ns, obj),
        "Pod" => bare_pod(st, &key.ns, obj),
        _ => {}
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `maxUnavailable` of a rolling update as a pod count (percentages round down).
fn max_unavailable(dep: &Value, replicas: i64) -> i64 {
    match &dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] {
        Value::String(p) => p.trim_end_matches('%').parse::<i64>().map(|p| replicas * p / 100).unwrap_or(0),
        v => int(v),
    }
}

fn condition(ty: &str, ok: bool, reason: &str, message: String) -> Value {
    let t = now();
    json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastUpdateTime": t,
        "lastTransitionTime": t, "reason": reason, "message": message})
}

fn deployment(st: &mut State, ns: &str, dep: Value) {
    let rs_rt = rt("apps/v1", "replicasets");
    let replicas = int(&dep["spec"]["replicas"]);
    let template = dep["spec"]["template"].clone();
    let is_broken = broken(&template["spec"]);
    let h = hash(&template);
    let rs_name = format!("{}-{h}", name_of(&dep));
    let mut rs_template = template.clone();
    rs_template["metadata"]["labels"]["pod-template-hash"] = h.clone().into();
    let mut selector = dep["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = h.clone().into();

    let mut old_ready = 0;
    for old in owned(st, rs_rt, ns, &dep) {
        if name_of(&old) == rs_name {
            continue;
        }
        if is_broken {
            // A stuck rollout keeps the old pods serving.
            old_ready += int(&old["status"]["readyReplicas"]);
        } else if int(&old["spec"]["replicas"]) != 0 || int(&old["status"]["replicas"]) != 0 {
            scale_rs(st, ns, old, 0, false);
        }
    }
    let rs_key = ObjKey::new(rs_rt, ns, &rs_name);
    let rs = match st.get(&rs_key).cloned() {
        Some(rs) => rs,
        None => {
            let mut labels = rs_template["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            let annotations = json!({"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": replicas.to_string(),
                "deployment.kubernetes.io/revision": "1"});
            create(
                st,
                rs_rt,
                ns,
                json!({"metadata": {"name": rs_name, "labels": labels, "annotations": annotations,
                        "ownerReferences": [owner_ref(&dep)]},
                    "spec": {"replicas": replicas, "selector": selector, "template": rs_template}}),
            )
        }
    };
    let ready = scale_rs(st, ns, rs, replicas, is_broken);
    let name = name_of(&dep);
    let mut dep = st.get(&ObjKey::new(rt("apps/v1", "deployments"), ns, &name)).cloned().unwrap_or(dep);
    let available = ready + old_ready;
    let min_available = replicas - max_unavailable(&dep, replicas);
    let (progressing_reason, progressing_msg) = if is_broken {
        ("ReplicaSetUpdated", format!("ReplicaSet {rs_name:?} is progressing."))
    } else {
        ("NewReplicaSetAvailable", format!("ReplicaSet {rs_name:?} has successfully progressed."))
    };
    let avail_ok = available >= min_available;
    let mut status = json!({
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": replicas + old_ready,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [
            condition("Available", avail_ok,
                if avail_ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                if avail_ok { "Deployment has minimum availability.".into() } else { "Deployment does not have minimum availability.".into() }),
            condition("Progressing", true, progressing_reason, progressing_msg),
        ],
    });
    if replicas + old_ready - available > 0 {
        status["unavailableReplicas"] = (replicas + old_ready - available).into();
    }
    // Keep the condition timestamps of an unchanged status so re-reconciles are no-ops.
    if strip_times(&dep["status"]) == strip_times(&status) {
        return;
    }
    dep["status"] = status;
    save(st, rt("apps/v1", "deployments"), ns, dep);
}

fn strip_times(status: &Value) -> Value {
    let mut s = status.clone();
    for c in s["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(m) = c.as_object_mut() {
            m.remove("lastUpdateTime");
            m.remove("lastTransitionTime");
        }
    }
    s
}

/// Sets a ReplicaSet's replicas, syncs its pods and status; returns its ready count.
fn scale_rs(st: &mut State, ns: &str, mut rs: Value, replicas: i64, is_broken: bool) -> i64 {
    if int(&rs["spec"]["replicas"]) != replicas {
        rs["spec"]["replicas"] = replicas.into();
        let g = int(&rs["metadata"]["generation"]);
        rs["metadata"]["generation"] = (g + 1).into();
    }
    let rs_name = name_of(&rs);
    let mut names: Vec<String> = owned(st, rt("v1", "pods"), ns, &rs).iter().map(name_of).collect();
    names.truncate(replicas.max(0) as usize);
    while (names.len() as i64) < replicas {
        let s = suffix(st);
        names.push(format!("{rs_name}-{s}"));
    }
    let h = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap_or_default().to_string();
    let template = rs["spec"]["template"].clone();
    sync_pods(st, ns, &rs, &template, &names, ("pod-template-hash", &h));
    let ready = if is_broken { 0 } else { replicas };
    let mut status = json!({"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
    if replicas == 0 {
        status = json!({"replicas": 0, "observedGeneration": rs["metadata"]["generation"]});
    }
    rs["status"] = status;
    save(st, rt("apps/v1", "replicasets"), ns, rs);
    ready
}

fn statefulset(st: &mut State, ns: &str, mut sts: Value) {
    let name = name_of(&sts);
    let replicas = int(&sts["spec"]["replicas"]);
    let template = sts["spec"]["template"].clone();
    let is_broken = broken(&template["spec"]);
    let revision = format!("{name}-{}", hash(&template));
    let pvc_rt = rt("v1", "persistentvolumeclaims");
    let names: Vec<String> = (0..replicas).map(|i| format!("{name}-{i}")).collect();
    for pod in &names {
        // Claims from volumeClaimTemplates are created once and kept, as Kubernetes does.
        for tpl in sts["spec"]["volumeClaimTemplates"].as_array().cloned().unwrap_or_default() {
            let claim = format!("{}-{pod}", name_of(&tpl));
            if st.get(&ObjKey::new(pvc_rt, ns, &claim)).is_none() {
                let mut meta = tpl["metadata"].clone();
                meta["name"] = claim.into();
                meta["labels"] = template["metadata"]["labels"].clone();
                create(st, pvc_rt, ns, json!({"metadata": meta, "spec": tpl["spec"]}));
            }
        }
    }
    let mut tpl = template.clone();
    if !tpl["metadata"].is_object() {
        tpl["metadata"] = json!({});
    }
    sync_pods(st, ns, &sts, &tpl, &names, ("controller-revision-hash", &revision));
    let ready = if is_broken { 0 } else { replicas };
    let current =
        if is_broken { sts["status"]["currentRevision"].as_str().unwrap_or("").to_string() } else { revision.clone() };
    sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"], "replicas": replicas,
        "readyReplicas": ready, "currentReplicas": ready, "updatedReplicas": ready, "availableReplicas": ready,
        "currentRevision": current, "updateRevision": revision, "collisionCount": 0});
    save(st, rt("apps/v1", "statefulsets"), ns, sts);
}

fn daemonset(st: &mut State, ns: &str, mut ds: Value) {
    let template = ds["spec"]["template"].clone();
    let is_broken = broken(&template["spec"]);
    let revision = hash(&template);
    let existing = owned(st, rt("v1", "pods"), ns, &ds);
    let name = match existing.first() {
        Some(p) if p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str() => name_of(p),
        _ => format!("{}-{}", name_of(&ds), suffix(st)),
    };
    sync_pods(st, ns, &ds, &template, &[name], ("controller-revision-hash", &revision));
    let ready = i64::from(!is_broken);
    ds["status"] = json!({"observedGeneration": ds["metadata"]["generation"], "desiredNumberScheduled": 1,
        "currentNumberScheduled": 1, "updatedNumberScheduled": 1, "numberReady": ready,
        "numberAvailable": ready, "numberMisscheduled": 0});
    if ready == 0 {
        ds["status"]["numberUnavailable"] = 1.into();
    }
    save(st, rt("apps/v1", "daemonsets"), ns, ds);
}

fn job(st: &mut State, ns: &str, mut job: Value) {
    let finished = job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    });
    if finished || job["spec"]["suspend"] == true {
        return;
    }
    let t = now();
    let cond = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "lastProbeTime": t, "lastTransitionTime": t, "reason": reason, "message": message});
    job["status"] = if broken(&job["spec"]["template"]["spec"]) {
        json!({"startTime": t, "failed": 1, "active": 0, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]})
    } else {
        json!({"startTime": t, "completionTime": t, "succeeded": job["spec"]["completions"], "active": 0, "ready": 0,
            "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]})
    };
    save(st, rt("batch/v1", "jobs"), ns, job);
}

fn bare_pod(st: &mut State, ns: &str, mut pod: Value) {
    if pod.pointer("/metadata/ownerReferences").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
        return;
    }
    let spec = &pod["spec"];
    let run_once = spec["restartPolicy"] != "Always" || pod.pointer("/metadata/annotations/helm.sh~1hook").is_some();
    let phase = match (run_once, broken(spec)) {
        (true, false) => "Succeeded",
        (true, true) => "Failed",
        (false, false) => "Running",
        (false, true) => "Pending",
    };
    let mut spec = spec.clone();
    if spec["nodeName"].is_null() {
        spec["nodeName"] = "standin-node".into();
    }
    pod["status"] = pod_status(&spec, phase);
    pod["spec"] = spec;
    save(st, rt("v1", "pods"), ns, pod);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{self, WriteCtx};

    fn deploy(image: &str, replicas: i64) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn run(st: &mut State) {
        for k in std::mem::take(&mut st.pending) {
            reconcile(st, &k);
        }
    }

    #[test]
    fn deployment_rollout_and_stuck_rollout() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let drt = rt("apps/v1", "deployments");
        api::create(&mut st, drt, "default", deploy("nginx:1", 2), &ctx).unwrap();
        run(&mut st);
        let d = api::get(&st, drt, "default", "web").unwrap();
        assert_eq!(d["status"]["readyReplicas"], 2);
        assert_eq!(d["status"]["observedGeneration"], 1);
        assert_eq!(d["status"]["conditions"][1]["reason"], "NewReplicaSetAvailable");
        let rss = st.list("apps/v1/replicasets", Some("default"));
        assert_eq!(rss.len(), 1);
        let mut rs_tpl = rss[0]["spec"]["template"].clone();
        rs_tpl["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
        assert_eq!(rs_tpl, d["spec"]["template"], "helm 3 compares templates without the hash label");
        assert_eq!(st.list("v1/pods", Some("default")).len(), 2);

        // A broken image: the old ReplicaSet keeps serving, the new one never gets ready.
        let (_, _) = api::update(&mut st, drt, "default", "web", deploy("nginx:broken", 2), None, &ctx).unwrap();
        run(&mut st);
        let d = api::get(&st, drt, "default", "web").unwrap();
        assert_eq!(d["status"]["updatedReplicas"], 2);
        assert_eq!(d["status"]["readyReplicas"], 2);
        assert_eq!(d["status"]["replicas"], 4);
        assert_eq!(d["status"]["conditions"][1]["reason"], "ReplicaSetUpdated");
        assert_eq!(st.list("v1/pods", Some("default")).len(), 4);

        // Fixed again: the first ReplicaSet (same template) is reused, the broken one drained.
        api::update(&mut st, drt, "default", "web", deploy("nginx:1", 1), None, &ctx).unwrap();
        run(&mut st);
        let d = api::get(&st, drt, "default", "web").unwrap();
        assert_eq!((d["status"]["readyReplicas"].clone(), d["status"]["replicas"].clone()), (json!(1), json!(1)));
        assert_eq!(st.list("apps/v1/replicasets", Some("default")).len(), 2);
        assert_eq!(st.list("v1/pods", Some("default")).len(), 1);
        // Deleting the Deployment collects ReplicaSets and Pods.
        api::delete(&mut st, drt, "default", "web", &json!({})).unwrap();
        assert!(st.list("v1/pods", Some("default")).is_empty());
    }

    #[test]
    fn jobs_complete_or_fail() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let jrt = rt("batch/v1", "jobs");
        for (name, image, cond) in [("ok", "busybox", "Complete"), ("bad", "busybox:broken", "Failed")] {
            let j = json!({"metadata": {"name": name}, "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": image}]}}}});
            api::create(&mut st, jrt, "default", j, &ctx).unwrap();
            run(&mut st);
            let j = api::get(&st, jrt, "default", name).unwrap();
            assert_eq!(j["status"]["conditions"][1]["type"], cond);
        }
    }
}
