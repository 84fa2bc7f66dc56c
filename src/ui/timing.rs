//! The plan's time, as people read it: what each hop is expected to take and why, the
//! total and its downtime, and the alternatives on the same terms. Pure, like `render`.

use super::lines::{push_line, strategy_text};
use crate::plan::Plan;
use crate::plan::estimate::{Estimate, Span, Total, about, range_text};
use crate::printer::{Look, Role};

/// The `expected time` section of a plan; empty for a plan with nothing to do.
pub fn expected(plan: &Plan, look: Look) -> String {
    let mut out = String::new();
    if plan.hops.is_empty() {
        return out;
    }
    let title = look.paint(Role::Heading, "expected time");
    let Some(total) = &plan.estimate else {
        let why = "no hop like these is on record for this release, and the policy states no time that applies (`typical_minutes`, a catalog `duration`)";
        push_line(&mut out, look, &format!("\n{title}: unknown: {why}"));
        return out;
    };
    let of = match total.unknown_hops {
        0 => String::new(),
        n => format!(" for {} of {} hops ({n} unknown)", plan.hops.len() - n, plan.hops.len()),
    };
    push_line(&mut out, look, &format!("\n{title}: {}{of}", total_text(total)));
    for (i, hop) in plan.hops.iter().enumerate() {
        let figure = match &hop.estimate {
            Some(estimate) => hop_text(estimate),
            None => "unknown: no hop like it on record, and no figure in the policy".to_string(),
        };
        push_line(&mut out, look, &format!("  hop {} (→ {}): {figure}", i + 1, hop.to));
    }
    if let Some(compared) = comparison(plan) {
        push_line(&mut out, look, &format!("  compared: {compared}"));
    }
    out
}

/// "~42 min (36–48 min), no downtime" or "..., ~15 min of downtime".
fn total_text(total: &Total) -> String {
    let downtime = match &total.downtime {
        Some(d) => format!("{} of downtime", about(d.expected_secs)),
        None => "no downtime".to_string(),
    };
    format!("{}{}, {downtime}", about(total.time.expected_secs), range_after(&total.time))
}

/// ` (10–30 min)`, or nothing when the range is one figure.
fn range_after(span: &Span) -> String {
    if span.reads_as_one_figure() {
        return String::new();
    }
    format!(" ({})", range_text(span))
}

/// "~14 min (12–16 min): median of this release's last 3 hops like it".
fn hop_text(estimate: &Estimate) -> String {
    let downtime = estimate.downtime.map(|d| format!(", {} of downtime", about(d.expected_secs))).unwrap_or_default();
    format!("{}{}{downtime}: {}", about(estimate.time.expected_secs), range_after(&estimate.time), estimate.basis)
}

/// "sequential: 3 hops, ~45 min, no downtime — fast-path: 1 hop, ~20 min, ~15 min of
/// downtime": the plan and each alternative whose time is known.
fn comparison(plan: &Plan) -> Option<String> {
    let mut parts = vec![];
    let shape = |strategy, hops, total: &Total| {
        let downtime = match &total.downtime {
            Some(d) => format!("{} of downtime", about(d.expected_secs)),
            None => "no downtime".to_string(),
        };
        let unknown = if total.unknown_hops > 0 { "+" } else { "" };
        format!(
            "{}: {}, {}{unknown}, {downtime}",
            strategy_text(strategy),
            crate::text::count(hops, "hop", "hops"),
            about(total.time.expected_secs)
        )
    };
    for alternative in &plan.alternatives {
        if let Some(total) = &alternative.estimate {
            parts.push(shape(alternative.strategy, alternative.hops, total));
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.insert(0, shape(plan.strategy, plan.hops.len(), plan.estimate.as_ref()?));
    Some(parts.join(" — "))
}

/// `, ~20 min` after an alternative's hop count, when its time is known.
pub fn total_suffix(total: Option<&Total>) -> String {
    match total {
        Some(t) if t.unknown_hops == 0 => format!(", {}", about(t.time.expected_secs)),
        Some(t) => format!(", {}+", about(t.time.expected_secs)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Available, Context, UpgradeRequest, plan_upgrade};

    fn plan(stated_times: bool) -> Plan {
        let text = crate::policy::presets::text("bsr").unwrap().to_string()
            + "\ntypical_minutes:\n  minor: [10, 30]\n  fast-path: [20, 40]\n";
        let policy = crate::policy::parse(&text, "my-bsr").unwrap();
        let available: Vec<Available> =
            ["1.0.4", "1.1.9", "1.2.6", "1.3.2"].iter().map(|v| Available::new(v.parse().unwrap())).collect();
        let request = UpgradeRequest {
            current: "1.0.4".parse().unwrap(),
            target: "1.3.2".parse().unwrap(),
            fast_path: false,
            devel: false,
        };
        plan_upgrade(&policy, &available, &request, &Context { stated_times, ..Context::default() }).unwrap()
    }

    #[test]
    fn the_plan_and_its_alternative_on_the_same_terms() {
        let text = expected(&plan(true), Look::PLAIN);
        assert_eq!(
            text,
            "\nexpected time: ~1 h (30 min–1 h 30 min), no downtime\n\
             \x20 hop 1 (→ 1.1.9): ~20 min (10–30 min): the policy's typical minor hop\n\
             \x20 hop 2 (→ 1.2.6): ~20 min (10–30 min): the policy's typical minor hop\n\
             \x20 hop 3 (→ 1.3.2): ~20 min (10–30 min): the policy's typical minor hop\n\
             \x20 compared: sequential: 3 hops, ~1 h, no downtime — fast-path: 1 hop, ~30 min, ~30 min of downtime\n"
        );
        assert_eq!(total_suffix(plan(true).alternatives[0].estimate.as_ref()), ", ~30 min");
    }

    #[test]
    fn unknown_is_said_as_unknown() {
        let text = expected(&plan(false), Look::PLAIN);
        assert!(text.starts_with("\nexpected time: unknown: no hop like these is on record"), "{text}");
        assert_eq!(total_suffix(None), "");
    }
}
