//! Property tests of the planner against an independent oracle.
//!
//! For random release trains, policies and requests: every hop obeys the policy, the path
//! is the shortest the policy allows (breadth-first search over every allowed hop), the
//! required stops are on it, an upgrade never steps backwards, and a refusal always carries
//! its rule, message and supported alternative. The oracle re-states the rules from the
//! vendor pages without sharing code with the planner.

mod common;

use std::collections::{BTreeSet, HashMap, VecDeque};

use common::*;
use helm_safe_upgrade::plan::{self, Available, PlanError, RollbackRequest, SnapshotKnowledge, UpgradeRequest};
use helm_safe_upgrade::version::{ChartVersion, Minor};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Rules {
    max_step: u32,
    majors: bool,
    earliest: bool,
    stops: Vec<String>,
    fast_from: Option<u32>,
}

fn policy_text(r: &Rules) -> String {
    let stops: Vec<String> = r.stops.iter().map(|s| format!("\"{s}\"")).collect();
    let fast = match r.fast_from {
        Some(n) => format!("  fast_path:\n    min_minors: {n}\n    procedure: jump\n"),
        None => String::new(),
    };
    format!(
        "name: prop\ndescription: generated\nupgrade:\n  max_minor_step: {}\n  major: {}\n  stop_at: {}\n  required_stops: [{}]\n  procedure: p\n{fast}downgrade:\n  patch: p\n  minor:\n    max_minors_below_newest: {}\n    procedure: p\nprocedures:\n  p:\n    steps:\n      - deploy: {{}}\n      - verify: {{}}\n  jump:\n    downtime: true\n    steps:\n      - deploy: {{version: from, set: {{maintenance: true}}}}\n      - deploy: {{}}\n",
        r.max_step,
        if r.majors { "one-at-a-time" } else { "refuse" },
        if r.earliest { "earliest-patch" } else { "latest-patch" },
        stops.join(", "),
        r.max_step,
    )
}

fn version_strategy() -> impl Strategy<Value = String> {
    (1u64..=3, 0u64..=5, 0u64..=3, prop::bool::weighted(0.1))
        .prop_map(|(ma, mi, pa, pre)| if pre { format!("{ma}.{mi}.{pa}-rc.1") } else { format!("{ma}.{mi}.{pa}") })
}

fn case() -> impl Strategy<Value = (Vec<String>, Rules, usize, usize, bool)> {
    prop::collection::btree_set(version_strategy(), 2..24).prop_flat_map(|set| {
        let list: Vec<String> = set.into_iter().collect();
        let n = list.len();
        let stops = prop::collection::vec(
            prop_oneof![
                (0..n).prop_map({
                    let list = list.clone();
                    move |i| list[i].clone()
                }),
                (1u64..=3, 0u64..=5).prop_map(|(a, b)| format!("{a}.{b}")),
            ],
            0..3,
        );
        let rules = (1u32..=3, any::<bool>(), any::<bool>(), stops, prop::option::of(0u32..=3)).prop_map(
            |(max_step, majors, earliest, stops, fast)| Rules {
                max_step,
                majors,
                earliest,
                stops,
                fast_from: fast.map(|f| max_step + 1 + f),
            },
        );
        (Just(list), rules, 0..n, 0..n, any::<bool>())
    })
}

/// The oracle's view of one upgrade request.
struct Oracle {
    current: ChartVersion,
    target: ChartVersion,
    nodes: Vec<ChartVersion>,
    minors: Vec<Minor>,
    rules: Rules,
    exact_stops: Vec<ChartVersion>,
    minor_stops: Vec<Minor>,
}

impl Oracle {
    fn new(list: &[ChartVersion], current: &ChartVersion, target: &ChartVersion, rules: &Rules) -> Self {
        let nodes: Vec<ChartVersion> = list
            .iter()
            .filter(|v| *v > current && *v <= target && (*v == target || !v.is_prerelease()))
            .cloned()
            .collect();
        let mut minors: BTreeSet<Minor> = nodes.iter().map(|v| v.minor()).collect();
        minors.insert(current.minor());
        let mut exact_stops = Vec::new();
        let mut minor_stops = Vec::new();
        for s in &rules.stops {
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() == 2 {
                minor_stops.push(Minor { major: parts[0].parse().unwrap(), minor: parts[1].parse().unwrap() });
            } else {
                exact_stops.push(v(s));
            }
        }
        Oracle {
            current: current.clone(),
            target: target.clone(),
            nodes,
            minors: minors.into_iter().collect(),
            rules: rules.clone(),
            exact_stops,
            minor_stops,
        }
    }

    fn pos(&self, m: Minor) -> usize {
        self.minors.iter().position(|x| *x == m).unwrap()
    }

    /// Is `a → b` one hop the policy allows?
    fn legal(&self, a: &ChartVersion, b: &ChartVersion) -> Result<(), String> {
        if b <= a {
            return Err(format!("{a} → {b} does not move forward"));
        }
        if !self.nodes.contains(b) {
            return Err(format!("{b} is not an allowed stop"));
        }
        if a.minor().major == b.minor().major {
            let step = self.pos(b.minor()) - self.pos(a.minor());
            if step > self.rules.max_step as usize {
                return Err(format!("{a} → {b} advances {step} minors, more than {}", self.rules.max_step));
            }
        } else {
            if !self.rules.majors {
                return Err(format!("{a} → {b} crosses a major"));
            }
            let last_of_major = self.minors.iter().rfind(|m| m.major == a.minor().major).unwrap();
            if a.minor() != *last_of_major || self.pos(b.minor()) != self.pos(a.minor()) + 1 {
                return Err(format!("{a} → {b} crosses a major other than from its last minor to the next"));
            }
        }
        if let Some(s) = self.exact_stops.iter().find(|s| *s > a && *s < b) {
            return Err(format!("{a} → {b} skips the required stop {s}"));
        }
        if let Some(m) = self.minor_stops.iter().find(|m| **m > a.minor() && **m < b.minor()) {
            return Err(format!("{a} → {b} skips the required minor {m}"));
        }
        Ok(())
    }

    /// Fewest hops from current to target over allowed hops, if any path exists.
    fn shortest(&self) -> Option<usize> {
        let mut dist: HashMap<ChartVersion, usize> = HashMap::new();
        let mut queue = VecDeque::from([self.current.clone()]);
        dist.insert(self.current.clone(), 0);
        while let Some(a) = queue.pop_front() {
            if a == self.target {
                return Some(dist[&a]);
            }
            for b in &self.nodes {
                if !dist.contains_key(b) && self.legal(&a, b).is_ok() {
                    dist.insert(b.clone(), dist[&a] + 1);
                    queue.push_back(b.clone());
                }
            }
        }
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn upgrade_plans_obey_the_policy_and_are_shortest((list, rules, ci, ti, fast) in case()) {
        let policy = policy_yaml(&policy_text(&rules));
        let versions: Vec<ChartVersion> = list.iter().map(|s| v(s)).collect();
        let (current, target) = (versions[ci].clone(), versions[ti].clone());
        let available: Vec<Available> = versions.iter().map(|v| Available { version: v.clone(), app_version: None }).collect();
        let request = UpgradeRequest { current: current.clone(), target: target.clone(), fast_path: fast, devel: true };
        let result = plan::plan_upgrade(&policy, &available, &request, &context());
        let oracle = Oracle::new(&versions, &current, &target, &rules);

        match result {
            Ok(plan) => {
                prop_assert!(target >= current, "planned a downgrade as an upgrade");
                if target == current {
                    prop_assert!(plan.hops.is_empty());
                    return Ok(());
                }
                let mut at = current.clone();
                for hop in &plan.hops {
                    prop_assert_eq!(&hop.from, &at, "hops do not chain");
                    prop_assert!(hop.to > hop.from, "hop {} → {} steps backwards", hop.from, hop.to);
                    at = hop.to.clone();
                }
                prop_assert_eq!(&at, &target, "path does not end at the target");
                if fast {
                    prop_assert_eq!(plan.hops.len(), 1);
                    let fast_from = rules.fast_from.expect("fast path planned without one in the policy");
                    prop_assert_eq!(current.minor().major, target.minor().major);
                    prop_assert!(target.minor().minor - current.minor().minor >= u64::from(fast_from));
                    return Ok(());
                }
                for hop in &plan.hops {
                    if let Err(why) = oracle.legal(&hop.from, &hop.to) {
                        return Err(TestCaseError::fail(format!("illegal hop: {why}; plan {:?}", path(&plan))));
                    }
                }
                let shortest = oracle.shortest();
                prop_assert_eq!(Some(plan.hops.len()), shortest, "path {:?} is not the shortest", path(&plan));
                for s in &oracle.exact_stops {
                    if *s > current && *s < target {
                        prop_assert!(plan.hops.iter().any(|h| &h.to == s), "required stop {} missing", s);
                    }
                }
                for m in &oracle.minor_stops {
                    if *m > current.minor() && *m < target.minor() {
                        prop_assert!(plan.hops.iter().any(|h| h.to.minor() == *m), "required minor {} missing", m);
                    }
                }
            }
            Err(PlanError::Refused(r)) => {
                prop_assert!(!r.rule.is_empty() && !r.message.is_empty() && !r.supported.is_empty(), "{:?}", r);
                match r.rule.as_str() {
                    "major" => prop_assert!(!rules.majors && target.minor().major > current.minor().major),
                    "fast-path" => prop_assert!(fast),
                    _ => prop_assert_eq!(oracle.shortest(), None, "refused ({:?}) although a path exists", r),
                }
            }
            Err(PlanError::BadRequest { message, hint }) => {
                prop_assert!(!message.is_empty() && !hint.is_empty());
                prop_assert!(target < current, "unexpected bad request: {}", message);
            }
        }
    }

    #[test]
    fn rollbacks_stay_in_the_window_and_always_explain_refusals(
        (list, rules, ci, ti, _) in case(),
        newer in 0u64..=2,
    ) {
        let policy = policy_yaml(&policy_text(&rules));
        let versions: Vec<ChartVersion> = list.iter().map(|s| v(s)).collect();
        let (current, target) = (versions[ci].clone(), versions[ti].clone());
        let newest = v(&format!("{}.{}.0", current.minor().major, current.minor().minor + newer));
        let newest = if newest > current { newest } else { current.clone() };
        let available: Vec<Available> = versions.iter().map(|v| Available { version: v.clone(), app_version: None }).collect();
        let request = RollbackRequest {
            current: current.clone(),
            target: Some(target.clone()),
            newest_ever: newest.clone(),
            deployed_before: vec![],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        match plan::plan_rollback(&policy, &available, &request, &context()) {
            Ok(plan) => {
                prop_assert!(target < current);
                prop_assert_eq!(plan.hops.len(), 1);
                prop_assert_eq!(&plan.hops[0].to, &target);
                prop_assert_eq!(target.minor().major, newest.minor().major, "crossed a major downwards");
                prop_assert!(newest.minor().minor - target.minor().minor <= u64::from(rules.max_step), "outside the window");
            }
            Err(PlanError::Refused(r)) => {
                prop_assert!(!r.rule.is_empty() && !r.message.is_empty() && !r.supported.is_empty(), "{:?}", r);
                let outside = target.minor().major != newest.minor().major
                    || newest.minor().minor - target.minor().minor > u64::from(rules.max_step);
                prop_assert!(outside, "refused a rollback inside the window: {:?}", r);
            }
            Err(PlanError::BadRequest { .. }) => prop_assert!(target >= current),
        }
    }
}
