//! The Beads backlog: `.beads/issues.jsonl` as data.
//!
//! - [`issue`]: the typed view of one record that the semantics read.
//! - [`file`]: the whole file, byte for byte: parse with diagnostics, edit in place,
//!   insert new issues.
//! - [`edit`]: field-level edits of one issue line in that line's dialect.
//! - [`line`]: pure byte-range edit primitives on one JSON line.
//! - [`write`]: records as classic bd writes them; bd-shaped JSON for tools.
//! - [`json`]: JSON text in the escaping/separator dialects of real files.
//! - [`merge`]: three-way merge of backlog files (git's merge driver), conflict-marker resolution.
//! - [`ops`]: bd's edit semantics (claim, close, reopen, …) on one line.
//! - [`node`]: what the graph reads of an issue; the compact `Skimmed` record.
//! - [`graph`]: the dependency graph: blocked state, cycles, trees, counts.
//! - [`ready`]: the ready query (filters, sorts, limit) and its explanation.
//! - [`skim`]: a backlog read for its graph only (compact records, lines parsed on demand).
//! - [`ids`]: hash ids, child ids, prefixes, partial-id resolution.
//! - [`stats`]: backlog statistics (`stats`/`status`).
pub mod edit;
pub mod file;
pub mod graph;
mod id_index;
pub mod ids;
pub mod issue;
pub mod json;
pub mod lease;
pub mod line;
pub mod merge;
pub mod node;
pub mod ops;
pub mod ready;
pub mod skim;
pub mod stats;
pub mod write;

pub use edit::LineEditor;
pub use file::{
    duplicate_warnings, BeadsFile, Diagnostic, DiagnosticKind, EditError, Edited, Line, LineEnding,
    LineKind, LineShape, NewLine, RecordKind, Severity, Source,
};
pub use issue::{
    canonical_dep_type, Comment, CommentId, DepKind, Dependency, Issue, StatusKind, Timestamp,
    NON_WORK_TYPES,
};
pub use line::LineError;
pub use write::{
    render_issue, render_issue_with_line, NewComment, NewDependency, NewIssue, BD_KEY_ORDER,
};
