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

/// Make the folder for a run's backup: 0700, under `root` (created 0700 if missing).
pub fn private_dir(root: &Path, base: &str) -> Result<PathBuf, BackupError> {
    private_folder()
        .recursive(true)
        .create(root)
        .map_err(|source| BackupError::Io { path: root.display().to_string(), source })?;
    new_private_dir(root, base)
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
}
