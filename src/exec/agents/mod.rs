//! Coding-agent CLIs as activity kinds: `claude`, `codex`, `gemini`, `aider`, `opencode`.
//!
//! Each adapter builds an argv that runs its CLI headless (prompt as one argument after
//! the CLI's end-of-options marker, or a prompt file where the CLI has one; never a
//! shell; stdin stays `/dev/null`) and asks for the CLI's event stream, so output is
//! liveness for the idle watchdog. Its judge reads that stream and decides by evidence:
//! exit 0 with an error result is a failure with an `agent_error_type`, and success
//! carries an [`AgentReport`] (usage, cost, session id) as the verdict's result.
//! [`run_agent`] returns the report for every attempt, so a retry can resume the
//! session (`resume_session`) and the engine can count the cost of failures too.
//! See `docs/agents.md` for each CLI's argv, output and failure modes.

mod aider;
mod claude;
mod codex;
mod common;
mod gemini;
mod opencode;

pub use aider::AiderKind;
pub use claude::ClaudeKind;
pub use codex::CodexKind;
pub use common::{
    agent_error_type, run_agent, AgentJudge, AgentJudged, AgentKind, AgentReport, AgentUsage,
    ERRORS_KEPT, MESSAGE_LIMIT,
};
pub use gemini::GeminiKind;
pub use opencode::OpencodeKind;

/// The agent kind called `name`, if there is one.
pub fn agent_kind(name: &str) -> Option<&'static dyn AgentKind> {
    match name {
        ClaudeKind::NAME => Some(&ClaudeKind),
        CodexKind::NAME => Some(&CodexKind),
        GeminiKind::NAME => Some(&GeminiKind),
        AiderKind::NAME => Some(&AiderKind),
        OpencodeKind::NAME => Some(&OpencodeKind),
        _ => None,
    }
}

/// The names of all agent kinds.
pub const AGENT_KINDS: &[&str] = &[
    ClaudeKind::NAME,
    CodexKind::NAME,
    GeminiKind::NAME,
    AiderKind::NAME,
    OpencodeKind::NAME,
];
