//! Why a live run did not start (or could not go on before its first change), with the
//! exit code it maps to.

use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2: the request or something it named is wrong.
    #[error("{message}\nhint: {hint}")]
    BadInput { message: String, hint: String },
    /// Exit 3: the policy forbids it.
    #[error("refused: {message}\n  rule:      {rule}\n  supported: {supported}")]
    Refused { rule: String, message: String, supported: String },
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
            RunError::Refused { .. } => crate::exit::REFUSED,
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

pub fn plan_error(e: PlanError) -> RunError {
    match e {
        PlanError::Refused(r) => RunError::Refused { rule: r.rule, message: r.message, supported: r.supported },
        PlanError::BadRequest { message, hint } => bad(message, hint),
    }
}
