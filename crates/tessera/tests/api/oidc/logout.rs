//! Signing out, on the page and through RP-initiated logout, and what it ends.

use super::*;

#[tokio::test]
async fn signing_out_ends_the_tokens_issued_through_the_browser_session_except_offline_ones() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let online = tokens(&app, &rp, &code_for(&app, &p, &rp, &[]).await).await;
    let offline = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid offline_access")]).await).await;
    let id_token = online["id_token"].as_str().unwrap();

    let res = app
        .client
        .get(app.url(&format!(
                "/oauth2/logout?{}",
                serde_urlencoded::to_string([
                    ("id_token_hint", id_token),
                    ("post_logout_redirect_uri", "https://app.example/bye"),
                    ("state", "s9")
                ])
                .unwrap()
            )))
        .header("cookie", &p.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "https://app.example/bye?state=s9");
    let online_at = online["access_token"].as_str().unwrap();
    let offline_at = offline["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", online_at).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_with("/oauth2/userinfo", offline_at).await.status(), StatusCode::OK, "offline_access outlives sign-out");
    // The browser session is gone: the next request asks for sign-in.
    assert!(location(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).starts_with("/login?"));
}

#[tokio::test]
async fn logout_without_an_id_token_hint_asks_first_and_an_unregistered_uri_is_not_followed() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let q =
        serde_urlencoded::to_string([("client_id", rp.id.as_str()), ("post_logout_redirect_uri", "https://evil.example/"), ("state", "s")])
            .unwrap();
    let res = app.client.get(app.url(&format!("/oauth2/logout?{q}"))).header("cookie", &p.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (csrf_cookie, token, html) = csrf_form(res).await;
    assert!(html.contains(r#"<button type="submit">Sign out</button>"#), "{html}");
    // Nothing has ended yet.
    assert!(callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).contains_key("code"));
    let res = app
        .client
        .post(app.url("/oauth2/logout"))
        .header("cookie", format!("{}; {csrf_cookie}", p.cookie))
        .form(&[
            ("csrf_token", token.as_str()),
            ("client_id", rp.id.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "an unregistered URI: the signed-out page, no redirect");
    assert!(res.text().await.unwrap().contains("signed out"));
    assert!(location(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).starts_with("/login?"));
}

#[tokio::test]
async fn signing_out_on_the_page_and_through_rp_logout_is_one_path_recorded_alike() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let hinted = person(&app).await;
    let on_page = person(&app).await;
    let online = tokens(&app, &rp, &code_for(&app, &on_page, &rp, &[]).await).await;
    let id_token = tokens(&app, &rp, &code_for(&app, &hinted, &rp, &[]).await).await["id_token"].as_str().unwrap().to_owned();

    let hint = serde_urlencoded::to_string([("id_token_hint", id_token.as_str())]).unwrap();
    let res = app.client.get(app.url(&format!("/oauth2/logout?{hint}"))).header("cookie", &hinted.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (csrf, token) = form_token(&app, "/logout", &on_page.cookie).await;
    let res = app
        .client
        .post(app.url("/logout"))
        .header("cookie", format!("{}; {csrf}", on_page.cookie))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_with("/oauth2/userinfo", online["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);

    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    let signed_out: Vec<String> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "logout.page")
        .filter_map(|e| e["actor"].as_str().map(str::to_owned))
        .collect();
    for who in [&hinted, &on_page] {
        assert_eq!(signed_out.iter().filter(|a| **a == who.user.id.to_string()).count(), 1, "{signed_out:?}");
    }
    // Signing out again (the session already ended) records nothing more.
    let res = app.client.get(app.url(&format!("/oauth2/logout?{hint}"))).header("cookie", &hinted.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    assert_eq!(audit["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "logout.page").count(), 2);
}
