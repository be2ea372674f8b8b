//! Workflow templates: TOML → a validated [`Program`], with diagnostics that name file and
//! line before anything runs.
//!
//! ```toml
//! name = "demo"
//! [defaults]
//! retry = { max_attempts = 2 }
//!
//! [[step]]
//! id = "implement"
//! kind = "activity"
//! command = ["agent", "--issue", "{issue.id}"]
//! timeouts = { start_to_close = "30m", heartbeat = "2m" }
//!
//! [[step]]
//! id = "test"
//! kind = "activity"
//! command = ["cargo", "test"]
//! on_failure = { goto = "implement", max_loops = 3 }
//! ```
//! - [`expr`]: the `when` language. Placeholders (`{issue.id}`) are
//!   [`crate::template_vars`]'s; here their syntax is checked at load time.

pub mod expr;

use crate::template_vars::{render, render_argv, TemplateVarError, TemplateVarErrorKind};
use crate::workflow::duration::parse_duration;
use crate::workflow::program::{
    ActivityDef, ActivityTimeouts, ActivityType, ChildDef, GateDef, OnComplete, OnFailure,
    ParallelDef, ParallelMode, Program, SleepDef, Step, StepKind,
};
use crate::workflow::retry::RetryPolicy;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// Default bytes of stdout/stderr tail kept per activity.
pub const DEFAULT_CAPTURE_KB: u64 = 64;

/// One problem in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// All problems found in a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// SHA-256 of the template bytes, hex: what a run pins.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
    defaults: Option<RawDefaults>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<RawStep>>,
    on_complete: Option<Spanned<RawOnComplete>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnComplete {
    close: Option<bool>,
    #[serde(default)]
    add_labels: Vec<String>,
    #[serde(default)]
    remove_labels: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    retry: Option<Spanned<RawRetry>>,
    timeouts: Option<RawTimeouts>,
    cwd: Option<Spanned<String>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    capture: Option<RawCapture>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    initial_interval: Option<Spanned<String>>,
    backoff_coefficient: Option<Spanned<f64>>,
    max_interval: Option<Spanned<String>>,
    max_attempts: Option<u32>,
    non_retryable: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    schedule_to_start: Option<Spanned<String>>,
    start_to_close: Option<Spanned<String>>,
    schedule_to_close: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    tail_kb: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnFailure {
    goto: Spanned<String>,
    max_loops: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    on_failure: Option<Spanned<RawOnFailure>>,
    compensate: Option<Spanned<Vec<Vec<String>>>>,
    requires: Option<Spanned<Vec<String>>>,
    // activity
    activity_type: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    cwd: Option<Spanned<String>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    retry: Option<Spanned<RawRetry>>,
    timeouts: Option<Spanned<RawTimeouts>>,
    capture: Option<Spanned<RawCapture>>,
    // sleep
    duration: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    // gate
    signals: Option<Spanned<Vec<String>>>,
    fail_on: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    default: Option<Spanned<String>>,
    // child
    template: Option<Spanned<String>>,
    input: Option<toml::Value>,
    // parallel
    mode: Option<Spanned<String>>,
    steps: Option<Vec<Spanned<RawStep>>>,
}

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
    diags: Vec<Diagnostic>,
    defaults: RawDefaults,
}

impl Ctx<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, column)
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.line_col(span.start);
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    fn duration(&mut self, s: &Spanned<String>, what: &str) -> Option<Duration> {
        match parse_duration(s.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(s.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn opt_duration(&mut self, s: &Option<Spanned<String>>, what: &str) -> Option<Duration> {
        s.as_ref().and_then(|s| self.duration(s, what))
    }
}

/// Compiles a template. `file` is used in diagnostics and, without a `name` field, its
/// stem names the workflow type.
pub fn compile(file: &str, source: &str) -> Result<Program, TemplateError> {
    let raw: RawTemplate = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let mut cx = Ctx {
                file,
                src: source,
                diags: Vec::new(),
                defaults: RawDefaults::default(),
            };
            cx.error(e.span().unwrap_or(0..0), e.message().trim().to_string());
            return Err(TemplateError {
                diagnostics: cx.diags,
            });
        }
    };
    let mut cx = Ctx {
        file,
        src: source,
        diags: Vec::new(),
        defaults: raw.defaults.unwrap_or_default(),
    };
    let name = match &raw.name {
        Some(n) => {
            if !valid_id(n.get_ref()) {
                cx.error(
                    n.span(),
                    format!(
                        "bad name {:?}: use letters, digits, '_' and '-'",
                        n.get_ref()
                    ),
                );
            }
            n.get_ref().clone()
        }
        None => std::path::Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.to_string()),
    };
    if raw.steps.is_empty() {
        cx.error(0..0, "template has no steps (add [[step]] tables)");
    }

    // Ids first, so gotos and `when` references can be checked against them.
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    // Every id (top level or branch) → the index of its top-level step.
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (index, step) in raw.steps.iter().enumerate() {
        let mut ids = Vec::new();
        collect_ids(&mut cx, step, &mut seen, &mut ids);
        for id in ids {
            owner.entry(id).or_insert(index);
        }
    }
    let top_ids: Vec<Option<String>> = raw
        .steps
        .iter()
        .map(|s| s.get_ref().id.as_ref().map(|i| i.get_ref().clone()))
        .collect();

    let mut steps = Vec::new();
    for (index, raw_step) in raw.steps.iter().enumerate() {
        if let Some(step) = compile_step(&mut cx, raw_step, index, &top_ids, &owner, false) {
            steps.push(step);
        }
    }
    let on_complete = match raw.on_complete {
        None => OnComplete::default(),
        Some(spanned) => {
            let span = spanned.span();
            let oc = spanned.into_inner();
            let close = oc.close.unwrap_or(true);
            if close && !(oc.add_labels.is_empty() && oc.remove_labels.is_empty()) {
                cx.error(
                    span.clone(),
                    "[on_complete] changes labels only with `close = false` (a closed issue keeps its labels)".to_string(),
                );
            }
            if let Some(bad) = oc
                .add_labels
                .iter()
                .chain(&oc.remove_labels)
                .find(|l| l.trim().is_empty() || l.contains(','))
            {
                cx.error(span, format!("bad label {bad:?} in [on_complete]"));
            }
            OnComplete {
                close,
                add_labels: oc.add_labels,
                remove_labels: oc.remove_labels,
            }
        }
    };
    if !cx.diags.is_empty() {
        cx.diags.sort_by_key(|d| (d.line, d.column));
        return Err(TemplateError {
            diagnostics: cx.diags,
        });
    }
    Ok(Program {
        name,
        description: raw.description,
        content_hash: content_hash(source.as_bytes()),
        steps,
        on_complete,
    })
}

/// A capability name (`gpu`, `agent:claude`, `os.macos`).
pub fn valid_capability(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | ':'))
}

/// Placeholder syntax only (names are resolved when the step runs): rendering against
/// nothing fails with "unknown" for every well-formed placeholder.
fn syntax_only(result: Result<(), TemplateVarError>) -> Result<(), String> {
    match result {
        Err(e)
            if !matches!(
                e.kind,
                TemplateVarErrorKind::Unknown(_) | TemplateVarErrorKind::Null(_)
            ) =>
        {
            Err(format!("bad placeholder: {e}"))
        }
        _ => Ok(()),
    }
}

fn check_placeholders(s: &str) -> Result<(), String> {
    syntax_only(render(s, &serde_json::Value::Null).map(|_| ()))
}

fn check_argv(argv: &[String]) -> Result<(), String> {
    syntax_only(render_argv(argv, &serde_json::Value::Null).map(|_| ()))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn collect_ids(
    cx: &mut Ctx,
    step: &Spanned<RawStep>,
    seen: &mut HashMap<String, Range<usize>>,
    order: &mut Vec<String>,
) {
    let raw = step.get_ref();
    match &raw.id {
        None => cx.error(step.span(), "step has no `id`"),
        Some(id) => {
            if !valid_id(id.get_ref()) {
                cx.error(
                    id.span(),
                    format!(
                        "bad step id {:?}: use letters, digits, '_' and '-'",
                        id.get_ref()
                    ),
                );
            } else if let Some(first) = seen.get(id.get_ref()).cloned() {
                let (line, _) = cx.line_col(first.start);
                cx.error(
                    id.span(),
                    format!(
                        "duplicate step id {:?} (first defined on line {line})",
                        id.get_ref()
                    ),
                );
            } else {
                seen.insert(id.get_ref().clone(), id.span());
                order.push(id.get_ref().clone());
            }
        }
    }
    for child in raw.steps.iter().flatten() {
        collect_ids(cx, child, seen, order);
    }
}

/// Field names set on a step, for "does not apply" checks.
fn fields_set(r: &RawStep) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    macro_rules! spanned {
        ($($f:ident),*) => {$(
            if let Some(v) = &r.$f { out.push((stringify!($f), v.span())); }
        )*};
    }
    spanned!(
        activity_type,
        command,
        cwd,
        retry,
        timeouts,
        capture,
        duration,
        until,
        signals,
        fail_on,
        timeout,
        default,
        template,
        mode
    );
    if r.env.is_some() {
        out.push(("env", 0..0));
    }
    if r.input.is_some() {
        out.push(("input", 0..0));
    }
    if r.steps.is_some() {
        out.push(("steps", 0..0));
    }
    out
}

fn compile_step(
    cx: &mut Ctx,
    spanned: &Spanned<RawStep>,
    index: usize,
    top_ids: &[Option<String>],
    owner: &HashMap<String, usize>,
    in_parallel: bool,
) -> Option<Step> {
    let r = spanned.get_ref();
    let span = spanned.span();
    let id = r.id.as_ref()?.get_ref().clone();
    let line = cx.line_col(span.start).0;
    let Some(kind_name) = &r.kind else {
        cx.error(
            span,
            format!("step {id:?} has no `kind` (activity, sleep, gate, child, parallel)"),
        );
        return None;
    };
    let allowed: &[&str] = match kind_name.get_ref().as_str() {
        "activity" => &[
            "activity_type",
            "command",
            "cwd",
            "env",
            "retry",
            "timeouts",
            "capture",
        ],
        "sleep" => &["duration", "until"],
        "gate" => &["signals", "fail_on", "timeout", "default"],
        "child" => &["template", "input"],
        "parallel" => &["mode", "steps"],
        other => {
            cx.error(
                kind_name.span(),
                format!("unknown step kind {other:?} (expected activity, sleep, gate, child or parallel)"),
            );
            return None;
        }
    };
    for (field, fspan) in fields_set(r) {
        if !allowed.contains(&field) {
            let fspan = if fspan == (0..0) { span.clone() } else { fspan };
            cx.error(
                fspan,
                format!("`{field}` does not apply to a {} step", kind_name.get_ref()),
            );
        }
    }

    let when = r.when.as_ref().and_then(|w| match expr::parse(w.get_ref()) {
        Ok(e) => {
            for referenced in e.step_refs() {
                let earlier = owner.get(&referenced).is_some_and(|&o| o < index);
                if !earlier {
                    cx.error(
                        w.span(),
                        format!("bad `when` expression: step {referenced:?} does not run before {id:?}"),
                    );
                }
            }
            Some(e)
        }
        Err(msg) => {
            cx.error(w.span(), format!("bad `when` expression {:?}: {msg}", w.get_ref()));
            None
        }
    });

    let kind = match kind_name.get_ref().as_str() {
        "activity" => StepKind::Activity(compile_activity(cx, r, span.clone(), &id)?),
        "sleep" => StepKind::Sleep(match (&r.duration, &r.until) {
            (Some(d), None) => SleepDef::For(cx.duration(d, "duration")?),
            (None, Some(u)) => match chrono::DateTime::parse_from_rfc3339(u.get_ref()) {
                Ok(t) => SleepDef::Until(t.with_timezone(&chrono::Utc)),
                Err(e) => {
                    cx.error(
                        u.span(),
                        format!("bad RFC3339 time {:?} in `until`: {e}", u.get_ref()),
                    );
                    return None;
                }
            },
            _ => {
                cx.error(
                    span,
                    format!("sleep step {id:?} needs exactly one of `duration` or `until`"),
                );
                return None;
            }
        }),
        "gate" => {
            let Some(signals) = &r.signals else {
                cx.error(
                    span,
                    format!("gate step {id:?} needs `signals` (e.g. [\"approve\", \"reject\"])"),
                );
                return None;
            };
            if signals.get_ref().is_empty() {
                cx.error(signals.span(), "`signals` is empty");
            }
            let fail_on = r
                .fail_on
                .as_ref()
                .map(|f| f.get_ref().clone())
                .unwrap_or_default();
            if let Some(f) = &r.fail_on {
                for name in f.get_ref() {
                    if !signals.get_ref().contains(name) {
                        cx.error(
                            f.span(),
                            format!("`fail_on` names {name:?}, which is not in `signals`"),
                        );
                    }
                }
            }
            let timeout = cx.opt_duration(&r.timeout, "timeout");
            if let Some(d) = &r.default {
                if !signals.get_ref().contains(d.get_ref()) {
                    cx.error(
                        d.span(),
                        format!("`default` {:?} is not one of `signals`", d.get_ref()),
                    );
                }
                if r.timeout.is_none() {
                    cx.error(d.span(), "`default` needs a `timeout`");
                }
            }
            StepKind::Gate(GateDef {
                signals: signals.get_ref().clone(),
                fail_on,
                timeout,
                default: r.default.as_ref().map(|d| d.get_ref().clone()),
            })
        }
        "child" => {
            let Some(template) = &r.template else {
                cx.error(span, format!("child step {id:?} needs `template`"));
                return None;
            };
            StepKind::Child(ChildDef {
                template: template.get_ref().clone(),
                input: r
                    .input
                    .as_ref()
                    .map(toml_to_json)
                    .unwrap_or(serde_json::Value::Null),
            })
        }
        _ => {
            if in_parallel {
                cx.error(span, "a parallel step cannot contain another parallel step");
                return None;
            }
            let mode = match r.mode.as_ref().map(|m| m.get_ref().as_str()) {
                None | Some("all") => ParallelMode::All,
                Some("first_success") => ParallelMode::FirstSuccess,
                Some(other) => {
                    let m = r.mode.as_ref().map(|m| m.span()).unwrap_or(span.clone());
                    cx.error(
                        m,
                        format!("unknown parallel mode {other:?} (all or first_success)"),
                    );
                    ParallelMode::All
                }
            };
            let Some(raw_branches) = r.steps.as_ref().filter(|b| !b.is_empty()) else {
                cx.error(
                    span,
                    format!("parallel step {id:?} needs branches ([[step.steps]] tables)"),
                );
                return None;
            };
            let mut branches = Vec::new();
            for b in raw_branches {
                let kind = b.get_ref().kind.as_ref().map(|k| k.get_ref().as_str());
                if !matches!(kind, Some("activity") | Some("sleep") | None) {
                    cx.error(
                        b.span(),
                        "a parallel branch must be an activity or a sleep step",
                    );
                    continue;
                }
                if let Some(of) = &b.get_ref().on_failure {
                    cx.error(of.span(), "`on_failure` is not allowed on a parallel branch; put it on the parallel step");
                    continue;
                }
                if let Some(branch) = compile_step(cx, b, index, top_ids, owner, true) {
                    branches.push(branch);
                }
            }
            StepKind::Parallel(ParallelDef { mode, branches })
        }
    };

    let on_failure = r.on_failure.as_ref().and_then(|of| {
        let target = of.get_ref().goto.get_ref();
        let Some(goto_index) = top_ids
            .iter()
            .position(|t| t.as_deref() == Some(target.as_str()))
        else {
            cx.error(
                of.get_ref().goto.span(),
                format!("`goto` names step {target:?}, which is not a top-level step"),
            );
            return None;
        };
        let max_loops = match of.get_ref().max_loops {
            Some(n) => n,
            None if goto_index <= index => {
                cx.error(
                    of.span(),
                    format!("`goto` {target:?} loops back without a bound: add `max_loops`"),
                );
                return None;
            }
            None => u32::MAX,
        };
        Some(OnFailure {
            goto: target.clone(),
            goto_index,
            max_loops,
        })
    });

    let compensate = r
        .compensate
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    if let Some(c) = &r.compensate {
        for argv in c.get_ref() {
            if argv.is_empty() {
                cx.error(c.span(), "a `compensate` command is empty");
            }
            if let Err(e) = check_argv(argv) {
                cx.error(c.span(), e);
            }
        }
    }

    let requires = r
        .requires
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    if let Some(req) = &r.requires {
        if let Some(bad) = req.get_ref().iter().find(|c| !valid_capability(c)) {
            cx.error(
                req.span(),
                format!("bad capability {bad:?}: use letters, digits, '-', '_', '.' and ':'"),
            );
        }
    }

    Some(Step {
        id,
        line,
        when,
        kind,
        on_failure,
        compensate,
        requires,
    })
}

fn compile_activity(
    cx: &mut Ctx,
    r: &RawStep,
    span: Range<usize>,
    id: &str,
) -> Option<ActivityDef> {
    let activity_type = match r.activity_type.as_ref().map(|t| t.get_ref().as_str()) {
        None | Some("command") => ActivityType::Command,
        Some("noop") => ActivityType::Noop,
        Some(other) => {
            let s = r
                .activity_type
                .as_ref()
                .map(|t| t.span())
                .unwrap_or(span.clone());
            cx.error(
                s,
                format!("unknown activity_type {other:?} (command or noop)"),
            );
            return None;
        }
    };
    let argv = r
        .command
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    if activity_type == ActivityType::Command && argv.is_empty() {
        let s = r.command.as_ref().map(|c| c.span()).unwrap_or(span);
        cx.error(
            s,
            format!("activity step {id:?} needs a non-empty `command` (an argv array)"),
        );
        return None;
    }
    if let Some(c) = &r.command {
        if let Err(e) = check_argv(c.get_ref()) {
            cx.error(c.span(), e);
        }
    }
    let cwd = r.cwd.as_ref().or(cx.defaults.cwd.as_ref()).cloned();
    if let Some(c) = &cwd {
        if let Err(e) = check_placeholders(c.get_ref()) {
            cx.error(c.span(), e);
        }
    }
    let mut env = BTreeMap::new();
    for source in [cx.defaults.env.clone(), r.env.clone()]
        .into_iter()
        .flatten()
    {
        for (k, v) in source {
            if let Err(e) = check_placeholders(v.get_ref()) {
                cx.error(v.span(), e);
            }
            env.insert(k, v.into_inner());
        }
    }

    let dr = cx
        .defaults
        .retry
        .as_ref()
        .map(|r| r.get_ref().clone())
        .unwrap_or_default();
    let sr = r
        .retry
        .as_ref()
        .map(|r| r.get_ref().clone())
        .unwrap_or_default();
    let base = RetryPolicy::default();
    let initial = sr.initial_interval.clone().or(dr.initial_interval.clone());
    let initial_interval = cx
        .opt_duration(&initial, "initial_interval")
        .unwrap_or(base.initial_interval);
    let max_interval_raw = sr.max_interval.clone().or(dr.max_interval.clone());
    let maximum_interval = cx
        .opt_duration(&max_interval_raw, "max_interval")
        .unwrap_or(initial_interval.saturating_mul(100));
    let coef = sr
        .backoff_coefficient
        .clone()
        .or(dr.backoff_coefficient.clone());
    let backoff_coefficient = match &coef {
        Some(c) if !(c.get_ref().is_finite() && *c.get_ref() >= 1.0) => {
            cx.error(c.span(), "backoff_coefficient must be at least 1.0");
            base.backoff_coefficient
        }
        Some(c) => *c.get_ref(),
        None => base.backoff_coefficient,
    };
    if initial_interval.is_zero() {
        if let Some(i) = &initial {
            cx.error(i.span(), "initial_interval must be more than zero");
        }
    }
    if maximum_interval < initial_interval {
        if let Some(m) = &max_interval_raw {
            cx.error(m.span(), "max_interval is shorter than initial_interval");
        }
    }
    let retry = RetryPolicy {
        initial_interval,
        backoff_coefficient,
        maximum_interval,
        maximum_attempts: sr
            .max_attempts
            .or(dr.max_attempts)
            .unwrap_or(base.maximum_attempts),
        non_retryable_error_types: sr.non_retryable.or(dr.non_retryable).unwrap_or_default(),
    };

    let dt = cx.defaults.timeouts.clone().unwrap_or_default();
    let st = r
        .timeouts
        .as_ref()
        .map(|t| t.get_ref().clone())
        .unwrap_or_default();
    let timeouts = ActivityTimeouts {
        schedule_to_start: cx.opt_duration(
            &st.schedule_to_start.or(dt.schedule_to_start),
            "schedule_to_start",
        ),
        start_to_close: cx.opt_duration(&st.start_to_close.or(dt.start_to_close), "start_to_close"),
        schedule_to_close: cx.opt_duration(
            &st.schedule_to_close.or(dt.schedule_to_close),
            "schedule_to_close",
        ),
        heartbeat: cx.opt_duration(&st.heartbeat.or(dt.heartbeat), "heartbeat"),
    };
    let tail_kb = r
        .capture
        .as_ref()
        .and_then(|c| c.get_ref().tail_kb)
        .or(cx.defaults.capture.as_ref().and_then(|c| c.tail_kb))
        .unwrap_or(DEFAULT_CAPTURE_KB);
    Some(ActivityDef {
        activity_type,
        argv,
        cwd: cwd.map(|c| c.into_inner()),
        env,
        retry,
        timeouts,
        capture_bytes: tail_kb.saturating_mul(1024),
    })
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests;
