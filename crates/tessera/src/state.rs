//! The state every handler receives: the use cases and the few settings only HTTP needs.

use crate::service::Tessera;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

/// Cheap to clone; handlers reach the use cases through `Deref`.
#[derive(Debug, Clone)]
pub struct AppState {
    tessera: Arc<Tessera>,
    http: Arc<HttpSettings>,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed by CORS; empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// When set, `/metrics` answers only requests bearing this token.
    pub metrics_token: Option<secrecy::SecretString>,
    /// The pages' layout, assets, cookie policy and CSRF key.
    pub pages: Arc<crate::http::pages::Pages>,
}

impl AppState {
    /// Bundles the service and the HTTP settings.
    pub fn new(tessera: Arc<Tessera>, http: HttpSettings) -> Self {
        AppState { tessera, http: Arc::new(http) }
    }

    /// The HTTP settings.
    pub fn http(&self) -> &HttpSettings {
        &self.http
    }

    /// The shared service.
    pub fn tessera(&self) -> &Arc<Tessera> {
        &self.tessera
    }
}

impl Deref for AppState {
    type Target = Tessera;
    fn deref(&self) -> &Tessera {
        &self.tessera
    }
}
