//! The ledger as a ConfigMap `helm-safe-upgrade.<release>` beside the release, read and
//! written through kubectl with the API server's optimistic concurrency
//! (`resourceVersion`).

use super::record::LedgerConfigMap;
use super::{Ledger, LedgerError, LedgerStore, Revision, Stored};
use crate::helm::{ExecError, Kubectl};

/// The ledger as a ConfigMap `helm-safe-upgrade.<release>` in the release's namespace.
#[derive(Clone, Debug)]
pub struct ConfigMapStore {
    pub(crate) kubectl: Kubectl,
    configmap: LedgerConfigMap,
}

/// What kubectl's stderr says went wrong, from the `Error from server (Reason)` prefix
/// that kubectl prints for API Status errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    NotFound,
    AlreadyExists,
    Conflict,
    Forbidden,
    Other,
}

/// Classify kubectl's stderr. Several lines may be printed (one per object); any
/// matching reason counts.
pub fn classify_kubectl_error(stderr: &str) -> ServerError {
    let has = |reason: &str| stderr.contains(&format!("Error from server ({reason})"));
    if has("Forbidden") {
        ServerError::Forbidden
    } else if has("Conflict") {
        ServerError::Conflict
    } else if has("AlreadyExists") {
        ServerError::AlreadyExists
    } else if has("NotFound") {
        ServerError::NotFound
    } else {
        ServerError::Other
    }
}

impl ConfigMapStore {
    /// The kubectl given must address the release's namespace (and context).
    pub fn new(kubectl: Kubectl, release: &str) -> ConfigMapStore {
        let configmap = LedgerConfigMap::new(release, &kubectl.namespace);
        ConfigMapStore { kubectl, configmap }
    }

    /// `helm-safe-upgrade.<release>`.
    pub fn name(&self) -> String {
        self.configmap.name()
    }

    fn forbidden(&self, verb: &str, err: &ExecError) -> LedgerError {
        self.configmap.forbidden(verb, err.stderr())
    }

    fn written(&self, verb: &str, result: Result<crate::helm::Finished, ExecError>) -> Result<Revision, LedgerError> {
        match result {
            Ok(done) => {
                let object: serde_json::Value = serde_json::from_str(&done.stdout)
                    .map_err(|e| self.configmap.corrupt(format!("kubectl {verb} printed no object: {e}")))?;
                self.configmap.revision_of(&object, &format!("kubectl {verb}"))
            }
            Err(err) => Err(match classify_kubectl_error(err.stderr()) {
                // AlreadyExists on create: another run created it first. NotFound on
                // replace: it was deleted under us. Either way the record is not the one
                // this writer read, which is what a conflict means.
                ServerError::Conflict | ServerError::AlreadyExists => {
                    LedgerError::Conflict { location: self.location() }
                }
                ServerError::NotFound if verb == "update" && !err.stderr().contains("namespaces") => {
                    LedgerError::Conflict { location: self.location() }
                }
                ServerError::Forbidden => self.forbidden(verb, &err),
                _ => LedgerError::Kubectl(err),
            }),
        }
    }
}

impl LedgerStore for ConfigMapStore {
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
        let name = self.name();
        match self.kubectl.run(purpose, vec!["get".into(), "configmap".into(), "-o".into(), "json".into()], &[&name]) {
            Ok(done) => {
                let object: serde_json::Value = serde_json::from_str(&done.stdout)
                    .map_err(|e| self.configmap.corrupt(format!("kubectl printed no JSON: {e}")))?;
                self.configmap.parse(&object).map(Some)
            }
            Err(err) => match classify_kubectl_error(err.stderr()) {
                ServerError::NotFound => Ok(None),
                ServerError::Forbidden => Err(self.forbidden("get", &err)),
                _ => Err(LedgerError::Kubectl(err)),
            },
        }
    }

    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        // `kubectl replace` sends the object as given, resourceVersion included.
        let body = serde_json::to_vec(&self.configmap.object(ledger, expected)?)?;
        let release = &self.configmap.release;
        let (verb, purpose) = match expected {
            None => ("create", format!("create the ledger of {release}")),
            Some(_) => ("update", format!("update the ledger of {release}")),
        };
        let kubectl_verb = if expected.is_none() { "create" } else { "replace" };
        let args = vec![kubectl_verb.into(), "-f".into(), "-".into(), "-o".into(), "json".into()];
        self.written(verb, self.kubectl.run_with_input(purpose, args, &body))
    }
}
