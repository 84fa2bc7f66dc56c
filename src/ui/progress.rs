//! Progress of a live run: a spinner with the elapsed time of the step under way for a
//! person at a terminal, plain timestamped lines elsewhere (CI logs, files, pipes). The
//! [`Printer`] decides which.
//!
//! Finished steps and messages are always printed as lines of their own, never through
//! the spinner: indicatif prints nothing through a hidden bar, and what a run did must
//! reach every log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::{Look, Printer, Role};
use crate::sensitive::Disclosure;

pub struct Progress {
    printer: Printer,
    current: Mutex<Option<ProgressBar>>,
    clock: Mutex<Option<Clock>>,
}

/// Where the hop under way stands against its estimate, shown beside each step's spinner:
/// `hop 3 min of ~12 min, ~20 min left`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub hop_started: Instant,
    /// The hop's expected seconds; None: unknown (only the hop's elapsed time is shown).
    pub hop_expected: Option<u64>,
    /// The expected seconds of the hops after this one; None: one of them is unknown.
    pub after_hop: Option<u64>,
}

impl Clock {
    /// ` · hop 3 min of ~12 min, ~20 min left` as of now.
    pub fn text(&self) -> String {
        use crate::plan::estimate::{about, short};
        let elapsed = self.hop_started.elapsed().as_secs();
        let Some(expected) = self.hop_expected else {
            return format!(" · hop {}", short(elapsed));
        };
        let left = self
            .after_hop
            .map(|after| format!(", {} left", about(after.saturating_add(expected.saturating_sub(elapsed)))));
        format!(" · hop {} of {}{}", short(elapsed), about(expected), left.unwrap_or_default())
    }
}

impl Progress {
    pub fn new(printer: Printer) -> Progress {
        Progress { printer, current: Mutex::new(None), clock: Mutex::new(None) }
    }

    /// How stderr looks, for callers that colour words of their lines.
    pub fn look(&self) -> Look {
        self.printer.text_look()
    }

    /// A heading line (a hop starts).
    pub fn heading(&self, text: &str) {
        self.line(&self.look().paint(Role::Heading, text));
    }

    /// Who reads the lines: the operator on their terminal, or anyone (a log).
    pub fn disclosure(&self) -> Disclosure {
        self.printer.disclosure()
    }

    /// A message line; a running spinner steps aside for it.
    pub fn line(&self, text: &str) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(bar) => bar.suspend(|| self.printer.line(text)),
            None => self.printer.line(text),
        }
    }

    /// The hop under way, for the spinners of its steps (None between hops).
    pub fn set_clock(&self, clock: Option<Clock>) {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = clock;
    }

    /// A step starts. `asks` steps wait for the operator, so they get a line, not a spinner
    /// that would draw over the question.
    pub fn step_started(&self, text: &str, asks: bool) {
        if self.printer.interactive() && !asks {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let clock = *self.clock.lock().unwrap_or_else(|e| e.into_inner());
            // The step, its elapsed time, the hop against its estimate, then what the
            // rollout is doing (`step_detail`).
            let style = ProgressStyle::with_template("{spinner} {prefix} ({elapsed}{hop}){msg}")
                .expect("valid template")
                .with_key("hop", move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    if let Some(clock) = clock {
                        let _ = w.write_str(&clock.text());
                    }
                });
            bar.set_style(style);
            bar.set_prefix(text.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        } else {
            self.line(&format!("{text} ..."));
        }
    }

    /// What the step under way is doing, under its spinner (lines start with a newline);
    /// nothing in logs, where only finished steps and messages are written.
    pub fn step_detail(&self, detail: &str) {
        if let Some(bar) = self.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.set_message(detail.to_string());
        }
    }

    /// A step ended: its line stays, with the outcome and how long it took.
    pub fn step_finished(&self, text: &str, outcome: &str, elapsed: Duration) {
        if let Some(bar) = self.current.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
        let look = self.look();
        let role = match outcome {
            "ok" => Role::Good,
            "failed" => Role::Bad,
            _ => Role::Notice,
        };
        let took = format!("({:.1}s)", elapsed.as_secs_f64());
        self.line(&format!("{text}: {} {}", look.paint(role, outcome), look.paint(Role::Dim, &took)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_shows_the_hop_against_its_estimate_and_the_time_left() {
        let started = Instant::now().checked_sub(Duration::from_secs(200)).unwrap();
        let clock = Clock { hop_started: started, hop_expected: Some(720), after_hop: Some(600) };
        assert_eq!(clock.text(), " · hop 3 min of ~12 min, ~19 min left");
        let last = Clock { after_hop: Some(0), ..clock };
        assert_eq!(last.text(), " · hop 3 min of ~12 min, ~9 min left");
        let over = Clock { hop_expected: Some(60), after_hop: Some(0), ..clock };
        assert_eq!(over.text(), " · hop 3 min of ~1 min, ~0 s left", "over its estimate: nearly done");
        let unknown_after = Clock { after_hop: None, ..clock };
        assert_eq!(unknown_after.text(), " · hop 3 min of ~12 min");
        let unknown = Clock { hop_expected: None, ..clock };
        assert_eq!(unknown.text(), " · hop 3 min");
    }
}
