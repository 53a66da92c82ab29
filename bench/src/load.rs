//! Driving load with `wrk`, a C load generator, one process per scenario.
//!
//! The generator shares the machine's two cores with the server, so its own cost shows up in
//! every figure: a generator built on reqwest held the token endpoint at ~17,000 req/s where
//! wrk, using a fraction of a core, measured ~30,000 on the same build. Each scenario is a
//! short Lua script; the refresh scenario keeps a pool of live refresh tokens in it, taking
//! one per request and putting back the one each answer rotates in. The code-flow scenario
//! alternates in the same way: each `302` from the authorization endpoint puts its code in a
//! queue, and the next request a connection sends redeems a queued code at the token endpoint
//! (or, when none is queued, asks for a new one); the script counts the token answers that
//! carry an id_token, which are the complete flows.

use crate::Options;
use crate::server::{Endpoint, PASSWORD, REDIRECT_URI};
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
    /// `GET /login`, the sign-in page, without a session.
    LoginPage,
    /// The authorization code flow of a browser already signed in: `GET /oauth2/authorize`
    /// → `302` with a code → `POST /oauth2/token` (PKCE, id_token). Counted in flows.
    CodeFlow,
}

impl Scenario {
    /// Every scenario, in the order of a run.
    pub const ALL: [Scenario; 7] = [
        Scenario::ClientCredentials,
        Scenario::Verify,
        Scenario::Introspect,
        Scenario::Refresh,
        Scenario::LoginPage,
        Scenario::CodeFlow,
        Scenario::Login,
    ];

    /// Its name on the command line (`--only code-flow,login-page`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "client-credentials",
            Scenario::Verify => "verify",
            Scenario::Introspect => "introspect",
            Scenario::Refresh => "refresh",
            Scenario::Login => "login",
            Scenario::LoginPage => "login-page",
            Scenario::CodeFlow => "code-flow",
        }
    }

    /// The scenario named `name`.
    pub fn named(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The table's name for it.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "`POST /oauth2/token` client_credentials",
            Scenario::Verify => "`GET /v1/auth/verify`",
            Scenario::Introspect => "`POST /oauth2/introspect`",
            Scenario::Refresh => "`POST /v1/auth/refresh` (rotation)",
            Scenario::Login => "`POST /v1/auth/login`",
            Scenario::LoginPage => "`GET /login` (the sign-in page)",
            Scenario::CodeFlow => {
                "code flow, signed-in browser: `GET /oauth2/authorize` → `POST /oauth2/token` with PKCE and id_token (complete flows/s; p50/p99 per request)"
            }
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

/// What the scenarios need made before the clock starts: an access token (verify,
/// introspect) and a browser signed in that has allowed the bench application (code flow).
#[derive(Debug)]
pub struct Fixtures {
    access_token: String,
    /// `tessera-session=…`.
    session_cookie: String,
}

impl Fixtures {
    /// Logs the admin in once through the API, and once through the sign-in page.
    pub async fn prepare(server: &Endpoint) -> anyhow::Result<Fixtures> {
        let body = login(&reqwest::Client::new(), server).await?;
        Ok(Fixtures { access_token: token_field(&body, "access_token")?, session_cookie: browser_session(server).await? })
    }
}

/// The PKCE pair of every authorization request of the code-flow scenario (RFC 7636 §B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The path and query of the code-flow scenario's authorization request.
fn authorize_path(server: &Endpoint) -> anyhow::Result<String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oauth2/authorize", server.base),
        [
            ("response_type", "code"),
            ("client_id", server.app_client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid email bench:read"),
            ("state", "bench"),
            ("nonce", "bench"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )?;
    Ok(format!("{}?{}", url.path(), url.query().unwrap_or_default()))
}

/// `name=value` of the cookie `name` that `res` sets.
fn set_cookie(res: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {name} cookie from {}", res.url()))
}

/// The CSRF token of the form on a page.
fn csrf_token(html: &str) -> anyhow::Result<String> {
    html.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no CSRF token on the page"))
}

fn location(res: &reqwest::Response) -> anyhow::Result<String> {
    anyhow::ensure!(res.status().is_redirection(), "{} answered {}, not a redirect", res.url(), res.status());
    Ok(res.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned())
}

/// Signs the admin in on `/login` as a browser does and allows the bench application on the
/// consent page; returns the session cookie, with which the authorization request then
/// answers with a code at once.
async fn browser_session(server: &Endpoint) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let authorize = authorize_path(server)?;
    let page = http.get(format!("{}/login", server.base)).send().await?;
    let csrf = set_cookie(&page, "tessera-csrf")?;
    let token = csrf_token(&page.text().await?)?;
    let form = [
        ("identifier", server.admin_email.as_str()),
        ("password", PASSWORD),
        ("csrf_token", token.as_str()),
        ("return_to", authorize.as_str()),
    ];
    let signed_in = http.post(format!("{}/login", server.base)).header("cookie", &csrf).form(&form).send().await?;
    location(&signed_in)?;
    let session = set_cookie(&signed_in, "tessera-session")?;
    let csrf = set_cookie(&signed_in, "tessera-csrf")?;
    let cookies = format!("{session}; {csrf}");
    let to_consent = location(&http.get(format!("{}{authorize}", server.base)).header("cookie", &session).send().await?)?;
    let request = to_consent.strip_prefix("/consent?").ok_or_else(|| anyhow::anyhow!("not sent to consent but to {to_consent}"))?;
    let page = http.get(format!("{}{to_consent}", server.base)).header("cookie", &cookies).send().await?;
    let token = csrf_token(&page.text().await?)?;
    let form = [("csrf_token", token.as_str()), ("request", request), ("decision", "allow")];
    location(&http.post(format!("{}/consent", server.base)).header("cookie", &cookies).form(&form).send().await?)?;
    let answer = location(&http.get(format!("{}{authorize}", server.base)).header("cookie", &session).send().await?)?;
    anyhow::ensure!(answer.starts_with(REDIRECT_URI) && answer.contains("code="), "no code for the signed-in browser: {answer}");
    Ok(session)
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
        Scenario::LoginPage => "wrk.method = \"GET\"\n".to_owned(),
        Scenario::CodeFlow => {
            let app = {
                use base64::Engine as _;
                let pair = format!("{}:{}", server.app_client_id, server.app_client_secret);
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            };
            let redirect = reqwest::Url::parse_with_params("http://x/", [("r", REDIRECT_URI)])?;
            let redirect = redirect.query().unwrap_or_default().trim_start_matches("r=").to_owned();
            let prefix = format!("grant_type=authorization_code&code_verifier={VERIFIER}&redirect_uri={redirect}&code=");
            format!(
                r#"local cookie = {cookie}
local authorize = {authorize}
local basic = {basic}
local prefix = {prefix}
local codes = {{}}
local threads = {{}}
flows = 0
setup = function(thread)
  table.insert(threads, thread)
end
request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/oauth2/token", {{["Authorization"] = basic, ["Content-Type"] = "application/x-www-form-urlencoded"}}, prefix .. code)
  end
  return wrk.format("GET", authorize, {{["Cookie"] = cookie}})
end
response = function(status, headers, body)
  local location = headers["location"] or headers["Location"]
  if location then
    local code = string.match(location, "[?&]code=([^&]+)")
    if code then table.insert(codes, code) end
  elseif status == 200 and string.find(body, '"id_token"', 1, true) then
    flows = flows + 1
  end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("flows") or 0) end
  io.write(string.format("Completed flows: %d\n", total))
end
"#,
                cookie = lua_str(&fixtures.session_cookie),
                authorize = lua_str(&authorize_path(server)?),
                basic = lua_str(&app),
                prefix = lua_str(&prefix),
            )
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
        Scenario::LoginPage => "/login",
        Scenario::CodeFlow => "/oauth2/authorize",
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
    let errors = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "wrk failed: {text}{errors}");
    // wrk runs on without a script it could not load; its requests would then not be the scenario's.
    anyhow::ensure!(!errors.contains("scenario.lua"), "wrk could not run the scenario's script: {errors}");
    parse(&text, Duration::from_secs(seconds))
}

/// Reads wrk's report: the request count, `--latency` percentiles, non-2xx answers and
/// socket errors. A report with `Completed flows: N` (the code-flow script's) counts flows:
/// `requests` and `per_sec` are then flows, the latencies still those of single requests.
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
    let requests = match after("Completed flows:") {
        Some(flows) => flows.parse().map_err(|_| anyhow::anyhow!("unreadable flow count {flows:?}"))?,
        None => requests,
    };
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
    fn a_code_flow_report_counts_flows() {
        let report = format!("{REPORT}Completed flows: 1500\n");
        let outcome = parse(&report, Duration::from_secs(10)).unwrap();
        assert_eq!(outcome.requests, 1500);
        assert!((outcome.per_sec - 150.0).abs() < 0.01);
        assert_eq!(outcome.p99, Duration::from_micros(850));
    }

    #[test]
    fn latencies_in_every_unit_wrk_prints() {
        assert_eq!(parse_latency("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_latency("12.00us"), Some(Duration::from_micros(12)));
        assert_eq!(parse_latency("fast"), None);
    }
}
