//! Team mode's git side: the daemon's backlog is shared through the remote with
//! `spool sync`, a claim is real only once it is pushed, and a claim a teammate pushed
//! first is given up before the merge could decide it.
//!
//! Syncs are serialized by one lock per daemon, and claims are made under it too (so a
//! sync never merges a claim it did not look at): the background syncs (after progress
//! commits, and periodically to see teammates' work) run on their own thread, a claim's
//! confirmation runs on the daemon's loop and waits for it.

use super::issues::{signature, Writer};
use crate::sync::{sync_backlog_guarded, SyncError, SyncFailure, SyncOptions};
use crate::workspace::Workspace;
use chrono::Utc;
use spool_core::beads::lease::{holder, Holder};
use spool_core::beads::{BeadsFile, Issue, StatusKind};
use std::num::NonZeroUsize;
use std::sync::{mpsc, Arc, Mutex};

/// How the daemon syncs: the remote and branch of `[sync]`.
#[derive(Clone)]
pub struct Team {
    pub ws: Workspace,
    pub actor: String,
    pub remote: Option<String>,
    pub branch: Option<String>,
    pub max_attempts: u32,
    /// Held for the length of every sync of this daemon.
    lock: Arc<Mutex<()>>,
}

/// How a claim's confirmation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Pushed: the issue is this daemon's.
    Yes,
    /// A teammate's claim reached the remote first; the local claim was given up.
    LostTo(String),
}

impl Team {
    pub fn new(
        ws: Workspace,
        actor: String,
        remote: Option<String>,
        branch: Option<String>,
        max_attempts: u32,
    ) -> Team {
        Team {
            ws,
            actor,
            remote,
            branch,
            max_attempts,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Keeps syncs out while held (a claim is made under it).
    pub fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn options(&self) -> SyncOptions {
        SyncOptions {
            remote: self.remote.clone(),
            branch: self.branch.clone(),
            max_attempts: self.max_attempts,
            signature: signature(&self.actor, Utc::now()),
        }
    }

    /// One sync round (commit, fetch, merge, push), giving up claims teammates pushed
    /// first; returns the issues given up and to whom.
    pub fn sync(&self) -> Result<Vec<(String, String)>, SyncFailure> {
        let _held = self.hold();
        let mut lost = Vec::new();
        let mut guard = |theirs: Option<&[u8]>| self.yield_to(theirs, &mut lost);
        sync_backlog_guarded(&self.ws, &self.options(), &mut guard)?;
        Ok(lost)
    }

    /// Pushes the claim of `id` (see [`Team::sync`]). Confirmed when, after the push,
    /// the issue is still this actor's: a background sync may have given it up already.
    pub fn confirm_claim(&self, id: &str) -> anyhow::Result<Confirmed> {
        self.sync()?;
        let local = crate::backlog::read_bytes(&self.ws.issues_path())?;
        Ok(match issue_in(&local, id) {
            Some(i) if i.status_kind() == StatusKind::InProgress && i.assignee == self.actor => {
                Confirmed::Yes
            }
            Some(i) if !i.assignee.is_empty() => Confirmed::LostTo(i.assignee.clone()),
            Some(i) => Confirmed::LostTo(format!("nobody ({})", i.status())),
            None => Confirmed::LostTo("nobody (the issue is gone)".into()),
        })
    }

    /// Before a merge: every issue this actor holds here that the remote shows held by
    /// someone else with a live lease (or by a person, without one), or closed, was
    /// claimed there first (and perhaps done), or taken over after this daemon's lease
    /// ran out. The local copy takes
    /// theirs (status, assignee, lease, `updated_at`), so the merge agrees and never
    /// lets the later claim win. A remote holder whose lease has run out is the one this
    /// daemon took the issue over from: its claim stays.
    fn yield_to(
        &self,
        theirs: Option<&[u8]>,
        lost: &mut Vec<(String, String)>,
    ) -> Result<(), SyncError> {
        let Some(theirs) = theirs else {
            return Ok(());
        };
        let now = Utc::now();
        let local = crate::backlog::read_bytes(&self.ws.issues_path()).map_err(SyncError::Other)?;
        let (file, _) = BeadsFile::parse_owned(local, NonZeroUsize::MIN);
        let mine: Vec<String> = file
            .issues()
            .filter(|i| i.status_kind() == StatusKind::InProgress && i.assignee == self.actor)
            .map(|i| i.id.clone())
            .collect();
        let writer = Writer {
            ws: &self.ws,
            actor: &self.actor,
            commit: false,
            lease: None,
        };
        for id in mine {
            let Some(remote) = issue_in(theirs, &id) else {
                continue;
            };
            // Held there by someone else, or already closed there (done by whoever
            // held it, or by a person): not this daemon's to run.
            let gone = match holder(&remote, &self.actor, now) {
                Holder::Other(_) => true,
                Holder::NotClaimable => remote.is_closed(),
                _ => false,
            };
            if gone {
                writer.take_theirs(&id, &remote).map_err(SyncError::Other)?;
                lost.push((id, remote.assignee.clone()));
            }
        }
        Ok(())
    }
}

/// The issue `id` in a backlog file's bytes (its last line, as reads do), if any. Only
/// lines that mention the id are parsed.
pub fn issue_in(backlog: &[u8], id: &str) -> Option<Issue> {
    let needle = serde_json::to_string(id).ok()?;
    backlog
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| line.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .find_map(|line| {
            let (file, _) = BeadsFile::parse_owned(line.to_vec(), NonZeroUsize::MIN);
            file.get(id).cloned()
        })
}

/// Background syncs: requests are coalesced (one sync covers every request made while
/// the previous one ran); failures are passed to `report`.
pub struct SyncWorker {
    requests: mpsc::Sender<()>,
}

impl SyncWorker {
    pub fn start(team: Team, report: impl Fn(String) + Send + 'static) -> SyncWorker {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {}
                match team.sync() {
                    Ok(lost) => {
                        for (id, holder) in lost {
                            report(format!("{id} was claimed first by {holder}; given up"));
                        }
                    }
                    Err(f) => report(format!("sync: {} ({})", f.error, f.error.kind())),
                }
            }
        });
        SyncWorker { requests: tx }
    }

    pub fn request(&self) {
        let _ = self.requests.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_is_found_by_its_own_line() {
        let backlog = br#"{"id":"t-1","title":"mentions \"t-2\"","status":"open"}
{"id":"t-2","title":"two","status":"in_progress","assignee":"spool@b"}
not json "t-2"
"#;
        let i = issue_in(backlog, "t-2").expect("found");
        assert_eq!(i.assignee, "spool@b");
        assert_eq!(i.title, "two");
        assert!(issue_in(backlog, "t-3").is_none());
    }
}
