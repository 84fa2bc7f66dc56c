//! `chart-standin`: packages the fixture charts into a directory and serves that
//! directory as an HTTP chart repository and/or a read-only OCI registry on 127.0.0.1
//! until SIGINT or SIGTERM. The URLs go to stderr, one `chart-standin: <what> <url>` line
//! each; stdout stays empty.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chart_standin::{ChartRepo, Credentials, OciAuth, OciOptions, OciRegistry, RepoOptions, fixtures};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    None,
    Basic,
    Bearer,
}

/// Serve packaged helm charts from a loopback chart repository and OCI registry.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Directory of packaged charts (*.tgz) to serve; created if missing.
    #[arg(long, value_name = "DIR")]
    charts_dir: PathBuf,
    /// Package every version of every fixture chart into --charts-dir first.
    #[arg(long)]
    package_fixtures: bool,
    /// Serve the HTTP chart repository on this address (e.g. 127.0.0.1:8879). When
    /// neither --repo-listen nor --oci-listen is given, both run on ephemeral ports.
    #[arg(long, value_name = "ADDR")]
    repo_listen: Option<SocketAddr>,
    /// Serve the OCI registry on this address (e.g. 127.0.0.1:5000).
    #[arg(long, value_name = "ADDR")]
    oci_listen: Option<SocketAddr>,
    /// Authentication the OCI registry requires.
    #[arg(long, value_enum, default_value = "none")]
    oci_auth: AuthMode,
    /// Require basic auth (--user/--password) on the chart repository too.
    #[arg(long)]
    repo_auth: bool,
    /// Largest tags/list page the OCI registry returns.
    #[arg(long, value_name = "N")]
    oci_page_size: Option<usize>,
    /// User name for --oci-auth basic|bearer and --repo-auth.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Password for --oci-auth basic|bearer and --repo-auth.
    #[arg(long, default_value = "admin")]
    password: String,
}

fn run(cli: Cli) -> std::io::Result<()> {
    std::fs::create_dir_all(&cli.charts_dir)?;
    if cli.package_fixtures {
        let written = fixtures::package_all(&cli.charts_dir)?;
        eprintln!("chart-standin: packaged {} fixture charts into {}", written.len(), cli.charts_dir.display());
    }
    let both = cli.repo_listen.is_none() && cli.oci_listen.is_none();
    let ephemeral = SocketAddr::from(([127, 0, 0, 1], 0));
    let creds = Credentials::new(&cli.user, &cli.password);
    let _repo = match (cli.repo_listen, both) {
        (Some(_), _) | (None, true) => {
            let basic_auth = cli.repo_auth.then(|| creds.clone());
            let repo = ChartRepo::start(
                &cli.charts_dir,
                RepoOptions { listen: cli.repo_listen.or(Some(ephemeral)), basic_auth },
            )?;
            eprintln!("chart-standin: repository {}{}", repo.url(), if cli.repo_auth { " (basic auth)" } else { "" });
            Some(repo)
        }
        _ => None,
    };
    let _oci = match (cli.oci_listen, both) {
        (Some(_), _) | (None, true) => {
            let auth = match cli.oci_auth {
                AuthMode::None => OciAuth::None,
                AuthMode::Basic => OciAuth::Basic(creds.clone()),
                AuthMode::Bearer => OciAuth::Bearer(creds.clone()),
            };
            let options = OciOptions {
                listen: cli.oci_listen.or(Some(ephemeral)),
                auth,
                page_size: cli.oci_page_size,
                ..OciOptions::default()
            };
            let oci = OciRegistry::start(&cli.charts_dir, options)?;
            eprintln!("chart-standin: oci {} (auth: {:?})", oci.reference("<chart>"), cli.oci_auth);
            Some(oci)
        }
        _ => None,
    };
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    if let Some(sig) = signals.forever().next() {
        eprintln!("chart-standin: stopping on signal {sig}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
