//! `decide`: one input in, the events to append and the effects to perform out.
//!
//! Pure: time and ids are arguments. The caller appends `events`, stores `state`, applies
//! the durable effects ([`Effect::is_durable`]) in the same transaction, and performs the
//! others only after that transaction committed.

use super::event::{
    ActivityInput, ActivityOutput, Event, EventAttributes, Failure, ParentRef, RetryState,
    TimeoutType, WorkflowExecution, EVENT_SCHEMA_VERSION,
};
use super::program::{ActivityDef, ActivityType, GateDef, Program, Step, StepKind, StepLoc};
use super::retry::{RetryDecision, RetryPolicy};
use super::state::{
    marker, AttemptPhase, BranchStatus, CompensationItem, FoldError, PendingActivity, Phase,
    RunState, RunStatus, TimerPurpose, Unwind, GATE_TIMEOUT_SUFFIX,
};
use crate::template::expr;
use crate::template_vars::render;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Default tail kept of a compensation command's output.
const COMPENSATION_CAPTURE_BYTES: u64 = 16 * 1024;

/// Everything that can happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Start {
        workflow_id: String,
        run_id: String,
        input: Value,
        parent: Option<ParentRef>,
    },
    /// A worker of boot epoch `epoch` began the attempt.
    ActivityStarted {
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
    },
    ActivityHeartbeat {
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
        details: Value,
    },
    ActivityCompleted {
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
        output: ActivityOutput,
    },
    ActivityFailed {
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
        failure: Failure,
    },
    /// The attempt was cancelled (after a cancel request), or never ran and will not.
    ActivityCanceled {
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
    },
    TimerFired {
        key: TimerKey,
    },
    Signal {
        name: String,
        payload: Value,
        request_id: String,
    },
    ChildStarted {
        initiated_event_id: u64,
        run_id: String,
    },
    /// The child could not be started.
    ChildStartFailed {
        initiated_event_id: u64,
        cause: String,
    },
    ChildClosed {
        initiated_event_id: u64,
        run_id: String,
        outcome: ChildOutcome,
    },
    CancelRequested {
        reason: String,
    },
    Terminate {
        reason: String,
    },
}

/// How a child run ended, as reported to its parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildOutcome {
    Completed { result: Value },
    Failed { failure: Failure },
    Canceled,
    TimedOut,
    Terminated { reason: String },
}

/// A durable timer row. User timers (sleep, gate timeout) have history events; activity
/// timers (retry backoff, timeouts) do not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKey {
    User {
        timer_id: String,
    },
    ActivityRetry {
        scheduled_event_id: u64,
        attempt: u32,
    },
    /// `attempt` is 0 for schedule-to-close, which spans all attempts.
    ActivityTimeout {
        scheduled_event_id: u64,
        attempt: u32,
        timeout_type: TimeoutType,
    },
}

impl TimerKey {
    /// A stable string for a store's primary key.
    pub fn encode(&self) -> String {
        match self {
            TimerKey::User { timer_id } => format!("user:{timer_id}"),
            TimerKey::ActivityRetry {
                scheduled_event_id,
                attempt,
            } => format!("retry:{scheduled_event_id}:{attempt}"),
            TimerKey::ActivityTimeout {
                scheduled_event_id,
                attempt,
                timeout_type,
            } => format!(
                "timeout:{scheduled_event_id}:{attempt}:{}",
                timeout_type.short()
            ),
        }
    }

    pub fn decode(text: &str) -> Option<TimerKey> {
        if let Some(id) = text.strip_prefix("user:") {
            return Some(TimerKey::User {
                timer_id: id.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("retry:") {
            let (sid, attempt) = rest.split_once(':')?;
            return Some(TimerKey::ActivityRetry {
                scheduled_event_id: sid.parse().ok()?,
                attempt: attempt.parse().ok()?,
            });
        }
        let rest = text.strip_prefix("timeout:")?;
        let mut parts = rest.splitn(3, ':');
        Some(TimerKey::ActivityTimeout {
            scheduled_event_id: parts.next()?.parse().ok()?,
            attempt: parts.next()?.parse().ok()?,
            timeout_type: TimeoutType::from_short(parts.next()?)?,
        })
    }
}

/// One attempt to hand to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityTask {
    pub workflow_id: String,
    pub run_id: String,
    pub scheduled_event_id: u64,
    pub activity_id: String,
    pub activity_type: String,
    pub attempt: u32,
    pub input: ActivityInput,
    #[serde(default, with = "super::duration::opt_secs")]
    pub start_to_close: Option<Duration>,
    #[serde(default, with = "super::duration::opt_secs")]
    pub heartbeat: Option<Duration>,
    /// Progress recorded by an earlier attempt, so this one can resume.
    pub heartbeat_details: Option<Value>,
}

/// Something to do outside the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Run an attempt (after commit).
    DispatchActivity(ActivityTask),
    /// Stop a running attempt: SIGTERM then SIGKILL after the grace period, or at once
    /// when `kill` (after commit). A worker without that attempt reports it cancelled.
    CancelActivity {
        scheduled_event_id: u64,
        attempt: u32,
        kill: bool,
    },
    /// Insert or replace a timer row (in the transaction).
    StartTimer {
        key: TimerKey,
        fire_at: DateTime<Utc>,
    },
    /// Delete a timer row (in the transaction).
    CancelTimer { key: TimerKey },
    /// Start a child run of template `template` (after commit).
    StartChildWorkflow {
        parent: ParentRef,
        workflow_id: String,
        template: String,
        input: Value,
    },
    /// Cancel (or terminate) a child run (after commit).
    CancelChildWorkflow {
        workflow_id: String,
        terminate: bool,
        reason: String,
    },
    /// Deliver this run's outcome to its parent's inbox (in the transaction).
    NotifyParent {
        parent: ParentRef,
        run_id: String,
        outcome: ChildOutcome,
    },
}

impl Effect {
    /// Effects that are rows written in the same transaction as the events.
    pub fn is_durable(&self) -> bool {
        matches!(
            self,
            Effect::StartTimer { .. } | Effect::CancelTimer { .. } | Effect::NotifyParent { .. }
        )
    }
}

/// What happened to the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Applied,
    /// Already applied (same signal request id, second start, second cancel).
    Duplicate,
    /// Not applicable: a stale attempt or epoch, a timer that is no longer armed, a closed run.
    Rejected(String),
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    /// The state after the events (and attempt changes).
    pub state: RunState,
    pub verdict: Verdict,
}

impl Decision {
    /// True when `state` differs from the input state and must be stored.
    pub fn changed(&self) -> bool {
        self.verdict == Verdict::Applied
    }
}

/// Bug-level inconsistency between state, program and the events being built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("inconsistent state: {0}")]
    Fold(#[from] FoldError),
    #[error("run is pinned to template {pinned} but program is {given}")]
    WrongProgram { pinned: String, given: String },
}

/// Applies `input` to `state` at time `now`.
pub fn decide(
    state: &RunState,
    program: &Program,
    input: Input,
    now: DateTime<Utc>,
) -> Result<Decision, DecideError> {
    if state.status != RunStatus::New && state.template_hash != program.content_hash {
        return Err(DecideError::WrongProgram {
            pinned: state.template_hash.clone(),
            given: program.content_hash.clone(),
        });
    }
    let mut d = Decider {
        program,
        now,
        state: state.clone(),
        events: Vec::new(),
        effects: Vec::new(),
    };
    let verdict = d.handle(input)?;
    if verdict == Verdict::Applied {
        d.advance()?;
    }
    let Decider {
        state,
        events,
        effects,
        ..
    } = d;
    Ok(Decision {
        events,
        effects,
        state,
        verdict,
    })
}

struct Decider<'a> {
    program: &'a Program,
    now: DateTime<Utc>,
    state: RunState,
    events: Vec<Event>,
    effects: Vec<Effect>,
}

fn rejected(why: impl Into<String>) -> Result<Verdict, DecideError> {
    Ok(Verdict::Rejected(why.into()))
}

impl<'a> Decider<'a> {
    fn emit(&mut self, attributes: EventAttributes) -> Result<u64, DecideError> {
        let event = Event {
            version: EVENT_SCHEMA_VERSION,
            event_id: self.state.next_event_id,
            event_time: self.now,
            attributes,
        };
        self.state.apply(self.program, &event)?;
        let id = event.event_id;
        self.events.push(event);
        Ok(id)
    }

    fn marker(&mut self, name: &str, details: Value) -> Result<u64, DecideError> {
        let details = match details {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.emit(EventAttributes::MarkerRecorded {
            marker_name: name.to_string(),
            details,
        })
    }

    fn handle(&mut self, input: Input) -> Result<Verdict, DecideError> {
        if let Input::Start {
            workflow_id,
            run_id,
            input,
            parent,
        } = input
        {
            if self.state.status != RunStatus::New {
                return Ok(Verdict::Duplicate);
            }
            self.emit(EventAttributes::WorkflowExecutionStarted {
                workflow_type: self.program.name.clone(),
                workflow_id,
                first_execution_run_id: run_id,
                input,
                template_hash: self.program.content_hash.clone(),
                parent_workflow_execution: parent,
                attempt: 1,
            })?;
            return Ok(Verdict::Applied);
        }
        if !self.state.status.is_open() || self.state.status == RunStatus::New {
            return rejected(format!("run is {}", self.state.status.as_str()));
        }
        match input {
            Input::Start { .. } => Ok(Verdict::Duplicate),
            Input::ActivityStarted {
                scheduled_event_id,
                attempt,
                epoch,
            } => self.activity_started(scheduled_event_id, attempt, epoch),
            Input::ActivityHeartbeat {
                scheduled_event_id,
                attempt,
                epoch,
                details,
            } => {
                let now = self.now;
                let Some(pa) = self.live_attempt(scheduled_event_id, attempt, epoch) else {
                    return rejected("stale heartbeat");
                };
                let AttemptPhase::Started {
                    last_heartbeat_at, ..
                } = &mut pa.phase
                else {
                    return rejected("heartbeat before start");
                };
                *last_heartbeat_at = Some(now);
                pa.heartbeat_details = Some(details);
                if let Some(hb) = pa.timeouts.heartbeat {
                    let key = TimerKey::ActivityTimeout {
                        scheduled_event_id,
                        attempt,
                        timeout_type: TimeoutType::Heartbeat,
                    };
                    self.effects.push(Effect::StartTimer {
                        key,
                        fire_at: now + hb,
                    });
                }
                Ok(Verdict::Applied)
            }
            Input::ActivityCompleted {
                scheduled_event_id,
                attempt,
                epoch,
                output,
            } => {
                if self
                    .live_attempt(scheduled_event_id, attempt, epoch)
                    .is_none()
                {
                    return rejected("stale completion");
                }
                self.close_activity(
                    scheduled_event_id,
                    EventAttributes::ActivityTaskCompleted {
                        scheduled_event_id,
                        started_event_id: 0,
                        result: output,
                    },
                )?;
                Ok(Verdict::Applied)
            }
            Input::ActivityFailed {
                scheduled_event_id,
                attempt,
                epoch,
                failure,
            } => {
                if self
                    .live_attempt(scheduled_event_id, attempt, epoch)
                    .is_none()
                {
                    return rejected("stale failure");
                }
                self.attempt_failed(scheduled_event_id, failure)?;
                Ok(Verdict::Applied)
            }
            Input::ActivityCanceled {
                scheduled_event_id,
                attempt,
                epoch,
            } => {
                let Some(pa) = self.state.activities.get(&scheduled_event_id) else {
                    return rejected("no such activity");
                };
                if pa.attempt != attempt || epoch < pa.lease_epoch {
                    return rejected("stale cancellation");
                }
                if pa.cancel_requested_event_id.is_some() {
                    self.cancel_closed(scheduled_event_id)?;
                } else {
                    self.attempt_failed(
                        scheduled_event_id,
                        Failure::new("Canceled", "attempt canceled by the worker"),
                    )?;
                }
                Ok(Verdict::Applied)
            }
            Input::TimerFired { key } => self.timer_fired(key),
            Input::Signal {
                name,
                payload,
                request_id,
            } => {
                if self.state.request_ids.contains(&request_id) {
                    return Ok(Verdict::Duplicate);
                }
                self.emit(EventAttributes::WorkflowExecutionSignaled {
                    signal_name: name,
                    input: payload,
                    request_id,
                })?;
                Ok(Verdict::Applied)
            }
            Input::ChildStarted {
                initiated_event_id,
                run_id,
            } => {
                let Some(child) = self.state.children.get(&initiated_event_id) else {
                    return rejected("no such child");
                };
                if child.run_id.is_some() {
                    return Ok(Verdict::Duplicate);
                }
                let (workflow_id, workflow_type) =
                    (child.workflow_id.clone(), child.workflow_type.clone());
                self.emit(EventAttributes::ChildWorkflowExecutionStarted {
                    initiated_event_id,
                    workflow_execution: WorkflowExecution {
                        workflow_id,
                        run_id,
                    },
                    workflow_type,
                })?;
                Ok(Verdict::Applied)
            }
            Input::ChildStartFailed {
                initiated_event_id,
                cause,
            } => {
                let Some(child) = self.state.children.get(&initiated_event_id).cloned() else {
                    return Ok(Verdict::Duplicate);
                };
                if child.run_id.is_some() {
                    return rejected("child already started");
                }
                self.emit(EventAttributes::StartChildWorkflowExecutionFailed {
                    initiated_event_id,
                    workflow_id: child.workflow_id,
                    workflow_type: child.workflow_type,
                    cause,
                })?;
                Ok(Verdict::Applied)
            }
            Input::ChildClosed {
                initiated_event_id,
                run_id,
                outcome,
            } => self.child_closed(initiated_event_id, run_id, outcome),
            Input::CancelRequested { reason } => {
                if self.state.cancel_requested {
                    return Ok(Verdict::Duplicate);
                }
                self.emit(EventAttributes::WorkflowExecutionCancelRequested { cause: reason })?;
                Ok(Verdict::Applied)
            }
            Input::Terminate { reason } => {
                self.terminate(reason)?;
                Ok(Verdict::Applied)
            }
        }
    }

    /// The pending activity if `attempt` is its current one and `epoch` holds its lease.
    fn live_attempt(
        &mut self,
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
    ) -> Option<&mut PendingActivity> {
        let pa = self.state.activities.get_mut(&scheduled_event_id)?;
        let started = matches!(pa.phase, AttemptPhase::Started { .. });
        (pa.attempt == attempt && pa.lease_epoch == epoch && started).then_some(pa)
    }

    fn activity_started(
        &mut self,
        scheduled_event_id: u64,
        attempt: u32,
        epoch: u64,
    ) -> Result<Verdict, DecideError> {
        let now = self.now;
        let Some(pa) = self.state.activities.get_mut(&scheduled_event_id) else {
            return rejected("no such activity");
        };
        if pa.attempt != attempt || epoch < pa.lease_epoch {
            return rejected("stale start");
        }
        match pa.phase {
            AttemptPhase::Backoff { .. } => return rejected("attempt is waiting for its retry"),
            AttemptPhase::Started { .. } if epoch == pa.lease_epoch => {
                return Ok(Verdict::Duplicate)
            }
            _ => {}
        }
        pa.phase = AttemptPhase::Started {
            started_at: now,
            last_heartbeat_at: None,
        };
        pa.lease_epoch = epoch;
        let timeouts = pa.timeouts.clone();
        let key = |timeout_type| TimerKey::ActivityTimeout {
            scheduled_event_id,
            attempt,
            timeout_type,
        };
        if timeouts.schedule_to_start.is_some() {
            self.effects.push(Effect::CancelTimer {
                key: key(TimeoutType::ScheduleToStart),
            });
        }
        if let Some(d) = timeouts.start_to_close {
            self.effects.push(Effect::StartTimer {
                key: key(TimeoutType::StartToClose),
                fire_at: now + d,
            });
        }
        if let Some(d) = timeouts.heartbeat {
            self.effects.push(Effect::StartTimer {
                key: key(TimeoutType::Heartbeat),
                fire_at: now + d,
            });
        }
        Ok(Verdict::Applied)
    }

    /// Deletes the timer rows of the current attempt (and, when `all`, schedule-to-close).
    fn cancel_activity_timers(&mut self, pa: &PendingActivity, all: bool) {
        let sid = pa.scheduled_event_id;
        let t = &pa.timeouts;
        let mut keys = Vec::new();
        for (set, kind) in [
            (t.schedule_to_start, TimeoutType::ScheduleToStart),
            (t.start_to_close, TimeoutType::StartToClose),
            (t.heartbeat, TimeoutType::Heartbeat),
        ] {
            if set.is_some() {
                keys.push(TimerKey::ActivityTimeout {
                    scheduled_event_id: sid,
                    attempt: pa.attempt,
                    timeout_type: kind,
                });
            }
        }
        if matches!(pa.phase, AttemptPhase::Backoff { .. }) {
            keys.push(TimerKey::ActivityRetry {
                scheduled_event_id: sid,
                attempt: pa.attempt,
            });
        }
        if all && t.schedule_to_close.is_some() {
            keys.push(TimerKey::ActivityTimeout {
                scheduled_event_id: sid,
                attempt: 0,
                timeout_type: TimeoutType::ScheduleToClose,
            });
        }
        self.effects
            .extend(keys.into_iter().map(|key| Effect::CancelTimer { key }));
    }

    /// Appends ActivityTaskStarted then the final outcome `end` (its `started_event_id` is
    /// filled in here).
    fn close_activity(
        &mut self,
        scheduled_event_id: u64,
        mut end: EventAttributes,
    ) -> Result<(), DecideError> {
        let Some(pa) = self.state.activities.get(&scheduled_event_id).cloned() else {
            return Ok(());
        };
        self.cancel_activity_timers(&pa, true);
        let started = self.emit(EventAttributes::ActivityTaskStarted {
            scheduled_event_id,
            attempt: pa.attempt,
            last_failure: pa.last_failure.clone(),
        })?;
        match &mut end {
            EventAttributes::ActivityTaskCompleted {
                started_event_id, ..
            }
            | EventAttributes::ActivityTaskFailed {
                started_event_id, ..
            }
            | EventAttributes::ActivityTaskTimedOut {
                started_event_id, ..
            } => *started_event_id = started,
            _ => {}
        }
        self.emit(end)?;
        Ok(())
    }

    fn cancel_closed(&mut self, scheduled_event_id: u64) -> Result<(), DecideError> {
        let Some(pa) = self.state.activities.get(&scheduled_event_id).cloned() else {
            return Ok(());
        };
        self.cancel_activity_timers(&pa, true);
        self.emit(EventAttributes::ActivityTaskCanceled {
            scheduled_event_id,
            started_event_id: 0,
            latest_cancel_requested_event_id: pa.cancel_requested_event_id.unwrap_or(0),
        })?;
        Ok(())
    }

    /// An attempt failed: retry per policy, or append the final failure.
    fn attempt_failed(
        &mut self,
        scheduled_event_id: u64,
        failure: Failure,
    ) -> Result<(), DecideError> {
        let now = self.now;
        let Some(pa) = self.state.activities.get(&scheduled_event_id).cloned() else {
            return Ok(());
        };
        if pa.cancel_requested_event_id.is_some() {
            return self.cancel_closed(scheduled_event_id);
        }
        let elapsed = (now - pa.first_scheduled_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        match pa
            .retry
            .decide(pa.attempt, &failure, elapsed, pa.timeouts.schedule_to_close)
        {
            RetryDecision::Retry { delay } => {
                self.cancel_activity_timers(&pa, false);
                let next = pa.attempt + 1;
                let until = now + delay;
                if let Some(live) = self.state.activities.get_mut(&scheduled_event_id) {
                    live.attempt = next;
                    live.phase = AttemptPhase::Backoff { until };
                    live.last_failure = Some(failure);
                }
                self.effects.push(Effect::StartTimer {
                    key: TimerKey::ActivityRetry {
                        scheduled_event_id,
                        attempt: next,
                    },
                    fire_at: until,
                });
            }
            RetryDecision::Stop(retry_state) => {
                let end = if failure.timeout_type.is_some() {
                    EventAttributes::ActivityTaskTimedOut {
                        scheduled_event_id,
                        started_event_id: 0,
                        failure,
                        retry_state,
                    }
                } else {
                    EventAttributes::ActivityTaskFailed {
                        scheduled_event_id,
                        started_event_id: 0,
                        failure,
                        retry_state,
                    }
                };
                self.close_activity(scheduled_event_id, end)?;
            }
        }
        Ok(())
    }

    fn timer_fired(&mut self, key: TimerKey) -> Result<Verdict, DecideError> {
        let now = self.now;
        match key {
            TimerKey::User { timer_id } => {
                let Some(timer) = self.state.timers.get(&timer_id).cloned() else {
                    return rejected("timer is not armed");
                };
                if now < timer.fire_at {
                    return rejected("timer fired early");
                }
                self.emit(EventAttributes::TimerFired {
                    timer_id,
                    started_event_id: timer.started_event_id,
                })?;
                if timer.purpose == TimerPurpose::GateTimeout {
                    let default = match self.program.step(&timer.step_id).map(|s| &s.kind) {
                        Some(StepKind::Gate(g)) => g.default.clone(),
                        _ => None,
                    };
                    self.marker(
                        marker::GATE_RESOLVED,
                        json!({"step": timer.step_id, "outcome": default, "signalEventId": null}),
                    )?;
                }
                Ok(Verdict::Applied)
            }
            TimerKey::ActivityRetry {
                scheduled_event_id,
                attempt,
            } => {
                let Some(pa) = self.state.activities.get_mut(&scheduled_event_id) else {
                    return rejected("no such activity");
                };
                let AttemptPhase::Backoff { until } = pa.phase else {
                    return rejected("activity is not waiting to retry");
                };
                if pa.attempt != attempt || now < until {
                    return rejected("stale or early retry timer");
                }
                pa.phase = AttemptPhase::Dispatched;
                pa.attempt_scheduled_at = now;
                self.dispatch(scheduled_event_id);
                Ok(Verdict::Applied)
            }
            TimerKey::ActivityTimeout {
                scheduled_event_id,
                attempt,
                timeout_type,
            } => {
                let Some(pa) = self.state.activities.get(&scheduled_event_id).cloned() else {
                    return rejected("no such activity");
                };
                let t = &pa.timeouts;
                let deadline = match (timeout_type, &pa.phase) {
                    (TimeoutType::ScheduleToClose, _) => {
                        t.schedule_to_close.map(|d| pa.first_scheduled_at + d)
                    }
                    (TimeoutType::ScheduleToStart, AttemptPhase::Dispatched) => {
                        t.schedule_to_start.map(|d| pa.attempt_scheduled_at + d)
                    }
                    (TimeoutType::StartToClose, AttemptPhase::Started { started_at, .. }) => {
                        t.start_to_close.map(|d| *started_at + d)
                    }
                    (
                        TimeoutType::Heartbeat,
                        AttemptPhase::Started {
                            started_at,
                            last_heartbeat_at,
                        },
                    ) => t
                        .heartbeat
                        .map(|d| last_heartbeat_at.unwrap_or(*started_at) + d),
                    _ => None,
                };
                let current = timeout_type == TimeoutType::ScheduleToClose || pa.attempt == attempt;
                let Some(deadline) = deadline.filter(|_| current) else {
                    return rejected("timeout no longer applies");
                };
                if now < deadline {
                    return rejected("timeout not yet due");
                }
                if pa.cancel_requested_event_id.is_some() {
                    // The attempt ignored its cancellation past a deadline: kill it and
                    // close it as cancelled, so the run is never stuck waiting.
                    self.effects.push(Effect::CancelActivity {
                        scheduled_event_id,
                        attempt: pa.attempt,
                        kill: true,
                    });
                    self.cancel_closed(scheduled_event_id)?;
                    return Ok(Verdict::Applied);
                }
                if !matches!(pa.phase, AttemptPhase::Backoff { .. }) {
                    self.effects.push(Effect::CancelActivity {
                        scheduled_event_id,
                        attempt: pa.attempt,
                        kill: true,
                    });
                }
                self.attempt_failed(scheduled_event_id, Failure::timeout(timeout_type))?;
                Ok(Verdict::Applied)
            }
        }
    }

    fn child_closed(
        &mut self,
        initiated_event_id: u64,
        run_id: String,
        outcome: ChildOutcome,
    ) -> Result<Verdict, DecideError> {
        let Some(child) = self.state.children.get(&initiated_event_id).cloned() else {
            return Ok(Verdict::Duplicate);
        };
        let workflow_execution = WorkflowExecution {
            workflow_id: child.workflow_id.clone(),
            run_id: run_id.clone(),
        };
        let started_event_id = if child.run_id.is_none() {
            self.emit(EventAttributes::ChildWorkflowExecutionStarted {
                initiated_event_id,
                workflow_execution: workflow_execution.clone(),
                workflow_type: child.workflow_type.clone(),
            })?
        } else {
            child.started_event_id
        };
        let attrs = match outcome {
            ChildOutcome::Completed { result } => {
                EventAttributes::ChildWorkflowExecutionCompleted {
                    initiated_event_id,
                    started_event_id,
                    workflow_execution,
                    result,
                }
            }
            ChildOutcome::Failed { failure } => EventAttributes::ChildWorkflowExecutionFailed {
                initiated_event_id,
                started_event_id,
                workflow_execution,
                failure,
            },
            ChildOutcome::Canceled => EventAttributes::ChildWorkflowExecutionCanceled {
                initiated_event_id,
                started_event_id,
                workflow_execution,
            },
            ChildOutcome::TimedOut => EventAttributes::ChildWorkflowExecutionTimedOut {
                initiated_event_id,
                started_event_id,
                workflow_execution,
            },
            ChildOutcome::Terminated { .. } => EventAttributes::ChildWorkflowExecutionTerminated {
                initiated_event_id,
                started_event_id,
                workflow_execution,
            },
        };
        self.emit(attrs)?;
        Ok(Verdict::Applied)
    }

    fn terminate(&mut self, reason: String) -> Result<(), DecideError> {
        let activities: Vec<PendingActivity> = self.state.activities.values().cloned().collect();
        for pa in &activities {
            self.cancel_activity_timers(pa, true);
            if !matches!(pa.phase, AttemptPhase::Backoff { .. }) {
                self.effects.push(Effect::CancelActivity {
                    scheduled_event_id: pa.scheduled_event_id,
                    attempt: pa.attempt,
                    kill: true,
                });
            }
        }
        let timers: Vec<String> = self.state.timers.keys().cloned().collect();
        for timer_id in timers {
            self.effects.push(Effect::CancelTimer {
                key: TimerKey::User { timer_id },
            });
        }
        let children: Vec<String> = self
            .state
            .children
            .values()
            .map(|c| c.workflow_id.clone())
            .collect();
        for workflow_id in children {
            self.effects.push(Effect::CancelChildWorkflow {
                workflow_id,
                terminate: true,
                reason: format!("parent terminated: {reason}"),
            });
        }
        self.emit(EventAttributes::WorkflowExecutionTerminated {
            reason: reason.clone(),
        })?;
        self.notify_parent(ChildOutcome::Terminated { reason });
        Ok(())
    }

    fn notify_parent(&mut self, outcome: ChildOutcome) {
        if let Some(parent) = self.state.parent.clone() {
            self.effects.push(Effect::NotifyParent {
                parent,
                run_id: self.state.run_id.clone(),
                outcome,
            });
        }
    }

    fn dispatch(&mut self, scheduled_event_id: u64) {
        let Some(pa) = self.state.activities.get(&scheduled_event_id) else {
            return;
        };
        let task = ActivityTask {
            workflow_id: self.state.workflow_id.clone(),
            run_id: self.state.run_id.clone(),
            scheduled_event_id,
            activity_id: pa.activity_id.clone(),
            activity_type: pa.activity_type.clone(),
            attempt: pa.attempt,
            input: pa.input.clone(),
            start_to_close: pa.timeouts.start_to_close,
            heartbeat: pa.timeouts.heartbeat,
            heartbeat_details: pa.heartbeat_details.clone(),
        };
        if let Some(d) = pa.timeouts.schedule_to_start {
            self.effects.push(Effect::StartTimer {
                key: TimerKey::ActivityTimeout {
                    scheduled_event_id,
                    attempt: pa.attempt,
                    timeout_type: TimeoutType::ScheduleToStart,
                },
                fire_at: self.now + d,
            });
        }
        self.effects.push(Effect::DispatchActivity(task));
    }

    /// Schedules an activity; a placeholder that cannot be resolved fails it at once.
    fn schedule_activity(
        &mut self,
        activity_id: String,
        def: &ActivityDef,
        argv: &[String],
    ) -> Result<(), DecideError> {
        // Building the context copies every output: only do it when something refers to it.
        let needs_ctx = argv.iter().any(|a| a.contains('{'))
            || def.cwd.as_ref().is_some_and(|c| c.contains('{'))
            || def.env.values().any(|v| v.contains('{'));
        let ctx = if needs_ctx {
            self.state.context()
        } else {
            Value::Null
        };
        let resolved: Result<ActivityInput, String> = (|| {
            Ok(ActivityInput {
                argv: argv
                    .iter()
                    .map(|a| render(a, &ctx).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?,
                cwd: def
                    .cwd
                    .as_ref()
                    .map(|c| render(c, &ctx).map_err(|e| e.to_string()))
                    .transpose()?,
                env: def
                    .env
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), render(v, &ctx).map_err(|e| e.to_string())?)))
                    .collect::<Result<_, String>>()?,
                capture_bytes: def.capture_bytes,
            })
        })();
        let (input, problem) = match resolved {
            Ok(input) => (input, None),
            Err(e) => (
                ActivityInput {
                    argv: argv.to_vec(),
                    cwd: def.cwd.clone(),
                    env: def.env.clone(),
                    capture_bytes: def.capture_bytes,
                },
                Some(e),
            ),
        };
        let sid = self.emit(EventAttributes::ActivityTaskScheduled {
            activity_id,
            activity_type: def.activity_type.name().to_string(),
            input,
            schedule_to_close_timeout: def.timeouts.schedule_to_close,
            schedule_to_start_timeout: def.timeouts.schedule_to_start,
            start_to_close_timeout: def.timeouts.start_to_close,
            heartbeat_timeout: def.timeouts.heartbeat,
            retry_policy: def.retry.clone(),
        })?;
        if let Some(problem) = problem {
            let failure = Failure::new("PlaceholderError", problem).non_retryable();
            return self.close_activity(
                sid,
                EventAttributes::ActivityTaskFailed {
                    scheduled_event_id: sid,
                    started_event_id: 0,
                    failure,
                    retry_state: RetryState::NonRetryableFailure,
                },
            );
        }
        if let Some(d) = def.timeouts.schedule_to_close {
            self.effects.push(Effect::StartTimer {
                key: TimerKey::ActivityTimeout {
                    scheduled_event_id: sid,
                    attempt: 0,
                    timeout_type: TimeoutType::ScheduleToClose,
                },
                fire_at: self.now + d,
            });
        }
        self.dispatch(sid);
        Ok(())
    }

    /// Writes the entry events of `step` (or a skip marker when its `when` is false).
    fn enter(&mut self, step: &'a Step) -> Result<(), DecideError> {
        if let Some(when) = &step.when {
            if !expr::truthy(&expr::eval(when, &self.state.context())) {
                self.marker(marker::STEP_SKIPPED, json!({"step": step.id}))?;
                return Ok(());
            }
        }
        match &step.kind {
            StepKind::Activity(def) => self.schedule_activity(step.id.clone(), def, &def.argv),
            StepKind::Sleep(sleep) => {
                let fire_at = match sleep {
                    super::program::SleepDef::For(d) => self.now + *d,
                    super::program::SleepDef::Until(t) => *t,
                };
                self.start_user_timer(step.id.clone(), fire_at)
            }
            StepKind::Gate(gate) => self.gate(step, gate),
            StepKind::Child(child) => {
                let initiated = self.state.next_event_id;
                let workflow_id = format!("{}/{}/{}", self.state.workflow_id, step.id, initiated);
                let ctx = self.state.context();
                let input = render_json(&child.input, &ctx);
                self.emit(EventAttributes::StartChildWorkflowExecutionInitiated {
                    workflow_id: workflow_id.clone(),
                    workflow_type: child.template.clone(),
                    input: input.clone(),
                    control: step.id.clone(),
                })?;
                self.effects.push(Effect::StartChildWorkflow {
                    parent: ParentRef {
                        workflow_id: self.state.workflow_id.clone(),
                        run_id: self.state.run_id.clone(),
                        initiated_event_id: initiated,
                    },
                    workflow_id,
                    template: child.template.clone(),
                    input,
                });
                Ok(())
            }
            StepKind::Parallel(p) => {
                for branch in &p.branches {
                    let pending = match &self.state.group {
                        Some(g) if g.step_id == step.id => {
                            g.status(&branch.id) == Some(BranchStatus::Pending)
                        }
                        _ => true,
                    };
                    let still_here = self.state.phase == Phase::Running
                        && self.program.locate(&step.id) == Some(StepLoc::Top(self.state.cursor));
                    if pending && still_here {
                        self.enter(branch)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn start_user_timer(
        &mut self,
        timer_id: String,
        fire_at: DateTime<Utc>,
    ) -> Result<(), DecideError> {
        let start_to_fire = (fire_at - self.now).to_std().unwrap_or(Duration::ZERO);
        self.emit(EventAttributes::TimerStarted {
            timer_id: timer_id.clone(),
            start_to_fire_timeout: start_to_fire,
            fire_time: fire_at,
        })?;
        self.effects.push(Effect::StartTimer {
            key: TimerKey::User { timer_id },
            fire_at,
        });
        Ok(())
    }

    /// Resolves the gate with a buffered signal, or arms its timeout once.
    fn gate(&mut self, step: &Step, gate: &GateDef) -> Result<(), DecideError> {
        let timer_id = format!("{}{GATE_TIMEOUT_SUFFIX}", step.id);
        let found = self
            .state
            .signals
            .iter()
            .find(|s| gate.signals.contains(&s.name))
            .map(|s| (s.event_id, s.name.clone()));
        if let Some((event_id, name)) = found {
            if let Some(timer) = self.state.timers.get(&timer_id).cloned() {
                self.emit(EventAttributes::TimerCanceled {
                    timer_id: timer_id.clone(),
                    started_event_id: timer.started_event_id,
                })?;
                self.effects.push(Effect::CancelTimer {
                    key: TimerKey::User { timer_id },
                });
            }
            self.marker(
                marker::GATE_RESOLVED,
                json!({"step": step.id, "outcome": name, "signalEventId": event_id}),
            )?;
            return Ok(());
        }
        if let Some(timeout) = gate.timeout {
            if !self.state.entered {
                self.start_user_timer(timer_id, self.now + timeout)?;
            }
        }
        Ok(())
    }

    /// Cancels everything in flight of a run that is failing or being cancelled.
    fn cancel_in_flight(&mut self) -> Result<(), DecideError> {
        let activities: Vec<PendingActivity> = self
            .state
            .activities
            .values()
            .filter(|a| a.cancel_requested_event_id.is_none() && !a.is_compensation())
            .cloned()
            .collect();
        for pa in activities {
            self.cancel_activity(&pa)?;
        }
        let timers: Vec<(String, u64)> = self
            .state
            .timers
            .values()
            .map(|t| (t.timer_id.clone(), t.started_event_id))
            .collect();
        for (timer_id, started_event_id) in timers {
            self.emit(EventAttributes::TimerCanceled {
                timer_id: timer_id.clone(),
                started_event_id,
            })?;
            self.effects.push(Effect::CancelTimer {
                key: TimerKey::User { timer_id },
            });
        }
        let children: Vec<(String, Option<String>)> = self
            .state
            .children
            .values()
            .filter(|c| !c.cancel_requested)
            .map(|c| (c.workflow_id.clone(), c.run_id.clone()))
            .collect();
        for (workflow_id, run_id) in children {
            self.emit(
                EventAttributes::RequestCancelExternalWorkflowExecutionInitiated {
                    workflow_execution: WorkflowExecution {
                        workflow_id: workflow_id.clone(),
                        run_id: run_id.unwrap_or_default(),
                    },
                    child_workflow_only: true,
                    reason: "parent is cancelling".into(),
                },
            )?;
            self.effects.push(Effect::CancelChildWorkflow {
                workflow_id,
                terminate: false,
                reason: "parent is cancelling".into(),
            });
        }
        Ok(())
    }

    /// Requests cancellation of one activity; one waiting for a retry closes at once.
    fn cancel_activity(&mut self, pa: &PendingActivity) -> Result<(), DecideError> {
        let sid = pa.scheduled_event_id;
        self.emit(EventAttributes::ActivityTaskCancelRequested {
            scheduled_event_id: sid,
        })?;
        if matches!(pa.phase, AttemptPhase::Backoff { .. }) {
            self.cancel_closed(sid)
        } else {
            self.effects.push(Effect::CancelActivity {
                scheduled_event_id: sid,
                attempt: pa.attempt,
                kill: false,
            });
            Ok(())
        }
    }

    /// Cancels the still-running branches of a group that is winding down.
    fn cancel_branches(&mut self) -> Result<(), DecideError> {
        let Some(group) = self.state.group.clone() else {
            return Ok(());
        };
        for (branch, status) in &group.branches {
            if *status != BranchStatus::Running {
                continue;
            }
            if let Some(pa) = self
                .state
                .activities
                .values()
                .find(|a| a.activity_id == *branch && a.cancel_requested_event_id.is_none())
                .cloned()
            {
                self.cancel_activity(&pa)?;
            } else if let Some(timer) = self.state.timers.get(branch).cloned() {
                self.emit(EventAttributes::TimerCanceled {
                    timer_id: timer.timer_id.clone(),
                    started_event_id: timer.started_event_id,
                })?;
                self.effects.push(Effect::CancelTimer {
                    key: TimerKey::User {
                        timer_id: timer.timer_id,
                    },
                });
            }
        }
        Ok(())
    }

    fn close_unwound(&mut self, reason: Unwind) -> Result<(), DecideError> {
        match reason {
            Unwind::Failed(failure) => {
                self.emit(EventAttributes::WorkflowExecutionFailed {
                    failure: failure.clone(),
                    retry_state: RetryState::RetryPolicyNotSet,
                })?;
                self.notify_parent(ChildOutcome::Failed { failure });
            }
            Unwind::Canceled => {
                self.emit(EventAttributes::WorkflowExecutionCanceled {
                    details: Value::Null,
                })?;
                self.notify_parent(ChildOutcome::Canceled);
            }
        }
        Ok(())
    }

    fn schedule_compensation(&mut self, item: &CompensationItem) -> Result<(), DecideError> {
        let step = self.program.step(&item.step_id);
        let def = match step.map(|s| &s.kind) {
            Some(StepKind::Activity(a)) => ActivityDef {
                activity_type: ActivityType::Command,
                argv: item.argv.clone(),
                retry: RetryPolicy::default(),
                ..a.clone()
            },
            _ => ActivityDef {
                activity_type: ActivityType::Command,
                argv: item.argv.clone(),
                cwd: None,
                env: Default::default(),
                retry: RetryPolicy::default(),
                timeouts: Default::default(),
                capture_bytes: COMPENSATION_CAPTURE_BYTES,
            },
        };
        self.schedule_activity(item.activity_id(), &def, &item.argv)
    }

    /// Moves the run forward until it waits for the outside world.
    fn advance(&mut self) -> Result<(), DecideError> {
        loop {
            let before = self.state.next_event_id;
            match self.state.phase.clone() {
                Phase::Closed => return Ok(()),
                Phase::Unwinding(reason) => {
                    self.cancel_in_flight()?;
                    if self.state.is_idle() {
                        if self.state.compensations.is_empty() {
                            self.close_unwound(reason)?;
                        } else {
                            let order: Vec<String> = self
                                .state
                                .compensation_queue()
                                .iter()
                                .map(|c| c.activity_id())
                                .collect();
                            let why = match reason {
                                Unwind::Failed(_) => "failed",
                                Unwind::Canceled => "canceled",
                            };
                            self.marker(
                                marker::COMPENSATION,
                                json!({"reason": why, "order": order}),
                            )?;
                        }
                    }
                }
                Phase::Compensating {
                    reason,
                    queue,
                    next,
                } => {
                    if next >= queue.len() {
                        self.close_unwound(reason)?;
                    } else if !self.state.activities.values().any(|a| a.is_compensation()) {
                        self.schedule_compensation(&queue[next])?;
                    }
                }
                Phase::Running => {
                    let program = self.program;
                    match program.steps.get(self.state.cursor) {
                        None => {
                            let result = json!({ "steps": self.state.outputs });
                            self.emit(EventAttributes::WorkflowExecutionCompleted {
                                result: result.clone(),
                            })?;
                            self.notify_parent(ChildOutcome::Completed { result });
                        }
                        Some(step) => match &step.kind {
                            StepKind::Gate(_) => self.enter(step)?,
                            StepKind::Parallel(_) if self.state.entered => {
                                if self.state.group.as_ref().is_some_and(|g| g.canceling) {
                                    self.cancel_branches()?;
                                } else {
                                    self.enter(step)?;
                                }
                            }
                            _ if !self.state.entered => self.enter(step)?,
                            _ => {}
                        },
                    }
                }
            }
            if self.state.next_event_id == before {
                return Ok(());
            }
        }
    }
}

/// Substitutes placeholders in every string of a JSON value; strings that fail to render
/// are kept as written.
fn render_json(value: &Value, ctx: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(render(s, ctx).unwrap_or_else(|_| s.clone())),
        Value::Array(a) => Value::Array(a.iter().map(|v| render_json(v, ctx)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), render_json(v, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}
