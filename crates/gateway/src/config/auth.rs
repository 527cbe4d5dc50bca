//! The `[auth]` section: static tokens (SHA-256 digests, inline or in a file) and JWT
//! access tokens from trusted issuers (`resource`, `[[auth.issuers]]`, scopes, leeway, key
//! refresh), validated into the transport's [`Auth`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcpgw_transport::auth::{Auth, IssuerConfig, JwtConfig, KeyPolicy, TokenSet, jwt};
use serde::Deserialize;

use crate::fetch::{HttpFetch, secure_url};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAuth {
    token_sha256: Vec<String>,
    /// Named static tokens: name → hex SHA-256 digest (the policy names them).
    tokens: BTreeMap<String, String>,
    token_file: Option<PathBuf>,
    resource: Option<String>,
    audience: Vec<String>,
    required_scopes: Vec<String>,
    leeway_secs: u64,
    jwks_max_age_secs: u64,
    jwks_refetch_secs: u64,
    jwks_timeout_secs: u64,
    issuers: Vec<RawIssuer>,
}

impl Default for RawAuth {
    fn default() -> Self {
        let keys = KeyPolicy::default();
        Self {
            token_sha256: Vec::new(),
            tokens: BTreeMap::new(),
            token_file: None,
            resource: None,
            audience: Vec::new(),
            required_scopes: Vec::new(),
            leeway_secs: 60,
            jwks_max_age_secs: keys.max_age.as_secs(),
            jwks_refetch_secs: keys.refetch_interval.as_secs(),
            jwks_timeout_secs: keys.fetch_timeout.as_secs(),
            issuers: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    jwks_uri: Option<String>,
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    access_token_type: bool,
}

impl RawAuth {
    /// Who may call, as configured.
    pub(super) fn build(self) -> Result<Arc<Auth>, String> {
        let tokens = self.tokens()?;
        if self.issuers.is_empty() {
            if self.resource.is_some() {
                return Err("resource is set but no issuer is ([[auth.issuers]])".into());
            }
            if tokens.is_empty() {
                return Err("no token configured (token_sha256, tokens, token_file or [[auth.issuers]])".into());
            }
            return Ok(Arc::new(Auth::tokens(tokens)));
        }
        let resource = self.resource.ok_or("[[auth.issuers]] needs resource: the public URL of /mcp")?;
        for scope in &self.required_scopes {
            if scope.is_empty() || !scope.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) && b != b'\\') {
                return Err(format!("required_scopes: {scope:?} is not a scope (RFC 6749 §3.3)"));
            }
        }
        let issuers = self.issuers.into_iter().map(RawIssuer::build).collect::<Result<Vec<_>, _>>()?;
        let keys = KeyPolicy {
            max_age: Duration::from_secs(self.jwks_max_age_secs.max(1)),
            refetch_interval: Duration::from_secs(self.jwks_refetch_secs),
            fetch_timeout: Duration::from_secs(self.jwks_timeout_secs.max(1)),
        };
        let config = JwtConfig {
            resource,
            audience: self.audience,
            issuers,
            required_scopes: self.required_scopes,
            leeway: Duration::from_secs(self.leeway_secs),
            keys,
        };
        let fetch = Arc::new(HttpFetch::new(keys.fetch_timeout)?);
        Ok(Arc::new(Auth::with_jwt(tokens, config, fetch)?))
    }

    /// The names of the named static tokens.
    pub(super) fn token_names(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    /// The static tokens: the listed digests, the named ones, and those in `token_file`
    /// (one per line; blank lines and `#` comments skipped).
    fn tokens(&self) -> Result<TokenSet, String> {
        let mut digests = self.token_sha256.clone();
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| format!("token_file {}: {e}", path.display()))?;
            digests.extend(
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned),
            );
        }
        TokenSet::from_hex(digests.iter().map(String::as_str))?
            .with_named(self.tokens.iter().map(|(name, digest)| (name.as_str(), digest.as_str())))
    }
}

impl RawIssuer {
    fn build(self) -> Result<IssuerConfig, String> {
        secure_url("issuer", &self.issuer)?;
        if let Some(uri) = &self.jwks_uri {
            secure_url("jwks_uri", uri)?;
        }
        let algorithms = match self.algorithms {
            None => jwt::ASYMMETRIC.to_vec(),
            Some(names) => names
                .iter()
                .map(|name| {
                    name.parse::<jwt::Algorithm>()
                        .ok()
                        .filter(|alg| jwt::ASYMMETRIC.contains(alg))
                        .ok_or_else(|| format!("issuer {}: algorithm {name:?} is not accepted (only asymmetric ones: RS*, PS*, ES256, ES384, EdDSA)", self.issuer))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if algorithms.is_empty() {
            return Err(format!("issuer {}: algorithms is empty", self.issuer));
        }
        Ok(IssuerConfig {
            issuer: self.issuer,
            jwks_uri: self.jwks_uri,
            algorithms,
            access_token_type: self.access_token_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Arc<Auth>, String> {
        toml::from_str::<RawAuth>(text).map_err(|e| e.to_string())?.build()
    }

    const JWT: &str = r#"
        resource = "https://mcp.example.com/mcp"
        required_scopes = ["mcp:tools"]
        [[issuers]]
        issuer = "https://idp.example.com/realms/mcp"
    "#;

    #[test]
    fn jwt_auth_needs_a_resource_and_serves_its_metadata() {
        let auth = parse(JWT).expect("valid");
        let resource = auth.resource().expect("jwt on");
        assert_eq!(resource.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
        let doc: serde_json::Value = serde_json::from_slice(&resource.document()).expect("json");
        assert_eq!(doc["authorization_servers"][0], "https://idp.example.com/realms/mcp");
        assert_eq!(doc["scopes_supported"][0], "mcp:tools");
        assert!(parse("[[issuers]]\nissuer = \"https://idp\"\n").is_err(), "no resource");
        assert!(parse("resource = \"https://x/mcp\"\n").is_err(), "resource without issuer");
        assert!(parse("").is_err(), "nothing accepted at all");
    }

    #[test]
    fn refuses_insecure_issuers_and_symmetric_algorithms() {
        let with = |issuer: &str| format!("resource = \"https://x/mcp\"\n[[issuers]]\n{issuer}\n");
        assert!(parse(&with("issuer = \"http://idp.example.com\"")).is_err());
        assert!(parse(&with("issuer = \"http://127.0.0.1:8080\"")).is_ok());
        assert!(parse(&with("issuer = \"http://localhost.evil.com\"")).is_err());
        assert!(parse(&with("issuer = \"https://idp\"\njwks_uri = \"http://idp/jwks\"")).is_err());
        assert!(parse(&with("issuer = \"https://idp\"\nalgorithms = [\"HS256\"]")).is_err());
        assert!(parse(&with("issuer = \"https://idp\"\nalgorithms = [\"none\"]")).is_err());
        assert!(parse(&with("issuer = \"https://idp\"\nalgorithms = [\"ES256\"]")).is_ok());
        assert!(parse(&with("issuer = \"https://idp\"\naccess_token_type = true")).is_ok());
        assert!(parse(&with("issuer = \"https://idp\"\nkid = \"x\"")).is_err(), "unknown key");
        let bad_scope =
            "resource = \"https://x/mcp\"\nrequired_scopes = [\"a b\"]\n[[issuers]]\nissuer = \"https://idp\"\n";
        assert!(parse(bad_scope).is_err());
    }
}
