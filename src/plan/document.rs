//! A reviewed plan file: the [`Plan`] a live `--plan -o json` prints, read back by
//! `--execute`. Pure: the caller reads the file and gathers the release again; this module
//! says whether the text is a plan this version can execute, and what differs between the
//! plan reviewed and the plan the release gives now.
//!
//! The file is the plan itself, not an envelope around it: the value that was reviewed is
//! the value that is walked. Its `digest` covers every field but itself and the
//! estimates: an estimate learns from the ledger's history, which grows with every run on
//! the release, so it may differ between review and execution without the plan doing so.

use super::{Hop, Plan, Step};

/// The plan document's format. Raise it when a field changes meaning or a field the
/// executor needs is added: an older tool then refuses the file instead of walking a
/// plan it half understands.
pub const SCHEMA: u32 = 1;

/// Why a file cannot be executed. Each is bad input (exit 2) and nothing is read from the
/// cluster before it is said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("{what} is not JSON: {reason}\nhint: {HOW_TO_MAKE}")]
    NotJson { what: String, reason: String },
    #[error("{what} is not a plan: {reason}\nhint: {HOW_TO_MAKE}")]
    NotAPlan { what: String, reason: String },
    #[error(
        "{what} is a plan of schema {found}, newer than this helm-safe-upgrade reads ({SCHEMA})\nhint: execute it with the version that made it, or make the plan again with this one"
    )]
    Newer { what: String, found: u64 },
    #[error(
        "{what} is an offline plan (--from): it names no release revision, so nothing can check that the release is still as planned\nhint: plan against the live release: helm safe-upgrade RELEASE --to VERSION --plan -o json > plan.json"
    )]
    Offline { what: String },
    #[error(
        "{what} was changed after it was made: its digest is {recorded}, its content's is {found}\nhint: a plan file is executed exactly as reviewed; make it again ({HOW_TO_MAKE_SHORT}) rather than editing it"
    )]
    Tampered { what: String, recorded: String, found: String },
}

const HOW_TO_MAKE: &str = "make one with `helm safe-upgrade RELEASE --to VERSION --plan -o json > plan.json` (or `helm safe-rollback RELEASE --plan -o json`)";
const HOW_TO_MAKE_SHORT: &str = "--plan -o json";

/// The digest of a plan as a document: canonical JSON of every field except `digest` and
/// the estimates, so key order and whitespace do not count and every other edit does.
pub fn digest(plan: &Plan) -> String {
    let mut covered = plan.clone();
    covered.digest = None;
    covered.estimate = None;
    for hop in &mut covered.hops {
        hop.estimate = None;
    }
    for alternative in &mut covered.alternatives {
        alternative.estimate = None;
    }
    let value = serde_json::to_value(&covered).expect("a plan always serialises");
    crate::digest::json_sha256(&value)
}

/// The plan with its document digest set: what a live `--plan` prints.
pub fn sealed(mut plan: Plan) -> Plan {
    plan.digest = Some(digest(&plan));
    plan
}

/// Read a plan file's text (`what` names it in messages): a live plan of a schema this
/// version reads, unchanged since it was printed.
pub fn read(text: &str, what: &str) -> Result<Plan, DocumentError> {
    let what = what.to_string();
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DocumentError::NotJson { what: what.clone(), reason: e.to_string() })?;
    let not_a_plan = |reason: &str| DocumentError::NotAPlan { what: what.clone(), reason: reason.to_string() };
    let object = value.as_object().ok_or_else(|| not_a_plan("it is not a JSON object"))?;
    if !object.contains_key("direction") || !object.contains_key("hops") {
        return Err(not_a_plan("it has no `direction` and `hops`"));
    }
    // Before the plan is parsed: a newer schema may not parse, and should be named as
    // newer rather than as broken.
    match object.get("schema").and_then(serde_json::Value::as_u64) {
        None | Some(0) => return Err(not_a_plan("it has no `schema` (made by a version before plan files?)")),
        Some(found) if found > u64::from(SCHEMA) => return Err(DocumentError::Newer { what, found }),
        Some(_) => {}
    }
    let plan: Plan = serde_json::from_value(value).map_err(|e| not_a_plan(&e.to_string()))?;
    if plan.made_from.is_none() || plan.release.is_none() {
        return Err(DocumentError::Offline { what });
    }
    let found = digest(&plan);
    match &plan.digest {
        Some(recorded) if *recorded == found => Ok(plan),
        recorded => Err(DocumentError::Tampered {
            what,
            recorded: recorded
                .as_deref()
                .map_or_else(|| "missing".to_string(), |d| crate::digest::short(d).to_string()),
            found: crate::digest::short(&found).to_string(),
        }),
    }
}

/// What differs between the plan reviewed and the plan made now from the live release,
/// one line each, in the plan's order; empty: the reviewed plan may be walked. Estimates,
/// warnings, alternatives and `--diff` output are not compared: they describe the plan,
/// they are not what it does or depends on.
pub fn changes(reviewed: &Plan, now: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, then: String, now: String| {
        if then != now {
            out.push(format!("{what}: {then} when planned, {now} now"));
        }
    };
    let opt = |s: Option<&str>| s.map_or_else(|| "none".to_string(), str::to_string);
    differ("the release", opt(reviewed.release.as_deref()), opt(now.release.as_deref()));
    differ("the namespace", opt(reviewed.namespace.as_deref()), opt(now.namespace.as_deref()));
    let (then_made, now_made) =
        (reviewed.made_from.clone().unwrap_or_default(), now.made_from.clone().unwrap_or_default());
    differ("the release's revision", then_made.revision.to_string(), now_made.revision.to_string());
    differ("the release's version", reviewed.from.to_string(), now.from.to_string());
    differ("the release's status", then_made.status, now_made.status);
    let short = |d: &str| crate::digest::short(d).to_string();
    differ("the release's user values", short(&then_made.values_digest), short(&now_made.values_digest));
    differ(
        "the operator's values (-f/--set*)",
        then_made.overrides_digest.as_deref().map_or_else(|| "none".to_string(), short),
        now_made.overrides_digest.as_deref().map_or_else(|| "none".to_string(), short),
    );
    differ("the chart source", then_made.chart_reference, now_made.chart_reference);
    let policy = |p: &Plan| {
        p.sources.as_ref().map_or_else(|| p.policy.clone(), |s| format!("{} ({})", s.policy, short(&s.policy_digest)))
    };
    let policy_digest = |p: &Plan| p.sources.as_ref().map(|s| s.policy_digest.clone());
    if policy_digest(reviewed) != policy_digest(now) || reviewed.policy != now.policy {
        out.push(format!("the policy: {} when planned, {} now", policy(reviewed), policy(now)));
    }
    let mut differ = |what: &str, then: String, now: String| {
        if then != now {
            out.push(format!("{what}: {then} when planned, {now} now"));
        }
    };
    differ("the direction", format!("{:?}", reviewed.direction), format!("{:?}", now.direction));
    differ("the target", reviewed.to.to_string(), now.to.to_string());
    differ("the strategy", format!("{:?}", reviewed.strategy), format!("{:?}", now.strategy));
    differ("the steps before the first hop", steps_text(&reviewed.preflight), steps_text(&now.preflight));
    differ("the path", path_text(&reviewed.hops), path_text(&now.hops));
    if path_text(&reviewed.hops) == path_text(&now.hops) {
        for (then, now) in reviewed.hops.iter().zip(&now.hops) {
            out.extend(hop_changes(then, now));
        }
    }
    out
}

/// What differs within one hop of the same path: its procedure, its steps, its value
/// rules, and what the preflight rendered (chart and values, by digest).
fn hop_changes(then: &Hop, now: &Hop) -> Vec<String> {
    let hop = format!("hop {} → {}", then.from, then.to);
    let mut out = Vec::new();
    let mut differ = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{hop}: {what}: {a} when planned, {b} now"));
        }
    };
    differ("procedure", then.procedure.clone(), now.procedure.clone());
    differ("downtime", then.downtime.to_string(), now.downtime.to_string());
    differ("steps", steps_text(&then.steps), steps_text(&now.steps));
    differ("value rules", json_text(&then.values), json_text(&now.values));
    // Every deploy the preflight rendered: the hop's last, then its others (maintenance).
    let digests = |h: &Hop| {
        h.check.as_ref().map(|c| {
            let others = c.other_deploys.iter();
            let chart = std::iter::once(&c.chart_digest).chain(others.clone().map(|d| &d.chart_digest));
            let values = std::iter::once(&c.values_digest).chain(others.map(|d| &d.values_digest));
            let short = |d: &String| crate::digest::short(d).to_string();
            (chart.map(short).collect::<Vec<_>>().join(", "), values.map(short).collect::<Vec<_>>().join(", "))
        })
    };
    match (digests(then), digests(now)) {
        (Some((chart_a, values_a)), Some((chart_b, values_b))) => {
            differ("chart digest", chart_a, chart_b);
            differ("values digest", values_a, values_b);
        }
        (a, b) => differ(
            "rendered before the first change",
            (if a.is_some() { "yes" } else { "no" }).to_string(),
            (if b.is_some() { "yes" } else { "no" }).to_string(),
        ),
    }
    out
}

fn path_text(hops: &[Hop]) -> String {
    let Some(first) = hops.first() else { return "no hops".to_string() };
    let mut text = first.from.to_string();
    for hop in hops {
        text.push_str(&format!(" → {} ({})", hop.to, hop.kind.as_str()));
    }
    text
}

/// Steps compared as their JSON, shown by action: two lists that differ in a step's
/// argument show the same actions, and the hop's line still says that the steps differ.
fn steps_text(steps: &[Step]) -> String {
    let actions: Vec<&str> = steps.iter().map(Step::action).collect();
    format!("[{}] {}", actions.join(", "), crate::digest::short(&json_digest(&steps)))
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    crate::digest::short(&json_digest(value)).to_string()
}

fn json_digest<T: serde::Serialize + ?Sized>(value: &T) -> String {
    crate::digest::json_sha256(&serde_json::to_value(value).expect("plan parts serialise"))
}

#[cfg(test)]
mod tests;
