//! The policy a chart ships: read from the run's own copy of the target chart, and the
//! operator's leave for its commands.
//!
//! The target chart is the upgrade's `--to` (as the source offers it) or, for a rollback,
//! the version deployed now. Its archive is fetched into the run's [`RunCharts`], so the
//! preflight renders (and the walk deploys) the very file the policy was read from,
//! without a second pull. Everything in it is the vendor's, fetched from a chart source:
//! a policy that does not load is an error naming the chart version and the line (never
//! a quiet fall back to a preset), and its commands run only with `--allow-chart-commands`.

use std::borrow::Cow;

use super::error::{RunError, bad, refused};
use crate::catalog::ChartArg;
use crate::catalog::cache::RunCharts;
use crate::catalog::shipped;
use crate::helm::Helm;
use crate::policy::commands::{PolicyCommand, needing_consent};
use crate::policy::{self, Origin, Policy};
use crate::text::one_line;
use crate::version::ChartVersion;

/// What to do when a chart's own policy is wrong: it is the vendor's to fix.
const VENDORS_TO_FIX: &str = "the policy in the chart is its vendor's (tell them); to go on meanwhile, choose the policy yourself with --policy FILE or --policy PRESET (`--list-policies`)";

/// The policy chart `chart_name` ships at `version`, fetched from `chart`; None when its
/// `Chart.yaml` names none.
pub fn read(
    helm: &Helm,
    charts: &RunCharts,
    chart: &ChartArg,
    chart_name: &str,
    version: &ChartVersion,
) -> Result<Option<Policy>, RunError> {
    if repository_index_says_none(chart, chart_name, version) {
        return Ok(None);
    }
    let archive = charts.fetch(helm, chart, version).map_err(|e| {
        RunError::Other(format!(
            "cannot fetch {chart_name} {version} to read the policy it may ship: {e}\nhint: check the chart source, or choose the policy with --policy NAME|FILE"
        ))
    })?;
    let named = format!("chart {chart_name} {version}");
    let Some(found) = shipped::read(&archive.path).map_err(|why| bad(format!("{named}: {why}"), VENDORS_TO_FIX))?
    else {
        return Ok(None);
    };
    let origin = Origin::Chart { chart: chart_name.to_string(), version: version.to_string(), file: found.file };
    let policy = policy::parse_from(&found.text, origin).map_err(|e| bad(e.to_string(), VENDORS_TO_FIX))?;
    terminal_safe(&found.text).map_err(|s| {
        bad(
            format!(
                "{named}'s policy {} holds a control character in {}: refused, since its text is printed on your terminal",
                one_line(&found_file(&policy)),
                one_line(&s)
            ),
            VENDORS_TO_FIX,
        )
    })?;
    Ok(Some(policy))
}

/// A repository chart whose entry in helm's cached index (fresh: the run refreshed it
/// before listing) carries no policy annotation ships none: no need to fetch it. The
/// index's entry is the chart's own `Chart.yaml` metadata, annotations included.
fn repository_index_says_none(chart: &ChartArg, chart_name: &str, version: &ChartVersion) -> bool {
    let ChartArg::Reference { reference, .. } = chart else { return false };
    let Ok(crate::catalog::ChartSource::Repo { repo, .. }) = crate::catalog::ChartSource::parse(reference) else {
        return false;
    };
    let index = crate::catalog::repo::cached_index_here(&repo);
    crate::catalog::repo::index_says_no_policy(&index, chart_name, version) == Some(true)
}

fn found_file(policy: &Policy) -> String {
    match &policy.origin {
        Origin::Chart { file, .. } => file.clone(),
        other => other.to_string(),
    }
}

/// Every string of a policy's YAML (keys and values) free of what a terminal would act on
/// (escape sequences, carriage returns): the first that is not, as the error. The raw text
/// is not enough to look at: YAML writes `\e` in a quoted string for an escape character.
fn terminal_safe(text: &str) -> Result<(), String> {
    fn walk(value: &serde_json::Value) -> Result<(), String> {
        let safe = |s: &str| match crate::text::for_terminal(s) {
            Cow::Borrowed(_) => Ok(()),
            Cow::Owned(_) => Err(s.to_string()),
        };
        match value {
            serde_json::Value::String(s) => safe(s),
            serde_json::Value::Array(items) => items.iter().try_for_each(walk),
            serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| safe(k).and_then(|()| walk(v))),
            _ => Ok(()),
        }
    }
    // The policy loaded already, so this reads.
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    walk(&value)
}

/// A chart's policy that would run commands is refused unless the operator allowed them
/// (`--allow-chart-commands`), with every command listed to review.
pub fn gate(policy: &Policy, allowed: bool) -> Result<(), RunError> {
    let commands = needing_consent(policy);
    if commands.is_empty() || allowed {
        return Ok(());
    }
    Err(refused(
        "chart-commands",
        format!(
            "policy {} from {} would run {} on this machine:\n{}",
            one_line(&policy.name),
            one_line(&policy.origin.to_string()),
            crate::text::count(commands.len(), "command", "commands"),
            listed(&commands, "  - ")
        ),
        "review these commands, then run again with --allow-chart-commands; or choose the policy yourself with --policy FILE (or a preset)",
    ))
}

/// One line per command: where it is in the policy, then its argv as a shell would read
/// it (escaped: the chart's text is shown, never obeyed).
pub(super) fn listed(commands: &[PolicyCommand], indent: &str) -> String {
    let lines: Vec<String> = commands.iter().map(|c| format!("{indent}{}", c.line())).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_RUN: &str = "name: vendorapp\ndescription: d\nupgrade: {max_minor_step: 1, major: refuse, procedure: prepared}\ndowngrade: {}\nprocedures:\n  prepared:\n    steps:\n      - run: {name: prepare, argv: [echo, \"prepare {release} for {to}\"]}\n      - deploy: {}\n      - verify: {}\n";

    fn chart_policy(text: &str) -> Policy {
        let origin =
            Origin::Chart { chart: "vendorapp".into(), version: "1.5.0".into(), file: "upgrade-policy.yaml".into() };
        policy::parse_from(text, origin).unwrap()
    }

    #[test]
    fn chart_commands_are_refused_without_leave_and_listed() {
        let policy = chart_policy(WITH_RUN);
        let Err(RunError::Refused(crate::plan::Refusal { rule, message, supported })) = gate(&policy, false) else {
            panic!("not refused")
        };
        assert_eq!(rule, "chart-commands");
        assert_eq!(
            message,
            "policy vendorapp from chart vendorapp 1.5.0 (upgrade-policy.yaml) would run 1 command on this machine:\n  - run step \"prepare\" (procedure prepared): echo 'prepare {release} for {to}'"
        );
        assert!(supported.contains("--allow-chart-commands") && supported.contains("--policy FILE"), "{supported}");
        assert!(gate(&policy, true).is_ok());
        // The same text chosen by the operator runs without further leave.
        let mine = policy::parse_from(WITH_RUN, Origin::File { path: "mine.yaml".into() }).unwrap();
        assert!(gate(&mine, false).is_ok());
    }

    #[test]
    fn listed_commands_are_shown_not_obeyed() {
        let shown = listed(
            &[PolicyCommand {
                what: "check \"a\u{1b}[2J\"".into(),
                argv: vec!["sh".into(), "-c".into(), "x\ry".into()],
            }],
            "- ",
        );
        assert_eq!(shown, "- check \"a\\x1b[2J\": sh -c 'x\\ry'");
    }

    #[test]
    fn escape_characters_anywhere_in_the_text_are_found() {
        assert!(terminal_safe(WITH_RUN).is_ok());
        let hidden = WITH_RUN.replace("\"prepare {release} for {to}\"", "\"\\e[2J{release}\"");
        assert_eq!(terminal_safe(&hidden), Err("\u{1b}[2J{release}".to_string()));
        let in_key = "name: x\nvars: {\"a\\rb\": c}\n";
        assert_eq!(terminal_safe(in_key), Err("a\rb".to_string()));
    }
}
