//! Rendering a [`Plan`] or a [`Refusal`] as a table or as JSON, and a run's outcome. Pure:
//! returns strings, coloured and wrapped as the [`Look`] of the stream they are for says
//! (the printer decides it; `Look::PLAIN` gives the text of logs and pipes).

use std::fmt::Write;

use serde::Serialize;

use super::lines::{push_line, strategy_text};
use crate::plan::text::{step_text, steps_text};
use crate::plan::{Hop, HopKind, Plan, Refusal, Step};
use crate::policy::Policy;
use crate::printer::{Look, Role};
use crate::sensitive::Disclosure;
use crate::text::{display_argv, for_terminal, width};

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

/// A refusal for people: `refused:` in red, the rule and the supported path below. Not
/// wrapped: the caller puts `error: ` before it and wraps the whole.
pub fn refusal_text(refusal: &Refusal, look: Look) -> String {
    format!(
        "{}: {}\n  rule:      {}\n  supported: {}",
        look.paint(Role::Bad, "refused"),
        refusal.message,
        refusal.rule,
        refusal.supported
    )
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The plan as people read it: a header, the hop table, each hop's steps in full, the
/// alternatives and warnings, coloured and wrapped as `look` says.
pub fn plan_table(plan: &Plan, look: Look) -> String {
    let mut out = header(plan, look);
    if plan.hops.is_empty() {
        for w in &plan.warnings {
            push_line(&mut out, look, w);
        }
        return out;
    }
    if !plan.preflight.is_empty() {
        push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, "preflight")));
        for step in &plan.preflight {
            push_line(&mut out, look, &format!("  - {}", step_detail(step)));
        }
    }
    out.push('\n');
    out.push_str(&hop_table(plan, look));
    // The table row says all there is for a plain deploy-and-verify hop; spell out the
    // rest (commands, snapshots, pauses), because that is what the operator confirms.
    for (i, hop) in plan.hops.iter().enumerate().filter(|(_, h)| !is_plain(h)) {
        // Under `versions: app` the policy's rules speak of app versions: show them too.
        let app = hop.app.as_ref().map(|a| format!(", app {} → {}", a.from, a.to)).unwrap_or_default();
        let title = format!("hop {}: {} → {} ({}{app})", i + 1, hop.from, hop.to, hop.procedure);
        push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, &title)));
        if let Some(notes) = hop.release_notes.as_ref().filter(|_| hop.kind == HopKind::Major) {
            push_line(&mut out, look, &format!("  release notes: {notes}"));
        }
        for (n, step) in hop.steps.iter().enumerate() {
            push_line(&mut out, look, &format!("  {}. {}", n + 1, step_detail(step)));
        }
    }
    out.push_str(&chart_commands(plan, look));
    out.push_str(&value_rules(plan, look));
    out.push_str(&checks(plan, look));
    out.push_str(&super::timing::expected(plan, look));
    if !plan.alternatives.is_empty() {
        push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, "alternatives")));
        for alt in &plan.alternatives {
            let flag = alt.flag.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
            let line = format!(
                "  - {}{flag}: {}, {}{}: {}",
                strategy_text(alt.strategy),
                crate::text::count(alt.hops, "hop", "hops"),
                downtime(alt.downtime, look),
                super::timing::total_suffix(alt.estimate.as_ref()),
                alt.summary
            );
            push_line(&mut out, look, &line);
        }
    }
    if !plan.warnings.is_empty() {
        push_line(&mut out, look, &format!("\n{}", look.paint(Role::Notice, "warnings")));
        for w in &plan.warnings {
            push_line(&mut out, look, &format!("  - {w}"));
        }
    }
    out
}

/// What the preflight found, hop by hop: the chart and values each hop deploys (by
/// digest), the values the chart does not declare, and with `--diff` what the hop changes.
fn checks(plan: &Plan, look: Look) -> String {
    let mut out = String::new();
    if let Some(why) = &plan.not_rendered {
        push_line(&mut out, look, &format!("\n{} {why}", look.paint(Role::Notice, "not rendered:")));
        return out;
    }
    let checked: Vec<_> =
        plan.hops.iter().enumerate().filter_map(|(i, h)| h.check.as_ref().map(|c| (i, h, c))).collect();
    if checked.is_empty() {
        return out;
    }
    let title = "checked: every hop rendered by helm with the values it deploys";
    push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, title)));
    for (i, hop, check) in checked {
        let line = format!(
            "  hop {} (→ {}): chart {}, values {}",
            i + 1,
            hop.to,
            crate::digest::short(&check.chart_digest),
            crate::digest::short(&check.values_digest)
        );
        push_line(&mut out, look, &line);
        for other in &check.other_deploys {
            let line = format!(
                "    and its deploy of {} (step {}): chart {}, values {}",
                other.version,
                // Saturating: a plan file is read back (`--execute`), and its digest proves
                // no author; a panic here came after the run had taken the lock.
                other.step.saturating_add(1),
                crate::digest::short(&other.chart_digest),
                crate::digest::short(&other.values_digest)
            );
            push_line(&mut out, look, &line);
        }
        for warning in &check.warnings {
            push_line(
                &mut out,
                look,
                &format!("    {} {}", look.paint(Role::Notice, "warning:"), for_terminal(warning)),
            );
        }
        if let Some(changes) = &check.changes {
            hop_changes(&mut out, look, changes);
        }
    }
    out
}

/// `--diff`: the resources a hop adds, removes and changes, the values keys that differ,
/// and with `--diff=full` the unified diff (unwrapped: a diff's lines are its content).
fn hop_changes(out: &mut String, look: Look, changes: &crate::plan::HopChanges) {
    for line in changes.manifests.summary_lines() {
        push_line(out, look, &format!("    {}", for_terminal(&line)));
    }
    if !changes.values.is_empty() {
        let keys: Vec<String> = changes.values.iter().map(|c| c.line(Disclosure::Redacted)).collect();
        push_line(out, look, &format!("    values: {}", for_terminal(&keys.join(", "))));
    }
    if let Some(unified) = changes.unified.as_deref().filter(|u| !u.is_empty()) {
        for line in unified.lines() {
            let _ = writeln!(out, "      {}", for_terminal(line));
        }
    }
}

/// Every command a policy shipped in the chart would run, the checks' argv included
/// (the table names checks only): the operator allowed the vendor's commands, and sees
/// them all here before confirming.
fn chart_commands(plan: &Plan, look: Look) -> String {
    let mut out = String::new();
    let Some(commands) = plan.sources.as_ref().map(|s| &s.chart_commands).filter(|c| !c.is_empty()) else {
        return out;
    };
    let title = "commands from the chart (allowed by --allow-chart-commands; placeholders filled per hop)";
    push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, title)));
    for command in commands {
        push_line(&mut out, look, &format!("  - {}", command.line()));
    }
    out
}

/// The policy's value rules the plan crosses, by hop, with the vendor's words: what the
/// operator's values must hold, and what the tool changes in them.
fn value_rules(plan: &Plan, look: Look) -> String {
    let mut out = String::new();
    for (i, hop) in plan.hops.iter().enumerate().filter(|(_, h)| !h.values.is_empty()) {
        if out.is_empty() {
            push_line(&mut out, look, &format!("\n{}", look.paint(Role::Heading, "values")));
        }
        for rule in &hop.values {
            let undone = plan.direction == crate::plan::Direction::Rollback
                && matches!(rule.change, crate::policy::values::ValueChange::Rename { .. });
            let what = if undone { format!("undo {}", rule.describe()) } else { rule.describe() };
            let why = rule.message.as_deref().map(|m| format!(": {}", crate::text::one_line(m))).unwrap_or_default();
            push_line(&mut out, look, &format!("  - hop {} (→ {}): {what} ({} on){why}", i + 1, hop.to, rule.version));
        }
    }
    out
}

/// `downtime yes` stands out; `downtime no` is the ordinary case.
fn downtime(yes: bool, look: Look) -> String {
    if yes { look.paint(Role::Notice, "downtime yes").into_owned() } else { "downtime no".to_string() }
}

/// `upgrade bsr 1.0.4 → 1.3.2  (policy bsr, …)` and where the policy and chart came from.
fn header(plan: &Plan, look: Look) -> String {
    let mut out = String::new();
    let direction = plan.direction.as_str();
    let release = plan.release.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
    let title = format!("{direction}{release} {} → {}", plan.from, plan.to);
    let line = format!(
        "{}  (policy {}, strategy {}, {})",
        look.paint(Role::Heading, &title),
        plan.policy,
        strategy_text(plan.strategy),
        downtime(plan.downtime, look)
    );
    push_line(&mut out, look, &line);
    if let Some(sources) = &plan.sources {
        let policy = format!("  policy: {} ({})", sources.policy, crate::digest::short(&sources.policy_digest));
        push_line(&mut out, look, &policy);
        if let Some(chart) = &sources.chart {
            push_line(&mut out, look, &format!("  chart:  {chart}"));
        }
    }
    out
}

/// The narrowest the STEPS column is made, however wide the columns before it.
const MIN_STEPS_WIDTH: usize = 24;

/// One row per hop, columns aligned. On a terminal the STEPS column wraps between words,
/// its continuation lines starting under STEPS, so the table keeps its shape.
fn hop_table(plan: &Plan, look: Look) -> String {
    let rows: Vec<[String; 6]> = plan
        .hops
        .iter()
        .enumerate()
        .map(|(i, h)| {
            [
                (i + 1).to_string(),
                h.from.to_string(),
                h.to.to_string(),
                h.kind.as_str().to_string(),
                yes_no(h.downtime).to_string(),
                steps_text(&h.steps),
            ]
        })
        .collect();
    let header = ["HOP", "FROM", "TO", "KIND", "DOWNTIME", "STEPS"].map(String::from);
    let mut widths = header.clone().map(|h| width(&h));
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let steps_at: usize = widths[..5].iter().map(|w| w + 2).sum();
    let room = look.width.map(|w| w.saturating_sub(steps_at).max(MIN_STEPS_WIDTH));
    let pad = |column: usize, cell: &str| " ".repeat(widths[column] - width(cell) + 2);
    let mut out = String::new();
    let titles: String = header[..5].iter().enumerate().map(|(i, h)| format!("{h}{}", pad(i, h))).collect();
    let _ = writeln!(out, "{}", look.paint(Role::Heading, &format!("{titles}{}", header[5])));
    for row in &rows {
        let mut line = String::new();
        for (column, cell) in row[..5].iter().enumerate() {
            match cell_role(column, cell) {
                Some(role) => line.push_str(&look.paint(role, cell)),
                None => line.push_str(cell),
            }
            line.push_str(&pad(column, cell));
        }
        let steps = match room {
            Some(room) => crate::text::wrap(&row[5], room, 0),
            None => vec![row[5].clone()],
        };
        let _ = writeln!(out, "{line}{}", steps[0]);
        for more in &steps[1..] {
            let _ = writeln!(out, "{}{more}", " ".repeat(steps_at));
        }
    }
    out
}

/// The colour of a hop's cell: a hop that is more than a patch or a minor forward, and a
/// hop with downtime, stand out.
fn cell_role(column: usize, cell: &str) -> Option<Role> {
    match (column, cell) {
        (3, "patch" | "minor") => None,
        (3, _) | (4, "yes") => Some(Role::Notice),
        _ => None,
    }
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
        Step::Run { name, argv, .. } => format!("run {name}: {}", display_argv(argv)),
        Step::Snapshot { message, argv: Some(argv), .. } => format!("snapshot: {message} ({})", display_argv(argv)),
        Step::Snapshot { message, argv: None, .. } => {
            format!("snapshot: {message} (the operator confirms it was taken)")
        }
        Step::WaitGone { version, selector, .. } => format!("wait until no {version} pod remains ({selector})"),
        Step::Confirm { message } => format!("confirm: {message}"),
        Step::Verify { version, checks, .. } if !checks.is_empty() => {
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
/// `disclosure`'s reader (the error may quote the operator's values). Its messages quote
/// helm and the ledger: escaped here, before the tool's own words are coloured, so that
/// what is shown is never obeyed.
pub fn outcome_text(outcome: &crate::report::Outcome, release: &str, look: Look, disclosure: Disclosure) -> String {
    use crate::report::Outcome;
    let shown = |text: &str| for_terminal(text).into_owned();
    let said = |message: &crate::disclose::Message| shown(&message.render(disclosure));
    let text = match outcome {
        Outcome::Completed { at } => format!("{release} is at {at}: {}", look.paint(Role::Good, "done")),
        Outcome::Stopped { at, reason } => {
            format!("{release} {} at {at}: {}", look.paint(Role::Notice, "stopped"), said(reason))
        }
        Outcome::Recovered { failed_hop, error, at } => format!(
            "{} and {release} was brought back to {at}\n{} {}",
            look.paint(Role::Bad, &format!("hop {failed_hop} failed")),
            look.paint(Role::Heading, "cause:"),
            said(error)
        ),
        Outcome::Failed { error, next_steps } => format!(
            "{release} {}: {}\n{} {}",
            look.paint(Role::Bad, "needs a person"),
            said(error),
            look.paint(Role::Heading, "next:"),
            shown(next_steps)
        ),
    };
    look.wrap(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Available, Context, RollbackRequest, SnapshotKnowledge, Sources, UpgradeRequest};
    use crate::version::ChartVersion;

    fn v(s: &str) -> ChartVersion {
        ChartVersion::parse(s).unwrap()
    }

    fn offered(list: &str) -> Vec<Available> {
        list.split(',').map(|s| Available::new(v(s))).collect()
    }

    #[test]
    fn a_plan_files_absurd_step_number_is_shown_not_a_panic() {
        let request = UpgradeRequest { current: v("1.1.9"), target: v("1.2.6"), fast_path: false, devel: false };
        let plan = crate::plan::plan_upgrade(
            &crate::policy::presets::for_chart("bsr"),
            &offered("1.1.9,1.2.6"),
            &request,
            &Context::default(),
        )
        .unwrap();
        let mut document = serde_json::to_value(&plan).unwrap();
        document["hops"][0]["check"] = serde_json::json!({
            "chart_digest": "sha256:00", "values_digest": "sha256:00", "values_keys": [],
            "other_deploys": [{"step": usize::MAX, "version": "1.1.9", "chart_digest": "sha256:00", "values_digest": "sha256:00"}],
        });
        let plan: Plan = serde_json::from_value(document).unwrap();
        let text = plan_table(&plan, Look::PLAIN);
        assert!(text.contains(&format!("and its deploy of 1.1.9 (step {})", usize::MAX)), "{text}");
    }

    fn context() -> Context {
        Context {
            release: Some("bsr".into()),
            namespace: Some("bsr".into()),
            chart_name: Some("bsr".into()),
            sources: Some(Sources {
                policy: "the ledger's copy of /home/operator/policies/bsr-with-our-own-smoke-checks.yaml".into(),
                policy_digest: "sha256:5f0c4a1e9b7d2c3e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e".into(),
                chart: Some("oci://us-docker.pkg.dev/buf-images-1/bsr/charts/bsr (from the ledger)".into()),
                chart_commands: vec![],
            }),
            values: None,
            ..Context::default()
        }
    }

    /// Two plans that use every part of the table: an upgrade across a gap in the
    /// versions (warnings) with a fast path (alternatives), and a one-minor rollback whose
    /// steps carry a long argv.
    fn plans() -> [Plan; 2] {
        let policy = crate::policy::presets::for_chart("bsr");
        let available = offered("1.0.4,1.1.9,1.2.6,1.3.0,1.5.1,1.6.0");
        let up = UpgradeRequest { current: v("1.0.4"), target: v("1.6.0"), fast_path: false, devel: false };
        let upgrade = crate::plan::plan_upgrade(&policy, &available, &up, &context()).unwrap();
        let down = RollbackRequest {
            current: v("1.2.3"),
            target: Some(v("1.1.0")),
            newest_ever: v("1.2.3"),
            deployed_before: vec![],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let rollback = crate::plan::plan_rollback(&policy, &offered("1.1.0,1.2.3"), &down, &context()).unwrap();
        [upgrade, rollback]
    }

    /// Escape codes made visible (`␛[1m`), so a snapshot shows where colour starts and ends.
    pub(crate) fn visible(text: &str) -> String {
        text.replace('\x1b', "␛")
    }

    fn tables(look: Look) -> String {
        plans().iter().map(|p| plan_table(p, look)).collect::<Vec<_>>().join("\n-----\n")
    }

    #[test]
    fn plan_tables_at_80_and_120_columns_with_and_without_colour() {
        for width in [80, 120] {
            for colour in [false, true] {
                let text = tables(Look { colour, width: Some(width) });
                let widest = text.lines().map(crate::text::width).max().unwrap();
                // The rollback's `kubectl run …` argv is one line of words: it wraps too.
                assert!(widest <= width, "{width} columns: a line of {widest}:\n{text}");
                let name = format!("plan_tables_{width}_columns_{}", if colour { "coloured" } else { "plain" });
                insta::assert_snapshot!(name, visible(&text));
            }
        }
    }

    #[test]
    fn without_colour_or_a_width_the_text_is_what_logs_have_always_had() {
        let plain = tables(Look::PLAIN);
        assert!(!plain.contains('\x1b'));
        // Colour changes no character a person reads, and wrapping moves only spaces.
        let strip = crate::text::without_colour;
        let coloured = tables(Look { colour: true, width: None });
        assert_eq!(strip(&coloured), plain);
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&strip(&tables(Look { colour: true, width: Some(80) }))), words(&plain));
        assert!(plain.lines().any(|l| l.len() > 120), "the plans are wide enough to need wrapping:\n{plain}");
    }

    #[test]
    fn steps_wrap_under_the_steps_column() {
        let [_, rollback] = plans();
        let table = hop_table(&rollback, Look { colour: false, width: Some(80) });
        let steps_at = table.lines().next().unwrap().find("STEPS").unwrap();
        let mut continued = 0;
        for line in table.lines().skip(1) {
            if line.starts_with(' ') {
                continued += 1;
                assert_eq!(line.len() - line.trim_start().len(), steps_at, "{table}");
            }
            assert!(crate::text::width(line) <= 80, "{table}");
        }
        assert!(continued > 0, "the down-migration's steps are too long for 80 columns:\n{table}");
    }

    #[test]
    fn outcomes_escape_what_they_quote_and_colour_only_their_own_words() {
        use crate::report::Outcome;
        let look = Look { colour: true, width: None };
        let failed = Outcome::Failed { error: "helm said \x1b[2J".into(), next_steps: "run it\rX".into() };
        let text = outcome_text(&failed, "bsr", look, Disclosure::Redacted);
        assert_eq!(
            visible(&text),
            "bsr ␛[1m␛[31mneeds a person␛[0m: helm said \\x1b[2J\n␛[1mnext:␛[0m run it\\rX",
            "{text}"
        );
        let done = outcome_text(&Outcome::Completed { at: v("1.3.2") }, "bsr", Look::PLAIN, Disclosure::Redacted);
        assert_eq!(done, "bsr is at 1.3.2: done");
    }
}
