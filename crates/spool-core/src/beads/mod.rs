//! The Beads backlog: `.beads/issues.jsonl` as data.
//!
//! - [`issue`]: the typed view of one record that the semantics read.
pub mod issue;

pub use issue::{
    canonical_dep_type, Comment, CommentId, DepKind, Dependency, Issue, StatusKind, Timestamp,
    NON_WORK_TYPES,
};
