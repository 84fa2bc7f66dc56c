//! The ledger as a ConfigMap `helm-safe-upgrade.<release>` beside the release, read and
//! written through the tool's API client ([`crate::kube`]) with the API server's
//! optimistic concurrency (`resourceVersion`): of two writers over the same version, the
//! server lets one win.
//!
//! The object's name, labels and data key are defined here once ([`LedgerConfigMap`]), and a
//! ConfigMap of the same name without this tool's label is someone else's: never read
//! or overwritten.

use super::{
    DATA_KEY, ForShowing, Ledger, LedgerError, LedgerStore, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL,
    Revision, Stored,
};
use crate::kube::{KubeClient, KubeError};

/// `helm-safe-upgrade.<release>`: release names are at most 53 characters of a DNS label,
/// so this stays a valid ConfigMap name.
pub fn configmap_name(release: &str) -> String {
    format!("helm-safe-upgrade.{release}")
}

/// The ledger ConfigMap of one release in one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerConfigMap {
    pub release: String,
    pub namespace: String,
}

impl LedgerConfigMap {
    pub fn new(release: &str, namespace: &str) -> LedgerConfigMap {
        LedgerConfigMap { release: release.to_string(), namespace: namespace.to_string() }
    }

    pub fn name(&self) -> String {
        configmap_name(&self.release)
    }

    /// "ConfigMap x in namespace y", as every message names it.
    pub fn location(&self) -> String {
        format!("ConfigMap {} in namespace {}", self.name(), self.namespace)
    }

    /// How a person reads the record when it cannot be parsed.
    pub fn inspect_hint(&self) -> String {
        format!(" with: kubectl get configmap {} -n {} -o jsonpath='{{.data.ledger}}'", self.name(), self.namespace)
    }

    /// The refusal of `verb` on this ConfigMap, with the server's own words.
    pub fn forbidden(&self, verb: &str, server_says: &str) -> LedgerError {
        LedgerError::Forbidden {
            verb: verb.to_string(),
            name: self.name(),
            namespace: self.namespace.clone(),
            stderr: server_says.to_string(),
        }
    }

    /// The record is unreadable (or the server's answer about it is).
    pub fn corrupt(&self, error: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt { location: self.location(), error: error.into(), inspect: self.inspect_hint() }
    }

    /// The ConfigMap holding `ledger`. With a resourceVersion, the API server refuses the
    /// replace (409 Conflict) unless the object is still at that version: the
    /// compare-and-swap every write relies on.
    pub fn object(
        &self,
        ledger: &Ledger,
        resource_version: Option<&Revision>,
    ) -> Result<serde_json::Value, LedgerError> {
        let mut metadata = serde_json::json!({
            "name": self.name(),
            "namespace": self.namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY_VALUE,
                RELEASE_LABEL: self.release,
            },
        });
        if let Some(Revision(rv)) = resource_version {
            metadata["resourceVersion"] = serde_json::Value::String(rv.clone());
        }
        Ok(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": { DATA_KEY: ledger.to_json()? },
        }))
    }

    /// The record in a ConfigMap as the API server returned it. One without this tool's
    /// label is someone else's ([`LedgerError::NotOurs`]) and is never read or overwritten.
    pub fn parse(&self, object: &serde_json::Value) -> Result<Stored, LedgerError> {
        let text = self.record_text(object)?;
        let revision = self.revision_of(object, "the API server")?;
        let ledger = Ledger::from_json(text, &self.location(), &self.inspect_hint())?;
        Ok(Stored { ledger, revision })
    }

    /// The record in a ConfigMap, only to show it: [`LedgerConfigMap::parse`], except that
    /// a newer schema is read as far as understood, and no revision is needed.
    pub fn parse_for_showing(&self, object: &serde_json::Value) -> Result<ForShowing, LedgerError> {
        let text = self.record_text(object)?;
        let (ledger, note) = Ledger::from_json_for_reading(text, &self.location(), &self.inspect_hint())?;
        Ok(ForShowing { ledger, note })
    }

    /// The record's JSON text, from a ConfigMap that carries this tool's label.
    fn record_text<'a>(&self, object: &'a serde_json::Value) -> Result<&'a str, LedgerError> {
        let labels = &object["metadata"]["labels"];
        if labels[MANAGED_BY_LABEL].as_str() != Some(MANAGED_BY_VALUE) {
            return Err(LedgerError::NotOurs { name: self.name(), namespace: self.namespace.clone() });
        }
        object["data"][DATA_KEY].as_str().ok_or_else(|| self.corrupt("no data.ledger key"))
    }

    /// The resourceVersion of an object `who` returned: the revision the next write goes over.
    pub fn revision_of(&self, object: &serde_json::Value, who: &str) -> Result<Revision, LedgerError> {
        match object["metadata"]["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() => Ok(Revision(rv.to_string())),
            _ => Err(self.corrupt(format!("{who} returned no metadata.resourceVersion"))),
        }
    }
}

/// The ledger of one release as its ConfigMap, in the client's namespace (the release's).
#[derive(Clone, Debug)]
pub struct ConfigMapStore {
    client: KubeClient,
    configmap: LedgerConfigMap,
}

impl ConfigMapStore {
    pub fn new(client: KubeClient, release: &str) -> ConfigMapStore {
        let configmap = LedgerConfigMap::new(release, client.namespace());
        ConfigMapStore { client, configmap }
    }

    /// `helm-safe-upgrade.<release>`.
    pub fn name(&self) -> String {
        self.configmap.name()
    }

    /// The ConfigMap as the API server returns it; None when there is none (in a
    /// namespace that may not exist yet): no record.
    fn get(&self) -> Result<Option<serde_json::Value>, LedgerError> {
        let purpose = format!("read the ledger of {}", self.configmap.release);
        self.client.configmap(&purpose, &self.name()).map_err(|e| self.refused("get", e))
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

/// A 404 about the namespace rather than the object (`namespaces "x" not found`).
fn namespace_missing(error: &KubeError) -> bool {
    error.server_message().is_some_and(|m| m.starts_with("namespaces "))
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
        self.get()?.map(|object| self.configmap.parse(&object)).transpose()
    }

    fn load_for_showing(&self) -> Result<Option<ForShowing>, LedgerError> {
        self.get()?.map(|object| self.configmap.parse_for_showing(&object)).transpose()
    }

    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        let object = self.configmap.object(ledger, expected)?;
        let release = &self.configmap.release;
        let (verb, written) = match expected {
            None => ("create", self.client.create_configmap(&format!("create the ledger of {release}"), &object)),
            Some(_) => (
                "update",
                self.client.replace_configmap(&format!("update the ledger of {release}"), &self.name(), &object),
            ),
        };
        match written {
            Ok(object) => self.configmap.revision_of(&object, &format!("the API server's {verb}")),
            Err(e) => Err(self.refused(verb, e)),
        }
    }
}
