//! How long a plan will take, hop by hop, and where each figure comes from.
//!
//! In order of trust: this release's own past hops of the same kind and procedure (the
//! ledger records how long each hop's steps took, without the time spent waiting for the
//! operator), then what the policy states (the catalog's figure for the hop's target
//! version, then `typical_minutes` for the hop's kind), else nothing: an unknown is
//! shown as unknown, never guessed. A policy's figures count only when the policy
//! describes the release's chart ([`Context::stated_times`]): a generic preset picked
//! because nothing else matched says nothing about this chart's times.
//!
//! Pure, like the rest of the planner: the history arrives in the [`Context`].

use serde::{Deserialize, Serialize};

use super::{Alternative, Context, Hop, HopKind, Plan};
use crate::policy::Policy;
use crate::policy::times::TimeRange;
use crate::version::ChartVersion;

/// The newest past hops an estimate learns from: the release as it is now, not as it was
/// a year of data ago.
pub const MAX_SAMPLES: usize = 20;

/// A past hop of this release, as the ledger recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastHop {
    pub kind: String,
    pub procedure: String,
    /// Its steps' time, without the operator's.
    pub work_secs: u64,
    /// From its first deploy to its end, for a procedure with downtime.
    pub downtime_secs: Option<u64>,
}

/// A duration: the expected figure and the range around it, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub expected_secs: u64,
    pub low_secs: u64,
    pub high_secs: u64,
}

impl Span {
    /// The median of the samples, between their least and greatest. Empty: None.
    fn of(samples: &[u64]) -> Option<Span> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let (low, high) = (*sorted.first()?, *sorted.last()?);
        let middle = sorted.len() / 2;
        let expected = if sorted.len() % 2 == 1 { sorted[middle] } else { sorted[middle - 1].midpoint(sorted[middle]) };
        Some(Span { expected_secs: expected, low_secs: low, high_secs: high })
    }

    /// A stated range: the middle of it is what to expect.
    fn stated(range: TimeRange) -> Span {
        Span {
            expected_secs: range.low_secs.midpoint(range.high_secs),
            low_secs: range.low_secs,
            high_secs: range.high_secs,
        }
    }

    /// Its ends say the same when rounded as people read them (`10 min`–`10 min`).
    pub fn reads_as_one_figure(&self) -> bool {
        short(self.low_secs) == short(self.high_secs)
    }

    fn plus(self, other: Span) -> Span {
        Span {
            expected_secs: self.expected_secs.saturating_add(other.expected_secs),
            low_secs: self.low_secs.saturating_add(other.low_secs),
            high_secs: self.high_secs.saturating_add(other.high_secs),
        }
    }
}

/// Where a hop's figure comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Basis {
    /// This release's own past hops of the same kind and procedure.
    History { hops: usize },
    /// The policy's catalog figure for the hop's target version.
    Catalog { version: ChartVersion },
    /// The policy's `typical_minutes` for the hop's kind.
    Policy { kind: String },
}

/// One hop's expected duration and, for a procedure with downtime, the downtime window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    #[serde(flatten)]
    pub time: Span,
    pub basis: Basis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<Span>,
}

/// A plan's (or an alternative's) total: the hops whose time is known, and how many are
/// not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    #[serde(flatten)]
    pub time: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<Span>,
    /// Hops with no estimate: the total leaves them out, and says so.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown_hops: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A hop as far as its time goes: an alternative's hops are described by these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub from: ChartVersion,
    pub to: ChartVersion,
    pub kind: HopKind,
    pub procedure: String,
    pub downtime: bool,
}

impl Leg {
    pub fn of(hop: &Hop) -> Leg {
        Leg {
            from: hop.from.clone(),
            to: hop.to.clone(),
            kind: hop.kind,
            procedure: hop.procedure.clone(),
            downtime: hop.downtime,
        }
    }
}

/// Fill in every hop's estimate, the plan's total and each alternative's.
pub fn attach(plan: &mut Plan, policy: &Policy, context: &Context) {
    for hop in &mut plan.hops {
        hop.estimate = estimate(&Leg::of(hop), policy, context);
    }
    plan.estimate = total(plan.hops.iter().map(|h| h.estimate.as_ref()));
    for alternative in &mut plan.alternatives {
        attach_to_alternative(alternative, policy, context);
    }
}

fn attach_to_alternative(alternative: &mut Alternative, policy: &Policy, context: &Context) {
    let estimates: Vec<Option<Estimate>> = alternative.path.iter().map(|leg| estimate(leg, policy, context)).collect();
    alternative.estimate = total(estimates.iter().map(Option::as_ref));
}

/// One hop's estimate: its own history first, then the policy's figures.
pub fn estimate(leg: &Leg, policy: &Policy, context: &Context) -> Option<Estimate> {
    let kind = leg.kind.as_str();
    let same: Vec<&PastHop> = context
        .history
        .iter()
        .rev()
        .filter(|past| past.kind == kind && past.procedure == leg.procedure)
        .take(MAX_SAMPLES)
        .collect();
    if let Some(time) = Span::of(&same.iter().map(|p| p.work_secs).collect::<Vec<_>>()) {
        let measured: Vec<u64> = same.iter().filter_map(|p| p.downtime_secs).collect();
        let downtime = leg.downtime.then(|| Span::of(&measured).unwrap_or(time));
        return Some(Estimate { time, basis: Basis::History { hops: same.len() }, downtime });
    }
    if !context.stated_times {
        return None;
    }
    let upgrade = leg.kind.is_upgrade();
    let (range, basis) = match policy.catalog_entry(&leg.to).and_then(|e| e.time).filter(|_| upgrade) {
        Some(range) => (range, Basis::Catalog { version: leg.to.clone() }),
        None => (*policy.typical.get(kind)?, Basis::Policy { kind: kind.to_string() }),
    };
    let time = Span::stated(range);
    // A policy states a hop's time, not its downtime: the whole hop counts.
    Some(Estimate { time, basis, downtime: leg.downtime.then_some(time) })
}

/// The sum of the known estimates; None when no hop has one.
fn total<'a>(estimates: impl Iterator<Item = Option<&'a Estimate>>) -> Option<Total> {
    let mut out = Total::default();
    let mut known = 0;
    for estimate in estimates {
        let Some(estimate) = estimate else {
            out.unknown_hops += 1;
            continue;
        };
        known += 1;
        out.time = out.time.plus(estimate.time);
        if let Some(downtime) = estimate.downtime {
            out.downtime = Some(out.downtime.unwrap_or_default().plus(downtime));
        }
    }
    (known > 0).then_some(out)
}

/// The time left of a plan once `done` hops are done and the current one has run for
/// `elapsed_in_hop` seconds: the expected figures of what remains (a hop running longer
/// than expected counts as nearly done). None when a remaining hop has no estimate.
pub fn remaining(plan: &Plan, done: usize, elapsed_in_hop: u64) -> Option<u64> {
    let mut left = 0u64;
    for (i, hop) in plan.hops.iter().enumerate().skip(done) {
        let expected = hop.estimate.as_ref()?.time.expected_secs;
        left = left.saturating_add(if i == done { expected.saturating_sub(elapsed_in_hop) } else { expected });
    }
    Some(left)
}

/// "~12 min", "~45 s", "~1 h 20 min": rounded as a person would say it.
pub fn about(secs: u64) -> String {
    format!("~{}", short(secs))
}

/// "12 min", "45 s", "1 h 20 min".
pub fn short(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", (secs + 30) / 60),
        _ => {
            // Saturating: the figures come from the ledger, which anyone may edit.
            let minutes = secs.saturating_add(30) / 60;
            match minutes % 60 {
                0 => format!("{} h", minutes / 60),
                m => format!("{} h {m} min", minutes / 60),
            }
        }
    }
}

/// "10–30 min", or one figure when the range is a point.
pub fn range_text(span: &Span) -> String {
    if span.reads_as_one_figure() {
        return short(span.low_secs);
    }
    let (low, high) = (short(span.low_secs), short(span.high_secs));
    // "10 min–30 min" reads worse than "10–30 min".
    match (low.strip_suffix(" min"), high.strip_suffix(" min")) {
        (Some(l), Some(h)) if !l.contains(' ') && !h.contains(' ') => format!("{l}–{high}"),
        _ => format!("{low}–{high}"),
    }
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Basis::History { hops: 1 } => f.write_str("this release's last hop like it"),
            Basis::History { hops } => write!(f, "median of this release's last {hops} hops like it"),
            Basis::Catalog { version } => write!(f, "the policy's figure for {version}"),
            Basis::Policy { kind } => write!(f, "the policy's typical {kind} hop"),
        }
    }
}

#[cfg(test)]
mod tests;
