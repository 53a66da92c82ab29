//! The `tessera` binary, run as an operator would run it.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("TESSERA_DATABASE_URL", format!("sqlite://{}", self.dir.path().join("t.db").display()))
            .env("TESSERA_ARGON2_MEMORY_KIB", "1024")
            .env("TESSERA_ARGON2_ITERATIONS", "1")
            .env("TESSERA_LOG", "warn");
        cmd
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str], stdin: &str) -> Value {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{args:?} printed no JSON: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

#[test]
fn users_create_reads_the_password_from_stdin_and_prints_the_user() {
    let env = Env::new();

    let user =
        env.json(&["users", "create", "--email", "root@example.com", "--username", "Root", "--admin"], "correct horse battery staple\n");

    assert_eq!(user["email"], "root@example.com");
    assert_eq!(user["username"], "root");
    assert_eq!(user["roles"], serde_json::json!(["admin"]));
    assert!(user.get("password_hash").is_none());
    let again = env.run(&["users", "create", "--email", "ROOT@example.com"], "correct horse battery staple\n");
    assert!(!again.status.success());
    let weak = env.run(&["users", "create", "--email", "weak@example.com"], "password123\n");
    assert!(!weak.status.success());
}

#[test]
fn keys_list_and_rotate_print_what_the_api_prints() {
    let env = Env::new();
    let listed = env.json(&["keys", "list"], "");
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);

    let rotated = env.json(&["keys", "rotate", "--alg", "RS256"], "");

    // An algorithm change publishes its key first; it signs once published long enough.
    assert_eq!((&rotated["alg"], &rotated["status"]), (&Value::from("RS256"), &Value::from("next")));
    assert!(rotated["active_from"].is_string(), "{rotated}");
    let listed = env.json(&["--config", "/dev/null", "keys", "list"], "");
    let with =
        |status: &str| -> Vec<Value> { listed["keys"].as_array().unwrap().iter().filter(|k| k["status"] == status).cloned().collect() };
    assert_eq!(with("active").len(), 1);
    assert_eq!(with("active")[0]["alg"], "ES256");
    assert_eq!(with("next")[0]["kid"], rotated["kid"]);
    let kept = env.json(&["keys", "list", "--config", "/dev/null"], "");
    let next: Vec<&Value> = kept["keys"].as_array().unwrap().iter().filter(|k| k["status"] == "next").collect();
    assert_eq!(next[0]["alg"], "RS256", "--alg holds from then on while the configuration is unchanged");
}

#[test]
fn clients_create_prints_the_secret_once() {
    let env = Env::new();
    let client = env.json(&["clients", "create", "--name", "ops", "--scope", "a", "--scope", "b", "--admin"], "");
    assert!(client["client_id"].as_str().unwrap().starts_with("svc_"));
    assert!(client["client_secret"].as_str().unwrap().starts_with("tcs_"));
    assert_eq!(client["scopes"], serde_json::json!(["a", "b"]));
    assert_eq!(client["roles"], serde_json::json!(["admin"]));
}

#[test]
fn clients_create_takes_repeated_audiences() {
    let env = Env::new();
    let client = env.json(&["clients", "create", "--name", "api", "--audience", "https://notes.example", "--audience", "notes-v2"], "");
    assert_eq!(client["audiences"], serde_json::json!(["https://notes.example", "notes-v2"]));
}

#[test]
fn clients_create_takes_redirect_uris_and_makes_public_and_first_party_clients() {
    let env = Env::new();
    let args = [
        "clients",
        "create",
        "--name",
        "mobile",
        "--public",
        "--first-party",
        "--redirect-uri",
        "com.example.notes:/cb",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--post-logout-redirect-uri",
        "com.example.notes:/bye",
    ];
    let client = env.json(&args, "");
    assert!(client.get("client_secret").is_none(), "a public client has no secret: {client}");
    assert_eq!(client["redirect_uris"], serde_json::json!(["com.example.notes:/cb", "http://127.0.0.1/cb"]));
    assert_eq!(client["post_logout_redirect_uris"], serde_json::json!(["com.example.notes:/bye"]));
    assert_eq!((client["public"].clone(), client["first_party"].clone()), (serde_json::json!(true), serde_json::json!(true)));
    assert_eq!(client["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    let refused = env.run(&["clients", "create", "--name", "web", "--redirect-uri", "http://web.example/cb"], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn migrate_creates_the_database() {
    let env = Env::new();
    let out = env.run(&["migrate"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(env.dir.path().join("t.db").exists());
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_the_key() {
    let env = Env::new();
    let out = env.command(&["migrate"]).env("TESSERA_ACCESS_TOKEN_TTL", "soon").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TESSERA_ACCESS_TOKEN_TTL"), "{stderr}");
}

#[test]
fn the_prod_profile_refuses_unsafe_settings_and_says_which() {
    let env = Env::new();
    let out = env.command(&["migrate"]).env("TESSERA_PROFILE", "prod").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TESSERA_MASTER_KEY"), "{stderr}");
}

#[test]
fn a_toml_file_configures_and_the_environment_overrides_it() {
    let env = Env::new();
    let file = env.dir.path().join("tessera.toml");
    std::fs::write(&file, "signing_alg = \"EdDSA\"\n").unwrap();
    let listed = env.json(&["keys", "list", "--config", file.to_str().unwrap()], "");
    assert!(listed["keys"].as_array().unwrap().iter().all(|k| k["alg"] == "EdDSA"));
    let out = env.command(&["keys", "list", "--config", file.to_str().unwrap()]).env("TESSERA_SIGNING_ALG", "bogus").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_SIGNING_ALG"));
}

/// A `tessera serve` child on a free port, stopped (SIGTERM) when dropped.
struct Serving {
    child: std::process::Child,
    port: u16,
    /// Drains stderr as it comes, so a chatty server never blocks on a full pipe.
    logs: Option<std::thread::JoinHandle<String>>,
}

impl Serving {
    fn start(env: &Env, extra: &[(&str, &str)], stderr: Stdio) -> Serving {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = env.command(&["serve"]);
        cmd.env("TESSERA_LISTEN", format!("127.0.0.1:{port}")).stdout(Stdio::null()).stderr(stderr);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let logs = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut text);
                text
            })
        });
        let serving = Serving { child, port, logs };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "serve did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        serving
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server; returns its exit status and what it logged.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        (status, self.logs.take().map(|h| h.join().unwrap()).unwrap_or_default())
    }
}

#[test]
fn healthcheck_exits_zero_only_when_the_server_is_ready() {
    let env = Env::new();
    let serving = Serving::start(&env, &[], Stdio::null());
    let ok = env.run(&["healthcheck", "--url", &serving.url("")], "");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let port = serving.port;
    serving.stop();
    let down = env.run(&["healthcheck", "--url", &format!("http://127.0.0.1:{port}")], "");
    assert!(!down.status.success());
}

#[test]
fn audit_prints_the_trail_as_json() {
    let env = Env::new();
    env.json(&["users", "create", "--email", "audited@example.com"], "correct horse battery staple\n");
    env.json(&["keys", "rotate"], "");
    let trail = env.json(&["audit", "--limit", "10"], "");
    let kinds: Vec<&str> = trail["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["key.rotated", "user.registered"]);
}

#[test]
fn logs_of_a_full_run_never_carry_a_password_secret_token_or_hash() {
    let env = Env::new();
    let client = env.json(&["clients", "create", "--name", "logged"], "");
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let serving = Serving::start(&env, &[("TESSERA_LOG", "trace"), ("TESSERA_LOG_FORMAT", "json")], Stdio::piped());
    let password = "a distinctive passphrase 4417";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut seen = Vec::<String>::new();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let reg: Value = http
            .post(serving.url("/v1/auth/register"))
            .json(&serde_json::json!({ "email": "logs@example.com", "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let login: Value = http
            .post(serving.url("/v1/auth/login"))
            .header("x-request-id", "req-logs-1")
            .json(&serde_json::json!({ "email": "logs@example.com", "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let refreshed: Value = http
            .post(serving.url("/v1/auth/refresh"))
            .json(&serde_json::json!({ "refresh_token": login["refresh_token"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cc: Value = http
            .post(serving.url("/oauth2/token"))
            .basic_auth(client["client_id"].as_str().unwrap(), Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        http.post(serving.url("/v1/auth/login"))
            .json(&serde_json::json!({ "email": "logs@example.com", "password": "wrong and secret-ish" }))
            .send()
            .await
            .unwrap();
        for v in [
            &reg["access_token"],
            &reg["refresh_token"],
            &login["access_token"],
            &login["refresh_token"],
            &refreshed["access_token"],
            &refreshed["refresh_token"],
            &cc["access_token"],
        ] {
            seen.push(v.as_str().unwrap().to_owned());
        }
    });
    let (status, logs) = serving.stop();
    assert!(status.success());

    assert!(logs.lines().count() > 5, "the run logged nothing?\n{logs}");
    assert!(logs.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "json logs are one JSON object a line");
    assert!(logs.contains("req-logs-1"), "the request id is on the request's lines");
    for needle in [password, "wrong and secret-ish", secret.as_str(), "$argon2"].into_iter().chain(seen.iter().map(String::as_str)) {
        assert!(!logs.contains(needle), "the logs contain a secret ({} chars)", needle.len());
    }
}

#[test]
fn serve_answers_and_exits_zero_on_sigterm() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = env
        .command(&["serve"])
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let up = rt.block_on(async {
        while started.elapsed() < std::time::Duration::from_secs(20) {
            if let Ok(res) = reqwest::get(&url).await {
                return res.status().is_success();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    });
    assert!(up, "serve did not answer /healthz");
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn users_reset_mfa_removes_the_second_factors_of_the_account_and_audits_it() {
    let env = Env::new();
    env.json(&["users", "create", "--email", "lost@example.com"], "correct horse battery staple\n");

    let user = env.json(&["users", "reset-mfa", "--email", "LOST@example.com"], "");

    assert_eq!(user["email"], "lost@example.com");
    assert_eq!(user["two_factor"], false);
    let trail = env.json(&["audit", "--limit", "10"], "");
    assert_eq!(trail["events"][0]["kind"], "mfa.reset");
    let unknown = env.run(&["users", "reset-mfa", "--email", "nobody@example.com"], "");
    assert!(!unknown.status.success());
}
