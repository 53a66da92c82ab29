//! # notes
//!
//! A small service downstream of Tessera: notes owned by users, stored in its own SQLite
//! database, with every request authenticated by `tessera-verify` alone (Tessera's keys,
//! checked locally, and its revocation feed). It exists to show, and to test end to end,
//! how a service uses Tessera.
//!
//! - [`config`]: `NOTES_*` settings and the verifier they describe.
//! - [`store`]: the notes table (the only SQL).
//! - [`http`]: routes and the access rules (owner, `admin` role, `notes:read`/`notes:write` scopes).
//! - [`Application`]: binds a listener (port 0 in tests) and serves until told to stop.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod http;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use tessera_verify::Verifier;
use tokio::net::TcpListener;

/// Why notes could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error("NOTES_DATABASE_URL: {0}")]
    Database(#[from] sqlx::Error),
    /// The listener could not be bound.
    #[error("NOTES_LISTEN: {0}")]
    Listen(#[from] std::io::Error),
}

/// The notes router on `store`, authenticating with `verifier`.
pub fn app(verifier: Verifier, store: store::NoteStore) -> axum::Router {
    http::router(http::AppState { verifier, store })
}

/// The notes service, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
}

impl Application {
    /// Opens the database and binds `listen`; `verifier` is built by the caller (from
    /// [`config::Config::verifier`]) so tests can pin its clock.
    pub async fn build(listen: SocketAddr, database_url: &str, verifier: Verifier) -> Result<Self, StartError> {
        let store = store::NoteStore::open(database_url).await?;
        let listener = TcpListener::bind(listen).await?;
        Ok(Application { listener, router: app(verifier, store) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
