//! What clients learn about the server before they act: `/version`, aggregated and
//! legacy discovery, OpenAPI v3 (whose operations advertise the `fieldValidation` query
//! parameter: without it client-go falls back to protobuf `/openapi/v2` and fails), and
//! the `meta.k8s.io/v1 Table` rendering `kubectl get` asks for.

use serde_json::{Value, json};

use crate::resources::{RESOURCES, REVIEW_GROUP, ResourceType, group_versions};

/// The Kubernetes version reported. `gitVersion` carries build metadata, not a
/// pre-release suffix: `v1.33.0-standin` would fail charts' `kubeVersion: >=1.25.0`.
pub fn version() -> Value {
    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0+standin", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64"})
}

/// Content-Type of aggregated discovery documents.
pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

fn aggregated_resource(r: &ResourceType) -> Value {
    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let mut subs = Vec::new();
    // Listed as kube-apiserver lists it (sorted, so before status); `kubectl logs` works
    // without it, but clients checking discovery for logs find it.
    if r.kind == "Pod" {
        subs.push(json!({"subresource": "log", "responseKind": {"group": "", "version": "", "kind": "Pod"}, "verbs": ["get"]}));
    }
    if r.status {
        subs.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
    }
    if r.scale {
        subs.push(
            json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"]}),
        );
    }
    let mut v = json!({"resource": r.plural, "responseKind": kind,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": r.singular, "verbs": r.verbs()});
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !subs.is_empty() {
        v["subresources"] = subs.into();
    }
    if matches!(
        r.kind,
        "Pod" | "Service" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob"
    ) {
        v["categories"] = json!(["all"]);
    }
    v
}

/// `APIGroupDiscoveryList` for `/api` (`core`) or `/apis`.
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, v)| {
            json!({"metadata": {"name": g}, "versions": [{"version": v,
                "resources": resources_of(g, v).map(aggregated_resource).collect::<Vec<_>>(), "freshness": "Current"}]})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

fn group_entry(g: &str, v: &str) -> Value {
    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    json!({"name": g, "versions": [gv], "preferredVersion": gv})
}

/// Legacy `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> =
        group_versions().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_entry(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/<group>`, if served.
pub fn api_group(group: &str) -> Option<Value> {
    let (g, v) = group_versions().into_iter().find(|(g, _)| *g == group)?;
    let mut e = group_entry(g, v);
    e["kind"] = "APIGroup".into();
    e["apiVersion"] = "v1".into();
    Some(e)
}

/// Legacy `APIResourceList` for one group/version, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut list = Vec::new();
    for r in resources_of(group, version) {
        let mut e = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": r.verbs()});
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        list.push(e);
        if r.kind == "Pod" {
            list.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}),
            );
        }
        if r.status {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.scale {
            list.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}

fn prefix(g: &str, v: &str) -> String {
    if g.is_empty() { format!("api/{v}") } else { format!("apis/{g}/{v}") }
}

/// `/openapi/v3`: one document per group/version.
pub fn openapi_root() -> Value {
    let paths: serde_json::Map<String, Value> = group_versions()
        .into_iter()
        .map(|(g, v)| {
            let p = prefix(g, v);
            let url = format!("/openapi/v3/{p}?hash={}", openapi_hash(g, v));
            (p, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

fn openapi_hash(g: &str, v: &str) -> String {
    format!("{:016X}", (g.len() as u64 * 31 + v.len() as u64) ^ 0x5eed_5eed)
}

/// `/openapi/v3/<api/v1|apis/G/V>`: paths with GVK extensions and the query parameters
/// client-go checks for; schemas that accept anything.
pub fn openapi_doc(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let params = json!([
        {"name": "fieldValidation", "in": "query", "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    for r in resources_of(group, version) {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let schema_name =
            format!("io.k8s.standin.{}.{}.{}", if r.group.is_empty() { "core" } else { r.group }, r.version, r.kind);
        schemas.insert(
            schema_name.clone(),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-group-version-kind": [gvk]}),
        );
        let content = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}});
        let op = |action: &str| {
            json!({"operationId": format!("{action}{}", r.kind), "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk, "parameters": params,
                "responses": {"200": {"description": "OK", "content": content}}})
        };
        let base = if r.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}", prefix(group, version), r.plural)
        } else {
            format!("/{}/{}", prefix(group, version), r.plural)
        };
        if r.group == REVIEW_GROUP {
            paths.insert(base, json!({"post": op("post")}));
            continue;
        }
        let mut coll = json!({"get": op("list"), "post": op("post"), "delete": op("deletecollection")});
        let mut item = json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")});
        if r.namespaced {
            let ns = json!([{"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}]);
            coll["parameters"] = ns.clone();
            item["parameters"] =
                json!([ns[0], {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
        } else {
            item["parameters"] =
                json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        paths.insert(format!("{base}/{{name}}"), item);
        paths.insert(base, coll);
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths,
        "components": {"schemas": schemas}}))
}

/// A `meta.k8s.io/v1 Table` of objects, with Name and Created At columns.
pub fn table(objects: &[Value], include_object: bool, list_rv: Option<u64>) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = if include_object {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            };
            json!({"cells": [o["metadata"]["name"], o["metadata"]["creationTimestamp"]], "object": object})
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = list_rv {
        meta["resourceVersion"] = rv.to_string().into();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is the time the object was created.", "priority": 0}],
        "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_operations_advertise_field_validation() {
        let doc = openapi_doc("apps", "v1").unwrap();
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        let root = openapi_root();
        assert!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        assert!(openapi_doc("nope", "v1").is_none());
    }

    #[test]
    fn aggregated_discovery_lists_core_and_groups_apart() {
        let core = aggregated(true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap()
            .clone();
        assert_eq!(pods["scope"], "Namespaced");
        let subs: Vec<&str> =
            pods["subresources"].as_array().unwrap().iter().map(|s| s["subresource"].as_str().unwrap()).collect();
        assert_eq!(subs, ["log", "status"]);
        let legacy = resource_list("", "v1").unwrap();
        let log = legacy["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods/log").unwrap();
        assert_eq!((log["kind"].as_str(), log["verbs"].clone()), (Some("Pod"), json!(["get"])));
        let groups = aggregated(false);
        assert!(groups["items"].as_array().unwrap().iter().any(|g| g["metadata"]["name"] == "apps"));
        assert!(version()["gitVersion"].as_str().unwrap().contains('+'));
    }
}
