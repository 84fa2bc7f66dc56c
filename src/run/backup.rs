//! The preflight backup: what helm knows about the release, saved before anything changes.
//!
//! User values may hold secrets, so the folder is 0700 and every file 0600, created with
//! those modes (never chmod-ed afterwards, which would leave a window).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::helm::{ExecError, Helm};
use crate::release::Release;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write the backup in {path}: {source}\nhint: set XDG_STATE_HOME to a writable folder")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Helm(#[from] ExecError),
}

/// A written backup; `values` is also the file every hop passes with `-f`.
#[derive(Clone, Debug)]
pub struct Backup {
    pub dir: PathBuf,
    pub values: PathBuf,
}

/// `$XDG_STATE_HOME/helm-safe-upgrade/backups`, default `~/.local/state/...`.
pub fn backups_root() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/state"));
    state.join("helm-safe-upgrade").join("backups")
}

pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    let io = |source| BackupError::Io { path: path.display().to_string(), source };
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    file.write_all(contents).map_err(io)
}

/// A new folder (0700) named `base`, or `base-2`, `base-3`…: two runs within the same
/// second (a declined start, then the real one) must not share or clobber a backup.
fn new_private_dir(root: &Path, base: &str) -> Result<PathBuf, BackupError> {
    for n in 1..1000 {
        let dir = if n == 1 { root.join(base) } else { root.join(format!("{base}-{n}")) };
        match DirBuilder::new().mode(0o700).create(&dir) {
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

/// Save user values, manifest and metadata of `release` into a new private folder.
pub fn take(helm: &Helm, release: &Release, stamp: &str) -> Result<Backup, BackupError> {
    let root = backups_root();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .map_err(|source| BackupError::Io { path: root.display().to_string(), source })?;
    let dir =
        new_private_dir(&root, &format!("{}-{}-rev{}-{stamp}", release.namespace, release.name, release.revision))?;
    let manifest = helm
        .run(
            format!("read the manifest of {}", release.name),
            vec!["get".into(), "manifest".into(), release.name.clone()],
        )?
        .stdout;
    let values = dir.join("values.json");
    write_private(&values, serde_json::to_string_pretty(&release.user_values).expect("json").as_bytes())?;
    write_private(&dir.join("manifest.yaml"), manifest.as_bytes())?;
    let metadata = serde_json::json!({
        "release": release.name,
        "namespace": release.namespace,
        "chart": release.chart_name,
        "version": release.version,
        "app_version": release.app_version,
        "revision": release.revision,
        "status": release.status,
    });
    write_private(&dir.join("metadata.json"), serde_json::to_string_pretty(&metadata).expect("json").as_bytes())?;
    Ok(Backup { dir, values })
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
