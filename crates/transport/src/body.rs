//! The response body: empty, a complete buffer, or a live SSE stream.
//!
//! One enum instead of a boxed trait object, so the hot path allocates nothing for it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use crate::journal::Gate;
use crate::outgoing::Outgoing;
use crate::sse;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// No bytes.
    Empty,
    /// One buffer, sent at once.
    Full(Option<Bytes>),
    /// An event stream that lasts as long as its channel.
    Sse(SseStream),
}

impl Body {
    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }
}

/// Runs when an event stream's body is dropped, that is when the client's connection is
/// gone or the response finished.
pub type OnClose = Box<dyn FnOnce() + Send>;

/// An SSE response body fed by a session's bounded channel.
pub struct SseStream {
    /// Frames written before anything from the channel (the `endpoint` event, or the
    /// first message already taken from the channel).
    prelude: VecDeque<Bytes>,
    rx: mpsc::Receiver<Outgoing>,
    keepalive: Option<Interval>,
    on_close: Option<OnClose>,
    /// The session's event id prefix, when events carry ids.
    prefix: Option<Arc<str>>,
    /// In a cluster, what holds each event back until the store has it (boxed: a single
    /// node's bodies stay as small as they were).
    gated: Option<Box<Gated>>,
}

/// The journal's hold on a stream: its gate, the number the store must reach before the
/// prelude goes, and an event waiting for the store.
struct Gated {
    gate: Gate,
    prelude_seq: u64,
    held: Option<(Outgoing, u64)>,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream").field("prelude", &self.prelude.len()).finish_non_exhaustive()
    }
}

impl SseStream {
    /// A stream of the messages `rx` yields, with a `: keepalive` comment after every
    /// `keepalive` of silence (none when zero).
    pub fn new(rx: mpsc::Receiver<Outgoing>, keepalive: Duration) -> Self {
        let keepalive = (!keepalive.is_zero()).then(|| {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self { prelude: VecDeque::new(), rx, keepalive, on_close: None, prefix: None, gated: None }
    }

    /// Writes an event (and the prelude, once the store reached `prelude_seq`) only once
    /// the session's journal holds it; nothing waits without a gate (a single node).
    pub fn with_gate(mut self, gate: Option<Gate>, prelude_seq: u64) -> Self {
        self.gated = gate.map(|gate| Box::new(Gated { gate, prelude_seq, held: None }));
        self
    }

    /// Writes each message's event id, with the session's prefix.
    pub fn with_event_ids(mut self, prefix: Arc<str>) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// Writes `frame` before anything else.
    pub fn with_prelude(mut self, frame: Bytes) -> Self {
        self.prelude.push_back(frame);
        self
    }

    /// Runs `f` once when the body is dropped.
    pub fn on_close(mut self, f: OnClose) -> Self {
        self.on_close = Some(f);
        self
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        if let Some(f) = self.on_close.take() {
            f();
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Sse(stream) => stream.poll_next(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Sse(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Sse(_) => SizeHint::default(),
        }
    }
}

impl SseStream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(gated) = &mut self.gated {
            // The session was lost to another instance: this one writes nothing more.
            if !self.prelude.is_empty() {
                if !std::task::ready!(gated.gate.poll_written(gated.prelude_seq, cx)) {
                    return Poll::Ready(None);
                }
                gated.prelude_seq = 0;
            } else if let Some((_, seq)) = &gated.held {
                if !std::task::ready!(gated.gate.poll_written(*seq, cx)) {
                    return Poll::Ready(None);
                }
                if let Some((out, _)) = gated.held.take() {
                    return Poll::Ready(Some(out.to_sse(self.prefix.as_deref())));
                }
            }
        }
        if let Some(frame) = self.prelude.pop_front() {
            return Poll::Ready(Some(frame));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(out)) => {
                if let Some(k) = &mut self.keepalive {
                    k.reset();
                }
                if let (Some(gated), Outgoing::Message { event: Some(event), .. }) = (&mut self.gated, &out) {
                    let seq = event.seq;
                    match gated.gate.poll_written(seq, cx) {
                        Poll::Ready(true) => {}
                        Poll::Ready(false) => return Poll::Ready(None),
                        Poll::Pending => {
                            gated.held = Some((out, seq));
                            return Poll::Pending;
                        }
                    }
                }
                Poll::Ready(Some(out.to_sse(self.prefix.as_deref())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match &mut self.keepalive {
                Some(k) => k.poll_tick(cx).map(|_| Some(sse::comment("keepalive"))),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn streams_prelude_then_messages_then_ends() {
        let (tx, rx) = mpsc::channel(4);
        let body = SseStream::new(rx, Duration::ZERO).with_prelude(Bytes::from_static(b"first\n\n"));
        tx.send(Outgoing::other(Bytes::from_static(b"{}"))).await.expect("open");
        drop(tx);
        let all = Body::Sse(body).collect().await.expect("infallible").to_bytes();
        assert_eq!(&all[..], b"first\n\nevent: message\ndata: {}\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn sends_keepalive_comments_when_idle() {
        let (_tx, rx) = mpsc::channel(4);
        let mut body = Body::Sse(SseStream::new(rx, Duration::from_secs(15)));
        let frame = body.frame().await.expect("a frame").expect("infallible");
        assert_eq!(frame.into_data().expect("data"), &b": keepalive\n\n"[..]);
    }

    #[tokio::test]
    async fn on_close_runs_when_dropped() {
        let (_tx, rx) = mpsc::channel(1);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let body = SseStream::new(rx, Duration::ZERO).on_close(Box::new(move || flag.store(true, Ordering::SeqCst)));
        drop(body);
        assert!(closed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_gated_stream_writes_an_event_only_once_the_journal_has_it_and_nothing_once_lost() {
        use crate::event_log::EventId;
        use crate::journal::Journal;
        let journal = Arc::new(Journal::new(0));
        let (tx, rx) = mpsc::channel(4);
        let mut body = Body::Sse(SseStream::new(rx, Duration::ZERO).with_gate(Some(journal.gate()), 0));
        let event = |seq| Outgoing::Message {
            json: Bytes::from_static(b"{}"),
            response: false,
            event: Some(EventId { stream: 0, seq }),
        };
        tx.send(event(1)).await.expect("open");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), body.frame()).await.is_err(),
            "held until the journal has it"
        );
        journal.written_through(1);
        body.frame().await.expect("a frame").expect("infallible");
        tx.send(event(2)).await.expect("open");
        journal.lose();
        assert!(body.frame().await.is_none(), "lost to another instance: the stream ends unwritten");
    }
}
