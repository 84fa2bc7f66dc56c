//! Dynamic shell completion: what `plugin.complete` answers for `helm safe-upgrade` and
//! `helm safe-rollback` (helm runs the plugin's executable `plugin.complete` with the words
//! typed so far, known global flags removed, and reads one candidate per line).
//!
//! helm runs `plugin.complete` with the words typed after the plugin's name (its own
//! global flags removed) and then the word being completed, often `''`; the script runs
//! `helm-safe-upgrade __complete <those words>`. The answer is one candidate per line
//! (`value<TAB>description`), then a `:<directive>` line for cobra. helm does not filter
//! by prefix, so the candidates are filtered here.
//!
//! Flags come from the clap definitions themselves, so completion never drifts from the
//! parser. Release names and chart versions need helm, the chart source or a policy:
//! those lookups run through the project's one process runner ([`crate::helm`]) under a
//! deadline, and any failure or timeout gives no candidates. Nothing is ever written to
//! stderr (helm passes it through to the user's terminal mid-completion) and stdout
//! carries only the answer.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory};

use crate::catalog::{self, ChartSource, OfferOptions};
use crate::cli::{RollbackCli, UpgradeCli};
use crate::commands::Mode;
use crate::env;
use crate::helm::{Helm, Runner, Signals};
use crate::policy::{self, presets};
use crate::version::ChartVersion;

/// cobra's ShellCompDirective bits.
pub mod directive {
    /// Let the shell complete file names when there are no candidates.
    pub const DEFAULT: u32 = 0;
    pub const NO_FILE_COMP: u32 = 4;
    /// Keep the order given (newest version first) instead of sorting.
    pub const KEEP_ORDER: u32 = 32;
}

/// How long a lookup (helm, a registry) may take before completion gives up on it.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);

/// Candidates and the directive for the shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completions {
    /// `(value, description)`; the description may be empty.
    pub candidates: Vec<(String, String)>,
    pub directive: u32,
}

impl Completions {
    fn none() -> Self {
        Completions { candidates: vec![], directive: directive::NO_FILE_COMP }
    }

    /// The text helm reads: `value\tdescription` lines, then `:<directive>`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (value, description) in &self.candidates {
            // A candidate is one line; descriptions are for people, one line too.
            let value = value.replace(['\n', '\t'], " ");
            let description = description.lines().next().unwrap_or_default().replace('\t', " ");
            if description.is_empty() {
                out.push_str(&format!("{value}\n"));
            } else {
                out.push_str(&format!("{value}\t{description}\n"));
            }
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

/// What the flags typed so far say about where versions come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionQuery {
    pub versions: Option<String>,
    pub chart: Option<String>,
    pub policy: Option<String>,
    pub plain_http: bool,
}

/// The lookups that need the outside world; a fake stands in for them in tests.
pub trait Lookups {
    /// Release names with a description (`chart-version, status`).
    fn releases(&self) -> Vec<(String, String)>;
    /// Chart versions, in any order.
    fn versions(&self, query: &VersionQuery) -> Vec<ChartVersion>;
}

/// The `__complete` entry point: `args` are the words after `__complete`. Always prints
/// an answer (at worst `:4`) and never writes to stderr.
pub fn main(mode: Mode, args: &[String], out: &mut dyn std::io::Write) {
    std::panic::set_hook(Box::new(|_| {}));
    let live = Live::from_env(LOOKUP_DEADLINE);
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| complete(mode, args, &live)))
        .unwrap_or_else(|_| Completions::none());
    let _ = out.write_all(answer.render().as_bytes());
    let _ = out.flush();
}

/// One flag of the command, as completion sees it.
struct Flag {
    long: Option<String>,
    short: Option<char>,
    help: String,
    takes_value: bool,
    repeatable: bool,
    possible: Vec<(String, String)>,
}

fn flags(mode: Mode) -> Vec<Flag> {
    let mut cmd = match mode {
        Mode::Upgrade => UpgradeCli::command(),
        Mode::Rollback => RollbackCli::command(),
    };
    // Adds the generated --help and --version.
    cmd.build();
    cmd.get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .map(|a: &Arg| Flag {
            long: a.get_long().map(str::to_string),
            short: a.get_short(),
            help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
            takes_value: a.get_action().takes_values(),
            repeatable: matches!(a.get_action(), ArgAction::Append | ArgAction::Count),
            possible: a
                .get_possible_values()
                .iter()
                .filter(|p| !p.is_hide_set())
                .map(|p| (p.get_name().to_string(), p.get_help().map(|h| h.to_string()).unwrap_or_default()))
                .collect(),
        })
        .collect()
}

/// The words typed before the one being completed, read the way clap reads them.
#[derive(Default)]
struct Typed {
    /// Long name (or the short letter as a string) → values given.
    given: Vec<(String, Option<String>)>,
    positionals: Vec<String>,
    /// The flag whose value is being typed now (the last word was a flag without `=`).
    pending: Option<usize>,
}

impl Typed {
    fn value_of(&self, long: &str) -> Option<String> {
        self.given.iter().rev().find(|(n, _)| n == long).and_then(|(_, v)| v.clone())
    }

    fn has(&self, long: &str) -> bool {
        self.given.iter().any(|(n, _)| n == long)
    }
}

fn read_typed(words: &[String], flags: &[Flag]) -> Typed {
    let mut typed = Typed::default();
    for word in words {
        if let Some(i) = typed.pending.take() {
            typed.given.push((key(&flags[i]), Some(word.clone())));
            continue;
        }
        if let Some(rest) = word.strip_prefix("--") {
            if rest.is_empty() {
                continue;
            }
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            match flags.iter().position(|f| f.long.as_deref() == Some(name)) {
                Some(i) if flags[i].takes_value && value.is_none() => typed.pending = Some(i),
                Some(i) => typed.given.push((key(&flags[i]), value)),
                None => typed.given.push((name.to_string(), value)),
            }
        } else if word.len() > 1 && word.starts_with('-') {
            let mut chars = word[1..].chars();
            let letter = chars.next().unwrap_or_default();
            let rest: String = chars.collect();
            if let Some(i) = flags.iter().position(|f| f.short == Some(letter)) {
                if flags[i].takes_value && rest.is_empty() {
                    typed.pending = Some(i);
                } else {
                    let value = (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_string());
                    typed.given.push((key(&flags[i]), value));
                }
            }
        } else {
            typed.positionals.push(word.clone());
        }
    }
    typed
}

fn key(flag: &Flag) -> String {
    flag.long.clone().unwrap_or_else(|| flag.short.map(String::from).unwrap_or_default())
}

/// The answer for `args` = the words typed so far followed by the word being completed.
pub fn complete(mode: Mode, args: &[String], lookups: &dyn Lookups) -> Completions {
    let (current, before) = match args.split_last() {
        Some((current, before)) => (current.as_str(), before),
        None => ("", &[][..]),
    };
    let flags = flags(mode);
    let typed = read_typed(before, &flags);

    if let Some(i) = typed.pending {
        return values(&flags[i], current, "", &typed, lookups);
    }
    if let Some(rest) = current.strip_prefix("--")
        && let Some((name, value)) = rest.split_once('=')
    {
        return match flags.iter().find(|f| f.long.as_deref() == Some(name)) {
            Some(flag) => values(flag, value, &format!("--{name}="), &typed, lookups),
            None => Completions::none(),
        };
    }
    if current.starts_with('-') {
        let candidates = flags
            .iter()
            .filter(|f| f.repeatable || !typed.has(&key(f)))
            .filter_map(|f| f.long.as_ref().map(|l| (format!("--{l}"), f.help.clone())))
            .filter(|(l, _)| l.starts_with(current))
            .collect();
        return Completions { candidates, directive: directive::NO_FILE_COMP };
    }
    // The only positional is the release.
    if typed.positionals.is_empty() {
        let candidates = lookups.releases().into_iter().filter(|(name, _)| name.starts_with(current)).collect();
        return Completions { candidates, directive: directive::NO_FILE_COMP };
    }
    Completions::none()
}

fn values(flag: &Flag, current: &str, prefix: &str, typed: &Typed, lookups: &dyn Lookups) -> Completions {
    let matching = |candidates: Vec<(String, String)>| -> Vec<(String, String)> {
        candidates
            .into_iter()
            .filter(|(v, _)| v.starts_with(current))
            .map(|(v, d)| (format!("{prefix}{v}"), d))
            .collect()
    };
    if !flag.possible.is_empty() {
        return Completions { candidates: matching(flag.possible.clone()), directive: directive::NO_FILE_COMP };
    }
    match flag.long.as_deref() {
        // A preset name, or else a file: with no matching preset the shell completes files.
        Some("policy") => Completions { candidates: matching(preset_candidates()), directive: directive::DEFAULT },
        Some("show-policy") => {
            Completions { candidates: matching(preset_candidates()), directive: directive::NO_FILE_COMP }
        }
        Some("to" | "from" | "newest-ever") => {
            let query = VersionQuery {
                versions: typed.value_of("versions"),
                chart: typed.value_of("chart"),
                policy: typed.value_of("policy"),
                plain_http: typed.has("plain-http"),
            };
            let mut versions = lookups.versions(&query);
            versions.sort_by(|a, b| b.cmp(a));
            versions.dedup();
            let candidates = matching(versions.into_iter().map(|v| (v.to_string(), String::new())).collect());
            Completions { candidates, directive: directive::NO_FILE_COMP | directive::KEEP_ORDER }
        }
        // Files and directories: the shell's own completion (a notify hook is a program's path).
        Some("values" | "chart" | "notify") => Completions { candidates: vec![], directive: directive::DEFAULT },
        _ => Completions::none(),
    }
}

fn preset_candidates() -> Vec<(String, String)> {
    presets::all().into_iter().map(|p| (p.name, p.description)).collect()
}

/// `helm list -o json` entries, as completion shows them.
pub fn parse_release_list(json: &str) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        #[serde(default)]
        chart: String,
        #[serde(default)]
        status: String,
    }
    let entries: Vec<Entry> = serde_json::from_str(json).unwrap_or_default();
    entries
        .into_iter()
        .map(|e| {
            let description = match (e.chart.is_empty(), e.status.is_empty()) {
                (false, false) => format!("{}, {}", e.chart, e.status),
                (false, true) => e.chart,
                _ => e.status,
            };
            (e.name, description)
        })
        .collect()
}

/// The real lookups: helm from `HELM_BIN` with helm's namespace and context, the chart
/// source through the catalog; each under a deadline.
pub struct Live {
    helm: Helm,
    deadline: Duration,
}

impl Live {
    pub fn from_env(deadline: Duration) -> Live {
        Live::new(
            env::path(env::HELM_BIN).unwrap_or_else(|| PathBuf::from("helm")),
            env::get(env::HELM_NAMESPACE).unwrap_or_else(|| "default".to_string()),
            env::get(env::HELM_KUBECONTEXT),
            deadline,
        )
    }

    pub fn new(helm_bin: PathBuf, namespace: String, kube_context: Option<String>, deadline: Duration) -> Live {
        // No signal handling and no echo: completion is short and silent.
        let helm = Helm::new(Runner::new(Signals::default(), false), helm_bin, namespace, kube_context);
        Live { helm, deadline }
    }

    /// Runs `f` on its own thread and waits at most the deadline. A lookup still running
    /// then is abandoned; its helm child finishes on its own.
    fn within_deadline<T: Send + 'static>(&self, f: impl FnOnce(Helm) -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        let helm = self.helm.clone();
        std::thread::spawn(move || {
            let _ = tx.send(f(helm));
        });
        rx.recv_timeout(self.deadline).ok()
    }
}

impl Lookups for Live {
    fn releases(&self) -> Vec<(String, String)> {
        self.within_deadline(|helm| {
            helm.list_json("list releases for completion").map(|f| parse_release_list(&f.stdout)).unwrap_or_default()
        })
        .unwrap_or_default()
    }

    fn versions(&self, query: &VersionQuery) -> Vec<ChartVersion> {
        if let Some(list) = &query.versions {
            return list.split(',').filter_map(|v| ChartVersion::parse(v.trim()).ok()).collect();
        }
        let policy = query.policy.as_deref().and_then(|p| policy::load_named_or_path(p).ok());
        let reference = query.chart.clone().or_else(|| policy.as_ref().and_then(|p| p.chart.clone()));
        if let Some(reference) = reference {
            let plain_http = query.plain_http;
            let listed =
                self.within_deadline(move |helm| source_versions(&helm, &reference, plain_http)).unwrap_or_default();
            if !listed.is_empty() {
                return listed;
            }
        }
        policy.map(|p| p.catalog.keys().cloned().collect()).unwrap_or_default()
    }
}

/// The versions a chart source offers (every chart of a directory: completion does not
/// know the release's chart); empty on any error.
///
/// Repository charts are searched in helm's cached index without `helm repo update`
/// first (the live run refreshes it; completion must stay fast).
fn source_versions(helm: &Helm, reference: &str, plain_http: bool) -> Vec<ChartVersion> {
    let Ok(source) = ChartSource::parse(reference) else { return vec![] };
    catalog::offered(&source, None, helm, OfferOptions { plain_http, refresh: false })
        .map(|offer| offer.available.into_iter().map(|a| a.version).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl Lookups for Fake {
        fn releases(&self) -> Vec<(String, String)> {
            vec![("bsr".into(), "bsr-1.0.4, deployed".into()), ("coder".into(), "coder-2.1.0, failed".into())]
        }
        fn versions(&self, query: &VersionQuery) -> Vec<ChartVersion> {
            let list = query.versions.clone().unwrap_or_else(|| match query.chart.as_deref() {
                Some("bufbuild/bsr") => "1.0.4,1.1.9,1.2.0".to_string(),
                _ => String::new(),
            });
            list.split(',').filter_map(|v| ChartVersion::parse(v).ok()).collect()
        }
    }

    fn words(line: &str) -> Vec<String> {
        let mut w: Vec<String> = line.split(' ').map(String::from).collect();
        if line.is_empty() {
            w = vec![String::new()];
        }
        w
    }

    fn values(c: &Completions) -> Vec<String> {
        c.candidates.iter().map(|(v, _)| v.clone()).collect()
    }

    #[test]
    fn flags_come_from_the_clap_definitions() {
        let up = complete(Mode::Upgrade, &words("--"), &Fake);
        let up_values = values(&up);
        for flag in ["--to", "--policy", "--plan", "--output", "--fast-path", "--help", "--tool-version", "--resume"] {
            assert!(up_values.iter().any(|v| v == flag), "{flag} missing from {up_values:?}");
        }
        // `--version` is only there to refuse helm's habit with a hint: never offered.
        assert!(!up_values.iter().any(|v| v == "--version"), "{up_values:?}");
        assert!(!up_values.iter().any(|v| v == "--accept-data-loss"), "a rollback flag offered for upgrade");
        assert_eq!(up.directive, directive::NO_FILE_COMP);
        let down = values(&complete(Mode::Rollback, &words("--"), &Fake)).join(" ");
        assert!(
            down.contains("--accept-data-loss") && down.contains("--newest-ever") && !down.contains("--fast-path"),
            "{down}"
        );
        // Descriptions are the flags' help.
        let to = up.candidates.iter().find(|(v, _)| v == "--to").unwrap();
        assert!(to.1.starts_with("The version to upgrade to"), "{to:?}");
    }

    #[test]
    fn flags_are_filtered_by_prefix_and_not_offered_twice() {
        assert_eq!(values(&complete(Mode::Upgrade, &words("--po"), &Fake)), ["--policy"]);
        let after = values(&complete(Mode::Upgrade, &words("bsr --plan --p"), &Fake));
        assert!(!after.iter().any(|v| v == "--plan") && after.iter().any(|v| v == "--policy"), "{after:?}");
        // Repeatable flags stay.
        let repeat = values(&complete(Mode::Upgrade, &words("bsr --set a=1 --se"), &Fake));
        assert_eq!(repeat, ["--set", "--set-string", "--set-json", "--set-file", "--set-literal"]);
    }

    #[test]
    fn the_first_positional_is_a_release_name() {
        let c = complete(Mode::Upgrade, &words(""), &Fake);
        assert_eq!(values(&c), ["bsr", "coder"]);
        assert_eq!(c.candidates[0].1, "bsr-1.0.4, deployed");
        assert_eq!(values(&complete(Mode::Rollback, &words("c"), &Fake)), ["coder"]);
        // After a flag with its value, still the release; after the release, nothing.
        assert_eq!(values(&complete(Mode::Upgrade, &words("--to 1.2.0 b"), &Fake)), ["bsr"]);
        assert!(complete(Mode::Upgrade, &words("bsr "), &Fake).candidates.is_empty());
    }

    #[test]
    fn policy_values_are_presets_and_files() {
        let c = complete(Mode::Upgrade, &words("bsr --policy "), &Fake);
        let names = values(&c);
        assert_eq!(names, presets::names());
        assert_eq!(c.directive, directive::DEFAULT, "files complete too");
        let eq = complete(Mode::Upgrade, &words("--policy=b"), &Fake);
        assert!(values(&eq).iter().all(|v| v.starts_with("--policy=b")), "{:?}", values(&eq));
        assert!(!eq.candidates.is_empty());
        let show = complete(Mode::Upgrade, &words("--show-policy "), &Fake);
        assert_eq!(show.directive, directive::NO_FILE_COMP);
    }

    #[test]
    fn output_values_come_from_clap() {
        assert_eq!(values(&complete(Mode::Upgrade, &words("bsr -o "), &Fake)), ["table", "json"]);
        assert_eq!(values(&complete(Mode::Rollback, &words("bsr --output j"), &Fake)), ["json"]);
        assert_eq!(values(&complete(Mode::Upgrade, &words("--output=t"), &Fake)), ["--output=table"]);
    }

    #[test]
    fn versions_newest_first_from_the_typed_source() {
        let c = complete(Mode::Upgrade, &words("bsr --chart bufbuild/bsr --to "), &Fake);
        assert_eq!(values(&c), ["1.2.0", "1.1.9", "1.0.4"]);
        assert_eq!(c.directive, directive::NO_FILE_COMP | directive::KEEP_ORDER);
        let listed = complete(Mode::Upgrade, &words("--versions 1.0.4,1.1.9 --from 1."), &Fake);
        assert_eq!(values(&listed), ["1.1.9", "1.0.4"]);
        assert!(complete(Mode::Upgrade, &words("bsr --to "), &Fake).candidates.is_empty());
    }

    #[test]
    fn files_for_values_and_nothing_for_free_text() {
        assert_eq!(complete(Mode::Upgrade, &words("bsr -f "), &Fake).directive, directive::DEFAULT);
        assert_eq!(complete(Mode::Upgrade, &words("bsr --timeout "), &Fake), Completions::none());
        assert_eq!(complete(Mode::Rollback, &words("bsr --notify "), &Fake).directive, directive::DEFAULT);
        assert_eq!(complete(Mode::Upgrade, &words("bsr --notify x --notify-arg "), &Fake), Completions::none());
        let again = values(&complete(Mode::Upgrade, &words("bsr --notify x --notify-arg a --notify"), &Fake));
        assert_eq!(again, ["--notify-arg"], "--notify-arg repeats, --notify does not");
    }

    #[test]
    fn the_answer_is_lines_then_a_directive() {
        let c =
            Completions { candidates: vec![("a".into(), "x\ty".into()), ("b".into(), String::new())], directive: 4 };
        assert_eq!(c.render(), "a\tx y\nb\n:4\n");
    }

    #[test]
    fn helm_list_json_is_read() {
        let list = r#"[{"name":"bsr","namespace":"bsr","revision":"3","updated":"2026-11-22 05:00:00 +0000 UTC","status":"deployed","chart":"bsr-1.0.4","app_version":"1.0.4"}]"#;
        assert_eq!(parse_release_list(list), [("bsr".to_string(), "bsr-1.0.4, deployed".to_string())]);
        assert!(parse_release_list("not json").is_empty());
    }

    #[test]
    fn a_slow_or_failing_helm_gives_no_candidates_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("helm");
        std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
        let live = Live::new(slow, "default".into(), None, Duration::from_millis(300));
        let started = std::time::Instant::now();
        assert!(live.releases().is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let missing = Live::new("/no/such/helm".into(), "default".into(), None, Duration::from_secs(5));
        assert!(missing.releases().is_empty());
        assert!(missing.versions(&VersionQuery { chart: Some("repo/chart".into()), ..Default::default() }).is_empty());
    }

    #[test]
    fn a_fake_helm_list_is_asked_with_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("helm");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$*\" = \"list -o json --namespace team-a --kube-context ctx\" ] || exit 1\necho '[{\"name\":\"bsr\",\"chart\":\"bsr-1.0.4\",\"status\":\"deployed\"}]'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let live = Live::new(fake, "team-a".into(), Some("ctx".into()), Duration::from_secs(5));
        assert_eq!(live.releases(), [("bsr".to_string(), "bsr-1.0.4, deployed".to_string())]);
    }

    #[test]
    fn policy_catalog_versions_when_no_source_is_typed() {
        // bsr's policy names an OCI chart; when the registry cannot answer (no network
        // here, or past the deadline), the policy's catalog does.
        let live = Live::new("/no/such/helm".into(), "default".into(), None, Duration::from_secs(2));
        let preset = policy::load_named_or_path("bsr").unwrap();
        assert!(preset.chart.is_some() && !preset.catalog.is_empty());
        let from_catalog = live.versions(&VersionQuery {
            policy: Some("bsr".into()),
            chart: Some("/no/such/charts".into()),
            ..Default::default()
        });
        assert_eq!(from_catalog.len(), preset.catalog.len());
    }
}
