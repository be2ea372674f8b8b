//! Property tests: on random backlogs, `ready`, `blocked` and `cycles` agree with naive
//! oracles written straight from the rules, with no indexes or memoization.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use spool_core::beads::graph::{Direction, EdgeView, Graph};
use spool_core::beads::node::Skimmed;
use spool_core::beads::ready::{
    blocked, explain, parent_scope, ready, ready_rows, ReadyQuery, ReadyTable, Reason, SortPolicy,
};
use spool_core::beads::skim::Skim;
use spool_core::beads::{canonical_dep_type, BeadsFile, DepKind, Issue, NON_WORK_TYPES};

const STATUSES: &[&str] = &[
    "open",
    "open",
    "open",
    "",
    "in_progress",
    "closed",
    "done",
    "completed",
    "pinned",
    "tombstone",
    "blocked",
    "deferred",
    "review",
    "hooked",
];
const TYPES: &[&str] = &["task", "task", "bug", "epic", "gate", "molecule", ""];
const DEP_TYPES: &[&str] = &[
    "blocks",
    "blocks",
    "parent-child",
    "parent_child",
    "conditional-blocks",
    "waits-for",
    "related",
    "discovered-from",
    "",
];

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

#[derive(Debug, Clone)]
struct DepSpec {
    target: usize,
    ty: usize,
    any: Option<bool>,
}

#[derive(Debug, Clone)]
struct IssueSpec {
    status: usize,
    ty: usize,
    priority: i64,
    created_day: Option<u32>,
    defer: Option<bool>,
    pinned: bool,
    ephemeral: bool,
    deps: Vec<DepSpec>,
}

fn issue_spec(n: usize) -> impl Strategy<Value = IssueSpec> {
    let dep = (
        0..n + 2,
        0..DEP_TYPES.len(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(target, ty, any)| DepSpec { target, ty, any });
    (
        0..STATUSES.len(),
        0..TYPES.len(),
        0i64..5,
        proptest::option::of(1u32..12),
        proptest::option::weighted(0.2, any::<bool>()),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
        proptest::collection::vec(dep, 0..4),
    )
        .prop_map(
            |(status, ty, priority, created_day, defer, pinned, ephemeral, deps)| IssueSpec {
                status,
                ty,
                priority,
                created_day,
                defer,
                pinned,
                ephemeral,
                deps,
            },
        )
}

fn backlog() -> impl Strategy<Value = Vec<Issue>> {
    (1usize..24).prop_flat_map(|n| {
        proptest::collection::vec(issue_spec(n), n).prop_map(move |specs| build(&specs))
    })
}

/// Ids `i0..i{n-1}`; targets `n` and `n+1` are ids that do not exist.
fn build(specs: &[IssueSpec]) -> Vec<Issue> {
    records(specs)
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("generated issue is valid"))
        .collect()
}

/// The JSON records of [`build`].
fn records(specs: &[IssueSpec]) -> Vec<serde_json::Value> {
    specs
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let id = format!("i{k}");
            let deps: Vec<serde_json::Value> = s
                .deps
                .iter()
                .map(|d| {
                    let mut v = serde_json::json!({
                        "issue_id": id, "depends_on_id": format!("i{}", d.target),
                        "type": DEP_TYPES[d.ty],
                    });
                    if let Some(any) = d.any {
                        let gate = if any { "any-children" } else { "all-children" };
                        v["metadata"] =
                            serde_json::Value::String(format!(r#"{{"gate":"{gate}"}}"#));
                    }
                    v
                })
                .collect();
            let mut v = serde_json::json!({
                "id": id, "title": id, "status": STATUSES[s.status], "priority": s.priority,
                "issue_type": TYPES[s.ty], "pinned": s.pinned, "ephemeral": s.ephemeral,
                "dependencies": deps,
            });
            if let Some(day) = s.created_day {
                v["created_at"] = format!("2026-03-{day:02}T00:00:00Z").into();
            }
            if let Some(future) = s.defer {
                v["defer_until"] = if future {
                    "2026-03-11T00:00:00Z"
                } else {
                    "2026-03-09T00:00:00Z"
                }
                .into();
            }
            v
        })
        .collect()
}

// ---- the oracle: the rules as written, one issue at a time ----

fn find<'a>(issues: &'a [Issue], id: &str) -> Option<&'a Issue> {
    issues
        .iter()
        .find(|i| i.id == id && i.status != "tombstone")
}

fn closed(i: &Issue) -> bool {
    matches!(i.status.as_str(), "closed" | "done" | "completed")
}

fn is_parent_edge(ty: &str) -> bool {
    ty == "parent-child" || ty == "parent_child"
}

fn children<'a>(issues: &'a [Issue], id: &str) -> Vec<&'a Issue> {
    issues
        .iter()
        .filter(|i| i.status != "tombstone")
        .filter(|i| {
            i.dependencies
                .iter()
                .any(|d| is_parent_edge(&d.dep_type) && d.depends_on_id == id)
        })
        .collect()
}

/// Closed-category, pinned (status) and tombstoned issues neither block nor are blocked.
fn active(i: &Issue) -> bool {
    !closed(i) && i.status != "pinned" && i.status != "tombstone"
}

fn oracle_direct(issues: &[Issue], i: &Issue) -> bool {
    i.dependencies.iter().any(|d| match d.dep_type.as_str() {
        "" | "blocks" | "conditional-blocks" => find(issues, &d.depends_on_id).is_some_and(active),
        "waits-for" => {
            if find(issues, &d.depends_on_id).is_none() {
                return false;
            }
            let kids = children(issues, &d.depends_on_id);
            let pending = kids.iter().any(|k| !closed(k) && k.status != "pinned");
            let any = d
                .metadata
                .as_ref()
                .is_some_and(|m| m.to_string().contains("any-children"));
            pending && !(any && kids.iter().any(|k| closed(k)))
        }
        _ => false,
    })
}

/// Blocked: active, and some issue reachable upward through active parents (itself
/// included) is directly blocked. Plain breadth-first search, no memoization.
fn oracle_blocked(issues: &[Issue], i: &Issue) -> bool {
    if !active(i) {
        return false;
    }
    let mut seen: Vec<&str> = vec![i.id.as_str()];
    let mut queue: Vec<&Issue> = vec![i];
    while let Some(cur) = queue.pop() {
        if oracle_direct(issues, cur) {
            return true;
        }
        for d in cur
            .dependencies
            .iter()
            .filter(|d| is_parent_edge(&d.dep_type))
        {
            if let Some(p) = find(issues, &d.depends_on_id) {
                if active(p) && !seen.contains(&p.id.as_str()) {
                    seen.push(p.id.as_str());
                    queue.push(p);
                }
            }
        }
    }
    false
}

fn deferred(i: &Issue) -> bool {
    i.defer_until.as_ref().is_some_and(|t| t.at > now())
}

fn oracle_ready(issues: &[Issue]) -> BTreeSet<String> {
    issues
        .iter()
        .filter(|i| i.status != "tombstone")
        .filter(|i| i.status == "open" || i.status.is_empty())
        .filter(|i| !i.pinned && !i.ephemeral)
        .filter(|i| !NON_WORK_TYPES.contains(&i.issue_type()))
        .filter(|i| !deferred(i))
        .filter(|i| {
            !i.dependencies
                .iter()
                .filter(|d| is_parent_edge(&d.dep_type))
                .filter_map(|d| find(issues, &d.depends_on_id))
                .any(deferred)
        })
        .filter(|i| !oracle_blocked(issues, i))
        .map(|i| i.id.clone())
        .collect()
}

fn blocks_edges(issues: &[Issue]) -> Vec<(usize, usize)> {
    let pos = |id: &str| {
        issues
            .iter()
            .position(|i| i.id == id && i.status != "tombstone")
    };
    let mut edges = Vec::new();
    for (a, i) in issues.iter().enumerate() {
        if i.status == "tombstone" {
            continue;
        }
        for d in &i.dependencies {
            if matches!(d.dep_type.as_str(), "" | "blocks" | "conditional-blocks") {
                if let Some(b) = pos(&d.depends_on_id) {
                    edges.push((a, b));
                }
            }
        }
    }
    edges
}

fn oracle_has_cycle(issues: &[Issue]) -> bool {
    let n = issues.len();
    let edges = blocks_edges(issues);
    // Transitive closure by repeated relaxation; fine for tiny n.
    let mut reach = vec![vec![false; n]; n];
    for &(a, b) in &edges {
        reach[a][b] = true;
    }
    for k in 0..n {
        for a in 0..n {
            for b in 0..n {
                if reach[a][k] && reach[k][b] {
                    reach[a][b] = true;
                }
            }
        }
    }
    (0..n).any(|a| reach[a][a])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn ready_matches_the_oracle(issues in backlog()) {
        let g = Graph::new(&issues);
        let q = ReadyQuery { limit: 0, ..ReadyQuery::default() };
        let got = ready(&g, &q, now());
        let ids: BTreeSet<String> = got.issues.iter().map(|&i| g.issue(i).id.clone()).collect();
        prop_assert_eq!(&ids, &oracle_ready(&issues));
        prop_assert_eq!(got.total, ids.len());
        // Priority order: priority ascending, newest first, then id.
        for w in got.issues.windows(2) {
            let (a, b) = (g.issue(w[0]), g.issue(w[1]));
            prop_assert!(a.priority <= b.priority);
            if a.priority == b.priority {
                match (&a.created_at, &b.created_at) {
                    (Some(x), Some(y)) => prop_assert!(x.at > y.at || (x.at == y.at && a.id < b.id)),
                    (Some(_), None) => {}
                    (None, Some(_)) => prop_assert!(false, "missing creation time sorted first"),
                    (None, None) => prop_assert!(a.id < b.id),
                }
            }
        }
    }

    #[test]
    fn ready_never_holds_a_live_blocker_or_blocked_ancestor(issues in backlog()) {
        let g = Graph::new(&issues);
        for sort in [SortPolicy::Priority, SortPolicy::Hybrid, SortPolicy::Oldest] {
            let q = ReadyQuery { limit: 0, sort, ..ReadyQuery::default() };
            for &i in &ready(&g, &q, now()).issues {
                let issue = g.issue(i);
                prop_assert!(!oracle_direct(&issues, issue), "{} has a live blocker", issue.id);
                // Walk every ancestor, cycle-safe.
                let mut stack: Vec<&Issue> = vec![issue];
                let mut seen = BTreeSet::new();
                while let Some(cur) = stack.pop() {
                    if !seen.insert(cur.id.clone()) {
                        continue;
                    }
                    prop_assert!(!oracle_direct(&issues, cur), "{} has blocked ancestor {}", issue.id, cur.id);
                    for d in cur.dependencies.iter().filter(|d| is_parent_edge(&d.dep_type)) {
                        // Blockage does not flow through closed or pinned parents.
                        if let Some(p) = find(&issues, &d.depends_on_id).filter(|p| active(p)) {
                            stack.push(p);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn blocked_matches_the_oracle(issues in backlog()) {
        let g = Graph::new(&issues);
        let got: BTreeSet<String> = blocked(&g, None).iter().map(|b| g.issue(b.issue).id.clone()).collect();
        let want: BTreeSet<String> = issues
            .iter()
            .filter(|i| i.status != "tombstone")
            .filter(|i| oracle_blocked(&issues, i))
            .map(|i| i.id.clone())
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn cycles_found_iff_one_exists(issues in backlog()) {
        let g = Graph::new(&issues);
        let cycles = g.cycles();
        prop_assert_eq!(!cycles.is_empty(), oracle_has_cycle(&issues));
        let edges = blocks_edges(&issues);
        let pos = |id: &str| issues.iter().position(|i| i.id == id).expect("cycle ids exist");
        for cycle in &cycles {
            let distinct: BTreeSet<&&str> = cycle.iter().collect();
            prop_assert_eq!(distinct.len(), cycle.len());
            for k in 0..cycle.len() {
                let (a, b) = (pos(cycle[k]), pos(cycle[(k + 1) % cycle.len()]));
                prop_assert!(edges.contains(&(a, b)), "no edge {} -> {}", cycle[k], cycle[(k + 1) % cycle.len()]);
            }
        }
    }

    #[test]
    fn limits_cut_the_sorted_list(issues in backlog(), limit in 1usize..6) {
        let g = Graph::new(&issues);
        for sort in [SortPolicy::Priority, SortPolicy::Hybrid, SortPolicy::Oldest] {
            let all = ready(&g, &ReadyQuery { limit: 0, sort, ..ReadyQuery::default() }, now());
            let cut = ready(&g, &ReadyQuery { limit, sort, ..ReadyQuery::default() }, now());
            prop_assert_eq!(cut.total, all.total);
            prop_assert_eq!(&cut.issues[..], &all.issues[..limit.min(all.issues.len())]);
        }
    }

    #[test]
    fn a_skim_answers_like_the_typed_issues(
        specs in (1usize..24).prop_flat_map(|n| proptest::collection::vec(issue_spec(n), n)),
        repeat in proptest::option::of(any::<prop::sample::Index>()),
        bad in proptest::option::of(any::<prop::sample::Index>()),
        parent in any::<prop::sample::Index>(),
    ) {
        // The records as lines, one repeated later (a duplicate id) and one unreadable.
        let mut lines: Vec<String> = records(&specs).iter().map(|v| v.to_string()).collect();
        if let Some(r) = repeat {
            let again = lines[r.index(lines.len())].clone();
            lines.push(again);
        }
        if let Some(b) = bad {
            let k = b.index(lines.len());
            let half = lines[k].len() / 2;
            lines[k].truncate(half);
        }
        let text = lines.join("\n") + "\n";
        let (file, diags) = BeadsFile::parse(text.as_bytes());
        let source = std::sync::Arc::new(text.into_bytes());
        let (skim, skim_diags) = Skim::parse(source.clone(), std::num::NonZeroUsize::MIN);
        prop_assert_eq!(&skim_diags, &diags);
        // Explanations name issues by title: a titled skim keeps them.
        let (titled, titled_diags) = Skim::parse_titled(source, std::num::NonZeroUsize::MIN);
        prop_assert_eq!(&titled_diags, &diags);
        let tg = Graph::new(titled.issues().collect::<Vec<&Skimmed>>());
        let full: Vec<&Issue> = file.issues().collect();
        let skimmed: Vec<&Skimmed> = skim.issues().collect();
        let (g, sg) = (Graph::new(full), Graph::new(skimmed));
        prop_assert_eq!(g.issues().len(), sg.issues().len());
        for i in 0..g.issues().len() {
            prop_assert_eq!(g.is_blocked(i), sg.is_blocked(i));
            prop_assert_eq!(g.is_workable(i), sg.is_workable(i));
            prop_assert_eq!(g.counts_of(i), sg.counts_of(i));
            prop_assert_eq!(g.direct_blocker_ixs(i), sg.direct_blocker_ixs(i));
        }
        let (table, skim_table) = (ReadyTable::new(&g), ReadyTable::new(&sg));
        prop_assert_eq!(&table, &skim_table);
        let parent_id = format!("i{}", parent.index(specs.len()));
        for q in [
            ReadyQuery { limit: 0, ..ReadyQuery::default() },
            ReadyQuery { sort: SortPolicy::Hybrid, limit: 3, ..ReadyQuery::default() },
            ReadyQuery { issue_type: Some("gate".into()), ..ReadyQuery::default() },
            ReadyQuery { parent: Some(parent_id), limit: 0, ..ReadyQuery::default() },
        ] {
            prop_assert_eq!(
                ready_rows(&table, &q, parent_scope(&g, &q), now()),
                ready_rows(&skim_table, &q, parent_scope(&sg, &q), now())
            );
            let ex = explain(&g, &q, now());
            // Each blocking reason names the edge's type as the line spells it (canonical).
            for entry in &ex.not_ready {
                for r in &entry.reasons {
                    if let Reason::BlockedBy { blocker, dep_type } = r {
                        let issue = file.get(entry.issue.id).expect("explained issue exists");
                        let types: Vec<&str> = issue
                            .dependencies
                            .iter()
                            .filter(|d| d.depends_on_id == blocker.id)
                            .filter(|d| {
                                matches!(d.kind(), DepKind::Blocks | DepKind::ConditionalBlocks)
                            })
                            .map(|d| canonical_dep_type(&d.dep_type))
                            .collect();
                        prop_assert!(types.contains(dep_type), "{dep_type} not in {types:?}");
                    }
                }
            }
            prop_assert_eq!(ex, explain(&tg, &q, now()));
        }
    }

    #[test]
    fn a_neighbourhood_answers_like_the_whole_graph(
        specs in (1usize..24).prop_flat_map(|n| proptest::collection::vec(issue_spec(n), n)),
        root in any::<prop::sample::Index>(),
        depth in 0usize..4,
    ) {
        let text: String = records(&specs).iter().map(|v| v.to_string() + "\n").collect();
        let (file, _) = BeadsFile::parse(text.as_bytes());
        let (skim, _) = Skim::parse(
            std::sync::Arc::new(text.into_bytes()),
            std::num::NonZeroUsize::MIN,
        );
        let g = Graph::new(file.issues());
        let sg = Graph::new(skim.issues());
        let live: Vec<usize> = g.live_indexes().collect();
        prop_assume!(!live.is_empty());
        let r = live[root.index(live.len())];
        let id = g.issue(r).id.as_str();
        let view = |graph: &Graph<'_>, edges: Vec<EdgeView<'_>>| -> Vec<(Option<String>, String, String)> {
            edges
                .iter()
                .map(|e| {
                    let other = e.other.map(|o| graph.issue(o).id.clone());
                    (other, e.other_id.to_string(), e.dep.dep_type.clone())
                })
                .collect()
        };
        for dir in [Direction::Down, Direction::Up, Direction::Both] {
            let ks = sg.within(&[r], dir, depth + 1);
            let js: Vec<usize> = ks.iter().map(|&k| skim.issue_line(k).expect("in effect")).collect();
            let small_file = skim.lines_file(&js).expect("lines parse");
            let small = Graph::new(small_file.issues());
            let sr = small.lookup(id).expect("the root is in its neighbourhood");
            let mut tree = small.tree(sr, dir, depth);
            for n in &mut tree {
                if n.title.is_some() {
                    n.blocked = g.lookup(n.id).is_some_and(|b| g.is_blocked(b));
                }
            }
            prop_assert_eq!(&tree, &g.tree(r, dir, depth));
            if dir != Direction::Up {
                prop_assert_eq!(view(&small, small.dependencies(sr)), view(&g, g.dependencies(r)));
            }
            if dir != Direction::Down {
                prop_assert_eq!(view(&small, small.dependents(sr)), view(&g, g.dependents(r)));
                prop_assert_eq!(small.progress(sr), g.progress(r));
            }
        }
    }
}
