//! The OCI registry stand-in driven by the real helm 3 and helm 4 binaries: `show chart`
//! and `pull` of `oci://` references with and without a version, tag pagination,
//! `+`→`_` tags, basic auth after `helm registry login`, and the bearer-token flow.

mod common;

use std::collections::BTreeMap;

use base64::Engine;
use chart_standin::{Credentials, OciAuth, OciOptions, OciRegistry, archive, fixtures};
use common::{Helm, header, helms, http_get};

fn packaged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package_all(dir.path()).unwrap();
    dir
}

fn show_chart(helm: &Helm, reference: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["show", "chart", reference, "--plain-http"];
    args.extend(extra);
    yaml_serde::from_str(&helm.ok(&args)).unwrap()
}

fn login(helm: &Helm, host: &str, user: &str, password: &str) -> std::process::Output {
    helm.run_stdin(&["registry", "login", host, "-u", user, "--password-stdin", "--plain-http"], password)
}

#[test]
fn show_and_pull_every_chart_over_oci() {
    let dir = packaged();
    let reg = OciRegistry::start(dir.path(), OciOptions::default()).unwrap();
    for helm in helms() {
        let ctx = format!("helm {}", helm.version);
        for chart in fixtures::CHARTS {
            let newest = common::expected_versions(chart, false)[0].clone();
            // No version: helm lists the tags and picks the newest stable one.
            let shown = show_chart(&helm, &reg.reference(chart), &[]);
            assert_eq!(shown["version"], newest.as_str(), "{ctx} {chart}");
            assert_eq!(shown["name"], chart, "{ctx}");
            for v in fixtures::versions(chart).unwrap() {
                let shown = show_chart(&helm, &reg.reference(chart), &["--version", &v.version]);
                assert_eq!(shown["version"], v.version.as_str(), "{ctx} {chart}");
                assert_eq!(shown["appVersion"], v.app_version.as_str(), "{ctx} {chart}");
            }
        }
        let shown = show_chart(&helm, &reg.reference("bsr"), &["--version", "1.1.0"]);
        assert_eq!(shown["annotations"]["bsr.example/schema-version"], "222", "{ctx}");
        let out = helm.scratch("pull");
        helm.ok(&["pull", &reg.reference("bsr"), "--version", "1.2.6", "--plain-http", "-d", out.to_str().unwrap()]);
        let pulled = std::fs::read(out.join("bsr-1.2.6.tgz")).unwrap();
        assert_eq!(pulled, fixtures::chart_tgz("bsr", "1.2.6").unwrap(), "{ctx}: pulled bytes");

        let err = helm.fails(&["show", "chart", &reg.reference("bsr"), "--version", "9.9.9", "--plain-http"]);
        assert!(err.contains("not found"), "{ctx}: {err}");
        let err = helm.fails(&["show", "chart", &reg.reference("nope"), "--plain-http"]);
        assert!(!err.is_empty(), "{ctx}");
    }
    let reqs = reg.requests();
    assert!(reqs.iter().any(|r| r.target == "/v2/charts/bsr/tags/list" && r.status == 200), "{reqs:#?}");
    assert!(reqs.iter().any(|r| r.target == "/v2/charts/bsr/manifests/1.2.6" && r.status == 200), "{reqs:#?}");
}

#[test]
fn manifests_blobs_and_headers_follow_the_distribution_api() {
    let dir = packaged();
    let reg = OciRegistry::start(dir.path(), OciOptions::default()).unwrap();
    let host = reg.host();
    let (status, headers, _) = http_get(&host, "/v2/", None);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "docker-distribution-api-version"), Some("registry/2.0"));

    let (status, headers, body) = http_get(&host, "/v2/charts/bsr/manifests/1.0.4", None);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some(chart_standin::oci::MANIFEST_MEDIA_TYPE));
    let digest = header(&headers, "docker-content-digest").unwrap().to_owned();
    assert_eq!(digest, archive::sha256_digest(&body));
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.cncf.helm.chart.content.v1.tar+gzip");

    // By digest too.
    let (status, _, by_digest) = http_get(&host, &format!("/v2/charts/bsr/manifests/{digest}"), None);
    assert_eq!((status, by_digest), (200, body));

    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let (status, headers, blob) = http_get(&host, &format!("/v2/charts/bsr/blobs/{layer}"), None);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "docker-content-digest"), Some(layer));
    assert_eq!(blob, fixtures::chart_tgz("bsr", "1.0.4").unwrap());
    let config = manifest["config"]["digest"].as_str().unwrap();
    let (_, _, cfg) = http_get(&host, &format!("/v2/charts/bsr/blobs/{config}"), None);
    let cfg: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(cfg["name"], "bsr");
    assert_eq!(cfg["version"], "1.0.4");

    assert_eq!(http_get(&host, "/v2/charts/bsr/manifests/9.9.9", None).0, 404);
    assert_eq!(http_get(&host, "/v2/charts/bsr/blobs/sha256:0000", None).0, 404);
    assert_eq!(http_get(&host, "/v2/charts/nope/tags/list", None).0, 404);
}

/// Follows `Link` headers like a distribution client; returns every tag and the number
/// of pages.
fn all_tags(host: &str, repo: &str, n: Option<usize>, auth: Option<&str>) -> (Vec<String>, usize) {
    let mut target = format!("/v2/{repo}/tags/list");
    if let Some(n) = n {
        target.push_str(&format!("?n={n}"));
    }
    let (mut tags, mut pages) = (Vec::new(), 0);
    loop {
        let (status, headers, body) = http_get(host, &target, auth);
        assert_eq!(status, 200, "{target}");
        pages += 1;
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(page["name"], repo);
        tags.extend(page["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()));
        match header(&headers, "link") {
            Some(link) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                target = link[1..link.find('>').unwrap()].to_owned();
            }
            None => return (tags, pages),
        }
    }
}

#[test]
fn tag_listing_pages_and_helm_follows_the_pages() {
    let dir = packaged();
    let reg = OciRegistry::start(dir.path(), OciOptions { page_size: Some(3), ..Default::default() }).unwrap();
    let mut expected: Vec<String> = fixtures::versions("bsr").unwrap().into_iter().map(|v| v.version).collect();
    expected.sort();
    let (tags, pages) = all_tags(&reg.host(), "charts/bsr", None, None);
    assert_eq!(tags, expected);
    assert_eq!(pages, expected.len().div_ceil(3));
    let (tags, pages) = all_tags(&reg.host(), "charts/bsr", Some(2), None);
    assert_eq!((tags.len(), pages), (expected.len(), expected.len().div_ceil(2)));
    // `last` alone, without n: the server's page size applies.
    let (_, headers, body) = http_get(&reg.host(), "/v2/charts/bsr/tags/list?last=1.4.1", None);
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["tags"], serde_json::json!(["1.5.0-rc.1", "2.0.0"]));
    assert_eq!(header(&headers, "link"), None);

    // 2.0.0 sorts last, so helm only finds it if it follows every Link.
    for helm in helms() {
        let before = reg.requests().len();
        let shown = show_chart(&helm, &reg.reference("bsr"), &[]);
        assert_eq!(shown["version"], "2.0.0", "helm {}", helm.version);
        let paged = reg.requests()[before..]
            .iter()
            .filter(|r| r.target.contains("/tags/list") && r.target.contains("last="))
            .count();
        assert!(paged >= 3, "helm {}: followed only {paged} next pages", helm.version);
    }
}

#[test]
fn build_metadata_tags_use_underscore() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = BTreeMap::new();
    files.insert("Chart.yaml".to_owned(), b"apiVersion: v2\nname: meta\nversion: 1.0.0+build.7\n".to_vec());
    files.insert("templates/cm.yaml".to_owned(), b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".to_vec());
    std::fs::write(dir.path().join("meta-1.0.0+build.7.tgz"), archive::write_tgz("meta", &files, 0).unwrap()).unwrap();
    let reg = OciRegistry::start(dir.path(), OciOptions::default()).unwrap();
    let (_, _, body) = http_get(&reg.host(), "/v2/charts/meta/tags/list", None);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["tags"], serde_json::json!(["1.0.0_build.7"]));
    for helm in helms() {
        let shown = show_chart(&helm, &reg.reference("meta"), &["--version", "1.0.0+build.7"]);
        assert_eq!(shown["version"], "1.0.0+build.7", "helm {}", helm.version);
        let shown = show_chart(&helm, &reg.reference("meta"), &[]);
        assert_eq!(shown["version"], "1.0.0+build.7", "helm {}", helm.version);
    }
}

#[test]
fn basic_auth_needs_registry_login() {
    let dir = packaged();
    let creds = Credentials::new("alice", "s3cret");
    let reg = OciRegistry::start(dir.path(), OciOptions::with_auth(OciAuth::Basic(creds))).unwrap();
    assert_eq!(http_get(&reg.host(), "/v2/", None).0, 401);
    for helm in helms() {
        let ctx = format!("helm {}", helm.version);
        let err = helm.fails(&["show", "chart", &reg.reference("bsr"), "--version", "1.0.0", "--plain-http"]);
        // helm 3 says "basic credential not found" (oras-go, no stored login).
        let e = err.to_lowercase();
        assert!(["unauthorized", "401", "credential not found"].iter().any(|m| e.contains(m)), "{ctx}: {err}");
        let out = login(&helm, &reg.host(), "alice", "wrong");
        assert!(!out.status.success(), "{ctx}: login with a wrong password succeeded");
        let out = login(&helm, &reg.host(), "alice", "s3cret");
        helm.check(&["registry", "login"], &out);
        // Docker-format credentials, as helm writes them.
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(helm.registry_config()).unwrap()).unwrap();
        let auth = config["auths"][reg.host()]["auth"].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(auth).unwrap(), b"alice:s3cret", "{ctx}");

        assert_eq!(show_chart(&helm, &reg.reference("bsr"), &[])["version"], "2.0.0", "{ctx}");
        assert_eq!(show_chart(&helm, &reg.reference("coder"), &["--version", "2.15.1"])["version"], "2.15.1", "{ctx}");
    }
    let reqs = reg.requests();
    assert!(reqs.iter().any(|r| r.status == 401 && r.auth_scheme.is_none()));
    assert!(reqs.iter().any(|r| r.target == "/v2/charts/bsr/tags/list"
        && r.status == 200
        && r.auth_scheme.as_deref() == Some("Basic")));
}

#[test]
fn bearer_token_flow() {
    let dir = packaged();
    let creds = Credentials::new("bob", "t0ken-pass");
    let reg = OciRegistry::start(dir.path(), OciOptions::with_auth(OciAuth::Bearer(creds))).unwrap();
    let host = reg.host();
    let (status, headers, _) = http_get(&host, "/v2/charts/bsr/tags/list", None);
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "www-authenticate").unwrap(),
        format!("Bearer realm=\"http://{host}/token\",service=\"chart-standin\",scope=\"repository:charts/bsr:pull\"")
    );
    // An anonymous token grants nothing; wrong credentials get no token.
    let (_, _, body) = http_get(&host, "/token?service=chart-standin&scope=repository:charts/bsr:pull", None);
    let anon: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let anon = format!("Bearer {}", anon["token"].as_str().unwrap());
    assert_eq!(http_get(&host, "/v2/charts/bsr/tags/list", Some(&anon)).0, 401);
    let basic =
        |u: &str, p: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    assert_eq!(http_get(&host, "/token?scope=repository:charts/bsr:pull", Some(&basic("bob", "nope"))).0, 401);
    let (_, _, body) = http_get(
        &host,
        "/token?service=chart-standin&scope=repository:charts/bsr:pull",
        Some(&basic("bob", "t0ken-pass")),
    );
    let tok: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let bearer = format!("Bearer {}", tok["access_token"].as_str().unwrap());
    assert_eq!(http_get(&host, "/v2/charts/bsr/tags/list", Some(&bearer)).0, 200);
    // The token is scoped to the repository it was asked for.
    assert_eq!(http_get(&host, "/v2/charts/coder/tags/list", Some(&bearer)).0, 401);

    for helm in helms() {
        let ctx = format!("helm {}", helm.version);
        helm.fails(&["show", "chart", &reg.reference("bsr"), "--version", "1.0.0", "--plain-http"]);
        assert!(!login(&helm, &host, "bob", "wrong").status.success(), "{ctx}: wrong password accepted");
        let out = login(&helm, &host, "bob", "t0ken-pass");
        helm.check(&["registry", "login"], &out);
        assert_eq!(show_chart(&helm, &reg.reference("sourcegraph"), &[])["version"], "6.0.0", "{ctx}");
        let out = helm.scratch("pull");
        helm.ok(&[
            "pull",
            &reg.reference("generic-app"),
            "--version",
            "1.7.1",
            "--plain-http",
            "-d",
            out.to_str().unwrap(),
        ]);
        assert!(out.join("generic-app-1.7.1.tgz").is_file(), "{ctx}");
    }
    let reqs = reg.requests();
    assert!(
        reqs.iter()
            .any(|r| r.target.starts_with("/token") && r.status == 200 && r.auth_scheme.as_deref() == Some("Basic")),
        "{reqs:#?}"
    );
    assert!(
        reqs.iter().any(|r| r.target.contains("/manifests/1.7.1")
            && r.status == 200
            && r.auth_scheme.as_deref() == Some("Bearer")),
        "{reqs:#?}"
    );
}
