//! The rmcp `Transport` a session's server runs over: client messages come in on a
//! bounded channel, and server messages go straight to an [`Outbound`] sink, with no
//! channel hop or task in between.
//!
//! The transport also sees every message of the session, so it is what knows when the
//! session is quiet: no client request unanswered, no request of the server's unanswered,
//! nothing either way for a while. Then it can *park*: hand its inbound channel back to the
//! session's supervisor and end rmcp's serve loop, whose channels and task are most of an
//! idle session's memory (see [`crate::session`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, JsonRpcMessage, JsonRpcRequest, RequestId,
    ServerJsonRpcMessage, ServerNotification,
};
use rmcp::transport::Transport;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::direct::Answer;
use crate::handshake::Handshake;
use crate::unfinished::Unfinished;

/// The sink was closed: the session is gone.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the session's outbound sink is closed")]
pub struct OutboundClosed;

/// Where a session's server sends its messages. The HTTP edge implements it by routing
/// each message to the right open stream.
pub trait Outbound: Send + Sync + 'static {
    /// Delivers one message. Work that fixes the order of messages must happen before this
    /// returns; the future may only wait for room.
    fn deliver(
        &self,
        message: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static;

    /// Whether [`Outbound::initialized`] does anything: only then does the session keep a
    /// handle to call it.
    const RECORDS_HANDSHAKE: bool = false;

    /// The session's handshake completed; the answer to `initialize` leaves once the
    /// future is done. A cluster writes the handshake to its store here, so that a session
    /// whose id a client was given can be taken over by another instance.
    fn initialized(&self, _handshake: &Handshake) -> impl Future<Output = ()> + Send + 'static {
        std::future::ready(())
    }
}

type RecordFn = dyn Fn(&Handshake) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// Calls a session's [`Outbound::initialized`] from its server, which does not know the
/// outbound's type.
#[derive(Clone)]
pub struct Recorder(Arc<RecordFn>);

impl Recorder {
    /// A recorder over `outbound`.
    pub fn new<O: Outbound>(outbound: Arc<O>) -> Self {
        Self(Arc::new(move |handshake| Box::pin(outbound.initialized(handshake))))
    }

    /// Records the handshake.
    pub async fn record(&self, handshake: &Handshake) {
        (self.0)(handshake).await;
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

/// Client messages on their way to a session's server. Boxed: a channel allocates its
/// slots up front, and a slot the size of a pointer rather than of a message keeps an idle
/// session small.
pub type Inbound = mpsc::Receiver<Box<ClientJsonRpcMessage>>;

type NotifyFn = dyn Fn(ServerNotification) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// Sends notifications straight to a session's client, whether or not its server is
/// running: what upstreams announce to every session (list changes, resource updates, logs
/// outside a call) reaches parked sessions too.
#[derive(Clone)]
pub struct Notifier(Arc<NotifyFn>);

impl Notifier {
    /// A notifier over `outbound`.
    pub fn new<O: Outbound>(outbound: Arc<O>) -> Self {
        Self(Arc::new(move |notification| {
            let delivered = outbound.deliver(ServerJsonRpcMessage::notification(notification));
            Box::pin(async move {
                let _ = delivered.await;
            })
        }))
    }

    /// Delivers one notification (waiting for room; dropped if the session is gone).
    pub async fn notify(&self, notification: ServerNotification) {
        (self.0)(notification).await;
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

/// When and whether a transport may park.
pub(crate) struct Parking {
    /// Quiet this long, it parks.
    pub(crate) after: Duration,
    /// Cleared while the session holds state only a running server keeps (its own
    /// upstream connections).
    pub(crate) allowed: Arc<AtomicBool>,
    /// Where the inbound channel goes when it parks.
    pub(crate) to: oneshot::Sender<Inbound>,
}

/// Calls a session's server without its message loop (`crate::direct`).
pub(crate) type CallDirect = dyn Fn(JsonRpcRequest<ClientRequest>, CancellationToken) -> Answer + Send + Sync;

/// Where a run's direct server goes once its peer exists (after the handshake, or at once
/// for a run that starts initialized). Until then every request takes the loop.
pub(crate) type DirectSlot = Arc<OnceLock<Box<CallDirect>>>;

/// The requests a transport hands to its session's server directly (`crate::direct`).
struct Direct {
    server: DirectSlot,
    /// Those still running on a task of their own, by the client's id: what the client's
    /// `notifications/cancelled` cancels, and what keeps the session from parking.
    running: Arc<Mutex<HashMap<RequestId, CancellationToken>>>,
    /// The session's: ending the session cancels what still runs.
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Direct {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, CancellationToken>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether nothing but its answer can come for `request`, so it may skip the loop: a
/// request that reads or calls (no lifecycle, subscription or logging-level change, which
/// must stay in order with what the loop does), with no progress token.
fn only_its_answer(request: &JsonRpcRequest<ClientRequest>) -> bool {
    matches!(
        request.request,
        ClientRequest::CallToolRequest(_)
            | ClientRequest::ListToolsRequest(_)
            | ClientRequest::ReadResourceRequest(_)
            | ClientRequest::ListResourcesRequest(_)
            | ClientRequest::ListResourceTemplatesRequest(_)
            | ClientRequest::GetPromptRequest(_)
            | ClientRequest::ListPromptsRequest(_)
            | ClientRequest::CompleteRequest(_)
            | ClientRequest::PingRequest(_)
    ) && request.request.get_meta().get_progress_token().is_none()
}

/// The server's message for a request's outcome.
fn answered(result: Result<rmcp::model::ServerResult, rmcp::ErrorData>, id: RequestId) -> ServerJsonRpcMessage {
    match result {
        Ok(result) => JsonRpcMessage::response(result, id),
        Err(error) => JsonRpcMessage::error(error, Some(id)),
    }
}

/// A bounded inbound channel and an outbound sink, as an rmcp server transport.
pub struct ChannelTransport<O> {
    /// `None` once parked.
    inbound: Option<Inbound>,
    /// The message that woke a parked session, delivered first.
    first: Option<ClientJsonRpcMessage>,
    outbound: Arc<O>,
    /// Client requests not answered yet.
    client_requests: usize,
    /// The server's own requests (sampling, elicitation, roots, ping) not answered yet.
    server_requests: HashSet<i64>,
    /// Added to the ids of the server's requests. Each run of a session's server numbers
    /// its requests from 0; an offset per run keeps them unique within the session, as
    /// the spec requires of a requester.
    id_offset: i64,
    last_activity: Instant,
    parking: Option<(Parking, Pin<Box<Sleep>>)>,
    direct: Option<Direct>,
    /// A direct answer on its way out (still waiting for room when rmcp dropped `receive`).
    answering: Unfinished,
}

impl<O: Outbound> ChannelTransport<O> {
    /// A transport that reads `inbound` and writes to `outbound`, and never parks.
    pub fn new(inbound: Inbound, outbound: Arc<O>) -> Self {
        Self {
            inbound: Some(inbound),
            first: None,
            outbound,
            client_requests: 0,
            server_requests: HashSet::new(),
            id_offset: 0,
            last_activity: Instant::now(),
            parking: None,
            direct: None,
            answering: Unfinished::default(),
        }
    }

    /// Hands the requests only their answer can come for to the server in `server`, once
    /// it is there, rather than to the loop; those that wait run on tasks of `tasks`, and
    /// are cancelled when `cancel` fires.
    pub(crate) fn direct(mut self, server: DirectSlot, cancel: CancellationToken, tasks: TaskTracker) -> Self {
        self.direct = Some(Direct { server, running: Arc::default(), cancel, tasks });
        self
    }

    /// Parks after `parking.after` of quiet; `run` is the number of this server run in the
    /// session (0 for the first).
    pub(crate) fn parking(mut self, parking: Parking, run: u32) -> Self {
        let deadline = self.last_activity + parking.after;
        self.parking = Some((parking, Box::pin(tokio::time::sleep_until(deadline))));
        self.id_offset = i64::from(run) << 32;
        self
    }

    /// Delivers `message` before anything else in the channel (it woke the session).
    pub(crate) fn starting_with(mut self, message: ClientJsonRpcMessage) -> Self {
        self.first = Some(message);
        self
    }

    /// Notes activity; only a transport that may park needs the clock read per message.
    fn touch(&mut self) {
        if self.parking.is_some() {
            self.last_activity = Instant::now();
        }
    }

    fn quiescent(&self) -> bool {
        self.client_requests == 0
            && self.server_requests.is_empty()
            && self.direct.as_ref().is_none_or(|d| d.running().is_empty())
    }

    /// Serves `message` directly when it may skip the loop (`crate::direct`); else gives it
    /// back for the loop. An answer ready at the first poll (a built-in tool, a list the
    /// catalog holds) is sent by `receive` before it reads on, with no task and no wake-up;
    /// one that waits goes on a task of its own.
    fn serve_directly(&mut self, message: ClientJsonRpcMessage) -> Option<ClientJsonRpcMessage> {
        let Some(direct) = &self.direct else { return Some(message) };
        let request = match message {
            JsonRpcMessage::Request(request) if only_its_answer(&request) => request,
            JsonRpcMessage::Notification(n) => {
                // The client's cancel of a request running directly reaches it here (the
                // loop does not know it).
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                    && let Some(token) = direct.running().remove(id)
                {
                    token.cancel();
                    return None;
                }
                return Some(JsonRpcMessage::Notification(n));
            }
            other => return Some(other),
        };
        let Some(server) = direct.server.get() else { return Some(JsonRpcMessage::Request(request)) };
        let id = request.id.clone();
        let cancel = direct.cancel.child_token();
        let mut answer = server(request, cancel.clone());
        // Polled with a waker that does nothing: a pending answer is polled again at once
        // by its task, which leaves its own waker with whatever it waits on.
        let first = answer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        if let Poll::Ready(result) = first {
            let mut message = answered(result, id);
            self.gave(&mut message);
            let delivery = self.outbound.deliver(message);
            self.answering.start(async move {
                let _ = delivery.await;
            });
            return None;
        }
        // Counted as running until its answer is out, not as a request of the loop's.
        self.client_requests = self.client_requests.saturating_sub(1);
        direct.running().insert(id.clone(), cancel);
        let (running, outbound) = (direct.running.clone(), self.outbound.clone());
        direct.tasks.spawn(tracing::Instrument::in_current_span(async move {
            let message = answered(answer.await, id.clone());
            // Sent unless the client cancelled it meanwhile (then it expects no answer).
            let cancelled = running.lock().unwrap_or_else(PoisonError::into_inner).remove(&id).is_none();
            if !cancelled {
                let _ = outbound.deliver(message).await;
            }
        }));
        None
    }

    /// Books a client message in; answers to the server's requests get their ids back.
    fn took(&mut self, message: &mut ClientJsonRpcMessage) {
        self.touch();
        match message {
            ClientJsonRpcMessage::Request(_) => self.client_requests += 1,
            ClientJsonRpcMessage::Response(r) => self.answered(&mut r.id),
            ClientJsonRpcMessage::Error(e) => {
                if let Some(id) = e.id.as_mut() {
                    self.answered(id);
                }
            }
            ClientJsonRpcMessage::Notification(_) => {}
        }
    }

    fn answered(&mut self, id: &mut RequestId) {
        if let RequestId::Number(n) = id
            && self.server_requests.remove(n)
        {
            *n -= self.id_offset;
        }
    }

    /// Books a server message out; the server's own requests get session-unique ids.
    fn gave(&mut self, message: &mut ServerJsonRpcMessage) {
        self.touch();
        match message {
            ServerJsonRpcMessage::Request(r) => {
                if let RequestId::Number(n) = &mut r.id {
                    *n += self.id_offset;
                    self.server_requests.insert(*n);
                }
            }
            ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_) => {
                self.client_requests = self.client_requests.saturating_sub(1);
            }
            ServerJsonRpcMessage::Notification(_) => {}
        }
    }

    /// Waits for the next client message, or parks and returns `None` once the session
    /// has been quiet long enough.
    async fn next(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let Self { inbound, parking, .. } = self;
            let inbound = inbound.as_mut()?;
            let message = match parking {
                None => inbound.recv().await,
                Some((_, timer)) => tokio::select! {
                    biased;
                    message = inbound.recv() => message,
                    () = timer.as_mut() => {
                        if self.try_park() {
                            return None;
                        }
                        continue;
                    }
                },
            };
            let mut message = *message?;
            self.took(&mut message);
            return Some(message);
        }
    }

    /// Parks if the session has been quiet long enough; else sets the timer again. The
    /// timer is only moved when it fires, so busy sessions pay no timer work per message.
    fn try_park(&mut self) -> bool {
        let quiet = self.quiescent() && self.inbound.as_ref().is_some_and(mpsc::Receiver::is_empty);
        let last = self.last_activity;
        let Some((parking, timer)) = &mut self.parking else { return false };
        let due = last + parking.after;
        let may = quiet && parking.allowed.load(Ordering::Acquire);
        let now = Instant::now();
        if !may || now < due {
            // Look again when it could be due: one period after the last activity, or
            // (while something is unanswered, or parking is off) one period from now.
            let next = if may { due } else { now + parking.after };
            timer.as_mut().reset(next.max(now + Duration::from_millis(1)));
            return false;
        }
        let (Some((parking, _)), Some(inbound)) = (self.parking.take(), self.inbound.take()) else { return false };
        if let Err(inbound) = parking.to.send(inbound) {
            // The supervisor is gone (the session is ending): keep the channel, so ending
            // the serve loop closes it as usual.
            self.inbound = Some(inbound);
        }
        true
    }
}

impl<O: Outbound> Transport<RoleServer> for ChannelTransport<O> {
    type Error = OutboundClosed;

    fn send(
        &mut self,
        mut item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
        self.gave(&mut item);
        self.outbound.deliver(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            self.answering.finish().await;
            let message = match self.first.take() {
                Some(mut message) => {
                    self.took(&mut message);
                    message
                }
                None => self.next().await?,
            };
            if let Some(message) = self.serve_directly(message) {
                return Some(message);
            }
        }
    }

    async fn close(&mut self) -> Result<(), OutboundClosed> {
        if let Some(inbound) = self.inbound.as_mut() {
            inbound.close();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rmcp::model::{
        ClientJsonRpcMessage, ClientResult, EmptyResult, PingRequest, ServerJsonRpcMessage, ServerRequest,
    };

    use super::*;

    /// Keeps what the server sent.
    #[derive(Default)]
    struct Kept(Mutex<Vec<ServerJsonRpcMessage>>);

    impl Outbound for Kept {
        fn deliver(
            &self,
            message: ServerJsonRpcMessage,
        ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
            self.0.lock().expect("not poisoned").push(message);
            async { Ok(()) }
        }
    }

    fn parking(after: Duration) -> (Parking, oneshot::Receiver<Inbound>) {
        let (to, parked) = oneshot::channel();
        (Parking { after, allowed: Arc::new(AtomicBool::new(true)), to }, parked)
    }

    fn kept_ids(kept: &Kept) -> Vec<RequestId> {
        kept.0
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|m| match m {
                ServerJsonRpcMessage::Request(r) => Some(r.id.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_run_numbers_its_requests_apart_and_maps_the_answers_back() {
        let (tx, rx) = mpsc::channel(4);
        let kept = Arc::new(Kept::default());
        let (parking, _parked) = parking(Duration::from_secs(1));
        let mut transport = ChannelTransport::new(rx, kept.clone()).parking(parking, 2);
        let ping = ServerRequest::PingRequest(PingRequest::default());
        transport.send(ServerJsonRpcMessage::request(ping, RequestId::Number(0))).await.expect("sent");
        assert_eq!(kept_ids(&kept), vec![RequestId::Number(2 << 32)]);

        let answer =
            ClientJsonRpcMessage::response(ClientResult::EmptyResult(EmptyResult {}), RequestId::Number(2 << 32));
        tx.send(Box::new(answer)).await.expect("room");
        match transport.receive().await {
            Some(ClientJsonRpcMessage::Response(r)) => assert_eq!(r.id, RequestId::Number(0)),
            other => panic!("expected the answer, got {other:?}"),
        }
        // Answered: nothing keeps the session from parking.
        assert!(transport.quiescent());
    }

    #[tokio::test(start_paused = true)]
    async fn parks_only_when_quiet_and_hands_the_channel_back() {
        let (tx, rx) = mpsc::channel(4);
        let kept = Arc::new(Kept::default());
        let (parking, parked) = parking(Duration::from_secs(1));
        let mut transport = ChannelTransport::new(rx, kept.clone()).parking(parking, 0);

        // A request in flight: time passes, the transport does not park.
        let ping = ClientJsonRpcMessage::request(
            rmcp::model::ClientRequest::PingRequest(PingRequest::default()),
            RequestId::Number(1),
        );
        tx.send(Box::new(ping)).await.expect("room");
        assert!(transport.receive().await.is_some());
        let waiting = tokio::time::timeout(Duration::from_secs(5), transport.receive()).await;
        assert!(waiting.is_err(), "parked with a request unanswered");

        // Answered: after a quiet second it parks, and the channel comes back still open.
        let answer = ServerJsonRpcMessage::response(rmcp::model::ServerResult::empty(()), RequestId::Number(1));
        transport.send(answer).await.expect("sent");
        assert!(transport.receive().await.is_none(), "did not park");
        let mut inbound = parked.await.expect("the channel comes back");
        tx.send(Box::new(ClientJsonRpcMessage::notification(
            rmcp::model::ClientNotification::InitializedNotification(Default::default()),
        )))
        .await
        .expect("open");
        assert!(inbound.recv().await.is_some());
    }

    fn call(id: i64, progress: bool) -> ClientJsonRpcMessage {
        let mut request = ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
            rmcp::model::CallToolRequestParams::new("echo"),
        ));
        if progress {
            let token = rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(9));
            request.get_meta_mut().set_progress_token(token);
        }
        ClientJsonRpcMessage::request(request, RequestId::Number(id))
    }

    fn cancel_of(id: i64) -> ClientJsonRpcMessage {
        let params = rmcp::model::CancelledNotificationParam::new(Some(RequestId::Number(id)), None);
        ClientJsonRpcMessage::notification(ClientNotification::CancelledNotification(
            rmcp::model::CancelledNotification::new(params),
        ))
    }

    /// A direct server that answers at once, or (`hold`) only once cancelled.
    fn fake_server(hold: bool) -> Box<CallDirect> {
        Box::new(move |_request, cancel: CancellationToken| -> Answer {
            Box::pin(async move {
                if hold {
                    cancel.cancelled().await;
                    return Err(rmcp::ErrorData::internal_error("cancelled", None));
                }
                Ok(rmcp::model::ServerResult::empty(()))
            })
        })
    }

    fn answers(kept: &Kept) -> Vec<RequestId> {
        kept.0
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|m| match m {
                ServerJsonRpcMessage::Response(r) => Some(r.id.clone()),
                ServerJsonRpcMessage::Error(e) => e.id.clone(),
                _ => None,
            })
            .collect()
    }

    /// A transport with a direct slot (empty), what it sent, and the tasks of its direct calls.
    #[allow(clippy::type_complexity)]
    fn direct_transport()
    -> (mpsc::Sender<Box<ClientJsonRpcMessage>>, ChannelTransport<Kept>, Arc<Kept>, DirectSlot, TaskTracker) {
        let (tx, rx) = mpsc::channel(8);
        let kept = Arc::new(Kept::default());
        let slot = DirectSlot::default();
        let tasks = TaskTracker::new();
        let transport =
            ChannelTransport::new(rx, kept.clone()).direct(slot.clone(), CancellationToken::new(), tasks.clone());
        (tx, transport, kept, slot, tasks)
    }

    #[tokio::test]
    async fn a_request_only_its_answer_can_come_for_is_answered_without_the_loop_once_the_server_is_there() {
        let (tx, mut transport, kept, slot, tasks) = direct_transport();

        // Before the run's server is there (its handshake), the loop gets it.
        tx.send(Box::new(call(1, false))).await.expect("room");
        assert!(matches!(transport.receive().await, Some(ClientJsonRpcMessage::Request(_))));
        transport
            .send(ServerJsonRpcMessage::response(rmcp::model::ServerResult::empty(()), RequestId::Number(1)))
            .await
            .expect("sent");

        let _ = slot.set(fake_server(false));
        // With a progress token the loop gets it too: its progress must come before its answer.
        tx.send(Box::new(call(2, true))).await.expect("room");
        tx.send(Box::new(call(3, false))).await.expect("room");
        assert!(
            matches!(transport.receive().await, Some(ClientJsonRpcMessage::Request(r)) if r.id == RequestId::Number(2))
        );
        // Request 3 is answered by the server directly; the loop sees the next message only.
        tx.send(Box::new(ClientJsonRpcMessage::notification(ClientNotification::InitializedNotification(
            Default::default(),
        ))))
        .await
        .expect("room");
        assert!(matches!(transport.receive().await, Some(ClientJsonRpcMessage::Notification(_))));
        assert_eq!(answers(&kept), vec![RequestId::Number(1), RequestId::Number(3)]);
        assert_eq!(tasks.len(), 0, "an answer ready at once needs no task");
        assert_eq!(transport.client_requests, 1, "only request 2 is unanswered");
    }

    /// A stream with no room for what is sent until the test makes some.
    struct Full {
        room: Arc<tokio::sync::Semaphore>,
        kept: Arc<Kept>,
    }

    impl Outbound for Full {
        fn deliver(
            &self,
            message: ServerJsonRpcMessage,
        ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
            let (room, kept) = (self.room.clone(), self.kept.clone());
            async move {
                let _room = room.acquire().await;
                kept.0.lock().expect("not poisoned").push(message);
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_direct_answer_waiting_for_room_when_rmcp_drops_receive_goes_out_before_the_next_message() {
        let (tx, rx) = mpsc::channel(8);
        let (room, kept) = (Arc::new(tokio::sync::Semaphore::new(0)), Arc::new(Kept::default()));
        let slot = DirectSlot::default();
        let full = Arc::new(Full { room: room.clone(), kept: kept.clone() });
        let mut transport =
            ChannelTransport::new(rx, full).direct(slot.clone(), CancellationToken::new(), TaskTracker::new());
        let _ = slot.set(fake_server(false));
        tx.send(Box::new(call(1, false))).await.expect("room");
        tx.send(Box::new(cancel_of(99))).await.expect("room");
        {
            // rmcp's loop polls `receive` once, then serves another branch and drops it.
            let mut receiving = Box::pin(transport.receive());
            let polled = receiving.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(polled.is_pending(), "the answer waits for room");
        }
        room.add_permits(1);
        assert!(matches!(transport.receive().await, Some(ClientJsonRpcMessage::Notification(_))));
        assert_eq!(answers(&kept), vec![RequestId::Number(1)], "the answer went out, first");
    }

    #[tokio::test]
    async fn a_direct_request_that_waits_runs_on_a_task_keeps_the_session_busy_and_is_cancelled_by_its_client() {
        let (tx, mut transport, kept, slot, tasks) = direct_transport();
        let _ = slot.set(fake_server(true));

        tx.send(Box::new(call(4, false))).await.expect("room");
        tx.send(Box::new(cancel_of(4))).await.expect("room");
        tx.send(Box::new(call(5, false))).await.expect("room");
        tx.send(Box::new(cancel_of(99))).await.expect("room");
        // 4 runs on a task; its cancel is taken here; 5 runs too; a cancel of an id that
        // is not running directly goes on to the loop.
        assert!(matches!(transport.receive().await, Some(ClientJsonRpcMessage::Notification(_))));
        let running: Vec<RequestId> = transport.direct.as_ref().expect("direct").running().keys().cloned().collect();
        assert_eq!(running, vec![RequestId::Number(5)], "4 was cancelled, 5 still runs");
        assert!(!transport.quiescent(), "a direct request still running keeps the session from parking");
        assert!(answers(&kept).is_empty(), "a cancelled request gets no answer");

        // The session's end cancels 5, whose answer then goes out.
        transport.direct.as_ref().expect("direct").cancel.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("the task ended");
        assert_eq!(answers(&kept), vec![RequestId::Number(5)]);
        assert!(transport.quiescent());
    }
}
