//! Rollback planning: go back only as far as the policy calls safe, the vendor's way.
//!
//! The window is measured from the *newest version ever deployed*, not from the current
//! one: after 1.3 → 1.2, going on to 1.1 is two minors below what the database has seen.
//!
//! Under `versions: app` the same decisions are made between app versions
//! ([`super::app_versions::plan_rollback`] translates and maps back); the messages then
//! name each app version with the chart that packages it.

use super::app_space::AppSpace;
use super::text::steps_text;
use super::{
    Alternative, Available, Context, Direction, Hop, HopKind, Plan, PlanError, RollbackRequest, SnapshotKnowledge,
    Step, StepBuilder, Strategy, backup_step, bad_request, candidate_versions, minor_distance, nearest_listing, refuse,
};
use crate::policy::Policy;
use crate::version::ChartVersion;

/// The version a rollback goes to: `--to` if it is older and offered, else the newest
/// earlier version deployed successfully (offline: the newest earlier version offered).
/// The executor asks this first when it must read something about the target (the values
/// a revision of it ran with) before planning.
pub fn rollback_target(available: &[Available], request: &RollbackRequest) -> Result<ChartVersion, PlanError> {
    let current = &request.current;
    let named: Vec<&ChartVersion> = request.target.iter().collect();
    let candidates = candidate_versions(available, false, &named);
    match &request.target {
        Some(t) => {
            if t >= current {
                return Err(bad_request(
                    format!("{t} is not older than the deployed {current}"),
                    format!("to go forward, use `helm safe-upgrade` with `--to {t}`"),
                ));
            }
            if !candidates.iter().any(|a| &a.version == t) {
                return Err(bad_request(
                    format!("{t} is not available from the chart source"),
                    nearest_listing(&candidates, t),
                ));
            }
            Ok(t.clone())
        }
        None => default_target(request, &candidates).ok_or_else(|| {
            bad_request(
                format!("no version older than {current} is known to roll back to"),
                "name one with --to VERSION",
            )
        }),
    }
}

/// How a rollback's messages name a version: as itself, or, planned in app versions, with
/// the chart that packages it (`17.1.0 (chart 8.1.2)`), since the operator asked for a
/// chart and the policy's rules speak of the app.
#[derive(Clone, Copy)]
pub(crate) struct Names<'a>(pub Option<&'a AppSpace>);

impl Names<'_> {
    fn version(self, v: &ChartVersion) -> String {
        self.0.map_or_else(|| v.to_string(), |space| space.named(v))
    }

    /// The oldest version a window allows, from its minor.
    fn floor(self, minor: crate::version::Minor) -> String {
        let floor = format!("{}.{}.0", minor.major, minor.minor);
        match (self.0, ChartVersion::parse(&floor)) {
            (Some(space), Ok(floor)) => space.floor_named(&floor),
            _ => floor,
        }
    }

    /// The step as helm will be told it: its versions in charts.
    fn in_charts(self, step: &mut Step) {
        if let Some(space) = self.0
            && let Step::Deploy { version, .. } | Step::Verify { version, .. } | Step::WaitGone { version, .. } = step
        {
            *version = space.chart(version);
        }
    }
}

/// Plan a rollback in the version space of `space`: chart versions (None), or the app
/// versions it translated the request into.
pub(crate) fn plan_rollback(
    policy: &Policy,
    available: &[Available],
    request: &RollbackRequest,
    context: &Context,
    space: Option<&AppSpace>,
) -> Result<Plan, PlanError> {
    let names = Names(space);
    let current = &request.current;
    let newest = if request.newest_ever > *current { &request.newest_ever } else { current };
    let named: Vec<&ChartVersion> = request.target.iter().collect();
    let candidates = candidate_versions(available, false, &named);
    let builder = StepBuilder { policy, context, available: &candidates };

    let target = rollback_target(available, request)?;
    let (strategy, kind, procedure) = choose_procedure(policy, current, newest, &target, request, names)?;
    let mut steps = builder.steps(&procedure, current, &target)?;
    if let Some(revision) = request.by_revision
        && let Some(Step::Deploy { revision: by, .. }) = steps
            .iter_mut()
            .find(|s| matches!(s, Step::Deploy { version, set, .. } if *version == target && set.is_empty()))
    {
        *by = Some(revision);
    }
    let mut hops = vec![Hop {
        from: current.clone(),
        to: target.clone(),
        kind,
        downtime: policy.procedure(&procedure).downtime,
        procedure,
        release_notes: None,
        steps,
        values: vec![],
        check: None,
        estimate: None,
        app: None,
    }];
    // `helm rollback REVISION` deploys that revision's own values: no rule applies.
    let mut warnings = match request.by_revision {
        Some(_) => Vec::new(),
        None => super::values::attach(policy, &mut hops, Direction::Rollback, context.values.as_ref(), available)?,
    };
    let hop = hops.remove(0);
    warnings.extend(what_may_be_lost(policy, &hop, strategy, request, &names.version(&target)));
    let alternatives = restore_alternative(&builder, strategy, request, current, &target, names)?;
    let mut plan = Plan {
        schema: super::document::SCHEMA,
        direction: Direction::Rollback,
        policy: policy.name.clone(),
        sources: context.sources.clone(),
        release: context.release.clone(),
        namespace: context.namespace.clone(),
        from: current.clone(),
        to: target,
        strategy,
        downtime: hop.downtime,
        preflight: vec![backup_step()],
        hops: vec![hop],
        alternatives,
        warnings,
        not_rendered: None,
        estimate: None,
        made_from: context.made_from.clone(),
        digest: None,
    };
    super::estimate::attach(&mut plan, policy, context);
    Ok(plan)
}

/// What the operator must know may be lost: within a minor the schema does not move
/// (BSR: "no downtime or data loss"); below it, or by a restore, data written since can
/// be, and a restore needs its snapshot (`target` as messages name it).
fn what_may_be_lost(
    policy: &Policy,
    hop: &Hop,
    strategy: Strategy,
    request: &RollbackRequest,
    target: &str,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if hop.kind.may_lose_data()
        && let Some(warning) = &policy.downgrade.data_loss_warning
    {
        warnings.push(warning.clone());
    }
    if strategy == Strategy::Restore {
        warnings.push(match &request.snapshot {
            SnapshotKnowledge::TakenAt(v) => format!("restores the snapshot taken while {v} was deployed"),
            _ => format!("needs a snapshot taken while {target} was deployed; the operator confirms it exists"),
        });
    }
    warnings
}

/// Restoring the snapshot, offered beside a down-migration when one may exist.
fn restore_alternative(
    builder: &StepBuilder,
    strategy: Strategy,
    request: &RollbackRequest,
    current: &ChartVersion,
    target: &ChartVersion,
    names: Names,
) -> Result<Vec<Alternative>, PlanError> {
    let policy = builder.policy;
    let mut alternatives = Vec::new();
    if strategy != Strategy::Restore
        && let Some(restore) = &policy.downgrade.restore
        && request.snapshot != SnapshotKnowledge::None
    {
        let mut steps = builder.steps(restore, current, target)?;
        steps.iter_mut().for_each(|step| names.in_charts(step));
        let downtime = policy.procedure(restore).downtime;
        alternatives.push(Alternative {
            strategy: Strategy::Restore,
            hops: 1,
            downtime,
            flag: None,
            summary: format!("restore the snapshot: {}", steps_text(&steps)),
            path: vec![super::estimate::Leg {
                from: current.clone(),
                to: target.clone(),
                kind: HopKind::Restore,
                procedure: restore.clone(),
                downtime,
            }],
            estimate: None,
        });
    }
    Ok(alternatives)
}

/// The newest earlier version deployed successfully; offline (no history), the newest
/// earlier version the source offers.
fn default_target(request: &RollbackRequest, candidates: &[Available]) -> Option<ChartVersion> {
    let older = |v: &&ChartVersion| **v < request.current;
    request
        .deployed_before
        .iter()
        .filter(older)
        .max()
        .or_else(|| candidates.iter().map(|a| &a.version).filter(older).max())
        .cloned()
}

fn choose_procedure(
    policy: &Policy,
    current: &ChartVersion,
    newest: &ChartVersion,
    target: &ChartVersion,
    request: &RollbackRequest,
    names: Names,
) -> Result<(Strategy, HopKind, String), PlanError> {
    let rules = &policy.downgrade;
    let (target_named, newest_named) = (names.version(target), names.version(newest));
    // Where the policy cannot go back its own way, restoring the snapshot is the way
    // (Coder, the generic guide); without a restore procedure or a snapshot it is refused.
    let restore_or_refuse = |rule: &str, message: String, first_choice: Option<String>| {
        let fallback = match (&rules.restore, &request.snapshot) {
            (Some(p), SnapshotKnowledge::Unknown | SnapshotKnowledge::TakenAt(_)) => {
                return Ok((Strategy::Restore, HopKind::Restore, p.clone()));
            }
            (Some(_), SnapshotKnowledge::None) => format!(
                "no snapshot was recorded while {target_named} ran: restore a database backup taken while {target_named} ran, by hand, then redeploy {target_named}"
            ),
            (None, _) => "restore a backup taken before the upgrade, following the vendor's documentation".to_string(),
        };
        let supported = first_choice.map_or(fallback.clone(), |choice| format!("{choice}; or {fallback}"));
        Err(refuse(rule, message, supported))
    };

    if target.minor().major != newest.minor().major {
        return restore_or_refuse(
            "downgrade-window",
            format!(
                "{target_named} is in an older major than {newest_named}, the newest version ever deployed; policy {} never downgrades across a major",
                policy.name
            ),
            None,
        );
    }
    let within_one_minor = target.minor() == current.minor();
    if within_one_minor && target.minor() == newest.minor() {
        return match &rules.patch {
            Some(p) => Ok((Strategy::Sequential, HopKind::PatchDowngrade, p.clone())),
            None => restore_or_refuse(
                "downgrade-unsupported",
                format!("policy {} supports no downgrade, not even within one minor", policy.name),
                None,
            ),
        };
    }
    // Below the newest minor, even a patch downgrade moves the database further from what
    // it has seen, so the minor window applies to it too.
    let Some(minor) = &rules.minor else {
        return restore_or_refuse(
            "downgrade-unsupported",
            format!(
                "policy {} supports no downgrade below the minor of {newest_named}, the newest version ever deployed",
                policy.name
            ),
            None,
        );
    };
    let below = minor_distance(target.minor(), newest.minor());
    if below > u64::from(minor.max_minors_below_newest) {
        let earliest = newest.minor().minor.saturating_sub(u64::from(minor.max_minors_below_newest));
        let floor = names.floor(crate::version::Minor { major: newest.minor().major, minor: earliest });
        return restore_or_refuse(
            "downgrade-window",
            format!(
                "{target_named} is {below} minors below {newest_named}, the newest version ever deployed; policy {} allows at most {}",
                policy.name, minor.max_minors_below_newest
            ),
            Some(format!("roll back no further than {floor}")),
        );
    }
    if within_one_minor && let Some(p) = &rules.patch {
        return Ok((Strategy::Sequential, HopKind::PatchDowngrade, p.clone()));
    }
    Ok((Strategy::Sequential, HopKind::MinorDowngrade, minor.procedure.clone()))
}
