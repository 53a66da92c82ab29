//! Browser tests: Tessera's pages driven in headless Chromium (Debian's `chromium`, through
//! Debian's `chromedriver`), as a person would use them.
//!
//! One Tessera ([`server::server`]) and one Chromium ([`browser::browser`]) serve every test
//! of this binary; tests take turns with the browser. A test navigates, fills and clicks with
//! the [`webdriver::Session`] methods, then checks what every page owes its users:
//! `assert_accessible` (axe-core: no serious or critical violation), `assert_same_origin_only`,
//! `assert_clean_console`, and `screenshot_as(NAME)`, which writes `NAME.png` into the
//! directory `TESSERA_SCREENSHOTS` names (the docs' screenshots):
//!
//! ```text
//! TESSERA_SCREENSHOTS=docs/screenshots cargo test -p tessera --test browser
//! ```
//!
//! Needs `chromium`, `chromedriver` (or `TESSERA_CHROMIUM`, `TESSERA_CHROMEDRIVER`) and
//! axe-core (`npm install -g axe-core@4`, or `TESSERA_AXE_CORE`); `.ci/run` installs them. The
//! tests fail, never skip, without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The API tests' helpers, shared: this binary uses a part of them.
#![allow(dead_code)]
#[path = "../api/apache.rs"]
mod apache;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/postgres.rs"]
mod postgres;
#[path = "../api/smtp_sink.rs"]
mod smtp_sink;

/// The server of this binary runs on SQLite.
const ENGINE: helpers::Engine = helpers::Engine::Sqlite;

mod browser;
mod server;
mod webdriver;

mod admin;
mod authorize;
mod email;
mod factors;
mod harness;
mod pages;
mod passkeys;
mod signin;
