//! Exit codes: a contract with CI pipelines, documented in the README and in `--help`.

/// Done, or the plan was printed.
pub const SUCCESS: i32 = 0;
/// Anything not covered below.
pub const FAILURE: i32 = 1;
/// Bad input: usage, an unreadable or invalid policy, an unknown release or version.
pub const BAD_INPUT: i32 = 2;
/// Refused by the policy; the message names the rule and the supported path.
pub const REFUSED: i32 = 3;
/// A hop failed and the release was brought back to the last good version.
pub const HOP_FAILED_RECOVERED: i32 = 4;
/// Stopped at a safe point (the operator at a prompt, Ctrl-C, a hang-up); the release is
/// at a good version.
pub const STOPPED_BY_OPERATOR: i32 = 5;

/// The table printed by `--help` and mirrored in the README.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  done (or plan printed)
  1  anything else
  2  bad input (usage, unreadable policy, unknown release or version)
  3  refused by policy (the message names the rule and the supported path)
  4  a hop failed and the release was brought back to the last good version
  5  stopped at a safe point (the operator, Ctrl-C, a hang-up); the release is at a good version";

#[cfg(test)]
mod tests {
    #[test]
    fn help_table_lists_every_code() {
        for code in [
            super::SUCCESS,
            super::FAILURE,
            super::BAD_INPUT,
            super::REFUSED,
            super::HOP_FAILED_RECOVERED,
            super::STOPPED_BY_OPERATOR,
        ] {
            assert!(super::HELP_TABLE.contains(&format!("\n  {code}  ")), "exit code {code} missing from --help");
        }
    }
}
