//! The Beads backlog: `.beads/issues.jsonl` as data.
//!
//! - [`issue`]: the typed view of one record that the semantics read.
//! - [`graph`]: the dependency graph: blocked state, cycles, trees, counts.
//! - [`ready`]: the ready query (filters, sorts, limit) and its explanation.
//! - [`ids`]: hash ids, child ids, prefixes, partial-id resolution.
//! - [`stats`]: backlog statistics (`stats`/`status`).
pub mod graph;
pub mod ids;
pub mod issue;
pub mod ready;
pub mod stats;

pub use issue::{
    canonical_dep_type, Comment, CommentId, DepKind, Dependency, Issue, StatusKind, Timestamp,
    NON_WORK_TYPES,
};
