//! Reading a policy file and checking what types cannot.
//!
//! Errors carry the origin (a path or `preset NAME`), line, column, the offending line and
//! a hint, because the people who read them are editing a copied preset under pressure.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawPolicy, RawStep, RawStepKind};
use super::template::{self, Problem};
use super::values::{KeyPath, ValueChange, ValueRule};
use super::{
    CatalogEntry, Check, DowngradeRules, FastPath, MinorDowngrade, PLACEHOLDERS, Policy, Procedure, RequiredStop,
    SnapshotConfig, StepSpec, UpgradeRules, presets,
};
use crate::version::{ChartVersion, Minor};

/// The largest policy file read: presets are a few KiB, and a file is read whole into
/// memory and, up to a smaller size, kept in the ledger.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(
        "policy file {path} is {what}, not a regular file\nhint: pass the path of a YAML file (`--show-policy bsr > my-policy.yaml` makes one)"
    )]
    NotAFile { path: String, what: &'static str },
    #[error(
        "policy file {path} is larger than 1 MiB ({size} bytes)\nhint: a policy is a few KiB of YAML; check that --policy names the right file"
    )]
    TooLarge { path: String, size: u64 },
    #[error("{0}")]
    Invalid(Box<Invalid>),
    #[error(
        "no policy named {name:?}: it is neither a built-in preset ({}) nor a file\nhint: `--list-policies` lists the presets; pass a path to use your own file",
        presets::names().join(", ")
    )]
    Unknown { name: String },
}

/// A located problem in a policy file.
#[derive(Debug)]
pub struct Invalid {
    pub origin: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub source_line: String,
    pub hint: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid policy {}:{}:{}: {}", self.origin, self.line, self.column, self.message)?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(f, "{:gutter$} | {:>col$}", "", "^", col = self.column.max(1) as usize)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// Load `--policy NAME|FILE`: a preset name, else a path.
pub fn load_named_or_path(name_or_path: &str) -> Result<Policy, PolicyError> {
    if let Some(text) = presets::text(name_or_path) {
        return parse_from(text, super::Origin::Preset { name: name_or_path.to_string() });
    }
    let path = Path::new(name_or_path);
    if std::fs::symlink_metadata(path).is_ok() {
        return load_from_path(path);
    }
    Err(PolicyError::Unknown { name: name_or_path.to_string() })
}

/// Read a policy file: a regular file (after symlinks) of at most [`MAX_POLICY_BYTES`].
/// `/dev/zero` would be read until memory runs out, and a FIFO would block for ever.
fn load_from_path(path: &Path) -> Result<Policy, PolicyError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_error = |source| PolicyError::Read { path: shown.clone(), source };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(PolicyError::NotAFile { path: shown, what: not_a_file(&meta.file_type()) });
    }
    if meta.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge { path: shown, size: meta.len() });
    }
    // Opened without blocking, then read with a cap: the file may be swapped for a FIFO
    // or grow between the check above and the read.
    let file = open_without_blocking(path).map_err(read_error)?;
    if !file.metadata().map_err(read_error)?.is_file() {
        return Err(PolicyError::NotAFile { path: shown, what: "not a regular file" });
    }
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge { path: shown, size: bytes.len() as u64 });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())))?;
    parse_from(&text, super::Origin::File { path: shown })
}

/// Parse and validate a policy document. `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    parse_from(text, super::Origin::Text { label: origin.to_string() })
}

/// Parse and validate a policy document that came from `origin`.
pub fn parse_from(text: &str, origin: super::Origin) -> Result<Policy, PolicyError> {
    let label = match &origin {
        super::Origin::Preset { name } => format!("preset {name}"),
        super::Origin::File { path } | super::Origin::Recorded { path } => path.clone(),
        super::Origin::Text { label } => label.clone(),
        super::Origin::Chart { chart, version, file } => format!("chart {chart} {version}, {file}"),
    };
    let ctx = Ctx { text, origin: &label };
    let raw: RawPolicy = serde_saphyr::from_str(text).map_err(|e| ctx.yaml_error(&e))?;
    Validator { ctx, raw: &raw }.validate().map(|mut policy| {
        policy.text = text.to_string();
        policy.digest = crate::digest::sha256(text.as_bytes());
        policy.origin = origin;
        policy
    })
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn at(&self, loc: Location, message: impl Into<String>, hint: Option<String>) -> PolicyError {
        let line = loc.line().max(1);
        let source_line = self.text.lines().nth(line as usize - 1).unwrap_or("").to_string();
        PolicyError::Invalid(Box::new(Invalid {
            origin: self.origin.to_string(),
            line,
            column: loc.column().max(1),
            message: message.into(),
            source_line,
            hint,
        }))
    }

    fn yaml_error(&self, err: &serde_saphyr::Error) -> PolicyError {
        let message = yaml_message(err);
        let hint = hint_for(&message);
        match err.location() {
            Some(loc) => self.at(loc, message, hint),
            None => PolicyError::Invalid(Box::new(Invalid {
                origin: self.origin.to_string(),
                line: 1,
                column: 1,
                message,
                source_line: self.text.lines().next().unwrap_or("").to_string(),
                hint,
            })),
        }
    }
}

/// The YAML library's message without its own position suffix; we print positions ourselves.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let full = err.to_string();
    let first = full.lines().next().unwrap_or(&full).trim();
    // serde-saphyr appends " at line L, column C" (and sometimes a snippet on later lines).
    let trimmed = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let trimmed = trimmed.strip_prefix("error: ").unwrap_or(trimmed);
    // "line 4 column 3: unknown field ..." → "unknown field ..."
    let trimmed = match (trimmed.starts_with("line "), trimmed.find(": ")) {
        (true, Some(i)) => &trimmed[i + 2..],
        _ => trimmed,
    };
    trimmed.trim_end_matches(':').to_string()
}

fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        Some("check the spelling; `--show-policy bsr` prints a complete example".into())
    } else if message.contains("unknown variant") {
        Some("the value must be one of the names listed".into())
    } else if message.contains("missing field") {
        Some("add the field; `--show-policy bsr` prints a complete example".into())
    } else if message.contains("chart version") {
        Some("write versions as MAJOR.MINOR.PATCH, e.g. 1.2.3".into())
    } else {
        None
    }
}

struct Validator<'a> {
    ctx: Ctx<'a>,
    raw: &'a RawPolicy,
}

impl Validator<'_> {
    fn validate(&self) -> Result<Policy, PolicyError> {
        let raw = self.raw;
        if raw.name.value.trim().is_empty() {
            return Err(self.ctx.at(raw.name.referenced, "the policy name is empty", None));
        }
        let procedures = self.procedures()?;
        let upgrade = self.upgrade(&procedures)?;
        let downgrade = self.downgrade(&procedures)?;
        let snapshot = self.snapshot()?;
        let checks = raw
            .checks
            .iter()
            .map(|c| {
                self.argv(&c.argv, &[])?;
                Ok(Check { name: c.name.clone(), argv: c.argv.value.clone() })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        if let Some(notes) = &raw.release_notes {
            self.placeholders_in(&notes.value, notes.referenced, &[])?;
        }
        Ok(Policy {
            name: raw.name.value.clone(),
            description: raw.description.clone(),
            source: raw.source.clone(),
            charts: raw.charts.clone(),
            chart: raw.chart.clone(),
            release_notes: raw.release_notes.as_ref().map(|n| n.value.clone()),
            upgrade,
            downgrade,
            snapshot,
            checks,
            vars: raw.vars.clone(),
            procedures,
            catalog: self.catalog()?,
            values: self.value_rules()?,
            typical: self.typical_minutes()?,
            notify: self.notify()?,
            versions: raw.versions,
            text: String::new(),
            digest: String::new(),
            origin: super::Origin::Text { label: String::new() },
        })
    }

    fn procedures(&self) -> Result<BTreeMap<String, Procedure>, PolicyError> {
        let mut out = BTreeMap::new();
        for (name, proc_) in &self.raw.procedures {
            if proc_.value.steps.is_empty() {
                return Err(self.ctx.at(
                    proc_.referenced,
                    format!("procedure {name:?} has no steps"),
                    Some("a procedure needs at least a `deploy: {}` step".into()),
                ));
            }
            let mut steps = Vec::new();
            for step in &proc_.value.steps {
                steps.push(self.step(step)?);
            }
            if !steps.iter().any(|s| matches!(s, StepSpec::Deploy { .. })) {
                return Err(self.ctx.at(
                    proc_.referenced,
                    format!("procedure {name:?} never deploys"),
                    Some("every procedure moves the release, so it needs a `deploy: {}` step".into()),
                ));
            }
            out.insert(name.clone(), Procedure { downtime: proc_.value.downtime, steps });
        }
        Ok(out)
    }

    fn step(&self, step: &Spanned<RawStep>) -> Result<StepSpec, PolicyError> {
        let at = step.referenced;
        Ok(match &step.value.0 {
            RawStepKind::Deploy(d) => StepSpec::Deploy { version: d.version, set: d.set.clone() },
            RawStepKind::Verify(_) => StepSpec::Verify,
            RawStepKind::Snapshot(s) => {
                if let Some(message) = &s.message {
                    self.placeholders_in(message, at, &[])?;
                }
                StepSpec::Snapshot { message: s.message.clone() }
            }
            RawStepKind::Run(r) => {
                if r.argv.is_empty() {
                    return Err(self.ctx.at(at, format!("run step {:?} has an empty argv", r.name), None));
                }
                for arg in &r.argv {
                    self.placeholders_in(arg, at, &[])?;
                }
                StepSpec::Run { name: r.name.clone(), argv: r.argv.clone() }
            }
            RawStepKind::WaitGone(w) => {
                self.placeholders_in(&w.selector, at, &["version"])?;
                StepSpec::WaitGone { version: w.version, selector: w.selector.clone() }
            }
            RawStepKind::Confirm(c) => {
                self.placeholders_in(&c.message, at, &[])?;
                StepSpec::Confirm { message: c.message.clone() }
            }
        })
    }

    fn argv(&self, argv: &Spanned<Vec<String>>, extra: &[&str]) -> Result<(), PolicyError> {
        if argv.value.is_empty() {
            return Err(self.ctx.at(
                argv.referenced,
                "empty command",
                Some("write the command as a list: [kubectl, ...]".into()),
            ));
        }
        for arg in &argv.value {
            self.placeholders_in(arg, argv.referenced, extra)?;
        }
        Ok(())
    }

    /// Every `{name}` must be a known placeholder or `{var.NAME}` of a declared var, and
    /// every other brace doubled: read by [`template::check`], the reading the planner
    /// fills by, so nothing accepted here is filled differently.
    fn placeholders_in(&self, text: &str, at: Location, extra: &[&str]) -> Result<(), PolicyError> {
        let known = |name: &str| {
            PLACEHOLDERS.contains(&name)
                || extra.contains(&name)
                || name.strip_prefix("var.").is_some_and(|v| self.raw.vars.contains_key(v))
        };
        let Err(e) = template::check(text, known) else {
            return Ok(());
        };
        let literal = format!("write {{{{ and }}}} for literal braces: {:?}", e.escaped);
        Err(match e.problem {
            Problem::Unknown(name) => {
                let mut all: Vec<String> = PLACEHOLDERS.iter().chain(extra).map(|p| format!("{{{p}}}")).collect();
                all.extend(self.raw.vars.keys().map(|v| format!("{{var.{v}}}")));
                self.ctx.at(
                    at,
                    format!("unknown placeholder {{{name}}} in {text:?}"),
                    Some(format!("placeholders are {}; {literal}", all.join(", "))),
                )
            }
            Problem::Stray(brace) => self.ctx.at(
                at,
                format!(
                    "lone \"{brace}\" at character {} of {text:?}: a brace belongs to a placeholder or is doubled",
                    e.character
                ),
                Some(literal),
            ),
        })
    }

    fn procedure_ref(
        &self,
        name: &Spanned<String>,
        procedures: &BTreeMap<String, Procedure>,
    ) -> Result<String, PolicyError> {
        if procedures.contains_key(&name.value) {
            Ok(name.value.clone())
        } else {
            let known: Vec<&str> = procedures.keys().map(String::as_str).collect();
            Err(self.ctx.at(
                name.referenced,
                format!("procedure {:?} is not defined", name.value),
                Some(format!("define it under `procedures:` or use one of: {}", known.join(", "))),
            ))
        }
    }

    fn upgrade(&self, procedures: &BTreeMap<String, Procedure>) -> Result<UpgradeRules, PolicyError> {
        let u = &self.raw.upgrade;
        if u.max_minor_step.value == 0 {
            return Err(self.ctx.at(
                u.max_minor_step.referenced,
                "max_minor_step is 0: no upgrade to a newer minor could ever be planned",
                Some("use 1 for \"one minor at a time\"".into()),
            ));
        }
        let mut required_stops = Vec::new();
        for stop in &u.required_stops {
            required_stops.push(self.required_stop(stop)?);
        }
        let fast_path = match &u.fast_path {
            None => None,
            Some(fp) => {
                if fp.min_minors.value <= u.max_minor_step.value {
                    return Err(self.ctx.at(
                        fp.min_minors.referenced,
                        format!(
                            "fast_path.min_minors is {} but a sequential hop may already advance {}: the fast path could never save a hop",
                            fp.min_minors.value, crate::text::count(u.max_minor_step.value as usize, "minor", "minors")
                        ),
                        Some("make min_minors larger than upgrade.max_minor_step".into()),
                    ));
                }
                let procedure = self.procedure_ref(&fp.procedure, procedures)?;
                if !procedures[&procedure]
                    .steps
                    .iter()
                    .any(|s| matches!(s, StepSpec::Deploy { version: super::VersionRef::To, .. }))
                {
                    return Err(self.ctx.at(
                        fp.procedure.referenced,
                        format!("fast-path procedure {procedure:?} never deploys the target version"),
                        Some("add a `deploy: {version: to}` step".into()),
                    ));
                }
                Some(FastPath { min_minors: fp.min_minors.value, procedure })
            }
        };
        Ok(UpgradeRules {
            max_minor_step: u.max_minor_step.value,
            stop_at: u.stop_at,
            major: u.major,
            required_stops,
            stop_notes: self.stop_notes()?,
            snapshot_first: u.snapshot_first,
            procedure: self.procedure_ref(&u.procedure, procedures)?,
            fast_path,
        })
    }

    fn required_stop(&self, stop: &Spanned<String>) -> Result<RequiredStop, PolicyError> {
        let text = stop.value.trim();
        let parts: Vec<&str> = text.trim_start_matches('v').split('.').collect();
        if parts.len() == 2
            && let (Ok(major), Ok(minor)) = (parts[0].parse(), parts[1].parse())
        {
            return Ok(RequiredStop::Minor(Minor { major, minor }));
        }
        ChartVersion::parse(text).map(RequiredStop::Version).map_err(|e| {
            self.ctx.at(
                stop.referenced,
                format!("required stop {text:?} is not a version: {}", e.reason),
                Some("write an exact version (1.2.3) or a minor (1.2)".into()),
            )
        })
    }

    /// `stop_notes` keys are minors (`"16.0"`), like a required stop that names a minor.
    fn stop_notes(&self) -> Result<BTreeMap<Minor, String>, PolicyError> {
        let mut notes = BTreeMap::new();
        for (key, note) in &self.raw.upgrade.stop_notes {
            let parts: Vec<&str> = key.trim().trim_start_matches('v').split('.').collect();
            let minor = match parts.as_slice() {
                [major, minor] => major.parse().ok().zip(minor.parse().ok()),
                _ => None,
            };
            let Some((major, minor)) = minor else {
                return Err(self.ctx.at(
                    note.referenced,
                    format!("stop_notes key {key:?} is not a minor"),
                    Some("key each note by MAJOR.MINOR, e.g. \"16.0\"".into()),
                ));
            };
            notes.insert(Minor { major, minor }, note.value.clone());
        }
        Ok(notes)
    }

    fn downgrade(&self, procedures: &BTreeMap<String, Procedure>) -> Result<DowngradeRules, PolicyError> {
        let d = &self.raw.downgrade;
        let patch = d.patch.as_ref().map(|p| self.procedure_ref(p, procedures)).transpose()?;
        let minor = match &d.minor {
            None => None,
            Some(m) => {
                if m.max_minors_below_newest.value == 0 {
                    return Err(self.ctx.at(
                        m.max_minors_below_newest.referenced,
                        "downgrade.minor.max_minors_below_newest is 0, which allows no minor downgrade at all",
                        Some("remove `downgrade.minor` to forbid minor downgrades, or use 1 or more".into()),
                    ));
                }
                Some(MinorDowngrade {
                    max_minors_below_newest: m.max_minors_below_newest.value,
                    procedure: self.procedure_ref(&m.procedure, procedures)?,
                })
            }
        };
        let restore = d.restore.as_ref().map(|p| self.procedure_ref(p, procedures)).transpose()?;
        Ok(DowngradeRules { patch, minor, restore, data_loss_warning: d.data_loss_warning.clone() })
    }

    fn snapshot(&self) -> Result<SnapshotConfig, PolicyError> {
        match &self.raw.snapshot {
            None => Ok(SnapshotConfig {
                command: None,
                message: "Take a snapshot (backup) of the application's database".into(),
            }),
            Some(s) => {
                if let Some(cmd) = &s.command {
                    self.argv(cmd, &[])?;
                }
                self.placeholders_in(&s.message.value, s.message.referenced, &[])?;
                Ok(SnapshotConfig {
                    command: s.command.as_ref().map(|c| c.value.clone()),
                    message: s.message.value.clone(),
                })
            }
        }
    }

    fn catalog(&self) -> Result<BTreeMap<ChartVersion, CatalogEntry>, PolicyError> {
        let mut out = BTreeMap::new();
        for entry in &self.raw.catalog {
            let e = &entry.value;
            let value = CatalogEntry {
                schema: e.schema.as_ref().map(|s| s.0.clone()),
                app_version: e.app_version.as_ref().map(|s| s.0.clone()),
                notes: e.notes.clone(),
                duration: e.duration.as_ref().map(|d| d.value.clone()),
                time: e
                    .duration
                    .as_ref()
                    .map(|d| {
                        super::times::parse_duration_range(&d.value).map_err(|why| {
                            self.ctx.at(
                                d.referenced,
                                format!("catalog duration of {}: {why}", e.version),
                                Some("write a duration as helm does (20m, 1h30m) or a range (10m-30m)".into()),
                            )
                        })
                    })
                    .transpose()?,
            };
            if out.insert(e.version.clone(), value).is_some() {
                return Err(self.ctx.at(
                    entry.referenced,
                    format!("version {} appears twice in the catalog", e.version),
                    Some("keep one entry per version".into()),
                ));
            }
        }
        Ok(out)
    }
}

impl Validator<'_> {
    /// `notify:`, an argv passed as written. Its placeholders would not be filled: the
    /// hook is run once per event, and the event's document on its stdin already says
    /// the release, the versions and what happened, so `{release}` is refused rather
    /// than passed on literally to a program that expected it filled.
    fn notify(&self) -> Result<Option<Vec<String>>, PolicyError> {
        let Some(argv) = &self.raw.notify else { return Ok(None) };
        if argv.value.is_empty() || argv.value[0].trim().is_empty() {
            return Err(self.ctx.at(
                argv.referenced,
                "notify: the command is empty",
                Some(
                    "write the program and its arguments as a list: notify: [/usr/local/bin/page-oncall, --team, db]"
                        .into(),
                ),
            ));
        }
        // Braces are literal here (JSON in an argument is fine); only a placeholder's name
        // is refused, since it would reach the program unfilled.
        let placeholder = |a: &String| {
            super::template::scan(a).any(|p| {
                matches!(p, super::template::Piece::Placeholder { name, .. }
                    if super::PLACEHOLDERS.contains(&name) || name.starts_with("var."))
            })
        };
        if let Some(arg) = argv.value.iter().find(|a| placeholder(a)) {
            return Err(self.ctx.at(
                argv.referenced,
                format!("notify: {arg:?} has a placeholder; notify's arguments are passed as written"),
                Some(
                    "leave it out: the hook reads the release, the versions and the event as JSON on its stdin".into(),
                ),
            ));
        }
        Ok(Some(argv.value.clone()))
    }

    /// `typical_minutes`, by hop kind, each a checked range.
    fn typical_minutes(&self) -> Result<BTreeMap<String, super::times::TimeRange>, PolicyError> {
        let mut out = BTreeMap::new();
        for (kind, minutes) in self.raw.typical_minutes.iter().flat_map(|t| t.given()) {
            let range = minutes.value.range().map_err(|why| {
                self.ctx.at(
                    minutes.referenced,
                    format!("typical_minutes.{kind}: {why}"),
                    Some("write [MIN, MAX] in minutes, e.g. [10, 30], or one number".into()),
                )
            })?;
            out.insert(kind.to_string(), range);
        }
        Ok(out)
    }

    /// The `values:` rules, in version order (rules of one version keep their order).
    fn value_rules(&self) -> Result<Vec<ValueRule>, PolicyError> {
        let mut rules = Vec::new();
        let mut renames = Vec::new();
        for entry in &self.raw.values {
            let raw = &entry.value;
            let path = |text: &str, at: Location| {
                KeyPath::parse(text).map_err(|why| {
                    self.ctx.at(
                        at,
                        why,
                        Some("write the key as --set would: `redis.host`, `a\\.b` for a key with a dot".into()),
                    )
                })
            };
            let mut changes = Vec::new();
            if let Some(require) = &raw.require {
                changes.push(ValueChange::Require(path(&require.value, require.referenced)?));
            }
            if let Some(rename) = &raw.rename {
                let (from, to) =
                    (path(&rename.value.from, rename.referenced)?, path(&rename.value.to, rename.referenced)?);
                if from.within(&to) || to.within(&from) {
                    return Err(self.ctx.at(
                        rename.referenced,
                        format!("rename `{from}` → `{to}`: one path lies inside the other"),
                        Some("a rename moves a value between two separate keys".into()),
                    ));
                }
                changes.push(ValueChange::Rename { from, to });
                renames.push((rules.len(), rename.referenced));
            }
            if let Some(remove) = &raw.remove {
                changes.push(ValueChange::Remove(path(&remove.value, remove.referenced)?));
            }
            if let Some(set) = &raw.set {
                let mut pairs = Vec::new();
                for (key, value) in &set.value {
                    pairs.push((path(key, set.referenced)?, value.clone()));
                }
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                changes.push(ValueChange::Set(pairs));
            }
            if changes.len() != 1 {
                return Err(self.ctx.at(
                    entry.referenced,
                    format!("a values rule for {} needs exactly one of require, rename, remove, set", raw.version),
                    Some("write one rule per entry: `- {version: 4.0.0, require: redis.host, message: ...}`".into()),
                ));
            }
            let change = changes.pop().expect("one");
            rules.push(ValueRule { version: raw.version.clone(), change, message: raw.message.clone() });
        }
        for (index, at) in renames {
            self.rename_onto_a_key_put_before(&rules, index, at)?;
        }
        rules.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(rules)
    }

    /// A `rename` onto a key that another rule puts in the values first (a `set` or a
    /// `rename` to it, of an older version, or of the same version earlier in the file):
    /// the rename would then always meet a value at its new path, and a plan would be
    /// refused at that hop for every release that set the old key. Said at the rename.
    fn rename_onto_a_key_put_before(&self, rules: &[ValueRule], index: usize, at: Location) -> Result<(), PolicyError> {
        let rule = &rules[index];
        let ValueChange::Rename { from, to } = &rule.change else { return Ok(()) };
        let overlaps = |path: &KeyPath| path.within(to) || to.within(path);
        for (other_index, other) in rules.iter().enumerate() {
            let before = other.version < rule.version || (other.version == rule.version && other_index < index);
            let put = match &other.change {
                ValueChange::Set(pairs) => pairs.iter().map(|(p, _)| p).find(|p| overlaps(p)),
                ValueChange::Rename { to: other_to, .. } => Some(other_to).filter(|p| overlaps(p)),
                ValueChange::Require(_) | ValueChange::Remove(_) => None,
            };
            if let (true, Some(path)) = (before, put) {
                return Err(self.ctx.at(
                    at,
                    format!(
                        "rename `{from}` → `{to}` ({}) is onto `{path}`, which the rule `{}` ({}) already puts in the values",
                        rule.version,
                        other.describe(),
                        other.version
                    ),
                    Some("a rename moves a value to a key nothing else sets; drop one of the two rules".into()),
                ));
            }
        }
        Ok(())
    }
}

/// What a path that is not a regular file is, in words.
#[cfg(unix)]
fn not_a_file(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Without POSIX file types (Windows): a directory, or not a regular file.
#[cfg(not(unix))]
fn not_a_file(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() { "a directory" } else { "not a regular file" }
}

/// Open for reading with O_NONBLOCK: a FIFO swapped in opens at once instead of waiting
/// for a writer (and is then refused as not a regular file).
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// No FIFOs in a Windows folder (its named pipes live under `\\.\pipe\` only): a plain
/// open, still followed by the regular-file check and the capped read.
#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}
