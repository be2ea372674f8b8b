//! Schedule state and the action log. Every fire is written by [`Store::schedule_tx`]:
//! the action row (unique per schedule and nominal time) and the run it starts commit in
//! one transaction, so a crash can neither repeat nor lose a fire.

use super::{insert_run, push_inbox, text, NewRun, Result, Store, TemplateRow};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use spool_core::workflow::decide::Input;

/// A schedule's stored state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleRow {
    pub schedule_id: String,
    /// The definition's fields as JSON (see `spool_core::schedule::ScheduleDef`).
    pub definition: String,
    pub def_hash: String,
    pub paused: bool,
    pub notes: String,
    pub remaining_actions: Option<u64>,
    pub last_processed_ms: i64,
    pub next_due_ms: Option<i64>,
    pub missed_total: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// One entry of the action log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActionRow {
    pub schedule_id: String,
    pub nominal_ms: i64,
    /// `scheduled`, `trigger` or `backfill`.
    pub source: String,
    /// `started`, `skipped`, `missed`, `buffered`, `dropped`, `creating`, `created`,
    /// `error`.
    pub outcome: String,
    pub workflow_id: Option<String>,
    pub run_id: Option<String>,
    pub detail: Option<String>,
    pub recorded_at: String,
}

const SCHEDULE_COLUMNS: &str = "SELECT schedule_id, definition, def_hash, paused, notes, \
     remaining_actions, last_processed_ms, next_due_ms, missed_total, created_at, updated_at FROM schedule";

const ACTION_COLUMNS: &str = "SELECT schedule_id, nominal_ms, source, outcome, workflow_id, \
     run_id, detail, recorded_at FROM schedule_action";

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        schedule_id: r.get(0)?,
        definition: r.get(1)?,
        def_hash: r.get(2)?,
        paused: r.get(3)?,
        notes: r.get(4)?,
        remaining_actions: r.get::<_, Option<i64>>(5)?.map(|n| n.max(0) as u64),
        last_processed_ms: r.get(6)?,
        next_due_ms: r.get(7)?,
        missed_total: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

fn action_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ActionRow> {
    Ok(ActionRow {
        schedule_id: r.get(0)?,
        nominal_ms: r.get(1)?,
        source: r.get(2)?,
        outcome: r.get(3)?,
        workflow_id: r.get(4)?,
        run_id: r.get(5)?,
        detail: r.get(6)?,
        recorded_at: r.get(7)?,
    })
}

impl Store {
    pub fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{SCHEDULE_COLUMNS} ORDER BY schedule_id"))?;
        let rows = stmt.query_map([], schedule_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn schedule(&self, id: &str) -> Result<Option<ScheduleRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("{SCHEDULE_COLUMNS} WHERE schedule_id = ?1"),
                params![id],
                schedule_row,
            )
            .optional()?)
    }

    /// Unpaused schedules due at `now_ms`.
    pub fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SCHEDULE_COLUMNS} WHERE paused = 0 AND next_due_ms <= ?1 ORDER BY next_due_ms"
        ))?;
        let rows = stmt.query_map(params![now_ms], schedule_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// When the next unpaused schedule is due.
    pub fn next_schedule_due(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT MIN(next_due_ms) FROM schedule WHERE paused = 0")?
            .query_row([], |r| r.get(0))?)
    }

    /// The latest `limit` actions of a schedule, newest first.
    pub fn schedule_actions(&self, id: &str, limit: usize) -> Result<Vec<ActionRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "{ACTION_COLUMNS} WHERE schedule_id = ?1 ORDER BY nominal_ms DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![id, limit as i64], action_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub fn schedule_tx<R>(
        &mut self,
        f: impl FnOnce(&mut ScheduleTx<'_>) -> Result<R>,
    ) -> Result<R> {
        let tx = self.write_tx()?;
        let mut stx = ScheduleTx { tx: &tx };
        let out = f(&mut stx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// The schedule writes of one transaction.
pub struct ScheduleTx<'a> {
    tx: &'a Transaction<'a>,
}

impl ScheduleTx<'_> {
    pub fn schedule(&self, id: &str) -> Result<Option<ScheduleRow>> {
        Ok(self
            .tx
            .prepare_cached(&format!("{SCHEDULE_COLUMNS} WHERE schedule_id = ?1"))?
            .query_row(params![id], schedule_row)
            .optional()?)
    }

    pub fn schedule_ids(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT schedule_id FROM schedule")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Adds a schedule, or replaces its definition. A new schedule starts processing
    /// at `last_processed_ms`; a changed one keeps its progress and pause state.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert_schedule(
        &mut self,
        id: &str,
        definition: &str,
        def_hash: &str,
        remaining_actions: Option<u64>,
        last_processed_ms: i64,
        next_due_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO schedule(schedule_id, definition, def_hash, remaining_actions,
                     last_processed_ms, next_due_ms, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT(schedule_id) DO UPDATE SET definition = excluded.definition,
                     def_hash = excluded.def_hash, remaining_actions = excluded.remaining_actions,
                     last_processed_ms = excluded.last_processed_ms,
                     next_due_ms = excluded.next_due_ms, updated_at = excluded.updated_at",
            )?
            .execute(params![
                id,
                definition,
                def_hash,
                remaining_actions.map(|n| n as i64),
                last_processed_ms,
                next_due_ms,
                text(now)
            ])?;
        Ok(())
    }

    /// Removes a schedule; its action log stays.
    pub fn delete_schedule(&mut self, id: &str) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM schedule WHERE schedule_id = ?1")?
            .execute(params![id])?
            == 1)
    }

    pub fn set_paused(
        &mut self,
        id: &str,
        paused: bool,
        notes: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "UPDATE schedule SET paused = ?2, notes = ?3, updated_at = ?4 WHERE schedule_id = ?1",
            )?
            .execute(params![id, paused, notes, text(now)])?
            == 1)
    }

    /// Records how far a schedule got.
    pub fn set_progress(
        &mut self,
        id: &str,
        last_processed_ms: i64,
        next_due_ms: Option<i64>,
        remaining_actions: Option<u64>,
        missed: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE schedule SET last_processed_ms = ?2, next_due_ms = ?3,
                     remaining_actions = ?4, missed_total = missed_total + ?5, updated_at = ?6
                 WHERE schedule_id = ?1",
            )?
            .execute(params![
                id,
                last_processed_ms,
                next_due_ms,
                remaining_actions.map(|n| n as i64),
                missed as i64,
                text(now)
            ])?;
        Ok(())
    }

    pub fn action_exists(&self, id: &str, nominal_ms: i64) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT 1 FROM schedule_action WHERE schedule_id = ?1 AND nominal_ms = ?2",
            )?
            .query_row(params![id, nominal_ms], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Appends an action; false (and nothing written) when the nominal time already has
    /// one.
    pub fn insert_action(&mut self, a: &ActionRow) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO schedule_action(schedule_id, nominal_ms, source, outcome,
                     workflow_id, run_id, detail, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                a.schedule_id,
                a.nominal_ms,
                a.source,
                a.outcome,
                a.workflow_id,
                a.run_id,
                a.detail,
                a.recorded_at
            ])?
            == 1)
    }

    /// Changes the outcome of an action (a buffered one started, a create done).
    pub fn set_action(
        &mut self,
        id: &str,
        nominal_ms: i64,
        outcome: &str,
        run_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE schedule_action SET outcome = ?3, run_id = COALESCE(?4, run_id),
                     detail = COALESCE(?5, detail)
                 WHERE schedule_id = ?1 AND nominal_ms = ?2",
            )?
            .execute(params![id, nominal_ms, outcome, run_id, detail])?;
        Ok(())
    }

    /// Open runs started by a schedule.
    pub fn running_runs(&self, id: &str) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT a.run_id FROM schedule_action a JOIN run r ON r.run_id = a.run_id
             WHERE a.schedule_id = ?1 AND a.outcome = 'started' AND a.settled = 0
               AND r.status IN ('new', 'running')",
        )?;
        let rows = stmt.query_map(params![id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Actions waiting with `outcome` (`buffered` or `creating`), oldest first; all
    /// schedules when `id` is `None`.
    pub fn waiting(&self, outcome: &str, id: Option<&str>) -> Result<Vec<ActionRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "{ACTION_COLUMNS} WHERE outcome = ?1 AND (?2 IS NULL OR schedule_id = ?2)
             ORDER BY schedule_id, nominal_ms"
        ))?;
        let rows = stmt.query_map(params![outcome, id], action_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Started actions whose run has closed and that were not yet looked at:
    /// (schedule id, nominal ms, run id, run status).
    pub fn newly_closed(&self) -> Result<Vec<(String, i64, String, String)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT a.schedule_id, a.nominal_ms, a.run_id, r.status
             FROM schedule_action a JOIN run r ON r.run_id = a.run_id
             WHERE a.outcome = 'started' AND a.settled = 0
               AND r.status NOT IN ('new', 'running')
             ORDER BY a.schedule_id, a.nominal_ms",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn settle(&mut self, id: &str, nominal_ms: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE schedule_action SET settled = 1 WHERE schedule_id = ?1 AND nominal_ms = ?2",
            )?
            .execute(params![id, nominal_ms])?;
        Ok(())
    }

    /// Creates a run (status `new`) with its Start input queued.
    pub fn create_run(
        &mut self,
        run: &NewRun,
        template: &TemplateRow,
        start: &Input,
        now: DateTime<Utc>,
    ) -> Result<()> {
        insert_run(self.tx, run, template, now)?;
        push_inbox(self.tx, &run.run_id, Some("start"), start, now)?;
        Ok(())
    }

    /// Queues an input for a run (deduplicated by `request_id`).
    pub fn push_inbox(
        &mut self,
        run_id: &str,
        request_id: &str,
        input: &Input,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        push_inbox(self.tx, run_id, Some(request_id), input, now)
    }
}
