//! Read-only commands: ready, blocked, list, show, stats, and the list forms of dep,
//! label and comments.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use spool_core::beads::graph::{Direction, EdgeView, Graph, IssueCounts, Ix};
use spool_core::beads::node::{Node, Skimmed};
use spool_core::beads::ready::{self, ReadyQuery, ReadyTable, SortPolicy};
use spool_core::beads::stats::stats;
use spool_core::beads::{BeadsFile, Issue, StatusKind};

use super::args::{BlockedArgs, ListArgs, ReadyArgs};
use super::common::{
    id_width, issue_json, issue_line, only_issue, priority_arg, resolve, SkimSnapshot,
};
use super::output::{print_json, JsonArray, Style};
use super::Ctx;
use crate::backlog::drop_later;
use crate::cache::{self, ReadyCache};
use crate::workspace::Workspace;

fn ready_query(args: &ReadyArgs) -> Result<ReadyQuery> {
    Ok(ReadyQuery {
        sort: args.sort.parse::<SortPolicy>().map_err(|e| anyhow!(e))?,
        limit: args.limit,
        assignee: args.assignee.clone(),
        unassigned: args.unassigned,
        labels: args.label.clone(),
        labels_any: args.label_any.clone(),
        issue_type: match args.issue_type.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            _ => bail!("--type takes one type for ready"),
        },
        priority: args.priority.as_deref().map(priority_arg).transpose()?,
        parent: args.parent.clone(),
    })
}

pub fn ready_cmd(ctx: &Ctx, args: &ReadyArgs) -> Result<i32> {
    let query = ready_query(args)?;
    if args.explain {
        return ready_explain(ctx, query);
    }
    let ws = ctx.workspace()?;
    // The cache answers what needs no graph: every query but `--parent`.
    if query.parent.is_none() {
        if let Some(code) =
            cache::load(&ws).and_then(|(c, file)| ready_from_cache(ctx, &ws, &c, &file, &query))
        {
            return code;
        }
    }
    ready_from_file(ctx, &ws, query)
}

/// `ready --explain`: every issue with why it is or is not ready. Skimmed: an
/// explanation names issues by id, title and status, which a skim keeps.
fn ready_explain(ctx: &Ctx, mut query: ReadyQuery) -> Result<i32> {
    let snap = SkimSnapshot::load_titled(ctx)?;
    let issues = snap.issues();
    if let Some(p) = &query.parent {
        query.parent = Some(resolve(&issues, p)?.to_string());
    }
    let graph = Graph::new(issues);
    let ex = ready::explain(&graph, &query, ctx.now);
    if ctx.global.json {
        return print_json(&ex).map(|_| 0);
    }
    let st = Style { color: ctx.color };
    println!("{}", st.bold(&format!("Ready ({}):", ex.summary.ready)));
    for e in &ex.ready {
        println!(
            "  {}  P{}  {}",
            st.green(e.issue.id),
            e.issue.priority,
            e.issue.title
        );
        for b in &e.resolved_blockers {
            println!("      {} {} ({})", st.dim("resolved:"), b.id, b.status);
        }
    }
    println!(
        "{}",
        st.bold(&format!("Not ready ({}):", ex.summary.not_ready))
    );
    for e in &ex.not_ready {
        println!(
            "  {}  P{}  {}",
            st.yellow(e.issue.id),
            e.issue.priority,
            e.issue.title
        );
        for r in &e.reasons {
            println!("      {}", describe_reason(r));
        }
    }
    if !ex.cycles.is_empty() {
        println!(
            "{}",
            st.red(&format!("Blocking cycles ({}):", ex.cycles.len()))
        );
        for c in &ex.cycles {
            println!("  {}", c.join(" → "));
        }
    }
    Ok(0)
}

/// `ready` from the backlog file: skimmed for the graph (see [`SkimSnapshot`]), only
/// the lines printed parsed in full. Leaves a cache and a write index for the next
/// commands.
fn ready_from_file(ctx: &Ctx, ws: &Workspace, mut query: ReadyQuery) -> Result<i32> {
    let (snap, observed) = SkimSnapshot::load_observed(ws)?;
    let issues = snap.issues();
    if let Some(p) = &query.parent {
        query.parent = Some(resolve(&issues, p)?.to_string());
    }
    let graph = Graph::new(issues);
    let table = ReadyTable::new(&graph);
    let list = ready::ready_rows(&table, &query, ready::parent_scope(&graph, &query), ctx.now);
    // Freed before the lines are parsed and the cache and the write index are built, so
    // that they reuse the graph's memory instead of raising the command's peak.
    drop(graph);
    let files: Vec<BeadsFile> = list
        .issues
        .iter()
        .map(|&k| snap.full(table.rows[k].ix as usize))
        .collect::<Result<_>>()?;
    let shown = shown_rows(&table, &list.issues, &files)
        .ok_or_else(|| anyhow!("the backlog changed while it was read; run the command again"))?;
    let code = print_ready(ctx, &shown, list.total)?;
    drop(shown);
    let skim = &snap.skim;
    let spans = cache::issue_spans(skim.shapes(), skim.duplicates());
    if let Some(c) = ReadyCache::new(observed.as_ref(), &spans, &snap.diagnostics, table) {
        cache::save(ws, &c);
    }
    if let Some(index) = observed
        .as_ref()
        .and_then(|o| crate::write_index::WriteIndex::build_skim(o.key, skim, &snap.diagnostics))
    {
        crate::write_index::save(ws, &index);
    }
    drop_later(snap);
    Ok(code)
}

/// The rows `ks` of `table` with their issues, parsed from `files` (one file per row
/// holding its line). `None` when a file lacks its row's issue.
fn shown_rows<'f>(
    table: &'f ReadyTable,
    ks: &[usize],
    files: &'f [BeadsFile],
) -> Option<Vec<Shown<'f>>> {
    ks.iter()
        .zip(files)
        .map(|(&k, file)| {
            let row = &table.rows[k];
            Some(Shown {
                file,
                issue: file.get(&row.id)?,
                counts: row.counts.as_counts(),
            })
        })
        .collect()
}

/// One issue of the ready list and what renders it.
struct Shown<'a> {
    /// A file holding the issue's line (only that line).
    file: &'a BeadsFile,
    issue: &'a Issue,
    counts: IssueCounts<'a>,
}

/// Answers `ready` from a verified cache: the table decides, and only the lines of the
/// issues shown are read and parsed. `None` when a line is not what the cache says (the
/// file changed after the check): the caller then answers from the file.
fn ready_from_cache(
    ctx: &Ctx,
    ws: &Workspace,
    cache: &ReadyCache,
    backlog: &std::fs::File,
    query: &ReadyQuery,
) -> Option<Result<i32>> {
    let list = ready::ready_rows(&cache.table, query, None, ctx.now);
    let spans: Vec<_> = list
        .issues
        .iter()
        .map(|&k| cache.spans.get(k).copied())
        .collect::<Option<_>>()?;
    let path = ws.issues_path();
    let files: Vec<BeadsFile> = cache::read_lines(backlog, &spans)?
        .into_iter()
        .map(|bytes| BeadsFile::parse_owned(bytes, std::num::NonZeroUsize::MIN))
        .map(|(file, diagnostics)| {
            (file.lines().len() == 1 && diagnostics.is_empty()).then_some(file)
        })
        .collect::<Option<_>>()?;
    let shown = shown_rows(&cache.table, &list.issues, &files)?;
    for w in &cache.warnings {
        eprintln!("warning: {}:{}: {}", path.display(), w.line, w.message);
    }
    Some(print_ready(ctx, &shown, list.total))
}

fn print_ready(ctx: &Ctx, shown: &[Shown<'_>], total: usize) -> Result<i32> {
    let truncated = shown.len() < total;
    if ctx.global.json {
        let out: Vec<Value> = shown
            .iter()
            .map(|s| {
                let mut v = issue_json(s.file, s.issue, Some(&s.counts));
                // Where it can run: the capabilities its `needs:` labels ask for.
                let needs: Vec<&str> = s.issue.needs().collect();
                if let (false, Some(obj)) = (needs.is_empty(), v.as_object_mut()) {
                    obj.insert("needs".into(), json!(needs));
                }
                v
            })
            .collect();
        print_json(&out)?;
        if truncated {
            eprintln!(
                "Showing {} of {} ready issues (use --limit 0 for all)",
                shown.len(),
                total
            );
        }
        return Ok(0);
    }
    let st = Style { color: ctx.color };
    if total == 0 {
        println!("No ready work: nothing open is free of blockers.");
        return Ok(0);
    }
    println!(
        "{}",
        st.bold(&format!("Ready work ({total} with no blockers):"))
    );
    let w = id_width(shown.iter().map(|s| s.issue.id.as_str()));
    for s in shown {
        println!("  {}", issue_line(ctx, s.issue, w));
    }
    if truncated {
        println!(
            "{}",
            st.dim(&format!(
                "Showing {} of {} (use --limit 0 for all)",
                shown.len(),
                total
            ))
        );
    }
    Ok(0)
}

fn describe_reason(r: &ready::Reason<'_>) -> String {
    use ready::Reason::*;
    match r {
        Status { status } => format!("status is {status}"),
        Pinned => "pinned".into(),
        Ephemeral => "ephemeral (wisp)".into(),
        TypeExcluded { issue_type } => {
            format!("type {issue_type} is not work (use --type to include)")
        }
        Deferred { until } => format!("deferred until {until}"),
        ParentDeferred { parent, until } => format!("parent {} deferred until {until}", parent.id),
        BlockedBy { blocker, dep_type } => {
            format!(
                "{dep_type} {} ({}, P{}): {}",
                blocker.id, blocker.status, blocker.priority, blocker.title
            )
        }
        WaitsFor {
            gate,
            any_children,
            closed_children,
            total_children,
        } => format!(
            "waits for {} of {}'s children ({closed_children}/{total_children} closed)",
            if *any_children { "any" } else { "all" },
            gate.id
        ),
        AncestorBlocked { ancestor } => format!("ancestor {} is blocked", ancestor.id),
    }
}

pub fn blocked_cmd(ctx: &Ctx, args: &BlockedArgs) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let issues = snap.issues();
    let parent = args
        .parent
        .as_deref()
        .map(|p| resolve(&issues, p))
        .transpose()?;
    let graph = Graph::new(issues);
    let entries = ready::blocked(&graph, parent);
    if ctx.global.json {
        let mut out = JsonArray::stdout();
        for e in &entries {
            let file = snap.full(e.issue)?;
            let mut v = issue_json(&file, only_issue(&file)?, Some(&graph.counts_of(e.issue)));
            if let Value::Object(m) = &mut v {
                m.insert("blocked_by_count".into(), e.blocked_by.len().into());
                m.insert("blocked_by".into(), json!(e.blocked_by));
            }
            out.push(&v)?;
        }
        out.finish()?;
        return Ok(0);
    }
    let st = Style { color: ctx.color };
    if entries.is_empty() {
        println!("Nothing is blocked.");
        return Ok(0);
    }
    println!("{}", st.bold(&format!("Blocked ({}):", entries.len())));
    let w = id_width(entries.iter().map(|e| graph.issue(e.issue).id()));
    for e in &entries {
        println!("  {}", issue_line(ctx, &*snap.lean(e.issue)?, w));
        println!("      {} {}", st.red("blocked by"), e.blocked_by.join(", "));
    }
    Ok(0)
}

/// Statuses `list` hides unless `--all` or `--status` asks for them.
fn hidden_by_default<N: Node>(issue: &N) -> bool {
    matches!(
        issue.status_kind(),
        StatusKind::Closed | StatusKind::Pinned | StatusKind::Tombstone
    ) || issue.is_template()
}

/// What `list` may filter or sort by that a skim does not keep, read from the lines of
/// the candidates when asked for.
struct LineKeys {
    title: String,
    updated: Option<DateTime<FixedOffset>>,
    closed: Option<DateTime<FixedOffset>>,
}

pub fn list_cmd(ctx: &Ctx, args: &ListArgs) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let issues = snap.issues();
    let priority = args.priority.as_deref().map(priority_arg).transpose()?;
    let parent = args
        .parent
        .as_deref()
        .map(|p| resolve(&issues, p))
        .transpose()?;
    let graph = Graph::new(issues);
    let scope: Option<HashSet<usize>> = parent.map(|p| {
        let ix = graph.lookup(p).expect("resolved ids are in the graph");
        graph.descendants(ix).into_iter().collect()
    });
    let has_label = |issue: &Skimmed, l: &String| issue.labels().contains(l);
    let mut picked: Vec<usize> = graph
        .live_indexes()
        .filter(|&i| {
            let issue = graph.issue(i);
            if args.status.is_empty() {
                if !args.all && hidden_by_default(issue) {
                    return false;
                }
            } else if !args.status.iter().any(|s| s == issue.status()) {
                return false;
            }
            (args.issue_type.is_empty() || args.issue_type.iter().any(|t| t == issue.issue_type()))
                && args.label.iter().all(|l| has_label(issue, l))
                && (args.label_any.is_empty() || args.label_any.iter().any(|l| has_label(issue, l)))
                && args.assignee.as_ref().is_none_or(|a| issue.assignee() == a)
                && (!args.no_assignee || issue.assignee().is_empty())
                && priority.is_none_or(|p| issue.priority() == p)
                && scope.as_ref().is_none_or(|s| s.contains(&i))
        })
        .collect();
    let title = args.title.as_ref().map(|t| t.to_lowercase());
    let mut keys: HashMap<usize, LineKeys> = HashMap::new();
    if title.is_some() || matches!(args.sort.as_str(), "title" | "updated" | "closed") {
        for &i in &picked {
            let issue = snap.lean(i)?;
            let at = |t: &Option<spool_core::beads::Timestamp>| t.as_ref().map(|t| t.at);
            let k = LineKeys {
                title: issue.title.clone(),
                updated: at(&issue.updated_at),
                closed: at(&issue.closed_at),
            };
            keys.insert(i, k);
        }
        if let Some(t) = &title {
            picked.retain(|i| keys[i].title.to_lowercase().contains(t));
        }
    }
    sort_list(&graph, &keys, &mut picked, &args.sort)?;
    if args.reverse {
        picked.reverse();
    }
    let total = picked.len();
    if args.limit > 0 {
        picked.truncate(args.limit);
    }
    if ctx.global.json {
        let mut out = JsonArray::stdout();
        for &i in &picked {
            let file = snap.full(i)?;
            out.push(&issue_json(
                &file,
                only_issue(&file)?,
                Some(&graph.counts_of(i)),
            ))?;
        }
        out.finish()?;
    } else {
        let w = id_width(picked.iter().map(|&i| graph.issue(i).id()));
        for &i in &picked {
            println!("{}", issue_line(ctx, &*snap.lean(i)?, w));
        }
        if picked.is_empty() {
            println!("No issues match.");
        }
    }
    if picked.len() < total {
        eprintln!(
            "Showing {} of {} issues (use --limit 0 for all)",
            picked.len(),
            total
        );
    }
    Ok(0)
}

/// Sorts `list` output; `keys` holds the [`LineKeys`] of every index when sorting by
/// title, update or close time.
fn sort_list(
    graph: &Graph<'_, Skimmed>,
    keys: &HashMap<usize, LineKeys>,
    ix: &mut [usize],
    sort: &str,
) -> Result<()> {
    let issue = |i: usize| graph.issue(i);
    let id = |i: usize| graph.issue(i).id();
    let created = |i: usize| graph.created_nanos(i);
    match sort {
        "priority" => ix.sort_by(|&a, &b| {
            issue(a)
                .priority()
                .cmp(&issue(b).priority())
                .then_with(|| created(b).cmp(&created(a)))
                .then_with(|| id(a).cmp(id(b)))
        }),
        "created" => ix.sort_by(|&a, &b| (created(a), id(a)).cmp(&(created(b), id(b)))),
        "updated" => ix.sort_by(|&a, &b| (keys[&a].updated, id(a)).cmp(&(keys[&b].updated, id(b)))),
        "closed" => ix.sort_by(|&a, &b| (keys[&a].closed, id(a)).cmp(&(keys[&b].closed, id(b)))),
        "status" => ix.sort_by(|&a, &b| (issue(a).status(), id(a)).cmp(&(issue(b).status(), id(b)))),
        "id" => ix.sort_by(|&a, &b| id(a).cmp(id(b))),
        "title" => ix.sort_by(|&a, &b| keys[&a].title.cmp(&keys[&b].title)),
        "type" => ix.sort_by(|&a, &b| (issue(a).issue_type(), id(a)).cmp(&(issue(b).issue_type(), id(b)))),
        "assignee" => ix.sort_by(|&a, &b| (issue(a).assignee(), id(a)).cmp(&(issue(b).assignee(), id(b)))),
        other => bail!("unknown sort {other:?} (priority, created, updated, closed, status, id, title, type, assignee)"),
    }
    Ok(())
}

/// A linked issue as `show` lists it: the other issue's fields plus the edge type.
fn linked(
    file: &BeadsFile,
    graph: &Graph<'_>,
    other: Option<usize>,
    other_id: &str,
    dep_type: &str,
) -> Value {
    let mut v = match other {
        Some(o) => issue_json(file, graph.issue(o), None),
        None => json!({ "id": other_id, "missing": true }),
    };
    if let Value::Object(m) = &mut v {
        // Linked issues carry their summary, not their own edges and comments.
        for k in [
            "dependencies",
            "comments",
            "description",
            "design",
            "acceptance_criteria",
            "notes",
        ] {
            m.remove(k);
        }
        m.insert("dependency_type".into(), dep_type.into());
    }
    v
}

/// One issue as `show --json` gives it: the record with counts, its dependencies and
/// dependents as linked issues (`dependency_type` added), comments with string ids, and
/// epic progress. Commands that write print their issues this way too, so every issue
/// object a tool gets validates against the same schema.
pub fn detail_json(
    file: &BeadsFile,
    graph: &Graph<'_>,
    counts: &[IssueCounts<'_>],
    i: usize,
) -> Value {
    let issue = graph.issue(i);
    let mut v = issue_json(file, issue, Some(&counts[i]));
    let link = |e: &EdgeView<'_>| {
        linked(
            file,
            graph,
            e.other,
            e.other_id,
            spool_core::beads::canonical_dep_type(&e.dep.dep_type),
        )
    };
    // Edges to issues absent from the file are left out, as bd's join leaves them out
    // (`doctor` reports them); a linked issue is always a whole issue.
    let present = |e: &&EdgeView<'_>| e.other.is_some();
    let deps: Vec<Value> = graph
        .dependencies(i)
        .iter()
        .filter(present)
        .map(link)
        .collect();
    let dependents: Vec<Value> = graph
        .dependents(i)
        .iter()
        .filter(present)
        .map(link)
        .collect();
    if let Value::Object(m) = &mut v {
        m.insert("dependencies".into(), Value::Array(deps));
        m.insert("dependents".into(), Value::Array(dependents));
        m.insert("comments".into(), comments_json(issue));
        if issue.issue_type() == "epic" {
            let p = graph.progress(i);
            m.insert("epic_total_children".into(), p.total.into());
            m.insert("epic_closed_children".into(), p.closed.into());
            m.insert(
                "epic_closeable".into(),
                (p.total > 0 && p.closed == p.total).into(),
            );
        }
    }
    v
}

/// The issues `query` names with every issue an edge joins them to, parsed in full from
/// a skim of the backlog. Commands that show a few issues with their edges read this
/// instead of the whole file: a typed graph over it answers everything about the named
/// issues' own edges; counts and blocked state must come from `big`, the whole graph.
struct Neighbourhood<'s> {
    big: Graph<'s, Skimmed>,
    file: BeadsFile,
}

impl<'s> Neighbourhood<'s> {
    /// `roots` (ids as resolved) and, per root, the issues up to `hops` edges away from
    /// it in `dir` (1: the issues adjacent to it).
    fn of(snap: &'s SkimSnapshot, roots: &[&str], dir: Direction, hops: usize) -> Result<Self> {
        let big = Graph::new(snap.issues());
        let roots: Vec<Ix> = roots
            .iter()
            .map(|id| big.lookup(id).ok_or_else(|| anyhow!("no issue {id}")))
            .collect::<Result<_>>()?;
        let ks = big.within(&roots, dir, hops);
        let file = snap.subset(&ks)?;
        Ok(Neighbourhood { big, file })
    }

    /// The whole graph's counts for each issue of a graph over [`Neighbourhood::file`].
    fn counts(&self, small: &Graph<'_>) -> Vec<IssueCounts<'s>> {
        small
            .issues()
            .iter()
            .map(|i| {
                let b = self
                    .big
                    .lookup(&i.id)
                    .expect("the neighbourhood is from the graph");
                self.big.counts_of(b)
            })
            .collect()
    }
}

pub fn show_cmd(ctx: &Ctx, ids: &[String]) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let issues = snap.issues();
    let resolved: Vec<&str> = ids
        .iter()
        .map(|q| resolve(&issues, q))
        .collect::<Result<_>>()?;
    let near = Neighbourhood::of(&snap, &resolved, Direction::Both, 1)?;
    let graph = Graph::new(near.file.issues());
    let counts = near.counts(&graph);
    let mut out = Vec::new();
    for id in resolved {
        let i = graph.lookup(id).expect("resolved ids are in the graph");
        if ctx.global.json {
            out.push(detail_json(&near.file, &graph, &counts, i));
        } else {
            print_issue_detail(ctx, &graph, i);
        }
    }
    if ctx.global.json {
        print_json(&out)?;
    }
    Ok(0)
}

fn print_issue_detail(ctx: &Ctx, graph: &Graph<'_>, i: usize) {
    let st = Style { color: ctx.color };
    let issue = graph.issue(i);
    println!("{}  {}", st.bold(&issue.id), st.bold(&issue.title));
    println!(
        "  {}  {}  {}{}",
        st.status(issue.status()),
        st.priority(issue.priority),
        issue.issue_type(),
        if issue.assignee.is_empty() {
            String::new()
        } else {
            format!("  @{}", issue.assignee)
        }
    );
    if let Some(t) = &issue.created_at {
        println!(
            "  {} {}{}",
            st.dim("created"),
            t.raw,
            if issue.created_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", issue.created_by)
            }
        );
    }
    if let Some(t) = &issue.updated_at {
        println!("  {} {}", st.dim("updated"), t.raw);
    }
    if let Some(t) = &issue.closed_at {
        println!("  {} {}  {}", st.dim("closed"), t.raw, issue.close_reason);
    }
    if let Some(t) = &issue.defer_until {
        println!("  {} {}", st.dim("deferred until"), t.raw);
    }
    if !issue.labels.is_empty() {
        println!("  {} {}", st.dim("labels"), issue.labels.join(", "));
    }
    for (name, text) in [
        ("Description", &issue.description),
        ("Design", &issue.design),
        ("Acceptance criteria", &issue.acceptance_criteria),
        ("Notes", &issue.notes),
    ] {
        if !text.is_empty() {
            println!("\n{}\n{}", st.bold(name), indent(text));
        }
    }
    print_edges(&st, graph, "Depends on", &graph.dependencies(i));
    print_edges(&st, graph, "Needed by", &graph.dependents(i));
    if !issue.comments.is_empty() {
        println!("\n{}", st.bold("Comments"));
        for c in &issue.comments {
            println!(
                "  {} {}",
                st.cyan(&c.author),
                st.dim(c.created_at.as_ref().map(|t| t.raw.as_str()).unwrap_or(""))
            );
            println!("{}", indent(&c.text));
        }
    }
    println!();
}

/// A `show` section listing linked issues: edge type, id, status, title.
fn print_edges(st: &Style, graph: &Graph<'_>, heading: &str, edges: &[EdgeView<'_>]) {
    if edges.is_empty() {
        return;
    }
    println!("\n{}", st.bold(heading));
    for e in edges {
        let (title, status) = e
            .other
            .map(|o| (graph.issue(o).title.as_str(), graph.issue(o).status()))
            .unwrap_or(("(missing)", "?"));
        println!(
            "  {} {}  {}  {}",
            st.dim(&e.dep.dep_type),
            e.other_id,
            st.status(status),
            title
        );
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Comments as bd's JSON shows them: ids always strings.
pub fn comments_json(issue: &Issue) -> Value {
    Value::Array(
        issue
            .comments
            .iter()
            .map(|c| {
                json!({
                    "id": c.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
                    "issue_id": if c.issue_id.is_empty() { issue.id.as_str() } else { c.issue_id.as_str() },
                    "author": c.author,
                    "text": c.text,
                    "created_at": c.created_at.as_ref().map(|t| t.raw.as_str()),
                })
            })
            .collect(),
    )
}

pub fn comments_list(ctx: &Ctx, query: &str) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let issues = snap.issues();
    let id = resolve(&issues, query)?;
    let k = issues
        .iter()
        .position(|i| i.id() == id)
        .expect("resolved ids exist");
    let file = snap.full(k)?;
    let issue = only_issue(&file)?;
    if ctx.global.json {
        return print_json(&comments_json(issue)).map(|_| 0);
    }
    let st = Style { color: ctx.color };
    if issue.comments.is_empty() {
        println!("{id} has no comments.");
    }
    for c in &issue.comments {
        println!(
            "{} {}",
            st.cyan(&c.author),
            st.dim(c.created_at.as_ref().map(|t| t.raw.as_str()).unwrap_or(""))
        );
        println!("{}\n", indent(&c.text));
    }
    Ok(0)
}

pub fn stats_cmd(ctx: &Ctx) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let graph = Graph::new(snap.issues());
    let s = stats(&graph, ctx.now);
    let tombstones = graph
        .issues()
        .iter()
        .filter(|i| i.status_kind() == StatusKind::Tombstone)
        .count();
    if ctx.global.json {
        // bd's shape has the counts under `summary`; older consumers read them flat.
        let summary = serde_json::to_value(&s)?;
        let mut out = summary.clone();
        if let (Value::Object(m), Value::Object(mut sm)) = (&mut out, summary) {
            sm.insert("tombstone_issues".into(), tombstones.into());
            m.insert("tombstone_issues".into(), tombstones.into());
            m.insert("summary".into(), Value::Object(sm));
        }
        return print_json(&out).map(|_| 0);
    }
    let st = Style { color: ctx.color };
    println!("{}", st.bold("Backlog"));
    println!("  total        {}", s.total_issues);
    println!("  open         {}", s.open_issues);
    println!("  in progress  {}", s.in_progress_issues);
    println!("  closed       {}", s.closed_issues);
    println!("  deferred     {}", s.deferred_issues);
    println!("  pinned       {}", s.pinned_issues);
    println!("  {}        {}", st.green("ready"), s.ready_issues);
    println!("  {}      {}", st.red("blocked"), s.blocked_issues);
    println!("  epics ready to close  {}", s.epics_eligible_for_closure);
    println!("  average lead time     {:.1} h", s.average_lead_time_hours);
    Ok(0)
}

pub fn dep_list(ctx: &Ctx, query: &str, direction: &str) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let id = resolve(&snap.issues(), query)?;
    let dir: Direction = direction.parse().map_err(|e: String| anyhow!(e))?;
    let near = Neighbourhood::of(&snap, &[id], dir, 1)?;
    let graph = Graph::new(near.file.issues());
    let i = graph.lookup(id).expect("resolved ids are in the graph");
    let mut edges = Vec::new();
    if matches!(dir, Direction::Down | Direction::Both) {
        edges.extend(graph.dependencies(i).into_iter().map(|e| ("down", e)));
    }
    if matches!(dir, Direction::Up | Direction::Both) {
        edges.extend(graph.dependents(i).into_iter().map(|e| ("up", e)));
    }
    if ctx.global.json {
        let out: Vec<Value> = edges
            .iter()
            .map(|(d, e)| {
                linked(
                    &near.file,
                    &graph,
                    e.other,
                    e.other_id,
                    spool_core::beads::canonical_dep_type(&e.dep.dep_type),
                )
                .as_object()
                .cloned()
                .map(|mut m| {
                    m.insert("direction".into(), (*d).into());
                    Value::Object(m)
                })
                .unwrap_or(Value::Null)
            })
            .collect();
        return print_json(&out).map(|_| 0);
    }
    if edges.is_empty() {
        println!(
            "{id} has no {} dependencies.",
            if dir == Direction::Up { "incoming" } else { "" }.trim()
        );
    }
    let st = Style { color: ctx.color };
    for (d, e) in edges {
        let arrow = if d == "down" { "→" } else { "←" };
        let (title, status) = e
            .other
            .map(|o| (graph.issue(o).title.as_str(), graph.issue(o).status()))
            .unwrap_or(("(missing)", "?"));
        println!(
            "{id} {arrow} {} {}  {}  {}",
            st.dim(&e.dep.dep_type),
            e.other_id,
            st.status(status),
            title
        );
    }
    Ok(0)
}

pub fn dep_tree(ctx: &Ctx, query: &str, direction: &str, max_depth: usize) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let id = resolve(&snap.issues(), query)?;
    let dir: Direction = direction.parse().map_err(|e: String| anyhow!(e))?;
    // One level past the walk's depth, so that whether a node has further edges is
    // known for every node the walk shows.
    let near = Neighbourhood::of(&snap, &[id], dir, max_depth.saturating_add(1))?;
    let graph = Graph::new(near.file.issues());
    let i = graph.lookup(id).expect("resolved ids are in the graph");
    let mut nodes = graph.tree(i, dir, max_depth);
    // Blockers of the nodes may lie outside the neighbourhood: the whole graph knows.
    for n in &mut nodes {
        if n.title.is_some() {
            n.blocked = near
                .big
                .lookup(n.id)
                .is_some_and(|b| near.big.is_blocked(b));
        }
    }
    if ctx.global.json {
        return print_json(&nodes).map(|_| 0);
    }
    let st = Style { color: ctx.color };
    for n in &nodes {
        let pad = "  ".repeat(n.depth);
        let arrow = match (n.depth, n.direction) {
            (0, _) => "",
            (_, Direction::Up) => "← ",
            _ => "→ ",
        };
        let mut line = format!(
            "{pad}{arrow}{}  {}  {}",
            st.bold(n.id),
            st.status(n.status.unwrap_or("missing")),
            n.title.unwrap_or("")
        );
        if let Some(t) = n.dep_type {
            line.push_str(&st.dim(&format!("  ({t})")));
        }
        if n.blocked {
            line.push_str(&format!("  {}", st.red("[BLOCKED]")));
        }
        if n.truncated {
            line.push_str(&st.dim("  …"));
        }
        println!("{line}");
    }
    Ok(0)
}

pub fn dep_cycles(ctx: &Ctx) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let graph = Graph::new(snap.issues());
    let cycles = graph.cycles();
    if ctx.global.json {
        return print_json(&cycles).map(|_| 0);
    }
    if cycles.is_empty() {
        println!("No blocking cycles.");
    }
    for c in &cycles {
        let mut path = c.join(" → ");
        if let Some(first) = c.first() {
            path.push_str(" → ");
            path.push_str(first);
        }
        println!("cycle: {path}");
    }
    Ok(0)
}

pub fn label_list(ctx: &Ctx, query: &str) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let issues = snap.issues();
    let id = resolve(&issues, query)?;
    let issue = issues
        .iter()
        .find(|i| i.id() == id)
        .expect("resolved ids exist");
    if ctx.global.json {
        return print_json(issue.labels()).map(|_| 0);
    }
    for l in issue.labels() {
        println!("{l}");
    }
    Ok(0)
}

pub fn label_list_all(ctx: &Ctx) -> Result<i32> {
    let snap = SkimSnapshot::load(ctx)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for issue in snap
        .skim
        .issues()
        .filter(|i| i.status_kind() != StatusKind::Tombstone)
    {
        for l in issue.labels() {
            *counts.entry(l.as_str()).or_default() += 1;
        }
    }
    if ctx.global.json {
        let out: Vec<Value> = counts
            .iter()
            .map(|(l, n)| json!({"label": l, "count": n}))
            .collect();
        return print_json(&out).map(|_| 0);
    }
    for (l, n) in counts {
        println!("{l}\t{n}");
    }
    Ok(0)
}
