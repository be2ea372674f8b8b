//! A sealed environment for running the real `spool` binary: a temp directory, a fixed
//! clock and actor, no user or system git config, no inherited BEADS_* variables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const NOW: &str = "2026-03-01T12:00:00Z";

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A workspace with `.beads/issues.jsonl` holding `jsonl` and prefix `t`.
    pub fn with_backlog(jsonl: &str) -> TestEnv {
        let env = TestEnv::new();
        let beads = env.root().join(".beads");
        std::fs::create_dir_all(&beads).expect("mkdir .beads");
        std::fs::write(beads.join("issues.jsonl"), jsonl).expect("write backlog");
        std::fs::write(beads.join("config.yaml"), "issue-prefix: \"t\"\n").expect("write config");
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn issues_path(&self) -> PathBuf {
        self.root().join(".beads/issues.jsonl")
    }

    pub fn backlog(&self) -> String {
        std::fs::read_to_string(self.issues_path()).expect("read backlog")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_spool"));
        c.current_dir(self.root())
            .env_remove("BEADS_DIR")
            .env_remove("BEADS_ACTOR")
            .env_remove("BD_ACTOR")
            .env("SPOOL_NOW", NOW)
            .env("BEADS_ACTOR", "tester")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("NO_COLOR", "1");
        c
    }

    /// Runs `spool args...` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn spool")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "spool {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json` and parses stdout as exactly one JSON document.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("spool {all:?}: stdout is not one JSON document ({e}):\n{out}")
        })
    }

    /// Runs and asserts failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "spool {args:?} should fail\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }
}

/// `<repo>/../shared/fixtures/beads`, or `SPOOL_FIXTURES`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("SPOOL_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/beads"),
    }
}

/// Ids of a JSON array of issue objects, in order.
pub fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("JSON array")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}
