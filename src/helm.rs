//! The only place that spawns processes: helm, kubectl, and the commands of the user's own
//! policy (snapshot, `run` steps, checks).
//!
//! Every child gets an argv (never a shell), a human purpose that ends up in its error, and
//! its own process group: a Ctrl-C at the terminal reaches only this tool, which lets a
//! running `helm upgrade` finish instead of dying half-way and leaving the release
//! `pending-upgrade` (helm-facts §2.5: helm itself neither forwards nor waits on signals).
//! SIGTERM sent to this tool is passed on to the child. `--set` values are redacted in
//! every message, because values may hold secrets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// Signals received so far; shared with the executor, which decides what they mean.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    interrupts: Arc<AtomicUsize>,
    terminates: Arc<AtomicUsize>,
}

impl Signals {
    /// Count SIGINT and SIGTERM instead of dying on the spot, which is what must not
    /// happen while helm writes a release. A background thread receives them.
    pub fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let signals = Signals::default();
        let mut incoming = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let (interrupts, terminates) = (signals.interrupts.clone(), signals.terminates.clone());
        std::thread::spawn(move || {
            for signal in incoming.forever() {
                let counter = if signal == SIGINT { &interrupts } else { &terminates };
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Said at once, because the step under way may take minutes.
                    eprintln!(
                        "\n{}: the step under way finishes, then the run stops at the next safe point{}",
                        if signal == SIGINT { "interrupted" } else { "terminating" },
                        if signal == SIGINT { " (Ctrl-C again stops the step now)" } else { "" }
                    );
                }
            }
        });
        Ok(signals)
    }

    pub fn interrupts(&self) -> usize {
        self.interrupts.load(Ordering::SeqCst)
    }

    pub fn terminated(&self) -> bool {
        self.terminates.load(Ordering::SeqCst) > 0
    }

    /// Any signal asking the run to stop at the next safe point.
    pub fn stop_requested(&self) -> bool {
        self.interrupts() > 0 || self.terminated()
    }

    /// A second Ctrl-C or a SIGTERM: stop now, do not start a way back.
    pub fn stop_now(&self) -> bool {
        self.interrupts() >= 2 || self.terminated()
    }
}

/// One command to run.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// What the command is for, in words: "upgrade bsr to 1.2.6".
    pub purpose: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Invocation {
    pub fn new(purpose: impl Into<String>, program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Invocation { purpose: purpose.into(), program: program.into(), args, env: vec![] }
    }

    /// The argv for people: quoted where needed, `--set` values replaced by `***`.
    pub fn display(&self) -> String {
        let mut shown = vec![self.program.display().to_string()];
        shown.extend(redact(&self.args));
        crate::ui::render::display_argv(&shown)
    }
}

/// Replace the value part of `--set k=v` (and its variants) with `***`.
pub fn redact(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push(redact_assignments(arg));
            hide_next = false;
            continue;
        }
        let set_flag = ["--set", "--set-string", "--set-json", "--set-file", "--set-literal"]
            .iter()
            .find(|f| arg == *f || arg.starts_with(&format!("{f}=")));
        match set_flag {
            Some(flag) if arg == *flag => {
                hide_next = true;
                out.push(arg.clone());
            }
            Some(flag) => out.push(format!("{flag}={}", redact_assignments(&arg[flag.len() + 1..]))),
            None => out.push(arg.clone()),
        }
    }
    out
}

fn redact_assignments(list: &str) -> String {
    list.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) => format!("{k}=***"),
            None => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{purpose}: cannot start {program}: {source}\nhint: {hint}")]
    Spawn { purpose: String, program: String, source: std::io::Error, hint: String },
    #[error("{purpose} failed ({status}): {argv}\n{stderr}")]
    Failed { purpose: String, argv: String, status: String, stderr: String, stdout: String },
    #[error("{purpose}: cannot read the output of {argv}: {error}")]
    Parse { purpose: String, argv: String, error: String },
}

impl ExecError {
    /// helm's own stderr, for callers that recognise specific helm errors.
    pub fn stderr(&self) -> &str {
        match self {
            ExecError::Failed { stderr, .. } => stderr,
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
}

impl Runner {
    pub fn new(signals: Signals, debug: bool) -> Self {
        Runner { signals, debug }
    }

    /// Run to completion, capturing output. The child is in its own process group, so
    /// Ctrl-C does not reach it; SIGTERM received meanwhile is forwarded.
    pub fn run(&self, inv: &Invocation) -> Result<Finished, ExecError> {
        self.run_with_input(inv, None)
    }

    pub fn run_with_input(&self, inv: &Invocation, stdin: Option<&[u8]>) -> Result<Finished, ExecError> {
        use std::os::unix::process::CommandExt;
        if self.debug {
            eprintln!("debug: {} ({})", inv.display(), inv.purpose);
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
        let mut cmd = Command::new(&inv.program);
        cmd.args(&inv.args)
            .envs(inv.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(out_file.try_clone().map_err(spawn_error)?)
            .stderr(err_file.try_clone().map_err(spawn_error)?)
            .process_group(0);
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            purpose: inv.purpose.clone(),
            program: inv.program.display().to_string(),
            hint: if source.kind() == std::io::ErrorKind::NotFound {
                format!("{} is not installed or not on PATH", inv.program.display())
            } else {
                "check the program's permissions".to_string()
            },
            source,
        })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = pipe.write_all(input);
        }
        // Only a stop request that arrives while this child runs is passed on to it: the
        // bookkeeping after an insisted stop (reading the release, releasing the lock)
        // must still run.
        let mut forwarded_term = self.signals.stop_now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    return Err(ExecError::Parse {
                        purpose: inv.purpose.clone(),
                        argv: inv.display(),
                        error: e.to_string(),
                    });
                }
            }
            if !forwarded_term && self.signals.stop_now() {
                // SIGTERM (an orchestrator's request) or a second Ctrl-C (the operator
                // insists): helm handles SIGTERM by marking the operation failed, which
                // leaves no `pending-*` release behind. Say so before doing it.
                eprintln!(
                    "stopping now: `{}` is told to stop; helm marks what it was doing as failed, and this run ends without bringing the release back (the message below says what to do)",
                    inv.purpose
                );
                let _ = nix_kill(child.id(), signal_hook::consts::SIGTERM);
                forwarded_term = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = read_all(&mut out_file);
        let stderr = read_all(&mut err_file);
        let finished = Finished { stdout, stderr, status, duration: started.elapsed() };
        if finished.status.success() {
            Ok(finished)
        } else {
            Err(ExecError::Failed {
                purpose: inv.purpose.clone(),
                argv: inv.display(),
                status: describe(&finished.status),
                stderr: finished.stderr.trim_end().to_string(),
                stdout: finished.stdout,
            })
        }
    }

    /// Run and parse stdout as JSON.
    pub fn json<T: DeserializeOwned>(&self, inv: &Invocation) -> Result<T, ExecError> {
        let finished = self.run(inv)?;
        serde_json::from_str(&finished.stdout).map_err(|e| ExecError::Parse {
            purpose: inv.purpose.clone(),
            argv: inv.display(),
            error: e.to_string(),
        })
    }

    /// The child's pid group gets a signal; used when the operator insists on stopping.
    pub fn terminate(pid: u32) {
        let _ = nix_kill(pid, signal_hook::consts::SIGTERM);
    }
}

fn read_all(file: &mut std::fs::File) -> String {
    use std::io::Seek;
    let mut bytes = Vec::new();
    let _ = file.rewind().and_then(|_| file.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

fn nix_kill(pid: u32, signal: i32) -> std::io::Result<()> {
    // std offers only SIGKILL (Child::kill); helm needs SIGTERM to fail cleanly.
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Where helm is and how to address the release's cluster and namespace.
#[derive(Clone, Debug)]
pub struct Helm {
    pub runner: Runner,
    pub bin: PathBuf,
    /// 3 or 4: some flags differ (helm-facts §3.9).
    pub major: u32,
    pub version: String,
    pub namespace: String,
    pub kube_context: Option<String>,
}

impl Helm {
    /// `$HELM_BIN`, else `helm` on PATH; asks it for its version.
    pub fn detect(
        runner: Runner,
        helm_bin: Option<PathBuf>,
        namespace: String,
        kube_context: Option<String>,
    ) -> Result<Helm, ExecError> {
        let bin = helm_bin.unwrap_or_else(|| PathBuf::from("helm"));
        let inv = Invocation::new(
            "ask helm for its version",
            &bin,
            vec!["version".into(), "--template".into(), "{{.Version}}".into()],
        );
        let version = runner.run(&inv)?.stdout.trim().to_string();
        let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(3);
        Ok(Helm { runner, bin, major, version, namespace, kube_context })
    }

    fn invocation(&self, purpose: String, mut args: Vec<String>) -> Invocation {
        // Explicit -n and --kube-context even though helm exported them to us: a nested
        // helm would inherit HELM_NAMESPACE too, but explicit flags are what the logs show.
        args.push("--namespace".into());
        args.push(self.namespace.clone());
        if let Some(ctx) = &self.kube_context {
            args.push("--kube-context".into());
            args.push(ctx.clone());
        }
        Invocation::new(purpose, &self.bin, args)
    }

    pub fn run(&self, purpose: impl Into<String>, args: Vec<String>) -> Result<Finished, ExecError> {
        self.runner.run(&self.invocation(purpose.into(), args))
    }

    pub fn json<T: DeserializeOwned>(&self, purpose: impl Into<String>, args: Vec<String>) -> Result<T, ExecError> {
        self.runner.json(&self.invocation(purpose.into(), args))
    }

    /// Run without the release's namespace flags (repo and registry commands).
    pub fn run_global(&self, purpose: impl Into<String>, args: Vec<String>) -> Result<Finished, ExecError> {
        self.runner.run(&Invocation::new(purpose, &self.bin, args))
    }

    /// The versions of `repo/name` in helm's cached repository index.
    pub fn search_repo(&self, repo: &str, name: &str) -> Result<Vec<crate::plan::Available>, ExecError> {
        let reference = format!("{repo}/{name}");
        let inv = Invocation::new(
            format!("list the versions of {reference}"),
            &self.bin,
            ["search", "repo", reference.as_str(), "--versions", "--devel", "-o", "json"].map(String::from).to_vec(),
        );
        let out = self.runner.run(&inv)?;
        crate::catalog::repo::parse_search(&out.stdout, repo, name).map_err(|e| ExecError::Parse {
            purpose: inv.purpose.clone(),
            argv: inv.display(),
            error: e.to_string(),
        })
    }

    /// `docker-credential-<helper> get` for `server` (registry credentials kept by a
    /// credential store), in the shape the catalog's credential lookup expects.
    pub fn credential_helper(&self, helper: &str, server: &str) -> Result<Option<(String, String)>, String> {
        let (program, args) = crate::catalog::credentials::helper_invocation(helper);
        let inv = Invocation::new(format!("ask docker-credential-{helper} for {server}"), program, args);
        match self.runner.run_with_input(&inv, Some(server.as_bytes())) {
            Ok(out) => crate::catalog::credentials::parse_helper_output(true, &out.stdout),
            Err(ExecError::Failed { stdout, .. }) => crate::catalog::credentials::parse_helper_output(false, &stdout),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The flag that makes helm wait for readiness: bare `--wait` means the same on both
    /// majors (helm 4: the kstatus watcher), while `--wait=true` warns on 4 and
    /// `--wait=watcher` fails on 3 (helm-facts §3.9).
    pub fn wait_flag(&self) -> &'static str {
        "--wait"
    }
}

/// kubectl, for the ledger ConfigMap and pod checks, addressed like helm.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub runner: Runner,
    pub bin: PathBuf,
    pub namespace: String,
    pub kube_context: Option<String>,
}

impl Kubectl {
    pub fn new(runner: Runner, bin: Option<PathBuf>, namespace: String, kube_context: Option<String>) -> Self {
        Kubectl { runner, bin: bin.unwrap_or_else(|| PathBuf::from("kubectl")), namespace, kube_context }
    }

    fn invocation(&self, purpose: String, args: Vec<String>) -> Invocation {
        let mut full = vec!["--namespace".to_string(), self.namespace.clone()];
        if let Some(ctx) = &self.kube_context {
            full.push("--context".into());
            full.push(ctx.clone());
        }
        full.extend(args);
        Invocation::new(purpose, &self.bin, full)
    }

    pub fn run(&self, purpose: impl Into<String>, args: Vec<String>) -> Result<Finished, ExecError> {
        self.runner.run(&self.invocation(purpose.into(), args))
    }

    pub fn run_with_input(
        &self,
        purpose: impl Into<String>,
        args: Vec<String>,
        input: &[u8],
    ) -> Result<Finished, ExecError> {
        self.runner.run_with_input(&self.invocation(purpose.into(), args), Some(input))
    }

    pub fn json<T: DeserializeOwned>(&self, purpose: impl Into<String>, args: Vec<String>) -> Result<T, ExecError> {
        self.runner.json(&self.invocation(purpose.into(), args))
    }
}

/// A program named in the user's own policy (snapshot command, `run` step, check).
pub fn policy_command(purpose: impl Into<String>, argv: &[String], env: Vec<(String, String)>) -> Invocation {
    let mut inv = Invocation::new(purpose, Path::new(&argv[0]), argv[1..].to_vec());
    inv.env = env;
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
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
        let shown = redact(&args);
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
}
