//! Request framing on a client→server HTTP/1.1 byte stream, for the fault proxy: where
//! each request head starts and ends and where its body ends (`Content-Length` or
//! chunked), so a fault can act on one request. Heads are held until complete (the proxy
//! decides before forwarding them); body bytes are handed on as they arrive, never
//! buffered. A stream that does not parse as HTTP/1.1 (TLS, HTTP/2, garbage), or that
//! switches protocols (`Upgrade`, `CONNECT`), becomes opaque: from then on every byte is
//! handed on untouched and no request is recognised. Bytes are only held while they can
//! still begin a request line with a standard method, so another protocol is never
//! stalled waiting for a head that will not come.

/// The largest request head waited for; a longer one is not taken for HTTP.
const MAX_HEAD: usize = 64 * 1024;
/// The largest chunk-size or trailer line accepted before giving up on framing.
const MAX_LINE: usize = 4 * 1024;
/// Header slots for one head; more headers than this and the stream is left opaque.
const MAX_HEADERS: usize = 128;

/// A complete request head, not yet forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent: path and query string.
    pub target: String,
    /// The head's bytes, to forward unchanged.
    pub raw: Vec<u8>,
}

impl RequestHead {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p)
    }
}

/// What a run of bytes turned out to be, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Head(RequestHead),
    /// Body bytes (chunk framing included) of the last head, or bytes of an opaque stream.
    Data(Vec<u8>),
    /// The body of the last head is complete (right after the head when it has none).
    End,
}

#[derive(Debug)]
enum State {
    /// Collecting a head.
    Head(Vec<u8>),
    /// Body bytes left to a `Content-Length`.
    Length(u64),
    /// A chunk-size line so far.
    ChunkSize(Vec<u8>),
    /// Data bytes left in the current chunk.
    ChunkData(u64),
    /// The line break after a chunk's data, so far.
    ChunkDataEnd(Vec<u8>),
    /// A trailer line so far; an empty one ends the body.
    Trailer(Vec<u8>),
    /// Not (or no longer) HTTP/1.1: everything passes as is.
    Opaque,
}

/// The framing state of one client→server stream.
#[derive(Debug)]
pub struct RequestStream {
    state: State,
    /// The current request switches protocols: after its body the stream is opaque.
    upgrading: bool,
}

impl Default for RequestStream {
    fn default() -> Self {
        RequestStream { state: State::Head(Vec::new()), upgrading: false }
    }
}

fn push_data(out: &mut Vec<Piece>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(Piece::Data(d)) => d.extend_from_slice(bytes),
        _ => out.push(Piece::Data(bytes.to_vec())),
    }
}

/// Appends `data` up to and including the first `\n` to `line`; returns how many bytes
/// were taken and whether the line is complete.
fn take_line(line: &mut Vec<u8>, data: &[u8]) -> (usize, bool) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&data[..=i]);
            (i + 1, true)
        }
        None => {
            line.extend_from_slice(data);
            (data.len(), false)
        }
    }
}

/// How the body after a head is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl RequestStream {
    /// Whether the stream has been given up as not HTTP/1.1.
    #[cfg(test)]
    pub fn is_opaque(&self) -> bool {
        matches!(self.state, State::Opaque)
    }

    /// Splits the next bytes of the stream into pieces.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let taken = match &mut self.state {
                State::Opaque => {
                    push_data(&mut out, rest);
                    rest.len()
                }
                State::Head(buf) => {
                    let before = buf.len();
                    buf.extend_from_slice(rest);
                    match parse_head(buf) {
                        HeadParse::Complete { head, framing, upgrading } => {
                            let taken = head.raw.len() - before;
                            out.push(Piece::Head(head));
                            self.upgrading = upgrading;
                            self.state = match framing {
                                Framing::None | Framing::Length(0) => self.end_of_body(&mut out),
                                Framing::Length(n) => State::Length(n),
                                Framing::Chunked => State::ChunkSize(Vec::new()),
                            };
                            taken
                        }
                        HeadParse::Partial if buf.len() <= MAX_HEAD => rest.len(),
                        HeadParse::Partial | HeadParse::NotHttp => {
                            // Everything held so far was never a request: hand it on as is.
                            let held = std::mem::take(buf);
                            push_data(&mut out, &held);
                            self.state = State::Opaque;
                            rest.len()
                        }
                    }
                }
                State::Length(left) => {
                    let n = (*left).min(rest.len() as u64) as usize;
                    push_data(&mut out, &rest[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = self.end_of_body(&mut out);
                    }
                    n
                }
                State::ChunkSize(line) => {
                    let (n, complete) = take_line(line, rest);
                    push_data(&mut out, &rest[..n]);
                    if complete {
                        self.state = match chunk_size(line) {
                            Some(0) => State::Trailer(Vec::new()),
                            Some(size) => State::ChunkData(size),
                            None => State::Opaque,
                        };
                    } else if line.len() > MAX_LINE {
                        self.state = State::Opaque;
                    }
                    n
                }
                State::ChunkData(left) => {
                    let n = (*left).min(rest.len() as u64) as usize;
                    push_data(&mut out, &rest[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::ChunkDataEnd(Vec::new());
                    }
                    n
                }
                State::ChunkDataEnd(line) => {
                    let (n, complete) = take_line(line, rest);
                    push_data(&mut out, &rest[..n]);
                    if complete {
                        self.state = State::ChunkSize(Vec::new());
                    } else if line.len() > 2 {
                        self.state = State::Opaque;
                    }
                    n
                }
                State::Trailer(line) => {
                    let (n, complete) = take_line(line, rest);
                    push_data(&mut out, &rest[..n]);
                    if complete {
                        if line.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                            self.state = self.end_of_body(&mut out);
                        } else {
                            line.clear();
                        }
                    } else if line.len() > MAX_LINE {
                        self.state = State::Opaque;
                    }
                    n
                }
            };
            rest = &rest[taken..];
        }
        out
    }

    /// Marks the end of a body; the next state is a new head, or opaque after an upgrade.
    fn end_of_body(&mut self, out: &mut Vec<Piece>) -> State {
        out.push(Piece::End);
        if std::mem::take(&mut self.upgrading) { State::Opaque } else { State::Head(Vec::new()) }
    }
}

enum HeadParse {
    /// `upgrading`: the request switches protocols (`Upgrade` header or `CONNECT`).
    Complete {
        head: RequestHead,
        framing: Framing,
        upgrading: bool,
    },
    Partial,
    NotHttp,
}

/// The request methods a head may start with. Bytes that cannot begin one of them are
/// not held waiting for the rest of a head: a protocol that is not HTTP passes at once.
const METHODS: [&[u8]; 9] = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"CONNECT", b"TRACE"];

/// Whether `buf` can still be, or is, the start of a request line with a known method.
fn could_be_request(buf: &[u8]) -> bool {
    let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(buf.len());
    let line = &buf[start..];
    match line.iter().position(|&b| b == b' ') {
        Some(end) => METHODS.contains(&&line[..end]),
        None => METHODS.iter().any(|m| m.starts_with(line)),
    }
}

/// Parses a head at the start of `buf`.
fn parse_head(buf: &[u8]) -> HeadParse {
    if !could_be_request(buf) {
        return HeadParse::NotHttp;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadParse::Partial,
        Err(_) => return HeadParse::NotHttp,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return HeadParse::NotHttp;
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .collect::<Vec<_>>()
    };
    let chunked = header("transfer-encoding")
        .iter()
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(length) = header("content-length").first() {
        match length.trim().parse() {
            Ok(n) => Framing::Length(n),
            // A body whose end cannot be found: the stream can no longer be framed.
            Err(_) => return HeadParse::NotHttp,
        }
    } else {
        Framing::None
    };
    let upgrading = method.eq_ignore_ascii_case("CONNECT") || !header("upgrade").is_empty();
    let head = RequestHead { method: method.to_string(), target: target.to_string(), raw: buf[..len].to_vec() };
    HeadParse::Complete { head, framing, upgrading }
}

/// The size of a chunk from its size line (`1a;ext=1\r\n`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let size = line.trim_end_matches(['\r', '\n']).split(';').next()?.trim();
    u64::from_str_radix(size, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in slices of `step` bytes and joins the pieces, merging data runs
    /// that were split across feeds.
    fn pieces(stream: &[u8], step: usize) -> (Vec<Piece>, bool) {
        let mut s = RequestStream::default();
        let mut out: Vec<Piece> = Vec::new();
        for part in stream.chunks(step) {
            for p in s.feed(part) {
                match (out.last_mut(), p) {
                    (Some(Piece::Data(d)), Piece::Data(more)) => d.extend(more),
                    (_, p) => out.push(p),
                }
            }
        }
        (out, s.is_opaque())
    }

    fn head(p: &Piece) -> (&str, &str) {
        match p {
            Piece::Head(h) => (h.method.as_str(), h.target.as_str()),
            other => panic!("not a head: {other:?}"),
        }
    }

    /// The bytes of every piece, in order: framing must never alter the stream.
    fn rejoined(ps: &[Piece]) -> Vec<u8> {
        ps.iter()
            .flat_map(|p| match p {
                Piece::Head(h) => h.raw.clone(),
                Piece::Data(d) => d.clone(),
                Piece::End => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn requests_with_and_without_length_in_any_slicing() {
        let stream = b"GET /api/v1/namespaces/a/configmaps?watch=true HTTP/1.1\r\nHost: x\r\n\r\n\
PUT /api/v1/namespaces/a/configmaps/c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
DELETE /api/v1/namespaces/a/configmaps/c HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        for step in [1, 3, 7, stream.len()] {
            let (ps, opaque) = pieces(stream, step);
            assert!(!opaque, "step {step}");
            assert_eq!(ps.len(), 7, "step {step}: {ps:?}");
            assert_eq!(head(&ps[0]), ("GET", "/api/v1/namespaces/a/configmaps?watch=true"));
            assert_eq!(ps[1], Piece::End);
            assert_eq!(head(&ps[2]), ("PUT", "/api/v1/namespaces/a/configmaps/c"));
            assert_eq!(ps[3], Piece::Data(b"hello".to_vec()));
            assert_eq!(ps[4], Piece::End);
            assert_eq!(head(&ps[5]), ("DELETE", "/api/v1/namespaces/a/configmaps/c"));
            assert_eq!(ps[6], Piece::End);
            assert_eq!(rejoined(&ps), stream);
        }
        let Piece::Head(h) = &pieces(stream, 5).0[0] else { unreachable!() };
        assert_eq!(h.path(), "/api/v1/namespaces/a/configmaps");
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let stream =
            b"POST /apis/apps/v1/namespaces/a/deployments HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n\
GET /version HTTP/1.1\r\n\r\n";
        for step in [1, 2, 11, stream.len()] {
            let (ps, opaque) = pieces(stream, step);
            assert!(!opaque, "step {step}");
            assert_eq!(head(&ps[0]).0, "POST");
            let Piece::Data(body) = &ps[1] else { panic!("step {step}: {ps:?}") };
            assert!(body.starts_with(b"4;x=y\r\nwiki") && body.ends_with(b"Expires: never\r\n\r\n"));
            assert_eq!(ps[2], Piece::End, "step {step}");
            assert_eq!(head(&ps[3]), ("GET", "/version"));
            assert_eq!(ps[4], Piece::End);
            assert_eq!(rejoined(&ps), stream);
        }
    }

    #[test]
    fn bytes_that_cannot_start_a_request_are_not_held() {
        for msg in [&b"hello"[..], b"x", b"GETS / HTTP/1.1", b"\x00"] {
            let (ps, opaque) = pieces(msg, msg.len());
            assert!(opaque, "{msg:?}");
            assert_eq!(ps, [Piece::Data(msg.to_vec())]);
        }
        for partial in [&b"G"[..], b"\r\nPA", b"DELETE /api"] {
            let (ps, opaque) = pieces(partial, partial.len());
            assert!(!opaque && ps.is_empty(), "{partial:?} could still be a request");
        }
    }

    #[test]
    fn tls_and_http2_pass_through_untouched() {
        let tls = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        let (ps, opaque) = pieces(&tls, 4);
        assert!(opaque);
        assert_eq!(ps, [Piece::Data(tls.to_vec())]);
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        let (ps, opaque) = pieces(h2, 100);
        assert!(opaque);
        assert_eq!(ps, [Piece::Data(h2.to_vec())]);
    }

    #[test]
    fn upgrades_and_unframeable_bodies_turn_opaque() {
        let stream =
            b"GET /api/v1/namespaces/a/pods/p/exec HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
GET /not/a/request HTTP/1.1\r\n\r\n";
        let (ps, opaque) = pieces(stream, 9);
        assert!(opaque);
        assert_eq!(head(&ps[0]).1, "/api/v1/namespaces/a/pods/p/exec");
        assert_eq!(ps[1], Piece::End);
        assert_eq!(ps[2], Piece::Data(b"GET /not/a/request HTTP/1.1\r\n\r\n".to_vec()));
        let (ps, opaque) = pieces(b"PUT /x HTTP/1.1\r\nContent-Length: many\r\n\r\nbody", 64);
        assert!(opaque);
        assert_eq!(rejoined(&ps), b"PUT /x HTTP/1.1\r\nContent-Length: many\r\n\r\nbody");
    }
}
