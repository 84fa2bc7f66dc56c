//! The plan document: its digest, reading a file back (and every refusal), and the
//! staleness comparison, on plans the real planner makes from the bed's BSR policy.

use super::*;
use crate::plan::estimate::PastHop;
use crate::plan::{Available, Context, HopCheck, MadeFrom, Sources, UpgradeRequest, plan_upgrade};
use crate::version::ChartVersion;

fn v(s: &str) -> ChartVersion {
    s.parse().unwrap()
}

fn made_from() -> MadeFrom {
    MadeFrom {
        revision: 3,
        status: "deployed".into(),
        values_digest: crate::digest::json_sha256(&serde_json::json!({"replicaCount": 1})),
        chart_reference: "demo/bsr".into(),
        overrides_digest: None,
    }
}

/// A live plan 1.0.4 → 1.3.0 (three hops), each hop rendered, with times learnt from
/// `history` (minutes of past minor hops).
fn live_plan(history: &[u64]) -> Plan {
    let policy = crate::policy::parse(include_str!("../../../bed/policies/bsr-bed.yaml"), "bsr-bed").unwrap();
    let available: Vec<_> = "1.0.4,1.1.9,1.2.6,1.3.0".split(',').map(|s| Available::new(v(s))).collect();
    let context = Context {
        release: Some("bsr".into()),
        namespace: Some("prod".into()),
        chart_name: Some("bsr".into()),
        sources: Some(Sources {
            policy: "file bsr-bed.yaml".into(),
            policy_digest: policy.digest.clone(),
            chart: Some("demo/bsr (--chart)".into()),
            chart_commands: vec![],
        }),
        history: history
            .iter()
            .map(|m| PastHop {
                kind: "minor".into(),
                procedure: "rolling".into(),
                work_secs: m * 60,
                downtime_secs: None,
            })
            .collect(),
        stated_times: true,
        made_from: Some(made_from()),
        ..Context::default()
    };
    let request = UpgradeRequest { current: v("1.0.4"), target: v("1.3.0"), fast_path: false, devel: false };
    let mut plan = plan_upgrade(&policy, &available, &request, &context).unwrap();
    for hop in &mut plan.hops {
        hop.check = Some(HopCheck {
            chart_digest: crate::digest::sha256(format!("chart {}", hop.to).as_bytes()),
            values_digest: crate::digest::sha256(b"values"),
            values_keys: vec!["replicaCount".into()],
            values_view: None,
            warnings: vec![],
            changes: None,
            other_deploys: vec![],
        });
    }
    plan
}

/// One edit of a plan, named by what it changes.
type Edit = Box<dyn Fn(&mut Plan)>;

fn file_text(plan: &Plan) -> String {
    serde_json::to_string_pretty(&sealed(plan.clone())).unwrap()
}

#[test]
fn the_digest_ignores_key_order_and_estimates_and_covers_everything_else() {
    let plan = live_plan(&[]);
    assert_eq!(plan.schema, SCHEMA);
    let base = digest(&plan);
    // Key order: the same document with every object's keys reversed.
    fn reversed(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut pairs: Vec<_> = map.into_iter().collect();
                pairs.reverse();
                let text = format!(
                    "{{{}}}",
                    pairs
                        .into_iter()
                        .map(|(k, v)| format!("{}:{}", serde_json::Value::String(k), reversed(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                serde_json::from_str(&text).unwrap()
            }
            serde_json::Value::Array(items) => items.into_iter().map(reversed).collect(),
            other => other,
        }
    }
    let text = file_text(&plan);
    let reordered = reversed(serde_json::from_str(&text).unwrap()).to_string();
    assert_eq!(read(&reordered, "plan.json").unwrap().digest.unwrap(), base);
    // Estimates learnt from a longer history do not count.
    let later = live_plan(&[4, 9, 6]);
    assert_ne!(later.hops[1].estimate, plan.hops[1].estimate, "the history changed the estimate");
    assert_eq!(digest(&later), base);
    // Anything else does.
    let edits: Vec<(&str, Edit)> = vec![
        ("a hop's target", Box::new(|p| p.hops[0].to = v("1.1.8"))),
        ("the revision", Box::new(|p| p.made_from.as_mut().unwrap().revision = 4)),
        ("the values digest", Box::new(|p| p.made_from.as_mut().unwrap().values_digest = "sha256:00".into())),
        ("a chart digest", Box::new(|p| p.hops[2].check.as_mut().unwrap().chart_digest = "sha256:00".into())),
        ("the policy digest", Box::new(|p| p.sources.as_mut().unwrap().policy_digest = "sha256:00".into())),
        ("a warning", Box::new(|p| p.warnings.push("reviewed".into()))),
        ("a step", Box::new(|p| p.hops[1].steps.pop().map(|_| ()).unwrap())),
        ("the schema", Box::new(|p| p.schema = 2)),
    ];
    for (what, edit) in edits {
        let mut edited = plan.clone();
        edit(&mut edited);
        assert_ne!(digest(&edited), base, "{what} is covered");
    }
    let mut with_digest = plan.clone();
    with_digest.digest = Some("sha256:anything".into());
    assert_eq!(digest(&with_digest), base, "the digest does not cover itself");
}

#[test]
fn a_sealed_plan_reads_back_as_itself() {
    let plan = sealed(live_plan(&[5]));
    assert_eq!(read(&file_text(&plan), "plan.json").unwrap(), plan);
}

#[test]
fn files_that_are_not_executable_plans_are_refused_by_kind() {
    let what = "plan.json";
    assert!(matches!(read("helm safe-upgrade …", what), Err(DocumentError::NotJson { .. })));
    assert!(matches!(read("[1, 2]", what), Err(DocumentError::NotAPlan { .. })));
    assert!(matches!(read(r#"{"result": "completed"}"#, what), Err(DocumentError::NotAPlan { .. })));
    // A plan recorded before plan files (no schema), and one that is not a plan inside.
    let mut old: serde_json::Value = serde_json::from_str(&file_text(&live_plan(&[]))).unwrap();
    old.as_object_mut().unwrap().remove("schema");
    assert!(matches!(read(&old.to_string(), what), Err(DocumentError::NotAPlan { .. })));
    let broken = r#"{"schema": 1, "direction": "sideways", "hops": []}"#;
    assert!(matches!(read(broken, what), Err(DocumentError::NotAPlan { .. })));
    // Newer: named as such even when this version could not parse the rest.
    let newer = r#"{"schema": 2, "direction": "upgrade", "hops": [], "something": "new"}"#;
    let error = read(newer, what).unwrap_err();
    assert_eq!(error, DocumentError::Newer { what: what.into(), found: 2 });
    assert!(error.to_string().contains("schema 2, newer than this helm-safe-upgrade reads (1)"), "{error}");
    // Offline: no release revision.
    let mut offline = live_plan(&[]);
    offline.made_from = None;
    offline.release = None;
    assert!(matches!(read(&file_text(&offline), what), Err(DocumentError::Offline { .. })));
    // Tampered: a hop's target edited, or the digest removed.
    let text = file_text(&live_plan(&[]));
    let edited = text.replacen("\"to\": \"1.2.6\"", "\"to\": \"1.2.5\"", 1);
    assert_ne!(edited, text);
    let error = read(&edited, what).unwrap_err();
    assert!(matches!(error, DocumentError::Tampered { .. }), "{error}");
    assert!(error.to_string().contains("was changed after it was made"), "{error}");
    let mut no_digest: serde_json::Value = serde_json::from_str(&text).unwrap();
    no_digest.as_object_mut().unwrap().remove("digest");
    let error = read(&no_digest.to_string(), what).unwrap_err();
    assert!(matches!(&error, DocumentError::Tampered { recorded, .. } if recorded == "missing"), "{error}");
}

#[test]
fn the_same_release_gives_no_changes_whatever_the_estimates() {
    assert_eq!(changes(&live_plan(&[]), &live_plan(&[4, 9, 6])), Vec::<String>::new());
}

#[test]
fn each_kind_of_change_is_named() {
    let reviewed = live_plan(&[]);
    let cases: Vec<(&str, Edit)> = vec![
        ("the release's revision: 3 when planned, 4 now", Box::new(|p| p.made_from.as_mut().unwrap().revision = 4)),
        (
            "the release's status: deployed when planned, failed now",
            Box::new(|p| p.made_from.as_mut().unwrap().status = "failed".into()),
        ),
        ("the release's user values: ", Box::new(|p| p.made_from.as_mut().unwrap().values_digest = "sha256:0".into())),
        (
            "the operator's values (-f/--set*): none when planned, sha256:1",
            Box::new(|p| p.made_from.as_mut().unwrap().overrides_digest = Some("sha256:1".into())),
        ),
        (
            "the chart source: demo/bsr when planned, oci://x/bsr now",
            Box::new(|p| p.made_from.as_mut().unwrap().chart_reference = "oci://x/bsr".into()),
        ),
        (
            "the policy: file bsr-bed.yaml (",
            Box::new(|p| p.sources.as_mut().unwrap().policy_digest = "sha256:9".into()),
        ),
        ("the release's version: 1.0.4 when planned, 1.1.9 now", Box::new(|p| p.from = v("1.1.9"))),
        (
            "the path: 1.0.4 → 1.1.9 (minor) → 1.2.6 (minor) → 1.3.0 (minor) when planned",
            Box::new(|p| {
                p.hops.remove(0);
            }),
        ),
        ("hop 1.1.9 → 1.2.6: steps: ", Box::new(|p| p.hops[1].steps.truncate(1))),
        (
            "hop 1.1.9 → 1.2.6: procedure: rolling when planned, other now",
            Box::new(|p| p.hops[1].procedure = "other".into()),
        ),
        (
            "hop 1.2.6 → 1.3.0: chart digest: ",
            Box::new(|p| p.hops[2].check.as_mut().unwrap().chart_digest = "sha256:5".into()),
        ),
        (
            "hop 1.0.4 → 1.1.9: values digest: ",
            Box::new(|p| p.hops[0].check.as_mut().unwrap().values_digest = "sha256:6".into()),
        ),
        (
            "hop 1.0.4 → 1.1.9: rendered before the first change: yes when planned, no now",
            Box::new(|p| {
                p.hops[0].check = None;
            }),
        ),
        ("the release: bsr when planned, other now", Box::new(|p| p.release = Some("other".into()))),
    ];
    for (named, edit) in cases {
        let mut now = reviewed.clone();
        edit(&mut now);
        let found = changes(&reviewed, &now);
        assert_eq!(found.len(), 1, "one change for {named:?}: {found:?}");
        assert!(found[0].starts_with(named), "{named:?} in {found:?}");
    }
    let mut now = reviewed.clone();
    now.warnings.push("a new warning".into());
    now.alternatives.clear();
    assert!(changes(&reviewed, &now).is_empty(), "warnings and alternatives describe; they are not compared");
}
