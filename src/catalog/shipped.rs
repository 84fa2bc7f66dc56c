//! The upgrade policy a vendor ships inside its chart package.
//!
//! A chart names its policy with the `Chart.yaml` annotation [`POLICY_ANNOTATION`]
//! (`helm-safe-upgrade/policy: upgrade-policy.yaml`); the file sits at the chart's top
//! level, beside `Chart.yaml`. The archive comes from a chart source, so everything in it
//! is untrusted: only a plain file name is accepted (a path could reach into the chart's
//! templates or out of it), the file is read with the same size bound as a policy file
//! (`MAX_POLICY_BYTES`), and a name that is not there is an error rather than "no policy"
//! (the vendor meant to ship one). This module reads the archive; parsing and validating
//! the policy is `crate::policy`'s. It must not print or spawn.

use std::path::Path;

use serde::Deserialize;

use super::dir::{top_files, top_files_up_to};
use crate::policy::MAX_POLICY_BYTES;

/// The `Chart.yaml` annotation that names the chart's policy file.
pub const POLICY_ANNOTATION: &str = "helm-safe-upgrade/policy";

/// A policy file found in a chart package: its name (the annotation's value) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippedPolicy {
    pub file: String,
    pub text: String,
}

/// The policy `archive` (a packaged chart) ships, or None when its `Chart.yaml` names
/// none. The error is a reason, for a message that names the chart and version.
pub fn read(archive: &Path) -> Result<Option<ShippedPolicy>, String> {
    let chart_yaml = top_files(archive, &["Chart.yaml"])?
        .pop()
        .ok_or_else(|| "the archive has no <chart>/Chart.yaml (is it a packaged chart?)".to_string())?;
    let Some(file) = policy_file_named(&chart_yaml.1)? else { return Ok(None) };
    let (_, text) = top_files_up_to(archive, &[&file], MAX_POLICY_BYTES)?.pop().ok_or_else(|| {
        format!(
            "its Chart.yaml names the policy file {file} (annotation {POLICY_ANNOTATION}), but the archive has no such file at its top level"
        )
    })?;
    Ok(Some(ShippedPolicy { file, text }))
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(default)]
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The policy file `Chart.yaml` names, checked to be a plain file name.
pub fn policy_file_named(chart_yaml: &str) -> Result<Option<String>, String> {
    let parsed: Annotations =
        serde_saphyr::from_str(chart_yaml).map_err(|e| format!("its Chart.yaml is not valid YAML: {e}"))?;
    let Some(value) = parsed.annotations.as_ref().and_then(|a| a.get(POLICY_ANNOTATION)) else { return Ok(None) };
    let name = value.as_str().ok_or_else(|| {
        format!("its Chart.yaml annotation {POLICY_ANNOTATION} is {value}, not a file name (annotations are strings)")
    })?;
    plain_file_name(name).map(|n| Some(n.to_string())).map_err(|why| {
        format!(
            "its Chart.yaml annotation {POLICY_ANNOTATION} names {:?}: {why}; only a file name at the chart's top level is accepted (no `/`, no `..`)",
            crate::text::one_line(name)
        )
    })
}

/// `name` if it names a file at the chart's top level and nothing else: not empty, no
/// directory separator, no `..` (nor `.`), no control characters, at most 255 bytes.
pub fn plain_file_name(name: &str) -> Result<&str, &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("it is a path");
    }
    if name == "." || name.contains("..") {
        return Err("it contains `..`");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    if name.trim() != name {
        return Err("it starts or ends with white space");
    }
    if name.len() > 255 {
        return Err("it is longer than 255 bytes");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::super::dir::testing::tgz;
    use super::*;

    const NAMED: &str = "apiVersion: v2\nname: vendorapp\nversion: 1.3.0\nannotations:\n  helm-safe-upgrade/policy: upgrade-policy.yaml\n  other/key: x\n";

    fn archive(files: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendorapp-1.3.0.tgz");
        std::fs::write(&path, tgz("vendorapp", files)).unwrap();
        (dir, path)
    }

    #[test]
    fn the_annotation_names_a_file_at_the_top_of_the_chart() {
        let (_dir, path) = archive(&[
            ("Chart.yaml", NAMED),
            ("templates/upgrade-policy.yaml", "not this one"),
            ("upgrade-policy.yaml", "name: vendor\n"),
        ]);
        let found = read(&path).unwrap().unwrap();
        assert_eq!(found, ShippedPolicy { file: "upgrade-policy.yaml".into(), text: "name: vendor\n".into() });
    }

    #[test]
    fn a_chart_without_the_annotation_ships_no_policy() {
        let plain = "apiVersion: v2\nname: bsr\nversion: 1.0.0\nannotations:\n  bsr.example/schema-version: \"210\"\n";
        for chart_yaml in [plain, "apiVersion: v2\nname: bsr\nversion: 1.0.0\n"] {
            let (_dir, path) = archive(&[("Chart.yaml", chart_yaml), ("upgrade-policy.yaml", "x")]);
            assert_eq!(read(&path).unwrap(), None);
        }
    }

    #[test]
    fn a_named_file_missing_from_the_archive_is_an_error() {
        // Only in a subfolder is not at the top level.
        let (_dir, path) = archive(&[("Chart.yaml", NAMED), ("files/upgrade-policy.yaml", "x")]);
        let err = read(&path).unwrap_err();
        assert!(err.contains("names the policy file upgrade-policy.yaml"), "{err}");
        assert!(err.contains("has no such file at its top level"), "{err}");
    }

    #[test]
    fn only_plain_file_names_are_accepted() {
        for good in ["upgrade-policy.yaml", "policy", ".policy.yaml", "a b.yaml"] {
            assert_eq!(plain_file_name(good), Ok(good));
        }
        for (bad, why) in [
            ("", "it is empty"),
            ("../etc/passwd", "it is a path"),
            ("templates/policy.yaml", "it is a path"),
            ("/upgrade-policy.yaml", "it is a path"),
            ("policy\\x.yaml", "it is a path"),
            ("..", "it contains `..`"),
            (".", "it contains `..`"),
            ("up..grade.yaml", "it contains `..`"),
            ("policy\n.yaml", "it contains control characters"),
            ("policy\u{1b}[2J", "it contains control characters"),
            (" policy.yaml", "it starts or ends with white space"),
        ] {
            assert_eq!(plain_file_name(bad), Err(why), "{bad:?}");
        }
        assert!(plain_file_name(&"p".repeat(256)).is_err());
    }

    #[test]
    fn a_bad_annotation_is_refused_by_name() {
        let chart = |value: &str| {
            format!("apiVersion: v2\nname: x\nversion: 1.0.0\nannotations:\n  helm-safe-upgrade/policy: {value}\n")
        };
        let err = policy_file_named(&chart("../../secrets.yaml")).unwrap_err();
        assert_eq!(
            err,
            "its Chart.yaml annotation helm-safe-upgrade/policy names \"../../secrets.yaml\": it is a path; only a file name at the chart's top level is accepted (no `/`, no `..`)"
        );
        let err = policy_file_named(&chart("[a, b]")).unwrap_err();
        assert!(err.contains("not a file name"), "{err}");
        let err = policy_file_named(&chart("\"\\e[2Jx\"")).unwrap_err();
        assert!(err.contains("\\x1b[2Jx") && !err.contains('\u{1b}'), "escaped when quoted: {err}");
        assert_eq!(policy_file_named(&chart("upgrade-policy.yaml")), Ok(Some("upgrade-policy.yaml".into())));
    }

    #[test]
    fn the_policy_file_is_bounded_like_any_policy_file() {
        let big = "#".repeat(MAX_POLICY_BYTES as usize + 1);
        let (_dir, path) = archive(&[("Chart.yaml", NAMED), ("upgrade-policy.yaml", &big)]);
        let err = read(&path).unwrap_err();
        assert!(err.contains("upgrade-policy.yaml is larger than 1 MiB"), "{err}");
    }
}
