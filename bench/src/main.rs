//! `tessera-bench [--duration SECS] [--connections N] [--binary PATH] [--only NAME,NAME]`:
//! prints the table. Names: client-credentials, verify, introspect, refresh, login-page,
//! code-flow, login.

use std::time::Duration;
use tessera_bench::{Options, Scenario, Target, markdown, run};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(arg("--duration").map_or(Ok(10.0), |s| s.parse())?);
    let connections = arg("--connections").map_or(Ok(64), |s| s.parse())?;
    let binary = arg("--binary").unwrap_or_else(|| "target/release/tessera".into());
    let only = match arg("--only") {
        None => Vec::new(),
        Some(names) => names
            .split(',')
            .map(|n| Scenario::named(n.trim()).ok_or_else(|| anyhow::anyhow!("no scenario named {n:?}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let options =
        Options { duration, connections, warmup: Duration::from_secs(1).min(duration), target: Target::Binary(binary.into()), only };
    let report = run(&options).await?;
    println!("{}", markdown(&report, &options));
    Ok(())
}
