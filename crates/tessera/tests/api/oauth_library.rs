//! A real OAuth 2.0 client library (the `oauth2` crate) runs the client-credentials grant
//! against Tessera, and the token it gets verifies against the published JWKS.

use crate::clients::create_client;
use crate::helpers::spawn_app;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, HttpRequest, HttpResponse, Scope, TokenResponse, TokenUrl};
use serde_json::{Value, json};

/// Adapts our reqwest to the library's HTTP client interface.
pub(crate) async fn send(client: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = client.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let mut out = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    Ok(out.body(response.bytes().await?.to_vec()).expect("a response"))
}

#[tokio::test]
async fn the_oauth2_crate_gets_a_token_that_verifies_against_the_jwks() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "library", "scopes": ["reports:read", "reports:write"] })).await;
    let oauth = BasicClient::new(ClientId::new(created["client_id"].as_str().unwrap().to_owned()))
        .set_client_secret(ClientSecret::new(created["client_secret"].as_str().unwrap().to_owned()))
        .set_auth_uri(AuthUrl::new(app.url("/unused")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());
    let http = app.client.clone();

    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("reports:read".into()))
        .request_async(&|req| send(http.clone(), req))
        .await
        .expect("the library accepts the token response");

    assert_eq!(token.scopes().unwrap().iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["reports:read"]);
    let access = token.access_token().secret();
    let jwks: JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = decode_header(access).unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["http://tessera.test"]);
    validation.set_issuer(&["http://tessera.test"]);
    let claims = decode::<Value>(access, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], created["client_id"]);
    assert_eq!(claims["scope"], "reports:read");
}
