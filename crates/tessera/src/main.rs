//! The `tessera` binary: parse the command line, load the configuration, start logging,
//! dispatch. Everything else lives in the library.

use anyhow::Context;
use clap::Parser;
use std::io::BufRead;
use std::sync::Arc;
use tessera::cli::{Cli, ClientsCommand, Command, KeysCommand, UsersCommand};
use tessera::clock::SystemClock;
use tessera::config::{Config, LogFormat};
use tessera::service::{ClientSpec, Registration};
use tessera::startup::{Application, open_store, start_service};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tessera: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(&config, Arc::new(SystemClock)).await?;
            tracing::info!(address = %app.local_addr()?, "tessera is serving");
            app.run_until(shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied");
        }
        Command::Users(UsersCommand::Create(args)) => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let reg = Registration { email: args.email, password, username: args.username, admin: args.admin };
            let user = tessera.create_user(reg).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&tessera::http::views::UserView::from(&user))?);
        }
        Command::Users(UsersCommand::ResetMfa { email }) => {
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let user = tessera.reset_mfa_by_email(&email).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&tessera::http::views::UserView::from(&user))?);
        }
        Command::Clients(ClientsCommand::Create {
            name,
            scopes,
            admin,
            audiences,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party,
        }) => {
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let roles = if admin { vec!["admin".to_owned()] } else { vec![] };
            let spec = ClientSpec { name, scopes, roles, audiences, redirect_uris, post_logout_redirect_uris, public, first_party };
            let created = tessera.register_client(spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let audiences = tessera.client_audiences(&created.client);
            let client = tessera::http::clients::ClientView::new(&created.client, audiences);
            let view =
                tessera::http::clients::NewClientView { client, client_secret: created.secret.as_ref().map(|s| s.expose().to_owned()) };
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        Command::Audit { limit, cursor } => {
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let page = tessera.audit_page(Some(limit), cursor.as_deref()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&tessera::http::views::AuditTrail::from(page))?);
        }
        Command::Healthcheck { url } => {
            let url = url.unwrap_or_else(|| format!("http://{}", config.listen));
            healthcheck(&url).await?;
        }
        Command::Keys(KeysCommand::Rotate { alg }) => {
            let alg = alg.map(|a| a.parse()).transpose().map_err(|e| anyhow::anyhow!("--alg: {e}"))?;
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let rotated = tessera.rotate_keys("cli", alg).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&tessera::http::views::RotatedKeyView::from(rotated))?);
        }
        Command::Keys(KeysCommand::List) => {
            let tessera = start_service(&config, Arc::new(SystemClock)).await?;
            let keys = tessera.list_keys().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&tessera::http::views::KeyList { keys })?);
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET of `/readyz` on plain TCP: the probe needs no HTTP client library.
async fn healthcheck(base: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let authority = authority.replace("0.0.0.0", "127.0.0.1");
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(&authority).await?;
        let request = format!("GET /readyz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), probe).await.context("no answer within 5 s")??;
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned();
    anyhow::ensure!(status_line.contains(" 200 "), "not ready: {status_line}");
    println!("ready");
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
