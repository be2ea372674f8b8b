//! `spool up` end to end: real processes in temporary git repositories, the fake agent
//! `tests/fake-agent` standing in for a coding agent. Every wait polls a condition
//! against a deadline.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "user")
        .env("GIT_AUTHOR_EMAIL", "user@example.com")
        .env("GIT_COMMITTER_NAME", "user")
        .env("GIT_COMMITTER_EMAIL", "user@example.com")
        .output()
        .expect("spawn git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One backlog line; `after` names the issue this one is blocked by.
fn issue(id: &str, labels: &[&str], after: Option<&str>) -> String {
    let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    let deps = after
        .map(|to| {
            format!(
                r#","dependencies":[{{"issue_id":"{id}","depends_on_id":"{to}","type":"blocks","created_at":"2026-01-01T00:00:00Z"}}]"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"{{"id":"{id}","title":"Issue {id}","description":"Make {id} happen","status":"open","priority":2,"issue_type":"task","labels":[{}],"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"{deps}}}"#,
        labels.join(",")
    )
}

struct Repo {
    dir: tempfile::TempDir,
    /// Outside the repository, so the agent's log is no change of the user's.
    side: tempfile::TempDir,
}

impl Repo {
    /// A repository whose first commit holds the backlog `lines` and a README.
    fn new(lines: &[String]) -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
            side: tempfile::tempdir().expect("tempdir"),
        };
        let root = repo.root();
        git(root, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(root.join(".beads")).expect("mkdir");
        std::fs::write(root.join(".beads/config.yaml"), "issue-prefix: \"t\"\n").expect("write");
        std::fs::write(repo.issues_path(), lines.join("\n") + "\n").expect("write");
        std::fs::write(root.join("README"), "hello\n").expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "start"]);
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn issues_path(&self) -> PathBuf {
        self.root().join(".beads/issues.jsonl")
    }

    fn log_path(&self) -> PathBuf {
        self.side.path().join("agent.log")
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn issue(&self, id: &str) -> Value {
        let text = std::fs::read_to_string(self.issues_path()).expect("read backlog");
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no issue {id} in\n{text}"))
    }

    /// Starts `spool up` with the fake agent in `mode`.
    fn up(&self, mode: &str) -> Daemon {
        self.up_with(mode, &[])
    }

    /// `up` with extra environment variables.
    fn up_with(&self, mode: &str, env: &[(&str, &str)]) -> Daemon {
        let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agent");
        let child = Command::new(env!("CARGO_BIN_EXE_spool"))
            .envs(env.iter().copied())
            .current_dir(self.root())
            .args(["up", "--rescan-ms", "200", "--grace-secs", "5"])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("BEADS_DIR")
            .env_remove("SPOOL_NOW")
            .env("SPOOL_AGENT", agent)
            .env("FAKE_AGENT_MODE", mode)
            .env("FAKE_AGENT_LOG", self.log_path())
            .env("FAKE_AGENT_RELEASE", self.side.path().join("release"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spool up");
        Daemon { child: Some(child) }
    }

    /// Waits until `cond` holds, failing with `what` and the agent log at the deadline.
    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}\nagent log:\n{}\nbacklog:\n{}",
                self.agent_log(),
                std::fs::read_to_string(self.issues_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_status(&self, id: &str, status: &str) {
        self.wait_for(&format!("{id} {status}"), || {
            self.issue(id)["status"] == status
        });
    }
}

struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// SIGTERM, then waits for a clean exit and returns stderr.
    fn stop(mut self) -> String {
        let child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let out = child.wait_with_output().expect("wait spool up");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "spool up exited {:?}:\n{stderr}",
            out.status
        );
        stderr
    }

    fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn comments(v: &Value) -> Vec<String> {
    v["comments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["text"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Index of the first log line starting with `prefix`.
fn line_of(log: &str, prefix: &str) -> usize {
    log.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in agent log:\n{log}"))
}

#[test]
fn a_dependency_chain_runs_in_order_and_leaves_the_users_changes_alone() {
    let repo = Repo::new(&[
        issue("t-1", &["spool"], None),
        issue("t-2", &["spool"], Some("t-1")),
        issue("t-3", &["spool"], Some("t-2")),
    ]);
    let root = repo.root();
    // The user's work in progress: one staged file, one unstaged edit.
    std::fs::write(root.join("staged.txt"), "staged\n").expect("write");
    git(root, &["add", "staged.txt"]);
    std::fs::write(root.join("README"), "hello, edited\n").expect("write");
    let (staged, unstaged) = (
        git(root, &["diff", "--cached"]),
        git(root, &["diff", "--", "README"]),
    );

    let daemon = repo.up("ok");
    for id in ["t-1", "t-2", "t-3"] {
        repo.wait_status(id, "closed");
    }
    // The last close is written before its worktree is removed: wait for the removal.
    repo.wait_for("worktrees removed", || {
        !root.join(".git/spool/worktrees/t-3").exists()
    });
    let stderr = daemon.stop();

    let log = repo.agent_log();
    assert!(
        line_of(&log, "test t-1 end") < line_of(&log, "plan t-2 start")
            && line_of(&log, "test t-2 end") < line_of(&log, "plan t-3 start"),
        "not in dependency order:\n{log}"
    );
    for id in ["t-1", "t-2", "t-3"] {
        let v = repo.issue(id);
        assert!(
            v["close_reason"]
                .as_str()
                .unwrap_or("")
                .contains("completed"),
            "{v}"
        );
        let texts = comments(&v);
        for step in [
            "plan (1/4) ✓",
            "implement (2/4) ✓",
            "test (3/4) ✓",
            "verify (4/4) ✓",
        ] {
            assert!(
                texts
                    .iter()
                    .any(|t| t.contains(&format!("spool: step {step}"))),
                "{id}: no comment for {step}: {texts:?}"
            );
        }
        // The agent's work is on the run branch.
        let branch = git(root, &["log", "--format=%s", &format!("spool/{id}")]);
        assert!(branch.contains(&format!("{id}: implement")), "{branch}");
        assert!(!root.join(format!(".git/spool/worktrees/{id}")).exists());
    }
    let history = git(root, &["log", "--format=%s", "main"]);
    for msg in [
        "spool: t-1 claimed",
        "spool: t-1 implement ✓ (2/4)",
        "spool: t-2 verify ✓ (4/4)",
        "spool: t-3 done ✓",
    ] {
        assert!(history.contains(msg), "no commit {msg:?} in\n{history}");
    }
    // HEAD's backlog is what is on disk: every write was committed.
    assert_eq!(
        git(root, &["show", "HEAD:.beads/issues.jsonl"]),
        std::fs::read_to_string(repo.issues_path()).expect("read")
    );
    assert_eq!(git(root, &["diff", "--cached"]), staged, "{stderr}");
    assert_eq!(git(root, &["diff", "--", "README"]), unstaged);
    assert_eq!(
        std::fs::read_to_string(root.join("README")).expect("read"),
        "hello, edited\n"
    );
}

#[test]
fn closing_a_blocker_in_an_external_commit_starts_its_dependent() {
    let repo = Repo::new(&[
        issue("t-1", &[], None),
        issue("t-2", &["spool"], Some("t-1")),
        issue("t-3", &["spool"], None),
    ]);
    let _daemon = repo.up("ok");
    // t-3 done means the daemon has looked at the backlog more than once since start.
    repo.wait_status("t-3", "closed");
    // Removing the worktree is the run's last act: after it the daemon is idle, and the
    // teammate's commit below does not meet the daemon's own index.lock.
    repo.wait_for("t-3's worktree removed", || {
        !repo.root().join(".git/spool/worktrees/t-3").exists()
    });
    let blocked = repo.issue("t-2");
    assert_eq!(blocked["status"], "open", "{blocked}");
    assert!(blocked.get("assignee").is_none(), "{blocked}");

    // A teammate closes t-1 and commits (as if pulled).
    let text = std::fs::read_to_string(repo.issues_path()).expect("read");
    let closed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.contains(r#""id":"t-1""#) {
                l.replace(
                    r#""status":"open""#,
                    r#""status":"closed","closed_at":"2026-01-02T00:00:00Z""#,
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(repo.issues_path(), closed.join("\n") + "\n").expect("write");
    git(repo.root(), &["commit", "-q", "-am", "close t-1"]);

    repo.wait_status("t-2", "closed");
    assert!(repo.agent_log().contains("implement t-2 end"));
}

#[test]
fn a_failing_agent_releases_the_issue_labelled_failed() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let daemon = repo.up("fail");
    repo.wait_for("t-1 labelled spool:failed", || {
        repo.issue("t-1")["labels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "spool:failed"))
    });
    let v = repo.issue("t-1");
    assert_eq!(v["status"], "open", "{v}");
    assert!(v.get("assignee").is_none(), "{v}");
    let texts = comments(&v);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step implement (2/4) ✗")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("spool: run ") && t.contains("failed")),
        "{texts:?}"
    );
    // Not picked up again: the worktree goes and the agent is not called a second time.
    repo.wait_for("worktree removed", || {
        !repo.root().join(".git/spool/worktrees/t-1").exists()
    });
    daemon.stop();
    assert_eq!(repo.agent_log().matches("implement t-1 start").count(), 1);
    let history = git(repo.root(), &["log", "--format=%s"]);
    assert!(history.contains("spool: t-1 failed ✗"), "{history}");
}

#[test]
fn an_agent_that_commits_nothing_fails_verification() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let _daemon = repo.up("exit0-error");
    repo.wait_for("t-1 labelled spool:failed", || {
        repo.issue("t-1")["labels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "spool:failed"))
    });
    let texts = comments(&repo.issue("t-1"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step verify (4/4) ✗")),
        "{texts:?}"
    );
}

#[test]
fn a_killed_daemon_resumes_without_rerunning_finished_steps() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let first = repo.up("hang");
    repo.wait_for("implement to start", || {
        repo.agent_log().contains("implement t-1 start")
    });
    // A second daemon on the same repository refuses, naming the first.
    let second = Command::new(env!("CARGO_BIN_EXE_spool"))
        .current_dir(repo.root())
        .args(["up"])
        .env("SPOOL_AGENT", "/bin/true")
        .output()
        .expect("spawn");
    let pid = first.child.as_ref().expect("running").id();
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");

    first.kill9();
    // The hanging agent outlived the daemon; end it as the machine's reboot would.
    let log = repo.agent_log();
    let agent_pid: i32 = log
        .lines()
        .find(|l| l.starts_with("implement t-1 start"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("agent pid in the log");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent_pid),
        nix::sys::signal::Signal::SIGKILL,
    );

    let again = repo.up("ok");
    repo.wait_status("t-1", "closed");
    again.stop();
    let log = repo.agent_log();
    assert_eq!(log.matches("plan t-1 start").count(), 1, "{log}");
    assert_eq!(log.matches("implement t-1 end").count(), 1, "{log}");
    assert_eq!(log.matches("test t-1 start").count(), 1, "{log}");
}

#[test]
fn status_lists_runs_with_and_without_a_daemon() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let status = |repo: &Repo| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_spool"))
            .current_dir(repo.root())
            .args(["status", "--json"])
            .output()
            .expect("spawn");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    assert_eq!(status(&repo)["runs"], serde_json::json!([]));
    let daemon = repo.up("hang");
    repo.wait_for("implement to start", || {
        repo.agent_log().contains("implement t-1 start")
    });
    let runs = status(&repo)["runs"].clone();
    assert_eq!(runs[0]["issue"], "t-1", "{runs}");
    assert_eq!(runs[0]["status"], "running", "{runs}");
    assert_eq!(runs[0]["template"], "implement", "{runs}");
    assert!(
        runs[0]["current"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("implement"),
        "{runs}"
    );
    std::fs::write(repo.side.path().join("release"), "").expect("release the agent");
    repo.wait_status("t-1", "closed");
    daemon.stop();
    let runs = status(&repo)["runs"].clone();
    assert_eq!(runs[0]["status"], "completed", "{runs}");
}

#[test]
fn sigterm_stops_a_hanging_step_after_the_grace_period_and_the_next_start_resumes() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let daemon = repo.up("hang");
    repo.wait_for("implement to start", || {
        repo.agent_log().contains("implement t-1 start")
    });
    let agent_pid: i32 = repo
        .agent_log()
        .lines()
        .find(|l| l.starts_with("implement t-1 start"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("agent pid in the log");
    let asked = Instant::now();
    let stderr = daemon.stop();
    // The grace period is 5 s; the agent hangs for up to 60 s.
    assert!(asked.elapsed() < Duration::from_secs(30), "{stderr}");
    // Stopped (and reaped) before `spool up` exited, not left running.
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent_pid), None).is_err(),
        "the agent outlived spool up:\n{stderr}"
    );
    assert_eq!(repo.issue("t-1")["status"], "in_progress");

    let again = repo.up("ok");
    repo.wait_status("t-1", "closed");
    again.stop();
    let log = repo.agent_log();
    assert_eq!(log.matches("plan t-1 start").count(), 1, "{log}");
}

#[test]
fn an_invalid_config_stops_the_daemon_before_it_claims_anything() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    std::fs::create_dir_all(repo.root().join(".spool")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        "actor = \"me\"\nmax_concurent = 3\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .current_dir(repo.root())
        .arg("up")
        .env("SPOOL_AGENT", "/bin/true")
        .output()
        .expect("spawn");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(msg.contains(".spool/config.toml:2:"), "{msg}");
    assert_eq!(repo.issue("t-1")["status"], "open");
}

#[test]
fn the_first_start_writes_a_default_config() {
    let repo = Repo::new(&[issue("t-1", &[], None)]);
    let daemon = repo.up("ok");
    let path = repo.root().join(".spool/config.toml");
    repo.wait_for("the default config", || path.exists());
    daemon.stop();
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains("labels = [\"spool\"]"), "{text}");
    // An issue without the label was left alone.
    assert_eq!(repo.issue("t-1")["status"], "open");
}

#[test]
fn max_concurrent_bounds_the_runs_at_once() {
    let repo = Repo::new(&[
        issue("t-1", &["spool"], None),
        issue("t-2", &["spool"], None),
        issue("t-3", &["spool"], None),
    ]);
    std::fs::create_dir_all(repo.root().join(".spool")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        "max_concurrent = 1\n[[select]]\nlabels = [\"spool\"]\ntemplate = \"implement\"\n",
    )
    .expect("write");
    let daemon = repo.up("hang");
    repo.wait_for("an implement step to start", || {
        repo.agent_log().contains("implement")
    });
    // All ready issues are claimed in one pass; with the limit ignored, every one would
    // be in progress by the time the first agent runs.
    let in_progress = ["t-1", "t-2", "t-3"]
        .iter()
        .filter(|id| repo.issue(id)["status"] == "in_progress")
        .count();
    assert_eq!(in_progress, 1);
    std::fs::write(repo.side.path().join("release"), "").expect("release the agents");
    for id in ["t-1", "t-2", "t-3"] {
        repo.wait_status(id, "closed");
    }
    daemon.stop();
    // One run at a time: each issue's agent calls form one unbroken block.
    let log = repo.agent_log();
    let mut blocks: Vec<&str> = Vec::new();
    for issue in log.lines().filter_map(|l| l.split(' ').nth(1)) {
        if blocks.last() != Some(&issue) {
            blocks.push(issue);
        }
    }
    blocks.sort_unstable();
    assert_eq!(blocks, ["t-1", "t-2", "t-3"], "{log}");
}

#[test]
fn an_edited_config_applies_without_a_restart() {
    let repo = Repo::new(&[
        issue("t-1", &["spool"], None),
        issue("t-2", &["later"], None),
    ]);
    let daemon = repo.up("ok");
    repo.wait_status("t-1", "closed");
    assert_eq!(repo.issue("t-2")["status"], "open");
    let path = repo.root().join(".spool/config.toml");
    std::fs::write(
        &path,
        "[[select]]\nlabels = [\"later\"]\ntemplate = \"implement\"\n",
    )
    .expect("write");
    repo.wait_status("t-2", "closed");
    daemon.stop();
}

#[test]
fn a_run_failing_after_a_person_closed_its_issue_leaves_the_close_alone() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let daemon = repo.up("hang-fail");
    repo.wait_for("implement to start", || {
        repo.agent_log().contains("implement t-1 start")
    });
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .current_dir(repo.root())
        .args([
            "close",
            "t-1",
            "--reason",
            "done by hand",
            "--actor",
            "person",
        ])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(repo.side.path().join("release"), "").expect("release the agent");
    repo.wait_for("the failure comment", || {
        comments(&repo.issue("t-1"))
            .iter()
            .any(|t| t.starts_with("spool: run ") && t.contains("failed"))
    });
    daemon.stop();
    let v = repo.issue("t-1");
    assert_eq!(v["status"], "closed", "{v}");
    assert_eq!(v["close_reason"], "done by hand", "{v}");
    assert!(!v["labels"].to_string().contains("spool:failed"), "{v}");
}

#[test]
fn a_coding_agent_kind_is_judged_by_its_event_stream() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let claude = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agents/claude");
    let argv_file = repo.side.path().join("claude-argv");
    std::fs::create_dir_all(repo.root().join(".spool")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        format!(
            "[[select]]\nlabels = [\"spool\"]\ntemplate = \"implement\"\n\
             [agents.default]\nkind = \"claude\"\nprogram = {:?}\nmodel = \"sonnet\"\n",
            claude.display().to_string()
        ),
    )
    .expect("write");
    // Exits 0 after "Not logged in": a failure, whatever the exit code says.
    let daemon = repo.up_with(
        "ok",
        &[
            ("FAKE_SCENARIO", "error_exit0"),
            ("FAKE_ARGV_FILE", argv_file.to_str().expect("utf-8")),
        ],
    );
    repo.wait_for("t-1 labelled spool:failed", || {
        repo.issue("t-1")["labels"]
            .to_string()
            .contains("spool:failed")
    });
    daemon.stop();
    let texts = comments(&repo.issue("t-1"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step plan (1/4) ✗") && t.contains("Not logged in")),
        "{texts:?}"
    );
    let argv = std::fs::read_to_string(&argv_file).expect("claude was called");
    assert!(argv.lines().any(|l| l == "sonnet"), "{argv}");
    assert!(argv.contains("Read the issue below"), "{argv}");
    assert!(argv.contains("t-1: Issue t-1"), "{argv}");
}

#[test]
fn bench_daemon_reports_claim_latency() {
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .args(["bench", "daemon", "--runs", "2", "--size", "20"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in ["| claim in the file |", "| claim committed |"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} in\n{text}"));
        let p50: f64 = line
            .split('|')
            .nth(2)
            .and_then(|c| c.trim().parse().ok())
            .expect("p50");
        assert!(p50 > 0.0 && p50 < 30_000.0, "{line}");
    }
}

#[test]
fn the_daemon_runs_schedules() {
    let repo = Repo::new(&[issue("t-1", &[], None)]);
    std::fs::create_dir_all(repo.root().join(".spool")).expect("dir");
    std::fs::write(
        repo.root().join(".spool/schedules.toml"),
        "[[schedule]]\nid = \"check\"\nevery = \"1s\"\nmax_actions = 2\n[schedule.action]\n\
         create_issue = { title = \"Scheduled check\", type = \"chore\" }\n",
    )
    .expect("write schedules");
    let daemon = repo.up("ok");
    let scheduled = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(repo.issues_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|i| i["title"] == "Scheduled check")
            .collect()
    };
    repo.wait_for("two scheduled issues", || scheduled().len() == 2);
    daemon.stop();
    // The limit holds: nothing more is due.
    let store = spool::store::Store::open(
        &repo.root().join(".git/spool/spool.db"),
        spool::store::Durability::Full,
    )
    .expect("store");
    let row = store.schedule("check").expect("read").expect("synced");
    assert_eq!(row.remaining_actions, Some(0));
    assert_eq!(row.next_due_ms, None);
    let issues = scheduled();
    assert_eq!(issues.len(), 2);
    let refs: Vec<&str> = issues
        .iter()
        .filter_map(|i| i["external_ref"].as_str())
        .collect();
    assert_eq!(refs.len(), 2);
    assert_ne!(refs[0], refs[1]);
    assert!(
        refs.iter().all(|r| r.starts_with("spool-schedule:check@")),
        "{refs:?}"
    );
}
