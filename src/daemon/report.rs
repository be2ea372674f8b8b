//! An [`ActivityRunner`] around another that tells the daemon when each attempt ends
//! (for progress comments), stops starting attempts once the daemon is draining, and
//! stops running ones gracefully when the drain's grace period is over.

use super::budget::{result_cost, Ledger, BUDGET_EXCEEDED};
use super::progress::StepEnd;
use crate::engine::{ActivityRunner, AttemptControl, AttemptResult, BoxFuture};
use spool_core::workflow::decide::ActivityTask;
use spool_core::workflow::event::Failure;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Shared between the runner and the daemon: attempts in flight, and whether new ones
/// may start.
#[derive(Debug, Default)]
pub struct Gate {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Fired when the grace period is over: running attempts get SIGTERM (then SIGKILL
    /// after exec's grace), so their processes can stop their own children.
    stop: CancellationToken,
    /// Fired once the daemon has looked at the backlog after starting: attempts the
    /// engine re-dispatches at boot wait for it, so a run whose issue another daemon took
    /// over meanwhile is stopped before it does anything.
    ready: CancellationToken,
}

impl Gate {
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// From now on attempts are not started: they stay leased in the store and the next
    /// boot dispatches them again.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Lets attempts start (after the daemon's first look at the backlog).
    pub fn open(&self) {
        self.ready.cancel();
    }

    /// Stops the attempts still running. Their results are not reported to the engine,
    /// so the attempts stay leased and the next boot runs them again.
    pub fn stop_running(&self) {
        self.drain();
        self.stop.cancel();
    }
}

pub struct Reporting {
    pub inner: Arc<dyn ActivityRunner>,
    /// Called before the result goes back to the engine, so the report of a run's last
    /// step is always delivered before the news that the run closed.
    pub ends: Arc<dyn Fn(StepEnd) + Send + Sync>,
    pub gate: Arc<Gate>,
    /// Spending so far; an attempt over budget is refused before it starts.
    pub ledger: Arc<Mutex<Ledger>>,
}

impl ActivityRunner for Reporting {
    fn run(&self, task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult> {
        let gate = self.gate.clone();
        if gate.draining.load(Ordering::SeqCst) {
            // Never completes: the engine is about to shut down and abandons it.
            return Box::pin(std::future::pending());
        }
        let ends = self.ends.clone();
        let refusal = self
            .ledger
            .lock()
            .ok()
            .and_then(|l| l.refusal(&task.run_id, chrono::Utc::now().date_naive()));
        if let Some(why) = refusal {
            ends(StepEnd {
                error: Some(format!("{BUDGET_EXCEEDED}: {why}")),
                ..StepEnd::of(&task, false, Duration::ZERO)
            });
            let failure = Failure::new(BUDGET_EXCEEDED, why).non_retryable();
            return Box::pin(std::future::ready(AttemptResult::Failed(failure)));
        }
        gate.in_flight.fetch_add(1, Ordering::SeqCst);
        // A graceful stop either when the engine asks or when the daemon stops.
        let mut control = control;
        let cancel = CancellationToken::new();
        let (engine_cancel, daemon_stop, relay) =
            (control.cancel.clone(), gate.stop.clone(), cancel.clone());
        let watcher = tokio::spawn(async move {
            tokio::select! {
                _ = engine_cancel.cancelled() => {}
                _ = daemon_stop.cancelled() => {}
            }
            relay.cancel();
        });
        control.cancel = cancel;
        let task_kill = control.kill.clone();
        let inner = self.inner.run(task.clone(), control);
        let ledger = self.ledger.clone();
        let (ready, kill) = (gate.ready.clone(), task_kill);
        Box::pin(async move {
            tokio::select! {
                _ = ready.cancelled() => {}
                // Terminated while waiting: it never ran.
                _ = kill.cancelled() => {
                    watcher.abort();
                    gate.in_flight.fetch_sub(1, Ordering::SeqCst);
                    return AttemptResult::Canceled;
                }
            }
            let started = Instant::now();
            let result = inner.await;
            watcher.abort();
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
            if gate.stop.is_cancelled() {
                // Stopped by the daemon's shutdown, not by the run: leave it leased.
                return std::future::pending().await;
            }
            let (ok, error) = match &result {
                AttemptResult::Completed(_) => (true, None),
                AttemptResult::Failed(f) => {
                    let mut error = format!("{}: {}", f.error_type, f.message);
                    // The process's own last word says more than its exit code.
                    if let Some(last) = f.details.as_ref().and_then(|d| last_line(&d.stderr)) {
                        error.push_str(&format!(" ({last})"));
                    }
                    (false, Some(error))
                }
                AttemptResult::Canceled => (false, Some("cancelled".to_string())),
            };
            let cost_usd = match &result {
                AttemptResult::Completed(out) => result_cost(out.result.as_ref()),
                AttemptResult::Failed(f) => f
                    .details
                    .as_ref()
                    .and_then(|d| result_cost(d.result.as_ref())),
                AttemptResult::Canceled => None,
            };
            if let (Some(usd), Ok(mut l)) = (cost_usd, ledger.lock()) {
                l.add(&task.run_id, chrono::Utc::now().date_naive(), usd);
            }
            ends(StepEnd {
                stopped: matches!(result, AttemptResult::Canceled),
                error,
                cost_usd,
                ..StepEnd::of(&task, ok, started.elapsed())
            });
            result
        })
    }
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}
