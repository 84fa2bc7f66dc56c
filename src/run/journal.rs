//! What the walk records as it goes: the seam between the executor and the ledger.
//!
//! The walk only says what happened; the ledger decides how it is stored (a ConfigMap
//! beside the release, or a local file). A failure to record is reported, never fatal to
//! a hop already under way: stopping mid-hop to report a bookkeeping error would be worse.

use crate::plan::{Hop, Plan};
use crate::version::ChartVersion;

pub trait Journal {
    /// Hop `index` of `plan` starts: the plan in progress and the hop go on record.
    fn hop_started(&mut self, plan: &Plan, index: usize, hop: &Hop);
    /// `outcome`: "succeeded", "failed", "rolled-back" or "stopped".
    fn hop_ended(&mut self, index: usize, outcome: &str, message: Option<&str>);
    /// helm is about to deploy `version` (its hooks may migrate the database).
    fn deploying(&mut self, version: &ChartVersion);
    /// A snapshot was taken (or confirmed) while `at` was deployed.
    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str);
    fn newest_ever(&self) -> Option<ChartVersion>;
    fn has_snapshot(&self) -> bool;
}
