//! People's accounts: registration, login, profile, password change, deletion, and the
//! administration of other accounts.

use super::Tessera;
use super::error::{Error, Result};
use super::sessions::{ClientMeta, IssuedTokens, LoginId};
use crate::domain::{Email, NewPassword, PasswordInput, Role, Roles, User, UserId, Username};
use crate::store::SessionScope;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_verify::Claims;

/// What a person sends to register.
#[derive(Debug)]
pub struct Registration {
    /// Email as typed.
    pub email: String,
    /// Password as typed.
    pub password: String,
    /// Optional username.
    pub username: Option<String>,
    /// Whether the account gets the admin role (only from the command line).
    pub admin: bool,
}

/// Changes a person may make to their own profile.
#[derive(Debug, Default)]
pub struct ProfilePatch {
    /// New username.
    pub username: Option<String>,
    /// New email (needs a fresh token).
    pub email: Option<String>,
}

/// Changes an admin may make to an account.
#[derive(Debug, Default)]
pub struct AdminUserPatch {
    /// Disable (revoking every token) or enable.
    pub disabled: Option<bool>,
    /// Replace the roles.
    pub roles: Option<Vec<String>>,
}

/// A page of accounts.
#[derive(Debug)]
pub struct UserPage {
    /// The accounts, in id order.
    pub users: Vec<User>,
    /// Cursor for the next page, when there may be one.
    pub next_cursor: Option<String>,
}

/// The user id a person's token names (people's `sub` is a UUID; clients' is not).
pub(crate) fn public_id(claims: &Claims) -> Option<UserId> {
    claims.sid.as_ref()?;
    claims.sub.parse().ok()
}

impl Tessera {
    /// Creates an account without starting a session (the command line uses this).
    pub async fn create_user(&self, reg: Registration) -> Result<User> {
        let email = Email::parse(&reg.email).map_err(|e| Error::Validation(format!("email: {e}")))?;
        let username = reg.username.as_deref().map(Username::parse).transpose().map_err(|e| Error::Validation(format!("username: {e}")))?;
        let local = email.as_str().split('@').next().unwrap_or_default();
        let context = [email.as_str(), local, username.as_ref().map_or("", Username::as_str)];
        let password = NewPassword::parse(reg.password, &context).map_err(|e| Error::WeakPassword(e.0))?;
        let password_hash = self.hasher.hash(&password).await?;
        let now = self.now();
        let mut roles = Roles::default();
        if reg.admin {
            roles.insert(Role::admin());
        }
        let user = User {
            id: UserId::new_time_ordered(),
            email,
            username,
            password_hash,
            roles,
            disabled: false,
            tokens_not_before: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_user(&user).await?;
        tracing::info!(user = %user.id, "account registered");
        let id = user.id.to_string();
        self.audit("user.registered", Some(&id), Some(&id), reg.admin.then(|| "admin".to_owned())).await;
        Ok(user)
    }

    /// Registers a person and logs them in (with a fresh token).
    pub async fn register(&self, reg: Registration, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        let user = self.create_user(reg).await?;
        let tokens = self.start_session(&user, meta).await?;
        Ok((user, tokens))
    }

    /// Checks a password and starts a session. Unknown accounts cost the same as wrong passwords.
    pub async fn login(&self, id: LoginId, password: String, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        let result = self.check_password_and_start(id, password, meta).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(Error::InvalidCredentials) => "invalid_credentials",
            Err(Error::AccountDisabled) => "account_disabled",
            Err(Error::RateLimited { .. }) => "locked",
            Err(_) => "error",
        };
        crate::metrics::Metrics::count(&self.metrics.logins, "outcome", outcome);
        match &result {
            Ok((user, _)) => self.audit("login.succeeded", Some(&user.id.to_string()), Some(&user.id.to_string()), None).await,
            Err(Error::RateLimited { .. }) => self.audit("login.locked", None, None, None).await,
            Err(_) => self.audit("login.failed", None, None, Some(outcome.to_owned())).await,
        }
        result
    }

    async fn check_password_and_start(&self, id: LoginId, password: String, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        let password = PasswordInput::new(password).ok_or(Error::InvalidCredentials)?;
        let user = match &id {
            LoginId::Email(e) => match Email::parse(e) {
                Ok(email) => self.store.user_by_email(&email).await?,
                Err(_) => None,
            },
            LoginId::Username(u) => match Username::parse(u) {
                Ok(name) => self.store.user_by_username(&name).await?,
                Err(_) => None,
            },
        };
        // Failures count per account, or per login name when there is no such account, so
        // that a lockout looks the same either way.
        let counter = match (&user, &id) {
            (Some(u), _) => format!("user:{}", u.id),
            // A digest, so whatever an attacker typed is never stored as such.
            (None, LoginId::Email(e)) => format!("email:{}", digest(&e.trim().to_lowercase())),
            (None, LoginId::Username(n)) => format!("username:{}", digest(&n.trim().to_lowercase())),
        };
        let failed_before = self.check_lockout(&counter).await?;
        let matches = self.hasher.verify(&password, user.as_ref().map(|u| &u.password_hash)).await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.record_failure(&counter).await?;
                return Err(Error::InvalidCredentials);
            }
        };
        if failed_before {
            self.clear_failures(&counter).await?;
        }
        // Only someone who knows the password learns that the account is disabled.
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        let tokens = self.start_session(&user, meta).await?;
        Ok((user, tokens))
    }

    /// The caller's own account.
    pub async fn me(&self, claims: &Claims) -> Result<User> {
        let id = self.person(claims)?;
        self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Changes the caller's username or email (email needs a fresh token).
    pub async fn update_me(&self, claims: &Claims, patch: ProfilePatch) -> Result<User> {
        let mut user = self.me(claims).await?;
        if let Some(email) = patch.email {
            if !claims.is_fresh() {
                return Err(Error::FreshTokenRequired);
            }
            user.email = Email::parse(&email).map_err(|e| Error::Validation(format!("email: {e}")))?;
        }
        if let Some(name) = patch.username {
            user.username = Some(Username::parse(&name).map_err(|e| Error::Validation(format!("username: {e}")))?);
        }
        user.updated_at = self.now();
        if !self.store.update_user(&user).await? {
            return Err(Error::NotFound("user"));
        }
        Ok(user)
    }

    /// Changes the caller's password (fresh token required) and ends their other sessions.
    pub async fn change_password(&self, claims: &Claims, current: String, new: String) -> Result<()> {
        if !claims.is_fresh() {
            return Err(Error::FreshTokenRequired);
        }
        let mut user = self.me(claims).await?;
        let current = PasswordInput::new(current).ok_or(Error::WrongCurrentPassword)?;
        if !self.hasher.verify(&current, Some(&user.password_hash)).await? {
            return Err(Error::WrongCurrentPassword);
        }
        let local = user.email.as_str().split('@').next().unwrap_or_default().to_owned();
        let context = [user.email.as_str(), local.as_str(), user.username.as_ref().map_or("", Username::as_str)];
        let new = NewPassword::parse(new, &context).map_err(|e| Error::WeakPassword(e.0))?;
        user.password_hash = self.hasher.hash(&new).await?;
        user.updated_at = self.now();
        self.store.update_user(&user).await?;
        match claims.sid.as_deref().and_then(|s| s.parse().ok()) {
            Some(current) => self.end_sessions(SessionScope::AllBut(user.id, current)).await?,
            None => self.end_sessions(SessionScope::AllOf(user.id)).await?,
        };
        self.audit("password.changed", Some(&claims.sub), Some(&claims.sub), None).await;
        Ok(())
    }

    /// Deletes the caller's account (fresh token required) and every token it holds.
    pub async fn delete_me(&self, claims: &Claims) -> Result<()> {
        if !claims.is_fresh() {
            return Err(Error::FreshTokenRequired);
        }
        let id = self.person(claims)?;
        self.delete_account(id).await?;
        self.audit("user.deleted", Some(&claims.sub), Some(&id.to_string()), None).await;
        Ok(())
    }

    /// An account as the caller may see it: `(user, full_view)`.
    pub async fn user_view(&self, caller: Option<&Claims>, id: &str) -> Result<(User, bool)> {
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        let user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        let full = caller.is_some_and(|c| c.has_role(Role::ADMIN) || public_id(c) == Some(id));
        Ok((user, full))
    }

    /// Accounts in id order (admin).
    pub async fn list_users(&self, caller: &Claims, limit: Option<u32>, cursor: Option<&str>) -> Result<UserPage> {
        require_admin(caller)?;
        let limit = limit.unwrap_or(50).clamp(1, 200);
        let after = cursor.map(decode_cursor).transpose()?;
        let users = self.store.list_users(after, limit).await?;
        let next_cursor =
            (users.len() == limit as usize).then(|| users.last().map(|u| URL_SAFE_NO_PAD.encode(u.id.as_uuid().as_bytes()))).flatten();
        Ok(UserPage { users, next_cursor })
    }

    /// Disables, enables or re-roles an account (admin). Disabling revokes every token.
    pub async fn admin_update_user(&self, caller: &Claims, id: &str, patch: AdminUserPatch) -> Result<User> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        let mut user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        let roles_changed = patch.roles.is_some();
        if let Some(roles) = patch.roles {
            user.roles = Roles::parse(&roles).map_err(|e| Error::Validation(format!("roles: {e}")))?;
        }
        let disabling = patch.disabled == Some(true) && !user.disabled;
        if let Some(disabled) = patch.disabled {
            user.disabled = disabled;
        }
        user.updated_at = self.now();
        if !self.store.update_user(&user).await? {
            return Err(Error::NotFound("user"));
        }
        if disabling {
            self.revoke_everything_of(user.id).await?;
            user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        }
        let subject = user.id.to_string();
        match patch.disabled {
            Some(true) => self.audit("user.disabled", Some(&caller.sub), Some(&subject), None).await,
            Some(false) => self.audit("user.enabled", Some(&caller.sub), Some(&subject), None).await,
            None => {}
        }
        if roles_changed {
            self.audit("user.roles_changed", Some(&caller.sub), Some(&subject), Some(user.roles.to_vec().join(" "))).await;
        }
        Ok(user)
    }

    /// Deletes an account (admin).
    pub async fn admin_delete_user(&self, caller: &Claims, id: &str) -> Result<()> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        self.delete_account(id).await?;
        self.audit("user.deleted", Some(&caller.sub), Some(&id.to_string()), Some("by an admin".into())).await;
        Ok(())
    }

    async fn delete_account(&self, id: UserId) -> Result<()> {
        let cutoff = self.subject_revocation(id, self.next_whole_second());
        if !self.store.delete_user(id, &[cutoff], self.now()).await? {
            return Err(Error::NotFound("user"));
        }
        tracing::info!(user = %id, "account deleted");
        self.sync_revocations().await
    }
}

/// Refuses callers without the admin role.
pub(crate) fn require_admin(claims: &Claims) -> Result<()> {
    if claims.has_role(Role::ADMIN) { Ok(()) } else { Err(Error::Forbidden("this operation needs the admin role")) }
}

fn digest(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

fn decode_cursor(cursor: &str) -> Result<UserId> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| Error::InvalidCursor)?;
    let uuid = uuid::Uuid::from_slice(&bytes).map_err(|_| Error::InvalidCursor)?;
    Ok(UserId::from_uuid(uuid))
}
