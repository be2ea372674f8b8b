//! Properties of the lossless layer over generated files in every dialect.

mod common;

use common::{assert_only_key_changed, changed_lines};
use proptest::prelude::*;
use serde_json::{Map, Value};
use spool_core::beads::json::{write_value, Escaping, Evidence, Format};
use spool_core::beads::node::Skimmed;
use spool_core::beads::{
    render_issue_with_line, BeadsFile, CommentId, Issue, LineEditor, LineError, LineKind,
    NewComment, NewDependency, NewIssue, NewLine, Severity, Timestamp,
};

// ---------- generators ----------

/// Text that exercises every escaping rule.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => Just(' '),
        1 => prop::sample::select(vec!['<', '>', '&', '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}']),
        1 => prop::sample::select(vec!['é', '∈', '😀', '\u{2028}', '\u{2029}', '\u{feff}']),
        1 => any::<char>(),
    ];
    prop::collection::vec(ch, 0..16).prop_map(String::from_iter)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        1u32..28,
        0u32..24,
        0u32..60,
        prop::sample::select(vec!["", ".5", ".123456", ".123456789"]),
        prop::sample::select(vec!["Z", "-08:00", "+05:30"]),
    )
        .prop_map(|(d, h, m, frac, zone)| {
            Timestamp::parse(&format!("2026-01-{d:02}T{h:02}:{m:02}:07{frac}{zone}"))
                .expect("valid timestamp")
        })
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:-]{1,8}",
        text().prop_filter("non-empty", |s| !s.is_empty())
    ]
}

fn new_issue(id: String) -> impl Strategy<Value = NewIssue> {
    (
        (
            text(),
            text(),
            text(),
            prop::sample::select(vec!["open", "in_progress", "closed", "review", ""]),
        ),
        (
            0i64..5,
            prop::sample::select(vec!["task", "bug", "epic", ""]),
            text(),
            prop::option::of(0i64..1000),
        ),
        (
            timestamp(),
            text(),
            prop::option::of(timestamp()),
            prop::collection::vec(label(), 0..4),
        ),
        prop::collection::vec(
            (
                "[a-z]-[0-9a-z]{1,4}",
                prop::sample::select(vec!["blocks", "parent-child"]),
                text(),
                timestamp(),
            ),
            0..3,
        ),
        prop::collection::vec(
            (
                prop_oneof![
                    (0i64..99).prop_map(CommentId::Int),
                    "[0-9a-f-]{4,12}".prop_map(CommentId::Str)
                ],
                text(),
                text(),
                timestamp(),
            ),
            0..3,
        ),
        prop::option::of(prop::collection::btree_map("[a-z]{1,4}", text(), 0..3)),
    )
        .prop_map(
            move |(
                (title, description, notes, status),
                (priority, issue_type, assignee, est),
                (created_at, created_by, closed_at, labels),
                deps,
                comments,
                metadata,
            )| {
                let mut n = NewIssue::new(id.clone(), title, created_at, created_by);
                n.description = description;
                n.notes = notes;
                n.status = status.to_string();
                n.priority = priority;
                n.issue_type = issue_type.to_string();
                n.assignee = assignee;
                n.estimated_minutes = est;
                n.closed_at = closed_at;
                n.labels = labels;
                n.metadata = metadata.map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                });
                n.dependencies = deps
                    .into_iter()
                    .map(|(on, t, by, at)| NewDependency {
                        issue_id: id.clone(),
                        depends_on_id: on,
                        dep_type: t.to_string(),
                        created_at: at,
                        created_by: by,
                        metadata: String::new(),
                        thread_id: String::new(),
                    })
                    .collect();
                n.comments = comments
                    .into_iter()
                    .map(|(cid, author, text, at)| NewComment {
                        id: cid,
                        issue_id: id.clone(),
                        author,
                        text,
                        created_at: at,
                    })
                    .collect();
                n
            },
        )
}

fn ids(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[a-z]{1,3}-[0-9a-z.]{1,4}", 1..max)
        .prop_map(|s| s.into_iter().collect())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn dialect() -> impl Strategy<Value = Format> {
    (any::<bool>(), any::<[bool; 5]>()).prop_map(|(spaced, [html, ls, ascii, short, slash])| {
        Format {
            item_sep: if spaced {
                b", ".to_vec()
            } else {
                b",".to_vec()
            },
            key_sep: if spaced {
                b": ".to_vec()
            } else {
                b":".to_vec()
            },
            escaping: Escaping {
                html,
                line_separators: ls,
                ascii_only: ascii,
                short_control: short,
                slash,
            },
        }
    })
}

/// An issue line in some writer's dialect, with unknown keys mixed in.
fn issue_line(id: String) -> impl Strategy<Value = Vec<u8>> {
    (
        text(),
        prop::sample::select(vec!["open", "closed", "in_progress"]),
        0i64..5,
        prop::collection::vec(label(), 0..3),
        prop::collection::vec(("x_[a-z]{1,5}", json_value()), 0..4),
        dialect(),
        any::<bool>(),
    )
        .prop_map(
            move |(title, status, priority, labels, unknown, fmt, unknown_first)| {
                let mut m = Map::new();
                if unknown_first {
                    for (k, v) in &unknown {
                        m.insert(k.clone(), v.clone());
                    }
                }
                m.insert("id".into(), Value::String(id.clone()));
                m.insert("title".into(), Value::String(title));
                m.insert("status".into(), Value::from(status));
                m.insert("priority".into(), Value::from(priority));
                if !labels.is_empty() {
                    m.insert(
                        "labels".into(),
                        labels.into_iter().map(Value::String).collect(),
                    );
                }
                for (k, v) in unknown {
                    m.insert(k, v);
                }
                let mut out = Vec::new();
                write_value(&mut out, &Value::Object(m), &fmt);
                out
            },
        )
}

/// A whole file: issue lines, plus blank and memory lines, LF or CRLF, with or without a
/// final newline.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    ids(10)
        .prop_flat_map(|ids| ids.into_iter().map(issue_line).collect::<Vec<_>>())
        .prop_flat_map(|lines| {
            let n = lines.len();
            (
                Just(lines),
                prop::collection::vec(0u8..10, n),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(lines, extras, crlf, final_newline)| {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut out = Vec::new();
            for (line, extra) in lines.iter().zip(extras) {
                match extra {
                    0 => out.extend_from_slice(eol),
                    1 => {
                        out.extend_from_slice(br#"{"_type":"memory","key":"k","value":"v"}"#);
                        out.extend_from_slice(eol);
                    }
                    _ => {}
                }
                out.extend_from_slice(line);
                out.extend_from_slice(eol);
            }
            if !final_newline {
                out.truncate(out.len() - eol.len());
            }
            out
        })
}

#[derive(Debug, Clone)]
enum Op {
    Set(&'static str, Value),
    Remove(&'static str),
    AddLabel(String),
    RemoveFirstLabel,
    AddComment(String),
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(vec![
        "title",
        "status",
        "notes",
        "assignee",
        "description",
        "owner",
        "x_new",
    ]);
    prop_oneof![
        (key.clone(), text()).prop_map(|(k, v)| Op::Set(k, Value::String(v))),
        (0i64..5).prop_map(|p| Op::Set("priority", Value::from(p))),
        key.prop_map(Op::Remove),
        label().prop_map(Op::AddLabel),
        Just(Op::RemoveFirstLabel),
        text().prop_map(Op::AddComment),
    ]
}

// ---------- checks ----------

fn assert_same_as_new(i: &Issue, n: &NewIssue) {
    assert_eq!(i.id, n.id);
    assert_eq!(i.title, n.title);
    assert_eq!(i.description, n.description);
    assert_eq!(i.notes, n.notes);
    assert_eq!(i.status, n.status);
    assert_eq!(i.priority, n.priority);
    assert_eq!(i.issue_type_raw, n.issue_type);
    assert_eq!(i.assignee, n.assignee);
    assert_eq!(i.estimated_minutes, n.estimated_minutes);
    assert_eq!(i.created_at.as_ref(), Some(&n.created_at));
    assert_eq!(i.created_by, n.created_by);
    assert_eq!(i.closed_at, n.closed_at);
    let mut labels = n.labels.clone();
    labels.sort();
    labels.dedup();
    assert_eq!(i.labels, labels);
    let metadata = n
        .metadata
        .clone()
        .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()));
    assert_eq!(i.metadata.as_deref(), metadata.as_ref());
    assert_eq!(i.dependencies.len(), n.dependencies.len());
    for (d, nd) in i.dependencies.iter().zip(&n.dependencies) {
        assert_eq!(
            (
                &d.issue_id,
                &d.depends_on_id,
                &d.dep_type,
                d.created_at.as_deref()
            ),
            (
                &nd.issue_id,
                &nd.depends_on_id,
                &nd.dep_type,
                Some(&nd.created_at)
            )
        );
        assert_eq!(d.created_by.as_ref(), Some(&nd.created_by));
    }
    assert_eq!(i.comments.len(), n.comments.len());
    for (c, nc) in i.comments.iter().zip(&n.comments) {
        assert_eq!(
            (c.id.as_ref(), &c.author, &c.text, c.created_at.as_ref()),
            (Some(&nc.id), &nc.author, &nc.text, Some(&nc.created_at))
        );
    }
}

/// A written value never shows an escaping choice the line's own bytes contradict.
fn assert_same_dialect(line: &Evidence, value: &Evidence) {
    let dims = [
        (
            "html",
            (line.html_escaped, line.html_raw),
            (value.html_escaped, value.html_raw),
        ),
        (
            "non-ASCII",
            (line.non_ascii_escaped, line.non_ascii_raw),
            (value.non_ascii_escaped, value.non_ascii_raw),
        ),
        (
            "U+2028/9",
            (line.line_sep_escaped, line.line_sep_raw),
            (value.line_sep_escaped, value.line_sep_raw),
        ),
        (
            "\\b \\f",
            (line.control_short, line.control_long),
            (value.control_short, value.control_long),
        ),
        (
            "slash",
            (line.slash_escaped, line.slash_raw),
            (value.slash_escaped, value.slash_raw),
        ),
    ];
    for (name, (le, lr), (ve, vr)) in dims {
        if le > 0 && lr == 0 {
            assert_eq!(vr, 0, "{name}: line escapes, value is raw");
        }
        if lr > 0 && le == 0 {
            assert_eq!(ve, 0, "{name}: line is raw, value escapes");
        }
    }
}

/// Applies `op` to the line of `old` (the issue `target`).
fn apply(e: &mut LineEditor, op: &Op, old: &Issue, target: &str) -> Result<(), LineError> {
    match op {
        Op::Set(k, v) => e.set(k, v.clone()),
        Op::Remove(k) => e.remove(k).map(|_| ()),
        Op::AddLabel(l) => e.add_label(l).map(|_| ()),
        Op::RemoveFirstLabel => match old.labels.first() {
            Some(l) => e.remove_label(l).map(|_| ()),
            None => Ok(()),
        },
        Op::AddComment(t) => e.add_comment(&NewComment {
            id: CommentId::Int(1),
            issue_id: target.to_string(),
            author: "a".into(),
            text: t.clone(),
            created_at: Timestamp::parse("2026-01-01T00:00:00Z").expect("ts"),
        }),
    }
}

fn lines(maps: &[Map<String, Value>]) -> Vec<NewLine> {
    maps.iter().cloned().map(NewLine::of_map).collect()
}

fn no_errors(bytes: &[u8]) -> BeadsFile {
    let (file, diags) = BeadsFile::parse(bytes);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "{errors:?}\n{}",
        String::from_utf8_lossy(bytes)
    );
    file
}

proptest! {
    #[test]
    fn new_issues_parse_back_to_identical_values(
        issues in ids(12)
            .prop_flat_map(|ids| ids.into_iter().map(new_issue).collect::<Vec<_>>())
            .prop_shuffle()
    ) {
        let mut file = BeadsFile::parse(b"").0;
        for n in &issues {
            file.insert(n).expect("insert");
        }
        let bytes = file.to_bytes();
        let reparsed = no_errors(&bytes);
        prop_assert_eq!(&reparsed, &file);
        let order: Vec<&str> = reparsed.issues().map(|i| i.id.as_str()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(order, sorted);
        for n in &issues {
            assert_same_as_new(reparsed.get(&n.id).expect("inserted"), n);
        }
        // Go escaping: none of these appear raw in a classic bd line.
        let text = String::from_utf8(bytes).expect("utf8");
        let raw_forbidden = text.contains(['<', '>', '&', '\u{2028}', '\u{2029}', '\u{8}', '\u{c}']);
        prop_assert!(!raw_forbidden, "raw character Go would escape in {}", text);
    }

    #[test]
    fn unmodified_files_round_trip_byte_for_byte(bytes in file_bytes()) {
        let file = no_errors(&bytes);
        prop_assert_eq!(file.to_bytes(), bytes);
    }

    #[test]
    fn random_edit_changes_exactly_that_line(bytes in file_bytes(), pick in any::<prop::sample::Index>(), op in op()) {
        let (mut file, _) = BeadsFile::parse(&bytes);
        let before_issues: Vec<Issue> = file.issues().cloned().collect();
        let target = pick.get(&before_issues).id.clone();
        let line_no = file.line_of(&target).expect("present");
        let old_line = file.lines()[line_no - 1].bytes().to_vec();
        let old = file.get(&target).expect("present").clone();

        let edited = file
            .edit(&target, |e| apply(e, &op, &old, &target))
            .expect("edit applies");
        prop_assert_eq!(edited.line, line_no);
        let after = file.to_bytes();
        let changed = changed_lines(&bytes, &after);
        if edited.changed {
            prop_assert_eq!(changed, vec![line_no]);
        } else {
            prop_assert!(changed.is_empty());
        }
        let new_line = file.lines()[line_no - 1].bytes().to_vec();
        let keys: &[&str] = match &op {
            Op::Set(k, _) | Op::Remove(k) => &[k],
            Op::AddLabel(_) | Op::RemoveFirstLabel => &["labels"],
            Op::AddComment(_) => &["comments"],
        };
        assert_only_key_changed(&old_line, &new_line, keys);
        if let Op::Set(k, _) = &op {
            let value = common::member_bytes(&new_line)
                .into_iter()
                .find(|(name, _, _)| name == k)
                .map(|(_, _, v)| v)
                .expect("set key present");
            assert_same_dialect(&Evidence::scan(&old_line), &Evidence::scan(&value));
        }

        let reparsed = no_errors(&after);
        prop_assert_eq!(&reparsed, &file);
        for i in &before_issues {
            if i.id != target {
                prop_assert_eq!(reparsed.get(&i.id), Some(i));
            }
        }
        let now = reparsed.get(&target).expect("still there");
        match &op {
            Op::Set("title", v) => prop_assert_eq!(Some(now.title.as_str()), v.as_str()),
            Op::Set("notes", v) => prop_assert_eq!(Some(now.notes.as_str()), v.as_str()),
            Op::Set("priority", v) => prop_assert_eq!(Some(now.priority), v.as_i64()),
            Op::Remove("title") => prop_assert_eq!(now.title.as_str(), ""),
            Op::AddLabel(l) => prop_assert!(now.labels.contains(l)),
            Op::RemoveFirstLabel => {
                if let Some(l) = old.labels.first() {
                    prop_assert!(!now.labels.contains(l));
                }
            }
            Op::AddComment(t) => prop_assert_eq!(&now.comments.last().expect("comment").text, t),
            _ => {}
        }
    }

    #[test]
    fn a_skimmed_file_reads_and_edits_as_the_full_file(
        bytes in file_bytes(),
        pick in any::<prop::sample::Index>(),
        op in op(),
        new in new_issue("zz-new".to_string()),
    ) {
        let (mut full, full_diags) = BeadsFile::parse(&bytes);
        let (mut skim, skim_diags) = BeadsFile::parse_skim(bytes.clone());
        prop_assert_eq!(&skim_diags, &full_diags);
        prop_assert!(skim.shapes().eq(full.shapes()));
        // A skimmed file keeps no titles.
        let skimmed = |i: &Issue| Skimmed::from(Issue { title: String::new(), ..i.clone() });
        let expected: Vec<Skimmed> = full.issues().map(skimmed).collect();
        let got: Vec<Skimmed> = skim.issues().cloned().collect();
        prop_assert_eq!(got, expected);
        let issues: Vec<Issue> = full.issues().cloned().collect();
        for i in &issues {
            prop_assert_eq!(skim.get_full(&i.id), Some(i.clone()));
            prop_assert_eq!(skim.render(&i.id), full.render(&i.id));
        }
        let old = pick.get(&issues).clone();
        let a = full.edit(&old.id, |e| apply(e, &op, &old, &old.id)).expect("edit applies");
        let b = skim.edit(&old.id, |e| apply(e, &op, &old, &old.id)).expect("edit applies");
        prop_assert_eq!(a, b);
        prop_assert_eq!(skim.to_bytes(), full.to_bytes());
        prop_assert_eq!(skim.get_full(&old.id), full.get(&old.id).cloned());
        prop_assert_eq!(
            skim.get(&old.id).cloned(),
            full.get(&old.id).map(skimmed)
        );
        prop_assert_eq!(skim.insert(&new).ok(), full.insert(&new).ok());
        prop_assert_eq!(skim.to_bytes(), full.to_bytes());
        let ids: Vec<&str> = issues.iter().map(|i| i.id.as_str()).step_by(2).collect();
        prop_assert_eq!(skim.typed_lines(&ids), full.typed_lines(&ids));
    }

    #[test]
    fn inserting_many_at_once_places_lines_as_inserting_them_one_by_one(
        existing in ids(10).prop_flat_map(|ids| Just(ids).prop_shuffle()),
        fresh in ids(8).prop_flat_map(|ids| Just(ids).prop_shuffle()),
        trailing_record in any::<bool>(),
        final_newline in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        // Existing lines in any order (not only id order), maybe a record after them.
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for id in &existing {
            text += &format!("{{\"id\":\"{id}\",\"title\":\"t\"}}{eol}");
        }
        if trailing_record {
            text += &format!("{{\"_type\":\"memory\",\"key\":\"k\",\"value\":\"v\"}}{eol}");
        }
        if !final_newline {
            text.truncate(text.len() - eol.len());
        }
        let fresh: Vec<&String> = fresh.iter().filter(|f| !existing.contains(f)).collect();
        let maps: Vec<Map<String, Value>> = fresh
            .iter()
            .map(|id| {
                let mut m = Map::new();
                m.insert("id".into(), Value::from(id.as_str()));
                m.insert("title".into(), Value::from(format!("new {id}")));
                m
            })
            .collect();
        let (mut one, _) = BeadsFile::parse(text.as_bytes());
        for m in &maps {
            one.insert_map(m.clone()).expect("insert");
        }
        let (mut many, _) = BeadsFile::parse(text.as_bytes());
        many.insert_lines(lines(&maps)).expect("insert all");
        prop_assert_eq!(many.to_bytes(), one.to_bytes());
        // The rule itself: each new line right before the first existing issue line whose
        // id sorts after it (byte-wise), else after the last one; new lines at one place
        // in id order.
        let first_greater = |x: &str| existing.iter().position(|e| e.as_bytes() > x.as_bytes());
        let at = |k: Option<usize>| {
            let mut here: Vec<String> = fresh
                .iter()
                .filter(|x| first_greater(x) == k)
                .map(|x| x.to_string())
                .collect();
            here.sort();
            here
        };
        let mut order: Vec<String> = Vec::new();
        for (k, e) in existing.iter().enumerate() {
            order.extend(at(Some(k)));
            order.push(e.clone());
        }
        order.extend(at(None));
        let got: Vec<String> = many.issues().map(|i| i.id.clone()).collect();
        prop_assert_eq!(got, order);
        for id in existing.iter().chain(fresh.iter().copied()) {
            prop_assert_eq!(many.line_of(id), one.line_of(id));
        }
        let (mut skimmed, _) = BeadsFile::parse_skim(text.clone().into_bytes());
        skimmed.insert_lines(lines(&maps)).expect("insert all");
        prop_assert_eq!(skimmed.to_bytes(), one.to_bytes());
        // Refused as a whole: an id given twice, or one already in the file.
        let (mut refused, _) = BeadsFile::parse(text.as_bytes());
        let mut twice = maps.clone();
        twice.extend(maps.first().cloned());
        prop_assert!(maps.is_empty() || refused.insert_lines(lines(&twice)).is_err());
        let mut taken = maps;
        taken.push(Map::from_iter([("id".to_string(), Value::from(existing[0].as_str()))]));
        prop_assert!(refused.insert_lines(lines(&taken)).is_err());
        prop_assert_eq!(refused.to_bytes(), text.into_bytes());
    }

    #[test]
    fn unknown_keys_survive_edits_and_reach_rendered_output(bytes in file_bytes()) {
        let (mut file, _) = BeadsFile::parse(&bytes);
        let ids: Vec<String> = file.issues().map(|i| i.id.clone()).collect();
        for id in &ids {
            let n = file.line_of(id).expect("present");
            let raw: Map<String, Value> = serde_json::from_slice(file.lines()[n - 1].bytes()).expect("object");
            file.edit(id, |e| e.set("status", "deferred")).expect("edit");
            let line = file.lines()[n - 1].bytes().to_vec();
            let now: Map<String, Value> = serde_json::from_slice(&line).expect("object");
            let rendered = render_issue_with_line(file.get(id).expect("present"), &line);
            for (k, v) in raw.iter().filter(|(k, _)| k.starts_with("x_")) {
                prop_assert_eq!(now.get(k), Some(v));
                prop_assert_eq!(rendered.get(k), Some(v));
            }
        }
        let reparsed = no_errors(&file.to_bytes());
        prop_assert!(reparsed.lines().iter().all(|l| !matches!(l.kind(), LineKind::Invalid(_))));
    }
}
