//! The fleet view (`helm safe-upgrade --all-namespaces --plan`, `--fleet --plan`): every
//! release on one line, with the policy that decides it and the newest version it can
//! reach, planned by the same planner as one release. Changes nothing.
//!
//! It reads by lists, not per release, so that hundreds of releases cost a few reads:
//! one `helm list` and one list of the tool's ledger ConfigMaps (at once), then each chart
//! source once (a repository's index refreshed once however many of its charts are
//! listed), then each chart the policy may ship in once per version. Those last reads are
//! one helm process each, run at most [`WORKERS`] at a time. Nothing is rendered and no
//! values are read: the view plans paths, and a release's own `--plan` checks the rest
//! (the preflight, the policy's value rules).
//!
//! What decides each release is what a run would use ([`crate::run::policy_choice`]): the
//! ledger's policy file, the policy the newest chart offered ships, the ledger's preset,
//! the preset for the chart's name. A release that has none of these (its chart is no
//! preset's and ships no policy, and no run recorded one) is listed as having no policy:
//! a run would fall back to the generic preset, which knows nothing of its vendor.

pub mod listing;
pub mod reach;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::catalog::cache::RunCharts;
use crate::catalog::{self, ChartSource, Offer, OfferOptions};
use crate::env;
use crate::helm::{Helm, Runner, Signals};
use crate::kube::KubeClient;
use crate::plan::estimate::Total;
use crate::policy::{Origin, Policy, presets};
use crate::printer::Printer;
use crate::run::RunError;
use crate::run::gather;
use crate::run::ledger::{self, Ledger};
use crate::run::parallel::in_parallel;
use crate::run::policy_choice::{Choice, choose_policy, settle};
use crate::text::one_line;
use crate::version::ChartVersion;
use listing::Listed;
use reach::Unreachable;

/// helm processes at once (chart listings and pulls): enough to overlap the network
/// waits, few enough not to swamp a laptop or a registry's rate limit.
pub const WORKERS: usize = 4;

/// The document's format, for programs reading `-o json`.
pub const SCHEMA: u32 = 1;

/// What the operator asked of the fleet view.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// `--all-namespaces`; else helm's namespace (`--fleet`).
    pub all_namespaces: bool,
    pub namespace: String,
    pub kube_context: Option<String>,
    /// `--chart` (repeatable): each the source of the releases of its chart (a directory:
    /// of any chart it holds), before the ledger's and the policy's.
    pub charts: Vec<String>,
    pub plain_http: bool,
    pub allow_chart_commands: bool,
    pub debug: bool,
}

/// Where a release stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Nothing newer is offered.
    UpToDate,
    /// A path to the newest version, or to an older one when the newest is refused.
    Upgradable,
    /// Newer versions exist and the policy refuses every one tried.
    Blocked,
    /// No policy knows this release's chart.
    NoPolicy,
    /// It could not be planned: not deployed, no chart source, a source or ledger that
    /// cannot be read (the notes say which).
    NotPlanned,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::UpToDate => "up to date",
            Standing::Upgradable => "upgradable",
            Standing::Blocked => "blocked",
            Standing::NoPolicy => "no policy",
            Standing::NotPlanned => "not planned",
        }
    }
}

/// One release's line.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub namespace: String,
    pub release: String,
    /// The chart's name (None: helm shows none that reads).
    pub chart: Option<String>,
    /// The deployed chart version, as helm shows the chart.
    pub deployed: String,
    pub status: String,
    pub revision: String,
    pub standing: Standing,
    /// The policy's name and where it came from ("preset bsr", "chart bsr 1.3.2 …").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_source: Option<String>,
    /// The newest stable version the source offers, when newer than the deployed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<ChartVersion>,
    /// The newest version the policy reaches, and the versions each hop lands on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ChartVersion>,
    pub path: Vec<ChartVersion>,
    pub hops: usize,
    pub downtime: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Total>,
    /// Newer versions the policy refuses, newest first, each with its rule.
    pub refused: Vec<Unreachable>,
    /// Newer versions not tried ([`reach::MAX_TRIED`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub untried: usize,
    /// What else an operator should know: a run holding the lock, an interrupted run, why
    /// it was not planned, the plan's warnings.
    pub notes: Vec<String>,
}

impl Row {
    /// A line that says nothing yet but who the release is.
    pub fn unplanned(namespace: &str, release: &str, status: &str, revision: &str) -> Row {
        Row {
            namespace: namespace.to_string(),
            release: release.to_string(),
            chart: None,
            deployed: String::new(),
            status: status.to_string(),
            revision: revision.to_string(),
            standing: Standing::NotPlanned,
            policy: None,
            policy_source: None,
            chart_source: None,
            newest: None,
            target: None,
            path: vec![],
            hops: 0,
            downtime: false,
            estimate: None,
            refused: vec![],
            untried: 0,
            notes: vec![],
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The whole view.
#[derive(Clone, Debug, Serialize)]
pub struct FleetView {
    pub schema: u32,
    /// "all namespaces" or "namespace NAME".
    pub scope: String,
    pub releases: Vec<Row>,
    /// About the view as a whole (ledgers that could not be listed, a stale index).
    pub warnings: Vec<String>,
}

/// Read the fleet and plan every release. Fails only when helm cannot list the releases;
/// everything else that goes wrong goes wrong for some releases, and is said on their lines.
pub fn view(opts: &FleetOptions, printer: &Printer) -> Result<FleetView, RunError> {
    let signals =
        Signals::install(printer).map_err(|e| RunError::Other(format!("cannot install signal handlers: {e}")))?;
    let runner = Runner::printing(signals, opts.debug, printer.clone());
    let helm_bin = env::path(env::HELM_BIN).unwrap_or_else(|| PathBuf::from("helm"));
    let helm = Helm::new(runner, helm_bin, opts.namespace.clone(), opts.kube_context.clone());
    let (listed, ledgers) = std::thread::scope(|s| {
        let ledgers = s.spawn(|| read_ledgers(opts));
        (helm.list_releases_json(opts.all_namespaces), ledgers.join().expect("ledger reader"))
    });
    let listed =
        listing::parse_helm_list(&listed.map_err(|e| RunError::Other(e.to_string()))?).map_err(RunError::Other)?;
    let mut warnings = Vec::new();
    let ledgers = ledgers.unwrap_or_else(|e| {
        warnings.push(format!(
            "the ledgers could not be listed ({}): policies and times recorded by earlier runs are not used",
            note(&e)
        ));
        BTreeMap::new()
    });
    let prepared: Vec<Prepared> = listed
        .into_iter()
        .map(|l| {
            let ledger = ledgers.get(&(l.namespace.clone(), l.name.clone())).cloned();
            prepare(l, ledger, opts)
        })
        .collect();
    let mut offers = list_sources(&helm, &prepared, opts, &mut warnings);
    let shipped = read_shipped(&helm, &prepared, &offers);
    let releases = prepared.into_iter().map(|p| finish(p, &mut offers, &shipped, &helm, opts)).collect();
    // The view changes nothing: a Ctrl-C ends it without a half-read table.
    helm.runner.signals.stop_before_changes().map_err(RunError::Interrupted)?;
    let scope =
        if opts.all_namespaces { "all namespaces".to_string() } else { format!("namespace {}", opts.namespace) };
    Ok(FleetView { schema: SCHEMA, scope, releases, warnings })
}

/// The tool's ledgers in scope, by one list request.
fn read_ledgers(opts: &FleetOptions) -> Result<listing::Ledgers, String> {
    let client =
        KubeClient::from_process_env(opts.kube_context.as_deref(), &opts.namespace).map_err(|e| e.to_string())?;
    let selector = format!("{}={}", ledger::MANAGED_BY_LABEL, ledger::MANAGED_BY_VALUE);
    let objects = client.list_configmaps(&selector, opts.all_namespaces).map_err(|e| e.to_string())?;
    Ok(listing::parse_ledgers(&objects))
}

/// A release once its own facts are read: the policy chosen so far and its chart source,
/// or why it cannot be planned.
struct Prepared {
    listed: Listed,
    ledger: Option<Ledger>,
    /// (name, deployed version).
    chart: Option<(String, ChartVersion)>,
    choice: Option<Choice>,
    /// The chart reference and where it came from.
    source: Option<(String, &'static str)>,
    /// Why it is not planned (set before any source is read).
    problem: Option<String>,
}

fn prepare(listed: Listed, ledger: Option<Result<Ledger, String>>, opts: &FleetOptions) -> Prepared {
    let mut prepared =
        Prepared { chart: listed.chart.clone(), listed, ledger: None, choice: None, source: None, problem: None };
    let (name, ns) = (one_line(&prepared.listed.name), one_line(&prepared.listed.namespace));
    prepared.problem = match prepared.listed.status.as_str() {
        "deployed" => None,
        "failed" => Some(format!(
            "it is failed: bring it back first (`helm safe-rollback {name} -n {ns}` goes back the policy's way)"
        )),
        other => Some(format!("it is {}: a helm operation has not finished", one_line(other))),
    };
    match ledger {
        Some(Ok(l)) => prepared.ledger = Some(l),
        Some(Err(e)) => {
            prepared
                .problem
                .get_or_insert(format!("its ledger cannot be read, and a run would refuse it: {}", note(&e)));
        }
        None => {}
    }
    let Some((chart_name, _)) = &prepared.chart else {
        prepared.problem.get_or_insert(format!(
            "helm shows its chart as {:?}, not NAME-VERSION",
            one_line(&prepared.listed.chart_text)
        ));
        return prepared;
    };
    match choose_policy(false, None, prepared.ledger.as_ref(), chart_name) {
        Ok(choice) => {
            prepared.source =
                chart_reference(&opts.charts, prepared.ledger.as_ref(), &choice.chosen.policy, chart_name);
            prepared.choice = Some(choice);
            // A source only the ledger vouches for is not read, as a run would refuse it.
            if let Some((reference, origin)) = &prepared.source
                && *origin == gather::FROM_LEDGER
                && !gather::ledger_source_is_own(reference)
            {
                prepared.problem.get_or_insert(format!(
                    "the ledger names the chart source {}, never passed with --chart on this machine: a run would refuse it (rule ledger-chart); pass --chart after checking it",
                    one_line(reference)
                ));
            }
        }
        Err(e) => {
            prepared.problem.get_or_insert(note(&e.to_string()));
        }
    }
    prepared
}

/// The source of a release's chart, as a run finds it: a `--chart` that is that chart
/// (else a directory given with `--chart`), the ledger's, the policy's.
fn chart_reference(
    flags: &[String],
    ledger: Option<&Ledger>,
    policy: &Policy,
    chart_name: &str,
) -> Option<(String, &'static str)> {
    let names_it = |reference: &str| {
        ChartSource::parse(reference).is_ok_and(|s| s.chart_name().is_none_or(|name| name == chart_name))
    };
    let named = |reference: &String| ChartSource::parse(reference).is_ok_and(|s| s.chart_name() == Some(chart_name));
    if let Some(flag) = flags.iter().find(|f| named(f)).or_else(|| flags.iter().find(|f| names_it(f))) {
        return Some((flag.clone(), gather::FROM_FLAG));
    }
    if let Some(recorded) = ledger.and_then(|l| l.chart.clone()) {
        return Some((recorded, gather::FROM_LEDGER));
    }
    policy.chart.clone().filter(|c| names_it(c)).map(|c| (c, gather::FROM_POLICY))
}

type SourceKey = (String, String);
type Offers = BTreeMap<SourceKey, Result<Offer, String>>;

/// Each chart source the fleet needs, listed once; each repository refreshed once first.
fn list_sources(helm: &Helm, prepared: &[Prepared], opts: &FleetOptions, warnings: &mut Vec<String>) -> Offers {
    let keys: BTreeSet<SourceKey> = prepared
        .iter()
        .filter(|p| p.problem.is_none())
        .filter_map(|p| Some((p.source.as_ref()?.0.clone(), p.chart.as_ref()?.0.clone())))
        .collect();
    let repos: BTreeSet<String> = keys
        .iter()
        .filter_map(|(reference, _)| match ChartSource::parse(reference) {
            Ok(ChartSource::Repo { repo, .. }) => Some(repo),
            _ => None,
        })
        .collect();
    let repos: Vec<String> = repos.into_iter().collect();
    let refreshed = in_parallel(&repos, WORKERS, |repo| helm.repo_update(repo));
    let keys: Vec<SourceKey> = keys.into_iter().collect();
    let options = OfferOptions { plain_http: opts.plain_http, refresh: false };
    let listed = in_parallel(&keys, WORKERS, |(reference, chart_name)| {
        let source = ChartSource::parse(reference).map_err(|e| e.to_string())?;
        catalog::offered(&source, Some(chart_name), helm, options)
            .map_err(|e| crate::text::for_terminal(&e.to_string()).into_owned())
    });
    // A repository helm does not know fails its listing too, which its releases' lines
    // say; a stale index that still lists is said once, here.
    for (repo, refresh) in repos.iter().zip(refreshed) {
        let used = keys.iter().zip(&listed).any(|((reference, _), offer)| {
            offer.is_ok()
                && matches!(ChartSource::parse(reference), Ok(ChartSource::Repo { repo: r, .. }) if r == *repo)
        });
        if let (Err(e), true) = (refresh, used) {
            warnings.push(format!(
                "the index of repository {} could not be refreshed, so its charts are listed from helm's cached copy: {}",
                one_line(repo),
                note(&e.to_string())
            ));
        }
    }
    keys.into_iter().zip(listed).collect()
}

type ShippedKey = (String, String, ChartVersion);
type Shipped = BTreeMap<ShippedKey, Result<Option<Policy>, String>>;

/// The chart whose policy a release's run would read: the newest stable version offered
/// when newer than the deployed one, else the deployed one; None when it is not offered.
fn policy_chart(offer: &Offer, deployed: &ChartVersion) -> Option<ChartVersion> {
    let newest = offer.available.iter().map(|a| &a.version).filter(|v| !v.is_prerelease()).max();
    match newest {
        Some(newest) if newest > deployed => Some(newest.clone()),
        _ => offer.available.iter().any(|a| &a.version == deployed).then(|| deployed.clone()),
    }
}

/// The policies the charts ship, each chart version fetched once.
fn read_shipped(helm: &Helm, prepared: &[Prepared], offers: &Offers) -> Shipped {
    let keys: BTreeSet<ShippedKey> = prepared
        .iter()
        .filter(|p| p.problem.is_none() && p.choice.as_ref().is_some_and(|c| c.chart_first))
        .filter_map(|p| {
            let (reference, _) = p.source.as_ref()?;
            let (chart_name, deployed) = p.chart.as_ref()?;
            let offer = offers.get(&(reference.clone(), chart_name.clone()))?.as_ref().ok()?;
            Some((reference.clone(), chart_name.clone(), policy_chart(offer, deployed)?))
        })
        .collect();
    let keys: Vec<ShippedKey> = keys.into_iter().collect();
    let read = in_parallel(&keys, WORKERS, |(reference, chart_name, version)| {
        let offer = offers[&(reference.clone(), chart_name.clone())].as_ref().expect("listed");
        // One run's charts per read: a run's store names an archive by version alone.
        let charts = RunCharts::new();
        crate::run::chart_policy::read(helm, &charts, &offer.chart, chart_name, version).map_err(|e| e.to_string())
    });
    keys.into_iter().zip(read).collect()
}

/// A release's line before it is planned: what helm and the ledger say of it.
fn blank_row(p: &Prepared) -> Row {
    let mut row = Row::unplanned(&p.listed.namespace, &p.listed.name, &p.listed.status, &p.listed.revision);
    row.chart = p.chart.as_ref().map(|(name, _)| name.clone());
    row.deployed = p.chart.as_ref().map(|(_, v)| v.to_string()).unwrap_or_else(|| p.listed.chart_text.clone());
    row.chart_source = p.source.as_ref().map(|(r, origin)| format!("{} ({origin})", one_line(r)));
    row.notes = ledger_notes(p.ledger.as_ref(), &p.listed);
    row
}

/// The release's line, planned.
/// `offers` is mutable: app versions an OCI source's configs gave for one release serve
/// the next releases of that chart, rather than being read again.
fn finish(p: Prepared, offers: &mut Offers, shipped: &Shipped, helm: &Helm, opts: &FleetOptions) -> Row {
    let mut row = blank_row(&p);
    if let Some(problem) = p.problem {
        row.notes.insert(0, problem);
        return row;
    }
    let (Some((chart_name, deployed)), Some(choice)) = (p.chart, p.choice) else {
        return row;
    };
    let listed_preset = presets::all().iter().any(|preset| preset.charts.contains(&chart_name));
    let recorded = p.ledger.as_ref().and_then(|l| l.policy_record.as_ref()).is_some();
    let Some((reference, origin)) = p.source else {
        if choice.chart_first && !listed_preset && !recorded {
            row.standing = Standing::NoPolicy;
            row.notes.insert(0, format!(
                "no preset is for chart {0}, no run recorded a policy, and no chart source is known to look for one the chart ships: pass --chart REPO/{0} (or oci://…, a directory)",
                one_line(&chart_name)
            ));
        } else {
            row.notes.insert(0, format!("no chart source is known for chart {}: pass --chart", one_line(&chart_name)));
        }
        return row;
    };
    let offer = match offers.get_mut(&(reference.clone(), chart_name.clone())).expect("every source was listed") {
        Ok(offer) => offer,
        Err(e) => {
            row.notes.insert(0, format!("its chart source cannot be listed: {}", note(e)));
            return row;
        }
    };
    let from_chart =
        match policy_chart(offer, &deployed).and_then(|v| shipped.get(&(reference.clone(), chart_name.clone(), v))) {
            Some(Err(e)) => {
                row.notes.insert(0, format!("the policy its chart may ship cannot be read: {}", note(e)));
                return row;
            }
            Some(Ok(policy)) => policy.clone(),
            None => None,
        };
    let chosen = settle(choice, from_chart, p.ledger.as_ref());
    let policy = chosen.policy;
    row.policy = Some(policy.name.clone());
    row.policy_source = Some(one_line(&policy.origin.to_string()));
    row.newest = reach::newest_offered(&offer.available, &deployed);
    let fallback = matches!(&policy.origin, Origin::Preset { name } if name == presets::FALLBACK);
    if fallback && !listed_preset && !recorded {
        row.standing = Standing::NoPolicy;
        row.policy = None;
        row.policy_source = None;
        row.notes.insert(0, format!(
            "no preset is for chart {}, its chart ships no policy, and no run recorded one: a run would use the generic preset {} unless --policy names the vendor's rules",
            one_line(&chart_name),
            presets::FALLBACK
        ));
        return row;
    }
    row.notes.extend(chosen.notes.iter().map(|n| one_line(n)));
    if let Err(e) = crate::run::chart_policy::gate(&policy, opts.allow_chart_commands) {
        row.standing = Standing::Blocked;
        row.notes.insert(0, note(&e.to_string()));
        return row;
    }
    if policy.versions == crate::policy::VersionSpace::App {
        // An OCI registry's tags carry no app versions: read those the path may cross (a
        // run reads the same), into the listing itself, so only what no earlier release
        // of this chart needed is read.
        let wanted: Vec<ChartVersion> =
            offer.available.iter().map(|a| a.version.clone()).filter(|v| *v >= deployed).collect();
        let filled = ChartSource::parse(&reference).map_err(|e| e.to_string()).and_then(|source| {
            catalog::fill_app_versions(&source, offer, &wanted, helm, opts.plain_http).map_err(|e| e.to_string())
        });
        if let Err(e) = filled {
            row.notes.insert(0, format!("the app versions of its charts cannot be read: {}", note(&e)));
            return row;
        }
    }
    plan_row(&mut row, &policy, &offer.available, (&chart_name, &deployed), (&reference, origin), p.ledger.as_ref());
    row
}

/// The newest version the release reaches under `policy`, planned, into its line.
fn plan_row(
    row: &mut Row,
    policy: &Policy,
    offered: &[crate::plan::Available],
    (chart_name, deployed): (&str, &ChartVersion),
    (reference, origin): (&str, &str),
    ledger: Option<&Ledger>,
) {
    let available = gather::with_catalog(offered.to_vec(), policy);
    let context =
        gather::release_context((&row.release, &row.namespace, chart_name), policy, (reference, origin), ledger, false);
    let reach = reach::newest_reachable(policy, &available, deployed, &context);
    row.refused = reach.refused;
    row.untried = reach.untried;
    row.standing = match (&reach.newest, &reach.plan) {
        (None, _) => Standing::UpToDate,
        (Some(_), Some(_)) => Standing::Upgradable,
        (Some(_), None) => Standing::Blocked,
    };
    if let Some(plan) = reach.plan {
        row.target = Some(plan.to.clone());
        row.path = plan.hops.iter().map(|h| h.to.clone()).collect();
        row.hops = plan.hops.len();
        row.downtime = plan.downtime;
        row.estimate = plan.estimate.clone();
        row.notes.extend(plan.warnings.iter().map(|w| one_line(w)));
    }
}

/// What the ledger says an operator must know before planning: a run under way, or one
/// that was interrupted.
fn ledger_notes(ledger: Option<&Ledger>, listed: &Listed) -> Vec<String> {
    let Some(ledger) = ledger else { return vec![] };
    let mut notes = Vec::new();
    if let Some(lock) = &ledger.lock {
        notes.push(format!(
            "a run holds the lock: {} since {}{}",
            one_line(&lock.holder),
            one_line(&lock.since),
            lock.plan.as_deref().map(|p| format!(" ({})", one_line(p))).unwrap_or_default()
        ));
    } else if let Some(in_progress) = &ledger.in_progress {
        notes.push(format!(
            "an interrupted run's plan to {} is in the ledger: `helm safe-upgrade {} -n {} --resume` continues it",
            in_progress.plan.to,
            one_line(&listed.name),
            one_line(&listed.namespace)
        ));
    }
    notes
}

/// An error's text on one line of notes: its lines (message, hint) joined by `; `, and
/// whatever came from outside made safe for the terminal.
fn note(text: &str) -> String {
    // A policy error's source snippet (`7 |   key: …`, `  |   ^`) reads only as a block.
    let snippet = |l: &str| l.starts_with('|') || l.split_once(" |").is_some_and(|(n, _)| n.parse::<u32>().is_ok());
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !snippet(l)).collect();
    one_line(&lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_source_only_the_ledger_vouches_for_is_not_read() {
        let listed = |name: &str| Listed {
            namespace: "ns".into(),
            name: name.into(),
            chart: Some(("bsr".into(), ChartVersion::parse("1.0.4").unwrap())),
            chart_text: "bsr-1.0.4".into(),
            status: "deployed".into(),
            revision: "1".into(),
        };
        let opts = FleetOptions {
            all_namespaces: false,
            namespace: "ns".into(),
            kube_context: None,
            charts: vec![],
            plain_http: false,
            allow_chart_commands: false,
            debug: false,
        };
        let with_source = |reference: &str| {
            let mut ledger = Ledger::new("bsr", "ns");
            ledger.chart = Some(reference.into());
            Some(Ok(ledger))
        };
        // A reference no operator passes with --chart (read-only, in the state root).
        let forged = prepare(listed("a"), with_source("oci://registry.example/elsewhere/bsr"), &opts);
        let problem = forged.problem.expect("not planned");
        assert!(
            problem.contains("rule ledger-chart") && problem.contains("registry.example/elsewhere/bsr"),
            "{problem}"
        );
        let own = prepare(listed("b"), with_source("demo/bsr"), &opts);
        assert_eq!(own.problem, None);
        assert_eq!(own.source, Some(("demo/bsr".to_string(), "from the ledger")));
    }

    #[test]
    fn an_error_is_one_note_without_its_snippet() {
        let error = "invalid policy chart x 1.6.0, p.yaml:7:3: unknown field `a`\n  |\n7 |   a: 3\n  |   ^\nhint: check the spelling\n\x1b[2J";
        assert_eq!(
            note(error),
            "invalid policy chart x 1.6.0, p.yaml:7:3: unknown field `a`; hint: check the spelling; \\x1b[2J"
        );
    }

    #[test]
    fn the_ledger_says_a_run_under_way_or_an_interrupted_one() {
        let listed = Listed {
            namespace: "ns".into(),
            name: "bsr".into(),
            chart: None,
            chart_text: "bsr-1.0.4".into(),
            status: "deployed".into(),
            revision: "3".into(),
        };
        assert!(ledger_notes(None, &listed).is_empty());
        let mut ledger = Ledger::new("bsr", "ns");
        assert!(ledger_notes(Some(&ledger), &listed).is_empty());
        let plan = crate::plan::plan_upgrade(
            &policy(presets::FALLBACK),
            &["1.0.4", "1.1.0"].map(|v| crate::plan::Available::new(ChartVersion::parse(v).unwrap())),
            &crate::plan::UpgradeRequest {
                current: ChartVersion::parse("1.0.4").unwrap(),
                target: ChartVersion::parse("1.1.0").unwrap(),
                fast_path: false,
                devel: false,
            },
            &crate::plan::Context::default(),
        )
        .unwrap();
        ledger.in_progress =
            Some(ledger::InProgress { plan, next_hop: 0, step: None, started_at: "t0".into(), values: None });
        assert_eq!(
            ledger_notes(Some(&ledger), &listed),
            [
                "an interrupted run's plan to 1.1.0 is in the ledger: `helm safe-upgrade bsr -n ns --resume` continues it"
            ]
        );
        ledger.lock = Some(ledger::Lock {
            holder: "ops@host pid 7\x1b[2J".into(),
            since: "t1".into(),
            command: "helm safe-upgrade bsr --to ***".into(),
            plan: Some("upgrade 1.0.4 → 1.1.0 (1 hop)".into()),
            process: None,
        });
        let notes = ledger_notes(Some(&ledger), &listed);
        assert_eq!(notes, ["a run holds the lock: ops@host pid 7\\x1b[2J since t1 (upgrade 1.0.4 → 1.1.0 (1 hop))"]);
    }

    fn policy(name: &str) -> Policy {
        presets::all().into_iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn a_chart_flag_serves_its_own_chart_then_the_ledger_then_the_policy() {
        let bsr = policy("bsr");
        let mut ledger = Ledger::new("bsr", "ns");
        let flags = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = flags(&["/charts", "demo/gitlab", "demo/bsr"]);
        assert_eq!(chart_reference(&both, Some(&ledger), &bsr, "bsr").unwrap().0, "demo/bsr", "its own chart first");
        assert_eq!(chart_reference(&both, None, &bsr, "coder").unwrap().0, "/charts", "a directory serves any chart");
        ledger.chart = Some("other/bsr".into());
        assert_eq!(
            chart_reference(&flags(&["demo/gitlab"]), Some(&ledger), &bsr, "bsr").unwrap(),
            ("other/bsr".to_string(), "from the ledger")
        );
        assert_eq!(chart_reference(&[], None, &bsr, "bsr").unwrap().1, "the policy's chart");
        assert_eq!(chart_reference(&[], None, &policy(presets::FALLBACK), "bsr"), None);
    }

    fn offer(list: &str) -> Offer {
        Offer {
            available: list.split(',').map(|v| crate::plan::Available::new(ChartVersion::parse(v).unwrap())).collect(),
            chart: crate::catalog::ChartArg::Files(Default::default()),
            warnings: vec![],
        }
    }

    #[test]
    fn the_policy_is_read_from_the_newest_stable_chart_else_the_deployed_one() {
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        assert_eq!(policy_chart(&offer("1.0.0,1.2.0,1.3.0-rc.1"), &v("1.0.0")), Some(v("1.2.0")));
        assert_eq!(policy_chart(&offer("1.0.0,1.2.0"), &v("1.2.0")), Some(v("1.2.0")));
        assert_eq!(policy_chart(&offer("1.0.0"), &v("1.5.0")), None, "the deployed chart is not offered");
    }
}
