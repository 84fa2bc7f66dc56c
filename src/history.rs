//! The release's history (`--history`): the ledger's journal as people read it (a table)
//! and as programs do (JSON). The ledger outlives helm's `--history-max` pruning, so this
//! is the release's audit log: every run of the tool, who ran it and how it ended, each
//! hop with each step, the snapshots taken, and what was dropped to keep it small.
//!
//! Pure: a [`Ledger`] in, a [`History`] (text, or a JSON value) out. Reading the record
//! is the run layer's ([`crate::run::gather::ledger_for_showing`]), through the store a
//! live run would use, without taking the lock.
//!
//! Everything here comes from the ledger, which anyone who can edit ConfigMaps in the
//! namespace can write: every field is escaped before it reaches the text, and only the
//! tool's own words are coloured (an outcome is painted only when it is one of the words
//! the tool writes). It holds no secret: the command is recorded as its shape (every
//! value `***`) and messages redacted, when they were written.
//!
//! Records written before schema 3 have no run ids: their hops and snapshots go to the
//! run during which they started, by time, and whatever no run covers (its run was
//! dropped, or a schema 1 record kept no runs) is shown apart.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::printer::{Look, Role};
use crate::run::ledger::{Dropped, HopRecord, Ledger, RunRecord, SnapshotRecord, StepRecord};
use crate::text::{count, for_terminal, one_line};
use crate::ui::lines::push_line;
use crate::version::ChartVersion;

/// Whose record it is and where it was read: the release and namespace asked for (not
/// the record's own fields, which anyone may have edited), and the store's location.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    /// "ConfigMap helm-safe-upgrade.bsr in namespace bsr", or a local file's path.
    pub location: &'a str,
}

/// The history, as both renderings read it: runs in time order, each with its hops,
/// steps and snapshots. Its JSON is the `-o json` document.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    pub release: String,
    pub namespace: String,
    pub location: String,
    pub runs: Vec<Run>,
    /// Hops and snapshots no run on record covers.
    #[serde(skip_serializing_if = "Unattributed::is_empty")]
    pub without_run: Unattributed,
    /// The lock, when no run on record holds it (a record edited, or its run dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockView>,
    /// The plan a run left unfinished, when no run is running it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<InProgressView>,
    /// Entries dropped over the ledger's life to keep it small.
    pub dropped: Dropped,
    /// What the last trim to the record's size limit dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trimmed: Option<String>,
    /// The record was written by a newer version, and shown as far as understood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One run of the tool on the release.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// None for a run recorded before schema 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// From its start to its end, when both are on record (whole seconds).
    pub duration_ms: Option<u64>,
    /// `user@host`.
    pub who: String,
    /// `user@host pid N`.
    pub holder: String,
    /// The command line with every value redacted.
    pub command: String,
    pub direction: String,
    pub from: ChartVersion,
    pub to: ChartVersion,
    /// As recorded (`completed`, `stopped`, `recovered`, `failed`, `declined`,
    /// `interrupted`); `running` while it holds the lock; `crashed` when it ended
    /// without recording an end (killed, or its machine lost).
    pub outcome: String,
    /// Where the release stood when it ended.
    pub at: Option<ChartVersion>,
    pub message: Option<String>,
    /// A running run: since when it holds the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_since: Option<String>,
    /// Steps before its first hop (a snapshot the preflight takes).
    pub preflight: Vec<StepRecord>,
    pub hops: Vec<Hop>,
    pub snapshots: Vec<SnapshotRecord>,
}

/// One hop of a run. Its fields are None when the hop's record was dropped (its steps
/// stay with the run) or predates them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hop {
    /// Its place in the run's plan, 1-based.
    pub index: Option<usize>,
    pub from: Option<ChartVersion>,
    pub to: Option<ChartVersion>,
    pub kind: Option<String>,
    pub procedure: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// `succeeded`, `failed`, `rolled-back`, `stopped`, or `running` (under way, or left so
    /// by a run that crashed).
    pub outcome: Option<String>,
    pub message: Option<String>,
    /// How long its own steps took, without waiting for the operator.
    pub work_ms: Option<u64>,
    /// For a procedure with downtime: from its first deploy to its end.
    pub downtime_ms: Option<u64>,
    pub steps: Vec<StepRecord>,
    /// The steps that brought the release back after the hop failed or was rolled back.
    pub way_back: Vec<StepRecord>,
}

/// Hops and snapshots without a run on record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Unattributed {
    pub hops: Vec<HopRecord>,
    pub snapshots: Vec<SnapshotRecord>,
}

impl Unattributed {
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty() && self.snapshots.is_empty()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LockView {
    pub holder: String,
    pub since: String,
    pub command: String,
    pub plan: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InProgressView {
    pub direction: String,
    pub from: ChartVersion,
    pub to: ChartVersion,
    pub hops: usize,
    /// The first hop not yet finished, 1-based.
    pub next_hop: usize,
    pub started_at: String,
}

/// The history of `ledger` (an empty one: no record); `note` says it was written by a
/// newer version.
pub fn history(ledger: &Ledger, subject: Subject<'_>, note: Option<&str>) -> History {
    let mut without_run = Unattributed::default();
    let mut runs: Vec<Run> = ledger.runs.iter().map(|r| run(r, ledger)).collect();
    for hop in &ledger.hops {
        match owner(&runs, hop.run, &hop.started_at) {
            Some(i) => attach_hop(&mut runs[i], hop),
            None => without_run.hops.push(hop.clone()),
        }
    }
    for snapshot in &ledger.snapshots {
        match owner(&runs, snapshot.run, &snapshot.taken_at) {
            Some(i) => runs[i].snapshots.push(snapshot.clone()),
            None => without_run.snapshots.push(snapshot.clone()),
        }
    }
    for (run, record) in runs.iter_mut().zip(&ledger.runs) {
        attach_steps(run, &record.steps);
    }
    let running = runs.iter().any(|r| r.lock_since.is_some());
    History {
        release: subject.release.to_string(),
        namespace: subject.namespace.to_string(),
        location: subject.location.to_string(),
        without_run,
        lock: ledger.lock.as_ref().filter(|_| !running).map(|l| LockView {
            holder: l.holder.clone(),
            since: l.since.clone(),
            command: l.command.clone(),
            plan: l.plan.clone(),
        }),
        in_progress: ledger.in_progress.as_ref().filter(|_| !running).map(|p| InProgressView {
            direction: p.plan.direction.as_str().to_string(),
            from: p.plan.from.clone(),
            to: p.plan.to.clone(),
            hops: p.plan.hops.len(),
            // Saturating: read from a record anyone may edit (a panic here ended --history).
            next_hop: p.next_hop.saturating_add(1),
            started_at: p.started_at.clone(),
        }),
        runs,
        dropped: ledger.dropped,
        trimmed: ledger.trimmed.clone(),
        note: note.map(str::to_string),
    }
}

/// A run as recorded, without its hops, steps and snapshots yet.
fn run(record: &RunRecord, ledger: &Ledger) -> Run {
    // The lock is this run's while it has not ended: the latest unended run of its holder.
    let holds_lock = record.ended_at.is_none()
        && ledger.lock.as_ref().is_some_and(|l| l.holder == record.holder)
        && ledger.runs.iter().rev().find(|r| r.ended_at.is_none() && r.holder == record.holder) == Some(record);
    let outcome = match (&record.outcome, holds_lock) {
        (Some(outcome), _) => outcome.clone(),
        (None, true) => "running".to_string(),
        (None, false) => "crashed".to_string(),
    };
    Run {
        id: (record.id != 0).then_some(record.id),
        started_at: record.started_at.clone(),
        ended_at: record.ended_at.clone(),
        duration_ms: record.ended_at.as_deref().and_then(|end| between(&record.started_at, end)),
        who: who(&record.holder).to_string(),
        holder: record.holder.clone(),
        command: record.command.clone(),
        direction: record.direction.clone(),
        from: record.from.clone(),
        to: record.to.clone(),
        outcome,
        at: record.at.clone(),
        message: bounded(record.message.as_deref()),
        lock_since: ledger.lock.as_ref().filter(|_| holds_lock).map(|l| l.since.clone()),
        preflight: vec![],
        hops: vec![],
        snapshots: vec![],
    }
}

/// `user@host` of a holder `user@host pid N`.
fn who(holder: &str) -> &str {
    match holder.rsplit_once(" pid ") {
        Some((who, pid)) if pid.chars().all(|c| c.is_ascii_digit()) => who,
        _ => holder,
    }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// Milliseconds from `start` to `end` (RFC 3339), when both read and are in order.
fn between(start: &str, end: &str) -> Option<u64> {
    let elapsed = parse_time(end)?.duration_since(parse_time(start)?).ok()?;
    u64::try_from(elapsed.as_millis()).ok()
}

/// The run an entry belongs to: by its run id (schema 3), else (older records) the last
/// run that had started when the entry started and had not ended before it.
fn owner(runs: &[Run], id: Option<u64>, at: &str) -> Option<usize> {
    if let Some(id) = id {
        return runs.iter().position(|r| r.id == Some(id));
    }
    let at = parse_time(at)?;
    runs.iter().rposition(|r| {
        let started = parse_time(&r.started_at).is_some_and(|s| s <= at);
        let not_ended_before = match r.ended_at.as_deref() {
            Some(end) => parse_time(end).is_some_and(|e| at <= e),
            None => true,
        };
        started && not_ended_before
    })
}

fn attach_hop(run: &mut Run, record: &HopRecord) {
    run.hops.push(Hop {
        index: record.index,
        from: Some(record.from.clone()),
        to: Some(record.to.clone()),
        kind: Some(record.kind.clone()),
        procedure: record.procedure.clone(),
        started_at: Some(record.started_at.clone()),
        ended_at: record.ended_at.clone(),
        outcome: Some(record.outcome.as_str().to_string()),
        message: bounded(record.message.as_deref()),
        work_ms: record.work_ms,
        downtime_ms: record.downtime_ms,
        steps: vec![],
        way_back: vec![],
    });
}

/// A run's steps, each to its hop (a hop whose record was dropped gets one without its
/// fields); the preflight's apart. A step of a way back is marked so, and (records
/// written before the mark) any step of a hop after one of its steps failed is one.
fn attach_steps(run: &mut Run, steps: &[StepRecord]) {
    for step in steps {
        let Some(index) = step.hop else {
            run.preflight.push(step.clone());
            continue;
        };
        let position = match run.hops.iter().position(|h| h.index == Some(index)) {
            Some(p) => p,
            None => {
                run.hops.push(Hop { index: Some(index), ..Hop::default() });
                run.hops.len() - 1
            }
        };
        let hop = &mut run.hops[position];
        if step.way_back || hop.steps.iter().any(|s| s.outcome == "failed") || !hop.way_back.is_empty() {
            hop.way_back.push(step.clone());
        } else {
            hop.steps.push(step.clone());
        }
    }
    run.hops.sort_by_key(|h| h.index.unwrap_or(0));
}

/// The `-o json` document, its fields in the order of [`History`] (not a JSON value's
/// sorted keys: the release first, then its runs). Escaped for a terminal by the caller
/// ([`crate::text::json_for_terminal`]).
pub fn json(history: &History) -> String {
    serde_json::to_string_pretty(history).expect("a history always serialises")
}

/// A time between two of the record's timestamps, which have whole seconds: `4s`, `2m 05s`.
fn wall_text(ms: u64) -> String {
    if ms < 60_000 { format!("{}s", ms / 1000) } else { duration_text(ms) }
}

/// `1.9s`, `2m 05s`, `1h 02m`.
pub fn duration_text(ms: u64) -> String {
    let secs = Duration::from_millis(ms).as_secs();
    match secs {
        // Tenths cut, not rounded: 59.99 s is not yet a minute.
        0..60 => format!("{secs}.{}s", ms % 1000 / 100),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The colour of an outcome word the tool writes; None for anything else (a word from an
/// edited record is shown, escaped, but never painted).
fn outcome_role(word: &str) -> Option<Role> {
    match word {
        "completed" | "succeeded" | "ok" => Some(Role::Good),
        "failed" | "crashed" => Some(Role::Bad),
        "stopped" | "recovered" | "declined" | "interrupted" | "rolled-back" | "running" | "not started" => {
            Some(Role::Notice)
        }
        _ => None,
    }
}

/// An outcome from the record, escaped, painted only when it is one of the tool's words.
fn outcome(look: Look, word: &str) -> String {
    let shown = one_line(word);
    match outcome_role(word) {
        Some(role) => look.paint(role, &shown).into_owned(),
        None => shown,
    }
}

/// How long something took, as measured (` in 2.1s`) or between two timestamps (` in 4s`), dimmed.
#[derive(Clone, Copy)]
enum Took {
    Measured(u64),
    Between(u64),
}

fn took(look: Look, time: Option<Took>) -> String {
    let text = match time {
        Some(Took::Measured(ms)) => duration_text(ms),
        Some(Took::Between(ms)) => wall_text(ms),
        None => return String::new(),
    };
    format!(" in {}", look.paint(Role::Dim, &text))
}

/// A hop's time: its work as measured, else the time between its start and end.
fn hop_time(work_ms: Option<u64>, started_at: Option<&str>, ended_at: Option<&str>) -> Option<Took> {
    work_ms.map(Took::Measured).or_else(|| between(started_at?, ended_at?).map(Took::Between))
}

/// A message from the record, as long as a run writes one at most (cut at
/// `MAX_MESSAGE_BYTES`, then its note of what was dropped): a longer one was edited in,
/// and is not printed whole.
fn bounded(message: Option<&str>) -> Option<String> {
    const NOTE_OF_WHAT_WAS_DROPPED: usize = 64;
    let most = crate::run::ledger::MAX_MESSAGE_BYTES;
    message.map(|m| match m.len() <= most + NOTE_OF_WHAT_WAS_DROPPED {
        true => m.to_string(),
        false => crate::text::truncated(m, most).into_owned(),
    })
}

/// A message from the record: escaped, its further lines indented under the first.
fn message_text(text: &str, indent: usize) -> String {
    for_terminal(text.trim_end()).replace('\n', &format!("\n{}", " ".repeat(indent)))
}

/// The history as people read it, coloured and wrapped as `look` says.
pub fn table(history: &History, look: Look) -> String {
    let mut out = String::new();
    let release = one_line(&history.release);
    let nothing = history.runs.is_empty() && history.without_run.is_empty() && history.lock.is_none();
    if nothing {
        let namespace = one_line(&history.namespace);
        push_line(
            &mut out,
            look,
            &format!("no runs of helm-safe-upgrade are recorded for {release} in namespace {namespace}"),
        );
    } else {
        let title = format!("history of {release}: {}", count(history.runs.len(), "run", "runs"));
        let line = format!("{}, recorded in {}", look.paint(Role::Heading, &title), one_line(&history.location));
        push_line(&mut out, look, &line);
    }
    for run in &history.runs {
        out.push('\n');
        run_block(&mut out, look, run);
    }
    if !history.without_run.is_empty() {
        out.push('\n');
        without_run_block(&mut out, look, &history.without_run);
    }
    closing_lines(&mut out, look, history);
    out
}

/// One run: when, what, who; how it ended; its command; its preflight, hops, snapshots.
fn run_block(out: &mut String, look: Look, run: &Run) {
    let what = format!("{} {} → {}", one_line(&run.direction), run.from, run.to);
    let id = run.id.map(|id| format!(" (run {id})")).unwrap_or_default();
    let header = format!("{}  {}  by {}{id}", one_line(&run.started_at), what, one_line(&run.who));
    push_line(out, look, &look.paint(Role::Heading, &header));
    push_line(out, look, &format!("  {}", ending(look, run)));
    push_line(out, look, &format!("  command: {}", one_line(&run.command)));
    for step in &run.preflight {
        push_line(out, look, &format!("  preflight: {}", step_line(look, step)));
    }
    for (n, hop) in run.hops.iter().enumerate() {
        hop_lines(out, look, hop, n + 1, &run.outcome);
    }
    for snapshot in &run.snapshots {
        push_line(out, look, &format!("  {}", snapshot_line(snapshot)));
    }
}

/// How a run ended and where it left the release: `completed at 1.1.9 in 4.0s`,
/// `stopped at 1.2.6 in 12.0s: <why>`, `running: holds the lock since …`.
fn ending(look: Look, run: &Run) -> String {
    let word = outcome(look, &run.outcome);
    match run.outcome.as_str() {
        "running" => format!(
            "{word}: holds the lock since {} ({}); if that process is gone, --resume continues it",
            one_line(run.lock_since.as_deref().unwrap_or_default()),
            one_line(&run.holder)
        ),
        "crashed" => format!("{word}: no end on record (killed, or its machine lost, before it could record one)"),
        _ => {
            let at = run.at.as_ref().map(|v| format!(" at {v}")).unwrap_or_default();
            // A failed hop's error is the run's too: said once, under the hop.
            let said_below = run.hops.iter().enumerate().find(|(_, h)| h.message.is_some() && h.message == run.message);
            let why = match (said_below, run.message.as_deref()) {
                (Some((n, hop)), _) => {
                    let word = outcome(look, hop.outcome.as_deref().unwrap_or_default());
                    format!(": hop {} {word} (below)", hop.index.unwrap_or(n + 1))
                }
                (None, Some(message)) => format!(": {}", message_text(message, 4)),
                (None, None) => String::new(),
            };
            format!("{word}{at}{}{why}", took(look, run.duration_ms.map(Took::Between)))
        }
    }
}

/// A hop, its steps, its message and its way back. `n` numbers a hop recorded without
/// its place in the plan.
fn hop_lines(out: &mut String, look: Look, hop: &Hop, n: usize, run_outcome: &str) {
    let number = hop.index.unwrap_or(n);
    let line = match (&hop.from, &hop.to, &hop.outcome) {
        (Some(from), Some(to), Some(word)) => {
            let kind = one_line(hop.kind.as_deref().unwrap_or_default());
            let how = match &hop.procedure {
                Some(procedure) => format!("{kind}, {}", one_line(procedure)),
                None => kind,
            };
            let time = hop_time(hop.work_ms, hop.started_at.as_deref(), hop.ended_at.as_deref());
            let state = match (word.as_str(), run_outcome) {
                ("running", "crashed") => format!("{}: left so by a run that crashed", outcome(look, word)),
                ("running", _) => outcome(look, word),
                _ => format!("{}{}", outcome(look, word), took(look, time)),
            };
            let downtime = hop
                .downtime_ms
                .map(|ms| format!(", downtime {}", look.paint(Role::Dim, &duration_text(ms))))
                .unwrap_or_default();
            format!("  hop {number}: {from} → {to} ({how}): {state}{downtime}")
        }
        _ => format!("  hop {number} (its record was dropped to keep the ledger small):"),
    };
    push_line(out, look, &line);
    for step in &hop.steps {
        push_line(out, look, &format!("    {}", step_line(look, step)));
    }
    if let Some(message) = &hop.message {
        push_line(out, look, &format!("    {}", message_text(message, 6)));
    }
    if !hop.way_back.is_empty() {
        let to = hop.from.as_ref().map(|v| format!(" to {v}")).unwrap_or_default();
        push_line(out, look, &format!("    way back{to}:"));
        for step in &hop.way_back {
            push_line(out, look, &format!("      {}", step_line(look, step)));
        }
    }
}

/// `deploy 1.1.9: ok in 2.1s`, `confirm: ok in 40.0s, waiting for the operator`.
fn step_line(look: Look, step: &StepRecord) -> String {
    let waited = if step.waited_for_operator { ", waiting for the operator" } else { "" };
    let time = took(look, Some(Took::Measured(step.duration_ms)));
    format!("{}: {}{time}{waited}", one_line(&step.detail), outcome(look, &step.outcome))
}

/// `snapshot taken 2026-… while 1.0.4 ran: command`.
fn snapshot_line(snapshot: &SnapshotRecord) -> String {
    format!(
        "snapshot taken {} while {} ran: {}",
        one_line(&snapshot.taken_at),
        snapshot.version,
        one_line(&snapshot.how)
    )
}

fn without_run_block(out: &mut String, look: Look, entries: &Unattributed) {
    let title = "without a run on record (written before runs were recorded, or their run was dropped)";
    push_line(out, look, &look.paint(Role::Heading, title));
    for hop in &entries.hops {
        let procedure = hop.procedure.as_deref().map(|p| format!(", {}", one_line(p))).unwrap_or_default();
        let time = hop_time(hop.work_ms, Some(&hop.started_at), hop.ended_at.as_deref());
        let line = format!(
            "  {}  hop {} → {} ({}{procedure}): {}{}",
            one_line(&hop.started_at),
            hop.from,
            hop.to,
            one_line(&hop.kind),
            outcome(look, hop.outcome.as_str()),
            took(look, time)
        );
        push_line(out, look, &line);
        if let Some(message) = &hop.message {
            push_line(out, look, &format!("    {}", message_text(message, 4)));
        }
    }
    for snapshot in &entries.snapshots {
        push_line(out, look, &format!("  {}", snapshot_line(snapshot)));
    }
}

/// A lock no run on record holds, a plan left in progress, and what was dropped.
fn closing_lines(out: &mut String, look: Look, history: &History) {
    let mut lines = Vec::new();
    if let Some(lock) = &history.lock {
        let plan = lock.plan.as_deref().map(|p| format!(" ({})", one_line(p))).unwrap_or_default();
        lines.push(format!(
            "{} by {} since {}{plan}: {}",
            look.paint(Role::Notice, "locked"),
            one_line(&lock.holder),
            one_line(&lock.since),
            one_line(&lock.command)
        ));
    }
    if let Some(p) = &history.in_progress {
        lines.push(format!(
            "{}: {} {} → {}, hop {} of {} next (since {}); --resume continues it",
            look.paint(Role::Notice, "a plan is left in progress"),
            one_line(&p.direction),
            p.from,
            p.to,
            p.next_hop,
            p.hops,
            one_line(&p.started_at)
        ));
    }
    let dropped = history.dropped;
    if !dropped.is_nothing() {
        lines.push(format!(
            "older entries were dropped to keep the ledger small: {}, {}, {}",
            count(dropped.runs as usize, "run", "runs"),
            count(dropped.hops as usize, "hop", "hops"),
            count(dropped.snapshots as usize, "snapshot", "snapshots")
        ));
    }
    if let Some(trimmed) = &history.trimmed {
        lines.push(one_line(trimmed));
    }
    if !lines.is_empty() {
        out.push('\n');
    }
    for line in lines {
        push_line(out, look, &line);
    }
}

#[cfg(test)]
mod tests;
