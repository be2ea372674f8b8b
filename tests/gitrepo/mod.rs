//! Temporary git repositories built and inspected with the real `git` binary, sealed off
//! from the user's and the system's git configuration.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use chrono::DateTime;
use spool::git::Signature;

/// `git` with no global or system config and a fixed identity.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "User")
        .env("GIT_AUTHOR_EMAIL", "user@example.com")
        .env("GIT_COMMITTER_NAME", "User")
        .env("GIT_COMMITTER_EMAIL", "user@example.com")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE");
    cmd
}

pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_cmd(dir).args(args).output().expect("run git")
}

/// Runs git and returns stdout, failing the test if git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_output(dir, args).status.success()
}

/// `git init` on branch `main`.
pub fn init_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
}

pub fn write(dir: &Path, rela: &str, text: &str) {
    let p = dir.join(rela);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

pub fn sig() -> Signature {
    Signature {
        name: "spool".into(),
        email: "spool@test".into(),
        time: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
    }
}
