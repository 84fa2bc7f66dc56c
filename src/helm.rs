//! The only place that spawns processes: helm, kubectl, and the commands of the user's own
//! policy (snapshot, `run` steps, checks).
//!
//! Every child gets an argv (never a shell), a human purpose that ends up in its error, and
//! its own process group. helm itself neither forwards nor waits on signals, and when the
//! operator presses Ctrl-C at a terminal the whole foreground group gets SIGINT: in a
//! group of its own, a running `helm upgrade` is not killed half-way (which would leave
//! the release `pending-upgrade`) but finishes. SIGTERM sent to this tool, or a second
//! Ctrl-C, is passed on to the child. Errors keep the argv as an [`Argv`], not as text:
//! the values of `--set` and its variants may hold secrets, so each place that shows an
//! error renders it for its reader (the operator's terminal, or anyone: logs, the
//! ledger, JSON), and the default rendering hides every value. Positional arguments the
//! tool adds (release and chart names) always come after `--`, so none can be read as a
//! flag.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::disclose::{Argv, Message};
use crate::printer::Printer;
use crate::setvalues::SetArg;
pub use crate::signals::Signals;

/// One command to run.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// What the command is for, in words: "upgrade bsr to 1.2.6".
    pub purpose: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The arguments are never shown, not even on the operator's terminal: a notify
    /// hook's arguments may be a webhook URL whose path is its token.
    pub args_unshown: bool,
}

impl Invocation {
    pub fn new(purpose: impl Into<String>, program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Invocation { purpose: purpose.into(), program: program.into(), args, env: vec![], args_unshown: false }
    }

    /// The same command, its arguments shown as `***` wherever its command line is shown
    /// (`--debug` lines, errors).
    pub fn with_unshown_args(mut self) -> Self {
        self.args_unshown = true;
        self
    }

    /// The command line, to be rendered for whoever reads it.
    pub fn argv(&self) -> Argv {
        if self.args_unshown && !self.args.is_empty() {
            return Argv::new(self.program.display().to_string(), &["***".to_string()]);
        }
        Argv::new(self.program.display().to_string(), &self.args)
    }
}

#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    pub duration: Duration,
}

pub enum ExecError {
    Spawn {
        purpose: String,
        program: String,
        source: std::io::Error,
        hint: String,
    },
    Failed {
        purpose: String,
        argv: Argv,
        status: String,
        stderr: String,
        stdout: String,
    },
    Parse {
        purpose: String,
        argv: Argv,
        error: String,
    },
    /// The child ran past its time limit and its process group was killed.
    TimedOut {
        purpose: String,
        program: String,
        limit: Duration,
        stderr: String,
    },
}

/// Redacted, like every default rendering of a command line: [`ExecError::message`]
/// renders for a chosen reader.
impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message().redacted())
    }
}

/// As redacted as Display: an `unwrap()` that panics must not print a value that helm's
/// output quoted.
impl std::fmt::Debug for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecError({:?})", self.message().redacted())
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ExecError {
    /// The error with its command line as structure, for rendering per reader.
    pub fn message(&self) -> Message {
        match self {
            ExecError::Spawn { purpose, program, source, hint } => {
                Message::plain(format!("{purpose}: cannot start {program}: {source}\nhint: {hint}"))
            }
            ExecError::Failed { purpose, argv, status, stderr, .. } => {
                Message::plain(format!("{purpose} failed ({status}): "))
                    .then(Message::command(argv.clone()))
                    .then("\n")
                    .then(Message::outside(stderr.clone()))
            }
            ExecError::Parse { purpose, argv, error } => {
                Message::plain(format!("{purpose}: cannot read the output of "))
                    .then(Message::command(argv.clone()))
                    .then(format!(": {error}"))
            }
            ExecError::TimedOut { purpose, program, limit, stderr } => Message::plain(format!(
                "{purpose}: {program} did not finish within {} and was killed\n",
                humantime::format_duration(*limit)
            ))
            .then(Message::outside(stderr.clone())),
        }
    }

    /// The child's own stderr (helm's, for callers that recognise specific helm errors).
    pub fn stderr(&self) -> &str {
        match self {
            ExecError::Failed { stderr, .. } | ExecError::TimedOut { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// Spawns children: the one way this program runs anything.
#[derive(Clone, Debug)]
pub struct Runner {
    pub signals: Signals,
    /// `--debug`: echo each argv (redacted) on stderr.
    pub debug: bool,
    printer: Option<Printer>,
}

impl Runner {
    /// A runner that prints nothing (completion, tests).
    pub fn new(signals: Signals, debug: bool) -> Self {
        Runner { signals, debug, printer: None }
    }

    /// A runner that says through `printer` what it runs (`--debug`) and when it stops helm.
    pub fn printing(signals: Signals, debug: bool, printer: Printer) -> Self {
        Runner { signals, debug, printer: Some(printer) }
    }

    fn say(&self, text: &str) {
        if let Some(p) = &self.printer {
            p.line(text);
        }
    }

    /// `debug: ARGV (PURPOSE)`, the argv rendered for whoever reads the printer's stderr.
    fn say_debug(&self, inv: &Invocation) {
        if let Some(p) = &self.printer {
            p.line(&format!("debug: {} ({})", inv.argv().render(p.disclosure()), inv.purpose));
        }
    }

    /// Run to completion, capturing output. The child is in its own process group, so
    /// Ctrl-C does not reach it; SIGTERM received meanwhile is forwarded.
    pub fn run(&self, inv: &Invocation) -> Result<Finished, ExecError> {
        self.run_with_input(inv, None)
    }

    pub fn run_with_input(&self, inv: &Invocation, stdin: Option<&[u8]>) -> Result<Finished, ExecError> {
        self.run_within(inv, stdin, None)
    }

    /// Run with a time limit: past `limit` the child's whole process group (it is the
    /// leader of its own) is killed with SIGKILL, and the result is
    /// [`ExecError::TimedOut`]. For programs whose work is not the run's (a notify hook):
    /// one that hangs must not hold the run, and nothing of the release is half done
    /// when it is killed.
    pub fn run_limited(&self, inv: &Invocation, stdin: Option<&[u8]>, limit: Duration) -> Result<Finished, ExecError> {
        self.run_within(inv, stdin, Some(limit))
    }

    fn run_within(
        &self,
        inv: &Invocation,
        stdin: Option<&[u8]>,
        limit: Option<Duration>,
    ) -> Result<Finished, ExecError> {
        if self.debug {
            self.say_debug(inv);
        }
        let started = Instant::now();
        // Output goes to unlinked temporary files, not pipes: if this tool is killed, a
        // helm mid-upgrade keeps writing to its files and finishes, where a pipe with no
        // reader would kill it with SIGPIPE and leave the release `pending-upgrade`.
        let spawn_error = |source: std::io::Error| ExecError::Spawn {
            purpose: inv.purpose.clone(),
            program: inv.program.display().to_string(),
            hint: "cannot create a temporary file for its output; check TMPDIR".to_string(),
            source,
        };
        let mut out_file = tempfile::tempfile().map_err(spawn_error)?;
        let mut err_file = tempfile::tempfile().map_err(spawn_error)?;
        let mut child = spawn(inv, stdin.is_some(), &out_file, &err_file)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // Written by a thread of its own, which closes the pipe when done: a child
            // that never reads its input cannot hold this one past its time limit.
            let input = input.to_vec();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&input);
            });
        }
        let deadline = limit.map(|l| started + l);
        let status = self.wait(inv, &mut child, deadline)?;
        let stdout = read_all(&mut out_file);
        let stderr = read_all(&mut err_file);
        // The child's stderr may quote a chart's or the cluster's text: shown, not obeyed.
        let shown_stderr = crate::text::for_terminal(stderr.trim_end()).into_owned();
        let Some(status) = status else {
            return Err(ExecError::TimedOut {
                purpose: inv.purpose.clone(),
                program: inv.program.display().to_string(),
                limit: limit.unwrap_or_default(),
                stderr: shown_stderr,
            });
        };
        let finished = Finished { stdout, stderr, status, duration: started.elapsed() };
        if finished.status.success() {
            Ok(finished)
        } else {
            Err(ExecError::Failed {
                purpose: inv.purpose.clone(),
                argv: inv.argv(),
                status: describe(&finished.status),
                stderr: shown_stderr,
                stdout: finished.stdout,
            })
        }
    }

    /// Wait for the child, passing on a request to stop now. Only a stop request that
    /// arrives while this child runs is passed on to it: the bookkeeping after an insisted
    /// stop (reading the release, releasing the lock) must still run. Past `deadline`,
    /// the child's process group is killed and reaped: `None`.
    fn wait(
        &self,
        inv: &Invocation,
        child: &mut std::process::Child,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, ExecError> {
        let mut forwarded_term = self.signals.stop_now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) => {}
                Err(e) => {
                    return Err(ExecError::Parse {
                        purpose: inv.purpose.clone(),
                        argv: inv.argv(),
                        error: e.to_string(),
                    });
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // The group, not only the child: a script's own children (`curl`, `sleep`)
                // would otherwise live on and keep its output files open.
                let _ = kill_group(child);
                let _ = child.wait();
                return Ok(None);
            }
            if !forwarded_term && self.signals.stop_now() {
                // SIGTERM (an orchestrator's request) or a second Ctrl-C (the operator
                // insists): helm handles SIGTERM by marking the operation failed, which
                // leaves no `pending-*` release behind. Say so before doing it; before the
                // run's first change, what is stopped only reads.
                self.say(&if self.signals.changing() {
                    format!(
                        "stopping now: `{}` is told to stop; helm marks what it was doing as failed, and this run ends without bringing the release back (the message below says what to do)",
                        inv.purpose
                    )
                } else {
                    format!("stopping now: `{}` is stopped; nothing had been changed", inv.purpose)
                });
                let _ = terminate(child);
                forwarded_term = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run and parse stdout as JSON.
    pub fn json<T: DeserializeOwned>(&self, inv: &Invocation) -> Result<T, ExecError> {
        parse_json(inv, &self.run(inv)?)
    }
}

/// What `inv` printed, read as JSON.
fn parse_json<T: DeserializeOwned>(inv: &Invocation, finished: &Finished) -> Result<T, ExecError> {
    serde_json::from_str(&finished.stdout).map_err(|e| ExecError::Parse {
        purpose: inv.purpose.clone(),
        argv: inv.argv(),
        error: e.to_string(),
    })
}

/// Start `inv` in a process group of its own (POSIX; see [`own_group`]), its output into
/// the given files.
fn spawn(
    inv: &Invocation,
    piped_stdin: bool,
    out_file: &std::fs::File,
    err_file: &std::fs::File,
) -> Result<std::process::Child, ExecError> {
    let spawn_error = |source: std::io::Error, hint: String| ExecError::Spawn {
        purpose: inv.purpose.clone(),
        program: inv.program.display().to_string(),
        hint,
        source,
    };
    let file_error = |source| spawn_error(source, "cannot share a temporary file with it; check TMPDIR".into());
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(out_file.try_clone().map_err(file_error)?)
        .stderr(err_file.try_clone().map_err(file_error)?);
    own_group(&mut cmd);
    cmd.spawn().map_err(|source| {
        let hint = if source.kind() == std::io::ErrorKind::NotFound {
            format!("{} is not installed or not on PATH", inv.program.display())
        } else {
            "check the program's permissions".to_string()
        };
        spawn_error(source, hint)
    })
}

fn read_all(file: &mut std::fs::File) -> String {
    use std::io::Seek;
    let mut bytes = Vec::new();
    let _ = file.rewind().and_then(|_| file.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn describe(status: &ExitStatus) -> String {
    match (status.code(), signal_of(status)) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// The signal that ended the child, if one did.
#[cfg(unix)]
fn signal_of(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// No signals on Windows: every ended process has an exit code.
#[cfg(not(unix))]
fn signal_of(_: &ExitStatus) -> Option<i32> {
    None
}

/// The child leads a process group of its own: the terminal's Ctrl-C does not reach it
/// (the run decides what a Ctrl-C means), and [`kill_group`] reaches its own children.
#[cfg(unix)]
fn own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// No POSIX process groups on Windows: the child shares this process's console, so a
/// console Ctrl-C reaches helm too, and helm handles it as an interrupt of its own.
#[cfg(not(unix))]
fn own_group(_: &mut Command) {}

/// SIGKILL to the child's process group (every child is the leader of its own).
#[cfg(unix)]
fn kill_group(child: &mut std::process::Child) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a group.
    let rc = unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Without process groups (Windows): the child alone is killed (TerminateProcess); a
/// script's own children may live on.
#[cfg(not(unix))]
fn kill_group(child: &mut std::process::Child) -> std::io::Result<()> {
    child.kill()
}

/// Ask the child to stop: SIGTERM, which helm handles by marking the operation failed
/// (std offers only SIGKILL, through Child::kill, which would leave it `pending-*`).
#[cfg(unix)]
fn terminate(child: &std::process::Child) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Nothing to send on Windows: a stop there is a console Ctrl-C, which helm (sharing the
/// console, see [`own_group`]) has received itself. Killing it instead would leave the
/// release `pending-*`; past the deadline, [`kill_group`] still ends it.
#[cfg(not(unix))]
fn terminate(_: &std::process::Child) -> std::io::Result<()> {
    Ok(())
}

/// Where helm is and how to address the release's cluster and namespace.
#[derive(Clone, Debug)]
pub struct Helm {
    pub runner: Runner,
    /// Private: helm is run by this type's typed methods only, which build its argv.
    bin: PathBuf,
    pub namespace: String,
    pub kube_context: Option<String>,
}

impl Helm {
    /// helm at `bin` (`$HELM_BIN`, else `helm` on PATH), addressing `namespace`.
    pub fn new(runner: Runner, bin: PathBuf, namespace: String, kube_context: Option<String>) -> Helm {
        Helm { runner, bin, namespace, kube_context }
    }

    /// helm's major version (3 or 4): some flags differ between them. Read from the
    /// binary's Go build info when `bin` is helm's own binary (no process: one fewer helm
    /// starting beside the first reads), else asked with `helm version --template
    /// {{.Version}}`, which both answer with `vX.Y.Z` (a version manager's shim, a
    /// wrapper script, a binary built otherwise).
    pub fn major_version(&self) -> Result<u32, ExecError> {
        let search_path = crate::env::path(crate::env::PATH);
        let found = find_program(&self.bin.to_string_lossy(), search_path.as_deref().map(|p| p.as_os_str()));
        if let Some(major) = found.ok().and_then(|path| major_from_build_info(&path)) {
            return Ok(major);
        }
        let inv = Invocation::new(
            "ask helm for its version",
            &self.bin,
            vec!["version".into(), "--template".into(), "{{.Version}}".into()],
        );
        let version = self.runner.run(&inv)?.stdout;
        Ok(version.trim().trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(3))
    }

    /// [`Helm::invocation`] of a preflight's render, whose helm runs with Go's garbage
    /// collector held back (`GOGC=off`) until its heap nears 128 MiB (`GOMEMLIMIT`),
    /// unless the operator set either: a render is a short process whose start-up
    /// allocations all stay live, so collecting them is waste — a fifth of three renders'
    /// time at once on the bed, at the same peak memory (README, "Benchmark"). A chart
    /// large enough to near the limit is collected from there: 15,000 ConfigMaps render
    /// in the same time as with Go's default, at 170 MB instead of 80 (300 at 256 MiB).
    fn rendering(&self, purpose: String, args: Vec<String>, positional: &[&str]) -> Invocation {
        let mut inv = self.invocation(purpose, args, positional);
        if crate::env::get(crate::env::GOGC).is_none() && crate::env::get(crate::env::GOMEMLIMIT).is_none() {
            inv.env.extend([("GOGC".into(), "off".into()), ("GOMEMLIMIT".into(), "128MiB".into())]);
        }
        inv
    }

    /// `helm ARGS --namespace NS [--kube-context CTX] -- POSITIONAL`: every flag before
    /// the `--`, so a release or chart name can never be read as a flag.
    fn invocation(&self, purpose: String, mut args: Vec<String>, positional: &[&str]) -> Invocation {
        // Explicit -n and --kube-context even though helm exported them to us: a nested
        // helm would inherit HELM_NAMESPACE too, but explicit flags are what the logs show.
        args.push("--namespace".into());
        args.push(self.namespace.clone());
        if let Some(ctx) = &self.kube_context {
            args.push("--kube-context".into());
            args.push(ctx.clone());
        }
        push_positional(&mut args, positional);
        Invocation::new(purpose, &self.bin, args)
    }

    fn run(&self, purpose: impl Into<String>, args: Vec<String>, positional: &[&str]) -> Result<Finished, ExecError> {
        self.runner.run(&self.invocation(purpose.into(), args, positional))
    }

    fn json<T: DeserializeOwned>(
        &self,
        purpose: impl Into<String>,
        args: Vec<String>,
        positional: &[&str],
    ) -> Result<T, ExecError> {
        self.runner.json(&self.invocation(purpose.into(), args, positional))
    }

    /// `helm upgrade RELEASE CHART FLAGS -o json` ([`UpgradeRequest::flags`]): the
    /// release as helm reports it after the upgrade (revision, status, chart version), so
    /// the caller knows exactly which revision it made without another read.
    pub fn upgrade(
        &self,
        purpose: impl Into<String>,
        release: &str,
        request: &UpgradeRequest,
    ) -> Result<Deployed, ExecError> {
        let mut args = vec!["upgrade".to_string()];
        args.extend(request.flags());
        args.extend(["-o".into(), "json".into()]);
        let inv = self.invocation(purpose.into(), args, &[release, &request.chart.arg()]);
        // A repository chart is found through the cached index (`--no-preflight`, or the
        // way back to a start the preflight did not pull): helm fails before it touches
        // the release when it reads the index mid-rewrite, so that failure is safe to run
        // again, and only that one — an upgrade that ran is never run twice.
        let finished = match request.chart {
            ChartRef::Reference { .. } => self.run_reading_index(&inv, Again::OnlyIfFailed)?,
            ChartRef::File(_) => self.runner.run(&inv)?,
        };
        let done: UpgradeJson = parse_json(&inv, &finished)?;
        Ok(Deployed {
            revision: done.version,
            status: done.info.status,
            chart_version: done.chart.map(|c| c.metadata.version),
            values_digest: crate::digest::json_sha256(&recorded_values(done.config)),
        })
    }

    /// `helm upgrade RELEASE CHART VALUES --dry-run=server -o json`: what the upgrade
    /// would deploy of the packaged `chart`, rendered by helm against the cluster (`lookup`
    /// and the cluster's API versions as the real upgrade sees them), changing nothing.
    /// helm answers with the would-be release: its manifest and the user values after helm
    /// merged the flags.
    pub fn render(
        &self,
        purpose: impl Into<String>,
        release: &str,
        chart: &Path,
        values: &DeployValues,
    ) -> Result<Rendered, ExecError> {
        let mut args = vec!["upgrade".to_string(), "--dry-run=server".into(), "-o".into(), "json".into()];
        args.extend(values.flags());
        args.push(EXACTLY_THESE_VALUES.into());
        let inv = self.rendering(purpose.into(), args, &[release, &chart.display().to_string()]);
        let done: RenderJson = self.runner.json(&inv)?;
        Ok(Rendered { manifest: done.manifest, values: recorded_values(done.config) })
    }

    /// `helm template RELEASE CHART VALUES --is-upgrade --no-hooks` with the cluster's
    /// `capabilities`: the manifest an upgrade of the packaged `chart` would apply
    /// (without its hooks, as a release's `manifest` is), rendered offline. helm renders it
    /// as the upgrade does, schema check included; it cannot see live objects (`lookup`
    /// finds none), validates no object, and gives no merge of the values.
    pub fn template(
        &self,
        purpose: impl Into<String>,
        release: &str,
        chart: &Path,
        values: &DeployValues,
        capabilities: &Capabilities,
    ) -> Result<String, ExecError> {
        let mut args = vec!["template".to_string(), "--is-upgrade".into(), "--no-hooks".into()];
        args.extend(capabilities.flags());
        args.extend(values.flags());
        let inv = self.rendering(purpose.into(), args, &[release, &chart.display().to_string()]);
        Ok(self.runner.run(&inv)?.stdout)
    }

    /// helm's own merge of `values`: what its `config` would be for a deploy with them.
    /// `helm template` of the [`EchoChart`], which needs no cluster.
    pub fn merge(
        &self,
        purpose: impl Into<String>,
        release: &str,
        echo: &EchoChart,
        values: &DeployValues,
    ) -> Result<serde_json::Value, ExecError> {
        let mut args = vec!["template".to_string()];
        args.extend(values.flags());
        let inv = self.rendering(purpose.into(), args, &[release, &echo.0.display().to_string()]);
        let finished = self.runner.run(&inv)?;
        echoed_values(&finished.stdout).map_err(|error| ExecError::Parse {
            purpose: inv.purpose.clone(),
            argv: inv.argv(),
            error,
        })
    }

    /// `helm pull CHART [--version V] --destination DIR`: the chart archive, into `dir`.
    pub fn pull(&self, purpose: impl Into<String>, chart: &ChartRef, dir: &Path) -> Result<(), ExecError> {
        let mut args = vec!["pull".to_string(), "--destination".into(), dir.display().to_string()];
        args.extend(chart.flags());
        // No --namespace: `helm pull` has nothing to do with the cluster.
        push_positional(&mut args, &[&chart.arg()]);
        self.run_reading_index(&Invocation::new(purpose, &self.bin, args), Again::OnlyIfFailed).map(|_| ())
    }

    /// Run `inv`, which reads a repository's cached index, once more when helm found the
    /// index being rewritten: helm rewrites it in place (`helm repo update`, which every
    /// run starts with), so a read meanwhile, in a second run on this machine, finds it
    /// empty — `helm pull` and `helm upgrade` then fail, `helm search repo` warns and
    /// lists nothing.
    fn run_reading_index(&self, inv: &Invocation, again: Again) -> Result<Finished, ExecError> {
        let done = self.runner.run(inv);
        let stderr = match (&done, again) {
            (Ok(finished), Again::EvenIfItRan) => finished.stderr.as_str(),
            (Ok(_), Again::OnlyIfFailed) => return done,
            (Err(e), _) => e.stderr(),
        };
        if !stderr.contains(INDEX_BEING_REWRITTEN) {
            return done;
        }
        std::thread::sleep(INDEX_REWRITE_WAIT);
        self.runner.run(inv)
    }

    /// `helm rollback RELEASE REVISION --wait --timeout T` (helm has no `-o json` for it).
    pub fn rollback(
        &self,
        purpose: impl Into<String>,
        release: &str,
        revision: u64,
        timeout: &str,
    ) -> Result<Finished, ExecError> {
        let args = vec!["rollback".into(), "--wait".into(), "--timeout".into(), timeout.to_string()];
        self.run(purpose, args, &[release, &revision.to_string()])
    }

    /// `helm get metadata RELEASE -o json`.
    pub fn metadata<T: DeserializeOwned>(&self, purpose: impl Into<String>, release: &str) -> Result<T, ExecError> {
        self.json(purpose, vec!["get".into(), "metadata".into(), "-o".into(), "json".into()], &[release])
    }

    /// `helm get manifest RELEASE`.
    pub fn manifest(&self, release: &str) -> Result<String, ExecError> {
        Ok(self
            .run(format!("read the manifest of {release}"), vec!["get".into(), "manifest".into()], &[release])?
            .stdout)
    }

    /// The user-supplied values of a revision (`helm get values --revision N -o json`);
    /// `{}` where helm prints `null` (no values were given).
    pub fn values_at(&self, release: &str, revision: u64) -> Result<serde_json::Value, ExecError> {
        let args =
            vec!["get".into(), "values".into(), "--revision".into(), revision.to_string(), "-o".into(), "json".into()];
        let values: serde_json::Value =
            self.json(format!("read the values of {release} at revision {revision}"), args, &[release])?;
        Ok(if values.is_null() { serde_json::json!({}) } else { values })
    }

    /// `helm history RELEASE -o json`: every revision helm keeps.
    pub fn history<T: DeserializeOwned>(&self, release: &str) -> Result<T, ExecError> {
        let args = vec!["history".into(), "-o".into(), "json".into()];
        self.json(format!("read the history of {release}"), args, &[release])
    }

    /// `helm status RELEASE -o json`: the current revision, its values among it.
    pub fn status<T: DeserializeOwned>(&self, release: &str) -> Result<T, ExecError> {
        self.json(
            format!("read the status of {release}"),
            vec!["status".into(), "-o".into(), "json".into()],
            &[release],
        )
    }

    /// `helm status RELEASE` as helm prints it, for people.
    pub fn status_text(&self, release: &str) -> Result<String, ExecError> {
        Ok(self.run(format!("show the status of {release}"), vec!["status".into()], &[release])?.stdout)
    }

    /// `helm repo update REPO`: refresh one repository's cached index.
    pub fn repo_update(&self, repo: &str) -> Result<Finished, ExecError> {
        let mut args = vec!["repo".to_string(), "update".to_string()];
        push_positional(&mut args, &[repo]);
        self.runner.run(&Invocation::new(format!("refresh the {repo} repository index"), &self.bin, args))
    }

    /// `helm list -o json` in the release namespace (completion).
    pub fn list_json(&self, purpose: impl Into<String>) -> Result<Finished, ExecError> {
        self.run(purpose, vec!["list".into(), "-o".into(), "json".into()], &[])
    }

    /// `helm list` of every release that is deployed, failed or pending, in helm's
    /// namespace or (`all_namespaces`) in all, as JSON (the fleet view). The states are
    /// named because helm 3 shows only deployed and failed releases by default and helm 4
    /// has no `--all`; `--max 0` because helm stops at 256 otherwise.
    pub fn list_releases_json(&self, all_namespaces: bool) -> Result<String, ExecError> {
        let mut args =
            ["list", "--deployed", "--failed", "--pending", "--max", "0", "-o", "json"].map(String::from).to_vec();
        if all_namespaces {
            args.push("--all-namespaces".into());
        }
        let purpose = if all_namespaces {
            "list the releases in all namespaces".to_string()
        } else {
            format!("list the releases in namespace {}", self.namespace)
        };
        Ok(self.run(purpose, args, &[])?.stdout)
    }

    /// `helm search repo --versions --devel -o json REFERENCE`: what helm's cached index
    /// says of a repository chart, as helm prints it (the catalog reads it).
    pub fn search_repo_json(&self, reference: &str) -> Result<String, ExecError> {
        let mut args = ["search", "repo", "--versions", "--devel", "-o", "json"].map(String::from).to_vec();
        push_positional(&mut args, &[reference]);
        let inv = Invocation::new(format!("list the versions of {reference}"), &self.bin, args);
        Ok(self.run_reading_index(&inv, Again::EvenIfItRan)?.stdout)
    }
}

/// What helm says when it reads a repository's cached index that another helm process is
/// rewriting (helm 3 and 4: `error loading …/repository/NAME-index.yaml: empty index.yaml
/// file`).
const INDEX_BEING_REWRITTEN: &str = "empty index.yaml file";

/// Which runs of a command that read an index mid-rewrite run once more.
#[derive(Clone, Copy)]
enum Again {
    /// A read: helm went on without the index, and said so.
    EvenIfItRan,
    /// A command that changes something once it ran.
    OnlyIfFailed,
}

/// How long a rewrite of a repository's index is given before it is read again.
const INDEX_REWRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// `--` and then the positional arguments (names the tool did not write itself); nothing
/// when there are none.
fn push_positional(args: &mut Vec<String>, positional: &[&str]) {
    if !positional.is_empty() {
        args.push("--".into());
        args.extend(positional.iter().map(|p| p.to_string()));
    }
}

/// How helm is told the chart a deploy uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartRef {
    /// `repo/name` or `oci://…` at `version` (as the source spells it), over plain HTTP
    /// to an OCI registry when `plain_http`.
    Reference { reference: String, version: String, plain_http: bool },
    /// A packaged chart on disk.
    File(PathBuf),
}

impl ChartRef {
    /// The chart as helm's positional argument: the reference, or the archive's path.
    pub fn arg(&self) -> String {
        match self {
            ChartRef::Reference { reference, .. } => reference.clone(),
            ChartRef::File(path) => path.display().to_string(),
        }
    }

    /// The flags that go with it: `--version V [--plain-http]` for a reference.
    fn flags(&self) -> Vec<String> {
        match self {
            ChartRef::Reference { version, plain_http, .. } => {
                let mut flags = vec!["--version".to_string(), version.clone()];
                if *plain_http {
                    flags.push("--plain-http".into());
                }
                flags
            }
            ChartRef::File(_) => vec![],
        }
    }
}

/// The values a deploy (or its render) passes, in this order: each `-f` file (the carried
/// values first, then the operator's), the operator's set-lines, then the procedure's own
/// values for this one deploy. helm applies set-lines after every file whatever the order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployValues {
    pub files: Vec<PathBuf>,
    pub sets: Vec<SetArg>,
    pub step_file: Option<PathBuf>,
}

impl DeployValues {
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for file in &self.files {
            flags.extend(["-f".to_string(), file.display().to_string()]);
        }
        for set in &self.sets {
            flags.extend([set.kind.flag().to_string(), set.text.clone()]);
        }
        if let Some(file) = &self.step_file {
            flags.extend(["-f".to_string(), file.display().to_string()]);
        }
        flags
    }
}

/// The values helm records (`config`) for a deploy given only value files this tool
/// wrote as JSON, in order, and no set-line: helm's merge of them (`mergeMaps`,
/// pkg/cli/values/options.go: a map merges into a map, anything else replaces what was
/// there, `null` included), every number as helm holds it ([`as_helm_holds`]). Exact for
/// such files, which are JSON with quoted keys and strings: YAML 1.1 reads them as JSON
/// means. The operator's own `-f` files and set-lines are merged by helm itself
/// ([`Helm::merge`]): their YAML and set-line syntax have corners no second reading
/// should guess.
pub fn merged_json_files(files: &[&serde_json::Value]) -> serde_json::Value {
    fn merge(into: &mut serde_json::Map<String, serde_json::Value>, from: &serde_json::Map<String, serde_json::Value>) {
        for (key, value) in from {
            match (into.get_mut(key), value) {
                (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => merge(old, new),
                _ => {
                    into.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    for file in files {
        // helm reads a file that is not a mapping (`null`) as an empty one.
        if let serde_json::Value::Object(map) = file {
            merge(&mut out, map);
        }
    }
    as_helm_holds(&serde_json::Value::Object(out))
}

/// `value` with every number as helm holds values: a float64 (YAML and JSON numbers both
/// become one when helm reads them), which it prints (Go's encoding/json) as an integer
/// when it is one below 1e21, with the shortest digits that read back to it (so
/// 12345678901234567890 comes back as 12345678901234567000), and `6379.0` as `6379`.
pub fn as_helm_holds(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            let Some(f) = n.as_f64() else { return value.clone() };
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
                // Rust prints an integral float as Go does here: the shortest digits,
                // then zeros, no exponent, no `.0`.
                serde_json::from_str(&format!("{f}")).unwrap_or_else(|_| value.clone())
            } else {
                serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(as_helm_holds).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), as_helm_holds(v))).collect()),
        other => other.clone(),
    }
}

/// A `helm upgrade` of the walk: the chart, its values, and how long helm waits for the
/// rollout (bare `--wait`, which means the same on helm 3 and 4, while `--wait=true`
/// warns on 4 and `--wait=watcher` fails on 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    pub chart: ChartRef,
    pub values: DeployValues,
    /// `--timeout`, as the operator gave it.
    pub timeout: String,
    /// `--force-conflicts` (helm 4): take back fields the policy's own commands changed.
    pub force_conflicts: bool,
}

impl UpgradeRequest {
    /// The flags after `helm upgrade` and before `-o json`, in the order helm is given
    /// them (also what a test's fake cluster reads).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = self.chart.flags();
        flags.extend(self.values.flags());
        flags.push(EXACTLY_THESE_VALUES.into());
        flags.extend(["--wait".into(), "--timeout".into(), self.timeout.clone()]);
        if self.force_conflicts {
            flags.push("--force-conflicts".into());
        }
        flags
    }
}

/// Every `helm upgrade` of a run is given all the values it deploys (the carried ones
/// too): helm is to record exactly those. Without this flag, helm keeps the release's
/// old values whenever the given ones merge to nothing (`{}`): a release without values
/// of its own would keep a procedure's one-deploy `maintenance: true` after the hop.
const EXACTLY_THESE_VALUES: &str = "--reset-values";

/// The user values helm recorded for a deploy (`config`): `{}` when there were none,
/// which helm leaves out of its JSON or prints as `null`.
pub fn recorded_values(config: Option<serde_json::Value>) -> serde_json::Value {
    match config {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(values) => values,
    }
}

/// What `helm upgrade -o json` says of the revision it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    pub revision: u64,
    pub status: String,
    pub chart_version: Option<String>,
    /// The digest of the user values helm deployed (its `config`, canonical JSON): what
    /// the walk compares with the digest the plan showed.
    pub values_digest: String,
}

/// What `helm upgrade --dry-run=server` would deploy.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub manifest: String,
    /// The user values after helm merged the carried values, `-f` and `--set` (`config`).
    pub values: serde_json::Value,
}

/// What `helm template` is told of the cluster (`--kube-version`, `--api-versions`), as
/// helm would read them from it (`KubeClient::capabilities`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub kube_version: crate::kube::ServerVersion,
    pub api_versions: Vec<String>,
}

impl Capabilities {
    /// Whether `--kube-version` gives a render the `.Capabilities.KubeVersion` the
    /// cluster gives its upgrade. helm makes `Major` and `Minor` from the version's
    /// numbers, and helm 3 drops what follows them (`-eks-a737599`, `+k3s1`), where the
    /// cluster says them as they are (a minor of `30+`): only a plain `vX.Y.Z` whose
    /// numbers are its major and minor comes through the same.
    pub fn kube_version_told_exactly(&self) -> bool {
        let version = &self.kube_version;
        let Some(numbers) = version.git_version.strip_prefix('v') else { return false };
        let parts: Vec<&str> = numbers.split('.').collect();
        let plain =
            |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
        parts.len() == 3 && parts.iter().all(|p| plain(p)) && parts[0] == version.major && parts[1] == version.minor
    }

    /// One `--api-versions` per entry: a cluster with thousands of kinds would make one
    /// comma-joined argument longer than Linux takes for one (128 KiB). Each value joined
    /// to its flag with `=`: what the cluster said stays that flag's value, whatever it is.
    fn flags(&self) -> Vec<String> {
        let mut flags = vec![format!("--kube-version={}", self.kube_version.git_version)];
        flags.extend(self.api_versions.iter().map(|api| format!("--api-versions={api}")));
        flags
    }
}

/// A chart of this tool's own, written into a run's private folder: no values, no object,
/// one template printing, as a YAML comment, helm's merge of the values it is given (a
/// chart without values of its own adds none to them). A comment, because it is no
/// object; in base64, because helm parses what a template printed as YAML, and a value's
/// U+0085 (which `toJson` leaves as it is) would end the comment's line there.
pub struct EchoChart(PathBuf);

const ECHO_VALUES: &str = "# helm-safe-upgrade values: ";

impl EchoChart {
    /// Write the chart into `dir` (a private folder of the run).
    pub fn write(dir: &Path) -> std::io::Result<EchoChart> {
        let root = dir.join("helm-safe-upgrade-echo");
        std::fs::create_dir_all(root.join("templates"))?;
        std::fs::write(
            root.join("Chart.yaml"),
            "apiVersion: v2\nname: helm-safe-upgrade-echo\nversion: 0.1.0\ndescription: helm's merge of a run's values\n",
        )?;
        std::fs::write(
            root.join("templates").join("echo.yaml"),
            format!("{ECHO_VALUES}{{{{ .Values | toJson | b64enc }}}}\n"),
        )?;
        Ok(EchoChart(root))
    }
}

/// The values the [`EchoChart`] printed.
fn echoed_values(printed: &str) -> Result<serde_json::Value, String> {
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix(ECHO_VALUES))
        .ok_or_else(|| format!("no line `{}` in what helm printed", ECHO_VALUES.trim()))?;
    use base64::Engine;
    let json = base64::engine::general_purpose::STANDARD
        .decode(line.trim_end())
        .map_err(|e| format!("`{}` is not base64: {e}", ECHO_VALUES.trim()))?;
    serde_json::from_slice(&json).map_err(|e| format!("`{}` is not JSON: {e}", ECHO_VALUES.trim()))
}

/// `values` as the text of a values file helm reads back to the same values. helm reads
/// the file as YAML 1.1, which takes U+0085, U+2028 and U+2029 for line breaks (folded
/// into a space inside a string) and refuses U+007F, U+0080–U+009F, U+FFFE and U+FFFF
/// ("control characters are not allowed"): serde_json writes them as they are, so they
/// are written here as JSON's `\uXXXX`, which is also YAML's escape in the double-quoted
/// strings JSON has (the only place they can stand). serde_json escapes the rest below
/// U+0020 itself.
pub fn values_file_text(values: &impl serde::Serialize, pretty: bool) -> String {
    let json = match pretty {
        true => serde_json::to_string_pretty(values),
        false => serde_json::to_string(values),
    }
    .expect("values are JSON");
    let unprintable = |c: char| matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}');
    if !json.contains(unprintable) {
        return json;
    }
    let mut text = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match unprintable(c) {
            true => text.push_str(&format!("\\u{:04x}", c as u32)),
            false => text.push(c),
        }
    }
    text
}

#[derive(serde::Deserialize)]
struct RenderJson {
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct UpgradeJson {
    version: u64,
    info: UpgradeInfo,
    #[serde(default)]
    chart: Option<UpgradeChart>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct UpgradeInfo {
    status: String,
}

#[derive(serde::Deserialize)]
struct UpgradeChart {
    metadata: UpgradeChartMeta,
}

#[derive(serde::Deserialize)]
struct UpgradeChartMeta {
    version: String,
}

/// A program named in the user's own policy (snapshot command, `run` step, check).
pub fn policy_command(purpose: impl Into<String>, argv: &[String], env: Vec<(String, String)>) -> Invocation {
    let mut inv = Invocation::new(purpose, Path::new(&argv[0]), argv[1..].to_vec());
    inv.env = env;
    inv
}

/// Why a program named by the operator or a policy cannot be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRunnable {
    /// A path (a name with `/`) where nothing exists.
    Missing,
    /// A name (no `/`) found in no directory of PATH.
    NotOnPath,
    /// A path to a directory, a device or a pipe: not a program.
    NotAFile,
    /// A file (the path given, or the first of that name on PATH) this user may not execute.
    NotExecutable(PathBuf),
}

impl std::fmt::Display for NotRunnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRunnable::Missing => f.write_str("no such file"),
            NotRunnable::NotOnPath => f.write_str("not found on PATH"),
            NotRunnable::NotAFile => f.write_str("not a file"),
            NotRunnable::NotExecutable(path) => write!(f, "{} is not executable", path.display()),
        }
    }
}

/// helm's major version as its binary's Go build info names its main package
/// (`path\thelm.sh/helm/v4/cmd/helm`), or None when `path` is not helm's own binary.
///
/// Go writes the build info after a `\xff Go buildinf:` header in the binary's data, with
/// the main package's path in its first few hundred bytes; only a binary built from
/// helm's `cmd/helm` names it there. A shim that picks a helm by the folder it runs in
/// (asdf, mise, proto) or a wrapper script is not, and is asked instead. The data section
/// sits near the end of the file, so the file is read backwards in blocks; nothing is
/// kept between runs.
pub fn major_from_build_info(path: &Path) -> Option<u32> {
    use std::io::{Read, Seek, SeekFrom};
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    const BLOCK: u64 = 1 << 20;
    // The header (32 bytes) and the Go version before the main package's path.
    const WINDOW: usize = 512;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut end = len;
    let mut block = vec![];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        // Each block overlaps the next one read by a window, so a header and its path
        // are seen together in one of them.
        let read_to = (end + WINDOW as u64).min(len);
        block.resize((read_to - start) as usize, 0);
        file.seek(SeekFrom::Start(start)).ok()?;
        file.read_exact(&mut block).ok()?;
        if let Some(at) = memchr::memmem::rfind(&block, MAGIC) {
            let info = &block[at..(at + WINDOW).min(block.len())];
            let main_is = |major: u32| {
                memchr::memmem::find(info, format!("path\thelm.sh/helm/v{major}/cmd/helm\n").as_bytes()).is_some()
            };
            return [3, 4].into_iter().find(|major| main_is(*major));
        }
        end = start;
    }
    None
}

/// The file `program` names, as the kernel's `execvp` would find it: a name with a `/` is
/// a path (relative to the current folder), any other is looked up in each directory of
/// `search_path` (PATH) in turn, an empty entry meaning the current folder. Checked before
/// a run starts, so that a program that cannot start is refused before anything changes
/// rather than failing at the first moment it is needed; the path found is what is run.
pub fn find_program(program: &str, search_path: Option<&std::ffi::OsStr>) -> Result<PathBuf, NotRunnable> {
    if program.contains(std::path::is_separator) {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Err(_) => Err(NotRunnable::Missing),
            Ok(meta) if !meta.is_file() => Err(NotRunnable::NotAFile),
            Ok(_) if !may_execute(&path) => Err(NotRunnable::NotExecutable(path)),
            Ok(_) => Ok(path),
        };
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(search_path.unwrap_or_default()) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        for candidate in names_in(&dir, program) {
            if !std::fs::metadata(&candidate).is_ok_and(|m| m.is_file()) {
                continue;
            }
            if may_execute(&candidate) {
                return Ok(candidate);
            }
            not_executable.get_or_insert(candidate);
        }
    }
    Err(not_executable.map_or(NotRunnable::NotOnPath, NotRunnable::NotExecutable))
}

/// The files `program` may be in `dir`: itself, and on Windows, where helm is `helm.exe`
/// and `HELM_BIN` says `helm`, first the name with `.exe` when it has no extension.
fn names_in(dir: &Path, program: &str) -> Vec<PathBuf> {
    let plain = dir.join(program);
    if cfg!(unix) || Path::new(program).extension().is_some() {
        return vec![plain];
    }
    vec![dir.join(format!("{program}.exe")), plain]
}

/// access(2) with X_OK: this user, with its groups, may execute `path` (a mode bit check
/// alone would say yes to a file only its owner may run).
#[cfg(unix)]
fn may_execute(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: access(2) reads the NUL-terminated string only.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

/// No execute bit on Windows (whether a file runs depends on its extension and ACLs): a
/// file that exists counts; one that then cannot run fails when it is started, with the
/// spawn error.
#[cfg(not(unix))]
fn may_execute(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// The arguments as anyone may see them (the program left out).
    fn redacted(args: &[String]) -> Vec<String> {
        let words = Invocation::new("x", "helm", args.to_vec()).argv().words(crate::sensitive::Disclosure::Redacted);
        words[1..].to_vec()
    }

    #[test]
    fn set_values_are_redacted_in_every_spelling() {
        let args = s(&[
            "upgrade",
            "bsr",
            "--set",
            "postgres.password=hunter2,replicas=3",
            "--set-string=token=abc",
            "-f",
            "values.yaml",
        ]);
        let shown = redacted(&args);
        assert_eq!(
            shown,
            s(&[
                "upgrade",
                "bsr",
                "--set",
                "postgres.password=***,replicas=***",
                "--set-string=token=***",
                "-f",
                "values.yaml"
            ])
        );
        assert!(!shown.join(" ").contains("hunter2"));
    }

    #[test]
    fn redaction_parses_set_lines_as_helm_does() {
        let args = s(&[
            "--set",
            r"postgres.password=hunter2\,tail9",
            "--set-json",
            r#"db={"password":"p,w"}"#,
            "--set-literal=token=a,b",
            "--set-file",
            "cert=/tmp/c.pem",
            "--set",
            "unparsable",
        ]);
        let shown = redacted(&args).join(" ");
        for secret in ["hunter2", "tail9", "p,w", "a,b", "/tmp/c.pem", "unparsable"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert_eq!(
            shown,
            "--set postgres.password=*** --set-json db=*** --set-literal=token=*** --set-file cert=*** --set ***"
        );
    }

    #[test]
    fn a_childs_stderr_is_shown_without_escape_sequences() {
        let runner = Runner::new(Signals::default(), false);
        let inv = Invocation::new("print hostile text", "sh", s(&["-c", "printf 'bad\\033[31mred\\rX' >&2; exit 3"]));
        let err = runner.run(&inv).unwrap_err().to_string();
        assert!(err.contains("bad\\x1b[31mred\\rX"), "{err}");
        assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    }

    #[test]
    fn positional_arguments_come_after_a_double_dash() {
        let helm = Helm {
            runner: Runner::new(Signals::default(), false),
            bin: PathBuf::from("helm"),
            namespace: "ns".into(),
            kube_context: Some("ctx".into()),
        };
        let inv = helm.invocation("x".into(), s(&["get", "metadata", "-o", "json"]), &["--all"]);
        assert_eq!(
            inv.args,
            s(&["get", "metadata", "-o", "json", "--namespace", "ns", "--kube-context", "ctx", "--", "--all"])
        );
    }

    #[test]
    fn failures_carry_purpose_argv_and_stderr() {
        let runner = Runner::new(Signals::default(), false);
        let inv = Invocation::new("list a missing directory", "ls", s(&["/definitely/not/here", "--set", "a=secret"]));
        let err = runner.run(&inv).unwrap_err().to_string();
        assert!(
            err.starts_with("list a missing directory failed (exit 2): ls /definitely/not/here --set 'a=***'"),
            "{err}"
        );
        assert!(err.contains("unrecognized option"), "helm's stderr is shown verbatim: {err}");
        assert!(!err.contains("secret"));
    }

    #[test]
    fn values_are_shown_only_on_the_operators_terminal() {
        // The values only in what the program prints, not in its own argv.
        let script = r"printf 'pulling bufd:%s%s; login %s%s refused\n' bro ken hunt er2 >&2; exit 1";
        for interactive in [true, false] {
            let (printer, _, stderr) = Printer::captured(interactive);
            let runner = Runner::printing(Signals::default(), true, printer.clone());
            let args = s(&["-c", script, "sh", "--set", "image.tag=broken,db.password=hunter2"]);
            let error = runner.run(&Invocation::new("fail on purpose", "sh", args)).unwrap_err();
            let shown = format!("{}\n{}", stderr.text(), error.message().render(printer.disclosure()));
            if interactive {
                assert!(shown.contains("'image.tag=broken,db.password=***'"), "{shown}");
                assert!(shown.contains("pulling bufd:broken; login *** refused"), "{shown}");
            } else {
                assert!(shown.contains("'image.tag=***,db.password=***'"), "{shown}");
                assert!(shown.contains("pulling bufd:***; login *** refused"), "{shown}");
            }
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!error.to_string().contains("broken") && !format!("{error:?}").contains("hunter2"));
        }
    }

    #[test]
    fn a_missing_program_says_so() {
        let runner = Runner::new(Signals::default(), false);
        let err = runner.run(&Invocation::new("run nothing", "/no/such/helm", vec![])).unwrap_err().to_string();
        assert!(err.contains("not installed or not on PATH"), "{err}");
    }

    #[test]
    fn children_run_in_their_own_process_group() {
        let runner = Runner::new(Signals::default(), false);
        let out =
            runner.run(&Invocation::new("read the process group", "sh", s(&["-c", "ps -o pgid= -p $$"]))).unwrap();
        let child_group: u32 = out.stdout.trim().parse().unwrap();
        let own_group = unsafe { libc::getpgrp() } as u32;
        assert_ne!(child_group, own_group);
    }

    #[test]
    fn a_time_limit_kills_the_childs_whole_group_quickly() {
        let runner = Runner::new(Signals::default(), false);
        // The shell's own child (`sleep`) is in its group: killed with it, so nothing holds
        // the output files open and the call returns at the limit, not after 5 s.
        let inv = Invocation::new("sleep on purpose", "sh", s(&["-c", "echo starting >&2; sleep 5; echo late"]));
        let started = Instant::now();
        let err = runner.run_limited(&inv, Some(b"{}\n"), Duration::from_millis(200)).unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(took >= Duration::from_millis(200), "took {took:?}");
        match &err {
            ExecError::TimedOut { limit, stderr, .. } => {
                assert_eq!(*limit, Duration::from_millis(200));
                assert_eq!(stderr, "starting");
            }
            other => panic!("not a timeout: {other}"),
        }
        assert!(err.to_string().contains("did not finish within 200ms and was killed"), "{err}");
    }

    #[test]
    fn a_limited_child_gets_its_input_and_finishes_in_time() {
        let runner = Runner::new(Signals::default(), false);
        let inv = Invocation::new("echo the input", "sh", s(&["-c", "cat"]));
        let done = runner.run_limited(&inv, Some(b"{\"event\":\"start\"}\n"), Duration::from_secs(10)).unwrap();
        assert_eq!(done.stdout, "{\"event\":\"start\"}\n");
        // A child that never reads its input still ends at its limit.
        let deaf = Invocation::new("ignore the input", "sh", s(&["-c", "exec sleep 5"]));
        let big = vec![b'x'; 1 << 20];
        let started = Instant::now();
        assert!(matches!(
            runner.run_limited(&deaf, Some(&big), Duration::from_millis(200)),
            Err(ExecError::TimedOut { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn helms_major_version_is_read_from_its_build_info_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, contents: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let built = |main: &str| {
            let mut bytes = vec![0u8; 3 << 20];
            let info = format!("\u{0}\u{0}\x0bgo1.24.4\u{0}path\t{main}\nmod\thelm.sh/helm/v4\tv4.1.4\t\n");
            // Across the boundary of two blocks read backwards: the overlap must see it.
            let at = (2 << 20) - 20;
            bytes[at..at + 14].copy_from_slice(b"\xff Go buildinf:");
            bytes[at + 32..at + 32 + info.len()].copy_from_slice(info.as_bytes());
            bytes
        };
        assert_eq!(major_from_build_info(&file("helm4", &built("helm.sh/helm/v4/cmd/helm"))), Some(4));
        assert_eq!(major_from_build_info(&file("helm3", &built("helm.sh/helm/v3/cmd/helm"))), Some(3));
        // A Go program that uses helm as a library, and a shim, are not helm.
        assert_eq!(major_from_build_info(&file("tool", &built("github.com/x/helmfile"))), None);
        assert_eq!(major_from_build_info(&file("shim", b"#!/bin/sh\nexec helm \"$@\"\n")), None);
        assert_eq!(major_from_build_info(&dir.path().join("missing")), None);
    }

    #[test]
    fn unshown_arguments_stay_out_of_errors_and_debug_lines() {
        let (printer, _, stderr) = Printer::captured(true);
        let runner = Runner::printing(Signals::default(), true, printer.clone());
        let url = "https://hooks.example/T0/B0/s3cr3tT0ken";
        let inv = Invocation::new("notify", "sh", s(&["-c", "exit 1", url])).with_unshown_args();
        let err = runner.run(&inv).unwrap_err();
        let shown = format!("{}\n{}", stderr.text(), err.message().render(printer.disclosure()));
        assert!(shown.contains("debug: sh '***' (notify)"), "{shown}");
        assert!(shown.contains("notify failed (exit 1): sh '***'"), "{shown}");
        assert!(!shown.contains("s3cr3tT0ken"), "{shown}");
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let other = dir.path().join("other");
        for d in [&bin, &other] {
            std::fs::create_dir(d).unwrap();
        }
        let write = |path: &Path, mode: u32| {
            std::fs::write(path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(&bin.join("hook"), 0o755);
        write(&other.join("plain"), 0o644);
        write(&bin.join("plain"), 0o755);
        write(&other.join("only-plain"), 0o644);
        let path = std::env::join_paths([&other, &bin]).unwrap();
        let find = |p: &str| find_program(p, Some(path.as_os_str()));
        assert_eq!(find("hook"), Ok(bin.join("hook")));
        // A file without the execute bit earlier on PATH is passed over, as execvp does.
        assert_eq!(find("plain"), Ok(bin.join("plain")));
        assert_eq!(find("only-plain"), Err(NotRunnable::NotExecutable(other.join("only-plain"))));
        assert_eq!(find("nope"), Err(NotRunnable::NotOnPath));
        assert_eq!(find_program("hook", None), Err(NotRunnable::NotOnPath));
        // A name with a slash is a path: PATH is not searched.
        let hook = bin.join("hook");
        assert_eq!(find_program(hook.to_str().unwrap(), None), Ok(hook.clone()));
        assert_eq!(find(&format!("{}/nope", bin.display())), Err(NotRunnable::Missing));
        assert_eq!(find(bin.to_str().unwrap()), Err(NotRunnable::NotAFile));
        let plain = other.join("plain");
        assert_eq!(find(plain.to_str().unwrap()), Err(NotRunnable::NotExecutable(plain)));
        // What is found runs.
        std::fs::write(&hook, "#!/bin/sh\necho ran\n").unwrap();
        let runner = Runner::new(Signals::default(), false);
        assert_eq!(runner.run(&Invocation::new("run", find("hook").unwrap(), vec![])).unwrap().stdout, "ran\n");
    }

    #[test]
    fn a_read_that_finds_the_index_being_rewritten_is_tried_once_more() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A stand-in for helm that counts its calls in a file, runs `first` on the first
        // call and `then` after it.
        let calls = dir.path().join("calls");
        let helm_doing = |name: &str, first: &str, then: &str| {
            std::fs::write(&calls, "").unwrap();
            let path = dir.path().join(name);
            let script = format!(
                "#!/bin/sh\necho x >> '{0}'\nif [ \"$(wc -l < '{0}')\" -eq 1 ]; then {first}; else {then}; fi\n",
                calls.display()
            );
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Helm::new(Runner::new(Signals::default(), false), path, "ns".into(), None)
        };
        let count = || std::fs::read_to_string(&calls).unwrap().lines().count();
        let chart = ChartRef::Reference { reference: "demo/bsr".into(), version: "1.1.9".into(), plain_http: false };
        // The first pull reads the index mid-rewrite, as helm words it.
        let rewritten = format!(
            "echo 'Error: no cached repo found: error loading /c/repository/demo-index.yaml: {INDEX_BEING_REWRITTEN}' >&2; exit 1"
        );
        helm_doing("pull", &rewritten, "true").pull("pull", &chart, dir.path()).unwrap();
        assert_eq!(count(), 2);
        // Any other failure is not tried again.
        let not_found = "echo 'Error: chart not found' >&2; exit 1";
        let error = helm_doing("other", not_found, not_found).pull("pull", &chart, dir.path()).unwrap_err();
        assert!(error.stderr().contains("chart not found"), "{error}");
        assert_eq!(count(), 1);
        // `helm search repo` only warns, and lists nothing, from such an index.
        let warned = format!(
            "echo 'WARNING: error loading /c/repository/demo-index.yaml: {INDEX_BEING_REWRITTEN}' >&2; echo '[]'"
        );
        let search = helm_doing("search", &warned, r#"echo '[{"name":"demo/bsr"}]'"#);
        assert_eq!(search.search_repo_json("demo/bsr").unwrap().trim(), r#"[{"name":"demo/bsr"}]"#);
        assert_eq!(count(), 2);
        // An upgrade of a repository chart that failed on the index changed nothing, and
        // runs again; one that ran is never run twice, whatever it said.
        let request = |chart: ChartRef| UpgradeRequest {
            chart,
            values: DeployValues { files: vec![], sets: vec![], step_file: None },
            timeout: "5m".into(),
            force_conflicts: false,
        };
        let upgraded = r#"echo '{"version":5,"info":{"status":"deployed"},"config":{}}'"#;
        let deployed = helm_doing("upgrade", &rewritten, upgraded).upgrade("upgrade", "bsr", &request(chart.clone()));
        assert_eq!(deployed.unwrap().revision, 5);
        assert_eq!(count(), 2);
        let ran_and_said = format!("echo 'WARNING: {INDEX_BEING_REWRITTEN}' >&2; {upgraded}");
        let once = helm_doing("upgrade-once", &ran_and_said, "exit 1");
        assert_eq!(once.upgrade("upgrade", "bsr", &request(chart.clone())).unwrap().revision, 5);
        assert_eq!(count(), 1);
        // An archive on disk reads no index: its failure is helm's answer.
        let file = ChartRef::File(dir.path().join("bsr-1.1.9.tgz"));
        let error = helm_doing("upgrade-file", &rewritten, upgraded).upgrade("upgrade", "bsr", &request(file));
        assert!(error.unwrap_err().stderr().contains(INDEX_BEING_REWRITTEN));
        assert_eq!(count(), 1);
    }

    #[test]
    fn renders_hold_gos_collector_back_unless_the_operator_set_it() {
        let helm = Helm::new(Runner::new(Signals::default(), false), "helm".into(), "ns".into(), None);
        let inv = helm.rendering("render".into(), s(&["template"]), &["bsr", "chart.tgz"]);
        let operators = crate::env::get(crate::env::GOGC).or(crate::env::get(crate::env::GOMEMLIMIT));
        let held = [("GOGC".to_string(), "off".to_string()), ("GOMEMLIMIT".to_string(), "128MiB".to_string())];
        match operators {
            None => assert_eq!(inv.env, held),
            Some(_) => assert!(inv.env.is_empty(), "{:?}", inv.env),
        }
        // Every other helm command runs with Go's own setting.
        assert!(helm.invocation("upgrade".into(), s(&["upgrade"]), &["bsr"]).env.is_empty());
    }

    #[test]
    fn json_files_merge_as_helm_merges_value_files() {
        let carried = serde_json::json!({"db": {"host": "a", "port": 5432}, "list": [1, 2], "gone": {"x": 1}});
        let step = serde_json::json!({"db": {"host": "b"}, "list": [3], "gone": null, "maintenance": true});
        let merged = merged_json_files(&[&carried, &serde_json::Value::Null, &step]);
        // A map merges into a map; a list, a scalar and `null` replace.
        assert_eq!(
            merged,
            serde_json::json!({"db": {"host": "b", "port": 5432}, "list": [3], "gone": null, "maintenance": true})
        );
        // A scalar where a map was replaces it, and a map where a scalar was replaces that.
        let a = serde_json::json!({"k": {"x": 1}, "s": 1});
        let b = serde_json::json!({"k": 5, "s": {"y": 2}});
        assert_eq!(merged_json_files(&[&a, &b]), serde_json::json!({"k": 5, "s": {"y": 2}}));
    }

    #[test]
    fn numbers_are_held_as_helms_float64_prints_them() {
        // What helm 3 and 4 printed for these values read from a file (`helm upgrade
        // --dry-run=server -o json`'s config, on the test bed).
        let read: serde_json::Value =
            serde_json::from_str(r#"{"a": 6379.0, "big": 12345678901234567890, "f": 1.50, "neg": -3, "huge": 1e300}"#)
                .unwrap();
        let held = as_helm_holds(&read);
        assert_eq!(
            serde_json::to_string(&held).unwrap(),
            r#"{"a":6379,"big":12345678901234567000,"f":1.5,"huge":1e+300,"neg":-3}"#
        );
        // What helm printed reads back to itself.
        assert_eq!(as_helm_holds(&held), held);
    }

    #[test]
    fn the_echo_chart_says_the_values() {
        use base64::Engine;
        // What helm printed for {"a": true, "s": "x\u0085y"}: the line in base64.
        let json = "{\"a\":true,\"s\":\"x\u{85}y\"}";
        let line = base64::engine::general_purpose::STANDARD.encode(json);
        let printed = format!("---\n# Source: helm-safe-upgrade-echo/templates/echo.yaml\n{ECHO_VALUES}{line}\n");
        assert_eq!(echoed_values(&printed).unwrap(), serde_json::json!({"a": true, "s": "x\u{85}y"}));
        let missing = echoed_values("---\n# Source: x\n").unwrap_err();
        assert!(missing.contains("helm-safe-upgrade values"), "{missing}");
        let garbled = echoed_values(&format!("{ECHO_VALUES}{{\"a\": 1}}\n")).unwrap_err();
        assert!(garbled.contains("not base64"), "{garbled}");
        // A values file says every line-breaking character as an escape, and reads back.
        let values =
            serde_json::json!({"s": "a\u{85}b\u{2028}c\u{2029}d\ne\u{7f}\u{80}\u{9f}\u{fffe}\u{ffff}é", "k\u{85}": 1});
        for pretty in [false, true] {
            let text = values_file_text(&values, pretty);
            assert!(text.contains("\\u0085b\\u2028c\\u2029d\\ne\\u007f\\u0080\\u009f\\ufffe\\uffffé"), "{text:?}");
            assert!(!text.contains(|c: char| c.is_control() && c != '\n'), "{text:?}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), values);
        }
        let capabilities = caps("v1.33.0", "1", "33");
        assert_eq!(
            capabilities.flags(),
            s(&["--kube-version=v1.33.0", "--api-versions=v1", "--api-versions=apps/v1/Deployment"])
        );
    }

    fn caps(git_version: &str, major: &str, minor: &str) -> Capabilities {
        let kube_version =
            crate::kube::ServerVersion { git_version: git_version.into(), major: major.into(), minor: minor.into() };
        Capabilities { kube_version, api_versions: s(&["v1", "apps/v1/Deployment"]) }
    }

    #[test]
    fn only_a_plain_kube_version_is_told_to_an_offline_render_exactly() {
        assert!(caps("v1.33.0", "1", "33").kube_version_told_exactly());
        assert!(caps("v1.30.10", "1", "30").kube_version_told_exactly());
        // What helm 3 drops, or what helm makes otherwise than the cluster says.
        for (git, major, minor) in [
            ("v1.30.4-eks-a737599", "1", "30+"),
            ("v1.30.5-gke.1014001", "1", "30"),
            ("v1.33.0+k3s1", "1", "33"),
            ("v1.33.0+standin", "1", "33"),
            ("v1.33.0", "1", "33+"),
            ("v1.033.0", "1", "033"),
            ("1.33.0", "1", "33"),
            ("v1.33", "1", "33"),
            ("", "", ""),
        ] {
            assert!(!caps(git, major, minor).kube_version_told_exactly(), "{git} {major} {minor}");
        }
    }

    proptest::proptest! {
        /// Merging is what helm does to JSON it reads back: merging one file is holding
        /// it as helm does, and holding twice changes nothing.
        #[test]
        fn merging_one_file_is_holding_it(json in proptest_json()) {
            let held = as_helm_holds(&json);
            proptest::prop_assert_eq!(&as_helm_holds(&held), &held);
            if json.is_object() {
                proptest::prop_assert_eq!(merged_json_files(&[&json]), held);
            }
        }
    }

    fn proptest_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e30f64..1e30).prop_map(serde_json::Value::from),
            "[a-z]{0,4}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
