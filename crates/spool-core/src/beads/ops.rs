//! bd's edit semantics: what each command changes on an issue line.
//!
//! Every function edits one line through a [`LineEditor`], so only the values it names
//! change. Time and the actor are arguments. Rules follow bd: `updated_at` moves on every
//! change, `closed_at` is set exactly while the status is closed, a claim is a
//! compare-and-swap.

use serde_json::Value;

use super::edit::LineEditor;
use super::issue::{Issue, StatusKind, Timestamp};
use super::line::LineError;

/// Who is changing the issue, and when.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub now: &'a Timestamp,
    pub actor: &'a str,
}

impl<'a> Stamp<'a> {
    pub fn new(now: &'a Timestamp, actor: &'a str) -> Stamp<'a> {
        Stamp { now, actor }
    }
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    #[error("{id} is already claimed by {holder}")]
    HeldBy { id: String, holder: String },
    #[error("{id} is not claimable: status {status}")]
    NotClaimable { id: String, status: String },
}

/// Whether `actor` may claim `issue`: it must be open and unassigned, or already claimed
/// by `actor` (then the claim is a no-op success, `Ok(false)`).
pub fn check_claim(issue: &Issue, actor: &str) -> Result<bool, ClaimRefusal> {
    let mine = issue.assignee == actor;
    match issue.status_kind() {
        StatusKind::Open if issue.assignee.is_empty() || mine => Ok(true),
        StatusKind::InProgress if mine => Ok(false),
        StatusKind::Open | StatusKind::InProgress => Err(ClaimRefusal::HeldBy {
            id: issue.id.clone(),
            holder: issue.assignee.clone(),
        }),
        _ => Err(ClaimRefusal::NotClaimable {
            id: issue.id.clone(),
            status: issue.status().to_string(),
        }),
    }
}

/// Claims `issue` for the stamp's actor: `in_progress`, assigned, `updated_at` now (and
/// `started_at` on lines of bd v1 exports, which carry that field).
pub fn claim(ed: &mut LineEditor, issue: &Issue, stamp: Stamp<'_>) -> Result<(), LineError> {
    ed.set("status", "in_progress")?;
    ed.set("assignee", stamp.actor)?;
    if issue.started_at.is_none() && ed.get("_type")?.is_some() {
        ed.set("started_at", stamp.now.raw.as_str())?;
    }
    touch(ed, stamp)
}

/// Moves `updated_at` to now.
pub fn touch(ed: &mut LineEditor, stamp: Stamp<'_>) -> Result<(), LineError> {
    ed.set("updated_at", stamp.now.raw.as_str())
}

/// Sets the status, keeping `closed_at` consistent: set when entering a closed status,
/// removed when leaving one.
pub fn set_status(
    ed: &mut LineEditor,
    issue: &Issue,
    status: &str,
    stamp: Stamp<'_>,
) -> Result<(), LineError> {
    if issue.status() == status {
        return Ok(());
    }
    let closing = StatusKind::of(status) == StatusKind::Closed;
    ed.set("status", status)?;
    if closing && !issue.is_closed() {
        ed.set("closed_at", stamp.now.raw.as_str())?;
    } else if !closing {
        ed.remove("closed_at")?;
    }
    touch(ed, stamp)
}

/// Closes the issue with an optional reason (bd's `close --reason`). Closing a closed
/// issue again only updates the reason when one is given.
pub fn close(
    ed: &mut LineEditor,
    issue: &Issue,
    reason: Option<&str>,
    stamp: Stamp<'_>,
) -> Result<(), LineError> {
    if issue.status() != "closed" {
        ed.set("status", "closed")?;
        ed.set("closed_at", stamp.now.raw.as_str())?;
    }
    if let Some(r) = reason {
        ed.set_or_remove("close_reason", r)?;
    }
    touch(ed, stamp)
}

/// Reopens: status `open`, `closed_at` and `close_reason` cleared.
pub fn reopen(ed: &mut LineEditor, stamp: Stamp<'_>) -> Result<(), LineError> {
    ed.set("status", "open")?;
    ed.remove("closed_at")?;
    ed.remove("close_reason")?;
    touch(ed, stamp)
}

/// Turns the issue into a tombstone, as bd's soft delete did: status `tombstone`,
/// `closed_at` removed (only closed issues carry it), `deleted_at`/`deleted_by`/
/// `delete_reason`, the type it had as `original_type`, and `updated_at` now. The line
/// keeps everything else, so the deletion can be undone and merges see it as an edit.
pub fn tombstone(
    ed: &mut LineEditor,
    issue: &Issue,
    reason: &str,
    stamp: Stamp<'_>,
) -> Result<(), LineError> {
    ed.set("status", "tombstone")?;
    ed.remove("closed_at")?;
    ed.set("deleted_at", stamp.now.raw.as_str())?;
    ed.set("deleted_by", stamp.actor)?;
    ed.set_or_remove("delete_reason", reason)?;
    ed.set("original_type", issue.issue_type())?;
    touch(ed, stamp)
}

/// Sets a text field as bd writes it: removed when empty, except on lines that always
/// carry the key (pre-v0.40 files write `"description":""`), where it stays, empty.
pub fn set_text(ed: &mut LineEditor, key: &str, value: &str) -> Result<(), LineError> {
    if value.is_empty() && ed.get(key)?.is_some() && key == "description" {
        return ed.set(key, "");
    }
    ed.set_or_remove(key, value)
}

/// bd's `--append-notes`: existing notes, a newline, the new text.
pub fn append_notes(ed: &mut LineEditor, issue: &Issue, text: &str) -> Result<(), LineError> {
    let notes = if issue.notes.is_empty() {
        text.to_string()
    } else {
        format!("{}\n{}", issue.notes, text)
    };
    ed.set("notes", notes)
}

/// Sets or clears (`None`) a time field.
pub fn set_time(ed: &mut LineEditor, key: &str, at: Option<&Timestamp>) -> Result<(), LineError> {
    match at {
        Some(t) => ed.set(key, t.raw.as_str()),
        None => ed.remove(key).map(|_| ()),
    }
}

/// Sets an optional integer field; `None` removes it.
pub fn set_int(ed: &mut LineEditor, key: &str, value: Option<i64>) -> Result<(), LineError> {
    match value {
        Some(v) => ed.set(key, Value::from(v)),
        None => ed.remove(key).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::file::BeadsFile;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("valid time")
    }

    fn one(line: &str) -> BeadsFile {
        let (f, d) = BeadsFile::parse(format!("{line}\n").as_bytes());
        assert!(d.is_empty(), "{d:?}");
        f
    }

    fn text(f: &BeadsFile) -> String {
        String::from_utf8(f.to_bytes()).expect("utf8")
    }

    #[test]
    fn claim_is_compare_and_swap() {
        let mut issue = Issue {
            id: "t-1".into(),
            ..Issue::default()
        };
        assert_eq!(check_claim(&issue, "me"), Ok(true));
        issue.assignee = "you".into();
        assert!(matches!(
            check_claim(&issue, "me"),
            Err(ClaimRefusal::HeldBy { .. })
        ));
        issue.assignee = "me".into();
        issue.status = "in_progress".into();
        assert_eq!(check_claim(&issue, "me"), Ok(false));
        issue.status = "closed".into();
        assert!(matches!(
            check_claim(&issue, "me"),
            Err(ClaimRefusal::NotClaimable { .. })
        ));
    }

    #[test]
    fn claim_sets_status_assignee_and_time_only() {
        let mut f = one(
            r#"{"id":"t-1","title":"x","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#,
        );
        let now = ts("2026-02-02T00:00:00Z");
        let issue = f.get("t-1").expect("issue").clone();
        f.edit("t-1", |ed| {
            claim(
                ed,
                &issue,
                Stamp {
                    now: &now,
                    actor: "me",
                },
            )
        })
        .expect("edit");
        assert_eq!(
            text(&f),
            "{\"id\":\"t-1\",\"title\":\"x\",\"status\":\"in_progress\",\"priority\":2,\"issue_type\":\"task\",\"assignee\":\"me\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-02-02T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn close_and_reopen_keep_closed_at_consistent() {
        let mut f = one(
            r#"{"id":"t-1","title":"x","status":"open","priority":2,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#,
        );
        let now = ts("2026-02-02T00:00:00Z");
        let stamp = Stamp {
            now: &now,
            actor: "me",
        };
        let issue = f.get("t-1").expect("issue").clone();
        f.edit("t-1", |ed| close(ed, &issue, Some("done"), stamp))
            .expect("close");
        let closed = f.get("t-1").expect("issue").clone();
        assert_eq!(closed.status, "closed");
        assert_eq!(
            closed.closed_at.as_ref().map(|t| t.raw.as_str()),
            Some("2026-02-02T00:00:00Z")
        );
        assert_eq!(closed.close_reason, "done");
        f.edit("t-1", |ed| reopen(ed, stamp)).expect("reopen");
        let open = f.get("t-1").expect("issue").clone();
        assert_eq!(open.status, "open");
        assert!(open.closed_at.is_none());
        assert!(open.close_reason.is_empty());
        f.edit("t-1", |ed| set_status(ed, &open, "done", stamp))
            .expect("status");
        assert!(f.get("t-1").expect("issue").closed_at.is_some());
    }

    #[test]
    fn tombstone_keeps_the_line_and_records_the_deletion() {
        let mut f = one(
            r#"{"id":"t-1","title":"x","status":"closed","priority":2,"issue_type":"bug","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","closed_at":"2026-01-02T00:00:00Z"}"#,
        );
        let now = ts("2026-02-02T00:00:00Z");
        let issue = f.get("t-1").expect("issue").clone();
        f.edit("t-1", |ed| {
            tombstone(
                ed,
                &issue,
                "test pollution",
                Stamp {
                    now: &now,
                    actor: "me",
                },
            )
        })
        .expect("edit");
        let gone = f.get("t-1").expect("issue");
        assert!(gone.is_tombstone());
        assert!(gone.closed_at.is_none());
        assert_eq!(gone.title, "x");
        let v: serde_json::Value =
            serde_json::from_str(text(&f).trim_end()).expect("one JSON line");
        assert_eq!(v["deleted_at"], "2026-02-02T00:00:00Z");
        assert_eq!(v["deleted_by"], "me");
        assert_eq!(v["delete_reason"], "test pollution");
        assert_eq!(v["original_type"], "bug");
        assert_eq!(v["updated_at"], "2026-02-02T00:00:00Z");
    }

    #[test]
    fn empty_description_stays_on_lines_that_always_carry_it() {
        let mut f = one(r#"{"id":"t-1","title":"x","description":"old","priority":2}"#);
        f.edit("t-1", |ed| set_text(ed, "description", ""))
            .expect("edit");
        assert_eq!(
            text(&f),
            "{\"id\":\"t-1\",\"title\":\"x\",\"description\":\"\",\"priority\":2}\n"
        );
        let mut f = one(r#"{"id":"t-1","title":"x","notes":"old","priority":2}"#);
        f.edit("t-1", |ed| set_text(ed, "notes", "")).expect("edit");
        assert_eq!(
            text(&f),
            "{\"id\":\"t-1\",\"title\":\"x\",\"priority\":2}\n"
        );
    }

    #[test]
    fn append_notes_adds_a_line() {
        let mut f = one(r#"{"id":"t-1","title":"x","notes":"a","priority":2}"#);
        let issue = f.get("t-1").expect("issue").clone();
        f.edit("t-1", |ed| append_notes(ed, &issue, "b"))
            .expect("edit");
        assert_eq!(f.get("t-1").expect("issue").notes, "a\nb");
    }
}

/// Parses a time given on the command line, relative to `now`: RFC3339, `YYYY-MM-DD`
/// (midnight UTC), `+30m`/`+6h`/`+2d`/`+1w`, `now`, `today`, `tomorrow`.
pub fn parse_when(
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{Duration, NaiveDate, Utc};
    let s = s.trim();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    match s {
        "now" => return Ok(now),
        "today" => return midnight(now.date_naive()).ok_or_else(|| "invalid date".into()),
        "tomorrow" => {
            return midnight(now.date_naive() + Duration::days(1))
                .ok_or_else(|| "invalid date".into())
        }
        _ => {}
    }
    if let Some(rest) = s.strip_prefix('+') {
        let (num, unit) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let n: i64 = num
            .parse()
            .map_err(|_| format!("invalid relative time {s:?} (expected e.g. +6h, +2d)"))?;
        let d = match unit {
            "m" | "min" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            "w" => Duration::weeks(n),
            _ => {
                return Err(format!(
                    "invalid relative time {s:?}: unit must be m, h, d or w"
                ))
            }
        };
        return Ok(now + d);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return midnight(d).ok_or_else(|| "invalid date".into());
    }
    Err(format!(
        "invalid time {s:?} (expected RFC3339, YYYY-MM-DD, +6h/+2d, today or tomorrow)"
    ))
}

/// Parses a priority as bd accepts it: `0`–`4` or `P0`–`P4`.
pub fn parse_priority(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits = t.strip_prefix(['P', 'p']).unwrap_or(t);
    match digits.parse::<i64>() {
        Ok(p) if (0..=4).contains(&p) => Ok(p),
        _ => Err(format!("invalid priority {s:?} (expected 0-4 or P0-P4)")),
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn when_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .expect("valid")
            .with_timezone(&chrono::Utc);
        let f = |s| parse_when(s, now).map(|t| t.to_rfc3339());
        assert_eq!(f("+6h"), Ok("2026-03-01T18:00:00+00:00".into()));
        assert_eq!(f("+2d"), Ok("2026-03-03T12:00:00+00:00".into()));
        assert_eq!(f("tomorrow"), Ok("2026-03-02T00:00:00+00:00".into()));
        assert_eq!(f("2026-04-01"), Ok("2026-04-01T00:00:00+00:00".into()));
        assert_eq!(
            f("2026-04-01T10:00:00+02:00"),
            Ok("2026-04-01T08:00:00+00:00".into())
        );
        assert!(f("+6x").is_err());
        assert!(f("soon").is_err());
    }

    #[test]
    fn priorities() {
        assert_eq!(parse_priority("P1"), Ok(1));
        assert_eq!(parse_priority("3"), Ok(3));
        assert!(parse_priority("5").is_err());
        assert!(parse_priority("high").is_err());
    }
}
