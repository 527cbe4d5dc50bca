//! Starting one session's MCP server: a fresh rmcp server for every session, so no client
//! ever meets a server another client (or its own earlier connection) already used.

use rmcp::model::ClientJsonRpcMessage;
use rmcp::service::serve_server_with_ct;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::channel::{ChannelTransport, Outbound};
use crate::error::Error;
use crate::proxy::Proxy;
use crate::upstream::set::Upstreams;

/// Builds and starts the MCP server of each new session.
#[derive(Clone)]
pub struct ServerFactory {
    upstreams: Arc<Upstreams>,
    tasks: TaskTracker,
}

static SESSION_KEYS: AtomicU64 = AtomicU64::new(1);

impl ServerFactory {
    /// A factory serving `upstreams`, whose session tasks are tracked by `tasks`.
    pub fn new(upstreams: Arc<Upstreams>, tasks: TaskTracker) -> Self {
        Self { upstreams, tasks }
    }

    /// The upstreams new sessions are served.
    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }

    /// Starts a session's server on its own task. It reads `inbound`, writes to
    /// `outbound`, stops when `cancel` fires, and calls `on_end` once it has stopped, for
    /// whatever reason (cancelled, failed handshake, transport closed).
    pub fn start<O: Outbound>(
        &self,
        label: &str,
        inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
        outbound: O,
        cancel: CancellationToken,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        if self.tasks.is_closed() {
            return Err(Error::ShuttingDown);
        }
        let transport = ChannelTransport::new(inbound, outbound);
        let span = tracing::info_span!("session", session = %label);
        let key = SESSION_KEYS.fetch_add(1, Ordering::Relaxed);
        let handler = Proxy::new(self.upstreams.clone(), key, cancel.child_token(), self.tasks.clone());
        self.tasks.spawn(tracing::Instrument::instrument(
            async move {
                match serve_server_with_ct(handler, transport, cancel).await {
                    Ok(running) => match running.waiting().await {
                        Ok(reason) => tracing::debug!(?reason, "session server stopped"),
                        Err(e) => tracing::warn!(error = %e, "session server task failed"),
                    },
                    Err(e) => tracing::debug!(error = %e, "session ended before initialize completed"),
                }
                on_end();
            },
            span,
        ));
        Ok(())
    }
}
