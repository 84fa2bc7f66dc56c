//! Jobs that run a pod for a while, as on a cluster, and what clients see of them: helm
//! 3 and 4 waiting on a pre-upgrade hook Job that runs for seconds (and one that fails
//! after it ran), watches delivering each step of the Job and its pod, and `pods/log`
//! read by the real kubectl, refused by a deny rule.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Bed, Kubectl, chart, condition};
use kube_standin::testing::HelmVersion;
use kube_standin::{Options, StandIn};
use serde_json::Value;

/// Polls the stand-in until the Job has a `Complete` or `Failed` condition; returns it.
fn finished_job(standin: &StandIn, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(job) = standin.get("batch/v1", "jobs", Some("default"), name)
            && (condition(&job, "Complete").is_some() || condition(&job, "Failed").is_some())
        {
            return job;
        }
        assert!(Instant::now() < deadline, "Job {name} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pods_of_job(standin: &StandIn, job: &str) -> Vec<Value> {
    standin
        .list("v1", "pods", Some("default"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job)
        .collect()
}

fn terminated(pod: &Value) -> Value {
    pod["status"]["containerStatuses"][0]["state"]["terminated"].clone()
}

for_each_helm!(hook_jobs_run_for_their_run_seconds);
fn hook_jobs_run_for_their_run_seconds(v: HelmVersion) {
    let bed = Bed::new(v);
    bed.helm_ok(&["install", "demo", &chart("demo-v1")]);
    let v2 = chart("demo-v2");

    // helm waits for the pre-upgrade hook while its pod runs, then for the Deployment.
    let started = Instant::now();
    bed.helm_ok(&[
        "upgrade",
        "demo",
        &v2,
        "--set-string",
        "hookPodAnnotations.kube-standin/run-seconds=2",
        "--wait",
        "--timeout",
        "30s",
    ]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{v}: helm did not wait for the hook's run: {took:?}");
    assert!(took < Duration::from_secs(15), "{v}: helm waited for its timeout, not the hook: {took:?}");
    let job = bed.must("batch/v1", "jobs", "demo-migrate");
    assert_eq!(condition(&job, "Complete").unwrap()["status"], "True", "{v}");
    assert_eq!(job["status"]["succeeded"], 1, "{v}");
    let pods = pods_of_job(&bed.standin, "demo-migrate");
    assert_eq!(pods.len(), 1, "{v}: {pods:?}");
    assert_eq!(pods[0]["status"]["phase"], "Succeeded", "{v}");
    assert_eq!(terminated(&pods[0])["exitCode"], 0, "{v}");
    let first = pods[0]["metadata"]["name"].clone();

    // before-hook-creation deletes that Job, its pod with it; the new one runs, then
    // exits 1, and with backoffLimit 0 the Job and the upgrade fail.
    let started = Instant::now();
    let err = bed.helm_err(&[
        "upgrade",
        "demo",
        &v2,
        "--set-string",
        "hookPodAnnotations.kube-standin/run-seconds=1",
        "--set-string",
        "hookPodAnnotations.kube-standin/exit-code=1",
        "--timeout",
        "30s",
    ]);
    assert!(started.elapsed() >= Duration::from_secs(1), "{v}: the hook failed before it ran");
    let expected = if v.major() == 3 { "BackoffLimitExceeded" } else { "Job Failed" };
    assert!(err.contains("pre-upgrade hooks failed") && err.contains(expected), "{v}: {err}");
    let pods = pods_of_job(&bed.standin, "demo-migrate");
    assert_eq!(pods.len(), 1, "{v}: the first hook's pod was not collected: {pods:?}");
    assert_ne!(pods[0]["metadata"]["name"], first, "{v}");
    assert_eq!(pods[0]["status"]["phase"], "Failed", "{v}");
    assert_eq!(
        (terminated(&pods[0])["exitCode"].clone(), terminated(&pods[0])["reason"].clone()),
        (1.into(), "Error".into())
    );
    assert_eq!(bed.statuses("demo"), ["superseded", "deployed", "failed"], "{v}");
}

/// A raw watch from a fixed resourceVersion, started before the Job exists, sees every
/// step live: the pod created Pending, Running, Succeeded; the Job active, then Complete.
#[test]
fn watches_deliver_each_step_of_a_job_and_its_pod() {
    let standin = StandIn::start(Options::default()).unwrap();
    let k = Kubectl::at(&standin.url());
    let list: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1/namespaces/default/pods"])).unwrap();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let watch =
        |path: &str| k.spawn(&["get", "--raw", &format!("{path}?watch=true&resourceVersion={rv}&timeoutSeconds=3")]);
    let pods = watch("/api/v1/namespaces/default/pods");
    let jobs = watch("/apis/batch/v1/namespaces/default/jobs");
    std::thread::sleep(Duration::from_millis(300)); // both watches are open
    k.ok_with_input(
        &["create", "-f", "-"],
        &job_manifest("slow", "busybox:1.36", "kube-standin/run-seconds: \"1\"", 0),
    );
    let job = finished_job(&standin, "slow");
    assert!(condition(&job, "Complete").is_some(), "{job}");

    let events = |child: std::process::Child| -> Vec<(String, Value)> {
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .map(|e| (e["type"].as_str().unwrap().to_string(), e["object"].clone()))
            .collect()
    };
    let pod_steps: Vec<String> = events(pods)
        .into_iter()
        .map(|(ty, pod)| format!("{ty} {}", pod["status"]["phase"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(pod_steps, ["ADDED Pending", "MODIFIED Running", "MODIFIED Succeeded"]);
    let job_steps: Vec<String> = events(jobs)
        .into_iter()
        .map(|(ty, job)| {
            let conditions: Vec<&str> = job["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            format!("{ty} active={} {}", job["status"]["active"], conditions.join("+"))
        })
        .collect();
    assert_eq!(
        job_steps,
        ["ADDED active=null ", "MODIFIED active=1 ", "MODIFIED active=0 SuccessCriteriaMet+Complete"]
    );
}

fn job_manifest(name: &str, image: &str, annotations: &str, backoff_limit: u32) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  backoffLimit: {backoff_limit}\n  template:\n    metadata:\n      annotations:\n        {annotations}\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: {image}\n        args: [migrate, --to-schema, \"222\"]\n"
    )
}

/// `kubectl logs` of a Job and of its pod (whole, `--tail`, `--timestamps`), the API's
/// errors for a pod that does not exist, a container that never started and a pod whose
/// container must be named, and a deny rule on `pods/log`.
#[test]
fn kubectl_logs_read_what_pods_print() {
    let standin = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
    let k = Kubectl::at(&standin.url());
    let log = "kube-standin/log: \"applying 0042_add_index\\nERROR: relation \\\"idx\\\" already exists\\nmigration failed\"\n        kube-standin/exit-code: \"1\"";
    k.ok_with_input(&["create", "-f", "-"], &job_manifest("migrate", "bufd:1.1.9", log, 0));
    let job = finished_job(&standin, "migrate");
    assert_eq!(condition(&job, "Failed").unwrap()["reason"], "BackoffLimitExceeded");
    let pod = pods_of_job(&standin, "migrate").remove(0);
    let pod = pod["metadata"]["name"].as_str().unwrap();

    let whole = "applying 0042_add_index\nERROR: relation \"idx\" already exists\nmigration failed\n";
    assert_eq!(k.ok(&["logs", "job/migrate"]), whole);
    assert_eq!(k.ok(&["logs", pod, "--tail=2"]), "ERROR: relation \"idx\" already exists\nmigration failed\n");
    let stamped = k.ok(&["logs", pod, "--tail=1", "--timestamps"]);
    assert!(stamped.ends_with("Z migration failed\n") && stamped.len() > 31, "{stamped:?}");
    assert_eq!(k.ok(&["logs", pod, "--limit-bytes=8"]), "applying");

    // kubectl reads the pod first and words the 404 itself, as against a cluster.
    let err = k.fails(&["logs", "nope"]);
    assert!(err.contains("(NotFound): pods \"nope\" not found in namespace \"default\""), "{err}");
    let err = k.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/nope/log"]);
    assert!(err.contains("Error from server (NotFound): pods \"nope\" not found"), "{err}");

    // Without an annotation the log says what the container stands in for.
    let pod_yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: two\nspec:\n  containers:\n  - {name: a, image: \"bufd:1\", args: [serve]}\n  - {name: b, image: \"busybox:broken\"}\n";
    k.ok_with_input(&["create", "-f", "-"], pod_yaml);
    assert_eq!(
        k.ok(&["logs", "two", "-c", "a"]),
        "kube-standin: container \"a\" stands in for image \"bufd:1\"; no process runs\nkube-standin: it would run: serve\n"
    );
    let err = k.fails(&["logs", "two", "-c", "b"]);
    assert!(
        err.contains("Error from server (BadRequest): container \"b\" in pod \"two\" is waiting to start: trying and failing to pull image"),
        "{err}"
    );
    // kubectl names a container itself; the API asks for one when the request does not.
    let err = k.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert!(
        err.contains(
            "Error from server (BadRequest): a container name must be specified for pod two, choose one of: [a b]"
        ),
        "{err}"
    );
    let err = k.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log?container=c"]);
    assert!(err.contains("container c is not valid for pod two"), "{err}");

    // A typo in an annotation fails the write, not the run.
    let err =
        k.fails_with_input(&["create", "-f", "-"], &job_manifest("typo", "x:1", "kube-standin/run-seconds: 3s", 0));
    assert!(err.contains("spec.template.metadata.annotations[kube-standin/run-seconds]: Invalid value"), "{err}");

    // pods/log is its own resource to RBAC: denying it leaves the pods readable.
    let id = standin.deny("get:pods/log".parse().unwrap());
    let err = k.fails(&["logs", pod]);
    assert!(
        err.contains(&format!("Error from server (Forbidden): pods \"{pod}\" is forbidden: User \"standin\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\"")),
        "{err}"
    );
    assert_eq!(k.run(&["auth", "can-i", "get", "pods", "--subresource=log"]).status.code(), Some(1));
    assert_eq!(k.ok(&["auth", "can-i", "get", "pods"]).trim(), "yes");
    assert!(k.ok(&["get", "pod", pod, "-o", "name"]).contains(pod));
    assert!(standin.allow(id));
    assert_eq!(k.ok(&["auth", "can-i", "get", "pods", "--subresource=log"]).trim(), "yes");
    assert_eq!(k.ok(&["logs", pod, "--tail=1"]), "migration failed\n");
}
