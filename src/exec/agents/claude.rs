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
            // Token-level events: a long answer keeps printing, so only a silent
            // claude trips the idle watchdog.
            "--include-partial-messages".into(),
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
        // Partial-message chunks are liveness only; skip them unparsed.
        if line.starts_with(r#"{"type":"stream_event""#) {
            return;
        }
        let Some(event) = self.report.event(line) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::agents::common::testing::{argv, exit, failure, judge_lines};
    use crate::exec::Verdict;
    use serde_json::json;

    /// Recorded from claude 2.1.197 with an empty HOME and no API key (exit code 1).
    const NOT_LOGGED_IN: &str =
        include_str!("../../../tests/fixtures/agents/claude-not-logged-in.jsonl");
    /// Recorded with a placeholder key and no network: ten `api_retry` events over three
    /// minutes, then an error result (exit code 1).
    const API_UNREACHABLE: &str =
        include_str!("../../../tests/fixtures/agents/claude-api-unreachable.jsonl");
    /// Recorded `--resume` of an unknown session id (exit code 1).
    const RESUME_NOT_FOUND: &str =
        include_str!("../../../tests/fixtures/agents/claude-resume-not-found.jsonl");

    const INIT: &str = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Bash"],"model":"claude-sonnet-4-5","permissionMode":"default"}"#;
    const ASSISTANT: &str = r#"{"type":"assistant","message":{"model":"claude-sonnet-4-5","role":"assistant","content":[{"type":"text","text":"Working on it"}]},"session_id":"s-1"}"#;

    fn result(fields: &str) -> String {
        format!(
            r#"{{"type":"result","duration_ms":1200,"num_turns":4,"session_id":"s-1","total_cost_usd":0.0421,"usage":{{"input_tokens":120,"cache_creation_input_tokens":3000,"cache_read_input_tokens":9000,"output_tokens":450}},"modelUsage":{{"claude-sonnet-4-5":{{}}}},{fields}}}"#
        )
    }

    #[test]
    fn success_result_succeeds_with_usage() {
        let r = result(
            r#""subtype":"success","is_error":false,"result":"Fixed the bug.","permission_denials":[]"#,
        );
        let partial = r#"{"type":"stream_event","event":{"type":"content_block_delta","delta":{"type":"text_delta","text":"Fix"}},"session_id":"s-1"}"#;
        let stream = format!("{INIT}\n{partial}\n{ASSISTANT}\n{r}\n");
        let (v, report) = judge_lines(&ClaudeKind, &stream, "", exit(0));
        let Verdict::Succeeded { result: Some(json) } = &v else {
            panic!("expected success, got {v:?}");
        };
        let u = &report.usage;
        assert_eq!(u.agent, "claude");
        assert_eq!(u.session_id.as_deref(), Some("s-1"));
        assert_eq!(u.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(u.num_turns, Some(4));
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cached_input_tokens,
                u.cache_creation_input_tokens
            ),
            (Some(120), Some(450), Some(9000), Some(3000))
        );
        assert_eq!(u.cost_usd, Some(0.0421));
        assert_eq!(report.final_message.as_deref(), Some("Fixed the bug."));
        assert_eq!(json["usage"]["cost_usd"], json!(0.0421));
        assert_eq!(json["usage"]["session_id"], json!("s-1"));
    }

    #[test]
    fn error_result_with_exit_zero_fails() {
        let r = result(
            r#""subtype":"error_during_execution","is_error":true,"errors":["Tool crashed"]"#,
        );
        let (v, report) = judge_lines(&ClaudeKind, &format!("{INIT}\n{r}"), "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::ERROR);
        assert!(
            msg.contains("Tool crashed") && msg.contains("exit code 0"),
            "{msg}"
        );
        assert_eq!(
            report.usage.cost_usd,
            Some(0.0421),
            "cost of a failure is kept"
        );
    }

    #[test]
    fn max_turns_and_budget_have_their_own_types() {
        for (subtype, want) in [
            ("error_max_turns", ty::MAX_TURNS),
            ("error_max_budget_usd", ty::BUDGET_EXCEEDED),
        ] {
            let r = result(&format!(r#""subtype":"{subtype}","is_error":true"#));
            let (v, _) = judge_lines(&ClaudeKind, &r, "", exit(0));
            assert_eq!(failure(&v).0, want, "{subtype}");
        }
    }

    #[test]
    fn permission_denials_fail_a_success_result() {
        let r = result(
            r#""subtype":"success","is_error":false,"result":"ok","permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"rm -rf /"}},{"tool_name":"Write","tool_use_id":"t2","tool_input":{}}]"#,
        );
        let (v, report) = judge_lines(&ClaudeKind, &r, "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::PERMISSION_DENIED);
        assert!(msg.contains("Bash, Write"), "{msg}");
        assert_eq!(report.permission_denials, ["Bash", "Write"]);
    }

    #[test]
    fn recorded_not_logged_in_is_an_auth_failure_whatever_the_exit_code() {
        for code in [1, 0] {
            let (v, report) = judge_lines(&ClaudeKind, NOT_LOGGED_IN, "", exit(code));
            let (ty, msg) = failure(&v);
            assert_eq!(ty, ty::AUTH);
            assert!(msg.contains("Not logged in"), "{msg}");
            assert_eq!(
                report.usage.session_id.as_deref(),
                Some("d21dc5a7-9ce7-479f-94aa-9593e87010af")
            );
            assert_eq!(report.malformed_lines, 0);
        }
    }

    #[test]
    fn recorded_unreachable_api_is_an_api_error() {
        let (v, report) = judge_lines(&ClaudeKind, API_UNREACHABLE, "", exit(1));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::API_ERROR);
        assert!(msg.contains("Unable to connect to API"), "{msg}");
        assert!(
            report.errors.iter().any(|e| e.contains("retrying")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn recorded_unknown_resume_session_is_an_invalid_request() {
        let (v, _) = judge_lines(&ClaudeKind, RESUME_NOT_FOUND, "", exit(1));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::INVALID_REQUEST);
        assert!(msg.contains("No conversation found"), "{msg}");
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let r = result(r#""subtype":"success","is_error":false,"result":"ok""#);
        let stream = format!("{INIT}\nnot json at all\n{{\"type\":\n\n{r}\n");
        let (v, report) = judge_lines(&ClaudeKind, &stream, "", exit(0));
        assert!(matches!(v, Verdict::Succeeded { .. }), "{v:?}");
        assert_eq!(report.malformed_lines, 2);
    }

    #[test]
    fn no_result_is_a_failure() {
        let (v, _) = judge_lines(&ClaudeKind, "", "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT);
        let (v, _) = judge_lines(&ClaudeKind, &format!("{INIT}\n{ASSISTANT}"), "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT);
        let (v, _) = judge_lines(
            &ClaudeKind,
            "",
            "error: unknown option '--bogus'\n",
            exit(1),
        );
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::INVALID_REQUEST);
        assert!(msg.contains("--bogus"), "{msg}");
    }

    #[test]
    fn argv_puts_the_prompt_after_the_end_of_options() {
        let a = argv(
            &ClaudeKind,
            json!({
                "prompt": "{issue.title}",
                "model": "sonnet",
                "permission_mode": "dontAsk",
                "max_turns": 30,
                "max_budget_usd": 2.5,
                "resume_session": "7f9f9a2e-1b3c-4f6e-9a2e-000000000000",
                "extra_args": ["--allowedTools", "Read Edit"],
            }),
        )
        .expect("valid");
        assert_eq!(
            a,
            [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
                "--model",
                "sonnet",
                "--permission-mode",
                "dontAsk",
                "--max-turns",
                "30",
                "--max-budget-usd",
                "2.5",
                "--resume",
                "7f9f9a2e-1b3c-4f6e-9a2e-000000000000",
                "--allowedTools",
                "Read Edit",
                "--",
                "-rf; $(x)"
            ]
        );
    }

    #[test]
    fn slash_commands_prompt_files_and_conflicting_sessions_are_refused() {
        for (params, needle) in [
            (json!({"prompt": "  /compact"}), "starts with `/`"),
            (json!({"prompt_file": "/tmp/p.md"}), "no prompt-file option"),
            (
                json!({"prompt": "a", "session_id": "a1", "resume_session": "b2"}),
                "cannot be combined",
            ),
        ] {
            let e = argv(&ClaudeKind, params.clone()).expect_err("invalid");
            assert!(e.to_string().contains(needle), "{params}: {e}");
        }
    }
}
