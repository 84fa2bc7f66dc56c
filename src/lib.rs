//! helm-safe-upgrade: vendors' upgrade policies made executable.
//!
//! Layers point down only: `cli` (clap) → `commands` (what to do) → `plan` and `policy`
//! (pure) and `ui` (rendering). The planner does no I/O.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod exit;
pub mod helm;
pub mod plan;
pub mod policy;
pub mod release;
pub mod run;
pub mod ui;
pub mod version;
