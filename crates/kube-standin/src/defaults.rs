//! What the API server adds or refuses on every write: defaulted fields (some of which
//! helm 3's readiness code dereferences), Secret `stringData`, Service cluster IPs and
//! node ports, Job selectors, and the immutability rules. Pure functions over JSON plus
//! a small allocator for IPs and ports.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Hands out Service cluster IPs (10.96.0.0/12) and node ports (30000–32767).
#[derive(Debug)]
pub struct Allocator {
    next_ip: u32,
    next_node_port: u16,
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator { next_ip: 10, next_node_port: 30000 }
    }
}

impl Allocator {
    fn ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip += 1;
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    fn node_port(&mut self) -> u16 {
        let p = self.next_node_port;
        self.next_node_port = if p >= 32767 { 30000 } else { p + 1 };
        p
    }
}

/// Sets `obj[key]` to `v` when it is missing or null.
fn dflt(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = v;
        }
    }
}

fn each_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten()
}

/// Defaults of a container, as the API server fills them.
fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default().to_string();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let latest = !tag.contains(':') || tag.ends_with(":latest");
    let policy = if latest && !image.contains('@') { "Always" } else { "IfNotPresent" };
    dflt(c, "imagePullPolicy", policy.into());
    dflt(c, "terminationMessagePath", "/dev/termination-log".into());
    dflt(c, "terminationMessagePolicy", "File".into());
    dflt(c, "resources", json!({}));
    for p in each_mut(c, "ports") {
        dflt(p, "protocol", "TCP".into());
    }
}

/// Defaults of a pod spec (bare pods and workload templates).
fn pod_spec(spec: &mut Value, restart: &str) {
    if !spec.is_object() {
        return;
    }
    dflt(spec, "restartPolicy", restart.into());
    dflt(spec, "terminationGracePeriodSeconds", 30.into());
    dflt(spec, "dnsPolicy", "ClusterFirst".into());
    dflt(spec, "schedulerName", "default-scheduler".into());
    dflt(spec, "securityContext", json!({}));
    for key in ["containers", "initContainers"] {
        for c in each_mut(spec, key) {
            container(c);
        }
    }
}

fn template(obj: &mut Value, restart: &str) {
    if let Some(t) = obj.pointer_mut("/spec/template") {
        dflt(t, "metadata", json!({}));
        if let Some(spec) = t.get_mut("spec") {
            pod_spec(spec, restart);
        }
    }
}

/// Fills in defaults. Idempotent: it runs on every write. `uid` is the object's uid
/// (Job selectors use it).
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value, alloc: &mut Allocator) {
    dflt(obj, "apiVersion", rt.api_version().into());
    dflt(obj, "kind", rt.kind.into());
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
    if rt.kind != "ConfigMap" && rt.kind != "Secret" && rt.kind != "ServiceAccount" {
        dflt(obj, "spec", json!({}));
    }
    match rt.kind {
        "Pod" => {
            if let Some(s) = obj.get_mut("spec") {
                pod_spec(s, "Always");
            }
        }
        "Deployment" => {
            let spec = &mut obj["spec"];
            dflt(spec, "replicas", 1.into());
            dflt(spec, "revisionHistoryLimit", 10.into());
            dflt(spec, "progressDeadlineSeconds", 600.into());
            dflt(spec, "strategy", json!({"type": "RollingUpdate"}));
            if spec["strategy"]["type"].as_str().unwrap_or("RollingUpdate") == "RollingUpdate" {
                dflt(&mut spec["strategy"], "type", "RollingUpdate".into());
                dflt(&mut spec["strategy"], "rollingUpdate", json!({}));
                dflt(&mut spec["strategy"]["rollingUpdate"], "maxSurge", "25%".into());
                dflt(&mut spec["strategy"]["rollingUpdate"], "maxUnavailable", "25%".into());
            }
            template(obj, "Always");
        }
        "ReplicaSet" => {
            dflt(&mut obj["spec"], "replicas", 1.into());
            template(obj, "Always");
        }
        "StatefulSet" => {
            let spec = &mut obj["spec"];
            dflt(spec, "replicas", 1.into());
            dflt(spec, "podManagementPolicy", "OrderedReady".into());
            dflt(spec, "revisionHistoryLimit", 10.into());
            dflt(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                dflt(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                dflt(&mut spec["updateStrategy"]["rollingUpdate"], "partition", 0.into());
            }
            dflt(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(obj, "Always");
        }
        "DaemonSet" => {
            let spec = &mut obj["spec"];
            dflt(spec, "revisionHistoryLimit", 10.into());
            dflt(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                dflt(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                dflt(&mut spec["updateStrategy"]["rollingUpdate"], "maxUnavailable", 1.into());
                dflt(&mut spec["updateStrategy"]["rollingUpdate"], "maxSurge", 0.into());
            }
            template(obj, "Always");
        }
        "Job" => job(obj, &uid),
        "CronJob" => {
            let spec = &mut obj["spec"];
            dflt(spec, "concurrencyPolicy", "Allow".into());
            dflt(spec, "suspend", false.into());
            dflt(spec, "successfulJobsHistoryLimit", 3.into());
            dflt(spec, "failedJobsHistoryLimit", 1.into());
            if let Some(t) = obj.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                pod_spec(t, "Never");
            }
        }
        "Service" => service(obj, alloc),
        "Secret" => secret(obj),
        "PersistentVolumeClaim" => {
            dflt(&mut obj["spec"], "volumeMode", "Filesystem".into());
            // No provisioner runs: every claim is bound at once to a volume named after it.
            let modes = obj["spec"]["accessModes"].clone();
            let size = obj.pointer("/spec/resources/requests/storage").cloned().unwrap_or(Value::Null);
            let volume = format!("pvc-{uid}");
            dflt(&mut obj["spec"], "volumeName", volume.into());
            dflt(obj, "status", json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}));
        }
        "Namespace" => {
            dflt(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
            let name = obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
            dflt(&mut obj["metadata"], "labels", json!({}));
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            dflt(obj, "status", json!({"phase": "Active"}));
        }
        _ => {}
    }
}

fn job(obj: &mut Value, uid: &str) {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let spec = &mut obj["spec"];
    dflt(spec, "parallelism", 1.into());
    dflt(spec, "completions", 1.into());
    dflt(spec, "backoffLimit", 6.into());
    dflt(spec, "completionMode", "NonIndexed".into());
    dflt(spec, "suspend", false.into());
    dflt(spec, "podReplacementPolicy", "TerminatingOrFailed".into());
    if spec["manualSelector"] != true && !uid.is_empty() {
        dflt(spec, "selector", json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
        dflt(spec, "template", json!({}));
        dflt(&mut spec["template"], "metadata", json!({}));
        dflt(&mut spec["template"]["metadata"], "labels", json!({}));
        let labels = &mut spec["template"]["metadata"]["labels"];
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid),
            ("controller-uid", uid),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("job-name", name.as_str()),
        ] {
            dflt(labels, k, v.into());
        }
    }
    template(obj, "Never");
}

fn service(obj: &mut Value, alloc: &mut Allocator) {
    let spec = &mut obj["spec"];
    dflt(spec, "type", "ClusterIP".into());
    dflt(spec, "sessionAffinity", "None".into());
    let ty = spec["type"].as_str().unwrap_or_default().to_string();
    if ty == "ExternalName" {
        return;
    }
    dflt(spec, "clusterIP", alloc.ip().into());
    let ip = spec["clusterIP"].clone();
    dflt(spec, "clusterIPs", json!([ip]));
    dflt(spec, "ipFamilies", json!(["IPv4"]));
    dflt(spec, "ipFamilyPolicy", "SingleStack".into());
    dflt(spec, "internalTrafficPolicy", "Cluster".into());
    let node_ports = ty == "NodePort" || ty == "LoadBalancer";
    if node_ports {
        dflt(spec, "externalTrafficPolicy", "Cluster".into());
    }
    for p in each_mut(spec, "ports") {
        dflt(p, "protocol", "TCP".into());
        let port = p["port"].clone();
        dflt(p, "targetPort", port);
        if node_ports {
            dflt(p, "nodePort", alloc.node_port().into());
        }
    }
    if ty == "LoadBalancer" && obj.pointer("/status/loadBalancer/ingress").is_none() {
        obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]}});
    }
}

fn secret(obj: &mut Value) {
    dflt(obj, "type", "Opaque".into());
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        dflt(obj, "data", json!({}));
        for (k, v) in sd {
            let enc = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
            obj["data"][k] = enc.into();
        }
    }
}

/// Carries server-set fields an update may omit into `new`: a Service's cluster IPs and
/// node ports, as apiservers ≥ 1.20 do (helm 3 `--force` PUTs without them).
pub fn carry_over(rt: &ResourceType, old: &Value, new: &mut Value) {
    if rt.kind != "Service" {
        return;
    }
    for key in ["clusterIP", "clusterIPs"] {
        if let (Some(v), Some(spec)) = (old.pointer(&format!("/spec/{key}")), new.get_mut("spec")) {
            dflt(spec, key, v.clone());
        }
    }
    let old_ports: Map<String, Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["port"].to_string(), p.get("nodePort")?.clone())))
        .collect();
    if let Some(spec) = new.get_mut("spec") {
        for p in each_mut(spec, "ports") {
            if let Some(np) = old_ports.get(&p["port"].to_string()) {
                dflt(p, "nodePort", np.clone());
            }
        }
    }
}

/// Rejects changes to immutable fields; the message is the `Invalid` Status detail.
pub fn check_immutable(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), String> {
    let same = |p: &str| old.pointer(p) == new.pointer(p);
    let immutable: &[&str] = match rt.kind {
        "Service" => &["/spec/clusterIP"],
        "Job" => &["/spec/selector", "/spec/template"],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => &["/spec/selector"],
        "Secret" | "ConfigMap" if old["immutable"] == true => &["/data", "/binaryData", "/immutable"],
        _ => &[],
    };
    for p in immutable {
        if !same(p) {
            let field = p.trim_start_matches('/').replace('/', ".");
            return Err(format!("{field}: Invalid value: field is immutable"));
        }
    }
    if rt.kind == "StatefulSet" {
        for p in ["/spec/serviceName", "/spec/volumeClaimTemplates", "/spec/podManagementPolicy"] {
            if !same(p) {
                return Err(
                    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', \
                     'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' \
                     are forbidden"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// Checks a new or updated object for what the server requires of every object.
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<(), String> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err("metadata.name: Required value: name or generateName is required".into());
    }
    if name.len() > 253 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.') {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
        ));
    }
    if matches!(rt.kind, "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") {
        let sel = crate::selectors::LabelSelector::from_object(&obj["spec"]["selector"]);
        let labels = obj.pointer("/spec/template/metadata/labels").cloned().unwrap_or(Value::Null);
        match sel {
            None => return Err("spec.selector: Required value".into()),
            Some(s) if !s.matches(&labels) => {
                return Err(
                    "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into(),
                );
            }
            Some(_) => {}
        }
    }
    crate::run::validate(rt.kind, obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn deployment_and_service_defaults() {
        let mut alloc = Allocator::default();
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults(lookup("apps/v1", "deployments").unwrap(), &mut d, &mut alloc);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        let again = d.clone();
        apply_defaults(lookup("apps/v1", "deployments").unwrap(), &mut d, &mut alloc);
        assert_eq!(d, again, "defaulting is idempotent");

        let svc_rt = lookup("v1", "services").unwrap();
        let mut s = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        apply_defaults(svc_rt, &mut s, &mut alloc);
        assert_eq!(s["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        let mut put = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        carry_over(svc_rt, &s, &mut put);
        apply_defaults(svc_rt, &mut put, &mut alloc);
        assert!(check_immutable(svc_rt, &s, &put).is_ok());
        put["spec"]["clusterIP"] = "10.96.9.9".into();
        assert!(check_immutable(svc_rt, &s, &put).is_err());
    }

    #[test]
    fn secrets_and_jobs() {
        let mut alloc = Allocator::default();
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"a": "hi"}});
        apply_defaults(lookup("v1", "secrets").unwrap(), &mut s, &mut alloc);
        assert_eq!(
            s,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "aGk="}})
        );
        let mut j = json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}});
        apply_defaults(lookup("batch/v1", "jobs").unwrap(), &mut j, &mut alloc);
        assert_eq!(j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], "u1");
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
        assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
    }
}
