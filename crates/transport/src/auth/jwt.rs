//! JWT access tokens (RFC 9068) from configured issuers: the signature by a key of the
//! issuer's JWKS, `iss`, `aud` (the gateway's resource, RFC 8707), `exp` and `nbf` with a
//! leeway, and `sub`. Only asymmetric algorithms are accepted: `none` never parses, and an
//! HMAC algorithm would let anyone holding the issuer's public key sign.

use std::sync::Arc;
use std::time::Duration;

pub use jsonwebtoken::Algorithm;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use crate::auth::identity::Identity;
use crate::auth::jwks::{Fetch, KeyError, KeyPolicy, KeySet};

/// The algorithms accepted unless an issuer names its own.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A trusted issuer of access tokens.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Its identifier, exactly as its tokens' `iss` says it.
    pub issuer: String,
    /// Where its keys are; `None`: the `jwks_uri` of its metadata.
    pub jwks_uri: Option<String>,
    /// The algorithms its tokens may be signed with (asymmetric ones only).
    pub algorithms: Vec<Algorithm>,
    /// Accept only tokens typed as access tokens (`typ: at+jwt`, RFC 9068), so that no
    /// other JWT of the issuer (an ID token) passes for one. Off by default: Keycloak and
    /// Auth0 type their access tokens plain `JWT` (the audience check still keeps ID
    /// tokens, whose audience is the client, out).
    pub access_token_type: bool,
}

/// Why a JWT was refused; logged (never the token), answered as `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not a JWT, or a header or claims that do not parse (`alg: none` among them).
    #[error("not a well-formed JWT")]
    Malformed,
    /// Signed with an algorithm this issuer's tokens may not use.
    #[error("algorithm not accepted")]
    Algorithm,
    /// Not typed `at+jwt`, where the issuer's tokens must be.
    #[error("not typed as an access token (at+jwt)")]
    Type,
    /// `iss` names no configured issuer.
    #[error("unknown issuer")]
    Issuer,
    /// No key of the issuer has the token's `kid`, even after fetching the keys again.
    #[error("unknown key id")]
    UnknownKey,
    /// The issuer's keys could not be fetched.
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("not yet valid")]
    Immature,
    /// `aud` does not name this resource.
    #[error("wrong audience")]
    Audience,
    /// A claim that must be there is missing (`exp`, `iss`, `aud`, `sub`).
    #[error("a required claim is missing")]
    MissingClaim,
}

/// A verified token: who, and until when.
pub(crate) struct Verified {
    pub(crate) identity: Identity,
    /// `exp`, in seconds since the epoch.
    pub(crate) expires: u64,
}

struct Issuer {
    name: Arc<str>,
    keys: KeySet,
    validation: Validation,
    access_token_type: bool,
}

/// Verifies access tokens of the configured issuers.
pub(crate) struct Verifier {
    issuers: Vec<Issuer>,
}

impl Verifier {
    /// A verifier of tokens for `audience` from `issuers`.
    pub(crate) fn new(
        issuers: Vec<IssuerConfig>,
        audience: &[String],
        leeway: Duration,
        policy: KeyPolicy,
        fetch: Arc<dyn Fetch>,
    ) -> Self {
        let issuers = issuers
            .into_iter()
            .map(|config| {
                let mut validation = Validation::new(Algorithm::RS256);
                validation.algorithms = config.algorithms;
                validation.leeway = leeway.as_secs();
                validation.validate_nbf = true;
                validation.set_audience(audience);
                validation.set_issuer(&[&config.issuer]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                let name: Arc<str> = Arc::from(config.issuer);
                let keys = KeySet::new(name.clone(), config.jwks_uri, fetch.clone(), policy);
                Issuer { name, keys, validation, access_token_type: config.access_token_type }
            })
            .collect();
        Self { issuers }
    }

    /// The identity the token proves, or why it proves none.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, Invalid> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Invalid::Malformed)?;
        #[derive(serde::Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        // Read unverified only to pick the issuer whose keys to verify with; the claim is
        // checked again, verified, below.
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token).map_err(|_| Invalid::Malformed)?.iss;
        let iss = iss.ok_or(Invalid::MissingClaim)?;
        let issuer = self.issuers.iter().find(|i| *i.name == *iss).ok_or(Invalid::Issuer)?;
        if !issuer.validation.algorithms.contains(&header.alg) {
            return Err(Invalid::Algorithm);
        }
        let typed = |t: &str| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt");
        if issuer.access_token_type && !header.typ.as_deref().is_some_and(typed) {
            return Err(Invalid::Type);
        }
        let key = issuer.keys.key(header.kid.as_deref(), header.alg).await.map_err(|e| match e {
            KeyError::Unknown => Invalid::UnknownKey,
            KeyError::WrongAlgorithm => Invalid::Algorithm,
            KeyError::Unavailable => Invalid::KeysUnavailable,
        })?;
        // The library wants the algorithms of one family per check: the token's own,
        // already checked against the issuer's list.
        let mut validation = issuer.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(refusal)?;
        let claims = data.claims;
        let subject: Arc<str> = claims.get("sub").and_then(Value::as_str).ok_or(Invalid::MissingClaim)?.into();
        let expires = claims.get("exp").and_then(Value::as_u64).ok_or(Invalid::MissingClaim)?;
        let identity = Identity::subject(issuer.name.clone(), subject, scopes(&claims), claims);
        Ok(Verified { identity, expires })
    }
}

/// The token's scopes: `scope`, a space-separated string (RFC 9068, RFC 8693); or `scp`,
/// a string or an array (Azure AD, Okta).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn refusal(e: jsonwebtoken::errors::Error) -> Invalid {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => Invalid::Signature,
        ErrorKind::ExpiredSignature => Invalid::Expired,
        ErrorKind::ImmatureSignature => Invalid::Immature,
        ErrorKind::InvalidAudience => Invalid::Audience,
        ErrorKind::InvalidIssuer => Invalid::Issuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Invalid::Algorithm,
        ErrorKind::MissingRequiredClaim(_) => Invalid::MissingClaim,
        _ => Invalid::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |v: Value| v.as_object().cloned().expect("object");
        assert_eq!(scopes(&claims(serde_json::json!({ "scope": "a  b" }))), ["a", "b"]);
        assert_eq!(scopes(&claims(serde_json::json!({ "scp": ["a", "b"] }))), ["a", "b"]);
        assert_eq!(scopes(&claims(serde_json::json!({ "scp": "a" }))), ["a"]);
        assert!(scopes(&claims(serde_json::json!({}))).is_empty());
    }
}
