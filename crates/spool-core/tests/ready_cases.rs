//! Data-driven readiness tests: each `tests/ready_cases/<name>.jsonl` backlog has a
//! sibling `<name>.expected` that states, for a fixed `now`, what the queries must return.
//!
//! `.expected` syntax, one directive per line (`#` starts a comment line):
//! - `now: <RFC3339>` — the clock (required, first).
//! - `query: k=v ...` — starts a new ready query; keys `sort`, `limit`, `assignee`,
//!   `unassigned`, `labels` (comma list), `label-any`, `type`, `priority`, `parent`.
//!   Without any `query:` line, `ready:`/`total:` apply to the default query.
//! - `ready: <ids in order>`, `count: <n>` (how many shown) and `total: <n>` (how many
//!   matched) — the current query's result.
//! - `blocked: <ids in order>` — `blocked` list; `blocked-by <id>: <ids>` its blockers;
//!   `blocked-ancestor <id>: <id>`.
//! - `explain <id>: <reason codes>` — `explain_issue` with the default query.
//! - `cycles: <ids> | <ids>` — `cycles()`, each cycle from its smallest id.
//! - `components: <ids> | <ids>` — `cyclic_components()`, every id on a cycle.
//! - `dangling: <from>><to> ...`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use spool_core::beads::graph::Graph;
use spool_core::beads::ready::{blocked, explain, explain_issue, ready, ReadyQuery};
use spool_core::beads::Issue;

fn load(path: &Path) -> Vec<Issue> {
    let text = std::fs::read_to_string(path).expect("case file readable");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1))
        })
        .collect()
}

fn parse_query(spec: &str, ctx: &str) -> ReadyQuery {
    let mut q = ReadyQuery::default();
    for word in spec.split_whitespace() {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        let list = || v.split(',').map(str::to_string).collect::<Vec<_>>();
        match k {
            "sort" => q.sort = v.parse().unwrap_or_else(|e| panic!("{ctx}: {e}")),
            "limit" => q.limit = v.parse().unwrap_or_else(|e| panic!("{ctx}: {e}")),
            "assignee" => q.assignee = Some(v.to_string()),
            "unassigned" => q.unassigned = true,
            "labels" => q.labels = list(),
            "label-any" => q.labels_any = list(),
            "type" => q.issue_type = Some(v.to_string()),
            "priority" => q.priority = Some(v.parse().unwrap_or_else(|e| panic!("{ctx}: {e}"))),
            "parent" => q.parent = Some(v.to_string()),
            other => panic!("{ctx}: unknown query key {other:?}"),
        }
    }
    q
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn ids(graph: &Graph<'_>, ix: &[usize]) -> Vec<String> {
    ix.iter().map(|&i| graph.issue(i).id.clone()).collect()
}

/// Runs one case; returns the number of checks made.
fn run_case(jsonl: &Path) -> usize {
    let expected_path = jsonl.with_extension("expected");
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let issues = load(jsonl);
    let graph = Graph::new(&issues);
    let mut now: Option<DateTime<Utc>> = None;
    let mut query = ReadyQuery::default();
    let mut checks = 0;
    let blocked_list = blocked(&graph, None);
    for (n, line) in expected.lines().enumerate() {
        let ctx = format!("{}:{}", expected_path.display(), n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{ctx}: no ':'"));
        let value = value.trim();
        if key == "now" {
            now = Some(
                DateTime::parse_from_rfc3339(value)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"))
                    .with_timezone(&Utc),
            );
            continue;
        }
        let now = now.unwrap_or_else(|| panic!("{ctx}: `now:` must come first"));
        checks += 1;
        match key.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["query"] => {
                query = parse_query(value, &ctx);
                checks -= 1;
            }
            ["ready"] => {
                let got = ready(&graph, &query, now);
                assert_eq!(
                    ids(&graph, &got.issues),
                    words(value),
                    "{ctx}: ready for {query:?}"
                );
            }
            ["count"] => {
                let got = ready(&graph, &query, now);
                let want: usize = value.parse().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(got.issues.len(), want, "{ctx}: count for {query:?}");
            }
            ["total"] => {
                let got = ready(&graph, &query, now);
                let want: usize = value.parse().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(got.total, want, "{ctx}: total for {query:?}");
            }
            ["blocked"] => {
                let got: Vec<usize> = blocked_list.iter().map(|b| b.issue).collect();
                assert_eq!(ids(&graph, &got), words(value), "{ctx}: blocked");
            }
            ["blocked-by", id] => {
                let entry = blocked_list
                    .iter()
                    .find(|b| graph.issue(b.issue).id == *id)
                    .unwrap_or_else(|| panic!("{ctx}: {id} is not in the blocked list"));
                assert_eq!(entry.blocked_by, words(value), "{ctx}: blocked_by of {id}");
            }
            ["blocked-ancestor", id] => {
                let entry = blocked_list
                    .iter()
                    .find(|b| graph.issue(b.issue).id == *id)
                    .unwrap_or_else(|| panic!("{ctx}: {id} is not in the blocked list"));
                assert_eq!(
                    entry.blocked_ancestor,
                    Some(value),
                    "{ctx}: ancestor of {id}"
                );
            }
            ["explain", id] => {
                let i = graph
                    .lookup(id)
                    .unwrap_or_else(|| panic!("{ctx}: no issue {id}"));
                let got: Vec<String> = explain_issue(&graph, i, false, now)
                    .iter()
                    .map(|r| r.code())
                    .collect();
                assert_eq!(got, words(value), "{ctx}: explain {id}");
            }
            ["cycles"] => {
                let want: Vec<Vec<String>> = if value.is_empty() {
                    Vec::new()
                } else {
                    value.split('|').map(words).collect()
                };
                assert_eq!(graph.cycles(), want, "{ctx}: cycles");
            }
            ["components"] => {
                let want: Vec<Vec<String>> = value
                    .split('|')
                    .map(words)
                    .filter(|w| !w.is_empty())
                    .collect();
                assert_eq!(graph.cyclic_components(), want, "{ctx}: components");
            }
            ["dangling"] => {
                let got: Vec<String> = graph
                    .dangling()
                    .iter()
                    .map(|d| format!("{}>{}", d.issue_id, d.depends_on_id))
                    .collect();
                assert_eq!(got, words(value), "{ctx}: dangling");
            }
            _ => panic!("{ctx}: unknown directive {key:?}"),
        }
    }
    // Invariants every case must also satisfy, whatever it checks explicitly.
    let now = now.expect("every case sets now");
    let all = ReadyQuery {
        limit: 0,
        ..ReadyQuery::default()
    };
    let listed = ready(&graph, &all, now);
    let explained = explain(&graph, &all, now);
    let explained_ready: Vec<&str> = explained.ready.iter().map(|r| r.issue.id).collect();
    assert_eq!(
        ids(&graph, &listed.issues),
        explained_ready,
        "{}: explain agrees with ready",
        jsonl.display()
    );
    for &i in &listed.issues {
        assert!(
            explain_issue(&graph, i, false, now).is_empty(),
            "{}: ready issue with reasons",
            jsonl.display()
        );
        assert!(!graph.is_blocked(i));
    }
    for entry in &explained.not_ready {
        assert!(
            !entry.reasons.is_empty(),
            "{}: {} not ready without a reason",
            jsonl.display(),
            entry.issue.id
        );
    }
    checks
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ready_cases")
}

#[test]
fn every_ready_case_holds() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/ready_cases exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the full set of cases, found {}",
        cases.len()
    );
    for case in &cases {
        let checks = run_case(case);
        assert!(checks > 0, "{} checks nothing", case.display());
    }
}
