//! A release's revisions as helm's storage holds them, read without helm.
//!
//! helm's `secret` driver (the default) keeps each revision as a Secret
//! `sh.helm.release.v1.<release>.v<N>` labelled `owner=helm`, `name=<release>`,
//! `status=<status>` and `version=<N>`; the `configmap` driver keeps ConfigMaps of the same
//! names and labels. The labels say everything the executor checks before a hop (is the
//! release still at the revision this run left?), so only metadata is listed: the payload,
//! a gzipped release with chart and values, can be large and may hold secrets.

use super::{HelmDriver, KubeClient, KubeError, items};
use ::kube::core::Request;

/// `sh.helm.release.v1.<release>.v<revision>`: the storage object of one revision.
pub fn release_object_name(release: &str, revision: u64) -> String {
    format!("sh.helm.release.v1.{release}.v{revision}")
}

/// The label selector of every storage object of `release`.
pub fn release_selector(release: &str) -> String {
    format!("owner=helm,name={release}")
}

pub(super) fn revisions(client: &KubeClient, release: &str) -> Result<Vec<(u64, String)>, KubeError> {
    let namespace = client.namespace();
    let purpose = format!("list the revisions of {release} in namespace {namespace}");
    let plural = match client.driver() {
        HelmDriver::Secret => "secrets",
        HelmDriver::ConfigMap => "configmaps",
        HelmDriver::Other(driver) => {
            return Err(KubeError::Unsupported {
                purpose,
                message: format!("helm keeps releases in its {driver:?} storage (HELM_DRIVER), which only helm reads"),
            });
        }
    };
    let params = ::kube::api::ListParams::default().labels(&release_selector(release));
    // `list_metadata` asks for a PartialObjectMetadataList: names and labels, no data.
    let request = Request::new(format!("/api/v1/namespaces/{namespace}/{plural}")).list_metadata(&params);
    let list = client.send(&purpose, request)?;
    let mut found: Vec<(u64, String)> =
        items(&purpose, list)?.iter().filter_map(|item| revision_of(release, &item["metadata"])).collect();
    found.sort();
    found.dedup_by_key(|(revision, _)| *revision);
    Ok(found)
}

/// The revision and status one storage object's metadata records; None for an object
/// that is not one of helm's (a label missing or unreadable, or a name that disagrees).
fn revision_of(release: &str, metadata: &serde_json::Value) -> Option<(u64, String)> {
    let labels = &metadata["labels"];
    if labels["owner"].as_str() != Some("helm") || labels["name"].as_str() != Some(release) {
        return None;
    }
    let revision: u64 = labels["version"].as_str()?.parse().ok()?;
    if metadata["name"].as_str().is_some_and(|name| name != release_object_name(release, revision)) {
        return None;
    }
    Some((revision, labels["status"].as_str()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_revision_comes_from_the_labels_of_helms_objects_only() {
        let meta = |name: &str, labels: serde_json::Value| json!({"name": name, "labels": labels});
        let ok = meta(
            "sh.helm.release.v1.bsr.v3",
            json!({"owner": "helm", "name": "bsr", "status": "deployed", "version": "3"}),
        );
        assert_eq!(revision_of("bsr", &ok), Some((3, "deployed".into())));
        let other_release = meta(
            "sh.helm.release.v1.bs.v3",
            json!({"owner": "helm", "name": "bs", "status": "deployed", "version": "3"}),
        );
        assert_eq!(revision_of("bsr", &other_release), None);
        let not_helms = meta("sh.helm.release.v1.bsr.v3", json!({"name": "bsr", "status": "deployed", "version": "3"}));
        assert_eq!(revision_of("bsr", &not_helms), None);
        let name_disagrees =
            meta("my-copy", json!({"owner": "helm", "name": "bsr", "status": "deployed", "version": "3"}));
        assert_eq!(revision_of("bsr", &name_disagrees), None);
        let no_version = meta("sh.helm.release.v1.bsr.v3", json!({"owner": "helm", "name": "bsr", "status": "x"}));
        assert_eq!(revision_of("bsr", &no_version), None);
    }
}
