//! The `spool` binary: see `spool --help`.
fn main() {
    restore_sigpipe();
    std::process::exit(spool::cli::main());
}

/// Rust ignores SIGPIPE, which turns `spool list | head` into a write error (or a panic in
/// `println!`). Command-line tools die quietly instead, as `cat` does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: called first thing in main, before any other thread exists; installing the
    // default disposition has no handler code that could run concurrently.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
}

/// Loading a backlog makes hundreds of thousands of small allocations on several
/// threads; mimalloc serves them markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
