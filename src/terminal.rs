//! The controlling terminal during a live run: whose Ctrl-C it is, and its state on exit.
//!
//! helm runs a plugin as a plain child and neither forwards nor handles signals: Ctrl-C
//! on the terminal kills helm at once (the shell prompt comes back, exit 130) while the
//! plugin, which handles SIGINT, carries on as an orphan and draws over the prompt
//! (checked with helm 3.19.0 and 4.1.4). So a live run makes itself
//! the terminal's foreground process group for its duration ([`take`]): the terminal's
//! Ctrl-C then reaches this process alone (its helm and kubectl children run in groups of
//! their own, see `helm.rs`), while helm waits for it and passes its exit code on.
//!
//! [`restore`] gives the terminal back to the group that had it (helm's, which is the
//! shell's job) and puts back the terminal's modes (a prompt interrupted while it read
//! keys in raw mode, a hidden cursor). It runs on every way out: the end of `main`, and
//! the panic hook ([`restore_on_panic`]); the run's own signals never kill it. A SIGKILL
//! cannot be caught: the shell takes its terminal back when helm ends, as it does for
//! any job.
//!
//! Stop signals: SIGTTOU is ignored so that switching the foreground group (and writing
//! after losing it) never stops the run; SIGTTIN too, so that a run that lost the
//! terminal (someone killed helm) reads EIO at a prompt, which counts as no answer,
//! instead of hanging stopped. Ctrl-Z (SIGTSTP) is received by `signals.rs` and
//! ignored there, with a message: in its own foreground group a stopped run would hang
//! the terminal with nobody to resume it, and a suspended run would hold the lock while
//! its helm child went on working.
//!
//! POSIX only (`cfg(unix)`): elsewhere (Windows) there is no foreground process group to
//! take, [`take`] changes nothing, and helm's own Ctrl-C behaviour stays as it is; the
//! other functions keep only what needs no POSIX terminal (the cursor shown again).

use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(unix)]
pub use unix::{discard_typeahead, restore, take};

#[cfg(not(unix))]
pub use elsewhere::{discard_typeahead, restore, take};

/// A prompt may have hidden the cursor (dialoguer hides it while it reads keys and does
/// not show it again when a read is interrupted).
static CURSOR_MAY_BE_HIDDEN: AtomicBool = AtomicBool::new(false);

/// Restore the terminal before a panic's message is printed (and the process ends).
pub fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// A prompt is about to read keys: the cursor may end up hidden.
pub fn prompt_started() {
    CURSOR_MAY_BE_HIDDEN.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use super::CURSOR_MAY_BE_HIDDEN;

    /// What [`take`] changed, to be put back.
    struct Taken {
        tty: File,
        /// The terminal's modes when the run started.
        modes: libc::termios,
        /// The foreground group before the run took it; `None` when the run already was it
        /// (the bare binary started from a shell is its job's group leader).
        previous_foreground: Option<libc::pid_t>,
    }

    static TAKEN: Mutex<Option<Taken>> = Mutex::new(None);

    /// Whether this process is in the foreground of its controlling terminal: only then may it
    /// take the terminal (a run started in the background with `&` leaves it alone).
    fn foreground_of(tty: &File) -> bool {
        // SAFETY: tcgetpgrp and getpgrp only read the process's and the terminal's state.
        unsafe { libc::tcgetpgrp(tty.as_raw_fd()) == libc::getpgrp() }
    }

    /// Make this process the foreground process group of its controlling terminal, if it has
    /// one and is in its foreground. Returns whether the foreground group changed. Calling it
    /// again does nothing.
    pub fn take() -> bool {
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if taken.is_some() {
            return false;
        }
        // O_NOCTTY: never acquire a controlling terminal by opening one.
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/tty")
        else {
            return false; // no controlling terminal: CI, cron, a detached session
        };
        if !foreground_of(&tty) {
            return false;
        }
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain data, filled by tcgetattr before it is read.
        let mut modes: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut modes) } != 0 {
            return false;
        }
        // SAFETY: setting a signal's disposition to SIG_IGN runs no code in a handler.
        unsafe {
            libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        }
        // SAFETY: plain system calls on this process and the terminal it controls.
        let (pid, group) = unsafe { (libc::getpid(), libc::getpgrp()) };
        let mut previous_foreground = None;
        if group != pid {
            // A group of our own, in the same session, then the terminal's foreground to it.
            if unsafe { libc::setpgid(0, 0) } == 0 {
                if unsafe { libc::tcsetpgrp(fd, pid) } == 0 {
                    previous_foreground = Some(group);
                } else {
                    // Back into the job's group: Ctrl-C then behaves as helm makes it.
                    unsafe { libc::setpgid(0, group) };
                }
            }
        }
        let switched = previous_foreground.is_some();
        *taken = Some(Taken { tty, modes, previous_foreground });
        switched
    }

    /// Give the terminal back as [`take`] found it: its modes, a visible cursor, and the
    /// foreground to the group that had it. Safe to call more than once, and from a panic.
    pub fn restore() {
        let Some(taken) = TAKEN.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let fd = taken.tty.as_raw_fd();
        if CURSOR_MAY_BE_HIDDEN.swap(false, Ordering::SeqCst) {
            use std::io::Write;
            let _ = (&taken.tty).write_all(b"\x1b[?25h");
        }
        // SAFETY: the modes were read from this terminal by tcgetattr; SIGTTOU is ignored,
        // so handing the foreground back cannot stop this process.
        unsafe {
            libc::tcsetattr(fd, libc::TCSADRAIN, &taken.modes);
            if let Some(group) = taken.previous_foreground {
                // Fails harmlessly when that group is gone (helm was killed): the shell has
                // taken its terminal back already.
                libc::tcsetpgrp(fd, group);
            }
        }
    }

    /// Drop what was typed ahead, before a question: Enter pressed to make room on the screen
    /// while a hop ran must not answer the pause that follows it.
    pub fn discard_typeahead() {
        if let Some(taken) = TAKEN.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // SAFETY: tcflush only discards the terminal's pending input.
            unsafe { libc::tcflush(taken.tty.as_raw_fd(), libc::TCIFLUSH) };
        }
    }
}

/// Without POSIX job control (Windows): nothing to take or give back but the cursor, and
/// Ctrl-C behaves as helm makes it.
#[cfg(not(unix))]
mod elsewhere {
    use std::sync::atomic::Ordering;

    use super::CURSOR_MAY_BE_HIDDEN;

    /// No foreground process group to take: never switches.
    pub fn take() -> bool {
        false
    }

    /// Show the cursor again if a prompt may have hidden it.
    pub fn restore() {
        if CURSOR_MAY_BE_HIDDEN.swap(false, Ordering::SeqCst) {
            let _ = dialoguer::console::Term::stderr().show_cursor();
        }
    }

    /// Typed-ahead keys stay (no termios to flush them with).
    pub fn discard_typeahead() {}
}
