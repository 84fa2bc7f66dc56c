//! The fleet view end to end, on both helms, through helm as an operator types it:
//! `helm safe-upgrade --fleet --plan` over a namespace of four releases, each decided
//! differently (the ledger's policy file, a preset by chart name, no policy at all, a
//! policy its chart ships that does not load), and `helm safe-upgrade --all-namespaces
//! --plan` across namespaces. Each release's path is checked against the plan the same
//! tool makes for that release alone, and nothing changes.

#[path = "e2e/bed.rs"]
mod bed;

use bed::{Bed, VALUES, bed_policy, skip_on_external};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

/// `helm safe-upgrade ARGS` through helm; (stdout, stderr) after checking the exit code.
fn through_helm(bed: &Bed, args: &[&str], code: i32) -> (String, String) {
    let out = bed.through_helm("safe-upgrade").args(args).output().expect("run helm");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "{}: helm safe-upgrade {args:?}\n{stdout}\n{stderr}", bed.version);
    (stdout, stderr)
}

fn row<'a>(view: &'a Value, namespace: &str, release: &str) -> &'a Value {
    view["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .find(|r| r["namespace"] == namespace && r["release"] == release)
        .unwrap_or_else(|| panic!("no line for {namespace}/{release}: {view:#}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().expect("a list").iter().map(|v| v.as_str().expect("a string").to_string()).collect()
}

/// Every release's revision count: the fleet view must change none.
fn revisions(bed: &Bed, releases: &[(&str, &str)]) -> Vec<usize> {
    releases
        .iter()
        .map(|(ns, name)| {
            let out = bed.helm_with_ok(&[], &["history", name, "--namespace", ns, "-o", "json"], None);
            serde_json::from_str::<Vec<Value>>(&out).expect("helm history JSON").len()
        })
        .collect()
}

const CHARTS: [&str; 6] = ["--chart", "demo/gitlab", "--chart", "demo/generic-app", "--chart", "demo/vendorapp"];

fn the_fleet_is_planned_release_by_release(version: HelmVersion) {
    let bed = Bed::new(version);
    let ns = bed.ns.clone();
    bed.install("bsr", "1.0.4", VALUES);
    for (name, chart, at) in [("gl", "gitlab", "7.0.0"), ("web", "generic-app", "1.5.0"), ("va", "vendorapp", "1.0.0")]
    {
        let chart = format!("demo/{chart}");
        bed.helm_with_ok(&[], &["install", name, &chart, "--version", at, "--namespace", &ns, "--wait"], None);
    }
    // One hop walked by the tool with the bed's policy file: bsr's ledger then names that
    // policy and the chart source, and holds the hop's time.
    let walk = ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &bed_policy(), "--snapshot-taken", "--yes"];
    bed.run_expect(&walk, 0);
    let all = [(ns.as_str(), "bsr"), (ns.as_str(), "gl"), (ns.as_str(), "web"), (ns.as_str(), "va")];
    let before = revisions(&bed, &all);

    let (stdout, _) = through_helm(&bed, &[&["--fleet", "--plan", "-o", "json"][..], &CHARTS].concat(), 0);
    let view: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(view["scope"], format!("namespace {ns}"), "{version}: {stdout}");
    assert_eq!(view["releases"].as_array().unwrap().len(), 4, "{version}: {stdout}");

    // bsr: the ledger's copy of the policy file and its chart source decide; the path is
    // the one the tool plans for bsr alone, and the walked hop gives the estimate.
    let bsr = row(&view, &ns, "bsr");
    assert_eq!(bsr["standing"], "upgradable", "{version}: {bsr:#}");
    assert_eq!(bsr["policy"], "bsr-bed", "{version}: {bsr:#}");
    assert!(bsr["policy_source"].as_str().unwrap().starts_with("the ledger's copy of"), "{bsr:#}");
    assert_eq!(bsr["chart_source"], "demo/bsr (from the ledger)", "{version}: {bsr:#}");
    assert_eq!(bsr["refused"][0]["version"], "2.0.0", "{version}: the bed's policy refuses majors: {bsr:#}");
    let target = bsr["target"].as_str().expect("a target");
    let alone = ["bsr", "--to", target, "--chart", "demo/bsr", "--plan", "--no-preflight", "-o", "json"];
    let (plan, _) = bed.run_expect(&alone, 0);
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let path: Vec<String> = plan["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap().into()).collect();
    assert_eq!(strings(&bsr["path"]), path, "{version}: the fleet's path is the release's own plan");
    assert_eq!(bsr["hops"], path.len(), "{version}");
    assert_eq!(bsr["downtime"], plan["downtime"], "{version}");
    assert_eq!(bsr["estimate"], plan["estimate"], "{version}: the same estimate as the release's own plan");
    assert!(bsr["estimate"]["expected_secs"].is_u64(), "{version}: the ledger's hop gives a time: {bsr:#}");

    // gl: the gitlab preset by chart name, in app versions: its required stop 16.7 is
    // offered by no chart, so everything past it is refused and 7.3.0 is the newest reachable.
    let gl = row(&view, &ns, "gl");
    assert_eq!((gl["policy"].as_str(), gl["target"].as_str()), (Some("gitlab"), Some("7.3.0")), "{version}: {gl:#}");
    assert_eq!(strings(&gl["path"]), ["7.1.0", "7.2.1", "7.3.0"], "{version}: {gl:#}");
    assert_eq!(gl["newest"], "8.9.0", "{version}: {gl:#}");
    assert_eq!(gl["refused"][0]["rule"], "required-stop", "{version}: {gl:#}");

    // web: no preset for its chart, no policy shipped, none recorded: listed as such.
    let web = row(&view, &ns, "web");
    assert_eq!(web["standing"], "no-policy", "{version}: {web:#}");
    assert!(web.get("policy").is_none() && web["hops"] == 0, "{version}: {web:#}");
    assert_eq!(web["newest"], "2.0.0", "{version}: {web:#}");

    // va: its newest chart ships a policy that does not load: named with the chart
    // version and the file's line, never a silent fallback.
    let va = row(&view, &ns, "va");
    assert_eq!(va["standing"], "not-planned", "{version}: {va:#}");
    let notes = strings(&va["notes"]).join("\n");
    assert!(notes.contains("invalid policy chart vendorapp 1.6.0, upgrade-policy.yaml:7:3"), "{version}: {notes}");

    // The table: a summary, then one line per release, its columns aligned.
    let (table, _) = through_helm(&bed, &[&["--fleet", "--plan"][..], &CHARTS].concat(), 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        format!("fleet plan: 4 releases in namespace {ns}: 2 upgradable, 1 with no policy, 1 not planned"),
        "{version}: {table}"
    );
    assert!(lines[2].starts_with("NAMESPACE") && lines[2].ends_with("STANDING"), "{version}: {table}");
    let release_lines: Vec<&str> = lines[3..7].to_vec();
    let names: Vec<&str> = release_lines.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(names, ["bsr", "gl", "va", "web"], "{version}: {table}");
    let gl_line = release_lines[1];
    assert!(
        gl_line.contains(" gitlab ")
            && gl_line.contains(" 7.3.0 ")
            && gl_line.ends_with("upgradable (8.9.0 refused: required-stop)"),
        "{version}: {table}"
    );
    let column = lines[2].find("STANDING").unwrap();
    assert!(release_lines.iter().all(|l| l.len() > column), "{version}: {table}");

    // List reads: one `helm list` for every release, the repository refreshed once, each
    // chart listed once, and a newest chart pulled for the policy it may ship only when
    // helm's cached index does not rule it out: vendorapp's entry names one; gitlab's and
    // generic-app's name none (bsr's policy is the ledger's file). That is with no archive
    // kept from the runs above; the next fleet plan takes vendorapp's kept archive.
    let kept = bed.env.dir().join("xdg-cache/helm-safe-upgrade/charts");
    std::fs::remove_dir_all(&kept).unwrap();
    let fleet_reads = || {
        let (_, stderr) = through_helm(&bed, &[&["--fleet", "--plan", "--debug"][..], &CHARTS].concat(), 0);
        let ran = |what: &str| stderr.lines().filter(|l| l.contains("debug: ") && l.contains(what)).count();
        ([ran(" list --deployed"), ran(" repo update "), ran(" search repo "), ran(" pull ")], stderr)
    };
    let (counts, stderr) = fleet_reads();
    assert_eq!(counts, [1, 1, 4, 1], "{version}: list, repo update, search repo, pull:\n{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains(" pull ") && l.contains("--version 1.6.0 -- demo/vendorapp")).count(),
        1,
        "{version}: vendorapp 1.6.0's policy is read:\n{stderr}"
    );
    let (counts, stderr) = fleet_reads();
    assert_eq!(counts, [1, 1, 4, 0], "{version}: kept since the run before:\n{stderr}");

    // Asked without --plan: refused, nothing read.
    let (_, stderr) = through_helm(&bed, &["--fleet"], 2);
    assert!(stderr.contains("--fleet plans every release and changes nothing: it needs --plan"), "{version}: {stderr}");

    if !skip_on_external("--all-namespaces lists every namespace of a shared cluster") {
        bed.helm_with_ok(
            &[],
            &["install", "other", "demo/bsr", "--version", "1.2.6", "--namespace", "fleet-other", "--create-namespace"],
            None,
        );
        let (stdout, _) =
            through_helm(&bed, &[&["-A", "--plan", "-o", "json", "--chart", "demo/bsr"][..], &CHARTS].concat(), 0);
        let view: Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(view["scope"], "all namespaces", "{version}");
        assert_eq!(view["releases"].as_array().unwrap().len(), 5, "{version}: {stdout}");
        let other = row(&view, "fleet-other", "other");
        // No ledger: the bsr preset by chart name, from the --chart given for its chart.
        assert_eq!(other["policy_source"], "preset bsr", "{version}: {other:#}");
        assert_eq!(other["chart_source"], "demo/bsr (--chart)", "{version}: {other:#}");
        assert_eq!(
            row(&view, &ns, "bsr")["chart_source"],
            "demo/bsr (--chart)",
            "{version}: --chart before the ledger"
        );
    }
    assert_eq!(revisions(&bed, &all), before, "{version}: the fleet view changed a release");
}
both_helms!(fleet_view, super::the_fleet_is_planned_release_by_release);
