//! Building the application: open and migrate the store, start the service, bind the
//! listener (port 0 in tests), and serve until told to stop.
//!
//! Connections are served by hyper's HTTP/1 server directly (not `axum::serve`), for the
//! settings that keep slow or numerous clients from holding the server: a deadline for each
//! request head, which also closes kept-alive connections left idle, and a cap on the
//! connections served at once.

use crate::clock::Clock;
use crate::config::{Config, DatabaseKind};
use crate::http;
use crate::http::pages::Pages;
use crate::jobs;
use crate::service::Tessera;
use crate::state::{AppState, HttpSettings};
use crate::store::{DynStore, PgStore, SqliteStore};
use anyhow::Context;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

/// How long a client may take to send a request line and headers, counted from when the
/// server starts waiting for them. A connection that sends half a request head (slowloris)
/// is closed after this; so is a kept-alive connection that sends nothing for this long
/// (hyper starts the same timer when it waits for the next request on a connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once. Further connections wait in the listen backlog until one
/// closes, so a flood of idle connections costs neither memory nor file descriptors beyond
/// this; with [`HEADER_READ_TIMEOUT`] each idle one frees its place within seconds. Well
/// under the `LimitNOFILE` of the systemd unit in `deploy/`.
pub const MAX_CONNECTIONS: usize = 4096;

/// After an accept error that is not about one connection (e.g. out of file descriptors),
/// wait this long before accepting again rather than spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The server's defences against slow and numerous connections. The defaults are
/// [`HEADER_READ_TIMEOUT`] and [`MAX_CONNECTIONS`]; tests use shorter and smaller ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CONNECTIONS`]; at least 1.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { header_read_timeout: HEADER_READ_TIMEOUT, max_connections: MAX_CONNECTIONS }
    }
}

/// Opens the configured database and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    match config.database_kind() {
        DatabaseKind::Sqlite(_) => {
            let store =
                SqliteStore::connect(config.database_url.expose(), config.database_max_connections, config.database_timeout.as_std())
                    .await
                    .context("cannot open the SQLite database")?;
            store.migrate().await.context("cannot migrate the SQLite database")?;
            Ok(Arc::new(store))
        }
        DatabaseKind::Postgres => {
            let store = PgStore::connect(config.database_url.expose(), config.database_max_connections, config.database_timeout.as_std())
                .await
                .context("cannot connect to PostgreSQL")?;
            store.migrate().await.context("cannot migrate the PostgreSQL database")?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the store and starts the service without serving HTTP (the CLI uses this).
pub async fn start_service(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Tessera>> {
    let store = open_store(config).await?;
    Tessera::start(config, store, clock).await.map_err(|e| anyhow::anyhow!("cannot start: {e}"))
}

/// A service bound to its listener, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown_grace: Duration,
    limits: ConnectionLimits,
}

impl Application {
    /// Opens the store, starts the service and binds `config.listen`.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let tessera = start_service(config, clock).await?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("TESSERA_LISTEN: cannot listen on {}", config.listen))?;
        let csrf_key = tessera.shared_key(crate::http::pages::csrf::PURPOSE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let pages = Pages::load(config, &csrf_key)?;
        let http = HttpSettings {
            trusted_proxies: config.trusted_proxies.clone(),
            cors_origins: config.cors_origins.clone(),
            metrics_token: config.metrics_token.clone(),
            pages: Arc::new(pages),
        };
        Ok(Application {
            listener,
            state: AppState::new(tessera, http),
            shutdown_grace: config.shutdown_grace.as_std(),
            limits: ConnectionLimits::default(),
        })
    }

    /// Serves with other connection limits than the defaults (tests use short ones).
    #[must_use]
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = ConnectionLimits { max_connections: limits.max_connections.max(1), ..limits };
        self
    }

    /// The address actually bound (the port is chosen by the OS when configured as 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The running service.
    pub fn tessera(&self) -> &Arc<Tessera> {
        self.state.tessera()
    }

    /// Serves until `shutdown` completes, then stops accepting, drains in-flight requests
    /// for at most the shutdown grace, and stops the background jobs.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let jobs = jobs::spawn(self.state.tessera().clone());
        let mut make_service = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1.timer(TokioTimer::new()).header_read_timeout(self.limits.header_read_timeout).keep_alive(true);
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // A free slot first: past the cap, connections wait in the backlog, unaccepted.
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot,
                () = &mut shutdown => break,
            };
            let Ok(slot) = slot else { break };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            };
            let service = connection_service(&mut make_service, remote).await;
            let connection = graceful.watch(http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    // Timeouts, resets and malformed requests: the client's business.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(slot);
            });
        }
        // No more connections; the listening socket closes here.
        drop(self.listener);
        let grace = self.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests still running after the shutdown grace; stopping anyway");
        }
        jobs.stop().await;
        Ok(())
    }
}

/// The router for one connection, which tells handlers the peer's address.
async fn connection_service(
    make_service: &mut IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    remote: SocketAddr,
) -> <IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr> as Service<SocketAddr>>::Response {
    match make_service.call(remote).await {
        Ok(service) => service,
        Err(never) => match never {},
    }
}

/// An error about one connection (reset before it was accepted) is nobody's concern; any
/// other (out of file descriptors, ...) is logged, and accepting pauses briefly.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}
