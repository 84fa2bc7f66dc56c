//! helm-safe-upgrade: vendors' upgrade policies made executable.
//!
//! Layers point down only: `cli` (clap) → `commands` (what to do) → `plan` and `policy`
//! (pure) and `ui` (rendering). The planner does no I/O.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod digest;
pub mod duration;
pub mod exit;
pub mod helm;
pub mod kube;
pub mod names;
pub mod plan;
pub mod policy;
pub mod release;
pub mod run;
pub mod setvalues;
pub mod term;
pub mod text;
pub mod ui;
pub mod version;
