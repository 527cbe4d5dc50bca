//! The client side of the load generator: one hyper 1 HTTP/1.1 connection per [`Conn`], and MCP
//! sessions over Streamable HTTP (JSON or SSE replies) or legacy HTTP+SSE on top of them.
//!
//! Every network wait is bounded by [`OP_TIMEOUT`]; every read loop by a count
//! ([`MAX_EVENTS`] events, [`MAX_BODY`] bytes).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// The longest any single request, response or event wait may take.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body (or event stream) read.
const MAX_BODY: usize = 16 << 20;
/// The most events read while waiting for one response.
const MAX_EVENTS: usize = 10_000;

const JSON: &str = "application/json";
/// What rmcp's Streamable HTTP server (and supergateway) want in `Accept` on every POST.
pub(crate) const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const EVENT_STREAM: &str = "text/event-stream";

/// Run `fut` within [`OP_TIMEOUT`].
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => bail!("{what}: no answer within {OP_TIMEOUT:?}"),
    }
}

/// The server under test: a loopback address and its MCP paths.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    authority: HeaderValue,
    pub(crate) mcp_path: String,
    pub(crate) sse_path: String,
}

impl Target {
    /// `base` is `http://IP:PORT` (a path after it is ignored); only loopback addresses.
    pub(crate) fn parse(base: &str, mcp_path: &str, sse_path: &str) -> Result<Target> {
        let rest = base.strip_prefix("http://").context("the base URL must start with http://")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr =
            authority.parse().with_context(|| format!("{authority}: the base URL needs an IP address and a port"))?;
        ensure!(addr.ip().is_loopback(), "{addr}: the load generator only talks to loopback addresses");
        Ok(Target {
            addr,
            authority: HeaderValue::from_str(authority)?,
            mcp_path: mcp_path.to_owned(),
            sse_path: sse_path.to_owned(),
        })
    }
}

/// One HTTP/1.1 keep-alive connection. Dropping it closes the socket.
pub(crate) struct Conn {
    send: SendRequest<Full<Bytes>>,
    authority: HeaderValue,
    driver: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    pub(crate) async fn open(target: &Target) -> Result<Conn> {
        within("connect", async {
            let stream = TcpStream::connect(target.addr).await.with_context(|| format!("connect {}", target.addr))?;
            stream.set_nodelay(true)?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            })
            .abort_handle();
            Ok(Conn { send, authority: target.authority.clone(), driver })
        })
        .await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &HeaderValue)],
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body))?;
        self.send.ready().await.context("the connection closed")?;
        Ok(self.send.send_request(request).await?)
    }
}

/// The whole body, at most [`MAX_BODY`] bytes.
async fn read_all(body: Incoming) -> Result<Bytes> {
    Ok(Limited::new(body, MAX_BODY).collect().await.map_err(|e| anyhow!("reading a body: {e}"))?.to_bytes())
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// A GET returning JSON (`/healthz`), on a connection of its own.
pub(crate) async fn get_json(target: &Target, path: &str) -> Result<Value> {
    let mut conn = Conn::open(target).await?;
    within("GET", async {
        let response = conn.send(Method::GET, path, &[], Bytes::new()).await?;
        let status = response.status();
        let body = read_all(response.into_body()).await?;
        ensure!(status.is_success(), "GET {path}: {status} {}", excerpt(&body));
        Ok(serde_json::from_slice(&body)?)
    })
    .await
}

/// A GET returning a number as text (`serve-rmcp`'s accepted-connection count).
pub(crate) async fn get_number(target: &Target, path: &str) -> Result<u64> {
    Ok(get_text(target, path).await?.trim().parse()?)
}

/// A GET returning text (`/metrics`), on a connection of its own.
pub(crate) async fn get_text(target: &Target, path: &str) -> Result<String> {
    let mut conn = Conn::open(target).await?;
    within("GET", async {
        let response = conn.send(Method::GET, path, &[], Bytes::new()).await?;
        let status = response.status();
        let body = read_all(response.into_body()).await?;
        ensure!(status.is_success(), "GET {path}: {status} {}", excerpt(&body));
        Ok(String::from_utf8(body.to_vec())?)
    })
    .await
}

/// The status of a GET (`/readyz`).
pub(crate) async fn get_status(target: &Target, path: &str) -> Result<u16> {
    let mut conn = Conn::open(target).await?;
    within("GET", async {
        let response = conn.send(Method::GET, path, &[], Bytes::new()).await?;
        let status = response.status().as_u16();
        read_all(response.into_body()).await?;
        Ok(status)
    })
    .await
}

// ---- server-sent events -------------------------------------------------------------------

/// One dispatched event (comments, ids and `retry` are dropped; so are events without data,
/// such as priming events).
pub(crate) struct Event {
    pub(crate) event: String,
    pub(crate) data: String,
}

#[derive(Default)]
struct SseParser {
    buf: BytesMut,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    fn next(&mut self) -> Option<Event> {
        loop {
            let newline = self.buf.iter().position(|&c| c == b'\n')?;
            let raw = self.buf.split_to(newline + 1);
            let mut line = &raw[..newline];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                let has_data = std::mem::take(&mut self.has_data);
                let event = std::mem::take(&mut self.event);
                let data = std::mem::take(&mut self.data);
                if has_data && !data.is_empty() {
                    return Some(Event { event, data });
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match line.iter().position(|&c| c == b':') {
                Some(i) => {
                    let value = &line[i + 1..];
                    (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &[][..]),
            };
            match field {
                b"data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(&String::from_utf8_lossy(value));
                    self.has_data = true;
                }
                b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
                _ => {}
            }
        }
    }
}

/// An event-stream response body, read event by event.
pub(crate) struct SseStream {
    body: Incoming,
    parser: SseParser,
    done: bool,
}

impl SseStream {
    fn new(body: Incoming) -> SseStream {
        SseStream { body, parser: SseParser::default(), done: false }
    }

    /// The next event with data, or `None` at the end of the stream.
    async fn next_event(&mut self) -> Result<Option<Event>> {
        for _ in 0..MAX_EVENTS {
            if let Some(event) = self.parser.next() {
                return Ok(Some(event));
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        // A legacy stream lives as long as its session: bound what waits to be
                        // parsed, not the total.
                        ensure!(
                            self.parser.buf.len() + data.len() <= MAX_BODY,
                            "an event longer than {MAX_BODY} bytes"
                        );
                        self.parser.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => bail!("the event stream failed: {e}"),
                None => self.done = true,
            }
        }
        bail!("more than {MAX_EVENTS} frames without an event")
    }

    /// Reads to the end of the stream.
    async fn drain(&mut self) -> Result<()> {
        while self.next_event().await?.is_some() {}
        Ok(())
    }
}

// ---- JSON-RPC -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct Message {
    id: Option<Value>,
    method: Option<String>,
    result: Option<Value>,
    error: Option<Value>,
}

/// Whether `data` is the response to `id`; if so, its result (an error response or a tool
/// result with `isError: true` is an error).
fn response_to(data: &[u8], id: u64) -> Result<Option<Value>> {
    let message: Message = serde_json::from_slice(data).with_context(|| format!("not JSON-RPC: {}", excerpt(data)))?;
    if message.method.is_some() || message.id.as_ref().and_then(Value::as_u64) != Some(id) {
        return Ok(None);
    }
    if let Some(error) = message.error {
        bail!("JSON-RPC error: {error}");
    }
    let result = message.result.context("a response without result or error")?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        bail!("the tool failed: {result}");
    }
    Ok(Some(result))
}

/// The response to `id` in a Streamable HTTP reply, JSON or event stream (read to its end).
async fn read_reply(response: Response<Incoming>, id: u64) -> Result<Value> {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !status.is_success() {
        let body = read_all(response.into_body()).await.unwrap_or_default();
        bail!("{status}: {}", excerpt(&body));
    }
    if content_type.starts_with(EVENT_STREAM) {
        let mut stream = SseStream::new(response.into_body());
        while let Some(event) = stream.next_event().await? {
            if let Some(result) = response_to(event.data.as_bytes(), id)? {
                stream.drain().await?;
                return Ok(result);
            }
        }
        bail!("the event stream ended without the response to {id}")
    } else {
        let body = read_all(response.into_body()).await?;
        response_to(&body, id)?.with_context(|| format!("no response to {id} in {}", excerpt(&body)))
    }
}

/// Waits on a legacy session's event stream for the response to `id`.
async fn wait_reply(events: &mut SseStream, id: u64) -> Result<Value> {
    for _ in 0..MAX_EVENTS {
        let event = events.next_event().await?.context("the event stream ended")?;
        if (event.event.is_empty() || event.event == "message")
            && let Some(result) = response_to(event.data.as_bytes(), id)?
        {
            return Ok(result);
        }
    }
    bail!("no response to {id} in {MAX_EVENTS} events")
}

// ---- sessions -----------------------------------------------------------------------------

/// The transport a session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Transport {
    /// Streamable HTTP, JSON replies.
    StreamableJson,
    /// Streamable HTTP, event-stream replies.
    StreamableSse,
    /// Legacy HTTP+SSE (2024-11-05).
    Legacy,
    /// Streamable HTTP at 2026-07-28: no session, every request carries its version and
    /// capabilities in `_meta` and names its method and tool in headers.
    Stateless,
}

impl Transport {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Transport::StreamableJson => "Streamable HTTP, JSON",
            Transport::StreamableSse => "Streamable HTTP, SSE",
            Transport::Legacy => "legacy SSE",
            Transport::Stateless => "Streamable HTTP, 2026-07-28 stateless",
        }
    }
}

/// How the sessions of a run talk: transport, headers and the tool they call.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub(crate) transport: Transport,
    /// The `Accept` of POSTs on Streamable HTTP.
    pub(crate) accept: HeaderValue,
    /// The protocol version asked for in `initialize` (or carried by every stateless request).
    pub(crate) protocol: String,
    /// The tool, for a stateless request's `Mcp-Name`.
    tool: HeaderValue,
    /// `Authorization` on every request, when the server wants a token.
    pub(crate) authorization: Option<HeaderValue>,
    call_prefix: String,
    call_suffix: String,
}

impl Profile {
    /// `arguments` is a JSON object.
    pub(crate) fn new(transport: Transport, tool: &str, arguments: &Value) -> Profile {
        let accept = match transport {
            Transport::StreamableJson => JSON,
            Transport::StreamableSse | Transport::Legacy => EVENT_STREAM,
            Transport::Stateless => ACCEPT_BOTH,
        };
        let protocol = match transport {
            Transport::Legacy => "2024-11-05",
            Transport::Stateless => STATELESS_VERSION,
            _ => "2025-11-25",
        };
        let name = Value::String(tool.to_owned());
        let params = match transport {
            Transport::Stateless => {
                let meta = serde_json::json!({
                    "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                    "io.modelcontextprotocol/clientInfo": { "name": "mcpgw-bench", "version": env!("CARGO_PKG_VERSION") },
                    "io.modelcontextprotocol/clientCapabilities": {},
                });
                format!(r#"{{"name":{name},"arguments":{arguments},"_meta":{meta}}}"#)
            }
            _ => format!(r#"{{"name":{name},"arguments":{arguments}}}"#),
        };
        Profile {
            transport,
            accept: HeaderValue::from_static(accept),
            protocol: protocol.to_owned(),
            tool: HeaderValue::from_str(tool).unwrap_or_else(|_| HeaderValue::from_static("")),
            authorization: None,
            call_prefix: r#"{"jsonrpc":"2.0","id":"#.to_owned(),
            call_suffix: format!(r#","method":"tools/call","params":{params}}}"#),
        }
    }

    /// The same with another `Accept` (rmcp wants both JSON and SSE on every POST).
    pub(crate) fn with_accept(mut self, accept: &str) -> Result<Profile> {
        self.accept = HeaderValue::from_str(accept)?;
        Ok(self)
    }

    /// The same, sending `Authorization: Bearer <token>` on every request.
    pub(crate) fn with_bearer(mut self, token: &str) -> Result<Profile> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// `headers` and, when the profile has one, its `Authorization`.
    fn with_auth<'a>(
        &'a self,
        mut headers: Vec<(&'static str, &'a HeaderValue)>,
    ) -> Vec<(&'static str, &'a HeaderValue)> {
        if let Some(value) = &self.authorization {
            headers.push(("authorization", value));
        }
        headers
    }

    fn call_body(&self, id: u64) -> Bytes {
        Bytes::from(format!("{}{id}{}", self.call_prefix, self.call_suffix))
    }

    fn initialize_body(&self) -> Bytes {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": self.protocol,
                "capabilities": {},
                "clientInfo": { "name": "mcpgw-bench", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        Bytes::from(body.to_string())
    }
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The revision served without sessions.
const STATELESS_VERSION: &str = "2026-07-28";

enum Kind {
    Streamable {
        id: Option<HeaderValue>,
        version: HeaderValue,
    },
    Legacy {
        events: SseStream,
        _stream: Conn,
        endpoint: String,
    },
    /// No session: a client of its own, with nothing set up.
    Stateless,
}

/// An initialized MCP session. `conn` carries its POSTs (and for Streamable HTTP, its DELETE);
/// a legacy session also owns the connection of its event stream.
pub(crate) struct Session {
    conn: Conn,
    kind: Kind,
    next_id: u64,
    /// The profile's `Authorization`, for the DELETE that ends the session.
    authorization: Option<HeaderValue>,
}

/// A session without a POST connection: idle, waiting to be used again.
pub(crate) struct Parked {
    kind: Kind,
    next_id: u64,
    authorization: Option<HeaderValue>,
}

static CONTENT_JSON: HeaderValue = HeaderValue::from_static(JSON);
static ACCEPT_SSE: HeaderValue = HeaderValue::from_static(EVENT_STREAM);
static STATELESS: HeaderValue = HeaderValue::from_static(STATELESS_VERSION);
static TOOLS_CALL: HeaderValue = HeaderValue::from_static("tools/call");

impl Session {
    /// `initialize` and `notifications/initialized`, POSTed on `conn`.
    pub(crate) async fn open(target: &Target, profile: &Profile, conn: Conn) -> Result<Session> {
        match profile.transport {
            Transport::StreamableJson | Transport::StreamableSse => Self::open_streamable(target, profile, conn).await,
            Transport::Legacy => Self::open_legacy(target, profile, conn).await,
            Transport::Stateless => {
                Ok(Session { conn, kind: Kind::Stateless, next_id: 1, authorization: profile.authorization.clone() })
            }
        }
    }

    async fn open_streamable(target: &Target, profile: &Profile, mut conn: Conn) -> Result<Session> {
        let headers = profile.with_auth(vec![("content-type", &CONTENT_JSON), ("accept", &profile.accept)]);
        let response = within("initialize", async {
            conn.send(Method::POST, &target.mcp_path, &headers, profile.initialize_body()).await
        })
        .await?;
        let id = response.headers().get("mcp-session-id").cloned();
        let result = within("initialize", read_reply(response, 0)).await.context("initialize")?;
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(&profile.protocol);
        let version = HeaderValue::from_str(version)?;
        let authorization = profile.authorization.clone();
        let mut session = Session { conn, kind: Kind::Streamable { id, version }, next_id: 1, authorization };
        session.post_streamable(target, profile, Bytes::from_static(INITIALIZED.as_bytes())).await?;
        Ok(session)
    }

    /// POSTs a notification on Streamable HTTP (2xx, body read).
    async fn post_streamable(&mut self, target: &Target, profile: &Profile, body: Bytes) -> Result<()> {
        let Kind::Streamable { id, version } = &self.kind else { bail!("not a Streamable HTTP session") };
        let mut headers = profile.with_auth(vec![
            ("content-type", &CONTENT_JSON),
            ("accept", &profile.accept),
            ("mcp-protocol-version", version),
        ]);
        if let Some(id) = id {
            headers.push(("mcp-session-id", id));
        }
        let conn = &mut self.conn;
        within("notification", async {
            let response = conn.send(Method::POST, &target.mcp_path, &headers, body).await?;
            let status = response.status();
            let body = read_all(response.into_body()).await?;
            ensure!(status.is_success(), "notification: {status} {}", excerpt(&body));
            Ok(())
        })
        .await
    }

    async fn open_legacy(target: &Target, profile: &Profile, mut conn: Conn) -> Result<Session> {
        let mut stream = Conn::open(target).await?;
        let (mut events, endpoint) = within("GET the event stream", async {
            let headers = profile.with_auth(vec![("accept", &ACCEPT_SSE)]);
            let response = stream.send(Method::GET, &target.sse_path, &headers, Bytes::new()).await?;
            let status = response.status();
            if !status.is_success() {
                let body = read_all(response.into_body()).await.unwrap_or_default();
                bail!("GET {}: {status} {}", target.sse_path, excerpt(&body));
            }
            let mut events = SseStream::new(response.into_body());
            let first = events.next_event().await?.context("the event stream ended before `endpoint`")?;
            ensure!(first.event == "endpoint", "the first event is `{}`, not `endpoint`", first.event);
            let endpoint = match first.data.strip_prefix("http://") {
                Some(rest) => rest.find('/').map(|i| rest[i..].to_owned()).unwrap_or_else(|| "/".to_owned()),
                None => first.data,
            };
            Ok((events, endpoint))
        })
        .await?;
        within("initialize", async {
            let auth = profile.authorization.as_ref();
            let (posted, reply) = tokio::join!(
                post_legacy(&mut conn, &endpoint, auth, profile.initialize_body()),
                wait_reply(&mut events, 0)
            );
            posted?;
            reply?;
            post_legacy(&mut conn, &endpoint, auth, Bytes::from_static(INITIALIZED.as_bytes())).await
        })
        .await
        .context("initialize")?;
        let authorization = profile.authorization.clone();
        Ok(Session { conn, kind: Kind::Legacy { events, _stream: stream, endpoint }, next_id: 1, authorization })
    }

    /// One `tools/call`, its result checked.
    pub(crate) async fn call(&mut self, target: &Target, profile: &Profile) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let body = profile.call_body(id);
        match &mut self.kind {
            Kind::Streamable { id: session, version } => {
                let mut headers = profile.with_auth(vec![
                    ("content-type", &CONTENT_JSON),
                    ("accept", &profile.accept),
                    ("mcp-protocol-version", &*version),
                ]);
                if let Some(session) = session {
                    headers.push(("mcp-session-id", &*session));
                }
                let response = self.conn.send(Method::POST, &target.mcp_path, &headers, body).await?;
                read_reply(response, id).await?;
            }
            Kind::Legacy { events, endpoint, .. } => {
                let auth = profile.authorization.as_ref();
                let (posted, reply) =
                    tokio::join!(post_legacy(&mut self.conn, endpoint, auth, body), wait_reply(events, id));
                posted?;
                reply?;
            }
            Kind::Stateless => {
                let headers = profile.with_auth(vec![
                    ("content-type", &CONTENT_JSON),
                    ("accept", &profile.accept),
                    ("mcp-protocol-version", &STATELESS),
                    ("mcp-method", &TOOLS_CALL),
                    ("mcp-name", &profile.tool),
                ]);
                let response = self.conn.send(Method::POST, &target.mcp_path, &headers, body).await?;
                read_reply(response, id).await?;
            }
        }
        Ok(())
    }

    /// Ends the session (DELETE, or closing the event stream) and hands back its POST connection.
    pub(crate) async fn close(self, target: &Target) -> Result<Conn> {
        let Session { mut conn, kind, authorization, .. } = self;
        if let Kind::Streamable { id: Some(id), version } = &kind {
            within("DELETE", async {
                let mut headers = vec![("mcp-session-id", id), ("mcp-protocol-version", version)];
                if let Some(value) = &authorization {
                    headers.push(("authorization", value));
                }
                let response = conn.send(Method::DELETE, &target.mcp_path, &headers, Bytes::new()).await?;
                let status = response.status();
                let body = read_all(response.into_body()).await?;
                ensure!(status.is_success(), "DELETE: {status} {}", excerpt(&body));
                Ok(())
            })
            .await?;
        }
        Ok(conn)
    }

    pub(crate) fn park(self) -> (Parked, Conn) {
        (Parked { kind: self.kind, next_id: self.next_id, authorization: self.authorization }, self.conn)
    }

    pub(crate) fn unpark(parked: Parked, conn: Conn) -> Session {
        Session { conn, kind: parked.kind, next_id: parked.next_id, authorization: parked.authorization }
    }
}

impl Parked {
    /// The id the server gave the session (`Mcp-Session-Id`, or the legacy `sessionId`).
    pub(crate) fn id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Streamable { id, .. } => id.as_ref()?.to_str().ok(),
            Kind::Legacy { endpoint, .. } => endpoint.split("sessionId=").nth(1)?.split('&').next(),
            Kind::Stateless => None,
        }
    }
}

/// A legacy POST: 2xx, body read.
async fn post_legacy(conn: &mut Conn, endpoint: &str, auth: Option<&HeaderValue>, body: Bytes) -> Result<()> {
    let mut headers = vec![("content-type", &CONTENT_JSON)];
    if let Some(value) = auth {
        headers.push(("authorization", value));
    }
    let response = conn.send(Method::POST, endpoint, &headers, body).await?;
    let status = response.status();
    let body = read_all(response.into_body()).await?;
    ensure!(status.is_success(), "POST {endpoint}: {status} {}", excerpt(&body));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_skips_priming() {
        let mut parser = SseParser::default();
        parser.buf.extend_from_slice(b"id: 1\nretry: 1000\ndata: \n\n: keepalive\n\nevent: endpoint\r\ndata: /m?s=1\r\n\r\ndata: {\"a\":\ndata: 1}\n\n");
        let first = parser.next().expect("endpoint");
        assert_eq!((first.event.as_str(), first.data.as_str()), ("endpoint", "/m?s=1"));
        assert_eq!(parser.next().expect("message").data, "{\"a\":\n1}");
        assert!(parser.next().is_none());
    }

    #[test]
    fn recognises_its_response() -> Result<()> {
        assert!(response_to(br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#, 3)?.is_some());
        assert!(response_to(br#"{"jsonrpc":"2.0","id":2,"result":{}}"#, 3)?.is_none());
        assert!(response_to(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#, 3)?.is_none());
        assert!(response_to(br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#, 3).is_err());
        assert!(response_to(br#"{"jsonrpc":"2.0","id":3,"result":{"isError":true}}"#, 3).is_err());
        Ok(())
    }

    #[test]
    fn builds_stateless_calls() {
        let profile = Profile::new(Transport::Stateless, "echo", &serde_json::json!({"text": "hi"}));
        let body: Value = serde_json::from_slice(&profile.call_body(7)).expect("JSON");
        assert_eq!(body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], STATELESS_VERSION);
        assert_eq!(body["params"]["name"], "echo");
        assert_eq!(profile.tool, "echo");
    }

    #[test]
    fn a_bearer_profile_sends_its_token_on_every_request() {
        let profile = Profile::new(Transport::StreamableJson, "echo", &serde_json::json!({}));
        assert!(profile.with_auth(vec![("accept", &CONTENT_JSON)]).iter().all(|(name, _)| *name != "authorization"));
        let profile = profile.with_bearer("abc.def.ghi").expect("a header value");
        let headers = profile.with_auth(vec![("accept", &CONTENT_JSON)]);
        let (_, value) = headers.iter().find(|(name, _)| *name == "authorization").expect("authorization");
        assert_eq!(*value, "Bearer abc.def.ghi");
        assert!(value.is_sensitive(), "kept out of debug output");
        assert!(Profile::new(Transport::Stateless, "echo", &serde_json::json!({})).with_bearer("a\nb").is_err());
    }

    #[test]
    fn builds_calls() {
        let profile = Profile::new(Transport::StreamableJson, "echo", &serde_json::json!({"text": "hi"}));
        let body: Value = serde_json::from_slice(&profile.call_body(7)).expect("JSON");
        assert_eq!(body["id"], 7);
        assert_eq!(body["params"]["arguments"]["text"], "hi");
    }
}
