//! [`Hub`]: the modern hub as the HTTP edge sees it. One long-lived MCP server serves every
//! stateless (2026-07-28) request; the hub is its inbound channel and the table that sends
//! each of its answers back to the POST that asked.
//!
//! Clients choose their JSON-RPC ids and progress tokens, so two clients' requests collide
//! in one server. Each request therefore enters the server under a hub-unique id (a
//! number), and its progress token, if it has one, under the same number; the client's own
//! id and token are put back on the way out. Nothing else is kept: an entry lives from the
//! POST to its answer (or to the client leaving), so the hub holds no state a client could
//! need from this instance in particular.
//!
//! A request whose POST goes away before its answer (the client closed the event stream
//! or the connection) is cancelled at once: the server gets `notifications/cancelled` for
//! it, and whatever it sends for that request afterwards is dropped (2026-07-28: closing
//! the stream is the cancellation).
//!
//! A `subscriptions/listen` request is a request like the others whose answer comes only
//! when the subscription ends; meanwhile the server's list changes and resource updates,
//! which belong to no request, go to the listeners that asked for them (module `listen`).
//!
//! A request that nothing but its answer can come for (no progress token, no log level,
//! not a listen) skips the server's message loop when the hub has a [`Direct`] server: it
//! runs on a task of its own and its answer is routed like the loop's (module `direct`).

#![allow(deprecated)] // LoggingLevel is deprecated in 2026-07-28, and still how a request names one

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use rmcp::ErrorData;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification, ClientRequest,
    ErrorCode, GetExtensions, GetMeta, JsonRpcMessage, JsonRpcRequest, LoggingLevel, NumberOrString, ProgressToken,
    RequestId, ResultType, ServerJsonRpcMessage, ServerNotification, ServerRequest, ServerResult,
    SubscriptionsListenResult,
};
use rmcp::service::OriginatingRequestId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::outgoing::Outgoing;
use crate::session::Closed;

mod direct;
mod listen;

pub use direct::{Direct, DirectAnswer};
use listen::Listening;
pub use listen::{DEFAULT_MAX_LISTENERS, ListenerSlots};

/// Sizes of the hub's queues.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Requests waiting for the server.
    pub inbound: usize,
    /// Messages waiting to be written to one request's stream.
    pub stream: usize,
    /// How long a message waits for room on a stream whose client is not reading before
    /// the request is given up (and cancelled).
    pub stall: Duration,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self { inbound: 256, stream: 16, stall: Duration::from_secs(5) }
    }
}

/// The hub: the server's inbound channel and the requests it has not answered yet.
#[derive(Debug)]
pub struct Hub {
    inbound: mpsc::Sender<Box<ClientJsonRpcMessage>>,
    pending: Mutex<HashMap<i64, Pending>>,
    next: AtomicI64,
    ended: CancellationToken,
    limits: HubLimits,
    /// Where a cancellation that finds the inbound queue full is sent from.
    tasks: TaskTracker,
    /// The cap on listen streams, shared with the gateway's other hubs.
    listeners: Arc<ListenerSlots>,
    /// Set once its listen streams were ended: it takes no new ones (it is draining or
    /// replaced).
    no_more_listeners: AtomicBool,
    /// The server's handler, for the requests that need not pass its message loop.
    direct: std::sync::OnceLock<Arc<dyn Direct>>,
    me: Weak<Hub>,
}

/// Why the hub did not take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// The hub has ended (shutdown or reload).
    Ended,
    /// A `subscriptions/listen` past the cap on open listen streams.
    TooManyListeners,
}

/// One request between its POST and its answer.
#[derive(Debug)]
struct Pending {
    client_id: RequestId,
    token: Option<ProgressToken>,
    /// The level the request asked log messages from; none asked, none are sent.
    log: Option<LoggingLevel>,
    /// The client capabilities its `_meta` declares, of those an upstream may need.
    declared: Declared,
    tx: mpsc::Sender<Outgoing>,
    /// Set for a `subscriptions/listen` request.
    listen: Option<Listening>,
    /// Set for a request handed to the [`Direct`] server: cancels it there.
    direct: Option<CancellationToken>,
}

/// Which of the capabilities an upstream may ask for mid-call a request declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// `sampling`.
    pub sampling: bool,
    /// `elicitation`.
    pub elicitation: bool,
    /// `roots`.
    pub roots: bool,
}

impl Declared {
    /// What the `clientCapabilities` object of a request's `_meta` declares.
    pub fn from_capabilities(capabilities: Option<&serde_json::Value>) -> Self {
        let has = |name| capabilities.and_then(|c| c.get(name)).is_some_and(|v| !v.is_null());
        Self { sampling: has("sampling"), elicitation: has("elicitation"), roots: has("roots") }
    }

    fn has(self, needed: Needed) -> bool {
        match needed {
            Needed::Sampling => self.sampling,
            Needed::Elicitation => self.elicitation,
            Needed::Roots => self.roots,
        }
    }
}

/// A client capability an upstream's request to the client needs.
#[derive(Debug, Clone, Copy)]
enum Needed {
    Sampling,
    Elicitation,
    Roots,
}

impl Needed {
    /// What a server's request to its client needs, if it is one of those.
    fn of(request: &ServerRequest) -> Option<Self> {
        match request {
            ServerRequest::CreateMessageRequest(_) => Some(Needed::Sampling),
            ServerRequest::ElicitRequest(_) => Some(Needed::Elicitation),
            ServerRequest::ListRootsRequest(_) => Some(Needed::Roots),
            _ => None,
        }
    }

    /// Its key in `ClientCapabilities`.
    fn key(self) -> &'static str {
        match self {
            Needed::Sampling => "sampling",
            Needed::Elicitation => "elicitation",
            Needed::Roots => "roots",
        }
    }
}

/// A request handed to the hub. Dropped before its answer came (the client left), it
/// cancels the request.
#[derive(Debug)]
pub struct Ticket {
    hub: Arc<Hub>,
    key: i64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.hub.abandon(self.key);
    }
}

impl Hub {
    /// A hub, and the receiving end of its inbound channel for the server; `tasks` tracks
    /// the rare cancellation that has to wait for room; `listeners` caps its listen streams.
    pub fn new(
        limits: HubLimits,
        tasks: TaskTracker,
        listeners: Arc<ListenerSlots>,
    ) -> (Arc<Self>, mpsc::Receiver<Box<ClientJsonRpcMessage>>) {
        let (inbound, rx) = mpsc::channel(limits.inbound.max(1));
        let hub = Arc::new_cyclic(|me| Self {
            inbound,
            pending: Mutex::new(HashMap::new()),
            next: AtomicI64::new(1),
            ended: CancellationToken::new(),
            limits,
            tasks,
            listeners,
            no_more_listeners: AtomicBool::new(false),
            direct: std::sync::OnceLock::new(),
            me: me.clone(),
        });
        (hub, rx)
    }

    /// Cancelled when the hub ends; its server runs under it.
    pub fn cancel_token(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Ends the hub: its server stops, and every request waiting on it gets no answer.
    /// The routes go first: stopping the server makes it answer its calls in flight with a
    /// "cancelled" error, which must find no stream to go on (else what a client gets at
    /// shutdown would depend on which thread won).
    pub fn end(&self) {
        self.complete_listeners();
        let routes = std::mem::take(&mut *self.pending());
        self.ended.cancel();
        drop(routes);
    }

    /// Whether the hub has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Requests not answered yet, listen requests aside (they are answered only when the
    /// gateway ends them, so a drain does not wait for them).
    pub fn in_flight(&self) -> usize {
        self.pending().values().filter(|p| p.listen.is_none()).count()
    }

    /// Ends every listen stream cleanly: each gets its listen request's result (2026-07-28:
    /// a successful listen response marks a graceful end), and the server a cancellation
    /// (which ends the subscription there). At drain and reload: the client listens again,
    /// at another instance or on the new configuration.
    pub fn complete_listeners(&self) {
        self.no_more_listeners.store(true, Ordering::SeqCst);
        let listeners: Vec<(i64, Pending)> = {
            let mut pending = self.pending();
            let keys: Vec<i64> = pending.iter().filter(|(_, p)| p.listen.is_some()).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| pending.remove(&k).map(|p| (k, p))).collect()
        };
        for (key, p) in listeners {
            let result =
                ServerResult::SubscriptionsListenResult(SubscriptionsListenResult::complete(p.client_id.clone()));
            if let Some(json) = serialized(&JsonRpcMessage::response(result, p.client_id)) {
                // Best effort: a listener whose queue is full gets its stream ended without it.
                let _ = p.tx.try_send(Outgoing::Message { json, response: true, event: None });
            }
            self.cancel_in_server(key, "the gateway ended the subscription");
        }
    }

    /// Hands a request to the server under a hub-unique id. Returns the stream its answer
    /// (and anything sent for it before) comes on, and the ticket that cancels it when
    /// dropped early. `log` is the level the request asked log messages from.
    pub async fn submit(
        self: &Arc<Self>,
        mut request: JsonRpcRequest<ClientRequest>,
        log: Option<LoggingLevel>,
        declared: Declared,
    ) -> Result<(mpsc::Receiver<Outgoing>, Ticket), NotTaken> {
        if self.is_ended() {
            return Err(NotTaken::Ended);
        }
        let listen = match request.request {
            ClientRequest::SubscriptionsListenRequest(_) => {
                if self.no_more_listeners.load(Ordering::SeqCst) {
                    return Err(NotTaken::Ended);
                }
                Some(Listening::new(self.listeners.take().ok_or(NotTaken::TooManyListeners)?))
            }
            _ => None,
        };
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let meta = request.request.get_meta_mut();
        let token = meta.get_progress_token();
        if token.is_some() {
            meta.set_progress_token(ProgressToken(NumberOrString::Number(key)));
        }
        let (tx, rx) = mpsc::channel(self.limits.stream.max(1));
        let client_id = std::mem::replace(&mut request.id, RequestId::Number(key));
        let direct = self.direct.get().filter(|_| token.is_none() && log.is_none() && listen.is_none()).cloned();
        let cancel = direct.as_ref().map(|_| self.ended.child_token());
        self.pending().insert(key, Pending { client_id, token, log, declared, tx, listen, direct: cancel.clone() });
        // From here on, dropping the ticket (this future included) cancels the request.
        let ticket = Ticket { hub: self.clone(), key };
        if let (Some(server), Some(cancel)) = (direct, cancel) {
            self.run_directly(server, request, cancel).await;
            return Ok((rx, ticket));
        }
        tokio::select! {
            sent = self.inbound.send(Box::new(JsonRpcMessage::Request(request))) => sent.map_err(|_| NotTaken::Ended)?,
            () = self.ended.cancelled() => return Err(NotTaken::Ended),
        }
        Ok((rx, ticket))
    }

    /// Routes one message from the server to the request it belongs to; what belongs to
    /// no request waiting here is dropped (2026-07-28 has no stream for it). The routing
    /// happens before this returns; the future only waits when the stream is full.
    pub fn deliver(&self, message: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Closed>> + Send + use<> {
        let routed = self.route(message);
        let me = self.me.clone();
        let stall = self.limits.stall;
        async move {
            let Some(hub) = me.upgrade() else { return Err(Closed) };
            match routed {
                Routed::Nowhere => {}
                Routed::Wait(key, tx, out) => {
                    if tokio::time::timeout(stall, tx.send(out)).await.is_err() {
                        tracing::warn!("a client is not reading its stateless request's stream; cancelled the request");
                        hub.abandon(key);
                    }
                }
                Routed::Refuse(answer) => {
                    let _ = hub.inbound.send(answer).await;
                }
            }
            Ok(())
        }
    }

    fn route(&self, message: ServerJsonRpcMessage) -> Routed {
        match message {
            JsonRpcMessage::Response(mut r) => {
                let Some((key, p)) = key_of(&r.id).and_then(|k| self.pending().remove(&k).map(|p| (k, p))) else {
                    return Routed::Nowhere;
                };
                if p.listen.is_some() {
                    listen::tag_result(&mut r.result, &p.client_id);
                }
                r.id = p.client_id;
                complete(&mut r.result);
                let out = serialized(&JsonRpcMessage::Response(r)).map(|json| Outgoing::Message {
                    json,
                    response: true,
                    event: None,
                });
                send(key, &p.tx, out)
            }
            JsonRpcMessage::Error(mut e) => {
                let Some((key, p)) =
                    e.id.as_ref().and_then(key_of).and_then(|k| self.pending().remove(&k).map(|p| (k, p)))
                else {
                    return Routed::Nowhere;
                };
                let status = status_of(e.error.code);
                e.id = Some(p.client_id);
                let out = serialized(&JsonRpcMessage::Error(e)).map(|json| Outgoing::Failure { json, status });
                send(key, &p.tx, out)
            }
            JsonRpcMessage::Notification(mut n) => {
                if let Some(subscription) = listen::acknowledges(&mut n.notification) {
                    return self.acknowledge(subscription, n.notification);
                }
                if listen::is_broadcast(&n.notification)
                    && n.notification.extensions().get::<OriginatingRequestId>().is_none()
                {
                    self.broadcast(n.notification);
                    return Routed::Nowhere;
                }
                let (key, tx) = {
                    let pending = self.pending();
                    let found = match &mut n.notification {
                        ServerNotification::ProgressNotification(p) => {
                            let found = key_of_token(&p.params.progress_token)
                                .and_then(|k| pending.get(&k).map(|e| (k, e)))
                                .and_then(|(k, e)| e.token.clone().map(|t| (k, e, t)));
                            found.map(|(k, e, token)| {
                                p.params.progress_token = token;
                                (k, e)
                            })
                        }
                        other => {
                            let origin = other.extensions().get::<OriginatingRequestId>().and_then(|o| key_of(&o.0));
                            let found = origin.and_then(|k| pending.get(&k).map(|e| (k, e)));
                            found.filter(|(_, e)| match other {
                                ServerNotification::LoggingMessageNotification(l) => {
                                    e.log.is_some_and(|wanted| rank(l.params.level) >= rank(wanted))
                                }
                                _ => true,
                            })
                        }
                    };
                    let Some((key, entry)) = found else { return Routed::Nowhere };
                    (key, entry.tx.clone())
                };
                send(key, &tx, serialized(&JsonRpcMessage::Notification(n)).map(Outgoing::other))
            }
            // A request of the server's own: 2026-07-28 puts no requests on a request's
            // stream. The server asks a stateless client through input-required results
            // instead (and ends the call with -32021 itself for a capability the client
            // did not declare), so this is a server that did not: a capability the client
            // did not declare still ends its call with -32021, naming it. Either way the
            // server's request is answered at once rather than left to time out.
            JsonRpcMessage::Request(r) => {
                let needed = Needed::of(&r.request);
                let origin = r.request.extensions().get::<OriginatingRequestId>().and_then(|o| key_of(&o.0));
                if let (Some(needed), Some(key)) = (needed, origin) {
                    self.refuse_undeclared(key, needed);
                }
                let error = ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    "a 2026-07-28 client cannot be asked this on its request's stream",
                    None,
                );
                Routed::Refuse(Box::new(JsonRpcMessage::error(error, Some(r.id))))
            }
        }
    }

    /// The acknowledgement of a listen request, the first message on its stream: the
    /// listener takes what it acknowledges from now on; to the client under its own id.
    fn acknowledge(&self, subscription: RequestId, mut notification: ServerNotification) -> Routed {
        let found = {
            let mut pending = self.pending();
            let Some((key, entry)) = key_of(&subscription).and_then(|k| pending.get_mut(&k).map(|e| (k, e))) else {
                return Routed::Nowhere;
            };
            let Some(listening) = entry.listen.as_mut() else { return Routed::Nowhere };
            if let ServerNotification::SubscriptionsAcknowledgedNotification(ack) = &notification {
                listening.acknowledged(ack.params.notifications.clone());
            }
            (key, entry.client_id.clone(), entry.tx.clone())
        };
        let (key, client_id, tx) = found;
        listen::tag(&mut notification, &client_id);
        send(key, &tx, serialized(&JsonRpcMessage::notification(notification)).map(Outgoing::other))
    }

    /// A list change or resource update, which belongs to no request: to every listener
    /// that asked for it. A listener whose queue is full is ended (counted, logged) rather
    /// than waited for, so one that does not read holds up neither the others nor the
    /// upstream that sent it; its client listens again and lists afresh.
    fn broadcast(&self, notification: ServerNotification) {
        let listeners: Vec<(i64, RequestId, mpsc::Sender<Outgoing>)> = self
            .pending()
            .iter()
            .filter(|(_, p)| p.listen.as_ref().is_some_and(|l| l.wants(&notification)))
            .map(|(k, p)| (*k, p.client_id.clone(), p.tx.clone()))
            .collect();
        for (key, client_id, tx) in listeners {
            let mut tagged = notification.clone();
            listen::tag(&mut tagged, &client_id);
            let Some(json) = serialized(&JsonRpcMessage::notification(tagged)) else { continue };
            if let Err(TrySendError::Full(_)) = tx.try_send(Outgoing::other(json)) {
                self.end_slow_listener(key);
            }
        }
    }

    /// Ends listener `key`, whose client does not read its stream.
    fn end_slow_listener(&self, key: i64) {
        if self.pending().remove(&key).is_none() {
            return;
        }
        self.listeners.count_slow();
        tracing::warn!(request = key, "a listen stream's client is not reading (its queue is full); ended the stream");
        self.cancel_in_server(key, "the client did not read its listen stream");
    }

    /// Ends request `key` with -32021 if its client did not declare `needed`: the client
    /// gets the error (400 when it comes first), and the server a cancellation.
    fn refuse_undeclared(&self, key: i64, needed: Needed) {
        let mut pending = self.pending();
        if pending.get(&key).is_none_or(|entry| entry.declared.has(needed)) {
            return;
        }
        let Some(entry) = pending.remove(&key) else { return };
        drop(pending);
        self.stop_in_server(key, entry.direct.as_ref(), "the client lacks a capability the call needs");
        let needed = needed.key();
        let required = serde_json::json!({ "requiredCapabilities": { needed: {} } });
        let error = ErrorData::new(
            ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("the upstream needs the client's {needed} capability, which this request does not declare"),
            Some(required),
        );
        let status = status_of(error.code);
        if let Some(json) = serialized(&JsonRpcMessage::error(error, Some(entry.client_id))) {
            // The first message on a fresh stream: there is room.
            let _ = entry.tx.try_send(Outgoing::Failure { json, status });
        }
    }

    /// Forgets request `key` if it is still waiting, and then tells the server it is
    /// cancelled.
    fn abandon(&self, key: i64) {
        let Some(gone) = self.pending().remove(&key) else { return };
        let listen = gone.listen.is_some();
        let direct = gone.direct.clone();
        // Dropped first: a listen's slot is free once its end is logged (tests wait for the
        // line, then listen again under a cap of one).
        drop(gone);
        if listen {
            tracing::info!(request = key, "a listen stream's client closed it; the subscription ended");
        } else {
            tracing::info!(request = key, "a stateless request's client left before its answer; cancelled it");
        }
        self.stop_in_server(key, direct.as_ref(), "the client closed the request's stream");
    }

    /// Stops request `key` in the server: a request run directly by its own token, one
    /// handed to the message loop by a cancellation through it.
    fn stop_in_server(&self, key: i64, direct: Option<&CancellationToken>, why: &str) {
        match direct {
            Some(cancel) => cancel.cancel(),
            None => self.cancel_in_server(key, why),
        }
    }

    /// Tells the server request `key` is cancelled.
    fn cancel_in_server(&self, key: i64, why: &str) {
        if self.is_ended() {
            return;
        }
        let param = CancelledNotificationParam::new(Some(RequestId::Number(key)), Some(why.into()));
        let cancel: Box<ClientJsonRpcMessage> = Box::new(JsonRpcMessage::notification(
            ClientNotification::CancelledNotification(CancelledNotification::new(param)),
        ));
        match self.inbound.try_send(cancel) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(cancel)) => {
                let (inbound, ended) = (self.inbound.clone(), self.ended.clone());
                self.tasks.spawn(async move {
                    tokio::select! {
                        _ = inbound.send(cancel) => {}
                        () = ended.cancelled() => {}
                    }
                });
            }
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<i64, Pending>> {
        // Plain data, never locked across an await or a call that could panic half-way.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where a server message goes.
enum Routed {
    /// Nowhere: it belongs to no waiting request.
    Nowhere,
    /// Onto this request's stream, once there is room.
    Wait(i64, mpsc::Sender<Outgoing>, Outgoing),
    /// Back to the server: an answer to a request it made.
    Refuse(Box<ClientJsonRpcMessage>),
}

/// Enqueues `out` on its stream, or hands it back to wait for room.
fn send(key: i64, tx: &mpsc::Sender<Outgoing>, out: Option<Outgoing>) -> Routed {
    let Some(out) = out else { return Routed::Nowhere };
    match tx.try_send(out) {
        Ok(()) | Err(TrySendError::Closed(_)) => Routed::Nowhere,
        Err(TrySendError::Full(out)) => Routed::Wait(key, tx.clone(), out),
    }
}

fn serialized(message: &ServerJsonRpcMessage) -> Option<Bytes> {
    match serde_json::to_vec(message) {
        Ok(json) => Some(Bytes::from(json)),
        Err(e) => {
            tracing::error!(error = %e, "dropping a server message that cannot be serialized");
            None
        }
    }
}

fn key_of(id: &RequestId) -> Option<i64> {
    match id {
        NumberOrString::Number(n) => Some(*n),
        NumberOrString::String(_) => None,
    }
}

fn key_of_token(token: &ProgressToken) -> Option<i64> {
    key_of(&token.0)
}

/// Marks a result that says nothing of its type as complete: 2026-07-28 wants `resultType`
/// on every result, and results relayed from a handshake-era upstream have none.
fn complete(result: &mut ServerResult) {
    let result_type = match result {
        ServerResult::CompleteResult(r) => &mut r.result_type,
        ServerResult::GetPromptResult(r) => &mut r.result_type,
        ServerResult::ListPromptsResult(r) => &mut r.result_type,
        ServerResult::ListResourcesResult(r) => &mut r.result_type,
        ServerResult::ListResourceTemplatesResult(r) => &mut r.result_type,
        ServerResult::ReadResourceResult(r) => &mut r.result_type,
        ServerResult::ListToolsResult(r) => &mut r.result_type,
        ServerResult::CallToolResult(r) => &mut r.result_type,
        _ => return,
    };
    result_type.get_or_insert(ResultType::COMPLETE);
}

/// The HTTP status of a stateless request answered with this error (2026-07-28): the
/// protocol-level refusals are 400, an unknown method 404; any other error is an answer.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::HEADER_MISMATCH
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// Severity order of log levels, least severe first: rmcp declares them in that order (it
/// derives no `Ord`).
fn rank(level: LoggingLevel) -> u8 {
    level as u8
}

#[cfg(test)]
mod listen_tests;
#[cfg(test)]
mod tests;
