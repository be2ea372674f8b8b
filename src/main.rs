//! The `spool` binary: see `spool --help`.
fn main() {
    std::process::exit(spool::cli::main());
}
