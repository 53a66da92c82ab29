//! The HTTP integration tests of `tests/api`, the same bodies, on PostgreSQL: a private
//! server started with Debian's `initdb`/`pg_ctl`, or `TESSERA_TEST_POSTGRES_URL`. Plus what
//! only a shared server shows: outages and recovery.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The two binaries share helpers; each uses its own part of them.
#![allow(dead_code)]

#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/postgres.rs"]
mod postgres;

const ENGINE: helpers::Engine = helpers::Engine::Postgres;

#[path = "../api/abuse.rs"]
mod abuse;
#[path = "../api/account_factors.rs"]
mod account_factors;
#[path = "../api/auth.rs"]
mod auth;
#[path = "../api/clients.rs"]
mod clients;
#[path = "../api/console.rs"]
mod console;
#[path = "../api/email.rs"]
mod email;
#[path = "../api/errors.rs"]
mod errors;
#[path = "../api/factor_notices.rs"]
mod factor_notices;
#[path = "../api/factors.rs"]
mod factors;
#[path = "../api/instances.rs"]
mod instances;
#[path = "../api/keys.rs"]
mod keys;
#[path = "../api/lockout.rs"]
mod lockout;
#[path = "../api/oauth.rs"]
mod oauth;
#[path = "../api/oidc/mod.rs"]
mod oidc;
#[path = "../api/ops.rs"]
mod ops;
#[path = "../api/pages.rs"]
mod pages;
#[path = "../api/passkeys.rs"]
mod passkeys;
#[path = "../api/revocations.rs"]
mod revocations;
#[path = "../api/sealing.rs"]
mod sealing;
#[path = "../api/security.rs"]
mod security;
#[path = "../api/sessions.rs"]
mod sessions;
#[path = "../api/smtp_sink.rs"]
mod smtp_sink;
#[path = "../api/store/mod.rs"]
mod store;
#[path = "../api/users.rs"]
mod users;

mod outage;
