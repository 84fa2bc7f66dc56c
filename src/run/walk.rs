//! Walking a plan on a live release: each hop's steps, verification, the pause between
//! hops, and bringing the release back to the last good version when a hop fails.
//!
//! The walk executes the very [`Plan`] that was printed; it adds nothing to it except the
//! recovery, which is itself planned by the pure planner (the policy's one-step downgrade:
//! a failed 1.1 → 1.2 hop after migrations ran needs BSR's `migratedownto`, not a blind
//! `helm rollback`). Every process goes through [`crate::helm`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::interact::{Interaction, PauseChoice};
use super::journal::Journal;
use super::unready;
use crate::helm::{ExecError, Helm, Kubectl, policy_command};
use crate::plan::text::{step_text, steps_text};
use crate::plan::{self, Available, Context, Hop, Plan, PlanError, RollbackRequest, SnapshotKnowledge, Step, Strategy};
use crate::policy::Policy;
use crate::release::{Release, ReleaseStatus};
use crate::ui::progress::Progress;
use crate::ui::render::step_detail;
use crate::version::ChartVersion;

/// How helm is told which chart to deploy.
#[derive(Clone, Debug)]
pub enum ChartArg {
    /// `repo/name` or `oci://…`, with `--version`.
    Reference { reference: String, plain_http: bool },
    /// Packaged charts on disk: one archive per version.
    Files(std::collections::BTreeMap<ChartVersion, PathBuf>),
}

impl ChartArg {
    fn args(&self, version: &ChartVersion) -> Result<Vec<String>, String> {
        match self {
            ChartArg::Reference { reference, plain_http } => {
                let mut a = vec![reference.clone(), "--version".into(), version.original().to_string()];
                if *plain_http {
                    a.push("--plain-http".into());
                }
                Ok(a)
            }
            ChartArg::Files(files) => files
                .get(version)
                .map(|p| vec![p.display().to_string()])
                .ok_or_else(|| format!("no packaged chart for {version} in the chart directory")),
        }
    }
}

/// What happened to one step, for people and for `-o json`.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<usize>,
    pub action: String,
    pub detail: String,
    pub outcome: &'static str,
    pub duration_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Completed {
        at: ChartVersion,
    },
    /// Stopped at a good version by the operator (or a signal) between hops.
    Stopped {
        at: ChartVersion,
        reason: String,
    },
    /// A hop failed; the release was brought back to the last good version.
    Recovered {
        failed_hop: usize,
        error: String,
        at: ChartVersion,
    },
    /// A hop failed and so did the way back: a human must act.
    Failed {
        error: String,
        next_steps: String,
    },
}

#[derive(Debug)]
enum StepError {
    /// The operator said no at a confirmation: nothing of this step happened.
    Declined(String),
    Failed(String),
}

impl StepError {
    fn message(&self) -> &str {
        match self {
            StepError::Declined(m) | StepError::Failed(m) => m,
        }
    }
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        StepError::Failed(e.to_string())
    }
}

pub struct Walk<'a> {
    pub helm: &'a Helm,
    pub kubectl: &'a Kubectl,
    pub policy: &'a Policy,
    pub release: String,
    pub chart: ChartArg,
    /// The user values read at the start: passed with `-f` to every hop.
    pub carried_values: PathBuf,
    pub extra_values: Vec<PathBuf>,
    pub extra_sets: Vec<String>,
    pub timeout: String,
    /// Private folder (0700) for override values files.
    pub private_dir: PathBuf,
    pub interaction: &'a dyn Interaction,
    pub journal: &'a mut dyn Journal,
    pub snapshot_taken: bool,
    pub available: Vec<Available>,
    pub context: Context,
    pub reports: Vec<StepReport>,
    pub progress: &'a Progress,
    override_files: usize,
    /// The version the release runs now, as far as this walk has moved it.
    deployed: Option<ChartVersion>,
    /// A policy command ran in this hop (e.g. `kubectl scale --replicas=0`): it now owns
    /// fields helm's server-side apply would refuse to take back.
    commands_ran: bool,
    /// The operator's `-f`/`--set` are in the release as deployed now. A resumed run
    /// starts with this set: the interrupted run deployed with them.
    pub extras_in_effect: bool,
    /// ... and were in it when the current hop started: the way back restores that.
    extras_at_hop_start: bool,
    /// Deploys now bring the release back (a failed hop, or "roll this hop back").
    going_back: bool,
    /// Upgrades bring a failed hop back; a failed rollback is left for a person (going
    /// "back" from a rollback would mean upgrading again).
    pub recover: bool,
}

impl<'a> Walk<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        helm: &'a Helm,
        kubectl: &'a Kubectl,
        policy: &'a Policy,
        release: String,
        chart: ChartArg,
        carried_values: PathBuf,
        private_dir: PathBuf,
        interaction: &'a dyn Interaction,
        journal: &'a mut dyn Journal,
        progress: &'a Progress,
    ) -> Self {
        Walk {
            helm,
            kubectl,
            policy,
            release,
            chart,
            carried_values,
            extra_values: vec![],
            extra_sets: vec![],
            timeout: "5m0s".into(),
            private_dir,
            interaction,
            journal,
            snapshot_taken: false,
            available: vec![],
            context: Context::default(),
            reports: vec![],
            progress,
            override_files: 0,
            deployed: None,
            commands_ran: false,
            extras_in_effect: false,
            extras_at_hop_start: false,
            going_back: false,
            recover: true,
        }
    }

    /// Walk every hop of `plan` (its preflight backup is the caller's, done before).
    pub fn run(&mut self, plan: &Plan) -> Outcome {
        self.deployed = Some(plan.from.clone());
        for step in plan.preflight.iter().filter(|s| !matches!(s, Step::Backup { .. })) {
            if let Err(e) = self.step(None, &plan.from, step) {
                // Nothing has changed yet: a preflight snapshot that fails stops the run.
                return Outcome::Stopped { at: plan.from.clone(), reason: format!("preflight: {}", e.message()) };
            }
        }
        let total = plan.hops.len();
        for (i, hop) in plan.hops.iter().enumerate() {
            // A safe point: the previous hop (if any) is deployed and verified.
            if self.helm.runner.signals.stop_requested() {
                return Outcome::Stopped {
                    at: hop.from.clone(),
                    reason: "interrupted: stopped at the first safe point; run the same command again to continue"
                        .into(),
                };
            }
            self.progress.line(&format!("hop {}/{total}: {} → {} ({})", i + 1, hop.from, hop.to, hop.procedure));
            self.journal.hop_started(plan, i, hop);
            self.commands_ran = false;
            self.extras_at_hop_start = self.extras_in_effect;
            let mut deployed_override = false;
            for step in &hop.steps {
                if let Step::Deploy { set, .. } = step {
                    deployed_override = !set.is_empty();
                }
                if let Err(e) = self.step(Some(i), &hop.to, step) {
                    self.journal.hop_ended(i, "failed", Some(e.message()));
                    return self.recover(i, hop, e, deployed_override);
                }
            }
            self.journal.hop_ended(i, "succeeded", None);
            if i + 1 == total || self.helm.runner.signals.stop_requested() {
                continue;
            }
            loop {
                let next = &plan.hops[i + 1];
                let summary = format!(
                    "{} is deployed and verified ({}/{total}). Next: {} → {} ({}).",
                    hop.to,
                    i + 1,
                    next.from,
                    next.to,
                    steps_text(&next.steps)
                );
                match self.interaction.pause(&summary) {
                    PauseChoice::Continue => break,
                    PauseChoice::Stop => {
                        return Outcome::Stopped {
                            at: hop.to.clone(),
                            reason: "stopped by the operator; run the same command again to continue".into(),
                        };
                    }
                    PauseChoice::RollBack => return self.roll_back_hop(i, hop),
                    PauseChoice::Status => self.show_status(),
                }
            }
        }
        Outcome::Completed { at: plan.to.clone() }
    }

    fn show_status(&self) {
        match self.helm.run(format!("show the status of {}", self.release), vec!["status".into(), self.release.clone()])
        {
            Ok(out) => eprintln!("{}", out.stdout.trim_end()),
            Err(e) => eprintln!("{e}"),
        }
    }

    fn step(&mut self, hop: Option<usize>, hop_target: &ChartVersion, step: &Step) -> Result<(), StepError> {
        let started = Instant::now();
        let detail = step_text(step);
        let asks = matches!(step, Step::Confirm { .. } | Step::Snapshot { argv: None, .. });
        self.progress.step_started(&format!("  {detail}"), asks);
        let result = self.execute(hop_target, step);
        let elapsed = started.elapsed();
        let action =
            serde_json::to_value(step).ok().and_then(|v| v["action"].as_str().map(String::from)).unwrap_or_default();
        let (outcome, message) = match &result {
            Ok(()) => ("ok", None),
            Err(StepError::Declined(m)) => ("declined", Some(m.clone())),
            Err(StepError::Failed(m)) => ("failed", Some(m.clone())),
        };
        self.progress.step_finished(&format!("  {detail}"), outcome, elapsed);
        self.reports.push(StepReport { hop, action, detail, outcome, duration_ms: elapsed.as_millis(), message });
        result
    }

    fn execute(&mut self, hop_target: &ChartVersion, step: &Step) -> Result<(), StepError> {
        match step {
            Step::Backup { .. } => Ok(()),
            Step::Deploy { version, revision: Some(revision), .. } => self.rollback_to(version, *revision),
            Step::Deploy { version, set, .. } => self.deploy(version, set),
            Step::Verify { version, checks } => {
                self.verify_deployed(version)?;
                for check in checks {
                    let inv = policy_command(format!("check {}", check.name), &unfilled_ok(&check.argv)?, vec![]);
                    self.helm.runner.run(&inv)?;
                }
                Ok(())
            }
            Step::Snapshot { message, argv: Some(argv) } => {
                let inv = policy_command(format!("take a snapshot ({message})"), &unfilled_ok(argv)?, vec![]);
                self.helm.runner.run(&inv)?;
                self.journal.snapshot_taken(&self.deployed.clone().unwrap_or_else(|| hop_target.clone()), "command");
                Ok(())
            }
            Step::Snapshot { message, argv: None } => {
                if self.snapshot_taken {
                    self.journal.snapshot_taken(
                        &self.deployed.clone().unwrap_or_else(|| hop_target.clone()),
                        "--snapshot-taken",
                    );
                    Ok(())
                } else if self.interaction.attended()
                    && self.interaction.confirm(&format!("{message} Has the snapshot been taken?"))
                {
                    self.journal.snapshot_taken(
                        &self.deployed.clone().unwrap_or_else(|| hop_target.clone()),
                        "confirmed by the operator",
                    );
                    Ok(())
                } else {
                    Err(StepError::Declined(format!("no snapshot was taken ({message})")))
                }
            }
            Step::Run { name, argv } => {
                let inv = policy_command(name.clone(), &unfilled_ok(argv)?, vec![]);
                self.commands_ran = true;
                let out = self.helm.runner.run(&inv)?;
                if !out.stdout.trim().is_empty() {
                    self.progress.line(&format!("    {}", out.stdout.trim_end().replace('\n', "\n    ")));
                }
                Ok(())
            }
            Step::WaitGone { version, selector } => self.wait_gone(version, selector),
            Step::Confirm { message } => {
                if self.interaction.confirm(&format!("{message}\nContinue?")) {
                    Ok(())
                } else {
                    Err(StepError::Declined(format!("not confirmed: {message}")))
                }
            }
        }
    }

    fn deploy(
        &mut self,
        version: &ChartVersion,
        set: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StepError> {
        let mut args = vec!["upgrade".to_string(), self.release.clone()];
        args.extend(self.chart.args(version).map_err(StepError::Failed)?);
        // The user values read at the start, every hop: never --reuse-values, which would
        // freeze the old chart's defaults (helm-facts §3.9).
        args.extend(["-f".into(), self.carried_values.display().to_string()]);
        // Going back restores the values the release ran with at the hop's start: an
        // operator's bad --set that broke the hop must not break the way back too.
        let with_extras = !self.going_back || self.extras_at_hop_start;
        let extra_values: &[PathBuf] = if with_extras { &self.extra_values } else { &[] };
        for file in extra_values {
            args.extend(["-f".into(), file.display().to_string()]);
        }
        if !set.is_empty() {
            self.override_files += 1;
            let path = self.private_dir.join(format!("override-{}.json", self.override_files));
            let _ = std::fs::remove_file(&path);
            super::backup::write_private(&path, serde_json::to_string(set).expect("json").as_bytes())
                .map_err(|e| StepError::Failed(e.to_string()))?;
            args.extend(["-f".into(), path.display().to_string()]);
        }
        let extra_sets: &[String] = if with_extras { &self.extra_sets } else { &[] };
        for s in extra_sets {
            args.extend(["--set".into(), s.clone()]);
        }
        args.extend([self.helm.wait_flag().to_string(), "--timeout".into(), self.timeout.clone()]);
        if self.helm.major >= 4 && self.commands_ran {
            // The procedure's own commands changed fields helm manages (Sourcegraph and
            // Coder scale the services to 0); helm 4's server-side apply would refuse to
            // take them back ("conflict with kubectl"). Helm 3's three-way merge does.
            args.push("--force-conflicts".into());
        }
        // The newest version ever deployed is raised before helm runs: its pre-upgrade
        // hooks may migrate the database even if the upgrade then fails.
        self.journal.deploying(version);
        self.helm.run(format!("upgrade {} to {version}", self.release), args).map_err(|e| self.wait_failed(e))?;
        self.deployed = Some(version.clone());
        self.extras_in_effect = with_extras && self.has_extras();
        Ok(())
    }

    fn has_extras(&self) -> bool {
        !self.extra_values.is_empty() || !self.extra_sets.is_empty()
    }

    /// What the way back says about the operator's `-f`/`--set`, when there are any.
    fn extras_note(&self) -> &'static str {
        match (self.has_extras(), self.extras_at_hop_start) {
            (false, _) => "",
            (true, true) => " (with this run's -f/--set, as the release ran before the hop)",
            (true, false) => " (without this run's -f/--set: the release ran without them before the hop)",
        }
    }

    /// A helm command that waited for readiness failed: its error, plus which of the
    /// release's workloads are not ready and what their pods say.
    fn wait_failed(&self, error: ExecError) -> StepError {
        let mut message = error.to_string().trim_end().to_string();
        // A second Ctrl-C means "leave now": no more cluster reads.
        if matches!(error, ExecError::Failed { .. }) && !self.helm.runner.signals.stop_now() {
            let lines = self.explain_unready();
            if !lines.is_empty() {
                message.push_str("\nnot ready:");
                for line in lines {
                    message.push_str("\n  ");
                    message.push_str(&line);
                }
            }
        }
        StepError::Failed(message)
    }

    /// The release's workloads that are short of ready pods (from the manifest helm just
    /// tried to apply), each followed by what its unready pods say. Best effort: a read
    /// that fails here loses the explanation, never the failure being explained.
    fn explain_unready(&self) -> Vec<String> {
        let Ok(manifest) = self.helm.run(
            format!("read the manifest of {}", self.release),
            vec!["get".into(), "manifest".into(), self.release.clone()],
        ) else {
            return vec![];
        };
        let mut by_namespace: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for workload in unready::workloads(&manifest.stdout) {
            let namespace = workload.namespace.clone().unwrap_or_else(|| self.kubectl.namespace.clone());
            by_namespace.entry(namespace).or_default().push(workload.kubectl_ref());
        }
        let mut lines = vec![];
        for (namespace, refs) in by_namespace {
            let mut kubectl = self.kubectl.clone();
            kubectl.namespace = namespace;
            for object in kubectl_objects(&kubectl, "read the release's workloads", refs) {
                let Some(summary) = unready::not_ready(&object) else { continue };
                lines.push(summary);
                let Some(selector) = unready::pod_selector(&object) else { continue };
                let args = vec!["pods".into(), "--selector".into(), selector];
                let pods = kubectl_objects(&kubectl, "list the workload's pods", args);
                lines.extend(unready::pod_problems(&pods).into_iter().map(|p| format!("  {p}")));
            }
        }
        lines
    }

    /// `helm rollback RELEASE REV`: that revision's chart and values, as they ran then.
    fn rollback_to(&mut self, version: &ChartVersion, revision: u64) -> Result<(), StepError> {
        let args = vec![
            "rollback".to_string(),
            self.release.clone(),
            revision.to_string(),
            self.helm.wait_flag().to_string(),
            "--timeout".into(),
            self.timeout.clone(),
        ];
        self.helm
            .run(format!("roll {} back to revision {revision} ({version})", self.release), args)
            .map_err(|e| self.wait_failed(e))?;
        self.deployed = Some(version.clone());
        Ok(())
    }

    fn verify_deployed(&self, version: &ChartVersion) -> Result<(), StepError> {
        #[derive(serde::Deserialize)]
        struct Meta {
            version: String,
            status: ReleaseStatus,
        }
        let meta: Meta = self.helm.json(
            format!("verify {} is deployed at {version}", self.release),
            vec!["get".into(), "metadata".into(), self.release.clone(), "-o".into(), "json".into()],
        )?;
        let live = ChartVersion::parse(&meta.version).ok();
        if meta.status != ReleaseStatus::Deployed || live.as_ref() != Some(version) {
            return Err(StepError::Failed(format!(
                "{} is {} at {}, expected deployed at {version}",
                self.release,
                meta.status.as_str(),
                meta.version
            )));
        }
        Ok(())
    }

    fn wait_gone(&self, version: &ChartVersion, selector: &str) -> Result<(), StepError> {
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<serde_json::Value>,
        }
        let selector = unfilled_ok(&[selector.to_string()])?.remove(0);
        let deadline = Instant::now() + parse_duration(&self.timeout).unwrap_or(Duration::from_secs(300));
        loop {
            let list: List = self.kubectl.json(
                format!("list the pods of {version}"),
                vec!["get".into(), "pods".into(), "--selector".into(), selector.clone(), "-o".into(), "json".into()],
            )?;
            if list.items.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StepError::Failed(format!(
                    "{} pod(s) of {version} still running after {} ({selector})",
                    list.items.len(),
                    self.timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn read_live(&self) -> Result<Release, String> {
        Release::read(self.helm, &self.release).map_err(|e| e.to_string())
    }

    /// Bring the release from wherever the failed hop left it back to `hop.from`.
    fn recover(&mut self, index: usize, hop: &Hop, error: StepError, deployed_override: bool) -> Outcome {
        let error_text = error.message().to_string();
        self.progress.line(&format!("hop {} failed: {error_text}", index + 1));
        if !self.recover {
            let live = self.read_live();
            return Outcome::Failed {
                error: error_text,
                next_steps: match live {
                    Ok(live) => format!(
                        "release {} is {} at {} (revision {}); the rollback from {} to {} did not finish. Fix the cause, then run `helm safe-rollback {} --to {}` again; the backup printed above holds the values and manifest from before",
                        self.release,
                        live.status.as_str(),
                        live.version,
                        live.revision,
                        hop.from,
                        hop.to,
                        self.release,
                        hop.to
                    ),
                    Err(e) => format!("check `helm status {}` ({e})", self.release),
                },
            };
        }
        if self.helm.runner.signals.stop_now() {
            let live = self.read_live();
            return Outcome::Failed {
                error: format!("{error_text}\nstopped at the operator's request before bringing the release back"),
                next_steps: match live {
                    Ok(live) => self.by_hand(&live, hop, &[]),
                    Err(e) => format!("check `helm status {}` ({e})", self.release),
                },
            };
        }
        let live = match self.read_live() {
            Ok(live) => live,
            Err(e) => {
                return Outcome::Failed {
                    error: format!("{error_text}\nthen reading the release failed: {e}"),
                    next_steps: format!("check `helm status {}` and `helm history {}`", self.release, self.release),
                };
            }
        };
        if live.status == ReleaseStatus::Deployed && live.version == hop.from && !deployed_override {
            // Nothing moved (a declined confirmation, a failed check before the deploy).
            return match error {
                StepError::Declined(reason) => Outcome::Stopped { at: hop.from.clone(), reason },
                StepError::Failed(_) => {
                    Outcome::Recovered { failed_hop: index + 1, error: error_text, at: hop.from.clone() }
                }
            };
        }
        let steps = match self.recovery_steps(&live, hop) {
            Ok(steps) => steps,
            Err(why) => {
                return Outcome::Failed {
                    error: format!("{error_text}\nno safe way back: {why}"),
                    next_steps: self.by_hand(&live, hop, &[]),
                };
            }
        };
        self.progress.line(&format!(
            "bringing {} back to {}{}: {}",
            self.release,
            hop.from,
            self.extras_note(),
            steps_text(&steps)
        ));
        self.going_back = true;
        for (done, step) in steps.iter().enumerate() {
            if let Err(e) = self.step(Some(index), &hop.from, step) {
                return Outcome::Failed {
                    error: format!("{error_text}\nthe way back failed too: {}", e.message()),
                    // The failed way back may have made a revision of its own: advise from there.
                    next_steps: self.by_hand(&self.read_live().unwrap_or(live), hop, &steps[done..]),
                };
            }
        }
        Outcome::Recovered { failed_hop: index + 1, error: error_text, at: hop.from.clone() }
    }

    /// The operator's "roll back this hop" at a pause: the same way back, on purpose.
    fn roll_back_hop(&mut self, index: usize, hop: &Hop) -> Outcome {
        let live = match self.read_live() {
            Ok(l) => l,
            Err(e) => return Outcome::Failed { error: e, next_steps: format!("check `helm status {}`", self.release) },
        };
        let steps = match self.recovery_steps(&live, hop) {
            Ok(s) => s,
            Err(why) => {
                eprintln!("cannot roll this hop back: {why}");
                return Outcome::Stopped {
                    at: hop.to.clone(),
                    reason: format!("stopped; the hop could not be rolled back: {why}"),
                };
            }
        };
        if self.has_extras() {
            self.progress.line(&format!("rolling hop {} back to {}{}", index + 1, hop.from, self.extras_note()));
        }
        self.going_back = true;
        for (done, step) in steps.iter().enumerate() {
            if let Err(e) = self.step(Some(index), &hop.from, step) {
                return Outcome::Failed {
                    error: format!("rolling the hop back failed: {}", e.message()),
                    next_steps: self.by_hand(&self.read_live().unwrap_or(live), hop, &steps[done..]),
                };
            }
        }
        Outcome::Stopped { at: hop.from.clone(), reason: format!("hop {} rolled back by the operator", index + 1) }
    }

    /// The policy's one-step downgrade from where the release is to `hop.from`, planned by
    /// the pure planner. A restore needs a person, so an unattended run does not attempt it.
    fn recovery_steps(&self, live: &Release, hop: &Hop) -> Result<Vec<Step>, String> {
        if live.version == hop.from {
            // Only value overrides (maintenance mode) changed: redeploy without them.
            return Ok(vec![
                Step::Deploy { version: hop.from.clone(), set: Default::default(), revision: None },
                Step::Verify { version: hop.from.clone(), checks: self.policy.checks.clone() },
            ]);
        }
        let newest = self.journal.newest_ever().filter(|n| *n > live.version).unwrap_or_else(|| live.version.clone());
        let request = RollbackRequest {
            current: live.version.clone(),
            target: Some(hop.from.clone()),
            newest_ever: newest,
            deployed_before: vec![],
            snapshot: if self.journal.has_snapshot() {
                SnapshotKnowledge::TakenAt(hop.from.clone())
            } else {
                SnapshotKnowledge::Unknown
            },
        };
        let plan = plan::plan_rollback(self.policy, &self.available, &request, &self.context).map_err(|e| match e {
            PlanError::Refused(r) => format!("{} ({})", r.message, r.supported),
            PlanError::BadRequest { message, .. } => message,
        })?;
        if plan.strategy == Strategy::Restore && !self.interaction.attended() {
            return Err(format!(
                "policy {} goes back only by restoring a snapshot, which needs a person: {}",
                self.policy.name,
                steps_text(&plan.hops[0].steps)
            ));
        }
        Ok(plan.hops.into_iter().next().map(|h| h.steps).unwrap_or_default())
    }

    /// What a person must do after the way back failed. `unfinished` are the way back's
    /// steps from the one that failed on.
    fn by_hand(&self, live: &Release, hop: &Hop, unfinished: &[Step]) -> String {
        let redeployed = !matches!(unfinished.first(), None | Some(Step::Deploy { .. }));
        if redeployed && live.status == ReleaseStatus::Deployed && live.version == hop.from {
            // The older chart is running; what is missing is the rest of the procedure
            // (say, the down-migration). Another safe-rollback would find nothing older to
            // go to, and a helm rollback would not run it either.
            let rest: Vec<String> =
                unfinished.iter().enumerate().map(|(i, s)| format!("{}. {}", i + 1, step_detail(s))).collect();
            return format!(
                "release {} is deployed at {} (revision {}), but the policy's way back stopped before it finished. Fix the cause shown above, then finish these steps by hand, in order: {}",
                self.release,
                live.version,
                live.revision,
                rest.join("; ")
            );
        }
        let rollback = live
            .last_good_revision()
            .map(|r| {
                format!(
                    "`helm rollback {} {} --namespace {}` returns to revision {} ({})",
                    self.release,
                    r.revision,
                    self.helm.namespace,
                    r.revision,
                    r.version.as_ref().map(|v| v.to_string()).unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "no earlier good revision is in helm's history".into());
        format!(
            "release {} is {} at {} (revision {}). To bring it back to {} by the policy's procedure, run `helm safe-rollback {} --to {}`; {}. Migrations may have run: follow the vendor's downgrade procedure rather than a bare helm rollback.",
            self.release,
            live.status.as_str(),
            live.version,
            live.revision,
            hop.from,
            self.release,
            hop.from,
            rollback
        )
    }
}

/// `kubectl get ARGS -o json` as a list of objects: a List's items, or the one object.
/// Whatever kubectl printed counts even when it also failed (one of several names not
/// found still lists the others); anything else gives nothing.
fn kubectl_objects(kubectl: &Kubectl, purpose: &str, what: Vec<String>) -> Vec<serde_json::Value> {
    let mut args = vec!["get".to_string()];
    args.extend(what);
    // A cluster that stopped answering must not hold up the report of a failure.
    args.extend(["-o".into(), "json".into(), "--request-timeout".into(), "10s".into()]);
    let stdout = match kubectl.run(purpose, args) {
        Ok(out) => out.stdout,
        Err(ExecError::Failed { stdout, .. }) => stdout,
        Err(_) => return vec![],
    };
    match serde_json::from_str::<serde_json::Value>(&stdout) {
        Ok(serde_json::Value::Object(mut list)) if list.get("kind").and_then(|k| k.as_str()) == Some("List") => {
            match list.remove("items") {
                Some(serde_json::Value::Array(items)) => items,
                _ => vec![],
            }
        }
        Ok(object @ serde_json::Value::Object(_)) => vec![object],
        _ => vec![],
    }
}

/// Refuse to run an argv that still holds `{placeholder}`s: running a half-filled command
/// (an empty schema version, say) could do damage.
fn unfilled_ok(argv: &[String]) -> Result<Vec<String>, StepError> {
    for arg in argv {
        let names = crate::policy::placeholder_names(arg);
        if let Some(name) = names.first() {
            return Err(StepError::Failed(format!(
                "the command {:?} still holds the placeholder {{{name}}}, which nothing filled in; set it in the policy (vars or catalog)",
                argv.join(" ")
            )));
        }
    }
    Ok(argv.to_vec())
}

/// helm's duration syntax (`5m0s`, `90s`, `1h`), for the tool's own waits.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            }
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() {
        return None;
    }
    any.then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_helms_syntax() {
        assert_eq!(parse_duration("5m0s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn half_filled_commands_are_refused() {
        let err = unfilled_ok(&["bufd".into(), "migratedownto".into(), "{to_schema}".into()]).unwrap_err();
        assert!(err.message().contains("{to_schema}"), "{err:?}");
        assert!(unfilled_ok(&["kubectl".into(), "get".into()]).is_ok());
    }
}
