//! Temporal's retry policy: when to try an activity again and when to stop.

use super::duration::secs;
use super::event::{Failure, RetryState, TimeoutType};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Retry policy with Temporal's fields and meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Delay before the first retry.
    #[serde(with = "secs")]
    pub initial_interval: Duration,
    /// Each delay is the previous one times this (≥ 1).
    pub backoff_coefficient: f64,
    /// Cap on any one delay.
    #[serde(with = "secs")]
    pub maximum_interval: Duration,
    /// Total attempts allowed, the first included; 0 means unlimited.
    pub maximum_attempts: u32,
    /// Failure types (exact match on [`Failure::error_type`]) that are never retried.
    #[serde(default)]
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    /// Temporal's intervals, but at most 3 attempts: unlimited retries of an agent or a
    /// command multiply side effects and cost (a well-known pain point), so spool bounds
    /// them unless a template asks for `max_attempts = 0`.
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(100),
            maximum_attempts: 3,
            non_retryable_error_types: Vec::new(),
        }
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDecision {
    /// Start attempt `attempt + 1` after `delay`.
    Retry { delay: Duration },
    /// Give up; the reason goes into the final event.
    Stop(RetryState),
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based):
    /// `min(initial · coefficient^(attempt−1), maximum_interval)`, in whole milliseconds.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.backoff_coefficient.powi(exponent);
        let max_ms = self.maximum_interval.as_millis() as f64;
        let ms = (self.initial_interval.as_millis() as f64 * factor).round();
        if !ms.is_finite() || ms >= max_ms {
            self.maximum_interval
        } else {
            Duration::from_millis(ms as u64)
        }
    }

    /// Decides whether failed attempt `attempt` is retried. `elapsed` is the time since the
    /// activity was first scheduled; a retry that would start at or after
    /// `schedule_to_close` stops with [`RetryState::Timeout`].
    pub fn decide(
        &self,
        attempt: u32,
        failure: &Failure,
        elapsed: Duration,
        schedule_to_close: Option<Duration>,
    ) -> RetryDecision {
        if failure.non_retryable
            || failure.timeout_type == Some(TimeoutType::ScheduleToStart)
            || self.non_retryable_error_types.contains(&failure.error_type)
        {
            return RetryDecision::Stop(RetryState::NonRetryableFailure);
        }
        if failure.timeout_type == Some(TimeoutType::ScheduleToClose) {
            return RetryDecision::Stop(RetryState::Timeout);
        }
        if self.maximum_attempts != 0 && attempt >= self.maximum_attempts {
            return RetryDecision::Stop(RetryState::MaximumAttemptsReached);
        }
        let delay = self.delay_after(attempt);
        if let Some(limit) = schedule_to_close {
            if elapsed.saturating_add(delay) >= limit {
                return RetryDecision::Stop(RetryState::Timeout);
            }
        }
        RetryDecision::Retry { delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn failure(kind: &str) -> Failure {
        Failure::new(kind, "boom")
    }

    #[test]
    fn delays_follow_the_formula_and_cap() {
        let p = RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(10),
            maximum_attempts: 0,
            non_retryable_error_types: vec![],
        };
        let got: Vec<u64> = (1..=6).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay_after(10_000), Duration::from_secs(10));
    }

    #[test]
    fn non_retryable_types_stop_at_once() {
        let p = RetryPolicy {
            non_retryable_error_types: vec!["Fatal".into()],
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.decide(1, &failure("Fatal"), Duration::ZERO, None),
            RetryDecision::Stop(RetryState::NonRetryableFailure)
        );
        assert!(matches!(
            p.decide(1, &failure("FatalError"), Duration::ZERO, None),
            RetryDecision::Retry { .. }
        ));
        let mut marked = failure("Other");
        marked.non_retryable = true;
        assert_eq!(
            p.decide(1, &marked, Duration::ZERO, None),
            RetryDecision::Stop(RetryState::NonRetryableFailure)
        );
    }

    #[test]
    fn schedule_to_close_bounds_retries() {
        let p = RetryPolicy {
            maximum_attempts: 0,
            ..RetryPolicy::default()
        };
        // 9.5 s elapsed, next delay 1 s, limit 10 s: the retry would start too late.
        assert_eq!(
            p.decide(
                1,
                &failure("X"),
                Duration::from_millis(9_500),
                Some(Duration::from_secs(10))
            ),
            RetryDecision::Stop(RetryState::Timeout)
        );
        assert!(matches!(
            p.decide(
                1,
                &failure("X"),
                Duration::from_secs(5),
                Some(Duration::from_secs(10))
            ),
            RetryDecision::Retry { .. }
        ));
    }

    proptest! {
        #[test]
        fn delay_is_formula(init_ms in 1u64..5_000, coef in 1.0f64..4.0, max_ms in 1u64..600_000, n in 1u32..40) {
            let p = RetryPolicy {
                initial_interval: Duration::from_millis(init_ms),
                backoff_coefficient: coef,
                maximum_interval: Duration::from_millis(max_ms),
                maximum_attempts: 0,
                non_retryable_error_types: vec![],
            };
            let expected = (init_ms as f64 * coef.powi(n as i32 - 1)).round().min(max_ms as f64) as u64;
            prop_assert_eq!(p.delay_after(n).as_millis() as u64, expected);
            prop_assert!(p.delay_after(n) <= p.maximum_interval);
        }

        #[test]
        fn attempts_never_exceed_maximum(max in 1u32..20) {
            let p = RetryPolicy { maximum_attempts: max, ..RetryPolicy::default() };
            let mut attempt = 1;
            while let RetryDecision::Retry { .. } = p.decide(attempt, &failure("X"), Duration::ZERO, None) {
                attempt += 1;
            }
            prop_assert_eq!(attempt, max);
        }
    }
}
