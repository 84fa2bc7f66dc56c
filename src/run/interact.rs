//! Talking to the operator: confirmations and the pause between hops.
//!
//! Decided once per run: `--yes` answers every question with yes (CI); otherwise a
//! terminal is required, because a prompt nobody can answer would hang a pipeline. The
//! decision is a pure function so it is tested without a terminal; the prompts are plain
//! lines on stderr read from stdin, so they work over ssh, in tmux, and in pty tests.

use std::io::{BufRead, IsTerminal};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::printer::Printer;
use crate::signals::Signals;

/// What the operator chose at a pause between hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseChoice {
    Continue,
    Stop,
    RollBack,
    Status,
}

pub trait Interaction {
    /// A yes/no question; `false` when the answer is no (or input ended).
    fn confirm(&self, question: &str) -> bool;
    /// The pause after a verified hop.
    fn pause(&self, summary: &str) -> PauseChoice;
    /// Whether a person answers (so steps such as a manual restore may be asked for).
    fn attended(&self) -> bool;
    /// A confirmation that costs more than `y`: the operator types `expected` (the
    /// release name) before something that may lose data.
    fn confirm_typed(&self, prompt: &str, expected: &str) -> bool;
}

/// `--yes`: every question answered yes, no pauses.
pub struct Unattended {
    pub printer: Printer,
}

impl Interaction for Unattended {
    fn confirm(&self, question: &str) -> bool {
        self.printer.line(&format!("{question} yes (--yes)"));
        true
    }
    fn pause(&self, _summary: &str) -> PauseChoice {
        PauseChoice::Continue
    }
    fn attended(&self) -> bool {
        false
    }
    fn confirm_typed(&self, _prompt: &str, expected: &str) -> bool {
        self.printer.line(&format!("confirmed for {expected} by --yes --accept-data-loss"));
        true
    }
}

/// Line prompts on stderr, answers from stdin.
pub struct Terminal {
    pub signals: Signals,
    pub printer: Printer,
}

/// Lines of stdin, read by one background thread, so that a prompt can also give way to
/// Ctrl-C (a blocking read would sit out the interrupt until Enter).
fn lines() -> &'static Mutex<Receiver<Option<String>>> {
    static LINES: OnceLock<Mutex<Receiver<Option<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            loop {
                let mut line = String::new();
                let read = stdin.lock().read_line(&mut line);
                let ended = matches!(read, Ok(0) | Err(_));
                if tx.send((!ended).then(|| line.trim().to_lowercase())).is_err() || ended {
                    return;
                }
            }
        });
        Mutex::new(rx)
    })
}

impl Terminal {
    /// The next answer; `None` at end of input or when Ctrl-C is pressed while waiting.
    fn read_answer(&self) -> Option<String> {
        let interrupts = self.signals.interrupts();
        let rx = lines().lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(answer) => return answer,
                Err(RecvTimeoutError::Disconnected) => return None,
                // The terminal hung up: nobody will answer.
                Err(RecvTimeoutError::Timeout)
                    if self.signals.interrupts() > interrupts
                        || self.signals.terminated()
                        || self.signals.hung_up() =>
                {
                    self.printer.text("\n");
                    return None;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Interaction for Terminal {
    fn confirm(&self, question: &str) -> bool {
        loop {
            self.printer.text(&format!("{question} [y/N] "));
            match self.read_answer().as_deref() {
                Some("y" | "yes") => return true,
                Some("n" | "no" | "") | None => return false,
                Some(_) => self.printer.text("please answer y or n\n"),
            }
        }
    }

    fn pause(&self, summary: &str) -> PauseChoice {
        loop {
            self.printer.text(&format!("{summary}\n[c]ontinue, [s]top here, [r]oll back this hop, show s[t]atus? "));
            match self.read_answer().as_deref() {
                Some("c" | "continue") => return PauseChoice::Continue,
                // End of input means nobody is there to continue: stopping keeps the
                // release at a good version.
                Some("s" | "stop") | None => return PauseChoice::Stop,
                Some("r" | "rollback" | "roll back") => return PauseChoice::RollBack,
                Some("t" | "status") => return PauseChoice::Status,
                Some(_) => self.printer.text("please answer c, s, r or t\n"),
            }
        }
    }

    fn attended(&self) -> bool {
        true
    }

    fn confirm_typed(&self, prompt: &str, expected: &str) -> bool {
        self.printer.text(&format!("{prompt}\nType the release name ({expected}) to go on, anything else to stop: "));
        // Compared as typed (read_answer lowercases; release names are lowercase DNS labels).
        self.read_answer().as_deref() == Some(expected.to_lowercase().as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Unattended,
    Terminal,
}

/// `--yes` wins; else a terminal on stdin outside CI; else refuse with a hint.
pub fn decide(yes: bool, stdin_is_terminal: bool, ci: bool) -> Result<Mode, String> {
    if yes {
        Ok(Mode::Unattended)
    } else if stdin_is_terminal && !ci {
        Ok(Mode::Terminal)
    } else {
        let why = if ci { "CI is set" } else { "stdin is not a terminal" };
        Err(format!(
            "this run would stop to ask questions, and nobody can answer them ({why})\nhint: pass --yes to run unattended, or --plan to only print the plan"
        ))
    }
}

pub fn for_this_process(yes: bool, signals: &Signals, printer: &Printer) -> Result<Box<dyn Interaction>, String> {
    Ok(match decide(yes, std::io::stdin().is_terminal(), crate::env::in_ci())? {
        Mode::Unattended => Box::new(Unattended { printer: printer.clone() }),
        Mode::Terminal => Box::new(Terminal { signals: signals.clone(), printer: printer.clone() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_always_runs_unattended() {
        assert_eq!(decide(true, false, true), Ok(Mode::Unattended));
        assert_eq!(decide(true, true, false), Ok(Mode::Unattended));
    }

    #[test]
    fn a_terminal_outside_ci_is_asked() {
        assert_eq!(decide(false, true, false), Ok(Mode::Terminal));
    }

    #[test]
    fn no_terminal_or_ci_without_yes_is_refused_with_a_hint() {
        let err = decide(false, false, false).unwrap_err();
        assert!(err.contains("stdin is not a terminal") && err.contains("--yes"), "{err}");
        let err = decide(false, true, true).unwrap_err();
        assert!(err.contains("CI is set"), "{err}");
    }
}
