//! Upgrade planning: the shortest path the policy allows, hop by hop.
//!
//! Minors are counted over the *train*: the minors that actually exist between the current
//! and the target version. A vendor that never released 1.1 does not make 1.0 → 1.2 a
//! two-minor jump; but a gap is also what a chart source that dropped old versions looks
//! like, so every gap is reported as a warning on the plan.

use std::collections::BTreeSet;

use super::estimate::Leg;
use super::text::{path_text, steps_text, thousands};
use super::{
    Alternative, Available, Context, Direction, Hop, HopKind, Plan, PlanError, Step, StepBuilder, Strategy,
    UpgradeRequest, backup_step, bad_request, candidate_versions, minor_distance, nearest_listing, refuse,
};
use crate::policy::{MajorRule, Policy, RequiredStop, StopAt};
use crate::version::{ChartVersion, Minor};

pub fn plan_upgrade(
    policy: &Policy,
    available: &[Available],
    request: &UpgradeRequest,
    context: &Context,
) -> Result<Plan, PlanError> {
    let (current, target) = (&request.current, &request.target);
    let empty_plan = |warnings| Plan {
        schema: super::document::SCHEMA,
        direction: Direction::Upgrade,
        policy: policy.name.clone(),
        sources: context.sources.clone(),
        release: context.release.clone(),
        namespace: context.namespace.clone(),
        from: current.clone(),
        to: target.clone(),
        strategy: Strategy::Sequential,
        downtime: false,
        preflight: vec![],
        hops: vec![],
        alternatives: vec![],
        warnings,
        not_rendered: None,
        estimate: None,
        made_from: context.made_from.clone(),
        digest: None,
    };
    if target == current {
        return Ok(empty_plan(vec![format!("already at {target}: nothing to do")]));
    }
    let candidates = checked_candidates(available, request)?;
    // Intermediate stops are always releases: `--devel` lets the operator *target* a
    // pre-release, it never makes the tool pick one on the way.
    let stops: Vec<ChartVersion> = candidates
        .iter()
        .map(|a| a.version.clone())
        .filter(|v| v > current && v <= target && (v == target || !v.is_prerelease()))
        .collect();
    refuse_a_refused_major(policy, current, target, &stops)?;

    let train = Train::new(current, &stops, policy.upgrade.stop_at);
    let waypoints = required_waypoints(policy, current, target, &train)?;
    let builder = StepBuilder { policy, context, available: &candidates };
    let mut pairs = Vec::new();
    let mut from = current.clone();
    for waypoint in waypoints.iter().chain(std::iter::once(target)) {
        pairs.extend(train.segment(&from, waypoint, policy.upgrade.max_minor_step));
        from = waypoint.clone();
    }
    let sequential = pairs.iter().map(|(a, b)| sequential_hop(&builder, a, b)).collect::<Result<Vec<_>, _>>()?;
    let fast_path = fast_path_hop(&builder, current, target, &waypoints)?;
    let (strategy, mut hops, alternatives) = choose_strategy(request, sequential, fast_path)?;
    let mut warnings = train.gap_warnings(current, target);
    warnings.extend(super::values::attach(
        policy,
        &mut hops,
        Direction::Upgrade,
        context.values.as_ref(),
        &candidates,
    )?);
    if hops.iter().any(|h| h.kind == HopKind::Major) {
        warnings.push("the path crosses a major version: read the release notes before confirming that hop".into());
    }
    let mut plan = Plan {
        downtime: hops.iter().any(|h| h.downtime),
        strategy,
        hops,
        alternatives,
        warnings,
        preflight: preflight(&builder, current, target),
        ..empty_plan(vec![])
    };
    super::estimate::attach(&mut plan, policy, context);
    Ok(plan)
}

/// The versions the plan may use, once the request itself is sound: the target is newer,
/// a pre-release only with `--devel`, and offered by the source.
fn checked_candidates(available: &[Available], request: &UpgradeRequest) -> Result<Vec<Available>, PlanError> {
    let (current, target) = (&request.current, &request.target);
    if target < current {
        return Err(bad_request(
            format!("{target} is older than the deployed {current}"),
            format!("to go back, use `helm safe-rollback` with `--to {target}`"),
        ));
    }
    if target.is_prerelease() && !request.devel {
        return Err(bad_request(
            format!("{target} is a pre-release"),
            "pass --devel to upgrade to pre-release versions",
        ));
    }
    let candidates = candidate_versions(available, request.devel, &[target]);
    if !candidates.iter().any(|a| &a.version == target) {
        return Err(bad_request(
            format!("{target} is not available from the chart source"),
            nearest_listing(&candidates, target),
        ));
    }
    Ok(candidates)
}

/// A major upgrade under a policy that refuses them, with the newest version of the
/// current major as the supported alternative.
fn refuse_a_refused_major(
    policy: &Policy,
    current: &ChartVersion,
    target: &ChartVersion,
    stops: &[ChartVersion],
) -> Result<(), PlanError> {
    if target.minor().major <= current.minor().major || policy.upgrade.major != MajorRule::Refuse {
        return Ok(());
    }
    let newest_in_major = stops.iter().rfind(|v| v.minor().major == current.minor().major);
    let supported = match newest_in_major {
        Some(v) => format!("upgrade to {v}, the newest {}.x", current.minor().major),
        None => format!(
            "{current} is already the newest {}.x available; the vendor documents no major upgrade",
            current.minor().major
        ),
    };
    Err(refuse(
        "major",
        format!("{current} → {target} crosses a major version; policy {} refuses major upgrades", policy.name),
        supported,
    ))
}

/// The hops to walk and the alternative to mention: the fast path when asked for (or a
/// refusal saying why it is not offered), else the sequential path with the fast path as
/// its alternative.
fn choose_strategy(
    request: &UpgradeRequest,
    sequential: Vec<Hop>,
    fast_path: Result<Hop, String>,
) -> Result<(Strategy, Vec<Hop>, Vec<Alternative>), PlanError> {
    let (current, target) = (&request.current, &request.target);
    if request.fast_path {
        return match fast_path {
            Ok(hop) => {
                let alternative = Alternative {
                    strategy: Strategy::Sequential,
                    hops: sequential.len(),
                    downtime: sequential.iter().any(|h| h.downtime),
                    flag: None,
                    summary: format!("hop by hop: {}", path_text(current, &sequential)),
                    path: sequential.iter().map(Leg::of).collect(),
                    estimate: None,
                };
                Ok((Strategy::FastPath, vec![hop], vec![alternative]))
            }
            Err(why) => Err(refuse(
                "fast-path",
                why,
                format!(
                    "the sequential path {} ({})",
                    path_text(current, &sequential),
                    crate::text::count(sequential.len(), "hop", "hops")
                ),
            )),
        };
    }
    let alternatives = match fast_path {
        Ok(hop) => vec![Alternative {
            strategy: Strategy::FastPath,
            hops: 1,
            downtime: hop.downtime,
            flag: Some("--fast-path".into()),
            summary: format!("{current} → {target} in one hop: {}", steps_text(&hop.steps)),
            path: vec![Leg::of(&hop)],
            estimate: None,
        }],
        Err(_) => vec![],
    };
    Ok((Strategy::Sequential, sequential, alternatives))
}

fn preflight(builder: &StepBuilder, current: &ChartVersion, target: &ChartVersion) -> Vec<Step> {
    let mut steps = vec![backup_step()];
    if builder.policy.upgrade.snapshot_first {
        steps.push(builder.first_snapshot(current, target));
    }
    steps
}

fn sequential_hop(builder: &StepBuilder, from: &ChartVersion, to: &ChartVersion) -> Result<Hop, PlanError> {
    let policy = builder.policy;
    let kind = if from.minor() == to.minor() {
        HopKind::Patch
    } else if from.minor().major == to.minor().major {
        HopKind::Minor
    } else {
        HopKind::Major
    };
    let procedure = policy.upgrade.procedure.clone();
    let mut steps = builder.steps(&procedure, from, to)?;
    let release_notes = builder.release_notes(to);
    if kind == HopKind::Major {
        let link = release_notes.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        steps.insert(
            0,
            Step::Confirm {
                message: format!(
                    "{from} → {to} is a major upgrade: read the release notes{link} and do the migration steps they list before continuing"
                ),
            },
        );
    }
    Ok(Hop {
        from: from.clone(),
        to: to.clone(),
        kind,
        downtime: policy.procedure(&procedure).downtime,
        procedure,
        release_notes,
        steps,
        values: vec![],
        check: None,
        estimate: None,
        app: None,
    })
}

/// The fast-path hop, or why the policy does not offer it for this jump.
fn fast_path_hop(
    builder: &StepBuilder,
    current: &ChartVersion,
    target: &ChartVersion,
    waypoints: &[ChartVersion],
) -> Result<Result<Hop, String>, PlanError> {
    let policy = builder.policy;
    let Some(fast) = &policy.upgrade.fast_path else {
        return Ok(Err(format!("policy {} has no fast path", policy.name)));
    };
    if current.minor().major != target.minor().major {
        return Ok(Err(format!("the fast path of policy {} does not cross major versions", policy.name)));
    }
    let distance = minor_distance(current.minor(), target.minor());
    if distance < u64::from(fast.min_minors) {
        return Ok(Err(format!(
            "{current} → {target} spans {}; policy {} offers the fast path from {} minors",
            crate::text::count(usize::try_from(distance).unwrap_or(usize::MAX), "minor", "minors"),
            policy.name,
            fast.min_minors
        )));
    }
    if let Some(stop) = waypoints.first() {
        return Ok(Err(format!("the fast path would skip the required stop {stop}")));
    }
    let steps = builder.steps(&fast.procedure, current, target)?;
    Ok(Ok(Hop {
        from: current.clone(),
        to: target.clone(),
        kind: HopKind::FastPath,
        downtime: policy.procedure(&fast.procedure).downtime,
        procedure: fast.procedure.clone(),
        release_notes: builder.release_notes(target),
        steps,
        values: vec![],
        check: None,
        estimate: None,
        app: None,
    }))
}

/// Required stops strictly between current and target, as concrete versions.
fn required_waypoints(
    policy: &Policy,
    current: &ChartVersion,
    target: &ChartVersion,
    train: &Train,
) -> Result<Vec<ChartVersion>, PlanError> {
    let mut out = BTreeSet::new();
    // Exact stops first: a minor stop is already satisfied by an exact stop in its minor,
    // and adding a second waypoint there would lengthen the path for nothing.
    let mut stops: Vec<&RequiredStop> = policy.upgrade.required_stops.iter().collect();
    stops.sort_by_key(|s| matches!(s, RequiredStop::Minor(_)));
    for stop in stops {
        match stop {
            RequiredStop::Version(v) if v > current && v < target => {
                if v.is_prerelease() {
                    return Err(refuse(
                        "required-stop",
                        format!(
                            "policy {} requires every path to pass through {v}, a pre-release, and a path never stops at a pre-release on the way",
                            policy.name
                        ),
                        format!("name the release the vendor requires instead of {v} in the policy's required_stops"),
                    ));
                }
                if !train.offers(v) {
                    return Err(refuse(
                        "required-stop",
                        format!(
                            "policy {} requires every path to pass through {v}, which the chart source does not offer",
                            policy.name
                        ),
                        format!("make {v} available in the chart source (e.g. `helm repo update`), then plan again"),
                    ));
                }
                out.insert(v.clone());
            }
            RequiredStop::Minor(m) if out.iter().any(|v: &ChartVersion| v.minor() == *m) => {}
            RequiredStop::Minor(m) if *m > current.minor() && *m < target.minor() => match train.pick(*m, target) {
                Some(v) => {
                    out.insert(v);
                }
                None => {
                    return Err(refuse(
                        "required-stop",
                        format!(
                            "policy {} requires every path to pass through {m}.x, and the chart source offers no {m}.x release",
                            policy.name
                        ),
                        format!("make a {m}.x release available in the chart source, then plan again"),
                    ));
                }
            },
            _ => {}
        }
    }
    Ok(out.into_iter().collect())
}

/// The minors that exist between current and target, and the versions in them.
///
/// Every query is a binary search or a walk over the versions offered, never over the
/// numbers between them: a source may offer `1.0.0` and `1.20240101.0`, and planning must
/// cost the same as for `1.0.0` and `1.1.0`.
struct Train {
    /// Sorted, one entry per minor.
    minors: Vec<Minor>,
    /// Sorted oldest first (the stops, as `candidate_versions` ordered them).
    versions: Vec<ChartVersion>,
    stop_at: StopAt,
}

impl Train {
    fn new(current: &ChartVersion, stops: &[ChartVersion], stop_at: StopAt) -> Self {
        let mut minors: BTreeSet<Minor> = stops.iter().map(ChartVersion::minor).collect();
        minors.insert(current.minor());
        Train { minors: minors.into_iter().collect(), versions: stops.to_vec(), stop_at }
    }

    fn position(&self, minor: Minor) -> usize {
        self.minors.binary_search(&minor).expect("minor is on the train")
    }

    /// The position of the last minor of `major` on the train.
    fn last_of_major(&self, major: u64) -> usize {
        self.minors.partition_point(|m| m.major <= major).checked_sub(1).expect("the major is on the train")
    }

    /// Whether the source offers exactly `version` as a stop.
    fn offers(&self, version: &ChartVersion) -> bool {
        self.versions.binary_search(version).is_ok()
    }

    /// The version to stop at in an intermediate minor (never past `bound`).
    fn pick(&self, minor: Minor, bound: &ChartVersion) -> Option<ChartVersion> {
        // Versions sort by (major, minor) first, so one minor's versions are one run.
        let start = self.versions.partition_point(|v| v.minor() < minor);
        let end = self.versions.partition_point(|v| v.minor() <= minor && v <= bound).max(start);
        let mut in_minor = self.versions[start..end].iter().filter(|v| !v.is_prerelease());
        match self.stop_at {
            StopAt::LatestPatch => in_minor.next_back().cloned(),
            StopAt::EarliestPatch => in_minor.next().cloned(),
        }
    }

    /// Greedy shortest path from `from` to `to`: each hop advances as many minors as the
    /// policy allows, and a major is crossed only from the last minor of the old major to
    /// the first minor of the next one. Greedy is optimal because every constraint is a
    /// cap on how far one hop may reach.
    fn segment(&self, from: &ChartVersion, to: &ChartVersion, max_step: u32) -> Vec<(ChartVersion, ChartVersion)> {
        // Validation rejects 0; a step of at least 1 is what guarantees this loop ends.
        let max_step = usize::try_from(max_step.max(1)).unwrap_or(usize::MAX);
        let mut hops = Vec::new();
        let mut cur = from.clone();
        while &cur != to {
            let next = self.next_stop(&cur, to, max_step);
            hops.push((cur, next.clone()));
            cur = next;
        }
        hops
    }

    fn next_stop(&self, cur: &ChartVersion, to: &ChartVersion, max_step: usize) -> ChartVersion {
        if cur.minor() == to.minor() {
            return to.clone();
        }
        let here = self.position(cur.minor());
        let goal = self.position(to.minor());
        let reach = here.saturating_add(max_step);
        let next_minor = if cur.minor().major == to.minor().major {
            self.minors[reach.min(goal)]
        } else {
            let last_of_major = self.last_of_major(cur.minor().major);
            if here < last_of_major { self.minors[reach.min(last_of_major)] } else { self.minors[here + 1] }
        };
        if next_minor == to.minor() {
            to.clone()
        } else {
            self.pick(next_minor, to).expect("every train minor other than the current one has a release")
        }
    }

    /// One warning per gap between neighbouring minors of the train, each of constant
    /// size however many minors or majors are missing, and at most [`MAX_GAP_WARNINGS`]
    /// lines in all: past that, the rest are only counted.
    fn gap_warnings(&self, current: &ChartVersion, target: &ChartVersion) -> Vec<String> {
        let mut gaps = self.minors.windows(2).map(|pair| (pair[0], pair[1])).filter(|&(a, b)| is_gap(a, b));
        let mut warnings: Vec<String> =
            gaps.by_ref().take(MAX_GAP_WARNINGS).map(|(a, b)| gap_warning(a, b, current, target)).collect();
        let unshown = gaps.count();
        if unshown > 0 {
            warnings.pop();
            warnings.push(format!(
                "and {} more gaps in the minors the chart source offers between {current} and {target}: each is crossed as one step; list the source's versions to see them",
                thousands(unshown as u64 + 1)
            ));
        }
        warnings
    }
}

/// More gap warnings than this are summarised: a source with thousands of scattered
/// minors would otherwise bury the plan under them.
const MAX_GAP_WARNINGS: usize = 5;

/// Missing runs up to this long are named one by one (`1.1.x, 1.2.x`); longer ones as a
/// range with a count.
const NAMED_ONE_BY_ONE: u64 = 3;

/// Whether a minor or a major is missing between two neighbouring minors `a < b`.
fn is_gap(a: Minor, b: Minor) -> bool {
    if a.major == b.major { b.minor - a.minor > 1 } else { b.major - a.major > 1 }
}

/// The warning for a gap between neighbouring minors `a < b` (see [`is_gap`]). Being a
/// gap, `a`'s component is at least 2 below `b`'s, so neither `+ 1` nor `- 1` overflows,
/// even at `u64::MAX`.
fn gap_warning(a: Minor, b: Minor, current: &ChartVersion, target: &ChartVersion) -> String {
    if a.major == b.major {
        let missing = missing_run(a.minor + 1, b.minor - 1, "minors", |m| format!("{}.{m}.x", a.major));
        let it = if b.minor - a.minor == 2 { "it" } else { "them" };
        format!(
            "the chart source offers no {missing} between {current} and {target}: the path treats {a} → {b} as one minor step; if the vendor did release {it}, make {it} available and plan again"
        )
    } else {
        let missing = missing_run(a.major + 1, b.major - 1, "majors", |m| format!("{m}.x"));
        format!("the chart source offers no {missing}: the path goes from {a} straight to {b}")
    }
}

/// `first..=last` as text: one by one when the run is short (`1.1.x, 1.2.x`), else as a
/// range with a count (`1.1.x–1.20240100.x (20,240,100 minors)`), so its size does not
/// depend on the numbers.
fn missing_run(first: u64, last: u64, unit: &str, name: impl Fn(u64) -> String) -> String {
    // first ≥ 1 (one past a component), so the count cannot overflow.
    let count = last - first + 1;
    if count <= NAMED_ONE_BY_ONE {
        (first..=last).map(name).collect::<Vec<_>>().join(", ")
    } else {
        format!("{}–{} ({} {unit})", name(first), name(last), thousands(count))
    }
}
