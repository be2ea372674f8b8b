//! spool's pure core.
//!
//! Architecture invariant: nothing in this crate does IO, reads the clock or draws
//! randomness. Time, ids and random seeds are arguments. Parse problems are data
//! (diagnostics), not panics.
pub mod beads;
pub mod schedule;
pub mod template;
pub mod template_vars;
pub mod workflow;
