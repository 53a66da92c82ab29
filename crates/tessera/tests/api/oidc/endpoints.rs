//! Userinfo, discovery, and introspection and revocation of an application's tokens.

use super::*;

#[tokio::test]
async fn userinfo_needs_openid_and_shows_only_what_the_scopes_allow() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid")]).await).await;
    let info: Value = app.get_with("/oauth2/userinfo", body["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(info, serde_json::json!({ "sub": p.user.id.to_string() }));
    let claims = claims_of(body["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none() && claims.get("preferred_username").is_none(), "{claims}");

    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "notes:read")]).await).await;
    assert!(body.get("id_token").is_none(), "no openid, no id_token");
    let res = app.get_with("/oauth2/userinfo", body["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_scope""#));
    // A person's own token (first-party, no scopes) is not an OpenID Connect token either.
    let email = unique_email();
    let own = app.register(&email).await;
    assert_eq!(app.get_with("/oauth2/userinfo", own["access_token"].as_str().unwrap()).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn discovery_lists_every_openid_connect_field() {
    let app = spawn_app().await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let m: Value = app.get(path).await.json().await.unwrap();
        let base = app.config.issuer.trim_end_matches('/');
        assert_eq!(m["authorization_endpoint"], format!("{base}/oauth2/authorize"));
        assert_eq!(m["userinfo_endpoint"], format!("{base}/oauth2/userinfo"));
        assert_eq!(m["end_session_endpoint"], format!("{base}/oauth2/logout"));
        assert_eq!(m["jwks_uri"], format!("{base}/.well-known/jwks.json"));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(m["response_modes_supported"], serde_json::json!(["query"]));
        assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(m["grant_types_supported"].as_array().unwrap().iter().any(|g| g == grant), "{grant}");
        }
        assert!(m["token_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|g| g == "none"));
        for scope in ["openid", "profile", "email", "offline_access"] {
            assert!(m["scopes_supported"].as_array().unwrap().iter().any(|s| s == scope), "{scope}");
        }
        for claim in ["sub", "sid", "amr", "at_hash", "auth_time", "nonce", "email", "email_verified", "preferred_username"] {
            assert!(m["claims_supported"].as_array().unwrap().iter().any(|c| c == claim), "{claim}");
        }
        assert!(!m["id_token_signing_alg_values_supported"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn with_hs256_there_is_no_openid_connect() {
    let app = spawn_app_with(|c| {
        c.signing_alg = tessera::domain::keys::SigningAlg::HS256;
        c.hs256_secret = Some("0123456789abcdef0123456789abcdef-test".to_owned().into());
    })
    .await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("HS256"));
    let m: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert!(m.get("authorization_endpoint").is_none(), "{m}");
    assert!(m.get("userinfo_endpoint").is_none());
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
}

#[tokio::test]
async fn introspection_and_revocation_of_an_applications_tokens_name_the_application() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[]).await).await;
    let introspect = |token: String| {
        app.client.post(app.url("/oauth2/introspect")).basic_auth(&rp.id, rp.secret.as_ref()).form(&[("token", token)]).send()
    };
    for kind in ["access_token", "refresh_token"] {
        let answer: Value = introspect(body[kind].as_str().unwrap().to_owned()).await.unwrap().json().await.unwrap();
        assert_eq!(answer["active"], true, "{kind}: {answer}");
        assert_eq!(answer["client_id"], rp.id.as_str(), "{kind}: {answer}");
        assert_eq!(answer["sub"], p.user.id.to_string());
    }
    // RFC 7009: the application may revoke its own refresh token.
    let refresh = body["refresh_token"].as_str().unwrap();
    let res =
        app.client.post(app.url("/oauth2/revoke")).basic_auth(&rp.id, rp.secret.as_ref()).form(&[("token", refresh)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = introspect(refresh.to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["active"], false);
    // A person's own refresh token still says the first-party client.
    let email = unique_email();
    app.register(&email).await;
    let own = app.login(&email).await;
    let answer: Value = introspect(own["refresh_token"].as_str().unwrap().to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["client_id"], "tessera", "{answer}");
}

/// `POST /oauth2/revoke` as a public client: `client_id` in the form, no secret.
async fn revoke_as_public(app: &TestApp, client_id: &str, token: &str) -> Response {
    app.client.post(app.url("/oauth2/revoke")).form(&[("client_id", client_id), ("token", token)]).send().await.unwrap()
}

#[tokio::test]
async fn a_public_client_revokes_its_own_tokens_by_client_id_alone_and_no_one_elses() {
    let app = spawn_app().await;
    let spa = application(&app, true, true).await;
    let other = application(&app, true, true).await;
    let p = person(&app).await;
    let mine = tokens(&app, &spa, &code_for(&app, &p, &spa, &[]).await).await;
    let theirs = tokens(&app, &other, &code_for(&app, &p, &other, &[]).await).await;
    let refresh = |rp: &Rp, token: &Value| {
        let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str().unwrap()), ("client_id", rp.id.as_str())];
        app.client.post(app.url("/oauth2/token")).form(&form).send()
    };

    // Another application's token is not this one's to revoke, and stays usable.
    oauth_error(revoke_as_public(&app, &spa.id, theirs["refresh_token"].as_str().unwrap()).await, "unauthorized_client").await;
    oauth_error(revoke_as_public(&app, &spa.id, theirs["access_token"].as_str().unwrap()).await, "unauthorized_client").await;
    assert_eq!(app.get_with("/oauth2/userinfo", theirs["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    assert_eq!(refresh(&other, &theirs["refresh_token"]).await.unwrap().status(), StatusCode::OK);

    // Its own access token and refresh token it may revoke; both stop working.
    let res = revoke_as_public(&app, &spa.id, mine["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_with("/oauth2/userinfo", mine["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
    let res = revoke_as_public(&app, &spa.id, mine["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    oauth_error(refresh(&spa, &mine["refresh_token"]).await.unwrap(), "invalid_grant").await;
    assert!(audit_kinds(&app).await.iter().filter(|k| *k == "token.revoked").count() >= 2);

    // A client id alone authenticates only a public client.
    let confidential = application(&app, false, true).await;
    for id in [confidential.id.as_str(), "svc_nobody"] {
        let res = revoke_as_public(&app, id, theirs["access_token"].as_str().unwrap()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{id}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{id}: {body}");
    }
    assert_eq!(app.get_with("/oauth2/userinfo", theirs["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_verified_address_is_email_verified_in_the_id_token_and_userinfo() {
    let (app, sink) = crate::email::app_with_sink(|_| {}).await;
    let rp = application(&app, false, true).await;
    let email = unique_email();
    app.register(&email).await;
    let mail = crate::email::mail_about(&sink, &email, "Confirm your email address").await;
    let token = crate::email::token_of(&mail.link("http://tessera.test/verify-email?token=").unwrap());
    let verified_address = app.post_json("/v1/auth/email/verify", &serde_json::json!({ "token": token })).await;
    assert_eq!(verified_address.status(), StatusCode::OK);
    let user = app.tessera.store().user_by_email(&tessera::domain::Email::parse(&email).unwrap()).await.unwrap().unwrap();
    let p = sign_in(&app, user).await;

    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid email")]).await).await;

    let claims = verified(&app, body["id_token"].as_str().unwrap(), &rp.id).await;
    assert_eq!((&claims["email"], &claims["email_verified"]), (&Value::from(email.as_str()), &Value::Bool(true)), "{claims}");
    let info: Value = app.get_with("/oauth2/userinfo", body["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(info["email_verified"], true, "{info}");
}
