//! The durable runtime around `spool_core::workflow`.
//!
//! One writer thread owns the SQLite connection. Every input (a start, an attempt's
//! result, a due timer, an inbox row written by another process) goes through `decide`
//! and is committed together with the other inputs that arrived meanwhile (group commit);
//! callers are answered and effects performed only after that commit. At start the boot
//! epoch is bumped, and attempts leased by earlier boots are dispatched again at once.
//!
//! - [`runner`]: the [`ActivityRunner`] trait and the dispatcher (the built-in `noop`
//!   activity type measures the engine alone).
//! - [`templates`]: template lookup by name.
//! - [`scheduler`]: schedules (`.spool/schedules.toml`), ticked on their own thread while
//!   the engine runs; a fire commits its action row and its run in one transaction.

pub mod command;
pub mod runner;
pub mod scheduler;
pub mod templates;
mod writer;

pub use command::CommandRunner;
pub use runner::{ActivityRunner, AttemptControl, AttemptResult, BoxFuture, NOOP};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use templates::{TemplateLoadError, Templates};
pub use writer::new_id;

use crate::store::{Durability, NewRun, Store, StoreError};
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;
use spool_core::workflow::decide::{Input, Verdict};
use spool_core::workflow::state::RunStatus;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};
use writer::{Cmd, Writer};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Template(#[from] TemplateLoadError),
    #[error("{0}")]
    Store(String),
    #[error("workflow {workflow_id} already has an open run {run_id}")]
    AlreadyOpen { workflow_id: String, run_id: String },
    #[error("no run {0}")]
    NoRun(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("another worker is running on {0}")]
    Busy(PathBuf),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyOpen {
                workflow_id,
                run_id,
            } => EngineError::AlreadyOpen {
                workflow_id,
                run_id,
            },
            StoreError::NotFound(r) => EngineError::NoRun(r),
            other => EngineError::Store(other.to_string()),
        }
    }
}

/// The database of a repository: `<repo>/.git/spool/spool.db`. (For a linked worktree,
/// pass git's common directory so all worktrees share one database.)
pub fn default_db_path(git_dir: &Path) -> PathBuf {
    git_dir.join("spool").join("spool.db")
}

/// How to run an engine.
pub struct EngineConfig {
    pub db_path: PathBuf,
    pub durability: Durability,
    pub templates: Templates,
    /// Runners by activity type (`noop` is built in).
    pub runners: HashMap<String, Arc<dyn ActivityRunner>>,
    /// Most transitions per transaction.
    pub batch_max: usize,
    /// Longest wait before looking at timers and the inbox again.
    pub poll_interval: Duration,
    /// Run the schedules of this file (see [`scheduler`]) while the engine runs.
    pub schedules: Option<SchedulerConfig>,
    /// Keep the scheduler's messages (file errors, failed ticks) off stderr.
    pub quiet: bool,
}

impl EngineConfig {
    pub fn new(db_path: PathBuf) -> EngineConfig {
        EngineConfig {
            db_path,
            durability: Durability::Full,
            templates: Templates::default(),
            runners: HashMap::new(),
            batch_max: 4096,
            poll_interval: Duration::from_millis(50),
            schedules: None,
            quiet: false,
        }
    }

    pub fn runner(mut self, activity_type: &str, runner: Arc<dyn ActivityRunner>) -> Self {
        self.runners.insert(activity_type.to_string(), runner);
        self
    }
}

/// A running engine.
pub struct Engine {
    cmds: std::sync::mpsc::Sender<Cmd>,
    closed: broadcast::Sender<(String, RunStatus)>,
    templates: Arc<Templates>,
    epoch: u64,
    writer: Option<std::thread::JoinHandle<()>>,
    dispatcher: tokio::task::JoinHandle<()>,
    scheduler: Option<scheduler::SchedulerHandle>,
    /// Held while this engine runs; the kernel releases it if the process dies.
    _lock: Flock<std::fs::File>,
}

/// Takes `<db>.worker.lock` exclusively, or fails at once if another engine holds it.
fn lock_worker(db: &Path) -> Result<Flock<std::fs::File>, EngineError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".worker.lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::Store(format!("cannot open {}: {e}", path.display())))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            EngineError::Busy(db.to_path_buf())
        } else {
            EngineError::Store(format!("cannot lock {}: {errno}", path.display()))
        }
    })
}

impl Engine {
    /// Opens the database, bumps the boot epoch, re-dispatches interrupted attempts and
    /// starts working. Must be called inside a tokio runtime.
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let mut store = Store::open(&config.db_path, config.durability)?;
        // Two writers would each take the other's attempts for dead ones.
        let lock = lock_worker(&config.db_path)?;
        let epoch = store.bump_boot_epoch()?;
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let (exec_tx, exec_rx) = tokio::sync::mpsc::unbounded_channel();
        let (closed, _) = broadcast::channel(4096);
        let scheduler = match config.schedules {
            Some(sc) => {
                let s = Scheduler::open(
                    &config.db_path,
                    config.durability,
                    config.templates.clone(),
                    sc,
                )
                .map_err(|e| EngineError::Store(format!("{e:#}")))?;
                Some(
                    scheduler::spawn(s, config.quiet)
                        .map_err(|e| EngineError::Store(format!("{e:#}")))?,
                )
            }
            None => None,
        };
        if let Some(s) = &scheduler {
            // A closed run may pause its schedule or let a buffered time start.
            let mut rx = closed.subscribe();
            let wake = s.waker();
            tokio::spawn(async move {
                while let Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) = rx.recv().await {
                    if wake.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        let templates = Arc::new(config.templates);
        let dispatcher = tokio::spawn(runner::dispatcher(
            exec_rx,
            exec_tx.clone(),
            cmd_tx.clone(),
            config.runners,
            epoch,
        ));
        let mut writer = Writer::new(
            store,
            epoch,
            templates.clone(),
            exec_tx,
            closed.clone(),
            config.batch_max,
            config.poll_interval,
        );
        writer.recover()?;
        let handle = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || writer.run(cmd_rx))
            .map_err(|e| EngineError::Store(format!("cannot start the writer thread: {e}")))?;
        Ok(Engine {
            cmds: cmd_tx,
            closed,
            templates,
            epoch,
            writer: Some(handle),
            dispatcher,
            scheduler,
            _lock: lock,
        })
    }

    /// This process's boot epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Starts a run of `template` and returns its run id once durable. Without a
    /// workflow id the run id is used.
    pub async fn start_run(
        &self,
        template: &str,
        workflow_id: Option<&str>,
        input: Value,
    ) -> Result<String, EngineError> {
        let (row, program) = self.templates.load(template)?;
        let run_id = new_id();
        let run = NewRun {
            run_id: run_id.clone(),
            workflow_id: workflow_id.unwrap_or(&run_id).to_string(),
            workflow_type: program.name.clone(),
            template_hash: row.hash.clone(),
            parent_run_id: None,
        };
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Create {
            run,
            template: row,
            input,
            reply: tx,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)??;
        Ok(run_id)
    }

    /// Applies an input to a run and waits until it is durable.
    pub async fn apply(&self, run_id: &str, input: Input) -> Result<Verdict, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Apply {
            run_id: run_id.to_string(),
            input,
            reply: Some(tx),
        })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Resolves a run id or a workflow id (its latest run) to a run id.
    pub async fn resolve(&self, id: &str) -> Result<String, EngineError> {
        let id_owned = id.to_string();
        self.read(move |s| s.find_run(&id_owned))
            .await??
            .map(|r| r.run_id)
            .ok_or_else(|| EngineError::NoRun(id.to_string()))
    }

    pub async fn signal(
        &self,
        id: &str,
        name: &str,
        payload: Value,
        request_id: &str,
    ) -> Result<Verdict, EngineError> {
        let run = self.resolve(id).await?;
        self.apply(
            &run,
            Input::Signal {
                name: name.to_string(),
                payload,
                request_id: request_id.to_string(),
            },
        )
        .await
    }

    /// Graceful: running attempts get SIGTERM, compensations run.
    pub async fn cancel(&self, id: &str, reason: &str) -> Result<Verdict, EngineError> {
        let run = self.resolve(id).await?;
        self.apply(
            &run,
            Input::CancelRequested {
                reason: reason.to_string(),
            },
        )
        .await
    }

    /// Immediate: attempts are killed, no compensation.
    pub async fn terminate(&self, id: &str, reason: &str) -> Result<Verdict, EngineError> {
        let run = self.resolve(id).await?;
        self.apply(
            &run,
            Input::Terminate {
                reason: reason.to_string(),
            },
        )
        .await
    }

    /// Runs `f` on the writer's connection (reads see every commit so far).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Read(Box::new(move |s| {
            let _ = tx.send(f(s));
        })))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Waits until the run is closed, returning its final status.
    pub async fn wait_closed(
        &self,
        run_id: &str,
        limit: Duration,
    ) -> Result<RunStatus, EngineError> {
        let mut rx = self.closed.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let id = run_id.to_string();
            let status = self
                .read(move |s| s.find_run(&id).map(|r| r.map(|r| r.status)))
                .await??
                .ok_or_else(|| EngineError::NoRun(run_id.to_string()))?;
            if !matches!(status.as_str(), "new" | "running") {
                return Ok(parse_status(&status));
            }
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => return Err(EngineError::Timeout(limit)),
                    Ok(Ok((id, status))) if id == run_id => return Ok(status),
                    Ok(Ok(_)) => continue,
                    // Missed notifications: look at the database again.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        return Err(EngineError::Stopped)
                    }
                }
            }
        }
    }

    /// Subscribes to (run id, status) of runs as they close.
    pub fn closed_runs(&self) -> broadcast::Receiver<(String, RunStatus)> {
        self.closed.subscribe()
    }

    /// Stops after the batch in progress is committed. Running attempts are abandoned
    /// (their processes are killed by the runner); the next boot re-dispatches them.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.scheduler.take() {
            let _ = tokio::task::spawn_blocking(move || s.stop()).await;
        }
        let _ = self.cmds.send(Cmd::Shutdown);
        if let Some(h) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.dispatcher.abort();
    }

    fn send(&self, cmd: Cmd) -> Result<(), EngineError> {
        self.cmds.send(cmd).map_err(|_| EngineError::Stopped)
    }
}

fn parse_status(s: &str) -> RunStatus {
    match s {
        "completed" => RunStatus::Completed,
        "failed" => RunStatus::Failed,
        "canceled" => RunStatus::Canceled,
        "terminated" => RunStatus::Terminated,
        "timed_out" => RunStatus::TimedOut,
        "continued_as_new" => RunStatus::ContinuedAsNew,
        "new" => RunStatus::New,
        _ => RunStatus::Running,
    }
}
