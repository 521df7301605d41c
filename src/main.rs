use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keysmith::cli::Cli::parse().run().await
}
