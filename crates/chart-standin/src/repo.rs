//! The loopback HTTP chart repository: `GET /index.yaml`, generated on every request from
//! the `*.tgz` files in a directory, and `GET /<file>.tgz` serving those files. Because
//! the index is rebuilt per request, a test can drop a new package into the directory
//! and `helm repo update` sees it. Optional HTTP basic auth (`helm repo add --username
//! --password`).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

use crate::archive::{ChartArchive, rfc3339};
use crate::http::{LoggedRequest, Request, Response, Server, served_dir};

/// A user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// Credentials from anything string-like.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    /// Whether an `Authorization` header carries exactly these credentials as Basic.
    pub(crate) fn matches_basic(&self, header: Option<&str>) -> bool {
        parse_basic(header).is_some_and(|(u, p)| u == self.user && p == self.password)
    }
}

/// Decodes `Authorization: Basic base64(user:password)`.
pub(crate) fn parse_basic(header: Option<&str>) -> Option<(String, String)> {
    let (scheme, value) = header?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Options for [`ChartRepo::start`].
#[derive(Debug, Clone, Default)]
pub struct RepoOptions {
    /// Address to listen on; default `127.0.0.1:0` (an ephemeral port).
    pub listen: Option<SocketAddr>,
    /// Require HTTP basic auth with these credentials for every request.
    pub basic_auth: Option<Credentials>,
}

/// A running chart repository. Dropping it stops the server.
pub struct ChartRepo {
    server: Server,
    dir: PathBuf,
}

impl ChartRepo {
    /// Serves the `*.tgz` files of `dir` (read per request) on its own threads.
    pub fn start(dir: impl Into<PathBuf>, options: RepoOptions) -> io::Result<ChartRepo> {
        let (dir, listen) = served_dir(dir.into(), options.listen)?;
        let d = dir.clone();
        let auth = options.basic_auth.clone();
        let server = Server::start(listen, Arc::new(move |req: &Request| handle(&d, auth.as_ref(), req)))?;
        Ok(ChartRepo { server, dir })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash), for `helm repo add NAME URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.server.requests()
    }
}

fn handle(dir: &Path, auth: Option<&Credentials>, req: &Request) -> Response {
    if let Some(creds) = auth
        && !creds.matches_basic(req.header("authorization"))
    {
        return Response::new(401, "text/plain; charset=utf-8", "unauthorized\n")
            .header("WWW-Authenticate", "Basic realm=\"chart-standin repository\"");
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Response::new(405, "text/plain; charset=utf-8", "read-only repository\n");
    }
    let name = req.path.trim_start_matches('/');
    if name == "index.yaml" {
        return match index_yaml(dir) {
            Ok(text) => Response::new(200, "application/x-yaml", text),
            Err(e) => Response::new(500, "text/plain; charset=utf-8", format!("{e}\n")),
        };
    }
    let file_ok = name.ends_with(".tgz") && !name.contains('/') && !name.contains("..") && !name.starts_with('.');
    if file_ok && let Ok(bytes) = std::fs::read(dir.join(name)) {
        return Response::new(200, "application/gzip", bytes);
    }
    Response::new(404, "text/plain; charset=utf-8", "not found\n")
}

/// The repository index for the charts in `dir`: apiVersion v1; one entry per archive
/// (its Chart.yaml fields plus `urls` relative to the repository, `created` from the
/// archive's Chart.yaml mtime, `digest` = sha256 hex of the archive), newest version
/// first per chart; `generated` is the newest `created`, so the index is deterministic.
pub fn index_yaml(dir: &Path) -> io::Result<String> {
    let archives = ChartArchive::read_dir(dir)?;
    let mut entries: BTreeMap<String, Vec<(semver_key::Key, serde_json::Value)>> = BTreeMap::new();
    let mut newest = 0;
    for a in &archives {
        let mut entry = a.metadata.clone();
        let file = a.path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_owned();
        entry.insert("urls".into(), serde_json::json!([file]));
        entry.insert("created".into(), rfc3339(a.mtime).into());
        entry.insert("digest".into(), a.digest.trim_start_matches("sha256:").into());
        newest = newest.max(a.mtime);
        entries.entry(a.name().to_owned()).or_default().push((semver_key::Key::new(a.version()), entry.into()));
    }
    let entries: serde_json::Map<String, serde_json::Value> = entries
        .into_iter()
        .map(|(name, mut list)| {
            list.sort_by(|a, b| b.0.cmp(&a.0));
            (name, list.into_iter().map(|(_, v)| v).collect())
        })
        .collect();
    let index = serde_json::json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": rfc3339(newest),
    });
    yaml_serde::to_string(&index).map_err(io::Error::other)
}

/// Orders chart versions like helm: SemVer precedence, unparsable versions last.
pub(crate) mod semver_key {
    /// A sort key for a version string.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) enum Key {
        /// Not SemVer; sorted by text, below every SemVer version.
        Other(String),
        /// SemVer.
        Semver(semver::Version),
    }

    impl Key {
        pub(crate) fn new(v: &str) -> Key {
            semver::Version::parse(v).map(Key::Semver).unwrap_or_else(|_| Key::Other(v.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parses() {
        let h = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:s3:cret"));
        assert_eq!(parse_basic(Some(&h)), Some(("alice".into(), "s3:cret".into())));
        assert!(Credentials::new("alice", "s3:cret").matches_basic(Some(&h)));
        assert!(!Credentials::new("alice", "other").matches_basic(Some(&h)));
        assert_eq!(parse_basic(Some("Bearer abc")), None);
        assert_eq!(parse_basic(None), None);
    }

    #[test]
    fn index_lists_versions_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        crate::fixtures::package("coder", dir.path()).unwrap();
        std::fs::write(dir.path().join("junk.tgz"), b"not a chart").unwrap();
        let index: serde_json::Value = yaml_serde::from_str(&index_yaml(dir.path()).unwrap()).unwrap();
        assert_eq!(index["apiVersion"], "v1");
        let list = index["entries"]["coder"].as_array().unwrap();
        let versions: Vec<_> = list.iter().map(|e| e["version"].as_str().unwrap()).collect();
        assert_eq!(versions, ["3.0.0", "2.17.2", "2.16.0", "2.15.1", "2.15.0", "2.14.3", "2.14.0"]);
        assert_eq!(list[0]["urls"][0], "coder-3.0.0.tgz");
        assert_eq!(list[0]["digest"].as_str().unwrap().len(), 64);
        assert_eq!(index["entries"].as_object().unwrap().len(), 1);
    }
}
