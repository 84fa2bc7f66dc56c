//! A loopback TCP proxy that holds, cuts, swallows, slows or answers in place of the
//! Kubernetes API, for fault-injection tests: helm and kubectl talk to [`FaultProxy`]
//! instead of the API server, and the test thread switches what the proxy does with
//! their bytes at any moment. The modes ([`FaultProxy::pause`], [`FaultProxy::reset`],
//! [`FaultProxy::blackhole_for`], [`FaultProxy::delay`]) work on raw TCP, so the proxy
//! stands in front of the stand-in or of a real API server alike. Request-aware faults
//! ([`FaultProxy::on_request`]) and the request log parse plain HTTP/1.1 request heads,
//! which is what client-go speaks to an `http://` server; a connection that is not
//! HTTP/1.1 (TLS, HTTP/2) passes through untouched and is never matched. Responses are
//! never parsed, so watches stream as they would without the proxy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{Notify, oneshot, watch};

use crate::request_stream::{Piece, RequestHead, RequestStream};

/// How long [`FaultProxy::reset`] waits for the connections it aborts to be gone.
const RESET_WAIT: Duration = Duration::from_secs(5);
/// Bytes read from one side before they are passed on.
const CHUNK: usize = 16 * 1024;

/// Which requests a request-aware fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMatch {
    /// The HTTP method (`GET`, `PUT`, …, compared without regard to case); None: any.
    pub method: Option<String>,
    /// A substring of the request target as sent, path and query string
    /// (`/api/v1/namespaces/bsr/configmaps/x`, `watch=true`); empty matches every request.
    pub path_contains: String,
}

impl RequestMatch {
    /// Requests with `method` whose target contains `path_contains`.
    pub fn new(method: &str, path_contains: &str) -> Self {
        RequestMatch { method: Some(method.to_string()), path_contains: path_contains.to_string() }
    }

    /// Requests of any method whose target contains `path_contains`.
    pub fn any_method(path_contains: &str) -> Self {
        RequestMatch { method: None, path_contains: path_contains.to_string() }
    }

    fn matches(&self, head: &RequestHead) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&head.method))
            && head.target.contains(&self.path_contains)
    }
}

/// What happens to a matched request. Only [`Fault::ResetResponse`] lets it reach the
/// upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Abort the connection with a TCP RST instead of forwarding the request.
    Reset,
    /// Swallow the request and everything the client sends after it on that connection,
    /// answer nothing, then reset the connection once the duration is over.
    Blackhole(Duration),
    /// Answer the request with a Kubernetes `Status` error of this HTTP code (500, 503,
    /// 504, …) without forwarding it; the connection stays open for the next request.
    /// The code must be a valid HTTP status (100–999).
    Status(u16),
    /// Forward the request, then abort the connection with a TCP RST when its response
    /// starts instead of passing the response on: the API did the work, the client only
    /// sees a reset (a write that happened although the client cannot know it did).
    ResetResponse,
}

/// A request-aware fault waiting for its matches.
#[derive(Debug)]
struct RequestRule {
    matcher: RequestMatch,
    fault: Fault,
    left: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Pass,
    Pause,
    Blackhole { until: Instant },
}

/// What every connection reads before it moves a byte.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Flow {
    mode: Mode,
    delay: Duration,
}

impl Flow {
    /// The end of the blackhole in force now, if one is.
    fn blackhole_until(&self) -> Option<Instant> {
        match self.mode {
            Mode::Blackhole { until } if Instant::now() < until => Some(until),
            _ => None,
        }
    }
}

/// Told by [`FaultProxy::reset`] to abort; the connection drops the sender once its
/// sockets are gone, which is what `reset` waits for.
type KillSignal = oneshot::Sender<std::sync::mpsc::Sender<()>>;

/// State the test thread and the proxy's runtime share.
#[derive(Debug)]
struct Control {
    flow: watch::Sender<Flow>,
    open: Mutex<OpenConnections>,
    rules: Mutex<Vec<RequestRule>>,
    seen: Mutex<Vec<(String, String)>>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    next_id: u64,
    kill: HashMap<u64, KillSignal>,
}

/// Locks ignoring poison: a panicking test thread must not take the proxy down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Control {
    fn set_mode(&self, mode: Mode) {
        self.flow.send_modify(|f| f.mode = mode);
    }

    /// Logs a request and takes one use of the first rule matching it.
    fn on_head(&self, head: &RequestHead) -> Option<Fault> {
        lock(&self.seen).push((head.method.clone(), head.path().to_string()));
        let mut rules = lock(&self.rules);
        let i = rules.iter().position(|r| r.matcher.matches(head))?;
        let fault = rules[i].fault;
        rules[i].left -= 1;
        if rules[i].left == 0 {
            rules.remove(i);
        }
        Some(fault)
    }
}

/// Removes a connection from the open set when its task ends, however it ends.
struct Registered {
    control: Arc<Control>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.control.open).kill.remove(&self.id);
    }
}

/// A running fault proxy on 127.0.0.1; dropping it stops it (open connections close).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    control: Arc<Control>,
    /// Asks the accept loop to take every connection the kernel has completed but the
    /// loop not yet accepted; it answers once they are registered.
    catch_up: tokio::sync::mpsc::UnboundedSender<std::sync::mpsc::Sender<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`,
    /// passing bytes both ways until told otherwise; returns once it is listening.
    pub fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (flow, _) = watch::channel(Flow { mode: Mode::Pass, delay: Duration::ZERO });
        let control =
            Arc::new(Control { flow, open: Mutex::default(), rules: Mutex::default(), seen: Mutex::default() });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // The same socket, for accepting without waiting on the reactor (see `serve`).
        let backlog = listener.try_clone()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (tx, rx) = oneshot::channel();
        let (catch_up, catch_up_rx) = tokio::sync::mpsc::unbounded_channel();
        let served = control.clone();
        let thread = std::thread::Builder::new().name("fault-proxy".into()).spawn(move || {
            runtime.block_on(serve(listener, backlog, upstream, served, catch_up_rx, rx));
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        Ok(FaultProxy { addr, upstream, control, catch_up, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig pointing at the proxy, of the same shape as the stand-in's
    /// ([`crate::kubeconfig`]), whole or not at all.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        crate::write_kubeconfig_file(path, &self.url())
    }

    /// Forwards both ways (the default). Ends a pause: held bytes move on, none lost.
    pub fn pass(&self) {
        self.control.set_mode(Mode::Pass);
    }

    /// Holds every connection, open or new (new ones are accepted, then held before the
    /// upstream is dialled): no byte moves in either direction until [`pass`](Self::pass).
    /// Nothing is lost; unread bytes wait in the kernel's buffers. An API server that
    /// stops answering for a while.
    pub fn pause(&self) {
        self.control.set_mode(Mode::Pause);
    }

    /// Aborts every connection open now with a TCP RST to both the client and the
    /// upstream (SO_LINGER 0), then passes again, new connections included; a pause or
    /// blackhole in force ends. Returns once the aborted connections are gone.
    pub fn reset(&self) {
        // A client whose connect() returned is connected, accepted by the proxy or not.
        let (accepted, caught_up) = std::sync::mpsc::channel();
        if self.catch_up.send(accepted).is_ok() {
            let _ = caught_up.recv_timeout(RESET_WAIT);
        }
        let (ack, gone) = std::sync::mpsc::channel();
        let kills: Vec<KillSignal> = lock(&self.control.open).kill.drain().map(|(_, k)| k).collect();
        for kill in kills {
            // A connection that already ended drops the signal, and with it this sender.
            let _ = kill.send(ack.clone());
        }
        drop(ack);
        // Every connection drops its sender once aborted: then `recv` reports disconnection.
        let _ = gone.recv_timeout(RESET_WAIT);
        self.control.set_mode(Mode::Pass);
    }

    /// For `duration`, the API is unreachable and packets are lost: connections are still
    /// accepted, and bytes are read from both sides and dropped (never forwarded, never
    /// answered); new connections do not reach the upstream. When the time is up, every
    /// connection opened during it or that lost a byte to it is reset, and the proxy
    /// passes again; connections that stayed idle through it carry on.
    pub fn blackhole_for(&self, duration: Duration) {
        // Capped so the end is a representable instant: a year is forever for a test.
        let until = Instant::now() + duration.min(Duration::from_secs(365 * 24 * 3600));
        self.control.set_mode(Mode::Blackhole { until });
    }

    /// Adds `latency` before every chunk forwarded, in both directions, to widen race
    /// windows; `Duration::ZERO` removes it. Independent of the mode.
    pub fn delay(&self, latency: Duration) {
        self.control.flow.send_modify(|f| f.delay = latency);
    }

    /// Applies `fault` to the next `times` HTTP/1.1 requests that `matcher` matches;
    /// rules are tried in the order they were added.
    pub fn on_request(&self, matcher: RequestMatch, fault: Fault, times: usize) {
        if times > 0 {
            lock(&self.control.rules).push(RequestRule { matcher, fault, left: times });
        }
    }

    /// Forgets request-aware faults that have not fired yet.
    pub fn clear_request_faults(&self) {
        lock(&self.control.rules).clear();
    }

    /// Method and path (without the query string) of every HTTP/1.1 request seen so far,
    /// in order, faulted ones included.
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.control.seen).clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        lock(&self.control.seen).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts until `shutdown` fires. On a catch-up request, accepts every connection
/// waiting in the backlog, so that `reset` reaches all connections open when it is called:
/// through `backlog`, the same socket used directly (non-blocking), because the reactor
/// may not have reported the newest ones yet.
async fn serve(
    listener: tokio::net::TcpListener,
    backlog: std::net::TcpListener,
    upstream: SocketAddr,
    control: Arc<Control>,
    mut catch_up: tokio::sync::mpsc::UnboundedReceiver<std::sync::mpsc::Sender<()>>,
    shutdown: oneshot::Receiver<()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((client, _)) => start_connection(client, upstream, &control),
                Err(_) => {
                    // Out of descriptors, say: let connections close rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(done) = catch_up.recv() => {
                while let Ok((client, _)) = backlog.accept() {
                    if let Ok(client) = client.set_nonblocking(true).and_then(|()| TcpStream::from_std(client)) {
                        start_connection(client, upstream, &control);
                    }
                }
                let _ = done.send(());
            }
            _ = &mut shutdown => return,
        }
    }
}

/// Registers a connection (so `reset` can reach it), then proxies it on a task of its own.
fn start_connection(client: TcpStream, upstream: SocketAddr, control: &Arc<Control>) {
    let _ = client.set_nodelay(true);
    let (kill_tx, kill_rx) = oneshot::channel();
    let registered = {
        let mut open = lock(&control.open);
        let id = open.next_id;
        open.next_id += 1;
        open.kill.insert(id, kill_tx);
        Registered { control: control.clone(), id }
    };
    tokio::spawn(connection(client, upstream, registered, kill_rx));
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Both directions reached end of stream: close normally.
    Closed,
    /// Close with a TCP RST on both sides.
    Abort,
}

/// One proxied connection, from accept to close.
async fn connection(
    mut client: TcpStream,
    upstream_addr: SocketAddr,
    registered: Registered,
    kill: oneshot::Receiver<std::sync::mpsc::Sender<()>>,
) {
    let control = registered.control.clone();
    // Notified when the connection loses a byte to a blackhole, or opens during one.
    let lost = Notify::new();
    let mut upstream = None;
    let mut reset_ack = None;
    let outcome = tokio::select! {
        ack = kill => {
            reset_ack = ack.ok();
            Outcome::Abort
        }
        _ = reset_after_blackhole(control.flow.subscribe(), &lost) => Outcome::Abort,
        o = proxy(&mut client, &mut upstream, upstream_addr, &control, &lost) => o,
    };
    if outcome == Outcome::Abort {
        let _ = client.set_zero_linger();
        if let Some(u) = &upstream {
            let _ = u.set_zero_linger();
        }
    }
    drop(client);
    drop(upstream);
    drop(registered);
    // Last: `reset` returns once every aborted connection has dropped this.
    drop(reset_ack);
}

/// Returns when a connection that lost bytes to a blackhole must be reset: once the
/// blackhole is over (its time is up, or the mode changed).
async fn reset_after_blackhole(mut flow: watch::Receiver<Flow>, lost: &Notify) {
    lost.notified().await;
    loop {
        let Some(until) = flow.borrow_and_update().blackhole_until() else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            changed = flow.changed() => if changed.is_err() { std::future::pending::<()>().await },
        }
    }
}

/// Waits while the proxy is paused; returns the flow in force once it is not.
async fn unpaused(flow: &mut watch::Receiver<Flow>) -> Flow {
    loop {
        let now = *flow.borrow_and_update();
        if now.mode != Mode::Pause {
            return now;
        }
        if flow.changed().await.is_err() {
            // The proxy is stopping; its runtime drops this task.
            std::future::pending::<()>().await;
        }
    }
}

/// Whether a chunk just read may be forwarded: held through a pause, delayed, and
/// dropped (the connection marked as having lost bytes) in a blackhole.
async fn admit(flow: &mut watch::Receiver<Flow>, lost: &Notify) -> bool {
    let now = unpaused(flow).await;
    if now.blackhole_until().is_some() {
        lost.notify_one();
        return false;
    }
    if now.delay.is_zero() {
        return true;
    }
    tokio::time::sleep(now.delay).await;
    // A pause or blackhole that began during the delay applies to this chunk too.
    let now = unpaused(flow).await;
    if now.blackhole_until().is_some() {
        lost.notify_one();
        return false;
    }
    true
}

async fn proxy(
    client: &mut TcpStream,
    upstream_slot: &mut Option<TcpStream>,
    upstream_addr: SocketAddr,
    control: &Control,
    lost: &Notify,
) -> Outcome {
    let mut flow = control.flow.subscribe();
    // The upstream is dialled only once the proxy passes: during a pause the new
    // connection is held; during a blackhole the API is unreachable.
    if unpaused(&mut flow).await.blackhole_until().is_some() {
        lost.notify_one();
        return swallow(client).await;
    }
    let Ok(upstream) = TcpStream::connect(upstream_addr).await else { return Outcome::Abort };
    let _ = upstream.set_nodelay(true);
    let upstream = upstream_slot.insert(upstream);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    // Shared: injected `Status` answers go to the client between upstream chunks.
    let client_write = tokio::sync::Mutex::new(client_write);
    // Set when a forwarded request's response must be cut off (`Fault::ResetResponse`).
    let cut_response = AtomicBool::new(false);
    let requests = client_to_upstream(client_read, upstream_write, &client_write, &cut_response, control, lost);
    let responses = upstream_to_client(upstream_read, &client_write, &cut_response, control, lost);
    tokio::pin!(requests, responses);
    let (mut requests_done, mut responses_done) = (false, false);
    while !(requests_done && responses_done) {
        let outcome = tokio::select! {
            o = &mut requests, if !requests_done => {
                requests_done = true;
                o
            }
            o = &mut responses, if !responses_done => {
                responses_done = true;
                o
            }
        };
        if outcome == Outcome::Abort {
            return Outcome::Abort;
        }
    }
    Outcome::Closed
}

/// Reads and drops what the client sends, and never ends by itself: the end of the
/// blackhole (or a `reset`) aborts the connection, even when the client left before.
async fn swallow(client: &mut TcpStream) -> Outcome {
    let mut buf = vec![0; CHUNK];
    while let Ok(1..) = client.read(&mut buf).await {}
    std::future::pending().await
}

/// Returns when the end of one direction's stream may be passed on as a FIN, like any
/// byte: after a pause. Lost in a blackhole, it never returns: the connection is reset
/// when the blackhole ends.
async fn end_of_stream_admitted(flow: &mut watch::Receiver<Flow>, lost: &Notify) {
    if !admit(flow, lost).await {
        std::future::pending::<()>().await;
    }
}

async fn upstream_to_client(
    mut from: ReadHalf<'_>,
    to: &tokio::sync::Mutex<WriteHalf<'_>>,
    cut_response: &AtomicBool,
    control: &Control,
    lost: &Notify,
) -> Outcome {
    let mut flow = control.flow.subscribe();
    let mut buf = vec![0; CHUNK];
    loop {
        unpaused(&mut flow).await;
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                end_of_stream_admitted(&mut flow, lost).await;
                let _ = to.lock().await.shutdown().await;
                return Outcome::Closed;
            }
            Ok(n) => n,
            Err(_) => return Outcome::Abort,
        };
        // Clients do not pipeline: the first bytes after a cut request are its response.
        if cut_response.load(Ordering::SeqCst) {
            return Outcome::Abort;
        }
        if !admit(&mut flow, lost).await {
            continue;
        }
        if to.lock().await.write_all(&buf[..n]).await.is_err() {
            return Outcome::Abort;
        }
    }
}

async fn client_to_upstream(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    client: &tokio::sync::Mutex<WriteHalf<'_>>,
    cut_response: &AtomicBool,
    control: &Control,
    lost: &Notify,
) -> Outcome {
    let mut flow = control.flow.subscribe();
    let mut buf = vec![0; CHUNK];
    let mut stream = RequestStream::default();
    // The current request is answered here, so its body is dropped, then the answer sent.
    let mut answer: Option<Vec<u8>> = None;
    loop {
        unpaused(&mut flow).await;
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                end_of_stream_admitted(&mut flow, lost).await;
                let _ = to.shutdown().await;
                return Outcome::Closed;
            }
            Ok(n) => n,
            Err(_) => return Outcome::Abort,
        };
        if !admit(&mut flow, lost).await {
            continue;
        }
        for piece in stream.feed(&buf[..n]) {
            match piece {
                Piece::Head(head) => match control.on_head(&head) {
                    fault @ (None | Some(Fault::ResetResponse)) => {
                        cut_response.store(fault.is_some(), Ordering::SeqCst);
                        if to.write_all(&head.raw).await.is_err() {
                            return Outcome::Abort;
                        }
                    }
                    Some(Fault::Reset) => return Outcome::Abort,
                    Some(Fault::Blackhole(hold)) => return swallow_for(&mut from, hold).await,
                    Some(Fault::Status(code)) => answer = Some(status_response(code)),
                },
                Piece::Data(bytes) => {
                    if answer.is_none() && to.write_all(&bytes).await.is_err() {
                        return Outcome::Abort;
                    }
                }
                Piece::End => {
                    if let Some(response) = answer.take()
                        && client.lock().await.write_all(&response).await.is_err()
                    {
                        return Outcome::Abort;
                    }
                }
            }
        }
    }
}

/// Reads and drops what the client sends for `hold`, then asks for an abort.
async fn swallow_for(from: &mut ReadHalf<'_>, hold: Duration) -> Outcome {
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    let mut buf = vec![0; CHUNK];
    loop {
        tokio::select! {
            _ = &mut deadline => return Outcome::Abort,
            r = from.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) {
                // The client gave up first; wait out the hold regardless, as a lost
                // packet would not be noticed sooner.
                deadline.as_mut().await;
                return Outcome::Abort;
            },
        }
    }
}

/// The reason and message kube-apiserver gives with an HTTP code.
fn status_reason(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => ("BadRequest", "the server rejected our request for an unknown reason"),
        401 => ("Unauthorized", "Unauthorized"),
        403 => ("Forbidden", "forbidden: the fault proxy denied the request"),
        404 => ("NotFound", "the server could not find the requested resource"),
        409 => {
            ("Conflict", "the object has been modified; please apply your changes to the latest version and try again")
        }
        410 => ("Expired", "too old resource version"),
        422 => ("Invalid", "the server rejected our request due to an error in our request"),
        429 => ("TooManyRequests", "Too many requests, please try again later."),
        500 => ("InternalError", "Internal error occurred: the fault proxy failed the request"),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504 => ("Timeout", "Timeout: request did not complete within requested timeout - context deadline exceeded"),
        _ => ("", "an error on the server has prevented the request from succeeding"),
    }
}

/// An HTTP/1.1 response carrying a Kubernetes `Status` error of `code`. No
/// `Retry-After`: client-go retries only when it is present, so each answer is one
/// failure the client sees.
fn status_response(code: u16) -> Vec<u8> {
    let (reason, message) = status_reason(code);
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
    .to_string();
    let phrase = hyper::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
