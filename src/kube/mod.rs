//! The tool's own Kubernetes API client, for its bookkeeping: the ledger ConfigMap, access
//! checks, the pods and workloads that explain a rollout, and the release's revisions.
//!
//! Spawning kubectl for each of these costs 0.1–0.3 s a call, and on managed clusters
//! runs the cloud credential plugin every time. This client opens one connection and
//! keeps its credentials for the whole run. It is the maintained `kube` crate (rustls, no
//! OpenSSL), driven from synchronous code: each [`KubeClient`] owns a small tokio runtime
//! (one worker thread) and blocks on it per call, so the tool needs no async main (and
//! must not call it from inside another tokio runtime, where blocking is refused).
//!
//! It talks to exactly the cluster, as exactly the identity, that helm uses for the
//! release: see [`config`] for how `KUBECONFIG`, `HELM_KUBECONTEXT` and helm's
//! `HELM_KUBE*` overrides are read. Every request has a deadline ([`DEFAULT_TIMEOUT`]
//! unless the caller picks another), so a cluster that stops answering costs a bounded
//! wait, never a hung run.
//!
//! What the answers mean is decided elsewhere: the ledger's rules in
//! `run::ledger` (whose ConfigMap store calls [`KubeClient::configmap`] and its
//! siblings), a rollout's readiness in `run::unready`.

pub mod config;
mod release;

use std::sync::Arc;
use std::time::Duration;

use ::kube::core::Request;
use serde_json::Value;

pub use config::{Environment, HelmDriver, HelmKubeSettings};
pub use release::{release_object_name, release_selector};

/// How the client names itself to the API server.
const USER_AGENT: &str = concat!("helm-safe-upgrade/", env!("CARGO_PKG_VERSION"));

/// The deadline of a bookkeeping read or write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request did not get an answer, or got a refusal.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("the Kubernetes configuration ({source_name}) cannot be used: {message}\nhint: {HINT_CONFIG}")]
    Config { source_name: String, message: String },
    #[error("{purpose}: the client cannot start: {message}")]
    Client { purpose: String, message: String },
    #[error("{purpose}: no answer from {server} within {}s\nhint: {HINT_UNREACHABLE}", timeout.as_secs_f32())]
    Timeout { purpose: String, server: String, timeout: Duration },
    #[error("{purpose}: the API server answered {code} {reason}: {message}")]
    Api { purpose: String, code: u16, reason: String, message: String },
    #[error("{purpose}: cannot reach {server}: {message}\nhint: {HINT_UNREACHABLE}")]
    Transport { purpose: String, server: String, message: String },
    #[error("{purpose}: {message}")]
    Unsupported { purpose: String, message: String },
    #[error("{purpose}: the API server's answer cannot be read: {message}")]
    Decode { purpose: String, message: String },
}

const HINT_CONFIG: &str =
    "check KUBECONFIG and the --kube-* flags given to helm; `helm list` must work with the same ones";
const HINT_UNREACHABLE: &str = "check that the cluster is up and reachable (`kubectl get --raw /readyz`)";

impl KubeError {
    fn config(source_name: &str, message: String) -> KubeError {
        KubeError::Config { source_name: source_name.to_string(), message }
    }

    /// The HTTP status the API server answered with, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The API's reason (`NotFound`, `Conflict`, `AlreadyExists`, `Forbidden`, …).
    pub fn reason(&self) -> Option<&str> {
        match self {
            KubeError::Api { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The server's own words, for errors that quote them.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            KubeError::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status_code() == Some(404)
    }
}

/// The workload kinds a rollout waits for, as the API addresses them.
fn workload_path(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" => Some("deployments"),
        "StatefulSet" => Some("statefulsets"),
        "DaemonSet" => Some("daemonsets"),
        _ => None,
    }
}

/// The cluster's version as `GET /version` says it: what helm's
/// `.Capabilities.KubeVersion` holds when it renders against the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// `v1.30.4`, `v1.30.4-eks-a737599`, `v1.33.0+k3s1`.
    pub git_version: String,
    pub major: String,
    /// `30`, or `30+` on some providers.
    pub minor: String,
}

/// The request got no answer within the client's time limit.
struct Elapsed;

/// `request` sent, its answer awaited at most `timeout`.
async fn timed(
    client: ::kube::Client,
    timeout: std::time::Duration,
    request: http::Request<Vec<u8>>,
) -> Result<Result<Value, ::kube::Error>, Elapsed> {
    tokio::time::timeout(timeout, client.request::<Value>(request)).await.map_err(|_| Elapsed)
}

/// A blocking client for one cluster and identity, with a default namespace.
///
/// Cheap to clone: clones share the runtime and the connection pool.
#[derive(Clone)]
pub struct KubeClient {
    runtime: Arc<tokio::runtime::Runtime>,
    client: ::kube::Client,
    namespace: String,
    server: String,
    timeout: Duration,
    driver: HelmDriver,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("driver", &self.driver)
            .finish()
    }
}

impl KubeClient {
    /// A client configured from this process's environment, as helm passed it.
    pub fn from_process_env(context: Option<&str>, namespace: &str) -> Result<KubeClient, KubeError> {
        KubeClient::connect(&Environment::from_process(), context, namespace)
    }

    /// A client configured from `env` (see [`config`]). `context` overrides
    /// `HELM_KUBECONTEXT`; `namespace` is where namespaced calls go unless told otherwise.
    ///
    /// An exec credential plugin in the kubeconfig runs here, and again only when its
    /// credential expires, never per request. kube 5 runs it up to three times while
    /// building the client (for the token, then twice to see whether it hands out a client
    /// certificate instead). This is the one call that may take longer than the request
    /// deadline: a plugin may ask the user to log in.
    pub fn connect(env: &Environment, context: Option<&str>, namespace: &str) -> Result<KubeClient, KubeError> {
        let purpose = "connect to the Kubernetes API";
        let settings = HelmKubeSettings::from_env(env);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-client")
            .enable_all()
            .build()
            .map_err(|e| KubeError::Client { purpose: purpose.into(), message: e.to_string() })?;
        let mut config = runtime.block_on(config::client_config(env, &settings, context, namespace))?;
        // The per-call deadline bounds every request; the connect timeout also bounds the
        // dial itself, so an address that drops packets fails as fast as one that refuses.
        config.connect_timeout = Some(DEFAULT_TIMEOUT);
        // Named in the API server's audit log and as the field manager of what it writes,
        // as kubectl is.
        config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(USER_AGENT)));
        let server = config.cluster_url.to_string();
        let client = {
            // The client's middleware spawns its tasks on the runtime it is built in.
            let _entered = runtime.enter();
            ::kube::Client::try_from(config)
                .map_err(|e| KubeError::Client { purpose: purpose.into(), message: e.to_string() })?
        };
        Ok(KubeClient {
            runtime: Arc::new(runtime),
            client,
            namespace: namespace.to_string(),
            server: server.trim_end_matches('/').to_string(),
            timeout: DEFAULT_TIMEOUT,
            driver: settings.driver,
        })
    }

    /// The same client with another deadline per request.
    pub fn with_timeout(&self, timeout: Duration) -> KubeClient {
        KubeClient { timeout, ..self.clone() }
    }

    /// The same client with another default namespace.
    pub fn in_namespace(&self, namespace: &str) -> KubeClient {
        KubeClient { namespace: namespace.to_string(), ..self.clone() }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server's URL, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How helm stores this release's revisions (`HELM_DRIVER`).
    pub fn driver(&self) -> &HelmDriver {
        &self.driver
    }

    /// Send one request and read its JSON answer, within the deadline.
    fn send(
        &self,
        purpose: &str,
        request: Result<http::Request<Vec<u8>>, ::kube::core::request::Error>,
    ) -> Result<Value, KubeError> {
        let request =
            request.map_err(|e| KubeError::Client { purpose: purpose.to_string(), message: e.to_string() })?;
        let answer = self.runtime.block_on(timed(self.client.clone(), self.timeout, request));
        self.answered(purpose, answer)
    }

    /// Send `GET path` for every path at once; each answer in the order asked.
    fn get_all(&self, purpose: &str, paths: &[String]) -> Vec<Result<Value, KubeError>> {
        let started: Vec<_> = paths
            .iter()
            .map(|path| {
                let request = http::Request::get(path.as_str()).body(Vec::new());
                let request =
                    request.map_err(|e| KubeError::Client { purpose: purpose.to_string(), message: e.to_string() });
                request.map(|request| self.runtime.spawn(timed(self.client.clone(), self.timeout, request)))
            })
            .collect();
        started
            .into_iter()
            .map(|task| match self.runtime.block_on(task?) {
                Ok(answer) => self.answered(purpose, answer),
                Err(join) => Err(KubeError::Client { purpose: purpose.to_string(), message: join.to_string() }),
            })
            .collect()
    }

    /// A request's answer, or why there is none.
    fn answered(
        &self,
        purpose: &str,
        answer: Result<Result<Value, ::kube::Error>, Elapsed>,
    ) -> Result<Value, KubeError> {
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.failed(purpose, error)),
            Err(Elapsed) => Err(KubeError::Timeout {
                purpose: purpose.to_string(),
                server: self.server.clone(),
                timeout: self.timeout,
            }),
        }
    }

    /// What helm's `.Capabilities` hold of this cluster, read as helm reads them when it
    /// renders against it (pkg/action `getCapabilities`, which drops any cached discovery
    /// first): the Kubernetes version, and the API versions as helm's `GetVersionSet`
    /// lists them: every version of every group the server offers (`v1` for the core
    /// group) and `GROUP/VERSION/Kind` for every resource and subresource each serves. A
    /// group version whose resources cannot be read is left out, as helm leaves it out
    /// where the server has aggregated discovery (an aggregated API that is down).
    pub fn capabilities(&self) -> Result<(ServerVersion, Vec<String>), KubeError> {
        let purpose = "read the cluster's version and API versions";
        let asked = ["/version", "/api", "/apis"].map(String::from);
        let mut answers = self.get_all(purpose, &asked).into_iter();
        let mut next = || answers.next().expect("one answer per path");
        let (version, core, groups) = (next()?, next()?, next()?);
        let field = |name: &str| version[name].as_str().unwrap_or_default().to_string();
        let kube_version =
            ServerVersion { git_version: field("gitVersion"), major: field("major"), minor: field("minor") };
        let strings = |list: &Value| -> Vec<String> {
            list.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
        };
        let mut group_versions: Vec<(String, String)> =
            strings(&core["versions"]).into_iter().map(|v| (v.clone(), format!("/api/{v}"))).collect();
        for group in groups["groups"].as_array().into_iter().flatten() {
            for version in group["versions"].as_array().into_iter().flatten() {
                if let Some(gv) = version["groupVersion"].as_str() {
                    group_versions.push((gv.to_string(), format!("/apis/{gv}")));
                }
            }
        }
        let paths: Vec<String> = group_versions.iter().map(|(_, path)| path.clone()).collect();
        let mut api_versions = std::collections::BTreeSet::new();
        for ((gv, _), resources) in group_versions.iter().zip(self.get_all(purpose, &paths)) {
            let Ok(resources) = resources else { continue };
            api_versions.insert(gv.clone());
            for resource in resources["resources"].as_array().into_iter().flatten() {
                if let Some(kind) = resource["kind"].as_str().filter(|k| !k.is_empty()) {
                    api_versions.insert(format!("{gv}/{kind}"));
                }
            }
        }
        Ok((kube_version, api_versions.into_iter().collect()))
    }

    fn failed(&self, purpose: &str, error: ::kube::Error) -> KubeError {
        // The server's text may quote anything a user wrote: shown, never obeyed.
        let shown = |text: &str| crate::text::for_terminal(text).into_owned();
        match error {
            ::kube::Error::Api(status) => KubeError::Api {
                purpose: purpose.to_string(),
                code: status.code,
                reason: shown(&status.reason),
                message: shown(&status.message),
            },
            ::kube::Error::SerdeError(e) => KubeError::Decode { purpose: purpose.to_string(), message: e.to_string() },
            other => KubeError::Transport {
                purpose: purpose.to_string(),
                server: self.server.clone(),
                message: shown(&error_chain(&other)),
            },
        }
    }

    /// `GET` one object; None when it does not exist.
    fn get_opt(&self, purpose: &str, collection: &str, name: &str) -> Result<Option<Value>, KubeError> {
        match self.send(purpose, Request::new(collection).get(name, &Default::default())) {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether this identity may `verb` `resource` (`plural[.group][/subresource]`, as
    /// kubectl spells it) in `namespace` (None: across the cluster), by a
    /// SelfSubjectAccessReview: what `kubectl auth can-i` asks. None when the server
    /// cannot answer (unreachable, or reviews not allowed).
    pub fn can_i(&self, verb: &str, resource: &str, namespace: Option<&str>) -> Option<bool> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "verb": verb,
                "resource": plural,
                "group": group,
                "subresource": subresource,
                "namespace": namespace.unwrap_or_default(),
            }},
        });
        let body = serde_json::to_vec(&review).ok()?;
        let purpose = format!("ask whether this user may {verb} {resource}");
        let request =
            Request::new("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").create(&Default::default(), body);
        let answer = self.send(&purpose, request).ok()?;
        answer["status"]["allowed"].as_bool()
    }

    /// The ConfigMap `name` in this client's namespace; None when there is none.
    pub fn configmap(&self, purpose: &str, name: &str) -> Result<Option<Value>, KubeError> {
        self.get_opt(purpose, &self.configmaps(), name)
    }

    /// The ConfigMaps `selector` picks, in this client's namespace or (`all_namespaces`)
    /// in all: one request, however many releases there are (the fleet view's ledgers).
    pub fn list_configmaps(&self, selector: &str, all_namespaces: bool) -> Result<Vec<Value>, KubeError> {
        let (collection, scope) = if all_namespaces {
            ("/api/v1/configmaps".to_string(), "all namespaces".to_string())
        } else {
            (self.configmaps(), format!("namespace {}", self.namespace))
        };
        let purpose = format!("list the ConfigMaps {selector} in {scope}");
        let params = ::kube::api::ListParams::default().labels(selector);
        let list = self.send(&purpose, Request::new(collection).list(&params))?;
        items(&purpose, list)
    }

    /// Create `object` (a ConfigMap) in this client's namespace; returns it as stored.
    pub fn create_configmap(&self, purpose: &str, object: &Value) -> Result<Value, KubeError> {
        let body = self.body(purpose, object)?;
        self.send(purpose, Request::new(self.configmaps()).create(&Default::default(), body))
    }

    /// Replace the ConfigMap `name` with `object`. When `object` carries a
    /// `metadata.resourceVersion`, the server refuses (409 Conflict) unless the stored
    /// object is still at that version: a compare-and-swap.
    pub fn replace_configmap(&self, purpose: &str, name: &str, object: &Value) -> Result<Value, KubeError> {
        let body = self.body(purpose, object)?;
        self.send(purpose, Request::new(self.configmaps()).replace(name, &Default::default(), body))
    }

    fn configmaps(&self) -> String {
        format!("/api/v1/namespaces/{}/configmaps", self.namespace)
    }

    fn body(&self, purpose: &str, object: &Value) -> Result<Vec<u8>, KubeError> {
        serde_json::to_vec(object)
            .map_err(|e| KubeError::Client { purpose: purpose.to_string(), message: e.to_string() })
    }

    /// The workloads of `kind` (Deployment, StatefulSet, DaemonSet) in `namespace` that
    /// `selector` picks.
    pub fn list_workloads(&self, kind: &str, namespace: &str, selector: &str) -> Result<Vec<Value>, KubeError> {
        let purpose = format!("list the {kind}s of {selector} in namespace {namespace}");
        let plural = workload_path(kind).ok_or_else(|| KubeError::Unsupported {
            purpose: purpose.clone(),
            message: format!("{kind} is not a workload kind this tool reads (Deployment, StatefulSet, DaemonSet)"),
        })?;
        let params = ::kube::api::ListParams::default().labels(selector);
        let collection = format!("/apis/apps/v1/namespaces/{namespace}/{plural}");
        let list = self.send(&purpose, Request::new(collection).list(&params))?;
        items(&purpose, list)
    }

    /// Every Job in `namespace` (a release's hook Jobs carry no label to select them by).
    pub fn list_jobs(&self, namespace: &str) -> Result<Vec<Value>, KubeError> {
        let purpose = format!("list the Jobs in namespace {namespace}");
        let collection = format!("/apis/batch/v1/namespaces/{namespace}/jobs");
        let list = self.send(&purpose, Request::new(collection).list(&Default::default()))?;
        items(&purpose, list)
    }

    /// The last `lines` lines of a pod's log (`kubectl logs POD --tail=N`); `container`
    /// when the pod has several.
    pub fn pod_log_tail(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        lines: i64,
    ) -> Result<String, KubeError> {
        let purpose = format!("read the log of pod {pod} in namespace {namespace}");
        // A log can be huge and a line endless: bounded both ways.
        let params = ::kube::api::LogParams {
            container: container.map(str::to_string),
            tail_lines: Some(lines),
            limit_bytes: Some(16 * 1024),
            ..Default::default()
        };
        let request = Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
            .logs(pod, &params)
            .map_err(|e| KubeError::Client { purpose: purpose.clone(), message: e.to_string() })?;
        let client = self.client.clone();
        let timeout = self.timeout;
        let answer =
            self.runtime.block_on(async move { tokio::time::timeout(timeout, client.request_text(request)).await });
        match answer {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(error)) => Err(self.failed(&purpose, error)),
            Err(_elapsed) => Err(KubeError::Timeout { purpose, server: self.server.clone(), timeout }),
        }
    }

    /// The pods in `namespace` that `selector` (a label selector) picks, as the API
    /// returns them.
    pub fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Value>, KubeError> {
        let purpose = format!("list the pods of {selector} in namespace {namespace}");
        let params = ::kube::api::ListParams::default().labels(selector);
        let list = self.send(&purpose, Request::new(format!("/api/v1/namespaces/{namespace}/pods")).list(&params))?;
        items(&purpose, list)
    }

    /// The Deployment, StatefulSet or DaemonSet `name` in `namespace` (`kind` as a
    /// manifest names it); None when it does not exist.
    pub fn get_workload(&self, kind: &str, namespace: &str, name: &str) -> Result<Option<Value>, KubeError> {
        let purpose = format!("read {kind} {name} in namespace {namespace}");
        let plural = workload_path(kind).ok_or_else(|| KubeError::Unsupported {
            purpose: purpose.clone(),
            message: format!("{kind} is not a workload kind this tool reads (Deployment, StatefulSet, DaemonSet)"),
        })?;
        self.get_opt(&purpose, &format!("/apis/apps/v1/namespaces/{namespace}/{plural}"), name)
    }

    /// The revisions helm stores for `release` in this client's namespace, oldest first,
    /// each with its status (`deployed`, `superseded`, `failed`, `pending-upgrade`, …),
    /// read from the labels of helm's storage objects only: the release payloads (chart,
    /// values, manifest) are not downloaded. Honours `HELM_DRIVER`; for `sql` and
    /// `memory` it returns [`KubeError::Unsupported`], and the caller asks helm instead.
    pub fn release_revisions(&self, release: &str) -> Result<Vec<(u64, String)>, KubeError> {
        release::revisions(self, release)
    }

    /// Every revision of `release` as helm stored it (the whole release document, values
    /// included), oldest first, parsed once into `T` (the parts the caller reads); empty
    /// when there is no such release. `HELM_DRIVER` as for
    /// [`KubeClient::release_revisions`].
    pub fn release_documents<T: serde::de::DeserializeOwned>(&self, release: &str) -> Result<Vec<(u64, T)>, KubeError> {
        release::documents(self, release)
    }
}

/// The `items` of a list answer.
fn items(purpose: &str, mut list: Value) -> Result<Vec<Value>, KubeError> {
    match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) => Ok(vec![]),
        _ => Err(KubeError::Decode { purpose: purpose.to_string(), message: "the list has no items".into() }),
    }
}

/// An error and its causes on one line: hyper's top error ("client error (Connect)") says
/// little without them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
