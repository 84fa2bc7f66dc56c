//! Choosing where the ledger lives, and never choosing a place that hides a lock.
//!
//! The shared ConfigMap is the only store that every operator and CI runner sees, so it
//! is the one whose lock counts. A local file is taken only
//! - when the operator asks for it (`--local-ledger`), or
//! - when the ConfigMap does not exist and this user may not create it: then no run can
//!   be holding the cluster lock, and none of this user's runs ever could.
//!
//! Everything else that keeps the ConfigMap from being read (kubectl missing, reading
//! forbidden, the cluster unreachable) is an error: a run that silently switched to a
//! local file would not see the lock of a run elsewhere and could deploy at the same time.

use std::path::Path;
use std::sync::Arc;

use super::{ConfigMapStore, FileStore, LedgerError, LedgerStore, configmap_name, state_root};
use crate::helm::{ExecError, Kubectl};

/// The store to use, its record as read now, and when it is not the shared ConfigMap, a
/// note saying why.
#[derive(Debug)]
pub struct OpenedStore {
    pub store: Arc<dyn LedgerStore>,
    pub loaded: Option<super::Stored>,
    pub warning: Option<String>,
}

/// Where the ledger of `release` lives; see the module documentation. `local` is
/// `--local-ledger`.
pub fn open_store(
    kubectl: &Kubectl,
    release: &str,
    namespace: &str,
    context: Option<&str>,
    local: bool,
) -> Result<OpenedStore, LedgerError> {
    open_store_at(kubectl, release, namespace, context, local, None)
}

/// [`open_store`] with the local file under `state_root_override` instead of the default.
pub fn open_store_at(
    kubectl: &Kubectl,
    release: &str,
    namespace: &str,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
) -> Result<OpenedStore, LedgerError> {
    let mut kubectl = kubectl.clone();
    kubectl.namespace = namespace.to_string();
    let configmaps = Arc::new(ConfigMapStore::new(kubectl.clone(), release));
    let may_create = CreatePermission {
        ask: &|| may_create_configmaps(&kubectl),
        asked_how: "`kubectl auth can-i create configmaps` says no",
    };
    open_configmap_store(configmaps, may_create, context, local, state_root_override).map_err(|e| match e {
        LedgerError::Kubectl(ExecError::Spawn { program, source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            LedgerError::Unverifiable {
                release: release.to_string(),
                why: format!("kubectl ({program}) is not installed, and the shared ledger ConfigMap is read with it"),
                hint: "install kubectl (or set KUBECTL to its path); or, if no one else runs this tool on this release, pass --local-ledger to keep the ledger on this machine only".to_string(),
            }
        }
        other => other,
    })
}

/// Whether this user may create ConfigMaps in the release's namespace: Some(false) only
/// for a clear "no".
pub struct CreatePermission<'a> {
    pub ask: &'a dyn Fn() -> Option<bool>,
    /// How the answer was had, for the warning: "`kubectl auth can-i create configmaps` says no".
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
    let file = |why: String| -> Result<OpenedStore, LedgerError> {
        let root = match state_root_override {
            Some(root) => root.to_path_buf(),
            None => state_root()?,
        };
        let file = FileStore::new(&root, context, &namespace, &release);
        let loaded = file.load()?;
        let warning = format!(
            "{why}: the ledger of {release} is kept in {} instead of ConfigMap {} in namespace {namespace}. \
             Only this machine sees it: it does not lock out runs from elsewhere, and they do not know the \
             newest version deployed from here.",
            file.path().display(),
            configmap_name(&release)
        );
        Ok(OpenedStore { store: Arc::new(file), loaded, warning: Some(warning) })
    };
    if local {
        return file("--local-ledger".to_string());
    }
    match configmaps.load() {
        Ok(Some(stored)) => Ok(OpenedStore { store: configmaps, loaded: Some(stored), warning: None }),
        Ok(None) => match (may_create.ask)() {
            Some(false) => file(format!(
                "this user may not create ConfigMaps in namespace {namespace} ({}) and none holds a ledger yet",
                may_create.asked_how
            )),
            _ => Ok(OpenedStore { store: configmaps, loaded: None, warning: None }),
        },
        Err(LedgerError::Forbidden { stderr, .. }) => Err(LedgerError::Unverifiable {
            release: release.clone(),
            why: format!(
                "the cluster forbids this user to read ConfigMap {} in namespace {namespace} ({})",
                configmap_name(&release),
                stderr.lines().next().unwrap_or_default()
            ),
            hint: format!(
                "grant get, create and update on configmaps in namespace {namespace}; or, if no one else runs this tool on {release}, pass --local-ledger to keep the ledger on this machine only"
            ),
        }),
        Err(e) => Err(e),
    }
}

/// `kubectl auth can-i create configmaps`: Some(false) only for a clear "no". Anything
/// else (yes, or a cluster that cannot answer) keeps the ConfigMap store: creating it will
/// tell, and a refused create then changes nothing.
fn may_create_configmaps(kubectl: &Kubectl) -> Option<bool> {
    let out = match kubectl.run(
        "ask whether this user may create ConfigMaps",
        vec!["auth".into(), "can-i".into(), "create".into(), "configmaps".into()],
        &[],
    ) {
        Ok(out) => out.stdout,
        Err(ExecError::Failed { stdout, .. }) => stdout,
        Err(_) => return None,
    };
    match out.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}
