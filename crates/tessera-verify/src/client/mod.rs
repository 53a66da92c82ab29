//! The [`Verifier`]: keys fetched from Tessera and cached, the revocation feed followed in the
//! background, or every token sent to introspection, depending on how it was built.

mod fetch;
mod follower;
mod introspect;
mod jwks;

use crate::{Claims, Clock, Expected, SystemClock, VerifyError};
use follower::Feed;
use introspect::Introspector;
use jwks::RemoteKeys;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// At most one JWKS refetch per this long, however many unknown `kid`s arrive.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Keys are refetched when a token needs them after this long, so withdrawn keys go away.
pub const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(300);
/// How long one long poll of the revocation feed waits for news (Tessera allows up to 30 s).
pub const DEFAULT_FEED_WAIT: Duration = Duration::from_secs(25);
/// Without contact with the feed for this long, tokens are refused as unverifiable: a dead
/// feed must not silently turn into accepting revoked tokens.
pub const DEFAULT_MAX_FEED_STALENESS: Duration = Duration::from_secs(60);
/// How long an introspection answer is reused. Short, so a revocation still reaches this
/// service within Tessera's 2-second promise.
pub const DEFAULT_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(2);

/// A client id and secret, sent with HTTP Basic. `Debug` never prints the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    id: String,
    secret: String,
}

impl ClientCredentials {
    /// Credentials of a Tessera service client (`svc_…`, `tcs_…`).
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientCredentials { id: id.into(), secret: secret.into() }
    }

    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").field("id", &self.id).field("secret", &"<redacted>").finish()
    }
}

/// Options for a [`Verifier`]; start with [`Verifier::builder`].
#[derive(Debug)]
pub struct VerifierBuilder {
    issuer: String,
    base_url: Option<String>,
    jwks_uri: Option<String>,
    audiences: Vec<String>,
    leeway: Duration,
    refetch_interval: Duration,
    keys_max_age: Duration,
    feed: Option<ClientCredentials>,
    feed_wait: Duration,
    max_token_lifetime: Duration,
    max_feed_staleness: Option<Duration>,
    introspect: Option<ClientCredentials>,
    introspection_cache_ttl: Duration,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// Fetches everything (discovery, JWKS, feed, introspection) from `base_url` instead of
    /// the issuer, e.g. an internal address when the issuer is a public URL. Discovered
    /// endpoints under the issuer are moved onto it. Tokens must still carry `iss` = issuer.
    pub fn fetch_from(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(trim(base_url.into()));
        self
    }

    /// Uses this JWKS URL and skips discovery.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// Accepts tokens whose `aud` names `audience` (repeatable). Without any, the issuer is
    /// the expected audience, as in Tessera's default configuration.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock leeway on `exp` and `nbf`: default 5 s, at most 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// At most one JWKS refetch per `interval` on unknown `kid`s (default 10 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Refetches the JWKS when a token needs it and the cached copy is this old (default 5 min).
    pub fn keys_max_age(mut self, age: Duration) -> Self {
        self.keys_max_age = age;
        self
    }

    /// Follows Tessera's revocation feed with these client credentials, so revoked tokens are
    /// refused without asking Tessera per request. The first sync happens in `build`.
    pub fn revocation_feed(mut self, credentials: ClientCredentials) -> Self {
        self.feed = Some(credentials);
        self
    }

    /// How long each long poll of the feed waits for news (default 25 s, at most 30 s).
    pub fn feed_wait(mut self, wait: Duration) -> Self {
        self.feed_wait = wait.min(Duration::from_secs(30));
        self
    }

    /// The longest access-token lifetime Tessera is configured with (default 1 h); subject
    /// cut-offs from the feed are kept at least this long, and longer when the feed gives them
    /// a later `exp` (Tessera does).
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// Refuses tokens as `Unavailable` once the feed has not been reached for this long
    /// (default 60 s); `None` keeps accepting on stale revocation data.
    pub fn max_feed_staleness(mut self, staleness: Option<Duration>) -> Self {
        self.max_feed_staleness = staleness;
        self
    }

    /// Asks Tessera about every token (RFC 7662 introspection) instead of checking
    /// signatures locally; answers are cached briefly.
    pub fn introspect(mut self, credentials: ClientCredentials) -> Self {
        self.introspect = Some(credentials);
        self
    }

    /// How long an introspection answer is reused (default 2 s).
    pub fn introspection_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection_cache_ttl = ttl;
        self
    }

    /// The source of "now" for `exp`, `nbf` and pruning revocations (default: the system).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this HTTP client (proxies, TLS roots, timeouts) instead of a default one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Discovers endpoints, fetches the keys and, when configured, loads every live
    /// revocation and starts following the feed. Fails when Tessera cannot be reached: a
    /// service should not start accepting tokens it cannot judge.
    pub async fn build(self) -> Result<Verifier, VerifyError> {
        let audiences = if self.audiences.is_empty() { vec![self.issuer.clone()] } else { self.audiences.clone() };
        let expected = Expected::new(self.issuer.clone()).with_audiences(audiences)?.with_leeway(self.leeway)?;
        let http = match self.http.clone() {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| VerifyError::Config(format!("HTTP client: {e}")))?,
        };
        let base = self.base_url.clone().unwrap_or_else(|| trim(self.issuer.clone()));
        let relocate = |url: String| match url.strip_prefix(trim(self.issuer.clone()).as_str()) {
            Some(rest) if self.base_url.is_some() => format!("{base}{rest}"),
            _ => url,
        };
        // Discovery is needed unless both endpoints that could come from it are known.
        let needs_discovery = self.jwks_uri.is_none() || self.introspect.is_some();
        let metadata = if needs_discovery {
            let metadata = fetch::metadata(&http, &base).await?;
            // RFC 8414 §3.3: metadata for another issuer must not be used.
            if trim(metadata.issuer.clone()) != trim(self.issuer.clone()) {
                return Err(VerifyError::Config(format!("discovery names issuer {:?}, expected {:?}", metadata.issuer, self.issuer)));
            }
            Some(metadata)
        } else {
            None
        };
        let mode = match &self.introspect {
            Some(creds) => {
                let url = metadata
                    .as_ref()
                    .and_then(|m| m.introspection_endpoint.clone())
                    .map(relocate)
                    .unwrap_or_else(|| format!("{base}/oauth2/introspect"));
                Mode::Remote(Introspector::new(url, creds.clone(), self.introspection_cache_ttl))
            }
            None => {
                let url = match (&self.jwks_uri, &metadata) {
                    (Some(url), _) => url.clone(),
                    (None, Some(m)) => relocate(m.jwks_uri.clone()),
                    (None, None) => format!("{base}/.well-known/jwks.json"),
                };
                Mode::Local(RemoteKeys::load(&http, url, self.refetch_interval, self.keys_max_age).await?)
            }
        };
        let feed = match &self.feed {
            Some(creds) => Some(
                Feed::sync(
                    &http,
                    format!("{base}/v1/revocations"),
                    creds.clone(),
                    self.feed_wait,
                    self.max_token_lifetime,
                    self.leeway,
                    self.max_feed_staleness,
                    self.clock.now(),
                )
                .await?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared { http, expected, clock: self.clock, mode, feed });
        let follower = shared.feed.as_ref().map(|_| follower::spawn(shared.clone()));
        Ok(Verifier { inner: Arc::new(Inner { shared, follower: Mutex::new(follower) }) })
    }
}

fn trim(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

/// Checks Tessera access tokens: signature with the published keys, `typ`, `iss`, `aud`,
/// `exp`, `nbf`, and revocation. Cheap to clone (clones share caches and the follower); the
/// background follower stops when the last clone is dropped or on [`Verifier::shutdown`].
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    follower: Mutex<Option<follower::Handle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(handle) = self.follower.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            handle.stop_now();
        }
    }
}

/// What the verifier and its follower task share; the task holds this, not the `Verifier`,
/// so dropping the last `Verifier` is what stops it.
#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    expected: Expected,
    clock: Arc<dyn Clock>,
    mode: Mode,
    feed: Option<Feed>,
}

#[derive(Debug)]
enum Mode {
    Local(RemoteKeys),
    Remote(Introspector),
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierStats {
    /// JWKS fetches so far, the first one included.
    pub jwks_fetches: u64,
    /// Usable keys in the cache.
    pub keys: usize,
    /// Revocation entries held.
    pub revocations: usize,
    /// Introspection calls made (cache misses).
    pub introspections: u64,
}

impl Verifier {
    /// Options for verifying tokens issued by `issuer` (the exact `iss` of its tokens, and
    /// where discovery is fetched from unless [`VerifierBuilder::fetch_from`] says otherwise).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            base_url: None,
            jwks_uri: None,
            audiences: Vec::new(),
            leeway: crate::DEFAULT_LEEWAY,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            keys_max_age: DEFAULT_KEYS_MAX_AGE,
            feed: None,
            feed_wait: DEFAULT_FEED_WAIT,
            max_token_lifetime: crate::DEFAULT_MAX_TOKEN_LIFETIME,
            max_feed_staleness: Some(DEFAULT_MAX_FEED_STALENESS),
            introspect: None,
            introspection_cache_ttl: DEFAULT_INTROSPECTION_CACHE_TTL,
            clock: Arc::new(SystemClock),
            http: None,
        }
    }

    /// Options for a verifier that asks Tessera's RFC 7662 introspection endpoint about every
    /// token (with a short cache) instead of checking signatures locally.
    pub fn introspecting(issuer: impl Into<String>, credentials: ClientCredentials) -> VerifierBuilder {
        Self::builder(issuer).introspect(credentials)
    }

    /// Verifies `token` (the bare JWT, without `Bearer `) and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let shared = &self.inner.shared;
        let now = shared.clock.now();
        let claims = match &shared.mode {
            Mode::Local(keys) => keys.verify(&shared.http, token, &shared.expected, now).await?,
            Mode::Remote(introspector) => introspector.verify(&shared.http, token, &shared.expected, now).await?,
        };
        if let Some(feed) = &shared.feed {
            feed.check(&claims)?;
        }
        Ok(claims)
    }

    /// What the verifier expects of every token.
    pub fn expected(&self) -> &Expected {
        &self.inner.shared.expected
    }

    /// Counters: JWKS fetches, cached keys, revocations held, introspection calls.
    pub fn stats(&self) -> VerifierStats {
        let shared = &self.inner.shared;
        let (jwks_fetches, keys, introspections) = match &shared.mode {
            Mode::Local(k) => (k.fetches(), k.len(), 0),
            Mode::Remote(i) => (0, 0, i.calls()),
        };
        let revocations = shared.feed.as_ref().map_or(0, Feed::len);
        VerifierStats { jwks_fetches, keys, revocations, introspections }
    }

    /// Stops following the revocation feed and waits for the task to end. Tokens verified
    /// afterwards are refused as `Unavailable` once the feed data is stale.
    pub async fn shutdown(&self) {
        let handle = self.inner.follower.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            handle.stop().await;
        }
    }
}
