//! What a rollout is doing while helm waits for it: shown under the spinner of a deploy
//! step, and, when a hook Job fails, its reason and last log lines.
//!
//! `helm upgrade --wait` says nothing until it ends, which can be minutes; `kubectl rollout
//! status` and the migration Job's logs are what an operator would open in a second
//! terminal. So while helm runs, the release's workloads and its namespace's hook Jobs are
//! read once a second through the API client (a few small reads, no process), and said in
//! `kubectl rollout status`'s terms: per workload how many pods are updated and ready out
//! of how many, per hook Job whether it runs (and for how long), succeeded or failed (and
//! why), and how much of `--timeout` is left. On a terminal that is the spinner's text; in
//! logs only a failing Job is reported, once, with its last log lines where the cluster
//! allows reading them (`pods/log`).
//!
//! The reads are [`Watch`]'s (the API client, or a fake in tests); the formatting is pure
//! and tested without a cluster. Nothing here decides anything: helm's own wait does.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::text::{count, for_terminal};
use crate::ui::progress::Progress;

/// How often the cluster is read while helm waits: often enough to follow, rarely enough
/// to cost the API nothing worth mentioning.
const PERIOD: Duration = Duration::from_secs(1);
/// The log lines shown for a failed hook Job.
const LOG_LINES: i64 = 10;

/// What the cluster says of a release's rollout at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The release's Deployments, StatefulSets and DaemonSets, as the API returns them.
    pub workloads: Vec<Value>,
    /// The hook Jobs in the release's namespace (annotated `helm.sh/hook`).
    pub hook_jobs: Vec<Value>,
}

/// The reads behind the display.
pub trait Watch: Sync {
    /// The release's workloads and hook Jobs now; None when they cannot be read (the
    /// display then keeps what it had: helm's wait goes on regardless).
    fn snapshot(&self, release: &str) -> Option<Snapshot>;
    /// The last `lines` lines of the log of the newest pod of `job`, and that pod's name;
    /// None when there is no pod or the cluster does not allow reading logs.
    fn job_log_tail(&self, job: &str, lines: i64) -> Option<(String, String)>;
}

/// A Watch that reads nothing (a walk without a cluster to watch).
pub struct Blind;

impl Watch for Blind {
    fn snapshot(&self, _release: &str) -> Option<Snapshot> {
        None
    }
    fn job_log_tail(&self, _job: &str, _lines: i64) -> Option<(String, String)> {
        None
    }
}

fn count_of(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

/// One workload's progress, in `kubectl rollout status`'s terms, short enough for a line:
/// `Deployment bsr-server: 1 of 2 updated, 1 ready, 1 old pending termination`.
pub fn workload_line(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("Workload");
    let name = for_terminal(name_of(object));
    let (spec, status) = (&object["spec"], &object["status"]);
    if count_of(&status["observedGeneration"]) < count_of(&object["metadata"]["generation"]) {
        return format!("{kind} {name}: waiting for the update to be observed");
    }
    let progress = match kind {
        "DaemonSet" => {
            let wanted = count_of(&status["desiredNumberScheduled"]);
            let updated = count_of(&status["updatedNumberScheduled"]);
            let available = count_of(&status["numberAvailable"]);
            if updated >= wanted && available >= wanted {
                format!("{wanted} of {wanted} updated and available")
            } else {
                format!("{updated} of {wanted} updated, {available} available")
            }
        }
        _ => {
            let wanted = spec["replicas"].as_i64().unwrap_or(1);
            let updated = count_of(&status["updatedReplicas"]);
            let ready = count_of(&status["readyReplicas"]);
            // Old pods still running beside the new ones (Deployments report them).
            let old = (count_of(&status["replicas"]) - updated).max(0);
            let mut text = if updated >= wanted && ready >= wanted && old == 0 {
                format!("{wanted} of {wanted} updated and ready")
            } else {
                format!("{updated} of {wanted} updated, {ready} ready")
            };
            if kind == "Deployment" && old > 0 {
                text.push_str(&format!(", {} pending termination", count(old as usize, "old pod", "old pods")));
            }
            text
        }
    };
    format!("{kind} {name}: {progress}")
}

fn parse_time(value: &Value) -> Option<SystemTime> {
    humantime::parse_rfc3339(value.as_str()?).ok()
}

fn seconds(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// Why a Job failed, from its `Failed` condition (reason and message); None when it has
/// not failed.
pub fn job_failure(job: &Value) -> Option<String> {
    let conditions = job["status"]["conditions"].as_array()?;
    let failed = conditions.iter().find(|c| c["type"] == "Failed" && c["status"] == "True")?;
    let reason = failed["reason"].as_str().unwrap_or("failed");
    Some(match failed["message"].as_str() {
        Some(message) if !message.is_empty() => for_terminal(&format!("{reason} ({message})")).into_owned(),
        _ => for_terminal(reason).into_owned(),
    })
}

fn job_succeeded(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Complete" && c["status"] == "True"))
}

/// One hook Job: running for how long, succeeded in how long, or failed and why.
pub fn job_line(job: &Value, now: SystemTime) -> String {
    let name = for_terminal(name_of(job));
    let started = parse_time(&job["status"]["startTime"]);
    let state = if let Some(why) = job_failure(job) {
        format!("failed: {why}")
    } else if job_succeeded(job) {
        match (started, parse_time(&job["status"]["completionTime"])) {
            (Some(s), Some(e)) => format!("succeeded in {}", seconds(e.duration_since(s).unwrap_or_default())),
            _ => "succeeded".to_string(),
        }
    } else {
        match started {
            Some(s) => format!("running {}", seconds(now.duration_since(s).unwrap_or_default())),
            None => "starting".to_string(),
        }
    };
    format!("hook Job {name}: {state}")
}

/// The spinner's text below the step: the time left, then one line per workload and per
/// hook Job of this step.
pub fn detail(snapshot: &Snapshot, new_jobs: &[&Value], elapsed: Duration, timeout: Option<Duration>) -> String {
    let mut text = match timeout {
        Some(limit) if limit > elapsed => {
            format!(" · {} of --timeout {} left", seconds(limit - elapsed), seconds(limit))
        }
        Some(limit) => format!(" · --timeout {} reached", seconds(limit)),
        None => String::new(),
    };
    let now = SystemTime::now();
    for line in snapshot.workloads.iter().map(workload_line).chain(new_jobs.iter().map(|j| job_line(j, now))) {
        text.push_str("\n    ");
        text.push_str(&line);
    }
    text
}

fn uid(job: &Value) -> String {
    job["metadata"]["uid"].as_str().unwrap_or_else(|| name_of(job)).to_string()
}

/// Follows one step while it runs (see the module documentation).
pub struct Watcher<'a> {
    pub watch: &'a dyn Watch,
    pub progress: &'a Progress,
    pub release: &'a str,
    pub timeout: Option<Duration>,
}

impl Watcher<'_> {
    /// Run `step` (a helm command that waits), following the rollout meanwhile. Hook Jobs
    /// that existed before the step are not its own and are left out.
    pub fn around<T>(&self, step: impl FnOnce() -> T) -> T {
        let before: BTreeSet<String> =
            self.watch.snapshot(self.release).map(|s| s.hook_jobs.iter().map(uid).collect()).unwrap_or_default();
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let (result, mut reported) = std::thread::scope(|scope| {
            let poller = scope.spawn(|| self.follow(&before, started, &stop));
            // Stopped however `step` ends: a panic in it must not leave the scope waiting
            // for the poller forever.
            let stopper = StopOnDrop(&stop);
            let result = step();
            drop(stopper);
            (result, poller.join().unwrap_or_default())
        });
        // A hook that failed within the last period was not seen failing yet.
        if let Some(snapshot) = self.watch.snapshot(self.release) {
            self.report_failures(&snapshot, &before, &mut reported);
        }
        result
    }

    /// Until `stop`: read, show, report failed hook Jobs. Returns the Jobs reported.
    fn follow(&self, before: &BTreeSet<String>, started: Instant, stop: &AtomicBool) -> BTreeSet<String> {
        let mut reported = BTreeSet::new();
        while !wait(stop, PERIOD) {
            let Some(snapshot) = self.watch.snapshot(self.release) else { continue };
            let new_jobs: Vec<&Value> = snapshot.hook_jobs.iter().filter(|j| !before.contains(&uid(j))).collect();
            self.progress.step_detail(&detail(&snapshot, &new_jobs, started.elapsed(), self.timeout));
            self.report_failures(&snapshot, before, &mut reported);
        }
        reported
    }

    /// Each hook Job of this step that failed, once: why, and its last log lines.
    fn report_failures(&self, snapshot: &Snapshot, before: &BTreeSet<String>, reported: &mut BTreeSet<String>) {
        for job in &snapshot.hook_jobs {
            let Some(why) = job_failure(job) else { continue };
            if before.contains(&uid(job)) || !reported.insert(uid(job)) {
                continue;
            }
            let name = for_terminal(name_of(job));
            let mut text = format!("  hook Job {name} failed: {why}");
            match self.watch.job_log_tail(name_of(job), LOG_LINES) {
                Some((pod, log)) if !log.trim().is_empty() => {
                    text.push_str(&format!("\n  last lines of `kubectl logs {}`:", for_terminal(&pod)));
                    for line in log.trim_end().lines() {
                        text.push_str("\n    ");
                        text.push_str(&for_terminal(line));
                    }
                }
                _ => {}
            }
            self.progress.line(&text);
        }
    }
}

/// Sleep up to `period`, waking early when `stop` is set; true once it is.
fn wait(stop: &AtomicBool, period: Duration) -> bool {
    let until = Instant::now() + period;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.load(Ordering::SeqCst)
}

/// Sets the flag when dropped, on a panic's unwinding too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(wanted: i64, updated: i64, ready: i64, total: i64) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "bsr-server", "generation": 2},
            "spec": {"replicas": wanted},
            "status": {"observedGeneration": 2, "updatedReplicas": updated, "readyReplicas": ready, "replicas": total}})
    }

    #[test]
    fn workloads_are_said_as_kubectl_rollout_status_counts_them() {
        assert_eq!(
            workload_line(&deployment(2, 1, 1, 3)),
            "Deployment bsr-server: 1 of 2 updated, 1 ready, 2 old pods pending termination"
        );
        assert_eq!(workload_line(&deployment(2, 2, 2, 2)), "Deployment bsr-server: 2 of 2 updated and ready");
        assert_eq!(
            workload_line(&deployment(2, 2, 1, 3)),
            "Deployment bsr-server: 2 of 2 updated, 1 ready, 1 old pod pending termination"
        );
        let mut unobserved = deployment(2, 2, 2, 2);
        unobserved["metadata"]["generation"] = json!(3);
        assert_eq!(workload_line(&unobserved), "Deployment bsr-server: waiting for the update to be observed");
        let sts = json!({"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"replicas": 3},
            "status": {"updatedReplicas": 1, "readyReplicas": 2, "replicas": 3}});
        assert_eq!(workload_line(&sts), "StatefulSet db: 1 of 3 updated, 2 ready");
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "agent"},
            "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(workload_line(&ds), "DaemonSet agent: 3 of 3 updated, 2 available");
        // Names come from the cluster: shown, not obeyed.
        let hostile =
            json!({"kind": "Deployment", "metadata": {"name": "x\u{1b}[2J"}, "spec": {"replicas": 1}, "status": {}});
        assert!(!workload_line(&hostile).contains('\u{1b}'));
    }

    fn job(status: Value) -> Value {
        json!({"kind": "Job", "metadata": {"name": "bsr-migrate", "uid": "u1", "annotations": {"helm.sh/hook": "pre-upgrade"}}, "status": status})
    }

    #[test]
    fn hook_jobs_say_whether_they_run_succeeded_or_failed_and_why() {
        let now = humantime::parse_rfc3339("2026-11-30T08:00:12Z").unwrap();
        assert_eq!(
            job_line(&job(json!({"startTime": "2026-11-30T08:00:00Z", "active": 1})), now),
            "hook Job bsr-migrate: running 12s"
        );
        let done = job(json!({"startTime": "2026-11-30T08:00:00Z", "completionTime": "2026-11-30T08:00:03Z",
            "conditions": [{"type": "Complete", "status": "True"}]}));
        assert_eq!(job_line(&done, now), "hook Job bsr-migrate: succeeded in 3s");
        let failed = job(json!({"startTime": "2026-11-30T08:00:00Z", "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}));
        assert_eq!(
            job_line(&failed, now),
            "hook Job bsr-migrate: failed: BackoffLimitExceeded (Job has reached the specified backoff limit)"
        );
        assert_eq!(job_failure(&done), None);
    }

    #[test]
    fn the_detail_says_the_time_left_then_each_workload_and_job() {
        let snapshot = Snapshot { workloads: vec![deployment(2, 1, 1, 2)], hook_jobs: vec![] };
        let text = detail(&snapshot, &[], Duration::from_secs(12), Some(Duration::from_secs(300)));
        assert_eq!(
            text,
            " · 4m 48s of --timeout 5m left\n    Deployment bsr-server: 1 of 2 updated, 1 ready, 1 old pod pending termination"
        );
        let text = detail(&Snapshot::default(), &[], Duration::from_secs(301), Some(Duration::from_secs(300)));
        assert_eq!(text, " · --timeout 5m reached");
    }

    /// A cluster whose hook Job fails: reported once, with its log, in any mode.
    struct FailingHook {
        reads: std::sync::Mutex<usize>,
    }

    impl Watch for FailingHook {
        fn snapshot(&self, _release: &str) -> Option<Snapshot> {
            let mut reads = self.reads.lock().unwrap();
            *reads += 1;
            // Before the step: no hook Job; after: a failed one.
            let jobs = if *reads == 1 {
                vec![]
            } else {
                vec![job(
                    json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
                )]
            };
            Some(Snapshot { workloads: vec![], hook_jobs: jobs })
        }
        fn job_log_tail(&self, job: &str, lines: i64) -> Option<(String, String)> {
            assert_eq!((job, lines), ("bsr-migrate", LOG_LINES));
            Some(("bsr-migrate-x7k2p".into(), "migrating 222 → 223\nERROR: column \"x\" exists\u{1b}[31m\n".into()))
        }
    }

    #[test]
    fn a_failed_hook_is_reported_once_with_its_last_log_lines() {
        let (printer, _, err) = crate::printer::Printer::captured(false);
        let progress = Progress::new(printer);
        let watch = FailingHook { reads: Default::default() };
        let watcher = Watcher { watch: &watch, progress: &progress, release: "bsr", timeout: None };
        // The step fails fast, before the first period: the last read after it still tells.
        let out = watcher.around(|| "helm failed");
        assert_eq!(out, "helm failed");
        let text = err.text();
        assert_eq!(text.matches("hook Job bsr-migrate failed: BackoffLimitExceeded").count(), 1, "{text}");
        assert!(text.contains("last lines of `kubectl logs bsr-migrate-x7k2p`:"), "{text}");
        assert!(text.contains("    ERROR: column \"x\" exists\\x1b[31m"), "escaped: {text}");
    }

    #[test]
    fn jobs_from_before_the_step_are_not_its_own() {
        struct Old;
        impl Watch for Old {
            fn snapshot(&self, _release: &str) -> Option<Snapshot> {
                let failed =
                    json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]});
                Some(Snapshot { workloads: vec![], hook_jobs: vec![job(failed)] })
            }
            fn job_log_tail(&self, _job: &str, _lines: i64) -> Option<(String, String)> {
                panic!("no log is read for an old Job")
            }
        }
        let (printer, _, err) = crate::printer::Printer::captured(false);
        let progress = Progress::new(printer);
        Watcher { watch: &Old, progress: &progress, release: "bsr", timeout: None }.around(|| ());
        assert_eq!(err.text(), "");
    }
}
