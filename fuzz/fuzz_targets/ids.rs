//! Identifier parsing: `SessionId` (`FromStr` / `Display`), `event_log::EventId`
//! (`parse` / `format`), and the `sessionId` query parameter as `legacy.rs` reads it
//! (`form_urlencoded::parse`, first `sessionId`, then `SessionId`).
//!
//! Input: the bytes as text (lossy UTF-8), used as a session id, as a `Last-Event-ID` and
//! as a query string. The first 12 bytes also give a `(stream, seq)` for a format→parse
//! round trip.
//!
//! Invariants:
//! - no panic;
//! - a `SessionId` parses exactly from 32 hex digits, displays as their lowercase form, and
//!   that display parses back to the same id;
//! - an `EventId` that parses has a non-empty hex prefix and round-trips through `format`
//!   (parse ∘ format is the identity, and format is canonical: formatting again is stable);
//! - `format` then `parse` gives back any prefix (hex) and any numbers;
//! - a `sessionId` found in a query round-trips through a query the gateway would write
//!   (`<path>?sessionId=<id>`, the legacy `endpoint` event).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgw_transport::SessionId;
use mcpgw_transport::event_log::EventId;

fn session_param(query: &str) -> Option<SessionId> {
    let value = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "sessionId").map(|(_, v)| v)?;
    value.parse().ok()
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let text = text.as_ref();

    // SessionId.
    let shaped = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    match text.parse::<SessionId>() {
        Ok(id) => {
            assert!(shaped, "{text:?} parsed as a session id");
            let shown = id.to_string();
            assert_eq!(shown, text.to_ascii_lowercase());
            assert_eq!(shown.parse::<SessionId>(), Ok(id));
        }
        Err(_) => assert!(!shaped, "{text:?} is 32 hex digits yet was refused"),
    }

    // EventId, as read from Last-Event-ID.
    if let Ok((prefix, id)) = EventId::parse(text) {
        assert!(!prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()), "prefix {prefix:?}");
        let wire = id.format(prefix);
        assert_eq!(EventId::parse(&wire), Ok((prefix, id)), "{text:?} -> {wire:?}");
        // What legacy reconnect does next with the prefix.
        let _ = prefix.parse::<SessionId>();
    }

    // EventId, as written.
    if input.len() >= 12 {
        let stream = u32::from_le_bytes(input[..4].try_into().expect("4 bytes"));
        let seq = u64::from_le_bytes(input[4..12].try_into().expect("8 bytes"));
        let prefix: String = input[12..].iter().take(32).map(|b| format!("{:x}", b & 0xf)).collect();
        let prefix = if prefix.is_empty() { "0".to_owned() } else { prefix };
        let id = EventId { stream, seq };
        let wire = id.format(&prefix);
        assert_eq!(EventId::parse(&wire), Ok((prefix.as_str(), id)), "{wire:?}");
    }

    // The sessionId query parameter.
    if let Some(id) = session_param(text) {
        let endpoint = format!("/messages?sessionId={id}");
        let uri: http::Uri = endpoint.parse().expect("the endpoint is a valid URI");
        assert_eq!(session_param(uri.query().unwrap_or("")), Some(id));
    }
});
