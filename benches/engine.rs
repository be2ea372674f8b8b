//! Engine benchmarks (run with `cargo bench --bench engine`; `-- --quick` for a short run):
//! - throughput: N workflows × 10 no-op steps, every step a durable transition, group commit;
//! - sequential step latency against the machine's single-commit time;
//! - recovery: how long until 10,000 interrupted attempts are dispatched again;
//! - the disk's limit: single-row transactions per second with `synchronous=FULL`;
//! - the same sequential run with `durability = "process"` (`synchronous=NORMAL`);
//! - the cost a real command step adds (spawning `true` through `exec`).

use serde_json::Value;
use spool::engine::{
    ActivityRunner, AttemptControl, AttemptResult, BoxFuture, CommandRunner, Engine, EngineConfig,
    Templates,
};
use spool::store::{Durability, NewRun, Store};
use spool_core::workflow::decide::{ActivityTask, Input};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("spool.db"));
    c.templates = Templates::new(vec![dir.to_path_buf()]);
    c
}

/// Durable steps per second with many runs in flight.
async fn throughput(runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::start(config(dir.path())).await.expect("start"));
    let mut closed = engine.closed_runs();
    let t0 = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..runs {
        let engine = engine.clone();
        starts.spawn(async move {
            engine
                .start_run("noop", Some(&format!("w{i}")), Value::Null)
                .await
                .expect("start run")
        });
    }
    while let Some(r) = starts.join_next().await {
        r.expect("start task");
    }
    let mut done = 0;
    while done < runs {
        closed.recv().await.expect("closed runs");
        done += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let steps = runs * 10;
    println!(
        "throughput: {runs} workflows x 10 no-op steps in {secs:.2} s = {:.0} durable steps/s",
        steps as f64 / secs
    );
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
}

/// p50 of one no-op step in a single sequential run, against a single-row commit on the
/// same disk. The two are measured alternately, since fsync time drifts with load.
async fn sequential(samples: usize, durability: Durability) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut probe = Store::open(&dir.path().join("probe.db"), Durability::Full).expect("open");
    let mut c = config(dir.path());
    c.durability = durability;
    let engine = Engine::start(c).await.expect("start");
    let mut per_step = Vec::new();
    let mut commits = Vec::new();
    for i in 0..(samples / 10).max(1) {
        for _ in 0..3 {
            // One small transaction (the boot epoch row).
            let t = Instant::now();
            probe.bump_boot_epoch().expect("commit");
            commits.push(t.elapsed());
        }
        let t = Instant::now();
        let run = engine
            .start_run("noop", Some(&format!("s{i}")), Value::Null)
            .await
            .expect("run");
        engine
            .wait_closed(&run, Duration::from_secs(60))
            .await
            .expect("closed");
        // Start, ten steps and the close: count it as eleven transitions.
        per_step.push(t.elapsed() / 11);
    }
    per_step.sort();
    commits.sort();
    let (p50, commit_p50) = (per_step[per_step.len() / 2], commits[commits.len() / 2]);
    println!(
        "sequential ({durability:?}): step p50 {:.2} ms, single FULL commit p50 {:.2} ms, ratio {:.2}",
        p50.as_secs_f64() * 1e3,
        commit_p50.as_secs_f64() * 1e3,
        p50.as_secs_f64() / commit_p50.as_secs_f64()
    );
    engine.shutdown().await;
}

/// Counts attempts as they are dispatched, and never finishes them.
struct Count(Arc<AtomicUsize>);

impl ActivityRunner for Count {
    fn run(&self, _task: ActivityTask, control: AttemptControl) -> BoxFuture<AttemptResult> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            control.kill.cancelled().await;
            AttemptResult::Canceled
        })
    }
}

/// Time from engine start until `n` attempts leased by a dead epoch are dispatched again.
async fn recovery(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("hold.toml"),
        "[[step]]\nid = \"hold\"\nkind = \"activity\"\ncommand = [\"hold\"]\n",
    )
    .expect("template");
    let first = Arc::new(AtomicUsize::new(0));
    let engine =
        Engine::start(config(dir.path()).runner("command", Arc::new(Count(first.clone()))))
            .await
            .expect("start");
    let (row, program) = Templates::new(vec![dir.path().to_path_buf()])
        .load("hold")
        .expect("template");
    let db = dir.path().join("spool.db");
    {
        let mut store = Store::open(&db, Durability::Process).expect("open");
        for i in 0..n {
            let run = NewRun {
                run_id: format!("r{i:06}"),
                workflow_id: format!("w{i:06}"),
                workflow_type: program.name.clone(),
                template_hash: row.hash.clone(),
                parent_run_id: None,
            };
            let start = Input::Start {
                workflow_id: run.workflow_id.clone(),
                run_id: run.run_id.clone(),
                input: Value::Null,
                parent: None,
            };
            store
                .create_run(&run, &row, &start, chrono::Utc::now())
                .expect("create");
        }
    }
    while first.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the leases commit, then stop as a crash would leave things.
    tokio::time::sleep(Duration::from_millis(500)).await;
    engine.shutdown().await;
    let second = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let engine =
        Engine::start(config(dir.path()).runner("command", Arc::new(Count(second.clone()))))
            .await
            .expect("restart");
    while second.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "recovery: {n} interrupted attempts re-dispatched {:.0} ms after start",
        t0.elapsed().as_secs_f64() * 1e3
    );
    engine.shutdown().await;
}

/// The physical limit: single-row transactions per second on this disk (WAL,
/// `synchronous=FULL`), measured in the same run as the engine figures.
fn commit_rate(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut probe = Store::open(&dir.path().join("probe.db"), Durability::Full).expect("open");
    let t0 = Instant::now();
    for _ in 0..n {
        probe.bump_boot_epoch().expect("commit");
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "disk: {n} single-row commits (synchronous=FULL) in {secs:.2} s = {:.0} commits/s, {:.3} ms each",
        n as f64 / secs,
        secs * 1e3 / n as f64
    );
}

/// Per-step time of ten `true` command steps in one run, through `exec` (spawn, process
/// group, pipes, result and heartbeat files), next to the no-op step time.
async fn command_steps(runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut template = String::from("name = \"cmd\"\n");
    for i in 1..=10 {
        template.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\nkind = \"activity\"\ncommand = [\"true\"]\n"
        ));
    }
    std::fs::write(dir.path().join("cmd.toml"), template).expect("template");
    let runner = Arc::new(CommandRunner::new(dir.path().join("attempts")));
    let engine = Engine::start(config(dir.path()).runner("command", runner))
        .await
        .expect("start");
    let mut per_step = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let run = engine
            .start_run("cmd", Some(&format!("c{i}")), Value::Null)
            .await
            .expect("run");
        engine
            .wait_closed(&run, Duration::from_secs(120))
            .await
            .expect("closed");
        per_step.push(t.elapsed() / 11);
    }
    per_step.sort();
    println!(
        "command steps: `true` per step p50 {:.2} ms (spawn and reap through exec included)",
        per_step[per_step.len() / 2].as_secs_f64() * 1e3
    );
    engine.shutdown().await;
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        commit_rate(if quick { 200 } else { 1000 });
        throughput(if quick { 100 } else { 1000 }).await;
        sequential(if quick { 50 } else { 300 }, Durability::Full).await;
        sequential(if quick { 50 } else { 300 }, Durability::Process).await;
        command_steps(if quick { 5 } else { 20 }).await;
        recovery(if quick { 1000 } else { 10_000 }).await;
    });
}
