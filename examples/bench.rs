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
//!   verifies every hop, keeps the ledger), with `--no-preflight` (the run layer's own
//!   cost) and without (every hop pulled and rendered first).
//!
//! And, read-only, `--plan` against the three reads an operator would do by hand
//! (`helm get metadata`, `helm history`, `helm search repo --versions`); and what the
//! preflight costs (`--plan` less `--plan --no-preflight`: the read of the cluster's
//! capabilities beside the release's, then three renders in parallel, the archives kept
//! by an earlier plan on the bed; the same with the operator's `-f`, whose merge helm
//! makes in that first read with and without the preflight, so the difference is the
//! renders; and, with nothing kept, three pulls beside the renders, as
//! a first run on a machine) against one `helm template` of one hop (the first round's
//! plan keeps them; medians leave it out); and, to measure the renderer's choice, three
//! `helm template --is-upgrade` and three `helm upgrade --dry-run=server` at once from
//! archives on disk, against the same.
//!
//! The "processes" column is bare / tool: how many processes each side starts (the tool
//! runs with `--debug`, which names every process it starts).
//!
//! Then the fleet view (see [`fleet`]): on a bed of [`fleet::RELEASES`] releases, one
//! release's `--plan` against `--all-namespaces --plan` over all of them (target: the fleet
//! in ≤ 3× the one release). `scripts/bench fleet` runs only that part.
//!
//! First, without helm, the planner itself on a hostile chart source: 20,000 offered
//! versions with arbitrary minors (see [`planning`]). `scripts/bench planning` runs only
//! that part, in seconds.

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

/// Start every command, then wait for all: the wall time of running them at once.
fn run_at_once(commands: Vec<Command>, what: &str) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut cmd| {
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"))
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(out.status.success(), "{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    started.elapsed()
}

/// Run the tool with `--debug`, which names every process it starts on stderr: the time,
/// and how many processes the run spawned.
fn run_counted(mut cmd: Command, what: &str) -> (Duration, usize) {
    cmd.arg("--debug");
    let started = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    (elapsed, stderr.lines().filter(|l| l.contains("debug: ")).count())
}

/// Run the tool with `--debug` as [`run_counted`] does, and also say how long it took
/// until it started its first `helm upgrade`: the time a run spends before it changes
/// anything (its reads, its plan, the ledger write that takes the lock).
fn run_until_upgrade(mut cmd: Command, what: &str) -> (Duration, Duration, usize) {
    use std::io::BufRead;
    cmd.arg("--debug").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let (mut first_upgrade, mut processes, mut lines) = (None, 0, vec![]);
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("debug: ") {
            processes += 1;
            if first_upgrade.is_none() && line.contains(" upgrade ") {
                first_upgrade = Some(started.elapsed());
            }
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let elapsed = started.elapsed();
    assert!(status.success(), "{what} failed:\n{}", lines.join("\n"));
    (first_upgrade.unwrap_or_else(|| panic!("{what} ran no helm upgrade:\n{}", lines.join("\n"))), elapsed, processes)
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
    charts: tempfile::TempDir,
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
        Bed { env, values, state: tempfile::tempdir().unwrap(), _standin: standin, _repo: repo, charts }
    }

    fn helm(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(self.env.helm_bin());
        cmd.args(args).args(["--namespace", "bsr"]);
        cmd
    }

    /// The tool, with the chart archives earlier runs on this bed kept
    /// (`XDG_CACHE_HOME` is the bed's).
    fn tool(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(&tool_path());
        cmd.args(args)
            .env("HELM_BIN", self.env.helm_bin())
            .env("HELM_NAMESPACE", "bsr")
            .env("XDG_STATE_HOME", self.state.path())
            .env_remove("CI");
        cmd
    }

    /// The tool with nothing kept: a first run on this machine, which pulls each archive.
    fn tool_nothing_kept(&self, args: &[&str], cache: &Path) -> Command {
        let mut cmd = self.tool(args);
        cmd.env("XDG_CACHE_HOME", cache);
        cmd
    }

    /// The packaged chart of `version`, as the repository serves it.
    fn archive(&self, version: &str) -> String {
        self.charts.path().join(format!("bsr-{version}.tgz")).display().to_string()
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
    let only = |part: &str| std::env::args().skip(1).any(|a| a == part);
    if only("fleet") {
        assert!(tool_path().is_file(), "build the plugin first: cargo build --release (scripts/bench does)");
        fleet::report();
        return;
    }
    planning::report();
    if only("planning") {
        return;
    }
    println!();
    assert!(tool_path().is_file(), "build the plugin first: cargo build --release (scripts/bench does)");
    println!("helm-safe-upgrade benchmark: {ROUNDS} rounds, medians; ratio = tool / bare helm on the same bed\n");
    println!("{:<14} {:<28} {:>10} {:>10} {:>7} {:>10}", "helm", "scenario", "bare", "tool", "ratio", "processes");
    for version in HelmVersion::TESTED {
        let bed = Bed::new(version);
        let values = bed.values.to_str().unwrap().to_string();
        let (mut bare, mut tool, mut bare_reads, mut tool_plan) = (vec![], vec![], vec![], vec![]);
        let (mut bare_template, mut preflight, mut preflight_processes) = (vec![], vec![], 0);
        let (mut preflight_pulled, mut pulled_processes) = (vec![], 0);
        let (mut preflight_with_f, mut with_f_processes) = (vec![], 0);
        // The renderer's choice, measured: three of each at once (one per hop), no pull.
        let (mut three_templates, mut three_dry_runs) = (vec![], vec![]);
        let (mut run_processes, mut plan_processes) = (0, 0);
        let (mut tool_checked, mut checked_processes) = (vec![], 0);
        let (mut slowest_chain, mut before_upgrade) = (vec![], vec![]);
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
            // A first plan on this machine pulls each hop's archive; the next plan of the
            // path (and the run that walks it) takes them from the ones kept by digest.
            let nothing_kept = tempfile::tempdir().unwrap();
            let (pulled, pulled_count) = run_counted(
                bed.tool_nothing_kept(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"], nothing_kept.path()),
                "safe-upgrade --plan, nothing kept",
            );
            let (time, processes) = run_counted(
                bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"]),
                "safe-upgrade --plan",
            );
            tool_plan.push(time);
            plan_processes = processes;
            // What rendering the three hops costs: the plan with and without the
            // preflight, against one `helm template` of one hop.
            let (unchecked, unchecked_processes) = run_counted(
                bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan", "--no-preflight"]),
                "--no-preflight",
            );
            preflight.push(time.saturating_sub(unchecked));
            preflight_processes = processes.saturating_sub(unchecked_processes);
            preflight_pulled.push(pulled.saturating_sub(unchecked));
            pulled_processes = pulled_count.saturating_sub(unchecked_processes);
            // The same with the operator's values file, which helm itself merges.
            let with_f = ["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "-f", &values, "--plan"];
            let (checked_f, checked_f_processes) = run_counted(bed.tool(&with_f), "safe-upgrade --plan -f");
            let (unchecked_f, unchecked_f_processes) =
                run_counted(bed.tool(&[&with_f[..], &["--no-preflight"]].concat()), "--plan -f --no-preflight");
            preflight_with_f.push(checked_f.saturating_sub(unchecked_f));
            with_f_processes = checked_f_processes.saturating_sub(unchecked_f_processes);
            let template = ["template", "bsr", "demo/bsr", "--version", "1.1.9", "-f", &values];
            bare_template.push(run(bed.helm(&template), "helm template"));
            // The renderer's choice: three `helm template --is-upgrade` (the preflight's,
            // at best) and three `helm upgrade --dry-run=server` (what it uses for a chart
            // that may `lookup` live objects), the hops at once, the chart archives on
            // disk (bare helm pulls them in-process; the tool pulls them beside the
            // renders). README "Benchmark" says what each sees.
            let hops = ["1.1.9", "1.2.6", "1.3.0"].map(|v| bed.archive(v));
            three_templates.push(run_at_once(
                hops.iter().map(|chart| bed.helm(&["template", "bsr", chart, "--is-upgrade", "-f", &values])).collect(),
                "helm template",
            ));
            three_dry_runs.push(run_at_once(
                hops.iter()
                    .map(|chart| bed.helm(&["upgrade", "bsr", chart, "--dry-run=server", "-o", "json", "-f", &values]))
                    .collect(),
                "helm upgrade --dry-run=server",
            ));
            // The slowest of the reads a run needs before its first change, each alone:
            // the release (one helm read) and the chart listing chain.
            let started = Instant::now();
            run(bed.helm(&["repo", "update", "demo"]), "helm repo update");
            run(bed.helm(&["search", "repo", "demo/bsr", "--versions", "-o", "json"]), "helm search repo");
            let listing = started.elapsed();
            let release = run(bed.helm(&["status", "bsr", "-o", "json"]), "helm status");
            slowest_chain.push(listing.max(release));
            // Issue 12's budget is measured without the preflight, which has its own.
            let (before, time, processes) = run_until_upgrade(
                bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "--no-preflight"]),
                "safe-upgrade --no-preflight",
            );
            before_upgrade.push(before);
            tool.push(time);
            run_processes = processes;
            bed.fresh_install();
            let (time, processes) =
                run_counted(bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"]), "safe-upgrade");
            tool_checked.push(time);
            checked_processes = processes;
        }
        for (scenario, bare, tool, processes) in [
            ("3 hops, --no-preflight", median(bare.clone()), median(tool), format!("3 / {run_processes}")),
            ("3 hops, preflight", median(bare.clone()), median(tool_checked), format!("3 / {checked_processes}")),
            ("before the first upgrade", median(slowest_chain), median(before_upgrade), "-".to_string()),
            ("read and plan (--plan)", median(bare_reads), median(tool_plan), format!("3 / {plan_processes}")),
            (
                "render 3 hops (preflight)",
                median(bare_template.clone()),
                median(preflight),
                format!("1 / {preflight_processes}"),
            ),
            (
                "  with -f values",
                median(bare_template.clone()),
                median(preflight_with_f),
                format!("1 / {with_f_processes}"),
            ),
            (
                "  nothing kept yet",
                median(bare_template.clone()),
                median(preflight_pulled),
                format!("1 / {pulled_processes}"),
            ),
            ("  3 helm template at once", median(bare_template.clone()), median(three_templates), "1 / 3".into()),
            ("  3 dry runs at once", median(bare_template), median(three_dry_runs), "1 / 3".into()),
        ] {
            println!(
                "{:<14} {:<28} {:>9.2}s {:>9.2}s {:>7.2} {:>10}",
                version.to_string(),
                scenario,
                bare.as_secs_f64(),
                tool.as_secs_f64(),
                tool.as_secs_f64() / bare.as_secs_f64(),
                processes
            );
        }
    }
    if only("helm") {
        return;
    }
    println!();
    fleet::report();
}

/// The fleet view against one release's plan, on a bed of [`RELEASES`] releases: the
/// BSR-like chart at a few versions over [`NAMESPACES`] namespaces, installed with real
/// helm (no `--wait`, [`INSTALLERS`] at a time), `bsr` in namespace `bsr` at 1.0.4 among
/// them. Each round times `bsr --to 1.3.0 --plan` (the same command as "read and plan"
/// above, here with 199 other releases on the bed) and `--all-namespaces --plan` over
/// all of them; the JSON variant is checked once to list every release once, planned.
mod fleet {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use kube_standin::testing::HelmVersion;

    use super::{Bed, ROUNDS, median, run, run_counted};

    pub const RELEASES: usize = 200;
    const NAMESPACES: usize = 10;
    /// helm installs at once while the bed is filled.
    const INSTALLERS: usize = 2;
    /// The versions the releases other than `bsr` are installed at, in turn.
    const VERSIONS: [&str; 5] = ["1.0.4", "1.1.9", "1.2.6", "1.3.0", "1.4.1"];
    /// The target: the fleet's plan in at most this many times one release's.
    const TARGET: f64 = 3.0;

    /// (namespace, release, version) of every release but `bsr`.
    fn releases() -> Vec<(String, String, &'static str)> {
        (1..RELEASES)
            .map(|i| (format!("fleet-{}", i % NAMESPACES), format!("app-{i:03}"), VERSIONS[i % VERSIONS.len()]))
            .collect()
    }

    /// Installs the releases, [`INSTALLERS`] at a time; how long it took.
    fn fill(bed: &Bed) -> Duration {
        let started = Instant::now();
        bed.fresh_install();
        let releases = releases();
        let values = bed.values.to_str().unwrap();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..INSTALLERS {
                s.spawn(|| {
                    while let Some((namespace, name, version)) = releases.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let mut cmd = bed.env.command(bed.env.helm_bin());
                        cmd.args(["install", name, "demo/bsr", "--version", version, "-f", values]).args([
                            "--namespace",
                            namespace,
                            "--create-namespace",
                        ]);
                        run(cmd, "helm install (fleet)");
                    }
                });
            }
        });
        started.elapsed()
    }

    /// The JSON view lists every release once, each planned: the timed runs are the
    /// real thing.
    fn check(bed: &Bed) {
        let out = bed
            .tool(&["--all-namespaces", "--plan", "--chart", "demo/bsr", "-o", "json"])
            .output()
            .expect("fleet view");
        assert!(out.status.success(), "fleet view -o json failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fleet JSON");
        let rows = view["releases"].as_array().expect("releases");
        let listed: BTreeSet<(&str, &str)> =
            rows.iter().map(|r| (r["namespace"].as_str().unwrap(), r["release"].as_str().unwrap())).collect();
        assert_eq!(rows.len(), RELEASES, "the fleet view lists {} releases", rows.len());
        assert_eq!(listed.len(), RELEASES, "a release listed twice");
        let unplanned: Vec<_> = rows
            .iter()
            .filter(|r| !matches!(r["standing"].as_str(), Some("upgradable" | "up-to-date" | "blocked")))
            .collect();
        assert!(unplanned.is_empty(), "not planned: {unplanned:?}");
    }

    pub fn report() {
        println!(
            "fleet view: {RELEASES} releases of demo/bsr ({}) over {} namespaces, {ROUNDS} rounds, medians;\n\
             ratio = all {RELEASES} (--all-namespaces --plan) / one release's --plan on the same bed, target ≤ ×{TARGET}\n",
            VERSIONS.join(", "),
            NAMESPACES + 1
        );
        println!("{:<14} {:<28} {:>10} {:>10} {:>7} {:>10}", "helm", "scenario", "one", "fleet", "ratio", "processes");
        let mut notes = vec![];
        for version in HelmVersion::TESTED {
            let bed = Bed::new(version);
            let filled = fill(&bed);
            check(&bed);
            let (mut one, mut all, mut one_processes, mut all_processes) = (vec![], vec![], 0, 0);
            for _ in 0..ROUNDS {
                let (time, processes) = run_counted(
                    bed.tool(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"]),
                    "safe-upgrade --plan",
                );
                one.push(time);
                one_processes = processes;
                let (time, processes) =
                    run_counted(bed.tool(&["--all-namespaces", "--plan", "--chart", "demo/bsr"]), "fleet view");
                all.push(time);
                all_processes = processes;
            }
            let (one, all) = (median(one), median(all));
            let ratio = all.as_secs_f64() / one.as_secs_f64();
            println!(
                "{:<14} {:<28} {:>9.2}s {:>9.2}s {:>7.2} {:>10}",
                version.to_string(),
                format!("plan 1 / {RELEASES} releases"),
                one.as_secs_f64(),
                all.as_secs_f64(),
                ratio,
                format!("{one_processes} / {all_processes}")
            );
            notes.push(format!(
                "{version}: {} ({RELEASES} installs, {INSTALLERS} at a time, no --wait) in {:.1}s; fleet/one ×{ratio:.2}: {}",
                "bed filled",
                filled.as_secs_f64(),
                if ratio <= TARGET { "met" } else { "MISSED" }
            ));
        }
        println!();
        for note in notes {
            println!("{note}");
        }
    }
}

/// Planning cost against the number of versions offered, measured in-process: wall time
/// (median of several rounds) and peak heap, counted by [`counting::Counting`], the
/// global allocator of this example.
mod planning {
    use std::time::{Duration, Instant};

    use helm_safe_upgrade::catalog::{oci, repo};
    use helm_safe_upgrade::plan::{
        self, Available, Context, Plan, PlanError, RollbackRequest, SnapshotKnowledge, UpgradeRequest,
    };
    use helm_safe_upgrade::policy;
    use helm_safe_upgrade::version::ChartVersion;

    use super::counting;

    const OFFERED: usize = 20_000;
    const ROUNDS: usize = 5;
    /// The targets per planning call, in a release build.
    const TIME_TARGET: Duration = Duration::from_millis(100);
    const HEAP_TARGET: usize = 50 << 20;

    /// One planning call, as the scenarios run it.
    type Planning<'a> = dyn Fn() -> Result<Plan, PlanError> + 'a;

    /// splitmix64: a deterministic stream, so every run plans the same list.
    struct Stream(u64);

    impl Stream {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// Tags as a hostile source might list them: majors 1–3, minors up to 10^10, patches
    /// up to 20, one in twenty a pre-release, some spelled `v…` or with `_build`; plus the
    /// two ends, `1.0.0` and `3.10000000000.0`.
    fn offered_tags() -> Vec<String> {
        let mut stream = Stream(2024);
        let mut tags = vec!["1.0.0".to_string(), "3.10000000000.0".to_string()];
        while tags.len() < OFFERED {
            let (major, minor, patch) = (1 + stream.next() % 3, stream.next() % 10_000_000_001, stream.next() % 21);
            let tag = match stream.next() % 20 {
                0 => format!("{major}.{minor}.{patch}-rc.{}", stream.next() % 5),
                1 => format!("v{major}.{minor}.{patch}"),
                2 => format!("{major}.{minor}.{patch}_build.{}", stream.next() % 100),
                _ => format!("{major}.{minor}.{patch}"),
            };
            tags.push(tag);
        }
        tags
    }

    struct Measured {
        median: Duration,
        peak_heap: usize,
        outcome: String,
    }

    /// Runs `f` ROUNDS times: the median time, and the peak heap of one run above what was
    /// allocated before it (the inputs).
    fn measure(f: impl Fn() -> Result<Plan, PlanError>) -> Measured {
        let baseline = counting::reset_peak();
        let result = f();
        let peak_heap = counting::peak().saturating_sub(baseline);
        let outcome = match &result {
            Ok(plan) => format!(
                "{} hop(s), {} warning(s), {} KB of JSON",
                plan.hops.len(),
                plan.warnings.len(),
                serde_json::to_string(plan).map(|j| j.len() / 1024).unwrap_or(0)
            ),
            Err(e) => format!("refused: {}", e.to_string().lines().next().unwrap_or_default()),
        };
        drop(result);
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                let _ = std::hint::black_box(f());
                started.elapsed()
            })
            .collect();
        times.sort();
        Measured { median: times[ROUNDS / 2], peak_heap, outcome }
    }

    /// Times a listing step (no peak heap: its output is the input of the next step).
    fn time_listing<T>(f: impl Fn() -> T) -> Duration {
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .collect();
        times.sort();
        times[ROUNDS / 2]
    }

    fn verdict(ok: bool) -> &'static str {
        if ok { "ok" } else { "MISSED" }
    }

    pub fn report() {
        let tags = offered_tags();
        let search_json = serde_json::to_string(
            &tags
                .iter()
                .map(|t| serde_json::json!({"name": "demo/bsr", "version": t, "app_version": "", "description": "x"}))
                .collect::<Vec<_>>(),
        )
        .expect("json");
        let listed_oci = time_listing(|| oci::versions_from_tags(&tags));
        let listed_repo = time_listing(|| repo::parse_search(&search_json, "demo", "bsr").expect("search json"));
        let available: Vec<Available> = oci::versions_from_tags(&tags);
        let releases: Vec<&ChartVersion> =
            available.iter().map(|a| &a.version).filter(|v| !v.is_prerelease()).collect();
        let (oldest, newest) = (releases[0].clone(), releases[releases.len() - 1].clone());
        let context = Context::default();

        println!(
            "planning: {} tags offered, {} distinct versions, majors 1–3, minors up to 10^10; time: median of {ROUNDS} rounds;\n\
             peak heap: most bytes live at once during one call, above its inputs, counted by this example's global\n\
             allocator (exact heap bytes, not RSS)\n",
            tags.len(),
            available.len()
        );
        println!("{:<58} {:>9}", "listing", "time");
        println!(
            "{:<58} {:>7.1}ms",
            format!("{} OCI tags → sorted, deduplicated versions", tags.len()),
            ms(listed_oci)
        );
        println!("{:<58} {:>7.1}ms\n", "helm search repo JSON → versions", ms(listed_repo));

        let sequential = policy::load_named_or_path("sequential-minor").expect("preset");
        let bsr = policy::load_named_or_path("bsr").expect("preset");
        let upgrade =
            UpgradeRequest { current: oldest.clone(), target: newest.clone(), fast_path: false, devel: false };
        let bsr_target = releases.iter().rfind(|v| v.minor().major == 1).map(|v| (*v).clone()).expect("a 1.x");
        let fast = UpgradeRequest { current: oldest.clone(), target: bsr_target, fast_path: true, devel: false };
        let rollback = RollbackRequest {
            current: newest.clone(),
            target: Some(oldest.clone()),
            newest_ever: newest.clone(),
            deployed_before: vec![],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let scenarios: [(String, Box<Planning>); 3] = [
            (
                format!("upgrade {oldest} → {newest} (sequential-minor)"),
                Box::new(|| plan::plan_upgrade(&sequential, &available, &upgrade, &context)),
            ),
            (
                format!("upgrade {oldest} → {} --fast-path (bsr)", fast.target),
                Box::new(|| plan::plan_upgrade(&bsr, &available, &fast, &context)),
            ),
            (
                format!("rollback {newest} → {oldest} (sequential-minor)"),
                Box::new(|| plan::plan_rollback(&sequential, &available, &rollback, &context)),
            ),
        ];
        println!("{:<58} {:>9} {:>11}   result", "scenario", "time", "peak heap");
        let mut all_met = true;
        for (name, f) in &scenarios {
            let m = measure(f);
            let met = m.median <= TIME_TARGET && m.peak_heap <= HEAP_TARGET;
            all_met &= met;
            println!(
                "{name:<58} {:>7.1}ms {:>8.1}MB   {} ({})",
                ms(m.median),
                m.peak_heap as f64 / (1 << 20) as f64,
                verdict(met),
                m.outcome
            );
        }
        println!(
            "\ntargets: ≤ {}ms and ≤ {}MB per planning call: {}",
            TIME_TARGET.as_millis(),
            HEAP_TARGET >> 20,
            if all_met { "met" } else { "MISSED (see above)" }
        );
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
}

/// A global allocator that counts live heap bytes and their high-water mark, so the
/// planning figures are the heap the planner really used, not the process's RSS.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Counting;

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    fn grew(bytes: usize) {
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    fn shrank(bytes: usize) {
        LIVE.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Starts a new high-water mark at what is live now, and returns that.
    pub fn reset_peak() -> usize {
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        live
    }

    pub fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }

    // SAFETY: every call is forwarded to `System` unchanged; only the counters are added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            shrank(layout.size());
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                if new_size >= layout.size() {
                    grew(new_size - layout.size());
                } else {
                    shrank(layout.size() - new_size);
                }
            }
            p
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;
