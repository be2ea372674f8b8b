//! Data-driven tests of the backlog merge: each directory under `tests/merge_cases/`
//! is one case.
//!
//! - `base.jsonl`, `ours.jsonl`, `theirs.jsonl` → `merge` must give `expected.jsonl`
//!   byte for byte; or `conflicted.jsonl` (a file with git conflict markers) →
//!   `resolve` must give `expected.jsonl`.
//! - `conflicts` (optional): the conflicts the merge must report, one `id field` per line
//!   (`-` for no field), in any order. Without the file the merge must be clean.

use std::path::Path;

use spool_core::beads::merge::{merge, resolve, MergeOutcome};

fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let p = dir.join(name);
    p.exists()
        .then(|| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn run_case(dir: &Path) -> MergeOutcome {
    if let Some(conflicted) = read(dir, "conflicted.jsonl") {
        let resolved = resolve(&conflicted)
            .unwrap_or_else(|e| panic!("{}: resolve failed: {e}", dir.display()));
        assert!(resolved.hunks > 0, "{}: no hunk found", dir.display());
        return resolved.outcome;
    }
    let side = |n: &str| read(dir, n).unwrap_or_else(|| panic!("{}: no {n}", dir.display()));
    merge(
        &side("base.jsonl"),
        &side("ours.jsonl"),
        &side("theirs.jsonl"),
    )
}

#[test]
fn every_merge_case_gives_its_expected_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/merge_cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("merge_cases directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 15,
        "expected the merge cases, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let out = run_case(dir);
        let expected = read(dir, "expected.jsonl").expect("expected.jsonl");
        if out.text != expected {
            failures.push(format!(
                "{name}: got\n{}\nexpected\n{}",
                String::from_utf8_lossy(&out.text),
                String::from_utf8_lossy(&expected)
            ));
        }
        let mut want: Vec<String> = read(dir, "conflicts")
            .map(|b| {
                String::from_utf8(b)
                    .expect("utf8")
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut got: Vec<String> = out
            .conflicts
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.id.as_deref().unwrap_or("-"),
                    c.field.as_deref().unwrap_or("-")
                )
            })
            .collect();
        want.sort();
        got.sort();
        if want != got {
            failures.push(format!(
                "{name}: conflicts {got:?}, expected {want:?} ({:?})",
                out.conflicts
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
