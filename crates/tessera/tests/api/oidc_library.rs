//! A real OpenID Connect relying party (the `openidconnect` crate) signs a person in through
//! Tessera: discovery, the authorization request with PKCE and a nonce, the code exchange,
//! the id_token checked by the library (signature against the JWKS, iss, aud, nonce, at_hash),
//! userinfo, and a refresh.

use crate::helpers::{PASSWORD, TestApp, spawn_app, unique_email};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use tessera::service::{ClientMeta, ClientSpec, Registration};

const REDIRECT: &str = "https://rp.example/callback";

/// Adapts our reqwest to the library's HTTP client interface; the test issuer's URLs are
/// served by the test server.
async fn send(app_address: String, client: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen("http://tessera.test", &app_address, 1);
    let mut builder = client.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let mut out = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    Ok(out.body(response.bytes().await?.to_vec()).expect("a response"))
}

async fn signed_in(app: &TestApp) -> (String, String, String) {
    let email = unique_email();
    let user = app
        .tessera
        .create_user(Registration { email: email.clone(), password: PASSWORD.into(), username: Some("relying".into()), admin: false })
        .await
        .unwrap();
    let (_, secret) = app.tessera.start_browser_session(&user, vec!["pwd".to_owned()], &ClientMeta::default()).await.unwrap();
    (user.id.to_string(), email, format!("tessera-session={}", secret.expose()))
}

#[tokio::test]
async fn the_openidconnect_crate_signs_a_person_in_and_checks_the_id_token() {
    let app = spawn_app().await;
    let created = app
        .tessera
        .register_client(ClientSpec {
            name: "Relying party".into(),
            redirect_uris: vec![REDIRECT.into()],
            first_party: true,
            ..ClientSpec::default()
        })
        .await
        .unwrap();
    let (sub, email, cookie) = signed_in(&app).await;
    let http = app.client.clone();
    let address = app.address.clone();
    let http_client = |req| send(address.clone(), http.clone(), req);

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new("http://tessera.test".into()).unwrap(), &http_client)
        .await
        .expect("the library accepts the discovery document");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(created.client.id.to_string()),
        created.secret.map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let url = auth_url.as_str().replacen("http://tessera.test", &app.address, 1);
    let res = app.client.get(url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::FOUND);
    let callback = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let params: std::collections::HashMap<String, String> = callback.query_pairs().into_owned().collect();
    assert_eq!(&params["state"], state.secret());
    assert_eq!(params["iss"], "http://tessera.test");

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("the library accepts the token response");
    let id_token = tokens.id_token().expect("an id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("the library verifies the id_token");
    assert_eq!(claims.subject().as_str(), sub);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email.as_str()));
    let expected =
        AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&verifier).unwrap())
            .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash as the library computes it");

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("the library accepts userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("relying"));

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("the library refreshes");
    assert!(!refreshed.access_token().secret().is_empty());
}
