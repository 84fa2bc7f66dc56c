//! The executor's view of the cluster: the few operations a walk performs, behind a
//! trait, so the walk can be tested with a fake in milliseconds (`walk::tests`) and runs
//! against the real thing through [`Live`]: helm (through the process layer) for what
//! changes or reads the release, the API client for the tool's own reads (pods,
//! workloads, the release's latest revision), which cost no process.

use super::rollout::{Snapshot, Watch};
use super::unready;
use crate::helm::{Deployed, ExecError, Helm, Signals, UpgradeRequest, policy_command};
use crate::kube::{KubeClient, KubeError};
use crate::release::{Metadata, ReadError, Release, ReleaseStatus};

/// What a walk does to and reads from the cluster.
pub trait Cluster {
    /// `helm upgrade RELEASE CHART FLAGS -o json`.
    fn upgrade(&self, purpose: String, release: &str, request: &UpgradeRequest) -> Result<Deployed, ExecError>;
    /// `helm rollback RELEASE REVISION --wait --timeout T`.
    fn rollback(&self, purpose: String, release: &str, revision: u64, timeout: &str) -> Result<(), ExecError>;
    /// The release's latest revision, version and status.
    fn metadata(&self, purpose: String, release: &str) -> Result<Metadata, ExecError>;
    /// The release's latest revision and its status: what a hop checks before it starts
    /// (anyone else's helm operation made a newer revision). The error says what failed.
    fn latest_revision(&self, release: &str) -> Result<(u64, ReleaseStatus), String>;
    /// Everything about the release (history included), after a failure.
    fn read(&self, release: &str) -> Result<Release, ReadError>;
    /// `helm status RELEASE`, as helm prints it, for the operator at a pause.
    fn status_text(&self, release: &str) -> Result<String, ExecError>;
    /// How many pods that still run (or are about to) match a label selector in the
    /// release's namespace.
    fn count_pods(&self, selector: &str) -> Result<usize, KubeError>;
    /// Why the release's workloads are not ready, one line each (best effort: empty when
    /// the reads fail).
    fn explain_unready(&self, release: &str) -> Vec<String>;
    /// A command of the user's own policy; returns its stdout.
    fn policy_command(&self, purpose: String, argv: &[String]) -> Result<String, ExecError>;
    /// helm's major version: helm 4 needs `--force-conflicts` after the policy's own
    /// commands touched fields helm manages.
    fn helm_major(&self) -> u32;
    fn signals(&self) -> &Signals;
}

/// A pod whose containers have all ended for good (phase `Succeeded` or `Failed`): a
/// completed hook Job's pod stays until its Job is deleted, and writes nothing more, so
/// "no pod of the newer version remains" does not wait for it.
fn finished(pod: &serde_json::Value) -> bool {
    matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// The real cluster: helm and the API client.
pub struct Live<'a> {
    pub helm: &'a Helm,
    pub kube: &'a KubeClient,
    pub helm_major: u32,
}

impl Cluster for Live<'_> {
    fn upgrade(&self, purpose: String, release: &str, request: &UpgradeRequest) -> Result<Deployed, ExecError> {
        self.helm.upgrade(purpose, release, request)
    }

    fn rollback(&self, purpose: String, release: &str, revision: u64, timeout: &str) -> Result<(), ExecError> {
        self.helm.rollback(purpose, release, revision, timeout).map(|_| ())
    }

    fn metadata(&self, purpose: String, release: &str) -> Result<Metadata, ExecError> {
        self.helm.metadata(purpose, release)
    }

    fn read(&self, release: &str) -> Result<Release, ReadError> {
        Release::read_through(Some(self.kube), self.helm, release)
    }

    fn status_text(&self, release: &str) -> Result<String, ExecError> {
        self.helm.status_text(release)
    }

    fn latest_revision(&self, release: &str) -> Result<(u64, ReleaseStatus), String> {
        match self.kube.release_revisions(release) {
            Ok(revisions) => revisions
                .last()
                .map(|(revision, status)| (*revision, ReleaseStatus::from_label(status)))
                .ok_or_else(|| format!("helm's storage holds no revision of {release}")),
            // helm keeps releases where only helm reads them (HELM_DRIVER=sql): ask helm.
            Err(KubeError::Unsupported { .. }) => self
                .helm
                .metadata::<Metadata>(format!("read the latest revision of {release}"), release)
                .map(|m| (m.revision, m.status))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn count_pods(&self, selector: &str) -> Result<usize, KubeError> {
        let pods = self.kube.list_pods(self.kube.namespace(), selector)?;
        Ok(pods.iter().filter(|pod| !finished(pod)).count())
    }

    fn explain_unready(&self, release: &str) -> Vec<String> {
        let Ok(manifest) = self.helm.manifest(release) else {
            return vec![];
        };
        let mut lines = vec![];
        for workload in unready::workloads(&manifest) {
            let namespace = workload.namespace.clone().unwrap_or_else(|| self.kube.namespace().to_string());
            let Ok(Some(object)) = self.kube.get_workload(&workload.kind, &namespace, &workload.name) else {
                continue;
            };
            let Some(summary) = unready::not_ready(&object) else { continue };
            lines.push(summary);
            let Some(selector) = unready::pod_selector(&object) else { continue };
            let pods = self.kube.list_pods(&namespace, &selector).unwrap_or_default();
            lines.extend(unready::pod_problems(&pods).into_iter().map(|p| format!("  {p}")));
        }
        lines
    }

    fn policy_command(&self, purpose: String, argv: &[String]) -> Result<String, ExecError> {
        Ok(self.helm.runner.run(&policy_command(purpose, argv, vec![]))?.stdout)
    }

    fn helm_major(&self) -> u32 {
        self.helm_major
    }

    fn signals(&self) -> &Signals {
        &self.helm.runner.signals
    }
}

/// The selector of what helm manages: helm labels every object of a release (not its
/// hooks) `app.kubernetes.io/managed-by=Helm` and annotates it with the release's name.
const MANAGED_BY_HELM: &str = "app.kubernetes.io/managed-by=Helm";

impl Watch for Live<'_> {
    fn snapshot(&self, release: &str) -> Option<Snapshot> {
        // A watch that stalls must not hold up the next read for long.
        let client = self.kube.with_timeout(std::time::Duration::from_secs(5));
        let namespace = client.namespace().to_string();
        let mut workloads = vec![];
        for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
            let items = client.list_workloads(kind, &namespace, MANAGED_BY_HELM).ok()?;
            workloads.extend(
                items
                    .into_iter()
                    .filter(|o| o["metadata"]["annotations"]["meta.helm.sh/release-name"] == release)
                    // Items of a list carry no kind of their own.
                    .map(|mut o| {
                        o["kind"] = kind.into();
                        o
                    }),
            );
        }
        let hook_jobs = client
            .list_jobs(&namespace)
            .ok()?
            .into_iter()
            .filter(|j| j["metadata"]["annotations"]["helm.sh/hook"].is_string())
            .collect();
        Some(Snapshot { workloads, hook_jobs })
    }

    fn job_log_tail(&self, job: &str, lines: i64) -> Option<(String, String)> {
        let namespace = self.kube.namespace();
        // `job-name` is the label every Kubernetes version puts on a Job's pods.
        let mut pods = self.kube.list_pods(namespace, &format!("job-name={job}")).ok()?;
        pods.sort_by(|a, b| {
            a["metadata"]["creationTimestamp"].as_str().cmp(&b["metadata"]["creationTimestamp"].as_str())
        });
        let pod = pods.last()?;
        let name = pod["metadata"]["name"].as_str()?.to_string();
        let containers = pod["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
        let container = if containers > 1 { pod["spec"]["containers"][0]["name"].as_str() } else { None };
        // Forbidden (no `pods/log`), or a container that never started: nothing to show.
        let log = self.kube.pod_log_tail(namespace, &name, container, lines).ok()?;
        Some((name, log))
    }
}
