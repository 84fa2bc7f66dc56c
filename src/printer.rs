//! The one owner of stdout and stderr.
//!
//! stdout carries data (a plan, one JSON document); stderr carries what people read:
//! messages, the plan before a confirmation, prompts, progress. Whether a line gets a
//! timestamp (logs of CI jobs and pipes do, a terminal does not), whether spinners run,
//! whether text is coloured and how wide it may be are decided here, once, from the
//! terminal, the environment and `--color`, rather than at every place that prints.
//! Each stream has its own [`Look`]: `helm safe-upgrade … --plan | less` colours and
//! wraps neither the plan on stdout nor anything else, while the progress of a run on a
//! terminal with `-o json > report.json` is coloured and wrapped on stderr.
//!
//! **Colour**, per stream, first match wins: `--color never|always|auto` when given (the
//! operator's word for this run; `auto` then means "if a person watches"); `NO_COLOR`
//! set to anything (no-color.org); `HELM_COLOR` (`never`, `always` or `auto`, as helm 4
//! reads it; helm passes it through, it does not set it); else auto: a person watches,
//! which means the stream is a terminal, `CI` is not set (a CI job's terminal is a log)
//! and `TERM` is not `dumb`. stdout under `-o json` is never coloured. Only the tool's
//! own words are painted (status words, headings, the table's header); text from helm,
//! charts or the ledger is never painted.
//!
//! **Width**, per stream: when a person watches, `COLUMNS` if it is a number, else the
//! terminal's size, never below 80 (a narrower terminal folds the lines itself); when no
//! person watches (a pipe, a file, CI), no wrapping at all, so that each line of a log is
//! one record `grep` finds whole.
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

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::sensitive::Disclosure;
use anstyle::{AnsiColor, Style};

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where output goes and how it looks. Cheap to clone; clones share the streams.
#[derive(Clone)]
pub struct Printer {
    out: Sink,
    err: Sink,
    /// stderr is a terminal a person watches (not a CI log): no timestamps, spinners.
    interactive: bool,
    /// What the looks were decided from, to decide again once `--color` is known.
    surroundings: Surroundings,
    /// How data on stdout looks, and how people's text on stderr looks.
    out_look: Look,
    err_look: Look,
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
            .field("out_look", &self.out_look)
            .field("err_look", &self.err_look)
            .field("data_interactive", &self.data_interactive)
            .finish()
    }
}

/// Spinners and untimestamped lines only for a person at a terminal, never in CI
/// (whose "terminal" is a log).
pub fn is_interactive(stderr_is_terminal: bool, ci: bool) -> bool {
    stderr_is_terminal && !ci
}

/// `--color`, as the operator gave it (the command-line layer maps its flag to this).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourChoice {
    Never,
    Auto,
    Always,
}

impl ColourChoice {
    /// `HELM_COLOR`'s value, as helm 4 spells it (any case); anything else is not a choice.
    fn parse(value: &str) -> Option<ColourChoice> {
        match value.trim().to_ascii_lowercase().as_str() {
            "never" => Some(ColourChoice::Never),
            "auto" => Some(ColourChoice::Auto),
            "always" => Some(ColourChoice::Always),
            _ => None,
        }
    }
}

/// Whether a stream gets colour. `watched`: a person reads it as it is written (a
/// terminal, outside CI, not `TERM=dumb`). The flag is the operator's word for this run
/// and wins over both variables; `NO_COLOR` wins over `HELM_COLOR`, as it does for helm 4.
pub fn colour(flag: Option<ColourChoice>, no_color: bool, helm_color: Option<&str>, watched: bool) -> bool {
    let choice = match (flag, no_color) {
        (Some(choice), _) => choice,
        (None, true) => ColourChoice::Never,
        (None, false) => helm_color.and_then(ColourChoice::parse).unwrap_or(ColourChoice::Auto),
    };
    match choice {
        ColourChoice::Never => false,
        ColourChoice::Always => true,
        ColourChoice::Auto => watched,
    }
}

/// The narrowest width text is wrapped to: below it, wrapping would cut a plan into
/// slivers; the terminal folds what is wider.
pub const MIN_WIDTH: usize = 80;

/// The width to wrap a stream's text to, or `None`: never wrapped. Only what a person
/// watches is wrapped (a log keeps each line whole, for grep); `COLUMNS` (a positive
/// number) says how wide, else the terminal does, never narrower than [`MIN_WIDTH`]. A
/// terminal that does not know its size is not wrapped.
pub fn wrap_width(watched: bool, columns: Option<&str>, terminal_columns: Option<usize>) -> Option<usize> {
    if !watched {
        return None;
    }
    let from_env = columns.and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    from_env.or(terminal_columns.filter(|&c| c > 0)).map(|c| c.max(MIN_WIDTH))
}

/// One stream as the looks are decided from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub terminal: bool,
    /// The terminal's width in columns, when it says.
    pub columns: Option<usize>,
}

/// Everything colour and width are decided from, read once at the start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Surroundings {
    pub out: Stream,
    pub err: Stream,
    pub ci: bool,
    /// `NO_COLOR` is set and not empty.
    pub no_color: bool,
    pub helm_color: Option<String>,
    /// `TERM=dumb`: a terminal that shows escape codes as text.
    pub dumb_terminal: bool,
    pub columns: Option<String>,
}

impl Surroundings {
    /// This process's streams and environment.
    pub fn read() -> Surroundings {
        #[cfg(unix)]
        fn stream(s: impl std::io::IsTerminal + std::os::fd::AsFd) -> Stream {
            let columns = terminal_size::terminal_size_of(s.as_fd()).map(|(w, _)| usize::from(w.0));
            Stream { terminal: s.is_terminal(), columns }
        }
        // Windows: the console is named by a handle, not a file descriptor.
        #[cfg(windows)]
        fn stream(s: impl std::io::IsTerminal + std::os::windows::io::AsHandle) -> Stream {
            let columns = terminal_size::terminal_size_of(s.as_handle()).map(|(w, _)| usize::from(w.0));
            Stream { terminal: s.is_terminal(), columns }
        }
        Surroundings {
            out: stream(std::io::stdout()),
            err: stream(std::io::stderr()),
            ci: crate::env::in_ci(),
            no_color: crate::env::get(crate::env::NO_COLOR).is_some(),
            helm_color: crate::env::get(crate::env::HELM_COLOR),
            dumb_terminal: crate::env::get(crate::env::TERM).is_some_and(|t| t == "dumb"),
            columns: crate::env::get(crate::env::COLUMNS),
        }
    }

    /// How one stream looks, given `--color`.
    pub fn look(&self, stream: Stream, flag: Option<ColourChoice>) -> Look {
        let watched = stream.terminal && !self.ci;
        Look {
            colour: colour(flag, self.no_color, self.helm_color.as_deref(), watched && !self.dumb_terminal),
            width: wrap_width(watched, self.columns.as_deref(), stream.columns),
        }
    }
}

/// How text looks on one stream: coloured or not, and the width it is wrapped to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    pub colour: bool,
    /// `None`: lines are never wrapped.
    pub width: Option<usize>,
}

/// What a piece of the tool's own text is, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The plan's first line, section names, hop headers, the table's header row.
    Heading,
    /// It went well: `ok`, `done`.
    Good,
    /// Worth a look, nothing broken: stopped, interrupted, declined, downtime, a major
    /// or a downgrade, warnings.
    Notice,
    /// It went wrong: failed, refused, needs a person, error.
    Bad,
    /// Secondary: durations.
    Dim,
}

impl Role {
    fn style(self) -> Style {
        match self {
            Role::Heading => Style::new().bold(),
            Role::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Role::Notice => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Role::Bad => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
            Role::Dim => Style::new().dimmed(),
        }
    }
}

impl Look {
    /// No colour, no wrapping: logs, pipes, JSON, and the tests of the plain text.
    pub const PLAIN: Look = Look { colour: false, width: None };

    /// `text` in the colour of `role` when this stream is coloured. Only for the tool's own
    /// words: text from outside is never painted.
    pub fn paint(self, role: Role, text: &str) -> Cow<'_, str> {
        if !self.colour || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let style = role.style();
        Cow::Owned(format!("{style}{text}{style:#}"))
    }

    /// `text` wrapped to this stream's width, each line with its hanging indent.
    pub fn wrap(self, text: &str) -> String {
        crate::text::wrap_lines(text, self.width)
    }
}

impl Printer {
    /// The process's own stdout and stderr.
    pub fn stdio() -> Printer {
        Printer::on(
            Arc::new(Mutex::new(Box::new(std::io::stdout()))),
            Arc::new(Mutex::new(Box::new(std::io::stderr()))),
            Surroundings::read(),
        )
    }

    fn on(out: Sink, err: Sink, surroundings: Surroundings) -> Printer {
        Printer {
            out,
            err,
            interactive: is_interactive(surroundings.err.terminal, surroundings.ci),
            data_interactive: is_interactive(surroundings.out.terminal, surroundings.ci),
            out_look: surroundings.look(surroundings.out, None),
            err_look: surroundings.look(surroundings.err, None),
            surroundings,
            lost: Arc::default(),
        }
    }

    /// Output into memory, for tests: (printer, stdout, stderr); `interactive` stands for
    /// both streams. Neither is coloured or wrapped.
    pub fn captured(interactive: bool) -> (Printer, Captured, Captured) {
        let (printer, out, err) = Printer::captured_in(Surroundings::default());
        (Printer { interactive, data_interactive: interactive, ..printer }, out, err)
    }

    /// Output into memory as if written in `surroundings`, for tests of colour and width.
    pub fn captured_in(surroundings: Surroundings) -> (Printer, Captured, Captured) {
        let (out, err) = (Captured::default(), Captured::default());
        let printer = Printer::on(
            Arc::new(Mutex::new(Box::new(out.clone()))),
            Arc::new(Mutex::new(Box::new(err.clone()))),
            surroundings,
        );
        (printer, out, err)
    }

    /// The same streams, the looks decided again with the operator's `--color`; stdout is
    /// never coloured when it carries JSON.
    pub fn with_colour(&self, flag: Option<ColourChoice>, json: bool) -> Printer {
        let mut printer = self.clone();
        printer.out_look = self.surroundings.look(self.surroundings.out, flag);
        printer.out_look.colour &= !json;
        printer.err_look = self.surroundings.look(self.surroundings.err, flag);
        printer
    }

    /// Whether a person watches stderr on a terminal (spinners, no timestamps).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// How data on stdout looks (the plan of `--plan`, a run's last line).
    pub fn data_look(&self) -> Look {
        self.out_look
    }

    /// How people's text on stderr looks (progress, the plan before a confirmation).
    pub fn text_look(&self) -> Look {
        self.err_look
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

    /// A message line for people on stderr: as it is on a terminal (wrapped to its
    /// width), after a UTC timestamp in logs.
    pub fn line(&self, text: &str) {
        if self.interactive {
            self.write(&self.err, &format!("{}\n", self.err_look.wrap(text)));
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

    #[test]
    fn colour_follows_the_flag_then_no_color_then_helm_color_then_the_terminal() {
        use ColourChoice::*;
        /// (flag, NO_COLOR, HELM_COLOR, watched) → colour
        type Row = (Option<ColourChoice>, bool, Option<&'static str>, bool, bool);
        let table: &[Row] = &[
            (None, false, None, true, true),
            (None, false, None, false, false),
            // NO_COLOR wins over HELM_COLOR, as for helm 4.
            (None, true, None, true, false),
            (None, true, Some("always"), true, false),
            (None, false, Some("always"), false, true),
            (None, false, Some("never"), true, false),
            (None, false, Some("auto"), false, false),
            (None, false, Some("Always"), false, true),
            // Not a value helm knows: as if unset.
            (None, false, Some("bogus"), true, true),
            (None, false, Some("bogus"), false, false),
            // The flag wins over both variables.
            (Some(Always), true, Some("never"), false, true),
            (Some(Never), false, Some("always"), true, false),
            (Some(Auto), true, Some("never"), true, true),
            (Some(Auto), false, Some("always"), false, false),
        ];
        for &(flag, no_color, helm_color, watched, expected) in table {
            assert_eq!(
                colour(flag, no_color, helm_color, watched),
                expected,
                "{flag:?} {no_color} {helm_color:?} {watched}"
            );
        }
    }

    #[test]
    fn only_a_watched_stream_is_wrapped_never_below_80_columns() {
        assert_eq!(wrap_width(false, Some("120"), Some(100)), None, "a log keeps its lines whole");
        assert_eq!(wrap_width(true, None, Some(132)), Some(132));
        assert_eq!(wrap_width(true, Some("100"), Some(132)), Some(100), "COLUMNS first");
        assert_eq!(wrap_width(true, Some(" 90 "), None), Some(90));
        assert_eq!(wrap_width(true, Some("40"), Some(132)), Some(80));
        assert_eq!(wrap_width(true, None, Some(60)), Some(80));
        assert_eq!(wrap_width(true, Some("wide"), Some(100)), Some(100), "not a number: ignored");
        assert_eq!(wrap_width(true, Some("0"), Some(100)), Some(100));
        assert_eq!(wrap_width(true, None, None), None, "a terminal that does not know its size");
        assert_eq!(wrap_width(true, None, Some(0)), None);
    }

    #[test]
    fn each_stream_gets_its_own_look() {
        let terminal = Stream { terminal: true, columns: Some(100) };
        let pipe = Stream { terminal: false, columns: None };
        let mut here = Surroundings { out: pipe, err: terminal, ..Surroundings::default() };
        let (printer, _, _) = Printer::captured_in(here.clone());
        assert!(printer.interactive());
        assert_eq!(printer.data_look(), Look::PLAIN, "`--plan | less`: the data is neither coloured nor wrapped");
        assert_eq!(printer.text_look(), Look { colour: true, width: Some(100) });
        // --color always colours a pipe too, but JSON never.
        let forced = printer.with_colour(Some(ColourChoice::Always), false);
        assert_eq!(forced.data_look(), Look { colour: true, width: None });
        let json = printer.with_colour(Some(ColourChoice::Always), true);
        assert_eq!((json.data_look().colour, json.text_look().colour), (false, true));
        // CI: a log, however it is connected.
        here.ci = true;
        let (printer, _, _) = Printer::captured_in(here.clone());
        assert!(!printer.interactive());
        assert_eq!(printer.text_look(), Look::PLAIN);
        // TERM=dumb: wrapped, not coloured.
        here.ci = false;
        here.dumb_terminal = true;
        assert_eq!(here.look(terminal, None), Look { colour: false, width: Some(100) });
        assert!(here.look(terminal, Some(ColourChoice::Always)).colour);
    }

    #[test]
    fn painting_wraps_only_the_words_given_and_only_when_coloured() {
        let on = Look { colour: true, width: None };
        assert_eq!(on.paint(Role::Good, "ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(on.paint(Role::Bad, "failed"), "\x1b[1m\x1b[31mfailed\x1b[0m");
        assert_eq!(on.paint(Role::Heading, ""), "");
        assert_eq!(Look::PLAIN.paint(Role::Bad, "failed"), "failed");
    }

    #[test]
    fn lines_on_a_terminal_are_wrapped_to_its_width() {
        let here = Surroundings { err: Stream { terminal: true, columns: Some(80) }, ..Surroundings::default() };
        let (printer, _, err) = Printer::captured_in(here);
        let path = format!("/home/operator/.local/state/helm-safe-upgrade/backups/{}", "x".repeat(40));
        printer.line(&format!("backup of bsr (values, manifest, metadata): {path}"));
        assert_eq!(err.text(), format!("backup of bsr (values, manifest, metadata):\n  {path}\n"));
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
        let printer = Printer::on(
            Arc::new(Mutex::new(Box::new(Broken))),
            Arc::new(Mutex::new(Box::new(Broken))),
            Surroundings::default(),
        );
        assert!(!printer.output_lost());
        printer.line("lost");
        assert!(printer.output_lost() && printer.clone().output_lost());
    }
}
