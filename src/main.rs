use clap::Parser;

/// mimalloc returns freed memory to the OS promptly and keeps no per-thread arenas of
/// stale pages: with glibc, each 19 MiB argon2 buffer freed on a blocking-pool thread
/// stayed resident, and RSS grew by hundreds of MB under a login load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    taskapi::cli::run(taskapi::cli::Cli::parse()).await
}
