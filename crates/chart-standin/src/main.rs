//! `chart-standin`: packages the fixture charts and serves them (work in progress: the
//! HTTP chart repository only).

use std::path::PathBuf;

use chart_standin::{ChartRepo, RepoOptions, fixtures};

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map(PathBuf::from).expect("usage: chart-standin DIR");
    fixtures::package_all(&dir)?;
    let repo = ChartRepo::start(&dir, RepoOptions::default())?;
    eprintln!("chart-standin: repository {}", repo.url());
    loop {
        std::thread::park();
    }
}
