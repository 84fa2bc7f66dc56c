//! One live run, start to finish: read the release, refuse what must be refused, plan,
//! lock, ask, back up, walk, record, report.
//!
//! Everything that can refuse does so before the first change: an unknown release, one
//! that is not `deployed`, a chart of another name, an unavailable target, a policy
//! refusal, an unattended run that would need a person, a lock held by a live run. A
//! refusal changes nothing; a declined start leaves no backup behind.

use std::path::PathBuf;

use serde::Serialize;

use super::backup;
use super::holder::Me;
use super::interact;
use super::journal::{Journal, JournalError};
use super::ledger::{self, Held, HopOutcome, Ledger, PolicyRecord, RunRecord, ValuesRecord, lock::Claim};
use super::options::{RollbackOptions, RunOptions, UpgradeOptions};
use super::values::RunValues;
use super::walk::{ChartArg, Outcome, Setup, StepReport, Walk};
use crate::catalog::{self, ChartSource};
use crate::helm::{Helm, Kubectl, Runner, Signals};
use crate::plan::{
    self, Available, Context, Direction, HopKind, Plan, PlanError, RollbackRequest, SnapshotKnowledge, Sources, Step,
    UpgradeRequest,
};
use crate::policy::{self, Origin, Policy, presets};
use crate::release::{Release, ReleaseStatus};
use crate::text::{count, one_line};
use crate::version::ChartVersion;

/// Why a live run did not start, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{message}\nhint: {hint}")]
    BadInput { message: String, hint: String },
    #[error("refused: {message}\n  rule:      {rule}\n  supported: {supported}")]
    Refused { rule: String, message: String, supported: String },
    #[error("{0}")]
    Other(String),
}

impl SessionError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SessionError::BadInput { .. } => crate::exit::BAD_INPUT,
            SessionError::Refused { .. } => crate::exit::REFUSED,
            SessionError::Other(_) => crate::exit::FAILURE,
        }
    }
}

fn bad(message: impl Into<String>, hint: impl Into<String>) -> SessionError {
    SessionError::BadInput { message: message.into(), hint: hint.into() }
}

fn plan_error(e: PlanError) -> SessionError {
    match e {
        PlanError::Refused(r) => SessionError::Refused { rule: r.rule, message: r.message, supported: r.supported },
        PlanError::BadRequest { message, hint } => bad(message, hint),
    }
}

/// The `-o json` document of a live run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub release: String,
    pub namespace: String,
    pub backup: Option<PathBuf>,
    pub plan: Plan,
    pub steps: Vec<StepReport>,
    pub warnings: Vec<String>,
}

impl RunReport {
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Completed { .. } => crate::exit::SUCCESS,
            Outcome::Stopped { .. } => crate::exit::STOPPED_BY_OPERATOR,
            Outcome::Recovered { .. } => crate::exit::HOP_FAILED_RECOVERED,
            Outcome::Failed { .. } => crate::exit::FAILURE,
        }
    }
}

/// What the live release, its policy and its chart source say, before any plan.
pub struct Situation {
    pub helm: Helm,
    pub kubectl: Kubectl,
    pub release: Release,
    pub policy: Policy,
    pub chart: ChartArg,
    pub chart_reference: String,
    pub available: Vec<Available>,
    pub context: Context,
    pub warnings: Vec<String>,
    pub store_note: Option<String>,
    pub store: std::sync::Arc<dyn ledger::LedgerStore>,
    pub ledger_view: Option<Ledger>,
    /// The policy differs from the one the ledger recorded: said at the confirmation.
    pub policy_change: Option<String>,
}

/// Progress lines on stderr, timestamped when not on a terminal (logs of CI jobs).
pub fn progress_line(line: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        crate::term::err_line(line);
    } else {
        crate::term::err_line(&format!("[{}] {line}", humantime::format_rfc3339_seconds(std::time::SystemTime::now())));
    }
}

/// Read everything and refuse what cannot go on. Changes nothing. A rollback may start
/// from a `failed` or `pending-*` release (it is the way out of one); an upgrade may not.
pub fn survey(opts: &RunOptions, direction: Direction) -> Result<Situation, SessionError> {
    let signals =
        Signals::install().map_err(|e| SessionError::Other(format!("cannot install signal handlers: {e}")))?;
    let runner = Runner::new(signals, opts.debug);
    let namespace = opts.namespace.clone();
    let helm_bin = std::env::var_os("HELM_BIN").filter(|v| !v.is_empty()).map(PathBuf::from);
    let helm = Helm::detect(runner.clone(), helm_bin, namespace.clone(), opts.kube_context.clone())
        .map_err(|e| bad(e.to_string(), "set HELM_BIN or put helm on PATH"))?;
    let kubectl_bin = std::env::var_os("KUBECTL").filter(|v| !v.is_empty()).map(PathBuf::from);
    let kubectl = Kubectl::new(runner, kubectl_bin, namespace.clone(), opts.kube_context.clone());
    let release_name = &opts.release;

    let release = Release::read(&helm, release_name).map_err(|e| match e {
        crate::release::ReadError::NotFound { .. } => bad(
            e.to_string().lines().next().unwrap_or_default().to_string(),
            format!("check the name and namespace with `helm list --namespace {namespace}`"),
        ),
        other => SessionError::Other(other.to_string()),
    })?;
    let release = if opts.resume && release.status.is_pending() {
        wait_while_pending(&helm, release, &opts.timeout)?
    } else {
        release
    };
    let rollback_from_trouble =
        direction == Direction::Rollback && (release.status == ReleaseStatus::Failed || release.status.is_pending());
    if !rollback_from_trouble {
        refuse_unless_deployed(&release)?;
    }

    let opened =
        ledger::open_store(&kubectl, release_name, &namespace, helm.kube_context.as_deref(), opts.local_ledger)
            .map_err(|e| SessionError::Other(e.to_string()))?;
    let ledger_view = opened.loaded.map(|s| s.ledger);

    let mut warnings = Vec::new();
    let chosen = choose_policy(opts, ledger_view.as_ref(), &release.chart_name)?;
    warnings.extend(chosen.notes);
    let policy = chosen.policy;
    let (chart_reference, chart_origin) = match (&opts.chart, ledger_view.as_ref().and_then(|l| l.chart.clone())) {
        (Some(c), _) => (c.clone(), "--chart"),
        (None, Some(recorded)) => (recorded, "from the ledger"),
        (None, None) => match &policy.chart {
            Some(c) => (c.clone(), "the policy's chart"),
            None => {
                return Err(bad(
                    format!("no chart source is known for {release_name} (chart {})", release.chart_name),
                    format!(
                        "pass --chart repo/{} (a helm repository), --chart oci://HOST/PATH/{} or --chart DIR (packaged charts)",
                        release.chart_name, release.chart_name
                    ),
                ));
            }
        },
    };
    let source = ChartSource::parse(&chart_reference).map_err(|e| bad(e.to_string(), "see --help for --chart"))?;
    if let Some(name) = source.chart_name()
        && name != release.chart_name
    {
        return Err(bad(
            format!(
                "--chart {} is chart {name:?}, but release {release_name} runs chart {:?}",
                one_line(&chart_reference),
                release.chart_name
            ),
            format!("pass the reference of the {} chart; switching charts is not an upgrade", release.chart_name),
        ));
    }
    let (available, chart) =
        list_versions(&helm, &source, &chart_reference, &release.chart_name, opts.plain_http, &mut warnings)?;
    let available = with_catalog(available, &policy);
    if let Some(pin) = pinned_image_tag(&release) {
        warnings.push(pin);
    }
    let context = Context {
        release: Some(release_name.clone()),
        namespace: Some(namespace),
        chart_name: Some(release.chart_name.clone()),
        sources: Some(Sources {
            policy: one_line(&policy.origin.to_string()),
            policy_digest: policy.digest.clone(),
            chart: Some(format!("{} ({chart_origin})", one_line(&chart_reference))),
        }),
    };
    Ok(Situation {
        helm,
        kubectl,
        release,
        policy,
        chart,
        chart_reference,
        available,
        context,
        warnings,
        store_note: opened.warning,
        store: opened.store,
        ledger_view,
        policy_change: chosen.change,
    })
}

/// The policy a run uses, what to say about it, and a change the operator must confirm.
struct ChosenPolicy {
    policy: Policy,
    notes: Vec<String>,
    change: Option<String>,
}

/// Which policy decides, in this order:
/// - `--resume`: always the one the interrupted run recorded (its text, from the ledger);
///   a `--policy` that differs is refused.
/// - `--policy`: that one; if it differs from the recorded one, the change is shown and
///   confirmed before anything happens.
/// - a file the last run used: the ledger's copy of it (the file may have changed or gone).
/// - a preset the last run used: today's version of that preset (newest knowledge), saying
///   when it differs from the recorded one.
/// - otherwise, the preset for the release's chart name.
fn choose_policy(opts: &RunOptions, ledger: Option<&Ledger>, chart_name: &str) -> Result<ChosenPolicy, SessionError> {
    let record = ledger.and_then(|l| l.policy_record.as_ref());
    let invalid = |e: policy::PolicyError| bad(e.to_string(), "fix the policy or pass another with --policy");
    let explicit = opts.policy.as_deref().map(policy::load_named_or_path).transpose().map_err(invalid)?;
    let mut notes = Vec::new();
    if opts.resume {
        let Some(record) = record else {
            // A record of an older version: the policy's name only.
            return match (explicit, ledger.and_then(|l| l.policy.clone())) {
                (Some(p), _) => Ok(ChosenPolicy { policy: p, notes, change: None }),
                (None, Some(name)) if presets::text(&name).is_some() => Ok(ChosenPolicy {
                    policy: policy::load_named_or_path(&name).map_err(invalid)?,
                    notes,
                    change: None,
                }),
                _ => Err(bad(
                    "--resume: the ledger does not record which policy the interrupted run used",
                    "pass the same --policy as that run",
                )),
            };
        };
        let policy = match explicit {
            Some(p) if p.digest == record.digest => p,
            Some(p) => {
                return Err(bad(
                    format!(
                        "--resume continues with the policy the interrupted run used ({}, {}), and --policy {} is another ({})",
                        one_line(&record.origin.to_string()),
                        crate::digest::short(&record.digest),
                        one_line(&p.origin.to_string()),
                        crate::digest::short(&p.digest)
                    ),
                    "drop --policy to resume with the recorded one, or finish the interrupted run first",
                ));
            }
            None => recorded_policy(record)?,
        };
        return Ok(ChosenPolicy { policy, notes, change: None });
    }
    if let Some(policy) = explicit {
        let change = record.filter(|r| r.digest != policy.digest).map(|r| {
            format!(
                "the policy changes: the last run used {} ({}), this one uses {} ({})",
                one_line(&r.origin.to_string()),
                crate::digest::short(&r.digest),
                one_line(&policy.origin.to_string()),
                crate::digest::short(&policy.digest)
            )
        });
        if let Some(c) = &change {
            notes.push(c.clone());
        }
        return Ok(ChosenPolicy { policy, notes, change });
    }
    match record {
        Some(r @ PolicyRecord { origin: Origin::File { path } | Origin::Recorded { path }, .. }) => {
            let policy = recorded_policy(r)?;
            if let Ok(current) = policy::load_named_or_path(path)
                && current.digest != r.digest
            {
                notes.push(format!(
                    "{} has changed since the last run: using the copy the ledger kept ({}); pass --policy {} to use the file as it is now",
                    one_line(path),
                    crate::digest::short(&r.digest),
                    one_line(path)
                ));
            }
            Ok(ChosenPolicy { policy, notes, change: None })
        }
        Some(PolicyRecord { origin: Origin::Preset { name }, digest, .. }) if presets::text(name).is_some() => {
            let policy = policy::load_named_or_path(name).map_err(invalid)?;
            if policy.digest != *digest {
                notes.push(format!(
                    "preset {name} has changed since the last run ({} → {}): this version of helm-safe-upgrade knows more; using the current one",
                    crate::digest::short(digest),
                    crate::digest::short(&policy.digest)
                ));
            }
            Ok(ChosenPolicy { policy, notes, change: None })
        }
        _ => match ledger.and_then(|l| l.policy.clone()) {
            Some(name) if record.is_none() && presets::text(&name).is_some() => {
                Ok(ChosenPolicy { policy: policy::load_named_or_path(&name).map_err(invalid)?, notes, change: None })
            }
            _ => Ok(ChosenPolicy { policy: presets::for_chart(chart_name), notes, change: None }),
        },
    }
}

/// The policy the ledger recorded: its text when kept, else the file if it still has the
/// recorded digest.
fn recorded_policy(record: &PolicyRecord) -> Result<Policy, SessionError> {
    let origin = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => Origin::Recorded { path: path.clone() },
        other => other.clone(),
    };
    if let Some(text) = &record.text {
        let policy = policy::parse_from(text, origin)
            .map_err(|e| SessionError::Other(format!("the policy the ledger recorded no longer reads: {e}")))?;
        if policy.digest != record.digest {
            return Err(SessionError::Other(format!(
                "the policy text in the ledger does not match its recorded digest ({}): the record was edited\nhint: pass --policy with the policy file to use",
                crate::digest::short(&record.digest)
            )));
        }
        return Ok(policy);
    }
    if let Origin::File { path } | Origin::Recorded { path } = &record.origin
        && let Ok(policy) = policy::load_named_or_path(path)
        && policy.digest == record.digest
    {
        return Ok(policy);
    }
    Err(bad(
        format!(
            "the ledger recorded policy {} by digest only ({}; too large to keep), and no file with that digest is at hand",
            one_line(&record.origin.to_string()),
            crate::digest::short(&record.digest)
        ),
        "pass --policy with that file",
    ))
}

/// After a run was killed, the helm it started goes on alone (it has its own process
/// group); give it the time a rollout may take before judging the release.
fn wait_while_pending(helm: &Helm, mut release: Release, timeout: &str) -> Result<Release, SessionError> {
    let limit = crate::duration::parse(timeout).unwrap_or(std::time::Duration::from_secs(300));
    let deadline = std::time::Instant::now() + limit;
    while release.status.is_pending() && std::time::Instant::now() < deadline {
        progress_line(&format!(
            "{} is {}: waiting for the helm operation under way to finish",
            release.name,
            release.status.as_str()
        ));
        std::thread::sleep(std::time::Duration::from_secs(2));
        release = Release::read(helm, &release.name).map_err(|e| SessionError::Other(e.to_string()))?;
    }
    Ok(release)
}

fn refuse_unless_deployed(release: &Release) -> Result<(), SessionError> {
    let name = &release.name;
    let ns = &release.namespace;
    match release.status {
        ReleaseStatus::Deployed => Ok(()),
        s if s.is_pending() => Err(bad(
            format!(
                "release {name} is {} at {} (revision {}): a helm operation did not finish (interrupted, or the cluster stopped answering)",
                s.as_str(),
                release.version,
                release.revision
            ),
            match release.last_good_revision() {
                Some(r) => format!(
                    "when no helm process works on it any more, `helm safe-rollback {name} --namespace {ns}` brings it back to {} the policy's way (it starts with `helm rollback {name} {}`, which clears the pending state; {} may have run its migrations); then run this command again",
                    r.version.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    r.revision,
                    release.version
                ),
                None => format!(
                    "no earlier good revision exists; `helm uninstall {name} --namespace {ns}` and install again"
                ),
            },
        )),
        ReleaseStatus::Failed => Err(bad(
            format!(
                "release {name} is failed at {} (revision {}): {}",
                release.version,
                release.revision,
                one_line(&release.description)
            ),
            match release.last_good_revision() {
                Some(_) => format!(
                    "bring it back to a deployed state first: `helm safe-rollback {name} --namespace {ns}` goes back the policy's way (a bare `helm rollback` would skip the down-migration if {} ran its migrations)",
                    release.version
                ),
                None => {
                    "fix the failure and upgrade the release to the same version with helm, then run this again".into()
                }
            },
        )),
        s => Err(bad(format!("release {name} is {}", s.as_str()), "only a deployed release can be upgraded")),
    }
}

/// The versions the chart source offers, and how helm is to be told the chart.
fn list_versions(
    helm: &Helm,
    source: &ChartSource,
    reference: &str,
    chart_name: &str,
    plain_http: bool,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Available>, ChartArg), SessionError> {
    match source {
        ChartSource::Repo { repo, name } => {
            // helm searches its cached index; refresh that one repository first, as the
            // vendors' pages say (`helm repo update`). A failed refresh is not fatal.
            if let Err(e) = helm.repo_update(repo) {
                warnings.push(format!(
                    "could not refresh repository {repo}; using the cached index ({})",
                    e.to_string().lines().next().unwrap_or_default()
                ));
            }
            let available = helm.search_repo(repo, name).map_err(|e| SessionError::Other(e.to_string()))?;
            if available.is_empty() {
                return Err(bad(
                    format!("helm finds no chart {reference}"),
                    format!("check `helm repo list` and `helm search repo {name} --versions`"),
                ));
            }
            Ok((available, ChartArg::Reference { reference: reference.to_string(), plain_http: false }))
        }
        ChartSource::Oci { .. } => {
            let helper = |helper: &str, server: &str| helm.credential_helper(helper, server);
            let ctx = catalog::OciContext {
                options: catalog::oci::OciOptions { plain_http, ..Default::default() },
                files: catalog::credentials::CredentialFiles::from_process_env(),
                helper: &helper,
            };
            let listing = catalog::list(source, chart_name, &ctx).map_err(catalog_error)?;
            warnings.extend(listing.warnings);
            Ok((listing.available, ChartArg::Reference { reference: reference.to_string(), plain_http }))
        }
        ChartSource::Dir { path } => {
            // The listing errors (missing chart, empty directory) are the catalog's.
            let listing = catalog::dir::versions_for(path, chart_name).map_err(catalog_error)?;
            warnings.extend(listing.warnings);
            let scanned = catalog::dir::scan(path).map_err(catalog_error)?;
            let files = listing
                .available
                .iter()
                .filter_map(|a| scanned.path_of(chart_name, &a.version).map(|p| (a.version.clone(), p.to_path_buf())))
                .collect();
            Ok((listing.available, ChartArg::Files(files)))
        }
    }
}

fn catalog_error(e: catalog::CatalogError) -> SessionError {
    // A registry's or repository's error body is text from outside: shown, not obeyed.
    let text = crate::text::for_terminal(&e.to_string()).into_owned();
    if e.exit_code() == crate::exit::BAD_INPUT {
        let (message, hint) = text.split_once("\nhint: ").unwrap_or((&text, "check --chart"));
        bad(message, hint)
    } else {
        SessionError::Other(text)
    }
}

/// Versions from the source, with what the policy's catalog knows about them (schema,
/// app version). The catalog adds no versions: only what the source offers can be deployed.
fn with_catalog(mut available: Vec<Available>, policy: &Policy) -> Vec<Available> {
    for a in &mut available {
        if a.app_version.is_none() {
            a.app_version = policy.catalog_entry(&a.version).and_then(|e| e.app_version.clone());
        }
    }
    available
}

/// A user value `image.tag` (at any depth) equal to the running app or chart version keeps
/// every hop on the old image.
fn pinned_image_tag(release: &Release) -> Option<String> {
    fn walk(v: &serde_json::Value, path: &str, hits: &mut Vec<(String, String)>) {
        if let serde_json::Value::Object(map) = v {
            for (k, child) in map {
                let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if k == "tag"
                    && path.rsplit('.').next().is_some_and(|p| p.to_lowercase().contains("image"))
                    && let Some(s) = child.as_str()
                {
                    hits.push((here.clone(), s.to_string()));
                }
                walk(child, &here, hits);
            }
        }
    }
    let mut hits = Vec::new();
    walk(&release.user_values, "", &mut hits);
    let current: Vec<String> =
        [release.app_version.clone(), Some(release.version.to_string())].into_iter().flatten().collect();
    hits.into_iter()
        .find(|(_, tag)| current.iter().any(|c| tag.trim_start_matches('v') == c.trim_start_matches('v')))
        .map(|(path, tag)| {
            format!(
                "the user values pin {}={}, the version running now: every hop would keep that image. Remove the pin or override it with --set {}=...",
                one_line(&path),
                one_line(&tag),
                one_line(&path)
            )
        })
}

/// What the ledger says about a run that did not finish.
struct Resumable {
    target: ChartVersion,
    fast_path: bool,
    values: RunValues,
}

fn resumable(ledger: Option<&Ledger>, opts: &RunOptions) -> Result<Resumable, SessionError> {
    let in_progress = ledger
        .and_then(|l| l.in_progress.as_ref())
        .ok_or_else(|| bad("--resume: the ledger holds no plan in progress", "start a new run with --to VERSION"))?;
    if !opts.overrides.is_empty() {
        return Err(bad(
            "--resume deploys exactly the values the interrupted run started with, its own -f/--set included; -f/--set cannot be given again",
            "drop -f and --set*; to change values, let the resumed run finish (or stop it) and run a new upgrade",
        ));
    }
    let record = in_progress.values.as_ref().ok_or_else(|| {
        bad(
            "--resume: the ledger does not say where the interrupted run kept its values (it was started by an older helm-safe-upgrade)",
            "release the lock with --force-unlock and start a new run, passing the values the release should have with -f/--set",
        )
    })?;
    let values = RunValues::open(record, &Me::current().process.host).map_err(|e| {
        let text = e.to_string();
        let (message, hint) = text.split_once("\nhint: ").unwrap_or((&text, ""));
        bad(message, hint)
    })?;
    Ok(Resumable {
        target: in_progress.plan.to.clone(),
        fast_path: in_progress.plan.strategy == plan::Strategy::FastPath,
        values,
    })
}

/// Values a procedure step set for one deploy of an interrupted run (maintenance mode)
/// that the release still holds: carrying them as the user's values would leave them on
/// for good. A new run on such a release is refused; `--resume` carries the values the
/// interrupted run started with instead.
fn procedure_values_left(release: &Release, ledger: Option<&Ledger>) -> Option<String> {
    let plan = &ledger?.in_progress.as_ref()?.plan;
    let values = release.user_values.as_object()?;
    plan.hops.iter().flat_map(|h| &h.steps).find_map(|step| match step {
        Step::Deploy { set, version, .. } if !set.is_empty() && set.iter().all(|(k, v)| values.get(k) == Some(v)) => {
            let keys: Vec<String> = set.keys().map(|k| one_line(k)).collect();
            Some(format!(
                "the release's values hold {} set by the interrupted run's deploy of {version} for that step only",
                keys.join(", ")
            ))
        }
        _ => None,
    })
}

/// The live upgrade.
pub fn upgrade(opts: &RunOptions, up: &UpgradeOptions) -> Result<Either, SessionError> {
    let mut situation = survey(opts, Direction::Upgrade)?;
    let resumed = if opts.resume { Some(resumable(situation.ledger_view.as_ref(), opts)?) } else { None };
    if resumed.is_none()
        && let Some(left) = procedure_values_left(&situation.release, situation.ledger_view.as_ref())
    {
        return Err(bad(
            format!("{left}; a new run would carry them to every hop"),
            format!(
                "continue the interrupted run with `helm safe-upgrade {} --resume` (it deploys the values it started with), or set those values back with helm first",
                opts.release
            ),
        ));
    }
    let target = match (&up.target, &resumed) {
        (Some(t), _) => t.clone(),
        (None, Some(r)) => r.target.clone(),
        (None, None) => return Err(bad("--to is required", "name the version to upgrade to with --to VERSION")),
    };
    let fast_path = up.fast_path || resumed.as_ref().is_some_and(|r| r.fast_path);
    if resumed.is_some() {
        progress_line(&format!(
            "resuming the upgrade to {target} recorded in the ledger; {} runs {} now",
            situation.release.name, situation.release.version
        ));
    }
    let request = UpgradeRequest { current: situation.release.version.clone(), target, fast_path, devel: up.devel };
    let mut plan = plan::plan_upgrade(&situation.policy, &situation.available, &request, &situation.context)
        .map_err(plan_error)?;
    plan.warnings.append(&mut situation.warnings);
    if opts.plan_only {
        return Ok(Either::Plan(Box::new(plan)));
    }
    let values = resumed.map(|r| r.values);
    execute(opts, situation, plan, Consent::StartConfirmation, values).map(Either::Report)
}

/// The live rollback: the newest earlier safe version (or `--to`), within the policy's
/// window from the newest version ever deployed, by the policy's procedure.
pub fn rollback(opts: &RunOptions, down: &RollbackOptions) -> Result<Either, SessionError> {
    let mut situation = survey(opts, Direction::Rollback)?;
    let pending = situation.release.status.is_pending();
    if situation.release.status == ReleaseStatus::Failed || pending {
        carry_last_good_values(&mut situation)?;
    }
    let release = &situation.release;
    let ledger = situation.ledger_view.as_ref();
    // The newest version the database has seen: the ledger's record, and every revision
    // helm still keeps, failed and pending ones included (their hooks may have migrated).
    let newest_ever = release
        .history
        .iter()
        .filter_map(|r| r.version.clone())
        .chain(ledger.and_then(|l| l.newest_ever().cloned()))
        .chain(std::iter::once(release.version.clone()))
        .max()
        .expect("at least the current version");
    // A failed release is left from the newest version tried since its last good revision:
    // after a failed upgrade (1.1.9 → 1.2.6) going back means leaving 1.2.6; after a failed
    // rollback (1.2.6 → 1.1.9) running it again means leaving 1.2.6 again.
    let mut request = RollbackRequest {
        current: release.leaving_version(),
        target: down.target.clone(),
        newest_ever,
        deployed_before: release.deployed_versions(),
        snapshot: SnapshotKnowledge::Unknown,
        by_revision: None,
    };
    let target = plan::rollback_target(&situation.available, &request).map_err(plan_error)?;
    request.snapshot = match ledger {
        None => SnapshotKnowledge::Unknown,
        Some(l) if l.snapshots.iter().any(|s| s.version == target) => SnapshotKnowledge::TakenAt(target.clone()),
        Some(_) => SnapshotKnowledge::None,
    };
    let mut notes = Vec::new();
    if pending {
        // helm upgrade refuses a pending release; helm rollback clears it.
        let good = release.last_good_revision().filter(|r| r.version.as_ref() == Some(&target)).ok_or_else(|| {
            bad(
                format!(
                    "release {} is {} at {}: only the last good version ({}) can be returned to from here",
                    release.name,
                    release.status.as_str(),
                    release.version,
                    release
                        .last_good_revision()
                        .and_then(|r| r.version.as_ref().map(|v| v.to_string()))
                        .unwrap_or_else(|| "none".into())
                ),
                "run without --to, or with --to that version",
            )
        })?;
        request.by_revision = Some(good.revision);
        notes.push(format!(
            "{} is {} at {} (revision {}): helm did not finish it. Going back starts with `helm rollback {} {}`, which clears it; make sure no helm process still works on this release (another terminal, a CI job) before you confirm. {} may have run its migrations.",
            release.name,
            release.status.as_str(),
            release.version,
            release.revision,
            release.name,
            good.revision,
            release.version
        ));
    } else if target.minor() == request.current.minor() {
        request.by_revision =
            patch_by_revision(&situation.helm, release, &target, !opts.overrides.is_empty(), &mut notes);
    }
    let mut plan = plan::plan_rollback(&situation.policy, &situation.available, &request, &situation.context)
        .map_err(plan_error)?;
    if plan.hops.first().is_some_and(|h| h.kind != HopKind::PatchDowngrade) && !pending {
        // The revision method was meant for a patch rollback only.
        notes.retain(|n| !n.contains("helm rollback"));
    }
    plan.warnings.append(&mut notes);
    plan.warnings.append(&mut situation.warnings);
    if opts.plan_only {
        return Ok(Either::Plan(Box::new(plan)));
    }
    let loses_data = plan.hops.iter().any(|h| matches!(h.kind, HopKind::MinorDowngrade | HopKind::Restore));
    if loses_data && opts.yes && !down.accept_data_loss {
        return Err(bad(
            format!(
                "rolling {} back from {} to {} may lose data: {}",
                opts.release,
                plan.from,
                plan.to,
                plan.warnings.first().cloned().unwrap_or_default()
            ),
            "run it on a terminal to confirm by typing the release name, or pass --accept-data-loss with --yes",
        ));
    }
    // A restore whose procedure asks the operator to restore by hand cannot be answered
    // by --yes: nobody would have restored anything.
    if opts.yes
        && plan.strategy == plan::Strategy::Restore
        && plan.hops.iter().flat_map(|h| &h.steps).any(|s| matches!(s, Step::Confirm { .. }))
    {
        return Err(SessionError::Refused {
            rule: "restore-needs-a-person".into(),
            message: format!(
                "policy {} goes back to {} by restoring a snapshot by hand, which --yes cannot do",
                situation.policy.name, plan.to
            ),
            supported:
                "run it on a terminal and restore when asked, or give the policy a `run` step with your restore command"
                    .into(),
        });
    }
    let consent = if loses_data { Consent::TypeReleaseName } else { Consent::StartConfirmation };
    execute(opts, situation, plan, consent, None).map(Either::Report)
}

/// A failed (or pending) revision's values are the ones that failed (often an operator's
/// `--set` that broke the rollout): going back carries the values of the last good
/// revision instead.
fn carry_last_good_values(situation: &mut Situation) -> Result<(), SessionError> {
    let release = &situation.release;
    let Some(good) = release.last_good_revision() else { return Ok(()) };
    let values =
        situation.helm.values_at(&release.name, good.revision).map_err(|e| SessionError::Other(e.to_string()))?;
    situation.warnings.push(format!(
        "{} is {} at revision {}: carrying the values of revision {}, the last good one",
        release.name,
        release.status.as_str(),
        release.revision,
        good.revision
    ));
    situation.release.user_values = values;
    Ok(())
}

/// A patch rollback can be helm's own rollback to a revision that ran the target, or a
/// redeploy of the target with the current values. Decided here (it reads that
/// revision's values); the planner is told, and the plan says which and why.
fn patch_by_revision(
    helm: &Helm,
    release: &Release,
    target: &ChartVersion,
    operator_values: bool,
    notes: &mut Vec<String>,
) -> Option<u64> {
    if operator_values {
        notes.push(format!(
            "redeploying {target} with the current values and the -f/--set given (`helm rollback` would ignore them)"
        ));
        return None;
    }
    let revision = release.history.iter().rev().filter(|r| r.revision < release.revision).find(|r| {
        r.version.as_ref() == Some(target) && matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded)
    });
    let Some(revision) = revision else {
        notes.push(format!(
            "no revision of {target} is left in helm's history: redeploying {target} from the chart source with the current values"
        ));
        return None;
    };
    if helm.values_at(&release.name, revision.revision).ok().as_ref() == Some(&release.user_values) {
        notes.push(format!(
            "revision {} ran {target} with the same values: `helm rollback` to it restores exactly what ran, without fetching the chart",
            revision.revision
        ));
        Some(revision.revision)
    } else {
        notes.push(format!(
            "revision {} ran {target} with other values: redeploying {target} with the current values keeps the changes made since (`helm rollback {} {}` would restore that revision's values instead)",
            revision.revision, release.name, revision.revision
        ));
        None
    }
}

/// What the operator must do before the first change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Consent {
    /// `Start the N hops? [y/N]`.
    StartConfirmation,
    /// The policy warns of data loss: type the release name (or --accept-data-loss).
    TypeReleaseName,
}

/// Either a plan to print (`--plan`) or the report of a run.
pub enum Either {
    Plan(Box<Plan>),
    Report(Box<RunReport>),
}

/// Steps that need a person and have no command: refused up front when nobody is there.
fn needs_a_person(plan: &Plan, snapshot_taken: bool) -> Option<String> {
    let all = plan.preflight.iter().chain(plan.hops.iter().flat_map(|h| h.steps.iter()));
    for step in all {
        if let Step::Snapshot { message, argv: None } = step
            && !snapshot_taken
        {
            return Some(format!(
                "policy {} requires a snapshot (\"{message}\") and has no command to take one",
                plan.policy
            ));
        }
    }
    None
}

/// "upgrade 1.0.4 → 1.3.0 (3 hops)", for the lock.
fn plan_summary(plan: &Plan) -> String {
    let direction = match plan.direction {
        Direction::Upgrade => "upgrade",
        Direction::Rollback => "rollback",
    };
    format!("{direction} {} → {} ({})", plan.from, plan.to, count(plan.hops.len(), "hop", "hops"))
}

fn execute(
    opts: &RunOptions,
    situation: Situation,
    plan: Plan,
    consent: Consent,
    resumed_values: Option<RunValues>,
) -> Result<Box<RunReport>, SessionError> {
    let Situation {
        helm,
        kubectl,
        release,
        policy,
        chart,
        chart_reference,
        available,
        context,
        store_note,
        store,
        policy_change,
        ..
    } = situation;
    let interaction = interact::for_this_process(opts.yes, &helm.runner.signals).map_err(|m| {
        let (message, hint) =
            m.split_once("\nhint: ").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((m.clone(), String::new()));
        bad(message, hint)
    })?;
    if !interaction.attended()
        && let Some(why) = needs_a_person(&plan, opts.snapshot_taken)
    {
        return Err(SessionError::Refused {
            rule: "snapshot".into(),
            message: format!("{why}; an unattended run cannot confirm one"),
            supported:
                "take the snapshot, then run again with --snapshot-taken; or set `snapshot.command` in the policy"
                    .into(),
        });
    }
    if let Some(note) = &store_note {
        progress_line(note);
    }
    let me = Me::current();
    // --resume takes over the lock of a run of this machine that is gone.
    let takeover = match (&opts.takeover, opts.resume) {
        (ledger::Takeover::No, true) => ledger::Takeover::IfGone,
        (t, _) => t.clone(),
    };
    let claim = Claim { me: me.clone(), command: opts.command_shape.clone(), plan: plan_summary(&plan) };
    let mut held = Held::acquire(store, &claim, &takeover).map_err(|e| SessionError::Other(e.to_string()))?;
    let direction = match plan.direction {
        Direction::Upgrade => "upgrade",
        Direction::Rollback => "rollback",
    };
    {
        let l = held.ledger_mut();
        l.chart = Some(chart_reference.clone());
        l.policy = Some(policy.name.clone());
        l.policy_record = Some(PolicyRecord {
            name: policy.name.clone(),
            origin: match &policy.origin {
                Origin::Recorded { path } => Origin::File { path: path.clone() },
                other => other.clone(),
            },
            digest: policy.digest.clone(),
            text: (policy.text.len() <= ledger::MAX_POLICY_TEXT_BYTES).then(|| policy.text.clone()),
        });
        // Versions helm ran for this release: deployed, superseded, and failed (a failed
        // upgrade's hooks may have migrated).
        l.note_deployed(&release.version);
        for r in &release.history {
            if matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded | ReleaseStatus::Failed)
                && let Some(v) = &r.version
            {
                l.note_deployed(v);
            }
        }
        l.record_run_start(RunRecord {
            started_at: ledger::now(),
            ended_at: None,
            holder: me.holder(),
            command: opts.command_shape.clone(),
            direction: direction.into(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            outcome: None,
            at: None,
            message: None,
        });
    }
    if let Err(e) = held.save() {
        return Err(SessionError::Other(format!("could not record the start of the run: {e}")));
    }
    crate::term::err(&crate::ui::render::plan_table(&plan));
    let agreed = match consent {
        _ if !interaction.attended() || plan.hops.is_empty() => true,
        Consent::StartConfirmation => {
            let change = policy_change.as_deref().map(|c| format!("{c}.\n")).unwrap_or_default();
            interaction.confirm(&format!("{change}Start the {}?", count(plan.hops.len(), "hop", "hops")))
        }
        Consent::TypeReleaseName => interaction
            .confirm_typed(&format!("This rollback may lose data:\n  {}", plan.warnings.join("\n  ")), &release.name),
    };
    if !agreed {
        held.ledger_mut().record_run_end("declined", Some(release.version.clone()), None);
        if let Err(e) = held.release_lock() {
            progress_line(&format!("warning: could not release the lock: {e}"));
        }
        return Ok(Box::new(RunReport {
            outcome: Outcome::Stopped {
                at: release.version.clone(),
                reason: "not started: the operator declined".into(),
            },
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            backup: None,
            plan,
            steps: vec![],
            warnings: vec![],
        }));
    }
    // The backup is made once the operator has said yes: a declined run leaves nothing.
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "");
    let (carried, overrides) = match &resumed_values {
        Some(v) => (v.carried_json(), v.overrides()),
        None => (release.user_values.clone(), opts.overrides.clone()),
    };
    let backup = match backup::take(&helm, &release, &carried, &overrides, &me.process.host, &stamp) {
        Ok(b) => b,
        Err(e) => {
            held.ledger_mut().record_run_end("failed", Some(release.version.clone()), Some(e.to_string()));
            let _ = held.release_lock();
            return Err(SessionError::Other(e.to_string()));
        }
    };
    progress_line(&format!("backup of {} (values, manifest, metadata): {}", release.name, backup.dir.display()));
    if resumed_values.is_some() {
        progress_line("carrying the values the interrupted run started with, its -f/--set included");
    }
    let progress = crate::ui::progress::Progress::for_stderr();
    let (outcome, steps) = {
        let mut recorder = Recorder { held: &mut held, values: backup.values.record.clone() };
        let setup = Setup {
            helm: &helm,
            kubectl: &kubectl,
            policy: &policy,
            release: release.name.clone(),
            chart,
            values: backup.values.clone(),
            timeout: opts.timeout.clone(),
            snapshot_taken: opts.snapshot_taken,
            available,
            context,
            start: (release.revision, release.version.clone(), release.status),
            // The interrupted run deployed with its overrides already.
            overrides_in_effect: resumed_values.is_some(),
            bring_back_failed_hops: plan.direction == Direction::Upgrade,
        };
        let mut walk = Walk::new(setup, interaction.as_ref(), &mut recorder, &progress);
        let outcome = walk.run(&plan);
        (outcome, std::mem::take(&mut walk.reports))
    };
    let (result, at, message) = match &outcome {
        Outcome::Completed { at } => ("completed", Some(at.clone()), None),
        Outcome::Stopped { at, reason } => ("stopped", Some(at.clone()), Some(reason.clone())),
        Outcome::Recovered { at, error, .. } => ("recovered", Some(at.clone()), Some(error.clone())),
        Outcome::Failed { error, .. } => ("failed", None, Some(error.clone())),
    };
    {
        let l = held.ledger_mut();
        l.record_run_end(result, at, message);
        if !matches!(outcome, Outcome::Failed { .. }) {
            // Failed keeps the plan on record: a person, or --resume, picks it up from there.
            l.clear_in_progress();
        }
    }
    // release_lock writes the whole record: one write for both.
    if let Err(e) = held.release_lock() {
        progress_line(&format!("warning: could not release the lock: {e}"));
    }
    Ok(Box::new(RunReport {
        outcome,
        release: release.name.clone(),
        namespace: release.namespace.clone(),
        backup: Some(backup.dir),
        plan,
        steps,
        warnings: vec![],
    }))
}

/// The journal of a run: the ledger, plus where this run's values are kept.
struct Recorder<'a> {
    held: &'a mut Held,
    values: ValuesRecord,
}

impl Recorder<'_> {
    /// Store the record; the write proves the lock is still ours.
    fn save(&mut self) -> Result<(), JournalError> {
        self.held.save().map_err(|e| JournalError {
            lost_lock: matches!(e, ledger::LedgerError::LockLost { .. }),
            message: e.to_string(),
        })
    }
}

impl Journal for Recorder<'_> {
    fn hop_starting(&mut self, plan: &Plan, index: usize, first_change: Option<usize>) -> Result<(), JournalError> {
        let l = self.held.ledger_mut();
        l.set_in_progress(plan.clone(), index, first_change, Some(self.values.clone()));
        // The preflight's call (no step of a hop yet) records where the walk is, no hop.
        if let (Some(hop), Some(_)) = (plan.hops.get(index), first_change) {
            let kind = serde_json::to_value(hop.kind).ok().and_then(|k| k.as_str().map(String::from));
            l.record_hop_start(&hop.from, &hop.to, &kind.unwrap_or_default());
        }
        self.save()
    }

    fn change_starting(&mut self, hop: usize, step: Option<usize>) -> Result<(), JournalError> {
        if let (Some(step), Some(p)) = (step, self.held.ledger_mut().in_progress.as_mut()) {
            p.next_hop = hop;
            p.step = Some(step);
        }
        self.save()
    }

    fn hop_ended(&mut self, _index: usize, outcome: HopOutcome, message: Option<&str>) -> Result<(), JournalError> {
        let l = self.held.ledger_mut();
        if l.hops.last().is_some_and(|h| h.outcome == HopOutcome::Running) {
            let _ = l.record_hop_end(outcome, message.map(String::from));
        } else if let Some(last) = l.hops.last_mut().filter(|_| outcome == HopOutcome::RolledBack) {
            // "Roll this hop back" at a pause: the hop that had succeeded is undone.
            last.outcome = HopOutcome::RolledBack;
        }
        match self.save() {
            Err(e) if !e.lost_lock => {
                // Recorded with the next write; a hop already done is not undone by this.
                progress_line(&format!(
                    "warning: could not update the ledger at {}: {}",
                    self.held.location(),
                    e.message
                ));
                Ok(())
            }
            other => other,
        }
    }

    fn helm_ran(&mut self, version: &ChartVersion) {
        self.held.ledger_mut().note_deployed(version);
    }

    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str) {
        self.held.ledger_mut().record_snapshot(at, how);
    }

    fn newest_ever(&self) -> Option<ChartVersion> {
        self.held.ledger().newest_ever().cloned()
    }

    fn has_snapshot(&self) -> bool {
        !self.held.ledger().snapshots.is_empty()
    }
}
