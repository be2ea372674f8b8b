use super::*;
use crate::workflow::program::{SleepDef, StepKind};

fn errors(src: &str) -> Vec<Diagnostic> {
    match compile("t.toml", src) {
        Ok(_) => panic!("expected diagnostics for:\n{src}"),
        Err(e) => e.diagnostics,
    }
}

fn one_error(src: &str, line: usize, needle: &str) {
    let d = errors(src);
    assert!(
        d.iter()
            .any(|d| d.line == line && d.message.contains(needle) && d.file == "t.toml"),
        "expected line {line} containing {needle:?}, got {d:#?}"
    );
}

const GOOD: &str = r#"
name = "fix"
[defaults]
retry = { max_attempts = 2, initial_interval = "2s" }
timeouts = { start_to_close = "30m" }

[[step]]
id = "implement"
kind = "activity"
command = ["agent", "--issue", "{issue.id}"]
env = { ISSUE = "{issue.id}" }
compensate = [["git", "branch", "-D", "spool/{issue.id}"]]

[[step]]
id = "test"
kind = "activity"
command = ["cargo", "test"]
retry = { max_attempts = 1 }
timeouts = { heartbeat = "1m" }
capture = { tail_kb = 8 }
on_failure = { goto = "implement", max_loops = 3 }

[[step]]
id = "review"
kind = "gate"
signals = ["approve", "reject"]
fail_on = ["reject"]
timeout = "1d"
default = "reject"

[[step]]
id = "wait"
kind = "sleep"
duration = "10m"
when = "steps.review.signal == 'approve' && steps.test.exit_code == 0"

[[step]]
id = "checks"
kind = "parallel"
mode = "first_success"
[[step.steps]]
id = "a"
kind = "activity"
activity_type = "noop"
[[step.steps]]
id = "b"
kind = "sleep"
until = "2030-01-01T00:00:00Z"

[[step]]
id = "sub"
kind = "child"
template = "noop"
input = { n = 1, who = "{issue.id}" }
"#;

#[test]
fn compiles_a_full_template() {
    let p = compile("fix.toml", GOOD).expect("valid template");
    assert_eq!(p.name, "fix");
    assert_eq!(p.content_hash, content_hash(GOOD.as_bytes()));
    assert_eq!(p.content_hash.len(), 64);
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["implement", "test", "review", "wait", "checks", "sub"]
    );
    let StepKind::Activity(imp) = &p.steps[0].kind else {
        panic!("activity")
    };
    assert_eq!(imp.retry.maximum_attempts, 2);
    assert_eq!(imp.retry.initial_interval, Duration::from_secs(2));
    assert_eq!(imp.retry.maximum_interval, Duration::from_secs(200));
    assert_eq!(imp.timeouts.start_to_close, Some(Duration::from_secs(1800)));
    assert_eq!(imp.env.get("ISSUE").map(String::as_str), Some("{issue.id}"));
    assert_eq!(p.steps[0].compensate.len(), 1);
    assert_eq!(p.steps[0].line, 7, "the line of its [[step]] header");
    let StepKind::Activity(test) = &p.steps[1].kind else {
        panic!("activity")
    };
    assert_eq!(test.retry.maximum_attempts, 1);
    assert_eq!(test.timeouts.heartbeat, Some(Duration::from_secs(60)));
    assert_eq!(
        test.timeouts.start_to_close,
        Some(Duration::from_secs(1800))
    );
    assert_eq!(test.capture_bytes, 8 * 1024);
    let of = p.steps[1].on_failure.as_ref().expect("on_failure");
    assert_eq!((of.goto_index, of.max_loops), (0, 3));
    assert!(p.steps[3].when.is_some());
    let StepKind::Parallel(par) = &p.steps[4].kind else {
        panic!("parallel")
    };
    assert_eq!(par.branches.len(), 2);
    assert!(matches!(
        par.branches[1].kind,
        StepKind::Sleep(SleepDef::Until(_))
    ));
    let StepKind::Child(c) = &p.steps[5].kind else {
        panic!("child")
    };
    assert_eq!(c.input["n"], 1);
    // A name is optional: the file stem names the workflow type.
    let unnamed = compile(
        "dir/noop.toml",
        "[[step]]\nid = \"a\"\nkind = \"activity\"\nactivity_type = \"noop\"\n",
    )
    .expect("valid");
    assert_eq!(unnamed.name, "noop");
}

#[test]
fn unknown_kind_is_reported_with_its_line() {
    one_error(
        "[[step]]\nid = \"a\"\nkind = \"shell\"\n",
        3,
        "unknown step kind \"shell\"",
    );
}

#[test]
fn duplicate_ids_are_reported_with_both_lines() {
    let src = "[[step]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\n\n[[step]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\n";
    one_error(src, 7, "duplicate step id \"a\" (first defined on line 2)");
}

#[test]
fn goto_to_a_missing_step_and_unbounded_loops_are_errors() {
    let missing = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"x\"]\non_failure = { goto = \"nope\", max_loops = 1 }\n";
    one_error(missing, 5, "`goto` names step \"nope\"");
    let unbounded = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"x\"]\n\n[[step]]\nid = \"b\"\nkind = \"activity\"\ncommand = [\"y\"]\non_failure = { goto = \"a\" }\n";
    one_error(unbounded, 10, "add `max_loops`");
    // Forward jumps cannot loop by themselves and need no bound.
    let forward = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"x\"]\non_failure = { goto = \"b\" }\n\n[[step]]\nid = \"b\"\nkind = \"activity\"\ncommand = [\"y\"]\n";
    assert!(compile("t.toml", forward).is_ok());
}

#[test]
fn bad_durations_and_times_are_errors() {
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\nduration = \"10x\"\n",
        4,
        "unknown unit \"x\"",
    );
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\nuntil = \"tomorrow\"\n",
        4,
        "bad RFC3339 time",
    );
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"activity\"\ncommand = [\"x\"]\ntimeouts = { heartbeat = \"5\" }\n",
        5,
        "heartbeat: bad duration",
    );
}

#[test]
fn bad_when_expressions_are_errors() {
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\nduration = \"1s\"\nwhen = \"steps.x ==\"\n",
        5,
        "bad `when` expression",
    );
    // A reference to a later step (or itself) cannot have an output yet.
    let later = "[[step]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\nwhen = \"steps.b.status == 'completed'\"\n\n[[step]]\nid = \"b\"\nkind = \"sleep\"\nduration = \"1s\"\n";
    one_error(later, 5, "step \"b\" does not run before \"a\"");
}

#[test]
fn missing_required_fields_are_errors() {
    one_error(
        "[[step]]\nkind = \"sleep\"\nduration = \"1s\"\n",
        1,
        "no `id`",
    );
    one_error("[[step]]\nid = \"a\"\n", 1, "has no `kind`");
    one_error(
        "[[step]]\nid = \"a\"\nkind = \"activity\"\n",
        1,
        "needs a non-empty `command`",
    );
    one_error(
        "[[step]]\nid = \"g\"\nkind = \"gate\"\n",
        1,
        "needs `signals`",
    );
    one_error(
        "[[step]]\nid = \"c\"\nkind = \"child\"\n",
        1,
        "needs `template`",
    );
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\n",
        1,
        "exactly one of `duration` or `until`",
    );
    one_error(
        "[[step]]\nid = \"p\"\nkind = \"parallel\"\n",
        1,
        "needs branches",
    );
    assert!(errors("name = \"x\"\n")[0].message.contains("no steps"));
}

#[test]
fn misplaced_and_unknown_fields_are_errors() {
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\nduration = \"1s\"\ncommand = [\"x\"]\n",
        5,
        "`command` does not apply to a sleep step",
    );
    one_error(
        "[[step]]\nid = \"s\"\nkind = \"sleep\"\nduraton = \"1s\"\n",
        4,
        "unknown field `duraton`",
    );
    one_error(
        "[[step]]\nid = \"g\"\nkind = \"gate\"\nsignals = [\"ok\"]\ndefault = \"maybe\"\ntimeout = \"1h\"\n",
        5,
        "`default` \"maybe\" is not one of `signals`",
    );
    one_error(
        "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"x\", \"{unclosed\"]\n",
        4,
        "argument 1, byte 0: `{` is never closed",
    );
}

#[test]
fn syntax_errors_carry_a_line() {
    one_error("[[step]]\nid = \"a\"\nkind = \n", 3, "");
}

#[test]
fn several_problems_are_reported_together_in_line_order() {
    let src = "[[step]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1q\"\n\n[[step]]\nid = \"b\"\nkind = \"bogus\"\n";
    let d = errors(src);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d[0].line < d[1].line);
    assert_eq!(
        d[0].to_string().split(':').take(2).collect::<Vec<_>>(),
        ["t.toml", "4"]
    );
}

#[test]
fn content_hash_changes_with_any_byte() {
    assert_ne!(content_hash(b"a"), content_hash(b"b"));
    assert_eq!(
        content_hash(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn on_complete_defaults_to_closing_and_may_give_the_issue_back_relabelled() {
    let step = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\n";
    let p = compile("t.toml", step).expect("compiles");
    assert_eq!(p.on_complete, OnComplete::default());
    assert!(p.on_complete.close);
    let src = format!(
        "{step}[on_complete]\nclose = false\nadd_labels = [\"triaged\"]\nremove_labels = [\"spool:triage\"]\n"
    );
    let p = compile("t.toml", &src).expect("compiles");
    assert_eq!(
        p.on_complete,
        OnComplete {
            close: false,
            add_labels: vec!["triaged".into()],
            remove_labels: vec!["spool:triage".into()],
        }
    );
    one_error(
        &format!("{step}[on_complete]\nadd_labels = [\"x\"]\n"),
        5,
        "close = false",
    );
    one_error(
        &format!("{step}[on_complete]\nclose = false\nadd_labels = [\"a,b\"]\n"),
        5,
        "bad label",
    );
    one_error(&format!("{step}[on_complete]\nbogus = 1\n"), 6, "bogus");
}

#[test]
fn steps_may_require_capabilities_which_the_program_collects() {
    let src = "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\nrequires = [\"gpu\"]\n\
               [[step]]\nid = \"p\"\nkind = \"parallel\"\n\
               [[step.steps]]\nid = \"b\"\nkind = \"activity\"\ncommand = [\"true\"]\nrequires = [\"os.linux\", \"gpu\"]\n\
               [[step.steps]]\nid = \"c\"\nkind = \"sleep\"\nduration = \"1s\"\n";
    let p = compile("t.toml", src).expect("compiles");
    let req: Vec<String> = p.requirements().into_iter().collect();
    assert_eq!(req, vec!["gpu".to_string(), "os.linux".to_string()]);
    one_error(
        "[[step]]\nid = \"a\"\nkind = \"activity\"\ncommand = [\"true\"]\nrequires = [\"g p u\"]\n",
        5,
        "bad capability",
    );
}
