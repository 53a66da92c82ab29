//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations and
//! the `ToSchema` types of the bodies. The test `tests/api/openapi.rs` holds it to
//! [`super::served_routes`], so a route cannot be added without being documented.

use super::error::{
    OAuthErrorAnswer, OAuthErrorBody, OAuthRetryLaterAnswer, OAuthUnauthorizedAnswer, Problem, ProblemAnswer, RetryLaterAnswer,
    UnauthorizedAnswer,
};
use super::{audit, auth, clients, discovery, keys, oauth, ops, revocations, users};
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use utoipa::openapi::Required;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Tessera", description = "An authentication service: people, service clients, JWT access tokens, revocation."),
    paths(
        ops::root,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        document,
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::logout_all,
        auth::verify,
        users::me,
        users::patch_me,
        users::delete_me,
        users::change_password,
        users::sessions,
        users::end_session,
        users::get_user,
        users::list_users,
        users::admin_patch_user,
        users::admin_delete_user,
        clients::create,
        clients::list,
        clients::get,
        clients::patch,
        clients::delete,
        clients::rotate_secret,
        keys::list,
        keys::rotate,
        keys::jwks,
        revocations::feed,
        audit::trail,
        oauth::token,
        oauth::introspect,
        oauth::revoke,
        discovery::metadata,
    ),
    components(schemas(Problem, OAuthErrorBody), responses(
        ProblemAnswer,
        UnauthorizedAnswer,
        RetryLaterAnswer,
        OAuthErrorAnswer,
        OAuthUnauthorizedAnswer,
        OAuthRetryLaterAnswer
    )),
    modifiers(&SecuritySchemes, &SharedHandlers),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out, verify"),
        (name = "users", description = "The caller's account and sessions; other accounts"),
        (name = "admin", description = "Administration: a token with the `admin` role"),
        (name = "oauth2", description = "OAuth 2.0: form bodies in, JSON out, RFC 6749 §5.2 errors"),
        (name = "discovery", description = "Public keys and authorization-server metadata"),
        (name = "operations", description = "Identity, liveness, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// `bearer`: an access token from `/v1/auth/*` or `/oauth2/token`. `client_basic`: a service
/// client's `client_id` and `client_secret` (RFC 6749 §2.3.1). `metrics_token`: the
/// configured `TESSERA_METRICS_TOKEN`, for `/metrics`.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme("client_basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("metrics_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// What one annotation cannot say: that a body is optional, that a handler serves two
/// operations (OpenAPI wants an operation id for each) or two paths.
#[derive(Debug)]
struct SharedHandlers;

impl Modify for SharedHandlers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        // One handler answers GET and POST.
        if let Some(post) = paths.get_mut("/v1/auth/verify").and_then(|item| item.post.as_mut()) {
            post.operation_id = Some("verify_post".into());
        }
        // These POSTs read their JSON body as bytes, so that it may be left out.
        for path in ["/v1/auth/logout", "/v1/keys/rotate"] {
            if let Some(body) = paths.get_mut(path).and_then(|item| item.post.as_mut()).and_then(|op| op.request_body.as_mut()) {
                body.required = Some(Required::False);
            }
        }
        // One handler serves the RFC 8414 metadata under its OpenID Connect name too.
        if let Some(mut item) = paths.get("/.well-known/oauth-authorization-server").cloned() {
            if let Some(get) = item.get.as_mut() {
                get.operation_id = Some("openid_configuration".into());
                get.summary = Some("The same metadata under its OpenID Connect discovery name".into());
            }
            paths.insert("/.well-known/openid-configuration".into(), item);
        }
    }
}

/// The document as served.
///
/// Every object schema that a response uses is closed (`additionalProperties: false`), so a
/// field the server sends but the document does not name fails schema checks instead of
/// passing unnoticed. Request bodies keep whatever their types say: most accept extra fields.
pub fn openapi_json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    add_common_errors(&mut doc);
    close_response_objects(&mut doc);
    doc
}

/// The error answers every endpoint of a kind can give, declared here once instead of on
/// every handler: any endpoint may fail (500) or find its database or hasher unavailable
/// (503); one with a body may refuse it (400, 413, 415, and 422 for JSON); one that takes a
/// bearer token may refuse it (401) or the caller (403); `/oauth2/*` says all of it in RFC 6749
/// errors, and 401 there is `invalid_client`. A handler's own annotation lists its success
/// answers and the errors peculiar to it (404, 409, 429, …), and wins where both name a status.
fn add_common_errors(doc: &mut Value) {
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let answer = |name: &str| serde_json::json!({ "$ref": format!("#/components/responses/{name}") });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let oauth = path.starts_with("/oauth2/");
        for method in METHODS {
            let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) else { continue };
            let has_body = operation.contains_key("requestBody");
            let bearer = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|schemes| schemes.iter().any(|s| s.get("bearer").is_some()));
            let mut common: Vec<(&str, &str)> = Vec::new();
            if oauth {
                common.extend([("400", "OAuthErrorAnswer"), ("401", "OAuthUnauthorizedAnswer"), ("413", "OAuthErrorAnswer")]);
                common.extend([("415", "OAuthErrorAnswer"), ("500", "OAuthErrorAnswer"), ("503", "OAuthRetryLaterAnswer")]);
            } else {
                common.extend([("500", "ProblemAnswer"), ("503", "RetryLaterAnswer")]);
                if has_body {
                    common.extend([("400", "ProblemAnswer"), ("413", "ProblemAnswer"), ("415", "ProblemAnswer"), ("422", "ProblemAnswer")]);
                }
                if bearer {
                    common.extend([("401", "UnauthorizedAnswer"), ("403", "ProblemAnswer")]);
                }
            }
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for (status, name) in common {
                responses.entry(status).or_insert_with(|| answer(name));
            }
        }
    }
}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "OpenAPI 3.1", body = Object),
    )
)]
pub async fn document() -> impl IntoResponse {
    axum::Json(openapi_json())
}

fn close_response_objects(doc: &mut Value) {
    let mut pending = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
            if let Some(responses) = operation.get_mut("responses") {
                collect_refs(responses, &mut pending);
                for response in responses.as_object_mut().into_iter().flat_map(|r| r.values_mut()) {
                    let media_types = response.get_mut("content").and_then(Value::as_object_mut);
                    for media in media_types.into_iter().flat_map(|c| c.values_mut()) {
                        if let Some(schema) = media.get_mut("schema") {
                            close(schema);
                        }
                    }
                }
            }
        }
    }
    // Follow references from responses to the schemas they use, and from those to theirs.
    let mut schemas = BTreeSet::new();
    while let Some(reference) = pending.pop() {
        let Some(pointer) = reference.strip_prefix('#') else { continue };
        let is_schema = pointer.starts_with("/components/schemas/");
        if is_schema && !schemas.insert(pointer.to_owned()) {
            continue;
        }
        if let Some(target) = doc.pointer(pointer) {
            collect_refs(target, &mut pending);
        }
    }
    for pointer in schemas {
        if let Some(schema) = doc.pointer_mut(&pointer) {
            close(schema);
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Closes `schema` and the object schemas inline in it (references are closed on their own).
fn close(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else { return };
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (keyword, sub) in map.iter_mut() {
        match keyword.as_str() {
            "properties" => sub.as_object_mut().into_iter().flat_map(Map::values_mut).for_each(close),
            "items" => close(sub),
            "oneOf" | "anyOf" | "allOf" | "prefixItems" => sub.as_array_mut().into_iter().flatten().for_each(close),
            _ => {}
        }
    }
}
