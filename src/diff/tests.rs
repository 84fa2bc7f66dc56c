use serde_json::json;

use super::*;
use crate::sensitive::Disclosure;

/// What helm renders for the acme chart at 1.2.5 (`helm upgrade --dry-run=server -o json`'s
/// `manifest`, as helm writes it: `---` then the `# Source:` comment, one per template).
const BEFORE: &str = r#"---
# Source: acme/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: acme
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.5
type: Opaque
data:
  postgres-password: "ZGVtby1zM2NyZXQ="
  api-key: "ay0xMjM0"
---
# Source: acme/templates/configmap-legacy.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: acme-legacy
  labels:
    app.kubernetes.io/name: acme
data:
  legacy.conf: |
    mode=legacy
    workers=2
---
# Source: acme/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: acme-config
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.5
data:
  DATABASE_URL: "postgres://acme:demo-s3cret@postgres.prod.internal:5432/acme"
  LOG_FORMAT: json
---
# Source: acme/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: acme
  labels:
    app.kubernetes.io/name: acme
spec:
  type: ClusterIP
  ports:
    - port: 80
      targetPort: http
      protocol: TCP
      name: http
  selector:
    app.kubernetes.io/name: acme
---
# Source: acme/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: acme
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.5
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: acme
  template:
    metadata:
      labels:
        app.kubernetes.io/name: acme
    spec:
      containers:
        - name: acme
          image: "registry.example/acme/acme:1.2.5"
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: POSTGRES_HOST
              value: "postgres.prod.internal"
            - name: POSTGRES_PASSWORD
              value: "demo-s3cret"
"#;

/// The same release at 1.2.6: the image moves, the legacy ConfigMap goes, a metrics
/// Service comes, the API key is rotated, and the Service is written with its keys in
/// another order (and no other change).
const AFTER: &str = r#"---
# Source: acme/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: acme
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.6
type: Opaque
data:
  postgres-password: "ZGVtby1zM2NyZXQ="
  api-key: "ay01Njc4"
---
# Source: acme/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: acme-config
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.6
data:
  DATABASE_URL: "postgres://acme:demo-s3cret@postgres.prod.internal:5432/acme"
  LOG_FORMAT: json
---
# Source: acme/templates/service.yaml
kind: Service
apiVersion: v1
spec:
  selector:
    app.kubernetes.io/name: acme
  ports:
    - name: http
      protocol: TCP
      targetPort: http
      port: 80
  type: ClusterIP
metadata:
  labels:
    app.kubernetes.io/name: acme
  name: acme
---
# Source: acme/templates/service-metrics.yaml
apiVersion: v1
kind: Service
metadata:
  name: acme-metrics
  labels:
    app.kubernetes.io/name: acme
spec:
  ports:
    - port: 9090
      name: metrics
  selector:
    app.kubernetes.io/name: acme
---
# Source: acme/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: acme
  labels:
    app.kubernetes.io/name: acme
    helm.sh/chart: acme-1.2.6
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: acme
  template:
    metadata:
      labels:
        app.kubernetes.io/name: acme
    spec:
      containers:
        - name: acme
          image: "registry.example/acme/acme:1.2.6"
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: POSTGRES_HOST
              value: "postgres.prod.internal"
            - name: POSTGRES_PASSWORD
              value: "demo-s3cret"
"#;

fn values_before() -> Value {
    json!({
        "image": {"tag": "1.2.5"},
        "postgres": {"host": "postgres.prod.internal", "password": "demo-s3cret"},
        "apiKey": "k-1234",
        "legacy": {"enabled": true},
        "replicaCount": 3
    })
}

fn values_after() -> Value {
    json!({
        "image": {"tag": "1.2.6"},
        "postgres": {"host": "postgres.prod.internal", "password": "demo-s3cret"},
        "apiKey": "k-5678",
        "metrics": {"enabled": true},
        "replicaCount": 3
    })
}

fn secrets() -> Secrets {
    Secrets::from_values(&values_before()).union(&Secrets::from_values(&values_after()))
}

fn id(kind: &str, name: &str) -> Resource {
    Resource { kind: kind.into(), group: String::new(), namespace: None, name: name.into() }
}

/// Nothing the operator's values hold under a secret key, nor a Secret's data, in `text`.
fn assert_no_secret(text: &str) {
    for secret in ["demo-s3cret", "ZGVtby1zM2NyZXQ=", "k-1234", "k-5678", "ay0xMjM0", "ay01Njc4"] {
        assert!(!text.contains(secret), "{secret} shown in:\n{text}");
    }
}

#[test]
fn a_hop_adds_removes_and_changes_resources() {
    let diff = ManifestDiff::between(BEFORE, AFTER, &secrets()).unwrap();
    assert_eq!(diff.added, [id("Service", "acme-metrics")]);
    assert_eq!(diff.removed, [id("ConfigMap", "acme-legacy")]);
    let changed: Vec<(String, Vec<String>)> =
        diff.changed.iter().map(|c| (c.resource.to_string(), c.paths.clone())).collect();
    assert_eq!(
        changed,
        [
            ("ConfigMap/acme-config".to_string(), vec![r"metadata.labels.helm\.sh/chart".to_string()]),
            (
                "Deployment/acme".to_string(),
                vec![
                    "spec.template.spec.containers[0].image".to_string(),
                    r"metadata.labels.helm\.sh/chart".to_string()
                ]
            ),
            (
                "Secret/acme".to_string(),
                vec!["data.api-key".to_string(), r"metadata.labels.helm\.sh/chart".to_string()]
            ),
        ]
    );
    assert_eq!(diff.changed[1].resource.group, "apps");
    // The Service written in another key order is the same Service.
    assert_eq!(diff.unchanged, 1);
    assert!(!diff.is_empty());
}

#[test]
fn summary_lines_for_the_plan_table() {
    let diff = ManifestDiff::between(BEFORE, AFTER, &secrets()).unwrap();
    insta::assert_snapshot!("summary_lines", diff.summary_lines().join("\n"));
    let same = ManifestDiff::between(BEFORE, BEFORE, &secrets()).unwrap();
    assert_eq!(same.summary_lines(), ["= no change (5 resources)"]);
}

#[test]
fn the_json_shape_is_kebab_case_and_round_trips() {
    let diff = ManifestDiff::between(BEFORE, AFTER, &secrets()).unwrap();
    let text = serde_json::to_string_pretty(&diff).unwrap();
    insta::assert_snapshot!("manifest_diff_json", text);
    assert_eq!(serde_json::from_str::<ManifestDiff>(&text).unwrap(), diff);
    assert_no_secret(&text);
}

#[test]
fn unified_diff_is_masked_and_ignores_key_order() {
    let text = unified(BEFORE, AFTER, &secrets(), 3).unwrap();
    insta::assert_snapshot!("unified_context_3", text);
    assert_no_secret(&text);
    // The Service whose keys moved is not in it.
    assert!(!text.contains("acme, Service (v1) has changed"), "{text}");
    // The rotated API key: changed, neither value, no length.
    assert!(text.contains("-   api-key: --------\n+   api-key: ++++++++\n"), "{text}");
    assert!(!text.contains("bytes"), "{text}");
    // With the whole documents in context: the env var and the DSN that hold the
    // password show it masked.
    let whole = unified(BEFORE, AFTER, &secrets(), 1000).unwrap();
    assert_no_secret(&whole);
    assert!(whole.contains("    DATABASE_URL: postgres://acme:***@postgres.prod.internal:5432/acme\n"), "{whole}");
    assert!(whole.contains("          - name: POSTGRES_PASSWORD\n            value: \"***\"\n"), "{whole}");
}

#[test]
fn unified_diff_with_no_context_shows_only_changed_lines() {
    let text = unified(BEFORE, AFTER, &secrets(), 0).unwrap();
    let deployment = text.split("\n\n").find(|s| s.starts_with("acme, Deployment (apps)")).unwrap();
    insta::assert_snapshot!("unified_deployment_context_0", deployment);
    assert!(unified(AFTER, AFTER, &secrets(), 3).unwrap().is_empty());
}

#[test]
fn a_rotated_password_shows_as_changed_without_either_value() {
    let rotated = BEFORE.replace("demo-s3cret", "n3w-s3cret-2");
    let secrets = secrets().union(&Secrets::from_values(&json!({"postgres": {"password": "n3w-s3cret-2"}})));
    let diff = ManifestDiff::between(BEFORE, &rotated, &secrets).unwrap();
    let paths: Vec<&str> = diff.changed.iter().flat_map(|c| c.paths.iter().map(String::as_str)).collect();
    assert_eq!(paths, ["data.DATABASE_URL", "spec.template.spec.containers[0].env[1].value"]);
    let text = unified(BEFORE, &rotated, &secrets, 1).unwrap();
    assert!(!text.contains("n3w-s3cret-2") && !text.contains("demo-s3cret"), "{text}");
    assert!(text.contains("-   DATABASE_URL: --------\n+   DATABASE_URL: ++++++++"), "{text}");
    assert!(text.contains("-           value: --------\n+           value: ++++++++"), "{text}");
}

#[test]
fn a_changed_host_in_a_dsn_shows_with_the_password_masked() {
    let moved = BEFORE.replace("@postgres.prod.internal:5432", "@postgres.new.internal:5432");
    let text = unified(BEFORE, &moved, &secrets(), 0).unwrap();
    assert!(text.contains("-   DATABASE_URL: postgres://acme:***@postgres.prod.internal:5432/acme"), "{text}");
    assert!(text.contains("+   DATABASE_URL: postgres://acme:***@postgres.new.internal:5432/acme"), "{text}");
}

#[test]
fn a_secrets_entries_are_masked_even_when_no_value_names_them() {
    // `stringData` written by the chart itself (no value of the operator's): masked all
    // the same, its keys kept.
    let secret = "---\n# Source: acme/templates/s.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n\
                  stringData:\n  token: plain-text-token\n  config.json: '{\"a\": 1}'\n";
    let text = unified("", secret, &Secrets::default(), 3).unwrap();
    assert!(!text.contains("plain-text-token") && !text.contains("\"a\""), "{text}");
    assert!(text.contains("+   token: '***'") || text.contains("+   token: \"***\""), "{text}");
    assert!(text.contains("config.json"), "{text}");
}

#[test]
fn a_value_that_names_a_resource_is_no_secret() {
    // `auth.username` looks secret by its key (`auth`); the Deployment named like it must
    // still be readable.
    let secrets = Secrets::from_values(&json!({"auth": {"username": "acme", "password": "demo-s3cret"}}));
    let diff = ManifestDiff::between(BEFORE, AFTER, &secrets).unwrap();
    assert!(diff.summary_lines().iter().any(|l| l.starts_with("~ Deployment/acme (")), "{diff:?}");
    let text = unified(BEFORE, AFTER, &secrets, 3).unwrap();
    assert!(text.contains("acme, Deployment (apps) has changed:") && !text.contains("demo-s3cret"), "{text}");
}

#[test]
fn identities_keep_group_and_namespace_but_not_version() {
    let before = "apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: edge\n";
    let after = before.replace("v1beta1", "v1");
    let diff = ManifestDiff::between(before, &after, &Secrets::default()).unwrap();
    assert_eq!(diff.changed.len(), 1, "{diff:?}");
    let changed = &diff.changed[0];
    assert_eq!(changed.resource.to_string(), "Ingress/edge/web");
    assert_eq!(changed.resource.group, "networking.k8s.io");
    assert_eq!(changed.paths, ["apiVersion"]);
    let text = unified(before, &after, &Secrets::default(), 3).unwrap();
    assert!(text.starts_with("edge, web, Ingress (networking.k8s.io) has changed:\n"), "{text}");
}

#[test]
fn documents_that_render_no_resource_are_skipped() {
    let manifest = "---\n# Source: acme/templates/empty.yaml\n---\n# Source: acme/templates/off.yaml\n# nothing\n\
                    ---\njust a string\n---\n- a\n- list\n---\nkind: ConfigMap\nmetadata: {}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n--- {apiVersion: v1, kind: Secret, metadata: {name: inline}}\n";
    let diff = ManifestDiff::between("", manifest, &Secrets::default()).unwrap();
    assert_eq!(diff.added, [id("ConfigMap", "kept"), id("Secret", "inline")]);
}

#[test]
fn a_parse_error_names_the_template_and_masks_the_message() {
    let broken = "---\n# Source: acme/templates/ok.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n\
                  ---\n# Source: acme/templates/broken.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n\
                  data:\n  dsn: [\"demo-s3cret\", \n";
    let err = ManifestDiff::between(BEFORE, broken, &secrets()).unwrap_err();
    let DiffError::Yaml { side, template, message } = &err else { panic!("{err:?}") };
    assert_eq!((*side, template.as_str()), (Side::After, "acme/templates/broken.yaml"));
    assert!(!message.is_empty() && !message.contains('\n'));
    assert!(!err.to_string().contains("demo-s3cret"), "{err}");
    assert_eq!(
        err.to_string(),
        "the manifest rendered after the hop is not valid YAML in acme/templates/broken.yaml: \
         line 8 column 8: unclosed bracket '['"
    );
    // A document without a `# Source:` comment is named by its place.
    let err = ManifestDiff::between("a: 1\n---\nb: [\n", "", &secrets()).unwrap_err();
    assert!(
        matches!(&err, DiffError::Yaml { template, side: Side::Before, .. } if template == "document 2"),
        "{err:?}"
    );
}

#[test]
fn a_resource_rendered_twice_is_an_error() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: twice\n";
    let manifest = format!("---\n# Source: c/templates/a.yaml\n{doc}---\n# Source: c/templates/b.yaml\n{doc}");
    let err = ManifestDiff::between(&manifest, "", &Secrets::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the manifest rendered before the hop holds ConfigMap/twice twice (c/templates/a.yaml and c/templates/b.yaml)"
    );
}

#[test]
fn changed_paths_are_capped_and_counted() {
    let cm = |v: usize| {
        let data: String = (0..15).map(|i| format!("  key{i:02}: \"{v}\"\n")).collect();
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: many\ndata:\n{data}")
    };
    let diff = ManifestDiff::between(&cm(1), &cm(2), &Secrets::default()).unwrap();
    assert_eq!(diff.changed[0].paths.len(), MAX_PATHS);
    assert_eq!(diff.changed[0].more_paths, 5);
    assert_eq!(diff.summary_lines(), ["~ ConfigMap/many (data.key00, data.key01, data.key02, … 12 more)"]);
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(json["changed"][0]["more-paths"], 5);
    assert_eq!(json["changed"][0]["kind"], "ConfigMap");
}

#[test]
fn secrets_come_from_secret_keys_and_secret_shapes() {
    let values = json!({
        "postgres": {"password": "demo-s3cret", "host": "db", "port": 5432},
        "auth": {"enabled": true, "token": "true", "pin": 12345678, "timeout": 30},
        "session": {"ttl": "30s"},
        "externalDatabase": {"url": "postgres://u:longpassword@db/x"},
        "apiKeys": ["key-one", ""],
        "image": {"tag": "1.2.6"}
    });
    let secrets = Secrets::from_values(&values);
    assert_eq!(format!("{secrets:?}"), "Secrets(5 values)");
    for secret in ["demo-s3cret", "12345678", "30s", "postgres://u:longpassword@db/x", "key-one"] {
        assert_eq!(secrets.mask_text(secret), MASK, "{secret}");
    }
    for ordinary in ["db", "5432", "30", "true", "1.2.6"] {
        assert_eq!(secrets.mask_text(ordinary), ordinary);
    }
    assert_eq!(secrets.mask_text("ZGVtby1zM2NyZXQ="), MASK, "base64 of a secret");
    assert_eq!(secrets.mask_text("dsn=x:demo-s3cret@h"), "dsn=x:***@h");
    // Shorter than INNER_MIN_CHARS: only as a whole.
    assert_eq!(secrets.mask_text("key-one-two"), "key-one-two");
    assert!(Secrets::default().is_empty() && !secrets.is_empty());
}

#[test]
fn a_view_of_the_values_masks_their_secrets_and_keeps_the_rest() {
    let values = json!({
        "postgres": {"password": "demo-s3cret", "host": "db.prod.internal", "port": 5432},
        "auth": {"pin": 12345678, "timeout": 30},
        "extraEnv": [{"name": "DB_PASS_COPY", "value": "demo-s3cret"}, {"name": "MODE", "value": "fast"}],
        "externalDatabase": {"url": "postgres://u:longpassword@db/x"},
        "dsn": "host=db password=demo-s3cret",
        "banner": "welcome, demo-s3cret users"
    });
    let view = Secrets::from_values(&values).mask_values(&values);
    assert_eq!(
        view,
        json!({
            "postgres": {"password": "***", "host": "db.prod.internal", "port": 5432},
            "auth": {"pin": "***", "timeout": 30},
            "extraEnv": [{"name": "DB_PASS_COPY", "value": "***"}, {"name": "MODE", "value": "fast"}],
            "externalDatabase": {"url": "***"},
            "dsn": "***",
            "banner": "welcome, *** users"
        })
    );
}

#[test]
fn values_that_differ_are_listed_masked() {
    let changes = values_changes(&values_before(), &values_after(), &secrets());
    let lines: Vec<String> = changes.iter().map(|c| c.line(Disclosure::OperatorTerminal)).collect();
    assert_eq!(
        lines,
        ["~ apiKey: *** → ***", "~ image.tag: 1.2.5 → 1.2.6", "- legacy.enabled: true", "+ metrics.enabled: true"]
    );
    let redacted: Vec<String> = changes.iter().map(|c| c.line(Disclosure::Redacted)).collect();
    assert_eq!(redacted, ["~ apiKey", "~ image.tag", "- legacy.enabled", "+ metrics.enabled"]);
    let json = serde_json::to_string(&changes[1].redacted()).unwrap();
    assert_eq!(json, r#"{"path":"image.tag","change":"changed"}"#);
    assert_eq!(
        serde_json::to_value(&changes[1]).unwrap(),
        json!({"path": "image.tag", "change": "changed", "before": "1.2.5", "after": "1.2.6"})
    );
}

#[test]
fn values_lists_are_one_value_and_their_secrets_are_masked() {
    let before = json!({"extraEnv": [{"name": "DB_PASS_COPY", "value": "s3cr"}], "db": {"password": "s3cr"}});
    let after = json!({"extraEnv": [], "db": {"password": "s3cr"}, "ingress": {"hosts": ["a", "b"]}});
    let secrets = Secrets::from_values(&before);
    let changes = values_changes(&before, &after, &secrets);
    let lines: Vec<String> = changes.iter().map(|c| c.line(Disclosure::OperatorTerminal)).collect();
    assert_eq!(lines, [r#"~ extraEnv: [{"name":"DB_PASS_COPY","value":"***"}] → []"#, r#"+ ingress.hosts: ["a","b"]"#]);
    // `helm get values` says `null` for a release without values of its own.
    let from_nothing = values_changes(&Value::Null, &json!({"a": {"b": 1}}), &Secrets::default());
    assert_eq!(
        from_nothing,
        [ValueChange { path: "a.b".into(), change: Change::Added, before: None, after: Some("1".into()) }]
    );
    assert!(values_changes(&Value::Null, &json!({}), &Secrets::default()).is_empty());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A small manifest of ConfigMaps, Deployments and Secrets with arbitrary names, data
    /// and images, and with secret values placed where charts put them. Names are quoted:
    /// YAML 1.1, which Kubernetes reads, takes `n` and `y` for booleans.
    fn manifest(names: &[String], data: &[String], secret: &str) -> String {
        let mut out = String::new();
        for (i, name) in names.iter().enumerate() {
            let value = &data[i % data.len()];
            out.push_str(&format!(
                "---\n# Source: c/templates/{name}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{name}-cm\"\n\
                 data:\n  value: \"{value}\"\n  dsn: \"postgres://app:{secret}@db:5432/app?sslmode=require\"\n  \
                 config.ini: |\n    [db]\n    password = {secret}\n    host = db\n---\n\
                 # Source: c/templates/{name}-deploy.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: \"{name}\"\n  \
                 annotations:\n    note: \"{value}\"\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          \
                 image: \"r/{name}:{value}\"\n          env:\n            - name: PASSWORD\n              value: \"{secret}\"\n---\n\
                 apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"{name}-secret\"\nstringData:\n  password: \"{secret}\"\n"
            ));
        }
        out
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set("[a-z][a-z0-9]{0,6}", 1..4).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A manifest compared with itself: nothing added, removed or changed, every
        /// resource unchanged, and no unified diff.
        #[test]
        fn a_manifest_does_not_differ_from_itself(
            names in names(),
            data in proptest::collection::vec("[a-zA-Z0-9 ._-]{0,12}", 1..4),
            secret in "[a-zA-Z0-9]{8,20}",
        ) {
            let text = manifest(&names, &data, &secret);
            let secrets = Secrets::from_values(&json!({"db": {"password": secret}}));
            let diff = ManifestDiff::between(&text, &text, &secrets).unwrap();
            prop_assert!(diff.is_empty(), "{:?}", diff);
            prop_assert_eq!(diff.unchanged, names.len() * 3);
            prop_assert!(unified(&text, &text, &secrets, 3).unwrap().is_empty());
        }

        /// Whatever changes between two renderings, a secret from either side's values
        /// never reaches the unified diff, the summary or the JSON.
        #[test]
        fn masking_never_lets_a_secret_through(
            names in names(),
            data in proptest::collection::vec("[a-zA-Z0-9 ._-]{0,12}", 1..4),
            other in proptest::collection::vec("[a-zA-Z0-9 ._-]{0,12}", 1..4),
            old in "[a-zA-Z0-9]{8,20}",
            new in "[a-zA-Z0-9]{8,20}",
            keep in proptest::collection::vec(any::<bool>(), 1..4),
            context in 0usize..4,
        ) {
            let before = manifest(&names, &data, &old);
            let kept: Vec<String> = names.iter().zip(keep.iter().cycle()).filter(|(_, k)| **k).map(|(n, _)| n.clone()).collect();
            let after = manifest(&kept, &other, &new);
            let secrets = Secrets::from_values(&json!({"db": {"password": old}}))
                .union(&Secrets::from_values(&json!({"db": {"password": new}})));
            // A name or a data value may hold the secret by chance: then it is no secret.
            let shown_elsewhere = |s: &str| names.iter().chain(&data).chain(&other).any(|t| t.contains(s));
            prop_assume!(!shown_elsewhere(&old) && !shown_elsewhere(&new));
            let text = unified(&before, &after, &secrets, context).unwrap();
            let diff = ManifestDiff::between(&before, &after, &secrets).unwrap();
            let json = serde_json::to_string(&diff).unwrap();
            let summary = diff.summary_lines().join("\n");
            for secret in [&old, &new] {
                prop_assert!(!text.contains(secret.as_str()), "{} in:\n{}", secret, text);
                prop_assert!(!json.contains(secret.as_str()) && !summary.contains(secret.as_str()));
            }
        }

        /// A value under a secret-looking key never shows in the view of the values, where
        /// ever else it is copied.
        #[test]
        fn the_values_view_never_shows_a_secret(secret in "[a-zA-Z0-9]{8,20}", other in "[a-z]{1,6}") {
            prop_assume!(!other.contains(secret.as_str()));
            let values = json!({
                "db": {"password": secret, "url": format!("postgres://app:{secret}@db/app")},
                "env": [{"name": other, "value": format!("x{secret}y")}],
            });
            let view = Secrets::from_values(&values).mask_values(&values).to_string();
            prop_assert!(!view.contains(secret.as_str()), "{}", view);
            prop_assert!(view.contains(other.as_str()));
        }

        /// A value under a secret-looking key never shows in a values change.
        #[test]
        fn values_changes_never_show_a_secret(old in "[a-zA-Z0-9]{1,20}", new in "[a-zA-Z0-9]{1,20}") {
            prop_assume!(old != new);
            let before = json!({"db": {"password": old, "url": format!("postgres://app:{old}@db/app")}});
            let after = json!({"db": {"password": new, "url": format!("postgres://app:{new}@db/app")}});
            let secrets = Secrets::from_values(&before).union(&Secrets::from_values(&after));
            for change in values_changes(&before, &after, &secrets) {
                prop_assert_eq!(change.before.as_deref(), Some(MASK));
                prop_assert_eq!(change.after.as_deref(), Some(MASK));
            }
        }
    }
}
