//! Shared pieces of the scenario suites: a stand-in plus an isolated helm home for one
//! helm version (optionally behind a fault proxy), kubectl with its own home, the test
//! charts, and readers for the stand-in's state.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kube_standin::fault::FaultProxy;
use kube_standin::testing::{HelmEnv, HelmVersion, kubectl_path};
use kube_standin::{Options, StandIn};
use serde_json::Value;

/// Runs a scenario once per tested helm version, as separate tests named after it.
macro_rules! for_each_helm {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn helm_v3_19_0() {
                super::$scenario(kube_standin::testing::HelmVersion::V3_19_0);
            }
            #[test]
            fn helm_v4_1_4() {
                super::$scenario(kube_standin::testing::HelmVersion::V4_1_4);
            }
        }
    };
}

/// A stand-in and a helm environment pointed at it.
pub struct Bed {
    pub standin: StandIn,
    pub env: HelmEnv,
}

impl Bed {
    /// helm 3 polls every 2 s, so its beds run the controller inside the write request
    /// (delay 0); helm 4 reacts to watch events, so its beds use a real delay.
    pub fn new(version: HelmVersion) -> Self {
        Bed::with_delay(version, Bed::ready_delay(version))
    }

    fn ready_delay(version: HelmVersion) -> Duration {
        Duration::from_millis(if version.major() == 3 { 0 } else { 300 })
    }

    pub fn with_delay(version: HelmVersion, ready_delay: Duration) -> Self {
        let standin = StandIn::start(Options { ready_delay, ..Options::default() }).expect("start the stand-in");
        let env = HelmEnv::new(&standin, version);
        Bed { standin, env }
    }

    /// A bed whose helm talks to the stand-in through a fault proxy (passing for now).
    pub fn behind_proxy(version: HelmVersion) -> (Self, FaultProxy) {
        let ready_delay = Bed::ready_delay(version);
        let standin = StandIn::start(Options { ready_delay, ..Options::default() }).expect("start the stand-in");
        let proxy = FaultProxy::start(standin.addr()).expect("start the fault proxy");
        let env = HelmEnv::for_server(&proxy.url(), version);
        (Bed { standin, env }, proxy)
    }

    pub fn helm_ok(&self, args: &[&str]) -> String {
        self.env.helm_ok(args)
    }

    /// Runs helm expecting failure; returns stderr.
    pub fn helm_err(&self, args: &[&str]) -> String {
        let out = self.env.helm(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{} {args:?} succeeded but should have failed:\n{}",
            self.env.version,
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// `helm history -o json`, as (revision, status, description).
    pub fn history(&self, release: &str) -> Vec<(i64, String, String)> {
        let out: Value =
            serde_json::from_str(&self.helm_ok(&["history", release, "-o", "json"])).expect("history JSON");
        out.as_array()
            .expect("history is a list")
            .iter()
            .map(|r| {
                (
                    r["revision"].as_i64().unwrap(),
                    r["status"].as_str().unwrap().to_string(),
                    r["description"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Statuses of the revisions, oldest first.
    pub fn statuses(&self, release: &str) -> Vec<String> {
        self.history(release).into_iter().map(|(_, s, _)| s).collect()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.helm_ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
    }

    pub fn get(&self, api_version: &str, plural: &str, name: &str) -> Option<Value> {
        self.standin.get(api_version, plural, Some("default"), name)
    }

    pub fn must(&self, api_version: &str, plural: &str, name: &str) -> Value {
        self.get(api_version, plural, name)
            .unwrap_or_else(|| panic!("{}: {plural}/{name} is not in the stand-in", self.env.version))
    }

    pub fn configmap_data(&self, name: &str) -> Value {
        self.must("v1", "configmaps", name)["data"].clone()
    }

    /// The first container of a Deployment's template.
    pub fn container(&self, deployment: &str) -> Value {
        self.must("apps/v1", "deployments", deployment)["spec"]["template"]["spec"]["containers"][0].clone()
    }

    pub fn env_names(&self, deployment: &str) -> Vec<String> {
        self.container(deployment)["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn service_ports(&self, name: &str) -> Vec<i64> {
        self.must("v1", "services", name)["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    }

    /// Pods whose labels include `key=value`.
    pub fn pods_labelled(&self, key: &str, value: &str) -> Vec<Value> {
        self.standin
            .list("v1", "pods", Some("default"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"][key] == value)
            .collect()
    }

    /// Release records helm keeps in Secrets.
    pub fn release_secrets(&self, release: &str) -> Vec<String> {
        self.standin
            .list("v1", "secrets", Some("default"))
            .into_iter()
            .filter(|s| s["metadata"]["labels"]["name"] == release && s["metadata"]["labels"]["owner"] == "helm")
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A test chart directory, as a string argument for helm.
pub fn chart(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "charts", name].iter().collect();
    assert!(p.is_dir(), "missing test chart {}", p.display());
    p.to_string_lossy().into_owned()
}

/// The condition of `type` in an object's status.
pub fn condition(obj: &Value, ty: &str) -> Option<Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == ty).cloned()
}

/// kubectl (the provisioned v1.34) with a home of its own (so its discovery cache starts
/// empty) and a kubeconfig for the API at a URL.
pub struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    pub fn at(url: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("kubectl-").tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), kube_standin::kubeconfig(url)).unwrap();
        Kubectl { dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_path());
        cmd.env("KUBECONFIG", self.dir.path().join("kubeconfig")).env("HOME", self.dir.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn kubectl")
    }

    /// Runs kubectl with `input` on its stdin (`create -f -`, `replace -f -`).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Starts kubectl in the background, its output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    pub fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        succeeded(args, self.run_with_input(args, input))
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        failed(args, self.run(args))
    }

    pub fn fails_with_input(&self, args: &[&str], input: &str) -> String {
        failed(args, self.run_with_input(args, input))
    }
}

fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(args: &[&str], out: Output) -> String {
    assert!(!out.status.success(), "kubectl {args:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A ConfigMap manifest.
pub fn configmap(namespace: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  value: {value:?}\n"
    )
}

/// A Namespace manifest (kubectl's `create namespace` sends protobuf, which the
/// stand-in does not read for namespaces; `create -f` sends JSON).
pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}
