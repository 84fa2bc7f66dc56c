//! Test support every crate reuses: where the provisioned tools are (`HSU_TOOLS_DIR`,
//! default `<workspace>/.cache/tools`, filled by `scripts/provision-helm.py`), which helm
//! versions exist, and [`HelmEnv`], an isolated helm home pointed at a stand-in. Children
//! are spawned with an argv, never through a shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::StandIn;

/// The helm versions the project provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelmVersion {
    V3_17_3,
    V3_19_0,
    V4_1_4,
}

impl HelmVersion {
    /// The versions the scenario suites run against.
    pub const TESTED: [HelmVersion; 2] = [HelmVersion::V3_19_0, HelmVersion::V4_1_4];

    /// `3.19.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            HelmVersion::V3_17_3 => "3.17.3",
            HelmVersion::V3_19_0 => "3.19.0",
            HelmVersion::V4_1_4 => "4.1.4",
        }
    }

    /// 3 or 4.
    pub fn major(self) -> u32 {
        match self {
            HelmVersion::V3_17_3 | HelmVersion::V3_19_0 => 3,
            HelmVersion::V4_1_4 => 4,
        }
    }
}

impl std::fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "helm v{}", self.as_str())
    }
}

const HINT: &str = "run ./scripts/test or python3 scripts/provision-helm.py";

/// `HSU_TOOLS_DIR`, or `<workspace root>/.cache/tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("HSU_TOOLS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/tools"),
    }
}

fn tool(rel: &str) -> PathBuf {
    let p = tools_dir().join(rel);
    assert!(p.is_file(), "{} is missing: {HINT}", p.display());
    p
}

/// The provisioned helm binary of `version`; panics with a hint when it is missing.
pub fn helm_path(version: HelmVersion) -> PathBuf {
    tool(&format!("helm-v{}/helm", version.as_str()))
}

/// The provisioned kubectl; panics with a hint when it is missing.
pub fn kubectl_path() -> PathBuf {
    tool("kubectl/kubectl")
}

/// An isolated helm home (cache, config and data in a temporary directory) whose
/// kubeconfig points at a stand-in.
#[derive(Debug)]
pub struct HelmEnv {
    pub version: HelmVersion,
    dir: tempfile::TempDir,
    helm: PathBuf,
}

impl HelmEnv {
    /// A fresh environment for `version` against `standin`.
    pub fn new(standin: &StandIn, version: HelmVersion) -> Self {
        HelmEnv::for_server(&standin.url(), version)
    }

    /// A fresh environment for `version` against the API at `url`, e.g. a
    /// [`FaultProxy`](crate::fault::FaultProxy)'s.
    pub fn for_server(url: &str, version: HelmVersion) -> Self {
        let helm = helm_path(version);
        let dir = tempfile::Builder::new().prefix("helm-env-").tempdir().expect("create a temporary helm home");
        crate::write_kubeconfig_file(&dir.path().join("kubeconfig"), url).expect("write kubeconfig");
        HelmEnv { version, dir, helm }
    }

    /// The temporary directory holding the helm home and the kubeconfig.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kubeconfig pointing at the stand-in.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The helm binary used.
    pub fn helm_bin(&self) -> &Path {
        &self.helm
    }

    /// The environment helm runs with, for tests that spawn their own processes.
    pub fn envs(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        vec![
            ("HELM_CACHE_HOME".into(), s(d.join("cache"))),
            ("HELM_CONFIG_HOME".into(), s(d.join("config"))),
            ("HELM_DATA_HOME".into(), s(d.join("data"))),
            ("KUBECONFIG".into(), s(self.kubeconfig())),
            // The plugin keeps chart archives between runs under XDG_CACHE_HOME: one bed's
            // runs share them, another bed's (or the machine's) do not. helm itself uses
            // HELM_CACHE_HOME.
            ("XDG_CACHE_HOME".into(), s(d.join("xdg-cache"))),
        ]
    }

    /// Variables from the caller's environment that would change what helm does.
    const CLEARED: [&'static str; 6] = [
        "HELM_DRIVER",
        "HELM_NAMESPACE",
        "HELM_KUBECONTEXT",
        "HELM_PLUGINS",
        "HELM_REGISTRY_CONFIG",
        "HELM_REPOSITORY_CONFIG",
    ];

    /// A `Command` for `program` with this environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for v in Self::CLEARED {
            cmd.env_remove(v);
        }
        cmd.envs(self.envs());
        cmd
    }

    /// Runs helm with `args`.
    pub fn helm(&self, args: &[&str]) -> Output {
        self.command(&self.helm).args(args).output().expect("spawn helm")
    }

    /// Runs helm and returns its stdout; panics showing argv, stdout and stderr if it fails.
    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.helm(args);
        assert!(
            out.status.success(),
            "{} {:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.version,
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
