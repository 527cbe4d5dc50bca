//! [`BearerSession`]: a Streamable HTTP session opened with a bearer token, every request
//! of it carrying the token (what the auth, policy and per-user credential tests speak).

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::{Gateway, Http, Reply, SseReader, initialize, notification, request};

/// The protocol version the session is opened in.
const VERSION: &str = "2025-11-25";

/// A Streamable HTTP session of the caller a bearer token names.
pub struct BearerSession {
    http: Http,
    url: String,
    bearer: String,
    session: String,
}

impl BearerSession {
    /// Initializes a session on `gw`'s `/mcp` with `token`, and sends `initialized`.
    pub async fn open(gw: &Gateway, token: &str) -> Self {
        let http = Http::new();
        let bearer = format!("Bearer {token}");
        let url = gw.url("/mcp");
        let reply = http.post(&url, &[("authorization", &bearer)], &initialize(VERSION)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let session = reply.header("mcp-session-id").expect("a session").to_owned();
        let client = Self { http, url, bearer, session };
        let ack = client.post(&notification("notifications/initialized")).await;
        assert_eq!(ack.status, StatusCode::ACCEPTED);
        client
    }

    fn headers(&self) -> [(&str, &str); 3] {
        [
            ("authorization", self.bearer.as_str()),
            ("mcp-session-id", self.session.as_str()),
            ("mcp-protocol-version", VERSION),
        ]
    }

    /// POSTs `body` in the session.
    pub async fn post(&self, body: &Value) -> Reply {
        self.http.post(&self.url, &self.headers(), body).await
    }

    /// A request's response (asserting a 200).
    pub async fn call(&self, id: i64, method: &str, params: Value) -> Value {
        let reply = self.post(&request(id, method, params)).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        reply.messages().into_iter().find(|m| m["id"] == id).expect("the response")
    }

    /// The session's standalone event stream.
    pub async fn stream(&self) -> SseReader {
        let mut headers = self.headers().to_vec();
        headers.push(("accept", "text/event-stream"));
        let response = self.http.open(Method::GET, &self.url, &headers, Bytes::new()).await;
        let stream = SseReader::new(response);
        assert_eq!(stream.status, StatusCode::OK);
        stream
    }
}
