//! The binary: runs the command line (`cli`) on a multi-threaded runtime.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(taskapi::cli::run(taskapi::cli::Cli::parse()))
}
