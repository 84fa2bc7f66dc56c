//! The first stage of a live run: everything it needs to know, read at once, changing
//! nothing.
//!
//! The reads overlap: the release (three helm reads, themselves in parallel), helm's
//! version, the ledger, and the chart source's listing (as soon as the chart reference is
//! known: from `--chart` at once, from the ledger as soon as it is read). Then, unless
//! `--policy`, `--resume` or a policy file the ledger recorded decides, the target chart is
//! fetched (into the run's charts, where the preflight finds it) for the policy it may
//! ship. What cannot go on is refused here, before anything changes: an unknown release,
//! one that is not `deployed` (a rollback may start from a failed or pending one), a
//! ledger that cannot be read, a chart of another name, a source that does not answer, a
//! chart's policy that does not load or would run commands the operator did not allow.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::{RunError, bad, bad_text, refused};
use super::ledger::{self, ForShowing, HopOutcome, Ledger, LedgerStore, OpenedStore};
use super::options::RunOptions;
use super::policy_choice::{Choice, ChosenPolicy, choose_policy, settle};
use crate::catalog::cache::RunCharts;
use crate::catalog::{self, ChartSource, Offer, OfferOptions};
use crate::env;
use crate::helm::{ExecError, Helm, Runner, Signals};
use crate::kube::KubeClient;
use crate::plan::{Available, Context, Direction, MadeFrom, Sources};
use crate::policy::Policy;
use crate::printer::Printer;
use crate::release::{Release, ReleaseStatus};
use crate::text::one_line;
use crate::version::{ChartVersion, VersionSpec};

/// What a run talks to the cluster with (and where its output goes): helm for the
/// release, the API client for the tool's own bookkeeping and reads.
pub struct Tools {
    pub helm: Helm,
    pub kube: KubeClient,
    /// 3 or 4.
    pub helm_major: u32,
    pub printer: Printer,
}

/// What the live release, its ledger, its policy and its chart source say.
pub struct Facts {
    pub release: Release,
    /// The ledger as read (None: the release has none yet).
    pub ledger: Option<Ledger>,
    pub store: Arc<dyn LedgerStore>,
    /// Said before the plan when the ledger is not the shared ConfigMap.
    pub store_note: Option<String>,
    pub policy: Policy,
    /// The policy differs from the one the ledger recorded: said at the confirmation.
    pub policy_change: Option<String>,
    pub chart_reference: String,
    /// The versions offered (with what the policy's catalog knows of them) and how helm is
    /// told the chart.
    pub offer: Offer,
    pub context: Context,
    /// For the plan's warnings.
    pub warnings: Vec<String>,
    /// The cluster's capabilities and helm's merge of the run's first values, read for
    /// the preflight (None: the run renders nothing).
    pub probe: Option<super::probe::Probe>,
}

/// The API client, configured as helm is (the same cluster and identity).
fn connect(opts: &RunOptions) -> Result<KubeClient, RunError> {
    KubeClient::from_process_env(opts.kube_context.as_deref(), &opts.namespace)
        .map_err(|e| RunError::Other(e.to_string()))
}

/// The ledger, read through the API client.
fn open_ledger(client: &Result<KubeClient, String>, opts: &RunOptions) -> Result<(KubeClient, OpenedStore), RunError> {
    let client = client.clone().map_err(RunError::Other)?;
    let opened = ledger::open_store(&client, &opts.release, opts.kube_context.as_deref(), opts.local_ledger)
        .map_err(|e| RunError::Other(e.to_string()))?;
    Ok((client, opened))
}

/// The release's ledger only to show it (`--history`): read from the store a live run
/// would use, through the same client, and nothing else: no helm, no lock, nothing
/// created. A release without a record (or without a release) reads as none.
pub fn ledger_for_showing(opts: &RunOptions) -> Result<OpenedStore<ForShowing>, RunError> {
    let client = connect(opts)?;
    ledger::open_for_showing(&client, &opts.release, opts.kube_context.as_deref(), opts.local_ledger, None)
        .map_err(|e| RunError::Other(e.to_string()))
}

/// What the first, overlapping reads found.
struct FirstReads {
    release: Release,
    helm_major: u32,
    kube: KubeClient,
    opened: OpenedStore,
    /// The chart source's listing, when its reference was known before the release was
    /// read, and that reference.
    early_offer: Option<(Result<Offer, RunError>, String)>,
    probe: Option<super::probe::Probe>,
}

/// The release, helm's version, the ledger and (when its reference is known early) the
/// chart source's listing, read at once.
fn first_reads(
    helm: &Helm,
    opts: &RunOptions,
    direction: Direction,
    printer: &Printer,
) -> Result<FirstReads, RunError> {
    // The release and the ledger are both read through the API client, made once the
    // listing chain and helm's version are under way (building it reads the kubeconfig; an
    // exec credential plugin may run).
    let kube = std::sync::OnceLock::new();
    // The preflight's read of the cluster follows the release's, while the listing runs.
    // helm's merge of the operator's -f/--set does too, with or without the preflight: it
    // is how a file helm cannot read is refused before the first change.
    let probing = direction == Direction::Upgrade && !opts.no_preflight;
    let merging = direction == Direction::Upgrade;
    let (release, helm_major, opened, early_offer) = std::thread::scope(|s| {
        // The chart source can be listed as soon as its reference is known: `--chart` at
        // once (the listing chain, `repo update` then `search`, is the longest read), the
        // ledger's once the ledger is read. A directory may hold several charts: it is
        // listed once the release says which.
        let listable = |r: &String| ChartSource::parse(r).is_ok_and(|s| s.chart_name().is_some());
        let listing = |reference: String| s.spawn(move || (list(helm, opts, &reference, None), reference));
        let from_flag = opts.chart.clone().filter(listable).map(listing);
        let major = s.spawn(|| helm.major_version());
        let kube = kube.get_or_init(|| connect(opts).map_err(|e| e.to_string()));
        let capabilities = probing.then(|| s.spawn(|| super::probe::capabilities(kube.as_ref().ok())));
        let release = s.spawn(|| {
            let release = read_release(helm, kube.as_ref().ok(), opts, printer);
            let first_values = match &release {
                Ok(read) if merging => super::probe::first_values(helm, &read.name, &read.user_values, opts),
                _ => None,
            };
            release.map(|r| (r, first_values))
        });
        let ledger = s.spawn(|| open_ledger(kube, opts));
        let opened = ledger.join().expect("ledger reader");
        let offer = match opts.chart {
            Some(_) => from_flag,
            None => {
                let recorded = opened.as_ref().ok().and_then(|o| o.1.loaded.as_ref()?.ledger.chart.clone());
                // A source the ledger alone vouches for is not even listed (see
                // `vouched_source`): the run refuses it once the release is read.
                recorded.filter(listable).filter(|r| ledger_source_is_own(r)).map(listing)
            }
        };
        let release = release.join().expect("release reader");
        let capabilities = capabilities.map(|c| c.join().expect("capabilities reader"));
        let probe = |(release, first_values): (_, Option<_>)| {
            let read = probing || first_values.is_some();
            (release, read.then(|| super::probe::Probe { capabilities: capabilities.flatten(), first_values }))
        };
        (
            release.map(probe),
            major.join().expect("version reader"),
            opened,
            offer.map(|o| o.join().expect("chart source reader")),
        )
    });
    let (release, probe) = release?;
    let ledger = opened.as_ref().ok().and_then(|(_, o)| o.loaded.as_ref()).map(|l| &l.ledger);
    refuse_unless_deployed(&release, direction, ledger)?;
    let helm_major = helm_major.map_err(|e| bad(e.to_string(), "set HELM_BIN or put helm on PATH"))?;
    let (kube, opened) = opened?;
    Ok(FirstReads { release, helm_major, kube, opened, early_offer, probe })
}

/// The chart whose policy a run reads: the upgrade's target, `--to` (when it is absent or
/// names nothing the source offers, no chart is read: the upgrade is refused later), or
/// the version a rollback leaves.
pub enum TargetChart<'a> {
    Upgrade(Option<&'a VersionSpec>),
    Rollback,
}

/// Read everything and refuse what cannot go on. Changes nothing. `charts` keeps the
/// archives fetched (the target's, to read the policy it ships) for the preflight.
pub fn gather(
    opts: &RunOptions,
    direction: Direction,
    target: TargetChart,
    charts: &RunCharts,
    printer: &Printer,
) -> Result<(Tools, Facts), RunError> {
    let signals =
        Signals::install(printer).map_err(|e| RunError::Other(format!("cannot install signal handlers: {e}")))?;
    let runner = Runner::printing(signals, opts.debug, printer.clone());
    let helm_bin = env::path(env::HELM_BIN).unwrap_or_else(|| PathBuf::from("helm"));
    let helm = Helm::new(runner, helm_bin, opts.namespace.clone(), opts.kube_context.clone());
    let FirstReads { release, helm_major, kube, opened, early_offer, probe } =
        first_reads(&helm, opts, direction, printer)?;
    let OpenedStore { store, loaded, warning } = opened;
    let ledger = loaded.map(|s| s.ledger);
    let choice = choose_policy(opts.resume, opts.policy.as_deref(), ledger.as_ref(), &release.chart_name)?;
    let (chart_reference, origin) = chart_reference(opts, ledger.as_ref(), &choice.chosen.policy, &release)?;
    let mut offer = match early_offer {
        Some((offer, listed)) if listed == chart_reference => offer,
        _ => list(&helm, opts, &chart_reference, Some(&release.chart_name)),
    }?;
    let chosen = with_charts_policy(choice, &helm, charts, &offer, &release, &target, ledger.as_ref())?;
    super::chart_policy::gate(&chosen.policy, opts.allow_chart_commands)?;
    let mut warnings = chosen.notes;
    offer.available = with_catalog(std::mem::take(&mut offer.available), &chosen.policy);
    if chosen.policy.versions == crate::policy::VersionSpace::App {
        let wanted = app_versions_wanted(&offer, &release, &target, ledger.as_ref());
        let source = ChartSource::parse(&chart_reference).map_err(|e| bad(e.to_string(), "see --help for --chart"))?;
        catalog::fill_app_versions(&source, &mut offer, &wanted, &helm, opts.plain_http)
            .map_err(|e| RunError::Other(crate::text::for_terminal(&e.to_string()).into_owned()))?;
    }
    warnings.append(&mut offer.warnings);
    warnings.extend(pinned_image_tag(&release));
    let context = Context {
        made_from: Some(made_from(&release, &chart_reference, &opts.overrides)),
        ..release_context(
            (&opts.release, &opts.namespace, &release.chart_name),
            &chosen.policy,
            (&chart_reference, origin),
            ledger.as_ref(),
            opts.policy.is_some(),
        )
    };
    let tools = Tools { helm, kube, helm_major, printer: printer.clone() };
    let facts = Facts {
        release,
        ledger,
        store,
        store_note: warning,
        policy: chosen.policy,
        policy_change: chosen.change,
        chart_reference,
        offer,
        context,
        warnings,
        probe,
    };
    Ok((tools, facts))
}

/// The choice settled: when the chart's own policy outranks it, the target chart is
/// fetched and read first.
fn with_charts_policy(
    choice: Choice,
    helm: &Helm,
    charts: &RunCharts,
    offer: &Offer,
    release: &Release,
    target: &TargetChart,
    ledger: Option<&Ledger>,
) -> Result<ChosenPolicy, RunError> {
    if !choice.chart_first {
        return Ok(settle(choice, None, ledger));
    }
    let Some(version) = target_version(target, offer, release) else {
        let mut chosen = settle(choice, None, ledger);
        // An upgrade to a version the source does not offer is refused by the planner; a
        // rollback goes on (it may be the way out of a failed release), saying what it
        // could not read.
        if matches!(target, TargetChart::Rollback) {
            chosen.notes.push(format!(
                "the chart source does not offer {} {}, so a policy its chart may ship could not be read: {} decides (--policy chooses another)",
                release.chart_name,
                release.version,
                one_line(&chosen.policy.origin.to_string())
            ));
        }
        return Ok(chosen);
    };
    let shipped = super::chart_policy::read(helm, charts, &offer.chart, &release.chart_name, &version)?;
    Ok(settle(choice, shipped, ledger))
}

/// The versions whose app versions a policy counting in them needs: those between the
/// deployed one and the target (an upgrade), or every one up to the newest ever deployed
/// (a rollback: its target may be any older one; the catalog reads the newest few hundred).
fn app_versions_wanted(
    offer: &Offer,
    release: &Release,
    target: &TargetChart,
    ledger: Option<&Ledger>,
) -> Vec<ChartVersion> {
    let current = &release.version;
    let (low, high) = match target {
        TargetChart::Upgrade(spec) => {
            let to = spec.and_then(|s| crate::plan::exact_target(s, &offer.available).ok());
            (Some(current), to.unwrap_or_else(|| current.clone()))
        }
        TargetChart::Rollback => {
            let newest = ledger.and_then(|l| l.newest_ever().cloned());
            (None, newest.map_or(current.clone(), |n| n.max(current.clone())))
        }
    };
    offer
        .available
        .iter()
        .map(|a| &a.version)
        .filter(|v| low.is_none_or(|low| *v >= low) && **v <= high)
        .cloned()
        .collect()
}

/// The version whose chart may ship the run's policy, as the source spells it.
fn target_version(target: &TargetChart, offer: &Offer, release: &Release) -> Option<ChartVersion> {
    let wanted = match target {
        TargetChart::Upgrade(spec) => crate::plan::exact_target(spec.as_ref()?, &offer.available).ok()?,
        TargetChart::Rollback => release.version.clone(),
    };
    offer.available.iter().find(|a| a.version == wanted).map(|a| a.version.clone())
}

/// What the planner knows of a live release besides its versions, the same in a run and
/// in the fleet view: `(release, namespace, chart name)`, the sources, the hops on record
/// (for estimates). `policy_given`: the operator chose the policy (`--policy`).
pub(crate) fn release_context(
    (release, namespace, chart_name): (&str, &str, &str),
    policy: &Policy,
    (chart_reference, origin): (&str, &str),
    ledger: Option<&Ledger>,
    policy_given: bool,
) -> Context {
    Context {
        release: Some(release.to_string()),
        namespace: Some(namespace.to_string()),
        chart_name: Some(chart_name.to_string()),
        sources: Some(sources(policy, chart_reference, origin)),
        values: None,
        history: ledger.map(past_hops).unwrap_or_default(),
        stated_times: policy.states_times_for(chart_name, policy_given),
        made_from: None,
        charts_of_apps: Default::default(),
    }
}

/// Where the plan's policy and chart source came from, and the commands a chart's policy
/// would run (listed in the plan: the operator allowed them without seeing a plan).
pub(crate) fn sources(policy: &Policy, chart_reference: &str, origin: &str) -> Sources {
    Sources {
        policy: one_line(&policy.origin.to_string()),
        policy_digest: policy.digest.clone(),
        chart: Some(format!("{} ({origin})", one_line(chart_reference))),
        chart_commands: crate::policy::commands::needing_consent(policy),
    }
}

/// The release as the plan is made from it, for a reviewed plan file to be checked
/// against: revision, status and values by digest, never a value.
fn made_from(release: &Release, chart_reference: &str, overrides: &super::values::Overrides) -> MadeFrom {
    MadeFrom {
        revision: release.revision,
        status: release.status.as_str().to_string(),
        values_digest: crate::digest::json_sha256(&release.user_values),
        chart_reference: chart_reference.to_string(),
        overrides_digest: overrides.digest(),
    }
}

/// The hops this release walked to the end, as estimates learn from them (oldest first).
pub(crate) fn past_hops(ledger: &Ledger) -> Vec<crate::plan::estimate::PastHop> {
    // Saturating: the record is anyone's to edit, `work_ms` included.
    let secs = |ms: u64| ms.saturating_add(500) / 1000;
    ledger
        .hops
        .iter()
        .filter(|h| h.outcome == HopOutcome::Succeeded)
        .filter_map(|h| {
            Some(crate::plan::estimate::PastHop {
                kind: h.kind.clone(),
                procedure: h.procedure.clone()?,
                work_secs: secs(h.work_ms?),
                downtime_secs: h.downtime_ms.map(secs),
            })
        })
        .collect()
}

/// The release as it stands. A resumed run first waits for the helm the interrupted run
/// started, which goes on alone in its own process group.
fn read_release(
    helm: &Helm,
    kube: Option<&KubeClient>,
    opts: &RunOptions,
    printer: &Printer,
) -> Result<Release, RunError> {
    let read = |helm: &Helm| {
        Release::read_through(kube, helm, &opts.release).map_err(|e| match e {
            crate::release::ReadError::NotFound { .. } => bad(
                e.to_string().lines().next().unwrap_or_default().to_string(),
                format!("check the name and namespace with `helm list --namespace {}`", opts.namespace),
            ),
            // helm itself cannot be started: the environment is wrong, not the cluster.
            crate::release::ReadError::Helm(ExecError::Spawn { purpose, program, source, hint }) => bad(
                format!("{purpose}: cannot start {program}: {source}"),
                format!("{hint}: set HELM_BIN to helm's path, or put helm on PATH"),
            ),
            other => RunError::Other(other.to_string()),
        })
    };
    let mut release = read(helm)?;
    if opts.resume && release.status.is_pending() {
        let limit = crate::duration::parse(&opts.timeout).unwrap_or(std::time::Duration::from_secs(300));
        let deadline = std::time::Instant::now() + limit;
        while release.status.is_pending() && std::time::Instant::now() < deadline {
            printer.line(&format!(
                "{} is {}: waiting for the helm operation under way to finish",
                release.name,
                release.status.as_str()
            ));
            std::thread::sleep(std::time::Duration::from_secs(2));
            release = read(helm)?;
        }
    }
    Ok(release)
}

/// Refuse a release that is not deployed (a rollback may start from a failed or pending
/// one: it is the way out of them). A pending release whose ledger lock is held is most
/// likely that run's hop under way, and is said to be ([`lock::held_note`]): the way out
/// of an interrupted operation is not for a release another run is walking.
///
/// [`lock::held_note`]: super::ledger::lock::held_note
fn refuse_unless_deployed(release: &Release, direction: Direction, ledger: Option<&Ledger>) -> Result<(), RunError> {
    let way_out =
        direction == Direction::Rollback && (release.status == ReleaseStatus::Failed || release.status.is_pending());
    if way_out {
        return Ok(());
    }
    let name = &release.name;
    let ns = &release.namespace;
    match release.status {
        ReleaseStatus::Deployed => Ok(()),
        s if s.is_pending() => Err(bad(
            format!(
                "release {name} is {} at {} (revision {}): {}",
                s.as_str(),
                release.version,
                release.revision,
                match ledger.and_then(super::ledger::lock::held_note) {
                    Some(note) => format!("a helm operation is under way or did not finish; {note}"),
                    None => "a helm operation did not finish (interrupted, or the cluster stopped answering)".into(),
                }
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

/// Where the chart source came from, as the plan says it (a run and the fleet view).
pub(crate) const FROM_FLAG: &str = "--chart";
pub(crate) const FROM_LEDGER: &str = "from the ledger";
pub(crate) const FROM_POLICY: &str = "the policy's chart";

/// The chart reference (`--chart`, else the ledger's, else the policy's), where it came
/// from, and a refusal when it names another chart than the release runs.
fn chart_reference(
    opts: &RunOptions,
    ledger: Option<&Ledger>,
    policy: &Policy,
    release: &Release,
) -> Result<(String, &'static str), RunError> {
    let (reference, origin) = match (&opts.chart, ledger.and_then(|l| l.chart.clone()), &policy.chart) {
        (Some(c), _, _) => (c.clone(), FROM_FLAG),
        (None, Some(recorded), _) => (recorded, FROM_LEDGER),
        (None, None, Some(c)) => (c.clone(), FROM_POLICY),
        (None, None, None) => {
            return Err(bad(
                format!("no chart source is known for {} (chart {})", release.name, release.chart_name),
                format!(
                    "pass --chart repo/{0} (a helm repository), --chart oci://HOST/PATH/{0} or --chart DIR (packaged charts)",
                    release.chart_name
                ),
            ));
        }
    };
    let source = ChartSource::parse(&reference).map_err(|e| unusable_source(&e.to_string(), origin))?;
    vouched_source(&source, &reference, origin)?;
    if let Some(name) = source.chart_name()
        && name != release.chart_name
    {
        return Err(another_chart(&reference, origin, name, &release.name, &release.chart_name));
    }
    Ok((reference, origin))
}

/// How a message names the chart reference. Only one of `--chart` was typed by the
/// operator: blaming `--chart` for the ledger's (or the policy's) leaves them looking for a
/// flag they never passed, not at the record that holds it.
fn named_source(reference: &str, origin: &str) -> String {
    match origin {
        FROM_FLAG => format!("--chart {}", one_line(reference)),
        FROM_LEDGER => format!("the chart source the ledger recorded, {},", one_line(reference)),
        _ => format!("the policy's chart, {},", one_line(reference)),
    }
}

/// A reference that is not a chart source at all.
fn unusable_source(error: &str, origin: &str) -> RunError {
    match origin {
        FROM_FLAG => bad(error, "see --help for --chart"),
        FROM_LEDGER => bad(
            format!("the chart source the ledger recorded cannot be used: {error}"),
            "pass --chart with this release's chart source (the run records it in the ledger); see --help for --chart",
        ),
        _ => bad(
            format!("the policy's chart cannot be used: {error}"),
            "pass --chart with this release's chart source, or fix `chart:` in the policy; see --help for --chart",
        ),
    }
}

/// A reference to another chart than the release runs.
fn another_chart(reference: &str, origin: &str, name: &str, release: &str, chart: &str) -> RunError {
    let pass = if origin == FROM_FLAG { "pass the reference of" } else { "pass --chart with the reference of" };
    bad(
        format!("{} is chart {name:?}, but release {release} runs chart {chart:?}", named_source(reference, origin)),
        format!("{pass} the {chart} chart; switching charts is not an upgrade"),
    )
}

/// The ledger's chart source, deployed from only when it is the operator's own. The ledger
/// is a ConfigMap: whoever may edit ConfigMaps in the namespace could point the next run
/// (a CI job with `--yes`, deploying with far more rights than theirs) at a registry of
/// theirs. A `repo/chart` resolves only through the operator's own `helm repo add`s and a
/// directory is on this machine; an OCI reference is used when an operator passed it with
/// `--chart` on this machine (remembered privately), else refused before anything
/// changes. A `--chart` is remembered here.
fn vouched_source(source: &ChartSource, reference: &str, origin: &str) -> Result<(), RunError> {
    if origin == FROM_FLAG && matches!(source, ChartSource::Oci { .. }) {
        // Not remembering costs a later run without --chart a refusal, nothing more.
        let _ = super::private::remember_chart_source(reference);
    }
    if origin != FROM_LEDGER || ledger_source_is_own(reference) {
        return Ok(());
    }
    Err(refused(
        "ledger-chart",
        format!(
            "the ledger names the chart source {}, which was never passed with --chart on this machine; anyone who can edit ConfigMaps in the release's namespace can change it, so it is not deployed from",
            one_line(reference)
        ),
        "check the reference, then pass it with --chart (remembered on this machine from then on)",
    ))
}

/// Whether the ledger's chart source is one the operator's own set-up vouches for (see
/// [`vouched_source`]); the fleet view asks it too.
pub fn ledger_source_is_own(reference: &str) -> bool {
    match ChartSource::parse(reference) {
        Ok(ChartSource::Oci { .. }) => super::private::chart_source_remembered(reference),
        Ok(ChartSource::Repo { .. } | ChartSource::Dir { .. }) => true,
        Err(_) => false,
    }
}

/// What the chart source offers. `chart_name` is the release's chart when known; a
/// listing started before the release was read (to overlap the reads) takes the
/// reference's own chart name, which must match the release's anyway.
fn list(helm: &Helm, opts: &RunOptions, reference: &str, chart_name: Option<&str>) -> Result<Offer, RunError> {
    let source = ChartSource::parse(reference).map_err(|e| bad(e.to_string(), "see --help for --chart"))?;
    let name = chart_name.or(source.chart_name());
    catalog::offered(&source, name, helm, OfferOptions { plain_http: opts.plain_http, refresh: true }).map_err(|e| {
        // A registry's or repository's error body is text from outside: shown, not obeyed.
        let text = crate::text::for_terminal(&e.to_string()).into_owned();
        if e.exit_code() == crate::exit::BAD_INPUT { bad_text(&text) } else { RunError::Other(text) }
    })
}

/// Versions from the source, with what the policy's catalog knows about them (schema,
/// app version). The catalog adds no versions: only what the source offers can be deployed.
pub(crate) fn with_catalog(mut available: Vec<Available>, policy: &Policy) -> Vec<Available> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_source_from_the_ledger_or_the_policy_is_not_blamed_on_chart() {
        let text = |e: RunError| e.to_string();
        let typed = text(another_chart("demo/acme", FROM_FLAG, "acme", "bsr", "bsr"));
        assert!(typed.contains("--chart demo/acme is chart \"acme\", but release bsr runs chart \"bsr\""), "{typed}");
        let recorded = text(another_chart("demo/acme", FROM_LEDGER, "acme", "bsr", "bsr"));
        assert!(recorded.contains("the chart source the ledger recorded, demo/acme, is chart \"acme\""), "{recorded}");
        assert!(recorded.contains("pass --chart with the reference of the bsr chart"), "{recorded}");
        assert!(!recorded.starts_with("--chart"), "{recorded}");
        let policy = text(another_chart("oci://h/acme", FROM_POLICY, "acme", "bsr", "bsr"));
        assert!(policy.contains("the policy's chart, oci://h/acme, is chart"), "{policy}");

        let unusable = text(unusable_source("`http://` is not a chart source", FROM_LEDGER));
        assert!(unusable.contains("the chart source the ledger recorded cannot be used: `http://`"), "{unusable}");
        assert!(unusable.contains("pass --chart with this release's chart source"), "{unusable}");
        assert_eq!(
            text(unusable_source("x", FROM_FLAG)),
            text(bad("x", "see --help for --chart")),
            "a typed --chart reads as before"
        );
    }

    #[test]
    fn a_pending_release_whose_lock_is_held_is_said_to_be_under_way() {
        use crate::release::{ReleaseStatus::*, Revision};
        let v = |s: &str| crate::version::ChartVersion::parse(s).unwrap();
        let revision = |revision, version: &str, status| Revision {
            revision,
            status,
            version: Some(v(version)),
            description: String::new(),
        };
        let release = Release {
            name: "bsr".into(),
            namespace: "bsr".into(),
            chart_name: "bsr".into(),
            version: v("1.2.6"),
            app_version: None,
            revision: 2,
            status: PendingUpgrade,
            description: String::new(),
            history: vec![revision(1, "1.1.9", Superseded), revision(2, "1.2.6", PendingUpgrade)],
            user_values: serde_json::json!({}),
            manifest: String::new(),
            stored_values: None,
        };
        let said = |ledger: Option<&Ledger>| {
            refuse_unless_deployed(&release, Direction::Upgrade, ledger).expect_err("pending").to_string()
        };
        let unlocked = said(None);
        assert!(
            unlocked.contains("pending-upgrade at 1.2.6 (revision 2): a helm operation did not finish"),
            "{unlocked}"
        );
        let mut ledger = Ledger::new("bsr", "bsr");
        ledger.lock = Some(crate::run::ledger::Lock {
            holder: "ops@elsewhere pid 42".into(),
            since: "2026-11-30T23:00:00Z".into(),
            command: "bsr --to 1.3.2 --yes".into(),
            plan: None,
            process: None,
        });
        let locked = said(Some(&ledger));
        assert!(
            locked.contains("a helm operation is under way or did not finish; bsr is locked by ops@elsewhere pid 42 since 2026-11-30T23:00:00Z: a run started now is refused (wait for that run to finish"),
            "{locked}"
        );
        // The way out of it is a rollback's to take, locked or not (its lock decides).
        assert!(refuse_unless_deployed(&release, Direction::Rollback, Some(&ledger)).is_ok());
    }
}
