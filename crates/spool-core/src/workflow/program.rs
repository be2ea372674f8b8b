//! The compiled step graph a run executes. Built by [`crate::template::compile`]; the
//! state machine reads it and never changes it.

use super::duration::opt_secs;
use super::retry::RetryPolicy;
use crate::template::expr::Expr;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A validated workflow template.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The workflow type name.
    pub name: String,
    pub description: String,
    /// SHA-256 (hex) of the template bytes: what a run pins.
    pub content_hash: String,
    pub steps: Vec<Step>,
    /// What the daemon does to the run's issue when the run completes.
    pub on_complete: OnComplete,
}

/// `[on_complete]` of a template: close the issue (the default), or give it back (open,
/// unassigned) with labels changed, for work that does not finish an issue (triage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnComplete {
    pub close: bool,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
}

impl Default for OnComplete {
    fn default() -> Self {
        OnComplete {
            close: true,
            add_labels: Vec::new(),
            remove_labels: Vec::new(),
        }
    }
}

/// Where a step sits: a top-level step, or a branch of a top-level `parallel` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepLoc {
    Top(usize),
    Branch(usize, usize),
}

impl Program {
    /// Every capability some step requires, parallel branches included.
    pub fn requirements(&self) -> std::collections::BTreeSet<String> {
        fn walk(steps: &[Step], out: &mut std::collections::BTreeSet<String>) {
            for step in steps {
                out.extend(step.requires.iter().cloned());
                if let StepKind::Parallel(p) = &step.kind {
                    walk(&p.branches, out);
                }
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk(&self.steps, &mut out);
        out
    }

    /// Finds a step (top level or parallel branch) by id.
    pub fn locate(&self, id: &str) -> Option<StepLoc> {
        for (i, step) in self.steps.iter().enumerate() {
            if step.id == id {
                return Some(StepLoc::Top(i));
            }
            if let StepKind::Parallel(p) = &step.kind {
                if let Some(j) = p.branches.iter().position(|b| b.id == id) {
                    return Some(StepLoc::Branch(i, j));
                }
            }
        }
        None
    }

    pub fn step_at(&self, loc: StepLoc) -> &Step {
        match loc {
            StepLoc::Top(i) => &self.steps[i],
            StepLoc::Branch(i, j) => match &self.steps[i].kind {
                StepKind::Parallel(p) => &p.branches[j],
                _ => &self.steps[i],
            },
        }
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.locate(id).map(|loc| self.step_at(loc))
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    /// 1-based line of the step in its template, for messages.
    pub line: usize,
    /// Skip the step when this evaluates false.
    pub when: Option<Expr>,
    pub kind: StepKind,
    pub on_failure: Option<OnFailure>,
    /// Commands (argv) that undo this step, run if the workflow fails or is cancelled
    /// after the step completed.
    pub compensate: Vec<Vec<String>>,
    /// Capabilities a machine must have to run this step (e.g. `gpu`): a daemon without
    /// them does not claim issues for the template.
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Activity(ActivityDef),
    Sleep(SleepDef),
    Gate(GateDef),
    Child(ChildDef),
    Parallel(ParallelDef),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Activity(_) => "activity",
            StepKind::Sleep(_) => "sleep",
            StepKind::Gate(_) => "gate",
            StepKind::Child(_) => "child",
            StepKind::Parallel(_) => "parallel",
        }
    }
}

/// What runs an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityType {
    /// A process started from an argv, never through a shell.
    Command,
    /// Does nothing and succeeds: measures the engine, not process spawning.
    Noop,
}

impl ActivityType {
    pub fn name(self) -> &'static str {
        match self {
            ActivityType::Command => "command",
            ActivityType::Noop => "noop",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDef {
    pub activity_type: ActivityType,
    /// Each element may hold `{path}` placeholders; each stays one argument.
    pub argv: Vec<String>,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    pub retry: RetryPolicy,
    pub timeouts: ActivityTimeouts,
    /// Bytes of stdout/stderr tail kept in the step output.
    pub capture_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityTimeouts {
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub schedule_to_start: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub start_to_close: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub schedule_to_close: Option<Duration>,
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SleepDef {
    For(Duration),
    Until(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateDef {
    /// Signal names that resolve the gate.
    pub signals: Vec<String>,
    /// Those of `signals` that resolve it as a failure (e.g. `reject`).
    pub fail_on: Vec<String>,
    pub timeout: Option<Duration>,
    /// Outcome when the timeout elapses; without one the timeout fails the step.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChildDef {
    /// Template name of the child workflow.
    pub template: String,
    pub input: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelMode {
    /// Wait for every branch; one failure cancels the rest and fails the group.
    All,
    /// The first branch to succeed wins and cancels the rest.
    FirstSuccess,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParallelDef {
    pub mode: ParallelMode,
    pub branches: Vec<Step>,
}

/// A fix loop: on failure, continue at `goto` at most `max_loops` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnFailure {
    pub goto: String,
    /// Index of `goto` among the top-level steps.
    pub goto_index: usize,
    pub max_loops: u32,
}
