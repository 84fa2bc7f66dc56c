//! Durations in helm's syntax (Go's `time.ParseDuration`: `5m0s`, `90s`, `1h30m`,
//! `1.5h`, `500ms`), checked before anything changes.
//!
//! The tool passes `--timeout` to every `helm upgrade` and uses it for its own waits, so
//! a value helm would reject must be refused up front (exit 2), not discovered by the
//! first hop's helm after the lock was taken. A bound keeps a typo such as
//! `99999999999999999999h` from overflowing a deadline: a rollout that needs more than
//! [`MAX`] is not one an operator waits for at a terminal.

use std::time::Duration;

/// The longest `--timeout` accepted.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration: write it as helm does, e.g. 5m0s, 90s, 1h30m or 500ms")]
    Syntax(String),
    #[error("{0:?} is longer than the maximum of 24h")]
    TooLong(String),
    #[error("{0:?} is negative")]
    Negative(String),
}

/// Parse `text`; it must be between zero and [`MAX`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(text.to_string());
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(syntax());
    }
    // Nanoseconds in u128: a long digit string stays exact until it exceeds the bound,
    // and nothing can overflow before the check.
    let limit = MAX.as_nanos();
    let mut total: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(syntax()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(syntax());
        }
        let mut part: u128 = 0;
        for d in whole.bytes() {
            part = part * 10 + u128::from(d - b'0');
            if part > limit {
                return Err(DurationError::TooLong(text.to_string()));
            }
        }
        let mut nanos = part.checked_mul(per_unit).ok_or_else(|| DurationError::TooLong(text.to_string()))?;
        let mut scale = per_unit;
        for d in fraction.bytes().take(18) {
            scale /= 10;
            nanos += u128::from(d - b'0') * scale;
        }
        total += nanos;
        if total > limit {
            return Err(DurationError::TooLong(text.to_string()));
        }
        rest = after;
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_spellings() {
        assert_eq!(parse("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("24h"), Ok(MAX));
        assert_eq!(parse("+10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1µs"), Ok(Duration::from_micros(1)));
    }

    #[test]
    fn what_helm_rejects_is_rejected() {
        for bad in ["", "5", "5x", "bogus", "m", "1..5s", ".s", "5m 0s", "1h-5m"] {
            assert!(matches!(parse(bad), Err(DurationError::Syntax(_))), "{bad:?}");
        }
        assert!(matches!(parse("-5m"), Err(DurationError::Negative(_))));
    }

    #[test]
    fn absurd_lengths_are_refused_without_overflow() {
        for long in ["25h", "99999999999999999999h", "1000000000000000000000000000000000000000s", "86401s"] {
            assert!(matches!(parse(long), Err(DurationError::TooLong(_))), "{long:?}");
        }
    }
}
