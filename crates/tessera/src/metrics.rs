//! Prometheus metrics, held by the service (no process-global registry), rendered in the
//! text exposition format at `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s: token paths live at the low end, password hashing at the high end.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18))
}

/// Every metric Tessera exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub requests: Family<Labels, Counter>,
    /// HTTP latency by route.
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Logins by outcome.
    pub logins: Family<Labels, Counter>,
    /// Tokens issued by grant.
    pub tokens_issued: Family<Labels, Counter>,
    /// Refresh-token reuse detections (sessions ended).
    pub refresh_reuse: Counter,
    /// Requests refused by a limit, by limit.
    pub rate_limited: Family<Labels, Counter>,
    /// Password hashes waiting for a core.
    pub hash_queue_depth: Gauge,
    /// How long a password hash waited for a core.
    pub hash_wait: Histogram,
    /// Database connections by state.
    pub db_connections: Family<Labels, Gauge>,
    /// Signing keys by status.
    pub signing_keys: Family<Labels, Gauge>,
    /// Verified-token cache hits and misses.
    pub token_cache: Family<Labels, Counter>,
    /// Handles on the hot paths, made once so counting costs no allocation.
    pub hot: Hot,
}

/// Counters the token and verify paths bump on every request.
#[derive(Debug, Clone)]
pub struct Hot {
    pub cache_hit: Counter,
    pub cache_miss: Counter,
    pub issued_client_credentials: Counter,
    pub issued_refresh_token: Counter,
    pub issued_password: Counter,
}

impl Hot {
    /// The counter of tokens issued by `grant`.
    pub fn issued(&self, grant: &str) -> &Counter {
        match grant {
            "client_credentials" => &self.issued_client_credentials,
            "refresh_token" => &self.issued_refresh_token,
            _ => &self.issued_password,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let token_cache: Family<Labels, Counter> = Family::default();
        let tokens_issued: Family<Labels, Counter> = Family::default();
        // One call per statement: `get_or_create` returns a read guard that lives to the end
        // of its statement, and a second call in the same statement would wait on it forever.
        let handle = |family: &Family<Labels, Counter>, k: &'static str, v: &str| -> Counter {
            family.get_or_create(&vec![(k, v.to_owned())]).clone()
        };
        let cache_hit = handle(&token_cache, "result", "hit");
        let cache_miss = handle(&token_cache, "result", "miss");
        let issued_client_credentials = handle(&tokens_issued, "grant", "client_credentials");
        let issued_refresh_token = handle(&tokens_issued, "grant", "refresh_token");
        let issued_password = handle(&tokens_issued, "grant", "password");
        let hot = Hot { cache_hit, cache_miss, issued_client_credentials, issued_refresh_token, issued_password };
        let m = Metrics {
            hot,
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            logins: Family::default(),
            tokens_issued,
            refresh_reuse: Counter::default(),
            rate_limited: Family::default(),
            hash_queue_depth: Gauge::default(),
            hash_wait: latency_histogram(),
            db_connections: Family::default(),
            signing_keys: Family::default(),
            token_cache,
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by route, method and status", m.requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", m.latency.clone());
        registry.register("logins", "Password logins by outcome", m.logins.clone());
        registry.register("tokens_issued", "Access tokens issued by grant", m.tokens_issued.clone());
        registry.register("refresh_reuse_detected", "Refresh tokens presented again after rotation", m.refresh_reuse.clone());
        registry.register("rate_limited", "Requests refused by a limit", m.rate_limited.clone());
        registry.register("password_hash_queue_depth", "Password hashes waiting for a core", m.hash_queue_depth.clone());
        registry.register("password_hash_wait_seconds", "Time a password hash waited for a core", m.hash_wait.clone());
        registry.register("db_connections", "Database pool connections by state", m.db_connections.clone());
        registry.register("signing_keys", "Signing keys by status", m.signing_keys.clone());
        registry.register("verified_token_cache", "Verified-token cache look-ups by result", m.token_cache.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one event in a labelled counter family.
    pub fn count(family: &Family<Labels, Counter>, label: &'static str, value: &str) {
        family.get_or_create(&vec![(label, value.to_owned())]).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
