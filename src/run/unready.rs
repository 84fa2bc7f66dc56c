//! Why a deploy did not become ready: which of the release's workloads are short of ready
//! pods, and what those pods say.
//!
//! When `helm upgrade --wait` times out, helm 3 prints only "context deadline exceeded" and
//! helm 4 names one resource with a kstatus message ("Pending termination: 3"); neither says
//! that the new pods are in `ImagePullBackOff` or `CrashLoopBackOff`, which is what the
//! person on call needs before deciding anything. The walk fetches the release's manifest,
//! its workloads and their pods (see `Walk::explain_unready`); the reading is here, pure, so
//! that it is tested without a cluster.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The kinds whose readiness helm waits for and whose pods can say why.
const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// At most this many distinct pod problems per workload: the first few say it all.
const MAX_PROBLEMS: usize = 4;
/// Kubernetes messages can be long (a whole pull error); a line stays readable.
const MAX_MESSAGE: usize = 200;

/// A workload of the release (`apps/v1`, read by the API client by kind and name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// Set when the manifest names a namespace; `None` means the release's own.
    pub namespace: Option<String>,
}

/// The workloads in a rendered manifest (`helm get manifest`), in manifest order.
/// Documents that are not workloads, or cannot be read, are skipped: this only explains
/// a failure, it must never become one.
pub fn workloads(manifest: &str) -> Vec<Workload> {
    #[derive(Deserialize)]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
    }
    #[derive(Deserialize)]
    struct Doc {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        kind: Option<String>,
        metadata: Option<Meta>,
    }
    let docs: Vec<Option<Doc>> = serde_saphyr::from_multiple(manifest).unwrap_or_default();
    docs.into_iter()
        .flatten()
        .filter_map(|doc| {
            let kind = doc.kind?;
            let meta = doc.metadata?;
            let is_workload = doc.api_version.as_deref() == Some("apps/v1") && WORKLOAD_KINDS.contains(&kind.as_str());
            is_workload.then_some(Workload { kind, name: meta.name?, namespace: meta.namespace })
        })
        .collect()
}

fn count(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// One line saying how a live workload falls short of ready, or `None` when it is ready,
/// in the words of `kubectl rollout status` (what operators already read): the first
/// condition not met, in the order kubectl checks them. The conditions are the ones
/// kstatus (helm 4) and helm 3's waiter check too.
pub fn not_ready(object: &Value) -> Option<String> {
    let kind = object["kind"].as_str().unwrap_or("workload");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    let status = &object["status"];
    let generation = count(&object["metadata"]["generation"]);
    if count(&status["observedGeneration"]) < generation {
        return Some(format!("{kind} {name}: waiting for the {} spec update to be observed", kind.to_lowercase()));
    }
    let waiting = |what: String| Some(format!("{kind} {name}: waiting for rollout to finish: {what}"));
    match kind {
        "Deployment" => {
            if object["spec"]["paused"].as_bool() == Some(true) {
                return None;
            }
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let (updated, total, available) =
                (count(&status["updatedReplicas"]), count(&status["replicas"]), count(&status["availableReplicas"]));
            if updated < wanted {
                waiting(format!("{updated} out of {wanted} new replicas have been updated"))
            } else if total > updated {
                waiting(format!(
                    "{} pending termination",
                    crate::text::count((total - updated) as usize, "old replica is", "old replicas are")
                ))
            } else if available < updated {
                waiting(format!("{available} of {updated} updated replicas are available"))
            } else {
                None
            }
        }
        "StatefulSet" => {
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = count(&status["readyReplicas"]);
            // OnDelete: the controller never replaces pods, so "updated" says nothing.
            let on_delete = object["spec"]["updateStrategy"]["type"].as_str() == Some("OnDelete");
            let updated = count(&status["updatedReplicas"]);
            if ready < wanted {
                waiting(format!("{} to be ready", crate::text::count((wanted - ready) as usize, "pod", "pods")))
            } else if !on_delete && updated < wanted {
                waiting(format!("{updated} out of {wanted} pods have been updated"))
            } else {
                None
            }
        }
        "DaemonSet" => {
            let wanted = count(&status["desiredNumberScheduled"]);
            let (updated, available) = (
                count(&status["updatedNumberScheduled"]),
                count(&status["numberAvailable"]).max(count(&status["numberReady"])),
            );
            if updated < wanted {
                waiting(format!("{updated} out of {wanted} new pods have been updated"))
            } else if available < wanted {
                waiting(format!("{available} of {wanted} updated pods are available"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The label selector of a workload as a pod list takes it (`kubectl get pods -l` too), when it can be
/// written that way (`matchLabels` and the simple `matchExpressions` operators).
pub fn pod_selector(object: &Value) -> Option<String> {
    let selector = &object["spec"]["selector"];
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expr in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str()?;
        let values: Vec<&str> = expr["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        terms.push(match expr["operator"].as_str()? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

/// What the pods that are not ready say, grouped: `3 pods: ImagePullBackOff: Back-off
/// pulling image "…:broken"`. `pods` are the items of a pod list, as the API returns them.
pub fn pod_problems(pods: &[Value]) -> Vec<String> {
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (order, pod) in pods.iter().enumerate() {
        if pod["metadata"]["deletionTimestamp"].is_string() || condition_true(pod, "Ready") {
            continue;
        }
        let problem = pod_problem(pod);
        groups.entry(problem).and_modify(|(n, _)| *n += 1).or_insert((1, order));
    }
    let mut groups: Vec<(String, usize, usize)> = groups.into_iter().map(|(p, (n, order))| (p, n, order)).collect();
    groups.sort_by_key(|(_, n, order)| (std::cmp::Reverse(*n), *order));
    let shown = groups.len().min(MAX_PROBLEMS);
    let mut lines: Vec<String> = groups
        .iter()
        .take(shown)
        .map(|(problem, n, _)| format!("{n} pod{}: {problem}", if *n == 1 { "" } else { "s" }))
        .collect();
    if groups.len() > shown {
        lines.push(format!("and {} other problem(s)", groups.len() - shown));
    }
    lines
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == kind && c["status"] == "True")
}

/// The most telling reason one pod is not ready: a waiting or failed container (init
/// containers first: they block the rest), else a scheduling problem, else its phase.
fn pod_problem(pod: &Value) -> String {
    let status = &pod["status"];
    let containers = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|key| status[*key].as_array().into_iter().flatten());
    for container in containers {
        let state = &container["state"];
        let name = container["name"].as_str().unwrap_or("?");
        if let Some(reason) = state["waiting"]["reason"].as_str() {
            return with_message(&format!("container {name} {reason}"), &state["waiting"]["message"]);
        }
        let terminated = &state["terminated"];
        if terminated.is_object() && count(&terminated["exitCode"]) != 0 {
            let reason = terminated["reason"].as_str().unwrap_or("Error");
            return with_message(
                &format!("container {name} exited {} ({reason})", count(&terminated["exitCode"])),
                &terminated["message"],
            );
        }
        if container["ready"] == false && state["running"].is_object() {
            return format!("container {name} running, readiness probe not passing");
        }
    }
    let unscheduled = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
    if let Some(c) = unscheduled {
        return with_message(
            &format!("not scheduled ({})", c["reason"].as_str().unwrap_or("Unschedulable")),
            &c["message"],
        );
    }
    format!("{}, not ready", status["phase"].as_str().unwrap_or("phase unknown"))
}

fn with_message(head: &str, message: &Value) -> String {
    match message.as_str().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if m.chars().count() > MAX_MESSAGE => {
            format!("{head}: {}…", m.chars().take(MAX_MESSAGE).collect::<String>())
        }
        Some(m) => format!("{head}: {m}"),
        None => head.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = r#"---
# Source: bsr/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: bsr-postgres
stringData:
  password: "not-read"
---
# Source: bsr/templates/server.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bsr-server
  labels: {app: bsr}
spec:
  replicas: 3
---
# Source: bsr/templates/db.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: bsr-db
  namespace: data
---
# Source: bsr/templates/crd-like.yaml
apiVersion: example.com/v1
kind: Deployment
metadata:
  name: not-apps
---
"#;

    #[test]
    fn workloads_are_read_from_the_manifest_and_nothing_else() {
        let found = workloads(MANIFEST);
        assert_eq!(
            found,
            [
                Workload { kind: "Deployment".into(), name: "bsr-server".into(), namespace: None },
                Workload { kind: "StatefulSet".into(), name: "bsr-db".into(), namespace: Some("data".into()) },
            ]
        );
        assert!(workloads("{ not: yaml: [").is_empty());
        assert!(workloads("").is_empty());
    }

    fn deployment(replicas: i64, status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "bsr-server", "generation": 4},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bsr", "component": "server"}}},
               "status": status})
    }

    #[test]
    fn a_rolled_out_deployment_is_ready() {
        let ready = deployment(
            3,
            json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(not_ready(&ready), None);
    }

    #[test]
    fn a_stuck_rollout_says_how_far_it_got() {
        let stuck = deployment(
            3,
            json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            not_ready(&stuck).unwrap(),
            "Deployment bsr-server: waiting for rollout to finish: 1 out of 3 new replicas have been updated"
        );
        let terminating = deployment(
            3,
            json!({"observedGeneration": 4, "replicas": 6, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            not_ready(&terminating).unwrap(),
            "Deployment bsr-server: waiting for rollout to finish: 3 old replicas are pending termination"
        );
        let unavailable = deployment(
            3,
            json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(
            not_ready(&unavailable).unwrap(),
            "Deployment bsr-server: waiting for rollout to finish: 1 of 3 updated replicas are available"
        );
        let unseen = deployment(3, json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3}));
        assert_eq!(
            not_ready(&unseen).unwrap(),
            "Deployment bsr-server: waiting for the deployment spec update to be observed"
        );
        let mut paused = stuck.clone();
        paused["spec"]["paused"] = json!(true);
        assert_eq!(not_ready(&paused), None, "a paused deployment is not waited for");
    }

    #[test]
    fn statefulsets_and_daemonsets() {
        let sts = json!({"kind": "StatefulSet", "metadata": {"name": "db", "generation": 2},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1}});
        assert_eq!(not_ready(&sts).unwrap(), "StatefulSet db: waiting for rollout to finish: 1 pod to be ready");
        let mut on_delete = sts.clone();
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        on_delete["status"]["readyReplicas"] = json!(2);
        assert_eq!(not_ready(&on_delete), None, "OnDelete never updates pods by itself");
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 2}});
        assert_eq!(
            not_ready(&ds).unwrap(),
            "DaemonSet agent: waiting for rollout to finish: 2 of 3 updated pods are available"
        );
    }

    #[test]
    fn selectors_the_api_accepts() {
        assert_eq!(pod_selector(&deployment(1, json!({}))).unwrap(), "app=bsr,component=server");
        let exprs = json!({"spec": {"selector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(pod_selector(&exprs).unwrap(), "tier in (a,b),!canary");
        assert_eq!(pod_selector(&json!({"spec": {}})), None, "no selector: no pod listing");
        let odd = json!({"spec": {"selector": {"matchExpressions": [{"key": "x", "operator": "Gt"}]}}});
        assert_eq!(pod_selector(&odd), None);
    }

    fn pod(ready: bool, status: Value) -> Value {
        let mut status = status;
        status["conditions"] = json!([{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": if ready { "True" } else { "False" }}]);
        json!({"metadata": {"name": "p"}, "status": status})
    }

    #[test]
    fn pod_problems_are_grouped_and_ready_pods_left_out() {
        let pull = json!({"phase": "Pending", "containerStatuses": [{"name": "bufd", "ready": false,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"bufd:broken\""}}}]});
        let crash = json!({"phase": "Running", "containerStatuses": [{"name": "bufd", "ready": false,
            "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]});
        let pods =
            [pod(true, json!({"phase": "Running"})), pod(false, pull.clone()), pod(false, crash), pod(false, pull)];
        assert_eq!(
            pod_problems(&pods),
            [
                "2 pods: container bufd ImagePullBackOff: Back-off pulling image \"bufd:broken\"",
                "1 pod: container bufd exited 2 (Error)"
            ]
        );
        assert!(pod_problems(&[pod(true, json!({}))]).is_empty());
    }

    #[test]
    fn unscheduled_and_unprobed_pods_and_long_messages() {
        let mut unscheduled = pod(false, json!({"phase": "Pending"}));
        unscheduled["status"]["conditions"][0] = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"});
        let probing = pod(
            false,
            json!({"phase": "Running", "containerStatuses": [{"name": "web", "ready": false,
            "state": {"running": {"startedAt": "x"}}}]}),
        );
        let long = pod(
            false,
            json!({"containerStatuses": [{"name": "c",
            "state": {"waiting": {"reason": "ErrImagePull", "message": "x".repeat(500)}}}]}),
        );
        let lines = pod_problems(&[unscheduled, probing, long]);
        assert_eq!(lines[0], "1 pod: not scheduled (Unschedulable): 0/3 nodes are available");
        assert_eq!(lines[1], "1 pod: container web running, readiness probe not passing");
        assert!(lines[2].ends_with('…') && lines[2].chars().count() < 260, "{}", lines[2]);
    }

    #[test]
    fn many_distinct_problems_are_cut_short() {
        let items: Vec<Value> = (0..7)
            .map(|i| {
                pod(
                    false,
                    json!({"containerStatuses": [{"name": format!("c{i}"), "state": {"waiting": {"reason": "X"}}}]}),
                )
            })
            .collect();
        let lines = pod_problems(&items);
        assert_eq!(lines.len(), MAX_PROBLEMS + 1);
        assert_eq!(lines.last().unwrap(), "and 3 other problem(s)");
    }
}
