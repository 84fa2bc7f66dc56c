//! Progress on stderr: a spinner with the elapsed time of the step under way on a
//! terminal, plain timestamped lines elsewhere (CI logs, files, pipes).
//!
//! Finished steps and messages are always printed as lines of their own, never through
//! the spinner: indicatif prints nothing through a hidden bar, and what a run did must
//! reach every log.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    spinners: bool,
    current: Mutex<Option<ProgressBar>>,
}

/// Spinners only for a person at a terminal, and never in CI (whose "terminal" is a log).
pub fn wants_spinners(stderr_is_terminal: bool, ci: bool) -> bool {
    stderr_is_terminal && !ci
}

impl Progress {
    pub fn for_stderr() -> Progress {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Progress { spinners: wants_spinners(std::io::stderr().is_terminal(), ci), current: Mutex::new(None) }
    }

    /// Lines only, whatever stderr is.
    pub fn lines() -> Progress {
        Progress { spinners: false, current: Mutex::new(None) }
    }

    /// A message line; a running spinner steps aside for it.
    pub fn line(&self, text: &str) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(bar) => bar.suspend(|| crate::term::err_line(text)),
            None if self.spinners => crate::term::err_line(text),
            None => crate::term::err_line(&format!(
                "[{}] {text}",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            )),
        }
    }

    /// A step starts. `asks` steps wait for the operator, so they get a line, not a spinner
    /// that would draw over the question.
    pub fn step_started(&self, text: &str, asks: bool) {
        if self.spinners && !asks {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
            bar.set_message(text.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        } else {
            self.line(&format!("{text} ..."));
        }
    }

    /// A step ended: its line stays, with the outcome and how long it took.
    pub fn step_finished(&self, text: &str, outcome: &str, elapsed: Duration) {
        if let Some(bar) = self.current.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
        self.line(&format!("{text}: {outcome} ({:.1}s)", elapsed.as_secs_f64()));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spinners_only_on_a_terminal_outside_ci() {
        assert!(super::wants_spinners(true, false));
        assert!(!super::wants_spinners(true, true));
        assert!(!super::wants_spinners(false, false));
    }
}
