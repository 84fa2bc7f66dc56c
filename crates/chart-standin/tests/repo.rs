//! The HTTP chart repository driven by the real helm 3 and helm 4 binaries:
//! `repo add`, `search repo --versions -o json`, `pull`, `show chart`, basic auth.

mod common;

use chart_standin::{ChartRepo, Credentials, RepoOptions, fixtures};
use common::{Helm, expected_versions, helms};

fn packaged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package_all(dir.path()).unwrap();
    dir
}

fn search_versions(helm: &Helm, chart: &str, devel: bool) -> Vec<String> {
    let name = format!("fx/{chart}");
    let mut args = vec!["search", "repo", name.as_str(), "--versions", "-o", "json"];
    if devel {
        args.push("--devel");
    }
    let out = helm.ok(&args);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    // search is a substring match; keep exact names only.
    rows.iter().filter(|r| r["name"] == name).map(|r| r["version"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn search_lists_every_version_newest_first_prereleases_only_with_devel() {
    let dir = packaged();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for helm in helms() {
        helm.ok(&["repo", "add", "fx", &repo.url()]);
        for chart in fixtures::CHARTS {
            assert_eq!(
                search_versions(&helm, chart, false),
                expected_versions(chart, false),
                "helm {} {chart}",
                helm.version
            );
            assert_eq!(
                search_versions(&helm, chart, true),
                expected_versions(chart, true),
                "helm {} {chart} --devel",
                helm.version
            );
        }
        let devel = search_versions(&helm, "bsr", true);
        assert_eq!(devel[..2], ["2.0.0", "1.5.0-rc.1"], "helm {}", helm.version);
        assert!(!search_versions(&helm, "bsr", false).contains(&"1.5.0-rc.1".to_owned()), "helm {}", helm.version);
        // app_version comes through the index.
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&helm.ok(&["search", "repo", "fx/generic-app", "-o", "json"])).unwrap();
        assert_eq!(rows[0]["version"], "2.0.0", "helm {}", helm.version);
        assert_eq!(rows[0]["app_version"], "4.0.0", "helm {}", helm.version);
    }
}

#[test]
fn pull_and_show_chart_from_the_repository() {
    let dir = packaged();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for helm in helms() {
        helm.ok(&["repo", "add", "fx", &repo.url()]);
        let out = helm.scratch("pull");
        helm.ok(&["pull", "fx/bsr", "--version", "1.1.9", "-d", out.to_str().unwrap()]);
        let pulled = std::fs::read(out.join("bsr-1.1.9.tgz")).unwrap();
        assert_eq!(pulled, fixtures::chart_tgz("bsr", "1.1.9").unwrap(), "helm {}: pulled bytes", helm.version);

        let shown: serde_json::Value =
            yaml_serde::from_str(&helm.ok(&["show", "chart", "fx/bsr", "--version", "1.1.9"])).unwrap();
        assert_eq!(shown["version"], "1.1.9", "helm {}", helm.version);
        assert_eq!(shown["apiVersion"], "v2", "helm {}", helm.version);
        assert_eq!(shown["annotations"]["bsr.example/schema-version"], "222", "helm {}", helm.version);

        // No version: the newest stable one.
        let shown: serde_json::Value = yaml_serde::from_str(&helm.ok(&["show", "chart", "fx/sourcegraph"])).unwrap();
        assert_eq!(shown["version"], "6.0.0", "helm {}", helm.version);
        let shown: serde_json::Value = yaml_serde::from_str(&helm.ok(&["show", "chart", "fx/bsr", "--devel"])).unwrap();
        assert_eq!(shown["version"], "2.0.0", "helm {}", helm.version);

        let err = helm.fails(&["show", "chart", "fx/bsr", "--version", "9.9.9"]);
        assert!(err.contains("9.9.9"), "helm {}: {err}", helm.version);
    }
    let reqs = repo.requests();
    assert!(reqs.iter().any(|r| r.target == "/index.yaml" && r.status == 200));
    assert!(reqs.iter().any(|r| r.target == "/bsr-1.1.9.tgz" && r.status == 200));
}

#[test]
fn new_packages_show_up_after_repo_update() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package_version("coder", "2.14.0", dir.path()).unwrap();
    let repo = ChartRepo::start(dir.path(), RepoOptions::default()).unwrap();
    for helm in helms() {
        helm.ok(&["repo", "add", "fx", &repo.url()]);
        assert_eq!(search_versions(&helm, "coder", false), ["2.14.0"], "helm {}", helm.version);
    }
    fixtures::package_version("coder", "2.15.1", dir.path()).unwrap();
    for helm in helms() {
        helm.ok(&["repo", "add", "fx", &repo.url()]);
        helm.ok(&["repo", "update", "fx"]);
        assert_eq!(search_versions(&helm, "coder", false), ["2.15.1", "2.14.0"], "helm {}", helm.version);
    }
}

#[test]
fn basic_auth_is_required_when_configured() {
    let dir = packaged();
    let creds = Credentials::new("alice", "s3cret");
    let repo = ChartRepo::start(dir.path(), RepoOptions { basic_auth: Some(creds), ..Default::default() }).unwrap();
    for helm in helms() {
        let err = helm.fails(&["repo", "add", "fx", &repo.url()]);
        assert!(err.contains("401") || err.to_lowercase().contains("unauthorized"), "helm {}: {err}", helm.version);
        helm.fails(&["repo", "add", "fx", &repo.url(), "--username", "alice", "--password", "wrong"]);
        helm.ok(&["repo", "add", "fx", &repo.url(), "--username", "alice", "--password", "s3cret"]);
        assert_eq!(search_versions(&helm, "coder", false), expected_versions("coder", false), "helm {}", helm.version);
        let out = helm.scratch("pull");
        helm.ok(&["pull", "fx/coder", "--version", "2.15.0", "-d", out.to_str().unwrap()]);
        assert!(out.join("coder-2.15.0.tgz").is_file(), "helm {}", helm.version);
    }
}
