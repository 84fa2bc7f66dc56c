//! Which policy decides a run, and what the operator must be told about that choice.
//!
//! The ledger records the policy a run used (origin, digest, text), so the next run on
//! the release, and above all a `--resume`, uses the policy the operator chose rather than
//! whatever a chart name would pick. The precedence is written once, here ([`precedence`],
//! a pure function of what is known); reading a chart's own policy is the caller's (it
//! needs the target chart's archive), which then settles the choice with [`settle`].

use super::error::{RunError, bad, refused};
use super::ledger::{Ledger, PolicyRecord};
use crate::policy::{self, Origin, Policy, presets};
use crate::text::one_line;

/// The policy a run uses, what to say about it, and a change the operator must confirm.
pub struct ChosenPolicy {
    pub policy: Policy,
    pub notes: Vec<String>,
    pub change: Option<String>,
}

/// Where a run's policy comes from, highest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `--resume`: the ledger's copy of what the interrupted run used, always.
    Resumed,
    /// `--policy NAME|FILE`.
    Explicit,
    /// The ledger's copy of a policy file an earlier run used (the operator's choice
    /// then, kept until another `--policy` replaces it).
    LedgerFile,
    /// The policy file the target chart ships (`Chart.yaml` annotation
    /// `helm-safe-upgrade/policy`): the vendor's own rules for that version.
    Chart,
    /// A preset: the one the ledger names, else the one for the chart's name.
    Preset,
}

/// What the ledger says the last run used, as far as precedence goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Nothing,
    /// A file (or text of another origin): its copy is what the operator chose.
    File,
    Preset,
    /// A chart's own policy: a new run reads its own target chart's again (the vendor may
    /// have changed it), so the record ranks no higher than the chart.
    Chart,
}

/// The precedence: `--resume` > `--policy` > the ledger's policy file > the policy the
/// target chart ships > a preset (the ledger's, else by chart name). Pure: `chart_ships`
/// says whether the target chart names a policy file.
pub fn precedence(resume: bool, explicit: bool, recorded: Recorded, chart_ships: bool) -> Level {
    if resume {
        Level::Resumed
    } else if explicit {
        Level::Explicit
    } else if recorded == Recorded::File {
        Level::LedgerFile
    } else if chart_ships {
        Level::Chart
    } else {
        Level::Preset
    }
}

/// What the ledger's record ranks as.
fn recorded_kind(record: Option<&PolicyRecord>) -> Recorded {
    match record.map(|r| &r.origin) {
        None => Recorded::Nothing,
        Some(Origin::Preset { .. }) => Recorded::Preset,
        Some(Origin::Chart { .. }) => Recorded::Chart,
        Some(Origin::File { .. } | Origin::Recorded { .. } | Origin::Text { .. }) => Recorded::File,
    }
}

/// The policy chosen before the target chart is read.
pub struct Choice {
    /// The policy at the highest level that needs no chart: final unless `chart_first`,
    /// when it is the preset a chart without a policy falls back to.
    pub chosen: ChosenPolicy,
    /// A policy the target chart ships outranks `chosen`: read the chart first.
    pub chart_first: bool,
}

/// Which policy decides, in this order:
/// - `--resume`: always the one the interrupted run recorded (its text, from the ledger);
///   a `--policy` that differs is refused.
/// - `--policy`: that one; if it differs from the recorded one, the change is shown and
///   confirmed before anything happens.
/// - a file the last run used: the ledger's copy of it (the file may have changed or gone).
/// - the policy the target chart ships, when it ships one ([`settle`], once the chart is read).
/// - a preset the last run used: today's version of that preset (newest knowledge), saying
///   when it differs from the recorded one.
/// - otherwise, the preset for the release's chart name.
///
/// `resume` and `explicit` are `--resume` and `--policy`.
pub fn choose_policy(
    resume: bool,
    explicit: Option<&str>,
    ledger: Option<&Ledger>,
    chart_name: &str,
) -> Result<Choice, RunError> {
    let record = ledger.and_then(|l| l.policy_record.as_ref());
    let explicit = explicit.map(policy::load_named_or_path).transpose().map_err(invalid)?;
    let level = precedence(resume, explicit.is_some(), recorded_kind(record), true);
    let chosen = match (level, explicit) {
        (Level::Resumed, explicit) => {
            let policy = for_resume(explicit, record, ledger.and_then(|l| l.policy.as_deref()))?;
            let notes = match &policy.origin {
                Origin::Chart { .. } => vec![format!(
                    "--resume: the policy is the ledger's copy of the one {} shipped, as the interrupted run used it",
                    one_line(&policy.origin.to_string())
                )],
                _ => vec![],
            };
            ChosenPolicy { policy, notes, change: None }
        }
        (Level::Explicit, Some(policy)) => {
            let change = record.and_then(|r| change_from(r, &policy));
            ChosenPolicy { policy, notes: change.iter().cloned().collect(), change }
        }
        (Level::LedgerFile, _) => from_record(record.expect("a recorded file"))?,
        _ => preset_level(record, ledger.and_then(|l| l.policy.as_deref()), chart_name)?,
    };
    Ok(Choice { chosen, chart_first: level == Level::Chart })
}

/// The choice once the target chart has been read: the policy it ships (already loaded,
/// with its chart origin), or the preset when it ships none; either way saying what
/// changed since the ledger's record.
pub fn settle(choice: Choice, shipped: Option<Policy>, ledger: Option<&Ledger>) -> ChosenPolicy {
    let record = ledger.and_then(|l| l.policy_record.as_ref());
    match shipped {
        Some(policy) if choice.chart_first => {
            let change = record.and_then(|r| change_from(r, &policy));
            ChosenPolicy { policy, notes: change.iter().cloned().collect(), change }
        }
        _ => {
            let mut chosen = choice.chosen;
            if let Some(r) = record.filter(|r| matches!(r.origin, Origin::Chart { .. }) && choice.chart_first) {
                let change = format!(
                    "the last run used the policy {} shipped; the target chart ships none, so {} decides",
                    one_line(&r.origin.to_string()),
                    one_line(&chosen.policy.origin.to_string())
                );
                chosen.notes.push(change.clone());
                chosen.change = Some(change);
            }
            chosen
        }
    }
}

/// "the policy changes: …" when `policy` is not the one the ledger recorded.
fn change_from(record: &PolicyRecord, policy: &Policy) -> Option<String> {
    (record.digest != policy.digest).then(|| {
        format!(
            "the policy changes: the last run used {} ({}), this one uses {} ({})",
            one_line(&record.origin.to_string()),
            crate::digest::short(&record.digest),
            one_line(&policy.origin.to_string()),
            crate::digest::short(&policy.digest)
        )
    })
}

/// The preset level: a preset the ledger names (today's version of it), else the preset
/// for the chart's name.
fn preset_level(record: Option<&PolicyRecord>, name: Option<&str>, chart_name: &str) -> Result<ChosenPolicy, RunError> {
    match record {
        Some(record @ PolicyRecord { origin: Origin::Preset { .. }, .. }) => from_record(record),
        // A chart's policy is read again from the target chart; this is the fallback.
        Some(_) => Ok(ChosenPolicy { policy: presets::for_chart(chart_name), notes: vec![], change: None }),
        // A record of an older version keeps the policy's name only.
        None => match name {
            Some(name) if presets::text(name).is_some() => Ok(ChosenPolicy {
                policy: policy::load_named_or_path(name).map_err(invalid)?,
                notes: vec![],
                change: None,
            }),
            _ => Ok(ChosenPolicy { policy: presets::for_chart(chart_name), notes: vec![], change: None }),
        },
    }
}

fn invalid(e: policy::PolicyError) -> RunError {
    bad(e.to_string(), "fix the policy or pass another with --policy")
}

/// `--resume`: the recorded policy; a `--policy` with another digest is refused.
fn for_resume(explicit: Option<Policy>, record: Option<&PolicyRecord>, name: Option<&str>) -> Result<Policy, RunError> {
    let Some(record) = record else {
        // A record of an older version: the policy's name only.
        return match (explicit, name) {
            (Some(p), _) => Ok(p),
            (None, Some(name)) if presets::text(name).is_some() => policy::load_named_or_path(name).map_err(invalid),
            _ => Err(bad(
                "--resume: the ledger does not record which policy the interrupted run used",
                "pass the same --policy as that run",
            )),
        };
    };
    match explicit {
        Some(p) if p.digest == record.digest => Ok(p),
        Some(p) => Err(bad(
            format!(
                "--resume continues with the policy the interrupted run used ({}, {}), and --policy {} is another ({})",
                one_line(&record.origin.to_string()),
                crate::digest::short(&record.digest),
                one_line(&p.origin.to_string()),
                crate::digest::short(&p.digest)
            ),
            "drop --policy to resume with the recorded one, or finish the interrupted run first",
        )),
        None => recorded_policy(record),
    }
}

/// A new run without `--policy`: a file's recorded copy, or today's preset of the
/// recorded name; either way saying what changed since.
fn from_record(record: &PolicyRecord) -> Result<ChosenPolicy, RunError> {
    let mut notes = Vec::new();
    let policy = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => {
            let policy = recorded_policy(record)?;
            if let Ok(current) = policy::load_named_or_path(path)
                && current.digest != record.digest
            {
                notes.push(format!(
                    "{} has changed since the last run: using the copy the ledger kept ({}); pass --policy {} to use the file as it is now",
                    one_line(path),
                    crate::digest::short(&record.digest),
                    one_line(path)
                ));
            }
            policy
        }
        Origin::Preset { name } if presets::text(name).is_some() => {
            let policy = policy::load_named_or_path(name).map_err(invalid)?;
            if policy.digest != record.digest {
                notes.push(format!(
                    "preset {name} has changed since the last run ({} → {}): this version of helm-safe-upgrade knows more; using the current one",
                    crate::digest::short(&record.digest),
                    crate::digest::short(&policy.digest)
                ));
            }
            policy
        }
        // A preset this version does not have, or text of unknown origin: what was recorded.
        _ => recorded_policy(record)?,
    };
    Ok(ChosenPolicy { policy, notes, change: None })
}

/// The policy the ledger recorded: its text when kept, else the file if it still has the
/// recorded digest.
fn recorded_policy(record: &PolicyRecord) -> Result<Policy, RunError> {
    let origin = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => Origin::Recorded { path: path.clone() },
        other => other.clone(),
    };
    if let Some(text) = &record.text {
        // The digest first: an edited text is said to be edited, not reported as a policy
        // that does not read.
        if crate::digest::sha256(text.as_bytes()) != record.digest {
            return Err(RunError::Other(format!(
                "the policy text in the ledger does not match its recorded digest ({}): the record was edited\nhint: pass --policy with the policy file to use",
                crate::digest::short(&record.digest)
            )));
        }
        // The error names the recorded file and line, but what does not read is the
        // ledger's copy (the file may be fine): it says so, and its own hint (to fix the
        // file's spelling) is replaced by the way out that works.
        let policy = policy::parse_from(text, origin).map_err(|e| {
            let error = e.to_string();
            let error = error.split_once("\nhint: ").map_or(error.as_str(), |(error, _)| error);
            RunError::Other(format!(
                "the ledger's copy of the policy an earlier run used no longer reads (the record was edited, or written by another version): {error}\nhint: pass --policy with the policy file to use"
            ))
        })?;
        return vouched(policy, record);
    }
    if let Origin::File { path } | Origin::Recorded { path } = &record.origin
        && let Ok(policy) = policy::load_named_or_path(path)
        && policy.digest == record.digest
    {
        return Ok(policy);
    }
    Err(bad(
        format!(
            "the ledger recorded policy {} by digest only ({}; too large to keep), and no file with that digest is at hand",
            one_line(&record.origin.to_string()),
            crate::digest::short(&record.digest)
        ),
        "pass --policy with that file",
    ))
}

/// Whether a policy's text alone decides what runs on this machine or what is deployed:
/// it has commands, or names a chart source. The ledger's copy of such a policy needs the
/// operator's own copy beside it ([`vouched`]), which a run keeps for that.
pub(super) fn needs_own_copy(policy: &Policy) -> bool {
    policy.chart.is_some() || !crate::policy::commands::every_command(policy).is_empty()
}

/// The ledger's copy of a policy, when it may run commands or names a chart source, only
/// with the operator's own copy beside it. The ledger is a ConfigMap in the release's
/// namespace: whoever may edit ConfigMaps there can change the copy and its digest
/// together, and its commands would run on this machine with the operator's credentials.
/// So such a copy is used only when the file at the recorded path, this tool's preset of
/// the recorded name, or the copy a run on this machine kept of the operator's file
/// ([`super::private::keep_policy`]) has the same digest: it is then the operator's or the
/// tool's. A chart's policy keeps its own gate (`--allow-chart-commands`, which lists its
/// commands).
fn vouched(policy: Policy, record: &PolicyRecord) -> Result<Policy, RunError> {
    if !needs_own_copy(&policy) || matches!(policy.origin, Origin::Chart { .. }) {
        return Ok(policy);
    }
    let commands = crate::policy::commands::every_command(&policy);
    let own = match &record.origin {
        Origin::File { path } | Origin::Recorded { path } => policy::load_named_or_path(path).ok(),
        Origin::Preset { name } if presets::text(name).is_some() => policy::load_named_or_path(name).ok(),
        _ => None,
    };
    if own.is_some_and(|own| own.digest == record.digest) || super::private::policy_kept(&record.digest) {
        return Ok(policy);
    }
    // Its chart source is what the run would deploy from when no --chart is given.
    let mut would = Vec::new();
    if !commands.is_empty() {
        would.push(format!(
            "run {} on this machine:\n{}",
            crate::text::count(commands.len(), "command", "commands"),
            super::chart_policy::listed(&commands, "  - ")
        ));
    }
    if let Some(chart) = &policy.chart {
        would.push(format!("deploy from the chart source {}", one_line(chart)));
    }
    let (rule, not) = match commands.is_empty() {
        true => ("ledger-chart", "it is not used"),
        false => ("ledger-commands", "its commands are not run"),
    };
    Err(refused(
        rule,
        format!(
            "the ledger's copy of the policy ({}, {}) would {}\nnone of your policies has that digest, and anyone who can edit ConfigMaps in the release's namespace can change the ledger's copy: {not}",
            one_line(&record.origin.to_string()),
            crate::digest::short(&record.digest),
            would.join("\nand ")
        ),
        "review it, then pass --policy with your own copy of the policy (a file or a preset); --resume needs one with the same digest",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: [Recorded; 4] = [Recorded::Nothing, Recorded::File, Recorded::Preset, Recorded::Chart];

    #[test]
    fn precedence_is_resume_then_policy_then_the_ledgers_file_then_the_chart_then_a_preset() {
        for recorded in RECORDED {
            for ships in [false, true] {
                let ctx = format!("{recorded:?}, chart ships: {ships}");
                // --resume wins over everything, --policy over everything else.
                assert_eq!(precedence(true, true, recorded, ships), Level::Resumed, "{ctx}");
                assert_eq!(precedence(true, false, recorded, ships), Level::Resumed, "{ctx}");
                assert_eq!(precedence(false, true, recorded, ships), Level::Explicit, "{ctx}");
            }
        }
        // The ledger's file outranks the chart's policy.
        assert_eq!(precedence(false, false, Recorded::File, true), Level::LedgerFile);
        assert_eq!(precedence(false, false, Recorded::File, false), Level::LedgerFile);
        // The chart's policy outranks any preset: the ledger's, or by chart name; and a
        // recorded chart policy is read again from the new target chart.
        for recorded in [Recorded::Nothing, Recorded::Preset, Recorded::Chart] {
            assert_eq!(precedence(false, false, recorded, true), Level::Chart, "{recorded:?}");
            assert_eq!(precedence(false, false, recorded, false), Level::Preset, "{recorded:?}");
        }
    }

    const VENDOR: &str = "name: vendorapp\ndescription: d\nupgrade: {max_minor_step: 3, major: refuse, procedure: rolling, required_stops: [\"1.2.0\"]}\ndowngrade: {}\nprocedures:\n  rolling: {steps: [deploy: {}, verify: {}]}\n";

    fn shipped(version: &str, text: &str) -> Policy {
        let origin =
            Origin::Chart { chart: "vendorapp".into(), version: version.into(), file: "upgrade-policy.yaml".into() };
        policy::parse_from(text, origin).unwrap()
    }

    fn ledger_recording(policy: &Policy) -> Ledger {
        let mut ledger = Ledger::new("vendorapp", "ns");
        ledger.policy = Some(policy.name.clone());
        ledger.policy_record = Some(PolicyRecord {
            name: policy.name.clone(),
            origin: policy.origin.clone(),
            digest: policy.digest.clone(),
            text: Some(policy.text.clone()),
        });
        ledger
    }

    #[test]
    fn a_ledger_copy_that_does_not_read_is_blamed_on_the_ledger_not_the_file() {
        let text = "name: x\nbogus: 1\n";
        let record = PolicyRecord {
            name: "x".into(),
            origin: Origin::File { path: "policies/mine.yaml".into() },
            digest: crate::digest::sha256(text.as_bytes()),
            text: Some(text.into()),
        };
        let err = recorded_policy(&record).unwrap_err().to_string();
        assert!(err.starts_with("the ledger's copy of the policy an earlier run used no longer reads"), "{err}");
        assert!(err.ends_with("hint: pass --policy with the policy file to use"), "{err}");
        assert!(!err.contains("check the spelling"), "{err}");
        let edited = PolicyRecord { digest: "sha256:00".into(), ..record };
        let err = recorded_policy(&edited).unwrap_err().to_string();
        assert!(err.contains("does not match its recorded digest"), "{err}");
    }

    fn origin_of(chosen: &ChosenPolicy) -> String {
        chosen.policy.origin.to_string()
    }

    #[test]
    fn a_release_with_no_record_takes_the_charts_policy_else_the_preset_for_its_name() {
        let choice = choose_policy(false, None, None, "vendorapp").unwrap();
        assert!(choice.chart_first);
        let chosen = settle(choice, Some(shipped("1.4.0", VENDOR)), None);
        assert_eq!(origin_of(&chosen), "chart vendorapp 1.4.0 (upgrade-policy.yaml)");
        assert!(chosen.notes.is_empty() && chosen.change.is_none());

        let chosen = settle(choose_policy(false, None, None, "bsr").unwrap(), None, None);
        assert_eq!(origin_of(&chosen), "preset bsr");
    }

    #[test]
    fn an_explicit_policy_or_a_recorded_file_is_not_looked_past() {
        let choice = choose_policy(false, Some("sequential-minor"), None, "vendorapp").unwrap();
        assert!(!choice.chart_first, "--policy: the chart is not read");
        let chosen = settle(choice, None, None);
        assert_eq!(origin_of(&chosen), "preset sequential-minor");

        let file = policy::parse_from(VENDOR, Origin::File { path: "/ops/vendorapp.yaml".into() }).unwrap();
        let ledger = ledger_recording(&file);
        let choice = choose_policy(false, None, Some(&ledger), "vendorapp").unwrap();
        assert!(!choice.chart_first, "the ledger's file outranks the chart");
        // Even if a chart's policy were at hand, a settled choice keeps its policy.
        let chosen = settle(choice, Some(shipped("1.4.0", VENDOR)), Some(&ledger));
        assert_eq!(origin_of(&chosen), "the ledger's copy of /ops/vendorapp.yaml");
    }

    #[test]
    fn a_recorded_preset_ranks_below_the_charts_policy() {
        let preset = presets::for_chart("vendorapp");
        let ledger = ledger_recording(&preset);
        let choice = choose_policy(false, None, Some(&ledger), "vendorapp").unwrap();
        assert!(choice.chart_first);
        let chosen = settle(choice, Some(shipped("1.4.0", VENDOR)), Some(&ledger));
        assert_eq!(origin_of(&chosen), "chart vendorapp 1.4.0 (upgrade-policy.yaml)");
        let change = chosen.change.expect("another policy than the last run's is confirmed");
        assert!(change.starts_with("the policy changes: the last run used preset sequential-minor"), "{change}");
        // Without a policy in the chart, the recorded preset decides, as before.
        let chosen = settle(choose_policy(false, None, Some(&ledger), "vendorapp").unwrap(), None, Some(&ledger));
        assert_eq!(origin_of(&chosen), "preset sequential-minor");
        assert!(chosen.change.is_none());
    }

    #[test]
    fn a_recorded_chart_policy_is_read_again_from_the_new_target_chart() {
        let last = shipped("1.4.0", VENDOR);
        let ledger = ledger_recording(&last);
        let choice = choose_policy(false, None, Some(&ledger), "vendorapp").unwrap();
        assert!(choice.chart_first, "the vendor may have changed it: read the target's");
        // The same text in the next version: no change to confirm.
        let chosen = settle(choice, Some(shipped("1.5.0", VENDOR)), Some(&ledger));
        assert_eq!(origin_of(&chosen), "chart vendorapp 1.5.0 (upgrade-policy.yaml)");
        assert!(chosen.change.is_none(), "{:?}", chosen.change);
        // The vendor changed it: the change is said and confirmed.
        let newer = VENDOR.replace("max_minor_step: 3", "max_minor_step: 2");
        let choice = choose_policy(false, None, Some(&ledger), "vendorapp").unwrap();
        let chosen = settle(choice, Some(shipped("1.5.0", &newer)), Some(&ledger));
        assert!(chosen.change.as_deref().is_some_and(|c| c.contains("chart vendorapp 1.4.0")), "{:?}", chosen.change);
        // The vendor dropped it: the preset for the chart's name, saying so.
        let choice = choose_policy(false, None, Some(&ledger), "vendorapp").unwrap();
        let chosen = settle(choice, None, Some(&ledger));
        assert_eq!(origin_of(&chosen), "preset sequential-minor");
        let change = chosen.change.expect("said at the confirmation");
        assert_eq!(
            change,
            "the last run used the policy chart vendorapp 1.4.0 (upgrade-policy.yaml) shipped; the target chart ships none, so preset sequential-minor decides"
        );
        assert_eq!(chosen.notes, [change]);
    }

    /// A policy the operator wrote, whose procedure runs a command.
    const WITH_COMMAND: &str = "name: vendorapp\ndescription: d\nupgrade: {max_minor_step: 1, major: refuse, procedure: prepared}\ndowngrade: {}\nprocedures:\n  prepared:\n    steps:\n      - run: {name: prepare, argv: [echo, prepare]}\n      - deploy: {}\n";

    fn refused_rule(result: Result<Policy, RunError>) -> (String, String) {
        match result {
            Err(RunError::Refused(crate::plan::Refusal { rule, message, .. })) => (rule, message),
            Err(other) => panic!("not a refusal: {other}"),
            Ok(p) => panic!("used: {}", p.origin),
        }
    }

    #[test]
    fn the_ledgers_copy_runs_commands_only_beside_the_operators_own_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendorapp.yaml");
        let file = policy::parse_from(WITH_COMMAND, Origin::File { path: path.display().to_string() }).unwrap();
        let ledger = ledger_recording(&file);
        let record = ledger.policy_record.as_ref().unwrap();
        // The file is here, as the ledger recorded it: its commands are the operator's.
        std::fs::write(&path, WITH_COMMAND).unwrap();
        assert_eq!(for_resume(None, Some(record), None).unwrap().digest, file.digest);
        assert_eq!(from_record(record).unwrap().policy.digest, file.digest);
        // Not here (another machine), or changed since: the ledger alone vouches for the
        // commands, and whoever edits ConfigMaps could have written them.
        for changed in [None, Some(WITH_COMMAND.replace("prepare]", "other]"))] {
            match &changed {
                None => std::fs::remove_file(&path).unwrap(),
                Some(text) => std::fs::write(&path, text).unwrap(),
            }
            let (rule, message) = refused_rule(for_resume(None, Some(record), None));
            assert_eq!(rule, "ledger-commands");
            assert!(
                message.contains(
                    "would run 1 command on this machine:\n  - run step \"prepare\" (procedure prepared): echo prepare"
                ),
                "{message}"
            );
            assert_eq!(refused_rule(from_record(record).map(|c| c.policy)).0, "ledger-commands");
        }
        // --policy with the operator's own copy resumes.
        let own = policy::parse_from(WITH_COMMAND, Origin::File { path: "/elsewhere.yaml".into() }).unwrap();
        assert!(for_resume(Some(own), Some(record), None).is_ok());
        // A copy with no command decides as recorded, file or not.
        let plain = policy::parse_from(VENDOR, Origin::File { path: "/gone.yaml".into() }).unwrap();
        let ledger = ledger_recording(&plain);
        assert!(for_resume(None, ledger.policy_record.as_ref(), None).is_ok());
    }

    #[test]
    fn the_ledgers_copy_names_a_chart_source_only_beside_the_operators_own_copy() {
        let text = format!("{VENDOR}chart: oci://registry.example/charts/vendorapp\n");
        let file = policy::parse_from(&text, Origin::File { path: "/not/here.yaml".into() }).unwrap();
        assert!(file.chart.is_some());
        let ledger = ledger_recording(&file);
        let (rule, message) = refused_rule(for_resume(None, ledger.policy_record.as_ref(), None));
        assert_eq!(rule, "ledger-chart");
        assert!(
            message.contains("would deploy from the chart source oci://registry.example/charts/vendorapp"),
            "{message}"
        );
    }

    #[test]
    fn a_recorded_preset_runs_commands_only_as_this_tool_ships_it() {
        let preset = policy::load_named_or_path("bsr").unwrap();
        assert!(!crate::policy::commands::every_command(&preset).is_empty(), "bsr's down-migration is a command");
        let ledger = ledger_recording(&preset);
        assert_eq!(for_resume(None, ledger.policy_record.as_ref(), None).unwrap().digest, preset.digest);
        // Edited in the ConfigMap, digest and all.
        let forged = preset.text.replace("bufd, migratedownto", "sh, -c");
        assert_ne!(forged, preset.text);
        let forged = policy::parse_from(&forged, preset.origin.clone()).unwrap();
        let ledger = ledger_recording(&forged);
        let (rule, message) = refused_rule(for_resume(None, ledger.policy_record.as_ref(), None));
        assert_eq!(rule, "ledger-commands");
        assert!(message.contains("(preset bsr, sha256:"), "{message}");
    }

    #[test]
    fn resume_uses_the_ledgers_copy_of_a_charts_policy() {
        let last = shipped("1.4.0", VENDOR);
        let ledger = ledger_recording(&last);
        let choice = choose_policy(true, None, Some(&ledger), "vendorapp").unwrap();
        assert!(!choice.chart_first, "--resume does not read the chart");
        let other = VENDOR.replace("max_minor_step: 3", "max_minor_step: 1");
        let chosen = settle(choice, Some(shipped("1.5.0", &other)), Some(&ledger));
        assert_eq!(chosen.policy.digest, last.digest);
        assert_eq!(origin_of(&chosen), "chart vendorapp 1.4.0 (upgrade-policy.yaml)");
        assert!(chosen.notes[0].contains("the ledger's copy"), "{:?}", chosen.notes);
        // Its commands still need leave: the origin is kept.
        assert!(matches!(chosen.policy.origin, Origin::Chart { .. }));
    }
}
