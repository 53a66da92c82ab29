//! One Tessera for the whole test binary, on a loopback port, in a runtime of its own (each
//! test has its own runtime, which ends with the test). Its issuer is its real address, so
//! that the browser's origin is the issuer's, as in a deployment.

use crate::helpers::{TestApp, spawn_app_with};
use crate::smtp_sink::SmtpSink;
use std::sync::OnceLock;

/// The shared server.
pub struct Server {
    /// `http://127.0.0.1:PORT` (or `http://localhost:PORT`), which is also the issuer.
    pub address: String,
    /// Asks the server's runtime to make an admin (the email), answering with the user id.
    admins: tokio::sync::mpsc::UnboundedSender<(String, tokio::sync::oneshot::Sender<String>)>,
    /// The mail server it sends to.
    pub mail: SmtpSink,
}

impl Server {
    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Makes an account with role `admin` and the tests' password, as `tessera users create
    /// --admin` does; returns its id.
    pub async fn create_admin(&self, email: &str) -> String {
        let (done, id) = tokio::sync::oneshot::channel();
        self.admins.send((email.to_owned(), done)).expect("the server runs");
        id.await.expect("the admin is made")
    }
}

/// Starts the server on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start("127.0.0.1"))
}

/// A second server, started on first use, whose issuer is `http://localhost:PORT`: browsers
/// allow WebAuthn (passkeys) only on a domain name, and an issuer on an IP address has none.
pub fn localhost_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start("localhost"))
}

/// A server whose issuer names its address with `host`.
fn start(host: &'static str) -> Server {
    let (started, address) = std::sync::mpsc::channel::<(String, SmtpSink)>();
    let (admins, mut requests) = tokio::sync::mpsc::unbounded_channel::<(String, tokio::sync::oneshot::Sender<String>)>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let mail = SmtpSink::start().await;
            let app: TestApp = spawn_app_with(|config| {
                config.smtp_url = Some(tessera::config::SmtpUrl {
                    security: tessera::config::SmtpSecurity::Plain,
                    host: "127.0.0.1".into(),
                    port: mail.port,
                    username: None,
                    password: None,
                });
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                config.listen = listener.local_addr().expect("bound");
                config.issuer = format!("http://{host}:{}", config.listen.port());
                config.audience = vec![config.issuer.clone()];
            })
            .await;
            started.send((app.address.clone(), mail)).expect("the test is waiting");
            // Serves until the test process exits, making admins when asked.
            while let Some((email, done)) = requests.recv().await {
                let registration =
                    tessera::service::Registration { email, password: crate::helpers::PASSWORD.into(), username: None, admin: true };
                let user = app.tessera.create_user(registration).await.expect("admin created");
                let _ = done.send(user.id.to_string());
            }
            std::future::pending::<()>().await;
        });
    });
    let (address, mail) = address.recv().expect("the server started");
    let address = address.replace("127.0.0.1", host);
    Server { address, mail, admins }
}
