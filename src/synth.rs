//! Synthetic backlogs for benchmarks: realistic shape (epics with children, blocking
//! chains, labels, comments, long descriptions, mostly closed history), deterministic for
//! a given seed so runs are comparable.

use serde_json::{json, Map, Value};

/// Parameters of a generated backlog.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub issues: usize,
    pub seed: u64,
    pub prefix: String,
}

const WORDS: &[&str] = &[
    "parser",
    "cache",
    "index",
    "daemon",
    "retry",
    "timeout",
    "merge",
    "conflict",
    "worktree",
    "agent",
    "backlog",
    "schema",
    "migration",
    "latency",
    "throughput",
    "lock",
    "commit",
    "signal",
    "timer",
    "history",
    "replay",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "when",
    "we",
    "must",
    "should",
    "never",
    "always",
    "file",
    "line",
    "config",
    "error",
    "test",
    "bench",
    "flaky",
    "slow",
    "fast",
    "<T>",
    "&&",
    "->",
    "user",
    "team",
    "push",
    "pull",
    "review",
];
const LABELS: &[&str] = &[
    "backend",
    "frontend",
    "cli",
    "perf",
    "bug-bash",
    "docs",
    "infra",
    "security",
    "ux",
    "tech-debt",
    "p-critical",
    "needs-design",
    "good-first-issue",
    "spool",
    "ci",
    "storage",
    "network",
    "api",
    "agents",
    "release",
    "triage",
    "flaky",
    "refactor",
    "testing",
    "deps",
    "oncall",
    "customer",
    "mobile",
    "web",
    "data",
];
const TYPES: &[&str] = &["task", "task", "task", "bug", "bug", "feature", "chore"];
const ACTORS: &[&str] = &["alice", "bob", "carol", "dave", "erin"];

fn words(rng: &mut fastrand::Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(if rng.u8(0..12) == 0 { '\n' } else { ' ' });
        }
        s.push_str(WORDS[rng.usize(0..WORDS.len())]);
    }
    s
}

fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).expect("base36 digits are ASCII")
}

fn timestamp(base: i64, offset_secs: i64, nanos: u32) -> String {
    let t = chrono::DateTime::from_timestamp(base + offset_secs, nanos).expect("in range");
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Generates the issues as JSON objects in bd's key order, sorted by id.
pub fn generate(spec: &SynthSpec) -> Vec<Map<String, Value>> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let n = spec.issues;
    // Two years of history ending 2026-06-01.
    let end = 1_780_272_000i64;
    let span = 2 * 365 * 86_400i64;
    let top_len = if n <= 163 {
        3
    } else if n <= 983 {
        4
    } else if n <= 5898 {
        5
    } else if n <= 35_389 {
        6
    } else {
        7
    };

    // Ids first: every ~20th issue is an epic whose next 3..15 issues are its children.
    let mut ids = Vec::with_capacity(n);
    let mut parent = vec![None::<usize>; n];
    let mut is_epic = vec![false; n];
    let mut i = 0;
    while i < n {
        let id = format!("{}-{}", spec.prefix, base36(rng.u64(..), top_len));
        ids.push(id);
        if rng.u8(0..20) == 0 && i + 1 < n {
            is_epic[i] = true;
            let kids = rng.usize(3..16).min(n - i - 1);
            for k in 1..=kids {
                ids.push(format!("{}.{}", ids[i], k));
                parent[i + k] = Some(i);
            }
            i += kids + 1;
        } else {
            i += 1;
        }
    }

    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let created = end - span + (span * i as i64) / n as i64 + rng.i64(0..3600);
        let status = match rng.u8(0..100) {
            0..=59 => "closed",
            60..=84 => "open",
            85..=92 => "in_progress",
            93..=95 => "blocked",
            96..=97 => "deferred",
            98 => "tombstone",
            _ => "pinned",
        };
        let mut m = Map::new();
        m.insert("id".into(), json!(ids[i]));
        let title_words = 4 + rng.usize(0..8);
        m.insert("title".into(), json!(words(&mut rng, title_words)));
        let desc_words = 20 + rng.usize(0..200);
        m.insert("description".into(), json!(words(&mut rng, desc_words)));
        if rng.u8(0..4) == 0 {
            m.insert("acceptance_criteria".into(), json!(words(&mut rng, 15)));
        }
        if rng.u8(0..5) == 0 {
            m.insert("notes".into(), json!(words(&mut rng, 25)));
        }
        m.insert("status".into(), json!(status));
        m.insert("priority".into(), json!(rng.u8(0..5)));
        let ty = if is_epic[i] {
            "epic"
        } else {
            TYPES[rng.usize(0..TYPES.len())]
        };
        m.insert("issue_type".into(), json!(ty));
        if status == "in_progress" || rng.u8(0..4) == 0 {
            m.insert("assignee".into(), json!(ACTORS[rng.usize(0..ACTORS.len())]));
        }
        m.insert(
            "created_at".into(),
            json!(timestamp(created, 0, rng.u32(0..1_000_000_000))),
        );
        m.insert(
            "created_by".into(),
            json!(ACTORS[rng.usize(0..ACTORS.len())]),
        );
        let updated = created + rng.i64(0..86_400 * 30);
        m.insert(
            "updated_at".into(),
            json!(timestamp(updated, 0, rng.u32(0..1_000_000_000))),
        );
        if status == "closed" {
            m.insert("closed_at".into(), json!(timestamp(updated, 0, 0)));
            m.insert("close_reason".into(), json!("Completed"));
        }
        if status == "deferred" {
            m.insert(
                "defer_until".into(),
                json!(timestamp(end + 86_400 * 30, 0, 0)),
            );
        }
        let mut labels: Vec<&str> = (0..rng.usize(0..4))
            .map(|_| LABELS[rng.usize(0..LABELS.len())])
            .collect();
        labels.sort_unstable();
        labels.dedup();
        if !labels.is_empty() {
            m.insert("labels".into(), json!(labels));
        }
        let mut deps = Vec::new();
        if let Some(p) = parent[i] {
            deps.push(
                json!({"issue_id": ids[i], "depends_on_id": ids[p], "type": "parent-child",
                "created_at": timestamp(created, 1, 0), "created_by": "alice"}),
            );
        }
        // Blocking edges point to earlier issues only, so the graph has no cycles.
        if i > 0 {
            let mut targets: Vec<usize> = (0..rng.usize(0..4))
                .map(|_| rng.usize(i.saturating_sub(400)..i))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            for t in targets {
                if Some(t) == parent[i] {
                    continue;
                }
                let ty = if rng.u8(0..10) == 0 {
                    "related"
                } else {
                    "blocks"
                };
                deps.push(
                    json!({"issue_id": ids[i], "depends_on_id": ids[t], "type": ty,
                    "created_at": timestamp(created, 2, 0), "created_by": "bob"}),
                );
            }
        }
        if !deps.is_empty() {
            m.insert("dependencies".into(), Value::Array(deps));
        }
        if rng.u8(0..10) == 0 {
            let comments: Vec<Value> = (0..rng.usize(1..4))
                .map(|k| json!({"id": i * 4 + k + 1, "issue_id": ids[i], "author": ACTORS[rng.usize(0..ACTORS.len())],
                    "text": words(&mut rng, 30), "created_at": timestamp(created, 3600 * (k as i64 + 1), 0)}))
                .collect();
            m.insert("comments".into(), Value::Array(comments));
        }
        out.push(m);
    }
    out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_backlog_and_ids_unique() {
        let spec = SynthSpec {
            issues: 2000,
            seed: 7,
            prefix: "bench".into(),
        };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2000);
        let mut ids: Vec<&str> = a.iter().map(|m| m["id"].as_str().expect("id")).collect();
        ids.dedup();
        assert_eq!(ids.len(), 2000, "ids must be unique and sorted");
        assert!(a.iter().any(|m| m["issue_type"] == "epic"));
        assert!(a
            .iter()
            .any(|m| m["id"].as_str().expect("id").contains('.')));
    }
}
