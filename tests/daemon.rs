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

    /// `spool ARGS` in the repository, sealed from the machine's git and spool settings,
    /// with the fake agent configured (in `mode`).
    fn command(&self, mode: &str, args: &[&str]) -> Command {
        let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agent");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spool"));
        cmd.current_dir(self.root())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("BEADS_DIR")
            .env_remove("SPOOL_NOW")
            .env("SPOOL_AGENT", agent)
            .env("FAKE_AGENT_MODE", mode)
            .env("FAKE_AGENT_LOG", self.log_path())
            .env("FAKE_AGENT_RELEASE", self.side.path().join("release"));
        cmd
    }

    /// `up` with extra environment variables.
    fn up_with(&self, mode: &str, env: &[(&str, &str)]) -> Daemon {
        let child = self
            .command(mode, &["up", "--rescan-ms", "200", "--grace-secs", "5"])
            .envs(env.iter().copied())
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

    /// Waits until the run of `id` failed and gave the issue back labelled `spool:failed`.
    fn wait_failed(&self, id: &str) {
        self.wait_for(&format!("{id} labelled spool:failed"), || {
            self.issue(id)["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == "spool:failed"))
        });
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
            "plan (1/5) ✓",
            "implement (2/5) ✓",
            "test (3/5) ✓",
            "verify (4/5) ✓",
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
    // Messages of coalesced commits are in their bodies.
    let history = git(root, &["log", "--format=%B", "main"]);
    for msg in [
        "spool: t-1 claimed",
        "spool: t-1 implement ✓ (2/5)",
        "spool: t-2 verify ✓ (4/5)",
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
    repo.wait_failed("t-1");
    let v = repo.issue("t-1");
    assert_eq!(v["status"], "open", "{v}");
    assert!(v.get("assignee").is_none(), "{v}");
    let texts = comments(&v);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step implement (2/5) ✗") && t.contains("(attempt 2)")),
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
    // The step's two attempts (the template retries agent steps once), no new run.
    assert_eq!(repo.agent_log().matches("implement t-1 start").count(), 2);
    let history = git(repo.root(), &["log", "--format=%B"]);
    assert!(history.contains("spool: t-1 failed ✗"), "{history}");
}

#[test]
fn an_agent_that_commits_nothing_fails_verification() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let _daemon = repo.up("exit0-error");
    repo.wait_failed("t-1");
    let texts = comments(&repo.issue("t-1"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step verify (4/5) ✗")),
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
    // The hanging agent outlives the daemon (nothing tells it its parent died)...
    let log = repo.agent_log();
    let agent_pid: i32 = log
        .lines()
        .find(|l| l.starts_with("implement t-1 start"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("agent pid in the log");
    // A zombie (killed, not yet reaped by whoever adopted it) is dead.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{agent_pid}/stat"))
            .ok()
            .and_then(|st| st.rsplit(')').next().map(|r| r.trim_start().to_string()))
            .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
    };
    assert!(alive(), "the agent died with the daemon");

    // ...and the next daemon stops it before running the step again.
    let again = repo.up("ok");
    repo.wait_for("the leftover agent to be killed", || !alive());
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
    repo.wait_failed("t-1");
    daemon.stop();
    let texts = comments(&repo.issue("t-1"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step plan (1/5) ✗") && t.contains("Not logged in")),
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
        .args([
            "bench", "daemon", "--runs", "2", "--size", "20", "--batch", "5",
        ])
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
    assert!(
        text.contains("5 ready issues at once") && text.contains("issues/s"),
        "{text}"
    );
}

/// Runs `spool ARGS` in the repository with the fake agent configured; returns the output.
fn spool(repo: &Repo, args: &[&str]) -> std::process::Output {
    repo.command("hang", args).output().expect("spawn spool")
}

/// [`spool`], asserting success.
fn ok(repo: &Repo, args: &[&str]) -> std::process::Output {
    let out = spool(repo, args);
    assert!(
        out.status.success(),
        "spool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok_json(repo: &Repo, args: &[&str]) -> Value {
    serde_json::from_slice(&ok(repo, args).stdout).expect("json")
}

/// Kills a background daemon if the test ends before `spool down` did.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn a_detached_daemon_is_seen_by_status_its_logs_are_readable_and_down_stops_it() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let started = ok_json(&repo, &["--json", "up", "--detach", "--rescan-ms", "200"]);
    let pid = started["pid"].as_u64().expect("pid");
    let _guard = KillOnDrop(pid as i32);
    // A second one refuses, naming the first.
    let again = spool(&repo, &["up", "--detach"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("pid {pid}")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let status = ok_json(&repo, &["--json", "status"]);
    assert_eq!(status["daemon"]["running"], true, "{status}");
    assert_eq!(status["daemon"]["pid"], pid, "{status}");

    repo.wait_for("implement to start", || {
        repo.agent_log().contains("implement t-1 start")
    });
    // Output of a step that is still running is there to follow.
    let out = spool(&repo, &["logs", "t-1", "--step", "implement"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("── implement attempt 1"), "{text}");
    assert!(text.contains("fake-agent: implement t-1"), "{text}");
    assert!(!text.contains("fake-agent: plan"), "{text}");

    // `logs -f` ends by itself when the run closes.
    let follower = Command::new(env!("CARGO_BIN_EXE_spool"))
        .current_dir(repo.root())
        .args(["--json", "logs", "-f", "t-1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    std::fs::write(repo.side.path().join("release"), "").expect("release the agent");
    repo.wait_status("t-1", "closed");
    let followed = follower.wait_with_output().expect("logs -f ends");
    assert!(followed.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&followed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let steps: Vec<&str> = rows.iter().filter_map(|r| r["step"].as_str()).collect();
    for step in ["plan", "implement", "test"] {
        assert!(steps.contains(&step), "{step} missing from {rows:?}");
    }
    assert!(
        rows.iter().any(|r| r["line"] == "fake-agent: test t-1"),
        "{rows:?}"
    );

    let down = ok_json(&repo, &["--json", "down"]);
    assert_eq!(down["stopped"], true, "{down}");
    assert_eq!(down["pid"], pid, "{down}");
    let status = ok_json(&repo, &["--json", "status"]);
    assert_eq!(status["daemon"]["running"], false, "{status}");
    let down = ok_json(&repo, &["--json", "down"]);
    assert_eq!(down["stopped"], false, "{down}");
    let log = std::fs::read_to_string(repo.root().join(".git/spool/daemon.log")).expect("log");
    assert!(log.contains("spool up:"), "{log}");
}

#[test]
fn logs_of_an_unknown_run_is_a_clear_error() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let out = spool(&repo, &["logs", "t-9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("t-9"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Writes `.spool/config.toml` with a claude agent played by the fake CLI.
fn fake_claude_config(repo: &Repo, extra: &str) {
    let claude = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-agents/claude");
    std::fs::create_dir_all(repo.root().join(".spool")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        format!(
            "[[select]]\nlabels = [\"spool\"]\ntemplate = \"implement\"\n\
             [agents.default]\nkind = \"claude\"\nprogram = {:?}\n{extra}",
            claude.display().to_string()
        ),
    )
    .expect("write");
}

#[test]
fn a_silent_agent_is_killed_by_the_watchdog_and_retried() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    // The shipped template with a 2 s watchdog instead of 5 minutes.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/implement.toml"),
    )
    .expect("shipped template");
    assert!(shipped.contains("heartbeat = \"5m\""));
    std::fs::create_dir_all(repo.root().join(".spool/templates")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/templates/implement.toml"),
        shipped.replace("heartbeat = \"5m\"", "heartbeat = \"2s\""),
    )
    .expect("write");
    let daemon = repo.up("hang-once");
    repo.wait_status("t-1", "closed");
    daemon.stop();
    assert_eq!(repo.agent_log().matches("implement t-1 start").count(), 2);
    let texts = comments(&repo.issue("t-1"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step implement (2/5) ✗")
                && t.contains("(attempt 1)")
                && t.to_lowercase().contains("heartbeat")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("spool: step implement (2/5) ✓") && t.contains("(attempt 2)")),
        "{texts:?}"
    );
}

#[test]
fn agent_costs_are_recorded_and_a_run_over_budget_stops() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    fake_claude_config(&repo, "[budget]\nper_run_usd = 0.1\n");
    let calls = repo.side.path().join("calls");
    let daemon = repo.up_with(
        "ok",
        &[
            ("FAKE_SCENARIO", "success"),
            ("FAKE_CALLS_FILE", calls.to_str().expect("utf-8")),
        ],
    );
    repo.wait_failed("t-1");
    daemon.stop();
    let texts = comments(&repo.issue("t-1"));
    // Each call reports $0.0873: plan and implement run, then the run is over $0.10.
    for step in ["plan (1/5)", "implement (2/5)"] {
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("step {step} ✓")) && t.contains("$0.09")),
            "{step}: {texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains("step test (3/5) ✗") && t.contains("BudgetExceeded")),
        "{texts:?}"
    );
    let calls = std::fs::read_to_string(&calls).expect("calls");
    assert_eq!(calls.lines().count(), 2, "{calls}");
}

#[test]
fn a_retried_agent_step_resumes_the_previous_attempts_session() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    fake_claude_config(&repo, "");
    let calls = repo.side.path().join("calls");
    // Every fresh call crashes after announcing its session; a resumed one succeeds.
    let daemon = repo.up_with(
        "ok",
        &[
            ("FAKE_SCENARIO", "crash"),
            ("FAKE_RESUME_SUCCEEDS", "1"),
            ("FAKE_CALLS_FILE", calls.to_str().expect("utf-8")),
        ],
    );
    repo.wait_for("plan to succeed", || {
        comments(&repo.issue("t-1"))
            .iter()
            .any(|t| t.contains("step plan (1/5) ✓"))
    });
    daemon.stop();
    let calls = std::fs::read_to_string(&calls).expect("calls");
    let lines: Vec<&str> = calls.lines().collect();
    assert!(!lines[0].contains("--resume"), "{calls}");
    assert!(lines[1].contains("--resume fake-session-1"), "{calls}");
    assert!(
        lines[1].contains("previous attempt at this step was interrupted"),
        "{calls}"
    );
}

/// Selects label `spool` for template `name`, written to `.spool/templates/`.
fn use_template(repo: &Repo, name: &str, text: &str) {
    std::fs::create_dir_all(repo.root().join(".spool/templates")).expect("mkdir");
    std::fs::write(
        repo.root().join(format!(".spool/templates/{name}.toml")),
        text,
    )
    .expect("write template");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        format!("max_concurrent = 4\n[[select]]\nlabels = [\"spool\"]\ntemplate = \"{name}\"\n"),
    )
    .expect("write config");
}

/// Runs `spool ARGS` in the repository as a person would, asserting success.
fn person(repo: &Repo, args: &[&str]) {
    ok(repo, &[args, &["--actor", "person"]].concat());
}

const GATED: &str = r#"
name = "gated"
[[step]]
id = "work"
kind = "activity"
command = ["true"]
[[step]]
id = "review"
kind = "gate"
signals = ["approve", "reject"]
fail_on = ["reject"]
[[step]]
id = "finish"
kind = "activity"
command = ["true"]
"#;

#[test]
fn a_gate_is_answered_by_an_approved_or_rejected_label() {
    let repo = Repo::new(&[
        issue("t-1", &["spool"], None),
        issue("t-2", &["spool"], None),
    ]);
    use_template(&repo, "gated", GATED);
    let daemon = repo.up("ok");
    for id in ["t-1", "t-2"] {
        repo.wait_for(&format!("{id} waiting at the gate"), || {
            comments(&repo.issue(id))
                .iter()
                .any(|t| t.starts_with("spool: waiting at gate review") && t.contains("`approved`"))
        });
    }
    // Not answered yet: nothing moves without the label.
    assert_eq!(repo.issue("t-1")["status"], "in_progress");
    person(&repo, &["update", "t-1", "--add-label", "approved"]);
    person(&repo, &["update", "t-2", "--add-label", "rejected"]);
    repo.wait_status("t-1", "closed");
    repo.wait_failed("t-2");
    daemon.stop();
    let texts = comments(&repo.issue("t-2"));
    assert!(
        texts.iter().any(|t| t.contains("GateRejected")),
        "{texts:?}"
    );
    // The gate comment is posted once per run, however often the daemon looked.
    let t1 = comments(&repo.issue("t-1"));
    assert_eq!(
        t1.iter()
            .filter(|t| t.starts_with("spool: waiting at gate"))
            .count(),
        1,
        "{t1:?}"
    );
}

#[test]
fn an_epic_runs_after_all_its_children_are_closed() {
    let child = |id: &str| {
        issue(id, &["spool"], None).replace(
            r#""labels""#,
            &format!(
                r#""dependencies":[{{"issue_id":"{id}","depends_on_id":"e-1","type":"parent-child","created_at":"2026-01-01T00:00:00Z"}}],"labels""#
            ),
        )
    };
    let epic = issue("e-1", &["spool"], None).replace(r#""task""#, r#""epic""#);
    let repo = Repo::new(&[epic, child("e-1.1"), child("e-1.2")]);
    use_template(
        &repo,
        "quick",
        "name = \"quick\"\n[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\n",
    );
    let daemon = repo.up("ok");
    repo.wait_status("e-1", "closed");
    daemon.stop();
    // Oldest first; a coalesced commit lists its messages in order in its body.
    let log = git(repo.root(), &["log", "--reverse", "--format=%B"]);
    let at = |s: &str| {
        log.lines()
            .position(|l| l == s || l.strip_prefix("- ") == Some(s))
            .unwrap_or_else(|| panic!("no {s:?} in\n{log}"))
    };
    let epic_claimed = at("spool: e-1 claimed");
    assert!(at("spool: e-1.1 done ✓") < epic_claimed, "{log}");
    assert!(at("spool: e-1.2 done ✓") < epic_claimed, "{log}");
}

#[test]
fn triage_gives_the_issue_back_relabelled_instead_of_closing_it() {
    let repo = Repo::new(&[issue("t-1", &["spool:triage"], None)]);
    std::fs::create_dir_all(repo.root().join(".spool")).expect("mkdir");
    std::fs::write(
        repo.root().join(".spool/config.toml"),
        "[[select]]\nlabels = [\"spool:triage\"]\ntemplate = \"triage\"\n",
    )
    .expect("write config");
    let daemon = repo.up("ok");
    repo.wait_for("t-1 triaged", || {
        repo.issue("t-1")["labels"].to_string().contains("triaged")
    });
    daemon.stop();
    let v = repo.issue("t-1");
    assert_eq!(v["status"], "open", "{v}");
    assert!(v.get("assignee").is_none(), "{v}");
    assert_eq!(v["labels"], serde_json::json!(["triaged"]), "{v}");
    assert!(repo.agent_log().contains("triage t-1 end"));
}

#[test]
fn an_issue_labelled_needs_review_waits_at_the_implement_templates_gate() {
    let repo = Repo::new(&[issue("t-1", &["spool", "needs-review"], None)]);
    let daemon = repo.up("ok");
    repo.wait_for("t-1 waiting at the review gate", || {
        comments(&repo.issue("t-1"))
            .iter()
            .any(|t| t.starts_with("spool: waiting at gate review"))
    });
    assert_eq!(repo.issue("t-1")["status"], "in_progress");
    person(&repo, &["update", "t-1", "--add-label", "approved"]);
    repo.wait_status("t-1", "closed");
    daemon.stop();
}

#[test]
fn progress_of_a_burst_is_committed_together_and_flushed_on_stop() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    use_template(
        &repo,
        "quick",
        "name = \"quick\"\n[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\n",
    );
    // A window far longer than the test: only the claim and the stop commit.
    let config = repo.root().join(".spool/config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("commit_coalesce_ms = 60000\n{text}")).expect("write");
    let daemon = repo.up("ok");
    repo.wait_status("t-1", "closed");
    let before = git(repo.root(), &["log", "--format=%s"]);
    assert_eq!(
        before.lines().next(),
        Some("spool: t-1 claimed"),
        "{before}"
    );
    daemon.stop();
    let last = git(repo.root(), &["log", "-1", "--format=%B"]);
    assert!(
        last.starts_with("spool: t-1 a ✓ (1/1) (+1 more)\n"),
        "{last}"
    );
    assert!(last.contains("\n- spool: t-1 done ✓\n"), "{last}");
    assert_eq!(
        git(repo.root(), &["show", "HEAD:.beads/issues.jsonl"]),
        std::fs::read_to_string(repo.issues_path()).expect("read")
    );
}

#[test]
fn issues_needing_a_capability_wait_for_a_daemon_that_has_it() {
    let repo = Repo::new(&[
        issue("t-1", &["spool", "needs:gpu"], None),
        issue("t-2", &["spool"], None),
    ]);
    use_template(
        &repo,
        "quick",
        "name = \"quick\"\n[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\n",
    );
    let ready = ok_json(&repo, &["--json", "ready"]);
    let t1 = ready
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == "t-1"))
        .expect("t-1 ready");
    assert_eq!(t1["needs"], serde_json::json!(["gpu"]), "{ready}");
    let daemon = repo.up("ok");
    repo.wait_status("t-2", "closed");
    assert_eq!(repo.issue("t-1")["status"], "open");
    // This machine gets a GPU: the edited config applies without a restart.
    let config = repo.root().join(".spool/config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("capabilities = [\"gpu\"]\n{text}")).expect("write");
    repo.wait_status("t-1", "closed");
    let stderr = daemon.stop();
    assert!(
        stderr.contains("t-1 left for another machine: needs gpu"),
        "{stderr}"
    );
}

#[test]
fn a_missing_agent_program_stops_the_daemon_before_any_claim() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .current_dir(repo.root())
        .args(["up"])
        .env("SPOOL_AGENT", "/no/such/agent")
        .output()
        .expect("spawn");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/agent") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(repo.issue("t-1")["status"], "open");
}

#[test]
fn work_an_agent_discovers_lands_in_the_repositorys_backlog() {
    let repo = Repo::new(&[issue("t-1", &["spool"], None)]);
    let daemon = repo.up_with("discover", &[("FAKE_SPOOL", env!("CARGO_BIN_EXE_spool"))]);
    repo.wait_status("t-1", "closed");
    daemon.stop();
    let text = std::fs::read_to_string(repo.issues_path()).expect("backlog");
    let follow: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["title"] == "Follow-up of t-1")
        .unwrap_or_else(|| panic!("no follow-up in\n{text}"));
    assert_eq!(follow["status"], "open", "{follow}");
    assert_eq!(
        follow["dependencies"][0]["depends_on_id"], "t-1",
        "{follow}"
    );
    assert_eq!(
        follow["dependencies"][0]["type"], "discovered-from",
        "{follow}"
    );
    // Committed with the daemon's progress; the run branch's backlog is untouched.
    assert_eq!(
        git(repo.root(), &["show", "HEAD:.beads/issues.jsonl"]),
        text
    );
    let branch = git(repo.root(), &["show", "spool/t-1:.beads/issues.jsonl"]);
    assert!(!branch.contains("Follow-up"), "{branch}");
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

// ---- team mode: several daemons, one bare remote -----------------------------------

/// A bare remote holding the backlog `lines` and `n` clones of it (the first is the
/// repository that made the first commit), each with the team configuration for actor
/// `spool@<letter>`, a `work` template that logs `<letter>:<issue>` to `log`, and
/// `extra` configuration.
fn team(lines: &[String], n: usize, log: &Path, extra: &str) -> (tempfile::TempDir, Vec<Repo>) {
    let remote = tempfile::tempdir().expect("tempdir");
    let first = Repo::new(lines);
    git(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    let url = remote.path().to_str().expect("utf-8").to_string();
    git(first.root(), &["remote", "add", "origin", &url]);
    git(first.root(), &["push", "-q", "-u", "origin", "main"]);
    let mut repos = vec![first];
    for _ in 1..n {
        let r = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
            side: tempfile::tempdir().expect("tempdir"),
        };
        let dest = r.root().to_str().expect("utf-8").to_string();
        git(Path::new("/"), &["clone", "-q", &url, &dest]);
        repos.push(r);
    }
    for (i, r) in repos.iter().enumerate() {
        let letter = (b'a' + i as u8) as char;
        use_template(
            r,
            "work",
            &format!(
                "name = \"work\"\n[[step]]\nid = \"work\"\nkind = \"activity\"\n\
                 command = [\"sh\", \"-c\", \"echo \\\"$1\\\" >> \\\"$2\\\"\", \"sh\", \"{letter}:{{issue.id}}\", {:?}]\n",
                log.display().to_string()
            ),
        );
        let config = r.root().join(".spool/config.toml");
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            format!("actor = \"spool@{letter}\"\ncommit_coalesce_ms = 50\n{text}[team]\nsync_secs = 1\n{extra}"),
        )
        .expect("write config");
    }
    (remote, repos)
}

/// The issues of the remote's `main`.
fn remote_issues(remote: &Path) -> Vec<Value> {
    let out = Command::new("git")
        .args([
            "--git-dir",
            remote.to_str().expect("utf-8"),
            "show",
            "main:.beads/issues.jsonl",
        ])
        .output()
        .expect("git show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line on the remote: {e}: {l}"))
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_daemons_run_every_issue_exactly_once() {
    let lines: Vec<String> = (1..=50)
        .map(|n| issue(&format!("t-{n}"), &["spool"], None))
        .collect();
    let side = tempfile::tempdir().expect("tempdir");
    let log = side.path().join("runs.log");
    let (remote, repos) = team(&lines, 3, &log, "");
    let daemons: Vec<Daemon> = repos.iter().map(|r| r.up("ok")).collect();
    wait_until(
        "all 50 closed on the remote",
        Duration::from_secs(240),
        || {
            let issues = remote_issues(remote.path());
            issues.len() == 50 && issues.iter().all(|v| v["status"] == "closed")
        },
    );
    let stderr = daemons
        .into_iter()
        .map(Daemon::stop)
        .collect::<Vec<_>>()
        .join("\n-----\n");
    let issues = remote_issues(remote.path());
    let mut ids: Vec<&str> = issues.iter().filter_map(|v| v["id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "duplicate ids on the remote");
    let text = std::fs::read_to_string(&log).expect("log");
    let mut runs: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(':').map(|(_, id)| id).unwrap_or(l))
        .collect();
    assert_eq!(runs.len(), 50, "{text}\n{stderr}");
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), 50, "an issue ran twice:\n{text}\n{stderr}");
    // The work was shared out.
    let by = |who: &str| text.lines().filter(|l| l.starts_with(who)).count();
    assert!(
        by("a:") + by("b:") + by("c:") == 50
            && [by("a:"), by("b:"), by("c:")]
                .iter()
                .filter(|&&n| n > 0)
                .count()
                >= 2,
        "{text}"
    );
}

#[test]
fn a_dead_daemons_claims_are_taken_over_after_their_lease_and_not_run_again() {
    let lines = vec![
        issue("t-1", &["spool"], None),
        issue("t-2", &["spool"], None),
    ];
    let side = tempfile::tempdir().expect("tempdir");
    let log = side.path().join("runs.log");
    let (remote, repos) = team(&lines, 2, &log, "lease_secs = 4\n");
    // A's work hangs, so A holds both claims when it dies.
    let hang = "name = \"work\"\n[[step]]\nid = \"work\"\nkind = \"activity\"\n\
                command = [\"sh\", \"-c\", \"echo \\\"$1\\\" >> \\\"$2\\\"; sleep 120\", \"sh\", \"a:{issue.id}\", LOG]\n"
        .replace("LOG", &format!("{:?}", log.display().to_string()));
    std::fs::write(repos[0].root().join(".spool/templates/work.toml"), hang).expect("write");
    let a = repos[0].up("ok");
    wait_until(
        "A's two claims on the remote",
        Duration::from_secs(60),
        || {
            let issues = remote_issues(remote.path());
            issues.iter().filter(|v| v["assignee"] == "spool@a").count() == 2
        },
    );
    wait_until("A's two runs started", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            == 2
    });
    a.kill9();
    let b = repos[1].up("ok");
    wait_until("B finished both", Duration::from_secs(60), || {
        let issues = remote_issues(remote.path());
        issues.iter().all(|v| v["status"] == "closed")
    });
    b.stop();
    for v in remote_issues(remote.path()) {
        assert!(
            comments(&v)
                .iter()
                .any(|c| c.starts_with("spool: taken over from spool@a, whose lease expired at")),
            "{v}"
        );
    }
    // A comes back: it syncs first, sees the work done, and runs nothing again.
    let again = repos[0].up("ok");
    wait_until("A's old runs stopped", Duration::from_secs(60), || {
        ok_json(&repos[0], &["status", "--json"])["runs"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x["status"] == "terminated"))
    });
    again.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("a:")).count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("b:")).count(),
        2,
        "{text}"
    );
}

#[test]
fn with_the_backlog_on_its_own_branch_runs_work_on_the_code_and_commit_the_backlog_apart() {
    let side = tempfile::tempdir().expect("tempdir");
    let log = side.path().join("runs.log");
    let (remote, repos) = team(&[issue("t-1", &["spool"], None)], 1, &log, "");
    let repo = &repos[0];
    let out = spool(repo, &["sync", "--mode", "branch"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main_before = git(repo.root(), &["rev-parse", "main"]);
    let daemon = repo.up("ok");
    wait_until(
        "t-1 closed on the remote's backlog branch",
        Duration::from_secs(60),
        || {
            let out = Command::new("git")
                .args([
                    "--git-dir",
                    remote.path().to_str().expect("utf-8"),
                    "show",
                    "spool/backlog:.beads/issues.jsonl",
                ])
                .output()
                .expect("git show");
            String::from_utf8_lossy(&out.stdout).contains(r#""status":"closed""#)
        },
    );
    daemon.stop();
    // The code branch has none of the daemon's commits; the run branched from the code.
    assert_eq!(git(repo.root(), &["rev-parse", "main"]), main_before);
    let files = git(repo.root(), &["ls-tree", "--name-only", "spool/t-1"]);
    assert!(files.contains("README"), "{files}");
    let shown = ok_json(repo, &["--json", "show", "t-1"]);
    assert_eq!(shown[0]["status"], "closed", "{shown}");
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "a:t-1\n");
}

#[test]
fn teammates_edits_and_the_daemons_progress_on_one_issue_all_survive() {
    let side = tempfile::tempdir().expect("tempdir");
    let log = side.path().join("runs.log");
    let release = side.path().join("release");
    let (remote, repos) = team(&[issue("t-1", &["spool"], None)], 3, &log, "");
    // A's run waits until the people are done.
    let wait = format!(
        "name = \"work\"\n[[step]]\nid = \"work\"\nkind = \"activity\"\n\
         command = [\"sh\", \"-c\", \"while [ ! -e \\\"$1\\\" ]; do sleep 0.05; done\", \"sh\", {:?}]\n",
        release.display().to_string()
    );
    std::fs::write(repos[0].root().join(".spool/templates/work.toml"), wait).expect("write");
    let a = repos[0].up("ok");
    wait_until("A's claim on the remote", Duration::from_secs(60), || {
        remote_issues(remote.path())[0]["assignee"] == "spool@a"
    });
    ok(
        &repos[1],
        &[
            "--actor",
            "bob",
            "update",
            "t-1",
            "--title",
            "A better title",
        ],
    );
    ok(&repos[1], &["sync"]);
    ok(
        &repos[2],
        &["--actor", "cy", "update", "t-1", "--add-label", "area:ui"],
    );
    ok(
        &repos[2],
        &[
            "--actor",
            "cy",
            "comments",
            "add",
            "t-1",
            "Mind the dark theme",
        ],
    );
    ok(&repos[2], &["sync"]);
    std::fs::write(&release, "").expect("release");
    wait_until("t-1 closed on the remote", Duration::from_secs(60), || {
        remote_issues(remote.path())[0]["status"] == "closed"
    });
    a.stop();
    let v = remote_issues(remote.path()).remove(0);
    assert_eq!(v["title"], "A better title", "{v}");
    let labels = v["labels"].to_string();
    assert!(
        labels.contains("area:ui") && labels.contains("spool"),
        "{v}"
    );
    let texts = comments(&v);
    assert!(texts.iter().any(|t| t == "Mind the dark theme"), "{v}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("spool: step work (1/1) ✓")),
        "{v}"
    );
    assert!(v["close_reason"].to_string().contains("completed"), "{v}");
    // Comments numbered alike on two clones keep distinct ids after the merges.
    let mut ids: Vec<String> = v["comments"]
        .as_array()
        .map(|a| a.iter().map(|c| c["id"].to_string()).collect())
        .unwrap_or_default();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "{v}");
}

#[test]
fn an_unreachable_remote_holds_a_claim_back_until_it_is_reachable_again() {
    let side = tempfile::tempdir().expect("tempdir");
    let log = side.path().join("runs.log");
    let (remote, repos) = team(&[issue("t-1", &["spool"], None)], 1, &log, "");
    let repo = &repos[0];
    let moved = side.path().join("remote-away");
    std::fs::rename(remote.path(), &moved).expect("take the remote away");
    let daemon = repo.up("ok");
    // Claimed here, but not confirmed: nothing runs.
    repo.wait_status("t-1", "in_progress");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!log.exists(), "ran without a pushed claim");
    std::fs::rename(&moved, remote.path()).expect("bring the remote back");
    wait_until("t-1 closed on the remote", Duration::from_secs(60), || {
        remote_issues(remote.path())
            .first()
            .is_some_and(|v| v["status"] == "closed")
    });
    let stderr = daemon.stop();
    assert!(stderr.contains("the claim is not pushed yet"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "a:t-1\n");
}
