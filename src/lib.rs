//! spool's application library: the IO-performing modules around `spool-core`.
//! The `spool` binary is a thin command line over this crate.
pub mod engine;
pub mod store;
