//! Command-line definitions of both commands. clap only: no logic lives here.
//!
//! One binary serves `helm safe-upgrade` and `helm safe-rollback`; helm tells it which by
//! `HELM_PLUGIN_NAME` (helm sets it to the plugin's name for every plugin it starts), and
//! a direct call by the binary's name.

use clap::{Args, Parser, ValueEnum};

use crate::exit::HELP_TABLE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Flags both commands share. Names follow helm's own where helm has one.
#[derive(Debug, Args)]
pub struct Common {
    /// The release (optional when planning offline with --from).
    pub release: Option<String>,

    /// The deployed version, to plan offline without reading a release.
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,

    /// Policy: a preset name (see --list-policies) or a YAML file.
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Option<String>,

    /// The chart: `repo/name`, `oci://host/path/name` or a directory. Offline, its name
    /// picks the preset when --policy is absent.
    #[arg(long, value_name = "REF")]
    pub chart: Option<String>,

    /// Versions the chart source offers, comma-separated (offline planning). Default: the
    /// policy's catalog.
    #[arg(long, value_name = "LIST")]
    pub versions: Option<String>,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub plan: bool,

    /// Output format: a table for people, one JSON document for CI.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Namespace of the release (helm passes its own -n as HELM_NAMESPACE).
    #[arg(short = 'n', long, env = "HELM_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubernetes context (helm passes its own --kube-context as HELM_KUBECONTEXT).
    #[arg(long, env = "HELM_KUBECONTEXT", value_name = "CONTEXT", hide_env_values = true)]
    pub kube_context: Option<String>,

    /// Time to wait for each rollout (helm's duration syntax).
    #[arg(long, default_value = "5m0s", value_name = "DURATION")]
    pub timeout: String,

    /// Extra values file for every hop (repeatable; applied after the carried values).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<std::path::PathBuf>,

    /// Extra value for every hop, as helm's --set (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Extra string value for every hop, as helm's --set-string (repeatable).
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,

    /// Extra JSON value for every hop, as helm's --set-json (repeatable).
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,

    /// A value read from a file for every hop, as helm's --set-file (repeatable).
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,

    /// Extra literal string value for every hop, as helm's --set-literal (repeatable).
    #[arg(long = "set-literal", value_name = "KEY=VALUE")]
    pub set_literal: Vec<String>,

    /// Answer yes to every question and run unattended (CI).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Use plain HTTP for an oci:// chart registry (as helm's --plain-http).
    #[arg(long)]
    pub plain_http: bool,

    /// A snapshot exists already: snapshot steps without a command are satisfied.
    #[arg(long)]
    pub snapshot_taken: bool,

    /// Take over the lock of a run that is gone. Alone: a run of this machine whose
    /// process no longer exists. `=HOLDER` (exactly as printed, `user@host pid N`): a run
    /// of another machine. A live run's lock is never taken.
    #[arg(long, value_name = "HOLDER", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,

    /// Keep the ledger (and its lock) in a local file instead of the shared ConfigMap:
    /// other machines do not see it. For clusters where the ConfigMap cannot be read.
    #[arg(long)]
    pub local_ledger: bool,

    /// Continue the plan a killed run left in the ledger, after checking the live release.
    #[arg(long)]
    pub resume: bool,

    /// Echo every command run (values redacted).
    #[arg(long, env = "HELM_DEBUG", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, hide_env_values = true)]
    pub debug: bool,

    /// List the built-in policies.
    #[arg(long, exclusive = true)]
    pub list_policies: bool,

    /// Print a built-in policy's YAML, to copy and edit.
    #[arg(long, value_name = "NAME", exclusive = true)]
    pub show_policy: Option<String>,
}

#[derive(Debug, Parser)]
#[command(
    name = "safe-upgrade",
    bin_name = "helm safe-upgrade",
    version,
    about = "Upgrade a release along the path its vendor supports",
    long_about = "Upgrade a release along the path its vendor supports: one hop at a time, \
refusing what the vendor's policy forbids.",
    after_help = HELP_TABLE,
    override_usage = "helm safe-upgrade [RELEASE] --to VERSION [--plan] [-o table|json]\n       \
helm safe-upgrade --from VERSION --to VERSION --policy NAME|FILE [--versions LIST] [--plan]\n       \
helm safe-upgrade --list-policies | --show-policy NAME"
)]
pub struct UpgradeCli {
    #[command(flatten)]
    pub common: Common,

    /// The version to upgrade to (with --resume: the target recorded in the ledger).
    #[arg(long, value_name = "VERSION", required_unless_present_any = ["list_policies", "show_policy", "resume"])]
    pub to: Option<String>,

    /// Take the policy's faster path with downtime (e.g. BSR's maintenance mode).
    #[arg(long)]
    pub fast_path: bool,

    /// Allow a pre-release target (never an intermediate stop).
    #[arg(long)]
    pub devel: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "safe-rollback",
    bin_name = "helm safe-rollback",
    version,
    about = "Roll a release back only as far as its vendor calls safe, the vendor's way",
    after_help = HELP_TABLE,
    override_usage = "helm safe-rollback [RELEASE] [--to VERSION] [--plan] [-o table|json]\n       \
helm safe-rollback --from VERSION [--to VERSION] [--newest-ever VERSION] --policy NAME|FILE [--plan]"
)]
pub struct RollbackCli {
    #[command(flatten)]
    pub common: Common,

    /// The version to go back to. Default: the newest earlier safe version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,

    /// The newest version ever deployed (offline planning). Default: --from.
    #[arg(long, value_name = "VERSION")]
    pub newest_ever: Option<String>,

    /// With --yes: accept the data loss the policy warns of (a minor downgrade or a
    /// restore). On a terminal the operator types the release name instead.
    #[arg(long)]
    pub accept_data_loss: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        super::UpgradeCli::command().debug_assert();
        super::RollbackCli::command().debug_assert();
    }
}
