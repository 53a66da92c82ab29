//! Every statement and method body that the engines share, written once.
//!
//! [`store_impl!`] expands, inside an engine's module, to that engine's `impl Store` with
//! every shared method, plus the engine-specific methods it is given. Statements are written
//! with PostgreSQL's `$N` placeholders; the engine's `sql!` macro turns them into its own form
//! (SQLite: `?N`, which keeps the numbering, so a parameter may be used twice). Each engine
//! module provides what differs: `sql!`, `classify` (driver errors → [`StoreError`]),
//! `Self::write` (the connection writes go through), `Self::begin` (a write transaction), and
//! `lock_feed` (what orders revocation-feed writers).
//!
//! [`StoreError`]: super::StoreError

macro_rules! store_impl {
    ($engine:ty, $db:ty, { $($specific:tt)* }) => {
        #[async_trait::async_trait]
        impl Store for $engine {
            $($specific)*

            fn pool_stats(&self) -> (u32, u32) {
                (self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX))
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(classify)
            }

            async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                insert_user_in(&mut w, user).await
            }

            async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(sql!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> =
                    sqlx::query_as(sql!("SELECT ", user_columns!(), " FROM users WHERE email_normalized = $1"))
                        .bind(email.normalized())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(sql!("SELECT ", user_columns!(), " FROM users WHERE username = $1"))
                    .bind(username.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn update_profile(
                &self,
                id: UserId,
                email: Option<&Email>,
                username: Option<&Username>,
                now: OffsetDateTime,
            ) -> Result<Option<User>, StoreError> {
                let mut w = self.write().await?;
                let row: Option<UserRow> = sqlx::query_as(sql!(
                    "UPDATE users SET email = COALESCE($1, email), email_normalized = COALESCE($2, email_normalized), ",
                    "username = COALESCE($3, username), updated_at = $4 WHERE id = $5 RETURNING ",
                    user_columns!()
                ))
                .bind(email.map(Email::as_str))
                .bind(email.map(Email::normalized))
                .bind(username.map(Username::as_str))
                .bind(ms(now))
                .bind(id.to_string())
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn replace_password_hash(
                &self,
                id: UserId,
                expected: &PasswordHash,
                new: &PasswordHash,
                now: OffsetDateTime,
            ) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4"))
                    .bind(new.as_str())
                    .bind(ms(now))
                    .bind(id.to_string())
                    .bind(expected.as_str())
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_admin_fields(
                &self,
                id: UserId,
                disabled: Option<bool>,
                roles: Option<&Roles>,
                now: OffsetDateTime,
            ) -> Result<Option<User>, StoreError> {
                let mut w = self.write().await?;
                let row: Option<UserRow> = sqlx::query_as(sql!(
                    "UPDATE users SET disabled = COALESCE($1, disabled), roles = COALESCE($2, roles), updated_at = $3 ",
                    "WHERE id = $4 RETURNING ",
                    user_columns!()
                ))
                .bind(disabled)
                .bind(roles.map(roles_json))
                .bind(ms(now))
                .bind(id.to_string())
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn raise_tokens_not_before(&self, id: UserId, not_before: i64, now: OffsetDateTime) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "UPDATE users SET tokens_not_before = CASE WHEN tokens_not_before > $1 THEN tokens_not_before ELSE $1 END, ",
                    "updated_at = $2 WHERE id = $3"
                ))
                .bind(not_before)
                .bind(ms(now))
                .bind(id.to_string())
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn delete_user(&self, id: UserId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done = sqlx::query(sql!("DELETE FROM users WHERE id = $1")).bind(id.to_string()).execute(&mut *tx).await.map_err(classify)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_in(&mut tx, revocations, now).await?;
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
                let rows: Vec<UserRow> = sqlx::query_as(sql!("SELECT ", user_columns!(), " FROM users WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(after.map(|id| id.to_string()).unwrap_or_default())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.into_iter().map(User::try_from).collect()
            }

            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "INSERT INTO clients (client_id, name, secret_hash, scopes, roles, audiences, redirect_uris, ",
                    "post_logout_redirect_uris, public, first_party, created_at, updated_at) ",
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(client.id.as_str())
                .bind(client.name.as_str())
                .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
                .bind(scopes_json(&client.scopes))
                .bind(roles_json(&client.roles))
                .bind(audiences_json(&client.audiences))
                .bind(uris_json(&client.redirect_uris))
                .bind(uris_json(&client.post_logout_redirect_uris))
                .bind(client.public)
                .bind(client.first_party)
                .bind(ms(client.created_at))
                .bind(ms(client.updated_at))
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
                let row: Option<ClientRow> = sqlx::query_as(sql!("SELECT ", client_columns!(), " FROM clients WHERE client_id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(Client::try_from).transpose()
            }

            async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
                let rows: Vec<ClientRow> = sqlx::query_as(sql!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, client_id"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.into_iter().map(Client::try_from).collect()
            }

            async fn set_client_secret(&self, id: &ClientId, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!("UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3 AND public = FALSE"))
                    .bind(hash.as_bytes().as_slice())
                    .bind(ms(now))
                    .bind(id.as_str())
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_client(&self, id: &ClientId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done =
                    sqlx::query(sql!("DELETE FROM clients WHERE client_id = $1")).bind(id.as_str()).execute(&mut *tx).await.map_err(classify)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_in(&mut tx, revocations, now).await?;
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn update_client(&self, id: &ClientId, patch: &ClientPatch, now: OffsetDateTime) -> Result<Option<Client>, StoreError> {
                let mut w = self.write().await?;
                let row: Option<ClientRow> = sqlx::query_as(sql!(
                    "UPDATE clients SET name = COALESCE($1, name), scopes = COALESCE($2, scopes), ",
                    "redirect_uris = COALESCE($3, redirect_uris), post_logout_redirect_uris = COALESCE($4, post_logout_redirect_uris), ",
                    "first_party = COALESCE($5, first_party), updated_at = $6 WHERE client_id = $7 RETURNING ",
                    client_columns!()
                ))
                .bind(patch.name.as_ref().map(ClientName::as_str))
                .bind(patch.scopes.as_ref().map(scopes_json))
                .bind(patch.redirect_uris.as_ref().map(uris_json))
                .bind(patch.post_logout_redirect_uris.as_ref().map(uris_json))
                .bind(patch.first_party)
                .bind(ms(now))
                .bind(id.as_str())
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                row.map(Client::try_from).transpose()
            }

            async fn end_client_sessions(&self, client: &ClientId, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                lock_feed(&mut tx).await?;
                let ids: Vec<String> =
                    sqlx::query_scalar(sql!("UPDATE sessions SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL RETURNING id"))
                        .bind(ms(now))
                        .bind(client.as_str())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(classify)?;
                let ended = session_ids(&ids)?;
                append_in(&mut tx, &session_feed(&ended, feed_exp), now).await?;
                tx.commit().await.map_err(classify)?;
                Ok(ended)
            }

            async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
                let row: Option<SessionRow> = sqlx::query_as(sql!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(Session::try_from).transpose()
            }

            async fn live_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
                let rows: Vec<SessionRow> = sqlx::query_as(sql!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id"
                ))
                .bind(user.to_string())
                .bind(ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
                rows.into_iter().map(Session::try_from).collect()
            }

            async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError> {
                let row: Option<RefreshRow> = sqlx::query_as(sql!("SELECT ", refresh_columns!(), " FROM refresh_tokens WHERE hash = $1"))
                    .bind(hash.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(RefreshToken::try_from).transpose()
            }

            async fn rotate_within_grace(
                &self,
                old: &TokenHash,
                next: &RefreshToken,
                rotated_since: OffsetDateTime,
            ) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                // A conditional write: of racing requests, exactly one spends the chance.
                let spent = sqlx::query(sql!(
                    "UPDATE refresh_tokens SET grace_used = TRUE ",
                    "WHERE hash = $1 AND session_id = $2 AND rotated_at IS NOT NULL AND rotated_at >= $3 AND grace_used = FALSE"
                ))
                .bind(old.as_bytes().as_slice())
                .bind(next.session_id.to_string())
                .bind(ms(rotated_since))
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                if spent.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_refresh(&mut tx, next).await?;
                extend_session(&mut tx, next).await?;
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn end_sessions(&self, scope: SessionScope, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                lock_feed(&mut tx).await?;
                let (user, only, except) = match scope {
                    SessionScope::One(user, id) => (user, Some(id), None),
                    SessionScope::AllOf(user) => (user, None, None),
                    SessionScope::AllBut(user, id) => (user, None, Some(id)),
                };
                let ids: Vec<String> = sqlx::query_scalar(sql!(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL ",
                    "AND (CAST($3 AS TEXT) IS NULL OR id = $3) AND (CAST($4 AS TEXT) IS NULL OR id <> $4) RETURNING id"
                ))
                .bind(ms(now))
                .bind(user.to_string())
                .bind(only.map(|id| id.to_string()))
                .bind(except.map(|id| id.to_string()))
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?;
                // Refresh tokens stay until pruning, so presenting one says "revoked", not "unknown".
                let ended = session_ids(&ids)?;
                append_in(&mut tx, &session_feed(&ended, feed_exp), now).await?;
                tx.commit().await.map_err(classify)?;
                Ok(ended)
            }

            async fn append_revocations(&self, entries: &[Revocation], now: OffsetDateTime) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                append_in(&mut tx, entries, now).await?;
                tx.commit().await.map_err(classify)
            }

            async fn revocations_after(&self, cursor: i64, now: OffsetDateTime, limit: u32) -> Result<Vec<(i64, Revocation)>, StoreError> {
                let rows: Vec<RevocationRow> =
                    sqlx::query_as(sql!("SELECT ", revocation_columns!(), " FROM revocations WHERE seq > $1 AND exp >= $2 ORDER BY seq LIMIT $3"))
                        .bind(cursor)
                        .bind(now.unix_timestamp() - MAX_VERIFIER_LEEWAY)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(classify)?;
                Ok(rows.into_iter().map(<(i64, Revocation)>::from).collect())
            }

            async fn revocation_head(&self) -> Result<i64, StoreError> {
                sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM revocations")
                    .fetch_one(&self.pool)
                    .await
                    .map(Option::unwrap_or_default)
                    .map_err(classify)
            }

            async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                let rows: Vec<KeyRow> = sqlx::query_as(sql!("SELECT ", key_columns!(), " FROM signing_keys ORDER BY created_at, kid"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.into_iter().map(StoredKey::try_from).collect()
            }

            async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                insert_key_in(&mut w, key).await
            }

            async fn rotate_keys(&self, rotation: &KeyRotation) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                for kid in &rotation.delete {
                    sqlx::query(sql!("DELETE FROM signing_keys WHERE kid = $1")).bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
                }
                if let Some(kid) = &rotation.retire {
                    let done = sqlx::query(sql!(
                        "UPDATE signing_keys SET status = 'retiring', retired_at = $1 WHERE kid = $2 AND status = 'active'"
                    ))
                    .bind(ms(rotation.now))
                    .bind(kid.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict(Conflict::KeyStatus));
                    }
                }
                if let Some(kid) = &rotation.promote {
                    let done = sqlx::query(sql!("UPDATE signing_keys SET status = 'active' WHERE kid = $1 AND status = 'next'"))
                        .bind(kid.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict(Conflict::KeyStatus));
                    }
                }
                for key in &rotation.insert {
                    insert_key_in(&mut tx, key).await?;
                }
                tx.commit().await.map_err(classify)
            }

            async fn delete_keys(&self, kids: &[Kid]) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                for kid in kids {
                    sqlx::query(sql!("DELETE FROM signing_keys WHERE kid = $1")).bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
                }
                tx.commit().await.map_err(classify)
            }

            async fn record_login_failure(&self, login: &str, now: OffsetDateTime, window: Duration) -> Result<(i64, i64), StoreError> {
                let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let mut w = self.write().await?;
                sqlx::query_as::<_, (i64, i64)>(sql!(
                    "INSERT INTO login_failures (login, failures, window_start) VALUES ($1, 1, $2) ",
                    "ON CONFLICT (login) DO UPDATE SET ",
                    "failures = CASE WHEN login_failures.window_start < $3 THEN 1 ELSE login_failures.failures + 1 END, ",
                    "window_start = CASE WHEN login_failures.window_start < $3 THEN $2 ELSE login_failures.window_start END ",
                    "RETURNING failures, window_start"
                ))
                .bind(login)
                .bind(ms(now))
                .bind(ms(now).saturating_sub(window_ms))
                .fetch_one(&mut *w)
                .await
                .map_err(classify)
            }

            async fn login_failures(&self, login: &str) -> Result<Option<(i64, i64)>, StoreError> {
                sqlx::query_as::<_, (i64, i64)>(sql!("SELECT failures, window_start FROM login_failures WHERE login = $1"))
                    .bind(login)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)
            }

            async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("DELETE FROM login_failures WHERE login = $1")).bind(login).execute(&mut *w).await.map(|_| ()).map_err(classify)
            }

            async fn add_rate_hits(&self, minute: i64, hits: &[(String, i64)]) -> Result<Vec<(String, i64)>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let mut totals = Vec::with_capacity(hits.len());
                for (client, n) in hits {
                    let total: i64 = sqlx::query_scalar(sql!(
                        "INSERT INTO rate_counters (client, minute, hits) VALUES ($1, $2, $3) ",
                        "ON CONFLICT (client, minute) DO UPDATE SET hits = rate_counters.hits + $3 RETURNING hits"
                    ))
                    .bind(client)
                    .bind(minute)
                    .bind(n)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
                    totals.push((client.clone(), total));
                }
                tx.commit().await.map_err(classify)?;
                Ok(totals)
            }

            async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("INSERT INTO audit_events (at, kind, actor, subject, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)"))
                    .bind(ms(event.at))
                    .bind(&event.kind)
                    .bind(event.actor.as_deref())
                    .bind(event.subject.as_deref())
                    .bind(event.ip.as_deref())
                    .bind(event.detail.as_deref())
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }

            async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
                let rows: Vec<AuditRow> =
                    sqlx::query_as(sql!("SELECT ", audit_columns!(), " FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT $2"))
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(classify)?;
                Ok(rows.into_iter().map(<(i64, AuditEvent)>::from).collect())
            }

            async fn prune_audit(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("DELETE FROM audit_events WHERE at < $1"))
                    .bind(ms(cutoff))
                    .execute(&mut *w)
                    .await
                    .map(|d| d.rows_affected())
                    .map_err(classify)
            }

            async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
                sqlx::query_scalar(sql!("SELECT value FROM settings WHERE name = $1")).bind(name).fetch_optional(&self.pool).await.map_err(classify)
            }

            async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value"))
                    .bind(name)
                    .bind(value)
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }

            async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let mut pruned = 0;
                for statement in [
                    sql!("DELETE FROM refresh_tokens WHERE expires_at < $1"),
                    sql!("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at IS NOT NULL"),
                    sql!("DELETE FROM browser_sessions WHERE expires_at < $1"),
                ] {
                    pruned += sqlx::query(statement).bind(ms(now)).execute(&mut *tx).await.map_err(classify)?.rows_affected();
                }
                let code_kept_ms = i64::try_from(CODE_KEPT_AFTER_EXPIRY.as_millis()).unwrap_or(i64::MAX);
                pruned += sqlx::query(sql!("DELETE FROM authorization_codes WHERE expires_at < $1"))
                    .bind(ms(now).saturating_sub(code_kept_ms))
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                pruned += sqlx::query(sql!("DELETE FROM rate_counters WHERE minute < $1"))
                    .bind(now.unix_timestamp() / 60 - 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                pruned += sqlx::query(sql!("DELETE FROM revocations WHERE exp < $1"))
                    .bind(now.unix_timestamp() - MAX_VERIFIER_LEEWAY)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                tx.commit().await.map_err(classify)?;
                Ok(pruned)
            }

            async fn reseal_key(&self, kid: &Kid, sealed: &[u8]) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!("UPDATE signing_keys SET private_key = $1, encrypted = TRUE WHERE kid = $2 AND encrypted = FALSE"))
                    .bind(sealed)
                    .bind(kid.as_str())
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn shared_secret(&self, candidate: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("INSERT INTO shared_secret (id, secret, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING"))
                    .bind(candidate)
                    .bind(ms(now))
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                sqlx::query_scalar(sql!("SELECT secret FROM shared_secret WHERE id = 1")).fetch_one(&mut *w).await.map_err(classify)
            }
        }

        fn session_ids(ids: &[String]) -> Result<Vec<SessionId>, StoreError> {
            ids.iter().map(|id| id.parse::<SessionId>()).collect::<Result<Vec<_>, _>>().map_err(StoreError::other)
        }

        /// One feed entry per ended session, listed until `feed_exp`.
        fn session_feed(ended: &[SessionId], feed_exp: i64) -> Vec<Revocation> {
            ended.iter().map(|sid| Revocation::Session { sid: sid.to_string(), exp: feed_exp }).collect()
        }

        /// Appends feed entries inside a write transaction, after taking the feed's order.
        async fn append_in(tx: &mut <$db as sqlx::Database>::Connection, entries: &[Revocation], now: OffsetDateTime) -> Result<(), StoreError> {
            if entries.is_empty() {
                return Ok(());
            }
            lock_feed(tx).await?;
            for entry in entries {
                let (kind, value, not_before) = revocation_values(entry);
                sqlx::query(sql!("INSERT INTO revocations (kind, value, not_before, exp, created_at) VALUES ($1, $2, $3, $4, $5)"))
                    .bind(kind)
                    .bind(value)
                    .bind(not_before)
                    .bind(entry.expires())
                    .bind(ms(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
            Ok(())
        }

        /// The one statement that adds a person (registration with a mail uses it in its transaction).
        async fn insert_user_in(conn: &mut <$db as sqlx::Database>::Connection, user: &User) -> Result<(), StoreError> {
            sqlx::query(sql!(
                "INSERT INTO users (id, email, email_normalized, username, password_hash, roles, disabled, ",
                "tokens_not_before, created_at, updated_at, email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(user.id.to_string())
            .bind(user.email.as_str())
            .bind(user.email.normalized())
            .bind(user.username.as_ref().map(Username::as_str))
            .bind(user.password_hash.as_str())
            .bind(roles_json(&user.roles))
            .bind(user.disabled)
            .bind(user.tokens_not_before)
            .bind(ms(user.created_at))
            .bind(ms(user.updated_at))
            .bind(user.email_verified)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(classify)
        }

        async fn insert_refresh(conn: &mut <$db as sqlx::Database>::Connection, token: &RefreshToken) -> Result<(), StoreError> {
            sqlx::query(sql!("INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at) VALUES ($1, $2, $3, $4, NULL)"))
                .bind(token.hash.as_bytes().as_slice())
                .bind(token.session_id.to_string())
                .bind(ms(token.created_at))
                .bind(ms(token.expires_at))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(classify)
        }

        /// A session lives as long as its newest refresh token.
        async fn extend_session(conn: &mut <$db as sqlx::Database>::Connection, token: &RefreshToken) -> Result<(), StoreError> {
            sqlx::query(sql!(
                "UPDATE sessions SET last_used_at = $1, expires_at = CASE WHEN expires_at > $2 THEN expires_at ELSE $2 END WHERE id = $3"
            ))
            .bind(ms(token.created_at))
            .bind(ms(token.expires_at))
            .bind(token.session_id.to_string())
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(classify)
        }

        async fn insert_key_in(conn: &mut <$db as sqlx::Database>::Connection, key: &StoredKey) -> Result<(), StoreError> {
            sqlx::query(sql!(
                "INSERT INTO signing_keys (kid, alg, status, private_key, encrypted, public_jwk, created_at, retired_at) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.status.as_str())
            .bind(key.private_key.as_deref())
            .bind(key.encrypted)
            .bind(key.public_jwk.as_deref())
            .bind(ms(key.created_at))
            .bind(key.retired_at.map(ms))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(classify)
        }
    };
}

pub(crate) use store_impl;

/// `$N` placeholders → SQLite's `?N` (same number, so a parameter may appear twice). Dollar
/// signs inside string literals are left alone.
pub(crate) fn dollar_to_question(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '$' if !in_string && chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dollar_to_question;

    #[test]
    fn placeholders_keep_their_numbers_and_literals_are_untouched() {
        assert_eq!(dollar_to_question("a = $1 AND b = $12 OR c = $1"), "a = ?1 AND b = ?12 OR c = ?1");
        assert_eq!(dollar_to_question("x = '$1' AND y = $2"), "x = '$1' AND y = ?2");
        assert_eq!(dollar_to_question("SELECT 1"), "SELECT 1");
    }
}
