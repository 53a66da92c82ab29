//! `/openapi.json` is generated from the code; these tests hold it to the router, so that a
//! route cannot be added, or its method changed, without the document following. Whether the
//! answers match the document is checked by schemathesis (`.ci/schemathesis.sh`).

use crate::helpers::{problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn document() -> Value {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.expect("the document is JSON")
}

/// `(path, METHOD, operation)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((path.clone(), method.to_uppercase(), operation));
            }
        }
    }
    found
}

/// Follows a `$ref` within the document.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is not local"));
            doc.pointer(pointer).unwrap_or_else(|| panic!("{reference} does not resolve"))
        }
        None => value,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1() {
    let doc = document().await;

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "Tessera");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let doc = document().await;

    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(p, m, _)| (p, m)).collect();
    let served: BTreeSet<(String, String)> =
        tessera::http::served_routes().into_iter().map(|(p, m)| (p.to_owned(), m.as_str().to_owned())).collect();

    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in /openapi.json: {undocumented:?}");
    assert!(not_served.is_empty(), "in /openapi.json but not served: {not_served:?}");
    assert!(served.contains(&("/openapi.json".to_owned(), "GET".to_owned())), "the document documents itself");
}

#[tokio::test]
async fn every_operation_has_an_operation_id_of_its_own() {
    let doc = document().await;

    let mut seen: std::collections::BTreeMap<String, (String, String)> = std::collections::BTreeMap::new();
    for (path, method, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId")).to_owned();
        if let Some((other_path, other_method)) = seen.insert(id.clone(), (path.clone(), method.clone())) {
            panic!("operationId {id} names both {other_method} {other_path} and {method} {path}");
        }
    }
}

#[tokio::test]
async fn every_operation_declares_an_error_response() {
    let doc = document().await;

    for (path, method, operation) in operations(&doc) {
        let statuses: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
        assert!(statuses.iter().any(|s| s.starts_with('2')), "{method} {path} declares no success: {statuses:?}");
        assert!(
            statuses.iter().any(|s| s.starts_with('4') || s.starts_with('5')),
            "{method} {path} declares no error response: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn errors_are_problems_except_on_oauth2_where_they_are_rfc_6749_errors() {
    let doc = document().await;
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem["required"].as_array().unwrap().iter().any(|f| f == field), "Problem requires {field}");
    }

    for (path, method, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let content = resolve(&doc, response)["content"].as_object().unwrap();
            // Userinfo is a bearer resource under /oauth2/: it answers problems.
            let (media, schema) = if path.starts_with("/oauth2/") && path != "/oauth2/userinfo" {
                ("application/json", "#/components/schemas/OAuthErrorBody")
            } else if (path.as_str(), method.as_str(), status.as_str()) == ("/v1/auth/login", "POST", "403") {
                // A problem with more: `mfa_required` also has `mfa_token` and `methods`.
                ("application/problem+json", "#/components/schemas/LoginProblem")
            } else {
                ("application/problem+json", "#/components/schemas/Problem")
            };
            let keys: Vec<&String> = content.keys().collect();
            assert_eq!(keys, [media], "{method} {path} {status}");
            assert_eq!(content[media]["schema"]["$ref"], schema, "{method} {path} {status}");
        }
    }
    for method in ["get", "post"] {
        let responses = &doc["paths"]["/oauth2/userinfo"][method]["responses"];
        assert!(responses.get("403").is_some(), "userinfo without openid is 403 insufficient_scope: {responses}");
    }
}

#[tokio::test]
async fn operations_that_need_credentials_name_a_declared_scheme() {
    let doc = document().await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");

    for (path, method, operation) in operations(&doc) {
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.get(name).is_some(), "{method} {path} names an undeclared scheme {name}");
            }
        }
        let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
        let public = [
            "/v1/auth/register",
            "/v1/auth/login",
            "/v1/auth/refresh",
            "/v1/auth/login/mfa",
            "/v1/auth/passkey/options",
            "/v1/auth/passkey",
            "/v1/auth/password/forgot",
            "/v1/auth/password/reset",
            "/v1/auth/email/verify",
        ]
        .contains(&path.as_str());
        if path.starts_with("/v1/") && !public || path.starts_with("/oauth2/") {
            assert!(secured, "{method} {path} declares no security");
        }
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let doc = document().await;

    let mut stack = vec![&doc];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                resolve(&doc, value);
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

// Answers that did not match the document until the document was checked against them.

#[tokio::test]
async fn an_oversized_optional_body_is_a_413_problem() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let huge = "x".repeat(70 * 1024);

    for path in ["/v1/auth/logout", "/v1/keys/rotate"] {
        let res = app.request(Method::POST, path).bearer_auth(&admin).body(huge.clone()).send().await.unwrap();
        problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_400_problem() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for path in ["/v1/users/%FF", "/v1/users/me/sessions/%FF", "/v1/clients/%FF", "/v1/clients/%FF/secret"] {
        let method = if path.ends_with("secret") { Method::POST } else { Method::DELETE };
        let res = app.request(method, path).bearer_auth(&admin).send().await.unwrap();
        problem(res, StatusCode::BAD_REQUEST, "malformed_request").await;
    }
    problem(app.get("/v1/users/%FF").await, StatusCode::BAD_REQUEST, "malformed_request").await;
}

#[tokio::test]
async fn every_route_behind_a_per_address_limit_documents_its_429() {
    let doc = document().await;

    for (path, method) in tessera::http::limited_routes() {
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(operation["responses"].get("429").is_some(), "{method} {path} does not document 429");
    }
}

#[tokio::test]
async fn a_body_with_flattened_fields_is_documented_as_one_closed_object() {
    let doc = document().await;

    let operation = &doc["paths"]["/v1/clients"]["post"];
    let schema = resolve(&doc, &operation["responses"]["201"]["content"]["application/json"]["schema"]);
    assert!(schema.get("allOf").is_none(), "{schema}");
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    let required = |field: &str| schema["required"].as_array().unwrap().iter().any(|f| f == field);
    for field in ["client_id", "name", "created_at", "client_secret"] {
        assert!(schema["properties"].get(field).is_some(), "NewClientView lacks {field}: {schema}");
    }
    for field in ["client_id", "name", "created_at"] {
        assert!(required(field), "{field} is not required: {schema}");
    }
    // A public client gets no secret.
    assert!(!required("client_secret"), "{schema}");
}

#[tokio::test]
async fn the_logins_403_documents_the_mfa_token_and_methods_of_mfa_required() {
    let doc = document().await;

    let response = resolve(&doc, &doc["paths"]["/v1/auth/login"]["post"]["responses"]["403"]);
    let schema = resolve(&doc, &response["content"]["application/problem+json"]["schema"]);
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    let properties = &schema["properties"];
    assert_eq!(properties["mfa_token"]["type"], "string", "{schema}");
    let methods = &properties["methods"];
    assert_eq!(methods["type"], "array", "{schema}");
    let method = resolve(&doc, &methods["items"]);
    assert_eq!(method["enum"], serde_json::json!(["totp", "recovery_code", "passkey"]), "{method}");
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(required.contains(&field), "{field} is not required: {schema}");
    }
    assert!(!required.contains(&"mfa_token") && !required.contains(&"methods"), "only mfa_required has them: {schema}");

    // The body the server sends has exactly the fields the document names.
    let answer = tessera::http::error::ApiError::from(tessera::service::Error::MfaRequired {
        mfa_token: "tmf_x".to_owned(),
        methods: vec!["totp", "recovery_code", "passkey"],
    });
    let body = axum::body::to_bytes(axum::response::IntoResponse::into_response(answer).into_body(), 64 * 1024).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let sent: BTreeSet<&String> = body.as_object().unwrap().keys().collect();
    let named: BTreeSet<&String> = properties.as_object().unwrap().keys().collect();
    assert_eq!(sent, named, "{body}");
}
