//! A live run, as a pipeline of values with one owner each:
//!
//! ```text
//! RunOptions ─ gather ─▶ (Tools, Facts) ─ decide ─▶ Decision { Plan, Consent } ─ execute ─▶ RunReport
//!                  │                          │                                     │
//!           helm, kubectl,             the pure planner                 lock, ask, back up, walk,
//!           ledger, catalog           (crate::plan)                     record (walk, ledger)
//! ```
//!
//! `gather` reads everything and changes nothing; `decide` turns what was read into the
//! plan (by the pure planner) and the consent it needs; `execute` runs it. The walk talks
//! to the cluster only through [`cluster::Cluster`], so it is tested with fakes.

pub mod backup;
pub mod chart_policy;
pub mod cluster;
pub mod decide;
pub mod error;
pub mod execute;
pub mod gather;
pub mod holder;
pub mod interact;
pub mod journal;
pub mod ledger;
pub mod notify;
pub mod options;
pub mod parallel;
pub mod policy_choice;
pub mod preflight;
pub mod private;
pub mod probe;
pub mod revisions;
pub mod rollout;
pub mod unready;
pub mod values;
pub mod walk;

use crate::catalog::cache::RunCharts;
use crate::plan::{Direction, Plan};
use crate::printer::Printer;
use crate::report::RunReport;
pub use error::RunError;
use error::refused;
use options::{RollbackOptions, RunOptions, UpgradeOptions};

/// Either a plan to print (`--plan`) or the report of a run.
pub enum Either {
    Plan(Box<Plan>),
    Report(Box<RunReport>),
}

/// `helm safe-upgrade RELEASE …`.
pub fn upgrade(opts: &RunOptions, up: &UpgradeOptions, printer: &Printer) -> Result<Either, RunError> {
    // The run's chart archives: kept to the end, since the walk deploys the files the
    // preflight rendered (and the target's was read for the policy it ships).
    let charts = RunCharts::new();
    let target = gather::TargetChart::Upgrade(up.target.as_ref());
    let (tools, mut facts) = gather::gather(opts, Direction::Upgrade, target, &charts, printer)?;
    tools.helm.runner.signals.stop_before_changes().map_err(RunError::Interrupted)?;
    let decision = decide::upgrade(&mut facts, opts, up, printer)?;
    check_then_execute(decision, facts, &tools, opts, &charts)
}

/// `helm safe-rollback RELEASE …`.
pub fn rollback(opts: &RunOptions, down: &RollbackOptions, printer: &Printer) -> Result<Either, RunError> {
    let charts = RunCharts::new();
    let (tools, mut facts) =
        gather::gather(opts, Direction::Rollback, gather::TargetChart::Rollback, &charts, printer)?;
    tools.helm.runner.signals.stop_before_changes().map_err(RunError::Interrupted)?;
    let decision = decide_rollback(&mut facts, &tools, opts, down)?;
    check_then_execute(decision, facts, &tools, opts, &charts)
}

/// A rollback's decision, after the reads it needs: the values of the revisions it carries
/// or compares (already in hand when the release was read from helm's storage).
fn decide_rollback(
    facts: &mut gather::Facts,
    tools: &gather::Tools,
    opts: &RunOptions,
    down: &RollbackOptions,
) -> Result<decide::Decision, RunError> {
    let reads = decide::rollback_reads(facts, opts, down);
    let values = revisions::RevisionValues::read(&tools.helm, &facts.release, &reads);
    decide::rollback(facts, &values, opts, down)
}

/// Both commands after `decide`: the preflight, then the plan (`--plan`) or the run.
fn check_then_execute(
    mut decision: decide::Decision,
    mut facts: gather::Facts,
    tools: &gather::Tools,
    opts: &RunOptions,
    charts: &RunCharts,
) -> Result<Either, RunError> {
    // A hook that cannot start is refused before the preflight's work and the lock, with
    // nothing changed. `--plan` calls no hook, so it does not need one that runs here.
    let hook = if opts.plan_only { None } else { notify::hook_for_run(opts.notify.as_ref(), &facts.policy)? };
    let checked = checked(&mut decision, &facts, tools, opts, charts)?;
    tools.helm.runner.signals.stop_before_changes().map_err(RunError::Interrupted)?;
    facts.offer.chart = checked.chart;
    if opts.plan_only {
        // Sealed: the printed plan is a document `--execute` can later check was not
        // edited (an offline plan, with no release to check against, is not sealed).
        let mut plan = decision.plan;
        // A plan takes no lock, so it is read while another run may hold it: said, since
        // a run of this plan would be refused now.
        plan.warnings.extend(facts.ledger.as_ref().and_then(ledger::lock::held_note));
        let plan = if plan.made_from.is_some() { crate::plan::document::sealed(plan) } else { plan };
        return Ok(Either::Plan(Box::new(plan)));
    }
    execute::execute(decision, facts, tools, opts, hook.as_ref()).map(|r| Either::Report(Box::new(r)))
}

/// `--execute FILE`: a reviewed plan, walked only if the release still gives exactly it.
/// Everything is gathered, decided and rendered again as for a live run to the plan's
/// target; any difference in what the plan depended on ([`document::changes`]) refuses
/// the run (exit 3, rule `plan-stale`) before the lock and with nothing changed.
/// Otherwise the reviewed plan itself is walked, through the usual executor.
///
/// [`document::changes`]: crate::plan::document::changes
pub fn execute_reviewed(
    opts: &RunOptions,
    reviewed: Plan,
    accept_data_loss: bool,
    printer: &Printer,
) -> Result<RunReport, RunError> {
    let charts = RunCharts::new();
    let target = crate::version::VersionSpec::Exact(reviewed.to.clone());
    let (tools, mut facts, mut decision) = match reviewed.direction {
        Direction::Upgrade => {
            let up = UpgradeOptions {
                target: Some(target),
                fast_path: reviewed.strategy == crate::plan::Strategy::FastPath,
                // A pre-release is only ever the target, so the target says it.
                devel: reviewed.to.is_prerelease(),
            };
            let chart = gather::TargetChart::Upgrade(up.target.as_ref());
            let (tools, mut facts) = gather::gather(opts, Direction::Upgrade, chart, &charts, printer)?;
            let decision = decide::upgrade(&mut facts, opts, &up, printer)?;
            (tools, facts, decision)
        }
        Direction::Rollback => {
            let down = RollbackOptions { target: Some(target), revision: None, accept_data_loss };
            let (tools, mut facts) =
                gather::gather(opts, Direction::Rollback, gather::TargetChart::Rollback, &charts, printer)?;
            let decision = decide_rollback(&mut facts, &tools, opts, &down)?;
            (tools, facts, decision)
        }
    };
    let hook = notify::hook_for_run(opts.notify.as_ref(), &facts.policy)?;
    let checked = checked(&mut decision, &facts, &tools, opts, &charts)?;
    tools.helm.runner.signals.stop_before_changes().map_err(RunError::Interrupted)?;
    facts.offer.chart = checked.chart;
    let changed = crate::plan::document::changes(&reviewed, &decision.plan);
    if !changed.is_empty() {
        return Err(refused(
            "plan-stale",
            format!("the reviewed plan no longer holds; since it was made:\n    {}", changed.join("\n    ")),
            "make the plan again (--plan -o json), review it, and execute the new file; a plan made with -f/--set* is executed with the same ones",
        ));
    }
    decision.plan = reviewed;
    execute::execute(decision, facts, &tools, opts, hook.as_ref())
}

/// The preflight, with the values the run starts from (a resumed run's, from its backup).
fn checked(
    decision: &mut decide::Decision,
    facts: &gather::Facts,
    tools: &gather::Tools,
    opts: &RunOptions,
    charts: &RunCharts,
) -> Result<preflight::Checked, RunError> {
    let (carried, overrides) = decision.start_values(facts, opts);
    let start = preflight::StartValues { carried: &carried, overrides: &overrides };
    preflight::check(&mut decision.plan, facts, tools, opts, &start, charts)
}
