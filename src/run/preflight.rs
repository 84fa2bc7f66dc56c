//! Between deciding and executing: every hop checked before the first change.
//!
//! ```text
//! Plan ─ pull each version once (digest-checked cache) ─ render each hop ─▶ Plan with a HopCheck per hop
//!                                                                          + the chart the walk deploys
//! ```
//!
//! Each `helm upgrade` of each hop (its deploy of the target, and a procedure's deploy of
//! the hop's start, like BSR's maintenance mode) is rendered by helm itself, `helm upgrade
//! --dry-run=server -o json`, with exactly the values it deploys (the carried values as
//! its version reads them after the policy's value rules, the operator's `-f`/`--set`,
//! the procedure's own `set:`), the release's name and namespace. `--dry-run=server`
//! rather than `helm template`: it renders against the cluster (`lookup` finds real objects; `.Capabilities` are the cluster's, kinds
//! included) through the same code path as the upgrade, and it answers with helm's own
//! merge of the values (`config`), so the values digest and the check against the chart
//! need no second implementation of helm's merge. It costs more than `helm template`
//! (README, "Benchmark"); hops are rendered in parallel. Neither validates the objects
//! on the server. A chart that does not render, or whose `values.schema.json` rejects
//! the values, refuses the plan before anything changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{RunError, bad, refused};
use super::gather::{Facts, Tools};
use super::options::{DiffDetail, RunOptions};
use super::values::Overrides;
use crate::catalog::ChartArg;
use crate::catalog::cache::{CachedChart, RunCharts};
use crate::diff::{ManifestDiff, Secrets};
use crate::digest::json_sha256;
use crate::helm::{DeployValues, Rendered};
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
    if let Some(why) = skipped(plan, opts) {
        plan.not_rendered = Some(why);
        return Ok(Checked { chart: facts.offer.chart.clone() });
    }
    let work = dir("values")?;
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

/// A private folder of the run (0700; removed when dropped): the values files of the
/// renders.
fn dir(what: &str) -> Result<tempfile::TempDir, RunError> {
    tempfile::Builder::new().prefix(&format!("helm-safe-upgrade-{what}-")).tempdir().map_err(|e| {
        RunError::Other(format!(
            "cannot make a private folder for the preflight's {what}: {e}\nhint: set TMPDIR to a writable folder"
        ))
    })
}

/// Where a `helm upgrade` of the plan is: its hop, its step, the version it deploys.
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

/// Every `helm upgrade` of the plan rendered, in the plan's order: each hop's deploy of
/// its target, and a procedure's deploy of the hop's start (BSR's maintenance mode) too.
/// Each version is fetched once, the versions in parallel, and its deploys rendered as
/// soon as it is there. A hop's start that no step deploys is not pulled: the way back
/// deploys it from the source, as it would without a preflight (one process per hop
/// saved on every run, for a path rarely taken). A target the run fetched already (to
/// read the policy its chart ships) is not pulled again.
fn prepare_all(
    plan: &Plan,
    facts: &Facts,
    tools: &Tools,
    start: &StartValues,
    charts: &RunCharts,
    work: &Path,
) -> Result<Vec<Prepared>, RunError> {
    // Each deploy with the values it deploys, grouped by the version it deploys.
    let mut by_version: Vec<(ChartVersion, Vec<(At, DeployValues)>)> = Vec::new();
    for (i, hop) in plan.hops.iter().enumerate() {
        for (n, version, set) in hop.upgrades() {
            let values = deploy_values(plan, i, n, version, set, start, work)?;
            let job = (At { hop: i, step: n, version: version.clone() }, values);
            match by_version.iter_mut().find(|(v, _)| v == version) {
                Some((_, jobs)) => jobs.push(job),
                None => by_version.push((version.clone(), vec![job])),
            }
        }
    }
    let (release, source) = (&facts.release.name, &facts.offer.chart);
    type Done = (At, Result<(CachedChart, Rendered), Failure>);
    let results: Vec<Vec<Done>> = std::thread::scope(|scope| {
        let handles: Vec<_> = by_version
            .into_iter()
            .map(|(version, jobs)| {
                scope.spawn(move || {
                    let chart = charts.fetch(&tools.helm, source, &version);
                    jobs.into_iter()
                        .map(|(at, values)| {
                            let result = chart.clone().map_err(Failure::Fetch).and_then(|chart| {
                                let purpose = format!("render {release} at {} (preflight)", at.version);
                                let rendered =
                                    tools.helm.render(purpose, release, &chart.path, &values).map_err(|error| {
                                        Failure::Render { error: Box::new(error), schema: broken_schema(&chart.path) }
                                    })?;
                                Ok((chart, rendered))
                            });
                            (at, result)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a preflight thread does not panic")).collect()
    });
    let mut results: Vec<Done> = results.into_iter().flatten().collect();
    // Said in the plan's order: the first hop that fails is the one named.
    results.sort_by_key(|(at, _)| (at.hop, at.step));
    let mut out = Vec::new();
    for (at, result) in results {
        match result {
            Ok((chart, rendered)) => out.push(Prepared { at, chart, rendered }),
            Err(failure) => return Err(failed(&at, failure, plan, facts, start)),
        }
    }
    Ok(out)
}

/// What a deploy that could not be prepared stops the run with, nothing changed: a
/// release another operation is changing, the operator's `-f` file helm cannot read, a
/// hop that does not render, or a chart that cannot be fetched.
fn failed(at: &At, failure: Failure, plan: &Plan, facts: &Facts, start: &StartValues) -> RunError {
    let name = &facts.release.chart_name;
    match failure {
        Failure::Render { error, schema } => {
            if let Some(moving) = in_motion(&facts.release.name, facts.ledger.as_ref(), &error) {
                return moving;
            }
            if let Some(file) = unreadable_file(&error, &start.overrides.files) {
                return bad(
                    format!(
                        "-f {}: helm cannot read it as values; nothing was changed\nhelm: {}",
                        file.display(),
                        helm_said(&error)
                    ),
                    "fix the file (helm reads YAML 1.1, and wants a mapping at the top) and run again",
                );
            }
            refusal(at, &plan.hops[at.hop], name, &error, schema)
        }
        Failure::Fetch(e) => RunError::Other(format!(
            "cannot fetch {name} {} for the preflight: {e}\nhint: check the chart source; --no-preflight skips the preflight",
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
        error: Box<crate::helm::ExecError>,
        schema: Option<String>,
    },
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
) -> Result<DeployValues, RunError> {
    let private = |name: String, value: &Value| -> Result<PathBuf, RunError> {
        let path = work.join(name);
        super::private::write_private(&path, value.to_string().as_bytes())
            .map_err(|e| RunError::Other(format!("preflight: {e}")))?;
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
    Ok(DeployValues { files, sets: start.overrides.sets.clone(), step_file })
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
    let said = if said.is_empty() { error.to_string() } else { said.to_string() };
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
