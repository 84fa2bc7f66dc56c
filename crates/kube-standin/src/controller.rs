//! The controllers' part, run inside the stand-in: Deployments (with owned ReplicaSets
//! and Pods), StatefulSets (Pods and volume claims), DaemonSets (one node), Jobs (one
//! run-once Pod after another) and bare Pods get the status a real cluster would give
//! them once their spec changes. Services, claims and namespaces are handled at write
//! time (see `defaults`).
//!
//! A run-once pod (a Job's, or a bare one that does not restart) goes Pending →
//! Running → Succeeded/Failed; how long it runs and how it exits come from its
//! `kube-standin/*` annotations (see `run`), by default 0 s and 0, so it ends on the
//! reconcile that started it. A run that lasts leaves a timer in `State::timers`: the
//! server reconciles the owner again when the run ends.
//!
//! Failure injection: a container image containing `broken` never becomes ready: its
//! pods wait in `ErrImagePull`/`ImagePullBackOff`, and a Job running one fails after its
//! run time; `kube-standin/exit-code` fails a run-once pod after it ran.
//!
//! helm 3 (and helm 4 `--wait=legacy`) finds a Deployment's new ReplicaSet by owner uid
//! and by a template equal to the Deployment's apart from `pod-template-hash`; helm 4's
//! kstatus reads the Deployment's counts and its Available/Progressing conditions. Both
//! are written here. Hook waits read a Job's `Complete`/`Failed` conditions (helm 3) or
//! its `startTime` and conditions (helm 4's Job status reader: no `startTime` is "not
//! started"), which a running Job has as on a cluster.

use std::time::Instant;

use serde_json::{Value, json};

use crate::resources::{self, ResourceType};
use crate::run::Script;
use crate::store::{ObjKey, State, now};

fn rt(api_version: &str, plural: &str) -> &'static ResourceType {
    resources::lookup(api_version, plural).expect("served type")
}

/// Whether a container runs an image containing `broken`, which never pulls.
fn broken_image(container: &Value) -> bool {
    container["image"].as_str().is_some_and(|i| i.contains("broken"))
}

/// Whether any container of a pod template/spec runs an image containing `broken`.
fn broken(pod_spec: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|k| pod_spec[*k].as_array().into_iter().flatten().any(broken_image))
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
            // In a pod waiting on one broken image, the other containers run (and are ready).
            let state = match phase {
                "Running" => json!({"running": {"startedAt": t}}),
                "Succeeded" => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}),
                "Failed" => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t}}),
                _ if !broken_image(c) => json!({"running": {"startedAt": t}}),
                _ => json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image {:?}", c["image"].as_str().unwrap_or_default())}}),
            };
            let up = state.get("running").is_some();
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": up, "restartCount": 0,
                "started": up, "state": state})
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

/// Where a run-once pod's containers are, as the kubelet reports them.
enum Stage<'a> {
    /// Scheduled; the containers are being created.
    Creating,
    /// The image does not pull: `ErrImagePull`, then (`backoff`) `ImagePullBackOff`.
    PullFailing {
        backoff: bool,
    },
    Running {
        started: &'a str,
    },
    Exited {
        started: &'a str,
        finished: &'a str,
        code: i64,
    },
}

/// The status of a run-once pod at `stage`, with the phase, conditions and container
/// states a kubelet writes (a terminated container: `Completed` with exit code 0, `Error`
/// otherwise, like a shell's `exit 1`).
fn run_status(pod: &Value, stage: &Stage) -> Value {
    let t = now();
    let (phase, ready, reason) = match stage {
        Stage::Creating | Stage::PullFailing { .. } => ("Pending", false, "ContainersNotReady"),
        Stage::Running { .. } => ("Running", true, ""),
        Stage::Exited { code: 0, .. } => ("Succeeded", false, "PodCompleted"),
        Stage::Exited { .. } => ("Failed", false, "PodFailed"),
    };
    let cond = |ty: &str, ok: bool, reason: &str| {
        let mut c = json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastProbeTime": null,
            "lastTransitionTime": t});
        if !ok && !reason.is_empty() {
            c["reason"] = reason.into();
        }
        c
    };
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().replace('-', "");
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let image = c["image"].as_str().unwrap_or_default();
            let state = match stage {
                Stage::Creating => json!({"waiting": {"reason": "ContainerCreating"}}),
                // The containers whose image pulled run meanwhile.
                Stage::PullFailing { .. } if !broken_image(c) => json!({"running": {"startedAt": t}}),
                Stage::PullFailing { backoff: false } => json!({"waiting": {"reason": "ErrImagePull",
                    "message": format!("failed to pull and unpack image {image:?}: failed to resolve reference {image:?}: not found")}}),
                Stage::PullFailing { backoff: true } => {
                    json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image {image:?}")}})
                }
                Stage::Running { started } => json!({"running": {"startedAt": started}}),
                Stage::Exited { started, finished, code } => json!({"terminated": {"exitCode": code,
                    "reason": if *code == 0 { "Completed" } else { "Error" }, "startedAt": started, "finishedAt": finished,
                    "containerID": format!("containerd://{uid}{i:04x}")}}),
            };
            let up = state.get("running").is_some();
            let mut s = json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": up,
                "restartCount": 0, "started": up, "state": state, "lastState": {}});
            if up || matches!(stage, Stage::Exited { .. }) {
                s["containerID"] = format!("containerd://{uid}{i:04x}").into();
            }
            s
        })
        .collect();
    let start_time = pod["status"]["startTime"].as_str().map_or_else(|| t.clone(), String::from);
    json!({"phase": phase, "conditions": [cond("PodReadyToStartContainers", !matches!(stage, Stage::Creating | Stage::Exited { .. }), ""),
            cond("Initialized", true, ""), cond("Ready", ready, reason), cond("ContainersReady", ready, reason),
            cond("PodScheduled", true, "")],
        "containerStatuses": statuses, "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": "10.244.0.10",
        "podIPs": [{"ip": "10.244.0.10"}], "startTime": start_time, "qosClass": "BestEffort"})
}

/// What a run-once pod is doing after [`advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Active {
        ready: bool,
    },
    Succeeded,
    Failed,
    /// Its image never pulled within its run time: the stand-in gives up on it.
    GaveUp,
}

/// Moves a run-once pod along its run, as far as it gets by `now`: created → Running →
/// exited with its script's code once its run time (from when it started) is over; with
/// a broken image, `ErrImagePull` → `ImagePullBackOff` until its run time is over. While it
/// runs, a timer asks for `wake` to be reconciled again when the run ends.
fn advance(st: &mut State, ns: &str, mut pod: Value, wake: &ObjKey, now_at: Instant) -> Run {
    match pod["status"]["phase"].as_str() {
        Some("Succeeded") => return Run::Succeeded,
        Some("Failed") => return Run::Failed,
        _ => {}
    }
    let pods_rt = rt("v1", "pods");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    let script = Script::of_pod(&pod);
    let until = *st.run_until.entry(uid.clone()).or_insert(now_at + script.run);
    let backing_off = pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c.pointer("/state/waiting/reason") == Some(&json!("ImagePullBackOff"))));
    if broken(&pod["spec"]) {
        if !backing_off {
            // Two writes, so watchers see both reasons a kubelet alternates between.
            pod["status"] = run_status(&pod, &Stage::PullFailing { backoff: false });
            pod = save(st, pods_rt, ns, pod);
            pod["status"] = run_status(&pod, &Stage::PullFailing { backoff: true });
            save(st, pods_rt, ns, pod);
        }
        if now_at < until {
            st.timers.push((until, wake.clone()));
            return Run::Active { ready: false };
        }
        st.run_until.remove(&uid);
        return Run::GaveUp;
    }
    if pod["status"]["phase"] != "Running" {
        pod["status"] = run_status(&pod, &Stage::Running { started: &now() });
        pod = save(st, pods_rt, ns, pod);
    }
    if now_at < until {
        st.timers.push((until, wake.clone()));
        return Run::Active { ready: true };
    }
    st.run_until.remove(&uid);
    let started = pod
        .pointer("/status/containerStatuses/0/state/running/startedAt")
        .and_then(Value::as_str)
        .map_or_else(now, String::from);
    let code = script.exit_code;
    pod["status"] = run_status(&pod, &Stage::Exited { started: &started, finished: &now(), code });
    save(st, pods_rt, ns, pod);
    if code == 0 { Run::Succeeded } else { Run::Failed }
}

/// Starts one pod of `job`, as the Job controller does: `generateName` `<job>-` (cut to
/// 58 characters, as the API server's name generator does) plus 5 random characters,
/// the template's labels (which carry the selector's `batch.kubernetes.io/controller-uid`
/// and `job-name`) and annotations, owned by the Job (`controller: true`).
fn start_job_pod(st: &mut State, ns: &str, job: &Value) {
    let pods_rt = rt("v1", "pods");
    let template = &job["spec"]["template"];
    let mut base = format!("{}-", name_of(job));
    base.truncate(58);
    let name = loop {
        let name = format!("{base}{}", suffix(st));
        if st.get(&ObjKey::new(pods_rt, ns, &name)).is_none() {
            break name;
        }
    };
    let mut meta = json!({"name": name, "generateName": base, "ownerReferences": [owner_ref(job)]});
    for k in ["labels", "annotations"] {
        if let Some(v) = template["metadata"].get(k).filter(|v| v.is_object()) {
            meta[k] = v.clone();
        }
    }
    let mut spec = template["spec"].clone();
    spec["nodeName"] = "standin-node".into();
    let mut pod = json!({"metadata": meta, "spec": spec});
    pod["status"] = run_status(&pod, &Stage::Creating);
    create(st, pods_rt, ns, pod);
}

/// A Job runs its pods to `completions` successes, `parallelism` at a time, starting a
/// new pod for each failed one until more than `backoffLimit` have failed (at once: a
/// cluster waits 10 s, doubling, before each retry). A pod whose image never pulls
/// fails the Job when its run time is over, with `failed: 1` and the same conditions as
/// a backoff limit (on a cluster the pull would go on until `activeDeadlineSeconds` or
/// helm's timeout; the pod is left waiting, as a cluster leaves it).
///
/// While pods run: `startTime`, `active`, `ready`; at the end the conditions helm reads,
/// `SuccessCriteriaMet` + `Complete`, or `FailureTarget` + `Failed` (`BackoffLimitExceeded`),
/// written at once with `completionTime` and the counts, as a 1.31+ Job controller does.
fn job(st: &mut State, ns: &str, mut job: Value) {
    let finished = job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    });
    if finished || job["spec"]["suspend"] == true {
        return;
    }
    let jobs_rt = rt("batch/v1", "jobs");
    let key = ObjKey::new(jobs_rt, ns, &name_of(&job));
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1).max(0);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6).max(0);
    let mut start = job["status"]["startTime"].as_str().map(String::from);
    let now_at = Instant::now();
    // Each pass lets every pod get as far as it can by now, then starts the pods still
    // wanted; a pod that runs 0 s ends in the pass after it started.
    let mut passes = completions + backoff_limit + 2;
    let status = loop {
        passes -= 1;
        let (mut active, mut ready, mut succeeded, mut failed, mut gave_up) = (0, 0, 0, 0, false);
        for pod in owned(st, rt("v1", "pods"), ns, &job) {
            match advance(st, ns, pod, &key, now_at) {
                Run::Active { ready: r } => {
                    active += 1;
                    ready += i64::from(r);
                }
                Run::Succeeded => succeeded += 1,
                Run::Failed => failed += 1,
                Run::GaveUp => {
                    failed += 1;
                    gave_up = true;
                }
            }
        }
        let t = now();
        let cond = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "lastProbeTime": t, "lastTransitionTime": t, "reason": reason, "message": message});
        let counted = |mut s: Value| {
            for (k, n) in [("succeeded", succeeded), ("failed", failed)] {
                if n > 0 {
                    s[k] = n.into();
                }
            }
            s
        };
        if succeeded >= completions {
            break counted(json!({"startTime": start.clone().unwrap_or_else(|| t.clone()), "completionTime": t,
                "active": 0, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                "conditions": [cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                    cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]}));
        }
        if gave_up || failed > backoff_limit {
            break counted(json!({"startTime": start.clone().unwrap_or_else(|| t.clone()), "active": 0, "ready": 0,
                "terminating": 0, "uncountedTerminatedPods": {},
                "conditions": [cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                    cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]}));
        }
        let wanted = parallelism.min(completions - succeeded) - active;
        if wanted <= 0 || passes <= 0 {
            break counted(json!({"startTime": start.clone().unwrap_or_else(|| t.clone()), "active": active,
                "ready": ready, "terminating": 0, "uncountedTerminatedPods": {}}));
        }
        start.get_or_insert(t);
        for _ in 0..wanted {
            start_job_pod(st, ns, &job);
        }
    };
    job["status"] = status;
    save(st, jobs_rt, ns, job);
}

/// A pod without an owner: a long-running one (`restartPolicy: Always`, not a helm
/// hook) runs and is ready, or waits on a broken image; a run-once one runs its script
/// ([`advance`]), or fails at once with a broken image.
fn bare_pod(st: &mut State, ns: &str, mut pod: Value) {
    if pod.pointer("/metadata/ownerReferences").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
        return;
    }
    let spec = &pod["spec"];
    let run_once = spec["restartPolicy"] != "Always" || pod.pointer("/metadata/annotations/helm.sh~1hook").is_some();
    let is_broken = broken(spec);
    let mut spec = spec.clone();
    if spec["nodeName"].is_null() {
        spec["nodeName"] = "standin-node".into();
    }
    if run_once && !is_broken {
        let key = ObjKey::new(rt("v1", "pods"), ns, &name_of(&pod));
        if pod["status"]["phase"].is_null() || pod["spec"] != spec {
            pod["spec"] = spec;
            pod["status"] = run_status(&pod, &Stage::Creating);
            pod = save(st, rt("v1", "pods"), ns, pod);
        }
        advance(st, ns, pod, &key, Instant::now());
        return;
    }
    let phase = match (run_once, is_broken) {
        (true, _) => "Failed",
        (false, false) => "Running",
        (false, true) => "Pending",
    };
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

    fn job_spec(name: &str, image: &str, annotations: Value, backoff_limit: i64) -> Value {
        json!({"metadata": {"name": name}, "spec": {"backoffLimit": backoff_limit, "template": {
            "metadata": {"labels": {"app": "migrate"}, "annotations": annotations},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image}]}}}})
    }

    /// What the server does when a run's time is up: reconcile the keys of due timers.
    fn time_passes(st: &mut State) {
        for until in st.run_until.values_mut() {
            *until = Instant::now();
        }
        for (_, key) in std::mem::take(&mut st.timers) {
            reconcile(st, &key);
        }
    }

    fn pods_of(st: &State, job: &str) -> Vec<Value> {
        st.list("v1/pods", Some("default"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["job-name"] == job)
            .cloned()
            .collect()
    }

    /// The phases (pods) or condition types (Jobs) of each event about `name`'s objects.
    fn history(st: &State, since: u64, rid: &str, name: &str) -> Vec<String> {
        st.events_since(since)
            .iter()
            .filter(|e| e.rid == rid && e.object["metadata"]["name"].as_str().unwrap().starts_with(name))
            .map(|e| {
                let o = &e.object;
                let what = match (o["status"]["phase"].as_str(), o["status"]["conditions"].as_array()) {
                    (Some(phase), _) => {
                        let state = &o["status"]["containerStatuses"][0]["state"];
                        let why = state["waiting"]["reason"].as_str().or(state["terminated"]["reason"].as_str());
                        format!("{phase}{}", why.map(|w| format!("/{w}")).unwrap_or_default())
                    }
                    (None, Some(cs)) => cs.iter().map(|c| c["type"].as_str().unwrap()).collect::<Vec<_>>().join("+"),
                    (None, None) => format!("active={}", o["status"]["active"]),
                };
                format!("{} {what}", e.kind.as_str())
            })
            .collect()
    }

    #[test]
    fn jobs_complete_or_fail_at_once_by_default() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let jrt = rt("batch/v1", "jobs");
        for (name, image, cond, phase) in
            [("ok", "busybox", "Complete", "Succeeded"), ("bad", "busybox:broken", "Failed", "Pending")]
        {
            api::create(&mut st, jrt, "default", job_spec(name, image, json!({}), 6), &ctx).unwrap();
            run(&mut st);
            let j = api::get(&st, jrt, "default", name).unwrap();
            assert_eq!(j["status"]["conditions"][1]["type"], cond);
            assert_eq!(j["status"]["startTime"], j["status"]["conditions"][1]["lastTransitionTime"]);
            let pods = pods_of(&st, name);
            assert_eq!(pods.len(), 1, "{name}: one pod, no retry of a pull that never ends");
            assert_eq!(pods[0]["status"]["phase"], phase, "{name}");
            assert!(st.timers.is_empty(), "{name}: nothing left to do later");
        }
        let ok = api::get(&st, jrt, "default", "ok").unwrap();
        assert_eq!((ok["status"]["succeeded"].clone(), ok["status"].get("failed")), (json!(1), None));
        let bad = api::get(&st, jrt, "default", "bad").unwrap();
        assert_eq!(bad["status"]["failed"], 1);
        assert_eq!(bad["status"]["conditions"][0]["reason"], "BackoffLimitExceeded");
        let waiting = &pods_of(&st, "bad")[0]["status"]["containerStatuses"][0]["state"]["waiting"];
        assert_eq!(waiting["reason"], "ImagePullBackOff", "the pod still waits on its image, as on a cluster");
    }

    #[test]
    fn a_job_pod_is_named_labelled_and_owned_as_by_the_job_controller() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let long = "m".repeat(63);
        for name in ["migrate", long.as_str()] {
            api::create(&mut st, rt("batch/v1", "jobs"), "default", job_spec(name, "bufd:1", json!({}), 0), &ctx)
                .unwrap();
            run(&mut st);
            let job = api::get(&st, rt("batch/v1", "jobs"), "default", name).unwrap();
            let pod = &pods_of(&st, name)[0];
            let pod_name = pod["metadata"]["name"].as_str().unwrap();
            let base = &format!("{name}-")[..(name.len() + 1).min(58)];
            assert_eq!(pod_name.len(), base.len() + 5, "{pod_name}");
            assert!(pod_name.starts_with(base) && pod["metadata"]["generateName"] == base, "{pod_name}");
            assert!(pod_name[base.len()..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            let uid = &job["metadata"]["uid"];
            let labels = &pod["metadata"]["labels"];
            for (k, v) in [
                ("batch.kubernetes.io/job-name", json!(name)),
                ("job-name", json!(name)),
                ("batch.kubernetes.io/controller-uid", uid.clone()),
                ("controller-uid", uid.clone()),
                ("app", json!("migrate")),
            ] {
                assert_eq!(labels[k], v, "{k}");
            }
            let owner = &pod["metadata"]["ownerReferences"][0];
            assert_eq!((owner["kind"].as_str(), &owner["uid"], &owner["controller"]), (Some("Job"), uid, &json!(true)));
            let selector = crate::selectors::LabelSelector::from_object(&job["spec"]["selector"]).unwrap();
            assert!(selector.matches(labels), "the Job's selector finds its pod (kubectl logs job/NAME)");
        }
        // Deleting a Job collects its pods (helm's before-hook-creation deletes with Background).
        api::delete(&mut st, rt("batch/v1", "jobs"), "default", "migrate", &json!({"propagationPolicy": "Background"}))
            .unwrap();
        assert!(pods_of(&st, "migrate").is_empty());
    }

    #[test]
    fn a_job_runs_its_pod_for_run_seconds_and_every_step_is_an_event() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let jrt = rt("batch/v1", "jobs");
        let since = st.rv();
        let job = job_spec("slow", "bufd:1", json!({crate::run::RUN_SECONDS: "30"}), 0);
        api::create(&mut st, jrt, "default", job, &ctx).unwrap();
        run(&mut st);
        let j = api::get(&st, jrt, "default", "slow").unwrap();
        assert_eq!((j["status"]["active"].clone(), j["status"]["ready"].clone()), (json!(1), json!(1)));
        assert!(j["status"]["startTime"].is_string() && j["status"].get("conditions").is_none(), "{j}");
        let pod = &pods_of(&st, "slow")[0];
        assert_eq!(pod["status"]["phase"], "Running");
        let started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
        assert!(started.is_string());
        assert_eq!(st.timers.len(), 1, "the Job is looked at again when the run ends");
        assert!(st.timers[0].0 > Instant::now() + std::time::Duration::from_secs(29));
        // Reconciling again before the end changes nothing.
        let rv = st.rv();
        reconcile(&mut st, &ObjKey::new(jrt, "default", "slow"));
        assert_eq!(st.rv(), rv);

        time_passes(&mut st);
        let j = api::get(&st, jrt, "default", "slow").unwrap();
        let types: Vec<&str> =
            j["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
        assert_eq!((j["status"]["succeeded"].clone(), j["status"]["active"].clone()), (json!(1), json!(0)));
        assert!(j["status"]["completionTime"].is_string());
        let pod = &pods_of(&st, "slow")[0];
        let term = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!((term["exitCode"].clone(), term["reason"].clone()), (json!(0), json!("Completed")));
        assert_eq!(term["startedAt"], started);
        assert!(term["finishedAt"].is_string() && st.run_until.is_empty());

        assert_eq!(
            history(&st, since, "v1/pods", "slow-"),
            ["ADDED Pending/ContainerCreating", "MODIFIED Running", "MODIFIED Succeeded/Completed"]
        );
        assert_eq!(
            history(&st, since, "batch/v1/jobs", "slow"),
            ["ADDED active=null", "MODIFIED active=1", "MODIFIED SuccessCriteriaMet+Complete"]
        );
    }

    #[test]
    fn exit_codes_fail_pods_and_backoff_limit_counts_them() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let jrt = rt("batch/v1", "jobs");
        let job = job_spec("fails", "bufd:1", json!({crate::run::EXIT_CODE: "1"}), 2);
        api::create(&mut st, jrt, "default", job, &ctx).unwrap();
        run(&mut st);
        let j = api::get(&st, jrt, "default", "fails").unwrap();
        assert_eq!(j["status"]["failed"], 3, "backoffLimit 2: the third failure fails the Job");
        assert_eq!(j["status"]["conditions"][1]["type"], "Failed");
        assert_eq!(j["status"]["conditions"][1]["reason"], "BackoffLimitExceeded");
        let pods = pods_of(&st, "fails");
        assert_eq!(pods.len(), 3);
        for p in &pods {
            assert_eq!(p["status"]["phase"], "Failed");
            let term = &p["status"]["containerStatuses"][0]["state"]["terminated"];
            assert_eq!((term["exitCode"].clone(), term["reason"].clone()), (json!(1), json!("Error")));
        }
    }

    #[test]
    fn a_broken_image_waits_for_its_run_time_then_fails_the_job() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let jrt = rt("batch/v1", "jobs");
        let since = st.rv();
        let job = job_spec("pull", "bufd:broken", json!({crate::run::RUN_SECONDS: "5"}), 6);
        api::create(&mut st, jrt, "default", job, &ctx).unwrap();
        run(&mut st);
        let j = api::get(&st, jrt, "default", "pull").unwrap();
        assert_eq!((j["status"]["active"].clone(), j["status"]["ready"].clone()), (json!(1), json!(0)));
        time_passes(&mut st);
        let j = api::get(&st, jrt, "default", "pull").unwrap();
        assert_eq!((j["status"]["failed"].clone(), j["status"]["active"].clone()), (json!(1), json!(0)));
        assert_eq!(j["status"]["conditions"][1]["type"], "Failed");
        assert_eq!(
            history(&st, since, "v1/pods", "pull-"),
            ["ADDED Pending/ContainerCreating", "MODIFIED Pending/ErrImagePull", "MODIFIED Pending/ImagePullBackOff"]
        );
    }

    #[test]
    fn bare_run_once_pods_run_their_script() {
        let mut st = State::new();
        let ctx = WriteCtx { manager: "helm".into(), force: false };
        let prt = rt("v1", "pods");
        let pod = |name: &str, annotations: Value| {
            json!({"metadata": {"name": name, "annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}})
        };
        api::create(&mut st, prt, "default", pod("exits", json!({crate::run::EXIT_CODE: "2"})), &ctx).unwrap();
        api::create(&mut st, prt, "default", pod("runs", json!({crate::run::RUN_SECONDS: "9"})), &ctx).unwrap();
        run(&mut st);
        let exits = api::get(&st, prt, "default", "exits").unwrap();
        assert_eq!(exits["status"]["phase"], "Failed");
        assert_eq!(exits["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 2);
        assert_eq!(api::get(&st, prt, "default", "runs").unwrap()["status"]["phase"], "Running");
        time_passes(&mut st);
        assert_eq!(api::get(&st, prt, "default", "runs").unwrap()["status"]["phase"], "Succeeded");

        let typo = job_spec("typo", "bufd:1", json!({crate::run::RUN_SECONDS: "3s"}), 0);
        let e = api::create(&mut st, rt("batch/v1", "jobs"), "default", typo, &ctx).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("spec.template.metadata.annotations[kube-standin/run-seconds]"), "{}", e.message);
    }
}
