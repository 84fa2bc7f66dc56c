//! A read-only OCI registry stand-in serving helm charts from a directory of `*.tgz`
//! files (read per request): the distribution API subset helm (oras-go) uses to pull —
//! `GET /v2/`, `GET /v2/<repo>/tags/list` with `n`/`last` pagination and a `Link` header,
//! `GET|HEAD /v2/<repo>/manifests/<tag|digest>`, `GET|HEAD /v2/<repo>/blobs/<digest>` —
//! plus optional basic auth or the bearer-token flow with a `/token` endpoint.
//!
//! Each chart `<name>-<version>.tgz` is the repository `<namespace>/<name>` (namespace
//! `charts` by default) with tag `<version>`, `+` written as `_` (helm's convention,
//! pkg/registry/tag.go). The manifest is an OCI image manifest whose config blob is
//! Chart.yaml as JSON (`application/vnd.cncf.helm.config.v1+json`) and whose one layer is
//! the archive (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), as `helm push`
//! writes it. Pushing is not implemented.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::archive::{ChartArchive, rfc3339, sha256_digest, sha256_hex};
use crate::http::{LoggedRequest, Request, Response, Server, parse_form, percent_encode, served_dir};
use crate::repo::{Credentials, parse_basic};

/// OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// helm's chart config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// helm's chart layer media type.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The `service` named in bearer challenges and accepted by `/token`.
pub const TOKEN_SERVICE: &str = "chart-standin";

/// How clients must authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OciAuth {
    /// Anonymous pulls.
    #[default]
    None,
    /// `401` + `WWW-Authenticate: Basic realm=…`; every request must carry these
    /// credentials as Basic.
    Basic(Credentials),
    /// `401` + `WWW-Authenticate: Bearer realm="http://HOST/token",service=…,scope=…`;
    /// `/token` hands out pull tokens for these credentials (given as Basic, or as an
    /// OAuth2 password grant), and an access-less token to anonymous callers.
    Bearer(Credentials),
}

/// Options for [`OciRegistry::start`].
#[derive(Debug, Clone)]
pub struct OciOptions {
    /// Address to listen on; default `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
    /// Authentication mode.
    pub auth: OciAuth,
    /// Repository namespace: chart `bsr` is repository `<namespace>/bsr`. Default `charts`.
    pub namespace: String,
    /// Largest tags/list page the server returns even when the client asks for more or
    /// gives no `n` (registries may cap pages; clients must follow `Link`).
    pub page_size: Option<usize>,
}

impl OciOptions {
    /// Defaults with the given authentication.
    pub fn with_auth(auth: OciAuth) -> OciOptions {
        OciOptions { auth, ..OciOptions::default() }
    }
}

impl Default for OciOptions {
    fn default() -> OciOptions {
        OciOptions { listen: None, auth: OciAuth::None, namespace: "charts".into(), page_size: None }
    }
}

/// A running registry. Dropping it stops the server.
pub struct OciRegistry {
    server: Server,
    dir: PathBuf,
    namespace: String,
}

struct State {
    dir: PathBuf,
    options: OciOptions,
    /// Issued bearer tokens and the repositories each may pull.
    tokens: Mutex<HashMap<String, Vec<String>>>,
    next_token: AtomicU64,
}

impl OciRegistry {
    /// Serves the `*.tgz` files of `dir` as an OCI registry on its own threads.
    pub fn start(dir: impl Into<PathBuf>, options: OciOptions) -> io::Result<OciRegistry> {
        let (dir, listen) = served_dir(dir.into(), options.listen)?;
        let namespace = options.namespace.clone();
        let state = Arc::new(State {
            dir: dir.clone(),
            options,
            tokens: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        });
        let server = Server::start(listen, Arc::new(move |req: &Request| state.handle(req)))?;
        Ok(OciRegistry { server, dir, namespace })
    }

    /// `127.0.0.1:PORT`, as given to `helm registry login`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// `oci://127.0.0.1:PORT/<namespace>/<chart>`, for `helm pull|show|install|upgrade`
    /// (with `--plain-http`).
    pub fn reference(&self, chart: &str) -> String {
        format!("oci://{}/{}/{chart}", self.host(), self.namespace)
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

/// One chart as stored in the registry.
struct Artifact {
    tag: String,
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Artifact {
    fn new(a: ChartArchive) -> Artifact {
        let config = serde_json::to_vec(&a.metadata).expect("JSON map serialises");
        let mut annotations = serde_json::Map::new();
        annotations.insert("org.opencontainers.image.created".into(), rfc3339(a.mtime).into());
        annotations.insert("org.opencontainers.image.title".into(), a.name().into());
        annotations.insert("org.opencontainers.image.version".into(), a.version().into());
        if let Some(d) = a.metadata.get("description") {
            annotations.insert("org.opencontainers.image.description".into(), d.clone());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(&config), "size": config.len()},
            "layers": [{"mediaType": CHART_LAYER_MEDIA_TYPE, "digest": a.digest, "size": a.bytes.len()}],
            "annotations": annotations,
        });
        Artifact {
            tag: a.version().replace('+', "_"),
            config,
            manifest: serde_json::to_vec(&manifest).expect("JSON serialises"),
            layer: a.bytes,
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": {}}]});
    Response::new(status, "application/json", body.to_string())
}

impl State {
    fn artifacts(&self, repo: &str) -> Vec<Artifact> {
        let archives = ChartArchive::read_dir(&self.dir).unwrap_or_default();
        archives
            .into_iter()
            .filter(|a| format!("{}/{}", self.options.namespace, a.name()) == repo)
            .map(Artifact::new)
            .collect()
    }

    fn handle(&self, req: &Request) -> Response {
        if req.path == "/token" {
            return self.token(req);
        }
        let Some(rest) = req.path.strip_prefix("/v2") else {
            return error(404, "NOT_FOUND", "not found");
        };
        if rest.is_empty() || rest == "/" {
            if let Some(denied) = self.authorize(req, None) {
                return denied;
            }
            return Response::new(200, "application/json", "{}")
                .header("Docker-Distribution-API-Version", "registry/2.0");
        }
        let rest = rest.trim_start_matches('/');
        let (repo, kind, reference) = if let Some(repo) = rest.strip_suffix("/tags/list") {
            (repo, "tags", "")
        } else if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
            (repo, "manifests", r)
        } else if let Some((repo, r)) = rest.rsplit_once("/blobs/") {
            (repo, "blobs", r)
        } else {
            return error(404, "NOT_FOUND", "not found");
        };
        if let Some(denied) = self.authorize(req, Some(repo)) {
            return denied;
        }
        if req.method != "GET" && req.method != "HEAD" {
            return error(405, "UNSUPPORTED", "this registry is read-only");
        }
        let artifacts = self.artifacts(repo);
        if artifacts.is_empty() {
            return error(404, "NAME_UNKNOWN", &format!("repository {repo} not known to registry"));
        }
        match kind {
            "tags" => self.tags(req, repo, artifacts),
            "manifests" => {
                let found = artifacts.into_iter().find(|a| {
                    if reference.starts_with("sha256:") {
                        sha256_digest(&a.manifest) == reference
                    } else {
                        a.tag == reference
                    }
                });
                match found {
                    Some(a) => Response::new(200, MANIFEST_MEDIA_TYPE, a.manifest.clone())
                        .header("Docker-Content-Digest", sha256_digest(&a.manifest))
                        .header("ETag", format!("\"{}\"", sha256_digest(&a.manifest))),
                    None => error(404, "MANIFEST_UNKNOWN", &format!("manifest unknown: {repo}:{reference}")),
                }
            }
            _ => {
                let blob = artifacts.into_iter().find_map(|a| {
                    if sha256_digest(&a.config) == reference {
                        Some(a.config)
                    } else if sha256_digest(&a.layer) == reference {
                        Some(a.layer)
                    } else {
                        None
                    }
                });
                match blob {
                    Some(b) => Response::new(200, "application/octet-stream", b)
                        .header("Docker-Content-Digest", reference.to_owned()),
                    None => error(404, "BLOB_UNKNOWN", &format!("blob unknown: {reference}")),
                }
            }
        }
    }

    /// Tags in lexical order (the distribution spec's order), paged by `n` and `last`.
    fn tags(&self, req: &Request, repo: &str, artifacts: Vec<Artifact>) -> Response {
        let mut tags: Vec<String> = artifacts.into_iter().map(|a| a.tag).collect();
        tags.sort();
        tags.dedup();
        if let Some(last) = req.query("last") {
            tags.retain(|t| t.as_str() > last);
        }
        let asked: Option<usize> = match req.query("n").map(str::parse) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return error(400, "PAGINATION_NUMBER_INVALID", "invalid n"),
            None => None,
        };
        let n = match (asked, self.options.page_size) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        let mut resp_tags = tags.clone();
        let mut link = None;
        if let Some(n) = n
            && tags.len() > n
        {
            resp_tags.truncate(n);
            if let Some(last) = resp_tags.last() {
                link = Some(format!("</v2/{repo}/tags/list?n={n}&last={}>; rel=\"next\"", percent_encode(last)));
            }
        }
        let body = json!({"name": repo, "tags": resp_tags});
        let mut resp = Response::new(200, "application/json", body.to_string());
        if let Some(l) = link {
            resp = resp.header("Link", l);
        }
        resp
    }

    /// `None` when the request may proceed, else the 401 to send.
    fn authorize(&self, req: &Request, repo: Option<&str>) -> Option<Response> {
        let header = req.header("authorization");
        match &self.options.auth {
            OciAuth::None => None,
            OciAuth::Basic(creds) => (!creds.matches_basic(header)).then(|| {
                error(401, "UNAUTHORIZED", "authentication required")
                    .header("WWW-Authenticate", "Basic realm=\"chart-standin registry\"")
            }),
            OciAuth::Bearer(_) => {
                let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
                let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                let ok = token.and_then(|t| tokens.get(t)).is_some_and(|granted| match repo {
                    None => true,
                    Some(r) => granted.iter().any(|g| g == r),
                });
                if ok {
                    return None;
                }
                let host = req.header("host").unwrap_or("127.0.0.1");
                let mut challenge = format!("Bearer realm=\"http://{host}/token\",service=\"{TOKEN_SERVICE}\"");
                if let Some(r) = repo {
                    challenge.push_str(&format!(",scope=\"repository:{r}:pull\""));
                }
                let (code, msg) = if token.is_some() {
                    ("DENIED", "requested access to the resource is denied")
                } else {
                    ("UNAUTHORIZED", "authentication required")
                };
                Some(error(401, code, msg).header("WWW-Authenticate", challenge))
            }
        }
    }

    /// The token endpoint: `GET /token?service=…&scope=…` with optional Basic
    /// credentials, or `POST /token` with an OAuth2 password grant form. Valid
    /// credentials get pull access to the repositories in the requested scopes; no
    /// credentials get a token without access (as real registries do); wrong ones 401.
    fn token(&self, req: &Request) -> Response {
        let OciAuth::Bearer(creds) = &self.options.auth else {
            return error(404, "NOT_FOUND", "no token service (auth mode is not bearer)");
        };
        let (params, given) = match req.method.as_str() {
            "GET" => (req.query.clone(), parse_basic(req.header("authorization"))),
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&req.body));
                let get = |k: &str| form.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
                if get("grant_type").as_deref() != Some("password") {
                    return Response::new(400, "application/json", r#"{"error":"unsupported_grant_type"}"#);
                }
                let given = get("username").zip(get("password"));
                (form, given)
            }
            _ => return error(405, "UNSUPPORTED", "method not allowed"),
        };
        let mut granted = Vec::new();
        match given {
            Some((u, p)) if u == creds.user && p == creds.password => {
                for (k, v) in &params {
                    if k != "scope" {
                        continue;
                    }
                    for scope in v.split(' ') {
                        // repository:<name>:<actions>
                        let Some((head, actions)) = scope.rsplit_once(':') else {
                            continue;
                        };
                        let Some(("repository", name)) = head.split_once(':') else {
                            continue;
                        };
                        if actions.split(',').any(|a| a == "pull" || a == "*") {
                            granted.push(name.to_owned());
                        }
                    }
                }
            }
            Some(_) => {
                return error(401, "UNAUTHORIZED", "invalid username or password")
                    .header("WWW-Authenticate", "Basic realm=\"chart-standin token service\"");
            }
            None => {}
        }
        let n = self.next_token.fetch_add(1, Ordering::SeqCst);
        let token = format!("cs-{n}-{}", &sha256_hex(format!("{n}:{granted:?}").as_bytes())[..16]);
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), granted);
        let body = json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": rfc3339(0)});
        Response::new(200, "application/json", body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_points_at_config_and_layer() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::fixtures::package_version("bsr", "1.0.4", dir.path()).unwrap();
        let archive = ChartArchive::read(&path).unwrap();
        let layer_digest = archive.digest.clone();
        let a = Artifact::new(archive);
        let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], sha256_digest(&a.config));
        assert_eq!(m["layers"][0]["mediaType"], CHART_LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], layer_digest);
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["version"], "1.0.4");
        assert_eq!(a.tag, "1.0.4");
    }
}
