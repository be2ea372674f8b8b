//! `spool schedule ...`: schedules of `.spool/schedules.toml` and their state.
//!
//! `create` and `delete` edit the file (atomically, everything else kept); the other
//! commands work on the run database. Each command first syncs the file into the
//! database, so it works with or without a running worker; a worker picks the changes up
//! within a second.

use super::run::{database_path, repo_root, templates};
use super::Ctx;
use crate::engine::scheduler::{Fired, Scheduler, SchedulerConfig};
use crate::schedule_edit::{add_schedule, remove_schedule, NewSchedule};
use crate::store::{ActionRow, Durability, ScheduleRow};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use spool_core::schedule::{due_time, Action, OverlapPolicy, ScheduleDef};
use std::path::Path;

#[derive(Debug, Clone, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule to `.spool/schedules.toml`.
    Create(Box<CreateArgs>),
    /// Schedules with their state and next fire time.
    List,
    /// A schedule: definition, state, the next 10 fire times, recent actions.
    Show {
        id: String,
        /// How many recent actions to list.
        #[arg(long, default_value_t = 20)]
        actions: usize,
    },
    /// Stop taking scheduled actions (triggers and backfills still work).
    Pause {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Take scheduled actions again, from now on (missed times are not caught up).
    Unpause { id: String },
    /// Fire now, whatever the spec says (not counted against max_actions).
    Trigger {
        id: String,
        /// Overlap policy for this fire (default: the schedule's).
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Fire every time of the spec in (FROM, TO] (RFC 3339 times).
    Backfill {
        id: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Overlap policy for these fires (default: the schedule's; `allow_all` runs
        /// them side by side).
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Remove a schedule from `.spool/schedules.toml` (its action log stays).
    Delete { id: String },
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The schedule's id (letters, digits, '-', '_').
    pub id: String,
    /// Cron expression (5 fields, 6 with seconds, or @hourly/@daily/...); repeatable.
    #[arg(long)]
    pub cron: Vec<String>,
    /// Interval, e.g. `15m`.
    #[arg(long)]
    pub every: Option<String>,
    /// Shift of the interval, e.g. `5m`.
    #[arg(long)]
    pub offset: Option<String>,
    /// IANA time zone of the cron expressions (default UTC).
    #[arg(long, alias = "tz")]
    pub timezone: Option<String>,
    /// No fire before this time (RFC 3339).
    #[arg(long)]
    pub start: Option<String>,
    /// No fire after this time (RFC 3339).
    #[arg(long)]
    pub end: Option<String>,
    /// Delay each fire by up to this much, e.g. `30s` (the same delay for a given time
    /// on every restart).
    #[arg(long)]
    pub jitter: Option<String>,
    /// skip, buffer_one, buffer_all, cancel_other, terminate_other, allow_all.
    #[arg(long)]
    pub overlap: Option<String>,
    /// How far back a fire missed while nothing ran still runs, e.g. `1h` (default
    /// `1m`); older ones are recorded as missed.
    #[arg(long)]
    pub catchup_window: Option<String>,
    /// Pause the schedule when one of its runs fails.
    #[arg(long)]
    pub pause_on_failure: bool,
    /// Stop after this many actions.
    #[arg(long)]
    pub max_actions: Option<u64>,
    /// Free text shown by `spool schedule show`.
    #[arg(long)]
    pub notes: Option<String>,
    /// Start a run of this workflow template.
    #[arg(long, alias = "template", conflicts_with = "create_issue")]
    pub workflow: Option<String>,
    /// The run's input as JSON.
    #[arg(long, requires = "workflow")]
    pub input: Option<String>,
    /// Create an issue with this title instead.
    #[arg(long, value_name = "TITLE")]
    pub create_issue: Option<String>,
    /// Issue type of the created issue.
    #[arg(long = "type", requires = "create_issue")]
    pub issue_type: Option<String>,
    /// Priority (0–4) of the created issue.
    #[arg(long, requires = "create_issue")]
    pub priority: Option<i64>,
    /// Labels of the created issue (repeatable).
    #[arg(long = "label", requires = "create_issue")]
    pub labels: Vec<String>,
}

fn file_of(ctx: &Ctx) -> (std::path::PathBuf, SchedulerConfig) {
    let root = repo_root(&ctx.cwd).unwrap_or_else(|| ctx.cwd.clone());
    let ws = crate::workspace::Workspace::find(&root);
    let config = SchedulerConfig::for_repo(&root, &ctx.actor(ws.as_ref()));
    (config.file.clone(), config)
}

fn policy(text: &Option<String>) -> Result<Option<OverlapPolicy>> {
    text.as_deref()
        .map(|p| OverlapPolicy::parse(p).ok_or_else(|| anyhow!("unknown overlap policy {p:?}")))
        .transpose()
}

fn time(text: &str, flag: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{flag} {text:?} is not an RFC 3339 time"))
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ms_iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(iso)
        .unwrap_or_default()
}

pub fn schedule_cmd(ctx: &Ctx, cmd: &ScheduleCommand, db: Option<&Path>) -> Result<i32> {
    let (file, config) = file_of(ctx);
    let json_out = ctx.global.json;
    match cmd {
        ScheduleCommand::Create(a) => create(ctx, &file, a, db),
        ScheduleCommand::Delete { id } => delete(ctx, &file, id, db),
        other => {
            let mut s = open(ctx, db, config)?;
            on_store(ctx, &mut s, &file, other, json_out)?;
            Ok(0)
        }
    }
}

/// The commands that work on the synced store.
fn on_store(
    ctx: &Ctx,
    s: &mut Scheduler,
    file: &Path,
    cmd: &ScheduleCommand,
    json_out: bool,
) -> Result<()> {
    match cmd {
        ScheduleCommand::Create(_) | ScheduleCommand::Delete { .. } => {
            bail!("create and delete edit the file, not the store")
        }
        ScheduleCommand::List => {
            let mut out = Vec::new();
            for row in s.store().schedules()? {
                let def = s.definition(&row.def_hash, &row.definition)?;
                out.push(summary(&row, &def));
            }
            if json_out {
                println!("{}", Value::Array(out));
            } else if out.is_empty() {
                println!(
                    "no schedules (add one with `spool schedule create` or in {})",
                    file.display()
                );
            } else {
                for s in out {
                    println!(
                        "{:<24} {:<8} {:<28} next {}",
                        s["id"].as_str().unwrap_or(""),
                        if s["paused"] == true {
                            "paused"
                        } else {
                            "active"
                        },
                        s["spec"].as_str().unwrap_or(""),
                        s["next_due"].as_str().unwrap_or("—"),
                    );
                }
            }
        }
        ScheduleCommand::Show { id, actions } => {
            let row = s
                .store()
                .schedule(id)?
                .ok_or_else(|| anyhow!("no schedule {id:?} in {}", file.display()))?;
            let def = s.definition(&row.def_hash, &row.definition)?;
            let from = DateTime::from_timestamp_millis(row.last_processed_ms)
                .unwrap_or(ctx.now)
                .max(ctx.now);
            let next: Vec<Value> = def
                .spec
                .upcoming(from, 10)
                .into_iter()
                .map(|n| json!({"nominal": iso(n), "due": iso(due_time(&def.id, n, def.spec.jitter))}))
                .collect();
            let log = s.store().schedule_actions(id, *actions)?;
            if json_out {
                let mut out = summary(&row, &def);
                out["definition"] = Value::Object(def.fields.clone());
                out["next_times"] = Value::Array(next);
                out["actions"] = serde_json::to_value(&log)?;
                println!("{out}");
            } else {
                print!("{}", describe(&row, &def, &next, &log));
            }
        }
        ScheduleCommand::Pause { id, note } => {
            s.set_paused(id, true, note, ctx.now)?;
            report(
                json_out,
                json!({"id": id, "paused": true}),
                &format!("paused {id}"),
            );
        }
        ScheduleCommand::Unpause { id } => {
            s.set_paused(id, false, "", ctx.now)?;
            report(
                json_out,
                json!({"id": id, "paused": false}),
                &format!("unpaused {id}"),
            );
        }
        ScheduleCommand::Trigger { id, overlap } => {
            let fired = s.trigger(id, ctx.now, policy(overlap)?)?;
            s.perform_creates(ctx.now)?;
            print_fired(json_out, std::slice::from_ref(&fired))?;
        }
        ScheduleCommand::Backfill {
            id,
            from,
            to,
            overlap,
        } => {
            let (from, to) = (time(from, "--from")?, time(to, "--to")?);
            if to <= from {
                bail!("--to must be after --from");
            }
            let fired = s.backfill(id, from, to, ctx.now, policy(overlap)?)?;
            s.perform_creates(ctx.now)?;
            print_fired(json_out, &fired)?;
        }
    }
    Ok(())
}

fn open(ctx: &Ctx, db: Option<&Path>, config: SchedulerConfig) -> Result<Scheduler> {
    let path = database_path(ctx, db)?;
    let mut s = Scheduler::open(&path, Durability::Full, templates(ctx), config)?;
    for e in s.sync_file(ctx.now, true)? {
        eprintln!("warning: {e}");
    }
    Ok(s)
}

fn report(json_out: bool, value: Value, text: &str) {
    if json_out {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn print_fired(json_out: bool, fired: &[Fired]) -> Result<()> {
    if json_out {
        println!("{}", serde_json::to_string(fired)?);
        return Ok(());
    }
    for f in fired {
        let extra = f.run_id.as_deref().or(f.detail.as_deref()).unwrap_or("");
        println!("{}  {:<16} {extra}", f.workflow_id, f.outcome);
    }
    Ok(())
}

fn spec_text(def: &ScheduleDef) -> String {
    let mut parts: Vec<String> = def
        .spec
        .crons
        .iter()
        .map(|c| c.source().to_string())
        .collect();
    for i in &def.spec.intervals {
        let mut t = format!("every {}s", i.every.as_secs());
        if !i.offset.is_zero() {
            t.push_str(&format!(" +{}s", i.offset.as_secs()));
        }
        parts.push(t);
    }
    let mut text = parts.join(" | ");
    if def.spec.tz.name() != "UTC" {
        text.push_str(&format!(" ({})", def.spec.tz.name()));
    }
    text
}

fn action_text(def: &ScheduleDef) -> String {
    match &def.action {
        Action::Workflow { template, input } => format!("workflow {template} input {input}"),
        Action::CreateIssue(i) => format!(
            "create issue {:?} ({}, P{})",
            i.title, i.issue_type, i.priority
        ),
    }
}

fn summary(row: &ScheduleRow, def: &ScheduleDef) -> Value {
    json!({
        "id": row.schedule_id,
        "spec": spec_text(def),
        "action": action_text(def),
        "overlap": def.overlap.as_str(),
        "catchup_window_secs": def.catchup_window.as_secs(),
        "paused": row.paused,
        "notes": if row.notes.is_empty() { def.notes.clone() } else { row.notes.clone() },
        "remaining_actions": row.remaining_actions,
        "last_processed": ms_iso(row.last_processed_ms),
        "next_due": row.next_due_ms.map(ms_iso),
        "missed_total": row.missed_total,
    })
}

fn describe(row: &ScheduleRow, def: &ScheduleDef, next: &[Value], log: &[ActionRow]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}  {}\n",
        row.schedule_id,
        if row.paused { "paused" } else { "active" }
    ));
    out.push_str(&format!("  spec      {}\n", spec_text(def)));
    out.push_str(&format!("  action    {}\n", action_text(def)));
    out.push_str(&format!(
        "  policy    overlap {}, catch-up window {}s{}\n",
        def.overlap.as_str(),
        def.catchup_window.as_secs(),
        if def.pause_on_failure {
            ", pause on failure"
        } else {
            ""
        }
    ));
    if let Some(n) = row.remaining_actions {
        out.push_str(&format!("  remaining {n} actions\n"));
    }
    if !row.notes.is_empty() {
        out.push_str(&format!("  notes     {}\n", row.notes));
    }
    out.push_str(&format!(
        "  processed through {}; {} missed in all\n",
        ms_iso(row.last_processed_ms),
        row.missed_total
    ));
    out.push_str("next fire times:\n");
    for n in next {
        out.push_str(&format!("  {}\n", n["due"].as_str().unwrap_or("")));
    }
    out.push_str("recent actions:\n");
    if log.is_empty() {
        out.push_str("  (none)\n");
    }
    for a in log {
        let what = a.run_id.as_deref().or(a.detail.as_deref()).unwrap_or("");
        out.push_str(&format!(
            "  {}  {:<9} {:<9} {what}\n",
            ms_iso(a.nominal_ms),
            a.source,
            a.outcome
        ));
    }
    out
}

fn create(ctx: &Ctx, file: &Path, a: &CreateArgs, db: Option<&Path>) -> Result<i32> {
    let input = a
        .input
        .as_deref()
        .map(|t| serde_json::from_str::<Value>(t).context("--input is not valid JSON"))
        .transpose()?;
    let create_issue = a.create_issue.as_ref().map(|title| {
        let mut issue = json!({ "title": title });
        if let Some(t) = &a.issue_type {
            issue["type"] = json!(t);
        }
        if let Some(p) = a.priority {
            issue["priority"] = json!(p);
        }
        if !a.labels.is_empty() {
            issue["labels"] = json!(a.labels);
        }
        issue
    });
    if a.workflow.is_none() && create_issue.is_none() {
        bail!("give the action: --workflow NAME [--input JSON] or --create-issue TITLE");
    }
    let new = NewSchedule {
        id: a.id.clone(),
        cron: a.cron.clone(),
        every: a.every.clone(),
        offset: a.offset.clone(),
        timezone: a.timezone.clone(),
        start: a.start.clone(),
        end: a.end.clone(),
        jitter: a.jitter.clone(),
        overlap: a.overlap.clone(),
        catchup_window: a.catchup_window.clone(),
        pause_on_failure: a.pause_on_failure,
        max_actions: a.max_actions,
        notes: a.notes.clone(),
        workflow: a.workflow.clone(),
        input,
        create_issue,
    };
    let text = read(file)?;
    let out = add_schedule(&text, &new)?;
    write(file, &out)?;
    let (_, config) = file_of(ctx);
    open(ctx, db, config)?;
    report(
        ctx.global.json,
        json!({"id": a.id, "file": file.display().to_string()}),
        &format!("created schedule {} in {}", a.id, file.display()),
    );
    Ok(0)
}

fn delete(ctx: &Ctx, file: &Path, id: &str, db: Option<&Path>) -> Result<i32> {
    let text = read(file)?;
    let Some(out) = remove_schedule(&text, id)? else {
        bail!("no schedule {id:?} in {}", file.display());
    };
    write(file, &out)?;
    let (_, config) = file_of(ctx);
    open(ctx, db, config)?;
    report(
        ctx.global.json,
        json!({"id": id, "deleted": true}),
        &format!("deleted schedule {id}"),
    );
    Ok(0)
}

fn read(file: &Path) -> Result<String> {
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(anyhow!("reading {}: {e}", file.display())),
    }
}

fn write(file: &Path, text: &str) -> Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::atomic::write_atomic(file, text.as_bytes())
}

/// `spool bench schedules`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleBenchArgs {
    /// Schedules loaded.
    #[arg(long, default_value_t = 10_000)]
    pub schedules: usize,
    /// Of those, how many fire every second (the steady-state tick fires this many).
    #[arg(long, default_value_t = 100)]
    pub due: usize,
    /// Timed ticks per scenario.
    #[arg(long, default_value_t = 30)]
    pub ticks: usize,
}

fn bench_file(n: usize, due: usize, all_every_minute: bool) -> String {
    let mut out = String::new();
    for i in 0..n {
        let spec = if all_every_minute {
            "every = \"1m\"".to_string()
        } else if i < due {
            "every = \"1s\"".to_string()
        } else {
            match i % 4 {
                0 => "cron = \"*/5 * * * *\"".to_string(),
                1 => "cron = \"0 9 * * MON-FRI\"\ntimezone = \"America/New_York\"".to_string(),
                2 => format!("every = \"1h\"\noffset = \"{}m\"", i % 60),
                _ => "cron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\njitter = \"10m\""
                    .to_string(),
            }
        };
        out.push_str(&format!(
            "[[schedule]]\nid = \"s{i:05}\"\n{spec}\noverlap = \"allow_all\"\n[schedule.action]\nworkflow = \"noop\"\n\n"
        ));
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_scheduler(dir: &Path, text: &str) -> Result<Scheduler> {
    std::fs::create_dir_all(dir.join(".spool"))?;
    std::fs::write(dir.join(".spool").join("schedules.toml"), text)?;
    Scheduler::open(
        &dir.join("spool.db"),
        Durability::Full,
        crate::engine::Templates::default(),
        SchedulerConfig::for_repo(dir, "bench"),
    )
}

/// Loads N schedules and times next-fire evaluation and ticks; prints Markdown.
pub fn bench_schedules(args: &ScheduleBenchArgs) -> Result<i32> {
    use std::time::Instant;
    let n = args.schedules;
    let due = args.due.min(n);
    let t0 = DateTime::parse_from_rfc3339("2026-01-05T00:00:00.500Z")
        .map(|t| t.with_timezone(&Utc))
        .context("bench start time")?;
    let dir = tempfile::tempdir()?;
    let text = bench_file(n, due, false);
    let started = Instant::now();
    let parsed = spool_core::schedule::parse_file("bench.toml", &text);
    let parse = started.elapsed();
    if parsed.schedules.len() != n {
        bail!("bench schedules do not parse: {:?}", parsed.errors.first());
    }
    let mut s = bench_scheduler(dir.path(), &text)?;
    let started = Instant::now();
    let errors = s.sync_file(t0, true)?;
    if !errors.is_empty() {
        bail!("bench schedules do not parse: {}", errors[0]);
    }
    let load = started.elapsed();
    let defs: Vec<std::sync::Arc<ScheduleDef>> = s
        .store()
        .schedules()?
        .iter()
        .map(|r| s.definition(&r.def_hash, &r.definition))
        .collect::<Result<_>>()?;
    let mut next_all = Vec::new();
    for _ in 0..5 {
        let at = Instant::now();
        let found = defs.iter().filter_map(|d| d.spec.next_after(t0)).count();
        next_all.push(ms(at.elapsed()));
        if found != n {
            bail!("{} schedules had no next time", n - found);
        }
    }
    next_all.sort_by(f64::total_cmp);

    // Steady state: each tick one second later fires the every-second schedules.
    let mut steady = Vec::new();
    let mut fired = 0;
    for k in 1..=args.ticks {
        let now = t0 + chrono::Duration::seconds(k as i64);
        let at = Instant::now();
        let r = s.tick(now)?;
        steady.push(ms(at.elapsed()));
        fired += r.started;
    }
    steady.sort_by(f64::total_cmp);
    // Idle: the same second again, nothing due.
    let mut idle = Vec::new();
    let last = t0 + chrono::Duration::seconds(args.ticks as i64);
    for _ in 0..args.ticks {
        let at = Instant::now();
        s.tick(last)?;
        idle.push(ms(at.elapsed()));
    }
    idle.sort_by(f64::total_cmp);

    // Every schedule due in the same tick.
    let dir2 = tempfile::tempdir()?;
    let mut all = bench_scheduler(dir2.path(), &bench_file(n, 0, true))?;
    all.sync_file(t0, true)?;
    let at = Instant::now();
    let burst = all.tick(t0 + chrono::Duration::seconds(60))?;
    let burst_ms = ms(at.elapsed());

    println!("# spool bench schedules\n");
    println!("- {n} schedules loaded ({due} every second; the rest cron in UTC, New York and Berlin with jitter, and hourly intervals)");
    println!("- store: SQLite WAL, synchronous=FULL; each tick is one transaction\n");
    println!("| measurement | p50 ms | p90 ms | max ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| parse and validate the file of {n} schedules (once) | {:.1} | | |",
        ms(parse)
    );
    println!(
        "| sync {n} schedules from the file into an empty store (once, includes the parse) | {:.1} | | |",
        ms(load)
    );
    println!(
        "| next fire time of all {n} schedules (in-memory evaluation) | {:.2} | {:.2} | {:.2} |",
        percentile(&next_all, 0.5),
        percentile(&next_all, 0.9),
        percentile(&next_all, 1.0)
    );
    println!(
        "| tick, nothing due | {:.2} | {:.2} | {:.2} |",
        percentile(&idle, 0.5),
        percentile(&idle, 0.9),
        percentile(&idle, 1.0)
    );
    println!(
        "| tick firing {due} runs (action row + run + start, one commit) | {:.2} | {:.2} | {:.2} |",
        percentile(&steady, 0.5),
        percentile(&steady, 0.9),
        percentile(&steady, 1.0)
    );
    println!(
        "| tick firing all {} runs at once | {burst_ms:.1} | | |",
        burst.started
    );
    println!(
        "\nper fire in the steady tick: {:.3} ms; in the burst: {:.3} ms ({} fires in {} ticks)",
        percentile(&steady, 0.5) / due.max(1) as f64,
        burst_ms / burst.started.max(1) as f64,
        fired,
        args.ticks
    );
    Ok(0)
}
