//! What the dependency graph and the ready filters read of an issue, as a trait, and the
//! compact record that holds only that.
//!
//! [`Graph`](super::graph::Graph) is built over any [`Node`]: over typed [`Issue`]s when
//! a command shows or edits them, over [`Skimmed`] records when a command over a large
//! backlog needs the whole graph but prints only a few issues (those it then parses in
//! full from their lines). A `Skimmed` is about a sixth of an `Issue` with its strings.

use super::graph::instant_nanos;
use super::issue::{CommentId, DepKind, Issue, StatusKind};

/// One outgoing edge as the graph reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeDep<'a> {
    pub target: &'a str,
    pub kind: DepKind,
    /// For `waits-for`: the `any-children` gate (else `all-children`).
    pub any_children: bool,
}

/// The per-issue facts the graph, `ready`, `blocked` and the list filters read.
pub trait Node {
    fn id(&self) -> &str;
    /// Empty in a skim that drops titles (see [`Skim::parse_titled`](super::skim::Skim::parse_titled)).
    fn title(&self) -> &str;
    fn status_kind(&self) -> StatusKind;
    /// The status with bd's default (`open`) applied.
    fn status(&self) -> &str;
    /// The type with bd's default (`task`) applied.
    fn issue_type(&self) -> &str;
    fn priority(&self) -> i64;
    fn assignee(&self) -> &str;
    fn labels(&self) -> &[String];
    fn pinned(&self) -> bool;
    fn ephemeral(&self) -> bool;
    fn is_template(&self) -> bool;
    /// `created_at` in unix nanoseconds.
    fn created_nanos(&self) -> Option<i64>;
    /// `defer_until` in unix nanoseconds.
    fn defer_until_nanos(&self) -> Option<i64>;
    /// `defer_until` as written.
    fn defer_until_raw(&self) -> Option<&str>;
    /// From `created_at` to `closed_at` in milliseconds, when both are set.
    fn lead_time_ms(&self) -> Option<i64>;
    fn comment_count(&self) -> usize;
    fn dep_count(&self) -> usize;
    /// Dependency `d` (`d < dep_count()`), in file order.
    fn dep(&self, d: usize) -> NodeDep<'_>;

    /// The parent id from the first `parent-child` edge, if any.
    fn parent_id(&self) -> Option<&str> {
        (0..self.dep_count())
            .map(|d| self.dep(d))
            .find(|d| d.kind == DepKind::ParentChild)
            .map(|d| d.target)
    }
}

/// A typed view a [`BeadsFile`](super::file::BeadsFile) keeps of each issue line: the
/// [`Issue`] itself, or only its [`Skimmed`] facts (a writer over a large backlog needs
/// the graph of every issue but the full record of only the lines it edits).
pub trait Record: Node + Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The view of a parsed issue.
    fn from_issue(issue: Box<Issue>) -> Box<Self>;
    /// The full issue, when the view is one.
    fn as_issue(&self) -> Option<&Issue>;
}

impl Record for Issue {
    fn from_issue(issue: Box<Issue>) -> Box<Issue> {
        issue
    }
    fn as_issue(&self) -> Option<&Issue> {
        Some(self)
    }
}

impl Record for Skimmed {
    /// Without the title, as a skim reads every line (an edited line is parsed in full).
    fn from_issue(issue: Box<Issue>) -> Box<Skimmed> {
        let mut issue = *issue;
        issue.title = String::new();
        Box::new(Skimmed::from(issue))
    }
    fn as_issue(&self) -> Option<&Issue> {
        None
    }
}

impl Node for Issue {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn defer_until_raw(&self) -> Option<&str> {
        self.defer_until.as_ref().map(|t| t.raw.as_str())
    }
    fn status_kind(&self) -> StatusKind {
        Issue::status_kind(self)
    }
    fn status(&self) -> &str {
        Issue::status(self)
    }
    fn issue_type(&self) -> &str {
        Issue::issue_type(self)
    }
    fn priority(&self) -> i64 {
        self.priority
    }
    fn assignee(&self) -> &str {
        &self.assignee
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn pinned(&self) -> bool {
        self.pinned
    }
    fn ephemeral(&self) -> bool {
        self.ephemeral
    }
    fn is_template(&self) -> bool {
        self.is_template
    }
    fn created_nanos(&self) -> Option<i64> {
        self.created_at.as_ref().map(|t| instant_nanos(&t.at))
    }
    fn lead_time_ms(&self) -> Option<i64> {
        match (&self.created_at, &self.closed_at) {
            (Some(c), Some(d)) => Some((d.at - c.at).num_milliseconds()),
            _ => None,
        }
    }
    fn defer_until_nanos(&self) -> Option<i64> {
        self.defer_until.as_ref().map(|t| instant_nanos(&t.at))
    }
    fn comment_count(&self) -> usize {
        self.comments.len()
    }
    fn dep_count(&self) -> usize {
        self.dependencies.len()
    }
    fn dep(&self, d: usize) -> NodeDep<'_> {
        let dep = &self.dependencies[d];
        let kind = dep.kind();
        NodeDep {
            target: &dep.depends_on_id,
            kind,
            any_children: kind == DepKind::WaitsFor && dep.waits_for_any(),
        }
    }
    fn parent_id(&self) -> Option<&str> {
        Issue::parent_id(self)
    }
}

/// One edge of a [`Skimmed`] issue.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SkimDep {
    target: Box<str>,
    kind: DepKind,
    any_children: bool,
}

/// The [`Node`] facts of one issue and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skimmed {
    id: Box<str>,
    /// What most issues of a skim lack, boxed apart (see [`Rare`]).
    rare: Option<Box<Rare>>,
    issue_type: Box<str>,
    assignee: Box<str>,
    labels: Vec<String>,
    deps: Box<[SkimDep]>,
    priority: i64,
    created: Option<i64>,
    defer_until: Option<i64>,
    lead_time_ms: Option<i64>,
    /// The largest integer comment id (0 when none), and whether any id is a string: how
    /// a writer numbers the next comment.
    max_int_comment_id: i64,
    comment_count: u32,
    string_comment_id: bool,
    status: StatusKind,
    pinned: bool,
    ephemeral: bool,
    is_template: bool,
}

/// The strings a [`Skimmed`] keeps only when it has them: a status not spelled as its
/// kind plainly is (custom statuses, `done`, …), the title (only a skim that keeps titles
/// has it), `defer_until` as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Rare {
    status_raw: Option<Box<str>>,
    title: Box<str>,
    defer_until_raw: Option<Box<str>>,
}

/// How bd spells a status of each kind that has one spelling.
fn plain_status(kind: StatusKind) -> Option<&'static str> {
    Some(match kind {
        StatusKind::Open => "open",
        StatusKind::InProgress => "in_progress",
        StatusKind::Blocked => "blocked",
        StatusKind::Deferred => "deferred",
        StatusKind::Closed => "closed",
        StatusKind::Pinned => "pinned",
        StatusKind::Hooked => "hooked",
        StatusKind::Tombstone => "tombstone",
        StatusKind::Custom => return None,
    })
}

impl From<Issue> for Skimmed {
    /// Moves the strings it keeps: no copies.
    fn from(issue: Issue) -> Skimmed {
        let status = issue.status_kind();
        let created = Node::created_nanos(&issue);
        let defer_until = Node::defer_until_nanos(&issue);
        let lead_time_ms = issue.lead_time_ms();
        let status_raw =
            (plain_status(status) != Some(issue.status())).then(|| issue.status.into_boxed_str());
        let defer_until_raw = issue.defer_until.map(|t| t.raw.into_boxed_str());
        let rare = Rare {
            status_raw,
            title: issue.title.into_boxed_str(),
            defer_until_raw,
        };
        let rare = (rare != Rare::default()).then(|| Box::new(rare));
        Skimmed {
            id: issue.id.into_boxed_str(),
            rare,
            issue_type: issue.issue_type_raw.into_boxed_str(),
            assignee: issue.assignee.into_boxed_str(),
            labels: issue.labels,
            deps: issue
                .dependencies
                .into_iter()
                .map(|dep| {
                    let kind = dep.kind();
                    SkimDep {
                        any_children: kind == DepKind::WaitsFor && dep.waits_for_any(),
                        target: dep.depends_on_id.into_boxed_str(),
                        kind,
                    }
                })
                .collect(),
            priority: issue.priority,
            created,
            defer_until,
            lead_time_ms,
            max_int_comment_id: issue
                .comments
                .iter()
                .filter_map(|c| match c.id {
                    Some(CommentId::Int(n)) => Some(n),
                    _ => None,
                })
                .fold(0, i64::max),
            string_comment_id: issue
                .comments
                .iter()
                .any(|c| matches!(c.id, Some(CommentId::Str(_)))),
            comment_count: u32::try_from(issue.comments.len()).unwrap_or(u32::MAX),
            status,
            pinned: issue.pinned,
            ephemeral: issue.ephemeral,
            is_template: issue.is_template,
        }
    }
}

impl Skimmed {
    /// The largest integer comment id (0 when there is none).
    pub fn max_int_comment_id(&self) -> i64 {
        self.max_int_comment_id
    }

    /// Whether some comment has a string id (bd v1's UUIDs).
    pub fn has_string_comment_id(&self) -> bool {
        self.string_comment_id
    }
}

impl Node for Skimmed {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        self.rare.as_ref().map_or("", |r| &r.title)
    }
    fn defer_until_raw(&self) -> Option<&str> {
        self.rare
            .as_ref()
            .and_then(|r| r.defer_until_raw.as_deref())
    }
    fn status_kind(&self) -> StatusKind {
        self.status
    }
    fn status(&self) -> &str {
        match self.rare.as_ref().and_then(|r| r.status_raw.as_deref()) {
            Some(raw) => raw,
            None => plain_status(self.status).unwrap_or("open"),
        }
    }
    fn issue_type(&self) -> &str {
        if self.issue_type.is_empty() {
            "task"
        } else {
            &self.issue_type
        }
    }
    fn priority(&self) -> i64 {
        self.priority
    }
    fn assignee(&self) -> &str {
        &self.assignee
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn pinned(&self) -> bool {
        self.pinned
    }
    fn ephemeral(&self) -> bool {
        self.ephemeral
    }
    fn is_template(&self) -> bool {
        self.is_template
    }
    fn created_nanos(&self) -> Option<i64> {
        self.created
    }
    fn lead_time_ms(&self) -> Option<i64> {
        self.lead_time_ms
    }
    fn defer_until_nanos(&self) -> Option<i64> {
        self.defer_until
    }
    fn comment_count(&self) -> usize {
        self.comment_count as usize
    }
    fn dep_count(&self) -> usize {
        self.deps.len()
    }
    fn dep(&self, d: usize) -> NodeDep<'_> {
        let dep = &self.deps[d];
        NodeDep {
            target: &dep.target,
            kind: dep.kind,
            any_children: dep.any_children,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(v: serde_json::Value) -> Issue {
        serde_json::from_value(v).expect("valid issue")
    }

    /// Every fact a `Skimmed` answers equals the `Issue`'s answer.
    fn assert_same(i: &Issue) {
        let s = Skimmed::from(i.clone());
        assert_eq!(Node::id(&s), Node::id(i));
        assert_eq!(Node::status_kind(&s), Node::status_kind(i));
        assert_eq!(Node::status(&s), Node::status(i));
        assert_eq!(Node::issue_type(&s), Node::issue_type(i));
        assert_eq!(Node::priority(&s), Node::priority(i));
        assert_eq!(Node::assignee(&s), Node::assignee(i));
        assert_eq!(Node::labels(&s), Node::labels(i));
        assert_eq!(Node::pinned(&s), Node::pinned(i));
        assert_eq!(Node::ephemeral(&s), Node::ephemeral(i));
        assert_eq!(Node::is_template(&s), Node::is_template(i));
        assert_eq!(Node::lead_time_ms(&s), Node::lead_time_ms(i));
        assert_eq!(Node::created_nanos(&s), Node::created_nanos(i));
        assert_eq!(Node::defer_until_nanos(&s), Node::defer_until_nanos(i));
        assert_eq!(Node::comment_count(&s), Node::comment_count(i));
        assert_eq!(Node::parent_id(&s), Node::parent_id(i));
        assert_eq!(s.dep_count(), i.dep_count());
        for d in 0..i.dep_count() {
            assert_eq!(s.dep(d), i.dep(d));
        }
    }

    #[test]
    fn skimmed_answers_like_the_issue() {
        assert_same(&issue(serde_json::json!({"id": "a-1"})));
        assert_same(&issue(serde_json::json!({
            "id": "a-2", "status": "done", "issue_type": "epic", "priority": 0,
            "assignee": "ann", "labels": ["x", "needs:gpu"], "pinned": true, "wisp": true,
            "is_template": true, "closed_at": "2025-01-03T00:00:00Z",
            "created_at": "2025-01-02T03:04:05.5+02:00", "defer_until": "2030-01-01T00:00:00Z",
            "comments": [{"id": 1, "text": "c"}, {"id": "u", "text": "d"}],
            "dependencies": [
                {"depends_on_id": "a-1", "type": "parent_child"},
                {"depends_on_id": "a-3", "type": "waits-for", "metadata": "{\"gate\":\"any-children\"}"},
                {"depends_on_id": "a-4", "type": "waits-for"},
                {"depends_on_id": "a-5", "type": "related"},
                {"depends_on_id": "a-6"}
            ]
        })));
        for status in [
            "",
            "open",
            "in_progress",
            "closed",
            "review",
            "tombstone",
            "completed",
        ] {
            assert_same(&issue(serde_json::json!({"id": "a-3", "status": status})));
        }
    }
}
