//! Behaviour of the pure state machine on a fake clock.

use super::decide::{ActivityTask, ChildOutcome, Effect, Input, TimerKey, Verdict};
use super::event::{ActivityOutput, Event, EventAttributes, Failure, ParentRef, RetryState};
use super::state::{fold, RunState, RunStatus};
use super::{decide, Program};
use crate::template::compile;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

struct Sim {
    program: Program,
    state: RunState,
    history: Vec<Event>,
    now: DateTime<Utc>,
    /// Armed timer rows, as a store would keep them.
    timers: BTreeMap<TimerKey, DateTime<Utc>>,
    /// Attempts handed out and not yet reported: (task, epoch).
    running: Vec<ActivityTask>,
    effects: Vec<Effect>,
    epoch: u64,
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("time")
}

impl Sim {
    fn new(src: &str) -> Sim {
        let program = compile("test.toml", src).unwrap_or_else(|e| panic!("{e}"));
        Sim {
            program,
            state: RunState::default(),
            history: Vec::new(),
            now: t0(),
            timers: BTreeMap::new(),
            running: Vec::new(),
            effects: Vec::new(),
            epoch: 1,
        }
    }

    fn started(src: &str, input: Value) -> Sim {
        let mut sim = Sim::new(src);
        let v = sim.send(Input::Start {
            workflow_id: "wf".into(),
            run_id: "run1".into(),
            input,
            parent: None,
        });
        assert_eq!(v, Verdict::Applied);
        sim
    }

    /// Applies an input like a store would, and checks replay after every transition.
    fn send(&mut self, input: Input) -> Verdict {
        let d = decide(&self.state, &self.program, input, self.now).expect("decide");
        if d.verdict != Verdict::Applied {
            assert!(d.events.is_empty() && d.effects.is_empty(), "{d:?}");
            assert_eq!(d.state, self.state);
            return d.verdict;
        }
        self.history.extend(d.events.iter().cloned());
        self.state = d.state;
        for e in &d.effects {
            match e {
                Effect::StartTimer { key, fire_at } => {
                    self.timers.insert(key.clone(), *fire_at);
                }
                Effect::CancelTimer { key } => {
                    self.timers.remove(key);
                }
                Effect::DispatchActivity(task) => self.running.push(task.clone()),
                Effect::CancelActivity { .. } => {}
                _ => {}
            }
        }
        if self.state.status.is_open() {
            assert!(self.history.iter().all(|e| !e.attributes.is_close()));
        } else {
            self.timers.clear();
        }
        self.effects = d.effects;
        check_history(&self.history);
        let replayed = fold(&self.program, &self.history).expect("fold");
        assert_eq!(
            replayed,
            self.state.history_view(),
            "fold differs from live state"
        );
        Verdict::Applied
    }

    fn task(&self, activity_id: &str) -> ActivityTask {
        self.running
            .iter()
            .rev()
            .find(|t| t.activity_id == activity_id)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no dispatched task {activity_id}; running {:?}",
                    self.running
                )
            })
    }

    fn take(&mut self, activity_id: &str) -> ActivityTask {
        let t = self.task(activity_id);
        self.running.retain(|r| r != &t);
        t
    }

    fn start_task(&mut self, t: &ActivityTask) {
        let v = self.send(Input::ActivityStarted {
            scheduled_event_id: t.scheduled_event_id,
            attempt: t.attempt,
            epoch: self.epoch,
        });
        assert_eq!(v, Verdict::Applied);
    }

    fn succeed(&mut self, activity_id: &str, output: ActivityOutput) {
        let t = self.take(activity_id);
        self.start_task(&t);
        let v = self.send(Input::ActivityCompleted {
            scheduled_event_id: t.scheduled_event_id,
            attempt: t.attempt,
            epoch: self.epoch,
            output,
        });
        assert_eq!(v, Verdict::Applied);
    }

    fn fail(&mut self, activity_id: &str, failure: Failure) {
        let t = self.take(activity_id);
        self.start_task(&t);
        let v = self.send(Input::ActivityFailed {
            scheduled_event_id: t.scheduled_event_id,
            attempt: t.attempt,
            epoch: self.epoch,
            failure,
        });
        assert_eq!(v, Verdict::Applied);
    }

    /// Moves the clock to the earliest armed timer and fires it.
    fn fire_next(&mut self) -> TimerKey {
        let (key, at) = self
            .timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(k, at)| (k.clone(), *at))
            .expect("a timer is armed");
        self.now = self.now.max(at);
        self.timers.remove(&key);
        assert_eq!(
            self.send(Input::TimerFired { key: key.clone() }),
            Verdict::Applied
        );
        key
    }

    fn names(&self) -> Vec<&'static str> {
        self.history.iter().map(|e| e.attributes.name()).collect()
    }

    fn count(&self, name: &str) -> usize {
        self.names().iter().filter(|n| **n == name).count()
    }

    fn scheduled(&self, activity_id: &str) -> usize {
        self.history
            .iter()
            .filter(|e| matches!(&e.attributes, EventAttributes::ActivityTaskScheduled { activity_id: a, .. } if a == activity_id))
            .count()
    }
}

/// Dense ids from 1; at most one close event, and it is last.
fn check_history(h: &[Event]) {
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.event_id, i as u64 + 1, "event ids must be dense");
    }
    let closes: Vec<usize> = h
        .iter()
        .enumerate()
        .filter(|(_, e)| e.attributes.is_close())
        .map(|(i, _)| i)
        .collect();
    assert!(closes.len() <= 1, "more than one close event");
    if let Some(i) = closes.first() {
        assert_eq!(*i, h.len() - 1, "close event is not last");
    }
}

fn ok(code: i32) -> ActivityOutput {
    ActivityOutput {
        exit_code: Some(code),
        ..Default::default()
    }
}

fn exit_failure(code: i32) -> Failure {
    Failure {
        details: Some(ActivityOutput {
            exit_code: Some(code),
            stderr: "tests failed".into(),
            ..Default::default()
        }),
        ..Failure::new("ExitCode", format!("exit code {code}"))
    }
}

const TWO_STEPS: &str = r#"
[[step]]
id = "build"
kind = "activity"
command = ["make", "{issue.id}"]
[[step]]
id = "test"
kind = "activity"
command = ["make", "test"]
"#;

#[test]
fn sequential_steps_complete_the_run() {
    let mut sim = Sim::started(TWO_STEPS, json!({"issue": {"id": "bd-7"}}));
    assert_eq!(sim.task("build").input.argv, ["make", "bd-7"]);
    sim.succeed("build", ok(0));
    sim.succeed("test", ok(0));
    assert_eq!(sim.state.status, RunStatus::Completed);
    assert_eq!(
        sim.names(),
        [
            "WorkflowExecutionStarted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
            "WorkflowExecutionCompleted"
        ]
    );
    // A closed run accepts nothing more.
    let v = sim.send(Input::Signal {
        name: "x".into(),
        payload: Value::Null,
        request_id: "r".into(),
    });
    assert!(matches!(v, Verdict::Rejected(_)));
}

#[test]
fn second_start_is_a_duplicate() {
    let mut sim = Sim::started(TWO_STEPS, json!({"issue": {"id": "x"}}));
    let v = sim.send(Input::Start {
        workflow_id: "wf".into(),
        run_id: "run2".into(),
        input: Value::Null,
        parent: None,
    });
    assert_eq!(v, Verdict::Duplicate);
}

#[test]
fn retries_follow_the_policy_and_only_the_final_attempt_is_history() {
    let src = r#"
[[step]]
id = "flaky"
kind = "activity"
command = ["x"]
retry = { initial_interval = "1s", backoff_coefficient = 2.0, max_interval = "3s", max_attempts = 4 }
"#;
    let mut sim = Sim::started(src, Value::Null);
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        assert_eq!(sim.task("flaky").attempt, attempt);
        let failed_at = sim.now;
        let before = sim.history.len();
        sim.fail("flaky", exit_failure(1));
        assert_eq!(
            sim.history.len(),
            before,
            "a retried attempt adds no history"
        );
        let (key, at) = sim
            .timers
            .iter()
            .next()
            .map(|(k, a)| (k.clone(), *a))
            .expect("retry timer");
        // Firing before the delay is rejected.
        sim.now = at - Duration::milliseconds(1);
        assert!(matches!(
            sim.send(Input::TimerFired { key }),
            Verdict::Rejected(_)
        ));
        delays.push((at - failed_at).num_milliseconds());
        sim.fire_next();
    }
    assert_eq!(delays, [1000, 2000, 3000]);
    sim.fail("flaky", exit_failure(1));
    assert_eq!(sim.state.status, RunStatus::Failed);
    let started = sim
        .history
        .iter()
        .find_map(|e| match &e.attributes {
            EventAttributes::ActivityTaskStarted {
                attempt,
                last_failure,
                ..
            } => Some((*attempt, last_failure.clone())),
            _ => None,
        })
        .expect("started event");
    assert_eq!(started.0, 4);
    assert!(
        started.1.is_some(),
        "the last failure of the previous attempt is kept"
    );
    assert!(sim.history.iter().any(|e| matches!(
        &e.attributes,
        EventAttributes::ActivityTaskFailed {
            retry_state: RetryState::MaximumAttemptsReached,
            ..
        }
    )));
}

#[test]
fn non_retryable_types_fail_at_once() {
    let src = r#"
[[step]]
id = "a"
kind = "activity"
command = ["x"]
retry = { max_attempts = 0, non_retryable = ["ExitCode"] }
"#;
    let mut sim = Sim::started(src, Value::Null);
    sim.fail("a", exit_failure(2));
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(sim.state.outputs["a"]["exit_code"], 2);
    assert_eq!(sim.state.outputs["a"]["stderr"], "tests failed");
}

#[test]
fn start_to_close_and_heartbeat_timeouts_fire_on_time() {
    let src = r#"
[[step]]
id = "a"
kind = "activity"
command = ["x"]
timeouts = { start_to_close = "10s", heartbeat = "5s" }
retry = { max_attempts = 2, initial_interval = "1s" }
"#;
    let mut sim = Sim::started(src, Value::Null);
    let t = sim.take("a");
    sim.start_task(&t);
    let hb_key = TimerKey::ActivityTimeout {
        scheduled_event_id: t.scheduled_event_id,
        attempt: 1,
        timeout_type: super::event::TimeoutType::Heartbeat,
    };
    assert_eq!(sim.timers[&hb_key], t0() + Duration::seconds(5));
    sim.now = t0() + Duration::seconds(3);
    sim.send(Input::ActivityHeartbeat {
        scheduled_event_id: t.scheduled_event_id,
        attempt: 1,
        epoch: 1,
        details: json!({"offset": 3}),
    });
    assert_eq!(
        sim.timers[&hb_key],
        t0() + Duration::seconds(8),
        "a heartbeat re-arms the timer"
    );
    // The old row firing at +5 s is not due any more.
    sim.now = t0() + Duration::seconds(5);
    assert!(matches!(
        sim.send(Input::TimerFired {
            key: hb_key.clone()
        }),
        Verdict::Rejected(_)
    ));
    sim.now = t0() + Duration::seconds(8);
    assert_eq!(
        sim.send(Input::TimerFired { key: hb_key }),
        Verdict::Applied
    );
    assert!(sim.effects.iter().any(|e| matches!(
        e,
        Effect::CancelActivity {
            kill: true,
            attempt: 1,
            ..
        }
    )));
    // Attempt 2 resumes from the recorded heartbeat details.
    sim.fire_next();
    let t2 = sim.take("a");
    assert_eq!(t2.attempt, 2);
    assert_eq!(t2.heartbeat_details, Some(json!({"offset": 3})));
    sim.start_task(&t2);
    let stc = TimerKey::ActivityTimeout {
        scheduled_event_id: t2.scheduled_event_id,
        attempt: 2,
        timeout_type: super::event::TimeoutType::StartToClose,
    };
    assert_eq!(sim.timers[&stc], sim.now + Duration::seconds(10));
    sim.now += Duration::seconds(4);
    sim.send(Input::ActivityHeartbeat {
        scheduled_event_id: t2.scheduled_event_id,
        attempt: 2,
        epoch: 1,
        details: Value::Null,
    });
    sim.now += Duration::seconds(4);
    sim.send(Input::ActivityHeartbeat {
        scheduled_event_id: t2.scheduled_event_id,
        attempt: 2,
        epoch: 1,
        details: Value::Null,
    });
    sim.now += Duration::seconds(2);
    sim.timers.remove(&stc);
    assert_eq!(sim.send(Input::TimerFired { key: stc }), Verdict::Applied);
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(sim.count("ActivityTaskTimedOut"), 1);
}

#[test]
fn schedule_to_start_timeout_is_not_retried() {
    let src = r#"
[[step]]
id = "a"
kind = "activity"
command = ["x"]
timeouts = { schedule_to_start = "30s" }
retry = { max_attempts = 0 }
"#;
    let mut sim = Sim::started(src, Value::Null);
    let key = sim.fire_next();
    assert!(matches!(key, TimerKey::ActivityTimeout { .. }));
    assert_eq!(sim.now, t0() + Duration::seconds(30));
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert!(sim.history.iter().any(|e| matches!(
        &e.attributes,
        EventAttributes::ActivityTaskTimedOut {
            retry_state: RetryState::NonRetryableFailure,
            ..
        }
    )));
}

#[test]
fn schedule_to_close_bounds_all_attempts() {
    let src = r#"
[[step]]
id = "a"
kind = "activity"
command = ["x"]
timeouts = { schedule_to_close = "5s" }
retry = { max_attempts = 0, initial_interval = "2s", backoff_coefficient = 1.0 }
"#;
    let mut sim = Sim::started(src, Value::Null);
    sim.fail("a", exit_failure(1)); // retry at +2 s
    sim.fire_next();
    sim.fail("a", exit_failure(1)); // retry at +4 s
    sim.fire_next();
    sim.take("a");
    let key = sim.fire_next(); // schedule-to-close at +5 s
    assert!(matches!(key, TimerKey::ActivityTimeout { attempt: 0, .. }));
    assert_eq!(sim.now, t0() + Duration::seconds(5));
    assert_eq!(sim.state.status, RunStatus::Failed);
}

const FIX_LOOP: &str = r#"
[[step]]
id = "implement"
kind = "activity"
command = ["agent"]
[[step]]
id = "test"
kind = "activity"
command = ["cargo", "test"]
retry = { max_attempts = 1 }
on_failure = { goto = "implement", max_loops = 3 }
[[step]]
id = "ship"
kind = "activity"
command = ["ship"]
"#;

#[test]
fn fix_loops_stop_at_max_loops() {
    let mut sim = Sim::started(FIX_LOOP, Value::Null);
    for _ in 0..4 {
        sim.succeed("implement", ok(0));
        sim.fail("test", exit_failure(1));
    }
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(sim.scheduled("implement"), 4);
    assert_eq!(sim.scheduled("test"), 4);
    assert_eq!(sim.scheduled("ship"), 0);
    assert_eq!(sim.state.loops["test"], 3);
}

#[test]
fn fix_loop_that_recovers_continues() {
    let mut sim = Sim::started(FIX_LOOP, Value::Null);
    sim.succeed("implement", ok(0));
    sim.fail("test", exit_failure(1));
    sim.succeed("implement", ok(0));
    sim.succeed("test", ok(0));
    sim.succeed("ship", ok(0));
    assert_eq!(sim.state.status, RunStatus::Completed);
}

const SAGA: &str = r#"
[[step]]
id = "a"
kind = "activity"
command = ["a"]
compensate = [["undo-a1"], ["undo-a2"]]
[[step]]
id = "b"
kind = "activity"
command = ["b"]
compensate = [["undo-b", "{issue.id}"]]
[[step]]
id = "c"
kind = "activity"
command = ["c"]
retry = { max_attempts = 1 }
"#;

#[test]
fn compensation_runs_in_reverse_order_after_a_failure() {
    let mut sim = Sim::started(SAGA, json!({"issue": {"id": "bd-9"}}));
    sim.succeed("a", ok(0));
    sim.succeed("b", ok(0));
    sim.fail("c", exit_failure(1));
    let mut ran = Vec::new();
    while sim.state.status == RunStatus::Running {
        assert_eq!(sim.running.len(), 1, "compensations run one at a time");
        let id = sim.running[0].activity_id.clone();
        ran.push(sim.running[0].input.argv.join(" "));
        sim.succeed(&id, ok(0));
    }
    assert_eq!(ran, ["undo-b bd-9", "undo-a1", "undo-a2"]);
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(sim.count("MarkerRecorded"), 1);
    assert_eq!(
        sim.state.failure.as_ref().map(|f| f.error_type.as_str()),
        Some("ExitCode")
    );
}

#[test]
fn cancel_stops_running_work_then_compensates() {
    let mut sim = Sim::started(SAGA, json!({"issue": {"id": "x"}}));
    sim.succeed("a", ok(0));
    let b = sim.take("b");
    sim.start_task(&b);
    assert_eq!(
        sim.send(Input::CancelRequested {
            reason: "user".into()
        }),
        Verdict::Applied
    );
    assert!(sim
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CancelActivity { kill: false, .. })));
    assert_eq!(
        sim.send(Input::CancelRequested {
            reason: "again".into()
        }),
        Verdict::Duplicate
    );
    assert_eq!(
        sim.state.status,
        RunStatus::Running,
        "waits for the attempt to stop"
    );
    sim.send(Input::ActivityCanceled {
        scheduled_event_id: b.scheduled_event_id,
        attempt: 1,
        epoch: 1,
    });
    let comp = sim
        .running
        .last()
        .cloned()
        .expect("compensation dispatched");
    assert_eq!(
        comp.input.argv,
        ["undo-a1"],
        "b never completed, so only a is undone"
    );
    sim.succeed(&comp.activity_id, ok(0));
    let comp2 = sim.running.last().cloned().expect("second compensation");
    sim.succeed(&comp2.activity_id, ok(0));
    assert_eq!(sim.state.status, RunStatus::Canceled);
    assert_eq!(sim.count("ActivityTaskCanceled"), 1);
}

#[test]
fn terminate_is_immediate_and_skips_compensation() {
    let mut sim = Sim::started(SAGA, json!({"issue": {"id": "x"}}));
    sim.succeed("a", ok(0));
    let b = sim.take("b");
    sim.start_task(&b);
    sim.send(Input::Terminate {
        reason: "stop".into(),
    });
    assert_eq!(sim.state.status, RunStatus::Terminated);
    assert!(sim
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CancelActivity { kill: true, .. })));
    assert!(!sim
        .effects
        .iter()
        .any(|e| matches!(e, Effect::DispatchActivity(_))));
    let late = sim.send(Input::ActivityCompleted {
        scheduled_event_id: b.scheduled_event_id,
        attempt: 1,
        epoch: 1,
        output: ok(0),
    });
    assert!(matches!(late, Verdict::Rejected(_)));
}

#[test]
fn stale_attempts_and_epochs_are_rejected() {
    let src = r#"
[[step]]
id = "a"
kind = "activity"
command = ["x"]
retry = { max_attempts = 3 }
"#;
    let mut sim = Sim::started(src, Value::Null);
    let first = sim.take("a");
    sim.start_task(&first);
    sim.send(Input::ActivityFailed {
        scheduled_event_id: first.scheduled_event_id,
        attempt: 1,
        epoch: 1,
        failure: exit_failure(1),
    });
    sim.fire_next();
    let second = sim.take("a");
    sim.start_task(&second);
    // A late result of attempt 1 is rejected.
    let stale = sim.send(Input::ActivityCompleted {
        scheduled_event_id: first.scheduled_event_id,
        attempt: 1,
        epoch: 1,
        output: ok(0),
    });
    assert!(matches!(stale, Verdict::Rejected(_)));
    // A restart (epoch 2) re-dispatches attempt 2; the result of epoch 1 is then stale.
    sim.epoch = 2;
    sim.start_task(&second);
    let old_epoch = sim.send(Input::ActivityCompleted {
        scheduled_event_id: second.scheduled_event_id,
        attempt: 2,
        epoch: 1,
        output: ok(0),
    });
    assert!(matches!(old_epoch, Verdict::Rejected(_)));
    // An older epoch cannot take the lease back.
    let v = sim.send(Input::ActivityStarted {
        scheduled_event_id: second.scheduled_event_id,
        attempt: 2,
        epoch: 1,
    });
    assert!(matches!(v, Verdict::Rejected(_)));
    let fresh = sim.send(Input::ActivityCompleted {
        scheduled_event_id: second.scheduled_event_id,
        attempt: 2,
        epoch: 2,
        output: ok(0),
    });
    assert_eq!(fresh, Verdict::Applied);
    assert_eq!(sim.state.status, RunStatus::Completed);
    assert_eq!(sim.count("ActivityTaskCompleted"), 1);
}

const GATE: &str = r#"
[[step]]
id = "review"
kind = "gate"
signals = ["approve", "reject"]
fail_on = ["reject"]
timeout = "1h"
default = "approve"
[[step]]
id = "merge"
kind = "activity"
command = ["merge"]
when = "steps.review.signal == 'approve'"
"#;

fn signal(sim: &mut Sim, name: &str, request_id: &str) -> Verdict {
    sim.send(Input::Signal {
        name: name.into(),
        payload: json!({"by": "ann"}),
        request_id: request_id.into(),
    })
}

#[test]
fn gate_resolves_on_signal_and_dedups_by_request_id() {
    let mut sim = Sim::started(GATE, Value::Null);
    assert_eq!(sim.count("TimerStarted"), 1);
    assert_eq!(signal(&mut sim, "approve", "r1"), Verdict::Applied);
    assert_eq!(signal(&mut sim, "approve", "r1"), Verdict::Duplicate);
    assert_eq!(sim.count("WorkflowExecutionSignaled"), 1);
    assert_eq!(sim.count("TimerCanceled"), 1);
    assert!(sim.timers.is_empty(), "the gate's timeout row is deleted");
    assert_eq!(sim.state.outputs["review"]["payload"]["by"], "ann");
    sim.succeed("merge", ok(0));
    assert_eq!(sim.state.status, RunStatus::Completed);
}

#[test]
fn gate_reject_fails_the_step() {
    let mut sim = Sim::started(GATE, Value::Null);
    signal(&mut sim, "reject", "r1");
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(
        sim.state.failure.as_ref().map(|f| f.error_type.as_str()),
        Some("GateRejected")
    );
}

#[test]
fn gate_timeout_takes_the_default_outcome_not_earlier() {
    let mut sim = Sim::started(GATE, Value::Null);
    sim.now = t0() + Duration::minutes(59);
    let key = TimerKey::User {
        timer_id: "review:timeout".into(),
    };
    assert!(matches!(
        sim.send(Input::TimerFired { key }),
        Verdict::Rejected(_)
    ));
    sim.fire_next();
    assert_eq!(sim.now, t0() + Duration::hours(1));
    assert_eq!(sim.state.outputs["review"]["signal"], "approve");
    assert_eq!(sim.state.outputs["review"]["via"], "timeout");
    assert_eq!(sim.task("merge").activity_id, "merge");
}

#[test]
fn gate_timeout_without_default_fails() {
    let src = GATE.replace("default = \"approve\"\n", "");
    let mut sim = Sim::started(&src, Value::Null);
    sim.fire_next();
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(
        sim.state.failure.as_ref().map(|f| f.error_type.as_str()),
        Some("GateTimeout")
    );
}

#[test]
fn a_signal_sent_early_is_kept_until_the_gate() {
    let src = format!("[[step]]\nid = \"first\"\nkind = \"activity\"\ncommand = [\"x\"]\n{GATE}");
    let mut sim = Sim::started(&src, Value::Null);
    signal(&mut sim, "approve", "early");
    assert_eq!(sim.state.signals.len(), 1);
    sim.succeed("first", ok(0));
    assert!(sim.state.signals.is_empty());
    assert_eq!(sim.state.outputs["review"]["signal"], "approve");
    assert_eq!(
        sim.count("TimerStarted"),
        0,
        "resolved before its timeout was armed"
    );
}

#[test]
fn when_false_skips_the_step() {
    let mut sim = Sim::started(GATE, Value::Null);
    signal(&mut sim, "other", "r0");
    assert_eq!(
        sim.state.outputs.get("review"),
        None,
        "unrelated signals do not resolve the gate"
    );
    // Resolve with a signal that the gate accepts but that makes `when` false.
    let src = GATE.replace("fail_on = [\"reject\"]\n", "");
    let mut sim = Sim::started(&src, Value::Null);
    signal(&mut sim, "reject", "r1");
    assert_eq!(sim.state.outputs["merge"]["status"], "skipped");
    assert_eq!(sim.state.status, RunStatus::Completed);
    assert_eq!(sim.scheduled("merge"), 0);
}

const PARALLEL: &str = r#"
[[step]]
id = "checks"
kind = "parallel"
mode = "MODE"
[[step.steps]]
id = "lint"
kind = "activity"
command = ["lint"]
retry = { max_attempts = 1 }
[[step.steps]]
id = "unit"
kind = "activity"
command = ["unit"]
retry = { max_attempts = 1 }
[[step.steps]]
id = "nap"
kind = "sleep"
duration = "1h"
[[step]]
id = "after"
kind = "activity"
command = ["after"]
"#;

#[test]
fn parallel_all_waits_for_every_branch() {
    let mut sim = Sim::started(&PARALLEL.replace("MODE", "all"), Value::Null);
    assert_eq!(sim.running.len(), 2);
    sim.succeed("unit", ok(0));
    sim.succeed("lint", ok(0));
    assert!(sim.running.is_empty());
    sim.fire_next();
    assert_eq!(sim.state.outputs["checks"]["status"], "completed");
    sim.succeed("after", ok(0));
    assert_eq!(sim.state.status, RunStatus::Completed);
}

#[test]
fn parallel_all_fails_fast_and_cancels_the_rest() {
    let mut sim = Sim::started(&PARALLEL.replace("MODE", "all"), Value::Null);
    let unit = sim.take("unit");
    sim.start_task(&unit);
    sim.fail("lint", exit_failure(1));
    assert_eq!(sim.count("TimerCanceled"), 1);
    assert!(sim.effects.iter().any(|e| matches!(e, Effect::CancelActivity { scheduled_event_id, .. } if *scheduled_event_id == unit.scheduled_event_id)));
    assert_eq!(sim.state.status, RunStatus::Running);
    sim.send(Input::ActivityCanceled {
        scheduled_event_id: unit.scheduled_event_id,
        attempt: 1,
        epoch: 1,
    });
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(sim.scheduled("after"), 0);
}

#[test]
fn parallel_first_success_cancels_the_others() {
    let mut sim = Sim::started(&PARALLEL.replace("MODE", "first_success"), Value::Null);
    let lint = sim.take("lint");
    sim.start_task(&lint);
    sim.succeed("unit", ok(0));
    assert_eq!(sim.count("ActivityTaskCancelRequested"), 1);
    assert_eq!(sim.count("TimerCanceled"), 1);
    // The cancelled attempt happens to finish anyway: recorded, and the group completes.
    sim.send(Input::ActivityCompleted {
        scheduled_event_id: lint.scheduled_event_id,
        attempt: 1,
        epoch: 1,
        output: ok(0),
    });
    assert_eq!(sim.state.outputs["checks"]["winner"], "unit");
    sim.succeed("after", ok(0));
    assert_eq!(sim.state.status, RunStatus::Completed);
}

#[test]
fn parallel_first_success_fails_when_every_branch_fails() {
    let src = PARALLEL.replace("MODE", "first_success").replace(
        "[[step.steps]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"1h\"\n",
        "",
    );
    let mut sim = Sim::started(&src, Value::Null);
    sim.fail("lint", exit_failure(1));
    assert_eq!(sim.state.status, RunStatus::Running);
    sim.fail("unit", exit_failure(2));
    assert_eq!(sim.state.status, RunStatus::Failed);
}

#[test]
fn sleep_fires_at_its_time_and_never_early() {
    let src = "[[step]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"10m\"\n";
    let mut sim = Sim::started(src, Value::Null);
    let key = TimerKey::User {
        timer_id: "nap".into(),
    };
    assert_eq!(sim.timers[&key], t0() + Duration::minutes(10));
    sim.now = t0() + Duration::minutes(10) - Duration::milliseconds(1);
    assert!(matches!(
        sim.send(Input::TimerFired { key: key.clone() }),
        Verdict::Rejected(_)
    ));
    sim.now = t0() + Duration::minutes(10);
    assert_eq!(
        sim.send(Input::TimerFired { key: key.clone() }),
        Verdict::Applied
    );
    assert_eq!(sim.state.status, RunStatus::Completed);
    assert!(
        matches!(sim.send(Input::TimerFired { key }), Verdict::Rejected(_)),
        "fires once"
    );
}

#[test]
fn missing_placeholder_values_fail_without_retry() {
    let sim = Sim::started(TWO_STEPS, json!({}));
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(
        sim.state.failure.as_ref().map(|f| f.error_type.as_str()),
        Some("PlaceholderError")
    );
    assert!(sim.running.is_empty(), "nothing was dispatched");
}

#[test]
fn child_workflows_start_and_report_back() {
    let src = "[[step]]\nid = \"sub\"\nkind = \"child\"\ntemplate = \"noop\"\ninput = { who = \"{issue.id}\" }\n[[step]]\nid = \"next\"\nkind = \"activity\"\nactivity_type = \"noop\"\n";
    let mut sim = Sim::started(src, json!({"issue": {"id": "bd-3"}}));
    let Some(Effect::StartChildWorkflow {
        parent,
        workflow_id,
        template,
        input,
    }) = sim.effects.first().cloned()
    else {
        panic!("expected a child start, got {:?}", sim.effects);
    };
    assert_eq!(
        (template.as_str(), input["who"].as_str()),
        ("noop", Some("bd-3"))
    );
    assert_eq!(parent.run_id, "run1");
    sim.send(Input::ChildStarted {
        initiated_event_id: parent.initiated_event_id,
        run_id: "c1".into(),
    });
    assert_eq!(
        sim.send(Input::ChildStarted {
            initiated_event_id: parent.initiated_event_id,
            run_id: "c1".into()
        }),
        Verdict::Duplicate
    );
    sim.send(Input::ChildClosed {
        initiated_event_id: parent.initiated_event_id,
        run_id: "c1".into(),
        outcome: ChildOutcome::Completed {
            result: json!({"ok": true}),
        },
    });
    assert!(workflow_id.starts_with("wf/sub/"));
    assert_eq!(sim.state.outputs["sub"]["result"]["ok"], true);
    sim.succeed("next", ActivityOutput::default());
    assert_eq!(sim.state.status, RunStatus::Completed);
}

#[test]
fn a_child_run_notifies_its_parent_when_it_closes() {
    let mut sim = Sim::new("[[step]]\nid = \"a\"\nkind = \"activity\"\nactivity_type = \"noop\"\n");
    let parent = ParentRef {
        workflow_id: "p".into(),
        run_id: "prun".into(),
        initiated_event_id: 5,
    };
    sim.send(Input::Start {
        workflow_id: "p/sub/5".into(),
        run_id: "c1".into(),
        input: Value::Null,
        parent: Some(parent.clone()),
    });
    sim.succeed("a", ActivityOutput::default());
    assert!(sim.effects.iter().any(|e| matches!(e, Effect::NotifyParent { parent: p, outcome: ChildOutcome::Completed { .. }, .. } if *p == parent)));
}

#[test]
fn timer_keys_round_trip() {
    let keys = [
        TimerKey::User {
            timer_id: "review:timeout".into(),
        },
        TimerKey::ActivityRetry {
            scheduled_event_id: 9,
            attempt: 3,
        },
        TimerKey::ActivityTimeout {
            scheduled_event_id: 2,
            attempt: 0,
            timeout_type: super::event::TimeoutType::ScheduleToClose,
        },
    ];
    for k in keys {
        assert_eq!(TimerKey::decode(&k.encode()), Some(k));
    }
    assert_eq!(TimerKey::decode("bogus"), None);
}

const RANDOM: &str = r#"
[[step]]
id = "implement"
kind = "activity"
command = ["agent"]
compensate = [["undo"]]
retry = { max_attempts = 3, initial_interval = "1s" }
timeouts = { start_to_close = "30s" }
[[step]]
id = "checks"
kind = "parallel"
on_failure = { goto = "implement", max_loops = 2 }
[[step.steps]]
id = "lint"
kind = "activity"
command = ["lint"]
retry = { max_attempts = 2 }
[[step.steps]]
id = "unit"
kind = "activity"
command = ["unit"]
retry = { max_attempts = 2 }
[[step]]
id = "review"
kind = "gate"
signals = ["approve", "reject"]
fail_on = ["reject"]
timeout = "1h"
default = "approve"
[[step]]
id = "nap"
kind = "sleep"
duration = "5m"
when = "steps.review.signal == 'approve'"
[[step]]
id = "ship"
kind = "activity"
command = ["ship"]
compensate = [["unship"]]
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random drives of the machine: after every transition the fold of the history equals
    /// the live state, ids stay dense, one close event at most, and every run ends.
    #[test]
    fn replaying_history_reproduces_live_state(choices in proptest::collection::vec(0u8..=255, 1..400)) {
        let mut sim = Sim::started(RANDOM, Value::Null);
        let mut steps = 0;
        let mut req = 0;
        for c in choices.iter().copied().cycle() {
            steps += 1;
            if !sim.state.status.is_open() || steps > 2_000 {
                break;
            }
            sim.now += Duration::milliseconds(i64::from(c) * 37);
            match c % 8 {
                0..=2 if !sim.running.is_empty() => {
                    let t = sim.running.remove(usize::from(c) % sim.running.len());
                    let _ = sim.send(Input::ActivityStarted { scheduled_event_id: t.scheduled_event_id, attempt: t.attempt, epoch: sim.epoch });
                    let input = if c % 3 == 0 {
                        Input::ActivityFailed { scheduled_event_id: t.scheduled_event_id, attempt: t.attempt, epoch: sim.epoch, failure: exit_failure(1) }
                    } else {
                        Input::ActivityCompleted { scheduled_event_id: t.scheduled_event_id, attempt: t.attempt, epoch: sim.epoch, output: ok(0) }
                    };
                    let _ = sim.send(input);
                }
                3 if !sim.timers.is_empty() => { sim.fire_next(); }
                4 => {
                    req += 1;
                    let name = if c % 16 == 4 { "reject" } else { "approve" };
                    let _ = sim.send(Input::Signal { name: name.into(), payload: Value::Null, request_id: format!("r{}", req % 5) });
                }
                5 if c > 250 => { let _ = sim.send(Input::CancelRequested { reason: "random".into() }); }
                6 => {
                    // A restart: every attempt in flight is re-dispatched under a new epoch.
                    sim.epoch += 1;
                    let redo: Vec<ActivityTask> = sim.running.clone();
                    for t in redo {
                        let _ = sim.send(Input::ActivityStarted { scheduled_event_id: t.scheduled_event_id, attempt: t.attempt, epoch: sim.epoch });
                    }
                }
                _ => {
                    // Answer cancellation requests for attempts being cancelled.
                    let cancelling: Vec<(u64, u32)> = sim.state.activities.values()
                        .filter(|a| a.cancel_requested_event_id.is_some())
                        .map(|a| (a.scheduled_event_id, a.attempt)).collect();
                    for (sid, attempt) in cancelling {
                        sim.running.retain(|t| t.scheduled_event_id != sid);
                        let _ = sim.send(Input::ActivityCanceled { scheduled_event_id: sid, attempt, epoch: sim.epoch });
                    }
                    if sim.running.is_empty() && sim.state.activities.is_empty() && !sim.timers.is_empty() {
                        sim.fire_next();
                    }
                }
            }
        }
        // Whatever happened, the live state is what the history says.
        prop_assert_eq!(fold(&sim.program, &sim.history).expect("fold"), sim.state.history_view());
        for (sid, pa) in &sim.state.activities {
            prop_assert!(pa.retry.maximum_attempts == 0 || pa.attempt <= pa.retry.maximum_attempts, "activity {} attempt {}", sid, pa.attempt);
        }
    }
}

#[test]
fn an_attempt_ignoring_cancellation_is_killed_at_its_deadline() {
    let src = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"x\"]\ntimeouts = { start_to_close = \"10s\" }\n";
    let mut sim = Sim::started(src, Value::Null);
    let t = sim.take("a");
    sim.start_task(&t);
    sim.send(Input::CancelRequested {
        reason: "stop".into(),
    });
    assert_eq!(sim.state.status, RunStatus::Running);
    sim.fire_next();
    assert_eq!(sim.now, t0() + Duration::seconds(10));
    assert!(sim
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CancelActivity { kill: true, .. })));
    assert_eq!(sim.state.status, RunStatus::Canceled);
}

#[test]
fn a_child_that_cannot_start_fails_its_step() {
    let src = "[[step]]\nid = \"sub\"\nkind = \"child\"\ntemplate = \"missing\"\n";
    let mut sim = Sim::started(src, Value::Null);
    let initiated = sim
        .state
        .children
        .keys()
        .next()
        .copied()
        .expect("child initiated");
    sim.send(Input::ChildStartFailed {
        initiated_event_id: initiated,
        cause: "no template named \"missing\"".into(),
    });
    assert_eq!(sim.count("StartChildWorkflowExecutionFailed"), 1);
    assert_eq!(sim.count("ChildWorkflowExecutionStarted"), 0);
    assert_eq!(sim.state.status, RunStatus::Failed);
    assert_eq!(
        sim.state.failure.as_ref().map(|f| f.error_type.as_str()),
        Some("ChildStartFailed")
    );
}
