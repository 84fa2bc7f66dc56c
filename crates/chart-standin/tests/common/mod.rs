//! Shared test helpers: the real helm binaries, each run in an isolated home (cache,
//! config, data, registry config and Docker config all in a tempdir), argv only.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The two helm versions every test runs with.
pub const HELM_VERSIONS: [&str; 2] = ["v3.19.0", "v4.1.4"];

/// `$HSU_TOOLS_DIR`, default `<workspace root>/.cache/tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("HSU_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(".cache/tools"))
}

/// Path of `helm-<version>/helm`, panicking with a hint when it is missing.
pub fn helm_path(version: &str) -> PathBuf {
    let p = tools_dir().join(format!("helm-{version}")).join("helm");
    assert!(
        p.is_file(),
        "helm {version} not found at {}: run ./scripts/test or python3 scripts/provision-helm.py",
        p.display()
    );
    p
}

/// One helm version with its own isolated home.
pub struct Helm {
    pub version: &'static str,
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    pub fn new(version: &'static str) -> Helm {
        Helm { version, bin: helm_path(version), home: tempfile::tempdir().expect("tempdir") }
    }

    /// A scratch directory inside this helm's home.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.home.path().join("scratch").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn registry_config(&self) -> PathBuf {
        self.home.path().join("registry.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let h = self.home.path();
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env_clear()
            .env("HOME", h)
            .env("HELM_CACHE_HOME", h.join("cache"))
            .env("HELM_CONFIG_HOME", h.join("config"))
            .env("HELM_DATA_HOME", h.join("data"))
            .env("HELM_REGISTRY_CONFIG", self.registry_config())
            .env("DOCKER_CONFIG", h.join("docker"))
            .env("KUBECONFIG", h.join("no-kubeconfig"))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn helm")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn helm");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs helm and returns stdout; panics with the version, argv and stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        self.check(args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn check(&self, args: &[&str], out: &Output) {
        assert!(
            out.status.success(),
            "helm {} {:?} failed ({}):\n{}{}",
            self.version,
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs helm expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "helm {} {:?} succeeded but should have failed:\n{}",
            self.version,
            args,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Every helm version, each with a fresh home.
pub fn helms() -> Vec<Helm> {
    HELM_VERSIONS.iter().map(|v| Helm::new(v)).collect()
}

/// Splits multi-document YAML (helm template output) into JSON values, skipping empty
/// documents.
pub fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" || line.starts_with("--- ") {
            if !cur.trim().is_empty() {
                let v: serde_json::Value =
                    yaml_serde::from_str(&cur).unwrap_or_else(|e| panic!("bad YAML document: {e}\n{cur}"));
                if !v.is_null() {
                    docs.push(v);
                }
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

/// Stable versions of a fixture chart, newest first (what `helm search repo --versions`
/// must print), optionally including pre-releases.
pub fn expected_versions(chart: &str, devel: bool) -> Vec<String> {
    let mut vs: Vec<semver::Version> = chart_standin::fixtures::versions(chart)
        .unwrap()
        .iter()
        .map(|v| semver::Version::parse(&v.version).unwrap())
        .filter(|v| devel || v.pre.is_empty())
        .collect();
    vs.sort();
    vs.reverse();
    vs.iter().map(|v| v.to_string()).collect()
}

/// A minimal HTTP/1.1 GET (Connection: close) for checking the servers directly:
/// returns the status, lower-cased headers and body.
pub fn http_get(host: &str, target: &str, auth: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// The value of a header.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
