//! The `acme` fixture chart, whose files change between versions (per-version overlays,
//! versions.yaml `remove:`): what each packaged version holds, and what real helm 3 and
//! helm 4 make of it: the values renamed in 3.9.0 are silently ignored, 4.0.0's schema
//! rejects the old shape and wants `redis.host`, 4.1.0 drops the legacy ConfigMap and
//! adds the metrics Service, 4.2.0 fails to render without `tls.secretName`. On the
//! Kubernetes API stand-in the Deployment becomes ready through 3.8.0 → 4.1.0, and a
//! `broken` image never does.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use chart_standin::{ChartRepo, RepoOptions, fixtures};
use common::{Helm, helms, yaml_docs};
use kube_standin::testing::{HelmEnv, HelmVersion};
use kube_standin::{Options, StandIn};
use serde_json::{Value, json};

const VERSIONS: [&str; 6] = ["3.8.0", "3.9.0", "4.0.0", "4.1.0", "4.2.0", "4.3.0"];

/// What a 4.x release needs to render (the schema wants redis.host from 4.0.0, the
/// Deployment tls.secretName from 4.2.0; 4.3.0 needs nothing more).
fn needs(version: &str) -> &'static [&'static str] {
    match version {
        "3.8.0" | "3.9.0" => &[],
        "4.0.0" | "4.1.0" => &["redis.host=redis.acme.svc"],
        _ => &["redis.host=redis.acme.svc", "tls.secretName=acme-tls"],
    }
}

/// The files of a packaged chart, by path under the chart's directory.
fn unpack(tgz: &Path) -> BTreeMap<String, String> {
    let bytes = std::fs::read(tgz).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_str().unwrap().to_owned();
        let rel = path.strip_prefix("acme/").unwrap_or_else(|| panic!("{path} outside acme/")).to_owned();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(rel, text);
    }
    files
}

/// The dotted paths of every leaf in a values tree (`postgres.host`), maps only.
fn leaves(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(v, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_version_packages_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let listed: Vec<String> = fixtures::versions("acme").unwrap().into_iter().map(|v| v.version).collect();
    assert_eq!(listed, VERSIONS);
    let common = ["Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/deployment.yaml"];
    let common = [&common[..], &["templates/secret.yaml", "templates/service.yaml"]].concat();
    for v in fixtures::versions("acme").unwrap() {
        let version = v.version.as_str();
        let ctx = format!("acme {version}");
        assert_ne!(v.app_version, v.version, "{ctx}: appVersion differs from the chart version");
        let tgz = fixtures::package_version("acme", version, dir.path()).unwrap();
        assert_eq!(std::fs::read(&tgz).unwrap(), fixtures::chart_tgz("acme", version).unwrap(), "{ctx}: deterministic");
        let files = unpack(&tgz);

        let mut expected = set(&common);
        match version {
            "3.8.0" | "3.9.0" => expected.extend(set(&["templates/configmap-legacy.yaml"])),
            "4.0.0" => expected.extend(set(&["templates/configmap-legacy.yaml", "values.schema.json"])),
            "4.3.0" => expected.extend(set(&[
                "templates/service-metrics.yaml",
                "values.schema.json",
                "templates/selector-check.yaml",
            ])),
            _ => expected.extend(set(&["templates/service-metrics.yaml", "values.schema.json"])),
        }
        assert_eq!(files.keys().cloned().collect::<BTreeSet<_>>(), expected, "{ctx}: files");

        let chart: Value = yaml_serde::from_str(&files["Chart.yaml"]).unwrap();
        assert_eq!((chart["version"].as_str(), chart["appVersion"].as_str()), (Some(version), Some(&*v.app_version)));

        // values.yaml: the keys this version declares.
        let values: Value = yaml_serde::from_str(&files["values.yaml"]).unwrap();
        let mut declared = BTreeSet::new();
        leaves(&values, "", &mut declared);
        let mut want = set(&["replicaCount", "image.repository", "image.tag", "service.port", "bed.image"]);
        match version {
            "3.8.0" => want.extend(set(&["postgres.host", "postgres.port", "postgres.password"])),
            "3.9.0" => want.extend(set(&["database.host", "database.port", "postgres.password"])),
            // `redis: {}`: declared, its host left to the operator.
            "4.0.0" => want.extend(set(&["database.host", "database.port", "postgres.password", "redis"])),
            "4.1.0" => {
                want.extend(set(&["database.host", "database.port", "postgres.password", "redis", "metrics.port"]))
            }
            _ => want.extend(set(&[
                "database.host",
                "database.port",
                "postgres.password",
                "redis",
                "metrics.port",
                "tls.secretName",
            ])),
        }
        assert_eq!(declared, want, "{ctx}: values.yaml keys");
        assert_eq!(values["redis"].get("host"), None, "{ctx}: no default redis.host");

        // The templates read only the keys this version declares.
        let deployment = &files["templates/deployment.yaml"];
        let old_keys = deployment.contains(".Values.postgres.host") || deployment.contains(".Values.postgres.port");
        assert_eq!(old_keys, version == "3.8.0", "{ctx}: {deployment}");
        assert_eq!(deployment.contains(".Values.database.host"), version != "3.8.0", "{ctx}");
        assert_eq!(deployment.contains(".Values.redis.host"), version >= "4.0.0", "{ctx}");
        assert_eq!(deployment.contains("required \"acme 4.2.0 needs tls.secretName"), version >= "4.2.0", "{ctx}");
        // 4.3.0 selects by the component too, and looks the live Deployment up.
        assert_eq!(files["templates/_helpers.tpl"].contains("app.kubernetes.io/component: server"), version == "4.3.0");

        // values.schema.json from 4.0.0: exactly the keys the version declares, nothing
        // else at the top or under postgres; redis.host a required string; tls optional.
        let Some(schema) = files.get("values.schema.json") else { continue };
        let schema: Value = serde_json::from_str(schema).unwrap();
        assert_eq!(schema["additionalProperties"], false, "{ctx}");
        assert_eq!(keys(&schema["properties"]), keys(&values), "{ctx}: schema lists the declared keys");
        assert_eq!(schema["required"], json!(["redis"]), "{ctx}");
        let postgres = &schema["properties"]["postgres"];
        assert_eq!((postgres["type"].as_str(), &postgres["additionalProperties"]), (Some("object"), &json!(false)));
        assert_eq!(keys(&postgres["properties"]), set(&["password"]), "{ctx}");
        let redis = &schema["properties"]["redis"];
        assert_eq!(redis["required"], json!(["host"]), "{ctx}");
        assert_eq!(redis["properties"]["host"]["type"], "string", "{ctx}");
        // tls (4.2.0) is declared but not required: its absence fails the render, not the schema.
        assert_eq!(schema["properties"].get("tls").is_some(), version >= "4.2.0", "{ctx}");
        assert!(schema["properties"]["tls"].get("required").is_none(), "{ctx}");
    }
}

fn template(helm: &Helm, tgz: &str, sets: &[&str]) -> std::process::Output {
    let mut args = vec!["template", "acme", tgz, "--namespace", "ns"];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm.run(&args)
}

fn rendered(helm: &Helm, tgz: &str, sets: &[&str], ctx: &str) -> Vec<Value> {
    let out = template(helm, tgz, sets);
    assert!(out.status.success(), "{ctx}: helm template {sets:?}: {}", String::from_utf8_lossy(&out.stderr));
    yaml_docs(&String::from_utf8_lossy(&out.stdout))
}

/// helm template fails; returns stderr.
fn refused(helm: &Helm, tgz: &str, sets: &[&str], ctx: &str) -> String {
    let out = template(helm, tgz, sets);
    assert!(!out.status.success(), "{ctx}: helm template {sets:?} rendered:\n{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("helm {ctx} --set {sets:?}:\n{err}");
    err
}

fn objects(docs: &[Value]) -> Vec<String> {
    let mut objects: Vec<String> = docs
        .iter()
        .map(|d| format!("{} {}", d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()))
        .collect();
    objects.sort();
    objects
}

fn env<'a>(docs: &'a [Value], var: &str) -> Option<&'a Value> {
    let d = docs.iter().find(|d| d["kind"] == "Deployment")?;
    d["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?.iter().find(|e| e["name"] == var)
}

const SCHEMA: &str = "values don't meet the specifications of the schema";
const REQUIRED: &str = "acme 4.2.0 needs tls.secretName (see the 4.2 release notes)";

#[test]
fn helm_renders_each_version_and_refuses_the_old_shape() {
    let dir = tempfile::tempdir().unwrap();
    let tgz: BTreeMap<&str, String> = VERSIONS
        .iter()
        .map(|v| (*v, fixtures::package_version("acme", v, dir.path()).unwrap().to_str().unwrap().to_owned()))
        .collect();
    let base = ["Deployment acme", "Secret acme", "Service acme"];
    for helm in helms() {
        for version in VERSIONS {
            let ctx = format!("{} acme {version}", helm.version);
            let docs = rendered(&helm, &tgz[version], needs(version), &ctx);
            let mut want = set(&base);
            if version < "4.1.0" {
                want.insert("ConfigMap acme-legacy".into());
            } else {
                want.insert("Service acme-metrics".into());
            }
            assert_eq!(objects(&docs).into_iter().collect::<BTreeSet<_>>(), want, "{ctx}");
            let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
            let pod = &d["spec"]["template"];
            assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/version"], version, "{ctx}");
            assert_eq!(pod["metadata"]["labels"]["helm.sh/chart"], format!("acme-{version}"), "{ctx}");
            let ports: Vec<u64> = pod["spec"]["containers"][0]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["containerPort"].as_u64().unwrap())
                .collect();
            assert_eq!(ports, if version < "4.1.0" { vec![8080] } else { vec![8080, 9102] }, "{ctx}");
            if version >= "4.1.0" {
                let metrics = docs.iter().find(|d| d["metadata"]["name"] == "acme-metrics").unwrap();
                assert_eq!(metrics["spec"]["ports"][0]["port"], 9102, "{ctx}");
            }
        }

        // 3.8.0 reads postgres.*; 3.9.0 ignores them (the rename) and reads database.*.
        let ctx = format!("{} acme", helm.version);
        let old = ["postgres.host=db.internal", "postgres.port=6432", "postgres.password=hunter2"];
        let docs = rendered(&helm, &tgz["3.8.0"], &old, &ctx);
        assert_eq!(env(&docs, "ACME_POSTGRES_HOST").unwrap()["value"], "db.internal", "{ctx}");
        assert_eq!(env(&docs, "ACME_POSTGRES_PORT").unwrap()["value"], "6432", "{ctx}");
        let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
        assert_eq!(secret["data"]["postgres-password"], "aHVudGVyMg==", "{ctx}: base64(hunter2)");
        let docs = rendered(&helm, &tgz["3.9.0"], &old, &ctx);
        assert!(env(&docs, "ACME_POSTGRES_HOST").is_none(), "{ctx}");
        assert_eq!(env(&docs, "ACME_DATABASE_HOST").unwrap()["value"], "postgres.acme.svc.cluster.local", "{ctx}");
        let docs = rendered(&helm, &tgz["3.9.0"], &["database.host=db.internal", "database.port=6432"], &ctx);
        assert_eq!(env(&docs, "ACME_DATABASE_HOST").unwrap()["value"], "db.internal", "{ctx}");

        // 4.0.0: the old keys are rejected by the schema, as is a missing redis.host.
        let ctx = format!("{} acme 4.0.0", helm.version);
        let err = refused(&helm, &tgz["4.0.0"], &["postgres.host=db.internal", "redis.host=redis"], &ctx);
        assert!(err.contains(SCHEMA) && err.contains("host"), "{ctx}: {err}");
        let err = refused(&helm, &tgz["4.0.0"], &["postgres.port=6432", "redis.host=redis"], &ctx);
        assert!(err.contains(SCHEMA) && err.contains("port"), "{ctx}: {err}");
        let err = refused(&helm, &tgz["4.0.0"], &["database.host=db.internal"], &ctx);
        assert!(err.contains(SCHEMA) && err.contains("host"), "{ctx}: {err}");
        let docs = rendered(&helm, &tgz["4.0.0"], &["database.host=db.internal", "redis.host=redis.acme.svc"], &ctx);
        assert_eq!(env(&docs, "ACME_DATABASE_HOST").unwrap()["value"], "db.internal", "{ctx}");
        assert_eq!(env(&docs, "ACME_REDIS_HOST").unwrap()["value"], "redis.acme.svc", "{ctx}");
        assert_eq!(env(&docs, "ACME_POSTGRES_PASSWORD").unwrap()["valueFrom"]["secretKeyRef"]["name"], "acme", "{ctx}");

        // 4.2.0: valid values, yet the Deployment fails to render without tls.secretName.
        let ctx = format!("{} acme 4.2.0", helm.version);
        let err = refused(&helm, &tgz["4.2.0"], &["redis.host=redis"], &ctx);
        assert!(err.contains(REQUIRED), "{ctx}: {err}");
        assert!(!err.contains(SCHEMA), "{ctx}: a render failure, not the schema: {err}");
        let docs = rendered(&helm, &tgz["4.2.0"], needs("4.2.0"), &ctx);
        assert_eq!(env(&docs, "ACME_TLS_SECRET").unwrap()["value"], "acme-tls", "{ctx}");

        // 4.3.0: the new selector label on the Deployment, its pods and the Services. Its
        // check of the live Deployment (`lookup`) finds nothing offline and renders
        // nothing; on a cluster it refuses an upgrade (tests/e2e_acme_chart.rs in the
        // plugin's crate).
        let ctx = format!("{} acme 4.3.0", helm.version);
        let docs = rendered(&helm, &tgz["4.3.0"], needs("4.3.0"), &ctx);
        assert_eq!(docs.len(), 4, "{ctx}: the check renders no object");
        for d in &docs {
            let selector = match d["kind"].as_str().unwrap() {
                "Deployment" => &d["spec"]["selector"]["matchLabels"],
                "Service" => &d["spec"]["selector"],
                _ => continue,
            };
            assert_eq!(selector["app.kubernetes.io/component"], "server", "{ctx}: {d}");
        }
    }
}

/// The Deployment becomes ready on the stand-in through every hop to 4.1.0 (`--wait`),
/// 4.1.0 deletes the legacy ConfigMap and adds the metrics Service, and a `broken` image
/// never becomes ready.
#[test]
fn upgrades_on_the_cluster_and_a_broken_image_never_becomes_ready() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package("acme", dir.path()).unwrap();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for version in HelmVersion::TESTED {
        let v = version.as_str();
        let kube = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
        let env = HelmEnv::new(&kube, version);
        env.helm_ok(&["repo", "add", "fx", &repo.url()]);
        let deployment = || kube.get("apps/v1", "deployments", Some("default"), "acme").expect("Deployment acme");
        let ready = |d: &Value| d["status"]["readyReplicas"].as_u64().unwrap_or(0);
        let hops: [(&str, &[&str]); 4] = [
            ("3.8.0", &["--set", "postgres.host=db.internal"]),
            ("3.9.0", &["--set", "database.host=db.internal"]),
            ("4.0.0", &["--reset-then-reuse-values", "--set", "redis.host=redis.acme.svc"]),
            ("4.1.0", &["--reset-then-reuse-values"]),
        ];
        // `--reset-then-reuse-values`: the new chart's defaults under the release's values.
        // `--reuse-values` would take the *old* chart's defaults (helm's documented
        // behaviour), without metrics.port at 4.1.0: checked below.
        for (i, (to, extra)) in hops.iter().enumerate() {
            if *to == "4.1.0" {
                let out = env.helm(&["upgrade", "acme", "fx/acme", "--version", to, "--reuse-values"]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(!out.status.success() && stderr.contains("metrics.port"), "helm {v}: {stderr}");
            }
            let mut args = vec![if i == 0 { "install" } else { "upgrade" }, "acme", "fx/acme", "--version", to];
            args.extend(*extra);
            args.extend(["--wait", "--timeout", "30s"]);
            env.helm_ok(&args);
            let d = deployment();
            assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], *to, "helm {v} {to}");
            assert_eq!(ready(&d), 1, "helm {v} {to}: {}", d["status"]);
            let legacy = kube.get("v1", "configmaps", Some("default"), "acme-legacy");
            let metrics = kube.get("v1", "services", Some("default"), "acme-metrics");
            assert_eq!(legacy.is_some(), *to < "4.1.0", "helm {v} {to}: ConfigMap acme-legacy");
            assert_eq!(metrics.is_some(), *to >= "4.1.0", "helm {v} {to}: Service acme-metrics");
            assert!(kube.get("v1", "services", Some("default"), "acme").is_some(), "helm {v} {to}");
        }
        let out = env.helm(&[
            "upgrade",
            "acme",
            "fx/acme",
            "--version",
            "4.1.0",
            "--reset-then-reuse-values",
            "--set",
            "image.tag=broken",
            "--wait",
            "--timeout",
            "3s",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm {v}: a broken image became ready");
        assert!(stderr.contains("context deadline exceeded"), "helm {v}: {stderr}");
        let d = deployment();
        assert!(d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().ends_with(":broken"), "{d}");
        // The new pod never becomes ready; the old one keeps serving.
        assert_eq!(d["status"]["unavailableReplicas"], 1, "helm {v}: {}", d["status"]);
    }
}
