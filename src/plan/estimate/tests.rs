//! Estimates from a synthetic journal: the median and range of this release's own hops,
//! the fallbacks to the policy's figures, and alternatives on the same terms.

use super::*;
use crate::plan::{UpgradeRequest, plan_upgrade};

fn v(s: &str) -> ChartVersion {
    s.parse().unwrap()
}

/// BSR's shape (rolling minors, a maintenance-mode fast path from 3 minors) with the
/// generic guide's figures and one catalog figure.
fn policy() -> Policy {
    let text = include_str!("../../../bed/policies/bsr-bed.yaml").to_string()
        + "\ntypical_minutes:\n  patch: [5, 10]\n  minor: [10, 30]\n  fast-path: [15, 25]\n";
    crate::policy::parse(&text, "bsr-times").unwrap()
}

fn past(kind: &str, procedure: &str, minutes: &[u64]) -> Vec<PastHop> {
    minutes
        .iter()
        .map(|m| PastHop { kind: kind.into(), procedure: procedure.into(), work_secs: m * 60, downtime_secs: None })
        .collect()
}

fn context(history: Vec<PastHop>, stated_times: bool) -> Context {
    Context { history, stated_times, ..Context::default() }
}

fn plan(to: &str, fast_path: bool, context: &Context) -> Plan {
    let available: Vec<_> =
        "1.0.4,1.1.9,1.2.6,1.3.2,1.4.0".split(',').map(|s| crate::plan::Available::new(v(s))).collect();
    let request = UpgradeRequest { current: v("1.0.4"), target: v(to), fast_path, devel: false };
    plan_upgrade(&policy(), &available, &request, context).unwrap()
}

#[test]
fn the_median_and_range_of_this_releases_own_hops_come_first() {
    let plan = plan("1.2.6", false, &context(past("minor", "rolling", &[4, 9, 6, 30]), true));
    let estimate = plan.hops[0].estimate.as_ref().unwrap();
    assert_eq!(estimate.basis, Basis::History { hops: 4 });
    assert_eq!(estimate.time, Span { expected_secs: 450, low_secs: 240, high_secs: 1800 }, "median of 4, 6, 9, 30");
    assert_eq!(estimate.downtime, None, "rolling has no downtime");
    let total = plan.estimate.unwrap();
    assert_eq!(total.time.expected_secs, 900);
    assert_eq!((total.time.low_secs, total.time.high_secs), (480, 3600));
    assert_eq!(total.unknown_hops, 0);
}

#[test]
fn only_hops_of_the_same_kind_and_procedure_count_and_only_the_newest() {
    let mut history = past("minor", "migrate-down", &[50]);
    history.extend(past("patch", "rolling", &[50]));
    history.extend(past("minor", "rolling", &[100; 30]));
    history.extend(past("minor", "rolling", &[2; MAX_SAMPLES]));
    let plan = plan("1.1.9", false, &context(history, false));
    let estimate = plan.hops[0].estimate.as_ref().unwrap();
    assert_eq!(estimate.basis, Basis::History { hops: MAX_SAMPLES });
    assert_eq!(estimate.time.high_secs, 120, "older samples are not used");
}

#[test]
fn without_history_the_policys_figures_then_unknown() {
    let plan = plan("1.2.6", false, &context(vec![], true));
    let estimate = plan.hops[0].estimate.as_ref().unwrap();
    assert_eq!(estimate.basis, Basis::Policy { kind: "minor".into() });
    assert_eq!(estimate.time, Span { expected_secs: 1200, low_secs: 600, high_secs: 1800 });
    let none = plan_upgrade_without_times();
    assert!(none.hops.iter().all(|h| h.estimate.is_none()));
    assert_eq!(none.estimate, None, "nothing known, no total");
}

fn plan_upgrade_without_times() -> Plan {
    plan("1.2.6", false, &context(vec![], false))
}

#[test]
fn a_policy_chosen_by_default_claims_no_times_but_history_still_counts() {
    let untimed = plan("1.2.6", false, &context(vec![], false));
    assert!(untimed.hops.iter().all(|h| h.estimate.is_none()));
    let measured = plan("1.2.6", false, &context(past("minor", "rolling", &[3]), false));
    assert!(measured.hops.iter().all(|h| h.estimate.as_ref().unwrap().basis == Basis::History { hops: 1 }));
}

#[test]
fn a_catalog_figure_beats_the_kind_figure_for_its_version_only() {
    let text =
        include_str!("../../../bed/policies/bsr-bed.yaml").to_string() + "\ntypical_minutes: {minor: [10, 30]}\n";
    let text = text.replace(
        "  - {version: 1.2.6, schema: 240, app_version: \"1.2.6\"}",
        "  - {version: 1.2.6, schema: 240, app_version: \"1.2.6\", duration: 40m-1h}",
    );
    let policy = crate::policy::parse(&text, "x").unwrap();
    let context = context(vec![], true);
    let leg = |to: &str| Leg {
        from: v("1.0.4"),
        to: v(to),
        kind: HopKind::Minor,
        procedure: "rolling".into(),
        downtime: false,
    };
    let catalog = estimate(&leg("1.2.6"), &policy, &context).unwrap();
    assert_eq!(catalog.basis, Basis::Catalog { version: v("1.2.6") });
    assert_eq!((catalog.time.low_secs, catalog.time.high_secs), (2400, 3600));
    let kind = estimate(&leg("1.1.9"), &policy, &context).unwrap();
    assert_eq!(kind.basis, Basis::Policy { kind: "minor".into() });
}

#[test]
fn some_hops_unknown_the_total_says_how_many() {
    // History for minor hops only; the policy states nothing (chosen by default).
    let plan = plan("1.2.6", false, &context(past("minor", "rolling", &[10]), false));
    assert_eq!(plan.estimate.as_ref().unwrap().unknown_hops, 0);
    let mut partial = plan.clone();
    partial.hops[1].estimate = None;
    partial.estimate = total(partial.hops.iter().map(|h| h.estimate.as_ref()));
    let total = partial.estimate.clone().unwrap();
    assert_eq!((total.time.expected_secs, total.unknown_hops), (600, 1));
    assert_eq!(remaining(&partial, 0, 0), None, "a remaining hop is unknown");
}

#[test]
fn the_fast_path_and_the_sequential_path_are_compared_on_the_same_terms() {
    let mut history = past("minor", "rolling", &[12, 14, 16]);
    history.push(PastHop {
        kind: "fast-path".into(),
        procedure: "maintenance-jump".into(),
        work_secs: 20 * 60,
        downtime_secs: Some(15 * 60),
    });
    let sequential = plan("1.3.2", false, &context(history.clone(), true));
    assert_eq!(sequential.hops.len(), 3);
    assert_eq!(sequential.estimate.as_ref().unwrap().time.expected_secs, 3 * 14 * 60);
    assert_eq!(sequential.estimate.as_ref().unwrap().downtime, None);
    let fast = &sequential.alternatives[0];
    assert_eq!(fast.strategy, crate::plan::Strategy::FastPath);
    let fast_total = fast.estimate.as_ref().unwrap();
    assert_eq!(fast_total.time.expected_secs, 20 * 60);
    assert_eq!(fast_total.downtime.unwrap().expected_secs, 15 * 60, "measured from its first deploy");

    let chosen_fast = plan("1.3.2", true, &context(history, true));
    assert_eq!(chosen_fast.estimate.as_ref().unwrap().downtime.unwrap().expected_secs, 15 * 60);
    let back = chosen_fast.alternatives[0].estimate.as_ref().unwrap();
    assert_eq!(back.time.expected_secs, 3 * 14 * 60, "the sequential alternative, from the same history");
}

#[test]
fn stated_downtime_is_the_whole_hop() {
    let plan = plan("1.3.2", true, &context(vec![], true));
    let hop = plan.hops[0].estimate.as_ref().unwrap();
    assert_eq!(hop.basis, Basis::Policy { kind: "fast-path".into() });
    assert_eq!(hop.downtime, Some(hop.time));
}

#[test]
fn time_left_counts_down_within_the_hop_and_never_below_zero() {
    let plan = plan("1.3.2", false, &context(past("minor", "rolling", &[10]), false));
    assert_eq!(remaining(&plan, 0, 0), Some(1800));
    assert_eq!(remaining(&plan, 1, 240), Some(600 - 240 + 600));
    assert_eq!(remaining(&plan, 2, 9999), Some(0), "a hop over its time counts as nearly done");
    assert_eq!(remaining(&plan, 3, 0), Some(0));
}

#[test]
fn every_hop_kind_can_be_stated_in_a_policy() {
    let names: Vec<&str> = HopKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, crate::policy::times::HOP_KINDS);
    for kind in HopKind::ALL {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "as the plan's JSON names it");
    }
}

#[test]
fn figures_read_as_a_person_says_them() {
    assert_eq!(about(45), "~45 s");
    assert_eq!(about(12 * 60 + 10), "~12 min");
    assert_eq!(about(3600), "~1 h");
    assert_eq!(about(80 * 60), "~1 h 20 min");
    let span = |l: u64, h: u64| Span { expected_secs: l, low_secs: l, high_secs: h };
    assert_eq!(range_text(&span(600, 1800)), "10–30 min");
    assert_eq!(range_text(&span(600, 600)), "10 min");
    assert_eq!(range_text(&span(40, 1800)), "40 s–30 min");
    assert_eq!(range_text(&span(1800, 4800)), "30 min–1 h 20 min");
}

#[test]
fn absurd_figures_from_an_edited_ledger_do_not_overflow() {
    let history = past("minor", "rolling", &[]).into_iter().chain([u64::MAX, u64::MAX - 1].map(|secs| PastHop {
        kind: "minor".into(),
        procedure: "rolling".into(),
        work_secs: secs,
        downtime_secs: Some(secs),
    }));
    let plan = plan("1.3.2", false, &context(history.collect(), false));
    let total = plan.estimate.as_ref().unwrap();
    assert_eq!(total.time.high_secs, u64::MAX, "sums saturate");
    assert_eq!(remaining(&plan, 0, 0), Some(u64::MAX));
    assert!(about(u64::MAX).starts_with("~") && range_text(&total.time).ends_with(" h"));
}
