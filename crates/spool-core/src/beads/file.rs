//! A whole `.beads/issues.jsonl`, kept byte for byte.
//!
//! Every line stays as its original bytes, with its own terminator; issue lines also carry
//! a typed record: the [`Issue`], or only its [`Skimmed`] graph facts for a writer over a
//! large backlog (see [`Record`]). Parsing never fails as a whole: a bad line is kept verbatim and
//! reported as a [`Diagnostic`]. Edits rewrite only the edited line, new issues are
//! inserted as one new line, and [`BeadsFile::to_bytes`] of an untouched file is the
//! input.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use serde_json::Value;

use super::edit::LineEditor;
use super::id_index::IdIndex;
use super::issue::{with_detail, Detail, Issue, StatusKind};
use super::json::Evidence;
use super::line::{self, LineError, LineStyle};
use super::node::{Record, Skimmed};
use super::write::{render_issue_with_line, NewIssue};

/// How a line ends in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
    /// The last line of a file without a final newline.
    None,
}

impl LineEnding {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
            LineEnding::None => b"",
        }
    }
}

/// A new issue line (see [`BeadsFile::insert_lines`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLine {
    pub id: String,
    pub bytes: Vec<u8>,
}

impl NewLine {
    /// An issue given as a JSON object (e.g. one read from another file) as classic bd
    /// writes it: keys in bd order, Go's escaping.
    pub fn of_map(map: serde_json::Map<String, Value>) -> NewLine {
        let id = map
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut bytes = Vec::with_capacity(256);
        super::json::write_value(
            &mut bytes,
            &Value::Object(super::write::sort_bd_order(map)),
            &super::json::Format::go(),
        );
        NewLine { id, bytes }
    }
}

/// A valid JSON object line that is not an issue; kept in the file, never interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// `{"_type":"memory",...}` of bd v1 exports.
    Memory,
    /// A `{"_schema":...}` header line.
    Header,
    /// Another `_type`, as written.
    Other(String),
}

/// What a line holds.
#[derive(Debug, Clone, PartialEq)]
pub enum LineKind<N = Issue> {
    /// Empty or only whitespace.
    Blank,
    /// Boxed so lines stay small to move around.
    Issue(Box<N>),
    Record(RecordKind),
    /// Kept verbatim; its diagnostic says why.
    Invalid(DiagnosticKind),
}

/// The bytes a file is parsed from, shared by the lines that point into them: a buffer
/// read into memory, or (for the caller that can) a memory map of the file.
pub trait Source: Send + Sync {
    fn bytes(&self) -> &[u8];

    /// Called when a pass over the whole file (the parse, [`BeadsFile::write_to`]) is
    /// through with `range` and will not come back to it, so a source that can fetch
    /// bytes again on demand (a memory map) may give their memory back while the rest is
    /// read. Lines still point into the range.
    fn done_with(&self, _range: std::ops::Range<usize>) {}

    /// A copy of `range`, for a one-off read after a pass released the range: a source
    /// that can read the bytes without mapping them back in (a file) should.
    fn copy_range(&self, range: std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
        self.bytes()
            .get(range)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
}

impl Source for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A line's bytes: a range of the source the file was read from (no copy per line), or
/// its own bytes once edited or inserted.
#[derive(Clone)]
enum Bytes {
    Shared {
        buf: Arc<dyn Source>,
        start: usize,
        end: usize,
    },
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Shared { buf, start, end } => &buf.bytes()[*start..*end],
            Bytes::Owned(v) => v,
        }
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// One line of the file: its bytes without terminator, the terminator, and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<N = Issue> {
    bytes: Bytes,
    ending: LineEnding,
    kind: LineKind<N>,
}

impl<N: Record> Line<N> {
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Tells the line's source that a one-off read of the line is over (see
    /// [`Source::done_with`]): the lines a command prints are spread over the file.
    fn done_with(&self) {
        if let Bytes::Shared { buf, start, end } = &self.bytes {
            buf.done_with(*start..*end);
        }
    }

    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    pub fn kind(&self) -> &LineKind<N> {
        &self.kind
    }

    pub fn issue(&self) -> Option<&N> {
        match &self.kind {
            LineKind::Issue(i) => Some(i),
            _ => None,
        }
    }
}

/// What a parse makes of each line: a [`Line`], or a lighter record (see
/// [`super::skim`]).
pub(super) trait ParsedLine: Sized + Send {
    fn new(
        buf: &Arc<dyn Source>,
        span: std::ops::Range<usize>,
        ending: LineEnding,
        kind: LineKind,
    ) -> Self;
}

impl<N: Record> ParsedLine for Line<N> {
    fn new(
        buf: &Arc<dyn Source>,
        span: std::ops::Range<usize>,
        ending: LineEnding,
        kind: LineKind,
    ) -> Line<N> {
        let kind = match kind {
            LineKind::Blank => LineKind::Blank,
            LineKind::Issue(issue) => LineKind::Issue(N::from_issue(issue)),
            LineKind::Record(r) => LineKind::Record(r),
            LineKind::Invalid(k) => LineKind::Invalid(k),
        };
        Line {
            bytes: Bytes::Shared {
                buf: Arc::clone(buf),
                start: span.start,
                end: span.end,
            },
            ending,
            kind,
        }
    }
}

/// A line as an index of the file records it (see [`BeadsFile::shapes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineShape<'a> {
    /// Length without the terminator.
    pub len: usize,
    pub ending: LineEnding,
    /// The id, when it is an issue line.
    pub id: Option<&'a str>,
    pub tombstone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The line is not usable; it is kept verbatim and ignored by the semantics.
    Error,
    /// The line is usable but something needs a human's attention.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiagnosticKind {
    InvalidJson,
    /// The line ends inside a value.
    Truncated,
    InvalidUtf8,
    /// `<<<<<<<`, `|||||||`, `=======` or `>>>>>>>` from an unresolved git merge.
    ConflictMarker,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// An object with no (or an empty) `id`.
    MissingId,
    /// A field whose value has the wrong type for an issue.
    FieldType,
    /// The id already appeared on an earlier line; the last occurrence is in effect.
    DuplicateId,
}

impl DiagnosticKind {
    pub fn severity(self) -> Severity {
        match self {
            DiagnosticKind::DuplicateId => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// A problem with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number.
    pub line: usize,
    pub severity: Severity,
    pub kind: DiagnosticKind,
    pub message: String,
}

/// The warnings a parse reports for `id` on the 1-based `lines` (in file order, at least
/// two): one per later occurrence. Public so that a caller keeping line numbers of its
/// own can report exactly what a parse would.
pub fn duplicate_warnings(id: &str, lines: &[usize]) -> Vec<Diagnostic> {
    let Some(&last) = lines.last() else {
        return Vec::new();
    };
    lines
        .windows(2)
        .map(|pair| {
            Diagnostic::new(
                pair[1],
                DiagnosticKind::DuplicateId,
                format!(
                    "duplicate id {id:?}: also on line {}; the last occurrence (line {last}) is the one in effect",
                    pair[0]
                ),
            )
        })
        .collect()
}

impl Diagnostic {
    fn new(line: usize, kind: DiagnosticKind, message: String) -> Diagnostic {
        Diagnostic {
            line,
            severity: kind.severity(),
            kind,
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.severity, self.message)
    }
}

/// The message for a line carrying a git conflict marker.
pub const CONFLICT_MARKER_MESSAGE: &str =
    "git conflict marker: resolve the merge (keep both sides' lines, remove the markers) and run spool doctor";

/// Why an edit or insert was refused. The file is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("no issue {id} in the file")]
    NotFound { id: String },
    #[error("issue {id} appears on lines {}; remove one of them (keep the one you want) and retry", join_lines(.lines))]
    Duplicate {
        id: String,
        /// 1-based line numbers of every occurrence.
        lines: Vec<usize>,
    },
    #[error("issue {id} already exists on line {line}")]
    AlreadyExists { id: String, line: usize },
    #[error("issue {id} (line {line}): {source}")]
    Line {
        id: String,
        line: usize,
        #[source]
        source: LineError,
    },
    #[error("issue {id} (line {line}): the edit would leave an unreadable line: {message}")]
    Invalid {
        id: String,
        line: usize,
        message: String,
    },
}

fn join_lines(lines: &[usize]) -> String {
    match lines {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(usize::to_string).collect();
            format!("{} and {last}", init.join(", "))
        }
    }
}

/// The result of a successful edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edited {
    /// 1-based number of the line that holds the issue.
    pub line: usize,
    /// Whether any byte changed.
    pub changed: bool,
}

/// The id of line `i` when it is an issue line (the index holds only those).
fn id_at<N: Record>(lines: &[Line<N>], i: usize) -> &str {
    lines.get(i).and_then(Line::issue).map_or("", |x| x.id())
}

/// A parsed `.beads/issues.jsonl`. Two files are equal when their lines are.
#[derive(Debug, Clone)]
pub struct BeadsFile<N = Issue> {
    lines: Vec<Line<N>>,
    /// id → index of its last occurrence (the one in effect).
    index: IdIndex,
    /// ids on more than one line → every index, in file order.
    duplicates: HashMap<String, Vec<usize>>,
    /// Read by [`BeadsFile::parse_lean`]: the typed issues lack their free text.
    lean: bool,
    /// Whether an edit since parsing wrote a value whose bytes depend on the escaping
    /// dialect (see [`BeadsFile::edits_used_escaping`]).
    edits_used_escaping: bool,
}

impl<N: Record> PartialEq for BeadsFile<N> {
    fn eq(&self, other: &BeadsFile<N>) -> bool {
        // Everything else is derived from the lines or a cache.
        self.lines == other.lines
    }
}

enum Parsed {
    Blank,
    Issue(Box<Issue>),
    Record(RecordKind),
    Invalid(DiagnosticKind, String),
}

/// serde_json's message without its " at line L column C" suffix, plus our column.
fn serde_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    if e.line() == 0 {
        msg.to_string()
    } else {
        format!("{msg} at column {}", e.column())
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_conflict_marker(text: &str) -> bool {
    ["<<<<<<<", "|||||||", "=======", ">>>>>>>"]
        .iter()
        .any(|m| text.starts_with(m))
}

/// Names the first field whose value the typed view rejects.
fn field_error(map: &serde_json::Map<String, Value>) -> Option<String> {
    map.iter().find_map(|(k, v)| {
        let mut one = serde_json::Map::new();
        one.insert(k.clone(), v.clone());
        serde_json::from_value::<Issue>(Value::Object(one))
            .err()
            .map(|e| format!("field {k:?}: {e}"))
    })
}

/// Classifies one line's text (terminator excluded).
fn parse_line(text: &str) -> Parsed {
    // A byte order mark (an editor's, at the start of a file or of pasted lines) is not
    // content.
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let trimmed = text.trim_start_matches([' ', '\t', '\r']);
    if trimmed.is_empty() {
        return Parsed::Blank;
    }
    // serde would also read a JSON array into a struct (positionally): only objects are
    // issues.
    if trimmed.starts_with('{') {
        match serde_json::from_str::<Issue>(text) {
            Ok(mut issue) => {
                // serde grows lists to a capacity of four; most hold one or two, and a
                // large backlog keeps every one of them.
                issue.dependencies.shrink_to_fit();
                issue.labels.shrink_to_fit();
                issue.comments.shrink_to_fit();
                return classify_object(text, Box::new(issue));
            }
            Err(e) => return classify_failure(text, trimmed, &e),
        }
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Parsed::Invalid(
            DiagnosticKind::NotAnObject,
            format!(
                "not a JSON object: found {}; each line must hold one issue object",
                json_type_name(&v)
            ),
        ),
        Err(e) => classify_syntax(trimmed, &e),
    }
}

fn classify_object(text: &str, issue: Box<Issue>) -> Parsed {
    if let Some(t) = issue.record_type.as_deref().filter(|t| *t != "issue") {
        return Parsed::Record(match t {
            "memory" => RecordKind::Memory,
            other => RecordKind::Other(other.to_string()),
        });
    }
    if !issue.id.is_empty() {
        return Parsed::Issue(issue);
    }
    let is_header = serde_json::from_str::<serde_json::Map<String, Value>>(text)
        .map(|m| m.contains_key("_schema"))
        .unwrap_or(false);
    if is_header {
        Parsed::Record(RecordKind::Header)
    } else {
        Parsed::Invalid(
            DiagnosticKind::MissingId,
            "missing \"id\": every issue line needs a non-empty string \"id\"".to_string(),
        )
    }
}

fn classify_syntax(trimmed: &str, e: &serde_json::Error) -> Parsed {
    if is_conflict_marker(trimmed) {
        return Parsed::Invalid(
            DiagnosticKind::ConflictMarker,
            CONFLICT_MARKER_MESSAGE.to_string(),
        );
    }
    if e.classify() == serde_json::error::Category::Eof {
        Parsed::Invalid(
            DiagnosticKind::Truncated,
            format!("truncated JSON: {}", serde_message(e)),
        )
    } else {
        Parsed::Invalid(
            DiagnosticKind::InvalidJson,
            format!("invalid JSON: {}", serde_message(e)),
        )
    }
}

fn classify_failure(text: &str, trimmed: &str, issue_err: &serde_json::Error) -> Parsed {
    match serde_json::from_str::<Value>(text) {
        Err(e) => classify_syntax(trimmed, &e),
        // A record that is not an issue is not held to the issue's field types.
        Ok(Value::Object(map)) => match map.get("_type").and_then(Value::as_str) {
            Some("memory") => Parsed::Record(RecordKind::Memory),
            Some(t) if t != "issue" => Parsed::Record(RecordKind::Other(t.to_string())),
            _ if map.contains_key("_schema") && !map.contains_key("id") => {
                Parsed::Record(RecordKind::Header)
            }
            _ => Parsed::Invalid(
                DiagnosticKind::FieldType,
                field_error(&map).unwrap_or_else(|| {
                    format!("invalid issue record: {}", serde_message(issue_err))
                }),
            ),
        },
        Ok(v) => Parsed::Invalid(
            DiagnosticKind::NotAnObject,
            format!(
                "not a JSON object: found {}; each line must hold one issue object",
                json_type_name(&v)
            ),
        ),
    }
}

fn parse_bytes(content: &[u8], text: Option<&str>) -> Parsed {
    match text {
        Some(t) => parse_line(t),
        None => match std::str::from_utf8(content) {
            Ok(t) => parse_line(t),
            Err(e) => Parsed::Invalid(
                DiagnosticKind::InvalidUtf8,
                format!("invalid UTF-8 at column {}", e.valid_up_to() + 1),
            ),
        },
    }
}

const BOM: &str = "\u{feff}";

/// How many bytes of neighbouring lines an edit reads to learn the file's escaping.
const NEIGHBOUR_SCAN_LIMIT: usize = 4 << 20;

/// Splits `buf` into up to `n` byte ranges that each start at a line start.
fn chunk_bounds(buf: &[u8], n: usize) -> Vec<std::ops::Range<usize>> {
    let mut bounds = vec![0];
    for k in 1..n {
        let target = buf.len() * k / n;
        let prev = bounds[bounds.len() - 1];
        if target <= prev {
            continue;
        }
        match memchr::memchr(b'\n', &buf[target..]) {
            Some(off) => bounds.push(target + off + 1),
            None => break,
        }
    }
    bounds.push(buf.len());
    bounds.dedup();
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Parses the lines of `buf[range]` (which starts at a line start). Diagnostic line
/// numbers are relative to the chunk.
fn parse_chunk<T: ParsedLine>(
    buf: &Arc<dyn Source>,
    range: std::ops::Range<usize>,
    detail: Detail,
) -> (Vec<T>, Vec<Diagnostic>) {
    with_detail(detail, || parse_chunk_text(buf, range))
}

fn parse_chunk_text<T: ParsedLine>(
    buf: &Arc<dyn Source>,
    range: std::ops::Range<usize>,
) -> (Vec<T>, Vec<Diagnostic>) {
    let bytes = buf.bytes();
    let mut lines = Vec::with_capacity((range.end - range.start) / 256 + 1);
    let mut diagnostics = Vec::new();
    let mut block_start = range.start;
    while block_start < range.end {
        let block_end = match block_start.checked_add(PARSE_BLOCK) {
            Some(t) if t < range.end => {
                memchr::memchr(b'\n', &bytes[t..range.end]).map_or(range.end, |off| t + off + 1)
            }
            _ => range.end,
        };
        parse_block(buf, block_start..block_end, &mut lines, &mut diagnostics);
        buf.done_with(block_start..block_end);
        block_start = block_end;
    }
    (lines, diagnostics)
}

/// Writes `buf[range]`, then tells the source it is done with.
fn write_shared<W: std::io::Write + ?Sized>(
    w: &mut W,
    buf: &Arc<dyn Source>,
    range: std::ops::Range<usize>,
) -> std::io::Result<()> {
    w.write_all(&buf.bytes()[range.clone()])?;
    buf.done_with(range);
    Ok(())
}

/// Bytes parsed between two [`Source::done_with`] calls (then up to the next line end).
const PARSE_BLOCK: usize = 4 << 20;

/// Parses the lines of `buf[range]` (whole lines) onto `lines`; diagnostics are numbered
/// by their place in `lines`.
fn parse_block<T: ParsedLine>(
    buf: &Arc<dyn Source>,
    range: std::ops::Range<usize>,
    lines: &mut Vec<T>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let bytes = buf.bytes();
    // One validation of the whole block lets every line be parsed as `&str` without
    // re-validating; only blocks with bad bytes are checked line by line.
    let base = range.start;
    let whole = std::str::from_utf8(&bytes[range.clone()]).ok();
    let mut start = range.start;
    while start < range.end {
        let (end, next, ending) = match memchr::memchr(b'\n', &bytes[start..range.end]) {
            Some(off) => {
                let nl = start + off;
                if nl > start && bytes[nl - 1] == b'\r' {
                    (nl - 1, nl + 1, LineEnding::CrLf)
                } else {
                    (nl, nl + 1, LineEnding::Lf)
                }
            }
            None => (range.end, range.end, LineEnding::None),
        };
        // Slicing at '\n' / '\r' positions always lands on char boundaries.
        let text = whole.map(|w| &w[start - base..end - base]);
        let kind = match parse_bytes(&bytes[start..end], text) {
            Parsed::Blank => LineKind::Blank,
            Parsed::Issue(i) => LineKind::Issue(i),
            Parsed::Record(r) => LineKind::Record(r),
            Parsed::Invalid(k, message) => {
                diagnostics.push(Diagnostic::new(lines.len() + 1, k, message));
                LineKind::Invalid(k)
            }
        };
        lines.push(T::new(buf, start..end, ending, kind));
        start = next;
    }
}

/// Escaping evidence from the lines around line `i` (of `n`) in the same separator style
/// (most likely the same writer), nearest first, until every dimension `own` leaves open
/// is decided or [`NEIGHBOUR_SCAN_LIMIT`] bytes were read, so that the first edit of a
/// huge file stays cheap. `line(j)` gives the lines that count as evidence. Also returns
/// the largest distance from `i` that was looked at (`usize::MAX` when the scan ran out
/// of lines).
fn neighbour_evidence<'b>(
    n: usize,
    line: impl Fn(usize) -> Option<&'b [u8]>,
    mut scan: impl FnMut(usize, &[u8]) -> Evidence,
    i: usize,
    spaced: bool,
    own: &Evidence,
) -> (Evidence, usize) {
    let mut acc = Evidence::default();
    let mut scanned = 0;
    for d in 1..n {
        if d > i && i + d >= n {
            break;
        }
        for j in [i.checked_sub(d), Some(i + d)].into_iter().flatten() {
            let Some(bytes) = line(j) else {
                continue;
            };
            if line::starts_spaced(bytes) != spaced {
                continue;
            }
            acc.add(&scan(j, bytes));
            scanned += bytes.len();
            let open = own
                .decided()
                .iter()
                .zip(acc.decided())
                .any(|(o, a)| !o && !a);
            if !open || scanned > NEIGHBOUR_SCAN_LIMIT {
                return (acc, d);
            }
        }
    }
    (acc, usize::MAX)
}

/// The dialect [`BeadsFile::edit`] writes line `i` of `n` lines in, for a caller that
/// holds the lines without a parsed file: `line(j)` gives line `j`'s bytes when it is an
/// issue or record line (the lines that count as evidence), `None` for any other;
/// `scan(j, bytes)` is [`Evidence::scan`] of them (a caller editing many lines may keep
/// the results). Also returns how far the neighbours were looked at (see
/// [`BeadsFile::style_reach`]).
pub fn style_among<'b>(
    n: usize,
    line: impl Fn(usize) -> Option<&'b [u8]>,
    scan: impl FnMut(usize, &[u8]) -> Evidence,
    i: usize,
) -> Result<(LineStyle, usize), LineError> {
    let bytes = line(i).ok_or(LineError::NotAnObject { column: 1 })?;
    let layout = line::scan_object(bytes)?;
    let own = Evidence::scan(bytes);
    let mut reach = 0;
    let style = LineStyle::detect(bytes, &layout, |spaced| {
        let (evidence, d) = neighbour_evidence(n, &line, scan, i, spaced, &own);
        reach = d;
        evidence
    });
    Ok((style, reach))
}

/// The issue on one line (terminator excluded), keeping `detail` of it; `None` when the
/// line holds no readable issue.
pub(super) fn parse_issue_line(bytes: &[u8], detail: Detail) -> Option<Box<Issue>> {
    match with_detail(detail, || parse_bytes(bytes, None)) {
        Parsed::Issue(issue) => Some(issue),
        _ => None,
    }
}

/// Parses the lines of `buf`, split over `threads` threads, keeping `detail` of each
/// issue. Diagnostics are numbered by line and sorted; duplicate ids are not checked.
pub(super) fn parse_lines<T: ParsedLine>(
    buf: &Arc<dyn Source>,
    threads: NonZeroUsize,
    detail: Detail,
) -> (Vec<T>, Vec<Diagnostic>) {
    let len = buf.bytes().len();
    let chunks = chunk_bounds(buf.bytes(), threads.get());
    let parts: Vec<(Vec<T>, Vec<Diagnostic>)> = if chunks.len() == 1 {
        vec![parse_chunk(buf, 0..len, detail)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|r| {
                    let r = r.clone();
                    scope.spawn(move || parse_chunk(buf, r, detail))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(part) => part,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    let mut lines = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut diagnostics = Vec::new();
    for (part_lines, part_diags) in parts {
        let offset = lines.len();
        diagnostics.extend(part_diags.into_iter().map(|mut d| {
            d.line += offset;
            d
        }));
        lines.extend(part_lines);
    }
    (lines, diagnostics)
}

/// The id index of `n` lines (`issue_id(j)`: line `j`'s id when it is an issue line;
/// `id_of(j)`: the same for lines already indexed) and the ids on several lines, each
/// with every line index in file order.
pub(super) fn index_ids<'l>(
    n: usize,
    id_of: impl Fn(usize) -> &'l str + Copy,
    issue_id: impl Fn(usize) -> Option<&'l str>,
) -> (IdIndex, HashMap<String, Vec<usize>>) {
    let mut index = IdIndex::with_capacity(n);
    let mut duplicates: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..n {
        if let Some(id) = issue_id(i) {
            if let Some(prev) = index.insert(id, i, id_of) {
                duplicates
                    .entry(id.to_string())
                    .or_insert_with(|| vec![prev])
                    .push(i);
            }
        }
    }
    (index, duplicates)
}

/// Adds the warnings for `duplicates` (see [`index_ids`]) and sorts by line.
pub(super) fn add_duplicate_warnings(
    diagnostics: &mut Vec<Diagnostic>,
    duplicates: &HashMap<String, Vec<usize>>,
) {
    for (id, idxs) in duplicates {
        let lines: Vec<usize> = idxs.iter().map(|i| i + 1).collect();
        diagnostics.extend(duplicate_warnings(id, &lines));
    }
    diagnostics.sort_by_key(|d| d.line);
}

impl BeadsFile {
    /// Parses a whole file on one thread. Never fails: bad lines are kept verbatim and
    /// reported.
    pub fn parse(bytes: &[u8]) -> (BeadsFile, Vec<Diagnostic>) {
        BeadsFile::parse_owned(bytes.to_vec(), NonZeroUsize::MIN)
    }

    /// [`BeadsFile::parse`] without copying the input, and with the lines split over
    /// `threads` threads (the caller knows the machine; this crate does not ask it). The
    /// result does not depend on `threads`.
    pub fn parse_owned(bytes: Vec<u8>, threads: NonZeroUsize) -> (BeadsFile, Vec<Diagnostic>) {
        BeadsFile::parse_with(Arc::new(bytes), threads, Detail::Full)
    }

    /// [`BeadsFile::parse_owned`] for queries that never read the long free text: the
    /// typed issues have empty [`LEAN_TEXT_FIELDS`](super::issue::LEAN_TEXT_FIELDS) and
    /// comment texts (still type-checked, so the diagnostics are the same), which saves
    /// most of the allocation. [`BeadsFile::render`] and edits still see whole lines.
    pub fn parse_lean(bytes: Vec<u8>, threads: NonZeroUsize) -> (BeadsFile, Vec<Diagnostic>) {
        BeadsFile::parse_with(Arc::new(bytes), threads, Detail::Lean)
    }

    /// Whether the typed issues lack their free text (see [`BeadsFile::parse_lean`]).
    pub fn is_lean(&self) -> bool {
        self.lean
    }
}

impl BeadsFile<Skimmed> {
    /// A file whose issue lines keep only their [`Skimmed`] facts (see
    /// [`super::skim`]): for a writer over a large backlog, which needs every issue's
    /// graph facts but the full record only of the lines it edits ([`BeadsFile::get_full`]
    /// reads those from their lines). The diagnostics are [`BeadsFile::parse`]'s.
    pub fn parse_skim_source(
        source: Arc<dyn Source>,
        threads: NonZeroUsize,
    ) -> (BeadsFile<Skimmed>, Vec<Diagnostic>) {
        BeadsFile::parse_with(source, threads, Detail::Skim)
    }

    /// [`BeadsFile::parse_skim_source`] of bytes in memory.
    pub fn parse_skim(bytes: Vec<u8>) -> (BeadsFile<Skimmed>, Vec<Diagnostic>) {
        BeadsFile::parse_with(Arc::new(bytes), NonZeroUsize::MIN, Detail::Skim)
    }
}

impl<N: Record> BeadsFile<N> {
    fn parse_with(
        buf: Arc<dyn Source>,
        threads: NonZeroUsize,
        detail: Detail,
    ) -> (BeadsFile<N>, Vec<Diagnostic>) {
        let (lines, mut diagnostics) = parse_lines(&buf, threads, detail);
        let mut file = BeadsFile {
            lines,
            index: IdIndex::default(),
            duplicates: HashMap::new(),
            lean: detail != Detail::Full,
            edits_used_escaping: false,
        };
        file.rebuild_index();
        add_duplicate_warnings(&mut diagnostics, &file.duplicates);
        (file, diagnostics)
    }

    /// The line of the issue in effect for `id`.
    fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id, |j| id_at(&self.lines, j))
    }

    fn rebuild_index(&mut self) {
        let lines = &self.lines;
        (self.index, self.duplicates) = index_ids(
            lines.len(),
            |j| id_at(lines, j),
            |j| lines[j].issue().map(|i| i.id()),
        );
    }

    /// The file's bytes: every line and terminator as read or edited.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.lines.iter().map(|l| l.bytes().len() + 2).sum();
        let mut out = Vec::with_capacity(len);
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Writes [`BeadsFile::to_bytes`] to `w` without building it: runs of lines that are
    /// still where they were in the buffer they were read from (every line but the edited
    /// and inserted ones) go out as one slice each, so a one-line edit of a huge file is a
    /// handful of writes and no copy.
    pub fn write_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        // The pending run: a buffer and a byte range of it, terminators included.
        let mut run: Option<(&Arc<dyn Source>, usize, usize)> = None;
        for l in &self.lines {
            let term = l.ending.as_bytes();
            if let Bytes::Shared { buf, start, end } = &l.bytes {
                // The terminator must still be the one that follows the line in the buffer
                // (an insert after a last line without newline gives that line one).
                if buf.bytes().get(*end..*end + term.len()) == Some(term) {
                    let next = *end + term.len();
                    match &mut run {
                        Some((b, _, e)) if Arc::ptr_eq(b, buf) && *e == *start => *e = next,
                        _ => {
                            if let Some((b, s, e)) = run.replace((buf, *start, next)) {
                                write_shared(w, b, s..e)?;
                            }
                        }
                    }
                    // Written in blocks, so a source hears early what it may release
                    // (checking the terminators reads every page).
                    if let Some((b, s, e)) = run {
                        if e - s >= PARSE_BLOCK {
                            write_shared(w, b, s..e)?;
                            run = None;
                        }
                    }
                    continue;
                }
            }
            if let Some((b, s, e)) = run.take() {
                write_shared(w, b, s..e)?;
            }
            w.write_all(l.bytes())?;
            w.write_all(term)?;
        }
        if let Some((b, s, e)) = run {
            write_shared(w, b, s..e)?;
        }
        Ok(())
    }

    /// All lines, in file order.
    pub fn lines(&self) -> &[Line<N>] {
        &self.lines
    }

    /// The issues in effect, in file order: for a duplicated id only its last line.
    /// Tombstones are included; hiding them is the semantics' job.
    pub fn issues(&self) -> impl Iterator<Item = &N> + '_ {
        self.lines
            .iter()
            .enumerate()
            .filter_map(move |(i, l)| match &l.kind {
                LineKind::Issue(issue)
                    if self.duplicates.is_empty() || self.index_of(issue.id()) == Some(i) =>
                {
                    Some(&**issue)
                }
                _ => None,
            })
    }

    /// The issue in effect for `id` (its last occurrence). In a lean file (see
    /// [`BeadsFile::parse_lean`]) its free text is empty; [`BeadsFile::get_full`] has it.
    pub fn get(&self, id: &str) -> Option<&N> {
        self.index_of(id).and_then(|i| self.lines[i].issue())
    }

    /// The issue in effect for `id` with every field, also in a lean file.
    pub fn get_full(&self, id: &str) -> Option<Issue> {
        let i = self.index_of(id)?;
        let line = &self.lines[i];
        let issue = line.issue()?;
        if let (false, Some(full)) = (self.lean, issue.as_issue()) {
            return Some(full.clone());
        }
        let full = parse_bytes(line.bytes(), None);
        line.done_with();
        match full {
            Parsed::Issue(full) => Some(*full),
            _ => issue.as_issue().cloned(),
        }
    }

    /// The lines of the issues in effect for `ids` (those present), parsed in full into
    /// one file in file order: a typed view of a few issues of a skimmed or lean file.
    pub fn typed_lines(&self, ids: &[&str]) -> BeadsFile {
        let mut js: Vec<usize> = ids.iter().filter_map(|id| self.index_of(id)).collect();
        js.sort_unstable();
        js.dedup();
        let mut bytes = Vec::new();
        for j in js {
            bytes.extend_from_slice(self.lines[j].bytes());
            self.lines[j].done_with();
            bytes.push(b'\n');
        }
        BeadsFile::parse_owned(bytes, NonZeroUsize::MIN).0
    }

    /// Line `i`'s bytes (0-based) read again without keeping them mapped in (see
    /// [`Source::copy_range`]): for a pass that reads every line once more.
    pub fn line_copy(&self, i: usize) -> std::io::Result<Vec<u8>> {
        match &self
            .lines
            .get(i)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?
            .bytes
        {
            Bytes::Shared { buf, start, end } => buf.copy_range(*start..*end),
            Bytes::Owned(v) => Ok(v.clone()),
        }
    }

    /// 1-based line number of the issue in effect for `id`.
    pub fn line_of(&self, id: &str) -> Option<usize> {
        self.index_of(id).map(|i| i + 1)
    }

    /// Ids on more than one line, with every (1-based) line number, in no fixed order.
    pub fn duplicates(&self) -> impl Iterator<Item = (&str, Vec<usize>)> + '_ {
        self.duplicates
            .iter()
            .map(|(id, idxs)| (id.as_str(), idxs.iter().map(|i| i + 1).collect()))
    }

    /// Every line's shape, in file order.
    pub fn shapes(&self) -> impl Iterator<Item = LineShape<'_>> + '_ {
        self.lines.iter().map(|l| LineShape {
            len: l.bytes().len(),
            ending: l.ending,
            id: l.issue().map(|i| i.id()),
            tombstone: l
                .issue()
                .is_some_and(|i| i.status_kind() == StatusKind::Tombstone),
        })
    }

    /// The issue as bd-shaped JSON for tools, with its line's unknown keys.
    pub fn render(&self, id: &str) -> Option<Value> {
        let i = self.index_of(id)?;
        let line = &self.lines[i];
        let issue = line.issue()?;
        // A lean view lacks the free text; the line has it.
        let full = match (self.lean, issue.as_issue()) {
            (false, Some(_)) => None,
            _ => Some(parse_bytes(line.bytes(), None)),
        };
        let rendered = match (&full, issue.as_issue()) {
            (Some(Parsed::Issue(full)), _) => render_issue_with_line(full, line.bytes()),
            (_, Some(issue)) => render_issue_with_line(issue, line.bytes()),
            _ => return None,
        };
        line.done_with();
        Some(rendered)
    }

    /// The index of the single line holding `id`, or why there is none.
    fn locate(&self, id: &str) -> Result<usize, EditError> {
        if let Some(idxs) = self.duplicates.get(id) {
            return Err(EditError::Duplicate {
                id: id.to_string(),
                lines: idxs.iter().map(|i| i + 1).collect(),
            });
        }
        self.index_of(id)
            .ok_or_else(|| EditError::NotFound { id: id.to_string() })
    }

    /// The lines an edit reads for escaping evidence: issue and record lines.
    fn evidence_line(&self, j: usize) -> Option<&[u8]> {
        let l = self.lines.get(j)?;
        matches!(l.kind, LineKind::Issue(_) | LineKind::Record(_)).then(|| l.bytes())
    }

    /// The dialect of line `i`: its own, with neighbouring lines of the same separator
    /// style filling in what the line itself does not show. Also returns how far the
    /// neighbours were looked at (0: not at all; see [`neighbour_evidence`]).
    fn style_of(&self, i: usize) -> Result<(LineStyle, usize), LineError> {
        style_among(
            self.lines.len(),
            |j| self.evidence_line(j),
            |_, b| Evidence::scan(b),
            i,
        )
    }

    /// How many lines before and after the line of issue `id` an edit of it reads to
    /// choose its dialect (`usize::MAX`: up to both ends of the file), so that a caller
    /// holding only a window of a file can tell whether an edit made in the window is the
    /// one the whole file would get. `None` when the id has no single readable line.
    pub fn style_reach(&self, id: &str) -> Option<usize> {
        let i = self.locate(id).ok()?;
        self.style_of(i).ok().map(|(_, reach)| reach)
    }

    /// Whether any [`BeadsFile::edit`] since parsing wrote a value whose bytes depend on
    /// the escaping dialect. When none did, the neighbours an edit read for escaping
    /// evidence (see [`BeadsFile::style_reach`]) cannot have changed its result.
    pub fn edits_used_escaping(&self) -> bool {
        self.edits_used_escaping
    }

    /// Applies `f` to the line of issue `id` and re-derives its typed view. Only that
    /// line changes. Refused (file unchanged) when the id is absent or on several lines,
    /// when `f` fails, or when the result would no longer be a readable issue line.
    pub fn edit<F>(&mut self, id: &str, f: F) -> Result<Edited, EditError>
    where
        F: FnOnce(&mut LineEditor) -> Result<(), LineError>,
    {
        let i = self.locate(id)?;
        let line_err = |source| EditError::Line {
            id: id.to_string(),
            line: i + 1,
            source,
        };
        let (style, _) = self.style_of(i).map_err(line_err)?;
        let mut editor = LineEditor::new(self.lines[i].bytes().to_vec(), style);
        f(&mut editor).map_err(line_err)?;
        let used_escaping = editor.used_escaping();
        let bytes = editor.into_bytes();
        if bytes == self.lines[i].bytes() {
            return Ok(Edited {
                line: i + 1,
                changed: false,
            });
        }
        let invalid = |message: String| EditError::Invalid {
            id: id.to_string(),
            line: i + 1,
            message,
        };
        let issue = match parse_bytes(&bytes, None) {
            Parsed::Issue(issue) => issue,
            Parsed::Invalid(_, message) => return Err(invalid(message)),
            Parsed::Blank | Parsed::Record(_) => {
                return Err(invalid("it is no longer an issue record".into()))
            }
        };
        if issue.id != id {
            if let Some(other) = self.index_of(&issue.id) {
                return Err(EditError::AlreadyExists {
                    id: issue.id,
                    line: other + 1,
                });
            }
        }
        let renamed = issue.id != id;
        self.lines[i].bytes = Bytes::Owned(bytes);
        self.lines[i].kind = LineKind::Issue(N::from_issue(issue));
        self.edits_used_escaping |= used_escaping;
        if renamed {
            self.rebuild_index();
        }
        Ok(Edited {
            line: i + 1,
            changed: true,
        })
    }

    /// The terminator new lines get: the file's first, else `\n`.
    fn default_ending(&self) -> LineEnding {
        self.lines
            .iter()
            .map(|l| l.ending)
            .find(|e| *e != LineEnding::None)
            .unwrap_or(LineEnding::Lf)
    }

    /// Inserts a new issue as one classic-bd line (see [`NewIssue::to_line`]) before the
    /// first issue line whose id sorts after it (byte-wise, as classic bd sorts), else
    /// after the last issue line. Returns its 1-based line number.
    pub fn insert(&mut self, new: &NewIssue) -> Result<usize, EditError> {
        self.insert_line(&new.id, new.to_line())
    }

    /// Inserts an issue given as a JSON object (e.g. one read from another file): keys in
    /// bd order, written as classic bd writes (see [`BeadsFile::insert`] for placement).
    pub fn insert_map(&mut self, map: serde_json::Map<String, Value>) -> Result<usize, EditError> {
        let line = NewLine::of_map(map);
        self.insert_line(&line.id, line.bytes)
    }

    /// [`BeadsFile::insert_map`] of many issues at once, in one pass over the file: the
    /// lines end up where inserting them one by one (in any order) puts them, each before
    /// the first issue line already in the file whose id sorts after it, new lines with the
    /// same place in id order. Refused as a whole (file unchanged) if one would be refused
    /// alone, or if two share an id.
    pub fn insert_lines(&mut self, lines: Vec<NewLine>) -> Result<(), EditError> {
        let mut new: Vec<(String, Vec<u8>, Box<N>)> = Vec::with_capacity(lines.len());
        for NewLine { id, bytes } in lines {
            let issue = self.new_issue_line(&id, &bytes)?;
            new.push((id, bytes, N::from_issue(issue)));
        }
        new.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some(w) = new.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EditError::Invalid {
                id: w[0].0.clone(),
                line: 0,
                message: "it is given twice".into(),
            });
        }
        let ids: Vec<&str> = new.iter().map(|(id, _, _)| id.as_str()).collect();
        let places = self.places(&ids);
        let ending = self.default_ending();
        let old = std::mem::take(&mut self.lines);
        let mut lines = Vec::with_capacity(old.len() + new.len());
        let mut new = new.into_iter().zip(places).peekable();
        for (j, l) in old.into_iter().enumerate() {
            while let Some(((_, bytes, issue), _)) = new.next_if(|(_, at)| *at == j) {
                lines.push(Line {
                    bytes: Bytes::Owned(bytes),
                    ending,
                    kind: LineKind::Issue(issue),
                });
            }
            lines.push(l);
        }
        let appended = lines.len();
        for ((_, bytes, issue), _) in new {
            lines.push(Line {
                bytes: Bytes::Owned(bytes),
                ending,
                kind: LineKind::Issue(issue),
            });
        }
        if appended > 0 && appended < lines.len() && lines[appended - 1].ending == LineEnding::None
        {
            // Appending after a last line without a newline: it gets one, and the new
            // last line keeps the file's missing final newline.
            lines[appended - 1].ending = ending;
            if let Some(last) = lines.last_mut() {
                last.ending = LineEnding::None;
            }
        }
        self.lines = lines;
        self.rebuild_index();
        Ok(())
    }

    /// The issue of a new line `bytes` for `id`, or why it cannot be inserted.
    fn new_issue_line(&self, id: &str, bytes: &[u8]) -> Result<Box<Issue>, EditError> {
        if let Some(i) = self.index_of(id) {
            return Err(EditError::AlreadyExists {
                id: id.to_string(),
                line: i + 1,
            });
        }
        let invalid = |message: String| EditError::Invalid {
            id: id.to_string(),
            line: 0,
            message,
        };
        match parse_bytes(bytes, None) {
            Parsed::Issue(issue) => Ok(issue),
            Parsed::Invalid(_, message) => Err(invalid(message)),
            Parsed::Blank | Parsed::Record(_) => Err(invalid("it is not an issue record".into())),
        }
    }

    /// Where new lines for `ids` go: each before the first issue line whose id sorts after
    /// it (byte-wise, as classic bd sorts), else after the last issue line, else at the
    /// end. The first line whose id sorts after x is the first whose running maximum id
    /// does: one pass, then a binary search over the (non-decreasing) running maxima.
    fn places(&self, ids: &[&str]) -> Vec<usize> {
        let mut running: Vec<(usize, &str)> = Vec::new();
        for (j, l) in self.lines.iter().enumerate() {
            if let Some(i) = l.issue() {
                if running
                    .last()
                    .is_none_or(|(_, m)| i.id().as_bytes() > m.as_bytes())
                {
                    running.push((j, i.id()));
                }
            }
        }
        let last_issue = self.lines.iter().rposition(|l| l.issue().is_some());
        ids.iter()
            .map(|id| {
                let k = running.partition_point(|(_, m)| m.as_bytes() <= id.as_bytes());
                match (running.get(k), last_issue) {
                    (Some(&(j, _)), _) => j,
                    (None, Some(j)) => j + 1,
                    (None, None) => self.lines.len(),
                }
            })
            .collect()
    }

    fn insert_line(&mut self, id: &str, bytes: Vec<u8>) -> Result<usize, EditError> {
        let new_id = id;
        let issue = self.new_issue_line(new_id, &bytes)?;
        let ending = self.default_ending();
        let at = self.places(&[new_id])[0];
        let mut new_line = Line {
            bytes: Bytes::Owned(bytes),
            ending,
            kind: LineKind::Issue(N::from_issue(issue)),
        };
        if at > 0 && self.lines[at - 1].ending == LineEnding::None {
            // Appending after a last line without a newline: it gets one, and the new last
            // line keeps the file's missing final newline.
            self.lines[at - 1].ending = ending;
            new_line.ending = LineEnding::None;
        }
        self.lines.insert(at, new_line);
        self.index.shift_from(at);
        for idxs in self.duplicates.values_mut() {
            for i in idxs.iter_mut().filter(|i| **i >= at) {
                *i += 1;
            }
        }
        let lines = &self.lines;
        self.index.insert(new_id, at, |j| id_at(lines, j));
        Ok(at + 1)
    }
}
