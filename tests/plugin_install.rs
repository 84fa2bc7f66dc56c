//! The plugin installed the way users install it (README "Install"), with the real helm
//! 3.17.3, 3.19.0 and 4.1.4 in isolated helm homes: from the checkout directory and from
//! a git URL served on loopback (`git daemon`), the binary coming from the offline options
//! (`HELM_SAFE_UPGRADE_BIN`, `HELM_SAFE_UPGRADE_ARCHIVE`) or from a download of the release
//! archive over loopback HTTP, sha256-checked. Then both commands run, completion answers,
//! and uninstalling removes both plugins.
//!
//! The "checkout" is a copy of the working tree's files (tracked and new, not ignored), so
//! installs never write into the real checkout and tests can run side by side.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube_standin::testing::{HelmVersion, helm_path};

const BIN: &str = env!("CARGO_BIN_EXE_helm-safe-upgrade");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An isolated helm home (cache, config, data) for one helm version.
struct Home {
    version: HelmVersion,
    helm: PathBuf,
    dir: tempfile::TempDir,
}

impl Home {
    fn new(version: HelmVersion) -> Home {
        let dir = tempfile::Builder::new().prefix("hsu-plugin-").tempdir().unwrap();
        Home { version, helm: helm_path(version), dir }
    }

    fn plugins(&self) -> PathBuf {
        self.dir.path().join("data/plugins")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.helm);
        for (k, _) in std::env::vars() {
            if k.starts_with("HELM_") || k == "KUBECONFIG" {
                cmd.env_remove(k);
            }
        }
        let d = self.dir.path();
        cmd.env("HELM_CACHE_HOME", d.join("cache"))
            .env("HELM_CONFIG_HOME", d.join("config"))
            .env("HELM_DATA_HOME", d.join("data"))
            // No cluster: commands that need one fail fast instead of finding a real one.
            .env("KUBECONFIG", d.join("no-kubeconfig"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("spawn helm")
    }

    /// stdout of a helm command that must succeed.
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(out.status.success(), "{} {args:?} failed ({}):\n{}", self.version, out.status, both(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn both(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the checkout's files (what `git ls-files` would give a clone, plus new files)
/// in `<dest>/helm-safe-upgrade`.
fn checkout_copy(dest: &Path) -> PathBuf {
    let out = Command::new("git")
        .args(["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files: {}", both(&out));
    let copy = dest.join("helm-safe-upgrade");
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let from = Path::new(ROOT).join(rel);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = copy.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap(); // keeps the exec bits
    }
    copy
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", both(&out));
}

/// `git daemon` on 127.0.0.1 serving a bare clone of the checkout copy as
/// `git://127.0.0.1:PORT/helm-safe-upgrade`; killed on drop.
struct GitServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl GitServer {
    fn start() -> GitServer {
        let dir = tempfile::Builder::new().prefix("hsu-git-").tempdir().unwrap();
        let work = checkout_copy(&dir.path().join("work"));
        git(&work, &["init", "-q"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "snapshot of the checkout"]);
        let base = dir.path().join("served");
        std::fs::create_dir_all(&base).unwrap();
        git(&base, &["clone", "-q", "--bare", work.to_str().unwrap(), "helm-safe-upgrade"]);
        // git-daemon itself, not `git daemon`: `git` may stay a parent process, and
        // killing it would leave the daemon running.
        let exec_path = Command::new("git").arg("--exec-path").output().expect("git --exec-path");
        let daemon = PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
        for _ in 0..20 {
            let port = free_port();
            let mut child = Command::new(&daemon)
                .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(&base)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("git daemon");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return GitServer { child, url: format!("git://127.0.0.1:{port}/helm-safe-upgrade"), _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start");
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A minimal HTTP server on 127.0.0.1 serving the files of a directory (GET only),
/// standing in for the project's release downloads.
struct HttpServer {
    base: String,
}

impl HttpServer {
    fn serve(root: PathBuf) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || answer(stream, &root));
            }
        });
        HttpServer { base }
    }
}

fn answer(mut stream: TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    let file = root.join(&path);
    let (status, body) = match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => ("200 OK", body),
        _ => ("404 Not Found", b"not found".to_vec()),
    };
    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(&body);
}

/// `install-binary.sh`'s names for this machine.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux-{arch}")
}

fn archive_name() -> String {
    format!("helm-safe-upgrade-{VERSION}-{}.tar.gz", platform())
}

fn checksums_name() -> String {
    format!("helm-safe-upgrade-{VERSION}-checksums.txt")
}

/// The release archive and checksums file for this machine, made by the release
/// workflow's own packaging script, in `dir`.
fn release_files(dir: &Path) {
    let script = Path::new(ROOT).join(".github/scripts/package-release.sh");
    for args in [
        vec!["archive", VERSION, &platform(), BIN, dir.to_str().unwrap()],
        vec!["checksums", VERSION, dir.to_str().unwrap()],
    ] {
        let out = Command::new("sh").arg(&script).args(&args).output().expect("package-release.sh");
        assert!(out.status.success(), "package-release.sh {args:?}: {}", both(&out));
    }
}

/// PATH without any directory that holds cargo: the install hook then cannot fall back to
/// a build (tests never run cargo inside cargo).
fn path_without_cargo() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| !d.join("cargo").exists())
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Releases for helm's memory driver (HELM_DRIVER=memory loads them from YAML),
/// so completion lists real `helm list` output without a cluster.
const RELEASES: &str = "\
- name: bsr
  namespace: team-a
  version: 3
  info:
    status: deployed
  chart:
    metadata:
      name: bsr
      version: 1.0.4
      appVersion: 1.0.4
- name: coder
  namespace: team-a
  version: 1
  info:
    status: failed
  chart:
    metadata:
      name: coder
      version: 2.1.0
";

/// Candidates of `helm __complete ARGS` (without the directive line).
fn completions(home: &Home, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut full = vec!["__complete"];
    full.extend_from_slice(args);
    let out = home.ok(&full, env);
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    let directive = lines.pop().unwrap_or_default();
    (lines.into_iter().map(|l| l.split('\t').next().unwrap().to_string()).collect(), directive)
}

/// Everything after a successful install: both commands, help, list, completion,
/// global flags through the environment, then uninstall.
fn check_installed_and_uninstall(home: &Home, plugin_dir: &Path) {
    let plugins = home.plugins();
    assert!(plugins.join("safe-rollback/.installed-by-safe-upgrade").is_file(), "companion set up");

    // helm plugin list: both, with the plugin version (Helm 3 also shows the description).
    let list = home.ok(&["plugin", "list"], &[]);
    for name in ["safe-upgrade", "safe-rollback"] {
        let row = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in:\n{list}"));
        assert!(row.contains(VERSION), "{row}");
        if home.version.major() == 3 {
            assert!(row.contains(&format!("Usage and flags: helm {name} --help")), "{row}");
        }
    }

    // --help through helm (argv goes to the plugin) and helm's own help from plugin.yaml.
    let help = home.ok(&["safe-upgrade", "--help"], &[]);
    assert!(help.contains("Usage: helm safe-upgrade RELEASE --to VERSION") && help.contains("Exit codes:"), "{help}");
    let help = home.ok(&["safe-rollback", "--help"], &[]);
    assert!(
        help.contains("Usage: helm safe-rollback RELEASE [REVISION]") && help.contains("--accept-data-loss"),
        "{help}"
    );
    let helm_help = home.ok(&["help", "safe-upgrade"], &[]);
    assert!(helm_help.starts_with("Upgrade a release one vendor-supported hop at a time"), "{helm_help}");
    assert!(helm_help.contains("helm safe-upgrade --help"), "{helm_help}");

    // Both commands run: an offline plan each; helm's -n arrives as HELM_NAMESPACE.
    let plan = home.ok(
        &[
            "-n",
            "team-a",
            "safe-upgrade",
            "--from",
            "1.0.4",
            "--to",
            "1.1.9",
            "--policy",
            "bsr",
            "--versions",
            "1.0.4,1.1.9",
            "--plan",
            "-o",
            "json",
        ],
        &[],
    );
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(
        (plan["direction"].as_str(), plan["namespace"].as_str(), plan["to"].as_str()),
        (Some("upgrade"), Some("team-a"), Some("1.1.9"))
    );
    let table = home.ok(
        &["safe-upgrade", "--from", "1.0.4", "--to", "1.1.9", "--policy", "bsr", "--versions", "1.0.4,1.1.9", "--plan"],
        &[],
    );
    assert!(table.starts_with("upgrade 1.0.4 → 1.1.9"), "{table}");
    let back = home
        .ok(&["safe-rollback", "--from", "1.1.9", "--policy", "bsr", "--versions", "1.0.4,1.1.0,1.1.9", "--plan"], &[]);
    assert!(back.starts_with("rollback 1.1.9 → 1.1.0"), "{back}");

    // Completion: flags, policy names, -o values, release names from `helm list`.
    let (flags, directive) = completions(home, &["safe-upgrade", "--po"], &[]);
    assert_eq!((flags, directive.as_str()), (vec!["--policy".to_string()], ":4"));
    let (flags, _) = completions(home, &["safe-rollback", "bsr", "--"], &[]);
    assert!(
        flags.contains(&"--accept-data-loss".to_string()) && !flags.contains(&"--fast-path".to_string()),
        "{flags:?}"
    );
    let (policies, _) = completions(home, &["safe-upgrade", "bsr", "--policy", ""], &[]);
    for preset in ["bsr", "coder", "sourcegraph"] {
        assert!(policies.contains(&preset.to_string()), "{policies:?}");
    }
    let (outputs, _) = completions(home, &["safe-rollback", "-o", ""], &[]);
    assert_eq!(outputs, ["table", "json"]);
    let (versions, _) =
        completions(home, &["safe-upgrade", "bsr", "--versions", "1.0.4,1.1.9,1.2.0", "--to", "1.1"], &[]);
    assert_eq!(versions, ["1.1.9"]);
    let data = home.dir.path().join("releases.yaml");
    std::fs::write(&data, RELEASES).unwrap();
    let memory = [("HELM_DRIVER", "memory"), ("HELM_MEMORY_DRIVER_DATA", data.to_str().unwrap())];
    let (releases, directive) = completions(home, &["-n", "team-a", "safe-upgrade", ""], &memory);
    assert_eq!((releases, directive.as_str()), (vec!["bsr".to_string(), "coder".to_string()], ":4"));
    let (releases, _) = completions(home, &["-n", "team-a", "safe-rollback", "c"], &memory);
    assert_eq!(releases, ["coder"]);
    // --to from the --chart source: a directory of charts packaged by helm itself.
    let charts = home.dir.path().join("charts");
    for v in ["1.0.4", "1.1.9", "1.2.0"] {
        let chart = home.dir.path().join(format!("src-{v}/bsr"));
        std::fs::create_dir_all(&chart).unwrap();
        std::fs::write(chart.join("Chart.yaml"), format!("apiVersion: v2\nname: bsr\nversion: {v}\n")).unwrap();
        home.ok(&["package", chart.to_str().unwrap(), "-d", charts.to_str().unwrap()], &[]);
    }
    let (versions, directive) =
        completions(home, &["safe-upgrade", "bsr", "--chart", charts.to_str().unwrap(), "--to", ""], &[]);
    assert_eq!((versions, directive.as_str()), (vec!["1.2.0".to_string(), "1.1.9".into(), "1.0.4".into()], ":36"));
    // No cluster at all: no candidates, and still an answer.
    let (releases, directive) = completions(home, &["safe-upgrade", ""], &[]);
    assert_eq!((releases.len(), directive.as_str()), (0, ":4"));

    // Uninstall removes both.
    let out = home.ok(&["plugin", "uninstall", "safe-upgrade"], &[]);
    assert!(out.contains("removed companion plugin safe-rollback"), "{out}");
    let list = home.ok(&["plugin", "list"], &[]);
    assert!(!list.contains("safe-upgrade") && !list.contains("safe-rollback"), "{list}");
    let left: Vec<_> =
        std::fs::read_dir(&plugins).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", plugins.display());
    assert!(plugin_dir.join("plugin.yaml").is_file(), "the source directory itself is untouched");
}

fn install_from_directory(version: HelmVersion) {
    let home = Home::new(version);
    let src = checkout_copy(home.dir.path());
    let out = home.ok(&["plugin", "install", src.to_str().unwrap()], &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
    assert!(out.contains("(from HELM_SAFE_UPGRADE_BIN)") && out.contains("companion plugin safe-rollback"), "{out}");
    // A local directory is linked, not copied: the binary lands in it.
    assert!(home.plugins().join("helm-safe-upgrade").is_symlink());
    assert!(src.join("bin/helm-safe-upgrade").is_file());
    check_installed_and_uninstall(&home, &src);
}

fn install_from_git(version: HelmVersion) {
    let server = GitServer::start();
    let home = Home::new(version);
    let mut args = vec!["plugin", "install", server.url.as_str()];
    if version.major() == 4 {
        // Helm 4 verifies plugin sources and a git URL has no provenance.
        let out = home.run(&args, &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--verify=false"),
            "{}",
            both(&out)
        );
        args.push("--verify=false");
    }
    let out = home.ok(&args, &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
    assert!(out.contains("companion plugin safe-rollback"), "{out}");
    let dir = home.plugins().join("helm-safe-upgrade");
    assert!(dir.join(".git").is_dir() && dir.join("bin/helm-safe-upgrade").is_file());
    check_installed_and_uninstall(&home, &server._dir.path().join("work/helm-safe-upgrade"));
}

#[test]
fn install_from_directory_helm_3_17_3() {
    install_from_directory(HelmVersion::V3_17_3);
}

#[test]
fn install_from_directory_helm_3_19_0() {
    install_from_directory(HelmVersion::V3_19_0);
}

#[test]
fn install_from_directory_helm_4_1_4() {
    install_from_directory(HelmVersion::V4_1_4);
}

#[test]
fn install_from_git_helm_3_17_3() {
    install_from_git(HelmVersion::V3_17_3);
}

#[test]
fn install_from_git_helm_3_19_0() {
    install_from_git(HelmVersion::V3_19_0);
}

#[test]
fn install_from_git_helm_4_1_4() {
    install_from_git(HelmVersion::V4_1_4);
}

/// Install from a directory copy with `env`, no cargo on PATH; returns the output.
fn install_dir_with(home: &Home, src: &Path, env: &[(&str, &str)]) -> Output {
    let path = path_without_cargo();
    let mut env = env.to_vec();
    env.push(("PATH", &path));
    home.run(&["plugin", "install", src.to_str().unwrap()], &env)
}

fn download(version: HelmVersion) {
    let served = tempfile::tempdir().unwrap();
    release_files(&served.path().join(format!("v{VERSION}")));
    let server = HttpServer::serve(served.path().to_path_buf());
    let home = Home::new(version);
    let src = checkout_copy(home.dir.path());
    let url = format!("{}/v{VERSION}", server.base);
    let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_DOWNLOAD_URL", &url)]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("downloading {url}/{}", archive_name())), "{text}");
    assert!(text.contains(&format!("sha256 of {} verified", archive_name())), "{text}");
    assert!(text.contains(&format!("(downloaded release v{VERSION})")), "{text}");
    check_installed_and_uninstall(&home, &src);
}

#[test]
fn download_with_sha256_check_helm_3_19_0() {
    download(HelmVersion::V3_19_0);
}

#[test]
fn download_with_sha256_check_helm_4_1_4() {
    download(HelmVersion::V4_1_4);
}

/// A checksum mismatch stops the install, says the plugin is installed but unusable, and
/// the commands it gives (uninstall, install again) work once the file is right.
#[test]
fn checksum_mismatch_fails_cleanly_and_the_given_commands_recover() {
    let served = tempfile::tempdir().unwrap();
    let release = served.path().join(format!("v{VERSION}"));
    release_files(&release);
    let sums = release.join(checksums_name());
    let good = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, format!("{}  {}\n", "0".repeat(64), archive_name())).unwrap();
    let server = HttpServer::serve(served.path().to_path_buf());
    let url = format!("{}/v{VERSION}", server.base);
    for version in [HelmVersion::V3_19_0, HelmVersion::V4_1_4] {
        std::fs::write(&sums, format!("{}  {}\n", "0".repeat(64), archive_name())).unwrap();
        let home = Home::new(version);
        let src = checkout_copy(home.dir.path());
        let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_DOWNLOAD_URL", &url)]);
        let text = both(&out);
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("error: checksum mismatch for {}", archive_name())), "{stderr}");
        assert!(stderr.contains("nothing was installed"), "{stderr}");
        assert!(stderr.contains("safe-upgrade is installed but cannot run"), "{stderr}");
        let reinstall = format!(
            "  helm plugin uninstall safe-upgrade\n  helm plugin install {}\n",
            src.canonicalize().unwrap().display()
        );
        assert!(stderr.contains(&reinstall), "{stderr}");
        assert!(!src.join("bin/helm-safe-upgrade").exists(), "no unverified binary left in place");
        assert!(!home.plugins().join("safe-rollback").exists(), "no companion without a binary");
        assert!(!home.run(&["safe-upgrade", "--help"], &[]).status.success());

        // Follow the message.
        std::fs::write(&sums, &good).unwrap();
        home.ok(&["plugin", "uninstall", "safe-upgrade"], &[]);
        let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_DOWNLOAD_URL", &url)]);
        assert!(out.status.success(), "{}", both(&out));
        home.ok(&["safe-upgrade", "--tool-version"], &[]);
    }
}

/// No download possible and no cargo: exit non-zero with every offline way spelled out.
#[test]
fn unreachable_download_without_cargo_says_what_to_do() {
    let home = Home::new(HelmVersion::V3_17_3);
    let src = checkout_copy(home.dir.path());
    let url = format!("http://127.0.0.1:{}/v{VERSION}", free_port());
    let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_DOWNLOAD_URL", &url)]);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    for expected in [
        &format!("the download from {url} failed") as &str,
        "cargo is not installed, so it cannot be built from source",
        "error: no helm-safe-upgrade binary: the download failed and it cannot be built here",
        &format!("HELM_SAFE_UPGRADE_ARCHIVE=/path/to/{}", archive_name()),
        "HELM_SAFE_UPGRADE_BIN=/path/to/helm-safe-upgrade",
        "safe-upgrade is installed but cannot run",
        "helm plugin uninstall safe-upgrade",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
}

/// Air-gapped: a release archive on disk, checked against the checksums file next to it;
/// without one it installs with a warning; with a wrong one it refuses.
#[test]
fn local_archive_checked_against_the_checksums_next_to_it() {
    let release = tempfile::tempdir().unwrap();
    release_files(release.path());
    let archive = release.path().join(archive_name());

    let home = Home::new(HelmVersion::V4_1_4);
    let src = checkout_copy(home.dir.path());
    let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_ARCHIVE", archive.to_str().unwrap())]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("sha256 of {} verified", archive_name()))
            && text.contains("(from HELM_SAFE_UPGRADE_ARCHIVE)"),
        "{text}"
    );
    check_installed_and_uninstall(&home, &src);

    let alone = tempfile::tempdir().unwrap();
    let lone = alone.path().join(archive_name());
    std::fs::copy(&archive, &lone).unwrap();
    let home = Home::new(HelmVersion::V3_17_3);
    let src = checkout_copy(home.dir.path());
    let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_ARCHIVE", lone.to_str().unwrap())]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("warning: {} is NOT verified", archive_name())),
        "{text}"
    );
    home.ok(&["safe-rollback", "--tool-version"], &[]);

    std::fs::write(alone.path().join(checksums_name()), format!("{}  {}\n", "f".repeat(64), archive_name())).unwrap();
    let home = Home::new(HelmVersion::V3_19_0);
    let src = checkout_copy(home.dir.path());
    let out = install_dir_with(&home, &src, &[("HELM_SAFE_UPGRADE_ARCHIVE", lone.to_str().unwrap())]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"),
        "{}",
        both(&out)
    );
}

/// An extracted release archive installs with no network and no variables: it ships the
/// binary.
#[test]
fn extracted_release_archive_installs_offline() {
    let release = tempfile::tempdir().unwrap();
    release_files(release.path());
    let dir = release.path().join("helm-safe-upgrade");
    std::fs::create_dir_all(&dir).unwrap();
    let out =
        Command::new("tar").arg("-xzf").arg(release.path().join(archive_name())).arg("-C").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    for version in [HelmVersion::V3_17_3, HelmVersion::V4_1_4] {
        let home = Home::new(version);
        let out = install_dir_with(&home, &dir, &[]);
        let text = both(&out);
        assert!(out.status.success() && text.contains("using the binary shipped in this release archive"), "{text}");
        check_installed_and_uninstall(&home, &dir);
    }
}

/// The release workflow publishes what install-binary.sh downloads: the same archive and
/// checksum names (both through package-release.sh, which the tests above use) and the
/// same platforms.
#[test]
fn release_workflow_and_install_script_agree() {
    let read = |p: &str| std::fs::read_to_string(Path::new(ROOT).join(p)).unwrap();
    let script = read("install-binary.sh");
    let package = read(".github/scripts/package-release.sh");
    let workflow = read(".github/workflows/release.yml");
    assert!(script.contains(r#"asset="helm-safe-upgrade-$version-$os-$arch.$ext""#));
    assert!(package.contains(r#"name="helm-safe-upgrade-$version-$platform.$ext""#));
    assert!(script.contains(r#"sums="helm-safe-upgrade-$version-checksums.txt""#));
    assert!(package.contains(r#"sums="helm-safe-upgrade-$version-checksums.txt""#));
    assert!(script.contains("releases/download/v$version") && workflow.contains(r#"tags: ["v*"]"#));
    // Windows archives are zips on both sides.
    assert!(script.contains("if [ \"$os\" = windows ]; then exe=.exe; ext=zip; fi"));
    assert!(package.contains("windows-*) exe=.exe ext=zip"));

    let supported: Vec<&str> = script
        .lines()
        .find(|l| l.trim_start().starts_with("linux-amd64 |"))
        .expect("the supported platforms in install-binary.sh")
        .trim()
        .trim_end_matches(") ;;")
        .split(" | ")
        .collect();
    let built: Vec<&str> = workflow.lines().filter_map(|l| l.trim().strip_prefix("- platform: ")).collect();
    assert_eq!(built, supported, "workflow matrix vs install-binary.sh");
    let checked = workflow.lines().find(|l| l.contains("for f in linux-amd64.tar.gz")).unwrap();
    for platform in &supported {
        assert!(checked.contains(&format!("{platform}.")), "publish job does not check {platform}");
    }
    assert!(workflow.contains("package-release.sh archive") && workflow.contains("package-release.sh checksums"));
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(workflow.contains(&format!("target: {target}")), "{target}");
    }
}

/// `helm plugin update` (git installs) runs the hook again. helm removes the binary (an
/// ignored file) before the hook runs, so a failed update says the plugin cannot run and
/// how to install it again; those commands work.
#[test]
fn update_of_a_git_install_and_recovery_from_a_failed_update() {
    let server = GitServer::start();
    for version in [HelmVersion::V3_19_0, HelmVersion::V4_1_4] {
        let home = Home::new(version);
        let mut args = vec!["plugin", "install", server.url.as_str()];
        if version.major() == 4 {
            args.push("--verify=false");
        }
        home.ok(&args, &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
        let out = home.run(&["plugin", "update", "safe-upgrade"], &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
        let text = both(&out);
        assert!(out.status.success() && text.contains("update: installed safe-upgrade"), "{text}");
        let out = home.run(&["plugin", "update", "safe-upgrade"], &[("HELM_SAFE_UPGRADE_BIN", "/no/such/binary")]);
        let text = both(&out);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("HELM_SAFE_UPGRADE_BIN=/no/such/binary is not a file"), "{text}");
        assert!(
            text.contains("helm keeps a plugin whose update hook failed: safe-upgrade is installed but cannot run"),
            "{version}: {text}"
        );
        let reinstall = format!(
            "  helm plugin uninstall safe-upgrade\n  helm plugin install {}   # Helm 4: add --verify=false\n",
            server.url
        );
        assert!(text.contains(&reinstall), "{version}: {text}");
        assert!(
            !home.run(&["safe-upgrade", "--tool-version"], &[]).status.success(),
            "{version}: helm removed the binary before the hook"
        );
        home.ok(&["plugin", "uninstall", "safe-upgrade"], &[]);
        home.ok(&args, &[("HELM_SAFE_UPGRADE_BIN", BIN)]);
        home.ok(&["safe-upgrade", "--tool-version"], &[]);
        home.ok(&["safe-rollback", "--tool-version"], &[]);
        home.ok(&["plugin", "uninstall", "safe-upgrade"], &[]);
        assert!(!home.plugins().join("safe-rollback").exists());
    }
}

/// The tool reads helm's major version from the binary's Go build info rather than
/// starting `helm version`: on every real helm, it says what `helm version` says.
#[test]
fn helms_major_version_from_its_build_info_is_what_helm_says() {
    for version in [HelmVersion::V3_17_3, HelmVersion::V3_19_0, HelmVersion::V4_1_4] {
        let path = helm_path(version);
        let out = Command::new(&path).args(["version", "--template", "{{.Version}}"]).output().unwrap();
        let said = String::from_utf8(out.stdout).unwrap();
        let major: u32 = said.trim_start_matches('v').split('.').next().unwrap().parse().unwrap();
        assert_eq!(major, version.major(), "{version}: {said}");
        assert_eq!(helm_safe_upgrade::helm::major_from_build_info(&path), Some(major), "{version}");
    }
}
