//! A wrapper around an upstream's client transport that delivers progress and log
//! notifications to the client before rmcp sees the next message.
//!
//! rmcp handles each incoming notification on a task of its own while it completes
//! responses at once, so a call's last progress notification could reach the client after
//! the call's result, when the result's stream has already ended. Delivering them here, in
//! the order the upstream sent them, keeps every progress notification ahead of its result.

use std::sync::Weak;

use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage, ServerNotification};
use rmcp::transport::Transport;
use tokio_util::sync::CancellationToken;

use crate::upstream::link::Link;

/// `T`, with progress and log notifications delivered in order.
pub(crate) struct Ordered<T> {
    inner: T,
    link: Weak<Link>,
    /// Cancelled when the upstream closes its side: calls in flight fail at once.
    lost: CancellationToken,
}

impl<T> Ordered<T> {
    pub(crate) fn new(inner: T, link: Weak<Link>, lost: CancellationToken) -> Self {
        Self { inner, link, lost }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Ordered<T> {
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
