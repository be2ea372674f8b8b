//! The daemon's writes to the backlog: claim, progress comment, close, release. Each goes
//! through [`crate::backlog::modify`] (lock, re-read, atomic write), so a teammate's or the
//! user's concurrent edit is never overwritten, and then commits `.beads/issues.jsonl`
//! alone with [`crate::git::commit_paths`], leaving the user's index and work tree as they are.

use crate::backlog::{modify, CommentIds, Tx};
use crate::git::{self, Signature};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use spool_core::beads::lease::{self, Holder, Lease};
use spool_core::beads::ops::{self, ClaimRefusal, Stamp};
use spool_core::beads::{Issue, NewComment, StatusKind, Timestamp};
use std::path::Path;

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now (status in_progress, assignee = the actor).
    Claimed,
    /// Already claimed by this actor (an earlier life of the daemon).
    AlreadyMine,
    /// Someone else holds it, or it is no longer open.
    Refused(ClaimRefusal),
    /// The issue is gone from the backlog.
    Missing,
    /// Taken over from another daemon whose lease had run out.
    TookOver { from: String },
}

/// Who writes and how: the daemon's actor, and whether to commit.
pub struct Writer<'a> {
    pub ws: &'a Workspace,
    pub actor: &'a str,
    pub commit: bool,
    /// In a team, claims carry a lease this long (see `spool_core::beads::lease`).
    pub lease: Option<chrono::Duration>,
}

impl Writer<'_> {
    /// Compare-and-swap claim under the backlog lock. In a team, the claim carries a
    /// lease, and an issue whose holder's lease ran out is taken over.
    pub fn claim(&self, id: &str, now: DateTime<Utc>) -> Result<Claim> {
        let stamp_time = Timestamp::from_utc(now);
        let stamp = Stamp {
            now: &stamp_time,
            actor: self.actor,
        };
        modify(self.ws, |tx| {
            let Some(issue) = tx.file.get_full(id) else {
                return Ok(Claim::Missing);
            };
            let Some(lease) = self.lease else {
                return match ops::check_claim(&issue, self.actor) {
                    Ok(true) => {
                        tx.edit(id, |ed| ops::claim(ed, &issue, stamp))?;
                        Ok(Claim::Claimed)
                    }
                    Ok(false) => Ok(Claim::AlreadyMine),
                    Err(r) => Ok(Claim::Refused(r)),
                };
            };
            let mine = Lease {
                owner: self.actor.to_string(),
                expires: now + lease,
            };
            match lease::holder(&issue, self.actor, now) {
                Holder::Free => {
                    tx.edit(id, |ed| {
                        ops::claim(ed, &issue, stamp)?;
                        lease::set_lease(ed, &mine)
                    })?;
                    Ok(Claim::Claimed)
                }
                Holder::Mine => {
                    tx.edit(id, |ed| lease::set_lease(ed, &mine))?;
                    Ok(Claim::AlreadyMine)
                }
                Holder::Expired { owner, expired } => {
                    tx.edit(id, |ed| {
                        ops::claim(ed, &issue, stamp)?;
                        lease::set_lease(ed, &mine)
                    })?;
                    let note = format!(
                        "spool: taken over from {owner}, whose lease expired at {}",
                        expired.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    );
                    self.add_comment(tx, id, &note, now)?;
                    Ok(Claim::TookOver { from: owner })
                }
                Holder::Other(holder) => Ok(Claim::Refused(ClaimRefusal::HeldBy {
                    id: id.to_string(),
                    holder,
                })),
                Holder::NotClaimable => Ok(Claim::Refused(ClaimRefusal::NotClaimable {
                    id: id.to_string(),
                    status: issue.status().to_string(),
                })),
            }
        })
    }

    /// Gives up a claim a teammate made first (or an issue closed there meanwhile): the
    /// local issue takes the remote's status, assignee, lease, close fields and
    /// `updated_at`, so merging the two agrees on them.
    pub fn take_theirs(&self, id: &str, theirs: &Issue) -> Result<()> {
        modify(self.ws, |tx| {
            if tx.file.get(id).is_none() {
                return Ok(());
            }
            tx.edit(id, |ed| {
                ed.set("status", theirs.status())?;
                ed.set_or_remove("assignee", theirs.assignee.as_str())?;
                match &theirs.metadata {
                    Some(m) => ed.set("metadata", (**m).clone())?,
                    None => {
                        ed.remove("metadata")?;
                    }
                }
                if let Some(at) = &theirs.updated_at {
                    ed.set("updated_at", at.raw.as_str())?;
                }
                match &theirs.closed_at {
                    Some(at) => ed.set("closed_at", at.raw.as_str())?,
                    None => {
                        ed.remove("closed_at")?;
                    }
                }
                ed.set_or_remove("close_reason", theirs.close_reason.as_str())?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Renews the leases of `ids` this actor still holds; returns how many.
    pub fn renew_leases(&self, ids: &[String], now: DateTime<Utc>) -> Result<usize> {
        let Some(lease) = self.lease else {
            return Ok(0);
        };
        let mine = Lease {
            owner: self.actor.to_string(),
            expires: now + lease,
        };
        modify(self.ws, |tx| {
            let mut renewed = 0;
            for id in ids {
                let held = tx
                    .file
                    .get_full(id)
                    .is_some_and(|i| lease::holder(&i, self.actor, now) == Holder::Mine);
                if held {
                    tx.edit(id, |ed| lease::set_lease(ed, &mine))?;
                    renewed += 1;
                }
            }
            Ok(renewed)
        })
    }

    /// Adds a comment by the daemon's actor.
    pub fn comment(&self, id: &str, text: &str, now: DateTime<Utc>) -> Result<()> {
        modify(self.ws, |tx| self.add_comment(tx, id, text, now))
    }

    /// Closes the issue with `reason`.
    pub fn close(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<()> {
        let stamp_time = Timestamp::from_utc(now);
        let stamp = Stamp {
            now: &stamp_time,
            actor: self.actor,
        };
        modify(self.ws, |tx| {
            let Some(issue) = tx.file.get_full(id) else {
                return Ok(());
            };
            // Closed by someone else meanwhile: their reason stands.
            if !issue.is_closed() {
                tx.edit(id, |ed| {
                    ops::close(ed, &issue, Some(reason), stamp)?;
                    lease::clear_lease(ed)
                })?;
            }
            Ok(())
        })
    }

    /// Gives the issue back after a failed run: open, unassigned, labelled
    /// [`super::progress::FAILED_LABEL`] (so it is not picked up again until a person
    /// removes the label), with `note` as a comment.
    pub fn release_failed(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<()> {
        self.release(
            id,
            note,
            &[super::progress::FAILED_LABEL.to_string()],
            &[],
            now,
        )
    }

    /// Gives the issue back (open, unassigned) with labels added and removed and `note`
    /// as a comment: after a failure, or after a template that does not close its issue.
    pub fn release(
        &self,
        id: &str,
        note: &str,
        add: &[String],
        remove: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let stamp_time = Timestamp::from_utc(now);
        let stamp = Stamp {
            now: &stamp_time,
            actor: self.actor,
        };
        modify(self.ws, |tx| {
            let Some(issue) = tx.file.get_full(id) else {
                return Ok(());
            };
            // Someone took the issue over meanwhile (closed it, reassigned it): leave
            // their change, only record the outcome.
            if issue.status_kind() != StatusKind::InProgress || issue.assignee != self.actor {
                return self.add_comment(tx, id, note, now);
            }
            tx.edit(id, |ed| {
                ops::set_status(ed, &issue, "open", stamp)?;
                ed.remove("assignee")?;
                lease::clear_lease(ed)?;
                for label in remove {
                    ed.remove_label(label)?;
                }
                for label in add {
                    ed.add_label(label)?;
                }
                ops::touch(ed, stamp)
            })?;
            self.add_comment(tx, id, note, now)
        })
    }

    fn add_comment(&self, tx: &mut Tx, id: &str, text: &str, now: DateTime<Utc>) -> Result<()> {
        if tx.file.get(id).is_none() {
            return Ok(());
        }
        let created_at = Timestamp::from_utc(now);
        let comment = NewComment {
            id: CommentIds::of(&tx.file).nth(0, now),
            issue_id: id.to_string(),
            author: self.actor.to_string(),
            text: text.to_string(),
            created_at: created_at.clone(),
        };
        tx.edit(id, |ed| {
            ed.add_comment(&comment)?;
            ops::touch(
                ed,
                Stamp {
                    now: &created_at,
                    actor: self.actor,
                },
            )
        })?;
        Ok(())
    }

    /// Commits the backlog file alone (when committing is configured).
    pub fn commit_backlog(&self, message: &str, now: DateTime<Utc>) -> Result<()> {
        if !self.commit {
            return Ok(());
        }
        let path = self.ws.issues_path();
        let rel = path.strip_prefix(&self.ws.root).unwrap_or(&path);
        git::commit_paths(
            &self.ws.root,
            &[rel as &Path],
            message,
            &signature(self.actor, now),
        )
        .with_context(|| format!("committing {}", rel.display()))?;
        Ok(())
    }
}

/// The daemon's commits are authored by its actor (`spool@host` is also its email).
pub fn signature(actor: &str, now: DateTime<Utc>) -> Signature {
    let email = if actor.contains('@') {
        actor.to_string()
    } else {
        format!("{actor}@localhost")
    };
    Signature {
        name: actor.to_string(),
        email,
        time: now,
    }
}
