//! The daemon: watches the backlog, claims ready issues that a selector matches, runs a
//! workflow for each in its own worktree, and writes progress back to the backlog.
//!
//! - [`config`]: `.spool/config.toml`, parsed and validated without IO.
pub mod agent;
pub mod config;
pub mod instance;
pub mod issues;
pub mod progress;
pub mod report;
pub mod service;
