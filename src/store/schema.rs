//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

/// Each entry moves the schema from version `i` to `i + 1`. Never edit a shipped entry;
/// append a new one.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Template bytes by content hash: a run finishes on the template it started with.
CREATE TABLE template (
    hash   TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    file   TEXT NOT NULL,
    source TEXT NOT NULL
) WITHOUT ROWID;

-- One row per run: its current state (a snapshot of the fold of its history plus the
-- attempt data history does not hold).
CREATE TABLE run (
    run_id        TEXT PRIMARY KEY,
    workflow_id   TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    template_hash TEXT NOT NULL REFERENCES template(hash),
    status        TEXT NOT NULL,
    parent_run_id TEXT,
    next_event_id INTEGER NOT NULL,
    state         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    closed_at     TEXT
) WITHOUT ROWID;
-- At most one open run per workflow id.
CREATE UNIQUE INDEX run_open_workflow ON run(workflow_id) WHERE status IN ('new', 'running');
CREATE INDEX run_by_status ON run(status, workflow_type);

-- Append-only history; event ids dense per run.
CREATE TABLE history_event (
    run_id     TEXT NOT NULL,
    event_id   INTEGER NOT NULL,
    event_type INTEGER NOT NULL,
    event_time TEXT NOT NULL,
    version    INTEGER NOT NULL,
    attrs      TEXT NOT NULL,
    PRIMARY KEY (run_id, event_id)
) WITHOUT ROWID;

-- Attempts handed to a worker and not yet finished. lease_epoch 0: not started.
CREATE TABLE activity (
    run_id             TEXT NOT NULL,
    scheduled_event_id INTEGER NOT NULL,
    attempt            INTEGER NOT NULL,
    lease_epoch        INTEGER NOT NULL,
    cancel_requested   INTEGER NOT NULL,
    task               TEXT NOT NULL,
    PRIMARY KEY (run_id, scheduled_event_id)
) WITHOUT ROWID;
CREATE INDEX activity_by_epoch ON activity(lease_epoch);

-- Durable timers (user timers, retry backoff, activity timeouts). fire_at in Unix ms.
CREATE TABLE timer (
    run_id    TEXT NOT NULL,
    timer_key TEXT NOT NULL,
    fire_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, timer_key)
) WITHOUT ROWID;
CREATE INDEX timer_by_fire_at ON timer(fire_at);

-- Inputs from outside the worker (CLI signals, cancels, starts; child outcomes).
CREATE TABLE inbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    request_id  TEXT,
    input       TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX inbox_request ON inbox(run_id, request_id) WHERE request_id IS NOT NULL;
"#,
    r#"
-- Schedules synced from .spool/schedules.toml. Times are Unix ms.
CREATE TABLE schedule (
    schedule_id       TEXT PRIMARY KEY,
    definition        TEXT NOT NULL,
    def_hash          TEXT NOT NULL,
    paused            INTEGER NOT NULL DEFAULT 0,
    notes             TEXT NOT NULL DEFAULT '',
    remaining_actions INTEGER,
    last_processed_ms INTEGER NOT NULL,
    next_due_ms       INTEGER,
    missed_total      INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX schedule_next_due ON schedule(next_due_ms) WHERE paused = 0;

-- One row per (schedule, nominal time): the guard that makes a fire happen once.
CREATE TABLE schedule_action (
    schedule_id TEXT NOT NULL,
    nominal_ms  INTEGER NOT NULL,
    source      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    workflow_id TEXT,
    run_id      TEXT,
    detail      TEXT,
    settled     INTEGER NOT NULL DEFAULT 0,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (schedule_id, nominal_ms)
) WITHOUT ROWID;
CREATE INDEX schedule_action_unsettled ON schedule_action(run_id)
    WHERE outcome = 'started' AND settled = 0;
CREATE INDEX schedule_action_waiting ON schedule_action(outcome, schedule_id, nominal_ms)
    WHERE outcome IN ('buffered', 'creating');
"#,
];
