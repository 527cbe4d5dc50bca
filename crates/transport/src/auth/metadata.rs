//! The protected resource (RFC 9728): the metadata document a client discovers the
//! authorization servers from, where it is served, and the `WWW-Authenticate` challenges
//! that point to it (RFC 6750 §3, MCP `basic/authorization`).

use bytes::Bytes;
use http::{HeaderValue, Uri};
use serde_json::json;

/// The path of the metadata document; the resource's own path follows it in the
/// path-suffixed form (`/.well-known/oauth-protected-resource/mcp`).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The gateway as an OAuth protected resource.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    metadata_url: String,
    scopes: Vec<String>,
    document: Bytes,
}

impl ProtectedResource {
    /// The resource at `resource` (the public URL clients use, e.g.
    /// `https://mcp.example.com/mcp`), whose tokens come from `authorization_servers` and
    /// must carry `scopes`.
    pub fn new(resource: &str, authorization_servers: &[String], scopes: &[String]) -> Result<Self, String> {
        let uri: Uri = resource.parse().map_err(|e| format!("resource {resource:?}: {e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("resource {resource:?} is not an absolute URL"));
        };
        if uri.query().is_some() || resource.contains('#') {
            return Err(format!("resource {resource:?} has a query or fragment (RFC 8707 forbids them)"));
        }
        let path = uri.path().trim_end_matches('/');
        let metadata_url = format!("{scheme}://{authority}{WELL_KNOWN}{path}");
        let document = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "mcpgw",
        });
        Ok(Self { metadata_url, scopes: scopes.to_vec(), document: Bytes::from(document.to_string()) })
    }

    /// The URL of the metadata document, as challenges name it.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The metadata document (JSON).
    pub fn document(&self) -> Bytes {
        self.document.clone()
    }

    /// The challenge of a 401 (`error`: the RFC 6750 code, when a token was sent) or of a
    /// 403 (`insufficient_scope`): the metadata URL, and the scopes to ask for.
    pub(crate) fn challenge(&self, error: Option<&str>) -> HeaderValue {
        let mut value = String::from("Bearer ");
        if let Some(error) = error {
            value.push_str(&format!("error=\"{error}\", "));
        }
        value.push_str(&format!("resource_metadata=\"{}\"", self.metadata_url));
        if !self.scopes.is_empty() {
            value.push_str(&format!(", scope=\"{}\"", self.scopes.join(" ")));
        }
        // Checked when configured: the URL parsed, and scopes are validated as tokens.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

/// Whether a request path asks for the metadata: the bare well-known path, or any
/// path-suffixed form of it.
pub fn is_metadata_path(path: &str) -> bool {
    path.strip_prefix(WELL_KNOWN).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        let r = ProtectedResource::new("https://mcp.example.com/mcp", &["https://idp".into()], &[]).expect("ok");
        assert_eq!(r.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
        let root = ProtectedResource::new("https://mcp.example.com/", &[], &[]).expect("ok");
        assert_eq!(root.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource");
        assert!(ProtectedResource::new("/mcp", &[], &[]).is_err());
        assert!(ProtectedResource::new("https://x/mcp?a=1", &[], &[]).is_err());
    }

    #[test]
    fn challenges_name_the_metadata_and_the_scopes() {
        let r = ProtectedResource::new("https://x/mcp", &[], &["a".into(), "b".into()]).expect("ok");
        assert_eq!(
            r.challenge(None),
            r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource/mcp", scope="a b""#
        );
        assert!(
            r.challenge(Some("insufficient_scope"))
                .to_str()
                .expect("ascii")
                .starts_with(r#"Bearer error="insufficient_scope", resource_metadata=""#)
        );
    }

    #[test]
    fn metadata_paths() {
        assert!(is_metadata_path("/.well-known/oauth-protected-resource"));
        assert!(is_metadata_path("/.well-known/oauth-protected-resource/mcp"));
        assert!(!is_metadata_path("/.well-known/oauth-protected-resourcex"));
    }
}
