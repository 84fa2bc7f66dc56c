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

/// A minor as the oracle tests draw it: mostly small, sometimes date-like or at the top
/// of u64, where `+ 1` overflows and a range over the numbers never ends.
fn minor_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 0u64..=5,
        1 => Just(20_240_101u64),
        1 => Just(u64::MAX - 1),
        1 => Just(u64::MAX),
    ]
}

fn version_strategy() -> impl Strategy<Value = String> {
    (1u64..=3, minor_strategy(), 0u64..=3, prop::bool::weighted(0.1))
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
                (1u64..=3, minor_strategy()).prop_map(|(a, b)| format!("{a}.{b}")),
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
        let newest_minor = current.minor().minor.saturating_add(newer);
        let newest = v(&format!("{}.{newest_minor}.0", current.minor().major));
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

/// Hostile inputs: whatever a chart source lists, whatever policy the loader accepts and
/// whatever is asked, the planner answers with a plan, a refusal or a bad-request error,
/// quickly, and with output bounded by the size of its input, never by the numeric
/// distance between versions (a minor of 20240101 once meant 272 MB of warnings).
mod hostile {
    use std::time::{Duration, Instant};

    use helm_safe_upgrade::plan::{HopKind, Plan, Strategy as PlanStrategy};
    use helm_safe_upgrade::policy::{self, PolicyError};

    use super::*;

    // Several strategies below are boxed: deeply nested strategy types need more stack
    // than a test thread has in a debug build.

    /// Per planning call. Real calls on these inputs take microseconds; the bound is
    /// loose for a debug build on a busy 2-core machine.
    const PER_CASE: Duration = Duration::from_secs(1);

    /// A version component: small with weight `small_weight` against 5 for the rest:
    /// date-like, near 10^11, at the top of u64, or any.
    fn component(small: std::ops::Range<u64>, small_weight: u32) -> BoxedStrategy<u64> {
        prop_oneof![
            small_weight => small,
            1 => 20_240_101u64..20_240_104,
            1 => 99_999_999_999u64..100_000_000_002,
            1 => Just(u64::MAX - 1),
            1 => Just(u64::MAX),
            1 => any::<u64>(),
        ]
        .boxed()
    }

    /// How one version is written: `v` prefix, pre-release, build metadata with `+` or
    /// OCI's `_`. The same numbers written two ways are the same version, or (build
    /// metadata added) a version of equal precedence.
    fn spelling() -> impl Strategy<Value = (bool, Option<u8>, Option<(u8, bool)>)> {
        (
            prop::bool::weighted(0.2),
            prop::option::weighted(0.15, 0u8..3),
            prop::option::weighted(0.2, (0u8..2, any::<bool>())),
        )
    }

    fn spell(
        (major, minor, patch): (u64, u64, u64),
        (v, pre, build): (bool, Option<u8>, Option<(u8, bool)>),
    ) -> String {
        let mut text = format!("{}{major}.{minor}.{patch}", if v { "v" } else { "" });
        if let Some(n) = pre {
            text.push_str(&format!("-rc.{n}"));
        }
        if let Some((n, underscore)) = build {
            text.push_str(&format!("{}b.{n}", if underscore { '_' } else { '+' }));
        }
        text
    }

    fn numbers() -> impl Strategy<Value = (u64, u64, u64)> {
        // Huge majors are rarer than huge minors: most paths should stay within a major.
        (component(1..4, 20), component(0..6, 10), component(0..4, 20))
    }

    fn any_version() -> impl Strategy<Value = String> {
        (numbers(), spelling()).prop_map(|(n, s)| spell(n, s))
    }

    /// 1 to 48 versions: up to 16 numbers, each written 1 to 3 ways.
    fn offered() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec((numbers(), prop::collection::vec(spelling(), 1..=3)), 1..=16).prop_map(|entries| {
            entries.into_iter().flat_map(|(n, ways)| ways.into_iter().map(move |s| spell(n, s))).collect()
        })
    }

    /// A version the request names: usually one of the list, sometimes any.
    fn named(list: &[String]) -> BoxedStrategy<String> {
        let list = list.to_vec();
        prop_oneof![6 => (0..list.len()).prop_map(move |i| list[i].clone()), 1 => any_version()].boxed()
    }

    #[derive(Clone, Debug)]
    struct HostilePolicy {
        max_step: u32,
        majors: bool,
        earliest: bool,
        stops: Vec<String>,
        snapshot_first: bool,
        fast_from: Option<u32>,
        patch: bool,
        window: Option<u32>,
        restore: bool,
        checks: usize,
        down_needs_schema: bool,
        catalog: Option<String>,
        release_notes: bool,
    }

    impl HostilePolicy {
        /// What the loader must decide, restated from its documented rules.
        fn valid(&self) -> bool {
            self.max_step > 0 && self.fast_from.is_none_or(|f| f > self.max_step) && self.window != Some(0)
        }

        fn yaml(&self) -> String {
            let quoted: Vec<String> = self.stops.iter().map(|s| format!("\"{s}\"")).collect();
            let mut y = format!(
                "name: hostile\ndescription: generated\n{}upgrade:\n  max_minor_step: {}\n  stop_at: {}\n  major: {}\n  required_stops: [{}]\n  snapshot_first: {}\n  procedure: up\n",
                if self.release_notes { "release_notes: \"https://example.invalid/notes/{to}\"\n" } else { "" },
                self.max_step,
                if self.earliest { "earliest-patch" } else { "latest-patch" },
                if self.majors { "one-at-a-time" } else { "refuse" },
                quoted.join(", "),
                self.snapshot_first,
            );
            if let Some(n) = self.fast_from {
                y.push_str(&format!("  fast_path:\n    min_minors: {n}\n    procedure: jump\n"));
            }
            let mut downgrade = String::new();
            if self.patch {
                downgrade.push_str("  patch: up\n");
            }
            if let Some(w) = self.window {
                downgrade.push_str(&format!("  minor:\n    max_minors_below_newest: {w}\n    procedure: down\n"));
            }
            if self.restore {
                downgrade.push_str("  restore: restore\n  data_loss_warning: data written since is lost\n");
            }
            if downgrade.is_empty() {
                y.push_str("downgrade: {}\n");
            } else {
                y.push_str(&format!("downgrade:\n{downgrade}"));
            }
            y.push_str("snapshot:\n  command: [snap, \"{release}\", \"{from}\"]\n  message: snapshot before {to}\n");
            if self.checks > 0 {
                y.push_str("checks:\n");
                for i in 0..self.checks {
                    y.push_str(&format!("  - name: c{i}\n    argv: [check, \"{{to}}\", \"{{to_app_version}}\"]\n"));
                }
            }
            let schema = if self.down_needs_schema { ", \"{to_schema}\"" } else { "" };
            y.push_str(&format!(
                "procedures:\n  up:\n    steps:\n      - deploy: {{}}\n      - verify\n  jump:\n    downtime: true\n    steps:\n      - deploy: {{version: from, set: {{maintenance: true}}}}\n      - snapshot\n      - deploy: {{version: to}}\n      - verify\n  down:\n    steps:\n      - deploy: {{}}\n      - wait-gone\n      - run: {{name: migrate, argv: [tool, \"--from={{from}}\", \"--to={{to}}\"{schema}]}}\n      - verify\n  restore:\n    downtime: true\n    steps:\n      - confirm: {{message: \"restore the snapshot of {{to}} for {{release}}\"}}\n      - deploy: {{}}\n"
            ));
            if let Some(version) = &self.catalog {
                y.push_str(&format!(
                    "catalog:\n  - version: \"{version}\"\n    schema: 7\n    app_version: \"app-{version}\"\n"
                ));
            }
            y
        }
    }

    /// A fast path's `min_minors`: above the step (what the loader asks) or any number.
    #[derive(Clone, Debug)]
    enum FastFrom {
        AboveStep(u32),
        Exactly(u32),
    }

    fn rules(list: &[String]) -> BoxedStrategy<HostilePolicy> {
        let listed = list.to_vec();
        let stop = prop_oneof![
            named(list),
            (0..list.len()).prop_map({
                let listed = listed.clone();
                move |i| {
                    let v = v(&listed[i]);
                    format!("{}.{}", v.minor().major, v.minor().minor)
                }
            }),
            (component(1..4, 20), component(0..6, 10)).prop_map(|(a, b)| format!("{a}.{b}")),
        ];
        // Mostly policies the loader accepts, and some it must refuse: a step or a window
        // of 0, a fast path that could never save a hop.
        let step = prop_oneof![1 => Just(0u32), 24 => 1u32..=4, 2 => Just(u32::MAX)];
        let fast = prop::option::of(prop_oneof![
            6 => (1u32..=3).prop_map(FastFrom::AboveStep),
            1 => (0u32..=6).prop_map(FastFrom::Exactly),
        ]);
        let window = prop::option::of(prop_oneof![1 => Just(0u32), 16 => 1u32..=3, 2 => Just(u32::MAX)]);
        (
            (step, any::<bool>(), any::<bool>(), prop::collection::vec(stop, 0..=3), any::<bool>(), fast),
            (
                any::<bool>(),
                window,
                any::<bool>(),
                0usize..=2,
                any::<bool>(),
                prop::option::of(named(list)),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (max_step, majors, earliest, stops, snapshot_first, fast_from),
                    (patch, window, restore, checks, down_needs_schema, catalog, release_notes),
                )| HostilePolicy {
                    max_step,
                    majors,
                    earliest,
                    stops,
                    snapshot_first,
                    fast_from: fast_from.map(|f| match f {
                        FastFrom::AboveStep(n) => max_step.saturating_add(n),
                        FastFrom::Exactly(n) => n,
                    }),
                    patch,
                    window,
                    restore,
                    checks,
                    down_needs_schema,
                    catalog,
                    release_notes,
                },
            )
            .boxed()
    }

    /// The policy, if the loader accepts it; a refusal must be the clean, located kind.
    fn load(rules: &HostilePolicy) -> Result<Option<policy::Policy>, TestCaseError> {
        match policy::parse(&rules.yaml(), "generated") {
            Ok(policy) => {
                prop_assert!(rules.valid(), "the loader accepted an invalid policy:\n{}", rules.yaml());
                Ok(Some(policy))
            }
            Err(PolicyError::Invalid(invalid)) => {
                prop_assert!(!rules.valid(), "the loader refused a valid policy: {invalid}\n{}", rules.yaml());
                prop_assert!(!invalid.message.is_empty() && invalid.line >= 1);
                Ok(None)
            }
            Err(other) => Err(TestCaseError::fail(format!("unexpected loader error: {other}"))),
        }
    }

    struct Input {
        available: Vec<Available>,
        /// The longest version text anywhere in the input.
        longest: usize,
        policy_len: usize,
    }

    impl Input {
        fn new(list: &[String], named: &[&String], policy_len: usize) -> Input {
            let longest = list.iter().chain(named.iter().copied()).map(String::len).max().unwrap_or(0);
            Input { available: versions(&list.join(",")), longest, policy_len }
        }

        fn offers(&self, version: &ChartVersion) -> bool {
            self.available.iter().any(|a| &a.version == version)
        }

        /// What a plan or an error may cost in text: a constant times what went in, never
        /// anything that grows with the numbers in the versions. A hop carries the
        /// policy's steps filled with a few versions, a path lists each hop once more, and
        /// gap warnings are at most 5, each of constant size.
        fn text_budget(&self, hops: usize) -> usize {
            let unit = self.policy_len + 16 * self.longest + 512;
            8 * (hops + self.available.len() + 2) * unit
        }
    }

    /// Times one planning call and checks the kind of answer every input must get.
    fn timed(call: impl FnOnce() -> Result<Plan, PlanError>) -> Result<Result<Plan, PlanError>, TestCaseError> {
        let started = Instant::now();
        let result = call();
        let took = started.elapsed();
        prop_assert!(took < PER_CASE, "planning took {took:?}");
        Ok(result)
    }

    fn check_error(error: &PlanError, input: &Input) -> Result<(), TestCaseError> {
        let size = match error {
            PlanError::Refused(r) => {
                prop_assert!(!r.rule.is_empty() && !r.message.is_empty() && !r.supported.is_empty(), "{:?}", r);
                r.message.len() + r.supported.len()
            }
            PlanError::BadRequest { message, hint } => {
                prop_assert!(!message.is_empty() && !hint.is_empty());
                message.len() + hint.len()
            }
        };
        prop_assert!(size <= input.text_budget(0), "{size} bytes of error for {} versions", input.available.len());
        Ok(())
    }

    fn check_plan_size(plan: &Plan, input: &Input) -> Result<(), TestCaseError> {
        prop_assert!(plan.hops.len() <= input.available.len() + 1, "{} hops", plan.hops.len());
        let json = serde_json::to_string(plan).expect("a plan serialises");
        prop_assert!(
            json.len() <= input.text_budget(plan.hops.len()),
            "{} bytes of JSON for {} versions and {} hops",
            json.len(),
            input.available.len(),
            plan.hops.len()
        );
        Ok(())
    }

    /// Two named versions, usually in the order `(lower, higher)`: a request the wrong
    /// way round is a bad request, worth testing but not in most cases.
    fn ordered(list: &[String], lower_first: bool) -> BoxedStrategy<(String, String)> {
        (named(list), named(list), prop::bool::weighted(0.85))
            .prop_map(move |(a, b, keep_order)| {
                let a_lower = v(&a) <= v(&b);
                if keep_order && a_lower != lower_first { (b, a) } else { (a, b) }
            })
            .boxed()
    }

    fn upgrade_case() -> impl Strategy<Value = (Vec<String>, HostilePolicy, (String, String), bool, bool)> {
        offered().prop_flat_map(|list| {
            (rules(&list), ordered(&list, true), prop::bool::weighted(0.3), any::<bool>())
                .prop_map(move |(rules, ends, fast, devel)| (list.clone(), rules, ends, fast, devel))
        })
    }

    type RollbackCase =
        (Vec<String>, HostilePolicy, (String, Option<String>), Option<String>, Vec<usize>, SnapshotKnowledge);

    fn rollback_case() -> impl Strategy<Value = RollbackCase> {
        offered().prop_flat_map(|list| {
            let n = list.len();
            let snapshot = prop_oneof![
                Just(SnapshotKnowledge::Unknown),
                Just(SnapshotKnowledge::None),
                named(&list).prop_map(|s| SnapshotKnowledge::TakenAt(v(&s))),
            ];
            let ends = (ordered(&list, false), prop::bool::weighted(0.8))
                .prop_map(|((current, target), named)| (current, named.then_some(target)));
            (rules(&list), ends, prop::option::of(named(&list)), prop::collection::vec(0..n, 0..=3), snapshot).prop_map(
                move |(rules, ends, newest, deployed, snapshot)| {
                    (list.clone(), rules, ends, newest, deployed, snapshot)
                },
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn hostile_upgrades_get_a_bounded_answer((list, rules, (current, target), fast_path, devel) in upgrade_case()) {
            let Some(policy) = load(&rules)? else { return Ok(()) };
            let input = Input::new(&list, &[&current, &target], policy.text.len());
            let (current, target) = (v(&current), v(&target));
            let request = UpgradeRequest { current: current.clone(), target: target.clone(), fast_path, devel };
            match timed(|| plan::plan_upgrade(&policy, &input.available, &request, &context()))? {
                Ok(plan) => {
                    check_plan_size(&plan, &input)?;
                    prop_assert_eq!(&plan.from, &current);
                    prop_assert_eq!(&plan.to, &target);
                    if target == current {
                        prop_assert!(plan.hops.is_empty());
                        return Ok(());
                    }
                    prop_assert!(!plan.hops.is_empty());
                    let mut at = current.clone();
                    for hop in &plan.hops {
                        prop_assert_eq!(&hop.from, &at, "hops do not chain");
                        prop_assert!(hop.to > hop.from, "{} → {} is not upwards", hop.from, hop.to);
                        prop_assert!(input.offers(&hop.to), "{} is not offered", hop.to);
                        prop_assert!(hop.to == target || !hop.to.is_prerelease(), "stops at the pre-release {}", hop.to);
                        at = hop.to.clone();
                    }
                    prop_assert_eq!(&at, &target, "the path does not end at the target");
                    if plan.strategy == PlanStrategy::FastPath {
                        prop_assert!(fast_path && plan.hops.len() == 1);
                    }
                    if !rules.majors {
                        prop_assert!(plan.hops.iter().all(|h| h.kind != HopKind::Major));
                    }
                }
                Err(e) => {
                    check_error(&e, &input)?;
                    if let PlanError::BadRequest { .. } = e {
                        prop_assert!(
                            target < current || (target.is_prerelease() && !devel) || !input.offers(&target),
                            "unexpected bad request: {e}"
                        );
                    }
                }
            }
        }

        #[test]
        fn hostile_rollbacks_get_a_bounded_answer(
            (list, rules, (current, target), newest_hint, deployed, snapshot) in rollback_case()
        ) {
            let Some(policy) = load(&rules)? else { return Ok(()) };
            let mut named: Vec<&String> = vec![&current];
            named.extend(target.iter().chain(newest_hint.iter()));
            let input = Input::new(&list, &named, policy.text.len());
            let current = v(&current);
            let target = target.as_deref().map(v);
            // The newest version ever deployed is never below the deployed one.
            let newest = newest_hint.as_deref().map(v).filter(|n| *n > current).unwrap_or_else(|| current.clone());
            let deployed_before: Vec<ChartVersion> = deployed.iter().map(|&i| v(&list[i])).collect();
            let request = RollbackRequest {
                current: current.clone(),
                target: target.clone(),
                newest_ever: newest.clone(),
                deployed_before: deployed_before.clone(),
                snapshot: snapshot.clone(),
                // Deploying the target by a revision of helm's history changes one step's
                // method, never the path: exercised whenever there is a history.
                by_revision: (!deployed.is_empty()).then_some(deployed.len() as u64),
            };
            match timed(|| plan::plan_rollback(&policy, &input.available, &request, &context()))? {
                Ok(plan) => {
                    check_plan_size(&plan, &input)?;
                    prop_assert_eq!(plan.hops.len(), 1);
                    let hop = &plan.hops[0];
                    prop_assert_eq!(&hop.from, &current);
                    prop_assert_eq!(&hop.to, &plan.to);
                    prop_assert!(plan.to < current, "a rollback to {} goes up", plan.to);
                    match &target {
                        Some(t) => prop_assert_eq!(&plan.to, t),
                        None => prop_assert!(
                            input.offers(&plan.to) || deployed_before.contains(&plan.to),
                            "default target {} is neither offered nor deployed before", plan.to
                        ),
                    }
                    match hop.kind {
                        HopKind::PatchDowngrade | HopKind::MinorDowngrade => {
                            let (to, top) = (plan.to.minor(), newest.minor());
                            prop_assert_eq!(to.major, top.major, "crossed a major downwards");
                            let below = top.minor - to.minor;
                            let window = rules.window.map_or(0, u64::from);
                            prop_assert!(below == 0 || below <= window, "{} minors below {}, window {:?}", below, newest, rules.window);
                        }
                        HopKind::Restore => {
                            prop_assert!(rules.restore && snapshot != SnapshotKnowledge::None);
                            prop_assert_eq!(plan.strategy, PlanStrategy::Restore);
                        }
                        other => prop_assert!(false, "a rollback hop of kind {:?}", other),
                    }
                }
                Err(e) => {
                    check_error(&e, &input)?;
                    if let (PlanError::BadRequest { .. }, Some(t)) = (&e, &target) {
                        prop_assert!(*t >= current || !input.offers(t), "unexpected bad request: {e}");
                    }
                }
            }
        }
    }
}

/// Policy text with placeholders and literal braces, through the loader and the planner:
/// what validation accepts is filled exactly as written (`{{` and `}}` are one brace, a
/// placeholder its value), and an escaped text comes back unchanged.
mod templates {
    use helm_safe_upgrade::plan::{self, Step, UpgradeRequest};
    use helm_safe_upgrade::policy::{self, template};
    use proptest::prelude::*;

    use super::common::{context, v, versions};

    /// Placeholders with the value a plan from 1.0.0 to 1.1.0 of release `rel` (namespace
    /// `ns`, chart `chart`, [`context`]) gives them.
    const VALUES: &[(&str, &str)] = &[
        ("release", "rel"),
        ("namespace", "ns"),
        ("chart", "chart"),
        ("from", "1.0.0"),
        ("to", "1.1.0"),
        ("var.img", "reg/img"),
    ];

    #[derive(Clone, Debug)]
    enum Part {
        Text(String),
        Placeholder(usize),
    }

    /// Text an operator could type: heavy on braces and the characters YAML and JSON
    /// care about, with some outside ASCII; no control characters.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(vec!['{', '}']),
                4 => prop::char::range(' ', '~'),
                1 => prop::sample::select(vec!['é', '世', '🦀', '\u{301}', '·']),
            ],
            0..24,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn parts() -> impl Strategy<Value = Vec<Part>> {
        prop::collection::vec(
            prop_oneof![text().prop_map(Part::Text), (0..VALUES.len()).prop_map(Part::Placeholder)],
            0..6,
        )
    }

    /// Text with pieces of templates in it, right and wrong.
    fn text_with_placeholders() -> impl Strategy<Value = String> {
        let pieces = ["{release}", "{to}", "{var.img}", "{nope}", "{var.x}", "{}", "{{", "}}", "{", "}", "{{{to}}}"];
        prop::collection::vec(
            prop_oneof![
                2 => prop::sample::select(pieces.to_vec()).prop_map(str::to_string),
                3 => text(),
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat())
    }

    /// The template language restated, for [`VALUES`]' placeholders: reading left to
    /// right, `{{` is `{`, `}}` is `}`, `{NAME}` is NAME's value, any other brace makes
    /// the text invalid (None). Written without the tool's scanner.
    fn oracle(text: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        'reading: while let Some(c) = rest.chars().next() {
            for (escape, brace) in [("{{", "{"), ("}}", "}")] {
                if let Some(after) = rest.strip_prefix(escape) {
                    out.push_str(brace);
                    rest = after;
                    continue 'reading;
                }
            }
            for (name, value) in VALUES {
                if let Some(after) = rest.strip_prefix(&format!("{{{name}}}")) {
                    out.push_str(value);
                    rest = after;
                    continue 'reading;
                }
            }
            if c == '{' || c == '}' {
                return None;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        Some(out)
    }

    /// A `run` step's argv and the placeholders left unfilled in it, as planned; `None`
    /// when the loader refused the policy.
    type Planned = Option<(Vec<String>, Vec<String>)>;

    /// The `run` step whose one argument is `template`, planned for a hop.
    fn planned(template: &str) -> Result<Planned, String> {
        // A JSON string is a YAML double-quoted scalar: the argument arrives verbatim.
        let arg = serde_json::to_string(template).unwrap();
        let text = format!(
            "name: t\ndescription: d\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  procedure: p\ndowngrade: {{}}\nvars: {{img: reg/img}}\nprocedures:\n  p:\n    steps:\n      - deploy: {{}}\n      - run: {{name: r, argv: [echo, {arg}]}}\n"
        );
        let policy = match policy::parse(&text, "template") {
            Ok(p) => p,
            Err(e) if e.to_string().contains("placeholder") || e.to_string().contains("lone") => return Ok(None),
            Err(e) => return Err(format!("not a template error: {e}")),
        };
        let request = UpgradeRequest { current: v("1.0.0"), target: v("1.1.0"), fast_path: false, devel: false };
        let plan =
            plan::plan_upgrade(&policy, &versions("1.0.0,1.1.0"), &request, &context()).map_err(|e| e.to_string())?;
        Ok(plan.hops[0].steps.iter().find_map(|s| match s {
            Step::Run { argv, unfilled, .. } => Some((argv.clone(), unfilled.clone())),
            _ => None,
        }))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn escaped_text_and_placeholders_fill_to_the_text_and_the_values(parts in parts()) {
            let mut template_text = String::new();
            let mut expected = String::new();
            for part in &parts {
                match part {
                    Part::Text(t) => {
                        template_text.push_str(&template::escape(t));
                        expected.push_str(t);
                    }
                    Part::Placeholder(i) => {
                        template_text.push_str(&format!("{{{}}}", VALUES[*i].0));
                        expected.push_str(VALUES[*i].1);
                    }
                }
            }
            let planned = planned(&template_text).map_err(TestCaseError::fail)?;
            let Some((argv, unfilled)) = planned else {
                return Err(TestCaseError::fail(format!("{template_text:?} was refused")));
            };
            prop_assert_eq!(argv, vec!["echo".to_string(), expected]);
            prop_assert!(unfilled.is_empty(), "{:?}", unfilled);
        }

        #[test]
        fn escaping_then_filling_is_the_identity(text in text()) {
            let planned = planned(&template::escape(&text)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(planned, Some((vec!["echo".to_string(), text], vec![])));
        }

        /// Any text: the loader accepts it exactly when the oracle reads it, and the
        /// planner fills it as the oracle does.
        #[test]
        fn any_text_is_refused_or_filled_as_the_oracle_reads_it(text in text_with_placeholders()) {
            let planned = planned(&text).map_err(TestCaseError::fail)?;
            let expected = oracle(&text).map(|filled| (vec!["echo".to_string(), filled], vec![]));
            prop_assert_eq!(planned, expected, "{:?}", text);
        }
    }
}

/// The same oracle in application versions (`versions: app`): the generated train is the
/// app versions, each packaged by a chart versioned apart (`N.1.0`) and every other one
/// also by an older chart (`N.0.0`), so the planner must translate, choose the newest
/// chart of each app version and map the path back. Each app version has a chart major
/// of its own: a rollback window counted in chart versions would cross a major every time.
mod app_versions {
    use super::*;

    /// The primary (newest) chart of the app version at `index` in app order.
    fn chart(index: usize) -> ChartVersion {
        v(&format!("{}.1.0", index + 1))
    }

    fn train(apps: &[ChartVersion]) -> Vec<Available> {
        let mut available = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            available.push(Available { version: chart(i), app_version: Some(app.to_string()) });
            if i % 2 == 1 {
                available.push(Available { version: v(&format!("{}.0.0", i + 1)), app_version: Some(app.to_string()) });
            }
        }
        available
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn app_version_plans_obey_the_policy_in_app_versions((list, rules, ci, ti, _) in case()) {
            let policy = policy_yaml(&format!("{}versions: app\n", policy_text(&rules)));
            let mut apps: Vec<ChartVersion> = list.iter().map(|s| v(s)).collect();
            apps.sort();
            let available = train(&apps);
            let (current, target) = (apps[ci].clone(), apps[ti].clone());
            let request = UpgradeRequest { current: chart(ci), target: chart(ti), fast_path: false, devel: true };
            let result = plan::plan_upgrade(&policy, &available, &request, &context());
            let oracle = Oracle::new(&apps, &current, &target, &rules);
            match result {
                Ok(plan) => {
                    prop_assert_eq!(&plan.from, &chart(ci));
                    prop_assert_eq!(&plan.to, &chart(ti));
                    if target == current {
                        prop_assert!(plan.hops.is_empty());
                        return Ok(());
                    }
                    let mut at = current.clone();
                    for hop in &plan.hops {
                        let app = hop.app.as_ref().expect("every hop carries its app versions");
                        prop_assert_eq!(&app.from, &at, "hops do not chain in app versions");
                        let index = apps.iter().position(|a| a == &app.to).expect("a hop lands on an offered app version");
                        prop_assert_eq!(&hop.to, &chart(index), "the newest chart of {} is not deployed", app.to);
                        if let Err(why) = oracle.legal(&app.from, &app.to) {
                            return Err(TestCaseError::fail(format!("illegal hop: {why}")));
                        }
                        at = app.to.clone();
                    }
                    prop_assert_eq!(&at, &target, "path does not end at the target app version");
                    prop_assert_eq!(Some(plan.hops.len()), oracle.shortest(), "not the shortest path");
                    for m in &oracle.minor_stops {
                        if *m > current.minor() && *m < target.minor() {
                            let stopped = plan.hops.iter().any(|h| h.app.as_ref().is_some_and(|a| a.to.minor() == *m));
                            prop_assert!(stopped, "required minor {} missing", m);
                        }
                    }
                }
                Err(PlanError::Refused(r)) => match r.rule.as_str() {
                    "major" => prop_assert!(!rules.majors && target.minor().major > current.minor().major),
                    _ => prop_assert_eq!(oracle.shortest(), None, "refused ({:?}) although a path exists", r),
                },
                Err(PlanError::BadRequest { message, .. }) => {
                    prop_assert!(target < current, "unexpected bad request: {}", message);
                }
            }
        }

        /// The window, the major boundary and patch-or-minor in app versions, against the
        /// oracle's arithmetic on the app versions; the newest chart ever deployed is the
        /// ledger's, and a chart the source does not offer is refused, never guessed.
        #[test]
        fn app_version_rollbacks_stay_in_the_app_window(
            (list, rules, ci, ti, _) in case(),
            newer in any::<prop::sample::Index>(),
            unlisted in prop::bool::weighted(0.1),
        ) {
            let policy = policy_yaml(&format!("{}versions: app\n", policy_text(&rules)));
            let mut apps: Vec<ChartVersion> = list.iter().map(|s| v(s)).collect();
            apps.sort();
            let available = train(&apps);
            let ni = ci + newer.index(apps.len() - ci);
            let newest_chart = if unlisted { v(&format!("{}.0.0", apps.len() + 5)) } else { chart(ni) };
            let (current, target, newest) = (&apps[ci], &apps[ti], &apps[ni]);
            let request = RollbackRequest {
                current: chart(ci),
                target: Some(chart(ti)),
                newest_ever: newest_chart.clone(),
                deployed_before: vec![],
                snapshot: SnapshotKnowledge::Unknown,
                by_revision: None,
            };
            // Only meaningful going back (target below current, so below newest).
            let outside = target.minor().major != newest.minor().major
                || newest.minor().minor.saturating_sub(target.minor().minor) > u64::from(rules.max_step);
            match plan::plan_rollback(&policy, &available, &request, &context()) {
                Ok(plan) => {
                    prop_assert!(ti < ci && !unlisted);
                    prop_assert!(!outside, "{} → {} planned outside the window from {}", current, target, newest);
                    let hop = &plan.hops[0];
                    prop_assert_eq!((&hop.from, &hop.to), (&chart(ci), &chart(ti)), "not the charts asked for");
                    let app = hop.app.as_ref().expect("the hop carries its app versions");
                    prop_assert_eq!((&app.from, &app.to), (current, target));
                    let patch = target.minor() == current.minor();
                    prop_assert_eq!(hop.kind == plan::HopKind::PatchDowngrade, patch, "{:?} for {} → {}", hop.kind, current, target);
                }
                Err(PlanError::Refused(r)) => {
                    prop_assert!(ti < ci && !unlisted);
                    prop_assert_eq!(r.rule.as_str(), "downgrade-window");
                    prop_assert!(outside, "refused inside the window: {:?}", r);
                    prop_assert!(r.message.contains(&format!("(chart {})", chart(ti))), "{}", r.message);
                }
                Err(PlanError::BadRequest { message, .. }) => {
                    let unreadable_newest = unlisted && message.contains(&newest_chart.to_string());
                    prop_assert!(ti >= ci || unreadable_newest, "unexpected bad request: {}", message);
                }
            }
        }
    }
}
