//! One Tessera for the whole test binary, on a loopback port, in a runtime of its own (each
//! test has its own runtime, which ends with the test). Its issuer is its real address, so
//! that the browser's origin is the issuer's, as in a deployment.

use crate::helpers::{TestApp, spawn_app_with};
use std::sync::OnceLock;

/// The shared server.
pub struct Server {
    /// `http://127.0.0.1:PORT`, which is also the issuer.
    pub address: String,
    /// An admin's email (password [`crate::helpers::PASSWORD`]), to register clients.
    pub admin_email: String,
}

impl Server {
    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

/// Starts the server on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (started, address) = std::sync::mpsc::channel::<(String, String)>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let app: TestApp = spawn_app_with(|config| {
                    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                    config.listen = listener.local_addr().expect("bound");
                    config.issuer = format!("http://{}", config.listen);
                    config.audience = vec![config.issuer.clone()];
                })
                .await;
                let admin = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
                let registration = tessera::service::Registration {
                    email: admin.clone(),
                    password: crate::helpers::PASSWORD.into(),
                    username: None,
                    admin: true,
                };
                app.tessera.create_user(registration).await.expect("the admin is created");
                started.send((app.address.clone(), admin)).expect("the test is waiting");
                // Serves until the test process exits.
                let _serving = app;
                std::future::pending::<()>().await;
            });
        });
        let (address, admin_email) = address.recv().expect("the server started");
        Server { address, admin_email }
    })
}
