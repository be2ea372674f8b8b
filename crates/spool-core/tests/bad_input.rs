//! Broken and unusual lines: each is kept verbatim and reported on the right line.

use spool_core::beads::{
    BeadsFile, Diagnostic, DiagnosticKind, EditError, LineEnding, LineError, LineKind, NewIssue,
    RecordKind, Severity, Timestamp,
};

const GOOD_A: &str = r#"{"id":"t-a","title":"A","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
const GOOD_C: &str = r#"{"id":"t-c","title":"C","status":"open","priority":1,"issue_type":"bug","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;

/// Parses `GOOD_A`, `bad`, `GOOD_C` and returns the file and its diagnostics.
fn sandwich(bad: &[u8]) -> (BeadsFile, Vec<Diagnostic>) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(GOOD_A.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(bad);
    bytes.push(b'\n');
    bytes.extend_from_slice(GOOD_C.as_bytes());
    bytes.push(b'\n');
    let (file, diags) = BeadsFile::parse(&bytes);
    assert_eq!(file.to_bytes(), bytes, "kept verbatim");
    assert_eq!(file.issues().count(), 2, "the good lines still load");
    (file, diags)
}

fn only_diag(bad: &[u8]) -> Diagnostic {
    let (file, diags) = sandwich(bad);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = diags.into_iter().next().expect("one diagnostic");
    assert_eq!(d.line, 2);
    assert_eq!(file.lines()[1].kind(), &LineKind::Invalid(d.kind));
    assert_eq!(d.severity, Severity::Error);
    d
}

#[test]
fn invalid_json_names_the_problem_and_column() {
    let d = only_diag(br#"{"id":"t-b" "title":"B"}"#);
    assert_eq!(d.kind, DiagnosticKind::InvalidJson);
    assert_eq!(d.message, "invalid JSON: expected `,` or `}` at column 13");
    assert_eq!(
        d.to_string(),
        "line 2: error: invalid JSON: expected `,` or `}` at column 13"
    );
    assert_eq!(
        only_diag(b"{\"id\":\"t-b\"}}").kind,
        DiagnosticKind::InvalidJson
    );
    assert_eq!(only_diag(b"not json").kind, DiagnosticKind::InvalidJson);
}

#[test]
fn truncated_line_is_its_own_kind() {
    let d = only_diag(br#"{"id":"t-b","title":"B","descr"#);
    assert_eq!(d.kind, DiagnosticKind::Truncated);
    assert!(
        d.message.starts_with("truncated JSON: EOF while parsing"),
        "{}",
        d.message
    );
}

#[test]
fn invalid_utf8_reports_the_byte_column() {
    let d = only_diag(b"{\"id\":\"t-b\",\"title\":\"\xff\"}");
    assert_eq!(d.kind, DiagnosticKind::InvalidUtf8);
    assert_eq!(d.message, "invalid UTF-8 at column 22");
}

#[test]
fn git_conflict_markers_each_get_the_resolution_hint() {
    let text = format!(
        "{GOOD_A}\n<<<<<<< HEAD\n{GOOD_C}\n=======\n{}\n>>>>>>> theirs\n",
        GOOD_C.replace("\"C\"", "\"C2\"")
    );
    let (file, diags) = BeadsFile::parse(text.as_bytes());
    assert_eq!(file.to_bytes(), text.as_bytes());
    let markers: Vec<_> = diags
        .iter()
        .filter(|d| d.kind == DiagnosticKind::ConflictMarker)
        .collect();
    assert_eq!(
        markers.iter().map(|d| d.line).collect::<Vec<_>>(),
        [2, 4, 6]
    );
    assert!(markers.iter().all(|d| d.message
        == "git conflict marker: resolve the merge (keep both sides' lines, remove the markers) and run spool doctor"));
    // Both sides' lines are read; the same id on both sides is a duplicate.
    let dup: Vec<_> = diags
        .iter()
        .filter(|d| d.kind == DiagnosticKind::DuplicateId)
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].line, 5);
    assert!(dup[0].message.contains("line 3"), "{}", dup[0].message);
    assert_eq!(file.get("t-c").expect("last wins").title, "C2");
    let diff3 = only_diag(b"||||||| base");
    assert_eq!(diff3.kind, DiagnosticKind::ConflictMarker);
}

#[test]
fn non_objects_are_rejected() {
    for (bad, what) in [
        (&b"[1,2]"[..], "an array"),
        (b"[\"t-b\",\"title\"]", "an array"),
        (b"\"t-b\"", "a string"),
        (b"42", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ] {
        let d = only_diag(bad);
        assert_eq!(
            d.kind,
            DiagnosticKind::NotAnObject,
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert!(d.message.contains(what), "{}", d.message);
    }
}

#[test]
fn missing_or_empty_id_is_an_error() {
    for bad in [
        &br#"{"title":"B","priority":1}"#[..],
        br#"{"id":"","title":"B"}"#,
        b"{}",
    ] {
        let d = only_diag(bad);
        assert_eq!(d.kind, DiagnosticKind::MissingId);
        assert!(d.message.starts_with("missing \"id\""), "{}", d.message);
    }
}

#[test]
fn wrong_field_types_name_the_field() {
    let d = only_diag(br#"{"id":"t-b","title":"B","priority":"high"}"#);
    assert_eq!(d.kind, DiagnosticKind::FieldType);
    assert_eq!(
        d.message,
        r#"field "priority": priority must be an integer, got "high""#
    );
    let d = only_diag(br#"{"id":"t-b","title":"B","labels":"x"}"#);
    assert_eq!(d.kind, DiagnosticKind::FieldType);
    assert!(
        d.message
            .starts_with(r#"field "labels": invalid type: string "x""#),
        "{}",
        d.message
    );
    let d = only_diag(br#"{"id":"t-b","created_at":"yesterday"}"#);
    assert_eq!(
        d.message,
        r#"field "created_at": invalid RFC3339 timestamp "yesterday""#
    );
    let d = only_diag(br#"{"id":7,"title":"B"}"#);
    assert!(
        d.message
            .starts_with(r#"field "id": invalid type: integer `7`"#),
        "{}",
        d.message
    );
}

#[test]
fn memory_and_header_lines_are_records_not_issues_or_errors() {
    let (file, diags) = sandwich(br#"{"_type":"memory","key":"k","value":"v"}"#);
    assert!(diags.is_empty());
    assert_eq!(
        file.lines()[1].kind(),
        &LineKind::Record(RecordKind::Memory)
    );
    let (file, diags) = sandwich(br#"{"_schema":"beads-jsonl/1","_sort":"stable-v1"}"#);
    assert!(diags.is_empty());
    assert_eq!(
        file.lines()[1].kind(),
        &LineKind::Record(RecordKind::Header)
    );
    // Records are not held to an issue's field types.
    let (file, diags) =
        sandwich(br#"{"_type":"memory","key":"k","value":"v","labels":"not-a-list"}"#);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        file.lines()[1].kind(),
        &LineKind::Record(RecordKind::Memory)
    );
    let (file, diags) = sandwich(br#"{"_schema":"beads-jsonl/2","priority":"n/a"}"#);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        file.lines()[1].kind(),
        &LineKind::Record(RecordKind::Header)
    );
    let (file, diags) =
        BeadsFile::parse(br#"{"_type":"issue","id":"t-b","title":"B","dependency_count":0}"#);
    assert!(diags.is_empty());
    assert_eq!(file.get("t-b").expect("a v1 issue line").title, "B");
}

#[test]
fn crlf_blank_lines_and_missing_final_newline_round_trip() {
    let text = format!("\r\n{GOOD_A}\r\n\n   \n{GOOD_C}");
    let (file, diags) = BeadsFile::parse(text.as_bytes());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(file.to_bytes(), text.as_bytes());
    let endings: Vec<LineEnding> = file.lines().iter().map(|l| l.ending()).collect();
    assert_eq!(
        endings,
        [
            LineEnding::CrLf,
            LineEnding::CrLf,
            LineEnding::Lf,
            LineEnding::Lf,
            LineEnding::None
        ]
    );
    assert_eq!(file.lines()[3].kind(), &LineKind::Blank);
    assert_eq!(file.issues().count(), 2);
    let (empty, diags) = BeadsFile::parse(b"");
    assert!(diags.is_empty() && empty.lines().is_empty() && empty.to_bytes().is_empty());
}

#[test]
fn edits_on_crlf_lines_keep_crlf_and_inserts_keep_the_missing_final_newline() {
    let text = format!("{GOOD_A}\r\n{GOOD_C}");
    let (mut file, _) = BeadsFile::parse(text.as_bytes());
    file.edit("t-a", |e| e.set("status", "closed"))
        .expect("edit");
    let expected = format!("{}\r\n{GOOD_C}", GOOD_A.replace("\"open\"", "\"closed\""));
    assert_eq!(String::from_utf8(file.to_bytes()).expect("utf8"), expected);

    let now = Timestamp::parse("2026-02-01T00:00:00Z").expect("timestamp");
    assert_eq!(
        file.insert(&NewIssue::new("t-d", "D", now.clone(), "me"))
            .expect("insert"),
        3
    );
    assert_eq!(
        file.insert(&NewIssue::new("t-b", "B", now, "me"))
            .expect("insert"),
        2
    );
    let out = String::from_utf8(file.to_bytes()).expect("utf8");
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].starts_with(r#"{"id":"t-b","title":"B","status":"open","priority":2"#));
    assert!(
        lines[3].starts_with(r#"{"id":"t-d""#) && lines[3].ends_with('}'),
        "no final newline added"
    );
}

#[test]
fn byte_order_mark_is_kept_and_tolerated() {
    let text = format!("\u{feff}{GOOD_A}\n\u{feff}{GOOD_C}\n");
    let (mut file, diags) = BeadsFile::parse(text.as_bytes());
    assert!(diags.is_empty(), "{diags:?}");
    assert!(file.get("t-a").is_some() && file.get("t-c").is_some());
    assert_eq!(file.to_bytes(), text.as_bytes());
    file.edit("t-a", |e| e.set("status", "closed"))
        .expect("edit");
    assert!(file
        .to_bytes()
        .starts_with("\u{feff}{\"id\":\"t-a\"".as_bytes()));
    assert_eq!(file.get("t-a").expect("present").status, "closed");
}

#[test]
fn refused_edits_leave_the_file_unchanged() {
    let text = format!("{GOOD_A}\n{GOOD_C}\n");
    let (mut file, _) = BeadsFile::parse(text.as_bytes());
    assert_eq!(
        file.edit("t-zz", |e| e.set("status", "closed")),
        Err(EditError::NotFound { id: "t-zz".into() })
    );
    let err = file
        .edit("t-a", |e| e.set("priority", "high"))
        .expect_err("invalid result");
    assert!(matches!(err, EditError::Invalid { line: 1, .. }), "{err:?}");
    assert!(err.to_string().contains(r#"field "priority""#), "{err}");
    let err = file
        .edit("t-a", |e| e.array_remove("labels", 0).map(|_| ()))
        .expect_err("no labels");
    assert!(matches!(
        err,
        EditError::Line {
            source: LineError::IndexOutOfRange { .. },
            ..
        }
    ));
    let err = file
        .edit("t-a", |e| e.set("id", "t-c"))
        .expect_err("id taken");
    assert_eq!(
        err,
        EditError::AlreadyExists {
            id: "t-c".into(),
            line: 2
        }
    );
    assert_eq!(file.to_bytes(), text.as_bytes());
    // Renaming to a free id re-indexes.
    file.edit("t-a", |e| e.set("id", "t-b")).expect("rename");
    assert!(file.get("t-a").is_none());
    assert_eq!(file.line_of("t-b"), Some(1));
}

#[test]
fn parsing_on_several_threads_gives_the_same_file_and_diagnostics() {
    let mut text = String::new();
    for i in 0..40 {
        match i % 7 {
            0 => text.push_str("{\"id\":\"t-x\",\"title\":\"dup\"}\n"),
            1 => text.push_str("<<<<<<< HEAD\n"),
            2 => text.push_str("{\"id\":\"t-b\",\"priority\":\"high\"}\r\n"),
            3 => text.push('\n'),
            _ => text.push_str(&format!("{{\"id\":\"t-{i}\",\"title\":\"T\"}}\n")),
        }
    }
    text.push_str("{\"id\":\"t-last\"");
    let (one, diags_one) = BeadsFile::parse(text.as_bytes());
    assert!(diags_one
        .iter()
        .any(|d| d.kind == DiagnosticKind::Truncated && d.line == 41));
    for threads in 2..=6 {
        let n = std::num::NonZeroUsize::new(threads).expect("non-zero");
        let (many, diags_many) = BeadsFile::parse_owned(text.clone().into_bytes(), n);
        assert_eq!(many, one, "{threads} threads");
        assert_eq!(diags_many, diags_one, "{threads} threads");
        assert_eq!(many.to_bytes(), text.as_bytes());
        assert_eq!(many.line_of("t-x"), one.line_of("t-x"));
    }
}

#[test]
fn a_lean_parse_reports_the_same_problems_and_renders_whole_issues() {
    let text = concat!(
        "{\"id\":\"t-a\",\"title\":\"A\",\"description\":\"long \\\"text\\\" \\u00e9\",\"notes\":\"n\",",
        "\"comments\":[{\"id\":1,\"author\":\"x\",\"text\":\"hello\"}]}\n",
        "{\"id\":\"t-b\",\"description\":null}\n",
        "{\"id\":\"t-c\",\"notes\":7}\n",
        "{\"id\":\"t-d\",\"comments\":[{\"text\":false}]}\n",
        "{\"id\":\"t-e\",\"design\":\"d\"\n",
        "{\"id\":\"t-a\",\"title\":\"A2\",\"design\":\"kept\"}\n",
    );
    let (full, full_diags) = BeadsFile::parse(text.as_bytes());
    for threads in 1..=3 {
        let n = std::num::NonZeroUsize::new(threads).expect("non-zero");
        let (lean, lean_diags) = BeadsFile::parse_lean(text.as_bytes().to_vec(), n);
        assert!(lean.is_lean());
        assert_eq!(lean_diags, full_diags, "{threads} threads");
        assert_eq!(lean.to_bytes(), text.as_bytes());
        let issue = lean.get("t-a").expect("t-a");
        assert_eq!(issue.title, "A2");
        assert!(issue.design.is_empty(), "lean issues carry no free text");
        assert_eq!(lean.get_full("t-a").as_ref(), full.get("t-a"));
        assert_eq!(lean.render("t-a"), full.render("t-a"));
    }
    assert!(full_diags.len() >= 4, "{full_diags:?}");
    // A full parse on the same thread afterwards keeps the text again.
    let (again, _) = BeadsFile::parse(text.as_bytes());
    assert_eq!(again.get("t-a").expect("t-a").design, "kept");
}

#[test]
fn streamed_output_equals_the_lines_after_edits_and_inserts() {
    let now = Timestamp::parse("2026-02-01T00:00:00Z").expect("timestamp");
    for text in [
        format!("{GOOD_A}\n{GOOD_C}\n"),
        format!("{GOOD_A}\r\n{GOOD_C}"),
        format!("\n{GOOD_C}\n\n{GOOD_A}"),
    ] {
        let (mut file, _) = BeadsFile::parse(text.as_bytes());
        let mut streamed = Vec::new();
        file.write_to(&mut streamed).expect("write");
        assert_eq!(streamed, text.as_bytes(), "untouched");
        file.edit("t-a", |e| e.set("status", "closed"))
            .expect("edit");
        file.insert(&NewIssue::new("t-z", "Z", now.clone(), "me"))
            .expect("insert");
        file.insert(&NewIssue::new("t-b", "B", now.clone(), "me"))
            .expect("insert");
        let mut expected = Vec::new();
        for l in file.lines() {
            expected.extend_from_slice(l.bytes());
            expected.extend_from_slice(l.ending().as_bytes());
        }
        let mut streamed = Vec::new();
        file.write_to(&mut streamed).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&streamed),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(file.to_bytes(), expected);
    }
}
