//! The preflight's reads of the cluster and of the run's first values, beside the
//! release's read (see `preflight`).

use serde_json::Value;

use super::options::RunOptions;
use super::values::Overrides;
use crate::helm::{Capabilities, DeployValues, EchoChart, ExecError, Helm};
use crate::kube::KubeClient;

/// What an upgrade reads for its values and the preflight while it reads the release: the
/// cluster's capabilities, which every offline render is told, and, when the operator gave
/// `-f`/`--set`, helm's merge of the values the run starts from, which every deploy no
/// value rule and no procedure `set:` changes deploys (and which refuses an `-f` file
/// helm cannot read, with or without the preflight).
pub struct Probe {
    /// None when they could not be read (each deploy is then rendered on the cluster), or
    /// were not (a run without the preflight).
    pub capabilities: Option<Capabilities>,
    pub first_values: Option<FirstValues>,
}

/// helm's merge of the carried values and the operator's `-f`/`--set`.
pub struct FirstValues {
    pub carried: Value,
    pub overrides: Overrides,
    /// Err when it could not be made, with helm's error when helm ran and failed (an
    /// `-f` file it cannot read): the preflight asks helm again for each deploy and says
    /// why; a run without the preflight refuses that file before the first change.
    pub merged: Result<Value, Option<ExecError>>,
}

/// The cluster's capabilities, read through the API client as helm reads them.
pub fn capabilities(kube: Option<&KubeClient>) -> Option<Capabilities> {
    let (kube_version, api_versions) = kube?.capabilities().ok()?;
    Some(Capabilities { kube_version, api_versions })
}

/// helm's merge of `carried` and the operator's `-f`/`--set`; None without them (the
/// preflight then merges the values it wrote itself).
pub fn first_values(helm: &Helm, release: &str, carried: &Value, opts: &RunOptions) -> Option<FirstValues> {
    if opts.overrides.is_empty() {
        return None;
    }
    let overrides = opts.overrides.clone();
    let merged = (|| {
        let work = super::private::run_folder("preflight's values").map_err(|_| None)?;
        let echo = EchoChart::write(work.path()).map_err(|_| None)?;
        let carried_file = work.path().join("carried.json");
        super::private::write_values(&carried_file, carried).map_err(|_| None)?;
        let files = [vec![carried_file], overrides.files.clone()].concat();
        let values = DeployValues { files, sets: overrides.sets.clone(), step_file: None };
        let purpose = format!("merge the values of {release} (preflight)");
        helm.merge(purpose, release, &echo, &values).map_err(Some)
    })();
    Some(FirstValues { carried: carried.clone(), overrides, merged })
}
