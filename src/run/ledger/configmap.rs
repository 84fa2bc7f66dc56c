//! The ledger as a ConfigMap `helm-safe-upgrade.<release>` beside the release, read and
//! written through kubectl with the API server's optimistic concurrency
//! (`resourceVersion`).

use super::{
    DATA_KEY, Ledger, LedgerError, LedgerStore, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL, Revision, Stored,
};
use crate::helm::{ExecError, Kubectl};

/// The ledger as a ConfigMap `helm-safe-upgrade.<release>` in the release's namespace.
#[derive(Clone, Debug)]
pub struct ConfigMapStore {
    pub(crate) kubectl: Kubectl,
    release: String,
    namespace: String,
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
        let namespace = kubectl.namespace.clone();
        ConfigMapStore { kubectl, release: release.to_string(), namespace }
    }

    /// `helm-safe-upgrade.<release>`: release names are at most 53 characters of a DNS
    /// label, so this stays a valid ConfigMap name.
    pub fn name(&self) -> String {
        configmap_name(&self.release)
    }

    fn forbidden(&self, verb: &str, err: &ExecError) -> LedgerError {
        LedgerError::Forbidden {
            verb: verb.to_string(),
            name: self.name(),
            namespace: self.namespace.clone(),
            stderr: err.stderr().to_string(),
        }
    }

    fn object(&self, ledger: &Ledger, resource_version: Option<&Revision>) -> Result<Vec<u8>, LedgerError> {
        let mut metadata = serde_json::json!({
            "name": self.name(),
            "namespace": self.namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY_VALUE,
                RELEASE_LABEL: self.release,
            },
        });
        if let Some(Revision(rv)) = resource_version {
            // `kubectl replace` sends the object as given: with a resourceVersion the API
            // server refuses (409 Conflict) unless the object is still at that version.
            metadata["resourceVersion"] = serde_json::Value::String(rv.clone());
        }
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": { DATA_KEY: ledger.to_json()? },
        });
        Ok(serde_json::to_vec(&object)?)
    }

    fn inspect_hint(&self) -> String {
        format!(" with: kubectl get configmap {} -n {} -o jsonpath='{{.data.ledger}}'", self.name(), self.namespace)
    }

    fn parse_object(&self, object: &serde_json::Value) -> Result<Stored, LedgerError> {
        let location = self.location();
        let labels = &object["metadata"]["labels"];
        if labels[MANAGED_BY_LABEL].as_str() != Some(MANAGED_BY_VALUE) {
            return Err(LedgerError::NotOurs { name: self.name(), namespace: self.namespace.clone() });
        }
        let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        let corrupt = |error: &str| LedgerError::Corrupt {
            location: location.clone(),
            error: error.to_string(),
            inspect: self.inspect_hint(),
        };
        let text = object["data"][DATA_KEY].as_str().ok_or_else(|| corrupt("no data.ledger key"))?;
        if rv.is_empty() {
            return Err(corrupt("the API server returned no metadata.resourceVersion"));
        }
        let ledger = Ledger::from_json(text, &location, &self.inspect_hint())?;
        Ok(Stored { ledger, revision: Revision(rv) })
    }

    fn written(&self, verb: &str, result: Result<crate::helm::Finished, ExecError>) -> Result<Revision, LedgerError> {
        match result {
            Ok(done) => {
                let object: serde_json::Value =
                    serde_json::from_str(&done.stdout).map_err(|e| LedgerError::Corrupt {
                        location: self.location(),
                        error: format!("kubectl {verb} printed no object: {e}"),
                        inspect: self.inspect_hint(),
                    })?;
                match object["metadata"]["resourceVersion"].as_str() {
                    Some(rv) if !rv.is_empty() => Ok(Revision(rv.to_string())),
                    _ => Err(LedgerError::Corrupt {
                        location: self.location(),
                        error: format!("kubectl {verb} returned no metadata.resourceVersion"),
                        inspect: self.inspect_hint(),
                    }),
                }
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

pub fn configmap_name(release: &str) -> String {
    format!("helm-safe-upgrade.{release}")
}

impl LedgerStore for ConfigMapStore {
    fn release(&self) -> &str {
        &self.release
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn location(&self) -> String {
        format!("ConfigMap {} in namespace {}", self.name(), self.namespace)
    }

    fn load(&self) -> Result<Option<Stored>, LedgerError> {
        let purpose = format!("read the ledger of {}", self.release);
        let name = self.name();
        match self.kubectl.run(purpose, vec!["get".into(), "configmap".into(), "-o".into(), "json".into()], &[&name]) {
            Ok(done) => {
                let object: serde_json::Value =
                    serde_json::from_str(&done.stdout).map_err(|e| LedgerError::Corrupt {
                        location: self.location(),
                        error: format!("kubectl printed no JSON: {e}"),
                        inspect: self.inspect_hint(),
                    })?;
                self.parse_object(&object).map(Some)
            }
            Err(err) => match classify_kubectl_error(err.stderr()) {
                ServerError::NotFound => Ok(None),
                ServerError::Forbidden => Err(self.forbidden("get", &err)),
                _ => Err(LedgerError::Kubectl(err)),
            },
        }
    }

    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        let body = self.object(ledger, expected)?;
        let (verb, purpose) = match expected {
            None => ("create", format!("create the ledger of {}", self.release)),
            Some(_) => ("update", format!("update the ledger of {}", self.release)),
        };
        let kubectl_verb = if expected.is_none() { "create" } else { "replace" };
        let args = vec![kubectl_verb.into(), "-f".into(), "-".into(), "-o".into(), "json".into()];
        self.written(verb, self.kubectl.run_with_input(purpose, args, &body))
    }
}
