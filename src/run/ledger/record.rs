//! The ledger ConfigMap as an object: its name, labels and data key, how a record becomes
//! one and how one is read back.
//!
//! Two stores write the same ConfigMap: [`super::ConfigMapStore`] through kubectl and
//! [`crate::kube::KubeStore`] through the API client. Both go through this one definition,
//! so a record written by either is read by the other, and a foreign ConfigMap of the same
//! name is refused by both the same way.

use super::{DATA_KEY, Ledger, LedgerError, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL, Revision, Stored};

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
        let labels = &object["metadata"]["labels"];
        if labels[MANAGED_BY_LABEL].as_str() != Some(MANAGED_BY_VALUE) {
            return Err(LedgerError::NotOurs { name: self.name(), namespace: self.namespace.clone() });
        }
        let text = object["data"][DATA_KEY].as_str().ok_or_else(|| self.corrupt("no data.ledger key"))?;
        let revision = self.revision_of(object, "the API server")?;
        let ledger = Ledger::from_json(text, &self.location(), &self.inspect_hint())?;
        Ok(Stored { ledger, revision })
    }

    /// The resourceVersion of an object `who` returned: the revision the next write goes over.
    pub fn revision_of(&self, object: &serde_json::Value, who: &str) -> Result<Revision, LedgerError> {
        match object["metadata"]["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() => Ok(Revision(rv.to_string())),
            _ => Err(self.corrupt(format!("{who} returned no metadata.resourceVersion"))),
        }
    }
}
