//! # Tessera
//!
//! An authentication service: people register and log in and receive short-lived JWT access
//! tokens with rotating refresh tokens; other services verify those tokens with the published
//! keys or by asking Tessera; tokens can be revoked everywhere.
//!
//! ## A tour of the layers
//!
//! Dependencies point one way: `http → service → store / domain`.
//!
//! - [`domain`]: values parsed from the outside (emails, usernames, passwords, scopes,
//!   durations), ids, opaque secrets and the signing-key crypto. No I/O.
//! - [`service`]: the use cases, as methods of [`service::Tessera`]: accounts, sessions,
//!   tokens, keys, revocation. They see the store through the [`store::Store`] trait and
//!   time through a [`clock::Clock`].
//! - [`store`]: the `Store` trait and one implementation per database engine.
//! - [`http`]: axum routes, extractors, and the one error type that becomes problem+json.
//! - [`startup`] builds an [`startup::Application`] (store, service, listener) and
//!   [`jobs`] runs its background work; [`config`] and [`cli`] read what the operator asked for.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
