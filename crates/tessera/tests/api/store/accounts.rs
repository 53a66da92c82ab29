//! People and clients: round trips, uniqueness, updates that touch only their own columns,
//! and deletions that write the revocation feed in the same step.

use super::*;

#[tokio::test]
async fn users_round_trip_and_uniqueness_is_case_insensitive() {
    let (store, _dir) = store().await;
    let alice = user("Alice@Example.com", Some("alice"));
    store.insert_user(&alice).await.unwrap();

    let found = store.user_by_email(&Email::parse("alice@example.COM").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert_eq!(found.email.as_str(), "Alice@Example.com");
    assert!(found.roles.is_admin());
    assert_eq!(found.created_at, alice.created_at);
    let by_name = store.user_by_username(&Username::parse("ALICE").unwrap()).await.unwrap().unwrap();
    assert_eq!(by_name.id, alice.id);

    let same_email = store.insert_user(&user("ALICE@example.com", None)).await;
    assert!(matches!(same_email, Err(StoreError::Conflict(Conflict::Email))), "{same_email:?}");
    let same_name = store.insert_user(&user("other@example.com", Some("alice"))).await;
    assert!(matches!(same_name, Err(StoreError::Conflict(Conflict::Username))), "{same_name:?}");
}

#[tokio::test]
async fn values_that_look_like_sql_are_only_data() {
    let (store, _dir) = store().await;
    let evil = user("robert');DROP/**/TABLE/**/users;--@example.com", None);
    store.insert_user(&evil).await.unwrap();
    let found = store.user_by_email(&evil.email).await.unwrap().unwrap();
    assert_eq!(found.email.as_str(), evil.email.as_str());
    store.set_setting("x' OR '1'='1", "v").await.unwrap();
    assert_eq!(store.setting("x' OR '1'='1").await.unwrap().as_deref(), Some("v"));
    assert!(store.setting("anything").await.unwrap().is_none());
    assert_eq!(store.list_users(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn each_user_update_changes_only_its_own_columns() {
    let (store, _dir) = store().await;
    let bob = user("bob@example.com", Some("bob"));
    store.insert_user(&bob).await.unwrap();

    let disabled = store.update_admin_fields(bob.id, Some(true), None, now()).await.unwrap().unwrap();
    let renamed = store.update_profile(bob.id, None, Some(&Username::parse("bobby").unwrap()), now()).await.unwrap().unwrap();
    let new_hash = PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bmV3".into());
    let replaced = store.replace_password_hash(bob.id, &bob.password_hash, &new_hash, now()).await.unwrap();
    let stale = store.replace_password_hash(bob.id, &bob.password_hash, &bob.password_hash, now()).await.unwrap();
    store.raise_tokens_not_before(bob.id, 500, now()).await.unwrap();
    store.raise_tokens_not_before(bob.id, 400, now()).await.unwrap();
    let moved = store.update_profile(bob.id, Some(&Email::parse("Robert@Example.com").unwrap()), None, now()).await.unwrap().unwrap();

    assert!(disabled.disabled && disabled.roles.is_admin());
    assert_eq!((renamed.username.as_ref().map(Username::as_str), renamed.disabled), (Some("bobby"), true));
    assert!(replaced && !stale, "the password is compared and set");
    let last = store.user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!(last.password_hash.as_str(), new_hash.as_str());
    assert_eq!(last.tokens_not_before, 500, "a cut-off is never lowered");
    assert_eq!((moved.email.as_str(), moved.disabled, moved.roles.is_admin()), ("Robert@Example.com", true, true));
    assert!(store.update_admin_fields(UserId::new_time_ordered(), Some(true), None, now()).await.unwrap().is_none());
    let taken = store.insert_user(&user("carol@example.com", Some("carol"))).await;
    assert!(taken.is_ok());
    let clash = store.update_profile(bob.id, None, Some(&Username::parse("carol").unwrap()), now()).await;
    assert!(matches!(clash, Err(StoreError::Conflict(Conflict::Username))), "{clash:?}");
}

#[tokio::test]
async fn clients_round_trip_with_their_audiences_and_are_listed_oldest_first() {
    let (store, _dir) = store().await;
    let at = now();
    let newer = client("newer", at);
    let older = client("older", at - Duration::seconds(5));
    store.insert_client(&newer).await.unwrap();
    store.insert_client(&older).await.unwrap();

    let found = store.client(&newer.id).await.unwrap().unwrap();
    let listed = store.list_clients().await.unwrap();

    assert_eq!((found.id.as_str(), found.name.as_str()), (newer.id.as_str(), "newer"));
    assert_eq!(found.secret_hash, newer.secret_hash);
    assert_eq!((&found.scopes, &found.roles, &found.audiences), (&newer.scopes, &newer.roles, &newer.audiences));
    assert_eq!((found.created_at, found.updated_at), (at, at));
    assert_eq!(listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["older", "newer"]);
    assert!(store.client(&ClientId::generate().unwrap()).await.unwrap().is_none());
    assert!(matches!(store.insert_client(&newer).await, Err(StoreError::Conflict(_))), "a client id is unique");
}

#[tokio::test]
async fn a_client_secret_is_replaced_only_for_a_client_that_exists() {
    let (store, _dir) = store().await;
    let at = now();
    let billing = client("billing", at);
    store.insert_client(&billing).await.unwrap();
    let new_hash = PlainToken::generate(TokenKind::ClientSecret).unwrap().hash();
    let later = at + Duration::seconds(30);

    assert!(store.set_client_secret(&billing.id, &new_hash, later).await.unwrap());
    assert!(!store.set_client_secret(&ClientId::generate().unwrap(), &new_hash, later).await.unwrap());

    let found = store.client(&billing.id).await.unwrap().unwrap();
    assert_eq!(found.secret_hash, Some(new_hash));
    assert_eq!((found.created_at, found.updated_at), (at, later));
    assert_eq!(found.audiences, billing.audiences, "nothing else changes");
}

#[tokio::test]
async fn deleting_a_client_writes_its_feed_entries_in_the_same_step() {
    let (store, _dir) = store().await;
    let at = now();
    let billing = client("billing", at);
    store.insert_client(&billing).await.unwrap();
    let head = store.revocation_head().await.unwrap();
    let entries =
        [Revocation::Subject { sub: billing.id.to_string(), not_before: at.unix_timestamp() + 1, exp: at.unix_timestamp() + 900 }];

    assert!(store.delete_client(&billing.id, &entries, at).await.unwrap());

    assert!(store.client(&billing.id).await.unwrap().is_none());
    assert_eq!(stored_feed(&store, head).await, entries.to_vec());
    let after = store.revocation_head().await.unwrap();
    assert!(!store.delete_client(&billing.id, &entries, at).await.unwrap(), "already gone");
    assert_eq!(store.revocation_head().await.unwrap(), after, "a delete that found nothing writes no feed entry");
}

#[tokio::test]
async fn deleting_a_user_takes_its_sessions_and_writes_its_feed_entries_in_the_same_step() {
    let (store, _dir) = store().await;
    let erin = user("erin@example.com", Some("erin"));
    let other = user("other@example.com", None);
    store.insert_user(&erin).await.unwrap();
    store.insert_user(&other).await.unwrap();
    let (session, token) = session_for(&store, &erin).await;
    let (kept, _) = session_for(&store, &other).await;
    let at = now();
    let head = store.revocation_head().await.unwrap();
    let entries = [
        Revocation::Subject { sub: erin.id.to_string(), not_before: at.unix_timestamp() + 1, exp: at.unix_timestamp() + 900 },
        Revocation::Session { sid: session.id.to_string(), exp: at.unix_timestamp() + 900 },
    ];

    assert!(store.delete_user(erin.id, &entries, at).await.unwrap());

    assert!(store.user_by_id(erin.id).await.unwrap().is_none());
    assert!(store.user_by_username(&Username::parse("erin").unwrap()).await.unwrap().is_none());
    assert!(store.session(session.id).await.unwrap().is_none());
    assert!(store.refresh_token(&token.hash).await.unwrap().is_none());
    assert!(store.session(kept.id).await.unwrap().is_some(), "another account's session stays");
    assert_eq!(stored_feed(&store, head).await, entries.to_vec());
    let after = store.revocation_head().await.unwrap();
    assert!(!store.delete_user(erin.id, &entries, at).await.unwrap(), "already gone");
    assert_eq!(store.revocation_head().await.unwrap(), after, "a delete that found nothing writes no feed entry");
}

#[tokio::test]
async fn users_are_listed_in_id_order_one_page_after_another() {
    let (store, _dir) = store().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let u = user(&format!("page{n}@example.com"), None);
        store.insert_user(&u).await.unwrap();
        ids.push(u.id);
    }
    ids.sort_by_key(|id| id.to_string());

    let first = store.list_users(None, 2).await.unwrap();
    let second = store.list_users(first.last().map(|u| u.id), 2).await.unwrap();
    let third = store.list_users(second.last().map(|u| u.id), 2).await.unwrap();
    let past_the_end = store.list_users(third.last().map(|u| u.id), 2).await.unwrap();

    let listed: Vec<UserId> = [first, second, third.clone()].concat().iter().map(|u| u.id).collect();
    assert_eq!(listed, ids);
    assert_eq!(third.len(), 1);
    assert!(past_the_end.is_empty());
}

#[tokio::test]
async fn a_public_client_round_trips_without_a_secret_and_cannot_be_given_one() {
    let (store, _dir) = store().await;
    let spa = Client {
        secret_hash: None,
        public: true,
        first_party: false,
        redirect_uris: RedirectUris::parse(&["com.example.app:/cb"], true).unwrap(),
        ..client("spa", now())
    };
    store.insert_client(&spa).await.unwrap();

    let found = store.client(&spa.id).await.unwrap().unwrap();
    let given = store.set_client_secret(&spa.id, &PlainToken::generate(TokenKind::ClientSecret).unwrap().hash(), now()).await.unwrap();

    assert!(found.public && found.secret_hash.is_none());
    assert_eq!(found.redirect_uris.to_vec(), ["com.example.app:/cb"]);
    assert!(!given, "a public client never gets a secret");
    assert!(store.client(&spa.id).await.unwrap().unwrap().secret_hash.is_none());
    let confidential_without_secret = Client { secret_hash: None, ..client("broken", now()) };
    assert!(store.insert_client(&confidential_without_secret).await.is_err(), "a confidential client must have a secret");
}

#[tokio::test]
async fn a_client_update_changes_only_the_columns_it_names() {
    let (store, _dir) = store().await;
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let later = now() + Duration::seconds(3);

    let rename = ClientPatch { name: Some(ClientName::parse("renamed").unwrap()), ..Default::default() };
    let renamed = store.update_client(&app.id, &rename, later).await.unwrap().unwrap();
    let patch = ClientPatch {
        scopes: Some(Scopes::parse(&["read"]).unwrap()),
        redirect_uris: Some(RedirectUris::parse(&["https://new.example/cb"], false).unwrap()),
        post_logout_redirect_uris: Some(RedirectUris::default()),
        first_party: Some(false),
        ..Default::default()
    };
    let changed = store.update_client(&app.id, &patch, later).await.unwrap().unwrap();

    assert_eq!((renamed.name.as_str(), &renamed.scopes, renamed.first_party), ("renamed", &app.scopes, true));
    assert_eq!((changed.name.as_str(), changed.scopes.to_string().as_str()), ("renamed", "read"));
    assert_eq!(changed.redirect_uris.to_vec(), ["https://new.example/cb"]);
    assert!(changed.post_logout_redirect_uris.is_empty() && !changed.first_party);
    assert_eq!((&changed.roles, &changed.audiences, changed.secret_hash), (&app.roles, &app.audiences, app.secret_hash));
    assert_eq!((changed.created_at, changed.updated_at), (app.created_at, later));
    assert!(store.update_client(&ClientId::generate().unwrap(), &patch, later).await.unwrap().is_none());
}

#[tokio::test]
async fn ending_a_clients_sessions_ends_only_that_clients_and_writes_the_feed() {
    let (store, _dir) = store().await;
    let owner = user("client-sessions@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (a, b) = (client("a", now()), client("b", now()));
    store.insert_client(&a).await.unwrap();
    store.insert_client(&b).await.unwrap();
    let of_a = app_session(&store, &owner, &a.id, None, true).await.unwrap();
    let of_b = app_session(&store, &owner, &b.id, None, false).await.unwrap();
    let (first_party, _) = session_for(&store, &owner).await;
    let head = store.revocation_head().await.unwrap();
    let at = now();

    let ended = store.end_client_sessions(&a.id, at, at.unix_timestamp() + 60).await.unwrap();

    assert_eq!(ended, [of_a.id]);
    assert_eq!(stored_feed(&store, head).await, [Revocation::Session { sid: of_a.id.to_string(), exp: at.unix_timestamp() + 60 }]);
    let stored = store.session(of_a.id).await.unwrap().unwrap();
    assert_eq!((stored.client_id.as_ref(), stored.offline, stored.scope.to_string()), (Some(&a.id), true, "openid read".to_owned()));
    assert!(store.session(of_b.id).await.unwrap().unwrap().revoked_at.is_none());
    assert!(store.session(first_party.id).await.unwrap().unwrap().client_id.is_none());
}
