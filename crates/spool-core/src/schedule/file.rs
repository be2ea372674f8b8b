//! `.spool/schedules.toml`: schedule definitions. A malformed schedule is reported (file,
//! line, schedule id, field) and left out; the others load.
//!
//! ```toml
//! [[schedule]]
//! id = "nightly-triage"
//! cron = "0 3 * * *"              # or a list; or `every = "15m"` with `offset = "5m"`
//! timezone = "Europe/Berlin"      # IANA name, default UTC
//! jitter = "30s"                  # optional; start, end (RFC 3339) optional
//! overlap = "skip"                # buffer_one, buffer_all, cancel_other, terminate_other, allow_all
//! catchup_window = "1m"           # default 1m
//! pause_on_failure = false
//! max_actions = 10                # optional limit of scheduled actions
//! notes = "..."
//! [schedule.action]
//! workflow = "triage"             # a template; or create_issue = { title = "...", ... }
//! input = { scope = "all" }
//! ```

use super::cron_expr::CronExpr;
use super::policy::OverlapPolicy;
use super::spec::{Interval, Spec};
use crate::workflow::duration::parse_duration;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use toml::Spanned;

/// How far back missed times still run after downtime, unless a schedule says otherwise.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(60);

/// Every field a schedule may have.
pub const FIELDS: &[&str] = &[
    "id",
    "cron",
    "every",
    "offset",
    "timezone",
    "start",
    "end",
    "jitter",
    "overlap",
    "catchup_window",
    "pause_on_failure",
    "max_actions",
    "notes",
    "action",
];

/// What a schedule does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a run of a workflow template with this input.
    Workflow { template: String, input: Value },
    /// Create an issue in the backlog, as `spool create` would.
    CreateIssue(IssueAction),
}

/// The issue a `create_issue` action writes.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueAction {
    pub title: String,
    pub issue_type: String,
    pub priority: i64,
    pub labels: Vec<String>,
    pub description: String,
    pub assignee: String,
}

/// One valid schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDef {
    pub id: String,
    pub spec: Spec,
    pub action: Action,
    pub overlap: OverlapPolicy,
    pub catchup_window: Duration,
    pub pause_on_failure: bool,
    /// Limit of scheduled actions (`None`: unlimited).
    pub max_actions: Option<u64>,
    pub notes: String,
    /// The definition as JSON (what the store keeps, and what [`ScheduleDef::hash`] covers).
    pub fields: Map<String, Value>,
}

impl ScheduleDef {
    /// SHA-256 of the definition's JSON: a changed hash means the schedule was edited.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(Value::Object(self.fields.clone()).to_string().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A problem with one field of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A problem in the file, located as precisely as the problem allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub file: String,
    pub line: usize,
    pub schedule: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(s) = &self.schedule {
            write!(f, "schedule {s:?}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The schedules of a file: the valid ones (with the line of their table) and the errors.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFile {
    pub schedules: Vec<(ScheduleDef, usize)>,
    pub errors: Vec<ScheduleError>,
}

type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
struct RawDoc {
    #[serde(default)]
    schedule: Vec<Spanned<RawTable>>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

/// 1-based line numbers of byte offsets, by binary search over the line starts (a file
/// of many schedules asks for thousands of them).
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &str) -> Lines {
        Lines(memchr::memchr_iter(b'\n', src.as_bytes()).collect())
    }

    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    Lines::new(src).of(offset)
}

/// Parses `source` (the contents of `file`).
pub fn parse_file(file: &str, source: &str) -> ScheduleFile {
    let mut out = ScheduleFile::default();
    let doc: RawDoc = match toml::from_str(source) {
        Ok(d) => d,
        Err(e) => {
            out.errors.push(ScheduleError {
                file: file.to_string(),
                line: e.span().map(|s| line_of(source, s.start)).unwrap_or(1),
                schedule: None,
                field: None,
                message: e.message().to_string(),
            });
            return out;
        }
    };
    for key in doc.other.keys() {
        let at = source
            .lines()
            .position(|l| l.trim_start().starts_with(key.as_str()))
            .map_or(1, |i| i + 1);
        out.errors.push(ScheduleError {
            file: file.to_string(),
            line: at,
            schedule: None,
            field: Some(key.clone()),
            message: "unknown top-level key (schedules are `[[schedule]]` tables)".into(),
        });
    }
    let lines = Lines::new(source);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for table in &doc.schedule {
        let table_line = lines.of(table.span().start);
        let key_line = |name: &str| {
            table
                .get_ref()
                .keys()
                .find(|k| k.get_ref() == name)
                .map(|k| lines.of(k.span().start))
                .unwrap_or(table_line)
        };
        let mut fields = Map::new();
        for (k, v) in table.get_ref() {
            fields.insert(k.get_ref().clone(), toml_to_json(v.get_ref()));
        }
        let id = fields.get("id").and_then(Value::as_str).map(str::to_string);
        let error = |field: Option<String>, message: String| ScheduleError {
            file: file.to_string(),
            line: field.as_deref().map(key_line).unwrap_or(table_line),
            schedule: id.clone(),
            field,
            message,
        };
        if let Some(id) = &id {
            if let Some(first) = seen.get(id) {
                out.errors.push(error(
                    Some("id".into()),
                    format!("duplicate id (first defined on line {first})"),
                ));
                continue;
            }
            seen.insert(id.clone(), table_line);
        }
        match ScheduleDef::from_fields(&fields) {
            Ok(def) => out.schedules.push((def, table_line)),
            Err(e) => out.errors.push(error(Some(e.field), e.message)),
        }
    }
    out
}

/// TOML to JSON; date-times become their RFC 3339 text.
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn string<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, FieldError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_err(name, "expected a string")),
    }
}

fn duration(fields: &Map<String, Value>, name: &str) -> Result<Option<Duration>, FieldError> {
    string(fields, name)?
        .map(|s| parse_duration(s).map_err(|e| field_err(name, e)))
        .transpose()
}

fn time(fields: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    string(fields, name)?
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    field_err(
                        name,
                        format!("{s:?} is not an RFC 3339 time with an offset: {e}"),
                    )
                })
        })
        .transpose()
}

/// Whether `id` can be a schedule id: it becomes part of workflow ids.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with(['-', '.'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ScheduleDef {
    /// Builds a definition from its fields (the TOML table as JSON, or what the store
    /// kept), checking each.
    pub fn from_fields(fields: &Map<String, Value>) -> Result<ScheduleDef, FieldError> {
        for key in fields.keys() {
            if !FIELDS.contains(&key.as_str()) {
                return Err(field_err(
                    key,
                    format!("unknown field (expected one of: {})", FIELDS.join(", ")),
                ));
            }
        }
        let id = string(fields, "id")?
            .ok_or_else(|| field_err("id", "missing (every schedule needs an id)"))?;
        if !valid_id(id) {
            return Err(field_err(
                "id",
                format!("{id:?}: use letters, digits, `-`, `_`, `.` (at most 100, not starting with `-` or `.`)"),
            ));
        }
        let crons = match fields.get("cron") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| field_err("cron", "expected strings in the list"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(field_err("cron", "expected a string or a list of strings")),
        };
        let crons = crons
            .iter()
            .map(|c| CronExpr::parse(c).map_err(|e| field_err("cron", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let offset = duration(fields, "offset")?;
        let intervals = match duration(fields, "every")? {
            Some(every) => vec![
                Interval::new(every, offset.unwrap_or_default()).map_err(|e| {
                    field_err(
                        if e.contains("offset") {
                            "offset"
                        } else {
                            "every"
                        },
                        e,
                    )
                })?,
            ],
            None if offset.is_some() => {
                return Err(field_err("offset", "`offset` needs `every`"));
            }
            None => Vec::new(),
        };
        if crons.is_empty() && intervals.is_empty() {
            return Err(field_err("cron", "a schedule needs `cron` or `every`"));
        }
        let tz = match string(fields, "timezone")? {
            None => chrono_tz::Tz::UTC,
            Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
                field_err(
                    "timezone",
                    format!("{name:?} is not an IANA time zone (e.g. \"Europe/Berlin\")"),
                )
            })?,
        };
        let start = time(fields, "start")?;
        let end = time(fields, "end")?;
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                return Err(field_err("end", "`end` is before `start`"));
            }
        }
        let jitter = duration(fields, "jitter")?.unwrap_or_default();
        let overlap = match string(fields, "overlap")? {
            None => OverlapPolicy::default(),
            Some(p) => OverlapPolicy::parse(p).ok_or_else(|| {
                field_err(
                    "overlap",
                    format!("{p:?}: expected skip, buffer_one, buffer_all, cancel_other, terminate_other or allow_all"),
                )
            })?,
        };
        let catchup_window = duration(fields, "catchup_window")?.unwrap_or(DEFAULT_CATCHUP_WINDOW);
        if catchup_window < Duration::from_secs(1) {
            // A fire is always noticed a little after its time; a shorter window would
            // record most of them as missed.
            return Err(field_err("catchup_window", "must be at least 1s"));
        }
        let pause_on_failure = match fields.get("pause_on_failure") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(field_err("pause_on_failure", "expected true or false")),
        };
        let max_actions = match fields.get("max_actions") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| field_err("max_actions", "expected a whole number ≥ 0"))?,
            ),
        };
        let notes = string(fields, "notes")?.unwrap_or_default().to_string();
        let action = action(fields.get("action"))?;
        Ok(ScheduleDef {
            id: id.to_string(),
            spec: Spec {
                crons,
                intervals,
                tz,
                start,
                end,
                jitter,
            },
            action,
            overlap,
            catchup_window,
            pause_on_failure,
            max_actions,
            notes,
            fields: fields.clone(),
        })
    }
}

fn action(v: Option<&Value>) -> Result<Action, FieldError> {
    let Some(v) = v else {
        return Err(field_err(
            "action",
            "missing (add `[schedule.action]` with `workflow = \"NAME\"` or `create_issue = { title = \"...\" }`)",
        ));
    };
    let Value::Object(t) = v else {
        return Err(field_err("action", "expected a table"));
    };
    for k in t.keys() {
        if !matches!(k.as_str(), "workflow" | "input" | "create_issue") {
            return Err(field_err(
                &format!("action.{k}"),
                "unknown field (expected workflow, input or create_issue)",
            ));
        }
    }
    match (t.get("workflow"), t.get("create_issue")) {
        (Some(_), Some(_)) => Err(field_err(
            "action",
            "give either `workflow` or `create_issue`, not both",
        )),
        (Some(Value::String(name)), None) if !name.trim().is_empty() => Ok(Action::Workflow {
            template: name.clone(),
            input: t.get("input").cloned().unwrap_or(Value::Object(Map::new())),
        }),
        (Some(_), None) => Err(field_err("action.workflow", "expected a template name")),
        (None, Some(Value::Object(issue))) => {
            if t.contains_key("input") {
                return Err(field_err("action.input", "`input` goes with `workflow`"));
            }
            issue_action(issue).map(Action::CreateIssue)
        }
        (None, Some(_)) => Err(field_err("action.create_issue", "expected a table")),
        (None, None) => Err(field_err(
            "action",
            "expected `workflow = \"NAME\"` or `create_issue = { title = \"...\" }`",
        )),
    }
}

fn issue_action(t: &Map<String, Value>) -> Result<IssueAction, FieldError> {
    const KEYS: &[&str] = &[
        "title",
        "type",
        "priority",
        "labels",
        "description",
        "assignee",
    ];
    for k in t.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(field_err(
                &format!("action.create_issue.{k}"),
                format!("unknown field (expected one of: {})", KEYS.join(", ")),
            ));
        }
    }
    let text = |k: &str| -> Result<String, FieldError> {
        match t.get(k) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(field_err(
                &format!("action.create_issue.{k}"),
                "expected a string",
            )),
        }
    };
    let title = text("title")?;
    if title.trim().is_empty() {
        return Err(field_err("action.create_issue.title", "missing or empty"));
    }
    let priority = match t.get("priority") {
        None => 2,
        Some(v) => v
            .as_i64()
            .filter(|p| (0..=4).contains(p))
            .ok_or_else(|| field_err("action.create_issue.priority", "expected 0–4"))?,
    };
    let labels = match t.get("labels") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| field_err("action.create_issue.labels", "expected strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(field_err("action.create_issue.labels", "expected a list")),
    };
    let issue_type = text("type")?;
    Ok(IssueAction {
        title,
        issue_type: if issue_type.is_empty() {
            "task".into()
        } else {
            issue_type
        },
        priority,
        labels,
        description: text("description")?,
        assignee: text("assignee")?,
    })
}
