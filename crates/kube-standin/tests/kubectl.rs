//! kubectl (the provisioned v1.34) against the stand-in: get, apply (client- and
//! server-side), patch in three formats, scale, rollout status and delete.

use std::process::Output;

use kube_standin::testing::kubectl_path;
use kube_standin::{Options, StandIn};
use serde_json::Value;

struct Kubectl {
    standin: StandIn,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new() -> Self {
        let standin = StandIn::start(Options::default()).expect("start the stand-in");
        let dir = tempfile::tempdir().unwrap();
        standin.write_kubeconfig(&dir.path().join("kubeconfig")).unwrap();
        Kubectl { standin, dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(kubectl_path())
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .args(args)
            .output()
            .expect("spawn kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn deployment(&self) -> Value {
        self.standin.get("apps/v1", "deployments", Some("default"), "web").expect("deployment web")
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"#;

#[test]
fn kubectl_get_apply_patch_scale_rollout_delete() {
    let k = Kubectl::new();
    let manifest = k.file("d.yaml", DEPLOYMENT);
    assert!(k.ok(&["apply", "-f", &manifest]).contains("created"));
    // Client-side apply of a changed manifest: a strategic merge patch from kubectl.
    let changed = k.file("d2.yaml", &DEPLOYMENT.replace("1.25", "1.26").replace(r#", {name: B, value: "2"}"#, ""));
    assert!(k.ok(&["apply", "-f", &changed]).contains("configured"));
    let c = &k.deployment()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!((c["image"].as_str(), c["env"].as_array().unwrap().len()), (Some("nginx:1.26"), 1));

    k.ok(&["scale", "deployment/web", "--replicas=3"]);
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(k.deployment()["status"]["readyReplicas"], 3);
    let pods = k.ok(&["get", "pods", "-l", "app=web", "-o", "json"]);
    let pods: Value = serde_json::from_str(&pods).unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 3);

    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#,
    ]);
    k.ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"x":"y"}}}"#]);
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/z","value":"w"}]"#,
    ]);
    let d = k.deployment();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!((d["metadata"]["labels"]["x"].as_str(), d["metadata"]["labels"]["z"].as_str()), (Some("y"), Some("w")));
    let table = k.ok(&["get", "deployments"]);
    assert!(table.contains("NAME") && table.contains("web"), "{table}");

    // Server-side apply conflicts with the fields kubectl patch and scale took over.
    let out = k.run(&["apply", "--server-side", "-f", &changed]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("conflict with \"kubectl"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &changed]);
    assert_eq!(k.deployment()["spec"]["replicas"], 1);

    k.ok(&["delete", "deployment", "web"]);
    assert!(k.standin.get("apps/v1", "deployments", Some("default"), "web").is_none());
    assert!(k.standin.list("v1", "pods", Some("default")).is_empty(), "pods not garbage-collected");
    let out = k.run(&["get", "deployment", "web"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

/// The binary writes a kubeconfig once it listens and serves until it is stopped.
#[test]
fn binary_writes_kubeconfig_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["--kubeconfig", kc.to_str().unwrap(), "--ready-delay", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !kc.exists() {
        assert!(std::time::Instant::now() < deadline, "no kubeconfig written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = std::process::Command::new(kubectl_path())
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/default"), "{out:?}");
}
