//! Tessera as the auth service of real gateways: nginx (`auth_request`) and Caddy
//! (`forward_auth`) run the configurations in `deploy/` on loopback, in front of a tiny
//! service that echoes the `X-Auth-*` headers it receives. The tests fail, never skip, when
//! `nginx` or `caddy` is not installed (`.ci/run` installs both).

use crate::clients::create_client;
use crate::helpers::{TestApp, spawn_app, unique_email};
use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The audience the gateways demand: the test configuration's.
const AUDIENCE: &str = "http://tessera.test";
/// The scope `/write/` demands.
const WRITE_SCOPE: &str = "notes:write";

fn deploy_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(relative)
}

/// A gateway process, killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The service behind the gateway: answers every request with the `X-Auth-*` headers it got.
struct Upstream {
    address: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let echo = move |headers: HeaderMap| {
        counted.fetch_add(1, Ordering::SeqCst);
        let identity: Map<String, Value> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-auth-"))
            .map(|(name, value)| (name.as_str().to_owned(), Value::from(value.to_str().unwrap_or("<not text>"))))
            .collect();
        async move { axum::Json(Value::Object(identity)) }
    };
    let app = axum::Router::new().fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { address, hits }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Nginx,
    Caddy,
}

/// Tessera, the echoing service, and a gateway in front of it running `deploy/`'s configuration.
struct Setup {
    app: TestApp,
    upstream: Upstream,
    gateway: String,
    http: reqwest::Client,
    _process: KillOnDrop,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(kind: Kind) -> Setup {
        let app = spawn_app().await;
        let upstream = upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let tessera = app.address.trim_start_matches("http://").to_owned();
        let values = [
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("TESSERA_ADDR", tessera),
            ("APP_ADDR", upstream.address.to_string()),
            ("AUDIENCE", AUDIENCE.to_owned()),
            ("WRITE_SCOPE", WRITE_SCOPE.to_owned()),
        ];
        let log = dir.path().join("gateway.log");
        let child = match kind {
            Kind::Nginx => start_nginx(dir.path(), &values, &log),
            Kind::Caddy => start_caddy(dir.path(), &values, &log),
        };
        let mut process = KillOnDrop(child);
        wait_for_port(port, &mut process, &log).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Setup { app, upstream, gateway: format!("http://127.0.0.1:{port}"), http, _process: process, _dir: dir }
    }

    async fn get(&self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.gateway));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    fn hits(&self) -> usize {
        self.upstream.hits.load(Ordering::SeqCst)
    }

    /// A client-credentials token of a new client with `scopes`, `roles` and `audiences`; returns (client_id, token).
    async fn client_token(&self, scopes: &[&str], roles: &[&str], audiences: &[&str]) -> (String, String) {
        let admin = self.app.admin_token().await;
        let mut body = json!({ "name": "gateway-test", "scopes": scopes, "roles": roles });
        if !audiences.is_empty() {
            body["audiences"] = json!(audiences);
        }
        let created = create_client(&self.app, &admin, body).await;
        let id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap();
        let res = crate::clients::client_credentials(&self.app, &id, secret, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
        (id, token)
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary on PATH (or in the sbin directories, where Debian puts nginx), or a failure
/// that says how to install it.
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed; these tests need it (Debian: apt-get install {name})");
}

/// `${NAME}` → value, for every value; nothing may be left unfilled.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    let unfilled = text.lines().find(|l| !l.trim_start().starts_with('#') && l.contains("${"));
    assert!(unfilled.is_none(), "a placeholder was left unfilled: {unfilled:?}");
    text
}

fn start_nginx(dir: &Path, values: &[(&str, String)], log: &Path) -> Child {
    let nginx = binary("nginx");
    // Workers may run as another user than the master (root's default): let them in.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let template = std::fs::read_to_string(deploy_file("nginx/tessera.conf.template")).unwrap();
    std::fs::write(dir.join("tessera.conf"), fill(&template, values)).unwrap();
    let d = dir.display();
    let main = format!(
        "worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {log} info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
             access_log off;\n\
             client_body_temp_path {d}/client_body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             include {d}/tessera.conf;\n\
         }}\n",
        log = log.display()
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(log)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn start_caddy(dir: &Path, values: &[(&str, String)], log: &Path) -> Child {
    let caddy = binary("caddy");
    let out = std::fs::File::create(log).unwrap();
    let mut command = Command::new(caddy);
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(deploy_file("caddy/Caddyfile"))
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (name, value) in values {
        // Caddy is told its site address; the listen address of nginx's template is the site here.
        let name = if *name == "LISTEN" { "SITE_ADDRESS" } else { name };
        let value = if name == "SITE_ADDRESS" { format!("http://{value}") } else { value.clone() };
        command.env(name, value);
    }
    command.spawn().unwrap()
}

/// Waits until the gateway accepts connections; fails with its log if it exits or takes too long.
async fn wait_for_port(port: u16, process: &mut KillOnDrop, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        let exited = process.0.try_wait().unwrap();
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the gateway did not start listening on {port} ({exited:?}):\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_request_without_a_token_is_401_and_never_reaches_the_service(kind: Kind) {
    let setup = Setup::new(kind).await;

    let res = setup.get("/notes", None, &[]).await;
    let forged = setup.get("/notes", Some("not-a-token"), &[("x-auth-subject", "admin")]).await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(setup.hits(), 0);
}

async fn a_valid_token_reaches_the_service_with_its_identity(kind: Kind) {
    let setup = Setup::new(kind).await;
    let (client_id, client_token) = setup.client_token(&["notes:read", WRITE_SCOPE], &["ops"], &[]).await;
    let person = setup.app.register(&unique_email()).await;
    let person_token = person["access_token"].as_str().unwrap();

    // The client also sends identity headers of its own: the service must see Tessera's.
    let forged = [("x-auth-subject", "someone-else"), ("x-auth-session", "forged")];
    let as_client = setup.get("/write/notes", Some(&client_token), &forged).await;
    let as_person = setup.get("/notes", Some(person_token), &[]).await;

    assert_eq!(as_client.status(), StatusCode::OK);
    let seen: Value = as_client.json().await.unwrap();
    assert_eq!(seen["x-auth-subject"], client_id.as_str(), "{seen}");
    assert_eq!(seen["x-auth-client-id"], client_id.as_str());
    assert_eq!(seen["x-auth-scope"], "notes:read notes:write");
    assert_eq!(seen["x-auth-roles"], "ops");
    assert!(seen.get("x-auth-session").is_none(), "a client has no session: {seen}");
    assert_eq!(as_person.status(), StatusCode::OK);
    let seen: Value = as_person.json().await.unwrap();
    assert_eq!(seen["x-auth-subject"], person["user"]["id"], "{seen}");
    assert_eq!(seen["x-auth-client-id"], "tessera");
    let sid = crate::helpers::claims_of(person_token)["sid"].clone();
    assert_eq!(seen["x-auth-session"], sid);
    assert_eq!(setup.hits(), 2);
}

async fn a_token_lacking_the_required_scope_is_403_and_one_for_another_audience_401(kind: Kind) {
    let setup = Setup::new(kind).await;
    let (_, reader) = setup.client_token(&["notes:read"], &[], &[]).await;
    let (_, billing) = setup.client_token(&[WRITE_SCOPE], &[], &["https://billing.example"]).await;

    let write = setup.get("/write/notes", Some(&reader), &[]).await;
    let read = setup.get("/notes", Some(&reader), &[]).await;
    let other_audience = setup.get("/write/notes", Some(&billing), &[]).await;

    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    assert_eq!(read.status(), StatusCode::OK, "the token is fine where no scope is demanded");
    assert_eq!(other_audience.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(setup.hits(), 1);
}

#[tokio::test]
async fn nginx_answers_401_without_a_token_and_never_reaches_the_service() {
    a_request_without_a_token_is_401_and_never_reaches_the_service(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_passes_a_valid_tokens_identity_to_the_service() {
    a_valid_token_reaches_the_service_with_its_identity(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_answers_403_for_a_missing_scope_and_401_for_another_audience() {
    a_token_lacking_the_required_scope_is_403_and_one_for_another_audience_401(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_answers_401_without_a_token_and_never_reaches_the_service() {
    a_request_without_a_token_is_401_and_never_reaches_the_service(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_passes_a_valid_tokens_identity_to_the_service() {
    a_valid_token_reaches_the_service_with_its_identity(Kind::Caddy).await;
}

#[tokio::test]
async fn caddy_answers_403_for_a_missing_scope_and_401_for_another_audience() {
    a_token_lacking_the_required_scope_is_403_and_one_for_another_audience_401(Kind::Caddy).await;
}

/// The configuration of a `deploy/` file without its header comment: what README shows.
fn configuration(relative: &str) -> String {
    let text = std::fs::read_to_string(deploy_file(relative)).unwrap();
    let lines: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#') || l.is_empty()).collect();
    lines.join("\n")
}

#[test]
fn the_readme_shows_the_configurations_that_are_tested() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    for file in ["nginx/tessera.conf.template", "caddy/Caddyfile"] {
        let shown = configuration(file);
        assert!(shown.lines().count() > 10, "{file} has a configuration");
        assert!(readme.contains(&shown), "README's section on gateways must show deploy/{file} as it is");
    }
}
