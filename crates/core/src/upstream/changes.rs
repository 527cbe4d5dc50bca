//! A modern (2026-07-28) upstream's list changes. That revision sends a server's
//! notifications only on a `subscriptions/listen` stream the client opened, so a link to a
//! modern upstream opens one for the list changes the upstream offers, for as long as the
//! connection lives; what arrives on it is handled as a handshake-era upstream's own
//! `list_changed` notifications are.

use std::future::Future;

use rmcp::model::{ServerCapabilities, ServerNotification, SubscriptionFilter};
use rmcp::{Peer, RoleClient};
use tokio_util::sync::CancellationToken;

/// The list changes to listen for: those the upstream says it sends (`listChanged`), or
/// `None` when it sends none.
pub(crate) fn filter(offered: Option<&ServerCapabilities>) -> Option<SubscriptionFilter> {
    let offered = offered?;
    let mut builder = SubscriptionFilter::builder();
    let mut any = false;
    if offered.tools.as_ref().and_then(|t| t.list_changed).unwrap_or(false) {
        builder = builder.tools_list_changed();
        any = true;
    }
    if offered.prompts.as_ref().and_then(|p| p.list_changed).unwrap_or(false) {
        builder = builder.prompts_list_changed();
        any = true;
    }
    if offered.resources.as_ref().and_then(|r| r.list_changed).unwrap_or(false) {
        builder = builder.resources_list_changed();
        any = true;
    }
    any.then(|| builder.build())
}

/// Listens on `peer` for what `filter` names until the connection is `lost`, handing each
/// notification to `changed`. A listen the upstream refuses, or a stream it ends, ends
/// this: the lists are still fetched afresh whenever the connection is re-established.
pub(crate) async fn listen<F, Fut>(
    upstream: String,
    peer: Peer<RoleClient>,
    filter: SubscriptionFilter,
    lost: CancellationToken,
    changed: F,
) where
    F: Fn(ServerNotification) -> Fut,
    Fut: Future<Output = ()>,
{
    let opened = tokio::select! {
        opened = peer.listen(filter) => opened,
        () = lost.cancelled() => return,
    };
    let mut subscription = match opened {
        Ok(subscription) => subscription,
        Err(e) => {
            tracing::info!(%upstream, error = %e, "the upstream refused subscriptions/listen; its list changes are not followed");
            return;
        }
    };
    tracing::debug!(%upstream, "listening for the upstream's list changes");
    loop {
        tokio::select! {
            next = subscription.next() => match next {
                Ok(Some(notification)) => changed(notification).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%upstream, error = %e, "the upstream's subscriptions/listen stream failed");
                    break;
                }
            },
            () = lost.cancelled() => {
                let _ = subscription.cancel().await;
                break;
            }
        }
    }
}
