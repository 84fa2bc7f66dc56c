//! Shared helpers for the planner tests: build inputs from short strings.
#![allow(dead_code)]

use helm_safe_upgrade::plan::{
    self, Available, Context, Plan, PlanError, Refusal, RollbackRequest, SnapshotKnowledge, Step, UpgradeRequest,
};
use helm_safe_upgrade::policy::{self, Policy};
use helm_safe_upgrade::version::ChartVersion;

pub fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

pub fn versions(list: &str) -> Vec<Available> {
    list.split(',').map(|s| Available { version: v(s.trim()), app_version: None }).collect()
}

pub fn preset(name: &str) -> Policy {
    policy::load_named_or_path(name).unwrap()
}

pub fn context() -> Context {
    Context {
        release: Some("rel".into()),
        namespace: Some("ns".into()),
        chart_name: Some("chart".into()),
        ..Context::default()
    }
}

pub fn upgrade(policy: &Policy, list: &str, from: &str, to: &str) -> Result<Plan, PlanError> {
    let request = UpgradeRequest { current: v(from), target: v(to), fast_path: false, devel: false };
    plan::plan_upgrade(policy, &versions(list), &request, &context())
}

pub fn upgrade_fast(policy: &Policy, list: &str, from: &str, to: &str) -> Result<Plan, PlanError> {
    let request = UpgradeRequest { current: v(from), target: v(to), fast_path: true, devel: false };
    plan::plan_upgrade(policy, &versions(list), &request, &context())
}

/// An offline-like rollback request: from, to (None: the default), the newest ever.
fn rollback_request(from: &str, to: Option<&str>, newest: &str) -> RollbackRequest {
    RollbackRequest {
        current: v(from),
        target: to.map(v),
        newest_ever: v(newest),
        deployed_before: vec![],
        snapshot: SnapshotKnowledge::Unknown,
        by_revision: None,
    }
}

pub fn rollback(policy: &Policy, list: &str, from: &str, to: Option<&str>, newest: &str) -> Result<Plan, PlanError> {
    plan::plan_rollback(policy, &versions(list), &rollback_request(from, to, newest), &context())
}

/// The versions a plan stops at, e.g. ["1.1.9", "1.2.6"].
pub fn path(plan: &Plan) -> Vec<String> {
    plan.hops.iter().map(|h| h.to.to_string()).collect()
}

pub fn refusal(result: Result<Plan, PlanError>) -> Refusal {
    match result {
        Err(PlanError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:#?}"),
    }
}

pub fn bad_request(result: Result<Plan, PlanError>) -> (String, String) {
    match result {
        Err(PlanError::BadRequest { message, hint }) => (message, hint),
        other => panic!("expected a bad request, got {other:#?}"),
    }
}

/// Step actions of a hop, as JSON names ("deploy", "verify", ...).
pub fn actions(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| serde_json::to_value(s).unwrap()["action"].as_str().unwrap().to_string()).collect()
}

pub fn run_argv<'a>(steps: &'a [Step], name: &str) -> &'a [String] {
    steps
        .iter()
        .find_map(|s| match s {
            Step::Run { name: n, argv, .. } if n == name => Some(argv.as_slice()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no run step {name:?} in {steps:#?}"))
}

/// A policy from YAML text, panicking with the loader's message.
pub fn policy_yaml(text: &str) -> Policy {
    policy::parse(text, "test policy").unwrap_or_else(|e| panic!("{e}"))
}

/// Charts with app versions, as a chart source lists them: "8.0.0=17.0.1,8.9.0" (a chart
/// without `=` has no appVersion).
pub fn charts(list: &str) -> Vec<Available> {
    list.split(',')
        .map(|item| match item.trim().split_once('=') {
            Some((chart, app)) => Available { version: v(chart), app_version: Some(app.to_string()) },
            None => Available { version: v(item.trim()), app_version: None },
        })
        .collect()
}

pub fn upgrade_charts(policy: &Policy, list: &str, from: &str, to: &str) -> Result<Plan, PlanError> {
    let request = UpgradeRequest { current: v(from), target: v(to), fast_path: false, devel: false };
    plan::plan_upgrade(policy, &charts(list), &request, &context())
}

/// The app versions a plan stops at (`versions: app`).
pub fn app_path(plan: &Plan) -> Vec<String> {
    plan.hops.iter().map(|h| h.app.as_ref().expect("hop has app versions").to.to_string()).collect()
}

/// A rollback over charts with app versions ([`charts`]), the newest chart ever deployed
/// as the ledger records it.
pub fn rollback_charts(
    policy: &Policy,
    list: &str,
    from: &str,
    to: Option<&str>,
    newest: &str,
) -> Result<Plan, PlanError> {
    plan::plan_rollback(policy, &charts(list), &rollback_request(from, to, newest), &context())
}
