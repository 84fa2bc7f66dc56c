//! Planning in application versions (`versions: app`): the chart source's versions are
//! translated into the `appVersion`s they package, the one planner plans there (an
//! upgrade's path, a rollback's window), and the plan is mapped back to chart versions
//! (what helm deploys), each hop keeping the app versions it goes between for the plan to
//! show.
//!
//! Pure like the rest of [`crate::plan`]: the app versions arrive in [`Available`].
//!
//! Decisions, documented in the README ("Policies"):
//! - an app version is read leniently but never guessed: a leading `v` and an edition
//!   suffix `-ee`/`-ce` are dropped, `MAJOR.MINOR` is padded with `.0`; anything else
//!   semver cannot read (`2024.1.x`, `latest`) is not an app version;
//! - several charts packaging one app version: the newest chart stands for it (the
//!   deployed and the requested chart stand for their own), and a hop that lands there
//!   says so;
//! - a chart without a readable app version is left out of the path with a warning
//!   naming it, and refused by name when it is the deployed or the requested chart;
//! - a rollback's window counts from the app version of the newest chart ever deployed
//!   (the ledger records chart versions); when the source cannot say what that chart
//!   packages, the rollback is refused by name rather than measured from a guess.

use std::collections::BTreeMap;

use super::app_space::AppSpace;
use super::{Available, Plan, PlanError, RollbackRequest, Step, UpgradeRequest, bad_request};
use crate::version::ChartVersion;

/// An app version as the policy's rules count it, or why it cannot be one.
pub fn read_app_version(text: &str) -> Result<ChartVersion, String> {
    let trimmed = text.trim();
    let bare = trimmed.strip_prefix('v').unwrap_or(trimmed);
    // GitLab's images are tagged `17.3.0-ee`/`-ce`: an edition, not a pre-release.
    let lower = bare.to_ascii_lowercase();
    let bare = if lower.ends_with("-ee") || lower.ends_with("-ce") { &bare[..bare.len() - 3] } else { bare };
    let padded = if bare.split('.').count() == 2 { format!("{bare}.0") } else { bare.to_string() };
    ChartVersion::parse(&padded).map_err(|e| {
        format!(
            "appVersion {trimmed:?} is not a version the policy can count in ({}); \
             read: an optional leading v, MAJOR.MINOR[.PATCH][-PRE], an optional -ee/-ce edition",
            e.reason
        )
    })
}

/// The app version a chart packages, or a refusal naming the chart (`role`: "deployed
/// chart").
fn app_of(available: &[Available], chart: &ChartVersion, role: &str) -> Result<ChartVersion, PlanError> {
    let offered = available.iter().find(|a| &a.version == chart);
    let text = match offered.and_then(|a| a.app_version.as_deref()) {
        Some(text) => text,
        None if offered.is_none() => {
            return Err(bad_request(
                format!("the {role} {chart} is not offered by the chart source, so its appVersion is unknown"),
                format!(
                    "the policy counts in app versions (`versions: app`): use a chart source that offers {chart}, or offline, list it as --versions {chart}=APP"
                ),
            ));
        }
        None => {
            return Err(bad_request(
                format!("the {role} {chart} has no appVersion, and the policy counts in app versions"),
                "use a chart that sets appVersion, or a policy without `versions: app`",
            ));
        }
    };
    read_app_version(text).map_err(|e| {
        bad_request(format!("the {role} {chart}: {e}"), "use a policy without `versions: app` for this chart")
    })
}

fn translate(available: &[Available], current: &ChartVersion, target: &ChartVersion) -> Result<AppSpace, PlanError> {
    let current_app = app_of(available, current, "deployed chart")?;
    let target_app = app_of(available, target, "requested chart")?;
    let mut grouped: BTreeMap<ChartVersion, Vec<ChartVersion>> = BTreeMap::new();
    let mut left_out = Vec::new();
    // Only a chart between the two ends could be on the path: one outside them left out
    // is not worth a word (an OCI registry's charts outside the range are never read).
    let (low, high) = if current <= target { (current, target) } else { (target, current) };
    let between = |v: &ChartVersion| v >= low && v <= high;
    for offered in available {
        match offered.app_version.as_deref().map(read_app_version) {
            Some(Ok(app)) => grouped.entry(app).or_default().push(offered.version.clone()),
            Some(Err(why)) if between(&offered.version) => left_out.push(format!("{} ({why})", offered.version)),
            None if between(&offered.version) => left_out.push(format!("{} (no appVersion)", offered.version)),
            _ => {}
        }
    }
    let mut space = AppSpace {
        offered: vec![],
        chart_of: BTreeMap::new(),
        shared: BTreeMap::new(),
        warnings: vec![],
        current_app: current_app.clone(),
        target_app: target_app.clone(),
        newest_ever: None,
    };
    if !left_out.is_empty() {
        space.warnings.push(format!(
            "left out of the path, the policy counts in app versions: chart {}",
            left_out.join(", chart ")
        ));
    }
    for (app, mut charts) in grouped {
        charts.sort();
        charts.dedup();
        let chart = match () {
            _ if app == current_app => current.clone(),
            _ if app == target_app => target.clone(),
            _ => charts.last().cloned().expect("a group has a chart"),
        };
        let spelling = available.iter().find(|a| a.version == chart).and_then(|a| a.app_version.clone());
        space.offered.push(Available { version: app.clone(), app_version: spelling });
        space.chart_of.insert(app.clone(), chart);
        if charts.len() > 1 {
            space.shared.insert(app, charts);
        }
    }
    Ok(space)
}

/// Plan an upgrade whose rules count in app versions: translate, plan, map back.
pub fn plan_upgrade(
    policy: &crate::policy::Policy,
    available: &[Available],
    request: &UpgradeRequest,
    context: &super::Context,
) -> Result<Plan, PlanError> {
    let space = translate(available, &request.current, &request.target)?;
    let (current_app, target_app) = (space.current_app.clone(), space.target_app.clone());
    if current_app == target_app && request.current != request.target {
        return Err(bad_request(
            format!(
                "{} and {} package the same app version {current_app}: the policy counts in app versions and has no rule for a chart-only change",
                request.current, request.target
            ),
            "upgrade the chart with `helm upgrade` directly, or plan it with a policy without `versions: app`",
        ));
    }
    let in_app = UpgradeRequest { current: current_app, target: target_app, ..request.clone() };
    let context = space.for_placeholders(context);
    let mut plan = super::upgrade::plan_upgrade(policy, &space.offered, &in_app, &context)?;
    super::stop_notes(policy, &mut plan);
    Ok(to_chart_versions(plan, &space))
}

/// Plan a rollback whose window counts in app versions: the target is chosen in chart
/// versions (`--to`, or the newest earlier chart deployed successfully), then the window,
/// the major boundary and the patch-or-minor choice are decided between the app versions
/// of the deployed chart, the target and the newest chart ever deployed.
pub fn plan_rollback(
    policy: &crate::policy::Policy,
    available: &[Available],
    request: &RollbackRequest,
    context: &super::Context,
) -> Result<Plan, PlanError> {
    let target = super::rollback::rollback_target(available, request)?;
    let mut space = translate(available, &request.current, &target)?;
    // A rollback has no path to leave charts out of; a chart it needs is refused by name.
    space.warnings.clear();
    let (current_app, target_app) = (space.current_app.clone(), space.target_app.clone());
    if target_app >= current_app {
        let how = if target_app == current_app {
            format!(
                "package the same app version {current_app}: the policy counts in app versions and has no rule for a chart-only change"
            )
        } else {
            format!(
                "go forward in app versions ({current_app} → {target_app}): the policy's rollback rules do not apply"
            )
        };
        return Err(bad_request(
            format!("the deployed chart {} and {target} {how}", request.current),
            "roll the chart back with `helm rollback` directly, or plan it with a policy without `versions: app`",
        ));
    }
    // The ledger keeps chart versions; what the newest one packaged is the source's word.
    let newest = &request.newest_ever;
    let newest_app = if newest > &request.current {
        app_of(available, newest, "newest chart ever deployed")?
    } else {
        current_app.clone()
    };
    space.newest_ever = Some((newest_app.clone(), newest.clone()));
    let in_app = RollbackRequest {
        current: current_app.clone(),
        target: Some(target_app),
        newest_ever: newest_app.max(current_app),
        deployed_before: vec![],
        ..request.clone()
    };
    let context = space.for_placeholders(context);
    let plan = super::rollback::plan_rollback(policy, &space.offered, &in_app, &context, Some(&space))?;
    Ok(to_chart_versions(plan, &space))
}

/// The plan in chart versions: every version helm is told, and the plan's ends; each hop
/// keeps the app versions it goes between.
fn to_chart_versions(mut plan: Plan, space: &AppSpace) -> Plan {
    let chart = |app: &ChartVersion| space.chart(app);
    let mut warnings = space.warnings.clone();
    for hop in &mut plan.hops {
        if let Some(charts) = space.shared.get(&hop.to) {
            let listed: Vec<String> = charts.iter().map(ToString::to_string).collect();
            warnings.push(format!(
                "app version {} is packaged by charts {}: the path deploys {}",
                hop.to,
                listed.join(", "),
                chart(&hop.to)
            ));
        }
        hop.app = Some(super::AppHop { from: hop.from.clone(), to: hop.to.clone() });
        (hop.from, hop.to) = (chart(&hop.from), chart(&hop.to));
        for step in &mut hop.steps {
            match step {
                Step::Deploy { version, .. } | Step::Verify { version, .. } | Step::WaitGone { version, .. } => {
                    *version = chart(version);
                }
                Step::Backup { .. } | Step::Snapshot { .. } | Step::Run { .. } | Step::Confirm { .. } => {}
            }
        }
    }
    for step in &mut plan.preflight {
        if let Step::Deploy { version, .. } | Step::Verify { version, .. } | Step::WaitGone { version, .. } = step {
            *version = chart(version);
        }
    }
    for leg in plan.alternatives.iter_mut().flat_map(|a| a.path.iter_mut()) {
        (leg.from, leg.to) = (chart(&leg.from), chart(&leg.to));
    }
    (plan.from, plan.to) = (chart(&plan.from), chart(&plan.to));
    warnings.append(&mut plan.warnings);
    plan.warnings = warnings;
    plan
}
