//! Commands that change the backlog: create, update, close, reopen, dep add/remove,
//! label add/remove, comments, notes.
//!
//! Each runs inside [`crate::backlog::modify`]: the file is re-read under the lock, every
//! check is made against that fresh copy, and only the lines of the issues named change.

use std::collections::HashSet;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use spool_core::beads::graph::{EdgeRefusal, Graph};
use spool_core::beads::ids::{self, IdSeed};
use spool_core::beads::node::{Node, Skimmed};
use spool_core::beads::ops::{self, Stamp};
use spool_core::beads::{
    canonical_dep_type, BeadsFile, CommentId, DepKind, Dependency, Issue, NewComment,
    NewDependency, NewIssue, StatusKind, Timestamp,
};

use super::args::{CloseArgs, CreateArgs, ReopenArgs, UpdateArgs};
use super::common::{id_error, now_stamp, priority_arg, resolve, time_arg};
use super::output::print_json;
use super::query::detail_json;
use super::Ctx;
use crate::backlog::{
    drop_later, modify, modify_file, modify_windowed, CommentIds, Peek, Plan, Tx,
};
use crate::workspace::{BeadsConfig, Workspace};
use crate::write_index::WriteIndex;

/// What every write needs: the workspace, who is writing, and the time of the write.
fn writer(ctx: &Ctx) -> Result<(Workspace, String, Timestamp)> {
    let ws = ctx.workspace()?;
    let actor = ctx.actor(Some(&ws));
    Ok((ws, actor, now_stamp(ctx)))
}

/// bd limits titles to 500 bytes.
const MAX_TITLE: usize = 500;

fn check_title(title: &str) -> Result<()> {
    if title.trim().is_empty() {
        bail!("a title is required");
    }
    if title.len() > MAX_TITLE {
        bail!("title is {} bytes; the limit is {MAX_TITLE}", title.len());
    }
    Ok(())
}

/// Renders issues after a write, for `--json`, in `show`'s shape: tools validate every
/// issue object they get against one schema, where `dependencies` are linked issues.
/// Each issue's view reads only its own line, its targets' and those with edges to it
/// (as [`render_windowed`] does), parsed in full from the skimmed file.
fn render_all(file: &BeadsFile<Skimmed>, ids: &[String]) -> Vec<Value> {
    let graph = Graph::new(file.issues());
    ids.iter()
        .filter_map(|id| {
            let i = graph.lookup(id)?;
            let mut near = vec![id.as_str()];
            near.extend(
                graph
                    .successors(i)
                    .chain(graph.predecessors(i))
                    .map(|j| graph.issue(j).id()),
            );
            detail_of(&file.typed_lines(&near), id).ok()
        })
        .collect()
}

/// Splits `type:id` (or a bare id, meaning `blocks`).
fn parse_dep_spec(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => (t, id),
        _ => ("blocks", spec),
    }
}

fn new_dep(id: &str, target: &str, dep_type: &str, stamp: Stamp<'_>) -> NewDependency {
    NewDependency {
        issue_id: id.to_string(),
        depends_on_id: target.to_string(),
        dep_type: canonical_dep_type(dep_type).to_string(),
        created_at: stamp.now.clone(),
        created_by: stamp.actor.to_string(),
        metadata: String::new(),
        thread_id: String::new(),
    }
}

pub fn create_cmd(ctx: &Ctx, args: &CreateArgs, quick: bool) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let title = args
        .title
        .clone()
        .or_else(|| args.title_flag.clone())
        .unwrap_or_default();
    check_title(&title)?;
    let priority = args
        .priority
        .as_deref()
        .map(priority_arg)
        .transpose()?
        .unwrap_or(2);
    let defer = args
        .defer
        .as_deref()
        .map(|s| time_arg(ctx, "defer", s))
        .transpose()?;
    let due = args
        .due
        .as_deref()
        .map(|s| time_arg(ctx, "due", s))
        .transpose()?;
    let config = BeadsConfig::load(&ws.config_path())?;
    let stamp = Stamp::new(&now, &actor);

    // The new issue's id, given the ids in the file and the parent.
    let make_id = |all_ids: &HashSet<&str>, parent: &Option<String>| -> Result<String> {
        let id = match (&args.id, &parent) {
            (Some(id), _) => {
                if all_ids.contains(id.as_str()) {
                    bail!("issue {id} already exists");
                }
                id.clone()
            }
            (None, Some(p)) => ids::next_child_id(
                p,
                all_ids.iter().copied(),
                ids::DEFAULT_MAX_CHILD_DEPTH,
            )
            .map_err(|e| match e {
                ids::IdError::MaxDepth { parent, max_depth } => {
                    anyhow!("{parent} is already {max_depth} levels deep; it cannot have children")
                }
                other => id_error(other),
            })?,
            (None, None) => {
                let prefix = ids::choose_prefix(
                    config.issue_prefix.as_deref(),
                    all_ids.iter().copied(),
                    &ws.dir_name(),
                );
                let seed = IdSeed {
                    title: &title,
                    description: args.description.as_deref().unwrap_or(""),
                    creator: &actor,
                    created_at_unix_nanos: now.unix_nanos(),
                };
                ids::generate_id(&prefix, seed, all_ids)
                    .map_err(|e| anyhow!("could not make a new id: {e:?}"))?
            }
        };
        Ok(id)
    };
    // The new issue's line.
    let make_issue = |id: &String, parent: &Option<String>, deps: &[(String, String)]| {
        let mut new = NewIssue::new(id.clone(), title.clone(), now.clone(), actor.clone());
        new.priority = priority;
        new.issue_type = args.issue_type.clone().unwrap_or_else(|| "task".into());
        new.description = args.description.clone().unwrap_or_default();
        new.design = args.design.clone().unwrap_or_default();
        new.acceptance_criteria = args.acceptance.clone().unwrap_or_default();
        new.notes = args.notes.clone().unwrap_or_default();
        new.assignee = args.assignee.clone().unwrap_or_default();
        new.external_ref = args.external_ref.clone().unwrap_or_default();
        new.estimated_minutes = args.estimate;
        new.defer_until = defer.clone();
        new.due_at = due.clone();
        new.labels = args
            .labels
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(p) = &parent {
            new.dependencies.push(new_dep(id, p, "parent-child", stamp));
        }
        for (t, target) in deps {
            if Some(target) == parent.as_ref() {
                continue;
            }
            new.dependencies.push(new_dep(id, target, t, stamp));
        }
        new
    };
    // The new line needs the ids in the file, the place it sorts into and its links'
    // targets resolved by the write index; its JSON, the lines of
    // those targets.
    let chosen = std::cell::OnceCell::new();
    let done = modify_windowed(
        &ws,
        |index| {
            let full_id = |q: &str| index.resolve(q).map(|k| index.entries[k].id.clone());
            let parent = match args.parent.as_deref() {
                Some(p) => Some(full_id(p)?),
                None => None,
            };
            let mut deps = Vec::new();
            for spec in args.deps.iter().filter(|s| !s.trim().is_empty()) {
                let (t, target) = parse_dep_spec(spec.trim());
                deps.push((t.to_string(), full_id(target)?));
            }
            let all_ids: HashSet<&str> = index.entries.iter().map(|e| e.id.as_str()).collect();
            let id = make_id(&all_ids, &parent).ok()?;
            let plan = insert_plan(index, &id);
            let _ = chosen.set((id, parent, deps));
            plan
        },
        |tx, peek| {
            let (id, parent, deps) = chosen.get().ok_or_else(|| anyhow!("no id chosen"))?;
            tx.insert(&make_issue(id, parent, deps))?;
            let view = (ctx.global.json && !quick && !args.silent)
                .then(|| render_windowed(tx, peek, id))
                .transpose()?;
            Ok((id.clone(), view))
        },
    )?;
    if let Some((id, view)) = done {
        if quick || args.silent {
            println!("{id}");
        } else if let Some(v) = view {
            print_json(&v)?;
        } else if !ctx.global.quiet {
            println!("Created {id}: {title}");
        }
        return Ok(0);
    }
    let (id, file) = modify_file(&ws, |tx| {
        let issues: Vec<&Skimmed> = tx.file.issues().collect();
        let parent = args
            .parent
            .as_deref()
            .map(|p| resolve(&issues, p).map(str::to_string))
            .transpose()?;
        let mut deps = Vec::new();
        for spec in args.deps.iter().filter(|s| !s.trim().is_empty()) {
            let (t, target) = parse_dep_spec(spec.trim());
            let target = resolve(&issues, target).with_context(|| format!("--deps {spec}"))?;
            deps.push((t.to_string(), target.to_string()));
        }
        let all_ids: HashSet<&str> = issues.iter().map(|i| i.id()).collect();
        let id = make_id(&all_ids, &parent)?;
        tx.insert(&make_issue(&id, &parent, &deps))?;
        Ok(id)
    })?;

    if quick || args.silent {
        drop_later(file);
        println!("{id}");
        return Ok(0);
    }
    if ctx.global.json {
        let mut out = render_all(&file, std::slice::from_ref(&id));
        drop_later(file);
        return print_json(&out.pop().unwrap_or(Value::Null)).map(|_| 0);
    }
    drop_later(file);
    if !ctx.global.quiet {
        println!("Created {id}: {title}");
    }
    Ok(0)
}

/// Where a new issue line with `id` goes (see [`BeadsFile::insert`]): before the first
/// issue line whose id sorts after it, else after the last issue line.
fn insert_plan(index: &WriteIndex, id: &str) -> Option<Plan> {
    let last = index.entries.len().checked_sub(1)?;
    let before = index
        .entries
        .iter()
        .position(|e| e.id.as_bytes() > id.as_bytes());
    Some(Plan {
        anchor: before.unwrap_or(last),
        edits: Vec::new(),
        to_end: before.is_none(),
    })
}

/// Resolves every query against the current file, refusing unknown ids up front.
fn resolve_all(file: &BeadsFile<Skimmed>, queries: &[String]) -> Result<Vec<String>> {
    let issues: Vec<&Skimmed> = file.issues().collect();
    queries
        .iter()
        .map(|q| resolve(&issues, q).map(str::to_string))
        .collect()
}

pub fn update_cmd(ctx: &Ctx, args: &UpdateArgs) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let priority = args.priority.as_deref().map(priority_arg).transpose()?;
    let defer = parse_optional_time(ctx, "defer", args.defer.as_deref())?;
    let due = parse_optional_time(ctx, "due", args.due.as_deref())?;
    if let Some(t) = &args.title {
        check_title(t)?;
    }
    // One issue, no re-parenting (that needs the graph): a window
    // of the file is enough, and for JSON the lines its edges join it to.
    if let [query] = args.ids.as_slice() {
        if args.parent.is_none() {
            let done = windowed_one(&ws, query, ctx.global.json, |tx, id, _| {
                update_one(tx, id, args, stamp, priority, defer.as_ref(), due.as_ref())
            })?;
            if let Some((id, _, json)) = done {
                return report_windowed(ctx, &[id], json, "Updated");
            }
        }
    }
    let (ids, file) = modify_file(&ws, |tx| {
        let ids = resolve_all(&tx.file, &args.ids)?;
        for id in &ids {
            update_one(tx, id, args, stamp, priority, defer.as_ref(), due.as_ref())?;
        }
        Ok(ids)
    })?;
    report(ctx, file, &ids, "Updated")
}

/// A windowed write (see [`modify_windowed`]) of the one issue `query` names.
fn single_plan(index: &WriteIndex, query: &str) -> Option<Plan> {
    let anchor = index.resolve(query)?;
    Some(Plan {
        anchor,
        edits: vec![index.entries[anchor].id.clone()],
        to_end: false,
    })
}

/// The full id of the issue `query` names (see [`WriteIndex::resolve`]).
fn resolved_id(index: &WriteIndex, query: &str) -> Result<String> {
    index
        .resolve(query)
        .map(|i| index.entries[i].id.clone())
        .ok_or_else(|| anyhow!("no issue matches {query:?}"))
}

/// `Some(None)` clears (the flag was given empty), `Some(Some(t))` sets.
fn parse_optional_time(
    ctx: &Ctx,
    flag: &str,
    v: Option<&str>,
) -> Result<Option<Option<Timestamp>>> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(Some(None)),
        Some(s) => Ok(Some(Some(time_arg(ctx, flag, s)?))),
    }
}

fn update_one(
    tx: &mut Tx,
    id: &str,
    args: &UpdateArgs,
    stamp: Stamp<'_>,
    priority: Option<i64>,
    defer: Option<&Option<Timestamp>>,
    due: Option<&Option<Timestamp>>,
) -> Result<()> {
    let issue = tx
        .file
        .get_full(id)
        .ok_or_else(|| anyhow!("no issue {id}"))?;
    let claim = if args.claim {
        ops::check_claim(&issue, stamp.actor)?
    } else {
        false
    };
    let new_parent = match &args.parent {
        None => None,
        Some(p) if p.trim().is_empty() => Some(None),
        Some(p) => {
            let issues: Vec<&Skimmed> = tx.file.issues().collect();
            let target = resolve(&issues, p)?.to_string();
            let graph = Graph::new(issues);
            let me = graph.lookup(id).expect("issue exists");
            let t = graph.lookup(&target).expect("resolved ids exist");
            if t == me || graph.descendants(me).contains(&t) {
                bail!("{target} is {id} or one of its descendants; it cannot become its parent");
            }
            Some(Some(target))
        }
    };
    tx.edit(id, |ed| {
        let before = ed.bytes().to_vec();
        if claim {
            ops::claim(ed, &issue, stamp)?;
        }
        if let Some(s) = &args.status {
            ops::set_status(ed, &issue, s, stamp)?;
        }
        if let Some(t) = &args.title {
            ed.set("title", t.as_str())?;
        }
        if let Some(t) = &args.issue_type {
            ed.set("issue_type", t.as_str())?;
        }
        if let Some(p) = priority {
            ed.set("priority", p)?;
        }
        if let Some(a) = &args.assignee {
            ed.set_or_remove("assignee", a.as_str())?;
        }
        for (key, v) in [
            ("description", &args.description),
            ("design", &args.design),
            ("acceptance_criteria", &args.acceptance),
            ("notes", &args.notes),
            ("external_ref", &args.external_ref),
        ] {
            if let Some(v) = v {
                ops::set_text(ed, key, v)?;
            }
        }
        if let Some(extra) = &args.append_notes {
            let current = ed
                .get("notes")?
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let base = Issue {
                notes: current,
                ..Issue::default()
            };
            ops::append_notes(ed, &base, extra)?;
        }
        for l in &args.add_label {
            ed.add_label(l.trim())?;
        }
        for l in &args.remove_label {
            ed.remove_label(l.trim())?;
        }
        if let Some(d) = defer {
            ops::set_time(ed, "defer_until", d.as_ref())?;
        }
        if let Some(d) = due {
            ops::set_time(ed, "due_at", d.as_ref())?;
        }
        if let Some(e) = args.estimate {
            ops::set_int(ed, "estimated_minutes", Some(e))?;
        }
        if let Some(p) = &new_parent {
            for dep in issue
                .dependencies
                .iter()
                .filter(|d| d.kind() == DepKind::ParentChild)
            {
                ed.remove_dependency(&dep.depends_on_id)?;
            }
            if let Some(p) = p {
                ed.remove_dependency(p)?;
                ed.add_dependency(&new_dep(id, p, "parent-child", stamp))?;
            }
        }
        if ed.bytes() != before.as_slice() {
            ops::touch(ed, stamp)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// `show --json` of the issue `id` as a windowed write leaves it: its edited line with
/// the lines of its targets and of the issues with edges to it, which are all a detail
/// view reads (the counts and the dependents of `id` come from those edges).
fn render_windowed(tx: &Tx, peek: &Peek, id: &str) -> Result<Value> {
    let issue = tx.file.get(id).ok_or_else(|| anyhow!("no issue {id}"))?;
    let mut ids = vec![id];
    ids.extend((0..issue.dep_count()).map(|d| issue.dep(d).target));
    let near = peek
        .lines_with(&ids, &[id], Some((id, edited_line(tx, id)?)))
        .ok_or_else(|| anyhow!("the neighbourhood needs the whole file"))?;
    detail_of(&near, id)
}

/// The line of `id` in a window after its edit.
fn edited_line<'t>(tx: &'t Tx, id: &str) -> Result<&'t [u8]> {
    let n = tx
        .file
        .line_of(id)
        .ok_or_else(|| anyhow!("no issue {id}"))?;
    Ok(tx.file.lines()[n - 1].bytes())
}

/// [`detail_json`] of `id` over a graph of `near` (see [`render_windowed`]).
fn detail_of(near: &BeadsFile, id: &str) -> Result<Value> {
    let graph = Graph::new(near.issues());
    let counts = graph.counts();
    let i = graph.lookup(id).ok_or_else(|| anyhow!("no issue {id}"))?;
    Ok(detail_json(near, &graph, &counts, i))
}

/// `file` with the line of `id` replaced by `line`.
fn with_line(file: &BeadsFile, id: &str, line: &[u8]) -> BeadsFile {
    let mut bytes = Vec::new();
    for l in file.lines() {
        let own = l.issue().is_some_and(|i| i.id == id);
        bytes.extend_from_slice(if own { line } else { l.bytes() });
        bytes.push(b'\n');
    }
    BeadsFile::parse(&bytes).0
}

/// After a windowed write: the detail JSON when rendered, else a line for people.
fn report_windowed(ctx: &Ctx, ids: &[String], json: Option<Value>, verb: &str) -> Result<i32> {
    match json {
        Some(v) => print_json(&[v]).map(|_| 0),
        None => report_plain(ctx, ids, verb),
    }
}

/// After a write, without `--json`: a line per issue for people.
fn report_plain(ctx: &Ctx, ids: &[String], verb: &str) -> Result<i32> {
    if !ctx.global.quiet {
        for id in ids {
            println!("{verb} {id}");
        }
    }
    Ok(0)
}

/// After a write: JSON of the issues for tools, a line for people.
fn report(ctx: &Ctx, file: BeadsFile<Skimmed>, ids: &[String], verb: &str) -> Result<i32> {
    if ctx.global.json {
        print_json(&render_all(&file, ids))?;
        drop_later(file);
        return Ok(0);
    }
    drop_later(file);
    if !ctx.global.quiet {
        for id in ids {
            println!("{verb} {id}");
        }
    }
    Ok(0)
}

/// bd's guards on `close` without `--force`: a pinned issue, an issue with live
/// blockers, an epic with open children are refused (issues closed together do not hold
/// each other back). `graph` must hold `ids`, their dependency targets and every issue
/// with an edge to them or to a `waits-for` target of theirs.
fn close_guards<N: Node>(graph: &Graph<'_, N>, ids: &[String]) -> Result<()> {
    let not_closing = |x: &&str| !ids.iter().any(|c| c == x);
    for id in ids {
        let i = graph.lookup(id).ok_or_else(|| anyhow!("no issue {id}"))?;
        let issue = graph.issue(i);
        if issue.status_kind() == StatusKind::Pinned || issue.pinned() {
            bail!("{id} is pinned; use --force to close it");
        }
        let blockers: Vec<&str> = graph
            .direct_blocker_ixs(i)
            .into_iter()
            .map(|(b, _)| graph.issue(b).id())
            .filter(not_closing)
            .collect();
        if !blockers.is_empty() {
            bail!(
                "{id} still has open blockers: {}; close them first or use --force",
                blockers.join(", ")
            );
        }
        if issue.issue_type() == "epic" {
            let open: Vec<&str> = graph
                .children(i)
                .filter(|&c| graph.status_kind(c) != StatusKind::Closed && graph.is_live(c))
                .map(|c| graph.issue(c).id())
                .filter(not_closing)
                .collect();
            if !open.is_empty() {
                bail!(
                    "epic {id} has open children: {}; close them first or use --force",
                    open.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// `close` of the one issue `query` names through a window of the file
/// (see [`modify_windowed`]), the guards checked on the lines of its targets and of the
/// issues with edges to it or to its gates. `Ok(None)`: the whole-file path must answer
/// (no index, a partial id, a guard refused — that path reports it — or lines it cannot
/// trust to be exact).
pub fn close_windowed(
    ws: &Workspace,
    query: &str,
    force: bool,
    reason: Option<&str>,
    stamp: Stamp<'_>,
    json: bool,
) -> Result<Option<(Vec<String>, Option<Value>)>> {
    modify_windowed(
        ws,
        |index| single_plan(index, query),
        |tx, peek| {
            let id = resolved_id(peek.index, query)?;
            let issue = tx
                .file
                .get_full(&id)
                .ok_or_else(|| anyhow!("no issue {id}"))?;
            // The issue, its targets, and the lines with edges to it or its gates: what
            // the guards and a detail view read.
            let near = if force && !json {
                None
            } else {
                let mut ids = vec![id.as_str()];
                ids.extend(issue.dependencies.iter().map(|d| d.depends_on_id.as_str()));
                let mut mentioned = vec![id.as_str()];
                mentioned.extend(
                    issue
                        .dependencies
                        .iter()
                        .filter(|d| d.kind() == DepKind::WaitsFor)
                        .map(|d| d.depends_on_id.as_str()),
                );
                let near = peek
                    .lines(&ids, &mentioned)
                    .ok_or_else(|| anyhow!("the neighbourhood needs the whole file"))?;
                Some(near)
            };
            if let (false, Some(near)) = (force, &near) {
                close_guards(&Graph::new(near.issues()), std::slice::from_ref(&id))?;
            }
            tx.edit(&id, |ed| ops::close(ed, &issue, reason, stamp))?;
            let json = match (json, &near) {
                (true, Some(near)) => Some(detail_of(
                    &with_line(near, &id, edited_line(tx, &id)?),
                    &id,
                )?),
                _ => None,
            };
            Ok((vec![id], json))
        },
    )
}

pub fn close_cmd(ctx: &Ctx, args: &CloseArgs) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    if let [query] = args.ids.as_slice() {
        let reason = args.reason.as_deref();
        if let Some((ids, json)) =
            close_windowed(&ws, query, args.force, reason, stamp, ctx.global.json)?
        {
            return report_windowed(ctx, &ids, json, "Closed");
        }
    }
    let (ids, file) = modify_file(&ws, |tx| {
        let ids = resolve_all(&tx.file, &args.ids)?;
        if !args.force {
            close_guards(&Graph::new(tx.file.issues()), &ids)?;
        }
        for id in &ids {
            let issue = tx.file.get_full(id).expect("resolved ids exist");
            tx.edit(id, |ed| {
                ops::close(ed, &issue, args.reason.as_deref(), stamp)
            })?;
        }
        Ok(ids)
    })?;
    report(ctx, file, &ids, "Closed")
}

/// A windowed write (see [`modify_windowed`]) of the one issue `query` names by its
/// full id: `edit` runs on the window with the id; with `json`, the issue's detail view
/// as the write leaves it comes back too. `Ok(None)`: take the whole-file path.
fn windowed_one<R>(
    ws: &Workspace,
    query: &str,
    json: bool,
    edit: impl Fn(&mut Tx, &str, &Peek) -> Result<R>,
) -> Result<Option<(String, R, Option<Value>)>> {
    modify_windowed(
        ws,
        |index| single_plan(index, query),
        |tx, peek| {
            let id = resolved_id(peek.index, query)?;
            let r = edit(tx, &id, peek)?;
            let view = json.then(|| render_windowed(tx, peek, &id)).transpose()?;
            Ok((id, r, view))
        },
    )
}

pub fn reopen_cmd(ctx: &Ctx, args: &ReopenArgs) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let reason = args.reason.as_deref().filter(|r| !r.trim().is_empty());
    // Reopens `id`; a reason becomes a comment with the id given.
    let reopen = |tx: &mut Tx, id: &str, comment_id: Option<CommentId>| -> Result<()> {
        let issue = tx
            .file
            .get_full(id)
            .ok_or_else(|| anyhow!("no issue {id}"))?;
        if !issue.is_closed() {
            bail!("{id} is not closed (status {})", issue.status());
        }
        tx.edit(id, |ed| {
            ops::reopen(ed, stamp)?;
            if let (Some(r), Some(cid)) = (reason, &comment_id) {
                ed.add_comment(&NewComment {
                    id: cid.clone(),
                    issue_id: id.to_string(),
                    author: actor.clone(),
                    text: format!("Reopened: {r}"),
                    created_at: now.clone(),
                })?;
            }
            Ok(())
        })?;
        Ok(())
    };
    // One issue: the window, the comment numbered as the index says.
    if let [query] = args.ids.as_slice() {
        let done = windowed_one(&ws, query, ctx.global.json, |tx, id, peek| {
            let comment_id = reason
                .map(|_| {
                    peek.index
                        .comment_ids
                        .map(|c| c.nth(0, ctx.now))
                        .ok_or_else(|| anyhow!("no comment numbering"))
                })
                .transpose()?;
            reopen(tx, id, comment_id)
        })?;
        if let Some((id, (), json)) = done {
            return report_windowed(ctx, &[id], json, "Reopened");
        }
    }
    let (ids, file) = modify_file(&ws, |tx| {
        let ids = resolve_all(&tx.file, &args.ids)?;
        let comment_ids = CommentIds::of(&tx.file);
        for (n, id) in ids.iter().enumerate() {
            reopen(tx, id, reason.map(|_| comment_ids.nth(n as i64, ctx.now)))?;
        }
        Ok(ids)
    })?;
    report(ctx, file, &ids, "Reopened")
}

pub fn comment_add(ctx: &Ctx, query: &str, text: &str) -> Result<i32> {
    if text.trim().is_empty() {
        bail!("comment text is empty");
    }
    let (ws, actor, now) = writer(ctx)?;
    let add = |tx: &mut Tx, id: &str, ids: CommentIds| -> Result<NewComment> {
        let comment = NewComment {
            id: ids.nth(0, ctx.now),
            issue_id: id.to_string(),
            author: actor.clone(),
            text: text.to_string(),
            created_at: now.clone(),
        };
        tx.edit(id, |ed| {
            ed.add_comment(&comment)?;
            ops::touch(ed, Stamp::new(&now, &actor))
        })?;
        Ok(comment)
    };
    // The index knows how the next comment is numbered.
    let windowed = modify_windowed(
        &ws,
        |index| {
            index.comment_ids?;
            single_plan(index, query)
        },
        |tx, peek| {
            let id = resolved_id(peek.index, query)?;
            let ids = peek
                .index
                .comment_ids
                .ok_or_else(|| anyhow!("no comment numbering"))?;
            add(tx, &id, ids)
        },
    )?;
    let comment = match windowed {
        Some(c) => c,
        None => modify(&ws, |tx| {
            let id = resolve_all(&tx.file, &[query.to_string()])?.remove(0);
            let ids = CommentIds::of(&tx.file);
            add(tx, &id, ids)
        })?,
    };
    if ctx.global.json {
        return print_json(&json!({
            "id": comment.id.to_string(),
            "issue_id": comment.issue_id,
            "author": comment.author,
            "text": comment.text,
            "created_at": comment.created_at.raw,
        }))
        .map(|_| 0);
    }
    if !ctx.global.quiet {
        println!("Added comment to {}", comment.issue_id);
    }
    Ok(0)
}

pub fn note_add(ctx: &Ctx, query: &str, text: &str) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let done = windowed_one(&ws, query, ctx.global.json, |tx, id, _| {
        let issue = tx
            .file
            .get_full(id)
            .ok_or_else(|| anyhow!("no issue {id}"))?;
        tx.edit(id, |ed| {
            ops::append_notes(ed, &issue, text)?;
            ops::touch(ed, stamp)
        })?;
        Ok(())
    })?;
    if let Some((id, (), json)) = done {
        return report_windowed(ctx, &[id], json, "Appended a note to");
    }
    let (ids, file) = modify_file(&ws, |tx| {
        let ids = resolve_all(&tx.file, &[query.to_string()])?;
        let issue = tx.file.get_full(&ids[0]).expect("resolved ids exist");
        tx.edit(&ids[0], |ed| {
            ops::append_notes(ed, &issue, text)?;
            ops::touch(ed, stamp)
        })?;
        Ok(ids)
    })?;
    report(ctx, file, &ids, "Appended a note to")
}

pub fn dep_add(ctx: &Ctx, issue_q: &str, target_q: &str, dep_type: &str) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let dep_type = canonical_dep_type(dep_type.trim()).to_string();
    // Both ids resolved by the index: a window around the issue, and for a blocking type the
    // lines the target reaches along blocking edges (where a cycle through the new edge
    // would run).
    let blocking = matches!(
        DepKind::of(&dep_type),
        DepKind::Blocks | DepKind::ConditionalBlocks
    );
    let windowed = windowed_edge(&ws, issue_q, target_q, |tx, peek, id, target| {
        let follow = |d: &Dependency| {
            blocking && matches!(d.kind(), DepKind::Blocks | DepKind::ConditionalBlocks)
        };
        let near = peek
            .reach(&[id, target], follow, DEP_REACH_MAX)
            .ok_or_else(|| anyhow!("the edges need the whole file"))?;
        let issue = near.get(id).ok_or_else(|| anyhow!("no issue {id}"))?;
        let added = check_new_dep(&Graph::new(near.issues()), issue, target, &dep_type)?;
        if added {
            write_dep(tx, id, target, &dep_type, stamp)?;
        }
        Ok((id.to_string(), target.to_string(), added))
    })?;
    let (id, target, added) = match windowed {
        Some(done) => done,
        None => modify(&ws, |tx| {
            let ids = resolve_all(&tx.file, &[issue_q.to_string(), target_q.to_string()])?;
            let (id, target) = (ids[0].clone(), ids[1].clone());
            let issue = tx.file.get_full(&id).expect("resolved ids exist");
            let added = check_new_dep(&Graph::new(tx.file.issues()), &issue, &target, &dep_type)?;
            if added {
                write_dep(tx, &id, &target, &dep_type, stamp)?;
            }
            Ok((id, target, added))
        })?,
    };
    if ctx.global.json {
        return print_json(&json!({
            "status": if added { "added" } else { "exists" },
            "issue_id": id, "depends_on_id": target, "type": dep_type,
        }))
        .map(|_| 0);
    }
    if !ctx.global.quiet {
        if added {
            println!("Added dependency: {id} depends on {target} ({dep_type})");
        } else {
            println!("{id} already depends on {target} ({dep_type})");
        }
    }
    Ok(0)
}

/// A windowed write (see [`modify_windowed`]) of the edge from the issue `issue_q` names
/// to the one `target_q` names, both resolved by the index: `change` gets the window and both ids.
fn windowed_edge<R>(
    ws: &Workspace,
    issue_q: &str,
    target_q: &str,
    change: impl Fn(&mut Tx, &Peek, &str, &str) -> Result<R>,
) -> Result<Option<R>> {
    modify_windowed(
        ws,
        |index| {
            index.resolve(target_q)?;
            single_plan(index, issue_q)
        },
        |tx, peek| {
            let id = resolved_id(peek.index, issue_q)?;
            let target = resolved_id(peek.index, target_q)?;
            change(tx, peek, &id, &target)
        },
    )
}

/// How many lines a windowed `dep add` reads one by one, at most, to check for a cycle
/// (~10 µs each; past a few thousand the whole file is cheaper).
const DEP_REACH_MAX: usize = 4096;

/// bd's checks for `dep add` of an edge from `issue` on `graph` (which must hold the
/// issue and every issue the target reaches along blocking edges): one edge per pair, no
/// self-edge, no blocking cycle. `Ok(false)`: the edge exists already, with this type.
fn check_new_dep<N: Node>(
    graph: &Graph<'_, N>,
    issue: &Issue,
    target: &str,
    dep_type: &str,
) -> Result<bool> {
    let id = issue.id.as_str();
    if let Some(existing) = issue
        .dependencies
        .iter()
        .find(|d| d.depends_on_id == target)
    {
        let existing_type = canonical_dep_type(&existing.dep_type);
        if existing_type == dep_type {
            return Ok(false);
        }
        bail!(
            "{id} already depends on {target} ({existing_type}); one edge per pair: \
             `spool dep remove {id} {target}` first to change its type"
        );
    }
    graph
        .would_create_cycle(id, target, dep_type)
        .map_err(|r| match r {
            EdgeRefusal::SelfEdge => anyhow!("{id} cannot depend on itself"),
            other => anyhow!("refusing {id} → {target}: {other}"),
        })?;
    Ok(true)
}

/// Adds the edge `id` → `target` to the issue's line.
fn write_dep(tx: &mut Tx, id: &str, target: &str, dep_type: &str, stamp: Stamp<'_>) -> Result<()> {
    tx.edit(id, |ed| {
        ed.add_dependency(&new_dep(id, target, dep_type, stamp))?;
        ops::touch(ed, stamp)
    })?;
    Ok(())
}

pub fn dep_remove(ctx: &Ctx, issue_q: &str, target_q: &str) -> Result<i32> {
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let remove = |tx: &mut Tx, id: &str, target: &str| -> Result<()> {
        let mut removed = 0;
        tx.edit(id, |ed| {
            removed = ed.remove_dependency(target)?;
            if removed > 0 {
                ops::touch(ed, stamp)?;
            }
            Ok(())
        })?;
        if removed == 0 {
            bail!("{id} does not depend on {target}");
        }
        Ok(())
    };
    let windowed = windowed_edge(&ws, issue_q, target_q, |tx, _, id, target| {
        remove(tx, id, target)?;
        Ok((id.to_string(), target.to_string()))
    })?;
    let (id, target) = match windowed {
        Some(done) => done,
        None => modify(&ws, |tx| {
            let ids = resolve_all(&tx.file, &[issue_q.to_string(), target_q.to_string()])?;
            remove(tx, &ids[0], &ids[1])?;
            Ok((ids[0].clone(), ids[1].clone()))
        })?,
    };
    if ctx.global.json {
        return print_json(&json!({"status": "removed", "issue_id": id, "depends_on_id": target}))
            .map(|_| 0);
    }
    if !ctx.global.quiet {
        println!("Removed dependency: {id} no longer depends on {target}");
    }
    Ok(0)
}

pub fn label_change(ctx: &Ctx, args: &[String], add: bool) -> Result<i32> {
    let (label, queries) = args
        .split_last()
        .ok_or_else(|| anyhow!("give issue ids and a label"))?;
    let label = label.trim();
    if label.is_empty() {
        bail!("the label is empty");
    }
    let (ws, actor, now) = writer(ctx)?;
    let stamp = Stamp::new(&now, &actor);
    let relabel = |tx: &mut Tx, id: &str| -> Result<()> {
        tx.edit(id, |ed| {
            let changed = if add {
                ed.add_label(label)?
            } else {
                ed.remove_label(label)?
            };
            if changed {
                ops::touch(ed, stamp)?;
            }
            Ok(())
        })
        .map(|_| ())
    };
    let windowed = match queries {
        [query] => windowed_one(&ws, query, false, |tx, id, _| relabel(tx, id))?
            .map(|(id, (), _)| vec![id]),
        _ => None,
    };
    let ids = match windowed {
        Some(ids) => ids,
        None => modify(&ws, |tx| {
            let ids = resolve_all(&tx.file, queries)?;
            for id in &ids {
                relabel(tx, id)?;
            }
            Ok(ids)
        })?,
    };
    if ctx.global.json {
        let out: Vec<Value> = ids
            .iter()
            .map(|id| json!({"status": if add { "added" } else { "removed" }, "issue_id": id, "label": label}))
            .collect();
        return print_json(&out).map(|_| 0);
    }
    if !ctx.global.quiet {
        for id in &ids {
            println!(
                "{} label {label:?} {} {id}",
                if add { "Added" } else { "Removed" },
                if add { "to" } else { "from" }
            );
        }
    }
    Ok(0)
}
