//! When the authorization endpoint asks for a sign-in or for consent: no session,
//! `prompt`, `max_age`, remembered and withdrawn consent, and the consent form's CSRF.

use super::*;

#[tokio::test]
async fn without_a_session_the_request_goes_to_sign_in_with_the_login_hint_and_prompt_none_shows_no_page() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let res = authorize(&app, None, &query(&rp, &[("login_hint", "ann@example.com")])).await;
    let loc = location(&res);
    assert!(loc.starts_with("/login?"), "{loc}");
    let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
    assert_eq!(params["login_hint"], "ann@example.com");
    assert!(params["return_to"].starts_with("/oauth2/authorize?"), "{params:?}");
    assert!(params["return_to"].contains(&format!("client_id={}", rp.id)));

    let params = callback(&authorize(&app, None, &query(&rp, &[("prompt", "none")])).await);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-123");
    let p = person(&app).await;
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("prompt", "none")])).await);
    assert_eq!(params["error"], "consent_required", "not first-party and no consent yet");
    // A bogus cookie is no session.
    let res = authorize(&app, Some("tessera-session=tbs_forged"), &query(&rp, &[])).await;
    assert!(location(&res).starts_with("/login?"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_new_sign_in_and_the_return_does_not_loop() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    app.advance(Duration::from_secs(120));
    for extra in [("prompt", "login"), ("max_age", "60"), ("max_age", "0")] {
        let res = authorize(&app, Some(&p.cookie), &query(&rp, &[extra])).await;
        let loc = location(&res);
        assert!(loc.starts_with("/login?"), "{extra:?}: {loc}");
        let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
        let return_to = params["return_to"].clone();
        // The old session coming back is still sent to sign in.
        assert!(
            location(&authorize(&app, Some(&p.cookie), return_to.trim_start_matches("/oauth2/authorize?")).await).starts_with("/login?")
        );
        // A new sign-in after the request: back to the request, which now issues a code.
        app.advance(Duration::from_secs(1));
        let again = sign_in(&app, p.user.clone()).await;
        let res = authorize(&app, Some(&again.cookie), return_to.trim_start_matches("/oauth2/authorize?")).await;
        assert!(callback(&res).contains_key("code"), "{extra:?}");
        app.advance(Duration::from_secs(120));
    }
    // A recent enough sign-in satisfies max_age without a page.
    let fresh = sign_in(&app, p.user.clone()).await;
    let res = authorize(&app, Some(&fresh.cookie), &query(&rp, &[("max_age", "60"), ("prompt", "none")])).await;
    assert!(callback(&res).contains_key("code"));
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("max_age", "60"), ("prompt", "none")])).await;
    assert_eq!(callback(&res)["error"], "login_required");
}

#[tokio::test]
async fn a_login_after_marker_the_client_wrote_does_not_skip_the_new_sign_in() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    app.advance(Duration::from_secs(120));
    // A genuine marker, made for another request (another PKCE challenge).
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("prompt", "login"), ("code_challenge", &"A".repeat(43))])).await;
    let loc = location(&res);
    let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
    let returned: HashMap<String, String> =
        url::Url::parse(&format!("http://x{}", params["return_to"])).unwrap().query_pairs().into_owned().collect();
    let genuine = returned["login_after"].clone();
    assert!(genuine.contains('.'), "signed: {genuine}");
    let millis = genuine.split('.').next().unwrap().to_owned();

    for forged in ["0", "0.AAAA", &millis, &format!("{millis}.AAAA"), &genuine] {
        for extra in [("prompt", "login"), ("max_age", "60")] {
            let res = authorize(&app, Some(&p.cookie), &query(&rp, &[extra, ("login_after", forged)])).await;
            assert!(location(&res).starts_with("/login?"), "{extra:?} with login_after={forged}");
        }
    }
}

#[tokio::test]
async fn consent_is_asked_once_remembered_and_asked_again_for_more_scopes() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let p = person(&app).await;
    let q = query(&rp, &[("scope", "openid email")]);
    let res = authorize(&app, Some(&p.cookie), &q).await;
    assert!(location(&res).starts_with("/consent?"));
    let res = consent(&app, &p, &q, "allow").await;
    assert!(location(&res).starts_with("/oauth2/authorize?"));
    let res = authorize(&app, Some(&p.cookie), location(&res).trim_start_matches("/oauth2/authorize?")).await;
    assert!(callback(&res).contains_key("code"));
    // Remembered: no page, even with prompt=none.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid"), ("prompt", "none")])).await;
    assert!(callback(&res).contains_key("code"));
    // More scopes than allowed: asked again.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid email profile")])).await;
    assert!(location(&res).starts_with("/consent?"));
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=50", &admin).await.json().await.unwrap();
    assert!(audit["events"].as_array().unwrap().iter().any(|e| e["kind"] == "consent.granted"), "{audit}");
}

#[tokio::test]
async fn denied_consent_sends_access_denied_and_a_post_without_csrf_is_refused() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let p = person(&app).await;
    let q = query(&rp, &[]);
    let params = callback(&consent(&app, &p, &q, "deny").await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], app.config.issuer);
    let res = app
        .client
        .post(app.url("/consent"))
        .header("cookie", &p.cookie)
        .form(&[("request", q.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(location(&authorize(&app, Some(&p.cookie), &q).await).starts_with("/consent?"), "nothing was recorded");
}

#[tokio::test]
async fn a_form_served_by_one_instance_is_accepted_by_another() {
    let one = spawn_app().await;
    let two = spawn_beside(&one, |_| {}).await;
    let rp = application(&one, false, false).await;
    let p = person(&one).await;
    let q = query(&rp, &[]);
    let (csrf_cookie, token) = form_token(&one, &format!("/consent?{q}"), &p.cookie).await;

    let res = two
        .client
        .post(two.url("/consent"))
        .header("cookie", format!("{}; {csrf_cookie}", p.cookie))
        .form(&[("csrf_token", token.as_str()), ("request", q.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), StatusCode::FOUND, "the consent is taken and the browser sent on");
}

#[tokio::test]
async fn withdrawing_consent_on_the_account_page_deletes_it_and_ends_the_applications_sessions_and_codes() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let other = application(&app, false, true).await;
    let p = person(&app).await;
    let q = query(&rp, &[("scope", "openid email offline_access")]);
    let back = location(&consent(&app, &p, &q, "allow").await);
    let code = callback(&authorize(&app, Some(&p.cookie), back.trim_start_matches("/oauth2/authorize?")).await)["code"].clone();
    let online = tokens(&app, &rp, &code).await;
    let offline = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid offline_access")]).await).await;
    let untouched = tokens(&app, &other, &code_for(&app, &p, &other, &[]).await).await;
    let in_flight = code_for(&app, &p, &rp, &[("scope", "openid email")]).await;
    let html = app.client.get(app.url("/account")).header("cookie", &p.cookie).send().await.unwrap().text().await.unwrap();
    let section = html.split(r#"id="allowed-title""#).nth(1).expect("the allowed applications' section");
    assert!(section.contains("Notes") && section.contains("See your email address"), "{section}");
    assert!(section.contains(&format!(r#"name="client_id" value="{}""#, rp.id)), "{section}");
    assert!(!section.contains(&other.id), "a first-party application was never asked, so it is not listed");

    let (csrf, token) = form_token(&app, "/account", &p.cookie).await;
    let withdraw = |client_id: String, with_token: bool| {
        let mut form = vec![("client_id", client_id)];
        if with_token {
            form.push(("csrf_token", token.clone()));
        }
        app.client.post(app.url("/account/apps/withdraw")).header("cookie", format!("{}; {csrf}", p.cookie)).form(&form).send()
    };
    assert_eq!(withdraw(rp.id.clone(), false).await.unwrap().status(), StatusCode::FORBIDDEN, "CSRF");
    let res = withdraw(rp.id.clone(), true).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/account?withdrawn=1");

    for (tokens, what) in [(&online, "online"), (&offline, "offline_access")] {
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.get_with("/oauth2/userinfo", at).await.status(), StatusCode::UNAUTHORIZED, "{what}");
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
        let res = app.client.post(app.url("/oauth2/token")).basic_auth(&rp.id, rp.secret.as_ref()).form(&refresh).send().await.unwrap();
        oauth_error(res, "invalid_grant").await;
    }
    oauth_error(exchange(&app, &rp, &in_flight, VERIFIER).await, "invalid_grant").await;
    let at = untouched["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", at).await.status(), StatusCode::OK, "another application keeps its session");
    assert!(location(&authorize(&app, Some(&p.cookie), &q).await).starts_with("/consent?"), "asked again");
    assert_eq!(withdraw(rp.id.clone(), true).await.unwrap().status(), StatusCode::NOT_FOUND, "nothing left to withdraw");
    let kinds = audit_kinds(&app).await;
    assert!(kinds.iter().any(|k| k == "consent.granted") && kinds.iter().any(|k| k == "consent.withdrawn"), "{kinds:?}");
}
