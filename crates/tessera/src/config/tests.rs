//! Configuration tests: defaults, files, variables, and every refusal.

use super::*;
use std::io::Write;

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Loads with an empty file, so a `tessera.toml` in the working directory cannot interfere.
fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let empty = file("");
    Config::load_from(Some(empty.path()), env(pairs))
}

fn load_err(pairs: &[(&str, &str)]) -> String {
    load(pairs).unwrap_err().to_string()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn load_file(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let f = file(text);
    Config::load_from(Some(f.path()), env(pairs))
}

fn prod(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut pairs = vec![("TESSERA_PROFILE", "prod"), ("TESSERA_MASTER_KEY", MASTER_KEY), ("TESSERA_ISSUER", "https://auth.example.com")];
    pairs.extend_from_slice(extra);
    load(&pairs)
}

#[test]
fn defaults_follow_the_contract_with_an_empty_environment() {
    let c = load(&[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url.expose(), "sqlite://tessera.db");
    assert_eq!(c.issuer, "http://127.0.0.1:8080");
    assert_eq!(c.audience, vec!["http://127.0.0.1:8080".to_owned()]);
    assert_eq!(c.access_token_ttl.as_secs(), 900);
    assert_eq!(c.refresh_token_ttl.as_secs(), 30 * 86_400);
    assert_eq!(c.signing_alg, SigningAlg::ES256);
    assert!(c.hs256_secret.is_none() && c.master_key.is_none());
    assert_eq!(c.profile, Profile::Dev);
    assert_eq!(c.argon2, Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 });
    assert_eq!((c.login_max_failures, c.login_failure_window.as_secs()), (10, 900));
    assert_eq!(c.rate_limit_per_ip, 120);
    assert!(c.refresh_reuse_grace.is_zero() && c.key_rotation_interval.is_none());
    assert_eq!((c.log.as_str(), c.log_format), ("info", LogFormat::Text));
    assert_eq!((c.database_max_connections, c.database_timeout.as_secs()), (10, 5));
    assert!(c.trusted_proxies.is_empty() && c.cors_origins.is_empty());
    assert_eq!(c.audit_retention.as_secs(), 90 * 86_400);
    assert_eq!(c.hash_queue, 64);
    assert_eq!(c.shutdown_grace.as_secs(), 10);
    assert_eq!(c.database_kind(), DatabaseKind::Sqlite("tessera.db".into()));
    assert!(c.registration_open);
}

#[test]
fn registration_is_open_or_closed_and_nothing_else() {
    assert!(!load(&[("TESSERA_REGISTRATION", "closed")]).unwrap().registration_open);
    assert!(load(&[("TESSERA_REGISTRATION", "Open")]).unwrap().registration_open);
    assert_eq!(load_err(&[("TESSERA_REGISTRATION", "invite")]), "TESSERA_REGISTRATION: `invite` is not open or closed");
}

#[test]
fn passkeys_are_on_by_default_off_by_setting_and_off_on_an_ip_address_issuer() {
    let on = |pairs: &[(&str, &str)]| load(pairs).unwrap().passkeys_enabled();
    assert!(on(&[("TESSERA_ISSUER", "https://auth.example.com")]));
    assert!(on(&[("TESSERA_ISSUER", "http://localhost:8080")]));
    assert!(!on(&[("TESSERA_ISSUER", "https://auth.example.com"), ("TESSERA_PASSKEYS", "false")]));
    assert!(!on(&[("TESSERA_ISSUER", "http://127.0.0.1:8080")]));
    assert!(!on(&[("TESSERA_ISSUER", "http://[::1]:8080")]));
    let from_file = load_file("passkeys = \"off\"\nissuer = \"https://auth.example.com\"\n", &[]).unwrap();
    assert!(!from_file.passkeys_enabled());
    assert_eq!(load_err(&[("TESSERA_PASSKEYS", "maybe")]), "TESSERA_PASSKEYS: `maybe` is not true or false");
}

#[test]
fn the_environment_overrides_the_file() {
    let text = "access_token_ttl = \"5m\"\nissuer = \"https://auth.example.com/\"\nrate_limit_per_ip = 7\n";
    let c = load_file(text, &[("TESSERA_ACCESS_TOKEN_TTL", "90s"), ("TESSERA_RATE_LIMIT_PER_IP", "0")]).unwrap();
    assert_eq!(c.access_token_ttl.as_secs(), 90);
    assert_eq!(c.rate_limit_per_ip, 0);
    assert_eq!(c.issuer, "https://auth.example.com/");
}

#[test]
fn file_keys_are_the_lower_case_variable_names_without_the_prefix() {
    let text = r#"
        listen = "0.0.0.0:9000"
        database_url = "postgres://tessera@db.internal/tessera"
        issuer = "https://auth.example.com"
        audience = "api"
        access_token_ttl = "10m"
        refresh_token_ttl = "7d"
        signing_alg = "eddsa"
        master_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
        profile = "prod"
        argon2_memory_kib = 65536
        argon2_iterations = 3
        argon2_parallelism = 2
        login_max_failures = 5
        login_failure_window = "1h"
        rate_limit_per_ip = 60
        refresh_reuse_grace = "30s"
        key_rotation_interval = "30d"
        log = "tessera=debug,info"
        log_format = "json"
        database_max_connections = 20
        database_timeout = 3
        trusted_proxies = ["10.0.0.1", "::1"]
        cors_origins = ["https://App.example.com/"]
        audit_retention = "365d"
        hash_queue = 16
        shutdown_grace = "30s"
    "#;
    let c = load_file(text, &[]).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(c.database_kind(), DatabaseKind::Postgres);
    assert_eq!(c.audience, vec!["api".to_owned()]);
    assert_eq!((c.access_token_ttl.as_secs(), c.refresh_token_ttl.as_secs()), (600, 7 * 86_400));
    assert_eq!(c.signing_alg, SigningAlg::EdDSA);
    assert!(c.master_key.is_some());
    assert_eq!(c.profile, Profile::Prod);
    assert_eq!(c.argon2, Argon2Params { memory_kib: 65_536, iterations: 3, parallelism: 2 });
    assert_eq!((c.login_max_failures, c.login_failure_window.as_secs(), c.rate_limit_per_ip), (5, 3600, 60));
    assert_eq!(c.refresh_reuse_grace.as_secs(), 30);
    assert_eq!(c.key_rotation_interval, Some(HumanDuration::from_secs(30 * 86_400)));
    assert_eq!((c.log.as_str(), c.log_format), ("tessera=debug,info", LogFormat::Json));
    assert_eq!((c.database_max_connections, c.database_timeout.as_secs()), (20, 3));
    assert_eq!(c.trusted_proxies, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
    assert_eq!(c.cors_origins, vec!["https://app.example.com".to_owned()]);
    assert_eq!((c.audit_retention.as_secs(), c.hash_queue, c.shutdown_grace.as_secs()), (365 * 86_400, 16, 30));
}

#[test]
fn upper_case_or_prefixed_file_keys_are_unknown_keys_with_a_hint() {
    let err = load_file("ACCESS_TOKEN_TTL = \"5m\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown key `ACCESS_TOKEN_TTL`") && err.contains("did you mean `access_token_ttl`"), "{err}");
    let err = load_file("tessera_listen = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("did you mean `listen`"), "{err}");
}

#[test]
fn a_bad_duration_names_the_variable_and_where_it_came_from() {
    assert_eq!(
        load_err(&[("TESSERA_ACCESS_TOKEN_TTL", "abc")]),
        "TESSERA_ACCESS_TOKEN_TTL: `abc` is not a duration (use e.g. 90s, 15m, 1h, 30d)"
    );
    let f = file("refresh_token_ttl = \"forever\"\n");
    let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("TESSERA_REFRESH_TOKEN_TTL (from {}): `forever` is not a duration (use e.g. 90s, 15m, 1h, 30d)", f.path().display())
    );
}

#[test]
fn durations_in_the_file_may_be_whole_seconds_but_not_negative() {
    assert_eq!(load_file("access_token_ttl = 120\n", &[]).unwrap().access_token_ttl.as_secs(), 120);
    let err = load_file("shutdown_grace = -5\n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("TESSERA_SHUTDOWN_GRACE (from ") && err.contains("`-5` is not a duration"), "{err}");
    assert!(load_file("shutdown_grace = 1.5\n", &[]).unwrap_err().to_string().contains("`1.5` is not a duration"));
}

#[test]
fn token_lifetimes_must_be_at_least_a_second() {
    assert_eq!(load_err(&[("TESSERA_ACCESS_TOKEN_TTL", "0")]), "TESSERA_ACCESS_TOKEN_TTL: must be at least 1s");
    assert_eq!(load_err(&[("TESSERA_REFRESH_TOKEN_TTL", "500ms")]), "TESSERA_REFRESH_TOKEN_TTL: must be at least 1s");
    assert_eq!(load_err(&[("TESSERA_DATABASE_TIMEOUT", "0s")]), "TESSERA_DATABASE_TIMEOUT: must be more than 0");
}

#[test]
fn an_unknown_file_key_is_refused_by_name() {
    let f = file("acces_token_ttl = \"5m\"\n");
    let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert_eq!(err, format!("{}: unknown key `acces_token_ttl`", f.path().display()));
    let err = load_file("[server]\nlisten = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown key `server`"), "{err}");
}

#[test]
fn an_unknown_tessera_variable_is_ignored() {
    assert!(load(&[("TESSERA_TEST_POSTGRES_URL", "postgres://x"), ("TESSERA_listen", "nonsense"), ("TESSERA_", "")]).is_ok());
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
    assert!(err.contains("absent.toml") && err.contains("does not exist"), "{err}");
}

#[test]
fn a_toml_syntax_error_gives_the_position_but_never_the_line() {
    let err = load_file("listen = \"127.0.0.1:1\"\nhs256_secret = \"a-secret-that-never-ends\n", &[]).unwrap_err().to_string();
    assert!(err.contains("line 2") && !err.contains("a-secret"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn audiences_come_from_a_comma_list_or_a_toml_array() {
    assert_eq!(load(&[("TESSERA_AUDIENCE", "a, b,,a")]).unwrap().audience, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(load_file("audience = [\"x\", \"y\"]\n", &[]).unwrap().audience, vec!["x".to_owned(), "y".to_owned()]);
    assert_eq!(load_file("audience = \"z\"\n", &[]).unwrap().audience, vec!["z".to_owned()]);
    assert_eq!(load_err(&[("TESSERA_AUDIENCE", " , ")]), "TESSERA_AUDIENCE: must name at least one audience");
    assert!(load_file("audience = [1]\n", &[]).unwrap_err().to_string().contains("must be a list of strings"));
}

#[test]
fn the_issuer_defaults_to_the_listen_address_and_is_kept_exactly_as_configured() {
    let c = load(&[("TESSERA_LISTEN", "[::1]:9000")]).unwrap();
    assert_eq!(c.issuer, "http://[::1]:9000");
    assert_eq!(c.audience, vec!["http://[::1]:9000".to_owned()]);
    let c = load(&[("TESSERA_ISSUER", "https://auth.example.com/tenant/")]).unwrap();
    assert_eq!(c.issuer, "https://auth.example.com/tenant/");
    assert_eq!(c.audience, vec!["https://auth.example.com/tenant/".to_owned()]);
    let c = load(&[("TESSERA_ISSUER", "http://h:8080/")]).unwrap();
    assert_eq!(c.issuer, "http://h:8080/");
    assert!(load_err(&[("TESSERA_ISSUER", "auth.example.com")]).starts_with("TESSERA_ISSUER: `auth.example.com` is not"));
    assert!(load(&[("TESSERA_ISSUER", "https://")]).is_err());
    assert!(load(&[("TESSERA_ISSUER", "https://a.example?x=1")]).is_err());
}

#[test]
fn prod_refuses_a_missing_master_key() {
    assert_eq!(
        load_err(&[("TESSERA_PROFILE", "prod"), ("TESSERA_ISSUER", "https://auth.example.com")]),
        "TESSERA_PROFILE=prod: TESSERA_MASTER_KEY is not set; private keys would be stored unencrypted"
    );
}

#[test]
fn prod_refuses_an_http_issuer() {
    let err = prod(&[("TESSERA_ISSUER", "http://auth.example.com")]).unwrap_err().to_string();
    assert_eq!(err, "TESSERA_PROFILE=prod: TESSERA_ISSUER `http://auth.example.com` is not https");
}

#[test]
fn prod_refuses_a_low_argon2_cost() {
    for (key, value) in [("TESSERA_ARGON2_MEMORY_KIB", "19455"), ("TESSERA_ARGON2_ITERATIONS", "1")] {
        let err = prod(&[(key, value)]).unwrap_err().to_string();
        assert!(err.starts_with("TESSERA_PROFILE=prod: the argon2 cost") && err.contains(key), "{err}");
    }
}

#[test]
fn prod_refuses_a_short_hs256_secret_even_when_unused() {
    let err = prod(&[("TESSERA_HS256_SECRET", "short")]).unwrap_err().to_string();
    assert_eq!(err, "TESSERA_PROFILE=prod: TESSERA_HS256_SECRET is shorter than 32 bytes");
}

#[test]
fn prod_reports_every_problem_on_one_line_and_accepts_safe_settings() {
    let err = load_err(&[("TESSERA_PROFILE", "PROD"), ("TESSERA_ARGON2_ITERATIONS", "1")]);
    assert!(err.contains("TESSERA_MASTER_KEY") && err.contains("TESSERA_ISSUER") && err.contains("argon2"), "{err}");
    assert!(!err.contains('\n'));
    let c = prod(&[]).unwrap();
    assert_eq!(c.profile, Profile::Prod);
}

#[test]
fn prod_refuses_an_all_zero_master_key_that_dev_accepts() {
    let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let err = prod(&[("TESSERA_MASTER_KEY", zeros)]).unwrap_err().to_string();
    assert_eq!(err, "TESSERA_PROFILE=prod: TESSERA_MASTER_KEY is all zero bytes; use 32 random bytes");
    assert!(load(&[("TESSERA_MASTER_KEY", zeros)]).unwrap().master_key.unwrap().is_all_zero());
    assert!(!prod(&[]).unwrap().master_key.unwrap().is_all_zero());
}

#[test]
fn prod_refuses_the_per_address_limit_turned_off() {
    let err = prod(&[("TESSERA_RATE_LIMIT_PER_IP", "0")]).unwrap_err().to_string();
    assert_eq!(err, "TESSERA_PROFILE=prod: TESSERA_RATE_LIMIT_PER_IP=0 turns the per-address limit of the credential endpoints off");
    assert_eq!(prod(&[("TESSERA_RATE_LIMIT_PER_IP", "1")]).unwrap().rate_limit_per_ip, 1);
    assert_eq!(load(&[("TESSERA_RATE_LIMIT_PER_IP", "0")]).unwrap().rate_limit_per_ip, 0);
}

#[test]
fn prod_refuses_more_than_100_login_failures() {
    for value in ["101", "4294967295"] {
        let err = prod(&[("TESSERA_LOGIN_MAX_FAILURES", value)]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("TESSERA_PROFILE=prod: TESSERA_LOGIN_MAX_FAILURES={value} is over 100: passwords could be guessed at leisure")
        );
    }
    assert_eq!(prod(&[("TESSERA_LOGIN_MAX_FAILURES", "100")]).unwrap().login_max_failures, 100);
    assert_eq!(load(&[("TESSERA_LOGIN_MAX_FAILURES", "4294967295")]).unwrap().login_max_failures, u32::MAX);
}

#[test]
fn hs256_without_a_secret_is_refused() {
    assert_eq!(
        load_err(&[("TESSERA_SIGNING_ALG", "HS256")]),
        "TESSERA_HS256_SECRET: is not set; TESSERA_SIGNING_ALG=HS256 needs a shared secret of at least 32 bytes"
    );
    let err = load_err(&[("TESSERA_SIGNING_ALG", "hs256"), ("TESSERA_HS256_SECRET", "short-secret")]);
    assert!(err.starts_with("TESSERA_HS256_SECRET: is shorter than 32 bytes") && !err.contains("short-secret"), "{err}");
    let c = load(&[("TESSERA_SIGNING_ALG", "HS256"), ("TESSERA_HS256_SECRET", &"s".repeat(32))]).unwrap();
    assert_eq!(c.signing_alg, SigningAlg::HS256);
}

#[test]
fn debug_of_config_contains_neither_the_hs256_secret_nor_the_postgres_password() {
    let c = load(&[
        ("TESSERA_DATABASE_URL", "postgres://tessera:hunter2-db@db.internal/tessera?sslmode=require&password=hunter3"),
        ("TESSERA_SIGNING_ALG", "HS256"),
        ("TESSERA_HS256_SECRET", "a-shared-secret-of-more-than-32-bytes"),
        ("TESSERA_MASTER_KEY", MASTER_KEY),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    for secret in ["hunter2-db", "hunter3", "a-shared-secret", MASTER_KEY] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("db.internal/tessera?sslmode=require") && debug.contains("shutdown_grace"), "{debug}");
    assert!(!c.database_url.to_string().contains("hunter2"));
}

#[test]
fn debug_of_config_names_every_field_and_shows_no_secret() {
    let c = load(&[
        ("TESSERA_DATABASE_URL", "postgres://tessera:hunter2-db@db.internal/tessera?password=hunter3"),
        ("TESSERA_SIGNING_ALG", "HS256"),
        ("TESSERA_HS256_SECRET", "a-shared-secret-of-more-than-32-bytes"),
        ("TESSERA_MASTER_KEY", MASTER_KEY),
        ("TESSERA_METRICS_TOKEN", "a-metrics-bearer-token"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    // The master key's bytes, as text and in base64, and every other secret.
    for secret in ["hunter2-db", "hunter3", "a-shared-secret", MASTER_KEY, "MDEyMzQ1", "0123456789abcdef", "a-metrics-bearer"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    for field in [
        "listen",
        "database_url",
        "issuer",
        "audience",
        "access_token_ttl",
        "refresh_token_ttl",
        "signing_alg",
        "hs256_secret",
        "master_key",
        "profile",
        "argon2",
        "login_max_failures",
        "login_failure_window",
        "rate_limit_per_ip",
        "refresh_reuse_grace",
        "key_rotation_interval",
        "log",
        "log_format",
        "database_max_connections",
        "database_timeout",
        "trusted_proxies",
        "cors_origins",
        "audit_retention",
        "hash_queue",
        "shutdown_grace",
        "session_max_age",
        "fresh_max_age",
        "metrics_token",
        "branding",
        "registration_open",
    ] {
        assert!(debug.contains(&format!("{field}: ")), "{field} missing from {debug}");
    }
    assert!(debug.contains("MasterKey([redacted])") && debug.contains("db.internal/tessera"), "{debug}");
}

#[test]
fn a_bad_master_key_is_refused_without_echoing_it() {
    let err = load_err(&[("TESSERA_MASTER_KEY", "c2hvcnQ=")]);
    assert!(err.starts_with("TESSERA_MASTER_KEY: ") && !err.contains("c2hvcnQ"), "{err}");
}

#[test]
fn the_database_url_names_the_engine_and_other_schemes_are_refused() {
    assert_eq!(load(&[("TESSERA_DATABASE_URL", "postgres://h/db")]).unwrap().database_kind(), DatabaseKind::Postgres);
    assert_eq!(load(&[("TESSERA_DATABASE_URL", "postgresql://h/db")]).unwrap().database_kind(), DatabaseKind::Postgres);
    assert_eq!(
        load(&[("TESSERA_DATABASE_URL", "sqlite:///var/lib/t.db?mode=rwc")]).unwrap().database_kind(),
        DatabaseKind::Sqlite("/var/lib/t.db".into())
    );
    assert_eq!(
        load_err(&[("TESSERA_DATABASE_URL", "mysql://root:hunter2@h/db")]),
        "TESSERA_DATABASE_URL: `mysql` is not a supported database; use sqlite://PATH or postgres://…"
    );
    assert!(!load_err(&[("TESSERA_DATABASE_URL", "hunter2")]).contains("hunter2"));
    assert!(load(&[("TESSERA_DATABASE_URL", "sqlite://")]).is_err());
}

#[test]
fn numbers_are_whole_and_within_their_range() {
    assert_eq!(load_err(&[("TESSERA_HASH_QUEUE", "lots")]), "TESSERA_HASH_QUEUE: `lots` is not a whole number");
    assert_eq!(load_err(&[("TESSERA_LOGIN_MAX_FAILURES", "-1")]), "TESSERA_LOGIN_MAX_FAILURES: must be at least 1, not -1");
    assert_eq!(load_err(&[("TESSERA_ARGON2_PARALLELISM", "17")]), "TESSERA_ARGON2_PARALLELISM: must be at most 16, not 17");
    assert!(load_err(&[("TESSERA_ARGON2_ITERATIONS", "0")]).starts_with("TESSERA_ARGON2_ITERATIONS: must be at least 1"));
    assert!(
        load_err(&[("TESSERA_ARGON2_PARALLELISM", "4"), ("TESSERA_ARGON2_MEMORY_KIB", "16")])
            .starts_with("TESSERA_ARGON2_MEMORY_KIB: must be at least 8 × TESSERA_ARGON2_PARALLELISM = 32")
    );
    assert!(load_err(&[("TESSERA_DATABASE_MAX_CONNECTIONS", "4294967296")]).contains("must be at most 4294967295"));
}

#[test]
fn a_zero_key_rotation_interval_is_off() {
    assert!(load(&[("TESSERA_KEY_ROTATION_INTERVAL", "0")]).unwrap().key_rotation_interval.is_none());
    assert!(load(&[("TESSERA_KEY_ROTATION_INTERVAL", "0d")]).unwrap().key_rotation_interval.is_none());
    let c = load(&[("TESSERA_KEY_ROTATION_INTERVAL", "7d")]).unwrap();
    assert_eq!(c.key_rotation_interval.map(|d| d.as_secs()), Some(7 * 86_400));
}

#[test]
fn trusted_proxies_and_cors_origins_are_checked() {
    let c =
        load(&[("TESSERA_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2"), ("TESSERA_CORS_ORIGINS", "https://a.example, http://localhost:3000")])
            .unwrap();
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(c.cors_origins, vec!["https://a.example".to_owned(), "http://localhost:3000".to_owned()]);
    assert_eq!(load_err(&[("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8")]), "TESSERA_TRUSTED_PROXIES: `10.0.0.0/8` is not an IP address");
    assert!(load_err(&[("TESSERA_CORS_ORIGINS", "*")]).starts_with("TESSERA_CORS_ORIGINS: `*` is not allowed"));
    assert!(load(&[("TESSERA_CORS_ORIGINS", "https://a.example/app")]).is_err());
    assert!(load(&[("TESSERA_CORS_ORIGINS", "")]).unwrap().cors_origins.is_empty());
}

#[test]
fn enumerations_are_case_insensitive_and_name_their_choices() {
    let c = load(&[("TESSERA_LOG_FORMAT", "JSON"), ("TESSERA_SIGNING_ALG", "rs256"), ("TESSERA_PROFILE", "Dev")]).unwrap();
    assert_eq!((c.log_format, c.signing_alg, c.profile), (LogFormat::Json, SigningAlg::RS256, Profile::Dev));
    assert_eq!(load_err(&[("TESSERA_LOG_FORMAT", "xml")]), "TESSERA_LOG_FORMAT: `xml` is not text or json");
    assert_eq!(load_err(&[("TESSERA_PROFILE", "staging")]), "TESSERA_PROFILE: `staging` is not dev or prod");
    assert!(load_err(&[("TESSERA_SIGNING_ALG", "none")]).starts_with("TESSERA_SIGNING_ALG: `none` is not one of"));
    assert!(load_err(&[("TESSERA_LOG", "tessera=loud")]).starts_with("TESSERA_LOG: `tessera=loud` is not a log filter"));
}

#[test]
fn a_list_where_one_value_belongs_is_refused() {
    let err = load_file("listen = [\"127.0.0.1:1\"]\n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("TESSERA_LISTEN (from ") && err.ends_with("must be a single value, not a list"), "{err}");
    let err = load_file("log = true\n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("TESSERA_LOG (from "), "{err}");
}

#[test]
fn test_settings_are_local_and_cheap() {
    let c = Config::for_tests("sqlite:///tmp/x.db");
    assert_eq!(c.listen.to_string(), "127.0.0.1:0");
    assert_eq!(c.issuer, "http://tessera.test");
    assert_eq!(c.audience, vec!["http://tessera.test".to_owned()]);
    assert_eq!(c.argon2, Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 });
    assert_eq!(c.database_kind(), DatabaseKind::Sqlite("/tmp/x.db".into()));
    assert_eq!(c.access_token_ttl.as_secs(), 900);
}

#[test]
fn the_pages_show_tessera_in_indigo_unless_told_otherwise() {
    let c = load(&[]).unwrap();
    assert_eq!(c.branding, Branding { product_name: "Tessera".into(), logo_path: None, brand_color: BrandColor::DEFAULT });

    let c =
        load_file("product_name = \"Acme Sign-in\"\nlogo_path = \"/etc/acme/logo.svg\"\n", &[("TESSERA_BRAND_COLOR", "#0A7CFF")]).unwrap();
    assert_eq!(c.branding.product_name, "Acme Sign-in");
    assert_eq!(c.branding.logo_path.as_deref(), Some(Path::new("/etc/acme/logo.svg")));
    assert_eq!(c.branding.brand_color.to_string(), "#0a7cff");
}

#[test]
fn bad_branding_values_name_their_variable() {
    assert!(load_err(&[("TESSERA_BRAND_COLOR", "blue")]).starts_with("TESSERA_BRAND_COLOR: `blue` is not a colour"));
    assert!(load_err(&[("TESSERA_PRODUCT_NAME", "  ")]).starts_with("TESSERA_PRODUCT_NAME: must not be empty"));
    assert!(load_err(&[("TESSERA_LOGO_PATH", "/etc/passwd")]).starts_with("TESSERA_LOGO_PATH: `/etc/passwd` is not an .svg"));
}
