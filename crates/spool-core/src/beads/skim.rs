//! A backlog read for its dependency graph only: each line's place and kind, and for an
//! issue line only its [`Skimmed`] facts.
//!
//! A command over a large backlog that needs the whole graph (`ready`) but prints only a
//! few issues reads the file this way and parses just the lines it prints in full
//! ([`Skim::full_line`]). The parse checks every line exactly as [`BeadsFile::parse`]
//! does (the same deserializer runs; it only drops what it does not keep), so the
//! diagnostics are the same.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::file::{
    add_duplicate_warnings, index_ids, parse_issue_line, parse_lines, BeadsFile, Diagnostic,
    LineEnding, LineKind, LineShape, ParsedLine, RecordKind, Source,
};
use super::issue::{Detail, Issue, StatusKind};
use super::node::{Node, Skimmed};

/// What one line holds, reduced to what a skim keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum SkimKind {
    Blank,
    Issue(Skimmed),
    /// A non-issue record (memory, schema header, other `_type`).
    Record(RecordKind),
    /// Unreadable; the parse's diagnostic says why.
    Invalid,
}

/// One line: where it is in the source, how it ends, what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SkimLine {
    start: usize,
    end: usize,
    ending: LineEnding,
    kind: SkimKind,
}

impl SkimLine {
    /// The line's length without its terminator.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    pub fn kind(&self) -> &SkimKind {
        &self.kind
    }

    pub fn issue(&self) -> Option<&Skimmed> {
        match &self.kind {
            SkimKind::Issue(s) => Some(s),
            _ => None,
        }
    }
}

impl ParsedLine for SkimLine {
    fn new(
        _buf: &Arc<dyn Source>,
        span: std::ops::Range<usize>,
        ending: LineEnding,
        kind: LineKind,
    ) -> SkimLine {
        let kind = match kind {
            LineKind::Blank => SkimKind::Blank,
            LineKind::Issue(issue) => SkimKind::Issue(Skimmed::from(*issue)),
            LineKind::Record(r) => SkimKind::Record(r),
            LineKind::Invalid(_) => SkimKind::Invalid,
        };
        SkimLine {
            start: span.start,
            end: span.end,
            ending,
            kind,
        }
    }
}

/// A skimmed backlog file.
pub struct Skim {
    source: Arc<dyn Source>,
    lines: Vec<SkimLine>,
    /// ids on more than one line → every line index, in file order.
    duplicates: HashMap<String, Vec<usize>>,
    /// Indexes of the issue lines in effect (the last line of each id), in file order.
    in_effect: Vec<usize>,
}

impl Skim {
    /// Skims `source` on `threads` threads. Never fails: the diagnostics are those
    /// [`BeadsFile::parse`] reports for the same bytes.
    pub fn parse(source: Arc<dyn Source>, threads: NonZeroUsize) -> (Skim, Vec<Diagnostic>) {
        Skim::parse_at(source, threads, Detail::Skim)
    }

    /// [`Skim::parse`] keeping each issue's title ([`Node::title`] is empty in a plain
    /// skim): for output that names every issue it lists.
    pub fn parse_titled(source: Arc<dyn Source>, threads: NonZeroUsize) -> (Skim, Vec<Diagnostic>) {
        Skim::parse_at(source, threads, Detail::Titled)
    }

    fn parse_at(
        source: Arc<dyn Source>,
        threads: NonZeroUsize,
        detail: Detail,
    ) -> (Skim, Vec<Diagnostic>) {
        let (lines, mut diagnostics) = parse_lines::<SkimLine>(&source, threads, detail);
        let id_of = |j: usize| lines[j].issue().map_or("", |s| s.id());
        let (_, duplicates) = index_ids(lines.len(), id_of, |j| lines[j].issue().map(|s| s.id()));
        add_duplicate_warnings(&mut diagnostics, &duplicates);
        let superseded: HashSet<usize> = duplicates
            .values()
            .flat_map(|idxs| idxs[..idxs.len() - 1].iter().copied())
            .collect();
        let in_effect = (0..lines.len())
            .filter(|j| lines[*j].issue().is_some() && !superseded.contains(j))
            .collect();
        let skim = Skim {
            source,
            lines,
            duplicates,
            in_effect,
        };
        (skim, diagnostics)
    }

    /// All lines, in file order.
    pub fn lines(&self) -> &[SkimLine] {
        &self.lines
    }

    /// The issues in effect, in file order (as [`BeadsFile::issues`]): for a duplicated
    /// id only its last line; tombstones included.
    pub fn issues(&self) -> impl Iterator<Item = &Skimmed> + '_ {
        self.in_effect.iter().filter_map(|&j| self.lines[j].issue())
    }

    /// The line index of the `k`-th issue of [`Skim::issues`].
    pub fn issue_line(&self, k: usize) -> Option<usize> {
        self.in_effect.get(k).copied()
    }

    /// Ids on several lines, each with its 1-based line numbers in file order.
    pub fn duplicates(&self) -> impl Iterator<Item = (&str, Vec<usize>)> + '_ {
        self.duplicates
            .iter()
            .map(|(id, idxs)| (id.as_str(), idxs.iter().map(|i| i + 1).collect()))
    }

    /// Line `j`'s bytes, without terminator.
    pub fn line_bytes(&self, j: usize) -> &[u8] {
        let l = &self.lines[j];
        &self.source.bytes()[l.start..l.end]
    }

    /// Line `j` parsed in full, as a file of that one line; `None` when it is not the
    /// issue line the skim saw (it always is, unless the source changed underneath).
    pub fn full_line(&self, j: usize) -> Option<BeadsFile> {
        let id = self.lines.get(j)?.issue()?.id();
        let (file, diagnostics) = BeadsFile::parse_owned(self.line_copy(j)?, NonZeroUsize::MIN);
        (file.lines().len() == 1 && diagnostics.is_empty() && file.get(id).is_some())
            .then_some(file)
    }

    /// The issue of line `j` without its free text (see [`BeadsFile::parse_lean`]), for
    /// output that shows none; `None` as for [`Skim::full_line`].
    pub fn lean_issue(&self, j: usize) -> Option<Box<Issue>> {
        let id = self.lines.get(j)?.issue()?.id();
        parse_issue_line(&self.line_copy(j)?, Detail::Lean).filter(|i| i.id == id)
    }

    /// The issue lines `js` parsed in full, as one file of those lines in file order:
    /// for a command that shows a few issues with their edges over a small typed graph.
    /// `None` as for [`Skim::full_line`].
    pub fn lines_file(&self, js: &[usize]) -> Option<BeadsFile> {
        let mut js = js.to_vec();
        js.sort_unstable();
        js.dedup();
        let mut bytes = Vec::new();
        for &j in &js {
            bytes.extend_from_slice(&self.line_copy(j)?);
            bytes.push(b'\n');
        }
        let (file, diagnostics) = BeadsFile::parse_owned(bytes, NonZeroUsize::MIN);
        let same = file.lines().len() == js.len()
            && js.iter().zip(file.lines()).all(|(&j, l)| {
                l.issue().map(|i| i.id.as_str()) == self.lines[j].issue().map(|s| s.id())
            });
        (same && diagnostics.is_empty()).then_some(file)
    }

    /// Line `j`'s bytes read again (see [`Source::copy_range`]): the skim released them.
    pub fn line_copy(&self, j: usize) -> Option<Vec<u8>> {
        let l = &self.lines[j];
        self.source.copy_range(l.start..l.end).ok()
    }

    /// Every line's shape, in file order (as [`BeadsFile::shapes`]).
    pub fn shapes(&self) -> impl Iterator<Item = LineShape<'_>> + '_ {
        self.lines.iter().map(|l| LineShape {
            len: l.len(),
            ending: l.ending,
            id: l.issue().map(|s| s.id()),
            tombstone: l
                .issue()
                .is_some_and(|s| s.status_kind() == StatusKind::Tombstone),
        })
    }

    /// The bytes the file was read from.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim(text: &str) -> (Skim, Vec<Diagnostic>) {
        Skim::parse(Arc::new(text.as_bytes().to_vec()), NonZeroUsize::MIN)
    }

    #[test]
    fn skim_reports_what_a_full_parse_reports() {
        let text = "{\"id\":\"a-1\",\"title\":\"one\"}\n\
                    \n\
                    {\"_type\":\"memory\",\"key\":\"k\"}\n\
                    {\"id\":\"a-2\",\"title\":5}\n\
                    {\"id\":\"a-1\",\"title\":\"again\",\"updated_at\":\"soon\"}\r\n\
                    {\"id\":\"a-3\",\"title\":\"t\",\"priority\":1}\n\
                    {\"id\":\"a-3\",\"title\":\"t2\"}\n\
                    not json";
        let (s, diags) = skim(text);
        let (file, full_diags) = BeadsFile::parse(text.as_bytes());
        assert_eq!(diags, full_diags);
        assert_eq!(s.lines().len(), file.lines().len());
        let ids: Vec<&str> = s.issues().map(|i| i.id()).collect();
        let full_ids: Vec<&str> = file.issues().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, full_ids);
        assert_eq!(s.lines()[4].ending(), LineEnding::CrLf);
        let mut dups: Vec<_> = s.duplicates().collect();
        dups.sort();
        let mut full_dups: Vec<_> = file.duplicates().collect();
        full_dups.sort();
        assert_eq!(dups, full_dups);
        assert!(s.shapes().eq(file.shapes()));
    }

    #[test]
    fn full_line_has_every_field() {
        let text = "{\"id\":\"a-1\",\"title\":\"one\",\"description\":\"long\",\"owner\":\"o\"}\n\
                    {\"id\":\"a-2\",\"title\":\"two\",\"notes\":\"n\"}\n";
        let (s, _) = skim(text);
        assert_eq!(s.issue_line(1), Some(1));
        let full = s.full_line(1).expect("issue line");
        let issue = full.get("a-2").expect("parsed");
        assert_eq!(issue.title, "two");
        assert_eq!(issue.notes, "n");
        let both = s.lines_file(&[1, 0, 1]).expect("issue lines");
        let ids: Vec<&str> = both.issues().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a-1", "a-2"]);
        assert_eq!(both.get("a-1").expect("parsed").description, "long");
        let issue = s.lean_issue(1).expect("issue line");
        assert_eq!((issue.title.as_str(), issue.notes.as_str()), ("two", ""));
        assert_eq!(s.line_bytes(0), text.lines().next().unwrap().as_bytes());
        assert!(s.full_line(5).is_none());
    }
}
