//! The command line: one binary, every subcommand reading the same configuration as `serve`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Tessera: an authentication service.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Configuration file (default: tessera.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database if needed and serve until SIGTERM/SIGINT, then drain.
    Serve,
    /// Apply migrations and exit.
    Migrate,
    /// Manage people's accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage service clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Print the audit trail, newest first, as JSON.
    Audit {
        /// How many events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Exit 0 when the local server answers `/readyz` (for container health probes).
    Healthcheck {
        /// Base URL of the server (default: from TESSERA_LISTEN).
        #[arg(long)]
        url: Option<String>,
    },
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `tessera users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account; the password is read from one line of standard input.
    Create(CreateUser),
    /// Remove every second factor of an account (TOTP, recovery codes, passkeys), for a
    /// person who lost their devices; prints the account.
    ResetMfa {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
}

/// `tessera users create`
#[derive(Debug, Args)]
pub struct CreateUser {
    /// Email address.
    #[arg(long)]
    pub email: String,
    /// Optional username.
    #[arg(long)]
    pub username: Option<String>,
    /// Give the account the admin role.
    #[arg(long)]
    pub admin: bool,
}

/// `tessera clients …`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints its id and secret (shown only here) as JSON.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// A scope the client may be granted (repeat for several).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Give the client the admin role.
        #[arg(long)]
        admin: bool,
        /// A resource its tokens may name in `aud` (repeat for several; the first is the
        /// default; none: the configured audience).
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Where the authorization endpoint may send people back (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may send people afterwards (repeat for several).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// A single-page or native app: no secret, authenticates by client_id alone.
        #[arg(long)]
        public: bool,
        /// People are not asked for consent.
        #[arg(long)]
        first_party: bool,
    },
}

/// `tessera keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the signing key; `--alg` changes the algorithm from then on.
    Rotate {
        /// ES256, RS256, Ed25519, EdDSA or HS256.
        #[arg(long)]
        alg: Option<String>,
    },
    /// List the keys as the API does.
    List,
}
