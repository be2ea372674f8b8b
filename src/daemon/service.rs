//! The event loop of `spool up`.
//!
//! Everything the daemon reacts to arrives as one [`Event`] on one channel and is handled
//! in order by one task, so the daemon's own state (which issue has which open run) needs
//! no locks. Reconciling is idempotent: it looks at the backlog as it is, so an event
//! caused by the daemon's own write costs one read of the file and nothing else.

use super::budget::Ledger;
use super::coalesce::Pending;
use super::config::Config;
use super::issues::{Claim, Writer};
use super::progress::{self, DepResult, RunPlace, StepEnd, FAILED_LABEL};
use super::report::{Gate, Reporting};
use super::routing;
use super::team::{Confirmed, SyncWorker, Team};
use crate::backlog::Backlog;
use crate::engine::{CommandRunner, Engine, EngineConfig, EngineError, Templates};
use crate::git;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use chrono::Utc;
use notify::Watcher;
use spool_core::beads::graph::Graph;
use spool_core::beads::lease::{self, Holder};
use spool_core::beads::ready::{ready, ReadyQuery};
use spool_core::beads::{Issue, StatusKind};
use spool_core::workflow::event::EventAttributes;
use spool_core::workflow::program::{OnComplete, Program, StepKind};
use spool_core::workflow::state::{Phase, RunState, RunStatus};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long stopped steps get to exit after the grace period: exec's SIGTERM-to-SIGKILL
/// grace and a margin.
const STOP_WAIT: Duration = Duration::from_secs(12);

/// How the daemon runs.
pub struct Options {
    /// Where the backlog is.
    pub ws: Workspace,
    /// The user's checkout: `.spool/` (templates, schedules) and the commit run
    /// worktrees start from. The same as `ws.root` unless the backlog lives on its own
    /// branch in a hidden worktree (`spool sync --mode branch`).
    pub code_root: PathBuf,
    pub config: Config,
    /// Where `config` came from; re-read when it changes.
    pub config_path: PathBuf,
    pub actor: String,
    /// The agent the templates' agent steps run (`{run.agent}`).
    pub agent: super::agent::AgentDef,
    /// This executable, `{run.spool}`.
    pub spool_exe: PathBuf,
    /// How long running attempts may take to finish after a stop request.
    pub grace: Duration,
    /// The safety-net rescan interval.
    pub rescan: Duration,
    pub quiet: bool,
}

/// Everything the loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A watched file changed (coalesced).
    BacklogChanged,
    /// The periodic rescan.
    RescanTick,
    Run(RunEvent),
    /// The coalescing window of pending backlog commits is over.
    CommitDue,
    /// Time to renew the leases of this daemon's claims (team mode).
    RenewLeases,
    /// Time to sync with the remote to see teammates' work (team mode).
    SyncTick,
    /// A background sync failed (team mode).
    SyncFailed(String),
    /// Stop: no new claims, running attempts get the grace period.
    Shutdown,
}

#[derive(Debug)]
pub enum RunEvent {
    StepEnded(StepEnd),
    Closed { run_id: String, status: RunStatus },
}

/// Issues to start (index, template), and issues left for another machine (id, the
/// capabilities it needs that this one lacks).
type Picks = (Vec<(usize, String)>, Vec<(String, Vec<String>)>);

struct OpenRun {
    run_id: String,
    template: String,
}

struct Daemon {
    opts: Options,
    engine: Engine,
    templates: Templates,
    /// Open runs by issue id.
    open: HashMap<String, OpenRun>,
    /// Step ids of each template, for the `(2/4)` of progress messages.
    step_ids: HashMap<String, Vec<String>>,
    gate: Arc<Gate>,
    ledger: Arc<std::sync::Mutex<Ledger>>,
    /// Team mode: claims confirmed by push, background syncs.
    team: Option<Team>,
    syncer: Option<SyncWorker>,
    last_sync_error: Option<String>,
    /// Issues already reported as needing capabilities this daemon lacks.
    unroutable: std::collections::HashSet<String>,
    /// Commit messages of backlog changes not committed yet.
    pending: std::sync::Mutex<Pending>,
    /// The loop's own channel, for timers.
    events: UnboundedSender<Event>,
    /// The config text last seen, so a change is parsed once.
    config_text: Option<String>,
}

/// Runs the daemon until `stop` completes (or the engine fails to start).
pub async fn run(opts: Options, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let common = crate::workspace::git_common_dir(&opts.ws.root)
        .with_context(|| format!("{} is not a git repository", opts.ws.root.display()))?;
    let db = crate::engine::default_db_path(&common);
    let attempts = db
        .parent()
        .map(|p| p.join("attempts"))
        .context("the database path has no directory")?;
    let (tx, rx) = unbounded_channel::<Event>();
    let gate = Arc::new(Gate::default());
    let ledger = Arc::new(std::sync::Mutex::new(Ledger::new(opts.config.budget)));
    let reporting = Reporting {
        ledger: ledger.clone(),
        inner: Arc::new(CommandRunner::new(attempts)),
        ends: {
            let t = tx.clone();
            Arc::new(move |end| {
                let _ = t.send(Event::Run(RunEvent::StepEnded(end)));
            })
        },
        gate: gate.clone(),
    };
    let templates = Templates::for_repo(&opts.code_root);
    let mut config = EngineConfig::new(db.clone()).runner("command", Arc::new(reporting));
    config.templates = templates.clone();
    config.durability = opts.config.durability;
    config.schedules = Some(crate::engine::SchedulerConfig::for_repo(
        &opts.code_root,
        &opts.actor,
    ));
    config.quiet = opts.quiet;
    let engine = Engine::start(config)
        .await
        .with_context(|| format!("starting the engine on {}", db.display()))?;

    let mut closed = engine.closed_runs();
    let t = tx.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match closed.recv().await {
                Ok((run_id, status)) => {
                    let _ = t.send(Event::Run(RunEvent::Closed { run_id, status }));
                }
                // Missed closes are found by the next rescan.
                Err(RecvError::Lagged(_)) => {
                    let _ = t.send(Event::RescanTick);
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    let _watcher = watch(
        &opts.ws,
        &opts.code_root,
        &common,
        tx.clone(),
        opts.config.coalesce_ms,
    )?;
    let t = tx.clone();
    let every = opts.rescan;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if t.send(Event::RescanTick).is_err() {
                break;
            }
        }
    });
    let team = opts.config.lease_secs.map(|_| {
        Team::new(
            opts.ws.clone(),
            opts.actor.clone(),
            opts.config.sync.remote.clone(),
            opts.config.sync.branch.clone(),
            opts.config
                .sync
                .max_attempts
                .unwrap_or(crate::sync::DEFAULT_MAX_ATTEMPTS),
        )
    });
    let syncer = team.clone().map(|t| {
        let events = tx.clone();
        SyncWorker::start(t, move |m| {
            let _ = events.send(Event::SyncFailed(m));
        })
    });
    if let Some(team) = &team {
        // See what teammates did while this daemon was down before looking at the
        // backlog: a claim taken over meanwhile is theirs.
        if let Err(f) = tokio::task::block_in_place(|| team.sync()) {
            eprintln!(
                "spool up: sync before start: {} (going on with the local backlog)",
                f.error
            );
        }
        let every = Duration::from_secs(opts.config.sync_secs);
        let t = tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if t.send(Event::SyncTick).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(secs) = opts.config.lease_secs {
        // A third of the lease: two renewals may fail before a teammate may take over.
        let every = Duration::from_secs(secs).div_f64(3.0);
        let t = tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if t.send(Event::RenewLeases).is_err() {
                    break;
                }
            }
        });
    }
    let t = tx.clone();
    tokio::spawn(async move {
        stop.await;
        let _ = t.send(Event::Shutdown);
    });

    let mut daemon = Daemon {
        opts,
        engine,
        templates,
        open: HashMap::new(),
        step_ids: HashMap::new(),
        gate,
        ledger,
        pending: std::sync::Mutex::new(Pending::default()),
        team,
        syncer,
        last_sync_error: None,
        unroutable: Default::default(),
        events: tx.clone(),
        config_text: None,
    };
    daemon.config_text = std::fs::read_to_string(&daemon.opts.config_path).ok();
    daemon.recover_open_runs().await?;
    daemon.say(&format!(
        "spool up: {} on {} (epoch {}, {} open run(s))",
        daemon.opts.actor,
        daemon.opts.ws.root.display(),
        daemon.engine.epoch(),
        daemon.open.len()
    ));
    daemon.event_loop(rx).await;
    daemon.flush_commits();
    let Daemon { engine, .. } = daemon;
    engine.shutdown().await;
    Ok(())
}

/// What each dependency of issue `ix` came to (closed ones with their reason), for the
/// agent's prompt.
fn dep_results(graph: &Graph<'_>, ix: usize) -> Vec<DepResult> {
    graph
        .dependencies(ix)
        .into_iter()
        .filter_map(|edge| {
            let other = graph.issue(edge.other?);
            Some(DepResult {
                id: other.id.clone(),
                title: other.title.clone(),
                dep_type: edge.dep.dep_type.clone(),
                status: other.status.clone(),
                close_reason: other.close_reason.clone(),
            })
        })
        .collect()
}

/// Watches the backlog, `.spool/`, the rescan file the git hooks touch, and HEAD/refs;
/// each burst of changes becomes one [`Event::BacklogChanged`] after `coalesce_ms`.
fn watch(
    ws: &Workspace,
    code_root: &Path,
    common: &Path,
    tx: UnboundedSender<Event>,
    coalesce_ms: u64,
) -> Result<notify::RecommendedWatcher> {
    let (raw_tx, mut raw_rx) = unbounded_channel::<()>();
    let issues = ws.issues_path();
    let spool_dir = code_root.join(".spool");
    let rescan = common.join("spool").join("rescan");
    let refs = common.join("refs");
    let head = common.join("HEAD");
    let relevant = {
        let (issues, spool_dir, rescan, refs, head) = (
            issues.clone(),
            spool_dir.clone(),
            rescan.clone(),
            refs.clone(),
            head.clone(),
        );
        move |p: &Path| {
            p == issues
                || p == rescan
                || p == head
                || p.starts_with(&spool_dir)
                || p.starts_with(&refs)
        }
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if ev.paths.iter().any(|p| relevant(p)) {
                let _ = raw_tx.send(());
            }
        }
    })
    .context("starting the file watcher")?;
    // Directories, not files: an atomic write replaces the backlog's inode.
    let mut dirs: Vec<(PathBuf, notify::RecursiveMode)> = vec![
        (ws.beads_dir.clone(), notify::RecursiveMode::NonRecursive),
        (common.to_path_buf(), notify::RecursiveMode::NonRecursive),
        (refs, notify::RecursiveMode::Recursive),
    ];
    if let Some(dir) = rescan.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        dirs.push((dir.to_path_buf(), notify::RecursiveMode::NonRecursive));
    }
    if spool_dir.is_dir() {
        dirs.push((spool_dir, notify::RecursiveMode::Recursive));
    }
    for (dir, mode) in dirs {
        if dir.exists() {
            watcher
                .watch(&dir, mode)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
    }
    let coalesce = Duration::from_millis(coalesce_ms);
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            tokio::time::sleep(coalesce).await;
            while raw_rx.try_recv().is_ok() {}
            if tx.send(Event::BacklogChanged).is_err() {
                break;
            }
        }
    });
    Ok(watcher)
}

impl Daemon {
    fn say(&self, msg: &str) {
        if !self.opts.quiet {
            eprintln!("{msg}");
        }
    }

    fn warn(&self, msg: &str) {
        eprintln!("spool up: {msg}");
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            lease: self
                .opts
                .config
                .lease_secs
                .map(|s| chrono::Duration::seconds(s as i64)),
            ws: &self.opts.ws,
            actor: &self.opts.actor,
            commit: self.opts.config.commit,
        }
    }

    /// Runs left open by an earlier life of the daemon are the engine's again (it
    /// re-dispatched their attempts); remember which issue each belongs to.
    async fn recover_open_runs(&mut self) -> Result<()> {
        let runs = self
            .engine
            .read(|s| s.list_runs(None))
            .await
            .map_err(anyhow::Error::from)??;
        let today = Utc::now().date_naive();
        for r in &runs {
            // What was spent today and by open runs counts against the budgets.
            let open = matches!(r.status.as_str(), "new" | "running");
            let closed_today = r
                .closed_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.with_timezone(&Utc).date_naive() >= today);
            if open || closed_today {
                let rid = r.run_id.clone();
                let events = self.engine.read(move |s| s.history(&rid)).await??;
                if let Ok(mut l) = self.ledger.lock() {
                    l.add_history(&r.run_id, &events);
                }
            }
        }
        for r in runs {
            if matches!(r.status.as_str(), "new" | "running") && r.parent_run_id.is_none() {
                self.open.insert(
                    r.workflow_id.clone(),
                    OpenRun {
                        run_id: r.run_id,
                        template: r.workflow_type,
                    },
                );
            }
        }
        Ok(())
    }

    async fn event_loop(&mut self, mut rx: UnboundedReceiver<Event>) {
        let mut draining: Option<tokio::time::Instant> = None;
        let mut stopping = false;
        self.reconcile().await;
        self.gate.open();
        loop {
            let next = match draining {
                None => rx.recv().await,
                Some(deadline) => {
                    if self.gate.in_flight() == 0 {
                        break;
                    }
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        if stopping {
                            self.warn("some steps did not stop in time; they are killed");
                            break;
                        }
                        // Grace is over: SIGTERM the steps (SIGKILL after exec's grace),
                        // so they can stop their own children, and wait for that.
                        self.gate.stop_running();
                        stopping = true;
                        draining = Some(now + STOP_WAIT);
                        continue;
                    }
                    match tokio::time::timeout_at(
                        deadline.min(now + Duration::from_millis(50)),
                        rx.recv(),
                    )
                    .await
                    {
                        Ok(ev) => ev,
                        Err(_) => continue,
                    }
                }
            };
            let Some(ev) = next else { break };
            match ev {
                Event::BacklogChanged | Event::RescanTick => {
                    if draining.is_none() {
                        self.reconcile().await;
                    }
                }
                Event::Run(RunEvent::StepEnded(end)) => self.step_ended(end).await,
                Event::CommitDue => self.flush_commits(),
                Event::RenewLeases => self.renew_leases(),
                Event::SyncFailed(message) => self.sync_failed(message),
                Event::SyncTick => {
                    if let Some(s) = &self.syncer {
                        s.request();
                    }
                }
                Event::Run(RunEvent::Closed { run_id, status }) => {
                    self.run_closed(&run_id, status).await;
                    if draining.is_none() {
                        self.reconcile().await;
                    }
                }
                Event::Shutdown => {
                    if draining.is_none() {
                        self.say("spool up: stopping (no new claims; running steps may finish)");
                        self.gate.drain();
                        draining = Some(tokio::time::Instant::now() + self.opts.grace);
                    }
                }
            }
        }
    }

    /// Claims and starts runs for ready, selected issues, within `max_concurrent`; picks
    /// up issues this actor holds without an open run (an earlier life died between
    /// claim and start, or between a run's end and its write-back).
    async fn reconcile(&mut self) {
        self.reload_config();
        let backlog = match tokio::task::block_in_place(|| Backlog::load(&self.opts.ws)) {
            Ok(b) => b,
            Err(e) => {
                self.warn(&format!("cannot read the backlog: {e:#}"));
                return;
            }
        };
        let graph = Graph::new(backlog.file.issues());
        self.drop_lost_claims(&graph).await;
        self.answer_gates(&graph).await;
        let (picked, unroutable) = self.pick(&graph);
        for (id, missing) in unroutable {
            if self.unroutable.insert(id.clone()) {
                self.say(&format!(
                    "spool up: {id} left for another machine: needs {}",
                    missing.join(", ")
                ));
            }
        }
        let candidates: Vec<(Issue, String, Vec<DepResult>)> = picked
            .into_iter()
            .map(|(ix, t)| (graph.issue(ix).clone(), t, dep_results(&graph, ix)))
            .collect();
        drop(graph);
        for (issue, template, deps) in candidates {
            if self.open.len() >= self.opts.config.max_concurrent {
                break;
            }
            if let Err(e) = self.start(&issue, &template, &deps).await {
                self.warn(&format!("{}: {e:#}", issue.id));
            }
        }
    }

    /// Issues to start, in order (those this actor holds without an open run, then ready
    /// ones the selectors match and this machine can run), and those left for a machine
    /// with capabilities this one lacks.
    fn pick(&self, graph: &Graph<'_>) -> Picks {
        // What each selectable template requires of the machine.
        let mut requires: HashMap<String, BTreeSet<String>> = HashMap::new();
        for rule in &self.opts.config.select {
            if !requires.contains_key(&rule.template) {
                let r = self
                    .templates
                    .load(&rule.template)
                    .map(|(_, p)| p.requirements())
                    .unwrap_or_default();
                requires.insert(rule.template.clone(), r);
            }
        }
        let have = routing::capabilities(&self.opts.config.capabilities, &self.opts.agent.kind);
        let mut unroutable = Vec::new();
        let mut select = |issue: &Issue| -> Option<String> {
            if issue.labels.iter().any(|l| l == FAILED_LABEL) {
                return None;
            }
            let template = self.opts.config.template_for(issue)?;
            let missing = routing::unmet(
                issue,
                requires.get(template).unwrap_or(&BTreeSet::new()),
                &have,
            );
            if !missing.is_empty() {
                unroutable.push((issue.id.clone(), missing));
                return None;
            }
            Some(template.to_string())
        };
        // Issues this actor holds without an open run come first, then ready ones.
        let mut picked: Vec<(usize, String)> = Vec::new();
        let now = Utc::now();
        let team = self.opts.config.lease_secs.is_some();
        for ix in graph.live_indexes() {
            let issue = graph.issue(ix);
            // In a team, an issue whose holder's lease ran out is taken over.
            let takeover = team
                && matches!(
                    lease::holder(issue, &self.opts.actor, now),
                    Holder::Expired { .. }
                );
            if issue.status_kind() == StatusKind::InProgress
                && (issue.assignee == self.opts.actor || takeover)
                && !self.open.contains_key(&issue.id)
            {
                if let Some(t) = select(issue) {
                    picked.push((ix, t));
                }
            }
        }
        let query = ReadyQuery {
            limit: 0,
            ..ReadyQuery::default()
        };
        for ix in ready(graph, &query, Utc::now()).issues {
            let issue = graph.issue(ix);
            // An epic waits for its children: it runs once every one of them is closed.
            let waits = graph
                .children(ix)
                .any(|c| graph.is_live(c) && graph.status_kind(c) != StatusKind::Closed);
            if issue.status_kind() == StatusKind::Open
                && !waits
                && !self.open.contains_key(&issue.id)
            {
                if let Some(t) = select(issue) {
                    picked.push((ix, t));
                }
            }
        }
        (picked, unroutable)
    }

    /// A run's state and the template version it pinned.
    async fn pinned(&self, run_id: &str) -> Option<(RunState, Program)> {
        let rid = run_id.to_string();
        let (state, row) = self
            .engine
            .read(move |s| -> crate::store::Result<Option<(RunState, _)>> {
                let Some((hash, state)) = s.load_state(&rid)? else {
                    return Ok(None);
                };
                Ok(s.template(&hash)?.map(|row| (state, row)))
            })
            .await
            .ok()?
            .ok()??;
        let program = crate::engine::templates::compile_row(&row).ok()?;
        Some((state, program))
    }

    /// The gate a run is waiting at, if any: its step id and the signals it takes.
    async fn waiting_gate(&self, run_id: &str) -> Option<(String, Vec<String>)> {
        let (state, program) = self.pinned(run_id).await?;
        if !state.status.is_open() || state.phase != Phase::Running {
            return None;
        }
        let step = program.steps.get(state.cursor)?;
        match &step.kind {
            StepKind::Gate(gate) => Some((step.id.clone(), gate.signals.clone())),
            _ => None,
        }
    }

    /// In a team, a run whose issue is no longer this daemon's claim — another daemon
    /// took it over after this one's lease ran out and perhaps finished it, or a person
    /// closed or reassigned it — is terminated here without touching the issue.
    async fn drop_lost_claims(&mut self, graph: &Graph<'_>) {
        if self.opts.config.lease_secs.is_none() {
            return;
        }
        let lost: Vec<(String, String, String)> = self
            .open
            .iter()
            .filter_map(|(id, run)| {
                let issue = graph.get(id)?;
                let mine = issue.status_kind() == StatusKind::InProgress
                    && issue.assignee == self.opts.actor;
                let now = if issue.assignee.is_empty() || issue.assignee == self.opts.actor {
                    format!("is {}", issue.status())
                } else {
                    format!("is {} by {}", issue.status(), issue.assignee)
                };
                (!mine).then(|| (id.clone(), run.run_id.clone(), now))
            })
            .collect();
        for (id, run_id, now) in lost {
            self.open.remove(&id);
            let reason = format!("{id} {now}");
            if let Err(e) = self.engine.terminate(&run_id, &reason).await {
                self.warn(&format!("{id}: terminating run {run_id}: {e}"));
            }
            self.say(&format!("spool up: {id} {now}; run {run_id} stopped"));
            self.remove_worktree(&id);
        }
    }

    /// Renews the leases of the issues this daemon runs.
    fn renew_leases(&self) {
        let ids: Vec<String> = self.open.keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let done = tokio::task::block_in_place(|| self.writer().renew_leases(&ids, Utc::now()));
        match done {
            Ok(0) => {}
            Ok(n) => self.commit(format!("spool: {n} lease(s) renewed")),
            Err(e) => self.warn(&format!("renewing leases: {e:#}")),
        }
    }

    /// Answers gates from the backlog: a run waiting at a gate is signalled `approve`
    /// (`reject`) once its issue carries the label `approved` (`rejected`), as a teammate
    /// pushes it. The request id makes the answer count once per run and gate; the first
    /// time a run is seen waiting, its issue gets a comment saying how to answer.
    async fn answer_gates(&self, graph: &Graph<'_>) {
        let open: Vec<(String, String)> = self
            .open
            .iter()
            .map(|(issue, r)| (issue.clone(), r.run_id.clone()))
            .collect();
        for (issue_id, run_id) in open {
            let Some((step, signals)) = self.waiting_gate(&run_id).await else {
                continue;
            };
            let labels = graph
                .get(&issue_id)
                .map(|i| i.labels.clone())
                .unwrap_or_default();
            let answer = progress::GATE_LABELS.iter().find(|(label, signal)| {
                labels.iter().any(|l| l == label) && signals.iter().any(|s| s == signal)
            });
            if let Some((label, signal)) = answer {
                let request = format!("label:{run_id}:{step}:{label}");
                let payload = serde_json::json!({"label": label, "via": "backlog"});
                match self.engine.signal(&run_id, signal, payload, &request).await {
                    Ok(_) => self.say(&format!(
                        "spool up: {issue_id} gate {step} answered {signal} (label {label})"
                    )),
                    Err(e) => self.warn(&format!("{issue_id}: signalling gate {step}: {e}")),
                }
                continue;
            }
            let text = progress::gate_comment(&issue_id, &step, &signals);
            let said = graph
                .get(&issue_id)
                .is_some_and(|i| i.comments.iter().any(|c| c.text == text));
            if !said {
                let done = tokio::task::block_in_place(|| {
                    self.writer().comment(&issue_id, &text, Utc::now())
                });
                match done {
                    Ok(()) => self.commit(format!("spool: {issue_id} waits at {step}")),
                    Err(e) => self.warn(&format!("{issue_id}: announcing gate {step}: {e:#}")),
                }
            }
        }
    }

    /// Applies an edited config: selectors, limits and committing take effect at once;
    /// a config that does not validate is reported and the previous one kept. The actor
    /// and the coalescing delay stay as started (claims already made name that actor).
    fn reload_config(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.opts.config_path) else {
            return;
        };
        if self.config_text.as_deref() == Some(text.as_str()) {
            return;
        }
        self.config_text = Some(text.clone());
        let file = self.opts.config_path.display().to_string();
        match super::config::parse(&file, &text) {
            Ok(mut config) => {
                if config.actor.is_some() && config.actor.as_deref() != Some(&self.opts.actor) {
                    self.warn("the actor changes only when spool up restarts");
                }
                config.actor = self.opts.config.actor.clone();
                config.coalesce_ms = self.opts.config.coalesce_ms;
                if let Ok(mut l) = self.ledger.lock() {
                    l.limits = config.budget;
                }
                self.opts.config = config;
                self.say(&format!("spool up: reloaded {file}"));
            }
            Err(e) => self.warn(&format!("{e} (keeping the previous configuration)")),
        }
    }

    async fn start(&mut self, issue: &Issue, template: &str, deps: &[DepResult]) -> Result<()> {
        let id = issue.id.clone();
        let claim = tokio::task::block_in_place(|| {
            // Not while a sync is between its look at the remote and its merge: the
            // claim would be merged without that look.
            let _no_sync = self.team.as_ref().map(Team::hold);
            self.writer().claim(&id, Utc::now())
        })?;
        match claim {
            Claim::Claimed | Claim::TookOver { .. } => {
                let what = match &claim {
                    Claim::TookOver { from } => format!("taken over from {from}"),
                    _ => "claimed".to_string(),
                };
                // Claims are committed at once (with whatever is pending).
                self.pending_lock().push(format!("spool: {id} {what}"));
                self.flush_commits();
                self.say(&format!("spool up: {id} {what} ({template})"));
            }
            Claim::AlreadyMine => {
                // A run closed while no daemon was watching: write its end now.
                let wid = id.clone();
                let latest = self.engine.read(move |s| s.find_run(&wid)).await??;
                if let Some(row) = latest.filter(|r| r.closed_at.is_some()) {
                    let status = if row.status == "completed" {
                        RunStatus::Completed
                    } else {
                        RunStatus::Failed
                    };
                    self.finish(&id, &row.run_id, status).await;
                    return Ok(());
                }
            }
            Claim::Refused(_) | Claim::Missing => return Ok(()),
        }
        // In a team, the claim is real once it is on the remote.
        if let Some(team) = &self.team {
            let confirmed = tokio::task::block_in_place(|| team.confirm_claim(&id));
            match confirmed {
                Ok(Confirmed::Yes) => {}
                Ok(Confirmed::LostTo(holder)) => {
                    self.say(&format!("spool up: {id} was claimed first by {holder}"));
                    return Ok(());
                }
                Err(e) => {
                    // Kept as claimed here; confirmed (or given up) by a later attempt.
                    self.sync_failed(format!("{id}: the claim is not pushed yet: {e}"));
                    return Ok(());
                }
            }
        }
        let root = self.opts.code_root.clone();
        let place = tokio::task::block_in_place(|| -> Result<(PathBuf, String)> {
            let path = git::create_run_worktree(&root, &id)?;
            let base = git::head_commit(&path)?
                .with_context(|| format!("{}: the worktree has no commit", path.display()))?;
            Ok((path, base.to_string()))
        });
        let (worktree, base) = match place {
            Ok(p) => p,
            Err(e) => {
                self.release(
                    &id,
                    &format!("spool: cannot create the run worktree: {e:#}"),
                );
                return Ok(());
            }
        };
        let input = progress::run_input(
            issue,
            deps,
            &RunPlace {
                worktree: &worktree,
                base: &base,
                agent: &self.opts.agent.to_json(),
                spool: &self.opts.spool_exe,
                beads_dir: &self.opts.ws.beads_dir,
            },
        );
        let run_id = match self.engine.start_run(template, Some(&id), input).await {
            Ok(run_id) => run_id,
            // Never two open runs for one issue: the one that exists is ours.
            Err(EngineError::AlreadyOpen { run_id, .. }) => run_id,
            Err(e) => {
                self.release(
                    &id,
                    &format!("spool: cannot start template {template:?}: {e}"),
                );
                self.remove_worktree(&id);
                return Ok(());
            }
        };
        self.say(&format!("spool up: {id} run {run_id} started"));
        self.open.insert(
            id,
            OpenRun {
                run_id,
                template: template.to_string(),
            },
        );
        Ok(())
    }

    /// Position of `step` in its template, when the template can be read.
    fn step_index(&mut self, template: &str, step: &str) -> Option<(usize, usize)> {
        if !self.step_ids.contains_key(template) {
            let (_, program) = self.templates.load(template).ok()?;
            let ids = program.steps.iter().map(|s| s.id.clone()).collect();
            self.step_ids.insert(template.to_string(), ids);
        }
        let ids = self.step_ids.get(template)?;
        ids.iter().position(|s| s == step).map(|i| (i, ids.len()))
    }

    async fn step_ended(&mut self, mut end: StepEnd) {
        let template = match self.open.get(&end.issue_id) {
            Some(r) if r.run_id == end.run_id => r.template.clone(),
            _ => return,
        };
        if end.stopped {
            // The engine stopped it and recorded why before it did.
            let why = self
                .recorded_failure(&end.run_id, end.scheduled_event_id, end.attempt)
                .await;
            if let Some(why) = why {
                end.error = Some(why);
            }
        }
        let index = self.step_index(&template, &end.step);
        let text = progress::step_comment(&end, index);
        let message = progress::step_commit_message(&end, index);
        let done =
            tokio::task::block_in_place(|| self.writer().comment(&end.issue_id, &text, Utc::now()));
        match done {
            Ok(()) => self.commit(message),
            Err(e) => self.warn(&format!(
                "{}: recording step {}: {e:#}",
                end.issue_id, end.step
            )),
        }
    }

    async fn run_closed(&mut self, run_id: &str, status: RunStatus) {
        let Some(issue_id) = self
            .open
            .iter()
            .find(|(_, r)| r.run_id == run_id)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        self.finish(&issue_id, run_id, status).await;
    }

    /// Writes a run's end to its issue (closed, or released as failed) and removes its
    /// worktree; the branch stays.
    async fn finish(&mut self, issue_id: &str, run_id: &str, status: RunStatus) {
        self.open.remove(issue_id);
        let now = Utc::now();
        let result = if status == RunStatus::Completed {
            let on_complete = self.on_complete(run_id).await;
            tokio::task::block_in_place(|| -> Result<()> {
                let w = self.writer();
                let note = format!("spool: run {run_id} completed");
                if on_complete.close {
                    w.close(issue_id, &note, now)?;
                } else {
                    w.release(
                        issue_id,
                        &note,
                        &on_complete.add_labels,
                        &on_complete.remove_labels,
                        now,
                    )?;
                }
                Ok(())
            })
            .map(|()| self.commit(format!("spool: {issue_id} done ✓")))
        } else {
            let rid = run_id.to_string();
            let failure = self
                .engine
                .read(move |s| s.load_state(&rid))
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten()
                .and_then(|(_, state)| state.failure)
                .map(|f| {
                    format!(
                        ": {}: {}",
                        f.error_type,
                        progress::one_line(&f.message, 300)
                    )
                })
                .unwrap_or_default();
            let note = format!("spool: run {run_id} {}{failure}", status.as_str());
            self.release(issue_id, &note);
            Ok(())
        };
        if let Err(e) = result {
            self.warn(&format!(
                "{issue_id}: recording the end of run {run_id}: {e:#}"
            ));
        }
        self.say(&format!(
            "spool up: {issue_id} run {run_id} {}",
            status.as_str()
        ));
        self.remove_worktree(issue_id);
    }

    /// Why the engine stopped attempt `attempt` of the step scheduled by `scheduled`: the
    /// pending activity's last failure while it is retried, else the failure event that
    /// ended it.
    async fn recorded_failure(&self, run_id: &str, scheduled: u64, attempt: u32) -> Option<String> {
        let rid = run_id.to_string();
        let (state, events) = self
            .engine
            .read(move |s| -> crate::store::Result<_> {
                Ok((s.load_state(&rid)?, s.history(&rid)?))
            })
            .await
            .ok()?
            .ok()?;
        let describe =
            |f: &spool_core::workflow::event::Failure| format!("{}: {}", f.error_type, f.message);
        if let Some(pa) = state
            .as_ref()
            .and_then(|(_, st)| st.activities.get(&scheduled))
        {
            return pa
                .last_failure
                .as_ref()
                .filter(|_| pa.attempt == attempt + 1)
                .map(describe);
        }
        events.iter().rev().find_map(|e| match &e.attributes {
            EventAttributes::ActivityTaskFailed {
                scheduled_event_id,
                failure,
                ..
            }
            | EventAttributes::ActivityTaskTimedOut {
                scheduled_event_id,
                failure,
                ..
            } if *scheduled_event_id == scheduled => Some(describe(failure)),
            _ => None,
        })
    }

    /// The `[on_complete]` of the template version the run pinned.
    async fn on_complete(&self, run_id: &str) -> OnComplete {
        self.pinned(run_id)
            .await
            .map(|(_, program)| program.on_complete)
            .unwrap_or_default()
    }

    fn release(&self, issue_id: &str, note: &str) {
        let done = tokio::task::block_in_place(|| {
            self.writer().release_failed(issue_id, note, Utc::now())
        });
        match done {
            Ok(()) => self.commit(format!("spool: {issue_id} failed ✗")),
            Err(e) => self.warn(&format!("{issue_id}: releasing after failure: {e:#}")),
        }
    }

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Only this task touches it; a poisoned lock still holds valid messages.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the backlog with `message`, now or, with `commit_coalesce_ms`, together
    /// with the other changes of the same burst.
    fn commit(&self, message: String) {
        let window = self.opts.config.commit_coalesce_ms;
        let first = self.pending_lock().push(message);
        if window == 0 {
            self.flush_commits();
        } else if first {
            let events = self.events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(window)).await;
                let _ = events.send(Event::CommitDue);
            });
        }
    }

    /// Commits everything pending as one commit (and in a team, pushes it soon).
    fn flush_commits(&self) {
        let Some(message) = self.pending_lock().take() else {
            return;
        };
        let done =
            tokio::task::block_in_place(|| self.writer().commit_backlog(&message, Utc::now()));
        if let Err(e) = done {
            self.warn(&format!("committing the backlog: {e:#}"));
        }
        if let Some(s) = &self.syncer {
            s.request();
        }
    }

    /// Reports a failed sync once until the message changes (an unreachable remote
    /// would otherwise say so every few seconds).
    fn sync_failed(&mut self, message: String) {
        if self.last_sync_error.as_deref() != Some(message.as_str()) {
            self.warn(&message);
            self.last_sync_error = Some(message);
        }
    }

    fn remove_worktree(&self, issue_id: &str) {
        let root = self.opts.code_root.clone();
        if let Err(e) = tokio::task::block_in_place(|| git::remove_run_worktree(&root, issue_id)) {
            self.warn(&format!("{issue_id}: removing the run worktree: {e}"));
        }
    }
}
