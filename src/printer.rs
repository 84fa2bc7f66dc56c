//! The one owner of stdout and stderr.
//!
//! stdout carries data (a plan, one JSON document); stderr carries what people read:
//! messages, the plan before a confirmation, prompts, progress. Whether a line gets a
//! timestamp (logs of CI jobs and pipes do, a terminal does not), whether spinners run,
//! and later colour and width are decided here, once, from the terminal and the
//! environment, rather than at every place that prints.
//!
//! Writing never panics. `eprintln!` does when stderr is gone (`2>&1 | head -5` closed
//! the pipe, or the SSH session dropped), and a panic in a run that holds the lock would
//! leave it held with a hop recorded `running`. A failed write is remembered instead
//! ([`Printer::output_lost`]), and the run treats lost output like an interrupt: it
//! finishes the step under way, stops at the next safe point and releases the lock.
//!
//! It also decides who reads each stream ([`Printer::disclosure`]): the operator at
//! their own terminal may see the values they passed with `--set`; a log, a file or a
//! pipe is read by anyone, later, and sees none.
//!
//! It is a leaf: the process layer, the executor and the renderer all print through it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::sensitive::Disclosure;

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where output goes and how it looks. Cheap to clone; clones share the streams.
#[derive(Clone)]
pub struct Printer {
    out: Sink,
    err: Sink,
    /// stderr is a terminal a person watches (not a CI log): no timestamps, spinners.
    interactive: bool,
    /// ... and so is stdout (not redirected to a file or a pipe).
    data_interactive: bool,
    /// A write has failed: the stream is gone (shared by clones, and by the run's
    /// signals, which turn it into a stop at the next safe point).
    lost: Arc<AtomicBool>,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("interactive", &self.interactive)
            .field("data_interactive", &self.data_interactive)
            .finish()
    }
}

/// Spinners and untimestamped lines only for a person at a terminal, never in CI
/// (whose "terminal" is a log).
pub fn is_interactive(stderr_is_terminal: bool, ci: bool) -> bool {
    stderr_is_terminal && !ci
}

impl Printer {
    /// The process's own stdout and stderr.
    pub fn stdio() -> Printer {
        use std::io::IsTerminal;
        Printer {
            out: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
            err: Arc::new(Mutex::new(Box::new(std::io::stderr()))),
            interactive: is_interactive(std::io::stderr().is_terminal(), crate::env::in_ci()),
            data_interactive: is_interactive(std::io::stdout().is_terminal(), crate::env::in_ci()),
            lost: Arc::default(),
        }
    }

    /// Output into memory, for tests: (printer, stdout, stderr); `interactive` stands for
    /// both streams.
    pub fn captured(interactive: bool) -> (Printer, Captured, Captured) {
        let (out, err) = (Captured::default(), Captured::default());
        let printer = Printer {
            out: Arc::new(Mutex::new(Box::new(out.clone()))),
            err: Arc::new(Mutex::new(Box::new(err.clone()))),
            interactive,
            data_interactive: interactive,
            lost: Arc::default(),
        };
        (printer, out, err)
    }

    /// Whether a person watches stderr on a terminal (spinners, no timestamps).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Who reads the message lines on stderr: the operator, on a terminal they watch
    /// (interactive, not CI), or anyone (a log, a file, a pipe).
    pub fn disclosure(&self) -> Disclosure {
        if self.interactive { Disclosure::OperatorTerminal } else { Disclosure::Redacted }
    }

    /// Who reads the data on stdout: the operator only when stdout is that terminal
    /// too (`> report.txt` is read by anyone).
    pub fn data_disclosure(&self) -> Disclosure {
        if self.interactive && self.data_interactive { Disclosure::OperatorTerminal } else { Disclosure::Redacted }
    }

    /// Whether a write to stdout or stderr has failed.
    pub fn output_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The flag [`Printer::output_lost`] reads, for the run's signals.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    fn write(&self, sink: &Sink, text: &str) {
        let mut stream = sink.lock().unwrap_or_else(|e| e.into_inner());
        if stream.write_all(text.as_bytes()).and_then(|_| stream.flush()).is_err() {
            self.lost.store(true, Ordering::SeqCst);
        }
    }

    /// A message line for people on stderr: as it is on a terminal, after a UTC
    /// timestamp in logs.
    pub fn line(&self, text: &str) {
        if self.interactive {
            self.write(&self.err, &format!("{text}\n"));
        } else {
            self.write(&self.err, &format!("[{}] {text}\n", humantime::format_rfc3339_seconds(SystemTime::now())));
        }
    }

    /// Text on stderr exactly as given (a plan table, a prompt): no timestamp, no newline.
    pub fn text(&self, text: &str) {
        self.write(&self.err, text);
    }

    /// Data on stdout (a plan, a JSON document) exactly as given.
    pub fn data(&self, text: &str) {
        self.write(&self.out, text);
    }
}

/// Bytes written to a captured stream.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinners_and_bare_lines_only_on_a_terminal_outside_ci() {
        assert!(is_interactive(true, false));
        assert!(!is_interactive(true, true));
        assert!(!is_interactive(false, false));
    }

    #[test]
    fn values_are_disclosed_only_to_a_terminal_a_person_watches() {
        let printer = |interactive, data_interactive| Printer { data_interactive, ..Printer::captured(interactive).0 };
        assert_eq!(printer(true, true).disclosure(), Disclosure::OperatorTerminal);
        assert_eq!(printer(true, true).data_disclosure(), Disclosure::OperatorTerminal);
        // `helm safe-upgrade … > report.txt`: the messages on the terminal, the data in a file.
        assert_eq!(printer(true, false).disclosure(), Disclosure::OperatorTerminal);
        assert_eq!(printer(true, false).data_disclosure(), Disclosure::Redacted);
        // A log (CI, a pipe, a file) is read by anyone.
        assert_eq!(printer(false, true).disclosure(), Disclosure::Redacted);
        assert_eq!(printer(false, true).data_disclosure(), Disclosure::Redacted);
    }

    #[test]
    fn lines_in_logs_carry_a_timestamp_and_data_goes_to_stdout() {
        let (printer, out, err) = Printer::captured(false);
        printer.line("hop 1/3");
        printer.data("{}\n");
        assert!(err.text().starts_with("[20") && err.text().ends_with("Z] hop 1/3\n"), "{}", err.text());
        assert_eq!(out.text(), "{}\n");
        let (printer, _, err) = Printer::captured(true);
        printer.line("hop 1/3");
        printer.text("Start? [y/N] ");
        assert_eq!(err.text(), "hop 1/3\nStart? [y/N] ");
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_remembered_never_a_panic() {
        let printer = Printer {
            out: Arc::new(Mutex::new(Box::new(Broken))),
            err: Arc::new(Mutex::new(Box::new(Broken))),
            interactive: false,
            data_interactive: false,
            lost: Arc::default(),
        };
        assert!(!printer.output_lost());
        printer.line("lost");
        assert!(printer.output_lost() && printer.clone().output_lost());
    }
}
