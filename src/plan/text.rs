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

/// `20240100` as `20,240,100`: counts in messages are read by people.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits_in_threes() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(20_240_100), "20,240,100");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
