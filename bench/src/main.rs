//! `tessera-bench [--duration SECS] [--connections N] [--binary PATH]`: prints the table.

use std::time::Duration;
use tessera_bench::{Options, Target, markdown, run};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(arg("--duration").map_or(Ok(10.0), |s| s.parse())?);
    let connections = arg("--connections").map_or(Ok(64), |s| s.parse())?;
    let binary = arg("--binary").unwrap_or_else(|| "target/release/tessera".into());
    let options = Options { duration, connections, warmup: Duration::from_secs(1).min(duration), target: Target::Binary(binary.into()) };
    let report = run(&options).await?;
    println!("{}", markdown(&report, &options));
    Ok(())
}
