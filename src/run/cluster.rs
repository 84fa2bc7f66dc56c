//! The executor's view of the cluster: the few operations a walk performs, behind a
//! trait, so the walk can be tested with a fake in milliseconds (`walk::tests`) and runs
//! against the real thing through [`Live`] (helm and kubectl, through the process layer).

use serde_json::Value;

use super::unready;
use crate::helm::{Deployed, ExecError, Helm, Kubectl, Signals, policy_command};
use crate::release::{Metadata, ReadError, Release};

/// What a walk does to and reads from the cluster.
pub trait Cluster {
    /// `helm upgrade RELEASE CHART FLAGS -o json`.
    fn upgrade(&self, purpose: String, release: &str, chart: &str, flags: Vec<String>) -> Result<Deployed, ExecError>;
    /// `helm rollback RELEASE REVISION --wait --timeout T`.
    fn rollback(&self, purpose: String, release: &str, revision: u64, timeout: &str) -> Result<(), ExecError>;
    /// The release's latest revision, version and status.
    fn metadata(&self, purpose: String, release: &str) -> Result<Metadata, ExecError>;
    /// Everything about the release (history included), after a failure.
    fn read(&self, release: &str) -> Result<Release, ReadError>;
    /// `helm status RELEASE`, as helm prints it, for the operator at a pause.
    fn status_text(&self, release: &str) -> Result<String, ExecError>;
    /// How many pods match a label selector in the release's namespace.
    fn count_pods(&self, purpose: String, selector: &str) -> Result<usize, ExecError>;
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

/// The real cluster: helm and kubectl.
pub struct Live<'a> {
    pub helm: &'a Helm,
    pub kubectl: &'a Kubectl,
    pub helm_major: u32,
}

impl Cluster for Live<'_> {
    fn upgrade(&self, purpose: String, release: &str, chart: &str, flags: Vec<String>) -> Result<Deployed, ExecError> {
        self.helm.upgrade(purpose, release, chart, flags)
    }

    fn rollback(&self, purpose: String, release: &str, revision: u64, timeout: &str) -> Result<(), ExecError> {
        self.helm.rollback(purpose, release, revision, timeout).map(|_| ())
    }

    fn metadata(&self, purpose: String, release: &str) -> Result<Metadata, ExecError> {
        self.helm.metadata(purpose, release)
    }

    fn read(&self, release: &str) -> Result<Release, ReadError> {
        Release::read(self.helm, release)
    }

    fn status_text(&self, release: &str) -> Result<String, ExecError> {
        self.helm.status_text(release)
    }

    fn count_pods(&self, purpose: String, selector: &str) -> Result<usize, ExecError> {
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<Value>,
        }
        let list: List = self.kubectl.json(
            purpose,
            vec!["get".into(), "pods".into(), "--selector".into(), selector.to_string(), "-o".into(), "json".into()],
            &[],
        )?;
        Ok(list.items.len())
    }

    fn explain_unready(&self, release: &str) -> Vec<String> {
        let Ok(manifest) = self.helm.manifest(release) else {
            return vec![];
        };
        let mut by_namespace: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for workload in unready::workloads(&manifest) {
            let namespace = workload.namespace.clone().unwrap_or_else(|| self.kubectl.namespace.clone());
            by_namespace.entry(namespace).or_default().push(workload.kubectl_ref());
        }
        let mut lines = vec![];
        for (namespace, refs) in by_namespace {
            let mut kubectl = self.kubectl.clone();
            kubectl.namespace = namespace;
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            for object in kubectl_objects(&kubectl, "read the release's workloads", vec![], &refs) {
                let Some(summary) = unready::not_ready(&object) else { continue };
                lines.push(summary);
                let Some(selector) = unready::pod_selector(&object) else { continue };
                let flags = vec!["pods".into(), "--selector".into(), selector];
                let pods = kubectl_objects(&kubectl, "list the workload's pods", flags, &[]);
                lines.extend(unready::pod_problems(&pods).into_iter().map(|p| format!("  {p}")));
            }
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

/// `kubectl get FLAGS -o json -- NAMES` as a list of objects: a List's items, or the one
/// object. Whatever kubectl printed counts even when it also failed (one of several names
/// not found still lists the others); anything else gives nothing.
fn kubectl_objects(kubectl: &Kubectl, purpose: &str, flags: Vec<String>, names: &[&str]) -> Vec<Value> {
    let mut args = vec!["get".to_string()];
    args.extend(flags);
    // A cluster that stopped answering must not hold up the report of a failure.
    args.extend(["-o".into(), "json".into(), "--request-timeout".into(), "10s".into()]);
    let stdout = match kubectl.run(purpose, args, names) {
        Ok(out) => out.stdout,
        Err(ExecError::Failed { stdout, .. }) => stdout,
        Err(_) => return vec![],
    };
    match serde_json::from_str::<Value>(&stdout) {
        Ok(Value::Object(mut list)) if list.get("kind").and_then(|k| k.as_str()) == Some("List") => {
            match list.remove("items") {
                Some(Value::Array(items)) => items,
                _ => vec![],
            }
        }
        Ok(object @ Value::Object(_)) => vec![object],
        _ => vec![],
    }
}
