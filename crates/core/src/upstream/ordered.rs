//! A wrapper around an upstream's client transport that delivers progress and log
//! notifications to the client before rmcp sees the next message.
//!
//! rmcp handles each incoming notification on a task of its own while it completes
//! responses at once, so a call's last progress notification could reach the client after
//! the call's result, when the result's stream has already ended. Delivering them here, in
//! the order the upstream sent them, keeps every progress notification ahead of its result.

#![allow(deprecated)] // logging is deprecated in 2026-07-28 but lives in every 2025 session

use std::sync::Weak;

use rmcp::RoleClient;
use rmcp::model::{
    ClientJsonRpcMessage, JsonRpcMessage, LoggingMessageNotification, ProgressNotification, ServerJsonRpcMessage,
    ServerNotification,
};
use rmcp::transport::Transport;
use tokio_util::sync::CancellationToken;

/// Where the progress and log notifications of a connection go (its link): a trait, so
/// this module need not know the link that uses it.
pub(crate) trait Deliver: Send + Sync + 'static {
    /// Passes a progress notification to the client whose call it is about.
    fn deliver_progress(&self, n: ProgressNotification) -> impl Future<Output = ()> + Send;
    /// Passes a log message to the sessions it is for.
    fn deliver_log(&self, n: LoggingMessageNotification) -> impl Future<Output = ()> + Send;
}

/// `T`, with progress and log notifications delivered in order.
pub(crate) struct Ordered<T, D> {
    inner: T,
    link: Weak<D>,
    /// Cancelled when the upstream closes its side: calls in flight fail at once.
    lost: CancellationToken,
}

impl<T, D> Ordered<T, D> {
    pub(crate) fn new(inner: T, link: Weak<D>, lost: CancellationToken) -> Self {
        Self { inner, link, lost }
    }
}

impl<T: Transport<RoleClient>, D: Deliver> Transport<RoleClient> for Ordered<T, D> {
    type Error = T::Error;

    fn send(&mut self, item: ClientJsonRpcMessage) -> impl Future<Output = Result<(), T::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        loop {
            let Some(message) = self.inner.receive().await else {
                self.lost.cancel();
                return None;
            };
            let JsonRpcMessage::Notification(note) = message else { return Some(message) };
            let Some(link) = self.link.upgrade() else { return Some(JsonRpcMessage::Notification(note)) };
            match note.notification {
                ServerNotification::ProgressNotification(n) => link.deliver_progress(n).await,
                ServerNotification::LoggingMessageNotification(n) => link.deliver_log(n).await,
                other => return Some(JsonRpcMessage::notification(other)),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), T::Error>> + Send {
        self.inner.close()
    }
}
