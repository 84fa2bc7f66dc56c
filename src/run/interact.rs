//! Talking to the operator: confirmations and the pause between hops.
//!
//! Decided once per run: `--yes` answers every question with yes (CI); otherwise a
//! terminal is required, because a prompt nobody can answer would hang a pipeline. The
//! decision is a pure function so it is tested without a terminal.
//!
//! On a terminal the prompts are dialoguer's, on the controlling terminal: a `[y/N]`
//! that waits for Enter, a menu at the pause, a typed release name before a rollback that
//! may lose data. Each runs on a thread of its own while this one watches the run's
//! signals, because a prompt reads keys in a blocking read that a SIGTERM or a hang-up
//! would otherwise sit out. Ctrl-C at a prompt stops at once ([`Answer::Interrupted`]):
//! nothing is under way, so there is no step to finish. What was typed ahead (Enter
//! pressed during a hop) is dropped before each question, so it cannot answer it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use dialoguer::console::Term;
use dialoguer::theme::SimpleTheme;

use crate::printer::Printer;
use crate::signals::Signals;
use crate::terminal;

/// The operator's answer to a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// No, or nobody can answer any more (input ended, the terminal hung up).
    No,
    /// Ctrl-C at the prompt.
    Interrupted,
}

impl Answer {
    pub fn is_yes(self) -> bool {
        self == Answer::Yes
    }
}

/// What the operator chose at a pause between hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseChoice {
    Continue,
    Stop,
    RollBack,
    Status,
    /// Ctrl-C at the pause: stop here, as "stop" does.
    Interrupted,
}

pub trait Interaction {
    /// A yes/no question.
    fn confirm(&self, question: &str) -> Answer;
    /// The pause after a verified hop.
    fn pause(&self, summary: &str) -> PauseChoice;
    /// Whether a person answers (so steps such as a manual restore may be asked for).
    fn attended(&self) -> bool;
    /// A confirmation that costs more than `y`: the operator types `expected` (the
    /// release name) before something that may lose data.
    fn confirm_typed(&self, prompt: &str, expected: &str) -> Answer;
}

/// `--yes`: every question answered yes, no pauses.
pub struct Unattended {
    pub printer: Printer,
}

impl Interaction for Unattended {
    fn confirm(&self, question: &str) -> Answer {
        self.printer.line(&format!("{question} yes (--yes)"));
        Answer::Yes
    }
    fn pause(&self, _summary: &str) -> PauseChoice {
        PauseChoice::Continue
    }
    fn attended(&self) -> bool {
        false
    }
    fn confirm_typed(&self, _prompt: &str, expected: &str) -> Answer {
        self.printer.line(&format!("confirmed for {expected} by --yes --accept-data-loss"));
        Answer::Yes
    }
}

/// How many times a mistyped release name is asked again before the run stops.
const TYPED_NAME_TRIES: usize = 3;

/// The pause menu, in the order shown; the first is preselected.
const PAUSE_MENU: [(&str, PauseChoice); 4] = [
    ("continue with the next hop", PauseChoice::Continue),
    ("stop here (run the same command again to continue later)", PauseChoice::Stop),
    ("roll back this hop", PauseChoice::RollBack),
    ("show the release's status", PauseChoice::Status),
];

/// The controlling terminal (`/dev/tty`) when stderr is not it; else stderr, which is then
/// no terminal and so asks nothing.
#[cfg(unix)]
fn controlling_terminal() -> Term {
    match (std::fs::File::options().read(true).write(true).open("/dev/tty"), std::fs::File::open("/dev/tty")) {
        (Ok(write), Ok(read)) => Term::read_write_pair(read, write),
        _ => Term::stderr(),
    }
}

/// No `/dev/tty` on Windows (and the console crate pairs streams on Unix only): stderr,
/// which is then no terminal, so a run whose stderr is redirected asks nothing, as one
/// without a terminal does.
#[cfg(not(unix))]
fn controlling_terminal() -> Term {
    Term::stderr()
}

/// dialoguer's prompts on the controlling terminal.
pub struct Terminal {
    signals: Signals,
    printer: Printer,
    term: Term,
    /// stderr is not the terminal (`2>&1 | tee run.log`): the prompts go to the terminal
    /// and each answer is also written to the log.
    log_answers: bool,
    /// A prompt was left behind still reading keys (a SIGTERM arrived while it waited):
    /// no later prompt may compete with it for the keyboard.
    abandoned: AtomicBool,
}

/// How a prompt ended.
enum Reply<T> {
    Answered(T),
    Interrupted,
    /// Nobody can answer: input ended, the terminal is gone, or the run must stop now.
    Gone,
}

impl Terminal {
    fn new(signals: Signals, printer: Printer) -> Terminal {
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let term = if stderr_is_terminal { Term::stderr() } else { controlling_terminal() };
        Terminal { signals, printer, term, log_answers: !stderr_is_terminal, abandoned: AtomicBool::new(false) }
    }

    /// Ask on a thread of its own; give way to Ctrl-C, a hang-up or a SIGTERM.
    fn ask<T: Send + 'static>(
        &self,
        question: impl FnOnce(&Term) -> dialoguer::Result<T> + Send + 'static,
    ) -> Reply<T> {
        if self.abandoned.load(Ordering::SeqCst) || !self.term.is_term() {
            return Reply::Gone;
        }
        terminal::discard_typeahead();
        terminal::prompt_started();
        let _asking = self.signals.asking();
        let interrupts = self.signals.interrupts();
        let (tx, rx) = channel();
        let term = self.term.clone();
        std::thread::spawn(move || {
            let _ = tx.send(question(&term));
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(answer)) => return Reply::Answered(answer),
                Ok(Err(dialoguer::Error::IO(e))) if e.kind() == std::io::ErrorKind::Interrupted => {
                    // The terminal was raw, so the key came as a byte: `console` raised
                    // SIGINT itself, which the signal thread counts a moment later. Wait
                    // for it while the prompt is still open, or the thread would take it
                    // for a Ctrl-C during a step and say so.
                    let deadline = std::time::Instant::now() + Duration::from_secs(1);
                    while self.signals.interrupts() == interrupts && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    self.after_interrupt();
                    return Reply::Interrupted;
                }
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.term.show_cursor();
                    self.printer.text("\n");
                    return Reply::Gone;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let interrupted = self.signals.interrupts() > interrupts;
                    if interrupted || self.signals.terminated() || self.signals.quit() || self.signals.hung_up() {
                        // The prompt's thread still waits for a key: leave it to the end
                        // of the process, and ask nothing more.
                        self.abandoned.store(true, Ordering::SeqCst);
                        if interrupted {
                            self.after_interrupt();
                            return Reply::Interrupted;
                        }
                        let _ = self.term.show_cursor();
                        self.printer.text("\n");
                        return Reply::Gone;
                    }
                }
            }
        }
    }

    fn after_interrupt(&self) {
        let _ = self.term.show_cursor();
        self.printer.text("^C\ninterrupted at the prompt: stopping now (nothing was under way)\n");
    }

    /// Lines before the question itself go through the printer (a multi-line prompt
    /// would be redrawn at every key); the last line is the prompt.
    fn split<'q>(&self, question: &'q str) -> &'q str {
        match question.rsplit_once('\n') {
            Some((before, last)) => {
                self.printer.text(&format!("{before}\n"));
                last
            }
            None => question,
        }
    }

    fn log(&self, question: &str, answer: &str) {
        if self.log_answers {
            self.printer.line(&format!("{question} {answer}"));
        }
    }
}

impl Interaction for Terminal {
    fn confirm(&self, question: &str) -> Answer {
        let prompt = self.split(question).to_string();
        let asked = prompt.clone();
        let reply = self.ask(move |term| {
            dialoguer::Confirm::with_theme(&SimpleTheme)
                .with_prompt(asked)
                .default(false)
                .wait_for_newline(true)
                .interact_on(term)
        });
        let answer = match reply {
            Reply::Answered(true) => Answer::Yes,
            Reply::Answered(false) | Reply::Gone => Answer::No,
            Reply::Interrupted => Answer::Interrupted,
        };
        self.log(&prompt, if answer.is_yes() { "yes" } else { "no" });
        answer
    }

    fn pause(&self, summary: &str) -> PauseChoice {
        self.printer.text(&format!("{}\n", self.printer.text_look().wrap(summary)));
        let reply = self.ask(|term| {
            dialoguer::Select::with_theme(&SimpleTheme)
                .with_prompt("What next? (arrows and Enter)")
                .items(PAUSE_MENU.iter().map(|(label, _)| *label))
                .default(0)
                .interact_on(term)
        });
        let choice = match reply {
            Reply::Answered(i) => PAUSE_MENU[i].1,
            // Nobody is there to continue: stopping keeps the release at a good version.
            Reply::Gone => PauseChoice::Stop,
            Reply::Interrupted => PauseChoice::Interrupted,
        };
        if let Some((label, _)) = PAUSE_MENU.iter().find(|(_, c)| *c == choice) {
            self.log("What next?", label);
        }
        choice
    }

    fn attended(&self) -> bool {
        true
    }

    fn confirm_typed(&self, prompt: &str, expected: &str) -> Answer {
        self.printer.text(&format!("{}\n", self.printer.text_look().wrap(prompt)));
        for try_number in 1..=TYPED_NAME_TRIES {
            let label = format!("Type the release name ({expected}) to go on, or nothing to stop");
            let reply = self.ask(move |term| {
                dialoguer::Input::<String>::with_theme(&SimpleTheme)
                    .with_prompt(label)
                    .allow_empty(true)
                    .interact_text_on(term)
            });
            let typed = match reply {
                Reply::Answered(typed) => typed.trim().to_string(),
                Reply::Gone => return Answer::No,
                Reply::Interrupted => return Answer::Interrupted,
            };
            if typed == expected {
                self.log("release name typed:", expected);
                return Answer::Yes;
            }
            if typed.is_empty() {
                self.log("release name typed:", "(nothing)");
                return Answer::No;
            }
            let left = TYPED_NAME_TRIES - try_number;
            let typed = crate::text::truncated(&crate::text::one_line(&typed), 60).into_owned();
            if left == 0 {
                self.printer.text(&format!("\"{typed}\" did not match the release name {expected}: stopping\n"));
            } else {
                self.printer.text(&format!(
                    "\"{typed}\" did not match the release name {expected}; {} left\n",
                    crate::text::count(left, "try", "tries")
                ));
            }
        }
        Answer::No
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
        Mode::Terminal => Box::new(Terminal::new(signals.clone(), printer.clone())),
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
