//! The policy file exactly as written: strict serde structs that keep source positions.
//!
//! Every struct denies unknown keys, so a typo (`max_minor_stpe`) is an error at its line,
//! not a silently ignored rule. Fields that semantic validation may need to point at are
//! `Spanned`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{MajorRule, StopAt, VersionRef};
use crate::version::ChartVersion;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Spanned<String>,
    pub description: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub charts: Vec<String>,
    #[serde(default)]
    pub chart: Option<String>,
    #[serde(default)]
    pub release_notes: Option<Spanned<String>>,
    pub upgrade: RawUpgrade,
    pub downgrade: RawDowngrade,
    #[serde(default)]
    pub snapshot: Option<RawSnapshot>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub procedures: BTreeMap<String, Spanned<RawProcedure>>,
    #[serde(default)]
    pub catalog: Vec<Spanned<RawCatalogEntry>>,
    #[serde(default)]
    pub values: Vec<Spanned<RawValueRule>>,
    /// How long hops of each kind typically take, in minutes (`{minor: [10, 30]}`).
    #[serde(default)]
    pub typical_minutes: Option<RawTypical>,
    /// The hook called at a run's events (`--notify` replaces it for one run).
    #[serde(default)]
    pub notify: Option<Spanned<Vec<String>>>,
    /// Which versions the upgrade rules count in: the chart's (default) or its `appVersion`.
    #[serde(default)]
    pub versions: super::VersionSpace,
}

/// `typical_minutes`, one optional figure per hop kind, named as the plan's JSON names
/// them (so a misspelt kind is an unknown field at its line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTypical {
    pub patch: Option<Spanned<super::times::RawMinutes>>,
    pub minor: Option<Spanned<super::times::RawMinutes>>,
    pub major: Option<Spanned<super::times::RawMinutes>>,
    pub fast_path: Option<Spanned<super::times::RawMinutes>>,
    pub patch_downgrade: Option<Spanned<super::times::RawMinutes>>,
    pub minor_downgrade: Option<Spanned<super::times::RawMinutes>>,
    pub restore: Option<Spanned<super::times::RawMinutes>>,
}

impl RawTypical {
    /// Each figure given, with its kind's name (in [`super::times::HOP_KINDS`]).
    pub fn given(&self) -> Vec<(&'static str, &Spanned<super::times::RawMinutes>)> {
        let figures = [
            &self.patch,
            &self.minor,
            &self.major,
            &self.fast_path,
            &self.patch_downgrade,
            &self.minor_downgrade,
            &self.restore,
        ];
        let all = super::times::HOP_KINDS.into_iter().zip(figures);
        all.into_iter().filter_map(|(kind, figure)| figure.as_ref().map(|f| (kind, f))).collect()
    }
}

/// One entry of `values:`: a version and exactly one of `require`, `rename`, `remove`,
/// `set` (checked by the loader, which can point at the entry).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueRule {
    pub version: ChartVersion,
    #[serde(default)]
    pub require: Option<Spanned<String>>,
    #[serde(default)]
    pub rename: Option<Spanned<RawRename>>,
    #[serde(default)]
    pub remove: Option<Spanned<String>>,
    #[serde(default)]
    pub set: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRename {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpgrade {
    pub max_minor_step: Spanned<u32>,
    #[serde(default = "default_stop_at")]
    pub stop_at: StopAt,
    pub major: MajorRule,
    #[serde(default)]
    pub required_stops: Vec<Spanned<String>>,
    /// Free text shown as a plan warning when a path stops in a minor (`"16.0": "…"`):
    /// how a vendor's conditional stops reach the operator.
    #[serde(default)]
    pub stop_notes: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub snapshot_first: bool,
    pub procedure: Spanned<String>,
    #[serde(default)]
    pub fast_path: Option<RawFastPath>,
}

fn default_stop_at() -> StopAt {
    StopAt::LatestPatch
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFastPath {
    pub min_minors: Spanned<u32>,
    pub procedure: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDowngrade {
    #[serde(default)]
    pub patch: Option<Spanned<String>>,
    #[serde(default)]
    pub minor: Option<RawMinorDowngrade>,
    #[serde(default)]
    pub restore: Option<Spanned<String>>,
    #[serde(default)]
    pub data_loss_warning: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMinorDowngrade {
    pub max_minors_below_newest: Spanned<u32>,
    pub procedure: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnapshot {
    #[serde(default)]
    pub command: Option<Spanned<Vec<String>>>,
    pub message: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: String,
    pub argv: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcedure {
    #[serde(default)]
    pub downtime: bool,
    pub steps: Vec<Spanned<RawStep>>,
}

/// One step: a single-key map such as `deploy: {version: from}` or `verify: {}`, or the
/// bare name of a step that needs no settings (`- verify`).
#[derive(Debug)]
pub struct RawStep(pub RawStepKind);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawStepKind {
    Deploy(RawDeploy),
    Verify(RawEmpty),
    Snapshot(RawSnapshotStep),
    Run(RawRun),
    WaitGone(RawWaitGone),
    Confirm(RawConfirm),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmpty {}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = RawStep;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step such as `deploy: {}` or `verify`")
            }
            /// A bare name is the step with no settings (`verify` is `verify: {}`): read
            /// through the same derive as the map form, so a new step kind is known here
            /// without being listed, and one that needs settings says so.
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RawStep, E> {
                let as_map = serde_json::json!({ name: {} });
                serde_json::from_value::<RawStepKind>(as_map).map(RawStep).map_err(|e| {
                    let text = e.to_string();
                    if text.starts_with("missing field") {
                        E::custom(format!("step `{name}` needs settings: write `{name}: {{...}}`"))
                    } else {
                        E::custom(text.split(" at line ").next().unwrap_or(&text))
                    }
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawStep, A::Error> {
                RawStepKind::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawStep)
            }
        }
        d.deserialize_any(StepVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    #[serde(default = "default_to")]
    pub version: VersionRef,
    #[serde(default)]
    pub set: serde_json::Map<String, serde_json::Value>,
}

fn default_to() -> VersionRef {
    VersionRef::To
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnapshotStep {
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub name: String,
    pub argv: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaitGone {
    #[serde(default = "default_from")]
    pub version: VersionRef,
    /// Label selector for the pods of that version; placeholders allowed.
    #[serde(default = "default_selector")]
    pub selector: String,
}

fn default_from() -> VersionRef {
    VersionRef::From
}

/// helm labels every object it renders with `helm.sh/chart: <name>-<version>` in charts
/// made with `helm create`, and pod templates conventionally carry it too.
pub const DEFAULT_POD_SELECTOR: &str = "app.kubernetes.io/instance={release},helm.sh/chart={chart}-{version}";

fn default_selector() -> String {
    DEFAULT_POD_SELECTOR.to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfirm {
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalogEntry {
    pub version: ChartVersion,
    #[serde(default)]
    pub schema: Option<ScalarString>,
    #[serde(default)]
    pub app_version: Option<ScalarString>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub duration: Option<Spanned<String>>,
}

/// A scalar read as text whether YAML typed it as a number or a string
/// (`schema: 222` and `schema: "222"` mean the same).
#[derive(Debug)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(ScalarString(s)),
            serde_json::Value::Number(n) => Ok(ScalarString(n.to_string())),
            other => Err(serde::de::Error::custom(format!("expected a string or a number, got {other}"))),
        }
    }
}
