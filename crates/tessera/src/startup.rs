//! Building the application: open and migrate the store, start the service, bind the
//! listener (port 0 in tests), and serve until told to stop.

use crate::clock::Clock;
use crate::config::{Config, DatabaseKind};
use crate::http;
use crate::jobs;
use crate::service::Tessera;
use crate::state::{AppState, HttpSettings};
use crate::store::{DynStore, PgStore, SqliteStore};
use anyhow::Context;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    shutdown_grace: std::time::Duration,
}

impl Application {
    /// Opens the store, starts the service and binds `config.listen`.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let tessera = start_service(config, clock).await?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("TESSERA_LISTEN: cannot listen on {}", config.listen))?;
        let http = HttpSettings { trusted_proxies: config.trusted_proxies.clone(), cors_origins: config.cors_origins.clone() };
        Ok(Application { listener, state: AppState::new(tessera, http), shutdown_grace: config.shutdown_grace.as_std() })
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
        let app = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(signal).into_future();
        let grace = self.shutdown_grace;
        let served = tokio::select! {
            served = serve => served,
            () = async {
                let _ = stopped.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests still running after the shutdown grace; stopping anyway");
                Ok(())
            }
        };
        jobs.stop().await;
        served
    }
}
