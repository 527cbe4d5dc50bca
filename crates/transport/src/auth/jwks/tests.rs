//! The key set's fetch policy under paused time.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::*;
use crate::auth::tests::{FakeIdp, ISSUER};

fn keys(idp: &Arc<FakeIdp>, policy: KeyPolicy) -> KeySet {
    KeySet::new(ISSUER.into(), None, idp.clone(), policy)
}

use crate::auth::tests::{KNOWN_X as X, KNOWN_Y as Y};

#[tokio::test(start_paused = true)]
async fn unknown_key_ids_refetch_at_most_once_per_interval() {
    let idp = FakeIdp::serving(&[("k1", X, Y)]);
    let policy = KeyPolicy { refetch_interval: Duration::from_secs(30), ..KeyPolicy::default() };
    let set = keys(&idp, policy);
    set.key(Some("k1"), Algorithm::ES256).await.expect("k1");
    assert_eq!(idp.fetches(), 1);
    assert_eq!(set.key(Some("nope"), Algorithm::ES256).await.err(), Some(KeyError::Unknown));
    assert_eq!(idp.fetches(), 2, "an unknown kid fetches again");
    for _ in 0..5 {
        assert_eq!(set.key(Some("nope"), Algorithm::ES256).await.err(), Some(KeyError::Unknown));
    }
    assert_eq!(idp.fetches(), 2, "at most once per interval");
    tokio::time::advance(Duration::from_secs(31)).await;
    idp.serve(&[("k1", X, Y), ("nope", X, Y)]);
    set.key(Some("nope"), Algorithm::ES256).await.expect("after the interval the new key is fetched");
    assert_eq!(idp.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn keys_past_their_age_are_fetched_again_and_kept_if_that_fails() {
    let idp = FakeIdp::serving(&[("k1", X, Y)]);
    let policy = KeyPolicy { max_age: Duration::from_secs(60), ..KeyPolicy::default() };
    let set = keys(&idp, policy);
    set.key(Some("k1"), Algorithm::ES256).await.expect("k1");
    set.key(Some("k1"), Algorithm::ES256).await.expect("k1");
    assert_eq!(idp.fetches(), 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    *idp.jwks.lock().expect("lock") = serde_json::json!("not a jwks");
    set.key(Some("k1"), Algorithm::ES256).await.expect("the old keys stay when a fetch fails");
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_key_is_used_only_for_its_algorithm_family() {
    let idp = FakeIdp::serving(&[("k1", X, Y)]);
    let set = keys(&idp, KeyPolicy::default());
    assert_eq!(set.key(Some("k1"), Algorithm::RS256).await.err(), Some(KeyError::WrongAlgorithm));
}

#[test]
fn symmetric_and_encryption_keys_are_skipped() {
    let body = serde_json::json!({ "keys": [
        { "kty": "oct", "kid": "h", "k": "c2VjcmV0" },
        { "kty": "EC", "crv": "P-256", "use": "enc", "kid": "e", "x": X, "y": Y },
        { "kty": "EC", "crv": "P-256", "kid": "s", "x": X, "y": Y },
        { "kty": "weird", "kid": "w" },
    ]});
    let keys = parse_jwks(body.to_string().as_bytes()).expect("parsed");
    assert_eq!(keys.keys().collect::<Vec<_>>(), ["s"]);
}

#[test]
fn metadata_urls_follow_oidc_then_rfc_8414() {
    assert_eq!(
        metadata_urls("https://idp.test/realms/mcp"),
        [
            "https://idp.test/realms/mcp/.well-known/openid-configuration",
            "https://idp.test/.well-known/oauth-authorization-server/realms/mcp",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_issuer_that_is_down_is_tried_again_only_after_the_interval() {
    let idp = FakeIdp::serving(&[]);
    *idp.jwks.lock().expect("lock") = serde_json::json!("not a jwks");
    let set = keys(&idp, KeyPolicy::default());
    for _ in 0..5 {
        assert_eq!(set.key(Some("k1"), Algorithm::ES256).await.err(), Some(KeyError::Unavailable));
    }
    assert_eq!(idp.fetches(), 1, "one failed fetch per interval");
    tokio::time::advance(Duration::from_secs(31)).await;
    idp.serve(&[("k1", X, Y)]);
    set.key(Some("k1"), Algorithm::ES256).await.expect("fetched once the interval passed");
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_token_without_a_kid_uses_the_only_key_that_fits() {
    let idp = FakeIdp::serving(&[("k1", X, Y)]);
    let set = keys(&idp, KeyPolicy::default());
    set.key(None, Algorithm::ES256).await.expect("the only EC key");
    idp.serve(&[("k1", X, Y), ("k2", X, Y)]);
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert_eq!(set.key(None, Algorithm::ES256).await.err(), Some(KeyError::Unknown), "two keys: ambiguous");
}
