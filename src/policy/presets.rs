//! Built-in presets: the YAML files under `policies/`, embedded in the binary so the
//! plugin works offline and air-gapped, and printable so users can copy one.

/// (name, YAML) of every preset, in the order `--list-policies` prints them.
const PRESETS: &[(&str, &str)] = &[
    ("bsr", include_str!("../../policies/bsr.yaml")),
    ("sourcegraph", include_str!("../../policies/sourcegraph.yaml")),
    ("coder", include_str!("../../policies/coder.yaml")),
    ("gitlab", include_str!("../../policies/gitlab.yaml")),
    ("sequential-minor", include_str!("../../policies/sequential-minor.yaml")),
];

/// The policy used for charts no preset names.
pub const FALLBACK: &str = "sequential-minor";

pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _)| *name).collect()
}

pub fn text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// All presets, parsed. They are validated by the test suite, so a failure here is a bug.
pub fn all() -> Vec<super::Policy> {
    PRESETS
        .iter()
        .map(|(name, text)| {
            super::parse_from(text, super::Origin::Preset { name: name.to_string() })
                .unwrap_or_else(|e| panic!("built-in preset {name} is invalid: {e}"))
        })
        .collect()
}

/// The preset for a chart name: the one whose `charts` lists it, else the fallback.
pub fn for_chart(chart_name: &str) -> super::Policy {
    let all = all();
    let fallback = all.iter().find(|p| p.name == FALLBACK).cloned().expect("fallback preset exists");
    all.into_iter().find(|p| p.charts.iter().any(|c| c == chart_name)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_named_like_its_file() {
        for policy in all() {
            assert!(names().contains(&policy.name.as_str()), "preset file declares name {}", policy.name);
        }
        assert_eq!(all().len(), PRESETS.len());
    }

    #[test]
    fn chart_names_pick_presets() {
        assert_eq!(for_chart("bsr").name, "bsr");
        assert_eq!(for_chart("sourcegraph").name, "sourcegraph");
        assert_eq!(for_chart("coder").name, "coder");
        assert_eq!(for_chart("gitlab").name, "gitlab");
        assert_eq!(for_chart("some-other-chart").name, "sequential-minor");
    }
}
