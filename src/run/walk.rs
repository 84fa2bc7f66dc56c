//! Walking a plan on a live release: each hop's steps, verification, the pause between
//! hops, and bringing the release back to the last good version when a hop fails.
//!
//! The walk executes the very [`Plan`] that was printed; it adds nothing to it except the
//! recovery, which is itself planned by the pure planner (the policy's one-step downgrade:
//! a failed 1.1 → 1.2 hop after migrations ran needs BSR's `migratedownto`, not a blind
//! `helm rollback`). It talks to the cluster only through [`Cluster`].
//!
//! Safety rules it keeps:
//! - Before each hop, the release is read again; if it is not at the revision this walk
//!   left it at (someone ran `helm upgrade` meanwhile), the walk stops and says so.
//! - Before each step that changes something, the journal writes to the ledger; that
//!   write proves the lock is still this run's. If it fails, nothing more is changed, not
//!   even a way back.
//! - The newest version ever deployed is raised only for versions helm actually ran.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::interact::{Answer, Interaction, PauseChoice};
use super::journal::{Journal, JournalError};
use super::ledger::HopOutcome;
use super::rollout::{Watch, Watcher};
use super::values::RunValues;
use crate::catalog::ChartArg;
use crate::disclose::Message;
use crate::helm::{self, ExecError};
use crate::plan::estimate::{self, about, short};
use crate::plan::text::{step_text, steps_text};
use crate::plan::{self, Available, Context, Hop, Plan, PlanError, RollbackRequest, SnapshotKnowledge, Step, Strategy};
use crate::policy::Policy;
use crate::printer::Role;
use crate::release::{Release, ReleaseStatus};
use crate::report::{Outcome, StepReport};
use crate::text::for_terminal;
use crate::ui::progress::{Clock, Progress};
use crate::ui::render::step_detail;
use crate::version::ChartVersion;

#[derive(Debug)]
enum StepError {
    /// The operator said no at a confirmation: nothing of this step happened.
    Declined(String),
    /// It failed; the message may quote a command line with the operator's values.
    Failed(Message),
    /// The ledger could not record the step (or the lock is gone): nothing of it happened,
    /// and nothing more may be changed.
    Halted(JournalError),
}

impl StepError {
    fn message(&self) -> Message {
        match self {
            StepError::Declined(m) => Message::plain(m.as_str()),
            StepError::Failed(m) => m.clone(),
            StepError::Halted(e) => Message::plain(e.message.as_str()),
        }
    }
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        StepError::Failed(e.message())
    }
}

impl From<crate::kube::KubeError> for StepError {
    fn from(e: crate::kube::KubeError) -> Self {
        StepError::Failed(Message::plain(e.to_string()))
    }
}

/// The first line of an error, without the command line a failed helm call quotes after
/// its status (`upgrade bsr to 1.2.6 failed (exit 1): helm upgrade …`).
fn headline(error: &str) -> &str {
    let first = error.lines().next().unwrap_or_default();
    match first.find("): ") {
        Some(end) => &first[..=end],
        None => first,
    }
}

/// A failure in the tool's own words.
fn failed(text: impl Into<String>) -> StepError {
    StepError::Failed(Message::plain(text))
}

/// What a walk needs, fixed for its whole length.
pub struct Setup<'a> {
    pub policy: &'a Policy,
    pub release: String,
    pub chart: ChartArg,
    /// The values deployed at every hop (carried values and the operator's overrides).
    pub values: RunValues,
    pub timeout: String,
    pub snapshot_taken: bool,
    pub available: Vec<Available>,
    pub context: Context,
    /// The release as the walk starts (revision, version, status): before the first hop
    /// the walk checks it is still there. A rollback may start from a failed or pending
    /// release; every later hop starts from a deployed one.
    pub start: (u64, ChartVersion, ReleaseStatus),
    /// The operator's overrides are in the release already (a resumed run: the
    /// interrupted run deployed with them).
    pub overrides_in_effect: bool,
    /// Upgrades bring a failed hop back; a failed rollback is left for a person (going
    /// "back" from a rollback would mean upgrading again).
    pub bring_back_failed_hops: bool,
    /// The run's outcome is printed as text at the end (not `-o json`): a failure's whole
    /// text is said there, and only its headline as it happens.
    pub outcome_in_words: bool,
}

/// What the plan showed for one deploy the preflight rendered: the chart archive and the
/// values helm merged for it, by digest.
struct Rendered {
    chart_digest: String,
    values_digest: String,
}

/// The revision this walk last left the release at, its version and status.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Left {
    /// None after a `helm rollback`, which reports no revision.
    revision: Option<u64>,
    version: ChartVersion,
    status: ReleaseStatus,
}

/// The things a walk uses but does not own.
pub struct Ports<'a> {
    pub cluster: &'a dyn Cluster,
    /// What the rollout does while helm waits for it (read from another thread).
    pub watch: &'a dyn Watch,
    pub interaction: &'a dyn Interaction,
    pub journal: &'a mut dyn Journal,
    pub progress: &'a Progress,
}

pub struct Walk<'a> {
    setup: Setup<'a>,
    cluster: &'a dyn Cluster,
    watch: &'a dyn Watch,
    interaction: &'a dyn Interaction,
    journal: &'a mut dyn Journal,
    progress: &'a Progress,
    pub reports: Vec<StepReport>,
    procedure_files: usize,
    left: Left,
    /// The last step was a deploy that helm reported deployed at this revision: a
    /// verify right after it needs no read of its own.
    fresh_deploy: Option<u64>,
    /// A version helm was asked to deploy and that failed: noted once the release shows
    /// a revision of it (helm ran it, its hooks may have migrated).
    attempted: Option<ChartVersion>,
    /// A policy command ran in this hop (e.g. `kubectl scale --replicas=0`): it now owns
    /// fields helm's server-side apply would refuse to take back.
    commands_ran: bool,
    overrides_in_effect: bool,
    /// ... and were in it when the current hop started: the way back restores that.
    overrides_at_hop_start: bool,
    /// Deploys now bring the release back (a failed hop, or "roll this hop back").
    going_back: bool,
    /// The carried values each hop deploys, when the policy's value rules change them
    /// along the plan (written once, before the first hop); empty: the run's own file.
    carried_files: Vec<std::path::PathBuf>,
    /// Which hop's carried values the next deploy uses, set before each deploy: the hop
    /// under way (the one before it for a deploy of the hop's start, and going back; None:
    /// the values the release started with).
    values_hop: Option<usize>,
    /// What the plan showed for the deploy under way (the one the preflight rendered):
    /// the chart archive and the values it deploys, by digest.
    expected: Option<Rendered>,
    /// When the walk and the hop under way started: progress against the estimates.
    started: Instant,
    hop_started: Instant,
}

impl<'a> Walk<'a> {
    pub fn new(setup: Setup<'a>, ports: Ports<'a>) -> Self {
        let overrides_in_effect = setup.overrides_in_effect;
        let (revision, version, status) = setup.start.clone();
        Walk {
            left: Left { revision: Some(revision), version, status },
            setup,
            cluster: ports.cluster,
            watch: ports.watch,
            interaction: ports.interaction,
            journal: ports.journal,
            progress: ports.progress,
            reports: vec![],
            procedure_files: 0,
            fresh_deploy: None,
            attempted: None,
            commands_ran: false,
            overrides_in_effect,
            overrides_at_hop_start: false,
            going_back: false,
            carried_files: vec![],
            values_hop: None,
            expected: None,
            started: Instant::now(),
            hop_started: Instant::now(),
        }
    }

    fn release(&self) -> &str {
        &self.setup.release
    }

    /// Walk every hop of `plan` (its preflight backup is the caller's, done before).
    pub fn run(&mut self, plan: &Plan) -> Outcome {
        if let Err(why) = self.write_carried_files(plan) {
            return Outcome::Failed {
                error: format!("the values for the hops cannot be prepared: {why}").into(),
                next_steps: format!("nothing was changed; {} is at {}", self.release(), plan.from),
            };
        }
        if let Err(outcome) = self.preflight(plan) {
            return outcome;
        }
        for (i, hop) in plan.hops.iter().enumerate() {
            // A safe point: the previous hop (if any) is deployed and verified.
            let signals = self.cluster.signals();
            if signals.stop_requested() {
                return Outcome::Stopped {
                    at: hop.from.clone(),
                    reason: format!(
                        "{}: stopped at the first safe point; run the same command again to continue",
                        signals.stop_reason()
                    )
                    .into(),
                };
            }
            if let Err(outcome) = self.walk_hop(plan, i, hop) {
                return outcome;
            }
            let last = i + 1 == plan.hops.len();
            if !last
                && !self.cluster.signals().stop_requested()
                && let Some(outcome) = self.pause(plan, i, hop)
            {
                return outcome;
            }
        }
        Outcome::Completed { at: plan.to.clone() }
    }

    /// The carried values of every hop, when the plan's value rules change them: each in
    /// a private file of the run's values folder, computed by the planner's own function
    /// so that what is deployed is what the plan checked.
    fn write_carried_files(&mut self, plan: &Plan) -> Result<(), String> {
        if plan.hops.iter().all(|h| h.values.is_empty()) {
            return Ok(());
        }
        let start = self.setup.values.carried_json();
        for i in 0..plan.hops.len() {
            let values =
                crate::plan::values::carried_at(&plan.hops, i, plan.direction, &start).map_err(|e| e.to_string())?;
            let path = self.setup.values.dir.join(format!("carried-hop-{}.json", i + 1));
            let _ = std::fs::remove_file(&path);
            super::private::write_values(&path, &values).map_err(|e| e.to_string())?;
            self.carried_files.push(path);
        }
        Ok(())
    }

    /// The preflight's steps other than the backup (a snapshot), recorded first.
    fn preflight(&mut self, plan: &Plan) -> Result<(), Outcome> {
        let steps: Vec<&Step> = plan.preflight.iter().filter(|s| !matches!(s, Step::Backup { .. })).collect();
        if steps.iter().any(|s| s.changes_something())
            && let Err(e) = self.journal.hop_starting(plan, 0, None)
        {
            return Err(self.halted(e, &plan.from, "before the preflight"));
        }
        for step in steps {
            if let Err(e) = self.step(None, step) {
                // Nothing has changed yet: a preflight snapshot that fails stops the run.
                return Err(Outcome::Stopped { at: plan.from.clone(), reason: e.message().after("preflight: ") });
            }
        }
        Ok(())
    }

    /// One hop: checked, recorded, walked; on failure, brought back.
    fn walk_hop(&mut self, plan: &Plan, i: usize, hop: &Hop) -> Result<(), Outcome> {
        self.check_unchanged(i, plan)?;
        let expected = hop.estimate.as_ref().map(|e| format!(", expected {}", about(e.time.expected_secs)));
        self.progress.heading(&format!(
            "hop {}/{}: {} → {} ({}){}",
            i + 1,
            plan.hops.len(),
            hop.from,
            hop.to,
            hop.procedure,
            expected.unwrap_or_default()
        ));
        self.hop_started = Instant::now();
        self.progress.set_clock(Some(Clock {
            hop_started: self.hop_started,
            hop_expected: hop.estimate.as_ref().map(|e| e.time.expected_secs),
            after_hop: estimate::remaining(plan, i + 1, 0),
        }));
        let first_change = hop.steps.iter().position(Step::changes_something);
        if let Err(e) = self.journal.hop_starting(plan, i, first_change) {
            return Err(self.halted(e, &hop.from, &format!("before hop {}", i + 1)));
        }
        self.commands_ran = false;
        self.overrides_at_hop_start = self.overrides_in_effect;
        let mut deployed_override = false;
        for (n, step) in hop.steps.iter().enumerate() {
            if let Step::Deploy { set, version, .. } = step {
                deployed_override = !set.is_empty();
                // A deploy of the hop's start (maintenance mode) deploys the values as
                // they were before the hop's rules: the older chart reads the old keys.
                self.values_hop = crate::plan::values::carried_hop(&plan.hops, i, version);
            }
            if step.changes_something()
                && Some(n) != first_change
                && let Err(e) = self.journal.change_starting(i, Some(n))
            {
                return Err(self.halted(e, &self.left.version.clone(), &format!("during hop {}", i + 1)));
            }
            // A deploy the preflight rendered must deploy the chart and values the plan
            // showed.
            self.expected = hop
                .check
                .as_ref()
                .and_then(|c| c.for_step(hop, n))
                .map(|(chart, values)| Rendered { chart_digest: chart.to_string(), values_digest: values.to_string() });
            match self.step(Some(i), step) {
                Ok(()) => {}
                Err(StepError::Halted(e)) => {
                    return Err(self.halted(e, &self.left.version.clone(), &format!("during hop {}", i + 1)));
                }
                Err(e) => {
                    self.journal.hop_ended(i, HopOutcome::Failed, Some(&e.message()));
                    return Err(self.recover(i, hop, e, deployed_override));
                }
            }
        }
        self.ensure_left_known(&hop.to)?;
        self.journal.hop_ended(i, HopOutcome::Succeeded, None);
        self.progress.set_clock(None);
        self.progress.line(&self.hop_done_text(plan, i));
        Ok(())
    }

    /// "hop 2/3 done in 11 min (expected ~12 min); ~15 min left", after each hop, in logs
    /// too; after the last, how long the hops took together.
    fn hop_done_text(&self, plan: &Plan, i: usize) -> String {
        let took = short(self.hop_started.elapsed().as_secs());
        let expected = plan.hops[i].estimate.as_ref().map(|e| format!(" (expected {})", about(e.time.expected_secs)));
        let after = match estimate::remaining(plan, i + 1, 0) {
            _ if i + 1 == plan.hops.len() && i > 0 => {
                format!("; the {} hops took {}", plan.hops.len(), short(self.started.elapsed().as_secs()))
            }
            Some(left) if i + 1 < plan.hops.len() => format!("; {} left", about(left)),
            _ => String::new(),
        };
        format!("hop {}/{} done in {took}{}{after}", i + 1, plan.hops.len(), expected.unwrap_or_default())
    }

    /// "2 of 3 hops done in 25 min, ~15 min left" (the time left when every remaining
    /// hop has an estimate).
    fn so_far(&self, plan: &Plan, done: usize) -> String {
        let left = match estimate::remaining(plan, done, 0) {
            Some(left) if done < plan.hops.len() => format!(", {} left", about(left)),
            _ => String::new(),
        };
        format!("{done} of {} hops done in {}{left}", plan.hops.len(), short(self.started.elapsed().as_secs()))
    }

    /// The pause after hop `i`: None to go on, or how the walk ends.
    fn pause(&mut self, plan: &Plan, i: usize, hop: &Hop) -> Option<Outcome> {
        // A person may take hours to answer: store the hop's end now, so that the ledger
        // (`--history`, another operator) does not show it running meanwhile. Unattended
        // runs do not pause, and store it with the next hop's start.
        if self.interaction.attended()
            && let Err(e) = self.journal.store_now()
        {
            return Some(self.halted(e, &hop.to, "at the pause"));
        }
        let next = &plan.hops[i + 1];
        let summary = format!(
            "{} is deployed and verified: {}. Next: {} → {} ({}).",
            hop.to,
            self.so_far(plan, i + 1),
            next.from,
            next.to,
            steps_text(&next.steps)
        );
        loop {
            match self.interaction.pause(&summary) {
                PauseChoice::Continue => return None,
                PauseChoice::Interrupted => {
                    let reason =
                        "interrupted (Ctrl-C) at the pause: stopped here; run the same command again to continue";
                    return Some(Outcome::Stopped { at: hop.to.clone(), reason: reason.into() });
                }
                PauseChoice::Stop => {
                    let signals = self.cluster.signals();
                    let reason = if signals.stop_requested() {
                        format!("{}: stopped at a pause; run the same command again to continue", signals.stop_reason())
                    } else {
                        "stopped by the operator; run the same command again to continue".to_string()
                    };
                    return Some(Outcome::Stopped { at: hop.to.clone(), reason: reason.into() });
                }
                PauseChoice::RollBack => return Some(self.roll_back_hop(i, hop)),
                PauseChoice::Status => self.show_status(),
            }
        }
    }

    /// The run cannot go on safely: say where the release stands and what to do.
    fn halted(&self, e: JournalError, at: &ChartVersion, when: &str) -> Outcome {
        let release = self.release();
        let (error, next_steps) = if e.lost_lock {
            (
                format!("this run lost the lock of {release} {when}: {}", e.message),
                format!(
                    "{release} is at {at}, as this run left it; this run changed nothing after losing the lock. Another run (or a person) has taken over: see `kubectl get configmap helm-safe-upgrade.{release} -o jsonpath='{{.data.ledger}}'` and `helm history {release}` before doing anything"
                ),
            )
        } else {
            (
                format!("the ledger could not record the next step {when}, so it was not started: {}", e.message),
                format!(
                    "{release} is at {at}, deployed and verified; nothing of the next step ran. When the cluster answers again, run `helm safe-upgrade {release} --resume` (this run's lock stays until then)"
                ),
            )
        };
        Outcome::Failed { error: error.into(), next_steps }
    }

    /// Before a hop: the release must still be where this walk left it. A `helm upgrade`
    /// run by someone else meanwhile would otherwise be "continued" from the wrong
    /// version (deploying the next hop over a newer release is a downgrade without the
    /// policy's down-migration).
    fn check_unchanged(&mut self, index: usize, plan: &Plan) -> Result<(), Outcome> {
        let release = self.release().to_string();
        let unreadable = |e: Message| Outcome::Failed {
            error: e.after(format!("cannot read {release} before hop {}: ", index + 1)),
            next_steps: format!(
                "{release} was at {} when this run last saw it; nothing of hop {} was started. When the cluster answers again, run the same command again",
                self.left.version,
                index + 1
            ),
        };
        // The revision this walk left says it all (no process: the API client reads the
        // labels of helm's storage); after a `helm rollback`, which reports no revision,
        // helm is asked for the version too.
        let (revision, status, version) = match self.left.revision {
            Some(_) => {
                let (revision, status) =
                    self.cluster.latest_revision(&release).map_err(|e| unreadable(Message::plain(e)))?;
                (revision, status, None)
            }
            None => {
                let purpose = format!("check that {release} is still where this run left it");
                let meta = self.cluster.metadata(purpose, &release).map_err(|e| unreadable(e.message()))?;
                (meta.revision, meta.status, Some(meta.version))
            }
        };
        let same = status == self.left.status
            && version.as_deref().is_none_or(|v| ChartVersion::parse(v).ok().as_ref() == Some(&self.left.version))
            && self.left.revision.is_none_or(|r| r == revision);
        if same {
            self.left.revision = Some(revision);
            return Ok(());
        }
        let was = match self.left.revision {
            Some(r) => format!("revision {r} ({}, {})", self.left.version, self.left.status.as_str()),
            None => format!("{} ({})", self.left.version, self.left.status.as_str()),
        };
        // Which version it is now is worth a read through helm: the run stops here anyway.
        let version = version.or_else(|| {
            let purpose = format!("read which version {release} is at now");
            self.cluster.metadata(purpose, &release).ok().filter(|m| m.revision == revision).map(|m| m.version)
        });
        let now = match &version {
            Some(v) => format!("revision {revision} ({}, {})", for_terminal(v), status.as_str()),
            None => format!("revision {revision} ({})", status.as_str()),
        };
        Err(Outcome::Failed {
            error: format!(
                "{release} changed outside this run before hop {}: this run left it at {was}, it is now at {now}",
                index + 1
            )
            .into(),
            next_steps: format!(
                "this run changed nothing after that. Find out who changed it (`helm history {release}`), then plan again from where it is: `helm safe-upgrade {release} --to {} --plan`",
                plan.to
            ),
        })
    }

    /// After a hop: know the revision it made (a hop without a verify step after its
    /// last deploy, or one that deployed by `helm rollback`, which reports no revision).
    fn ensure_left_known(&mut self, version: &ChartVersion) -> Result<(), Outcome> {
        if self.left.revision.is_some() && self.left.version == *version {
            return Ok(());
        }
        self.read_deployed(version).map(|_| ()).map_err(|e| Outcome::Failed {
            error: e.message(),
            next_steps: format!("check `helm status {}`", self.release()),
        })
    }

    fn show_status(&self) {
        match self.cluster.status_text(self.release()) {
            // A chart's NOTES are the chart author's text: shown, not obeyed.
            Ok(text) => self.progress.line(&for_terminal(text.trim_end())),
            Err(e) => self.progress.line(&e.message().render(self.progress.disclosure())),
        }
    }

    fn step(&mut self, hop: Option<usize>, step: &Step) -> Result<(), StepError> {
        let started = Instant::now();
        let detail = step_text(step);
        self.progress.step_started(&format!("  {detail}"), step.asks_operator());
        let result = self.execute(step);
        if !matches!(step, Step::Deploy { .. }) {
            self.fresh_deploy = None;
        }
        let elapsed = started.elapsed();
        let (outcome, message) = match &result {
            Ok(()) => ("ok", None),
            Err(e @ StepError::Declined(_)) => ("declined", Some(e.message())),
            Err(e @ StepError::Failed(_)) => ("failed", Some(e.message())),
            Err(e @ StepError::Halted(_)) => ("not started", Some(e.message())),
        };
        self.progress.step_finished(&format!("  {detail}"), outcome, elapsed);
        let report = StepReport {
            // As the screen numbers them: hop 1 is the first.
            hop: hop.map(|i| i + 1),
            action: step.action().to_string(),
            detail,
            outcome,
            duration_ms: elapsed.as_millis(),
            message,
            way_back: self.going_back,
        };
        self.journal.step_finished(&report, step.asks_operator());
        self.reports.push(report);
        result
    }

    fn execute(&mut self, step: &Step) -> Result<(), StepError> {
        match step {
            Step::Backup { .. } => Ok(()),
            Step::Deploy { version, revision: Some(revision), .. } => self.rollback_to(version, *revision),
            Step::Deploy { version, set, .. } => self.deploy(version, set),
            Step::Verify { version, checks, unfilled } => {
                self.verify(version)?;
                all_filled_in(unfilled, || "the policy's checks".into())?;
                for check in checks {
                    self.cluster.policy_command(format!("check {}", check.name), &check.argv)?;
                }
                Ok(())
            }
            Step::Snapshot { message, argv, unfilled } => {
                if let Some(argv) = argv {
                    all_filled_in(unfilled, || format!("the command {:?}", argv.join(" ")))?;
                }
                self.snapshot(message, argv.as_deref())
            }
            Step::Run { name, argv, unfilled } => {
                all_filled_in(unfilled, || format!("the command {:?}", argv.join(" ")))?;
                self.commands_ran = true;
                let stdout = self.cluster.policy_command(name.clone(), argv)?;
                if !stdout.trim().is_empty() {
                    self.progress.line(&format!("    {}", for_terminal(stdout.trim_end()).replace('\n', "\n    ")));
                }
                Ok(())
            }
            Step::WaitGone { version, selector, unfilled } => {
                all_filled_in(unfilled, || format!("the selector {selector:?}"))?;
                self.wait_gone(version, selector)
            }
            Step::Confirm { message } => match self.interaction.confirm(&format!("{message}\nContinue?")) {
                Answer::Yes => Ok(()),
                Answer::No => Err(StepError::Declined(format!("not confirmed: {message}"))),
                Answer::Interrupted => Err(StepError::Declined(format!("interrupted (Ctrl-C) at: {message}"))),
            },
        }
    }

    /// A snapshot by the policy's command, or one the operator confirms (or vouched for
    /// with `--snapshot-taken`).
    fn snapshot(&mut self, message: &str, argv: Option<&[String]>) -> Result<(), StepError> {
        let at = self.left.version.clone();
        let how = match argv {
            Some(argv) => {
                self.cluster.policy_command(format!("take a snapshot ({message})"), argv)?;
                "command"
            }
            None if self.setup.snapshot_taken => "--snapshot-taken",
            None if self.interaction.attended()
                && self.interaction.confirm(&format!("{message} Has the snapshot been taken?")).is_yes() =>
            {
                "confirmed by the operator"
            }
            None => return Err(StepError::Declined(format!("no snapshot was taken ({message})"))),
        };
        self.journal.snapshot_taken(&at, how);
        Ok(())
    }

    fn deploy(
        &mut self,
        version: &ChartVersion,
        set: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StepError> {
        // Taken first: whatever happens to this deploy, no later one is held to it.
        let expected = self.expected.take();
        let chart = self.setup.chart.for_helm(version).map_err(failed)?;
        if let Some(check) = &expected {
            // The archive the preflight rendered, unchanged since: checked before helm runs.
            let chart = chart.arg();
            let found = crate::catalog::cache::digest_of(std::path::Path::new(&chart)).map_err(failed)?;
            if found != check.chart_digest {
                return Err(failed(format!(
                    "the chart archive {chart} is not the one the plan rendered (digest {}, the plan's {}); nothing was deployed",
                    crate::digest::short(&found),
                    crate::digest::short(&check.chart_digest)
                )));
            }
        }
        // Going back restores the values the release ran with at the hop's start: an
        // operator's bad --set that broke the hop must not break the way back too.
        let with_overrides = !self.going_back || self.overrides_at_hop_start;
        // The user values read at the start, every hop: never --reuse-values, which would
        // freeze the old chart's defaults.
        let carried = match self.values_hop.and_then(|i| self.carried_files.get(i)) {
            Some(file) => file.clone(),
            None => self.setup.values.carried.clone(),
        };
        let mut values = self.setup.values.deploy_values(&carried, with_overrides);
        if !set.is_empty() {
            // The procedure's own values (maintenance mode) go in a file of their own for
            // this deploy only: they are never carried to the next hop.
            self.procedure_files += 1;
            let path = self.setup.values.dir.join(format!("procedure-{}.json", self.procedure_files));
            let _ = std::fs::remove_file(&path);
            super::private::write_values(&path, set).map_err(|e| failed(e.to_string()))?;
            values.step_file = Some(path);
        }
        let request = helm::UpgradeRequest {
            chart,
            values,
            timeout: self.setup.timeout.clone(),
            // The procedure's own commands changed fields helm manages (Sourcegraph and
            // Coder scale the services to 0); helm 4's server-side apply would refuse to
            // take them back ("conflict with kubectl"). Helm 3's three-way merge does.
            force_conflicts: self.cluster.helm_major() >= 4 && self.commands_ran,
        };
        let purpose = format!("upgrade {} to {version}", self.release());
        self.attempted = Some(version.clone());
        let deployed = self
            .watched(|| self.cluster.upgrade(purpose, self.release(), &request))
            .map_err(|e| self.wait_failed(e))?;
        self.attempted = None;
        self.journal.helm_ran(version);
        let status = if deployed.status == "deployed" { ReleaseStatus::Deployed } else { ReleaseStatus::Unknown };
        self.left = Left { revision: Some(deployed.revision), version: version.clone(), status };
        self.fresh_deploy = (status == ReleaseStatus::Deployed).then_some(deployed.revision);
        self.overrides_in_effect = with_overrides && self.setup.values.has_overrides();
        // Checked once the release is recorded where helm left it: a mismatch is a failed
        // hop, brought back like any other.
        if let Some(expected) = expected.map(|r| r.values_digest)
            && deployed.values_digest != expected
        {
            return Err(failed(format!(
                "{} {version} was deployed with values {} where the plan showed {}: the values changed after the plan was made (a -f file edited?)",
                self.release(),
                crate::digest::short(&deployed.values_digest),
                crate::digest::short(&expected)
            )));
        }
        Ok(())
    }

    /// Run a helm command that waits for the rollout, showing what the rollout does.
    fn watched<T>(&self, helm: impl FnOnce() -> T) -> T {
        let timeout = crate::duration::parse(&self.setup.timeout).ok();
        Watcher { watch: self.watch, progress: self.progress, release: self.release(), timeout }.around(helm)
    }

    /// What the way back says about the operator's `-f`/`--set`, when there are any.
    fn overrides_note(&self) -> &'static str {
        match (self.setup.values.has_overrides(), self.overrides_at_hop_start) {
            (false, _) => "",
            (true, true) => " (with this run's -f/--set, as the release ran before the hop)",
            (true, false) => " (without this run's -f/--set: the release ran without them before the hop)",
        }
    }

    /// A helm command that waited for readiness failed: its error, plus which of the
    /// release's workloads are not ready and what their pods say.
    fn wait_failed(&self, error: ExecError) -> StepError {
        let mut message = error.message();
        // A second Ctrl-C means "leave now": no more cluster reads.
        if matches!(error, ExecError::Failed { .. }) && !self.cluster.signals().stop_now() {
            let lines = self.cluster.explain_unready(self.release());
            if !lines.is_empty() {
                message = message.then("\nnot ready:");
                for line in lines {
                    // The pods' own words, which may quote a value back (an image tag).
                    message = message.then("\n  ").then(Message::outside(for_terminal(&line)));
                }
            }
        }
        StepError::Failed(message)
    }

    /// `helm rollback RELEASE REV`: that revision's chart and values, as they ran then.
    fn rollback_to(&mut self, version: &ChartVersion, revision: u64) -> Result<(), StepError> {
        let purpose = format!("roll {} back to revision {revision} ({version})", self.release());
        self.attempted = Some(version.clone());
        self.watched(|| self.cluster.rollback(purpose, self.release(), revision, &self.setup.timeout))
            .map_err(|e| self.wait_failed(e))?;
        self.attempted = None;
        self.journal.helm_ran(version);
        // helm prints no revision for a rollback: the next verify reads it.
        self.left = Left { revision: None, version: version.clone(), status: ReleaseStatus::Deployed };
        Ok(())
    }

    /// The release is deployed at `version`: from the deploy just made when helm reported
    /// it, else by reading the release.
    fn verify(&mut self, version: &ChartVersion) -> Result<(), StepError> {
        if self.fresh_deploy.is_some() && self.left.version == *version && self.left.status == ReleaseStatus::Deployed {
            return Ok(());
        }
        self.read_deployed(version)
    }

    fn read_deployed(&mut self, version: &ChartVersion) -> Result<(), StepError> {
        let release = self.release().to_string();
        let meta = self.cluster.metadata(format!("verify {release} is deployed at {version}"), &release)?;
        let live = ChartVersion::parse(&meta.version).ok();
        if meta.status != ReleaseStatus::Deployed || live.as_ref() != Some(version) {
            return Err(failed(format!(
                "{release} is {} at {}, expected deployed at {version}",
                meta.status.as_str(),
                for_terminal(&meta.version)
            )));
        }
        self.left = Left { revision: Some(meta.revision), version: version.clone(), status: ReleaseStatus::Deployed };
        Ok(())
    }

    fn wait_gone(&self, version: &ChartVersion, selector: &str) -> Result<(), StepError> {
        let limit = crate::duration::parse(&self.setup.timeout).unwrap_or(Duration::from_secs(300));
        let deadline = Instant::now() + limit;
        loop {
            let left = self.cluster.count_pods(selector)?;
            if left == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed(format!(
                    "{} of {version} still running after {} ({selector})",
                    crate::text::count(left, "pod", "pods"),
                    self.setup.timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The live release, noting a version helm ran although the command failed (its
    /// revision is in the history): its hooks may have migrated the database.
    fn read_live(&mut self) -> Result<Release, String> {
        let live = self.cluster.read(self.release()).map_err(|e| e.to_string())?;
        if let Some(tried) = self.attempted.take() {
            let since = self.left.revision.unwrap_or(0);
            if live.history.iter().any(|r| r.revision > since && r.version.as_ref() == Some(&tried)) {
                self.journal.helm_ran(&tried);
            }
        }
        Ok(live)
    }

    /// The whole error is said once: in the run's outcome at the end when that is printed
    /// as text; here, which command failed and what happens now. With `-o json` the
    /// outcome is for programs, so the operator reads the whole error here: on their
    /// terminal with their values (the one that broke the hop); in a log, and in the
    /// ledger and the report, without.
    fn say_hop_failed(&self, index: usize, hop: &Hop, error: &Message) {
        let said = error.render(self.progress.disclosure());
        let then = if self.setup.bring_back_failed_hops {
            format!("bringing {} back to {}", self.release(), hop.from)
        } else {
            "stopping here".to_string()
        };
        let failed = self.progress.look().paint(Role::Bad, &format!("hop {} failed", index + 1)).into_owned();
        if self.setup.outcome_in_words {
            self.progress.line(&format!("{failed}: {}; {then}", headline(&said)));
        } else {
            self.progress.line(&format!("{failed}: {said}\n{then}"));
        }
    }

    /// Bring the release from wherever the failed hop left it back to `hop.from`.
    fn recover(&mut self, index: usize, hop: &Hop, error: StepError, deployed_override: bool) -> Outcome {
        let error_text = error.message();
        self.say_hop_failed(index, hop, &error_text);
        let live = self.read_live();
        if !self.setup.bring_back_failed_hops {
            let next_steps = match live {
                Ok(live) => format!(
                    "release {} is {} at {} (revision {}); the rollback from {} to {} did not finish. Fix the cause, then run `helm safe-rollback {} --to {}` again; the backup printed above holds the values and manifest from before",
                    self.release(),
                    live.status.as_str(),
                    live.version,
                    live.revision,
                    hop.from,
                    hop.to,
                    self.release(),
                    hop.to
                ),
                Err(e) => format!("check `helm status {}` ({e})", self.release()),
            };
            return Outcome::Failed { error: error_text, next_steps };
        }
        let live = match live {
            Ok(live) => live,
            Err(e) => {
                return Outcome::Failed {
                    error: error_text.then(format!("\nthen reading the release failed: {e}")),
                    next_steps: format!(
                        "check `helm status {0}` and `helm history {0}`; if the release is pending-*, `helm safe-rollback {0} --to {1}` brings it back the policy's way once no helm works on it",
                        self.release(),
                        hop.from
                    ),
                };
            }
        };
        if self.cluster.signals().stop_now() {
            return Outcome::Failed {
                error: error_text.then("\nstopped at the operator's request before bringing the release back"),
                next_steps: self.by_hand(&live, hop, &[]),
            };
        }
        if live.status == ReleaseStatus::Deployed && live.version == hop.from && !deployed_override {
            // Nothing moved (a declined confirmation, a failed check before the deploy).
            return match error {
                StepError::Declined(reason) => Outcome::Stopped { at: hop.from.clone(), reason: reason.into() },
                StepError::Failed(_) | StepError::Halted(_) => {
                    Outcome::Recovered { failed_hop: index + 1, error: error_text, at: hop.from.clone() }
                }
            };
        }
        let steps = match self.recovery_steps(&live, hop) {
            Ok(steps) => steps,
            Err(why) => {
                return Outcome::Failed {
                    error: error_text.then(format!("\nno safe way back: {why}")),
                    next_steps: self.by_hand(&live, hop, &[]),
                };
            }
        };
        self.progress.line(&format!(
            "bringing {} back to {}{}: {}",
            self.release(),
            hop.from,
            self.overrides_note(),
            steps_text(&steps)
        ));
        match self.walk_back(index, hop, &steps, &live) {
            Ok(()) => Outcome::Recovered { failed_hop: index + 1, error: error_text, at: hop.from.clone() },
            Err((e, next_steps)) => {
                Outcome::Failed { error: error_text.then("\nthe way back failed too: ").then(e.message()), next_steps }
            }
        }
    }

    /// Run the steps of a way back, each change recorded first. On failure: the error and
    /// what a person must do from where the release is then.
    fn walk_back(
        &mut self,
        index: usize,
        hop: &Hop,
        steps: &[Step],
        live: &Release,
    ) -> Result<(), (StepError, String)> {
        self.going_back = true;
        // Back to the values the release ran with before this hop (a rename undone).
        self.values_hop = index.checked_sub(1);
        for (done, step) in steps.iter().enumerate() {
            if step.changes_something()
                && let Err(e) = self.journal.change_starting(index, None)
            {
                let Outcome::Failed { next_steps, .. } = self.halted(e.clone(), &live.version, "on the way back")
                else {
                    unreachable!("halted always fails")
                };
                return Err((StepError::Halted(e), next_steps));
            }
            if let Err(e) = self.step(Some(index), step) {
                // The failed way back may have made a revision of its own: advise from there.
                let now = self.read_live().unwrap_or_else(|_| live.clone());
                return Err((e, self.by_hand(&now, hop, &steps[done..])));
            }
        }
        Ok(())
    }

    /// The operator's "roll back this hop" at a pause: the same way back, on purpose.
    fn roll_back_hop(&mut self, index: usize, hop: &Hop) -> Outcome {
        let live = match self.read_live() {
            Ok(l) => l,
            Err(e) => {
                return Outcome::Failed {
                    error: e.into(),
                    next_steps: format!("check `helm status {}`", self.release()),
                };
            }
        };
        let steps = match self.recovery_steps(&live, hop) {
            Ok(s) => s,
            Err(why) => {
                let cannot = self.progress.look().paint(Role::Bad, "cannot roll this hop back");
                self.progress.line(&format!("{cannot}: {why}"));
                return Outcome::Stopped {
                    at: hop.to.clone(),
                    reason: format!("stopped; the hop could not be rolled back: {why}").into(),
                };
            }
        };
        if self.setup.values.has_overrides() {
            self.progress.line(&format!("rolling hop {} back to {}{}", index + 1, hop.from, self.overrides_note()));
        }
        match self.walk_back(index, hop, &steps, &live) {
            Ok(()) => {
                self.journal.hop_ended(index, HopOutcome::RolledBack, Some(&"rolled back by the operator".into()));
                Outcome::Stopped {
                    at: hop.from.clone(),
                    reason: format!("hop {} rolled back by the operator", index + 1).into(),
                }
            }
            Err((e, next_steps)) => {
                Outcome::Failed { error: e.message().after("rolling the hop back failed: "), next_steps }
            }
        }
    }

    /// The policy's one-step downgrade from where the release is to `hop.from`, planned by
    /// the pure planner. A restore needs a person, so an unattended run does not attempt it.
    fn recovery_steps(&self, live: &Release, hop: &Hop) -> Result<Vec<Step>, String> {
        let policy = self.setup.policy;
        if live.version == hop.from && !live.status.is_pending() {
            // Only value overrides (maintenance mode) changed: redeploy without them.
            return Ok(vec![
                Step::Deploy { version: hop.from.clone(), set: Default::default(), revision: None },
                plan::way_back_verify(
                    policy,
                    &self.setup.available,
                    &self.setup.context,
                    &live.leaving_version(),
                    &hop.from,
                ),
            ]);
        }
        let newest = self.journal.newest_ever().filter(|n| *n > live.version).unwrap_or_else(|| live.version.clone());
        let request = RollbackRequest {
            current: live.leaving_version(),
            target: Some(hop.from.clone()),
            newest_ever: newest,
            deployed_before: vec![],
            snapshot: if self.journal.has_snapshot() {
                SnapshotKnowledge::TakenAt(hop.from.clone())
            } else {
                SnapshotKnowledge::Unknown
            },
            // helm upgrade refuses a pending release: the way back starts by `helm
            // rollback` to the last good revision, which clears it.
            by_revision: live
                .status
                .is_pending()
                .then(|| {
                    live.last_good_revision().filter(|r| r.version.as_ref() == Some(&hop.from)).map(|r| r.revision)
                })
                .flatten(),
        };
        let plan =
            plan::plan_rollback(policy, &self.setup.available, &request, &self.setup.context).map_err(|e| match e {
                PlanError::Refused(r) => format!("{} ({})", r.message, r.supported),
                PlanError::BadRequest { message, .. } => message,
            })?;
        if plan.strategy == Strategy::Restore && !self.interaction.attended() {
            return Err(format!(
                "policy {} goes back only by restoring a snapshot, which needs a person: {}",
                policy.name,
                steps_text(&plan.hops[0].steps)
            ));
        }
        Ok(plan.hops.into_iter().next().map(|h| h.steps).unwrap_or_default())
    }

    /// What a person must do after the way back failed. `unfinished` are the way back's
    /// steps from the one that failed on.
    fn by_hand(&self, live: &Release, hop: &Hop, unfinished: &[Step]) -> String {
        let release = self.release();
        let redeployed = !matches!(unfinished.first(), None | Some(Step::Deploy { .. }));
        if redeployed && live.status == ReleaseStatus::Deployed && live.version == hop.from {
            // The older chart is running; what is missing is the rest of the procedure
            // (say, the down-migration). Another safe-rollback would find nothing older to
            // go to, and a helm rollback would not run it either.
            let rest: Vec<String> =
                unfinished.iter().enumerate().map(|(i, s)| format!("{}. {}", i + 1, step_detail(s))).collect();
            return format!(
                "release {release} is deployed at {} (revision {}), but the policy's way back stopped before it finished. Fix the cause shown above, then finish these steps by hand, in order: {}",
                live.version,
                live.revision,
                rest.join("; ")
            );
        }
        let policy = self.setup.policy;
        let warning = policy
            .downgrade
            .data_loss_warning
            .as_deref()
            .map(|w| format!(" Policy {}: {w}", policy.name))
            .unwrap_or_default();
        let pending = if live.status.is_pending() {
            format!(
                " It is {}: helm did not finish (the cluster may have been unreachable); safe-rollback clears that with `helm rollback` to the last good revision as the first step of the policy's way back, so first make sure no helm process still works on it.",
                live.status.as_str()
            )
        } else {
            String::new()
        };
        format!(
            "release {release} is {} at {} (revision {}).{pending} To bring it back to {} by the policy's procedure, run `helm safe-rollback {release} --to {}`. {} may have run its migrations (its hooks), so follow the policy's way back rather than a bare `helm rollback`.{warning}",
            live.status.as_str(),
            live.version,
            live.revision,
            hop.from,
            hop.from,
            live.leaving_version(),
        )
    }
}

/// Refuse to run a command with a placeholder the planner had no value for: running a
/// half-filled command (an empty schema version, say) could do damage. The plan names
/// them; the command's text cannot (`{release}` there may be a literal the policy wrote
/// as `{{release}}`).
fn all_filled_in(unfilled: &[String], what: impl FnOnce() -> String) -> Result<(), StepError> {
    match unfilled.first() {
        None => Ok(()),
        Some(name) => Err(failed(format!(
            "{} still holds the placeholder {{{name}}}, which nothing filled in; set it in the policy (vars or catalog)",
            what()
        ))),
    }
}

#[cfg(test)]
mod tests;
