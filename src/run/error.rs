//! Why a live run did not start (or could not go on before its first change), with the
//! exit code it maps to.

use crate::plan::{PlanError, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2: the request or something it named is wrong.
    #[error("{message}\nhint: {hint}")]
    BadInput { message: String, hint: String },
    /// Exit 3: the policy forbids it.
    #[error("refused: {}\n  rule:      {}\n  supported: {}", .0.message, .0.rule, .0.supported)]
    Refused(Refusal),
    /// Exit 1: anything else (a cluster that cannot be read, a held lock, …).
    #[error("{0}")]
    Other(String),
    /// Exit 5: stopped by the operator (or SIGTERM, SIGHUP) before any change.
    #[error("{0}")]
    Interrupted(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::BadInput { .. } => crate::exit::BAD_INPUT,
            RunError::Refused(_) => crate::exit::REFUSED,
            RunError::Other(_) => crate::exit::FAILURE,
            RunError::Interrupted(_) => crate::exit::STOPPED_BY_OPERATOR,
        }
    }
}

pub fn bad(message: impl Into<String>, hint: impl Into<String>) -> RunError {
    RunError::BadInput { message: message.into(), hint: hint.into() }
}

/// Text of the form "message\nhint: hint" as bad input.
pub fn bad_text(text: &str) -> RunError {
    let (message, hint) = text.split_once("\nhint: ").unwrap_or((text, ""));
    bad(message, hint)
}

/// Exit 3: the policy (or the state of the release) forbids it.
pub fn refused(rule: &str, message: impl Into<String>, supported: impl Into<String>) -> RunError {
    RunError::Refused(Refusal { rule: rule.to_string(), message: message.into(), supported: supported.into() })
}

/// The planner's refusal travels on as it is; its bad request is the run's.
impl From<PlanError> for RunError {
    fn from(e: PlanError) -> RunError {
        match e {
            PlanError::Refused(refusal) => RunError::Refused(refusal),
            PlanError::BadRequest { message, hint } => bad(message, hint),
        }
    }
}
