//! The header checks: `checks::accepts`, `checks::protocol_version`,
//! `checks::require_json_content_type` and `checks::HostPolicy::check`.
//!
//! Input layout: a header block, one `name: value` per LF-separated line (a trailing CR is
//! dropped), so a seed is what a client sends. Lines whose name or value `http` refuses are
//! skipped. Three pseudo-headers steer the run instead of being added to the map:
//! `:authority` sets the request URI to `http://<value>/mcp` (absolute-form), and
//! `:allow-host` / `:allow-origin` add entries to a third, custom `HostPolicy`.
//!
//! Invariants:
//! - no panic, and every refusal maps to a response;
//! - no `Accept` means both formats; adding `Accept: */*` allows both; adding
//!   `Accept: application/json` allows JSON;
//! - `protocol_version` is `Ok(None)` exactly when the header is absent, and a version it
//!   returns is a known one equal to the (trimmed) header;
//! - `require_json_content_type` accepts only an `application/json` media type;
//! - `HostPolicy::default()` allows everything;
//! - `HostPolicy::loopback()` never lets through a browser-shaped Host or Origin whose host
//!   is not a loopback name, and never refuses a request whose Host and Origin are
//!   browser-shaped and loopback. Browser-shaped means what a browser sends: a Host of
//!   `host[:port]` (RFC 9110), an Origin of `scheme://host[:port]`. Other shapes (userinfo,
//!   paths, fragments...) cannot come from a page, so DNS-rebinding protection does not
//!   depend on them; they only have to not panic.
#![no_main]

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use libfuzzer_sys::fuzz_target;
use mcpgw_transport::checks::{self, HostPolicy, SESSION_PROTOCOL_VERSIONS};

const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

fn is_loopback(host: &str) -> bool {
    LOOPBACK.iter().any(|l| l.eq_ignore_ascii_case(host))
}

/// The host of a browser-shaped Host header: `host[:port]` as RFC 9110 has it, a bracketed
/// IPv6 literal or a reg-name / IPv4 address, then an optional `:` and digits.
fn browser_host(value: &str) -> Option<&str> {
    let (host, rest) = if value.starts_with('[') {
        let end = value.find(']')?;
        let inner = &value[1..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        value.split_at(end + 1)
    } else {
        let end = value.find(':').unwrap_or(value.len());
        let host = &value[..end];
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if host.is_empty() || !host.bytes().all(name_byte) {
            return None;
        }
        value.split_at(end)
    };
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Some(host),
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => Some(host),
        _ => None,
    }
}

/// The host of a browser-shaped Origin: `scheme://host[:port]` and nothing else (what a
/// browser serializes; never a path, query, fragment or userinfo).
fn browser_origin_host(value: &str) -> Option<&str> {
    let (scheme, authority) = value.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    browser_host(authority)
}

fn with(headers: &HeaderMap, name: HeaderName, value: &'static str) -> HeaderMap {
    let mut h = headers.clone();
    h.append(name, HeaderValue::from_static(value));
    h
}

fuzz_target!(|input: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut authority: Option<&[u8]> = None;
    let mut custom = HostPolicy { allowed_hosts: Some(Vec::new()), allowed_origins: Some(Vec::new()) };
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().skip(1).position(|&b| b == b':').map(|i| i + 1) else { continue };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match name {
            b":authority" => authority = Some(value),
            b":allow-host" => custom.allowed_hosts.get_or_insert_default().push(String::from_utf8_lossy(value).into()),
            b":allow-origin" => {
                custom.allowed_origins.get_or_insert_default().push(String::from_utf8_lossy(value).into())
            }
            _ => {
                let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
                    continue;
                };
                headers.append(name, value);
            }
        }
    }

    // Accept.
    let got = checks::accepts(&headers);
    if !headers.contains_key(header::ACCEPT) {
        assert!(got.json && got.sse, "no Accept must allow both: {got:?}");
    }
    let any = checks::accepts(&with(&headers, header::ACCEPT, "*/*"));
    assert!(any.json && any.sse, "Accept: */* added, yet {any:?}");
    assert!(checks::accepts(&with(&headers, header::ACCEPT, "application/json")).json);

    // MCP-Protocol-Version.
    let present = headers.get(&checks::MCP_PROTOCOL_VERSION);
    match checks::protocol_version(&headers) {
        Ok(None) => assert!(present.is_none()),
        Ok(Some(v)) => {
            assert!(SESSION_PROTOCOL_VERSIONS.contains(&v));
            let sent = present.expect("a version from a header").to_str().expect("a version is ASCII");
            assert_eq!(sent.trim(), v.as_str());
        }
        Err(e) => {
            assert!(present.is_some(), "refused an absent version: {e:?}");
            let _ = e.into_response();
        }
    }

    // Content-Type.
    if let Err(e) = checks::require_json_content_type(&headers) {
        let _ = e.into_response();
    } else {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        assert_eq!(media.as_deref(), Some("application/json"));
    }

    // Host and Origin.
    let uri = match authority {
        Some(a) => {
            let Ok(uri) = Uri::try_from([&b"http://"[..], a, b"/mcp"].concat()) else { return };
            uri
        }
        None => Uri::from_static("/mcp"),
    };
    let mut request = Request::builder().uri(uri).body(()).expect("a request");
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();

    assert!(HostPolicy::default().check(&parts).is_ok(), "the default policy refused");
    if let Err(e) = custom.check(&parts) {
        let _ = e.into_response();
    }

    // What the loopback policy looks at: the first Host if it is text, else the URI's
    // authority; every Origin is looked at only through the first.
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let origin = parts.headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or(""));
    match HostPolicy::loopback().check(&parts) {
        Ok(()) => {
            if let Some(h) = browser_host(host) {
                assert!(is_loopback(h), "loopback policy let Host {host:?} (host {h:?}) through");
            }
            if let Some(h) = origin.and_then(browser_origin_host) {
                assert!(is_loopback(h), "loopback policy let Origin {origin:?} (host {h:?}) through");
            }
        }
        Err(e) => {
            let host_ok = browser_host(host).is_some_and(is_loopback);
            let origin_ok = origin.is_none_or(|o| browser_origin_host(o).is_some_and(is_loopback));
            assert!(!(host_ok && origin_ok), "loopback policy refused Host {host:?} Origin {origin:?}: {e:?}");
            let _ = e.into_response();
        }
    }
});
