//! OpenAI Codex CLI: `codex exec --json ... -- <prompt>`, resumed with
//! `codex exec --json ... resume -- <session id> <prompt>`.
//!
//! Checked against codex-cli 0.171.0. stdout is JSONL: `thread.started{thread_id}`,
//! `turn.started`, `item.started|updated|completed{item}`, `turn.completed{usage}`,
//! `turn.failed{error}` and `error{message}` (also transient: "Reconnecting..."). The
//! exit code reflects protocol health, not the task, so success needs a completed turn
//! and no failed one. Codex reads stdin when it is not a terminal; exec's `/dev/null`
//! ends that at once.

use super::common::{
    add, agent_error_type as ty, agent_spec, classify_text, last_lines, str_at, u64_at, AgentJudge,
    AgentKind, AgentParams, AgentReport, Evidence, StreamParser,
};
use crate::exec::{ActivityKind, ActivityOutcome, ActivitySpec, Judge, KindError, KindInput};
use serde_json::Value;

/// `codex`: params `prompt` (required), `model`, `permission_mode` (the sandbox:
/// `read-only`, `workspace-write`, `danger-full-access`, or `bypass` for
/// `--dangerously-bypass-approvals-and-sandbox`), `resume_session` (a previous
/// attempt's thread id), `extra_args`, `program`. Exec mode never asks for approval.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodexKind;

impl CodexKind {
    pub const NAME: &'static str = "codex";
    const MODES: &'static [&'static str] = &[
        "read-only",
        "workspace-write",
        "danger-full-access",
        "bypass",
    ];
}

impl ActivityKind for CodexKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let mut p = AgentParams::parse(Self::NAME, &input, "codex")?;
        let mode = p.take_choice("permission_mode", Self::MODES)?;
        p.finish()?;
        let prompt = p.prompt_text()?;
        let mut argv: Vec<String> = vec![
            p.program.clone(),
            "exec".into(),
            "--json".into(),
            "--color".into(),
            "never".into(),
        ];
        if let Some(m) = &p.model {
            argv.extend(["-m".into(), m.clone()]);
        }
        match mode.as_deref() {
            None => {}
            Some("bypass") => argv.push("--dangerously-bypass-approvals-and-sandbox".into()),
            Some(sandbox) => argv.extend(["-s".into(), sandbox.to_string()]),
        }
        argv.extend(p.extra_args.iter().cloned());
        match &p.resume_session {
            Some(id) => argv.extend(["resume".into(), "--".into(), id.clone()]),
            None => argv.push("--".into()),
        }
        argv.push(prompt.to_string());
        Ok(agent_spec(input.base, argv))
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(self.agent_judge())
    }
}

impl AgentKind for CodexKind {
    fn agent_judge(&self) -> AgentJudge {
        AgentJudge::new(Box::new(CodexParser::default()))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Turn {
    None,
    Running,
    Completed,
    Failed(String),
}

#[derive(Debug)]
pub(crate) struct CodexParser {
    report: AgentReport,
    turn: Turn,
}

impl Default for CodexParser {
    fn default() -> Self {
        CodexParser {
            report: AgentReport::new(CodexKind::NAME),
            turn: Turn::None,
        }
    }
}

impl StreamParser for CodexParser {
    fn stdout_line(&mut self, line: &str) {
        let Some(event) = self.report.event(line) else {
            return;
        };
        let report = &mut self.report;
        match str_at(&event, "type").unwrap_or("") {
            "thread.started" => {
                if let Some(id) = str_at(&event, "thread_id") {
                    report.usage.session_id = Some(id.to_string());
                }
            }
            "turn.started" => self.turn = Turn::Running,
            "turn.completed" => {
                self.turn = Turn::Completed;
                add(&mut report.usage.num_turns, Some(1));
                if let Some(u) = event.get("usage") {
                    let cached = u64_at(u, "cached_input_tokens");
                    // Codex counts cached tokens inside input_tokens.
                    let input =
                        u64_at(u, "input_tokens").map(|i| i.saturating_sub(cached.unwrap_or(0)));
                    add(&mut report.usage.input_tokens, input);
                    add(&mut report.usage.cached_input_tokens, cached);
                    add(&mut report.usage.output_tokens, u64_at(u, "output_tokens"));
                    add(
                        &mut report.usage.reasoning_tokens,
                        u64_at(u, "reasoning_output_tokens"),
                    );
                }
            }
            "turn.failed" => {
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("turn failed")
                    .to_string();
                report.push_error(&message);
                self.turn = Turn::Failed(message);
            }
            "error" => {
                if let Some(m) = str_at(&event, "message") {
                    report.push_error(m);
                }
            }
            "item.completed" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                match str_at(item, "type") {
                    Some("agent_message") => {
                        if let Some(t) = str_at(item, "text") {
                            report.set_final_message(t);
                        }
                    }
                    Some("error") => {
                        if let Some(m) = str_at(item, "message") {
                            report.push_error(m);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport) {
        let evidence = match &self.turn {
            Turn::Completed => Evidence::Success,
            Turn::Failed(message) => {
                Evidence::failure(classify_text(message, ty::ERROR), message.clone())
            }
            Turn::Running | Turn::None => match self.report.errors.last() {
                Some(e) => Evidence::failure(
                    classify_text(e, ty::ERROR),
                    format!("no completed turn; last error: {e}"),
                ),
                None => no_result(outcome),
            },
        };
        (evidence, self.report)
    }
}

/// No events at all: codex printed its reason on stderr (bad arguments, a missing
/// session to resume).
fn no_result(outcome: &ActivityOutcome) -> Evidence {
    let stderr = last_lines(&outcome.stderr_tail, 3);
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("unexpected argument")
        || lower.contains("invalid value")
        || lower.contains("no rollout found")
        || lower.contains("usage:")
    {
        Evidence::failure(ty::INVALID_REQUEST, stderr)
    } else {
        Evidence::Inconclusive {
            message: format!("no completed turn; stderr: {stderr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::agents::common::testing::{argv, exit, failure, judge_lines};
    use crate::exec::{ActivityStatus, TimeoutKind, Verdict};
    use serde_json::json;

    /// Recorded from codex-cli 0.171.0 with an empty HOME and no network: transient
    /// reconnect errors, then "waiting for network" every minute, never ending.
    const NO_NETWORK: &str = include_str!("../../../tests/fixtures/agents/codex-no-network.jsonl");

    const SUCCESS: &str = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"Looking at the tests"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"src\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done: fixed the off-by-one."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
"#;

    #[test]
    fn completed_turn_succeeds_with_usage() {
        let (v, report) = judge_lines(&CodexKind, SUCCESS, "", exit(0));
        assert!(matches!(v, Verdict::Succeeded { .. }), "{v:?}");
        let u = &report.usage;
        assert_eq!(
            u.session_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.num_turns
            ),
            (Some(315), Some(24448), Some(122), Some(1))
        );
        assert_eq!(u.cost_usd, None, "codex reports no cost");
        assert_eq!(
            report.final_message.as_deref(),
            Some("Done: fixed the off-by-one.")
        );
    }

    #[test]
    fn failed_turn_with_exit_zero_fails() {
        let stream = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"error","message":"You've hit your usage limit. Try again at 7:10 AM."}
{"type":"turn.failed","error":{"message":"You've hit your usage limit. Try again at 7:10 AM."}}"#;
        let (v, _) = judge_lines(&CodexKind, stream, "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::RATE_LIMITED);
        assert!(msg.contains("usage limit"), "{msg}");
    }

    #[test]
    fn recorded_no_network_run_is_an_api_error_or_a_timeout() {
        let (v, report) = judge_lines(&CodexKind, NO_NETWORK, "", exit(1));
        assert_eq!(failure(&v).0, ty::API_ERROR);
        assert_eq!(
            report.usage.session_id.as_deref(),
            Some("01a22a4e-2acb-7f62-9f82-8910fb77dec4"),
            "the thread id is kept for a resume"
        );
        let timed_out = ActivityStatus::TimedOut {
            kind: TimeoutKind::StartToClose,
        };
        let (v, report) = judge_lines(&CodexKind, NO_NETWORK, "", timed_out);
        assert_eq!(
            v,
            Verdict::TimedOut {
                kind: TimeoutKind::StartToClose
            }
        );
        assert!(report
            .errors
            .last()
            .is_some_and(|e| e.contains("waiting for network")));
    }

    #[test]
    fn no_events_is_a_failure_and_unknown_sessions_are_invalid() {
        let (v, _) = judge_lines(&CodexKind, "", "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT);
        let stderr = "Error: thread/resume: thread/resume failed: no rollout found for thread id x (code -32600)\n";
        let (v, _) = judge_lines(&CodexKind, "", stderr, exit(1));
        assert_eq!(failure(&v).0, ty::INVALID_REQUEST);
        let started =
            "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n{\"type\":\"turn.started\"}";
        let (v, _) = judge_lines(&CodexKind, started, "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT, "a turn that never completed");
    }

    #[test]
    fn argv_for_new_and_resumed_sessions() {
        let a = argv(
            &CodexKind,
            json!({"prompt": "{issue.title}", "model": "o3", "permission_mode": "workspace-write"}),
        )
        .expect("valid");
        assert_eq!(
            a,
            [
                "codex",
                "exec",
                "--json",
                "--color",
                "never",
                "-m",
                "o3",
                "-s",
                "workspace-write",
                "--",
                "-rf; $(x)"
            ]
        );
        let a = argv(
            &CodexKind,
            json!({"prompt": "go on", "permission_mode": "bypass", "resume_session": "t-1", "extra_args": ["--skip-git-repo-check"]}),
        )
        .expect("valid");
        assert_eq!(
            a,
            [
                "codex",
                "exec",
                "--json",
                "--color",
                "never",
                "--dangerously-bypass-approvals-and-sandbox",
                "--skip-git-repo-check",
                "resume",
                "--",
                "t-1",
                "go on"
            ]
        );
    }
}
