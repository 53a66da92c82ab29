//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations and
//! the `ToSchema` types of the bodies. The test `tests/api/openapi.rs` holds it to
//! [`super::served_routes`], so a route cannot be added without being documented.

use super::error::{LoginProblem, MfaMethodName, OAuthErrorBody, Problem};
use super::{audit, auth, clients, discovery, email, factors, keys, oauth, ops, passkeys, revocations, users};
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, Required, ResponseBuilder};
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
        email::verify_email,
        email::forgot_password,
        email::reset_password,
        email::resend_verification,
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
        factors::enrol_totp,
        factors::confirm_totp,
        factors::remove_totp,
        factors::regenerate_recovery_codes,
        factors::login_mfa,
        factors::admin_reset_mfa,
        passkeys::start_registration,
        passkeys::finish_registration,
        passkeys::list,
        passkeys::remove,
        passkeys::options,
        passkeys::sign_in,
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
        oauth::userinfo,
        oauth::userinfo_post,
        discovery::metadata,
    ),
    components(schemas(Problem, OAuthErrorBody, LoginProblem, MfaMethodName)),
    modifiers(&SecuritySchemes, &ErrorAnswers, &SharedHandlers),
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

/// The error answers, each a body with the header it may carry: an RFC 9457 problem
/// (`application/problem+json`) outside `/oauth2/*`, an RFC 6749 §5.2 error there.
#[derive(Debug)]
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = Some(("WWW-Authenticate", "Bearer challenge, when a bearer token was refused"));
        let basic = Some(("WWW-Authenticate", "Basic challenge, when the client used HTTP Basic"));
        let retry = Some(("Retry-After", "Seconds to wait before trying again"));
        let answers = [
            ("ProblemAnswer", false, None, "An RFC 9457 problem; `code` says which."),
            ("UnauthorizedAnswer", false, bearer, "A refused bearer token (`WWW-Authenticate: Bearer …`, RFC 6750), or wrong credentials."),
            ("RetryLaterAnswer", false, retry, "Rate limited, or the password hasher or the database is overloaded or unavailable."),
            ("OAuthErrorAnswer", true, None, "An RFC 6749 §5.2 error."),
            ("OAuthUnauthorizedAnswer", true, basic, "`invalid_client`, with a Basic challenge after HTTP Basic (RFC 6749 §5.2)."),
            ("OAuthRetryLaterAnswer", true, retry, "Rate limited, or the server is overloaded or its database unavailable."),
        ];
        for (name, oauth, header, description) in answers {
            let (media, body) = if oauth { ("application/json", "OAuthErrorBody") } else { ("application/problem+json", "Problem") };
            let mut answer =
                ResponseBuilder::new().description(description).content(media, Content::new(Some(Ref::from_schema_name(body))));
            if let Some((header, text)) = header {
                let schema = match header {
                    "Retry-After" => ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(0)),
                    _ => ObjectBuilder::new().schema_type(Type::String),
                };
                answer = answer.header(header, HeaderBuilder::new().schema(schema).description(Some(text)).build());
            }
            components.responses.insert(name.to_owned(), answer.build().into());
        }
        let login = ResponseBuilder::new()
            .description("A problem; with `mfa_required`, also `mfa_token` and `methods`.")
            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("LoginProblem"))));
        components.responses.insert("LoginRefusedAnswer".to_owned(), login.build().into());
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
    merge_flattened(&mut doc);
    close_response_objects(&mut doc);
    doc
}

/// The error answers every endpoint of a kind can give, declared here once instead of on
/// every handler: any endpoint may fail (500) or find its database or hasher unavailable
/// (503); one with a body may refuse it (400, 413, 415, and 422 for JSON); one with path
/// parameters may find them malformed (400) or naming nothing (404); one with query parameters
/// may find them malformed (400); one that takes credentials may refuse them (401), and one
/// that takes a bearer token the caller (403); one behind a per-address limit may be limited
/// (429). `/oauth2/*` says all of it in RFC 6749 errors, and 401 there is `invalid_client`
/// (except userinfo, a bearer endpoint, which answers problems); its successes carry
/// `Cache-Control: no-store` and `Pragma: no-cache`. A
/// handler's own annotation lists its success answers and the errors peculiar to it (the error
/// sets of `error.rs`), and wins where both name a status.
fn add_common_errors(doc: &mut Value) {
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let answer = |name: &str| serde_json::json!({ "$ref": format!("#/components/responses/{name}") });
    let limited = super::limited_routes();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let oauth = path.starts_with("/oauth2/");
        for method in METHODS {
            let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) else { continue };
            let has_body = operation.contains_key("requestBody");
            let parameters = operation.get("parameters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let has_parameter_in = |place: &str| parameters.iter().any(|p| p.get("in").and_then(Value::as_str) == Some(place));
            let schemes: Vec<&String> = operation
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|r| r.keys())
                .collect();
            let is_limited = limited.iter().any(|(p, m)| p == path && m.as_str().eq_ignore_ascii_case(method));
            // Userinfo sits under /oauth2/ but is a resource a bearer token opens: it answers
            // problems like the API's bearer endpoints, not RFC 6749 errors.
            let rfc6749 = oauth && !schemes.iter().any(|s| *s == "bearer");
            let mut common: Vec<(&str, &str)> = Vec::new();
            if rfc6749 {
                common.extend([("400", "OAuthErrorAnswer"), ("401", "OAuthUnauthorizedAnswer"), ("413", "OAuthErrorAnswer")]);
                common.extend([("415", "OAuthErrorAnswer"), ("500", "OAuthErrorAnswer"), ("503", "OAuthRetryLaterAnswer")]);
                if is_limited {
                    common.push(("429", "OAuthRetryLaterAnswer"));
                }
            } else {
                common.extend([("500", "ProblemAnswer"), ("503", "RetryLaterAnswer")]);
                if has_body {
                    common.extend([("400", "ProblemAnswer"), ("413", "ProblemAnswer"), ("415", "ProblemAnswer"), ("422", "ProblemAnswer")]);
                }
                if has_parameter_in("path") {
                    common.extend([("400", "ProblemAnswer"), ("404", "ProblemAnswer")]);
                }
                if has_parameter_in("query") {
                    common.push(("400", "ProblemAnswer"));
                }
                if !schemes.is_empty() {
                    common.push(("401", "UnauthorizedAnswer"));
                }
                if schemes.iter().any(|s| *s == "bearer") {
                    common.push(("403", "ProblemAnswer"));
                }
                if is_limited {
                    common.push(("429", "RetryLaterAnswer"));
                }
            }
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for (status, name) in common {
                responses.entry(status).or_insert_with(|| answer(name));
            }
            if oauth {
                // Token material is never cached (RFC 6749 §5.1): every answer says so.
                let successes = responses.iter_mut().filter(|(status, _)| status.starts_with('2')).filter_map(|(_, r)| r.as_object_mut());
                for success in successes {
                    let headers = success.entry("headers").or_insert_with(|| Value::Object(Map::new()));
                    for (name, value) in [("Cache-Control", "`no-store`"), ("Pragma", "`no-cache`")] {
                        let header = serde_json::json!({ "description": value, "schema": { "type": "string" } });
                        if let Some(headers) = headers.as_object_mut() {
                            headers.insert(name.to_owned(), header);
                        }
                    }
                }
            }
        }
    }
}

/// This document
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn document() -> impl IntoResponse {
    axum::Json(openapi_json())
}

/// A struct with a `#[serde(flatten)]` field is an `allOf` of object schemas. Closing each part
/// would refuse the other parts' fields, so each such `allOf` becomes the one object it means:
/// the parts' properties and required fields together.
fn merge_flattened(doc: &mut Value) {
    let schemas = doc.pointer("/components/schemas").cloned().unwrap_or_default();
    let mut stack = vec![&mut *doc];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some((properties, required)) = map.get("allOf").and_then(|all| object_parts(all, &schemas)) {
                    map.remove("allOf");
                    map.insert("type".into(), "object".into());
                    map.insert("properties".into(), Value::Object(properties));
                    map.insert("required".into(), required.into());
                }
                stack.extend(map.values_mut());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

/// The properties and required fields of an `allOf` whose parts are all objects (or
/// references to objects, or such `allOf`s themselves); `None` if any part is something else.
fn object_parts(all_of: &Value, schemas: &Value) -> Option<(Map<String, Value>, Vec<Value>)> {
    let (mut properties, mut required) = (Map::new(), Vec::new());
    for part in all_of.as_array()? {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(reference) => schemas.get(reference.strip_prefix("#/components/schemas/")?)?,
            None => part,
        };
        let (more, needed) = match part.get("allOf") {
            Some(inner) => object_parts(inner, schemas)?,
            None => {
                let needed = part.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
                (part.get("properties")?.as_object()?.clone(), needed)
            }
        };
        properties.extend(more);
        for name in needed {
            if !required.contains(&name) {
                required.push(name);
            }
        }
    }
    Some((properties, required))
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
