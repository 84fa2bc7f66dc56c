//! The lock: the ledger record's `lock` field, taken and kept by compare-and-swap writes.
//!
//! Holding the lock means: the last write this run made is still the stored record.
//! Every write a run makes goes over the revision it last wrote, so a write succeeds only
//! while nobody else has written since; a run whose write is refused has lost the lock
//! (someone forced it away, or edited or deleted the record) and must change nothing
//! more. The executor writes before each change it makes (the start of each hop, each
//! further command of a hop), so it never starts a helm command without holding the lock.
//!
//! Taking a lock someone else holds is allowed only from a run that is gone:
//! - on this host, judged by pid and process start ([`crate::run::holder`]): a live run
//!   is never overridden, whatever the flags;
//! - on another host, only when the operator names the holder exactly
//!   (`--force-unlock='user@host pid N'`), since this machine cannot tell.

use std::sync::Arc;

use super::{Ledger, LedgerError, LedgerStore, Lock, Revision, Stored, now};
use crate::run::holder::{Liveness, Me, liveness};
use crate::text::{one_line, shell_quoted};

/// What the operator allows when the lock is held by someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// Never (a plain run).
    No,
    /// When the holder is a run of this host that is gone (`--force-unlock`, `--resume`).
    IfGone,
    /// When the holder is exactly this one and not a live run of this host
    /// (`--force-unlock=HOLDER`).
    Named(String),
}

/// What the new lock says about its holder.
#[derive(Clone, Debug)]
pub struct Claim {
    pub me: Me,
    /// The command line, values redacted.
    pub command: String,
    /// "upgrade 1.0.4 → 1.3.0 (3 hops)".
    pub plan: String,
}

/// The ledger of a release whose lock this run holds.
///
/// Dropping a `Held` without [`Held::release_lock`] deliberately leaves the lock in the
/// store: a run that panicked or was killed mid-walk may have left the release between
/// versions, and the lock (with the plan in progress) is what makes the next run stop and
/// offer `--resume` instead of starting afresh on a half-walked path.
#[derive(Debug)]
pub struct Held {
    store: Arc<dyn LedgerStore>,
    ledger: Ledger,
    revision: Revision,
}

fn lock_error(ledger: &Ledger, lock: &Lock, hint: String) -> LedgerError {
    LedgerError::Locked(Box::new(super::Locked {
        release: ledger.release.clone(),
        holder: one_line(&lock.holder),
        since: one_line(&lock.since),
        command: one_line(&lock.command),
        plan: lock.plan.as_deref().map(|p| format!(" ({})", one_line(p))).unwrap_or_default(),
        hint,
    }))
}

/// Why `lock` may not be taken under `takeover`; None when it may.
fn refusal(ledger: &Ledger, lock: &Lock, takeover: &Takeover) -> Option<LedgerError> {
    let holder = one_line(&lock.holder);
    let resume = if ledger.in_progress.is_some() { " --resume to continue the plan it left unfinished" } else { "" };
    let state = lock.holder_process().map(|p| liveness(&p)).unwrap_or(Liveness::Unknown);
    // The holder as stored, or as printed: a holder with control characters (an edited
    // record) is printed escaped, and the operator names what they were shown.
    let names_it = |named: &String| *named == lock.holder || *named == holder;
    let hint = match (state, takeover) {
        (Liveness::Alive, _) => {
            let pid = lock.holder_process().map(|p| p.pid).unwrap_or_default();
            format!(
                "that run is still alive on this machine (pid {pid}): wait for it to finish, or stop it (Ctrl-C in its terminal, or `kill -TERM {pid}`) and run this again{}; a live run's lock is never taken over",
                if resume.is_empty() { "" } else { " with --resume" }
            )
        }
        (Liveness::Gone, Takeover::IfGone) => return None,
        (Liveness::Gone | Liveness::Unknown, Takeover::Named(named)) if names_it(named) => return None,
        (_, Takeover::Named(named)) => format!(
            "--force-unlock names {}, but the lock is held by {}: name the holder exactly as printed",
            shell_quoted(&one_line(named)),
            shell_quoted(&holder)
        ),
        (Liveness::Gone, Takeover::No) => format!(
            "that run is gone (its process no longer exists on this machine): run again with{} --force-unlock",
            if resume.is_empty() { "" } else { " --resume or" }
        ),
        (Liveness::Unknown, _) => format!(
            "wait for that run to finish; it runs on another machine, so this one cannot tell whether it is alive. If you are sure it is gone, run again with --force-unlock={}{}",
            shell_quoted(&holder),
            if resume.is_empty() { "" } else { " (and --resume to continue its plan)" }
        ),
    };
    Some(lock_error(ledger, lock, hint))
}

/// What a plan (`--plan`, which takes no lock) says when the release's lock is held: a
/// run started now is refused, and what would let one start; None when it is free.
pub fn held_note(ledger: &Ledger) -> Option<String> {
    // The refusal a run would meet, its fields sanitised as it prints them.
    Some(match refusal(ledger, ledger.lock.as_ref()?, &Takeover::No)? {
        LedgerError::Locked(locked) => format!(
            "{} is locked by {} since {}{}: a run started now is refused ({})",
            locked.release, locked.holder, locked.since, locked.plan, locked.hint
        ),
        other => other.to_string(),
    })
}

impl Held {
    /// Load the record (or start one) and take its lock.
    ///
    /// Two acquirers racing both write with the revision they read; the store lets only
    /// one win, and the loser re-reads and reports the winner as the holder.
    pub fn acquire(store: Arc<dyn LedgerStore>, claim: &Claim, takeover: &Takeover) -> Result<Held, LedgerError> {
        Self::acquire_and_record(store, claim, takeover, &|_| {})
    }

    /// [`Held::acquire`], with `record` applied to the record in the same write that takes
    /// the lock (the run's start, its policy and chart): one write instead of two.
    pub fn acquire_and_record(
        store: Arc<dyn LedgerStore>,
        claim: &Claim,
        takeover: &Takeover,
        record: &dyn Fn(&mut Ledger),
    ) -> Result<Held, LedgerError> {
        // A conflict that is not another lock (a run releasing its lock just now) is
        // retried; a few rounds are plenty, since each one means someone else progressed.
        for _ in 0..5 {
            let (mut ledger, revision) = match store.load()? {
                Some(Stored { ledger, revision }) => (ledger, Some(revision)),
                None => (Ledger::new(store.release(), store.namespace()), None),
            };
            let broken = ledger.lock.clone();
            if let Some(lock) = &ledger.lock
                && let Some(refused) = refusal(&ledger, lock, takeover)
            {
                return Err(refused);
            }
            ledger.lock = Some(Lock {
                holder: claim.me.holder(),
                since: now(),
                command: claim.command.clone(),
                plan: Some(claim.plan.clone()),
                process: Some(claim.me.process.clone()),
            });
            // A hop still `running` belongs to a run that is gone (we hold the lock now).
            for hop in ledger.hops.iter_mut().filter(|h| h.outcome == super::HopOutcome::Running) {
                hop.outcome = super::HopOutcome::Stopped;
                hop.message = Some("the run was interrupted during this hop (its process ended)".into());
            }
            record(&mut ledger);
            ledger.fit()?;
            match store.write(&ledger, revision.as_ref()) {
                Ok(revision) => return Ok(Held { store, ledger, revision }),
                Err(LedgerError::Conflict { .. }) => {
                    if let Some(Stored { ledger: current, .. }) = store.load()?
                        && let Some(lock) = &current.lock
                        && Some(lock) != broken.as_ref()
                    {
                        // Someone else took it between our read and our write: they won.
                        return Err(lock_error(&current, lock, "wait for that run to finish".into()));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(LedgerError::Conflict { location: store.location() })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Change the record freely; [`Held::save`] stores it.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// Where the record lives, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Write the record over the revision this run last wrote; success proves the lock is
    /// still ours. A refused write means it is not ([`LedgerError::LockLost`]).
    ///
    /// A write that failed otherwise (a timeout, a reset connection) may still have been
    /// applied: the record is read back, and if it is what this run wrote, the write
    /// counts; if it is still what this run wrote before, the write is tried once more.
    /// The same read-back tells a refused retry of our own applied write from a lost lock.
    pub fn save(&mut self) -> Result<(), LedgerError> {
        // Trimmed here, not only on the way out: the read-back below compares the stored
        // record with this one.
        self.ledger.fit()?;
        match self.store.write(&self.ledger, Some(&self.revision)) {
            Ok(revision) => {
                self.revision = revision;
                Ok(())
            }
            // Refused: someone else wrote since. Or our own write landed and the client's
            // retry of it was the one refused: then the stored record is ours.
            Err(LedgerError::Conflict { location }) => match self.store.load() {
                Ok(Some(stored)) if stored.ledger == self.ledger => {
                    self.revision = stored.revision;
                    Ok(())
                }
                _ => Err(LedgerError::LockLost { location }),
            },
            Err(first) => match self.store.load() {
                Ok(Some(stored)) if stored.ledger == self.ledger => {
                    self.revision = stored.revision;
                    Ok(())
                }
                Ok(Some(stored)) if stored.revision == self.revision => {
                    match self.store.write(&self.ledger, Some(&self.revision)) {
                        Ok(revision) => {
                            self.revision = revision;
                            Ok(())
                        }
                        Err(LedgerError::Conflict { location }) => Err(LedgerError::LockLost { location }),
                        Err(e) => Err(e),
                    }
                }
                Ok(_) => Err(LedgerError::LockLost { location: self.store.location() }),
                Err(_) => Err(first),
            },
        }
    }

    /// Give the lock back and store the record one last time.
    pub fn release_lock(mut self) -> Result<Ledger, LedgerError> {
        self.ledger.lock = None;
        self.save()?;
        Ok(self.ledger)
    }
}
