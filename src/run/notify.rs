//! The notify hook: a program the operator (`--notify PROGRAM --notify-arg ARG…`) or the
//! policy (`notify: [argv…]`) names, called at a live run's events so that a chat or a
//! pager hears of them ("notify users of upcoming downtime").
//!
//! It owns three things: which hook a run calls, found before the lock is taken (a hook
//! that cannot start is bad input then, not a warning at every event of a run under way);
//! the event documents, built as plain values (no clock, no process: tested as such); and
//! the call, through the process layer's [`Runner::run_limited`], synchronous and killed
//! after [`LIMIT`]. It must not stop the run: the events come between the changes, and a
//! hook that fails, hangs or cannot start is a warning, whatever the run is doing. It must
//! not show the hook's arguments (a webhook URL's path is often its token) nor put an
//! operator's value into a document: messages are rendered redacted, as the ledger keeps
//! them.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::error::{RunError, bad};
use super::ledger::HopOutcome;
use super::options::NotifyCommand;
use crate::helm::{ExecError, Invocation, NotRunnable, Runner};
use crate::plan::{Direction, Plan};
use crate::policy::Policy;
use crate::printer::{Printer, Role};
use crate::report::Outcome;
use crate::text::one_line;
use crate::version::ChartVersion;

/// How long one call may take before its process group is killed: the run waits for it
/// between two changes, and a chat that does not answer must not hold a release's walk.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The version of the event document's shape; a field added keeps it, a field changed in
/// meaning or removed raises it.
pub const SCHEMA: u32 = 1;

/// The hook a run calls, its program found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// The program as the operator or the policy wrote it: what a warning names.
    pub named: String,
    /// Where it was found (PATH looked up once, before the run): what is run.
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The run's hook, `--notify` over the policy's `notify`, with its program found on this
/// process's PATH. None: the run calls nothing.
pub fn hook_for_run(notify: Option<&NotifyCommand>, policy: &Policy) -> Result<Option<Hook>, RunError> {
    let search_path = crate::env::path(crate::env::PATH);
    hook_for(notify, policy, search_path.as_deref().map(|p| p.as_os_str()))
}

/// [`hook_for_run`] with the PATH to search given. A program that does not exist or may
/// not be executed is bad input, naming the program and where it was looked for.
pub fn hook_for(
    notify: Option<&NotifyCommand>,
    policy: &Policy,
    search_path: Option<&OsStr>,
) -> Result<Option<Hook>, RunError> {
    let (named, args, from_policy) = match (notify, &policy.notify) {
        (Some(flag), _) => (flag.program.clone(), flag.args.clone(), false),
        (None, Some(argv)) => (argv[0].clone(), argv[1..].to_vec(), true),
        (None, None) => return Ok(None),
    };
    let program = crate::helm::find_program(&named, search_path).map_err(|why| {
        let shown = one_line(&named);
        let (message, instead) = if from_policy {
            (
                format!("the notify program {shown} of policy {} cannot be run: {why}", policy.name),
                "; or give this run another hook with --notify PROGRAM",
            )
        } else {
            (format!("--notify {shown} cannot be run: {why}"), "")
        };
        let fix = match &why {
            NotRunnable::NotExecutable(path) => format!("make it executable (chmod +x {})", path.display()),
            NotRunnable::NotAFile => "name a program, not a folder".to_string(),
            NotRunnable::Missing | NotRunnable::NotOnPath => {
                "name an executable file by its path, or a program on PATH (`command -v NAME` shows where it is)"
                    .to_string()
            }
        };
        bad(format!("{message}; nothing was changed"), format!("{fix}{instead}"))
    })?;
    Ok(Some(Hook { named, program, args }))
}

/// What every event says of the run: the plan's ends, not a hop's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunFacts {
    pub release: String,
    pub namespace: String,
    pub direction: Direction,
    pub from: ChartVersion,
    pub to: ChartVersion,
    pub hops: usize,
    pub downtime: bool,
    pub policy: String,
    /// `user@host pid N`, as the ledger's run record names it.
    pub holder: String,
    /// How long the plan is expected to take (in `start` only: "notify users of the
    /// upcoming downtime" needs the window).
    #[serde(skip)]
    pub estimate: Option<crate::plan::estimate::Total>,
}

impl RunFacts {
    pub fn new(plan: &Plan, release: &str, namespace: &str, holder: String) -> RunFacts {
        RunFacts {
            release: release.to_string(),
            namespace: namespace.to_string(),
            direction: plan.direction,
            from: plan.from.clone(),
            to: plan.to.clone(),
            hops: plan.hops.len(),
            downtime: plan.downtime,
            policy: plan.policy.clone(),
            holder,
            estimate: plan.estimate.clone(),
        }
    }
}

/// One event document, as the hook reads it on stdin (one line of JSON). A field for
/// every event goes here; one for some events goes in [`HopEnd`] or [`RunEnd`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event<'a> {
    pub schema: u32,
    /// `start`, `hop-end`, `completed`, `stopped` or `failed`.
    pub event: &'static str,
    #[serde(flatten)]
    pub run: &'a RunFacts,
    /// RFC 3339, UTC, seconds.
    pub time: String,
    #[serde(flatten)]
    pub hop: Option<HopEnd>,
    #[serde(flatten)]
    pub end: Option<RunEnd>,
    /// `start` only: the plan's expected time and downtime, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<&'a crate::plan::estimate::Total>,
}

/// A hop ended: succeeded, failed, or rolled back (at a pause, by the operator).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopEnd {
    /// 1-based, as the progress lines count.
    pub hop: usize,
    pub hop_from: ChartVersion,
    pub hop_to: ChartVersion,
    pub procedure: String,
    pub outcome: HopOutcome,
    /// How long the hop ran; for `rolled-back`, how long its way back took.
    pub seconds: f64,
}

/// The run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunEnd {
    /// Where the release stands; null when the run cannot say (a failure that needs a
    /// person).
    pub at: Option<ChartVersion>,
    /// Only in `failed`: true when the failed hop was brought back to `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// Why the run stopped or failed, redacted as the ledger keeps it: no value the
    /// operator passed (`--set`, `-f`), secret-looking or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl<'a> Event<'a> {
    fn new(event: &'static str, run: &'a RunFacts, time: String) -> Event<'a> {
        Event { schema: SCHEMA, event, run, time, hop: None, end: None, estimate: None }
    }

    /// The operator agreed, the lock is held, nothing has changed yet.
    pub fn start(run: &'a RunFacts, time: String) -> Event<'a> {
        Event { estimate: run.estimate.as_ref(), ..Event::new("start", run, time) }
    }

    /// Hop `index` (0-based) of `plan` ended.
    pub fn hop_end(
        run: &'a RunFacts,
        time: String,
        plan: &Plan,
        index: usize,
        outcome: HopOutcome,
        took: Duration,
    ) -> Event<'a> {
        let hop = plan.hops.get(index).map(|h| HopEnd {
            hop: index + 1,
            hop_from: h.from.clone(),
            hop_to: h.to.clone(),
            procedure: h.procedure.clone(),
            outcome,
            // Tenths, as the progress lines show durations.
            seconds: (took.as_secs_f64() * 10.0).round() / 10.0,
        });
        Event { hop, ..Event::new("hop-end", run, time) }
    }

    /// The run ended this way.
    pub fn end(run: &'a RunFacts, time: String, outcome: &Outcome) -> Event<'a> {
        let (event, recovered) = match outcome {
            Outcome::Completed { .. } => ("completed", None),
            Outcome::Stopped { .. } => ("stopped", None),
            Outcome::Recovered { .. } => ("failed", Some(true)),
            Outcome::Failed { .. } => ("failed", Some(false)),
        };
        let end = RunEnd {
            at: outcome.at().cloned(),
            recovered,
            message: outcome.message().map(|m| m.redacted()).filter(|m| !m.is_empty()),
        };
        Event { end: Some(end), ..Event::new(event, run, time) }
    }

    /// The document as the hook reads it: one line, newline-terminated.
    pub fn line(&self) -> String {
        let mut text = serde_json::to_string(self).expect("an event serialises");
        text.push('\n');
        text
    }
}

/// Calls the run's hook, if it has one, and warns when a call fails.
pub struct Notifier<'a> {
    hook: Option<&'a Hook>,
    run: RunFacts,
    runner: &'a Runner,
    printer: &'a Printer,
}

impl<'a> Notifier<'a> {
    pub fn new(hook: Option<&'a Hook>, run: RunFacts, runner: &'a Runner, printer: &'a Printer) -> Notifier<'a> {
        Notifier { hook, run, runner, printer }
    }

    pub fn started(&self) {
        if self.hook.is_some() {
            self.send(&Event::start(&self.run, super::ledger::now()));
        }
    }

    pub fn hop_ended(&self, plan: &Plan, index: usize, outcome: HopOutcome, took: Duration) {
        if self.hook.is_some() {
            self.send(&Event::hop_end(&self.run, super::ledger::now(), plan, index, outcome, took));
        }
    }

    pub fn finished(&self, outcome: &Outcome) {
        if self.hook.is_some() {
            self.send(&Event::end(&self.run, super::ledger::now(), outcome));
        }
    }

    /// One call, waited for; a failure is said and the run goes on.
    fn send(&self, event: &Event<'_>) {
        let Some(hook) = self.hook else { return };
        let inv = Invocation::new(format!("notify hook ({})", event.event), &hook.program, hook.args.clone())
            .with_unshown_args();
        if let Err(error) = self.runner.run_limited(&inv, Some(event.line().as_bytes()), LIMIT) {
            let warning = self.printer.text_look().paint(Role::Notice, "warning");
            self.printer.line(&format!("{warning}: {}", failure_text(hook, event.event, &error)));
        }
    }
}

/// Why a call failed, naming the program as it was written and never its arguments, with
/// the first line of what it said on stderr.
fn failure_text(hook: &Hook, event: &str, error: &ExecError) -> String {
    let named = one_line(&hook.named);
    let first_line = |stderr: &str| {
        let line = crate::text::for_terminal(stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim());
        if line.is_empty() { String::new() } else { format!(": {line}") }
    };
    let what = match error {
        ExecError::Failed { status, stderr, .. } => format!("failed ({status}){}", first_line(stderr)),
        ExecError::TimedOut { limit, stderr, .. } => {
            format!("did not finish within {} and was killed{}", humantime::format_duration(*limit), first_line(stderr))
        }
        ExecError::Spawn { source, .. } => format!("could not start: {source}"),
        ExecError::Parse { error, .. } => format!("could not be waited for: {error}"),
    };
    format!("notify hook {named} {what} (event {event}); the run goes on")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclose::Message;
    use crate::helm::Signals;
    use crate::plan::{Available, Context, UpgradeRequest};
    use serde_json::{Value, json};

    fn v(s: &str) -> ChartVersion {
        ChartVersion::parse(s).unwrap()
    }

    fn policy() -> Policy {
        crate::policy::parse(include_str!("../../bed/policies/bsr-bed.yaml"), "bsr-bed").unwrap()
    }

    fn plan() -> Plan {
        let offered: Vec<Available> =
            ["1.0.4", "1.1.9", "1.2.6", "1.3.0"].iter().map(|s| Available::new(v(s))).collect();
        let request = UpgradeRequest { current: v("1.0.4"), target: v("1.2.6"), fast_path: false, devel: false };
        let context = Context {
            release: Some("bsr".into()),
            namespace: Some("bsr".into()),
            chart_name: Some("bsr".into()),
            sources: None,
            made_from: None,
            values: None,
            history: vec![crate::plan::estimate::PastHop {
                kind: "minor".into(),
                procedure: "rolling".into(),
                work_secs: 600,
                downtime_secs: None,
            }],
            stated_times: false,
            charts_of_apps: Default::default(),
        };
        crate::plan::plan_upgrade(&policy(), &offered, &request, &context).unwrap()
    }

    fn facts() -> RunFacts {
        RunFacts::new(&plan(), "bsr", "prod", "ops@box pid 42".into())
    }

    fn doc(event: &Event<'_>) -> Value {
        let line = event.line();
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'), "one line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    const T: &str = "2026-11-30T10:56:50Z";

    #[test]
    fn the_start_says_what_the_run_will_do() {
        let run = facts();
        assert_eq!(
            doc(&Event::start(&run, T.into())),
            json!({
                "schema": 1, "event": "start", "release": "bsr", "namespace": "prod",
                "direction": "upgrade", "from": "1.0.4", "to": "1.2.6", "hops": 2, "downtime": false,
                "policy": "bsr-bed", "holder": "ops@box pid 42", "time": T,
                "estimate": {"expected_secs": 1200, "low_secs": 1200, "high_secs": 1200},
            })
        );
        let later = Event::hop_end(&run, T.into(), &plan(), 0, HopOutcome::Succeeded, Duration::ZERO);
        assert!(doc(&later).get("estimate").is_none(), "the estimate goes with the start only");
    }

    #[test]
    fn a_hop_end_names_the_hop_its_procedure_outcome_and_duration() {
        let (run, plan) = (facts(), plan());
        let event = Event::hop_end(&run, T.into(), &plan, 1, HopOutcome::Failed, Duration::from_millis(3_460));
        let d = doc(&event);
        assert_eq!(d["event"], "hop-end");
        assert_eq!(
            (d["hop"].clone(), d["hop_from"].clone(), d["hop_to"].clone()),
            (json!(2), json!("1.1.9"), json!("1.2.6"))
        );
        assert_eq!(d["procedure"], "rolling");
        assert_eq!(d["outcome"], "failed");
        assert_eq!(d["seconds"], 3.5);
        assert_eq!((d["from"].clone(), d["to"].clone()), (json!("1.0.4"), json!("1.2.6")), "the plan's ends stay");
        assert!(d.get("at").is_none() && d.get("message").is_none(), "{d}");
        let back = Event::hop_end(&run, T.into(), &plan, 0, HopOutcome::RolledBack, Duration::ZERO);
        assert_eq!(doc(&back)["outcome"], "rolled-back");
    }

    #[test]
    fn run_ends_say_where_the_release_stands() {
        let run = facts();
        let completed = doc(&Event::end(&run, T.into(), &Outcome::Completed { at: v("1.2.6") }));
        assert_eq!((completed["event"].clone(), completed["at"].clone()), (json!("completed"), json!("1.2.6")));
        assert!(completed.get("recovered").is_none() && completed.get("message").is_none(), "{completed}");
        let stopped = Outcome::Stopped { at: v("1.1.9"), reason: "stopped by the operator".into() };
        let stopped = doc(&Event::end(&run, T.into(), &stopped));
        assert_eq!(
            (stopped["event"].clone(), stopped["message"].clone()),
            (json!("stopped"), json!("stopped by the operator"))
        );
        let failed = Outcome::Failed { error: "the way back failed too".into(), next_steps: "call a person".into() };
        let failed = doc(&Event::end(&run, T.into(), &failed));
        assert_eq!(failed["event"], "failed");
        assert_eq!(failed["recovered"], false);
        assert_eq!(failed["at"], Value::Null, "not known: said as null");
    }

    #[test]
    fn a_recovered_runs_message_holds_no_value_the_operator_passed() {
        let run = facts();
        let argv = crate::disclose::Argv::new(
            "helm",
            &["upgrade".into(), "--set".into(), "postgres.password=hunter2,image.tag=broken".into()],
        );
        let error = Message::plain("deploy 1.1.9 failed (exit 1): ")
            .then(Message::command(argv))
            .then("\n")
            .then(Message::outside("Back-off pulling image \"bufd:broken\"; login hunter2 refused"));
        let outcome = Outcome::Recovered { failed_hop: 1, error, at: v("1.0.4") };
        let d = doc(&Event::end(&run, T.into(), &outcome));
        assert_eq!(
            (d["event"].clone(), d["recovered"].clone(), d["at"].clone()),
            (json!("failed"), json!(true), json!("1.0.4"))
        );
        let message = d["message"].as_str().unwrap();
        assert!(message.contains("'postgres.password=***,image.tag=***'"), "{message}");
        assert!(!message.contains("hunter2") && !message.contains("broken"), "{message}");
    }

    fn write_script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_flag_replaces_the_policys_hook_and_a_missing_program_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        write_script(dir.path(), "page-oncall", "cat");
        let path = dir.path().as_os_str();
        let mut policy = policy();
        assert_eq!(hook_for(None, &policy, Some(path)).unwrap(), None);
        policy.notify = Some(vec!["page-oncall".into(), "--team".into(), "db".into()]);
        let from_policy = hook_for(None, &policy, Some(path)).unwrap().unwrap();
        assert_eq!(from_policy.program, dir.path().join("page-oncall"));
        assert_eq!(from_policy.args, ["--team", "db"]);
        let flag = NotifyCommand { program: "/bin/true".into(), args: vec!["x".into()] };
        let from_flag = hook_for(Some(&flag), &policy, Some(path)).unwrap().unwrap();
        assert_eq!((from_flag.program, from_flag.args), (PathBuf::from("/bin/true"), vec!["x".to_string()]));

        let missing = NotifyCommand { program: "/nonexistent/hook".into(), args: vec!["https://t0ken@x".into()] };
        let err = hook_for(Some(&missing), &policy, Some(path)).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::BAD_INPUT);
        let text = err.to_string();
        assert!(text.contains("--notify /nonexistent/hook cannot be run: no such file"), "{text}");
        assert!(!text.contains("t0ken"), "{text}");
        policy.notify = Some(vec!["no-such-pager".into()]);
        let text = hook_for(None, &policy, Some(path)).unwrap_err().to_string();
        assert!(
            text.contains("the notify program no-such-pager of policy bsr-bed cannot be run: not found on PATH"),
            "{text}"
        );
        assert!(text.contains("--notify PROGRAM"), "{text}");
    }

    #[test]
    fn a_failing_hook_is_a_warning_naming_the_program_not_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let script =
            write_script(dir.path(), "hook", "cat >/dev/null; echo 'curl: (6) no host' >&2; echo more >&2; exit 1");
        let hook = Hook { named: "hook".into(), program: script, args: vec!["https://hooks.example/s3cr3t".into()] };
        let (printer, out, err) = Printer::captured(false);
        let runner = Runner::printing(Signals::default(), true, printer.clone());
        let notifier = Notifier::new(Some(&hook), facts(), &runner, &printer);
        notifier.started();
        let said = err.text();
        assert!(
            said.contains(
                "warning: notify hook hook failed (exit 1): curl: (6) no host (event start); the run goes on"
            ),
            "{said}"
        );
        assert!(!said.contains("more") && !said.contains("s3cr3t"), "{said}");
        assert!(out.text().is_empty());
    }

    #[test]
    fn the_hook_reads_one_document_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let script = write_script(dir.path(), "hook", "cat >> \"$1\"");
        let log = dir.path().join("events.jsonl");
        let hook = Hook { named: "hook".into(), program: script, args: vec![log.display().to_string()] };
        let (printer, _, err) = Printer::captured(false);
        let runner = Runner::new(Signals::default(), false);
        let notifier = Notifier::new(Some(&hook), facts(), &runner, &printer);
        notifier.started();
        notifier.hop_ended(&plan(), 0, HopOutcome::Succeeded, Duration::from_secs(2));
        notifier.finished(&Outcome::Completed { at: v("1.2.6") });
        let text = std::fs::read_to_string(&log).unwrap();
        let events: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(events, ["start", "hop-end", "completed"]);
        assert!(err.text().is_empty(), "{}", err.text());
        // Without a hook, nothing is run and nothing said.
        let silent = Notifier::new(None, facts(), &runner, &printer);
        silent.started();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
    }
}
