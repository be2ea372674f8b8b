//! Spending limits: a per-run and a per-day budget in USD, counted from the cost agent
//! CLIs report for each attempt (`spool agent-step` writes it into the attempt's result
//! as `usage.cost_usd`).
//!
//! Pure: the ledger is told what was spent and asked whether another attempt may start.
//! An attempt already running is never stopped for the budget; the next one is refused,
//! so a limit can be overshot by at most one attempt's cost.

use chrono::NaiveDate;
use serde_json::Value;
use spool_core::workflow::event::{Event, EventAttributes};
use std::collections::HashMap;

/// The limits from the config; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub per_run_usd: Option<f64>,
    pub per_day_usd: Option<f64>,
}

/// What has been spent, by run and by (UTC) day.
#[derive(Debug, Default)]
pub struct Ledger {
    pub limits: Limits,
    by_run: HashMap<String, f64>,
    by_day: HashMap<NaiveDate, f64>,
}

/// The error type of an attempt refused for the budget; never retried.
pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";

impl Ledger {
    pub fn new(limits: Limits) -> Ledger {
        Ledger {
            limits,
            ..Ledger::default()
        }
    }

    pub fn add(&mut self, run_id: &str, day: NaiveDate, usd: f64) {
        if !(usd.is_finite() && usd > 0.0) {
            return;
        }
        *self.by_run.entry(run_id.to_string()).or_default() += usd;
        *self.by_day.entry(day).or_default() += usd;
    }

    pub fn run_spent(&self, run_id: &str) -> f64 {
        self.by_run.get(run_id).copied().unwrap_or(0.0)
    }

    pub fn day_spent(&self, day: NaiveDate) -> f64 {
        self.by_day.get(&day).copied().unwrap_or(0.0)
    }

    /// Why another attempt of `run_id` may not start on `day`, if it may not.
    pub fn refusal(&self, run_id: &str, day: NaiveDate) -> Option<String> {
        let run = self.run_spent(run_id);
        if let Some(limit) = self.limits.per_run_usd.filter(|l| run >= *l) {
            return Some(format!(
                "the run has spent ${run:.2} of its ${limit:.2} budget (budget.per_run_usd)"
            ));
        }
        let today = self.day_spent(day);
        if let Some(limit) = self.limits.per_day_usd.filter(|l| today >= *l) {
            return Some(format!(
                "${today:.2} spent on {day} of the ${limit:.2} daily budget (budget.per_day_usd)"
            ));
        }
        None
    }

    /// Counts the attempts recorded in a run's history (after a restart).
    pub fn add_history(&mut self, run_id: &str, events: &[Event]) {
        for event in events {
            if let Some(usd) = event_cost(&event.attributes) {
                self.add(run_id, event.event_time.date_naive(), usd);
            }
        }
    }
}

/// The cost an attempt's result reports (`usage.cost_usd`).
pub fn result_cost(result: Option<&Value>) -> Option<f64> {
    result?
        .get("usage")?
        .get("cost_usd")?
        .as_f64()
        .filter(|c| c.is_finite() && *c > 0.0)
}

/// The cost recorded in a history event that ends an attempt.
fn event_cost(attributes: &EventAttributes) -> Option<f64> {
    match attributes {
        EventAttributes::ActivityTaskCompleted { result, .. } => {
            result_cost(result.result.as_ref())
        }
        EventAttributes::ActivityTaskFailed { failure, .. }
        | EventAttributes::ActivityTaskTimedOut { failure, .. } => {
            result_cost(failure.details.as_ref()?.result.as_ref())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("date")
    }

    #[test]
    fn a_run_over_its_budget_is_refused_others_are_not() {
        let mut l = Ledger::new(Limits {
            per_run_usd: Some(1.0),
            per_day_usd: None,
        });
        l.add("r1", day(1), 0.6);
        assert_eq!(l.refusal("r1", day(1)), None);
        l.add("r1", day(1), 0.5);
        let why = l.refusal("r1", day(1)).expect("over");
        assert!(
            why.contains("$1.10") && why.contains("per_run_usd"),
            "{why}"
        );
        assert_eq!(l.refusal("r2", day(1)), None);
    }

    #[test]
    fn the_daily_budget_counts_every_run_of_the_day_and_resets_the_next() {
        let mut l = Ledger::new(Limits {
            per_run_usd: None,
            per_day_usd: Some(2.0),
        });
        l.add("r1", day(1), 1.5);
        l.add("r2", day(1), 0.5);
        assert!(l.refusal("r3", day(1)).is_some());
        assert_eq!(l.refusal("r3", day(2)), None);
    }

    #[test]
    fn unlimited_and_nonsense_costs_never_refuse() {
        let mut l = Ledger::new(Limits::default());
        l.add("r", day(1), 1e9);
        assert_eq!(l.refusal("r", day(1)), None);
        let mut l = Ledger::new(Limits {
            per_run_usd: Some(1.0),
            per_day_usd: Some(1.0),
        });
        l.add("r", day(1), f64::NAN);
        l.add("r", day(1), -5.0);
        assert_eq!(l.run_spent("r"), 0.0);
    }

    #[test]
    fn costs_are_read_from_results_of_completed_and_failed_attempts() {
        use spool_core::workflow::event::{ActivityOutput, Failure, RetryState};
        let out = |cost: f64| ActivityOutput {
            exit_code: Some(0),
            stdout: String::new(),
            stderr: String::new(),
            result: Some(json!({"usage": {"cost_usd": cost}})),
        };
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let events = vec![
            Event {
                version: 1,
                event_id: 5,
                event_time: at,
                attributes: EventAttributes::ActivityTaskCompleted {
                    scheduled_event_id: 3,
                    started_event_id: 4,
                    result: out(0.25),
                },
            },
            Event {
                version: 1,
                event_id: 8,
                event_time: at,
                attributes: EventAttributes::ActivityTaskFailed {
                    scheduled_event_id: 6,
                    started_event_id: 7,
                    failure: Failure {
                        details: Some(out(0.5)),
                        ..Failure::new("AgentError", "x")
                    },
                    retry_state: RetryState::InProgress,
                },
            },
        ];
        let mut l = Ledger::new(Limits::default());
        l.add_history("r", &events);
        assert_eq!(l.run_spent("r"), 0.75);
        assert_eq!(l.day_spent(day(1)), 0.75);
        assert_eq!(result_cost(Some(&json!({"usage": {}}))), None);
    }
}
