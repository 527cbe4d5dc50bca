//! A wrapper around an upstream's client transport that delivers progress, log and
//! `list_changed` notifications before rmcp sees the next message.
//!
//! rmcp handles each incoming notification on a task of its own while it completes
//! responses at once, so a call's last progress notification could reach the client after
//! the call's result, when the result's stream has already ended. Delivering them here, in
//! the order the upstream sent them, keeps every progress notification ahead of its result;
//! and a tool that changes the upstream's tools (announcing it, then answering) has the
//! change known by the time its client has the answer, so a `tools/list` sent next lists
//! the new tools.
//! A delivery under way is kept as [`Unfinished`] work: rmcp drops `receive` whenever
//! another branch of its loop is ready first.

#![allow(deprecated)] // logging is deprecated in 2026-07-28 but lives in every 2025 session

use std::sync::Weak;

use rmcp::RoleClient;
use rmcp::model::{
    ClientJsonRpcMessage, JsonRpcMessage, LoggingMessageNotification, ProgressNotification, ServerJsonRpcMessage,
    ServerNotification,
};
use rmcp::transport::Transport;
use tokio_util::sync::CancellationToken;

use crate::unfinished::Unfinished;

/// Where the progress and log notifications of a connection go (its link): a trait, so
/// this module need not know the link that uses it.
pub(crate) trait Deliver: Send + Sync + 'static {
    /// Passes a progress notification to the client whose call it is about.
    fn deliver_progress(&self, n: ProgressNotification) -> impl Future<Output = ()> + Send;
    /// Passes a log message to the sessions it is for.
    fn deliver_log(&self, n: LoggingMessageNotification) -> impl Future<Output = ()> + Send;
    /// One of the upstream's lists changed (`notifications/*/list_changed`).
    fn deliver_list_changed(&self, n: ServerNotification) -> impl Future<Output = ()> + Send;
}

/// `T`, with progress and log notifications delivered in order.
pub(crate) struct Ordered<T, D> {
    inner: T,
    link: Weak<D>,
    /// Cancelled when the upstream closes its side: calls in flight fail at once.
    lost: CancellationToken,
    /// A notification on its way to the client.
    delivering: Unfinished,
}

impl<T, D> Ordered<T, D> {
    pub(crate) fn new(inner: T, link: Weak<D>, lost: CancellationToken) -> Self {
        Self { inner, link, lost, delivering: Unfinished::default() }
    }
}

impl<T: Transport<RoleClient>, D: Deliver> Transport<RoleClient> for Ordered<T, D> {
    type Error = T::Error;

    fn send(&mut self, item: ClientJsonRpcMessage) -> impl Future<Output = Result<(), T::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        loop {
            self.delivering.finish().await;
            let Some(message) = self.inner.receive().await else {
                self.lost.cancel();
                return None;
            };
            let JsonRpcMessage::Notification(note) = message else { return Some(message) };
            let Some(link) = self.link.upgrade() else { return Some(JsonRpcMessage::Notification(note)) };
            match note.notification {
                ServerNotification::ProgressNotification(n) => {
                    self.delivering.start(async move { link.deliver_progress(n).await });
                }
                ServerNotification::LoggingMessageNotification(n) => {
                    self.delivering.start(async move { link.deliver_log(n).await });
                }
                n @ (ServerNotification::ToolListChangedNotification(_)
                | ServerNotification::PromptListChangedNotification(_)
                | ServerNotification::ResourceListChangedNotification(_)) => {
                    self.delivering.start(async move { link.deliver_list_changed(n).await });
                }
                other => return Some(JsonRpcMessage::notification(other)),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), T::Error>> + Send {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Waker};

    use rmcp::model::{NumberOrString, ProgressNotificationParam, ProgressToken, RequestId, ServerResult};
    use tokio::sync::Semaphore;

    use super::*;

    /// An upstream that has sent what the test gives it, then nothing more.
    struct Sent(VecDeque<ServerJsonRpcMessage>);

    impl Transport<RoleClient> for Sent {
        type Error = Infallible;

        fn send(&mut self, _: ClientJsonRpcMessage) -> impl Future<Output = Result<(), Infallible>> + Send + 'static {
            std::future::ready(Ok(()))
        }

        async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
            match self.0.pop_front() {
                Some(message) => Some(message),
                None => std::future::pending().await,
            }
        }

        async fn close(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    /// A client whose stream has no room until the test opens it.
    struct Slow {
        room: Semaphore,
        delivered: Mutex<Vec<f64>>,
        changed: Mutex<Vec<String>>,
    }

    impl Deliver for Slow {
        async fn deliver_progress(&self, n: ProgressNotification) {
            let _room = self.room.acquire().await;
            self.delivered.lock().expect("not poisoned").push(n.params.progress);
        }

        async fn deliver_log(&self, _: LoggingMessageNotification) {}

        async fn deliver_list_changed(&self, n: ServerNotification) {
            let _room = self.room.acquire().await;
            self.changed.lock().expect("not poisoned").push(format!("{n:?}"));
        }
    }

    fn progress(value: f64) -> ServerJsonRpcMessage {
        let token = ProgressToken(NumberOrString::Number(1));
        JsonRpcMessage::notification(ServerNotification::ProgressNotification(ProgressNotification::new(
            ProgressNotificationParam::new(token, value),
        )))
    }

    #[tokio::test]
    async fn a_delivery_rmcp_interrupts_is_finished_before_the_result_behind_it() {
        let link = Arc::new(Slow { room: Semaphore::new(0), delivered: Mutex::default(), changed: Mutex::default() });
        let result = JsonRpcMessage::response(ServerResult::empty(()), RequestId::Number(1));
        let sent = Sent(VecDeque::from([progress(1.0), progress(2.0), result]));
        let mut ordered = Ordered::new(sent, Arc::downgrade(&link), CancellationToken::new());
        {
            // rmcp's loop polls `receive` once, then serves another branch and drops it.
            let mut receiving = Box::pin(ordered.receive());
            let polled = receiving.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(polled.is_pending(), "the first progress waits for room");
        }
        link.room.add_permits(2);
        let next = ordered.receive().await.expect("the result");
        assert!(matches!(next, JsonRpcMessage::Response(_)), "{next:?}");
        assert_eq!(*link.delivered.lock().expect("not poisoned"), [1.0, 2.0], "both progress notifications, first");
    }

    #[tokio::test]
    async fn a_list_change_the_upstream_sent_before_a_result_is_known_before_the_result() {
        let link = Arc::new(Slow { room: Semaphore::new(1), delivered: Mutex::default(), changed: Mutex::default() });
        let changed = JsonRpcMessage::notification(ServerNotification::ToolListChangedNotification(
            rmcp::model::ToolListChangedNotification::default(),
        ));
        let result = JsonRpcMessage::response(ServerResult::empty(()), RequestId::Number(1));
        let mut ordered =
            Ordered::new(Sent(VecDeque::from([changed, result])), Arc::downgrade(&link), CancellationToken::new());
        let next = ordered.receive().await.expect("the result");
        assert!(matches!(next, JsonRpcMessage::Response(_)), "the change is not left to rmcp's own task: {next:?}");
        let changed = link.changed.lock().expect("not poisoned").clone();
        assert_eq!(changed.len(), 1, "delivered before the result: {changed:?}");
        assert!(changed[0].contains("ToolListChanged"), "{changed:?}");
    }
}
