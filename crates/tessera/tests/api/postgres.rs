//! A private PostgreSQL for the tests: Debian's `initdb`/`pg_ctl` in a temporary directory on
//! a free port, started once per test process and stopped when the process ends; or the
//! server named by `TESSERA_TEST_POSTGRES_URL`. Each test gets a database of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A PostgreSQL cluster this process started.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

fn bin_dir() -> PathBuf {
    for version in ["17", "16", "15", "14", "13"] {
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    panic!("PostgreSQL server binaries not found (install Debian's postgresql package)");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// Initialises and starts a cluster that dies with this process.
    pub fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("tessera-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            assert!(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap().success());
        }
        let cluster = Cluster { dir, port: free_port(), bin: bin_dir(), as_postgres };
        let data = cluster.data();
        let init = cluster.pg(&["initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"], Some(&data)).output().unwrap();
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        cluster.start_server();
        cluster.watch_parent();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg(&self, args: &[&str], path: Option<&Path>) -> Command {
        let program = self.bin.join(args[0]);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(&args[1..]);
        if let Some(path) = path {
            cmd.arg(path);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=400",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let out = self
            .pg(&["pg_ctl", "-w", "-t", "60", "-o", &options, "-l", &log.to_string_lossy(), "start", "-D"], Some(&self.data()))
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server at once (an outage).
    pub fn stop_server(&self) {
        let out = self.pg(&["pg_ctl", "-w", "-m", "immediate", "stop", "-D"], Some(&self.data())).output().unwrap();
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server and removes its files when this process exits, however it exits.
    fn watch_parent(&self) {
        let stop = format!(
            "{runuser}{pg_ctl} -D {data} -m immediate stop",
            runuser = if self.as_postgres { "runuser -u postgres -- " } else { "" },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        // Never waited for: the watcher must outlive this process to clean up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg(&["pg_ctl", "-m", "immediate", "stop", "-D"], Some(&self.data())).output();
    }
}

/// The server every test of this process shares: `postgres://…/postgres`.
fn shared_admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TESSERA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let cluster = Box::leak(Box::new(Cluster::start()));
            cluster.url("postgres")
        }
    })
}

/// Creates a new empty database on `admin_url`'s server and returns its URL.
pub async fn fresh_database_on(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

/// A new empty database on the shared test server.
pub async fn fresh_database() -> String {
    fresh_database_on(shared_admin_url()).await
}
