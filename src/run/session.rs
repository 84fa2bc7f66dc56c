//! One live run, start to finish: read the release, refuse what must be refused, plan,
//! lock, back up, walk, record, report.
//!
//! Everything that can refuse does so before the first change: an unknown release, one
//! that is not `deployed`, a chart of another name, an unavailable target, a policy
//! refusal, an unattended run that would need a person. A refusal changes nothing.

use std::path::PathBuf;

use serde::Serialize;

use super::backup;
use super::interact;
use super::journal::Journal;
use super::ledger::{self, Held};
use super::walk::{ChartArg, Outcome, StepReport, Walk};
use crate::catalog::{self, ChartSource};
use crate::cli::Common;
use crate::helm::{Helm, Kubectl, Runner, Signals};
use crate::plan::{
    self, Available, Context, Direction, HopKind, Plan, PlanError, RollbackRequest, SnapshotKnowledge, Step,
    UpgradeRequest,
};
use crate::policy::{self, Policy, presets};
use crate::release::{Release, ReleaseStatus};
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
    pub ledger_view: Option<ledger::Ledger>,
    /// Values to carry instead of the release's current ones (a resumed run).
    pub values_backup: Option<PathBuf>,
}

/// Progress lines on stderr, timestamped when not on a terminal (logs of CI jobs).
pub fn progress_line(line: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("{line}");
    } else {
        eprintln!("[{}] {line}", humantime::format_rfc3339_seconds(std::time::SystemTime::now()));
    }
}

/// Read everything and refuse what cannot go on. Changes nothing. A rollback may start
/// from a `failed` release (it is the way out of one); an upgrade may not.
pub fn survey(common: &Common, release_name: &str, direction: Direction) -> Result<Situation, SessionError> {
    let signals =
        Signals::install().map_err(|e| SessionError::Other(format!("cannot install signal handlers: {e}")))?;
    let runner = Runner::new(signals, common.debug);
    let namespace = common.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    let kube_context = common.kube_context.clone().filter(|c| !c.is_empty());
    let helm_bin = std::env::var_os("HELM_BIN").filter(|v| !v.is_empty()).map(PathBuf::from);
    let helm = Helm::detect(runner.clone(), helm_bin, namespace.clone(), kube_context.clone())
        .map_err(|e| bad(e.to_string(), "set HELM_BIN or put helm on PATH"))?;
    let kubectl_bin = std::env::var_os("KUBECTL").filter(|v| !v.is_empty()).map(PathBuf::from);
    let kubectl = Kubectl::new(runner, kubectl_bin, namespace.clone(), kube_context);

    let release = Release::read(&helm, release_name).map_err(|e| match e {
        crate::release::ReadError::NotFound { .. } => bad(
            e.to_string().lines().next().unwrap_or_default().to_string(),
            format!("check the name and namespace with `helm list --namespace {namespace}`"),
        ),
        other => SessionError::Other(other.to_string()),
    })?;
    let release = if common.resume && release.status.is_pending() {
        wait_while_pending(&helm, release, &common.timeout)?
    } else {
        release
    };
    if !(direction == Direction::Rollback && release.status == ReleaseStatus::Failed) {
        refuse_unless_deployed(&release)?;
    }

    let opened = ledger::open_store(&kubectl, release_name, &namespace, helm.kube_context.as_deref())
        .map_err(|e| SessionError::Other(e.to_string()))?;
    let store_note = opened.warning.clone();
    let ledger_view = opened.store.load().map_err(|e| SessionError::Other(e.to_string()))?.map(|s| s.ledger);

    let policy = match (&common.policy, ledger_view.as_ref().and_then(|l| l.policy.clone())) {
        (Some(name), _) => policy::load_named_or_path(name)
            .map_err(|e| bad(e.to_string(), "fix the policy or pass another with --policy"))?,
        (None, Some(recorded)) if presets::text(&recorded).is_some() => {
            policy::load_named_or_path(&recorded).map_err(|e| SessionError::Other(e.to_string()))?
        }
        _ => presets::for_chart(&release.chart_name),
    };
    let chart_reference = common
        .chart
        .clone()
        .or_else(|| ledger_view.as_ref().and_then(|l| l.chart.clone()))
        .or_else(|| policy.chart.clone())
        .ok_or_else(|| {
            bad(
                format!("no chart source is known for {release_name} (chart {})", release.chart_name),
                format!("pass --chart repo/{} (a helm repository), --chart oci://HOST/PATH/{} or --chart DIR (packaged charts)", release.chart_name, release.chart_name),
            )
        })?;
    let source = ChartSource::parse(&chart_reference).map_err(|e| bad(e.to_string(), "see --help for --chart"))?;
    if let Some(name) = source.chart_name()
        && name != release.chart_name
    {
        return Err(bad(
            format!(
                "--chart {chart_reference} is chart {name:?}, but release {release_name} runs chart {:?}",
                release.chart_name
            ),
            format!("pass the reference of the {} chart; switching charts is not an upgrade", release.chart_name),
        ));
    }
    let mut warnings = Vec::new();
    let (available, chart) =
        list_versions(&helm, &source, &chart_reference, &release.chart_name, common.plain_http, &mut warnings)?;
    let available = with_catalog(available, &policy);
    if let Some(pin) = pinned_image_tag(&release) {
        warnings.push(pin);
    }
    let context = Context {
        release: Some(release_name.to_string()),
        namespace: Some(namespace),
        chart_name: Some(release.chart_name.clone()),
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
        store_note,
        store: opened.store,
        ledger_view,
        values_backup: None,
    })
}

/// After a run was killed, the helm it started goes on alone (it has its own process
/// group); give it the time a rollout may take before judging the release.
fn wait_while_pending(helm: &Helm, mut release: Release, timeout: &str) -> Result<Release, SessionError> {
    let deadline =
        std::time::Instant::now() + super::walk::parse_duration(timeout).unwrap_or(std::time::Duration::from_secs(300));
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
        s if s.is_pending() => {
            let way_out = match release.last_good_revision() {
                Some(r) => format!(
                    "if no helm process is still working on it, `helm rollback {name} {} --namespace {ns}` returns it to revision {} ({}); then run this command again",
                    r.revision,
                    r.revision,
                    r.version.as_ref().map(|v| v.to_string()).unwrap_or_default()
                ),
                None => format!(
                    "no earlier good revision exists; `helm uninstall {name} --namespace {ns}` and install again"
                ),
            };
            Err(bad(
                format!(
                    "release {name} is {} (revision {}): an interrupted helm left it mid-operation",
                    s.as_str(),
                    release.revision
                ),
                way_out,
            ))
        }
        ReleaseStatus::Failed => Err(bad(
            format!(
                "release {name} is failed at {} (revision {}): {}",
                release.version, release.revision, release.description
            ),
            match release.last_good_revision() {
                Some(r) => format!(
                    "bring it back to a deployed state first: `helm safe-rollback {name}` (the policy's way back), or `helm rollback {name} {} --namespace {ns}` if no migration ran",
                    r.revision
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
            if let Err(e) = helm.run_global(
                format!("refresh the {repo} repository index"),
                vec!["repo".into(), "update".into(), repo.clone()],
            ) {
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
    if e.exit_code() == crate::exit::BAD_INPUT {
        let text = e.to_string();
        let (message, hint) = text.split_once("\nhint: ").unwrap_or((&text, "check --chart"));
        bad(message, hint)
    } else {
        SessionError::Other(e.to_string())
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
            format!("the user values pin {path}={tag}, the version running now: every hop would keep that image. Remove the pin or override it with --set {path}=...")
        })
}

/// The live upgrade. `plan_only`: print and change nothing.
pub fn upgrade(
    common: &Common,
    release_name: &str,
    target: Option<&ChartVersion>,
    fast_path: bool,
    devel: bool,
) -> Result<Either, SessionError> {
    let mut situation = survey(common, release_name, Direction::Upgrade)?;
    let resumed = if common.resume { Some(resumable(situation.ledger_view.as_ref())?) } else { None };
    let target = match (target, &resumed) {
        (Some(t), _) => t.clone(),
        (None, Some(r)) => r.target.clone(),
        (None, None) => return Err(bad("--to is required", "name the version to upgrade to with --to VERSION")),
    };
    let fast_path = fast_path || resumed.as_ref().is_some_and(|r| r.fast_path);
    if let Some(r) = &resumed {
        progress_line(&format!(
            "resuming the upgrade to {target} recorded in the ledger; {} runs {} now",
            situation.release.name, situation.release.version
        ));
        situation.values_backup = r.values_backup.clone().filter(|p| p.is_file());
    }
    let request = UpgradeRequest { current: situation.release.version.clone(), target, fast_path, devel };
    let plan = plan::plan_upgrade(&situation.policy, &situation.available, &request, &situation.context).map_err(
        |e| match e {
            plan::PlanError::Refused(r) => {
                SessionError::Refused { rule: r.rule, message: r.message, supported: r.supported }
            }
            plan::PlanError::BadRequest { message, hint } => bad(message, hint),
        },
    )?;
    let mut plan = plan;
    plan.warnings.append(&mut situation.warnings);
    if common.plan {
        return Ok(Either::Plan(Box::new(plan)));
    }
    execute(common, situation, plan, Consent::StartConfirmation).map(Either::Report)
}

/// The live rollback: the newest earlier safe version (or `--to`), within the policy's
/// window from the newest version ever deployed, by the policy's procedure.
pub fn rollback(
    common: &Common,
    release_name: &str,
    target: Option<&ChartVersion>,
    accept_data_loss: bool,
) -> Result<Either, SessionError> {
    let mut situation = survey(common, release_name, Direction::Rollback)?;
    if situation.release.status == ReleaseStatus::Failed {
        carry_last_good_values(&mut situation)?;
    }
    let release = &situation.release;
    let ledger = situation.ledger_view.as_ref();
    // The newest version the database has seen: the ledger's record, and every revision
    // helm still keeps, failed ones included (their pre-upgrade hooks may have migrated).
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
        target: target.cloned(),
        newest_ever,
        deployed_before: release.deployed_versions(),
        snapshot: SnapshotKnowledge::Unknown,
    };
    let to_refusal = |e: PlanError| match e {
        PlanError::Refused(r) => SessionError::Refused { rule: r.rule, message: r.message, supported: r.supported },
        PlanError::BadRequest { message, hint } => bad(message, hint),
    };
    // What is known of a snapshot depends on the target, which the planner picks when
    // --to is absent: plan once to learn it, then with what the ledger says of it.
    let first = plan::plan_rollback(&situation.policy, &situation.available, &request, &situation.context)
        .map_err(to_refusal)?;
    request.target = Some(first.to.clone());
    request.snapshot = match ledger {
        None => SnapshotKnowledge::Unknown,
        Some(l) if l.snapshots.iter().any(|s| s.version == first.to) => SnapshotKnowledge::TakenAt(first.to.clone()),
        Some(_) => SnapshotKnowledge::None,
    };
    let mut plan = plan::plan_rollback(&situation.policy, &situation.available, &request, &situation.context)
        .map_err(to_refusal)?;
    if plan.hops.first().is_some_and(|h| h.kind == HopKind::PatchDowngrade) {
        let operator_values = !common.set.is_empty() || !common.values.is_empty();
        choose_patch_method(&situation.helm, release, operator_values, &mut plan);
    }
    plan.warnings.append(&mut situation.warnings);
    if common.plan {
        return Ok(Either::Plan(Box::new(plan)));
    }
    let loses_data = plan.hops.iter().any(|h| matches!(h.kind, HopKind::MinorDowngrade | HopKind::Restore));
    if loses_data && common.yes && !accept_data_loss {
        return Err(bad(
            format!(
                "rolling {release_name} back from {} to {} may lose data: {}",
                plan.from,
                plan.to,
                plan.warnings.first().cloned().unwrap_or_default()
            ),
            "run it on a terminal to confirm by typing the release name, or pass --accept-data-loss with --yes",
        ));
    }
    // A restore whose procedure asks the operator to restore by hand cannot be answered
    // by --yes: nobody would have restored anything.
    if common.yes
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
    execute(common, situation, plan, consent).map(Either::Report)
}

/// A failed revision's values are the ones that failed (often an operator's `--set` that
/// broke the rollout): going back carries the values of the last good revision instead.
fn carry_last_good_values(situation: &mut Situation) -> Result<(), SessionError> {
    let release = &situation.release;
    let Some(good) = release.last_good_revision() else { return Ok(()) };
    let values: serde_json::Value = situation
        .helm
        .json(
            format!("read the values of {} at revision {}", release.name, good.revision),
            vec![
                "get".into(),
                "values".into(),
                release.name.clone(),
                "--revision".into(),
                good.revision.to_string(),
                "-o".into(),
                "json".into(),
            ],
        )
        .map_err(|e| SessionError::Other(e.to_string()))?;
    situation.warnings.push(format!(
        "{} failed at revision {}: carrying the values of revision {}, the last good one",
        release.name, release.revision, good.revision
    ));
    situation.release.user_values = if values.is_null() { serde_json::json!({}) } else { values };
    Ok(())
}

/// A patch rollback can be helm's own rollback to a revision that ran the target, or a
/// redeploy of the target with the current values. The plan says which and why.
fn choose_patch_method(helm: &Helm, release: &Release, operator_values: bool, plan: &mut Plan) {
    let target = plan.to.clone();
    if operator_values {
        plan.warnings.push(format!(
            "redeploying {target} with the current values and the -f/--set given (`helm rollback` would ignore them)"
        ));
        return;
    }
    let revision = release.history.iter().rev().filter(|r| r.revision < release.revision).find(|r| {
        r.version.as_ref() == Some(&target) && matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded)
    });
    let Some(revision) = revision else {
        plan.warnings.push(format!(
            "no revision of {target} is left in helm's history: redeploying {target} from the chart source with the current values"
        ));
        return;
    };
    let then: Option<serde_json::Value> = helm
        .json(
            format!("read the values of {} at revision {}", release.name, revision.revision),
            vec![
                "get".into(),
                "values".into(),
                release.name.clone(),
                "--revision".into(),
                revision.revision.to_string(),
                "-o".into(),
                "json".into(),
            ],
        )
        .ok()
        .map(|v: serde_json::Value| if v.is_null() { serde_json::json!({}) } else { v });
    if then.as_ref() == Some(&release.user_values) {
        for hop in &mut plan.hops {
            for step in &mut hop.steps {
                if let Step::Deploy { version, set, revision: method } = step
                    && *version == target
                    && set.is_empty()
                {
                    *method = Some(revision.revision);
                }
            }
        }
        plan.warnings.push(format!(
            "revision {} ran {target} with the same values: `helm rollback` to it restores exactly what ran, without fetching the chart",
            revision.revision
        ));
    } else {
        plan.warnings.push(format!(
            "revision {} ran {target} with other values: redeploying {target} with the current values keeps the changes made since (`helm rollback {} {}` would restore that revision's values instead)",
            revision.revision, release.name, revision.revision
        ));
    }
}

/// What the operator must do before the first change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Consent {
    /// `Start the N hop(s)? [y/N]`.
    StartConfirmation,
    /// The policy warns of data loss: type the release name (or --accept-data-loss).
    TypeReleaseName,
}

/// Either a plan to print (`--plan`) or the report of a run.
pub enum Either {
    Plan(Box<Plan>),
    Report(Box<RunReport>),
}

/// What the ledger says about a run that did not finish.
struct Resumable {
    target: ChartVersion,
    fast_path: bool,
    /// The carried values of the interrupted run (its private backup, when on this machine).
    values_backup: Option<PathBuf>,
}

fn resumable(ledger: Option<&ledger::Ledger>) -> Result<Resumable, SessionError> {
    let plan = ledger
        .and_then(|l| l.in_progress.as_ref())
        .ok_or_else(|| bad("--resume: the ledger holds no plan in progress", "start a new run with --to VERSION"))?;
    let target = plan
        .plan
        .get("to")
        .and_then(|v| v.as_str())
        .and_then(|v| ChartVersion::parse(v).ok())
        .ok_or_else(|| SessionError::Other("--resume: the plan in the ledger has no target".into()))?;
    Ok(Resumable {
        target,
        fast_path: plan.plan.get("strategy").and_then(|s| s.as_str()) == Some("fast-path"),
        values_backup: plan.plan.get(VALUES_BACKUP_KEY).and_then(|p| p.as_str()).map(PathBuf::from),
    })
}

/// Key under which the plan in progress records its values backup. The values carried
/// to every hop are the ones read at the start; a resumed run must carry the same (the
/// release's values mid-way may hold a fast path's maintenance override).
const VALUES_BACKUP_KEY: &str = "values_backup";

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

fn execute(
    common: &Common,
    situation: Situation,
    plan: Plan,
    consent: Consent,
) -> Result<Box<RunReport>, SessionError> {
    let Situation {
        helm,
        kubectl,
        mut release,
        policy,
        chart,
        chart_reference,
        available,
        context,
        store_note,
        store,
        ledger_view,
        values_backup,
        ..
    } = situation;
    if let Some(path) = &values_backup {
        match std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(values) => {
                progress_line(&format!("carrying the values the interrupted run started with ({})", path.display()));
                release.user_values = values;
            }
            None => progress_line(&format!(
                "warning: cannot read {}; carrying the release's current values",
                path.display()
            )),
        }
    }
    let force_unlock = common.force_unlock
        || (common.resume
            && ledger_view
                .as_ref()
                .and_then(|l| l.lock.as_ref())
                .is_some_and(|lock| ledger::holder_is_gone(&lock.holder)));
    let interaction = interact::for_this_process(common.yes, &helm.runner.signals).map_err(|m| {
        let (message, hint) =
            m.split_once("\nhint: ").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((m.clone(), String::new()));
        bad(message, hint)
    })?;
    if !interaction.attended()
        && let Some(why) = needs_a_person(&plan, common.snapshot_taken)
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
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut held = Held::acquire(store, &ledger::holder(), &command, force_unlock)
        .map_err(|e| SessionError::Other(e.to_string()))?;
    {
        let l = held.ledger_mut();
        l.chart = Some(chart_reference.clone());
        l.policy = Some(policy.name.clone());
        l.note_deployed(&release.version);
        for v in release.deployed_versions() {
            l.note_deployed(&v);
        }
    }
    held.save_or_warn();
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "");
    let backup = match backup::take(&helm, &release, &stamp) {
        Ok(b) => b,
        Err(e) => {
            let _ = held.release_lock();
            return Err(SessionError::Other(e.to_string()));
        }
    };
    progress_line(&format!("backup of {} (values, manifest, metadata): {}", release.name, backup.dir.display()));
    eprint!("{}", crate::ui::render::plan_table(&plan));
    let agreed = match consent {
        _ if !interaction.attended() || plan.hops.is_empty() => true,
        Consent::StartConfirmation => interaction.confirm(&format!("Start the {} hop(s)?", plan.hops.len())),
        Consent::TypeReleaseName => interaction
            .confirm_typed(&format!("This rollback may lose data:\n  {}", plan.warnings.join("\n  ")), &release.name),
    };
    if !agreed {
        let _ = held.release_lock();
        return Ok(Box::new(RunReport {
            outcome: Outcome::Stopped {
                at: release.version.clone(),
                reason: "not started: the operator declined".into(),
            },
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            backup: Some(backup.dir),
            plan,
            steps: vec![],
            warnings: vec![],
        }));
    }
    let progress = crate::ui::progress::Progress::for_stderr();
    let (outcome, steps) = {
        let mut recorder = Recorder { held: &mut held, values_backup: backup.values.clone() };
        let mut walk = Walk::new(
            &helm,
            &kubectl,
            &policy,
            release.name.clone(),
            chart,
            backup.values.clone(),
            backup.dir.clone(),
            interaction.as_ref(),
            &mut recorder,
            &progress,
        );
        walk.extra_values = common.values.clone();
        walk.extra_sets = common.set.clone();
        // The interrupted run deployed with the same -f/--set (a resumed run must be given
        // them again), so they are already in the release.
        walk.extras_in_effect = common.resume;
        walk.timeout = common.timeout.clone();
        walk.snapshot_taken = common.snapshot_taken;
        walk.available = available;
        walk.context = context;
        walk.recover = plan.direction == Direction::Upgrade;
        let outcome = walk.run(&plan);
        (outcome, std::mem::take(&mut walk.reports))
    };
    held.ledger_mut().clear_in_progress();
    if matches!(outcome, Outcome::Failed { .. }) {
        // Keep the plan on record: a person picks it up from here.
        let plan_json = serde_json::to_value(&plan).unwrap_or_default();
        held.ledger_mut().set_in_progress(plan_json, 0, None);
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

/// The ledger records what the walk reports. A failed write is a warning: stopping a
/// hop under way to report bookkeeping would be worse than the gap in the record.
trait SaveOrWarn {
    fn save_or_warn(&mut self);
}

impl SaveOrWarn for Held {
    fn save_or_warn(&mut self) {
        if let Err(e) = self.save() {
            progress_line(&format!("warning: could not update the ledger at {}: {e}", self.location()));
        }
    }
}

/// The journal of a run: the ledger, plus where this run's carried values are.
struct Recorder<'a> {
    held: &'a mut Held,
    values_backup: PathBuf,
}

impl Journal for Recorder<'_> {
    fn hop_started(&mut self, plan: &Plan, index: usize, hop: &crate::plan::Hop) {
        let mut plan_json = serde_json::to_value(plan).unwrap_or_default();
        plan_json[VALUES_BACKUP_KEY] = serde_json::Value::from(self.values_backup.display().to_string());
        let l = self.held.ledger_mut();
        l.set_in_progress(plan_json, index, None);
        l.record_hop_start(&hop.from, &hop.to, &format!("{:?}", hop.kind).to_lowercase());
        // Raised with the hop's record, in the same write: every version the hop deploys
        // counts as deployed before helm runs (its hooks may migrate), and one write per
        // hop is saved (each kubectl call costs about 0.1 s; see scripts/bench).
        for step in &hop.steps {
            if let Step::Deploy { version, .. } = step {
                l.note_deployed(version);
            }
        }
        self.held.save_or_warn();
    }
    fn hop_ended(&mut self, _index: usize, outcome: &str, message: Option<&str>) {
        let outcome = outcome.parse().unwrap_or(ledger::HopOutcome::Failed);
        if let Err(e) = self.held.ledger_mut().record_hop_end(outcome, message.map(String::from)) {
            progress_line(&format!("warning: {e}"));
        }
        self.held.save_or_warn();
    }
    fn deploying(&mut self, version: &ChartVersion) {
        // Usually already on record from hop_started; write only if this raised it
        // (a recovery deploy is never newer).
        if self.held.ledger_mut().note_deployed(version) {
            self.held.save_or_warn();
        }
    }
    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str) {
        self.held.ledger_mut().record_snapshot(at, how);
        self.held.save_or_warn();
    }
    fn newest_ever(&self) -> Option<ChartVersion> {
        self.held.ledger().newest_ever().cloned()
    }
    fn has_snapshot(&self) -> bool {
        !self.held.ledger().snapshots.is_empty()
    }
}
