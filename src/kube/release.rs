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

/// Where helm keeps revisions under this client's `HELM_DRIVER`.
struct Storage {
    /// The objects' kind, as the API path spells it.
    plural: &'static str,
    /// A Secret's data is base64 on the wire, over helm's own base64.
    base64_twice: bool,
}

fn storage(client: &KubeClient, purpose: &str) -> Result<Storage, KubeError> {
    match client.driver() {
        HelmDriver::Secret => Ok(Storage { plural: "secrets", base64_twice: true }),
        HelmDriver::ConfigMap => Ok(Storage { plural: "configmaps", base64_twice: false }),
        HelmDriver::Other(driver) => Err(KubeError::Unsupported {
            purpose: purpose.to_string(),
            message: format!("helm keeps releases in its {driver:?} storage (HELM_DRIVER), which only helm reads"),
        }),
    }
}

pub(super) fn revisions(client: &KubeClient, release: &str) -> Result<Vec<(u64, String)>, KubeError> {
    let namespace = client.namespace();
    let purpose = format!("list the revisions of {release} in namespace {namespace}");
    let Storage { plural, .. } = storage(client, &purpose)?;
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

/// Every revision helm stores for `release`, oldest first, each as helm wrote it: the
/// release document (`name`, `namespace`, `version`, `info`, `chart`, `config`,
/// `manifest`, …) that `helm status`, `helm history` and `helm get` print parts of. One
/// list call reads them all, as `helm history` does; the documents hold the release's
/// values, so they stay in memory and are never logged. Each is parsed straight into `T`.
pub(super) fn documents<T: serde::de::DeserializeOwned>(
    client: &KubeClient,
    release: &str,
) -> Result<Vec<(u64, T)>, KubeError> {
    let namespace = client.namespace();
    let purpose = format!("read the release {release} in namespace {namespace}");
    let Storage { plural, base64_twice: twice } = storage(client, &purpose)?;
    let params = ::kube::api::ListParams::default().labels(&release_selector(release));
    let request = Request::new(format!("/api/v1/namespaces/{namespace}/{plural}")).list(&params);
    let list = client.send(&purpose, request)?;
    let mut found = vec![];
    for item in items(&purpose, list)? {
        let Some((revision, _)) = revision_of(release, &item["metadata"]) else { continue };
        let decoded = item["data"]["release"]
            .as_str()
            .ok_or_else(|| "it has no data.release".to_string())
            .and_then(|text| decode(text, twice))
            .map_err(|message| KubeError::Decode {
                purpose: purpose.clone(),
                message: format!("{}: {message}", release_object_name(release, revision)),
            })?;
        found.push((revision, decoded));
    }
    found.sort_by_key(|(revision, _)| *revision);
    found.dedup_by_key(|(revision, _)| *revision);
    Ok(found)
}

/// helm's encoding of a release, undone: base64 (twice for a Secret), then gzip when the
/// bytes start with gzip's magic (helm has always compressed; older releases may not be),
/// then JSON, as `T`.
fn decode<T: serde::de::DeserializeOwned>(text: &str, twice: bool) -> Result<T, String> {
    use base64::Engine;
    use std::io::Read;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    if twice {
        bytes = engine.decode(&bytes).map_err(|e| format!("not helm's base64: {e}"))?;
    }
    if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut unzipped = vec![];
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut unzipped)
            .map_err(|e| format!("not gzip: {e}"))?;
        bytes = unzipped;
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("not a release document: {e}"))
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

    #[test]
    fn a_release_document_is_decoded_as_helm_encodes_it() {
        use base64::Engine;
        use std::io::Write;
        let engine = base64::engine::general_purpose::STANDARD;
        let document = json!({"name": "bsr", "version": 3, "config": {"a": 1}});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(document.to_string().as_bytes()).unwrap();
        let helms = engine.encode(gz.finish().unwrap());
        let decode = decode::<serde_json::Value>;
        assert_eq!(decode(&helms, false).unwrap(), document, "a ConfigMap holds helm's base64");
        assert_eq!(decode(&engine.encode(&helms), true).unwrap(), document, "a Secret's data is base64 again");
        let uncompressed = engine.encode(document.to_string());
        assert_eq!(decode(&uncompressed, false).unwrap(), document);
        assert!(decode("not base64!", false).unwrap_err().contains("base64"));
        assert!(decode(&engine.encode("{"), false).unwrap_err().contains("release document"));
        // Parsed once, into the type asked for: a document that does not fit it is refused.
        assert!(super::decode::<u64>(&helms, false).unwrap_err().contains("release document"));
    }
}
