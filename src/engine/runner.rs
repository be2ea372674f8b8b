//! Running attempts: the [`ActivityRunner`] trait the engine hands tasks to, and the
//! dispatcher that starts attempts after commit, forwards heartbeats and results back as
//! inputs, and delivers cancellation.

use super::writer::Cmd;
use serde_json::Value;
use spool_core::workflow::decide::{ActivityTask, Input};
use spool_core::workflow::event::{ActivityOutput, Failure};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Completed(ActivityOutput),
    Failed(Failure),
    /// Stopped because cancellation was requested.
    Canceled,
}

/// What a running attempt can observe and report.
#[derive(Clone)]
pub struct AttemptControl {
    /// Graceful stop requested (SIGTERM, then SIGKILL after a grace period).
    pub cancel: CancellationToken,
    /// Immediate stop requested (terminate, or a timeout the engine detected).
    pub kill: CancellationToken,
    heartbeat: Arc<dyn Fn(Value) + Send + Sync>,
}

impl AttemptControl {
    /// Records progress: re-arms the heartbeat timeout and keeps `details` for a retry.
    pub fn heartbeat(&self, details: Value) {
        (self.heartbeat)(details)
    }
}

/// Runs one attempt of an activity type.
pub trait ActivityRunner: Send + Sync + 'static {
    fn run(&self, task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult>;
}

/// Activity types the engine runs itself.
pub const NOOP: &str = "noop";

pub(crate) enum Exec {
    Dispatch(Box<ActivityTask>),
    Cancel {
        run_id: String,
        scheduled_event_id: u64,
        attempt: u32,
        kill: bool,
    },
    Done {
        run_id: String,
        scheduled_event_id: u64,
        attempt: u32,
    },
}

struct Running {
    attempt: u32,
    cancel: CancellationToken,
    kill: CancellationToken,
}

fn apply(cmds: &Sender<Cmd>, run_id: &str, input: Input) {
    // A closed channel means the writer stopped; the attempt is re-dispatched next boot.
    let _ = cmds.send(Cmd::Apply {
        run_id: run_id.to_string(),
        input,
        reply: None,
    });
}

/// The dispatcher loop: one per engine.
pub(crate) async fn dispatcher(
    mut rx: UnboundedReceiver<Exec>,
    self_tx: UnboundedSender<Exec>,
    cmds: Sender<Cmd>,
    runners: HashMap<String, Arc<dyn ActivityRunner>>,
    epoch: u64,
) {
    let mut running: HashMap<(String, u64), Running> = HashMap::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            Exec::Dispatch(task) => {
                let task = *task;
                let sid = task.scheduled_event_id;
                let attempt = task.attempt;
                let started = Input::ActivityStarted {
                    scheduled_event_id: sid,
                    attempt,
                    epoch,
                };
                if task.activity_type == NOOP {
                    // Started and completed at once: one commit for both.
                    let done = Input::ActivityCompleted {
                        scheduled_event_id: sid,
                        attempt,
                        epoch,
                        output: ActivityOutput::default(),
                    };
                    let _ = cmds.send(Cmd::ApplyAll(vec![
                        (task.run_id.clone(), started),
                        (task.run_id, done),
                    ]));
                    continue;
                }
                apply(&cmds, &task.run_id, started);
                let Some(runner) = runners.get(&task.activity_type).cloned() else {
                    let failure = Failure::new(
                        "UnknownActivityType",
                        format!("no runner for activity type {:?}", task.activity_type),
                    )
                    .non_retryable();
                    apply(
                        &cmds,
                        &task.run_id,
                        Input::ActivityFailed {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                            failure,
                        },
                    );
                    continue;
                };
                let cancel = CancellationToken::new();
                let kill = CancellationToken::new();
                let run_id = task.run_id.clone();
                let hb_cmds = cmds.clone();
                let hb_run = run_id.clone();
                let control = AttemptControl {
                    cancel: cancel.clone(),
                    kill: kill.clone(),
                    heartbeat: Arc::new(move |details| {
                        apply(
                            &hb_cmds,
                            &hb_run,
                            Input::ActivityHeartbeat {
                                scheduled_event_id: sid,
                                attempt,
                                epoch,
                                details,
                            },
                        )
                    }),
                };
                if let Some(old) = running.insert(
                    (run_id.clone(), sid),
                    Running {
                        attempt,
                        cancel,
                        kill,
                    },
                ) {
                    old.kill.cancel();
                }
                let cmds = cmds.clone();
                let done = self_tx.clone();
                tokio::spawn(async move {
                    let result = runner.run(task, control).await;
                    let input = match result {
                        AttemptResult::Completed(output) => Input::ActivityCompleted {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                            output,
                        },
                        AttemptResult::Failed(failure) => Input::ActivityFailed {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                            failure,
                        },
                        AttemptResult::Canceled => Input::ActivityCanceled {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                        },
                    };
                    apply(&cmds, &run_id, input);
                    let _ = done.send(Exec::Done {
                        run_id,
                        scheduled_event_id: sid,
                        attempt,
                    });
                });
            }
            Exec::Cancel {
                run_id,
                scheduled_event_id,
                attempt,
                kill,
            } => match running.get(&(run_id.clone(), scheduled_event_id)) {
                Some(r) if r.attempt == attempt => {
                    if kill {
                        r.kill.cancel();
                    } else {
                        r.cancel.cancel();
                    }
                }
                // Not running here (finished, or never started): report it stopped.
                _ => apply(
                    &cmds,
                    &run_id,
                    Input::ActivityCanceled {
                        scheduled_event_id,
                        attempt,
                        epoch,
                    },
                ),
            },
            Exec::Done {
                run_id,
                scheduled_event_id,
                attempt,
            } => {
                let key = (run_id, scheduled_event_id);
                if running.get(&key).is_some_and(|r| r.attempt == attempt) {
                    running.remove(&key);
                }
            }
        }
    }
    for r in running.values() {
        r.kill.cancel();
    }
}
