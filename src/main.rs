//! The `spool` binary.
fn main() {
    println!("spool {}", env!("CARGO_PKG_VERSION"));
}
