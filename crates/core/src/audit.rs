//! The audit of tool calls: one record per call saying who called which tool of which
//! upstream, how it ended and how long it took, handed to each [`CallObserver`] (the
//! binary's audit log line and its metrics). Arguments are in the record only when
//! configured: they may hold what the caller would not want in a log.
//!
//! A call is recorded where its outcome is known, in the proxy's `call_tool`, by a guard:
//! a call whose handler is dropped before it finished (the session ended under it) is
//! still recorded, as cancelled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolResponse, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

/// The header of a stateless request's parts that names its caller for the audit (the
/// transport's `modern::CALLER_HEADER`: the crates share no code). Its value is
/// percent-encoded: bytes outside visible ASCII, and `%`, as `%XX`.
pub const CALLER_HEADER: &str = "mcpgw-caller";

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result.
    Ok,
    /// A result with `isError`: the tool ran and reported a failure.
    ToolError,
    /// A 2026-07-28 input-required result: the call waits for its client's answers.
    InputRequired,
    /// A JSON-RPC error, with its code.
    Error(i32),
    /// The client cancelled it, or its session ended under it.
    Cancelled,
    /// It passed its upstream's deadline.
    Timeout,
}

impl Outcome {
    /// Its name, as logs and metrics give it (an error's code aside).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::InputRequired => "input_required",
            Outcome::Error(_) => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Timeout => "timeout",
        }
    }
}

/// One finished call, as the observers see it.
#[derive(Debug, Clone, Copy)]
pub struct CallRecord<'a> {
    /// Who called (`anonymous` without authentication).
    pub identity: &'a str,
    /// The session id (`stateless` for a 2026-07-28 request).
    pub session: &'a str,
    /// The upstream's name; `None`: the call named no tool the session has.
    pub upstream: Option<&'a str>,
    /// The tool, by the upstream's own name (by the name called when it was not found).
    pub tool: &'a str,
    /// The name the client called, when it is not `tool` (prefixed, or renamed by policy).
    pub called: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
    /// The call's arguments, only with `[audit] arguments = true`.
    pub arguments: Option<&'a JsonObject>,
}

/// Sees every tool call when it ends (the binary counts them).
pub trait CallObserver: Send + Sync {
    /// One call ended.
    fn tool_call(&self, record: &CallRecord<'_>);
}

/// How calls are audited: whether the records carry arguments, and who is told.
#[derive(Clone, Default)]
pub struct Audit {
    /// Put each call's arguments in its record.
    pub arguments: bool,
    /// Told of every call, in this order.
    pub observers: Vec<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("arguments", &self.arguments).finish_non_exhaustive()
    }
}

/// Where a server's calls come from, for the audit: a session's caller (by name) and id, or
/// the modern hub's (whose callers come with each request).
#[derive(Debug, Clone)]
pub struct Origin {
    /// The caller's name (`anonymous` without authentication).
    pub name: Arc<str>,
    /// The session id.
    pub session: Arc<str>,
}

impl Origin {
    /// The caller of the hub's requests, until a request names its own.
    pub(crate) fn stateless() -> Self {
        Self { name: "anonymous".into(), session: "stateless".into() }
    }

    /// The caller of this request: the session's, or for the hub the one its parts name.
    pub(crate) fn of(&self, ctx: &RequestContext<RoleServer>, stateless: bool) -> Self {
        if !stateless {
            return self.clone();
        }
        let named = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get(CALLER_HEADER))
            .and_then(|v| v.to_str().ok())
            // Most names have no escape: copied once, not decoded into a `String` first.
            .map(|v| if v.contains('%') { Arc::from(decode(v)) } else { Arc::from(v) });
        Self { name: named.unwrap_or_else(|| self.name.clone()), session: self.session.clone() }
    }
}

/// A value of [`CALLER_HEADER`], decoded (a broken escape is kept as it is).
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One call being audited; recorded when finished, or as cancelled when dropped first.
pub(crate) struct CallAudit<'a> {
    audit: &'a Audit,
    origin: Origin,
    called: String,
    arguments: Option<JsonObject>,
    upstream: Option<String>,
    tool: Option<String>,
    started: Instant,
    timed_out: bool,
    done: bool,
}

impl<'a> CallAudit<'a> {
    /// Starts auditing a call of `called` (the name the client used).
    pub(crate) fn start(audit: &'a Audit, origin: Origin, called: &str, arguments: Option<&JsonObject>) -> Self {
        Self {
            audit,
            origin,
            called: called.to_owned(),
            arguments: if audit.arguments { arguments.cloned() } else { None },
            upstream: None,
            tool: None,
            started: Instant::now(),
            timed_out: false,
            done: false,
        }
    }

    /// The call was routed: to this upstream's tool of this name.
    pub(crate) fn routed(&mut self, upstream: &str, tool: &str) {
        self.upstream = Some(upstream.to_owned());
        self.tool = Some(tool.to_owned());
    }

    /// The call's deadline passed: an error it ends with is a timeout.
    pub(crate) fn timed_out(&mut self) {
        self.timed_out = true;
    }

    /// Records how the call ended; `cancelled` (the client's token fired) decides over
    /// everything, then a passed deadline over an error's code.
    pub(crate) fn finish(mut self, result: &Result<CallToolResponse, ErrorData>, cancelled: bool) {
        let outcome = match result {
            _ if cancelled => Outcome::Cancelled,
            Err(_) if self.timed_out => Outcome::Timeout,
            Err(e) => Outcome::Error(e.code.0),
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => Outcome::ToolError,
            Ok(CallToolResponse::InputRequired(_)) => Outcome::InputRequired,
            Ok(_) => Outcome::Ok,
        };
        self.record(outcome);
        self.done = true;
    }

    fn record(&self, outcome: Outcome) {
        let record = CallRecord {
            identity: &self.origin.name,
            session: &self.origin.session,
            upstream: self.upstream.as_deref(),
            tool: self.tool.as_deref().unwrap_or(&self.called),
            called: self.tool.as_deref().is_some_and(|t| t != self.called).then_some(self.called.as_str()),
            outcome,
            duration: self.started.elapsed(),
            arguments: self.arguments.as_ref(),
        };
        for observer in &self.audit.observers {
            observer.tool_call(&record);
        }
    }
}

impl Drop for CallAudit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record(Outcome::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rmcp::model::{CallToolResult, ContentBlock, InputRequiredResult};

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(Option<String>, String, Outcome)>>);

    impl CallObserver for Seen {
        fn tool_call(&self, r: &CallRecord<'_>) {
            let mut seen = self.0.lock().expect("lock");
            seen.push((r.upstream.map(str::to_owned), r.tool.to_owned(), r.outcome));
        }
    }

    /// A record's caller, session, name called and arguments, owned.
    type Kept = (String, String, Option<String>, Option<JsonObject>);

    /// Keeps the last record's caller, names and arguments.
    #[derive(Default)]
    struct Last(Mutex<Option<Kept>>);

    impl CallObserver for Last {
        fn tool_call(&self, r: &CallRecord<'_>) {
            let names = (r.identity.to_owned(), r.session.to_owned(), r.called.map(str::to_owned));
            *self.0.lock().expect("lock") = Some((names.0, names.1, names.2, r.arguments.cloned()));
        }
    }

    fn outcome_of(result: Option<Result<CallToolResponse, ErrorData>>, cancelled: bool, timeout: bool) -> Outcome {
        let seen = Arc::new(Seen::default());
        let audit = Audit { arguments: false, observers: vec![seen.clone()] };
        let mut call = CallAudit::start(&audit, Origin::stateless(), "files_read", None);
        call.routed("files", "read");
        if timeout {
            call.timed_out();
        }
        match result {
            Some(result) => call.finish(&result, cancelled),
            None => drop(call),
        }
        let seen = seen.0.lock().expect("lock");
        assert_eq!(seen.len(), 1, "one record per call");
        assert_eq!((seen[0].0.as_deref(), seen[0].1.as_str()), (Some("files"), "read"));
        seen[0].2
    }

    #[test]
    fn each_call_is_recorded_once_with_its_outcome() {
        let done = CallToolResult::success(vec![ContentBlock::text("x")]);
        let failed = CallToolResult::error(vec![ContentBlock::text("x")]);
        assert_eq!(outcome_of(Some(Ok(done.clone().into())), false, false), Outcome::Ok);
        assert_eq!(outcome_of(Some(Ok(failed.into())), false, false), Outcome::ToolError);
        let asks = InputRequiredResult::new(None, Some("state".into()));
        assert_eq!(outcome_of(Some(Ok(asks.into())), false, false), Outcome::InputRequired);
        let error = ErrorData::invalid_params("no", None);
        assert_eq!(outcome_of(Some(Err(error.clone())), false, false), Outcome::Error(-32602));
        assert_eq!(outcome_of(Some(Err(error.clone())), false, true), Outcome::Timeout);
        assert_eq!(outcome_of(Some(Err(error)), true, true), Outcome::Cancelled);
        assert_eq!(outcome_of(Some(Ok(done.into())), true, false), Outcome::Cancelled);
        assert_eq!(outcome_of(None, false, false), Outcome::Cancelled, "dropped before it finished");
    }

    #[test]
    fn every_observer_gets_the_caller_the_name_called_and_arguments_only_when_configured() {
        let seen = Arc::new(Seen::default());
        let last = Arc::new(Last::default());
        let origin = Origin { name: "alice".into(), session: "s1".into() };
        let arguments: JsonObject = serde_json::from_str(r#"{"text": "hi"}"#).expect("object");
        for logged in [false, true] {
            let audit = Audit { arguments: logged, observers: vec![seen.clone(), last.clone()] };
            let mut call = CallAudit::start(&audit, origin.clone(), "files_read", Some(&arguments));
            call.routed("files", "read");
            call.finish(&Ok(CallToolResult::success(vec![]).into()), false);
            let last = last.0.lock().expect("lock").clone().expect("a record");
            assert_eq!((last.0.as_str(), last.1.as_str(), last.2.as_deref()), ("alice", "s1", Some("files_read")));
            assert_eq!(last.3, logged.then(|| arguments.clone()), "arguments only when configured");
        }
        assert_eq!(seen.0.lock().expect("lock").len(), 2, "each observer, once per call");
    }

    #[test]
    fn a_caller_header_decodes_its_escapes() {
        assert_eq!(decode("alice%20%28https://idp%29"), "alice (https://idp)");
        assert_eq!(decode("%C3%A9"), "é");
        assert_eq!(decode("100%"), "100%", "a broken escape is kept");
    }
}
