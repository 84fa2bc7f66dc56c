//! The second stage of a live run: from the gathered facts and the operator's request to
//! the plan (by the pure planner), and what the operator must consent to before it runs.
//!
//! Everything the planner needs is decided here first: the target's snapshot knowledge,
//! whether a rollback deploys a revision of helm's history (`helm rollback REV`) rather
//! than the chart, the values a failed release goes back with. The planner then makes the
//! plan, and nothing edits it afterwards. Pure: what a rollback needs beyond the release
//! (the values of earlier revisions, [`rollback_reads`]) is gathered before it is decided.

use super::error::{RunError, bad, bad_text, refused};
use super::gather::Facts;
use super::holder::Me;
use super::ledger::Ledger;
use super::options::{RollbackOptions, RunOptions, UpgradeOptions};
use super::revisions::RevisionValues;
use super::values::RunValues;
use crate::plan::{self, HopKind, Plan, RollbackRequest, SnapshotKnowledge, Step, Strategy, UpgradeRequest};
use crate::release::{Release, ReleaseStatus};
use crate::text::one_line;
use crate::version::ChartVersion;

/// What the operator must do before the first change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `Start the N hops? [y/N]`.
    StartConfirmation,
    /// The policy warns of data loss: type the release name (or `--yes --accept-data-loss`).
    TypeReleaseName,
}

/// A plan ready to run.
pub struct Decision {
    pub plan: Plan,
    pub consent: Consent,
    /// `--resume`: the values the interrupted run deploys, from its backup.
    pub resumed_values: Option<RunValues>,
}

impl Decision {
    /// The values the run starts from: the carried user values and the operator's
    /// overrides; a resumed run's come from its backup, `-f`/`--set` included.
    pub fn start_values(&self, facts: &Facts, opts: &RunOptions) -> (serde_json::Value, super::values::Overrides) {
        match &self.resumed_values {
            Some(v) => (v.carried_json(), v.overrides()),
            None => (facts.release.user_values.clone(), opts.overrides.clone()),
        }
    }
}

/// What the ledger says about a run that did not finish.
struct Resumable {
    target: ChartVersion,
    fast_path: bool,
    values: RunValues,
}

fn resumable(ledger: Option<&Ledger>, opts: &RunOptions) -> Result<Resumable, RunError> {
    let in_progress = ledger
        .and_then(|l| l.in_progress.as_ref())
        .ok_or_else(|| bad("--resume: the ledger holds no plan in progress", "start a new run with --to VERSION"))?;
    if !opts.overrides.is_empty() {
        return Err(bad(
            "--resume deploys exactly the values the interrupted run started with, its own -f/--set included; -f/--set cannot be given again",
            "drop -f and --set*; to change values, let the resumed run finish (or stop it) and run a new upgrade",
        ));
    }
    let record = in_progress.values.as_ref().ok_or_else(|| {
        bad(
            "--resume: the ledger does not say where the interrupted run kept its values (it was started by an older helm-safe-upgrade)",
            "release the lock with --force-unlock and start a new run, passing the values the release should have with -f/--set",
        )
    })?;
    let values = RunValues::open(record, &Me::current().process.host).map_err(|e| bad_text(&e.to_string()))?;
    Ok(Resumable {
        target: in_progress.plan.to.clone(),
        fast_path: in_progress.plan.strategy == Strategy::FastPath,
        values,
    })
}

/// Values a procedure step set for one deploy of an interrupted run (maintenance mode)
/// that the release still holds: carrying them as the user's values would leave them on
/// for good. A new run on such a release is refused; `--resume` carries the values the
/// interrupted run started with instead.
fn procedure_values_left(release: &Release, ledger: Option<&Ledger>) -> Option<String> {
    let plan = &ledger?.in_progress.as_ref()?.plan;
    let values = release.user_values.as_object()?;
    plan.hops.iter().flat_map(|h| &h.steps).find_map(|step| match step {
        Step::Deploy { set, version, .. } if !set.is_empty() && set.iter().all(|(k, v)| holds(values.get(k), v)) => {
            let keys: Vec<String> = set.keys().map(|k| one_line(k)).collect();
            Some(format!(
                "the release's values hold {} set by the interrupted run's deploy of {version} for that step only",
                keys.join(", ")
            ))
        }
        _ => None,
    })
}

/// Whether `value` holds every leaf of `set` with its value: helm deep-merges a
/// procedure's values into the user's, so a nested `set:` is found beside the user's own
/// keys of the same map.
fn holds(value: Option<&serde_json::Value>, set: &serde_json::Value) -> bool {
    match (value, set.as_object()) {
        (Some(value), Some(set)) if !set.is_empty() => {
            set.iter().all(|(k, inner)| holds(value.as_object().and_then(|m| m.get(k)), inner))
        }
        (value, _) => value == Some(set),
    }
}

/// The last run stopped part-way (at a pause, by Ctrl-C) and the release is still where it
/// stopped: the new run continues that upgrade, and says so (its plan starts from here).
fn earlier_stopped_run(ledger: Option<&Ledger>, current: &ChartVersion, target: &ChartVersion) -> Option<String> {
    let last = ledger?.runs.last()?;
    if last.direction != "upgrade" || last.outcome.as_deref() != Some("stopped") || last.at.as_ref() != Some(current) {
        return None;
    }
    if &last.to == current || &last.from == current {
        return None; // it finished, or never moved: nothing to continue
    }
    let who = last.holder.split(" pid ").next().unwrap_or(&last.holder);
    let earlier = format!("the upgrade {} → {} started {} by {}", last.from, last.to, last.started_at, one_line(who));
    Some(if &last.to == target {
        format!("continuing {earlier}: it stopped at {current}")
    } else {
        format!("{earlier} stopped at {current}; this run goes to {target} instead")
    })
}

/// The upgrade's plan.
pub fn upgrade(
    facts: &mut Facts,
    opts: &RunOptions,
    up: &UpgradeOptions,
    printer: &crate::printer::Printer,
) -> Result<Decision, RunError> {
    let resumed = if opts.resume { Some(resumable(facts.ledger.as_ref(), opts)?) } else { None };
    if resumed.is_none()
        && let Some(left) = procedure_values_left(&facts.release, facts.ledger.as_ref())
    {
        return Err(bad(
            format!("{left}; a new run would carry them to every hop"),
            format!(
                "continue the interrupted run with `helm safe-upgrade {} --resume` (it deploys the values it started with), or set those values back with helm first",
                opts.release
            ),
        ));
    }
    let target = match (&up.target, &resumed) {
        (Some(spec), _) => plan::exact_target(spec, &facts.offer.available)?,
        (None, Some(r)) => r.target.clone(),
        (None, None) => return Err(bad("--to is required", "name the version to upgrade to with --to VERSION")),
    };
    let fast_path = up.fast_path || resumed.as_ref().is_some_and(|r| r.fast_path);
    if resumed.is_some() {
        printer.line(&format!(
            "resuming the upgrade to {target} recorded in the ledger; {} runs {} now",
            facts.release.name, facts.release.version
        ));
    } else if let Some(note) = earlier_stopped_run(facts.ledger.as_ref(), &facts.release.version, &target) {
        printer.line(&note);
    }
    let request = UpgradeRequest { current: facts.release.version.clone(), target, fast_path, devel: up.devel };
    facts.context.values = Some(plan::values::ValuesInput {
        carried: match &resumed {
            Some(r) => r.values.carried_json(),
            None => facts.release.user_values.clone(),
        },
        operator_sets: match &resumed {
            Some(r) => r.values.overrides().paths(),
            None => opts.overrides.paths(),
        },
    });
    let mut plan = plan::plan_upgrade(&facts.policy, &facts.offer.available, &request, &facts.context)?;
    plan.warnings.append(&mut facts.warnings);
    Ok(Decision { plan, consent: Consent::StartConfirmation, resumed_values: resumed.map(|r| r.values) })
}

/// The revisions whose values [`rollback`] carries or compares, in the order it does:
/// the last good one of a failed or pending release, the one `--revision` names, and the
/// one a patch rollback could go back to by `helm rollback`. A request the decision
/// refuses stops the list where the decision stops.
pub fn rollback_reads(facts: &Facts, opts: &RunOptions, down: &RollbackOptions) -> Vec<u64> {
    let release = &facts.release;
    let pending = release.status.is_pending();
    let mut reads = Vec::new();
    if release.status == ReleaseStatus::Failed || pending {
        reads.extend(release.last_good_revision().map(|good| good.revision));
    }
    let Ok(mut to) = down.target.as_ref().map(|spec| plan::exact_target(spec, &facts.offer.available)).transpose()
    else {
        return reads;
    };
    if let Some(revision) = down.revision {
        let Ok(version) = revision_version(release, revision, to.as_ref()) else { return reads };
        reads.push(revision);
        to = Some(version);
    }
    let request = rollback_request(release, facts.ledger.as_ref(), to);
    let Ok(target) = plan::rollback_target(&facts.offer.available, &request) else { return reads };
    let patch = plan::same_counted_minor(&facts.policy, &facts.offer.available, &target, &request.current);
    if !pending
        && patch
        && opts.overrides.is_empty()
        && let Some(ran) = revision_that_ran(release, &target)
    {
        reads.push(ran);
    }
    reads
}

/// The rollback's plan: the newest earlier safe version (or `--to`), within the policy's
/// window from the newest version ever deployed, by the policy's procedure. `values` holds
/// what [`rollback_reads`] named.
pub fn rollback(
    facts: &mut Facts,
    values: &RevisionValues,
    opts: &RunOptions,
    down: &RollbackOptions,
) -> Result<Decision, RunError> {
    let pending = facts.release.status.is_pending();
    if facts.release.status == ReleaseStatus::Failed || pending {
        carry_last_good_values(facts, values)?;
    }
    let mut target = down.target.as_ref().map(|spec| plan::exact_target(spec, &facts.offer.available)).transpose();
    if let Some(revision) = down.revision {
        target = Ok(Some(revision_target(facts, values, revision, target?)?));
    }
    let mut request = rollback_request(&facts.release, facts.ledger.as_ref(), target?);
    let on_the_ledgers_word = |e: plan::PlanError| {
        let location = facts.store.location();
        said_to_come_from_the_ledger(RunError::from(e), &facts.release, facts.ledger.as_ref(), &location)
    };
    let target = plan::rollback_target(&facts.offer.available, &request).map_err(on_the_ledgers_word)?;
    request.snapshot = match facts.ledger.as_ref() {
        None => SnapshotKnowledge::Unknown,
        Some(l) if l.snapshots.iter().any(|s| s.version == target) => SnapshotKnowledge::TakenAt(target.clone()),
        Some(_) => SnapshotKnowledge::None,
    };
    let mut notes = Vec::new();
    let release = &facts.release;
    if pending {
        request.by_revision = Some(clear_pending_by(release, &target, &mut notes)?);
    } else if plan::same_counted_minor(&facts.policy, &facts.offer.available, &target, &request.current) {
        // A patch rollback as the policy counts it: under `versions: app` a chart patch can
        // be an app minor, whose procedure must run rather than helm's old revision.
        request.by_revision = patch_by_revision(values, release, &target, !opts.overrides.is_empty(), &mut notes);
    }
    facts.context.values = Some(plan::values::ValuesInput {
        carried: facts.release.user_values.clone(),
        operator_sets: opts.overrides.paths(),
    });
    let mut plan = plan::plan_rollback(&facts.policy, &facts.offer.available, &request, &facts.context)
        .map_err(on_the_ledgers_word)?;
    let patch_rollback = plan.hops.first().is_none_or(|h| h.kind == HopKind::PatchDowngrade) || pending;
    plan.warnings.extend(notes.into_iter().filter_map(|note| note.said(patch_rollback)));
    plan.warnings.append(&mut facts.warnings);
    let consent = rollback_consent(&plan, opts, down, &facts.policy.name)?;
    Ok(Decision { plan, consent, resumed_values: None })
}

/// A note on how the rollback goes, for the plan's warnings.
enum Note {
    /// Said whatever the plan.
    Always(String),
    /// Why a patch rollback goes, or not, by `helm rollback REV`: said only when the plan
    /// is a patch rollback (the revision method is meant for one only).
    PatchMethod(String),
}

impl Note {
    /// The note's text, if it is said for this plan.
    fn said(self, patch_rollback: bool) -> Option<String> {
        match self {
            Note::Always(text) => Some(text),
            Note::PatchMethod(text) => patch_rollback.then_some(text),
        }
    }
}

/// Why `revision` cannot be gone back to (it is not in helm's history, it did not
/// deploy, it has no chart version, or `--to` names another version), else the version
/// it ran.
fn revision_version(release: &Release, revision: u64, to: Option<&ChartVersion>) -> Result<ChartVersion, RunError> {
    let Some(chosen) = release.history.iter().find(|r| r.revision == revision) else {
        let kept: Vec<String> = release.history.iter().map(|r| r.revision.to_string()).collect();
        return Err(bad(
            format!("revision {revision} of {} is not in helm's history (it keeps {})", release.name, kept.join(", ")),
            format!(
                "helm keeps the last --history-max revisions; see `helm history {}`, or name a version with --to",
                release.name
            ),
        ));
    };
    if !matches!(chosen.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded) {
        return Err(bad(
            format!(
                "revision {revision} of {} is {}: going back to it would deploy what did not work",
                release.name,
                chosen.status.as_str()
            ),
            "name a revision that was deployed successfully (`helm history` shows them)",
        ));
    }
    let version = chosen
        .version
        .clone()
        .ok_or_else(|| bad(format!("revision {revision} has no chart version"), "name a version with --to"))?;
    if to.is_some_and(|t| *t != version) {
        return Err(bad(
            format!("revision {revision} ran {version}, but --to names another version"),
            "give either the revision or --to",
        ));
    }
    Ok(version)
}

/// `helm safe-rollback RELEASE REVISION`, helm's habit: that revision chooses the target
/// version and the values deployed, and the policy still decides how (and whether) to go
/// back there. A revision helm no longer keeps, or one that failed, is refused.
fn revision_target(
    facts: &mut Facts,
    values: &RevisionValues,
    revision: u64,
    to: Option<ChartVersion>,
) -> Result<ChartVersion, RunError> {
    let version = revision_version(&facts.release, revision, to.as_ref())?;
    let values = values.at(revision).map_err(RunError::Other)?.clone();
    facts.warnings.push(format!("going back to revision {revision}: {version} with the values it ran with"));
    facts.release.user_values = values;
    Ok(version)
}

/// A refusal over the downgrade window, when the newest version ever deployed is one only
/// the ledger has on record (helm's history of the release has nothing as new), says so
/// and where the record is. The ledger is a ConfigMap that anyone who may edit ConfigMaps
/// in the namespace can rewrite: without this, an operator rolling back in an incident
/// reads of a "newest version ever deployed" that helm never ran, and looks for it there.
fn said_to_come_from_the_ledger(
    error: RunError,
    release: &Release,
    ledger: Option<&Ledger>,
    location: &str,
) -> RunError {
    let RunError::Refused(mut refusal) = error else { return error };
    let newest_in_helm = release.history.iter().filter_map(|r| r.version.as_ref()).chain([&release.version]).max();
    if refusal.rule == "downgrade-window"
        && let Some(recorded) = ledger.and_then(Ledger::newest_ever)
        && newest_in_helm.is_some_and(|helm| recorded > helm)
    {
        refusal.message.push_str(&format!(
            " ({recorded} is on record only in the ledger, {location}: helm's history of {} goes up to {}; if {recorded} never ran, the record was edited)",
            release.name,
            newest_in_helm.map(ToString::to_string).unwrap_or_default()
        ));
    }
    RunError::Refused(refusal)
}

/// The request for a rollback of `release`: from the version it leaves (a failed or
/// pending release is left from the newest version tried since its last good revision),
/// within the window from the newest version ever deployed.
fn rollback_request(release: &Release, ledger: Option<&Ledger>, target: Option<ChartVersion>) -> RollbackRequest {
    // The newest version the database has seen: the ledger's record, and every revision
    // helm still keeps, failed and pending ones included (their hooks may have migrated).
    let newest_ever = release
        .history
        .iter()
        .filter_map(|r| r.version.clone())
        .chain(ledger.and_then(|l| l.newest_ever().cloned()))
        .chain(std::iter::once(release.version.clone()))
        .max()
        .expect("at least the current version");
    RollbackRequest {
        current: release.leaving_version(),
        target,
        newest_ever,
        deployed_before: release.deployed_versions(),
        snapshot: SnapshotKnowledge::Unknown,
        by_revision: None,
    }
}

/// A pending release can only go back to its last good revision, by `helm rollback` to it
/// (helm upgrade refuses a pending release; helm rollback clears it).
fn clear_pending_by(release: &Release, target: &ChartVersion, notes: &mut Vec<Note>) -> Result<u64, RunError> {
    let good = release.last_good_revision().filter(|r| r.version.as_ref() == Some(target)).ok_or_else(|| {
        bad(
            format!(
                "release {} is {} at {}: only the last good version ({}) can be returned to from here",
                release.name,
                release.status.as_str(),
                release.version,
                release
                    .last_good_revision()
                    .and_then(|r| r.version.as_ref().map(|v| v.to_string()))
                    .unwrap_or_else(|| "none".into())
            ),
            "run without --to, or with --to that version",
        )
    })?;
    notes.push(Note::Always(format!(
        "{} is {} at {} (revision {}): helm did not finish it. Going back starts with `helm rollback {} {}`, which clears it; make sure no helm process still works on this release (another terminal, a CI job) before you confirm. {} may have run its migrations.",
        release.name,
        release.status.as_str(),
        release.version,
        release.revision,
        release.name,
        good.revision,
        release.version
    )));
    Ok(good.revision)
}

/// Whether a step is the operator's own work, confirmed when done (a restore by hand),
/// which `--yes` cannot do. Exhaustive, so a new step kind must say.
fn done_by_hand(step: &Step) -> bool {
    match step {
        Step::Confirm { .. } => true,
        Step::Backup { .. }
        | Step::Deploy { .. }
        | Step::Verify { .. }
        | Step::Snapshot { .. }
        | Step::Run { .. }
        | Step::WaitGone { .. } => false,
    }
}

/// A rollback that may lose data needs the typed release name (or `--yes
/// --accept-data-loss`); a restore by hand cannot be done by `--yes` at all.
fn rollback_consent(plan: &Plan, opts: &RunOptions, down: &RollbackOptions, policy: &str) -> Result<Consent, RunError> {
    let loses_data = plan.hops.iter().any(|h| h.kind.may_lose_data());
    if opts.plan_only {
        return Ok(Consent::StartConfirmation);
    }
    if loses_data && opts.yes && !down.accept_data_loss {
        return Err(bad(
            format!(
                "rolling {} back from {} to {} may lose data: {}",
                opts.release,
                plan.from,
                plan.to,
                plan.warnings.first().cloned().unwrap_or_default()
            ),
            "run it on a terminal to confirm by typing the release name, or pass --accept-data-loss with --yes",
        ));
    }
    if opts.yes && plan.strategy == Strategy::Restore && plan.hops.iter().flat_map(|h| &h.steps).any(done_by_hand) {
        return Err(refused(
            "restore-needs-a-person",
            format!("policy {policy} goes back to {} by restoring a snapshot by hand, which --yes cannot do", plan.to),
            "run it on a terminal and restore when asked, or give the policy a `run` step with your restore command",
        ));
    }
    Ok(if loses_data { Consent::TypeReleaseName } else { Consent::StartConfirmation })
}

/// A failed (or pending) revision's values are the ones that failed (often an operator's
/// `--set` that broke the rollout): going back carries the values of the last good
/// revision instead.
fn carry_last_good_values(facts: &mut Facts, values: &RevisionValues) -> Result<(), RunError> {
    let release = &facts.release;
    let Some(good) = release.last_good_revision() else { return Ok(()) };
    let values = values.at(good.revision).map_err(RunError::Other)?.clone();
    facts.warnings.push(format!(
        "{} is {} at revision {}: carrying the values of revision {}, the last good one",
        release.name,
        release.status.as_str(),
        release.revision,
        good.revision
    ));
    facts.release.user_values = values;
    Ok(())
}

/// The newest revision before the current one that deployed `target` successfully.
fn revision_that_ran(release: &Release, target: &ChartVersion) -> Option<u64> {
    let ran = release.history.iter().rev().filter(|r| r.revision < release.revision).find(|r| {
        r.version.as_ref() == Some(target) && matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded)
    });
    ran.map(|r| r.revision)
}

/// A patch rollback can be helm's own rollback to a revision that ran the target, or a
/// redeploy of the target with the current values. Decided here (by that revision's
/// values, read before); the planner is told, and the plan says which and why.
fn patch_by_revision(
    values: &RevisionValues,
    release: &Release,
    target: &ChartVersion,
    operator_values: bool,
    notes: &mut Vec<Note>,
) -> Option<u64> {
    if operator_values {
        notes.push(Note::PatchMethod(format!(
            "redeploying {target} with the current values and the -f/--set given (`helm rollback` would ignore them)"
        )));
        return None;
    }
    let Some(revision) = revision_that_ran(release, target) else {
        notes.push(Note::Always(format!(
            "no revision of {target} is left in helm's history: redeploying {target} from the chart source with the current values"
        )));
        return None;
    };
    if values.at(revision).ok() == Some(&release.user_values) {
        notes.push(Note::PatchMethod(format!(
            "revision {revision} ran {target} with the same values: `helm rollback` to it restores exactly what ran, without fetching the chart"
        )));
        Some(revision)
    } else {
        notes.push(Note::PatchMethod(format!(
            "revision {revision} ran {target} with other values: redeploying {target} with the current values keeps the changes made since (`helm rollback {} {revision}` would restore that revision's values instead)",
            release.name
        )));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::ledger::RunRecord;

    fn v(s: &str) -> ChartVersion {
        s.parse().unwrap()
    }

    fn ledger_with(outcome: &str, from: &str, to: &str, at: &str) -> Ledger {
        let mut ledger = Ledger::new("bsr", "bsr");
        ledger.runs.push(RunRecord {
            id: 1,
            started_at: "2026-11-30T08:00:00Z".into(),
            ended_at: Some("2026-11-30T08:05:00Z".into()),
            holder: "ops@bastion pid 42".into(),
            command: "helm safe-upgrade bsr --to ***".into(),
            direction: "upgrade".into(),
            from: v(from),
            to: v(to),
            outcome: Some(outcome.into()),
            at: Some(v(at)),
            message: None,
            steps: vec![],
        });
        ledger
    }

    #[test]
    fn a_run_stopped_part_way_is_named_when_the_next_one_continues_it() {
        let ledger = ledger_with("stopped", "1.0.4", "1.2.6", "1.1.9");
        let note = earlier_stopped_run(Some(&ledger), &v("1.1.9"), &v("1.2.6")).unwrap();
        assert_eq!(
            note,
            "continuing the upgrade 1.0.4 → 1.2.6 started 2026-11-30T08:00:00Z by ops@bastion: it stopped at 1.1.9"
        );
        let note = earlier_stopped_run(Some(&ledger), &v("1.1.9"), &v("1.3.0")).unwrap();
        assert!(note.ends_with("stopped at 1.1.9; this run goes to 1.3.0 instead"), "{note}");
    }

    #[test]
    fn a_downgrade_window_refusal_from_the_ledgers_newest_version_alone_says_so() {
        let release =
            release_at("1.3.2", &[(1, "1.2.6", ReleaseStatus::Superseded), (2, "1.3.2", ReleaseStatus::Deployed)]);
        let mut ledger = Ledger::new("bsr", "bsr");
        ledger.newest_ever = Some(v("9.0.0"));
        let window = || refused("downgrade-window", "1.2.6 is in an older major than 9.0.0", "restore a backup");
        let location = "ConfigMap helm-safe-upgrade.bsr in namespace bsr";
        let said = said_to_come_from_the_ledger(window(), &release, Some(&ledger), location).to_string();
        assert!(
            said.contains("(9.0.0 is on record only in the ledger, ConfigMap helm-safe-upgrade.bsr in namespace bsr: helm's history of bsr goes up to 1.3.2;"),
            "{said}"
        );
        // helm ran it (or the ledger records nothing newer): nothing to add.
        ledger.newest_ever = Some(v("1.3.2"));
        let plain = said_to_come_from_the_ledger(window(), &release, Some(&ledger), location).to_string();
        assert_eq!(plain, window().to_string());
        let other = said_to_come_from_the_ledger(refused("render", "x", "y"), &release, Some(&ledger), location);
        assert_eq!(other.to_string(), refused("render", "x", "y").to_string());
    }

    #[test]
    fn nothing_to_continue_is_not_mentioned() {
        // Finished, declined, or the release moved since.
        for (outcome, at, current) in
            [("completed", "1.2.6", "1.2.6"), ("declined", "1.0.4", "1.0.4"), ("stopped", "1.1.9", "1.2.0")]
        {
            let ledger = ledger_with(outcome, "1.0.4", "1.2.6", at);
            assert_eq!(earlier_stopped_run(Some(&ledger), &v(current), &v("1.2.6")), None, "{outcome} at {at}");
        }
        assert_eq!(earlier_stopped_run(None, &v("1.1.9"), &v("1.2.6")), None);
    }

    fn release_at(version: &str, history: &[(u64, &str, ReleaseStatus)]) -> Release {
        let &(revision, _, status) = history.last().unwrap();
        Release {
            name: "bsr".into(),
            namespace: "bsr".into(),
            chart_name: "bsr".into(),
            version: v(version),
            app_version: None,
            revision,
            status,
            description: String::new(),
            history: history
                .iter()
                .map(|&(revision, version, status)| crate::release::Revision {
                    revision,
                    status,
                    version: Some(v(version)),
                    description: String::new(),
                })
                .collect(),
            user_values: serde_json::json!({"replicas": 3}),
            manifest: String::new(),
            stored_values: None,
        }
    }

    #[test]
    fn a_patch_rollback_goes_by_revision_from_values_read_before_deciding() {
        use ReleaseStatus::{Deployed, Failed, Superseded};
        let release = release_at("1.2.1", &[(1, "1.2.0", Superseded), (2, "1.2.2", Failed), (3, "1.2.1", Deployed)]);
        assert_eq!(revision_that_ran(&release, &v("1.2.0")), Some(1));
        assert_eq!(revision_that_ran(&release, &v("1.2.2")), None, "a failed revision is not gone back to");
        let said = |notes: Vec<Note>, patch: bool| -> Vec<String> {
            notes.into_iter().filter_map(|n| n.said(patch)).collect()
        };
        // The same values: helm's own rollback, said only for a patch rollback.
        let same = RevisionValues::from_known([(1, serde_json::json!({"replicas": 3}))]);
        let mut notes = Vec::new();
        assert_eq!(patch_by_revision(&same, &release, &v("1.2.0"), false, &mut notes), Some(1));
        assert!(said(notes, false).is_empty());
        // Other values, or values that could not be read: a redeploy.
        let other = RevisionValues::from_known([(1, serde_json::json!({"replicas": 1}))]);
        for values in [other, RevisionValues::default()] {
            let mut notes = Vec::new();
            assert_eq!(patch_by_revision(&values, &release, &v("1.2.0"), false, &mut notes), None);
            assert!(said(notes, true)[0].contains("with other values"));
        }
        // No revision of the target left: said whatever the plan.
        let mut notes = Vec::new();
        assert_eq!(patch_by_revision(&same, &release, &v("1.1.0"), false, &mut notes), None);
        assert!(said(notes, false)[0].starts_with("no revision of 1.1.0 is left"));
    }

    #[test]
    fn procedure_values_are_found_beside_the_users_own_keys() {
        use serde_json::json;
        let user = json!({"app": {"replicas": 3, "maintenance": {"enabled": true, "note": "x"}}, "top": 1});
        assert!(super::holds(Some(&user), &json!({"app": {"maintenance": {"enabled": true}}})), "nested, deep-merged");
        assert!(super::holds(user.get("top"), &json!(1)));
        assert!(!super::holds(Some(&user), &json!({"app": {"maintenance": {"enabled": false}}})));
        assert!(!super::holds(Some(&user), &json!({"app": {"paused": true}})));
        assert!(!super::holds(None, &json!(true)));
        assert!(super::holds(Some(&json!({})), &json!({})), "an empty map set is that map");
    }
}
