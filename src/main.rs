//! The `humint` binary: everything lives in the library; this only hands over to the CLI.

/// mimalloc instead of glibc's malloc: faster on the request path and it returns freed memory
/// (Argon2id's 19 MiB blocks among others) instead of keeping it in per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    humint::cli::main()
}
