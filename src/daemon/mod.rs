//! The daemon: watches the backlog, claims ready issues that a selector matches, runs a
//! workflow for each in its own worktree, and writes progress back to the backlog.
//!
//! - [`config`]: `.spool/config.toml`, parsed and validated without IO.
//! - [`service`]: the event loop of `spool up` (watch, reconcile, claim, start, finish).
//! - [`issues`]: the daemon's backlog writes, each committed alone.
//! - [`progress`]: run inputs, comments and commit messages (pure).
//! - [`report`]: the activity runner wrapper that reports step ends and drains on stop.
//! - [`agent`]: `spool agent-step`, one agent step of a run.
//! - [`instance`]: one daemon per repository.
//! - [`team`]: team mode's syncs: claims confirmed by push, background pushes and pulls.
//! - [`budget`]: per-run and per-day spending limits (pure).
//! - [`coalesce`]: one commit for a burst of progress (pure).
//! - [`routing`]: capabilities a daemon has and an issue needs (pure).

pub mod agent;
pub mod budget;
pub mod coalesce;
pub mod config;
pub mod instance;
pub mod issues;
pub mod progress;
pub mod report;
pub mod routing;
pub mod service;
pub mod team;
