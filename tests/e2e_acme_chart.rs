//! The acme fixture chart on the e2e bed (real helm 3.19.0 and 4.1.4, the bed's
//! repository `demo`, the Kubernetes API stand-in or the cluster of HSU_E2E_KUBECONFIG):
//! `demo/acme` installs and upgrades like the other fixtures, its 3.9.0 silently ignores
//! the renamed `postgres.host`, and the bed's acme policy (bed/policies/acme-bed.yaml)
//! refuses a live plan across 4.0.0 without `redis.host`, in the vendor's words.
//! What each version renders and how helm refuses it: crates/chart-standin/tests/acme.rs.

#[path = "e2e/bed.rs"]
mod bed;

use bed::Bed;
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn acme_policy() -> String {
    format!("{}/bed/policies/acme-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_owned)
}

fn acme_installs_upgrades_and_is_planned_with_its_value_rules(version: HelmVersion) {
    let bed = Bed::new(version);
    let ns = bed.ns.clone();
    let helm = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--namespace", &ns, "--wait", "--timeout", "60s"]);
        bed.helm_with_ok(&[], &all, None);
    };
    helm(&[
        "install",
        "acme",
        "demo/acme",
        "--version",
        "3.8.0",
        "--create-namespace",
        "--set",
        "postgres.host=db.prod.internal",
    ]);
    let deployment = || bed.get("apps/v1", "deployments", "acme").expect("Deployment acme");
    let d = deployment();
    assert_eq!(env_value(&d, "ACME_POSTGRES_HOST").as_deref(), Some("db.prod.internal"), "{version}");
    assert_eq!(d["status"]["readyReplicas"], 1, "{version}: {}", d["status"]);
    assert!(bed.get("v1", "configmaps", "acme-legacy").is_some(), "{version}");

    // The live plan to 4.1.0: the release's values lack redis.host, which 4.0.0 requires.
    let plan = ["acme", "--to", "4.1.0", "--chart", "demo/acme", "--policy", &acme_policy(), "--plan"];
    let (stdout, stderr) = bed.run_expect(&plan, 3);
    let out = format!("{stdout}{stderr}");
    assert!(out.contains("values-required"), "{version}: {out}");
    assert!(out.contains("when upgrading to chart version 4.0.0 or later, add redis.host"), "{version}: {out}");
    // With it set, the plan carries the rename with the hop to 3.9.0.
    let (stdout, _) = bed.run_expect(&[&plan[..], &["--set", "redis.host=redis.acme.svc", "-o", "json"]].concat(), 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let to: Vec<&str> = plan["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["3.9.0", "4.0.0", "4.1.0"], "{version}: {stdout}");
    assert_eq!(plan["hops"][0]["values"][0]["rename"]["from"], "postgres.host", "{version}: {stdout}");

    // By hand: `--reuse-values` takes the old chart's defaults (helm's rule), which have no
    // `database`, so 3.9.0 fails to render and nothing changes.
    let reuse = ["upgrade", "acme", "demo/acme", "--version", "3.9.0", "--reuse-values", "--namespace", &ns];
    let out = bed.helm_with(&[], &reuse, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(".Values.database.host"), "{version}: {stderr}");
    // `--reset-then-reuse-values` (the new chart's defaults under the release's values)
    // succeeds, and the release's postgres.host is silently ignored: the server now talks
    // to the default host.
    helm(&["upgrade", "acme", "demo/acme", "--version", "3.9.0", "--reset-then-reuse-values"]);
    let d = deployment();
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], "3.9.0", "{version}");
    assert_eq!(d["status"]["readyReplicas"], 1, "{version}: {}", d["status"]);
    assert_eq!(env_value(&d, "ACME_POSTGRES_HOST"), None, "{version}");
    assert_eq!(env_value(&d, "ACME_DATABASE_HOST").as_deref(), Some("postgres.acme.svc.cluster.local"), "{version}");
}

both_helms!(acme_on_the_bed, super::acme_installs_upgrades_and_is_planned_with_its_value_rules);
