//! The executor: walks a plan on a live release. It decides nothing about the path (the
//! planner did) and spawns nothing itself (everything goes through `crate::helm`).

pub mod backup;
pub mod holder;
pub mod interact;
pub mod journal;
pub mod ledger;
pub mod options;
pub mod session;
pub mod unready;
pub mod values;
pub mod walk;
