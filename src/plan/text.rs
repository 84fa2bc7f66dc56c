//! One-line summaries of plan parts, shared by the planner (alternatives) and the table.

use super::{Hop, Step};
use crate::version::ChartVersion;

/// `1.0.4 → 1.1.9 → 1.2.6`
pub fn path_text(start: &ChartVersion, hops: &[Hop]) -> String {
    let mut text = start.to_string();
    for hop in hops {
        text.push_str(" → ");
        text.push_str(&hop.to.to_string());
    }
    text
}

/// A one-line summary of steps, e.g. `deploy 1.0.4 (maintenance=true), verify, snapshot`.
pub fn steps_text(steps: &[Step]) -> String {
    steps.iter().map(step_text).collect::<Vec<_>>().join(", ")
}

pub fn step_text(step: &Step) -> String {
    match step {
        Step::Backup { items } => format!("backup {}", items.join(", ")),
        Step::Deploy { version, revision: Some(rev), .. } => format!("helm rollback to revision {rev} ({version})"),
        Step::Deploy { version, set, .. } if set.is_empty() => format!("deploy {version}"),
        Step::Deploy { version, set, .. } => {
            let sets: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("deploy {version} with {}", sets.join(", "))
        }
        Step::Verify { version, .. } => format!("verify {version}"),
        Step::Snapshot { .. } => "snapshot".to_string(),
        Step::Run { name, .. } => format!("run {name}"),
        Step::WaitGone { version, .. } => format!("wait until no {version} pod remains"),
        Step::Confirm { .. } => "confirm".to_string(),
    }
}
