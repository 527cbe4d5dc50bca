//! `message::parse` on an arbitrary POST body, then `method_label` / `is_initialize` on what
//! it returns, and the error mapping on what it refuses.
//!
//! Invariants:
//! - no panic, whatever the bytes;
//! - a refusal is a 400 (-32700 for malformed JSON, -32600 for JSON that is not JSON-RPC,
//!   -32602 for a request of a method rmcp knows whose params do not read as its type);
//! - a batch is never empty, and a body whose first non-blank byte is `[` parses as a batch;
//! - what parses serializes again (that is what is forwarded upstream) and that JSON parses
//!   back to a message with the same label.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgw_transport::message::{self, Posted};

const LABELS: &[&str] = &[
    "ping",
    "initialize",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
    "other",
    "notification",
    "response",
    "error",
];

fuzz_target!(|body: &[u8]| {
    let posted = match message::parse(body) {
        Ok(posted) => posted,
        Err(e) => {
            let (status, code) = e.status_and_code();
            assert_eq!(status, http::StatusCode::BAD_REQUEST, "{e:?}");
            assert!([-32700, -32600, -32602].contains(&code), "{e:?} -> {code}");
            let _ = e.into_response();
            return;
        }
    };
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let messages = match posted {
        Posted::Single(m) => {
            assert!(!batch, "a body starting with '[' parsed as a single message");
            vec![m]
        }
        Posted::Batch(b) => {
            assert!(batch, "a body not starting with '[' parsed as a batch");
            assert!(!b.is_empty(), "an empty batch was accepted");
            b
        }
    };
    for m in &messages {
        let label = message::method_label(m);
        assert!(LABELS.contains(&label), "label {label:?} is not from the fixed set");
        let init = message::is_initialize(m);
        assert_eq!(init, label == "initialize");

        // Forwarding re-serializes the message: what we accepted must survive that.
        let json = serde_json::to_vec(m).expect("an accepted message serializes");
        match message::parse(&json) {
            Ok(Posted::Single(again)) => {
                assert_eq!(message::method_label(&again), label, "{}", String::from_utf8_lossy(&json))
            }
            other => panic!("re-serialized message does not parse back: {other:?}\n{}", String::from_utf8_lossy(&json)),
        }
    }
});
