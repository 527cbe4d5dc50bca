//! The audit line: one log line per tool call, written from the core's [`CallRecord`].
//!
//! It is formatted here, straight into the log's batched writer, rather than as a
//! `tracing` event: the generic formatter (every field through `fmt::Debug`, the span
//! scope looked up) cost about 4 µs per call on a busy gateway, more than the rest of an
//! `echo` call's handling by mcpgw. The line looks like the other log lines of the chosen
//! `--log-format` (the same timestamp, level and target, with the fields of a `tracing`
//! event) and obeys the same filter: `MCPGW_LOG`'s directive for the target [`TARGET`] at
//! `info` decides, once at start, whether it is written.

use std::fmt::Write as _;
use std::io::Stderr;

use mcpgw_core::audit::{CallObserver, CallRecord, Outcome};
use serde::Serialize;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

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
        self.writer.append(format(record, self.layout).as_bytes());
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
fn format(record: &CallRecord<'_>, layout: Layout) -> String {
    let fields = Fields::of(record);
    let mut line = String::with_capacity(256);
    // Formatting into a `String` cannot fail, nor can serializing these fields.
    let _ = match layout {
        Layout::Json => json(&mut line, &fields),
        Layout::Text { ansi } => text(&mut line, &fields, ansi),
    };
    line.push('\n');
    line
}

/// `{"timestamp":…,"level":"INFO","fields":{…},"target":"mcpgw::audit"}`.
fn json(line: &mut String, fields: &Fields<'_>) -> std::fmt::Result {
    line.push_str("{\"timestamp\":\"");
    SystemTime.format_time(&mut tracing_subscriber::fmt::format::Writer::new(line))?;
    line.push_str("\",\"level\":\"INFO\",\"fields\":");
    line.push_str(&serde_json::to_string(fields).map_err(|_| std::fmt::Error)?);
    line.push_str(",\"target\":\"");
    line.push_str(TARGET);
    line.push_str("\"}");
    Ok(())
}

/// `<timestamp>  INFO mcpgw::audit: tool call identity="…" …`: strings quoted and escaped
/// (an identity may hold spaces), numbers bare.
fn text(line: &mut String, fields: &Fields<'_>, ansi: bool) -> std::fmt::Result {
    let (dim, green, italic, reset) =
        if ansi { ("\x1b[2m", "\x1b[32m", "\x1b[3m", "\x1b[0m") } else { ("", "", "", "") };
    line.push_str(dim);
    SystemTime.format_time(&mut tracing_subscriber::fmt::format::Writer::new(line))?;
    write!(line, "{reset} {green} INFO{reset} {dim}{TARGET}:{reset} {MESSAGE}")?;
    let mut field =
        |name: &str, value: &dyn std::fmt::Debug| write!(line, " {italic}{name}{reset}{dim}={reset}{value:?}");
    field("identity", &fields.identity)?;
    field("session", &fields.session)?;
    field("upstream", &fields.upstream)?;
    field("tool", &fields.tool)?;
    if let Some(called) = fields.called {
        field("called", &called)?;
    }
    field("outcome", &fields.outcome)?;
    if let Some(code) = fields.code {
        field("code", &code)?;
    }
    field("duration_ms", &fields.duration_ms)?;
    if let Some(arguments) = &fields.arguments {
        field("arguments", arguments)?;
    }
    Ok(())
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
        let line = format(&record(Outcome::Error(-32602), Some(&arguments)), Layout::Json);
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
        let parsed: Value = serde_json::from_str(&format(&plain, Layout::Json)).expect("JSON");
        let fields = parsed["fields"].as_object().expect("fields");
        assert_eq!(fields["upstream"], "-", "no upstream: the call named no tool the caller has");
        for absent in ["called", "code", "arguments"] {
            assert!(!fields.contains_key(absent), "{absent} in {fields:?}");
        }
    }

    #[test]
    fn a_text_line_quotes_its_strings() {
        let line = format(&record(Outcome::Timeout, None), Layout::Text { ansi: false });
        let (timestamp, rest) = line.split_once(' ').expect("a timestamp first");
        assert!(timestamp.ends_with('Z'), "{timestamp}");
        assert_eq!(
            rest,
            " INFO mcpgw::audit: tool call identity=\"alice \\\"a\\\" (https://idp)\" session=\"s1\" upstream=\"files\" \
             tool=\"read\" called=\"files_read\" outcome=\"timeout\" duration_ms=1234.567\n"
        );
        let coloured = format(&record(Outcome::Ok, None), Layout::Text { ansi: true });
        assert!(coloured.contains("\x1b[32m INFO\x1b[0m"), "{coloured:?}");
    }
}
