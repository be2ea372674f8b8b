//! `spool demo`: the daemon at work on a throwaway repository, with nothing to set up.
//!
//! It makes a git repository with a small backlog (dependencies, an epic with children,
//! one issue whose template waits at a gate), runs the daemon in this process with a
//! scripted agent (`spool demo-agent`, needing no API key and no network), approves the
//! gate the way `spool run signal` does, and shows what happened: a line per claim, step
//! and close, the repository's history and the final issue list.

use super::args::ListArgs;
use super::Ctx;
use crate::backlog::{self, Backlog};
use crate::daemon::agent::AgentDef;
use crate::daemon::issues::{signature, Writer};
use crate::daemon::progress::FAILED_LABEL;
use crate::daemon::{config, instance, service};
use crate::engine::new_id;
use crate::git;
use crate::store::{Durability, Store};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use serde_json::Value;
use spool_core::beads::ops::Stamp;
use spool_core::beads::{canonical_dep_type, Issue, NewDependency, NewIssue, Timestamp};
use spool_core::workflow::decide::Input;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The template of the issue that waits for approval.
const REVIEW_TEMPLATE: &str = include_str!("../../templates/demo-review.toml");

/// Who the daemon claims as in the demo repository.
const ACTOR: &str = "spool-demo";

/// How long the gate waits before the demo approves it, so the pause is visible.
const APPROVE_AFTER: Duration = Duration::from_secs(2);

/// How long the daemon gets to stop after the demo is over.
const STOP_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the demo repository (it is printed at the end) instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Make the demo repository here (a new or empty directory; implies --keep).
    #[arg(long = "dir", value_name = "DIR")]
    pub repo_dir: Option<PathBuf>,
    /// Give up (and keep the repository for a look) after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DemoAgentArgs {
    /// The template step (plan, implement, test).
    pub step: String,
    /// The issue's prompt.
    pub prompt: String,
}

/// One issue of the demo backlog: id, title, type, priority, labels, blockers, parent.
struct DemoIssue {
    id: &'static str,
    title: &'static str,
    kind: &'static str,
    priority: i64,
    labels: &'static [&'static str],
    blocked_by: &'static [&'static str],
    parent: Option<&'static str>,
    description: &'static str,
}

const EPIC: &str = "demo-1";
const GATED: &str = "demo-7";

/// A small command-line tool's backlog. The epic is not selected by the daemon: it is
/// closed when its children are, as a person would.
const BACKLOG: &[DemoIssue] = &[
    DemoIssue {
        id: EPIC,
        title: "Greeting command",
        kind: "epic",
        priority: 1,
        labels: &["demo"],
        blocked_by: &[],
        parent: None,
        description: "A `greet` command that says hello to whoever asks.",
    },
    DemoIssue {
        id: "demo-1.1",
        title: "Parse the --name flag",
        kind: "task",
        priority: 1,
        labels: &["spool"],
        blocked_by: &[],
        parent: Some(EPIC),
        description: "Accept `--name NAME`; default to `world`.",
    },
    DemoIssue {
        id: "demo-1.2",
        title: "Print the greeting",
        kind: "task",
        priority: 1,
        labels: &["spool"],
        blocked_by: &["demo-1.1"],
        parent: Some(EPIC),
        description: "Print `Hello, NAME!` on one line.",
    },
    DemoIssue {
        id: "demo-1.3",
        title: "Add --shout to upper-case the greeting",
        kind: "feature",
        priority: 2,
        labels: &["spool"],
        blocked_by: &["demo-1.2"],
        parent: Some(EPIC),
        description: "`--shout` prints the greeting in capitals.",
    },
    DemoIssue {
        id: "demo-2",
        title: "Set up the project layout",
        kind: "chore",
        priority: 0,
        labels: &["spool"],
        blocked_by: &[],
        parent: None,
        description: "Create the source directory and a build script.",
    },
    DemoIssue {
        id: "demo-3",
        title: "Write a contributing guide",
        kind: "task",
        priority: 3,
        labels: &["spool"],
        blocked_by: &["demo-2"],
        parent: None,
        description: "How to build, test and send a change.",
    },
    DemoIssue {
        id: "demo-4",
        title: "Greeting ends with a trailing space",
        kind: "bug",
        priority: 0,
        labels: &["spool"],
        blocked_by: &[],
        parent: None,
        description: "`greet` prints `Hello, world! ` with a space before the newline.",
    },
    DemoIssue {
        id: "demo-5",
        title: "Add a --version flag",
        kind: "feature",
        priority: 2,
        labels: &["spool"],
        blocked_by: &["demo-2"],
        parent: None,
        description: "Print the version from the build script and exit.",
    },
    DemoIssue {
        id: "demo-6",
        title: "Document the flags in the README",
        kind: "task",
        priority: 2,
        labels: &["spool"],
        blocked_by: &["demo-1.2", "demo-5"],
        parent: None,
        description: "One line per flag, with an example.",
    },
    DemoIssue {
        id: GATED,
        title: "Prepare the first release",
        kind: "task",
        priority: 1,
        labels: &["spool", "review"],
        blocked_by: &["demo-6"],
        parent: None,
        description: "Write the release notes; a person approves before it counts as done.",
    },
    DemoIssue {
        id: "demo-8",
        title: "Add a changelog",
        kind: "chore",
        priority: 3,
        labels: &["spool"],
        blocked_by: &[],
        parent: None,
        description: "Start CHANGELOG.md with an Unreleased section.",
    },
];

/// The daemon configuration of the demo repository; `{agent}` is the agent program.
fn demo_config(agent: &Path) -> String {
    let program = toml::Value::String(agent.display().to_string()).to_string();
    format!(
        r#"# spool demo: three runs at once, a scripted agent, and a gate for issues labelled review.
actor = "{ACTOR}"
max_concurrent = 3
commit = true
coalesce_ms = 20

[[select]]
labels = ["spool", "review"]
template = "demo-review"

[[select]]
labels = ["spool"]
types = ["task", "feature", "bug", "chore"]
template = "implement"

[agents.default]
kind = "command"
program = {program}
"#
    )
}

/// The agent program: a script running this executable's `demo-agent` (a `command`
/// agent is one program, started as `PROGRAM STEP PROMPT`).
fn agent_script(spool: &Path) -> String {
    let quoted = spool.display().to_string().replace('\'', r"'\''");
    format!("#!/bin/sh\nexec '{quoted}' demo-agent \"$@\"\n")
}

pub fn demo_cmd(ctx: &Ctx, args: &DemoArgs) -> Result<i32> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs.max(1));
    let (root, temp) = match &args.repo_dir {
        Some(d) => {
            let dir = if d.is_absolute() {
                d.clone()
            } else {
                ctx.cwd.join(d)
            };
            if dir.exists()
                && std::fs::read_dir(&dir)
                    .with_context(|| format!("--dir {}", dir.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "--dir {}: not empty; give a new or empty directory",
                    dir.display()
                );
            }
            (dir, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("spool-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let keep = args.keep || temp.is_none();
    let spool = std::env::current_exe().context("finding the spool executable")?;
    let ws = setup(&root, &spool)?;
    println!(
        "spool demo: {} issues in a new repository at {}",
        BACKLOG.len(),
        root.display()
    );
    let result = run_daemon(&ws, &spool, deadline, started);
    let log = git::log_oneline(&root, 200)?;
    println!("\n$ git log --oneline ({} commits)", log.len());
    for line in &log {
        println!("{line}");
    }
    println!("\n$ spool list --all");
    let list_ctx = Ctx {
        global: ctx.global.clone(),
        cwd: root.clone(),
        now: Utc::now(),
        color: ctx.color,
    };
    super::query::list_cmd(
        &list_ctx,
        &ListArgs {
            all: true,
            limit: 0,
            sort: "id".into(),
            ..ListArgs::default()
        },
    )?;
    let kept = keep || result.is_err();
    match temp {
        Some(t) if kept => {
            let path = t.keep();
            println!("\nThe demo repository is kept at {}", path.display());
        }
        Some(t) => {
            let path = t.path().display().to_string();
            t.close()
                .with_context(|| format!("removing the demo repository {path}"))?;
            println!("\nThe demo repository was removed (keep it with --keep or --dir DIR).");
        }
        None => println!("\nThe demo repository is at {}", root.display()),
    }
    let summary = result?;
    println!(
        "spool demo: {} closed, {} failed in {:.1}s",
        summary.closed,
        summary.failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if summary.failed == 0 { 0 } else { 1 })
}

/// The repository, its first commits, the agent script and the daemon's configuration.
fn setup(root: &Path, spool: &Path) -> Result<Workspace> {
    git::init_repo(root, "main")?;
    let ws = Workspace {
        beads_dir: root.join(".beads"),
        root: root.to_path_buf(),
    };
    let now = Utc::now();
    let sig = signature(ACTOR, now);
    write(
        &root.join("README.md"),
        "# greet\n\nA tiny command that says hello; its backlog is in .beads/issues.jsonl.\n",
    )?;
    git::commit_paths(root, &[Path::new("README.md")], "Add a README", &sig)?;

    let agent = ws.state_dir().join("demo-agent");
    std::fs::create_dir_all(ws.state_dir())
        .with_context(|| format!("creating {}", ws.state_dir().display()))?;
    write(&agent, &agent_script(spool))?;
    make_executable(&agent)?;
    write(&ws.config_path(), "issue-prefix: \"demo\"\n")?;
    write(&ws.beads_dir.join(".gitignore"), super::init::GITIGNORE)?;
    write(&ws.issues_path(), "")?;
    write(&root.join(".spool/config.toml"), &demo_config(&agent))?;
    write(
        &root.join(".spool/templates/demo-review.toml"),
        REVIEW_TEMPLATE,
    )?;
    let stamp_time = Timestamp::from_utc(now);
    let stamp = Stamp {
        now: &stamp_time,
        actor: ACTOR,
    };
    backlog::modify(&ws, |tx| {
        for d in BACKLOG {
            tx.insert(&new_issue(d, stamp))?;
        }
        Ok(())
    })?;
    let paths = [
        ".beads/.gitignore",
        ".beads/config.yaml",
        ".beads/issues.jsonl",
        ".spool/config.toml",
        ".spool/templates/demo-review.toml",
    ];
    let paths: Vec<&Path> = paths.iter().map(Path::new).collect();
    git::commit_paths(
        root,
        &paths,
        "Plan the work: a backlog for spool",
        &signature(ACTOR, Utc::now()),
    )?;
    Ok(ws)
}

fn new_issue(d: &DemoIssue, stamp: Stamp<'_>) -> NewIssue {
    let mut new = NewIssue::new(d.id, d.title, stamp.now.clone(), stamp.actor);
    new.issue_type = d.kind.into();
    new.priority = d.priority;
    new.description = d.description.into();
    new.labels = d.labels.iter().map(|l| l.to_string()).collect();
    let dep = |target: &str, kind: &str| NewDependency {
        issue_id: d.id.to_string(),
        depends_on_id: target.to_string(),
        dep_type: canonical_dep_type(kind).to_string(),
        created_at: stamp.now.clone(),
        created_by: stamp.actor.to_string(),
        metadata: String::new(),
        thread_id: String::new(),
    };
    if let Some(p) = d.parent {
        new.dependencies.push(dep(p, "parent-child"));
    }
    for b in d.blocked_by {
        new.dependencies.push(dep(b, "blocks"));
    }
    new
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// How the demo's issues ended.
struct Summary {
    closed: usize,
    failed: usize,
}

/// What the demo last saw of one issue, to print only what changed.
#[derive(Default, Clone)]
struct Seen {
    status: String,
    comments: usize,
    failed: bool,
}

/// Runs the daemon until every selected issue is closed or failed, printing each
/// change; approves the gate; closes the epic when its children are done.
fn run_daemon(ws: &Workspace, spool: &Path, deadline: Instant, t0: Instant) -> Result<Summary> {
    let config_path = ws.root.join(".spool/config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = config::parse(&config_path.display().to_string(), &text)?;
    let agent = config.agents.get("default").cloned().unwrap_or_else(|| {
        AgentDef::command(&ws.state_dir().join("demo-agent").display().to_string())
    });
    let lock = instance::acquire(&ws.state_dir())?;
    let opts = service::Options {
        code_root: ws.root.clone(),
        ws: ws.clone(),
        config,
        config_path,
        actor: ACTOR.into(),
        agent,
        spool_exe: spool.to_path_buf(),
        grace: Duration::from_secs(5),
        rescan: Duration::from_millis(200),
        quiet: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = CancellationToken::new();
    let daemon = {
        let stop = stop.clone();
        runtime.spawn(service::run(opts, async move { stop.cancelled().await }))
    };
    let watched = watch(ws, deadline - t0, deadline, t0, &daemon);
    stop.cancel();
    let stopped = runtime.block_on(async { tokio::time::timeout(STOP_WAIT, daemon).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(lock);
    match stopped {
        // The daemon's own error explains why the demo could not go on.
        Ok(Ok(Err(e))) => Err(e.context("the daemon failed")),
        Ok(Err(e)) => bail!("the daemon task failed: {e}"),
        Err(_) => {
            let why = watched
                .err()
                .map(|e| format!("{e:#}; "))
                .unwrap_or_default();
            bail!(
                "{why}the daemon did not stop within {}s",
                STOP_WAIT.as_secs()
            )
        }
        Ok(Ok(Ok(()))) => watched,
    }
}

/// Polls the backlog, printing each claim, step and close, until the demo is over.
fn watch(
    ws: &Workspace,
    timeout: Duration,
    deadline: Instant,
    t0: Instant,
    daemon: &tokio::task::JoinHandle<Result<()>>,
) -> Result<Summary> {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut gate_ready: Option<Instant> = None;
    let mut approved = false;
    loop {
        if daemon.is_finished() {
            bail!("the daemon stopped before the demo was over");
        }
        if Instant::now() >= deadline {
            bail!(
                "the demo did not finish within {}s (--timeout-secs); the daemon is stopped and the repository kept for a look",
                timeout.as_secs()
            );
        }
        let backlog = Backlog::load(ws)?;
        let issues: Vec<&Issue> = backlog.file.issues().collect();
        for issue in &issues {
            report_changes(issue, seen.entry(issue.id.clone()).or_default(), t0);
        }
        if !approved {
            if let Some(g) = issues.iter().find(|i| i.id == GATED) {
                // The daemon comments when the step before the gate ends.
                let worked = g
                    .comments
                    .iter()
                    .any(|c| c.text.contains("step implement") && c.text.contains('✓'));
                if gate_ready.is_none() && worked && !g.is_closed() && !is_failed(g) {
                    gate_ready = Some(Instant::now());
                    say(
                        t0,
                        "waiting",
                        GATED,
                        "at the review gate; approving it shortly",
                    );
                }
                if gate_ready.is_some_and(|t| t.elapsed() >= APPROVE_AFTER) {
                    approve(ws, GATED)?;
                    approved = true;
                    say(t0, "approved", GATED, "spool run signal demo-7 approve");
                }
            }
        }
        let worked: Vec<&&Issue> = issues.iter().filter(|i| i.id != EPIC).collect();
        let failed = worked.iter().filter(|i| is_failed(i)).count();
        let closed = worked.iter().filter(|i| i.is_closed()).count();
        if closed + failed == worked.len() {
            if failed == 0 {
                close_epic(ws)?;
                report_changes_of(ws, &mut seen, t0)?;
                return Ok(Summary {
                    closed: closed + 1,
                    failed,
                });
            }
            return Ok(Summary { closed, failed });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report_changes_of(ws: &Workspace, seen: &mut HashMap<String, Seen>, t0: Instant) -> Result<()> {
    let backlog = Backlog::load(ws)?;
    for issue in backlog.file.issues() {
        report_changes(issue, seen.entry(issue.id.clone()).or_default(), t0);
    }
    Ok(())
}

fn is_failed(issue: &Issue) -> bool {
    issue.labels.iter().any(|l| l == FAILED_LABEL)
}

fn say(t0: Instant, what: &str, id: &str, text: &str) {
    println!(
        "[{:>5.1}s] {what:<9} {id:<9} {text}",
        t0.elapsed().as_secs_f64()
    );
}

/// Prints what changed in `issue` since `seen`, and remembers it.
fn report_changes(issue: &Issue, seen: &mut Seen, t0: Instant) {
    let status = issue.status().to_string();
    if seen.status.is_empty() {
        seen.status = status.clone();
    }
    if status != seen.status && status == "in_progress" {
        say(t0, "claimed", &issue.id, &issue.title);
    }
    for c in issue.comments.iter().skip(seen.comments) {
        let line = c.text.lines().next().unwrap_or("");
        say(t0, "progress", &issue.id, line);
    }
    seen.comments = issue.comments.len();
    if status != seen.status && issue.is_closed() {
        say(t0, "closed", &issue.id, &issue.title);
    }
    let failed = is_failed(issue);
    if failed && !seen.failed {
        say(t0, "failed", &issue.id, &issue.title);
    }
    seen.failed = failed;
    seen.status = status;
}

/// Sends `approve` to the open run of `issue` through the run database's inbox, as
/// `spool run signal ISSUE approve` does.
fn approve(ws: &Workspace, issue: &str) -> Result<()> {
    let common = crate::workspace::git_common_dir(&ws.root)
        .with_context(|| format!("{} is not a git repository", ws.root.display()))?;
    let db = crate::engine::default_db_path(&common);
    let mut store =
        Store::open(&db, Durability::Full).with_context(|| format!("opening {}", db.display()))?;
    let row = store
        .find_run(issue)?
        .with_context(|| format!("no run for {issue}"))?;
    let request_id = new_id();
    let input = Input::Signal {
        name: "approve".into(),
        payload: Value::Null,
        request_id: request_id.clone(),
    };
    store.push_inbox(&row.run_id, Some(&request_id), &input, Utc::now())?;
    Ok(())
}

/// Closes the epic once all its children are closed, and commits the backlog.
fn close_epic(ws: &Workspace) -> Result<()> {
    let writer = Writer {
        lease: None,
        ws,
        actor: ACTOR,
        commit: true,
    };
    let now = Utc::now();
    writer.close(EPIC, "all children done", now)?;
    writer.commit_backlog(&format!("spool: {EPIC} done ✓ (all children closed)"), now)
}

/// `spool demo-agent STEP PROMPT`: the demo's scripted agent. On `implement` it writes a
/// note about the issue in the run worktree (its cwd) and commits it there; `plan` and
/// `test` only report, and `test` fails if the note is not committed.
pub fn demo_agent_cmd(ctx: &Ctx, args: &DemoAgentArgs) -> Result<i32> {
    let issue = std::env::var("SPOOL_ISSUE_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            ctx.cwd
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .context("no issue: SPOOL_ISSUE_ID is not set")?;
    git::validate_issue_id(&issue)?;
    let rel = PathBuf::from("work").join(format!("{issue}.md"));
    match args.step.as_str() {
        "plan" => {
            let title = args.prompt.lines().next().unwrap_or("");
            println!("plan for {title}: write work/{issue}.md and commit it");
        }
        "implement" => {
            let body = format!(
                "# {}\n\nDone by spool's demo agent.\n",
                args.prompt.trim_end()
            );
            write(&ctx.cwd.join(&rel), &body)?;
            let sig = signature("demo-agent", Utc::now());
            git::commit_paths(
                &ctx.cwd,
                &[rel.as_path()],
                &format!("{issue}: implement"),
                &sig,
            )?;
            println!("committed {}", rel.display());
        }
        "test" => {
            if git::head_blob(&ctx.cwd, &rel)?.is_none() {
                bail!("{} is not committed", rel.display());
            }
            println!("{} is committed", rel.display());
        }
        other => bail!("unknown step {other:?} (plan, implement, test)"),
    }
    Ok(0)
}
