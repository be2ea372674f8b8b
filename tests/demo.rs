//! `spool demo` end to end: the real binary, a deadline, and the repository it leaves.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("spawn git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_demo_closes_its_whole_backlog_with_commits_on_every_run_branch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spool"))
        .args(["demo", "--timeout-secs", "100", "--dir"])
        .arg(&dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("BEADS_DIR")
        .env_remove("SPOOL_NOW")
        .env_remove("SPOOL_AGENT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spool demo");
    let start = Instant::now();
    while child.try_wait().expect("wait spool demo").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "spool demo did not finish in {DEADLINE:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("collect output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "spool demo exited {:?}:\n{stdout}\n{stderr}",
        out.status
    );

    let backlog = std::fs::read_to_string(dir.join(".beads/issues.jsonl")).expect("backlog");
    let issues: Vec<Value> = backlog
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(issues.len() >= 8, "{backlog}");
    for issue in &issues {
        assert_eq!(issue["status"], "closed", "{issue}");
    }
    assert!(
        issues.iter().any(|i| i["issue_type"] == "epic"),
        "{backlog}"
    );
    let gated: Vec<&Value> = issues
        .iter()
        .filter(|i| {
            i["labels"]
                .as_array()
                .is_some_and(|l| l.contains(&"review".into()))
        })
        .collect();
    assert_eq!(gated.len(), 1, "{backlog}");

    let log = git(&dir, &["log", "--oneline"]);
    assert!(log.contains("claimed"), "{log}");
    assert!(log.contains(" done ✓"), "{log}");
    assert!(log.contains("implement ✓"), "{log}");
    // What the demo printed is the repository's history.
    let printed = log.lines().next().expect("a commit");
    assert!(stdout.contains(printed), "{printed:?} not in\n{stdout}");

    for issue in issues.iter().filter(|i| i["issue_type"] != "epic") {
        let id = issue["id"].as_str().expect("id");
        let branch = format!("spool/{id}");
        let subjects = git(&dir, &["log", "--format=%s", &format!("main..{branch}")]);
        assert!(
            subjects.lines().any(|s| s == format!("{id}: implement")),
            "{branch} has no agent commit: {subjects:?}"
        );
        let file = git(&dir, &["show", &format!("{branch}:work/{id}.md")]);
        assert!(file.contains(id), "{file}");
    }
    assert!(
        stdout.contains("approved"),
        "the gate was not approved:\n{stdout}"
    );
}
