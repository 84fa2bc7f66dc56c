//! What reaches people and pipelines: plan tables, JSON documents, error reports.
//!
//! stdout carries data (a plan, a JSON document); stderr carries messages for people.

pub mod lines;
pub mod progress;
pub mod render;
pub mod timing;
