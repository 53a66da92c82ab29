//! Starting the Tessera under test: the release binary as its own process (so its memory
//! and CPU are its own), or in-process for the smoke test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub enum Target {
    /// A `tessera` binary, run as `tessera serve`.
    Binary(PathBuf),
    /// The library in this process (smoke runs; no memory figures).
    InProcess,
}

/// Where the server is and who may call it; shared by every load task.
#[derive(Debug)]
pub struct Endpoint {
    pub base: String,
    pub admin_email: String,
    pub client_id: String,
    pub client_secret: String,
    /// A third-party application with a redirect URI, for the authorization code flow.
    pub app_client_id: String,
    pub app_client_secret: String,
}

/// The application's redirect URI (nothing listens there: the harness reads the code from
/// the `Location` header).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

/// A running Tessera with an admin and a client.
#[derive(Debug)]
pub struct Server {
    pub endpoint: std::sync::Arc<Endpoint>,
    pub startup: Duration,
    pid: Option<u32>,
    child: Option<tokio::process::Child>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

/// The password of every account the harness makes.
pub const PASSWORD: &str = "correct horse battery staple";

fn env(dir: &std::path::Path, port: u16) -> Vec<(String, String)> {
    [
        ("TESSERA_DATABASE_URL", format!("sqlite://{}", dir.join("bench.db").display())),
        ("TESSERA_LISTEN", format!("127.0.0.1:{port}")),
        ("TESSERA_RATE_LIMIT_PER_IP", "0".into()),
        ("TESSERA_LOGIN_MAX_FAILURES", "1000000".into()),
        ("TESSERA_HASH_QUEUE", "1024".into()),
        ("TESSERA_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Server {
    /// Starts Tessera on a new SQLite file and makes its admin and client.
    pub async fn start(target: &Target) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let admin_email = "bench-admin@example.com".to_owned();
        let http = reqwest::Client::new();
        match target {
            Target::Binary(bin) => {
                let started = Instant::now();
                let child = tokio::process::Command::new(bin)
                    .arg("serve")
                    .envs(env(dir.path(), port))
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()?;
                while !matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status().is_success()) {
                    anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "tessera did not become ready");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let startup = started.elapsed();
                let run = |args: &[&str], stdin: &str| -> anyhow::Result<serde_json::Value> {
                    use std::io::Write;
                    let mut cli = std::process::Command::new(bin)
                        .args(args)
                        .envs(env(dir.path(), port))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()?;
                    cli.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?.write_all(stdin.as_bytes())?;
                    let out = cli.wait_with_output()?;
                    anyhow::ensure!(out.status.success(), "tessera {args:?} failed");
                    Ok(serde_json::from_slice(&out.stdout)?)
                };
                run(&["users", "create", "--email", &admin_email, "--admin"], &format!("{PASSWORD}\n"))?;
                let client = run(&["clients", "create", "--name", "bench", "--scope", "bench:read"], "")?;
                let app = run(&["clients", "create", "--name", "bench-app", "--scope", "bench:read", "--redirect-uri", REDIRECT_URI], "")?;
                let field = |v: &serde_json::Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
                let endpoint = Endpoint {
                    base,
                    admin_email,
                    client_id: field(&client, "client_id"),
                    client_secret: field(&client, "client_secret"),
                    app_client_id: field(&app, "client_id"),
                    app_client_secret: field(&app, "client_secret"),
                };
                Ok(Server { endpoint: std::sync::Arc::new(endpoint), startup, pid: child.id(), child: Some(child), stop: None, _dir: dir })
            }
            Target::InProcess => {
                let config = tessera::config::Config::load_from(None, env(dir.path(), port))?;
                let started = Instant::now();
                let app = tessera::startup::Application::build(&config, std::sync::Arc::new(tessera::clock::SystemClock)).await?;
                let startup = started.elapsed();
                let tessera = app.tessera().clone();
                let registration =
                    tessera::service::Registration { email: admin_email.clone(), password: PASSWORD.into(), username: None, admin: true };
                tessera.create_user(registration).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let spec = tessera::service::ClientSpec { name: "bench".into(), scopes: vec!["bench:read".into()], ..Default::default() };
                let client = tessera.register_client(spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let spec = tessera::service::ClientSpec {
                    name: "bench-app".into(),
                    scopes: vec!["bench:read".into()],
                    redirect_uris: vec![REDIRECT_URI.into()],
                    ..Default::default()
                };
                let app_client = tessera.register_client(spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(app.run_until(async move {
                    let _ = stopped.await;
                }));
                let secret = |c: &tessera::service::NewClient| {
                    c.secret.as_ref().map(|s| s.expose().to_owned()).ok_or_else(|| anyhow::anyhow!("a bench client has no secret"))
                };
                let endpoint = Endpoint {
                    base,
                    admin_email,
                    client_id: client.client.id.to_string(),
                    client_secret: secret(&client)?,
                    app_client_id: app_client.client.id.to_string(),
                    app_client_secret: secret(&app_client)?,
                };
                Ok(Server { endpoint: std::sync::Arc::new(endpoint), startup, pid: None, child: None, stop: Some(stop), _dir: dir })
            }
        }
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the server process has used so far (user + system), read from
    /// `/proc/PID/stat`. Unlike throughput, CPU per request hardly moves when other work
    /// shares the cores, so it is the figure to compare two builds with on a busy machine.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_sec()))
    }

    /// Resident memory now.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory so far.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Stops the server (SIGTERM for the process: it drains and exits).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }
}

/// The kernel's clock tick for `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
