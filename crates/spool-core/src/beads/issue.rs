//! The typed view of one issue record.
//!
//! This is what the semantics (ready, blocked, tree, stats) read. It is *not* what gets
//! written back: the lossless layer keeps every line's original bytes and edits them in
//! place, so fields this struct does not know survive untouched. Deserialization is
//! tolerant of every variant bd and its ports ever wrote (see `docs/architecture.md`).

use std::cell::Cell;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize};

/// How much of each record a parse keeps (see [`with_lean`] and [`with_skim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Detail {
    Full,
    Lean,
    /// A skim that keeps the titles (for output that names every issue it lists).
    Titled,
    Skim,
}

thread_local! {
    /// The detail of the parse running on this thread.
    static DETAIL: Cell<Detail> = const { Cell::new(Detail::Full) };
}

fn detail() -> Detail {
    DETAIL.with(Cell::get)
}

pub(super) fn with_detail<R>(d: Detail, f: impl FnOnce() -> R) -> R {
    struct Restore(Detail);
    impl Drop for Restore {
        fn drop(&mut self) {
            DETAIL.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(DETAIL.with(|l| l.replace(d)));
    f()
}

/// Runs `f` with the long free-text fields ([`LEAN_TEXT_FIELDS`] and comment texts)
/// checked but not kept: they come out empty. A bulk load for queries that never read
/// them then allocates a fraction of the memory; a value of the wrong type is still the
/// same error.
pub fn with_lean<R>(f: impl FnOnce() -> R) -> R {
    with_detail(Detail::Lean, f)
}

/// [`with_lean`], and also every field the dependency graph and the ready filters do not
/// read ([`SKIM_FIELDS`]) is checked but not kept: for a parse whose issues only become
/// [`Skimmed`](super::node::Skimmed) nodes.
pub fn with_skim<R>(f: impl FnOnce() -> R) -> R {
    with_detail(Detail::Skim, f)
}

/// The fields a skim (see [`with_skim`]) leaves empty besides [`LEAN_TEXT_FIELDS`].
pub const SKIM_FIELDS: &[&str] = &[
    "title",
    "owner",
    "created_by",
    "updated_at",
    "started_at",
    "close_reason",
    "due_at",
    "external_ref",
    "metadata",
    "await_type",
    "await_id",
];

/// The fields a lean parse leaves empty, besides each comment's `text`.
pub const LEAN_TEXT_FIELDS: &[&str] = &["description", "design", "acceptance_criteria", "notes"];

/// Checks a string without keeping it.
struct CheckStr;

impl<'de> Deserialize<'de> for CheckStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CheckStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<CheckStr, E> {
                Ok(CheckStr)
            }
        }
        d.deserialize_str(V)
    }
}

/// Checks a timestamp as [`Timestamp`] does, without keeping it.
struct CheckTime;

impl<'de> Deserialize<'de> for CheckTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CheckTime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<CheckTime, E> {
                DateTime::parse_from_rfc3339(raw)
                    .map(|_| CheckTime)
                    .map_err(|_| E::custom(format!("invalid RFC3339 timestamp {raw:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// An optional string, checked but not kept during a lean parse.
fn de_lean_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    if detail() >= Detail::Lean {
        Option::<CheckStr>::deserialize(d).map(|_| None)
    } else {
        Option::<String>::deserialize(d)
    }
}

/// An optional timestamp, checked but not kept during a lean parse.
fn de_lean_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<Timestamp>>, D::Error> {
    if detail() >= Detail::Lean {
        Option::<CheckTime>::deserialize(d).map(|_| None)
    } else {
        Option::<Timestamp>::deserialize(d).map(|t| t.map(Box::new))
    }
}

/// A string, type-checked but not kept (empty) when `drop`.
fn text_unless<'de, D: Deserializer<'de>>(d: D, drop: bool) -> Result<String, D::Error> {
    if drop {
        CheckStr::deserialize(d)?;
        Ok(String::new())
    } else {
        String::deserialize(d)
    }
}

/// A free-text string, skipped (but type-checked) during a lean parse.
fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text_unless(d, detail() >= Detail::Lean)
}

/// A short string, skipped (but type-checked) during a skim.
fn de_skim_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text_unless(d, detail() >= Detail::Titled)
}

/// The title: skipped (but type-checked) during a skim, unless it keeps titles.
fn de_skim_title<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text_unless(d, detail() == Detail::Skim)
}

/// An optional timestamp, checked but not kept during a skim.
fn de_skim_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    if detail() >= Detail::Titled {
        Option::<CheckTime>::deserialize(d).map(|_| None)
    } else {
        Option::<Timestamp>::deserialize(d)
    }
}

/// Arbitrary JSON, skipped during a skim.
fn de_skim_value<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<serde_json::Value>>, D::Error> {
    if detail() >= Detail::Titled {
        serde::de::IgnoredAny::deserialize(d).map(|_| None)
    } else {
        Option::<Box<serde_json::Value>>::deserialize(d)
    }
}

/// An RFC3339 timestamp that remembers the exact string it was read from, so output and
/// rewrites can reproduce it byte for byte (bd wrote every precision and zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    pub raw: String,
    pub at: DateTime<FixedOffset>,
}

impl Timestamp {
    pub fn parse(raw: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(raw).ok().map(|at| Timestamp {
            raw: raw.to_string(),
            at,
        })
    }

    /// Formats like Go's RFC3339Nano in UTC: fractional seconds with trailing zeros
    /// trimmed (`…:05.1234Z`, `…:05Z`), which is how bd writes times.
    pub fn from_utc(at: DateTime<chrono::Utc>) -> Timestamp {
        let mut raw = at.format("%Y-%m-%dT%H:%M:%S").to_string();
        let nanos = at.timestamp_subsec_nanos();
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            raw.push('.');
            raw.push_str(frac.trim_end_matches('0'));
        }
        raw.push('Z');
        Timestamp {
            raw,
            at: at.fixed_offset(),
        }
    }

    /// Unix nanoseconds, as bd feeds into its hash ids.
    pub fn unix_nanos(&self) -> i64 {
        self.at.timestamp_nanos_opt().unwrap_or(i64::MAX)
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Timestamp::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC3339 timestamp {raw:?}")))
    }
}

/// How a status behaves, whatever its spelling. Custom statuses are kept verbatim in
/// [`Issue::status`]; this is only the category the semantics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Open,
    InProgress,
    Blocked,
    Deferred,
    /// `closed`, and the spellings other writers used for it (`done`, `completed`).
    Closed,
    Pinned,
    Hooked,
    Tombstone,
    Custom,
}

impl StatusKind {
    pub fn of(status: &str) -> StatusKind {
        match status {
            "" | "open" => StatusKind::Open,
            "in_progress" => StatusKind::InProgress,
            "blocked" => StatusKind::Blocked,
            "deferred" => StatusKind::Deferred,
            "closed" | "done" | "completed" => StatusKind::Closed,
            "pinned" => StatusKind::Pinned,
            "hooked" => StatusKind::Hooked,
            "tombstone" => StatusKind::Tombstone,
            _ => StatusKind::Custom,
        }
    }
}

/// Dependency types with meaning for readiness. Everything else is a soft link, kept as
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    Blocks,
    /// The issue is a child of the target.
    ParentChild,
    ConditionalBlocks,
    WaitsFor,
    /// `related`, `discovered-from`, `relates-to`, `duplicates`, `supersedes`,
    /// `replies-to`, and any custom string.
    Soft,
}

impl DepKind {
    pub fn of(dep_type: &str) -> DepKind {
        match dep_type {
            "" | "blocks" => DepKind::Blocks,
            "parent-child" | "parent_child" => DepKind::ParentChild,
            "conditional-blocks" => DepKind::ConditionalBlocks,
            "waits-for" => DepKind::WaitsFor,
            _ => DepKind::Soft,
        }
    }

    pub fn affects_ready(self) -> bool {
        !matches!(self, DepKind::Soft)
    }
}

/// Canonical spelling of a dependency type as classic bd writes it.
pub fn canonical_dep_type(dep_type: &str) -> &str {
    match dep_type {
        "" => "blocks",
        "parent_child" => "parent-child",
        other => other,
    }
}

/// One outgoing edge: this issue depends on `depends_on_id`. A lean parse (see
/// [`with_lean`]) leaves `issue_id`, `created_at`, `created_by` and `thread_id` empty:
/// the graph reads only the target, the type and the metadata.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Dependency {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de_text"
    )]
    pub issue_id: String,
    pub depends_on_id: String,
    #[serde(rename = "type", default)]
    pub dep_type: String,
    /// Boxed: 40 bytes inline on every edge, and a lean parse never keeps it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_lean_time"
    )]
    pub created_at: Option<Box<Timestamp>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_lean_opt_text"
    )]
    pub created_by: Option<String>,
    /// A JSON string in bd (`"{}"`), sometimes an object in other writers. Boxed: a
    /// `Value` is 72 bytes inline and most edges have none (see [`Issue::metadata`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<serde_json::Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_lean_opt_text"
    )]
    pub thread_id: Option<String>,
}

impl Dependency {
    pub fn kind(&self) -> DepKind {
        DepKind::of(&self.dep_type)
    }

    /// The `waits-for` gate: `true` for `any-children`, `false` for `all-children`
    /// (the default).
    pub fn waits_for_any(&self) -> bool {
        let gate = match self.metadata.as_deref() {
            Some(serde_json::Value::String(s)) => serde_json::from_str::<serde_json::Value>(s)
                .ok()
                .and_then(|v| v.get("gate").and_then(|g| g.as_str()).map(str::to_string)),
            Some(v) => v.get("gate").and_then(|g| g.as_str()).map(str::to_string),
            None => None,
        };
        gate.as_deref() == Some("any-children")
    }
}

/// A comment id: an integer in classic bd, a UUID string in bd v1. Output always renders
/// it as a string (what bd's JSON consumers expect); rewrites keep the original form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommentId {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for CommentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommentId::Int(n) => write!(f, "{n}"),
            CommentId::Str(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for CommentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Int(n) => CommentId::Int(n),
            Raw::Str(s) => CommentId::Str(s),
        })
    }
}

impl Serialize for CommentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Comment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CommentId>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issue_id: String,
    #[serde(default)]
    pub author: String,
    #[serde(default, deserialize_with = "de_text")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

/// Labels `needs:<capability>` route an issue to machines that have the capability.
pub const NEEDS_LABEL_PREFIX: &str = "needs:";

/// Issue types that are infrastructure, never offered as ready work.
pub const NON_WORK_TYPES: &[&str] = &[
    "merge-request",
    "gate",
    "molecule",
    "message",
    "agent",
    "role",
    "rig",
];

/// The typed view of an issue line. Field names and meanings are bd's `types.Issue`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Issue {
    pub id: String,
    #[serde(deserialize_with = "de_skim_title")]
    pub title: String,
    #[serde(deserialize_with = "de_text")]
    pub description: String,
    #[serde(deserialize_with = "de_text")]
    pub design: String,
    #[serde(deserialize_with = "de_text")]
    pub acceptance_criteria: String,
    #[serde(deserialize_with = "de_text")]
    pub notes: String,
    /// As written; empty means `open`. See [`Issue::status_kind`].
    pub status: String,
    /// 0 (critical) to 4 (backlog); bd's default 2 when absent.
    #[serde(deserialize_with = "de_priority", default = "default_priority")]
    pub priority: i64,
    /// As written; empty means `task`. See [`Issue::issue_type`].
    #[serde(rename = "issue_type")]
    pub issue_type_raw: String,
    pub assignee: String,
    #[serde(deserialize_with = "de_skim_text")]
    pub owner: String,
    #[serde(alias = "created")]
    pub created_at: Option<Timestamp>,
    #[serde(deserialize_with = "de_skim_text")]
    pub created_by: String,
    #[serde(alias = "updated", deserialize_with = "de_skim_time")]
    pub updated_at: Option<Timestamp>,
    #[serde(deserialize_with = "de_skim_time")]
    pub started_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    #[serde(deserialize_with = "de_skim_text")]
    pub close_reason: String,
    #[serde(deserialize_with = "de_skim_time")]
    pub due_at: Option<Timestamp>,
    pub defer_until: Option<Timestamp>,
    #[serde(deserialize_with = "de_skim_text")]
    pub external_ref: String,
    pub estimated_minutes: Option<i64>,
    pub labels: Vec<String>,
    pub dependencies: Vec<Dependency>,
    pub comments: Vec<Comment>,
    pub pinned: bool,
    #[serde(alias = "wisp")]
    pub ephemeral: bool,
    pub is_template: bool,
    /// Arbitrary JSON, kept verbatim. Boxed: a `Value` is 72 bytes inline, and a large
    /// backlog holds one `Issue` per line, most without metadata.
    #[serde(deserialize_with = "de_skim_value")]
    pub metadata: Option<Box<serde_json::Value>>,
    /// Gate timeout: a Go duration, integer nanoseconds.
    pub timeout: Option<i64>,
    #[serde(deserialize_with = "de_skim_text")]
    pub await_type: String,
    #[serde(deserialize_with = "de_skim_text")]
    pub await_id: String,
    /// `_type` of bd v1 exports (`issue`); other record kinds never become an `Issue`.
    #[serde(rename = "_type")]
    pub record_type: Option<String>,
}

fn default_priority() -> i64 {
    2
}

fn de_priority<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // bd always writes an integer; tolerate a float with no fraction (JSON tools do that).
    let v = serde_json::Value::deserialize(d)?;
    match &v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| {
                serde::de::Error::custom(format!("priority must be an integer, got {n}"))
            }),
        serde_json::Value::Null => Ok(default_priority()),
        other => Err(serde::de::Error::custom(format!(
            "priority must be an integer, got {other}"
        ))),
    }
}

impl Issue {
    pub fn status_kind(&self) -> StatusKind {
        StatusKind::of(&self.status)
    }

    /// The status with bd's default applied.
    pub fn status(&self) -> &str {
        if self.status.is_empty() {
            "open"
        } else {
            &self.status
        }
    }

    /// The type with bd's default applied.
    pub fn issue_type(&self) -> &str {
        if self.issue_type_raw.is_empty() {
            "task"
        } else {
            &self.issue_type_raw
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.status_kind() == StatusKind::Tombstone
    }

    pub fn is_closed(&self) -> bool {
        self.status_kind() == StatusKind::Closed
    }

    /// Capabilities a machine needs to work this issue: its `needs:<capability>` labels.
    pub fn needs(&self) -> impl Iterator<Item = &str> + '_ {
        self.labels
            .iter()
            .filter_map(|l| l.strip_prefix(NEEDS_LABEL_PREFIX))
            .filter(|c| !c.is_empty())
    }

    /// The parent id from this issue's `parent-child` edge, if any.
    pub fn parent_id(&self) -> Option<&str> {
        self.dependencies
            .iter()
            .find(|d| d.kind() == DepKind::ParentChild)
            .map(|d| d.depends_on_id.as_str())
    }

    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_aliases() {
        let i: Issue = serde_json::from_str(
            r#"{"id":"x-1","title":"t","priority":1,"created":"2026-01-02T03:04:05Z","wisp":true,"dependencies":[{"issue_id":"x-1","depends_on_id":"x-0","type":"parent_child"}],"comments":[{"id":7,"text":"a"},{"id":"0190-uuid","text":"b"}]}"#,
        )
        .expect("parses");
        assert_eq!(i.status(), "open");
        assert_eq!(i.issue_type(), "task");
        assert!(i.ephemeral);
        assert_eq!(
            i.created_at.as_ref().map(|t| t.raw.as_str()),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(i.parent_id(), Some("x-0"));
        assert_eq!(
            i.comments[0].id.as_ref().map(|c| c.to_string()),
            Some("7".into())
        );
        assert_eq!(
            i.comments[1].id.as_ref().map(|c| c.to_string()),
            Some("0190-uuid".into())
        );
    }

    /// A bulk load keeps one `Issue` per line and one `Dependency` per edge, so their
    /// inline sizes are most of a large backlog's memory: rarely present, large fields
    /// stay boxed.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn typed_records_stay_small() {
        assert!(std::mem::size_of::<Issue>() <= 752);
        assert!(std::mem::size_of::<Dependency>() <= 136);
        assert_eq!(std::mem::size_of::<Option<Box<serde_json::Value>>>(), 8);
    }

    #[test]
    fn missing_or_null_priority_defaults_to_two() {
        let i: Issue =
            serde_json::from_str(r#"{"id":"x-1","title":"t","priority":null}"#).expect("parses");
        assert_eq!(i.priority, 2);
        let i: Issue = serde_json::from_str(r#"{"id":"x-1","title":"t"}"#).expect("parses");
        assert_eq!(i.priority, 2);
        let bad = serde_json::from_str::<Issue>(r#"{"id":"x-1","title":"t","priority":"high"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn utc_timestamps_trim_fraction_like_go() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_400_000).expect("valid");
        assert_eq!(Timestamp::from_utc(at).raw, "2023-11-14T22:13:20.1234Z");
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        assert_eq!(Timestamp::from_utc(at).raw, "2023-11-14T22:13:20Z");
        assert!(Timestamp::parse(&Timestamp::from_utc(at).raw).is_some());
    }

    #[test]
    fn statuses_and_dep_kinds() {
        assert_eq!(StatusKind::of("done"), StatusKind::Closed);
        assert_eq!(StatusKind::of("review"), StatusKind::Custom);
        assert_eq!(DepKind::of("parent_child"), DepKind::ParentChild);
        assert_eq!(DepKind::of("blocked-by"), DepKind::Soft);
        assert!(!DepKind::of("related").affects_ready());
    }

    #[test]
    fn waits_for_gate_from_string_or_object_metadata() {
        let mut d = Dependency {
            issue_id: "a".into(),
            depends_on_id: "b".into(),
            dep_type: "waits-for".into(),
            created_at: None,
            created_by: None,
            metadata: Some(Box::new(serde_json::Value::String(
                r#"{"gate":"any-children"}"#.into(),
            ))),
            thread_id: None,
        };
        assert!(d.waits_for_any());
        d.metadata = Some(Box::new(serde_json::json!({"gate": "all-children"})));
        assert!(!d.waits_for_any());
        d.metadata = None;
        assert!(!d.waits_for_any());
    }
}
