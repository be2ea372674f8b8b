//! Three-way merge of `.beads/issues.jsonl` texts, keyed by issue id: git's merge driver
//! for the backlog, and [`resolve`] for a file that already holds git conflict markers.
//!
//! A line-based merge conflicts whenever two branches touch neighbouring lines, and is
//! wrong when they touch the same issue; this merge works per issue and per field. The
//! rules (the long form, with examples, is `docs/merge.md`):
//!
//! - An issue is identified by its id. A line equal on two sides (as bytes, or as JSON
//!   values) counts as unchanged; a side that alone changed an issue wins with its line,
//!   byte for byte.
//! - Both sides changed one issue: three-way merge per top-level field. `labels`,
//!   `dependencies` (identity: target and type) and `comments` (identity: the whole
//!   comment) are sets: an addition on either side survives, a removal on one side with
//!   no change on the other is honoured. The same scalar changed differently on both
//!   sides: the side with the later `updated_at` wins; equal or missing times are a
//!   *conflict*, decided by the greater compact JSON text (an absent value is the
//!   smallest). `updated_at` becomes the later of the two.
//! - The close state (`status`, `closed_at`, `close_reason`, `closed_by_session`) and
//!   the deletion fields move together, from one side. When both sides changed it and
//!   one side is closed, the closed side wins, unless the other side reopened (the base
//!   was closed) after that close (its `updated_at` is later than the close's
//!   `closed_at`).
//! - Deletion against modification: the modification wins. A line removed on one side
//!   and changed on the other comes back as changed; a tombstone against a change keeps
//!   the issue live with the changing side's status. An unchanged issue removed (or
//!   tombstoned) on one side stays removed.
//! - An id on several lines of ours or theirs is not guessed at: unless the other side
//!   agrees or theirs left it alone, it is a conflict and ours' lines are kept. An id on
//!   several lines of the base only: both sides merge as if each had added the issue.
//! - Other lines (blank, `_type:"memory"`, a `_schema` header, unreadable lines) merge
//!   as a multiset of exact lines: ours' are kept unless theirs removed one, theirs' new
//!   ones are added after the line they follow in theirs.
//! - Output: ours' line order; untouched lines byte-identical; an issue changed on both
//!   sides is edited in ours' line, in its own key order and escaping; issues new on
//!   theirs are placed as [`BeadsFile::insert`] places a new issue (before the first
//!   issue line whose id sorts after it).

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::edit::LineEditor;
use super::file::{style_among, BeadsFile, LineEnding, LineKind};
use super::issue::{canonical_dep_type, StatusKind, Timestamp};
use super::json::Evidence;
use super::line::LineError;

/// One thing the merge reports: a conflict it decided by a fallback rule, or a note on
/// a rule it applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The issue, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The field, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Finding {
    fn new(id: &str, field: Option<&str>, message: impl Into<String>) -> Finding {
        Finding {
            id: Some(id.to_string()),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.id, &self.field) {
            (Some(id), Some(field)) => write!(f, "{id} {field}: {}", self.message),
            (Some(id), None) => write!(f, "{id}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The merged file and what it took to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    pub text: Vec<u8>,
    /// What no rule could decide; the text holds the fallback choice for each.
    pub conflicts: Vec<Finding>,
    /// Rules applied where both sides touched the same issue.
    pub notes: Vec<Finding>,
}

impl MergeOutcome {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// One line of an input, borrowed.
#[derive(Debug, Clone, Copy)]
struct RawLine<'a> {
    /// Without its terminator.
    bytes: &'a [u8],
    ending: LineEnding,
    /// Offset of the line's first byte in the text.
    start: usize,
}

fn split_lines(text: &[u8]) -> Vec<RawLine<'_>> {
    let mut lines = Vec::with_capacity(text.len() / 512 + 1);
    let mut start = 0;
    while start < text.len() {
        let (end, next, ending) = match memchr::memchr(b'\n', &text[start..]) {
            Some(off) => {
                let nl = start + off;
                if nl > start && text[nl - 1] == b'\r' {
                    (nl - 1, nl + 1, LineEnding::CrLf)
                } else {
                    (nl, nl + 1, LineEnding::Lf)
                }
            }
            None => (text.len(), text.len(), LineEnding::None),
        };
        lines.push(RawLine {
            bytes: &text[start..end],
            ending,
            start,
        });
        start = next;
    }
    lines
}

/// How the lines of the files bd and its ports write begin, up to the id's value.
const ID_PREFIXES: &[&[u8]] = &[
    br#"{"id":""#,
    br#"{"id": ""#,
    br#"{"_type":"issue","id":""#,
    br#"{"_type": "issue", "id": ""#,
];

/// The id of a line in one of the usual shapes, without parsing it. `None` sends the
/// line to the full parser.
fn quick_id<'b>(b: &'b [u8], type_key: &memchr::memmem::Finder<'_>) -> Option<&'b str> {
    let rest = ID_PREFIXES.iter().find_map(|p| b.strip_prefix(*p))?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' || end == 0 {
        return None;
    }
    // A later `_type` could make the line a record that is not an issue.
    if type_key.find(&rest[end..]).is_some() {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// The id of an issue line as the file parser reads it, `None` for any other line.
fn parsed_id(b: &[u8]) -> Option<String> {
    let first = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | 0xef | 0xbb | 0xbf))?;
    if b[first] != b'{' {
        return None;
    }
    let (file, _) = BeadsFile::parse(b);
    file.lines()
        .first()
        .and_then(|l| l.issue())
        .map(|i| i.id.clone())
}

/// Whether a non-issue line is a record (a JSON object such as a memory or a header):
/// records, like issue lines, show the file's escaping.
fn is_record(b: &[u8]) -> bool {
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'{')
        && matches!(
            BeadsFile::parse(b).0.lines().first().map(|l| l.kind()),
            Some(LineKind::Record(_))
        )
}

/// One input file: its lines, the issue id of each, and where each id is.
struct Side<'a> {
    text: &'a [u8],
    lines: Vec<RawLine<'a>>,
    ids: Vec<Option<Cow<'a, str>>>,
    /// id → its line indices in file order (more than one: a duplicated id).
    index: HashMap<Cow<'a, str>, Vec<usize>>,
    /// Non-issue line content → its line indices in file order.
    others: HashMap<&'a [u8], Vec<usize>>,
}

impl<'a> Side<'a> {
    fn new(text: &'a [u8]) -> Side<'a> {
        let lines = split_lines(text);
        let mut ids = Vec::with_capacity(lines.len());
        let mut index: HashMap<Cow<'a, str>, Vec<usize>> = HashMap::with_capacity(lines.len());
        let mut others: HashMap<&'a [u8], Vec<usize>> = HashMap::new();
        let type_key = memchr::memmem::Finder::new(br#""_type""#);
        for (i, l) in lines.iter().enumerate() {
            let id = match quick_id(l.bytes, &type_key) {
                Some(id) => Some(Cow::Borrowed(id)),
                None => parsed_id(l.bytes).map(Cow::Owned),
            };
            match &id {
                Some(id) => index.entry(id.clone()).or_default().push(i),
                None => others.entry(l.bytes).or_default().push(i),
            }
            ids.push(id);
        }
        Side {
            text,
            lines,
            ids,
            index,
            others,
        }
    }

    fn occ(&self, id: &str) -> &[usize] {
        self.index.get(id).map_or(&[], Vec::as_slice)
    }

    fn bytes_of(&self, idxs: &[usize]) -> Vec<&'a [u8]> {
        idxs.iter().map(|&i| self.lines[i].bytes).collect()
    }
}

fn parse_value(b: &[u8]) -> Option<Value> {
    serde_json::from_slice(b).ok()
}

/// Equal as bytes, or as JSON values (a rewrite in another dialect changes nothing).
fn same(a: &[u8], b: &[u8]) -> bool {
    a == b || matches!((parse_value(a), parse_value(b)), (Some(x), Some(y)) if x == y)
}

fn same_opt(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// What becomes of one of ours' lines.
enum Fate<'a> {
    Keep,
    Replace(Cow<'a, [u8]>),
    Remove,
}

/// Where a line new on theirs goes, for lines that follow another line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    Top,
    /// Right after ours' line (kept or replaced).
    Ours(usize),
    /// Right after theirs' line, itself new in the result.
    Theirs(usize),
}

struct Merger<'s, 'a> {
    base: &'s Side<'a>,
    ours: &'s Side<'a>,
    theirs: &'s Side<'a>,
    fate: Vec<Fate<'a>>,
    /// Theirs' issue lines new in the result, by theirs' index.
    new_issues: Vec<usize>,
    /// Theirs' other lines new in the result, by theirs' index.
    new_others: Vec<usize>,
    conflicts: Vec<Finding>,
    notes: Vec<Finding>,
    /// Escaping evidence of ours' lines, kept across the edits of one merge: the edits'
    /// neighbourhoods overlap.
    evidence: RefCell<HashMap<usize, Evidence>>,
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Merges three versions of a `.beads/issues.jsonl` (see the module docs for the rules).
/// Never fails: what no rule decides is reported in [`MergeOutcome::conflicts`] and
/// decided by a documented fallback.
pub fn merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> MergeOutcome {
    if ours == theirs {
        return MergeOutcome {
            text: ours.to_vec(),
            conflicts: Vec::new(),
            notes: Vec::new(),
        };
    }
    // Indexing the three inputs is most of the work and independent: one thread each.
    let (b, o, t) = std::thread::scope(|scope| {
        let (hb, ht) = (
            scope.spawn(|| Side::new(base)),
            scope.spawn(|| Side::new(theirs)),
        );
        let o = Side::new(ours);
        (join(hb), o, join(ht))
    });
    let mut m = Merger {
        base: &b,
        ours: &o,
        theirs: &t,
        fate: (0..o.lines.len()).map(|_| Fate::Keep).collect(),
        new_issues: Vec::new(),
        new_others: Vec::new(),
        conflicts: Vec::new(),
        notes: Vec::new(),
        evidence: RefCell::new(HashMap::new()),
    };
    m.merge_issues();
    m.merge_others();
    let text = m.assemble();
    MergeOutcome {
        text,
        conflicts: m.conflicts,
        notes: m.notes,
    }
}

impl<'a> Merger<'_, 'a> {
    fn merge_issues(&mut self) {
        let (o, t) = (self.ours, self.theirs);
        let mut done: HashSet<&str> = HashSet::new();
        for id in o.ids.iter().flatten() {
            if done.insert(id.as_ref()) {
                self.merge_id(id);
            }
        }
        for id in t.ids.iter().flatten() {
            if !o.index.contains_key(id.as_ref()) && done.insert(id.as_ref()) {
                self.merge_id(id);
            }
        }
    }

    fn merge_id(&mut self, id: &str) {
        let (ob, oo, ot) = (self.base.occ(id), self.ours.occ(id), self.theirs.occ(id));
        if oo.len() > 1 || ot.len() > 1 {
            return self.merge_duplicated(id, ob, oo, ot);
        }
        // A base with the id on several lines cannot say which was the ancestor: both
        // sides are then merged as if each had added the issue.
        let b = match ob {
            [one] => Some(self.base.lines[*one].bytes),
            _ => None,
        };
        let t = ot.first().map(|&i| self.theirs.lines[i].bytes);
        match (oo.first().copied(), ot.first().copied()) {
            (Some(j), Some(k)) => {
                let o = self.ours.lines[j].bytes;
                if same(o, self.theirs.lines[k].bytes) || same_opt(b, t) {
                    return;
                }
                if same_opt(b, Some(o)) {
                    self.fate[j] = Fate::Replace(Cow::Borrowed(self.theirs.lines[k].bytes));
                    return;
                }
                self.merge_both_changed(id, j, b, o, self.theirs.lines[k].bytes);
            }
            (Some(j), None) => {
                let o = self.ours.lines[j].bytes;
                match b {
                    // Added on ours.
                    None => {}
                    Some(b) if same(b, o) => self.fate[j] = Fate::Remove,
                    Some(_) => self.notes.push(Finding::new(
                        id,
                        None,
                        "removed on theirs, changed on ours: the changed issue is kept",
                    )),
                }
            }
            (None, Some(k)) => match b {
                None => self.new_issues.push(k),
                Some(b) if same(b, self.theirs.lines[k].bytes) => {}
                Some(_) => {
                    self.notes.push(Finding::new(
                        id,
                        None,
                        "removed on ours, changed on theirs: the changed issue is kept",
                    ));
                    self.new_issues.push(k);
                }
            },
            (None, None) => {}
        }
    }

    /// An id on several lines of some side: taken over only when nothing needs a guess.
    fn merge_duplicated(&mut self, id: &str, ob: &[usize], oo: &[usize], ot: &[usize]) {
        let (b, o, t) = (
            self.base.bytes_of(ob),
            self.ours.bytes_of(oo),
            self.theirs.bytes_of(ot),
        );
        if o == t || t == b {
            return;
        }
        if o.is_empty() {
            // Nothing of ours to keep: theirs' lines are added, so none is lost.
            self.new_issues.extend_from_slice(ot);
        }
        let side = match (oo.len() > 1, ot.len() > 1) {
            (true, true) => "both sides",
            (true, false) => "ours",
            _ => "theirs",
        };
        self.conflicts.push(Finding::new(
            id,
            None,
            format!(
                "the id is on several lines on {side}; ours' lines are kept{}: keep one line per id and merge again",
                if o.is_empty() { " (theirs' added, ours had none)" } else { "" }
            ),
        ));
    }

    fn merge_both_changed(&mut self, id: &str, j: usize, b: Option<&[u8]>, o: &[u8], t: &[u8]) {
        let parse = |bytes: &[u8], side: &str| -> Result<Map<String, Value>, Finding> {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(m)) => Ok(canonical_keys(m)),
                _ => Err(Finding::new(
                    id,
                    None,
                    format!("{side}'s line is not a readable JSON object; ours' line is kept"),
                )),
            }
        };
        let maps = (|| {
            let bm = match b {
                Some(b) => parse(b, "the base")?,
                None => Map::new(),
            };
            Ok::<_, Finding>((bm, parse(o, "ours")?, parse(t, "theirs")?))
        })();
        let (bm, om, tm) = match maps {
            Ok(m) => m,
            Err(f) => return self.conflicts.push(f),
        };
        let plan = merge_fields(id, &bm, &om, &tm);
        self.notes.extend(plan.notes);
        self.conflicts.extend(plan.conflicts);
        if plan.edits.is_empty() {
            return;
        }
        match self.edit_ours_line(id, j, &plan.edits) {
            Ok(bytes) => self.fate[j] = Fate::Replace(Cow::Owned(bytes)),
            Err(message) => self.conflicts.push(Finding::new(
                id,
                None,
                format!("cannot edit ours' line ({message}); ours' line is kept"),
            )),
        }
    }

    /// Applies `edits` to ours' line `j` with the line editor, in the dialect an edit of
    /// the file would use (the line's own, neighbours filling in what it does not show).
    /// Refused when the result would not be a readable line of the same issue.
    fn edit_ours_line(&self, id: &str, j: usize, edits: &[Edit]) -> Result<Vec<u8>, String> {
        let o = self.ours;
        let evidence = |k: usize| -> Option<&[u8]> {
            let l = o.lines.get(k)?;
            (o.ids[k].is_some() || is_record(l.bytes)).then_some(l.bytes)
        };
        let mut cache = self.evidence.borrow_mut();
        let scan = |k: usize, b: &[u8]| *cache.entry(k).or_insert_with(|| Evidence::scan(b));
        let (style, _) =
            style_among(o.lines.len(), evidence, scan, j).map_err(|e| e.to_string())?;
        let mut editor = LineEditor::new(o.lines[j].bytes.to_vec(), style);
        apply_edits(&mut editor, edits).map_err(|e| e.to_string())?;
        let bytes = editor.into_bytes();
        let (file, _) = BeadsFile::parse(&bytes);
        match file.lines().first().and_then(|l| l.issue()) {
            Some(issue) if issue.id == id && file.lines().len() == 1 => Ok(bytes),
            _ => Err("the edit would leave an unreadable line".into()),
        }
    }

    /// Non-issue lines: a multiset three-way merge of exact lines.
    fn merge_others(&mut self) {
        let (b, o, t) = (self.base, self.ours, self.theirs);
        let mut contents: Vec<&[u8]> = o.others.keys().copied().collect();
        contents.extend(t.others.keys().filter(|c| !o.others.contains_key(*c)));
        for c in contents {
            fn get<'x>(s: &'x Side<'_>, c: &[u8]) -> &'x [usize] {
                s.others.get(c).map_or(&[][..], Vec::as_slice)
            }
            let (lb, lo, lt) = (get(b, c), get(o, c), get(t, c));
            let want = if lo.len() == lb.len() {
                lt.len()
            } else if lt.len() == lb.len() {
                lo.len()
            } else {
                lo.len().max(lt.len())
            };
            if want < lo.len() {
                for &j in &lo[want..] {
                    self.fate[j] = Fate::Remove;
                }
            } else if want > lo.len() {
                self.new_others
                    .extend_from_slice(&lt[lt.len() - (want - lo.len())..]);
            }
        }
        self.new_others.sort_unstable();
    }

    /// The result: ours' lines by their fate, theirs' new lines where they belong.
    fn assemble(&self) -> Vec<u8> {
        let (o, t) = (self.ours, self.theirs);
        let kept = |j: usize| !matches!(self.fate[j], Fate::Remove);
        // Ours' issue lines that stay, with the running maximum id, for the placement of
        // new issues as `BeadsFile::insert` places them.
        let mut remaining: Vec<(usize, &str)> = Vec::new();
        let mut prefix_max: Vec<&str> = Vec::new();
        for (j, id) in o.ids.iter().enumerate() {
            if let (Some(id), true) = (id, kept(j)) {
                let max = match prefix_max.last() {
                    Some(m) if *m >= id.as_ref() => *m,
                    _ => id.as_ref(),
                };
                remaining.push((j, id));
                prefix_max.push(max);
            }
        }
        let mut new_issues = self.new_issues.clone();
        new_issues.sort_by(|&a, &b| {
            t.ids[a]
                .as_deref()
                .cmp(&t.ids[b].as_deref())
                .then(a.cmp(&b))
        });
        let mut before: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut tail: Vec<usize> = Vec::new();
        for &k in &new_issues {
            let id = t.ids[k].as_deref().unwrap_or_default();
            let p = prefix_max.partition_point(|m| *m <= id);
            match remaining.get(p) {
                Some(&(j, _)) => before.entry(j).or_default().push(k),
                None => tail.push(k),
            }
        }
        // With no issue line of ours left to sort against, new issues follow their
        // neighbours in theirs, as the other new lines do.
        let anchored = self.anchors(remaining.is_empty());
        let default_ending = o
            .lines
            .iter()
            .chain(&t.lines)
            .map(|l| l.ending)
            .find(|e| *e != LineEnding::None)
            .unwrap_or(LineEnding::Lf);
        let mut out = Emitter {
            buf: Vec::with_capacity(o.text.len() + 1024),
            pending: None,
            default_ending,
        };
        let chain = |out: &mut Emitter, from: Anchor| {
            let mut stack = vec![from];
            while let Some(a) = stack.pop() {
                if let Some(ks) = anchored.get(&a) {
                    // Depth first, keeping theirs' order.
                    for &k in ks.iter().rev() {
                        stack.push(Anchor::Theirs(k));
                    }
                }
                if let Anchor::Theirs(k) = a {
                    out.line(t.lines[k].bytes, default_ending);
                }
            }
        };
        chain(&mut out, Anchor::Top);
        let last_remaining = remaining.last().map(|&(j, _)| j);
        for (j, l) in o.lines.iter().enumerate() {
            if let Some(ks) = before.get(&j) {
                for &k in ks {
                    chain(&mut out, Anchor::Theirs(k));
                }
            }
            match &self.fate[j] {
                Fate::Remove => continue,
                Fate::Keep => out.line(l.bytes, l.ending),
                Fate::Replace(bytes) => out.line(bytes, l.ending),
            }
            if Some(j) == last_remaining {
                for &k in &tail {
                    chain(&mut out, Anchor::Theirs(k));
                }
            }
            chain(&mut out, Anchor::Ours(j));
        }
        let ours_open_end = o.lines.last().is_some_and(|l| l.ending == LineEnding::None);
        out.finish(ours_open_end)
    }

    /// For each of theirs' new non-issue lines (and new issue lines too, with
    /// `with_issues`), the line it follows in the result: the nearest line before it in
    /// theirs that is in the result.
    fn anchors(&self, with_issues: bool) -> HashMap<Anchor, Vec<usize>> {
        let (o, t) = (self.ours, self.theirs);
        let kept = |j: usize| !matches!(self.fate[j], Fate::Remove);
        let new_set: HashSet<usize> = self
            .new_issues
            .iter()
            .chain(&self.new_others)
            .copied()
            .collect();
        // Theirs' non-issue line → ours' line with the same content at the same
        // occurrence number, when that one stays.
        let occurrence_in_ours = |k: usize| -> Option<usize> {
            let content = t.lines[k].bytes;
            let nth = t.others.get(content)?.iter().position(|&x| x == k)?;
            let &j = o.others.get(content)?.get(nth)?;
            kept(j).then_some(j)
        };
        let anchor_of = |k: usize| -> Anchor {
            for m in (0..k).rev() {
                if new_set.contains(&m) {
                    return Anchor::Theirs(m);
                }
                match &t.ids[m] {
                    Some(id) => {
                        // The issue's line in the result, if it is one of ours'.
                        if let Some(&j) = o.occ(id).last() {
                            if kept(j) {
                                return Anchor::Ours(j);
                            }
                        }
                    }
                    None => {
                        if let Some(j) = occurrence_in_ours(m) {
                            return Anchor::Ours(j);
                        }
                    }
                }
            }
            Anchor::Top
        };
        let mut placed: Vec<usize> = self.new_others.clone();
        if with_issues {
            placed.extend_from_slice(&self.new_issues);
            placed.sort_unstable();
        }
        let mut map: HashMap<Anchor, Vec<usize>> = HashMap::new();
        for k in placed {
            map.entry(anchor_of(k)).or_default().push(k);
        }
        map
    }
}

/// Writes lines with their terminators; a line that had none (the last line of its
/// file) gets one when another line follows.
struct Emitter {
    buf: Vec<u8>,
    pending: Option<LineEnding>,
    default_ending: LineEnding,
}

impl Emitter {
    fn line(&mut self, bytes: &[u8], ending: LineEnding) {
        if let Some(e) = self.pending.take() {
            self.buf.extend_from_slice(e.as_bytes());
        }
        self.buf.extend_from_slice(bytes);
        self.pending = Some(match ending {
            LineEnding::None => self.default_ending,
            e => e,
        });
    }

    /// `open_end`: the file ends without a newline, as ours did.
    fn finish(mut self, open_end: bool) -> Vec<u8> {
        if let (Some(e), false) = (self.pending, open_end) {
            self.buf.extend_from_slice(e.as_bytes());
        }
        self.buf
    }
}

/// Spellings of one key that writers used; merged under the first.
fn canonical_key(k: &str) -> &str {
    match k {
        "created" => "created_at",
        "updated" => "updated_at",
        "wisp" => "ephemeral",
        k => k,
    }
}

fn canonical_keys(m: Map<String, Value>) -> Map<String, Value> {
    if !m.keys().any(|k| canonical_key(k) != k) {
        return m;
    }
    m.into_iter()
        .map(|(k, v)| (canonical_key(&k).to_string(), v))
        .collect()
}

/// A change to ours' line.
#[derive(Debug, Clone, PartialEq)]
enum Edit {
    Set(String, Value),
    Remove(String),
    /// Labels to add (at their sorted place) and remove.
    Labels {
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Changes to the array under a key: ours' elements by index (`None`: removed), then
    /// elements appended.
    Array {
        key: String,
        replace: Vec<(usize, Option<Value>)>,
        append: Vec<Value>,
    },
}

fn apply_edits(e: &mut LineEditor, edits: &[Edit]) -> Result<(), LineError> {
    for edit in edits {
        match edit {
            Edit::Set(k, v) => e.set(k, v.clone())?,
            Edit::Remove(k) => {
                e.remove(k)?;
            }
            Edit::Labels { add, remove } => {
                for l in remove {
                    e.remove_label(l)?;
                }
                for l in add {
                    e.add_label(l)?;
                }
            }
            Edit::Array {
                key,
                replace,
                append,
            } => {
                // From the back, so earlier indices stay valid.
                let mut replace = replace.clone();
                replace.sort_by_key(|r| std::cmp::Reverse(r.0));
                for (i, v) in replace {
                    e.array_remove(key, i)?;
                    if let Some(v) = v {
                        e.array_insert(key, i, &v)?;
                    }
                }
                for v in append {
                    e.array_push(key, v)?;
                }
            }
        }
    }
    Ok(())
}

/// The fields that describe whether an issue is closed or deleted: decided together,
/// from one side, so the result is never half closed.
const CLOSE_GROUP: &[&str] = &[
    "status",
    "closed_at",
    "close_reason",
    "closed_by_session",
    "deleted_at",
    "deleted_by",
    "delete_reason",
    "original_type",
];

const SET_KEYS: &[&str] = &["labels", "dependencies", "comments"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    Theirs,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Ours => "ours",
            Which::Theirs => "theirs",
        }
    }
}

struct FieldPlan {
    edits: Vec<Edit>,
    conflicts: Vec<Finding>,
    notes: Vec<Finding>,
}

fn ts(m: &Map<String, Value>, key: &str) -> Option<Timestamp> {
    m.get(key)
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
}

fn status_kind(m: &Map<String, Value>) -> StatusKind {
    StatusKind::of(m.get("status").and_then(Value::as_str).unwrap_or(""))
}

fn json_text(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_default()
}

/// The three-way merge of one issue's fields (keys already canonical). Returns the edits
/// that turn ours into the result.
fn merge_fields(
    id: &str,
    b: &Map<String, Value>,
    o: &Map<String, Value>,
    t: &Map<String, Value>,
) -> FieldPlan {
    let mut plan = FieldPlan {
        edits: Vec::new(),
        conflicts: Vec::new(),
        notes: Vec::new(),
    };
    // Which side edited last, by `updated_at`; `None` when that does not tell.
    let later = match (ts(o, "updated_at"), ts(t, "updated_at")) {
        (Some(a), Some(b)) => match a.at.cmp(&b.at) {
            Ordering::Greater => Some(Which::Ours),
            Ordering::Less => Some(Which::Theirs),
            Ordering::Equal => None,
        },
        _ => None,
    };
    let group_winner = close_group_winner(id, b, o, t, later, &mut plan);

    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.extend(t.keys().map(String::as_str).filter(|k| !o.contains_key(*k)));
    keys.extend(
        b.keys()
            .map(String::as_str)
            .filter(|k| !o.contains_key(*k) && !t.contains_key(*k)),
    );
    for key in keys {
        if key == "id" {
            continue;
        }
        let (bv, ov, tv) = (b.get(key), o.get(key), t.get(key));
        let result: Option<Option<Value>> = if CLOSE_GROUP.contains(&key) && group_winner.is_some()
        {
            (group_winner == Some(Which::Theirs) && ov != tv).then(|| tv.cloned())
        } else if ov == tv || bv == tv {
            None
        } else if bv == ov {
            Some(tv.cloned())
        } else if key == "updated_at" {
            let pick_theirs = match (ts(o, key), ts(t, key)) {
                (Some(a), Some(b)) => b > a,
                _ => json_text(tv) > json_text(ov),
            };
            pick_theirs.then(|| tv.cloned())
        } else if SET_KEYS.contains(&key) && merge_set(id, key, bv, ov, tv, later, &mut plan) {
            None
        } else {
            scalar(id, key, ov, tv, later, &mut plan).then(|| tv.cloned())
        };
        match result {
            Some(Some(v)) => plan.edits.push(Edit::Set(key.to_string(), v)),
            Some(None) => plan.edits.push(Edit::Remove(key.to_string())),
            None => {}
        }
    }
    plan
}

/// Both sides changed one scalar: `true` when theirs' value wins.
fn scalar(
    id: &str,
    key: &str,
    ov: Option<&Value>,
    tv: Option<&Value>,
    later: Option<Which>,
    plan: &mut FieldPlan,
) -> bool {
    match later {
        Some(w) => {
            plan.notes.push(Finding::new(
                id,
                Some(key),
                format!(
                    "changed on both sides; {}' value kept (later updated_at)",
                    w.name()
                ),
            ));
            w == Which::Theirs
        }
        None => {
            let theirs = json_text(tv) > json_text(ov);
            plan.conflicts.push(Finding::new(
                id,
                Some(key),
                format!(
                    "changed on both sides at the same updated_at; {}' value kept (the greater JSON text)",
                    if theirs { "theirs" } else { "ours" }
                ),
            ));
            theirs
        }
    }
}

/// Decides the close group (`CLOSE_GROUP`) when both sides changed it, or when one side
/// deleted the issue and the other changed it. `None`: merge its fields one by one (only
/// one side changed them).
fn close_group_winner(
    id: &str,
    b: &Map<String, Value>,
    o: &Map<String, Value>,
    t: &Map<String, Value>,
    later: Option<Which>,
    plan: &mut FieldPlan,
) -> Option<Which> {
    let group = |m: &Map<String, Value>| -> Vec<Option<Value>> {
        CLOSE_GROUP.iter().map(|k| m.get(*k).cloned()).collect()
    };
    let (gb, go, gt) = (group(b), group(o), group(t));
    let tomb = |m: &Map<String, Value>| status_kind(m) == StatusKind::Tombstone;
    // Deletion against modification: the modification wins (both sides changed the
    // issue, or we would not be here).
    if !tomb(b) && tomb(o) != tomb(t) {
        let w = if tomb(o) { Which::Theirs } else { Which::Ours };
        plan.notes.push(Finding::new(
            id,
            Some("status"),
            format!(
                "deleted on {}, changed on {}: the issue stays, with {}' status",
                if w == Which::Ours { "theirs" } else { "ours" },
                w.name(),
                w.name()
            ),
        ));
        return Some(w);
    }
    if go == gb || gt == gb || go == gt {
        return None;
    }
    let closed = |m: &Map<String, Value>| status_kind(m) == StatusKind::Closed;
    let w = match (closed(o), closed(t)) {
        (true, false) | (false, true) => {
            let (c, r, cw, rw) = if closed(o) {
                (o, t, Which::Ours, Which::Theirs)
            } else {
                (t, o, Which::Theirs, Which::Ours)
            };
            let close_time = ts(c, "closed_at").or_else(|| ts(c, "updated_at"));
            let reopened_after = closed(b)
                && matches!((ts(r, "updated_at"), close_time), (Some(u), Some(ct)) if u.at > ct.at);
            let w = if reopened_after { rw } else { cw };
            plan.notes.push(Finding::new(
                id,
                Some("status"),
                if reopened_after {
                    format!(
                        "closed on {}, reopened later on {}: reopened",
                        cw.name(),
                        rw.name()
                    )
                } else {
                    format!("closed on {}: the close wins", cw.name())
                },
            ));
            w
        }
        _ => {
            if let Some(w) = later {
                plan.notes.push(Finding::new(
                    id,
                    Some("status"),
                    format!(
                        "changed on both sides; {}' status kept (later updated_at)",
                        w.name()
                    ),
                ));
                w
            } else {
                let theirs = json_text(t.get("status")) > json_text(o.get("status"))
                    || (t.get("status") == o.get("status")
                        && serde_json::to_string(&gt).unwrap_or_default()
                            > serde_json::to_string(&go).unwrap_or_default());
                let w = if theirs { Which::Theirs } else { Which::Ours };
                plan.conflicts.push(Finding::new(
                    id,
                    Some("status"),
                    format!(
                        "changed on both sides at the same updated_at; {}' status kept (the greater JSON text)",
                        w.name()
                    ),
                ));
                w
            }
        }
    };
    Some(w)
}

/// The identity of a set element: a dependency by its target and type, anything else by
/// its value.
fn identity(key: &str, v: &Value) -> String {
    if key == "dependencies" {
        if let Some(target) = v.get("depends_on_id").and_then(Value::as_str) {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            return format!("{target}\u{0}{}", canonical_dep_type(kind));
        }
    }
    v.to_string()
}

/// Comments added on both sides at once were numbered from the same base, so a new
/// comment of theirs can carry the integer id of a different new comment of ours; it
/// gets the next free id instead, so an issue never shows two comments with one id.
fn renumber_new_comments(ours: &[Value], base: &HashMap<String, Value>, append: &mut [Value]) {
    let int_id = |c: &Value| c.get("id").and_then(Value::as_i64);
    let ours_new: std::collections::HashSet<i64> = ours
        .iter()
        .filter(|c| !base.contains_key(&identity("comments", c)))
        .filter_map(int_id)
        .collect();
    let mut next = ours
        .iter()
        .chain(append.iter())
        .filter_map(int_id)
        .max()
        .unwrap_or(0)
        + 1;
    for c in append.iter_mut() {
        if int_id(c).is_some_and(|id| ours_new.contains(&id)) {
            if let Some(obj) = c.as_object_mut() {
                obj.insert("id".into(), Value::from(next));
                next += 1;
            }
        }
    }
}

/// Merges the array under `key` as a set. `false` when a side's value is not an array
/// (then the key is merged as a scalar).
fn merge_set(
    id: &str,
    key: &str,
    bv: Option<&Value>,
    ov: Option<&Value>,
    tv: Option<&Value>,
    later: Option<Which>,
    plan: &mut FieldPlan,
) -> bool {
    fn elems(v: Option<&Value>) -> Option<&[Value]> {
        match v {
            None | Some(Value::Null) => Some(&[]),
            Some(Value::Array(a)) => Some(a),
            _ => None,
        }
    }
    let (Some(be), Some(oe), Some(te)) = (elems(bv), elems(ov), elems(tv)) else {
        return false;
    };
    let index = |es: &[Value]| -> HashMap<String, Value> {
        let mut m = HashMap::new();
        for e in es {
            m.entry(identity(key, e)).or_insert_with(|| e.clone());
        }
        m
    };
    let (bi, oi, ti) = (index(be), index(oe), index(te));
    let mut replace: Vec<(usize, Option<Value>)> = Vec::new();
    let mut append: Vec<Value> = Vec::new();
    for (i, e) in oe.iter().enumerate() {
        let ident = identity(key, e);
        let bval = bi.get(&ident);
        match ti.get(&ident) {
            Some(tval) if tval != e => {
                // The same element changed: three-way on its value.
                if bval == Some(e) {
                    replace.push((i, Some(tval.clone())));
                } else if bval != Some(tval) {
                    let theirs = scalar(id, key, Some(e), Some(tval), later, plan);
                    if theirs {
                        replace.push((i, Some(tval.clone())));
                    }
                }
            }
            Some(_) => {}
            None => {
                if bval == Some(e) {
                    // Removed on theirs, unchanged on ours.
                    replace.push((i, None));
                } else if bval.is_some() {
                    plan.notes.push(Finding::new(
                        id,
                        Some(key),
                        "an element removed on theirs was changed on ours: kept",
                    ));
                }
            }
        }
    }
    for e in te {
        let ident = identity(key, e);
        if oi.contains_key(&ident) || append.iter().any(|a| identity(key, a) == ident) {
            continue;
        }
        match bi.get(&ident) {
            None => append.push(e.clone()),
            Some(bval) if bval == e => {}
            Some(_) => {
                plan.notes.push(Finding::new(
                    id,
                    Some(key),
                    "an element removed on ours was changed on theirs: kept",
                ));
                append.push(e.clone());
            }
        }
    }
    if key == "comments" {
        renumber_new_comments(oe, &bi, &mut append);
    }
    if replace.is_empty() && append.is_empty() {
        return true;
    }
    let labels_as_strings = key == "labels"
        && replace.iter().all(|(_, v)| v.is_none())
        && append.iter().all(Value::is_string)
        && oe.iter().all(Value::is_string);
    if labels_as_strings {
        plan.edits.push(Edit::Labels {
            add: append
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            remove: replace
                .iter()
                .filter_map(|(i, _)| oe[*i].as_str())
                .map(str::to_string)
                .collect(),
        });
    } else {
        plan.edits.push(Edit::Array {
            key: key.to_string(),
            replace,
            append,
        });
    }
    true
}

/// Why a file's conflict markers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("line {line}: {marker} outside a conflict")]
    Stray { line: usize, marker: &'static str },
    #[error("line {line}: {marker} out of order inside the conflict that starts on line {start}")]
    OutOfOrder {
        line: usize,
        marker: &'static str,
        start: usize,
    },
    #[error("line {start}: the conflict that starts here has no closing >>>>>>> line")]
    Unterminated { start: usize },
}

/// A file with its conflict markers merged away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Conflict hunks found (0: the file had none and is returned as it was).
    pub hunks: usize,
    /// Hunks that had a base section (`|||||||`, git's diff3 style).
    pub hunks_with_base: usize,
    pub outcome: MergeOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Start,
    Base,
    Split,
    End,
}

impl Marker {
    fn name(self) -> &'static str {
        match self {
            Marker::Start => "<<<<<<<",
            Marker::Base => "|||||||",
            Marker::Split => "=======",
            Marker::End => ">>>>>>>",
        }
    }
}

/// A git conflict marker line (seven characters, then the end of the line or a space).
fn marker(line: &[u8]) -> Option<Marker> {
    let m = match line.get(..7)? {
        b"<<<<<<<" => Marker::Start,
        b"|||||||" => Marker::Base,
        b"=======" => Marker::Split,
        b">>>>>>>" => Marker::End,
        _ => return None,
    };
    match line.get(7) {
        None => Some(m),
        Some(b' ') if m != Marker::Split => Some(m),
        _ => None,
    }
}

/// Rebuilds ours, theirs and the base from a file with git conflict markers and merges
/// them by [`merge`]'s rules. A hunk without a base section has an empty base: its two
/// sides are united (an issue on both sides is merged field by field as if both had
/// added it).
pub fn resolve(text: &[u8]) -> Result<Resolved, ResolveError> {
    #[derive(PartialEq)]
    enum State {
        Common,
        Ours,
        Base,
        Theirs,
    }
    let (mut base, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut state = State::Common;
    let (mut hunks, mut with_base, mut start) = (0, 0, 0);
    for (i, l) in split_lines(text).iter().enumerate() {
        let whole = &text[l.start..l.start + l.bytes.len() + l.ending.as_bytes().len()];
        let n = i + 1;
        let out_of_order = |m: Marker| ResolveError::OutOfOrder {
            line: n,
            marker: m.name(),
            start,
        };
        match (marker(l.bytes), &state) {
            (None, State::Common) => {
                base.extend_from_slice(whole);
                ours.extend_from_slice(whole);
                theirs.extend_from_slice(whole);
            }
            (None, State::Ours) => ours.extend_from_slice(whole),
            (None, State::Base) => base.extend_from_slice(whole),
            (None, State::Theirs) => theirs.extend_from_slice(whole),
            (Some(Marker::Start), State::Common) => {
                state = State::Ours;
                hunks += 1;
                start = n;
            }
            (Some(Marker::Base), State::Ours) => {
                state = State::Base;
                with_base += 1;
            }
            (Some(Marker::Split), State::Ours | State::Base) => state = State::Theirs,
            (Some(Marker::End), State::Theirs) => state = State::Common,
            (Some(m), State::Common) => {
                return Err(ResolveError::Stray {
                    line: n,
                    marker: m.name(),
                })
            }
            (Some(m), _) => return Err(out_of_order(m)),
        }
    }
    if state != State::Common {
        return Err(ResolveError::Unterminated { start });
    }
    let outcome = if hunks == 0 {
        MergeOutcome {
            text: text.to_vec(),
            conflicts: Vec::new(),
            notes: Vec::new(),
        }
    } else {
        merge(&base, &ours, &theirs)
    };
    Ok(Resolved {
        hunks,
        hunks_with_base: with_base,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(b: &str, o: &str, t: &str) -> MergeOutcome {
        merge(b.as_bytes(), o.as_bytes(), t.as_bytes())
    }

    fn text(out: &MergeOutcome) -> &str {
        std::str::from_utf8(&out.text).expect("utf8")
    }

    #[test]
    fn quick_id_reads_the_usual_shapes_and_defers_the_rest() {
        let f = memchr::memmem::Finder::new(br#""_type""#);
        let quick_id = |b| quick_id(b, &f);
        assert_eq!(quick_id(br#"{"id":"a-1","title":"t"}"#), Some("a-1"));
        assert_eq!(quick_id(br#"{"id": "a-1", "title": "t"}"#), Some("a-1"));
        assert_eq!(quick_id(br#"{"_type":"issue","id":"a-1"}"#), Some("a-1"));
        assert_eq!(quick_id(br#"{"id":"a\"1"}"#), None);
        assert_eq!(quick_id(br#"{"id":""}"#), None);
        assert_eq!(quick_id(br#"{"id":"a","_type":"memory"}"#), None);
        assert_eq!(
            parsed_id(br#"{"title":"t","id":"z"}"#).as_deref(),
            Some("z")
        );
        assert_eq!(parsed_id(br#"{"_type":"memory","key":"k"}"#), None);
        assert_eq!(parsed_id(b"not json"), None);
    }

    #[test]
    fn no_trailing_newline_is_kept_when_lines_are_added() {
        let out = m(
            "{\"id\":\"a\"}",
            "{\"id\":\"a\"}",
            "{\"id\":\"a\"}\n{\"id\":\"b\"}",
        );
        assert_eq!(text(&out), "{\"id\":\"a\"}\n{\"id\":\"b\"}");
        let out = m("", "{\"id\":\"c\"}\n", "{\"id\":\"b\"}\n");
        assert_eq!(text(&out), "{\"id\":\"b\"}\n{\"id\":\"c\"}\n");
    }

    #[test]
    fn markers_are_exactly_seven_characters() {
        assert_eq!(marker(b"<<<<<<< HEAD"), Some(Marker::Start));
        assert_eq!(marker(b"<<<<<<<"), Some(Marker::Start));
        assert_eq!(marker(b"<<<<<<<<"), None);
        assert_eq!(marker(b"======="), Some(Marker::Split));
        assert_eq!(marker(b"======= x"), None);
        assert_eq!(marker(b">>>>>>> theirs"), Some(Marker::End));
    }

    #[test]
    fn resolve_reports_malformed_markers_with_line_numbers() {
        assert_eq!(
            resolve(b"a\n=======\n"),
            Err(ResolveError::Stray {
                line: 2,
                marker: "======="
            })
        );
        assert_eq!(
            resolve(b"<<<<<<< a\nx\n"),
            Err(ResolveError::Unterminated { start: 1 })
        );
        assert_eq!(
            resolve(b"<<<<<<< a\n>>>>>>> b\n"),
            Err(ResolveError::OutOfOrder {
                line: 2,
                marker: ">>>>>>>",
                start: 1
            })
        );
    }
}
