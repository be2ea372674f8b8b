//! Schedules, pure: cron and interval specs, next fire times across time zones and DST,
//! deterministic jitter, catch-up after downtime, overlap decisions, and the
//! `.spool/schedules.toml` format. Time is always an argument.
//!
//! - [`cron_expr`]: cron text (5/6/7 fields, aliases) normalised for the `cron` crate.
//! - [`spec`]: [`Spec::next_after`], DST resolution, [`jitter`](spec::jitter).
//! - [`policy`]: catch-up, overlap, pause-on-failure, remaining actions.
//! - [`file`]: the TOML file; a bad schedule is an error of its own.
pub mod cron_expr;
pub mod file;
pub mod policy;
pub mod spec;

pub use cron_expr::CronExpr;
pub use file::{parse_file, Action, IssueAction, ScheduleDef, ScheduleError, ScheduleFile};
pub use policy::{catch_up, decide_overlap, CatchUp, FireSource, OverlapDecision, OverlapPolicy};
pub use spec::{due_time, jitter, Interval, Spec};

#[cfg(test)]
mod tests;
