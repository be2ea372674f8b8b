//! `spool logs ID [-f]`: the full output of a run's attempts, step by step.
//!
//! Every attempt of a `command` activity writes its transcript (`out `/`err ` records,
//! see `exec::ActivitySpec::log_file`) into its attempt directory; an agent step also
//! writes the agent CLI's own transcript there (`agent.log`). This command reads those
//! files in order, and with `--follow` keeps reading until the run closes.

use super::Ctx;
use crate::engine::command::{attempt_dir, OUTPUT_LOG};
use crate::store::{Durability, Store};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use spool_core::workflow::event::EventAttributes;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The agent CLI's transcript of an agent step, beside the step's own.
pub const AGENT_LOG: &str = "agent.log";

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// An issue id (its latest run) or a run id.
    pub id: String,
    /// Keep printing new output until the run closes.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this step.
    #[arg(long)]
    pub step: Option<String>,
}

/// One transcript file and how far it has been printed.
struct Source {
    step: String,
    attempt: u32,
    /// `step` (the activity's own output) or `agent` (the agent CLI's).
    origin: &'static str,
    path: PathBuf,
    offset: u64,
    /// An unterminated last line, held until its end arrives.
    partial: Vec<u8>,
}

pub fn logs_cmd(ctx: &Ctx, db: Option<&Path>, args: &LogsArgs) -> Result<i32> {
    let db = super::run::database_path(ctx, db)?;
    if !db.exists() {
        bail!(
            "no run for {:?}: no runs yet in this repository ({} does not exist)",
            args.id,
            db.display()
        );
    }
    let attempts = db
        .parent()
        .map(|d| d.join("attempts"))
        .context("the database path has no directory")?;
    let store =
        Store::open(&db, Durability::Full).with_context(|| format!("opening {}", db.display()))?;
    let Some(run) = store.find_run(&args.id)? else {
        bail!("no run for {:?} (see `spool status`)", args.id);
    };
    let mut sources: Vec<Source> = Vec::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let closed = store
            .find_run(&run.run_id)?
            .is_some_and(|r| r.closed_at.is_some());
        discover(&store, &attempts, &run.run_id, args, &mut sources)?;
        for source in &mut sources {
            print_new(ctx, source, &mut out)?;
        }
        out.flush().context("writing to stdout")?;
        // Read once more after seeing the close, so the last attempt's end is shown.
        if !args.follow || closed {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if sources.is_empty() && !ctx.global.json {
        eprintln!("run {} has no step output yet", run.run_id);
    }
    Ok(0)
}

/// Adds the transcript files that appeared since the last look, in history order.
fn discover(
    store: &Store,
    attempts: &Path,
    run_id: &str,
    args: &LogsArgs,
    sources: &mut Vec<Source>,
) -> Result<()> {
    let mut steps = BTreeMap::new();
    for event in store.history(run_id)? {
        if let EventAttributes::ActivityTaskScheduled { activity_id, .. } = &event.attributes {
            steps.insert(event.event_id, activity_id.clone());
        }
    }
    for (scheduled, step) in steps {
        if args.step.as_ref().is_some_and(|s| s != &step) {
            continue;
        }
        for attempt in 1.. {
            let dir = attempt_dir(attempts, run_id, scheduled, attempt);
            if !dir.is_dir() {
                break;
            }
            for (origin, name) in [("step", OUTPUT_LOG), ("agent", AGENT_LOG)] {
                let path = dir.join(name);
                if path.is_file() && !sources.iter().any(|s| s.path == path) {
                    sources.push(Source {
                        step: step.clone(),
                        attempt,
                        origin,
                        path,
                        offset: 0,
                        partial: Vec::new(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Prints the complete lines appended to `source` since the last call.
fn print_new(ctx: &Ctx, source: &mut Source, out: &mut impl Write) -> Result<()> {
    let mut file = std::fs::File::open(&source.path)
        .with_context(|| format!("opening {}", source.path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len <= source.offset {
        return Ok(());
    }
    if source.offset == 0 && !ctx.global.json {
        let what = if source.origin == "agent" {
            " (agent transcript)"
        } else {
            ""
        };
        writeln!(
            out,
            "── {} attempt {}{what} ──",
            source.step, source.attempt
        )?;
    }
    file.seek(SeekFrom::Start(source.offset))?;
    let mut fresh = Vec::new();
    file.take(len - source.offset).read_to_end(&mut fresh)?;
    source.offset += fresh.len() as u64;
    source.partial.extend_from_slice(&fresh);
    let Some(end) = source.partial.iter().rposition(|&b| b == b'\n') else {
        return Ok(());
    };
    let complete: Vec<u8> = source.partial.drain(..=end).collect();
    for line in complete.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let (stream, text) = record(line);
        let text = String::from_utf8_lossy(text);
        if ctx.global.json {
            let row = json!({
                "step": source.step,
                "attempt": source.attempt,
                "origin": source.origin,
                "stream": stream,
                "line": text,
            });
            writeln!(out, "{row}")?;
        } else {
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

/// Splits a transcript record into its stream and its text (`out `/`err ` prefixes).
fn record(line: &[u8]) -> (&'static str, &[u8]) {
    if let Some(rest) = line.strip_prefix(b"out ") {
        ("stdout", rest)
    } else if let Some(rest) = line.strip_prefix(b"err ") {
        ("stderr", rest)
    } else {
        ("stdout", line)
    }
}

#[cfg(test)]
mod tests {
    use super::record;

    #[test]
    fn records_name_their_stream() {
        assert_eq!(record(b"out hello"), ("stdout", &b"hello"[..]));
        assert_eq!(record(b"err oops"), ("stderr", &b"oops"[..]));
        assert_eq!(record(b"plain"), ("stdout", &b"plain"[..]));
    }
}
