//! Stateless requests answered without the server's message loop.
//!
//! Through rmcp's loop a request wakes five tasks on its way: the loop (which spawns the
//! handler's task), the handler's, the loop again (the answer), the task it sends the
//! answer from, and the POST's. Handed to the [`Direct`] server, it wakes two: the
//! handler's task, which routes the answer itself, and the POST's; and an answer ready at
//! once (a built-in tool, a list from the catalog) none: it is made and routed in the
//! POST's own task. On two cores, at one client, those wake-ups were close to half of a
//! stateless request's CPU.
//!
//! Only a request for which nothing but its answer can come goes this way: no progress
//! token, no log level, not a listen. Progress and log messages still come through the
//! loop, and an answer that no longer queues behind them could overtake them and end the
//! request's stream first. A request of the server's own to the client, the one other
//! thing that can concern a request, is refused by the routing (2026-07-28 has no place
//! for it) whichever way the request went.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rmcp::ErrorData;
use rmcp::model::{ClientRequest, JsonRpcMessage, JsonRpcRequest, RequestId, ServerJsonRpcMessage, ServerResult};
use tokio_util::sync::CancellationToken;

use super::Hub;

/// A direct server's answer to one request.
pub type DirectAnswer = Pin<Box<dyn Future<Output = Result<ServerResult, ErrorData>> + Send>>;

/// The hub's server, called directly: handles a request as its message loop would.
pub trait Direct: Send + Sync + 'static {
    /// Handles `request`, which carries its hub id; `cancel` fires when its client leaves
    /// or the hub ends (the handler ends the call, as on `notifications/cancelled`).
    fn handle(&self, request: JsonRpcRequest<ClientRequest>, cancel: CancellationToken) -> DirectAnswer;
}

impl std::fmt::Debug for dyn Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

impl Hub {
    /// Hands the requests that need not pass the server's loop to `server` from now on.
    /// Set once; a second call changes nothing.
    pub fn serve_directly(&self, server: Arc<dyn Direct>) {
        let _ = self.direct.set(server);
    }

    /// Runs `request` and routes its answer as one from the loop. An answer that needs no
    /// wait (a built-in tool, a list the catalog holds) is ready at the first poll, made
    /// here: it is routed at once, with no task of its own and none of the wake-ups of
    /// handing it over. Any other goes on a task of its own (tracked: a drain waits for it);
    /// a request whose client left still runs to its end, which `cancel` hastens: its answer
    /// then finds no route and is dropped.
    pub(super) async fn run_directly(
        self: &Arc<Self>,
        server: Arc<dyn Direct>,
        request: JsonRpcRequest<ClientRequest>,
        cancel: CancellationToken,
    ) {
        let id = request.id.clone();
        let mut answer = server.handle(request, cancel);
        // Polled with a waker that does nothing: a pending answer is polled again at once
        // by its task, which leaves its own waker with whatever it waits on.
        let first = answer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        if let Poll::Ready(result) = first {
            // The request's stream is new and empty: this does not wait.
            let _ = self.deliver(answered(result, id)).await;
            return;
        }
        let hub = Arc::downgrade(self);
        self.tasks.spawn(async move {
            let message = answered(answer.await, id);
            let Some(hub) = hub.upgrade() else { return };
            let delivered = hub.deliver(message);
            drop(hub);
            let _ = delivered.await;
        });
    }
}

/// The server's message for a request's outcome.
fn answered(result: Result<ServerResult, ErrorData>, id: RequestId) -> ServerJsonRpcMessage {
    match result {
        Ok(result) => JsonRpcMessage::response(result, id),
        Err(error) => JsonRpcMessage::error(error, Some(id)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rmcp::model::{
        CallToolRequest, CallToolRequestParams, EmptyResult, GetMeta, LoggingLevel, NumberOrString, ProgressToken,
        RequestId,
    };
    use serde_json::Value;
    use tokio::sync::{Notify, mpsc};
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::hub::{Declared, HubLimits, ListenerSlots};
    use crate::outgoing::Outgoing;

    /// A direct server that answers at once, or (`hold`) only once its request is cancelled.
    #[derive(Default)]
    struct Fake {
        seen: Mutex<Vec<RequestId>>,
        hold: bool,
        cancelled: Arc<Notify>,
    }

    impl Direct for Fake {
        fn handle(&self, request: JsonRpcRequest<ClientRequest>, cancel: CancellationToken) -> DirectAnswer {
            self.seen.lock().expect("lock").push(request.id.clone());
            let (hold, cancelled) = (self.hold, self.cancelled.clone());
            Box::pin(async move {
                if hold {
                    cancel.cancelled().await;
                    cancelled.notify_one();
                    return Err(ErrorData::internal_error("cancelled", None));
                }
                Ok(ServerResult::EmptyResult(EmptyResult {}))
            })
        }
    }

    fn hub_with(fake: Arc<Fake>) -> (Arc<Hub>, mpsc::Receiver<Box<rmcp::model::ClientJsonRpcMessage>>) {
        let (hub, looped, _) = hub_tracked(fake);
        (hub, looped)
    }

    fn hub_tracked(fake: Arc<Fake>) -> (Arc<Hub>, mpsc::Receiver<Box<rmcp::model::ClientJsonRpcMessage>>, TaskTracker) {
        let tasks = TaskTracker::new();
        let (hub, looped) = Hub::new(HubLimits::default(), tasks.clone(), Arc::new(ListenerSlots::default()));
        hub.serve_directly(fake);
        (hub, looped, tasks)
    }

    fn call(id: i64, token: Option<i64>) -> JsonRpcRequest<ClientRequest> {
        let mut request = ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("echo")));
        if let Some(t) = token {
            request.get_meta_mut().set_progress_token(ProgressToken(NumberOrString::Number(t)));
        }
        JsonRpcRequest::new(RequestId::Number(id), request)
    }

    fn json(out: &Outgoing) -> Value {
        serde_json::from_slice(out.json().expect("a message")).expect("json")
    }

    #[tokio::test]
    async fn a_request_only_its_answer_can_come_for_skips_the_loop_and_is_answered_under_its_own_id() {
        let fake = Arc::new(Fake::default());
        let (hub, mut looped) = hub_with(fake.clone());
        let (mut a, _ta) = hub.submit(call(7, None), None, Declared::default()).await.expect("submitted");
        let (mut b, _tb) = hub.submit(call(7, None), None, Declared::default()).await.expect("submitted");
        for rx in [&mut a, &mut b] {
            let answer = rx.recv().await.expect("the answer");
            assert!(answer.is_response());
            assert_eq!(json(&answer)["id"], 7, "the client's own id");
            assert!(rx.recv().await.is_none(), "answered: the stream ends");
        }
        let seen = fake.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2);
        assert_ne!(seen[0], seen[1], "each under a hub id of its own");
        assert!(looped.try_recv().is_err(), "nothing went through the loop");
        assert_eq!(hub.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_answer_ready_at_once_is_routed_without_a_task_and_one_that_waits_gets_a_task() {
        let (hub, _looped, tasks) = hub_tracked(Arc::new(Fake::default()));
        let (mut rx, _ticket) = hub.submit(call(1, None), None, Declared::default()).await.expect("submitted");
        assert_eq!(tasks.len(), 0, "no task for an answer ready at once");
        assert!(rx.try_recv().expect("already routed").is_response());

        let fake = Arc::new(Fake { hold: true, ..Fake::default() });
        let (hub, _looped, tasks) = hub_tracked(fake.clone());
        let cancelled = fake.cancelled.notified();
        let (mut rx, ticket) = hub.submit(call(2, None), None, Declared::default()).await.expect("submitted");
        assert_eq!(tasks.len(), 1, "an answer that waits runs on a task of its own");
        drop(ticket);
        tokio::time::timeout(std::time::Duration::from_secs(10), cancelled).await.expect("the task saw the cancel");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_request_that_may_get_progress_or_log_messages_goes_through_the_loop() {
        let fake = Arc::new(Fake::default());
        let (hub, mut looped) = hub_with(fake.clone());
        let _progress = hub.submit(call(1, Some(3)), None, Declared::default()).await.expect("submitted");
        let _logs = hub.submit(call(2, None), Some(LoggingLevel::Info), Declared::default()).await.expect("submitted");
        for _ in 0..2 {
            assert!(looped.try_recv().is_ok(), "through the loop");
        }
        assert!(fake.seen.lock().expect("lock").is_empty(), "not directly");
    }

    #[tokio::test]
    async fn a_direct_request_whose_client_leaves_is_cancelled_there_and_not_in_the_loop() {
        let fake = Arc::new(Fake { hold: true, ..Fake::default() });
        let (hub, mut looped) = hub_with(fake.clone());
        let cancelled = fake.cancelled.notified();
        let (mut rx, ticket) = hub.submit(call(1, None), None, Declared::default()).await.expect("submitted");
        assert_eq!(hub.in_flight(), 1);
        drop(ticket);
        tokio::time::timeout(std::time::Duration::from_secs(10), cancelled).await.expect("the handler saw the cancel");
        assert_eq!(hub.in_flight(), 0);
        assert!(rx.recv().await.is_none(), "its late answer goes nowhere");
        assert!(looped.try_recv().is_err(), "no cancellation through the loop");

        // The hub's end cancels what still runs.
        let cancelled = fake.cancelled.notified();
        let (mut rx, _ticket) = hub.submit(call(2, None), None, Declared::default()).await.expect("submitted");
        hub.end();
        tokio::time::timeout(std::time::Duration::from_secs(10), cancelled).await.expect("cancelled at the end");
        assert!(rx.recv().await.is_none());
    }
}
