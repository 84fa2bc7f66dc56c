//! Chart sources for the helm-safe-upgrade test bed: vendor-like fixture charts
//! ([`fixtures`]), a loopback HTTP chart repository ([`ChartRepo`]) and a read-only OCI
//! registry stand-in ([`OciRegistry`]), all on 127.0.0.1 over plain HTTP, startable from
//! tests (each server runs on its own threads; dropping the handle stops it) and from
//! the `chart-standin` binary.

pub mod archive;
pub mod fixtures;
pub mod http;
pub mod oci;
pub mod repo;

pub use http::LoggedRequest;
pub use oci::{OciAuth, OciOptions, OciRegistry};
pub use repo::{ChartRepo, Credentials, RepoOptions};
