//! Prometheus metrics, held by the service (no process-global registry), rendered at
//! `GET /metrics` in the OpenMetrics text format, or converted by [`classic_text`] to the
//! classic Prometheus text format (0.0.4) for scrapers that ask only for that.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt::Write;

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
    /// Mails queued, by kind.
    pub mail_queued: Family<Labels, Counter>,
    /// Mails handed to the mail server (or, without one in `dev`, to the log).
    pub mail_sent: Counter,
    /// Sends that failed and were scheduled again.
    pub mail_retried: Counter,
    /// Mails given up after a day of failures.
    pub mail_failed: Counter,
    /// Seconds since the oldest mail still waiting was queued.
    pub mail_oldest_unsent_age: Gauge,
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
            mail_queued: Family::default(),
            mail_sent: Counter::default(),
            mail_retried: Counter::default(),
            mail_failed: Counter::default(),
            mail_oldest_unsent_age: Gauge::default(),
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
        registry.register("mail_queued", "Mails queued, by kind", m.mail_queued.clone());
        registry.register("mail_sent", "Mails handed to the mail server", m.mail_sent.clone());
        registry.register("mail_retried", "Mail sends that failed and were scheduled again", m.mail_retried.clone());
        registry.register("mail_failed", "Mails given up after a day of failures", m.mail_failed.clone());
        registry.register(
            "mail_oldest_unsent_age_seconds",
            "Seconds since the oldest mail still waiting was queued",
            m.mail_oldest_unsent_age.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one event in a labelled counter family.
    pub fn count(family: &Family<Labels, Counter>, label: &'static str, value: &str) {
        family.get_or_create(&vec![(label, value.to_owned())]).inc();
    }

    /// The OpenMetrics text exposition, `# EOF` included.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The classic Prometheus text format (version 0.0.4) of an OpenMetrics text exposition such as
/// [`Metrics::render`] makes. The two differ in what this rewrites:
/// - a counter family is named by its sample name (`# TYPE x_total counter`, not `# TYPE x
///   counter`), an info family by `x_info`; `info` and `stateset` become `gauge`, and types
///   the classic format lacks (`unknown`, `gaugehistogram`) become `untyped`;
/// - `_created` samples, `# UNIT` lines, exemplars and `# EOF` have no classic form and are
///   dropped; `HELP` texts lose the `\"` escape the classic format does not have;
/// - sample timestamps are milliseconds rather than seconds.
///
/// Label sets, values and the other sample names are the same in both.
pub fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A `# HELP` waits for its `# TYPE`, which may rename the family.
    let mut help: Option<(&str, &str)> = None;
    // The current family: its OpenMetrics name and type.
    let mut family: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (classic_name, classic_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_owned(), "gauge"),
                _ => (name.to_owned(), "untyped"),
            };
            match help.take() {
                Some((help_name, text)) if help_name == name => {
                    let _ = writeln!(out, "# HELP {classic_name} {}", classic_help(text));
                }
                Some((help_name, text)) => {
                    let _ = writeln!(out, "# HELP {help_name} {}", classic_help(text));
                }
                None => {}
            }
            let _ = writeln!(out, "# TYPE {classic_name} {classic_kind}");
            family = Some((name, kind));
            continue;
        }
        if let Some((help_name, text)) = help.take() {
            let _ = writeln!(out, "# HELP {help_name} {}", classic_help(text));
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if line.starts_with('#') || line.trim().is_empty() {
            // `# UNIT`, `# EOF`: nothing in the classic format.
        } else if let Some(sample) = classic_sample(line, family) {
            out.push_str(&sample);
            out.push('\n');
        }
    }
    if let Some((help_name, text)) = help {
        let _ = writeln!(out, "# HELP {help_name} {}", classic_help(text));
    }
    out
}

/// A `HELP` text without OpenMetrics' `\"` escape (the classic format escapes only `\\` and
/// line feeds, as OpenMetrics does too).
fn classic_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// One sample line in the classic form, or `None` for a sample the classic format lacks.
fn classic_sample(line: &str, family: Option<(&str, &str)>) -> Option<String> {
    let (series, rest) = split_series(line);
    let name = series.split('{').next().unwrap_or(series);
    if let Some((family_name, kind)) = family {
        let created = name.strip_suffix("_created") == Some(family_name);
        if created && matches!(kind, "counter" | "histogram" | "summary" | "gaugehistogram") {
            return None;
        }
    }
    // ` value [timestamp] [# exemplar]`
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    let mut sample = format!("{series} {value}");
    if let Some(seconds) = fields.next().filter(|f| *f != "#").and_then(|f| f.parse::<f64>().ok()) {
        let _ = write!(sample, " {}", (seconds * 1000.0).round());
    }
    Some(sample)
}

/// `name{labels}` and what follows it. Label values are quoted and may hold spaces, `}` and
/// `\"` escapes, so the end of the label set is found by reading them.
fn split_series(line: &str) -> (&str, &str) {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    if !line[name_end..].starts_with('{') {
        return line.split_at(name_end);
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices().skip(name_end) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return line.split_at(i + 1),
            _ => {}
        }
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_and_created_units_exemplars_and_eof_go() {
        let openmetrics = concat!(
            "# HELP jobs Jobs \\\"done\\\" \\\\ \\n.\n",
            "# TYPE jobs counter\n",
            "jobs_total{queue=\"a b} # {x\\\"\"} 3 # {trace=\"1\"} 1.0 1.5\n",
            "jobs_created{queue=\"a b} # {x\\\"\"} 1.7e9\n",
            "# HELP wait_seconds Wait.\n",
            "# TYPE wait_seconds histogram\n",
            "# UNIT wait_seconds seconds\n",
            "wait_seconds_sum 0.5\n",
            "wait_seconds_count 1\n",
            "wait_seconds_bucket{le=\"+Inf\"} 1\n",
            "wait_seconds_created 1.5\n",
            "# HELP up Up.\n",
            "# TYPE up gauge\n",
            "up 1 12.5\n",
            "# TYPE build info\n",
            "build_info{version=\"1\"} 1\n",
            "# EOF\n",
        );

        let classic = classic_text(openmetrics);

        let expected = concat!(
            "# HELP jobs_total Jobs \"done\" \\\\ \\n.\n",
            "# TYPE jobs_total counter\n",
            "jobs_total{queue=\"a b} # {x\\\"\"} 3\n",
            "# HELP wait_seconds Wait.\n",
            "# TYPE wait_seconds histogram\n",
            "wait_seconds_sum 0.5\n",
            "wait_seconds_count 1\n",
            "wait_seconds_bucket{le=\"+Inf\"} 1\n",
            "# HELP up Up.\n",
            "# TYPE up gauge\n",
            "up 1 12500\n",
            "# TYPE build_info gauge\n",
            "build_info{version=\"1\"} 1\n",
        );
        assert_eq!(classic, expected);
    }

    #[test]
    fn every_family_of_the_registry_keeps_its_samples_in_the_classic_form() {
        let metrics = Metrics::default();
        Metrics::count(&metrics.logins, "outcome", "success");
        metrics.hash_wait.observe(0.01);

        let classic = classic_text(&metrics.render());

        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT") && !classic.contains("_created"), "{classic}");
        for line in classic.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let (name, kind) = line.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
        }
        assert!(classic.contains("# TYPE tessera_logins_total counter\ntessera_logins_total{outcome=\"success\"} 1\n"), "{classic}");
        assert!(classic.contains("tessera_password_hash_wait_seconds_count 1\n"), "{classic}");
    }
}
