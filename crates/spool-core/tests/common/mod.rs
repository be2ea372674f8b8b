//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use spool_core::beads::line::scan_object;

/// The real backlog files: `$SPOOL_FIXTURES`, else `shared/fixtures/beads` next to the
/// workspace root.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("SPOOL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/beads"),
    }
}

/// Every `*.jsonl` fixture, sorted by name, with its bytes.
pub fn jsonl_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures directory {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).expect("fixture readable");
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the fixture set in {}, found {}",
        dir.display(),
        out.len()
    );
    out
}

/// Splits file bytes into lines, terminators included, so line-level diffs are exact.
pub fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|b| *b == b'\n').collect()
}

/// 1-based numbers of the lines that differ; panics if the line count changed.
pub fn changed_lines(before: &[u8], after: &[u8]) -> Vec<usize> {
    let (a, b) = (split_lines(before), split_lines(after));
    assert_eq!(a.len(), b.len(), "line count changed");
    (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i + 1)
        .collect()
}

/// The raw `"key":value` pieces of a line's top-level members, by key.
pub fn member_bytes(line: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let layout = scan_object(line).expect("line is an object");
    layout
        .members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                line[m.key.clone()].to_vec(),
                line[m.value.clone()].to_vec(),
            )
        })
        .collect()
}

/// Asserts every member of `before` other than `edited` keeps its key and value bytes
/// and relative order in `after`, and that `after` has no other new keys.
pub fn assert_only_key_changed(before: &[u8], after: &[u8], edited: &[&str]) {
    let b = member_bytes(before);
    let a = member_bytes(after);
    let kept_before: Vec<_> = b
        .iter()
        .filter(|(k, _, _)| !edited.contains(&k.as_str()))
        .collect();
    let kept_after: Vec<_> = a
        .iter()
        .filter(|(k, _, _)| !edited.contains(&k.as_str()))
        .collect();
    assert_eq!(
        kept_before,
        kept_after,
        "untouched members changed:\n  before: {}\n  after:  {}",
        String::from_utf8_lossy(before),
        String::from_utf8_lossy(after)
    );
}
