//! The official beads MCP server (PyPI `beads-mcp`) driving the spool binary as its `bd`.
//!
//! The check itself is `tests/mcp/check_beads_mcp.py`; it needs a Python that has
//! `beads-mcp` installed: env `SPOOL_MCP_PYTHON`, else `.venv-mcp/bin/python` (made by
//! `.ci/install-mcp`). Without either the test says so and passes, so a plain
//! `cargo test` works on a machine that never installed it; CI installs it.
//! The real backlog fixtures (`SPOOL_FIXTURES`, else `../shared/fixtures/beads`) are swept
//! too when present.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn mcp_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPOOL_MCP_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "SPOOL_MCP_PYTHON={} does not exist (run .ci/install-mcp)",
            p.display()
        );
        return Some(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-mcp/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn beads_mcp_client_tools_and_server_work_against_spool() {
    let Some(python) = mcp_python() else {
        eprintln!("skipped: beads-mcp not installed (run .ci/install-mcp)");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/check_beads_mcp.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(env!("CARGO_BIN_EXE_spool"));
    let fixtures = common::fixtures_dir();
    if fixtures.is_dir() {
        cmd.arg(&fixtures);
    } else {
        eprintln!(
            "real backlogs skipped: no fixtures at {}",
            fixtures.display()
        );
    }
    let out = cmd
        .env_remove("BEADS_DIR")
        .env_remove("BEADS_DB")
        .env_remove("BEADS_WORKING_DIR")
        .env_remove("BEADS_ACTOR")
        .env_remove("BD_ACTOR")
        .env_remove("SPOOL_NOW")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the beads-mcp check script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        python.display(),
        script.display(),
        out.status
    );
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 "),
        "unexpected summary {summary:?}\nstdout:\n{stdout}"
    );
}
