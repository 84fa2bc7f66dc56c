//! Writing to stderr without ever dying of it.
//!
//! `eprintln!` panics when stderr is gone (`2>&1 | head -5` closed the pipe, or the SSH
//! session dropped). A panic in a run that holds the lock would leave it held and a hop
//! recorded `running`. Every message of the tool goes through here instead: a failed
//! write is remembered, and the run treats lost output like an interrupt: it finishes
//! the step under way, stops at the next safe point and releases the lock.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static OUTPUT_LOST: AtomicBool = AtomicBool::new(false);

/// Whether a write to stderr or stdout has failed during this run.
pub fn output_lost() -> bool {
    OUTPUT_LOST.load(Ordering::SeqCst)
}

/// Note that an output stream failed (also used for stdout by the final report).
pub fn note_lost() {
    OUTPUT_LOST.store(true, Ordering::SeqCst);
}

/// Write `text` to stderr as it is; failures are remembered, never raised.
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    if stderr.write_all(text.as_bytes()).and_then(|_| stderr.flush()).is_err() {
        note_lost();
    }
}

/// `text` and a newline on stderr.
pub fn err_line(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    err(&line);
}
