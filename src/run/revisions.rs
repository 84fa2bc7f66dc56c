//! The values of earlier revisions a rollback's decision carries or compares: gathered
//! before deciding ([`super::decide::rollback_reads`] says which), so that the decision
//! itself reads nothing. A release read from helm's storage already holds every stored
//! revision's values ([`Release::stored_values`]); only a release read through helm (or
//! a revision its storage no longer holds) asks `helm get values --revision N`.

use std::collections::BTreeMap;

use crate::helm::Helm;
use crate::release::Release;

/// Each revision read, with its user values or why they could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionValues(BTreeMap<u64, Result<serde_json::Value, String>>);

impl RevisionValues {
    /// The values of each of `revisions` of `release`: those its storage holds as read,
    /// the others by `helm get values --revision N`.
    pub fn read(helm: &Helm, release: &Release, revisions: &[u64]) -> RevisionValues {
        RevisionValues::gather(release.stored_values.as_ref(), revisions, |revision| {
            helm.values_at(&release.name, revision).map_err(|e| e.to_string())
        })
    }

    /// Each of `revisions`, in order, each once: from `stored` when it holds it, else by
    /// `ask`; the asking stops at the first that fails, where the decision stops too.
    fn gather(
        stored: Option<&BTreeMap<u64, serde_json::Value>>,
        revisions: &[u64],
        mut ask: impl FnMut(u64) -> Result<serde_json::Value, String>,
    ) -> RevisionValues {
        let mut read = BTreeMap::new();
        for &revision in revisions {
            if read.contains_key(&revision) {
                continue;
            }
            let values = match stored.and_then(|stored| stored.get(&revision)) {
                Some(values) => Ok(values.clone()),
                None => ask(revision),
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `gather` with an `ask` that records what it was asked, answering from `helm`
    /// (a revision it lacks fails as helm's would).
    fn gathered(
        stored: Option<&BTreeMap<u64, serde_json::Value>>,
        helm: &[(u64, serde_json::Value)],
        revisions: &[u64],
    ) -> (RevisionValues, Vec<u64>) {
        let mut asked = vec![];
        let values = RevisionValues::gather(stored, revisions, |revision| {
            asked.push(revision);
            helm.iter()
                .find(|(r, _)| *r == revision)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("read the values at revision {revision}: release: not found"))
        });
        (values, asked)
    }

    #[test]
    fn stored_revisions_are_not_asked_for() {
        let stored = BTreeMap::from([(1, json!({"a": 1})), (2, json!({})), (3, json!({"a": 3}))]);
        let (values, asked) = gathered(Some(&stored), &[], &[2, 1, 2]);
        assert!(asked.is_empty(), "every revision was stored: {asked:?}");
        assert_eq!(values.at(1), Ok(&json!({"a": 1})));
        assert_eq!(values.at(2), Ok(&json!({})));
        assert_eq!(values.at(3).unwrap_err(), "the values of revision 3 were not read");
    }

    #[test]
    fn a_release_read_through_helm_asks_for_each_revision_once() {
        let helm = [(1, json!({"a": 1})), (2, json!({"a": 2}))];
        let (values, asked) = gathered(None, &helm, &[2, 1, 2]);
        assert_eq!(asked, [2, 1]);
        assert_eq!(values, RevisionValues::from_known(helm.clone()));
    }

    #[test]
    fn a_revision_storage_no_longer_holds_is_asked_for_and_its_failure_stops_the_reads() {
        // Pruned by --history-max since the release was read: helm says why it is gone.
        let stored = BTreeMap::from([(5, json!({"a": 5}))]);
        let (values, asked) = gathered(Some(&stored), &[], &[5, 4, 5, 3]);
        assert_eq!(asked, [4], "the stored one is not asked for, and nothing after the failure");
        assert_eq!(values.at(5), Ok(&json!({"a": 5})));
        assert!(values.at(4).unwrap_err().contains("release: not found"));
        assert_eq!(values.at(3).unwrap_err(), "the values of revision 3 were not read");
    }
}
