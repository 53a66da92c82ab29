//! Attacks through HTTP. Each gets the right 4xx, never a 500, never a panic, and the
//! database is unchanged afterwards.

use crate::helpers::{PASSWORD, TestApp, claims_of, problem, spawn_app, spawn_app_with, unique_email};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "a-test-hs256-secret-of-at-least-32-bytes";

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token with `header` and `claims` and a made-up signature.
fn unsigned(header: Value, claims: &Value) -> String {
    format!("{}.{}.", b64(&header), b64(claims))
}

async fn refused(app: &TestApp, token: &str, code: &str) {
    let res = app.get_with("/v1/auth/verify", token).await;
    assert!(res.headers().contains_key("www-authenticate"));
    problem(res, StatusCode::UNAUTHORIZED, code).await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let header = json!({ "alg": "none", "typ": "at+jwt", "kid": crate::helpers::header_of(&real)["kid"] });
    refused(&app, &unsigned(header, &claims_of(&real)), "invalid_token").await;
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let kid = crate::helpers::header_of(&real)["kid"].as_str().unwrap().to_owned();
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().to_string();
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    header.typ = Some("at+jwt".into());
    let forged = encode(&header, &claims_of(&real), &EncodingKey::from_secret(public.as_bytes())).unwrap();
    refused(&app, &forged, "invalid_token").await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let mut claims = claims_of(&real);
    claims["roles"] = json!(["admin"]);
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    refused(&app, &tampered, "invalid_token").await;
}

#[tokio::test]
async fn a_valid_signature_from_a_key_not_in_the_jwks_is_refused() {
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let stranger = tessera::domain::keys::generate(tessera::domain::keys::SigningAlg::ES256).unwrap();
    for kid in [stranger.kid.clone(), tessera::domain::keys::Kid::new(crate::helpers::header_of(&real)["kid"].as_str().unwrap())] {
        let signer =
            tessera::domain::keys::Signer::from_pkcs8(tessera::domain::keys::SigningAlg::ES256, kid, &stranger.private_key).unwrap();
        refused(&app, &signer.sign_jwt(&claims_of(&real)).unwrap(), "invalid_token").await;
    }
}

async fn hs256_app() -> TestApp {
    spawn_app_with(|c| {
        c.signing_alg = "HS256".parse().unwrap();
        c.hs256_secret = Some(SECRET.to_owned().into());
    })
    .await
}

/// Re-signs `claims` with the app's own HS256 secret and kid: only the claims are wrong.
fn resign(app_token: &str, claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = crate::helpers::header_of(app_token)["kid"].as_str().map(str::to_owned);
    header.typ = Some("at+jwt".into());
    encode(&header, claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

#[tokio::test]
async fn correctly_signed_tokens_with_wrong_claims_are_refused() {
    let app = hs256_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let good = claims_of(&real);
    assert_eq!(app.get_with("/v1/auth/verify", &resign(&real, &good)).await.status(), StatusCode::OK, "the re-signing itself is sound");
    let now = good["iat"].as_i64().unwrap();

    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    refused(&app, &resign(&real, &wrong_iss), "invalid_token").await;
    // Tessera's own API takes only its configured audience, and a gateway that names its
    // audience only that one (verify without `aud=` takes any audience Tessera signs for).
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!(["https://other.example"]);
    let wrong_aud = resign(&real, &wrong_aud);
    problem(app.get_with("/v1/users/me", &wrong_aud).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let for_tessera = app.get_with("/v1/auth/verify?aud=http://tessera.test", &wrong_aud).await;
    problem(for_tessera, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let mut expired = good.clone();
    expired["exp"] = json!(now - 60);
    refused(&app, &resign(&real, &expired), "token_expired").await;
    let mut early = good.clone();
    early["nbf"] = json!(now + 60);
    refused(&app, &resign(&real, &early), "invalid_token").await;
    let mut no_typ = Header::new(jsonwebtoken::Algorithm::HS256);
    no_typ.kid = crate::helpers::header_of(&real)["kid"].as_str().map(str::to_owned);
    refused(&app, &encode(&no_typ, &good, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap(), "invalid_token").await;
}

#[tokio::test]
async fn kids_with_path_or_sql_characters_are_refused() {
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = real.split('.').collect();
    for kid in ["../../etc/passwd", "' OR '1'='1", "x\"; DROP TABLE signing_keys;--", "\u{0}", &"k".repeat(5000)] {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        refused(&app, &format!("{}.{}.{}", b64(&header), parts[1], parts[2]), "invalid_token").await;
    }
    assert_eq!(app.get_with("/v1/auth/verify", &real).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn huge_headers_and_tokens_are_refused_without_harm() {
    let app = spawn_app().await;
    refused(&app, &"a".repeat(9_000), "invalid_token").await;
    let huge = app.request(Method::GET, "/v1/auth/verify").header("authorization", format!("Bearer {}", "a".repeat(200_000))).send().await;
    if let Ok(res) = huge {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let many = (0..200).fold(app.request(Method::GET, "/healthz"), |req, i| req.header(format!("x-h{i}"), "v".repeat(500)));
    if let Ok(res) = many.send().await {
        assert!(res.status().is_client_error() || res.status().is_success(), "{}", res.status());
    }
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// Strings that have broken weaker services.
const NASTY: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\" OR \"\"=\"",
    "admin'--",
    "1; SELECT pg_sleep(5)",
    "x' UNION SELECT password_hash FROM users --",
    "%00",
    "\u{0}",
    "../../../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "🦀🦀🦀",
];

async fn snapshot(app: &TestApp, admin: &str) -> (Value, Value) {
    let users: Value = app.get_with("/v1/users?limit=200", admin).await.json().await.unwrap();
    let clients: Value = app.get_with("/v1/clients", admin).await.json().await.unwrap();
    (users, clients)
}

fn assert_client_error(status: StatusCode, what: &str) {
    assert!(status.is_client_error(), "{what} answered {status}");
}

#[tokio::test]
async fn injection_strings_in_every_field_are_only_ever_data() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_ip = 0;
        c.login_max_failures = 100_000;
    })
    .await;
    let admin = app.admin_token().await;
    let victim = app.register(&unique_email()).await;
    let token = victim["access_token"].as_str().unwrap().to_owned();
    let before = snapshot(&app, &admin).await;

    for s in NASTY {
        let cases: Vec<(Method, String, Option<Value>)> = vec![
            (Method::POST, "/v1/auth/register".into(), Some(json!({ "email": s, "password": PASSWORD }))),
            (
                Method::POST,
                "/v1/auth/register".into(),
                Some(json!({ "email": format!("{s}@example.com"), "password": PASSWORD, "username": s })),
            ),
            (Method::POST, "/v1/auth/register".into(), Some(json!({ "email": s, "password": s, "username": s }))),
            (Method::POST, "/v1/auth/login".into(), Some(json!({ "email": s, "password": s }))),
            (Method::POST, "/v1/auth/login".into(), Some(json!({ "username": s, "password": s }))),
            (Method::POST, "/v1/auth/refresh".into(), Some(json!({ "refresh_token": s }))),
            (Method::PATCH, "/v1/users/me".into(), Some(json!({ "username": s }))),
            (Method::PATCH, "/v1/users/me".into(), Some(json!({ "email": s }))),
            (Method::PUT, "/v1/users/me/password".into(), Some(json!({ "current_password": s, "new_password": s }))),
            (Method::GET, format!("/v1/users/{}", urlencode(s)), None),
            (Method::DELETE, format!("/v1/users/me/sessions/{}", urlencode(s)), None),
            (Method::GET, format!("/v1/users?cursor={}", urlencode(s)), None),
            (Method::GET, format!("/v1/clients/{}", urlencode(s)), None),
            (Method::POST, "/v1/clients".into(), Some(json!({ "name": "ok", "scopes": [s] }))),
            (Method::POST, "/v1/clients".into(), Some(json!({ "name": "ok", "roles": [s] }))),
            (Method::PATCH, format!("/v1/users/{}", urlencode(s)), Some(json!({ "roles": [s] }))),
            (Method::POST, "/v1/keys/rotate".into(), Some(json!({ "alg": s }))),
            (Method::GET, format!("/v1/revocations?since={}", urlencode(s)), None),
        ];
        for (method, path, body) in cases {
            let bearer = if path.starts_with("/v1/users/me") { &token } else { &admin };
            let res = app.send_with(method.clone(), &path, bearer, body.as_ref()).await;
            let status = res.status();
            // A nasty username may still be a valid email's companion; anything else must be refused.
            if status.is_success() {
                let body = body.unwrap_or_default();
                assert!(body.get("username").is_some() || body.get("name").is_some(), "{method} {path} accepted {s:?}");
                continue;
            }
            assert_client_error(status, &format!("{method} {path} with {s:?}"));
        }
        for form in [
            vec![("grant_type", *s)],
            vec![("grant_type", "client_credentials"), ("client_id", s), ("client_secret", s)],
            vec![("grant_type", "refresh_token"), ("refresh_token", s)],
        ] {
            let status = app.request(Method::POST, "/oauth2/token").form(&form).send().await.unwrap().status();
            assert_client_error(status, &format!("/oauth2/token with {s:?}"));
        }
        let status =
            app.request(Method::POST, "/oauth2/revoke").form(&[("token", *s), ("client_id", "tessera")]).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "revoking garbage is not an error (RFC 7009)");
    }

    let after = snapshot(&app, &admin).await;
    // Some nasty strings are valid RFC 6749 scopes: such clients exist, holding the string verbatim.
    for client in after.1["clients"].as_array().unwrap() {
        let scopes = client["scopes"].as_array().unwrap();
        assert!(scopes.is_empty() || scopes.iter().all(|s| NASTY.contains(&s.as_str().unwrap())), "{client}");
    }
    assert_eq!(before.1["clients"], json!([]));
    let names = |v: &Value| v["users"].as_array().unwrap().iter().map(|u| u["id"].clone()).collect::<Vec<_>>();
    assert_eq!(names(&before.0), names(&after.0), "no account was created or deleted");
    assert_eq!(app.get_with("/v1/users/me", &token).await.status(), StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn nul_and_invalid_utf8_bytes_are_client_errors() {
    let app = spawn_app().await;
    for body in [
        b"{\"email\":\"a\x00@example.com\",\"password\":\"x\"}".to_vec(),
        b"{\"email\":\"\xff\xfe\",\"password\":\"x\"}".to_vec(),
        vec![0xff; 100],
    ] {
        let res = app.request(Method::POST, "/v1/auth/login").header("content-type", "application/json").body(body).send().await.unwrap();
        assert_client_error(res.status(), "a body with NUL or invalid UTF-8");
    }
    let res = app
        .request(Method::POST, "/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .unwrap();
    assert_client_error(res.status(), "a form with invalid UTF-8");
    let res = app.get("/v1/users/%FF%FE%00").await;
    assert_client_error(res.status(), "a path with invalid UTF-8");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn duplicate_json_keys_are_refused() {
    let app = spawn_app().await;
    let body = format!(r#"{{"email":"a@example.com","email":"b@example.com","password":"{PASSWORD}"}}"#);
    let res = app.request(Method::POST, "/v1/auth/register").header("content-type", "application/json").body(body).send().await.unwrap();
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn no_response_ever_carries_a_password_hash_or_secret() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = unique_email();
    let reg = app.register(&email).await;
    let id = reg["user"]["id"].as_str().unwrap();
    let mut bodies = vec![reg.to_string()];
    for path in [
        "/v1/users/me".to_owned(),
        format!("/v1/users/{id}"),
        "/v1/users".to_owned(),
        "/v1/clients".to_owned(),
        "/v1/keys".to_owned(),
        "/.well-known/jwks.json".to_owned(),
    ] {
        bodies.push(app.get_with(&path, &admin).await.text().await.unwrap());
    }
    for body in bodies {
        assert!(!body.contains("$argon2"), "{body}");
        assert!(!body.contains("password_hash") && !body.contains("private_key") && !body.contains("\"d\""), "{body}");
    }
}

#[tokio::test]
async fn arbitrary_and_jwt_shaped_garbage_is_refused_without_panicking() {
    use proptest::prelude::*;
    let app = spawn_app().await;
    let real = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let kid = crate::helpers::header_of(&real)["kid"].as_str().unwrap().to_owned();
    let mut runner = proptest::test_runner::TestRunner::default();

    runner
        .run(&".{0,600}", |raw| {
            prop_assert!(app.tessera.authenticate(&raw).is_err());
            Ok(())
        })
        .unwrap();
    let headers = (
        prop::sample::select(vec!["none", "ES256", "RS256", "EdDSA", "HS256", "PS256", "", "es256"]),
        prop::option::of(prop::sample::select(vec![kid.clone(), "x".into(), String::new(), "../k".into()])),
        prop::option::of(prop::sample::select(vec!["at+jwt", "JWT", "", "application/at+jwt"])),
        ".{0,80}",
        "[A-Za-z0-9_-]{0,120}",
    );
    runner
        .run(&headers, |(alg, kid, typ, payload, signature)| {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            if let Some(typ) = typ {
                header["typ"] = json!(typ);
            }
            let claims_part = URL_SAFE_NO_PAD.encode(payload.as_bytes());
            let token = format!("{}.{claims_part}.{signature}", b64(&header));
            prop_assert!(app.tessera.authenticate(&token).is_err());
            Ok(())
        })
        .unwrap();
    assert_eq!(app.get_with("/v1/auth/verify", &real).await.status(), StatusCode::OK);
}

/// Property test of the server's JWT header parsing, through HTTP: whatever the header says
/// (any `alg`, including `none` and ones that do not exist, any `kid` with path or SQL
/// characters, any `typ`, extra members) over any claims and any signature, the answer is
/// a 401 `invalid_token` problem and the server keeps serving.
#[test]
fn any_jwt_header_over_any_claims_is_a_401_never_a_crash() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let text = || "[ -~]{0,40}|\\PC{0,10}";
    let alg = prop_oneof![
        Just("none".to_owned()),
        Just("HS256".to_owned()),
        Just("ES256".to_owned()),
        Just("RS256".to_owned()),
        Just("EdDSA".to_owned()),
        text(),
    ];
    let header = (alg, proptest::option::of(text()), proptest::option::of(text()), proptest::option::of(text())).prop_map(
        |(alg, kid, typ, extra)| {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            if let Some(typ) = typ {
                header["typ"] = json!(typ);
            }
            if let Some(extra) = extra {
                header[extra.as_str()] = json!([1, { "nested": null }]);
            }
            header
        },
    );
    let claims = (text(), any::<i64>(), text()).prop_map(|(sub, exp, aud)| json!({ "sub": sub, "exp": exp, "aud": aud, "iss": "x" }));
    let signature = proptest::collection::vec(any::<u8>(), 0..80);

    let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
    runner
        .run(&(header, claims, signature), |(header, claims, signature)| {
            let token = format!("{}.{}.{}", b64(&header), b64(&claims), URL_SAFE_NO_PAD.encode(signature));
            let (status, code) = runtime.block_on(async {
                let res = app.get_with("/v1/auth/verify", &token).await;
                let status = res.status();
                let body: Value = res.json().await.unwrap_or_default();
                (status, body["code"].as_str().unwrap_or_default().to_owned())
            });
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "header {}", header);
            prop_assert_eq!(code, "invalid_token");
            Ok(())
        })
        .unwrap();
    runtime.block_on(async { assert_eq!(app.get("/healthz").await.status(), StatusCode::OK) });
}
