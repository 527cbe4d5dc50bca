//! The audit line: one log line per tool call, written from the core's [`CallRecord`].
//!
//! It is formatted here, straight into the log's batched writer, rather than as a
//! `tracing` event: the generic formatter (every field through `fmt::Debug`, the span
//! scope looked up) cost about 4 µs per call on a busy gateway, more than the rest of an
//! `echo` call's handling by mcpgw. The line looks like the other log lines of the chosen
//! `--log-format` (the same timestamp, level and target, with the fields of a `tracing`
//! event) and obeys the same filter: `MCPGW_LOG`'s directive for the target [`TARGET`] at
//! `info` decides, once at start, whether it is written.

use std::io::{Stderr, Write as _};

use mcpgw_core::audit::{CallObserver, CallRecord, Outcome};
use serde::Serialize;

use crate::log::Writer;

/// The log target of the audit lines.
pub(crate) const TARGET: &str = "mcpgw::audit";

/// The lines' message.
const MESSAGE: &str = "tool call";

/// How the lines are laid out: as the rest of the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `tracing-subscriber`'s full text format; `ansi`: coloured for a terminal.
    Text { ansi: bool },
    /// One JSON object per line, as `tracing-subscriber`'s JSON format has it.
    Json,
}

/// Writes an audit line for every call it is told of.
pub(crate) struct AuditLog {
    writer: Writer<Stderr>,
    layout: Layout,
}

impl AuditLog {
    /// An audit log to `writer`, if the log's filter lets the target's `info` lines through.
    /// Called after the log's subscriber is installed: it asks that subscriber.
    pub(crate) fn if_enabled(writer: Writer<Stderr>, layout: Layout) -> Option<Self> {
        tracing::enabled!(target: TARGET, tracing::Level::INFO).then_some(Self { writer, layout })
    }
}

impl CallObserver for AuditLog {
    fn tool_call(&self, record: &CallRecord<'_>) {
        self.writer.append(&format(record, self.layout));
    }
}

/// A record's fields, in the order the line gives them.
#[derive(Serialize)]
struct Fields<'a> {
    message: &'static str,
    identity: &'a str,
    session: &'a str,
    upstream: &'a str,
    tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    called: Option<&'a str>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    duration_ms: f64,
    /// As a JSON string: a log line's fields are flat.
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<String>,
}

impl<'a> Fields<'a> {
    fn of(record: &CallRecord<'a>) -> Self {
        Self {
            message: MESSAGE,
            identity: record.identity,
            session: record.session,
            upstream: record.upstream.unwrap_or("-"),
            tool: record.tool,
            called: record.called,
            outcome: record.outcome.as_str(),
            code: match record.outcome {
                Outcome::Error(code) => Some(code),
                _ => None,
            },
            // Whole microseconds: `0.042`, not `0.042318000000000005`.
            duration_ms: record.duration.as_micros() as f64 / 1000.0,
            arguments: record.arguments.map(|a| serde_json::Value::Object(a.clone()).to_string()),
        }
    }
}

/// The line for `record`, with its newline.
fn format(record: &CallRecord<'_>, layout: Layout) -> Vec<u8> {
    let fields = Fields::of(record);
    let mut line = Vec::with_capacity(256);
    match layout {
        Layout::Json => json(&mut line, &fields),
        Layout::Text { ansi } => text(&mut line, &fields, ansi),
    }
    line.push(b'\n');
    line
}

/// `{"timestamp":…,"level":"INFO","fields":{…},"target":"mcpgw::audit"}`.
fn json(line: &mut Vec<u8>, fields: &Fields<'_>) {
    line.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(line);
    line.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":");
    // Serializing these fields into memory cannot fail.
    let _ = serde_json::to_writer(&mut *line, fields);
    line.extend_from_slice(b",\"target\":\"");
    line.extend_from_slice(TARGET.as_bytes());
    line.extend_from_slice(b"\"}");
}

/// `<timestamp>  INFO mcpgw::audit: tool call identity="…" …`: strings quoted and escaped
/// (an identity may hold spaces), numbers bare.
fn text(line: &mut Vec<u8>, fields: &Fields<'_>, ansi: bool) {
    let (dim, green, italic, reset) =
        if ansi { ("\x1b[2m", "\x1b[32m", "\x1b[3m", "\x1b[0m") } else { ("", "", "", "") };
    line.extend_from_slice(dim.as_bytes());
    timestamp(line);
    for part in [reset, " ", green, " INFO", reset, " ", dim, TARGET, ":", reset, " ", MESSAGE] {
        line.extend_from_slice(part.as_bytes());
    }
    let mut field = |name: &str, value: Shown<'_>| {
        for part in [" ", italic, name, reset, dim, "=", reset] {
            line.extend_from_slice(part.as_bytes());
        }
        match value {
            Shown::Str(s) => quoted(line, s),
            Shown::Number(n) => line.extend_from_slice(n.as_bytes()),
        }
    };
    field("identity", Shown::Str(fields.identity));
    field("session", Shown::Str(fields.session));
    field("upstream", Shown::Str(fields.upstream));
    field("tool", Shown::Str(fields.tool));
    if let Some(called) = fields.called {
        field("called", Shown::Str(called));
    }
    field("outcome", Shown::Str(fields.outcome));
    if let Some(code) = fields.code {
        field("code", Shown::Number(&code.to_string()));
    }
    field("duration_ms", Shown::Number(&fields.duration_ms.to_string()));
    if let Some(arguments) = &fields.arguments {
        field("arguments", Shown::Str(arguments));
    }
}

/// A text field's value.
enum Shown<'a> {
    Str(&'a str),
    Number(&'a str),
}

/// `s` in double quotes, escaped as Rust's `Debug` escapes it; printable ASCII without `"`
/// or `\` (every name and id, most identities) is copied as it is.
fn quoted(line: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
        line.push(b'"');
        line.extend_from_slice(s.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{s:?}");
    }
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Now, as the log's other lines give it: RFC 3339 in UTC with microseconds
/// (`2026-12-02T03:57:42.778463Z`). The date and time of day are formatted once a second.
fn timestamp(line: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() {
            *second = since.as_secs();
            *text = chrono::DateTime::<chrono::Utc>::from(now).format("%Y-%m-%dT%H:%M:%S").to_string();
        }
        line.extend_from_slice(text.as_bytes());
    });
    let _ = write!(line, ".{:06}Z", since.subsec_micros());
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rmcp::model::JsonObject;
    use serde_json::{Value, json};

    use super::*;

    fn record<'a>(outcome: Outcome, arguments: Option<&'a JsonObject>) -> CallRecord<'a> {
        CallRecord {
            identity: "alice \"a\" (https://idp)",
            session: "s1",
            upstream: Some("files"),
            tool: "read",
            called: Some("files_read"),
            outcome,
            duration: Duration::from_micros(1_234_567),
            arguments,
        }
    }

    #[test]
    fn a_json_line_has_the_shape_of_the_other_json_lines() {
        let arguments: JsonObject = serde_json::from_str(r#"{"path": "/a"}"#).expect("object");
        let line =
            String::from_utf8(format(&record(Outcome::Error(-32602), Some(&arguments)), Layout::Json)).expect("utf-8");
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1, "{line}");
        let parsed: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!((&parsed["level"], &parsed["target"]), (&json!("INFO"), &json!(TARGET)));
        let timestamp = parsed["timestamp"].as_str().expect("a timestamp");
        assert!(timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T', "{timestamp}");
        let fields = &parsed["fields"];
        assert_eq!(fields["message"], MESSAGE);
        assert_eq!(fields["identity"], "alice \"a\" (https://idp)");
        assert_eq!(
            (&fields["upstream"], &fields["tool"], &fields["called"]),
            (&json!("files"), &json!("read"), &json!("files_read"))
        );
        assert_eq!(
            (&fields["outcome"], &fields["code"], &fields["duration_ms"]),
            (&json!("error"), &json!(-32602), &json!(1234.567))
        );
        let logged: Value = serde_json::from_str(fields["arguments"].as_str().expect("a string")).expect("JSON");
        assert_eq!(logged, json!({"path": "/a"}));
    }

    #[test]
    fn a_json_line_leaves_out_what_the_call_has_not() {
        let mut plain = record(Outcome::Ok, None);
        (plain.upstream, plain.called) = (None, None);
        let parsed: Value = serde_json::from_slice(&format(&plain, Layout::Json)).expect("JSON");
        let fields = parsed["fields"].as_object().expect("fields");
        assert_eq!(fields["upstream"], "-", "no upstream: the call named no tool the caller has");
        for absent in ["called", "code", "arguments"] {
            assert!(!fields.contains_key(absent), "{absent} in {fields:?}");
        }
    }

    #[test]
    fn a_text_line_quotes_its_strings() {
        let line =
            String::from_utf8(format(&record(Outcome::Timeout, None), Layout::Text { ansi: false })).expect("utf-8");
        let (timestamp, rest) = line.split_once(' ').expect("a timestamp first");
        assert!(timestamp.ends_with('Z'), "{timestamp}");
        assert_eq!(
            rest,
            " INFO mcpgw::audit: tool call identity=\"alice \\\"a\\\" (https://idp)\" session=\"s1\" upstream=\"files\" \
             tool=\"read\" called=\"files_read\" outcome=\"timeout\" duration_ms=1234.567\n"
        );
        let coloured =
            String::from_utf8(format(&record(Outcome::Ok, None), Layout::Text { ansi: true })).expect("utf-8");
        assert!(coloured.contains("\x1b[32m INFO\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn the_timestamp_is_rfc_3339_utc_with_microseconds_and_now() {
        for _ in 0..3 {
            let mut line = Vec::new();
            timestamp(&mut line);
            let text = String::from_utf8(line).expect("utf-8");
            assert_eq!(text.len(), "2026-12-02T03:57:42.778463Z".len(), "{text}");
            let parsed = chrono::DateTime::parse_from_rfc3339(&text).expect("RFC 3339");
            let off = (chrono::Utc::now() - parsed.to_utc()).num_milliseconds();
            assert!((0..1000).contains(&off), "{text} is {off} ms from now");
        }
    }

    #[test]
    fn only_what_needs_it_is_escaped() {
        let mut line = Vec::new();
        for s in ["files_read", "a \"b\"", "tab\there", "é"] {
            quoted(&mut line, s);
            line.push(b' ');
        }
        assert_eq!(String::from_utf8(line).expect("utf-8"), "\"files_read\" \"a \\\"b\\\"\" \"tab\\there\" \"é\" ");
    }
}
