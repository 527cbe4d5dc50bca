//! Bearer-token authentication. Tokens are configured as SHA-256 digests, so the
//! configuration never holds a usable secret; a request's token is hashed and looked up.
//! The digest is also the credential's identity: a session belongs to the credential that
//! created it.

use std::collections::HashSet;
use std::fmt;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Who made a request: the digest of its bearer token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential([u8; 32]);

impl fmt::Debug for Credential {
    /// Only a prefix of the digest: enough to tell credentials apart in logs, and the
    /// token itself can never be recovered from it anyway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// The accepted tokens, by digest.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    digests: HashSet<[u8; 32]>,
}

impl TokenSet {
    /// The set of these hex SHA-256 digests; an entry that is not 64 hex digits is refused.
    pub fn from_hex<'a>(digests: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = HashSet::new();
        for text in digests {
            let text = text.trim();
            if text.len() != 64 {
                return Err(format!("a token digest is 64 hex digits (SHA-256), not {} characters", text.len()));
            }
            let mut digest = [0u8; 32];
            for (i, byte) in digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .map_err(|_| "a token digest is 64 hex digits (SHA-256)".to_owned())?;
            }
            set.insert(digest);
        }
        Ok(Self { digests: set })
    }

    /// How many tokens it accepts.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether it accepts none.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The credential of a request carrying an accepted `Authorization: Bearer` token.
    pub fn check(&self, headers: &HeaderMap) -> Result<Credential, Error> {
        let value = headers.get(AUTHORIZATION).ok_or(Error::Unauthorized(None))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized(Some("invalid_request")))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.digests.contains(&digest) {
            Ok(Credential(digest))
        } else {
            Err(Error::Unauthorized(Some("invalid_token")))
        }
    }
}

/// The SHA-256 hex digest of a token, as the configuration wants it.
pub fn digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("value"));
        h
    }

    #[test]
    fn accepts_configured_tokens_only() {
        let set = TokenSet::from_hex([digest_hex("s3cret").as_str()]).expect("valid");
        let alice = set.check(&with_auth("Bearer s3cret")).expect("accepted");
        assert_eq!(set.check(&with_auth("bearer s3cret")).expect("case-insensitive scheme"), alice);
        assert!(matches!(set.check(&with_auth("Bearer nope")), Err(Error::Unauthorized(Some("invalid_token")))));
        assert!(matches!(set.check(&with_auth("Basic s3cret")), Err(Error::Unauthorized(Some("invalid_request")))));
        assert!(matches!(set.check(&HeaderMap::new()), Err(Error::Unauthorized(None))));
    }

    #[test]
    fn refuses_malformed_digests() {
        assert!(TokenSet::from_hex(["abc"]).is_err());
        assert!(TokenSet::from_hex([&"z".repeat(64) as &str]).is_err());
    }

    #[test]
    fn debug_never_shows_the_whole_digest() {
        let set = TokenSet::from_hex([digest_hex("t").as_str()]).expect("valid");
        let shown = format!("{:?}", set.check(&with_auth("Bearer t")).expect("ok"));
        assert!(shown.len() < 30, "{shown}");
    }
}
