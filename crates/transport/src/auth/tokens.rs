//! Static bearer tokens, configured as SHA-256 digests so that the configuration never
//! holds a usable secret; a request's token is hashed and looked up.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::auth::identity::Identity;

/// The accepted static tokens, by digest, each with its identity built once.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    digests: HashMap<[u8; 32], Identity>,
}

impl TokenSet {
    /// The set of these hex SHA-256 digests; an entry that is not 64 hex digits is refused.
    pub fn from_hex<'a>(digests: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = HashMap::new();
        for text in digests {
            let digest = parse(text)?;
            set.insert(digest, Identity::token(digest));
        }
        Ok(Self { digests: set })
    }

    /// These tokens too, each with a name (`name`, hex SHA-256 digest) that the policy's
    /// rules name it by. A digest listed unnamed too takes the name.
    pub fn with_named<'a>(mut self, named: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        for (name, text) in named {
            let digest = parse(text).map_err(|e| format!("token {name:?}: {e}"))?;
            self.digests.insert(digest, Identity::named_token(digest, name.into()));
        }
        Ok(self)
    }

    /// How many tokens it accepts.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether it accepts none.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The identity of the token with this digest, if it is one of these.
    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<&Identity> {
        self.digests.get(digest)
    }
}

/// A hex SHA-256 digest.
fn parse(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(format!("a token digest is 64 hex digits (SHA-256), not {} characters", text.len()));
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or("-"), 16)
            .map_err(|_| "a token digest is 64 hex digits (SHA-256)".to_owned())?;
    }
    Ok(digest)
}

/// The SHA-256 digest of a token.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The SHA-256 hex digest of a token, as the configuration wants it.
pub fn digest_hex(token: &str) -> String {
    digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_malformed_digests() {
        assert!(TokenSet::from_hex(["abc"]).is_err());
        assert!(TokenSet::from_hex([&"z".repeat(64) as &str]).is_err());
    }

    #[test]
    fn finds_configured_digests_only() {
        let set = TokenSet::from_hex([digest_hex("s3cret").as_str()]).expect("valid");
        assert_eq!(set.get(&digest("s3cret")), Some(&Identity::token(digest("s3cret"))));
        assert!(set.get(&digest("nope")).is_none());
    }

    #[test]
    fn named_tokens_carry_their_names() {
        let hex = digest_hex("s3cret");
        let set = TokenSet::from_hex([hex.as_str()]).and_then(|s| s.with_named([("ci", hex.as_str())])).expect("valid");
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(&digest("s3cret")).and_then(Identity::token_name), Some("ci"));
        assert!(TokenSet::default().with_named([("ci", "short")]).is_err());
    }
}
