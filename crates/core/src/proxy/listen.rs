//! `subscriptions/listen` in the modern hub: which part of a client's filter the gateway
//! honours, and the upstream resource subscriptions a listener holds while it is open.
//!
//! rmcp acknowledges a listen with the filter [`Proxy::accepted_filter`] returns (cut down
//! to what the hub advertises) and runs [`Proxy::run_listener`] until the subscription ends;
//! the hub subscribes upstream before (see [`Proxy::hold_resources`]) and lets go after.
//! The notifications themselves never pass through here: the upstreams' list changes and
//! resource updates reach the hub's transport as the hub's own notifications, and the
//! transport hands them to the listeners that asked (it holds the listen streams).
//!
//! List changes are honoured whenever the hub serves the list. A resource URI is honoured
//! when an upstream that offers resource subscriptions owns it (by the last catalog): the
//! listener subscribes to it upstream, as a handshake-era session's `resources/subscribe`
//! does, and unsubscribes when it ends. Both hub proxies and all their listeners share one
//! count per upstream connection and URI, so the upstream is asked once however many
//! listeners want a URI, and released by the last.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::SubscriptionFilter;
use rmcp::service::{RequestContext, SubscriptionContext};
use tokio_util::sync::CancellationToken;

use super::{Member, Proxy};
use crate::upstream::link::Link;

/// How many open listeners hold each upstream resource subscription.
#[derive(Default)]
pub(crate) struct ResourceHolds {
    /// (the link's address, the URI) → listeners holding it.
    held: Mutex<HashMap<(usize, String), usize>>,
}

impl ResourceHolds {
    fn held(&self) -> MutexGuard<'_, HashMap<(usize, String), usize>> {
        // Plain counts, never locked across an await.
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more holder; true for the first.
    fn hold(&self, link: &Arc<Link>, uri: &str) -> bool {
        let mut held = self.held();
        let count = held.entry((Arc::as_ptr(link) as usize, uri.to_owned())).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one holder less; true for the last.
    fn release(&self, link: &Arc<Link>, uri: &str) -> bool {
        let mut held = self.held();
        let key = (Arc::as_ptr(link) as usize, uri.to_owned());
        match held.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                held.remove(&key);
                true
            }
            None => false,
        }
    }
}

/// One upstream resource subscription a listener holds.
pub(super) struct Held {
    owner: usize,
    link: Arc<Link>,
    uri: String,
}

impl Proxy {
    /// The part of `requested` the hub honours; `None` (rmcp answers -32601) on a session's
    /// server, which serves no 2026-07-28 requests.
    pub(super) fn accepted_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        self.modern.as_ref()?;
        let mut accepted = requested.clone();
        accepted.resource_subscriptions = requested
            .resource_subscriptions
            .as_ref()
            .map(|uris| uris.iter().filter(|uri| self.subscribable(uri).is_some()).cloned().collect::<Vec<_>>())
            .filter(|uris| !uris.is_empty());
        Some(accepted)
    }

    /// The upstream that would send updates of `uri`: by the last catalog, its remote owner
    /// (the first, as for a session's `resources/subscribe`), if that offers resource
    /// subscriptions. (Not a later candidate that does: an upstream with templates is one for
    /// every URI, and would never send updates of another's resource.)
    fn subscribable(&self, uri: &str) -> Option<(usize, Arc<Link>)> {
        let built = self.catalog.last()?;
        let members = self.members().ok()?;
        let (owner, link) =
            built.catalog.resource_owners(uri).into_iter().find_map(|owner| match members.get(owner) {
                Some(Member::Remote { link, .. }) => Some((owner, link.clone())),
                _ => None,
            })?;
        link.offered().and_then(|c| c.resources).is_some_and(|r| r.subscribe == Some(true)).then_some((owner, link))
    }

    /// Subscribes upstream to the URIs of `uris` an upstream would send updates of (those
    /// [`Self::accepted_filter`] honours), before the listen is acknowledged, so an update
    /// sent once the client has the acknowledgement reaches it. Returns what it holds, for
    /// [`Self::release_resources`] when the listener ends.
    pub(super) async fn hold_resources(&self, uris: &[String], ctx: &RequestContext<RoleServer>) -> Vec<Held> {
        let Some(modern) = &self.modern else { return Vec::new() };
        let mut held = Vec::with_capacity(uris.len());
        for uri in uris {
            let Some((owner, link)) = self.subscribable(uri) else { continue };
            if modern.holds.hold(&link, uri) {
                let link = &link;
                let subscribed = self
                    .upstream_once(owner, ctx, "resources/subscribe", |ctx| async move {
                        link.subscribe_resource(self.key(), uri, &ctx).await
                    })
                    .await;
                if let Err(e) = subscribed {
                    tracing::warn!(uri, error = %e.message, "a listener's resource subscription was refused upstream; it gets no updates of it");
                }
            }
            held.push(Held { owner, link, uri: uri.clone() });
        }
        held
    }

    /// Lets go of a listener's resource subscriptions: the last holder of one unsubscribes
    /// upstream.
    pub(super) async fn release_resources(&self, held: Vec<Held>, ctx: &RequestContext<RoleServer>) {
        let Some(modern) = &self.modern else { return };
        for Held { owner, link, uri } in held {
            if modern.holds.release(&link, &uri) {
                let uri = &uri;
                let link = &link;
                let unsubscribed = self
                    .upstream_once(owner, ctx, "resources/unsubscribe", |ctx| async move {
                        link.unsubscribe_resource(self.key(), uri, &ctx).await
                    })
                    .await;
                if let Err(e) = unsubscribed {
                    tracing::debug!(uri, error = %e.message, "resources/unsubscribe for an ended listener failed");
                }
            }
        }
    }

    /// One listener, acknowledged: open until the client ends it (closing the stream
    /// cancels the request) or the gateway does (the transport completes the stream and
    /// cancels it; the hub stopping ends it too).
    pub(super) async fn run_listener(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        tokio::select! {
            () = subscription.cancelled() => {}
            () = self.cancel.cancelled() => {}
        }
        Ok(())
    }

    /// Runs `request` (a subscription change of upstream `owner`) on the listener's behalf,
    /// under that upstream's call deadline and a token of its own (the listener's may be
    /// cancelled already: its unsubscribe still goes out).
    async fn upstream_once<F>(
        &self,
        owner: usize,
        ctx: &RequestContext<RoleServer>,
        what: &str,
        request: impl FnOnce(RequestContext<RoleServer>) -> F,
    ) -> Result<(), ErrorData>
    where
        F: Future<Output = Result<(), crate::error::Error>>,
    {
        let mut ctx = ctx.clone();
        ctx.ct = CancellationToken::new();
        self.under_deadline(owner, what, ctx, |ctx| async move { request(ctx).await.map_err(ErrorData::from) }).await
    }
}
