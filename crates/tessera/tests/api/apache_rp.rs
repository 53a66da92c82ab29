//! A real relying party outside the project signs a person in through Tessera: Apache httpd
//! with mod_auth_openidc (Debian's `libapache2-mod-auth-openidc`) protects a small service
//! behind `mod_proxy`. The test writes Apache's whole configuration into a temp directory (no
//! system configuration), runs it on a loopback port, and drives it like a browser that already
//! has a Tessera session: `/protected/` → Tessera's authorization endpoint → back to Apache's
//! redirect URI with `code` and `iss` → Apache redeems the code and verifies the id_token
//! itself → the service sees the person's claims. It fails, never skips, when Apache or the
//! module is missing (`.ci/run` installs both).

use crate::apache::{free_port, start_apache, upstream};
use crate::clients::create_client;
use crate::relying_party::{signed_in_person, spawn_on_issuer_address};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::domain::keys::SigningAlg;

/// The `name=value` of every `Set-Cookie` in an answer that sets a value.
fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
        .collect()
}

#[tokio::test]
async fn apache_with_mod_auth_openidc_signs_a_person_in_through_tessera() {
    let app = spawn_on_issuer_address(SigningAlg::ES256).await;
    let admin = app.admin_token().await;
    // The redirect URI names Apache's port, so the port is chosen before the client exists.
    let port = free_port();
    let apache_url = format!("http://127.0.0.1:{port}");
    let redirect_uri = format!("{apache_url}/protected/redirect_uri");
    let created = create_client(
        &app,
        &admin,
        json!({ "name": "Apache", "scopes": ["notes:read"], "redirect_uris": [redirect_uri], "first_party": true }),
    )
    .await;
    let (email, tessera_cookie) = signed_in_person(&app).await;
    let apache = start_apache(
        port,
        &app.address,
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
        upstream().await,
    )
    .await;

    // The browser: follow redirects by hand, Tessera's cookie to Tessera, Apache's to Apache.
    let mut apache_cookies: Vec<String> = Vec::new();
    let mut url = format!("{apache_url}/protected/hello");
    let mut visited = Vec::new();
    let res = loop {
        assert!(visited.len() < 10, "too many redirects: {visited:#?}");
        let cookie = if url.starts_with(&app.address) { tessera_cookie.clone() } else { apache_cookies.join("; ") };
        let res = app.client.get(&url).header("cookie", cookie).send().await.unwrap();
        if url.starts_with(&apache_url) {
            for pair in set_cookies(&res) {
                let name = pair.split('=').next().unwrap_or_default().to_owned();
                apache_cookies.retain(|c| !c.starts_with(&format!("{name}=")));
                apache_cookies.push(pair);
            }
        }
        visited.push(url.clone());
        if !res.status().is_redirection() {
            break res;
        }
        let location = res.headers()["location"].to_str().unwrap();
        url = url::Url::parse(&url).unwrap().join(location).unwrap().to_string();
    };
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}\nvisited {visited:#?}\n{}", apache.error_log());

    // The way there and back: Apache sent the browser to Tessera, which came back with a code
    // and its issuer (RFC 9207), which Apache accepted.
    assert!(visited[1].starts_with(&app.url("/oauth2/authorize?")), "{visited:#?}");
    let authorize = url::Url::parse(&visited[1]).unwrap();
    let asked: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(asked["code_challenge_method"], "S256");
    assert!(asked.contains_key("nonce") && asked.contains_key("state"), "{asked:?}");
    let back = url::Url::parse(&visited[2]).unwrap();
    assert!(back.as_str().starts_with(&redirect_uri), "{visited:#?}");
    let answered: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(answered.get("iss"), Some(&app.address), "{answered:?}");
    assert!(answered.contains_key("code"), "{answered:?}");
    assert_eq!(visited.last().unwrap(), &format!("{apache_url}/protected/hello"));

    // The service behind Apache sees the person Tessera signed in, from the verified id_token.
    let claims: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(claims["oidc_claim_email"], email.as_str(), "{claims}");
    assert_eq!(claims["oidc_claim_iss"], app.address.as_str(), "{claims}");
    let log = apache.error_log();
    assert!(!log.contains(":error]"), "mod_auth_openidc complained:\n{log}");

    // The session is Apache's own now: the next request goes straight through.
    let res = app.client.get(format!("{apache_url}/protected/again")).header("cookie", apache_cookies.join("; ")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["oidc_claim_email"], email.as_str());

    // Apache checks the `iss` of the authorization response: an answer naming another issuer
    // is refused, so the way above passed because Tessera named itself. (This version of the
    // module lets an answer without `iss` through, which is why the test checks its presence
    // above itself.)
    for tampered in [Some("http://127.0.0.1:1")] {
        let res = app.client.get(format!("{apache_url}/protected/other")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        let state_cookies = set_cookies(&res).join("; ");
        let to_tessera = res.headers()["location"].to_str().unwrap().to_owned();
        let res = app.client.get(&to_tessera).header("cookie", &tessera_cookie).send().await.unwrap();
        let mut back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let pairs: Vec<(String, String)> = back.query_pairs().into_owned().filter(|(k, _)| k != "iss").collect();
        back.query_pairs_mut().clear().extend_pairs(&pairs);
        if let Some(iss) = tampered {
            back.query_pairs_mut().append_pair("iss", iss);
        }
        let res = app.client.get(back.as_str()).header("cookie", &state_cookies).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        // The module's error page (Debian's 2.4.12 answers it with 200), never the service.
        assert!(body.contains("<title>Error</title>") && !body.contains("oidc_claim"), "iss {tampered:?}: {status} {body}");
        let log = apache.error_log();
        assert!(log.contains("does not match the issuer provided in the response"), "the refusal names the issuer:\n{log}");
    }
    drop(apache);
}
