//! Planner tables: one test per rule of each vendor page in shared/seeds, through the
//! built-in presets. Quotes name the sentence of the page a test pins down.

mod common;

use common::*;
use helm_safe_upgrade::plan::{self, HopKind, SnapshotKnowledge, Step, Strategy};
use helm_safe_upgrade::policy::Policy;

/// BSR-like release train: every minor of 1.x has several patches, plus a 2.x.
const BSR: &str =
    "1.0.0,1.0.4,1.1.0,1.1.9,1.2.0,1.2.3,1.2.6,1.3.0,1.3.2,1.4.0,1.4.2,1.5.0,1.6.1,1.7.0,1.8.3,1.9.0,1.9.3,2.0.0,2.1.0";

/// A BSR policy as an operator would copy it: the preset plus schema versions.
fn bsr_with_schemas() -> helm_safe_upgrade::policy::Policy {
    let text = helm_safe_upgrade::policy::presets::text("bsr").unwrap().to_string()
        + "  - version: 1.1.9\n    schema: 231\n    app_version: 2.1.9\n  - version: 1.2.6\n    schema: 240\n    app_version: 2.2.6\n  - version: 1.3.0\n    schema: 250\n    app_version: 2.3.0\n";
    policy_yaml(&text)
}

mod bsr {
    use super::*;

    #[test]
    fn one_minor_at_a_time_stopping_at_the_latest_patch() {
        // "apply minor version upgrades one at a time (for example deploy 1.1.0, verify
        // deploy successful, deploy 1.2.0, verify deploy successful, etc.)"
        let plan = upgrade(&preset("bsr"), BSR, "1.0.4", "1.3.0").unwrap();
        assert_eq!(path(&plan), ["1.1.9", "1.2.6", "1.3.0"]);
        assert!(plan.hops.iter().all(|h| h.kind == HopKind::Minor && !h.downtime));
        assert_eq!(plan.strategy, Strategy::Sequential);
        assert!(!plan.downtime);
        for hop in &plan.hops {
            assert_eq!(actions(&hop.steps), ["deploy", "verify"]);
        }
    }

    #[test]
    fn from_x_0_0_straight_to_any_patch_of_the_next_minor() {
        // "if you're on version 1.0.0 then you can safely upgrade to 1.0.X or 1.1.X"
        let plan = upgrade(&preset("bsr"), BSR, "1.0.0", "1.1.9").unwrap();
        assert_eq!(path(&plan), ["1.1.9"]);
        let plan = upgrade(&preset("bsr"), BSR, "1.0.0", "1.0.4").unwrap();
        assert_eq!(path(&plan), ["1.0.4"]);
        assert_eq!(plan.hops[0].kind, HopKind::Patch);
    }

    #[test]
    fn fast_path_is_offered_from_three_minors() {
        // "note that this only saves you time if you are upgrading 3 or more minor versions"
        let two = upgrade(&preset("bsr"), BSR, "1.0.4", "1.2.6").unwrap();
        assert!(two.alternatives.is_empty(), "{:#?}", two.alternatives);
        let three = upgrade(&preset("bsr"), BSR, "1.0.4", "1.3.0").unwrap();
        assert_eq!(three.alternatives.len(), 1);
        assert_eq!(three.alternatives[0].strategy, Strategy::FastPath);
        assert_eq!(three.alternatives[0].flag.as_deref(), Some("--fast-path"));
        assert!(three.alternatives[0].downtime);
    }

    #[test]
    fn fast_path_follows_the_maintenance_mode_procedure() {
        // "1. deploy 1.0.0 with maintenance: true 2. Verify 3. Take a snapshot of the
        // Postgres database 4. Apply the latest version ... with maintenance mode disabled"
        let plan = upgrade_fast(&preset("bsr"), BSR, "1.0.4", "1.9.3").unwrap();
        assert_eq!(plan.strategy, Strategy::FastPath);
        assert!(plan.downtime);
        assert_eq!(plan.hops.len(), 1);
        let hop = &plan.hops[0];
        assert_eq!(hop.kind, HopKind::FastPath);
        assert_eq!(actions(&hop.steps), ["deploy", "verify", "snapshot", "deploy", "verify"]);
        match &hop.steps[0] {
            Step::Deploy { version, set, .. } => {
                assert_eq!(version.to_string(), "1.0.4", "maintenance goes on with the deployed version");
                assert_eq!(set.get("maintenance"), Some(&serde_json::Value::Bool(true)));
            }
            other => panic!("{other:?}"),
        }
        match &hop.steps[3] {
            Step::Deploy { version, set, .. } => {
                assert_eq!(version.to_string(), "1.9.3");
                assert!(set.is_empty(), "the target runs with maintenance omitted (off)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.alternatives[0].strategy, Strategy::Sequential);
        assert_eq!(plan.alternatives[0].hops, 9);
    }

    #[test]
    fn fast_path_below_three_minors_is_refused_with_the_sequential_path() {
        let r = refusal(upgrade_fast(&preset("bsr"), BSR, "1.0.4", "1.2.6"));
        assert_eq!(r.rule, "fast-path");
        assert!(r.message.contains("from 3 minors"), "{}", r.message);
        assert!(r.supported.contains("1.0.4 → 1.1.9 → 1.2.6"), "{}", r.supported);
    }

    #[test]
    fn majors_are_refused_naming_the_newest_of_the_current_major() {
        let r = refusal(upgrade(&preset("bsr"), BSR, "1.0.4", "2.1.0"));
        assert_eq!(r.rule, "major");
        assert!(r.message.contains("1.0.4 → 2.1.0 crosses a major"), "{}", r.message);
        assert_eq!(r.supported, "upgrade to 1.9.3, the newest 1.x");
    }

    #[test]
    fn patch_downgrade_just_deploys() {
        // "It's safe to downgrade to any previous patch version of the same major and minor
        // version ... All you need to do is deploy the previous patch version"
        let plan = rollback(&preset("bsr"), BSR, "1.1.9", Some("1.1.0"), "1.1.9").unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::PatchDowngrade);
        assert_eq!(actions(&plan.hops[0].steps), ["deploy", "verify"]);
        assert!(!plan.downtime);
    }

    #[test]
    fn minor_downgrade_runs_migratedownto_from_the_newer_binary_after_newer_pods_are_gone() {
        // "1. Deploy the version you want to roll back to 2. Ensure ... no more instances of
        // the newer version 3. Look up the schema version 4. run bufd migratedownto $VERSION
        // using the bufd binary you are rolling back from"
        let plan = rollback(&bsr_with_schemas(), BSR, "1.3.0", Some("1.2.6"), "1.3.0").unwrap();
        let hop = &plan.hops[0];
        assert_eq!(hop.kind, HopKind::MinorDowngrade);
        assert_eq!(actions(&hop.steps), ["deploy", "wait-gone", "run", "verify"]);
        match &hop.steps[1] {
            Step::WaitGone { version, selector, unfilled } => {
                assert_eq!(version.to_string(), "1.3.0");
                assert_eq!(selector, "app.kubernetes.io/instance=rel,helm.sh/chart=chart-1.3.0");
                assert!(unfilled.is_empty(), "{unfilled:?}");
            }
            other => panic!("{other:?}"),
        }
        let argv = run_argv(&hop.steps, "bufd migratedownto");
        assert_eq!(&argv[argv.len() - 3..], ["bufd", "migratedownto", "240"]);
        assert!(argv.contains(&"--image=us-docker.pkg.dev/buf-images-1/bsr/bufd:2.3.0".to_string()), "{argv:?}");
        assert!(plan.warnings.iter().any(|w| w.contains("permanent data loss")));
    }

    #[test]
    fn the_seed_example_uses_schema_222_for_1_1_0() {
        // "if an instance is on version 1.2.3 then you can downgrade back to 1.1.0 ... the
        // database schema version for 1.1.0 is 222"
        let plan = rollback(&preset("bsr"), BSR, "1.2.3", Some("1.1.0"), "1.2.3").unwrap();
        let argv = run_argv(&plan.hops[0].steps, "bufd migratedownto");
        assert_eq!(argv.last().unwrap(), "222");
    }

    #[test]
    fn a_downgrade_without_a_known_schema_is_refused_not_guessed() {
        let r = refusal(rollback(&preset("bsr"), BSR, "1.3.0", Some("1.2.6"), "1.3.0"));
        assert_eq!(r.rule, "catalog-schema");
        assert!(r.message.contains("schema version of 1.2.6"), "{}", r.message);
        assert!(r.supported.contains("catalog"), "{}", r.supported);
    }

    #[test]
    fn never_more_than_one_minor_below_the_newest_version_ever_deployed() {
        // "if you have an instance that started at 1.0.0 and you have upgraded it over time to
        // 1.3.0, we caution against rolling back earlier than 1.2.0"
        let policy = bsr_with_schemas();
        let r = refusal(rollback(&policy, BSR, "1.3.0", Some("1.1.9"), "1.3.0"));
        assert_eq!(r.rule, "downgrade-window");
        assert!(r.supported.contains("no further than 1.2.0"), "{}", r.supported);
        // Already back on 1.2.6: the window still counts from 1.3.0.
        let r = refusal(rollback(&policy, BSR, "1.2.6", Some("1.1.9"), "1.3.0"));
        assert_eq!(r.rule, "downgrade-window");
        // A patch downgrade inside the window is fine.
        let plan = rollback(&policy, BSR, "1.2.6", Some("1.2.0"), "1.3.0").unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::PatchDowngrade);
    }

    #[test]
    fn default_rollback_target_is_the_newest_earlier_successful_deploy() {
        let policy = bsr_with_schemas();
        let request = helm_safe_upgrade::plan::RollbackRequest {
            current: v("1.3.0"),
            target: None,
            newest_ever: v("1.3.0"),
            deployed_before: vec![v("1.0.4"), v("1.1.9"), v("1.2.6")],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let plan = helm_safe_upgrade::plan::plan_rollback(&policy, &versions(BSR), &request, &context()).unwrap();
        assert_eq!(plan.to.to_string(), "1.2.6");
    }
}

mod sourcegraph {
    use super::*;

    const SG: &str = "5.0.0,5.0.6,5.1.0,5.1.8,5.2.0,5.2.7,5.3.0,5.3.2,6.0.0,6.1.0";

    #[test]
    fn backup_first_then_one_minor_at_a_time() {
        // "We highly recommend creating a database backup before proceeding with an upgrade."
        let plan = upgrade(&preset("sourcegraph"), SG, "5.0.6", "5.2.7").unwrap();
        assert_eq!(path(&plan), ["5.1.8", "5.2.7"]);
        assert_eq!(actions(&plan.preflight), ["backup", "snapshot"]);
    }

    #[test]
    fn a_major_is_one_hop_from_the_last_minor_with_a_confirmation_first() {
        let plan = upgrade(&preset("sourcegraph"), SG, "5.1.8", "6.1.0").unwrap();
        assert_eq!(path(&plan), ["5.2.7", "5.3.2", "6.0.0", "6.1.0"]);
        let major = &plan.hops[2];
        assert_eq!(major.kind, HopKind::Major);
        match &major.steps[0] {
            Step::Confirm { message } => {
                assert!(message.contains("5.3.2 → 6.0.0 is a major upgrade"), "{message}");
                assert!(message.contains("https://sourcegraph.com/docs/CHANGELOG"), "{message}");
            }
            other => panic!("a major hop starts with a confirmation, got {other:?}"),
        }
        assert!(plan.warnings.iter().any(|w| w.contains("major")));
    }

    #[test]
    fn downgrade_stops_services_runs_the_newer_migrator_then_redeploys_and_checks_drift() {
        // "Services that connect to the databases must be disabled before running downgrade.
        //  Manifests must be reverted ... and reapplyed after the downgrade is complete."
        // "after any downgrade the databases are checked with the migrator drift command"
        let plan = rollback(&preset("sourcegraph"), SG, "5.3.2", Some("5.1.8"), "5.3.2").unwrap();
        let hop = &plan.hops[0];
        assert_eq!(hop.kind, HopKind::MinorDowngrade);
        assert!(hop.downtime);
        assert_eq!(actions(&hop.steps), ["run", "run", "deploy", "run", "verify"]);
        let stop = run_argv(&hop.steps, "stop services that use the databases");
        assert!(stop.contains(&"--replicas=0".to_string()));
        let downgrade = run_argv(&hop.steps, "migrator downgrade");
        assert!(
            downgrade.ends_with(&["downgrade".into(), "--from=v5.3.2".into(), "--to=v5.1.8".into()]),
            "{downgrade:?}"
        );
        let drift = run_argv(&hop.steps, "migrator drift");
        assert!(drift.contains(&"--version=v5.1.8".to_string()));
        assert!(plan.warnings.iter().any(|w| w.contains("irreversible")));
    }

    #[test]
    fn patch_rollback_reapplies_the_older_manifests() {
        let plan = rollback(&preset("sourcegraph"), SG, "5.3.2", Some("5.3.0"), "5.3.2").unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::PatchDowngrade);
        assert_eq!(actions(&plan.hops[0].steps), ["deploy", "verify"]);
    }
}

mod coder {
    use super::*;

    const CODER: &str = "2.14.0,2.14.3,2.15.0,2.15.1,2.16.0,2.17.2,3.0.0";

    #[test]
    fn a_snapshot_before_every_step_and_one_version_at_a_time() {
        // "we strongly recommend taking a snapshot of the database before upgrading"
        // "We recommend updating no more than one major version at a time (1.28 to 1.29)"
        let plan = upgrade(&preset("coder"), CODER, "2.14.3", "2.16.0").unwrap();
        assert_eq!(path(&plan), ["2.15.1", "2.16.0"]);
        for hop in &plan.hops {
            assert_eq!(actions(&hop.steps), ["snapshot", "deploy", "verify"]);
        }
    }

    #[test]
    fn going_back_means_restoring_the_snapshot() {
        // "roll back to an older version of Coder. Doing so requires you to make and use a
        // database snapshot since the database schema will be out of date."
        let plan = rollback(&preset("coder"), CODER, "2.16.0", Some("2.15.1"), "2.16.0").unwrap();
        assert_eq!(plan.strategy, Strategy::Restore);
        assert_eq!(plan.hops[0].kind, HopKind::Restore);
        assert_eq!(actions(&plan.hops[0].steps), ["run", "confirm", "deploy", "verify"]);
        // Even a patch step back is a restore: the page offers no other way.
        let plan = rollback(&preset("coder"), CODER, "2.14.3", Some("2.14.0"), "2.14.3").unwrap();
        assert_eq!(plan.strategy, Strategy::Restore);
    }

    #[test]
    fn without_a_recorded_snapshot_a_restore_is_refused() {
        let request = helm_safe_upgrade::plan::RollbackRequest {
            current: v("2.16.0"),
            target: Some(v("2.15.1")),
            newest_ever: v("2.16.0"),
            deployed_before: vec![],
            snapshot: SnapshotKnowledge::None,
            by_revision: None,
        };
        let r =
            refusal(helm_safe_upgrade::plan::plan_rollback(&preset("coder"), &versions(CODER), &request, &context()));
        assert!(r.supported.contains("no snapshot was recorded"), "{}", r.supported);
    }
}

mod generic {
    use super::*;

    const APP: &str = "1.5.0,1.5.2,1.6.0,1.7.0,1.7.1,2.0.0,2.1.0,3.0.0";

    #[test]
    fn patch_and_minor_direct_skipping_minors_sequentially_with_backup_and_downtime() {
        // "Patch versions: Direct upgrade. Minor versions: Direct upgrade. Skipping minor
        // versions (1.5.x → 1.7.x): Upgrade sequentially." "Create a complete backup"
        let policy = preset("sequential-minor");
        assert_eq!(path(&upgrade(&policy, APP, "1.5.0", "1.5.2").unwrap()), ["1.5.2"]);
        assert_eq!(path(&upgrade(&policy, APP, "1.6.0", "1.7.1").unwrap()), ["1.7.1"]);
        let plan = upgrade(&policy, APP, "1.5.2", "1.7.1").unwrap();
        assert_eq!(path(&plan), ["1.6.0", "1.7.1"]);
        assert_eq!(actions(&plan.preflight), ["backup", "snapshot"]);
        assert!(plan.downtime, "the guide says the API is unavailable during an upgrade");
    }

    #[test]
    fn majors_one_at_a_time() {
        let plan = upgrade(&preset("sequential-minor"), APP, "1.7.1", "3.0.0").unwrap();
        assert_eq!(path(&plan), ["2.0.0", "2.1.0", "3.0.0"]);
        let kinds: Vec<HopKind> = plan.hops.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [HopKind::Major, HopKind::Minor, HopKind::Major]);
    }

    #[test]
    fn downgrading_is_a_backup_restoration() {
        // "Downgrading: Not supported, use backup restoration"
        let plan = rollback(&preset("sequential-minor"), APP, "1.7.1", Some("1.6.0"), "1.7.1").unwrap();
        assert_eq!(plan.strategy, Strategy::Restore);
        assert!(plan.downtime);
    }
}

mod inputs {
    use super::*;

    #[test]
    fn unavailable_target_is_bad_input_listing_what_exists() {
        let (message, hint) = bad_request(upgrade(&preset("bsr"), BSR, "1.0.4", "1.2.9"));
        assert!(message.contains("1.2.9 is not available"), "{message}");
        assert_eq!(hint, "available in 1.2: 1.2.0, 1.2.3, 1.2.6");
    }

    #[test]
    fn an_unavailable_target_names_only_the_newest_ten_of_its_minor() {
        let list: Vec<String> = (0..5_000).map(|p| format!("1.2.{p}")).collect();
        let (_, hint) = bad_request(upgrade(&preset("bsr"), &list.join(","), "1.2.0", "1.2.5000"));
        assert_eq!(
            hint,
            "available in 1.2: 4,990 older, 1.2.4990, 1.2.4991, 1.2.4992, 1.2.4993, 1.2.4994, 1.2.4995, 1.2.4996, 1.2.4997, 1.2.4998, 1.2.4999"
        );
    }

    #[test]
    fn older_target_points_to_safe_rollback() {
        let (_, hint) = bad_request(upgrade(&preset("bsr"), BSR, "1.3.0", "1.2.6"));
        assert!(hint.contains("helm safe-rollback"), "{hint}");
    }

    #[test]
    fn same_version_is_an_empty_plan() {
        let plan = upgrade(&preset("bsr"), BSR, "1.3.0", "1.3.0").unwrap();
        assert!(plan.hops.is_empty());
        assert!(plan.warnings[0].contains("nothing to do"));
    }

    #[test]
    fn pre_releases_only_with_devel_and_never_as_intermediate_stops() {
        let list = format!("{BSR},1.2.7-rc.1,1.4.0-rc.1");
        let (message, hint) = bad_request(upgrade(&preset("bsr"), &list, "1.1.9", "1.4.0-rc.1"));
        assert!(message.contains("pre-release"), "{message}");
        assert!(hint.contains("--devel"));
        let request = helm_safe_upgrade::plan::UpgradeRequest {
            current: v("1.1.9"),
            target: v("1.4.0-rc.1"),
            fast_path: false,
            devel: true,
        };
        let plan =
            helm_safe_upgrade::plan::plan_upgrade(&preset("bsr"), &versions(&list), &request, &context()).unwrap();
        assert_eq!(path(&plan), ["1.2.6", "1.3.2", "1.4.0-rc.1"]);
        // Without --devel, a pre-release in the list is never a stop.
        let plan = upgrade(&preset("bsr"), &list, "1.1.9", "1.3.0").unwrap();
        assert_eq!(path(&plan), ["1.2.6", "1.3.0"]);
    }

    #[test]
    fn v_prefixed_and_oci_spelled_versions_plan_like_any_other() {
        let plan = upgrade(&preset("bsr"), "v1.0.4,v1.1.9,1.2.6_build.1", "1.0.4", "1.2.6_build.1").unwrap();
        assert_eq!(path(&plan), ["v1.1.9", "1.2.6_build.1"]);
    }

    #[test]
    fn a_missing_minor_is_crossed_with_a_warning() {
        let plan = upgrade(&preset("bsr"), "1.0.4,1.2.0,1.2.6,1.3.0", "1.0.4", "1.3.0").unwrap();
        assert_eq!(path(&plan), ["1.2.6", "1.3.0"]);
        assert!(plan.warnings.iter().any(|w| w.contains("no 1.1.x")), "{:?}", plan.warnings);
    }
}

mod custom_rules {
    use super::*;

    fn policy(upgrade_rules: &str) -> helm_safe_upgrade::policy::Policy {
        policy_yaml(&format!(
            "name: custom\ndescription: test\nupgrade:\n{upgrade_rules}\n  procedure: p\ndowngrade: {{}}\nprocedures:\n  p:\n    steps:\n      - deploy: {{}}\n"
        ))
    }

    const LIST: &str = "1.0.0,1.1.0,1.1.5,1.2.0,1.2.3,1.2.8,1.3.0,1.4.0,1.4.4,1.5.0,1.6.0";

    #[test]
    fn required_stops_are_on_every_path() {
        let p = policy("  max_minor_step: 2\n  major: refuse\n  required_stops: [\"1.2.3\", \"1.4\"]");
        let plan = upgrade(&p, LIST, "1.0.0", "1.6.0").unwrap();
        assert_eq!(path(&plan), ["1.2.3", "1.4.4", "1.6.0"]);
    }

    #[test]
    fn an_exact_stop_satisfies_a_minor_stop_of_the_same_minor() {
        // Found by the property test: the two must not become two waypoints.
        let p = policy(
            "  max_minor_step: 1\n  major: refuse\n  stop_at: earliest-patch\n  required_stops: [\"1.2.3\", \"1.2\"]",
        );
        let plan = upgrade(&p, LIST, "1.1.5", "1.3.0").unwrap();
        assert_eq!(path(&plan), ["1.2.3", "1.3.0"]);
    }

    #[test]
    fn a_required_stop_the_source_lacks_is_refused() {
        let p = policy("  max_minor_step: 1\n  major: refuse\n  required_stops: [\"1.2.5\"]");
        let r = refusal(upgrade(&p, LIST, "1.0.0", "1.6.0"));
        assert_eq!(r.rule, "required-stop");
    }

    #[test]
    fn wider_steps_and_earliest_patch() {
        let p = policy("  max_minor_step: 2\n  major: refuse\n  stop_at: earliest-patch");
        let plan = upgrade(&p, LIST, "1.0.0", "1.6.0").unwrap();
        assert_eq!(path(&plan), ["1.2.0", "1.4.0", "1.6.0"]);
    }
}

/// Chart sources are hostile input: absurd version numbers must cost what the number of
/// versions costs, never what the numbers span (found by an adversarial probe: a minor of
/// 20240101 took 1.6 GB and printed 272 MB of gap warnings; 99999999999 aborted on a
/// 2.4 TB allocation; u64::MAX panicked on capacity overflow).
mod absurd_versions {
    use super::*;

    const MAX: u64 = u64::MAX;

    fn json_len(plan: &helm_safe_upgrade::plan::Plan) -> usize {
        serde_json::to_string(plan).unwrap().len()
    }

    #[test]
    fn a_date_like_minor_is_one_step_with_one_constant_size_gap_warning() {
        let plan = upgrade(&preset("sequential-minor"), "1.0.0,1.20240101.0", "1.0.0", "1.20240101.0").unwrap();
        assert_eq!(path(&plan), ["1.20240101.0"]);
        assert_eq!(
            plan.warnings,
            [
                "the chart source offers no 1.1.x–1.20240100.x (20,240,100 minors) between 1.0.0 and 1.20240101.0: the path treats 1.0 → 1.20240101 as one minor step; if the vendor did release them, make them available and plan again"
            ]
        );
        assert!(json_len(&plan) < 2_000, "{}", json_len(&plan));
    }

    #[test]
    fn huge_minors_up_to_u64_max_plan_without_aborting() {
        for huge in ["99999999999", "18446744073709551614", "18446744073709551615"] {
            let to = format!("1.{huge}.0");
            for policy in ["sequential-minor", "bsr", "sourcegraph", "coder"] {
                let plan = upgrade(&preset(policy), &format!("1.0.0,1.0.5,{to}"), "1.0.0", &to).unwrap();
                // The huge minor is the next one offered: one hop, whatever its number.
                assert_eq!(path(&plan), [to.as_str()], "{policy}");
                assert_eq!(plan.warnings.len(), 1, "{policy}: {:?}", plan.warnings);
                assert!(plan.warnings[0].contains(" minors) between 1.0.0 and "), "{}", plan.warnings[0]);
                assert!(json_len(&plan) < 4_000, "{policy}: {}", json_len(&plan));
            }
        }
        // Neighbours at the very top: no gap, no overflow.
        let list = format!("1.{}.3,1.{MAX}.0,1.{MAX}.7", MAX - 1);
        let plan = upgrade(&preset("bsr"), &list, &format!("1.{}.3", MAX - 1), &format!("1.{MAX}.7")).unwrap();
        assert_eq!(path(&plan), [format!("1.{MAX}.7")]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn majors_at_u64_max_neither_overflow_nor_invent_a_missing_major() {
        let top = format!("{MAX}.0.0,{MAX}.1.0");
        let plan = upgrade(&preset("sequential-minor"), &top, &format!("{MAX}.0.0"), &format!("{MAX}.1.0")).unwrap();
        assert_eq!(path(&plan), [format!("{MAX}.1.0")]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

        let plan =
            upgrade(&preset("sequential-minor"), &format!("1.0.0,{MAX}.0.0"), "1.0.0", &format!("{MAX}.0.0")).unwrap();
        assert_eq!(path(&plan), [format!("{MAX}.0.0")]);
        assert!(
            plan.warnings.iter().any(|w| w.starts_with(
                "the chart source offers no 2.x–18446744073709551614.x (18,446,744,073,709,551,613 majors)"
            )),
            "{:?}",
            plan.warnings
        );
        let r = refusal(upgrade(&preset("bsr"), &format!("1.0.0,1.{MAX}.0,{MAX}.0.0"), "1.0.0", &format!("{MAX}.0.0")));
        assert_eq!(r.supported, format!("upgrade to 1.{MAX}.0, the newest 1.x"));
    }

    #[test]
    fn short_gaps_keep_their_names_one_by_one() {
        let plan = upgrade(&preset("bsr"), "1.0.4,1.3.0,1.7.0", "1.0.4", "1.7.0").unwrap();
        assert_eq!(
            plan.warnings,
            [
                "the chart source offers no 1.1.x, 1.2.x between 1.0.4 and 1.7.0: the path treats 1.0 → 1.3 as one minor step; if the vendor did release them, make them available and plan again",
                "the chart source offers no 1.4.x, 1.5.x, 1.6.x between 1.0.4 and 1.7.0: the path treats 1.3 → 1.7 as one minor step; if the vendor did release them, make them available and plan again",
            ]
        );
        let plan = upgrade(&preset("sequential-minor"), "1.0.0,3.0.0,7.0.0", "1.0.0", "7.0.0").unwrap();
        assert!(
            plan.warnings.contains(&"the chart source offers no 2.x: the path goes from 1.0 straight to 3.0".into())
        );
        assert!(
            plan.warnings
                .contains(&"the chart source offers no 4.x, 5.x, 6.x: the path goes from 3.0 straight to 7.0".into())
        );
    }

    #[test]
    fn many_scattered_gaps_are_summarised_after_the_first_few() {
        let list: Vec<String> = (0..40u64).map(|i| format!("1.{}.0", i * i * 1_000_003)).collect();
        let plan = upgrade(&preset("bsr"), &list.join(","), "1.0.0", list.last().unwrap()).unwrap();
        assert_eq!(plan.hops.len(), 39);
        assert_eq!(plan.warnings.len(), 5, "{:#?}", plan.warnings);
        assert!(
            plan.warnings[4].starts_with("and 35 more gaps in the minors the chart source offers between 1.0.0 and ")
        );
    }

    #[test]
    fn rollback_windows_hold_at_the_top_of_the_range() {
        let (newest, below, far) = (format!("1.{MAX}.0"), format!("1.{}.3", MAX - 1), format!("1.{}.0", MAX - 2));
        let list = format!("{far},{below},{newest}");
        let policy = bsr_with_schemas_for(&[&below, &far]);
        let plan = rollback(&policy, &list, &newest, Some(&below), &newest).unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::MinorDowngrade);
        let r = refusal(rollback(&policy, &list, &newest, Some(&far), &newest));
        assert_eq!(r.rule, "downgrade-window");
        assert!(r.message.contains("is 2 minors below"), "{}", r.message);
        assert!(r.supported.contains(&format!("no further than 1.{}.0", MAX - 1)), "{}", r.supported);
        // From a date-like minor to the bottom: one refusal of constant size.
        let r = refusal(rollback(&policy, "1.0.0,1.20240101.0", "1.20240101.0", Some("1.0.0"), "1.20240101.0"));
        assert!(r.message.contains("is 20240101 minors below"), "{}", r.message);
        // Across majors at the top: never planned, never overflowing.
        let r = refusal(rollback(
            &policy,
            &format!("1.0.0,{MAX}.{MAX}.{MAX}"),
            &format!("{MAX}.{MAX}.{MAX}"),
            Some("1.0.0"),
            &format!("{MAX}.{MAX}.{MAX}"),
        ));
        assert_eq!(r.rule, "downgrade-window");
    }

    #[test]
    fn required_stops_with_huge_minors_are_found_or_refused_by_search() {
        let policy = |stops: &str| {
            policy_yaml(&format!(
                "name: custom\ndescription: test\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  required_stops: [{stops}]\n  procedure: p\ndowngrade: {{}}\nprocedures:\n  p:\n    steps:\n      - deploy: {{}}\n"
            ))
        };
        let list = format!("1.0.0,1.99999999999.2,1.{}.0,1.{MAX}.0", MAX - 1);
        let plan = upgrade(&policy("\"1.99999999999\""), &list, "1.0.0", &format!("1.{MAX}.0")).unwrap();
        assert_eq!(path(&plan), ["1.99999999999.2".to_string(), format!("1.{}.0", MAX - 1), format!("1.{MAX}.0")]);
        let r = refusal(upgrade(&policy("\"1.99999999998\""), &list, "1.0.0", &format!("1.{MAX}.0")));
        assert!(r.message.contains("offers no 1.99999999998.x release"), "{}", r.message);
        let r = refusal(upgrade(&policy(&format!("\"1.{}.1\"", MAX - 1)), &list, "1.0.0", &format!("1.{MAX}.0")));
        assert!(r.message.contains("which the chart source does not offer"), "{}", r.message);
    }

    #[test]
    fn a_pre_release_required_stop_is_refused_for_what_it_is() {
        let p = policy_yaml(
            "name: custom\ndescription: test\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  required_stops: [\"1.1.0-rc.1\"]\n  procedure: p\ndowngrade: {}\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n",
        );
        let r = refusal(upgrade(&p, "1.0.0,1.1.0-rc.1,1.1.0,1.2.0", "1.0.0", "1.2.0"));
        assert_eq!(r.rule, "required-stop");
        assert!(r.message.contains("a pre-release"), "{}", r.message);
    }

    #[test]
    fn twenty_thousand_offered_minors_plan_in_linear_time() {
        // Guards the per-hop lookups (the latest patch of a minor, the last minor of a
        // major, app versions): linear scans made this quadratic, 0.7 s in a release
        // build. The bound is loose on purpose: a debug build on a busy 2-core machine.
        let list: Vec<String> = (0..20_000u64).map(|i| format!("1.{i}.{}", i % 3)).collect();
        let started = std::time::Instant::now();
        let plan = upgrade(&preset("sequential-minor"), &list.join(","), "1.0.0", list.last().unwrap()).unwrap();
        let took = started.elapsed();
        assert_eq!(plan.hops.len(), 19_999);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert!(took < std::time::Duration::from_secs(5), "planning 20,000 hops took {took:?}");
    }
}

/// The BSR preset with a schema for each of `versions`, so down-migrations plan.
fn bsr_with_schemas_for(versions: &[&str]) -> helm_safe_upgrade::policy::Policy {
    let mut text = helm_safe_upgrade::policy::presets::text("bsr").unwrap().to_string();
    for (i, v) in versions.iter().enumerate() {
        text.push_str(&format!("  - version: {v}\n    schema: {}\n    app_version: 9.{i}.0\n", 300 + i));
    }
    policy_yaml(&text)
}

/// The policy's `values:` rules along a path (the generic guide: "Some versions require
/// configuration changes … when upgrading to chart version 4.0.0 or later, add: …").
mod value_rules {
    use super::*;
    use helm_safe_upgrade::plan::values::{ValuesInput, carried_at, carried_for, carried_hop};
    use helm_safe_upgrade::plan::{Context, Direction, Plan, PlanError, RollbackRequest, UpgradeRequest};
    use helm_safe_upgrade::policy::values::KeyPath;
    use serde_json::json;

    const TRAIN: &str = "3.8.0,3.9.0,4.0.0,4.1.0";

    fn policy_with(rules: &str) -> helm_safe_upgrade::policy::Policy {
        // The preset ends with an empty `values: []`.
        let preset = helm_safe_upgrade::policy::presets::text("sequential-minor").unwrap().replace("values: []\n", "");
        let text = preset + "values:\n" + rules;
        policy_yaml(&text)
    }

    const REDIS: &str = "  - version: 4.0.0\n    require: redis.host\n    message: \"when upgrading to chart version 4.0.0 or later, add redis.host\"\n";
    const RENAME: &str = "  - version: 3.9.0\n    rename: {from: postgres.host, to: database.host}\n";

    fn live(values: serde_json::Value, sets: &[&str]) -> Context {
        let operator_sets = sets.iter().map(|s| KeyPath::parse(s).unwrap()).collect();
        Context { values: Some(ValuesInput { carried: values, operator_sets }), ..context() }
    }

    fn up(policy: &helm_safe_upgrade::policy::Policy, ctx: &Context, from: &str, to: &str) -> Result<Plan, PlanError> {
        let request = UpgradeRequest { current: v(from), target: v(to), fast_path: false, devel: false };
        helm_safe_upgrade::plan::plan_upgrade(policy, &versions(TRAIN), &request, ctx)
    }

    #[test]
    fn a_required_value_missing_refuses_the_plan_with_the_vendors_words() {
        let policy = policy_with(REDIS);
        let refused = refusal(up(&policy, &live(json!({"replicaCount": 2}), &[]), "3.8.0", "4.1.0"));
        assert_eq!(refused.rule, "values-required");
        assert!(
            refused.message.contains("hop 2 (3.9.0 → 4.0.0): 4.0.0 requires `redis.host`: when upgrading to chart version 4.0.0 or later, add redis.host"),
            "{}",
            refused.message
        );
        assert!(refused.supported.contains("--set redis.host=VALUE"), "{}", refused.supported);
        // Met by the release's values, or by the operator's --set/-f on this run.
        let plan = up(&policy, &live(json!({"redis": {"host": "r:6379"}}), &[]), "3.8.0", "4.1.0").unwrap();
        assert_eq!(plan.hops[1].values.len(), 1, "the rule is shown at the hop that crosses it");
        assert!(plan.hops[0].values.is_empty() && plan.hops[2].values.is_empty());
        up(&policy, &live(json!({}), &["redis.host"]), "3.8.0", "4.1.0").unwrap();
        // Past 4.0.0 already: not this path's business.
        up(&policy, &live(json!({}), &[]), "4.0.0", "4.1.0").unwrap();
        // Offline: said, not checked.
        let plan = upgrade(&policy, TRAIN, "3.8.0", "4.1.0").unwrap();
        assert!(plan.warnings.iter().any(|w| w.contains("not checked offline")), "{:?}", plan.warnings);
    }

    #[test]
    fn a_rename_is_carried_to_every_later_hop_and_refused_onto_an_existing_key() {
        let policy = policy_with(RENAME);
        let values = json!({"postgres": {"host": "db", "port": 5432}});
        let plan = up(&policy, &live(values.clone(), &[]), "3.8.0", "4.1.0").unwrap();
        assert_eq!(plan.hops[0].values[0].describe(), "rename postgres.host → database.host");
        let hop1 = carried_at(&plan.hops, 0, Direction::Upgrade, &values).unwrap();
        assert_eq!(hop1, json!({"database": {"host": "db"}, "postgres": {"port": 5432}}));
        let hop3 = carried_at(&plan.hops, 2, Direction::Upgrade, &values).unwrap();
        assert_eq!(hop3, hop1, "carried on");
        // A procedure's deploy of a hop's start (maintenance mode at `from`) deploys the
        // older chart with the keys as they were before the hop's rules.
        let for_deploy =
            |hop: usize, version: &str| carried_for(&plan.hops, hop, &v(version), Direction::Upgrade, &values).unwrap();
        assert_eq!(for_deploy(0, "3.8.0"), values, "before the rename: 3.8.0 reads postgres.host");
        assert_eq!(for_deploy(0, "3.9.0"), hop1);
        assert_eq!(for_deploy(1, "3.9.0"), hop1, "the hop before's values");
        assert_eq!(carried_hop(&plan.hops, 0, &v("3.8.0")), None);
        assert_eq!(carried_hop(&plan.hops, 2, &v("4.0.0")), Some(1));
        assert_eq!(carried_hop(&plan.hops, 2, &v("4.1.0")), Some(2));
        let both = json!({"postgres": {"host": "a"}, "database": {"host": "b"}});
        let refused = refusal(up(&policy, &live(both, &[]), "3.8.0", "4.1.0"));
        assert_eq!(refused.rule, "values-rename");
        assert!(refused.message.contains("hop 1 (3.8.0 → 3.9.0)"), "{}", refused.message);
    }

    #[test]
    fn set_values_are_carried_from_their_version_on_and_removed_keys_are_dropped() {
        let rules = "  - version: 3.9.0\n    remove: legacy.flag\n  - version: 4.0.0\n    set: {features.newUI: true, cache.size: 64}\n";
        let policy = policy_with(rules);
        let values = json!({"legacy": {"flag": true, "mode": "a"}, "replicaCount": 2});
        let plan = up(&policy, &live(values.clone(), &[]), "3.8.0", "4.1.0").unwrap();
        assert_eq!(path(&plan), ["3.9.0", "4.0.0", "4.1.0"]);
        let described: Vec<Vec<String>> =
            plan.hops.iter().map(|h| h.values.iter().map(|r| r.describe()).collect()).collect();
        assert_eq!(described, [vec!["remove legacy.flag"], vec!["set cache.size, features.newUI"], vec![]]);
        let at = |hop: usize| carried_at(&plan.hops, hop, Direction::Upgrade, &values).unwrap();
        // Hop 1 drops the removed key (its map keeps its other key); nothing is set yet.
        assert_eq!(at(0), json!({"legacy": {"mode": "a"}, "replicaCount": 2}));
        // Hop 2 carries the set values from 4.0.0 on, and hop 3 keeps both changes.
        let from_4 =
            json!({"legacy": {"mode": "a"}, "replicaCount": 2, "features": {"newUI": true}, "cache": {"size": 64}});
        assert_eq!(at(1), from_4);
        assert_eq!(at(2), from_4, "carried to the hops after");
        // The plan's JSON shows each rule at the hop that crosses it, values and all.
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["hops"][0]["values"][0]["remove"], "legacy.flag", "{json}");
        assert_eq!(
            json["hops"][1]["values"][0]["set"],
            json!([["cache.size", 64], ["features.newUI", true]]),
            "{json}"
        );
        // A walk that starts past 4.0.0 has nothing to apply; one that starts between the
        // two rules gets only the set.
        let plan = up(&policy, &live(values.clone(), &[]), "4.0.0", "4.1.0").unwrap();
        assert!(plan.hops.iter().all(|h| h.values.is_empty()));
        let plan = up(&policy, &live(values.clone(), &[]), "3.9.0", "4.1.0").unwrap();
        let at_start = carried_at(&plan.hops, 0, Direction::Upgrade, &values).unwrap();
        assert_eq!(at_start["legacy"], json!({"flag": true, "mode": "a"}), "the remove is behind this walk");
        assert_eq!(at_start["features"]["newUI"], true);
        // Offline (no release values), the rules are shown, not applied or warned about.
        let plan = upgrade(&policy, TRAIN, "3.8.0", "4.1.0").unwrap();
        assert_eq!(plan.hops[1].values.len(), 1);
        assert!(plan.warnings.iter().all(|w| !w.contains("not checked offline")), "{:?}", plan.warnings);
    }

    #[test]
    fn going_back_across_a_rename_undoes_it() {
        let policy = policy_with(RENAME);
        let values = json!({"database": {"host": "db"}});
        let request = RollbackRequest {
            current: v("3.9.0"),
            target: Some(v("3.8.0")),
            newest_ever: v("3.9.0"),
            deployed_before: vec![v("3.8.0")],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let plan =
            helm_safe_upgrade::plan::plan_rollback(&policy, &versions(TRAIN), &request, &live(values.clone(), &[]))
                .unwrap();
        assert_eq!(plan.hops[0].values.len(), 1);
        let back = carried_at(&plan.hops, 0, Direction::Rollback, &values).unwrap();
        assert_eq!(back, json!({"postgres": {"host": "db"}}));
        // `helm rollback REVISION` deploys that revision's own values: nothing applies.
        let by_revision = RollbackRequest { by_revision: Some(1), ..request };
        let plan = helm_safe_upgrade::plan::plan_rollback(&policy, &versions(TRAIN), &by_revision, &live(values, &[]))
            .unwrap();
        assert!(plan.hops[0].values.is_empty());
    }

    #[test]
    fn a_rule_for_a_version_the_source_does_not_offer_is_refused() {
        let policy = policy_with("  - version: 3.9.5\n    remove: legacy\n");
        let refused = refusal(up(&policy, &live(json!({}), &[]), "3.8.0", "4.1.0"));
        assert_eq!(refused.rule, "values-version");
        assert!(refused.message.contains("is for 3.9.5, which the chart source does not offer"), "{}", refused.message);
    }

    #[test]
    fn the_loader_points_at_a_bad_rule() {
        let bad = |rules: &str| match helm_safe_upgrade::policy::parse(
            &(helm_safe_upgrade::policy::presets::text("sequential-minor").unwrap().replace("values: []\n", "")
                + "values:\n"
                + rules),
            "test.yaml",
        ) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {rules}"),
        };
        let err = bad("  - version: 4.0.0\n    require: redis..host\n");
        assert!(err.contains("is not a values path") && err.contains("require: redis..host"), "{err}");
        let err = bad("  - version: 4.0.0\n    require: a\n    remove: b\n");
        assert!(err.contains("needs exactly one of require, rename, remove, set"), "{err}");
        let err = bad("  - version: 4.0.0\n    rename: {from: a.b, to: a.b.c}\n");
        assert!(err.contains("one path lies inside the other"), "{err}");
        let err = bad("  - version: 4.0.0\n    require: list[0]\n");
        assert!(err.contains("indexes a list"), "{err}");
        let err = bad("  - version: 4.0.0\n    requires: a\n");
        assert!(err.contains("unknown field"), "{err}");
    }

    /// Where the loader points: the line and column of the bad rule's value, counted from
    /// the first line of `rules` (1) in a copy of the generic preset; and the message.
    fn bad_at(rules: &str) -> (u64, u64, String) {
        let preset = helm_safe_upgrade::policy::presets::text("sequential-minor").unwrap().replace("values: []\n", "");
        let first = preset.lines().count() as u64 + 2; // after the preset and `values:`
        match helm_safe_upgrade::policy::parse(&(preset + "values:\n" + rules), "test.yaml") {
            Err(helm_safe_upgrade::policy::PolicyError::Invalid(e)) => {
                let shown = e.to_string();
                assert!(shown.starts_with(&format!("invalid policy test.yaml:{}:{}: ", e.line, e.column)), "{shown}");
                (e.line + 1 - first, e.column, e.message.clone())
            }
            other => panic!("expected a located error for {rules:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_rule_is_named_by_line_and_column() {
        // A require with a malformed path: at the path, on its own line.
        let (line, column, message) =
            bad_at("  - version: 3.9.0\n    remove: x\n  - version: 4.0.0\n    require: redis..host\n");
        assert_eq!((line, column), (4, 14), "{message}");
        assert!(message.contains("\"redis..host\" is not a values path"), "{message}");
        let (line, column, message) = bad_at("  - {version: 4.0.0, require: \"redis.\"}\n");
        assert_eq!((line, column), (1, 31), "at the quoted value: {message}");
        let (line, column, message) = bad_at("  - version: 4.0.0\n    remove: hosts[0]\n");
        assert_eq!((line, column), (2, 13), "{message}");
        assert!(message.contains("indexes a list"), "{message}");
        // A rename onto a key the policy already puts there: at the rename.
        let (line, column, message) = bad_at(
            "  - version: 3.9.0\n    set: {database.host: db}\n  - version: 4.0.0\n    rename: {from: postgres.host, to: database.host}\n",
        );
        assert_eq!((line, column), (4, 13), "{message}");
        assert_eq!(
            message,
            "rename `postgres.host` → `database.host` (4.0.0) is onto `database.host`, which the rule `set database.host` (3.9.0) already puts in the values"
        );
        let (line, column, message) = bad_at(
            "  - version: 3.9.0\n    rename: {from: a.host, to: db}\n  - version: 3.9.0\n    rename: {from: b.host, to: db.host}\n",
        );
        assert_eq!((line, column), (4, 13), "two renames onto one key: the later one; {message}");
        assert!(message.contains("`rename a.host → db` (3.9.0)"), "{message}");
        // A rename inside itself, and two kinds in one entry: at the rule.
        let (line, column, message) = bad_at("  - version: 4.0.0\n    rename: {from: a.b, to: a.b.c}\n");
        assert_eq!((line, column), (2, 13), "{message}");
        let (line, column, message) =
            bad_at("  - version: 3.9.0\n    remove: x\n  - version: 4.0.0\n    require: a\n    remove: b\n");
        assert_eq!((line, column), (3, 5), "{message}");
        assert!(message.contains("needs exactly one of"), "{message}");
        // The rename's value moved by a later rule, or a set after it: allowed.
        let ok = |rules: &str| {
            let preset =
                helm_safe_upgrade::policy::presets::text("sequential-minor").unwrap().replace("values: []\n", "");
            helm_safe_upgrade::policy::parse(&(preset + "values:\n" + rules), "test.yaml")
                .unwrap_or_else(|e| panic!("{e}"));
        };
        ok("  - version: 3.9.0\n    rename: {from: a, to: b}\n  - version: 4.0.0\n    rename: {from: b, to: c}\n");
        ok("  - version: 3.9.0\n    rename: {from: a, to: b}\n  - version: 4.0.0\n    set: {b: 1}\n");
    }
}

/// Policy text with placeholders and doubled braces, filled in every field the planner
/// fills: `{{`/`}}` are literal braces, the rest is the hop's values.
mod templates {
    use super::*;
    use helm_safe_upgrade::plan;

    const POLICY: &str = r#"name: t
description: d
release_notes: "https://example.com/{{notes}}/{to}"
upgrade:
  max_minor_step: 1
  major: refuse
  snapshot_first: true
  procedure: p
downgrade: {}
snapshot:
  message: "Back up {release} ({{all}} of it)"
  command: [backup, "{release}", '{{"from": "{from}", "to": "{to}"}}']
checks:
  - {name: ready, argv: [kubectl, get, deploy, "{release}", "-o=jsonpath={{.status.readyReplicas}}={to}"]}
procedures:
  p:
    steps:
      - confirm: {message: "{{ready}} for {to}?"}
      - snapshot: {message: "Again: {{{release}}}"}
      - deploy: {}
      - wait-gone: {version: from, selector: "app={release},v={version},x={{y}}"}
      - run: {name: image, argv: [echo, "{to_app_version}", "{{to_app_version}}"]}
      - verify: {}
"#;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn every_filled_field_reads_doubled_braces_as_literal_ones() {
        let plan = upgrade(&policy_yaml(POLICY), "1.0.0,1.1.0", "1.0.0", "1.1.0").unwrap();
        let first_snapshot = &plan.preflight[1];
        assert_eq!(
            first_snapshot,
            &Step::Snapshot {
                message: "Back up rel ({all} of it)".into(),
                argv: Some(argv(&["backup", "rel", r#"{"from": "1.0.0", "to": "1.1.0"}"#])),
                unfilled: vec![],
            }
        );
        let hop = &plan.hops[0];
        assert_eq!(hop.release_notes.as_deref(), Some("https://example.com/{notes}/1.1.0"));
        assert_eq!(hop.steps[0], Step::Confirm { message: "{ready} for 1.1.0?".into() });
        let Step::Snapshot { message, .. } = &hop.steps[1] else { panic!("{:?}", hop.steps[1]) };
        assert_eq!(message, "Again: {rel}");
        assert_eq!(
            hop.steps[3],
            Step::WaitGone { version: v("1.0.0"), selector: "app=rel,v=1.0.0,x={y}".into(), unfilled: vec![] }
        );
        let Step::Verify { checks, unfilled, .. } = &hop.steps[5] else { panic!("{:?}", hop.steps[5]) };
        assert_eq!(
            checks[0].argv,
            argv(&["kubectl", "get", "deploy", "rel", "-o=jsonpath={.status.readyReplicas}=1.1.0"])
        );
        assert!(unfilled.is_empty());
    }

    /// The source gives no app version and the policy's catalog neither: the placeholder
    /// stays as written and the step names it, apart from the literal that reads the same.
    #[test]
    fn a_placeholder_without_a_value_is_named_by_the_step() {
        let plan = upgrade(&policy_yaml(POLICY), "1.0.0,1.1.0", "1.0.0", "1.1.0").unwrap();
        assert_eq!(
            plan.hops[0].steps[4],
            Step::Run {
                name: "image".into(),
                argv: argv(&["echo", "{to_app_version}", "{to_app_version}"]),
                unfilled: vec!["to_app_version".into()],
            }
        );
    }

    /// The way back the executor puts together itself verifies with the same checks,
    /// filled for going from the version it leaves to the one it returns to.
    #[test]
    fn the_way_back_verify_is_filled_like_a_planned_one() {
        let policy = policy_yaml(POLICY);
        let step = plan::way_back_verify(&policy, &versions("1.0.0,1.1.0"), &context(), &v("1.1.0"), &v("1.0.0"));
        let Step::Verify { version, checks, unfilled } = step else { panic!("{step:?}") };
        assert_eq!(version, v("1.0.0"));
        assert_eq!(
            checks[0].argv,
            argv(&["kubectl", "get", "deploy", "rel", "-o=jsonpath={.status.readyReplicas}=1.0.0"])
        );
        assert!(unfilled.is_empty());
    }
}

/// `versions: app`: rules counted in the application versions the charts package.
mod app_versions {
    use super::*;
    use helm_safe_upgrade::plan::app_versions::read_app_version;

    /// One minor at a time, in app versions, with a required stop at app 2.2.
    fn policy() -> helm_safe_upgrade::policy::Policy {
        policy_yaml(
            "name: app\ndescription: d\nversions: app\nupgrade:\n  max_minor_step: 1\n  major: one-at-a-time\n  required_stops: [\"2.2\"]\n  stop_notes:\n    \"2.2\": only for instances with NPM packages\n  procedure: p\ndowngrade: {}\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n      - verify: {}\n",
        )
    }

    #[test]
    fn minors_are_counted_in_app_versions_and_deployed_as_charts() {
        // Chart minors 0 → 7 would be seven steps; app minors 2.0 → 2.3 are three.
        let plan =
            upgrade_charts(&policy(), "5.0.0=2.0.0,5.4.0=2.1.0,5.6.0=2.2.0,5.7.0=2.3.0", "5.0.0", "5.7.0").unwrap();
        assert_eq!(path(&plan), ["5.4.0", "5.6.0", "5.7.0"]);
        assert_eq!(app_path(&plan), ["2.1.0", "2.2.0", "2.3.0"]);
        assert_eq!(actions(&plan.hops[1].steps), ["deploy", "verify"]);
        assert!(matches!(&plan.hops[1].steps[0], Step::Deploy { version, .. } if version == &v("5.6.0")));
        assert_eq!((plan.from.to_string(), plan.to.to_string()), ("5.0.0".into(), "5.7.0".into()));
        // The conditional stop's note, when the path stops in its minor.
        assert!(
            plan.warnings.iter().any(|w| w == "stop 2.2: only for instances with NPM packages"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn several_charts_of_one_app_version_the_newest_is_deployed_and_said() {
        let plan =
            upgrade_charts(&policy(), "5.0.0=2.0.0,5.1.0=2.1.0,5.1.1=2.1.0,5.2.0=2.2.0", "5.0.0", "5.2.0").unwrap();
        assert_eq!(path(&plan), ["5.1.1", "5.2.0"]);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w == "app version 2.1.0 is packaged by charts 5.1.0, 5.1.1: the path deploys 5.1.1")
        );
    }

    #[test]
    fn the_deployed_and_requested_charts_stand_for_their_app_versions() {
        // 5.0.0 and 5.0.1 both package 2.0.0: the deployed one is where the path starts.
        let plan =
            upgrade_charts(&policy(), "5.0.0=2.0.0,5.0.1=2.0.0,5.1.0=2.1.0,5.1.1=2.1.0", "5.0.0", "5.1.0").unwrap();
        assert_eq!(path(&plan), ["5.1.0"]);
        assert_eq!(plan.hops[0].from, v("5.0.0"));
    }

    #[test]
    fn a_chart_without_app_version_is_left_out_off_the_ends_and_refused_at_them() {
        let plan = upgrade_charts(&policy(), "5.0.0=2.0.0,5.0.5,5.1.0=2.1.0", "5.0.0", "5.1.0").unwrap();
        assert!(plan.warnings.iter().any(|w| w.contains("left out") && w.contains("chart 5.0.5 (no appVersion)")));
        let (message, hint) = bad_request(upgrade_charts(&policy(), "5.0.0=2.0.0,5.1.0", "5.0.0", "5.1.0"));
        assert_eq!(message, "the requested chart 5.1.0 has no appVersion, and the policy counts in app versions");
        assert!(hint.contains("versions: app"));
        let (message, _) = bad_request(upgrade_charts(&policy(), "5.0.0=latest,5.1.0=2.1.0", "5.0.0", "5.1.0"));
        assert!(message.starts_with("the deployed chart 5.0.0: appVersion \"latest\" is not a version"), "{message}");
    }

    /// Back by at most two minors below the newest app version ever deployed; the
    /// down-migration is told app versions.
    fn rollback_policy() -> helm_safe_upgrade::policy::Policy {
        policy_yaml(
            "name: app\ndescription: d\nversions: app\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  procedure: p\ndowngrade:\n  patch: p\n  minor:\n    max_minors_below_newest: 2\n    procedure: down\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n      - verify: {}\n  down:\n    steps:\n      - deploy: {}\n      - run: {name: migrate, argv: [migrate, \"{from}\", \"{to}\", \"{to_app_version}\"]}\n      - verify: {}\n",
        )
    }

    /// Chart minors and app minors apart: 8.7 → 8.2 is five chart minors but two app minors
    /// (17.4 → 17.2); 9.x and 10.x package the same app major 18.
    const TRAIN: &str = "8.0.0=17.0.0,8.1.2=17.1.0,8.2.0=17.2.0,8.2.1=17.2.0,8.3.0=17.3.0,8.7.0=v17.4.0-ee,8.7.1=17.4.0,8.9.0=17.4.1,9.0.0=18.0.0,9.1.0=18.1.0,10.0.0=18.2.0";

    #[test]
    fn only_charts_between_the_ends_left_out_are_said() {
        // 8.1.5 (no appVersion) and 8.1.7 (unreadable) lie on the way; 7.0.0 and 9.9.9 (no
        // appVersion, as an OCI registry's charts outside the range are) do not.
        let list = "7.0.0,8.0.0=17.0.0,8.1.0=17.1.0,8.1.5,8.1.7=latest,8.2.0=17.2.0,9.9.9";
        let plan = upgrade_charts(&rollback_policy(), list, "8.0.0", "8.2.0").unwrap();
        let left_out: Vec<&String> = plan.warnings.iter().filter(|w| w.starts_with("left out of the path")).collect();
        assert_eq!(left_out.len(), 1, "{:?}", plan.warnings);
        assert!(
            left_out[0].contains("chart 8.1.5 (no appVersion)") && left_out[0].contains("chart 8.1.7 ("),
            "{left_out:?}"
        );
        assert!(!left_out[0].contains("7.0.0") && !left_out[0].contains("9.9.9"), "{left_out:?}");
    }

    #[test]
    fn a_rollback_window_counts_app_minors_and_deploys_the_chart_asked_for() {
        // Seven chart minors, two app minors: inside the window.
        let plan = rollback_charts(&rollback_policy(), TRAIN, "8.9.0", Some("8.2.0"), "8.9.0").unwrap();
        let hop = &plan.hops[0];
        assert_eq!(hop.kind, HopKind::MinorDowngrade);
        assert_eq!((hop.from.to_string(), hop.to.to_string()), ("8.9.0".into(), "8.2.0".into()));
        let app = hop.app.as_ref().expect("the hop carries its app versions");
        assert_eq!((app.from.to_string(), app.to.to_string()), ("17.4.1".into(), "17.2.0".into()));
        assert_eq!(plan.to, v("8.2.0"), "the chart asked for stands for its app version");
        assert!(matches!(&hop.steps[0], Step::Deploy { version, .. } if version == &v("8.2.0")));
        assert_eq!(run_argv(&hop.steps, "migrate"), ["migrate", "17.4.1", "17.2.0", "17.2.0"]);
        assert!(matches!(&hop.steps[2], Step::Verify { version, .. } if version == &v("8.2.0")));
        assert!(
            plan.warnings
                .iter()
                .any(|w| w == "app version 17.2.0 is packaged by charts 8.2.0, 8.2.1: the path deploys 8.2.0"),
            "{:?}",
            plan.warnings
        );
        assert!(!plan.warnings.iter().any(|w| w.contains("chart versions")), "{:?}", plan.warnings);
    }

    #[test]
    fn a_rollback_beyond_the_app_window_is_refused_naming_app_and_chart_versions() {
        // Two chart minors below 8.3.0, but three app minors below 17.4.1, the newest ever.
        let r = refusal(rollback_charts(&rollback_policy(), TRAIN, "8.3.0", Some("8.1.2"), "8.9.0"));
        assert_eq!(r.rule, "downgrade-window");
        assert_eq!(
            r.message,
            "17.1.0 (chart 8.1.2) is 3 minors below 17.4.1 (chart 8.9.0), the newest version ever deployed; policy app allows at most 2"
        );
        assert!(
            r.supported.starts_with("roll back no further than 17.2.0 (chart 8.2.1); or restore"),
            "{}",
            r.supported
        );
        // The newest ever is named as the ledger recorded it, not by 8.7.1, which stands
        // for the same app version.
        let r = refusal(rollback_charts(&rollback_policy(), TRAIN, "8.3.0", Some("8.1.2"), "8.7.0"));
        assert!(r.message.starts_with("17.1.0 (chart 8.1.2) is 3 minors below 17.4.0 (chart 8.7.0),"), "{}", r.message);
        // From the same release, 17.2.0 is inside the window.
        let plan = rollback_charts(&rollback_policy(), TRAIN, "8.3.0", Some("8.2.1"), "8.9.0").unwrap();
        assert_eq!(plan.hops[0].app.as_ref().map(|a| a.to.to_string()), Some("17.2.0".into()));
        // A floor no chart packages exactly names the oldest one offered in its minor.
        let sparse = "8.0.0=17.0.0,8.2.5=17.2.3,8.4.0=17.4.0";
        let r = refusal(rollback_charts(&rollback_policy(), sparse, "8.4.0", Some("8.0.0"), "8.4.0"));
        let floor = "roll back no further than 17.2.0 (the oldest offered in 17.2: 17.2.3, chart 8.2.5);";
        assert!(r.supported.starts_with(floor), "{}", r.supported);
    }

    #[test]
    fn a_patch_rollback_is_judged_by_the_app_minor_not_the_chart_minor() {
        // Charts 8.9 → 8.7 are two chart minors; the app goes 17.4.1 → 17.4.0.
        let plan = rollback_charts(&rollback_policy(), TRAIN, "8.9.0", Some("8.7.0"), "8.9.0").unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::PatchDowngrade);
        assert_eq!(actions(&plan.hops[0].steps), ["deploy", "verify"]);
    }

    #[test]
    fn the_major_boundary_of_a_rollback_is_the_app_major() {
        // Charts 10 → 9 cross a chart major; the app stays in 18.
        let plan = rollback_charts(&rollback_policy(), TRAIN, "10.0.0", Some("9.1.0"), "10.0.0").unwrap();
        assert_eq!(plan.hops[0].kind, HopKind::MinorDowngrade);
        // Charts 9.1 → 8.9 cross the app major 18 → 17: never planned.
        let r = refusal(rollback_charts(&rollback_policy(), TRAIN, "9.1.0", Some("8.9.0"), "9.1.0"));
        assert_eq!(r.rule, "downgrade-window");
        assert!(
            r.message.starts_with(
                "17.4.1 (chart 8.9.0) is in an older major than 18.1.0 (chart 9.1.0), the newest version ever deployed"
            ),
            "{}",
            r.message
        );
    }

    #[test]
    fn the_newest_chart_ever_deployed_without_a_readable_app_version_is_refused_not_guessed() {
        let (message, hint) = bad_request(rollback_charts(&rollback_policy(), TRAIN, "8.3.0", Some("8.2.0"), "8.10.0"));
        assert_eq!(
            message,
            "the newest chart ever deployed 8.10.0 is not offered by the chart source, so its appVersion is unknown"
        );
        assert!(hint.contains("--versions 8.10.0=APP"), "{hint}");
        let list = format!("{TRAIN},8.10.0");
        let (message, _) = bad_request(rollback_charts(&rollback_policy(), &list, "8.3.0", Some("8.2.0"), "8.10.0"));
        assert_eq!(
            message,
            "the newest chart ever deployed 8.10.0 has no appVersion, and the policy counts in app versions"
        );
    }

    #[test]
    fn a_rollback_between_charts_of_one_app_version_is_refused_by_name() {
        let (message, hint) = bad_request(rollback_charts(&rollback_policy(), TRAIN, "8.2.1", Some("8.2.0"), "8.9.0"));
        assert!(message.contains("8.2.1 and 8.2.0 package the same app version 17.2.0"), "{message}");
        assert!(hint.contains("helm rollback"), "{hint}");
    }

    #[test]
    fn the_default_rollback_target_is_the_newest_earlier_chart_deployed() {
        let request = helm_safe_upgrade::plan::RollbackRequest {
            current: v("8.9.0"),
            target: None,
            newest_ever: v("8.9.0"),
            deployed_before: vec![v("8.2.0"), v("8.7.1"), v("9.0.0")],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let plan =
            helm_safe_upgrade::plan::plan_rollback(&rollback_policy(), &charts(TRAIN), &request, &context()).unwrap();
        assert_eq!(plan.to, v("8.7.1"));
        assert_eq!(plan.hops[0].app.as_ref().map(|a| a.to.to_string()), Some("17.4.0".into()));
    }

    #[test]
    fn a_chart_only_change_is_refused_by_name() {
        let (message, _) = bad_request(upgrade_charts(&policy(), "5.0.0=2.0.0,5.0.1=2.0.0", "5.0.0", "5.0.1"));
        assert!(message.contains("5.0.0 and 5.0.1 package the same app version 2.0.0"), "{message}");
    }

    #[test]
    fn app_versions_are_read_with_a_v_an_edition_and_two_numbers() {
        for (text, read) in
            [("v17.3.0-ee", "17.3.0"), ("17.3.0-ce", "17.3.0"), ("2024.1", "2024.1.0"), ("v2.1", "2.1.0")]
        {
            assert_eq!(read_app_version(text).unwrap(), v(read), "{text}");
        }
        assert!(read_app_version("17.3.0-rc1").unwrap().is_prerelease());
        for bad in ["latest", "2024", "17.3.0.1", ""] {
            let why = read_app_version(bad).unwrap_err();
            assert!(why.starts_with(&format!("appVersion {bad:?} is not a version")), "{why}");
        }
    }

    #[test]
    fn versions_is_read_strictly_with_its_line() {
        let text = "name: x\ndescription: d\nversions: ap\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  procedure: p\ndowngrade: {}\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n";
        let error = helm_safe_upgrade::policy::parse(text, "p.yaml").unwrap_err().to_string();
        assert!(error.contains(":3:"), "{error}");
        assert!(error.contains("ap"), "{error}");
        let notes = text
            .replace("versions: ap", "versions: app")
            .replace("  procedure: p", "  stop_notes:\n    \"2\": x\n  procedure: p");
        let error = helm_safe_upgrade::policy::parse(&notes, "p.yaml").unwrap_err().to_string();
        assert!(error.contains(":8:10:") && error.contains("stop_notes key \"2\" is not a minor"), "{error}");
    }
}

/// GitLab's published required stops, in GitLab versions, on a chart versioned 8.x.
mod gitlab {
    use super::*;

    /// Chart 8.N packages GitLab 17.N (GitLab's chart major is the app major − 9), with two
    /// patches of each minor.
    fn gitlab_17() -> String {
        (0..=11)
            .flat_map(|n| [format!("8.{n}.0=v17.{n}.0-ee"), format!("8.{n}.1=v17.{n}.2-ee")])
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn a_path_through_17_stops_at_each_required_stop_newest_patch() {
        let plan = upgrade_charts(&preset("gitlab"), &gitlab_17(), "8.0.0", "8.11.1").unwrap();
        assert_eq!(app_path(&plan), ["17.1.2", "17.3.2", "17.5.2", "17.8.2", "17.11.2"]);
        assert_eq!(path(&plan), ["8.1.1", "8.3.1", "8.5.1", "8.8.1", "8.11.1"]);
        let conditional = "stop 17.1: conditional: required for instances with long-running pipeline messages";
        assert!(plan.warnings.iter().any(|w| w.starts_with(conditional)), "{:?}", plan.warnings);
        assert!(plan.hops.iter().all(|h| actions(&h.steps) == ["deploy", "verify", "confirm"]));
    }

    #[test]
    fn conditional_16_stops_are_taken_and_said() {
        let list = "7.0.0=16.0.9,7.1.0=16.1.7,7.2.0=16.2.10,7.3.0=16.3.8,7.5.0=16.5.0";
        let plan = upgrade_charts(&preset("gitlab"), list, "7.0.0", "7.5.0").unwrap();
        assert_eq!(app_path(&plan), ["16.1.7", "16.2.10", "16.3.8", "16.5.0"]);
        assert!(plan.warnings.iter().any(|w| w.starts_with("stop 16.1: required for instances with NPM packages")));
        assert!(plan.warnings.iter().any(|w| w.starts_with("stop 16.2: required for instances with large pipeline")));
    }

    #[test]
    fn going_back_restores_the_backup_taken_on_the_older_gitlab() {
        let plan = rollback_charts(&preset("gitlab"), &gitlab_17(), "8.3.1", Some("8.2.0"), "8.3.1").unwrap();
        assert_eq!(plan.strategy, Strategy::Restore);
        let hop = &plan.hops[0];
        assert_eq!(actions(&hop.steps), ["confirm", "deploy", "verify"]);
        assert!(matches!(&hop.steps[1], Step::Deploy { version, .. } if version == &v("8.2.0")));
        assert!(matches!(&hop.steps[0], Step::Confirm { message } if message.contains("taken on v17.2.0-ee")));
        let said = "needs a snapshot taken while 17.2.0 (chart 8.2.0) was deployed; the operator confirms it exists";
        assert!(plan.warnings.iter().any(|w| w == said), "{:?}", plan.warnings);
    }

    #[test]
    fn a_major_waits_for_the_last_stop_of_the_previous_one() {
        let list = "7.11.0=16.11.10,8.0.0=17.0.0,8.1.0=17.1.8,8.3.0=17.3.6,7.7.0=16.7.10";
        let plan = upgrade_charts(&preset("gitlab"), list, "7.7.0", "8.3.0").unwrap();
        assert_eq!(app_path(&plan), ["16.11.10", "17.0.0", "17.1.8", "17.3.6"]);
        assert_eq!(plan.hops[1].kind, HopKind::Major);
    }
}

#[test]
fn a_patch_rollback_is_a_patch_in_the_versions_the_policy_counts() {
    // Under `versions: app` a chart patch can be an app minor: then it is no patch
    // rollback, and helm's old revision must not stand in for the policy's procedure.
    let available = charts("8.1.0=17.1.0,8.1.1=v17.2.0-ee,8.1.2=17.2.3,8.1.3");
    let gitlab = preset("gitlab");
    let same = |policy: &Policy, a: &str, b: &str| plan::same_counted_minor(policy, &available, &v(a), &v(b));
    assert!(!same(&gitlab, "8.1.1", "8.1.0"), "app 17.2 and 17.1");
    assert!(same(&gitlab, "8.1.2", "8.1.1"), "app 17.2.3 and 17.2.0");
    assert!(!same(&gitlab, "8.1.3", "8.1.2"), "no app version: a minor of its own");
    assert!(same(&preset("sequential-minor"), "8.1.1", "8.1.0"), "chart versions: one minor");
}

#[test]
fn a_command_under_app_versions_can_name_the_charts_too() {
    // `{to}` counts in app versions there; a command pulling the chart needs the chart's.
    let text = helm_safe_upgrade::policy::presets::text("gitlab").unwrap().replace(
            "      - deploy: {}\n      - verify: {}\n      # \"Allow",
            "      - run:\n          name: pull\n          argv: [helm, pull, gitlab, --version, \"{to_chart_version}\", --app, \"{to}\", --from, \"{from_chart_version}\"]\n      - deploy: {}\n      - verify: {}\n      # \"Allow",
        );
    assert!(text.contains("{to_chart_version}"), "the preset's text changed: edit this test");
    let policy = policy_yaml(&text);
    let plan =
        upgrade_charts(&policy, "8.0.0=v17.0.1-ee,8.1.0=17.1.8,8.3.0=17.3.2,8.3.1=17.3.2", "8.0.0", "8.3.0").unwrap();
    let argv: Vec<&[String]> = plan.hops.iter().map(|h| run_argv(&h.steps, "pull")).collect();
    assert_eq!(argv[0], ["helm", "pull", "gitlab", "--version", "8.1.0", "--app", "17.1.8", "--from", "8.0.0"]);
    assert_eq!(
        argv[1],
        ["helm", "pull", "gitlab", "--version", "8.3.0", "--app", "17.3.2", "--from", "8.1.0"],
        "the requested chart, not the newest of its app version"
    );
    // In chart versions, the chart versions are the versions planned.
    let generic = helm_safe_upgrade::policy::presets::text("sequential-minor").unwrap().replace(
        "    downtime: true\n    steps:\n      - deploy: {}\n      - verify: {}\n  restore-backup:",
        "    downtime: true\n    steps:\n      - run:\n          name: pull\n          argv: [echo, \"{to_chart_version}\", \"{to}\"]\n      - deploy: {}\n      - verify: {}\n  restore-backup:",
    );
    assert!(generic.contains("{to_chart_version}"), "the preset's text changed: edit this test");
    let plan = upgrade(&policy_yaml(&generic), "1.0.0,1.1.0", "1.0.0", "1.1.0").unwrap();
    assert_eq!(run_argv(&plan.hops[0].steps, "pull"), ["echo", "1.1.0", "1.1.0"]);
}
