//! Gemini CLI, headless: `gemini --output-format stream-json --skip-trust ... --prompt=<prompt>`.
//!
//! Checked against @google/gemini-cli 0.61.0. stdout is JSONL: `init{session_id,model}`,
//! `message{role,content,delta}`, `tool_use`, `tool_result{status,error}`,
//! `error{severity,message}` and a final `result{status,error?,stats}` with token
//! counts per model (no cost). Fatal errors before the stream starts (no auth method,
//! untrusted folder) are plain text on stderr with a documented exit code.
//! `--prompt=<text>` keeps a prompt starting with `-` a value; `--skip-trust` because
//! a headless run in an untrusted folder exits 55 (spool runs agents in worktrees it
//! created).

use super::common::{
    agent_error_type as ty, agent_spec, classify_text, last_lines, str_at, u64_at, AgentJudge,
    AgentKind, AgentParams, AgentReport, Evidence, StreamParser, MESSAGE_LIMIT,
};
use crate::exec::{
    ActivityKind, ActivityOutcome, ActivitySpec, ActivityStatus, Judge, KindError, KindInput,
};
use serde_json::Value;

/// `gemini`: params `prompt` (required), `model`, `permission_mode` (the approval
/// mode: `default`, `auto_edit`, `yolo`, `plan`), `session_id` (pre-assigned UUID),
/// `resume_session` (a previous attempt's session UUID), `extra_args`, `program`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiKind;

impl GeminiKind {
    pub const NAME: &'static str = "gemini";
    const MODES: &'static [&'static str] = &["default", "auto_edit", "yolo", "plan"];
}

impl ActivityKind for GeminiKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let mut p = AgentParams::parse(Self::NAME, &input, "gemini")?;
        let mode = p.take_choice("permission_mode", Self::MODES)?;
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
            "--output-format".into(),
            "stream-json".into(),
            "--skip-trust".into(),
        ];
        if let Some(m) = &p.model {
            argv.push(format!("--model={m}"));
        }
        if let Some(m) = mode {
            argv.push(format!("--approval-mode={m}"));
        }
        if let Some(id) = &p.resume_session {
            argv.push(format!("--resume={id}"));
        }
        if let Some(id) = session_id {
            argv.push(format!("--session-id={id}"));
        }
        argv.extend(p.extra_args.iter().cloned());
        argv.push(format!("--prompt={prompt}"));
        Ok(agent_spec(input.base, argv))
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(self.agent_judge())
    }
}

impl AgentKind for GeminiKind {
    fn agent_judge(&self) -> AgentJudge {
        AgentJudge::new(Box::new(GeminiParser::default()))
    }
}

#[derive(Debug)]
pub(crate) struct GeminiParser {
    report: AgentReport,
    result: Option<Value>,
    /// The assistant text since the last tool call.
    message: String,
    /// An `error` event of severity `error`, or a detected loop.
    fatal: Option<String>,
}

impl Default for GeminiParser {
    fn default() -> Self {
        GeminiParser {
            report: AgentReport::new(GeminiKind::NAME),
            result: None,
            message: String::new(),
            fatal: None,
        }
    }
}

impl StreamParser for GeminiParser {
    fn stdout_line(&mut self, line: &str) {
        let Some(event) = self.report.event(line) else {
            return;
        };
        let report = &mut self.report;
        match str_at(&event, "type").unwrap_or("") {
            "init" => {
                report.usage.session_id = str_at(&event, "session_id").map(str::to_string);
                report.usage.model = str_at(&event, "model").map(str::to_string);
            }
            "message" if str_at(&event, "role") == Some("assistant") => {
                let delta = event.get("delta").and_then(Value::as_bool).unwrap_or(false);
                if !delta {
                    self.message.clear();
                }
                if self.message.len() < MESSAGE_LIMIT {
                    self.message
                        .push_str(str_at(&event, "content").unwrap_or(""));
                }
            }
            "tool_use" => self.message.clear(),
            "tool_result" => {
                if let Some(m) = event.pointer("/error/message").and_then(Value::as_str) {
                    report.push_error(m);
                }
            }
            "error" => {
                let message = str_at(&event, "message").unwrap_or("error");
                report.push_error(message);
                if str_at(&event, "severity") == Some("error") || message.contains("Loop detected")
                {
                    self.fatal = Some(message.to_string());
                }
            }
            "result" => self.result = Some(event),
            _ => {}
        }
    }

    fn finish(mut self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport) {
        if !self.message.is_empty() {
            let message = std::mem::take(&mut self.message);
            self.report.set_final_message(&message);
        }
        let Some(result) = self.result.take() else {
            let stderr = last_lines(&outcome.stderr_tail, 3);
            let evidence = match exit_code_type(outcome) {
                Some(kind) => Evidence::failure(kind, stderr),
                None => Evidence::Inconclusive {
                    message: format!("no result event; stderr: {stderr}"),
                },
            };
            return (evidence, self.report);
        };
        self.read_stats(&result);
        let evidence = if str_at(&result, "status") != Some("success") {
            let message = result
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("result status error")
                .to_string();
            self.report.push_error(&message);
            let kind =
                exit_code_type(outcome).unwrap_or_else(|| classify_text(&message, ty::ERROR));
            Evidence::failure(kind, message)
        } else if let Some(fatal) = &self.fatal {
            let kind = if fatal.contains("turns") {
                ty::MAX_TURNS
            } else {
                ty::ERROR
            };
            Evidence::failure(kind, fatal.clone())
        } else {
            Evidence::Success
        };
        (evidence, self.report)
    }
}

impl GeminiParser {
    fn read_stats(&mut self, result: &Value) {
        let Some(stats) = result.get("stats") else {
            return;
        };
        let usage = &mut self.report.usage;
        let cached = u64_at(stats, "cached");
        // `input_tokens` counts the prompt including cached tokens; `input` excludes them.
        usage.input_tokens = u64_at(stats, "input").or_else(|| {
            u64_at(stats, "input_tokens").map(|i| i.saturating_sub(cached.unwrap_or(0)))
        });
        usage.cached_input_tokens = cached;
        usage.output_tokens = u64_at(stats, "output_tokens");
        if let Some(Value::Object(models)) = stats.get("models") {
            if models.len() == 1 {
                usage.model = models.keys().next().cloned();
            } else if !models.is_empty() {
                usage.model = Some(models.keys().cloned().collect::<Vec<_>>().join(","));
            }
        }
    }
}

/// Gemini's documented fatal exit codes.
fn exit_code_type(outcome: &ActivityOutcome) -> Option<&'static str> {
    match outcome.status {
        ActivityStatus::Failed { exit_code } => match exit_code {
            41 => Some(ty::AUTH),
            42 | 52 | 55 => Some(ty::INVALID_REQUEST),
            53 => Some(ty::MAX_TURNS),
            44 | 54 | 130 => Some(ty::ERROR),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::agents::common::testing::{argv, exit, failure, judge_lines};
    use crate::exec::Verdict;
    use serde_json::json;

    const SUCCESS: &str = r#"{"type":"init","timestamp":"2026-11-30T02:35:18.086Z","session_id":"70f41285-b322-449a-a38a-ed16d507a68b","model":"auto"}
{"type":"message","timestamp":"2026-11-30T02:35:18.088Z","role":"user","content":"fix it"}
{"type":"message","timestamp":"2026-11-30T02:35:19.000Z","role":"assistant","content":"Let me look.","delta":true}
{"type":"tool_use","timestamp":"2026-11-30T02:35:19.100Z","tool_name":"read_file","tool_id":"c1","parameters":{"path":"a.rs"}}
{"type":"tool_result","timestamp":"2026-11-30T02:35:19.200Z","tool_id":"c1","status":"success","output":"fn main(){}"}
{"type":"message","timestamp":"2026-11-30T02:35:20.000Z","role":"assistant","content":"Fixed ","delta":true}
{"type":"message","timestamp":"2026-11-30T02:35:20.100Z","role":"assistant","content":"the bug.","delta":true}
{"type":"result","timestamp":"2026-11-30T02:35:20.200Z","status":"success","stats":{"total_tokens":1500,"input_tokens":1200,"output_tokens":300,"cached":200,"input":1000,"duration_ms":2100,"tool_calls":1,"models":{"gemini-2.5-pro":{"total_tokens":1500,"input_tokens":1200,"output_tokens":300,"cached":200,"input":1000}}}}
"#;

    #[test]
    fn success_result_succeeds_with_usage() {
        let (v, report) = judge_lines(&GeminiKind, SUCCESS, "", exit(0));
        assert!(matches!(v, Verdict::Succeeded { .. }), "{v:?}");
        let u = &report.usage;
        assert_eq!(
            u.session_id.as_deref(),
            Some("70f41285-b322-449a-a38a-ed16d507a68b")
        );
        assert_eq!(u.model.as_deref(), Some("gemini-2.5-pro"));
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (Some(1000), Some(200), Some(300))
        );
        assert_eq!(report.final_message.as_deref(), Some("Fixed the bug."));
    }

    #[test]
    fn error_result_and_fatal_error_events_fail() {
        let stream = r#"{"type":"init","session_id":"s","model":"auto"}
{"type":"result","status":"error","error":{"type":"FatalToolExecutionError","message":"Error executing tool write_file: denied"},"stats":{}}"#;
        let (v, _) = judge_lines(&GeminiKind, stream, "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::ERROR);
        assert!(msg.contains("write_file"), "{msg}");
        let turns = r#"{"type":"error","severity":"error","message":"Maximum session turns exceeded"}
{"type":"result","status":"success","stats":{}}"#;
        let (v, _) = judge_lines(&GeminiKind, turns, "", exit(0));
        assert_eq!(failure(&v).0, ty::MAX_TURNS);
        let warning = r#"{"type":"error","severity":"warning","message":"Loop detected, stopping execution"}
{"type":"result","status":"success","stats":{}}"#;
        let (v, _) = judge_lines(&GeminiKind, warning, "", exit(0));
        assert_eq!(failure(&v).0, ty::ERROR, "a detected loop stopped the work");
    }

    #[test]
    fn recorded_missing_auth_is_an_auth_failure() {
        // gemini 0.61.0 with an empty HOME and no key, exit code 41, nothing on stdout.
        let stderr = "Please set an Auth method in your /tmp/h/.gemini/settings.json or specify one of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA\n";
        let (v, _) = judge_lines(&GeminiKind, "", stderr, exit(41));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::AUTH);
        assert!(
            msg.contains("Auth method") && msg.contains("exit code 41"),
            "{msg}"
        );
        let (v, _) = judge_lines(&GeminiKind, "", "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT);
    }

    #[test]
    fn argv_passes_the_prompt_as_the_value_of_prompt() {
        let a = argv(
            &GeminiKind,
            json!({"prompt": "{issue.title}", "model": "gemini-2.5-pro", "permission_mode": "yolo", "resume_session": "70f41285-b322-449a-a38a-ed16d507a68b"}),
        )
        .expect("valid");
        assert_eq!(
            a,
            [
                "gemini",
                "--output-format",
                "stream-json",
                "--skip-trust",
                "--model=gemini-2.5-pro",
                "--approval-mode=yolo",
                "--resume=70f41285-b322-449a-a38a-ed16d507a68b",
                "--prompt=-rf; $(x)"
            ]
        );
        let e = argv(&GeminiKind, json!({"prompt": "/quit"})).expect_err("slash command");
        assert!(e.to_string().contains("starts with `/`"), "{e}");
    }
}
