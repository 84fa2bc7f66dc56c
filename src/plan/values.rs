//! The policy's value rules along a path: which hop crosses which rule, what the carried
//! values become, and what is refused before anything changes (see `policy::values`).

use serde_json::Value;

use super::{Available, Direction, Hop, PlanError, refuse};
use crate::policy::Policy;
use crate::policy::values::{ApplyError, KeyPath, ValueChange, ValueRule, apply, missing};
use crate::version::ChartVersion;

/// What the planner knows of the release's values: a live run's carried values and the
/// paths the operator's `-f`/`--set` set. Offline there is none.
#[derive(Clone, Debug, Default)]
pub struct ValuesInput {
    /// The user-supplied values the walk carries to every hop (before the rules).
    pub carried: Value,
    /// The paths the operator's `-f` files and `--set*` lines set, applied by helm over
    /// the carried values at every hop.
    pub operator_sets: Vec<KeyPath>,
}

/// The carried values a hop deploys: `start`, with the rules of every hop up to and
/// including `hop` applied in order. The executor uses this too, so what it deploys is
/// what the plan checked.
pub fn carried_at(hops: &[Hop], hop: usize, direction: Direction, start: &Value) -> Result<Value, ApplyError> {
    let mut values = start.clone();
    for h in &hops[..=hop] {
        for rule in in_order(&h.values, direction) {
            apply_in(direction, rule, &mut values)?;
        }
    }
    Ok(values)
}

/// The carried values a deploy of `version` within hop `hop` deploys: the hop's own rules
/// apply to its target only. A procedure's deploy of the hop's start (BSR's maintenance
/// mode at `from`) deploys the older chart, which reads the keys as they were before the
/// hop: a `rename` the target needs would hide a value from it.
pub fn carried_for(
    hops: &[Hop],
    hop: usize,
    version: &ChartVersion,
    direction: Direction,
    start: &Value,
) -> Result<Value, ApplyError> {
    match carried_hop(hops, hop, version) {
        Some(at) => carried_at(hops, at, direction, start),
        None => Ok(start.clone()),
    }
}

/// Which hop's carried values a deploy of `version` within hop `hop` deploys (None: the
/// values the run started with), as [`carried_for`] computes them.
pub fn carried_hop(hops: &[Hop], hop: usize, version: &ChartVersion) -> Option<usize> {
    if *version == hops[hop].to { Some(hop) } else { hop.checked_sub(1) }
}

/// A hop's rules in the order they apply: by version going up, undone newest first going
/// back down.
fn in_order(rules: &[ValueRule], direction: Direction) -> Box<dyn Iterator<Item = &ValueRule> + '_> {
    match direction {
        Direction::Upgrade => Box::new(rules.iter()),
        Direction::Rollback => Box::new(rules.iter().rev()),
    }
}

/// A rule applied going up; going back down, a rename is undone (the older chart reads
/// the old key) and the other rules are left (see [`attach`]'s warnings).
fn apply_in(direction: Direction, rule: &ValueRule, values: &mut Value) -> Result<Option<String>, ApplyError> {
    match (direction, &rule.change) {
        (Direction::Upgrade, _) => apply(rule, values),
        (Direction::Rollback, ValueChange::Rename { from, to }) => {
            let back = ValueRule { change: ValueChange::Rename { from: to.clone(), to: from.clone() }, ..rule.clone() };
            apply(&back, values)
        }
        (Direction::Rollback, _) => Ok(None),
    }
}

/// Give each hop the rules it crosses, check them against the values when they are
/// known, and return warnings for what cannot be checked or undone.
pub(crate) fn attach(
    policy: &Policy,
    hops: &mut [Hop],
    direction: Direction,
    values: Option<&ValuesInput>,
    available: &[Available],
) -> Result<Vec<String>, PlanError> {
    let mut warnings = Vec::new();
    let mut carried = values.map(|v| v.carried.clone());
    for (index, hop) in hops.iter_mut().enumerate() {
        let (low, high) = match direction {
            Direction::Upgrade => (&hop.from, &hop.to),
            Direction::Rollback => (&hop.to, &hop.from),
        };
        hop.values = policy.values.iter().filter(|r| r.crossed_by(low, high)).cloned().collect();
        let at = format!("hop {} ({} → {})", index + 1, hop.from, hop.to);
        for rule in in_order(&hop.values, direction) {
            if !available.iter().any(|a| a.version == rule.version) {
                return Err(refuse(
                    "values-version",
                    format!(
                        "policy {}'s values rule `{}` is for {}, which the chart source does not offer ({at})",
                        policy.name,
                        rule.describe(),
                        rule.version
                    ),
                    "fix the policy: a values rule names the first version that needs it, as the chart source lists it",
                ));
            }
            let Some(carried) = carried.as_mut() else {
                if direction == Direction::Upgrade && matches!(rule.change, ValueChange::Require(_)) {
                    warnings.push(format!(
                        "`{}` ({} on) is not checked offline: a live run checks it against the release's values",
                        rule.describe(),
                        rule.version
                    ));
                }
                continue;
            };
            apply_in(direction, rule, carried).map_err(|e| {
                refuse(
                    "values-rename",
                    format!("{at}: policy {} says `{}` from {}: {e}", policy.name, rule.describe(), rule.version),
                    "keep one of the two keys in the release's values (with helm, or with -f/--set on this run), then plan again",
                )
            })?;
            if direction == Direction::Rollback {
                warnings.extend(not_undone(rule, &at));
                continue;
            }
            let operator_sets = values.map(|v| v.operator_sets.as_slice()).unwrap_or_default();
            if let Some(path) = missing(rule, carried, operator_sets) {
                return Err(refuse(
                    "values-required",
                    format!("{at}: {} requires `{path}`: {}", rule.version, requirement(rule)),
                    format!("set it on this run: --set {path}=VALUE, or a -f file with it"),
                ));
            }
        }
    }
    Ok(warnings)
}

/// The vendor's words for a rule, or a plain description.
fn requirement(rule: &ValueRule) -> String {
    rule.message.clone().unwrap_or_else(|| format!("the policy says `{}` from {} on", rule.describe(), rule.version))
}

/// Going back across a rule that is not a rename: what the older version gets.
fn not_undone(rule: &ValueRule, at: &str) -> Option<String> {
    match &rule.change {
        ValueChange::Remove(path) => Some(format!(
            "{at}: {} dropped `{path}` from the values; the older version is deployed without it (helm history keeps the values it ran with)",
            rule.version
        )),
        ValueChange::Set(_) => Some(format!(
            "{at}: `{}` from {} stays in the values the older version gets",
            rule.describe(),
            rule.version
        )),
        ValueChange::Require(_) | ValueChange::Rename { .. } => None,
    }
}
