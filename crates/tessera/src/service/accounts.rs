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

/// Where a password sign-in comes from, which names its audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginChannel {
    /// `POST /v1/auth/login`.
    Api,
    /// The sign-in page.
    Page,
}

impl LoginChannel {
    /// The audit kinds of a success, a lockout and a failure.
    fn events(self) -> [&'static str; 3] {
        match self {
            LoginChannel::Api => ["login.succeeded", "login.locked", "login.failed"],
            LoginChannel::Page => ["login.page.succeeded", "login.page.locked", "login.page.failed"],
        }
    }
}

/// The user id a person's token names (people's `sub` is a UUID; clients' is not).
pub(crate) fn public_id(claims: &Claims) -> Option<UserId> {
    claims.sid.as_ref()?;
    claims.sub.parse().ok()
}

impl Tessera {
    /// Creates an account without starting a session (the command line uses this).
    pub async fn create_user(&self, reg: Registration) -> Result<User> {
        self.add_user(reg, &ClientMeta::default(), false).await
    }

    async fn add_user(&self, reg: Registration, meta: &ClientMeta, send_verification: bool) -> Result<User> {
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
            email_verified: false,
            username,
            password_hash,
            roles,
            disabled: false,
            tokens_not_before: 0,
            created_at: now,
            updated_at: now,
            two_factor: false,
        };
        self.insert_new_user(&user, send_verification, meta).await?;
        tracing::info!(user = %user.id, "account registered");
        let id = user.id.to_string();
        self.audit(meta, "user.registered", Some(&id), Some(&id), reg.admin.then(|| "admin".to_owned())).await;
        Ok(user)
    }

    /// Registers a person and logs them in (with a fresh token), while registration is open.
    pub async fn register(&self, reg: Registration, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        let user = self.register_account(reg, meta).await?;
        self.start_session(user, meta).await
    }

    /// Creates the account of a person registering themselves: refused while registration
    /// is closed.
    pub(crate) async fn register_account(&self, reg: Registration, meta: &ClientMeta) -> Result<User> {
        if !self.settings.registration_open {
            return Err(Error::RegistrationClosed);
        }
        self.add_user(reg, meta, true).await
    }

    /// Checks a password and starts a session. Unknown accounts cost the same as wrong passwords.
    pub async fn login(&self, id: LoginId, password: String, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        self.login_with(id, password, meta, LoginChannel::Api, |user| async move {
            self.require_second_factor_if_any(&user, super::factors::MfaChannel::Api).await?;
            self.start_session(user, meta).await
        })
        .await
    }

    /// The one password sign-in, for the API and the pages alike: the failed-login count per
    /// login name and address, the same cost whether the account exists or not, the metrics
    /// and the audit trail; on success `start` begins whatever the channel signs in to.
    pub(crate) async fn login_with<T, F, Fut>(
        &self,
        id: LoginId,
        password: String,
        meta: &ClientMeta,
        channel: LoginChannel,
        start: F,
    ) -> Result<T>
    where
        F: FnOnce(User) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut account = None;
        let result = match self.check_password(&id, password, meta, &mut account).await {
            Ok(user) => start(user).await,
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(_) => "success",
            Err(Error::InvalidCredentials) => "invalid_credentials",
            Err(Error::AccountDisabled) => "account_disabled",
            Err(Error::RateLimited { .. }) => "locked",
            Err(Error::MfaRequired { .. }) => "mfa_required",
            Err(_) => "error",
        };
        crate::metrics::Metrics::count(&self.metrics.logins, "outcome", outcome);
        let account = account.map(|id: UserId| id.to_string());
        let by = match id {
            LoginId::Email(_) => "by email",
            LoginId::Username(_) => "by username",
        };
        let [succeeded, locked, failed] = channel.events();
        match &result {
            Ok(_) => self.audit(meta, succeeded, account.as_deref(), account.as_deref(), Some(by.to_owned())).await,
            Err(Error::RateLimited { .. }) => self.audit(meta, locked, None, account.as_deref(), Some(by.to_owned())).await,
            Err(Error::MfaRequired { .. }) => self.audit(meta, "mfa.required", None, account.as_deref(), Some(by.to_owned())).await,
            Err(_) => self.audit(meta, failed, None, account.as_deref(), Some(format!("{outcome} {by}"))).await,
        }
        result
    }

    /// The account `id` names, when `password` is its password and it may sign in.
    async fn check_password(&self, id: &LoginId, password: String, meta: &ClientMeta, account: &mut Option<UserId>) -> Result<User> {
        let user = match id {
            LoginId::Email(e) => match Email::parse(e) {
                Ok(email) => self.store.user_by_email(&email).await?,
                Err(_) => None,
            },
            LoginId::Username(u) => match Username::parse(u) {
                Ok(name) => self.store.user_by_username(&name).await?,
                Err(_) => None,
            },
        };
        *account = user.as_ref().map(|u| u.id);
        let counters = self.login_counters(id, meta.ip);
        self.admit_password_check(&counters).await?;
        let password = PasswordInput::new(password);
        let matches = match &password {
            Some(password) => self.hasher.verify(password, user.as_ref().map(|u| &u.password_hash)).await?,
            // Too long to be anyone's password: refused without hashing megabytes.
            None => false,
        };
        let (Some(user), Some(password), true) = (user, password, matches) else {
            self.password_check_failed(&counters).await?;
            return Err(Error::InvalidCredentials);
        };
        // With a second factor, only the finished sign-in clears the count (see factors.rs).
        if !self.second_factors(user.id).await?.any() {
            self.password_check_passed(&counters).await?;
        }
        // Only someone who knows the password learns that the account is disabled.
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        self.require_verified(&user)?;
        self.rehash_if_cost_changed(&user, &password).await;
        Ok(user)
    }

    /// After a successful check, re-hashes a password stored under another argon2 cost than
    /// the configured one, so raising the cost reaches every account that signs in. Failing
    /// to do so only means trying again next time.
    async fn rehash_if_cost_changed(&self, user: &User, password: &PasswordInput) {
        if !self.hasher.needs_rehash(&user.password_hash) {
            return;
        }
        let updated = match self.hasher.hash_input(password).await {
            Ok(hash) => self.store.replace_password_hash(user.id, &user.password_hash, &hash, self.now()).await,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "cannot re-hash a password under the new cost");
                return;
            }
        };
        match updated {
            Ok(true) => tracing::info!(user = %user.id, "password re-hashed under the configured argon2 cost"),
            Ok(false) => {}
            Err(e) => tracing::warn!(user = %user.id, error = %e, "cannot store a re-hashed password"),
        }
    }

    /// The caller's own account.
    pub async fn me(&self, claims: &Claims) -> Result<User> {
        let id = self.person(claims)?;
        self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Changes the caller's username or email (email needs a fresh token). Each changes only
    /// its own column; a new email ends the person's other sessions, since whoever changes
    /// the address of an account could be taking it over.
    pub async fn update_me(&self, claims: &Claims, patch: ProfilePatch, meta: &ClientMeta) -> Result<User> {
        let id = self.person(claims)?;
        let email = patch.email.map(|e| Email::parse(&e)).transpose().map_err(|e| Error::Validation(format!("email: {e}")))?;
        if email.is_some() && !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let username = patch.username.map(|u| Username::parse(&u)).transpose().map_err(|e| Error::Validation(format!("username: {e}")))?;
        let before = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        if email.is_none() && username.is_none() {
            return Ok(before);
        }
        let user = self.apply_profile_change(&before, email.as_ref(), username.as_ref(), meta).await?.ok_or(Error::NotFound("user"))?;
        let subject = id.to_string();
        if user.email.normalized() != before.email.normalized() {
            self.end_sessions(other_sessions(claims, id)).await?;
            let change = format!("{} -> {}", before.email.as_str(), user.email.as_str());
            self.audit(meta, "user.email_changed", Some(&claims.sub), Some(&subject), Some(change)).await;
        }
        if user.username != before.username {
            let name = |u: &Option<Username>| u.as_ref().map_or("none", Username::as_str).to_owned();
            let change = format!("{} -> {}", name(&before.username), name(&user.username));
            self.audit(meta, "user.username_changed", Some(&claims.sub), Some(&subject), Some(change)).await;
        }
        Ok(user)
    }

    /// Changes the caller's password (fresh token required) and ends their other sessions.
    ///
    /// A wrong current password counts as a failed sign-in of the account's email from the
    /// caller's address, under the same limit, so a stolen fresh token cannot be turned into
    /// the password by guessing.
    pub async fn change_password(&self, claims: &Claims, current: String, new: String, meta: &ClientMeta) -> Result<()> {
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let user = self.me(claims).await?;
        let counters = self.login_counters(&LoginId::Email(user.email.as_str().to_owned()), meta.ip);
        self.admit_password_check(&counters).await?;
        let current = PasswordInput::new(current);
        let matches = match &current {
            Some(current) => self.hasher.verify(current, Some(&user.password_hash)).await?,
            None => false,
        };
        if !matches {
            self.password_check_failed(&counters).await?;
            self.audit(meta, "password.change_failed", Some(&claims.sub), Some(&claims.sub), Some("wrong current password".into())).await;
            return Err(Error::WrongCurrentPassword);
        }
        self.password_check_passed(&counters).await?;
        let local = user.email.as_str().split('@').next().unwrap_or_default().to_owned();
        let context = [user.email.as_str(), local.as_str(), user.username.as_ref().map_or("", Username::as_str)];
        let new = NewPassword::parse(new, &context).map_err(|e| Error::WeakPassword(e.0))?;
        let hash = self.hasher.hash(&new).await?;
        // Compare and set: a change that lost a race to another one must not silently win.
        if !self.replace_password_noticed(&user, &hash).await? {
            return Err(Error::Conflict("the password was changed at the same time; sign in again"));
        }
        self.end_sessions(other_sessions(claims, user.id)).await?;
        self.audit(meta, "password.changed", Some(&claims.sub), Some(&claims.sub), None).await;
        Ok(())
    }

    /// Deletes the caller's account (fresh token required) and every token it holds.
    pub async fn delete_me(&self, claims: &Claims, meta: &ClientMeta) -> Result<()> {
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let id = self.person(claims)?;
        self.delete_account(id).await?;
        self.audit(meta, "user.deleted", Some(&claims.sub), Some(&id.to_string()), None).await;
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

    /// Disables, enables or re-roles an account (admin). Disabling, and any change of roles,
    /// revokes every token the person holds: a token carries its roles, so a demoted admin's
    /// token must stop working everywhere, not only on their next sign-in.
    pub async fn admin_update_user(&self, caller: &Claims, id: &str, patch: AdminUserPatch, meta: &ClientMeta) -> Result<User> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        let roles = patch.roles.map(|r| Roles::parse(&r)).transpose().map_err(|e| Error::Validation(format!("roles: {e}")))?;
        let before = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        let mut user =
            self.store.update_admin_fields(id, patch.disabled, roles.as_ref(), self.now()).await?.ok_or(Error::NotFound("user"))?;
        let roles_changed = roles.is_some() && before.roles != user.roles;
        if user.disabled && patch.disabled == Some(true) || roles_changed {
            self.revoke_everything_of(user.id).await?;
            user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        }
        let subject = user.id.to_string();
        match patch.disabled {
            Some(true) => self.audit(meta, "user.disabled", Some(&caller.sub), Some(&subject), None).await,
            Some(false) => self.audit(meta, "user.enabled", Some(&caller.sub), Some(&subject), None).await,
            None => {}
        }
        if roles_changed {
            let change = format!("{} -> {}", before.roles.to_vec().join(" "), user.roles.to_vec().join(" "));
            self.audit(meta, "user.roles_changed", Some(&caller.sub), Some(&subject), Some(change)).await;
        }
        Ok(user)
    }

    /// Deletes an account (admin).
    pub async fn admin_delete_user(&self, caller: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        self.delete_account(id).await?;
        self.audit(meta, "user.deleted", Some(&caller.sub), Some(&id.to_string()), Some("by an admin".into())).await;
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

/// The caller's other sessions (all of them when the token names none).
fn other_sessions(claims: &Claims, user: UserId) -> SessionScope {
    match claims.sid.as_deref().and_then(|s| s.parse().ok()) {
        Some(current) => SessionScope::AllBut(user, current),
        None => SessionScope::AllOf(user),
    }
}

/// Refuses callers without the admin role.
pub(crate) fn require_admin(claims: &Claims) -> Result<()> {
    if claims.has_role(Role::ADMIN) { Ok(()) } else { Err(Error::Forbidden("this operation needs the admin role")) }
}

fn decode_cursor(cursor: &str) -> Result<UserId> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| Error::InvalidCursor)?;
    let uuid = uuid::Uuid::from_slice(&bytes).map_err(|_| Error::InvalidCursor)?;
    Ok(UserId::from_uuid(uuid))
}
