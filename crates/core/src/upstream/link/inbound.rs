//! What an upstream sends to the gateway on a link: its requests (sampling, elicitation,
//! roots), answered by the client whose call they belong to; its notifications (progress and
//! log messages, routed to that call's client; `list_changed`, to every session using the
//! link).

#![allow(deprecated)] // sampling, roots and logging are deprecated in 2026-07-28 but live in every 2025 session

use std::sync::{Arc, Weak};

use rmcp::model::{
    CancelledNotificationParam, ClientConfig, ClientResult, GetExtensions, LoggingMessageNotification,
    ProgressNotification, PromptListChangedNotification, ResourceListChangedNotification, ServerNotification,
    ServerRequest, ToolListChangedNotification,
};
use rmcp::service::{
    InboundStreamOrigin, NotificationContext, OriginatingRequestId, PeerRequestOptions, RequestContext, ServiceRole,
};
use rmcp::{ErrorData, RoleClient, Service};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Ask, Asker, EARLY_PROGRESS, Link, Target, forward_progress};
use crate::channel::Notifier;
use crate::error::Error;
use crate::upstream::ordered::Deliver;

/// The client side of a link: what the upstream sends to the gateway.
#[derive(Clone)]
pub(crate) struct LinkClient {
    pub(super) link: Weak<Link>,
    pub(super) info: ClientConfig,
    /// Cancelled when this connection is lost.
    pub(super) lost: CancellationToken,
}

impl LinkClient {
    fn link(&self) -> Result<Arc<Link>, ErrorData> {
        self.link.upgrade().ok_or_else(|| ErrorData::internal_error("the gateway session is gone", None))
    }

    /// Hands the upstream's request to the stateless call it belongs to, which asks its
    /// client through an input-required result, and waits for the client's answer.
    async fn ask(
        &self,
        asker: &Asker,
        request: ServerRequest,
        tied: bool,
        ctx: &RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        let (reply, answer) = oneshot::channel();
        let gone = || ErrorData::internal_error("the client's call is over", None);
        let answer = tokio::select! {
            sent = asker.asks.send(Ask { request, reply, tied }) => match sent {
                Ok(()) => answer.await.ok(),
                Err(_) => None,
            },
            () = ctx.ct.cancelled() => return Err(Error::Cancelled.into()),
            () = self.lost.cancelled() => return Err(ErrorData::internal_error("the upstream exited", None)),
        };
        if let Some(answer) = answer {
            return answer;
        }
        // Dropped unanswered: the call is ending; answer once the upstream was told.
        tokio::select! {
            () = asker.over.cancelled() => Err(gone()),
            () = ctx.ct.cancelled() => Err(Error::Cancelled.into()),
            () = self.lost.cancelled() => Err(ErrorData::internal_error("the upstream exited", None)),
        }
    }
}

impl Service<RoleClient> for LinkClient {
    async fn handle_request(
        &self,
        request: ServerRequest,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        if let ServerRequest::PingRequest(_) = request {
            return Ok(ClientResult::empty(()));
        }
        let link = self.link()?;
        let Target { peer, client_id, asker, tied } = match link.target(ctx.extensions.get::<InboundStreamOrigin>()) {
            Ok(target) => target,
            Err(why) => return link.unrouted(&request, why),
        };
        if let Some(asker) = asker {
            return self.ask(&asker, request, tied, &ctx).await;
        }
        let mut request = request;
        if let Some(id) = client_id {
            request.extensions_mut().insert(OriginatingRequestId(id));
        }
        // This handler runs inside rmcp's task for the upstream's request, whose id rmcp
        // would stamp on anything sent from here as its origin; the upstream's ids mean
        // nothing to the client, so send from a task of its own.
        let forward = link
            .tasks
            .spawn(async move { peer.send_request_with_option(request, PeerRequestOptions::no_options()).await });
        let handle = match forward.await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(link.error(e).into()),
            Err(e) => return Err(ErrorData::internal_error(format!("forwarding failed: {e}"), None)),
        };
        let client_request = handle.id.clone();
        let client_peer = handle.peer.clone();
        tokio::select! {
            result = handle.await_response() => result.map_err(|e| link.error(e).into()),
            () = ctx.ct.cancelled() => {
                let why = CancelledNotificationParam::new(Some(client_request), Some("cancelled by the upstream".into()));
                let _ = client_peer.notify_cancelled(why).await;
                Err(Error::Cancelled.into())
            }
            () = self.lost.cancelled() => {
                // The upstream that asked is gone; the client need not answer any more.
                let why = CancelledNotificationParam::new(Some(client_request), Some("the upstream exited".into()));
                let _ = client_peer.notify_cancelled(why).await;
                Err(ErrorData::internal_error("the upstream exited", None))
            }
        }
    }

    async fn handle_notification(
        &self,
        notification: ServerNotification,
        _ctx: NotificationContext<RoleClient>,
    ) -> Result<(), ErrorData> {
        let Ok(link) = self.link() else { return Ok(()) };
        // Progress, log and list changes never get here: `Ordered` delivers them before rmcp
        // sees the next message (`Deliver for Link` below). Cancellation of the upstream's own
        // requests reaches their handlers through `ctx.ct`; the rest has no downstream meaning
        // for a 2025 session.
        if let ServerNotification::ResourceUpdatedNotification(n) = notification {
            link.resource_updated(n).await;
        }
        Ok(())
    }

    fn get_info(&self) -> <RoleClient as ServiceRole>::Info {
        self.info.clone()
    }
}

impl Link {
    /// One of the upstream's lists changed (a `list_changed` notification of a handshake-era
    /// upstream, or one on a modern upstream's listen stream): the catalogs fetch it again,
    /// and every session that uses this link hears of it. Anything else is ignored.
    pub(super) async fn list_changed(&self, notification: ServerNotification) {
        if let Some((changed, audience)) = self.changed_list(notification) {
            announce(changed, audience).await;
        }
    }

    /// The catalogs fetch the list again from now on; returns the notification every
    /// session that uses this link is to hear, and those sessions.
    fn changed_list(&self, notification: ServerNotification) -> Option<(ServerNotification, Vec<Notifier>)> {
        let changed = match notification {
            ServerNotification::ToolListChangedNotification(_) => {
                ServerNotification::ToolListChangedNotification(ToolListChangedNotification::default())
            }
            ServerNotification::PromptListChangedNotification(_) => {
                ServerNotification::PromptListChangedNotification(PromptListChangedNotification::default())
            }
            ServerNotification::ResourceListChangedNotification(_) => {
                ServerNotification::ResourceListChangedNotification(ResourceListChangedNotification::default())
            }
            _ => return None,
        };
        self.bump();
        Some((changed, self.audience()))
    }

    /// Every session that uses this link.
    fn audience(&self) -> Vec<Notifier> {
        self.routes().audience.values().cloned().collect()
    }
}

/// Sends `notification` to each of `audience`, one after the other.
async fn announce(notification: ServerNotification, audience: Vec<Notifier>) {
    for notifier in audience {
        notifier.notify(notification.clone()).await;
    }
}

impl Deliver for Link {
    /// Passes an upstream progress notification to the client whose call it is about,
    /// under the client's own progress token.
    async fn deliver_progress(&self, n: ProgressNotification) {
        let mapped = {
            // One lock with `Tracked::sent`: a notification is either mapped or kept early.
            let mut routes = self.routes();
            match routes.progress.get(&n.params.progress_token).cloned() {
                Some(mapped) => mapped,
                None => {
                    if routes.early.len() == EARLY_PROGRESS {
                        routes.early.pop_front();
                    }
                    routes.early.push_back(n);
                    return;
                }
            }
        };
        forward_progress(n, mapped).await;
    }

    /// Passes an upstream log message on: during a call, on that call's stream; otherwise
    /// to every session that sees this upstream.
    async fn deliver_log(&self, n: LoggingMessageNotification) {
        match self.target(n.extensions.get::<InboundStreamOrigin>()) {
            Ok(Target { peer, client_id: Some(id), .. }) => {
                let mut note = LoggingMessageNotification::new(n.params);
                note.extensions.insert(OriginatingRequestId(id));
                let _ = peer.send_notification(ServerNotification::LoggingMessageNotification(note)).await;
            }
            _ => {
                let note = LoggingMessageNotification::new(n.params);
                announce(ServerNotification::LoggingMessageNotification(note), self.audience()).await;
            }
        }
    }

    /// Has the catalogs fetch the list again at once, in order with the upstream's other
    /// messages; every session that uses this link hears of it from a task of its own, so a
    /// session slow to read holds up no message of the upstream's.
    async fn deliver_list_changed(&self, n: ServerNotification) {
        if let Some((changed, audience)) = self.changed_list(n) {
            self.tasks.spawn(announce(changed, audience));
        }
    }
}
