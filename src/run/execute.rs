//! The last stage of a live run: lock, ask, back up, walk, record, report.
//!
//! The lock is taken before the plan is shown (two operators cannot both be at the
//! prompt), in the same ledger write that records the run's start, its policy and its
//! chart source. The backup is made only once the operator says yes: a declined run leaves
//! nothing behind. Whatever the walk's outcome, the run's end is recorded and the lock
//! given back in one last write.
//!
//! The notify hook hears of the run here: its start once the backup is made (the operator
//! agreed, the lock is held, nothing has changed), each hop's end as the walk records it,
//! and the run's end once the lock is given back. A declined run tells it nothing.

use std::time::Instant;

use super::backup;
use super::cluster::Live;
use super::decide::{Consent, Decision};
use super::error::{RunError, bad_text, refused};
use super::gather::{Facts, Tools};
use super::holder::Me;
use super::interact::{self, Answer, Interaction};
use super::journal::{Journal, JournalError};
use super::ledger::lock::Claim;
use super::ledger::{self, Held, HopOutcome, Ledger, PolicyRecord, RunRecord, Takeover, ValuesRecord};
use super::notify::{Hook, Notifier, RunFacts};
use super::options::RunOptions;
use super::values::RunValues;
use super::walk::{Ports, Setup, Walk};
use crate::disclose::Message;
use crate::plan::{Direction, Plan, Step};
use crate::policy::{Origin, Policy};
use crate::release::{Release, ReleaseStatus};
use crate::report::{Outcome, RunReport};
use crate::text::count;
use crate::ui::progress::Progress;
use crate::version::ChartVersion;

pub fn execute(
    decision: Decision,
    facts: Facts,
    tools: &Tools,
    opts: &RunOptions,
    hook: Option<&Hook>,
) -> Result<RunReport, RunError> {
    let decision_values = decision.start_values(&facts, opts);
    let Decision { plan, consent, resumed_values } = decision;
    let printer = &tools.printer;
    let interaction =
        interact::for_this_process(opts.yes, &tools.helm.runner.signals, printer).map_err(|m| bad_text(&m))?;
    if !interaction.attended()
        && let Some(why) = needs_a_person(&plan, opts.snapshot_taken)
    {
        return Err(refused(
            "snapshot",
            format!("{why}; an unattended run cannot confirm one"),
            "take the snapshot, then run again with --snapshot-taken; or set `snapshot.command` in the policy",
        ));
    }
    if let Some(note) = &facts.store_note {
        printer.line(note);
    }
    let signals = &tools.helm.runner.signals;
    signals.stop_before_changes().map_err(RunError::Interrupted)?;
    // Taking the lock is the first change: from here a stop waits for a safe point.
    signals.changes_begin();
    keep_own_policy(&facts.policy, printer);
    let mut held = take_lock(&facts, &plan, opts)?;
    printer.text(&crate::ui::render::plan_table(&plan, printer.text_look()));
    match agreed(interaction.as_ref(), consent, &plan, &facts) {
        Answer::Yes => {}
        answer => return Ok(declined(held, plan, &facts.release, answer, printer)),
    }
    // The backup is made once the operator has said yes: a declined run leaves nothing.
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "");
    let (carried, overrides) = decision_values;
    let backup = match backup::take(&facts.release, &carried, &overrides, &Me::current().process.host, &stamp) {
        Ok(b) => b,
        Err(e) => {
            held.ledger_mut().record_run_end("failed", Some(facts.release.version.clone()), Some(e.to_string()));
            let _ = held.release_lock();
            return Err(RunError::Other(e.to_string()));
        }
    };
    printer.line(&format!("backup of {} (values, manifest, metadata): {}", facts.release.name, backup.dir.display()));
    if resumed_values.is_some() {
        printer.line("carrying the values the interrupted run started with, its -f/--set included");
    }
    let setup = setup(&plan, &facts, opts, backup.values, resumed_values.is_some());
    let run = RunFacts::new(&plan, &facts.release.name, &facts.release.namespace, Me::current().holder());
    let notifier = Notifier::new(hook, run, &tools.helm.runner, printer);
    notifier.started();
    let (outcome, steps) = walk(&plan, setup, tools, &mut held, interaction.as_ref(), &notifier);
    finish(held, &outcome, printer);
    // After the lock is given back: a hook that starts the next run finds it free.
    notifier.finished(&outcome);
    Ok(RunReport {
        outcome,
        release: facts.release.name.clone(),
        namespace: facts.release.namespace.clone(),
        backup: Some(backup.dir),
        plan: plan.for_the_ledger(),
        steps,
        warnings: vec![],
    })
}

/// Take the lock, recording in the same write the run's start, its policy and chart
/// source, and every version helm's history says helm ran.
fn take_lock(facts: &Facts, plan: &Plan, opts: &RunOptions) -> Result<Held, RunError> {
    let me = Me::current();
    // --resume takes over the lock of a run of this machine that is gone.
    let takeover = match (&opts.takeover, opts.resume) {
        (Takeover::No, true) => Takeover::IfGone,
        (t, _) => t.clone(),
    };
    let claim = Claim { me: me.clone(), command: opts.command_shape.clone(), plan: plan_summary(plan) };
    let record = |l: &mut Ledger| {
        l.chart = Some(facts.chart_reference.clone());
        l.policy = Some(facts.policy.name.clone());
        l.policy_record = Some(policy_record(&facts.policy));
        note_history(l, &facts.release);
        l.record_run_start(RunRecord {
            id: 0,
            started_at: ledger::now(),
            ended_at: None,
            holder: me.holder(),
            command: opts.command_shape.clone(),
            direction: plan.direction.as_str().into(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            outcome: None,
            at: None,
            message: None,
            steps: vec![],
        });
    };
    Held::acquire_and_record(facts.store.clone(), &claim, &takeover, &record)
        .map_err(|e| RunError::Other(e.to_string()))
}

/// The operator's own policy file, when it runs commands or names a chart source, kept
/// privately on this machine: the ledger's copy of such a policy is used only beside the
/// operator's own (see `policy_choice::vouched`), and the file may be edited before a
/// `--resume`.
fn keep_own_policy(policy: &Policy, printer: &crate::printer::Printer) {
    if !matches!(policy.origin, Origin::File { .. } | Origin::Recorded { .. })
        || !super::policy_choice::needs_own_copy(policy)
    {
        return;
    }
    if let Err(e) = super::private::keep_policy(&policy.digest, &policy.text) {
        printer.line(&format!(
            "note: no private copy of the policy was kept ({e}): a --resume will need the policy file as it is now"
        ));
    }
}

/// The policy as the ledger keeps it: a recorded copy is recorded as the file it came from.
fn policy_record(policy: &Policy) -> PolicyRecord {
    PolicyRecord {
        name: policy.name.clone(),
        origin: match &policy.origin {
            Origin::Recorded { path } => Origin::File { path: path.clone() },
            other => other.clone(),
        },
        digest: policy.digest.clone(),
        text: (policy.text.len() <= ledger::MAX_POLICY_TEXT_BYTES).then(|| policy.text.clone()),
    }
}

/// Versions helm ran for this release: deployed, superseded, and failed (a failed
/// upgrade's hooks may have migrated).
fn note_history(ledger: &mut Ledger, release: &Release) {
    ledger.note_deployed(&release.version);
    for r in &release.history {
        if matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded | ReleaseStatus::Failed)
            && let Some(v) = &r.version
        {
            ledger.note_deployed(v);
        }
    }
}

fn agreed(interaction: &dyn Interaction, consent: Consent, plan: &Plan, facts: &Facts) -> Answer {
    if !interaction.attended() || plan.hops.is_empty() {
        return Answer::Yes;
    }
    match consent {
        Consent::StartConfirmation => {
            let change = facts.policy_change.as_deref().map(|c| format!("{c}.\n")).unwrap_or_default();
            interaction.confirm(&format!("{change}Start the {}?", count(plan.hops.len(), "hop", "hops")))
        }
        // The plan above lists what may be lost (its warnings): not said twice.
        Consent::TypeReleaseName => {
            interaction.confirm_typed("This rollback may lose data: the warnings above say what.", &facts.release.name)
        }
    }
}

/// The operator said no, or pressed Ctrl-C at the question: nothing changed; the run is
/// recorded and the lock given back.
fn declined(
    mut held: Held,
    plan: Plan,
    release: &Release,
    answer: Answer,
    printer: &crate::printer::Printer,
) -> RunReport {
    let (recorded, reason) = match answer {
        Answer::Interrupted => {
            ("interrupted", "not started: interrupted (Ctrl-C) at the confirmation; nothing changed")
        }
        _ => ("declined", "not started: the operator declined; nothing changed"),
    };
    held.ledger_mut().record_run_end(recorded, Some(release.version.clone()), None);
    if let Err(e) = held.release_lock() {
        let warning = printer.text_look().paint(crate::printer::Role::Notice, "warning");
        printer.line(&format!("{warning}: could not release the lock: {e}"));
    }
    RunReport {
        outcome: Outcome::Stopped { at: release.version.clone(), reason: reason.into() },
        release: release.name.clone(),
        namespace: release.namespace.clone(),
        backup: None,
        plan: plan.for_the_ledger(),
        steps: vec![],
        warnings: vec![],
    }
}

/// What the walk is given: the run's values, the release as it starts, the chart source.
fn setup<'a>(plan: &Plan, facts: &'a Facts, opts: &RunOptions, values: RunValues, resumed: bool) -> Setup<'a> {
    let release = &facts.release;
    Setup {
        policy: &facts.policy,
        release: release.name.clone(),
        chart: facts.offer.chart.clone(),
        values,
        timeout: opts.timeout.clone(),
        snapshot_taken: opts.snapshot_taken,
        available: facts.offer.available.clone(),
        context: facts.context.clone(),
        start: (release.revision, release.version.clone(), release.status),
        // The interrupted run deployed with its overrides already.
        overrides_in_effect: resumed,
        bring_back_failed_hops: plan.direction == Direction::Upgrade,
        outcome_in_words: opts.outcome_in_words,
    }
}

fn walk(
    plan: &Plan,
    setup: Setup<'_>,
    tools: &Tools,
    held: &mut Held,
    interaction: &dyn Interaction,
    notifier: &Notifier<'_>,
) -> (Outcome, Vec<crate::report::StepReport>) {
    let progress = Progress::new(tools.printer.clone());
    let cluster = Live { helm: &tools.helm, kube: &tools.kube, helm_major: tools.helm_major };
    let values = setup.values.record.clone();
    let mut recorder = Recorder { held, values, plan, notifier, hop_clock: None };
    let ports = Ports { cluster: &cluster, watch: &cluster, interaction, journal: &mut recorder, progress: &progress };
    let mut walk = Walk::new(setup, ports);
    let outcome = walk.run(plan);
    (outcome, std::mem::take(&mut walk.reports))
}

/// Record the run's end and give the lock back, in one write.
fn finish(mut held: Held, outcome: &Outcome, printer: &crate::printer::Printer) {
    let l = held.ledger_mut();
    // Redacted: the ledger is read by anyone with access to the namespace's ConfigMaps.
    l.record_run_end(outcome.word(), outcome.at().cloned(), outcome.message().map(Message::redacted));
    if !matches!(outcome, Outcome::Failed { .. }) {
        // Failed keeps the plan on record: a person, or --resume, picks it up from there.
        l.clear_in_progress();
    }
    if let Err(e) = held.release_lock() {
        let warning = printer.text_look().paint(crate::printer::Role::Notice, "warning");
        printer.line(&format!("{warning}: could not release the lock: {e}"));
    }
}

/// Steps that need a person and have no command: refused up front when nobody is there.
/// Exhaustive over the step kinds, so a new one must say whether it needs a person.
fn needs_a_person(plan: &Plan, snapshot_taken: bool) -> Option<String> {
    let all = plan.preflight.iter().chain(plan.hops.iter().flat_map(|h| h.steps.iter()));
    for step in all {
        match step {
            Step::Snapshot { message, argv: None, .. } if !snapshot_taken => {
                return Some(format!(
                    "policy {} requires a snapshot (\"{message}\") and has no command to take one",
                    plan.policy
                ));
            }
            // Taken by the policy's command, or vouched for with --snapshot-taken.
            Step::Snapshot { .. } => {}
            // Done by the tool or the policy's commands.
            Step::Backup { .. }
            | Step::Deploy { .. }
            | Step::Verify { .. }
            | Step::Run { .. }
            | Step::WaitGone { .. } => {}
            // A restore by hand is refused under --yes when the run is decided; any other
            // confirmation is answered by --yes.
            Step::Confirm { .. } => {}
        }
    }
    None
}

/// "upgrade 1.0.4 → 1.3.0 (3 hops)", for the lock.
fn plan_summary(plan: &Plan) -> String {
    format!("{} {} → {} ({})", plan.direction.as_str(), plan.from, plan.to, count(plan.hops.len(), "hop", "hops"))
}

/// The journal of a run: the ledger, plus where this run's values are kept; and the
/// notify hook, which hears of each hop's end.
struct Recorder<'a> {
    held: &'a mut Held,
    values: ValuesRecord,
    plan: &'a Plan,
    notifier: &'a Notifier<'a>,
    /// When the hop under way started, or the way back of a hop the operator rolls back
    /// at a pause: how long it took goes with its end.
    hop_clock: Option<Instant>,
}

impl Recorder<'_> {
    /// Store the record; the write proves the lock is still ours.
    fn save(&mut self) -> Result<(), JournalError> {
        self.held.save().map_err(|e| JournalError {
            lost_lock: matches!(e, ledger::LedgerError::LockLost { .. }),
            message: e.to_string(),
        })
    }
}

impl Journal for Recorder<'_> {
    fn hop_starting(&mut self, plan: &Plan, index: usize, first_change: Option<usize>) -> Result<(), JournalError> {
        self.hop_clock = Some(Instant::now());
        let l = self.held.ledger_mut();
        l.set_in_progress(plan.clone(), index, first_change, Some(self.values.clone()));
        // The preflight's call (no step of a hop yet) records where the walk is, no hop.
        if let (Some(hop), Some(_)) = (plan.hops.get(index), first_change) {
            l.record_hop_start(hop, index);
        }
        self.save()
    }

    fn change_starting(&mut self, hop: usize, step: Option<usize>) -> Result<(), JournalError> {
        if step.is_none() && self.hop_clock.is_none() {
            // The first change of a way back after the hop had ended: a pause's rollback.
            self.hop_clock = Some(Instant::now());
        }
        if let (Some(step), Some(p)) = (step, self.held.ledger_mut().in_progress.as_mut()) {
            p.next_hop = hop;
            p.step = Some(step);
        }
        self.save()
    }

    fn hop_ended(&mut self, index: usize, outcome: HopOutcome, message: Option<&Message>) {
        let downtime = self.plan.hops.get(index).is_some_and(|h| h.downtime);
        let l = self.held.ledger_mut();
        if l.hops.last().is_some_and(|h| h.outcome == HopOutcome::Running) {
            let _ = l.record_hop_end(outcome, message.map(Message::redacted), downtime);
        } else if let Some(last) = l.hops.last_mut().filter(|_| outcome == HopOutcome::RolledBack) {
            // "Roll this hop back" at a pause: the hop that had succeeded is undone.
            last.outcome = HopOutcome::RolledBack;
        }
        let took = self.hop_clock.take().map(|started| started.elapsed()).unwrap_or_default();
        self.notifier.hop_ended(self.plan, index, outcome, took);
    }

    fn helm_ran(&mut self, version: &ChartVersion) {
        self.held.ledger_mut().note_deployed(version);
    }

    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str) {
        self.held.ledger_mut().record_snapshot(at, how);
    }

    fn step_finished(&mut self, step: &crate::report::StepReport, waited_for_operator: bool) {
        self.held.ledger_mut().record_step(ledger::StepRecord {
            hop: step.hop,
            action: step.action.clone(),
            detail: step.detail.clone(),
            outcome: step.outcome.to_string(),
            duration_ms: u64::try_from(step.duration_ms).unwrap_or(u64::MAX),
            waited_for_operator,
            way_back: step.way_back,
        });
    }

    fn store_now(&mut self) -> Result<(), JournalError> {
        self.save()
    }

    fn newest_ever(&self) -> Option<ChartVersion> {
        self.held.ledger().newest_ever().cloned()
    }

    fn has_snapshot(&self) -> bool {
        !self.held.ledger().snapshots.is_empty()
    }
}
