//! Choosing where the ledger lives, and never choosing a place that hides a lock.
//!
//! The shared ConfigMap is the only store that every operator and CI runner sees, so it
//! is the one whose lock counts. A local file is taken only
//! - when the operator asks for it (`--local-ledger`), or
//! - when the ConfigMap does not exist and this user may not create it: then no run can
//!   be holding the cluster lock, and none of this user's runs ever could.
//!
//! Everything else that keeps the ConfigMap from being read (a kubeconfig that cannot be
//! used, reading forbidden, the cluster unreachable) is an error: a run that silently switched to a
//! local file would not see the lock of a run elsewhere and could deploy at the same time.
//!
//! `--history` reads the record from the same choice ([`open_for_showing`]), so it shows
//! what a run would have written, and writes nothing itself.

use std::path::Path;
use std::sync::Arc;

use super::{ConfigMapStore, FileStore, ForShowing, LedgerError, LedgerStore, Stored, configmap_name, state_root};
use crate::kube::KubeClient;

/// The store to use, its record as read now, and when it is not the shared ConfigMap, a
/// note saying why. `T` is how the record was read: [`Stored`] to write over it, or
/// [`ForShowing`] only to show it.
#[derive(Debug)]
pub struct OpenedStore<T = Stored> {
    pub store: Arc<dyn LedgerStore>,
    pub loaded: Option<T>,
    pub warning: Option<String>,
}

/// Where the ledger of `release` lives, in the namespace of `client`; see the module
/// documentation. `local` is `--local-ledger`; `context` names the local file's folder.
pub fn open_store(
    client: &KubeClient,
    release: &str,
    context: Option<&str>,
    local: bool,
) -> Result<OpenedStore, LedgerError> {
    open_store_at(client, release, context, local, None)
}

/// [`open_store`] with the local file under `state_root_override` instead of the default.
pub fn open_store_at(
    client: &KubeClient,
    release: &str,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
) -> Result<OpenedStore, LedgerError> {
    let namespace = client.namespace().to_string();
    let store = Arc::new(ConfigMapStore::new(client.clone(), release));
    let may_create = CreatePermission {
        ask: &|| client.can_i("create", "configmaps", Some(&namespace)),
        asked_how: "a SelfSubjectAccessReview says no",
    };
    open_configmap_store(store, may_create, context, local, state_root_override)
}

/// The record of `release` only to show it (`--history`), from the store a live run
/// would choose ([`open_store`]), read by [`LedgerStore::load_for_showing`]. Nothing is
/// written: no ConfigMap is created, no lock is taken.
pub fn open_for_showing(
    client: &KubeClient,
    release: &str,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
) -> Result<OpenedStore<ForShowing>, LedgerError> {
    let namespace = client.namespace().to_string();
    let configmaps: Arc<dyn LedgerStore> = Arc::new(ConfigMapStore::new(client.clone(), release));
    let may_create = CreatePermission {
        ask: &|| client.can_i("create", "configmaps", Some(&namespace)),
        asked_how: "a SelfSubjectAccessReview says no",
    };
    let read = |store: &dyn LedgerStore| store.load_for_showing();
    let chosen = choose(configmaps, may_create, context, local, state_root_override, read)?;
    let warning = chosen.file_because.map(|why| {
        format!(
            "{why}: the history of {release} is read from {}, a ledger only this machine sees (the shared ConfigMap {} is not used)",
            chosen.store.location(),
            configmap_name(release)
        )
    });
    Ok(OpenedStore { store: chosen.store, loaded: chosen.loaded, warning })
}

/// Whether this user may create ConfigMaps in the release's namespace: Some(false) only
/// for a clear "no".
pub struct CreatePermission<'a> {
    pub ask: &'a dyn Fn() -> Option<bool>,
    /// How the answer was had, for the warning: "a SelfSubjectAccessReview says no".
    pub asked_how: &'a str,
}

/// The choice of [`open_store_at`] for any store of the shared ConfigMap (`configmaps`,
/// whose namespace and release it takes): the ConfigMap when it can be read, the local
/// file only under `--local-ledger` or when the ConfigMap does not exist and `may_create`
/// says no.
pub fn open_configmap_store(
    configmaps: Arc<dyn LedgerStore>,
    may_create: CreatePermission<'_>,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
) -> Result<OpenedStore, LedgerError> {
    let (release, namespace) = (configmaps.release().to_string(), configmaps.namespace().to_string());
    let read = |store: &dyn LedgerStore| store.load();
    let chosen = match choose(configmaps, may_create, context, local, state_root_override, read) {
        Ok(chosen) => chosen,
        Err(LedgerError::Forbidden { stderr, .. }) => {
            return Err(LedgerError::Unverifiable {
                release: release.clone(),
                why: format!(
                    "the cluster forbids this user to read ConfigMap {} in namespace {namespace} ({})",
                    configmap_name(&release),
                    stderr.lines().next().unwrap_or_default()
                ),
                hint: format!(
                    "grant get, create and update on configmaps in namespace {namespace}; or, if no one else runs this tool on {release}, pass --local-ledger to keep the ledger on this machine only"
                ),
            });
        }
        Err(e) => return Err(e),
    };
    let warning = chosen.file_because.map(|why| {
        format!(
            "{why}: the ledger of {release} is kept in {} instead of ConfigMap {} in namespace {namespace}. \
             Only this machine sees it: it does not lock out runs from elsewhere, and they do not know the \
             newest version deployed from here.",
            chosen.store.location(),
            configmap_name(&release)
        )
    });
    Ok(OpenedStore { store: chosen.store, loaded: chosen.loaded, warning })
}

/// The store chosen, its record as `read` read it, and why the local file was chosen.
struct Chosen<T> {
    store: Arc<dyn LedgerStore>,
    loaded: Option<T>,
    file_because: Option<String>,
}

/// The one choice of store, for runs and for `--history` alike (so the history is read
/// where a run would have written it); `read` reads the chosen store's record.
fn choose<T>(
    configmaps: Arc<dyn LedgerStore>,
    may_create: CreatePermission<'_>,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
    read: impl Fn(&dyn LedgerStore) -> Result<Option<T>, LedgerError>,
) -> Result<Chosen<T>, LedgerError> {
    let (release, namespace) = (configmaps.release().to_string(), configmaps.namespace().to_string());
    let file = |why: String| -> Result<Chosen<T>, LedgerError> {
        let root = match state_root_override {
            Some(root) => root.to_path_buf(),
            None => state_root()?,
        };
        let file = FileStore::new(&root, context, &namespace, &release);
        let loaded = read(&file)?;
        Ok(Chosen { store: Arc::new(file), loaded, file_because: Some(why) })
    };
    if local {
        return file("--local-ledger".to_string());
    }
    match read(configmaps.as_ref())? {
        Some(loaded) => Ok(Chosen { store: configmaps, loaded: Some(loaded), file_because: None }),
        None => match (may_create.ask)() {
            Some(false) => file(format!(
                "this user may not create ConfigMaps in namespace {namespace} ({}) and none holds a ledger yet",
                may_create.asked_how
            )),
            _ => Ok(Chosen { store: configmaps, loaded: None, file_because: None }),
        },
    }
}
