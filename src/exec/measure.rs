//! Timing whole commands for benchmarks: wall time of a child process run to completion,
//! and the peak resident memory of the largest child waited for so far.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `argv` in `cwd` with stdin closed and stdout discarded; fails (with its stderr)
/// if it exits non-zero. Returns the wall time from spawn to exit.
pub fn time_command(argv: &[String], cwd: &Path, env: &[(&str, &str)]) -> Result<Duration> {
    let (program, args) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("running {program}"))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(elapsed)
}

/// Peak resident set size, in KiB, of the largest child process waited for so far.
pub fn children_max_rss_kib() -> Result<i64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("getrusage")?;
    Ok(usage.max_rss())
}
