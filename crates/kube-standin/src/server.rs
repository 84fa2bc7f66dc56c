//! HTTP: the accept loop (TCP_NODELAY, so Go's keep-alive client does not wait on
//! delayed ACKs), request parsing (paths, query strings, JSON or protobuf bodies), routing
//! to discovery, the API operations and watches, and the controller schedule: with a
//! zero readiness delay the controller runs inside the write request; otherwise after
//! the delay, on the runtime.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::api::{self, ApiError, PatchType, WriteCtx};
use crate::authz::{self, Attributes, Denials};
use crate::controller;
use crate::discovery;
use crate::protobuf;
use crate::resources::{self, ResourceType};
use crate::run;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::State;
use crate::watch::{self, ChannelBody, WatchRequest};

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    denials: Mutex<Denials>,
    pub ready_delay: Duration,
    pub log_requests: bool,
}

impl Shared {
    pub fn new(ready_delay: Duration, log_requests: bool) -> Self {
        Shared { state: Mutex::new(State::new()), denials: Mutex::default(), ready_delay, log_requests }
    }

    /// The deny rules in force (poisoning ignored, as for the store).
    pub fn denials(&self) -> MutexGuard<'_, Denials> {
        self.denials.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the store. A panic while holding the lock must not take every later request
    /// down with it, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves connections from `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => continue,
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn full(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(code, "application/json", v.to_string())
}

fn error(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Where a resource request points.
struct Target {
    rt: &'static ResourceType,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// Parses the part after `/api/v1/` or `/apis/G/V/`.
fn parse_target(api_version: &str, segs: &[&str]) -> Option<Target> {
    let t = |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let rt = resources::lookup(api_version, plural)?;
        if rt.namespaced != ns.is_some() && name.is_some() {
            return None;
        }
        Some(Target { rt, ns: ns.map(String::from), name: name.map(String::from), sub: sub.map(String::from) })
    };
    match segs {
        ["namespaces", ns, plural, rest @ ..]
            if resources::lookup(api_version, plural).is_some_and(|r| r.namespaced) =>
        {
            t(plural, Some(ns), rest.first().copied(), rest.get(1).copied())
        }
        [plural] => t(plural, None, None, None),
        [plural, name] => t(plural, None, Some(name), None),
        [plural, name, sub] => t(plural, None, Some(name), Some(sub)),
        _ => None,
    }
}

fn accepts_table(req: &Request<hyper::body::Incoming>) -> bool {
    req.headers().get("accept").and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("as=Table"))
}

/// Decodes a request body: protobuf (helm's release storage) or JSON.
fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return protobuf::decode(body).map_err(|e| ApiError::new(415, "UnsupportedMediaType", e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format (only JSON and protobuf Secrets/ConfigMaps are understood): {e}"),
        )
    })
}

async fn handle(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = route(&shared, req).await;
    if shared.log_requests {
        eprintln!("kube-standin: {method} {uri} -> {} ({:?})", resp.status().as_u16(), started.elapsed());
    }
    resp
}

async fn route(shared: &Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = parse_query(req.uri().query());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let aggregated = req
        .headers()
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=APIGroupDiscoveryList"));
    let (api_version, rest): (String, &[&str]) = match segs.as_slice() {
        ["version"] => return json_response(200, &discovery::version()),
        ["healthz" | "readyz" | "livez"] => return full(200, "text/plain", "ok"),
        ["api"] if aggregated => {
            return full(200, discovery::AGGREGATED_CONTENT_TYPE, discovery::aggregated(true).to_string());
        }
        ["apis"] if aggregated => {
            return full(200, discovery::AGGREGATED_CONTENT_TYPE, discovery::aggregated(false).to_string());
        }
        ["api"] => return json_response(200, &discovery::api_versions()),
        ["apis"] => return json_response(200, &discovery::api_group_list()),
        ["openapi", "v3"] => return json_response(200, &discovery::openapi_root()),
        ["openapi", "v3", "api", v] => return opt(discovery::openapi_doc("", v)),
        ["openapi", "v3", "apis", g, v] => return opt(discovery::openapi_doc(g, v)),
        ["api", "v1"] => return opt(discovery::resource_list("", "v1")),
        ["apis", g] => return opt(discovery::api_group(g)),
        ["apis", g, v] => return opt(discovery::resource_list(g, v)),
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"] => return self_review(shared, req).await,
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return error(&ApiError::new(404, "NotFound", "the server could not find the requested resource")),
    };
    let Some(target) = parse_target(&api_version, rest) else {
        return error(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    };
    let attributes = Attributes::of_request(
        req.method().as_str(),
        target.rt,
        target.ns.as_deref(),
        target.name.as_deref(),
        target.sub.as_deref(),
        &query,
    );
    if let Some(a) = attributes
        && shared.denials().denies(&a)
    {
        return error(&a.forbidden());
    }
    let table = accepts_table(&req);
    let req_agent = req
        .headers()
        .get("user-agent")
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split('/').next())
        .filter(|a| !a.is_empty())
        .unwrap_or("unknown")
        .to_string();
    let method = req.method().clone();
    let content_type = req.headers().get("content-type").and_then(|c| c.to_str().ok()).unwrap_or_default().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    // Without a fieldManager parameter, the API server names the manager after the
    // client's User-Agent (`kubectl/v1.34.5 …` → `kubectl`).
    let agent = req_agent;
    match resource(shared, &method, &target, &query, &content_type, &body, table, &agent) {
        Ok(Reply::Json(code, v)) => json_response(code, &v),
        Ok(Reply::Text(s)) => full(200, "text/plain", s),
        Ok(Reply::Watch(w)) => {
            let rx = watch::start(shared.clone(), w);
            Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(BodyExt::boxed(ChannelBody(rx)))
                .expect("valid response")
        }
        Err(e) => error(&e),
    }
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` (`kubectl auth can-i`),
/// answered from the deny rules; reviews are not stored, so no other method is served.
async fn self_review(shared: &Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return error(&ApiError::new(405, "MethodNotAllowed", format!("{} is not supported here", req.method())));
    }
    let content_type = req.headers().get("content-type").and_then(|c| c.to_str().ok()).unwrap_or_default().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    let reviewed = decode_body(&content_type, &body).and_then(|b| authz::review(&shared.denials(), &b));
    match reviewed {
        Ok(v) => json_response(201, &v),
        Err(e) => error(&e),
    }
}

fn opt(v: Option<Value>) -> Response<Body> {
    match v {
        Some(v) => json_response(200, &v),
        None => error(&ApiError::new(404, "NotFound", "the server could not find the requested resource")),
    }
}

enum Reply {
    Json(u16, Value),
    Text(String),
    Watch(WatchRequest),
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn list(st: &State, t: &Target, q: &HashMap<String, String>) -> Result<Vec<Value>, ApiError> {
    let (labels, fields) = selectors(q)?;
    Ok(st
        .list(&t.rt.id(), t.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .cloned()
        .collect())
}

#[allow(clippy::too_many_arguments)] // the request's parts, each used once
fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    t: &Target,
    q: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
    table: bool,
    agent: &str,
) -> Result<Reply, ApiError> {
    let rt = t.rt;
    let ns = t.ns.as_deref().unwrap_or_default();
    let sub = t.sub.as_deref();
    if let Some(s) = sub {
        let ok = match s {
            "status" => rt.status,
            "scale" => rt.scale,
            "log" => rt.kind == "Pod",
            _ => false,
        };
        if !ok {
            return Err(ApiError::new(404, "NotFound", "the server could not find the requested resource"));
        }
    }
    let ctx = WriteCtx {
        manager: q.get("fieldManager").cloned().unwrap_or_else(|| agent.to_string()),
        force: q.get("force").is_some_and(|f| f == "true"),
    };
    let include_object = q.get("includeObject").is_some_and(|v| v == "Object");
    if *method == Method::GET {
        let st = shared.lock();
        return match (&t.name, sub) {
            (None, _) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                let (labels, fields) = selectors(q)?;
                let timeout = q.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(1800);
                Ok(Reply::Watch(WatchRequest {
                    rt,
                    ns: t.ns.clone(),
                    labels,
                    fields,
                    resource_version: q.get("resourceVersion").and_then(|rv| rv.parse().ok()).filter(|rv| *rv > 0),
                    send_initial_events: q.get("sendInitialEvents").is_some_and(|v| v == "true"),
                    timeout: Duration::from_secs(timeout),
                }))
            }
            (None, _) => {
                let items = list(&st, t, q)?;
                if table {
                    return Ok(Reply::Json(200, discovery::table(&items, include_object, Some(st.rv()))));
                }
                Ok(Reply::Json(
                    200,
                    json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                        "metadata": {"resourceVersion": st.rv().to_string()}, "items": items}),
                ))
            }
            (Some(name), None | Some("status")) => {
                let obj = api::get(&st, rt, ns, name)?;
                if table {
                    return Ok(Reply::Json(200, discovery::table(&[obj], include_object, None)));
                }
                Ok(Reply::Json(200, obj))
            }
            (Some(name), Some("scale")) => Ok(Reply::Json(200, api::scale_of(&api::get(&st, rt, ns, name)?))),
            (Some(name), Some(_)) => Ok(Reply::Text(run::log(&api::get(&st, rt, ns, name)?, q)?)),
        };
    }
    if sub == Some("log") {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ));
    }
    let mut st = shared.lock();
    let result = match (method, &t.name) {
        (&Method::POST, None) => {
            let b = decode_body(content_type, body)?;
            api::create(&mut st, rt, ns, b, &ctx)
        }
        (&Method::PUT, Some(name)) => {
            let b = decode_body(content_type, body)?;
            api::update(&mut st, rt, ns, name, b, sub, &ctx)
        }
        (&Method::PATCH, Some(name)) => {
            let ptype = PatchType::from_content_type(content_type).ok_or_else(|| {
                ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"))
            })?;
            let b = decode_body("application/json", body)?;
            api::patch(&mut st, rt, ns, name, ptype, &b, sub, &ctx)
        }
        (&Method::DELETE, Some(name)) => {
            let b = decode_body(content_type, body)?;
            api::delete(&mut st, rt, ns, name, &b)
        }
        (&Method::DELETE, None) => {
            let items = list(&st, t, q)?;
            let options = decode_body(content_type, body)?;
            let mut deleted = Vec::new();
            for o in items {
                let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let ons = o.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
                deleted.push(api::delete(&mut st, rt, &ons, &name, &options)?.1);
            }
            Ok((
                200,
                json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted}),
            ))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("{method} is not supported here"))),
    };
    run_controller(shared, &mut st);
    let (code, mut v) = result?;
    if sub.is_none() && !v.is_null() && v.get("kind").is_none() {
        v["kind"] = rt.kind.into();
    }
    Ok(Reply::Json(code, v))
}

/// Runs or schedules the controller for objects whose spec changed, and schedules the
/// work the controller asked for later (runs that end then).
fn run_controller(shared: &Arc<Shared>, st: &mut State) {
    let pending = std::mem::take(&mut st.pending);
    if !pending.is_empty() {
        if shared.ready_delay.is_zero() {
            for key in &pending {
                controller::reconcile(st, key);
            }
        } else {
            let shared = shared.clone();
            let delay = shared.ready_delay;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut st = shared.lock();
                for key in pending {
                    controller::reconcile(&mut st, &key);
                }
                schedule_timers(&shared, &mut st);
            });
        }
    }
    schedule_timers(shared, st);
}

/// Reconciles each key of `State::timers` at its time (and what that reconcile asks for
/// later, in turn). Tasks still sleeping when the stand-in stops are dropped with its
/// runtime.
fn schedule_timers(shared: &Arc<Shared>, st: &mut State) {
    for (at, key) in std::mem::take(&mut st.timers) {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut st = shared.lock();
            controller::reconcile(&mut st, &key);
            schedule_timers(&shared, &mut st);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_and_paths() {
        let q = parse_query(Some("labelSelector=name%3Ddemo%2Cowner%3Dhelm&watch=true&x"));
        assert_eq!(q["labelSelector"], "name=demo,owner=helm");
        assert_eq!(q["x"], "");
        let t = parse_target("v1", &["namespaces", "default", "secrets", "s", "status"]);
        assert!(t.is_none() || t.is_some_and(|t| t.sub.as_deref() == Some("status")));
        let t = parse_target("v1", &["namespaces", "foo"]).unwrap();
        assert_eq!((t.rt.kind, t.ns, t.name.as_deref()), ("Namespace", None, Some("foo")));
        let t = parse_target("v1", &["namespaces", "foo", "status"]).unwrap();
        assert_eq!((t.rt.kind, t.sub.as_deref()), ("Namespace", Some("status")));
        let t = parse_target("apps/v1", &["namespaces", "a", "deployments", "d", "scale"]).unwrap();
        assert_eq!((t.ns.as_deref(), t.name.as_deref(), t.sub.as_deref()), (Some("a"), Some("d"), Some("scale")));
        let t = parse_target("apps/v1", &["deployments"]).unwrap();
        assert!(t.ns.is_none() && t.name.is_none());
        assert!(parse_target("apps/v1", &["deployments", "x"]).is_none());
        assert!(parse_target("v1", &["nope"]).is_none());
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
