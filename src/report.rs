//! What a live run reports: how it ended, each step, where the release stands. Data
//! only: the executor fills it in, `ui::render` and `-o json` show it, `commands` maps it
//! to the exit code. Nothing here does I/O.
//!
//! Errors and reasons are [`Message`]s, not text: a failed hop's error quotes the helm
//! command line, which the operator's terminal shows with their values and the ledger and
//! `-o json` (its serialisation) show without.

use std::path::PathBuf;

use serde::Serialize;

use crate::disclose::Message;
use crate::plan::Plan;
use crate::version::ChartVersion;

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Completed {
        at: ChartVersion,
    },
    /// Stopped at a good version by the operator (or a signal) between hops.
    Stopped {
        at: ChartVersion,
        reason: Message,
    },
    /// A hop failed; the release was brought back to the last good version.
    Recovered {
        failed_hop: usize,
        error: Message,
        at: ChartVersion,
    },
    /// A hop failed and so did the way back, or the run could not go on safely (the lock
    /// was lost, the release changed under it): a human must act.
    Failed {
        error: Message,
        next_steps: String,
    },
}

impl Outcome {
    /// The documented exit code of a run that ended this way.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Completed { .. } => crate::exit::SUCCESS,
            Outcome::Stopped { .. } => crate::exit::STOPPED_BY_OPERATOR,
            Outcome::Recovered { .. } => crate::exit::HOP_FAILED_RECOVERED,
            Outcome::Failed { .. } => crate::exit::FAILURE,
        }
    }

    /// The word the ledger's run record uses.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::Stopped { .. } => "stopped",
            Outcome::Recovered { .. } => "recovered",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// Where the release stands, when the run knows.
    pub fn at(&self) -> Option<&ChartVersion> {
        match self {
            Outcome::Completed { at } | Outcome::Stopped { at, .. } | Outcome::Recovered { at, .. } => Some(at),
            Outcome::Failed { .. } => None,
        }
    }

    /// The reason or error, when there is one.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Outcome::Completed { .. } => None,
            Outcome::Stopped { reason, .. } => Some(reason),
            Outcome::Recovered { error, .. } | Outcome::Failed { error, .. } => Some(error),
        }
    }
}

/// What happened to one step, for people and for `-o json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<usize>,
    pub action: String,
    pub detail: String,
    pub outcome: &'static str,
    pub duration_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// A step of the way back of a failed (or rolled back) hop, not of the hop itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub way_back: bool,
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
        self.outcome.exit_code()
    }
}
