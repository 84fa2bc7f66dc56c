//! The test bed for end-to-end tests: the real helm binaries (3.19.0 and 4.1.4) against
//! the project's Kubernetes API stand-in, charts served by the loopback chart repository,
//! and the plugin binary run as helm runs it (HELM_BIN, HELM_NAMESPACE, ...).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chart_standin::{ChartRepo, RepoOptions};
use kube_standin::fault::FaultProxy;
use kube_standin::testing::{HelmEnv, HelmVersion, kubectl_path};
use kube_standin::{Options, StandIn};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_helm-safe-upgrade");
pub const NS: &str = "bsr";

/// Values with nested maps, a list and a secret, to check they are carried exactly.
pub const VALUES: &str = "replicaCount: 2\npostgres:\n  host: db.prod.internal\n  password: s3cret-value\nextraEnv:\n  - name: LOG_FORMAT\n    value: json\nconfig:\n  features:\n    remotePlugins: true\n";

pub struct Bed {
    pub version: HelmVersion,
    pub standin: StandIn,
    pub env: HelmEnv,
    pub charts: tempfile::TempDir,
    pub repo: ChartRepo,
    pub state: tempfile::TempDir,
    /// A fault proxy between helm/kubectl (and the tool) and the stand-in, when the bed
    /// was made with [`Bed::behind_proxy`].
    pub proxy: Option<FaultProxy>,
}

impl Bed {
    pub fn new(version: HelmVersion) -> Bed {
        Bed::make(version, false)
    }

    /// A bed whose every API request (helm's, kubectl's, the tool's) goes through a
    /// loopback fault proxy, so a test can cut, pause or refuse the API mid-run.
    pub fn behind_proxy(version: HelmVersion) -> Bed {
        Bed::make(version, true)
    }

    pub fn proxy(&self) -> &FaultProxy {
        self.proxy.as_ref().expect("a bed made with Bed::behind_proxy")
    }

    fn make(version: HelmVersion, with_proxy: bool) -> Bed {
        // helm 3 polls readiness every 2 s, so its stand-in reconciles synchronously;
        // helm 4 watches, and gets a real delay.
        let ready_delay = if version.major() == 3 { Duration::ZERO } else { Duration::from_millis(100) };
        let standin = StandIn::start(Options { ready_delay, ..Options::default() }).expect("start the stand-in");
        let proxy = with_proxy.then(|| FaultProxy::start(standin.addr()).expect("start the fault proxy"));
        let env = match &proxy {
            Some(p) => HelmEnv::for_server(&p.url(), version),
            None => HelmEnv::new(&standin, version),
        };
        let charts = tempfile::tempdir().unwrap();
        chart_standin::fixtures::package_all(charts.path()).expect("package the fixture charts");
        let repo = ChartRepo::start(charts.path(), RepoOptions::default()).expect("start the chart repository");
        env.helm_ok(&["repo", "add", "demo", &repo.url()]);
        let state = tempfile::tempdir().unwrap();
        Bed { version, standin, env, charts, repo, state, proxy }
    }

    pub fn values_file(&self, yaml: &str) -> PathBuf {
        let path = self.env.dir().join("user-values.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `helm install bsr demo/bsr --version V -f VALUES`.
    pub fn install(&self, chart: &str, version: &str, values: &str) {
        self.install_from(&[], &format!("demo/{chart}"), &["--version", version], values);
    }

    /// The plugin binary as helm would start it.
    pub fn tool(&self) -> Command {
        let mut cmd = self.env.command(Path::new(BIN));
        // The policies' own commands call `kubectl` by name: the provisioned one first.
        let kubectl_dir = kubectl_path().parent().unwrap().to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(kubectl_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        cmd.env("PATH", path)
            .env("HELM_BIN", self.env.helm_bin())
            .env("KUBECTL", kubectl_path())
            .env("XDG_STATE_HOME", self.state.path())
            .env("HELM_NAMESPACE", NS)
            .env_remove("HELM_PLUGIN_NAME")
            .env_remove("CI")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.tool().args(args).output().expect("run helm-safe-upgrade")
    }

    /// Run and check the exit code; returns (stdout, stderr).
    pub fn run_expect(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: helm-safe-upgrade {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.version
        );
        (stdout, stderr)
    }

    /// (revision, status, chart) of every revision.
    pub fn history(&self) -> Vec<(u64, String, String)> {
        let out = self.env.helm_ok(&["history", "bsr", "--namespace", NS, "-o", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["revision"].as_u64().unwrap(),
                    h["status"].as_str().unwrap().to_string(),
                    h["chart"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn charts_deployed(&self) -> Vec<String> {
        self.history().into_iter().map(|(_, _, c)| c).collect()
    }

    pub fn user_values(&self) -> Value {
        let out = self.env.helm_ok(&["get", "values", "bsr", "--namespace", NS, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn metadata(&self) -> Value {
        serde_json::from_str(&self.env.helm_ok(&["get", "metadata", "bsr", "--namespace", NS, "-o", "json"])).unwrap()
    }

    /// The stored server Deployment of the BSR-like chart.
    pub fn server(&self) -> Value {
        self.standin.get("apps/v1", "deployments", Some(NS), "bsr-server").expect("the server Deployment exists")
    }

    pub fn server_version_label(&self) -> String {
        self.server()["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

pub fn yaml_to_json(yaml: &str) -> Value {
    serde_saphyr::from_str::<Value>(yaml).unwrap()
}

/// Run a scenario once per helm version under test, naming the version on failure.
#[macro_export]
macro_rules! both_helms {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn helm_3_19_0() {
                $body(kube_standin::testing::HelmVersion::V3_19_0)
            }
            #[test]
            fn helm_4_1_4() {
                $body(kube_standin::testing::HelmVersion::V4_1_4)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Helpers for tests/e2e_sources.rs (other chart sources, the lock, extra values).

/// The bed's BSR policy (the preset with the fixture chart's catalog and a down-migration
/// the stand-in can observe), as an absolute path.
pub fn bed_policy() -> String {
    format!("{}/bed/policies/bsr-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

impl Bed {
    /// helm with this bed's environment plus `envs` (e.g. `HELM_REGISTRY_CONFIG`), and
    /// optionally some stdin; returns the raw output.
    pub fn helm_with(&self, envs: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = self.env.command(self.env.helm_bin());
        cmd.envs(envs.iter().copied()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("spawn helm");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("wait for helm")
    }

    /// [`Bed::helm_with`] that must succeed; returns stdout.
    pub fn helm_with_ok(&self, envs: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> String {
        let out = self.helm_with(envs, args, stdin);
        assert!(
            out.status.success(),
            "{}: helm {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.version,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `helm install bsr CHART [extra...] -f VALUES --wait` for a chart that is not in
    /// the `demo` repository (a packaged file, an `oci://` reference).
    pub fn install_from(&self, envs: &[(&str, &str)], chart: &str, extra: &[&str], values: &str) {
        let file = self.values_file(values);
        let mut args = vec!["install", "bsr", chart];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "--namespace",
            NS,
            "--create-namespace",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60s",
        ]);
        self.helm_with_ok(envs, &args, None);
    }

    /// Run the tool with extra environment variables and check the exit code.
    pub fn run_env_expect(&self, envs: &[(&str, &str)], args: &[&str], code: i32) -> (String, String) {
        let out = self.tool().envs(envs.iter().copied()).args(args).output().expect("run helm-safe-upgrade");
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: helm-safe-upgrade {args:?} (env {envs:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.version
        );
        (stdout, stderr)
    }

    /// A kubectl for the library's [`helm_safe_upgrade::helm::Kubectl`], which passes no
    /// environment of its own: a wrapper script that adds this bed's `--kubeconfig`.
    pub fn kubectl_wrapper(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.env.dir().join("kubectl-bed");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec '{}' --kubeconfig '{}' \"$@\"\n",
                kubectl_path().display(),
                self.env.kubeconfig().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The ledger ConfigMap's record, as JSON.
    pub fn ledger_record(&self) -> Option<Value> {
        let cm = self.standin.get("v1", "configmaps", Some(NS), "helm-safe-upgrade.bsr")?;
        Some(serde_json::from_str(cm["data"]["ledger"].as_str().expect("data.ledger")).expect("the ledger is JSON"))
    }

    /// The stored pods in the release's namespace carrying `app.kubernetes.io/version=V`.
    pub fn pods_of_version(&self, version: &str) -> Vec<Value> {
        self.standin
            .list("v1", "pods", Some(NS))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/version"] == version)
            .collect()
    }

    /// `helm get values bsr --revision N -o json`.
    pub fn user_values_at(&self, revision: u64) -> Value {
        let out = self.env.helm_ok(&[
            "get",
            "values",
            "bsr",
            "--namespace",
            NS,
            "--revision",
            &revision.to_string(),
            "-o",
            "json",
        ]);
        serde_json::from_str(&out).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Helpers for tests/e2e_faults.rs (the fault suite).

impl Bed {
    /// The tool started in the background with stdout and stderr captured.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.tool().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn helm-safe-upgrade")
    }

    /// Poll helm's history until `ready` holds (or fail after 60 s).
    pub fn wait_history(&self, what: &str, ready: impl Fn(&[(u64, String, String)]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let history = self.history();
            if ready(&history) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}; history {history:?}",
                self.version
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Poll the ledger record until `ready` holds (or fail after 60 s).
    pub fn wait_ledger(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(record) = self.ledger_record()
                && ready(&record)
            {
                return record;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}; ledger {:?}",
                self.version,
                self.ledger_record()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kubectl against this bed, with optional stdin; returns the raw output.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_path());
        cmd.arg("--kubeconfig").arg(self.env.kubeconfig()).args(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("wait for kubectl")
    }

    /// Change the ledger ConfigMap as someone with write access to the namespace could.
    pub fn edit_ledger(&self, edit: impl FnOnce(&mut Value)) {
        let out = self.kubectl(&["get", "configmap", "helm-safe-upgrade.bsr", "-n", NS, "-o", "json"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut cm: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut record: Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
        edit(&mut record);
        cm["data"]["ledger"] = Value::String(serde_json::to_string_pretty(&record).unwrap());
        let out = self.kubectl(&["replace", "-n", NS, "-f", "-"], Some(&cm.to_string()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// A copy of the bed's BSR policy whose `rolling` procedure has `steps` (YAML list
    /// items, indented for the procedure), e.g. a `run` step that sleeps, to hold a run
    /// at a known point.
    pub fn policy_with_rolling_steps(&self, steps: &str) -> PathBuf {
        let text = std::fs::read_to_string(bed_policy()).unwrap();
        let old = "  rolling:\n    downtime: false\n    steps:\n      - deploy: {}\n      - verify: {}\n";
        assert!(text.contains(old), "the bed policy's rolling procedure changed");
        let new = format!("  rolling:\n    downtime: false\n    steps:\n{steps}");
        let path = self.env.dir().join("policy-with-steps.yaml");
        std::fs::write(&path, text.replace(old, &new)).unwrap();
        path
    }
}

/// Send `sig` to a child.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// A child's exit code and its output as text.
pub fn finish(child: std::process::Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
