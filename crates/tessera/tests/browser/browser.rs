//! One headless Chromium for the whole test binary, driven through Debian's `chromedriver`,
//! and the checks every page gets: axe-core, nothing from another origin, a clean console,
//! and screenshots.
//!
//! Tests take turns: [`browser`] locks the one session for the test that holds the
//! [`Browser`], and starts it from a blank page with no cookies and the default window.
//! `chromedriver` runs in a process group of its own, with Chromium under it; a watcher
//! ends the group and removes the profile when this process exits, however it exits.

use crate::webdriver::Session;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

/// The window of every test unless it asks for another.
pub const WINDOW: (u32, u32) = (1280, 900);

/// A phone's viewport (an iPhone 12–15), for [`Browser::set_window_size`].
pub const PHONE: (u32, u32) = (390, 844);

struct Shared {
    session: Session,
}

static SHARED: OnceCell<Mutex<Shared>> = OnceCell::const_new();

/// The browser, for this test alone until it is dropped.
pub struct Browser {
    _turn: MutexGuard<'static, Shared>,
    session: Session,
}

impl std::ops::Deref for Browser {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// Waits for this test's turn with the browser, starting it on first use.
pub async fn browser() -> Browser {
    let shared = SHARED.get_or_init(|| async { Mutex::new(Shared { session: launch().await }) }).await;
    let turn = shared.lock().await;
    // A client of this test's runtime: a connection pooled by an ended test's runtime is dead.
    let session = turn.session.with_client(reqwest::Client::new());
    session.goto("about:blank").await;
    session.cdp("Network.clearBrowserCookies", json!({})).await;
    session.set_window_size(WINDOW.0, WINDOW.1).await;
    session.cdp("Emulation.setEmulatedMedia", json!({ "features": [{ "name": "prefers-color-scheme", "value": "light" }] })).await;
    let browser = Browser { _turn: turn, session };
    browser.console().await;
    browser
}

fn program(env: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("`{name}` not found (set {env}): install Debian's chromium and chromium-driver packages (.ci/run does)"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts chromedriver and a headless Chromium session.
async fn launch() -> Session {
    let chromedriver = program("TESSERA_CHROMEDRIVER", "chromedriver");
    let chromium = program("TESSERA_CHROMIUM", "chromium");
    let profile = std::env::temp_dir().join(format!("tessera-chromium-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&profile).unwrap();
    let port = free_port();
    let driver = {
        use std::os::unix::process::CommandExt;
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()))
    };
    watch_parent(driver.id(), &profile);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    while http.get(format!("{url}/status")).send().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start listening within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let capabilities = json!({ "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            // As root Chromium needs --no-sandbox; the background-networking flags keep it
            // from reaching for Google's hosts, which this machine's network refuses.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-extensions",
                "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            ],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
        "timeouts": { "implicit": 0, "pageLoad": 20000, "script": 20000 },
    }});
    Session::create(http, &url, capabilities).await.unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"))
}

/// Ends chromedriver's process group (Chromium included) and removes the profile once this
/// process has exited.
fn watch_parent(driver: u32, profile: &std::path::Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -TERM -{driver} 2>/dev/null; sleep 2; \
         kill -KILL -{driver} 2>/dev/null; rm -rf '{profile}'",
        pid = std::process::id(),
        profile = profile.display(),
    );
    // Never waited for: the watcher must outlive this process to clean up after it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
}

/// axe-core's script, read once: `TESSERA_AXE_CORE`, or the global npm install `.ci/run` makes.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut candidates: Vec<PathBuf> =
            std::env::var_os("TESSERA_AXE_CORE").filter(|p| !p.is_empty()).map(PathBuf::from).into_iter().collect();
        candidates.extend(["/usr/lib/node_modules", "/usr/local/lib/node_modules"].map(|d| PathBuf::from(d).join("axe-core/axe.min.js")));
        if let Ok(out) = Command::new("npm").args(["root", "-g"]).stderr(Stdio::null()).output() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("axe-core/axe.min.js"));
        }
        let path = candidates.iter().find(|p| p.is_file()).unwrap_or_else(|| {
            panic!("axe-core not found in {candidates:?}: `npm install -g axe-core@4` (.ci/run does) or set TESSERA_AXE_CORE")
        });
        std::fs::read_to_string(path).unwrap()
    })
}

impl Browser {
    /// Runs axe-core on the current page and fails on any serious or critical violation,
    /// naming each rule and the elements it found.
    pub async fn assert_accessible(&self) {
        let serious = self.serious_accessibility_violations().await;
        assert!(serious.is_empty(), "axe-core on {}: {}", self.current_url().await, serde_json::to_string_pretty(&serious).unwrap());
    }

    /// axe-core's serious and critical violations on the current page: `{id, impact, help, nodes}`.
    pub async fn serious_accessibility_violations(&self) -> Vec<Value> {
        self.execute(&format!("{}\nreturn typeof axe;", axe_source()), json!([])).await;
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))))
              .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));";
        let violations = self.execute_async(script, json!([])).await;
        violations
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .cloned()
            .collect()
    }

    /// Fails when the page loaded anything (script, style, image, fetch) from another origin.
    pub async fn assert_same_origin_only(&self) {
        let script = "return [location.origin, performance.getEntriesByType('resource').map(e => e.name)];";
        let found = self.execute(script, json!([])).await;
        let origin = found[0].as_str().unwrap_or_default();
        let loaded: Vec<&str> = found[1].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert!(!loaded.is_empty(), "the page loaded no assets at all");
        let foreign: Vec<&&str> = loaded.iter().filter(|url| !url.starts_with(&format!("{origin}/"))).collect();
        assert!(foreign.is_empty(), "loaded from another origin than {origin}: {foreign:?}");
    }

    /// Fails on any error in the console since the last look (a blocked resource, a CSP
    /// violation, a script error). Expected HTTP errors of the page itself are left out.
    pub async fn assert_clean_console(&self, expected_status: Option<u16>) {
        let entries = self.console().await;
        let errors: Vec<&Value> = entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                let own_status = expected_status.is_some_and(|s| message.contains(&format!("status of {s}")));
                !own_status
            })
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// `prefers-color-scheme: dark` (or light) for the pages that follow.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.cdp("Emulation.setEmulatedMedia", json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] })).await;
    }

    /// Saves a PNG of the viewport as `NAME.png` in `TESSERA_SCREENSHOTS`, when set (the docs'
    /// screenshots are made this way); returns where, if it did. The PNG is taken either way,
    /// so a page that cannot be drawn fails the test.
    pub async fn screenshot_as(&self, name: &str) -> Option<PathBuf> {
        let png = self.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = std::env::var_os("TESSERA_SCREENSHOTS").filter(|d| !d.is_empty())?;
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        Some(path)
    }
}
