//! Claims that hold across machines: a claim carries a lease in the issue's `metadata`
//! (`"spool_lease": {"owner": ..., "expires": RFC3339}`), renewed by its owner while it
//! works. An issue whose lease ran out (its daemon died) may be taken over by another
//! daemon. Other `metadata` keys are kept as they are.

use super::edit::LineEditor;
use super::issue::{Issue, StatusKind};
use super::line::LineError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The key under `metadata`.
pub const LEASE_KEY: &str = "spool_lease";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires: DateTime<Utc>,
}

/// The issue's lease, if it has a readable one.
pub fn lease_of(issue: &Issue) -> Option<Lease> {
    let l = issue.metadata.as_ref()?.get(LEASE_KEY)?;
    let owner = l.get("owner")?.as_str()?.to_string();
    let expires = DateTime::parse_from_rfc3339(l.get("expires")?.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    Some(Lease { owner, expires })
}

/// Who holds an issue, as a daemon about to claim it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Open and unassigned (or assigned to `me`): claimable.
    Free,
    /// In progress and assigned to `me`.
    Mine,
    /// In progress for someone else whose lease is still valid, or who holds it without
    /// a lease (a person: never taken over).
    Other(String),
    /// In progress for another daemon whose lease ran out at `expired`.
    Expired {
        owner: String,
        expired: DateTime<Utc>,
    },
    /// Closed, blocked, deferred or another status nobody claims.
    NotClaimable,
}

pub fn holder(issue: &Issue, me: &str, now: DateTime<Utc>) -> Holder {
    let mine = issue.assignee == me;
    match issue.status_kind() {
        StatusKind::Open if issue.assignee.is_empty() || mine => Holder::Free,
        StatusKind::InProgress if mine => Holder::Mine,
        StatusKind::Open | StatusKind::InProgress => match lease_of(issue) {
            Some(l) if l.owner == issue.assignee && l.expires <= now => Holder::Expired {
                owner: l.owner,
                expired: l.expires,
            },
            _ => Holder::Other(issue.assignee.clone()),
        },
        _ => Holder::NotClaimable,
    }
}

/// Writes the lease into `metadata`, keeping the object's other keys (a non-object
/// `metadata` is left alone and reported).
pub fn set_lease(ed: &mut LineEditor, lease: &Lease) -> Result<(), LineError> {
    let mut meta = match ed.get("metadata")? {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(LineError::FieldNotAnObject {
                key: "metadata".into(),
            })
        }
    };
    let mut l = Map::new();
    l.insert("owner".into(), Value::String(lease.owner.clone()));
    l.insert(
        "expires".into(),
        Value::String(lease.expires.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    meta.insert(LEASE_KEY.into(), Value::Object(l));
    ed.set("metadata", Value::Object(meta))
}

/// Removes the lease (the issue was closed or given back); drops `metadata` when nothing
/// else was in it.
pub fn clear_lease(ed: &mut LineEditor) -> Result<(), LineError> {
    let Some(Value::Object(mut meta)) = ed.get("metadata")? else {
        return Ok(());
    };
    if meta.remove(LEASE_KEY).is_none() {
        return Ok(());
    }
    if meta.is_empty() {
        ed.remove("metadata").map(|_| ())
    } else {
        ed.set("metadata", Value::Object(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::json::Evidence;
    use crate::beads::line::{scan_object, LineStyle};
    use crate::beads::BeadsFile;

    fn issue(line: Value) -> Issue {
        let (file, diags) = BeadsFile::parse_owned(
            format!("{line}\n").into_bytes(),
            std::num::NonZeroUsize::MIN,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let found = file.issues().next().cloned().expect("issue");
        found
    }

    fn editor(line: &str) -> LineEditor {
        let b = line.as_bytes().to_vec();
        let layout = scan_object(&b).expect("object");
        let style = LineStyle::detect(&b, &layout, |_| Evidence::default());
        LineEditor::new(b, style)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn who_holds_an_issue() {
        let now = at("2026-03-01T12:00:00Z");
        let open = issue(serde_json::json!({"id": "t-1", "title": "x", "status": "open"}));
        assert_eq!(holder(&open, "me", now), Holder::Free);
        let leased = |owner: &str, expires: &str| {
            issue(
                serde_json::json!({"id": "t-1", "title": "x", "status": "in_progress",
                "assignee": owner,
                "metadata": {"spool_lease": {"owner": owner, "expires": expires}, "k": 1}}),
            )
        };
        assert_eq!(
            holder(&leased("me", "2026-03-01T11:00:00Z"), "me", now),
            Holder::Mine
        );
        assert_eq!(
            holder(&leased("them", "2026-03-01T12:05:00Z"), "me", now),
            Holder::Other("them".into())
        );
        assert_eq!(
            holder(&leased("them", "2026-03-01T11:59:00Z"), "me", now),
            Holder::Expired {
                owner: "them".into(),
                expired: at("2026-03-01T11:59:00Z")
            }
        );
        // A person's claim has no lease: never taken over.
        let person = issue(serde_json::json!({"id": "t-1", "title": "x",
            "status": "in_progress", "assignee": "ann"}));
        assert_eq!(holder(&person, "me", now), Holder::Other("ann".into()));
        let closed = issue(serde_json::json!({"id": "t-1", "title": "x", "status": "closed"}));
        assert_eq!(holder(&closed, "me", now), Holder::NotClaimable);
    }

    #[test]
    fn leases_are_written_and_cleared_keeping_other_metadata() {
        let line = r#"{"id":"t-1","title":"x","metadata":{"k":1}}"#;
        let mut ed = editor(line);
        let lease = Lease {
            owner: "spool@a".into(),
            expires: at("2026-03-01T12:05:00Z"),
        };
        set_lease(&mut ed, &lease).expect("set");
        let text = String::from_utf8(ed.bytes().to_vec()).expect("utf-8");
        assert!(
            text.contains(r#""metadata":{"k":1,"spool_lease":{"owner":"spool@a","expires":"2026-03-01T12:05:00Z"}}"#),
            "{text}"
        );
        assert_eq!(
            lease_of(&issue(serde_json::from_str(&text).expect("json"))),
            Some(lease)
        );
        clear_lease(&mut ed).expect("clear");
        let text = String::from_utf8(ed.bytes().to_vec()).expect("utf-8");
        assert_eq!(text, line);
        let mut bare = editor(r#"{"id":"t-1","title":"x"}"#);
        set_lease(
            &mut bare,
            &Lease {
                owner: "o".into(),
                expires: at("2026-03-01T12:05:00Z"),
            },
        )
        .expect("set");
        clear_lease(&mut bare).expect("clear");
        assert_eq!(bare.bytes(), br#"{"id":"t-1","title":"x"}"#);
        let mut odd = editor(r#"{"id":"t-1","metadata":"s"}"#);
        assert!(set_lease(
            &mut odd,
            &Lease {
                owner: "o".into(),
                expires: at("2026-03-01T12:05:00Z")
            }
        )
        .is_err());
    }
}
