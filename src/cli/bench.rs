//! `spool bench`: synthetic backlogs and end-to-end timings of the backlog commands.
//!
//! Timings are whole processes (spawn, read, answer, exit), the figure a person or an
//! agent waits for, next to a reference measured in the same run: reading the file and
//! parsing every line with serde_json, the least any JSONL tool must do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use spool_core::beads::graph::Graph;
use spool_core::beads::json::{write_value, Format};
use spool_core::beads::ready::{ready, ReadyQuery};
use spool_core::beads::BeadsFile;

use super::Ctx;
use crate::atomic::write_atomic;
use crate::exec::measure::time_command;
use crate::synth::{generate, SynthSpec};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a synthetic backlog (epics, children, blocking chains, labels, comments).
    Gen(GenArgs),
    /// Time ready/list/create/update/close on synthetic backlogs; prints a Markdown report.
    Backlog(BacklogArgs),
    /// Time from a new ready issue in the backlog file to the daemon's claim commit.
    Daemon(super::daemon::DaemonBenchArgs),
    /// Time the backlog merge driver on a large backlog with changes on both sides.
    Merge(super::merge::MergeBenchArgs),
    /// Next-fire evaluation and tick cost with many schedules loaded.
    Schedules(super::schedule::ScheduleBenchArgs),
    /// Time `spool sync` on a large backlog receiving a batch of a teammate's changes.
    Sync(super::bench_sync::SyncBenchArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of issues.
    #[arg(long, default_value_t = 10_000)]
    pub issues: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Output file (default: stdout).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BacklogArgs {
    /// Backlog sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Timed runs per command.
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
}

/// The backlog as JSONL bytes, in classic bd's encoding.
pub fn synth_bytes(spec: &SynthSpec) -> Vec<u8> {
    let mut out = Vec::new();
    for m in generate(spec) {
        write_value(&mut out, &Value::Object(m), &Format::go());
        out.push(b'\n');
    }
    out
}

pub fn run(ctx: &Ctx, cmd: &BenchCommand) -> Result<i32> {
    match cmd {
        BenchCommand::Gen(a) => {
            let bytes = synth_bytes(&SynthSpec {
                issues: a.issues,
                seed: a.seed,
                prefix: a.prefix.clone(),
            });
            match &a.output {
                Some(p) => write_atomic(&ctx.cwd.join(p), &bytes)?,
                None => {
                    use std::io::Write;
                    std::io::stdout().lock().write_all(&bytes)?;
                }
            }
            Ok(0)
        }
        BenchCommand::Backlog(a) => backlog(a),
        BenchCommand::Daemon(a) => super::daemon::bench_daemon(a),
        BenchCommand::Merge(a) => super::merge::bench_merge(a),
        BenchCommand::Schedules(a) => super::schedule::bench_schedules(a),
        BenchCommand::Sync(a) => super::bench_sync::bench_sync(a),
    }
}

#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub(super) what: String,
    pub(super) times: Vec<Duration>,
}

/// A Markdown table of samples: p50, p90 and min in ms.
pub(super) fn print_table(first_column: &str, samples: &[Sample]) {
    println!("| {first_column} | p50 | p90 | min |\n|---|---:|---:|---:|");
    for s in samples {
        println!(
            "| {} | {} | {} | {} |",
            s.what,
            ms(s.pct(0.5)),
            ms(s.pct(0.9)),
            ms(s.pct(0.0))
        );
    }
}

impl Sample {
    pub(super) fn pct(&self, p: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        let i = ((t.len() as f64 - 1.0) * p).round() as usize;
        t[i.min(t.len() - 1)]
    }
}

pub(super) fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

pub(super) fn spool(dir: &Path, args: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "spool".into());
    let mut v = vec![exe, "-C".into(), dir.display().to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

pub(super) const ENV: &[(&str, &str)] = &[("BEADS_ACTOR", "bench"), ("NO_COLOR", "1")];

/// Set by the benchmark for the processes it times: a file each appends its peak RSS to.
const PEAK_RSS_ENV: &str = "SPOOL_BENCH_PEAK_RSS";

/// Appends this process's peak RSS (KiB) to the file named by [`PEAK_RSS_ENV`], if set.
/// The process's own `VmHWM` is the honest figure: the rusage a parent sees for a child
/// also counts the parent's memory at spawn (Linux carries it over at `exec`).
pub fn record_peak_rss() {
    let Some(path) = std::env::var_os(PEAK_RSS_ENV) else {
        return;
    };
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        });
    if let Some(kib) = hwm {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{kib}");
        }
    }
}

/// The largest peak RSS (KiB) recorded in `path` so far.
fn max_recorded_rss(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

pub(super) fn time_runs(
    runs: usize,
    mut f: impl FnMut(usize) -> Result<Duration>,
) -> Result<Vec<Duration>> {
    (0..runs).map(&mut f).collect()
}

fn backlog(a: &BacklogArgs) -> Result<i32> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let tmp = tempfile::tempdir().context("creating a scratch directory")?;
    let rss_file = tmp.path().join("peak-rss");
    let rss_env = rss_file.display().to_string();
    let env_owned: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([(PEAK_RSS_ENV, rss_env.as_str())])
        .collect();
    let env: &[(&str, &str)] = &env_owned;
    println!("# spool backlog benchmark\n");
    println!("- machine: {}", machine());
    println!(
        "- command: `spool bench backlog --sizes {} --runs {}`",
        a.sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(","),
        a.runs
    );
    println!("- each figure is a whole `spool` process (spawn → exit), stdout discarded; p50 / p90 / min in ms over {} runs\n", a.runs);
    for &n in &a.sizes {
        let dir = tmp.path().join(format!("b{n}"));
        std::fs::create_dir_all(dir.join(".beads"))?;
        std::fs::write(dir.join(".beads/config.yaml"), "issue-prefix: \"bench\"\n")?;
        let bytes = synth_bytes(&SynthSpec {
            issues: n,
            seed: 42,
            prefix: "bench".into(),
        });
        let path = dir.join(".beads/issues.jsonl");
        std::fs::write(&path, &bytes)?;
        let cache = dir.join(".beads/.spool");
        let mut samples = Vec::new();

        // Reference: read the file and parse every line with serde_json.
        samples.push(Sample {
            what: "reference: read + serde_json parse of every line (in-process)".into(),
            times: time_runs(a.runs, |_| {
                let start = Instant::now();
                let data = std::fs::read(&path)?;
                let mut n = 0usize;
                for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: Value = serde_json::from_slice(line)?;
                    n += v.as_object().map_or(0, |m| m.len());
                }
                std::hint::black_box(n);
                Ok(start.elapsed())
            })?,
        });
        let ready = spool(&dir, &["ready", "--json"]);
        samples.push(Sample {
            what: "`ready --json`, cold (no cache)".into(),
            times: time_runs(a.runs, |_| {
                let _ = std::fs::remove_dir_all(&cache);
                time_command(&ready, &dir, env)
            })?,
        });
        time_command(&ready, &dir, env)?;
        samples.push(Sample {
            what: "`ready --json`, warm (file unchanged since the last command)".into(),
            times: time_runs(a.runs, |_| time_command(&ready, &dir, env))?,
        });
        let list = spool(&dir, &["list", "--json"]);
        time_command(&list, &dir, env)?;
        samples.push(Sample {
            what: "`list --json`, warm".into(),
            times: time_runs(a.runs, |_| time_command(&list, &dir, env))?,
        });
        for (what, args) in [
            ("`show --json` of one issue", vec!["show", "--json"]),
            ("`blocked --json`", vec!["blocked", "--json"]),
            ("`stats --json`", vec!["stats", "--json"]),
        ] {
            let mut args = args;
            let shown = open_ids(&bytes, 1);
            if what.starts_with("`show") {
                args.insert(1, shown.first().map_or("", String::as_str));
            }
            let cmd = spool(&dir, &args);
            samples.push(Sample {
                what: what.into(),
                times: time_runs(a.runs, |_| time_command(&cmd, &dir, env))?,
            });
        }
        samples.push(Sample {
            what: "`create` (`q`)".into(),
            times: time_runs(a.runs, |i| {
                time_command(&spool(&dir, &["q", &format!("Bench issue {i}")]), &dir, env)
            })?,
        });
        let open_ids = open_ids(&bytes, a.runs);
        let ready_ids = ready_ids(&bytes, a.runs);
        if open_ids.len() < a.runs || ready_ids.len() < a.runs {
            bail!("the synthetic backlog has too few open issues");
        }
        samples.push(Sample {
            what: "`update --priority`".into(),
            times: time_runs(a.runs, |i| {
                time_command(
                    &spool(
                        &dir,
                        &["update", &open_ids[i], "--priority", &(i % 5).to_string()],
                    ),
                    &dir,
                    env,
                )
            })?,
        });
        samples.push(Sample {
            what: "`close` (guards checked) of a ready issue".into(),
            times: time_runs(a.runs, |i| {
                time_command(&spool(&dir, &["close", &ready_ids[i]]), &dir, env)
            })?,
        });
        let rss = max_recorded_rss(&rss_file);
        println!("## {n} issues ({:.1} MB)\n", bytes.len() as f64 / 1e6);
        print_table("command", &samples);
        println!(
            "\nPeak RSS of any spool process so far (its own VmHWM): {:.1} MB\n",
            rss as f64 / 1024.0
        );
    }
    Ok(0)
}

/// Ready tasks (which `close` accepts without `--force`), in ready order.
fn ready_ids(bytes: &[u8], want: usize) -> Vec<String> {
    let (file, _) = BeadsFile::parse(bytes);
    let graph = Graph::new(file.issues());
    let query = ReadyQuery {
        limit: want,
        issue_type: Some("task".into()),
        ..ReadyQuery::default()
    };
    ready(&graph, &query, chrono::Utc::now())
        .issues
        .iter()
        .map(|&i| graph.issue(i).id.clone())
        .collect()
}

fn open_ids(bytes: &[u8], want: usize) -> Vec<String> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v["status"] == "open" && v["issue_type"] != "epic")
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .take(want)
        .collect()
}

pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}, {}", std::env::consts::OS)
}
