//! Bearer-token authentication: static tokens (configured as SHA-256 digests) and JWT
//! access tokens from trusted issuers (an OAuth 2.1 resource server), side by side. Either
//! way a request gets one [`Identity`], and that is what a session is bound to: a
//! refreshed token of the same subject keeps its session; another caller's gets 404.
//!
//! # Layout
//! - [`identity`]: [`Identity`] and [`Principal`].
//! - [`tokens`]: static tokens.
//! - [`jwt`]: verifying JWT access tokens; [`jwks`]: the issuers' keys.
//! - [`metadata`]: the protected resource metadata (RFC 9728) and the challenges.
//! - `cache`: verified tokens until they expire.
//!
//! Tokens are only ever read here: nothing passes a client's `Authorization` header on,
//! and neither the token nor its digest is logged.

mod cache;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod metadata;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

pub use identity::{Identity, Principal};
pub use jwks::{Fetch, FetchError, KeyPolicy};
pub use jwt::IssuerConfig;
pub use metadata::ProtectedResource;
pub use tokens::{TokenSet, digest_hex};

use crate::error::Error;

/// JWT access tokens: whose, for what, and how they are checked.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The public URL of the gateway's MCP endpoint (RFC 8707 resource, RFC 9728 metadata).
    pub resource: String,
    /// The `aud` values accepted; empty: the resource alone.
    pub audience: Vec<String>,
    /// The trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Scopes every token must carry (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// How the issuers' keys are kept and fetched again.
    pub keys: KeyPolicy,
}

/// Who may call: static tokens, JWTs, or both.
pub struct Auth {
    tokens: TokenSet,
    jwt: Option<Jwt>,
}

struct Jwt {
    verifier: jwt::Verifier,
    cache: cache::Cache,
    resource: ProtectedResource,
    required_scopes: Vec<String>,
    leeway: u64,
}

impl Auth {
    /// Static tokens only.
    pub fn tokens(tokens: TokenSet) -> Self {
        Self { tokens, jwt: None }
    }

    /// Static tokens and JWTs; `fetch` gets the issuers' keys.
    pub fn with_jwt(tokens: TokenSet, config: JwtConfig, fetch: Arc<dyn Fetch>) -> Result<Self, String> {
        let servers: Vec<String> = config.issuers.iter().map(|i| i.issuer.clone()).collect();
        let resource = ProtectedResource::new(&config.resource, &servers, &config.required_scopes)?;
        let audience = if config.audience.is_empty() { vec![config.resource.clone()] } else { config.audience };
        let verifier = jwt::Verifier::new(config.issuers, &audience, config.leeway, config.keys, fetch);
        let jwt = Jwt {
            verifier,
            cache: cache::Cache::default(),
            resource,
            required_scopes: config.required_scopes,
            leeway: config.leeway.as_secs(),
        };
        Ok(Self { tokens, jwt: Some(jwt) })
    }

    /// How many static tokens it accepts.
    pub fn static_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// The protected resource, when JWTs are accepted.
    pub fn resource(&self) -> Option<&ProtectedResource> {
        self.jwt.as_ref().map(|j| &j.resource)
    }

    /// The identity of a request's `Authorization: Bearer` token; or
    /// [`Error::Unauthorized`] (401) or [`Error::InsufficientScope`] (403).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Error> {
        let token = bearer(headers)?;
        let digest = tokens::digest(token);
        if let Some(identity) = self.tokens.get(&digest) {
            return Ok(identity.clone());
        }
        let jwt = self.jwt.as_ref().ok_or(Error::Unauthorized(Some("invalid_token")))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let identity = match jwt.cache.get(&digest, now) {
            Some(identity) => identity,
            None => {
                let verified = jwt.verifier.verify(token).await.map_err(|reason| {
                    tracing::debug!(%reason, "bearer token refused");
                    Error::Unauthorized(Some("invalid_token"))
                })?;
                let until = verified.expires.saturating_add(jwt.leeway);
                jwt.cache.insert(digest, verified.identity.clone(), until, now);
                verified.identity
            }
        };
        if jwt.required_scopes.iter().all(|s| identity.has_scope(s)) {
            Ok(identity)
        } else {
            Err(Error::InsufficientScope)
        }
    }

    /// The `WWW-Authenticate` challenge of a refusal by [`Auth::authenticate`], when JWTs
    /// are accepted (naming the metadata); `None`: the plain challenge of the error.
    pub fn challenge(&self, refusal: &Error) -> Option<HeaderValue> {
        let resource = self.resource()?;
        match refusal {
            Error::Unauthorized(code) => Some(resource.challenge(*code)),
            Error::InsufficientScope => Some(resource.challenge(Some("insufficient_scope"))),
            _ => None,
        }
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers.get(AUTHORIZATION).ok_or(Error::Unauthorized(None))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(Error::Unauthorized(Some("invalid_request")))
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("static_tokens", &self.tokens.len())
            .field("resource", &self.resource().map(ProtectedResource::metadata_url))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests;
