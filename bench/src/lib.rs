//! The load harness behind `BENCHMARKS.md`.
//!
//! It starts Tessera (the release binary as its own process, or in-process for the smoke
//! test) on a fresh SQLite file with its own admin and client, warms up, runs each scenario
//! for a fixed time at a fixed number of connections with `wrk`, and records requests per
//! second, p50/p99 latency, errors and the server's memory. In the same run it measures the
//! ceilings the figures are compared with: the bare argon2 rate and the bare ES256
//! sign/verify rate on this machine.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod ceilings;
mod load;
mod server;

pub use ceilings::Ceilings;
pub use load::{Outcome, Scenario};
pub use server::{Endpoint, Server, Target};

use std::time::Duration;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long each scenario runs.
    pub duration: Duration,
    /// Concurrent connections per scenario.
    pub connections: usize,
    /// Warm-up before each scenario.
    pub warmup: Duration,
    /// What to measure.
    pub target: Target,
    /// The scenarios to run; all when empty. The two rows of verify alongside logins come
    /// with `login`.
    pub only: Vec<Scenario>,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub outcome: Outcome,
    /// The ceiling this figure is compared with, and its rate.
    pub ceiling: Option<(&'static str, f64)>,
    /// The server's resident memory right after the scenario.
    pub rss_after_kib: Option<u64>,
    /// The server's CPU time per answered request during the measured part (not the
    /// warm-up), in microseconds; none in-process.
    pub cpu_us_per_request: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: Vec<Row>,
    pub ceilings: Ceilings,
    pub startup: Duration,
    pub idle_rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub verify_p99_under_login_load: Option<Duration>,
}

/// Runs every scenario.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let ceiling_time = Duration::from_millis(if options.duration < Duration::from_secs(3) { 300 } else { 2000 });
    let ceilings = ceilings::measure(ceiling_time)?;
    let server = Server::start(&options.target).await?;
    let startup = server.startup;
    let idle_rss_kib = server.rss_kib();
    let fixtures = load::Fixtures::prepare(&server.endpoint).await?;
    let mut rows = Vec::new();
    // Measured again just before the logins: on a shared machine the cores' speed drifts
    // within a run, and the login ratio is only meaningful against its neighbour in time.
    let mut argon2_now = ceilings.argon2_per_sec;
    let chosen = |s: &Scenario| options.only.is_empty() || options.only.contains(s);
    for scenario in Scenario::ALL.into_iter().filter(chosen) {
        if scenario == Scenario::Login {
            argon2_now = ceilings::argon2_per_sec(ceiling_time)?;
        }
        load::warm_up(&server.endpoint, &fixtures, scenario, options).await?;
        let (outcome, cpu_us_per_request) = measured(&server, load::measure(&server.endpoint, &fixtures, scenario, options)).await?;
        let ceiling = match scenario {
            Scenario::ClientCredentials | Scenario::Refresh => Some(("ES256 sign", ceilings.sign_per_sec)),
            Scenario::Verify | Scenario::Introspect => Some(("ES256 verify", ceilings.verify_per_sec)),
            Scenario::Login => Some(("argon2id", argon2_now)),
            Scenario::LoginPage | Scenario::CodeFlow => None,
        };
        rows.push(Row { scenario: scenario.label().to_owned(), outcome, ceiling, rss_after_kib: server.rss_kib(), cpu_us_per_request });
    }
    let mut verify_p99_under_login_load = None;
    if chosen(&Scenario::Login) {
        let (logins, verifies) = load::verify_during_logins(&server.endpoint, &fixtures, options).await?;
        let rss_after_kib = server.rss_kib();
        rows.push(Row {
            scenario: "`POST /v1/auth/login` with verify alongside".into(),
            outcome: logins,
            ceiling: Some(("argon2id", argon2_now)),
            rss_after_kib,
            cpu_us_per_request: None,
        });
        verify_p99_under_login_load = Some(verifies.p99);
        rows.push(Row {
            scenario: "`GET /v1/auth/verify` while logins saturate hashing".into(),
            outcome: verifies,
            ceiling: None,
            rss_after_kib,
            cpu_us_per_request: None,
        });
    }
    let peak_rss_kib = server.peak_rss_kib();
    server.stop().await;
    Ok(Report { rows, ceilings, startup, idle_rss_kib, peak_rss_kib, verify_p99_under_login_load })
}

/// Runs `load` and divides the server CPU it used by the requests answered.
async fn measured(
    server: &Server,
    load: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> anyhow::Result<(Outcome, Option<f64>)> {
    let before = server.cpu_time();
    let outcome = load.await?;
    let per_request = match (before, server.cpu_time()) {
        (Some(b), Some(a)) if outcome.requests > 0 => Some((a - b).as_secs_f64() * 1e6 / outcome.requests as f64),
        _ => None,
    };
    Ok((outcome, per_request))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The report as one Markdown table and a few lines under it.
pub fn markdown(report: &Report, options: &Options) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} connections, {} s per scenario, SQLite, ES256, load generator on the same machine.\n\n",
        options.connections,
        options.duration.as_secs_f64()
    ));
    out.push_str("| scenario | req/s | p50 | p99 | errors | ceiling (same run) | ratio | server CPU per request | server RSS after |\n|---|---:|---:|---:|---:|---|---:|---:|---:|\n");
    let kib = |k: Option<u64>| k.map_or("n/a (in-process)".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    for row in &report.rows {
        let o = &row.outcome;
        let (ceiling, ratio) = match row.ceiling {
            Some((name, rate)) => (format!("{name} {rate:.0}/s"), format!("{:.2}", o.per_sec / rate)),
            None => ("—".into(), "—".into()),
        };
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            o.per_sec,
            ms(o.p50),
            ms(o.p99),
            o.errors,
            ceiling,
            ratio,
            row.cpu_us_per_request.map_or("—".to_owned(), |us| format!("{us:.0} µs")),
            kib(row.rss_after_kib)
        ));
    }
    out.push_str(&format!(
        "\nStart-up to ready on a new SQLite file: {}. Server memory: idle {}, peak {}.\n",
        ms(report.startup),
        kib(report.idle_rss_kib),
        kib(report.peak_rss_kib)
    ));
    out.push_str(&format!(
        "Ceilings measured in this run on all cores: argon2id (19456 KiB, t=2, p=1, memory reused) {:.0}/s at the start and again just before the login rows; ES256 sign {:.0}/s, verify {:.0}/s.\n",
        report.ceilings.argon2_per_sec, report.ceilings.sign_per_sec, report.ceilings.verify_per_sec
    ));
    out
}
