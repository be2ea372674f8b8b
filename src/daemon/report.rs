//! An [`ActivityRunner`] around another that tells the daemon when each attempt ends
//! (for progress comments) and stops starting attempts once the daemon is draining.

use super::progress::StepEnd;
use crate::engine::{ActivityRunner, AttemptControl, AttemptResult, BoxFuture};
use spool_core::workflow::decide::ActivityTask;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Shared between the runner and the daemon: attempts in flight, and whether new ones
/// may start.
#[derive(Debug, Default)]
pub struct Gate {
    in_flight: AtomicUsize,
    draining: AtomicBool,
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
}

pub struct Reporting {
    pub inner: Arc<dyn ActivityRunner>,
    /// Called before the result goes back to the engine, so the report of a run's last
    /// step is always delivered before the news that the run closed.
    pub ends: Arc<dyn Fn(StepEnd) + Send + Sync>,
    pub gate: Arc<Gate>,
}

impl ActivityRunner for Reporting {
    fn run(&self, task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult> {
        let gate = self.gate.clone();
        if gate.draining.load(Ordering::SeqCst) {
            // Never completes: the engine is about to shut down and abandons it.
            return Box::pin(std::future::pending());
        }
        gate.in_flight.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.run(task.clone(), control);
        let ends = self.ends.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = inner.await;
            let (ok, error) = match &result {
                AttemptResult::Completed(_) => (true, None),
                AttemptResult::Failed(f) => {
                    (false, Some(format!("{}: {}", f.error_type, f.message)))
                }
                AttemptResult::Canceled => (false, Some("cancelled".to_string())),
            };
            ends(StepEnd {
                run_id: task.run_id.clone(),
                issue_id: task.workflow_id.clone(),
                step: task.activity_id.clone(),
                attempt: task.attempt,
                ok,
                error,
                duration: started.elapsed(),
            });
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }
}
