//! Rendering a [`Plan`] or a [`Refusal`] as a table or as JSON. Pure: returns strings.

use std::fmt::Write;

use serde::Serialize;

use crate::plan::text::{step_text, steps_text};
use crate::plan::{Hop, HopKind, Plan, Refusal, Step, Strategy};
use crate::policy::Policy;
use crate::sensitive::Disclosure;
use crate::text::display_argv;

pub fn plan_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("a plan always serialises")
}

pub fn refusal_json(refusal: &Refusal) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        refused: &'a Refusal,
    }
    serde_json::to_string_pretty(&Doc { refused: refusal }).expect("a refusal always serialises")
}

pub fn refusal_text(refusal: &Refusal) -> String {
    format!("refused: {}\n  rule:      {}\n  supported: {}", refusal.message, refusal.rule, refusal.supported)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn kind_text(kind: HopKind) -> &'static str {
    match kind {
        HopKind::Patch => "patch",
        HopKind::Minor => "minor",
        HopKind::Major => "major",
        HopKind::FastPath => "fast-path",
        HopKind::PatchDowngrade => "patch-downgrade",
        HopKind::MinorDowngrade => "minor-downgrade",
        HopKind::Restore => "restore",
    }
}

fn strategy_text(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Sequential => "sequential",
        Strategy::FastPath => "fast-path",
        Strategy::Restore => "restore",
    }
}

/// The plan as people read it: a header, the hop table, each hop's steps in full.
pub fn plan_table(plan: &Plan) -> String {
    let mut out = header(plan);
    if plan.hops.is_empty() {
        for w in &plan.warnings {
            let _ = writeln!(out, "{w}");
        }
        return out;
    }
    if !plan.preflight.is_empty() {
        let _ = writeln!(out, "\npreflight");
        for step in &plan.preflight {
            let _ = writeln!(out, "  - {}", step_detail(step));
        }
    }
    out.push('\n');
    out.push_str(&hop_table(plan));
    // The table row says all there is for a plain deploy-and-verify hop; spell out the
    // rest (commands, snapshots, pauses), because that is what the operator confirms.
    for (i, hop) in plan.hops.iter().enumerate().filter(|(_, h)| !is_plain(h)) {
        let _ = writeln!(out, "\nhop {}: {} → {} ({})", i + 1, hop.from, hop.to, hop.procedure);
        if let Some(notes) = hop.release_notes.as_ref().filter(|_| hop.kind == HopKind::Major) {
            let _ = writeln!(out, "  release notes: {notes}");
        }
        for (n, step) in hop.steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", n + 1, step_detail(step));
        }
    }
    if !plan.alternatives.is_empty() {
        let _ = writeln!(out, "\nalternatives");
        for alt in &plan.alternatives {
            let flag = alt.flag.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  - {}{flag}: {}, downtime {}: {}",
                strategy_text(alt.strategy),
                crate::text::count(alt.hops, "hop", "hops"),
                yes_no(alt.downtime),
                alt.summary
            );
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings");
        for w in &plan.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

/// `upgrade bsr 1.0.4 → 1.3.2  (policy bsr, …)` and where the policy and chart came from.
fn header(plan: &Plan) -> String {
    let mut out = String::new();
    let direction = match plan.direction {
        crate::plan::Direction::Upgrade => "upgrade",
        crate::plan::Direction::Rollback => "rollback",
    };
    let release = plan.release.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{direction}{release} {} → {}  (policy {}, strategy {}, downtime {})",
        plan.from,
        plan.to,
        plan.policy,
        strategy_text(plan.strategy),
        yes_no(plan.downtime)
    );
    if let Some(sources) = &plan.sources {
        let _ = writeln!(out, "  policy: {} ({})", sources.policy, crate::digest::short(&sources.policy_digest));
        if let Some(chart) = &sources.chart {
            let _ = writeln!(out, "  chart:  {chart}");
        }
    }
    out
}

/// One row per hop, columns aligned.
fn hop_table(plan: &Plan) -> String {
    let rows: Vec<[String; 6]> = plan
        .hops
        .iter()
        .enumerate()
        .map(|(i, h)| {
            [
                (i + 1).to_string(),
                h.from.to_string(),
                h.to.to_string(),
                kind_text(h.kind).to_string(),
                yes_no(h.downtime).to_string(),
                steps_text(&h.steps),
            ]
        })
        .collect();
    let header = ["HOP", "FROM", "TO", "KIND", "DOWNTIME", "STEPS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A hop the table row describes completely: deploys without value overrides and
/// verifies without checks. Every other step is spelled out below the table.
fn is_plain(hop: &Hop) -> bool {
    hop.steps.iter().all(|s| match s {
        Step::Deploy { set, .. } => set.is_empty(),
        Step::Verify { checks, .. } => checks.is_empty(),
        Step::Backup { .. }
        | Step::Snapshot { .. }
        | Step::Run { .. }
        | Step::WaitGone { .. }
        | Step::Confirm { .. } => false,
    })
}

/// One step with everything an operator needs to judge it (full argv, messages).
pub fn step_detail(step: &Step) -> String {
    match step {
        Step::Run { name, argv } => format!("run {name}: {}", display_argv(argv)),
        Step::Snapshot { message, argv: Some(argv) } => format!("snapshot: {message} ({})", display_argv(argv)),
        Step::Snapshot { message, argv: None } => format!("snapshot: {message} (the operator confirms it was taken)"),
        Step::WaitGone { version, selector } => format!("wait until no {version} pod remains ({selector})"),
        Step::Confirm { message } => format!("confirm: {message}"),
        Step::Verify { version, checks } if !checks.is_empty() => {
            let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
            format!("verify {version} is deployed; checks: {}", names.join(", "))
        }
        Step::Verify { version, .. } => format!("verify {version} is deployed and ready"),
        Step::Backup { .. } | Step::Deploy { .. } => step_text(step),
    }
}

pub fn policy_list(policies: &[Policy]) -> String {
    let width = policies.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for p in policies {
        let charts = if p.charts.is_empty() { "(any other chart)".to_string() } else { p.charts.join(", ") };
        let _ = writeln!(out, "{:<width$}  charts: {charts}\n{:<width$}  {}", p.name, "", p.description);
    }
    out
}

/// One line (or a few) saying how a live run ended and where the release stands, for
/// `disclosure`'s reader (the error may quote the operator's values).
pub fn outcome_text(outcome: &crate::report::Outcome, release: &str, disclosure: Disclosure) -> String {
    use crate::report::Outcome;
    match outcome {
        Outcome::Completed { at } => format!("{release} is at {at}: done"),
        Outcome::Stopped { at, reason } => format!("{release} stopped at {at}: {}", reason.render(disclosure)),
        Outcome::Recovered { failed_hop, error, at } => {
            format!(
                "hop {failed_hop} failed and {release} was brought back to {at}\ncause: {}",
                error.render(disclosure)
            )
        }
        Outcome::Failed { error, next_steps } => {
            format!("{release} needs a person: {}\nnext: {next_steps}", error.render(disclosure))
        }
    }
}
