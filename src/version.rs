//! Chart versions as helm and registries spell them.
//!
//! `semver` rejects a leading `v`, and OCI tags cannot hold `+`, so registries store
//! `1.2.3+build` as `1.2.3_build` (helm reads `_` back as `+` when it lists tags). This
//! wrapper accepts both spellings, orders by semver precedence, and remembers the spelling
//! it was given: `helm upgrade --version` must be handed the tag the source really has.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A chart version: semver precedence, original spelling kept for helm.
#[derive(Clone, Debug)]
pub struct ChartVersion {
    semver: semver::Version,
    original: String,
}

/// A (major, minor) pair: the unit vendors' upgrade rules count in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u64,
    pub minor: u64,
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a chart version: {reason} (expected MAJOR.MINOR.PATCH, e.g. 1.2.3 or v1.2.3)")]
pub struct VersionError {
    pub input: String,
    pub reason: String,
}

impl ChartVersion {
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let trimmed = input.trim();
        let bare = trimmed.strip_prefix('v').unwrap_or(trimmed);
        // OCI tags spell build metadata with `_`; `_` is not valid anywhere else in semver.
        let normalised = bare.replace('_', "+");
        semver::Version::parse(&normalised)
            .map(|semver| ChartVersion { semver, original: trimmed.to_string() })
            .map_err(|e| VersionError { input: input.to_string(), reason: e.to_string() })
    }

    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }

    /// The spelling the source used, for `helm upgrade --version`.
    pub fn original(&self) -> &str {
        &self.original
    }

    pub fn minor(&self) -> Minor {
        Minor { major: self.semver.major, minor: self.semver.minor }
    }

    pub fn is_prerelease(&self) -> bool {
        !self.semver.pre.is_empty()
    }
}

impl fmt::Display for ChartVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl FromStr for ChartVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// Equality and order follow semver precedence, with build metadata as a final tie-break
// (semver::Version's own Ord), so `v1.2.3` and `1.2.3` are the same version.
impl PartialEq for ChartVersion {
    fn eq(&self, other: &Self) -> bool {
        self.semver == other.semver
    }
}
impl Eq for ChartVersion {}
impl PartialOrd for ChartVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ChartVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.semver.cmp(&other.semver)
    }
}
impl std::hash::Hash for ChartVersion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.semver.hash(state)
    }
}

impl Serialize for ChartVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for ChartVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChartVersion::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What `--to` names: a version, or (helm users type `--to 1.3`) a minor, which the plan
/// then asks to be made exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    Exact(ChartVersion),
    Minor(Minor),
}

impl VersionSpec {
    pub fn parse(input: &str) -> Result<VersionSpec, VersionError> {
        match ChartVersion::parse(input) {
            Ok(v) => Ok(VersionSpec::Exact(v)),
            Err(e) => {
                let bare = input.trim().trim_start_matches('v');
                match bare.split_once('.') {
                    Some((major, minor)) if !minor.contains('.') => match (major.parse(), minor.parse()) {
                        (Ok(major), Ok(minor)) => Ok(VersionSpec::Minor(Minor { major, minor })),
                        _ => Err(e),
                    },
                    _ => Err(e),
                }
            }
        }
    }
}

/// Parse a comma-separated list such as `--versions 1.0.4,1.1.0,v1.2.0`.
pub fn parse_list(list: &str) -> Result<Vec<ChartVersion>, VersionError> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(ChartVersion::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ChartVersion {
        ChartVersion::parse(s).unwrap()
    }

    #[test]
    fn accepts_v_prefix_and_keeps_spelling() {
        assert_eq!(v("v1.2.3"), v("1.2.3"));
        assert_eq!(v("v1.2.3").original(), "v1.2.3");
        assert_eq!(v("v1.2.3").to_string(), "v1.2.3");
    }

    #[test]
    fn oci_underscore_reads_as_build_metadata() {
        let tag = v("1.2.3_build.7");
        assert_eq!(tag.semver().build.as_str(), "build.7");
        assert_eq!(tag.original(), "1.2.3_build.7");
    }

    #[test]
    fn prerelease_sorts_before_release() {
        assert!(v("1.5.0-rc.1") < v("1.5.0"));
        assert!(v("1.5.0-rc.1").is_prerelease());
        assert!(!v("1.5.0").is_prerelease());
    }

    #[test]
    fn rejects_malformed_with_a_hint() {
        let err = ChartVersion::parse("1.2").unwrap_err();
        assert!(err.to_string().contains("expected MAJOR.MINOR.PATCH"), "{err}");
        assert!(ChartVersion::parse("latest").is_err());
        assert!(ChartVersion::parse("").is_err());
    }

    #[test]
    fn a_target_may_name_a_minor() {
        assert_eq!(VersionSpec::parse("1.3"), Ok(VersionSpec::Minor(Minor { major: 1, minor: 3 })));
        assert_eq!(VersionSpec::parse("v2.0"), Ok(VersionSpec::Minor(Minor { major: 2, minor: 0 })));
        assert_eq!(VersionSpec::parse("1.3.2"), Ok(VersionSpec::Exact(v("1.3.2"))));
        assert!(VersionSpec::parse("1").is_err() && VersionSpec::parse("1.x").is_err());
    }

    #[test]
    fn parses_lists() {
        let list = parse_list("1.0.4, v1.1.0,,1.2.0").unwrap();
        assert_eq!(list.len(), 3);
        assert!(parse_list("1.0.4,nope").is_err());
    }
}
