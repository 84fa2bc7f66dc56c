//! What the operator asked of a live run, as plain values: `commands` builds these from
//! clap's structs after checking every flag, so nothing below it sees the command line
//! and nothing can fail on a flag after the first change.

use super::ledger::Takeover;
use super::values::Overrides;
use crate::version::VersionSpec;

/// Flags both live commands share.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub release: String,
    pub namespace: String,
    pub kube_context: Option<String>,
    /// `--policy`: a preset name or a file.
    pub policy: Option<String>,
    /// `--chart`: `repo/name`, `oci://…` or a directory.
    pub chart: Option<String>,
    /// `--plan`: print and change nothing.
    pub plan_only: bool,
    pub yes: bool,
    /// helm's duration syntax, already checked (`crate::duration`).
    pub timeout: String,
    pub overrides: Overrides,
    pub plain_http: bool,
    pub snapshot_taken: bool,
    pub takeover: Takeover,
    pub resume: bool,
    pub local_ledger: bool,
    pub debug: bool,
    /// `--no-preflight`: the hops are not rendered before the first change.
    pub no_preflight: bool,
    /// `--allow-chart-commands`: a policy the chart ships may run its commands.
    pub allow_chart_commands: bool,
    /// `--diff`: what each hop changes, in the plan.
    pub diff: DiffDetail,
    /// The outcome is printed as text at the end (`-o table`), not as JSON.
    pub outcome_in_words: bool,
    /// The command line with every value redacted, for the lock and the run record.
    pub command_shape: String,
    /// `--notify PROGRAM` with its `--notify-arg`s: replaces the policy's `notify`.
    pub notify: Option<NotifyCommand>,
}

/// A program called with each event of a run, as the operator or the policy named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyCommand {
    /// As typed: a name looked up on PATH, or a path.
    pub program: String,
    pub args: Vec<String>,
}

/// How much of each hop's changes the plan carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiffDetail {
    #[default]
    None,
    /// Resources added, removed and changed, and the values that differ.
    Summary,
    /// And a unified diff of the rendered manifests.
    Full,
}

#[derive(Clone, Debug)]
pub struct UpgradeOptions {
    pub target: Option<VersionSpec>,
    pub fast_path: bool,
    pub devel: bool,
}

#[derive(Clone, Debug)]
pub struct RollbackOptions {
    pub target: Option<VersionSpec>,
    /// helm's habit, `helm safe-rollback RELEASE REVISION`: that revision's version and values.
    pub revision: Option<u64>,
    pub accept_data_loss: bool,
}
