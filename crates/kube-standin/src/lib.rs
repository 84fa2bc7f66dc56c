//! A Kubernetes API stand-in on 127.0.0.1 that real helm 3 and helm 4 can drive: it
//! stores objects, answers discovery, OpenAPI, patches, server-side apply and watches
//! the way helm needs, and plays the controllers (workloads become ready after a delay,
//! or never when their image contains `broken`). See the crate README for what it
//! implements and what it does not.
//!
//! [`StandIn`] is the blocking API tests use: it serves on its own thread and tokio
//! runtime, and [`testing`] holds the helpers every crate's tests share (provisioned
//! tool paths and an isolated helm environment). For fault-injection tests,
//! [`StandIn::deny`] makes chosen requests fail with `403 Forbidden` (an RBAC stand-in),
//! and [`fault::FaultProxy`] sits between the clients and the API to hold, cut, swallow,
//! slow or answer their requests.

mod api;
mod apply;
mod authz;
mod controller;
mod defaults;
mod discovery;
pub mod fault;
mod patch;
mod protobuf;
mod request_stream;
mod resources;
mod run;
mod selectors;
mod server;
mod store;
pub mod testing;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub use crate::authz::{DenyId, DenyRule, ParseDenyRuleError, Verb};
use crate::server::Shared;
use crate::store::ObjKey;

/// How to run a stand-in.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; None picks a free port on 127.0.0.1.
    pub listen: Option<SocketAddr>,
    /// How long after a spec change the controller makes workloads ready (or fail).
    /// Zero runs the controller inside the write request itself, so the object is ready
    /// by the time the client reads it again: helm 3's `--wait` (a 2 s poll) then
    /// succeeds on its first poll. The default, 300 ms, lets watch clients see an object
    /// go from not ready to ready, as on a cluster.
    pub ready_delay: Duration,
    /// Print one line per request on stderr.
    pub log_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { listen: None, ready_delay: Duration::from_millis(300), log_requests: false }
    }
}

/// A running stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Binds, then serves on a thread of its own; returns once it is listening.
    pub fn start(opts: Options) -> std::io::Result<StandIn> {
        let listen = opts.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(opts.ready_delay, opts.log_requests));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-standin")
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let served = shared.clone();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let thread = std::thread::Builder::new().name("kube-standin".into()).spawn(move || {
            runtime.block_on(server::serve(listener, served, rx));
            // Open watch streams and keep-alive connections end with the runtime.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        Ok(StandIn { addr, shared, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for this stand-in: context `standin`, namespace `default`, a
    /// dummy bearer token (plain HTTP; any token is accepted). The file appears whole
    /// (written aside, then renamed), so a process polling for it never reads half of it.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        write_kubeconfig_file(path, &self.url())
    }

    /// Denies the requests `rule` names from now on, with the `403 Forbidden` a
    /// kube-apiserver gives a user lacking that permission; `kubectl auth can-i` answers
    /// from the same rules. Watches already open are not cut.
    pub fn deny(&self, rule: DenyRule) -> DenyId {
        self.shared.denials().add(rule)
    }

    /// Lifts a rule [`deny`](Self::deny) returned; false if it was no longer in force.
    pub fn allow(&self, id: DenyId) -> bool {
        self.shared.denials().remove(id)
    }

    /// Lifts every deny rule.
    pub fn clear_denials(&self) {
        self.shared.denials().clear();
    }

    /// A stored object, as the API would return it.
    pub fn get(&self, api_version: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let rt = resources::lookup(api_version, plural)?;
        self.shared.lock().get(&ObjKey::new(rt, namespace.unwrap_or_default(), name)).cloned()
    }

    /// Stored objects of a type, in one namespace or (None) all of them, by name.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(rt) = resources::lookup(api_version, plural) else { return Vec::new() };
        self.shared.lock().list(&rt.id(), namespace).into_iter().cloned().collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes [`kubeconfig`]`(url)` to `path` aside, then renames it into place, so a process
/// polling for the file never reads half of it.
pub(crate) fn write_kubeconfig_file(path: &Path, url: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, kubeconfig(url))?;
    std::fs::rename(&tmp, path)
}

/// The kubeconfig text for a stand-in at `url`.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {url}
users:
- name: standin
  user:
    token: standin-token
contexts:
- name: standin
  context:
    cluster: standin
    user: standin
    namespace: default
current-context: standin
"
    )
}
