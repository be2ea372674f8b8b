//! Load time of a 100k-issue file. Opt-in and meaningful in release mode only:
//! `cargo test -p spool-core --release --test load_speed -- --ignored --nocapture`.

mod common;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use spool_core::beads::line::scan_object;
use spool_core::beads::BeadsFile;

/// Real issue lines from the fixtures whose name contains `pick`, repeated with their
/// ids made unique, until `target` lines.
fn big_file(target: usize, pick: &str) -> Vec<u8> {
    let mut source: Vec<Vec<u8>> = Vec::new();
    for (name, bytes) in common::jsonl_fixtures() {
        if name.contains("deletions") || !name.contains(pick) {
            continue;
        }
        source.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    let mut out = Vec::new();
    let mut n = 0;
    'outer: loop {
        for line in &source {
            if n == target {
                break 'outer;
            }
            let layout = scan_object(line).expect("fixture lines are objects");
            match layout.find("id") {
                Some(m) => {
                    let v = layout.members[m].value.clone();
                    out.extend_from_slice(&line[..v.end - 1]);
                    out.extend_from_slice(format!("-n{n}").as_bytes());
                    out.extend_from_slice(&line[v.end - 1..]);
                }
                None => out.extend_from_slice(line),
            }
            out.push(b'\n');
            n += 1;
        }
    }
    out
}

/// Best of five parses, with as many threads as the machine offers.
fn best_parse(bytes: &[u8]) -> (Duration, NonZeroUsize) {
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let input = bytes.to_vec();
        let t = Instant::now();
        let (file, diags) = BeadsFile::parse_owned(input, threads);
        best = best.min(t.elapsed());
        assert_eq!(file.lines().len(), 100_000);
        assert!(diags.is_empty(), "{:?}", &diags[..diags.len().min(3)]);
    }
    (best, threads)
}

#[test]
#[ignore = "timing; run in release"]
fn hundred_thousand_issues_load_quickly() {
    // Classic bd lines (the common case) and a mix of every writer, including beads_rust
    // lines of up to 52 KB.
    for (corpus, pick) in [("classic bd", "v0.47.0"), ("all writers", "")] {
        let bytes = big_file(100_000, pick);
        let (best, threads) = best_parse(&bytes);
        println!(
            "{corpus}: 100k lines, {} MB, {threads} threads: best parse {best:?}",
            bytes.len() / 1_000_000
        );
        if !cfg!(debug_assertions) {
            assert!(best < Duration::from_millis(300), "{corpus}: {best:?}");
        }
    }

    let bytes = big_file(100_000, "");
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let (mut file, _) = BeadsFile::parse_owned(bytes.clone(), threads);
    let id = file.issues().nth(50_000).expect("issue").id.clone();
    let t = Instant::now();
    file.edit(&id, |e| e.set("notes", "<edited> é"))
        .expect("edit");
    let edit = t.elapsed();
    let t = Instant::now();
    let out = file.to_bytes();
    let write = t.elapsed();
    assert!(out.len() > bytes.len());
    println!("first edit {edit:?}, to_bytes {write:?}");
    if !cfg!(debug_assertions) {
        assert!(edit < Duration::from_millis(50), "{edit:?}");
    }
}
