//! The ledger as a private local file, for clusters where the shared ConfigMap cannot
//! exist, or when the operator asks for it (`--local-ledger`). Written aside and renamed
//! over, serialised by an flock, with a counter playing `resourceVersion`.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{ForShowing, Ledger, LedgerError, LedgerStore, Revision, Stored};

pub(crate) fn io_error(action: &str, path: &Path, source: std::io::Error) -> LedgerError {
    let hint = if source.kind() == std::io::ErrorKind::PermissionDenied {
        format!("make {} writable by this user, or set XDG_STATE_HOME to a folder that is", path.display())
    } else {
        "set XDG_STATE_HOME to a writable local folder".to_string()
    };
    LedgerError::Io { action: action.to_string(), path: path.display().to_string(), source, hint }
}

/// The ledger as a private local file, for clusters that forbid ConfigMaps. Only this
/// machine sees it: it locks against runs here, not against other operators.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
    release: String,
    namespace: String,
}

/// The file: the record plus the counter that plays `resourceVersion`.
#[derive(Serialize)]
struct FileDocOut<'a> {
    revision: u64,
    #[serde(flatten)]
    ledger: &'a Ledger,
}

/// Distinguishes temporary files of writers in one process (tests open several stores).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// `<root>/<context or "default">/<namespace>/<release>.json`, where root is
    /// normally [`state_root`].
    pub fn new(root: &Path, context: Option<&str>, namespace: &str, release: &str) -> FileStore {
        let path = root
            .join(path_component(context.unwrap_or("default")))
            .join(path_component(namespace))
            .join(format!("{}.json", path_component(release)));
        FileStore { path, release: release.to_string(), namespace: namespace.to_string() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Create the directories 0700: the record names clusters, namespaces and commands.
    fn ensure_dirs(&self) -> Result<(), LedgerError> {
        let dir = self.path.parent().expect("a file store path has a parent");
        private_folder().recursive(true).create(dir).map_err(|e| io_error("cannot create", dir, e))?;
        // Our three levels (root/context/namespace) are ours alone: tighten them even if
        // an older run or a wide umask left them open.
        for level in [dir, dir.parent().unwrap_or(dir), dir.parent().and_then(Path::parent).unwrap_or(dir)] {
            restrict(level)?;
        }
        Ok(())
    }

    /// Hold the `.lock` sibling for the span of one read-compare-write. flock(2) locks
    /// are dropped by the kernel when the process dies, so a crash never wedges this; the
    /// long-lived run lock is the `lock` field inside the record.
    pub(crate) fn exclusive(&self) -> Result<File, LedgerError> {
        let path = self.lock_path();
        let file = private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, e))?;
        file.lock().map_err(|e| io_error("cannot lock", &path, e))?;
        Ok(file)
    }

    /// The file's text; None when there is no file (no record yet).
    fn read_text(&self) -> Result<Option<String>, LedgerError> {
        let mut text = String::new();
        match File::open(&self.path) {
            Ok(mut f) => f.read_to_string(&mut text).map_err(|e| io_error("cannot read", &self.path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot open", &self.path, e)),
        };
        Ok(Some(text))
    }

    /// How a person reads the file when it cannot be parsed.
    fn inspect_hint(&self) -> String {
        format!(" in {}", self.path.display())
    }

    fn read(&self) -> Result<Option<(Ledger, u64)>, LedgerError> {
        let Some(text) = self.read_text()? else { return Ok(None) };
        let location = self.location();
        let inspect = self.inspect_hint();
        let ledger = Ledger::from_json(&text, &location, &inspect)?;
        // serde ignores the unknown `revision` key when reading the Ledger; read it apart.
        let revision = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("revision").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| LedgerError::Corrupt { location, error: "no \"revision\" counter".to_string(), inspect })?;
        Ok(Some((ledger, revision)))
    }

    /// Write aside, then rename over: a reader (or a crash) sees the old file or the new
    /// one, never half of one.
    fn replace_atomically(&self, bytes: &[u8]) -> Result<(), LedgerError> {
        let dir = self.path.parent().expect("a file store path has a parent");
        let tmp = dir.join(format!(
            ".{}.tmp.{}.{}",
            self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = private_file()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_error("cannot create", &tmp, e))?;
            file.write_all(bytes).map_err(|e| io_error("cannot write", &tmp, e))?;
            // Data on disk before the rename, or a power cut could leave an empty file.
            file.sync_all().map_err(|e| io_error("cannot sync", &tmp, e))?;
            std::fs::rename(&tmp, &self.path).map_err(|e| io_error("cannot replace", &self.path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        // The rename itself lives in the directory: sync it too (best effort).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Options that create a file as only this user may read it: 0600. Also the backups'
/// (`run/private.rs`, which is above the ledger).
#[cfg(unix)]
pub(crate) fn private_file() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.mode(0o600);
    options
}

/// A folder only this user may enter: 0700.
#[cfg(unix)]
pub(crate) fn private_folder() -> DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    builder
}

/// Make an existing folder 0700 if it is not.
#[cfg(unix)]
fn restrict(folder: &Path) -> Result<(), LedgerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(folder).map_err(|e| io_error("cannot inspect", folder, e))?.permissions().mode();
    if mode & 0o777 != 0o700 {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error("cannot restrict", folder, e))?;
    }
    Ok(())
}

/// No modes on Windows: the ledger's files and folders are created with default
/// permissions, the ACLs inherited from the folder they are made in; under the user's
/// profile (where `HOME`, the default state root, is) those keep other users out.
#[cfg(not(unix))]
pub(crate) fn private_file() -> OpenOptions {
    OpenOptions::new()
}

/// No modes on Windows: as [`private_file`].
#[cfg(not(unix))]
pub(crate) fn private_folder() -> DirBuilder {
    DirBuilder::new()
}

/// No modes to tighten on Windows: the folders keep the ACLs they inherited.
#[cfg(not(unix))]
fn restrict(_: &Path) -> Result<(), LedgerError> {
    Ok(())
}

/// A name usable as one path component, and distinct names stay distinct: bytes outside
/// `[A-Za-z0-9_-]` (and a `.` in first place, so `..` cannot climb) become `%XX`. Kube
/// context names are free text (`arn:aws:eks:…:cluster/prod`).
pub fn path_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%".to_string() } else { out }
}

/// `$XDG_STATE_HOME/helm-safe-upgrade`, default `~/.local/state/helm-safe-upgrade`. The
/// XDG spec says a relative `XDG_STATE_HOME` is to be ignored.
pub fn state_root() -> Result<PathBuf, LedgerError> {
    if let Some(state) = crate::env::path(crate::env::XDG_STATE_HOME).filter(|p| p.is_absolute()) {
        return Ok(state.join("helm-safe-upgrade"));
    }
    match crate::env::path(crate::env::HOME).filter(|p| p.is_absolute()) {
        Some(home) => Ok(home.join(".local/state/helm-safe-upgrade")),
        None => Err(LedgerError::Io {
            action: "cannot place the local ledger: neither XDG_STATE_HOME nor HOME is set in".to_string(),
            path: "the environment".to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
            hint: "set XDG_STATE_HOME to a writable folder".to_string(),
        }),
    }
}

impl LedgerStore for FileStore {
    fn release(&self) -> &str {
        &self.release
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Option<Stored>, LedgerError> {
        // No flock needed: the file is only ever replaced whole, by rename.
        Ok(self.read()?.map(|(ledger, n)| Stored { ledger, revision: Revision(n.to_string()) }))
    }

    fn load_for_showing(&self) -> Result<Option<ForShowing>, LedgerError> {
        // The `revision` counter beside the record is not needed: nothing is written back.
        let Some(text) = self.read_text()? else { return Ok(None) };
        let (ledger, note) = Ledger::from_json_for_reading(&text, &self.location(), &self.inspect_hint())?;
        Ok(Some(ForShowing { ledger, note }))
    }

    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        self.ensure_dirs()?;
        let _guard = self.exclusive()?;
        let current = self.read()?.map(|(_, n)| n);
        let next = match (current, expected) {
            (None, None) => 1,
            (Some(n), Some(Revision(want))) if n.to_string() == *want => n + 1,
            _ => return Err(LedgerError::Conflict { location: self.location() }),
        };
        let bytes = serde_json::to_vec_pretty(&FileDocOut { revision: next, ledger })?;
        self.replace_atomically(&bytes)?;
        Ok(Revision(next.to_string()))
        // `_guard` drops here: closing the file releases the flock.
    }
}
