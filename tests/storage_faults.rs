//! Storage faults (a full disk, a read-only one): writes fail with a clear error and leave
//! what was there intact.
//! Needs permission to mount a small tmpfs (CI runs as root); skipped otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tiny tmpfs, unmounted when dropped.
struct Tiny {
    path: PathBuf,
}

impl Tiny {
    fn mount(path: &Path, size: &str) -> Option<Tiny> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .ok()?
            .status
            .success();
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tiny {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tiny {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).output();
    }
}

#[test]
fn a_backlog_write_on_a_full_disk_fails_and_leaves_the_file_whole() {
    let env = common::TestEnv::new();
    let Some(tiny) = Tiny::mount(&env.root().join("repo"), "64k") else {
        return;
    };
    let beads = tiny.path.join(".beads");
    std::fs::create_dir_all(&beads).expect("mkdir");
    let line = r#"{"id":"t-a","title":"A","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
    let mut text = format!("{line}\n").into_bytes();
    // Fill most of the disk with the backlog itself, so a rewrite cannot fit beside it.
    let filler = format!(
        "{{\"id\":\"t-b\",\"title\":\"B\",\"description\":\"{}\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}\n",
        "x".repeat(36 * 1024)
    );
    text.extend_from_slice(filler.as_bytes());
    std::fs::write(beads.join("issues.jsonl"), &text).expect("write backlog");
    std::fs::write(beads.join("config.yaml"), "issue-prefix: \"t\"\n").expect("config");
    let out = env
        .cmd()
        .current_dir(&tiny.path)
        .args(["update", "t-a", "--title", "renamed"])
        .output()
        .expect("spawn");
    assert!(!out.status.success(), "the write cannot fit and must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left") || err.contains("space"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(beads.join("issues.jsonl")).expect("read"),
        text,
        "byte-identical"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&beads)
        .expect("readdir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".spool-write-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left on the full disk");
    // Reads still work.
    let out = env
        .cmd()
        .current_dir(&tiny.path)
        .args(["show", "t-a", "--json"])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_run_database_survives_a_full_disk() {
    let env = common::TestEnv::new();
    let Some(tiny) = Tiny::mount(&env.root().join("state"), "512k") else {
        return;
    };
    let db = tiny.path.join("spool.db");
    let spool = |args: &[&str]| {
        env.cmd()
            .env("SPOOL_DB", &db)
            .args(args)
            .output()
            .expect("spawn")
    };
    let input = format!("{{\"blob\":\"{}\"}}", "y".repeat(20 * 1024));
    let mut started = 0;
    let mut failure = None;
    for i in 0..200 {
        let out = spool(&[
            "run",
            "start",
            "demo",
            "--id",
            &format!("w{i}"),
            "--input",
            &input,
        ]);
        if out.status.success() {
            started += 1;
        } else {
            failure = Some(String::from_utf8_lossy(&out.stderr).to_string());
            break;
        }
    }
    let err = failure.expect("the disk must fill up within 200 runs of 20 KB");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.to_lowercase().contains("full") || err.contains("space"),
        "{err}"
    );
    // Every acknowledged start is still there, and the database still answers.
    let out = spool(&["run", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs.as_array().map(Vec::len), Some(started));
}

#[test]
fn a_read_only_run_database_is_a_clear_error_and_stays_consistent() {
    let env = common::TestEnv::new();
    let Some(tiny) = Tiny::mount(&env.root().join("ro"), "4m") else {
        return;
    };
    let db = tiny.path.join("spool.db");
    let spool = |args: &[&str]| {
        env.cmd()
            .env("SPOOL_DB", &db)
            .args(args)
            .output()
            .expect("spawn")
    };
    let out = spool(&["run", "start", "demo", "--id", "before"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&tiny.path)
        .output()
        .expect("mount");
    assert!(
        remount.status.success(),
        "{}",
        String::from_utf8_lossy(&remount.stderr)
    );
    let out = spool(&["run", "start", "demo", "--id", "after"]);
    assert!(
        !out.status.success(),
        "a start cannot be recorded on a read-only disk"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("spool.db")
            || err.to_lowercase().contains("read-only")
            || err.to_lowercase().contains("readonly"),
        "{err}"
    );
    let _ = Command::new("mount")
        .args(["-o", "remount,rw"])
        .arg(&tiny.path)
        .output();
    let out = spool(&["run", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = runs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["workflow_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["before"]);
}
