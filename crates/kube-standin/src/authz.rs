//! What the stand-in forbids. Every request is allowed (the client acts as a cluster
//! admin) except those a test denies with [`DenyRule`]s. A request is checked by the
//! attributes kube-apiserver authorizes it by — verb, API group, resource and
//! subresource, namespace, name — and a denied one gets the `403 Forbidden` Status
//! kube-apiserver sends a user without that permission. `SelfSubjectAccessReview`s
//! (`kubectl auth can-i`) are answered from the same rules.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::resources::{self, ResourceType};

/// The user Forbidden messages name (the stand-in authenticates nobody).
pub const USER: &str = "standin";

/// An API verb, as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT (`kubectl replace`).
    Update,
    /// PATCH, server-side apply included.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ];

    /// `get`, `deletecollection`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deny rule or verb that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDenyRuleError(String);

impl FromStr for Verb {
    type Err = ParseDenyRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s.trim()).ok_or_else(|| {
            ParseDenyRuleError(format!(
                "unknown verb {s:?} (one of get, list, watch, create, update, patch, delete, deletecollection; \
                 `kubectl replace` is update, `kubectl apply` is patch)"
            ))
        })
    }
}

/// Requests to deny. Empty `verbs` means every verb; `None` in the other fields means
/// any group, any namespace, any object.
///
/// As in RBAC, `resource` is a plural (`configmaps`) or `plural/subresource`
/// (`deployments/scale`), and `*` means every resource; a rule for `deployments` does
/// not cover `deployments/status`. A rule with a namespace also denies requests that
/// span all namespaces (`kubectl get cm -A`). A rule with a name only matches requests
/// that carry that name: get, update, patch, delete, and list or watch with a
/// `metadata.name` field selector — not create, which the API server authorizes before
/// the object's name is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyRule {
    pub verbs: Vec<Verb>,
    pub resource: String,
    pub group: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl DenyRule {
    /// Denies `verbs` (empty: all) on `resource` in any group, namespace and object.
    pub fn new(verbs: &[Verb], resource: &str) -> Self {
        DenyRule { verbs: verbs.to_vec(), resource: resource.to_string(), ..DenyRule::default() }
    }

    /// Only in API group `group` (`""` is the core group).
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// Only in namespace `namespace`.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Only the object named `name`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    fn matches(&self, a: &Attributes) -> bool {
        let verb = self.verbs.is_empty() || a.verb == "*" || self.verbs.iter().any(|v| v.as_str() == a.verb);
        let resource = self.resource == "*"
            || a.resource == "*"
            || match &a.subresource {
                Some(sub) => self.resource == format!("{}/{sub}", a.resource),
                None => self.resource == a.resource,
            };
        let group = self.group.as_deref().is_none_or(|g| a.group == "*" || g == a.group);
        let namespace = match (&self.namespace, &a.namespace) {
            (None, _) => true,
            (Some(rule), Some(asked)) => rule == asked,
            // A request across all namespaces includes the denied one.
            (Some(_), None) => a.namespaced,
        };
        let name = match (&self.name, &a.name) {
            (None, _) => true,
            (Some(rule), Some(asked)) => rule == asked,
            (Some(_), None) => false,
        };
        verb && resource && group && namespace && name
    }
}

/// `VERBS:RESOURCE[:NAMESPACE[:NAME]]`: verbs comma-separated or `*`; the resource as
/// `plural[.group][/subresource]` (a bare plural matches any group) or `*`; an empty or
/// `*` namespace or name means any. E.g. `get,update:configmaps:bsr:helm-safe-upgrade.bsr`.
impl FromStr for DenyRule {
    type Err = ParseDenyRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        if !(2..=4).contains(&parts.len()) || parts[1].is_empty() {
            return Err(ParseDenyRuleError(format!("{s:?} is not VERBS:RESOURCE[:NAMESPACE[:NAME]]")));
        }
        let verbs = match parts[0] {
            "" | "*" => Vec::new(),
            list => list.split(',').map(Verb::from_str).collect::<Result<_, _>>()?,
        };
        let (resource, sub) = match parts[1].split_once('/') {
            Some((r, sub)) => (r, Some(sub)),
            None => (parts[1], None),
        };
        let (plural, group) = match resource.split_once('.') {
            Some((p, g)) => (p, Some(g.to_string())),
            None => (resource, None),
        };
        let any = |p: Option<&&str>| p.filter(|v| !v.is_empty() && **v != "*").map(|v| v.to_string());
        Ok(DenyRule {
            verbs,
            resource: sub.map_or_else(|| plural.to_string(), |sub| format!("{plural}/{sub}")),
            group,
            namespace: any(parts.get(2)),
            name: any(parts.get(3)),
        })
    }
}

impl fmt::Display for DenyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verbs: Vec<&str> = self.verbs.iter().map(|v| v.as_str()).collect();
        let verbs = if verbs.is_empty() { "*".to_string() } else { verbs.join(",") };
        let (plural, sub) = match self.resource.split_once('/') {
            Some((p, s)) => (p, Some(s)),
            None => (self.resource.as_str(), None),
        };
        write!(f, "{verbs}:{plural}")?;
        if let Some(g) = &self.group {
            write!(f, ".{g}")?;
        }
        if let Some(s) = sub {
            write!(f, "/{s}")?;
        }
        write!(f, ":{}:{}", self.namespace.as_deref().unwrap_or("*"), self.name.as_deref().unwrap_or("*"))
    }
}

/// Names a rule [`crate::StandIn::deny`] put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenyId(u64);

/// The deny rules in force.
#[derive(Debug, Default)]
pub struct Denials {
    next_id: u64,
    rules: Vec<(DenyId, DenyRule)>,
}

impl Denials {
    pub fn add(&mut self, rule: DenyRule) -> DenyId {
        self.next_id += 1;
        let id = DenyId(self.next_id);
        self.rules.push((id, rule));
        id
    }

    pub fn remove(&mut self, id: DenyId) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        self.rules.len() != before
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn denies(&self, a: &Attributes) -> bool {
        self.rules.iter().any(|(_, r)| r.matches(a))
    }
}

/// What a request is authorized by, as kube-apiserver's request info has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    /// None: cluster-scoped, or across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The resource lives in namespaces, so no namespace means all of them.
    pub namespaced: bool,
}

impl Attributes {
    /// The attributes of a resource request: the verb follows from the method, whether
    /// a name is in the path and `watch`; a list or watch takes its name from a
    /// `metadata.name` field selector, as kube-apiserver does.
    pub fn of_request(
        method: &str,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: Option<&str>,
        subresource: Option<&str>,
        query: &std::collections::HashMap<String, String>,
    ) -> Option<Attributes> {
        let mut name = name.map(String::from);
        let verb = match (method, name.is_some()) {
            ("GET" | "HEAD", true) => "get",
            ("GET" | "HEAD", false) => {
                name = query.get("fieldSelector").and_then(|s| name_from_field_selector(s));
                if query.get("watch").is_some_and(|w| matches!(w.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"))
                {
                    "watch"
                } else {
                    "list"
                }
            }
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => return None,
        };
        Some(Attributes {
            verb: verb.to_string(),
            group: rt.group.to_string(),
            resource: rt.plural.to_string(),
            subresource: subresource.map(String::from),
            namespace: namespace.filter(|n| !n.is_empty()).map(String::from),
            name,
            namespaced: rt.namespaced,
        })
    }

    /// The `403 Forbidden` kube-apiserver answers when these attributes are denied.
    pub fn forbidden(&self) -> ApiError {
        let resource = match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".to_string(),
        };
        let why =
            format!("User {USER:?} cannot {} resource {resource:?} in API group {:?} {scope}", self.verb, self.group);
        let qualified =
            if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) };
        let message = match &self.name {
            Some(name) => format!("{qualified} {name:?} is forbidden: {why}"),
            None => format!("{qualified} is forbidden: {why}"),
        };
        let mut e = ApiError::new(403, "Forbidden", message);
        e.details = json!({"kind": self.resource});
        if let Some(name) = &self.name {
            e.details["name"] = name.clone().into();
        }
        if !self.group.is_empty() {
            e.details["group"] = self.group.clone().into();
        }
        e
    }
}

/// The name a field selector pins with `metadata.name=X` (or `==`), if any.
fn name_from_field_selector(selector: &str) -> Option<String> {
    selector.split(',').find_map(|req| {
        let (key, value) = req.split_once("==").or_else(|| req.split_once('='))?;
        (key.trim() == "metadata.name" && !value.is_empty()).then(|| value.trim().to_string())
    })
}

/// Answers a `SelfSubjectAccessReview`: allowed unless a rule denies its resource
/// attributes; non-resource requests (`/healthz`, …) are always allowed.
pub fn review(denials: &Denials, body: &Value) -> Result<Value, ApiError> {
    let spec = body.get("spec").filter(|s| s.is_object()).ok_or_else(|| {
        ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec: Required value",
        )
    })?;
    let allowed = match spec.get("resourceAttributes") {
        Some(ra) => {
            let field = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (group, resource) = (field("group"), field("resource"));
            let namespaced = resources::RESOURCES
                .iter()
                .find(|r| r.plural == resource && (group == "*" || r.group == group))
                .is_none_or(|r| r.namespaced);
            let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
            let attrs = Attributes {
                verb: field("verb"),
                group,
                resource,
                subresource: nonempty(field("subresource")),
                namespace: nonempty(field("namespace")),
                name: nonempty(field("name")),
                namespaced,
            };
            !denials.denies(&attrs)
        }
        None => true,
    };
    Ok(json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": spec, "status": {"allowed": allowed}}))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn attrs(method: &str, plural: &str, ns: Option<&str>, name: Option<&str>, query: &[(&str, &str)]) -> Attributes {
        let rt = resources::RESOURCES.iter().find(|r| r.plural == plural).unwrap();
        let q: HashMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Attributes::of_request(method, rt, ns, name, None, &q).unwrap()
    }

    #[test]
    fn verbs_follow_method_name_and_watch() {
        let verb = |m, name, q: &[(&str, &str)]| attrs(m, "configmaps", Some("a"), name, q).verb;
        assert_eq!(verb("GET", Some("x"), &[]), "get");
        assert_eq!(verb("GET", None, &[]), "list");
        assert_eq!(verb("GET", None, &[("watch", "true")]), "watch");
        assert_eq!(verb("POST", None, &[]), "create");
        assert_eq!(verb("PUT", Some("x"), &[]), "update");
        assert_eq!(verb("PATCH", Some("x"), &[]), "patch");
        assert_eq!(verb("DELETE", Some("x"), &[]), "delete");
        assert_eq!(verb("DELETE", None, &[]), "deletecollection");
        let w = attrs("GET", "configmaps", Some("a"), None, &[("watch", "1"), ("fieldSelector", "metadata.name=x")]);
        assert_eq!((w.verb.as_str(), w.name.as_deref()), ("watch", Some("x")));
        let l = attrs("GET", "configmaps", Some("a"), None, &[("fieldSelector", "metadata.name!=x")]);
        assert_eq!(l.name, None);
    }

    #[test]
    fn rules_match_like_rbac() {
        let rule: DenyRule = "get,update:configmaps:bsr:lock".parse().unwrap();
        assert_eq!(rule, DenyRule::new(&[Verb::Get, Verb::Update], "configmaps").in_namespace("bsr").named("lock"));
        assert!(rule.matches(&attrs("GET", "configmaps", Some("bsr"), Some("lock"), &[])));
        assert!(rule.matches(&attrs("PUT", "configmaps", Some("bsr"), Some("lock"), &[])));
        assert!(!rule.matches(&attrs("DELETE", "configmaps", Some("bsr"), Some("lock"), &[])));
        assert!(!rule.matches(&attrs("GET", "configmaps", Some("other"), Some("lock"), &[])));
        assert!(!rule.matches(&attrs("GET", "configmaps", Some("bsr"), Some("other"), &[])));
        assert!(!rule.matches(&attrs("GET", "secrets", Some("bsr"), Some("lock"), &[])));

        let list: DenyRule = "list:configmaps:bsr".parse().unwrap();
        assert!(list.matches(&attrs("GET", "configmaps", None, None, &[])), "all namespaces include bsr");
        let all: DenyRule = "*:deployments.apps".parse().unwrap();
        assert_eq!(all.group.as_deref(), Some("apps"));
        assert!(all.matches(&attrs("POST", "deployments", Some("x"), None, &[])));
        let rt = resources::lookup("apps/v1", "deployments").unwrap();
        let scale = Attributes::of_request("PUT", rt, Some("x"), Some("d"), Some("scale"), &HashMap::new()).unwrap();
        assert!(!all.matches(&scale), "a rule for deployments does not cover deployments/scale");
        assert!("update:deployments.apps/scale".parse::<DenyRule>().unwrap().matches(&scale));
        assert_eq!(
            "update:deployments.apps/scale".parse::<DenyRule>().unwrap().to_string(),
            "update:deployments.apps/scale:*:*"
        );

        assert!("replace:configmaps".parse::<DenyRule>().unwrap_err().to_string().contains("update"));
        assert!("get".parse::<DenyRule>().is_err());
    }

    #[test]
    fn forbidden_status_reads_like_kube_apiserver() {
        let a = attrs("GET", "configmaps", Some("bsr"), Some("helm-safe-upgrade.bsr"), &[]);
        assert_eq!(
            a.forbidden().status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"configmaps \"helm-safe-upgrade.bsr\" is forbidden: User \"standin\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"bsr\"",
                "reason":"Forbidden","details":{"name":"helm-safe-upgrade.bsr","kind":"configmaps"},"code":403})
        );
        let list = attrs("GET", "configmaps", Some("bsr"), None, &[]).forbidden();
        assert_eq!(
            list.message,
            "configmaps is forbidden: User \"standin\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"bsr\""
        );
        let rt = resources::lookup("v1", "namespaces").unwrap();
        let ns = Attributes::of_request("DELETE", rt, None, Some("bsr"), None, &HashMap::new()).unwrap();
        assert_eq!(
            ns.forbidden().message,
            "namespaces \"bsr\" is forbidden: User \"standin\" cannot delete resource \"namespaces\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn reviews_answer_from_the_rules() {
        let mut d = Denials::default();
        let id = d.add("create:configmaps:bsr".parse().unwrap());
        let ask = |d: &Denials, verb: &str, ns: &str| {
            let body =
                json!({"spec": {"resourceAttributes": {"verb": verb, "resource": "configmaps", "namespace": ns}}});
            review(d, &body).unwrap()["status"]["allowed"].as_bool().unwrap()
        };
        assert!(!ask(&d, "create", "bsr"));
        assert!(ask(&d, "get", "bsr"));
        assert!(ask(&d, "create", "other"));
        assert!(!ask(&d, "create", ""), "in all namespaces includes bsr");
        assert!(d.remove(id) && !d.remove(id));
        assert!(ask(&d, "create", "bsr"));
        assert!(review(&d, &json!({"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})).unwrap()
            ["status"]["allowed"]
            .as_bool()
            .unwrap());
    }
}
