//! The preflight backup: what helm knows about the release, saved before anything changes.
//!
//! User values may hold secrets, so the folder is 0700 and every file 0600, created with
//! those modes (never chmod-ed afterwards, which would leave a window): see
//! [`super::private`].

use std::path::PathBuf;

use super::private::{BackupError, backups_root, private_dir, write_private};
use super::values::{Overrides, RunValues};
use crate::release::Release;

/// A written backup: the release's manifest and metadata, and the values the run
/// deploys (see [`RunValues`]).
#[derive(Clone, Debug)]
pub struct Backup {
    pub dir: PathBuf,
    pub values: RunValues,
}

/// Save the release's manifest and metadata (as read at the start), and the values this
/// run deploys (`carried` and the operator's `overrides`), into a new private folder.
pub fn take(
    release: &Release,
    carried: &serde_json::Value,
    overrides: &Overrides,
    host: &str,
    stamp: &str,
) -> Result<Backup, BackupError> {
    let dir = private_dir(
        &backups_root(),
        &format!("{}-{}-rev{}-{stamp}", release.namespace, release.name, release.revision),
    )?;
    write_private(&dir.join("manifest.yaml"), release.manifest.as_bytes())?;
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
    let values = RunValues::save(&dir, host, carried, overrides)?;
    Ok(Backup { dir, values })
}
