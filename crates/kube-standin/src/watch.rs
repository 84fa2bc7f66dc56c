//! Watch streams: WatchList (`sendInitialEvents=true`, ending the initial ADDED events
//! with a BOOKMARK annotated `k8s.io/initial-events-end`, which helm 4's waits require),
//! classic watches that replay the event log after a `resourceVersion` (helm 3), and
//! synthetic ADDED events for watches from "any" version. A stream ends at
//! `timeoutSeconds` or as soon as the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;

/// A response body fed line by line from a channel; hyper drops it (and so closes the
/// channel) when the client disconnects.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// What a watch request asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub rt: &'static ResourceType,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub timeout: Duration,
}

impl WatchRequest {
    fn matches(&self, ns: &str, obj: &Value) -> bool {
        self.ns.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches(&obj["metadata"]["labels"])
            && self.fields.matches(obj)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts streaming; the returned receiver feeds the response body.
pub fn start(shared: Arc<Shared>, req: WatchRequest) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(256);
    let rid = req.rt.id();
    let (initial, mut pos, mut changed) = {
        let st = shared.lock();
        let mut initial = Vec::new();
        let pos = match req.resource_version {
            Some(rv) if !req.send_initial_events => rv,
            _ => {
                for obj in st.list(&rid, req.ns.as_deref()) {
                    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
                    if req.matches(ns, obj) {
                        initial.push(line("ADDED", obj));
                    }
                }
                if req.send_initial_events {
                    let bookmark = json!({"kind": req.rt.kind, "apiVersion": req.rt.api_version(),
                        "metadata": {"resourceVersion": st.rv().to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"}}});
                    initial.push(line("BOOKMARK", &bookmark));
                }
                st.rv()
            }
        };
        (initial, pos, st.subscribe())
    };
    tokio::spawn(async move {
        for l in initial {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        loop {
            let batch: Vec<Bytes> = {
                let st = shared.lock();
                let events = st.events_since(pos);
                let out = events
                    .iter()
                    .filter(|e| e.rid == rid && req.matches(&e.ns, &e.object))
                    .map(|e| line(e.kind.as_str(), &e.object))
                    .collect();
                pos = events.last().map_or(pos, |e| e.rv);
                out
            };
            for l in batch {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = &mut deadline => return,
                () = tx.closed() => return,
            }
        }
    });
    rx
}
