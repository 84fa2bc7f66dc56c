//! `helm template` of every version of every fixture chart, with helm 3 and helm 4:
//! every object is well-formed, workload selectors match their pod labels, pods carry
//! the chart version, bsr's maintenance value really changes the server Deployment, and
//! a "broken" image can be injected from values.

mod common;

use chart_standin::fixtures;
use common::{Helm, helms, yaml_docs};
use serde_json::Value;

/// What a version needs set to render at all: acme's schema wants `redis.host` from
/// 4.0.0, its Deployment `tls.secretName` from 4.2.0 on (tests/acme.rs checks the failures).
fn needs(chart: &str, version: &str) -> &'static [&'static str] {
    match (chart, version) {
        ("acme", "4.0.0" | "4.1.0") => &["redis.host=redis.acme.svc"],
        ("acme", "4.2.0" | "4.3.0") => &["redis.host=redis.acme.svc", "tls.secretName=acme-tls"],
        _ => &[],
    }
}

fn template(helm: &Helm, tgz: &str, sets: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "rel", tgz, "--namespace", "ns"];
    for s in sets {
        args.extend(["--set", s]);
    }
    yaml_docs(&helm.ok(&args))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

fn env<'a>(workload: &'a Value, var: &str) -> Option<&'a Value> {
    workload["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?.iter().find(|e| e["name"] == var)
}

/// Checks every rendered object is well-formed; returns the workloads checked.
fn check_objects(docs: &[Value], chart: &str, version: &str, ctx: &str) -> usize {
    let mut workloads = 0;
    assert!(docs.len() >= 3, "{ctx}: only {} objects", docs.len());
    for d in docs {
        let kind = d["kind"].as_str().unwrap_or_else(|| panic!("{ctx}: no kind in {d}"));
        let api = d["apiVersion"].as_str().unwrap_or_else(|| panic!("{ctx}: no apiVersion in {d}"));
        let expected_api = match kind {
            "Deployment" | "StatefulSet" => "apps/v1",
            "Job" => "batch/v1",
            "Service" | "ConfigMap" | "Secret" => "v1",
            "Ingress" => "networking.k8s.io/v1",
            other => panic!("{ctx}: unexpected kind {other}"),
        };
        assert_eq!(api, expected_api, "{ctx}: {kind}");
        let name = d["metadata"]["name"].as_str().unwrap();
        assert!(name == "rel" || name.starts_with("rel-"), "{ctx}: {kind} {name}");
        assert_eq!(d["metadata"]["labels"]["helm.sh/chart"], format!("{chart}-{version}"), "{ctx}: {kind} {name}");
        if matches!(kind, "Deployment" | "StatefulSet" | "Job") {
            let pod_labels = d["spec"]["template"]["metadata"]["labels"].as_object().unwrap();
            assert_eq!(pod_labels["app.kubernetes.io/version"], version, "{ctx}: {kind} {name} pod version label");
            assert_eq!(pod_labels["helm.sh/chart"], format!("{chart}-{version}"), "{ctx}: {kind} {name}");
            let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
            assert!(!containers.is_empty() && containers[0]["image"].is_string(), "{ctx}: {kind} {name}");
        }
        if matches!(kind, "Deployment" | "StatefulSet") {
            workloads += 1;
            let pod_labels = d["spec"]["template"]["metadata"]["labels"].as_object().unwrap();
            let selector = d["spec"]["selector"]["matchLabels"].as_object().unwrap();
            assert!(!selector.is_empty(), "{ctx}: {name} empty selector");
            for (k, v) in selector {
                assert_eq!(pod_labels.get(k), Some(v), "{ctx}: {kind} {name} selector {k} does not match pod labels");
                assert_ne!(k, "app.kubernetes.io/version", "{ctx}: version in an immutable selector");
            }
        }
        if kind == "Service" {
            let selector = d["spec"]["selector"].as_object().unwrap();
            let matched = docs.iter().any(|w| {
                matches!(w["kind"].as_str(), Some("Deployment" | "StatefulSet"))
                    && selector.iter().all(|(k, v)| w["spec"]["template"]["metadata"]["labels"][k] == *v)
            });
            assert!(matched, "{ctx}: Service {name} selects no workload");
        }
    }
    workloads
}

#[test]
fn every_fixture_version_renders_valid_objects() {
    let dir = tempfile::tempdir().unwrap();
    for helm in helms() {
        for chart in fixtures::CHARTS {
            for v in fixtures::versions(chart).unwrap() {
                let tgz = fixtures::package_version(chart, &v.version, dir.path()).unwrap();
                let ctx = format!("helm {} {chart} {}", helm.version, v.version);
                let docs = template(&helm, tgz.to_str().unwrap(), needs(chart, &v.version));
                assert_eq!(check_objects(&docs, chart, &v.version, &ctx), 1, "{ctx}: one workload");
                let images: Vec<&str> = docs
                    .iter()
                    .filter_map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].as_str())
                    .collect();
                assert!(images.iter().all(|i| i.contains(&v.app_version)), "{ctx}: images {images:?} lack appVersion");
            }
        }
    }
}

#[test]
fn bsr_maintenance_migration_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = fixtures::package_version("bsr", "1.2.6", dir.path()).unwrap();
    let tgz = tgz.to_str().unwrap();
    for helm in helms() {
        let ctx = format!("helm {}", helm.version);
        let off = template(&helm, tgz, &[]);
        let on = template(&helm, tgz, &["maintenance=true"]);
        let (d_off, d_on) = (find(&off, "Deployment", "rel-server"), find(&on, "Deployment", "rel-server"));
        assert_ne!(d_off, d_on, "{ctx}: maintenance changes nothing");
        assert_eq!(env(d_off, "BSR_MAINTENANCE").unwrap()["value"], "false", "{ctx}");
        assert_eq!(env(d_on, "BSR_MAINTENANCE").unwrap()["value"], "true", "{ctx}");
        assert_eq!(d_on["spec"]["template"]["metadata"]["labels"]["bsr.example/maintenance"], "true", "{ctx}");
        assert!(d_off["spec"]["template"]["metadata"]["labels"].get("bsr.example/maintenance").is_none(), "{ctx}");
        assert_eq!(d_on["metadata"]["annotations"]["bsr.example/maintenance"], "true", "{ctx}");

        let job = find(&off, "Job", "rel-migrate");
        assert_eq!(job["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade", "{ctx}");
        assert_eq!(job["metadata"]["annotations"]["helm.sh/hook-delete-policy"], "before-hook-creation", "{ctx}");
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.example/bufbuild/bufd:1.2.6", "{ctx}");
        assert_eq!(c["args"], serde_json::json!(["migrate", "--to-schema", "240"]), "{ctx}");

        let secret = find(&off, "Secret", "rel-postgres");
        assert_eq!(secret["data"]["password"], "Y2hhbmdlbWU=", "{ctx}: base64(changeme)");

        // Lists and nested maps from values come through.
        let custom = template(
            &helm,
            tgz,
            &["extraEnv[0].name=FOO", "extraEnv[0].value=bar", "postgres.host=db.internal", "ingress.enabled=true"],
        );
        let d = find(&custom, "Deployment", "rel-server");
        assert_eq!(env(d, "FOO").unwrap()["value"], "bar", "{ctx}");
        assert_eq!(env(d, "BSR_POSTGRES_HOST").unwrap()["value"], "db.internal", "{ctx}");
        let ing = find(&custom, "Ingress", "rel-server");
        assert_eq!(ing["spec"]["rules"][0]["host"], "bsr.example.com", "{ctx}");
    }
}

#[test]
fn broken_images_can_be_injected_from_values() {
    let dir = tempfile::tempdir().unwrap();
    // (chart, version, --set, names of the objects whose image must contain "broken")
    let cases: [(&str, &str, &str, &[&str]); 7] = [
        ("bsr", "1.0.4", "image.tag=broken", &["rel-server", "rel-migrate"]),
        // Only the bsr migration Job; the server keeps its image.
        ("bsr", "1.0.4", "migration.imageTag=broken", &["rel-migrate"]),
        ("sourcegraph", "5.0.6", "sourcegraph.image.defaultTag=broken", &["rel-frontend", "rel-migrator"]),
        ("sourcegraph", "5.0.6", "migrator.image.tag=broken", &["rel-migrator"]),
        ("coder", "2.14.3", "coder.image.tag=broken", &["rel-coder"]),
        ("generic-app", "1.5.2", "image.tag=broken", &["rel-app"]),
        ("acme", "3.8.0", "image.tag=broken", &["rel"]),
    ];
    for helm in helms() {
        for (chart, version, set, broken) in cases {
            let tgz = fixtures::package_version(chart, version, dir.path()).unwrap();
            let docs = template(&helm, tgz.to_str().unwrap(), &[set]);
            let mut seen = Vec::new();
            for d in &docs {
                let Some(image) = d["spec"]["template"]["spec"]["containers"][0]["image"].as_str() else {
                    continue;
                };
                let name = d["metadata"]["name"].as_str().unwrap();
                if image.contains("broken") {
                    seen.push(name);
                }
            }
            seen.sort();
            let mut broken = broken.to_vec();
            broken.sort();
            assert_eq!(seen, broken, "helm {} {chart} --set {set}", helm.version);
        }
    }
}

/// With `bed.image` set (the e2e bed on a real cluster), every container that can run runs
/// that image with a command standing in for the vendor binary, keeping the vendor image
/// as `$0`: long-running ones serve HTTP on each container port, Jobs only print; no
/// resource requests. A "broken" image is kept as it is, without a command.
#[test]
fn a_bed_image_runs_everything_but_broken_images() {
    const BED: &str = "busybox:1.36.1";
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        ("bsr", "1.0.4", "maintenance=false", &[]),
        ("bsr", "1.0.4", "image.tag=broken", &["rel-server", "rel-migrate"]),
        ("bsr", "1.2.6", "migration.imageTag=broken", &["rel-migrate"]),
        ("sourcegraph", "5.0.6", "sourcegraph.image.defaultTag=broken", &["rel-frontend", "rel-migrator"]),
        ("coder", "2.14.3", "coder.image.tag=broken-typo", &["rel-coder"]),
        // Two container ports (http, metrics), both served.
        ("acme", "4.1.0", "redis.host=redis.acme.svc", &[]),
    ];
    let plain =
        ["generic-app", "sourcegraph", "coder", "acme"].map(|c| (c, fixtures::versions(c).unwrap()[1].version.clone()));
    let plain: Vec<(&str, &str, &str, &[&str])> =
        plain.iter().map(|(c, v)| (*c, v.as_str(), "bed.image=busybox:1.36.1", &[][..])).collect();
    for helm in helms() {
        for &(chart, version, set, broken) in cases.iter().chain(plain.iter()) {
            let ctx = format!("helm {} {chart} {version} --set {set}", helm.version);
            let tgz = fixtures::package_version_with(chart, version, dir.path(), Some(BED)).unwrap();
            let docs = template(&helm, tgz.to_str().unwrap(), &[set]);
            check_objects(&docs, chart, version, &ctx);
            let mut seen = 0;
            for d in docs.iter().filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "StatefulSet" | "Job"))) {
                let name = d["metadata"]["name"].as_str().unwrap();
                let c = &d["spec"]["template"]["spec"]["containers"][0];
                seen += 1;
                assert!(c.get("resources").is_none(), "{ctx}: {name} asks for resources: {c}");
                if broken.contains(&name) {
                    assert!(c["image"].as_str().unwrap().contains("broken"), "{ctx}: {name}: {c}");
                    assert!(c.get("command").is_none(), "{ctx}: {name}: {c}");
                    continue;
                }
                assert_eq!(c["image"], BED, "{ctx}: {name}");
                let command = c["command"].as_array().unwrap_or_else(|| panic!("{ctx}: {name} has no command: {c}"));
                assert_eq!(command.len(), 4, "{ctx}: {name}: {command:?}");
                assert_eq!((command[0].as_str(), command[1].as_str()), (Some("sh"), Some("-c")), "{ctx}: {name}");
                let script = command[2].as_str().unwrap();
                let vendor = command[3].as_str().unwrap();
                let app_version =
                    fixtures::versions(chart).unwrap().into_iter().find(|v| v.version == version).unwrap();
                assert!(vendor.contains(&app_version.app_version), "{ctx}: {name}: $0 is the vendor image: {vendor}");
                assert!(script.contains("standing in for $0 $*"), "{ctx}: {name}: {script}");
                let ports: Vec<u64> = c["ports"]
                    .as_array()
                    .map(|ps| ps.iter().map(|p| p["containerPort"].as_u64().unwrap()).collect())
                    .unwrap_or_default();
                if d["kind"] == "Job" {
                    assert!(ports.is_empty() && !script.contains("httpd"), "{ctx}: {name}: {script}");
                } else {
                    assert!(!ports.is_empty(), "{ctx}: {name}");
                    assert!(script.starts_with("trap 'exit 0' TERM;") && script.ends_with(" wait"), "{ctx}: {script}");
                    for port in ports {
                        assert!(
                            script.contains(&format!("httpd -f -p {port} -h /tmp/www &")),
                            "{ctx}: {name}: {script}"
                        );
                    }
                }
            }
            assert!(seen >= 1, "{ctx}: no workload");
        }
    }
}

/// bsr's `migration.runSeconds`, `exitCode` and `log` become the hook pod's
/// `kube-standin/*` annotations and, with `bed.image`, a command that sleeps, prints the
/// log (from an env var) and exits with the code; at their defaults the Job is the same as
/// without them (no annotations, no env var, the plain command).
#[test]
fn migration_run_values_become_annotations_and_bed_commands() {
    const BED: &str = "busybox:1.36.1";
    let dir = tempfile::tempdir().unwrap();
    let plain = fixtures::package_version("bsr", "1.1.9", dir.path()).unwrap();
    let plain = plain.to_str().unwrap().to_string();
    let bed_dir = dir.path().join("bed");
    let bed = fixtures::package_version_with("bsr", "1.1.9", &bed_dir, Some(BED)).unwrap();
    let bed = bed.to_str().unwrap().to_string();
    let run = ["migration.runSeconds=3", "migration.exitCode=1", "migration.log=applying 0042\\, then failing"];
    let defaults = ["migration.runSeconds=0", "migration.exitCode=0", "migration.log="];
    let pod = |docs: &[Value]| find(docs, "Job", "rel-migrate")["spec"]["template"].clone();
    for helm in helms() {
        let ctx = format!("helm {}", helm.version);
        for tgz in [&plain, &bed] {
            assert_eq!(template(&helm, tgz, &defaults), template(&helm, tgz, &[]), "{ctx}: {tgz}: defaults are no-ops");
        }
        let off = pod(&template(&helm, &plain, &[]));
        assert!(off["metadata"].get("annotations").is_none(), "{ctx}: {off}");
        let on = pod(&template(&helm, &plain, &run));
        assert_eq!(
            on["metadata"]["annotations"],
            serde_json::json!({"kube-standin/run-seconds": "3", "kube-standin/exit-code": "1",
                "kube-standin/log": "applying 0042, then failing"}),
            "{ctx}"
        );
        let c = &on["spec"]["containers"][0];
        assert!(c.get("command").is_none(), "{ctx}: the stand-in runs nothing: {c}");
        assert!(!c["env"].to_string().contains("MIGRATION_LOG"), "{ctx}: {c}");

        let script = |t: &Value| t["spec"]["containers"][0]["command"][2].as_str().unwrap().to_string();
        let bed_off = pod(&template(&helm, &bed, &[]));
        assert_eq!(script(&bed_off), "echo \"test bed: standing in for $0 $*\"", "{ctx}");
        let bed_on = pod(&template(&helm, &bed, &run));
        assert_eq!(
            script(&bed_on),
            "echo \"test bed: standing in for $0 $*\"; sleep 3; printf '%s\\n' \"$MIGRATION_LOG\"; exit 1",
            "{ctx}"
        );
        let env = bed_on["spec"]["containers"][0]["env"].as_array().unwrap();
        let log = env.iter().find(|e| e["name"] == "MIGRATION_LOG").unwrap_or_else(|| panic!("{ctx}: {env:?}"));
        assert_eq!(log["value"], "applying 0042, then failing", "{ctx}");
        // A broken hook image keeps its vendor image and no command, values or not.
        let broken = pod(&template(&helm, &bed, &[run[0], "migration.imageTag=broken"]));
        assert!(broken["spec"]["containers"][0].get("command").is_none(), "{ctx}: {broken}");
        assert_eq!(broken["metadata"]["annotations"]["kube-standin/run-seconds"], "3", "{ctx}");
    }
}
