//! When a schedule fires: the union of its cron expressions (in its time zone) and its
//! intervals, clipped to `[start, end]`, each time delayed by a deterministic jitter.
//!
//! Time zones: a cron expression names wall-clock times. A wall-clock time that does not
//! exist (skipped by a spring-forward change) fires once, at the first valid instant after
//! it (the moment of the change); a wall-clock time that occurs twice (the repeated hour
//! of a fall-back change) fires once, at its first occurrence. Intervals are absolute
//! (`every` after the Unix epoch, shifted by `offset`) and ignore the time zone.

use super::cron_expr::CronExpr;
use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// `every` + `offset`: fires at `epoch + n·every + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub every: Duration,
    pub offset: Duration,
}

impl Interval {
    /// `every` must be at least a second; `offset` must be shorter than `every`.
    pub fn new(every: Duration, offset: Duration) -> Result<Interval, String> {
        if every < Duration::from_secs(1) {
            return Err("`every` must be at least 1s".into());
        }
        if offset >= every {
            return Err("`offset` must be shorter than `every`".into());
        }
        Ok(Interval { every, offset })
    }

    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let every = i64::try_from(self.every.as_millis()).ok()?;
        let offset = i64::try_from(self.offset.as_millis()).ok()?;
        let k = (t.timestamp_millis() - offset).div_euclid(every) + 1;
        DateTime::from_timestamp_millis(k.checked_mul(every)?.checked_add(offset)?)
    }
}

/// A schedule's times.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub crons: Vec<CronExpr>,
    pub intervals: Vec<Interval>,
    pub tz: Tz,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Upper bound of the delay added to each time (see [`jitter`]).
    pub jitter: Duration,
}

/// Most candidate wall-clock times skipped while looking for the next instant: only the
/// repeated hour of a fall-back change makes candidates map to instants already past.
const MAX_SKIPPED: usize = 20_000;

impl Spec {
    /// A spec with no times, in UTC.
    pub fn empty() -> Spec {
        Spec {
            crons: Vec::new(),
            intervals: Vec::new(),
            tz: Tz::UTC,
            start: None,
            end: None,
            jitter: Duration::ZERO,
        }
    }

    /// The first nominal time strictly after `t`, or `None` when the schedule has ended.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = match self.start {
            Some(s) if t < s => s - chrono::Duration::nanoseconds(1),
            _ => t,
        };
        let next = self
            .crons
            .iter()
            .filter_map(|c| self.next_cron(c, from))
            .chain(self.intervals.iter().filter_map(|i| i.next_after(from)))
            .min()?;
        match self.end {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The next `n` nominal times after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    fn next_cron(&self, cron: &CronExpr, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut naive = t.with_timezone(&self.tz).naive_local();
        for _ in 0..MAX_SKIPPED {
            let candidate = cron.next_naive_after(naive)?;
            let at = resolve_local(self.tz, candidate);
            if at > t {
                return Some(at);
            }
            naive = candidate;
        }
        None
    }
}

/// The instant of a wall-clock time in `tz`: the earlier one of a repeated time, and the
/// moment of the change for a skipped one.
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => gap_end(tz, naive),
    }
}

/// The first instant whose wall-clock time is at or after `naive`, which lies in a gap.
fn gap_end(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    let before = naive - chrono::Duration::days(1);
    let offset_before = tz.offset_from_utc_datetime(&before).fix().local_minus_utc() as i64;
    // Read with the offset before the gap, `naive` is an instant after the change.
    let mut hi = naive.and_utc().timestamp() - offset_before;
    let mut lo = hi - 4 * 3600;
    let local = |s: i64| -> NaiveDateTime {
        DateTime::from_timestamp(s, 0)
            .map(|u| u.with_timezone(&tz).naive_local())
            .unwrap_or(naive)
    };
    // Smallest second in (lo, hi] whose wall-clock time reaches `naive`.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local(mid) >= naive {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| naive.and_utc())
}

/// The deterministic delay of one fire: a hash of the schedule id and the nominal time,
/// modulo `max` (millisecond resolution). The same on every restart.
pub fn jitter(schedule_id: &str, nominal: DateTime<Utc>, max: Duration) -> Duration {
    let span = max.as_millis() as u64;
    if span == 0 {
        return Duration::ZERO;
    }
    let mut h = Sha256::new();
    h.update(schedule_id.as_bytes());
    h.update([0]);
    h.update(nominal.timestamp_millis().to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % (span + 1))
}

/// When a nominal time is due: the nominal time plus its jitter.
pub fn due_time(schedule_id: &str, nominal: DateTime<Utc>, max: Duration) -> DateTime<Utc> {
    let j = jitter(schedule_id, nominal, max);
    nominal + chrono::Duration::milliseconds(j.as_millis() as i64)
}
