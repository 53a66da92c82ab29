//! The pages' machinery in process: the CSRF cookie and check, the error page, the headers,
//! the assets and the sign-in page, on a router built like the real one.

use super::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tower::ServiceExt;

fn pages() -> Arc<Pages> {
    Arc::new(Pages::load(&Config::for_tests("sqlite://unused.db"), &[7; 32]).unwrap())
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"{% extends "base.html" %}{% import "_forms.html" as forms %}{% block title %}Form{% endblock %}
{% block content %}<form method="post" action="/form">{% call forms::csrf(csrf) %}{% endcall %}
{% call forms::field("email", "Email", "email", "email", "", error) %}{% endcall %}<button type="submit">Send</button></form>{% endblock %}"#
)]
struct FormPage<'a> {
    layout: &'a Layout,
    csrf: CsrfToken,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct EmailForm {
    email: String,
}

async fn form_page(State(pages): State<Arc<Pages>>, csrf: CsrfToken) -> Response {
    html(&FormPage { layout: &pages.layout, csrf, error: Some("Enter an email address.".into()) })
}

async fn form_post(VerifiedForm(form): VerifiedForm<EmailForm>) -> String {
    format!("got {}", form.email)
}

/// The layers as `http::router` stacks them, around a test form and the sign-in page.
fn app(pages: Arc<Pages>) -> Router {
    Router::new()
        .route("/form", get(form_page).post(form_post))
        .route(
            "/login",
            get(|State(pages): State<Arc<Pages>>, csrf: CsrfToken, PageQuery(q): PageQuery<login::LoginQuery>| async move {
                login::form(&pages, csrf, q, true, false)
            }),
        )
        .layer(from_fn_with_state(pages.clone(), csrf::ensure_cookie))
        .route("/assets/{name}", get(assets::serve))
        .route("/boom", get(|| async { Err::<Response, _>(HtmlError::from(crate::service::Error::AccountDisabled)) }))
        .fallback(|| async { HtmlError::not_found() })
        .layer(from_fn_with_state(pages.clone(), error::render_errors))
        .with_state(pages)
}

async fn send(app: &Router, req: Request<Body>) -> (Response, String) {
    let response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (Response::from_parts(parts, Body::empty()), String::from_utf8(bytes.to_vec()).unwrap())
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::ACCEPT, "text/html").body(Body::empty()).unwrap()
}

fn post(uri: &str, cookie: Option<&str>, body: String) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::from(body)).unwrap()
}

/// The `name=value` of the response's CSRF cookie, and the token in its form.
fn cookie_and_token(response: &Response, body: &str) -> (String, String) {
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let at = body.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let token = body[at..].split('"').next().unwrap().to_owned();
    (cookie, token)
}

fn assert_page_headers(response: &Response) {
    let h = response.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'self'") && CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn a_form_page_sets_the_csrf_cookie_once_and_signs_its_token() {
    let app = app(pages());
    let (response, body) = send(&app, get_req("/form")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page_headers(&response);
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("tessera-csrf=") && set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    let (cookie, token) = cookie_and_token(&response, &body);

    let again = Request::get("/form").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let (response, body) = send(&app, again).await;
    assert!(response.headers().get(header::SET_COOKIE).is_none(), "a browser that has the cookie keeps it");
    assert!(body.contains(&token), "the same cookie gets the same token");
}

#[tokio::test]
async fn a_post_with_the_token_of_its_cookie_reaches_the_handler() {
    let app = app(pages());
    let (response, body) = send(&app, get_req("/form")).await;
    let (cookie, token) = cookie_and_token(&response, &body);

    let (response, body) = send(&app, post("/form", Some(&cookie), format!("csrf_token={token}&email=ada%40example.com"))).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body, "got ada@example.com");
}

#[tokio::test]
async fn a_post_without_a_valid_token_gets_the_403_page_and_not_the_handler() {
    let app = app(pages());
    let (response, body) = send(&app, get_req("/form")).await;
    let (cookie, token) = cookie_and_token(&response, &body);
    let (other_response, other_body) = send(&app, get_req("/form")).await;
    let (_, other_token) = cookie_and_token(&other_response, &other_body);

    let cases = [
        ("no token", Some(cookie.as_str()), "email=a%40b.c".to_owned()),
        ("no cookie", None, format!("csrf_token={token}&email=a%40b.c")),
        ("another browser's token", Some(cookie.as_str()), format!("csrf_token={other_token}&email=a%40b.c")),
        ("a forged token", Some(cookie.as_str()), "csrf_token=AAAA&email=a%40b.c".to_owned()),
    ];
    for (case, cookie, body) in cases {
        let (response, page) = send(&app, post("/form", cookie, body)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_page_headers(&response);
        assert!(page.contains("csrf_failed") && !page.contains("got "), "{case}: {page}");
    }

    let mut cross_site = post("/form", Some(&cookie), format!("csrf_token={token}&email=a%40b.c"));
    cross_site.headers_mut().insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    let (response, page) = send(&app, cross_site).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{page}");
}

#[tokio::test]
async fn a_form_that_does_not_fit_its_type_is_a_400_page() {
    let app = app(pages());
    let (response, body) = send(&app, get_req("/form")).await;
    let (cookie, token) = cookie_and_token(&response, &body);
    let (response, page) = send(&app, post("/form", Some(&cookie), format!("csrf_token={token}"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid_form"), "{page}");
}

#[tokio::test]
async fn service_errors_become_the_error_page_with_the_layout_and_no_detail() {
    let app = app(pages());
    let (response, page) = send(&app, get_req("/boom")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_page_headers(&response);
    assert!(page.contains("<title>You cannot do this · Tessera</title>"), "{page}");
    assert!(page.contains("<code>account_disabled</code>") && page.contains("Error 403"), "{page}");
}

#[tokio::test]
async fn every_input_has_a_label_an_autocomplete_token_and_an_alert_for_its_error() {
    let app = app(pages());
    let (_, page) = send(&app, get_req("/form")).await;
    assert!(page.contains(r#"<label for="email">Email</label>"#), "{page}");
    assert!(page.contains(r#"id="email" name="email" type="email" autocomplete="email" required"#), "{page}");
    assert!(page.contains(r#"aria-invalid="true" aria-describedby="email-error""#), "{page}");
    assert!(page.contains(r#"<p class="field-error" id="email-error" role="alert">Enter an email address.</p>"#), "{page}");
}

#[tokio::test]
async fn the_sign_in_page_has_the_contract_fields_and_keeps_its_hint_and_return_path() {
    let app = app(pages());
    let uri = "/login?login_hint=ada%40example.com&return_to=%2Foauth2%2Fauthorize%3Fclient_id%3Dnotes%26state%3D%22x%22";
    let (response, page) = send(&app, get_req(uri)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page_headers(&response);
    assert!(page.contains(r#"name="identifier" type="text" autocomplete="username" required value="ada@example.com""#), "{page}");
    assert!(page.contains(r#"name="password" type="password" autocomplete="current-password" required data-reveal"#), "{page}");
    assert!(page.contains(r#"name="return_to" value="/oauth2/authorize?client_id=notes&#38;state=&#34;x&#34;""#), "{page}");
    assert_eq!(page.matches(r#"type="submit""#).count(), 1);
    assert!(page.contains(r#"<input type="hidden" name="csrf_token" value=""#));
    assert!(!page.contains("role=\"alert\""), "no error, no alert");

    let (_, page) = send(&app, get_req("/login?return_to=https%3A%2F%2Fevil.example%2F&login_hint=%3Cscript%3E")).await;
    assert!(page.contains(r#"name="return_to" value="/account""#), "{page}");
    assert!(page.contains("value=\"&#60;script&#62;\"") && !page.contains("<script>"), "{page}");
}

#[tokio::test]
async fn a_malformed_query_is_a_400_page() {
    let app = app(pages());
    let (response, page) = send(&app, get_req("/login?login_hint=%ZZ&login_hint=twice")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("invalid_request"));
}

#[tokio::test]
async fn assets_are_served_with_a_year_of_caching_and_revalidate_by_etag() {
    let pages = pages();
    let app = app(pages.clone());
    let (response, css) = send(&app, get_req(&pages.layout.stylesheet)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(css.contains("--brand"));
    let etag = response.headers()[header::ETAG].clone();

    let revalidate = Request::get(&pages.layout.stylesheet).header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap();
    let (response, body) = send(&app, revalidate).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (response, _) = send(&app, get_req(&pages.layout.icon)).await;
    assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    let (response, _) = send(&app, get_req("/assets/tessera-0000000000000000.css")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_layout_links_only_its_own_assets() {
    let pages = pages();
    let app = app(pages.clone());
    let (_, page) = send(&app, get_req("/login")).await;
    for url in [&pages.layout.stylesheet, &pages.layout.theme, &pages.layout.script, &pages.layout.icon] {
        assert!(page.contains(&format!("\"{url}\"")), "{url} in {page}");
        let (response, _) = send(&app, get_req(url)).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("style="), "{page}");
    assert!(!page.contains("<script>"), "no inline script");
}

#[test]
fn browsers_get_html_and_api_clients_get_problems() {
    let accept = |value: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(value));
        h
    };
    let browser = accept("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8");
    assert!(wants_html(&browser, "/nothing"));
    assert!(wants_html(&browser, "/v1x"));
    for api in ["/v1/nothing", "/v1", "/oauth2/nothing", "/.well-known/nothing"] {
        assert!(!wants_html(&browser, api), "{api}");
    }
    assert!(!wants_html(&accept("*/*"), "/nothing"));
    assert!(!wants_html(&accept("application/json"), "/nothing"));
    assert!(!wants_html(&accept("application/json, text/html;q=0.5"), "/nothing"));
    assert!(!wants_html(&accept("text/html;q=0"), "/nothing"));
    assert!(!wants_html(&HeaderMap::new(), "/nothing"));
}

#[test]
fn the_origin_of_the_issuer_is_its_scheme_host_and_port() {
    assert_eq!(origin_of("https://Auth.Example.com/tenant/a"), "https://auth.example.com");
    assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
}
