//! An independent OpenID Connect relying party, the `openidconnect` crate, signs a person in
//! through Tessera: discovery, the authorization URL with PKCE S256, nonce and state, the code
//! exchange, the id_token verified by the crate (signature through the JWKS, issuer, audience,
//! nonce, `at_hash`), userinfo and refresh. The browser part is plain HTTP without following
//! redirects, carrying a browser-session cookie started through the service.

use crate::clients::create_client;
use crate::helpers::{PASSWORD, TestApp, spawn_app_with, unique_email};
use crate::oauth_library::send;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use tessera::domain::keys::SigningAlg;
use tessera::service::{ClientMeta, Registration};

/// The loopback redirect URI of the application (RFC 8252 §7.3).
const REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// Tessera serving on the address its issuer names, as a relying party needs: discovery is
/// fetched from the issuer and every endpoint it lists must answer.
pub async fn spawn_on_issuer_address(alg: SigningAlg) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    spawn_app_with(|config| {
        config.listen = ([127, 0, 0, 1], port).into();
        config.issuer = format!("http://127.0.0.1:{port}");
        config.signing_alg = alg;
    })
    .await
}

/// A person with a browser session; returns their email and the `Cookie` header value.
pub async fn signed_in_person(app: &TestApp) -> (String, String) {
    let email = unique_email();
    let user = app
        .tessera
        .create_user(Registration { email: email.clone(), password: PASSWORD.into(), username: None, admin: false })
        .await
        .unwrap();
    let (_, secret) = app.tessera.start_browser_session(&user, vec!["pwd".to_owned()], &ClientMeta::default()).await.unwrap();
    (email, format!("tessera-session={}", secret.expose()))
}

async fn sign_in_with_the_crate(alg: SigningAlg, public: bool) {
    let app = spawn_on_issuer_address(alg).await;
    let admin = app.admin_token().await;
    let created = create_client(
        &app,
        &admin,
        json!({ "name": "Relying party", "scopes": ["notes:read"], "redirect_uris": [REDIRECT], "public": public, "first_party": true }),
    )
    .await;
    let (email, cookie) = signed_in_person(&app).await;
    let http_client = app.client.clone();
    let http = move |request| send(http_client.clone(), request);

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
        .await
        .expect("the crate accepts the discovery document and the JWKS");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(created["client_id"].as_str().unwrap().to_owned()),
        created["client_secret"].as_str().map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    assert_eq!(public, created["client_secret"].is_null(), "a public client has no secret");

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser: the session cookie on the authorization URL, and Tessera redirects back.
    let res = app.client.get(url.as_str()).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{}", res.text().await.unwrap());
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(&location.as_str()[..REDIRECT.len()], REDIRECT);
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), Some(state.secret()), "state is echoed");
    assert_eq!(params.get("iss"), Some(&app.address), "the response names its issuer (RFC 9207)");
    assert!(!params.contains_key("error"), "{params:?}");

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the crate accepts the token response");
    let id_token = tokens.id_token().expect("an id_token with scope openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).expect("the id_token verifies: signature, iss, aud, exp, nonce");
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email.as_str()));
    assert_eq!(claims.email_verified(), Some(false));
    assert!(claims.auth_time().is_some(), "auth_time");
    let amr: Vec<&str> = claims.auth_method_refs().expect("amr").iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["pwd"]);
    let expected_hash = claims.access_token_hash().expect("the id_token carries at_hash");
    let actual_hash =
        AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&id_verifier).unwrap())
            .unwrap();
    assert_eq!(&actual_hash, expected_hash, "at_hash matches the access token");

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("the crate accepts the userinfo answer for the same subject");
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some(email.as_str()));

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("the crate refreshes");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let again: CoreUserInfoClaims = client
        .user_info(refreshed.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("the refreshed token reads userinfo");
    assert_eq!(again.subject(), claims.subject());
}

#[tokio::test]
async fn the_openidconnect_crate_signs_in_a_confidential_client_with_es256() {
    sign_in_with_the_crate(SigningAlg::ES256, false).await;
}

#[tokio::test]
async fn the_openidconnect_crate_signs_in_a_public_client_with_es256() {
    sign_in_with_the_crate(SigningAlg::ES256, true).await;
}

#[tokio::test]
async fn the_openidconnect_crate_signs_in_a_confidential_client_with_rs256() {
    sign_in_with_the_crate(SigningAlg::RS256, false).await;
}

#[tokio::test]
async fn the_openidconnect_crate_signs_in_a_public_client_with_eddsa() {
    sign_in_with_the_crate(SigningAlg::EdDSA, true).await;
}
