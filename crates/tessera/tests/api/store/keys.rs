//! Signing keys: one active key, rotations that apply together or not at all, resealing,
//! and the shared secret every instance reads.

use super::*;

#[tokio::test]
async fn only_one_key_can_be_active() {
    let (store, _dir) = store().await;
    let key = |kid: &str| StoredKey {
        kid: Kid::new(kid),
        alg: SigningAlg::ES256,
        status: KeyStatus::Active,
        private_key: Some(vec![1, 2, 3]),
        encrypted: false,
        public_jwk: Some("{}".into()),
        created_at: now(),
        retired_at: None,
    };
    store.insert_key(&key("k1")).await.unwrap();

    let second = store.insert_key(&key("k2")).await;

    assert!(matches!(second, Err(StoreError::Conflict(Conflict::KeyStatus))), "{second:?}");
    let stale = KeyRotation { retire: Some(Kid::new("nope")), promote: None, insert: vec![], delete: vec![], now: now() };
    assert!(matches!(store.rotate_keys(&stale).await, Err(StoreError::Conflict(Conflict::KeyStatus))));
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_rotation_promotes_retires_inserts_and_deletes_together() {
    let (store, _dir) = store().await;
    let t0 = now() - Duration::hours(1);
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    let t1 = now();

    let promote = KeyRotation {
        retire: Some(Kid::new("k1")),
        promote: Some(Kid::new("k2")),
        insert: vec![stored_key("k3", SigningAlg::ES256, KeyStatus::Next, t1)],
        delete: vec![],
        now: t1,
    };
    store.rotate_keys(&promote).await.unwrap();

    assert_eq!(
        key_states(&store).await,
        [("k1".into(), KeyStatus::Retiring, Some(t1)), ("k2".into(), KeyStatus::Active, None), ("k3".into(), KeyStatus::Next, None)]
    );

    let t2 = t1 + Duration::minutes(1);
    let change_alg = KeyRotation {
        retire: Some(Kid::new("k2")),
        promote: None,
        insert: vec![stored_key("k4", SigningAlg::RS256, KeyStatus::Active, t2), stored_key("k5", SigningAlg::RS256, KeyStatus::Next, t2)],
        delete: vec![Kid::new("k3")],
        now: t2,
    };
    store.rotate_keys(&change_alg).await.unwrap();

    let stored = store.keys().await.unwrap();
    let k4 = stored.iter().find(|k| k.kid.as_str() == "k4").unwrap();
    assert_eq!(
        (k4.alg, k4.private_key.as_deref(), k4.public_jwk.as_deref()),
        (SigningAlg::RS256, Some(&b"k4"[..]), Some(r#"{"kid":"k4"}"#))
    );
    assert_eq!(
        key_states(&store).await,
        [
            ("k1".into(), KeyStatus::Retiring, Some(t1)),
            ("k2".into(), KeyStatus::Retiring, Some(t2)),
            ("k4".into(), KeyStatus::Active, None),
            ("k5".into(), KeyStatus::Next, None),
        ]
    );
}

#[tokio::test]
async fn a_rotation_that_loses_a_race_changes_nothing() {
    let (store, _dir) = store().await;
    let t0 = now();
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    let before = key_states(&store).await;

    let stale = KeyRotation {
        retire: Some(Kid::new("k1")),
        promote: Some(Kid::new("k-promoted-by-someone-else")),
        insert: vec![stored_key("k3", SigningAlg::ES256, KeyStatus::Next, t0)],
        delete: vec![Kid::new("k2")],
        now: t0,
    };
    let lost = store.rotate_keys(&stale).await;

    assert!(matches!(lost, Err(StoreError::Conflict(Conflict::KeyStatus))), "{lost:?}");
    assert_eq!(key_states(&store).await, before, "the delete and the retirement were rolled back");
}

#[tokio::test]
async fn deleting_keys_removes_exactly_those_keys() {
    let (store, _dir) = store().await;
    let t0 = now();
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    store.insert_key(&stored_key("k3", SigningAlg::ES256, KeyStatus::Retiring, t0)).await.unwrap();
    store.insert_key(&stored_key("k4", SigningAlg::RS256, KeyStatus::Retiring, t0)).await.unwrap();

    store.delete_keys(&[Kid::new("k3"), Kid::new("k4"), Kid::new("unknown")]).await.unwrap();
    store.delete_keys(&[]).await.unwrap();

    let kids: Vec<String> = key_states(&store).await.into_iter().map(|(kid, _, _)| kid).collect();
    assert_eq!(kids, ["k1", "k2"]);
}

#[tokio::test]
async fn resealing_replaces_only_a_private_key_that_is_not_sealed_yet() {
    let (store, _dir) = store().await;
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, now())).await.unwrap();
    let sealed_key = |store: &DynStore| {
        let store = store.clone();
        async move {
            let key = store.keys().await.unwrap().into_iter().find(|k| k.kid.as_str() == "k1").unwrap();
            (key.private_key.unwrap(), key.encrypted)
        }
    };

    assert!(store.reseal_key(&Kid::new("k1"), b"sealed once").await.unwrap());
    assert_eq!(sealed_key(&store).await, (b"sealed once".to_vec(), true));

    assert!(!store.reseal_key(&Kid::new("k1"), b"sealed twice").await.unwrap(), "another instance sealed it first");
    assert_eq!(sealed_key(&store).await, (b"sealed once".to_vec(), true));
    assert!(!store.reseal_key(&Kid::new("gone"), b"sealed").await.unwrap());
}

#[tokio::test]
async fn the_first_shared_secret_stored_is_the_one_every_instance_reads() {
    let (store, _dir) = store().await;

    let first = store.shared_secret(&[1; 32], now()).await.unwrap();
    let racing = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.shared_secret(&[i + 2; 32], now()).await.unwrap() })
    });
    let mut later = Vec::new();
    for one in racing.collect::<Vec<_>>() {
        later.push(one.await.unwrap());
    }

    assert_eq!(first, vec![1; 32]);
    assert!(later.iter().all(|secret| *secret == first), "{later:?}");
}
