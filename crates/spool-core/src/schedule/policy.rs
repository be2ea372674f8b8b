//! The decisions around a fire, as pure functions of the schedule's situation: which
//! missed times to catch up, what the overlap policy does with a due time, whether a
//! closed run pauses the schedule, and what the remaining-actions limit allows.

use super::spec::{due_time, Spec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// What to do when a time is due while an earlier action's run is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Do not start; the time is recorded as skipped.
    #[default]
    Skip,
    /// Start once right after the running one closes; further times are dropped.
    BufferOne,
    /// Start each, one after another, as the previous closes (up to [`BUFFER_LIMIT`]).
    BufferAll,
    /// Ask the running one to cancel, start when it has closed.
    CancelOther,
    /// Terminate the running one and start at once.
    TerminateOther,
    /// Start regardless.
    AllowAll,
}

impl OverlapPolicy {
    pub const ALL: [OverlapPolicy; 6] = [
        OverlapPolicy::Skip,
        OverlapPolicy::BufferOne,
        OverlapPolicy::BufferAll,
        OverlapPolicy::CancelOther,
        OverlapPolicy::TerminateOther,
        OverlapPolicy::AllowAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OverlapPolicy::Skip => "skip",
            OverlapPolicy::BufferOne => "buffer_one",
            OverlapPolicy::BufferAll => "buffer_all",
            OverlapPolicy::CancelOther => "cancel_other",
            OverlapPolicy::TerminateOther => "terminate_other",
            OverlapPolicy::AllowAll => "allow_all",
        }
    }

    pub fn parse(text: &str) -> Option<OverlapPolicy> {
        OverlapPolicy::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Most buffered times of one schedule; later ones are dropped (and recorded so).
pub const BUFFER_LIMIT: usize = 1000;

/// What happens to one due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapDecision {
    Start,
    Skip,
    Buffer,
    /// The buffer is full: record the time as dropped.
    Drop,
    /// Request cancellation of the running actions and buffer this time.
    CancelOthersThenBuffer,
    /// Terminate the running actions and start this time now.
    TerminateOthersThenStart,
}

/// The overlap decision for a due time, given whether an action of the schedule is still
/// running and how many times are already buffered.
pub fn decide_overlap(policy: OverlapPolicy, running: bool, buffered: usize) -> OverlapDecision {
    use OverlapDecision::*;
    if !running && buffered == 0 {
        return Start;
    }
    match policy {
        OverlapPolicy::AllowAll => Start,
        OverlapPolicy::Skip if running => Skip,
        // Not running but something buffered: it goes first, this one waits behind it.
        OverlapPolicy::Skip => Start,
        OverlapPolicy::BufferOne if buffered == 0 => Buffer,
        OverlapPolicy::BufferOne => Drop,
        OverlapPolicy::BufferAll if buffered < BUFFER_LIMIT => Buffer,
        OverlapPolicy::BufferAll => Drop,
        OverlapPolicy::CancelOther if buffered == 0 => CancelOthersThenBuffer,
        OverlapPolicy::CancelOther => Drop,
        OverlapPolicy::TerminateOther => TerminateOthersThenStart,
    }
}

/// Whether the oldest buffered time starts now: nothing of the schedule is running.
pub fn start_buffered(running: bool, buffered: usize) -> bool {
    !running && buffered > 0
}

/// Whether a run that closed with `status` pauses a schedule with `pause_on_failure`
/// (as in Temporal: a failure or a timeout, not a cancel or terminate).
pub fn pauses_on_close(pause_on_failure: bool, status: &str) -> bool {
    pause_on_failure && matches!(status, "failed" | "timed_out")
}

/// Where a scheduled (not triggered, not backfilled) time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FireSource {
    Scheduled,
    Trigger,
    Backfill,
}

impl FireSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FireSource::Scheduled => "scheduled",
            FireSource::Trigger => "trigger",
            FireSource::Backfill => "backfill",
        }
    }
}

/// Whether a time from `source` may act at all: a paused schedule or one that used up its
/// actions takes no scheduled actions; manual triggers and backfills always act and do
/// not count against the limit.
pub fn may_act(source: FireSource, paused: bool, remaining: Option<u64>) -> bool {
    source != FireSource::Scheduled || (!paused && remaining != Some(0))
}

/// The remaining-actions count after an action from `source` started.
pub fn after_start(source: FireSource, remaining: Option<u64>) -> Option<u64> {
    match (source, remaining) {
        (FireSource::Scheduled, Some(n)) => Some(n.saturating_sub(1)),
        (_, r) => r,
    }
}

/// Missed times counted one by one before the rest of a long outage is skipped over.
pub const MISSED_COUNT_LIMIT: u64 = 100_000;
/// Missed times recorded individually (the most recent ones); the rest are counted.
pub const MISSED_KEPT: usize = 100;

/// The times between the last processed nominal time and now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatchUp {
    /// Due times inside the catch-up window, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// Times older than the window.
    pub missed: u64,
    /// Whether `missed` is exact (an outage beyond [`MISSED_COUNT_LIMIT`] times is not
    /// counted to the end).
    pub missed_exact: bool,
    /// The most recent missed times (at most [`MISSED_KEPT`]), oldest first.
    pub missed_recent: Vec<DateTime<Utc>>,
    /// The new last processed nominal time.
    pub processed_through: DateTime<Utc>,
    /// The next nominal time not yet due, if any.
    pub next: Option<DateTime<Utc>>,
}

/// Splits the nominal times after `after` that are due at `now` into those to fire
/// (within `window` of `now`, at most `max_fire` of them) and those missed. A time is due
/// once its jitter has passed; the window is measured from its nominal time.
pub fn catch_up(
    spec: &Spec,
    schedule_id: &str,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    window: Duration,
    max_fire: usize,
) -> CatchUp {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let oldest = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut out = CatchUp {
        missed_exact: true,
        processed_through: after,
        ..CatchUp::default()
    };
    let mut recent = VecDeque::new();
    let mut at = after;
    while let Some(next) = spec.next_after(at) {
        if next > now {
            out.next = Some(next);
            break;
        }
        if next < oldest {
            if out.missed == MISSED_COUNT_LIMIT {
                // Jump over the rest of the outage; only the window matters now.
                out.missed_exact = false;
                at = oldest - chrono::Duration::nanoseconds(1);
                continue;
            }
            out.missed += 1;
            if recent.len() == MISSED_KEPT {
                recent.pop_front();
            }
            recent.push_back(next);
        } else if due_time(schedule_id, next, spec.jitter) > now || out.fire.len() >= max_fire {
            out.next = Some(next);
            break;
        } else {
            out.fire.push(next);
        }
        out.processed_through = next;
        at = next;
    }
    out.missed_recent = recent.into();
    out
}
