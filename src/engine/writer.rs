//! The single writer: owns the database connection, applies inputs through `decide`,
//! commits many transitions per transaction (group commit), and only then hands effects
//! to the dispatcher and answers callers.

use super::runner::{Exec, NOOP};
use super::templates::{compile_row, Templates};
use super::EngineError;
use crate::store::{ChildStart, InboxRow, NewRun, Store, TemplateRow, Write};
use chrono::Utc;
use spool_core::workflow::decide::{decide, Decision, Effect, Input, TimerKey, Verdict};
use spool_core::workflow::event::ParentRef;
use spool_core::workflow::state::{RunState, RunStatus};
use spool_core::workflow::Program;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc::UnboundedSender, oneshot};

pub(crate) type ReadFn = Box<dyn FnOnce(&Store) + Send>;

pub(crate) enum Cmd {
    Apply {
        run_id: String,
        input: Input,
        reply: Option<oneshot::Sender<Result<Verdict, EngineError>>>,
    },
    Create {
        run: NewRun,
        template: TemplateRow,
        input: serde_json::Value,
        reply: oneshot::Sender<Result<Verdict, EngineError>>,
    },
    /// Inputs that arrived together and should be committed together.
    ApplyAll(Vec<(String, Input)>),
    Read(ReadFn),
    Shutdown,
}

/// A fresh id: time-ordered, with 64 random bits.
pub fn new_id() -> String {
    format!(
        "{:012x}{:016x}",
        Utc::now().timestamp_millis(),
        fastrand::u64(..)
    )
}

struct Loaded {
    program: Arc<Program>,
    state: RunState,
}

enum Source {
    Direct,
    Inbox(i64),
    Timer(TimerKey),
}

struct Item {
    run_id: String,
    input: Input,
    source: Source,
    create: Option<(NewRun, TemplateRow)>,
    reply: Option<oneshot::Sender<Result<Verdict, EngineError>>>,
}

struct Staged {
    item: Item,
    decision: Option<Decision>,
    children: Vec<ChildStart>,
    inbox: Vec<InboxRow>,
    error: Option<EngineError>,
}

/// One item after `decide`, as its caller will hear of it.
struct Member {
    item: Item,
    verdict: Verdict,
    error: Option<EngineError>,
}

/// The items of one run in a batch, merged into one write.
struct Group {
    run_id: String,
    create: Option<(NewRun, TemplateRow)>,
    merged: Option<Decision>,
    consume_inbox: Vec<i64>,
    consume_timers: Vec<TimerKey>,
    children: Vec<ChildStart>,
    inbox: Vec<InboxRow>,
    members: Vec<Member>,
}

impl Group {
    fn new(run_id: &str) -> Group {
        Group {
            run_id: run_id.to_string(),
            create: None,
            merged: None,
            consume_inbox: Vec::new(),
            consume_timers: Vec::new(),
            children: Vec::new(),
            inbox: Vec::new(),
            members: Vec::new(),
        }
    }

    fn add(&mut self, mut s: Staged) {
        if let Some(create) = s.item.create.take() {
            self.create.get_or_insert(create);
        }
        match &s.item.source {
            Source::Inbox(seq) => self.consume_inbox.push(*seq),
            Source::Timer(key) => self.consume_timers.push(key.clone()),
            Source::Direct => {}
        }
        self.children.append(&mut s.children);
        self.inbox.append(&mut s.inbox);
        let verdict = match s.decision {
            Some(d) if d.verdict == Verdict::Applied => {
                match &mut self.merged {
                    None => self.merged = Some(d),
                    Some(m) => {
                        m.events.extend(d.events);
                        m.effects.extend(d.effects);
                        m.state = d.state;
                    }
                }
                Verdict::Applied
            }
            Some(d) => d.verdict,
            None => Verdict::Rejected("not applied".into()),
        };
        self.members.push(Member {
            item: s.item,
            verdict,
            error: s.error,
        });
    }
}

pub(crate) struct Writer {
    pub store: Store,
    pub epoch: u64,
    pub templates: Arc<Templates>,
    pub exec: UnboundedSender<Exec>,
    pub closed: broadcast::Sender<(String, RunStatus)>,
    pub batch_max: usize,
    pub poll: Duration,
    runs: HashMap<String, Loaded>,
    pending: Vec<Item>,
    programs: HashMap<String, Arc<Program>>,
    data_version: i64,
    inbox_dirty: bool,
    last_inbox_scan: Instant,
}

impl Writer {
    pub fn new(
        store: Store,
        epoch: u64,
        templates: Arc<Templates>,
        exec: UnboundedSender<Exec>,
        closed: broadcast::Sender<(String, RunStatus)>,
        batch_max: usize,
        poll: Duration,
    ) -> Writer {
        Writer {
            store,
            epoch,
            templates,
            exec,
            closed,
            batch_max: batch_max.max(1),
            poll,
            runs: HashMap::new(),
            pending: Vec::new(),
            programs: HashMap::new(),
            data_version: 0,
            inbox_dirty: true,
            last_inbox_scan: Instant::now(),
        }
    }

    /// Re-dispatches every attempt leased by an earlier boot, at once; attempts whose
    /// cancellation was requested are reported cancelled instead.
    pub fn recover(&mut self) -> Result<(), EngineError> {
        let items = &mut self.pending;
        for row in self.store.activities_before(self.epoch)? {
            if row.cancel_requested {
                items.push(Item {
                    run_id: row.run_id.clone(),
                    input: Input::ActivityCanceled {
                        scheduled_event_id: row.task.scheduled_event_id,
                        attempt: row.task.attempt,
                        epoch: self.epoch,
                    },
                    source: Source::Direct,
                    create: None,
                    reply: None,
                });
            } else {
                let _ = self.exec.send(Exec::Dispatch(Box::new(row.task)));
            }
        }
        Ok(())
    }

    pub fn run(mut self, rx: Receiver<Cmd>) {
        let mut shutting_down = false;
        while !shutting_down {
            let mut items = std::mem::take(&mut self.pending);
            let wait = if items.is_empty() {
                self.wait_budget()
            } else {
                Duration::ZERO
            };
            match rx.recv_timeout(wait) {
                Ok(cmd) => shutting_down |= self.take_cmd(cmd, &mut items),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => shutting_down = true,
            }
            while items.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(cmd) => shutting_down |= self.take_cmd(cmd, &mut items),
                    Err(_) => break,
                }
            }
            self.collect_timers(&mut items);
            self.collect_inbox(&mut items);
            if !items.is_empty() {
                self.process(items);
            }
        }
    }

    /// How long to block for commands: until the next timer, at most one poll interval.
    fn wait_budget(&self) -> Duration {
        let until_timer = self
            .store
            .next_fire_at()
            .ok()
            .flatten()
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        match until_timer {
            Some(d) => d.min(self.poll),
            None => self.poll,
        }
    }

    /// Returns true on shutdown.
    fn take_cmd(&mut self, cmd: Cmd, items: &mut Vec<Item>) -> bool {
        match cmd {
            Cmd::Apply {
                run_id,
                input,
                reply,
            } => items.push(Item {
                run_id,
                input,
                source: Source::Direct,
                create: None,
                reply,
            }),
            Cmd::Create {
                run,
                template,
                input,
                reply,
            } => items.push(Item {
                run_id: run.run_id.clone(),
                input: Input::Start {
                    workflow_id: run.workflow_id.clone(),
                    run_id: run.run_id.clone(),
                    input,
                    parent: None,
                },
                source: Source::Direct,
                create: Some((run, template)),
                reply: Some(reply),
            }),
            Cmd::ApplyAll(inputs) => {
                for (run_id, input) in inputs {
                    items.push(Item {
                        run_id,
                        input,
                        source: Source::Direct,
                        create: None,
                        reply: None,
                    });
                }
            }
            Cmd::Read(f) => f(&self.store),
            Cmd::Shutdown => return true,
        }
        false
    }

    fn collect_timers(&mut self, items: &mut Vec<Item>) {
        let Ok(due) = self.store.due_timers(Utc::now(), self.batch_max) else {
            return;
        };
        for (run_id, key) in due {
            items.push(Item {
                run_id,
                input: Input::TimerFired { key: key.clone() },
                source: Source::Timer(key),
                create: None,
                reply: None,
            });
        }
    }

    fn collect_inbox(&mut self, items: &mut Vec<Item>) {
        let version = self.store.data_version().unwrap_or(self.data_version);
        let due = version != self.data_version
            || self.inbox_dirty
            || self.last_inbox_scan.elapsed() >= Duration::from_secs(1);
        if !due {
            return;
        }
        self.data_version = version;
        self.inbox_dirty = false;
        self.last_inbox_scan = Instant::now();
        if let Ok(rows) = self.store.take_inbox(self.batch_max) {
            for row in rows {
                items.push(Item {
                    run_id: row.run_id,
                    input: row.input,
                    source: Source::Inbox(row.seq),
                    create: None,
                    reply: None,
                });
            }
        }
    }

    fn program(&mut self, hash: &str) -> Result<Arc<Program>, EngineError> {
        if let Some(p) = self.programs.get(hash) {
            return Ok(p.clone());
        }
        let row = self
            .store
            .template(hash)?
            .ok_or_else(|| EngineError::Corrupt(format!("template {hash} is not stored")))?;
        let program = Arc::new(compile_row(&row).map_err(|e| EngineError::Corrupt(e.to_string()))?);
        self.programs.insert(hash.to_string(), program.clone());
        Ok(program)
    }

    /// The cached state of a run, loading it on first use.
    fn load(&mut self, item: &Item) -> Result<(), EngineError> {
        if self.runs.contains_key(&item.run_id) {
            return Ok(());
        }
        let (hash, state) = match &item.create {
            Some((run, template)) => {
                let program = Arc::new(
                    compile_row(template).map_err(|e| EngineError::Corrupt(e.to_string()))?,
                );
                self.programs.insert(run.template_hash.clone(), program);
                (run.template_hash.clone(), RunState::default())
            }
            None => self
                .store
                .load_state(&item.run_id)?
                .ok_or_else(|| EngineError::NoRun(item.run_id.clone()))?,
        };
        let program = self.program(&hash)?;
        self.runs
            .insert(item.run_id.clone(), Loaded { program, state });
        Ok(())
    }

    fn stage(&mut self, item: Item) -> Staged {
        let now = Utc::now();
        if let Err(error) = self.load(&item) {
            return Staged {
                item,
                decision: None,
                children: Vec::new(),
                inbox: Vec::new(),
                error: Some(error),
            };
        }
        let loaded = self.runs.get(&item.run_id).expect("loaded just above");
        let decision = match decide(&loaded.state, &loaded.program, item.input.clone(), now) {
            Ok(d) => d,
            Err(e) => {
                return Staged {
                    item,
                    decision: None,
                    children: Vec::new(),
                    inbox: Vec::new(),
                    error: Some(EngineError::Corrupt(e.to_string())),
                }
            }
        };
        let mut children = Vec::new();
        let mut inbox = Vec::new();
        if decision.verdict == Verdict::Applied {
            for effect in &decision.effects {
                if let Effect::StartChildWorkflow {
                    parent,
                    workflow_id,
                    template,
                    input,
                } = effect
                {
                    match self.child_start(parent, workflow_id, template, input) {
                        Ok(c) => children.push(c),
                        Err(row) => inbox.push(*row),
                    }
                }
            }
            if let Some(l) = self.runs.get_mut(&item.run_id) {
                l.state = decision.state.clone();
            }
        }
        Staged {
            item,
            decision: Some(decision),
            children,
            inbox,
            error: None,
        }
    }

    /// Plans a child run; a child that cannot start is reported to the parent instead.
    fn child_start(
        &mut self,
        parent: &ParentRef,
        workflow_id: &str,
        template: &str,
        input: &serde_json::Value,
    ) -> Result<ChildStart, Box<InboxRow>> {
        let run_id = new_id();
        let failed = |cause: String| Input::ChildStartFailed {
            initiated_event_id: parent.initiated_event_id,
            cause,
        };
        match self.templates.load(template) {
            Ok((row, program)) => {
                self.programs
                    .entry(row.hash.clone())
                    .or_insert_with(|| Arc::new(program));
                Ok(ChildStart {
                    run: NewRun {
                        run_id: run_id.clone(),
                        workflow_id: workflow_id.to_string(),
                        workflow_type: row.name.clone(),
                        template_hash: row.hash.clone(),
                        parent_run_id: Some(parent.run_id.clone()),
                    },
                    template: row,
                    start: Input::Start {
                        workflow_id: workflow_id.to_string(),
                        run_id,
                        input: input.clone(),
                        parent: Some(parent.clone()),
                    },
                    on_conflict: failed(format!("workflow {workflow_id} is already running")),
                })
            }
            Err(e) => Err(Box::new(InboxRow {
                run_id: parent.run_id.clone(),
                request_id: format!("child-failed:{workflow_id}"),
                input: failed(e.to_string()),
            })),
        }
    }

    /// Decides every item, then commits them in one transaction. Items of the same run
    /// are merged into one write (their events in order, the last state), so a run that
    /// moved several times in a batch is written once.
    fn process(&mut self, items: Vec<Item>) {
        let mut groups: Vec<Group> = Vec::new();
        let mut by_run: HashMap<String, usize> = HashMap::new();
        for item in items {
            let staged = self.stage(item);
            let g = *by_run.entry(staged.item.run_id.clone()).or_insert_with(|| {
                groups.push(Group::new(&staged.item.run_id));
                groups.len() - 1
            });
            groups[g].add(staged);
        }
        let now = Utc::now();
        let writes: Vec<Write<'_>> = groups
            .iter()
            .map(|g| Write {
                run_id: &g.run_id,
                create: g.create.as_ref().map(|(r, t)| (r, t)),
                decision: g.merged.as_ref(),
                consume_inbox: &g.consume_inbox,
                consume_timers: &g.consume_timers,
                children: &g.children,
                inbox: &g.inbox,
                now,
            })
            .collect();
        let results = self.store.commit(&writes);
        drop(writes);
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                // Nothing was written: forget cached state and tell every caller. Attempt
                // results have no caller to tell, so they are kept and tried again (inbox
                // rows and timers are still in the database and come back by themselves).
                let message = e.to_string();
                for g in groups {
                    self.runs.remove(&g.run_id);
                    for m in g.members {
                        match m.item.reply {
                            Some(reply) => {
                                let _ = reply.send(Err(EngineError::Store(message.clone())));
                            }
                            None if matches!(m.item.source, Source::Direct) => {
                                self.pending.push(m.item)
                            }
                            None => {}
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        };
        for (g, result) in groups.into_iter().zip(results) {
            match result {
                Err(e) => {
                    self.runs.remove(&g.run_id);
                    let message = e.to_string();
                    let mut first = Some(EngineError::from(e));
                    for m in g.members {
                        let err = m
                            .error
                            .or_else(|| first.take())
                            .unwrap_or_else(|| EngineError::Store(message.clone()));
                        if let Some(reply) = m.item.reply {
                            let _ = reply.send(Err(err));
                        }
                    }
                }
                Ok(()) => {
                    let wrote_rows = !(g.children.is_empty() && g.inbox.is_empty());
                    if let Some(d) = g.merged {
                        self.after_commit(&g.run_id, d, wrote_rows);
                    }
                    for m in g.members {
                        let answer = match m.error {
                            Some(e) => Err(e),
                            None => Ok(m.verdict),
                        };
                        if let Some(reply) = m.item.reply {
                            let _ = reply.send(answer);
                        }
                    }
                }
            }
        }
    }

    fn after_commit(&mut self, run_id: &str, d: Decision, wrote_children: bool) {
        for effect in d.effects {
            match effect {
                // A no-op attempt starts and ends right here: no round trip to the
                // dispatcher, and it commits with the next batch.
                Effect::DispatchActivity(task) if task.activity_type == NOOP => {
                    let (sid, attempt, epoch) = (task.scheduled_event_id, task.attempt, self.epoch);
                    for input in [
                        Input::ActivityStarted {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                        },
                        Input::ActivityCompleted {
                            scheduled_event_id: sid,
                            attempt,
                            epoch,
                            output: Default::default(),
                        },
                    ] {
                        self.pending.push(Item {
                            run_id: run_id.to_string(),
                            input,
                            source: Source::Direct,
                            create: None,
                            reply: None,
                        });
                    }
                }
                Effect::DispatchActivity(task) => {
                    let _ = self.exec.send(Exec::Dispatch(Box::new(task)));
                }
                Effect::CancelActivity {
                    scheduled_event_id,
                    attempt,
                    kill,
                } => {
                    let _ = self.exec.send(Exec::Cancel {
                        run_id: run_id.to_string(),
                        scheduled_event_id,
                        attempt,
                        kill,
                    });
                }
                Effect::NotifyParent { .. } | Effect::CancelChildWorkflow { .. } => {
                    self.inbox_dirty = true;
                }
                Effect::StartTimer { .. }
                | Effect::CancelTimer { .. }
                | Effect::StartChildWorkflow { .. } => {}
            }
        }
        if wrote_children {
            self.inbox_dirty = true;
        }
        if !d.state.status.is_open() {
            self.runs.remove(run_id);
            let _ = self.closed.send((run_id.to_string(), d.state.status));
        }
    }
}
