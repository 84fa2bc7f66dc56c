//! Interruptions end to end, with the real helm 3.19.0 and 4.1.4 on the bed: Ctrl-C while
//! helm upgrades, a second Ctrl-C, and `kill -9` followed by `--resume`. Whatever happens,
//! no release is left `pending-*`.

#[path = "e2e/bed.rs"]
mod bed;

use std::process::Child;
use std::time::{Duration, Instant};

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Poll helm's history until `ready` holds (or fail after 60 s).
fn wait_for(bed: &Bed, what: &str, ready: impl Fn(&[(u64, String, String)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let history = bed.history();
        if ready(&history) {
            return;
        }
        assert!(Instant::now() < deadline, "{}: timed out waiting for {what}; history {history:?}", bed.version);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_pending(history: &[(u64, String, String)]) -> bool {
    history.iter().all(|(_, s, _)| !s.starts_with("pending"))
}

fn ctrl_c_during_a_hop_finishes_it_and_stops(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let child = bed
        .tool()
        .args(["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // helm has started hop 1 once revision 2 exists.
    wait_for(&bed, "hop 1 to start", |h| h.len() >= 2);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{}: {stderr}", bed.version);
    assert!(stderr.contains("interrupted: the step under way finishes"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "stopped");
    assert_eq!(report["at"], "1.1.9", "the hop under way was finished: {report}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert_eq!(bed.history().last().unwrap().1, "deployed");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    // Running the same command again continues from there.
    bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
}
both_helms!(ctrl_c_during_a_hop, super::ctrl_c_during_a_hop_finishes_it_and_stops);

fn a_second_ctrl_c_stops_helm_without_leaving_it_pending(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // A broken image never becomes ready: helm would wait the whole minute.
    let child = bed
        .tool()
        .args([
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--yes",
            "--timeout",
            "60s",
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&bed, "hop 1 to start", |h| h.len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "the second Ctrl-C did not stop helm: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", bed.version);
    assert!(stderr.contains("stopping now"), "it says what it leaves behind before doing it: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("helm safe-rollback bsr --to 1.0.4"), "and what to do next: {stdout}");
    let history = bed.history();
    assert!(no_pending(&history), "{history:?}");
    assert_eq!(history.last().unwrap().1, "failed");
}
both_helms!(second_ctrl_c, super::a_second_ctrl_c_stops_helm_without_leaving_it_pending);

fn kill_9_then_resume_finishes_the_plan(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut child = bed
        .tool()
        .args(["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&bed, "hop 2 to start", |h| h.len() >= 3);
    child.kill().unwrap(); // SIGKILL: no cleanup, the lock stays.
    child.wait().unwrap();
    // The helm it started has its own process group and finishes on its own.
    wait_for(&bed, "the orphaned helm to finish", no_pending);
    // A plain new run is refused: the ledger is locked by the killed run.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 1);
    assert!(stderr.contains("locked") || stderr.contains("lock"), "{stderr}");
    // --resume checks that the holder is gone, takes the plan from the ledger and finishes.
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stderr.contains("resuming the upgrade to 1.3.0"), "{stderr}");
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.3.0");
    let history = bed.history();
    assert!(history.iter().all(|(_, s, _)| s == "superseded" || s == "deployed"), "{history:?}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(kill_9_then_resume, super::kill_9_then_resume_finishes_the_plan);
