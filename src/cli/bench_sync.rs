//! `spool bench sync`: the round trip of `spool sync` on a large backlog receiving a
//! batch of changed issues from a teammate, on scratch repositories with a local bare
//! remote (so the figure is spool's and git's work, not a network's).

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use spool_core::beads::json::{write_value, Format};

use super::bench::{machine, spool, synth_bytes, time_runs, Sample, ENV};
use crate::exec::measure::time_command;
use crate::git::Git;
use crate::synth::SynthSpec;

#[derive(Debug, Args)]
pub struct SyncBenchArgs {
    /// Issues in the backlog.
    #[arg(long, default_value_t = 10_000)]
    pub issues: usize,
    /// Issues the teammate changes before each timed sync.
    #[arg(long, default_value_t = 100)]
    pub incoming: usize,
    /// Timed syncs per case.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

const BACKLOG: &str = ".beads/issues.jsonl";

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    Git::new(dir).run(args)?;
    Ok(())
}

/// Rewrites the title and `updated_at` of the issues `ids` in the backlog of `dir`,
/// leaving every other line byte for byte.
fn retitle(dir: &Path, ids: &[String], tag: &str) -> Result<()> {
    let path = dir.join(BACKLOG);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(text.len() + ids.len() * 16);
    for line in text.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let mut v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                out.extend_from_slice(line);
                continue;
            }
        };
        let hit = v["id"].as_str().is_some_and(|id| wanted.contains(id));
        if !hit {
            out.extend_from_slice(line);
            continue;
        }
        let title = format!("{} ({tag})", v["title"].as_str().unwrap_or(""));
        v["title"] = Value::String(title);
        v["updated_at"] = Value::String("2026-07-01T00:00:00Z".into());
        write_value(&mut out, &v, &Format::go());
        out.push(b'\n');
    }
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn ids_of(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

fn clone(tmp: &Path, remote: &Path, name: &str) -> Result<std::path::PathBuf> {
    let remote = remote.to_str().context("scratch path is not UTF-8")?;
    git(tmp, &["clone", "-q", remote, name])?;
    let dir = tmp.join(name);
    git(&dir, &["config", "user.name", name])?;
    git(&dir, &["config", "user.email", &format!("{name}@bench")])?;
    Ok(dir)
}

pub fn bench_sync(a: &SyncBenchArgs) -> Result<i32> {
    if a.runs == 0 || a.incoming == 0 {
        bail!("--runs and --incoming must be at least 1");
    }
    let tmp = tempfile::tempdir().context("creating a scratch directory")?;
    let t = tmp.path();
    let bytes = synth_bytes(&SynthSpec {
        issues: a.issues,
        seed: 42,
        prefix: "bench".into(),
    });
    let ids = ids_of(&bytes);
    // Each run's teammate batch, plus one local issue per run, all distinct.
    let needed = a.runs * 3 * (a.incoming + 1);
    if ids.len() < needed {
        bail!(
            "{} issues are too few for {} runs of {} incoming changes",
            a.issues,
            a.runs,
            a.incoming
        );
    }
    let remote = t.join("remote.git");
    std::fs::create_dir_all(&remote)?;
    git(&remote, &["init", "-q", "--bare", "-b", "main"])?;
    let seed = t.join("seed");
    std::fs::create_dir_all(seed.join(".beads"))?;
    git(&seed, &["init", "-q", "-b", "main"])?;
    std::fs::write(seed.join(BACKLOG), &bytes)?;
    std::fs::write(seed.join(".beads/config.yaml"), "issue-prefix: bench\n")?;
    std::fs::write(seed.join(".gitignore"), ".beads/*.lock\n")?;
    git(&seed, &["add", "."])?;
    git(
        &seed,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "init",
        ],
    )?;
    let remote_s = remote.to_str().context("scratch path is not UTF-8")?;
    git(&seed, &["push", "-q", remote_s, "main"])?;
    let local = clone(t, &remote, "local")?;
    let mate = clone(t, &remote, "mate")?;
    let sync = spool(&local, &["sync"]);
    let mut batches = ids.chunks(a.incoming + 1);
    let mut round = 0usize;
    let mut incoming = |local_edit: bool| -> Result<()> {
        round += 1;
        let batch = batches.next().context("out of issues")?;
        let (mine, theirs) = batch.split_at(1);
        git(&mate, &["pull", "-q", "--no-rebase", "--no-edit"])?;
        retitle(&mate, theirs, &format!("mate {round}"))?;
        git(&mate, &["commit", "-qam", "mate: retitle"])?;
        git(&mate, &["push", "-q", "origin", "main"])?;
        if local_edit {
            retitle(&local, mine, &format!("local {round}"))?;
        }
        Ok(())
    };
    let env: &[(&str, &str)] = ENV;
    let mut samples = Vec::new();
    samples.push(Sample {
        what: format!(
            "{} incoming changed issues + 1 local edit: commit, fetch, merge per issue, push",
            a.incoming
        ),
        times: time_runs(a.runs, |_| {
            incoming(true)?;
            time_command(&sync, &local, env)
        })?,
    });
    samples.push(Sample {
        what: format!(
            "{} incoming changed issues, no local edit: fetch, fast-forward",
            a.incoming
        ),
        times: time_runs(a.runs, |_| {
            incoming(false)?;
            time_command(&sync, &local, env)
        })?,
    });
    samples.push(Sample {
        what: "nothing new on either side: fetch only".into(),
        times: time_runs(a.runs, |_| time_command(&sync, &local, env))?,
    });
    println!("# spool sync benchmark\n");
    println!("- machine: {}", machine());
    println!(
        "- command: `spool bench sync --issues {} --incoming {} --runs {}`",
        a.issues, a.incoming, a.runs
    );
    println!(
        "- backlog: {} issues ({:.1} MB); remote: a bare repository on the same disk",
        a.issues,
        bytes.len() as f64 / 1e6
    );
    println!(
        "- each figure is a whole `spool sync` process; p50 / p90 / min in ms over {} runs\n",
        a.runs
    );
    super::bench::print_table("case", &samples);
    Ok(0)
}
