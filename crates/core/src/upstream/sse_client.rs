//! A client for remote legacy HTTP+SSE servers (spec 2024-11-05), which rmcp no longer
//! ships: `GET` the event stream, wait for its `endpoint` event, POST every message there,
//! and read the server's messages from the stream.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use sse_stream::SseStream;
use tokio::sync::mpsc;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

/// Why the legacy SSE connection failed.
#[derive(Debug, thiserror::Error)]
pub enum SseClientError {
    /// The HTTP request failed.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The server did not answer as a legacy SSE server.
    #[error("{0}")]
    Protocol(String),
}

/// The most of a POST's response body read so its connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;
/// Messages read from the stream waiting for rmcp.
const INBOUND_QUEUE: usize = 64;

/// The transport: a POST endpoint and the messages read from the event stream.
pub struct SseClientTransport {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    post_deadline: Duration,
    inbound: mpsc::Receiver<ServerJsonRpcMessage>,
    _reader: AbortOnDropHandle<()>,
}

impl SseClientTransport {
    /// Opens the event stream at `url` and waits for its `endpoint` event. Every POST is
    /// given up after `post_deadline`: a legacy server accepts a message at once (202) and
    /// answers on the stream, but rmcp awaits each POST in a task of its own, and one that a
    /// server never answers (a cancel it does not take, say) would otherwise live as long as
    /// the session. A request whose POST fails ends with a transport error at once.
    pub async fn connect(
        url: &str,
        headers: HeaderMap,
        post_deadline: Duration,
        tasks: &TaskTracker,
    ) -> Result<Self, SseClientError> {
        let base = reqwest::Url::parse(url).map_err(|e| SseClientError::Protocol(format!("bad URL {url}: {e}")))?;
        let http = crate::upstream::http_client::shared();
        let response = http
            .get(base.clone())
            .headers(headers.clone())
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .send()
            .await?
            .error_for_status()?;
        let mut events = SseStream::from_bytes_stream(response.bytes_stream());
        let endpoint = loop {
            let Some(event) = events.next().await else {
                return Err(SseClientError::Protocol("the stream ended before the endpoint event".into()));
            };
            let event = event.map_err(|e| SseClientError::Protocol(format!("bad event stream: {e}")))?;
            if event.event.as_deref() == Some("endpoint") {
                let data = event.data.unwrap_or_default();
                let endpoint = base
                    .join(data.trim())
                    .map_err(|e| SseClientError::Protocol(format!("bad endpoint {data:?}: {e}")))?;
                if endpoint.origin() != base.origin() {
                    return Err(SseClientError::Protocol(format!("the endpoint {endpoint} is on another origin")));
                }
                break endpoint;
            }
        };
        let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let reader = tasks.spawn(async move {
            while let Some(event) = events.next().await {
                let Ok(event) = event else { break };
                let is_message = event.event.as_deref().is_none_or(|e| e == "message");
                let Some(data) = event.data.filter(|d| is_message && !d.trim().is_empty()) else { continue };
                match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                    Ok(message) => {
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a malformed message from a legacy SSE upstream"),
                }
            }
        });
        Ok(Self { http, endpoint, headers, post_deadline, inbound, _reader: AbortOnDropHandle::new(reader) })
    }
}

impl Transport<RoleClient> for SseClientTransport {
    type Error = SseClientError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseClientError>> + Send + 'static {
        let request = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .timeout(self.post_deadline)
            .json(&item);
        async move {
            let mut response = request.send().await?.error_for_status()?;
            // Read the (short) body to its end so the keep-alive connection goes back to the
            // pool; a response dropped unread closes it. A long one is not worth reading.
            let mut read = 0;
            while let Some(chunk) = response.chunk().await? {
                read += chunk.len();
                if read > DRAIN_LIMIT {
                    break;
                }
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), SseClientError> {
        self.inbound.close();
        Ok(())
    }
}
