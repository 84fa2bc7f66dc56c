//! Installs and upgrades of every fixture chart on the Kubernetes API stand-in with the
//! real helm 3 and helm 4, from the HTTP chart repository and from the OCI registry
//! (anonymous, basic auth, bearer token), checking the objects the stand-in stores.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use chart_standin::{ChartRepo, Credentials, OciAuth, OciOptions, OciRegistry, RepoOptions, fixtures};
use kube_standin::testing::{HelmEnv, HelmVersion};
use kube_standin::{Options, StandIn};
use serde_json::Value;

/// (chart, install version, upgrade version, workload plural, workload name suffix)
const CASES: [(&str, &str, &str, &str, &str); 4] = [
    ("bsr", "1.0.4", "1.1.9", "deployments", "server"),
    ("sourcegraph", "5.0.6", "5.1.8", "deployments", "frontend"),
    ("coder", "2.14.3", "2.15.1", "deployments", "coder"),
    ("generic-app", "1.5.2", "1.6.0", "statefulsets", "app"),
];

fn packaged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package_all(dir.path()).unwrap();
    dir
}

fn standin() -> StandIn {
    StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap()
}

fn app_version(chart: &str, version: &str) -> String {
    fixtures::versions(chart).unwrap().into_iter().find(|v| v.version == version).unwrap().app_version
}

fn pod_version(obj: &Value) -> &str {
    obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"].as_str().unwrap_or_default()
}

fn image(obj: &Value) -> &str {
    obj["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default()
}

fn env_value<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"]
        .as_str()
}

fn login(env: &HelmEnv, host: &str, user: &str, password: &str) {
    let mut child = env
        .command(env.helm_bin())
        .args(["registry", "login", host, "-u", user, "--password-stdin", "--plain-http"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} registry login: {}", env.version.as_str(), String::from_utf8_lossy(&out.stderr));
}

/// The stored workload runs `version` of `chart`: pods labelled with the chart version,
/// the image of its app version.
fn workload_runs(kube: &StandIn, plural: &str, name: &str, chart: &str, version: &str, ctx: &str) {
    let obj = kube.get("apps/v1", plural, Some("default"), name).unwrap_or_else(|| panic!("{ctx}: no {plural} {name}"));
    assert_eq!(pod_version(&obj), version, "{ctx}: pod version label");
    assert!(image(&obj).contains(&app_version(chart, version)), "{ctx}: image {}", image(&obj));
}

/// Installs `from`, upgrades to `to`, checking the stored workload and hooks each time.
/// `reference(chart)` is what helm installs (`fx/bsr` or `oci://…`); `extra` are flags
/// every install/upgrade gets (`--plain-http` for OCI).
fn install_and_upgrade_all(
    kube: &StandIn,
    env: &HelmEnv,
    reference: &dyn Fn(&str) -> String,
    extra: &[&str],
    how: &str,
) {
    let v = env.version.as_str();
    for (chart, from, to, plural, suffix) in CASES {
        let ctx = format!("helm {v} {how} {chart}");
        let name = format!("{chart}-{suffix}");
        let r = reference(chart);
        let mut args = vec!["install", chart, r.as_str(), "--version", from];
        args.extend(extra);
        env.helm_ok(&args);
        workload_runs(kube, plural, &name, chart, from, &format!("{ctx}: after install"));

        let mut args = vec!["upgrade", chart, r.as_str(), "--version", to, "--reuse-values"];
        args.extend(extra);
        env.helm_ok(&args);
        workload_runs(kube, plural, &name, chart, to, &format!("{ctx}: after upgrade"));

        let list: Vec<Value> = serde_json::from_str(&env.helm_ok(&["list", "-o", "json"])).unwrap();
        let rel = list.iter().find(|r| r["name"] == chart).unwrap_or_else(|| panic!("{ctx}: not in {list:?}"));
        assert_eq!(rel["chart"], format!("{chart}-{to}"), "{ctx}");
        assert_eq!(rel["revision"], "2", "{ctx}");
        assert_eq!(rel["status"], "deployed", "{ctx}");
    }
    // Hooks ran: the bsr migration Job for the new schema, the sourcegraph migrator.
    let job = kube.get("batch/v1", "jobs", Some("default"), "bsr-migrate").expect("bsr-migrate Job");
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["args"][2], "222", "helm {v} {how}");
    let job = kube.get("batch/v1", "jobs", Some("default"), "sourcegraph-migrator").expect("sourcegraph-migrator Job");
    assert!(image(&job).ends_with("migrator:5.1.8"), "helm {v} {how}: {}", image(&job));
}

#[test]
fn install_and_upgrade_from_the_chart_repository() {
    let dir = packaged();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for version in HelmVersion::TESTED {
        let kube = standin();
        let env = HelmEnv::new(&kube, version);
        env.helm_ok(&["repo", "add", "fx", &repo.url()]);
        install_and_upgrade_all(&kube, &env, &|c| format!("fx/{c}"), &[], "repo");
    }
}

#[test]
fn install_and_upgrade_from_oci_without_auth() {
    let dir = packaged();
    let reg = OciRegistry::start(dir.path(), OciOptions::default()).unwrap();
    for version in HelmVersion::TESTED {
        let kube = standin();
        let env = HelmEnv::new(&kube, version);
        install_and_upgrade_all(&kube, &env, &|c| reg.reference(c), &["--plain-http"], "oci");
    }
}

/// A registry that wants credentials: installing before `helm registry login` fails and
/// creates nothing; after it, every fixture installs and upgrades.
fn install_after_login(auth: OciAuth, user: &str, password: &str, label: &str) -> OciRegistry {
    let dir = packaged();
    let reg = OciRegistry::start(dir.path(), OciOptions::with_auth(auth)).unwrap();
    for version in HelmVersion::TESTED {
        let kube = standin();
        let env = HelmEnv::new(&kube, version);
        let out = env.helm(&["install", "bsr", &reg.reference("bsr"), "--version", "1.0.4", "--plain-http"]);
        assert!(!out.status.success(), "helm {}: install without login succeeded", version.as_str());
        assert!(kube.get("apps/v1", "deployments", Some("default"), "bsr-server").is_none());
        login(&env, &reg.host(), user, password);
        install_and_upgrade_all(&kube, &env, &|c| reg.reference(c), &["--plain-http"], label);
    }
    reg
}

#[test]
fn install_and_upgrade_from_oci_with_basic_auth() {
    install_after_login(OciAuth::Basic(Credentials::new("alice", "s3cret")), "alice", "s3cret", "oci+basic");
}

#[test]
fn install_and_upgrade_from_oci_with_bearer_tokens() {
    let reg =
        install_after_login(OciAuth::Bearer(Credentials::new("bob", "t0ken-pass")), "bob", "t0ken-pass", "oci+bearer");
    assert!(reg.requests().iter().any(|r| r.target.starts_with("/token") && r.status == 200));
}
#[test]
fn bsr_maintenance_and_value_carry_over_on_the_cluster() {
    let dir = packaged();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for version in HelmVersion::TESTED {
        let v = version.as_str();
        let kube = standin();
        let env = HelmEnv::new(&kube, version);
        env.helm_ok(&["repo", "add", "fx", &repo.url()]);
        env.helm_ok(&[
            "install",
            "bsr",
            "fx/bsr",
            "--version",
            "1.0.4",
            "--set",
            "extraEnv[0].name=FOO,extraEnv[0].value=bar,postgres.password=hunter2,config.features.remotePlugins=true",
        ]);
        let get = || kube.get("apps/v1", "deployments", Some("default"), "bsr-server").unwrap();
        assert_eq!(env_value(&get(), "BSR_MAINTENANCE"), Some("false"), "helm {v}");

        // Maintenance on, same version (the BSR multi-minor upgrade procedure, step 1).
        env.helm_ok(&["upgrade", "bsr", "fx/bsr", "--version", "1.0.4", "--reuse-values", "--set", "maintenance=true"]);
        let d = get();
        assert_eq!(env_value(&d, "BSR_MAINTENANCE"), Some("true"), "helm {v}");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["bsr.example/maintenance"], "true", "helm {v}");
        assert_eq!(d["metadata"]["annotations"]["bsr.example/maintenance"], "true", "helm {v}");

        // Jump to 1.3.2 with maintenance off; user values carried over.
        env.helm_ok(&[
            "upgrade",
            "bsr",
            "fx/bsr",
            "--version",
            "1.3.2",
            "--reuse-values",
            "--set",
            "maintenance=false",
        ]);
        let d = get();
        assert_eq!(pod_version(&d), "1.3.2", "helm {v}");
        assert_eq!(env_value(&d, "BSR_MAINTENANCE"), Some("false"), "helm {v}");
        assert!(d["spec"]["template"]["metadata"]["labels"].get("bsr.example/maintenance").is_none(), "helm {v}");
        assert_eq!(env_value(&d, "FOO"), Some("bar"), "helm {v}: extraEnv list carried over");
        let secret = kube.get("v1", "secrets", Some("default"), "bsr-postgres").unwrap();
        assert_eq!(secret["data"]["password"], "aHVudGVyMg==", "helm {v}: base64(hunter2)");
        let cm = kube.get("v1", "configmaps", Some("default"), "bsr-config").unwrap();
        assert!(cm["data"]["config.yaml"].as_str().unwrap().contains("remotePlugins: true"), "helm {v}: {cm}");
        let job = kube.get("batch/v1", "jobs", Some("default"), "bsr-migrate").unwrap();
        assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["args"][2], "255", "helm {v}");

        // A failing migration hook (failure injection from values) stops the upgrade
        // before the server Deployment changes.
        let out = env.helm(&[
            "upgrade",
            "bsr",
            "fx/bsr",
            "--version",
            "1.4.0",
            "--reuse-values",
            "--set",
            "migration.imageTag=broken",
        ]);
        assert!(!out.status.success(), "helm {v}: upgrade with a broken migration hook succeeded");
        assert_eq!(pod_version(&get()), "1.3.2", "helm {v}: server changed despite the failed hook");
        let job = kube.get("batch/v1", "jobs", Some("default"), "bsr-migrate").unwrap();
        assert!(image(&job).ends_with(":broken"), "helm {v}: {}", image(&job));
    }
}
