//! The fault proxy on the wire and in front of the stand-in: raw TCP (opaque bytes,
//! pause, RST, blackhole, delay) against an echo server, then the real kubectl and
//! helm 3.19.0 / 4.1.4 through it in each mode and with request-aware faults.

#[macro_use]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Bed, Kubectl, chart, configmap, namespace};
use kube_standin::fault::{Fault, FaultProxy, RequestMatch};
use kube_standin::testing::HelmVersion;
use kube_standin::{Options, StandIn};
use serde_json::json;

/// A TCP echo server on 127.0.0.1 counting the connections it accepted.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = [0; 8192];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Echo { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Writes `msg` and reads back as many bytes.
fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// Whether nothing arrives within `wait`.
fn silent_for(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0; 64];
    let silent = matches!(s.read(&mut buf), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    silent
}

fn read_error(s: &mut TcpStream) -> ErrorKind {
    let mut buf = [0; 64];
    match s.read(&mut buf) {
        Ok(n) => panic!("read {n} bytes where the connection should have been reset"),
        Err(e) => e.kind(),
    }
}

#[test]
fn opaque_bytes_pass_untouched_both_ways() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut s = connect(&proxy);
    // A TLS ClientHello prefix followed by a megabyte of every byte value.
    let mut msg = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    msg.extend((0..1 << 20).map(|i| (i % 251) as u8));
    let writer = {
        let mut w = s.try_clone().unwrap();
        let msg = msg.clone();
        std::thread::spawn(move || w.write_all(&msg).unwrap())
    };
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == msg, "bytes changed on the way");
    assert!(proxy.requests().is_empty(), "not HTTP, so no request: {:?}", proxy.requests());
}

#[test]
fn pause_holds_open_and_new_connections_until_pass() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut open = connect(&proxy);
    assert_eq!(round_trip(&mut open, b"before"), b"before");

    proxy.pause();
    open.write_all(b"held").unwrap();
    let mut new = connect(&proxy);
    new.write_all(b"new").unwrap();
    assert!(silent_for(&mut open, Duration::from_millis(400)), "bytes moved during a pause");
    assert!(silent_for(&mut new, Duration::from_millis(100)));
    assert_eq!(echo.accepted(), 1, "a connection opened during the pause reached the upstream");

    proxy.pass();
    let mut buf = [0; 4];
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"held");
    let mut buf = [0; 3];
    new.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new");
    assert_eq!(echo.accepted(), 2);
}

#[test]
fn reset_aborts_open_connections_with_rst_then_passes() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut open = connect(&proxy);
    assert_eq!(round_trip(&mut open, b"x"), b"x");
    proxy.pause();
    let mut held = connect(&proxy);
    held.write_all(b"held").unwrap();

    proxy.reset();
    assert_eq!(read_error(&mut open), ErrorKind::ConnectionReset);
    assert_eq!(read_error(&mut held), ErrorKind::ConnectionReset, "a held connection is aborted too");
    let mut later = connect(&proxy);
    assert_eq!(round_trip(&mut later, b"after"), b"after", "the proxy passes after a reset");
}

#[test]
fn blackhole_swallows_bytes_then_resets_what_it_touched() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut idle = connect(&proxy);
    let mut used = connect(&proxy);
    assert_eq!(round_trip(&mut idle, b"1"), b"1");
    assert_eq!(round_trip(&mut used, b"2"), b"2");

    let started = Instant::now();
    proxy.blackhole_for(Duration::from_millis(800));
    used.write_all(b"lost").unwrap();
    let mut opened = connect(&proxy);
    opened.write_all(b"also lost").unwrap();
    assert!(silent_for(&mut used, Duration::from_millis(300)), "a blackhole answered");
    assert_eq!(echo.accepted(), 2, "a connection opened in the blackhole reached the upstream");

    assert_eq!(read_error(&mut used), ErrorKind::ConnectionReset);
    assert_eq!(read_error(&mut opened), ErrorKind::ConnectionReset);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(800), "reset after {took:?}, before the blackhole ended");
    assert!(took < Duration::from_secs(3), "reset only after {took:?}");
    assert_eq!(round_trip(&mut idle, b"still here"), b"still here", "an idle connection survives");
    assert_eq!(round_trip(&mut connect(&proxy), b"new"), b"new");
}

#[test]
fn delay_slows_every_chunk_until_removed() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut s = connect(&proxy);
    proxy.delay(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(round_trip(&mut s, b"slow"), b"slow");
    // One delay on the way in, one on the way back.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    proxy.delay(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(round_trip(&mut s, b"fast"), b"fast");
    assert!(started.elapsed() < Duration::from_millis(150), "{:?}", started.elapsed());
}

/// Two requests on one keep-alive connection: the first, with a chunked body, is
/// answered by the proxy; the second reaches the stand-in.
#[test]
fn status_answers_one_request_and_keeps_the_connection() {
    let standin = StandIn::start(Options::default()).unwrap();
    let proxy = FaultProxy::start(standin.addr()).unwrap();
    proxy.on_request(RequestMatch::new("POST", "/configmaps"), Fault::Status(503), 1);
    let mut s = connect(&proxy);
    let body = r#"{"metadata":{"name":"x"}}"#;
    let post = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    s.write_all(post.as_bytes()).unwrap();
    let (head, status) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server is currently unable to handle the request", "reason": "ServiceUnavailable", "code": 503})
    );
    s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, version) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(version["gitVersion"], "v1.33.0+standin");
    assert!(standin.get("v1", "configmaps", Some("default"), "x").is_none(), "the answered POST was forwarded");
    let seen = proxy.requests();
    assert_eq!(
        seen,
        [("POST".to_string(), "/api/v1/namespaces/default/configmaps".to_string()), ("GET".into(), "/version".into())]
    );
}

/// Reads one response with a Content-Length body: its head and its JSON body.
fn read_response(s: &mut TcpStream) -> (String, serde_json::Value) {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a Content-Length");
    let mut body = vec![0; length];
    s.read_exact(&mut body).unwrap();
    (head, serde_json::from_slice(&body).unwrap())
}

/// A stand-in, a proxy in front of it and kubectl talking to the proxy, with namespace
/// `bsr` and the ConfigMap `helm-safe-upgrade.bsr` (value "1") in place.
struct Proxied {
    standin: StandIn,
    proxy: FaultProxy,
    kubectl: Kubectl,
}

const LOCK: &str = "helm-safe-upgrade.bsr";
const LOCK_PATH: &str = "/api/v1/namespaces/bsr/configmaps/helm-safe-upgrade.bsr";

impl Proxied {
    fn new() -> Self {
        let standin = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
        let proxy = FaultProxy::start(standin.addr()).unwrap();
        let kubectl = Kubectl::at(&proxy.url());
        kubectl.ok_with_input(&["create", "-f", "-"], &namespace("bsr"));
        kubectl.ok_with_input(&["create", "-f", "-"], &configmap("bsr", LOCK, "1"));
        proxy.clear_requests();
        Proxied { standin, proxy, kubectl }
    }

    fn lock_value(&self) -> serde_json::Value {
        self.standin.get("v1", "configmaps", Some("bsr"), LOCK).expect("the lock ConfigMap")["data"]["value"].clone()
    }

    /// How many requests with `method` to `path` the proxy saw.
    fn seen(&self, method: &str, path: &str) -> usize {
        self.proxy.requests().iter().filter(|(m, p)| m == method && p == path).count()
    }
}

/// Waits up to `limit` for `child` to exit; None (and the child killed) if it did not.
fn exited_within(mut child: Child, limit: Duration) -> Option<Output> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// kubectl's report of a `--request-timeout` running out, which reads either
/// `Unable to connect to the server: context deadline exceeded (Client.Timeout exceeded
/// while awaiting headers)`, `… context deadline exceeded` or `… net/http: request
/// canceled (Client.Timeout exceeded while awaiting headers)` depending on where Go's
/// client noticed it.
fn timed_out(stderr: &str) -> bool {
    stderr.starts_with("Unable to connect to the server: ")
        && (stderr.contains("context deadline exceeded") || stderr.contains("Client.Timeout exceeded"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn pause_holds_kubectl_until_pass() {
    let p = Proxied::new();
    p.proxy.pause();
    let started = Instant::now();
    let err = p.kubectl.fails(&["--request-timeout=1s", "get", "configmaps", "-n", "bsr"]);
    assert!(timed_out(&err), "{err}");
    let held = p.kubectl.spawn(&["get", "configmap", LOCK, "-n", "bsr", "-o", "name"]);
    std::thread::sleep(Duration::from_millis(800));
    p.proxy.pass();
    let out = exited_within(held, Duration::from_secs(10)).expect("kubectl still held after pass");
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "configmap/helm-safe-upgrade.bsr");
    assert!(took >= Duration::from_millis(1800), "kubectl returned after {took:?}, during the pause");
}

#[test]
fn reset_fails_an_open_watch_and_later_requests_pass() {
    let p = Proxied::new();
    let watch = p.kubectl.spawn(&["get", "--raw", "/api/v1/namespaces/bsr/configmaps?watch=true"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.seen("GET", "/api/v1/namespaces/bsr/configmaps") == 0 {
        assert!(Instant::now() < deadline, "the watch never reached the proxy");
        std::thread::sleep(Duration::from_millis(25));
    }
    // Give the stand-in time to answer, so the watch is streaming when it is cut.
    std::thread::sleep(Duration::from_millis(300));
    p.proxy.reset();
    let out = exited_within(watch, Duration::from_secs(3)).expect("the watch outlived the reset");
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains(r#""type":"ADDED""#), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("connection reset by peer"), "{}", text(&out.stderr));
    assert_eq!(
        p.kubectl.ok(&["get", "configmap", LOCK, "-n", "bsr", "-o", "name"]).trim(),
        "configmap/helm-safe-upgrade.bsr"
    );
}

#[test]
fn blackhole_times_requests_out_then_recovers() {
    let p = Proxied::new();
    let direct = Kubectl::at(&p.standin.url());
    let watch = p.kubectl.spawn(&["get", "--raw", "/api/v1/namespaces/bsr/configmaps?watch=true"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.seen("GET", "/api/v1/namespaces/bsr/configmaps") == 0 {
        assert!(Instant::now() < deadline, "the watch never reached the proxy");
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    p.proxy.blackhole_for(Duration::from_millis(2500));
    p.proxy.clear_requests();
    let err = p.kubectl.fails(&["--request-timeout=1s", "get", "configmaps", "-n", "bsr"]);
    assert!(timed_out(&err), "{err}");
    assert!(p.proxy.requests().is_empty(), "a request got through the blackhole: {:?}", p.proxy.requests());
    // An event for the open watch is lost in the blackhole: its connection is reset.
    direct.ok_with_input(&["create", "-f", "-"], &configmap("bsr", "during-the-outage", "x"));
    let out = exited_within(watch, Duration::from_secs(5)).expect("the watch outlived the blackhole");
    assert!(started.elapsed() >= Duration::from_millis(2500), "the watch was cut after {:?}", started.elapsed());
    assert!(!text(&out.stdout).contains("during-the-outage"), "an event crossed the blackhole");
    assert!(text(&out.stderr).contains("connection reset by peer"), "{}", text(&out.stderr));

    let names = p.kubectl.ok(&["get", "configmaps", "-n", "bsr", "-o", "name"]);
    assert!(names.contains("configmap/during-the-outage"), "{names}");
}

#[test]
fn reset_of_one_put_fails_one_replace() {
    let p = Proxied::new();
    p.proxy.on_request(RequestMatch::new("PUT", LOCK_PATH), Fault::Reset, 1);
    let err = p.kubectl.fails_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert!(
        err.contains(r#"error when replacing "STDIN": Put ""#) && err.contains("connection reset by peer"),
        "{err}"
    );
    assert_eq!(p.lock_value(), "1", "the reset PUT reached the stand-in");
    let out = p.kubectl.ok_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert_eq!(out.trim(), "configmap/helm-safe-upgrade.bsr replaced");
    assert_eq!(p.lock_value(), "2");
    assert_eq!(p.seen("PUT", LOCK_PATH), 2, "{:?}", p.proxy.requests());
}

/// The PUT reaches the stand-in, its answer never reaches kubectl: the write happened,
/// the client saw a reset.
#[test]
fn reset_of_a_response_hides_a_write_that_happened() {
    let p = Proxied::new();
    p.proxy.on_request(RequestMatch::new("PUT", LOCK_PATH), Fault::ResetResponse, 1);
    let err = p.kubectl.fails_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert!(err.contains("connection reset by peer"), "{err}");
    assert_eq!(p.lock_value(), "2", "the PUT did not reach the stand-in");
    assert_eq!(p.seen("PUT", LOCK_PATH), 1, "{:?}", p.proxy.requests());
    let out = p.kubectl.ok(&["get", "configmap", LOCK, "-n", "bsr", "-o", "jsonpath={.data.value}"]);
    assert_eq!(out, "2");
}

#[test]
fn status_faults_answer_in_place_of_the_api() {
    let p = Proxied::new();
    p.proxy.on_request(RequestMatch::new("GET", LOCK_PATH), Fault::Status(503), 1);
    let err = p.kubectl.fails(&["get", "configmap", LOCK, "-n", "bsr"]);
    assert_eq!(
        err.trim(),
        "Error from server (ServiceUnavailable): the server is currently unable to handle the request"
    );
    p.kubectl.ok(&["get", "configmap", LOCK, "-n", "bsr"]);

    p.proxy.on_request(RequestMatch::new("PUT", LOCK_PATH), Fault::Status(504), 1);
    let err = p.kubectl.fails_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert_eq!(
        err.trim(),
        r#"Error from server (Timeout): error when replacing "STDIN": Timeout: request did not complete within requested timeout - context deadline exceeded"#
    );
    assert_eq!(p.lock_value(), "1", "the answered PUT reached the stand-in");

    p.proxy.on_request(RequestMatch::any_method("/configmaps"), Fault::Status(500), 1);
    let err = p.kubectl.fails(&["delete", "configmap", LOCK, "-n", "bsr"]);
    assert!(err.contains("Error from server (InternalError): Internal error occurred"), "{err}");
    assert!(p.standin.get("v1", "configmaps", Some("bsr"), LOCK).is_some());
    p.kubectl.ok(&["delete", "configmap", LOCK, "-n", "bsr"]);
    assert!(p.standin.get("v1", "configmaps", Some("bsr"), LOCK).is_none());
}

/// A request swallowed by a request blackhole: the connection is reset after the hold,
/// and client-go retries a GET that met a reset, so kubectl still succeeds, late.
#[test]
fn blackholed_request_is_held_then_reset() {
    let p = Proxied::new();
    p.proxy.on_request(RequestMatch::new("GET", LOCK_PATH), Fault::Blackhole(Duration::from_millis(1200)), 1);
    let started = Instant::now();
    let out = p.kubectl.ok(&["get", "configmap", LOCK, "-n", "bsr", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/helm-safe-upgrade.bsr");
    assert!(started.elapsed() >= Duration::from_millis(1200), "answered after {:?}", started.elapsed());
    assert_eq!(p.seen("GET", LOCK_PATH), 2, "{:?}", p.proxy.requests());
}

for_each_helm!(helm_install_and_upgrade_wait_through_the_proxy);
fn helm_install_and_upgrade_wait_through_the_proxy(v: HelmVersion) {
    let (bed, proxy) = Bed::behind_proxy(v);
    bed.helm_ok(&["install", "demo", &chart("demo-v1")]);
    bed.helm_ok(&["upgrade", "demo", &chart("demo-v2"), "--wait", "--timeout", "30s"]);
    assert_eq!(bed.statuses("demo"), ["superseded", "deployed"], "{v}");
    assert_eq!(bed.configmap_data("demo-config"), json!({"message": "hello-v2", "added": "since-v2"}), "{v}");
    let dep = bed.must("apps/v1", "deployments", "demo-web");
    assert_eq!(dep["status"]["updatedReplicas"], 1, "{v}: --wait returned before the rollout");
    let seen = proxy.requests();
    let release_writes = seen.iter().filter(|(m, p)| m == "POST" && p == "/api/v1/namespaces/default/secrets").count();
    assert_eq!(release_writes, 2, "{v}: release records not written through the proxy: {seen:?}");
    assert!(seen.iter().any(|(m, p)| m == "GET" && p.contains("/deployments")), "{v}: no wait through the proxy");
}
