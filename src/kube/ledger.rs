//! The ledger ConfigMap through the API client: the same object, the same
//! compare-and-swap and the same errors as [`crate::run::ledger::ConfigMapStore`] (which
//! goes through kubectl), so either store reads what the other wrote and the lock works
//! across both.

use std::path::Path;
use std::sync::Arc;

use crate::run::ledger::open::{CreatePermission, open_configmap_store};
use crate::run::ledger::{LedgerConfigMap, LedgerError, LedgerStore, OpenedStore, Revision, Stored};

use super::{KubeClient, KubeError};
use ::kube::core::Request;

/// The ledger of one release as its ConfigMap, read and written by a [`KubeClient`].
#[derive(Clone, Debug)]
pub struct KubeStore {
    client: KubeClient,
    configmap: LedgerConfigMap,
}

impl KubeStore {
    /// The ledger of `release` in the client's namespace (the release's).
    pub fn new(client: KubeClient, release: &str) -> KubeStore {
        let configmap = LedgerConfigMap::new(release, client.namespace());
        KubeStore { client, configmap }
    }

    pub fn client(&self) -> &KubeClient {
        &self.client
    }

    fn collection(&self) -> String {
        format!("/api/v1/namespaces/{}/configmaps", self.configmap.namespace)
    }

    /// What a refused or failed call means for the ledger. `verb` is the API's verb.
    fn refused(&self, verb: &str, error: KubeError) -> LedgerError {
        match (error.reason(), verb) {
            (Some("Forbidden"), _) => self.configmap.forbidden(verb, error.server_message().unwrap_or_default()),
            // AlreadyExists on create: another run created it first. Conflict on update:
            // someone wrote since our read. NotFound on update: it was deleted under us
            // (unless the namespace itself is gone). In each case the record is not the
            // one this writer read, which is what a conflict means.
            (Some("AlreadyExists"), "create") | (Some("Conflict"), _) => {
                LedgerError::Conflict { location: self.configmap.location() }
            }
            (Some("NotFound"), "update") if !namespace_missing(&error) => {
                LedgerError::Conflict { location: self.configmap.location() }
            }
            _ => LedgerError::Kube(error),
        }
    }
}

/// Where the ledger of `release` lives, read through `client`: the shared ConfigMap in the
/// client's namespace, chosen exactly as [`crate::run::ledger::open_store_at`] chooses it
/// (the local file only under `--local-ledger`, or when no ConfigMap exists and a
/// SelfSubjectAccessReview says this user may not create one). `context` names the local
/// file's folder, as for the kubectl store.
pub fn open_kube_store(
    client: &KubeClient,
    release: &str,
    context: Option<&str>,
    local: bool,
    state_root_override: Option<&Path>,
) -> Result<OpenedStore, LedgerError> {
    let namespace = client.namespace().to_string();
    let store = Arc::new(KubeStore::new(client.clone(), release));
    let may_create = CreatePermission {
        ask: &|| client.can_i("create", "configmaps", Some(&namespace)),
        asked_how: "a SelfSubjectAccessReview says no",
    };
    open_configmap_store(store, may_create, context, local, state_root_override)
}

/// A 404 about the namespace rather than the object (`namespaces "x" not found`).
fn namespace_missing(error: &KubeError) -> bool {
    error.server_message().is_some_and(|m| m.starts_with("namespaces "))
}

impl LedgerStore for KubeStore {
    fn release(&self) -> &str {
        &self.configmap.release
    }

    fn namespace(&self) -> &str {
        &self.configmap.namespace
    }

    fn location(&self) -> String {
        self.configmap.location()
    }

    fn load(&self) -> Result<Option<Stored>, LedgerError> {
        let purpose = format!("read the ledger of {}", self.configmap.release);
        let request = Request::new(self.collection()).get(&self.configmap.name(), &Default::default());
        match self.client.send(&purpose, request) {
            Ok(object) => self.configmap.parse(&object).map(Some),
            // As with kubectl: no ConfigMap (in a namespace that may not exist yet) is no record.
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.refused("get", e)),
        }
    }

    fn write(&self, ledger: &crate::run::ledger::Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        let body = serde_json::to_vec(&self.configmap.object(ledger, expected)?)?;
        let release = &self.configmap.release;
        let (verb, purpose, request) = match expected {
            None => (
                "create",
                format!("create the ledger of {release}"),
                Request::new(self.collection()).create(&Default::default(), body),
            ),
            // A PUT carrying the resourceVersion: the server refuses it (409) unless the
            // object is still at that version.
            Some(_) => (
                "update",
                format!("update the ledger of {release}"),
                Request::new(self.collection()).replace(&self.configmap.name(), &Default::default(), body),
            ),
        };
        match self.client.send(&purpose, request) {
            Ok(object) => self.configmap.revision_of(&object, &format!("the API server's {verb}")),
            Err(e) => Err(self.refused(verb, e)),
        }
    }
}
