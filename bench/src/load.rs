//! Driving load: one task per connection, each sending its scenario's request back to back
//! until the deadline, recording every latency.

use crate::Options;
use crate::server::{Endpoint, PASSWORD};
use reqwest::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    ClientCredentials,
    Verify,
    Introspect,
    Refresh,
    Login,
}

impl Scenario {
    /// The table's name for it.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "`POST /oauth2/token` client_credentials",
            Scenario::Verify => "`GET /v1/auth/verify`",
            Scenario::Introspect => "`POST /oauth2/introspect`",
            Scenario::Refresh => "`POST /v1/auth/refresh` (rotation)",
            Scenario::Login => "`POST /v1/auth/login`",
        }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Accounts and tokens made before the clock starts.
#[derive(Debug)]
pub struct Fixtures {
    access_token: String,
    /// One refresh-token chain per connection, in a mutex each task owns by index.
    refresh_tokens: Vec<std::sync::Mutex<String>>,
}

impl Fixtures {
    /// Logs the admin in once per connection (each login starts its own session).
    pub async fn prepare(server: &Endpoint, connections: usize) -> anyhow::Result<Arc<Fixtures>> {
        let http = Client::new();
        let mut refresh_tokens = Vec::with_capacity(connections);
        let mut access_token = String::new();
        for _ in 0..connections.max(1) {
            let body: Value = http
                .post(format!("{}/v1/auth/login", server.base))
                .json(&json!({ "email": server.admin_email, "password": PASSWORD }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            access_token = body["access_token"].as_str().unwrap_or_default().to_owned();
            refresh_tokens.push(std::sync::Mutex::new(body["refresh_token"].as_str().unwrap_or_default().to_owned()));
        }
        Ok(Arc::new(Fixtures { access_token, refresh_tokens }))
    }
}

async fn once(http: &Client, server: &Endpoint, fixtures: &Fixtures, scenario: Scenario, conn: usize) -> bool {
    let base = &server.base;
    let sent = match scenario {
        Scenario::ClientCredentials => http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(&server.client_id, Some(&server.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await,
        Scenario::Verify => http.get(format!("{base}/v1/auth/verify")).bearer_auth(&fixtures.access_token).send().await,
        Scenario::Introspect => http
            .post(format!("{base}/oauth2/introspect"))
            .basic_auth(&server.client_id, Some(&server.client_secret))
            .form(&[("token", fixtures.access_token.as_str())])
            .send()
            .await,
        Scenario::Login => http
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({ "email": server.admin_email, "password": PASSWORD }))
            .send()
            .await,
        Scenario::Refresh => {
            let slot = &fixtures.refresh_tokens[conn % fixtures.refresh_tokens.len()];
            let current = slot.lock().map(|t| t.clone()).unwrap_or_default();
            let res = http.post(format!("{base}/v1/auth/refresh")).json(&json!({ "refresh_token": current })).send().await;
            match res {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or_default();
                    if let (Some(next), Ok(mut slot)) = (body["refresh_token"].as_str(), slot.lock()) {
                        *slot = next.to_owned();
                        return true;
                    }
                    return false;
                }
                _ => return false,
            }
        }
    };
    match sent {
        Ok(res) => {
            let ok = res.status().is_success();
            let _ = res.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// Runs `scenario` on `connections` connections for `duration` (after a warm-up).
async fn drive(server: &Arc<Endpoint>, fixtures: &Arc<Fixtures>, scenario: Scenario, connections: usize, duration: Duration, warmup: Duration) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let measure_from = started + warmup;
    let deadline = measure_from + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|conn| {
            let (server, fixtures) = (server.clone(), fixtures.clone());
            tokio::spawn(async move {
                let http = Client::builder().pool_max_idle_per_host(1).build().unwrap_or_default();
                let mut latencies = Vec::with_capacity(16_384);
                let mut errors = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    let ok = once(&http, &server, &fixtures, scenario, conn).await;
                    if t0 >= measure_from {
                        latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                        errors += u64::from(!ok);
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await?;
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    let pick = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(Outcome {
        requests: all.len() as u64,
        errors,
        per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50: Duration::from_micros(u64::from(pick(0.50))),
        p99: Duration::from_micros(u64::from(pick(0.99))),
    })
}

/// Runs one scenario with the options' connections and duration.
pub async fn run(server: &Arc<Endpoint>, fixtures: &Arc<Fixtures>, scenario: Scenario, options: &Options) -> anyhow::Result<Outcome> {
    drive(server, fixtures, scenario, options.connections, options.duration, options.warmup).await
}

/// Logins on every connection and verifies on a few more, at the same time.
pub async fn verify_during_logins(server: &Arc<Endpoint>, fixtures: &Arc<Fixtures>, options: &Options) -> anyhow::Result<(Outcome, Outcome)> {
    let verifiers = (options.connections / 8).max(1);
    let (logins, verifies) = tokio::join!(
        drive(server, fixtures, Scenario::Login, options.connections, options.duration, options.warmup),
        drive(server, fixtures, Scenario::Verify, verifiers, options.duration, options.warmup),
    );
    Ok((logins?, verifies?))
}
