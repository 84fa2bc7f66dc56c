//! The table of resource types the stand-in serves: group, version, plural, kind, scope,
//! and which subresources exist. Discovery, OpenAPI, routing and the store all read this
//! table; nothing else decides whether a resource exists.

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Has a `status` subresource, so main-resource writes keep the stored status.
    pub status: bool,
    /// Has a `scale` subresource (`kubectl scale`).
    pub scale: bool,
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The store's key for this type, e.g. `apps/v1/deployments`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.api_version(), self.plural)
    }

    /// The verbs discovery advertises: reviews (`SelfSubjectAccessReview`) are only
    /// created, answered and never stored; everything else is fully served.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.group == REVIEW_GROUP { &["create"] } else { &ALL_VERBS }
    }

    /// `deployments.apps`, as used in Status messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }
}

/// The API group of access reviews, which the server answers instead of storing.
pub const REVIEW_GROUP: &str = "authorization.k8s.io";

const ALL_VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

macro_rules! rt {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $status:expr, $scale:expr) => {
        ResourceType {
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            short_names: $short,
            status: $status,
            scale: $scale,
        }
    };
}

/// Every served type. Charts that use a kind outside this list fail with helm's own
/// "no matches for kind" message, as on a cluster without that API.
pub static RESOURCES: &[ResourceType] = &[
    rt!("", "v1", "pods", "pod", "Pod", true, &["po"], true, false),
    rt!("", "v1", "services", "service", "Service", true, &["svc"], true, false),
    rt!("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], false, false),
    rt!("", "v1", "secrets", "secret", "Secret", true, &[], false, false),
    rt!("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], true, false),
    rt!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        true,
        false
    ),
    rt!("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, &["pv"], true, false),
    rt!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], false, false),
    rt!("", "v1", "endpoints", "endpoints", "Endpoints", true, &["ep"], false, false),
    rt!("", "v1", "events", "event", "Event", true, &["ev"], false, false),
    rt!("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, &["quota"], true, false),
    rt!("", "v1", "limitranges", "limitrange", "LimitRange", true, &["limits"], false, false),
    rt!("", "v1", "nodes", "node", "Node", false, &["no"], true, false),
    rt!("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], true, true),
    rt!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], true, true),
    rt!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], true, true),
    rt!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, &["ds"], true, false),
    rt!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true, &[], false, false),
    rt!("batch", "v1", "jobs", "job", "Job", true, &[], true, false),
    rt!("batch", "v1", "cronjobs", "cronjob", "CronJob", true, &["cj"], true, false),
    rt!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
        false
    ),
    rt!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        false
    ),
    rt!("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, &["ing"], true, false),
    rt!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
        false
    ),
    rt!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, &[], false, false),
    rt!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, &[], false, false),
    rt!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, &[], false, false),
    rt!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false
    ),
    rt!("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, &["sc"], false, false),
    rt!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        false
    ),
    // Answered by `authz` (`kubectl auth can-i`); listed so discovery names it.
    rt!(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
        &[],
        false,
        false
    ),
];

/// The type served at `api_version` (`v1`, `apps/v1`) under `plural`.
pub fn lookup(api_version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.plural == plural && r.api_version() == api_version)
}

/// Every group/version served, core first, in a stable order.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}
