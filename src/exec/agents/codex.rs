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
        if line.trim().is_empty() {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            self.report.malformed_lines += 1;
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
