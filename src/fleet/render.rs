//! The fleet view as people read it (one line per release, then what needs saying about
//! some of them) and as programs read it (one JSON document). Pure.

use super::{FleetView, Row, Standing};
use crate::plan::estimate::about;
use crate::printer::{Look, Role};
use crate::text::{count, one_line, width};
use crate::ui::lines::push_line;

const HEADINGS: [&str; 10] =
    ["NAMESPACE", "RELEASE", "CHART", "POLICY", "DEPLOYED", "TARGET", "HOPS", "DOWNTIME", "ESTIMATE", "STANDING"];

/// The table: a summary line, one line per release, then the notes of the releases that
/// have some (why one is blocked or not planned, a run holding its lock, …), by release.
pub fn table(view: &FleetView, look: Look) -> String {
    let mut out = String::new();
    let title = format!("fleet plan: {} in {}", count(view.releases.len(), "release", "releases"), view.scope);
    push_line(&mut out, look, &format!("{}{}", look.paint(Role::Heading, &title), summary(&view.releases)));
    if view.releases.is_empty() {
        return out;
    }
    let cells: Vec<[String; 10]> = view.releases.iter().map(cells).collect();
    let mut widths = HEADINGS.map(width);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w.saturating_sub(width(cell)))))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    // Table lines are never wrapped: a folded row is no longer a column.
    out.push('\n');
    out.push_str(&look.paint(Role::Heading, &line(&HEADINGS.map(String::from))));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    let noted: Vec<&Row> = view.releases.iter().filter(|r| !notes(r).is_empty()).collect();
    if !noted.is_empty() {
        out.push('\n');
        for row in noted {
            push_line(&mut out, look, &format!("{}/{}:", one_line(&row.namespace), one_line(&row.release)));
            for note in notes(row) {
                push_line(&mut out, look, &format!("  - {note}"));
            }
        }
    }
    for warning in &view.warnings {
        let label = look.paint(Role::Notice, "warning");
        push_line(&mut out, look, &format!("{label}: {}", one_line(warning)));
    }
    out
}

/// `: 3 upgradable, 1 blocked, 1 with no policy`.
fn summary(rows: &[Row]) -> String {
    let tally: Vec<String> =
        [Standing::Upgradable, Standing::Blocked, Standing::UpToDate, Standing::NoPolicy, Standing::NotPlanned]
            .into_iter()
            .filter_map(|standing| {
                let n = rows.iter().filter(|r| r.standing == standing).count();
                (n > 0).then(|| match standing {
                    Standing::NoPolicy => format!("{n} with no policy"),
                    other => format!("{n} {}", other.as_str()),
                })
            })
            .collect();
    if tally.is_empty() { String::new() } else { format!(": {}", tally.join(", ")) }
}

/// A release's cells, every one from outside made safe for the terminal.
fn cells(row: &Row) -> [String; 10] {
    let planned = matches!(row.standing, Standing::Upgradable | Standing::UpToDate);
    let target = match (&row.target, row.standing) {
        (Some(target), _) => target.to_string(),
        (None, Standing::UpToDate) => "(newest)".to_string(),
        _ => "-".to_string(),
    };
    let estimate = match &row.estimate {
        Some(total) if total.unknown_hops == 0 => about(total.time.expected_secs),
        Some(total) => format!("{}+", about(total.time.expected_secs)),
        None if row.hops > 0 => "unknown".to_string(),
        None => "-".to_string(),
    };
    [
        one_line(&row.namespace),
        one_line(&row.release),
        row.chart.as_deref().map(one_line).unwrap_or_else(|| "-".into()),
        row.policy.as_deref().map(one_line).unwrap_or_else(|| "-".into()),
        one_line(&row.deployed),
        target,
        if row.hops > 0 { row.hops.to_string() } else { "-".into() },
        match (planned, row.hops > 0, row.downtime) {
            (true, true, true) => "yes".into(),
            (true, true, false) => "no".into(),
            _ => "-".into(),
        },
        estimate,
        standing_text(row),
    ]
}

/// "upgradable", or "upgradable (2.0.0 refused)" when the newest is out of reach.
fn standing_text(row: &Row) -> String {
    match (row.standing, row.refused.first()) {
        (Standing::Upgradable | Standing::Blocked, Some(refused)) => {
            format!("{} ({} refused: {})", row.standing.as_str(), refused.version, one_line(&refused.rule))
        }
        (standing, _) => standing.as_str().to_string(),
    }
}

/// The lines under a release: the newest version's refusal in the planner's words, then
/// the row's own notes.
fn notes(row: &Row) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(refused) = row.refused.first() {
        let more = match row.refused.len() - 1 {
            0 => String::new(),
            n => format!(" ({} more refused: {})", n, versions(row)),
        };
        lines.push(format!(
            "{} is refused ({}): {}{more}",
            refused.version,
            one_line(&refused.rule),
            one_line(&refused.message)
        ));
    }
    if row.untried > 0 {
        lines.push(format!("{} older versions were not tried", row.untried));
    }
    lines.extend(row.notes.iter().map(|n| one_line(n)));
    lines
}

fn versions(row: &Row) -> String {
    row.refused.iter().skip(1).map(|r| r.version.to_string()).collect::<Vec<_>>().join(", ")
}

/// The view as one JSON document.
pub fn json(view: &FleetView) -> String {
    serde_json::to_string_pretty(view).expect("the fleet view serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ChartVersion;

    fn row(namespace: &str, release: &str, standing: Standing) -> Row {
        let mut row = Row::unplanned(namespace, release, "deployed", "1");
        (row.chart, row.deployed, row.standing) = (Some("bsr".into()), "1.0.4".into(), standing);
        (row.policy, row.policy_source) = (Some("bsr".into()), Some("preset bsr".into()));
        row
    }

    #[test]
    fn one_line_per_release_with_its_notes_below() {
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        let mut upgradable = row("team-a", "bsr", Standing::Upgradable);
        upgradable.target = Some(v("1.2.6"));
        upgradable.path = vec![v("1.1.9"), v("1.2.6")];
        upgradable.hops = 2;
        upgradable.downtime = true;
        upgradable.refused = vec![super::super::reach::Unreachable {
            version: v("2.0.0"),
            rule: "catalog-schema".into(),
            message: "the schema of 2.0.0 is unknown".into(),
        }];
        let mut none = row("team-b", "web\x1b[2J", Standing::NoPolicy);
        none.policy = None;
        none.notes = vec!["no preset is for chart web".into()];
        let view = FleetView {
            schema: 1,
            scope: "all namespaces".into(),
            releases: vec![upgradable, row("team-c", "api", Standing::UpToDate), none],
            warnings: vec![],
        };
        let text = table(&view, Look::PLAIN);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "fleet plan: 3 releases in all namespaces: 1 upgradable, 1 up to date, 1 with no policy");
        assert!(lines[2].starts_with("NAMESPACE  RELEASE"), "{text}");
        assert!(lines[3].starts_with("team-a     bsr"), "{text}");
        assert!(
            lines[3].contains("1.2.6")
                && lines[3].contains("yes")
                && lines[3].ends_with("upgradable (2.0.0 refused: catalog-schema)"),
            "{text}"
        );
        assert!(lines[4].contains("(newest)") && lines[4].ends_with("up to date"), "{text}");
        assert!(!text.contains('\x1b'), "text from outside is escaped: {text}");
        assert!(
            text.contains("team-a/bsr:\n  - 2.0.0 is refused (catalog-schema): the schema of 2.0.0 is unknown"),
            "{text}"
        );
        assert!(text.contains("  - no preset is for chart web"), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&json(&view)).unwrap();
        assert_eq!(doc["releases"][0]["standing"], "upgradable");
        assert_eq!(doc["releases"][0]["path"], serde_json::json!(["1.1.9", "1.2.6"]));
        assert_eq!(doc["releases"][2]["standing"], "no-policy");
    }
}
