//! One agent step of a run: `spool agent-step AGENT STEP PROMPT`, the command the
//! `implement` template runs for plan, implement and test.
//!
//! `AGENT` is the configured agent as JSON (`{"kind": ..., "params": {...}}`), put in the
//! run's input by the daemon. A `command` agent is started as `PROGRAM STEP PROMPT`; a
//! coding-agent kind (`claude`, `codex`, ...) gets a prompt naming the step and is judged
//! by its event stream (`exec::agents`), so an agent that exits 0 after an error still
//! fails the step. The process runs through `exec` like any activity; a SIGTERM to this
//! process stops it with a grace period shorter than the one this process gets.

use crate::exec::agents::{agent_kind, run_agent, AgentReport, AGENT_KINDS};
use crate::exec::{
    run_attempt, status_verdict, ActivitySpec, Attempt, KindInput, Verdict, DEFAULT_CANCEL_GRACE,
};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The kind name of agents started as `PROGRAM STEP PROMPT`.
pub const COMMAND_KIND: &str = "command";

/// A configured agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDef {
    pub kind: String,
    /// The kind's parameters (`program`, `model`, `permission_mode`, ...).
    pub params: Map<String, Value>,
}

impl AgentDef {
    /// A `command` agent running `program`.
    pub fn command(program: &str) -> AgentDef {
        let mut params = Map::new();
        params.insert("program".into(), Value::String(program.to_string()));
        AgentDef {
            kind: COMMAND_KIND.into(),
            params,
        }
    }

    /// The program the agent runs: `program`, else the CLI named like the kind.
    pub fn program(&self) -> &str {
        self.params
            .get("program")
            .and_then(Value::as_str)
            .unwrap_or(&self.kind)
    }

    /// Where the program is, relative paths taken from `cwd`, bare names from `PATH`;
    /// `None` when it is not there, which is a configuration error before any claim.
    pub fn locate(&self, cwd: &Path) -> Option<PathBuf> {
        let program = Path::new(self.program());
        let is_exe = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if program.components().count() > 1 {
            let p = cwd.join(program);
            return is_exe(&p).then_some(p);
        }
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(program))
            .find(|p| is_exe(p))
    }

    /// The JSON form carried in a run's input.
    pub fn to_json(&self) -> String {
        json!({"kind": self.kind, "params": self.params}).to_string()
    }

    pub fn from_json(text: &str) -> Result<AgentDef, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("agent JSON: {e}"))?;
        let kind = v["kind"]
            .as_str()
            .ok_or("agent JSON: no \"kind\"")?
            .to_string();
        let params = v["params"].as_object().cloned().unwrap_or_default();
        let def = AgentDef { kind, params };
        def.validate()?;
        Ok(def)
    }

    /// Checks the kind and its parameters without starting anything (a kind's argv is
    /// built from them with a sample prompt).
    pub fn validate(&self) -> Result<(), String> {
        if self.kind == COMMAND_KIND {
            let program = self.params.get("program").and_then(Value::as_str);
            if program.is_none_or(|p| p.trim().is_empty()) {
                return Err("a `command` agent needs a `program`".into());
            }
            if let Some(k) = self.params.keys().find(|k| *k != "program") {
                return Err(format!("a `command` agent takes only `program`, not `{k}`"));
            }
            return Ok(());
        }
        let Some(kind) = agent_kind(&self.kind) else {
            return Err(format!(
                "unknown agent kind {:?} (command, {})",
                self.kind,
                AGENT_KINDS.join(", ")
            ));
        };
        if self.params.contains_key("prompt") || self.params.contains_key("prompt_file") {
            return Err("the prompt comes from the issue; do not set `prompt`".into());
        }
        let params = self.params_with_prompt("Plan the work.");
        kind.prepare(KindInput {
            params: &params,
            vars: &json!({}),
            base: ActivitySpec::new(Vec::<String>::new()),
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn params_with_prompt(&self, prompt: &str) -> Value {
        let mut params = self.params.clone();
        // Kinds render placeholders in the prompt; issue text is taken literally.
        let literal = prompt.replace('{', "{{").replace('}', "}}");
        params.insert("prompt".into(), Value::String(literal));
        Value::Object(params)
    }
}

/// The shipped instructions of each step, `templates/prompts/<step>.md`.
const BUILTIN_PROMPTS: [(&str, &str); 5] = [
    ("plan", include_str!("../../templates/prompts/plan.md")),
    (
        "implement",
        include_str!("../../templates/prompts/implement.md"),
    ),
    ("test", include_str!("../../templates/prompts/test.md")),
    ("review", include_str!("../../templates/prompts/review.md")),
    ("triage", include_str!("../../templates/prompts/triage.md")),
];

/// What a coding agent is asked to do in `step`: the repository's own
/// `.spool/prompts/<step>.md` (as committed in the run's worktree `cwd`), else the
/// shipped one, followed by the issue and, when given, the run's base commit.
pub fn step_prompt(step: &str, issue_prompt: &str, cwd: &Path, base: Option<&str>) -> String {
    let own = valid_step_name(step)
        .then(|| {
            std::fs::read_to_string(cwd.join(".spool/prompts").join(format!("{step}.md"))).ok()
        })
        .flatten();
    let task = own
        .or_else(|| {
            BUILTIN_PROMPTS
                .iter()
                .find(|(name, _)| *name == step)
                .map(|(_, text)| text.to_string())
        })
        .unwrap_or_else(|| format!("Do step `{step}` of the issue below."));
    let mut out = format!("{}\n\n{issue_prompt}", task.trim_end());
    if let Some(base) = base {
        out.push_str(&format!("\nThe run's base commit: {base}\n"));
    }
    out
}

/// A step name that is safe as a file name.
fn valid_step_name(step: &str) -> bool {
    !step.is_empty()
        && step
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// How a step ended, for the exit status of `spool agent-step`.
pub struct StepOutcome {
    pub ok: bool,
    /// The agent's exit code when it exited (for `command` agents, passed on).
    pub exit_code: Option<i32>,
    pub message: String,
    pub stdout: String,
    pub stderr: String,
    /// What a coding agent's output said (usage, cost, session); none for `command`.
    pub report: Option<AgentReport>,
}

/// Put before the step's prompt when an earlier attempt's session is resumed.
pub const RESUME_NOTE: &str =
    "Your previous attempt at this step was interrupted. Continue where you left off.";

/// Where and how one step runs.
pub struct StepPlace<'a> {
    pub cwd: &'a Path,
    /// Scratch files of the agent's attempt (heartbeat, result).
    pub attempt_dir: &'a Path,
    /// The agent's full transcript, for `spool logs`.
    pub transcript: Option<PathBuf>,
    /// The heartbeat file of the step's attempt: the agent's session id is written there
    /// as soon as it is known, so a retry after any failure (even a kill) can resume it.
    pub heartbeat: Option<PathBuf>,
    /// A previous attempt's session to continue, when the agent kind can.
    pub resume: Option<String>,
    /// Where the agent's process group is recorded (it is not this process's group).
    pub pid_file: Option<PathBuf>,
    /// The run's base commit, named in the prompt (e.g. for a review of the branch).
    pub base: Option<String>,
}

/// The session id an agent CLI announces in one of its JSON event lines: `session_id`
/// (claude, gemini), `thread_id` (codex), `sessionID` (opencode).
pub fn session_in_line(line: &[u8]) -> Option<String> {
    // Most lines are not worth parsing.
    let text = std::str::from_utf8(line).ok()?;
    if !(text.contains("session") || text.contains("thread_id")) {
        return None;
    }
    let event: Value = serde_json::from_str(text).ok()?;
    ["session_id", "thread_id", "sessionID"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// The session a heartbeat written by [`SessionBeat`] names, if it is of `kind`.
pub fn session_in_heartbeat(details: &str, kind: &str) -> Option<String> {
    let v: Value = serde_json::from_str(details).ok()?;
    if v.get("agent").and_then(Value::as_str) != Some(kind) {
        return None;
    }
    v.get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Writes a heartbeat line naming the agent's session when it first appears, and one
/// at most every [`BEAT_EVERY`] while the agent keeps talking.
struct SessionBeat {
    file: Option<PathBuf>,
    agent: String,
    session: Option<String>,
    last: Option<std::time::Instant>,
}

const BEAT_EVERY: Duration = Duration::from_secs(1);

impl SessionBeat {
    /// Output is a sign of life: it feeds the step's heartbeat timeout, which is how a
    /// silent (hung) agent is found.
    fn alive(&mut self) {
        if self.last.is_none_or(|t| t.elapsed() >= BEAT_EVERY) {
            self.beat();
        }
    }

    fn beat(&mut self) {
        let Some(file) = &self.file else { return };
        self.last = Some(std::time::Instant::now());
        let line = json!({"agent": self.agent, "session_id": self.session}).to_string() + "\n";
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if written.is_err() {
            // Heartbeats are a convenience here; the step goes on without them.
            self.file = None;
        }
    }
}

impl crate::exec::AttemptObserver for SessionBeat {
    fn stdout_line(&mut self, line: &[u8]) {
        if self.session.is_none() {
            if let Some(id) = session_in_line(line) {
                self.session = Some(id);
                return self.beat();
            }
        }
        self.alive();
    }

    fn stderr_line(&mut self, _line: &[u8]) {
        self.alive();
    }
}

/// Runs one step of `agent` until it ends or `cancel` fires.
pub async fn run_step(
    agent: &AgentDef,
    step: &str,
    issue_prompt: &str,
    place: &StepPlace<'_>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, String> {
    let mut base = ActivitySpec::new(Vec::<String>::new());
    base.cwd = Some(place.cwd.to_path_buf());
    base.log_file = place.transcript.clone();
    base.pid_file = place.pid_file.clone();
    // The step's own timeout is the run's (enforced on this process); this one only
    // has to outlast it.
    base.timeouts.start_to_close = Duration::from_secs(7 * 24 * 3600);
    base.timeouts.cancel_grace = DEFAULT_CANCEL_GRACE / 2;
    let attempt = Attempt::in_dir(1, place.attempt_dir);
    let mut report = None;
    let (outcome, verdict) = if agent.kind == COMMAND_KIND {
        let program = agent.params["program"]
            .as_str()
            .ok_or("a `command` agent needs a `program`")?;
        base.argv = vec![
            program.to_string(),
            step.to_string(),
            issue_prompt.to_string(),
        ];
        let mut beat = SessionBeat {
            file: place.heartbeat.clone(),
            agent: agent.kind.clone(),
            session: None,
            last: None,
        };
        let outcome = run_attempt(&base, &attempt, cancel, &mut beat).await;
        let verdict = status_verdict(&outcome);
        (outcome, verdict)
    } else {
        let kind = agent_kind(&agent.kind)
            .ok_or_else(|| format!("unknown agent kind {:?}", agent.kind))?;
        let prepare = |params: &Value| {
            kind.prepare(KindInput {
                params,
                vars: &json!({}),
                base: base.clone(),
            })
        };
        let prompt = step_prompt(step, issue_prompt, place.cwd, place.base.as_deref());
        let mut resumed = None;
        let configured = ["resume_session", "session_id"]
            .iter()
            .any(|k| agent.params.contains_key(*k));
        if let Some(session) = place.resume.as_ref().filter(|_| !configured) {
            let again = format!("{RESUME_NOTE}\n\n{prompt}");
            let mut params = agent.params_with_prompt(&again);
            params["resume_session"] = Value::String(session.clone());
            // A kind that cannot resume (aider) starts over.
            resumed = prepare(&params).ok();
        }
        let spec = match resumed {
            Some(spec) => spec,
            None => prepare(&agent.params_with_prompt(&prompt)).map_err(|e| e.to_string())?,
        };
        let mut beat = SessionBeat {
            file: place.heartbeat.clone(),
            agent: agent.kind.clone(),
            session: place.resume.clone(),
            last: None,
        };
        let judged = run_agent(kind, &spec, &attempt, cancel, &mut beat).await;
        report = Some(judged.report);
        (judged.judged.outcome, judged.judged.verdict)
    };
    let exit_code = match outcome.status {
        crate::exec::ActivityStatus::Succeeded => Some(0),
        crate::exec::ActivityStatus::Failed { exit_code } => Some(exit_code),
        _ => None,
    };
    let (ok, message) = match verdict {
        Verdict::Succeeded { .. } => (true, String::new()),
        Verdict::Failed {
            error_type,
            message,
        } => (false, format!("{error_type}: {message}")),
        Verdict::TimedOut { kind } => (false, format!("timed out ({kind:?})")),
        Verdict::Canceled => (false, "cancelled".into()),
    };
    Ok(StepOutcome {
        ok,
        exit_code,
        message,
        stdout: outcome.stdout_tail,
        stderr: outcome.stderr_tail,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_round_trip_through_json_and_are_validated() {
        let a = AgentDef::command("/bin/agent");
        assert_eq!(AgentDef::from_json(&a.to_json()), Ok(a));
        let mut claude = AgentDef {
            kind: "claude".into(),
            params: Map::new(),
        };
        claude.params.insert("model".into(), json!("sonnet"));
        assert_eq!(claude.validate(), Ok(()));
        claude.params.insert("bogus".into(), json!(1));
        assert!(claude.validate().is_err());
        let unknown = AgentDef {
            kind: "robot".into(),
            params: Map::new(),
        };
        assert!(unknown.validate().unwrap_err().contains("robot"));
        assert!(AgentDef::from_json(r#"{"kind":"command","params":{}}"#).is_err());
    }

    #[test]
    fn step_prompts_come_from_the_repository_else_the_shipped_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = step_prompt("plan", "t-1: X\n", dir.path(), None);
        assert!(p.starts_with("Read the issue below"), "{p}");
        assert!(p.ends_with("\n\nt-1: X\n"), "{p}");
        std::fs::create_dir_all(dir.path().join(".spool/prompts")).expect("mkdir");
        std::fs::write(dir.path().join(".spool/prompts/plan.md"), "Our own way.\n").expect("write");
        assert_eq!(
            step_prompt("plan", "t-1: X\n", dir.path(), Some("abc")),
            "Our own way.\n\nt-1: X\n\nThe run's base commit: abc\n"
        );
        let p = step_prompt("../plan", "t-1: X\n", dir.path(), None);
        assert!(p.starts_with("Do step `../plan`"), "{p}");
    }

    #[test]
    fn the_program_is_found_on_path_or_by_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sh = AgentDef::command("sh");
        assert!(sh.locate(dir.path()).is_some());
        let missing = AgentDef::command("./no-such-agent");
        assert_eq!(missing.locate(dir.path()), None);
        let claude = AgentDef {
            kind: "claude".into(),
            params: Map::new(),
        };
        assert_eq!(claude.program(), "claude");
    }

    #[test]
    fn issue_text_with_braces_stays_literal() {
        let a = AgentDef {
            kind: "claude".into(),
            params: Map::new(),
        };
        let params = a.params_with_prompt("fn f() { x }");
        let spec = agent_kind("claude")
            .expect("claude")
            .prepare(KindInput {
                params: &params,
                vars: &json!({}),
                base: ActivitySpec::new(Vec::<String>::new()),
            })
            .expect("prepare");
        assert!(
            spec.argv.iter().any(|a| a == "fn f() { x }"),
            "{:?}",
            spec.argv
        );
    }
}
