//! Claude Code, headless: `claude -p --output-format stream-json --verbose ... -- <prompt>`.
//!
//! Checked against Claude Code 2.1.197. The stream is NDJSON: `system` (`init` with the
//! session id and model, `api_retry` while the API is unreachable), `assistant` (with
//! an `error` field such as `authentication_failed` on API failures), `user`, and a
//! final `result` with `subtype`, `is_error`, `result`, `session_id`, `num_turns`,
//! `total_cost_usd`, `usage`, `modelUsage`, `permission_denials` and `errors`.
//! Exit status alone is weak evidence: a version flag in the prompt position exits 0,
//! and `subtype: "success"` comes with `is_error: true` on API errors.

use super::common::{
    add, agent_error_type as ty, agent_spec, classify_text, last_lines, str_at, u64_at, AgentJudge,
    AgentKind, AgentParams, AgentReport, Evidence, StreamParser,
};
use crate::exec::{ActivityKind, ActivityOutcome, ActivitySpec, Judge, KindError, KindInput};
use serde_json::Value;

/// `claude`: params `prompt` (required), `model`, `permission_mode` (`acceptEdits`,
/// `auto`, `bypassPermissions`, `default`, `dontAsk`, `plan`), `max_turns`,
/// `max_budget_usd`, `session_id` (pre-assigned UUID for a new session),
/// `resume_session` (continue a previous attempt's session), `extra_args`, `program`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaudeKind;

impl ClaudeKind {
    pub const NAME: &'static str = "claude";
    const PERMISSION_MODES: &'static [&'static str] = &[
        "acceptEdits",
        "auto",
        "bypassPermissions",
        "default",
        "dontAsk",
        "plan",
    ];
}

impl ActivityKind for ClaudeKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let mut p = AgentParams::parse(Self::NAME, &input, "claude")?;
        let permission_mode = p.take_choice("permission_mode", Self::PERMISSION_MODES)?;
        let max_turns = p.take_u64("max_turns")?;
        let max_budget = p.take_f64("max_budget_usd")?;
        let session_id = p.take_session("session_id")?;
        p.finish()?;
        let prompt = p.prompt_text()?;
        p.reject_command_prefix(prompt, &['/'])?;
        if session_id.is_some() && p.resume_session.is_some() {
            return Err(p.invalid(
                "`session_id` names a new session; it cannot be combined with `resume_session`"
                    .into(),
            ));
        }
        let mut argv: Vec<String> = vec![
            p.program.clone(),
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ];
        let mut flag = |f: &str, v: String| {
            argv.push(f.into());
            argv.push(v);
        };
        if let Some(m) = &p.model {
            flag("--model", m.clone());
        }
        if let Some(m) = permission_mode {
            flag("--permission-mode", m);
        }
        if let Some(n) = max_turns {
            flag("--max-turns", n.to_string());
        }
        if let Some(x) = max_budget {
            flag("--max-budget-usd", x.to_string());
        }
        if let Some(id) = &p.resume_session {
            flag("--resume", id.clone());
        }
        if let Some(id) = session_id {
            flag("--session-id", id);
        }
        argv.extend(p.extra_args.iter().cloned());
        argv.push("--".into());
        argv.push(prompt.to_string());
        Ok(agent_spec(input.base, argv))
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(self.agent_judge())
    }
}

impl AgentKind for ClaudeKind {
    fn agent_judge(&self) -> AgentJudge {
        AgentJudge::new(Box::new(ClaudeParser::default()))
    }
}

/// Reads claude's stream-json.
#[derive(Debug)]
pub(crate) struct ClaudeParser {
    report: AgentReport,
    result: Option<Value>,
    /// The `error` field of the last assistant message that had one.
    assistant_error: Option<(String, String)>,
}

impl Default for ClaudeParser {
    fn default() -> Self {
        ClaudeParser {
            report: AgentReport::new(ClaudeKind::NAME),
            result: None,
            assistant_error: None,
        }
    }
}

impl StreamParser for ClaudeParser {
    fn stdout_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            self.report.malformed_lines += 1;
            return;
        };
        let usage = &mut self.report.usage;
        if let Some(id) = str_at(&event, "session_id") {
            usage.session_id = Some(id.to_string());
        }
        match (str_at(&event, "type"), str_at(&event, "subtype")) {
            (Some("system"), Some("init")) => {
                if let Some(m) = str_at(&event, "model") {
                    usage.model = Some(m.to_string());
                }
            }
            (Some("system"), Some("api_retry")) => {
                let error = str_at(&event, "error").unwrap_or("unknown");
                let status = event.get("error_status").filter(|s| !s.is_null());
                let message = match status {
                    Some(s) => format!("API request failed ({error}, status {s}); retrying"),
                    None => format!("API request failed ({error}); retrying"),
                };
                self.report.push_error(&message);
            }
            (Some("assistant"), _) => {
                if let Some(error) = str_at(&event, "error") {
                    let text = message_text(&event);
                    self.report.push_error(&text);
                    self.assistant_error = Some((error.to_string(), text));
                }
            }
            (Some("result"), _) => self.result = Some(event),
            _ => {}
        }
    }

    fn finish(mut self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport) {
        let Some(result) = self.result.take() else {
            let evidence = match &self.assistant_error {
                Some((kind, text)) => Evidence::failure(error_kind(kind, text), text.clone()),
                None => no_result(outcome),
            };
            return (evidence, self.report);
        };
        self.read_result(&result);
        let evidence = self.evidence(&result);
        (evidence, self.report)
    }
}

impl ClaudeParser {
    fn read_result(&mut self, r: &Value) {
        let report = &mut self.report;
        if let Some(text) = str_at(r, "result") {
            report.set_final_message(text);
        }
        let usage = &mut report.usage;
        usage.num_turns = u64_at(r, "num_turns");
        usage.cost_usd = r.get("total_cost_usd").and_then(Value::as_f64);
        if let Some(u) = r.get("usage") {
            add(&mut usage.input_tokens, u64_at(u, "input_tokens"));
            add(&mut usage.output_tokens, u64_at(u, "output_tokens"));
            add(
                &mut usage.cached_input_tokens,
                u64_at(u, "cache_read_input_tokens"),
            );
            add(
                &mut usage.cache_creation_input_tokens,
                u64_at(u, "cache_creation_input_tokens"),
            );
        }
        if usage.model.as_deref().is_none_or(|m| m.starts_with('<')) {
            if let Some(Value::Object(models)) = r.get("modelUsage") {
                if let Some(name) = models.keys().next() {
                    usage.model = Some(name.clone());
                }
            }
        }
        if let Some(Value::Array(denials)) = r.get("permission_denials") {
            report.permission_denials = denials
                .iter()
                .map(|d| str_at(d, "tool_name").unwrap_or("unknown tool").to_string())
                .collect();
        }
        if let Some(Value::Array(errors)) = r.get("errors") {
            for e in errors {
                match e {
                    Value::String(s) => report.push_error(s),
                    other => report.push_error(&other.to_string()),
                }
            }
        }
    }

    fn evidence(&self, r: &Value) -> Evidence {
        let subtype = str_at(r, "subtype").unwrap_or("");
        let is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let text = self
            .report
            .errors
            .last()
            .cloned()
            .or_else(|| self.report.final_message.clone())
            .unwrap_or_else(|| format!("result {subtype}"));
        match subtype {
            "error_max_turns" => {
                return Evidence::failure(
                    ty::MAX_TURNS,
                    format!("stopped at the turn limit: {text}"),
                )
            }
            "error_max_budget_usd" => {
                return Evidence::failure(
                    ty::BUDGET_EXCEEDED,
                    format!("stopped at the budget: {text}"),
                )
            }
            _ => {}
        }
        if is_error || subtype != "success" {
            let kind = if let Some((kind, text)) = &self.assistant_error {
                error_kind(kind, text)
            } else if let Some(status) = u64_at(r, "api_error_status") {
                match status {
                    401 | 403 => ty::AUTH,
                    429 => ty::RATE_LIMITED,
                    400 | 404 => ty::INVALID_REQUEST,
                    _ => ty::API_ERROR,
                }
            } else if text.contains("No conversation found") {
                ty::INVALID_REQUEST
            } else {
                classify_text(&text, ty::ERROR)
            };
            return Evidence::failure(kind, text);
        }
        if !self.report.permission_denials.is_empty() {
            return Evidence::failure(
                ty::PERMISSION_DENIED,
                format!(
                    "permission denied for: {}",
                    self.report.permission_denials.join(", ")
                ),
            );
        }
        Evidence::Success
    }
}

/// The text blocks of an assistant message.
fn message_text(event: &Value) -> String {
    let blocks = event
        .pointer("/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text: Vec<&str> = blocks.iter().filter_map(|b| str_at(b, "text")).collect();
    if text.is_empty() {
        "the API request failed".to_string()
    } else {
        text.join("\n")
    }
}

/// The error type for an assistant message's `error` field.
fn error_kind(kind: &str, text: &str) -> &'static str {
    match kind {
        "authentication_failed" | "oauth_org_not_allowed" | "billing_error" => ty::AUTH,
        "rate_limit" => ty::RATE_LIMITED,
        "server_error" | "overloaded" => ty::API_ERROR,
        "invalid_request" | "model_not_found" => ty::INVALID_REQUEST,
        _ => classify_text(text, ty::ERROR),
    }
}

/// No result event: usage errors (bad flags) are printed on stderr by the argument
/// parser before the stream starts.
fn no_result(outcome: &ActivityOutcome) -> Evidence {
    let stderr = last_lines(&outcome.stderr_tail, 3);
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("unknown option")
        || lower.contains("error: option")
        || lower.contains("requires --")
        || lower.contains("invalid")
    {
        Evidence::failure(ty::INVALID_REQUEST, stderr)
    } else {
        Evidence::Inconclusive {
            message: format!("no result event; stderr: {stderr}"),
        }
    }
}
