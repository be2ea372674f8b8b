//! `bd stats` / `bd status`: counts over the whole backlog, tombstones excluded.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::graph::Graph;
use super::issue::StatusKind;
use super::node::Node;
use super::ready::{ready, ReadyQuery};

/// bd's `stats --json` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub total_issues: usize,
    pub open_issues: usize,
    pub in_progress_issues: usize,
    /// Closed-category statuses (`closed`, `done`, `completed`).
    pub closed_issues: usize,
    /// Issues `blocked` lists (blocked by a dependency, not the `blocked` status; closed
    /// and pinned issues are never blocked).
    pub blocked_issues: usize,
    /// Status `deferred`.
    pub deferred_issues: usize,
    /// Issues `ready` would list with no filters and no limit.
    pub ready_issues: usize,
    /// Pinned by status or flag.
    pub pinned_issues: usize,
    pub epics_eligible_for_closure: usize,
    /// Mean hours from `created_at` to `closed_at` over closed issues that have both;
    /// 0 when there are none.
    pub average_lead_time_hours: f64,
}

pub fn stats<N: Node>(graph: &Graph<'_, N>, now: DateTime<Utc>) -> Stats {
    let mut s = Stats {
        total_issues: 0,
        open_issues: 0,
        in_progress_issues: 0,
        closed_issues: 0,
        blocked_issues: 0,
        deferred_issues: 0,
        ready_issues: ready(
            graph,
            &ReadyQuery {
                limit: 0,
                ..ReadyQuery::default()
            },
            now,
        )
        .total,
        pinned_issues: 0,
        epics_eligible_for_closure: graph.epics_eligible_for_closure().len(),
        average_lead_time_hours: 0.0,
    };
    let (mut lead_secs, mut lead_n) = (0f64, 0usize);
    for i in graph.live_indexes() {
        let issue = graph.issue(i);
        s.total_issues += 1;
        let kind = graph.status_kind(i);
        match kind {
            StatusKind::Open => s.open_issues += 1,
            StatusKind::InProgress => s.in_progress_issues += 1,
            StatusKind::Closed => s.closed_issues += 1,
            StatusKind::Deferred => s.deferred_issues += 1,
            _ => {}
        }
        let pinned = issue.pinned() || kind == StatusKind::Pinned;
        if pinned {
            s.pinned_issues += 1;
        }
        // What `blocked` lists, counted without building its entries.
        if graph.is_blocked(i) {
            s.blocked_issues += 1;
        }
        if kind == StatusKind::Closed {
            if let Some(ms) = issue.lead_time_ms() {
                lead_secs += ms as f64 / 1000.0;
                lead_n += 1;
            }
        }
    }
    if lead_n > 0 {
        s.average_lead_time_hours = lead_secs / lead_n as f64 / 3600.0;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beads::Issue;

    fn parse(lines: &[&str]) -> Vec<Issue> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid issue"))
            .collect()
    }

    #[test]
    fn counts_by_category_without_tombstones() {
        let issues = parse(&[
            r#"{"id":"s-1","title":"a","status":"open","created_at":"2026-03-01T00:00:00Z"}"#,
            r#"{"id":"s-2","title":"b","status":"open","dependencies":[{"depends_on_id":"s-1"}]}"#,
            r#"{"id":"s-3","title":"c","status":"in_progress"}"#,
            r#"{"id":"s-4","title":"d","status":"closed","created_at":"2026-03-01T00:00:00Z","closed_at":"2026-03-01T10:00:00Z"}"#,
            r#"{"id":"s-5","title":"e","status":"done","created_at":"2026-03-01T00:00:00-02:00","closed_at":"2026-03-01T04:00:00Z"}"#,
            r#"{"id":"s-6","title":"f","status":"closed"}"#,
            r#"{"id":"s-7","title":"g","status":"deferred"}"#,
            r#"{"id":"s-8","title":"h","status":"pinned","dependencies":[{"depends_on_id":"s-1"}]}"#,
            r#"{"id":"s-9","title":"i","status":"open","pinned":true}"#,
            r#"{"id":"s-10","title":"j","status":"tombstone"}"#,
            r#"{"id":"s-11","title":"k","status":"open","issue_type":"epic"}"#,
            r#"{"id":"s-11.1","title":"l","status":"closed","dependencies":[{"depends_on_id":"s-11","type":"parent-child"}]}"#,
            r#"{"id":"s-12","title":"m","status":"open","issue_type":"epic"}"#,
            r#"{"id":"s-13","title":"n","status":"closed","dependencies":[{"depends_on_id":"s-1"}]}"#,
        ]);
        let g = Graph::new(&issues);
        let now = "2026-03-10T00:00:00Z".parse().expect("valid");
        let s = stats(&g, now);
        assert_eq!(
            s,
            Stats {
                total_issues: 13,
                open_issues: 5,
                in_progress_issues: 1,
                closed_issues: 5,
                // s-2 only: s-8 is pinned, s-13 closed.
                blocked_issues: 1,
                deferred_issues: 1,
                // s-1, s-11, s-12 (s-2 blocked, s-9 pinned).
                ready_issues: 3,
                pinned_issues: 2,
                epics_eligible_for_closure: 1,
                // s-4: 10 h; s-5: 2 h (created 02:00Z); s-6 and s-11.1 have no times.
                average_lead_time_hours: 6.0,
            }
        );
    }
}
