//! The tool as an operator runs it: `helm safe-upgrade …` typed on a terminal. Real helm
//! (3.19.0 or 4.1.4) starts the installed plugin ([`Bed::through_helm`]) in a pty, so
//! stdin is a terminal and the plugin asks, helm sets the `HELM_*` variables, and Ctrl-C
//! is the terminal's: the pty's line discipline sends SIGINT to its foreground process
//! group, exactly as a terminal emulator does (helm is the session leader here, as the
//! shell would be; the shell's job control is the same calls).

// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::process::{Command, Stdio};

use kube_standin::testing::HelmVersion;
use rexpect::process::WaitStatus;
use rexpect::session::{Options, PtySession, spawn_with_options};

use super::bed::Bed;

/// Every expectation waits this long at most (a hop is a `helm upgrade --wait`).
pub const TIMEOUT_MS: u64 = 60_000;

/// The bed's BSR policy, as an absolute path.
pub fn bed_policy_path() -> String {
    format!("{}/bed/policies/bsr-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

pub struct Pty {
    pub session: PtySession,
    pub version: HelmVersion,
    /// What was read so far, for failure messages.
    pub seen: String,
}

impl Pty {
    /// `helm PLUGIN ARGS` in a pty (`plugin`: `safe-upgrade` or `safe-rollback`). What
    /// the pty shows is read with its escape codes (colour) stripped.
    pub fn helm(bed: &Bed, plugin: &str, args: &[&str]) -> Pty {
        Pty::spawn(bed, bed.through_helm(plugin), args, true)
    }

    /// `helm HELM_FLAGS safe-upgrade ARGS` in a pty with `env` added, read as the terminal
    /// receives it: escape codes kept.
    pub fn raw(bed: &Bed, helm_flags: &[&str], args: &[&str], env: &[(&str, &str)]) -> Pty {
        Pty::raw_plugin(bed, "safe-upgrade", helm_flags, args, env)
    }

    /// [`Pty::raw`] for either plugin (`safe-upgrade` or `safe-rollback`).
    pub fn raw_plugin(bed: &Bed, plugin: &str, helm_flags: &[&str], args: &[&str], env: &[(&str, &str)]) -> Pty {
        let mut cmd: Command = bed.through_helm_with(helm_flags, plugin);
        // As a terminal emulator sets it (a runner's `TERM=dumb` would turn colour off).
        cmd.env("TERM", "xterm-256color").envs(env.iter().copied());
        Pty::spawn(bed, cmd, args, false)
    }

    fn spawn(bed: &Bed, mut cmd: Command, args: &[&str], strip_ansi: bool) -> Pty {
        // The pty is helm's stdin, stdout and stderr: through_helm sets stdin to null,
        // which exec would apply over the pty.
        cmd.args(args).stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let options = Options::new().timeout_ms(Some(TIMEOUT_MS)).strip_ansi_escape_codes(strip_ansi);
        let session = spawn_with_options(cmd, options).expect("spawn helm in a pty");
        Pty { session, version: bed.version, seen: String::new() }
    }

    /// `helm safe-upgrade ARGS` in a pty.
    pub fn upgrade(bed: &Bed, args: &[&str]) -> Pty {
        Pty::helm(bed, "safe-upgrade", args)
    }

    /// Wait for `needle` (in the output after the previous expectation); returns what
    /// came before it.
    pub fn expect(&mut self, needle: &str) -> String {
        match self.session.exp_string(needle) {
            Ok(before) => {
                let before = utf8(&before);
                self.seen.push_str(&before);
                self.seen.push_str(needle);
                before
            }
            Err(e) => panic!("{}: waiting for {needle:?}: {e}\n--- output so far\n{}", self.version, self.seen),
        }
    }

    /// Type a line and Enter.
    pub fn answer(&mut self, line: &str) {
        self.session.send_line(line).expect("write to the pty");
    }

    /// Press keys without Enter.
    pub fn keys(&mut self, keys: &str) {
        self.session.send(keys).expect("write to the pty");
        self.session.flush().expect("flush the pty");
    }

    /// Ctrl-<c> as the terminal sends it (`'c'` is Ctrl-C, `'z'` Ctrl-Z).
    pub fn control(&mut self, c: char) {
        self.session.send_control(c).expect("send a control key to the pty");
    }

    /// Read to the end of the output and return (everything after the last expectation,
    /// helm's exit code).
    pub fn finish(self) -> (String, i32) {
        let (rest, _, code) = self.finish_all();
        (rest, code)
    }

    /// [`Pty::finish`], with everything the pty showed from the start as well: (everything
    /// after the last expectation, everything, helm's exit code).
    pub fn finish_all(mut self) -> (String, String, i32) {
        let rest = match self.session.exp_eof() {
            Ok(rest) => utf8(&rest),
            Err(e) => panic!("{}: waiting for the end: {e}\n--- output so far\n{}", self.version, self.seen),
        };
        self.seen.push_str(&rest);
        match self.session.process().wait() {
            Ok(WaitStatus::Exited(_, code)) => (rest, self.seen, code),
            other => panic!("{}: helm did not exit normally: {other:?}\n--- output\n{}", self.version, self.seen),
        }
    }
}

/// rexpect hands over each byte read as one `char` (Latin-1): put the UTF-8 back
/// together (the plan says `1.0.4 → 1.2.6`). Needles are ASCII, so they match as they are.
fn utf8(latin1: &str) -> String {
    let bytes: Vec<u8> = latin1.chars().map(|c| u8::try_from(u32::from(c)).expect("one byte per char")).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The cursor-visibility escapes in what a terminal received, in order: `true` for show
/// (`ESC[?25h`), `false` for hide (`ESC[?25l`).
pub fn cursor_visibility(raw: &str) -> Vec<bool> {
    let mut seen = Vec::new();
    let mut rest = raw;
    while let Some(at) = rest.find("\x1b[?25") {
        let after = &rest[at + "\x1b[?25".len()..];
        match after.chars().next() {
            Some('h') => seen.push(true),
            Some('l') => seen.push(false),
            _ => {}
        }
        rest = after;
    }
    seen
}

/// helm's own last words after a plugin's non-zero exit (helm 3 and 4, on every non-zero exit).
pub fn helm_plugin_error(plugin: &str) -> String {
    format!("Error: plugin \"{plugin}\" exited with error")
}
