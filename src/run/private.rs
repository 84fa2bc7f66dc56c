//! Private files: a run's backup folder and what is written in it (0700 folders, 0600
//! files, created with those modes, never chmod-ed afterwards, which would leave a
//! window). Below [`super::backup`] and [`super::values`], which both write here.
//!
//! The modes come from the ledger's file store ([`private_file`], [`private_folder`]),
//! which makes its own files the same way, and are POSIX (`cfg(unix)`). On Windows files and folders are created with default permissions: they inherit
//! the ACLs of the folder they are made in, and under the user's profile (where `HOME`,
//! the default state root, is) those keep other users out; a `XDG_STATE_HOME` elsewhere
//! gets that folder's ACLs.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ledger::{private_file, private_folder};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write the backup in {path}: {source}\nhint: set XDG_STATE_HOME to a writable folder")]
    Io { path: String, source: std::io::Error },
}

/// `<state root>/backups`: `$XDG_STATE_HOME/helm-safe-upgrade/backups`, default
/// `~/.local/state/helm-safe-upgrade/backups`.
pub fn backups_root() -> PathBuf {
    super::ledger::state_root()
        .map(|root| root.join("backups"))
        // No HOME and no XDG_STATE_HOME: a relative folder, which fails visibly when written.
        .unwrap_or_else(|_| PathBuf::from("helm-safe-upgrade-backups"))
}

/// A private folder of the run (0700; removed when dropped), for `what`: the
/// preflight's values files and its own chart.
pub fn run_folder(what: &str) -> Result<tempfile::TempDir, super::error::RunError> {
    tempfile::Builder::new().prefix("helm-safe-upgrade-").tempdir().map_err(|e| {
        super::error::RunError::Other(format!(
            "cannot make a private folder for the {what}: {e}\nhint: set TMPDIR to a writable folder"
        ))
    })
}

/// `values` as a new private values file, in the text helm reads back to the same values
/// ([`crate::helm::values_file_text`]).
pub fn write_values(path: &Path, values: &impl serde::Serialize) -> Result<(), BackupError> {
    write_private(path, crate::helm::values_file_text(values, false).as_bytes())
}

pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    let io = |source| BackupError::Io { path: path.display().to_string(), source };
    let mut file = private_file().write(true).create_new(true).open(path).map_err(io)?;
    file.write_all(contents).map_err(io)
}

/// A new folder (0700) named `base`, or `base-2`, `base-3`…: two runs within the same
/// second (a declined start, then the real one) must not share or clobber a backup.
pub(crate) fn new_private_dir(root: &Path, base: &str) -> Result<PathBuf, BackupError> {
    for n in 1..1000 {
        let dir = if n == 1 { root.join(base) } else { root.join(format!("{base}-{n}")) };
        match private_folder().create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(BackupError::Io { path: dir.display().to_string(), source }),
        }
    }
    Err(BackupError::Io {
        path: root.join(base).display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "999 backups with this name already exist"),
    })
}

/// `root` and the folders above it that are missing, each made 0700.
fn private_root(root: &Path) -> Result<(), BackupError> {
    private_folder()
        .recursive(true)
        .create(root)
        .map_err(|source| BackupError::Io { path: root.display().to_string(), source })
}

/// Make the folder for a run's backup: 0700, under `root` (created 0700 if missing).
pub fn private_dir(root: &Path, base: &str) -> Result<PathBuf, BackupError> {
    private_root(root)?;
    new_private_dir(root, base)
}

/// `<state root>/policies`: the policies with commands or a chart source that runs on
/// this machine used, each as `<sha256 hex>.yaml` (0600 in a 0700 folder). The ledger is
/// shared, so its copy of such a policy is used only when the operator's own copy agrees
/// (`policy_choice::vouched`): the file, or this copy of it as a run here used it, so
/// that editing the file during a run does not stop its `--resume`.
fn policies_root() -> Option<PathBuf> {
    super::ledger::state_root().ok().map(|root| root.join("policies"))
}

/// The file a policy of `digest` is kept in; None for anything but `sha256:` and 64
/// lowercase hex digits (the digest may come from the shared ledger: never a path).
fn kept_path(root: &Path, digest: &str) -> Option<PathBuf> {
    crate::digest::sha256_hex(digest).map(|hex| root.join(format!("{hex}.yaml")))
}

/// Keep `text` (whose digest is `digest`) for later runs on this machine; kept already
/// is kept.
pub fn keep_policy(digest: &str, text: &str) -> Result<(), BackupError> {
    let Some(root) = policies_root() else { return Ok(()) };
    keep_policy_in(&root, digest, text)
}

fn keep_policy_in(root: &Path, digest: &str, text: &str) -> Result<(), BackupError> {
    let Some(path) = kept_path(root, digest) else { return Ok(()) };
    private_root(root)?;
    match write_private(&path, text.as_bytes()) {
        Err(BackupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Whether a run on this machine kept a policy whose text has `digest`.
pub fn policy_kept(digest: &str) -> bool {
    policies_root().is_some_and(|root| policy_kept_in(&root, digest))
}

fn policy_kept_in(root: &Path, digest: &str) -> bool {
    kept_path(root, digest)
        .and_then(|path| std::fs::read(path).ok())
        .is_some_and(|bytes| crate::digest::sha256(&bytes) == digest)
}

/// `<state root>/chart-sources`: the OCI references operators passed with `--chart` on
/// this machine, one per line (0600). The ledger's chart source is shared, so an OCI
/// reference in it is deployed from only when one of them vouches for it
/// (`gather::chart_reference`).
fn chart_sources_file() -> Option<PathBuf> {
    super::ledger::state_root().ok().map(|root| root.join("chart-sources"))
}

/// Remember `reference`, passed with `--chart` here; remembered already is remembered.
pub fn remember_chart_source(reference: &str) -> Result<(), BackupError> {
    let Some(file) = chart_sources_file() else { return Ok(()) };
    remember_chart_source_in(&file, reference)
}

fn remember_chart_source_in(file: &Path, reference: &str) -> Result<(), BackupError> {
    if reference.contains('\n') || chart_source_remembered_in(file, reference) {
        return Ok(());
    }
    if let Some(root) = file.parent() {
        private_root(root)?;
    }
    let io = |source| BackupError::Io { path: file.display().to_string(), source };
    let mut out = private_file().append(true).create(true).open(file).map_err(io)?;
    out.write_all(format!("{reference}\n").as_bytes()).map_err(io)
}

/// Whether an operator passed `reference` with `--chart` on this machine.
pub fn chart_source_remembered(reference: &str) -> bool {
    chart_sources_file().is_some_and(|file| chart_source_remembered_in(&file, reference))
}

fn chart_source_remembered_in(file: &Path, reference: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| text.lines().any(|line| line == reference))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn backups_in_the_same_second_get_their_own_private_folders() {
        let root = tempfile::tempdir().unwrap();
        let first = super::new_private_dir(root.path(), "ns-bsr-rev2-T").unwrap();
        let second = super::new_private_dir(root.path(), "ns-bsr-rev2-T").unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("ns-bsr-rev2-T-2"));
        for dir in [first, second] {
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn chart_sources_passed_here_are_remembered_privately() {
        let state = tempfile::tempdir().unwrap();
        let file = state.path().join("state").join("chart-sources");
        let reference = "oci://registry.example/charts/bsr";
        assert!(!super::chart_source_remembered_in(&file, reference));
        super::remember_chart_source_in(&file, reference).unwrap();
        super::remember_chart_source_in(&file, reference).unwrap();
        assert!(super::chart_source_remembered_in(&file, reference));
        assert!(!super::chart_source_remembered_in(&file, "oci://registry.example/charts"), "whole lines only");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{reference}\n"));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_policy_is_kept_by_its_digest_and_a_digest_is_never_a_path() {
        let state = tempfile::tempdir().unwrap();
        let root = state.path().join("policies");
        let text = "name: mine\n";
        let digest = crate::digest::sha256(text.as_bytes());
        assert!(!super::policy_kept_in(&root, &digest));
        super::keep_policy_in(&root, &digest, text).unwrap();
        super::keep_policy_in(&root, &digest, text).unwrap();
        assert!(super::policy_kept_in(&root, &digest));
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        let file = root.join(format!("{}.yaml", digest.strip_prefix("sha256:").unwrap()));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        // A kept file edited since is not that policy any more.
        std::fs::write(&file, "name: other\n").unwrap();
        assert!(!super::policy_kept_in(&root, &digest));
        // What the ledger says is a digest or nothing.
        for forged in ["sha256:../../etc/passwd", "sha256:", "md5:00", &digest.to_uppercase(), &format!("{digest}0")] {
            assert!(super::kept_path(&root, forged).is_none(), "{forged}");
            assert!(!super::policy_kept_in(&root, forged));
        }
    }
}
