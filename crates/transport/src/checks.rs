//! Header checks shared by both transports: Accept, Content-Type, MCP-Protocol-Version,
//! Host and Origin (DNS rebinding protection), and CORS.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

use crate::error::Error;
use crate::version::ProtocolVersion;

/// `Mcp-Session-Id`.
pub static MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub static MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Last-Event-ID`.
pub static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// `X-Forwarded-Prefix`, set by reverse proxies that mount us under a path.
pub static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Protocol versions a session can be negotiated at, oldest first.
pub const SESSION_PROTOCOL_VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::V2024_11_05,
    ProtocolVersion::V2025_03_26,
    ProtocolVersion::V2025_06_18,
    ProtocolVersion::V2025_11_25,
];

/// The version assumed when a client sends no `MCP-Protocol-Version` and none is known.
pub const DEFAULT_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V2025_03_26;

/// Which reply formats the client's `Accept` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    /// `application/json` (or a wildcard that covers it).
    pub json: bool,
    /// `text/event-stream` (or a wildcard that covers it).
    pub sse: bool,
}

/// Reads `Accept` leniently: no header, `*/*`, or a single type all work, because real
/// clients send each of those.
pub fn accepts(headers: &HeaderMap) -> Accepts {
    let mut seen = false;
    let mut out = Accepts { json: false, sse: false };
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            seen = true;
            let refused = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            if refused {
                continue;
            }
            match media.as_str() {
                "*/*" => {
                    out.json = true;
                    out.sse = true;
                }
                "application/*" | "application/json" => out.json = true,
                "text/*" | "text/event-stream" => out.sse = true,
                _ => {}
            }
        }
    }
    if seen { out } else { Accepts { json: true, sse: true } }
}

/// A POST body must be `application/json` (parameters such as `charset` are fine).
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if ok { Ok(()) } else { Err(Error::UnsupportedMediaType) }
}

/// The `MCP-Protocol-Version` header of a session's request (or of one that opens a
/// session), if present, parsed once; a version a session cannot be negotiated at (unknown,
/// or of the 2026-07-28 era, whose requests are stateless: see [`crate::modern`]) is refused.
pub fn protocol_version(headers: &HeaderMap) -> Result<Option<ProtocolVersion>, Error> {
    let Some(value) = headers.get(&MCP_PROTOCOL_VERSION) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    match text.parse::<ProtocolVersion>() {
        Ok(version) if SESSION_PROTOCOL_VERSIONS.contains(&version) => Ok(Some(version)),
        _ => Err(Error::UnsupportedProtocolVersion(text.chars().take(64).collect())),
    }
}

/// Who may reach the gateway: the Host names it answers to and the Origins it serves.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Host names (no port) the gateway answers to; `None` allows any.
    pub allowed_hosts: Option<Vec<String>>,
    /// Origins allowed: a full origin (`https://app.example:8443`) or a bare host name
    /// (`localhost`, any scheme and port); `None` allows any. A request without `Origin`
    /// is always allowed (it is not from a browser).
    pub allowed_origins: Option<Vec<String>>,
}

impl HostPolicy {
    /// The policy for a gateway bound to loopback: only loopback names, so a page on
    /// another site cannot reach it through DNS rebinding.
    pub fn loopback() -> Self {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "[::1]".to_owned()];
        Self { allowed_hosts: Some(names.clone()), allowed_origins: Some(names) }
    }

    /// Refuses a request whose Host or Origin is not allowed (403), before any dispatch.
    pub fn check(&self, parts: &Parts) -> Result<(), Error> {
        if let Some(allowed) = &self.allowed_hosts {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .unwrap_or("");
            let name = host_name(host);
            // A Host with userinfo or spaces is no host a browser sends; `localhost:1@evil`
            // must not pass as `localhost`.
            let plain = !host.contains(['@', ' ', '\\']);
            if !plain || !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                return Err(Error::Forbidden(format!("Invalid Host: {}", printable(host))));
            }
        }
        if let (Some(allowed), Some(origin)) = (&self.allowed_origins, parts.headers.get(header::ORIGIN)) {
            let origin = origin.to_str().unwrap_or("");
            let name = origin
                .split_once("://")
                .filter(|(_, rest)| !rest.contains(['@', ' ', '\\']))
                .map(|(_, rest)| host_name(rest))
                .unwrap_or("");
            let ok = allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin) || a.eq_ignore_ascii_case(name));
            if !ok {
                return Err(Error::Forbidden(format!("Invalid Origin: {}", printable(origin))));
            }
        }
        Ok(())
    }
}

/// The host name of `host[:port]`, keeping IPv6 brackets.
fn host_name(authority: &str) -> &str {
    let authority = authority.split('/').next().unwrap_or("");
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Client text echoed in an error, bounded and stripped of control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}

static EXPOSE: HeaderValue = HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate");
static ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, DELETE, OPTIONS");
static ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "mcp-session-id, mcp-protocol-version, last-event-id, authorization, content-type, accept, mcp-method, mcp-name",
);

/// Adds the CORS headers every response carries, errors included, so browser clients such
/// as the MCP Inspector can read `Mcp-Session-Id` and error bodies.
pub fn add_cors(request: &HeaderMap, response: &mut HeaderMap) {
    let origin = request.get(header::ORIGIN).cloned().unwrap_or(HeaderValue::from_static("*"));
    response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE.clone());
    response.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The headers of a preflight answer: every method we serve, and the headers MCP clients
/// send (echoing what the browser asked for, so `Mcp-Param-*` headers pass too).
pub fn add_preflight(request: &HeaderMap, response: &mut HeaderMap) {
    add_cors(request, response);
    response.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS.clone());
    let asked = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.unwrap_or_else(|| ALLOW_HEADERS.clone()));
    response.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn accept_is_lenient() {
        let both = Accepts { json: true, sse: true };
        assert_eq!(accepts(&headers(&[])), both);
        assert_eq!(accepts(&headers(&[("accept", "*/*")])), both);
        assert_eq!(accepts(&headers(&[("accept", "application/json, text/event-stream")])), both);
        assert_eq!(accepts(&headers(&[("accept", "application/json")])), Accepts { json: true, sse: false });
        assert_eq!(accepts(&headers(&[("accept", "text/event-stream")])), Accepts { json: false, sse: true });
        assert_eq!(accepts(&headers(&[("accept", "text/html")])), Accepts { json: false, sse: false });
        assert_eq!(
            accepts(&headers(&[("accept", "application/json;q=0, text/event-stream")])),
            Accepts { json: false, sse: true }
        );
    }

    #[test]
    fn content_type_allows_parameters() {
        assert!(require_json_content_type(&headers(&[("content-type", "application/json; charset=utf-8")])).is_ok());
        assert!(require_json_content_type(&headers(&[("content-type", "text/plain")])).is_err());
        assert!(require_json_content_type(&headers(&[])).is_err());
    }

    #[test]
    fn protocol_version_must_be_known() {
        assert_eq!(protocol_version(&headers(&[])).ok(), Some(None));
        assert_eq!(
            protocol_version(&headers(&[("mcp-protocol-version", "2025-06-18")])).ok(),
            Some(Some(ProtocolVersion::V2025_06_18))
        );
        assert!(protocol_version(&headers(&[("mcp-protocol-version", "1999-01-01")])).is_err());
        assert!(
            protocol_version(&headers(&[("mcp-protocol-version", "2026-07-28")])).is_err(),
            "not a session version"
        );
    }

    fn parts(host: &str, origin: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/mcp").header("host", host);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn loopback_policy_blocks_rebinding() {
        let p = HostPolicy::loopback();
        assert!(p.check(&parts("localhost:8080", None)).is_ok());
        assert!(p.check(&parts("127.0.0.1:1", Some("http://localhost:6274"))).is_ok());
        assert!(p.check(&parts("[::1]:9", None)).is_ok());
        assert!(p.check(&parts("evil.example.com", None)).is_err());
        assert!(p.check(&parts("localhost:80@evil.example", None)).is_err());
        assert!(p.check(&parts("127.0.0.1:1", Some("http://localhost:1@evil.example"))).is_err());
        assert!(p.check(&parts("127.0.0.1:8080", Some("https://evil.example"))).is_err());
        assert!(HostPolicy::default().check(&parts("evil.example.com", Some("https://x"))).is_ok());
    }
}
