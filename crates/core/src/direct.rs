//! A server called without rmcp's message loop.
//!
//! Through the loop a request hops tasks four times on its way back: the loop, which
//! spawns the handler's task; the handler's, which hands the answer back; the loop again,
//! which sends it; and the task waiting for it. tokio runs a task woken by the running one
//! next on the same thread, but only three in a row; the fourth goes to the run queue and
//! wakes an idle thread. A request for which nothing but its answer can come (no progress
//! token; not a request that changes what the session is told) is instead handed to the
//! same server directly: `Looped` shares the server between the loop and a
//! [`DirectServer`], which handles a request with a context like the loop's (the same
//! peer, so what the handler sends goes where the loop's would) and returns the answer
//! rather than sending it. The modern hub's stateless requests go this way, and so do a
//! session's (`channel`).

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use rmcp::model::{
    ClientNotification, ClientRequest, GetExtensions, GetMeta, JsonRpcRequest, ProtocolVersion, ServerConfig,
    ServerResult,
};
use rmcp::service::{NotificationContext, Peer, RequestContext};
use rmcp::{ErrorData, RoleServer, Service};
use tokio_util::sync::CancellationToken;

/// A server's answer to one request handed to it directly.
pub type Answer = Pin<Box<dyn Future<Output = Result<ServerResult, ErrorData>> + Send>>;

/// A server as its message loop runs it, shared with the [`DirectServer`] over it.
pub(crate) struct Looped<S>(pub(crate) Arc<S>);

impl<S: Service<RoleServer>> Service<RoleServer> for Looped<S> {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        self.0.handle_request(request, context).await
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.handle_notification(notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        self.0.get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.0.supported_protocol_versions()
    }
}

/// A server called without its message loop: a request is handled on the caller's task
/// with a context like the one the loop makes, and the answer is returned.
pub struct DirectServer<S> {
    service: Arc<S>,
    peer: Peer<RoleServer>,
    span: tracing::Span,
}

impl<S> Clone for DirectServer<S> {
    fn clone(&self) -> Self {
        Self { service: self.service.clone(), peer: self.peer.clone(), span: self.span.clone() }
    }
}

impl<S: Service<RoleServer>> DirectServer<S> {
    pub(crate) fn new(service: Arc<S>, peer: Peer<RoleServer>, span: tracing::Span) -> Self {
        Self { service, peer, span }
    }

    /// Handles `request` as the loop would; `cancel` is its context's token.
    pub fn handle(&self, request: JsonRpcRequest<ClientRequest>, cancel: CancellationToken) -> Answer {
        let JsonRpcRequest { id, mut request, .. } = request;
        let mut context = RequestContext::new(id, self.peer.clone());
        context.ct = cancel;
        // As the loop does: the request's `_meta` and extensions move to the context.
        std::mem::swap(&mut context.meta, request.get_meta_mut());
        std::mem::swap(&mut context.extensions, request.extensions_mut());
        let service = self.service.clone();
        let answer = async move { service.handle_request(request, context).await };
        // Polled in the caller's task, a handler that panics must not take that task (a
        // session's loop, a connection) with it: it fails its own request instead.
        let caught = AssertUnwindSafe(answer).catch_unwind().map(|caught| {
            caught.unwrap_or_else(|_| Err(ErrorData::internal_error("the request's handler failed", None)))
        });
        Box::pin(tracing::Instrument::instrument(caught, self.span.clone()))
    }
}
