//! `spool up` (the daemon, in the foreground), `spool status` (its runs), and the
//! `verify-commits` check the shipped `implement` template calls.

use super::Ctx;
use crate::daemon::agent::{self, AgentDef};
use crate::daemon::config::{self, Config, DEFAULT_CONFIG};
use crate::daemon::{instance, service};
use crate::store::{Durability, Store};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use spool_core::workflow::state::AttemptPhase;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Seconds running steps get to finish after Ctrl-C or SIGTERM; then they are stopped
    /// and resumed by the next `spool up`.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// Milliseconds between safety-net rescans of the backlog.
    #[arg(long, default_value_t = 2000)]
    pub rescan_ms: u64,
    /// Run in the background: the daemon's output goes to `.git/spool/daemon.log`;
    /// `spool down` stops it.
    #[arg(long)]
    pub detach: bool,
    /// Set on the background process `--detach` starts: a closed terminal does not stop it.
    #[arg(long, hide = true)]
    pub detached: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// Seconds to wait for the daemon to exit after SIGTERM.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// If it has not exited by then, kill it (SIGKILL); its runs resume on the next `up`.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyCommitsArgs {
    /// The issue whose run branch (`spool/<id>`) is checked.
    pub id: String,
    /// The commit the run started from.
    pub base: String,
}

#[derive(Debug, Clone, Args)]
pub struct AgentStepArgs {
    /// The agent as JSON (`{"kind": ..., "params": {...}}`), as the daemon passes it.
    pub agent: String,
    /// The template step (plan, implement, test).
    pub step: String,
    /// The issue's prompt.
    pub prompt: String,
    /// The run's base commit, named in the prompt.
    #[arg(long)]
    pub base: Option<String>,
}

/// Reads `.spool/config.toml`, writing the commented default first if there is none.
fn load_config(root: &Path) -> Result<(Config, PathBuf)> {
    let path = root.join(".spool").join("config.toml");
    if !path.exists() {
        std::fs::create_dir_all(root.join(".spool"))
            .with_context(|| format!("creating {}", root.join(".spool").display()))?;
        crate::atomic::write_atomic(&path, DEFAULT_CONFIG.as_bytes())?;
        eprintln!("spool up: wrote a default {}", path.display());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = config::parse(&path.display().to_string(), &text)?;
    Ok((config, path))
}

fn default_actor() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("spool@{host}")
}

pub fn up_cmd(ctx: &Ctx, args: &UpArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    if crate::workspace::git_common_dir(&ws.root).is_none() {
        bail!(
            "{} is not a git repository: spool up commits progress and runs work in git worktrees",
            ws.root.display()
        );
    }
    // The user's checkout; the backlog may live apart from it (`spool sync --mode branch`).
    let code_root = if crate::sync::is_backlog_worktree(&ws.root) {
        super::run::repo_root(&ctx.cwd).unwrap_or_else(|| ws.root.clone())
    } else {
        ws.root.clone()
    };
    if args.detach {
        load_config(&code_root)?;
        return detach(ctx, args, &ws.state_dir());
    }
    // Signals first: Ctrl-C or SIGTERM while starting is a clean stop, not a kill.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let signals = {
        let _enter = runtime.enter();
        StopSignals::install(args.detached)?
    };
    let (config, config_path) = load_config(&code_root)?;
    let lock = instance::acquire(&ws.state_dir())?;
    let actor = config.actor.clone().unwrap_or_else(default_actor);
    let agent = match config.agents.get("default") {
        Some(a) => a.clone(),
        None => match std::env::var("SPOOL_AGENT") {
            Ok(a) if !a.is_empty() => AgentDef::command(&a),
            _ => bail!(
                "no agent: set SPOOL_AGENT to the agent program, or configure [agents.default] in {}",
                ws.root.join(".spool/config.toml").display()
            ),
        },
    };
    if agent.locate(&ws.root).is_none() {
        bail!(
            "the agent program `{}` ({} agent) is not found{}; install it, or set `program` in [agents.default] of {}",
            agent.program(),
            agent.kind,
            if agent.program().contains('/') { "" } else { " in PATH" },
            ws.root.join(".spool/config.toml").display()
        );
    }
    let opts = service::Options {
        ws,
        code_root,
        config,
        config_path,
        actor,
        agent,
        spool_exe: std::env::current_exe().context("finding the spool executable")?,
        grace: Duration::from_secs(args.grace_secs),
        rescan: Duration::from_millis(args.rescan_ms.max(10)),
        quiet: ctx.global.quiet,
    };
    runtime.block_on(async move { service::run(opts, signals.stopped()).await })?;
    drop(lock);
    Ok(0)
}

/// The signals that stop `spool up`, registered before anything else starts (a signal
/// that arrives early is kept until the daemon looks).
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    /// Set in the background: a hangup (the terminal that started it closed) is ignored.
    hup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Needs a runtime context.
    fn install(detached: bool) -> Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hup: if detached {
                Some(signal(SignalKind::hangup()).context("installing the SIGHUP handler")?)
            } else {
                None
            },
        })
    }

    /// Completes at the first SIGINT or SIGTERM.
    async fn stopped(self) {
        let StopSignals {
            mut int,
            mut term,
            hup,
        } = self;
        if let Some(mut hup) = hup {
            tokio::spawn(async move { while hup.recv().await.is_some() {} });
        }
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// Starts `spool up` again as a background process in its own process group, with its
/// output appended to `<state dir>/daemon.log`, and returns once it holds the instance
/// lock (or reports why it stopped).
fn detach(ctx: &Ctx, args: &UpArgs, state_dir: &Path) -> Result<i32> {
    if let Some(pid) = instance::running(state_dir)? {
        bail!("a spool daemon (pid {pid}) is already running on this repository");
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let log_path = state_dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let err = log
        .try_clone()
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(
        std::env::current_exe().context("finding the spool executable")?,
    );
    // `ctx.cwd` already has `-C` applied.
    cmd.current_dir(&ctx.cwd)
        .arg("up")
        .arg("--detached")
        .arg(format!("--grace-secs={}", args.grace_secs))
        .arg(format!("--rescan-ms={}", args.rescan_ms))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    // Its own process group: Ctrl-C in this terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("starting the background daemon")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if instance::running(state_dir)? == Some(child.id()) {
            break;
        }
        if let Some(status) = child.try_wait().context("waiting for the daemon")? {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let tail = String::from_utf8_lossy(&text[(start as usize).min(text.len())..]);
            bail!(
                "the daemon stopped at once ({status}):\n{}",
                tail.trim_end()
            );
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the daemon (pid {}) did not start within 30 s; see {}",
                child.id(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if ctx.global.json {
        println!(
            "{}",
            json!({"pid": child.id(), "log": log_path.display().to_string()})
        );
    } else {
        println!(
            "spool daemon started (pid {}); log: {}; stop it with `spool down`",
            child.id(),
            log_path.display()
        );
    }
    Ok(0)
}

/// `spool down`: SIGTERM to the daemon, then wait until it released its lock.
pub fn down_cmd(ctx: &Ctx, args: &DownArgs) -> Result<i32> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let ws = ctx.workspace()?;
    let state_dir = ws.state_dir();
    let Some(pid) = instance::running(&state_dir)? else {
        if ctx.global.json {
            println!("{}", json!({"stopped": false, "running": false}));
        } else {
            println!("no spool daemon is running on this repository");
        }
        return Ok(0);
    };
    let target = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
        .with_context(|| {
            format!(
                "{} does not name the daemon's pid",
                instance::lock_path(&state_dir).display()
            )
        })?;
    kill(target, Signal::SIGTERM).with_context(|| format!("signalling pid {pid}"))?;
    let wait = |limit: Duration| -> Result<bool> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if instance::running(&state_dir)?.is_none() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(false)
    };
    let mut killed = false;
    if !wait(Duration::from_secs(args.timeout))? {
        if !args.force {
            bail!(
                "the daemon (pid {pid}) is still running {} s after SIGTERM; `spool down --force` kills it",
                args.timeout
            );
        }
        kill(target, Signal::SIGKILL).with_context(|| format!("killing pid {pid}"))?;
        if !wait(Duration::from_secs(10))? {
            bail!("the daemon (pid {pid}) survived SIGKILL");
        }
        killed = true;
    }
    if ctx.global.json {
        println!(
            "{}",
            json!({"stopped": true, "running": false, "pid": pid, "killed": killed})
        );
    } else if killed {
        println!("spool daemon (pid {pid}) killed; its runs resume on the next `spool up`");
    } else {
        println!("spool daemon (pid {pid}) stopped");
    }
    Ok(0)
}

/// Age in whole seconds from an RFC 3339 time, when it parses.
fn age_secs(created: &str, now: DateTime<Utc>) -> Option<i64> {
    DateTime::parse_from_rfc3339(created)
        .ok()
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0))
}

pub fn status_cmd(ctx: &Ctx) -> Result<i32> {
    let root = super::run::repo_root(&ctx.cwd).context("not inside a git repository")?;
    let common = crate::workspace::git_common_dir(&root)
        .with_context(|| format!("cannot find git's directory for {}", root.display()))?;
    let db = crate::engine::default_db_path(&common);
    let daemon = instance::running(&common.join("spool"))?;
    let mut rows = Vec::new();
    if db.exists() {
        let store = Store::open(&db, Durability::Full)
            .with_context(|| format!("opening {}", db.display()))?;
        for r in store.list_runs(None)? {
            let state = store.load_state(&r.run_id)?.map(|(_, s)| s);
            let current: Vec<String> = state
                .as_ref()
                .map(|s| {
                    s.activities
                        .values()
                        .map(|pa| match pa.phase {
                            AttemptPhase::Backoff { .. } => {
                                format!("{} (waiting to retry)", pa.activity_id)
                            }
                            _ => format!("{} (attempt {})", pa.activity_id, pa.attempt),
                        })
                        .collect()
                })
                .unwrap_or_default();
            rows.push(json!({
                "issue": r.workflow_id,
                "run_id": r.run_id,
                "template": r.workflow_type,
                "status": r.status,
                "current": current,
                "age_secs": age_secs(&r.created_at, ctx.now),
                "created_at": r.created_at,
                "closed_at": r.closed_at,
            }));
        }
    }
    if ctx.global.json {
        let daemon = json!({"running": daemon.is_some(), "pid": daemon});
        println!("{}", json!({ "daemon": daemon, "runs": rows }));
        return Ok(0);
    }
    match daemon {
        Some(pid) => println!("daemon: running (pid {pid})"),
        None => println!("daemon: not running"),
    }
    if rows.is_empty() {
        println!("no runs");
    }
    for r in &rows {
        let current: Vec<&str> = r["current"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<16} {:<10} {:<12} {:>6}s  {}",
            r["issue"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["template"].as_str().unwrap_or(""),
            r["age_secs"].as_i64().unwrap_or(0),
            current.join(", ")
        );
    }
    Ok(0)
}

/// Succeeds when the run branch of the issue has a commit `base` does not: the agent
/// committed its work.
pub fn verify_commits_cmd(ctx: &Ctx, args: &VerifyCommitsArgs) -> Result<i32> {
    let base = gix::ObjectId::from_hex(args.base.as_bytes())
        .with_context(|| format!("{:?} is not a commit id", args.base))?;
    if crate::git::worktree_has_new_commits(&ctx.cwd, &args.id, base)? {
        return Ok(0);
    }
    eprintln!(
        "spool/{}: no commit after {} (the agent committed nothing)",
        args.id, args.base
    );
    Ok(1)
}

/// Runs one agent step in the current directory; exits 0 when the agent succeeded (for a
/// `command` agent, with the agent's own exit code otherwise).
pub fn agent_step_cmd(ctx: &Ctx, args: &AgentStepArgs) -> Result<i32> {
    let def = AgentDef::from_json(&args.agent).map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir().context("creating the attempt directory")?;
    // Under the engine, the agent's transcript and process group record go beside
    // this step's own.
    let attempt_dir = std::env::var_os(crate::exec::ENV_RESULT_FILE)
        .map(PathBuf::from)
        .and_then(|r| r.parent().map(Path::to_path_buf));
    let transcript = attempt_dir.as_ref().map(|d| d.join(super::logs::AGENT_LOG));
    let pid_file = attempt_dir
        .as_ref()
        .map(|d| d.join(crate::engine::command::AGENT_PID_FILE));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let relay = cancel.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            relay.cancel();
        });
        agent::run_step(
            &def,
            &args.step,
            &args.prompt,
            &agent::StepPlace {
                cwd: &ctx.cwd,
                attempt_dir: dir.path(),
                transcript,
                pid_file,
                base: args.base.clone(),
                heartbeat: std::env::var_os(crate::exec::ENV_HEARTBEAT_FILE).map(PathBuf::from),
                resume: std::env::var(crate::engine::command::ENV_LAST_HEARTBEAT)
                    .ok()
                    .and_then(|d| agent::session_in_heartbeat(&d, &def.kind)),
            },
            &cancel,
        )
        .await
        .map_err(anyhow::Error::msg)
    })?;
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    // The engine records the result file of failed attempts too: cost counts either way.
    if let (Some(report), Some(path)) = (
        &outcome.report,
        std::env::var_os(crate::exec::ENV_RESULT_FILE),
    ) {
        let message = report
            .final_message
            .as_deref()
            .map(|m| crate::daemon::progress::one_line(m, 2000));
        let result = json!({"usage": report.usage, "final_message": message});
        if let Err(e) = std::fs::write(&path, result.to_string()) {
            eprintln!(
                "spool agent-step: cannot write {}: {e}",
                Path::new(&path).display()
            );
        }
    }
    if outcome.ok {
        return Ok(0);
    }
    eprintln!("spool agent-step {}: {}", args.step, outcome.message);
    Ok(match outcome.exit_code {
        Some(code) if code != 0 && def.kind == agent::COMMAND_KIND => code,
        _ => 1,
    })
}

#[derive(Debug, Clone, Args)]
pub struct DaemonBenchArgs {
    /// Issues made ready one after another (each measured alone).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Synthetic issues in the backlog besides the probes.
    #[arg(long, default_value_t = 1000)]
    pub size: usize,
    /// Then this many ready issues appear at once; measures the time until every one is
    /// claimed, run (the `noop` template), closed and committed. 0 skips it.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Runs at once (`max_concurrent`).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// Quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `spool bench daemon`: from a new ready issue appearing in the backlog file (as a
/// `git pull` would write it) to the daemon's claim in the file and in a commit. The
/// daemon runs in this process, on a scratch repository, with the `noop` template.
pub fn bench_daemon(args: &DaemonBenchArgs) -> Result<i32> {
    use crate::git;
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let tmp = tempfile::tempdir().context("creating a scratch directory")?;
    let root = tmp.path().to_path_buf();
    git::Git::new(&root).run(["init", "-q", "-b", "main"])?;
    std::fs::create_dir_all(root.join(".beads")).context("creating .beads")?;
    std::fs::create_dir_all(root.join(".spool")).context("creating .spool")?;
    std::fs::write(root.join(".beads/config.yaml"), "issue-prefix: \"bench\"\n")?;
    std::fs::write(
        root.join(".spool/config.toml"),
        format!(
            "max_concurrent = {}\n[[select]]\nlabels = [\"bench-probe\"]\ntemplate = \"noop\"\n",
            args.concurrency.max(1)
        ),
    )?;
    let issues = root.join(".beads/issues.jsonl");
    let synth = super::bench::synth_bytes(&crate::synth::SynthSpec {
        issues: args.size,
        seed: 1,
        prefix: "bench".into(),
    });
    crate::atomic::write_atomic(&issues, &synth)?;
    let actor = "spool@bench";
    let rel = Path::new(".beads/issues.jsonl");
    git::commit_paths(
        &root,
        &[rel],
        "bench: backlog",
        &crate::daemon::issues::signature(actor, Utc::now()),
    )?;
    let ws = crate::workspace::Workspace::find(&root).context("the scratch workspace")?;
    let (config, config_path) = load_config(&root)?;
    let _lock = instance::acquire(&ws.state_dir())?;
    let opts = service::Options {
        code_root: ws.root.clone(),
        ws,
        config,
        config_path,
        actor: actor.to_string(),
        agent: AgentDef::command("true"),
        spool_exe: std::env::current_exe().context("finding the spool executable")?,
        grace: Duration::from_secs(5),
        rescan: Duration::from_secs(2),
        quiet: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = runtime.spawn(service::run(opts, async move {
        let _ = stop_rx.await;
    }));
    let limit = Duration::from_secs(30);
    let wait = |what: &str, cond: &dyn Fn() -> Result<bool>| -> Result<std::time::Instant> {
        let start = std::time::Instant::now();
        loop {
            if cond()? {
                return Ok(std::time::Instant::now());
            }
            if start.elapsed() > limit {
                bail!("no {what} within {limit:?}");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    };
    let probe = |id: &str| {
        format!(
            r#"{{"id":"{id}","title":"Probe {id}","status":"open","priority":0,"issue_type":"task","labels":["bench-probe"],"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"#
        )
    };
    let (mut written, mut committed) = (Vec::new(), Vec::new());
    for n in 0..args.runs {
        let id = format!("bench-probe{n}");
        let line = probe(&id);
        let claimed = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .any(|l| l.contains(&format!("\"id\":\"{id}\"")) && l.contains("in_progress"))
        };
        let closed = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .any(|l| l.contains(&format!("\"id\":\"{id}\"")) && l.contains("\"closed\""))
        };
        let mut bytes = crate::backlog::read_bytes(&issues)?;
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        crate::atomic::write_atomic(&issues, &bytes)?;
        let t0 = std::time::Instant::now();
        let t1 = wait("claim in the file", &|| {
            Ok(claimed(&crate::backlog::read_bytes(&issues)?))
        })?;
        let t2 = wait("claim commit", &|| {
            Ok(git::head_blob(&root, rel)?.is_some_and(|b| claimed(&b) || closed(&b)))
        })?;
        written.push(t1 - t0);
        committed.push(t2 - t0);
        // Measure each probe alone: wait until its run is over and committed.
        wait("the run's end", &|| {
            Ok(git::head_blob(&root, rel)?.is_some_and(|b| closed(&b)))
        })?;
    }
    // Throughput: a pull bringing `batch` ready issues at once.
    let mut batch_time = None;
    if args.batch > 0 {
        let mut bytes = crate::backlog::read_bytes(&issues)?;
        for n in 0..args.batch {
            bytes.extend_from_slice(probe(&format!("bench-batch{n}")).as_bytes());
            bytes.push(b'\n');
        }
        crate::atomic::write_atomic(&issues, &bytes)?;
        let t0 = std::time::Instant::now();
        let all_closed = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| l.contains("\"id\":\"bench-batch") && l.contains("\"closed\""))
                .count()
                == args.batch
        };
        let limit = Duration::from_secs(600);
        loop {
            if git::head_blob(&root, rel)?.is_some_and(|b| all_closed(&b)) {
                break;
            }
            if t0.elapsed() > limit {
                bail!("the batch was not done within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        batch_time = Some(t0.elapsed());
    }
    let _ = stop_tx.send(());
    runtime
        .block_on(daemon)
        .context("the daemon task")?
        .context("the daemon")?;
    written.sort();
    committed.sort();
    println!("# spool daemon latency\n");
    println!(
        "- command: `spool bench daemon --runs {} --size {} --batch {} --concurrency {}`",
        args.runs, args.size, args.batch, args.concurrency
    );
    println!("- from a ready issue written to the backlog file (as by `git pull`) to:\n");
    println!("| event | p50 ms | p90 ms | max ms |\n|---|---|---|---|");
    for (name, d) in [
        ("claim in the file", &written),
        ("claim committed", &committed),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            quantile(d, 0.5).as_secs_f64() * 1e3,
            quantile(d, 0.9).as_secs_f64() * 1e3,
            quantile(d, 1.0).as_secs_f64() * 1e3
        );
    }
    if let Some(t) = batch_time {
        println!(
            "\n{} ready issues at once, `noop` template (10 steps), {} runs at a time: all \
             claimed, run, closed and committed in {:.1} s ({:.1} issues/s).",
            args.batch,
            args.concurrency.max(1),
            t.as_secs_f64(),
            args.batch as f64 / t.as_secs_f64()
        );
    }
    Ok(0)
}
