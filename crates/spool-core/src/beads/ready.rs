//! `ready`, `blocked` and `ready --explain`: which issues can be worked on now, in what
//! order, and why the others cannot.
//!
//! An issue is ready (bd v1) when it is live, its status is `open`, it is not pinned and
//! not ephemeral, its type is not infrastructure ([`NON_WORK_TYPES`]; an explicit type
//! filter replaces that exclusion), `defer_until` is unset or not after `now`, no direct
//! parent is deferred past `now`, and it is not blocked (see [`super::graph`]).

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::graph::{instant_nanos, DirectBlock, Graph, IssueCounts, Ix};
use super::issue::{DepKind, StatusKind, NON_WORK_TYPES};
use super::node::Node;

/// bd's default `ready --limit` (v1.0.4+).
pub const DEFAULT_LIMIT: usize = 100;
/// How recent an issue must be for the hybrid sort to rank it by priority.
pub const HYBRID_RECENT_HOURS: i64 = 48;

/// Order of the ready list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortPolicy {
    /// Priority ascending, then newest first, then id.
    #[default]
    Priority,
    /// Issues created in the last 48 hours first, by priority (then oldest first);
    /// older issues after them, oldest first.
    Hybrid,
    /// Oldest first.
    Oldest,
}

impl std::str::FromStr for SortPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "priority" => Ok(SortPolicy::Priority),
            "hybrid" => Ok(SortPolicy::Hybrid),
            "oldest" => Ok(SortPolicy::Oldest),
            other => Err(format!(
                "unknown sort policy {other:?} (expected priority, hybrid or oldest)"
            )),
        }
    }
}

/// Filters, order and limit of a ready query. `Default` is bd's `ready` with no flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyQuery {
    pub sort: SortPolicy,
    /// At most this many issues; 0 means all.
    pub limit: usize,
    /// Only issues assigned to this actor.
    pub assignee: Option<String>,
    /// Only issues with no assignee (takes precedence over `assignee`).
    pub unassigned: bool,
    /// Only issues carrying all of these labels.
    pub labels: Vec<String>,
    /// Only issues carrying at least one of these labels (ignored when empty).
    pub labels_any: Vec<String>,
    /// Only issues of this type; replaces the exclusion of infrastructure types.
    pub issue_type: Option<String>,
    pub priority: Option<i64>,
    /// Only transitive descendants of this issue: by `parent-child` edges, or by an id
    /// starting with `<parent>.` when the issue has no `parent-child` edge at all.
    pub parent: Option<String>,
}

impl Default for ReadyQuery {
    fn default() -> Self {
        ReadyQuery {
            sort: SortPolicy::Priority,
            limit: DEFAULT_LIMIT,
            assignee: None,
            unassigned: false,
            labels: Vec::new(),
            labels_any: Vec::new(),
            issue_type: None,
            priority: None,
            parent: None,
        }
    }
}

/// The answer to a ready query: the issues to show and how many matched in all, for
/// "Showing N of M".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyList {
    pub issues: Vec<Ix>,
    pub total: usize,
}

impl ReadyList {
    pub fn truncated(&self) -> bool {
        self.issues.len() < self.total
    }
}

/// Which issues the query's filters let through (assignee, labels, type, priority,
/// parent), independent of readiness.
struct Filter<'q> {
    query: &'q ReadyQuery,
    /// Indexed like the issues: inside the `parent` scope.
    in_scope: Option<Vec<bool>>,
}

impl<'q> Filter<'q> {
    fn new<N: Node>(graph: &Graph<'_, N>, query: &'q ReadyQuery) -> Filter<'q> {
        let in_scope = query.parent.as_deref().map(|parent| {
            let mut scope = vec![false; graph.issues().len()];
            if let Some(p) = graph.lookup(parent) {
                for d in graph.descendants(p) {
                    scope[d] = true;
                }
            }
            // Ids under `<parent>.` count too, unless a parent-child edge puts them
            // somewhere else.
            let dotted = format!("{parent}.");
            for (i, issue) in graph.issues().iter().enumerate() {
                if issue.id().starts_with(&dotted) && issue.parent_id().is_none() {
                    scope[i] = true;
                }
            }
            scope
        });
        Filter { query, in_scope }
    }

    fn admits<N: Node>(&self, i: Ix, issue: &N) -> bool {
        self.admits_fields(
            i,
            issue.assignee(),
            issue.labels(),
            issue.issue_type(),
            issue.priority(),
        )
    }

    /// The filter over the fields it reads, so typed issues and [`ReadyRow`]s share it.
    fn admits_fields(
        &self,
        i: Ix,
        assignee: &str,
        labels: &[String],
        issue_type: &str,
        priority: i64,
    ) -> bool {
        let q = self.query;
        let has_label = |l: &String| labels.iter().any(|x| x == l);
        if q.unassigned {
            if !assignee.is_empty() {
                return false;
            }
        } else if q.assignee.as_ref().is_some_and(|a| assignee != a) {
            return false;
        }
        if !q.labels.iter().all(has_label) {
            return false;
        }
        if !q.labels_any.is_empty() && !q.labels_any.iter().any(has_label) {
            return false;
        }
        if q.issue_type.as_ref().is_some_and(|t| issue_type != t) {
            return false;
        }
        if q.priority.is_some_and(|p| p != priority) {
            return false;
        }
        self.in_scope.as_ref().is_none_or(|s| s[i])
    }
}

/// The clock- and query-dependent part of readiness for a workable issue: its type
/// (unless a type filter is explicit) and deferrals of itself or a direct parent.
fn ready_now(
    infra_type: bool,
    defer_until: Option<i64>,
    parent_defer_until: Option<i64>,
    now_nanos: i64,
    explicit_type: bool,
) -> bool {
    let deferred = |t: Option<i64>| t.is_some_and(|t| t > now_nanos);
    (explicit_type || !infra_type) && !deferred(defer_until) && !deferred(parent_defer_until)
}

/// The readiness rules, without filters. `explicit_type` turns off the exclusion of
/// infrastructure types. Reads only the graph's compact per-issue arrays.
fn is_ready<N: Node>(graph: &Graph<'_, N>, i: Ix, now_nanos: i64, explicit_type: bool) -> bool {
    graph.is_workable(i)
        && ready_now(
            graph.is_infra_type(i),
            graph.defer_until_nanos(i),
            latest_parent_defer(graph, i),
            now_nanos,
            explicit_type,
        )
}

/// The latest `defer_until` among the direct parents: a parent deferred past now holds
/// its children back, and the latest one decides.
fn latest_parent_defer<N: Node>(graph: &Graph<'_, N>, i: Ix) -> Option<i64> {
    graph
        .parents(i)
        .filter_map(|p| graph.defer_until_nanos(p))
        .max()
}

/// What the sort orders by: priority, creation time, id.
struct SortKey<'k> {
    priority: i64,
    created: Option<i64>,
    id: &'k str,
}

/// Sorts `items` by `policy`, fully or — when `limit` cuts the list — only the first
/// `limit` (selection first, so a large backlog with a small limit stays linear).
fn sort_by_policy<'k, T: Copy>(
    items: &mut Vec<T>,
    key: impl Fn(T) -> SortKey<'k>,
    policy: SortPolicy,
    now: DateTime<Utc>,
    limit: usize,
) {
    let recent_since = now
        .checked_sub_signed(Duration::hours(HYBRID_RECENT_HOURS))
        .map_or(i64::MIN, |t| instant_nanos(&t.fixed_offset()));
    let keys: Vec<(i64, Option<i64>, bool, &'k str)> = items
        .iter()
        .map(|&t| {
            let k = key(t);
            (
                k.priority,
                k.created,
                k.created.is_some_and(|c| c >= recent_since),
                k.id,
            )
        })
        .collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    let cmp = |&a: &usize, &b: &usize| -> Ordering {
        let (pa, ca, ra, ia) = keys[a];
        let (pb, cb, rb, ib) = keys[b];
        let primary = match policy {
            // Newest first; a missing creation time sorts last.
            SortPolicy::Priority => pa.cmp(&pb).then_with(|| match (ca, cb) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }),
            SortPolicy::Hybrid => rb.cmp(&ra).then_with(|| {
                if ra && rb {
                    pa.cmp(&pb).then_with(|| ca.cmp(&cb))
                } else {
                    ca.cmp(&cb)
                }
            }),
            // A missing creation time counts as oldest.
            SortPolicy::Oldest => ca.cmp(&cb),
        };
        primary.then_with(|| ia.cmp(ib))
    };
    if limit > 0 && limit < order.len() {
        order.select_nth_unstable_by(limit - 1, cmp);
        order.truncate(limit);
    }
    order.sort_unstable_by(cmp);
    *items = order.into_iter().map(|k| items[k]).collect();
}

/// [`sort_by_policy`] over graph indexes.
fn sort_issues<N: Node>(
    graph: &Graph<'_, N>,
    ix: &mut Vec<Ix>,
    policy: SortPolicy,
    now: DateTime<Utc>,
    limit: usize,
) {
    let key = |i: Ix| SortKey {
        priority: graph.issue(i).priority(),
        created: graph.created_nanos(i),
        id: graph.issue(i).id(),
    };
    sort_by_policy(ix, key, policy, now, limit);
}

/// Per-issue counts as owned data, for output rendered from a [`ReadyTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedCounts {
    pub dependency_count: usize,
    pub dependent_count: usize,
    pub comment_count: usize,
    pub parent: Option<String>,
}

impl OwnedCounts {
    pub fn as_counts(&self) -> IssueCounts<'_> {
        IssueCounts {
            dependency_count: self.dependency_count,
            dependent_count: self.dependent_count,
            comment_count: self.comment_count,
            parent: self.parent.as_deref(),
        }
    }
}

/// One workable issue (see [`Graph::is_workable`]) with everything the ready query reads
/// about it and the counts its output shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyRow {
    /// Index of the issue in the graph the table was built from.
    pub ix: u32,
    pub id: String,
    pub priority: i64,
    pub created: Option<i64>,
    pub defer_until: Option<i64>,
    /// The latest `defer_until` of a direct parent.
    pub parent_defer_until: Option<i64>,
    pub infra_type: bool,
    /// With bd's default applied.
    pub issue_type: String,
    pub assignee: String,
    pub labels: Vec<String>,
    pub counts: OwnedCounts,
}

/// The part of the ready answer that depends neither on the clock nor on the query:
/// the workable issues, in graph order. Built once from a [`Graph`]; owned and
/// serializable, so an application can keep it between runs while the backlog is
/// unchanged and answer `ready` without the graph.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadyTable {
    pub rows: Vec<ReadyRow>,
}

impl ReadyTable {
    pub fn new<N: Node>(graph: &Graph<'_, N>) -> ReadyTable {
        let rows = graph
            .workable_indexes()
            .map(|i| {
                let issue = graph.issue(i);
                let c = graph.counts_of(i);
                ReadyRow {
                    ix: i as u32,
                    id: issue.id().to_string(),
                    priority: issue.priority(),
                    created: graph.created_nanos(i),
                    defer_until: graph.defer_until_nanos(i),
                    parent_defer_until: latest_parent_defer(graph, i),
                    infra_type: graph.is_infra_type(i),
                    issue_type: issue.issue_type().to_string(),
                    assignee: issue.assignee().to_string(),
                    labels: issue.labels().to_vec(),
                    counts: OwnedCounts {
                        dependency_count: c.dependency_count,
                        dependent_count: c.dependent_count,
                        comment_count: c.comment_count,
                        parent: c.parent.map(str::to_string),
                    },
                }
            })
            .collect();
        ReadyTable { rows }
    }
}

/// Which graph indexes a `parent` query admits (`None` without `parent`): the parent's
/// transitive descendants by `parent-child` edges, and ids starting with `<parent>.`
/// that have no `parent-child` edge at all.
pub fn parent_scope<N: Node>(graph: &Graph<'_, N>, query: &ReadyQuery) -> Option<Vec<bool>> {
    Filter::new(graph, query).in_scope
}

/// `bd ready` over a [`ReadyTable`]: positions in `table.rows` of the ready issues that
/// pass the query's filters, sorted and limited, with the total before the limit.
/// `in_scope` is [`parent_scope`] of the table's graph; a query with `parent` and no
/// scope admits nothing, so a caller without the graph must not answer such a query.
pub fn ready_rows(
    table: &ReadyTable,
    query: &ReadyQuery,
    in_scope: Option<Vec<bool>>,
    now: DateTime<Utc>,
) -> ReadyList {
    let now_nanos = instant_nanos(&now.fixed_offset());
    let explicit_type = query.issue_type.is_some();
    if query.parent.is_some() && in_scope.is_none() {
        return ReadyList {
            issues: Vec::new(),
            total: 0,
        };
    }
    let filter = Filter {
        query,
        in_scope: in_scope.filter(|_| query.parent.is_some()),
    };
    let mut pos: Vec<usize> = table
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            ready_now(
                r.infra_type,
                r.defer_until,
                r.parent_defer_until,
                now_nanos,
                explicit_type,
            ) && filter.admits_fields(
                r.ix as usize,
                &r.assignee,
                &r.labels,
                &r.issue_type,
                r.priority,
            )
        })
        .map(|(k, _)| k)
        .collect();
    let total = pos.len();
    let key = |k: usize| {
        let r = &table.rows[k];
        SortKey {
            priority: r.priority,
            created: r.created,
            id: r.id.as_str(),
        }
    };
    sort_by_policy(&mut pos, key, query.sort, now, query.limit);
    ReadyList { issues: pos, total }
}

/// `bd ready`: the ready issues that pass the query's filters, sorted and limited, with
/// the total before the limit. `now` decides deferrals and the hybrid sort's window.
pub fn ready<N: Node>(graph: &Graph<'_, N>, query: &ReadyQuery, now: DateTime<Utc>) -> ReadyList {
    let table = ReadyTable::new(graph);
    let list = ready_rows(&table, query, parent_scope(graph, query), now);
    ReadyList {
        issues: list
            .issues
            .into_iter()
            .map(|k| table.rows[k].ix as usize)
            .collect(),
        total: list.total,
    }
}

/// An issue as explanations name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueRef<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub status: &'a str,
    pub priority: i64,
}

impl<'a> IssueRef<'a> {
    pub fn of<N: Node>(issue: &'a N) -> IssueRef<'a> {
        IssueRef {
            id: issue.id(),
            title: issue.title(),
            status: issue.status(),
            priority: issue.priority(),
        }
    }
}

/// One reason an issue is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason<'a> {
    /// The status is not `open`.
    Status {
        status: &'a str,
    },
    Pinned,
    Ephemeral,
    /// An infrastructure type, excluded unless asked for by an explicit type filter.
    TypeExcluded {
        issue_type: &'a str,
    },
    /// `defer_until` is after now.
    Deferred {
        until: &'a str,
    },
    /// A direct parent's `defer_until` is after now.
    ParentDeferred {
        parent: IssueRef<'a>,
        until: &'a str,
    },
    /// A `blocks`/`conditional-blocks` target that is still live.
    BlockedBy {
        blocker: IssueRef<'a>,
        dep_type: &'a str,
    },
    /// A `waits-for` gate over `gate`'s children that is not satisfied.
    WaitsFor {
        gate: IssueRef<'a>,
        any_children: bool,
        closed_children: usize,
        total_children: usize,
    },
    /// Blocked through the nearest blocked ancestor.
    AncestorBlocked {
        ancestor: IssueRef<'a>,
    },
}

impl Reason<'_> {
    /// A short stable code (`blocks:bd-1`, `deferred`, …) for tests and terse output.
    pub fn code(&self) -> String {
        match self {
            Reason::Status { status } => format!("status:{status}"),
            Reason::Pinned => "pinned".into(),
            Reason::Ephemeral => "ephemeral".into(),
            Reason::TypeExcluded { issue_type } => format!("type:{issue_type}"),
            Reason::Deferred { .. } => "deferred".into(),
            Reason::ParentDeferred { parent, .. } => format!("parent-deferred:{}", parent.id),
            Reason::BlockedBy { blocker, .. } => format!("blocks:{}", blocker.id),
            Reason::WaitsFor { gate, .. } => format!("waits-for:{}", gate.id),
            Reason::AncestorBlocked { ancestor } => format!("ancestor:{}", ancestor.id),
        }
    }
}

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r =
            |i: &IssueRef<'_>| format!("{} \"{}\" ({}, P{})", i.id, i.title, i.status, i.priority);
        match self {
            Reason::Status { status } => write!(f, "status is {status}, not open"),
            Reason::Pinned => f.write_str("pinned"),
            Reason::Ephemeral => f.write_str("ephemeral"),
            Reason::TypeExcluded { issue_type } => {
                write!(f, "type {issue_type} is not offered as work")
            }
            Reason::Deferred { until } => write!(f, "deferred until {until}"),
            Reason::ParentDeferred { parent, until } => {
                write!(f, "parent {} deferred until {until}", r(parent))
            }
            Reason::BlockedBy { blocker, dep_type } => {
                write!(f, "blocked by {} ({dep_type})", r(blocker))
            }
            Reason::WaitsFor {
                gate,
                any_children,
                closed_children,
                total_children,
            } => write!(
                f,
                "waits for {} of the children of {} ({closed_children} of {total_children} closed)",
                if *any_children { "any" } else { "all" },
                r(gate)
            ),
            Reason::AncestorBlocked { ancestor } => {
                write!(f, "ancestor {} is blocked", r(ancestor))
            }
        }
    }
}

/// Why the issue at `i` is or is not ready, ignoring filters other than the explicit
/// type (which lifts the type exclusion). Empty means ready. Reasons come in a fixed
/// order: status, pinned, ephemeral, type, deferrals, direct blockers, ancestor.
pub fn explain_issue<'a, N: Node>(
    graph: &Graph<'a, N>,
    i: Ix,
    explicit_type: bool,
    now: DateTime<Utc>,
) -> Vec<Reason<'a>> {
    let issue = graph.issue(i);
    let mut reasons = Vec::new();
    if issue.status_kind() != StatusKind::Open {
        reasons.push(Reason::Status {
            status: issue.status(),
        });
    }
    if issue.pinned() {
        reasons.push(Reason::Pinned);
    }
    if issue.ephemeral() {
        reasons.push(Reason::Ephemeral);
    }
    if !explicit_type && NON_WORK_TYPES.contains(&issue.issue_type()) {
        reasons.push(Reason::TypeExcluded {
            issue_type: issue.issue_type(),
        });
    }
    let now_nanos = instant_nanos(&now.fixed_offset());
    let deferred = |n: &'a N| {
        n.defer_until_nanos()
            .filter(|&t| t > now_nanos)
            .and(n.defer_until_raw())
    };
    if let Some(until) = deferred(issue) {
        reasons.push(Reason::Deferred { until });
    }
    for p in graph.parents(i) {
        let parent = graph.issue(p);
        if let Some(until) = deferred(parent) {
            reasons.push(Reason::ParentDeferred {
                parent: IssueRef::of(parent),
                until,
            });
        }
    }
    if !graph.is_blocked(i) {
        return reasons;
    }
    for (blocker, why, dep) in graph.direct_blocker_deps(i) {
        let target = graph.issue(blocker);
        reasons.push(match why {
            DirectBlock::Blocks => Reason::BlockedBy {
                blocker: IssueRef::of(target),
                dep_type: blocking_type(dep.kind),
            },
            DirectBlock::WaitsFor => {
                let progress = graph.progress(blocker);
                Reason::WaitsFor {
                    gate: IssueRef::of(target),
                    any_children: dep.any_children,
                    closed_children: progress.closed,
                    total_children: progress.total,
                }
            }
        });
    }
    if let Some(a) = graph.blocked_ancestor(i) {
        reasons.push(Reason::AncestorBlocked {
            ancestor: IssueRef::of(graph.issue(a)),
        });
    }
    reasons
}

/// How a blocking edge's type reads in an explanation (bd's canonical spelling).
fn blocking_type(kind: DepKind) -> &'static str {
    match kind {
        DepKind::ConditionalBlocks => "conditional-blocks",
        _ => "blocks",
    }
}

/// A ready issue in an explanation, with the blockers that no longer hold it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyEntry<'a> {
    pub issue: IssueRef<'a>,
    /// `blocks`-type targets that exist but are closed or pinned.
    pub resolved_blockers: Vec<IssueRef<'a>>,
}

/// A not-ready issue in an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReadyEntry<'a> {
    pub issue: IssueRef<'a>,
    pub reasons: Vec<Reason<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainSummary {
    pub ready: usize,
    pub not_ready: usize,
    pub cycles: usize,
}

/// `ready --explain`: every non-closed issue that passes the query's filters, split into
/// ready (in the query's order, no limit) and not ready (priority order) with reasons,
/// plus the blocking cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation<'a> {
    pub ready: Vec<ReadyEntry<'a>>,
    pub not_ready: Vec<NotReadyEntry<'a>>,
    pub cycles: Vec<Vec<&'a str>>,
    pub summary: ExplainSummary,
}

pub fn explain<'a, N: Node>(
    graph: &Graph<'a, N>,
    query: &ReadyQuery,
    now: DateTime<Utc>,
) -> Explanation<'a> {
    let now_nanos = instant_nanos(&now.fixed_offset());
    let filter = Filter::new(graph, query);
    let explicit_type = query.issue_type.is_some();
    let mut ready_ix = Vec::new();
    let mut not_ready_ix = Vec::new();
    for i in graph.live_indexes() {
        let issue = graph.issue(i);
        if graph.status_kind(i) == StatusKind::Closed || !filter.admits(i, issue) {
            continue;
        }
        if is_ready(graph, i, now_nanos, explicit_type) {
            ready_ix.push(i);
        } else {
            not_ready_ix.push(i);
        }
    }
    sort_issues(graph, &mut ready_ix, query.sort, now, 0);
    sort_issues(graph, &mut not_ready_ix, SortPolicy::Priority, now, 0);
    let ready: Vec<ReadyEntry<'a>> = ready_ix
        .into_iter()
        .map(|i| ReadyEntry {
            issue: IssueRef::of(graph.issue(i)),
            resolved_blockers: {
                let issue = graph.issue(i);
                (0..issue.dep_count())
                    .map(|d| issue.dep(d))
                    .filter(|d| matches!(d.kind, DepKind::Blocks | DepKind::ConditionalBlocks))
                    .filter_map(|d| graph.lookup(d.target))
                    .map(|t| IssueRef::of(graph.issue(t)))
                    .collect()
            },
        })
        .collect();
    let not_ready: Vec<NotReadyEntry<'a>> = not_ready_ix
        .into_iter()
        .map(|i| NotReadyEntry {
            issue: IssueRef::of(graph.issue(i)),
            reasons: explain_issue(graph, i, explicit_type, now),
        })
        .collect();
    let cycles = graph.cycles();
    let summary = ExplainSummary {
        ready: ready.len(),
        not_ready: not_ready.len(),
        cycles: cycles.len(),
    };
    Explanation {
        ready,
        not_ready,
        cycles,
        summary,
    }
}

/// One entry of `bd blocked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedEntry<'a> {
    pub issue: Ix,
    /// What bd lists as `blocked_by`: the direct blockers (live `blocks` targets,
    /// unsatisfied `waits-for` gates), each once in dependency order; for an issue blocked
    /// only through its parent chain, that blocked parent.
    pub blocked_by: Vec<&'a str>,
    /// The nearest directly blocked ancestor, when there is a blocked parent.
    pub blocked_ancestor: Option<&'a str>,
}

/// `bd blocked`: every blocked issue (only issues that are neither closed nor `pinned`
/// can be blocked), optionally only under `parent` (same scope rule as the ready filter).
/// Priority order, then newest first, then id — bd's order.
pub fn blocked<'a, N: Node>(graph: &Graph<'a, N>, parent: Option<&str>) -> Vec<BlockedEntry<'a>> {
    let query = ReadyQuery {
        parent: parent.map(str::to_string),
        ..ReadyQuery::default()
    };
    let filter = Filter::new(graph, &query);
    let mut ix: Vec<Ix> = graph
        .live_indexes()
        .filter(|&i| graph.is_blocked(i) && filter.admits(i, graph.issue(i)))
        .collect();
    // The priority order does not look at the clock.
    sort_issues(
        graph,
        &mut ix,
        SortPolicy::Priority,
        DateTime::<Utc>::UNIX_EPOCH,
        0,
    );
    ix.into_iter()
        .map(|i| {
            let mut blocked_by: Vec<&'a str> = Vec::new();
            for (b, _) in graph.direct_blocker_ixs(i) {
                let id = graph.issue(b).id();
                if !blocked_by.contains(&id) {
                    blocked_by.push(id);
                }
            }
            if blocked_by.is_empty() {
                blocked_by.extend(
                    graph
                        .parents(i)
                        .find(|&p| graph.is_blocked(p))
                        .map(|p| graph.issue(p).id()),
                );
            }
            BlockedEntry {
                issue: i,
                blocked_by,
                blocked_ancestor: graph.blocked_ancestor(i).map(|a| graph.issue(a).id()),
            }
        })
        .collect()
}
