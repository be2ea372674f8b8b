//! SQLite storage for runs: the only module that touches the database.
//!
//! Connection setup (WAL, `synchronous=FULL`, or `NORMAL` for process-crash durability,
//! busy timeout), `user_version` migrations, and [`Store::commit`], which writes a batch
//! of transitions (events, run snapshot, attempt rows, timers, inbox rows) in one
//! transaction, each transition in its own savepoint so one bad transition does not sink
//! the others.

mod schedules;
mod schema;

pub use schedules::{ActionRow, ScheduleRow, ScheduleTx};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use spool_core::workflow::decide::{ActivityTask, Decision, Effect, Input, TimerKey, Verdict};
use spool_core::workflow::event::{Event, EventAttributes};
use spool_core::workflow::state::{AttemptPhase, RunState};
use std::path::Path;
use std::time::Duration;

/// How far a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    Process,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("workflow {workflow_id} already has an open run {run_id}")]
    AlreadyOpen { workflow_id: String, run_id: String },
    #[error("no run {0}")]
    NotFound(String),
    #[error("run {0} changed underneath this writer")]
    Conflict(String),
    #[error("database schema version {found} is newer than this spool ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A run's row, without its state snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub template_hash: String,
    pub status: String,
    pub parent_run_id: Option<String>,
    pub next_event_id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

/// A run to create (status `new`; its Start input is applied by the worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub template_hash: String,
    pub parent_run_id: Option<String>,
}

/// An attempt row.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub run_id: String,
    pub task: ActivityTask,
    pub lease_epoch: u64,
    pub cancel_requested: bool,
}

/// An inbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub seq: i64,
    pub run_id: String,
    pub input: Input,
}

/// A child run to create together with the parent's transition.
#[derive(Debug, Clone)]
pub struct ChildStart {
    pub run: NewRun,
    pub template: TemplateRow,
    pub start: Input,
    /// Delivered to the parent instead when the child cannot start.
    pub on_conflict: Input,
}

/// An inbox row to add in a transition.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub run_id: String,
    pub request_id: String,
    pub input: Input,
}

/// Template bytes pinned by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub hash: String,
    pub name: String,
    pub file: String,
    pub source: String,
}

/// One transition to write.
#[derive(Debug, Default)]
pub struct Write<'a> {
    pub run_id: &'a str,
    /// Create this run first (status `new`).
    pub create: Option<(&'a NewRun, &'a TemplateRow)>,
    /// What `decide` returned; only an applied decision writes events and state.
    pub decision: Option<&'a Decision>,
    /// Inbox rows consumed by this transition.
    pub consume_inbox: &'a [i64],
    /// Timer rows consumed by this transition (deleted only if still due at `now`).
    pub consume_timers: &'a [TimerKey],
    pub children: &'a [ChildStart],
    pub inbox: &'a [InboxRow],
    pub now: DateTime<Utc>,
}

pub struct Store {
    conn: Connection,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Fire times round up to the next millisecond, so a row that is due by its stored
/// `fire_at` is never early by the exact time the state machine checks.
fn ms_ceil(t: DateTime<Utc>) -> i64 {
    let floor = t.timestamp_millis();
    if t.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        floor
    } else {
        floor + 1
    }
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, durability: Durability) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // A transition uses about twenty distinct statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        set_wal(&conn)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Each transition is a savepoint; keep their sub-journals in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    /// Applies missing migrations. Each runs in an IMMEDIATE transaction that re-reads the
    /// version, so two processes opening a new database at once do not both migrate.
    fn migrate(&mut self) -> Result<()> {
        let known = schema::MIGRATIONS.len() as i64;
        loop {
            let tx = self.write_tx()?;
            let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if found > known {
                return Err(StoreError::TooNew { found, known });
            }
            let Some(sql) = schema::MIGRATIONS.get(found as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", found + 1)?;
            tx.commit()?;
        }
    }

    /// A write transaction. IMMEDIATE takes the write lock up front, where the busy
    /// timeout waits for it; a deferred one that reads first and then writes fails at
    /// once with SQLITE_BUSY when another process committed in between.
    fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The schema version in force.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Changes when another connection commits (cheap; used to poll the inbox).
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// Increments and returns the boot epoch: leases of older epochs died with their
    /// process.
    pub fn bump_boot_epoch(&mut self) -> Result<u64> {
        let tx = self.write_tx()?;
        let current: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'boot_epoch'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let next = current.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('boot_epoch', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![next.to_string()],
        )?;
        tx.commit()?;
        Ok(next)
    }

    pub fn boot_epoch(&self) -> Result<u64> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'boot_epoch'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub fn template(&self, hash: &str) -> Result<Option<TemplateRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash, name, file, source FROM template WHERE hash = ?1",
                params![hash],
                |r| {
                    Ok(TemplateRow {
                        hash: r.get(0)?,
                        name: r.get(1)?,
                        file: r.get(2)?,
                        source: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Creates a run (status `new`) and queues its Start input, in one transaction.
    /// Fails with [`StoreError::AlreadyOpen`] when the workflow id has an open run.
    pub fn create_run(
        &mut self,
        run: &NewRun,
        template: &TemplateRow,
        start: &Input,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        insert_run(&tx, run, template, now)?;
        push_inbox(&tx, &run.run_id, Some("start"), start, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The open run of a workflow id.
    pub fn open_run(&self, workflow_id: &str) -> Result<Option<String>> {
        open_run(&self.conn, workflow_id)
    }

    /// A run by run id, or else the latest run of a workflow id.
    pub fn find_run(&self, id: &str) -> Result<Option<RunRow>> {
        let by_run = self
            .conn
            .query_row(
                &format!("{RUN_COLUMNS} WHERE run_id = ?1"),
                params![id],
                run_row,
            )
            .optional()?;
        if by_run.is_some() {
            return Ok(by_run);
        }
        Ok(self
            .conn
            .query_row(
                &format!("{RUN_COLUMNS} WHERE workflow_id = ?1 ORDER BY created_at DESC, run_id DESC LIMIT 1"),
                params![id],
                run_row,
            )
            .optional()?)
    }

    pub fn list_runs(&self, status: Option<&str>) -> Result<Vec<RunRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "{RUN_COLUMNS} WHERE (?1 IS NULL OR status = ?1) ORDER BY created_at, run_id"
        ))?;
        let rows = stmt.query_map(params![status], run_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A run's template hash and state snapshot.
    pub fn load_state(&self, run_id: &str) -> Result<Option<(String, RunState)>> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT template_hash, state FROM run WHERE run_id = ?1",
                params![run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((hash, state)) => Ok(Some((hash, serde_json::from_str(&state)?))),
        }
    }

    pub fn history(&self, run_id: &str) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare(
            "SELECT event_id, event_time, version, attrs FROM history_event
             WHERE run_id = ?1 ORDER BY event_id",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (event_id, time, version, attrs) = row?;
            let event_time = DateTime::parse_from_rfc3339(&time)
                .map_err(|e| StoreError::Invalid(format!("event {event_id} time {time:?}: {e}")))?
                .with_timezone(&Utc);
            out.push(Event {
                version: version as u16,
                event_id: event_id as u64,
                event_time,
                attributes: serde_json::from_str::<EventAttributes>(&attrs)?,
            });
        }
        Ok(out)
    }

    /// Queues an input for a run. Returns false when `request_id` was already queued.
    pub fn push_inbox(
        &mut self,
        run_id: &str,
        request_id: Option<&str>,
        input: &Input,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        push_inbox(&self.conn, run_id, request_id, input, now)
    }

    pub fn take_inbox(&self, limit: usize) -> Result<Vec<InboxItem>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, run_id, input FROM inbox ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, run_id, input) = row?;
            out.push(InboxItem {
                seq,
                run_id,
                input: serde_json::from_str(&input)?,
            });
        }
        Ok(out)
    }

    /// Timers due at `now`, earliest first.
    pub fn due_timers(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, TimerKey)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT run_id, timer_key FROM timer WHERE fire_at <= ?1 ORDER BY fire_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ms(now), limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (run, key) = row?;
            let key = TimerKey::decode(&key)
                .ok_or_else(|| StoreError::Invalid(format!("bad timer key {key:?}")))?;
            out.push((run, key));
        }
        Ok(out)
    }

    /// When the next timer is due.
    pub fn next_fire_at(&self) -> Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(fire_at) FROM timer")?
            .query_row([], |r| r.get(0))?;
        Ok(v.and_then(DateTime::from_timestamp_millis))
    }

    /// Attempt rows whose lease is older than `epoch` (or never taken).
    pub fn activities_before(&self, epoch: u64) -> Result<Vec<ActivityRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, task, lease_epoch, cancel_requested FROM activity WHERE lease_epoch < ?1",
        )?;
        let bound = i64::try_from(epoch).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![bound], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (run_id, task, lease, cancel) = row?;
            out.push(ActivityRow {
                run_id,
                task: serde_json::from_str(&task)?,
                lease_epoch: lease as u64,
                cancel_requested: cancel,
            });
        }
        Ok(out)
    }

    /// Writes a batch of transitions in one transaction. Each gets its own result; a
    /// failed transition is rolled back alone. Fails as a whole only if the commit fails.
    pub fn commit(&mut self, writes: &[Write<'_>]) -> Result<Vec<Result<()>>> {
        let tx = self.write_tx()?;
        let mut results = Vec::with_capacity(writes.len());
        for w in writes {
            // Savepoint statements are prepared once and reused: this loop is the hot path.
            tx.prepare_cached("SAVEPOINT write")?.execute([])?;
            match write_one(&tx, w) {
                Ok(()) => {
                    tx.prepare_cached("RELEASE write")?.execute([])?;
                    results.push(Ok(()));
                }
                Err(e) => {
                    tx.prepare_cached("ROLLBACK TO write")?.execute([])?;
                    tx.prepare_cached("RELEASE write")?.execute([])?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

const RUN_COLUMNS: &str = "SELECT run_id, workflow_id, workflow_type, template_hash, status, \
     parent_run_id, next_event_id, created_at, updated_at, closed_at FROM run";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run_id: r.get(0)?,
        workflow_id: r.get(1)?,
        workflow_type: r.get(2)?,
        template_hash: r.get(3)?,
        status: r.get(4)?,
        parent_run_id: r.get(5)?,
        next_event_id: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        closed_at: r.get(9)?,
    })
}

/// WAL is a property of the file, set once; changing it needs an exclusive lock that a
/// busy timeout does not wait for, so a concurrent first open retries for a while.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(m) => {
                return Err(StoreError::Invalid(format!(
                    "cannot switch the database to WAL (mode {m})"
                )))
            }
            Err(e) if std::time::Instant::now() < deadline && is_busy(&e) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn open_run(conn: &Connection, workflow_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT run_id FROM run WHERE workflow_id = ?1 AND status IN ('new', 'running')",
        )?
        .query_row(params![workflow_id], |r| r.get(0))
        .optional()?)
}

fn insert_run(
    conn: &Connection,
    run: &NewRun,
    template: &TemplateRow,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO template(hash, name, file, source) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        template.hash,
        template.name,
        template.file,
        template.source
    ])?;
    if let Some(existing) = open_run(conn, &run.workflow_id)? {
        return Err(StoreError::AlreadyOpen {
            workflow_id: run.workflow_id.clone(),
            run_id: existing,
        });
    }
    let state = serde_json::to_string(&RunState::default())?;
    let now = text(now);
    conn.prepare_cached(
        "INSERT INTO run(run_id, workflow_id, workflow_type, template_hash, status, parent_run_id,
                         next_event_id, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'new', ?5, 1, ?6, ?7, ?7)",
    )?
    .execute(params![
        run.run_id,
        run.workflow_id,
        run.workflow_type,
        run.template_hash,
        run.parent_run_id,
        state,
        now
    ])?;
    Ok(())
}

fn push_inbox(
    conn: &Connection,
    run_id: &str,
    request_id: Option<&str>,
    input: &Input,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = conn.prepare_cached(
        "INSERT OR IGNORE INTO inbox(run_id, request_id, input, received_at) VALUES (?1, ?2, ?3, ?4)",
    )?.execute(params![run_id, request_id, serde_json::to_string(input)?, text(now)],
    )?;
    Ok(n == 1)
}

fn write_one(tx: &Connection, w: &Write<'_>) -> Result<()> {
    if let Some((run, template)) = w.create {
        insert_run(tx, run, template, w.now)?;
    }
    for seq in w.consume_inbox {
        tx.prepare_cached("DELETE FROM inbox WHERE seq = ?1")?
            .execute(params![seq])?;
    }
    for key in w.consume_timers {
        tx.prepare_cached(
            "DELETE FROM timer WHERE run_id = ?1 AND timer_key = ?2 AND fire_at <= ?3",
        )?
        .execute(params![w.run_id, key.encode(), ms(w.now)])?;
    }
    let Some(d) = w.decision.filter(|d| d.verdict == Verdict::Applied) else {
        return Ok(());
    };
    let state = &d.state;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO history_event(run_id, event_id, event_type, event_time, version, attrs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in &d.events {
            ins.execute(params![
                w.run_id,
                e.event_id as i64,
                e.attributes.type_code(),
                text(e.event_time),
                e.version,
                serde_json::to_string(&e.attributes)?
            ])?;
        }
    }
    let before = state.next_event_id as i64 - d.events.len() as i64;
    let closed_at = state.closed_at.map(text);
    let updated = tx.prepare_cached("UPDATE run SET status = ?2, next_event_id = ?3, state = ?4, updated_at = ?5, closed_at = ?6
         WHERE run_id = ?1 AND next_event_id = ?7")?.execute(params![
            w.run_id,
            state.status.as_str(),
            state.next_event_id as i64,
            serde_json::to_string(state)?,
            text(w.now),
            closed_at,
            before
        ],
    )?;
    if updated != 1 {
        return Err(StoreError::Conflict(w.run_id.to_string()));
    }
    // Attempt rows mirror the state's in-flight attempts.
    tx.prepare_cached("DELETE FROM activity WHERE run_id = ?1")?
        .execute(params![w.run_id])?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO activity(run_id, scheduled_event_id, attempt, lease_epoch, cancel_requested, task)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for pa in state.activities.values() {
            if matches!(pa.phase, AttemptPhase::Backoff { .. }) {
                continue;
            }
            let task = ActivityTask {
                workflow_id: state.workflow_id.clone(),
                run_id: state.run_id.clone(),
                scheduled_event_id: pa.scheduled_event_id,
                activity_id: pa.activity_id.clone(),
                activity_type: pa.activity_type.clone(),
                attempt: pa.attempt,
                input: pa.input.clone(),
                start_to_close: pa.timeouts.start_to_close,
                heartbeat: pa.timeouts.heartbeat,
                heartbeat_details: pa.heartbeat_details.clone(),
            };
            ins.execute(params![
                w.run_id,
                pa.scheduled_event_id as i64,
                pa.attempt,
                pa.lease_epoch as i64,
                pa.cancel_requested_event_id.is_some(),
                serde_json::to_string(&task)?
            ])?;
        }
    }
    for effect in &d.effects {
        match effect {
            Effect::StartTimer { key, fire_at } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO timer(run_id, timer_key, fire_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![w.run_id, key.encode(), ms_ceil(*fire_at)])?;
            }
            Effect::CancelTimer { key } => {
                tx.prepare_cached("DELETE FROM timer WHERE run_id = ?1 AND timer_key = ?2")?
                    .execute(params![w.run_id, key.encode()])?;
            }
            Effect::NotifyParent {
                parent,
                run_id,
                outcome,
            } => {
                let input = Input::ChildClosed {
                    initiated_event_id: parent.initiated_event_id,
                    run_id: run_id.clone(),
                    outcome: outcome.clone(),
                };
                push_inbox(
                    tx,
                    &parent.run_id,
                    Some(&format!("child-closed:{run_id}")),
                    &input,
                    w.now,
                )?;
            }
            Effect::CancelChildWorkflow {
                workflow_id,
                terminate,
                reason,
            } => {
                if let Some(child_run) = open_run(tx, workflow_id)? {
                    let input = if *terminate {
                        Input::Terminate {
                            reason: reason.clone(),
                        }
                    } else {
                        Input::CancelRequested {
                            reason: reason.clone(),
                        }
                    };
                    let kind = if *terminate { "terminate" } else { "cancel" };
                    push_inbox(
                        tx,
                        &child_run,
                        Some(&format!("parent-{kind}")),
                        &input,
                        w.now,
                    )?;
                }
            }
            Effect::StartChildWorkflow { .. }
            | Effect::DispatchActivity(_)
            | Effect::CancelActivity { .. } => {}
        }
    }
    for child in w.children {
        match insert_run(tx, &child.run, &child.template, w.now) {
            Ok(()) => {
                push_inbox(tx, &child.run.run_id, Some("start"), &child.start, w.now)?;
            }
            Err(StoreError::AlreadyOpen { .. }) => {
                let parent = child.run.parent_run_id.as_deref().unwrap_or(w.run_id);
                push_inbox(
                    tx,
                    parent,
                    Some(&format!("child-conflict:{}", child.run.run_id)),
                    &child.on_conflict,
                    w.now,
                )?;
            }
            Err(e) => return Err(e),
        }
    }
    for row in w.inbox {
        push_inbox(tx, &row.run_id, Some(&row.request_id), &row.input, w.now)?;
    }
    if !state.status.is_open() {
        tx.prepare_cached("DELETE FROM timer WHERE run_id = ?1")?
            .execute(params![w.run_id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spool_core::template::{compile, content_hash};
    use spool_core::workflow::decide::decide;
    use spool_core::workflow::Program;

    const SRC: &str = "[[step]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"1s\"\n";

    fn template() -> (TemplateRow, Program) {
        let program = compile("nap.toml", SRC).expect("template");
        let row = TemplateRow {
            hash: content_hash(SRC.as_bytes()),
            name: "nap".into(),
            file: "nap.toml".into(),
            source: SRC.into(),
        };
        (row, program)
    }

    fn new_run(id: &str, workflow: &str) -> NewRun {
        let (row, _) = template();
        NewRun {
            run_id: id.into(),
            workflow_id: workflow.into(),
            workflow_type: "nap".into(),
            template_hash: row.hash,
            parent_run_id: None,
        }
    }

    fn start_input(run: &NewRun) -> Input {
        Input::Start {
            workflow_id: run.workflow_id.clone(),
            run_id: run.run_id.clone(),
            input: serde_json::Value::Null,
            parent: None,
        }
    }

    /// A writer that commits while another process is between reading and writing must
    /// make the second wait, not fail with "database is locked".
    #[test]
    fn a_write_racing_another_process_waits_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("spool.db");
        let mut a = Store::open(&path, Durability::Full).expect("open a");
        let mut b = Store::open(&path, Durability::Full).expect("open b");
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let tx = b.write_tx().expect("b write lock");
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('boot_epoch', '41')",
                [],
            )
            .expect("b write");
            locked_tx.send(()).expect("signal");
            // Hold the write lock while `a` starts its transaction, then commit.
            std::thread::sleep(Duration::from_millis(200));
            tx.commit().expect("b commit");
        });
        locked_rx.recv().expect("b holds the lock");
        assert_eq!(a.bump_boot_epoch().expect("a waits for b"), 42);
        holder.join().expect("holder");
    }

    #[test]
    fn open_configures_wal_durability_and_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a").join("spool.db");
        let store = Store::open(&path, Durability::Full).expect("open");
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("sync");
        assert_eq!(sync, 2, "FULL");
        assert_eq!(
            store.schema_version().expect("version"),
            schema::MIGRATIONS.len() as i64
        );
        drop(store);
        let store = Store::open(&path, Durability::Process).expect("reopen");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("sync");
        assert_eq!(sync, 1, "NORMAL");
        store
            .conn
            .pragma_update(None, "user_version", 99)
            .expect("bump");
        drop(store);
        assert!(matches!(
            Store::open(&path, Durability::Full),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn boot_epoch_increments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("s.db"), Durability::Full).expect("open");
        assert_eq!(store.boot_epoch().expect("epoch"), 0);
        assert_eq!(store.bump_boot_epoch().expect("bump"), 1);
        assert_eq!(store.bump_boot_epoch().expect("bump"), 2);
        assert_eq!(store.boot_epoch().expect("epoch"), 2);
    }

    #[test]
    fn one_open_run_per_workflow_and_inbox_dedup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("s.db"), Durability::Full).expect("open");
        let (row, _) = template();
        let now = Utc::now();
        let a = new_run("r1", "wf");
        store
            .create_run(&a, &row, &start_input(&a), now)
            .expect("first");
        let b = new_run("r2", "wf");
        assert!(matches!(
            store.create_run(&b, &row, &start_input(&b), now),
            Err(StoreError::AlreadyOpen { ref run_id, .. }) if run_id == "r1"
        ));
        assert_eq!(store.open_run("wf").expect("open run"), Some("r1".into()));
        let sig = Input::Signal {
            name: "x".into(),
            payload: serde_json::Value::Null,
            request_id: "q".into(),
        };
        assert!(store.push_inbox("r1", Some("q"), &sig, now).expect("push"));
        assert!(!store.push_inbox("r1", Some("q"), &sig, now).expect("push"));
        // The create queued the start; the signal is second.
        let inbox = store.take_inbox(10).expect("inbox");
        assert_eq!(inbox.len(), 2);
        assert!(matches!(inbox[0].input, Input::Start { .. }));
    }

    #[test]
    fn a_failed_transition_is_rolled_back_alone_and_timers_follow_effects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("s.db"), Durability::Full).expect("open");
        let (row, program) = template();
        let now = Utc::now();
        let a = new_run("r1", "a");
        let b = new_run("r2", "b");
        let da = decide(&RunState::default(), &program, start_input(&a), now).expect("decide");
        let db = decide(&RunState::default(), &program, start_input(&b), now).expect("decide");
        // The second write of r1 would append events 1..n again: a conflict.
        let results = store
            .commit(&[
                Write {
                    run_id: "r1",
                    create: Some((&a, &row)),
                    decision: Some(&da),
                    now,
                    ..Default::default()
                },
                Write {
                    run_id: "r1",
                    decision: Some(&da),
                    now,
                    ..Default::default()
                },
                Write {
                    run_id: "r2",
                    create: Some((&b, &row)),
                    decision: Some(&db),
                    now,
                    ..Default::default()
                },
            ])
            .expect("commit");
        assert!(results[0].is_ok());
        assert!(results[1].is_err(), "{:?}", results[1]);
        assert!(results[2].is_ok());
        assert_eq!(store.history("r1").expect("history").len(), da.events.len());
        assert_eq!(store.history("r2").expect("history"), db.events);
        let (_, state) = store.load_state("r2").expect("load").expect("state");
        assert_eq!(state, db.state);
        // The sleep armed a timer 1 s out: not due now, due after.
        assert!(store.due_timers(now, 10).expect("due").is_empty());
        let later = now + chrono::Duration::milliseconds(1001);
        assert_eq!(store.due_timers(later, 10).expect("due").len(), 2);
        assert!(store.next_fire_at().expect("next").is_some_and(|t| t > now));
    }

    #[test]
    fn fire_times_round_up_to_the_millisecond() {
        let t = DateTime::from_timestamp(10, 1_500_000).expect("time");
        assert_eq!(ms_ceil(t), 10_002);
        let exact = DateTime::from_timestamp(10, 2_000_000).expect("time");
        assert_eq!(ms_ceil(exact), 10_002);
    }
}
