//! `.spool/config.toml`: who the daemon is, what it picks up and how it runs it.
//!
//! Pure: text in, a validated [`Config`] or an error naming file and line out. A config
//! that does not validate stops the daemon before it claims anything, because a typo in
//! a selector would otherwise silently pick up the wrong work (or none).

pub use super::agent::AgentDef;
use spool_core::beads::Issue;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// Written by `spool up` when the repository has no config yet.
pub const DEFAULT_CONFIG: &str = r#"# spool daemon configuration (`spool up`).

# Who claims issues (the assignee written on claim). Default: spool@<hostname>.
# actor = "spool@build-box"

# Most runs at once.
max_concurrent = 2

# What this machine offers. An issue labelled `needs:<capability>` (or a template whose
# steps say `requires = [...]`) is only claimed by a daemon that has it; the daemon also
# has `agent:<kind>` of its agent (e.g. `agent:claude`).
# capabilities = ["gpu", "macos"]

# Commit the daemon's backlog changes (claims, progress comments, closes).
commit = true

# How the run database commits: "full" survives power loss (fsync on every commit),
# "process" survives a crash of spool but not of the machine, and is faster.
# durability = "full"

# Wait this long after a change to the backlog before looking at it (coalesces bursts).
coalesce_ms = 50

# Progress within this many milliseconds is committed together (one commit for a burst
# of step ends and closes); 0 commits every change alone. Claims are committed at once.
commit_coalesce_ms = 200

# Which ready issues to work on, and with which template. The first rule that matches
# an issue wins. All conditions of a rule must hold: `labels` (all of them), `types`
# (any of them), `priority_max` (0 is highest), `assignee`.
[[select]]
labels = ["spool"]
template = "implement"

# Working with other daemons on the same backlog (other machines, pushing and pulling
# the same remote). Each claim then carries a lease in the issue's metadata, renewed
# every third of `lease_secs` while the run lives; an issue whose lease ran out (its
# daemon died) is taken over by another daemon, which says so in a comment.
# Their syncs go through the remote of [sync] below: a claim counts once it is pushed,
# progress is pushed soon after it is committed, and the remote is pulled every
# `sync_secs` to see teammates' work.
# [team]
# lease_secs = 300
# sync_secs = 10

# Spending limits in USD, counted from the cost agent CLIs report (claude, aider and
# opencode report it; codex and gemini do not). When a run or the day has spent its
# budget, no further attempt starts and the run fails with BudgetExceeded.
# [budget]
# per_run_usd = 5.0
# per_day_usd = 50.0

# The agent the `implement` template runs; without one, a `command` agent running
# $SPOOL_AGENT. A `command` agent is started as `PROGRAM STEP PROMPT` in the run's
# worktree; the coding-agent kinds (claude, codex, gemini, aider, opencode) take the
# parameters in docs/agents.md (model, permission_mode, program, extra_args, ...).
# [agents.default]
# kind = "claude"
# model = "sonnet"
# permission_mode = "acceptEdits"

# `spool sync`: how the backlog is shared through a git remote (docs/sync.md).
# [sync]
# remote = "origin"        # default: the branch's upstream remote, else origin
# branch = "main"          # the remote branch; in branch mode, the backlog branch
# mode = "in-place"        # or "branch": the backlog on its own branch (spool/backlog)
# max_attempts = 5         # fetch-merge-push rounds when the push is rejected
"#;

/// A selector rule: which issues a template runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectRule {
    pub labels: Vec<String>,
    pub types: Vec<String>,
    pub priority_max: Option<i64>,
    pub assignee: Option<String>,
    pub template: String,
}

impl SelectRule {
    /// Whether the rule's conditions all hold for `issue`.
    pub fn matches(&self, issue: &Issue) -> bool {
        self.labels.iter().all(|l| issue.labels.contains(l))
            && (self.types.is_empty() || self.types.iter().any(|t| t == issue.issue_type()))
            && self.priority_max.is_none_or(|p| issue.priority <= p)
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| issue.assignee.is_empty() || &issue.assignee == a)
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `None`: `spool@<hostname>`, decided by the caller (the hostname is IO).
    pub actor: Option<String>,
    pub max_concurrent: usize,
    pub select: Vec<SelectRule>,
    pub commit: bool,
    /// The run database's durability.
    pub durability: crate::store::Durability,
    pub coalesce_ms: u64,
    pub commit_coalesce_ms: u64,
    pub agents: BTreeMap<String, AgentDef>,
    pub budget: super::budget::Limits,
    pub capabilities: Vec<String>,
    /// `[team]`: claims carry leases of this many seconds.
    pub lease_secs: Option<u64>,
    /// `[team]`: pull the remote this often.
    pub sync_secs: u64,
    pub sync: SyncConfig,
}

/// `[sync]`: what `spool sync` shares the backlog with. Unset keys are decided by git
/// (the branch's upstream) or by `spool sync`'s defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncConfig {
    pub remote: Option<String>,
    pub branch: Option<String>,
    /// `in-place` or `branch` (validated).
    pub mode: Option<String>,
    pub max_attempts: Option<u32>,
}

impl Config {
    /// The template of the first rule matching `issue`.
    pub fn template_for(&self, issue: &Issue) -> Option<&str> {
        self.select
            .iter()
            .find(|r| r.matches(issue))
            .map(|r| r.template.as_str())
    }
}

/// Why a config was refused: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    actor: Option<Spanned<String>>,
    max_concurrent: Option<Spanned<i64>>,
    #[serde(default)]
    select: Option<Vec<Spanned<RawRule>>>,
    commit: Option<bool>,
    durability: Option<Spanned<String>>,
    coalesce_ms: Option<Spanned<i64>>,
    commit_coalesce_ms: Option<Spanned<i64>>,
    #[serde(default)]
    agents: BTreeMap<String, Spanned<RawAgent>>,
    budget: Option<RawBudget>,
    capabilities: Option<Spanned<Vec<String>>>,
    team: Option<RawTeam>,
    sync: Option<RawSync>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    lease_secs: Option<Spanned<i64>>,
    sync_secs: Option<Spanned<i64>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    per_run_usd: Option<Spanned<f64>>,
    per_day_usd: Option<Spanned<f64>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    remote: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    max_attempts: Option<Spanned<i64>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    types: Vec<String>,
    priority_max: Option<i64>,
    assignee: Option<String>,
    template: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawAgent {
    kind: String,
    #[serde(flatten)]
    params: BTreeMap<String, toml::Value>,
}

fn line_of(source: &str, span: Option<Range<usize>>) -> usize {
    span.map(|s| source[..s.start.min(source.len())].matches('\n').count() + 1)
        .unwrap_or(1)
}

/// Parses and validates `source` (read from `file`, named in errors).
pub fn parse(file: &str, source: &str) -> Result<Config, ConfigError> {
    let err = |span: Option<Range<usize>>, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(source, span),
        message,
    };
    let raw: RawConfig = toml::from_str(source).map_err(|e| {
        let message = e.message().trim().to_string();
        err(e.span(), message)
    })?;
    let max_concurrent = match raw.max_concurrent {
        None => 2,
        Some(m) if *m.get_ref() >= 1 => *m.get_ref() as usize,
        Some(m) => {
            return Err(err(
                Some(m.span()),
                "max_concurrent must be at least 1".into(),
            ))
        }
    };
    let millis = |value: Option<Spanned<i64>>, name: &str, default: u64| match value {
        None => Ok(default),
        Some(c) if (0..=60_000).contains(c.get_ref()) => Ok(*c.get_ref() as u64),
        Some(c) => Err(err(
            Some(c.span()),
            format!("{name} must be between 0 and 60000"),
        )),
    };
    let coalesce_ms = millis(raw.coalesce_ms, "coalesce_ms", 50)?;
    let durability = match raw.durability {
        None => crate::store::Durability::Full,
        Some(d) => match d.get_ref().as_str() {
            "full" => crate::store::Durability::Full,
            "process" => crate::store::Durability::Process,
            other => {
                return Err(err(
                    Some(d.span()),
                    format!("durability must be \"full\" or \"process\", not {other:?}"),
                ))
            }
        },
    };
    let commit_coalesce_ms = millis(raw.commit_coalesce_ms, "commit_coalesce_ms", 200)?;
    let actor = match raw.actor {
        Some(a) if a.get_ref().trim().is_empty() => {
            return Err(err(Some(a.span()), "actor is empty".into()))
        }
        a => a.map(Spanned::into_inner),
    };
    let select = match raw.select {
        None => vec![SelectRule {
            labels: vec!["spool".into()],
            types: Vec::new(),
            priority_max: None,
            assignee: None,
            template: "implement".into(),
        }],
        Some(rules) => {
            let mut out = Vec::new();
            for r in rules {
                let span = r.span();
                let r = r.into_inner();
                let template = r.template.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                    err(
                        Some(span.clone()),
                        "a [[select]] rule needs a `template`".into(),
                    )
                })?;
                if r.labels.is_empty()
                    && r.types.is_empty()
                    && r.priority_max.is_none()
                    && r.assignee.is_none()
                {
                    return Err(err(
                        Some(span),
                        "a [[select]] rule needs at least one condition (labels, types, priority_max or assignee); a rule matching every issue is almost never meant".into(),
                    ));
                }
                out.push(SelectRule {
                    labels: r.labels,
                    types: r.types,
                    priority_max: r.priority_max,
                    assignee: r.assignee,
                    template,
                });
            }
            out
        }
    };
    let mut agents = BTreeMap::new();
    for (name, a) in raw.agents {
        let span = a.span();
        let a = a.into_inner();
        let params = match serde_json::to_value(&a.params) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(err(
                    Some(span),
                    format!("agent {name:?}: unreadable parameters"),
                ))
            }
        };
        let def = AgentDef {
            kind: a.kind,
            params,
        };
        def.validate()
            .map_err(|m| err(Some(span), format!("agent {name:?}: {m}")))?;
        agents.insert(name, def);
    }
    let mut budget = super::budget::Limits::default();
    if let Some(b) = raw.budget {
        for (name, value, slot) in [
            ("per_run_usd", b.per_run_usd, &mut budget.per_run_usd),
            ("per_day_usd", b.per_day_usd, &mut budget.per_day_usd),
        ] {
            if let Some(v) = value {
                let usd = *v.get_ref();
                if !(usd.is_finite() && usd > 0.0) {
                    return Err(err(
                        Some(v.span()),
                        format!("budget.{name} must be a positive amount of USD"),
                    ));
                }
                *slot = Some(usd);
            }
        }
    }
    let capabilities = match raw.capabilities {
        None => Vec::new(),
        Some(c) => {
            let span = c.span();
            let list = c.into_inner();
            if let Some(bad) = list
                .iter()
                .find(|c| !spool_core::template::valid_capability(c))
            {
                return Err(err(
                    Some(span),
                    format!("bad capability {bad:?}: use letters, digits, '-', '_', '.' and ':'"),
                ));
            }
            list
        }
    };
    let sync_secs = match raw.team.as_ref().and_then(|t| t.sync_secs.as_ref()) {
        None => 10,
        Some(v) if (1..=3600).contains(v.get_ref()) => *v.get_ref() as u64,
        Some(v) => {
            return Err(err(
                Some(v.span()),
                "team.sync_secs must be between 1 and 3600".into(),
            ))
        }
    };
    let lease_secs = match raw.team {
        None => None,
        Some(t) => match t.lease_secs {
            None => Some(300),
            Some(l) if (3..=86_400).contains(l.get_ref()) => Some(*l.get_ref() as u64),
            Some(l) => {
                return Err(err(
                    Some(l.span()),
                    "team.lease_secs must be between 3 and 86400".into(),
                ))
            }
        },
    };
    let sync = match raw.sync {
        None => SyncConfig::default(),
        Some(s) => {
            let name = |v: Option<Spanned<String>>, what: &str| match v {
                Some(v) if !valid_git_name(v.get_ref()) => Err(err(
                    Some(v.span()),
                    format!("sync.{what} {:?} is not a usable git name", v.get_ref()),
                )),
                v => Ok(v.map(Spanned::into_inner)),
            };
            let mode = match s.mode {
                Some(m) if !["in-place", "branch"].contains(&m.get_ref().as_str()) => {
                    return Err(err(
                        Some(m.span()),
                        format!(
                            "sync.mode must be \"in-place\" or \"branch\", not {:?}",
                            m.get_ref()
                        ),
                    ))
                }
                m => m.map(Spanned::into_inner),
            };
            let max_attempts = match s.max_attempts {
                None => None,
                Some(a) if (1..=50).contains(a.get_ref()) => Some(*a.get_ref() as u32),
                Some(a) => {
                    return Err(err(
                        Some(a.span()),
                        "sync.max_attempts must be between 1 and 50".into(),
                    ))
                }
            };
            SyncConfig {
                remote: name(s.remote, "remote")?,
                branch: name(s.branch, "branch")?,
                mode,
                max_attempts,
            }
        }
    };
    Ok(Config {
        actor,
        max_concurrent,
        select,
        commit: raw.commit.unwrap_or(true),
        durability,
        coalesce_ms,
        commit_coalesce_ms,
        agents,
        budget,
        capabilities,
        lease_secs,
        sync_secs,
        sync,
    })
}

/// A remote or branch name git would not read as an option or reject outright.
fn valid_git_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '/', '.'])
        && !s.ends_with(['/', '.'])
        && !s.contains("..")
        && !s.ends_with(".lock")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(labels: &[&str], priority: i64, issue_type: &str) -> Issue {
        let line = serde_json::json!({
            "id": "t-1", "title": "x", "status": "open", "priority": priority,
            "issue_type": issue_type, "labels": labels,
        });
        let (file, diags) = spool_core::beads::BeadsFile::parse_owned(
            format!("{line}\n").into_bytes(),
            std::num::NonZeroUsize::MIN,
        );
        assert!(diags.is_empty(), "{diags:?}");
        file.get("t-1").cloned().expect("parsed issue")
    }

    #[test]
    fn the_written_default_parses_to_the_defaults() {
        let c = parse("c.toml", DEFAULT_CONFIG).expect("default config parses");
        assert_eq!(c.max_concurrent, 2);
        assert!(c.commit);
        assert_eq!(c.actor, None);
        assert_eq!(c.select.len(), 1);
        assert_eq!(c.select[0].labels, vec!["spool".to_string()]);
        assert_eq!(c.select[0].template, "implement");
        assert_eq!(parse("c.toml", "").expect("empty config"), c);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse("cfg.toml", "actor = \"a\"\n\nmax_concurrent = 0\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("cfg.toml", 3), "{e}");
        let e = parse("cfg.toml", "commit = true\nbogus = 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("cfg.toml", "[[select]]\nlabels = [\"x\"]\n").unwrap_err();
        assert!(e.message.contains("template"), "{e}");
        let e = parse("cfg.toml", "\n[agents.a]\nkind = \"claude\"\nbogus = 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("bogus"), "{e}");
        let c = parse(
            "cfg.toml",
            "[agents.a]\nkind = \"claude\"\nmodel = \"sonnet\"\n",
        )
        .expect("claude agent");
        assert_eq!(c.agents["a"].params["model"], "sonnet");
        let e = parse(
            "cfg.toml",
            "[budget]\nper_run_usd = 1.5\nper_day_usd = -1.0\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let c = parse("cfg.toml", "[budget]\nper_run_usd = 1.5\n").expect("budget");
        assert_eq!(c.budget.per_run_usd, Some(1.5));
        assert_eq!(c.budget.per_day_usd, None);
        let c = parse("cfg.toml", "capabilities = [\"gpu\", \"os.macos\"]\n").expect("caps");
        assert_eq!(
            c.capabilities,
            vec!["gpu".to_string(), "os.macos".to_string()]
        );
        let e = parse("cfg.toml", "commit = true\ncapabilities = [\"a b\"]\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert_eq!(parse("c", "[team]\n").expect("team").lease_secs, Some(300));
        assert_eq!(
            parse("c", "durability = \"process\"\n")
                .expect("durability")
                .durability,
            crate::store::Durability::Process
        );
        assert_eq!(parse("c", "\ndurability = \"fast\"\n").unwrap_err().line, 2);
        assert_eq!(
            parse("c", "[team]\nlease_secs = 60\n")
                .expect("team")
                .lease_secs,
            Some(60)
        );
        assert_eq!(parse("c", "[team]\nlease_secs = 1\n").unwrap_err().line, 2);
    }

    #[test]
    fn sync_keys_are_validated_with_their_line() {
        let c = parse(
            "c.toml",
            "[sync]\nremote = \"up\"\nbranch = \"spool/backlog\"\nmode = \"branch\"\nmax_attempts = 3\n",
        )
        .expect("sync config");
        assert_eq!(
            c.sync,
            SyncConfig {
                remote: Some("up".into()),
                branch: Some("spool/backlog".into()),
                mode: Some("branch".into()),
                max_attempts: Some(3),
            }
        );
        let e = parse("c.toml", "[sync]\n\nmode = \"rebase\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = parse("c.toml", "[sync]\nmax_attempts = 0\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("c.toml", "[sync]\nbranch = \"-x\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("c.toml", "[sync]\nremtoe = \"x\"\n").unwrap_err();
        assert!(e.message.contains("remtoe"), "{e}");
    }

    #[test]
    fn rules_match_all_their_conditions_and_the_first_wins() {
        let c = parse(
            "c.toml",
            "[[select]]\nlabels = [\"spool\", \"fast\"]\ntemplate = \"quick\"\n\
             [[select]]\nlabels = [\"spool\"]\ntypes = [\"bug\"]\npriority_max = 1\ntemplate = \"fix\"\n",
        )
        .expect("config");
        assert_eq!(
            c.template_for(&issue(&["spool", "fast"], 3, "task")),
            Some("quick")
        );
        assert_eq!(c.template_for(&issue(&["spool"], 1, "bug")), Some("fix"));
        assert_eq!(c.template_for(&issue(&["spool"], 2, "bug")), None);
        assert_eq!(c.template_for(&issue(&["spool"], 0, "task")), None);
        assert_eq!(c.template_for(&issue(&[], 0, "bug")), None);
    }
}
