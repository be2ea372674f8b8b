//! Pieces every backlog command shares: loading a snapshot, resolving ids, rendering
//! issues as bd-shaped JSON.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde_json::{Map, Value};
use spool_core::beads::graph::{IssueCounts, Ix};
use spool_core::beads::ids::{resolve_id, IdError};
use spool_core::beads::node::{Node, Skimmed};
use spool_core::beads::skim::Skim;
use spool_core::beads::{BeadsFile, Diagnostic, Issue, Timestamp};

use super::Ctx;
use crate::cache::Observed;
use crate::workspace::Workspace;

/// A backlog skimmed for a read command that needs the whole graph but prints few
/// issues (see [`Skim`]): the graph reads compact records, and only the issues printed
/// are parsed in full.
pub struct SkimSnapshot {
    pub skim: Skim,
    pub diagnostics: Vec<Diagnostic>,
    path: PathBuf,
}

impl SkimSnapshot {
    pub fn load(ctx: &Ctx) -> Result<SkimSnapshot> {
        let path = ctx.workspace()?.issues_path();
        let source = crate::backlog::read_source(&path)?;
        SkimSnapshot::of(path, source, false)
    }

    /// [`SkimSnapshot::load`] keeping every issue's title, for output that names every
    /// issue it lists.
    pub fn load_titled(ctx: &Ctx) -> Result<SkimSnapshot> {
        let path = ctx.workspace()?.issues_path();
        let source = crate::backlog::read_source(&path)?;
        SkimSnapshot::of(path, source, true)
    }

    /// [`SkimSnapshot::load`], also returning how to recognise the bytes read (for
    /// caching what is derived from them).
    pub fn load_observed(ws: &Workspace) -> Result<(SkimSnapshot, Option<Observed>)> {
        let path = ws.issues_path();
        let (source, observed) = crate::cache::read_observed(&path)?;
        Ok((SkimSnapshot::of(path, source, false)?, observed))
    }

    fn of(
        path: PathBuf,
        source: std::sync::Arc<dyn spool_core::beads::Source>,
        titled: bool,
    ) -> Result<Self> {
        let (skim, diagnostics) = crate::backlog::skim_checked(&path, source, titled)?;
        Ok(SkimSnapshot {
            skim,
            diagnostics,
            path,
        })
    }

    /// The issues in effect (last occurrence of duplicated ids), tombstones included:
    /// what a graph over this snapshot is built from.
    pub fn issues(&self) -> Vec<&Skimmed> {
        self.skim.issues().collect()
    }

    /// Issue `k` of [`SkimSnapshot::issues`] parsed in full: a file of its one line.
    pub fn full(&self, k: Ix) -> Result<BeadsFile> {
        self.line(k, Skim::full_line)
    }

    /// Issue `k` without its free text, for a line of human output.
    pub fn lean(&self, k: Ix) -> Result<Box<Issue>> {
        self.line(k, Skim::lean_issue)
    }

    fn line<T>(&self, k: Ix, parse: impl Fn(&Skim, usize) -> Option<T>) -> Result<T> {
        self.skim
            .issue_line(k)
            .and_then(|j| parse(&self.skim, j))
            .ok_or_else(|| self.changed())
    }

    /// The issues `ks` (indexes into [`SkimSnapshot::issues`]) parsed in full, as one
    /// file of their lines in file order.
    pub fn subset(&self, ks: &[Ix]) -> Result<BeadsFile> {
        let js: Vec<usize> = ks
            .iter()
            .map(|&k| self.skim.issue_line(k))
            .collect::<Option<_>>()
            .ok_or_else(|| self.changed())?;
        self.skim.lines_file(&js).ok_or_else(|| self.changed())
    }

    fn changed(&self) -> anyhow::Error {
        anyhow!(
            "{} changed while it was read; run the command again",
            self.path.display()
        )
    }
}

/// The issue of a one-line file from [`SkimSnapshot::full`].
pub fn only_issue(file: &BeadsFile) -> Result<&Issue> {
    file.issues()
        .next()
        .ok_or_else(|| anyhow!("expected an issue line"))
}

/// Resolves a full id, a unique hash suffix or a unique substring to an issue id.
pub fn resolve<'a, N: Node + 'a>(issues: &[&'a N], query: &str) -> Result<&'a str> {
    resolve_id(issues.iter().copied(), query, false).map_err(id_error)
}

pub fn id_error(e: IdError) -> anyhow::Error {
    match e {
        IdError::NotFound { query } => anyhow!("no issue matches {query:?}"),
        IdError::Ambiguous { query, candidates } => {
            let shown: Vec<&str> = candidates.iter().take(10).map(String::as_str).collect();
            let more = candidates.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            anyhow!(
                "{query:?} is ambiguous: it matches {}{more}; give more of the id",
                shown.join(", ")
            )
        }
        other => anyhow!("{other:?}"),
    }
}

/// The issue as tools expect it from bd: its record (unknown keys kept) plus
/// `dependency_count`, `dependent_count`, `comment_count` and `parent`.
pub fn issue_json(file: &BeadsFile, issue: &Issue, counts: Option<&IssueCounts<'_>>) -> Value {
    let mut v = file
        .render(&issue.id)
        .unwrap_or_else(|| spool_core::beads::render_issue(issue));
    if let (Value::Object(m), Some(c)) = (&mut v, counts) {
        add_counts(m, c);
    }
    v
}

fn add_counts(m: &mut Map<String, Value>, c: &IssueCounts<'_>) {
    m.insert("dependency_count".into(), c.dependency_count.into());
    m.insert("dependent_count".into(), c.dependent_count.into());
    m.insert("comment_count".into(), c.comment_count.into());
    if let Some(p) = c.parent {
        m.insert("parent".into(), p.into());
    }
}

/// The time now, as bd writes it.
pub fn now_stamp(ctx: &Ctx) -> Timestamp {
    Timestamp::from_utc(ctx.now)
}

/// Parses a priority flag.
pub fn priority_arg(s: &str) -> Result<i64> {
    spool_core::beads::ops::parse_priority(s).map_err(|e| anyhow!(e))
}

/// Parses a time flag relative to now.
pub fn time_arg(ctx: &Ctx, flag: &str, s: &str) -> Result<Timestamp> {
    spool_core::beads::ops::parse_when(s, ctx.now)
        .map(Timestamp::from_utc)
        .map_err(|e| anyhow!("--{flag}: {e}"))
}

/// Width of the id column for a listing of these ids.
pub fn id_width<'a>(ids: impl IntoIterator<Item = &'a str>) -> usize {
    ids.into_iter()
        .map(|id| id.chars().count())
        .max()
        .unwrap_or(0)
}

/// One line per issue for people: `id  P1  type  status  title`, the id padded to
/// `id_width` so a listing lines up.
pub fn issue_line(ctx: &Ctx, issue: &Issue, id_width: usize) -> String {
    let st = super::output::Style { color: ctx.color };
    let pad = " ".repeat(id_width.saturating_sub(issue.id.chars().count()));
    let mut line = format!(
        "{}{pad}  {}  {:<8} {:<12} {}",
        st.bold(&issue.id),
        st.priority(issue.priority),
        issue.issue_type(),
        st.status(issue.status()),
        issue.title
    );
    if !issue.assignee.is_empty() {
        line.push_str(&st.dim(&format!("  @{}", issue.assignee)));
    }
    if !issue.labels.is_empty() {
        line.push_str(&st.dim(&format!("  [{}]", issue.labels.join(", "))));
    }
    line
}
