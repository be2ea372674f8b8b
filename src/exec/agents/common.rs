//! What every agent adapter shares: step parameters, the usage record, the judge that
//! turns a CLI's output stream into a verdict, and [`run_agent`].
//!
//! An adapter only knows its CLI: how to build argv (its `prepare`, with [`AgentParams`])
//! and how to read its output (a [`StreamParser`]). Deciding the verdict from that
//! evidence and the process status is the same for all of them ([`decide`]).

use crate::exec::{
    error_type, run_attempt, status_verdict, ActivityKind, ActivityOutcome, ActivitySpec,
    ActivityStatus, Attempt, AttemptObserver, Judge, Judged, KindError, KindInput, Tee, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spool_core::template_vars::render;
use tokio_util::sync::CancellationToken;

/// Error types of failed agent verdicts, for retry policies' non-retryable lists.
/// `AgentAuth`, `AgentInvalidRequest`, `AgentPermissionDenied`, `AgentMaxTurns` and
/// `AgentBudgetExceeded` will fail the same way again; the others may not.
pub mod agent_error_type {
    /// Not logged in, bad or revoked key, billing problem.
    pub const AUTH: &str = "AgentAuth";
    /// Rate or usage limit hit ("resets 7:10am").
    pub const RATE_LIMITED: &str = "AgentRateLimited";
    /// The model API failed or could not be reached.
    pub const API_ERROR: &str = "AgentApiError";
    /// The CLI refused the invocation: unknown flag, model, session id.
    pub const INVALID_REQUEST: &str = "AgentInvalidRequest";
    /// A tool use was denied or auto-rejected.
    pub const PERMISSION_DENIED: &str = "AgentPermissionDenied";
    pub const MAX_TURNS: &str = "AgentMaxTurns";
    pub const BUDGET_EXCEEDED: &str = "AgentBudgetExceeded";
    /// The agent reported an error of another kind.
    pub const ERROR: &str = "AgentError";
    /// The CLI ended without the final result its protocol promises (crash, empty
    /// output, truncated stream).
    pub const NO_RESULT: &str = "AgentNoResult";
}

/// Tokens, cost and identity of one attempt, under keys that stay stable across CLIs
/// so the engine can store them and enforce budgets. A field is `None` when the CLI
/// does not report it (codex and gemini report no cost, aider no session).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentUsage {
    /// Adapter name: `claude`, `codex`, `gemini`, `aider`, `opencode`.
    pub agent: String,
    pub model: Option<String>,
    /// What a retry passes back as `resume_session`.
    pub session_id: Option<String>,
    pub num_turns: Option<u64>,
    /// Uncached input tokens.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Input tokens served from the prompt cache.
    pub cached_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl AgentUsage {
    pub(crate) fn new(agent: &str) -> Self {
        AgentUsage {
            agent: agent.to_string(),
            ..AgentUsage::default()
        }
    }
}

/// Everything an adapter learnt from one attempt's output. On success it is the
/// verdict's `result` (serialized); [`run_agent`] returns it for every attempt, so the
/// session id of a failed attempt is there for the retry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub usage: AgentUsage,
    /// The agent's last message (capped at [`MESSAGE_LIMIT`] bytes).
    pub final_message: Option<String>,
    /// Tools the CLI denied or auto-rejected, as it named them.
    pub permission_denials: Vec<String>,
    /// Error messages from the stream, oldest first (at most [`ERRORS_KEPT`]).
    pub errors: Vec<String>,
    /// Output lines that were expected to be JSON events but were not.
    pub malformed_lines: u64,
    /// What the agent wrote to `$SPOOL_RESULT_FILE`, if anything.
    pub result: Option<Value>,
}

/// Bytes kept of the final message and of each error message.
pub const MESSAGE_LIMIT: usize = 16 * 1024;
/// Error messages kept in a report; older ones are dropped first.
pub const ERRORS_KEPT: usize = 20;

impl AgentReport {
    /// One line of a CLI's JSON-lines stream as an event: `None` for a blank line, and for
    /// a line that is not JSON, which is counted in `malformed_lines`.
    pub(crate) fn event(&mut self, line: &str) -> Option<Value> {
        if line.trim().is_empty() {
            return None;
        }
        let parsed = serde_json::from_str::<Value>(line).ok();
        if parsed.is_none() {
            self.malformed_lines += 1;
        }
        parsed
    }

    pub(crate) fn new(agent: &str) -> Self {
        AgentReport {
            usage: AgentUsage::new(agent),
            ..AgentReport::default()
        }
    }

    pub(crate) fn push_error(&mut self, message: &str) {
        if self.errors.len() == ERRORS_KEPT {
            self.errors.remove(0);
        }
        self.errors.push(cap(message, MESSAGE_LIMIT));
    }

    pub(crate) fn set_final_message(&mut self, text: &str) {
        self.final_message = Some(cap(text, MESSAGE_LIMIT));
    }
}

/// What the output stream says about the attempt, before the process status is
/// weighed in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evidence {
    /// The CLI's final result says the task completed.
    Success,
    Failure {
        error_type: &'static str,
        message: String,
    },
    /// Nothing conclusive (no final result); `message` says what was seen.
    Inconclusive { message: String },
}

impl Evidence {
    pub(crate) fn failure(error_type: &'static str, message: impl Into<String>) -> Self {
        Evidence::Failure {
            error_type,
            message: message.into(),
        }
    }
}

/// Reads one CLI's output as it streams. Lines arrive whole (pieces of over-long lines
/// are joined before they get here).
pub(crate) trait StreamParser: Send {
    fn stdout_line(&mut self, line: &str);
    fn stderr_line(&mut self, _line: &str) {}
    /// The evidence and the report, once the process has ended.
    fn finish(self: Box<Self>, outcome: &ActivityOutcome) -> (Evidence, AgentReport);
}

/// The verdict from the process status and the stream's evidence. Success needs both
/// to agree: exit 0 and a final result that says success. A timeout, cancel or spawn
/// failure stays what it was.
pub(crate) fn decide(
    outcome: &ActivityOutcome,
    evidence: &Evidence,
    report: &AgentReport,
) -> Verdict {
    let failed = |error_type: &str, message: String| Verdict::Failed {
        error_type: error_type.to_string(),
        message: cap(&message, MESSAGE_LIMIT),
    };
    match (&outcome.status, evidence) {
        (ActivityStatus::Succeeded, Evidence::Success) => match &outcome.result_error {
            Some(e) => failed(error_type::INVALID_RESULT, e.clone()),
            None => Verdict::Succeeded {
                result: Some(serde_json::to_value(report).unwrap_or(Value::Null)),
            },
        },
        (
            ActivityStatus::Succeeded,
            Evidence::Failure {
                error_type,
                message,
            },
        ) => failed(error_type, format!("{message} (exit code 0)")),
        (ActivityStatus::Succeeded, Evidence::Inconclusive { message }) => failed(
            agent_error_type::NO_RESULT,
            format!("exited with code 0 without a final result: {message}"),
        ),
        (
            ActivityStatus::Failed { exit_code },
            Evidence::Failure {
                error_type,
                message,
            },
        ) => failed(error_type, format!("{message} (exit code {exit_code})")),
        (ActivityStatus::Failed { exit_code }, Evidence::Success) => failed(
            error_type::EXIT_CODE,
            format!("exited with code {exit_code} after reporting success"),
        ),
        (ActivityStatus::Failed { exit_code }, Evidence::Inconclusive { message }) => failed(
            error_type::EXIT_CODE,
            format!("exited with code {exit_code}: {message}"),
        ),
        _ => status_verdict(outcome),
    }
}

/// `s` cut to at most `limit` bytes at a character boundary, marked when cut.
pub(crate) fn cap(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The last non-empty lines of `text`, joined by " | ", for messages about output
/// that was not structured.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let from = lines.len().saturating_sub(n);
    let joined = lines[from..].join(" | ");
    if joined.is_empty() {
        "no output".to_string()
    } else {
        cap(&joined, 2000)
    }
}

/// Longest line exec hands to observers in one piece (`exec::run`'s `MAX_LINE`):
/// longer lines arrive as several pieces of exactly this size, then the rest.
const PIECE: usize = 64 * 1024;
/// A joined line longer than this is dropped rather than buffered further.
const JOINED_LIMIT: usize = 16 * 1024 * 1024;

/// Re-joins the pieces exec splits over-long lines into, so a large JSON event (a
/// tool result, a long message) still parses.
#[derive(Debug, Default)]
struct Joiner {
    pending: Vec<u8>,
    overflow: bool,
}

impl Joiner {
    /// The complete line, once `piece` ends one.
    fn push(&mut self, piece: &[u8]) -> Option<Vec<u8>> {
        if piece.len() == PIECE {
            // A full-size piece may be a cut or a line of exactly that size; a line
            // that parses on its own is taken as whole.
            if self.pending.is_empty() && serde_json::from_slice::<Value>(piece).is_ok() {
                return Some(piece.to_vec());
            }
            if self.pending.len() + piece.len() > JOINED_LIMIT {
                self.overflow = true;
                self.pending.clear();
            } else if !self.overflow {
                self.pending.extend_from_slice(piece);
            }
            return None;
        }
        if std::mem::take(&mut self.overflow) {
            self.pending.clear();
            return Some(b"(line over the size limit dropped)".to_vec());
        }
        if self.pending.is_empty() {
            return Some(piece.to_vec());
        }
        self.pending.extend_from_slice(piece);
        Some(std::mem::take(&mut self.pending))
    }

    fn flush(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

/// The judge of every agent kind: feeds whole lines to the adapter's parser, then
/// decides: success needs exit 0 and a final result that says so.
pub struct AgentJudge {
    parser: Box<dyn StreamParser>,
    stdout: Joiner,
    stderr: Joiner,
}

impl AgentJudge {
    pub(crate) fn new(parser: Box<dyn StreamParser>) -> Self {
        AgentJudge {
            parser,
            stdout: Joiner::default(),
            stderr: Joiner::default(),
        }
    }

    /// The verdict together with the report (usage, session id, errors).
    pub fn finish(mut self, outcome: &ActivityOutcome) -> (Verdict, AgentReport) {
        if let Some(line) = self.stdout.flush() {
            self.parser.stdout_line(&String::from_utf8_lossy(&line));
        }
        if let Some(line) = self.stderr.flush() {
            self.parser.stderr_line(&String::from_utf8_lossy(&line));
        }
        let (evidence, mut report) = self.parser.finish(outcome);
        report.result = outcome.result_json.clone();
        let verdict = decide(outcome, &evidence, &report);
        (verdict, report)
    }
}

impl AttemptObserver for AgentJudge {
    fn stdout_line(&mut self, line: &[u8]) {
        if let Some(line) = self.stdout.push(line) {
            self.parser.stdout_line(&String::from_utf8_lossy(&line));
        }
    }
    fn stderr_line(&mut self, line: &[u8]) {
        if let Some(line) = self.stderr.push(line) {
            self.parser.stderr_line(&String::from_utf8_lossy(&line));
        }
    }
}

impl Judge for AgentJudge {
    fn verdict(self: Box<Self>, outcome: &ActivityOutcome) -> Verdict {
        self.finish(outcome).0
    }
}

/// The judged outcome of an agent attempt and what its output said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentJudged {
    pub judged: Judged,
    pub report: AgentReport,
}

/// Like [`crate::exec::run_judged`], but also returns the report: a failed or timed
/// out attempt's session id and usage are needed to resume it and to count its cost.
pub async fn run_agent(
    kind: &dyn AgentKind,
    spec: &ActivitySpec,
    attempt: &Attempt,
    cancel: &CancellationToken,
    observer: &mut dyn AttemptObserver,
) -> AgentJudged {
    let mut judge = kind.agent_judge();
    let outcome = {
        let mut tee = Tee {
            first: &mut judge,
            second: observer,
        };
        run_attempt(spec, attempt, cancel, &mut tee).await
    };
    let (verdict, report) = judge.finish(&outcome);
    AgentJudged {
        judged: Judged { outcome, verdict },
        report,
    }
}

/// An activity kind that runs a coding-agent CLI.
pub trait AgentKind: ActivityKind {
    /// A fresh judge for one attempt, with access to its report.
    fn agent_judge(&self) -> AgentJudge;
}

/// How the prompt reaches the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Rendered prompt text, passed as one argument (or split, see opencode).
    Text(String),
    /// Path of a file the caller wrote; only for CLIs with a prompt-file option.
    File(String),
}

/// The parameters all agents share, parsed and rendered. Agent-specific keys are left
/// in `rest` for the adapter, which must consume them all.
#[derive(Debug, Clone)]
pub(crate) struct AgentParams {
    pub program: String,
    pub prompt: Prompt,
    pub model: Option<String>,
    pub resume_session: Option<String>,
    pub extra_args: Vec<String>,
    rest: Map<String, Value>,
    agent: &'static str,
}

/// Linux refuses a single argument of 128 KiB or more (`MAX_ARG_STRLEN`, counting
/// the terminating NUL) with E2BIG; say so before spawning.
pub(crate) const ARG_LIMIT: usize = 128 * 1024 - 1;

impl AgentParams {
    /// Parses the common keys: `prompt` or `prompt_file` (rendered), `model`,
    /// `resume_session`, `extra_args` (literal), `program`.
    pub(crate) fn parse(
        agent: &'static str,
        input: &KindInput<'_>,
        default_program: &str,
    ) -> Result<AgentParams, KindError> {
        let Value::Object(map) = input.params else {
            return Err(invalid(agent, "expected an object with a `prompt`".into()));
        };
        let mut rest = map.clone();
        let prompt = rest.remove("prompt");
        let prompt_file = rest.remove("prompt_file");
        let render_str = |key: &str, v: &Value| -> Result<String, KindError> {
            let Value::String(s) = v else {
                return Err(invalid(agent, format!("`{key}` must be a string, not {v}")));
            };
            render(s, input.vars).map_err(|source| KindError::Template {
                kind: agent.to_string(),
                source,
            })
        };
        let prompt = match (prompt, prompt_file) {
            (Some(p), None) => Prompt::Text(render_str("prompt", &p)?),
            (None, Some(f)) => Prompt::File(render_str("prompt_file", &f)?),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    agent,
                    "give either `prompt` or `prompt_file`, not both".into(),
                ))
            }
            (None, None) => return Err(invalid(agent, "`prompt` is required".into())),
        };
        let mut params = AgentParams {
            program: default_program.to_string(),
            prompt,
            model: None,
            resume_session: None,
            extra_args: Vec::new(),
            rest,
            agent,
        };
        if let Some(p) = params.take_string("program")? {
            if p.is_empty() {
                return Err(invalid(agent, "`program` is empty".into()));
            }
            params.program = p;
        }
        params.model = params.take_flag_value("model")?;
        params.resume_session = params.take_session("resume_session")?;
        if let Some(v) = params.rest.remove("extra_args") {
            let Value::Array(items) = v else {
                return Err(invalid(
                    agent,
                    "`extra_args` must be an array of strings".into(),
                ));
            };
            params.extra_args = items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(invalid(
                        agent,
                        format!("`extra_args[{i}]` is {other}, not a string"),
                    )),
                })
                .collect::<Result<_, _>>()?;
        }
        match &params.prompt {
            Prompt::Text(t) => check_text(agent, "prompt", t)?,
            Prompt::File(f) => check_text(agent, "prompt_file", f)?,
        }
        Ok(params)
    }

    pub(crate) fn invalid(&self, message: String) -> KindError {
        invalid(self.agent, message)
    }

    /// Removes a parameter as it is, for an adapter's own checks.
    pub(crate) fn take_raw(&mut self, key: &str) -> Option<Value> {
        self.rest.remove(key).filter(|v| !v.is_null())
    }

    /// Removes an optional string parameter.
    pub(crate) fn take_string(&mut self, key: &str) -> Result<Option<String>, KindError> {
        match self.rest.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(format!("`{key}` must be a string, not {other}"))),
        }
    }

    /// An optional string that becomes a flag's value: it must not be empty or look
    /// like a flag itself.
    pub(crate) fn take_flag_value(&mut self, key: &str) -> Result<Option<String>, KindError> {
        let v = self.take_string(key)?;
        if let Some(s) = &v {
            if s.is_empty() || s.starts_with('-') || s.contains('\0') {
                return Err(self.invalid(format!("`{key}` {s:?} is not a valid value")));
            }
        }
        Ok(v)
    }

    /// An optional session id: letters, digits, `-` and `_`, not starting with `-`.
    pub(crate) fn take_session(&mut self, key: &str) -> Result<Option<String>, KindError> {
        let v = self.take_string(key)?;
        if let Some(s) = &v {
            let ok = !s.is_empty()
                && s.len() <= 200
                && !s.starts_with('-')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(self.invalid(format!("`{key}` {s:?} is not a session id")));
            }
        }
        Ok(v)
    }

    pub(crate) fn take_u64(&mut self, key: &str) -> Result<Option<u64>, KindError> {
        match self.rest.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Ok(n.as_u64()),
            Some(other) => {
                Err(self.invalid(format!("`{key}` must be a positive integer, not {other}")))
            }
        }
    }

    pub(crate) fn take_f64(&mut self, key: &str) -> Result<Option<f64>, KindError> {
        match self.rest.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x > 0.0 && x.is_finite()) => {
                Ok(n.as_f64())
            }
            Some(other) => {
                Err(self.invalid(format!("`{key}` must be a positive number, not {other}")))
            }
        }
    }

    pub(crate) fn take_bool(&mut self, key: &str) -> Result<Option<bool>, KindError> {
        match self.rest.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.invalid(format!("`{key}` must be true or false, not {other}"))),
        }
    }

    /// An optional value that must be one of `allowed`.
    pub(crate) fn take_choice(
        &mut self,
        key: &str,
        allowed: &[&str],
    ) -> Result<Option<String>, KindError> {
        let v = self.take_string(key)?;
        if let Some(s) = &v {
            if !allowed.contains(&s.as_str()) {
                return Err(self.invalid(format!(
                    "`{key}` {s:?} is not one of {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(v)
    }

    /// Fails on any parameter the adapter did not take.
    pub(crate) fn finish(&self) -> Result<(), KindError> {
        match self.rest.keys().next() {
            None => Ok(()),
            Some(k) => Err(self.invalid(format!("unknown parameter `{k}`"))),
        }
    }

    /// The prompt text, for CLIs that take it only as an argument.
    pub(crate) fn prompt_text(&self) -> Result<&str, KindError> {
        match &self.prompt {
            Prompt::Text(t) => Ok(t),
            Prompt::File(_) => Err(self.invalid(format!(
                "{} has no prompt-file option; pass the prompt as `prompt`",
                self.agent
            ))),
        }
    }

    /// Rejects a prompt the CLI would run as a command instead of reading as text
    /// (`/compact`, aider's `!shell`): issue text must never become a command.
    pub(crate) fn reject_command_prefix(
        &self,
        text: &str,
        prefixes: &[char],
    ) -> Result<(), KindError> {
        match text.trim_start().chars().next() {
            Some(c) if prefixes.contains(&c) => Err(self.invalid(format!(
                "the prompt starts with `{c}`, which {} runs as a command; start the \
                 template with text of its own",
                self.agent
            ))),
            _ => Ok(()),
        }
    }
}

fn invalid(agent: &str, message: String) -> KindError {
    KindError::InvalidParams {
        kind: agent.to_string(),
        message,
    }
}

fn check_text(agent: &str, key: &str, text: &str) -> Result<(), KindError> {
    if text.trim().is_empty() {
        return Err(invalid(agent, format!("`{key}` is empty")));
    }
    if text.contains('\0') {
        return Err(invalid(agent, format!("`{key}` contains a NUL byte")));
    }
    if text.len() > ARG_LIMIT {
        return Err(invalid(
            agent,
            format!(
                "`{key}` is {} bytes; one argument can hold at most {ARG_LIMIT}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// The spec for an agent: `argv` on top of what the engine decided. Output is
/// liveness (every event line resets the idle deadline, which exec always does); the
/// adapters ask their CLIs for event streams so a working agent keeps printing.
pub(crate) fn agent_spec(base: ActivitySpec, argv: Vec<String>) -> ActivitySpec {
    ActivitySpec { argv, ..base }
}

/// Reads a `u64` at `key` of a JSON object, if it is one.
pub(crate) fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Adds `n` to an optional counter.
pub(crate) fn add(total: &mut Option<u64>, n: Option<u64>) {
    if let Some(n) = n {
        *total = Some(total.unwrap_or(0).saturating_add(n));
    }
}

/// Classifies an error text by the words CLIs and APIs use. Falls back to `default`.
pub(crate) fn classify_text(text: &str, default: &'static str) -> &'static str {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&[
        "not logged in",
        "please run /login",
        "authenticat",
        "unauthorized",
        "invalid api key",
        "invalid x-api-key",
        "auth method",
        "credit balance",
        "billing",
    ]) || has_word(&t, "401")
    {
        agent_error_type::AUTH
    } else if any(&[
        "rate limit",
        "rate_limit",
        "ratelimit",
        "usage limit",
        "hit your",
        "quota",
        "try again at",
    ]) || has_word(&t, "429")
    {
        agent_error_type::RATE_LIMITED
    } else if any(&[
        "unable to connect",
        "cannot connect",
        "connection",
        "network",
        "timed out",
        "overloaded",
        "internal server error",
        "service unavailable",
        "bad gateway",
        "name does not resolve",
        "failed to lookup",
        "fetch failed",
        "api error",
        "stream disconnected",
    ]) {
        agent_error_type::API_ERROR
    } else {
        default
    }
}

/// Whether `word` occurs in `text` with no letter or digit on either side.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Runs a parser over recorded output without a process, for the adapters' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// Feeds `stdout` lines and `stderr` lines to `kind`'s judge and judges an
    /// attempt that ended with `status`.
    pub(crate) fn judge_lines(
        kind: &dyn AgentKind,
        stdout: &str,
        stderr: &str,
        status: ActivityStatus,
    ) -> (Verdict, AgentReport) {
        let mut judge = kind.agent_judge();
        for line in stdout.lines() {
            judge.stdout_line(line.as_bytes());
        }
        for line in stderr.lines() {
            judge.stderr_line(line.as_bytes());
        }
        let at = Utc.timestamp_opt(0, 0).single().expect("epoch");
        let outcome = ActivityOutcome {
            status,
            attempt: 1,
            pid: Some(1),
            started_at: at,
            ended_at: at,
            duration_ms: 0,
            stdout_tail: stdout.to_string(),
            stderr_tail: stderr.to_string(),
            stdout_bytes: stdout.len() as u64,
            stderr_bytes: stderr.len() as u64,
            result_json: None,
            result_error: None,
            last_heartbeat: None,
            heartbeat_count: 0,
            warnings: Vec::new(),
        };
        judge.finish(&outcome)
    }

    pub(crate) fn exit(code: i32) -> ActivityStatus {
        if code == 0 {
            ActivityStatus::Succeeded
        } else {
            ActivityStatus::Failed { exit_code: code }
        }
    }

    /// The error type and message of a failed verdict; panics otherwise.
    pub(crate) fn failure(v: &Verdict) -> (&str, &str) {
        match v {
            Verdict::Failed {
                error_type,
                message,
            } => (error_type, message),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A prepared argv for `params`, with `{issue.title}` = `"-rf; $(x)"`.
    pub(crate) fn argv(kind: &dyn AgentKind, params: Value) -> Result<Vec<String>, KindError> {
        let vars = serde_json::json!({"issue": {"id": "bd-1", "title": "-rf; $(x)"}});
        kind.prepare(KindInput {
            params: &params,
            vars: &vars,
            base: ActivitySpec::new(Vec::<String>::new()),
        })
        .map(|s| s.argv)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::exec::agents::ClaudeKind;
    use serde_json::json;

    #[test]
    fn common_params_are_checked_with_reasons() {
        let cases = [
            (json!("hi"), "object"),
            (json!({}), "`prompt` is required"),
            (json!({"prompt": "a", "prompt_file": "f"}), "not both"),
            (json!({"prompt": "  "}), "empty"),
            (json!({"prompt": 3}), "must be a string"),
            (json!({"prompt": "{issue.nope}"}), "{issue.nope}"),
            (json!({"prompt": "a", "model": "--evil"}), "`model`"),
            (json!({"prompt": "a", "resume_session": "-x"}), "session id"),
            (
                json!({"prompt": "a", "resume_session": "a b"}),
                "session id",
            ),
            (json!({"prompt": "a", "extra_args": "--x"}), "array"),
            (json!({"prompt": "a", "extra_args": [1]}), "extra_args[0]"),
            (json!({"prompt": "a", "program": ""}), "`program` is empty"),
            (
                json!({"prompt": "a", "shell": true}),
                "unknown parameter `shell`",
            ),
            (json!({"prompt": "a\u{0}b"}), "NUL"),
            (json!({"prompt": "a", "max_turns": 0}), "positive integer"),
            (
                json!({"prompt": "a", "permission_mode": "yolo"}),
                "not one of",
            ),
        ];
        for (params, needle) in cases {
            let e = argv(&ClaudeKind, params.clone()).expect_err("invalid");
            assert!(e.to_string().contains(needle), "{params}: {e}");
        }
        let big = "x".repeat(ARG_LIMIT + 1);
        let e = argv(&ClaudeKind, json!({ "prompt": big })).expect_err("too long");
        assert!(e.to_string().contains("at most"), "{e}");
    }

    #[test]
    fn a_failed_status_wins_over_a_success_result() {
        let stream = r#"{"type":"result","subtype":"success","is_error":false,"result":"done"}"#;
        let (v, _) = judge_lines(&ClaudeKind, stream, "", exit(2));
        assert_eq!(
            failure(&v),
            (
                error_type::EXIT_CODE,
                "exited with code 2 after reporting success"
            )
        );
        let (v, _) = judge_lines(
            &ClaudeKind,
            stream,
            "",
            ActivityStatus::Signaled {
                signal: 9,
                name: "SIGKILL".into(),
            },
        );
        assert_eq!(failure(&v).0, error_type::SIGNALED);
        let (v, _) = judge_lines(
            &ClaudeKind,
            stream,
            "",
            ActivityStatus::TimedOut {
                kind: crate::exec::TimeoutKind::Idle,
            },
        );
        assert_eq!(
            v,
            Verdict::TimedOut {
                kind: crate::exec::TimeoutKind::Idle
            }
        );
    }

    #[test]
    fn joiner_rejoins_cut_lines_and_keeps_exact_size_lines() {
        let mut j = Joiner::default();
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(PIECE * 2));
        let bytes = big.as_bytes();
        assert_eq!(j.push(&bytes[..PIECE]), None);
        assert_eq!(j.push(&bytes[PIECE..2 * PIECE]), None);
        assert_eq!(j.push(&bytes[2 * PIECE..]).as_deref(), Some(bytes));
        let exact = format!("\"{}\"", "y".repeat(PIECE - 2));
        assert_eq!(j.push(exact.as_bytes()).as_deref(), Some(exact.as_bytes()));
        assert_eq!(j.push(b"short").as_deref(), Some(&b"short"[..]));
        assert_eq!(j.flush(), None);
    }

    #[test]
    fn cap_cuts_at_char_boundaries() {
        assert_eq!(cap("héllo", 2), "h…");
        assert_eq!(cap("abc", 3), "abc");
    }

    #[test]
    fn classify_text_finds_auth_rate_and_network() {
        assert_eq!(
            classify_text("Not logged in · Please run /login", "x"),
            agent_error_type::AUTH
        );
        assert_eq!(
            classify_text("You've hit your session limit · resets 7:10am", "x"),
            agent_error_type::RATE_LIMITED
        );
        assert_eq!(
            classify_text(
                "API Error: Unable to connect to API (ConnectionRefused)",
                "x"
            ),
            agent_error_type::API_ERROR
        );
        assert_eq!(
            classify_text("status 401 from server", "x"),
            agent_error_type::AUTH
        );
        assert_eq!(classify_text("used 14012 tokens", "x"), "x");
        assert_eq!(classify_text("something odd", "x"), "x");
    }
}
