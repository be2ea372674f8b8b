//! Properties of the backlog merge over generated backlogs and edits of them.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};
use spool_core::beads::merge::{merge, resolve};

#[derive(Debug, Clone, PartialEq)]
struct Iss {
    id: String,
    title: String,
    priority: i64,
    status: &'static str,
    labels: BTreeSet<String>,
    /// Day of January 2026 of `updated_at`.
    updated: u32,
}

impl Iss {
    fn line(&self, spaced: bool) -> String {
        let mut v = json!({
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "priority": self.priority,
            "updated_at": format!("2026-01-{:02}T00:00:00Z", self.updated),
        });
        if !self.labels.is_empty() {
            v["labels"] = json!(self.labels);
        }
        if spaced {
            // Another writer's dialect of the same values.
            let mut out = Vec::new();
            let f = serde_json::ser::PrettyFormatter::with_indent(b"");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
            serde::Serialize::serialize(&v, &mut ser).expect("serializes");
            String::from_utf8(out).expect("utf8").replace('\n', " ")
        } else {
            v.to_string()
        }
    }
}

/// A backlog: issues (sorted by id, as classic bd writes them) and trailing memory
/// records.
#[derive(Debug, Clone, PartialEq)]
struct Backlog {
    issues: BTreeMap<String, Iss>,
    memories: Vec<String>,
}

impl Backlog {
    fn text(&self) -> Vec<u8> {
        self.text_in(false)
    }

    fn text_in(&self, spaced: bool) -> Vec<u8> {
        let mut s = String::new();
        for i in self.issues.values() {
            s.push_str(&i.line(spaced));
            s.push('\n');
        }
        for m in &self.memories {
            s.push_str(&json!({"_type": "memory", "key": m, "value": "v"}).to_string());
            s.push('\n');
        }
        s.into_bytes()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Title(String),
    Priority(i64),
    AddLabel(String),
    RemoveLabel(String),
    Close,
    Delete,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        "[a-z]{1,6}".prop_map(Op::Title),
        (0i64..5).prop_map(Op::Priority),
        "[a-e]".prop_map(Op::AddLabel),
        "[a-e]".prop_map(Op::RemoveLabel),
        Just(Op::Close),
        Just(Op::Delete),
    ]
}

fn base() -> impl Strategy<Value = Backlog> {
    (
        prop::collection::vec(
            (
                "[a-z]{1,6}",
                0i64..5,
                prop::collection::btree_set("[a-e]", 0..3),
            ),
            1..12,
        ),
        prop::collection::vec("[a-z]{3}", 0..2),
    )
        .prop_map(|(rows, memories)| Backlog {
            issues: rows
                .into_iter()
                .enumerate()
                .map(|(n, (title, priority, labels))| {
                    let id = format!("p-{:02}", n * 3);
                    let iss = Iss {
                        id: id.clone(),
                        title,
                        priority,
                        status: "open",
                        labels,
                        updated: 1,
                    };
                    (id, iss)
                })
                .collect(),
            memories,
        })
}

/// An edited copy of `base`: `ops` on the issues at those positions, new issues with
/// ids made from `new_tag`, a new memory record when `memory` is set.
#[derive(Debug, Clone)]
struct Edits {
    ops: Vec<(usize, Op)>,
    new: Vec<(u8, String)>,
    memory: Option<String>,
    day: u32,
}

fn edits() -> impl Strategy<Value = Edits> {
    (
        prop::collection::vec((0usize..12, op()), 0..6),
        prop::collection::vec((0u8..40, "[a-z]{1,5}"), 0..3),
        prop::option::of("[a-z]{3}"),
        2u32..6,
    )
        .prop_map(|(ops, new, memory, day)| Edits {
            ops,
            new,
            memory,
            day,
        })
}

/// Applies `e` to `b`, touching only issues whose position satisfies `mine`, and naming
/// new issues `<tag>-NN`.
fn apply(b: &Backlog, e: &Edits, tag: &str, mine: impl Fn(usize) -> bool) -> Backlog {
    let mut out = b.clone();
    let ids: Vec<String> = b.issues.keys().cloned().collect();
    for (pos, op) in &e.ops {
        if ids.is_empty() {
            break;
        }
        let pos = pos % ids.len();
        if !mine(pos) {
            continue;
        }
        let id = &ids[pos];
        if matches!(op, Op::Delete) {
            out.issues.remove(id);
            continue;
        }
        let Some(iss) = out.issues.get_mut(id) else {
            continue;
        };
        match op {
            Op::Title(t) => iss.title = t.clone(),
            Op::Priority(p) => iss.priority = *p,
            Op::AddLabel(l) => {
                iss.labels.insert(l.clone());
            }
            Op::RemoveLabel(l) => {
                iss.labels.remove(l);
            }
            Op::Close => iss.status = "closed",
            Op::Delete => unreachable!("handled above"),
        }
        iss.updated = e.day;
    }
    for (n, title) in &e.new {
        let id = format!("{tag}-{n:02}");
        out.issues.insert(
            id.clone(),
            Iss {
                id,
                title: title.clone(),
                priority: 2,
                status: "open",
                labels: BTreeSet::new(),
                updated: e.day,
            },
        );
    }
    if let Some(m) = &e.memory {
        out.memories.push(format!("{tag}{m}"));
    }
    out
}

fn ids_of(text: &[u8]) -> BTreeSet<String> {
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn lines_of(text: &[u8]) -> BTreeMap<String, Value> {
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| Some((v.get("id")?.as_str()?.to_string(), v.clone())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_sides_equal_gives_that_side(b in base(), e in edits()) {
        let x = apply(&b, &e, "x", |_| true);
        let out = merge(&b.text(), &x.text(), &x.text());
        prop_assert_eq!(&out.text, &x.text());
        prop_assert!(out.is_clean());
        // The same values in another dialect on theirs change nothing either.
        let out = merge(&b.text(), &x.text(), &x.text_in(true));
        prop_assert_eq!(String::from_utf8_lossy(&out.text), String::from_utf8_lossy(&x.text()).into_owned());
        prop_assert!(out.is_clean());
    }

    #[test]
    fn one_side_unchanged_gives_the_other(b in base(), e in edits()) {
        let y = apply(&b, &e, "y", |_| true);
        let out = merge(&b.text(), &b.text(), &y.text());
        prop_assert_eq!(String::from_utf8_lossy(&out.text), String::from_utf8_lossy(&y.text()).into_owned());
        prop_assert!(out.is_clean());
        let out = merge(&b.text(), &y.text(), &b.text());
        prop_assert_eq!(String::from_utf8_lossy(&out.text), String::from_utf8_lossy(&y.text()).into_owned());
        prop_assert!(out.is_clean());
    }

    #[test]
    fn disjoint_edits_commute_and_both_survive(b in base(), ex in edits(), ey in edits()) {
        // x edits the issues at even positions, y those at odd ones.
        let x = apply(&b, &ex, "x", |p| p % 2 == 0);
        let y = apply(&b, &ey, "y", |p| p % 2 == 1);
        let xy = merge(&b.text(), &x.text(), &y.text());
        let yx = merge(&b.text(), &y.text(), &x.text());
        prop_assert!(xy.is_clean() && yx.is_clean());
        let sorted = |t: &[u8]| {
            let mut l: Vec<Vec<u8>> = t.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
            l.sort();
            l
        };
        prop_assert_eq!(sorted(&xy.text), sorted(&yx.text));
        // Every issue is as the side that edited it left it (or as in the base).
        let (bl, xl, yl, out) = (lines_of(&b.text()), lines_of(&x.text()), lines_of(&y.text()), lines_of(&xy.text));
        let all: BTreeSet<&String> = bl.keys().chain(xl.keys()).chain(yl.keys()).collect();
        for id in all {
            let want = if xl.get(id) != bl.get(id) {
                xl.get(id)
            } else {
                yl.get(id)
            };
            prop_assert_eq!(out.get(id), want, "issue {}", id);
        }
        // Issue lines come in id order, as both inputs had them.
        let order: Vec<String> = xy.text.split(|c| *c == b'\n')
            .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
            .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let mut sorted_ids = order.clone();
        sorted_ids.sort();
        prop_assert_eq!(order, sorted_ids);
    }

    #[test]
    fn no_id_is_lost_unless_deleted_by_rule(b in base(), ex in edits(), ey in edits()) {
        // Overlapping edits, ties included.
        let x = apply(&b, &ex, "x", |_| true);
        let y = apply(&b, &ey, "y", |p| p % 3 != 0);
        let out = merge(&b.text(), &x.text(), &y.text());
        let got = ids_of(&out.text);
        let (bl, xl, yl) = (lines_of(&b.text()), lines_of(&x.text()), lines_of(&y.text()));
        for (id, _) in xl.iter().chain(yl.iter()) {
            // Deleted per the rule: removed on one side, unchanged on the other.
            let deleted = bl.contains_key(id)
                && ((!xl.contains_key(id) && yl.get(id) == bl.get(id))
                    || (!yl.contains_key(id) && xl.get(id) == bl.get(id)));
            prop_assert_eq!(got.contains(id), !deleted, "issue {}", id);
        }
        // Nothing appears that neither side had.
        for id in &got {
            prop_assert!(xl.contains_key(id) || yl.contains_key(id), "issue {} from nowhere", id);
        }
        // Memory records: ours' survive unless theirs removed them, theirs' new ones are added.
        let text = String::from_utf8_lossy(&out.text);
        for m in x.memories.iter().chain(&y.memories) {
            prop_assert!(text.contains(&format!("\"key\":\"{m}\"")), "memory {} lost", m);
        }
    }

    #[test]
    fn resolving_markers_equals_merging_the_sides(b in base(), ex in edits(), ey in edits()) {
        let x = apply(&b, &ex, "x", |_| true);
        let y = apply(&b, &ey, "y", |p| p % 3 != 0);
        let (bt, xt, yt) = (b.text(), x.text(), y.text());
        // One diff3 hunk over the whole file, between unchanged first and last lines.
        let mut text = b"{\"_schema\":\"s\"}\n<<<<<<< ours\n".to_vec();
        text.extend_from_slice(&xt);
        text.extend_from_slice(b"||||||| base\n");
        text.extend_from_slice(&bt);
        text.extend_from_slice(b"=======\n");
        text.extend_from_slice(&yt);
        text.extend_from_slice(b">>>>>>> theirs\n");
        let resolved = resolve(&text).expect("well-formed markers");
        prop_assert_eq!(resolved.hunks, 1);
        prop_assert_eq!(resolved.hunks_with_base, 1);
        let with = |t: &[u8]| [b"{\"_schema\":\"s\"}\n".as_slice(), t].concat();
        let merged = merge(&with(&bt), &with(&xt), &with(&yt));
        prop_assert_eq!(&resolved.outcome, &merged);
        prop_assert!(!resolved.outcome.text.windows(7).any(|w| w == b"<<<<<<<" || w == b">>>>>>>"));
    }
}
