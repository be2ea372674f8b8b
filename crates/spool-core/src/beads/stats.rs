//! `bd stats` / `bd status`: counts over the whole backlog, tombstones excluded.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::graph::Graph;
use super::issue::StatusKind;
use super::ready::{ready, ReadyQuery};

/// bd's `stats --json` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub total_issues: usize,
    pub open_issues: usize,
    pub in_progress_issues: usize,
    /// Closed-category statuses (`closed`, `done`, `completed`).
    pub closed_issues: usize,
    /// Issues `blocked` lists (blocked by a dependency, not the `blocked` status).
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

pub fn stats(graph: &Graph<'_>, now: DateTime<Utc>) -> Stats {
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
        let pinned = issue.pinned || kind == StatusKind::Pinned;
        if pinned {
            s.pinned_issues += 1;
        }
        // The same rule as `blocked`, counted without building its entries.
        if graph.is_blocked(i) && !pinned && kind != StatusKind::Closed {
            s.blocked_issues += 1;
        }
        if kind == StatusKind::Closed {
            if let (Some(c), Some(d)) = (&issue.created_at, &issue.closed_at) {
                lead_secs += (d.at - c.at).num_milliseconds() as f64 / 1000.0;
                lead_n += 1;
            }
        }
    }
    if lead_n > 0 {
        s.average_lead_time_hours = lead_secs / lead_n as f64 / 3600.0;
    }
    s
}
