//! Driving load with `wrk`, a C load generator, one process per scenario.
//!
//! The generator shares the machine's two cores with the server, so its own cost shows up in
//! every figure: a generator built on reqwest held the token endpoint at ~17,000 req/s where
//! wrk, using a fraction of a core, measured ~30,000 on the same build. Each scenario is a
//! short Lua script; the refresh scenario keeps a pool of live refresh tokens in it, taking
//! one per request and putting back the one each answer rotates in.

use crate::Options;
use crate::server::{Endpoint, PASSWORD};
use serde_json::{Value, json};
use std::time::Duration;

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

/// An access token made before the clock starts, for the verify and introspect scenarios.
#[derive(Debug)]
pub struct Fixtures {
    access_token: String,
}

impl Fixtures {
    /// Logs the admin in once.
    pub async fn prepare(server: &Endpoint) -> anyhow::Result<Fixtures> {
        let body = login(&reqwest::Client::new(), server).await?;
        Ok(Fixtures { access_token: token_field(&body, "access_token")? })
    }
}

async fn login(http: &reqwest::Client, server: &Endpoint) -> anyhow::Result<Value> {
    let res = http
        .post(format!("{}/v1/auth/login", server.base))
        .json(&json!({ "email": server.admin_email, "password": PASSWORD }))
        .send()
        .await?;
    Ok(res.error_for_status()?.json().await?)
}

fn token_field(body: &Value, field: &str) -> anyhow::Result<String> {
    body[field].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no {field} in the login answer"))
}

/// Text for a Lua long string, which needs no escaping.
fn lua_str(s: &str) -> String {
    format!("[==[{s}]==]")
}

/// The Lua script that makes wrk send `scenario`'s request.
async fn script(server: &Endpoint, fixtures: &Fixtures, scenario: Scenario, connections: usize) -> anyhow::Result<String> {
    let basic = {
        use base64::Engine as _;
        let pair = format!("{}:{}", server.client_id, server.client_secret);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    };
    let fixed = |method: &str, content_type: Option<&str>, authorization: &str, body: Option<String>| {
        let mut lua = format!("wrk.method = \"{method}\"\nwrk.headers[\"Authorization\"] = {}\n", lua_str(authorization));
        if let Some(ct) = content_type {
            lua.push_str(&format!("wrk.headers[\"Content-Type\"] = \"{ct}\"\n"));
        }
        if let Some(body) = body {
            lua.push_str(&format!("wrk.body = {}\n", lua_str(&body)));
        }
        lua
    };
    let form = Some("application/x-www-form-urlencoded");
    Ok(match scenario {
        Scenario::ClientCredentials => fixed("POST", form, &basic, Some("grant_type=client_credentials".into())),
        Scenario::Verify => fixed("GET", None, &format!("Bearer {}", fixtures.access_token), None),
        Scenario::Introspect => fixed("POST", form, &basic, Some(format!("token={}", fixtures.access_token))),
        Scenario::Login => {
            let body = json!({ "email": server.admin_email, "password": PASSWORD }).to_string();
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n".to_owned()
                + &format!("wrk.body = {}\n", lua_str(&body))
        }
        Scenario::Refresh => {
            // wrk asks for one request more than it has connections before the first answer
            // arrives, so the pool holds a few spare tokens.
            let http = reqwest::Client::new();
            let mut pool = Vec::with_capacity(connections + 4);
            for _ in 0..connections + 4 {
                pool.push(lua_str(&token_field(&login(&http, server).await?, "refresh_token")?));
            }
            format!(
                r#"local pool = {{{}}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local token = table.remove(pool) or "spent"
  return wrk.format(nil, nil, nil, '{{"refresh_token":"' .. token .. '"}}')
end
response = function(status, headers, body)
  local next = string.match(body, '"refresh_token":"([^"]+)"')
  if next then table.insert(pool, 1, next) end
end
"#,
                pool.join(",")
            )
        }
    })
}

fn path(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::ClientCredentials => "/oauth2/token",
        Scenario::Verify => "/v1/auth/verify",
        Scenario::Introspect => "/oauth2/introspect",
        Scenario::Refresh => "/v1/auth/refresh",
        Scenario::Login => "/v1/auth/login",
    }
}

/// Runs wrk once: `connections` connections on one thread for `duration` (whole seconds,
/// at least one: wrk counts no finer).
async fn wrk(
    server: &Endpoint,
    fixtures: &Fixtures,
    scenario: Scenario,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let script_path = dir.path().join("scenario.lua");
    std::fs::write(&script_path, script(server, fixtures, scenario, connections).await?)?;
    let seconds = duration.as_secs().max(1);
    let output = tokio::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--timeout", "10s", "--latency", "-s"])
        .arg(&script_path)
        .arg(format!("{}{}", server.base, path(scenario)))
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run wrk ({e}); install it, e.g. apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {}{}", text, String::from_utf8_lossy(&output.stderr));
    parse(&text, Duration::from_secs(seconds))
}

/// Reads wrk's report: the request count, `--latency` percentiles, non-2xx answers and
/// socket errors.
fn parse(report: &str, duration: Duration) -> anyhow::Result<Outcome> {
    let after = |prefix: &str| report.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix).map(str::trim));
    let requests: u64 = report
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no request count in wrk's report:\n{report}"))?;
    let latency = |q: &str| -> anyhow::Result<Duration> {
        let value = after(q).ok_or_else(|| anyhow::anyhow!("no {q} latency in wrk's report:\n{report}"))?;
        parse_latency(value).ok_or_else(|| anyhow::anyhow!("unreadable latency {value:?}"))
    };
    let non_2xx: u64 = after("Non-2xx or 3xx responses:").and_then(|n| n.parse().ok()).unwrap_or(0);
    let socket_errors: u64 = after("Socket errors:")
        .map(|l| l.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Ok(Outcome {
        requests,
        errors: non_2xx + socket_errors,
        per_sec: requests as f64 / duration.as_secs_f64(),
        p50: latency("50%")?,
        p99: latency("99%")?,
    })
}

fn parse_latency(value: &str) -> Option<Duration> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Runs one scenario with the options' connections and duration, after a warm-up run.
/// The unmeasured run before a scenario (skipped under a second: wrk counts whole seconds).
pub async fn warm_up(server: &Endpoint, fixtures: &Fixtures, scenario: Scenario, options: &Options) -> anyhow::Result<()> {
    if options.warmup >= Duration::from_secs(1) {
        wrk(server, fixtures, scenario, options.connections, options.warmup).await?;
    }
    Ok(())
}

/// The measured run of a scenario.
pub async fn measure(server: &Endpoint, fixtures: &Fixtures, scenario: Scenario, options: &Options) -> anyhow::Result<Outcome> {
    wrk(server, fixtures, scenario, options.connections, options.duration).await
}

/// Logins on every connection and verifies on a few more, at the same time.
pub async fn verify_during_logins(server: &Endpoint, fixtures: &Fixtures, options: &Options) -> anyhow::Result<(Outcome, Outcome)> {
    let verifiers = (options.connections / 8).max(1);
    let (logins, verifies) = tokio::join!(
        wrk(server, fixtures, Scenario::Login, options.connections, options.duration),
        wrk(server, fixtures, Scenario::Verify, verifiers, options.duration),
    );
    Ok((logins?, verifies?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:18081/oauth2/token
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  812.34us  21.00ms   80.00%
  Latency Distribution
     50%    1.96ms
     75%    2.40ms
     90%    3.01ms
     99%  850.00us
  304560 requests in 10.00s, 150.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  30436.79
Transfer/sec:     15.01MB
";

    #[test]
    fn a_wrk_report_reads_as_an_outcome() {
        let outcome = parse(REPORT, Duration::from_secs(10)).unwrap();
        assert_eq!(outcome.requests, 304_560);
        assert_eq!(outcome.errors, 7);
        assert!((outcome.per_sec - 30_456.0).abs() < 1.0);
        assert_eq!(outcome.p50, Duration::from_micros(1960));
        assert_eq!(outcome.p99, Duration::from_micros(850));
    }

    #[test]
    fn latencies_in_every_unit_wrk_prints() {
        assert_eq!(parse_latency("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_latency("12.00us"), Some(Duration::from_micros(12)));
        assert_eq!(parse_latency("fast"), None);
    }
}
