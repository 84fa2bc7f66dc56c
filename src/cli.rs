//! Command-line definitions of both commands. clap only: no logic lives here.
//!
//! One binary serves `helm safe-upgrade` and `helm safe-rollback`; helm tells it which by
//! `HELM_PLUGIN_NAME` (helm sets it to the plugin's name for every plugin it starts), and
//! a direct call by the binary's name.
//!
//! `-h` is short (the everyday flags and examples); `--help` is complete, grouped under
//! headings. helm's own habits are met where they would otherwise surprise: `--dry-run`
//! is `--plan`, and `--version` (which helm users type for a chart version) is refused
//! with a pointer to `--to`; the tool's own version is `--tool-version`.

use clap::{ArgAction, Args, Parser, ValueEnum, ValueHint};

use crate::exit::HELP_TABLE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Never,
    Auto,
    Always,
}

const RUN: &str = "Live run";
const SOURCE: &str = "Chart source and policy";
const VALUES: &str = "Values";
const UNATTENDED: &str = "Unattended runs, locks and recovery";
const OFFLINE: &str = "Offline planning (no cluster)";
const OUTPUT: &str = "Output";
const POLICIES: &str = "Policies";
const FLEET: &str = "Fleet view (many releases)";

/// What a fleet view cannot take: it plans every release to the newest version it can
/// reach, by each one's own policy, source and values, and changes nothing.
const NOT_WITH_A_FLEET: [&str; 21] = [
    "release",
    "extra",
    "to",
    "execute",
    "history",
    "resume",
    "from",
    "versions",
    "fast_path",
    "devel",
    "policy",
    "diff",
    "force_unlock",
    "values",
    "set",
    "set_string",
    "set_json",
    "set_file",
    "set_literal",
    "notify",
    "local_ledger",
];

/// Flags both commands share. Names follow helm's own where helm has one.
#[derive(Debug, Args)]
pub struct Common {
    /// The release (none when planning offline with --from).
    #[arg(value_name = "RELEASE", hide_short_help = true)]
    pub release: Option<String>,

    /// Words after the release that are not flags: a chart given without --chart, or
    /// (safe-rollback) helm's habit of naming a revision. Read by `commands`.
    #[arg(value_name = "REVISION", hide = true)]
    pub extra: Vec<String>,

    /// Print the plan and change nothing.
    #[arg(long, visible_alias = "dry-run", help_heading = RUN, display_order = 2)]
    pub plan: bool,

    /// With the plan, what each hop changes: a summary per hop, or (=full) a unified diff of
    /// the rendered manifests, like helm-diff's. Secret data is always masked.
    #[arg(long, value_name = "full", num_args = 0..=1, default_missing_value = "summary", value_parser = ["summary", "full"], help_heading = RUN, hide_short_help = true)]
    pub diff: Option<String>,

    /// Do not render the hops before the first change (air-gapped sources, huge charts);
    /// the plan says that it was skipped.
    #[arg(long, help_heading = RUN, hide_short_help = true)]
    pub no_preflight: bool,

    /// Time to wait for each rollout (helm's duration syntax, at most 24h).
    #[arg(long, default_value = "5m0s", value_name = "DURATION", help_heading = RUN, hide_short_help = true)]
    pub timeout: String,

    /// Answer yes to every question and run unattended (CI).
    #[arg(short = 'y', long, help_heading = RUN, display_order = 3)]
    pub yes: bool,

    /// The chart: repo/name, oci://host/path/name or a directory of packages.
    ///
    /// Default: what the last run used, then the policy's. Offline, its name picks the
    /// preset when --policy is absent. A fleet view takes several, one per chart.
    // Repeatable for the fleet view only; a run of one release refuses a second one
    // (`commands`), and reads it through `Common::chart`.
    #[arg(long = "chart", id = "chart", value_name = "REF", help_heading = SOURCE, display_order = 4)]
    pub charts: Vec<String>,

    /// The policy: a preset (see --list-policies) or a YAML file.
    ///
    /// Default: a file the last run used, then the policy the target chart ships, then a
    /// preset (the last run's, else the one for the chart's name).
    #[arg(long, value_name = "NAME|FILE", help_heading = SOURCE, display_order = 5)]
    pub policy: Option<String>,

    /// Let a policy shipped in the chart run its commands (run steps, snapshot command,
    /// checks), after reviewing them: without it, such a plan is refused and lists them.
    #[arg(long, help_heading = SOURCE, hide_short_help = true)]
    pub allow_chart_commands: bool,

    /// Use plain HTTP for an oci:// chart registry (as helm's --plain-http).
    #[arg(long, help_heading = SOURCE, hide_short_help = true)]
    pub plain_http: bool,

    /// A values file for every hop (repeatable).
    ///
    /// Applied after the values the release already has, which are carried to every hop.
    #[arg(short = 'f', long = "values", value_name = "FILE", help_heading = VALUES, display_order = 6)]
    pub values: Vec<std::path::PathBuf>,

    /// Extra value for every hop, as helm's --set (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", help_heading = VALUES, display_order = 7)]
    pub set: Vec<String>,

    /// Extra string value for every hop, as helm's --set-string (repeatable).
    #[arg(long = "set-string", value_name = "KEY=VALUE", help_heading = VALUES, hide_short_help = true)]
    pub set_string: Vec<String>,

    /// Extra JSON value for every hop, as helm's --set-json (repeatable).
    #[arg(long = "set-json", value_name = "KEY=JSON", help_heading = VALUES, hide_short_help = true)]
    pub set_json: Vec<String>,

    /// A value read from a file for every hop, as helm's --set-file (repeatable).
    #[arg(long = "set-file", value_name = "KEY=PATH", help_heading = VALUES, hide_short_help = true)]
    pub set_file: Vec<String>,

    /// Extra literal string value for every hop, as helm's --set-literal (repeatable).
    #[arg(long = "set-literal", value_name = "KEY=VALUE", help_heading = VALUES, hide_short_help = true)]
    pub set_literal: Vec<String>,

    /// A program to call at the run's start, each hop's end and the run's end, with a JSON
    /// document on its stdin (a name on PATH or a path; no shell; killed after 10 s; a
    /// failure is a warning). Replaces the policy's `notify`.
    #[arg(long, value_name = "PROGRAM", value_hint = ValueHint::ExecutablePath, help_heading = UNATTENDED, hide_short_help = true)]
    pub notify: Option<String>,

    /// An argument for the --notify program (repeatable, in order). Never shown or
    /// recorded: it may hold a webhook's token.
    #[arg(
        long = "notify-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "notify",
        help_heading = UNATTENDED,
        hide_short_help = true
    )]
    pub notify_arg: Vec<String>,

    /// A snapshot exists already: snapshot steps without a command are satisfied.
    #[arg(long, help_heading = UNATTENDED, hide_short_help = true)]
    pub snapshot_taken: bool,

    /// Walk a reviewed plan file (`--plan -o json > FILE`), after checking that the release,
    /// the policy, the charts and the values are still what it was made from. The release
    /// is the file's.
    // No conflict with the flags helm sets through the environment (-n, --kube-context,
    // --debug): conflicts count values from the environment too. --chart, --policy and
    // -f/--set* stay allowed: they are inputs the plan was made with, and are compared.
    #[arg(
        long,
        value_name = "FILE",
        value_hint = ValueHint::FilePath,
        help_heading = UNATTENDED,
        hide_short_help = true,
        conflicts_with_all = [
            "to", "plan", "diff", "no_preflight", "resume", "from", "versions", "history", "list_policies",
            "show_policy", "extra",
        ]
    )]
    pub execute: Option<std::path::PathBuf>,

    /// Continue the plan a killed run left in the ledger, after checking the live release.
    #[arg(long, help_heading = UNATTENDED, hide_short_help = true)]
    pub resume: bool,

    /// Take over the lock of a run that is gone. Alone: a run of this machine whose
    /// process no longer exists. `=HOLDER` (exactly as printed, `user@host pid N`): a run
    /// of another machine. A live run's lock is never taken.
    #[arg(
        long,
        value_name = "HOLDER",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        help_heading = UNATTENDED,
        hide_short_help = true
    )]
    pub force_unlock: Option<String>,

    /// Keep the ledger (and its lock) in a local file instead of the shared ConfigMap:
    /// other machines do not see it. For clusters where the ConfigMap cannot be read.
    #[arg(long, help_heading = UNATTENDED, hide_short_help = true)]
    pub local_ledger: bool,

    /// The deployed version, to plan offline without reading a release.
    #[arg(long, value_name = "VERSION", help_heading = OFFLINE, hide_short_help = true)]
    pub from: Option<String>,

    /// Versions the chart source offers, comma-separated (offline planning); CHART=APP
    /// pairs give each chart's appVersion (for a policy with `versions: app`). Default:
    /// the policy's catalog.
    #[arg(long, value_name = "LIST", help_heading = OFFLINE, hide_short_help = true)]
    pub versions: Option<String>,

    /// table (for people) or json (one document on stdout, for CI).
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "table",
        value_name = "FORMAT",
        hide_possible_values = true,
        hide_default_value = true,
        help_heading = RUN,
        display_order = 8
    )]
    pub output: OutputFormat,

    /// Colour: never, always, or auto (a terminal a person watches). Without it, NO_COLOR
    /// and then helm's HELM_COLOR decide.
    ///
    /// Given, it wins over both. helm passes `--color` on to the plugin also when it is
    /// written before the plugin's name: `helm --color never safe-upgrade …` works too.
    /// `-o json` is never coloured.
    // `--colour` too: helm 4 accepts both spellings and passes either one on.
    #[arg(long, value_enum, value_name = "WHEN", alias = "colour", help_heading = OUTPUT, hide_short_help = true)]
    pub color: Option<ColorChoice>,

    /// Echo every command run (--set values only on your terminal).
    #[arg(
        long,
        env = "HELM_DEBUG",
        value_parser = clap::builder::BoolishValueParser::new(),
        default_value_t = false,
        hide_env_values = true,
        help_heading = OUTPUT,
        hide_short_help = true
    )]
    pub debug: bool,

    /// Namespace of the release (helm passes its own -n as HELM_NAMESPACE).
    #[arg(short = 'n', long, env = "HELM_NAMESPACE", value_name = "NAMESPACE", hide_short_help = true)]
    pub namespace: Option<String>,

    /// Kubernetes context (helm passes its own --kube-context as HELM_KUBECONTEXT).
    #[arg(long, env = "HELM_KUBECONTEXT", value_name = "CONTEXT", hide_env_values = true, hide_short_help = true)]
    pub kube_context: Option<String>,

    /// Print the release's history from the ledger and change nothing: every run of this
    /// tool (who, when, from → to, how it ended), each hop and step with its outcome and
    /// duration, snapshots, stops and recoveries. It outlives helm's --history-max.
    // No conflict with the flags helm sets through the environment (-n, --kube-context,
    // --debug): conflicts count values from the environment too.
    #[arg(
        long,
        help_heading = OUTPUT,
        hide_short_help = true,
        conflicts_with_all = [
            "to", "plan", "diff", "no_preflight", "timeout", "chart", "policy", "plain_http", "values", "set",
            "set_string", "set_json", "set_file", "set_literal", "snapshot_taken", "resume", "force_unlock", "from",
            "versions", "list_policies", "show_policy", "extra",
        ]
    )]
    pub history: bool,

    /// List the built-in policies.
    #[arg(long, help_heading = POLICIES, hide_short_help = true)]
    pub list_policies: bool,

    /// Print a built-in policy's YAML, to copy and edit.
    #[arg(long, value_name = "NAME", help_heading = POLICIES, hide_short_help = true)]
    pub show_policy: Option<String>,

    /// helm's flag for a chart version: refused here with a pointer to --to.
    #[arg(long = "version", value_name = "VERSION", num_args = 0..=1, default_missing_value = "", hide = true)]
    pub helm_version_flag: Option<String>,

    /// Print the tool's version.
    #[arg(long = "tool-version", action = ArgAction::Version, help_heading = OUTPUT, hide_short_help = true)]
    pub tool_version: Option<bool>,

    /// Print help (-h: the everyday flags; --help: every flag).
    // clap's own help flag would take three lines of -h (its own "Options:" group) to say
    // what the last line of -h says already.
    #[arg(short = 'h', long = "help", action = ArgAction::Help, help_heading = OUTPUT, hide_short_help = true)]
    pub help: Option<bool>,
}

impl Common {
    /// The one `--chart` of a run (a second one is refused before anything runs).
    pub fn chart(&self) -> Option<&str> {
        self.charts.last().map(String::as_str)
    }
}

const UPGRADE_EXAMPLES: &str = "\
Examples:
  helm safe-upgrade bsr --to 1.3.0 --plan            # the path the vendor supports, nothing changed
  helm safe-upgrade bsr --to 1.3.0 --chart demo/bsr  # walk it: plan, confirm, hop, verify, repeat
  helm safe-upgrade bsr --to 1.3.0 --yes -o json     # unattended, one JSON document (CI)
  helm safe-upgrade bsr --to 1.3.0 --plan -o json > plan.json   # a plan to review
  helm safe-upgrade --execute plan.json --yes        # walk it, if the release is still as planned
  helm safe-upgrade bsr --resume                     # continue a run that was killed
  helm safe-upgrade bsr --history                    # every run on the release, from the ledger
  helm safe-upgrade --all-namespaces --plan          # every release: its policy, how far it can go
  helm safe-upgrade --from 1.0.4 --to 1.3.0 --policy bsr --versions 1.0.4,1.1.9,1.2.6,1.3.0 --plan";

const ROLLBACK_EXAMPLES: &str = "\
Examples:
  helm safe-rollback bsr --plan                   # how far back is safe, and how
  helm safe-rollback bsr                          # back to the newest earlier safe version
  helm safe-rollback bsr --to 1.2.6               # to a version (within the policy's window)
  helm safe-rollback bsr 4                        # to the version and values of revision 4
  helm safe-rollback bsr --yes --accept-data-loss # unattended, accepting the policy's warning";

#[derive(Debug, Parser)]
#[command(
    name = "safe-upgrade",
    bin_name = "helm safe-upgrade",
    version,
    disable_version_flag = true,
    disable_help_flag = true,
    about = "Upgrade a release along the path its vendor supports",
    long_about = "Upgrade a release along the path its vendor supports: one hop at a time, \
refusing what the vendor's policy forbids.",
    after_help = "Examples:\n  helm safe-upgrade bsr --to 1.3.0 --plan\n  helm safe-upgrade bsr --to 1.3.0 --yes -o json\n\nRun with --help for every flag, more examples and the exit codes.",
    after_long_help = format!("{UPGRADE_EXAMPLES}\n\n{HELP_TABLE}"),
    override_usage = "helm safe-upgrade RELEASE --to VERSION [--plan] [--chart REF] [--policy NAME|FILE] [-y] [-o table|json]\n       \
helm safe-upgrade --from VERSION --to VERSION --policy NAME|FILE [--versions LIST]\n       \
helm safe-upgrade RELEASE --history [-o table|json]\n       \
helm safe-upgrade --execute PLAN.json [-y] [-o table|json]\n       \
helm safe-upgrade --all-namespaces | --fleet --plan [--chart REF] [-o table|json]\n       \
helm safe-upgrade --list-policies | --show-policy NAME"
)]
pub struct UpgradeCli {
    /// The version to upgrade to.
    ///
    /// With --resume: the target recorded in the ledger.
    #[arg(long, value_name = "VERSION", help_heading = RUN, display_order = 1)]
    pub to: Option<String>,

    #[command(flatten)]
    pub common: Common,

    /// Take the policy's faster path with downtime (e.g. BSR's maintenance mode).
    #[arg(long, help_heading = RUN, hide_short_help = true, conflicts_with_all = ["history", "execute"])]
    pub fast_path: bool,

    /// Allow a pre-release target (never an intermediate stop).
    #[arg(long, help_heading = RUN, hide_short_help = true, conflicts_with_all = ["history", "execute"])]
    pub devel: bool,

    /// With --plan: every release in all namespaces on one line, with its policy and the
    /// newest version it can reach (hops, downtime, refusals, estimate). Changes nothing.
    #[arg(
        short = 'A',
        long,
        help_heading = FLEET,
        hide_short_help = true,
        conflicts_with_all = NOT_WITH_A_FLEET,
        conflicts_with = "fleet",
        conflicts_with_all = ["list_policies", "show_policy"]
    )]
    pub all_namespaces: bool,

    /// With --plan: --all-namespaces for helm's namespace only (-n). helm always sets a
    /// namespace, so a missing release name alone never means a fleet.
    #[arg(
        long,
        help_heading = FLEET,
        hide_short_help = true,
        conflicts_with_all = NOT_WITH_A_FLEET,
        conflicts_with_all = ["list_policies", "show_policy"]
    )]
    pub fleet: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "safe-rollback",
    bin_name = "helm safe-rollback",
    version,
    disable_version_flag = true,
    disable_help_flag = true,
    about = "Roll a release back only as far as its vendor calls safe, the vendor's way",
    after_help = "Examples:\n  helm safe-rollback bsr --plan\n  helm safe-rollback bsr --to 1.2.6\n\nRun with --help for every flag, more examples and the exit codes.",
    after_long_help = format!("{ROLLBACK_EXAMPLES}\n\n{HELP_TABLE}"),
    override_usage = "helm safe-rollback RELEASE [REVISION] [--to VERSION] [--plan] [-y [--accept-data-loss]] [-o table|json]\n       \
helm safe-rollback --from VERSION [--to VERSION] [--newest-ever VERSION] --policy NAME|FILE\n       \
helm safe-rollback RELEASE --history [-o table|json]\n       \
helm safe-rollback --execute PLAN.json [-y [--accept-data-loss]] [-o table|json]"
)]
pub struct RollbackCli {
    /// The version to go back to. Default: the newest earlier safe version.
    #[arg(long, value_name = "VERSION", help_heading = RUN, display_order = 1)]
    pub to: Option<String>,

    #[command(flatten)]
    pub common: Common,

    /// The newest version ever deployed (offline planning). Default: --from.
    #[arg(long, value_name = "VERSION", help_heading = OFFLINE, hide_short_help = true, conflicts_with_all = ["history", "execute"])]
    pub newest_ever: Option<String>,

    /// With --yes: accept the data loss the policy warns of.
    ///
    /// A minor downgrade or a restore may lose data written since. On a terminal the
    /// operator types the release name instead.
    #[arg(long, help_heading = RUN, display_order = 4, conflicts_with = "history")]
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
