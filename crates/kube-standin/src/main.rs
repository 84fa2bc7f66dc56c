//! `kube-standin`: serves the Kubernetes API stand-in until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kube_standin::{DenyRule, Options, StandIn};

/// A Kubernetes API stand-in on 127.0.0.1 that real helm 3 and 4 can drive.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where to write a kubeconfig for the stand-in, once it is listening.
    #[arg(long, value_name = "FILE")]
    kubeconfig: PathBuf,
    /// Address to listen on (default: a free port on 127.0.0.1).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Milliseconds after a spec change before workloads become ready; 0 makes them
    /// ready within the write request.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    ready_delay: u64,
    /// Print one line per request on stderr.
    #[arg(long)]
    log_requests: bool,
    /// Answer matching requests with 403 Forbidden, as a cluster whose RBAC lacks them
    /// (repeatable). VERBS: comma-separated get, list, watch, create, update, patch,
    /// delete, deletecollection, or `*`; RESOURCE: plural[.group][/subresource] or `*`;
    /// an empty or `*` namespace or name means any.
    #[arg(long, value_name = "VERBS:RESOURCE[:NAMESPACE[:NAME]]")]
    deny: Vec<DenyRule>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        listen: cli.listen,
        ready_delay: Duration::from_millis(cli.ready_delay),
        log_requests: cli.log_requests,
    };
    let standin = match StandIn::start(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for rule in cli.deny {
        eprintln!("kube-standin: denying {rule}");
        standin.deny(rule);
    }
    if let Err(e) = standin.write_kubeconfig(&cli.kubeconfig) {
        eprintln!("error: cannot write {}: {e}", cli.kubeconfig.display());
        return std::process::ExitCode::FAILURE;
    }
    eprintln!("kube-standin listening on {} (kubeconfig {})", standin.url(), cli.kubeconfig.display());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    drop(standin);
    std::process::ExitCode::SUCCESS
}
