//! From parsed flags to planner inputs and back to output, for both commands.
//!
//! This layer decides *what* to do; the planner decides the path and `ui` renders it.

use std::ffi::OsString;
use std::path::Path;

use clap::Parser;
use serde::Serialize;

use crate::cli::{ColorChoice, Common, OutputFormat, RollbackCli, UpgradeCli};
use crate::exit;
use crate::plan::{
    self, Available, Context, Plan, PlanError, RollbackRequest, SnapshotKnowledge, Sources, UpgradeRequest,
};
use crate::policy::{self, Policy, PolicyError, presets};
use crate::printer::{ColourChoice, Printer, Role};
use crate::report::RunReport;
use crate::run::ledger::Takeover;
use crate::run::options::{NotifyCommand, RollbackOptions, RunOptions, UpgradeOptions};
use crate::run::values::Overrides;
use crate::run::{self, Either, RunError};
use crate::setvalues::{SetArg, SetKind};
use crate::ui::render;
use crate::version::{self, ChartVersion, VersionSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Upgrade,
    Rollback,
}

/// helm sets `HELM_PLUGIN_NAME` to the plugin's name (`safe-rollback` for the companion);
/// run directly, the binary's own name decides.
pub fn mode(argv0: Option<&OsString>, plugin_name: Option<&str>) -> Mode {
    match plugin_name {
        Some("safe-rollback") => Mode::Rollback,
        Some("safe-upgrade") => Mode::Upgrade,
        _ => {
            let name = argv0
                .and_then(|a| Path::new(a).file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_default();
            if name.ends_with("safe-rollback") { Mode::Rollback } else { Mode::Upgrade }
        }
    }
}

/// Everything that ends a run early, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}\nhint: {hint}")]
    Usage { message: String, hint: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(#[from] RunError),
    /// A run that ended with a non-zero code after reporting itself.
    #[error("exit {0}")]
    Finished(i32),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage { .. } | AppError::Policy(_) => exit::BAD_INPUT,
            AppError::Plan(PlanError::BadRequest { .. }) => exit::BAD_INPUT,
            AppError::Plan(PlanError::Refused(_)) => exit::REFUSED,
            AppError::Run(e) => e.exit_code(),
            AppError::Finished(code) => *code,
        }
    }
}

fn usage(message: impl Into<String>, hint: impl Into<String>) -> AppError {
    AppError::Usage { message: message.into(), hint: hint.into() }
}

/// Run one command; returns the process exit code. Output goes through `printer`, so the
/// whole CLI can be tested in-process with a captured one.
pub fn run(mode: Mode, args: Vec<OsString>, printer: &Printer) -> i32 {
    let parsed = match mode {
        Mode::Upgrade => UpgradeCli::try_parse_from(&args).map(Parsed::Upgrade),
        Mode::Rollback => RollbackCli::try_parse_from(&args).map(Parsed::Rollback),
    };
    let parsed = match parsed {
        Ok(p) => p,
        // Help and version are data (stdout, exit 0); usage errors are bad input, as one
        // JSON document under `-o json` like every other failure.
        Err(e) if !e.use_stderr() => {
            printer.data(&e.render().to_string());
            return exit::SUCCESS;
        }
        Err(e) if wants_json(&args) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            let hint = text.lines().find_map(|l| l.trim().strip_prefix("tip: ")).unwrap_or("see --help");
            report(&usage(first, hint), OutputFormat::Json, printer);
            return exit::BAD_INPUT;
        }
        Err(e) => {
            printer.text(&e.render().to_string());
            return exit::BAD_INPUT;
        }
    };
    let format = parsed.common().output;
    // Colour is decided again now that `--color` is known; clap's own messages above are
    // never coloured.
    let printer = &printer.with_colour(parsed.common().color.map(colour_choice), format == OutputFormat::Json);
    let shape = command_shape(mode, &args);
    match execute(&parsed, &shape, printer) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            report(&e, format, printer);
            e.exit_code()
        }
    }
}

fn colour_choice(flag: ColorChoice) -> ColourChoice {
    match flag {
        ColorChoice::Never => ColourChoice::Never,
        ColorChoice::Auto => ColourChoice::Auto,
        ColorChoice::Always => ColourChoice::Always,
    }
}

/// `-o json` (in any spelling) among arguments clap could not parse.
fn wants_json(args: &[OsString]) -> bool {
    let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    words.windows(2).any(|w| (w[0] == "-o" || w[0] == "--output") && w[1] == "json")
        || words.iter().any(|w| w == "-ojson" || w == "--output=json" || w == "-o=json")
}

enum Parsed {
    Upgrade(UpgradeCli),
    Rollback(RollbackCli),
}

impl Parsed {
    fn common(&self) -> &Common {
        match self {
            Parsed::Upgrade(c) => &c.common,
            Parsed::Rollback(c) => &c.common,
        }
    }
}

/// The end of a live run: the JSON document, or a summary line, and the exit code.
fn report_run(report: &RunReport, format: OutputFormat, printer: &Printer) -> Result<(), AppError> {
    match format {
        OutputFormat::Json => {
            printer.data(&format!("{}\n", serde_json::to_string_pretty(report).expect("a report serialises")));
        }
        OutputFormat::Table => {
            // Escaped inside: the tool's own words are coloured, quoted text never is; the
            // operator's values shown only when stdout is their terminal (not `> file`).
            let text =
                render::outcome_text(&report.outcome, &report.release, printer.data_look(), printer.data_disclosure());
            printer.data(&format!("{text}\n"));
        }
    }
    match report.exit_code() {
        exit::SUCCESS => Ok(()),
        code => Err(AppError::Finished(code)),
    }
}

fn execute(parsed: &Parsed, shape: &str, printer: &Printer) -> Result<(), AppError> {
    let common = parsed.common();
    refuse_helm_habits(parsed)?;
    if common.list_policies {
        printer.data(&render::policy_list(&presets::all()));
        return Ok(());
    }
    if let Some(name) = &common.show_policy {
        let text = presets::text(name).ok_or_else(|| PolicyError::Unknown { name: name.clone() })?;
        printer.data(text);
        return Ok(());
    }
    if common.history {
        return show_history(common, shape, printer);
    }
    if let Some(file) = &common.execute {
        return execute_plan_file(parsed, file, shape, printer);
    }
    if let Parsed::Upgrade(cli) = parsed
        && (cli.all_namespaces || cli.fleet)
    {
        return fleet_view(cli, printer);
    }
    if common.charts.len() > 1 {
        return Err(usage(
            "--chart is given more than once: a release has one chart source",
            "pass one --chart (several only with --all-namespaces or --fleet, one per chart)",
        ));
    }
    let live_release = common.release.clone().filter(|_| common.from.is_none());
    refuse_diff_showing_nothing(parsed, live_release.is_some())?;
    let plan = match (parsed, live_release) {
        (Parsed::Upgrade(cli), Some(_)) => {
            let opts = run_options(common, shape)?;
            let target = cli.to.as_deref().map(|t| parse_spec("--to", t)).transpose()?;
            let up = UpgradeOptions { target, fast_path: cli.fast_path, devel: cli.devel };
            match run::upgrade(&opts, &up, printer)? {
                Either::Plan(plan) => *plan,
                Either::Report(report) => return report_run(&report, common.output, printer),
            }
        }
        (Parsed::Rollback(cli), Some(_)) => {
            let opts = run_options(common, shape)?;
            let target = cli.to.as_deref().map(|t| parse_spec("--to", t)).transpose()?;
            let revision = common.extra.first().map(|r| r.parse::<u64>()).transpose().map_err(|_| {
                usage(
                    format!("unexpected argument {:?}", common.extra[0]),
                    "after the release, helm safe-rollback takes a revision number (as helm rollback does); a version goes in --to",
                )
            })?;
            let down = RollbackOptions { target, revision, accept_data_loss: cli.accept_data_loss };
            match run::rollback(&opts, &down, printer)? {
                Either::Plan(plan) => *plan,
                Either::Report(report) => return report_run(&report, common.output, printer),
            }
        }
        (Parsed::Upgrade(cli), None) => plan_upgrade_offline(cli)?,
        (Parsed::Rollback(cli), None) => plan_rollback_offline(cli)?,
    };
    match common.output {
        OutputFormat::Json => printer.data(&format!("{}\n", render::plan_json(&plan))),
        OutputFormat::Table => printer.data(&render::plan_table(&plan, printer.data_look())),
    }
    Ok(())
}

/// `--diff` where it would show nothing is said rather than ignored: the diff comes from
/// the preflight's renders of an upgrade's hops against the live release.
fn refuse_diff_showing_nothing(parsed: &Parsed, live: bool) -> Result<(), AppError> {
    let common = parsed.common();
    if common.diff.is_none() {
        return Ok(());
    }
    if common.no_preflight {
        return Err(usage(
            "--diff shows what each hop's render changes, and --no-preflight renders nothing",
            "drop one of them",
        ));
    }
    if matches!(parsed, Parsed::Rollback(_)) {
        return Err(usage(
            "--diff is shown for an upgrade's hops only",
            "plan the rollback without --diff; `helm diff rollback` (the helm-diff plugin) shows a revision's changes",
        ));
    }
    if !live {
        return Err(usage(
            "--diff needs a live release: it renders each hop against the cluster",
            "name the release (helm safe-upgrade RELEASE --to VERSION --plan --diff); offline plans show the path only",
        ));
    }
    Ok(())
}

/// `--execute FILE`: read the reviewed plan (refused, exit 2, when it is not an
/// executable plan of this command or not the release named), then walk it if the
/// release still gives exactly it (`run::execute_reviewed`).
fn execute_plan_file(parsed: &Parsed, file: &Path, shape: &str, printer: &Printer) -> Result<(), AppError> {
    let common = parsed.common();
    let what = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("--execute {what}: {e}"), "pass the file `--plan -o json` wrote"))?;
    let reviewed = plan::document::read(&text, &what).map_err(|e| {
        let text = e.to_string();
        let (message, hint) = text.split_once("\nhint: ").unwrap_or((&text, ""));
        usage(message, hint)
    })?;
    let (command, other) = match parsed {
        Parsed::Upgrade(_) => ("helm safe-upgrade", "helm safe-rollback"),
        Parsed::Rollback(_) => ("helm safe-rollback", "helm safe-upgrade"),
    };
    let wanted = match parsed {
        Parsed::Upgrade(_) => plan::Direction::Upgrade,
        Parsed::Rollback(_) => plan::Direction::Rollback,
    };
    if reviewed.direction != wanted {
        return Err(usage(
            format!("{what} is a plan for `{other}`, not `{command}`"),
            format!("run `{other} --execute {what}`"),
        ));
    }
    // `read` refuses a plan without a release.
    let release = reviewed.release.clone().unwrap_or_default();
    let namespace = reviewed.namespace.clone().unwrap_or_default();
    if common.release.as_ref().is_some_and(|r| *r != release) {
        return Err(usage(
            format!("{what} is a plan for release {release}, not {}", common.release.as_deref().unwrap_or_default()),
            "drop the release name (the file names it), or pass the plan made for that release",
        ));
    }
    let mut opts = run_options_for(release, common, shape)?;
    if opts.namespace != namespace {
        // helm always sets HELM_NAMESPACE (its -n, else the context's namespace): a
        // mismatch is a plan for another namespace, or a forgotten -n.
        return Err(usage(
            format!("{what} is a plan for namespace {namespace}, and this run is in {}", opts.namespace),
            format!("pass -n {namespace} (helm's own flag) to execute it"),
        ));
    }
    // The plan was made by a live run with a chart reference; without --chart, the same.
    if opts.chart.is_none() {
        opts.chart = reviewed.made_from.as_ref().map(|m| m.chart_reference.clone());
    }
    // A plan made with --no-preflight is executed without it, and one made with it is
    // rendered again and compared hop by hop.
    opts.no_preflight = reviewed.hops.iter().all(|h| h.check.is_none());
    let accept_data_loss = matches!(parsed, Parsed::Rollback(cli) if cli.accept_data_loss);
    let report = run::execute_reviewed(&opts, reviewed, accept_data_loss, printer)?;
    report_run(&report, common.output, printer)
}

/// `--all-namespaces --plan` / `--fleet --plan`: every release, planned; nothing changes.
fn fleet_view(cli: &UpgradeCli, printer: &Printer) -> Result<(), AppError> {
    let common = &cli.common;
    let flag = if cli.all_namespaces { "--all-namespaces" } else { "--fleet" };
    if !common.plan {
        return Err(usage(
            format!("{flag} plans every release and changes nothing: it needs --plan"),
            format!(
                "run `helm safe-upgrade {flag} --plan`, then upgrade each release with `helm safe-upgrade RELEASE --to VERSION`"
            ),
        ));
    }
    let opts = crate::fleet::FleetOptions {
        all_namespaces: cli.all_namespaces,
        namespace: common.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()),
        kube_context: common.kube_context.clone().filter(|c| !c.is_empty()),
        charts: common.charts.clone(),
        plain_http: common.plain_http,
        allow_chart_commands: common.allow_chart_commands,
        debug: common.debug,
    };
    let view = crate::fleet::view(&opts, printer)?;
    match common.output {
        OutputFormat::Json => {
            let text = crate::fleet::render::json(&view);
            printer.data(&format!("{}\n", crate::text::json_for_terminal(&text)));
        }
        OutputFormat::Table => printer.data(&crate::fleet::render::table(&view, printer.data_look())),
    }
    Ok(())
}

/// `--history`: the release's ledger as a table or one JSON document; nothing changes and
/// no lock is taken. A note about the record (written by a newer version) is a warning on
/// stderr beside the table, a `note` field in the JSON.
fn show_history(common: &Common, shape: &str, printer: &Printer) -> Result<(), AppError> {
    if common.release.is_none() {
        return Err(usage("--history needs a release", "name it: helm safe-upgrade RELEASE --history"));
    }
    let opts = run_options(common, shape)?;
    let opened = run::gather::ledger_for_showing(&opts)?;
    if let Some(warning) = &opened.warning {
        printer.line(&crate::text::for_terminal(warning));
    }
    let location = opened.store.location();
    let subject = crate::history::Subject { release: &opts.release, namespace: &opts.namespace, location: &location };
    let (ledger, note) = match opened.loaded {
        Some(shown) => (shown.ledger, shown.note),
        None => (crate::run::ledger::Ledger::new(&opts.release, &opts.namespace), None),
    };
    let history = crate::history::history(&ledger, subject, note.as_deref());
    match common.output {
        OutputFormat::Json => {
            let text = crate::history::json(&history);
            printer.data(&format!("{}\n", crate::text::json_for_terminal(&text)));
        }
        OutputFormat::Table => {
            if let Some(note) = &note {
                let warning = printer.text_look().paint(Role::Notice, "warning");
                printer.line(&format!("{warning}: {}", crate::text::for_terminal(note)));
            }
            printer.data(&crate::history::table(&history, printer.data_look()));
        }
    }
    Ok(())
}

/// Every flag of a live run, checked before anything is read or changed: a value helm
/// would reject later (after the lock was taken, or between two hops) is bad input now.
fn run_options(common: &Common, shape: &str) -> Result<RunOptions, AppError> {
    run_options_for(common.release.clone().unwrap_or_default(), common, shape)
}

/// [`run_options`] for `release` (`--execute`: the plan file's).
fn run_options_for(release: String, common: &Common, shape: &str) -> Result<RunOptions, AppError> {
    crate::names::check_release_name(&release).map_err(|e| {
        let text = e.to_string();
        let (message, hint) = text.split_once("\nhint: ").unwrap_or((&text, ""));
        usage(message, hint)
    })?;
    crate::duration::parse(&common.timeout)
        .map_err(|e| usage(format!("--timeout {e}"), "the time helm waits for each rollout, e.g. --timeout 10m"))?;
    let mut sets = Vec::new();
    for (kind, lines) in [
        (SetKind::SetJson, &common.set_json),
        (SetKind::Set, &common.set),
        (SetKind::SetString, &common.set_string),
        (SetKind::SetFile, &common.set_file),
        (SetKind::SetLiteral, &common.set_literal),
    ] {
        for line in lines {
            let arg = SetArg::new(kind, line.as_str());
            let assignments = arg.parse().map_err(|e| {
                usage(
                    e.to_string(),
                    "write KEY=VALUE as for helm (a backslash escapes `,` and `.`); see `helm upgrade --help`",
                )
            })?;
            if kind == SetKind::SetFile {
                for a in &assignments {
                    readable_file(kind.flag(), std::path::Path::new(&a.value))?;
                }
            }
            sets.push(arg);
        }
    }
    for file in &common.values {
        readable_file("-f/--values", file)?;
    }
    let takeover = match common.force_unlock.as_deref() {
        None => Takeover::No,
        Some("") => Takeover::IfGone,
        Some(holder) => Takeover::Named(holder.to_string()),
    };
    Ok(RunOptions {
        release,
        namespace: common.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()),
        kube_context: common.kube_context.clone().filter(|c| !c.is_empty()),
        policy: common.policy.clone(),
        chart: common.chart().map(String::from),
        plan_only: common.plan,
        yes: common.yes,
        timeout: common.timeout.clone(),
        overrides: Overrides { files: common.values.clone(), sets },
        plain_http: common.plain_http,
        snapshot_taken: common.snapshot_taken,
        takeover,
        resume: common.resume,
        local_ledger: common.local_ledger,
        debug: common.debug,
        no_preflight: common.no_preflight,
        allow_chart_commands: common.allow_chart_commands,
        diff: match common.diff.as_deref() {
            None => crate::run::options::DiffDetail::None,
            Some("full") => crate::run::options::DiffDetail::Full,
            Some(_) => crate::run::options::DiffDetail::Summary,
        },
        outcome_in_words: common.output == OutputFormat::Table,
        command_shape: shape.to_string(),
        notify: common.notify.clone().map(|program| NotifyCommand { program, args: common.notify_arg.clone() }),
    })
}

/// A values file must be a regular file the tool can read, checked now rather than by
/// helm at the first hop.
fn readable_file(flag: &str, path: &std::path::Path) -> Result<(), AppError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| usage(format!("{flag} {}: {e}", path.display()), "pass a readable file")),
        Ok(_) => Err(usage(format!("{flag} {}: not a regular file", path.display()), "pass a YAML file")),
        Err(e) => Err(usage(format!("{flag} {}: {e}", path.display()), "check the path")),
    }
}

/// The command line with every value replaced by `***`: the flags and the release name
/// only, which is what the lock and the run record may show to anyone who can read the
/// ledger. Which flags take a value comes from clap's own definitions.
pub fn command_shape(mode: Mode, args: &[OsString]) -> String {
    use clap::CommandFactory;
    let command = match mode {
        Mode::Upgrade => UpgradeCli::command(),
        Mode::Rollback => RollbackCli::command(),
    };
    let takes_value = |flag: &str| -> bool {
        command.get_arguments().any(|a| {
            let named = flag.strip_prefix("--").map(|long| a.get_long() == Some(long)).unwrap_or(false)
                || (flag.len() == 2 && flag.starts_with('-') && a.get_short() == flag.chars().nth(1));
            named && a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0)
        })
    };
    let mut shown = vec![match mode {
        Mode::Upgrade => "helm safe-upgrade".to_string(),
        Mode::Rollback => "helm safe-rollback".to_string(),
    }];
    let mut hide_next = false;
    let mut positional_only = false;
    for arg in args.iter().skip(1).map(|a| a.to_string_lossy()) {
        if hide_next {
            shown.push("***".into());
            hide_next = false;
        } else if positional_only || !arg.starts_with('-') || arg == "-" {
            // The release name (positional): it names the ledger ConfigMap itself. Anything
            // else positional is not expected; hidden to be safe.
            let is_name = crate::names::check_release_name(&arg).is_ok();
            shown.push(if is_name { arg.into_owned() } else { "***".into() });
        } else if arg == "--" {
            positional_only = true;
            shown.push(arg.into_owned());
        } else if let Some((flag, _)) = arg.split_once('=') {
            shown.push(format!("{flag}=***"));
        } else if arg.len() > 2 && !arg.starts_with("--") && takes_value(&arg[..2]) {
            // `-fvalues.yaml`: a short flag with its value attached.
            shown.push(format!("{}***", &arg[..2]));
        } else {
            hide_next = takes_value(&arg);
            shown.push(arg.into_owned());
        }
    }
    // Every word is a flag name, `***` or a checked release name: nothing to quote.
    shown.join(" ")
}

/// The chart's name from a reference: the last path segment of `repo/name`,
/// `oci://host/path/name` or a directory.
pub fn chart_name(reference: &str) -> Option<String> {
    let trimmed = reference.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    (!name.is_empty() && !name.contains(':')).then(|| name.to_string())
}

/// The policy named by `--policy`, else the preset for `--chart`'s name. Offline there is
/// no release whose chart could pick one.
fn offline_policy(common: &Common) -> Result<Policy, AppError> {
    match (&common.policy, common.chart().and_then(chart_name)) {
        (Some(name), _) => Ok(policy::load_named_or_path(name)?),
        (None, Some(chart)) => Ok(presets::for_chart(&chart)),
        (None, None) => Err(usage(
            "planning offline (--from) needs --policy or --chart: there is no release whose chart could pick a policy",
            format!("pass --policy with a preset ({}) or a policy file", presets::names().join(", ")),
        )),
    }
}

/// What helm users type out of habit, answered with what they mean.
fn refuse_helm_habits(parsed: &Parsed) -> Result<(), AppError> {
    let common = parsed.common();
    if let Some(version) = &common.helm_version_flag {
        let to = if version.is_empty() { "VERSION".to_string() } else { version.clone() };
        return Err(usage(
            "--version is not a flag of this tool: helm uses it for a chart version, and so would this one's target",
            format!(
                "name the target with --to {to}; the tool's own version is --tool-version (and `helm plugin list` shows it)"
            ),
        ));
    }
    let too_many = match parsed {
        Parsed::Upgrade(_) => common.extra.first(),
        Parsed::Rollback(_) => common.extra.get(1),
    };
    if let Some(word) = too_many {
        let looks_like_chart = word.contains('/') || word.starts_with("oci:");
        return Err(usage(
            format!("unexpected argument {word:?}"),
            if looks_like_chart {
                format!("the chart goes in --chart: --chart {word}")
            } else {
                "the release is the only word before the flags (see --help)".to_string()
            },
        ));
    }
    Ok(())
}

fn parse_spec(flag: &str, value: &str) -> Result<VersionSpec, AppError> {
    VersionSpec::parse(value).map_err(|e| usage(format!("{flag}: {e}"), "versions look like 1.2.3"))
}

fn parse_version(flag: &str, value: &str) -> Result<ChartVersion, AppError> {
    ChartVersion::parse(value).map_err(|e| usage(format!("{flag}: {e}"), "versions look like 1.2.3"))
}

/// `--from`, required until live releases can be read.
fn offline_from(common: &Common) -> Result<ChartVersion, AppError> {
    match &common.from {
        Some(from) => parse_version("--from", from),
        None => Err(usage(
            match &common.release {
                Some(release) => format!("reading the live release {release:?} is not supported by this build yet"),
                None => "no release and no --from given".to_string(),
            },
            "plan offline with --from VERSION (the deployed version) and --policy",
        )),
    }
}

/// `--versions`, else the policy's catalog.
fn offline_versions(common: &Common, policy: &Policy) -> Result<Vec<Available>, AppError> {
    let given = match &common.versions {
        Some(list) => offered_list(list)?,
        None => vec![],
    };
    let versions: Vec<version::ChartVersion> = match &common.versions {
        Some(_) => given.iter().map(|(v, _)| v.clone()).collect(),
        None => policy.catalog.keys().cloned().collect(),
    };
    if versions.is_empty() {
        return Err(usage(
            format!("no versions are known: --versions was not given and policy {} has no catalog", policy.name),
            "list the chart's versions with --versions 1.0.4,1.1.0,...",
        ));
    }
    Ok(versions
        .into_iter()
        .map(|v| {
            // An app version given on the command line wins over the catalog's.
            let given_app = given.iter().find(|(chart, _)| chart == &v).and_then(|(_, app)| app.clone());
            let app_version = given_app.or_else(|| policy.catalog_entry(&v).and_then(|e| e.app_version.clone()));
            Available { version: v, app_version }
        })
        .collect())
}

/// `--versions 1.0.4,1.1.0` or, for a policy that counts in app versions,
/// `--versions 8.0.0=17.0.1,8.2.0=17.2.3` (CHART=APP, as the chart source would say).
fn offered_list(list: &str) -> Result<Vec<(version::ChartVersion, Option<String>)>, AppError> {
    let hint = "list versions separated by commas: 1.0.4,1.1.0, or CHART=APP pairs: 8.0.0=17.0.1,8.2.0=17.2.3";
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (chart, app) = match item.split_once('=') {
                Some((chart, app)) if !app.trim().is_empty() => (chart, Some(app.trim().to_string())),
                Some(_) => return Err(usage(format!("--versions: {item:?} names no app version after `=`"), hint)),
                None => (item, None),
            };
            let chart = version::ChartVersion::parse(chart).map_err(|e| usage(format!("--versions: {e}"), hint))?;
            Ok((chart, app))
        })
        .collect()
}

/// Offline without `--versions`, the versions are the policy's catalog: a target outside
/// it is not "unavailable from the chart source" (no source was asked) but unknown here.
fn known_offline(
    common: &Common,
    policy: &Policy,
    available: &[Available],
    target: &version::ChartVersion,
) -> Result<(), AppError> {
    if common.versions.is_some() || available.iter().any(|a| &a.version == target) {
        return Ok(());
    }
    let listed = match (available.first(), available.last()) {
        (Some(first), Some(last)) => format!(" (it lists {} to {})", first.version, last.version),
        _ => String::new(),
    };
    Err(usage(
        format!(
            "{target} is not in the catalog of policy {}{listed}, where an offline plan takes the chart's versions from",
            policy.name
        ),
        format!(
            "pass the versions the chart source offers with --versions LIST (comma-separated, including {target}); or plan against the live release: helm safe-upgrade RELEASE --to {target} --plan"
        ),
    ))
}

fn offline_context(common: &Common, policy: &Policy) -> Context {
    Context {
        release: common.release.clone(),
        namespace: common.namespace.clone(),
        chart_name: common.chart().and_then(chart_name).or_else(|| policy.charts.first().cloned()),
        sources: Some(Sources {
            policy: policy.origin.to_string(),
            policy_digest: policy.digest.clone(),
            chart: common.chart().map(|c| format!("{c} (--chart)")),
            chart_commands: vec![],
        }),
        values: None,
        history: vec![],
        // Offline: no release, so nothing for `--execute` to check (it refuses such plans).
        made_from: None,
        charts_of_apps: Default::default(),
        stated_times: policy
            .states_times_for(&common.chart().and_then(chart_name).unwrap_or_default(), common.policy.is_some()),
    }
}

fn plan_upgrade_offline(cli: &UpgradeCli) -> Result<Plan, AppError> {
    let common = &cli.common;
    let policy = offline_policy(common)?;
    let current = offline_from(common)?;
    let spec = match cli.to.as_deref() {
        Some(to) => parse_spec("--to", to)?,
        None => return Err(usage("--to is required", "name the version to upgrade to with --to VERSION")),
    };
    let available = offline_versions(common, &policy)?;
    let target = plan::exact_target(&spec, &available)?;
    known_offline(common, &policy, &available, &target)?;
    let request = UpgradeRequest { current, target, fast_path: cli.fast_path, devel: cli.devel };
    Ok(plan::plan_upgrade(&policy, &available, &request, &offline_context(common, &policy))?)
}

fn plan_rollback_offline(cli: &RollbackCli) -> Result<Plan, AppError> {
    let common = &cli.common;
    let policy = offline_policy(common)?;
    let current = offline_from(common)?;
    let spec = cli.to.as_deref().map(|t| parse_spec("--to", t)).transpose()?;
    let newest_ever = match &cli.newest_ever {
        Some(v) => parse_version("--newest-ever", v)?,
        None => current.clone(),
    };
    if newest_ever < current {
        return Err(usage(
            format!("--newest-ever {newest_ever} is older than --from {current}"),
            "the newest version ever deployed is at least the deployed one",
        ));
    }
    let available = offline_versions(common, &policy)?;
    let target = spec.map(|spec| plan::exact_target(&spec, &available)).transpose()?;
    if let Some(target) = &target {
        known_offline(common, &policy, &available, target)?;
    }
    let request = RollbackRequest {
        current,
        target,
        newest_ever,
        deployed_before: vec![],
        snapshot: SnapshotKnowledge::Unknown,
        by_revision: None,
    };
    Ok(plan::plan_rollback(&policy, &available, &request, &offline_context(common, &policy))?)
}

/// Print an error once: JSON on stdout under `-o json` (so CI gets one document), text on
/// stderr otherwise.
fn report(e: &AppError, format: OutputFormat, printer: &Printer) {
    match (e, format) {
        // Already reported by the run itself.
        (AppError::Finished(_), _) => {}
        (AppError::Run(RunError::Refused(r)) | AppError::Plan(PlanError::Refused(r)), OutputFormat::Json) => {
            printer.data(&format!("{}\n", render::refusal_json(r)));
        }
        (AppError::Plan(PlanError::Refused(r)), OutputFormat::Table) => {
            let look = printer.text_look();
            let text = format!("{}: {}", look.paint(Role::Bad, "error"), render::refusal_text(r, look));
            printer.text(&format!("{}\n", look.wrap(&text)));
        }
        (other, OutputFormat::Json) => {
            #[derive(Serialize)]
            struct Doc<'a> {
                error: Body<'a>,
            }
            #[derive(Serialize)]
            struct Body<'a> {
                message: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                hint: Option<&'a str>,
                exit_code: i32,
            }
            let text = other.to_string();
            let (message, hint) = match text.split_once("\nhint: ") {
                Some((message, hint)) => (message, Some(hint)),
                None => (text.as_str(), None),
            };
            let doc = Doc { error: Body { message, hint, exit_code: other.exit_code() } };
            printer.data(&format!("{}\n", serde_json::to_string_pretty(&doc).expect("serialises")));
            printer.text(&format!(
                "{}: {}\n",
                printer.text_look().paint(Role::Bad, "error"),
                crate::text::for_terminal(&text)
            ));
        }
        (other, OutputFormat::Table) => {
            // Messages quote helm, registries and the ledger: shown, never obeyed. Not
            // wrapped: a policy error's caret must stay under the column it points at.
            let error = printer.text_look().paint(Role::Bad, "error");
            printer.text(&format!("{error}: {}\n", crate::text::for_terminal(&other.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_from_references() {
        assert_eq!(chart_name("bufbuild/bsr").as_deref(), Some("bsr"));
        assert_eq!(chart_name("oci://us-docker.pkg.dev/buf-images-1/bsr/charts/bsr").as_deref(), Some("bsr"));
        assert_eq!(chart_name("./charts/coder/").as_deref(), Some("coder"));
        assert_eq!(chart_name("bsr").as_deref(), Some("bsr"));
        assert_eq!(chart_name("oci://").as_deref(), None);
    }

    #[test]
    fn mode_follows_the_plugin_name_then_the_binary_name() {
        let up = OsString::from("/x/helm-safe-upgrade");
        let down = OsString::from("/x/helm-safe-rollback");
        assert_eq!(mode(Some(&up), Some("safe-rollback")), Mode::Rollback);
        assert_eq!(mode(Some(&down), Some("safe-upgrade")), Mode::Upgrade);
        assert_eq!(mode(Some(&down), None), Mode::Rollback);
        assert_eq!(mode(Some(&up), None), Mode::Upgrade);
        assert_eq!(mode(None, None), Mode::Upgrade);
    }
}
