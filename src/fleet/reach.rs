//! The newest version a release can reach under its policy, by the one planner: pure,
//! like everything in [`crate::plan`].
//!
//! "Reachable" means what `helm safe-upgrade RELEASE --to V` would plan rather than refuse:
//! the newest stable version the source offers is tried first, then the next older one,
//! and so on; each one refused is kept with its rule, so the fleet view says why the
//! newest is out of reach. A major the policy crosses behind a confirmation is reachable:
//! the run asks, it does not refuse. Pre-releases are never a fleet's target.

use serde::Serialize;

use crate::plan::{self, Available, Context, Plan, PlanError, UpgradeRequest};
use crate::policy::Policy;
use crate::version::ChartVersion;

/// At most this many versions are tried, newest first: every attempt is a full plan, and a
/// source offering thousands of tags (hostile or not) must not make a fleet of hundreds
/// slow. Beyond it the view says that older versions were not tried.
pub const MAX_TRIED: usize = 20;

/// A version the policy refuses to reach, and why (the planner's rule and words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreachable {
    pub version: ChartVersion,
    /// The planner's rule (`catalog-schema`, `max-minor-step`, …); `bad-request` when the
    /// request itself cannot be planned (an app version that does not read, …).
    pub rule: String,
    pub message: String,
}

/// What the planner says of a release's way forward.
#[derive(Clone, Debug)]
pub struct Reach {
    /// The newest stable version offered, newer than the deployed one (None: up to date).
    pub newest: Option<ChartVersion>,
    /// The plan to the newest version that plans, if any.
    pub plan: Option<Plan>,
    /// The newer versions refused, newest first.
    pub refused: Vec<Unreachable>,
    /// Newer versions left untried ([`MAX_TRIED`]).
    pub untried: usize,
}

/// The stable versions offered newer than `current`, newest first.
fn newer_stable<'a>(available: &'a [Available], current: &ChartVersion) -> Vec<&'a ChartVersion> {
    let mut newer: Vec<&ChartVersion> =
        available.iter().map(|a| &a.version).filter(|v| !v.is_prerelease() && *v > current).collect();
    newer.sort_unstable_by(|a, b| b.cmp(a));
    newer.dedup();
    newer
}

/// The newest stable version offered, when it is newer than `current`.
pub fn newest_offered(available: &[Available], current: &ChartVersion) -> Option<ChartVersion> {
    newer_stable(available, current).first().map(|v| (*v).clone())
}

/// The newest version `current` can reach under `policy` among `available`.
pub fn newest_reachable(policy: &Policy, available: &[Available], current: &ChartVersion, context: &Context) -> Reach {
    let newer = newer_stable(available, current);
    let mut reach = Reach { newest: newer.first().map(|v| (*v).clone()), plan: None, refused: vec![], untried: 0 };
    for (tried, target) in newer.iter().enumerate() {
        if tried == MAX_TRIED {
            reach.untried = newer.len() - tried;
            break;
        }
        let request =
            UpgradeRequest { current: current.clone(), target: (*target).clone(), fast_path: false, devel: false };
        match plan::plan_upgrade(policy, available, &request, context) {
            Ok(plan) => {
                reach.plan = Some(plan);
                break;
            }
            Err(PlanError::Refused(r)) => {
                reach.refused.push(Unreachable { version: (*target).clone(), rule: r.rule, message: r.message })
            }
            Err(PlanError::BadRequest { message, .. }) => {
                reach.refused.push(Unreachable { version: (*target).clone(), rule: "bad-request".into(), message })
            }
        }
    }
    reach
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::presets;

    fn v(s: &str) -> ChartVersion {
        ChartVersion::parse(s).unwrap()
    }

    fn offered(list: &str) -> Vec<Available> {
        list.split(',').map(|s| Available::new(v(s))).collect()
    }

    fn generic() -> Policy {
        presets::all().into_iter().find(|p| p.name == presets::FALLBACK).unwrap()
    }

    #[test]
    fn the_newest_offered_is_the_target_when_it_plans() {
        let reach =
            newest_reachable(&generic(), &offered("1.0.0,1.1.0,1.2.3,1.3.0-rc.1"), &v("1.0.0"), &Context::default());
        assert_eq!(reach.newest, Some(v("1.2.3")), "a pre-release is never the fleet's target");
        let plan = reach.plan.expect("a path");
        assert_eq!(plan.to, v("1.2.3"));
        assert_eq!(plan.hops.len(), 2);
        assert!(reach.refused.is_empty());
    }

    #[test]
    fn up_to_date_has_nothing_newer_and_no_plan() {
        let reach = newest_reachable(&generic(), &offered("1.0.0,1.1.0"), &v("1.1.0"), &Context::default());
        assert_eq!((reach.newest, reach.plan.is_none(), reach.refused.len()), (None, true, 0));
    }

    #[test]
    fn a_refused_newest_is_kept_with_its_rule_and_an_older_one_is_reached() {
        // BSR's preset knows the schema of 1.1.0 only: newer targets whose path crosses an
        // unknown schema are refused by `catalog-schema`.
        let bsr = presets::all().into_iter().find(|p| p.name == "bsr").unwrap();
        let available = offered("1.0.4,1.1.0,1.2.0,1.3.0");
        let reach = newest_reachable(&bsr, &available, &v("1.0.4"), &Context::default());
        assert_eq!(reach.newest, Some(v("1.3.0")));
        let direct = |to: &str| {
            let request = UpgradeRequest { current: v("1.0.4"), target: v(to), fast_path: false, devel: false };
            plan::plan_upgrade(&bsr, &available, &request, &Context::default())
        };
        // The oracle: the same planner asked for each target, newest first.
        let expected = ["1.3.0", "1.2.0", "1.1.0"].into_iter().find(|t| direct(t).is_ok());
        assert_eq!(reach.plan.as_ref().map(|p| p.to.to_string()), expected.map(String::from));
        let refused: Vec<String> = reach.refused.iter().map(|r| r.version.to_string()).collect();
        let expected_refused: Vec<String> =
            ["1.3.0", "1.2.0", "1.1.0"].into_iter().take_while(|t| direct(t).is_err()).map(String::from).collect();
        assert_eq!(refused, expected_refused);
        assert!(reach.refused.iter().all(|r| !r.rule.is_empty() && !r.message.is_empty()));
    }

    #[test]
    fn at_most_twenty_versions_are_tried() {
        // Every newer version is a major away from 1.0.0 with no path between: all refused.
        let list: Vec<String> = (0..50).map(|i| format!("{}.0.0", i + 3)).chain(["1.0.0".into()]).collect();
        let text = presets::text(presets::FALLBACK).unwrap().replace("major: one-at-a-time", "major: refuse");
        assert!(text.contains("major: refuse"));
        let policy = crate::policy::parse(&text, "test policy").unwrap_or_else(|e| panic!("{e}"));
        let reach = newest_reachable(&policy, &offered(&list.join(",")), &v("1.0.0"), &Context::default());
        assert_eq!(reach.refused.len(), MAX_TRIED);
        assert_eq!(reach.untried, 50 - MAX_TRIED);
        assert!(reach.plan.is_none());
    }
}
