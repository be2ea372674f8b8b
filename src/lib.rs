//! spool, the application: the backlog on disk, the command line, and (in time) the
//! engine, process execution, git integration and the daemon. Pure logic lives in
//! `spool-core`.
pub mod atomic;
pub mod cli;
pub mod gitconfig;
pub mod workspace;

