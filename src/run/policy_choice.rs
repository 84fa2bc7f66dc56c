//! Which policy decides a run, and what the operator must be told about that choice.
//!
//! The ledger records the policy a run used (origin, digest, text), so the next run on
//! the release, and above all a `--resume`, uses the policy the operator chose rather than
//! whatever a chart name would pick. The precedence is written once, here.

use super::error::{RunError, bad};
use super::ledger::{Ledger, PolicyRecord};
use super::options::RunOptions;
use crate::policy::{self, Origin, Policy, presets};
use crate::text::one_line;

/// The policy a run uses, what to say about it, and a change the operator must confirm.
pub struct ChosenPolicy {
    pub policy: Policy,
    pub notes: Vec<String>,
    pub change: Option<String>,
}

/// Which policy decides, in this order:
/// - `--resume`: always the one the interrupted run recorded (its text, from the ledger);
///   a `--policy` that differs is refused.
/// - `--policy`: that one; if it differs from the recorded one, the change is shown and
///   confirmed before anything happens.
/// - a file the last run used: the ledger's copy of it (the file may have changed or gone).
/// - a preset the last run used: today's version of that preset (newest knowledge), saying
///   when it differs from the recorded one.
/// - otherwise, the preset for the release's chart name.
pub fn choose_policy(opts: &RunOptions, ledger: Option<&Ledger>, chart_name: &str) -> Result<ChosenPolicy, RunError> {
    let record = ledger.and_then(|l| l.policy_record.as_ref());
    let explicit = opts.policy.as_deref().map(policy::load_named_or_path).transpose().map_err(invalid)?;
    if opts.resume {
        let policy = for_resume(explicit, record, ledger.and_then(|l| l.policy.as_deref()))?;
        return Ok(ChosenPolicy { policy, notes: vec![], change: None });
    }
    if let Some(policy) = explicit {
        let change = record.filter(|r| r.digest != policy.digest).map(|r| {
            format!(
                "the policy changes: the last run used {} ({}), this one uses {} ({})",
                one_line(&r.origin.to_string()),
                crate::digest::short(&r.digest),
                one_line(&policy.origin.to_string()),
                crate::digest::short(&policy.digest)
            )
        });
        return Ok(ChosenPolicy { policy, notes: change.iter().cloned().collect(), change });
    }
    match record {
        Some(record) => from_record(record),
        // A record of an older version keeps the policy's name only.
        None => match ledger.and_then(|l| l.policy.as_deref()) {
            Some(name) if presets::text(name).is_some() => Ok(ChosenPolicy {
                policy: policy::load_named_or_path(name).map_err(invalid)?,
                notes: vec![],
                change: None,
            }),
            _ => Ok(ChosenPolicy { policy: presets::for_chart(chart_name), notes: vec![], change: None }),
        },
    }
}

fn invalid(e: policy::PolicyError) -> RunError {
    bad(e.to_string(), "fix the policy or pass another with --policy")
}

/// `--resume`: the recorded policy; a `--policy` with another digest is refused.
fn for_resume(explicit: Option<Policy>, record: Option<&PolicyRecord>, name: Option<&str>) -> Result<Policy, RunError> {
    let Some(record) = record else {
        // A record of an older version: the policy's name only.
        return match (explicit, name) {
            (Some(p), _) => Ok(p),
            (None, Some(name)) if presets::text(name).is_some() => policy::load_named_or_path(name).map_err(invalid),
            _ => Err(bad(
                "--resume: the ledger does not record which policy the interrupted run used",
                "pass the same --policy as that run",
            )),
        };
    };
    match explicit {
        Some(p) if p.digest == record.digest => Ok(p),
        Some(p) => Err(bad(
            format!(
                "--resume continues with the policy the interrupted run used ({}, {}), and --policy {} is another ({})",
                one_line(&record.origin.to_string()),
                crate::digest::short(&record.digest),
                one_line(&p.origin.to_string()),
                crate::digest::short(&p.digest)
            ),
            "drop --policy to resume with the recorded one, or finish the interrupted run first",
        )),
        None => recorded_policy(record),
    }
}

/// A new run without `--policy`: a file's recorded copy, or today's preset of the
/// recorded name; either way saying what changed since.
fn from_record(record: &PolicyRecord) -> Result<ChosenPolicy, RunError> {
    let mut notes = Vec::new();
    let policy = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => {
            let policy = recorded_policy(record)?;
            if let Ok(current) = policy::load_named_or_path(path)
                && current.digest != record.digest
            {
                notes.push(format!(
                    "{} has changed since the last run: using the copy the ledger kept ({}); pass --policy {} to use the file as it is now",
                    one_line(path),
                    crate::digest::short(&record.digest),
                    one_line(path)
                ));
            }
            policy
        }
        Origin::Preset { name } if presets::text(name).is_some() => {
            let policy = policy::load_named_or_path(name).map_err(invalid)?;
            if policy.digest != record.digest {
                notes.push(format!(
                    "preset {name} has changed since the last run ({} → {}): this version of helm-safe-upgrade knows more; using the current one",
                    crate::digest::short(&record.digest),
                    crate::digest::short(&policy.digest)
                ));
            }
            policy
        }
        // A preset this version does not have, or text of unknown origin: what was recorded.
        _ => recorded_policy(record)?,
    };
    Ok(ChosenPolicy { policy, notes, change: None })
}

/// The policy the ledger recorded: its text when kept, else the file if it still has the
/// recorded digest.
fn recorded_policy(record: &PolicyRecord) -> Result<Policy, RunError> {
    let origin = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => Origin::Recorded { path: path.clone() },
        other => other.clone(),
    };
    if let Some(text) = &record.text {
        let policy = policy::parse_from(text, origin)
            .map_err(|e| RunError::Other(format!("the policy the ledger recorded no longer reads: {e}")))?;
        if policy.digest != record.digest {
            return Err(RunError::Other(format!(
                "the policy text in the ledger does not match its recorded digest ({}): the record was edited\nhint: pass --policy with the policy file to use",
                crate::digest::short(&record.digest)
            )));
        }
        return Ok(policy);
    }
    if let Origin::File { path } | Origin::Recorded { path } = &record.origin
        && let Ok(policy) = policy::load_named_or_path(path)
        && policy.digest == record.digest
    {
        return Ok(policy);
    }
    Err(bad(
        format!(
            "the ledger recorded policy {} by digest only ({}; too large to keep), and no file with that digest is at hand",
            one_line(&record.origin.to_string()),
            crate::digest::short(&record.digest)
        ),
        "pass --policy with that file",
    ))
}
