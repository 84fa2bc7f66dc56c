//! What the walk records as it goes: the seam between the executor and the ledger.
//!
//! The walk says what happens; the journal records it in the ledger, whose every write
//! also proves that this run still holds the lock. So the calls made *before* a change
//! ([`Journal::hop_starting`], [`Journal::change_starting`]) may refuse: then the change
//! must not happen, because either it could not be recorded (a hop that starts without
//! its start on record leaves no trace for `--resume`) or another run holds the lock now.

use crate::disclose::Message;
use crate::plan::Plan;
use crate::run::ledger::HopOutcome;
use crate::version::ChartVersion;

/// A write the walk needed did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalError {
    /// The lock is gone (someone forced it away, or edited or deleted the record).
    pub lost_lock: bool,
    pub message: String,
}

pub trait Journal {
    /// Hop `index` of `plan` is about to start; `first_change` is the index of its first
    /// step that changes something, which this write covers.
    fn hop_starting(&mut self, plan: &Plan, index: usize, first_change: Option<usize>) -> Result<(), JournalError>;
    /// A further step that changes something is about to run: step `step` of hop `hop`,
    /// or (None) a step of a way back.
    fn change_starting(&mut self, hop: usize, step: Option<usize>) -> Result<(), JournalError>;
    /// Hop `index` ended: noted now, stored with the next write (the next hop's start, or
    /// the end of the run), which saves a write per hop. A lost lock is found by that
    /// next write, before anything else changes. The message is stored redacted: the
    /// ledger is readable by anyone with access to the namespace's ConfigMaps.
    fn hop_ended(&mut self, index: usize, outcome: HopOutcome, message: Option<&Message>);
    /// helm ran `version` for the release (deployed, or failed after it started): noted
    /// now, stored with the next write.
    fn helm_ran(&mut self, version: &ChartVersion);
    /// A snapshot was taken (or confirmed) while `at` was deployed; stored with the next
    /// write.
    fn snapshot_taken(&mut self, at: &ChartVersion, how: &str);
    /// A step ended (a hop's, the preflight's or a way back's): kept with the run, for
    /// `--history` and for the next plan's estimates. Stored with the next write.
    fn step_finished(&mut self, step: &crate::report::StepReport, waited_for_operator: bool);
    /// Store what was noted since the last write, now (before a pause that may last).
    fn store_now(&mut self) -> Result<(), JournalError>;
    fn newest_ever(&self) -> Option<ChartVersion>;
    fn has_snapshot(&self) -> bool;
}
