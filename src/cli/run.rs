//! `spool run ...`: start, inspect, signal, cancel and retry workflow runs.
//!
//! Every command works whether or not a worker is running: each opens the database,
//! writes its request (a new run, an inbox row) in one transaction and returns; a worker
//! picks the request up within its poll interval.

use super::Ctx;
use crate::engine::{new_id, templates::compile_row, Templates};
use crate::store::{Durability, NewRun, RunRow, Store};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use spool_core::workflow::decide::Input;
use spool_core::workflow::state::{AttemptPhase, RunState};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Subcommand)]
pub enum RunCommand {
    /// Start a run of a template (`.spool/templates/NAME.toml`, a shipped template, or a
    /// path to a `.toml` file).
    Start {
        template: String,
        /// Workflow id (default: the run id). At most one open run per id.
        #[arg(long)]
        id: Option<String>,
        /// Input as JSON, or `@FILE` to read it from a file.
        #[arg(long)]
        input: Option<String>,
    },
    /// List runs.
    List {
        /// Only runs with this status (new, running, completed, failed, canceled, terminated).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show a run (by run id or workflow id): status, steps, what it waits for.
    Show { id: String },
    /// A run's history, shaped like `temporal workflow show -o json`.
    History { id: String },
    /// Send a signal (e.g. approve / reject) to a run's gate.
    Signal {
        id: String,
        name: String,
        /// JSON payload (or `@FILE`).
        #[arg(long)]
        payload: Option<String>,
        /// Idempotency key: a signal with a request id already delivered is dropped.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Cancel gracefully: running steps get SIGTERM, compensations run.
    Cancel {
        id: String,
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
    /// Terminate at once: steps are killed, no compensation.
    Terminate {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Start a new run of a closed, unsuccessful run: same workflow id, template version
    /// and input.
    Retry { id: String },
}

/// The database: `--spool-db`/`SPOOL_DB`, else `<git common dir>/spool/spool.db` of the
/// repository around the working directory.
pub fn database_path(ctx: &Ctx, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            ctx.cwd.join(p)
        });
    }
    let root = repo_root(&ctx.cwd).context("not inside a git repository (pass --spool-db PATH)")?;
    let common = crate::workspace::git_common_dir(&root)
        .with_context(|| format!("cannot find git's directory for {}", root.display()))?;
    Ok(crate::engine::default_db_path(&common))
}

/// The nearest directory holding `.git`, else none.
pub fn repo_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Templates of the repository around the working directory (or the working directory).
pub fn templates(ctx: &Ctx) -> Templates {
    Templates::for_repo(&repo_root(&ctx.cwd).unwrap_or_else(|| ctx.cwd.clone()))
}

fn read_json(ctx: &Ctx, text: &str, what: &str) -> Result<Value> {
    let body = match text.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(ctx.cwd.join(file))
            .with_context(|| format!("reading {what} from {file}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&body).with_context(|| format!("{what} is not valid JSON"))
}

fn find(store: &Store, id: &str) -> Result<RunRow> {
    store
        .find_run(id)?
        .with_context(|| format!("no run or workflow {id:?}"))
}

/// A run that can still take signals, cancellation or termination.
fn find_open(store: &Store, id: &str) -> Result<RunRow> {
    let row = find(store, id)?;
    if !matches!(row.status.as_str(), "new" | "running") {
        bail!(
            "run {} of workflow {} is {}",
            row.run_id,
            row.workflow_id,
            row.status
        );
    }
    Ok(row)
}

pub fn run_cmd(ctx: &Ctx, cmd: &RunCommand, db: Option<&Path>) -> Result<i32> {
    let cmd = cmd.clone();
    let path = database_path(ctx, db)?;
    let mut store = Store::open(&path, Durability::Full)
        .with_context(|| format!("opening {}", path.display()))?;
    let json_out = ctx.global.json;
    match cmd {
        RunCommand::Start {
            template,
            id,
            input,
        } => {
            let input = match input {
                Some(t) => read_json(ctx, &t, "--input")?,
                None => Value::Null,
            };
            let (row, program) = templates(ctx).load(&template)?;
            let run_id = new_id();
            let workflow_id = id.unwrap_or_else(|| run_id.clone());
            let run = NewRun {
                run_id: run_id.clone(),
                workflow_id: workflow_id.clone(),
                workflow_type: program.name.clone(),
                template_hash: row.hash.clone(),
                parent_run_id: None,
            };
            let start = Input::Start {
                workflow_id: workflow_id.clone(),
                run_id: run_id.clone(),
                input,
                parent: None,
            };
            store.create_run(&run, &row, &start, ctx.now)?;
            if json_out {
                println!(
                    "{}",
                    json!({"run_id": run_id, "workflow_id": workflow_id, "template_hash": row.hash})
                );
            } else {
                println!("{run_id}");
            }
        }
        RunCommand::List { status } => {
            let runs = store.list_runs(status.as_deref())?;
            if json_out {
                println!("{}", serde_json::to_string(&runs)?);
            } else {
                for r in runs {
                    println!(
                        "{}  {:<10} {:<12} {}",
                        r.run_id, r.status, r.workflow_type, r.workflow_id
                    );
                }
            }
        }
        RunCommand::Show { id } => {
            let row = find(&store, &id)?;
            let (_, state) = store
                .load_state(&row.run_id)?
                .with_context(|| format!("run {} has no state", row.run_id))?;
            if json_out {
                println!("{}", json!({"run": row, "state": state}));
            } else {
                print!("{}", describe(&row, &state));
            }
        }
        RunCommand::History { id } => {
            let row = find(&store, &id)?;
            let events: Vec<Value> = store
                .history(&row.run_id)?
                .iter()
                .map(|e| e.to_temporal_json())
                .collect();
            if json_out {
                println!("{}", json!({ "events": events }));
            } else {
                for e in &events {
                    println!(
                        "{:>4}  {}  {}",
                        e["eventId"].as_str().unwrap_or(""),
                        e["eventTime"].as_str().unwrap_or(""),
                        e["eventType"]
                            .as_str()
                            .unwrap_or("")
                            .trim_start_matches("EVENT_TYPE_")
                    );
                }
            }
        }
        RunCommand::Signal {
            id,
            name,
            payload,
            request_id,
        } => {
            let row = find_open(&store, &id)?;
            let payload = match payload {
                Some(p) => read_json(ctx, &p, "--payload")?,
                None => Value::Null,
            };
            let request_id = request_id.unwrap_or_else(new_id);
            let input = Input::Signal {
                name,
                payload,
                request_id: request_id.clone(),
            };
            let queued = store.push_inbox(&row.run_id, Some(&request_id), &input, ctx.now)?;
            report(json_out, &row.run_id, queued, "signal")?;
        }
        RunCommand::Cancel { id, reason } => {
            let row = find_open(&store, &id)?;
            let queued = store.push_inbox(
                &row.run_id,
                Some("cancel"),
                &Input::CancelRequested { reason },
                ctx.now,
            )?;
            report(json_out, &row.run_id, queued, "cancel")?;
        }
        RunCommand::Terminate { id, reason } => {
            let row = find_open(&store, &id)?;
            let queued = store.push_inbox(
                &row.run_id,
                Some("terminate"),
                &Input::Terminate { reason },
                ctx.now,
            )?;
            report(json_out, &row.run_id, queued, "terminate")?;
        }
        RunCommand::Retry { id } => {
            let row = find(&store, &id)?;
            if !matches!(
                row.status.as_str(),
                "failed" | "canceled" | "terminated" | "timed_out"
            ) {
                bail!("run {} is {}; only a failed, cancelled, terminated or timed-out run can be retried", row.run_id, row.status);
            }
            let template = store.template(&row.template_hash)?.with_context(|| {
                format!(
                    "template {} of run {} is not stored",
                    row.template_hash, row.run_id
                )
            })?;
            compile_row(&template)?;
            let (_, state) = store
                .load_state(&row.run_id)?
                .with_context(|| format!("run {} has no state", row.run_id))?;
            let run_id = new_id();
            let run = NewRun {
                run_id: run_id.clone(),
                workflow_id: row.workflow_id.clone(),
                workflow_type: row.workflow_type.clone(),
                template_hash: row.template_hash.clone(),
                parent_run_id: row.parent_run_id.clone(),
            };
            let start = Input::Start {
                workflow_id: row.workflow_id.clone(),
                run_id: run_id.clone(),
                input: state.input.clone(),
                parent: state.parent.clone(),
            };
            store.create_run(&run, &template, &start, ctx.now)?;
            if json_out {
                println!("{}", json!({"run_id": run_id, "retry_of": row.run_id}));
            } else {
                println!("{run_id}");
            }
        }
    }
    Ok(0)
}

fn report(json_out: bool, run_id: &str, queued: bool, what: &str) -> Result<()> {
    if json_out {
        println!("{}", json!({"run_id": run_id, "queued": queued}));
    } else if queued {
        eprintln!("{what} queued for run {run_id}");
    } else {
        eprintln!("{what} for run {run_id} was already queued (same request id)");
    }
    Ok(())
}

/// A run for people: status, each step's outcome, what is in flight.
fn describe(row: &RunRow, state: &RunState) -> String {
    let mut out = format!(
        "run       {}\nworkflow  {}\ntype      {}\nstatus    {}\nstarted   {}\n",
        row.run_id, row.workflow_id, row.workflow_type, row.status, row.created_at
    );
    if let Some(closed) = &row.closed_at {
        out.push_str(&format!("closed    {closed}\n"));
    }
    if let Some(f) = &state.failure {
        out.push_str(&format!("failure   {}: {}\n", f.error_type, f.message));
    }
    if !state.outputs.is_empty() {
        out.push_str("steps\n");
        for (step, output) in &state.outputs {
            let status = output["status"].as_str().unwrap_or("?");
            let code = output["exit_code"]
                .as_i64()
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            out.push_str(&format!("  {step:<20} {status}{code}\n"));
        }
    }
    for pa in state.activities.values() {
        let phase = match &pa.phase {
            AttemptPhase::Dispatched => "dispatched".to_string(),
            AttemptPhase::Started { started_at, .. } => format!("running since {started_at}"),
            AttemptPhase::Backoff { until } => format!("retrying at {until}"),
        };
        out.push_str(&format!(
            "  {:<20} attempt {}, {phase}\n",
            pa.activity_id, pa.attempt
        ));
    }
    for t in state.timers.values() {
        out.push_str(&format!(
            "  {:<20} waiting until {}\n",
            t.step_id, t.fire_at
        ));
    }
    out
}
