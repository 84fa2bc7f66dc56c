//! The values of earlier revisions a rollback's decision carries or compares: read from
//! helm before deciding ([`super::decide::rollback_reads`] says which), so that the
//! decision itself reads nothing.

use std::collections::BTreeMap;

use crate::helm::Helm;

/// Each revision read, with its user values or why they could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionValues(BTreeMap<u64, Result<serde_json::Value, String>>);

impl RevisionValues {
    /// `helm get values --revision N` for each of `revisions`, in order, each once; the
    /// reads stop at the first that fails, where the decision stops too.
    pub fn read(helm: &Helm, release: &str, revisions: &[u64]) -> RevisionValues {
        let mut read = BTreeMap::new();
        for &revision in revisions {
            if read.contains_key(&revision) {
                continue;
            }
            let values = helm.values_at(release, revision).map_err(|e| e.to_string());
            let failed = values.is_err();
            read.insert(revision, values);
            if failed {
                break;
            }
        }
        RevisionValues(read)
    }

    /// Values given as they are (tests, and revisions already known).
    pub fn from_known(known: impl IntoIterator<Item = (u64, serde_json::Value)>) -> RevisionValues {
        RevisionValues(known.into_iter().map(|(revision, values)| (revision, Ok(values))).collect())
    }

    /// The user values of `revision`, or why they could not be read.
    pub fn at(&self, revision: u64) -> Result<&serde_json::Value, String> {
        match self.0.get(&revision) {
            Some(Ok(values)) => Ok(values),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("the values of revision {revision} were not read")),
        }
    }
}
