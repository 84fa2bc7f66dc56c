//! Benchmark: what `helm safe-upgrade` costs over doing the same hops with bare helm, on
//! the same test bed, in the same run. Prints medians and ratios; asserts nothing (speed
//! is reported here, never checked by timed tests).
//!
//! Run with `scripts/bench` (provisions helm, builds in release mode). Each round installs
//! the BSR-like chart at 1.0.4 and walks 1.0.4 → 1.1.9 → 1.2.6 → 1.3.0:
//!
//! - bare: three `helm upgrade --version V -f values --wait` in a row (what an operator
//!   following the vendor's page types), then nothing else;
//! - tool: `helm-safe-upgrade bsr --to 1.3.0 --yes` (reads, plans, locks, backs up,
//!   verifies every hop, keeps the ledger).
//!
//! And, read-only, `--plan` against the three reads an operator would do by hand
//! (`helm get metadata`, `helm history`, `helm search repo --versions`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chart_standin::{ChartRepo, RepoOptions};
use kube_standin::testing::{HelmEnv, HelmVersion, kubectl_path};
use kube_standin::{Options, StandIn};

const ROUNDS: usize = 5;
const VALUES: &str = "replicaCount: 2\npostgres:\n  password: bench\nextraEnv:\n  - name: A\n    value: b\n";

fn tool_path() -> PathBuf {
    // The example sits in target/<profile>/examples; the plugin binary one level up.
    let exe = std::env::current_exe().expect("own path");
    exe.parent().and_then(Path::parent).expect("target dir").join("helm-safe-upgrade")
}

fn run(mut cmd: Command, what: &str) -> Duration {
    let started = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct Bed {
    env: HelmEnv,
    values: PathBuf,
    state: tempfile::TempDir,
    _standin: StandIn,
    _repo: ChartRepo,
    _charts: tempfile::TempDir,
}

impl Bed {
    fn new(version: HelmVersion) -> Bed {
        // The same readiness delay for both sides: helm waits for it either way.
        let standin = StandIn::start(Options { ready_delay: Duration::from_millis(100), ..Options::default() })
            .expect("stand-in");
        let env = HelmEnv::new(&standin, version);
        let charts = tempfile::tempdir().unwrap();
        chart_standin::fixtures::package("bsr", charts.path()).expect("package bsr");
        let repo = ChartRepo::start(charts.path(), RepoOptions::default()).expect("chart repository");
        env.helm_ok(&["repo", "add", "demo", &repo.url()]);
        let values = env.dir().join("values.yaml");
        std::fs::write(&values, VALUES).unwrap();
        Bed { env, values, state: tempfile::tempdir().unwrap(), _standin: standin, _repo: repo, _charts: charts }
    }

    fn helm(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(self.env.helm_bin());
        cmd.args(args).args(["--namespace", "bsr"]);
        cmd
    }

    fn tool(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(&tool_path());
        cmd.args(args)
            .env("HELM_BIN", self.env.helm_bin())
            .env("KUBECTL", kubectl_path())
            .env("HELM_NAMESPACE", "bsr")
            .env("XDG_STATE_HOME", self.state.path())
            .env_remove("CI");
        cmd
    }

    fn fresh_install(&self) {
        let _ = self.helm(&["uninstall", "bsr", "--wait"]).output();
        let _ = self
            .env
            .command(&kubectl_path())
            .args(["--namespace", "bsr", "delete", "configmap", "helm-safe-upgrade.bsr"])
            .output();
        let values = self.values.to_str().unwrap();
        run(
            self.helm(&[
                "install",
                "bsr",
                "demo/bsr",
                "--version",
                "1.0.4",
                "--create-namespace",
                "-f",
                values,
                "--wait",
            ]),
            "install",
        );
    }
}

fn main() {
    assert!(tool_path().is_file(), "build the plugin first: cargo build --release (scripts/bench does)");
    println!("helm-safe-upgrade benchmark: {ROUNDS} rounds, medians; ratio = tool / bare helm on the same bed\n");
    println!("{:<14} {:<28} {:>10} {:>10} {:>7}", "helm", "scenario", "bare", "tool", "ratio");
    for version in HelmVersion::TESTED {
        let bed = Bed::new(version);
        let values = bed.values.to_str().unwrap().to_string();
        let (mut bare, mut tool, mut bare_reads, mut tool_plan) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            bed.fresh_install();
            let started = Instant::now();
            for v in ["1.1.9", "1.2.6", "1.3.0"] {
                run(bed.helm(&["upgrade", "bsr", "demo/bsr", "--version", v, "-f", &values, "--wait"]), "helm upgrade");
            }
            bare.push(started.elapsed());

            bed.fresh_install();
            let started = Instant::now();
            run(bed.helm(&["get", "metadata", "bsr", "-o", "json"]), "helm get metadata");
            run(bed.helm(&["history", "bsr", "-o", "json"]), "helm history");
            run(bed.helm(&["search", "repo", "demo/bsr", "--versions", "-o", "json"]), "helm search repo");
            bare_reads.push(started.elapsed());
            tool_plan
                .push(run(bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"]), "safe-upgrade --plan"));
            tool.push(run(bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"]), "safe-upgrade"));
        }
        for (scenario, bare, tool) in [
            ("3 hops 1.0.4 → 1.3.0", median(bare), median(tool)),
            ("read and plan (--plan)", median(bare_reads), median(tool_plan)),
        ] {
            println!(
                "{:<14} {:<28} {:>9.2}s {:>9.2}s {:>7.2}",
                version.to_string(),
                scenario,
                bare.as_secs_f64(),
                tool.as_secs_f64(),
                tool.as_secs_f64() / bare.as_secs_f64()
            );
        }
    }
}
