//! The rmcp `Transport` a session's server runs over: client messages come in on a
//! bounded channel, and server messages go straight to an [`Outbound`] sink, with no
//! channel hop or task in between.

use std::future::Future;

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;

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
}

/// A bounded inbound channel and an outbound sink, as an rmcp server transport. Messages
/// come boxed: a channel allocates its slots up front, and a slot the size of a pointer
/// rather than of a message keeps an idle session small.
pub struct ChannelTransport<O> {
    inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
    outbound: O,
}

impl<O: Outbound> ChannelTransport<O> {
    /// A transport that reads `inbound` and writes to `outbound`.
    pub fn new(inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>, outbound: O) -> Self {
        Self { inbound, outbound }
    }
}

impl<O: Outbound> Transport<RoleServer> for ChannelTransport<O> {
    type Error = OutboundClosed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboundClosed>> + Send + 'static {
        self.outbound.deliver(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.inbound.recv().await.map(|boxed| *boxed)
    }

    async fn close(&mut self) -> Result<(), OutboundClosed> {
        self.inbound.close();
        Ok(())
    }
}
