//! Test harness: each test gets its own Tessera on a fresh SQLite file, served over real HTTP
//! on an ephemeral loopback port, with a clock the test can move forward.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tessera::clock::ManualClock;
use tessera::config::Config;
use tessera::service::Tessera;
use tessera::startup::Application;
use tokio::sync::oneshot;

/// A password the strength policy accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running Tessera.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub tessera: Arc<Tessera>,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Arc<tempfile::TempDir>,
}

/// Starts Tessera with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The database engine a test binary runs its tests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, empty database of this binary's engine.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match crate::ENGINE {
        Engine::Sqlite => format!("sqlite://{}", dir.join("tessera.db").display()),
        Engine::Postgres => crate::postgres::fresh_database().await,
    }
}

/// The test configuration on `url`.
pub fn test_config(url: &str) -> Config {
    let mut config = Config::for_tests(url);
    config.database_max_connections = 5;
    config.database_timeout = "2s".parse().unwrap();
    config
}

/// Starts Tessera after `configure` adjusts the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(&fresh_database_url(dir.path()).await);
    configure(&mut config);
    start(config, dir, ManualClock::new()).await
}

/// Starts Tessera on an existing database.
pub async fn spawn_app_on(url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(url);
    configure(&mut config);
    start(config, dir, ManualClock::new()).await
}

/// Starts another Tessera on the same database and clock as `other` (a restart, or a second instance).
pub async fn spawn_beside(other: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = other.config.clone();
    configure(&mut config);
    start(config, other._dir.clone(), other.clock.clone()).await
}

async fn start(config: Config, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
    let app = Application::build(&config, Arc::new(clock.clone())).await.expect("application builds");
    let address = format!("http://{}", app.local_addr().expect("bound"));
    let tessera = app.tessera().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        clock,
        tessera,
        config,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    /// Stops serving and waits for the server to drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("request sent")
    }

    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path).json(body).send().await.expect("request sent")
    }

    pub async fn send_with(&self, method: Method, path: &str, token: &str, body: Option<&Value>) -> Response {
        let mut req = self.request(method, path).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.expect("request sent")
    }

    /// Registers `email` with [`PASSWORD`]; returns the 201 body.
    pub async fn register(&self, email: &str) -> Value {
        let res = self.post_json("/v1/auth/register", &json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(res.status(), StatusCode::CREATED, "registering {email}");
        res.json().await.expect("json")
    }

    /// Logs `email` in with [`PASSWORD`]; returns the 200 body.
    pub async fn login(&self, email: &str) -> Value {
        let res = self.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(res.status(), StatusCode::OK, "logging in {email}");
        res.json().await.expect("json")
    }

    /// An admin's fresh access token (created through the same path as `tessera users create --admin`).
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        self.tessera
            .create_user(tessera::service::Registration { email: email.clone(), password: PASSWORD.into(), username: None, admin: true })
            .await
            .expect("admin created");
        self.login(&email).await["access_token"].as_str().expect("token").to_owned()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Reads a problem+json answer, checking its shape; returns the body.
pub async fn problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "code in {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string(), "shape of {body}");
    body
}

/// The claims of a JWT, read without verifying (tests check what was issued).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims are JSON")
}

/// The protected header of a JWT.
pub fn header_of(token: &str) -> Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT has a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    serde_json::from_slice(&bytes).expect("header is JSON")
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}
