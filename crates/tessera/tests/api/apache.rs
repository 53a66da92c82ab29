//! Apache httpd with mod_auth_openidc (Debian's `libapache2-mod-auth-openidc`) as a relying
//! party of a Tessera: its whole configuration written into a temp directory (no system
//! configuration), run on a loopback port, in front of a small service that echoes the
//! `OIDC_CLAIM_*` headers the module passes on. Shared by the API test (`apache_rp.rs`) and the
//! browser test. It fails, never skips, when Apache or the module is missing (`.ci/run`
//! installs both).

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// Apache's process group, stopped (and reaped) when dropped, so a failing test leaves no
/// process behind.
pub struct Apache {
    child: Child,
    dir: tempfile::TempDir,
}

impl Apache {
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The service Apache protects: answers with the `OIDC_CLAIM_*` headers the module passed on.
pub async fn upstream() -> SocketAddr {
    let echo = |headers: HeaderMap| async move {
        let claims: Map<String, Value> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("oidc_claim_"))
            .map(|(name, value)| (name.as_str().to_owned(), Value::from(value.to_str().unwrap_or("<not text>"))))
            .collect();
        axum::Json(Value::Object(claims))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    address
}

fn configuration(dir: &Path, port: u16, issuer: &str, client_id: &str, client_secret: &str, upstream: SocketAddr) -> String {
    let modules = ["mpm_event", "authn_core", "authz_core", "authz_user", "proxy", "proxy_http", "auth_openidc"]
        .map(|name| format!("LoadModule {name}_module {MODULES}/mod_{name}.so"))
        .join("\n");
    let root = dir.display();
    format!(
        r#"ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:info
User nobody
Group nogroup
DefaultRuntimeDir "{root}"
{modules}

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCPKCEMethod S256
OIDCScope "openid email profile"
OIDCRemoteUserClaim email
OIDCPassClaimsAs headers

<Location /protected/>
    AuthType openid-connect
    Require valid-user
    ProxyPass http://{upstream}/
</Location>
"#,
        passphrase = uuid::Uuid::new_v4().simple(),
    )
}

pub async fn start_apache(port: u16, issuer: &str, client_id: &str, client_secret: &str, upstream: SocketAddr) -> Apache {
    let dir = tempfile::tempdir().unwrap();
    // Apache's workers run as nobody.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = dir.path().join("httpd.conf");
    std::fs::write(&conf, configuration(dir.path(), port, issuer, client_id, client_secret, upstream)).unwrap();
    let child = Command::new(APACHE)
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{APACHE} must be installed (libapache2-mod-auth-openidc too): {e}"));
    let apache = Apache { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Apache did not start listening:\n{}", apache.error_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    apache
}
