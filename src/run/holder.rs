//! Who holds a lock, and whether that run is still alive.
//!
//! A lock names its holder as `user@host pid N` (what an operator can find with `ps`),
//! and also records the host, the pid and, where the system tells it, the process's start
//! identity (Linux: the boot id and the start time in clock ticks from
//! `/proc/PID/stat`). A pid is reused by the kernel after its process ends; comparing the
//! start identity tells a live holder from an unrelated process that got the same pid.
//!
//! Only a holder on this host can be judged. A holder elsewhere is `Unknown`: the
//! operator has to name it (`--force-unlock=HOLDER`) to take its lock.

use serde::{Deserialize, Serialize};

/// The process behind a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub host: String,
    pub pid: u32,
    /// `BOOT_ID/START_TICKS` on Linux; absent where the system does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
}

/// This process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    pub user: String,
    pub process: Process,
}

impl Me {
    pub fn current() -> Me {
        let pid = std::process::id();
        // `$USER` may be unset in CI containers, hence `unknown`; the host comes from
        // gethostname(2) because `$HOSTNAME` is a shell variable, not exported to us.
        let user = crate::env::get(crate::env::USER).unwrap_or_else(|| "unknown".to_string());
        Me { user, process: Process { host: hostname(), pid, started: start_identity(pid) } }
    }

    /// `user@host pid N`, as printed and as `--force-unlock=HOLDER` takes it.
    pub fn holder(&self) -> String {
        format!("{}@{} pid {}", self.user, self.process.host, self.process.pid)
    }
}

/// Whether a lock's holder still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// On this host, and running (the same process, not a reused pid).
    Alive,
    /// On this host, and gone: killed, crashed, or its pid now belongs to another process.
    Gone,
    /// On another host (or recorded by an older version without its host): cannot be told.
    Unknown,
}

/// Judge the holder `process` from this host.
pub fn liveness(process: &Process) -> Liveness {
    if process.host != hostname() {
        return Liveness::Unknown;
    }
    match pid_exists(process.pid) {
        Some(false) => return Liveness::Gone,
        Some(true) => {}
        None => return Liveness::Unknown,
    }
    match (&process.started, start_identity(process.pid)) {
        // The pid exists but started at another time: it was reused.
        (Some(recorded), Some(now)) if *recorded != now => Liveness::Gone,
        // A process that disappeared between the two checks.
        (Some(_), None) if cfg!(target_os = "linux") => Liveness::Gone,
        // No start on record (an older version's lock, or one written by hand): the pid
        // alone would call any process alive — pid 1, a database — and the refusal
        // would tell the operator to `kill -TERM` it, with no way to take the lock over.
        // A process that is not this program is not the run.
        (None, _) if program_of(process.pid).is_some_and(|other| Some(other) != program_of(std::process::id())) => {
            Liveness::Gone
        }
        _ => Liveness::Alive,
    }
}

/// The program a process runs, as the kernel names it (Linux: `/proc/PID/comm`); None
/// elsewhere or when it cannot be read.
fn program_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim_end().to_string())
}

/// Read a holder string of an older record (`user@host pid N`) into a process.
pub fn parse_holder(holder: &str) -> Option<Process> {
    let (who, pid) = holder.rsplit_once(" pid ")?;
    let (_, host) = who.rsplit_once('@')?;
    Some(Process { host: host.to_string(), pid: pid.trim().parse().ok()?, started: None })
}

/// Whether a process `pid` exists on this host; `None` where it cannot be told.
#[cfg(unix)]
fn pid_exists(pid: u32) -> Option<bool> {
    let Ok(pid) = i32::try_from(pid) else { return Some(false) };
    if pid <= 0 {
        return Some(false);
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    Some(!(rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)))
}

/// No kill(2) on Windows to ask with: a holder is judged as one on another host is
/// (`Unknown`), so its lock is taken only when the operator names it, never on a guess.
#[cfg(not(unix))]
fn pid_exists(_: u32) -> Option<bool> {
    None
}

#[cfg(unix)]
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_string();
    }
    // POSIX leaves truncated names without a NUL; take up to the first NUL or the end.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// No gethostname(2) in libc on Windows: the name stays unknown, as when the call fails
/// on Unix. Every Windows machine then gives the same name, which is safe because a
/// holder there is never judged alive or gone (see [`pid_exists`]).
#[cfg(not(unix))]
pub fn hostname() -> String {
    "unknown-host".to_string()
}

/// `BOOT_ID/START_TICKS` of a process (Linux), None elsewhere or when it is gone.
fn start_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(format!("{}/{}", boot.trim(), start_ticks(&stat)?))
}

/// Field 22 of `/proc/PID/stat` (start time since boot, in clock ticks). The second
/// field is the command name in parentheses and may itself hold spaces and `)`, so the
/// fields are counted from the last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: field 22 is the 20th of those.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_named_user_at_host_pid() {
        let me = Me::current();
        assert!(me.holder().ends_with(&format!("@{} pid {}", hostname(), std::process::id())));
        assert_eq!(liveness(&me.process), Liveness::Alive);
        if cfg!(target_os = "linux") {
            assert!(me.process.started.is_some());
        }
    }

    #[test]
    fn a_dead_pid_is_gone_and_a_reused_one_too() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Process { host: hostname(), pid, started: None };
        assert_eq!(liveness(&dead), Liveness::Gone);
        if cfg!(target_os = "linux") {
            // Our own pid, recorded with another start: a reused pid.
            let reused = Process { host: hostname(), pid: std::process::id(), started: Some("other-boot/1".into()) };
            assert_eq!(liveness(&reused), Liveness::Gone);
        }
    }

    #[test]
    fn a_live_pid_of_another_program_without_a_recorded_start_is_not_the_holder() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let forged = Process { host: hostname(), pid: other.id(), started: None };
        let judged = liveness(&forged);
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(judged, Liveness::Gone, "`sleep` is not a run of this tool");
        let older = Process { host: hostname(), pid: std::process::id(), started: None };
        assert_eq!(liveness(&older), Liveness::Alive, "this program, without a start on record: alive");
    }

    #[test]
    fn a_holder_elsewhere_cannot_be_judged() {
        let elsewhere = Process { host: format!("{}-elsewhere", hostname()), pid: 1, started: None };
        assert_eq!(liveness(&elsewhere), Liveness::Unknown);
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (a b) c) S 1 1234 1234 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(
            parse_holder("ci@runner-1 pid 42"),
            Some(Process { host: "runner-1".into(), pid: 42, started: None })
        );
        assert_eq!(parse_holder("garbage"), None);
    }
}
