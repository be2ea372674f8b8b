use super::file::{parse_file, DEFAULT_CATCHUP_WINDOW};
use super::policy::{
    after_start, catch_up, decide_overlap, may_act, pauses_on_close, start_buffered, FireSource,
    OverlapDecision, OverlapPolicy, BUFFER_LIMIT,
};
use super::spec::{due_time, jitter, resolve_local, Interval, Spec};
use super::{Action, CronExpr};
use chrono::{DateTime, NaiveDate, Utc};
use std::time::Duration;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn cron_spec(expr: &str, tz: &str) -> Spec {
    Spec {
        crons: vec![CronExpr::parse(expr).expect("valid cron")],
        tz: tz.parse().expect("zone"),
        ..Spec::empty()
    }
}

fn times(spec: &Spec, after: &str, n: usize) -> Vec<String> {
    spec.upcoming(t(after), n)
        .iter()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .collect()
}

/// (expression, zone, after, the next fire times in UTC)
const CASES: &[(&str, &str, &str, &[&str])] = &[
    // 5 fields, steps.
    (
        "*/15 * * * *",
        "UTC",
        "2026-01-01T00:07:00Z",
        &[
            "2026-01-01T00:15:00Z",
            "2026-01-01T00:30:00Z",
            "2026-01-01T00:45:00Z",
            "2026-01-01T01:00:00Z",
        ],
    ),
    // 6 fields: seconds first.
    (
        "*/20 * * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:00:20Z",
            "2026-01-01T00:00:40Z",
            "2026-01-01T00:01:00Z",
        ],
    ),
    // 7 fields: a year.
    (
        "0 0 12 1 1 * 2028",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-01-01T12:00:00Z"],
    ),
    // Aliases.
    (
        "@hourly",
        "UTC",
        "2026-03-01T10:30:00Z",
        &["2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"],
    ),
    (
        "@daily",
        "UTC",
        "2026-12-31T12:00:00Z",
        &["2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"],
    ),
    (
        "@weekly",
        "UTC",
        "2026-11-25T00:00:00Z",
        &["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"],
    ),
    (
        "@monthly",
        "UTC",
        "2026-01-15T00:00:00Z",
        &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"],
    ),
    (
        "@yearly",
        "UTC",
        "2026-06-01T00:00:00Z",
        &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"],
    ),
    // Range with a step, weekdays by number (Friday 2026-11-27 → Monday).
    (
        "0 9-17/4 * * 1-5",
        "UTC",
        "2026-11-27T12:00:00Z",
        &[
            "2026-11-27T13:00:00Z",
            "2026-11-27T17:00:00Z",
            "2026-11-30T09:00:00Z",
        ],
    ),
    // Named days, a list of days of month.
    (
        "30 6 * * MON-FRI",
        "UTC",
        "2026-11-28T00:00:00Z",
        &["2026-11-30T06:30:00Z", "2026-12-01T06:30:00Z"],
    ),
    (
        "0 0 1,15 * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"],
    ),
    // Sunday as 7 and as 0.
    (
        "0 0 * * 7",
        "UTC",
        "2026-11-25T00:00:00Z",
        &["2026-11-29T00:00:00Z"],
    ),
    (
        "0 0 * * 0",
        "UTC",
        "2026-11-25T00:00:00Z",
        &["2026-11-29T00:00:00Z"],
    ),
    (
        "0 0 * * 5-7",
        "UTC",
        "2026-11-25T00:00:00Z",
        &[
            "2026-11-27T00:00:00Z",
            "2026-11-28T00:00:00Z",
            "2026-11-29T00:00:00Z",
            "2026-12-04T00:00:00Z",
        ],
    ),
    // Day of month OR day of week when both are restricted (crontab): the 12th or Fridays.
    (
        "0 0 12 * 5",
        "UTC",
        "2026-11-01T00:00:00Z",
        &[
            "2026-11-06T00:00:00Z",
            "2026-11-12T00:00:00Z",
            "2026-11-13T00:00:00Z",
            "2026-11-20T00:00:00Z",
        ],
    ),
    // Month ends: the 31st skips short months.
    (
        "0 0 31 * *",
        "UTC",
        "2026-01-31T00:00:01Z",
        &["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"],
    ),
    // Leap years: 29 February.
    (
        "0 12 29 2 *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"],
    ),
    // New York, spring forward (2026-03-08 02:00 EST → 03:00 EDT): 02:30 does not exist
    // that day and fires once at 03:00 EDT.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T00:00:00Z",
        &[
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
        ],
    ),
    // New York, hourly over the gap: 02:00 and 03:00 both land on 03:00 EDT, once.
    (
        "0 * * * *",
        "America/New_York",
        "2026-03-08T06:30:00Z",
        &["2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"],
    ),
    // New York, fall back (2026-11-01 02:00 EDT → 01:00 EST): 01:30 happens twice, fires once.
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T00:00:00Z",
        &[
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
        ],
    ),
    // New York, hourly over the repeated hour: 01:00 EDT, then 02:00 EST.
    (
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:30:00Z",
        &[
            "2026-11-01T05:00:00Z",
            "2026-11-01T07:00:00Z",
            "2026-11-01T08:00:00Z",
        ],
    ),
    // From inside the second pass of the repeated hour (01:10 EST) the next is 02:00 EST.
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T06:10:00Z",
        &["2026-11-01T07:00:00Z"],
    ),
    // Berlin, spring forward (2026-03-29 02:00 CET → 03:00 CEST).
    (
        "15 2 * * *",
        "Europe/Berlin",
        "2026-03-28T00:00:00Z",
        &[
            "2026-03-28T01:15:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:15:00Z",
        ],
    ),
    // Berlin, fall back (2026-10-25 03:00 CEST → 02:00 CET).
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
    ),
];

#[test]
fn next_fire_times_match_the_table() {
    for (expr, tz, after, expected) in CASES {
        let spec = cron_spec(expr, tz);
        assert_eq!(
            times(&spec, after, expected.len()),
            *expected,
            "{expr} in {tz} after {after}"
        );
    }
}

#[test]
fn bad_expressions_say_what_is_wrong() {
    for (expr, needle) in [
        ("", "empty"),
        ("* * *", "3 fields"),
        ("0 0 L * *", "not supported"),
        ("0 0 15W * *", "not supported"),
        ("0 0 * * 5#3", "not supported"),
        ("@fortnightly", "unknown alias"),
        ("61 * * * *", "\"61 * * * *\""),
        ("0 0 * * 8", "not a day of the week"),
        ("0 0 * * 5-2", "backwards"),
    ] {
        let err = CronExpr::parse(expr).expect_err(expr);
        assert!(err.contains(needle), "{expr:?}: {err}");
    }
    // Names that contain the letters are fine.
    assert!(CronExpr::parse("0 0 * JUL WED").is_ok());
}

#[test]
fn normalisation_adds_seconds_and_names_days() {
    let c = CronExpr::parse("5 4 * * 1-5").expect("valid");
    assert_eq!(c.normalised(), ["0 5 4 * * MON,TUE,WED,THU,FRI"]);
    let c = CronExpr::parse("0 0 1 * MON").expect("valid");
    assert_eq!(c.normalised(), ["0 0 0 1 * *", "0 0 0 * * MON"]);
}

#[test]
fn intervals_follow_the_epoch_with_an_offset() {
    let spec = Spec {
        intervals: vec![
            Interval::new(Duration::from_secs(900), Duration::from_secs(300)).expect("interval"),
        ],
        ..Spec::empty()
    };
    assert_eq!(
        times(&spec, "2026-01-01T00:07:00Z", 3),
        [
            "2026-01-01T00:20:00Z",
            "2026-01-01T00:35:00Z",
            "2026-01-01T00:50:00Z"
        ]
    );
    assert_eq!(
        times(&spec, "2026-01-01T00:20:00Z", 1),
        ["2026-01-01T00:35:00Z"],
        "strictly after"
    );
    assert!(Interval::new(Duration::from_millis(500), Duration::ZERO).is_err());
    assert!(Interval::new(Duration::from_secs(60), Duration::from_secs(60)).is_err());
}

#[test]
fn start_and_end_clip_and_the_union_is_ordered() {
    let mut spec = cron_spec("0 * * * *", "UTC");
    spec.intervals
        .push(Interval::new(Duration::from_secs(1800), Duration::ZERO).expect("interval"));
    spec.start = Some(t("2026-01-01T10:00:00Z"));
    spec.end = Some(t("2026-01-01T11:30:00Z"));
    assert_eq!(
        times(&spec, "2026-01-01T00:00:00Z", 10),
        [
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:30:00Z",
            "2026-01-01T11:00:00Z",
            "2026-01-01T11:30:00Z"
        ]
    );
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let max = Duration::from_secs(30);
    let a = t("2026-01-01T00:00:00Z");
    let mut distinct = std::collections::HashSet::new();
    for i in 0..200 {
        let nominal = a + chrono::Duration::minutes(i);
        let j = jitter("s", nominal, max);
        assert!(j <= max);
        assert_eq!(j, jitter("s", nominal, max), "stable");
        assert_eq!(
            due_time("s", nominal, max),
            nominal + chrono::Duration::milliseconds(j.as_millis() as i64)
        );
        distinct.insert(j);
    }
    assert!(distinct.len() > 150, "spread: {}", distinct.len());
    assert_ne!(jitter("a", a, max), jitter("b", a, max));
    assert_eq!(jitter("s", a, Duration::ZERO), Duration::ZERO);
}

#[test]
fn skipped_wall_clock_times_resolve_to_the_change() {
    let ny: chrono_tz::Tz = "America/New_York".parse().expect("zone");
    let at = |h, m| {
        NaiveDate::from_ymd_opt(2026, 3, 8)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .expect("date")
    };
    assert_eq!(resolve_local(ny, at(2, 0)), t("2026-03-08T07:00:00Z"));
    assert_eq!(resolve_local(ny, at(2, 59)), t("2026-03-08T07:00:00Z"));
    assert_eq!(resolve_local(ny, at(3, 0)), t("2026-03-08T07:00:00Z"));
    assert_eq!(resolve_local(ny, at(1, 59)), t("2026-03-08T06:59:00Z"));
}

fn every_minute() -> Spec {
    Spec {
        intervals: vec![Interval::new(Duration::from_secs(60), Duration::ZERO).expect("interval")],
        ..Spec::empty()
    }
}

#[test]
fn a_day_of_downtime_with_a_one_hour_window_fires_the_last_hour() {
    let down = t("2026-01-01T00:00:00Z");
    let now = t("2026-01-02T00:00:00Z");
    let c = catch_up(
        &every_minute(),
        "s",
        down,
        now,
        Duration::from_secs(3600),
        usize::MAX,
    );
    assert_eq!(c.fire.len(), 61, "23:00 through 00:00 inclusive");
    assert_eq!(c.fire.first(), Some(&t("2026-01-01T23:00:00Z")));
    assert_eq!(c.fire.last(), Some(&now));
    assert_eq!(c.missed, 1440 - 61);
    assert!(c.missed_exact);
    assert_eq!(c.missed_recent.len(), 100);
    assert_eq!(c.missed_recent.last(), Some(&t("2026-01-01T22:59:00Z")));
    assert_eq!(c.processed_through, now);
    assert_eq!(c.next, Some(t("2026-01-02T00:01:00Z")));
}

#[test]
fn catch_up_waits_for_jitter_and_respects_the_fire_limit() {
    let mut spec = every_minute();
    spec.jitter = Duration::from_secs(59);
    let start = t("2026-01-01T00:00:00Z");
    let first = t("2026-01-01T00:01:00Z");
    let due = due_time("s", first, spec.jitter);
    let before = catch_up(
        &spec,
        "s",
        start,
        due - chrono::Duration::milliseconds(1),
        DEFAULT_CATCHUP_WINDOW,
        10,
    );
    assert!(before.fire.is_empty());
    assert_eq!(before.next, Some(first));
    assert_eq!(
        before.processed_through, start,
        "a time not yet due is not processed"
    );
    let at = catch_up(&spec, "s", start, due, DEFAULT_CATCHUP_WINDOW, 10);
    assert_eq!(at.fire, [first]);
    let limited = catch_up(
        &every_minute(),
        "s",
        start,
        t("2026-01-01T00:10:00Z"),
        Duration::from_secs(3600),
        3,
    );
    assert_eq!(limited.fire.len(), 3);
    assert_eq!(limited.processed_through, t("2026-01-01T00:03:00Z"));
    assert_eq!(limited.next, Some(t("2026-01-01T00:04:00Z")));
}

#[test]
fn a_very_long_outage_is_not_counted_to_the_end() {
    let spec = Spec {
        intervals: vec![Interval::new(Duration::from_secs(1), Duration::ZERO).expect("interval")],
        ..Spec::empty()
    };
    let now = t("2026-01-10T00:00:00Z");
    let c = catch_up(
        &spec,
        "s",
        t("2026-01-01T00:00:00Z"),
        now,
        Duration::from_secs(10),
        usize::MAX,
    );
    assert!(!c.missed_exact);
    assert_eq!(c.fire.len(), 11);
    assert_eq!(c.fire.first(), Some(&(now - chrono::Duration::seconds(10))));
}

#[test]
fn overlap_decisions_follow_the_policy() {
    use OverlapDecision::{Buffer, CancelOthersThenBuffer, Drop, Start, TerminateOthersThenStart};
    use OverlapPolicy::{AllowAll, BufferAll, BufferOne, CancelOther, TerminateOther};
    let skip = OverlapPolicy::Skip;
    // (policy, running, buffered, decision)
    let table = [
        (skip, false, 0, Start),
        (skip, true, 0, OverlapDecision::Skip),
        (BufferOne, true, 0, Buffer),
        (BufferOne, true, 1, Drop),
        (BufferOne, false, 1, Drop),
        (BufferAll, true, 5, Buffer),
        (BufferAll, true, BUFFER_LIMIT, Drop),
        (CancelOther, true, 0, CancelOthersThenBuffer),
        (CancelOther, true, 1, Drop),
        (TerminateOther, true, 0, TerminateOthersThenStart),
        (AllowAll, true, 0, Start),
        (AllowAll, false, 0, Start),
    ];
    for (policy, running, buffered, expected) in table {
        assert_eq!(
            decide_overlap(policy, running, buffered),
            expected,
            "{policy:?} running={running} buffered={buffered}"
        );
    }
    for p in OverlapPolicy::ALL {
        assert_eq!(
            decide_overlap(p, false, 0),
            Start,
            "{p:?} with nothing running"
        );
        assert_eq!(OverlapPolicy::parse(p.as_str()), Some(p));
    }
    assert!(start_buffered(false, 1));
    assert!(!start_buffered(true, 1));
    assert!(!start_buffered(false, 0));
}

#[test]
fn pause_and_limits() {
    assert!(pauses_on_close(true, "failed"));
    assert!(pauses_on_close(true, "timed_out"));
    assert!(!pauses_on_close(true, "completed"));
    assert!(!pauses_on_close(true, "canceled"));
    assert!(!pauses_on_close(false, "failed"));
    assert!(may_act(FireSource::Scheduled, false, Some(1)));
    assert!(!may_act(FireSource::Scheduled, false, Some(0)));
    assert!(!may_act(FireSource::Scheduled, true, None));
    assert!(may_act(FireSource::Trigger, true, Some(0)));
    assert!(may_act(FireSource::Backfill, true, None));
    assert_eq!(after_start(FireSource::Scheduled, Some(2)), Some(1));
    assert_eq!(after_start(FireSource::Trigger, Some(2)), Some(2));
    assert_eq!(after_start(FireSource::Scheduled, None), None);
}

const FILE: &str = r#"# team schedules
[[schedule]]
id = "triage"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
overlap = "buffer_one"
[schedule.action]
workflow = "triage"
input = { scope = "all" }

[[schedule]]
id = "broken"
cron = "0 3 * *"
[schedule.action]
workflow = "x"

[[schedule]]
id = "deps"
every = "7d"
offset = "1h"
max_actions = 3
pause_on_failure = true
[schedule.action]
create_issue = { title = "Dependency update", type = "chore", labels = ["deps"] }

[[schedule]]
id = "zone"
every = "1m"
timezone = "Mars/Olympus"
[schedule.action]
workflow = "x"

[[schedule]]
id = "triage"
every = "1m"
[schedule.action]
workflow = "x"
"#;

#[test]
fn the_file_loads_good_schedules_and_locates_bad_ones() {
    let f = parse_file(".spool/schedules.toml", FILE);
    let ids: Vec<&str> = f.schedules.iter().map(|(d, _)| d.id.as_str()).collect();
    assert_eq!(ids, ["triage", "deps"]);
    let (triage, line) = &f.schedules[0];
    assert_eq!(*line, 2);
    assert_eq!(triage.overlap, OverlapPolicy::BufferOne);
    assert_eq!(triage.catchup_window, DEFAULT_CATCHUP_WINDOW);
    assert_eq!(triage.spec.tz, chrono_tz::Europe::Berlin);
    assert!(
        matches!(&triage.action, Action::Workflow { template, input }
        if template == "triage" && input["scope"] == "all")
    );
    let deps = &f.schedules[1].0;
    assert_eq!(deps.max_actions, Some(3));
    assert!(deps.pause_on_failure);
    match &deps.action {
        Action::CreateIssue(i) => {
            assert_eq!(i.title, "Dependency update");
            assert_eq!(i.issue_type, "chore");
            assert_eq!(i.priority, 2);
            assert_eq!(i.labels, ["deps"]);
        }
        other => panic!("{other:?}"),
    }
    let msgs: Vec<String> = f.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(
        msgs[0].starts_with(".spool/schedules.toml:13: schedule \"broken\": `cron`: "),
        "{}",
        msgs[0]
    );
    assert!(msgs[0].contains("4 fields"), "{}", msgs[0]);
    assert!(
        msgs[1].starts_with(".spool/schedules.toml:29: schedule \"zone\": `timezone`: "),
        "{}",
        msgs[1]
    );
    assert!(msgs[2].starts_with(".spool/schedules.toml:34: schedule \"triage\": `id`: duplicate id (first defined on line 2)"), "{}", msgs[2]);
    // The hash follows the definition.
    let again = parse_file("f", FILE);
    assert_eq!(triage.hash(), again.schedules[0].0.hash());
    assert_ne!(triage.hash(), deps.hash());
}

#[test]
fn field_errors_name_the_field() {
    let cases = [
        ("id = \"a\"\nevery = \"1m\"\n", "action", "missing"),
        (
            "id = \"a\"\n[schedule.action]\nworkflow = \"w\"\n",
            "cron",
            "needs `cron` or `every`",
        ),
        ("id = \"a b\"\nevery = \"1m\"\n", "id", "letters"),
        (
            "id = \"a\"\nevery = \"1m\"\nevry = 3\n",
            "evry",
            "unknown field",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\njitter = 5\n",
            "jitter",
            "expected a string",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\noverlap = \"sometimes\"\n",
            "overlap",
            "expected skip",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\nstart = \"tomorrow\"\n",
            "start",
            "RFC 3339",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\noffset = \"2m\"\n",
            "offset",
            "shorter",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\ncatchup_window = \"0s\"\n",
            "catchup_window",
            "at least 1s",
        ),
        (
            "id = \"a\"\nevery = \"1m\"\n[schedule.action]\ncreate_issue = { priority = 1 }\n",
            "action.create_issue.title",
            "missing",
        ),
    ];
    for (body, field, needle) in cases {
        let src = format!("[[schedule]]\n{body}");
        let f = parse_file("s.toml", &src);
        assert!(f.schedules.is_empty(), "{body}");
        assert_eq!(f.errors.len(), 1, "{body}: {:?}", f.errors);
        let e = &f.errors[0];
        assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
        assert!(e.message.contains(needle), "{body}: {e}");
    }
    let broken = parse_file("s.toml", "[[schedule]\n");
    assert_eq!(broken.errors.len(), 1);
    assert_eq!(broken.errors[0].line, 1);
    let stray = parse_file("s.toml", "name = 1\n");
    assert_eq!(stray.errors[0].field.as_deref(), Some("name"));
}

#[test]
fn an_impossible_date_has_no_next_time() {
    let spec = cron_spec("0 0 30 2 *", "Europe/Berlin");
    assert_eq!(spec.next_after(t("2026-01-01T00:00:00Z")), None);
    let catch = catch_up(
        &spec,
        "s",
        t("2026-01-01T00:00:00Z"),
        t("2026-06-01T00:00:00Z"),
        DEFAULT_CATCHUP_WINDOW,
        10,
    );
    assert!(catch.fire.is_empty());
    assert_eq!(catch.next, None);
}

#[test]
fn every_second_in_a_repeated_hour_fires_each_wall_clock_second_once() {
    // From the start of the repeated hour in New York (01:00 EDT) to 02:00 EST: the
    // first pass fires each second, the second pass (01:00–02:00 EST) none.
    let spec = cron_spec("* * * * * *", "America/New_York");
    let first = spec.upcoming(t("2026-11-01T04:59:59Z"), 3600);
    assert_eq!(first.first(), Some(&t("2026-11-01T05:00:00Z")));
    assert_eq!(first.last(), Some(&t("2026-11-01T05:59:59Z")));
    let after = spec.next_after(t("2026-11-01T05:59:59Z"));
    assert_eq!(after, Some(t("2026-11-01T07:00:00Z")));
}

mod props {
    use super::*;
    use chrono::{Offset, TimeZone};
    use proptest::prelude::*;

    const EXPRS: &[&str] = &[
        "30 2 * * *",
        "0 * * * *",
        "*/7 1-3 * * *",
        "0 0 12 * 5",
        "15 2 29 2 *",
        "@weekly",
    ];
    const ZONES: &[&str] = &[
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Fire times strictly increase; each is a matching wall-clock time, or the moment
        /// of a DST change that skipped one.
        #[test]
        fn fire_times_increase_and_match(e in 0..EXPRS.len(), z in 0..ZONES.len(), secs in 1_767_225_600i64..1_798_761_600i64) {
            let spec = cron_spec(EXPRS[e], ZONES[z]);
            let cron = &spec.crons[0];
            let start = DateTime::from_timestamp(secs, 0).expect("time");
            let mut prev = start;
            for r in spec.upcoming(start, 40) {
                prop_assert!(r > prev, "{} in {}: {r} after {prev}", EXPRS[e], ZONES[z]);
                let local = r.with_timezone(&spec.tz).naive_local();
                let offset_at = |t: DateTime<Utc>| spec.tz.offset_from_utc_datetime(&t.naive_utc()).fix();
                let at_change = offset_at(r) != offset_at(r - chrono::Duration::seconds(1));
                prop_assert!(cron.matches(local) || at_change, "{} in {}: {r} ({local})", EXPRS[e], ZONES[z]);
                prev = r;
            }
        }
    }
}
