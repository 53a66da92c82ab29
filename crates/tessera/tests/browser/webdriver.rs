//! A small client of the W3C WebDriver protocol (JSON over HTTP), enough to drive Chromium
//! through Debian's `chromedriver`: navigate, find, type, click, run script, screenshot, read
//! cookies and the console, and reach the DevTools protocol (`goog/cdp/execute`) for what
//! WebDriver does not cover. The WebAuthn virtual authenticator commands of the WebAuthn
//! spec (`/webauthn/authenticator`) go through [`Session::command`] the same way.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The key W3C WebDriver gives element references under.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An error answered by the driver (`{"value": {"error", "message"}}`) or by the transport.
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// One WebDriver session, reached over `http`.
#[derive(Clone)]
pub struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    base: String,
}

impl Session {
    /// Starts a session on the driver at `driver` with these capabilities.
    pub async fn create(http: reqwest::Client, driver: &str, capabilities: Value) -> Result<Session, WebDriverError> {
        let value = send(&http, reqwest::Method::POST, &format!("{driver}/session"), Some(json!({ "capabilities": capabilities }))).await?;
        let id = value["sessionId"].as_str().ok_or_else(|| WebDriverError { error: "no session".into(), message: value.to_string() })?;
        Ok(Session { http, base: format!("{driver}/session/{id}") })
    }

    /// The same session through another HTTP client (each test runtime needs its own).
    pub fn with_client(&self, http: reqwest::Client) -> Session {
        Session { http, base: self.base.clone() }
    }

    /// Any command: `method` on `/session/ID{path}`.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        send(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await.unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn current_url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    /// The document's title.
    pub async fn title(&self) -> String {
        self.get("/title").await.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, or an error when there is none.
    pub async fn try_find(&self, css: &str) -> Result<Element, WebDriverError> {
        let value = self.command(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await?;
        Ok(self.element(&value))
    }

    /// The first element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        self.try_find(css).await.unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let value = self.post("/elements", json!({ "using": "css selector", "value": css })).await;
        value.as_array().map(|items| items.iter().map(|v| self.element(v)).collect()).unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `css` (after a click that navigates).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let start = Instant::now();
        loop {
            match self.try_find(css).await {
                Ok(element) => return element,
                Err(e) if start.elapsed() > timeout => panic!("`{css}` did not appear within {timeout:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn element(&self, value: &Value) -> Element {
        let id = value[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("not an element reference: {value}"));
        Element { session: self.clone(), id: id.to_owned() }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Runs `script` whose last argument is a callback to call with the result.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args })).await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let value = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()).expect("a base64 PNG")
    }

    /// The cookies the current page can see, as WebDriver describes them.
    pub async fn cookies(&self) -> Vec<Value> {
        self.get("/cookie").await.as_array().cloned().unwrap_or_default()
    }

    /// Forgets every cookie of the current page's site.
    pub async fn delete_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await.unwrap_or_else(|e| panic!("DELETE /cookie: {e}"));
    }

    /// Sets the window's outer size.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// The console messages logged since the last call (`goog:loggingPrefs` must ask for them).
    pub async fn console(&self) -> Vec<Value> {
        self.post("/se/log", json!({ "type": "browser" })).await.as_array().cloned().unwrap_or_default()
    }

    /// A DevTools protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }
}

/// An element of the current page.
pub struct Element {
    session: Session,
    id: String,
}

impl Element {
    async fn post(&self, what: &str, body: Value) -> Value {
        self.session.post(&format!("/element/{}/{what}", self.id), body).await
    }

    async fn get(&self, what: &str) -> Value {
        self.session.get(&format!("/element/{}/{what}", self.id)).await
    }

    /// Clicks it (scrolling it into view).
    pub async fn click(&self) {
        self.post("click", json!({})).await;
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) {
        self.post("value", json!({ "text": text })).await;
    }

    /// Empties an input.
    pub async fn clear(&self) {
        self.post("clear", json!({})).await;
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        self.get("text").await.as_str().unwrap_or_default().to_owned()
    }

    /// Its visible text, or the error when it is gone (the page moved on since it was found).
    pub async fn try_text(&self) -> Result<String, WebDriverError> {
        let value = self.session.command(reqwest::Method::GET, &format!("/element/{}/text", self.id), None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// An HTML attribute, when present.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.get(&format!("attribute/{name}")).await.as_str().map(str::to_owned)
    }

    /// A DOM property (`value`, `checked`, …).
    pub async fn property(&self, name: &str) -> Value {
        self.get(&format!("property/{name}")).await
    }
}

async fn send(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| WebDriverError { error: "transport".into(), message: e.to_string() })?;
    let ok = response.status().is_success();
    let mut answer: Value = response.json().await.map_err(|e| WebDriverError { error: "transport".into(), message: e.to_string() })?;
    let value = answer["value"].take();
    if ok {
        return Ok(value);
    }
    Err(WebDriverError {
        error: value["error"].as_str().unwrap_or("unknown error").to_owned(),
        message: value["message"].as_str().unwrap_or_default().lines().next().unwrap_or_default().to_owned(),
    })
}
