//! The code flow: a code for a signed-in person, its exchange with PKCE, what binds a code,
//! its sixty seconds, replays, codes across instances, and public clients.

use super::*;

#[tokio::test]
async fn a_signed_in_person_gets_a_code_then_tokens_an_id_token_and_userinfo() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    assert!(URL_SAFE_NO_PAD.decode(code.trim_start_matches("tac_")).unwrap().len() >= 16, "at least 128 random bits");

    let body = tokens(&app, &rp, &code).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();
    let at = claims_of(access);
    assert_eq!(at["client_id"], rp.id.as_str(), "the application's client id");
    assert!(at.get("fresh").is_none_or(|f| f == false), "never fresh outside the first-party client: {at}");
    assert_eq!(at["sub"], p.user.id.to_string());
    assert_ne!(at["sid"], p.sid.as_str(), "the access token's sid is its token session");

    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["typ"], "JWT");
    let claims = verified(&app, id_token, &rp.id).await;
    assert_eq!(claims["iss"], app.config.issuer.as_str());
    assert_eq!(claims["sub"], p.user.id.to_string());
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["azp"], rp.id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["sid"], p.sid.as_str(), "the browser session");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    assert_eq!(claims["email"], p.user.email.as_str());
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["preferred_username"], p.user.username.as_ref().unwrap().as_str());
    assert!(claims["updated_at"].is_i64());

    let info: Value = app.get_with("/oauth2/userinfo", access).await.json().await.unwrap();
    assert_eq!(info["sub"], p.user.id.to_string());
    assert_eq!(info["email"], p.user.email.as_str());
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["preferred_username"], claims["preferred_username"]);
    let posted = app.client.post(app.url("/oauth2/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::OK);

    // The access token works on Tessera's own API too, as the person's.
    assert_eq!(app.get_with("/v1/users/me", access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_client_or_an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let unknown = Rp { id: "svc_nobody".into(), secret: None };
    for q in [
        query(&unknown, &[]),
        query(&rp, &[("redirect_uri", "https://evil.example/cb")]),
        query(&rp, &[("redirect_uri", "https://app.example/cb/extra")]),
        query(&rp, &[("client_id", "")]),
    ] {
        let res = authorize(&app, Some(&p.cookie), &q).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
        assert!(res.headers().get("location").is_none());
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(res.text().await.unwrap().contains("<html"));
    }
    // With exactly one registered URI it may be left out.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("redirect_uri", "")])).await;
    assert!(callback(&res).contains_key("code"));
}

#[tokio::test]
async fn pkce_s256_is_required_of_every_client_and_plain_is_refused() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "too-short")],
    ] {
        let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &extra)).await);
        assert_eq!(params["error"], "invalid_request", "{extra:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], app.config.issuer);
    }
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("response_type", "token")])).await);
    assert_eq!(params["error"], "unsupported_response_type");
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid admin:everything")])).await);
    assert_eq!(params["error"], "invalid_scope");
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid notes:read offline_access")])).await);
    assert!(params.contains_key("code"), "the client's own scopes and the OpenID ones are allowed");
}

#[tokio::test]
async fn a_wrong_verifier_another_client_or_another_redirect_uri_is_invalid_grant() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let other = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    oauth_error(exchange(&app, &rp, &code, &"x".repeat(43)).await, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    oauth_error(exchange(&app, &other, &code, VERIFIER).await, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "https://app.example/other"),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(res, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let wrong_secret = Rp { id: rp.id.clone(), secret: Some("tcs_wrong".into()) };
    assert_eq!(exchange(&app, &wrong_secret, &code, VERIFIER).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_the_tokens_it_issued() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let first = tokens(&app, &rp, &code).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::OK);

    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
    let refreshed = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST, "the refresh token is revoked too");
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=50", &admin).await.json().await.unwrap();
    assert!(audit["events"].as_array().unwrap().iter().any(|e| e["kind"] == "code.replayed"), "{audit}");
}

#[tokio::test]
async fn a_code_works_for_sixty_seconds_only() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    app.advance(Duration::from_secs(59));
    assert_eq!(exchange(&app, &rp, &code, VERIFIER).await.status(), StatusCode::OK);
    let code = code_for(&app, &p, &rp, &[]).await;
    app.advance(Duration::from_secs(61));
    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_replayed_after_its_expiry_still_revokes_the_tokens_it_issued() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let first = tokens(&app, &rp, &code).await;
    app.advance(Duration::from_secs(120));

    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;

    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
    assert!(audit_kinds(&app).await.iter().any(|k| k == "code.replayed"));
}

#[tokio::test]
async fn a_code_issued_by_one_instance_is_exchanged_at_another_and_a_forged_one_nowhere() {
    // No master key: the instances share the database's secret.
    let one = spawn_app().await;
    assert!(one.config.master_key.is_none());
    let two = spawn_beside(&one, |_| {}).await;
    let elsewhere = spawn_app().await;
    let rp = application(&one, false, true).await;
    let p = person(&one).await;

    let code = code_for(&one, &p, &rp, &[]).await;
    let issued = tokens(&two, &rp, &code).await;
    oauth_error(exchange(&one, &rp, &code, VERIFIER).await, "invalid_grant").await;

    assert!(issued["id_token"].is_string());
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(one.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the replay revoked them");
    let code = code_for(&one, &p, &rp, &[]).await;
    let mut tampered = code.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    oauth_error(exchange(&one, &rp, std::str::from_utf8(&tampered).unwrap(), VERIFIER).await, "invalid_grant").await;
    let foreign_rp = application(&elsewhere, false, true).await;
    let foreign = code_for(&elsewhere, &person(&elsewhere).await, &foreign_rp, &[]).await;
    oauth_error(exchange(&one, &rp, &foreign, VERIFIER).await, "invalid_grant").await;
    assert_eq!(exchange(&one, &rp, &code, VERIFIER).await.status(), StatusCode::OK, "the code itself was untouched");
}

#[tokio::test]
async fn a_public_client_exchanges_and_refreshes_by_client_id_alone() {
    let app = spawn_app().await;
    let rp = application(&app, true, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let body = tokens(&app, &rp, &code).await;
    let refresh = |token: String, client: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth2/token"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("client_id", client.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let res = refresh(body["refresh_token"].as_str().unwrap().to_owned(), rp.id.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed: Value = res.json().await.unwrap();
    let claims = claims_of(renewed["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], rp.id.as_str());
    assert_eq!(claims["scope"], "email openid profile");
    // The first-party client cannot spend an application's refresh token.
    let res = refresh(renewed["refresh_token"].as_str().unwrap().to_owned(), "tessera".into()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Nor can a public client use client_credentials.
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", rp.id.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(res, "unauthorized_client").await;
}
