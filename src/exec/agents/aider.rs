//! aider, scripted: `aider --model=<m> --yes-always ... --message=<prompt>` (or
//! `--message-file=<path>`).
//!
//! Checked against aider 0.86.2. aider has no JSON output, so the judge reads its text:
//! `Model: <name> with ...`, one `Tokens: 2.3k sent, 150 received.` line per model
//! answer (with `Cost: $0.01 message, $0.02 session.` when the price is known), and
//! `litellm.<Name>Error: ...` when a request fails. aider exits 0 after an API error,
//! so success needs a token report after the last error. A model is required: without
//! one and without keys aider starts a browser login and waits five minutes.
//! There is no session to resume.

use super::common::{
    add, agent_error_type as ty, agent_spec, last_lines, AgentJudge, AgentKind, AgentParams,
    AgentReport, Evidence, Prompt, StreamParser,
};
use crate::exec::{ActivityKind, ActivityOutcome, ActivitySpec, Judge, KindError, KindInput};
use serde_json::Value;

/// `aider`: params `prompt` or `prompt_file` (required; a file passed with
/// `--message-file`, whose content must not start with `/` or `!` either: aider runs
/// those as commands), `model` (required), `files` (paths to edit, `--file`),
/// `auto_commits` (default false: spool commits), `extra_args`, `program`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AiderKind;

impl AiderKind {
    pub const NAME: &'static str = "aider";
}

impl ActivityKind for AiderKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn prepare(&self, input: KindInput<'_>) -> Result<ActivitySpec, KindError> {
        let mut p = AgentParams::parse(Self::NAME, &input, "aider")?;
        let auto_commits = p.take_bool("auto_commits")?.unwrap_or(false);
        let files: Vec<String> = p.take_files()?.unwrap_or_default();
        p.finish()?;
        if p.resume_session.is_some() {
            return Err(p.invalid("aider cannot resume a session".into()));
        }
        let Some(model) = p.model.clone() else {
            return Err(p.invalid(
                "`model` is required: without one aider waits for a browser login".into(),
            ));
        };
        let mut argv: Vec<String> = vec![
            p.program.clone(),
            format!("--model={model}"),
            "--yes-always".into(),
            "--no-pretty".into(),
            "--no-fancy-input".into(),
            "--no-check-update".into(),
            "--no-show-release-notes".into(),
            "--no-analytics".into(),
            "--no-detect-urls".into(),
            "--no-gitignore".into(),
            if auto_commits {
                "--auto-commits".into()
            } else {
                "--no-auto-commits".into()
            },
        ];
        argv.extend(files.into_iter().map(|f| format!("--file={f}")));
        argv.extend(p.extra_args.iter().cloned());
        match &p.prompt {
            Prompt::Text(text) => {
                p.reject_command_prefix(text, &['/', '!'])?;
                argv.push(format!("--message={text}"));
            }
            Prompt::File(path) => argv.push(format!("--message-file={path}")),
        }
        Ok(agent_spec(input.base, argv))
    }

    fn judge(&self) -> Box<dyn Judge> {
        Box::new(self.agent_judge())
    }
}

impl AgentKind for AiderKind {
    fn agent_judge(&self) -> AgentJudge {
        AgentJudge::new(Box::new(AiderParser::default()))
    }
}

impl AgentParams {
    /// `files`: an array of non-empty paths that do not look like flags.
    fn take_files(&mut self) -> Result<Option<Vec<String>>, KindError> {
        let Some(v) = self.take_raw("files") else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(self.invalid("`files` must be an array of paths".into()));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() && !s.contains('\0') => Ok(s.clone()),
                other => Err(self.invalid(format!("`files[{i}]` {other} is not a path"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[derive(Debug)]
pub(crate) struct AiderParser {
    report: AgentReport,
    /// An error not followed by a model answer yet.
    pending_error: Option<(&'static str, String)>,
    /// Lines of the pending error's text still to append (litellm wraps its message).
    continuation: usize,
    answered: bool,
}

impl Default for AiderParser {
    fn default() -> Self {
        AiderParser {
            report: AgentReport::new(AiderKind::NAME),
            pending_error: None,
            continuation: 0,
            answered: false,
        }
    }
}

impl StreamParser for AiderParser {
    fn stdout_line(&mut self, line: &str) {
        self.line(line);
    }
    fn stderr_line(&mut self, line: &str) {
        self.line(line);
    }

    fn finish(mut self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport) {
        let evidence = match self.pending_error.take() {
            Some((kind, message)) => Evidence::failure(kind, message),
            None if self.answered => Evidence::Success,
            None => Evidence::Inconclusive {
                message: format!(
                    "no token report, so the model never answered; output: {}",
                    last_lines(&outcome.stdout_tail, 3)
                ),
            },
        };
        (evidence, self.report)
    }
}

impl AiderParser {
    fn line(&mut self, line: &str) {
        let line = line.trim();
        let marker = [
            "Tokens: ",
            "Cost: ",
            "Model: ",
            "Main model: ",
            "litellm.",
            "Retrying",
        ]
        .iter()
        .any(|m| line.starts_with(m));
        if marker {
            self.continuation = 0;
        }
        if self.continuation > 0 {
            if line.is_empty() {
                self.continuation = 0;
            } else if let Some((_, message)) = &mut self.pending_error {
                self.continuation -= 1;
                message.push(' ');
                message.push_str(line);
                return;
            }
        }
        if let Some(rest) = line.strip_prefix("Tokens: ") {
            self.tokens(rest);
            self.answered = true;
            self.pending_error = None;
        } else if let Some(rest) = line.strip_prefix("Cost: ") {
            self.cost(rest);
        } else if let Some(rest) = line
            .strip_prefix("Model: ")
            .or_else(|| line.strip_prefix("Main model: "))
        {
            let name = rest.split(" with ").next().unwrap_or(rest).trim();
            self.report.usage.model = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("litellm.") {
            let name = rest.split(':').next().unwrap_or("");
            if name.ends_with("Error") || name == "Timeout" {
                self.report.push_error(line);
                self.pending_error = Some((litellm_type(name), line.to_string()));
                self.continuation = 3;
            }
        }
        // "Tokens: ... received. Cost: ..." shares a line unless cache counts are shown.
        if let Some(i) = line.find(" Cost: $") {
            if line.starts_with("Tokens: ") {
                self.cost(&line[i + " Cost: ".len()..]);
            }
        }
    }

    /// `2.3k sent, 1.2k cache write, 500 cache hit, 150 received.`
    fn tokens(&mut self, rest: &str) {
        let head = rest.split(" Cost:").next().unwrap_or(rest);
        let usage = &mut self.report.usage;
        add(&mut usage.num_turns, Some(1));
        for part in head.trim_end_matches('.').split(", ") {
            let (count, what) = part.split_once(' ').unwrap_or((part, ""));
            let Some(n) = parse_count(count) else {
                continue;
            };
            match what.trim_end_matches('.') {
                "sent" => add(&mut usage.input_tokens, Some(n)),
                "received" => add(&mut usage.output_tokens, Some(n)),
                "cache write" => add(&mut usage.cache_creation_input_tokens, Some(n)),
                "cache hit" => add(&mut usage.cached_input_tokens, Some(n)),
                _ => {}
            }
        }
    }

    /// `$0.01 message, $0.02 session.`: the session figure is the running total.
    fn cost(&mut self, rest: &str) {
        for part in rest.trim_end_matches('.').split(", ") {
            if let Some(amount) = part.strip_suffix(" session") {
                if let Ok(x) = amount.trim_start_matches('$').parse::<f64>() {
                    self.report.usage.cost_usd = Some(x);
                }
            }
        }
    }
}

/// aider's rounded counts: `950`, `2.3k`, `12k`.
fn parse_count(s: &str) -> Option<u64> {
    match s.strip_suffix('k') {
        Some(k) => k.parse::<f64>().ok().map(|x| (x * 1000.0).round() as u64),
        None => s.parse().ok(),
    }
}

fn litellm_type(name: &str) -> &'static str {
    match name {
        "AuthenticationError" => ty::AUTH,
        "RateLimitError" | "RouterRateLimitError" => ty::RATE_LIMITED,
        "BudgetExceededError" => ty::BUDGET_EXCEEDED,
        "BadRequestError"
        | "NotFoundError"
        | "ContextWindowExceededError"
        | "UnsupportedParamsError"
        | "InvalidRequestError" => ty::INVALID_REQUEST,
        "ContentPolicyViolationError" => ty::ERROR,
        _ => ty::API_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::agents::common::testing::{argv, exit, failure, judge_lines};
    use crate::exec::Verdict;
    use serde_json::json;

    /// Recorded from aider 0.86.2 with `--model anthropic/claude-sonnet-4-5`, no key and
    /// no network: exit code 0.
    const NO_KEY: &str = include_str!("../../../tests/fixtures/agents/aider-no-api-key.txt");

    #[test]
    fn recorded_missing_key_with_exit_zero_is_an_auth_failure() {
        let (v, report) = judge_lines(&AiderKind, NO_KEY, "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::AUTH);
        assert!(msg.contains("AuthenticationError"), "{msg}");
        assert!(
            msg.contains("set `ANTHROPIC_API_KEY`"),
            "wrapped lines joined: {msg}"
        );
        assert_eq!(
            report.usage.model.as_deref(),
            Some("anthropic/claude-sonnet-4-5")
        );
    }

    #[test]
    fn token_reports_make_a_success_with_usage() {
        let out = "Aider v0.86.2\nModel: gpt-4o with diff edit format\n\
                   litellm.APIConnectionError: connection reset\nRetrying in 0.2 seconds...\n\
                   Applied edit to a.py\n\
                   Tokens: 2.3k sent, 150 received. Cost: $0.0061 message, $0.0061 session.\n\
                   Tokens: 12k sent, 1.2k cache write, 500 cache hit, 1.1k received.\n\
                   Cost: $0.05 message, $0.06 session.\n";
        let (v, report) = judge_lines(&AiderKind, out, "", exit(0));
        assert!(matches!(v, Verdict::Succeeded { .. }), "{v:?}");
        let u = &report.usage;
        assert_eq!(u.model.as_deref(), Some("gpt-4o"));
        assert_eq!(u.num_turns, Some(2));
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cache_creation_input_tokens,
                u.cached_input_tokens
            ),
            (Some(14300), Some(1250), Some(1200), Some(500))
        );
        assert_eq!(u.cost_usd, Some(0.06));
    }

    #[test]
    fn no_token_report_is_a_failure() {
        let (v, _) = judge_lines(&AiderKind, "Aider v0.86.2\n", "", exit(0));
        let (ty, msg) = failure(&v);
        assert_eq!(ty, ty::NO_RESULT);
        assert!(msg.contains("never answered"), "{msg}");
        let limited = "Tokens: 1k sent, 5 received.\nlitellm.RateLimitError: slow down\n";
        let (v, _) = judge_lines(&AiderKind, limited, "", exit(0));
        assert_eq!(
            failure(&v).0,
            ty::RATE_LIMITED,
            "an error after the last answer counts"
        );
    }

    #[test]
    fn argv_needs_a_model_and_refuses_commands() {
        let a = argv(
            &AiderKind,
            json!({"prompt": "{issue.title}", "model": "gpt-4o", "files": ["src/a.rs"]}),
        )
        .expect("valid");
        assert_eq!(
            a,
            [
                "aider",
                "--model=gpt-4o",
                "--yes-always",
                "--no-pretty",
                "--no-fancy-input",
                "--no-check-update",
                "--no-show-release-notes",
                "--no-analytics",
                "--no-detect-urls",
                "--no-gitignore",
                "--no-auto-commits",
                "--file=src/a.rs",
                "--message=-rf; $(x)"
            ]
        );
        let a = argv(
            &AiderKind,
            json!({"prompt_file": "/tmp/p.md", "model": "m", "auto_commits": true}),
        )
        .expect("valid");
        assert_eq!(
            a.last().map(String::as_str),
            Some("--message-file=/tmp/p.md")
        );
        assert!(a.contains(&"--auto-commits".to_string()));
        for (params, needle) in [
            (json!({"prompt": "x"}), "`model` is required"),
            (
                json!({"prompt": "!rm -rf /", "model": "m"}),
                "starts with `!`",
            ),
            (
                json!({"prompt": "/run id", "model": "m"}),
                "starts with `/`",
            ),
            (
                json!({"prompt": "x", "model": "m", "resume_session": "s"}),
                "cannot resume",
            ),
            (
                json!({"prompt": "x", "model": "m", "files": [""]}),
                "not a path",
            ),
        ] {
            let e = argv(&AiderKind, params.clone()).expect_err("invalid");
            assert!(e.to_string().contains(needle), "{params}: {e}");
        }
    }
}
