//! A run's state, folded from its history.
//!
//! [`RunState::apply`] is the only way history changes state, and `decide` builds new
//! state by applying the events it emits, so `fold(history)` reproduces the live state by
//! construction. The one exception is the current attempt of each pending activity
//! (attempt number, lease epoch, backoff, heartbeat): like Temporal, attempts are not
//! history events, so they live in the state snapshot only. [`RunState::history_view`]
//! blanks them for comparisons with a fold.

use super::event::{ActivityInput, ActivityOutput, Event, EventAttributes, Failure, ParentRef};
use super::program::{ActivityTimeouts, ParallelMode, Program, StepKind, StepLoc};
use super::retry::RetryPolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Marker names spool records (Temporal's MarkerRecorded with these `markerName`s).
pub mod marker {
    /// A step's `when` was false. Details: `step`.
    pub const STEP_SKIPPED: &str = "StepSkipped";
    /// A gate was resolved. Details: `step`, `outcome` (signal name or null), `signalEventId`.
    pub const GATE_RESOLVED: &str = "GateResolved";
    /// Compensation starts. Details: `reason`, `order`.
    pub const COMPENSATION: &str = "Compensation";
}

/// Prefix of the activity id of a compensation command: `compensate:<step>:<index>`.
pub const COMPENSATE_PREFIX: &str = "compensate:";

/// Suffix of the timer id of a gate's timeout: `<step>:timeout`.
pub const GATE_TIMEOUT_SUFFIX: &str = ":timeout";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No WorkflowExecutionStarted yet.
    #[default]
    New,
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    TimedOut,
    ContinuedAsNew,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::New => "new",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
            RunStatus::Terminated => "terminated",
            RunStatus::TimedOut => "timed_out",
            RunStatus::ContinuedAsNew => "continued_as_new",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::New | RunStatus::Running)
    }
}

/// Why a run is winding down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unwind {
    Failed(Failure),
    Canceled,
}

/// Where the run is in its life.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Executing the step at `cursor`.
    #[default]
    Running,
    /// Failed or cancelled: waiting for in-flight work to be cancelled, then compensating.
    Unwinding(Unwind),
    /// Running compensation commands `queue[next..]`, one at a time.
    Compensating {
        reason: Unwind,
        queue: Vec<CompensationItem>,
        next: usize,
    },
    Closed,
}

/// One compensation command to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationItem {
    pub step_id: String,
    pub index: usize,
    pub argv: Vec<String>,
}

impl CompensationItem {
    pub fn activity_id(&self) -> String {
        format!("{COMPENSATE_PREFIX}{}:{}", self.step_id, self.index)
    }
}

/// The live state of the current attempt (not in history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptPhase {
    /// Handed to a worker, not yet reported started.
    Dispatched,
    Started {
        started_at: DateTime<Utc>,
        last_heartbeat_at: Option<DateTime<Utc>>,
    },
    /// Waiting for the retry timer.
    Backoff { until: DateTime<Utc> },
}

/// An activity that is scheduled and not yet closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingActivity {
    pub scheduled_event_id: u64,
    pub activity_id: String,
    pub activity_type: String,
    pub input: ActivityInput,
    pub retry: RetryPolicy,
    pub timeouts: ActivityTimeouts,
    pub first_scheduled_at: DateTime<Utc>,
    pub cancel_requested_event_id: Option<u64>,
    /// Set by ActivityTaskStarted, which is written just before the final outcome.
    pub started_event_id: u64,
    pub attempt: u32,
    pub attempt_scheduled_at: DateTime<Utc>,
    pub phase: AttemptPhase,
    /// Boot epoch of the worker that holds the attempt (0: none yet).
    pub lease_epoch: u64,
    pub last_failure: Option<Failure>,
    pub heartbeat_details: Option<Value>,
}

impl PendingActivity {
    /// The step this activity belongs to (`None` for a compensation command).
    pub fn step_id(&self) -> Option<&str> {
        if self.activity_id.starts_with(COMPENSATE_PREFIX) {
            None
        } else {
            Some(&self.activity_id)
        }
    }

    pub fn is_compensation(&self) -> bool {
        self.step_id().is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerPurpose {
    Sleep,
    GateTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimer {
    pub timer_id: String,
    pub step_id: String,
    pub started_event_id: u64,
    pub fire_at: DateTime<Utc>,
    pub purpose: TimerPurpose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChild {
    pub initiated_event_id: u64,
    pub step_id: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub run_id: Option<String>,
    pub started_event_id: u64,
    pub cancel_requested: bool,
}

/// A signal received and not yet consumed by a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferedSignal {
    pub event_id: u64,
    pub name: String,
    pub payload: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchStatus {
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Canceled,
}

/// The branches of the `parallel` step at the cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub step_id: String,
    /// In template order.
    pub branches: Vec<(String, BranchStatus)>,
    /// Remaining branches are being cancelled (a failure in `all`, a winner in `first_success`).
    pub canceling: bool,
    pub failure: Option<Failure>,
    pub winner: Option<String>,
}

impl GroupState {
    pub fn status(&self, id: &str) -> Option<BranchStatus> {
        self.branches.iter().find(|(b, _)| b == id).map(|(_, s)| *s)
    }

    fn set(&mut self, id: &str, status: BranchStatus) {
        if let Some(entry) = self.branches.iter_mut().find(|(b, _)| b == id) {
            entry.1 = status;
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
enum StepEnd {
    Succeeded,
    Skipped,
    Failed(Failure),
    Canceled,
}

/// A history that does not fit the program or is out of order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history event {event_id}: {message}")]
pub struct FoldError {
    pub event_id: u64,
    pub message: String,
}

/// Everything known about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub template_hash: String,
    pub input: Value,
    pub parent: Option<ParentRef>,
    pub status: RunStatus,
    pub phase: Phase,
    /// The id the next event gets (dense, from 1).
    pub next_event_id: u64,
    /// Index of the current top-level step.
    pub cursor: usize,
    /// Whether the current step's entry events were written.
    pub entered: bool,
    pub group: Option<GroupState>,
    /// Step id → output, the data `when` expressions and placeholders read.
    pub outputs: BTreeMap<String, Value>,
    /// Step id → times its `on_failure` loop was taken.
    pub loops: BTreeMap<String, u32>,
    pub activities: BTreeMap<u64, PendingActivity>,
    pub timers: BTreeMap<String, PendingTimer>,
    pub children: BTreeMap<u64, PendingChild>,
    pub signals: Vec<BufferedSignal>,
    pub request_ids: BTreeSet<String>,
    /// Completed steps with compensation commands, in completion order.
    pub compensations: Vec<(String, Vec<Vec<String>>)>,
    pub cancel_requested: bool,
    pub result: Option<Value>,
    pub failure: Option<Failure>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            workflow_id: String::new(),
            run_id: String::new(),
            workflow_type: String::new(),
            template_hash: String::new(),
            input: Value::Null,
            parent: None,
            status: RunStatus::New,
            phase: Phase::Running,
            next_event_id: 1,
            cursor: 0,
            entered: false,
            group: None,
            outputs: BTreeMap::new(),
            loops: BTreeMap::new(),
            activities: BTreeMap::new(),
            timers: BTreeMap::new(),
            children: BTreeMap::new(),
            signals: Vec::new(),
            request_ids: BTreeSet::new(),
            compensations: Vec::new(),
            cancel_requested: false,
            result: None,
            failure: None,
            closed_at: None,
        }
    }
}

/// Rebuilds a run's state from its history. Deterministic: same program and events, same
/// state.
pub fn fold(program: &Program, events: &[Event]) -> Result<RunState, FoldError> {
    let mut state = RunState::default();
    for event in events {
        state.apply(program, event)?;
    }
    Ok(state)
}

impl RunState {
    /// Nothing in flight: no activity, timer or child.
    pub fn is_idle(&self) -> bool {
        self.activities.is_empty() && self.timers.is_empty() && self.children.is_empty()
    }

    /// The state with each pending activity's attempt data reset to what history alone
    /// knows (attempt 1, just dispatched): the part a fold reproduces.
    pub fn history_view(&self) -> RunState {
        let mut s = self.clone();
        for pa in s.activities.values_mut() {
            reset_attempt(pa);
        }
        s
    }

    /// The template-visible data: input keys at the root, plus `input`, `steps`, `workflow`.
    pub fn context(&self) -> Value {
        let mut root = match &self.input {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        root.insert("input".into(), self.input.clone());
        root.insert(
            "steps".into(),
            Value::Object(
                self.outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        );
        root.insert(
            "workflow".into(),
            json!({"id": self.workflow_id, "run_id": self.run_id, "type": self.workflow_type}),
        );
        Value::Object(root)
    }

    /// Applies one event. Fails on a gap in event ids or an event that names no known
    /// step, activity, timer or child.
    pub fn apply(&mut self, program: &Program, event: &Event) -> Result<(), FoldError> {
        let id = event.event_id;
        let err = |message: String| FoldError {
            event_id: id,
            message,
        };
        if id != self.next_event_id {
            return Err(err(format!("expected event id {}", self.next_event_id)));
        }
        if self.status != RunStatus::Running
            && !matches!(
                event.attributes,
                EventAttributes::WorkflowExecutionStarted { .. }
            )
        {
            return Err(err(format!(
                "event on a run that is {}",
                self.status.as_str()
            )));
        }
        self.next_event_id += 1;
        let at = event.event_time;
        use EventAttributes as E;
        match &event.attributes {
            E::WorkflowExecutionStarted {
                workflow_type,
                workflow_id,
                first_execution_run_id,
                input,
                template_hash,
                parent_workflow_execution,
                ..
            } => {
                if self.status != RunStatus::New {
                    return Err(err("second WorkflowExecutionStarted".into()));
                }
                self.workflow_type = workflow_type.clone();
                self.workflow_id = workflow_id.clone();
                self.run_id = first_execution_run_id.clone();
                self.input = input.clone();
                self.template_hash = template_hash.clone();
                self.parent = parent_workflow_execution.clone();
                self.status = RunStatus::Running;
            }
            E::ActivityTaskScheduled {
                activity_id,
                activity_type,
                input,
                schedule_to_close_timeout,
                schedule_to_start_timeout,
                start_to_close_timeout,
                heartbeat_timeout,
                retry_policy,
            } => {
                if !activity_id.starts_with(COMPENSATE_PREFIX) {
                    self.enter_step(program, activity_id, BranchStatus::Running)
                        .map_err(err)?;
                }
                let mut pa = PendingActivity {
                    scheduled_event_id: id,
                    activity_id: activity_id.clone(),
                    activity_type: activity_type.clone(),
                    input: input.clone(),
                    retry: retry_policy.clone(),
                    timeouts: ActivityTimeouts {
                        schedule_to_start: *schedule_to_start_timeout,
                        start_to_close: *start_to_close_timeout,
                        schedule_to_close: *schedule_to_close_timeout,
                        heartbeat: *heartbeat_timeout,
                    },
                    first_scheduled_at: at,
                    cancel_requested_event_id: None,
                    started_event_id: 0,
                    attempt: 1,
                    attempt_scheduled_at: at,
                    phase: AttemptPhase::Dispatched,
                    lease_epoch: 0,
                    last_failure: None,
                    heartbeat_details: None,
                };
                reset_attempt(&mut pa);
                self.activities.insert(id, pa);
            }
            E::ActivityTaskStarted {
                scheduled_event_id,
                attempt,
                ..
            } => {
                let pa = self
                    .activities
                    .get_mut(scheduled_event_id)
                    .ok_or_else(|| err(format!("no pending activity {scheduled_event_id}")))?;
                pa.started_event_id = id;
                pa.attempt = *attempt;
            }
            E::ActivityTaskCompleted {
                scheduled_event_id,
                result,
                ..
            } => {
                let pa = self.take_activity(*scheduled_event_id).map_err(err)?;
                let output = activity_output_json("completed", result, pa_attempt(&pa));
                self.end_activity(program, &pa, output, StepEnd::Succeeded)
                    .map_err(err)?;
            }
            E::ActivityTaskFailed {
                scheduled_event_id,
                failure,
                ..
            }
            | E::ActivityTaskTimedOut {
                scheduled_event_id,
                failure,
                ..
            } => {
                let pa = self.take_activity(*scheduled_event_id).map_err(err)?;
                let details = failure.details.clone().unwrap_or_default();
                let mut output = activity_output_json("failed", &details, pa_attempt(&pa));
                output["error"] = json!({"type": failure.error_type, "message": failure.message});
                self.end_activity(program, &pa, output, StepEnd::Failed(failure.clone()))
                    .map_err(err)?;
            }
            E::ActivityTaskCancelRequested { scheduled_event_id } => {
                let pa = self
                    .activities
                    .get_mut(scheduled_event_id)
                    .ok_or_else(|| err(format!("no pending activity {scheduled_event_id}")))?;
                pa.cancel_requested_event_id = Some(id);
            }
            E::ActivityTaskCanceled {
                scheduled_event_id, ..
            } => {
                let pa = self.take_activity(*scheduled_event_id).map_err(err)?;
                self.end_activity(
                    program,
                    &pa,
                    json!({"status": "canceled"}),
                    StepEnd::Canceled,
                )
                .map_err(err)?;
            }
            E::TimerStarted {
                timer_id,
                fire_time,
                ..
            } => {
                let (step_id, purpose) = match timer_id.strip_suffix(GATE_TIMEOUT_SUFFIX) {
                    Some(step) => (step.to_string(), TimerPurpose::GateTimeout),
                    None => (timer_id.clone(), TimerPurpose::Sleep),
                };
                self.enter_step(program, &step_id, BranchStatus::Running)
                    .map_err(err)?;
                self.timers.insert(
                    timer_id.clone(),
                    PendingTimer {
                        timer_id: timer_id.clone(),
                        step_id,
                        started_event_id: id,
                        fire_at: *fire_time,
                        purpose,
                    },
                );
            }
            E::TimerFired { timer_id, .. } | E::TimerCanceled { timer_id, .. } => {
                let timer = self
                    .timers
                    .remove(timer_id)
                    .ok_or_else(|| err(format!("no pending timer {timer_id:?}")))?;
                if timer.purpose == TimerPurpose::Sleep {
                    let (output, end) = match event.attributes {
                        E::TimerFired { .. } => (
                            json!({"status": "completed", "fired_at": at.to_rfc3339()}),
                            StepEnd::Succeeded,
                        ),
                        _ => (json!({"status": "canceled"}), StepEnd::Canceled),
                    };
                    self.end_step(program, &timer.step_id, output, end)
                        .map_err(err)?;
                }
            }
            E::WorkflowExecutionSignaled {
                signal_name,
                input,
                request_id,
            } => {
                self.signals.push(BufferedSignal {
                    event_id: id,
                    name: signal_name.clone(),
                    payload: input.clone(),
                });
                self.request_ids.insert(request_id.clone());
            }
            E::MarkerRecorded {
                marker_name,
                details,
            } => self
                .apply_marker(program, marker_name, details)
                .map_err(err)?,
            E::WorkflowExecutionCancelRequested { .. } => {
                self.cancel_requested = true;
                if self.phase == Phase::Running {
                    self.phase = Phase::Unwinding(Unwind::Canceled);
                }
            }
            E::RequestCancelExternalWorkflowExecutionInitiated {
                workflow_execution, ..
            } => {
                let child = self
                    .children
                    .values_mut()
                    .find(|c| c.workflow_id == workflow_execution.workflow_id)
                    .ok_or_else(|| err(format!("no child {}", workflow_execution.workflow_id)))?;
                child.cancel_requested = true;
            }
            E::StartChildWorkflowExecutionInitiated {
                workflow_id,
                workflow_type,
                control,
                ..
            } => {
                self.enter_step(program, control, BranchStatus::Running)
                    .map_err(err)?;
                self.children.insert(
                    id,
                    PendingChild {
                        initiated_event_id: id,
                        step_id: control.clone(),
                        workflow_id: workflow_id.clone(),
                        workflow_type: workflow_type.clone(),
                        run_id: None,
                        started_event_id: 0,
                        cancel_requested: false,
                    },
                );
            }
            E::StartChildWorkflowExecutionFailed {
                initiated_event_id,
                cause,
                ..
            } => {
                let child = self.take_child(*initiated_event_id).map_err(err)?;
                let failure = Failure::new("ChildStartFailed", cause.clone()).non_retryable();
                let output = json!({"status": "failed", "error": {"type": failure.error_type, "message": cause}});
                let end = if self.phase == Phase::Running {
                    StepEnd::Failed(failure)
                } else {
                    StepEnd::Canceled
                };
                self.end_step(program, &child.step_id, output, end)
                    .map_err(err)?;
            }
            E::ChildWorkflowExecutionStarted {
                initiated_event_id,
                workflow_execution,
                ..
            } => {
                let child = self
                    .children
                    .get_mut(initiated_event_id)
                    .ok_or_else(|| err(format!("no child initiated at {initiated_event_id}")))?;
                child.run_id = Some(workflow_execution.run_id.clone());
                child.started_event_id = id;
            }
            E::ChildWorkflowExecutionCompleted {
                initiated_event_id,
                result,
                ..
            } => {
                let child = self.take_child(*initiated_event_id).map_err(err)?;
                let output = json!({"status": "completed", "result": result});
                self.end_step(program, &child.step_id, output, StepEnd::Succeeded)
                    .map_err(err)?;
            }
            E::ChildWorkflowExecutionFailed {
                initiated_event_id,
                failure,
                ..
            } => {
                let child = self.take_child(*initiated_event_id).map_err(err)?;
                let output = json!({"status": "failed", "error": {"type": failure.error_type, "message": failure.message}});
                self.end_step(
                    program,
                    &child.step_id,
                    output,
                    StepEnd::Failed(failure.clone()),
                )
                .map_err(err)?;
            }
            E::ChildWorkflowExecutionCanceled {
                initiated_event_id, ..
            }
            | E::ChildWorkflowExecutionTimedOut {
                initiated_event_id, ..
            }
            | E::ChildWorkflowExecutionTerminated {
                initiated_event_id, ..
            } => {
                let child = self.take_child(*initiated_event_id).map_err(err)?;
                let how = match event.attributes {
                    E::ChildWorkflowExecutionCanceled { .. } => "canceled",
                    E::ChildWorkflowExecutionTimedOut { .. } => "timed_out",
                    _ => "terminated",
                };
                let end = if self.phase == Phase::Running {
                    StepEnd::Failed(Failure::new(
                        "ChildWorkflow",
                        format!("child workflow {how}"),
                    ))
                } else {
                    StepEnd::Canceled
                };
                self.end_step(program, &child.step_id, json!({"status": how}), end)
                    .map_err(err)?;
            }
            E::WorkflowExecutionCompleted { result } => {
                self.close(RunStatus::Completed, at);
                self.result = Some(result.clone());
            }
            E::WorkflowExecutionFailed { failure, .. } => {
                self.close(RunStatus::Failed, at);
                self.failure = Some(failure.clone());
            }
            E::WorkflowExecutionTimedOut { .. } => self.close(RunStatus::TimedOut, at),
            E::WorkflowExecutionCanceled { .. } => self.close(RunStatus::Canceled, at),
            E::WorkflowExecutionTerminated { .. } => self.close(RunStatus::Terminated, at),
            E::WorkflowExecutionContinuedAsNew { .. } => self.close(RunStatus::ContinuedAsNew, at),
        }
        Ok(())
    }

    fn close(&mut self, status: RunStatus, at: DateTime<Utc>) {
        self.status = status;
        self.phase = Phase::Closed;
        self.closed_at = Some(at);
        self.activities.clear();
        self.timers.clear();
        self.children.clear();
    }

    fn take_activity(&mut self, id: u64) -> Result<PendingActivity, String> {
        self.activities
            .remove(&id)
            .ok_or_else(|| format!("no pending activity {id}"))
    }

    fn take_child(&mut self, id: u64) -> Result<PendingChild, String> {
        self.children
            .remove(&id)
            .ok_or_else(|| format!("no child initiated at {id}"))
    }

    /// Records that a step's entry event was written.
    fn enter_step(
        &mut self,
        program: &Program,
        step_id: &str,
        branch_status: BranchStatus,
    ) -> Result<(), String> {
        match program.locate(step_id) {
            Some(StepLoc::Top(i)) => {
                if i == self.cursor {
                    self.entered = true;
                }
                Ok(())
            }
            Some(StepLoc::Branch(i, _)) => {
                self.ensure_group(program, i);
                if let Some(g) = &mut self.group {
                    g.set(step_id, branch_status);
                }
                self.check_group(program)
            }
            None => Err(format!("unknown step {step_id:?}")),
        }
    }

    fn ensure_group(&mut self, program: &Program, index: usize) {
        let step = &program.steps[index];
        if self
            .group
            .as_ref()
            .map(|g| g.step_id != step.id)
            .unwrap_or(true)
        {
            if let StepKind::Parallel(p) = &step.kind {
                self.group = Some(GroupState {
                    step_id: step.id.clone(),
                    branches: p
                        .branches
                        .iter()
                        .map(|b| (b.id.clone(), BranchStatus::Pending))
                        .collect(),
                    canceling: false,
                    failure: None,
                    winner: None,
                });
                if index == self.cursor {
                    self.entered = true;
                }
            }
        }
    }

    fn end_activity(
        &mut self,
        program: &Program,
        pa: &PendingActivity,
        output: Value,
        end: StepEnd,
    ) -> Result<(), String> {
        match pa.step_id() {
            Some(step) => self.end_step(program, step, output, end),
            None => {
                if let Phase::Compensating { next, .. } = &mut self.phase {
                    *next += 1;
                }
                Ok(())
            }
        }
    }

    /// A step (or branch) ended: record its output, then move on.
    fn end_step(
        &mut self,
        program: &Program,
        step_id: &str,
        output: Value,
        end: StepEnd,
    ) -> Result<(), String> {
        let loc = program
            .locate(step_id)
            .ok_or_else(|| format!("unknown step {step_id:?}"))?;
        self.outputs.insert(step_id.to_string(), output);
        let step = program.step_at(loc);
        if end == StepEnd::Succeeded && !step.compensate.is_empty() {
            self.compensations.retain(|(s, _)| s != step_id);
            self.compensations
                .push((step_id.to_string(), step.compensate.clone()));
        }
        match loc {
            StepLoc::Branch(i, _) => {
                self.ensure_group(program, i);
                let status = match &end {
                    StepEnd::Succeeded => BranchStatus::Succeeded,
                    StepEnd::Skipped => BranchStatus::Skipped,
                    StepEnd::Failed(_) => BranchStatus::Failed,
                    StepEnd::Canceled => BranchStatus::Canceled,
                };
                let mode = match &program.steps[i].kind {
                    StepKind::Parallel(p) => p.mode,
                    _ => ParallelMode::All,
                };
                if let Some(g) = &mut self.group {
                    g.set(step_id, status);
                    match (&end, mode) {
                        (StepEnd::Failed(f), _) => {
                            if g.failure.is_none() {
                                g.failure = Some(f.clone());
                            }
                            if mode == ParallelMode::All {
                                g.canceling = true;
                            }
                        }
                        (StepEnd::Succeeded, ParallelMode::FirstSuccess) if g.winner.is_none() => {
                            g.winner = Some(step_id.to_string());
                            g.canceling = true;
                        }
                        _ => {}
                    }
                }
                self.check_group(program)
            }
            StepLoc::Top(i) => {
                if self.phase != Phase::Running || i != self.cursor {
                    return Ok(());
                }
                match end {
                    StepEnd::Succeeded | StepEnd::Skipped => self.advance_cursor(i + 1),
                    StepEnd::Failed(f) => self.fail_step(program, i, f),
                    StepEnd::Canceled => {
                        self.fail_step(program, i, Failure::new("Canceled", "step canceled"))
                    }
                }
                Ok(())
            }
        }
    }

    fn advance_cursor(&mut self, to: usize) {
        self.cursor = to;
        self.entered = false;
        self.group = None;
    }

    fn fail_step(&mut self, program: &Program, index: usize, failure: Failure) {
        let step = &program.steps[index];
        if let Some(of) = &step.on_failure {
            let used = self.loops.get(&step.id).copied().unwrap_or(0);
            if used < of.max_loops {
                self.loops.insert(step.id.clone(), used + 1);
                self.advance_cursor(of.goto_index);
                return;
            }
        }
        self.phase = Phase::Unwinding(Unwind::Failed(failure));
    }

    /// Ends the group at the cursor once no branch is pending or running.
    fn check_group(&mut self, program: &Program) -> Result<(), String> {
        let Some(g) = &mut self.group else {
            return Ok(());
        };
        if g.canceling {
            for (_, s) in g.branches.iter_mut() {
                if *s == BranchStatus::Pending {
                    *s = BranchStatus::Canceled;
                }
            }
        }
        if g.branches
            .iter()
            .any(|(_, s)| matches!(s, BranchStatus::Pending | BranchStatus::Running))
        {
            return Ok(());
        }
        let g = g.clone();
        let Some(StepLoc::Top(i)) = program.locate(&g.step_id) else {
            return Err(format!("unknown parallel step {:?}", g.step_id));
        };
        let mode = match &program.steps[i].kind {
            StepKind::Parallel(p) => p.mode,
            _ => ParallelMode::All,
        };
        let branches: Map<String, Value> = g
            .branches
            .iter()
            .map(|(b, _)| {
                (
                    b.clone(),
                    self.outputs.get(b).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let end = match (mode, &g.failure, &g.winner) {
            (ParallelMode::All, Some(f), _) => StepEnd::Failed(f.clone()),
            (ParallelMode::All, None, _) => StepEnd::Succeeded,
            (ParallelMode::FirstSuccess, _, Some(_)) => StepEnd::Succeeded,
            (ParallelMode::FirstSuccess, Some(f), None) => StepEnd::Failed(f.clone()),
            (ParallelMode::FirstSuccess, None, None) => StepEnd::Succeeded,
        };
        let status = if matches!(end, StepEnd::Succeeded) {
            "completed"
        } else {
            "failed"
        };
        let output = json!({"status": status, "branches": branches, "winner": g.winner});
        self.group = None;
        self.end_step(program, &g.step_id, output, end)
    }

    fn apply_marker(
        &mut self,
        program: &Program,
        name: &str,
        details: &Map<String, Value>,
    ) -> Result<(), String> {
        let step = details.get("step").and_then(Value::as_str).unwrap_or("");
        match name {
            marker::STEP_SKIPPED => self.end_step(
                program,
                step,
                json!({"status": "skipped"}),
                StepEnd::Skipped,
            ),
            marker::GATE_RESOLVED => {
                let Some(super::program::StepKind::Gate(gate)) =
                    program.step(step).map(|s| &s.kind)
                else {
                    return Err(format!("GateResolved for {step:?}, which is not a gate"));
                };
                let outcome = details.get("outcome").and_then(Value::as_str);
                let signal_event = details.get("signalEventId").and_then(Value::as_u64);
                let payload = match signal_event {
                    Some(eid) => {
                        let pos = self
                            .signals
                            .iter()
                            .position(|s| s.event_id == eid)
                            .ok_or_else(|| format!("no buffered signal {eid}"))?;
                        self.signals.remove(pos).payload
                    }
                    None => Value::Null,
                };
                let via = if signal_event.is_some() {
                    "signal"
                } else {
                    "timeout"
                };
                let (status, end) = match outcome {
                    None => (
                        "failed",
                        StepEnd::Failed(
                            Failure::new("GateTimeout", format!("gate {step} timed out"))
                                .non_retryable(),
                        ),
                    ),
                    Some(o) if gate.fail_on.iter().any(|f| f == o) => (
                        "failed",
                        StepEnd::Failed(
                            Failure::new("GateRejected", format!("gate {step} resolved by {o}"))
                                .non_retryable(),
                        ),
                    ),
                    Some(_) => ("completed", StepEnd::Succeeded),
                };
                let output =
                    json!({"status": status, "signal": outcome, "payload": payload, "via": via});
                self.end_step(program, step, output, end)
            }
            marker::COMPENSATION => {
                let reason = match &self.phase {
                    Phase::Unwinding(r) => r.clone(),
                    _ => return Err("Compensation marker outside unwinding".into()),
                };
                self.phase = Phase::Compensating {
                    reason,
                    queue: self.compensation_queue(),
                    next: 0,
                };
                Ok(())
            }
            other => Err(format!("unknown marker {other:?}")),
        }
    }

    /// Compensation order: steps in reverse completion order; each step's commands in the
    /// order written.
    pub fn compensation_queue(&self) -> Vec<CompensationItem> {
        self.compensations
            .iter()
            .rev()
            .flat_map(|(step, cmds)| {
                cmds.iter()
                    .enumerate()
                    .map(move |(index, argv)| CompensationItem {
                        step_id: step.clone(),
                        index,
                        argv: argv.clone(),
                    })
            })
            .collect()
    }
}

fn pa_attempt(pa: &PendingActivity) -> u32 {
    pa.attempt
}

fn reset_attempt(pa: &mut PendingActivity) {
    pa.attempt = 1;
    pa.attempt_scheduled_at = pa.first_scheduled_at;
    pa.phase = AttemptPhase::Dispatched;
    pa.lease_epoch = 0;
    pa.last_failure = None;
    pa.heartbeat_details = None;
}

fn activity_output_json(status: &str, out: &ActivityOutput, attempt: u32) -> Value {
    json!({
        "status": status,
        "exit_code": out.exit_code,
        "stdout": out.stdout,
        "stderr": out.stderr,
        "result": out.result,
        "attempt": attempt,
    })
}
