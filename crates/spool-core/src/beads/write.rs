//! Records as classic bd writes them: new issue lines, dependency and comment objects,
//! and the bd-shaped JSON that tools read.

use serde_json::{Map, Value};

use super::issue::{CommentId, Issue, Timestamp};
use super::json::{write_value, Format};

/// Top-level key order of an issue record: classic bd's `types.Issue` field order, with
/// the keys other bd versions and ports wrote merged in where they put them (`_type`
/// first, export counts last). New keys in an existing line are placed by this order.
pub const BD_KEY_ORDER: &[&str] = &[
    "_type",
    "id",
    "content_hash",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "spec_id",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "owner",
    "estimated_minutes",
    "created_at",
    "created_by",
    "updated_at",
    "started_at",
    "closed_at",
    "close_reason",
    "closed_by_session",
    "due_at",
    "defer_until",
    "metadata",
    "external_ref",
    "source_system",
    "source_repo",
    "compaction_level",
    "compacted_at",
    "compacted_at_commit",
    "original_size",
    "labels",
    "dependencies",
    "comments",
    "deleted_at",
    "deleted_by",
    "delete_reason",
    "original_type",
    "sender",
    "ephemeral",
    "no_history",
    "wisp_type",
    "pinned",
    "is_template",
    "bonded_from",
    "creator",
    "validations",
    "quality_score",
    "crystallizes",
    "await_type",
    "await_id",
    "timeout",
    "waiters",
    "holder",
    "source_formula",
    "source_location",
    "hook_bead",
    "role_bead",
    "agent_state",
    "last_activity",
    "role_type",
    "rig",
    "mol_type",
    "work_type",
    "event_kind",
    "actor",
    "target",
    "payload",
    "dependency_count",
    "dependent_count",
    "comment_count",
    "parent",
];

/// Keys the typed [`Issue`] reads (including the aliases it accepts) plus the export-only
/// counts that tools recompute; everything else on a line is "unknown" to spool.
pub const TYPED_KEYS: &[&str] = &[
    "_type",
    "id",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "owner",
    "created_at",
    "created",
    "created_by",
    "updated_at",
    "updated",
    "started_at",
    "closed_at",
    "close_reason",
    "due_at",
    "defer_until",
    "external_ref",
    "estimated_minutes",
    "labels",
    "dependencies",
    "comments",
    "pinned",
    "ephemeral",
    "wisp",
    "is_template",
    "metadata",
    "timeout",
    "await_type",
    "await_id",
    "dependency_count",
    "dependent_count",
    "comment_count",
    "parent",
];

fn put_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.to_string(), Value::String(v.to_string()));
    }
}

fn put_ts(m: &mut Map<String, Value>, key: &str, v: &Option<Timestamp>) {
    if let Some(t) = v {
        m.insert(key.to_string(), Value::String(t.raw.clone()));
    }
}

/// A dependency edge to write, in bd's `types.Dependency` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDependency {
    pub issue_id: String,
    pub depends_on_id: String,
    pub dep_type: String,
    pub created_at: Timestamp,
    /// Always written, as classic bd's JSONL shows it (even when empty).
    pub created_by: String,
    /// bd's metadata is a JSON *string* (e.g. `"{}"`); omitted when empty.
    pub metadata: String,
    /// Omitted when empty.
    pub thread_id: String,
}

impl NewDependency {
    /// `{"issue_id","depends_on_id","type","created_at","created_by"[,"metadata"][,"thread_id"]}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("issue_id".into(), Value::String(self.issue_id.clone()));
        m.insert(
            "depends_on_id".into(),
            Value::String(self.depends_on_id.clone()),
        );
        m.insert("type".into(), Value::String(self.dep_type.clone()));
        m.insert(
            "created_at".into(),
            Value::String(self.created_at.raw.clone()),
        );
        m.insert("created_by".into(), Value::String(self.created_by.clone()));
        put_str(&mut m, "metadata", &self.metadata);
        put_str(&mut m, "thread_id", &self.thread_id);
        Value::Object(m)
    }
}

/// A comment to write, in bd's `types.Comment` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NewComment {
    /// An integer for files whose comments have integer ids (classic), else a string.
    pub id: CommentId,
    pub issue_id: String,
    pub author: String,
    pub text: String,
    pub created_at: Timestamp,
}

impl NewComment {
    /// `{"id","issue_id","author","text","created_at"}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            match &self.id {
                CommentId::Int(n) => Value::from(*n),
                CommentId::Str(s) => Value::String(s.clone()),
            },
        );
        m.insert("issue_id".into(), Value::String(self.issue_id.clone()));
        m.insert("author".into(), Value::String(self.author.clone()));
        m.insert("text".into(), Value::String(self.text.clone()));
        m.insert(
            "created_at".into(),
            Value::String(self.created_at.raw.clone()),
        );
        Value::Object(m)
    }
}

/// A new issue. Time and id are data: the caller supplies them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    pub id: String,
    pub title: String,
    pub description: String,
    pub design: String,
    pub acceptance_criteria: String,
    pub notes: String,
    pub status: String,
    pub priority: i64,
    pub issue_type: String,
    pub assignee: String,
    pub owner: String,
    pub estimated_minutes: Option<i64>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub close_reason: String,
    pub closed_by_session: String,
    pub due_at: Option<Timestamp>,
    pub defer_until: Option<Timestamp>,
    pub external_ref: String,
    pub metadata: Option<Value>,
    /// Written sorted and deduplicated, as bd does.
    pub labels: Vec<String>,
    pub dependencies: Vec<NewDependency>,
    pub comments: Vec<NewComment>,
    pub pinned: bool,
    /// Further keys (e.g. `spec_id`, `source_repo`): placed by [`BD_KEY_ORDER`], unknown
    /// ones last in the given order. They never replace the fields above.
    pub extra: Vec<(String, Value)>,
}

impl NewIssue {
    /// An open task of priority 2 (bd's defaults), created and updated at `now`.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        now: Timestamp,
        created_by: impl Into<String>,
    ) -> NewIssue {
        NewIssue {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            design: String::new(),
            acceptance_criteria: String::new(),
            notes: String::new(),
            status: "open".into(),
            priority: 2,
            issue_type: "task".into(),
            assignee: String::new(),
            owner: String::new(),
            estimated_minutes: None,
            created_at: now.clone(),
            created_by: created_by.into(),
            updated_at: now,
            started_at: None,
            closed_at: None,
            close_reason: String::new(),
            closed_by_session: String::new(),
            due_at: None,
            defer_until: None,
            external_ref: String::new(),
            metadata: None,
            labels: Vec::new(),
            dependencies: Vec::new(),
            comments: Vec::new(),
            pinned: false,
            extra: Vec::new(),
        }
    }

    /// The record as a map in bd key order; empty fields omitted except `priority`,
    /// `created_at` and `updated_at` (which bd always writes) and `id`/`title`.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("title".into(), Value::String(self.title.clone()));
        put_str(&mut m, "description", &self.description);
        put_str(&mut m, "design", &self.design);
        put_str(&mut m, "acceptance_criteria", &self.acceptance_criteria);
        put_str(&mut m, "notes", &self.notes);
        put_str(&mut m, "status", &self.status);
        m.insert("priority".into(), Value::from(self.priority));
        put_str(&mut m, "issue_type", &self.issue_type);
        put_str(&mut m, "assignee", &self.assignee);
        put_str(&mut m, "owner", &self.owner);
        if let Some(n) = self.estimated_minutes {
            m.insert("estimated_minutes".into(), Value::from(n));
        }
        m.insert(
            "created_at".into(),
            Value::String(self.created_at.raw.clone()),
        );
        put_str(&mut m, "created_by", &self.created_by);
        m.insert(
            "updated_at".into(),
            Value::String(self.updated_at.raw.clone()),
        );
        put_ts(&mut m, "started_at", &self.started_at);
        put_ts(&mut m, "closed_at", &self.closed_at);
        put_str(&mut m, "close_reason", &self.close_reason);
        put_str(&mut m, "closed_by_session", &self.closed_by_session);
        put_ts(&mut m, "due_at", &self.due_at);
        put_ts(&mut m, "defer_until", &self.defer_until);
        if let Some(v) = self.metadata.as_ref().filter(|v| !is_empty_value(v)) {
            m.insert("metadata".into(), v.clone());
        }
        put_str(&mut m, "external_ref", &self.external_ref);
        if !self.labels.is_empty() {
            let mut labels = self.labels.clone();
            labels.sort();
            labels.dedup();
            m.insert(
                "labels".into(),
                labels.into_iter().map(Value::String).collect(),
            );
        }
        if !self.dependencies.is_empty() {
            m.insert(
                "dependencies".into(),
                self.dependencies
                    .iter()
                    .map(NewDependency::to_value)
                    .collect(),
            );
        }
        if !self.comments.is_empty() {
            m.insert(
                "comments".into(),
                self.comments.iter().map(NewComment::to_value).collect(),
            );
        }
        if self.pinned {
            m.insert("pinned".into(), Value::Bool(true));
        }
        let extra: Vec<&(String, Value)> = self
            .extra
            .iter()
            .filter(|(k, v)| !m.contains_key(k) && !is_empty_value(v))
            .collect();
        if extra.is_empty() {
            return m;
        }
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
        sort_bd_order(m)
    }

    /// The line bd would write: compact, Go escaping, no line terminator.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        write_value(&mut out, &Value::Object(self.to_map()), &Format::go());
        out
    }
}

/// What Go's `omitempty` drops: `""`, `false`, `0`, `null`, `[]`, `{}`.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Reorders a map's keys by [`BD_KEY_ORDER`]; unknown keys keep their order, last.
pub fn sort_bd_order(m: Map<String, Value>) -> Map<String, Value> {
    let rank = |k: &str| {
        BD_KEY_ORDER
            .iter()
            .position(|o| *o == k)
            .unwrap_or(BD_KEY_ORDER.len())
    };
    let mut entries: Vec<(String, Value)> = m.into_iter().collect();
    entries.sort_by_key(|(k, _)| rank(k));
    entries.into_iter().collect()
}

/// An issue as the JSON object bd's `--json` output shows: bd key order, `status` and
/// `issue_type` with defaults applied, comment ids as strings. Tools add counts on top.
pub fn render_issue(issue: &Issue) -> Value {
    Value::Object(render_map(issue))
}

fn render_map(issue: &Issue) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(issue.id.clone()));
    m.insert("title".into(), Value::String(issue.title.clone()));
    put_str(&mut m, "description", &issue.description);
    put_str(&mut m, "design", &issue.design);
    put_str(&mut m, "acceptance_criteria", &issue.acceptance_criteria);
    put_str(&mut m, "notes", &issue.notes);
    m.insert("status".into(), Value::String(issue.status().to_string()));
    m.insert("priority".into(), Value::from(issue.priority));
    m.insert(
        "issue_type".into(),
        Value::String(issue.issue_type().to_string()),
    );
    put_str(&mut m, "assignee", &issue.assignee);
    put_str(&mut m, "owner", &issue.owner);
    if let Some(n) = issue.estimated_minutes {
        m.insert("estimated_minutes".into(), Value::from(n));
    }
    put_ts(&mut m, "created_at", &issue.created_at);
    put_str(&mut m, "created_by", &issue.created_by);
    put_ts(&mut m, "updated_at", &issue.updated_at);
    put_ts(&mut m, "started_at", &issue.started_at);
    put_ts(&mut m, "closed_at", &issue.closed_at);
    put_str(&mut m, "close_reason", &issue.close_reason);
    put_ts(&mut m, "due_at", &issue.due_at);
    put_ts(&mut m, "defer_until", &issue.defer_until);
    if let Some(v) = &issue.metadata {
        m.insert("metadata".into(), Value::clone(v));
    }
    put_str(&mut m, "external_ref", &issue.external_ref);
    if !issue.labels.is_empty() {
        m.insert(
            "labels".into(),
            issue.labels.iter().cloned().map(Value::String).collect(),
        );
    }
    let to_value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    if !issue.dependencies.is_empty() {
        m.insert(
            "dependencies".into(),
            issue
                .dependencies
                .iter()
                .map(|d| to_value(serde_json::to_value(d)))
                .collect(),
        );
    }
    if !issue.comments.is_empty() {
        m.insert(
            "comments".into(),
            issue
                .comments
                .iter()
                .map(|c| to_value(serde_json::to_value(c)))
                .collect(),
        );
    }
    if issue.ephemeral {
        m.insert("ephemeral".into(), Value::Bool(true));
    }
    if issue.pinned {
        m.insert("pinned".into(), Value::Bool(true));
    }
    if issue.is_template {
        m.insert("is_template".into(), Value::Bool(true));
    }
    put_str(&mut m, "await_type", &issue.await_type);
    put_str(&mut m, "await_id", &issue.await_id);
    if let Some(t) = issue.timeout {
        m.insert("timeout".into(), Value::from(t));
    }
    m
}

/// [`render_issue`] plus the keys of the issue's line that the typed view does not read
/// (e.g. `source_repo`, `work_type`), in bd order. `line` must be the issue's own JSON.
pub fn render_issue_with_line(issue: &Issue, line: &[u8]) -> Value {
    let mut out = render_map(issue);
    if let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(line) {
        let mut added = false;
        for (k, v) in raw {
            if !TYPED_KEYS.contains(&k.as_str()) && !out.contains_key(&k) {
                out.insert(k, v);
                added = true;
            }
        }
        if added {
            out = sort_bd_order(out);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("valid timestamp")
    }

    #[test]
    fn new_issue_line_is_classic_bd() {
        let mut n = NewIssue::new(
            "bd-1",
            "Fix <b> & \u{2028}",
            ts("2026-01-02T03:04:05Z"),
            "me",
        );
        n.labels = vec!["z".into(), "a".into(), "z".into()];
        n.dependencies.push(NewDependency {
            issue_id: "bd-1".into(),
            depends_on_id: "bd-0".into(),
            dep_type: "blocks".into(),
            created_at: ts("2026-01-02T03:04:05Z"),
            created_by: "me".into(),
            metadata: String::new(),
            thread_id: String::new(),
        });
        n.comments.push(NewComment {
            id: CommentId::Int(1),
            issue_id: "bd-1".into(),
            author: "me".into(),
            text: "é".into(),
            created_at: ts("2026-01-02T03:04:06Z"),
        });
        n.extra.push(("work_type".into(), Value::from("mutex")));
        n.extra.push(("spec_id".into(), Value::from("S1")));
        let line = String::from_utf8(n.to_line()).expect("utf8");
        assert_eq!(
            line,
            concat!(
                r#"{"id":"bd-1","title":"Fix \u003cb\u003e \u0026 \u2028","spec_id":"S1","status":"open","priority":2,"#,
                r#""issue_type":"task","created_at":"2026-01-02T03:04:05Z","created_by":"me","updated_at":"2026-01-02T03:04:05Z","#,
                r#""labels":["a","z"],"dependencies":[{"issue_id":"bd-1","depends_on_id":"bd-0","type":"blocks","#,
                r#""created_at":"2026-01-02T03:04:05Z","created_by":"me"}],"comments":[{"id":1,"issue_id":"bd-1","#,
                r#""author":"me","text":"é","created_at":"2026-01-02T03:04:06Z"}],"work_type":"mutex"}"#
            )
        );
    }

    #[test]
    fn priority_zero_is_written_and_empty_fields_are_not() {
        let mut n = NewIssue::new("x-1", "t", ts("2026-01-02T03:04:05Z"), "");
        n.priority = 0;
        n.status = String::new();
        let m = n.to_map();
        let keys: Vec<_> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "title",
                "priority",
                "issue_type",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(m["priority"], Value::from(0));
    }

    #[test]
    fn render_applies_defaults_and_stringifies_comment_ids() {
        let i: Issue = serde_json::from_str(
            r#"{"id":"a","title":"t","priority":1,"comments":[{"id":3,"issue_id":"a","author":"x","text":"y","created_at":"2026-01-01T00:00:00Z"}]}"#,
        )
        .expect("parses");
        let v = render_issue(&i);
        assert_eq!(v["status"], "open");
        assert_eq!(v["issue_type"], "task");
        assert_eq!(v["comments"][0]["id"], "3");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "id",
                "title",
                "status",
                "priority",
                "issue_type",
                "comments"
            ]
        );
    }

    #[test]
    fn render_with_line_adds_unknown_keys_in_bd_order() {
        let line =
            br#"{"id":"a","title":"t","work_type":"mutex","source_repo":".","dependency_count":4}"#;
        let i: Issue = serde_json::from_slice(line).expect("parses");
        let v = render_issue_with_line(&i, line);
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "id",
                "title",
                "status",
                "priority",
                "issue_type",
                "source_repo",
                "work_type"
            ]
        );
    }
}
