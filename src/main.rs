use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    taskapi::cli::run(taskapi::cli::Cli::parse()).await
}
