//! The dependency graph of a backlog: indexes built once, blocked state, cycles, trees,
//! per-issue counts.
//!
//! Semantics are bd v1's (its `is_blocked` rules):
//! - Only issues that are not closed-category and not `pinned` (status) can be blocked.
//! - Such an issue is *directly blocked* by a `blocks`/`conditional-blocks` target that
//!   exists and whose status is not closed-category or `pinned`, or by a `waits-for`
//!   gate that is not yet satisfied: with `all-children` (the default) while a child of
//!   the target is pending (neither closed nor pinned); with `any-children` while a child
//!   is pending and none is closed yet. A target without pending children holds nothing.
//! - It is *blocked* when directly blocked or when a parent (via `parent-child`) is
//!   blocked — so blockage flows down through any depth, but not through closed or
//!   pinned issues.
//! - Tombstones are invisible: never shown, never blocking, their own edges ignored.
//!   Edges to ids that do not exist block nothing ([`Graph::dangling`] lists them).
//! - When an id occurs on several lines, the last line is the issue (later lines win, as
//!   in an append-only edit); earlier lines are ignored.
//!
//! Everything is computed in O(issues + edges) at construction, so every query afterwards
//! is a lookup or a linear scan.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use chrono::{DateTime, FixedOffset};

use super::issue::{canonical_dep_type, DepKind, Dependency, Issue, StatusKind, NON_WORK_TYPES};
use super::node::{Node, NodeDep};

/// Index of an issue in the slice the graph was built from.
pub type Ix = usize;

#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The issue carrying the dependency.
    from: u32,
    /// Index into `issues[from].dependencies`.
    dep: u32,
    /// The live target, if the target exists and is not a tombstone.
    to: Option<u32>,
    kind: DepKind,
    /// For `waits-for`: the `any-children` gate (else `all-children`).
    any_children: bool,
}

/// Outgoing/incoming edges in compressed form: `start[i]..start[i+1]` indexes `items`.
#[derive(Debug, Default)]
struct Adjacency {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Adjacency {
    fn of(&self, i: Ix) -> &[u32] {
        &self.items[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// A dependency whose target id is not in the backlog at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DanglingDep<'a> {
    pub issue_id: &'a str,
    pub depends_on_id: &'a str,
    pub dep_type: &'a str,
}

/// Why an issue is directly blocked by one of its own edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectBlock {
    /// A `blocks` or `conditional-blocks` target that is still live.
    Blocks,
    /// A `waits-for` gate over the target's children that is not satisfied yet.
    WaitsFor,
}

/// One direct blocker of an issue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blocker<'a> {
    pub blocker: Ix,
    pub dep: &'a Dependency,
    pub why: DirectBlock,
}

/// Direction of a dependency tree walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// What the issue depends on (its outgoing edges).
    Down,
    /// What depends on the issue (incoming edges).
    Up,
    /// Both trees, down first.
    Both,
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "down" => Ok(Direction::Down),
            "up" => Ok(Direction::Up),
            "both" => Ok(Direction::Both),
            other => Err(format!(
                "unknown direction {other:?} (expected down, up or both)"
            )),
        }
    }
}

/// bd's default `dep tree --max-depth`.
pub const DEFAULT_TREE_DEPTH: usize = 50;

/// One node of a dependency tree, in pre-order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode<'a> {
    pub id: &'a str,
    /// `None` when the id does not exist (a dangling dependency).
    pub title: Option<&'a str>,
    pub status: Option<&'a str>,
    pub priority: Option<i64>,
    /// 0 for the root.
    pub depth: usize,
    /// Which walk found the node (the root is reported as `Down` unless the walk is `Up`).
    pub direction: Direction,
    /// Type of the edge that led here; `None` for the root.
    pub dep_type: Option<&'a str>,
    /// The node this one hangs under; `None` for the root.
    pub parent: Option<&'a str>,
    pub blocked: bool,
    /// The node has further edges that were not followed: already shown elsewhere in
    /// this walk (a cycle or a shared prerequisite) or beyond the maximum depth.
    pub truncated: bool,
}

/// An edge as `dep list` shows it, seen from one end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeView<'a> {
    /// The issue at the other end; `None` when it does not exist.
    pub other: Option<Ix>,
    pub other_id: &'a str,
    pub dep: &'a Dependency,
}

/// Per-issue counts that bd v1 puts on every exported/listed issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IssueCounts<'a> {
    /// Outgoing `blocks` edges only (bd v1 counts no other type; real v1 exports agree).
    pub dependency_count: usize,
    /// Incoming `blocks` edges from live issues.
    pub dependent_count: usize,
    pub comment_count: usize,
    pub parent: Option<&'a str>,
}

/// Children of an epic (or any parent) and how many are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub total: usize,
    pub closed: usize,
}

/// Why `dep add` must refuse an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeRefusal {
    /// An issue cannot depend on itself.
    SelfEdge,
    /// The edge would close a cycle of `blocks`-type edges; the ids in order, each
    /// depending on the next, the last on the first (starts with `from`, then `to`).
    Cycle(Vec<String>),
    /// `from` is already a child of `to`; a child blocked by its own parent can never
    /// become ready (bd refuses this too).
    ChildOfParent,
}

impl std::fmt::Display for EdgeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeRefusal::SelfEdge => f.write_str("an issue cannot depend on itself"),
            EdgeRefusal::Cycle(path) => {
                write!(f, "adding this dependency would create a cycle: ")?;
                for id in path {
                    write!(f, "{id} → ")?;
                }
                f.write_str(path.first().map(String::as_str).unwrap_or(""))
            }
            EdgeRefusal::ChildOfParent => {
                f.write_str("an issue cannot be blocked by its own parent")
            }
        }
    }
}

impl std::error::Error for EdgeRefusal {}

/// Whether an issue can block others or be blocked itself: bd compares the status only
/// (closed-category and `pinned` are out; the `pinned` flag does not count here).
fn is_active(kind: StatusKind) -> bool {
    !matches!(
        kind,
        StatusKind::Closed | StatusKind::Pinned | StatusKind::Tombstone
    )
}

/// The dependency graph over one backlog snapshot: over typed [`Issue`]s, or over any
/// other [`Node`]s (see [`super::node`]).
#[derive(Debug)]
pub struct Graph<'a, N = Issue> {
    issues: Vec<&'a N>,
    /// Status categories, classified once (string matching is the hot spot otherwise).
    kinds: Vec<StatusKind>,
    index: HashMap<&'a str, u32>,
    /// In the graph: the last line of its id and not a tombstone.
    live: Vec<bool>,
    edges: Vec<Edge>,
    /// Edge indexes by source.
    out: Adjacency,
    /// Edge indexes by live target.
    inc: Adjacency,
    children_total: Vec<u32>,
    children_closed: Vec<u32>,
    /// Children neither closed nor pinned: what a `waits-for` gate waits on.
    children_pending: Vec<u32>,
    direct_blocked: Vec<bool>,
    blocked: Vec<bool>,
    /// Live, status open, not pinned, not ephemeral, not blocked: the part of readiness
    /// that depends neither on the clock nor on the query, so `ready` scans a bitmap.
    workable: Vec<bool>,
    /// Compact copies of what `ready` reads for every candidate, so a scan over 100k
    /// issues stays in cache instead of visiting each large `Issue`.
    infra_type: Vec<bool>,
    created: Vec<Option<i64>>,
    defer_until: Vec<Option<i64>>,
}

/// Unix nanoseconds, saturating outside i64's range (years before 1677 or after 2262).
pub fn instant_nanos(at: &DateTime<FixedOffset>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl<'a, N: Node> Graph<'a, N> {
    /// Builds all indexes and the blocked state in O(issues + edges).
    pub fn new(issues: impl IntoIterator<Item = &'a N>) -> Graph<'a, N> {
        let issues: Vec<&'a N> = issues.into_iter().collect();
        let n = issues.len();
        assert!(n < u32::MAX as usize, "backlog larger than u32 indexes");
        let kinds: Vec<StatusKind> = issues.iter().map(|i| i.status_kind()).collect();
        let mut index: HashMap<&'a str, u32> = HashMap::with_capacity(n);
        let mut live: Vec<bool> = kinds.iter().map(|&k| k != StatusKind::Tombstone).collect();
        for (i, issue) in issues.iter().enumerate() {
            if issue.id().is_empty() {
                live[i] = false;
            } else if let Some(earlier) = index.insert(issue.id(), i as u32) {
                // A later line of the same id replaces the earlier one.
                live[earlier as usize] = false;
            }
        }

        // Outgoing edges, in file order per issue.
        let mut edges = Vec::new();
        let mut out_start = Vec::with_capacity(n + 1);
        for (i, issue) in issues.iter().enumerate() {
            out_start.push(edges.len() as u32);
            if !live[i] {
                continue;
            }
            for d in 0..issue.dep_count() {
                let dep = issue.dep(d);
                let to = index.get(dep.target).copied().filter(|&t| live[t as usize]);
                edges.push(Edge {
                    from: i as u32,
                    dep: d as u32,
                    to,
                    kind: dep.kind,
                    any_children: dep.any_children,
                });
            }
        }
        out_start.push(edges.len() as u32);
        let out = Adjacency {
            start: out_start,
            items: (0..edges.len() as u32).collect(),
        };

        // Incoming edges by counting sort on the target.
        let mut inc_start = vec![0u32; n + 1];
        for e in &edges {
            if let Some(t) = e.to {
                inc_start[t as usize + 1] += 1;
            }
        }
        for i in 0..n {
            inc_start[i + 1] += inc_start[i];
        }
        let mut fill = inc_start.clone();
        let mut inc_items = vec![0u32; inc_start[n] as usize];
        for (k, e) in edges.iter().enumerate() {
            if let Some(t) = e.to {
                inc_items[fill[t as usize] as usize] = k as u32;
                fill[t as usize] += 1;
            }
        }
        let inc = Adjacency {
            start: inc_start,
            items: inc_items,
        };

        let mut children_total = vec![0u32; n];
        let mut children_closed = vec![0u32; n];
        let mut children_pending = vec![0u32; n];
        for e in &edges {
            if let (DepKind::ParentChild, Some(t)) = (e.kind, e.to) {
                children_total[t as usize] += 1;
                match kinds[e.from as usize] {
                    StatusKind::Closed => children_closed[t as usize] += 1,
                    StatusKind::Pinned => {}
                    _ => children_pending[t as usize] += 1,
                }
            }
        }

        let infra_type = issues
            .iter()
            .map(|i| NON_WORK_TYPES.contains(&i.issue_type()))
            .collect();
        let created = issues.iter().map(|i| i.created_nanos()).collect();
        let defer_until = issues.iter().map(|i| i.defer_until_nanos()).collect();
        let mut g = Graph {
            issues,
            kinds,
            index,
            live,
            edges,
            out,
            inc,
            children_total,
            children_closed,
            children_pending,
            direct_blocked: vec![false; n],
            blocked: vec![false; n],
            workable: Vec::new(),
            infra_type,
            created,
            defer_until,
        };
        g.compute_blocked();
        g.workable = (0..n)
            .map(|i| {
                g.live[i]
                    && g.kinds[i] == StatusKind::Open
                    && !g.blocked[i]
                    && !g.issues[i].pinned()
                    && !g.issues[i].ephemeral()
            })
            .collect();
        g
    }

    fn compute_blocked(&mut self) {
        let n = self.issues.len();
        let mut queue = VecDeque::new();
        for i in 0..n {
            if self.live[i]
                && is_active(self.kinds[i])
                && self.direct_blocking_edges(i).next().is_some()
            {
                self.direct_blocked[i] = true;
                self.blocked[i] = true;
                queue.push_back(i);
            }
        }
        // Blockage flows from a parent to its active children, to any depth; each issue
        // is enqueued at most once, so parent-child cycles terminate.
        while let Some(p) = queue.pop_front() {
            for &k in self.inc.of(p) {
                let e = self.edges[k as usize];
                let c = e.from as usize;
                if e.kind == DepKind::ParentChild && !self.blocked[c] && is_active(self.kinds[c]) {
                    self.blocked[c] = true;
                    queue.push_back(c);
                }
            }
        }
    }

    /// Whether the gate of a `waits-for` edge still holds its issue back.
    fn waits_for_pending(&self, e: &Edge) -> bool {
        let Some(t) = e.to else {
            return false;
        };
        let t = t as usize;
        self.children_pending[t] > 0 && !(e.any_children && self.children_closed[t] > 0)
    }

    /// The edges by which issue `i` is directly blocked: (edge, blocker, why).
    fn direct_blocking_edges(&self, i: Ix) -> impl Iterator<Item = (Edge, Ix, DirectBlock)> + '_ {
        self.out.of(i).iter().filter_map(move |&k| {
            let e = self.edges[k as usize];
            match e.kind {
                DepKind::Blocks | DepKind::ConditionalBlocks => {
                    let t = e.to? as usize;
                    is_active(self.kinds[t]).then_some((e, t, DirectBlock::Blocks))
                }
                DepKind::WaitsFor => {
                    let t = e.to? as usize;
                    self.waits_for_pending(&e)
                        .then_some((e, t, DirectBlock::WaitsFor))
                }
                DepKind::ParentChild | DepKind::Soft => None,
            }
        })
    }

    /// The direct blockers of an issue and why, in the order of its dependencies.
    pub fn direct_blocker_ixs(&self, i: Ix) -> Vec<(Ix, DirectBlock)> {
        if !self.live[i] {
            return Vec::new();
        }
        self.direct_blocking_edges(i)
            .map(|(_, t, why)| (t, why))
            .collect()
    }

    /// The edges whose target id is not in the backlog at all (a tombstoned target is not
    /// dangling: the id exists), as (issue, index of the dependency), in file order.
    pub fn dangling_edges(&self) -> Vec<(Ix, usize)> {
        self.edges
            .iter()
            .filter(|e| e.to.is_none())
            .filter(|e| {
                let target = self.issues[e.from as usize].dep(e.dep as usize).target;
                !self.index.contains_key(target)
            })
            .map(|e| (e.from as usize, e.dep as usize))
            .collect()
    }

    /// [`Graph::direct_blocker_ixs`] with the edge of each, in the order of the issue's
    /// dependencies.
    pub fn direct_blocker_deps(&self, i: Ix) -> Vec<(Ix, DirectBlock, NodeDep<'a>)> {
        if !self.live[i] {
            return Vec::new();
        }
        let issue = self.issues[i];
        self.direct_blocking_edges(i)
            .map(|(e, t, why)| (t, why, issue.dep(e.dep as usize)))
            .collect()
    }

    /// The slice the graph was built from.
    pub fn issues(&self) -> &[&'a N] {
        &self.issues
    }

    pub fn issue(&self, i: Ix) -> &'a N {
        self.issues[i]
    }

    /// The index of a live (non-tombstone) issue by exact id.
    pub fn lookup(&self, id: &str) -> Option<Ix> {
        self.index
            .get(id)
            .map(|&i| i as usize)
            .filter(|&i| self.live[i])
    }

    pub fn get(&self, id: &str) -> Option<&'a N> {
        self.lookup(id).map(|i| self.issues[i])
    }

    /// Whether the issue at `i` takes part in the graph (last line of its id, not a
    /// tombstone). Everything else is invisible to queries.
    pub fn is_live(&self, i: Ix) -> bool {
        self.live[i]
    }

    /// Indexes of all live issues, in file order.
    pub fn live_indexes(&self) -> impl Iterator<Item = Ix> + '_ {
        (0..self.issues.len()).filter(|&i| self.live[i])
    }

    /// The status category of the issue at `i`, classified once at construction.
    pub fn status_kind(&self, i: Ix) -> StatusKind {
        self.kinds[i]
    }

    /// Live, open, not pinned, not ephemeral and not blocked: ready unless its type,
    /// a deferral or a query filter says otherwise.
    pub fn is_workable(&self, i: Ix) -> bool {
        self.workable[i]
    }

    /// The type is infrastructure ([`NON_WORK_TYPES`]), never offered as ready work
    /// unless asked for by type.
    pub fn is_infra_type(&self, i: Ix) -> bool {
        self.infra_type[i]
    }

    /// `created_at` in unix nanoseconds.
    pub fn created_nanos(&self, i: Ix) -> Option<i64> {
        self.created[i]
    }

    /// `defer_until` in unix nanoseconds.
    pub fn defer_until_nanos(&self, i: Ix) -> Option<i64> {
        self.defer_until[i]
    }

    /// Indexes of the workable issues, in file order.
    pub fn workable_indexes(&self) -> impl Iterator<Item = Ix> + '_ {
        (0..self.issues.len()).filter(|&i| self.workable[i])
    }

    /// Blocked by its own edges or through any ancestor.
    pub fn is_blocked(&self, i: Ix) -> bool {
        self.blocked[i]
    }

    /// Blocked by its own edges.
    pub fn is_directly_blocked(&self, i: Ix) -> bool {
        self.direct_blocked[i]
    }

    /// The live parents of an issue (targets of its `parent-child` edges).
    pub fn parents(&self, i: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.out.of(i).iter().filter_map(move |&k| {
            let e = self.edges[k as usize];
            (e.kind == DepKind::ParentChild)
                .then_some(e.to)
                .flatten()
                .map(|t| t as usize)
        })
    }

    /// The live issues an issue depends on, by any edge type, in edge order.
    pub fn successors(&self, i: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.out
            .of(i)
            .iter()
            .filter_map(move |&k| self.edges[k as usize].to.map(|t| t as usize))
    }

    /// The live issues that depend on an issue, by any edge type, in file order.
    pub fn predecessors(&self, i: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.inc
            .of(i)
            .iter()
            .map(move |&k| self.edges[k as usize].from as usize)
    }

    /// `roots` and every live issue up to `hops` edges away from one of them in `dir`
    /// (following [`Graph::successors`] down, [`Graph::predecessors`] up), each once,
    /// roots first, then by distance.
    pub fn within(&self, roots: &[Ix], dir: Direction, hops: usize) -> Vec<Ix> {
        let n = self.issues.len();
        let mut included = vec![false; n];
        let mut out = Vec::new();
        for &r in roots {
            if !std::mem::replace(&mut included[r], true) {
                out.push(r);
            }
        }
        for walk in [Direction::Down, Direction::Up] {
            if dir != Direction::Both && dir != walk {
                continue;
            }
            let mut visited = vec![false; n];
            let mut frontier: Vec<Ix> = roots.to_vec();
            for &r in roots {
                visited[r] = true;
            }
            for _ in 0..hops {
                let mut next = Vec::new();
                for v in frontier {
                    let step: Vec<Ix> = match walk {
                        Direction::Up => self.predecessors(v).collect(),
                        _ => self.successors(v).collect(),
                    };
                    for w in step {
                        if !std::mem::replace(&mut visited[w], true) {
                            next.push(w);
                            if !std::mem::replace(&mut included[w], true) {
                                out.push(w);
                            }
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
        }
        out
    }

    /// The live children of an issue (sources of `parent-child` edges to it), file order.
    pub fn children(&self, i: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.inc.of(i).iter().filter_map(move |&k| {
            let e = self.edges[k as usize];
            (e.kind == DepKind::ParentChild).then_some(e.from as usize)
        })
    }

    /// The nearest directly blocked proper ancestor, breadth-first over parents (ties by
    /// edge order); `None` when no ancestor is blocked.
    pub fn blocked_ancestor(&self, i: Ix) -> Option<Ix> {
        // Only blocked parents can lead to a directly blocked ancestor, so the walk stays
        // inside the blocked region and stops at the first directly blocked issue.
        let mut seen = std::collections::HashSet::from([i]);
        let mut queue: VecDeque<Ix> = self.parents(i).filter(|&p| self.blocked[p]).collect();
        while let Some(p) = queue.pop_front() {
            if !seen.insert(p) {
                continue;
            }
            if self.direct_blocked[p] {
                return Some(p);
            }
            queue.extend(self.parents(p).filter(|&q| self.blocked[q]));
        }
        None
    }

    /// All live descendants (children, their children, …), each once, breadth-first.
    pub fn descendants(&self, i: Ix) -> Vec<Ix> {
        let mut seen = vec![false; self.issues.len()];
        seen[i] = true;
        let mut order = Vec::new();
        let mut queue = VecDeque::from([i]);
        while let Some(p) = queue.pop_front() {
            for c in self.children(p) {
                if !seen[c] {
                    seen[c] = true;
                    order.push(c);
                    queue.push_back(c);
                }
            }
        }
        order
    }

    /// Children and how many of them are closed.
    pub fn progress(&self, i: Ix) -> Progress {
        Progress {
            total: self.children_total[i] as usize,
            closed: self.children_closed[i] as usize,
        }
    }

    /// Every epic that is not closed and has children, with its progress, in file order
    /// — `bd epic status`. An epic is eligible for closure when all children are closed.
    pub fn epic_statuses(&self) -> Vec<(Ix, Progress)> {
        self.live_indexes()
            .filter(|&i| {
                self.issues[i].issue_type() == "epic"
                    && self.kinds[i] != StatusKind::Closed
                    && self.children_total[i] > 0
            })
            .map(|i| (i, self.progress(i)))
            .collect()
    }

    /// Epics not closed whose children (at least one) are all closed — `bd epic
    /// close-eligible`.
    pub fn epics_eligible_for_closure(&self) -> Vec<Ix> {
        self.epic_statuses()
            .into_iter()
            .filter(|(_, p)| p.closed == p.total)
            .map(|(i, _)| i)
            .collect()
    }

    /// Counts for every issue at once (indexed like the input slice; zeros for issues
    /// that are not live). O(issues + edges).
    pub fn counts(&self) -> Vec<IssueCounts<'a>> {
        (0..self.issues.len()).map(|i| self.counts_of(i)).collect()
    }

    /// [`Graph::counts`] of one issue.
    pub fn counts_of(&self, i: Ix) -> IssueCounts<'a> {
        let issue = self.issues[i];
        if !self.live[i] {
            return IssueCounts {
                dependency_count: 0,
                dependent_count: 0,
                comment_count: 0,
                parent: None,
            };
        }
        let blocks = |k: &&u32| self.edges[**k as usize].kind == DepKind::Blocks;
        IssueCounts {
            dependency_count: self.out.of(i).iter().filter(blocks).count(),
            dependent_count: self.inc.of(i).iter().filter(blocks).count(),
            comment_count: issue.comment_count(),
            parent: issue.parent_id(),
        }
    }

    /// The live target of edge `k` when it is a blocks-type edge.
    fn blocks_target(&self, k: u32) -> Option<Ix> {
        let e = self.edges[k as usize];
        matches!(e.kind, DepKind::Blocks | DepKind::ConditionalBlocks)
            .then_some(e.to)
            .flatten()
            .map(|t| t as usize)
    }

    fn blocks_successors(&self, i: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.out
            .of(i)
            .iter()
            .filter_map(move |&k| self.blocks_target(k))
    }

    /// Every cycle among `blocks`/`conditional-blocks` edges, one per strongly connected
    /// component that has one: the ids in order, each depending on the next and the last
    /// on the first. A self-edge is a cycle of one. Each cycle starts at the smallest id
    /// of its component and is a shortest cycle through it; cycles are sorted.
    pub fn cycles(&self) -> Vec<Vec<&'a str>> {
        let comps = self.strongly_connected();
        let mut out = Vec::new();
        let n = self.issues.len();
        let mut comp_of = vec![u32::MAX; n];
        for (c, members) in comps.iter().enumerate() {
            for &m in members {
                comp_of[m] = c as u32;
            }
        }
        for (c, members) in comps.iter().enumerate() {
            let cyclic =
                members.len() > 1 || self.blocks_successors(members[0]).any(|s| s == members[0]);
            if !cyclic {
                continue;
            }
            let start = *members
                .iter()
                .min_by_key(|&&m| self.issues[m].id())
                .expect("components are non-empty");
            let path = self
                .shortest_blocks_path(start, start, |v| comp_of[v] == c as u32)
                .expect("a cyclic component has a cycle through each member");
            out.push(path.into_iter().map(|i| self.issues[i].id()).collect());
        }
        out.sort();
        out
    }

    /// The ids of every issue that lies on some blocking cycle, grouped by strongly
    /// connected component (members sorted, groups sorted) — for reports that need every
    /// id involved rather than one cycle per group.
    pub fn cyclic_components(&self) -> Vec<Vec<&'a str>> {
        let mut out: Vec<Vec<&'a str>> = self
            .strongly_connected()
            .into_iter()
            .filter(|c| c.len() > 1 || self.blocks_successors(c[0]).any(|s| s == c[0]))
            .map(|c| {
                let mut ids: Vec<&'a str> = c.iter().map(|&i| self.issues[i].id()).collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        out.sort();
        out
    }

    /// Shortest path `from → … → to` along blocks edges whose every node satisfies
    /// `allowed`; `from == to` finds a shortest cycle. The returned path starts with `from`
    /// and leaves out the final `to` when it closes a cycle.
    fn shortest_blocks_path(
        &self,
        from: Ix,
        to: Ix,
        allowed: impl Fn(Ix) -> bool,
    ) -> Option<Vec<Ix>> {
        let mut prev: HashMap<Ix, Ix> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            for s in self.blocks_successors(v) {
                if !allowed(s) {
                    continue;
                }
                if s == to {
                    let mut path = vec![v];
                    let mut cur = v;
                    while cur != from {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    if from != to {
                        path.push(to);
                    }
                    return Some(path);
                }
                if s != from && !prev.contains_key(&s) {
                    prev.insert(s, v);
                    queue.push_back(s);
                }
            }
        }
        None
    }

    /// Tarjan's algorithm, iterative (deep chains must not overflow the stack), over the
    /// blocks-type edges of live issues.
    fn strongly_connected(&self) -> Vec<Vec<Ix>> {
        let n = self.issues.len();
        const UNSEEN: u32 = u32::MAX;
        let mut idx = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut comps = Vec::new();
        let mut next = 0u32;
        // (node, successors consumed so far)
        let mut call: Vec<(Ix, usize)> = Vec::new();
        for root in 0..n {
            if !self.live[root] || idx[root] != UNSEEN {
                continue;
            }
            call.push((root, 0));
            idx[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                let adj = self.out.of(v);
                let mut succ = None;
                while *pos < adj.len() && succ.is_none() {
                    succ = self.blocks_target(adj[*pos]);
                    *pos += 1;
                }
                match succ {
                    Some(w) if idx[w] == UNSEEN => {
                        idx[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        call.push((w, 0));
                    }
                    Some(w) => {
                        if on_stack[w] {
                            low[v] = low[v].min(idx[w]);
                        }
                    }
                    None => {
                        call.pop();
                        if let Some(&(u, _)) = call.last() {
                            low[u] = low[u].min(low[v]);
                        }
                        if low[v] == idx[v] {
                            let mut comp = Vec::new();
                            while let Some(w) = stack.pop() {
                                on_stack[w] = false;
                                comp.push(w);
                                if w == v {
                                    break;
                                }
                            }
                            comps.push(comp);
                        }
                    }
                }
            }
        }
        comps
    }

    /// Checks an edge `from` depends on `to` of type `dep_type` before `dep add` writes
    /// it. Self-edges are always refused; for `blocks`/`conditional-blocks` edges a cycle
    /// the edge would close is refused with its path, and so is blocking a child on its
    /// own parent. Other types never form blocking cycles and are accepted.
    pub fn would_create_cycle(
        &self,
        from: &str,
        to: &str,
        dep_type: &str,
    ) -> Result<(), EdgeRefusal> {
        if from == to {
            return Err(EdgeRefusal::SelfEdge);
        }
        if !matches!(
            DepKind::of(dep_type),
            DepKind::Blocks | DepKind::ConditionalBlocks
        ) {
            return Ok(());
        }
        let (Some(f), Some(t)) = (self.lookup(from), self.lookup(to)) else {
            // An edge touching an unknown id cannot close a cycle of existing edges.
            return Ok(());
        };
        if self.parents(f).any(|p| p == t) {
            return Err(EdgeRefusal::ChildOfParent);
        }
        match self.shortest_blocks_path(t, f, |_| true) {
            Some(path) => {
                let mut cycle = vec![from.to_string()];
                // path = to … from; the cycle is from → to → … (→ from).
                cycle.extend(
                    path[..path.len() - 1]
                        .iter()
                        .map(|&i| self.issues[i].id().to_string()),
                );
                Err(EdgeRefusal::Cycle(cycle))
            }
            None => Ok(()),
        }
    }
}

/// What only typed issues can answer: the [`Dependency`] records behind the edges, and
/// titles for trees.
impl<'a> Graph<'a, Issue> {
    /// The direct blockers of an issue, in the order of its dependencies.
    pub fn direct_blockers(&self, i: Ix) -> Vec<Blocker<'a>> {
        if !self.live[i] {
            return Vec::new();
        }
        let issue = self.issues[i];
        self.direct_blocking_edges(i)
            .map(|(e, blocker, why)| Blocker {
                blocker,
                dep: &issue.dependencies[e.dep as usize],
                why,
            })
            .collect()
    }

    /// What an issue depends on (`dep list`, down): all its edges, any type.
    pub fn dependencies(&self, i: Ix) -> Vec<EdgeView<'a>> {
        self.out
            .of(i)
            .iter()
            .map(|&k| {
                let e = self.edges[k as usize];
                let dep = &self.issues[i].dependencies[e.dep as usize];
                EdgeView {
                    other: e.to.map(|t| t as usize),
                    other_id: dep.depends_on_id.as_str(),
                    dep,
                }
            })
            .collect()
    }

    /// What depends on an issue (`dep list --direction up`): incoming edges from live
    /// issues, with their type, in file order.
    pub fn dependents(&self, i: Ix) -> Vec<EdgeView<'a>> {
        self.inc
            .of(i)
            .iter()
            .map(|&k| {
                let e = self.edges[k as usize];
                let from = self.issues[e.from as usize];
                EdgeView {
                    other: Some(e.from as usize),
                    other_id: from.id.as_str(),
                    dep: &from.dependencies[e.dep as usize],
                }
            })
            .collect()
    }

    /// The edge from `from` to `to` of any type, if there is one. bd keeps one edge per
    /// ordered pair, so `dep add` must check this first.
    pub fn edge_between(&self, from: &str, to: &str) -> Option<&'a Dependency> {
        let i = self.lookup(from)?;
        self.issues[i]
            .dependencies
            .iter()
            .find(|d| d.depends_on_id == to)
    }

    /// Dependencies whose target id is not in the backlog at all (tombstoned targets
    /// are not dangling: the id exists). For `doctor`.
    pub fn dangling(&self) -> Vec<DanglingDep<'a>> {
        self.dangling_edges()
            .into_iter()
            .map(|(i, d)| {
                let issue = self.issues[i];
                let dep = &issue.dependencies[d];
                DanglingDep {
                    issue_id: issue.id.as_str(),
                    depends_on_id: dep.depends_on_id.as_str(),
                    dep_type: dep.dep_type.as_str(),
                }
            })
            .collect()
    }

    /// `dep tree`: a pre-order walk from `root` following outgoing edges (down), incoming
    /// edges (up), or both (down, then up without repeating the root), every edge type,
    /// up to `max_depth` levels. Each issue appears at most once per direction, so cycles
    /// and diamonds terminate; a node whose further edges were not followed is marked
    /// `truncated`.
    pub fn tree(&self, root: Ix, direction: Direction, max_depth: usize) -> Vec<TreeNode<'a>> {
        let mut out = Vec::new();
        match direction {
            Direction::Down | Direction::Up => {
                self.walk(root, direction, max_depth, true, &mut out);
            }
            Direction::Both => {
                self.walk(root, Direction::Down, max_depth, true, &mut out);
                self.walk(root, Direction::Up, max_depth, false, &mut out);
            }
        }
        out
    }

    fn walk(
        &self,
        root: Ix,
        dir: Direction,
        max_depth: usize,
        emit_root: bool,
        out: &mut Vec<TreeNode<'a>>,
    ) {
        let mut seen = vec![false; self.issues.len()];
        seen[root] = true;
        let root_issue = &self.issues[root];
        let root_pos = out.len();
        if emit_root {
            out.push(TreeNode {
                id: root_issue.id.as_str(),
                title: Some(root_issue.title.as_str()),
                status: Some(root_issue.status()),
                priority: Some(root_issue.priority),
                depth: 0,
                direction: dir,
                dep_type: None,
                parent: None,
                blocked: self.blocked[root],
                truncated: false,
            });
        }
        // Explicit stack of (node, depth, parent id, edge); children pushed in reverse so
        // the walk emits them in edge order.
        let mut stack: Vec<(Option<Ix>, &'a str, usize, &'a str, &'a str)> = Vec::new();
        let push_edges = |v: Ix, depth: usize, stack: &mut Vec<_>| {
            let parent_id = self.issues[v].id.as_str();
            let views = match dir {
                Direction::Up => self.dependents(v),
                _ => self.dependencies(v),
            };
            for view in views.into_iter().rev() {
                stack.push((
                    view.other,
                    view.other_id,
                    depth + 1,
                    parent_id,
                    view.dep.dep_type.as_str(),
                ));
            }
        };
        let has_edges = |v: Ix| match dir {
            Direction::Up => !self.inc.of(v).is_empty(),
            _ => !self.out.of(v).is_empty(),
        };
        if max_depth == 0 {
            if emit_root && has_edges(root) {
                out[root_pos].truncated = true;
            }
            return;
        }
        push_edges(root, 0, &mut stack);
        while let Some((node, id, depth, parent, dep_type)) = stack.pop() {
            let mut node_out = TreeNode {
                id,
                title: None,
                status: None,
                priority: None,
                depth,
                direction: dir,
                dep_type: Some(canonical_dep_type(dep_type)),
                parent: Some(parent),
                blocked: false,
                truncated: false,
            };
            if let Some(v) = node {
                let issue = &self.issues[v];
                node_out.title = Some(issue.title.as_str());
                node_out.status = Some(issue.status());
                node_out.priority = Some(issue.priority);
                node_out.blocked = self.blocked[v];
                if seen[v] || depth >= max_depth {
                    node_out.truncated = has_edges(v);
                    out.push(node_out);
                    continue;
                }
                seen[v] = true;
                out.push(node_out);
                push_edges(v, depth, &mut stack);
            } else {
                out.push(node_out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issues from compact `id status deps` specs; deps are `target:type` (type defaults
    /// to blocks).
    fn backlog(specs: &[&str]) -> Vec<Issue> {
        specs
            .iter()
            .map(|spec| {
                let mut words = spec.split_whitespace();
                let id = words.next().expect("id");
                let status = words.next().expect("status");
                let deps: Vec<serde_json::Value> = words
                    .map(|w| {
                        let (to, ty) = w.split_once(':').unwrap_or((w, "blocks"));
                        serde_json::json!({"issue_id": id, "depends_on_id": to, "type": ty})
                    })
                    .collect();
                serde_json::from_value(serde_json::json!({
                    "id": id, "title": format!("T {id}"), "status": status,
                    "issue_type": if id.starts_with('E') { "epic" } else { "task" },
                    "dependencies": deps,
                    "comments": [{"id": 1, "text": "c"}],
                }))
                .expect("valid issue")
            })
            .collect()
    }

    fn tree_lines(g: &Graph<'_>, root: &str, dir: Direction, depth: usize) -> Vec<String> {
        let root = g.lookup(root).expect("root exists");
        g.tree(root, dir, depth)
            .iter()
            .map(|n| {
                format!(
                    "{}{}{}{}{}",
                    "  ".repeat(n.depth),
                    n.id,
                    n.dep_type.map(|t| format!(" ({t})")).unwrap_or_default(),
                    if n.blocked { " [blocked]" } else { "" },
                    if n.truncated {
                        " …"
                    } else if n.title.is_none() {
                        " ?"
                    } else {
                        ""
                    },
                )
            })
            .collect()
    }

    #[test]
    fn tree_walks_down_up_and_both_without_repeating_nodes() {
        let issues = backlog(&[
            "r open a b:parent-child m",
            "a open c",
            "b open c:related",
            "c open r",
        ]);
        let g = Graph::new(&issues);
        assert_eq!(
            tree_lines(&g, "r", Direction::Down, DEFAULT_TREE_DEPTH),
            [
                "r [blocked]",
                "  a (blocks) [blocked]",
                "    c (blocks) [blocked]",
                "      r (blocks) [blocked] …",
                "  b (parent-child)",
                "    c (related) [blocked] …",
                "  m (blocks) ?",
            ]
        );
        assert_eq!(
            tree_lines(&g, "c", Direction::Up, DEFAULT_TREE_DEPTH),
            [
                "c [blocked]",
                "  a (blocks) [blocked]",
                "    r (blocks) [blocked]",
                "      c (blocks) [blocked] …",
                "  b (related)",
                "    r (parent-child) [blocked] …",
            ]
        );
        assert_eq!(
            tree_lines(&g, "r", Direction::Down, 1),
            [
                "r [blocked]",
                "  a (blocks) [blocked] …",
                "  b (parent-child) …",
                "  m (blocks) ?"
            ]
        );
        let both = g.tree(g.lookup("b").expect("b"), Direction::Both, 5);
        let walk: Vec<(&str, Direction, bool)> = both
            .iter()
            .map(|n| (n.id, n.direction, n.truncated))
            .collect();
        // Nodes already shown come back once more as truncated leaves, so cycles end.
        assert_eq!(
            walk,
            [
                ("b", Direction::Down, false),
                ("c", Direction::Down, false),
                ("r", Direction::Down, false),
                ("a", Direction::Down, false),
                ("c", Direction::Down, true),
                ("b", Direction::Down, true),
                ("m", Direction::Down, false),
                ("r", Direction::Up, false),
                ("c", Direction::Up, false),
                ("a", Direction::Up, false),
                ("r", Direction::Up, true),
                ("b", Direction::Up, true),
            ]
        );
    }

    #[test]
    fn edge_checks_for_dep_add() {
        let issues = backlog(&[
            "x open y",
            "y open z",
            "z open",
            "ch open par:parent-child",
            "par open",
        ]);
        let g = Graph::new(&issues);
        assert_eq!(
            g.would_create_cycle("x", "x", "related"),
            Err(EdgeRefusal::SelfEdge)
        );
        assert_eq!(
            g.would_create_cycle("z", "x", "blocks"),
            Err(EdgeRefusal::Cycle(vec!["z".into(), "x".into(), "y".into()]))
        );
        assert_eq!(
            g.would_create_cycle("z", "x", "conditional-blocks"),
            Err(EdgeRefusal::Cycle(vec!["z".into(), "x".into(), "y".into()]))
        );
        assert_eq!(
            g.would_create_cycle("y", "x", "blocks"),
            Err(EdgeRefusal::Cycle(vec!["y".into(), "x".into()]))
        );
        assert_eq!(g.would_create_cycle("z", "x", "related"), Ok(()));
        assert_eq!(g.would_create_cycle("z", "x", "parent-child"), Ok(()));
        assert_eq!(g.would_create_cycle("x", "z", "blocks"), Ok(()));
        assert_eq!(g.would_create_cycle("z", "nowhere", "blocks"), Ok(()));
        assert_eq!(
            g.would_create_cycle("ch", "par", "blocks"),
            Err(EdgeRefusal::ChildOfParent)
        );
        assert!(g.cyclic_components().is_empty());
        assert!(g.edge_between("x", "y").is_some());
        assert!(g.edge_between("y", "x").is_none());
        assert!(g
            .edge_between("ch", "par")
            .is_some_and(|d| d.kind() == DepKind::ParentChild));
        let msg = g
            .would_create_cycle("z", "x", "blocks")
            .expect_err("cycle")
            .to_string();
        assert!(msg.contains("z → x → y → z"), "{msg}");
    }

    #[test]
    fn counts_children_progress_and_closable_epics() {
        let issues = backlog(&[
            "E1 open",
            "E1.1 closed E1:parent-child",
            "E1.2 done E1:parent-child x",
            "E2 open",
            "E2.1 open E2:parent-child",
            "E3 open",
            "E4 closed",
            "E4.1 closed E4:parent-child",
            "x open gone",
            "t tombstone x",
        ]);
        let g = Graph::new(&issues);
        let e1 = g.lookup("E1").expect("E1");
        assert_eq!(
            g.progress(e1),
            Progress {
                total: 2,
                closed: 2
            }
        );
        let eligible: Vec<&str> = g
            .epics_eligible_for_closure()
            .iter()
            .map(|&i| g.issue(i).id.as_str())
            .collect();
        assert_eq!(eligible, ["E1"]);
        let statuses: Vec<(&str, Progress)> = g
            .epic_statuses()
            .iter()
            .map(|&(i, p)| (g.issue(i).id.as_str(), p))
            .collect();
        assert_eq!(
            statuses,
            [
                (
                    "E1",
                    Progress {
                        total: 2,
                        closed: 2
                    }
                ),
                (
                    "E2",
                    Progress {
                        total: 1,
                        closed: 0
                    }
                )
            ]
        );
        let kids: Vec<&str> = g.children(e1).map(|i| g.issue(i).id.as_str()).collect();
        assert_eq!(kids, ["E1.1", "E1.2"]);

        let counts = g.counts();
        let x = g.lookup("x").expect("x");
        let e12 = g.lookup("E1.2").expect("E1.2");
        // The tombstone's edge to x is not counted; x's dangling edge is.
        assert_eq!(
            counts[x],
            IssueCounts {
                dependency_count: 1,
                dependent_count: 1,
                comment_count: 1,
                parent: None
            }
        );
        // Only `blocks` edges count, as in bd v1: E1.2's parent-child edge does not.
        assert_eq!(
            counts[e12],
            IssueCounts {
                dependency_count: 1,
                dependent_count: 0,
                comment_count: 1,
                parent: Some("E1")
            }
        );
        assert_eq!(counts[e1].dependent_count, 0);
        assert!(g.lookup("t").is_none());
        let deps: Vec<(&str, bool)> = g
            .dependencies(x)
            .iter()
            .map(|e| (e.other_id, e.other.is_some()))
            .collect();
        assert_eq!(deps, [("gone", false)]);
        let up: Vec<(&str, &str)> = g
            .dependents(x)
            .iter()
            .map(|e| (e.other_id, e.dep.dep_type.as_str()))
            .collect();
        assert_eq!(up, [("E1.2", "blocks")]);
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let n = 200_000;
        let issues: Vec<Issue> = (0..n)
            .map(|k| {
                let mut i = Issue {
                    id: format!("c-{k}"),
                    status: "open".into(),
                    ..Issue::default()
                };
                if k + 1 < n {
                    i.dependencies.push(Dependency {
                        issue_id: i.id.clone(),
                        depends_on_id: format!("c-{}", k + 1),
                        dep_type: if k % 2 == 0 { "blocks" } else { "parent-child" }.into(),
                        created_at: None,
                        created_by: None,
                        metadata: None,
                        thread_id: None,
                    });
                }
                i
            })
            .collect();
        let g = Graph::new(&issues);
        assert!(g.cycles().is_empty());
        assert!(g.is_blocked(0));
        assert!(!g.is_blocked(n - 1));
        assert_eq!(
            g.tree(0, Direction::Down, DEFAULT_TREE_DEPTH).len(),
            DEFAULT_TREE_DEPTH + 1
        );
    }
}
