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

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use futures::Stream;
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;

/// Resumes in a row that brought no message before the next one is refused.
pub(crate) const MAX_EMPTY_RESUMES: u32 = 5;
/// Reply streams remembered between their end and their resume. One that is never resumed
/// (its call was cancelled) is forgotten when newer ones push it out.
const REMEMBERED: usize = 32;

type SseStream = BoxStream<'static, Result<Sse, SseError>>;
type Error = StreamableHttpError<reqwest::Error>;

/// The pooled reqwest client, with resumes of reply streams counted.
#[derive(Clone)]
pub(crate) struct ResumingClient {
    http: reqwest::Client,
    ended: Arc<Mutex<Ended>>,
}

/// Reply streams that ended, by their last event id: how many resumes in a row brought
/// nothing so far.
#[derive(Default)]
struct Ended {
    empty_resumes: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl Ended {
    fn remember(&mut self, last_id: String, empty_resumes: u32) {
        if self.empty_resumes.insert(last_id.clone(), empty_resumes).is_none() {
            self.order.push_back(last_id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.empty_resumes.remove(&oldest);
            }
        }
    }

    fn take(&mut self, last_id: &str) -> Option<u32> {
        let empty = self.empty_resumes.remove(last_id)?;
        self.order.retain(|id| id != last_id);
        Some(empty)
    }
}

impl ResumingClient {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        Self { http, ended: Arc::default() }
    }

    fn ended(&self) -> MutexGuard<'_, Ended> {
        // Never held across an await; a poisoned map is still a valid map.
        self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn follow(&self, stream: SseStream, last_id: Option<String>, empty_resumes: u32) -> SseStream {
        Box::pin(Followed {
            inner: stream,
            ended: self.ended.clone(),
            last_id,
            empty_resumes,
            data_last: false,
            done: false,
        })
    }

    fn followed_post(&self, response: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
        match response {
            StreamableHttpPostResponse::Sse(stream, session) => {
                StreamableHttpPostResponse::Sse(self.follow(stream, None, 0), session)
            }
            other => other,
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
        let Some(empty_resumes) = self.ended().take(&last_id) else {
            // Not a reply stream followed here: the standalone stream coming back.
            return open.await;
        };
        if empty_resumes >= MAX_EMPTY_RESUMES {
            tracing::warn!(
                last_event_id = %last_id,
                "an upstream ended a reply stream {empty_resumes} times in a row without a message; not resuming it"
            );
            // rmcp stops retrying at once on this error, and fails the call waiting on it.
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        match open.await {
            Ok(stream) => Ok(self.follow(stream, Some(last_id), empty_resumes + 1)),
            Err(e) => {
                // rmcp may try again (its retry policy); the count stays.
                self.ended().remember(last_id, empty_resumes);
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
    empty_resumes: u32,
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
            ended.remember(last_id, self.empty_resumes);
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
                    self.empty_resumes = 0;
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
        let response = self.http.post_message(uri, message, session_id, auth_header, custom_headers).await?;
        Ok(self.followed_post(response))
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let response = self
            .http
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        Ok(self.followed_post(response))
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
        ResumingClient::new(reqwest::Client::new())
    }

    #[tokio::test]
    async fn a_reply_that_ends_before_its_message_is_remembered_and_an_answered_one_is_not() {
        let c = client();
        c.follow(stream(vec![event("p1", "")]), None, 0).collect::<Vec<_>>().await;
        assert_eq!(c.ended().take("p1"), Some(0));
        c.follow(stream(vec![event("p2", ""), event("r2", "{}")]), None, 0).collect::<Vec<_>>().await;
        assert_eq!(c.ended().take("p2"), None);
        assert_eq!(c.ended().take("r2"), None);
    }

    #[tokio::test]
    async fn resumes_that_bring_nothing_are_refused_past_the_bound_and_a_message_resets_the_count() {
        let c = client();
        c.ended().remember("p0".into(), 0);
        for n in 1..=MAX_EMPTY_RESUMES {
            let open = async { Ok(stream(vec![event(&format!("p{n}"), "")])) };
            let resumed = c.reopen(Some(format!("p{}", n - 1)), open).await.expect("resumed");
            resumed.collect::<Vec<_>>().await;
        }
        let last = format!("p{MAX_EMPTY_RESUMES}");
        let refused = c.reopen(Some(last), async { panic!("a refused resume opens nothing") }).await;
        assert!(matches!(refused, Err(StreamableHttpError::ServerDoesNotSupportSse)));

        c.ended().remember("q0".into(), MAX_EMPTY_RESUMES - 1);
        let open = async { Ok(stream(vec![event("m1", "{}"), event("q1", "")])) };
        c.reopen(Some("q0".into()), open).await.expect("resumed").collect::<Vec<_>>().await;
        assert_eq!(c.ended().take("q1"), Some(0), "a message starts the count again");
    }

    #[tokio::test]
    async fn the_standalone_stream_is_never_bounded_and_a_failed_resume_keeps_its_count() {
        let c = client();
        let open = async { Ok(stream(vec![event("s1", "")])) };
        c.reopen(Some("unknown".into()), open).await.expect("opened").collect::<Vec<_>>().await;
        assert_eq!(c.ended().take("s1"), None, "a stream not followed from a POST is not counted");

        c.ended().remember("f0".into(), 3);
        let failed = c.reopen(Some("f0".into()), async { Err(StreamableHttpError::UnexpectedEndOfStream) }).await;
        assert!(failed.is_err());
        assert_eq!(c.ended().take("f0"), Some(3));
    }

    #[test]
    fn only_the_newest_ended_streams_are_remembered() {
        let mut ended = Ended::default();
        for n in 0..REMEMBERED + 8 {
            ended.remember(format!("e{n}"), 0);
        }
        assert_eq!((ended.order.len(), ended.empty_resumes.len()), (REMEMBERED, REMEMBERED));
        assert_eq!(ended.take("e7"), None);
        assert_eq!(ended.take("e8"), Some(0));
    }
}
