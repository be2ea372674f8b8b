//! Schedules at run time: syncs `.spool/schedules.toml` into the store, and on each tick
//! settles closed runs (pause on failure, start what was buffered), then fires every due
//! schedule — catch-up, overlap policy, action row and run — in one transaction. The
//! decisions are `spool_core::schedule`'s; this module only reads and writes.
//!
//! `create_issue` actions are an outbox: the fire records the action as `creating` (with
//! the issue to write) in the fire's transaction; after the commit the issue is written
//! under the backlog lock, unless an issue with the action's `external_ref` already
//! exists, and the action becomes `created`. A crash in between is finished by the next
//! tick, which finds the issue already there or writes it: one issue per fire.

use super::templates::Templates;
use super::writer::new_id;
use crate::store::{ActionRow, Durability, NewRun, ScheduleTx, Store, StoreError, TemplateRow};
use crate::workspace::{BeadsConfig, Workspace};
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use spool_core::beads::ids::{self, IdSeed};
use spool_core::beads::issue::Timestamp;
use spool_core::beads::node::Node;
use spool_core::beads::write::NewIssue;
use spool_core::schedule::policy::{
    after_start, may_act, pauses_on_close, start_buffered, FireSource, OverlapDecision,
};
use spool_core::schedule::{catch_up, decide_overlap, due_time, parse_file, Action, OverlapPolicy};
use spool_core::schedule::{ScheduleDef, ScheduleError};
use spool_core::workflow::decide::Input;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Most times one schedule fires in one tick; the rest follow in the next tick.
pub const MAX_FIRES_PER_TICK: usize = 1000;
/// Longest sleep between ticks: the file's stat is checked this often.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How young a file's modification time must be for its stat not to be trusted.
const RACY_SLACK: Duration = Duration::from_secs(3);
/// Most times one backfill may cover.
pub const MAX_BACKFILL: usize = 10_000;

/// Where schedules come from and where `create_issue` actions write.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// `.spool/schedules.toml`.
    pub file: PathBuf,
    /// Where to look for `.beads/` (create_issue actions).
    pub root: PathBuf,
    /// Who creates issues.
    pub actor: String,
}

impl SchedulerConfig {
    /// `<root>/.spool/schedules.toml`.
    pub fn for_repo(root: &Path, actor: &str) -> SchedulerConfig {
        SchedulerConfig {
            file: root.join(".spool").join("schedules.toml"),
            root: root.to_path_buf(),
            actor: actor.to_string(),
        }
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub started: usize,
    pub skipped: usize,
    pub buffered: usize,
    pub dropped: usize,
    pub missed: u64,
    pub creating: usize,
    pub errors: Vec<String>,
}

/// The result of one fire request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fired {
    pub nominal_time: String,
    pub workflow_id: String,
    /// `started`, `skipped`, `buffered`, `dropped`, `creating`, `error`, or
    /// `already_recorded` when the nominal time had an action already.
    pub outcome: String,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// The workflow id of a fire: `<schedule id>@<nominal time, RFC 3339>`.
pub fn workflow_id(schedule_id: &str, nominal: DateTime<Utc>) -> String {
    format!(
        "{schedule_id}@{}",
        nominal.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

/// The `external_ref` that marks the issue of a `create_issue` fire.
pub fn issue_ref(workflow_id: &str) -> String {
    format!("spool-schedule:{workflow_id}")
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    ino: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino: m.ino(),
    })
}

/// The schedules of a store, ticked by the engine and driven by `spool schedule`.
pub struct Scheduler {
    store: Store,
    templates: Templates,
    config: SchedulerConfig,
    /// Parsed definitions by hash.
    defs: HashMap<String, Arc<ScheduleDef>>,
    stamp: Option<Option<FileStamp>>,
    /// xxh3 of the file's text as last synced.
    text_hash: Option<u64>,
}

/// A template loaded for a tick: the row to pin and the workflow type.
type LoadedTemplate = std::result::Result<(TemplateRow, String), String>;

impl Scheduler {
    pub fn open(
        db: &Path,
        durability: Durability,
        templates: Templates,
        config: SchedulerConfig,
    ) -> Result<Scheduler> {
        let store =
            Store::open(db, durability).with_context(|| format!("opening {}", db.display()))?;
        Ok(Scheduler {
            store,
            templates,
            config,
            defs: HashMap::new(),
            stamp: None,
            text_hash: None,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The definition stored for a schedule row.
    pub fn definition(&mut self, def_hash: &str, json: &str) -> Result<Arc<ScheduleDef>> {
        definition(&mut self.defs, def_hash, json)
    }

    /// Reads the schedules file when it changed since the last call (or always with
    /// `force`) and brings the store in line: new schedules start after `now`, edited
    /// ones keep their progress and apply from now on, removed ones are deleted. A
    /// malformed schedule keeps its previous stored version. Returns the file's errors
    /// (empty when the file did not change).
    pub fn sync_file(&mut self, now: DateTime<Utc>, force: bool) -> Result<Vec<ScheduleError>> {
        let current = file_stamp(&self.config.file);
        // A file changed within the timestamp granularity of its last read can keep its
        // stat; while it is that young, its contents decide.
        let young = current
            .as_ref()
            .and_then(|s| s.modified)
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age < RACY_SLACK);
        if !force && self.stamp.as_ref() == Some(&current) && !young {
            return Ok(Vec::new());
        }
        let text = match std::fs::read_to_string(&self.config.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(anyhow!("reading {}: {e}", self.config.file.display())),
        };
        let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        if !force && self.text_hash == Some(hash) {
            self.stamp = Some(current);
            return Ok(Vec::new());
        }
        let parsed = parse_file(&self.config.file.display().to_string(), &text);
        let errored: HashSet<String> = parsed
            .errors
            .iter()
            .filter_map(|e| e.schedule.clone())
            .collect();
        let now_ms = now.timestamp_millis();
        self.store.schedule_tx(|tx| {
            let keep: HashSet<&str> = parsed
                .schedules
                .iter()
                .map(|(d, _)| d.id.as_str())
                .collect();
            for id in tx.schedule_ids()? {
                if !keep.contains(id.as_str()) && !errored.contains(&id) {
                    tx.delete_schedule(&id)?;
                }
            }
            for (def, _) in &parsed.schedules {
                let hash = def.hash();
                let existing = tx.schedule(&def.id)?;
                let (last, remaining) = match &existing {
                    Some(row) if row.def_hash == hash => continue,
                    Some(row) => {
                        let old_max: Option<u64> = serde_json::from_str::<Value>(&row.definition)
                            .ok()
                            .and_then(|v| v.get("max_actions").and_then(Value::as_u64));
                        let remaining = if old_max == def.max_actions {
                            row.remaining_actions
                        } else {
                            def.max_actions
                        };
                        (row.last_processed_ms.max(now_ms), remaining)
                    }
                    None => (now_ms, def.max_actions),
                };
                let next = next_due_ms(def, last);
                let json = Value::Object(def.fields.clone()).to_string();
                tx.upsert_schedule(&def.id, &json, &hash, remaining, last, next, now)?;
            }
            Ok(())
        })?;
        self.stamp = Some(current);
        self.text_hash = Some(hash);
        Ok(parsed.errors)
    }

    /// Settles closed runs, starts buffered times whose turn came, and fires every
    /// schedule due at `now`, all in one transaction.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport> {
        let mut report = TickReport::default();
        let due: Vec<String> = self
            .store
            .due_schedules(now.timestamp_millis())?
            .into_iter()
            .map(|r| r.schedule_id)
            .collect();
        let mut loader = TemplateCache::new(&self.templates);
        let defs = &mut self.defs;
        self.store.schedule_tx(|tx| {
            settle(tx, defs, &mut loader, now, &mut report)?;
            for id in &due {
                // Re-read inside the transaction: a command may have paused or edited it
                // meanwhile.
                let Some(row) = tx.schedule(id)? else {
                    continue;
                };
                if row.paused || row.next_due_ms.is_none_or(|d| d > now.timestamp_millis()) {
                    continue;
                }
                let def = match definition(defs, &row.def_hash, &row.definition) {
                    Ok(d) => d,
                    Err(e) => {
                        report.errors.push(format!("schedule {id}: {e:#}"));
                        continue;
                    }
                };
                let def = &def;
                let plan = catch_up(
                    &def.spec,
                    &def.id,
                    ms_time(row.last_processed_ms),
                    now,
                    def.catchup_window,
                    MAX_FIRES_PER_TICK,
                );
                for missed in &plan.missed_recent {
                    tx.insert_action(&ActionRow {
                        schedule_id: def.id.clone(),
                        nominal_ms: missed.timestamp_millis(),
                        source: FireSource::Scheduled.as_str().into(),
                        outcome: "missed".into(),
                        workflow_id: Some(workflow_id(&def.id, *missed)),
                        run_id: None,
                        detail: Some("outside the catch-up window".into()),
                        recorded_at: stamp(now),
                    })?;
                }
                report.missed += plan.missed;
                let mut remaining = row.remaining_actions;
                for nominal in &plan.fire {
                    if !may_act(FireSource::Scheduled, false, remaining) {
                        break;
                    }
                    let fired = fire(
                        tx,
                        def,
                        *nominal,
                        FireSource::Scheduled,
                        def.overlap,
                        &mut loader,
                        now,
                    )?;
                    report.count(&fired);
                    if fired.outcome == "started" || fired.outcome == "creating" {
                        remaining = after_start(FireSource::Scheduled, remaining);
                    }
                }
                let next = if remaining == Some(0) {
                    None
                } else {
                    plan.next
                        .map(|n| due_time(&def.id, n, def.spec.jitter).timestamp_millis())
                };
                tx.set_progress(
                    &def.id,
                    plan.processed_through.timestamp_millis(),
                    next,
                    remaining,
                    plan.missed,
                    now,
                )?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// When the next unpaused schedule is due.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.store.next_schedule_due()?.map(ms_time))
    }

    /// Fires a schedule now, outside its spec (`spool schedule trigger`): paused or not,
    /// not counted against the limit; the overlap policy applies unless overridden.
    pub fn trigger(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        overlap: Option<OverlapPolicy>,
    ) -> Result<Fired> {
        let def = self.stored(id)?;
        let nominal = ms_time(now.timestamp_millis());
        let mut loader = TemplateCache::new(&self.templates);
        Ok(self.store.schedule_tx(|tx| {
            fire(
                tx,
                &def,
                nominal,
                FireSource::Trigger,
                overlap.unwrap_or(def.overlap),
                &mut loader,
                now,
            )
        })?)
    }

    /// Fires every nominal time of the spec in `(from, to]` (`spool schedule backfill`).
    pub fn backfill(
        &mut self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        overlap: Option<OverlapPolicy>,
    ) -> Result<Vec<Fired>> {
        let def = self.stored(id)?;
        let mut times = Vec::new();
        let mut at = from;
        while let Some(next) = def.spec.next_after(at) {
            if next > to {
                break;
            }
            if times.len() == MAX_BACKFILL {
                return Err(anyhow!(
                    "the range holds more than {MAX_BACKFILL} times; backfill a shorter one"
                ));
            }
            times.push(next);
            at = next;
        }
        let mut loader = TemplateCache::new(&self.templates);
        Ok(self.store.schedule_tx(|tx| {
            times
                .iter()
                .map(|t| {
                    fire(
                        tx,
                        &def,
                        *t,
                        FireSource::Backfill,
                        overlap.unwrap_or(def.overlap),
                        &mut loader,
                        now,
                    )
                })
                .collect()
        })?)
    }

    /// Pauses or unpauses. Unpausing resumes from now: times that passed while paused are
    /// not caught up.
    pub fn set_paused(
        &mut self,
        id: &str,
        paused: bool,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let def = self.stored(id)?;
        self.store.schedule_tx(|tx| {
            let Some(row) = tx.schedule(id)? else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            tx.set_paused(id, paused, note, now)?;
            if !paused && row.paused {
                let last = row.last_processed_ms.max(now.timestamp_millis());
                let next = if row.remaining_actions == Some(0) {
                    None
                } else {
                    next_due_ms(&def, last)
                };
                tx.set_progress(id, last, next, row.remaining_actions, 0, now)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn stored(&mut self, id: &str) -> Result<Arc<ScheduleDef>> {
        let row = self.store.schedule(id)?.ok_or_else(|| {
            anyhow!(
                "no schedule {id:?} in the store (is it in {}? a running worker syncs it)",
                self.config.file.display()
            )
        })?;
        self.definition(&row.def_hash, &row.definition)
    }

    /// Writes the issues of `creating` actions (see the module docs). Returns how many
    /// were written or found; a failure leaves the action for the next call.
    pub fn perform_creates(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let pending = self.store.schedule_tx(|tx| tx.waiting("creating", None))?;
        let mut done = 0;
        for action in pending {
            let wf = action.workflow_id.clone().unwrap_or_default();
            let issue: Value = action
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            let id =
                create_issue(&self.config, &issue, &issue_ref(&wf), now).with_context(|| {
                    format!(
                        "schedule {}: creating the issue of {wf}",
                        action.schedule_id
                    )
                })?;
            self.store.schedule_tx(|tx| {
                tx.set_action(
                    &action.schedule_id,
                    action.nominal_ms,
                    "created",
                    None,
                    Some(&id),
                )
            })?;
            done += 1;
        }
        Ok(done)
    }
}

impl TickReport {
    fn count(&mut self, fired: &Fired) {
        match fired.outcome.as_str() {
            "started" => self.started += 1,
            "skipped" => self.skipped += 1,
            "buffered" => self.buffered += 1,
            "dropped" => self.dropped += 1,
            "creating" => self.creating += 1,
            "error" => self.errors.push(format!(
                "{}: {}",
                fired.workflow_id,
                fired.detail.clone().unwrap_or_default()
            )),
            _ => {}
        }
    }
}

/// A stored definition, parsed once per hash.
fn definition(
    defs: &mut HashMap<String, Arc<ScheduleDef>>,
    def_hash: &str,
    json: &str,
) -> Result<Arc<ScheduleDef>> {
    if let Some(d) = defs.get(def_hash) {
        return Ok(d.clone());
    }
    let fields: Map<String, Value> =
        serde_json::from_str(json).context("stored schedule definition")?;
    let def = ScheduleDef::from_fields(&fields)
        .map_err(|e| anyhow!("stored schedule definition: `{}`: {}", e.field, e.message))?;
    let def = Arc::new(def);
    defs.insert(def_hash.to_string(), def.clone());
    Ok(def)
}

/// The definition of a schedule by id, read inside the transaction.
fn definition_of(
    tx: &ScheduleTx<'_>,
    defs: &mut HashMap<String, Arc<ScheduleDef>>,
    id: &str,
) -> std::result::Result<Option<Arc<ScheduleDef>>, StoreError> {
    Ok(tx
        .schedule(id)?
        .and_then(|row| definition(defs, &row.def_hash, &row.definition).ok()))
}

fn next_due_ms(def: &ScheduleDef, after_ms: i64) -> Option<i64> {
    def.spec
        .next_after(ms_time(after_ms))
        .map(|n| due_time(&def.id, n, def.spec.jitter).timestamp_millis())
}

struct TemplateCache<'a> {
    templates: &'a Templates,
    loaded: HashMap<String, LoadedTemplate>,
}

impl<'a> TemplateCache<'a> {
    fn new(templates: &'a Templates) -> Self {
        TemplateCache {
            templates,
            loaded: HashMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> LoadedTemplate {
        self.loaded
            .entry(name.to_string())
            .or_insert_with(|| {
                self.templates
                    .load(name)
                    .map(|(row, program)| (row, program.name.clone()))
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// Runs that closed: settle them, pause on failure, and start buffered times whose
/// schedule has nothing running any more.
fn settle(
    tx: &mut ScheduleTx<'_>,
    defs: &mut HashMap<String, Arc<ScheduleDef>>,
    loader: &mut TemplateCache<'_>,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> std::result::Result<(), StoreError> {
    for (sid, nominal, run_id, status) in tx.newly_closed()? {
        tx.settle(&sid, nominal)?;
        let Some(def) = definition_of(tx, defs, &sid)? else {
            continue;
        };
        if pauses_on_close(def.pause_on_failure, &status) {
            let note = format!(
                "paused on failure: run {run_id} ({}) {status}",
                workflow_id(&sid, ms_time(nominal))
            );
            tx.set_paused(&sid, true, &note, now)?;
        }
    }
    let buffered = tx.waiting("buffered", None)?;
    let mut seen = HashSet::new();
    for action in buffered {
        if !seen.insert(action.schedule_id.clone()) {
            continue;
        }
        let Some(def) = definition_of(tx, defs, &action.schedule_id)? else {
            continue;
        };
        let running = !tx.running_runs(&def.id)?.is_empty();
        let waiting = tx.waiting("buffered", Some(&def.id))?.len();
        if !start_buffered(running, waiting) {
            continue;
        }
        let nominal = ms_time(action.nominal_ms);
        let wf = workflow_id(&def.id, nominal);
        let (outcome, run_id, detail) = start(tx, &def, nominal, &wf, loader, now)?;
        let detail = detail.or_else(|| Some("buffered until the open run closed".into()));
        tx.set_action(
            &def.id,
            action.nominal_ms,
            &outcome,
            run_id.as_deref(),
            detail.as_deref(),
        )?;
        if outcome == "started" {
            report.started += 1;
        }
    }
    Ok(())
}

/// Fires one nominal time: decides by the overlap policy and records the action, with
/// the run it starts, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn fire(
    tx: &mut ScheduleTx<'_>,
    def: &ScheduleDef,
    nominal: DateTime<Utc>,
    source: FireSource,
    policy: OverlapPolicy,
    loader: &mut TemplateCache<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<Fired, StoreError> {
    let nominal_ms = nominal.timestamp_millis();
    let wf = workflow_id(&def.id, nominal);
    let nominal_time = nominal.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    if tx.action_exists(&def.id, nominal_ms)? {
        return Ok(Fired {
            nominal_time,
            workflow_id: wf,
            outcome: "already_recorded".into(),
            run_id: None,
            detail: None,
        });
    }
    let running = tx.running_runs(&def.id)?;
    let buffered = tx.waiting("buffered", Some(&def.id))?.len();
    let (outcome, run_id, detail) = match decide_overlap(policy, !running.is_empty(), buffered) {
        OverlapDecision::Start => start(tx, def, nominal, &wf, loader, now)?,
        OverlapDecision::Skip => (
            "skipped".into(),
            None,
            Some("an earlier run is still open".into()),
        ),
        OverlapDecision::Buffer => ("buffered".into(), None, None),
        OverlapDecision::Drop => ("dropped".into(), None, Some("the buffer is full".into())),
        OverlapDecision::CancelOthersThenBuffer => {
            for run in &running {
                let input = Input::CancelRequested {
                    reason: format!("schedule {}: overlap policy cancel_other ({wf})", def.id),
                };
                tx.push_inbox(run, &format!("schedule-cancel:{wf}"), &input, now)?;
            }
            ("buffered".into(), None, None)
        }
        OverlapDecision::TerminateOthersThenStart => {
            for run in &running {
                let input = Input::Terminate {
                    reason: format!("schedule {}: overlap policy terminate_other ({wf})", def.id),
                };
                tx.push_inbox(run, &format!("schedule-terminate:{wf}"), &input, now)?;
            }
            start(tx, def, nominal, &wf, loader, now)?
        }
    };
    tx.insert_action(&ActionRow {
        schedule_id: def.id.clone(),
        nominal_ms,
        source: source.as_str().into(),
        outcome: outcome.clone(),
        workflow_id: Some(wf.clone()),
        run_id: run_id.clone(),
        detail: detail.clone(),
        recorded_at: stamp(now),
    })?;
    Ok(Fired {
        nominal_time,
        workflow_id: wf,
        outcome,
        run_id,
        detail,
    })
}

/// Starts the action of a fire: a run (`started`), or an issue to create after the
/// commit (`creating`, the issue in `detail`); `error` when the template cannot load.
fn start(
    tx: &mut ScheduleTx<'_>,
    def: &ScheduleDef,
    nominal: DateTime<Utc>,
    wf: &str,
    loader: &mut TemplateCache<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<(String, Option<String>, Option<String>), StoreError> {
    match &def.action {
        Action::Workflow { template, input } => {
            let (row, workflow_type) = match loader.get(template) {
                Ok(t) => t,
                Err(e) => return Ok(("error".into(), None, Some(e))),
            };
            let run_id = new_id();
            let mut input = input.clone();
            if let Value::Object(m) = &mut input {
                m.entry("schedule").or_insert_with(|| {
                    json!({
                        "id": def.id,
                        "nominal_time": nominal.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                        "workflow_id": wf,
                    })
                });
            }
            let run = NewRun {
                run_id: run_id.clone(),
                workflow_id: wf.to_string(),
                workflow_type,
                template_hash: row.hash.clone(),
                parent_run_id: None,
            };
            let start = Input::Start {
                workflow_id: wf.to_string(),
                run_id: run_id.clone(),
                input,
                parent: None,
            };
            match tx.create_run(&run, &row, &start, now) {
                Ok(()) => Ok(("started".into(), Some(run_id), None)),
                Err(StoreError::AlreadyOpen { run_id, .. }) => Ok((
                    "error".into(),
                    None,
                    Some(format!("workflow {wf} already has an open run {run_id}")),
                )),
                Err(e) => Err(e),
            }
        }
        Action::CreateIssue(issue) => {
            let detail = json!({
                "title": issue.title,
                "type": issue.issue_type,
                "priority": issue.priority,
                "labels": issue.labels,
                "description": issue.description,
                "assignee": issue.assignee,
            });
            Ok(("creating".into(), None, Some(detail.to_string())))
        }
    }
}

/// Writes the issue of a `create_issue` fire unless one with `external_ref` exists;
/// returns its id.
fn create_issue(
    config: &SchedulerConfig,
    issue: &Value,
    external_ref: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let ws = Workspace::find(&config.root)
        .with_context(|| format!("no .beads/ at or above {}", config.root.display()))?;
    let prefix_config = BeadsConfig::load(&ws.config_path())?;
    let text = |k: &str| {
        issue
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let title = text("title");
    let description = text("description");
    let stamp = Timestamp::from_utc(now);
    crate::backlog::modify(&ws, |tx| {
        // Only lines with the key can hold it; those are read in full.
        let finder = memchr::memmem::Finder::new(b"\"external_ref\"");
        let existing = tx
            .file
            .lines()
            .iter()
            .filter(|l| finder.find(l.bytes()).is_some())
            .filter_map(|l| l.issue())
            .filter_map(|i| tx.file.get_full(i.id()))
            .find(|i| i.external_ref == external_ref);
        if let Some(existing) = existing {
            return Ok(existing.id);
        }
        let all: HashSet<&str> = tx.file.issues().map(|i| i.id()).collect();
        let prefix = ids::choose_prefix(
            prefix_config.issue_prefix.as_deref(),
            all.iter().copied(),
            &ws.dir_name(),
        );
        let seed = IdSeed {
            title: &title,
            description: &description,
            creator: &config.actor,
            created_at_unix_nanos: stamp.unix_nanos(),
        };
        let id = ids::generate_id(&prefix, seed, &all)
            .map_err(|e| anyhow!("could not make a new id: {e:?}"))?;
        let mut new = NewIssue::new(
            id.clone(),
            title.clone(),
            stamp.clone(),
            config.actor.clone(),
        );
        new.issue_type = text("type");
        new.priority = issue.get("priority").and_then(Value::as_i64).unwrap_or(2);
        new.description = description.clone();
        new.assignee = text("assignee");
        new.external_ref = external_ref.to_string();
        new.labels = issue
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tx.insert(&new)?;
        Ok(id)
    })
}

/// A scheduler running on its own thread until stopped.
pub struct SchedulerHandle {
    stop: Arc<AtomicBool>,
    wake: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SchedulerHandle {
    /// A sender that wakes the loop early (a run closed, a request arrived).
    pub fn waker(&self) -> Sender<()> {
        self.wake.clone()
    }

    /// Stops the loop after the tick in progress and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SchedulerHandle {
    /// A handle dropped without `stop` (an engine that failed to start) still ends the loop.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
    }
}

/// Starts the loop: tick, sync the file, write pending issues, then sleep until the next
/// due time (at most [`MAX_SLEEP`], to notice file edits) or a wake-up.
pub fn spawn(mut scheduler: Scheduler, quiet: bool) -> Result<SchedulerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, rx) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("spool-scheduler".into())
        .spawn(move || run_loop(&mut scheduler, &rx, &flag, quiet))
        .context("starting the scheduler thread")?;
    Ok(SchedulerHandle {
        stop,
        wake,
        thread: Some(thread),
    })
}

fn run_loop(scheduler: &mut Scheduler, rx: &Receiver<()>, stop: &AtomicBool, quiet: bool) {
    let say = |m: String| {
        if !quiet {
            eprintln!("spool: {m}");
        }
    };
    while !stop.load(Ordering::SeqCst) {
        // Tick first: after downtime, times due under the stored definitions are
        // processed before an edited file takes effect (edits apply to future times).
        let now = Utc::now();
        match scheduler.tick(now) {
            Ok(r) => r
                .errors
                .into_iter()
                .for_each(|e| say(format!("schedule: {e}"))),
            Err(e) => say(format!("schedule tick failed: {e:#}")),
        }
        match scheduler.sync_file(now, false) {
            Ok(errors) => errors.into_iter().for_each(|e| say(e.to_string())),
            Err(e) => say(format!("{e:#}")),
        }
        if let Err(e) = scheduler.perform_creates(Utc::now()) {
            say(format!("{e:#}"));
        }
        let wait = match scheduler.next_due() {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            _ => MAX_SLEEP,
        };
        match rx.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}
