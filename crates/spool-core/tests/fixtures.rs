//! The lossless layer against real backlog files written by every bd generation and port.

mod common;

use common::{assert_only_key_changed, changed_lines, jsonl_fixtures, split_lines};
use serde_json::Value;
use spool_core::beads::{
    BeadsFile, CommentId, DiagnosticKind, EditError, LineKind, NewComment, NewIssue, RecordKind,
    Severity, Timestamp,
};

const DELETIONS: &str = "deletions";
const ODD: &str = "Dicklesworthstone__frankenredis__odd-mixed-writers-spaced-escapes.jsonl";

fn fixture(name: &str) -> Vec<u8> {
    jsonl_fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("fixture {name} missing"))
}

#[test]
fn every_fixture_loads_without_errors_and_round_trips_byte_for_byte() {
    for (name, bytes) in jsonl_fixtures() {
        let (file, diags) = BeadsFile::parse(&bytes);
        assert_eq!(
            file.to_bytes(),
            bytes,
            "{name}: to_bytes differs from the input"
        );
        assert_eq!(
            file.lines().len(),
            split_lines(&bytes).len(),
            "{name}: line count"
        );
        let errors: Vec<_> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if name.contains(DELETIONS) {
            // Not an issues file; it must only load.
            continue;
        }
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert!(file.issues().count() > 0, "{name}: no issues");
        let warnings: Vec<_> = diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .collect();
        if name != ODD {
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }
}

#[test]
fn memory_lines_and_tombstones_are_kept_in_their_roles() {
    let bytes = fixture("maphew__mybd__v1-type-memory-uuid-comments.jsonl");
    let (file, _) = BeadsFile::parse(&bytes);
    let memories = file
        .lines()
        .iter()
        .filter(|l| matches!(l.kind(), LineKind::Record(RecordKind::Memory)))
        .count();
    assert_eq!(memories, 3);
    assert_eq!(file.issues().count(), 109);

    let bytes = fixture("steveyegge__beads__v0.47.0-classic-large-tombstones-gates.jsonl");
    let (file, _) = BeadsFile::parse(&bytes);
    assert_eq!(file.issues().filter(|i| i.is_tombstone()).count(), 338);
    assert_eq!(file.issues().count(), 1955);
}

#[test]
fn duplicate_id_is_reported_and_edits_to_it_refuse() {
    let bytes = fixture(ODD);
    let (mut file, diags) = BeadsFile::parse(&bytes);
    let dup: Vec<_> = diags
        .iter()
        .filter(|d| d.kind == DiagnosticKind::DuplicateId)
        .collect();
    assert_eq!(dup.len(), 1, "{dup:?}");
    assert_eq!(dup[0].line, 1143);
    assert_eq!(dup[0].severity, Severity::Warning);
    assert!(dup[0].message.contains("frankenredis-ehnk") && dup[0].message.contains("442"));
    assert_eq!(file.line_of("frankenredis-ehnk"), Some(1143));

    let err = file
        .edit("frankenredis-ehnk", |e| e.set("status", "open"))
        .expect_err("duplicated id must refuse");
    assert_eq!(
        err,
        EditError::Duplicate {
            id: "frankenredis-ehnk".into(),
            lines: vec![442, 1143]
        }
    );
    assert_eq!(
        err.to_string(),
        "issue frankenredis-ehnk appears on lines 442 and 1143; remove one of them (keep the one you want) and retry"
    );
    assert_eq!(file.to_bytes(), bytes);

    // Writes to another id leave both duplicate lines alone.
    let other = file
        .issues()
        .find(|i| i.id != "frankenredis-ehnk")
        .expect("another issue")
        .id
        .clone();
    let edited = file
        .edit(&other, |e| e.set("status", "in_progress"))
        .expect("edit");
    let after = file.to_bytes();
    assert_eq!(changed_lines(&bytes, &after), vec![edited.line]);
    assert!(edited.line != 442 && edited.line != 1143);
}

/// Picks issues spread over the file (first, last and evenly between), skipping
/// duplicated ids.
fn sample_ids(file: &BeadsFile, n: usize) -> Vec<String> {
    let dups: Vec<&str> = file.duplicates().map(|(id, _)| id).collect();
    let ids: Vec<String> = file
        .issues()
        .filter(|i| !dups.contains(&i.id.as_str()))
        .map(|i| i.id.clone())
        .collect();
    let step = (ids.len() / n).max(1);
    let mut out: Vec<String> = ids.iter().step_by(step).cloned().collect();
    if let Some(last) = ids.last() {
        out.push(last.clone());
    }
    out.dedup();
    out
}

fn line_bytes(file: &BeadsFile, id: &str) -> Vec<u8> {
    let n = file.line_of(id).expect("issue present");
    file.lines()[n - 1].bytes().to_vec()
}

/// Applies `edit` to issue `id`, then checks that exactly that line changed and that all
/// members but `keys` kept their bytes.
fn check_edit(
    file: &mut BeadsFile,
    name: &str,
    id: &str,
    keys: &[&str],
    edit: impl FnOnce(&mut spool_core::beads::LineEditor) -> Result<(), spool_core::beads::LineError>,
) {
    let before = file.to_bytes();
    let old_line = line_bytes(file, id);
    let edited = file
        .edit(id, edit)
        .unwrap_or_else(|e| panic!("{name}: {id}: {e}"));
    assert!(edited.changed, "{name}: {id}: nothing changed");
    let after = file.to_bytes();
    assert_eq!(
        changed_lines(&before, &after),
        vec![edited.line],
        "{name}: {id}"
    );
    let new_line = line_bytes(file, id);
    assert_only_key_changed(&old_line, &new_line, keys);
    // The new line alone parses as the same issue the file now holds.
    let (alone, diags) = BeadsFile::parse(&new_line);
    assert!(diags.is_empty(), "{name}: {id}: {diags:?}");
    assert_eq!(alone.get(id), file.get(id), "{name}: {id}");
}

#[test]
fn one_field_edits_change_exactly_one_line_in_every_fixture() {
    for (name, bytes) in jsonl_fixtures() {
        if name.contains(DELETIONS) {
            continue;
        }
        let (mut file, _) = BeadsFile::parse(&bytes);
        for id in sample_ids(&file, 6) {
            let old = file.get(&id).expect("present").clone();

            let status = if old.status == "in_progress" {
                "open"
            } else {
                "in_progress"
            };
            check_edit(&mut file, &name, &id, &["status"], |e| {
                e.set("status", status)
            });
            assert_eq!(file.get(&id).expect("present").status, status);

            let label = "spool-edit-test";
            check_edit(&mut file, &name, &id, &["labels"], |e| {
                e.add_label(label).map(|_| ())
            });
            let labels = &file.get(&id).expect("present").labels;
            let mut without: Vec<String> = labels.clone();
            without.retain(|l| l != label);
            assert_eq!(without, old.labels, "{name}: {id}: other labels changed");
            assert!(labels.iter().any(|l| l == label));

            let notes = "edited: <b> & \"q\" \\ é ∈ 😀 \u{2028} \u{8}";
            check_edit(&mut file, &name, &id, &["notes"], |e| e.set("notes", notes));
            assert_eq!(file.get(&id).expect("present").notes, notes);

            let comment = NewComment {
                id: CommentId::Int(999_999),
                issue_id: id.clone(),
                author: "spool".into(),
                text: "a <comment>".into(),
                created_at: Timestamp::parse("2026-11-30T01:02:03Z").expect("timestamp"),
            };
            check_edit(&mut file, &name, &id, &["comments"], |e| {
                e.add_comment(&comment)
            });
            let comments = &file.get(&id).expect("present").comments;
            assert_eq!(comments.len(), old.comments.len() + 1);
            assert_eq!(
                comments[..old.comments.len()],
                old.comments[..],
                "{name}: {id}"
            );

            if !old.title.is_empty() {
                check_edit(&mut file, &name, &id, &["title"], |e| {
                    e.remove("title").map(|_| ())
                });
                assert_eq!(file.get(&id).expect("present").title, "");
            }
        }
        // The whole edited file still loads cleanly.
        let (_, diags) = BeadsFile::parse(&file.to_bytes());
        assert!(
            diags.iter().all(|d| d.severity == Severity::Warning),
            "{name}: {diags:?}"
        );
    }
}

/// The bytes of one member's value in a line.
fn value_bytes(line: &[u8], key: &str) -> Vec<u8> {
    common::member_bytes(line)
        .into_iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, _, v)| v)
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn edits_keep_each_lines_escaping_and_separators() {
    let bytes = fixture(ODD);
    let (mut file, _) = BeadsFile::parse(&bytes);
    // A spaced line whose writer escaped non-ASCII (Python ensure_ascii).
    let spaced_ascii = file
        .lines()
        .iter()
        .find(|l| {
            l.bytes().starts_with(b"{\"id\": ") && l.bytes().windows(6).any(|w| w == b"\\u2208")
        })
        .and_then(|l| l.issue())
        .expect("a spaced ensure_ascii line")
        .id
        .clone();
    file.edit(&spaced_ascii, |e| {
        e.set("notes", "x ∈ y <z> & 😀")?;
        e.set("assignee", "ü")
    })
    .expect("edit");
    let line = line_bytes(&file, &spaced_ascii);
    assert_eq!(
        value_bytes(&line, "notes"),
        br#""x \u2208 y <z> & \ud83d\ude00""#
    );
    let text = String::from_utf8(line).expect("utf8");
    assert!(text.contains(r#", "notes": "x \u2208"#), "{text}");
    assert!(text.contains(r#""assignee": "\u00fc""#), "{text}");

    // A compact raw-UTF-8 line of the other writer in the same file keeps raw UTF-8.
    let compact = file
        .issues()
        .find(|i| {
            let n = file.line_of(&i.id).expect("line");
            let b = file.lines()[n - 1].bytes();
            b.starts_with(b"{\"id\":\"") && b.iter().any(|c| *c >= 0x80)
        })
        .expect("a compact raw UTF-8 line")
        .id
        .clone();
    file.edit(&compact, |e| e.set("notes", "x ∈ y <z>"))
        .expect("edit");
    assert_eq!(
        value_bytes(&line_bytes(&file, &compact), "notes"),
        "\"x ∈ y <z>\"".as_bytes()
    );

    // Classic bd lines escape like Go.
    let bytes = fixture("steveyegge__beads__v0.47.0-classic-large-tombstones-gates.jsonl");
    let (mut file, _) = BeadsFile::parse(&bytes);
    let id = file.issues().next().expect("issue").id.clone();
    file.edit(&id, |e| e.set("notes", "a <b> & c é \u{2028}"))
        .expect("edit");
    assert_eq!(
        value_bytes(&line_bytes(&file, &id), "notes"),
        br#""a \u003cb\u003e \u0026 c "#.iter().chain("é \\u2028\"".as_bytes()).copied().collect::<Vec<u8>>()
    );
}

#[test]
fn new_keys_go_where_classic_bd_puts_them() {
    let bytes = fixture("trmdy__design-parity-checker__classic-hyphen-prefix.jsonl");
    let (mut file, _) = BeadsFile::parse(&bytes);
    let id = file
        .issues()
        .find(|i| i.assignee.is_empty() && i.closed_at.is_some())
        .expect("an unassigned closed issue")
        .id
        .clone();
    file.edit(&id, |e| {
        e.set("assignee", "me")?;
        e.set("close_reason", "done")
    })
    .expect("edit");
    let keys: Vec<String> = common::member_bytes(&line_bytes(&file, &id))
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    let pos = |k: &str| {
        keys.iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} missing in {keys:?}"))
    };
    assert_eq!(pos("assignee"), pos("issue_type") + 1);
    assert_eq!(pos("close_reason"), pos("closed_at") + 1);
}

#[test]
fn insert_goes_to_the_id_sorted_position() {
    let bytes = fixture("steveyegge__beads__704affb9-classic-nested-child-ids.jsonl");
    let (mut file, _) = BeadsFile::parse(&bytes);
    let ids: Vec<String> = file.issues().map(|i| i.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "fixture is sorted");
    let new_id = format!("{}0", ids[ids.len() / 2]);
    let now = Timestamp::parse("2026-11-30T01:02:03Z").expect("timestamp");
    let n = file
        .insert(&NewIssue::new(new_id.clone(), "Inserted <x>", now, "spool"))
        .expect("insert");
    let after = file.to_bytes();
    let (a, b) = (split_lines(&bytes), split_lines(&after));
    assert_eq!(b.len(), a.len() + 1);
    assert_eq!(&b[..n - 1], &a[..n - 1]);
    assert_eq!(&b[n..], &a[n - 1..]);
    let (reparsed, diags) = BeadsFile::parse(&after);
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<&str> = reparsed.issues().map(|i| i.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "still sorted");
    assert_eq!(
        reparsed.get(&new_id).expect("inserted").title,
        "Inserted <x>"
    );
    assert!(String::from_utf8_lossy(b[n - 1]).contains(r#""title":"Inserted \u003cx\u003e""#));
    assert_eq!(
        file.insert(&NewIssue::new(
            new_id.clone(),
            "again",
            Timestamp::parse("2026-11-30T01:02:03Z").expect("ts"),
            ""
        )),
        Err(EditError::AlreadyExists {
            id: new_id,
            line: n
        })
    );
}

#[test]
fn render_gives_bd_shaped_json_with_unknown_keys() {
    let bytes = fixture("Dicklesworthstone__frankenredis__br-source-repo-custom-status.jsonl");
    let (file, _) = BeadsFile::parse(&bytes);
    let issue = file
        .issues()
        .find(|i| !i.comments.is_empty())
        .expect("issue with comments");
    let v = file.render(&issue.id).expect("rendered");
    assert_eq!(v["source_repo"], ".");
    assert!(v["comments"][0]["id"].is_string());
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys[0], "id");
    assert_eq!(keys[1], "title");
    assert!(matches!(v["priority"], Value::Number(_)));
}

#[test]
fn lines_without_escaping_evidence_follow_their_neighbours() {
    let silent = |b: &[u8]| {
        !b.iter().any(|c| matches!(c, b'<' | b'>' | b'&'))
            && !b.windows(6).any(|w| w == b"\\u003c" || w == b"\\u0026")
    };
    for (name, expected) in [
        (
            "Dicklesworthstone__beads_rust__br-large-nested-ids.jsonl",
            &b"\"<x> & y\""[..],
        ),
        (
            "steveyegge__beads__v0.47.0-classic-large-tombstones-gates.jsonl",
            br#""\u003cx\u003e \u0026 y""#,
        ),
    ] {
        let bytes = fixture(name);
        let (mut file, _) = BeadsFile::parse(&bytes);
        let id = file
            .lines()
            .iter()
            .filter(|l| silent(l.bytes()))
            .find_map(|l| l.issue())
            .expect("a line with no evidence of its own")
            .id
            .clone();
        file.edit(&id, |e| e.set("notes", "<x> & y")).expect("edit");
        assert_eq!(
            value_bytes(&line_bytes(&file, &id), "notes"),
            expected,
            "{name}"
        );
    }
}
