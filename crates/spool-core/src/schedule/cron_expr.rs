//! Cron expressions as people write them, normalised to the `cron` crate's form.
//!
//! Accepted: standard 5 fields (`min hour dom month dow`), 6 fields with seconds first,
//! 7 fields with a trailing year, and the aliases `@yearly`/`@annually`, `@monthly`,
//! `@weekly`, `@daily`/`@midnight`, `@hourly`. Day of week is numbered as in crontab
//! (0–7, Sunday = 0 and 7) or named (`MON`, `monday`); the `cron` crate numbers Sunday 1,
//! so the field is expanded to names here. When both day of month and day of week are
//! restricted, a time matches if *either* does (crontab's rule): the expression becomes
//! two `cron` schedules whose union is taken. `L`, `W` and `#` are not supported by the
//! `cron` crate and are rejected with a message saying so.

use chrono::NaiveDateTime;
use std::str::FromStr;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron expression: one or two `cron` schedules (see the module docs).
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    normalised: Vec<String>,
    schedules: Vec<cron::Schedule>,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.normalised == other.normalised
    }
}

impl CronExpr {
    /// Parses `text`; the error says what is wrong in words a user can act on.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let source = text.trim();
        if source.is_empty() {
            return Err("empty cron expression".into());
        }
        if let Some(c) = source.chars().find(|c| matches!(c, 'L' | 'W' | '#')) {
            if c == '#' || (!source.starts_with('@') && !has_name_with(source, c)) {
                return Err(format!(
                    "{source:?}: `{c}` (last/weekday/nth extensions) is not supported"
                ));
            }
        }
        let six = match source.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => vec!["0", "0", "0", "1", "1", "*"],
            "@monthly" => vec!["0", "0", "0", "1", "*", "*"],
            "@weekly" => vec!["0", "0", "0", "*", "*", "0"],
            "@daily" | "@midnight" => vec!["0", "0", "0", "*", "*", "*"],
            "@hourly" => vec!["0", "0", "*", "*", "*", "*"],
            s if s.starts_with('@') => {
                return Err(format!(
                    "{source:?}: unknown alias (use @yearly, @monthly, @weekly, @daily or @hourly)"
                ))
            }
            _ => {
                let fields: Vec<&str> = source.split_whitespace().collect();
                match fields.len() {
                    5 => std::iter::once("0").chain(fields).collect(),
                    6 | 7 => fields,
                    n => {
                        return Err(format!(
                            "{source:?} has {n} fields; expected 5 (minute hour day-of-month month \
                             day-of-week), 6 (seconds first) or 7 (seconds first, year last)"
                        ))
                    }
                }
            }
        };
        let dom = six[3];
        let dow_field = six[5];
        let dow = expand_dow(dow_field).map_err(|e| format!("{source:?}: day of week: {e}"))?;
        let unrestricted = |f: &str| f.starts_with('*') || f.starts_with('?');
        let year = six.get(6).copied();
        let compose = |dom: &str, dow: &str| {
            let mut parts = vec![six[0], six[1], six[2], dom, six[4], dow];
            if let Some(y) = year {
                parts.push(y);
            }
            parts.join(" ")
        };
        let normalised = if unrestricted(dom) || unrestricted(dow_field) {
            let dow = if unrestricted(dow_field) { "*" } else { &dow };
            vec![compose(dom, dow)]
        } else {
            // crontab: either field may match.
            vec![compose(dom, "*"), compose("*", &dow)]
        };
        let schedules = normalised
            .iter()
            .map(|n| cron::Schedule::from_str(n).map_err(|e| format!("{source:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CronExpr {
            source: source.to_string(),
            normalised,
            schedules,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `cron` crate expressions this one stands for (seconds first, Sunday = `SUN`).
    pub fn normalised(&self) -> &[String] {
        &self.normalised
    }

    /// Whether a wall-clock time matches.
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        let at = t.and_utc();
        self.schedules.iter().any(|s| s.includes(at))
    }

    /// The first matching wall-clock time strictly after `t` (no time zone involved).
    pub fn next_naive_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let at = t.and_utc();
        self.schedules
            .iter()
            .filter_map(|s| s.after(&at).next())
            .min()
            .map(|d| d.naive_utc())
    }
}

/// True when every occurrence of `c` is inside a day or month name (e.g. `WED`, `JUL`).
fn has_name_with(source: &str, c: char) -> bool {
    source
        .split(|ch: char| !ch.is_ascii_alphabetic())
        .filter(|w| w.contains(c))
        .all(|w| w.len() >= 3)
}

/// Expands a day-of-week field to a comma list of names (crontab numbering in).
fn expand_dow(field: &str) -> Result<String, String> {
    let mut days = [false; 7];
    for token in field.split(',') {
        let token = token.trim();
        let (base, step) = match token.split_once('/') {
            Some((b, s)) => {
                let step: usize = s
                    .parse()
                    .map_err(|_| format!("bad step {s:?} in {token:?}"))?;
                if step == 0 {
                    return Err(format!("step 0 in {token:?}"));
                }
                (b, step)
            }
            None => (token, 1),
        };
        let (lo, hi) = if base == "*" || base == "?" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (day(a)?, day_end(b)?);
            if a > b {
                return Err(format!("range {base:?} runs backwards"));
            }
            (a, b)
        } else {
            let d = day(base)?;
            // crontab: `N/step` runs from N to the end of the week.
            (d, if step > 1 { 6 } else { d })
        };
        let mut d = lo;
        while d <= hi {
            days[d % 7] = true;
            d += step;
        }
    }
    let names: Vec<&str> = (0..7).filter(|d| days[*d]).map(|d| DAY_NAMES[d]).collect();
    if names.is_empty() {
        return Err(format!("{field:?} names no day"));
    }
    Ok(names.join(","))
}

fn day(text: &str) -> Result<usize, String> {
    let d = day_end(text)?;
    Ok(d % 7)
}

/// A day number where 7 (Sunday) is kept as 7, so `5-7` is Friday to Sunday.
fn day_end(text: &str) -> Result<usize, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "{n} is not a day of the week (0–7, Sunday = 0 or 7)"
            ))
        };
    }
    let lower = t.to_ascii_lowercase();
    const FULL: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    FULL.iter()
        .position(|f| lower.len() >= 3 && f.starts_with(&lower))
        // Sunday as a range end is the end of the week.
        .map(|d| if d == 0 { 7 } else { d })
        .ok_or_else(|| format!("{t:?} is not a day of the week"))
}
