//! The walk against fakes of the cluster, the operator and the journal: each scenario in
//! milliseconds, asserting what was done to the cluster and what was recorded.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::helm::{Deployed, Signals};
use crate::plan::{Available, Context, UpgradeRequest};
use crate::printer::Printer;
use crate::release::{Metadata, ReadError, Revision};
use crate::run::interact::{Answer, PauseChoice};
use crate::run::rollout::Blind;
use crate::run::values::{Overrides, RunValues};
use crate::setvalues::{SetArg, SetKind};

fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

/// A release that helm's fake upgrades and rollbacks move, revision by revision.
struct FakeCluster {
    history: RefCell<Vec<(u64, ChartVersion, ReleaseStatus)>>,
    /// Versions whose upgrade fails after helm made a (failed) revision.
    failing: Vec<ChartVersion>,
    /// Before the n-th check of the release, someone else deploys this version.
    outsider: Option<(usize, ChartVersion)>,
    /// A Ctrl-C arrives while helm upgrades to this version.
    interrupt_during: Option<ChartVersion>,
    /// What the pods say after a failed upgrade.
    unready: Vec<String>,
    /// The values digest helm reports for every upgrade (default: the carried values').
    deployed_digest: Option<String>,
    calls: RefCell<Vec<String>>,
    checks: RefCell<usize>,
    signals: Signals,
}

impl FakeCluster {
    fn at(version: &str) -> FakeCluster {
        FakeCluster {
            history: RefCell::new(vec![(1, v(version), ReleaseStatus::Deployed)]),
            failing: vec![],
            outsider: None,
            interrupt_during: None,
            unready: vec![],
            deployed_digest: None,
            calls: RefCell::default(),
            checks: RefCell::default(),
            signals: Signals::default(),
        }
    }

    fn push(&self, version: ChartVersion, status: ReleaseStatus) -> u64 {
        let mut history = self.history.borrow_mut();
        for entry in history.iter_mut().filter(|e| e.2 == ReleaseStatus::Deployed) {
            entry.2 = ReleaseStatus::Superseded;
        }
        let revision = history.len() as u64 + 1;
        history.push((revision, version, status));
        revision
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn deployed_versions(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter_map(|c| c.strip_prefix("upgrade ").map(|r| r.split(' ').next().unwrap().to_string()))
            .collect()
    }
}

fn failed(purpose: &str, flags: &[String]) -> ExecError {
    ExecError::Failed {
        purpose: purpose.into(),
        argv: crate::disclose::Argv::new("helm", flags),
        status: "exit 1".into(),
        stderr: "Error: UPGRADE FAILED: context deadline exceeded".into(),
        stdout: String::new(),
    }
}

impl Cluster for FakeCluster {
    fn upgrade(
        &self,
        purpose: String,
        _release: &str,
        request: &crate::helm::UpgradeRequest,
    ) -> Result<Deployed, ExecError> {
        let (chart, flags) = (request.chart.arg(), request.flags());
        // `--version V` with a reference; an archive `…/V.tgz` from the preflight.
        let version = match flags.iter().position(|f| f == "--version") {
            Some(at) => v(&flags[at + 1]),
            None => v(std::path::Path::new(&chart).file_stem().unwrap().to_str().unwrap()),
        };
        self.calls.borrow_mut().push(format!("upgrade {version} {}", flags.join(" ")));
        if self.interrupt_during.as_ref() == Some(&version) {
            self.signals.simulate_interrupt();
        }
        if self.failing.contains(&version) {
            self.push(version, ReleaseStatus::Failed);
            return Err(failed(&purpose, &flags));
        }
        let revision = self.push(version.clone(), ReleaseStatus::Deployed);
        // helm's `config`: here, the first values file (the carried values).
        let first_file = &flags[flags.iter().position(|f| f == "-f").unwrap() + 1];
        let carried: serde_json::Value = serde_json::from_slice(&std::fs::read(first_file).unwrap()).unwrap();
        let values_digest = self.deployed_digest.clone().unwrap_or_else(|| crate::digest::json_sha256(&carried));
        Ok(Deployed { revision, status: "deployed".into(), chart_version: Some(version.to_string()), values_digest })
    }

    fn rollback(&self, _purpose: String, _release: &str, revision: u64, _timeout: &str) -> Result<(), ExecError> {
        self.calls.borrow_mut().push(format!("rollback {revision}"));
        let version = self.history.borrow()[revision as usize - 1].1.clone();
        self.push(version, ReleaseStatus::Deployed);
        Ok(())
    }

    fn metadata(&self, purpose: String, _release: &str) -> Result<Metadata, ExecError> {
        if purpose.starts_with("check") {
            *self.checks.borrow_mut() += 1;
            if let Some((n, version)) = &self.outsider
                && *n == *self.checks.borrow()
            {
                self.push(version.clone(), ReleaseStatus::Deployed);
            }
        }
        self.calls.borrow_mut().push(purpose.split(' ').next().unwrap().to_string());
        let (revision, version, status) = self.history.borrow().last().unwrap().clone();
        Ok(Metadata {
            name: "bsr".into(),
            chart: "bsr".into(),
            version: version.to_string(),
            app_version: None,
            namespace: "bsr".into(),
            revision,
            status,
        })
    }

    fn read(&self, _release: &str) -> Result<Release, ReadError> {
        self.calls.borrow_mut().push("read".into());
        let history = self.history.borrow();
        let (revision, version, status) = history.last().unwrap().clone();
        Ok(Release {
            name: "bsr".into(),
            namespace: "bsr".into(),
            chart_name: "bsr".into(),
            version,
            app_version: None,
            revision,
            status,
            description: String::new(),
            history: history
                .iter()
                .map(|(revision, version, status)| Revision {
                    revision: *revision,
                    status: *status,
                    version: Some(version.clone()),
                    description: String::new(),
                })
                .collect(),
            user_values: serde_json::json!({}),
            manifest: String::new(),
            stored_values: None,
        })
    }

    fn status_text(&self, _release: &str) -> Result<String, ExecError> {
        Ok("STATUS: deployed".into())
    }

    fn latest_revision(&self, _release: &str) -> Result<(u64, ReleaseStatus), String> {
        *self.checks.borrow_mut() += 1;
        if let Some((n, version)) = &self.outsider
            && *n == *self.checks.borrow()
        {
            self.push(version.clone(), ReleaseStatus::Deployed);
        }
        self.calls.borrow_mut().push("check".into());
        let (revision, _, status) = self.history.borrow().last().unwrap().clone();
        Ok((revision, status))
    }

    fn count_pods(&self, _selector: &str) -> Result<usize, crate::kube::KubeError> {
        Ok(0)
    }

    fn explain_unready(&self, _release: &str) -> Vec<String> {
        self.unready.clone()
    }

    fn policy_command(&self, purpose: String, argv: &[String]) -> Result<String, ExecError> {
        self.calls.borrow_mut().push(format!("command {purpose}: {}", argv.join(" ")));
        Ok(String::new())
    }

    fn helm_major(&self) -> u32 {
        4
    }

    fn signals(&self) -> &Signals {
        &self.signals
    }
}

/// An operator (or `--yes`) with scripted answers.
struct FakeOperator {
    pauses: RefCell<VecDeque<PauseChoice>>,
    attended: bool,
}

impl Interaction for FakeOperator {
    fn confirm(&self, _question: &str) -> Answer {
        Answer::Yes
    }
    fn pause(&self, _summary: &str) -> PauseChoice {
        self.pauses.borrow_mut().pop_front().unwrap_or(PauseChoice::Continue)
    }
    fn attended(&self) -> bool {
        self.attended
    }
    fn confirm_typed(&self, _prompt: &str, _expected: &str) -> Answer {
        Answer::Yes
    }
}

/// A journal that records what it is told, and can lose the lock at the n-th write.
#[derive(Default)]
struct FakeJournal {
    events: Vec<String>,
    /// The hops' messages, as the ledger stores them.
    messages: Vec<String>,
    writes: usize,
    lose_lock_at_write: Option<usize>,
    newest: Option<ChartVersion>,
    /// Each finished step: its hop, its detail, whether it waited for the operator.
    steps: Vec<(Option<usize>, String, bool)>,
}

impl FakeJournal {
    fn write(&mut self, what: String) -> Result<(), JournalError> {
        self.writes += 1;
        if self.lose_lock_at_write == Some(self.writes) {
            return Err(JournalError { lost_lock: true, message: "the ledger was changed by someone else".into() });
        }
        self.events.push(what);
        Ok(())
    }
}

impl Journal for FakeJournal {
    fn hop_starting(&mut self, _plan: &Plan, index: usize, first_change: Option<usize>) -> Result<(), JournalError> {
        self.write(format!("hop {index} starts (change at {first_change:?})"))
    }
    fn change_starting(&mut self, hop: usize, step: Option<usize>) -> Result<(), JournalError> {
        self.write(format!("hop {hop} step {step:?} starts"))
    }
    fn hop_ended(&mut self, index: usize, outcome: HopOutcome, message: Option<&Message>) {
        self.events.push(format!("hop {index} {outcome}"));
        self.messages.extend(message.map(Message::redacted));
    }
    fn helm_ran(&mut self, version: &ChartVersion) {
        if self.newest.as_ref().is_none_or(|n| n < version) {
            self.newest = Some(version.clone());
        }
    }
    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str) {
        self.events.push(format!("snapshot at {at} ({how})"));
    }
    fn step_finished(&mut self, step: &crate::report::StepReport, waited_for_operator: bool) {
        self.steps.push((step.hop, step.detail.clone(), waited_for_operator));
    }
    fn store_now(&mut self) -> Result<(), JournalError> {
        self.write("stored at the pause".into())
    }
    fn newest_ever(&self) -> Option<ChartVersion> {
        self.newest.clone()
    }
    fn has_snapshot(&self) -> bool {
        false
    }
}

const OFFERED: &str = "1.0.4,1.1.0,1.1.9,1.2.0,1.2.6,1.3.0,1.3.2";

fn policy() -> Policy {
    crate::policy::parse(include_str!("../../../bed/policies/bsr-bed.yaml"), "bsr-bed").unwrap()
}

fn offered() -> Vec<Available> {
    OFFERED.split(',').map(|s| Available::new(v(s))).collect()
}

fn context() -> Context {
    Context {
        release: Some("bsr".into()),
        namespace: Some("bsr".into()),
        chart_name: Some("bsr".into()),
        sources: None,
        values: None,
        ..Context::default()
    }
}

fn upgrade_plan(policy: &Policy, from: &str, to: &str) -> Plan {
    let request = UpgradeRequest { current: v(from), target: v(to), fast_path: false, devel: false };
    plan::plan_upgrade(policy, &offered(), &request, &context()).unwrap()
}

struct Scenario {
    cluster: FakeCluster,
    operator: FakeOperator,
    journal: FakeJournal,
    overrides: Overrides,
    overrides_in_effect: bool,
    /// The release's user values as the walk starts.
    carried: serde_json::Value,
    dir: tempfile::TempDir,
    /// How the walk passes the chart to helm.
    chart: ChartArg,
    /// Where the walk prints (default: a log, in memory).
    printer: Printer,
    /// The outcome is said in words at the end (`-o table`), not as JSON.
    outcome_in_words: bool,
}

impl Scenario {
    fn new(at: &str) -> Scenario {
        Scenario {
            cluster: FakeCluster::at(at),
            operator: FakeOperator { pauses: RefCell::default(), attended: false },
            journal: FakeJournal::default(),
            overrides: Overrides::default(),
            overrides_in_effect: false,
            carried: serde_json::json!({"replicaCount": 2}),
            dir: tempfile::tempdir().unwrap(),
            chart: ChartArg::Reference { reference: "demo/bsr".into(), plain_http: false },
            printer: Printer::captured(false).0,
            outcome_in_words: true,
        }
    }

    fn walk(&mut self, plan: &Plan) -> Outcome {
        let policy = policy();
        let values = RunValues::save(self.dir.path(), "host", &self.carried, &self.overrides).unwrap();
        let (revision, version, status) = self.cluster.history.borrow().last().unwrap().clone();
        let setup = Setup {
            policy: &policy,
            release: "bsr".into(),
            chart: self.chart.clone(),
            values,
            timeout: "5m0s".into(),
            snapshot_taken: false,
            available: offered(),
            context: context(),
            start: (revision, version, status),
            overrides_in_effect: self.overrides_in_effect,
            bring_back_failed_hops: true,
            outcome_in_words: self.outcome_in_words,
        };
        let progress = Progress::new(self.printer.clone());
        let ports = Ports {
            cluster: &self.cluster,
            watch: &Blind,
            interaction: &self.operator,
            journal: &mut self.journal,
            progress: &progress,
        };
        Walk::new(setup, ports).run(plan)
    }
}

#[test]
fn hops_are_checked_recorded_and_verified_from_helms_own_answer() {
    let mut s = Scenario::new("1.0.4");
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    assert_eq!(s.walk(&plan), Outcome::Completed { at: v("1.3.0") });
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9", "1.2.6", "1.3.0"]);
    // One read before each hop, none to verify: helm's own answer says deployed.
    let reads: Vec<String> = s.cluster.calls().into_iter().filter(|c| !c.starts_with("upgrade")).collect();
    assert_eq!(reads, ["check", "check", "check"]);
    assert_eq!(
        s.journal.events,
        [
            "hop 0 starts (change at Some(0))",
            "hop 0 succeeded",
            "hop 1 starts (change at Some(0))",
            "hop 1 succeeded",
            "hop 2 starts (change at Some(0))",
            "hop 2 succeeded"
        ]
    );
    assert_eq!(s.journal.newest, Some(v("1.3.0")));
}

#[test]
fn each_step_reaches_the_journal_saying_whether_it_waited_for_the_operator() {
    let mut s = Scenario::new("1.0.4");
    let mut plan = upgrade_plan(&policy(), "1.0.4", "1.1.9");
    plan.hops[0].steps.insert(0, Step::Confirm { message: "ready?".into() });
    assert_eq!(s.walk(&plan), Outcome::Completed { at: v("1.1.9") });
    let step = |detail: &str, waited| (Some(1), detail.to_string(), waited);
    assert_eq!(s.journal.steps, [step("confirm", true), step("deploy 1.1.9", false), step("verify 1.1.9", false)]);
}

#[test]
fn a_policy_command_runs_with_its_literal_braces() {
    let text = include_str!("../../../bed/policies/bsr-bed.yaml").replace(
        "  rolling:\n    downtime: false\n    steps:\n      - deploy: {}\n      - verify: {}\n",
        "  rolling:\n    steps:\n      - deploy: {}\n      - run: {name: replicas, argv: [kubectl, get, deploy, \"{release}\", \"-o=jsonpath={{.status.readyReplicas}}\"]}\n",
    );
    let policy = crate::policy::parse(&text, "braces").unwrap();
    let mut s = Scenario::new("1.0.4");
    let plan = upgrade_plan(&policy, "1.0.4", "1.1.9");
    assert_eq!(s.walk(&plan), Outcome::Completed { at: v("1.1.9") });
    let calls = s.cluster.calls();
    assert!(
        calls.contains(&"command replicas: kubectl get deploy bsr -o=jsonpath={.status.readyReplicas}".into()),
        "{calls:?}"
    );
}

#[test]
fn a_command_the_planner_could_not_fill_in_never_runs() {
    let mut s = Scenario::new("1.0.4");
    let mut plan = upgrade_plan(&policy(), "1.0.4", "1.1.9");
    let argv = vec!["migrate".to_string(), "--to={to_schema}".to_string()];
    plan.hops[0].steps.insert(0, Step::Run { name: "migrate".into(), argv, unfilled: vec!["to_schema".into()] });
    let outcome = s.walk(&plan);
    let Outcome::Recovered { error, at, .. } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(at, &v("1.0.4"));
    assert!(error.redacted().contains("still holds the placeholder {to_schema}"), "{error}");
    assert!(s.cluster.calls().iter().all(|c| !c.starts_with("command")), "{:?}", s.cluster.calls());
}

/// The plan's hops as the preflight checked them, each with `values` as the values
/// digest it showed, and the scenario's chart as archives on disk (`<version>.tgz`
/// holding the version's name) whose digests the plan shows.
fn checked_plan(s: &mut Scenario, values: &str) -> Plan {
    let mut plan = upgrade_plan(&policy(), "1.0.4", "1.2.6");
    let mut files = std::collections::BTreeMap::new();
    for version in ["1.0.4", "1.1.9", "1.2.6"] {
        let path = s.dir.path().join(format!("{version}.tgz"));
        std::fs::write(&path, version).unwrap();
        files.insert(v(version), path);
    }
    s.chart = ChartArg::Files(files);
    for hop in &mut plan.hops {
        hop.check = Some(crate::plan::HopCheck {
            chart_digest: crate::digest::sha256(hop.to.to_string().as_bytes()),
            values_digest: values.into(),
            values_keys: vec![],
            values_view: None,
            warnings: vec![],
            changes: None,
            other_deploys: vec![],
        });
    }
    plan
}

#[test]
fn each_hop_deploys_the_chart_and_values_whose_digests_the_plan_showed() {
    let shown = crate::digest::json_sha256(&serde_json::json!({"replicaCount": 2}));
    let mut s = Scenario::new("1.0.4");
    let plan = checked_plan(&mut s, &shown);
    assert_eq!(s.walk(&plan), Outcome::Completed { at: v("1.2.6") });

    // helm deployed other values than the plan showed (a -f file edited in between):
    // the hop failed, and is brought back like any other.
    let mut s = Scenario::new("1.0.4");
    let plan = checked_plan(&mut s, &shown);
    s.cluster.deployed_digest = Some(crate::digest::json_sha256(&serde_json::json!({"replicaCount": 3})));
    let outcome = s.walk(&plan);
    let Outcome::Recovered { failed_hop, error, at } = &outcome else { panic!("{outcome:?}") };
    assert_eq!((*failed_hop, at), (1, &v("1.0.4")));
    assert!(error.redacted().contains("where the plan showed sha256:"), "{error}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9", "1.0.4"], "brought back, nothing more deployed");

    // The second hop's archive changed after the preflight rendered it: not deployed.
    let mut s = Scenario::new("1.0.4");
    let plan = checked_plan(&mut s, &shown);
    std::fs::write(s.dir.path().join("1.2.6.tgz"), "other content").unwrap();
    let outcome = s.walk(&plan);
    let Outcome::Recovered { failed_hop, error, at } = &outcome else { panic!("{outcome:?}") };
    assert_eq!((*failed_hop, at), (2, &v("1.1.9")));
    assert!(error.redacted().contains("is not the one the plan rendered"), "{error}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"], "1.2.6 never reached helm");
}

#[test]
fn a_failing_hop_is_brought_back_by_the_policys_down_migration() {
    let mut s = Scenario::new("1.0.4");
    s.cluster.failing = vec![v("1.2.6")];
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    let Outcome::Recovered { failed_hop, at, error } = &outcome else { panic!("{outcome:?}") };
    assert_eq!((*failed_hop, at), (2, &v("1.1.9")));
    assert!(error.redacted().contains("UPGRADE FAILED"), "{error}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9", "1.2.6", "1.1.9"], "the way back redeploys 1.1.9");
    let calls = s.cluster.calls();
    assert!(calls.iter().any(|c| c.contains("command bufd migratedownto") && c.ends_with("schema=222")), "{calls:?}");
    // helm ran 1.2.6 (it made a failed revision of it): it counts as deployed.
    assert_eq!(s.journal.newest, Some(v("1.2.6")));
    assert!(s.journal.events.contains(&"hop 1 failed".to_string()));
    // Every change of the way back was recorded before it ran.
    assert!(s.journal.events.iter().filter(|e| e.contains("step None")).count() >= 2, "{:?}", s.journal.events);
}

/// The values file each `helm upgrade` of the walk was given (its first `-f`), as JSON.
fn deployed_values(cluster: &FakeCluster) -> Vec<serde_json::Value> {
    cluster
        .calls()
        .iter()
        .filter(|c| c.starts_with("upgrade "))
        .map(|c| {
            let path = c.split(' ').skip_while(|w| *w != "-f").nth(1).expect("a values file");
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn the_policys_value_rules_are_deployed_from_their_hop_on_and_undone_going_back() {
    let text = include_str!("../../../bed/policies/bsr-bed.yaml").to_string()
        + "values:\n  - version: 1.2.0\n    rename: {from: postgres.host, to: database.host}\n";
    let policy = crate::policy::parse(&text, "bsr-bed").unwrap();
    let mut s = Scenario::new("1.0.4");
    s.carried = serde_json::json!({"postgres": {"host": "db"}});
    s.cluster.failing = vec![v("1.3.0")];
    let plan = upgrade_plan(&policy, "1.0.4", "1.3.0");
    assert_eq!(plan.hops[1].values.len(), 1, "hop 2 crosses 1.2.0");
    let outcome = s.walk(&plan);
    assert!(matches!(outcome, Outcome::Recovered { failed_hop: 3, .. }), "{outcome:?}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9", "1.2.6", "1.3.0", "1.2.6"]);
    let old = serde_json::json!({"postgres": {"host": "db"}});
    let new = serde_json::json!({"database": {"host": "db"}});
    // Hop 1 as the release ran; from hop 2 on renamed; back from hop 3, hop 2's values.
    assert_eq!(deployed_values(&s.cluster), [old, new.clone(), new.clone(), new]);
}

#[test]
fn a_maintenance_deploy_of_the_hops_start_deploys_the_values_before_its_rules() {
    // The fast path deploys 1.0.4 in maintenance mode first: 1.0.4 reads `postgres.host`,
    // so the rename 1.2.0 needs must not reach it (its database host would be lost).
    let text = include_str!("../../../bed/policies/bsr-bed.yaml").to_string()
        + "values:\n  - version: 1.2.0\n    rename: {from: postgres.host, to: database.host}\n";
    let policy = crate::policy::parse(&text, "bsr-bed").unwrap();
    let request = UpgradeRequest { current: v("1.0.4"), target: v("1.3.2"), fast_path: true, devel: false };
    let plan = plan::plan_upgrade(&policy, &offered(), &request, &context()).unwrap();
    assert_eq!(plan.hops.len(), 1);
    let upgrades: Vec<_> = plan.hops[0].upgrades().map(|(n, version, _)| (n, version.to_string())).collect();
    assert_eq!(upgrades, [(0, "1.0.4".to_string()), (3, "1.3.2".to_string())], "{:?}", plan.hops[0].steps);
    let mut s = Scenario::new("1.0.4");
    s.operator.attended = true;
    s.carried = serde_json::json!({"postgres": {"host": "db"}});
    let outcome = s.walk(&plan);
    assert_eq!(outcome, Outcome::Completed { at: v("1.3.2") });
    assert_eq!(s.cluster.deployed_versions(), ["1.0.4", "1.3.2"]);
    assert_eq!(
        deployed_values(&s.cluster),
        [serde_json::json!({"postgres": {"host": "db"}}), serde_json::json!({"database": {"host": "db"}})]
    );

    // The preflight rendered the maintenance deploy too: its archive is held to the
    // plan's digest like the hop's last deploy.
    let mut s = Scenario::new("1.0.4");
    s.operator.attended = true;
    let mut plan = plan;
    let mut files = std::collections::BTreeMap::new();
    for version in ["1.0.4", "1.3.2"] {
        let path = s.dir.path().join(format!("{version}.tgz"));
        std::fs::write(&path, version).unwrap();
        files.insert(v(version), path);
    }
    s.chart = ChartArg::Files(files);
    let carried = crate::digest::json_sha256(&s.carried);
    plan.hops[0].check = Some(crate::plan::HopCheck {
        chart_digest: crate::digest::sha256(b"1.3.2"),
        values_digest: carried.clone(),
        values_keys: vec![],
        values_view: None,
        warnings: vec![],
        changes: None,
        other_deploys: vec![crate::plan::DeployCheck {
            step: 0,
            version: v("1.0.4"),
            chart_digest: crate::digest::sha256(b"1.0.4 as the preflight saw it"),
            values_digest: carried,
        }],
    });
    let outcome = s.walk(&plan);
    let Outcome::Recovered { error, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(error.redacted().contains("is not the one the plan rendered"), "{error}");
    // The maintenance deploy never reached helm; the way back redeploys 1.0.4 as it ran.
    assert_eq!(s.cluster.deployed_versions(), ["1.0.4"]);
    assert!(s.cluster.calls().iter().all(|c| !c.contains("procedure-")), "{:?}", s.cluster.calls());
}

#[test]
fn stop_here_at_a_pause_ends_at_the_verified_version() {
    let mut s = Scenario::new("1.0.4");
    s.operator = FakeOperator { pauses: RefCell::new([PauseChoice::Stop].into()), attended: true };
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    assert!(matches!(&outcome, Outcome::Stopped { at, .. } if *at == v("1.1.9")), "{outcome:?}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"]);
    assert_eq!(
        s.journal.events,
        ["hop 0 starts (change at Some(0))", "hop 0 succeeded", "stored at the pause"],
        "the hop's end is stored before the operator is asked"
    );
}

#[test]
fn each_hop_says_how_long_it_took_against_its_estimate_and_the_time_left() {
    let mut s = Scenario::new("1.0.4");
    let (printer, _, err) = Printer::captured(false);
    s.printer = printer;
    let past = |m: u64| crate::plan::estimate::PastHop {
        kind: "minor".into(),
        procedure: "rolling".into(),
        work_secs: m * 60u64,
        downtime_secs: None,
    };
    let context = Context { history: vec![past(8), past(12)], ..context() };
    let request = UpgradeRequest { current: v("1.0.4"), target: v("1.3.0"), fast_path: false, devel: false };
    let plan = plan::plan_upgrade(&policy(), &offered(), &request, &context).unwrap();
    assert_eq!(s.walk(&plan), Outcome::Completed { at: v("1.3.0") });
    let log = err.text();
    for line in [
        "hop 1/3: 1.0.4 → 1.1.9 (rolling), expected ~10 min",
        "hop 1/3 done in 0 s (expected ~10 min); ~20 min left",
        "hop 2/3 done in 0 s (expected ~10 min); ~10 min left",
        "hop 3/3 done in 0 s (expected ~10 min); the 3 hops took 0 s",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
}

#[test]
fn a_lock_lost_while_pausing_ends_the_walk_before_the_question() {
    let mut s = Scenario::new("1.0.4");
    s.operator = FakeOperator { pauses: RefCell::new([PauseChoice::Continue].into()), attended: true };
    s.journal.lose_lock_at_write = Some(2);
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    let Outcome::Failed { error, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(error.redacted().contains("lost the lock of bsr at the pause"), "{error}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"]);
    assert!(s.operator.pauses.borrow().len() == 1, "the operator was not asked");
}

#[test]
fn a_lost_lock_stops_the_walk_before_its_next_change() {
    let mut s = Scenario::new("1.0.4");
    // The second write is hop 2's start: by then someone else holds the lock.
    s.journal.lose_lock_at_write = Some(2);
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    let Outcome::Failed { error, next_steps } = &outcome else { panic!("{outcome:?}") };
    assert!(error.redacted().contains("lost the lock of bsr before hop 2"), "{error}");
    assert!(next_steps.contains("bsr is at 1.1.9"), "{next_steps}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"], "nothing deployed after the lock was lost");
}

#[test]
fn a_change_made_outside_the_walk_stops_it() {
    let mut s = Scenario::new("1.0.4");
    s.cluster.outsider = Some((2, v("1.3.2")));
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    let Outcome::Failed { error, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(error.redacted().contains("changed outside this run before hop 2"), "{error}");
    assert!(error.redacted().contains("it is now at revision 3 (1.3.2, deployed)"), "{error}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"]);
}

#[test]
fn an_interrupt_during_a_hop_finishes_it_and_stops_at_the_next_safe_point() {
    let mut s = Scenario::new("1.0.4");
    s.cluster.interrupt_during = Some(v("1.1.9"));
    let plan = upgrade_plan(&policy(), "1.0.4", "1.3.0");
    let outcome = s.walk(&plan);
    let Outcome::Stopped { at, reason } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(at, &v("1.1.9"));
    assert!(reason.redacted().starts_with("interrupted: stopped at the first safe point"), "{reason}");
    assert_eq!(s.cluster.deployed_versions(), ["1.1.9"]);
}

#[test]
fn a_resumed_walk_keeps_the_operators_overrides_on_the_way_back() {
    let mut s = Scenario::new("1.1.9");
    s.overrides = Overrides { files: vec![], sets: vec![SetArg::new(SetKind::Set, "replicaCount=5")] };
    // A resumed run: the interrupted run deployed with the overrides already.
    s.overrides_in_effect = true;
    s.cluster.failing = vec![v("1.2.6")];
    let plan = upgrade_plan(&policy(), "1.1.9", "1.2.6");
    let outcome = s.walk(&plan);
    assert!(matches!(outcome, Outcome::Recovered { .. }), "{outcome:?}");
    let upgrades: Vec<String> = s.cluster.calls().into_iter().filter(|c| c.starts_with("upgrade")).collect();
    assert_eq!(upgrades.len(), 2);
    assert!(
        upgrades.iter().all(|u| u.contains("--set replicaCount=5")),
        "both deploys carry the overrides: {upgrades:?}"
    );
    // A fresh run that failed its first hop goes back without them.
    let mut s = Scenario::new("1.1.9");
    s.overrides = Overrides { files: vec![], sets: vec![SetArg::new(SetKind::Set, "image.tag=broken")] };
    s.cluster.failing = vec![v("1.2.6")];
    s.walk(&plan);
    let upgrades: Vec<String> = s.cluster.calls().into_iter().filter(|c| c.starts_with("upgrade")).collect();
    assert!(upgrades[0].contains("--set image.tag=broken") && !upgrades[1].contains("--set"), "{upgrades:?}");
}

#[test]
fn a_pending_release_is_brought_back_by_helm_rollback_first() {
    let policy = policy();
    let plan = upgrade_plan(&policy, "1.1.9", "1.2.6");
    // helm's last write of hop 1 was lost: revision 2 stays pending-upgrade.
    let cluster = FakeCluster::at("1.1.9");
    cluster.push(v("1.2.6"), ReleaseStatus::PendingUpgrade);
    let release = cluster.read("bsr").unwrap();
    let (printer, _, _) = Printer::captured(false);
    let progress = Progress::new(printer);
    let operator = FakeOperator { pauses: RefCell::default(), attended: false };
    let mut journal = FakeJournal::default();
    let dir = tempfile::tempdir().unwrap();
    let values = RunValues::save(dir.path(), "host", &serde_json::json!({}), &Overrides::default()).unwrap();
    let setup = Setup {
        policy: &policy,
        release: "bsr".into(),
        chart: ChartArg::Reference { reference: "demo/bsr".into(), plain_http: false },
        values,
        timeout: "5m0s".into(),
        snapshot_taken: false,
        available: offered(),
        context: context(),
        start: (1, v("1.1.9"), ReleaseStatus::Deployed),
        overrides_in_effect: false,
        bring_back_failed_hops: true,
        outcome_in_words: true,
    };
    let ports =
        Ports { cluster: &cluster, watch: &Blind, interaction: &operator, journal: &mut journal, progress: &progress };
    let walk = Walk::new(setup, ports);
    let steps = walk.recovery_steps(&release, &plan.hops[0]).unwrap();
    assert!(
        matches!(&steps[0], Step::Deploy { revision: Some(1), .. }),
        "helm upgrade refuses a pending release; helm rollback to revision 1 clears it: {steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Run { argv, .. } if argv.contains(&"--from-literal=schema=222".to_string()))),
        "1.2.6 may have migrated: its down-migration to 1.1.9's schema runs: {steps:?}"
    );
}

/// Durations as `(1.0s)`: the fakes take no time worth showing, but not always 0.0s.
fn steady_durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits > 0 && rest[digits..].starts_with("s)") {
            out.push_str("1.0");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// What an operator sees of two runs on a terminal: one whose second hop fails and is
/// brought back, one that loses its lock; at 80 and 120 columns, coloured and plain.
#[test]
fn what_a_run_prints_on_a_terminal() {
    use crate::printer::{Stream, Surroundings};
    for width in [80, 120] {
        for colour in [false, true] {
            let terminal = Stream { terminal: true, columns: Some(width) };
            // NO_COLOR, as an operator turns colour off.
            let here = Surroundings { out: terminal, err: terminal, no_color: !colour, ..Surroundings::default() };
            let mut shown = String::new();
            for lose_lock in [false, true] {
                let (printer, _, err) = Printer::captured_in(here.clone());
                let mut s = Scenario::new("1.0.4");
                s.printer = printer.clone();
                if lose_lock {
                    s.journal.lose_lock_at_write = Some(2);
                } else {
                    s.cluster.failing = vec![v("1.2.6")];
                }
                let outcome = s.walk(&upgrade_plan(&policy(), "1.0.4", "1.3.0"));
                let last =
                    crate::ui::render::outcome_text(&outcome, "bsr", printer.data_look(), printer.data_disclosure());
                let text = format!("{}--- stdout\n{last}\n=====\n", err.text());
                // The values file's folder is new each run; its name keeps its length.
                let folder = s.dir.path().to_str().unwrap();
                shown.push_str(&text.replace(folder, &"X".repeat(folder.len())));
            }
            let widest = shown.lines().map(crate::text::width).max().unwrap();
            assert!(widest <= width, "{width} columns: a line of {widest}:\n{shown}");
            assert_eq!(shown.contains('\x1b'), colour, "{shown}");
            let name = format!("run_{width}_columns_{}", if colour { "coloured" } else { "plain" });
            insta::assert_snapshot!(name, steady_durations(&shown).replace('\x1b', "␛"));
        }
    }
}

#[test]
fn a_failed_hop_shows_the_operators_values_on_their_terminal_only() {
    for (interactive, outcome_in_words) in [(true, false), (false, false), (true, true)] {
        let mut s = Scenario::new("1.0.4");
        let (printer, _, stderr) = Printer::captured(interactive);
        s.printer = printer;
        s.outcome_in_words = outcome_in_words;
        s.cluster.failing = vec![v("1.1.9")];
        s.cluster.unready = vec!["Deployment bsr-server: 2 pods: Back-off pulling image \"bufd:broken\"".into()];
        let sets =
            vec![SetArg::new(SetKind::Set, "image.tag=broken"), SetArg::new(SetKind::Set, "postgres.password=s3cret")];
        s.overrides = Overrides { files: vec![], sets };
        let outcome = s.walk(&upgrade_plan(&policy(), "1.0.4", "1.1.9"));
        let log = stderr.text();
        let Outcome::Recovered { error, .. } = &outcome else { panic!("{outcome:?}") };
        // The ledger's hop and run records, and the -o json report: no value, ever.
        let json = serde_json::to_string(&outcome).unwrap();
        for kept in [error.redacted(), json, s.journal.messages.join("\n")] {
            assert!(kept.contains("'image.tag=***'") && kept.contains("'postgres.password=***'"), "{kept}");
            assert!(!kept.contains("broken") && !kept.contains("s3cret"), "{kept}");
        }
        assert!(!log.contains("s3cret"), "{log}");
        if outcome_in_words {
            // Said once, at the end: here only which command failed.
            assert!(
                log.contains("hop 1 failed: upgrade bsr to 1.1.9 failed (exit 1); bringing bsr back to 1.0.4"),
                "{log}"
            );
            assert!(!log.contains("broken") && !log.contains("image.tag"), "{log}");
        } else if interactive {
            assert!(log.contains("hop 1 failed: upgrade bsr to 1.1.9 failed (exit 1): helm "), "{log}");
            assert!(log.contains(" image.tag=broken ") && log.contains("'postgres.password=***'"), "{log}");
            assert!(log.contains("bufd:broken"), "{log}");
        } else {
            assert!(!log.contains("broken") && log.contains("bufd:***"), "{log}");
        }
    }
}
