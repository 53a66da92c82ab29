//! HTTP integration tests: every test starts its own Tessera on a fresh database and talks
//! to it over real HTTP on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The two binaries share helpers; each uses its own part of them.
#![allow(dead_code)]
mod helpers;
mod postgres;

/// This binary runs every test body on SQLite; `api_postgres` runs the same bodies on PostgreSQL.
const ENGINE: helpers::Engine = helpers::Engine::Sqlite;

mod abuse;
mod account_factors;
mod apache;
mod apache_rp;
mod auth;
mod cli;
mod clients;
mod connections;
mod console;
mod email;
mod errors;
mod factor_notices;
mod factors;
mod gateways;
mod instances;
mod keys;
mod lockout;
mod oauth;
mod oauth_library;
mod oidc;
mod openapi;
mod ops;
mod pages;
mod passkeys;
mod relying_party;
mod revocations;
mod sealing;
mod security;
mod sessions;
mod smtp_sink;
mod store;
mod users;
