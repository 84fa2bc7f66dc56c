//! The values a run deploys, kept so that a resumed run deploys exactly the same.
//!
//! A run deploys, at every hop: the release's user values read at its start (carried
//! with `-f`, never `--reuse-values`), then the operator's `-f` files, then their
//! `--set*` lines. All of it is copied into the run's private backup folder (0700, files
//! 0600) before the first hop: the hops deploy from the copies (a file edited during the
//! run changes nothing), and `--resume` after a crash deploys from the same copies.
//!
//! The ledger records only the folder's *name* and each file's digest, never a value and
//! never a path: the record is readable, and writable, by anyone with access to
//! ConfigMaps in the namespace. A resumed run opens the folder only under this tool's own
//! backups folder and refuses any file whose digest differs.
//!
//! Values a procedure step sets for one deploy (BSR's `maintenance: true`) are never
//! part of these: they go in a file of their own for that deploy only.

use std::path::{Path, PathBuf};

use super::ledger::{FileDigest, ValuesRecord};
use super::private::{BackupError, backups_root, write_private};
use crate::digest::sha256;
use crate::helm::DeployValues;
use crate::policy::values::KeyPath;
use crate::setvalues::{Segment, SetArg, SetKind, path_text};

/// The operator's extra values, as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub files: Vec<PathBuf>,
    pub sets: Vec<SetArg>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.sets.is_empty()
    }

    /// `sha256:` of the `-f` files' contents and the set-lines, in the order helm applies
    /// them; None when there are none. Compares the operator's values of two runs (a
    /// reviewed plan and its execution) without keeping them; a file's path does not
    /// count (CI checks the repository out elsewhere), its content does. Unreadable files
    /// count as empty (they were checked before the run).
    pub fn digest(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let files: Vec<String> = self.files.iter().map(|f| sha256(&std::fs::read(f).unwrap_or_default())).collect();
        let sets: Vec<[&str; 2]> = self.sets.iter().map(|s| [s.kind.flag(), s.text.as_str()]).collect();
        Some(crate::digest::json_sha256(&serde_json::json!({ "files": files, "sets": sets })))
    }

    /// Every key path the operator's `-f` files and set-lines set, to its leaves (a map's
    /// own path is not one: `redis: {port: 1}` sets `redis.port`, not `redis.host`; a
    /// path stops at a list index; a `--set-json` object is followed into its keys):
    /// what a policy's `require` is met by. Unreadable input gives no paths (it was
    /// checked before the run).
    pub fn paths(&self) -> Vec<KeyPath> {
        fn leaves(value: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<KeyPath>) {
            match value.as_object() {
                Some(map) if !map.is_empty() => {
                    for (key, inner) in map {
                        prefix.push(key.clone());
                        leaves(inner, prefix, out);
                        prefix.pop();
                    }
                }
                _ => out.extend(KeyPath::from_segments(prefix.clone())),
            }
        }
        let mut out = Vec::new();
        for file in &self.files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(&text) {
                leaves(&value, &mut Vec::new(), &mut out);
            }
        }
        for set in &self.sets {
            for assignment in set.parse().unwrap_or_default() {
                let mut keys: Vec<String> = Vec::new();
                let mut whole = true;
                for segment in &assignment.path {
                    match segment {
                        Segment::Key(k) => keys.push(k.clone()),
                        Segment::Index(_) => {
                            whole = false;
                            break;
                        }
                    }
                }
                let json = (whole && set.kind == SetKind::SetJson)
                    .then(|| serde_json::from_str::<serde_json::Value>(&assignment.value).ok())
                    .flatten();
                match json {
                    Some(value) => leaves(&value, &mut keys, &mut out),
                    None => out.extend(KeyPath::from_segments(keys)),
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The values of a run, as copies in its backup folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunValues {
    pub dir: PathBuf,
    /// `values.json`: the user values carried to every hop.
    pub carried: PathBuf,
    /// Copies of the operator's `-f` files, in order.
    pub files: Vec<PathBuf>,
    /// The operator's set-lines, `--set-file` paths pointing at copies.
    pub sets: Vec<SetArg>,
    pub record: ValuesRecord,
}

const CARRIED: &str = "values.json";
const SETS: &str = "sets.json";

#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error(
        "the values the interrupted run started with are kept on {host}, in its backup folder {backup}, not on this machine\nhint: run --resume on {host}, or copy that folder to {root} here (keeping its 0700 mode) and run --resume again"
    )]
    OtherHost { host: String, backup: String, root: String },
    #[error(
        "the values the interrupted run started with are not in {dir} any more ({why})\nhint: restore that backup folder, or release the lock with --force-unlock and start a new run with the values the release should have (-f/--set as at the start)"
    )]
    Missing { dir: String, why: String },
    #[error(
        "{file} in the backup folder {dir} is not what the interrupted run recorded (digest {found}, recorded {recorded})\nhint: the backup was changed after the run started; restore it, or release the lock with --force-unlock and start a new run with the values the release should have"
    )]
    Changed { file: String, dir: String, found: String, recorded: String },
    #[error(
        "the ledger names the backup folder {0:?}, which is not a plain folder name: the record was edited\nhint: look at the ledger ConfigMap; --force-unlock and a new run start afresh"
    )]
    BadName(String),
    #[error(transparent)]
    Backup(#[from] BackupError),
}

impl RunValues {
    /// Copy `carried` and the operator's `overrides` into the backup folder `dir` (made
    /// by the caller, 0700), and record their digests. Reads each file once.
    pub fn save(
        dir: &Path,
        host: &str,
        carried: &serde_json::Value,
        overrides: &Overrides,
    ) -> Result<RunValues, BackupError> {
        let mut digests = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<PathBuf, BackupError> {
            let path = dir.join(name);
            write_private(&path, bytes)?;
            digests.push(FileDigest { name: name.to_string(), digest: sha256(bytes) });
            Ok(path)
        };
        let carried_path = put(CARRIED, crate::helm::values_file_text(carried, true).as_bytes())?;
        let mut files = Vec::new();
        for (i, file) in overrides.files.iter().enumerate() {
            let bytes = read(file)?;
            files.push(put(&format!("values-{}.yaml", i + 1), &bytes)?);
        }
        let mut sets = Vec::new();
        let mut set_files = 0;
        for set in &overrides.sets {
            if set.kind != SetKind::SetFile {
                sets.push(set.clone());
                continue;
            }
            // `--set-file key=PATH`: the file's content is the value. Copy it too, and
            // point the line at the copy.
            let mut lines = Vec::new();
            for assignment in set.parse().map_err(|e| BackupError::Io {
                path: SetKind::SetFile.flag().into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
            })? {
                set_files += 1;
                let copy = put(&format!("set-file-{set_files}"), &read(Path::new(&assignment.value))?)?;
                lines.push(format!("{}={}", path_text(&assignment.path), escape_value(&copy.display().to_string())));
            }
            sets.push(SetArg::new(SetKind::SetFile, lines.join(",")));
        }
        put(SETS, serde_json::to_string_pretty(&sets).expect("set-lines are JSON").as_bytes())?;
        let record = ValuesRecord {
            host: host.to_string(),
            backup: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            files: digests,
        };
        Ok(RunValues { dir: dir.to_path_buf(), carried: carried_path, files, sets, record })
    }

    /// The values a recorded run deploys, from its backup folder on this host, every file
    /// checked against the recorded digest.
    pub fn open(record: &ValuesRecord, this_host: &str) -> Result<RunValues, ValuesError> {
        Self::open_under(record, this_host, &backups_root())
    }

    pub fn open_under(record: &ValuesRecord, this_host: &str, root: &Path) -> Result<RunValues, ValuesError> {
        let name = &record.backup;
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !plain {
            return Err(ValuesError::BadName(name.clone()));
        }
        if record.host != this_host {
            return Err(ValuesError::OtherHost {
                host: record.host.clone(),
                backup: name.clone(),
                root: root.display().to_string(),
            });
        }
        let dir = root.join(name);
        let missing = |why: String| ValuesError::Missing { dir: dir.display().to_string(), why };
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| missing(e.to_string()))?;
        // Ours and private, as this tool makes it: not a link to elsewhere, not a folder
        // someone else could have filled.
        if !private_folder(&meta) {
            return Err(missing("it is not a private folder of this user".into()));
        }
        let mut by_name = std::collections::BTreeMap::new();
        for file in &record.files {
            let plain_file = !file.name.contains('/') && !file.name.starts_with('.');
            if !plain_file {
                return Err(ValuesError::BadName(file.name.clone()));
            }
            let path = dir.join(&file.name);
            let bytes = std::fs::read(&path).map_err(|e| missing(format!("{}: {e}", file.name)))?;
            let found = sha256(&bytes);
            if found != file.digest {
                return Err(ValuesError::Changed {
                    file: file.name.clone(),
                    dir: dir.display().to_string(),
                    found: crate::digest::short(&found).to_string(),
                    recorded: crate::digest::short(&file.digest).to_string(),
                });
            }
            by_name.insert(file.name.clone(), (path, bytes));
        }
        let (carried, _) =
            by_name.get(CARRIED).cloned().ok_or_else(|| missing(format!("no {CARRIED} was recorded")))?;
        let (_, sets_json) = by_name.get(SETS).cloned().ok_or_else(|| missing(format!("no {SETS} was recorded")))?;
        let sets: Vec<SetArg> =
            serde_json::from_slice(&sets_json).map_err(|e| missing(format!("{SETS} cannot be read: {e}")))?;
        let mut files: Vec<(usize, PathBuf)> = by_name
            .iter()
            .filter_map(|(name, (path, _))| {
                let n = name.strip_prefix("values-")?.strip_suffix(".yaml")?.parse().ok()?;
                Some((n, path.clone()))
            })
            .collect();
        files.sort();
        Ok(RunValues { dir, carried, files: files.into_iter().map(|(_, p)| p).collect(), sets, record: record.clone() })
    }

    /// The recorded overrides, for copying into a new backup.
    pub fn overrides(&self) -> Overrides {
        Overrides { files: self.files.clone(), sets: self.sets.clone() }
    }

    pub fn has_overrides(&self) -> bool {
        !self.files.is_empty() || !self.sets.is_empty()
    }

    /// The carried values, as JSON.
    pub fn carried_json(&self) -> serde_json::Value {
        std::fs::read(&self.carried).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// The values a deploy passes: the `carried` values file (`values.json`, or a hop's
    /// after the policy's value rules), then (with `overrides`) each `-f` copy and each
    /// set-line.
    pub fn deploy_values(&self, carried: &Path, overrides: bool) -> DeployValues {
        let mut files = vec![carried.to_path_buf()];
        let mut sets = Vec::new();
        if overrides {
            files.extend(self.files.iter().cloned());
            sets.extend(self.sets.iter().cloned());
        }
        DeployValues { files, sets, step_file: None }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BackupError> {
    std::fs::read(path).map_err(|source| BackupError::Io { path: path.display().to_string(), source })
}

/// A value written into a set-line: `\` and `,` escaped, as helm reads them.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c == ',' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A folder (not a link to one) owned by this user and closed to everyone else (mode
/// 0700, as `private.rs` makes it).
#[cfg(unix)]
fn private_folder(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0
}

/// No owner or mode bits on Windows: a folder, not a link to one. Who else may open it is
/// up to its ACLs, which it inherits from the user's profile, where the backups are.
#[cfg(not(unix))]
fn private_folder(meta: &std::fs::Metadata) -> bool {
    meta.is_dir()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::run::private::private_dir;

    fn overrides(dir: &Path) -> Overrides {
        let f = dir.join("extra.yaml");
        std::fs::write(&f, "replicaCount: 5\n").unwrap();
        let cert = dir.join("cert, odd.pem");
        std::fs::write(&cert, "-----BEGIN-----\n").unwrap();
        Overrides {
            files: vec![f],
            sets: vec![
                SetArg::new(SetKind::Set, r"postgres.password=hunter2\,x"),
                SetArg::new(SetKind::SetFile, format!("tls.cert={}", escape_value(&cert.display().to_string()))),
            ],
        }
    }

    #[test]
    fn the_operators_paths_are_leaves_so_a_sibling_never_meets_a_requirement() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("redis.yaml");
        std::fs::write(&file, "redis:\n  port: 6379\nempty: {}\nlist:\n  - a\n").unwrap();
        let sets = vec![
            SetArg::new(SetKind::SetJson, r#"db={"host":"h","tls":{"on":true}}"#),
            SetArg::new(SetKind::SetJson, "flags=[1,2]"),
            SetArg::new(SetKind::Set, "a.b[0].c=1,plain=x"),
        ];
        let paths: Vec<String> = Overrides { files: vec![file], sets }.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, ["a.b", "db.host", "db.tls.on", "empty", "flags", "list", "plain", "redis.port"]);
    }

    #[test]
    fn saved_values_reopen_exactly_and_deploy_from_the_copies() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("backups");
        let dir = private_dir(&root, "ns-rel-rev1-T").unwrap();
        let given = overrides(tmp.path());
        let saved = RunValues::save(&dir, "host-a", &serde_json::json!({"a": 1}), &given).unwrap();
        // The originals may change or vanish: the run deploys its copies.
        std::fs::remove_file(&given.files[0]).unwrap();
        let opened = RunValues::open_under(&saved.record, "host-a", &root).unwrap();
        assert_eq!(opened, saved);
        assert_eq!(opened.carried_json(), serde_json::json!({"a": 1}));
        let deployed = opened.deploy_values(&opened.carried, true);
        assert!(!deployed.files.contains(&given.files[0]), "{deployed:?}");
        assert_eq!(deployed.files, [opened.carried.clone(), opened.files[0].clone()]);
        assert_eq!(std::fs::read_to_string(&opened.files[0]).unwrap(), "replicaCount: 5\n");
        let set_file = opened.sets[1].parse().unwrap();
        assert_eq!(std::fs::read_to_string(&set_file[0].value).unwrap(), "-----BEGIN-----\n");
        assert_eq!(opened.sets[0], given.sets[0]);
        let carried_only = opened.deploy_values(&opened.carried, false);
        assert_eq!(carried_only, DeployValues { files: vec![opened.carried.clone()], ..Default::default() });
        for f in std::fs::read_dir(&dir).unwrap() {
            assert_eq!(f.unwrap().metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
        let record = serde_json::to_string(&saved.record).unwrap();
        assert!(!record.contains("hunter2") && !record.contains("replicaCount"), "{record}");
    }

    #[test]
    fn a_changed_missing_or_foreign_backup_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("backups");
        let dir = private_dir(&root, "b").unwrap();
        let saved = RunValues::save(&dir, "host-a", &serde_json::json!({"a": 1}), &Overrides::default()).unwrap();
        assert!(matches!(RunValues::open_under(&saved.record, "host-b", &root), Err(ValuesError::OtherHost { .. })));
        let mut bad = saved.record.clone();
        bad.backup = "../../etc".into();
        assert!(matches!(RunValues::open_under(&bad, "host-a", &root), Err(ValuesError::BadName(_))));
        let mut bad = saved.record.clone();
        bad.files[0].name = "../x".into();
        assert!(matches!(RunValues::open_under(&bad, "host-a", &root), Err(ValuesError::BadName(_))));
        std::fs::set_permissions(&saved.carried, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::remove_file(&saved.carried).unwrap();
        write_private(&saved.carried, b"{\"maintenance\": true}").unwrap();
        let err = RunValues::open_under(&saved.record, "host-a", &root).unwrap_err();
        assert!(matches!(err, ValuesError::Changed { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(RunValues::open_under(&saved.record, "host-a", &root), Err(ValuesError::Missing { .. })));
        // A folder of the right name that is not private is not trusted.
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(RunValues::open_under(&saved.record, "host-a", &root), Err(ValuesError::Missing { .. })));
    }
}
