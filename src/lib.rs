//! helm-safe-upgrade: vendors' upgrade policies made executable.
//!
//! Layers point down only (the README's Layout shows them; `tests/layers.rs` checks them):
//! `commands` (flags → what to do) → `run` (the live pipeline) → `ui`, `release`,
//! `catalog` → `helm` (the one place that spawns processes) → `report` → `plan` (pure) →
//! `policy` → `version` → `diff` (pure), with small leaves (`printer`, `signals`, `env`,
//! `text`, …) below.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod diff;
pub mod digest;
pub mod disclose;
pub mod duration;
pub mod env;
pub mod exit;
pub mod fleet;
pub mod helm;
pub mod history;
pub mod kube;
pub mod names;
pub mod plan;
pub mod policy;
pub mod printer;
pub mod release;
pub mod report;
pub mod run;
pub mod sensitive;
pub mod setvalues;
pub mod signals;
pub mod terminal;
pub mod text;
pub mod ui;
pub mod version;
