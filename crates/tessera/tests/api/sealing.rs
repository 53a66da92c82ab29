//! Private signing keys at rest: stored unsealed while no master key was configured, they are
//! sealed when Tessera next starts with one, and every token still verifies.

use crate::helpers::{spawn_app, spawn_beside, unique_email};
use reqwest::StatusCode;
use std::collections::BTreeMap;
use tessera::domain::keys::MasterKey;

const MASTER: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

/// `kid → (encrypted, private key bytes)` of every stored key that has a private key.
async fn private_keys(app: &crate::helpers::TestApp) -> BTreeMap<String, (bool, Vec<u8>)> {
    let keys = app.tessera.store().keys().await.unwrap();
    keys.into_iter().filter_map(|k| Some((k.kid.to_string(), (k.encrypted, k.private_key?)))).collect()
}

#[tokio::test]
async fn keys_stored_unsealed_are_sealed_at_start_up_once_a_master_key_is_set() {
    let plain = spawn_app().await;
    let before = plain.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let unsealed = private_keys(&plain).await;
    assert_eq!(unsealed.len(), 2, "an active and a next key: {unsealed:?}");
    assert!(unsealed.values().all(|(encrypted, _)| !encrypted), "without a master key nothing is sealed");

    let sealed_app = spawn_beside(&plain, |c| c.master_key = Some(MasterKey::parse_base64(MASTER).unwrap().into())).await;

    let sealed = private_keys(&sealed_app).await;
    assert_eq!(sealed.keys().collect::<Vec<_>>(), unsealed.keys().collect::<Vec<_>>(), "the same keys");
    let master = MasterKey::parse_base64(MASTER).unwrap();
    for (kid, (encrypted, bytes)) in &sealed {
        assert!(encrypted, "{kid} is still stored unencrypted");
        let plaintext = &unsealed[kid].1;
        assert_ne!(bytes, plaintext, "{kid}");
        assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext.as_slice()), "{kid} holds its plaintext");
        assert_eq!(&master.open(bytes, kid.as_bytes()).unwrap(), plaintext, "{kid} opens to the same key");
    }
    // Tokens signed before still verify, new ones verify, and the sealed next key signs after a rotation.
    assert_eq!(sealed_app.get_with("/v1/auth/verify", &before).await.status(), StatusCode::OK);
    let after = sealed_app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sealed_app.get_with("/v1/auth/verify", &after).await.status(), StatusCode::OK);
    sealed_app.tessera.rotate_keys("test", None).await.unwrap();
    let rotated = sealed_app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sealed_app.get_with("/v1/auth/verify", &rotated).await.status(), StatusCode::OK);
    assert_eq!(sealed_app.get_with("/v1/auth/verify", &before).await.status(), StatusCode::OK);

    // A further restart with the master key finds nothing left to seal and starts.
    let again = spawn_beside(&sealed_app, |_| {}).await;
    assert!(private_keys(&again).await.values().all(|(encrypted, _)| *encrypted));
    assert_eq!(again.get_with("/v1/auth/verify", &rotated).await.status(), StatusCode::OK);
}
