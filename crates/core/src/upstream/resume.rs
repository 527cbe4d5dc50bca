//! A bound on resuming one reply stream that keeps ending with nothing new.
//!
//! rmcp's Streamable HTTP client resumes a reply stream that ends before its response
//! (SEP-1699: `GET` with `Last-Event-ID`) every time it ends cleanly, with no limit, as soon
//! as the upstream's `retry:` says (0 ms is allowed). Its retry policy only counts resumes
//! that fail. [`ResumingClient`] wraps the pooled HTTP client and follows each reply from
//! its `POST` through its resumes by the last event id: a reply resumed
//! [`MAX_EMPTY_RESUMES`] times in a row without a message is refused the next resume, which
//! ends it, and rmcp fails the call at once instead of polling until its deadline.
//!
//! Only reply streams are followed. The standalone `GET` stream is never bounded: an
//! upstream may close it as often as it likes.
//!
//! rmcp fails a call whose reply it stopped resuming with a bare "Transport closed"; why it
//! stopped is kept here by the call's request id ([`GaveUp`]) for the error the call gets.
//!
//! A POST of what is not a request (a notification, or the answer to the upstream's own
//! request) is given up after a deadline of its own: the upstream should accept it at once
//! (202), and rmcp's worker puts no deadline on it (a request's POST is bounded by its
//! call's).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::Stream;
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

/// Resumes in a row that brought no message before the next one is refused.
pub(crate) const MAX_EMPTY_RESUMES: u32 = 5;
/// Reply streams remembered between their end and their resume (and reasons for giving one
/// up, until its call takes it). One never resumed (its call was cancelled) or never taken
/// is forgotten when newer ones push it out.
const REMEMBERED: usize = 32;

type SseStream = BoxStream<'static, Result<Sse, SseError>>;
type Error = StreamableHttpError<reqwest::Error>;

/// The pooled reqwest client, with resumes of reply streams counted.
#[derive(Clone)]
pub(crate) struct ResumingClient {
    http: reqwest::Client,
    /// How long a POST of a message that is not a request may take.
    message_deadline: Duration,
    ended: Arc<Mutex<Ended>>,
    gave_up: GaveUp,
}

/// Where one reply stream stands between its resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Resumes {
    /// Resumes in a row that brought nothing.
    empty: u32,
    /// Attempts in a row to resume it that failed.
    failed: u32,
}

/// A reply stream being followed: the request it answers and its resumes so far.
#[derive(Clone, Default)]
struct Reply {
    request: Option<RequestId>,
    resumes: Resumes,
}

/// Reply streams that ended, by their last event id.
#[derive(Default)]
struct Ended {
    replies: HashMap<String, Reply>,
    order: VecDeque<String>,
}

impl Ended {
    fn remember(&mut self, last_id: String, reply: Reply) {
        if self.replies.insert(last_id.clone(), reply).is_none() {
            self.order.push_back(last_id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.replies.remove(&oldest);
            }
        }
    }

    fn take(&mut self, last_id: &str) -> Option<Reply> {
        let reply = self.replies.remove(last_id)?;
        self.order.retain(|id| id != last_id);
        Some(reply)
    }
}

/// Why resuming a request's reply stream was given up, by the request's id, until the call
/// failing for it takes it.
#[derive(Clone, Default)]
pub(crate) struct GaveUp(Arc<Mutex<VecDeque<(RequestId, String)>>>);

impl GaveUp {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(RequestId, String)>> {
        // Never held across an await; a poisoned queue is still a valid queue.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes why `request`'s reply is not resumed (a later note replaces it).
    fn note(&self, request: &RequestId, why: String) {
        let mut notes = self.lock();
        notes.retain(|(id, _)| id != request);
        notes.push_back((request.clone(), why));
        if notes.len() > REMEMBERED {
            notes.pop_front();
        }
    }

    /// Why `request`'s reply was not resumed, if it was given up.
    pub(crate) fn take(&self, request: &RequestId) -> Option<String> {
        let mut notes = self.lock();
        let at = notes.iter().position(|(id, _)| id == request)?;
        notes.remove(at).map(|(_, why)| why)
    }
}

impl ResumingClient {
    pub(crate) fn new(http: reqwest::Client, message_deadline: Duration) -> Self {
        Self { http, message_deadline, ended: Arc::default(), gave_up: GaveUp::default() }
    }

    /// `post` as it is for a request (its call's deadline bounds it); given up after the
    /// message deadline for anything else.
    async fn bounded<T>(
        &self,
        request: Option<&RequestId>,
        post: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if request.is_some() {
            return post.await;
        }
        tokio::time::timeout(self.message_deadline, post).await.unwrap_or_else(|_| {
            Err(StreamableHttpError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the upstream did not accept the message within {:?}", self.message_deadline),
            )))
        })
    }

    /// Why resumes were given up, for the errors of the calls they were for.
    pub(crate) fn gave_up(&self) -> GaveUp {
        self.gave_up.clone()
    }

    fn ended(&self) -> MutexGuard<'_, Ended> {
        // Never held across an await; a poisoned map is still a valid map.
        self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn follow(&self, stream: SseStream, last_id: Option<String>, reply: Reply) -> SseStream {
        Box::pin(Followed { inner: stream, ended: self.ended.clone(), last_id, reply, data_last: false, done: false })
    }

    /// The reply to a POST of `request`, followed.
    fn followed_post(
        &self,
        request: Option<RequestId>,
        response: StreamableHttpPostResponse,
    ) -> StreamableHttpPostResponse {
        match response {
            StreamableHttpPostResponse::Sse(stream, session) => {
                let reply = Reply { request, resumes: Resumes::default() };
                StreamableHttpPostResponse::Sse(self.follow(stream, None, reply), session)
            }
            other => other,
        }
    }

    /// Notes why `reply` is given up, for its call's error.
    fn give_up(&self, reply: &Reply, why: String) {
        if let Some(request) = &reply.request {
            self.gave_up.note(request, why);
        }
    }

    /// Opens a stream with `open`: a fresh one, or the resume of a reply stream within its
    /// bound (refused past it).
    async fn reopen(
        &self,
        last_event_id: Option<String>,
        open: impl Future<Output = Result<SseStream, Error>>,
    ) -> Result<SseStream, Error> {
        let Some(last_id) = last_event_id else { return open.await };
        let Some(reply) = self.ended().take(&last_id) else {
            // Not a reply stream followed here: the standalone stream coming back.
            return open.await;
        };
        let Resumes { empty, failed } = reply.resumes;
        if empty >= MAX_EMPTY_RESUMES {
            tracing::warn!(
                last_event_id = %last_id,
                "an upstream ended a reply stream {empty} times in a row without a message; not resuming it"
            );
            self.give_up(&reply, format!("after {empty} attempts (each brought nothing new)"));
            // rmcp stops retrying at once on this error, and fails the call waiting on it.
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        match open.await {
            Ok(stream) => {
                if let Some(request) = &reply.request {
                    self.gave_up.take(request);
                }
                let reply = Reply { resumes: Resumes { empty: empty + 1, failed: 0 }, ..reply };
                Ok(self.follow(stream, Some(last_id), reply))
            }
            Err(e) => {
                // rmcp may try again (its retry policy), or give up now: then this is why.
                let failed = failed + 1;
                self.give_up(&reply, format!("after {failed} attempts ({e})"));
                self.ended().remember(last_id, Reply { resumes: Resumes { empty, failed }, ..reply });
                Err(e)
            }
        }
    }
}

/// A reply stream (or a resume of one) passed through, noting its last event id and
/// whether anything came, to remember when it ends.
struct Followed {
    inner: SseStream,
    ended: Arc<Mutex<Ended>>,
    last_id: Option<String>,
    reply: Reply,
    /// Whether the last event carried data (a message): a stream that ends right after its
    /// response is complete, and rmcp will not resume it.
    data_last: bool,
    done: bool,
}

impl Followed {
    fn end(&mut self) {
        if std::mem::replace(&mut self.done, true) || self.data_last {
            return;
        }
        if let Some(last_id) = self.last_id.take() {
            let mut ended = self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            ended.remember(last_id, self.reply.clone());
        }
    }
}

impl Stream for Followed {
    type Item = Result<Sse, SseError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.inner.as_mut().poll_next(cx));
        match &item {
            Some(Ok(sse)) => {
                if let Some(id) = &sse.id {
                    self.last_id = Some(id.clone());
                }
                // A priming event (an id, empty data) or a comment is not a message.
                let message = sse.data.as_deref().is_some_and(|d| !d.trim().is_empty());
                if message {
                    self.reply.resumes.empty = 0;
                }
                if message || sse.id.is_some() {
                    self.data_last = message;
                }
            }
            Some(Err(_)) | None => self.end(),
        }
        Poll::Ready(item)
    }
}

impl StreamableHttpClient for ResumingClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let request = request_id(&message);
        let post = self.http.post_message(uri, message, session_id, auth_header, custom_headers);
        let response = self.bounded(request.as_ref(), post).await?;
        Ok(self.followed_post(request, response))
    }

    /// What rmcp 3.11 calls for every POST. reqwest's own enforces the response size
    /// limits; the trait's default would go through `post_message` and skip them.
    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let request = request_id(&message);
        let post =
            self.http.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits);
        let response = self.bounded(request.as_ref(), post).await?;
        Ok(self.followed_post(request, response))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Error> {
        self.http.delete_session(uri, session_id, auth_header, custom_headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<SseStream, Error> {
        let open = self.http.get_stream(uri, session_id, last_event_id.clone(), auth_header, custom_headers);
        self.reopen(last_event_id, open).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<SseStream, Error> {
        let open = self.http.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id.clone(),
            auth_header,
            custom_headers,
            max_sse_event_size,
        );
        self.reopen(last_event_id, open).await
    }
}

/// The id of a request, whose reply a POST of it brings.
fn request_id(message: &ClientJsonRpcMessage) -> Option<RequestId> {
    match message {
        JsonRpcMessage::Request(request) => Some(request.id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn event(id: &str, data: &str) -> Result<Sse, SseError> {
        Ok(Sse { event: None, data: Some(data.into()), id: Some(id.into()), retry: None })
    }

    fn stream(events: Vec<Result<Sse, SseError>>) -> SseStream {
        futures::stream::iter(events).boxed()
    }

    fn client() -> ResumingClient {
        ResumingClient::new(reqwest::Client::new(), Duration::from_secs(60))
    }

    /// A reply to request 1 that `empty` resumes in a row brought nothing.
    fn reply(empty: u32) -> Reply {
        Reply { request: Some(RequestId::Number(1)), resumes: Resumes { empty, failed: 0 } }
    }

    /// How many resumes in a row brought nothing, for the ended stream `last_id`.
    fn empty_resumes(c: &ResumingClient, last_id: &str) -> Option<u32> {
        c.ended().take(last_id).map(|r| r.resumes.empty)
    }

    #[tokio::test]
    async fn a_reply_that_ends_before_its_message_is_remembered_and_an_answered_one_is_not() {
        let c = client();
        c.follow(stream(vec![event("p1", "")]), None, reply(0)).collect::<Vec<_>>().await;
        assert_eq!(empty_resumes(&c, "p1"), Some(0));
        c.follow(stream(vec![event("p2", ""), event("r2", "{}")]), None, reply(0)).collect::<Vec<_>>().await;
        assert_eq!(empty_resumes(&c, "p2"), None);
        assert_eq!(empty_resumes(&c, "r2"), None);
    }

    #[tokio::test]
    async fn resumes_that_bring_nothing_are_refused_past_the_bound_and_a_message_resets_the_count() {
        let c = client();
        c.ended().remember("p0".into(), reply(0));
        for n in 1..=MAX_EMPTY_RESUMES {
            let open = async { Ok(stream(vec![event(&format!("p{n}"), "")])) };
            let resumed = c.reopen(Some(format!("p{}", n - 1)), open).await.expect("resumed");
            resumed.collect::<Vec<_>>().await;
        }
        let last = format!("p{MAX_EMPTY_RESUMES}");
        let refused = c.reopen(Some(last), async { panic!("a refused resume opens nothing") }).await;
        assert!(matches!(refused, Err(StreamableHttpError::ServerDoesNotSupportSse)));
        let why = c.gave_up().take(&RequestId::Number(1));
        assert_eq!(why.as_deref(), Some("after 5 attempts (each brought nothing new)"), "noted for the call");

        c.ended().remember("q0".into(), reply(MAX_EMPTY_RESUMES - 1));
        let open = async { Ok(stream(vec![event("m1", "{}"), event("q1", "")])) };
        c.reopen(Some("q0".into()), open).await.expect("resumed").collect::<Vec<_>>().await;
        assert_eq!(empty_resumes(&c, "q1"), Some(0), "a message starts the count again");
    }

    #[tokio::test]
    async fn the_standalone_stream_is_never_bounded_and_a_failed_resume_keeps_its_count() {
        let c = client();
        let open = async { Ok(stream(vec![event("s1", "")])) };
        c.reopen(Some("unknown".into()), open).await.expect("opened").collect::<Vec<_>>().await;
        assert_eq!(empty_resumes(&c, "s1"), None, "a stream not followed from a POST is not counted");

        c.ended().remember("f0".into(), reply(3));
        for attempt in 1..=2 {
            let failed = c.reopen(Some("f0".into()), async { Err(StreamableHttpError::UnexpectedEndOfStream) }).await;
            assert!(failed.is_err());
            let why = c.gave_up().take(&RequestId::Number(1)).unwrap_or_default();
            assert!(why.starts_with(&format!("after {attempt} attempts (")), "noted in case rmcp gives up: {why}");
        }
        let resumes = c.ended().take("f0").map(|r| r.resumes);
        assert_eq!(resumes, Some(Resumes { empty: 3, failed: 2 }));

        // A resume that opens clears what a failed one noted.
        c.ended().remember("f1".into(), reply(0));
        let _ = c.reopen(Some("f1".into()), async { Err(StreamableHttpError::UnexpectedEndOfStream) }).await;
        let _resumed = c.reopen(Some("f1".into()), async { Ok(stream(vec![])) }).await.expect("resumed");
        assert_eq!(c.gave_up().take(&RequestId::Number(1)), None);
    }

    /// Reads one whole HTTP request from `socket`: its head, then as many bytes as its
    /// Content-Length says.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if n == 0 || request.len() >= head_end + 4 + length {
                    return text.into_owned();
                }
            }
            if n == 0 {
                return text.into_owned();
            }
        }
    }

    fn json_response(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// Serves one HTTP request on loopback with `body` as its JSON response.
    async fn answer_once(body: String) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            read_request(&mut socket).await;
            socket.write_all(json_response(&body).as_bytes()).await.expect("write");
        });
        url
    }

    /// An upstream that never accepts a notification (holds its POST open) and answers a
    /// request once `release` is notified, saying on `received` that the request came.
    async fn holding_upstream(received: tokio::sync::mpsc::Sender<()>, release: Arc<tokio::sync::Notify>) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (received, release) = (received.clone(), release.clone());
                tokio::spawn(async move {
                    let request = read_request(&mut socket).await;
                    if !request.contains("\"id\"") {
                        // Held open, unanswered, for as long as the test runs.
                        return std::future::pending::<()>().await;
                    }
                    let _ = received.send(()).await;
                    release.notified().await;
                    let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
                    socket.write_all(json_response(answer).as_bytes()).await.expect("write");
                });
            }
        });
        url
    }

    fn message(json: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(json).expect("a client message")
    }

    #[tokio::test]
    async fn a_message_that_is_no_request_is_given_up_at_its_deadline_and_a_request_is_not() {
        let (received_tx, mut received) = tokio::sync::mpsc::channel(1);
        let release = Arc::new(tokio::sync::Notify::new());
        let url: Arc<str> = holding_upstream(received_tx, release.clone()).await.into();
        let deadline = Duration::from_millis(200);
        let c = ResumingClient::new(reqwest::Client::new(), deadline);

        let ping = message(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        let request = tokio::spawn({
            let (c, url) = (c.clone(), url.clone());
            async move { c.post_message(url, ping, None, None, HashMap::new()).await.map(drop) }
        });
        let bound = Duration::from_secs(10);
        tokio::time::timeout(bound, received.recv()).await.expect("the request reached the upstream");

        let note = message(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let posted = tokio::time::timeout(bound, c.post_message(url.clone(), note, None, None, HashMap::new()))
            .await
            .expect("the notification's POST ends by itself");
        assert!(
            matches!(&posted, Err(StreamableHttpError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "given up at its deadline: {:?}",
            posted.map(drop)
        );

        // The request has been waiting longer than that deadline; it is still answered.
        release.notify_one();
        let answered = tokio::time::timeout(bound, request).await.expect("answered").expect("joined");
        assert!(answered.is_ok(), "{answered:?}");
    }

    #[tokio::test]
    async fn a_post_keeps_rmcps_response_size_limits() {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"padding": "x".repeat(1000)}}).to_string();
        let url = answer_once(body).await;
        let ping: ClientJsonRpcMessage =
            serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).expect("a ping");
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_json_response_size = 100;
        let posted =
            client().post_message_with_response_limits(url.into(), ping, None, None, HashMap::new(), limits).await;
        assert!(posted.is_err(), "a JSON response over the limit is refused");
    }

    #[test]
    fn only_the_newest_ended_streams_are_remembered() {
        let mut ended = Ended::default();
        for n in 0..REMEMBERED + 8 {
            ended.remember(format!("e{n}"), reply(0));
        }
        assert_eq!((ended.order.len(), ended.replies.len()), (REMEMBERED, REMEMBERED));
        assert!(ended.take("e7").is_none());
        assert!(ended.take("e8").is_some());
    }
}
