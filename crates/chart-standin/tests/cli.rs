//! The `chart-standin` binary: packages the fixtures, serves them, prints the URLs on
//! stderr and exits cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::http_get;

#[test]
fn binary_serves_repo_and_oci_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chart-standin"))
        .args(["--charts-dir", dir.path().to_str().unwrap(), "--package-fixtures", "--oci-auth", "basic"])
        .args(["--user", "u", "--password", "p"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut repo, mut oci) = (None, None);
    while repo.is_none() || oci.is_none() {
        let line = lines.next().expect("stderr closed early").unwrap();
        if let Some(u) = line.strip_prefix("chart-standin: repository ") {
            repo = Some(u.split_whitespace().next().unwrap().trim_start_matches("http://").to_owned());
        }
        if let Some(u) = line.strip_prefix("chart-standin: oci oci://") {
            oci = Some(u.split('/').next().unwrap().to_owned());
        }
    }
    let (status, _, body) = http_get(repo.as_deref().unwrap(), "/index.yaml", None);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("bsr-2.0.0.tgz"));
    assert_eq!(http_get(oci.as_deref().unwrap(), "/v2/charts/bsr/tags/list", None).0, 401);
    assert!(dir.path().join("coder-3.0.0.tgz").is_file());

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
