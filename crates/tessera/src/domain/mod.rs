//! Domain types: values parsed from the outside world and the rules they obey. Nothing here
//! knows about HTTP, SQL or the async runtime.

pub mod breached;
pub mod client;
pub mod duration;
pub mod email;
pub mod factors;
pub mod ids;
pub mod keys;
pub mod oidc;
pub mod opaque;
pub mod password;
pub mod pkce;
pub mod redirect_uri;
pub mod roles;
pub mod user;
pub mod username;

pub use client::{Audiences, AudiencesError, Client, ClientName, ClientNameError};
pub use email::{Email, EmailError};
pub use ids::{BrowserSessionId, ClientId, SessionId, UserId};
pub use oidc::{Amr, AuthorizationCode, BrowserSession, Consent};
pub use opaque::{PlainToken, TokenHash, TokenKind};
pub use password::{NewPassword, PasswordHash, PasswordInput, WeakPassword};
pub use pkce::{CodeChallenge, PkceError};
pub use redirect_uri::{RedirectUri, RedirectUriError, RedirectUris};
pub use roles::{NameError, Role, Roles, Scope, Scopes};
pub use user::{Session, User};
pub use username::{Username, UsernameError};
