//! Activity kinds: how a step's parameters become a process, and how the evidence of
//! an attempt becomes a verdict.
//!
//! The process status alone is weak evidence: agent CLIs exit 0 after failing and
//! print their real result as JSON on stdout. So a kind judges each attempt with a
//! [`Judge`] that reads the output lines as they stream and decides at the end.

use super::observer::{AttemptObserver, Tee};
use super::outcome::{ActivityOutcome, ActivityStatus, TimeoutKind};
use super::run::run_attempt;
use super::spec::{ActivitySpec, Attempt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spool_core::template_vars::{render_argv, TemplateVarError};
use tokio_util::sync::CancellationToken;

/// Error types of failed verdicts, for retry policies' non-retryable lists.
pub mod error_type {
    pub const SPAWN_FAILED: &str = "SpawnFailed";
    pub const EXIT_CODE: &str = "ExitCode";
    pub const SIGNALED: &str = "Signaled";
    pub const LOST: &str = "Lost";
    pub const INVALID_RESULT: &str = "InvalidResult";
}

/// What an attempt counts as for the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The step's work is done; `result` is its output for later steps.
    Succeeded {
        result: Option<Value>,
    },
    /// The attempt failed; `error_type` lets a retry policy tell kinds of failure apart.
    Failed {
        error_type: String,
        message: String,
    },
    TimedOut {
        kind: TimeoutKind,
    },
    Canceled,
}

/// What a kind gets to build a spec from.
#[derive(Debug, Clone)]
pub struct KindInput<'a> {
    /// The step's kind-specific parameters, as written in the template.
    pub params: &'a Value,
    /// Values for `{name.path}` placeholders (`issue`, `run`, earlier step results).
    pub vars: &'a Value,
    /// Everything the engine decides (cwd, env, timeouts, log file); the kind fills in
    /// argv and may adjust the rest.
    pub base: ActivitySpec,
}

#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error("{kind}: invalid parameters: {message}")]
    InvalidParams { kind: String, message: String },
    #[error("{kind}: {source}")]
    Template {
        kind: String,
        #[source]
        source: TemplateVarError,
    },
}

/// One kind of activity (`command`; agent CLIs later).
pub trait ActivityKind: Send + Sync {
    fn name(&self) -> &str;
    /// Builds the process to run. Pure: no IO, so a bad template fails before anything
    /// starts.
    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError>;
    /// A fresh judge for one attempt.
    fn judge(&self) -> Box<dyn Judge>;
}

/// Judges one attempt: sees its output lines as they arrive, then the outcome.
pub trait Judge: AttemptObserver {
    fn verdict(self: Box<Self>, outcome: &ActivityOutcome) -> Verdict;
}

/// The outcome together with the kind's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub outcome: ActivityOutcome,
    pub verdict: Verdict,
}

/// Runs one attempt of `spec` for `kind` and judges it. `observer` sees the same
/// events as the kind's judge (after it).
pub async fn run_judged(
    kind: &dyn ActivityKind,
    spec: &ActivitySpec,
    attempt: &Attempt,
    cancel: &CancellationToken,
    observer: &mut dyn AttemptObserver,
) -> Judged {
    let mut judge = kind.judge();
    let outcome = {
        let mut tee = Tee {
            first: judge.as_mut(),
            second: observer,
        };
        run_attempt(spec, attempt, cancel, &mut tee).await
    };
    let verdict = judge.verdict(&outcome);
    Judged { outcome, verdict }
}

/// The verdict every kind starts from: what the process status says, before any
/// kind-specific evidence. Exit 0 with an invalid result file is a failure.
pub fn status_verdict(outcome: &ActivityOutcome) -> Verdict {
    let failed = |error_type: &str, message: String| Verdict::Failed {
        error_type: error_type.to_string(),
        message,
    };
    match &outcome.status {
        ActivityStatus::Succeeded => match &outcome.result_error {
            Some(e) => failed(error_type::INVALID_RESULT, e.clone()),
            None => Verdict::Succeeded {
                result: outcome.result_json.clone(),
            },
        },
        ActivityStatus::Failed { exit_code } => failed(
            error_type::EXIT_CODE,
            format!("exited with code {exit_code}"),
        ),
        ActivityStatus::Signaled { name, .. } => {
            failed(error_type::SIGNALED, format!("killed by {name}"))
        }
        ActivityStatus::TimedOut { kind } => Verdict::TimedOut { kind: *kind },
        ActivityStatus::Canceled => Verdict::Canceled,
        ActivityStatus::SpawnFailed { error } => failed(error_type::SPAWN_FAILED, error.clone()),
        ActivityStatus::Lost { error } => failed(error_type::LOST, error.clone()),
    }
}

/// Runs a program: params `{"argv": ["prog", "arg {issue.id}", ...]}`, each element
/// rendered separately, so each stays one argument. Succeeds iff exit code 0 (and the
/// result file, if written, is valid JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandKind;

impl CommandKind {
    pub const NAME: &'static str = "command";
}

impl ActivityKind for CommandKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let invalid = |message: String| KindError::InvalidParams {
            kind: Self::NAME.to_string(),
            message,
        };
        let Value::Object(params) = input.params else {
            return Err(invalid(
                "expected an object with an `argv` array".to_string(),
            ));
        };
        if let Some(unknown) = params.keys().find(|k| k.as_str() != "argv") {
            return Err(invalid(format!(
                "unknown parameter `{unknown}` (only `argv`)"
            )));
        }
        let Some(Value::Array(items)) = params.get("argv") else {
            return Err(invalid("`argv` must be an array of strings".to_string()));
        };
        if items.is_empty() {
            return Err(invalid("`argv` is empty".to_string()));
        }
        let argv = items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(format!("`argv[{i}]` is {other}, not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let argv = render_argv(&argv, input.vars).map_err(|source| KindError::Template {
            kind: Self::NAME.to_string(),
            source,
        })?;
        Ok(ActivitySpec { argv, ..input.base })
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(StatusJudge)
    }
}

/// Judges by process status alone.
struct StatusJudge;

impl AttemptObserver for StatusJudge {}

impl Judge for StatusJudge {
    fn verdict(self: Box<Self>, outcome: &ActivityOutcome) -> Verdict {
        status_verdict(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepare(params: Value) -> Result<ActivitySpec, KindError> {
        let vars = json!({"issue": {"id": "bd-1", "title": "a b; $(c)"}});
        CommandKind.prepare(KindInput {
            params: &params,
            vars: &vars,
            base: ActivitySpec::new(Vec::<String>::new()),
        })
    }

    #[test]
    fn command_renders_each_argument_separately() {
        let spec =
            prepare(json!({"argv": ["echo", "{issue.id}", "t={issue.title}"]})).expect("valid");
        assert_eq!(spec.argv, ["echo", "bd-1", "t=a b; $(c)"]);
    }

    #[test]
    fn command_rejects_bad_params_with_reasons() {
        let cases = [
            (json!("echo hi"), "object"),
            (json!({"argv": []}), "empty"),
            (json!({"argv": "echo hi"}), "array"),
            (json!({"argv": ["echo", 3]}), "argv[1]"),
            (json!({"argv": ["echo"], "shell": true}), "`shell`"),
            (json!({"argv": ["echo", "{issue.nope}"]}), "{issue.nope}"),
        ];
        for (params, needle) in cases {
            let e = prepare(params.clone()).expect_err("invalid");
            assert!(e.to_string().contains(needle), "{params}: {e}");
        }
    }
}
