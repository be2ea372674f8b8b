//! Agent kinds against real processes: a fake `claude` script (tests/fake-agents)
//! printing claude-shaped stream-json, and, when installed, the real CLIs with no
//! credentials and no network, which must end in a clear failure.

use serde_json::{json, Value};
use spool::exec::agents::{
    agent_error_type, run_agent, AgentJudged, AgentKind, AiderKind, ClaudeKind, CodexKind,
    GeminiKind, OpencodeKind, MESSAGE_LIMIT,
};
use spool::exec::{
    error_type, run_judged, ActivityKind, ActivitySpec, Attempt, KindInput, TimeoutKind, Verdict,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn fake(name: &str) -> String {
    format!("{}/tests/fake-agents/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn argv_file(&self) -> PathBuf {
        self.dir.path().join("argv")
    }

    /// The spec the claude kind prepares for the fake script in `scenario`.
    fn spec(&self, scenario: &str, prompt: &str) -> ActivitySpec {
        let mut base = ActivitySpec::new(Vec::<String>::new());
        base.timeouts.start_to_close = Duration::from_secs(30);
        base.timeouts.idle = Some(Duration::from_secs(1));
        base.timeouts.cancel_grace = Duration::from_secs(2);
        base.env.insert("FAKE_SCENARIO".into(), scenario.into());
        base.env.insert(
            "FAKE_ARGV_FILE".into(),
            self.argv_file().to_str().expect("utf-8 temp path").into(),
        );
        let params =
            json!({"prompt": prompt, "program": fake("claude"), "permission_mode": "acceptEdits"});
        ClaudeKind
            .prepare(KindInput {
                params: &params,
                vars: &json!({}),
                base,
            })
            .expect("valid params")
    }

    fn attempt(&self) -> Attempt {
        Attempt::in_dir(1, &self.dir.path().join("attempt-1"))
    }

    async fn judged(&self, scenario: &str) -> spool::exec::Judged {
        let spec = self.spec(scenario, "Fix the bug");
        run_judged(
            &ClaudeKind,
            &spec,
            &self.attempt(),
            &CancellationToken::new(),
            &mut (),
        )
        .await
    }
}

fn failure(v: &Verdict) -> (&str, &str) {
    match v {
        Verdict::Failed {
            error_type,
            message,
        } => (error_type, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn exit_zero_with_success_result_succeeds_with_usage() {
    let f = Fake::new();
    let spec = f.spec("success", "-v --help; $(rm -rf /)");
    let judged = run_judged(
        &ClaudeKind,
        &spec,
        &f.attempt(),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    let Verdict::Succeeded { result: Some(r) } = &judged.verdict else {
        panic!("expected success, got {:?}", judged.verdict);
    };
    let u = &r["usage"];
    assert_eq!(u["agent"], json!("claude"));
    assert_eq!(u["session_id"], json!("fake-session-1"));
    assert_eq!(u["model"], json!("claude-sonnet-4-5"));
    assert_eq!(u["num_turns"], json!(6));
    assert_eq!(u["input_tokens"], json!(210));
    assert_eq!(u["output_tokens"], json!(640));
    assert_eq!(u["cached_input_tokens"], json!(12000));
    assert_eq!(u["cache_creation_input_tokens"], json!(4000));
    assert_eq!(u["cost_usd"], json!(0.0873));
    assert_eq!(
        r["final_message"],
        json!("Fixed the off-by-one in parse().")
    );
    // The flag-like, shell-like prompt arrived as one argument after `--`.
    let argv = std::fs::read_to_string(f.argv_file()).expect("argv written");
    let args: Vec<&str> = argv.lines().collect();
    assert_eq!(args[args.len() - 2..], ["--", "-v --help; $(rm -rf /)"]);
    assert!(args.contains(&"acceptEdits"), "{args:?}");
}

#[tokio::test]
async fn exit_zero_with_error_result_fails() {
    let judged = Fake::new().judged("error_exit0").await;
    assert_eq!(
        judged.outcome.status,
        spool::exec::ActivityStatus::Succeeded,
        "the process itself exited 0"
    );
    let (ty, msg) = failure(&judged.verdict);
    assert_eq!(ty, agent_error_type::AUTH);
    assert!(msg.contains("Not logged in"), "{msg}");
}

#[tokio::test]
async fn crash_mid_stream_fails_and_keeps_the_session_for_a_resume() {
    let f = Fake::new();
    let spec = f.spec("crash", "Fix the bug");
    let AgentJudged { judged, report } = run_agent(
        &ClaudeKind,
        &spec,
        &f.attempt(),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert_eq!(failure(&judged.verdict).0, error_type::SIGNALED);
    assert_eq!(report.usage.session_id.as_deref(), Some("fake-session-1"));
    assert_eq!(report.malformed_lines, 1, "the cut-off last line");
}

#[tokio::test]
async fn stream_ending_without_a_result_fails() {
    let judged = Fake::new().judged("truncated").await;
    let (ty, msg) = failure(&judged.verdict);
    assert_eq!(ty, agent_error_type::NO_RESULT);
    assert!(
        msg.contains("exit code 0") || msg.contains("code 0"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_hung_agent_hits_the_idle_timeout() {
    let started = Instant::now();
    let judged = Fake::new().judged("hang").await;
    assert_eq!(
        judged.verdict,
        Verdict::TimedOut {
            kind: TimeoutKind::Idle
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn events_larger_than_a_line_piece_are_rejoined() {
    let f = Fake::new();
    let spec = f.spec("big", "Fix the bug");
    let AgentJudged { judged, report } = run_agent(
        &ClaudeKind,
        &spec,
        &f.attempt(),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    assert!(
        matches!(judged.verdict, Verdict::Succeeded { .. }),
        "{:?}",
        judged.verdict
    );
    assert_eq!(report.malformed_lines, 0);
    let message = report.final_message.expect("final message");
    assert!(message.starts_with("done xxx"), "{}", &message[..20]);
    assert!(message.len() <= MESSAGE_LIMIT + '…'.len_utf8());
}

// ---- the real CLIs, when installed -------------------------------------------------

/// Where a real CLI is: `$SPOOL_AGENT_BIN_DIR` (a PATH-like list) first, then `PATH`.
fn find_cli(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("SPOOL_AGENT_BIN_DIR")
        .into_iter()
        .chain(std::env::var_os("PATH"))
        .flat_map(|v| std::env::split_paths(&v).collect::<Vec<_>>());
    dirs.map(|d| d.join(name)).find(|p| p.is_file())
}

/// Variables that could hand a CLI credentials or a config from the machine.
const SECRET_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_API_KEY",
    "CODEX_HOME",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "GOOGLE_CLOUD_PROJECT",
    "OPENROUTER_API_KEY",
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_CONTENT",
    "AIDER_MODEL",
];

/// Runs the real `name` through `kind` with an empty HOME and no credentials, with a
/// 60 s start-to-close; `None` (and a printed reason) when it is not installed.
async fn run_real(
    kind: &dyn AgentKind,
    name: &str,
    params: Value,
) -> Option<(AgentJudged, Duration)> {
    let Some(program) = find_cli(name) else {
        eprintln!("skipped: `{name}` not found in SPOOL_AGENT_BIN_DIR or PATH (.ci/install-agents installs it)");
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).expect("mkdir home");
    std::fs::create_dir_all(&work).expect("mkdir work");
    let mut base = ActivitySpec::new(Vec::<String>::new());
    base.cwd = Some(work);
    base.timeouts.start_to_close = Duration::from_secs(60);
    base.timeouts.cancel_grace = Duration::from_secs(5);
    base.env_remove = SECRET_ENV.iter().map(|s| s.to_string()).collect();
    let home_str = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
    base.env.insert("HOME".into(), home_str(&home));
    for (var, sub) in [
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ] {
        base.env.insert(var.into(), home_str(&home.join(sub)));
    }
    let mut params = params;
    params["program"] = json!(home_str(&program));
    let spec = kind
        .prepare(KindInput {
            params: &params,
            vars: &json!({}),
            base,
        })
        .expect("valid params");
    let started = Instant::now();
    let judged = run_agent(
        kind,
        &spec,
        &Attempt::in_dir(1, &dir.path().join("attempt-1")),
        &CancellationToken::new(),
        &mut (),
    )
    .await;
    let took = started.elapsed();
    eprintln!(
        "{name}: {:?} after {took:.1?}; status {:?}; last error: {:?}",
        judged.judged.verdict,
        judged.judged.outcome.status,
        judged.report.errors.last()
    );
    Some((judged, took))
}

/// Without credentials a real CLI must end, and end as a failure that says why.
fn assert_clear_failure(name: &str, judged: &AgentJudged, took: Duration) {
    // start-to-close + grace + exec's bounded kill and drain waits.
    assert!(took < Duration::from_secs(80), "{name} took {took:?}");
    match &judged.judged.verdict {
        Verdict::Failed { message, .. } => assert!(!message.is_empty(), "{name}: empty message"),
        Verdict::TimedOut { .. } => {}
        other => panic!("{name}: expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn real_claude_without_credentials_fails_on_auth() {
    let Some((judged, took)) =
        run_real(&ClaudeKind, "claude", json!({"prompt": "-v say hi"})).await
    else {
        return;
    };
    assert_clear_failure("claude", &judged, took);
    assert_eq!(failure(&judged.judged.verdict).0, agent_error_type::AUTH);
    assert!(judged.report.usage.session_id.is_some());
}

#[tokio::test]
async fn real_codex_without_credentials_ends_as_a_failure() {
    let params = json!({"prompt": "-m say hi", "extra_args": ["--skip-git-repo-check"]});
    let Some((judged, took)) = run_real(&CodexKind, "codex", params).await else {
        return;
    };
    assert_clear_failure("codex", &judged, took);
    assert!(judged.report.usage.session_id.is_some(), "thread id seen");
    assert!(!judged.report.errors.is_empty(), "the reason is recorded");
}

#[tokio::test]
async fn real_gemini_without_credentials_fails_on_auth() {
    let Some((judged, took)) =
        run_real(&GeminiKind, "gemini", json!({"prompt": "-m say hi"})).await
    else {
        return;
    };
    assert_clear_failure("gemini", &judged, took);
    assert_eq!(failure(&judged.judged.verdict).0, agent_error_type::AUTH);
}

#[tokio::test]
async fn real_aider_without_credentials_fails_on_auth() {
    let params = json!({
        "prompt": "-v say hi",
        "model": "anthropic/claude-sonnet-4-5",
        "extra_args": ["--no-git"],
    });
    let Some((judged, took)) = run_real(&AiderKind, "aider", params).await else {
        return;
    };
    assert_clear_failure("aider", &judged, took);
    assert_eq!(failure(&judged.judged.verdict).0, agent_error_type::AUTH);
}

#[tokio::test]
async fn real_opencode_without_network_ends_as_a_failure() {
    let Some((judged, took)) =
        run_real(&OpencodeKind, "opencode", json!({"prompt": "-m say hi"})).await
    else {
        return;
    };
    assert_clear_failure("opencode", &judged, took);
    assert!(!judged.report.errors.is_empty(), "the reason is recorded");
}
