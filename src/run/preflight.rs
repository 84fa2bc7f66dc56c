//! Between deciding and executing: every hop checked before the first change.
//!
//! ```text
//! (beside the release's read) probe: the cluster's capabilities; with -f/--set, helm's merge of the first values
//! Plan ─ pull each version once (digest-checked cache) ─ render each hop ─▶ Plan with a HopCheck per hop
//!                                                                          + the chart the walk deploys
//! ```
//!
//! Each `helm upgrade` of each hop (its deploy of the target, and a procedure's deploy of
//! the hop's start, like BSR's maintenance mode) is rendered by helm itself with exactly
//! the values it deploys (the carried values as its version reads them after the
//! policy's value rules, the operator's `-f`/`--set`, the procedure's own `set:`), the
//! release's name and namespace: `helm template --is-upgrade` told the cluster's
//! capabilities (read once, through the API client as helm reads them, beside the
//! release: the [`Probe`]), a third of what a dry run against the cluster costs (README,
//! "Benchmark"). A chart that may call
//! `lookup` is rendered with `helm upgrade --dry-run=server` instead: offline, `lookup`
//! finds no live object, so a chart's own check of them would pass.
//!
//! The values digest and the checks against the chart use helm's merge of the values,
//! never a second reading of the operator's input: computed here only when every values
//! file is JSON this tool wrote ([`merged_json_files`]), otherwise printed by helm (a
//! `helm template` of the [`EchoChart`]: the probe's, beside the release's read, for the
//! run's first values, and one beside the renders for each other values). Hops
//! are rendered in parallel. Neither render validates the objects on the server. A chart
//! that does not render, or whose `values.schema.json` rejects the values, refuses the
//! plan before anything changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{RunError, bad, refused};
use super::gather::{Facts, Tools};
use super::options::{DiffDetail, RunOptions};
use super::probe::Probe;
use super::values::Overrides;
use crate::catalog::ChartArg;
use crate::catalog::cache::{CachedChart, RunCharts};
use crate::catalog::dir::{ChartWords, chart_words};
use crate::diff::{ManifestDiff, Secrets};
use crate::digest::json_sha256;
use crate::helm::{DeployValues, EchoChart, ExecError, Rendered, merged_json_files};
use crate::plan::chart_values::{self, ChartValues};
use crate::plan::{DeployCheck, Direction, Hop, HopChanges, HopCheck, Plan};
use crate::version::ChartVersion;

/// The values a run starts from: the carried user values and the operator's overrides.
pub struct StartValues<'a> {
    pub carried: &'a Value,
    pub overrides: &'a Overrides,
}

/// How the walk passes each version to helm: the archives the preflight rendered (kept in
/// the run's [`RunCharts`], which must outlive the walk).
pub struct Checked {
    pub chart: ChartArg,
}

/// Check every hop of `plan` and record what was found in it.
pub fn check(
    plan: &mut Plan,
    facts: &Facts,
    tools: &Tools,
    opts: &RunOptions,
    start: &StartValues,
    charts: &RunCharts,
) -> Result<Checked, RunError> {
    refuse_unreadable_overrides(facts.probe.as_ref(), start)?;
    if let Some(why) = skipped(plan, opts) {
        plan.not_rendered = Some(why);
        return Ok(Checked { chart: facts.offer.chart.clone() });
    }
    let work = super::private::run_folder("preflight's values")?;
    let prepared = prepare_all(plan, facts, tools, start, charts, work.path())?;
    let mut said = BTreeSet::new();
    let mut files = std::collections::BTreeMap::new();
    // What each hop starts from, for --diff: the live release, then the hop before.
    let mut before = (facts.release.manifest.clone(), facts.release.user_values.clone());
    let name = &facts.release.chart_name;
    // A secret of any of the values the run sees is masked in every hop's view and diff: a
    // password rotated by the hop leaves its old value, under a key that does not look
    // secret (an env var's `value`), as no secret of the new values.
    let secrets = prepared.iter().fold(Secrets::from_values(&facts.release.user_values), |all, p| {
        all.union(&Secrets::from_values(&p.rendered.values))
    });
    for (i, hop) in plan.hops.iter_mut().enumerate() {
        let mut warnings = Vec::new();
        let mut other_deploys = Vec::new();
        let mut last = None;
        for deploy in prepared.iter().filter(|d| d.at.hop == i) {
            let mut found = against_chart(&deploy.rendered.values, &deploy.chart, name, &deploy.at.version)?;
            // A key the chart stops declaring is said where it stops (the key is the
            // warning's first `quoted` word).
            found.retain(|w| said.insert(w.split('`').nth(1).unwrap_or(w).to_string()));
            warnings.extend(found);
            files.insert(deploy.at.version.clone(), deploy.chart.path.clone());
            if Some(deploy.at.step) == hop.rendered_step() {
                last = Some(deploy);
            } else {
                other_deploys.push(DeployCheck {
                    step: deploy.at.step,
                    version: deploy.at.version.clone(),
                    chart_digest: deploy.chart.digest.clone(),
                    values_digest: json_sha256(&deploy.rendered.values),
                });
            }
        }
        let Some(last) = last else { continue };
        let render = &last.rendered;
        let changes = match opts.diff {
            DiffDetail::None => None,
            detail => Some(changes(&before, render, detail, hop, &secrets)?),
        };
        before = (render.manifest.clone(), render.values.clone());
        hop.check = Some(HopCheck {
            chart_digest: last.chart.digest.clone(),
            values_digest: json_sha256(&render.values),
            values_keys: chart_values::leaf_keys(&render.values),
            values_view: Some(secrets.mask_values(&render.values)),
            warnings,
            changes,
            other_deploys,
        });
    }
    Ok(Checked { chart: ChartArg::Cached { files, source: Box::new(facts.offer.chart.clone()) } })
}

/// Why the hops are not rendered, or None when they are.
fn skipped(plan: &Plan, opts: &RunOptions) -> Option<String> {
    if opts.no_preflight {
        return Some("--no-preflight: no hop was rendered before the first change".into());
    }
    if plan.direction == Direction::Rollback {
        // A rollback's hop redeploys a version the release ran (or a revision of its
        // history); the policy's down-migration is what needs care, not the render.
        return Some("a rollback's hop is not rendered before it starts".into());
    }
    None
}

/// Where a `helm upgrade` of the plan is: its hop, its step, the version it deploys.
#[derive(Clone)]
struct At {
    hop: usize,
    step: usize,
    version: ChartVersion,
}

/// A deploy as the preflight found it: the archive it deploys and what helm rendered.
struct Prepared {
    at: At,
    chart: CachedChart,
    rendered: Rendered,
}

/// A deploy's values as helm merges them: the carried values as its version reads them,
/// the operator's `-f`/`--set` (the same at every deploy), and the procedure's `set:`.
#[derive(Clone, PartialEq)]
struct MergeOf {
    carried: Value,
    step: serde_json::Map<String, Value>,
}

/// A deploy to render: where it is, the values it deploys, and what they are merged of.
struct Job {
    at: At,
    values: DeployValues,
    merge: MergeOf,
}

/// How a deploy was rendered. `helm template` with the cluster's capabilities by default;
/// `helm upgrade --dry-run=server` for a chart that may `lookup` live objects, which
/// only the cluster shows (and which also answers with helm's merge of the values).
enum Render {
    Offline(String),
    OnCluster(Rendered),
}

/// Every `helm upgrade` of the plan rendered, in the plan's order: each hop's deploy of
/// its target, and a procedure's deploy of the hop's start (BSR's maintenance mode) too.
/// Each version is fetched once, the versions in parallel, and its deploys rendered as
/// soon as it is there; helm merges the values no [`Probe`] merged meanwhile. A hop's
/// start that no step deploys is not pulled: the way back deploys it from the source, as
/// it would without a preflight (one process per hop saved on every run, for a path
/// rarely taken). A target the run fetched already (to read the policy its chart ships)
/// is not pulled again.
fn prepare_all(
    plan: &Plan,
    facts: &Facts,
    tools: &Tools,
    start: &StartValues,
    charts: &RunCharts,
    work: &Path,
) -> Result<Vec<Prepared>, RunError> {
    let by_version = jobs(plan, start, work)?;
    let mut merged = known_merges(&by_version, start, facts.probe.as_ref());
    let (mut results, echoed) = render_and_merge(&by_version, &merged, facts, tools, charts, work)?;
    let mut merge_failures = Vec::new();
    for (merge, result) in echoed {
        match result {
            Ok(values) => merged.push((merge, values)),
            Err(error) => merge_failures.push((merge, Box::new(error))),
        }
    }
    // Said in the plan's order: the first hop that fails is the one named.
    results.sort_by_key(|(at, ..)| (at.hop, at.step));
    let mut out = Vec::new();
    for (at, merge, result) in results {
        let rendered = result.and_then(|(chart, render)| match render {
            Render::OnCluster(rendered) => Ok((chart, rendered)),
            Render::Offline(manifest) => match merged.iter().find(|(m, _)| *m == merge) {
                Some((_, values)) => Ok((chart, Rendered { manifest, values: values.clone() })),
                // Every merge not known is one helm was asked for: this one failed.
                None => {
                    let at = merge_failures.iter().position(|(m, _)| *m == merge).expect("a merge helm was asked for");
                    Err(Failure::Merge(merge_failures.swap_remove(at).1))
                }
            },
        });
        match rendered {
            Ok((chart, rendered)) => out.push(Prepared { at, chart, rendered }),
            Err(failure) => return Err(failed(&at, failure, plan, facts, start)),
        }
    }
    Ok(out)
}

/// Each deploy of the plan with the values it deploys, grouped by the version it deploys.
fn jobs(plan: &Plan, start: &StartValues, work: &Path) -> Result<Vec<(ChartVersion, Vec<Job>)>, RunError> {
    let mut by_version: Vec<(ChartVersion, Vec<Job>)> = Vec::new();
    for (i, hop) in plan.hops.iter().enumerate() {
        for (n, version, set) in hop.upgrades() {
            let (values, carried) = deploy_values(plan, i, n, version, set, start, work)?;
            let job = Job {
                at: At { hop: i, step: n, version: version.clone() },
                values,
                merge: MergeOf { carried, step: set.clone() },
            };
            match by_version.iter_mut().find(|(v, _)| v == version) {
                Some((_, jobs)) => jobs.push(job),
                None => by_version.push((version.clone(), vec![job])),
            }
        }
    }
    Ok(by_version)
}

/// A deploy rendered (or why not), with what its values are merged of.
type Done = (At, MergeOf, Result<(CachedChart, Render), Failure>);
/// helm's merge of a deploy's values.
type Merged = (MergeOf, Result<Value, ExecError>);

/// Every version fetched and its deploys rendered, and helm's merge of every values not
/// `known`, all at once.
fn render_and_merge(
    by_version: &[(ChartVersion, Vec<Job>)],
    known: &[(MergeOf, Value)],
    facts: &Facts,
    tools: &Tools,
    charts: &RunCharts,
    work: &Path,
) -> Result<(Vec<Done>, Vec<Merged>), RunError> {
    let mut to_merge: Vec<(&MergeOf, &DeployValues)> = Vec::new();
    for job in by_version.iter().flat_map(|(_, jobs)| jobs) {
        let merge = &job.merge;
        if !known.iter().any(|(m, _)| m == merge) && !to_merge.iter().any(|(m, _)| *m == merge) {
            to_merge.push((merge, &job.values));
        }
    }
    let echo = match to_merge.is_empty() {
        true => None,
        false => Some(
            EchoChart::write(work).map_err(|e| RunError::Other(format!("cannot write the preflight's chart: {e}")))?,
        ),
    };
    let capabilities = facts.probe.as_ref().and_then(|p| p.capabilities.as_ref());
    let (release, source) = (&facts.release.name, &facts.offer.chart);
    let work: Vec<Work> = to_merge
        .into_iter()
        .map(|(merge, values)| Work::Merge(merge, values))
        .chain(by_version.iter().map(|(version, jobs)| Work::Render(version, jobs)))
        .collect();
    let (mut rendered, mut merged) = (Vec::new(), Vec::new());
    let worked = crate::run::parallel::in_parallel(&work, helm_processes_at_once(), |work| match work {
        Work::Merge(merge, values) => {
            let echo = echo.as_ref().expect("written when there is something to merge");
            let purpose = format!("merge the values of {release} (preflight)");
            Worked::Merged(((*merge).clone(), tools.helm.merge(purpose, release, echo, values)))
        }
        Work::Render(version, jobs) => {
            let chart = charts.fetch(&tools.helm, source, version);
            // Read once for the version's deploys, and only for an offline render.
            let words = chart.as_ref().ok().filter(|_| capabilities.is_some()).map(|c| chart_words(&c.path));
            let done = jobs.iter().map(|job| {
                let result = chart.clone().map_err(Failure::Fetch).and_then(|chart| {
                    let offline = capabilities.zip(words.as_ref());
                    let render = render(tools, release, &chart.path, job, offline)?;
                    Ok((chart, render))
                });
                (job.at.clone(), job.merge.clone(), result)
            });
            Worked::Rendered(done.collect())
        }
    });
    for worked in worked {
        match worked {
            Worked::Merged(one) => merged.push(one),
            Worked::Rendered(done) => rendered.extend(done),
        }
    }
    Ok((rendered, merged))
}

/// A helm process's work in the preflight: a merge of values, or a version fetched and
/// each of its deploys rendered.
enum Work<'a> {
    Merge(&'a MergeOf, &'a DeployValues),
    Render(&'a ChartVersion, &'a [Job]),
}

/// What a [`Work`] gave.
enum Worked {
    Merged(Merged),
    Rendered(Vec<Done>),
}

/// How many of the preflight's helm processes run at once: one per core, and at least
/// four, so a plan of a few hops renders them all at once (the benchmark's three); a plan
/// of many hops does not start a helm per hop at once, each holding up to its
/// `GOMEMLIMIT` ([`crate::helm`]'s `rendering`).
fn helm_processes_at_once() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get().max(4))
}

/// The [`Probe`]'s merge of the first values, when it merged the overrides this run
/// deploys (a resumed run's come from its backup).
fn first_values<'a>(probe: Option<&'a Probe>, start: &StartValues) -> Option<&'a super::probe::FirstValues> {
    probe.and_then(|p| p.first_values.as_ref()).filter(|f| f.overrides == *start.overrides)
}

/// The merges known without another helm process: each deploy's, when the operator gave
/// no `-f`/`--set` (every file is then JSON this tool wrote: [`merged_json_files`]), and
/// the [`Probe`]'s, for the deploys that start from the run's first values.
fn known_merges(
    by_version: &[(ChartVersion, Vec<Job>)],
    start: &StartValues,
    probe: Option<&Probe>,
) -> Vec<(MergeOf, Value)> {
    let first = first_values(probe, start);
    let mut known: Vec<(MergeOf, Value)> = Vec::new();
    for job in by_version.iter().flat_map(|(_, jobs)| jobs) {
        let merge = &job.merge;
        if known.iter().any(|(m, _)| m == merge) {
            continue;
        }
        if start.overrides.is_empty() {
            let step = Value::Object(merge.step.clone());
            known.push((merge.clone(), merged_json_files(&[&merge.carried, &step])));
        } else if let Some(Some(values)) =
            first.filter(|f| merge.step.is_empty() && f.carried == merge.carried).map(|f| f.merged.as_ref().ok())
        {
            known.push((merge.clone(), values.clone()));
        }
    }
    known
}

/// Render one deploy of the archive at `chart`: offline with the cluster's capabilities
/// (`offline`, with what the chart's files say: None when the capabilities could not be
/// read), or on the cluster when the chart may `lookup` live objects, when it
/// reads the Kubernetes version and `--kube-version` cannot say the cluster's exactly,
/// when the capabilities could not be read, or to confirm an offline failure. A hop is
/// refused for what the cluster's render says, never for a difference between the two (a
/// Kubernetes version helm cannot parse as a flag, an API only helm's built-in list has).
fn render(
    tools: &Tools,
    release: &str,
    chart: &Path,
    job: &Job,
    offline: Option<(&crate::helm::Capabilities, &ChartWords)>,
) -> Result<Render, Failure> {
    let purpose = format!("render {release} at {} (preflight)", job.at.version);
    let offline = offline.filter(|(capabilities, words)| {
        let reads = words.reads(|word| values_mention(&job.values, word));
        !reads.lookup && (!reads.kube_version || capabilities.kube_version_told_exactly())
    });
    if let Some((capabilities, _)) = offline {
        let offline = tools.helm.template(purpose.clone(), release, chart, &job.values, capabilities);
        if let Ok(manifest) = offline {
            return Ok(Render::Offline(manifest));
        }
    }
    tools
        .helm
        .render(purpose, release, chart, &job.values)
        .map(Render::OnCluster)
        .map_err(|error| Failure::Render { error: Box::new(error), schema: broken_schema(chart) })
}

/// Whether a deploy's values hold `word` (`lookup`), which a chart's `tpl` may render as
/// a call: its values files (the run's own and the operator's), its set-lines and the
/// files `--set-file` reads. What cannot be read counts: rendered on the cluster.
fn values_mention(values: &DeployValues, word: &str) -> bool {
    let bytes_of = word.as_bytes();
    let mentions =
        |path: &Path| std::fs::read(path).map_or(true, |bytes| bytes.windows(bytes_of.len()).any(|w| w == bytes_of));
    let read = |set: &crate::setvalues::SetArg| {
        set.kind == crate::setvalues::SetKind::SetFile
            && set.parse().map_or(true, |all| all.iter().any(|a| mentions(Path::new(&a.value))))
    };
    values.files.iter().chain(&values.step_file).any(|f| mentions(f))
        || values.sets.iter().any(|set| set.text.contains(word) || read(set))
}

/// What a deploy that could not be prepared stops the run with, nothing changed: a
/// release another operation is changing, the operator's `-f` file helm cannot read, a
/// hop that does not render, or a chart that cannot be fetched.
fn failed(at: &At, failure: Failure, plan: &Plan, facts: &Facts, start: &StartValues) -> RunError {
    let name = &facts.release.name;
    let chart_name = &facts.release.chart_name;
    match failure {
        Failure::Render { error, schema } => {
            if let Some(moving) = in_motion(name, facts.ledger.as_ref(), &error) {
                return moving;
            }
            if let Some(bad_file) = unreadable_values(&error, &start.overrides.files) {
                return bad_file;
            }
            refusal(at, &plan.hops[at.hop], chart_name, &error, schema)
        }
        Failure::Merge(error) => unreadable_values(&error, &start.overrides.files).unwrap_or_else(|| {
            RunError::Other(format!(
                "cannot merge the values of {name} for the preflight: {}\nhint: --no-preflight skips the preflight",
                said_or_all(&error)
            ))
        }),
        Failure::Fetch(e) => RunError::Other(format!(
            "cannot fetch {chart_name} {} for the preflight: {e}\nhint: check the chart source; --no-preflight skips the preflight",
            at.version
        )),
    }
}

/// Why a deploy could not be prepared.
enum Failure {
    Fetch(String),
    /// helm's error, and why the chart's `values.schema.json` cannot be read, if it cannot
    /// (helm then fails with its "values don't meet the schema" words too).
    Render {
        error: Box<ExecError>,
        schema: Option<String>,
    },
    /// helm could not merge the deploy's values (the operator's `-f` file, most likely).
    Merge(Box<ExecError>),
}

/// Why the chart archive's `values.schema.json` is not a JSON document (None: it is, or
/// there is none).
fn broken_schema(archive: &std::path::Path) -> Option<String> {
    let files = crate::catalog::dir::top_files(archive, &["values.schema.json"]).ok()?;
    let (_, text) = files.first()?;
    serde_json::from_str::<Value>(text).err().map(|e| format!("line {}, column {}: {e}", e.line(), e.column()))
}

/// The values of step `n` of hop `i`, a `helm upgrade` of `version`, as the walk passes
/// them (its values files written into `work`): the carried values as that version reads
/// them, the operator's overrides, the procedure's own `set:`.
fn deploy_values(
    plan: &Plan,
    i: usize,
    n: usize,
    version: &ChartVersion,
    set: &serde_json::Map<String, Value>,
    start: &StartValues,
    work: &Path,
) -> Result<(DeployValues, Value), RunError> {
    let private = |name: String, value: &Value| -> Result<PathBuf, RunError> {
        let path = work.join(name);
        super::private::write_values(&path, value).map_err(|e| RunError::Other(format!("preflight: {e}")))?;
        Ok(path)
    };
    let carried = crate::plan::values::carried_for(&plan.hops, i, version, plan.direction, start.carried)
        .map_err(|e| RunError::Other(format!("preflight: the values of hop {}: {e}", i + 1)))?;
    let mut files = vec![private(format!("carried-hop-{}-step-{}.json", i + 1, n + 1), &carried)?];
    files.extend(start.overrides.files.iter().cloned());
    let step_file = match set.is_empty() {
        true => None,
        false => Some(private(format!("procedure-hop-{}-step-{}.json", i + 1, n + 1), &Value::Object(set.clone()))?),
    };
    Ok((DeployValues { files, sets: start.overrides.sets.clone(), step_file }, carried))
}

/// The refusal of the operator's `-f` file helm could not read as values, if that is why
/// `error` happened.
fn unreadable_values(error: &ExecError, files: &[PathBuf]) -> Option<RunError> {
    unreadable_file(error, files).map(|file| {
        bad(
            format!(
                "-f {}: helm cannot read it as values; nothing was changed\nhelm: {}",
                file.display(),
                helm_said(error)
            ),
            "fix the file (helm reads YAML 1.1, and wants a mapping at the top) and run again",
        )
    })
}

/// An `-f` file helm cannot read, as the probe's merge of the first values found it (a
/// `helm template` of the tool's own chart: no chart source, no cluster), refused before
/// any chart is fetched; and without the preflight, before the first hop's `helm
/// upgrade` would fail on it.
fn refuse_unreadable_overrides(probe: Option<&Probe>, start: &StartValues) -> Result<(), RunError> {
    match first_values(probe, start).map(|f| &f.merged) {
        Some(Err(Some(error))) => unreadable_values(error, &start.overrides.files).map_or(Ok(()), Err),
        _ => Ok(()),
    }
}

/// The operator's `-f` file helm could not read as values, if that is why it failed
/// (helm 3 and 4: `failed to parse FILE: …`, before it reads the chart or the cluster):
/// the operator's input is wrong, not the hop, whichever hop found it first.
fn unreadable_file<'f>(error: &crate::helm::ExecError, files: &'f [PathBuf]) -> Option<&'f Path> {
    let said = error.stderr();
    files.iter().find(|f| said.contains(&format!("failed to parse {}: ", f.display()))).map(PathBuf::as_path)
}

/// helm refuses to upgrade (even to dry-run) a release another operation is changing, a
/// revision `pending-*`, in these words (helm 3 and 4).
const ANOTHER_OPERATION: &str = "another operation (install/upgrade/rollback) is in progress";

/// Why a render failed when another run's hop (or a helm command) began changing the
/// release after it was read: a release in motion, not a chart that fails, so not a
/// refusal with a hint about chart values. Who holds the lock is said, if anyone does.
fn in_motion(
    release: &str,
    ledger: Option<&super::ledger::Ledger>,
    error: &crate::helm::ExecError,
) -> Option<RunError> {
    if !error.stderr().contains(ANOTHER_OPERATION) {
        return None;
    }
    let lock = ledger.and_then(super::ledger::lock::held_note);
    Some(RunError::Other(format!(
        "{release} is being changed by another helm operation right now{}; this run changed nothing\nhint: plan again when that operation has ended",
        lock.map(|note| format!(" ({note})")).unwrap_or_default()
    )))
}

/// What helm said of a failed render, without the `Error: ` and `UPGRADE FAILED: ` it
/// puts before every message.
fn helm_said(error: &crate::helm::ExecError) -> &str {
    let said = error.stderr().trim();
    let said = said.strip_prefix("Error: ").unwrap_or(said);
    said.strip_prefix("UPGRADE FAILED: ").unwrap_or(said)
}

/// What helm said of a failure, or the whole error when helm said nothing (it could not
/// be started, or ran too long).
fn said_or_all(error: &ExecError) -> String {
    match helm_said(error) {
        "" => error.to_string(),
        said => said.to_string(),
    }
}

/// helm says the values do not meet the chart's schema in these words (helm 3 and 4).
const SCHEMA_REJECTS: &str = "values don't meet the specifications of the schema";

/// A hop that does not render refuses the whole plan: `values-schema` when the chart's
/// schema rejects the values — or is itself broken (`broken`: why it is not JSON), which
/// helm reports in the same words, but which no change of values can mend — `render` for
/// any other failure. A deploy the hop's procedure adds (BSR's maintenance mode at
/// `from`) is named as such, with the keys its `set:` gives: those come from the policy,
/// not from the operator's values.
fn refusal(at: &At, hop: &Hop, chart: &str, error: &crate::helm::ExecError, broken: Option<String>) -> RunError {
    let version = &at.version;
    let said = helm_said(error);
    let procedure_set = match hop.rendered_step() == Some(at.step) {
        true => None,
        false => Some(
            hop.upgrades()
                .find(|(n, ..)| *n == at.step)
                .map(|(_, _, set)| set.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    };
    let deploy = match &procedure_set {
        None => "the values this hop would deploy".to_string(),
        Some(keys) if keys.is_empty() => format!("the values the procedure's step {} would deploy", at.step + 1),
        Some(keys) => format!(
            "the values the procedure's step {} would deploy (its `set:` gives {})",
            at.step + 1,
            keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    let (rule, what, supported) = if let Some(why) = broken {
        (
            "values-schema",
            format!("{chart} {version}'s values.schema.json is not valid JSON ({why}): the chart is broken"),
            "no values can mend it: tell the chart's vendor, and stop before this version with --to",
        )
    } else if said.contains(SCHEMA_REJECTS) {
        (
            "values-schema",
            format!("{chart} {version}'s values.schema.json rejects {deploy}"),
            "change the values with -f/--set (or a `rename`, `remove` or `set` value rule in the policy, for what the vendor's notes say changed) and plan again",
        )
    } else if procedure_set.is_some() {
        (
            "render",
            format!("{chart} {version} does not render with {deploy}"),
            "helm's message names the template and the value: fix the procedure's `set:` in the policy, or the values it meets; `--no-preflight` skips rendering (not advised)",
        )
    } else {
        (
            "render",
            format!("{chart} {version} does not render with {deploy}"),
            "read helm's message: usually a value the new chart requires (`--set KEY=VALUE`); `--no-preflight` skips rendering (not advised)",
        )
    };
    let said = said_or_all(error);
    refused(
        rule,
        format!("hop {} ({} → {}): {what}; nothing was changed\nhelm: {said}", at.hop + 1, hop.from, hop.to),
        supported,
    )
}

/// The user values against the chart's own `values.yaml` and `values.schema.json`.
fn against_chart(
    values: &Value,
    chart: &CachedChart,
    name: &str,
    version: &ChartVersion,
) -> Result<Vec<String>, RunError> {
    let files = crate::catalog::dir::top_files(&chart.path, &["values.yaml", "values.schema.json"])
        .map_err(|e| RunError::Other(format!("cannot read {}: {e}", chart.path.display())))?;
    let file = |suffix: &str| files.iter().find(|(p, _)| p.ends_with(suffix)).map(|(_, t)| t.as_str());
    let defaults: Value = match file("/values.yaml") {
        Some(text) => serde_saphyr::from_str(text).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let defaults = if defaults.is_null() { Value::Object(Default::default()) } else { defaults };
    let schema: Option<Value> = match file("/values.schema.json") {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            refused(
                "values-schema",
                format!("{name} {version}'s values.schema.json is not valid JSON: {e}"),
                "the chart is broken: ask its vendor, or stop before this version with --to",
            )
        })?),
        None => None,
    };
    let about = ChartValues { chart: format!("{name} {version}"), defaults: &defaults, schema: schema.as_ref() };
    Ok(chart_values::check(values, &about))
}

/// What a hop changes: the resources and the values keys, and with `--diff=full` the
/// unified diff; `secrets` (those of every values the run sees, so of either side too)
/// masked.
fn changes(
    before: &(String, Value),
    after: &Rendered,
    detail: DiffDetail,
    hop: &Hop,
    secrets: &Secrets,
) -> Result<HopChanges, RunError> {
    let cannot = |e: crate::diff::DiffError| {
        RunError::Other(format!("cannot compare what hop {} → {} renders: {e}", hop.from, hop.to))
    };
    let manifests = ManifestDiff::between(&before.0, &after.manifest, secrets).map_err(cannot)?;
    let values = crate::diff::values_changes(&before.1, &after.values, secrets).iter().map(|c| c.redacted()).collect();
    let unified = match detail {
        DiffDetail::Full => Some(crate::diff::unified(&before.0, &after.manifest, secrets, 3).map_err(cannot)?),
        _ => None,
    };
    Ok(HopChanges { manifests, values, unified })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::dir::testing::tgz;
    use crate::plan::{Available, Context, Refusal, UpgradeRequest};

    fn archive(dir: &std::path::Path, schema: Option<&str>) -> std::path::PathBuf {
        let mut files = vec![("Chart.yaml", "name: app\nversion: 1.1.0\n"), ("values.yaml", "a: 1\n")];
        files.extend(schema.map(|s| ("values.schema.json", s)));
        let path = dir.join(format!("app-{}.tgz", schema.map_or(0, str::len)));
        std::fs::write(&path, tgz("app", &files)).unwrap();
        path
    }

    fn helm_says(stderr: &str) -> crate::helm::ExecError {
        crate::helm::ExecError::Failed {
            purpose: "render".into(),
            argv: crate::disclose::Argv::new("helm", &[]),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
            stdout: String::new(),
        }
    }

    fn hop() -> Hop {
        let policy = crate::policy::presets::for_chart("app");
        let available: Vec<Available> =
            ["1.0.0", "1.1.0"].iter().map(|v| Available::new(ChartVersion::parse(v).unwrap())).collect();
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        let request = UpgradeRequest { current: v("1.0.0"), target: v("1.1.0"), fast_path: false, devel: false };
        crate::plan::plan_upgrade(&policy, &available, &request, &Context::default()).unwrap().hops.remove(0)
    }

    /// The hop's own deploy of its target.
    fn target() -> At {
        let hop = hop();
        At { hop: 0, step: hop.rendered_step().unwrap(), version: hop.to }
    }

    fn job(carried: Value, step: Value) -> Job {
        let step = step.as_object().cloned().unwrap_or_default();
        let values = DeployValues { files: vec![], sets: vec![], step_file: None };
        Job { at: target(), values, merge: MergeOf { carried, step } }
    }

    #[test]
    fn helm_is_asked_to_merge_only_what_the_run_cannot_know() {
        let carried = serde_json::json!({"db": {"host": "a", "port": 5432}, "replicas": 2.0});
        let renamed = serde_json::json!({"database": {"host": "a", "port": 5432}, "replicas": 2.0});
        let maintenance = serde_json::json!({"maintenance": true});
        let jobs = vec![
            job(carried.clone(), Value::Null),
            job(carried.clone(), maintenance.clone()),
            job(renamed.clone(), Value::Null),
            job(carried.clone(), Value::Null),
        ];
        let by_version = vec![(target().version, jobs)];
        // No -f/--set: every file is the run's own JSON, merged here, numbers as helm
        // holds them; each distinct merge once.
        let none = Overrides::default();
        let start = StartValues { carried: &carried, overrides: &none };
        let known = known_merges(&by_version, &start, None);
        assert_eq!(known.len(), 3);
        assert_eq!(known[0].1, serde_json::json!({"db": {"host": "a", "port": 5432}, "replicas": 2}));
        assert_eq!(known[1].1["maintenance"], true);
        assert_eq!(known[2].1["database"]["host"], "a");
        // With -f: the probe's merge serves the deploys that start from its values; the
        // others are left to helm.
        let overrides = Overrides { files: vec!["values.yaml".into()], sets: vec![] };
        let start = StartValues { carried: &carried, overrides: &overrides };
        let first = |carried: &Value| super::super::probe::FirstValues {
            carried: carried.clone(),
            overrides: overrides.clone(),
            merged: Ok(serde_json::json!({"db": {"host": "b"}})),
        };
        let probe = |first_values| Probe { capabilities: None, first_values };
        let known = known_merges(&by_version, &start, Some(&probe(Some(first(&carried)))));
        assert_eq!(known.len(), 1);
        assert!(known[0].0.step.is_empty() && known[0].0.carried == carried);
        assert_eq!(known[0].1, serde_json::json!({"db": {"host": "b"}}));
        // A probe of other values (a resumed run's) serves none.
        let other = first(&serde_json::json!({"replicas": 3}));
        assert!(known_merges(&by_version, &start, Some(&probe(Some(other)))).is_empty());
        assert!(known_merges(&by_version, &start, Some(&probe(None))).is_empty());
    }

    #[test]
    fn a_lookup_in_the_values_is_found_wherever_helm_reads_them() {
        use crate::setvalues::{SetArg, SetKind};
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap();
            dir.path().join(name)
        };
        let (plain, calls) = (file("plain.yaml", "a: b\n"), file("calls.yaml", "a: '{{ lookup \"v1\" }}'\n"));
        let values = |files: Vec<PathBuf>, sets: Vec<SetArg>, step_file| DeployValues { files, sets, step_file };
        assert!(!values_mention(&values(vec![plain.clone()], vec![SetArg::new(SetKind::Set, "a=b")], None), "lookup"));
        assert!(values_mention(&values(vec![plain.clone(), calls.clone()], vec![], None), "lookup"));
        assert!(values_mention(&values(vec![plain.clone()], vec![], Some(calls.clone())), "lookup"));
        assert!(values_mention(
            &values(vec![], vec![SetArg::new(SetKind::SetString, "a={{ lookup }}")], None),
            "lookup"
        ));
        let set_file = |path: &Path| SetArg::new(SetKind::SetFile, format!("a={}", path.display()));
        assert!(!values_mention(&values(vec![], vec![set_file(&plain)], None), "lookup"));
        assert!(values_mention(&values(vec![], vec![set_file(&calls)], None), "lookup"));
        // What cannot be read counts: the render is then made on the cluster.
        assert!(values_mention(&values(vec![dir.path().join("gone.yaml")], vec![], None), "lookup"));
    }

    #[test]
    fn a_few_hops_render_all_at_once() {
        assert!(helm_processes_at_once() >= 4);
    }

    #[test]
    fn a_broken_schema_is_the_charts_fault_not_the_values() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(broken_schema(&archive(dir.path(), None)), None);
        assert_eq!(broken_schema(&archive(dir.path(), Some(r#"{"type":"object"}"#))), None);
        let why = broken_schema(&archive(dir.path(), Some("{\n  \"type\": \"object\",\n"))).expect("broken");
        assert!(why.starts_with("line 3, column 0: EOF"), "{why}");
        // helm says the same words for both; the broken schema decides.
        let words = "Error: UPGRADE FAILED: values don't meet the specifications of the schema(s) in the following chart(s):\napp:\nunexpected EOF";
        let RunError::Refused(Refusal { rule, message, supported }) =
            refusal(&target(), &hop(), "app", &helm_says(words), Some(why))
        else {
            panic!("a refusal")
        };
        assert_eq!(rule, "values-schema");
        assert!(message.contains("app 1.1.0's values.schema.json is not valid JSON (line 3"), "{message}");
        assert!(supported.starts_with("no values can mend it"), "{supported}");
        let RunError::Refused(Refusal { message, supported, .. }) =
            refusal(&target(), &hop(), "app", &helm_says(words), None)
        else {
            panic!("a refusal")
        };
        assert!(message.contains("rejects the values"), "{message}");
        assert!(supported.starts_with("change the values"), "{supported}");
        let RunError::Refused(Refusal { rule, .. }) =
            refusal(&target(), &hop(), "app", &helm_says("Error: template: x"), None)
        else {
            panic!("a refusal")
        };
        assert_eq!(rule, "render");
    }

    #[test]
    fn a_release_another_operation_is_changing_is_in_motion_not_unrenderable() {
        let busy = helm_says("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress");
        assert!(in_motion("bsr", None, &helm_says("Error: template: x")).is_none());
        let Some(RunError::Other(said)) = in_motion("bsr", None, &busy) else { panic!("in motion") };
        assert!(
            said.starts_with("bsr is being changed by another helm operation right now; this run changed nothing"),
            "{said}"
        );
        assert!(said.ends_with("hint: plan again when that operation has ended"), "{said}");
        // With the ledger's lock held elsewhere, its holder is named.
        let mut ledger = crate::run::ledger::Ledger::new("bsr", "bsr");
        ledger.lock = Some(crate::run::ledger::Lock {
            holder: "ops@elsewhere pid 42".into(),
            since: "2026-11-30T23:00:00Z".into(),
            command: "bsr --to 1.3.2 --yes".into(),
            plan: Some("upgrade 1.0.4 → 1.3.2 (3 hops)".into()),
            process: None,
        });
        let Some(RunError::Other(said)) = in_motion("bsr", Some(&ledger), &busy) else { panic!("in motion") };
        assert!(
            said.contains("right now (bsr is locked by ops@elsewhere pid 42 since 2026-11-30T23:00:00Z (upgrade 1.0.4 → 1.3.2 (3 hops)): a run started now is refused (wait for that run to finish"),
            "{said}"
        );
    }

    #[test]
    fn a_procedures_deploy_that_does_not_render_is_named_with_the_keys_its_set_gives() {
        let mut hop = hop();
        let set = serde_json::json!({"maintenance": true, "image": "none"}).as_object().unwrap().clone();
        hop.steps.insert(0, crate::plan::Step::Deploy { version: hop.from.clone(), set, revision: None });
        let at = At { hop: 0, step: 0, version: hop.from.clone() };
        let RunError::Refused(Refusal { rule, message, supported }) =
            refusal(&at, &hop, "app", &helm_says("Error: template: x: can't evaluate field repository"), None)
        else {
            panic!("a refusal")
        };
        assert_eq!(rule, "render");
        assert!(
            message.starts_with(
                "hop 1 (1.0.0 → 1.1.0): app 1.0.0 does not render with the values the procedure's step 1 would deploy (its `set:` gives `image`, `maintenance`); nothing was changed"
            ),
            "{message}"
        );
        assert!(message.ends_with("helm: template: x: can't evaluate field repository"), "{message}");
        assert!(supported.contains("fix the procedure's `set:` in the policy"), "{supported}");
        // The hop's own deploy, after it, is the hop's.
        let own = At { hop: 0, step: hop.rendered_step().unwrap(), version: hop.to.clone() };
        let RunError::Refused(Refusal { message, .. }) = refusal(&own, &hop, "app", &helm_says("Error: x"), None)
        else {
            panic!("a refusal")
        };
        assert!(message.contains("app 1.1.0 does not render with the values this hop would deploy"), "{message}");
    }
}
