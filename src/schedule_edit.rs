//! Edits of `.spool/schedules.toml` text that keep everything else in the file as it was
//! (comments, order, formatting): add one `[[schedule]]`, remove one by id. Pure text in,
//! text out; the caller reads and writes the file.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use spool_core::schedule::parse_file;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

/// A new schedule, as `spool schedule create` takes it.
#[derive(Debug, Clone, Default)]
pub struct NewSchedule {
    pub id: String,
    pub cron: Vec<String>,
    pub every: Option<String>,
    pub offset: Option<String>,
    pub timezone: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub jitter: Option<String>,
    pub overlap: Option<String>,
    pub catchup_window: Option<String>,
    pub pause_on_failure: bool,
    pub max_actions: Option<u64>,
    pub notes: Option<String>,
    /// Either a workflow (with its input) or the issue to create.
    pub workflow: Option<String>,
    pub input: Option<Value>,
    pub create_issue: Option<Value>,
}

fn to_toml(v: &Value) -> Result<toml_edit::Value> {
    Ok(match v {
        Value::Null => bail!("TOML has no null"),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            _ => bail!("number {n} does not fit TOML"),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(a) => {
            let mut out = Array::new();
            for item in a {
                out.push(to_toml(item)?);
            }
            out.into()
        }
        Value::Object(m) => {
            let mut t = InlineTable::new();
            for (k, v) in m {
                t.insert(k, to_toml(v)?);
            }
            t.into()
        }
    })
}

/// `text` with `new` appended as a `[[schedule]]` table. Refuses a duplicate id and a
/// definition that does not validate (the error names the field).
pub fn add_schedule(text: &str, new: &NewSchedule) -> Result<String> {
    let mut doc: DocumentMut = text
        .parse()
        .context("the schedules file is not valid TOML")?;
    let existing = parse_file("schedules.toml", text);
    if existing.schedules.iter().any(|(d, _)| d.id == new.id)
        || existing
            .errors
            .iter()
            .any(|e| e.schedule.as_deref() == Some(&new.id))
    {
        bail!("a schedule {:?} already exists", new.id);
    }
    let mut t = Table::new();
    t["id"] = value(new.id.as_str());
    match new.cron.as_slice() {
        [] => {}
        [one] => t["cron"] = value(one.as_str()),
        many => t["cron"] = value(many.iter().map(String::as_str).collect::<Array>()),
    }
    let text_fields = [
        ("every", &new.every),
        ("offset", &new.offset),
        ("timezone", &new.timezone),
        ("start", &new.start),
        ("end", &new.end),
        ("jitter", &new.jitter),
        ("overlap", &new.overlap),
        ("catchup_window", &new.catchup_window),
        ("notes", &new.notes),
    ];
    for (key, v) in text_fields {
        if let Some(v) = v {
            t[key] = value(v.as_str());
        }
    }
    if new.pause_on_failure {
        t["pause_on_failure"] = value(true);
    }
    if let Some(n) = new.max_actions {
        t["max_actions"] =
            value(i64::try_from(n).map_err(|_| anyhow!("--max-actions is too large"))?);
    }
    let mut action = Table::new();
    if let Some(w) = &new.workflow {
        action["workflow"] = value(w.as_str());
        if let Some(input) = &new.input {
            action["input"] = value(to_toml(input).context("--input")?);
        }
    }
    if let Some(issue) = &new.create_issue {
        action["create_issue"] = value(to_toml(issue)?);
    }
    t["action"] = Item::Table(action);
    // Text after the last table (say, a file of comments only) stays before the new one.
    let trailing = doc.trailing().as_str().unwrap_or("").to_string();
    if !trailing.trim().is_empty() {
        doc.set_trailing("");
        t.decor_mut()
            .set_prefix(format!("{}\n", trailing.trim_end()));
    }
    let schedules = doc
        .entry("schedule")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .context("`schedule` in the file is not a list of [[schedule]] tables")?;
    schedules.push(t);
    let out = doc.to_string();
    let check = parse_file("schedules.toml", &out);
    if let Some(e) = check
        .errors
        .iter()
        .find(|e| e.schedule.as_deref() == Some(&new.id))
    {
        match &e.field {
            Some(f) => bail!("schedule {:?}: `{f}`: {}", new.id, e.message),
            None => bail!("schedule {:?}: {}", new.id, e.message),
        }
    }
    Ok(out)
}

/// `text` without the `[[schedule]]` whose id is `id`, or `None` when there is none.
pub fn remove_schedule(text: &str, id: &str) -> Result<Option<String>> {
    let mut doc: DocumentMut = text
        .parse()
        .context("the schedules file is not valid TOML")?;
    let Some(schedules) = doc
        .get_mut("schedule")
        .and_then(Item::as_array_of_tables_mut)
    else {
        return Ok(None);
    };
    let Some(index) = schedules
        .iter()
        .position(|t| t.get("id").and_then(Item::as_str) == Some(id))
    else {
        return Ok(None);
    };
    // The first table carries the comments at the top of the file: keep them.
    let head = if index == 0 {
        schedules
            .get(0)
            .and_then(|t| t.decor().prefix())
            .and_then(|p| p.as_str())
            .map(str::to_string)
    } else {
        None
    };
    schedules.remove(index);
    if let (Some(head), Some(next)) = (&head, schedules.get_mut(0)) {
        let own = next
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        next.decor_mut()
            .set_prefix(format!("{head}{}", own.trim_start_matches('\n')));
    }
    if schedules.is_empty() {
        doc.remove("schedule");
        if let Some(head) = head {
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing(format!("{}\n{trailing}", head.trim_end()));
        }
    }
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Team schedules; keep this comment.\n\n[[schedule]]\nid = \"a\"  # first\nevery = \"1h\"\n[schedule.action]\nworkflow = \"noop\"\n";

    #[test]
    fn add_keeps_the_rest_and_validates() {
        let new = NewSchedule {
            id: "b".into(),
            cron: vec!["0 9 * * MON".into()],
            timezone: Some("Europe/Berlin".into()),
            workflow: Some("triage".into()),
            input: Some(serde_json::json!({"scope": "all", "n": 2})),
            ..NewSchedule::default()
        };
        let out = add_schedule(FILE, &new).expect("add");
        assert!(out.starts_with(FILE), "{out}");
        let parsed = parse_file("f", &out);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let ids: Vec<&str> = parsed
            .schedules
            .iter()
            .map(|(d, _)| d.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(add_schedule(&out, &new).is_err(), "duplicate id");
        let bad = NewSchedule {
            id: "c".into(),
            cron: vec!["0 9 * *".into()],
            workflow: Some("x".into()),
            ..NewSchedule::default()
        };
        let err = add_schedule(FILE, &bad).expect_err("bad cron").to_string();
        assert!(err.contains("`cron`"), "{err}");
    }

    #[test]
    fn remove_takes_out_one_table() {
        let new = NewSchedule {
            id: "b".into(),
            every: Some("5m".into()),
            create_issue: Some(serde_json::json!({"title": "Check"})),
            ..NewSchedule::default()
        };
        let two = add_schedule(FILE, &new).expect("add");
        let back = remove_schedule(&two, "b").expect("remove").expect("found");
        assert_eq!(back, FILE);
        assert_eq!(remove_schedule(FILE, "zzz").expect("remove"), None);
        let none = remove_schedule(FILE, "a").expect("remove").expect("found");
        assert!(none.contains("keep this comment"));
        assert!(parse_file("f", &none).schedules.is_empty());
    }
}
