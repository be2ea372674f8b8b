//! spool, the application: the IO-performing modules around `spool-core` — the backlog
//! on disk, process execution, the command line. The `spool` binary is a thin shell over
//! this crate.
pub mod atomic;
pub mod backlog;
pub mod cache;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod exec;
pub mod git;
pub mod gitconfig;
pub mod mapped;
pub mod schedule_edit;
pub mod state_file;
pub mod store;
pub mod sync;
pub mod synth;
pub mod workspace;
pub mod write_index;
