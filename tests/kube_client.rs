//! The API client (`helm_safe_upgrade::kube`) against the Kubernetes API stand-in (the
//! ledger's store over it is in tests/ledger.rs): access reviews, pods and workloads, a release's revisions
//! after real helm commands, how helm's `HELM_KUBE*` variables choose the cluster, exec
//! credential plugins, and deadlines through the fault proxy.
//!
//! Every client is configured from an explicit [`Environment`], never from the process's,
//! so these tests run in parallel without touching global state.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helm_safe_upgrade::kube::{Environment, KubeClient, KubeError};
use helm_safe_upgrade::run::ledger::{ConfigMapStore, Ledger, LedgerError, LedgerStore, configmap_name};
use helm_safe_upgrade::version::ChartVersion;
use kube_standin::fault::FaultProxy;
use kube_standin::testing::{HelmEnv, HelmVersion, kubectl_path};
use kube_standin::{DenyRule, Options, StandIn, Verb};

struct Bed {
    standin: StandIn,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let standin = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        standin.write_kubeconfig(&kubeconfig).unwrap();
        let bed = Bed { standin, dir, kubeconfig };
        bed.kubectl_create(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bsr"}}));
        bed
    }

    /// The environment helm gives a plugin for this stand-in: KUBECONFIG, the rest unset.
    fn env(&self) -> Environment {
        Environment::from_pairs([
            ("KUBECONFIG", self.kubeconfig.to_string_lossy().into_owned()),
            ("HOME", self.dir.path().to_string_lossy().into_owned()),
        ])
    }

    fn client(&self) -> KubeClient {
        KubeClient::connect(&self.env(), None, "bsr").unwrap()
    }

    /// `kubectl create -f -` of `object` in namespace bsr, as someone else would.
    fn kubectl_create(&self, object: &serde_json::Value) {
        use std::io::Write;
        let mut child = std::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", "bsr", "create", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(object.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl create: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

#[test]
fn can_i_answers_from_the_servers_rules() {
    let bed = Bed::new();
    let client = bed.client();
    assert_eq!(client.can_i("create", "configmaps", Some("bsr")), Some(true));
    bed.standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    assert_eq!(client.can_i("create", "configmaps", Some("bsr")), Some(false));
    assert_eq!(client.can_i("get", "configmaps", Some("bsr")), Some(true), "only create is denied");
    assert_eq!(client.can_i("create", "configmaps", Some("other")), Some(true), "only in bsr");
    bed.standin.deny(DenyRule::new(&[Verb::Update], "deployments").in_group("apps"));
    assert_eq!(client.can_i("update", "deployments.apps", Some("bsr")), Some(false));
    assert_eq!(client.can_i("update", "deployments.apps/scale", Some("bsr")), Some(true), "a subresource is its own");

    // A server that cannot answer: None, within the deadline.
    let proxy = FaultProxy::start(bed.standin.addr()).unwrap();
    let through = proxied_client(&bed, &proxy).with_timeout(Duration::from_millis(500));
    proxy.blackhole_for(Duration::from_secs(3));
    assert_eq!(through.can_i("create", "configmaps", Some("bsr")), None);
}

fn deployment(name: &str, replicas: u32, image: &str) -> serde_json::Value {
    let labels = serde_json::json!({"app": name});
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bsr"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]}}}})
}

#[test]
fn pods_by_selector_and_workloads_by_name() {
    let bed = Bed::new();
    bed.kubectl_create(&deployment("web", 2, "nginx:1.25"));
    bed.kubectl_create(&deployment("api", 1, "api:broken"));
    let client = bed.client();

    let web = client.list_pods("bsr", "app=web").unwrap();
    assert_eq!(web.len(), 2, "{web:?}");
    assert!(web.iter().all(|p| p["metadata"]["labels"]["app"] == "web" && p["kind"].is_null() || p["kind"] == "Pod"));
    assert!(client.list_pods("bsr", "app=nothing").unwrap().is_empty());
    assert!(client.list_pods("other", "app=web").unwrap().is_empty(), "another namespace");

    let object = client.get_workload("Deployment", "bsr", "web").unwrap().expect("the Deployment exists");
    assert_eq!(object["metadata"]["name"], "web");
    assert_eq!(helm_safe_upgrade::run::unready::not_ready(&object), None, "web is ready");

    let api = client.get_workload("Deployment", "bsr", "api").unwrap().unwrap();
    let summary = helm_safe_upgrade::run::unready::not_ready(&api).expect("api is not ready");
    assert!(summary.contains("api"), "{summary}");
    let selector = helm_safe_upgrade::run::unready::pod_selector(&api).unwrap();
    let pods = client.list_pods("bsr", &selector).unwrap();
    assert!(!pods.is_empty());
    assert!(!helm_safe_upgrade::run::unready::pod_problems(&pods).is_empty(), "the broken pods say why");

    assert!(client.get_workload("Deployment", "bsr", "missing").unwrap().is_none());
    assert!(client.get_workload("StatefulSet", "bsr", "web").unwrap().is_none(), "another kind");
    let err = client.get_workload("CronJob", "bsr", "web").unwrap_err();
    assert!(matches!(err, KubeError::Unsupported { .. }), "{err}");
}

fn chart(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("crates/kube-standin/tests/charts/demo-{version}"))
}

/// Real helm with `HELM_DRIVER=driver`; its stdout, once it succeeded.
fn helm_with_driver(helm: &HelmEnv, driver: &str, args: &[&str]) -> String {
    let out = helm.command(helm.helm_bin()).env("HELM_DRIVER", driver).args(args).output().unwrap();
    assert!(out.status.success(), "{:?} {args:?}: {}", helm.helm_bin(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn release_revisions_after_helm_install_and_upgrade() {
    for helm_version in HelmVersion::TESTED {
        for driver in ["secret", "configmap"] {
            let bed = Bed::new();
            let helm = HelmEnv::new(&bed.standin, helm_version);
            let with_driver = |args: &[&str]| helm_with_driver(&helm, driver, args);
            with_driver(&["install", "demo", chart("v1").to_str().unwrap(), "-n", "bsr"]);
            with_driver(&["upgrade", "demo", chart("v2").to_str().unwrap(), "-n", "bsr"]);

            let mut env = bed.env();
            env.set("HELM_DRIVER", driver);
            let client = KubeClient::connect(&env, None, "bsr").unwrap();
            assert_eq!(
                client.release_revisions("demo").unwrap(),
                vec![(1, "superseded".to_string()), (2, "deployed".to_string())],
                "{helm_version}, HELM_DRIVER={driver}"
            );
            assert!(client.release_revisions("other").unwrap().is_empty());
            assert!(client.in_namespace("default").release_revisions("demo").unwrap().is_empty());
        }
    }
}

/// The cluster's capabilities read through the API client (what the preflight tells
/// `helm template`) are what helm itself reads when it renders against the cluster: a
/// chart printing `.Capabilities`, rendered by real helm asked to read the cluster
/// (`--validate` on helm 3, `--dry-run=server` on 4), is the oracle.
#[test]
fn the_capabilities_read_are_helms_own() {
    let bed = Bed::new();
    let chart = bed.dir.path().join("capabilities");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: capabilities\nversion: 0.1.0\n").unwrap();
    let template = "# kube: {{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.KubeVersion.Major }} {{ .Capabilities.KubeVersion.Minor }}\n# apis: {{ toJson .Capabilities.APIVersions }}\n";
    std::fs::write(chart.join("templates/caps.yaml"), template).unwrap();
    let (kube_version, api_versions) = bed.client().capabilities().unwrap();
    assert!(kube_version.git_version.starts_with("v1."), "{kube_version:?}");
    assert!(api_versions.iter().any(|a| a == "apps/v1/Deployment"), "{api_versions:?}");
    for helm_version in HelmVersion::TESTED {
        let helm = HelmEnv::new(&bed.standin, helm_version);
        let cluster = if helm_version.major() == 3 { "--validate" } else { "--dry-run=server" };
        let printed = helm.helm_ok(&["template", "caps", chart.to_str().unwrap(), cluster, "-n", "bsr"]);
        let line = |prefix: &str| printed.lines().find_map(|l| l.strip_prefix(prefix)).expect(prefix).to_string();
        let kube = format!("{} {} {}", kube_version.git_version, kube_version.major, kube_version.minor);
        assert_eq!(line("# kube: "), kube, "{helm_version}");
        let mut helms: Vec<String> = serde_json::from_str(&line("# apis: ")).unwrap();
        helms.sort();
        helms.dedup();
        assert_eq!(helms, api_versions, "{helm_version}");
    }
}

/// The release read through the API client from helm's storage is the release helm
/// itself prints: `helm get metadata`, `helm history` and `helm status` are the oracle.
#[test]
fn a_release_read_from_helms_storage_is_what_helm_prints() {
    use helm_safe_upgrade::release::Release;
    for helm_version in HelmVersion::TESTED {
        for driver in ["secret", "configmap"] {
            let bed = Bed::new();
            let helm = HelmEnv::new(&bed.standin, helm_version);
            let with_driver = |args: &[&str]| helm_with_driver(&helm, driver, args);
            let json = |args: &[&str]| -> serde_json::Value {
                let mut all = args.to_vec();
                all.extend(["-n", "bsr", "-o", "json"]);
                serde_json::from_str(&with_driver(&all)).unwrap()
            };
            with_driver(&["install", "demo", chart("v1").to_str().unwrap(), "-n", "bsr", "--set", "a=1"]);
            with_driver(&[
                "upgrade",
                "demo",
                chart("v2").to_str().unwrap(),
                "-n",
                "bsr",
                "--set",
                "b.c=two",
                "--set-string",
                "d=3",
            ]);
            with_driver(&["rollback", "demo", "1", "-n", "bsr"]);
            with_driver(&[
                "upgrade",
                "demo",
                chart("v2").to_str().unwrap(),
                "-n",
                "bsr",
                "--reuse-values",
                "--set",
                "e=true",
            ]);

            let mut env = bed.env();
            env.set("HELM_DRIVER", driver);
            let client = KubeClient::connect(&env, None, "bsr").unwrap();
            let release = Release::read_stored(&client, "demo").expect("readable").unwrap();
            let what = format!("{helm_version}, HELM_DRIVER={driver}");
            let metadata = json(&["get", "metadata", "demo"]);
            assert_eq!(release.name, metadata["name"].as_str().unwrap(), "{what}");
            assert_eq!(release.chart_name, metadata["chart"].as_str().unwrap(), "{what}");
            assert_eq!(release.version.to_string(), metadata["version"].as_str().unwrap(), "{what}");
            assert_eq!(release.app_version.as_deref(), metadata["appVersion"].as_str(), "{what}");
            assert_eq!(release.namespace, metadata["namespace"].as_str().unwrap(), "{what}");
            assert_eq!(release.revision, metadata["revision"].as_u64().unwrap(), "{what}");
            assert_eq!(release.status.as_str(), metadata["status"].as_str().unwrap(), "{what}");
            let status = json(&["status", "demo"]);
            assert_eq!(release.user_values, status["config"], "{what}");
            // The rollback brought revision 1's values back, and the last upgrade reused them.
            assert_eq!(release.user_values, serde_json::json!({"a": 1, "e": true}), "{what}");
            assert_eq!(release.manifest, status["manifest"].as_str().unwrap(), "{what}");
            assert_eq!(release.description, status["info"]["description"].as_str().unwrap(), "{what}");
            let history = json(&["history", "demo"]);
            let history = history.as_array().unwrap();
            assert_eq!(release.history.len(), history.len(), "{what}");
            for (ours, helms) in release.history.iter().zip(history) {
                assert_eq!(ours.revision, helms["revision"].as_u64().unwrap(), "{what}");
                assert_eq!(ours.status.as_str(), helms["status"].as_str().unwrap(), "{what}");
                assert_eq!(ours.description, helms["description"].as_str().unwrap(), "{what}");
                let chart = format!("demo-{}", ours.version.as_ref().unwrap());
                assert_eq!(chart, helms["chart"].as_str().unwrap(), "{what}");
            }
            assert_eq!(release.history[2].description, "Rollback to 1", "{what}");

            let missing = Release::read_stored(&client, "other").expect("readable").unwrap_err();
            assert!(missing.to_string().contains("release \"other\" not found"), "{what}: {missing}");
            env.set("HELM_DRIVER", "sql");
            let sql = KubeClient::connect(&env, None, "bsr").unwrap();
            assert!(Release::read_stored(&sql, "demo").is_none(), "{what}: sql is helm's to read");
        }
    }
}

#[test]
fn release_revisions_leave_sql_and_memory_to_helm() {
    let bed = Bed::new();
    for driver in ["sql", "memory"] {
        let mut env = bed.env();
        env.set("HELM_DRIVER", driver);
        let err = KubeClient::connect(&env, None, "bsr").unwrap().release_revisions("demo").unwrap_err();
        assert!(matches!(err, KubeError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains(driver), "{err}");
    }
}

/// A kubeconfig with two contexts: `first` (current) on `a`, `second` on `b`.
fn two_context_kubeconfig(path: &Path, a: &str, b: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: a
  cluster:
    server: {a}
- name: b
  cluster:
    server: {b}
users:
- name: u
  user:
    token: t
contexts:
- name: first
  context: {{cluster: a, user: u}}
- name: second
  context: {{cluster: b, user: u}}
current-context: first
"
        ),
    )
    .unwrap();
}

/// Writes a ledger through `client` and says which stand-in got it.
fn lands_on(client: &KubeClient, a: &StandIn, b: &StandIn) -> &'static str {
    static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let release = format!("probe{}", PROBES.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    ConfigMapStore::new(client.clone(), &release).write(&Ledger::new(&release, "default"), None).unwrap();
    let on = |s: &StandIn| s.get("v1", "configmaps", Some("default"), &configmap_name(&release)).is_some();
    match (on(a), on(b)) {
        (true, false) => "a",
        (false, true) => "b",
        other => panic!("landed on {other:?}"),
    }
}

#[test]
fn helm_kubecontext_and_an_explicit_context_pick_the_cluster() {
    let (a, b) = (StandIn::start(Options::default()).unwrap(), StandIn::start(Options::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    two_context_kubeconfig(&kubeconfig, &a.url(), &b.url());
    let env = |context: &str| {
        Environment::from_pairs([
            ("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()),
            ("HELM_KUBECONTEXT", context.to_string()),
        ])
    };
    let connect =
        |context: &str, explicit: Option<&str>| KubeClient::connect(&env(context), explicit, "default").unwrap();
    assert_eq!(lands_on(&connect("", None), &a, &b), "a", "empty HELM_KUBECONTEXT: the current context");
    assert_eq!(lands_on(&connect("second", None), &a, &b), "b");
    assert_eq!(lands_on(&connect("second", Some("first")), &a, &b), "a", "an explicit context wins");

    let err = KubeClient::connect(&env("third"), None, "default").unwrap_err();
    assert!(matches!(err, KubeError::Config { .. }), "{err}");
    assert!(err.to_string().contains("third"), "{err}");
}

#[test]
fn helm_kubeapiserver_wins_over_the_kubeconfigs_server() {
    let (a, b) = (StandIn::start(Options::default()).unwrap(), StandIn::start(Options::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    a.write_kubeconfig(&kubeconfig).unwrap();
    let mut env = Environment::from_pairs([("KUBECONFIG", kubeconfig.to_string_lossy().into_owned())]);
    env.set("HELM_KUBEAPISERVER", &b.url());
    let client = KubeClient::connect(&env, None, "default").unwrap();
    assert_eq!(client.server(), b.url());
    assert_eq!(lands_on(&client, &a, &b), "b");

    // Without any kubeconfig, the server flag alone is enough, as for helm.
    let alone = Environment::from_pairs([
        ("KUBECONFIG", dir.path().join("missing").to_string_lossy().into_owned()),
        ("HELM_KUBEAPISERVER", b.url()),
        ("HELM_KUBETOKEN", "t".into()),
    ]);
    assert_eq!(lands_on(&KubeClient::connect(&alone, None, "default").unwrap(), &a, &b), "b");
}

#[test]
fn kubeconfig_lists_merge_first_wins_and_missing_files_are_skipped() {
    let (a, b) = (StandIn::start(Options::default()).unwrap(), StandIn::start(Options::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // Both name their context `standin`; the first file's wins, as for kubectl.
    a.write_kubeconfig(&first).unwrap();
    b.write_kubeconfig(&second).unwrap();
    let list = |paths: &[&Path]| {
        let joined = std::env::join_paths(paths).unwrap().to_string_lossy().into_owned();
        Environment::from_pairs([("KUBECONFIG", joined)])
    };
    let missing = dir.path().join("missing");
    let client = KubeClient::connect(&list(&[&missing, &first, &second]), None, "default").unwrap();
    assert_eq!(lands_on(&client, &a, &b), "a");
    let client = KubeClient::connect(&list(&[&second, &first]), None, "default").unwrap();
    assert_eq!(lands_on(&client, &a, &b), "b");

    let err = KubeClient::connect(&list(&[&missing]), None, "default").unwrap_err();
    assert!(matches!(err, KubeError::Config { .. }), "nothing to connect to: {err}");
}

/// A kubeconfig for `server` whose user gets its token from an exec plugin that counts
/// its runs in `runs`.
fn exec_plugin_kubeconfig(dir: &Path, server: &str) -> (PathBuf, PathBuf) {
    let runs = dir.join("plugin-runs");
    let plugin = dir.join("credential-plugin");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"from-plugin\"}}}}'\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: {server}}}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {}
      interactiveMode: Never
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
",
            plugin.display()
        ),
    )
    .unwrap();
    (kubeconfig, runs)
}

#[test]
fn exec_credential_plugins_run_once_and_a_token_flag_replaces_them() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, runs) = exec_plugin_kubeconfig(dir.path(), &bed.standin.url());
    let env = Environment::from_pairs([("KUBECONFIG", kubeconfig.to_string_lossy().into_owned())]);
    let count = || std::fs::read_to_string(&runs).map(|t| t.lines().count()).unwrap_or(0);
    let store = ConfigMapStore::new(KubeClient::connect(&env, None, "bsr").unwrap(), "registry");
    // kube 5 runs the plugin while building the client: once for the token, and twice
    // more to see whether it hands out a client certificate instead.
    let at_connect = count();
    assert!((1..=3).contains(&at_connect), "the plugin ran {at_connect} times at connect");
    let rev = store.write(&Ledger::new("registry", "bsr"), None).unwrap();
    store.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap();
    store.load().unwrap().unwrap();
    assert_eq!(count(), at_connect, "requests reuse the credential: the plugin does not run again");

    let mut with_token = env.clone();
    with_token.set("HELM_KUBETOKEN", "given");
    ConfigMapStore::new(KubeClient::connect(&with_token, None, "bsr").unwrap(), "registry").load().unwrap().unwrap();
    assert_eq!(count(), at_connect, "with --kube-token helm runs no plugin, and neither does the client");
}

fn proxied_client(bed: &Bed, proxy: &FaultProxy) -> KubeClient {
    let kubeconfig = bed.dir.path().join("through-proxy");
    proxy.write_kubeconfig(&kubeconfig).unwrap();
    let env = Environment::from_pairs([("KUBECONFIG", kubeconfig.to_string_lossy().into_owned())]);
    KubeClient::connect(&env, None, "bsr").unwrap()
}

#[test]
fn a_blackholed_api_fails_within_the_deadline() {
    let bed = Bed::new();
    let proxy = FaultProxy::start(bed.standin.addr()).unwrap();
    let client = proxied_client(&bed, &proxy);
    assert_eq!(client.timeout(), Duration::from_secs(10), "the bookkeeping default");
    let store = ConfigMapStore::new(client.with_timeout(Duration::from_secs(1)), "registry");
    let rev = store.write(&Ledger::new("registry", "bsr"), None).unwrap();

    proxy.blackhole_for(Duration::from_secs(6));
    let started = Instant::now();
    let err = store.load().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, LedgerError::Kube(KubeError::Timeout { .. })), "{err}");
    assert!(err.to_string().starts_with("read the ledger of registry: no answer from http://127.0.0.1:"), "{err}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "gave up after {took:?}");

    let started = Instant::now();
    let err = store.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap_err();
    assert!(matches!(err, LedgerError::Kube(KubeError::Timeout { .. })), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // Once the API answers again, the same client works.
    proxy.pass();
    std::thread::sleep(Duration::from_millis(100));
    store.load().unwrap().unwrap();
}

#[test]
fn an_unreachable_server_says_which() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let env = Environment::from_pairs([("HELM_KUBEAPISERVER", format!("http://{addr}"))]);
    let err = ConfigMapStore::new(KubeClient::connect(&env, None, "bsr").unwrap(), "registry").load().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LedgerError::Kube(KubeError::Transport { .. })), "{text}");
    assert!(text.contains(&format!("cannot reach http://{addr}")), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

/// A one-answer API server: every request gets `404 NotFound` (so a ledger read finds no
/// record), and each request head is kept, to check what the client sent. Over TLS with
/// the test certificate (`tests/fixtures/tls`: `api.standin.test`, signed by `ca.pem`), or
/// plain. Serves until the test process ends.
struct Recorder {
    addr: std::net::SocketAddr,
    heads: Arc<std::sync::Mutex<Vec<String>>>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

impl Recorder {
    fn start(tls: bool) -> Recorder {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let config = tls.then(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let chain = vec![CertificateDer::from_pem_file(fixture("server.pem")).unwrap()];
            let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .unwrap(),
            )
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, config) = (kept.clone(), config.clone());
                std::thread::spawn(move || match config {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        Recorder::serve(rustls::StreamOwned::new(conn, stream), &kept)
                    }
                    None => Recorder::serve(stream, &kept),
                });
            }
        });
        Recorder { addr, heads }
    }

    fn serve(mut io: impl std::io::Read + std::io::Write, heads: &std::sync::Mutex<Vec<String>>) {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not found","reason":"NotFound","code":404}"#;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        // GETs only: a request is its head, and a connection carries requests one by one.
        while io.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
            if head.ends_with(b"\r\n\r\n") {
                heads.lock().unwrap().push(String::from_utf8_lossy(&head).to_lowercase());
                head.clear();
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if io.write_all(answer.as_bytes()).and_then(|_| io.flush()).is_err() {
                    return;
                }
            }
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

#[test]
fn helms_identity_flags_reach_the_server() {
    let server = Recorder::start(false);
    let env = Environment::from_pairs([
        ("HELM_KUBEAPISERVER", format!("http://{}", server.addr)),
        ("HELM_KUBETOKEN", "t0ken".to_string()),
        ("HELM_KUBEASUSER", "ana".to_string()),
        // helm exports the groups doubled
        ("HELM_KUBEASGROUPS", "ops,dev,ops,dev".to_string()),
    ]);
    let store = ConfigMapStore::new(KubeClient::connect(&env, None, "bsr").unwrap(), "registry");
    assert!(store.load().unwrap().is_none());
    let heads = server.heads();
    let head = &heads[0];
    assert!(head.starts_with("get /api/v1/namespaces/bsr/configmaps/helm-safe-upgrade.registry "), "{head}");
    assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
    assert!(head.contains("user-agent: helm-safe-upgrade/"), "{head}");
    assert!(head.contains("impersonate-user: ana\r\n"), "{head}");
    assert_eq!(head.matches("impersonate-group: ops\r\n").count(), 1, "{head}");
    assert_eq!(head.matches("impersonate-group: dev\r\n").count(), 1, "{head}");
}

#[test]
fn release_revisions_ask_for_metadata_only() {
    let server = Recorder::start(false);
    let env = Environment::from_pairs([("HELM_KUBEAPISERVER", format!("http://{}", server.addr))]);
    let err = KubeClient::connect(&env, None, "bsr").unwrap().release_revisions("demo").unwrap_err();
    assert_eq!(err.status_code(), Some(404), "{err}");
    let heads = server.heads();
    let head = &heads[0];
    assert!(head.starts_with("get /api/v1/namespaces/bsr/secrets?"), "{head}");
    assert!(head.lines().next().unwrap().contains("labelselector=owner%3dhelm%2cname%3ddemo"), "{head}");
    assert!(head.contains("accept: application/json;as=partialobjectmetadatalist;g=meta.k8s.io;v=v1\r\n"), "{head}");
}

/// A kubeconfig for `server` that trusts `ca` (a fixture) and names `tls_server_name`.
fn tls_kubeconfig(path: &Path, server: &str, ca: &str, tls_server_name: Option<&str>) {
    use base64::Engine;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(std::fs::read(fixture(ca)).unwrap());
    let name = tls_server_name.map(|n| format!("    tls-server-name: {n}\n")).unwrap_or_default();
    std::fs::write(
        path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {server}
    certificate-authority-data: {ca_data}
{name}users:
- name: u
  user: {{token: t}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
"
        ),
    )
    .unwrap();
}

#[test]
fn helms_tls_flags_choose_how_the_server_is_trusted() {
    let server = Recorder::start(true);
    let url = format!("https://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    // Ok(true): the server was trusted, and answered that there is no record.
    let reads = |kubeconfig: &Path, overrides: &[(&str, &str)]| {
        let mut env = Environment::from_pairs([("KUBECONFIG", kubeconfig.to_string_lossy().into_owned())]);
        for (name, value) in overrides {
            env.set(name, value);
        }
        ConfigMapStore::new(KubeClient::connect(&env, None, "bsr").unwrap(), "registry").load().map(|l| l.is_none())
    };
    let ca_file = fixture("ca.pem").to_string_lossy().into_owned();

    // The kubeconfig trusts another CA: refused, until helm's flags say otherwise.
    let wrong_ca = dir.path().join("wrong-ca");
    tls_kubeconfig(&wrong_ca, &url, "other-ca.pem", Some("api.standin.test"));
    let err = reads(&wrong_ca, &[]).unwrap_err();
    assert!(matches!(err, LedgerError::Kube(KubeError::Transport { .. })), "{err}");
    assert!(reads(&wrong_ca, &[("HELM_KUBECAFILE", &ca_file)]).unwrap(), "--kube-ca-file replaces it");
    assert!(reads(&wrong_ca, &[("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "true")]).unwrap());
    assert!(reads(&wrong_ca, &[("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "false")]).is_err());

    // The certificate names api.standin.test, not 127.0.0.1: only a TLS server name lets
    // it be checked, from the kubeconfig or from --kube-tls-server-name.
    let right_ca = dir.path().join("right-ca");
    tls_kubeconfig(&right_ca, &url, "ca.pem", None);
    assert!(reads(&right_ca, &[]).is_err(), "the certificate does not name 127.0.0.1");
    assert!(reads(&right_ca, &[("HELM_KUBETLS_SERVER_NAME", "api.standin.test")]).unwrap());
    let named = dir.path().join("named");
    tls_kubeconfig(&named, &url, "ca.pem", Some("api.standin.test"));
    assert!(reads(&named, &[]).unwrap());
    // --kube-apiserver drops the kubeconfig's tls-server-name, as clientcmd does.
    assert!(reads(&named, &[("HELM_KUBEAPISERVER", &url)]).is_err());
    let both = [("HELM_KUBEAPISERVER", url.as_str()), ("HELM_KUBETLS_SERVER_NAME", "api.standin.test")];
    assert!(reads(&named, &both).unwrap());
    assert!(!server.heads().is_empty());
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// What a ledger read and write cost through the client and through kubectl, on the
/// stand-in: 20 of each, medians printed. Measures, asserts nothing about speed; run with
/// `cargo test --release --test kube_client -- --ignored --nocapture measure`.
#[test]
#[ignore = "a measurement, not a test: run it on purpose"]
fn measure_configmap_get_and_replace_client_vs_kubectl() {
    const ROUNDS: usize = 20;
    let bed = Bed::new();
    let name = configmap_name("registry");

    let started = Instant::now();
    let client = bed.client();
    let store = ConfigMapStore::new(client, "registry");
    let mut revision = store.write(&Ledger::new("registry", "bsr"), None).unwrap();
    let cold = started.elapsed();
    let (mut gets, mut replaces) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let stored = store.load().unwrap().unwrap();
        gets.push(t.elapsed());
        let mut ledger = stored.ledger;
        ledger.note_deployed(&v("1.2.6"));
        let t = Instant::now();
        revision = store.write(&ledger, Some(&revision)).unwrap();
        replaces.push(t.elapsed());
    }

    let kubectl = |args: &[&str], input: Option<&[u8]>| {
        use std::io::Write;
        let mut child = std::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&bed.kubeconfig)
            .args(["--namespace", "bsr"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (mut kubectl_gets, mut kubectl_replaces) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut object = kubectl(&["get", "configmap", &name, "-o", "json"], None);
        kubectl_gets.push(t.elapsed());
        object["metadata"]["annotations"] = serde_json::json!({"touched": format!("{:?}", t)});
        let body = serde_json::to_vec(&object).unwrap();
        let t = Instant::now();
        kubectl(&["replace", "-f", "-", "-o", "json"], Some(&body));
        kubectl_replaces.push(t.elapsed());
    }
    println!("connect + first create through the client: {cold:?}");
    println!("client:  get {:?}, replace {:?} (median of {ROUNDS})", median(gets), median(replaces));
    println!("kubectl: get {:?}, replace {:?} (median of {ROUNDS})", median(kubectl_gets), median(kubectl_replaces));
}
