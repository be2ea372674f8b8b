//! History events: the durable, versioned record of a run.
//!
//! Names and fields follow Temporal's history (`temporal/api/history/v1/message.proto`),
//! camelCased as in its JSON, so an exported history reads like `temporal workflow show
//! -o json`. This schema is a compatibility boundary: fields are only ever added (with
//! defaults), old events are never rewritten, and [`EVENT_SCHEMA_VERSION`] is bumped when
//! the meaning of stored data changes.

use super::duration::{opt_secs, secs};
use super::retry::RetryPolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Version written into every new event.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

fn schema_v1() -> u16 {
    1
}

/// One history event. `event_id` is dense per run, starting at 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default = "schema_v1")]
    pub version: u16,
    pub event_id: u64,
    pub event_time: DateTime<Utc>,
    pub attributes: EventAttributes,
}

/// The workflow that started a child run, and the event that initiated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    pub workflow_id: String,
    pub run_id: String,
    pub initiated_event_id: u64,
}

/// A workflow execution's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecution {
    pub workflow_id: String,
    pub run_id: String,
}

/// Which activity timeout elapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimeoutType {
    #[serde(rename = "TIMEOUT_TYPE_START_TO_CLOSE")]
    StartToClose,
    #[serde(rename = "TIMEOUT_TYPE_SCHEDULE_TO_START")]
    ScheduleToStart,
    #[serde(rename = "TIMEOUT_TYPE_SCHEDULE_TO_CLOSE")]
    ScheduleToClose,
    #[serde(rename = "TIMEOUT_TYPE_HEARTBEAT")]
    Heartbeat,
}

impl TimeoutType {
    /// Short stable name, used in timer keys.
    pub fn short(self) -> &'static str {
        match self {
            TimeoutType::StartToClose => "start_to_close",
            TimeoutType::ScheduleToStart => "schedule_to_start",
            TimeoutType::ScheduleToClose => "schedule_to_close",
            TimeoutType::Heartbeat => "heartbeat",
        }
    }

    pub fn from_short(s: &str) -> Option<TimeoutType> {
        [
            TimeoutType::StartToClose,
            TimeoutType::ScheduleToStart,
            TimeoutType::ScheduleToClose,
            TimeoutType::Heartbeat,
        ]
        .into_iter()
        .find(|t| t.short() == s)
    }
}

/// Why retrying stopped (Temporal's RetryState).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetryState {
    #[serde(rename = "RETRY_STATE_IN_PROGRESS")]
    InProgress,
    #[serde(rename = "RETRY_STATE_NON_RETRYABLE_FAILURE")]
    NonRetryableFailure,
    #[serde(rename = "RETRY_STATE_TIMEOUT")]
    Timeout,
    #[serde(rename = "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED")]
    MaximumAttemptsReached,
    #[serde(rename = "RETRY_STATE_RETRY_POLICY_NOT_SET")]
    RetryPolicyNotSet,
    #[serde(rename = "RETRY_STATE_CANCEL_REQUESTED")]
    CancelRequested,
}

/// What an activity attempt produced: exit code, output tails, and the JSON result file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// A failure, shaped like Temporal's (`message`, `type` as in ApplicationFailureInfo,
/// `nonRetryable`, a timeout type for timeouts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    #[serde(default)]
    pub non_retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_type: Option<TimeoutType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActivityOutput>,
}

impl Failure {
    pub fn new(error_type: &str, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            error_type: error_type.to_string(),
            non_retryable: false,
            timeout_type: None,
            details: None,
        }
    }

    pub fn non_retryable(mut self) -> Failure {
        self.non_retryable = true;
        self
    }

    /// A timeout failure; its type string is `"Timeout<Kind>"` so templates can list it in
    /// `non_retryable`.
    pub fn timeout(kind: TimeoutType) -> Failure {
        let name = match kind {
            TimeoutType::StartToClose => "TimeoutStartToClose",
            TimeoutType::ScheduleToStart => "TimeoutScheduleToStart",
            TimeoutType::ScheduleToClose => "TimeoutScheduleToClose",
            TimeoutType::Heartbeat => "TimeoutHeartbeat",
        };
        Failure {
            timeout_type: Some(kind),
            ..Failure::new(name, format!("activity {} timeout", kind.short()))
        }
    }
}

/// The resolved command an activity runs: placeholders already substituted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityInput {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Bytes of stdout/stderr tail to keep.
    pub capture_bytes: u64,
}

/// Per-kind attributes, one variant per Temporal event type that spool writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum EventAttributes {
    WorkflowExecutionStarted {
        workflow_type: String,
        workflow_id: String,
        first_execution_run_id: String,
        input: Value,
        /// SHA-256 of the template bytes this run is pinned to.
        template_hash: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_workflow_execution: Option<ParentRef>,
        attempt: u32,
    },
    WorkflowExecutionCompleted {
        result: Value,
    },
    WorkflowExecutionFailed {
        failure: Failure,
        retry_state: RetryState,
    },
    WorkflowExecutionTimedOut {
        retry_state: RetryState,
    },
    ActivityTaskScheduled {
        activity_id: String,
        activity_type: String,
        input: ActivityInput,
        #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
        schedule_to_close_timeout: Option<Duration>,
        #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
        schedule_to_start_timeout: Option<Duration>,
        #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
        start_to_close_timeout: Option<Duration>,
        #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
        heartbeat_timeout: Option<Duration>,
        retry_policy: RetryPolicy,
    },
    /// Written only when an attempt ends, for the final attempt (as Temporal does).
    ActivityTaskStarted {
        scheduled_event_id: u64,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_failure: Option<Failure>,
    },
    ActivityTaskCompleted {
        scheduled_event_id: u64,
        started_event_id: u64,
        result: ActivityOutput,
    },
    ActivityTaskFailed {
        scheduled_event_id: u64,
        started_event_id: u64,
        failure: Failure,
        retry_state: RetryState,
    },
    ActivityTaskTimedOut {
        scheduled_event_id: u64,
        started_event_id: u64,
        failure: Failure,
        retry_state: RetryState,
    },
    ActivityTaskCancelRequested {
        scheduled_event_id: u64,
    },
    ActivityTaskCanceled {
        scheduled_event_id: u64,
        /// 0 when no attempt had started.
        started_event_id: u64,
        latest_cancel_requested_event_id: u64,
    },
    TimerStarted {
        timer_id: String,
        #[serde(with = "secs")]
        start_to_fire_timeout: Duration,
        /// The exact fire time (an extension: `sleep until` needs more than a duration).
        fire_time: DateTime<Utc>,
    },
    TimerFired {
        timer_id: String,
        started_event_id: u64,
    },
    TimerCanceled {
        timer_id: String,
        started_event_id: u64,
    },
    WorkflowExecutionCancelRequested {
        cause: String,
    },
    WorkflowExecutionCanceled {
        details: Value,
    },
    MarkerRecorded {
        marker_name: String,
        details: Map<String, Value>,
    },
    WorkflowExecutionSignaled {
        signal_name: String,
        input: Value,
        request_id: String,
    },
    WorkflowExecutionTerminated {
        reason: String,
    },
    WorkflowExecutionContinuedAsNew {
        new_execution_run_id: String,
        workflow_type: String,
        input: Value,
    },
    RequestCancelExternalWorkflowExecutionInitiated {
        workflow_execution: WorkflowExecution,
        child_workflow_only: bool,
        reason: String,
    },
    StartChildWorkflowExecutionInitiated {
        workflow_id: String,
        workflow_type: String,
        input: Value,
        /// The step that started the child.
        control: String,
    },
    /// The child could not be started (no such template, or its workflow id is taken).
    StartChildWorkflowExecutionFailed {
        initiated_event_id: u64,
        workflow_id: String,
        workflow_type: String,
        cause: String,
    },
    ChildWorkflowExecutionStarted {
        initiated_event_id: u64,
        workflow_execution: WorkflowExecution,
        workflow_type: String,
    },
    ChildWorkflowExecutionCompleted {
        initiated_event_id: u64,
        started_event_id: u64,
        workflow_execution: WorkflowExecution,
        result: Value,
    },
    ChildWorkflowExecutionFailed {
        initiated_event_id: u64,
        started_event_id: u64,
        workflow_execution: WorkflowExecution,
        failure: Failure,
    },
    ChildWorkflowExecutionCanceled {
        initiated_event_id: u64,
        started_event_id: u64,
        workflow_execution: WorkflowExecution,
    },
    ChildWorkflowExecutionTimedOut {
        initiated_event_id: u64,
        started_event_id: u64,
        workflow_execution: WorkflowExecution,
    },
    ChildWorkflowExecutionTerminated {
        initiated_event_id: u64,
        started_event_id: u64,
        workflow_execution: WorkflowExecution,
    },
}

impl EventAttributes {
    /// The variant name, e.g. `"ActivityTaskScheduled"`.
    pub fn name(&self) -> &'static str {
        self.meta().0
    }

    /// Temporal's numeric event type (`EventType` proto tag).
    pub fn type_code(&self) -> u16 {
        self.meta().1
    }

    /// True for events that close a run.
    pub fn is_close(&self) -> bool {
        matches!(
            self,
            EventAttributes::WorkflowExecutionCompleted { .. }
                | EventAttributes::WorkflowExecutionFailed { .. }
                | EventAttributes::WorkflowExecutionTimedOut { .. }
                | EventAttributes::WorkflowExecutionCanceled { .. }
                | EventAttributes::WorkflowExecutionTerminated { .. }
                | EventAttributes::WorkflowExecutionContinuedAsNew { .. }
        )
    }

    fn meta(&self) -> (&'static str, u16) {
        use EventAttributes as E;
        match self {
            E::WorkflowExecutionStarted { .. } => ("WorkflowExecutionStarted", 1),
            E::WorkflowExecutionCompleted { .. } => ("WorkflowExecutionCompleted", 2),
            E::WorkflowExecutionFailed { .. } => ("WorkflowExecutionFailed", 3),
            E::WorkflowExecutionTimedOut { .. } => ("WorkflowExecutionTimedOut", 4),
            E::ActivityTaskScheduled { .. } => ("ActivityTaskScheduled", 10),
            E::ActivityTaskStarted { .. } => ("ActivityTaskStarted", 11),
            E::ActivityTaskCompleted { .. } => ("ActivityTaskCompleted", 12),
            E::ActivityTaskFailed { .. } => ("ActivityTaskFailed", 13),
            E::ActivityTaskTimedOut { .. } => ("ActivityTaskTimedOut", 14),
            E::ActivityTaskCancelRequested { .. } => ("ActivityTaskCancelRequested", 15),
            E::ActivityTaskCanceled { .. } => ("ActivityTaskCanceled", 16),
            E::TimerStarted { .. } => ("TimerStarted", 17),
            E::TimerFired { .. } => ("TimerFired", 18),
            E::TimerCanceled { .. } => ("TimerCanceled", 19),
            E::WorkflowExecutionCancelRequested { .. } => ("WorkflowExecutionCancelRequested", 20),
            E::WorkflowExecutionCanceled { .. } => ("WorkflowExecutionCanceled", 21),
            E::RequestCancelExternalWorkflowExecutionInitiated { .. } => {
                ("RequestCancelExternalWorkflowExecutionInitiated", 22)
            }
            E::MarkerRecorded { .. } => ("MarkerRecorded", 25),
            E::WorkflowExecutionSignaled { .. } => ("WorkflowExecutionSignaled", 26),
            E::WorkflowExecutionTerminated { .. } => ("WorkflowExecutionTerminated", 27),
            E::WorkflowExecutionContinuedAsNew { .. } => ("WorkflowExecutionContinuedAsNew", 28),
            E::StartChildWorkflowExecutionInitiated { .. } => {
                ("StartChildWorkflowExecutionInitiated", 29)
            }
            E::StartChildWorkflowExecutionFailed { .. } => {
                ("StartChildWorkflowExecutionFailed", 30)
            }
            E::ChildWorkflowExecutionStarted { .. } => ("ChildWorkflowExecutionStarted", 31),
            E::ChildWorkflowExecutionCompleted { .. } => ("ChildWorkflowExecutionCompleted", 32),
            E::ChildWorkflowExecutionFailed { .. } => ("ChildWorkflowExecutionFailed", 33),
            E::ChildWorkflowExecutionCanceled { .. } => ("ChildWorkflowExecutionCanceled", 34),
            E::ChildWorkflowExecutionTimedOut { .. } => ("ChildWorkflowExecutionTimedOut", 35),
            E::ChildWorkflowExecutionTerminated { .. } => ("ChildWorkflowExecutionTerminated", 36),
        }
    }
}

impl Event {
    /// Temporal's JSON shape: `{"eventId":"7","eventTime":…,"eventType":
    /// "EVENT_TYPE_TIMER_FIRED","timerFiredEventAttributes":{…}}`.
    pub fn to_temporal_json(&self) -> Value {
        let name = self.attributes.name();
        let attrs = match serde_json::to_value(&self.attributes) {
            Ok(Value::Object(mut outer)) => outer.remove(name).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let mut first = name.chars();
        let lower = match first.next() {
            Some(c) => c.to_ascii_lowercase().to_string() + first.as_str(),
            None => String::new(),
        };
        let mut out = Map::new();
        out.insert("eventId".into(), Value::String(self.event_id.to_string()));
        out.insert(
            "eventTime".into(),
            Value::String(
                self.event_time
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ),
        );
        out.insert(
            "eventType".into(),
            Value::String(format!("EVENT_TYPE_{}", screaming_snake(name))),
        );
        out.insert(format!("{lower}EventAttributes"), attrs);
        Value::Object(out)
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_json_shape() {
        let e = Event {
            version: EVENT_SCHEMA_VERSION,
            event_id: 7,
            event_time: DateTime::from_timestamp(0, 0).expect("epoch"),
            attributes: EventAttributes::TimerFired {
                timer_id: "wait".into(),
                started_event_id: 5,
            },
        };
        let j = e.to_temporal_json();
        assert_eq!(j["eventType"], "EVENT_TYPE_TIMER_FIRED");
        assert_eq!(j["eventId"], "7");
        assert_eq!(j["timerFiredEventAttributes"]["startedEventId"], 5);
        assert_eq!(j["timerFiredEventAttributes"]["timerId"], "wait");
        assert_eq!(e.attributes.type_code(), 18);
    }

    #[test]
    fn events_round_trip_through_json_and_old_events_default_version() {
        let e = Event {
            version: EVENT_SCHEMA_VERSION,
            event_id: 1,
            event_time: DateTime::from_timestamp(1_700_000_000, 5).expect("time"),
            attributes: EventAttributes::WorkflowExecutionSignaled {
                signal_name: "approve".into(),
                input: serde_json::json!({"by": "ann"}),
                request_id: "r1".into(),
            },
        };
        let text = serde_json::to_string(&e).expect("serialize");
        assert_eq!(serde_json::from_str::<Event>(&text).expect("parse"), e);
        let without_version = text.replace("\"version\":1,", "");
        assert_ne!(without_version, text);
        assert_eq!(
            serde_json::from_str::<Event>(&without_version).expect("parse"),
            e
        );
    }
}
