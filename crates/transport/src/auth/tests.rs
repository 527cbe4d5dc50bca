//! Tests of [`Auth`] with tokens minted here, by fixed test keys, and a JWKS served by a
//! fake [`Fetch`] that counts its requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

pub(crate) const KNOWN_PKCS8: &[u8] = &[
    48, 129, 135, 2, 1, 0, 48, 19, 6, 7, 42, 134, 72, 206, 61, 2, 1, 6, 8, 42, 134, 72, 206, 61, 3, 1, 7, 4, 109, 48,
    107, 2, 1, 1, 4, 32, 180, 95, 136, 21, 136, 120, 233, 57, 81, 220, 188, 167, 126, 219, 239, 31, 69, 180, 16, 247,
    231, 213, 147, 39, 135, 99, 191, 147, 152, 138, 249, 207, 161, 68, 3, 66, 0, 4, 195, 193, 227, 185, 228, 35, 223,
    128, 165, 18, 13, 75, 245, 111, 237, 220, 40, 224, 118, 176, 158, 153, 96, 40, 179, 102, 88, 29, 49, 221, 142, 151,
    148, 227, 133, 96, 94, 32, 6, 223, 240, 242, 40, 187, 4, 61, 20, 185, 205, 223, 74, 118, 244, 158, 174, 191, 113,
    51, 152, 243, 233, 143, 250, 87,
];
pub(crate) const KNOWN_X: &str = "w8HjueQj34ClEg1L9W_t3CjgdrCemWAos2ZYHTHdjpc";
pub(crate) const KNOWN_Y: &str = "lOOFYF4gBt_w8ii7BD0Uuc3fSnb0nq6_cTOY8-mP-lc";
pub(crate) const OTHER_PKCS8: &[u8] = &[
    48, 129, 135, 2, 1, 0, 48, 19, 6, 7, 42, 134, 72, 206, 61, 2, 1, 6, 8, 42, 134, 72, 206, 61, 3, 1, 7, 4, 109, 48,
    107, 2, 1, 1, 4, 32, 232, 206, 131, 12, 22, 200, 158, 71, 84, 248, 93, 0, 105, 79, 153, 185, 169, 35, 127, 177,
    210, 208, 16, 59, 204, 190, 36, 220, 180, 62, 5, 6, 161, 68, 3, 66, 0, 4, 234, 136, 165, 106, 224, 93, 29, 195, 53,
    237, 76, 167, 161, 123, 255, 163, 214, 253, 85, 49, 0, 178, 113, 205, 93, 253, 143, 150, 141, 40, 169, 243, 205,
    236, 154, 223, 139, 33, 6, 125, 170, 157, 170, 138, 151, 107, 189, 27, 5, 49, 106, 247, 179, 51, 16, 106, 231, 239,
    176, 40, 61, 144, 34, 243,
];
pub(crate) const OTHER_X: &str = "6oilauBdHcM17UynoXv_o9b9VTEAsnHNXf2Plo0oqfM";
pub(crate) const OTHER_Y: &str = "zeya34shBn2qnaqKl2u9GwUxavezMxBq5--wKD2QIvM";

pub(crate) const ISSUER: &str = "https://idp.test";
pub(crate) const RESOURCE: &str = "https://mcp.test/mcp";

/// A JWKS endpoint (and the issuer's metadata) that counts the fetches of its keys.
#[derive(Default)]
pub(crate) struct FakeIdp {
    pub(crate) jwks: Mutex<Value>,
    pub(crate) fetches: AtomicUsize,
}

impl FakeIdp {
    pub(crate) fn serving(keys: &[(&str, &str, &str)]) -> Arc<Self> {
        let idp = Arc::new(Self::default());
        idp.serve(keys);
        idp
    }

    /// Serves these (kid, x, y) P-256 keys from now on.
    pub(crate) fn serve(&self, keys: &[(&str, &str, &str)]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(kid, x, y)| json!({ "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "x": x, "y": y }))
            .collect();
        *self.jwks.lock().expect("lock") = json!({ "keys": keys });
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Fetch for FakeIdp {
    fn get(&self, url: &str) -> std::pin::Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>> {
        let answer = match url {
            "https://idp.test/.well-known/openid-configuration" => {
                Ok(json!({ "issuer": ISSUER, "jwks_uri": "https://idp.test/jwks" }).to_string())
            }
            "https://idp.test/jwks" => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                Ok(self.jwks.lock().expect("lock").to_string())
            }
            other => Err(format!("404 {other}").into()),
        };
        Box::pin(async move { answer.map(Bytes::from) })
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// Claims of a valid token for `sub`, with these changes.
pub(crate) fn claims(sub: &str, changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "sub": sub, "aud": RESOURCE, "exp": now() + 300, "iat": now(), "scope": "mcp:tools",
    });
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// A token signed ES256 by `pkcs8` under `kid`.
pub(crate) fn mint(pkcs8: &[u8], kid: &str, claims: &Value) -> String {
    mint_typed(pkcs8, kid, claims, "JWT")
}

fn mint_typed(pkcs8: &[u8], kid: &str, claims: &Value, typ: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(pkcs8)).expect("signed")
}

fn auth(idp: &Arc<FakeIdp>, required: &[&str]) -> Auth {
    auth_typed(idp, required, false)
}

fn auth_typed(idp: &Arc<FakeIdp>, required: &[&str], access_token_type: bool) -> Auth {
    let issuer =
        IssuerConfig { issuer: ISSUER.into(), jwks_uri: None, algorithms: jwt::ASYMMETRIC.to_vec(), access_token_type };
    let config = JwtConfig {
        resource: RESOURCE.into(),
        audience: vec![],
        issuers: vec![issuer],
        required_scopes: required.iter().map(|s| (*s).to_owned()).collect(),
        leeway: Duration::from_secs(60),
        keys: KeyPolicy::default(),
    };
    let tokens = TokenSet::from_hex([digest_hex("static").as_str()]).expect("digest");
    Auth::with_jwt(tokens, config, idp.clone()).expect("auth")
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("value"));
    h
}

async fn check(auth: &Auth, token: &str) -> Result<Identity, Error> {
    auth.authenticate(&bearer_headers(token)).await
}

fn refused(result: Result<Identity, Error>) -> Option<&'static str> {
    match result {
        Err(Error::Unauthorized(code)) => code,
        other => panic!("a 401, not {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_is_its_subject_and_a_second_token_of_it_is_the_same_caller() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &["mcp:tools"]);
    let first = check(&auth, &mint(KNOWN_PKCS8, "k1", &claims("alice", json!({})))).await;
    let first = first.expect("valid");
    assert_eq!(first.principal(), &Principal::Subject { issuer: ISSUER.into(), subject: "alice".into() });
    assert!(first.has_scope("mcp:tools"));
    let refreshed = claims("alice", json!({ "iat": now() + 1, "groups": ["ops"] }));
    let second = check(&auth, &mint(KNOWN_PKCS8, "k1", &refreshed)).await.expect("valid");
    assert_eq!(first, second);
    assert_eq!(second.claim("groups"), Some(&json!(["ops"])));
    let bob = check(&auth, &mint(KNOWN_PKCS8, "k1", &claims("bob", json!({})))).await.expect("valid");
    assert_ne!(first, bob);
    assert_eq!(idp.fetches(), 1, "the keys are fetched once");
}

#[tokio::test]
async fn static_tokens_work_beside_jwts_and_need_no_scope() {
    let idp = FakeIdp::serving(&[]);
    let auth = auth(&idp, &["mcp:tools"]);
    let identity = check(&auth, "static").await.expect("static token");
    assert_eq!(identity.principal(), &Principal::Token(tokens::digest("static")));
    assert_eq!(idp.fetches(), 0, "a static token costs no fetch");
}

#[tokio::test]
async fn bad_tokens_are_refused_as_invalid_tokens() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &[]);
    let bad = [
        ("expired", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "exp": now() - 120 })))),
        ("not yet valid", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "nbf": now() + 600 })))),
        ("wrong audience", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "aud": "https://other.test" })))),
        ("wrong issuer", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "iss": "https://evil.test" })))),
        ("no subject", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "sub": null })))),
        ("no expiry", mint(KNOWN_PKCS8, "k1", &claims("a", json!({ "exp": null })))),
        ("bad signature", mint(OTHER_PKCS8, "k1", &claims("a", json!({})))),
        ("garbage", "not.a.jwt".to_owned()),
        ("alg none", format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims("a", json!({})).to_string()))),
    ];
    for (what, token) in bad {
        assert_eq!(refused(check(&auth, &token).await), Some("invalid_token"), "{what}");
    }
}

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_is_refused() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &[]);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims("a", json!({})),
        &EncodingKey::from_secret(KNOWN_X.as_bytes()).expect("key"),
    )
    .expect("signed");
    assert_eq!(refused(check(&auth, &token).await), Some("invalid_token"));
}

#[tokio::test]
async fn a_token_without_a_required_scope_is_forbidden() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &["mcp:tools", "mcp:admin"]);
    let result = check(&auth, &mint(KNOWN_PKCS8, "k1", &claims("a", json!({})))).await;
    assert!(matches!(result, Err(Error::InsufficientScope)), "{result:?}");
    let challenge = auth.challenge(&Error::InsufficientScope).expect("challenge");
    assert_eq!(
        challenge,
        r#"Bearer error="insufficient_scope", resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:admin""#
    );
    let admin = claims("a", json!({ "scope": "mcp:admin mcp:tools" }));
    check(&auth, &mint(KNOWN_PKCS8, "k1", &admin)).await.expect("both scopes");
}

#[tokio::test]
async fn without_a_token_the_challenge_names_the_metadata() {
    let idp = FakeIdp::serving(&[]);
    let auth = auth(&idp, &["mcp:tools"]);
    let refusal = auth.authenticate(&HeaderMap::new()).await.expect_err("no token");
    assert!(matches!(refusal, Error::Unauthorized(None)));
    assert_eq!(
        auth.challenge(&refusal).expect("challenge"),
        r#"Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#
    );
}

#[tokio::test]
async fn an_unknown_key_id_fetches_the_keys_again_once_per_interval() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &[]);
    check(&auth, &mint(KNOWN_PKCS8, "k1", &claims("a", json!({})))).await.expect("valid");
    assert_eq!(idp.fetches(), 1);
    // The issuer rotates to k2: the first token under it makes the gateway fetch again.
    idp.serve(&[("k1", KNOWN_X, KNOWN_Y), ("k2", OTHER_X, OTHER_Y)]);
    check(&auth, &mint(OTHER_PKCS8, "k2", &claims("a", json!({})))).await.expect("rotated key");
    assert_eq!(idp.fetches(), 2);
    // A made-up kid right after: no fetch (one per interval), refused.
    assert_eq!(refused(check(&auth, &mint(OTHER_PKCS8, "k3", &claims("a", json!({})))).await), Some("invalid_token"));
    assert_eq!(idp.fetches(), 2);
}

/// A token seen before is not verified again: here its keys are gone, and it still passes
/// (a new token under the same gone key does not).
#[tokio::test(start_paused = true)]
async fn a_verified_token_is_kept_until_it_expires() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let auth = auth(&idp, &[]);
    let token = mint(KNOWN_PKCS8, "k1", &claims("a", json!({})));
    check(&auth, &token).await.expect("valid");
    idp.serve(&[]);
    tokio::time::advance(KeyPolicy::default().max_age + Duration::from_secs(1)).await;
    check(&auth, &token).await.expect("from the cache");
    assert_eq!(idp.fetches(), 1, "no verification, so no key fetched");
    let fresh = mint(KNOWN_PKCS8, "k1", &claims("b", json!({})));
    assert_eq!(refused(check(&auth, &fresh).await), Some("invalid_token"), "verified: the key is gone");
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn an_issuer_may_require_tokens_typed_as_access_tokens() {
    let idp = FakeIdp::serving(&[("k1", KNOWN_X, KNOWN_Y)]);
    let typed = auth_typed(&idp, &[], true);
    let plain = mint(KNOWN_PKCS8, "k1", &claims("a", json!({})));
    assert_eq!(refused(check(&typed, &plain).await), Some("invalid_token"), "typ JWT");
    check(&typed, &mint_typed(KNOWN_PKCS8, "k1", &claims("a", json!({})), "at+jwt")).await.expect("at+jwt");
    check(&auth(&idp, &[]), &plain).await.expect("not required by default");
}

#[test]
fn malformed_authorization_headers_are_invalid_requests() {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_static("Basic s3cret"));
    assert!(matches!(bearer(&h), Err(Error::Unauthorized(Some("invalid_request")))));
    h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  t "));
    assert_eq!(bearer(&h).expect("case-insensitive scheme"), "t");
    assert!(matches!(bearer(&HeaderMap::new()), Err(Error::Unauthorized(None))));
}

#[tokio::test]
async fn static_tokens_alone_refuse_anything_else() {
    let auth = Auth::tokens(TokenSet::from_hex([digest_hex("s3cret").as_str()]).expect("valid"));
    check(&auth, "s3cret").await.expect("accepted");
    assert_eq!(refused(check(&auth, "nope").await), Some("invalid_token"));
    assert!(auth.challenge(&Error::Unauthorized(None)).is_none(), "no metadata to name");
}

/// base64url without padding.
fn b64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
