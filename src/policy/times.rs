//! How long a policy says hops take: `typical_minutes` by hop kind, and a catalog entry's
//! `duration` for one version. Checked when the policy loads (a negative figure or a
//! range whose minimum exceeds its maximum is an error at its line); the planner turns
//! them into estimates only when the policy describes the release's chart.

use serde::{Deserialize, Serialize};

/// The longest figure accepted: a hop that takes more than a week is a typo.
pub const MAX_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// The hop kinds `typical_minutes` may name, as the plan's JSON names them (the planner's
/// tests check this list against its own kinds).
pub const HOP_KINDS: [&str; 7] =
    ["patch", "minor", "major", "fast-path", "patch-downgrade", "minor-downgrade", "restore"];

/// From `low_secs` to `high_secs`, as a policy states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub low_secs: u64,
    pub high_secs: u64,
}

/// `typical_minutes: {minor: [10, 30]}` or `{patch: 5}`, as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMinutes {
    One(f64),
    Range(Vec<f64>),
}

impl RawMinutes {
    /// The range in seconds, or what is wrong with it.
    pub fn range(&self) -> Result<TimeRange, String> {
        let (low, high) = match self {
            RawMinutes::One(m) => (*m, *m),
            RawMinutes::Range(pair) if pair.len() == 2 => (pair[0], pair[1]),
            RawMinutes::Range(other) => {
                return Err(format!("expected [MIN, MAX] minutes or one number, got {} numbers", other.len()));
            }
        };
        minutes_range(low, high)
    }
}

fn minutes_range(low: f64, high: f64) -> Result<TimeRange, String> {
    for m in [low, high] {
        if !m.is_finite() || m < 0.0 {
            return Err(format!("{m} minutes: a time cannot be negative"));
        }
        if m > MAX_MINUTES {
            return Err(format!("{m} minutes is more than a week"));
        }
    }
    if low > high {
        return Err(format!("[{low}, {high}]: the minimum is larger than the maximum"));
    }
    let secs = |m: f64| (m * 60.0).round() as u64;
    Ok(TimeRange { low_secs: secs(low), high_secs: secs(high) })
}

/// A catalog entry's `duration`: one duration in helm's syntax (`20m`, `1h30m`) or a
/// range of two (`10m-30m`).
pub fn parse_duration_range(text: &str) -> Result<TimeRange, String> {
    let one =
        |part: &str| crate::duration::parse(part.trim()).map(|d| d.as_secs_f64() / 60.0).map_err(|e| e.to_string());
    let (low, high) = match text.split_once('-') {
        Some((low, high)) if !low.trim().is_empty() => (one(low)?, one(high)?),
        _ => {
            let m = one(text)?;
            (m, m)
        }
    };
    if low > high {
        return Err(format!("{text}: the minimum is larger than the maximum"));
    }
    minutes_range(low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_figures_in_minutes() {
        assert_eq!(RawMinutes::Range(vec![5.0, 10.0]).range(), Ok(TimeRange { low_secs: 300, high_secs: 600 }));
        assert_eq!(RawMinutes::One(2.5).range(), Ok(TimeRange { low_secs: 150, high_secs: 150 }));
        assert!(RawMinutes::Range(vec![-1.0, 3.0]).range().unwrap_err().contains("negative"));
        assert!(RawMinutes::Range(vec![30.0, 10.0]).range().unwrap_err().contains("minimum is larger"));
        assert!(RawMinutes::Range(vec![1.0, 2.0, 3.0]).range().unwrap_err().contains("3 numbers"));
        assert!(RawMinutes::One(1e12).range().unwrap_err().contains("more than a week"));
        assert!(RawMinutes::One(f64::NAN).range().is_err());
    }

    #[test]
    fn catalog_durations_in_helms_syntax() {
        assert_eq!(parse_duration_range("10m"), Ok(TimeRange { low_secs: 600, high_secs: 600 }));
        assert_eq!(parse_duration_range("10m-1h"), Ok(TimeRange { low_secs: 600, high_secs: 3600 }));
        assert!(parse_duration_range("-5m").unwrap_err().contains("negative"));
        assert!(parse_duration_range("30m-10m").unwrap_err().contains("minimum is larger"));
        assert!(parse_duration_range("ten minutes").is_err());
    }
}
