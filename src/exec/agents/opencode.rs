//! opencode, headless: `opencode run --format json --print-logs --log-level INFO ... -- <prompt words>`.
//!
//! Checked against opencode-ai 1.18.33. stdout is NDJSON where each event carries
//! `type`, `timestamp` and `sessionID`: `step_start`, `text{part.text}`, `reasoning`,
//! `tool_use{part.state.status}`, `step_finish{part.cost, part.tokens}` and
//! `error{error.name, error.data.message}`. A permission it auto-rejects is only a text
//! line ("permission requested: ...; auto-rejecting") and may still exit 0 with no
//! events, so success needs at least one finished step and no error or rejection.
//! The INFO log on stderr keeps a working run visibly alive between steps and names
//! the model.
//!
//! opencode joins the message arguments with spaces and wraps any argument that
//! contains a space in quotes. The prompt is therefore passed split at spaces, each
//! piece one argument after `--`, which opencode joins back into exactly the prompt.

use super::common::{
    add, agent_error_type as ty, agent_spec, classify_text, last_lines, str_at, u64_at, AgentJudge,
    AgentKind, AgentParams, AgentReport, Evidence, StreamParser,
};
use crate::exec::{ActivityKind, ActivityOutcome, ActivitySpec, Judge, KindError, KindInput};
use serde_json::Value;

/// `opencode`: params `prompt` (required), `model` (`provider/model`), `agent`
/// (`build`, `plan` or a custom agent), `permission_mode` (`auto` approves every
/// permission not explicitly denied; `default` auto-rejects them), `resume_session`
/// (a previous attempt's `ses_...` id, `--session`), `extra_args`, `program`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpencodeKind;

impl OpencodeKind {
    pub const NAME: &'static str = "opencode";
}

impl ActivityKind for OpencodeKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let mut p = AgentParams::parse(Self::NAME, &input, "opencode")?;
        let mode = p.take_choice("permission_mode", &["auto", "default"])?;
        let agent = p.take_flag_value("agent")?;
        p.finish()?;
        let prompt = p.prompt_text()?;
        let mut argv: Vec<String> = vec![
            p.program.clone(),
            "run".into(),
            "--format".into(),
            "json".into(),
            "--print-logs".into(),
            "--log-level".into(),
            "INFO".into(),
        ];
        if let Some(m) = &p.model {
            argv.extend(["--model".into(), m.clone()]);
        }
        if let Some(a) = agent {
            argv.extend(["--agent".into(), a]);
        }
        if mode.as_deref() == Some("auto") {
            argv.push("--auto".into());
        }
        if let Some(id) = &p.resume_session {
            argv.extend(["--session".into(), id.clone()]);
        }
        argv.extend(p.extra_args.iter().cloned());
        argv.push("--".into());
        argv.extend(prompt.split(' ').map(str::to_string));
        Ok(agent_spec(input.base, argv))
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(self.agent_judge())
    }
}

impl AgentKind for OpencodeKind {
    fn agent_judge(&self) -> AgentJudge {
        AgentJudge::new(Box::new(OpencodeParser::default()))
    }
}

#[derive(Debug)]
pub(crate) struct OpencodeParser {
    report: AgentReport,
    steps: u64,
    error: Option<(&'static str, String)>,
}

impl Default for OpencodeParser {
    fn default() -> Self {
        OpencodeParser {
            report: AgentReport::new(OpencodeKind::NAME),
            steps: 0,
            error: None,
        }
    }
}

impl StreamParser for OpencodeParser {
    fn stdout_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            if !self.rejection(line) {
                self.report.malformed_lines += 1;
            }
            return;
        };
        if let Some(id) = str_at(&event, "sessionID") {
            self.report.usage.session_id = Some(id.to_string());
        }
        let part = event.get("part").unwrap_or(&Value::Null);
        match str_at(&event, "type").unwrap_or("") {
            "text" => {
                if let Some(t) = str_at(part, "text") {
                    self.report.set_final_message(t);
                }
            }
            "tool_use"
                if part.pointer("/state/status").and_then(Value::as_str) == Some("error") =>
            {
                let tool = str_at(part, "tool").unwrap_or("tool");
                let e = part
                    .pointer("/state/error")
                    .and_then(Value::as_str)
                    .unwrap_or("failed");
                self.report.push_error(&format!("{tool}: {e}"));
            }
            "step_finish" => {
                self.steps += 1;
                let usage = &mut self.report.usage;
                add(&mut usage.num_turns, Some(1));
                if let Some(cost) = part.get("cost").and_then(Value::as_f64) {
                    usage.cost_usd = Some(usage.cost_usd.unwrap_or(0.0) + cost);
                }
                if let Some(t) = part.get("tokens") {
                    add(&mut usage.input_tokens, u64_at(t, "input"));
                    add(&mut usage.output_tokens, u64_at(t, "output"));
                    add(&mut usage.reasoning_tokens, u64_at(t, "reasoning"));
                    if let Some(c) = t.get("cache") {
                        add(&mut usage.cached_input_tokens, u64_at(c, "read"));
                        add(&mut usage.cache_creation_input_tokens, u64_at(c, "write"));
                    }
                }
            }
            "error" => {
                let e = event.get("error").unwrap_or(&Value::Null);
                let name = str_at(e, "name").unwrap_or("Error");
                let message = e
                    .pointer("/data/message")
                    .and_then(Value::as_str)
                    .unwrap_or(name);
                let text = format!("{name}: {message}");
                self.report.push_error(&text);
                let kind = if name.contains("Auth") {
                    ty::AUTH
                } else {
                    classify_text(&text, ty::ERROR)
                };
                self.error = Some((kind, text));
            }
            _ => {}
        }
    }

    fn stderr_line(&mut self, line: &str) {
        if self.rejection(line) {
            return;
        }
        if line.contains("level=ERROR") {
            // The log says why while opencode retries; the error event comes only at
            // the end, which a timeout may not reach.
            let from = line.find("message=").unwrap_or(0);
            self.report.push_error(&line[from..]);
        }
        if line.contains("llm runtime selected") {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            if let (Some(provider), Some(model)) = (field("llm.provider="), field("llm.model=")) {
                self.report.usage.model = Some(format!("{provider}/{model}"));
            }
        }
    }

    fn finish(mut self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport) {
        let evidence = if let Some((kind, message)) = self.error.take() {
            Evidence::failure(kind, message)
        } else if !self.report.permission_denials.is_empty() {
            Evidence::failure(
                ty::PERMISSION_DENIED,
                format!(
                    "permission auto-rejected: {}",
                    self.report.permission_denials.join(", ")
                ),
            )
        } else if self.steps > 0 {
            Evidence::Success
        } else {
            Evidence::Inconclusive {
                message: format!(
                    "no finished step; stderr: {}",
                    last_lines(&outcome.stderr_tail, 2)
                ),
            }
        };
        (evidence, self.report)
    }
}

impl OpencodeParser {
    /// `! permission requested: <name> (<patterns>); auto-rejecting`
    fn rejection(&mut self, line: &str) -> bool {
        let Some(i) = line.find("permission requested: ") else {
            return false;
        };
        if !line.contains("auto-rejecting") {
            return false;
        }
        let rest = &line[i + "permission requested: ".len()..];
        let what = rest.split(';').next().unwrap_or(rest).trim();
        self.report.permission_denials.push(what.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::agents::common::testing::{argv, exit, failure, judge_lines};
    use crate::exec::Verdict;
    use serde_json::json;

    /// Recorded from opencode 1.18.33 with an empty HOME and no network: 73 s of
    /// retries, then this error event and exit code 1.
    const UNREACHABLE: &str =
        include_str!("../../../tests/fixtures/agents/opencode-api-unreachable.jsonl");

    const SUCCESS: &str = r#"{"type":"step_start","timestamp":1796006391000,"sessionID":"ses_abc","part":{"type":"step-start"}}
{"type":"tool_use","timestamp":1796006391100,"sessionID":"ses_abc","part":{"type":"tool","tool":"bash","state":{"status":"error","error":"exit 1"}}}
{"type":"step_finish","timestamp":1796006391200,"sessionID":"ses_abc","part":{"type":"step-finish","reason":"tool-calls","cost":0.002,"tokens":{"input":900,"output":40,"reasoning":10,"cache":{"read":100,"write":0}}}}
{"type":"text","timestamp":1796006391300,"sessionID":"ses_abc","part":{"type":"text","text":"All tests pass."}}
{"type":"step_finish","timestamp":1796006391400,"sessionID":"ses_abc","part":{"type":"step-finish","reason":"stop","cost":0.001,"tokens":{"input":100,"output":20,"reasoning":0,"cache":{"read":800,"write":0}}}}
"#;

    #[test]
    fn finished_steps_succeed_with_usage() {
        let stderr = "timestamp=x level=INFO run=1 message=\"llm runtime selected\" llm.runtime=ai-sdk llm.provider=opencode llm.model=big-pickle\n";
        let (v, report) = judge_lines(&OpencodeKind, SUCCESS, stderr, exit(0));
        assert!(matches!(v, Verdict::Succeeded { .. }), "{v:?}");
        let u = &report.usage;
        assert_eq!(u.session_id.as_deref(), Some("ses_abc"));
        assert_eq!(u.model.as_deref(), Some("opencode/big-pickle"));
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.reasoning_tokens,
                u.cached_input_tokens,
                u.num_turns
            ),
            (Some(1000), Some(60), Some(10), Some(900), Some(2))
        );
        assert!(
            u.cost_usd.is_some_and(|c| (c - 0.003).abs() < 1e-12),
            "{:?}",
            u.cost_usd
        );
        assert_eq!(report.final_message.as_deref(), Some("All tests pass."));
        assert_eq!(report.errors, ["bash: exit 1"]);
        let log = "timestamp=t level=ERROR run=1 message=\"stream error\" error.error=\"Cannot connect\"\n";
        let (_, report) = judge_lines(&OpencodeKind, "", log, exit(1));
        assert_eq!(
            report.errors,
            ["message=\"stream error\" error.error=\"Cannot connect\""]
        );
    }

    #[test]
    fn recorded_unreachable_api_is_an_api_error() {
        let (v, report) = judge_lines(&OpencodeKind, UNREACHABLE, "", exit(1));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::API_ERROR);
        assert!(msg.contains("Cannot connect to API"), "{msg}");
        assert_eq!(
            report.usage.session_id.as_deref(),
            Some("ses_dd5ae6054ffen4UubLsFcfoihl")
        );
    }

    #[test]
    fn auto_rejected_permission_with_exit_zero_fails() {
        let stderr = "! permission requested: external_directory (/etc/*); auto-rejecting\n";
        let (v, report) = judge_lines(&OpencodeKind, "", stderr, exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::PERMISSION_DENIED);
        assert!(msg.contains("external_directory"), "{msg}");
        assert_eq!(report.permission_denials, ["external_directory (/etc/*)"]);
        let (v, _) = judge_lines(&OpencodeKind, "", "", exit(0));
        assert_eq!(failure(&v).0, ty::NO_RESULT, "exit 0 with no events");
    }

    #[test]
    fn argv_splits_the_prompt_so_opencode_joins_it_back_unquoted() {
        let prompt = "  fix {issue.title}\nsecond  line ";
        let a = argv(
            &OpencodeKind,
            json!({"prompt": prompt, "model": "anthropic/claude-sonnet-4-5", "permission_mode": "auto", "resume_session": "ses_1"}),
        )
        .expect("valid");
        let sep = a.iter().position(|x| x == "--").expect("end of options");
        assert_eq!(
            a[..sep],
            [
                "opencode",
                "run",
                "--format",
                "json",
                "--print-logs",
                "--log-level",
                "INFO",
                "--model",
                "anthropic/claude-sonnet-4-5",
                "--auto",
                "--session",
                "ses_1"
            ]
        );
        let words = &a[sep + 1..];
        assert!(words.iter().all(|w| !w.contains(' ')), "{words:?}");
        // opencode's own join: arguments with a space are quoted, then joined by " ".
        assert_eq!(words.join(" "), "  fix -rf; $(x)\nsecond  line ");
    }
}
