//! Signals received during a run, counted rather than obeyed on the spot: dying mid-way
//! is what must not happen while helm writes a release or this run holds the lock.
//!
//! The process layer reads them to pass SIGTERM (and a second Ctrl-C) on to helm, the
//! executor to stop at the next safe point, the prompts to give way. What each means:
//! - the first SIGINT (Ctrl-C), SIGHUP (the terminal hung up) or lost output (a closed
//!   pipe): finish the step under way, stop at the next safe point;
//! - a second SIGINT, or SIGTERM: stop now (helm is told to stop; it marks the operation
//!   failed rather than leaving it `pending-*`);
//! - Ctrl-C at a prompt: the prompt gives way at once and says so itself ([`Signals::asking`]);
//! - SIGTSTP (Ctrl-Z): ignored, with a message (`terminal.rs` says why a run cannot be
//!   suspended);
//! - SIGQUIT (Ctrl-\): as a second Ctrl-C, at once: the run says what it leaves, helm is
//!   told to stop, and the run ends through its usual way out, which gives the terminal
//!   back (its foreground group, modes and cursor). Left to its default, SIGQUIT would
//!   kill the run where it stands: the lock held, helm's child still working, the
//!   terminal's foreground left to a dead group and the cursor possibly hidden.
//!
//! Installing them also takes the terminal's foreground ([`crate::terminal::take`]), so
//! that through helm the terminal's Ctrl-C reaches this process and not helm.
//!
//! POSIX only for SIGHUP, SIGTSTP, SIGQUIT and the foreground: elsewhere (Windows) Ctrl-C
//! and SIGTERM are counted as above, silently, and helm's own Ctrl-C behaviour stands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::printer::Printer;

/// Shared with the executor, which decides what they mean. `Default` is a set that
/// never receives anything (for completion and tests).
#[derive(Clone, Debug, Default)]
pub struct Signals {
    interrupts: Arc<AtomicUsize>,
    terminates: Arc<AtomicUsize>,
    /// SIGQUIT (Ctrl-\): stop now, as a second Ctrl-C.
    quits: Arc<AtomicUsize>,
    hangups: Arc<AtomicUsize>,
    output_lost: Arc<AtomicBool>,
    /// A prompt is open: it answers a Ctrl-C itself.
    asking: Arc<AtomicBool>,
    /// The run has begun to change things (it took the lock): until then a stop costs
    /// nothing, and is said so.
    changing: Arc<AtomicBool>,
}

/// While alive, a prompt is open ([`Signals::asking`]).
pub struct Asking(Arc<AtomicBool>);

impl Drop for Asking {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Signals {
    /// Receive SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGTSTP on a background thread from
    /// now on; say at once what the first of each means (the step under way may take
    /// minutes).
    #[cfg(unix)]
    pub fn install(printer: &Printer) -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
        let signals = Signals { output_lost: printer.lost_flag(), ..Signals::default() };
        let mut incoming = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP])?;
        let (seen, printer) = (signals.clone(), printer.clone());
        std::thread::spawn(move || {
            for signal in incoming.forever() {
                if signal == SIGTSTP {
                    printer.text("\nCtrl-Z: a run cannot be suspended (it holds the release's lock and helm keeps working); Ctrl-C stops it at the next safe point\n");
                    continue;
                }
                if signal == SIGQUIT {
                    if seen.quits.fetch_add(1, Ordering::SeqCst) == 0 {
                        let what = printer.text_look().paint(crate::printer::Role::Notice, "quit (Ctrl-\\)");
                        printer.text(&format!("\n{what}: stopping now, as a second Ctrl-C does\n"));
                    }
                    continue;
                }
                let (counter, what, again) = match signal {
                    SIGINT => (&seen.interrupts, "interrupted", " (Ctrl-C again stops the step now)"),
                    SIGTERM => (&seen.terminates, "terminating", ""),
                    // The SSH session dropped: like a first Ctrl-C, with nobody left to ask.
                    _ => (&seen.hangups, "the terminal hung up", ""),
                };
                let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                if first && !(signal == SIGINT && seen.asking.load(Ordering::SeqCst)) {
                    let what = printer.text_look().paint(crate::printer::Role::Notice, what);
                    if seen.changing.load(Ordering::SeqCst) {
                        printer.text(&format!(
                            "\n{what}: the step under way finishes, then the run stops at the next safe point{again}\n"
                        ));
                    } else {
                        let again = if signal == SIGINT { " (Ctrl-C again stops it now)" } else { "" };
                        printer.text(&format!(
                            "\n{what}: nothing has been changed; the run stops once the read under way returns{again}\n"
                        ));
                    }
                }
            }
        });
        crate::terminal::take();
        Ok(signals)
    }

    /// Without POSIX signals (Windows): Ctrl-C and SIGTERM are counted, as above, without
    /// a word (a handler may not print); there is no terminal to take.
    #[cfg(not(unix))]
    pub fn install(printer: &Printer) -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let signals = Signals { output_lost: printer.lost_flag(), ..Signals::default() };
        for (signal, counter) in [(SIGINT, &signals.interrupts), (SIGTERM, &signals.terminates)] {
            let counter = counter.clone();
            // SAFETY: the handler only increments an atomic counter.
            unsafe {
                signal_hook::low_level::register(signal, move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                })?;
            }
        }
        Ok(signals)
    }

    /// A prompt opens: until the returned value is dropped, a Ctrl-C is the prompt's to
    /// answer (it stops at once: nothing is under way).
    pub fn asking(&self) -> Asking {
        self.asking.store(true, Ordering::SeqCst);
        Asking(self.asking.clone())
    }

    /// The run is about to make its first change (it takes the lock): from now on a stop
    /// waits for a safe point.
    pub fn changes_begin(&self) {
        self.changing.store(true, Ordering::SeqCst);
    }

    /// Whether the run has begun to change things ([`Signals::changes_begin`]).
    pub fn changing(&self) -> bool {
        self.changing.load(Ordering::SeqCst)
    }

    /// Before the first change, a stop asked for ends the run here, having changed
    /// nothing (exit 5); read-only work is never worth finishing against the operator's
    /// word.
    pub fn stop_before_changes(&self) -> Result<(), String> {
        if self.changing() || !self.stop_requested() {
            return Ok(());
        }
        Err(format!("{} before any change: nothing was changed", self.stop_reason()))
    }

    pub fn interrupts(&self) -> usize {
        self.interrupts.load(Ordering::SeqCst)
    }

    pub fn terminated(&self) -> bool {
        self.terminates.load(Ordering::SeqCst) > 0
    }

    /// SIGQUIT (Ctrl-\) arrived: stop now.
    pub fn quit(&self) -> bool {
        self.quits.load(Ordering::SeqCst) > 0
    }

    /// The terminal is gone (SIGHUP): no prompt can be answered any more.
    pub fn hung_up(&self) -> bool {
        self.hangups.load(Ordering::SeqCst) > 0
    }

    /// Any reason to stop at the next safe point: a signal, or output that can no longer
    /// be written, since a run nobody can follow should not go on changing things.
    pub fn stop_requested(&self) -> bool {
        self.interrupts() > 0
            || self.terminated()
            || self.quit()
            || self.hung_up()
            || self.output_lost.load(Ordering::SeqCst)
    }

    /// Why the run stops, in words, for the report.
    pub fn stop_reason(&self) -> &'static str {
        if self.terminated() {
            "terminated (SIGTERM)"
        } else if self.quit() {
            "quit (SIGQUIT)"
        } else if self.interrupts() > 0 {
            "interrupted"
        } else if self.hung_up() {
            "the terminal hung up (SIGHUP)"
        } else {
            "the output was closed"
        }
    }

    /// A second Ctrl-C, a SIGTERM or a SIGQUIT: stop now, do not start a way back.
    pub fn stop_now(&self) -> bool {
        self.interrupts() >= 2 || self.terminated() || self.quit()
    }

    /// For tests of the executor: a Ctrl-C as if the terminal had sent it.
    pub fn simulate_interrupt(&self) {
        self.interrupts.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_interrupt_stops_at_a_safe_point_a_second_stops_now() {
        let signals = Signals::default();
        assert!(!signals.stop_requested());
        signals.simulate_interrupt();
        assert!(signals.stop_requested() && !signals.stop_now());
        assert_eq!(signals.stop_reason(), "interrupted");
        signals.simulate_interrupt();
        assert!(signals.stop_now());
    }

    #[test]
    fn a_quit_stops_now_as_a_second_interrupt_does() {
        let signals = Signals::default();
        signals.quits.fetch_add(1, Ordering::SeqCst);
        assert!(signals.stop_requested() && signals.stop_now());
        assert_eq!(signals.stop_reason(), "quit (SIGQUIT)");
        assert_eq!(signals.stop_before_changes(), Err("quit (SIGQUIT) before any change: nothing was changed".into()));
    }

    #[test]
    fn before_the_first_change_a_stop_ends_the_run_having_changed_nothing() {
        let signals = Signals::default();
        assert_eq!(signals.stop_before_changes(), Ok(()));
        signals.simulate_interrupt();
        assert_eq!(signals.stop_before_changes(), Err("interrupted before any change: nothing was changed".into()));
        signals.changes_begin();
        assert_eq!(signals.stop_before_changes(), Ok(()), "once changing, the walk decides where to stop");
    }

    #[test]
    fn lost_output_is_a_reason_to_stop() {
        let (printer, _, _) = Printer::captured(false);
        let signals = Signals { output_lost: printer.lost_flag(), ..Signals::default() };
        printer.lost_flag().store(true, Ordering::SeqCst);
        assert!(signals.stop_requested() && !signals.stop_now());
        assert_eq!(signals.stop_reason(), "the output was closed");
    }
}
