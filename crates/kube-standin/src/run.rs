//! What a container "does" on the stand-in, which starts no process. Three annotations on
//! a pod (pods inherit them from their template, so they go on a Job's or Deployment's
//! `spec.template.metadata.annotations`) stand in for the program:
//!
//! - [`RUN_SECONDS`]: how long a run-once pod's containers run before they exit (a Job's
//!   pod, a bare `restartPolicy: Never`/`OnFailure` pod or a helm hook/test pod); default 0,
//!   they exit on the first reconcile. For an image that never pulls (`broken`), how long
//!   the stand-in lets it retry before it fails the Job.
//! - [`EXIT_CODE`]: how they exit (0–255, default 0); non-zero fails the pod.
//! - [`LOG`]: what they print, which `pods/log` answers; default two lines naming the
//!   image and command stood in for.
//!
//! Values are checked on every write, so a typo fails the `kubectl apply`/`helm install`
//! with `422 Invalid` instead of silently running with the default.
//!
//! [`log`] answers `GET …/pods/NAME/log` as kube-apiserver and the kubelet do: the
//! container chosen or defaulted by the API server's rules, the kubelet's errors for a
//! container that has not started, and `tailLines`, `limitBytes`, `timestamps`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::api::ApiError;

/// Seconds a run-once pod's containers run (a decimal number, e.g. `"3"` or `"0.5"`).
pub const RUN_SECONDS: &str = "kube-standin/run-seconds";
/// Exit code of a run-once pod's containers (`"0"`–`"255"`).
pub const EXIT_CODE: &str = "kube-standin/exit-code";
/// The text every container of the pod logs (lines separated by `\n`).
pub const LOG: &str = "kube-standin/log";

/// The longest run accepted: a day, so that a wrong unit (milliseconds) is caught.
const MAX_RUN_SECONDS: f64 = 86_400.0;

/// How a run-once pod's containers behave, from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Script {
    pub run: Duration,
    pub exit_code: i64,
}

impl Script {
    /// The script of a pod or pod template, from its `metadata`; `field` names that
    /// metadata in error messages (`metadata`, `spec.template.metadata`).
    pub fn parse(metadata: &Value, field: &str) -> Result<Script, String> {
        let annotation = |key: &str| metadata.pointer(&format!("/annotations/{}", key.replace('/', "~1")));
        let invalid = |key: &str, v: &Value, why: &str| {
            format!("{field}.annotations[{key}]: Invalid value: {v}: {why} (a kube-standin annotation)")
        };
        let mut script = Script::default();
        if let Some(v) = annotation(RUN_SECONDS) {
            let secs = v
                .as_str()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && (0.0..=MAX_RUN_SECONDS).contains(s))
                .ok_or_else(|| {
                    invalid(RUN_SECONDS, v, "must be a number of seconds from 0 to 86400, e.g. \"3\" or \"0.5\"")
                })?;
            script.run = Duration::from_secs_f64(secs);
        }
        if let Some(v) = annotation(EXIT_CODE) {
            script.exit_code = v
                .as_str()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|c| (0..=255).contains(c))
                .ok_or_else(|| invalid(EXIT_CODE, v, "must be an exit code from 0 to 255"))?;
        }
        if let Some(v) = annotation(LOG)
            && !v.is_string()
        {
            return Err(invalid(LOG, v, "must be a string"));
        }
        Ok(script)
    }

    /// The script of a stored pod (validated when it was written; defaults otherwise).
    pub fn of_pod(pod: &Value) -> Script {
        Script::parse(&pod["metadata"], "metadata").unwrap_or_default()
    }
}

/// Checks the annotations of a pod or of the pod template of a workload or Job.
pub fn validate(kind: &str, obj: &Value) -> Result<(), String> {
    match kind {
        "Pod" => Script::parse(&obj["metadata"], "metadata").map(|_| ()),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            Script::parse(&obj["spec"]["template"]["metadata"], "spec.template.metadata").map(|_| ())
        }
        "CronJob" => Script::parse(
            &obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
            "spec.jobTemplate.spec.template.metadata",
        )
        .map(|_| ()),
        _ => Ok(()),
    }
}

fn names(containers: &Value) -> Vec<String> {
    containers.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(String::from)).collect()
}

/// The text `container` of `pod` logs: the [`LOG`] annotation, or two lines saying what
/// it stands in for. Always ends in a newline, as a program's lines do.
fn text(pod: &Value, container: &Value) -> String {
    let mut text = match pod
        .pointer(&format!("/metadata/annotations/{}", LOG.replace('/', "~1")))
        .and_then(Value::as_str)
    {
        Some(t) => t.to_string(),
        None => {
            let argv: Vec<&str> = ["command", "args"]
                .iter()
                .flat_map(|k| container[*k].as_array().into_iter().flatten().filter_map(Value::as_str))
                .collect();
            let run = if argv.is_empty() { "the image's entrypoint".to_string() } else { argv.join(" ") };
            format!(
                "kube-standin: container {:?} stands in for image {:?}; no process runs\nkube-standin: it would run: {run}\n",
                container["name"].as_str().unwrap_or_default(),
                container["image"].as_str().unwrap_or_default()
            )
        }
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// An optional non-negative integer query parameter, refused as kube-apiserver refuses it.
fn int_param(query: &HashMap<String, String>, key: &str, min: i64, rule: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = query.get(key) else { return Ok(None) };
    let n: i64 = raw
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{key}: Invalid value: {raw:?}: {e} (an integer is required)")))?;
    if n < min {
        return Err(ApiError::bad_request(format!("{key}: Invalid value: {n}: {rule}")));
    }
    Ok(Some(n))
}

/// `GET /api/v1/namespaces/NS/pods/NAME/log`: the container's log as `text/plain`.
///
/// The container is `container=` or the pod's only one; otherwise `400` with the API
/// server's "a container name must be specified for pod P, choose one of: [a b]" (init
/// containers listed first, as its `validateContainer` visits them) or "container X is not
/// valid for pod P". A pod not yet scheduled logs nothing (the API server then has no
/// node to ask). A container that has not started gets the kubelet's `400` "container
/// "X" in pod "P" is waiting to start: …" (`trying and failing to pull image` for
/// `ImagePullBackOff`). No container restarts on the stand-in, so `previous=true` is the
/// kubelet's "previous terminated container … not found". `tailLines` keeps the last
/// lines, `limitBytes` then cuts the bytes, `timestamps=true` prefixes each line with the
/// container's start time (RFC 3339 with nanoseconds, as the kubelet writes). `follow`,
/// `sinceSeconds` and `sinceTime` are accepted and ignored: the whole text is sent at once.
pub fn log(pod: &Value, query: &HashMap<String, String>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &pod["spec"];
    let tail = int_param(query, "tailLines", 0, "must be greater than or equal to 0")?;
    let limit = int_param(query, "limitBytes", 1, "must be greater than 0")?;
    let name = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            let all = [names(&spec["initContainers"]), names(&spec["containers"])].concat();
            if !all.contains(c) {
                return Err(ApiError::bad_request(format!("container {c} is not valid for pod {pod_name}")));
            }
            c.clone()
        }
        None => match names(&spec["containers"]).as_slice() {
            [only] => only.clone(),
            [] => return Err(ApiError::bad_request(format!("a container name must be specified for pod {pod_name}"))),
            _ => {
                let all = [names(&spec["initContainers"]), names(&spec["containers"])].concat();
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    all.join(" ")
                )));
            }
        },
    };
    if spec["nodeName"].as_str().is_none_or(str::is_empty) {
        return Ok(String::new());
    }
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|k| pod["status"][*k].as_array().into_iter().flatten());
    let Some(status) = statuses.into_iter().find(|s| s["name"] == name.as_str()) else {
        return Err(ApiError::bad_request(format!("container {name:?} in pod {pod_name:?} is not available")));
    };
    if query.get("previous").is_some_and(|p| p == "true" || p == "1") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container {name:?} in pod {pod_name:?} not found"
        )));
    }
    let state = &status["state"];
    let started = if let Some(w) = state.get("waiting") {
        let why = match w["reason"].as_str().unwrap_or_default() {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            other => other.to_string(),
        };
        return Err(ApiError::bad_request(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start: {why}"
        )));
    } else if let Some(r) = state.get("running") {
        r["startedAt"].as_str().unwrap_or_default()
    } else if let Some(t) = state.get("terminated") {
        t["startedAt"].as_str().unwrap_or_default()
    } else {
        return Err(ApiError::bad_request(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start - no logs yet"
        )));
    };
    let all = [spec["initContainers"].as_array(), spec["containers"].as_array()];
    let container =
        all.into_iter().flatten().flatten().find(|c| c["name"] == name.as_str()).cloned().unwrap_or_default();
    let full = text(pod, &container);
    let mut lines: Vec<&str> = full.split_inclusive('\n').collect();
    if let Some(n) = tail {
        lines.drain(..lines.len().saturating_sub(n as usize));
    }
    let stamp = started.strip_suffix('Z').map(|s| format!("{s}.000000000Z ")).unwrap_or_default();
    let mut out = String::new();
    for line in lines {
        if query.get("timestamps").is_some_and(|t| t == "true" || t == "1") {
            out.push_str(&stamp);
        }
        out.push_str(line);
    }
    if let Some(n) = limit {
        // limitBytes counts bytes and may cut a character; the text stays valid UTF-8 here.
        let mut end = (n as usize).min(out.len());
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn pod(annotations: Value, state: Value) -> Value {
        json!({"metadata": {"name": "job-abcde", "annotations": annotations},
            "spec": {"nodeName": "standin-node", "containers": [{"name": "migrate", "image": "bufd:1.1.9",
                "args": ["migrate", "--to-schema", "222"]}]},
            "status": {"containerStatuses": [{"name": "migrate", "state": state}]}})
    }

    #[test]
    fn scripts_parse_and_refuse_typos() {
        let meta = json!({"annotations": {RUN_SECONDS: "0.5", EXIT_CODE: "3"}});
        assert_eq!(Script::parse(&meta, "metadata").unwrap(), Script { run: Duration::from_millis(500), exit_code: 3 });
        assert_eq!(Script::parse(&json!({}), "metadata").unwrap(), Script::default());
        let e = Script::parse(&json!({"annotations": {RUN_SECONDS: "3s"}}), "spec.template.metadata").unwrap_err();
        assert!(
            e.starts_with("spec.template.metadata.annotations[kube-standin/run-seconds]: Invalid value: \"3s\""),
            "{e}"
        );
        assert!(Script::parse(&json!({"annotations": {EXIT_CODE: "256"}}), "metadata").is_err());
        assert!(Script::parse(&json!({"annotations": {RUN_SECONDS: "-1"}}), "metadata").is_err());
        let job = json!({"spec": {"template": {"metadata": {"annotations": {EXIT_CODE: "x"}}}}});
        assert!(validate("Job", &job).is_err());
        assert!(validate("ConfigMap", &job).is_ok());
    }

    #[test]
    fn logs_default_tail_limit_and_timestamps() {
        let running = json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        let p = pod(json!({}), running.clone());
        assert_eq!(
            log(&p, &q(&[])).unwrap(),
            "kube-standin: container \"migrate\" stands in for image \"bufd:1.1.9\"; no process runs\n\
             kube-standin: it would run: migrate --to-schema 222\n"
        );
        let p = pod(
            json!({LOG: "one\ntwo\nthree"}),
            json!({"terminated": {"exitCode": 1, "startedAt": "2026-01-01T00:00:00Z"}}),
        );
        assert_eq!(log(&p, &q(&[])).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(log(&p, &q(&[("tailLines", "2")])).unwrap(), "two\nthree\n");
        assert_eq!(log(&p, &q(&[("tailLines", "0")])).unwrap(), "");
        assert_eq!(log(&p, &q(&[("tailLines", "9"), ("limitBytes", "5")])).unwrap(), "one\nt");
        assert_eq!(
            log(&p, &q(&[("tailLines", "1"), ("timestamps", "true")])).unwrap(),
            "2026-01-01T00:00:00.000000000Z three\n"
        );
        assert_eq!(log(&p, &q(&[("container", "migrate")])).unwrap(), "one\ntwo\nthree\n");
        let e = log(&p, &q(&[("tailLines", "-1")])).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "tailLines: Invalid value: -1: must be greater than or equal to 0")
        );
        assert_eq!(log(&p, &q(&[("limitBytes", "0")])).unwrap_err().code, 400);
        assert_eq!(log(&p, &q(&[("tailLines", "x")])).unwrap_err().code, 400);
        let e = log(&p, &q(&[("previous", "true")])).unwrap_err();
        assert_eq!(e.message, "previous terminated container \"migrate\" in pod \"job-abcde\" not found");
    }

    #[test]
    fn log_errors_read_as_the_api_servers() {
        let backoff = pod(json!({}), json!({"waiting": {"reason": "ImagePullBackOff"}}));
        let e = log(&backoff, &q(&[])).unwrap_err();
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (
                400,
                "BadRequest",
                "container \"migrate\" in pod \"job-abcde\" is waiting to start: trying and failing to pull image"
            )
        );
        let pull = pod(json!({}), json!({"waiting": {"reason": "ErrImagePull"}}));
        assert!(log(&pull, &q(&[])).unwrap_err().message.ends_with("is waiting to start: image can't be pulled"));
        let creating = pod(json!({}), json!({"waiting": {"reason": "ContainerCreating"}}));
        assert!(log(&creating, &q(&[])).unwrap_err().message.ends_with("is waiting to start: ContainerCreating"));

        let mut two = pod(json!({}), json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}));
        two["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "sidecar", "image": "x"}));
        two["spec"]["initContainers"] = json!([{"name": "init", "image": "y"}]);
        let e = log(&two, &q(&[])).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod job-abcde, choose one of: [init migrate sidecar]"
        );
        let e = log(&two, &q(&[("container", "nope")])).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "container nope is not valid for pod job-abcde"));
        assert!(log(&two, &q(&[("container", "sidecar")])).unwrap_err().message.contains("is not available"));

        let mut unscheduled = pod(json!({}), json!({}));
        unscheduled["spec"]["nodeName"] = Value::Null;
        assert_eq!(log(&unscheduled, &q(&[])).unwrap(), "", "no node to ask yet");
    }
}
