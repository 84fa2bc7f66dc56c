//! The commands a policy can make the tool run on the operator's machine: `run` steps,
//! the snapshot `command` and the `checks`.
//!
//! A policy the operator chose (a file, a preset) runs its commands because the operator
//! chose it. A policy a chart ships is the vendor's text, fetched with the chart: its
//! commands run only once the operator has read them and said so (`--allow-chart-commands`).
//! This module lists them, as the policy writes them (placeholders unfilled: they are
//! filled per hop at run time), so that the refusal and the plan can show every one. Pure.

use serde::{Deserialize, Serialize};

use super::{Origin, Policy, StepSpec};
use crate::text::{display_argv, one_line};

/// One command a policy may run, and where in the policy it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyCommand {
    /// `run step "prepare" (procedure rolling)`, `snapshot command`, `check "smoke"`.
    pub what: String,
    pub argv: Vec<String>,
}

impl PolicyCommand {
    /// `what: argv`, the argv as a shell would read it, on one line and escaped: a chart's
    /// text is shown, never obeyed by the terminal.
    pub fn line(&self) -> String {
        format!("{}: {}", one_line(&self.what), one_line(&display_argv(&self.argv)))
    }
}

/// The commands a run of `policy` needs the operator's leave for: every command of a
/// chart-shipped policy; none for a policy the operator chose.
pub fn needing_consent(policy: &Policy) -> Vec<PolicyCommand> {
    match policy.origin {
        Origin::Chart { .. } => every_command(policy),
        _ => Vec::new(),
    }
}

/// Every command a run of `policy` may start: the `run` steps of the procedures the
/// policy can reach (its upgrade, fast path and downgrade procedures: a failed hop's way
/// back runs a downgrade procedure even in an upgrade), the snapshot command when some
/// step takes a snapshot, and the checks when some step verifies. A procedure nothing
/// names never runs, so its commands are not listed.
pub fn every_command(policy: &Policy) -> Vec<PolicyCommand> {
    let reachable = reachable_procedures(policy);
    let steps = || reachable.iter().flat_map(|name| policy.procedures[*name].steps.iter().map(move |s| (*name, s)));
    let mut out: Vec<PolicyCommand> = steps()
        .filter_map(|(procedure, step)| match step {
            StepSpec::Run { name, argv } => {
                Some(PolicyCommand { what: format!("run step {name:?} (procedure {procedure})"), argv: argv.clone() })
            }
            _ => None,
        })
        .collect();
    let snapshots = policy.upgrade.snapshot_first || steps().any(|(_, s)| matches!(s, StepSpec::Snapshot { .. }));
    if let (true, Some(argv)) = (snapshots, &policy.snapshot.command) {
        out.push(PolicyCommand { what: "snapshot command".into(), argv: argv.clone() });
    }
    if steps().any(|(_, s)| matches!(s, StepSpec::Verify)) {
        out.extend(
            policy.checks.iter().map(|c| PolicyCommand { what: format!("check {:?}", c.name), argv: c.argv.clone() }),
        );
    }
    out
}

/// The procedures a plan or a way back can use, each once, in the policy's order of rules.
fn reachable_procedures(policy: &Policy) -> Vec<&str> {
    let (up, down) = (&policy.upgrade, &policy.downgrade);
    let named = [
        Some(up.procedure.as_str()),
        up.fast_path.as_ref().map(|f| f.procedure.as_str()),
        down.patch.as_deref(),
        down.minor.as_ref().map(|m| m.procedure.as_str()),
        down.restore.as_deref(),
    ];
    let mut out: Vec<&str> = Vec::new();
    for name in named.into_iter().flatten() {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_COMMANDS: &str = r#"
name: vendor
description: a vendor's policy with commands
upgrade: {max_minor_step: 1, major: refuse, procedure: prepared}
downgrade: {minor: {max_minors_below_newest: 1, procedure: migrate-down}}
snapshot: {message: snap, command: [backup, "{release}"]}
checks: [{name: smoke, argv: [curl, "http://{release}"]}]
procedures:
  prepared:
    steps:
      - run: {name: prepare, argv: [vendorctl, prepare, "{to}"]}
      - deploy: {}
      - verify: {}
  migrate-down:
    steps:
      - deploy: {}
      - snapshot: {}
      - run: {name: migrate down, argv: [vendorctl, down, "{to}"]}
  never-used:
    steps:
      - run: {name: unused, argv: [rm, -rf, /]}
      - deploy: {}
"#;

    fn chart_origin() -> Origin {
        Origin::Chart { chart: "vendorapp".into(), version: "1.5.0".into(), file: "upgrade-policy.yaml".into() }
    }

    fn commands_of(list: &[PolicyCommand]) -> Vec<(String, String)> {
        list.iter().map(|c| (c.what.clone(), c.argv.join(" "))).collect()
    }

    #[test]
    fn a_chart_policy_needs_consent_for_every_command_it_can_reach() {
        let policy = crate::policy::parse_from(WITH_COMMANDS, chart_origin()).unwrap();
        let pairs = |list: &[(&str, &str)]| {
            list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<(String, String)>>()
        };
        assert_eq!(
            commands_of(&needing_consent(&policy)),
            pairs(&[
                ("run step \"prepare\" (procedure prepared)", "vendorctl prepare {to}"),
                // The way back of a failed hop: a downgrade procedure, even in an upgrade.
                ("run step \"migrate down\" (procedure migrate-down)", "vendorctl down {to}"),
                ("snapshot command", "backup {release}"),
                ("check \"smoke\"", "curl http://{release}"),
            ]),
        );
    }

    #[test]
    fn a_policy_the_operator_chose_needs_no_consent() {
        for origin in [
            Origin::File { path: "mine.yaml".into() },
            Origin::Recorded { path: "mine.yaml".into() },
            Origin::Preset { name: "bsr".into() },
            Origin::Text { label: "t".into() },
        ] {
            let policy = crate::policy::parse_from(WITH_COMMANDS, origin.clone()).unwrap();
            assert!(needing_consent(&policy).is_empty(), "{origin}");
            assert_eq!(every_command(&policy).len(), 4, "{origin}");
        }
    }

    #[test]
    fn commands_that_can_never_run_are_not_listed() {
        // A snapshot command with no step that snapshots, and checks with no step that
        // verifies, never run.
        let text = "name: quiet\ndescription: q\nupgrade: {max_minor_step: 1, major: refuse, procedure: bare}\ndowngrade: {}\nsnapshot: {message: s, command: [backup]}\nchecks: [{name: smoke, argv: [curl, x]}]\nprocedures:\n  bare: {steps: [deploy: {}]}\n";
        let policy = crate::policy::parse_from(text, chart_origin()).unwrap();
        assert!(needing_consent(&policy).is_empty(), "{:?}", needing_consent(&policy));
        // A chart policy without commands needs nothing: the generic preset's rules, say.
        let preset = crate::policy::presets::text("sequential-minor").unwrap();
        let policy = crate::policy::parse_from(preset, chart_origin()).unwrap();
        assert!(needing_consent(&policy).is_empty());
        // snapshot_first takes a snapshot before the first hop.
        let first = text.replace("procedure: bare}", "procedure: bare, snapshot_first: true}");
        let policy = crate::policy::parse_from(&first, chart_origin()).unwrap();
        assert_eq!(commands_of(&needing_consent(&policy)), [("snapshot command".to_string(), "backup".to_string())]);
    }
}
