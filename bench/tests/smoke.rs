//! The harness must not rot: a short run at low concurrency (wrk against Tessera in-process),
//! every scenario, no errors, and a table with every row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tessera_bench::{Options, Target, markdown, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_measures_every_scenario_without_errors() {
    let options =
        Options { duration: Duration::from_secs(1), connections: 4, warmup: Duration::ZERO, target: Target::InProcess, only: Vec::new() };

    let report = run(&options).await.unwrap();

    let table = markdown(&report, &options);
    println!("{table}");
    assert_eq!(report.rows.len(), 9);
    for row in &report.rows {
        assert_eq!(row.outcome.errors, 0, "{}", row.scenario);
        assert!(row.outcome.requests > 0, "{}", row.scenario);
    }
    assert!(report.ceilings.argon2_per_sec > 0.0 && report.ceilings.sign_per_sec > 0.0);
    assert!(table.contains("client_credentials") && table.contains("| scenario |"));
    assert!(table.contains("`GET /login`") && table.contains("code flow"));
}
