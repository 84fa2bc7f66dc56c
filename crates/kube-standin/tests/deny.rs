//! Deny rules (the RBAC stand-in) as the real kubectl and helm 3.19.0 / 4.1.4 meet them:
//! the Forbidden errors they print, `kubectl auth can-i`, and the binary's `--deny`.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Bed, Kubectl, configmap, namespace};
use kube_standin::testing::HelmVersion;
use kube_standin::{DenyRule, Options, StandIn, Verb};

const LOCK: &str = "helm-safe-upgrade.bsr";

fn forbidden(verb: &str, what: &str) -> String {
    format!(
        r#"{what} is forbidden: User "standin" cannot {verb} resource "configmaps" in API group "" in the namespace "bsr""#
    )
}

/// A stand-in with namespaces `bsr` and `other`, and kubectl pointed at it.
fn bed() -> (StandIn, Kubectl) {
    let standin = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
    let kubectl = Kubectl::at(&standin.url());
    for ns in ["bsr", "other"] {
        kubectl.ok_with_input(&["create", "-f", "-"], &namespace(ns));
    }
    (standin, kubectl)
}

#[test]
fn denied_requests_fail_as_kube_apiserver_answers_them() {
    let (standin, k) = bed();
    k.ok_with_input(&["create", "-f", "-"], &configmap("bsr", LOCK, "1"));
    k.ok_with_input(&["create", "-f", "-"], &configmap("bsr", "unrelated", "1"));
    let lock = standin
        .deny(DenyRule::new(&[Verb::Get, Verb::Update, Verb::Delete], "configmaps").in_namespace("bsr").named(LOCK));
    let create = standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    let list = standin.deny("list:configmaps:bsr".parse().unwrap());
    let named = format!("configmaps {LOCK:?}");

    let err = k.fails(&["get", "configmap", LOCK, "-n", "bsr"]);
    assert_eq!(err.trim(), format!("Error from server (Forbidden): {}", forbidden("get", &named)));
    // kube-apiserver authorizes a create before it knows the name: none in the message.
    let err = k.fails_with_input(&["create", "-f", "-"], &configmap("bsr", "another", "1"));
    assert_eq!(
        err.trim(),
        format!(r#"Error from server (Forbidden): error when creating "STDIN": {}"#, forbidden("create", "configmaps"))
    );
    // `kubectl replace` is a PUT: verb update.
    let err = k.fails_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert_eq!(
        err.trim(),
        format!(r#"Error from server (Forbidden): error when replacing "STDIN": {}"#, forbidden("update", &named))
    );
    let err = k.fails(&["delete", "configmap", LOCK, "-n", "bsr"]);
    assert_eq!(err.trim(), format!("Error from server (Forbidden): {}", forbidden("delete", &named)));
    let err = k.fails(&["get", "configmaps", "-n", "bsr"]);
    assert_eq!(err.trim(), format!("Error from server (Forbidden): {}", forbidden("list", "configmaps")));
    let err = k.fails(&["get", "configmaps", "-A"]);
    assert!(err.contains(r#"cannot list resource "configmaps" in API group "" at the cluster scope"#), "{err}");
    let stored = standin.get("v1", "configmaps", Some("bsr"), LOCK).unwrap();
    assert_eq!(stored["data"]["value"], "1", "a denied write changed the object");

    // Other namespaces, resources, objects and verbs are untouched.
    k.ok_with_input(&["create", "-f", "-"], &configmap("other", LOCK, "1"));
    k.ok(&["get", "configmap", LOCK, "-n", "other"]);
    k.ok(&["get", "configmaps", "-n", "other"]);
    k.ok(&["get", "secrets", "-n", "bsr"]);
    k.ok(&["patch", "configmap", "unrelated", "-n", "bsr", "--type=merge", "-p", r#"{"data":{"value":"2"}}"#]);
    k.ok(&["delete", "configmap", "unrelated", "-n", "bsr"]);

    assert!(standin.allow(lock));
    assert!(!standin.allow(lock), "allowed twice");
    k.ok_with_input(&["replace", "-f", "-"], &configmap("bsr", LOCK, "2"));
    assert_eq!(standin.get("v1", "configmaps", Some("bsr"), LOCK).unwrap()["data"]["value"], "2");
    k.fails_with_input(&["create", "-f", "-"], &configmap("bsr", "another", "1"));
    assert!(standin.allow(create));
    k.ok_with_input(&["create", "-f", "-"], &configmap("bsr", "another", "1"));
    let _ = list;
    standin.clear_denials();
    k.ok(&["get", "configmaps", "-n", "bsr"]);
    k.ok(&["delete", "configmap", LOCK, "-n", "bsr"]);
}

#[test]
fn auth_can_i_answers_from_the_deny_rules() {
    let (standin, k) = bed();
    let can_i = |args: &[&str]| {
        let mut argv = vec!["auth", "can-i"];
        argv.extend_from_slice(args);
        let out = k.run(&argv);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (answer, out.status.code())
    };
    let yes = ("yes".to_string(), Some(0));
    let no = ("no".to_string(), Some(1));
    assert_eq!(can_i(&["create", "configmaps", "-n", "bsr"]), yes);
    let id = standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    assert_eq!(can_i(&["create", "configmaps", "-n", "bsr"]), no);
    assert_eq!(can_i(&["create", "configmaps", "-n", "other"]), yes);
    assert_eq!(can_i(&["get", "configmaps", "-n", "bsr"]), yes);
    assert_eq!(can_i(&["create", "secrets", "-n", "bsr"]), yes);
    assert_eq!(can_i(&["create", "configmaps", "--all-namespaces"]), no);
    standin.deny(DenyRule::new(&[Verb::Update], "configmaps").in_namespace("bsr").named(LOCK));
    assert_eq!(can_i(&["update", &format!("configmaps/{LOCK}"), "-n", "bsr"]), no);
    assert_eq!(can_i(&["update", "configmaps/other", "-n", "bsr"]), yes);
    assert!(standin.allow(id));
    assert_eq!(can_i(&["create", "configmaps", "-n", "bsr"]), yes);
}

/// The binary's `--deny` makes a hand-started stand-in a restricted cluster.
#[test]
fn binary_denies_what_its_flags_name() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["--kubeconfig", kc.to_str().unwrap(), "--ready-delay", "0"])
        .args(["--deny", "get,list:secrets:default", "--deny", "*:deployments.apps"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !kc.exists() {
        assert!(std::time::Instant::now() < deadline, "no kubeconfig written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = std::fs::read_to_string(&kc)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: ").map(String::from))
        .unwrap();
    let k = Kubectl::at(&url);
    let secrets = k.run(&["get", "secrets", "-n", "default"]);
    let deployments = k.run(&["get", "deployments", "-n", "other"]);
    let configmaps = k.run(&["get", "configmaps", "-n", "default"]);
    let can_i = k.run(&["auth", "can-i", "list", "secrets", "-n", "default"]);
    let _ = child.kill();
    let _ = child.wait();
    let err = String::from_utf8_lossy(&secrets.stderr);
    assert!(
        err.contains(r#"Error from server (Forbidden): secrets is forbidden: User "standin" cannot list resource "secrets" in API group "" in the namespace "default""#),
        "{err}"
    );
    let err = String::from_utf8_lossy(&deployments.stderr);
    assert!(
        err.contains(r#"deployments.apps is forbidden: User "standin" cannot list resource "deployments" in API group "apps" in the namespace "other""#),
        "{err}"
    );
    assert!(configmaps.status.success(), "{configmaps:?}");
    assert_eq!(String::from_utf8_lossy(&can_i.stdout).trim(), "no");
}

for_each_helm!(helm_meets_denied_release_storage);
/// helm cannot write its release record where Secrets may not be created, and reports the
/// Forbidden error; once allowed, the same install succeeds.
fn helm_meets_denied_release_storage(v: HelmVersion) {
    let bed = Bed::new(v);
    let id = bed.standin.deny(DenyRule::new(&[Verb::Create], "secrets").in_namespace("default"));
    let err = bed.helm_err(&["install", "demo", &common::chart("demo-v1")]);
    assert!(
        err.contains(r#"secrets is forbidden: User "standin" cannot create resource "secrets" in API group "" in the namespace "default""#),
        "{v}: {err}"
    );
    assert!(bed.release_secrets("demo").is_empty(), "{v}");
    bed.standin.allow(id);
    bed.helm_ok(&["install", "demo", &common::chart("demo-v1")]);
    assert_eq!(bed.statuses("demo"), ["deployed"], "{v}");
}
