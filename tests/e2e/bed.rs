//! The test bed for end-to-end tests: the real helm binaries (3.19.0 and 4.1.4), charts
//! served by the loopback chart repository, and the plugin binary run as helm runs it
//! (HELM_BIN, HELM_NAMESPACE, ...), against a Kubernetes API that is either
//!
//! - a stand-in of its own ([`kube_standin::StandIn`], in process), the default; the
//!   release lives in namespace `bsr`; or
//! - the cluster the kubeconfig in `HSU_E2E_KUBECONFIG` names (context `HSU_E2E_CONTEXT`,
//!   default its current one): each bed creates a fresh namespace there and, when it is
//!   dropped (a failed test included), uninstalls its releases and deletes the namespace.
//!   The charts are packaged with `bed.image` set (`HSU_E2E_IMAGE`, default busybox) so
//!   that their pods really run; see the README, "Working on it".
//!
//! Tests read the cluster through [`Bed::get`] and [`Bed::list`] (in process, or `kubectl
//! get -o json`), and ask for what only the stand-in has with [`Bed::standin`], skipping
//! with a printed reason ([`skip_on_external`]) where a cluster cannot do it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use chart_standin::{ChartRepo, RepoOptions};
use kube_standin::fault::FaultProxy;
use kube_standin::testing::{HelmEnv, HelmVersion, kubectl_path};
use kube_standin::{Options, StandIn};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_helm-safe-upgrade");

/// A kubeconfig (or a `:`-separated list, as `KUBECONFIG`): run the e2e tests against that
/// cluster instead of a stand-in per test.
pub const KUBECONFIG_VAR: &str = "HSU_E2E_KUBECONFIG";
/// The context of [`KUBECONFIG_VAR`] to use (default: its current context).
pub const CONTEXT_VAR: &str = "HSU_E2E_CONTEXT";
/// The image every runnable container of the fixture charts runs on an external cluster.
pub const IMAGE_VAR: &str = "HSU_E2E_IMAGE";
/// The default of [`IMAGE_VAR`]: a shell, `httpd` and `echo` in 2 MB.
pub const DEFAULT_IMAGE: &str = "busybox:1.36.1";
/// helm's `--timeout` for a wait that is meant to fail, on an external cluster ([`Bed::fail_timeout`]).
pub const FAIL_TIMEOUT_VAR: &str = "HSU_E2E_FAIL_TIMEOUT";
/// Set (non-empty): keep each external bed's namespace instead of deleting it, to look at.
pub const KEEP_VAR: &str = "HSU_E2E_KEEP_NAMESPACES";
/// The label on every namespace an external bed creates (to find strays:
/// `kubectl delete namespace -l app.kubernetes.io/created-by=helm-safe-upgrade-e2e`).
pub const NAMESPACE_LABEL: (&str, &str) = ("app.kubernetes.io/created-by", "helm-safe-upgrade-e2e");

/// The namespace of a bed on its own stand-in: each test has its own API, so one name does.
pub const STANDIN_NS: &str = "bsr";

/// Values with nested maps, a list and a secret, to check they are carried exactly.
pub const VALUES: &str = "replicaCount: 2\npostgres:\n  host: db.prod.internal\n  password: s3cret-value\nextraEnv:\n  - name: LOG_FORMAT\n    value: json\nconfig:\n  features:\n    remotePlugins: true\n";

/// The API a bed talks to.
pub enum Cluster {
    /// A stand-in of this bed's own, read in process.
    StandIn(StandIn),
    /// The cluster of [`KUBECONFIG_VAR`], read with kubectl through `direct`: a kubeconfig
    /// for it (context minified and flattened, namespace set to the bed's) that never goes
    /// through the fault proxy, so reads and the cleanup work whatever a test did to it.
    External { direct: PathBuf },
}

pub struct Bed {
    pub version: HelmVersion,
    /// The namespace of this bed's release: [`STANDIN_NS`] on a stand-in, a fresh
    /// `hsu-e2e-…` on an external cluster.
    pub ns: String,
    pub cluster: Cluster,
    pub env: HelmEnv,
    pub charts: tempfile::TempDir,
    pub repo: ChartRepo,
    pub state: tempfile::TempDir,
    /// A fault proxy between helm/kubectl (and the tool) and the API, when the bed was made
    /// with [`Bed::behind_proxy`].
    pub proxy: Option<FaultProxy>,
}

// ---------------------------------------------------------------------------------------
// An external cluster (HSU_E2E_KUBECONFIG)

/// The external cluster's kubeconfig, read once per test process.
struct External {
    /// `kubectl config view --raw --flatten --minify` of it, as JSON: one cluster, one
    /// user, one context, certificates inline.
    config: Value,
    /// The API server's URL, as the kubeconfig names it.
    server: String,
}

/// The external cluster, if [`KUBECONFIG_VAR`] names one; panics when it cannot be read
/// (a run that asked for a cluster must not quietly fall back to a stand-in).
fn external() -> Option<&'static External> {
    static EXTERNAL: OnceLock<Option<External>> = OnceLock::new();
    EXTERNAL
        .get_or_init(|| {
            let kubeconfig = std::env::var_os(KUBECONFIG_VAR).filter(|v| !v.is_empty())?;
            let context = std::env::var(CONTEXT_VAR).ok().filter(|c| !c.is_empty());
            let mut view = Command::new(kubectl_path());
            view.env("KUBECONFIG", &kubeconfig).args([
                "config",
                "view",
                "--raw",
                "--flatten",
                "--minify",
                "-o",
                "json",
            ]);
            if let Some(context) = &context {
                view.args(["--context", context]);
            }
            let out = view.output().expect("run kubectl config view");
            assert!(
                out.status.success(),
                "{KUBECONFIG_VAR}={} {CONTEXT_VAR}={context:?}: kubectl config view failed: {}",
                kubeconfig.to_string_lossy(),
                String::from_utf8_lossy(&out.stderr)
            );
            let config: Value = serde_json::from_slice(&out.stdout).expect("kubectl config view -o json");
            let server = config["clusters"][0]["cluster"]["server"]
                .as_str()
                .unwrap_or_else(|| panic!("{KUBECONFIG_VAR}: no server in {config}"))
                .to_string();
            Some(External { config, server })
        })
        .as_ref()
}

/// Whether the beds of this test run use an external cluster ([`KUBECONFIG_VAR`]).
pub fn is_external() -> bool {
    external().is_some()
}

/// For a test that needs what only the in-process stand-in has: true, after printing why
/// on stderr, when the beds are external (the test then returns: skipped, not passed
/// silently; nextest shows it with `--success-output final`).
pub fn skip_on_external(why: &str) -> bool {
    skip_if(is_external(), why)
}

/// For a test that needs the fault proxy to see requests (request faults, the request
/// log): they parse plain HTTP, so an external API served over TLS cannot have them.
pub fn skip_on_external_tls(why: &str) -> bool {
    skip_if(external().is_some_and(|e| e.server.starts_with("https://")), why)
}

fn skip_if(skip: bool, why: &str) -> bool {
    if skip {
        let test = std::thread::current().name().unwrap_or("this test").to_string();
        eprintln!("SKIPPED {test} on the external cluster ({KUBECONFIG_VAR}): {why}");
    }
    skip
}

/// The image the fixture charts run (`bed.image`): [`IMAGE_VAR`] or [`DEFAULT_IMAGE`] on
/// an external cluster, none on the stand-in, which never runs a container (the charts'
/// own vendor-like images are deployed there, as always).
pub fn chart_image() -> Option<String> {
    external()?;
    Some(std::env::var(IMAGE_VAR).ok().filter(|i| !i.is_empty()).unwrap_or_else(|| DEFAULT_IMAGE.to_string()))
}

/// (scheme, host, port, path) of an API server URL; the host without IPv6 brackets.
fn split_url(url: &str) -> (String, String, u16, String) {
    let (scheme, rest) =
        url.split_once("://").unwrap_or_else(|| panic!("{KUBECONFIG_VAR}: server {url:?} has no scheme"));
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or_else(|| panic!("server {url:?}"));
        (host, after.strip_prefix(':').map(|p| p.parse().expect("a port")).unwrap_or(default_port))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().unwrap_or_else(|_| panic!("server {url:?}: port"))),
            None => (authority, default_port),
        }
    };
    (scheme.to_string(), host.to_string(), port, path.trim_end_matches('/').to_string())
}

impl External {
    /// The API server's address, for the fault proxy to dial.
    fn upstream(&self) -> std::net::SocketAddr {
        use std::net::ToSocketAddrs;
        let (_, host, port, _) = split_url(&self.server);
        (host.as_str(), port)
            .to_socket_addrs()
            .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}: resolve {host}: {e}"))
            .next()
            .unwrap_or_else(|| panic!("{KUBECONFIG_VAR}: {host} has no address"))
    }

    /// The kubeconfig for one bed: namespace `ns`; through the fault proxy on
    /// `127.0.0.1:<via>` when given. The proxy forwards TCP as it is, so for a TLS server
    /// the client must still verify the server's certificate under the server's name:
    /// `tls-server-name` keeps it (the CA and the client credentials are unchanged).
    fn kubeconfig(&self, ns: &str, via: Option<u16>) -> Value {
        let mut config = self.config.clone();
        config["contexts"][0]["context"]["namespace"] = Value::from(ns);
        if let Some(port) = via {
            let (scheme, host, _, path) = split_url(&self.server);
            let cluster = &mut config["clusters"][0]["cluster"];
            cluster["server"] = Value::from(format!("{scheme}://127.0.0.1:{port}{path}"));
            if scheme == "https" && cluster.get("tls-server-name").is_none() {
                cluster["tls-server-name"] = Value::from(host);
            }
        }
        config
    }
}

/// A namespace name no other bed uses: `hsu-e2e-<test>-<6 hex>` (at most 63 characters).
fn fresh_namespace() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let test = std::thread::current().name().unwrap_or("test").to_ascii_lowercase();
    let mut slug = String::new();
    for c in test.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
            slug.push(c);
        }
    }
    let slug: String = slug.chars().rev().take(44).collect::<Vec<_>>().into_iter().rev().collect();
    let slug = slug.trim_matches('-');
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mix =
        nanos ^ (u64::from(std::process::id()) << 20) ^ COUNT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9);
    format!("hsu-e2e-{slug}-{:06x}", mix.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40)
}

/// Writes a kubeconfig that may hold a cluster's credentials: readable by its owner only
/// (also when the file was there before).
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, "").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `kubectl --kubeconfig KUBECONFIG ARGS`, with optional stdin; never waits on a dead API
/// for long (`--request-timeout`).
fn kubectl_at(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(kubectl_path());
    cmd.arg("--kubeconfig").arg(kubeconfig).arg("--request-timeout=30s").args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("wait for kubectl")
}

/// kubectl's name for a resource type: `configmaps`, `deployments.v1.apps`.
fn kubectl_resource(api_version: &str, plural: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => format!("{plural}.{version}.{group}"),
        None => plural.to_string(),
    }
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

    /// The bed's own stand-in, for what only it has (deny rules, writes behind the API's
    /// back); None on an external cluster, where such a test is skipped.
    pub fn standin(&self) -> Option<&StandIn> {
        match &self.cluster {
            Cluster::StandIn(s) => Some(s),
            Cluster::External { .. } => None,
        }
    }

    pub fn is_external(&self) -> bool {
        matches!(self.cluster, Cluster::External { .. })
    }

    fn make(version: HelmVersion, with_proxy: bool) -> Bed {
        let charts = tempfile::tempdir().unwrap();
        chart_standin::fixtures::package_all_with(charts.path(), chart_image().as_deref())
            .expect("package the fixture charts");
        let repo = ChartRepo::start(charts.path(), RepoOptions::default()).expect("start the chart repository");
        let state = tempfile::tempdir().unwrap();
        let Some(ext) = external() else {
            // helm 3 polls readiness every 2 s, so its stand-in reconciles synchronously;
            // helm 4 watches, and gets a real delay.
            let ready_delay = if version.major() == 3 { Duration::ZERO } else { Duration::from_millis(100) };
            let standin = StandIn::start(Options { ready_delay, ..Options::default() }).expect("start the stand-in");
            let proxy = with_proxy.then(|| FaultProxy::start(standin.addr()).expect("start the fault proxy"));
            let env = match &proxy {
                Some(p) => HelmEnv::for_server(&p.url(), version),
                None => HelmEnv::new(&standin, version),
            };
            env.helm_ok(&["repo", "add", "demo", &repo.url()]);
            let ns = STANDIN_NS.to_string();
            return Bed { version, ns, cluster: Cluster::StandIn(standin), env, charts, repo, state, proxy };
        };
        let ns = fresh_namespace();
        // An isolated helm home; its kubeconfig is replaced by the cluster's just below.
        let env = HelmEnv::for_server("http://127.0.0.1:1", version);
        let direct = env.dir().join("kubeconfig-direct");
        write_private(&direct, &ext.kubeconfig(&ns, None).to_string());
        let proxy = with_proxy.then(|| FaultProxy::start(ext.upstream()).expect("start the fault proxy"));
        let via = proxy.as_ref().map(|p| p.addr().port());
        write_private(&env.kubeconfig(), &ext.kubeconfig(&ns, via).to_string());
        env.helm_ok(&["repo", "add", "demo", &repo.url()]);
        // Last, so that nothing fails between creating the namespace and the bed whose drop
        // deletes it. JSON, not `kubectl create namespace` (protobuf, which the stand-in
        // run as an external server does not take).
        let namespace = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {NAMESPACE_LABEL.0: NAMESPACE_LABEL.1}},
        });
        let out = kubectl_at(&direct, &["create", "-f", "-"], Some(&namespace.to_string()));
        assert!(
            out.status.success(),
            "{version}: create namespace {ns} on {}: {}",
            ext.server,
            String::from_utf8_lossy(&out.stderr)
        );
        Bed { version, ns, cluster: Cluster::External { direct }, env, charts, repo, state, proxy }
    }

    /// An object in the bed's namespace as the API returns it, or None if there is none:
    /// read in process from the stand-in, with `kubectl get -o json` from a cluster.
    pub fn get(&self, api_version: &str, plural: &str, name: &str) -> Option<Value> {
        let direct = match &self.cluster {
            Cluster::StandIn(s) => return s.get(api_version, plural, Some(&self.ns), name),
            Cluster::External { direct } => direct,
        };
        let resource = kubectl_resource(api_version, plural);
        let out = kubectl_at(direct, &["get", &resource, name, "--namespace", &self.ns, "-o", "json"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("(NotFound)") {
            return None;
        }
        assert!(out.status.success(), "{}: kubectl get {resource} {name}: {stderr}", self.version);
        Some(serde_json::from_slice(&out.stdout).expect("kubectl get -o json"))
    }

    /// The objects of a type in the bed's namespace, by name (as [`Bed::get`] reads them).
    pub fn list(&self, api_version: &str, plural: &str) -> Vec<Value> {
        let direct = match &self.cluster {
            Cluster::StandIn(s) => return s.list(api_version, plural, Some(&self.ns)),
            Cluster::External { direct } => direct,
        };
        let resource = kubectl_resource(api_version, plural);
        let out = kubectl_at(direct, &["get", &resource, "--namespace", &self.ns, "-o", "json"], None);
        assert!(
            out.status.success(),
            "{}: kubectl get {resource}: {}",
            self.version,
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).expect("kubectl get -o json");
        let mut items = list["items"].as_array().cloned().unwrap_or_default();
        items.sort_by(|a, b| a["metadata"]["name"].as_str().cmp(&b["metadata"]["name"].as_str()));
        items
    }

    /// How often to poll the API: a stand-in read costs nothing, a kubectl run does.
    fn poll_interval(&self) -> Duration {
        if self.is_external() { Duration::from_millis(100) } else { Duration::from_millis(20) }
    }

    /// helm's `--timeout` for a wait that is meant to fail (an image that never starts)
    /// while the rest of the same upgrade, its hook Job included, must succeed within it.
    /// The stand-in makes everything else ready within milliseconds, so the test's own
    /// short `standin` value stands; a real cluster takes seconds to schedule, pull and
    /// start a pod, so an external bed gives [`FAIL_TIMEOUT_VAR`] (default 30s).
    pub fn fail_timeout(&self, standin: &str) -> String {
        if !self.is_external() {
            return standin.to_string();
        }
        std::env::var(FAIL_TIMEOUT_VAR).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "30s".to_string())
    }

    /// A fixture chart's values.yaml text as this bed packages it: with `bed.image` set on
    /// an external cluster ([`chart_image`]), as it is on the stand-in.
    pub fn chart_values(&self, values_yaml: &str) -> String {
        match chart_image() {
            Some(image) => {
                chart_standin::fixtures::with_bed_image(values_yaml, &image).expect("a fixture's values.yaml")
            }
            None => values_yaml.to_string(),
        }
    }

    /// Every version of one fixture chart packaged into `dir`, as this bed packages them.
    pub fn package_fixture(&self, chart: &str, dir: &Path) {
        chart_standin::fixtures::package_with(chart, dir, chart_image().as_deref()).expect("package a fixture chart");
    }
}

/// On an external cluster: uninstall the bed's releases and delete its namespace, also
/// when the test failed (unless [`KEEP_VAR`] is set). Never panics: a failed cleanup is
/// reported on stderr, and the namespace carries [`NAMESPACE_LABEL`] to find it by.
impl Drop for Bed {
    fn drop(&mut self) {
        let Cluster::External { direct } = &self.cluster else { return };
        let ns = &self.ns;
        if std::env::var_os(KEEP_VAR).is_some_and(|v| !v.is_empty()) {
            eprintln!("{KEEP_VAR}: namespace {ns} kept");
            return;
        }
        if std::thread::panicking() {
            eprintln!("the test failed; deleting its namespace {ns} ({KEEP_VAR}=1 keeps it)");
        }
        let mut list = self.env.command(self.env.helm_bin());
        list.env("KUBECONFIG", direct).args(["list", "--namespace", ns, "--short"]);
        if self.version.major() == 3 {
            list.arg("--all"); // helm 4 lists every status by default, and has no --all.
        }
        match list.output() {
            Ok(out) if out.status.success() => {
                for release in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
                    let uninstall = self
                        .env
                        .command(self.env.helm_bin())
                        .env("KUBECONFIG", direct)
                        .args(["uninstall", release.trim(), "--namespace", ns, "--timeout", "60s"])
                        .output();
                    match uninstall {
                        Ok(out) if out.status.success() => {}
                        Ok(out) => eprintln!(
                            "cleanup: helm uninstall {release} -n {ns}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ),
                        Err(e) => eprintln!("cleanup: helm uninstall {release} -n {ns}: {e}"),
                    }
                }
            }
            Ok(out) => eprintln!("cleanup: helm list -n {ns}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("cleanup: helm list -n {ns}: {e}"),
        }
        let out = kubectl_at(direct, &["delete", "namespace", ns, "--ignore-not-found", "--wait=false"], None);
        if !out.status.success() {
            eprintln!("cleanup: delete namespace {ns}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

impl Bed {
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
            .env("XDG_STATE_HOME", self.state.path())
            .env("HELM_NAMESPACE", &self.ns)
            .env_remove("HELM_PLUGIN_NAME")
            .env_remove("CI")
            .stdin(Stdio::null());
        without_colour_settings(&mut cmd);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.tool().args(args).output().expect("run helm-safe-upgrade")
    }

    /// `helm PLUGIN` as an operator types it (`plugin` is `safe-upgrade` or
    /// `safe-rollback`): the plugin installed into this bed's helm home with `helm plugin
    /// install` (the binary under test, through `HELM_SAFE_UPGRADE_BIN`), and helm starting
    /// it, setting the `HELM_*` variables itself. The bed's namespace is helm's
    /// `HELM_NAMESPACE`, as `-n` would set it.
    pub fn through_helm(&self, plugin: &str) -> Command {
        self.through_helm_with(&[], plugin)
    }

    /// [`Bed::through_helm`] with helm's own flags before the plugin's name (`helm --color
    /// never safe-upgrade …`).
    pub fn through_helm_with(&self, helm_flags: &[&str], plugin: &str) -> Command {
        self.install_plugin();
        let mut cmd = self.env.command(self.env.helm_bin());
        let kubectl_dir = kubectl_path().parent().unwrap().to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(kubectl_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        cmd.args(helm_flags)
            .arg(plugin)
            .env("PATH", path)
            .env("XDG_STATE_HOME", self.state.path())
            .env("HELM_NAMESPACE", &self.ns)
            .env_remove("HELM_BIN")
            .env_remove("HELM_PLUGIN_NAME")
            .env_remove("CI")
            .stdin(Stdio::null());
        without_colour_settings(&mut cmd);
        cmd
    }

    /// `helm plugin install` of a copy of the plugin's files (helm links a local directory,
    /// and the install hook writes the binary into it), once per bed.
    fn install_plugin(&self) {
        let src = self.state.path().join("plugin-src/helm-safe-upgrade");
        if src.join("bin/helm-safe-upgrade").is_file() {
            return;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["plugin.yaml", "install-binary.sh", "plugin.complete", "plugins/safe-rollback/plugin.yaml"] {
            let to = src.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        let out = self
            .env
            .command(self.env.helm_bin())
            .args(["plugin", "install", src.to_str().unwrap()])
            .env("HELM_SAFE_UPGRADE_BIN", BIN)
            .stdin(Stdio::null())
            .output()
            .expect("spawn helm plugin install");
        assert!(
            out.status.success(),
            "{}: helm plugin install: {}{}",
            self.version,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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
        let out = self.env.helm_ok(&["history", "bsr", "--namespace", &self.ns, "-o", "json"]);
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
        let out = self.env.helm_ok(&["get", "values", "bsr", "--namespace", &self.ns, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn metadata(&self) -> Value {
        serde_json::from_str(&self.env.helm_ok(&["get", "metadata", "bsr", "--namespace", &self.ns, "-o", "json"]))
            .unwrap()
    }

    /// The stored server Deployment of the BSR-like chart.
    pub fn server(&self) -> Value {
        self.get("apps/v1", "deployments", "bsr-server").expect("the server Deployment exists")
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

/// The test runner's own colour and width settings stay out of the tool's environment (a
/// test that wants one sets it).
fn without_colour_settings(cmd: &mut Command) {
    for name in ["NO_COLOR", "HELM_COLOR", "COLUMNS"] {
        cmd.env_remove(name);
    }
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
            &self.ns,
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

    /// The tool's own API client, configured from this bed's kubeconfig (as helm would
    /// pass it), addressing the bed's namespace.
    pub fn kube_client(&self) -> helm_safe_upgrade::kube::KubeClient {
        let kubeconfig = self.env.kubeconfig();
        let env = helm_safe_upgrade::kube::Environment::from_pairs([("KUBECONFIG", kubeconfig.to_str().unwrap())]);
        helm_safe_upgrade::kube::KubeClient::connect(&env, None, &self.ns).expect("connect to the bed's API")
    }

    /// The ledger ConfigMap's record, as JSON.
    pub fn ledger_record(&self) -> Option<Value> {
        let cm = self.get("v1", "configmaps", "helm-safe-upgrade.bsr")?;
        Some(serde_json::from_str(cm["data"]["ledger"].as_str().expect("data.ledger")).expect("the ledger is JSON"))
    }

    /// The pods in the release's namespace carrying `app.kubernetes.io/version=V`, in any
    /// phase: on a cluster that includes a hook Job's finished pod until helm deletes the Job.
    pub fn pods_of_version(&self, version: &str) -> Vec<Value> {
        self.list("v1", "pods")
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/version"] == version)
            .collect()
    }

    /// The bsr server's pods of version V: [`Bed::pods_of_version`] less the migration hook
    /// Job's pod, which a cluster (and the stand-in) keeps after the Job completed, so
    /// that counting replicas counts the server's.
    pub fn server_pods_of_version(&self, version: &str) -> Vec<Value> {
        self.pods_of_version(version)
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "server")
            .collect()
    }

    /// The pods of the Job `job`, by the `job-name` label the Job controller gives them
    /// (the stand-in's as a cluster's).
    pub fn job_pods(&self, job: &str) -> Vec<Value> {
        self.list("v1", "pods").into_iter().filter(|p| p["metadata"]["labels"]["job-name"] == job).collect()
    }

    /// `helm get values bsr --revision N -o json`.
    pub fn user_values_at(&self, revision: u64) -> Value {
        let out = self.env.helm_ok(&[
            "get",
            "values",
            "bsr",
            "--namespace",
            &self.ns,
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
            std::thread::sleep(self.poll_interval());
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
            std::thread::sleep(self.poll_interval());
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
        let out = self.kubectl(&["get", "configmap", "helm-safe-upgrade.bsr", "-n", &self.ns, "-o", "json"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut cm: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut record: Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
        edit(&mut record);
        cm["data"]["ledger"] = Value::String(serde_json::to_string_pretty(&record).unwrap());
        let out = self.kubectl(&["replace", "-n", &self.ns, "-f", "-"], Some(&cm.to_string()));
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
