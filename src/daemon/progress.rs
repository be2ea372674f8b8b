//! What the daemon writes: run inputs, progress comments, commit messages. Pure, so the
//! wording is tested without a repository.

use serde_json::{json, Value};
use spool_core::beads::Issue;
use spool_core::workflow::decide::ActivityTask;
use std::path::Path;
use std::time::Duration;

/// The label that keeps a failed issue from being picked up again until a person
/// removes it.
pub const FAILED_LABEL: &str = "spool:failed";

/// The label that makes the `implement` template wait at its `review` gate.
pub const NEEDS_REVIEW_LABEL: &str = "needs-review";

/// Labels that answer a gate, and the signal each sends.
pub const GATE_LABELS: [(&str, &str); 2] = [("approved", "approve"), ("rejected", "reject")];

/// The comment posted when a run starts waiting at a gate.
pub fn gate_comment(issue_id: &str, step: &str, signals: &[String]) -> String {
    let labels: Vec<String> = GATE_LABELS
        .iter()
        .filter(|(_, s)| signals.iter().any(|x| x == s))
        .map(|(l, _)| format!("`{l}`"))
        .collect();
    let by_label = if labels.is_empty() {
        String::new()
    } else {
        format!("add the label {} and push, or ", labels.join(" or "))
    };
    format!(
        "spool: waiting at gate {step}: {by_label}run `spool run signal {issue_id} {}`",
        signals.join("|")
    )
}

/// Where a run works and with what: the template's `{issue.*}` and `{run.*}` values.
pub struct RunPlace<'a> {
    pub worktree: &'a Path,
    /// The commit the worktree branched from.
    pub base: &'a str,
    /// The configured agent as JSON (`{run.agent}`), for `spool agent-step`.
    pub agent: &'a str,
    /// This spool executable (`{run.spool}`), for steps that call back into spool.
    pub spool: &'a Path,
    /// The repository's `.beads/` (`{run.beads_dir}`), where agents record new work.
    pub beads_dir: &'a Path,
}

/// A finished dependency, as the agent is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepResult {
    pub id: String,
    pub title: String,
    pub dep_type: String,
    pub status: String,
    pub close_reason: String,
}

/// Comments shown to the agent: the most recent ones, each cut to a length.
const PROMPT_COMMENTS: usize = 20;
const PROMPT_COMMENT_CHARS: usize = 2000;

/// The text an agent is asked to act on: title, each non-empty section, what the issue's
/// dependencies came to, and the people's comments (the daemon's own progress comments
/// are left out: they say nothing about the work).
pub fn prompt(issue: &Issue, deps: &[DepResult]) -> String {
    let mut out = format!("{}: {}\n", issue.id, issue.title);
    for (name, text) in [
        ("Description", &issue.description),
        ("Acceptance criteria", &issue.acceptance_criteria),
        ("Design", &issue.design),
        ("Notes", &issue.notes),
    ] {
        if !text.trim().is_empty() {
            out.push_str(&format!("\n## {name}\n{}\n", text.trim_end()));
        }
    }
    if !deps.is_empty() {
        out.push_str("\n## Dependencies\n");
        for d in deps {
            let reason = if d.close_reason.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(&d.close_reason, 300))
            };
            out.push_str(&format!(
                "- {} ({}, {}) {}{reason}\n",
                d.id, d.dep_type, d.status, d.title
            ));
        }
    }
    let said: Vec<_> = issue
        .comments
        .iter()
        .filter(|c| !c.text.starts_with("spool: ") && !c.text.trim().is_empty())
        .collect();
    if !said.is_empty() {
        out.push_str("\n## Comments\n");
        for c in &said[said.len().saturating_sub(PROMPT_COMMENTS)..] {
            let text: String = c.text.trim().chars().take(PROMPT_COMMENT_CHARS).collect();
            out.push_str(&format!("- {}: {}\n", c.author, text.replace('\n', "\n  ")));
        }
    }
    out
}

/// A run's input: the issue and where the run works.
pub fn run_input(issue: &Issue, deps: &[DepResult], place: &RunPlace<'_>) -> Value {
    json!({
        "issue": {
            "id": issue.id,
            "title": issue.title,
            "description": issue.description,
            "acceptance_criteria": issue.acceptance_criteria,
            "design": issue.design,
            "notes": issue.notes,
            "labels": issue.labels,
            "needs_review": issue.labels.iter().any(|l| l == NEEDS_REVIEW_LABEL),
            "prompt": prompt(issue, deps),
        },
        "run": {
            "worktree": place.worktree.display().to_string(),
            "base": place.base,
            "agent": place.agent,
            "spool": place.spool.display().to_string(),
            "beads_dir": place.beads_dir.display().to_string(),
        },
    })
}

/// One step attempt's end, as reported by the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct StepEnd {
    pub run_id: String,
    pub issue_id: String,
    pub step: String,
    /// The event that scheduled the step (names its attempts in the history).
    pub scheduled_event_id: u64,
    pub attempt: u32,
    pub ok: bool,
    /// Stopped by a cancel or kill rather than ending by itself: the reason is in the
    /// run's history (e.g. a timeout the engine detected).
    pub stopped: bool,
    /// Why it failed (error type and message), when it did.
    pub error: Option<String>,
    pub duration: Duration,
    /// What the attempt cost, when the agent reported it.
    pub cost_usd: Option<f64>,
}

impl StepEnd {
    /// The end of an attempt of `task`, with no error, cost or stop recorded yet.
    pub fn of(task: &ActivityTask, ok: bool, duration: Duration) -> StepEnd {
        StepEnd {
            run_id: task.run_id.clone(),
            issue_id: task.workflow_id.clone(),
            step: task.activity_id.clone(),
            scheduled_event_id: task.scheduled_event_id,
            attempt: task.attempt,
            ok,
            error: None,
            duration,
            cost_usd: None,
            stopped: false,
        }
    }
}

/// `(2/4)` when the step's position in the template is known.
fn position(index: Option<(usize, usize)>) -> String {
    index
        .map(|(i, n)| format!(" ({}/{n})", i + 1))
        .unwrap_or_default()
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

/// The issue comment for a step's end: one short line, plus the error when it failed.
/// The error is flattened to one line: a process's last words are often the useful part.
pub fn step_comment(end: &StepEnd, index: Option<(usize, usize)>) -> String {
    let cost = end
        .cost_usd
        .map(|c| format!(", ${c:.2}"))
        .unwrap_or_default();
    let mut text = format!(
        "spool: step {}{} {} in {:.1}s (attempt {}{cost})",
        end.step,
        position(index),
        mark(end.ok),
        end.duration.as_secs_f64(),
        end.attempt
    );
    if let Some(e) = &end.error {
        let flat = e.split_whitespace().collect::<Vec<_>>().join(" ");
        text.push_str(&format!(": {}", one_line(&flat, 400)));
    }
    text
}

/// The commit message for a step's end: `spool: <id> <step> ✓ (2/4)`.
pub fn step_commit_message(end: &StepEnd, index: Option<(usize, usize)>) -> String {
    format!(
        "spool: {} {} {}{}",
        end.issue_id,
        end.step,
        mark(end.ok),
        position(index)
    )
}

/// First line of `text`, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(ok: bool) -> StepEnd {
        StepEnd {
            run_id: "r1".into(),
            issue_id: "t-1".into(),
            step: "implement".into(),
            scheduled_event_id: 7,
            attempt: 2,
            ok,
            stopped: false,
            error: (!ok).then(|| "Failed: exit 3\nmore".to_string()),
            duration: Duration::from_millis(1250),
            cost_usd: ok.then_some(0.0421),
        }
    }

    #[test]
    fn comments_and_messages_name_step_outcome_position_and_attempt() {
        assert_eq!(
            step_comment(&end(true), Some((1, 4))),
            "spool: step implement (2/4) ✓ in 1.2s (attempt 2, $0.04)"
        );
        assert_eq!(
            step_comment(&end(false), None),
            "spool: step implement ✗ in 1.2s (attempt 2): Failed: exit 3 more"
        );
        assert_eq!(
            step_commit_message(&end(true), Some((1, 4))),
            "spool: t-1 implement ✓ (2/4)"
        );
    }

    #[test]
    fn the_gate_comment_says_how_to_answer() {
        let signals = vec!["approve".to_string(), "reject".to_string()];
        assert_eq!(
            gate_comment("t-1", "review", &signals),
            "spool: waiting at gate review: add the label `approved` or `rejected` and push, \
             or run `spool run signal t-1 approve|reject`"
        );
        assert_eq!(
            gate_comment("t-1", "go", &["go".to_string()]),
            "spool: waiting at gate go: run `spool run signal t-1 go`"
        );
    }

    #[test]
    fn the_prompt_has_sections_dependencies_and_peoples_comments() {
        let line = serde_json::json!({
            "id": "t-2", "title": "Add login", "status": "open", "priority": 1,
            "description": "Users log in.\n", "acceptance_criteria": "  ",
            "comments": [
                {"author": "ann", "text": "Use the\nexisting session store"},
                {"author": "spool@box", "text": "spool: step plan (1/4) ✓ in 1.0s (attempt 1)"},
            ],
        });
        let (file, diags) = spool_core::beads::BeadsFile::parse_owned(
            format!("{line}\n").into_bytes(),
            std::num::NonZeroUsize::MIN,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let issue = file.get("t-2").expect("issue");
        let deps = [DepResult {
            id: "t-1".into(),
            title: "Session store".into(),
            dep_type: "blocks".into(),
            status: "closed".into(),
            close_reason: "Done in abc123".into(),
        }];
        assert_eq!(
            prompt(issue, &deps),
            "t-2: Add login\n\n## Description\nUsers log in.\n\
             \n## Dependencies\n- t-1 (blocks, closed) Session store: Done in abc123\n\
             \n## Comments\n- ann: Use the\n  existing session store\n"
        );
    }

    #[test]
    fn one_line_cuts_long_text() {
        assert_eq!(one_line("\n  \nabcdef\nx", 3), "abc…");
        assert_eq!(one_line("ab", 3), "ab");
    }
}
