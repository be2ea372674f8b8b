//! The backlog merge against real backlog files: each fixture merged with two edited
//! copies of itself keeps both sides' edits and every other line byte for byte.

mod common;

use common::jsonl_fixtures;
use serde_json::{json, Map, Value};
use spool_core::beads::merge::merge;
use spool_core::beads::{BeadsFile, LineEditor, LineError};

type EditFn = fn(&mut LineEditor) -> Result<(), LineError>;

fn ours_edit(e: &mut LineEditor) -> Result<(), LineError> {
    e.set("title", "renamed on ours <b> & é")?;
    e.add_label("merge-ours")?;
    Ok(())
}

fn theirs_edit(e: &mut LineEditor) -> Result<(), LineError> {
    e.set("notes", "noted on theirs ∈")?;
    e.set("priority", 0)?;
    Ok(())
}

fn new_issue() -> Map<String, Value> {
    match json!({"id": "zz-merge-new", "title": "new on theirs", "status": "open", "priority": 2}) {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// Ids of issues on exactly one line, in file order.
fn single_ids(file: &BeadsFile) -> Vec<String> {
    let dups: Vec<&str> = file.duplicates().map(|(id, _)| id).collect();
    file.issues()
        .map(|i| i.id.clone())
        .filter(|id| !dups.contains(&id.as_str()))
        .collect()
}

fn edited(bytes: &[u8], edits: &[(&str, EditFn)], insert: bool) -> Vec<u8> {
    let (mut file, _) = BeadsFile::parse(bytes);
    for (id, f) in edits {
        let done = file.edit(id, f).expect("edit applies");
        assert!(done.changed, "edit of {id} changed nothing");
    }
    if insert {
        file.insert_map(new_issue()).expect("insert");
    }
    file.to_bytes()
}

#[test]
fn every_fixture_merged_with_two_edited_copies_keeps_both_edits_and_all_else() {
    for (name, bytes) in jsonl_fixtures() {
        let (file, _) = BeadsFile::parse(&bytes);
        let ids = single_ids(&file);
        assert!(ids.len() >= 3, "{name}: too few issues");
        let (a, b) = (ids[ids.len() / 3].clone(), ids[2 * ids.len() / 3].clone());
        assert_ne!(a, b);
        let ours = edited(&bytes, &[(&a, ours_edit)], false);
        let theirs = edited(&bytes, &[(&b, theirs_edit)], true);
        // What one editor doing both changes in turn would have written.
        let expected = edited(&bytes, &[(&a, ours_edit), (&b, theirs_edit)], true);

        let out = merge(&bytes, &ours, &theirs);
        assert!(out.is_clean(), "{name}: conflicts {:?}", out.conflicts);
        assert!(
            out.text == expected,
            "{name}: merge differs from both edits applied in turn"
        );
        // The other direction gives the same file too.
        let out = merge(&bytes, &theirs, &ours);
        assert!(out.is_clean(), "{name}: conflicts {:?}", out.conflicts);
        assert!(
            out.text == expected,
            "{name}: merge (sides swapped) differs"
        );
    }
}

#[test]
fn every_fixture_merged_with_two_edits_of_one_issue_keeps_both_fields() {
    for (name, bytes) in jsonl_fixtures() {
        let (file, _) = BeadsFile::parse(&bytes);
        let ids = single_ids(&file);
        let a = ids[ids.len() / 2].clone();
        let ours = edited(&bytes, &[(&a, ours_edit)], false);
        let theirs = edited(&bytes, &[(&a, theirs_edit)], false);
        let expected = edited(&bytes, &[(&a, ours_edit), (&a, theirs_edit)], false);
        let out = merge(&bytes, &ours, &theirs);
        assert!(out.is_clean(), "{name}: conflicts {:?}", out.conflicts);
        assert!(
            out.text == expected,
            "{name}: got line\n{}\nexpected\n{}",
            String::from_utf8_lossy(
                out.text
                    .split(|c| *c == b'\n')
                    .find(|l| l.windows(9).any(|w| w == b"on theirs"))
                    .unwrap_or_default()
            ),
            String::from_utf8_lossy(
                expected
                    .split(|c| *c == b'\n')
                    .find(|l| l.windows(9).any(|w| w == b"on theirs"))
                    .unwrap_or_default()
            )
        );
    }
}
