//! Resource subscriptions on a link, in the upstream's era.
//!
//! A handshake-era upstream is asked with `resources/subscribe` and sends its updates on
//! its connection. 2026-07-28 has no such method: a client names the URIs it wants updates
//! of on a `subscriptions/listen` stream, and they come on that stream. So a subscription
//! to a resource of a modern upstream (a session's `resources/subscribe`, or a hub listener
//! naming the URI) opens a listen stream for that URI on the link, one per URI however many
//! subscribe to it, closed when no one is subscribed any more; its updates are routed to
//! the subscribers as a handshake-era upstream's are. As a handshake-era subscription, one
//! does not outlive the connection: an upstream that reconnects has forgotten it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rmcp::model::{
    ClientRequest, ResourceUpdatedNotification, ServerNotification, SubscribeRequest, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequest, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleClient, RoleServer};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Connection, Link, SERIAL, SessionKey};
use crate::error::Error;
use crate::upstream::spec::Era;

/// The listen streams a link holds open for resource subscriptions: URI → (a serial that
/// tells this stream from a later one for the same URI, the token that ends it).
#[derive(Default)]
pub(super) struct Listens {
    open: Mutex<HashMap<String, (u64, CancellationToken)>>,
}

impl Listens {
    fn open(&self) -> MutexGuard<'_, HashMap<String, (u64, CancellationToken)>> {
        // Plain bookkeeping, never locked across an await.
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets the stream `serial` for `uri`, if it is still the one recorded.
    fn forget(&self, uri: &str, serial: u64) {
        let mut open = self.open();
        if open.get(uri).is_some_and(|(s, _)| *s == serial) {
            open.remove(uri);
        }
    }
}

impl Link {
    /// Subscribes `session` to the updates of `uri`, in the upstream's era; `ctx` is the
    /// client's request (a handshake-era upstream's `resources/subscribe` is forwarded under
    /// it). Refused with a reason when the upstream offers no resource subscriptions, or
    /// does not accept this one.
    pub(crate) async fn subscribe_resource(
        self: &Arc<Self>,
        session: SessionKey,
        uri: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), Error> {
        let conn = self.connection().await?;
        let offered = conn.peer.peer_info().and_then(|info| info.capabilities.resources.as_ref()?.subscribe);
        if offered != Some(true) {
            return Err(self.not_subscribable(uri, "it offers no resource subscriptions"));
        }
        // Recorded first, so an update sent right after the upstream's answer finds it.
        self.set_subscription(session, uri, true);
        let subscribed = if conn.era == Era::Modern {
            self.listen_for(&conn, uri).await
        } else {
            let request = ClientRequest::SubscribeRequest(SubscribeRequest::new(SubscribeRequestParams::new(uri)));
            self.forward(request, ctx, session).await.map(|_| ())
        };
        if subscribed.is_err() {
            self.set_subscription(session, uri, false);
        }
        subscribed
    }

    /// Ends `session`'s subscription to `uri`: a handshake-era upstream is told with
    /// `resources/unsubscribe`; a modern upstream's listen stream for it ends with its last
    /// subscriber.
    pub(crate) async fn unsubscribe_resource(
        &self,
        session: SessionKey,
        uri: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), Error> {
        self.set_subscription(session, uri, false);
        let conn = self.connection().await?;
        if conn.era == Era::Modern {
            self.end_unwanted_listens();
            return Ok(());
        }
        let request = ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(UnsubscribeRequestParams::new(uri)));
        self.forward(request, ctx, session).await.map(|_| ())
    }

    /// Ends the listen streams of URIs no session is subscribed to any more.
    pub(super) fn end_unwanted_listens(&self) {
        let wanted: Vec<String> = {
            let routes = self.routes();
            routes.subscriptions.iter().filter(|(_, who)| !who.is_empty()).map(|(uri, _)| uri.clone()).collect()
        };
        self.listens.open().retain(|uri, (_, token)| {
            let keep = wanted.contains(uri);
            if !keep {
                token.cancel();
            }
            keep
        });
    }

    /// Makes sure a listen stream for `uri` is open on `conn`, waiting for the upstream's
    /// acknowledgement when it opens one.
    async fn listen_for(self: &Arc<Self>, conn: &Connection, uri: &str) -> Result<(), Error> {
        let (serial, token) = {
            let mut open = self.listens.open();
            if open.get(uri).is_some_and(|(_, token)| !token.is_cancelled()) {
                return Ok(());
            }
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let token = conn.lost.child_token();
            open.insert(uri.to_owned(), (serial, token.clone()));
            (serial, token)
        };
        // The stream lives in a task of its own, so a caller that gives up (its deadline)
        // leaves nothing half-open: the task either holds the stream or forgets it.
        let (acked, ack) = oneshot::channel();
        let follow = Follow { link: Arc::downgrade(self), uri: uri.to_owned(), serial, token };
        self.tasks.spawn(follow.run(conn.peer.clone(), acked));
        ack.await
            .unwrap_or_else(|_| Err(self.not_subscribable(uri, "its listen stream ended before it was acknowledged")))
    }

    fn not_subscribable(&self, uri: &str, why: &str) -> Error {
        Error::NotSubscribable { upstream: self.spec.name.clone(), uri: uri.to_owned(), why: why.to_owned() }
    }

    /// Sends an update of the upstream's to the sessions subscribed to its URI.
    pub(super) async fn resource_updated(&self, n: ResourceUpdatedNotification) {
        let notifiers: Vec<_> = {
            let routes = self.routes();
            let who = routes.subscriptions.get(&n.params.uri);
            routes.audience.iter().filter(|(k, _)| who.is_some_and(|w| w.contains(k))).map(|(_, p)| p.clone()).collect()
        };
        for notifier in notifiers {
            notifier.notify(ServerNotification::ResourceUpdatedNotification(n.clone())).await;
        }
    }
}

/// One listen stream for one URI, until its token is cancelled (no subscriber left, the
/// connection lost) or the upstream ends it.
struct Follow {
    link: Weak<Link>,
    uri: String,
    serial: u64,
    token: CancellationToken,
}

impl Follow {
    async fn run(self, peer: Peer<RoleClient>, acked: oneshot::Sender<Result<(), Error>>) {
        let Follow { link, uri, serial, token } = self;
        let refuse = |why: String| {
            link.upgrade().map(|l| {
                l.listens.forget(&uri, serial);
                l.not_subscribable(&uri, &why)
            })
        };
        let filter = SubscriptionFilter::builder().resource_subscriptions([uri.clone()]).build();
        let opened = tokio::select! {
            opened = peer.listen(filter) => opened,
            () = token.cancelled() => {
                if let Some(e) = refuse("the subscription was ended before the upstream acknowledged it".into()) {
                    let _ = acked.send(Err(e));
                }
                return;
            }
        };
        let mut subscription = match opened {
            Ok(s) if s.acknowledged().resource_subscriptions.as_ref().is_some_and(|u| u.contains(&uri)) => s,
            Ok(mut s) => {
                let _ = s.cancel().await;
                if let Some(e) = refuse("it did not accept the subscription on subscriptions/listen".into()) {
                    let _ = acked.send(Err(e));
                }
                return;
            }
            Err(e) => {
                if let Some(e) = refuse(format!("subscriptions/listen failed: {e}")) {
                    let _ = acked.send(Err(e));
                }
                return;
            }
        };
        let _ = acked.send(Ok(()));
        loop {
            tokio::select! {
                next = subscription.next() => match next {
                    Ok(Some(ServerNotification::ResourceUpdatedNotification(n))) => {
                        let Some(link) = link.upgrade() else { break };
                        link.resource_updated(n).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(%uri, error = %e, "an upstream's listen stream for a resource subscription failed");
                        break;
                    }
                },
                () = token.cancelled() => {
                    let _ = subscription.cancel().await;
                    break;
                }
            }
        }
        if let Some(link) = link.upgrade() {
            link.listens.forget(&uri, serial);
        }
    }
}
