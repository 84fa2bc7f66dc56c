//! A small blocking HTTP/1.1 server for loopback test servers: one accept thread, one
//! thread per connection, keep-alive, `TCP_NODELAY`, every response written with a single
//! `write_all` (headers and body together; split writes plus delayed ACKs cost ~40 ms a
//! request, see shared/kube-standin.md). HEAD is answered like GET without the body.
//! It owns transport only; routing and auth belong to the servers built on it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, …
    pub method: String,
    /// Percent-decoded path without the query.
    pub path: String,
    /// Decoded query parameters in order (a key may repeat, e.g. `scope`).
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body (`Content-Length` only; no chunked requests).
    pub body: Vec<u8>,
}

impl Request {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The first query parameter with this name.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers besides Content-Length (added by the server).
    pub headers: Vec<(String, String)>,
    /// Body (also measured for HEAD, whose body is not sent).
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body and Content-Type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A request as recorded for tests: what was asked and what was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Request method.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// The scheme of the Authorization header (`Basic`, `Bearer`), if any.
    pub auth_scheme: Option<String>,
    /// Status answered.
    pub status: u16,
}

pub(crate) type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// What both servers check before serving a directory of packaged charts: that it is
/// one, and where to listen (a free loopback port unless told otherwise).
pub(crate) fn served_dir(dir: PathBuf, listen: Option<SocketAddr>) -> io::Result<(PathBuf, SocketAddr)> {
    if !dir.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} is not a directory", dir.display())));
    }
    Ok((dir, listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))))
}

/// A running server; dropping it stops accepting and lets idle connections close.
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<LoggedRequest>>>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(listen: SocketAddr, handler: Arc<Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sd, lg) = (shutdown.clone(), log.clone());
        let accept = std::thread::Builder::new().name(format!("http-accept-{}", addr.port())).spawn(move || {
            for stream in listener.incoming() {
                if sd.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (h, sd, lg) = (handler.clone(), sd.clone(), lg.clone());
                let _ = std::thread::Builder::new().name("http-conn".into()).spawn(move || {
                    let _ = serve_connection(stream, &*h, &sd, &lg);
                });
            }
        })?;
        Ok(Server { addr, shutdown, log, accept: Some(accept) })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Reads one line (through `\n`), retrying on read timeouts until shutdown. `Ok(None)`
/// means the peer closed the connection or the server is stopping.
fn read_line(r: &mut BufReader<TcpStream>, shutdown: &AtomicBool) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(None),
            Ok(_) if buf.ends_with(b"\n") => break,
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => {
                if shutdown.load(Ordering::SeqCst) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_owned()))
}

fn serve_connection(
    stream: TcpStream,
    handler: &Handler,
    shutdown: &AtomicBool,
    log: &Mutex<Vec<LoggedRequest>>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(250)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(line) = read_line(&mut reader, shutdown)? else {
            return Ok(());
        };
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let Some(h) = read_line(&mut reader, shutdown)? else {
                return Ok(());
            };
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        let mut got = 0;
        while got < len {
            match reader.read(&mut body[got..]) {
                Ok(0) => return Ok(()),
                Ok(n) => got += n,
                Err(e) if is_timeout(&e) && !shutdown.load(Ordering::SeqCst) => {}
                Err(e) => return Err(e),
            }
        }
        let (path, query) = split_target(&target);
        let close = headers.get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let req = Request { method, path, query, headers, body };
        let resp = handler(&req);
        log.lock().unwrap_or_else(|e| e.into_inner()).push(LoggedRequest {
            method: req.method.clone(),
            target,
            auth_scheme: req.header("authorization").and_then(|a| a.split_whitespace().next()).map(str::to_owned),
            status: resp.status,
        });
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if req.method != "HEAD" {
            bytes.extend_from_slice(&resp.body);
        }
        writer.write_all(&bytes)?;
        if close {
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    }
}

/// Splits `/a/b?x=1&y=2` into a decoded path and decoded query pairs.
pub(crate) fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (percent_decode(path, false), parse_form(query))
}

/// Parses `a=1&b=2` (also used for form bodies).
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value (unreserved characters kept).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_forms_decode() {
        let (p, q) = split_target("/v2/charts/bsr/tags/list?n=2&last=1.0.4");
        assert_eq!(p, "/v2/charts/bsr/tags/list");
        assert_eq!(q, vec![("n".into(), "2".into()), ("last".into(), "1.0.4".into())]);
        let q = parse_form("scope=repository%3Acharts%2Fbsr%3Apull&x=a+b&y=%");
        assert_eq!(q[0].1, "repository:charts/bsr:pull");
        assert_eq!(q[1].1, "a b");
        assert_eq!(q[2].1, "%");
        assert_eq!(percent_encode("1.0.0_b:1/x"), "1.0.0_b%3A1%2Fx");
    }
}
